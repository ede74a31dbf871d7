"""Tests for mixer/limiter.py and mixer/talk.py."""

from __future__ import annotations

import numpy as np
from hypothesis import given, settings
from hypothesis import strategies as st
from hypothesis.extra.numpy import arrays

from mixer.limiter import CEILING, KNEE, soft_limit, to_pcm16
from mixer.talk import TalkDetector


def test_below_the_knee_the_mix_is_untouched_bit_for_bit() -> None:
    rng = np.random.default_rng(3)
    mix = rng.uniform(-KNEE, KNEE, (20, 160)).astype(np.float32)
    before = mix.copy()
    assert np.array_equal(soft_limit(mix), before)
    assert np.array_equal(to_pcm16(before.copy()), np.rint(before).astype(np.int16))


def test_loud_sums_bend_smoothly_and_never_wrap() -> None:
    x = np.linspace(-40 * 32768, 40 * 32768, 100_001, dtype=np.float32)[None, :]
    y = soft_limit(x.copy())[0]
    assert np.all(np.abs(y) <= CEILING)
    assert np.all(np.diff(y) >= 0), "monotonic: louder in, never quieter out, no wrap-around"
    near = np.abs(x[0]) <= KNEE
    assert np.array_equal(y[near], x[0][near])
    slope = np.diff(y) / np.diff(x[0])
    assert slope.max() <= 1.0 + 1e-3, "no step at the knee"
    pcm = to_pcm16(x.copy())
    assert pcm.min() >= -32767 and pcm.max() <= 32767


@settings(max_examples=200, deadline=None)
@given(arrays(np.float32, (3, 40), elements=st.floats(-1e7, 1e7, width=32)))
def test_limiting_is_per_sample_so_the_order_of_summing_cannot_matter(mix: np.ndarray) -> None:
    limited = soft_limit(mix.copy())
    reversed_rows = soft_limit(mix[::-1].copy())[::-1]
    assert np.array_equal(limited, reversed_rows)
    shuffled = np.random.default_rng(1).permutation(40)
    assert np.array_equal(soft_limit(mix[:, shuffled].copy()), limited[:, shuffled])
    assert np.all(np.abs(limited) <= CEILING)


def tone(level: float, frames: int = 1) -> np.ndarray:
    t = np.arange(160 * frames) / 8000
    return (level * np.sin(2 * np.pi * 440 * t)).astype(np.float32).reshape(frames, 160)


def test_talk_starts_after_two_loud_frames_and_stops_after_half_a_second_of_quiet() -> None:
    detector = TalkDetector()
    index = np.array([5])
    loud, quiet = tone(3000.0), tone(50.0)  # about -21 dBFS and -59 dBFS
    assert detector.update(index, loud)[0].size == 0
    started, stopped = detector.update(index, loud)
    assert list(started) == [5] and stopped.size == 0 and detector.talking[5]
    for _ in range(24):
        started, stopped = detector.update(index, quiet)
        assert started.size == stopped.size == 0 and detector.talking[5]
    started, stopped = detector.update(index, quiet)
    assert list(stopped) == [5] and not detector.talking[5]


def test_a_voice_dipping_between_the_thresholds_keeps_talking() -> None:
    detector = TalkDetector(start_dbfs=-40, stop_dbfs=-46)
    index = np.array([0])
    detector.update(index, tone(3000.0))
    detector.update(index, tone(3000.0))
    between = tone(32768 * 10 ** (-43 / 20) * np.sqrt(2))  # -43 dBFS: below start, above stop
    for _ in range(100):
        detector.update(index, between)
    assert detector.talking[0]


def test_many_participants_at_once_and_reset() -> None:
    detector = TalkDetector(capacity=2)
    indices = np.arange(50)
    frames = np.zeros((50, 160), np.float32)
    frames[::7] = tone(5000.0)[0]
    detector.update(indices, frames)
    started, _ = detector.update(indices, frames)
    assert list(started) == list(range(0, 50, 7))
    detector.reset(np.array([7]))
    assert not detector.talking[7] and detector.talking[14]
