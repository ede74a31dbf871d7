"""Tests for rtp/dtmf.py: the RFC 4733 payload, reporting each key press once, and the packets a sender sends."""

from __future__ import annotations

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from rtp.dtmf import DIGITS, EVENT_TIMEOUT, DtmfDigit, DtmfReceiver, ToneEvent, tone_event_packets

STEP = 0.05
"""Seconds between the packets of one event (tone_event_packets' default step)."""


def play(receiver: DtmfReceiver, timestamp: int, packets: list[tuple[bool, bytes]], start: float) -> list[DtmfDigit]:
    """Feed one event's packets 50 ms apart; the digits that came out."""
    digits = []
    for index, (marker, payload) in enumerate(packets):
        digit = receiver.receive(timestamp, payload, marker, start + index * STEP)
        if digit is not None:
            digits.append(digit)
    return digits


def updates(packets: list[tuple[bool, bytes]]) -> list[tuple[bool, bytes]]:
    """The packets without their end packets."""
    return [(marker, payload) for marker, payload in packets if not ToneEvent.parse(payload).end]


# --- ToneEvent ---------------------------------------------------------------------------------------------------


def test_payload_layout() -> None:
    event = ToneEvent(event=5, end=True, volume=10, duration=800)
    assert event.to_bytes() == bytes([5, 0x8A, 0x03, 0x20])
    assert ToneEvent.parse(event.to_bytes()) == event


def test_reserved_bit_is_ignored() -> None:
    assert ToneEvent.parse(bytes([11, 0x40 | 0x0A, 0, 160])) == ToneEvent(11, False, 10, 160)


@pytest.mark.parametrize("payload", [b"", b"\x01", b"\x01\x02\x03", b"\x01\x02\x03\x04\x05", bytes(8)])
def test_parse_needs_four_bytes(payload: bytes) -> None:
    with pytest.raises(ValueError):
        ToneEvent.parse(payload)


@pytest.mark.parametrize("fields", [(256, False, 0, 0), (-1, False, 0, 0), (0, False, 64, 0), (0, False, 0, 65536)])
def test_fields_are_range_checked(fields: tuple[int, bool, int, int]) -> None:
    with pytest.raises(ValueError):
        ToneEvent(*fields)


@settings(max_examples=500)
@given(st.binary(max_size=12))
def test_parse_garbage_raises_only_value_error(payload: bytes) -> None:
    try:
        event = ToneEvent.parse(payload)
    except ValueError:
        assert len(payload) != 4
        return
    assert event.to_bytes()[1] & 0x3F == payload[1] & 0x3F


# --- tone_event_packets ------------------------------------------------------------------------------------------


def test_sender_packets() -> None:
    packets = tone_event_packets("7", 200)
    events = [ToneEvent.parse(payload) for _, payload in packets]
    assert [marker for marker, _ in packets] == [True] + [False] * 5
    assert [event.duration for event in events] == [400, 800, 1200, 1600, 1600, 1600]
    assert [event.end for event in events] == [False] * 3 + [True] * 3
    assert {event.event for event in events} == {7}


def test_sender_short_press_and_wideband() -> None:
    packets = tone_event_packets("d", 30, clock_rate=16000)
    assert [marker for marker, _ in packets] == [True, False, False]
    assert {ToneEvent.parse(payload) for _, payload in packets} == {ToneEvent(15, True, 10, 480)}


@pytest.mark.parametrize(("digit", "duration_ms"), [("", 100), ("12", 100), ("E", 100), ("x", 100), ("1", 0),
                                                     ("1", 9000)])
def test_sender_refuses(digit: str, duration_ms: int) -> None:
    with pytest.raises(ValueError):
        tone_event_packets(digit, duration_ms)


# --- DtmfReceiver ------------------------------------------------------------------------------------------------


def test_normal_press_is_reported_once_with_its_duration() -> None:
    receiver = DtmfReceiver(8000)
    digits = play(receiver, 1000, tone_event_packets("5", 240), 0.0)
    assert digits == [DtmfDigit("5", 240, 1000)]
    assert receiver.poll(10.0) is None


def test_reported_at_the_first_end_packet() -> None:
    receiver = DtmfReceiver(8000)
    packets = tone_event_packets("9", 120)
    results = [receiver.receive(50, payload, marker, 0.0) for marker, payload in packets]
    assert results == [None, None, DtmfDigit("9", 120, 50), None, None]


def test_end_packet_repeats_and_stragglers_are_ignored() -> None:
    receiver = DtmfReceiver(8000)
    packets = tone_event_packets("#", 100)
    assert play(receiver, 0, packets, 0.0) == [DtmfDigit("#", 100, 0)]
    assert play(receiver, 0, packets * 2, 1.0) == []
    assert receiver.poll(5.0) is None


