"""The adaptive jitter buffers in fake time: order, duplicates, loss, wrap-around, jumps, talkspurts,
growing with a late stream, shrinking back, and any packet time."""

from __future__ import annotations

from collections.abc import Iterator

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from rtp.jitter import ByteStreamBuffer, PacketBuffer

FRAME = 160
RATE = 8000
TICK = 0.020


def payload(number: int, size: int = FRAME) -> bytes:
    """A payload whose bytes name its packet, so the order of playout can be read back."""
    return bytes([number % 251]) * size


def play(buffer: ByteStreamBuffer, ticks: int) -> list[int | None]:
    """Pop `ticks` frames; each frame's first byte (the packet number) or None."""
    out: list[int | None] = []
    for _ in range(ticks):
        frame = buffer.pop()
        out.append(None if frame is None else frame[0])
    return out


def feed(buffer: ByteStreamBuffer, numbers: list[int], base: int = 0, start: float = 0.0) -> None:
    """Push packets 0..n in the given order, each arriving on time for its timestamp."""
    for n in numbers:
        buffer.push((base + n * FRAME) % 2**32, payload(n), False, start + n * TICK)


def new_buffer(**kwargs: float) -> ByteStreamBuffer:
    return ByteStreamBuffer(RATE, FRAME, 0xFF, **kwargs)


def test_in_order_stream_plays_in_order_after_the_target_delay() -> None:
    buffer = new_buffer(min_delay=0.040)
    feed(buffer, [0])
    assert buffer.pop() is None, "20 ms buffered is less than the 40 ms target"
    feed(buffer, [1, 2, 3])
    assert play(buffer, 4) == [0, 1, 2, 3]
    assert buffer.stats.late == 0 and buffer.stats.duplicates == 0


def test_reordered_packets_play_in_timestamp_order() -> None:
    buffer = new_buffer()
    feed(buffer, [1, 0, 3, 2, 5, 4])
    assert play(buffer, 6) == [0, 1, 2, 3, 4, 5]


def test_duplicates_are_dropped_and_counted() -> None:
    buffer = new_buffer()
    feed(buffer, [0, 1, 1, 2, 2, 2])
    assert play(buffer, 3) == [0, 1, 2]
    assert buffer.stats.duplicates == 3


def test_a_lost_packet_is_a_gap_and_the_stream_goes_on() -> None:
    buffer = new_buffer()
    feed(buffer, [0, 1, 3, 4])
    assert play(buffer, 5) == [0, 1, None, 3, 4]


def test_a_packet_after_its_playout_time_is_dropped_as_late() -> None:
    buffer = new_buffer()
    feed(buffer, [0, 1, 2, 3])
    assert play(buffer, 3) == [0, 1, 2]
    feed(buffer, [1])
    assert buffer.stats.late == 1
    assert play(buffer, 1) == [3]


def test_timestamps_wrap_around_without_a_hiccup() -> None:
    buffer = new_buffer()
    base = 2**32 - 3 * FRAME
    feed(buffer, list(range(8)), base=base)
    assert play(buffer, 8) == list(range(8))


def test_a_timestamp_jump_restarts_playout() -> None:
    buffer = new_buffer()
    feed(buffer, [0, 1, 2])
    assert play(buffer, 2) == [0, 1]
    feed(buffer, [500, 501, 502], start=0.06 - 500 * TICK)
    assert buffer.stats.resyncs == 1
    assert play(buffer, 3) == [500 % 251, 501 % 251, 502 % 251]


@pytest.mark.parametrize("ptime_samples", [80, 240, 480])
def test_any_packet_time_comes_out_as_exact_frames(ptime_samples: int) -> None:
    buffer = new_buffer(min_delay=0.060)
    data = bytes(range(256)) * 40
    frames: list[bytes] = []
    sent = 0
    for tick in range(40):
        while sent + ptime_samples <= (tick + 1) * FRAME and sent < 4800:  # what has arrived by this tick
            buffer.push(sent, data[sent : sent + ptime_samples], False, (sent + ptime_samples) / RATE)
            sent += ptime_samples
        frame = buffer.pop()
        if frame is not None:
            assert len(frame) == FRAME
            frames.append(frame)
    assert b"".join(frames) == data[:4800], "every byte played once, in order, with no gap"


