"""Transports as the sans-IO cores see them: every message comes from, and goes to, a `Peer`.

A peer is a transport name and an address. For TCP and TLS the address names a connection: the
asyncio edge keeps one per peer, reuses it both ways, and opens one when none exists.
"""

from __future__ import annotations

from dataclasses import dataclass

Address = tuple[str, int]
"""(host, port); IPv6 hosts without brackets."""

UDP = "UDP"
TCP = "TCP"
TLS = "TLS"
RELIABLE_TRANSPORTS = frozenset({TCP, TLS})

UDP_SIZE_LIMIT = 1300
"""RFC 3261 §18.1.1: a request larger than the path MTU less 200 bytes (1300 when unknown) goes over TCP."""


@dataclass(frozen=True)
class Peer:
    """Where a message came from or goes to."""

    transport: str
    address: Address

    @property
    def reliable(self) -> bool:
        """Whether the transport delivers by itself (no retransmission timers)."""
        return self.transport in RELIABLE_TRANSPORTS

    @property
    def host(self) -> str:
        """The host part of the address."""
        return self.address[0]

    def __str__(self) -> str:
        host = f"[{self.address[0]}]" if ":" in self.address[0] else self.address[0]
        return f"{self.transport.lower()}:{host}:{self.address[1]}"


def bracket(host: str) -> str:
    """A host as it appears in a URI or Via: IPv6 addresses in brackets."""
    return f"[{host}]" if ":" in host and not host.startswith("[") else host
