"""Tests for mixer/mixdown.py: per-conference totals and N-1 mixes against an explicit reference."""

from __future__ import annotations

import itertools

import numpy as np
import numpy.typing as npt
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from mixer.limiter import CEILING, KNEE, to_pcm16
from mixer.mixdown import conference_totals, mix_minus

SAMPLES = 160


def layout(sizes: list[int]) -> tuple[npt.NDArray[np.intp], npt.NDArray[np.intp]]:
    """`starts` (first row of each conference) and `conference_of_row` for conferences of these sizes."""
    starts = np.concatenate([[0], np.cumsum(sizes)[:-1]]).astype(np.intp)
    conference_of_row = np.repeat(np.arange(len(sizes)), sizes).astype(np.intp)
    return starts, conference_of_row


def random_frames(rng: np.random.Generator, rows: int) -> npt.NDArray[np.float32]:
    """Integer-valued full-scale 16-bit signals as float32 rows."""
    return rng.integers(-32768, 32768, size=(rows, SAMPLES)).astype(np.float32)


def reference_mix(frames: npt.NDArray[np.float32], sizes: list[int]) -> npt.NDArray[np.int64]:
    """For each participant, the sum of the other participants of its conference, by explicit loops."""
    signals = frames.astype(np.int64)
    out = np.zeros_like(signals)
    first = 0
    for size in sizes:
        members = range(first, first + size)
        for row in members:
            for other in members:
                if other != row:
                    out[row] += signals[other]
        first += size
    return out


def mix(frames: npt.NDArray[np.float32], sizes: list[int]) -> npt.NDArray[np.float32]:
    """The library's N-1 mix."""
    starts, conference_of_row = layout(sizes)
    return mix_minus(frames, conference_totals(frames, starts), conference_of_row)


def test_totals_per_conference() -> None:
    rng = np.random.default_rng(7)
    sizes = [3, 1, 5, 2]
    frames = random_frames(rng, sum(sizes))
    starts, _ = layout(sizes)
    totals = conference_totals(frames, starts)
    assert totals.shape == (4, SAMPLES)
    assert totals.dtype == np.float32
    signals = frames.astype(np.int64)
    expected = np.stack([signals[0:3].sum(axis=0), signals[3], signals[4:9].sum(axis=0), signals[9:11].sum(axis=0)])
    assert np.array_equal(totals.astype(np.int64), expected)


def test_n_minus_one_many_conferences() -> None:
    rng = np.random.default_rng(2024)
    sizes = [2, 7, 1, 3, 12, 4, 1, 30]
    frames = random_frames(rng, sum(sizes))
    result = mix(frames, sizes)
    assert result.shape == frames.shape
    assert np.array_equal(result.astype(np.int64), reference_mix(frames, sizes))
    assert np.array_equal(result, np.rint(result))  # exact integer values


def test_single_participant_hears_silence() -> None:
    rng = np.random.default_rng(1)
    frames = random_frames(rng, 1)
    result = mix(frames, [1])
    assert np.array_equal(result, np.zeros((1, SAMPLES), dtype=np.float32))


def test_two_participants_hear_each_other() -> None:
    frames = np.stack([np.full(SAMPLES, 100.0), np.full(SAMPLES, -250.0)]).astype(np.float32)
    result = mix(frames, [2])
    assert np.array_equal(result[0], np.full(SAMPLES, -250.0, dtype=np.float32))
    assert np.array_equal(result[1], np.full(SAMPLES, 100.0, dtype=np.float32))


def test_empty_frame_set() -> None:
    frames = np.zeros((0, SAMPLES), dtype=np.float32)
    totals = conference_totals(frames, np.zeros(0, dtype=np.intp))
    assert totals.shape == (0, SAMPLES)
    assert totals.dtype == np.float32
    result = mix_minus(frames, totals, np.zeros(0, dtype=np.intp))
    assert result.shape == (0, SAMPLES)
    assert to_pcm16(result).shape == (0, SAMPLES)


def test_full_chain_limits_a_loud_conference() -> None:
    frames = np.full((4, SAMPLES), 20000.0, dtype=np.float32)
    frames[3] = -20000.0
    out = to_pcm16(mix(frames, [4]))
    assert out[:3].tolist() == [[20000] * SAMPLES] * 3  # 20000 + 20000 - 20000: below the knee, untouched
    assert KNEE < out[3, 0] < CEILING and len(set(out[3].tolist())) == 1  # 60000 bent below full scale


@pytest.mark.parametrize("sizes", [[3] * 50, [1, 2] * 40, [5, 1, 1, 1, 9, 9, 2, 2, 2], [700], [1] * 100])
def test_totals_of_runs_of_equal_sizes_and_of_many_different_ones(sizes: list[int]) -> None:
    frames = random_frames(np.random.default_rng(len(sizes)), sum(sizes))
    totals = conference_totals(frames, layout(sizes)[0])
    bounds = np.cumsum([0, *sizes])
    expected = [frames[a:b].astype(np.int64).sum(axis=0) for a, b in itertools.pairwise(bounds)]
    assert totals.dtype == np.float32 and np.array_equal(totals.astype(np.int64), np.array(expected))


@pytest.mark.parametrize("value", [32767, -32768])
@pytest.mark.parametrize("participants", [2, 100, 512])
def test_exact_for_up_to_512_full_scale_talkers(participants: int, value: int) -> None:
    frames = np.full((participants, SAMPLES), value, dtype=np.float32)
    frames[0, 0] = 0.0
    starts, _ = layout([participants])
    totals = conference_totals(frames, starts)
    assert int(totals[0, 0]) == (participants - 1) * value
    assert int(totals[0, 1]) == participants * value
    result = mix(frames, [participants])
    assert int(result[0, 0]) == (participants - 1) * value
    assert int(result[1, 0]) == (participants - 2) * value
    expected = np.full((participants, SAMPLES - 1), (participants - 1) * value)
    assert np.array_equal(result[:, 1:].astype(np.int64), expected)


@settings(max_examples=100, deadline=None)
@given(sizes=st.lists(st.integers(1, 8), min_size=1, max_size=10), seed=st.integers(0, 2**32 - 1))
def test_n_minus_one_identity(sizes: list[int], seed: int) -> None:
    frames = random_frames(np.random.default_rng(seed), sum(sizes))
    result = mix(frames, sizes)
    assert result.dtype == np.float32
    assert np.array_equal(result.astype(np.int64), reference_mix(frames, sizes))
