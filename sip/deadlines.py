"""A set of keyed deadlines with one "when is the next one" answer, for sans-IO timer handling.

Each key has at most one live deadline; rescheduling leaves the old heap entry behind and it is
skipped when it surfaces (lazy deletion), so every operation is O(log n).
"""

from __future__ import annotations

import heapq
import itertools
from collections.abc import Hashable
from typing import Generic, TypeVar

K = TypeVar("K", bound=Hashable)


class DeadlineHeap(Generic[K]):
    """Keys with deadlines; `next_deadline()` and `pop_due(now)` in deadline order."""

    def __init__(self) -> None:
        self._heap: list[tuple[float, int, K]] = []
        self._live: dict[K, float] = {}
        self._counter = itertools.count()

    def schedule(self, key: K, deadline: float | None) -> None:
        """Set (or with None, clear) the deadline of `key`."""
        if deadline is None:
            self._live.pop(key, None)
            return
        if self._live.get(key) == deadline:
            return
        self._live[key] = deadline
        heapq.heappush(self._heap, (deadline, next(self._counter), key))

    def next_deadline(self) -> float | None:
        """The earliest live deadline, or None."""
        while self._heap:
            deadline, _, key = self._heap[0]
            if self._live.get(key) == deadline:
                return deadline
            heapq.heappop(self._heap)
        return None

    def pop_due(self, now: float) -> list[K]:
        """Remove and return every key whose deadline is at or before `now`, earliest first."""
        due: list[K] = []
        while self._heap and self._heap[0][0] <= now:
            deadline, _, key = heapq.heappop(self._heap)
            if self._live.get(key) == deadline:
                del self._live[key]
                due.append(key)
        return due

    def __contains__(self, key: object) -> bool:
        return key in self._live

    def __len__(self) -> int:
        return len(self._live)
