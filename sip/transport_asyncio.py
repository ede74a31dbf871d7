"""The asyncio edge of the SIP stack: UDP, TCP and TLS sockets for one sans-IO core.

It only moves bytes: datagrams and framed stream messages go into `core.receive(data, peer, now)`;
`transmit()` hands the core's events to the application, writes its messages (reusing the stream
connection to a peer, or opening one), and re-arms the core's one timer. Stream connections are
capped in number, closed when idle, and closed after a framing error. No exception from the core or
the application reaches the event loop.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import socket
import ssl
from collections.abc import Callable
from typing import Any, Protocol, cast

from .framing import PONG, FramedMessage, FramingError, KeepAlive, StreamFramer
from .transport import TCP, TLS, UDP, Address, Peer

logger = logging.getLogger(__name__)

MAX_WRITE_BUFFER = 1 << 20
UDP_RECEIVE_BUFFER = 4 << 20
"""Bytes the kernel may hold for the SIP UDP socket (capped by net.core.rmem_max)."""


class SipCore(Protocol):
    """What the edge drives: the user agent core."""

    def receive(self, data: bytes, source: Peer, now: float) -> None: ...

    def messages_to_send(self) -> list[tuple[bytes, Peer]]: ...

    def get_timer(self) -> float | None: ...

    def handle_timer(self, now: float) -> None: ...

    def events(self) -> list[Any]: ...

    def transport_failed(self, peer: Peer, now: float) -> None: ...

    def answer_framing_error(self, head: bytes, status_code: int, reason: str, source: Peer) -> None: ...


class SipEdge:
    """The sockets of one SIP core."""

    def __init__(self, core: SipCore, on_event: Callable[[Any], None], *, idle_timeout: float = 600.0,
                 max_connections: int = 1024, max_header_bytes: int = 16384, max_body_bytes: int = 65536,
                 client_ssl: ssl.SSLContext | None = None) -> None:
        self.core = core
        self.on_event = on_event
        self.loop = asyncio.get_running_loop()
        self.idle_timeout = idle_timeout
        self.max_connections = max_connections
        self.framer_limits = (max_header_bytes, max_body_bytes)
        self.client_ssl = client_ssl
        self.local: dict[str, Address] = {}
        self._udp: asyncio.DatagramTransport | None = None
        self._servers: list[asyncio.Server] = []
        self._connections: dict[Peer, _StreamConnection] = {}
        self._connecting: dict[Peer, list[bytes]] = {}
        self._timer: asyncio.TimerHandle | None = None
        self._timer_at: float | None = None
        self._sweeper: asyncio.TimerHandle | None = None
        self._closed = False

    # -- listening --------------------------------------------------------------------------------

    async def listen_udp(self, host: str, port: int) -> int:
        """Receive datagrams on host:port; returns the bound port."""
        transport, _ = await self.loop.create_datagram_endpoint(lambda: _Datagrams(self), local_addr=(host, port))
        sock = transport.get_extra_info("socket")
        if sock is not None:  # a burst of requests waits in the kernel rather than being dropped there
            with contextlib.suppress(OSError):
                sock.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, UDP_RECEIVE_BUFFER)
        self._udp = transport
        self.local[UDP] = self._udp.get_extra_info("sockname")[:2]
        return self.local[UDP][1]

    async def listen_udp_and_tcp(self, host: str, port: int, attempts: int = 20) -> int:
        """Listen for datagrams and streams on one port; with port 0, on one that is free for both."""
        for _ in range(attempts if port == 0 else 1):
            bound = await self.listen_udp(host, port)
            try:
                await self.listen_tcp(host, bound)
            except OSError:
                if port != 0:
                    raise
                assert self._udp is not None
                self._udp.close()
                self._udp = None
                continue
            return bound
        raise OSError(f"no port on {host} is free for both UDP and TCP")

    async def listen_tcp(self, host: str, port: int) -> int:
        """Accept TCP connections on host:port; returns the bound port."""
        return await self._listen(TCP, host, port, None)

    async def listen_tls(self, host: str, port: int, context: ssl.SSLContext) -> int:
        """Accept TLS connections on host:port; returns the bound port."""
        return await self._listen(TLS, host, port, context)

    async def _listen(self, transport: str, host: str, port: int, context: ssl.SSLContext | None) -> int:
        server = await self.loop.create_server(lambda: _StreamConnection(self, transport), host, port, ssl=context)
        self._servers.append(server)
        self.local[transport] = server.sockets[0].getsockname()[:2]
        self._schedule_sweep()
        return self.local[transport][1]

    @property
    def connection_count(self) -> int:
        """Open stream connections."""
        return len(self._connections)

    # -- input ------------------------------------------------------------------------------------

    def received(self, data: bytes, source: Peer) -> None:
        """Feed one message to the core and transmit what follows."""
        try:
            self.core.receive(data, source, self.loop.time())
        except Exception:
            logger.exception("SIP core failed on a message from %s", source)
        self.transmit()

    def framing_failed(self, error: FramingError, source: Peer) -> None:
        """Answer a stream that cannot be framed, if its header section allows."""
        logger.info("closing %s: %s", source, error.reason)
        try:
            self.core.answer_framing_error(error.head, error.status_code, error.reason, source)
        except Exception:
            logger.exception("SIP core failed answering a framing error from %s", source)
        self.transmit()

    # -- output -----------------------------------------------------------------------------------

    def transmit(self) -> None:
        """Deliver the core's events, send its messages and re-arm its timer."""
        for _ in range(100):
            events = self.core.events()
            if not events:
                break
            for event in events:
                try:
                    self.on_event(event)
                except Exception:
                    logger.exception("application failed handling %s", type(event).__name__)
        if self._closed:
            return
        for data, peer in self.core.messages_to_send():
            if peer.transport == UDP:
                if self._udp is not None and not self._udp.is_closing():
                    self._udp.sendto(data, peer.address)
            else:
                self._send_stream(data, peer)
        self._rearm()

    def _send_stream(self, data: bytes, peer: Peer) -> None:
        connection = self._connections.get(peer)
        if connection is not None:
            connection.send(data)
        elif peer in self._connecting:
            self._connecting[peer].append(data)
        else:
            self._connecting[peer] = [data]
            self.loop.create_task(self._connect(peer))

    async def _connect(self, peer: Peer) -> None:
        context = None
        if peer.transport == TLS:
            context = self.client_ssl or ssl.create_default_context()
        try:
            _, protocol = await self.loop.create_connection(lambda: _StreamConnection(self, peer.transport, peer),
                                                            peer.address[0], peer.address[1], ssl=context)
        except OSError as exc:
            logger.info("cannot connect to %s: %s", peer, exc)
            self._connecting.pop(peer, None)
            try:
                self.core.transport_failed(peer, self.loop.time())
            except Exception:
                logger.exception("SIP core failed on a transport error for %s", peer)
            self.transmit()
            return
        for data in self._connecting.pop(peer, []):
            protocol.send(data)

    # -- timers -----------------------------------------------------------------------------------

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

    def _schedule_sweep(self) -> None:
        if self._sweeper is None and not self._closed:
            self._sweeper = self.loop.call_later(min(30.0, self.idle_timeout / 4), self._sweep)

    def _sweep(self) -> None:
        self._sweeper = None
        limit = self.loop.time() - self.idle_timeout
        for connection in list(self._connections.values()):
            if connection.last_activity < limit:
                logger.info("closing idle connection %s", connection.peer)
                connection.close()
        self._schedule_sweep()

    # -- connections ------------------------------------------------------------------------------

    def register(self, connection: _StreamConnection) -> bool:
        """A stream connection is up; False when it must be refused (too many)."""
        if len(self._connections) >= self.max_connections or self._closed:
            logger.warning("refusing %s: %d connections open", connection.peer, len(self._connections))
            return False
        previous = self._connections.get(connection.peer)
        if previous is not None and previous is not connection:
            previous.close()
        self._connections[connection.peer] = connection
        return True

    def unregister(self, connection: _StreamConnection) -> None:
        """A stream connection is gone."""
        if self._connections.get(connection.peer) is connection:
            del self._connections[connection.peer]

    def close(self) -> None:
        """Close every socket and stop every timer."""
        self._closed = True
        for handle in (self._timer, self._sweeper):
            if handle is not None:
                handle.cancel()
        self._timer = self._timer_at = self._sweeper = None
        if self._udp is not None:
            self._udp.close()
        for server in self._servers:
            server.close()
        for connection in list(self._connections.values()):
            connection.close()