def test_a_late_stream_is_held_not_discarded_so_the_delay_grows() -> None:
    buffer = new_buffer()
    feed(buffer, [0, 1, 2])
    assert play(buffer, 3) == [0, 1, 2]
    assert play(buffer, 2) == [None, None], "nothing arrived: underrun"
    assert buffer.stats.underruns == 1
    # Packets 3 and 4 arrive 40 ms late: they are played, not dropped as late.
    feed(buffer, [3, 4], start=0.040)
    assert play(buffer, 2) == [3, 4]
    assert buffer.stats.late == 0


def test_marker_bit_after_silence_restarts_at_the_new_talkspurt() -> None:
    buffer = new_buffer()
    feed(buffer, [0, 1])
    assert play(buffer, 4) == [0, 1, None, None]
    # 30 frames of silence later (timestamps moved on), a talkspurt starts with the marker bit.
    for n in range(30, 34):
        buffer.push(n * FRAME, payload(n), n == 30, n * TICK)
    assert buffer.stats.resyncs == 1
    assert play(buffer, 4) == [30, 31, 32, 33]


def test_excess_delay_shrinks_back_by_skipping_a_frame() -> None:
    buffer = new_buffer()
    feed(buffer, list(range(10)))  # a burst: 200 ms buffered at once, far above the 20 ms target
    played = []
    for n in range(10, 140):  # then one packet per tick
        feed(buffer, [n], start=0.0)
        played.append(buffer.pop())
    assert buffer.stats.skipped_frames >= 1
    assert buffer.delay_ms <= 1000 * (buffer.target_delay + 2 * FRAME) / RATE, "back near the target"
    assert None not in played, "shrinking skips audio, it does not leave gaps"


def test_jitter_estimate_follows_arrival_variation() -> None:
    steady, jittery = new_buffer(), new_buffer()
    for n in range(200):
        steady.push(n * FRAME, payload(n), False, n * TICK)
        jittery.push(n * FRAME, payload(n), False, n * TICK + (0.015 if n % 2 else 0.0))
        steady.pop()
        jittery.pop()
    assert steady.jitter_ms < 1.0
    assert 10.0 < jittery.jitter_ms < 20.0
    assert jittery.target_delay > steady.target_delay


def packet_windows(buffer: PacketBuffer, ticks: int) -> Iterator[list[bytes] | None]:
    for _ in range(ticks):
        yield buffer.pop()


def test_packet_buffer_hands_out_packets_by_their_start_and_offers_the_next_for_fec() -> None:
    buffer = PacketBuffer(48000, 960)
    for n in (0, 1, 3, 4):
        buffer.push(n * 960, bytes([n]), 960, False, n * TICK)
    windows = list(packet_windows(buffer, 2))
    assert windows == [[b"\x00"], [b"\x01"]]
    assert buffer.pop() == [], "packet 2 is missing"
    assert buffer.upcoming() == b"\x03", "the packet after the gap is there for in-band FEC"
    assert buffer.pop() == [b"\x03"]


def test_packet_buffer_with_40_ms_packets_gives_every_other_window_empty() -> None:
    buffer = PacketBuffer(48000, 960)
    for n in range(4):
        buffer.push(n * 1920, bytes([n]), 1920, False, n * 0.040)
    assert list(packet_windows(buffer, 6)) == [[b"\x00"], [], [b"\x01"], [], [b"\x02"], []]


@settings(max_examples=150, deadline=None)
@given(order=st.permutations(list(range(12))), duplicates=st.lists(st.integers(0, 11), max_size=5),
       base=st.integers(0, 2**32 - 1))
def test_any_arrival_order_within_the_delay_plays_every_packet_once_in_order(order: list[int], duplicates: list[int],
                                                                           base: int) -> None:
    buffer = new_buffer(min_delay=0.200, max_delay=0.400)
    for n in order + duplicates:  # pushed out of order, each stamped with its nominal arrival time
        buffer.push((base + n * FRAME) % 2**32, payload(n), False, n * TICK)
    assert play(buffer, 12) == list(range(12))
    assert buffer.stats.duplicates == len(duplicates)
