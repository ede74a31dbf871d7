"""Tests for mixer/clock.py: the absolute-deadline tick schedule in fake time."""

from __future__ import annotations

import pytest

from mixer.clock import TickClock

START = 1000.0
PERIOD = 0.020


def deadline(k: int) -> float:
    """Tick k's absolute deadline, computed as the clock does."""
    return START + k * PERIOD


def test_no_tick_before_the_first_deadline() -> None:
    clock = TickClock(START)
    assert clock.next_deadline == START
    assert clock.due(START - 1.0) == 0
    assert clock.due(START - 0.001) == 0
    assert clock.index == 0
    assert clock.stats.ticks == 0
    assert clock.due(START) == 1
    assert clock.next_deadline == deadline(1)


def test_one_tick_per_period_on_time() -> None:
    clock = TickClock(START)
    for k in range(100):
        assert clock.due(deadline(k)) == 1
        assert clock.due(deadline(k)) == 0  # called again at the same instant
        assert clock.due(deadline(k) + PERIOD / 2) == 0
    assert clock.index == 100
    assert clock.stats.ticks == 100
    assert clock.stats.late_ticks == 0
    assert clock.stats.skipped_ticks == 0
    assert clock.stats.max_lateness == 0.0


def test_deadlines_are_absolute() -> None:
    clock = TickClock(START)
    assert clock.due(deadline(0)) == 1
    assert clock.due(deadline(1) + 0.007) == 1  # 7 ms late
    assert clock.next_deadline == deadline(2)  # not deadline(2) + 0.007
    assert clock.due(deadline(2) - 0.001) == 0
    assert clock.due(deadline(2)) == 1
    assert clock.next_deadline == deadline(3)
    assert clock.stats.late_ticks == 0
    assert clock.stats.last_lateness == 0.0
    assert clock.stats.max_lateness == (deadline(1) + 0.007) - deadline(1)


def test_late_by_three_and_a_half_periods() -> None:
    clock = TickClock(START)
    assert clock.due(START) == 1
    now = deadline(1) + 3.5 * PERIOD
    assert clock.due(now) == 4
    assert clock.index == 5
    assert clock.next_deadline == deadline(5)
    assert clock.stats.ticks == 5
    assert clock.stats.late_ticks == 1
    assert clock.stats.skipped_ticks == 0
    assert clock.stats.last_lateness == now - deadline(1)
    assert clock.due(deadline(5)) == 1


def test_late_beyond_max_catch_up_skips() -> None:
    clock = TickClock(START, max_catch_up=5)
    now = START + 12.5 * PERIOD  # 13 ticks are due
    assert clock.due(now) == 5
    assert clock.stats.skipped_ticks == 8
    assert clock.stats.ticks == 5
    assert clock.stats.late_ticks == 1
    assert clock.index == 13
    assert clock.next_deadline == deadline(13)  # still on the original grid
    assert clock.due(deadline(13) - 0.001) == 0
    assert clock.due(deadline(13)) == 1
    assert clock.due(deadline(14) + 0.004) == 1
    assert clock.next_deadline == deadline(15)


def test_exactly_max_catch_up_is_not_skipping() -> None:
    clock = TickClock(START, max_catch_up=3)
    assert clock.due(START + 2.5 * PERIOD) == 3
    assert clock.stats.skipped_ticks == 0
    assert clock.next_deadline == deadline(3)


def test_lateness_statistics() -> None:
    clock = TickClock(START)
    assert clock.due(START + 0.005) == 1
    first = (START + 0.005) - START
    assert clock.stats.last_lateness == first
    assert clock.stats.max_lateness == first
    assert clock.due(deadline(1) + 0.002) == 1
    assert clock.stats.last_lateness == (deadline(1) + 0.002) - deadline(1)
    assert clock.stats.max_lateness == first
    assert clock.due(deadline(2) + 0.011) == 1
    assert clock.stats.max_lateness == (deadline(2) + 0.011) - deadline(2)
    assert clock.due(deadline(3)) == 1
    assert clock.stats.last_lateness == 0.0
    assert clock.stats.max_lateness == (deadline(2) + 0.011) - deadline(2)
    assert clock.stats.late_ticks == 0  # less than a period late is not a late tick


def test_early_call_leaves_statistics_alone() -> None:
    clock = TickClock(START)
    clock.due(START + 0.005)
    clock.due(START + 0.010)
    assert clock.stats.last_lateness == (START + 0.005) - START
    assert clock.stats.ticks == 1


@pytest.mark.parametrize(("period", "max_catch_up"), [(0.0, 5), (-0.02, 5), (0.02, 0), (0.02, -1)])
def test_invalid_arguments(period: float, max_catch_up: int) -> None:
    with pytest.raises(ValueError):
        TickClock(START, period, max_catch_up)


def test_custom_period() -> None:
    clock = TickClock(0.0, period=0.25, max_catch_up=2)
    assert clock.due(0.0) == 1
    assert clock.due(0.3) == 1
    assert clock.next_deadline == 0.5
    assert clock.due(2.0) == 2  # deadlines 0.5 .. 2.0 are due: 7 ticks, 5 skipped
    assert clock.stats.skipped_ticks == 5
    assert clock.next_deadline == 2.25
