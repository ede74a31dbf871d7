"""Fading-repeat concealment (rtp/concealment.py): no discontinuity where a loss starts or ends, a fade to silence."""

from __future__ import annotations

import numpy as np
import numpy.typing as npt
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from rtp.concealment import Concealer

RATE, FRAME = 8000, 160


def tone(start: int, count: int = FRAME, frequency: float = 440.0, amplitude: float = 8000.0,
         rate: int = RATE) -> npt.NDArray[np.int16]:
    t = (start + np.arange(count)) / rate
    return np.rint(amplitude * np.sin(2 * np.pi * frequency * t)).astype(np.int16)


def largest_step(signal: npt.NDArray[np.int16]) -> int:
    return int(np.abs(np.diff(signal.astype(np.int32))).max())


def dominant_frequency(signal: npt.NDArray[np.int16], rate: int = RATE) -> float:
    spectrum = np.abs(np.fft.rfft(signal * np.hanning(signal.size)))
    return float(np.argmax(spectrum) * rate / signal.size)


def test_nothing_heard_yet_conceals_with_silence() -> None:
    concealer = Concealer(RATE, FRAME)
    assert not concealer.conceal(FRAME).any()
    assert concealer.concealing


@pytest.mark.parametrize("frequency", [200.0, 440.0, 1000.0, 2900.0])
def test_the_join_into_a_loss_and_back_out_is_no_larger_than_the_signal_makes(frequency: float) -> None:
    concealer = Concealer(RATE, FRAME)
    natural = largest_step(tone(0, 10 * FRAME, frequency))
    stream = [concealer.good(tone(0, frequency=frequency)), concealer.good(tone(FRAME, frequency=frequency))]
    stream += [concealer.conceal(FRAME), concealer.conceal(FRAME)]
    stream.append(concealer.good(tone(4 * FRAME, frequency=frequency)))
    assert not concealer.concealing
    assert largest_step(np.concatenate(stream)) <= 1.1 * natural


def test_the_repeat_keeps_the_pitch_and_level_of_what_was_lost() -> None:
    concealer = Concealer(RATE, FRAME)
    concealer.good(tone(0))
    concealer.good(tone(FRAME))
    concealed = concealer.conceal(80)  # the first 10 ms are held at full level
    assert np.abs(concealed).max() > 0.9 * 8000
    longer = Concealer(RATE, FRAME)
    longer.good(tone(0))
    longer.good(tone(FRAME))
    assert abs(dominant_frequency(np.tile(longer.conceal(FRAME), 8)) - 440) < 25


def test_a_long_loss_fades_to_silence_by_60_ms_and_stays_there() -> None:
    concealer = Concealer(RATE, FRAME)
    concealer.good(tone(0))
    concealer.good(tone(FRAME))
    concealed = concealer.conceal(8 * FRAME)
    levels = [int(np.abs(concealed[i : i + 80]).max()) for i in range(0, concealed.size, 80)]  # 10 ms steps
    assert levels[0] > 0.9 * 8000
    assert levels[1] > levels[2] > levels[3] > levels[4] > levels[5] > 0
    assert not concealed[480:].any()


def test_concealing_in_pieces_equals_concealing_at_once() -> None:
    pieces, whole = Concealer(RATE, FRAME), Concealer(RATE, FRAME)
    for concealer in (pieces, whole):
        concealer.good(tone(0, frequency=300))
        concealer.good(tone(FRAME, frequency=300))
    parts = np.concatenate([pieces.conceal(n) for n in (160, 37, 123, 0, 320)])
    np.testing.assert_array_equal(parts, whole.conceal(640))


def test_audio_after_a_faded_loss_fades_in_from_silence() -> None:
    concealer = Concealer(RATE, FRAME)
    concealer.good(tone(0))
    concealer.good(tone(FRAME))
    concealer.conceal(5 * FRAME)
    resumed = concealer.good(tone(7 * FRAME + 40))  # starts near a peak of the sine
    assert abs(int(resumed[0])) < 1000
    assert largest_step(resumed) <= 1.5 * largest_step(tone(0, 10 * FRAME))
    assert np.array_equal(resumed[16:], tone(7 * FRAME + 40)[16:])  # only the 2 ms cross-fade is touched


def test_a_good_frame_without_a_loss_passes_through_unchanged() -> None:
    concealer = Concealer(RATE, FRAME)
    frame = tone(0)
    assert concealer.good(frame) is frame


def test_wideband_join_is_smooth_too() -> None:
    rate, frame = 16000, 320
    concealer = Concealer(rate, frame)
    natural = largest_step(tone(0, 10 * frame, 1700.0, rate=rate))
    stream = [concealer.good(tone(i * frame, frame, 1700.0, rate=rate)) for i in range(3)]
    stream.append(concealer.conceal(frame))
    stream.append(concealer.good(tone(4 * frame, frame, 1700.0, rate=rate)))
    assert largest_step(np.concatenate(stream)) <= 1.1 * natural


@settings(max_examples=200, deadline=None)
@given(
    history=st.lists(st.integers(-32768, 32767), min_size=0, max_size=400),
    losses=st.lists(st.integers(0, 500), min_size=1, max_size=5),
)
def test_any_history_and_any_loss_lengths_give_exactly_that_many_samples(history: list[int],
                                                                          losses: list[int]) -> None:
    concealer = Concealer(RATE, FRAME)
    concealer.good(np.array(history, dtype=np.int16))
    for loss in losses:
        concealed = concealer.conceal(loss)
        assert concealed.dtype == np.int16 and concealed.size == loss
    after = concealer.good(np.array(history, dtype=np.int16))
    assert after.size == len(history)