@pytest.mark.parametrize("digit", list(DIGITS))
def test_all_sixteen_digits(digit: str) -> None:
    receiver = DtmfReceiver(8000)
    assert play(receiver, 12345, tone_event_packets(digit, 100), 0.0) == [DtmfDigit(digit, 100, 12345)]
    assert ToneEvent.parse(tone_event_packets(digit, 100)[0][1]).event == DIGITS.index(digit)


def test_a_sequence_of_presses() -> None:
    receiver = DtmfReceiver(8000)
    got = []
    for index, digit in enumerate("1234567890*#ABCD"):
        got += play(receiver, 8000 * index, tone_event_packets(digit, 100), float(index))
    assert "".join(d.digit for d in got) == "1234567890*#ABCD"
    assert [d.timestamp for d in got] == [8000 * index for index in range(16)]


def test_same_digit_twice_is_two_presses() -> None:
    receiver = DtmfReceiver(8000)
    got = play(receiver, 1000, tone_event_packets("3", 100), 0.0)
    got += play(receiver, 4000, tone_event_packets("3", 100), 0.5)
    assert got == [DtmfDigit("3", 100, 1000), DtmfDigit("3", 100, 4000)]


def test_lost_end_packets_reported_by_the_next_event() -> None:
    receiver = DtmfReceiver(8000)
    assert play(receiver, 1000, updates(tone_event_packets("1", 300)), 0.0) == []
    marker, payload = tone_event_packets("2", 100)[0]
    assert receiver.receive(5000, payload, marker, 0.3) == DtmfDigit("1", 250, 1000)
    assert play(receiver, 5000, tone_event_packets("2", 100)[1:], 0.35) == [DtmfDigit("2", 100, 5000)]
    assert receiver.poll(10.0) is None


def test_lost_end_packets_reported_by_poll_after_500_ms() -> None:
    receiver = DtmfReceiver(8000)
    assert play(receiver, 1000, updates(tone_event_packets("4", 300)), 0.0) == []
    last_packet = 4 * STEP
    assert receiver.poll(last_packet + EVENT_TIMEOUT - 0.01) is None
    assert receiver.poll(last_packet + EVENT_TIMEOUT + 0.001) == DtmfDigit("4", 250, 1000)
    assert receiver.poll(last_packet + 5.0) is None
    assert play(receiver, 1000, tone_event_packets("4", 300)[-3:], 1.0) == []


def test_next_event_arriving_as_an_end_packet_is_not_lost() -> None:
    receiver = DtmfReceiver(8000)
    play(receiver, 1000, updates(tone_event_packets("1", 300)), 0.0)
    end = tone_event_packets("6", 40)
    assert [receiver.receive(5000, payload, marker, 1.0) for marker, payload in end] == [
        DtmfDigit("1", 250, 1000), DtmfDigit("6", 40, 5000), None]


def test_queued_digit_comes_out_of_poll() -> None:
    receiver = DtmfReceiver(8000)
    play(receiver, 1000, updates(tone_event_packets("1", 300)), 0.0)
    marker, payload = tone_event_packets("6", 40)[0]
    assert receiver.receive(5000, payload, marker, 1.0) == DtmfDigit("1", 250, 1000)
    assert receiver.poll(1.0) == DtmfDigit("6", 40, 5000)


def test_reordered_updates_do_not_shrink_the_duration() -> None:
    receiver = DtmfReceiver(8000)
    packets = tone_event_packets("8", 200)
    order = [1, 0, 2, 3, 4, 5]
    got = [receiver.receive(700, packets[i][1], packets[i][0], 0.01 * n) for n, i in enumerate(order)]
    assert [d for d in got if d is not None] == [DtmfDigit("8", 200, 700)]


def test_late_packets_of_an_earlier_event_are_ignored() -> None:
    receiver = DtmfReceiver(8000)
    first = tone_event_packets("1", 200)
    second = tone_event_packets("2", 200)
    got = play(receiver, 8000, first[:2], 0.0)
    got += play(receiver, 10000, second[:1], 0.2)  # the first event's end packets are late
    got += play(receiver, 8000, first[2:], 0.25)
    got += play(receiver, 10000, second[1:], 0.3)
    got += play(receiver, 9000, first, 0.6)  # stale duplicates of something in between
    assert got == [DtmfDigit("1", 100, 8000), DtmfDigit("2", 200, 10000)]
    assert receiver.poll(10.0) is None


