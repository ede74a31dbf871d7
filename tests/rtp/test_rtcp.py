"""Tests for rtp/rtcp.py: RFC 3550 reception statistics, report scheduling and contents, RTT between two sessions."""

from __future__ import annotations

import functools
import heapq
import itertools
import random
import struct
from collections.abc import Callable

import pytest
from aiortc.rtp import (
    RtcpByePacket,
    RtcpPacket,
    RtcpReceiverInfo,
    RtcpRrPacket,
    RtcpSdesPacket,
    RtcpSenderInfo,
    RtcpSrPacket,
)
from hypothesis import given, settings
from hypothesis import strategies as st

from rtp.rtcp import (
    MIN_INTERVAL,
    NTP_EPOCH_OFFSET,
    ReceptionStats,
    RtcpSession,
    ntp_middle,
    ntp_timestamp,
    parse_compound,
)

RATE = 8000
WALLCLOCK = 1_700_000_000.0
"""Unix time at monotonic zero in these tests."""


def feed(stats: ReceptionStats, sequences: list[int], *, start_timestamp: int = 0) -> list[bool]:
    """Packets of a 20 ms stream arriving on time, in the given sequence-number order."""
    base = sequences[0]
    results = []
    for sequence in sequences:
        offset = (sequence - base) % 65536
        results.append(stats.received(sequence, start_timestamp + 160 * offset, 0.02 * offset, RATE))
    return results


def due(session: RtcpSession, wallclock_offset: float = WALLCLOCK) -> bytes:
    """Force the next report out by asking at the time it is due."""
    if session.next_report_at is None:
        session.report(0.0, wallclock_offset)
    assert session.next_report_at is not None
    now = session.next_report_at
    data = session.report(now, now + wallclock_offset)
    assert data is not None
    return data


# --- ReceptionStats: sequence numbers and loss (A.1, A.3) --------------------------------------------------------


def test_sequence_wrap_loss_and_reordering() -> None:
    stats = ReceptionStats()
    # 65530..65535, 0..9 with 65533, 2 and 3 lost, 5 before 4, and 7 duplicated
    order = [65530, 65531, 65532, 65534, 65535, 0, 1, 5, 4, 6, 7, 7, 8, 9]
    assert all(feed(stats, order))
    assert stats.cycles == 65536
    assert stats.extended_max == 65536 + 9
    assert stats.expected == 16
    assert stats.received_count == 14
    assert stats.lost == 2  # three lost, one duplicate: RFC 3550 counts duplicates as received
    block = stats.report_block(0xABCD, 10.0, None)
    assert (block.ssrc, block.highest_sequence, block.packets_lost) == (0xABCD, 65536 + 9, 2)
    assert block.fraction_lost == (2 << 8) // 16
    assert (block.lsr, block.dlsr) == (0, 0)


def test_fraction_lost_is_per_interval() -> None:
    stats = ReceptionStats()
    feed(stats, [sequence for sequence in range(100) if sequence % 4 != 3])  # 25 of 100 lost
    assert stats.report_block(1, 0.0, None).fraction_lost == (24 << 8) // 99  # 98 is the highest: 99 expected
    feed(stats, list(range(99, 200)))
    block = stats.report_block(1, 0.0, None)
    assert block.fraction_lost == 0
    assert block.packets_lost == 24
    assert stats.report_block(1, 0.0, None).fraction_lost == 0  # nothing expected in an empty interval


def test_duplicates_make_interval_loss_zero_not_negative() -> None:
    stats = ReceptionStats()
    feed(stats, [0, 1, 2, 3])
    stats.report_block(1, 0.0, None)
    feed(stats, [3, 3, 3, 4])
    block = stats.report_block(1, 0.0, None)
    assert block.fraction_lost == 0
    assert block.packets_lost == -3


