"""The asyncio edge of the RTP layer: non-blocking UDP sockets, an RTP/RTCP pair per media stream.

The socket is read with `loop.add_reader` (no transport/protocol objects on the hot path) and
written with a plain non-blocking `sendto`; a full send buffer drops the packet and counts it, as a
real-time sender must.
"""

from __future__ import annotations

import asyncio
import logging
import socket
from collections.abc import Callable

from .packet import Address
from .ports import PortAllocator

logger = logging.getLogger(__name__)

MAX_DATAGRAM = 2048
_READS_PER_WAKEUP = 64


class RtpSocket:
    """A bound UDP socket whose datagrams go to `on_datagram(data, source)`."""

    def __init__(self, sock: socket.socket, port: int, on_datagram: Callable[[bytes, Address], None],
                 loop: asyncio.AbstractEventLoop, allocator: PortAllocator | None = None) -> None:
        self.sock = sock
        self.port = port
        self.on_datagram = on_datagram
        self.loop = loop
        self.send_failures = 0
        self._allocator = allocator
        self._closed = False
        loop.add_reader(sock.fileno(), self._readable)

    @classmethod
    def open_pair(cls, host: str, allocator: PortAllocator, on_rtp: Callable[[bytes, Address], None],
                  on_rtcp: Callable[[bytes, Address], None], loop: asyncio.AbstractEventLoop,
                  attempts: int = 32) -> tuple[RtpSocket, RtpSocket]:
        """Bind the first free even RTP port the allocator offers and the odd RTCP port above it (RFC 3550 §11);
        ports taken by other programs are skipped. Closing the RTP socket returns the pair to the pool."""
        family = socket.AF_INET6 if ":" in host else socket.AF_INET
        last_error: OSError | None = None
        for _ in range(attempts):
            port = allocator.acquire()
            socks: list[socket.socket] = []
            try:
                for offset in (0, 1):
                    sock = socket.socket(family, socket.SOCK_DGRAM)
                    socks.append(sock)
                    sock.bind((host, port + offset))
                    sock.setblocking(False)
            except OSError as exc:
                for sock in socks:
                    sock.close()
                allocator.release(port)
                last_error = exc
                continue
            return cls(socks[0], port, on_rtp, loop, allocator), cls(socks[1], port + 1, on_rtcp, loop)
        raise OSError(f"no bindable RTP/RTCP port pair on {host}: {last_error}")

    def _readable(self) -> None:
        for _ in range(_READS_PER_WAKEUP):
            try:
                data, source = self.sock.recvfrom(MAX_DATAGRAM)
            except (BlockingIOError, InterruptedError):
                return
            except OSError as exc:  # ICMP port unreachable surfaces here on Linux
                logger.debug("RTP port %d: receive error %s", self.port, exc)
                return
            try:
                self.on_datagram(data, (source[0], source[1]))
            except Exception:
                logger.exception("RTP port %d: handler failed", self.port)

    def sendto(self, data: bytes, destination: Address) -> None:
        """Send without blocking; a failure is counted, not raised."""
        try:
            self.sock.sendto(data, destination)
        except OSError:
            self.send_failures += 1

    def close(self) -> None:
        """Stop reading, close the socket and return its port to the pool."""
        if self._closed:
            return
        self._closed = True
        self.loop.remove_reader(self.sock.fileno())
        self.sock.close()
        if self._allocator is not None:
            self._allocator.release(self.port)
