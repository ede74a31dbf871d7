"""Tests for sip/scanner_guard.py: blocking hosts that keep hitting unknown users, on a fake clock."""

from __future__ import annotations

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from sip.scanner_guard import ScannerGuard

SCANNER = "198.51.100.7"
OTHER = "203.0.113.9"


def test_threshold_misses_inside_the_window_block() -> None:
    guard = ScannerGuard(threshold=3, window=10.0, block_for=60.0)
    assert guard.record_miss(SCANNER, 100.0) is False
    assert guard.record_miss(SCANNER, 104.0) is False
    assert not guard.is_blocked(SCANNER, 104.0)
    assert guard.record_miss(SCANNER, 109.9) is True
    assert guard.is_blocked(SCANNER, 109.9)
    assert guard.blocked_hosts(110.0) == [SCANNER]


def test_misses_spread_wider_than_the_window_never_block() -> None:
    guard = ScannerGuard(threshold=3, window=10.0, block_for=60.0)
    results = [guard.record_miss(SCANNER, 5.0 * step) for step in range(100)]
    assert results == [False] * 100
    assert not guard.is_blocked(SCANNER, 500.0)
    assert guard.blocked_hosts(500.0) == []


def test_a_miss_exactly_window_seconds_old_no_longer_counts() -> None:
    guard = ScannerGuard(threshold=3, window=10.0)
    assert [guard.record_miss(SCANNER, t) for t in (0.0, 5.0, 10.0)] == [False, False, False]
    assert guard.record_miss(SCANNER, 14.0) is True


def test_the_block_expires_after_block_for() -> None:
    guard = ScannerGuard(threshold=2, window=10.0, block_for=60.0)
    guard.record_miss(SCANNER, 0.0)
    assert guard.record_miss(SCANNER, 1.0) is True
    assert guard.is_blocked(SCANNER, 60.999)
    assert not guard.is_blocked(SCANNER, 61.0)
    assert len(guard) == 0
    assert guard.blocked_hosts(61.0) == []


def test_true_is_returned_once_per_block() -> None:
    guard = ScannerGuard(threshold=2, window=10.0, block_for=60.0)
    results = [guard.record_miss(SCANNER, float(t)) for t in range(10)]
    assert results == [False, True] + [False] * 8
    assert guard.is_blocked(SCANNER, 9.0)
    # After the block the count starts again from nothing, and a new block is reported again.
    assert guard.record_miss(SCANNER, 61.0) is False
    assert guard.record_miss(SCANNER, 62.0) is True
    assert guard.is_blocked(SCANNER, 121.9)


def test_hosts_are_independent() -> None:
    guard = ScannerGuard(threshold=2, window=10.0, block_for=60.0)
    assert guard.record_miss(SCANNER, 0.0) is False
    assert guard.record_miss(OTHER, 1.0) is False
    assert guard.record_miss(SCANNER, 2.0) is True
    assert guard.is_blocked(SCANNER, 3.0)
    assert not guard.is_blocked(OTHER, 3.0)
    assert guard.record_miss(OTHER, 30.0) is False
    assert guard.blocked_hosts(30.0) == [SCANNER]


def test_blocked_hosts_are_sorted_and_drop_expired_blocks() -> None:
    guard = ScannerGuard(threshold=1, block_for=10.0)
    assert guard.record_miss("192.0.2.2", 0.0) is True
    assert guard.record_miss("192.0.2.1", 5.0) is True
    assert guard.blocked_hosts(5.0) == ["192.0.2.1", "192.0.2.2"]
    assert guard.blocked_hosts(10.0) == ["192.0.2.1"]
    assert len(guard) == 1


def test_disabled_guard_never_blocks_and_remembers_nothing() -> None:
    guard = ScannerGuard(threshold=0)
    assert not any(guard.record_miss(SCANNER, float(t) / 100) for t in range(1000))
    assert not guard.is_blocked(SCANNER, 10.0)
    assert guard.blocked_hosts(10.0) == []
    assert len(guard) == 0


def test_memory_stays_bounded_with_many_hosts() -> None:
    guard = ScannerGuard(threshold=3, max_tracked=1000)
    for index in range(50000):
        guard.record_miss(f"10.{index >> 16}.{(index >> 8) & 255}.{index & 255}", float(index) / 1000)
    assert len(guard) == 1000


def test_the_least_recently_seen_host_is_dropped() -> None:
    guard = ScannerGuard(threshold=2, max_tracked=2)
    guard.record_miss("a", 0.0)
    guard.record_miss("b", 1.0)
    guard.record_miss("c", 2.0)  # drops a
    guard.record_miss("a", 3.0)  # a starts over; drops b
    assert guard.record_miss("c", 4.0) is True
    assert guard.record_miss("b", 5.0) is False
    assert len(guard) == 2


def test_a_blocked_host_that_keeps_knocking_stays_remembered() -> None:
    guard = ScannerGuard(threshold=1, max_tracked=2, block_for=100.0)
    assert guard.record_miss(SCANNER, 0.0) is True
    for step in range(1, 50):
        assert guard.is_blocked(SCANNER, float(step))
        guard.record_miss(f"192.0.2.{step}", float(step))
    assert guard.is_blocked(SCANNER, 50.0)


def test_bad_settings_are_refused() -> None:
    with pytest.raises(ValueError):
        ScannerGuard(threshold=-1)
    with pytest.raises(ValueError):
        ScannerGuard(window=0.0)
    with pytest.raises(ValueError):
        ScannerGuard(block_for=-1.0)
    with pytest.raises(ValueError):
        ScannerGuard(max_tracked=0)


@settings(max_examples=80, deadline=None)
@given(st.lists(st.floats(min_value=0.0, max_value=1.0), max_size=40))
def test_blocks_match_a_simple_model(gaps: list[float]) -> None:
    """Against a brute-force model: a miss blocks when it and the 3 unblocked misses before it span under 2 s."""
    guard = ScannerGuard(threshold=4, window=2.0, block_for=3.0)
    now = 0.0
    blocked_until = 0.0
    counted: list[float] = []
    for gap in gaps:
        now += gap
        expected = False
        if now >= blocked_until:
            counted.append(now)
            if len(counted) >= 4 and now - counted[-4] < 2.0:
                expected, blocked_until, counted = True, now + 3.0, []
        assert guard.record_miss(SCANNER, now) is expected
        assert guard.is_blocked(SCANNER, now) is (now < blocked_until)