def test_cumulative_loss_is_clamped_to_24_bits() -> None:
    stats = ReceptionStats()
    stats.received(0, 0, 0.0, RATE)
    for cycle in range(1, 200):  # far more than 2^23 packets lost, 2999 at a time
        stats.received((cycle * 2999) % 65536, 0, 0.0, RATE)
    assert stats.expected - stats.received_count > 2**19
    stats.cycles = 2**24
    assert stats.lost == 2**23 - 1
    block = stats.report_block(1, 0.0, None)
    assert block.packets_lost == 2**23 - 1
    assert RtcpReceiverInfo.parse(bytes(block)).packets_lost == 2**23 - 1


def test_wild_jump_needs_two_sequential_packets() -> None:
    stats = ReceptionStats()
    assert feed(stats, [100, 101, 102]) == [True] * 3
    assert stats.received(30000, 0, 1.0, RATE) is False
    assert stats.received(20000, 0, 1.0, RATE) is False
    assert stats.received(20001, 160, 1.02, RATE) is True  # the sender restarted: start over
    assert (stats.base_seq, stats.expected, stats.received_count, stats.lost) == (20001, 1, 1, 0)
    assert stats.received(20002, 320, 1.04, RATE) is True
    assert stats.lost == 0


def test_late_packet_within_misorder_is_counted() -> None:
    stats = ReceptionStats()
    feed(stats, list(range(1000, 1200)))
    assert stats.received(1150, 0, 5.0, RATE) is True
    assert stats.received(1000 - 200, 0, 5.0, RATE) is False  # too old: treated as a jump
    assert stats.extended_max == 1199


def test_report_block_lsr_and_dlsr() -> None:
    stats = ReceptionStats()
    feed(stats, [1, 2, 3])
    block = stats.report_block(7, 12.75, (0x12345678, 10.0))
    assert block.lsr == 0x12345678
    assert block.dlsr == int(2.75 * 65536)


# --- ReceptionStats: jitter (A.8) ----------------------------------------------------------------------------------


def test_constant_transit_has_no_jitter() -> None:
    stats = ReceptionStats()
    for index in range(200):
        stats.received(index, 1_000_000 + 160 * index, 3.7 + 0.02 * index, RATE)
    assert stats.jitter == pytest.approx(0.0, abs=1e-6)
    assert stats.jitter_ms == pytest.approx(0.0, abs=1e-6)


def test_alternating_transit_converges_to_the_transit_difference() -> None:
    stats = ReceptionStats()
    for index in range(300):
        stats.received(index, 160 * index, 0.02 * index + (0.01 if index % 2 else 0.0), RATE)
    # every |D| is 10 ms = 80 timestamp units, so J -> 80 (after n packets J = 80 (1 - (15/16)^(n-1)))
    assert stats.jitter == pytest.approx(80 * (1 - (15 / 16) ** 299), rel=1e-6)
    assert stats.jitter == pytest.approx(80, abs=1e-3)
    assert stats.jitter_ms == pytest.approx(10, abs=1e-3)
    block = stats.report_block(1, 0.0, None)
    assert block.jitter == 79


def test_jitter_ignores_timestamp_wrap() -> None:
    stats = ReceptionStats()
    for index in range(50):
        stats.received(index, (2**32 - 160 * 25 + 160 * index) % 2**32, 0.02 * index, RATE)
    assert stats.jitter == pytest.approx(0.0, abs=1e-6)


def test_jitter_first_step_matches_the_formula() -> None:
    stats = ReceptionStats()
    stats.received(0, 0, 0.0, RATE)
    stats.received(1, 160, 0.030, RATE)  # 10 ms late: D = 80
    assert stats.jitter == pytest.approx(80 / 16)
    stats.received(2, 320, 0.040, RATE)  # back on time: D = 80 again
    assert stats.jitter == pytest.approx(80 / 16 + (80 - 80 / 16) / 16)


# --- RtcpSession: report contents ----------------------------------------------------------------------------------


