"""The asyncio edge of the RTP layer: one non-blocking UDP socket per media stream.

The socket is read with `loop.add_reader` (no transport/protocol objects on the hot path) and
written with a plain non-blocking `sendto`; a full send buffer drops the packet and counts it, as a
real-time sender must.
"""

from __future__ import annotations

import asyncio
import logging
import socket
from collections.abc import Callable

from .ports import PortAllocator

logger = logging.getLogger(__name__)

Address = tuple[str, int]
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
    def open(cls, host: str, allocator: PortAllocator, on_datagram: Callable[[bytes, Address], None],
             loop: asyncio.AbstractEventLoop, attempts: int = 32) -> RtpSocket:
        """Bind the first free port the allocator offers (ports taken by other programs are skipped)."""
        family = socket.AF_INET6 if ":" in host else socket.AF_INET
        last_error: OSError | None = None
        for _ in range(attempts):
            port = allocator.acquire()
            sock = socket.socket(family, socket.SOCK_DGRAM)
            try:
                sock.bind((host, port))
            except OSError as exc:
                sock.close()
                allocator.release(port)
                last_error = exc
                continue
            sock.setblocking(False)
            return cls(sock, port, on_datagram, loop, allocator)
        raise OSError(f"no bindable RTP port on {host}: {last_error}")

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
