"""Tests for mixer/resample.py: state carried across blocks, row independence, gain, delay, image and alias
rejection, checked with Hann-windowed FFTs and against a direct (zero-stuffed convolution) reference."""

from __future__ import annotations

import itertools

import numpy as np
import numpy.typing as npt
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from mixer.resample import BatchResampler, design_lowpass

RATES = (8000, 16000, 48000)
PAIRS = list(itertools.product(RATES, RATES))
CONVERSIONS = [(a, b) for a, b in PAIRS if a != b]
# float32 sums of full-scale 16-bit signals agree to a few ulps (the ulp of 32768 in float32 is 0.004); BLAS may
# add up a row in a different order depending on the matrix's size, so block-wise and one-shot results differ by
# accumulation order only, far below one 16-bit step.
ATOL = 0.1

Signal = npt.NDArray[np.float32]


def random_pcm(rng: np.random.Generator, rows: int, samples: int) -> Signal:
    """Full-scale integer-valued 16-bit noise as float32 rows."""
    return rng.integers(-32768, 32768, size=(rows, samples)).astype(np.float32)


def one_shot(resampler: BatchResampler, signal: Signal) -> Signal:
    """The whole signal converted in one call from silent history."""
    out, _ = resampler.process(signal, resampler.new_history(signal.shape[0]))
    return out


def blockwise(resampler: BatchResampler, signal: Signal, block: int) -> Signal:
    """The signal converted `block` input samples at a time, the history carried from call to call."""
    history = resampler.new_history(signal.shape[0])
    outputs = []
    for start in range(0, signal.shape[1], block):
        out, history = resampler.process(signal[:, start : start + block], history)
        outputs.append(out)
    return np.concatenate(outputs, axis=1)


def tick(rate: int) -> int:
    """Samples in one 20 ms tick at `rate`."""
    return rate // 50


def tone(freq: float, rate: int, seconds: float, amplitude: float = 10000.0) -> Signal:
    """One row of a sine tone."""
    t = np.arange(round(rate * seconds)) / rate
    return (amplitude * np.sin(2 * np.pi * freq * t)).astype(np.float32)[np.newaxis, :]


def level_db(signal: npt.NDArray[np.floating], rate: int, freq: float) -> float:
    """Amplitude (dB re 1) of the component at `freq` in a 1-D signal, from a Hann-windowed FFT."""
    window = np.hanning(signal.size)
    spectrum = np.abs(np.fft.rfft(signal.astype(np.float64) * window))
    bin_hz = rate / signal.size
    centre = round(freq / bin_hz)
    peak = spectrum[max(centre - 3, 0) : centre + 4].max()
    return float(20 * np.log10(2 * peak / window.sum() + 1e-30))


def steady(output: Signal, rate: int, skip: float = 0.2, seconds: float = 1.0) -> npt.NDArray[np.float32]:
    """Row 0 of `output` from `skip` seconds on, `seconds` long: past the filter's start-up, whole-Hz bins."""
    start = round(rate * skip)
    stretch = output[0, start : start + round(rate * seconds)]
    assert stretch.size == round(rate * seconds)
    return stretch


def reference(resampler: BatchResampler, signal: Signal) -> npt.NDArray[np.float64]:
    """The textbook conversion in float64: zero-stuff and convolve, or convolve and keep every M-th sample."""
    rows = []
    for row in signal.astype(np.float64):
        if resampler.up > 1:
            stuffed = np.zeros(row.size * resampler.up)
            stuffed[:: resampler.up] = row
            rows.append(np.convolve(stuffed, resampler.up * resampler.filter)[: stuffed.size])
        else:
            filtered = np.convolve(row, resampler.filter)[: row.size]
            rows.append(filtered[resampler.down - 1 :: resampler.down])
    return np.array(rows)


def test_identity_copies_the_input() -> None:
    resampler = BatchResampler(16000, 16000)
    assert (resampler.up, resampler.down, resampler.history_length, resampler.delay) == (1, 1, 0, 0.0)
    frames = random_pcm(np.random.default_rng(0), 3, 320)
    out, history = resampler.process(frames, resampler.new_history(3))
    np.testing.assert_array_equal(out, frames)
    assert out is not frames and out.dtype == np.float32
    assert history.shape == (3, 0)


@pytest.mark.parametrize(("from_rate", "to_rate"), [(8000, 44100), (44100, 8000), (48000, 44100), (0, 8000)])
def test_rejects_non_integer_or_invalid_ratios(from_rate: int, to_rate: int) -> None:
    with pytest.raises(ValueError):
        BatchResampler(from_rate, to_rate)


