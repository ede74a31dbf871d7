"""Tests for rtp/stream_table.py: the vectorised table behaves exactly like the per-stream reference forms.

The per-stream jitter buffer (`ByteStreamBuffer`) and RTCP reception statistics (`ReceptionStats`) are the
reference: every slot of the table, fed the same packets, must give the same frames, the same statistics
and the same report blocks, whatever the interleaving of slots and however many packets a tick carries.
"""

from __future__ import annotations

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from rtp.jitter import ByteStreamBuffer
from rtp.packet import RtpPacket
from rtp.rtcp import ReceptionStats
from rtp.stream_table import FRAME, HEADER_DTYPE, StreamTable

FILL = 0xFF


def new_table(slots: int) -> tuple[StreamTable, list[int]]:
    table = StreamTable(capacity=2)
    ids = [table.allocate(clock_rate=8000, frame_clock=160, fill=FILL, payload_type=0, ssrc=100 + n, sequence=0,
                          timestamp=0) for n in range(slots)]
    return table, ids


def reference_frame(buffer: ByteStreamBuffer) -> tuple[bytes, bool]:
    frame = buffer.pop()
    return (frame, True) if frame is not None else (bytes([FILL]) * FRAME, False)


Packet = tuple[int, int, int, bool, float, int]  # slot index, sequence, timestamp, marker, arrival, length


def run_both(slots: int, ticks: list[list[Packet]], raw_slots: tuple[int, ...] = (0, 1)) -> None:
    """Feed the same packets to the table and to per-stream references; compare every tick.

    Slots in `raw_slots` get whole packets (the session's fast path, headers read by the table), the others
    the parsed form."""
    table, ids = new_table(slots)
    buffers = [ByteStreamBuffer(8000, FRAME, FILL) for _ in range(slots)]
    stats = [ReceptionStats() for _ in range(slots)]
    for tick, packets in enumerate(ticks):
        for index, sequence, timestamp, marker, arrival, length in packets:
            payload = bytes((sequence + k) % 251 for k in range(length))
            if index in raw_slots:
                packet = RtpPacket(0, sequence, timestamp, 0x1234, payload, marker=marker).to_bytes()
                table.raw.append((ids[index], packet, arrival))
            else:
                table.pending.append((ids[index], sequence, timestamp, marker, arrival, payload))
            buffers[index].push(timestamp, payload, marker, arrival)
            stats[index].received(sequence, timestamp, arrival, 8000)
        table.ingest()
        codes, got = table.pop(np.array(ids, dtype=np.intp))
        for index in range(slots):
            expected, present = reference_frame(buffers[index])
            assert (codes[index].tobytes(), bool(got[index])) == (expected, present), (tick, index)
            reference = buffers[index]
            slot = ids[index]
            assert int(table.target_delay(np.array([slot]))[0]) == reference.target_delay
            assert table.jitter[slot] == pytest.approx(reference._jitter, rel=1e-12, abs=1e-9)
            for name in ("packets", "late", "duplicates", "underruns", "skipped_frames", "resyncs"):
                assert int(getattr(table, name)[slot]) == getattr(reference.stats, name), (name, tick, index)
            assert table.buffered(slot) == reference.buffered, (tick, index)
    for index in range(slots):
        reference_stats = stats[index]
        slot = ids[index]
        assert int(table.received[slot]) == reference_stats.received_count
        assert table.rx_jitter[slot] == pytest.approx(reference_stats.jitter, rel=1e-12, abs=1e-9)
        block = reference_stats.report_block(1, 0.0, None)
        ours = table.reception(slot, close_interval=True)
        assert (ours.fraction_lost, ours.packets_lost, ours.highest_sequence, ours.jitter) == (
            block.fraction_lost, block.packets_lost, block.highest_sequence, block.jitter)


def steady(count: int, *, ptime: int = 160, start_ts: int = 1000, start_seq: int = 0) -> list[list[Packet]]:
    return [[(0, (start_seq + n) & 0xFFFF, (start_ts + n * ptime) & 0xFFFF_FFFF, n == 0, n * ptime / 8000, ptime)]
            for n in range(count)]


def test_a_steady_stream_matches() -> None:
    run_both(1, steady(40))


@pytest.mark.parametrize("ptime", [80, 240, 320, 480])
def test_any_packet_time_matches(ptime: int) -> None:
    run_both(1, steady(40, ptime=ptime))


def test_wrapping_timestamps_and_sequence_numbers_match() -> None:
    run_both(1, steady(60, start_ts=2**32 - 800, start_seq=65530))