def test_timestamp_wrap() -> None:
    receiver = DtmfReceiver(8000)
    got = play(receiver, 2**32 - 400, tone_event_packets("A", 100), 0.0)
    got += play(receiver, 1200, tone_event_packets("B", 100), 1.0)
    got += play(receiver, 2**32 - 400, tone_event_packets("A", 100)[-1:], 2.0)
    assert got == [DtmfDigit("A", 100, 2**32 - 400), DtmfDigit("B", 100, 1200)]


def test_a_far_jump_backwards_is_a_new_event() -> None:
    receiver = DtmfReceiver(8000)
    got = play(receiver, 2_000_000_000, tone_event_packets("1", 100), 0.0)
    got += play(receiver, 1000, tone_event_packets("2", 100), 1.0)
    assert [d.digit for d in got] == ["1", "2"]


@pytest.mark.parametrize("code", [16, 17, 100, 255])
def test_non_digit_events_are_ignored(code: int) -> None:
    receiver = DtmfReceiver(8000)
    for duration in (400, 800, 800, 800):
        assert receiver.receive(0, ToneEvent(code, duration == 800, 10, duration).to_bytes(), False, 0.0) is None
    assert receiver.poll(5.0) is None
    assert receiver.ignored == 4


def test_flash_after_a_press_with_lost_ends_still_reports_the_press() -> None:
    receiver = DtmfReceiver(8000)
    play(receiver, 1000, updates(tone_event_packets("0", 300)), 0.0)
    assert receiver.receive(9000, ToneEvent(16, False, 10, 160).to_bytes(), True, 1.0) == DtmfDigit("0", 250, 1000)


def test_long_event_segments_are_one_press() -> None:
    receiver = DtmfReceiver(8000)
    now, got = 0.0, []
    for duration in range(400, 0xFFFF, 400):
        got.append(receiver.receive(1000, ToneEvent(2, False, 10, duration).to_bytes(), duration == 400, now))
        now += STEP
    got.append(receiver.receive(1000, ToneEvent(2, False, 10, 0xFFFF).to_bytes(), False, now))
    for duration in (400, 800, 1200):
        got.append(receiver.receive(1000 + 0xFFFF, ToneEvent(2, False, 10, duration).to_bytes(), False, now))
    for _ in range(3):
        got.append(receiver.receive(1000 + 0xFFFF, ToneEvent(2, True, 10, 1600).to_bytes(), False, now))
    assert [d for d in got if d is not None] == [DtmfDigit("2", round((0xFFFF + 1600) / 8), 1000)]


def test_garbage_payloads_are_counted() -> None:
    receiver = DtmfReceiver(8000)
    assert receiver.receive(0, b"\x01\x02", False, 0.0) is None
    assert receiver.malformed == 1
    assert play(receiver, 0, tone_event_packets("1", 100), 0.0) == [DtmfDigit("1", 100, 0)]


def test_reset_forgets_the_stream() -> None:
    receiver = DtmfReceiver(8000)
    play(receiver, 0, tone_event_packets("1", 100), 0.0)
    receiver.reset()
    assert play(receiver, 0, tone_event_packets("1", 100), 1.0) == [DtmfDigit("1", 100, 0)]


@settings(max_examples=300)
@given(st.lists(st.tuples(st.integers(0, 2**32 - 1), st.binary(max_size=6), st.booleans(),
                          st.floats(0, 1000, allow_nan=False)), max_size=40))
def test_receiver_never_raises(packets: list[tuple[int, bytes, bool, float]]) -> None:
    receiver = DtmfReceiver(8000)
    for timestamp, payload, marker, now in packets:
        for digit in (receiver.receive(timestamp, payload, marker, now), receiver.poll(now)):
            assert digit is None or (digit.digit in DIGITS and digit.duration_ms >= 0)


EVENTS = st.builds(lambda code, end, duration: ToneEvent(code, end, 10, duration).to_bytes(),
                   st.integers(0, 17), st.booleans(), st.integers(0, 3000))


@settings(max_examples=300)
@given(st.lists(st.tuples(st.integers(0, 5000), EVENTS, st.booleans(), st.floats(0, 2, allow_nan=False)),
                max_size=60))
def test_no_event_is_reported_twice(packets: list[tuple[int, bytes, bool, float]]) -> None:
    """Within the reordering window every event start is reported at most once, however packets are mixed up."""
    receiver = DtmfReceiver(8000)
    reported: list[int] = []
    for timestamp, payload, marker, now in packets:
        for digit in (receiver.receive(timestamp, payload, marker, now), receiver.poll(now)):
            if digit is not None:
                reported.append(digit.timestamp)
    reported += [digit.timestamp for digit in iter(lambda: receiver.poll(1e9), None)]
    assert len(reported) == len(set(reported))
