"""A caller for end-to-end tests: a real UDP socket that speaks just enough SIP to dial and hang up."""

from __future__ import annotations

import socket
import time

from sip.message import Request, Response, parse_message

from .sip_messages import CallParty, response_to

LOOPBACK = "127.0.0.1"
LOOPBACK6 = "::1"


class SipClient:
    """One UDP socket, one call at a time."""

    def __init__(self, server: tuple[str, int], target_uri: str) -> None:
        self.server = server
        ipv6 = ":" in server[0]
        self.sock = socket.socket(socket.AF_INET6 if ipv6 else socket.AF_INET, socket.SOCK_DGRAM)
        self.sock.bind((LOOPBACK6 if ipv6 else LOOPBACK, 0))
        self.port = self.sock.getsockname()[1]
        self.party = CallParty(f"[{LOOPBACK6}]" if ipv6 else LOOPBACK, self.port, target_uri)
        self.provisional: list[int] = []
        self.answer: Response | None = None

    def send(self, data: bytes) -> None:
        """Send raw bytes to the server."""
        self.sock.sendto(data, self.server)

    def receive(self, timeout: float = 5.0) -> tuple[Request | Response, bytes]:
        """The next message from the server (parsed, raw)."""
        self.sock.settimeout(timeout)
        data, source = self.sock.recvfrom(65535)
        assert source[:2] == self.server, f"message from {source}, not the server"
        return parse_message(data), data

    def nothing_within(self, seconds: float) -> bool:
        """Whether the server stays silent for `seconds`."""
        try:
            self.receive(seconds)
        except TimeoutError:
            return True
        return False

    def call(self, sdp: bytes | None, timeout: float = 5.0, *, send_ack: bool = True) -> Response:
        """Send INVITE, collect provisional responses, ACK the final one and return it."""
        branch = self.party.new_branch()
        self.send(self.party.invite(sdp, branch=branch))
        deadline = time.monotonic() + timeout
        while True:
            message, _ = self.receive(max(0.01, deadline - time.monotonic()))
            if not isinstance(message, Response) or message.cseq.method != "INVITE":
                continue
            if message.status_code < 200:
                self.provisional.append(message.status_code)
                continue
            if message.status_code < 300:
                self.party.to_tag = message.to_address.tag
                self.answer = message
                if send_ack:
                    self.send(self.party.ack())
            else:
                self.send(self.party.request("ACK", branch=branch, to_tag=message.to_address.tag))
            return message

    def expect_request(self, method: str, timeout: float = 5.0) -> tuple[Request, bytes]:
        """Wait for a request from the server, skipping retransmitted responses."""
        deadline = time.monotonic() + timeout
        while True:
            message, raw = self.receive(max(0.01, deadline - time.monotonic()))
            if isinstance(message, Request) and message.method == method:
                return message, raw

    def reply(self, raw_request: bytes, status: int = 200, reason: str = "OK") -> None:
        """Answer a request the server sent us."""
        self.send(response_to(raw_request, status, reason))

    def hangup(self, timeout: float = 5.0) -> Response:
        """Send BYE and wait for its final response."""
        self.send(self.party.bye())
        deadline = time.monotonic() + timeout
        while True:
            message, _ = self.receive(max(0.01, deadline - time.monotonic()))
            if isinstance(message, Response) and message.cseq.method == "BYE" and message.status_code >= 200:
                return message

    def close(self) -> None:
        """Close the socket."""
        self.sock.close()
