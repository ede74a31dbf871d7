"""The asyncio edge of the RTP layer: non-blocking UDP sockets, an RTP/RTCP pair per media stream.

All media sockets of an engine sit in one epoll set (`DatagramHub`) that asyncio watches through a single
file descriptor: one wake-up reads every socket that has data, so a thousand streams do not cost a thousand
event-loop callbacks per tick. Sends are plain non-blocking `sendto`; a full send buffer drops the packet and
counts it, as a real-time sender must.
"""

from __future__ import annotations

import asyncio
import logging
import math
import select
import socket
from collections.abc import Callable

from .packet import Address
from .ports import PortAllocator

logger = logging.getLogger(__name__)

MAX_DATAGRAM = 2048
MAX_BATCH = 200
"""Datagrams read per wake-up before the event loop gets a turn."""
YIELD_CHECK = 32
"""Datagrams read between looks at the clock: reading stops for a due tick within about 0.1 ms."""

DatagramHandler = Callable[[bytes, Address, float], object]
"""Called with (data, source, arrival time on the loop's clock); what it returns, unless None, goes to the
socket's result handler."""


class DatagramHub:
    """Reads every registered socket from one asyncio reader on an epoll set."""

    def __init__(self, loop: asyncio.AbstractEventLoop) -> None:
        self.loop = loop
        self.yield_at = math.inf
        """Loop time at which reading stops to let something due run first (the mixer's next tick)."""
        self._poll = select.epoll()
        self._handlers: dict[int, tuple[socket.socket, DatagramHandler, Callable[[object], None] | None]] = {}
        self.receive_errors = 0
        loop.add_reader(self._poll.fileno(), self._drain)

    def register(self, sock: socket.socket, handler: DatagramHandler,
                 on_result: Callable[[object], None] | None = None) -> None:
        """Deliver the socket's datagrams to `handler`, and whatever it returns (but None) to `on_result`."""
        self._handlers[sock.fileno()] = (sock, handler, on_result)
        self._poll.register(sock.fileno(), select.EPOLLIN)

    def unregister(self, sock: socket.socket) -> None:
        """Stop reading the socket (before closing it)."""
        if self._handlers.pop(sock.fileno(), None) is not None:
            self._poll.unregister(sock.fileno())

    def _drain(self) -> None:
        self.drain(MAX_BATCH)

    def drain(self, limit: int) -> int:
        """Read and hand on up to `limit` datagrams that are waiting (fewer when the sockets run dry, or once
        `yield_at` has come); how many."""
        handled = 0
        handlers = self._handlers
        while handled < limit and self.loop.time() < self.yield_at:
            events = self._poll.poll(0, min(limit - handled, YIELD_CHECK))
            if not events:
                return handled
            now = self.loop.time()
            for fd, _ in events:
                entry = handlers.get(fd)
                if entry is None:
                    continue
                sock, handler, on_result = entry
                try:
                    data, source = sock.recvfrom(MAX_DATAGRAM)
                except (BlockingIOError, InterruptedError):
                    continue
                except OSError as exc:  # ICMP port unreachable surfaces here on Linux
                    self.receive_errors += 1
                    logger.debug("media socket %d: receive error %s", fd, exc)
                    continue
                handled += 1
                try:
                    result = handler(data, source if len(source) == 2 else (source[0], source[1]), now)
                    if result is not None and on_result is not None:
                        on_result(result)
                except Exception:
                    logger.exception("media socket %d: handler failed", fd)
        return handled

    def close(self) -> None:
        """Stop watching (the sockets themselves belong to their owners)."""
        self.loop.remove_reader(self._poll.fileno())
        self._poll.close()
        self._handlers.clear()


class RtpSocket:
    """A bound UDP socket of a media stream, read through a `DatagramHub`."""

    def __init__(self, sock: socket.socket, port: int, hub: DatagramHub, handler: DatagramHandler,
                 allocator: PortAllocator | None = None, on_result: Callable[[object], None] | None = None) -> None:
        self.sock = sock
        self.port = port
        self.hub = hub
        self.send_failures = 0
        self._allocator = allocator
        self._closed = False
        hub.register(sock, handler, on_result)

    @classmethod
    def open_pair(cls, host: str, allocator: PortAllocator, hub: DatagramHub, on_rtp: DatagramHandler,
                  on_rtcp: DatagramHandler, on_result: Callable[[object], None] | None = None,
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
            return (cls(socks[0], port, hub, on_rtp, allocator, on_result),
                    cls(socks[1], port + 1, hub, on_rtcp, None, on_result))
        raise OSError(f"no bindable RTP/RTCP port pair on {host}: {last_error}")

    def sendto(self, data: bytes | memoryview, destination: Address) -> None:
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
        self.hub.unregister(self.sock)
        self.sock.close()
        if self._allocator is not None:
            self._allocator.release(self.port)
