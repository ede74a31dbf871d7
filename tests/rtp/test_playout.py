"""Tests for rtp/playout.py: ordering, priming, loss, lateness, duplicates, wrap-around, jumps and overflow."""

from __future__ import annotations

import pytest

from rtp.playout import PlayoutBuffer

FRAME = 160


def make_buffer(**options: int) -> PlayoutBuffer:
    """The buffer a 20 ms μ-law session uses."""
    return PlayoutBuffer(frame_samples=FRAME, silence=0xFF, **options)


def payload(number: int, samples: int = FRAME) -> bytes:
    """A payload whose every byte is the packet number (so playout order can be read back)."""
    return bytes([number % 256]) * samples


def push_packet(buffer: PlayoutBuffer, number: int, base: int = 0) -> None:
    """Push 20 ms packet `number` of a stream whose first timestamp is `base`."""
    buffer.push((base + number * FRAME) % 2**32, payload(number))


def test_priming_then_in_order() -> None:
    buffer = make_buffer()
    assert buffer.pop() is None  # nothing at all
    push_packet(buffer, 0)
    assert buffer.pop() is None  # 160 samples buffered, 320 needed
    assert buffer.pop() is None
    push_packet(buffer, 1)
    played = []
    for number in range(2, 30):
        played.append(buffer.pop())
        push_packet(buffer, number)
    played.extend([buffer.pop(), buffer.pop()])
    assert played == [payload(n) for n in range(30)]
    assert buffer.pop() is None
    assert (buffer.late, buffer.duplicates, buffer.overflows) == (0, 0, 0)


def test_reordered_neighbours_play_in_timestamp_order() -> None:
    buffer = make_buffer()
    order = [1, 0, 3, 2, 5, 4, 7, 6, 9, 8, 11, 10]
    played = []
    for index in range(0, len(order), 2):
        push_packet(buffer, order[index])
        push_packet(buffer, order[index + 1])
        played.extend([buffer.pop(), buffer.pop()])
    played.extend([buffer.pop(), buffer.pop()])
    assert [frame for frame in played if frame is not None] == [payload(n) for n in range(12)]
    assert (buffer.late, buffer.duplicates) == (0, 0)


def test_first_packets_reordered_before_priming() -> None:
    buffer = make_buffer()
    push_packet(buffer, 1)
    assert buffer.pop() is None
    push_packet(buffer, 0)
    assert buffer.pop() == payload(0)
    assert buffer.pop() == payload(1)


def test_duplicates_are_dropped_and_counted() -> None:
    buffer = make_buffer()
    push_packet(buffer, 0)
    push_packet(buffer, 0)
    push_packet(buffer, 1)
    push_packet(buffer, 1)
    push_packet(buffer, 2)
    assert buffer.duplicates == 2
    assert buffer.buffered_samples == 3 * FRAME
    assert [buffer.pop() for _ in range(3)] == [payload(0), payload(1), payload(2)]
    push_packet(buffer, 3)
    push_packet(buffer, 3)
    assert buffer.duplicates == 3
    assert buffer.pop() == payload(3)
    assert buffer.pop() is None
    assert buffer.late == 0


def test_late_packet_is_dropped_and_counted() -> None:
    buffer = make_buffer()
    push_packet(buffer, 0)
    push_packet(buffer, 1)
    assert buffer.pop() == payload(0)
    assert buffer.pop() == payload(1)
    assert buffer.pop() is None  # packet 2 has not arrived: a gap
    push_packet(buffer, 2)  # arrives after its frame was played
    assert buffer.late == 1
    assert buffer.buffered_samples == 0
    push_packet(buffer, 0)  # a very old retransmission
    assert buffer.late == 2
    push_packet(buffer, 3)
    assert buffer.pop() == payload(3)
    assert buffer.duplicates == 0


def test_lost_packet_gives_a_gap_and_the_stream_continues() -> None:
    buffer = make_buffer()
    played = []
    for number in range(10):
        if number != 4:
            push_packet(buffer, number)
        if number >= 1:
            played.append(buffer.pop())
    played.append(buffer.pop())
    assert played == [payload(n) if n != 4 else None for n in range(10)]


def test_timestamp_wrap_around_plays_continuously() -> None:
    buffer = make_buffer()
    base = 2**32 - 2 * FRAME
    push_packet(buffer, 0, base)
    played = []
    for number in range(1, 10):
        push_packet(buffer, number, base)  # packet 2 carries timestamp 0
        played.append(buffer.pop())
    assert played == [payload(n) for n in range(9)]
    assert (buffer.late, buffer.duplicates, buffer.overflows) == (0, 0, 0)


def test_timestamp_jump_resets_and_plays_the_new_stream() -> None:
    buffer = make_buffer()
    push_packet(buffer, 0)
    push_packet(buffer, 1)
    push_packet(buffer, 2)
    assert buffer.pop() == payload(0)
    new_base = 3 * FRAME + 50 * FRAME + 1  # just beyond jump_frames * 160 from the cursor
    buffer.push(new_base, payload(100))
    assert buffer.buffered_samples == FRAME  # the old stream is gone
    assert buffer.pop() is None  # priming again
    buffer.push(new_base + FRAME, payload(101))
    assert buffer.pop() == payload(100)
    assert buffer.pop() == payload(101)
    assert buffer.late == 0


def test_backward_timestamp_jump_resets_too() -> None:
    buffer = make_buffer()
    base = 1_000_000
    push_packet(buffer, 0, base)
    push_packet(buffer, 1, base)
    assert buffer.pop() == payload(0)
    buffer.push(5000, payload(50))
    buffer.push(5000 + FRAME, payload(51))
    assert buffer.late == 0
    assert buffer.pop() == payload(50)
    assert buffer.pop() == payload(51)