class _Datagrams(asyncio.DatagramProtocol):
    """The UDP socket."""

    def __init__(self, edge: SipEdge) -> None:
        self.edge = edge

    def datagram_received(self, data: bytes, addr: tuple[Any, ...]) -> None:
        self.edge.received(data, Peer(UDP, (addr[0], addr[1])))

    def error_received(self, exc: Exception) -> None:
        logger.debug("UDP error on the SIP socket: %s", exc)


class _StreamConnection(asyncio.Protocol):
    """One TCP or TLS connection, accepted or opened by us."""

    def __init__(self, edge: SipEdge, transport_name: str, peer: Peer | None = None) -> None:
        self.edge = edge
        self.transport_name = transport_name
        self.peer = peer or Peer(transport_name, ("", 0))
        self.framer = StreamFramer(*edge.framer_limits)
        self.transport: asyncio.Transport | None = None
        self.last_activity = edge.loop.time()

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        self.transport = cast(asyncio.Transport, transport)
        remote = transport.get_extra_info("peername")
        self.peer = Peer(self.transport_name, (remote[0], remote[1]))
        if not self.edge.register(self):
            self.transport.close()

    def data_received(self, data: bytes) -> None:
        self.last_activity = self.edge.loop.time()
        for item in self.framer.feed(data):
            if isinstance(item, FramedMessage):
                self.edge.received(item.data, self.peer)
            elif isinstance(item, KeepAlive):
                self.send(PONG)
            else:
                self.edge.framing_failed(item, self.peer)
                self.close()
                return

    def send(self, data: bytes) -> None:
        if self.transport is None or self.transport.is_closing():
            return
        if self.transport.get_write_buffer_size() > MAX_WRITE_BUFFER:
            logger.warning("closing %s: it does not read what we send", self.peer)
            self.close()
            return
        self.last_activity = self.edge.loop.time()
        self.transport.write(data)

    def close(self) -> None:
        if self.transport is not None:
            self.transport.close()

    def connection_lost(self, exc: Exception | None) -> None:
        self.edge.unregister(self)