def test_a_timestamp_jump_and_a_talkspurt_match() -> None:
    ticks = steady(20)
    ticks += [[(0, 20 + n, 500_000 + 160 * n, n == 0, (20 + n) * 0.02, 160)] for n in range(20)]
    ticks += [[] for _ in range(10)]
    ticks += [[(0, 40 + n, 500_000 + 160 * (30 + n), n == 0, (50 + n) * 0.02, 160)] for n in range(20)]
    run_both(1, ticks)


tick_packets = st.lists(st.tuples(st.integers(0, 2), st.integers(0, 40), st.booleans(),
                                  st.floats(0, 0.08, allow_nan=False)), max_size=6)
SIZES = (160, 80, 240)


@settings(max_examples=300, deadline=None)
@given(st.lists(tick_packets, min_size=1, max_size=40), st.integers(0, 2**32 - 1), st.integers(0, 65535))
def test_any_interleaving_of_streams_matches(ticks: list[list[tuple[int, int, bool, float]]], base_ts: int,
                                             base_seq: int) -> None:
    # Each packet: slot, packet number (any order, repeats are duplicates), marker, arrival jitter. Slot k sends
    # packets of SIZES[k] ticks on their own grid, so packets never partly overlap (senders do not do that).
    fed = []
    for tick, packets in enumerate(ticks):
        fed.append([(slot, (base_seq + number) & 0xFFFF, (base_ts + SIZES[slot] * number) & 0xFFFF_FFFF, marker,
                     tick * 0.02 + delay, SIZES[slot]) for slot, number, marker, delay in packets])
    run_both(3, fed)


def test_a_packet_overlapping_another_is_written_over_it_not_dropped() -> None:
    table, (slot,) = new_table(1)
    table.pending += [(slot, 0, 0, False, 0.0, b"\x01" * 240), (slot, 1, 80, False, 0.0, b"\x02" * 240)]
    table.ingest()
    table.pop(np.array([slot]))  # primes at 0 with 320 buffered, plays [0, 160)
    codes, got = table.pop(np.array([slot]))
    assert got[0] and codes[0].tobytes() == b"\x02" * 160 and table.duplicates[slot] == 0


def test_stamped_headers_are_gapless_and_count_for_rtcp() -> None:
    table, (slot,) = new_table(1)
    table.payload_type[slot] = 8
    headers = [table.stamp_headers(np.array([slot]), np.array([160]), 0.02 * n)[0] for n in range(3)]
    assert headers[0]["marker_pt"] == 0x88 and all(h["marker_pt"] == 8 for h in headers[1:])
    assert [int(h["sequence"]) for h in headers] == [0, 1, 2]
    assert [int(h["timestamp"]) for h in headers] == [0, 160, 320]
    table.skip(np.array([slot]))
    after = table.stamp_headers(np.array([slot]), np.array([160]), 0.1)[0]
    assert after["marker_pt"] == 0x88 and int(after["timestamp"]) == 640
    assert after.tobytes()[:4] == bytes([0x80, 0x88, 0, 3]) and HEADER_DTYPE.itemsize == 12
    assert (int(table.packets_sent[slot]), int(table.octets_sent[slot])) == (4, 640)


def test_slots_are_reused_and_the_table_grows() -> None:
    table, ids = new_table(5)
    assert table.capacity >= 5 and len(set(ids)) == 5
    table.pending.append((ids[1], 0, 0, False, 0.0, b"x" * 160))
    table.release(ids[1])
    assert table.pending == []
    again = table.allocate(clock_rate=8000, frame_clock=160, fill=FILL, payload_type=0, ssrc=1, sequence=0, timestamp=0)
    assert again == ids[1] and table.packets[again] == 0


def test_one_frame_left_over_after_an_underrun_is_shed_once_the_jitter_settles() -> None:
    # Packet 10 comes a tick late (with 11): playout holds for a tick, and a whole extra frame stays buffered. Once
    # the jitter estimate has decayed (the late packet raised the target for about a second), it is shed.
    ticks: list[list[Packet]] = [[] for _ in range(150)]
    for n in range(150):
        arrival_tick = 11 if n == 10 else n
        ticks[arrival_tick].append((0, n, 1000 + 160 * n, n == 0, arrival_tick * 0.02, 160))
    run_both(1, ticks)
    table, (slot,) = new_table(1)
    left_over = []
    for packets in ticks:
        for _, sequence, timestamp, marker, arrival, length in packets:
            table.pending.append((slot, sequence, timestamp, marker, arrival, bytes(length)))
        table.ingest()
        table.pop(np.array([slot]))
        left_over.append(table.buffered(slot))
    assert left_over[9] == 0 and left_over[15] == FRAME, "a frame more than needed after the hold"
    assert table.underruns[slot] == 1 and table.skipped_frames[slot] == 1
    assert left_over.index(0, 15) <= 15 + 100, "shed within two seconds"
    assert left_over[-1] == 0, "back to playing each packet in the tick it arrives"
