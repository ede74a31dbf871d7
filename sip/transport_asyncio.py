"""The asyncio edge of the SIP stack: moves UDP datagrams between a socket and a sans-IO core.

It does nothing else: receive -> feed the core -> hand its events to the application -> transmit
-> re-arm the one timer. Any exception from the core or the application is logged, never raised
into the event loop.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Callable
from typing import Any, Protocol, cast

from .transactions import Address

logger = logging.getLogger(__name__)


class DatagramCore(Protocol):
    """What the edge drives: a sans-IO protocol core."""

    def receive_datagram(self, data: bytes, source: Address, now: float) -> None: ...

    def datagrams_to_send(self) -> list[tuple[bytes, Address]]: ...

    def get_timer(self) -> float | None: ...

    def handle_timer(self, now: float) -> None: ...

    def events(self) -> list[Any]: ...


class UdpEdge(asyncio.DatagramProtocol):
    """One UDP socket bound to a core; call `transmit()` after driving the core from outside."""

    def __init__(self, core: DatagramCore, on_event: Callable[[Any], None],
                 loop: asyncio.AbstractEventLoop | None = None) -> None:
        self.core = core
        self.on_event = on_event
        self.loop = loop or asyncio.get_running_loop()
        self.transport: asyncio.DatagramTransport | None = None
        self._timer: asyncio.TimerHandle | None = None
        self._timer_at: float | None = None

    @classmethod
    async def bind(cls, core: DatagramCore, host: str, port: int, on_event: Callable[[Any], None]) -> UdpEdge:
        """Bind a UDP socket at host:port and start serving `core` on it."""
        loop = asyncio.get_running_loop()
        edge = cls(core, on_event, loop)
        await loop.create_datagram_endpoint(lambda: edge, local_addr=(host, port))
        return edge

    @property
    def local_address(self) -> Address:
        """The bound (host, port)."""
        assert self.transport is not None
        host, port = self.transport.get_extra_info("sockname")[:2]
        return host, port

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        self.transport = cast(asyncio.DatagramTransport, transport)

    def datagram_received(self, data: bytes, addr: tuple[Any, ...]) -> None:
        try:
            self.core.receive_datagram(data, (addr[0], addr[1]), self.loop.time())
        except Exception:
            logger.exception("SIP core failed on a datagram from %s:%s", addr[0], addr[1])
        self.transmit()

    def error_received(self, exc: Exception) -> None:
        logger.debug("UDP error on the SIP socket: %s", exc)

    def transmit(self) -> None:
        """Deliver the core's events, send its datagrams and re-arm its timer."""
        for _ in range(100):
            events = self.core.events()
            if not events:
                break
            for event in events:
                try:
                    self.on_event(event)
                except Exception:
                    logger.exception("application failed handling %s", type(event).__name__)
        if self.transport is not None and not self.transport.is_closing():
            for data, destination in self.core.datagrams_to_send():
                self.transport.sendto(data, destination)
        self._rearm()

    def _rearm(self) -> None:
        deadline = self.core.get_timer()
        if deadline == self._timer_at:
            return
        if self._timer is not None:
            self._timer.cancel()
        self._timer_at = deadline
        self._timer = None if deadline is None else self.loop.call_at(deadline, self._on_timer, deadline)

    def _on_timer(self, deadline: float) -> None:
        self._timer = self._timer_at = None
        try:
            # asyncio may run a timer a hair before its deadline; never let the core see "not yet".
            self.core.handle_timer(max(self.loop.time(), deadline))
        except Exception:
            logger.exception("SIP core failed handling its timer")
        self.transmit()

    def close(self) -> None:
        """Stop the timer and close the socket."""
        if self._timer is not None:
            self._timer.cancel()
            self._timer = self._timer_at = None
        if self.transport is not None:
            self.transport.close()
