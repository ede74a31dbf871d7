"""The mixer's tick schedule: absolute deadlines on a monotonic clock, lateness measured.

Tick k is due at `start + k * period`, so a late tick never shifts the ones after it (no drift).
When the process falls behind by several ticks it runs the missed ones back to back, up to
`max_catch_up`; beyond that the excess ticks are skipped and counted.
"""

from __future__ import annotations

import math
from dataclasses import dataclass


@dataclass
class ClockStats:
    """What the schedule has seen."""

    ticks: int = 0
    late_ticks: int = 0
    skipped_ticks: int = 0
    max_lateness: float = 0.0
    last_lateness: float = 0.0


class TickClock:
    """Absolute-deadline tick schedule; sans-IO, driven by the `now` it is given."""

    def __init__(self, start: float, period: float = 0.020, max_catch_up: int = 5) -> None:
        if period <= 0 or max_catch_up < 1:
            raise ValueError("period must be positive and max_catch_up at least 1")
        self.start = start
        self.period = period
        self.max_catch_up = max_catch_up
        self.index = 0
        self.stats = ClockStats()

    @property
    def next_deadline(self) -> float:
        """When the next tick is due."""
        return self.deadline(self.index)

    def deadline(self, index: int) -> float:
        """When tick `index` is (or was) due."""
        return self.start + index * self.period

    def due(self, now: float) -> int:
        """How many ticks to run at `now` (0 when early); the schedule advances past them."""
        lateness = now - self.next_deadline
        # Tick indices come from the grid itself, with a billionth of a tick of slack for float
        # rounding, so `now` landing exactly on a deadline always counts that tick.
        count = math.floor((now - self.start) / self.period + 1e-9) - self.index + 1
        if count <= 0:
            return 0
        if count > self.max_catch_up:
            self.stats.skipped_ticks += count - self.max_catch_up
            self.index += count - self.max_catch_up
            count = self.max_catch_up
        self.index += count
        self.stats.ticks += count
        lateness = max(lateness, 0.0)
        self.stats.last_lateness = lateness
        self.stats.max_lateness = max(self.stats.max_lateness, lateness)
        if lateness >= self.period:
            self.stats.late_ticks += 1
        return count
