"""Tests for rtp/ports.py: even RTP ports with room for the RTCP neighbour, LRU reuse and bad ranges."""

from __future__ import annotations

import pytest

from rtp.ports import PortAllocator, PortsExhausted


def acquire_all(allocator: PortAllocator) -> list[int]:
    """Acquire ports until the allocator is exhausted."""
    ports = []
    while allocator.available:
        ports.append(allocator.acquire())
    return ports


@pytest.mark.parametrize(("low", "high", "expected"), [
    (20000, 20009, [20000, 20002, 20004, 20006, 20008]),
    (20000, 20008, [20000, 20002, 20004, 20006]),  # 20008 has no odd neighbour in range
    (20001, 20010, [20002, 20004, 20006, 20008]),
    (20000, 20001, [20000]),
    (65534, 65535, [65534]),
])
def test_only_even_ports_with_odd_neighbour(low: int, high: int, expected: list[int]) -> None:
    allocator = PortAllocator(low, high)
    assert allocator.available == len(expected)
    ports = acquire_all(allocator)
    assert ports == expected
    assert all(port % 2 == 0 and low <= port and port + 1 <= high for port in ports)


def test_exhaustion() -> None:
    allocator = PortAllocator(20000, 20009)
    acquire_all(allocator)
    assert allocator.available == 0
    with pytest.raises(PortsExhausted):
        allocator.acquire()
    allocator.release(20004)
    assert allocator.acquire() == 20004
    with pytest.raises(PortsExhausted):
        allocator.acquire()


def test_release_puts_the_port_at_the_back() -> None:
    allocator = PortAllocator(20000, 20009)
    first = allocator.acquire()
    assert first == 20000
    allocator.release(first)
    assert allocator.available == 5
    assert [allocator.acquire() for _ in range(5)] == [20002, 20004, 20006, 20008, 20000]


def test_release_of_a_free_or_foreign_port_is_ignored() -> None:
    allocator = PortAllocator(20000, 20009)
    port = allocator.acquire()
    allocator.release(port)
    allocator.release(port)  # twice
    allocator.release(20002)  # never acquired
    allocator.release(30000)  # not ours
    assert allocator.available == 5
    assert sorted(acquire_all(allocator)) == [20000, 20002, 20004, 20006, 20008]


@pytest.mark.parametrize(("low", "high"), [
    (20010, 20000), (20001, 20001), (20000, 20000), (20001, 20002), (0, 100), (-2, 100), (65534, 65536),
])
def test_bad_ranges(low: int, high: int) -> None:
    with pytest.raises(ValueError):
        PortAllocator(low, high)
