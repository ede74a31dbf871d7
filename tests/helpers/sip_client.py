"""Callers for end-to-end tests: real sockets that speak just enough SIP to dial, answer and hang up.

`SipCaller` holds the call logic; `SipClient` is the UDP one. The TCP/TLS caller in stream_client.py
shares the logic and only frames a byte stream instead of reading datagrams.
"""

from __future__ import annotations

import socket
import time

from sip.message import Request, Response, parse_message

from .sip_messages import CallParty, response_to

LOOPBACK = "127.0.0.1"
LOOPBACK6 = "::1"


class SipCaller:
    """What a test caller does, over whatever `send` and `receive` move messages."""

    server: tuple[str, int]
    party: CallParty

    def __init__(self) -> None:
        self.provisional: list[int] = []
        self.answer: Response | None = None

    def send(self, data: bytes) -> None:
        """Send raw bytes to the server."""
        raise NotImplementedError

    def receive(self, timeout: float = 5.0) -> tuple[Request | Response, bytes]:
        """The next message from the server (parsed, raw); TimeoutError when none arrives."""
        raise NotImplementedError

    def close(self) -> None:
        """Free the socket."""
        raise NotImplementedError

    def nothing_within(self, seconds: float) -> bool:
        """Whether the server stays silent for `seconds`."""
        try:
            self.receive(seconds)
        except TimeoutError:
            return True
        return False

    def final_response(self, method: str, timeout: float = 5.0) -> Response:
        """The next final response to a `method` request; provisional ones are collected on the way."""
        deadline = time.monotonic() + timeout
        while True:
            message, _ = self.receive(max(0.01, deadline - time.monotonic()))
            if isinstance(message, Response) and message.cseq.method == method:
                if message.status_code >= 200:
                    return message
                self.provisional.append(message.status_code)

    def call(self, sdp: bytes | None, timeout: float = 5.0, *, send_ack: bool = True) -> Response:
        """Send INVITE, collect provisional responses, ACK the final one and return it.

        The ACK for a 2xx is a new transaction; for an error response it reuses the INVITE's branch.
        """
        branch = self.party.new_branch()
        self.send(self.party.invite(sdp, branch=branch))
        final = self.final_response("INVITE", timeout)
        if final.status_code < 300:
            self.party.to_tag = final.to_address.tag
            self.answer = final
            if send_ack:
                self.send(self.party.ack())
        else:
            self.send(self.party.request("ACK", branch=branch, to_tag=final.to_address.tag))
        return final

    def options(self, timeout: float = 5.0) -> Response:
        """Send an out-of-dialog OPTIONS and return its final response."""
        self.send(self.party.request("OPTIONS", to_tag=""))
        return self.final_response("OPTIONS", timeout)

    def expect_request(self, method: str, timeout: float = 5.0) -> tuple[Request, bytes]:
        """Wait for a request from the server, skipping anything else (retransmitted responses, say)."""
        deadline = time.monotonic() + timeout
        while True:
            message, raw = self.receive(max(0.01, deadline - time.monotonic()))
            if isinstance(message, Request) and message.method == method:
                return message, raw

    def reply(self, raw_request: bytes, status: int = 200, reason: str = "OK") -> None:
        """Answer a request the server sent us."""
        self.send(response_to(raw_request, status, reason))

    def hangup(self, timeout: float = 5.0) -> Response:
        """Send BYE and return its final response."""
        self.send(self.party.bye())
        return self.final_response("BYE", timeout)


class SipClient(SipCaller):
    """A caller on one UDP socket (IPv6 when the server's address is)."""

    def __init__(self, server: tuple[str, int], target_uri: str) -> None:
        super().__init__()
        self.server = server
        ipv6 = ":" in server[0]
        self.sock = socket.socket(socket.AF_INET6 if ipv6 else socket.AF_INET, socket.SOCK_DGRAM)
        self.sock.bind((LOOPBACK6 if ipv6 else LOOPBACK, 0))
        self.port = self.sock.getsockname()[1]
        self.party = CallParty(f"[{LOOPBACK6}]" if ipv6 else LOOPBACK, self.port, target_uri)

    def send(self, data: bytes) -> None:
        """Send raw bytes to the server."""
        self.sock.sendto(data, self.server)

    def receive(self, timeout: float = 5.0) -> tuple[Request | Response, bytes]:
        """The next datagram from the server (parsed, raw)."""
        self.sock.settimeout(timeout)
        data, source = self.sock.recvfrom(65535)
        assert source[:2] == self.server, f"message from {source}, not the server"
        return parse_message(data), data

    def close(self) -> None:
        """Close the socket."""
        self.sock.close()
