"""A blocking SIP caller over TCP or TLS, for end-to-end tests of the server's stream transports.

UDP tests get one message per datagram; a stream is just bytes, so this client frames what it reads
with the stack's own `sip.framing.StreamFramer` (the framer is tested on its own; here it only splits
the server's output). Requests are the hand-written ones of `CallParty`, with the Via transport and
the Contact saying TCP or TLS, so that the server answers on, and sends its in-dialog requests over,
the same connection. Raw access (`send`, `ping`, `closed_by_peer`) is there for the keep-alive,
framing-error and idle-close tests.
"""

from __future__ import annotations

import contextlib
import socket
import ssl
import time
from collections import deque
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from sip.framing import PING, PONG, FramedMessage, FramingError, StreamFramer
from sip.message import Request, Response, parse_message

from .sip_client import SipCaller
from .sip_messages import CallParty

MAX_BODY = 1 << 20


@dataclass
class StreamCallParty(CallParty):
    """A `CallParty` whose requests say `transport` (TCP or TLS) in their Via and Contact."""

    transport: str = "TCP"

    def request(self, method: str, **kwargs: Any) -> bytes:
        """The `CallParty` request, with Via `SIP/2.0/<transport>` and Contact `;transport=<transport>`."""
        data = super().request(method, **kwargs)
        head, separator, body = data.partition(b"\r\n\r\n")
        contact = f"<sip:tester@{self.local_host}:{self.local_port}>".encode()
        head = head.replace(b"Via: SIP/2.0/UDP ", f"Via: SIP/2.0/{self.transport} ".encode(), 1)
        head = head.replace(contact, contact[:-1] + f";transport={self.transport.lower()}>".encode(), 1)
        return head + separator + body


def tls_client_context(ca_file: Path) -> ssl.SSLContext:
    """A client context trusting only `ca_file` (a test CA or self-signed certificate), without host name checks."""
    context = ssl.create_default_context(ssl.Purpose.SERVER_AUTH, cafile=str(ca_file))
    context.check_hostname = False
    context.verify_mode = ssl.CERT_REQUIRED
    return context


class StreamSipClient(SipCaller):
    """One TCP or TLS connection to the server, one call at a time."""

    def __init__(self, server: tuple[str, int], target_uri: str, *, transport: str = "TCP",
                 ssl_context: ssl.SSLContext | None = None, timeout: float = 5.0) -> None:
        if transport not in ("TCP", "TLS") or (transport == "TLS") != (ssl_context is not None):
            raise ValueError("TCP without an SSL context, or TLS with one")
        super().__init__()
        self.server = server
        self.transport = transport
        raw = socket.create_connection(server, timeout=timeout)
        self.sock: socket.socket = ssl_context.wrap_socket(raw) if ssl_context is not None else raw
        local_host, self.port = self.sock.getsockname()[:2]
        host = f"[{local_host}]" if ":" in local_host else local_host
        self.party = StreamCallParty(host, self.port, target_uri, transport=transport)
        self.framer = StreamFramer(max_body_bytes=MAX_BODY)
        self._framed: deque[bytes] = deque()
        self._eof = False

    # -- raw bytes ------------------------------------------------------------------------------

    def send(self, data: bytes) -> None:
        """Write raw bytes to the connection."""
        self.sock.sendall(data)

    def _read(self, timeout: float) -> bool:
        """Read one chunk into the framer; False on timeout. Raises ConnectionError once the peer closed."""
        if self._eof:
            raise ConnectionError("the server closed the connection")
        self.sock.settimeout(max(0.001, timeout))
        try:
            data = self.sock.recv(65536)
        except TimeoutError:
            return False
        except (ConnectionResetError, ssl.SSLEOFError) as exc:
            self._eof = True
            raise ConnectionError("the server reset the connection") from exc
        if not data:
            self._eof = True
            raise ConnectionError("the server closed the connection")
        for item in self.framer.feed(data):
            if isinstance(item, FramedMessage):
                self._framed.append(item.data)
            elif isinstance(item, FramingError):
                raise AssertionError(f"the server's stream cannot be framed: {item.reason}")
        return True

    def ping(self, timeout: float = 3.0) -> bytes:
        """Send an RFC 5626 double-CRLF ping and return the raw bytes that answer it (a pong is CRLF)."""
        assert not self._framed and self.framer.buffered == 0, "unread messages before the ping"
        self.send(PING)
        received = b""
        deadline = time.monotonic() + timeout
        while len(received) < len(PONG):
            self.sock.settimeout(max(0.001, deadline - time.monotonic()))
            chunk = self.sock.recv(64)
            if not chunk:
                self._eof = True
                break
            received += chunk
        return received

    def closed_by_peer(self, timeout: float) -> bool:
        """Whether the server closes the connection within `timeout` (what it sends meanwhile is kept)."""
        deadline = time.monotonic() + timeout
        try:
            while time.monotonic() < deadline:
                self._read(deadline - time.monotonic())
        except ConnectionError:
            return True
        return False

    # -- messages -------------------------------------------------------------------------------

    def receive(self, timeout: float = 5.0) -> tuple[Request | Response, bytes]:
        """The next framed message from the server (parsed, raw); TimeoutError when none arrives."""
        deadline = time.monotonic() + timeout
        while not self._framed:
            remaining = deadline - time.monotonic()
            if remaining <= 0 or not self._read(remaining):
                raise TimeoutError(f"no message from the server within {timeout} s")
        raw = self._framed.popleft()
        return parse_message(raw), raw

    def close(self) -> None:
        """Close the connection."""
        with contextlib.suppress(OSError):
            self.sock.close()
