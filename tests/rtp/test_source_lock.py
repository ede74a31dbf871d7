"""Tests for rtp/source_lock.py: locking to the SDP address, latching behind NAT, SSRC changes, in fake time."""

from __future__ import annotations

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from rtp.packet import Address
from rtp.source_lock import GRACE, PROBATION, SourceLock, Verdict, is_reachable

PEER: Address = ("203.0.113.5", 40000)
ATTACKER: Address = ("198.51.100.66", 5555)
SAME_HOST_OTHER_PORT: Address = ("203.0.113.5", 40002)


@pytest.mark.parametrize(("sdp", "signalling", "reachable"), [
    ("203.0.113.5", "203.0.113.5", True),       # public and where the signalling came from
    ("203.0.113.5", "203.0.113.9", False),      # public, but another host than the signalling's
    ("10.0.0.7", "203.0.113.5", False),         # private: behind NAT
    ("192.168.1.20", "192.168.1.20", False),    # private even when it matches
    ("127.0.0.1", "127.0.0.1", True),           # all on one machine
    ("127.0.0.1", "203.0.113.5", False),        # a remote peer claiming our loopback
    ("2001:db8::1", "2001:db8::1", False),      # documentation range is not global
    ("2a00:1450::1", "2a00:1450::1", True),
    ("::1", "::1", True),
    ("not-an-ip", "203.0.113.5", False),
    ("203.0.113.5", None, False),
    ("203.0.113.5", "junk", False),
])
def test_is_reachable(sdp: str, signalling: str | None, reachable: bool) -> None:
    # 203.0.113.0/24 is TEST-NET-3, which ipaddress counts as non-global: use a real public address for the
    # positive cases.
    public = {"203.0.113.5": "8.8.4.4", "203.0.113.9": "8.8.8.8"}
    assert is_reachable(public.get(sdp, sdp), public.get(signalling, signalling) if signalling else None) == reachable


def test_locked_to_the_sdp_address_from_the_start() -> None:
    lock = SourceLock(locked_to=PEER, preferred_host=PEER[0], now=0.0)
    assert lock.locked
    assert not lock.source_allowed(ATTACKER)
    assert lock.source_allowed(PEER)
    assert lock.check(PEER, 7, 100, 0.0) is Verdict.ACCEPT
    assert lock.check(SAME_HOST_OTHER_PORT, 7, 101, 0.0) is Verdict.WRONG_SOURCE
    assert lock.drops[Verdict.WRONG_SOURCE] == 2


def test_latching_needs_probation_packets_in_sequence_then_locks() -> None:
    lock = SourceLock(locked_to=None, preferred_host=PEER[0], now=0.0)
    verdicts = [lock.check(PEER, 7, seq, 0.02 * seq) for seq in range(PROBATION)]
    assert verdicts[:-1] == [Verdict.LEARNING] * (PROBATION - 1) and verdicts[-1] is Verdict.ACCEPT
    assert lock.address == PEER and lock.ssrc == 7
    assert lock.check(ATTACKER, 7, PROBATION, 0.1) is Verdict.WRONG_SOURCE


def test_a_gap_or_another_source_restarts_probation() -> None:
    lock = SourceLock(locked_to=None, preferred_host=None, now=0.0)
    assert lock.check(PEER, 7, 1, 0.0) is Verdict.LEARNING
    assert lock.check(PEER, 7, 3, 0.0) is Verdict.LEARNING  # seq 2 missing: start again from 3
    assert lock.check(SAME_HOST_OTHER_PORT, 7, 4, 0.0) is Verdict.LEARNING
    assert lock.check(PEER, 7, 4, 0.0) is Verdict.LEARNING
    assert lock.check(PEER, 7, 4, 0.0) is Verdict.LEARNING  # a duplicate does not count
    assert lock.check(PEER, 7, 5, 0.0) is Verdict.LEARNING
    assert lock.check(PEER, 7, 6, 0.0) is Verdict.ACCEPT


def test_during_the_grace_only_the_signalling_host_may_latch() -> None:
    lock = SourceLock(locked_to=None, preferred_host=PEER[0], now=10.0)
    for seq in range(10):
        assert lock.check(ATTACKER, 9, seq, 10.0 + seq * 0.02) is Verdict.WRONG_SOURCE
    assert not lock.locked
    for seq in range(PROBATION):
        lock.check(SAME_HOST_OTHER_PORT, 5, seq, 10.3)
    assert lock.address == SAME_HOST_OTHER_PORT


def test_after_the_grace_another_host_may_latch() -> None:
    lock = SourceLock(locked_to=None, preferred_host=PEER[0], now=0.0)
    verdicts = [lock.check(ATTACKER, 9, seq, GRACE + 0.01 * seq) for seq in range(PROBATION)]
    assert verdicts[-1] is Verdict.ACCEPT and lock.address == ATTACKER


def test_a_new_ssrc_from_the_locked_address_is_dropped_until_it_proves_itself() -> None:
    lock = SourceLock(locked_to=PEER, preferred_host=PEER[0], now=0.0)
    assert lock.check(PEER, 1, 10, 0.0) is Verdict.ACCEPT
    verdicts = [lock.check(PEER, 2, 500 + n, 0.1) for n in range(PROBATION)]
    assert verdicts == [Verdict.WRONG_SSRC] * (PROBATION - 1) + [Verdict.ACCEPT]
    assert (lock.ssrc, lock.ssrc_changes) == (2, 1)
    assert lock.check(PEER, 1, 11, 0.2) is Verdict.WRONG_SSRC  # the old stream is now the stranger
    assert lock.drops[Verdict.WRONG_SSRC] == PROBATION


def test_interleaved_ssrcs_never_take_over() -> None:
    lock = SourceLock(locked_to=PEER, preferred_host=PEER[0], now=0.0)
    lock.check(PEER, 1, 0, 0.0)
    for n in range(1, 50):
        assert lock.check(PEER, 1, n, 0.0) is Verdict.ACCEPT
        assert lock.check(PEER, 2, 1000 + 2 * n, 0.0) is Verdict.WRONG_SSRC  # not in sequence
    assert lock.ssrc == 1


def test_relock_to_a_new_sdp_address_and_keeping_a_latch() -> None:
    lock = SourceLock(locked_to=None, preferred_host=PEER[0], now=0.0)
    for seq in range(PROBATION):
        lock.check(PEER, 7, seq, 0.0)
    lock.relock(locked_to=None, preferred_host=PEER[0], now=5.0)
    assert lock.address == PEER, "a re-INVITE from behind the same NAT keeps the latch"
    moved: Address = ("8.8.8.8", 6000)
    lock.relock(locked_to=moved, preferred_host=moved[0], now=6.0)
    assert lock.address == moved and not lock.source_allowed(PEER)


@settings(max_examples=300, deadline=None)
@given(st.lists(st.tuples(st.sampled_from([PEER, ATTACKER, SAME_HOST_OTHER_PORT]), st.integers(0, 3),
                          st.integers(0, 0xFFFF), st.floats(0, 5, allow_nan=False)), max_size=60))
def test_once_locked_the_address_never_changes_without_relock(packets: list[tuple[Address, int, int, float]]) -> None:
    lock = SourceLock(locked_to=None, preferred_host=PEER[0], now=0.0)
    latched: Address | None = None
    for source, ssrc, sequence, now in packets:
        verdict = lock.check(source, ssrc, sequence, now)
        if latched is not None:
            assert lock.address == latched
            assert verdict is not Verdict.ACCEPT or source == latched
        latched = lock.address