@pytest.mark.parametrize(("from_rate", "to_rate", "n_in"), [(48000, 8000, 961), (48000, 16000, 10), (16000, 8000, 1)])
def test_rejects_blocks_not_a_multiple_of_the_downsampling_factor(from_rate: int, to_rate: int, n_in: int) -> None:
    resampler = BatchResampler(from_rate, to_rate)
    with pytest.raises(ValueError, match="multiple"):
        resampler.process(np.zeros((2, n_in), np.float32), resampler.new_history(2))


def test_rejects_history_of_the_wrong_shape() -> None:
    resampler = BatchResampler(8000, 48000)
    with pytest.raises(ValueError, match="history"):
        resampler.process(np.zeros((2, 160), np.float32), resampler.new_history(3))


@pytest.mark.parametrize(("from_rate", "to_rate"), CONVERSIONS)
def test_shapes_and_history_length(from_rate: int, to_rate: int) -> None:
    resampler = BatchResampler(from_rate, to_rate)
    factor = max(to_rate // from_rate, from_rate // to_rate)
    assert resampler.taps == 24 * factor
    assert resampler.history_length == (23 if to_rate > from_rate else 24 * factor - 1)
    history = resampler.new_history(5)
    assert history.shape == (5, resampler.history_length) and history.dtype == np.float32
    frames = random_pcm(np.random.default_rng(1), 5, tick(from_rate))
    out, new_history = resampler.process(frames, history)
    assert out.shape == (5, tick(to_rate)) and out.dtype == np.float32 and out.flags.c_contiguous
    assert new_history.shape == history.shape and new_history.dtype == np.float32
    # the new history is the tail of concatenate([history, frames])
    np.testing.assert_array_equal(new_history, frames[:, frames.shape[1] - resampler.history_length :])


@pytest.mark.parametrize(("from_rate", "to_rate"), PAIRS)
def test_block_by_block_equals_one_shot(from_rate: int, to_rate: int) -> None:
    rng = np.random.default_rng(from_rate + to_rate)
    resampler = BatchResampler(from_rate, to_rate)
    signal = random_pcm(rng, 6, 50 * tick(from_rate))
    whole = one_shot(resampler, signal)
    assert whole.shape == (6, 50 * tick(to_rate))
    np.testing.assert_allclose(blockwise(resampler, signal, tick(from_rate)), whole, rtol=0, atol=ATOL)


@pytest.mark.parametrize(("from_rate", "to_rate"), CONVERSIONS)
def test_matches_the_zero_stuffed_convolution_reference(from_rate: int, to_rate: int) -> None:
    resampler = BatchResampler(from_rate, to_rate)
    signal = random_pcm(np.random.default_rng(7), 3, 10 * tick(from_rate))
    np.testing.assert_allclose(blockwise(resampler, signal, tick(from_rate)), reference(resampler, signal), atol=ATOL)


@pytest.mark.parametrize(("from_rate", "to_rate"), CONVERSIONS)
def test_rows_are_independent(from_rate: int, to_rate: int) -> None:
    rng = np.random.default_rng(3)
    resampler = BatchResampler(from_rate, to_rate)
    signal = random_pcm(rng, 8, 5 * tick(from_rate))
    together = blockwise(resampler, signal, tick(from_rate))
    alone = np.concatenate([blockwise(resampler, signal[r : r + 1], tick(from_rate)) for r in range(8)])
    np.testing.assert_allclose(together, alone, rtol=0, atol=ATOL)
    # changing the other rows changes nothing in row 0
    other = signal.copy()
    other[1:] = random_pcm(rng, 7, other.shape[1])
    np.testing.assert_allclose(blockwise(resampler, other, tick(from_rate))[0], together[0], rtol=0, atol=ATOL)


@pytest.mark.parametrize(("from_rate", "to_rate"), CONVERSIONS)
def test_dc_gain_is_one(from_rate: int, to_rate: int) -> None:
    resampler = BatchResampler(from_rate, to_rate)
    level = np.array([[1000.0], [-20000.0]], np.float32)
    out = blockwise(resampler, np.repeat(level, 20 * tick(from_rate), axis=1), tick(from_rate))
    settled = out[:, int(resampler.taps * to_rate / max(from_rate, to_rate)) + 1 :]
    np.testing.assert_allclose(settled, np.broadcast_to(level, settled.shape), rtol=1e-4)


@pytest.mark.parametrize("to_rate", [16000, 48000])
def test_upsampling_images_are_60_db_down(to_rate: int) -> None:
    resampler = BatchResampler(8000, to_rate)
    out = steady(blockwise(resampler, tone(1000, 8000, 1.3), 160), to_rate)
    tone_db = level_db(out, to_rate, 1000)
    assert abs(tone_db - 20 * np.log10(10000)) < 0.1
    images = [f for k in range(1, to_rate // 8000 + 1) for f in (k * 8000 - 1000, k * 8000 + 1000) if f < to_rate / 2]
    assert 7000 in images
    for image in images:
        assert level_db(out, to_rate, image) < tone_db - 60, f"image at {image} Hz"


@pytest.mark.parametrize(
    ("from_rate", "to_rate", "above", "alias"),
    [
        (48000, 8000, 6000, 2000),
        (48000, 8000, 5000, 3000),
        (48000, 16000, 10000, 6000),
        (48000, 16000, 12000, 4000),
        (16000, 8000, 6000, 2000),
        (16000, 8000, 5000, 3000),
    ],
)
def test_downsampling_rejects_tones_above_the_new_nyquist(from_rate: int, to_rate: int, above: int, alias: int) -> None:
    resampler = BatchResampler(from_rate, to_rate)
    out = steady(blockwise(resampler, tone(above, from_rate, 1.3), tick(from_rate)), to_rate)
    assert level_db(out, to_rate, alias) < 20 * np.log10(10000) - 60


@pytest.mark.parametrize(("from_rate", "to_rate"), [(48000, 8000), (48000, 16000), (16000, 8000)])
@pytest.mark.parametrize("freq", [1000, 3000])
def test_downsampling_passes_tones_below_the_new_nyquist(from_rate: int, to_rate: int, freq: int) -> None:
    resampler = BatchResampler(from_rate, to_rate)
    out = steady(blockwise(resampler, tone(freq, from_rate, 1.3), tick(from_rate)), to_rate)
    assert abs(level_db(out, to_rate, freq) - 20 * np.log10(10000)) < 0.5


@pytest.mark.parametrize("freq", [300, 1000, 3000])
def test_passband_is_flat_through_8k_48k_8k(freq: int) -> None:
    up, down = BatchResampler(8000, 48000), BatchResampler(48000, 8000)
    signal = tone(freq, 8000, 1.3)
    back = blockwise(down, blockwise(up, signal, 160), 960)
    assert up.delay / 6 + down.delay == 23.0  # the round trip delays by a whole number of 8 kHz samples
    assert abs(level_db(steady(back, 8000), 8000, freq) - level_db(steady(signal, 8000), 8000, freq)) < 0.5


@pytest.mark.parametrize(("from_rate", "to_rate"), CONVERSIONS)
def test_delay_matches_the_lag_of_a_click(from_rate: int, to_rate: int) -> None:
    resampler = BatchResampler(from_rate, to_rate)
    ratio = to_rate / from_rate
    positions = list(range(100, 100 + max(resampler.down, 3)))  # every phase of the downsampler
    clicks = np.zeros((len(positions), 4 * tick(from_rate)), np.float32)
    clicks[np.arange(len(positions)), positions] = 30000.0
    out = blockwise(resampler, clicks, tick(from_rate))
    for row, position in enumerate(positions):
        lag = int(np.argmax(np.abs(out[row]))) - position * ratio
        assert abs(lag - resampler.delay) <= 1.0, (position, lag, resampler.delay)


def test_empty_blocks_and_no_rows() -> None:
    resampler = BatchResampler(48000, 8000)
    history = random_pcm(np.random.default_rng(5), 2, resampler.history_length)
    out, new_history = resampler.process(np.zeros((2, 0), np.float32), history)
    assert out.shape == (2, 0)
    np.testing.assert_array_equal(new_history, history)
    out, new_history = resampler.process(np.zeros((0, 960), np.float32), resampler.new_history(0))
    assert out.shape == (0, 160) and new_history.shape == (0, resampler.history_length)


def test_design_lowpass() -> None:
    h = design_lowpass(144, 0.5 / 6 * 0.92)
    assert h.dtype == np.float64 and h.shape == (144,)
    assert h.sum() == pytest.approx(1.0, abs=1e-12)
    np.testing.assert_allclose(h, h[::-1], atol=1e-15)  # linear phase
    response = np.abs(np.fft.rfft(h, 48000))  # 1 Hz bins at 48 kHz
    assert np.all(np.abs(20 * np.log10(response[:2500])) < 0.01)
    assert np.all(20 * np.log10(response[4700:] + 1e-30) < -80)
    for bad in (0.0, 0.5, -0.1):
        with pytest.raises(ValueError):
            design_lowpass(32, bad)


@settings(max_examples=60, deadline=None)
@given(
    pair=st.sampled_from(PAIRS),
    rows=st.integers(1, 20),
    multiple=st.integers(1, 100),
    blocks=st.integers(1, 6),
    seed=st.integers(0, 2**32 - 1),
)
def test_any_block_size_matches_one_shot(
    pair: tuple[int, int], rows: int, multiple: int, blocks: int, seed: int
) -> None:
    resampler = BatchResampler(*pair)
    block = multiple * resampler.down
    signal = random_pcm(np.random.default_rng(seed), rows, block * blocks)
    whole = one_shot(resampler, signal)
    assert whole.shape == (rows, block * blocks * resampler.up // resampler.down)
    np.testing.assert_allclose(blockwise(resampler, signal, block), whole, rtol=0, atol=ATOL)
