"""The pool of local RTP ports (even numbers; the odd neighbour is kept for RTCP)."""

from __future__ import annotations

from collections import deque


class PortsExhausted(RuntimeError):
    """Every port of the range is in use."""


class PortAllocator:
    """Hands out even ports from [low, high], least recently used first."""

    def __init__(self, low: int, high: int) -> None:
        if not 0 < low <= high <= 65535:
            raise ValueError(f"bad RTP port range {low}-{high}")
        first = low + (low % 2)
        self._free: deque[int] = deque(range(first, high, 2))
        if not self._free:
            raise ValueError(f"RTP port range {low}-{high} holds no even/odd port pair")
        self._in_use: set[int] = set()

    def acquire(self) -> int:
        """Take a free port; raise PortsExhausted when there is none."""
        if not self._free:
            raise PortsExhausted("no free RTP port")
        port = self._free.popleft()
        self._in_use.add(port)
        return port

    def release(self, port: int) -> None:
        """Give a port back (to the end of the queue, so it rests before reuse)."""
        if port in self._in_use:
            self._in_use.discard(port)
            self._free.append(port)

    @property
    def available(self) -> int:
        """How many ports are free."""
        return len(self._free)