def test_jump_within_limit_is_a_gap_not_a_reset() -> None:
    buffer = make_buffer()
    push_packet(buffer, 0)
    push_packet(buffer, 1)
    assert buffer.pop() == payload(0)
    push_packet(buffer, 4)
    assert buffer.pop() == payload(1)
    assert buffer.pop() is None
    assert buffer.pop() is None
    assert buffer.pop() == payload(4)


def play_stream(packet_samples: int, packets: int) -> tuple[bytes, list[bytes | None]]:
    """Feed packets of `packet_samples` as they would be produced in real time; pop one frame per tick."""
    buffer = make_buffer()
    stream = b"".join(payload(n, packet_samples) for n in range(packets))
    frames: list[bytes | None] = []
    next_packet = 0
    for tick in range(packets * packet_samples // FRAME + 4):
        while next_packet < packets and (next_packet + 1) * packet_samples <= (tick + 1) * FRAME:
            buffer.push(next_packet * packet_samples, payload(next_packet, packet_samples))
            next_packet += 1
        frames.append(buffer.pop())
    return stream, frames


@pytest.mark.parametrize("packet_samples", [80, 240])
def test_other_packet_times_come_out_as_exact_frames(packet_samples: int) -> None:
    stream, frames = play_stream(packet_samples, 24)
    played = [frame for frame in frames if frame is not None]
    assert all(len(frame) == FRAME for frame in played)
    assert b"".join(played) == stream
    first = frames.index(played[0])
    assert frames[first : first + len(played)] == played  # no gap once playing


def test_10_ms_packets_fill_one_frame_from_two_packets() -> None:
    _, frames = play_stream(80, 8)
    played = [frame for frame in frames if frame is not None]
    assert played[0] == payload(0, 80) + payload(1, 80)
    assert played[1] == payload(2, 80) + payload(3, 80)


def test_30_ms_packets_are_split_across_frames() -> None:
    _, frames = play_stream(240, 4)
    played = [frame for frame in frames if frame is not None]
    assert played[:3] == [payload(0), payload(0, 80) + payload(1, 80), payload(1)]


def test_partial_frame_is_filled_with_silence() -> None:
    buffer = make_buffer()
    buffer.push(0, payload(1))
    buffer.push(FRAME, payload(2, 80))
    buffer.push(FRAME + 80, payload(3, 80))
    assert buffer.pop() == payload(1)
    assert buffer.pop() == payload(2, 80) + payload(3, 80)
    buffer.push(2 * FRAME, payload(4, 100))
    assert buffer.pop() == payload(4, 100) + b"\xff" * 60


def test_overflow_moves_the_cursor() -> None:
    buffer = make_buffer()
    push_packet(buffer, 0)
    push_packet(buffer, 1)
    assert buffer.pop() == payload(0)  # cursor at 160
    for number in range(2, 11):
        push_packet(buffer, number)  # ends at 1760: 1600 ahead of the cursor, not more
    assert buffer.overflows == 0
    assert buffer.buffered_samples == 10 * FRAME
    push_packet(buffer, 11)  # 1760 ahead > max_frames * 160
    assert buffer.overflows == 1
    assert buffer.buffered_samples == 2 * FRAME  # cursor moved to end - priming delay
    assert buffer.pop() == payload(10)
    assert buffer.pop() == payload(11)
    assert buffer.pop() is None
    assert buffer.late == 0


def test_idle_buffer_primes_again() -> None:
    buffer = make_buffer()
    push_packet(buffer, 0)
    push_packet(buffer, 1)
    assert [buffer.pop(), buffer.pop()] == [payload(0), payload(1)]
    for _ in range(10):  # idle_frames empty pops: the cursor is forgotten
        assert buffer.pop() is None
    push_packet(buffer, 12)  # timestamp exactly at where the cursor would have been
    assert buffer.pop() is None  # priming again
    push_packet(buffer, 13)
    assert buffer.pop() == payload(12)
    assert buffer.pop() == payload(13)


def test_short_idle_does_not_prime_again() -> None:
    buffer = make_buffer()
    push_packet(buffer, 0)
    push_packet(buffer, 1)
    assert [buffer.pop(), buffer.pop()] == [payload(0), payload(1)]
    for _ in range(9):
        assert buffer.pop() is None
    push_packet(buffer, 11)
    assert buffer.pop() == payload(11)  # plays at once: the cursor is still running


def test_reset_clears_everything() -> None:
    buffer = make_buffer()
    for number in range(4):
        push_packet(buffer, number)
    assert buffer.pop() == payload(0)
    buffer.reset()
    assert buffer.buffered_samples == 0
    assert buffer.pop() is None
    push_packet(buffer, 0)  # earlier than the old cursor, but the cursor is gone: not late
    assert buffer.late == 0
    assert buffer.pop() is None  # primes again
    push_packet(buffer, 1)
    assert buffer.pop() == payload(0)


def test_buffered_samples() -> None:
    buffer = make_buffer()
    assert buffer.buffered_samples == 0
    push_packet(buffer, 0)
    assert buffer.buffered_samples == 160
    push_packet(buffer, 2)
    assert buffer.buffered_samples == 480  # counted up to the end of the newest packet
    assert buffer.pop() == payload(0)
    assert buffer.buffered_samples == 320
    assert buffer.pop() is None
    assert buffer.buffered_samples == 160
    assert buffer.pop() == payload(2)
    assert buffer.buffered_samples == 0


def test_empty_payload_is_ignored() -> None:
    buffer = make_buffer()
    buffer.push(0, b"")
    assert buffer.buffered_samples == 0
    assert buffer.pop() is None