def test_ntp_helpers() -> None:
    ntp = ntp_timestamp(WALLCLOCK + 0.5)
    assert ntp >> 32 == int(WALLCLOCK) + NTP_EPOCH_OFFSET
    assert ntp & 0xFFFFFFFF == 2**31
    assert ntp_middle(ntp) == ((int(WALLCLOCK) + NTP_EPOCH_OFFSET) & 0xFFFF) << 16 | 0x8000


def test_receiver_only_sends_rr_with_sdes() -> None:
    session = RtcpSession(0x1111, "bridge@example.org", RATE, rng=random.Random(1))
    packets = RtcpPacket.parse(due(session))
    assert len(packets) == 2
    assert isinstance(packets[0], RtcpRrPacket)
    assert packets[0].ssrc == 0x1111
    assert packets[0].reports == []
    assert isinstance(packets[1], RtcpSdesPacket)
    assert packets[1].chunks[0].ssrc == 0x1111
    assert packets[1].chunks[0].items == [(1, b"bridge@example.org")]


def test_sender_report_fields() -> None:
    session = RtcpSession(0x2222, "c", RATE, rng=random.Random(2))
    assert session.report(100.0, WALLCLOCK + 100.0) is None
    for index in range(10):
        session.on_rtp_sent(5000 + 160 * index, 160, 100.0 + 0.02 * index)
    assert session.next_report_at is not None
    now = session.next_report_at
    packets = RtcpPacket.parse(session.report(now, WALLCLOCK + now) or b"")
    assert isinstance(packets[0], RtcpSrPacket)
    info = packets[0].sender_info
    assert (info.packet_count, info.octet_count) == (10, 1600)
    assert info.ntp_timestamp == ntp_timestamp(WALLCLOCK + now)
    assert info.rtp_timestamp == 5000 + 160 * 9 + round((now - (100.0 + 0.02 * 9)) * RATE)
    assert isinstance(packets[1], RtcpSdesPacket)
    # nothing sent since: the next one is an RR again
    assert isinstance(RtcpPacket.parse(due(session))[0], RtcpRrPacket)


def test_report_block_about_the_peer_only_when_heard_since_the_last_report() -> None:
    session = RtcpSession(1, "c", RATE, rng=random.Random(3))
    for index in range(5):
        session.on_rtp_received(0xFEED, index, 160 * index, 0.02 * index)
    first = RtcpPacket.parse(due(session))[0]
    assert isinstance(first, RtcpRrPacket)
    assert [(block.ssrc, block.highest_sequence) for block in first.reports] == [(0xFEED, 4)]
    second = RtcpPacket.parse(due(session))[0]
    assert isinstance(second, RtcpRrPacket)
    assert second.reports == []


def test_bye_is_rr_sdes_bye() -> None:
    session = RtcpSession(0x3333, "c", RATE)
    session.on_rtp_sent(0, 160, 1.0)
    packets = RtcpPacket.parse(session.bye(2.0))
    assert [type(packet) for packet in packets] == [RtcpRrPacket, RtcpSdesPacket, RtcpByePacket]
    assert isinstance(packets[2], RtcpByePacket)
    assert packets[2].sources == [0x3333]


def test_cname_length_is_checked() -> None:
    with pytest.raises(ValueError):
        RtcpSession(1, "", RATE)
    with pytest.raises(ValueError):
        RtcpSession(1, "x" * 256, RATE)


def test_new_peer_ssrc_starts_fresh_statistics() -> None:
    session = RtcpSession(1, "c", RATE)
    for index in range(10):
        session.on_rtp_received(0xAAAA, index * 2, 0, 0.0)
    assert session.packets_lost == 9
    session.on_rtp_received(0xBBBB, 500, 0, 1.0)
    assert (session.peer_ssrc, session.packets_received, session.packets_lost) == (0xBBBB, 1, 0)


# --- RtcpSession: scheduling ---------------------------------------------------------------------------------------


