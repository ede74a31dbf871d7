"""RFC 3261 timer values (§17 and Table 4), configurable through T1, T2 and T4."""

from __future__ import annotations

from dataclasses import dataclass


@dataclass(frozen=True)
class TimerConfig:
    """T1 (round-trip estimate), T2 (maximum retransmit interval) and T4 (network lifetime), seconds."""

    t1: float = 0.5
    t2: float = 4.0
    t4: float = 5.0

    def __post_init__(self) -> None:
        if not 0 < self.t1 <= self.t2 or self.t4 <= 0:
            raise ValueError("timers need 0 < T1 <= T2 and T4 > 0")

    @property
    def transaction_timeout(self) -> float:
        """64*T1: Timers B, F, H, J (unreliable), L and M."""
        return 64 * self.t1

    def wait_for_response_retransmits(self, reliable: bool) -> float:
        """Timer D: how long an INVITE client stays Completed to absorb retransmitted final responses."""
        return 0.0 if reliable else max(32.0, self.transaction_timeout)