@pytest.mark.parametrize("seed", range(3))
def test_report_intervals(seed: int) -> None:
    session = RtcpSession(1, "c", RATE, rng=random.Random(seed))
    sent_at = []
    for tick in range(30_000):  # 5 minutes in 10 ms steps, media flowing both ways
        now = 5.0 + tick / 100
        if tick % 2 == 0:
            session.on_rtp_sent(80 * tick, 160, now)
            session.on_rtp_received(7, tick // 2, 80 * tick, now)
        if session.report(now, WALLCLOCK + now) is not None:
            sent_at.append(now)
    first, gaps = sent_at[0] - 5.0, [b - a for a, b in itertools.pairwise(sent_at)]
    assert 0.5 * MIN_INTERVAL / 2 <= first <= 1.5 * MIN_INTERVAL / 2 + 0.01
    assert all(0.5 * MIN_INTERVAL <= gap <= 1.5 * MIN_INTERVAL + 0.01 for gap in gaps)
    assert sum(gaps) / len(gaps) == pytest.approx(MIN_INTERVAL, rel=0.15)
    assert max(gaps) - min(gaps) > 1.0  # really randomised


def test_seeded_schedules_repeat() -> None:
    def schedule(seed: int) -> list[float]:
        session = RtcpSession(1, "c", RATE, rng=random.Random(seed))
        times = []
        for _ in range(10):
            due(session)
            assert session.next_report_at is not None
            times.append(session.next_report_at)
        return times

    assert schedule(42) == schedule(42)
    assert schedule(42) != schedule(43)


def test_many_members_stretch_the_interval() -> None:
    session = RtcpSession(1, "c", RATE, rng=random.Random(0), session_bandwidth=8000)
    for ssrc in range(2, 40):
        session.receive(bytes(RtcpRrPacket(ssrc=ssrc)), 0.0)
    intervals = [session.interval() for _ in range(100)]
    assert min(intervals) > MIN_INTERVAL * 0.5
    assert max(intervals) > MIN_INTERVAL * 1.5


# --- RtcpSession: two sessions in fake time --------------------------------------------------------------------------


class Network:
    """Two sessions, A and B, with a fixed one-way delay, driven in fake time with 20 ms media ticks."""

    def __init__(self, delay: float, *, a_sends: bool = True, b_sends: bool = True,
                 drop: Callable[[int], bool] = lambda sequence: False) -> None:
        self.delay = delay
        self.a = RtcpSession(0xA, "a@example.org", RATE, rng=random.Random(10))
        self.b = RtcpSession(0xB, "b@example.org", RATE, rng=random.Random(20))
        self.a_sends, self.b_sends, self.drop = a_sends, b_sends, drop
        self.queue: list[tuple[float, int, Callable[[float], object]]] = []
        self.counter = itertools.count()
        self.compounds: list[bytes] = []

    def send(self, at: float, deliver: Callable[[float], object]) -> None:
        """Deliver something to the other side after the one-way delay."""
        heapq.heappush(self.queue, (at + self.delay, next(self.counter), deliver))

    def run(self, seconds: float) -> None:
        """Run media and RTCP both ways for `seconds` of fake time."""
        for tick in range(round(seconds / 0.02)):
            now = tick * 0.02
            while self.queue and self.queue[0][0] <= now:
                at, _, deliver = heapq.heappop(self.queue)
                deliver(at)
            if self.a_sends:
                self.a.on_rtp_sent(160 * tick, 160, now)
                if not self.drop(tick):
                    self.send(now, functools.partial(self.b.on_rtp_received, 0xA, tick, 160 * tick))
            if self.b_sends:
                self.b.on_rtp_sent(160 * tick, 160, now)
                self.send(now, functools.partial(self.a.on_rtp_received, 0xB, tick, 160 * tick))
            # the two wall clocks disagree by a minute: RTT must not depend on them
            for session, peer, wallclock in ((self.a, self.b, WALLCLOCK), (self.b, self.a, WALLCLOCK + 60.0)):
                data = session.report(now, wallclock + now)
                if data is not None:
                    self.compounds.append(data)
                    self.send(now, functools.partial(peer.receive, data))


def test_rtt_from_sender_reports_both_ways() -> None:
    network = Network(0.040)
    network.run(30.0)
    assert network.a.rtt_ms == pytest.approx(80.0, abs=1.0)
    assert network.b.rtt_ms == pytest.approx(80.0, abs=1.0)
    assert network.a.remote_fraction_lost == network.b.remote_fraction_lost == 0.0
    assert network.a.remote_jitter_ms == pytest.approx(0.0, abs=0.2)
    assert network.a.packets_received > 1400
    assert network.a.packets_lost == 0
    assert network.a.jitter_ms == pytest.approx(0.0, abs=1e-6)
    assert network.a.malformed == network.b.malformed == 0


def test_rtt_from_a_receiver_report() -> None:
    network = Network(0.125, b_sends=False)
    network.run(20.0)
    assert network.a.rtt_ms == pytest.approx(250.0, abs=1.0)
    assert network.b.rtt_ms is None  # A never reports on B: B sent nothing
    assert network.a.remote_packets_lost == 0


def test_rtt_unknown_before_any_report() -> None:
    network = Network(0.05)
    network.run(1.0)
    assert network.a.rtt_ms is None
    assert network.a.remote_fraction_lost is None
    assert network.a.remote_jitter_ms is None


def test_peer_reports_our_loss() -> None:
    network = Network(0.02, drop=lambda sequence: sequence % 10 == 5)
    network.run(30.0)
    assert network.a.remote_fraction_lost == pytest.approx(0.1, abs=0.01)
    assert network.a.remote_packets_lost is not None
    assert 100 < network.a.remote_packets_lost <= network.b.packets_lost
    assert network.b.packets_lost == 150
    assert network.b.fraction_lost == pytest.approx(0.1, abs=0.01)


def test_every_compound_starts_with_sr_or_rr_and_carries_cname() -> None:
    network = Network(0.03, b_sends=False)
    network.run(60.0)
    assert len(network.compounds) > 15
    kinds = set()
    for data in network.compounds:
        packets = RtcpPacket.parse(data)
        assert isinstance(packets[0], RtcpSrPacket | RtcpRrPacket)
        kinds.add(type(packets[0]))
        sdes = [packet for packet in packets if isinstance(packet, RtcpSdesPacket)]
        assert len(sdes) == 1
        assert sdes[0].chunks[0].items[0][0] == 1
        assert len(data) % 4 == 0
    assert kinds == {RtcpSrPacket, RtcpRrPacket}


def test_lsr_of_an_unknown_report_is_ignored() -> None:
    session = RtcpSession(0xA, "a", RATE)
    block = RtcpReceiverInfo(ssrc=0xA, fraction_lost=0, packets_lost=0, highest_sequence=0, jitter=0,
                             lsr=0xDEADBEEF, dlsr=65536)
    assert session.receive(bytes(RtcpRrPacket(ssrc=0xB, reports=[block])), 3.0)
    assert session.rtt_ms is None
    assert session.remote_fraction_lost == 0.0


def test_reports_about_someone_else_are_ignored() -> None:
    session = RtcpSession(0xA, "a", RATE)
    block = RtcpReceiverInfo(ssrc=0xC, fraction_lost=128, packets_lost=5, highest_sequence=0, jitter=80, lsr=0,
                             dlsr=0)
    session.receive(bytes(RtcpRrPacket(ssrc=0xB, reports=[block])), 3.0)
    assert session.remote_fraction_lost is None


def test_peer_bye() -> None:
    session = RtcpSession(0xA, "a", RATE)
    session.on_rtp_received(0xB, 1, 0, 0.0)
    packets = session.receive(bytes(RtcpRrPacket(ssrc=0xB)) + bytes(RtcpByePacket(sources=[0xB])), 1.0)
    assert len(packets) == 2
    assert session.bye_received


# --- RtcpSession: malformed input ----------------------------------------------------------------------------------

SR = bytes(RtcpSrPacket(ssrc=5, sender_info=RtcpSenderInfo(ntp_timestamp=1 << 32, rtp_timestamp=0, packet_count=1,
                                                           octet_count=160)))


@pytest.mark.parametrize("data", [
    b"",
    b"\x80",
    b"\x80\xc9\x00",
    b"\x40\xc9\x00\x01\x00\x00\x00\x01",  # version 1
    b"\x80\xc9\x00\x05\x00\x00\x00\x01",  # length beyond the datagram
    b"\x81\xc9\x00\x01\x00\x00\x00\x01",  # one report block announced, none present
    SR[:-4],
    SR + b"\x80",
    b"\xa0\xc9\x00\x01\x00\x00\x00\x00",  # padding count 0
    b"\x81\xca\x00\x02\x00\x00\x00\x01\x01\x05ab",  # SDES item longer than the chunk
])
def test_malformed_rtcp_is_counted_and_ignored(data: bytes) -> None:
    session = RtcpSession(0xA, "a", RATE)
    assert session.receive(data, 1.0) == []
    assert session.malformed == 1
    assert session.rtt_ms is None
    assert session.reports_received == 0


def test_unknown_packet_types_are_skipped() -> None:
    session = RtcpSession(0xA, "a", RATE)
    app = b"\x80\xcc\x00\x02" + struct.pack("!I", 5) + b"NAME"
    packets = session.receive(SR + app, 1.0)
    assert [type(packet) for packet in packets] == [RtcpSrPacket]
    assert session.malformed == 0


def test_sdes_aiortc_cannot_read_does_not_void_the_compound() -> None:
    """Two RFC-correct SDES chunks (each padded to 32 bits) trip aiortc's parser; the SR beside them still counts."""
    chunks = struct.pack("!I", 1) + b"\x01\x03abc\x00\x00\x00" + struct.pack("!I", 2) + b"\x01\x03xyz\x00\x00\x00"
    sdes = struct.pack("!BBH", 0x82, 202, len(chunks) // 4) + chunks
    with pytest.raises(ValueError):
        RtcpPacket.parse(sdes)
    session = RtcpSession(0xA, "a", RATE)
    packets = session.receive(SR + sdes, 1.0)
    assert [type(packet) for packet in packets] == [RtcpSrPacket]
    assert session.malformed == 0


def test_parse_compound_refuses_a_broken_report_next_to_sdes() -> None:
    with pytest.raises(ValueError):
        parse_compound(bytes(RtcpSdesPacket()) + b"\x81\xc9\x00\x01\x00\x00\x00\x01")
    assert parse_compound(SR) == RtcpPacket.parse(SR)


@settings(max_examples=500, deadline=None)
@given(st.binary(max_size=200))
def test_receive_never_raises(data: bytes) -> None:
    session = RtcpSession(0xA, "a", RATE)
    session.receive(data, 1.0)
    assert session.malformed + session.reports_received == 1


@settings(max_examples=500, deadline=None)
@given(st.integers(0, 31), st.integers(192, 223), st.integers(0, 20), st.binary(max_size=120), st.booleans())
def test_receive_never_raises_on_plausible_headers(count: int, packet_type: int, length: int, body: bytes,
                                                   padding: bool) -> None:
    session = RtcpSession(0xA, "a", RATE)
    header = struct.pack("!BBH", 0x80 | (0x20 if padding else 0) | count, packet_type, length)
    session.receive(SR + header + body, 1.0)
    session.receive(header + body, 1.0)
    assert session.malformed + session.reports_received == 2
