"""Tests for rtp/g722.py: G.722 through FFmpeg, frame sizes, round trips, decoder state and loss concealment."""

from __future__ import annotations

import itertools

import numpy as np
import numpy.typing as npt
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from rtp.g722 import CODEC_DELAY, FRAME_BYTES, FRAME_SAMPLES, SAMPLE_RATE, G722Decoder, G722Encoder

RATE = SAMPLE_RATE


def sines(*parts: tuple[float, float], seconds: float = 1.0) -> npt.NDArray[np.int16]:
    """A sum of sines, each given as (frequency in Hz, amplitude)."""
    t = np.arange(int(seconds * RATE)) / RATE
    waves = [amplitude * np.sin(2 * np.pi * frequency * t) for frequency, amplitude in parts]
    total: npt.NDArray[np.float64] = np.sum(waves, axis=0)
    return total.astype(np.int16)


def voiced(seconds: float = 1.0, pitch: float = 137.0) -> npt.NDArray[np.int16]:
    """Speech-like: a harmonic series whose period (116.8 samples) does not divide 20 ms."""
    t = np.arange(int(seconds * RATE)) / RATE
    harmonics = [np.sin(2 * np.pi * k * pitch * t) / k for k in range(1, 20)]
    total: npt.NDArray[np.float64] = np.sum(harmonics, axis=0)
    return (5000 * total).astype(np.int16)


def frames(signal: npt.NDArray[np.int16]) -> list[npt.NDArray[np.int16]]:
    """`signal` cut into 20 ms frames (incomplete tail dropped)."""
    return [signal[i : i + FRAME_SAMPLES] for i in range(0, signal.size - FRAME_SAMPLES + 1, FRAME_SAMPLES)]


def encode_all(signal: npt.NDArray[np.int16]) -> list[bytes]:
    """One G.722 payload per 20 ms frame."""
    encoder = G722Encoder()
    return [encoder.encode(frame) for frame in frames(signal)]


def round_trip(signal: npt.NDArray[np.int16]) -> npt.NDArray[np.int16]:
    """Encode and decode frame by frame."""
    decoder = G722Decoder()
    return np.concatenate([decoder.decode(payload) for payload in encode_all(signal)])


def snr_db(reference: npt.NDArray[np.integer], decoded: npt.NDArray[np.integer]) -> float:
    """Signal-to-noise ratio of `decoded` against `reference`, in dB."""
    ref = reference.astype(np.float64)
    noise = np.sum((ref - decoded.astype(np.float64)) ** 2)
    return float(10 * np.log10(np.sum(ref**2) / max(noise, 1e-9)))


def delay(reference: npt.NDArray[np.int16], decoded: npt.NDArray[np.int16], start: int = 1600) -> int:
    """How many samples `decoded` lags `reference` (cross-correlation over lags 0-199)."""
    window = reference[start : start + 8000].astype(np.float64)
    candidates = decoded[start : start + 8000 + 199].astype(np.float64)
    return int(np.argmax(np.correlate(candidates, window, mode="valid")))


def aligned_snr(reference: npt.NDArray[np.int16], decoded: npt.NDArray[np.int16]) -> float:
    """SNR after the first 20 ms, with the codec delay taken out."""
    usable = decoded.size - CODEC_DELAY
    return snr_db(reference[FRAME_SAMPLES:usable], decoded[FRAME_SAMPLES + CODEC_DELAY :])


def spectrum_peaks(samples: npt.NDArray[np.int16], count: int) -> list[float]:
    """The `count` strongest spectral peaks, in Hz, lowest first."""
    spectrum = np.abs(np.fft.rfft(samples.astype(np.float64) * np.hanning(samples.size)))
    bins: list[int] = []
    for index in np.argsort(spectrum)[::-1]:
        if all(abs(int(index) - other) > 20 for other in bins):
            bins.append(int(index))
        if len(bins) == count:
            break
    return sorted(b * RATE / samples.size for b in bins)


def largest_step(samples: npt.NDArray[np.integer]) -> int:
    """Largest difference between neighbouring samples: where a click would show."""
    return int(np.abs(np.diff(samples.astype(np.int32))).max())


def rms(samples: npt.NDArray[np.integer]) -> float:
    """Root mean square level."""
    return float(np.sqrt(np.mean(samples.astype(np.float64) ** 2))) if samples.size else 0.0


# --- encoder -------------------------------------------------------------------------------------------------------


def test_every_20_ms_frame_gives_its_160_bytes_at_once() -> None:
    """No frame is held back (not even the first): PyAV's FIFO only ever sees whole codec frames."""
    encoder = G722Encoder()
    for frame in frames(sines((1000, 8000), seconds=0.2)):
        assert len(encoder.encode(frame)) == FRAME_BYTES == 160


def test_several_frames_at_once() -> None:
    signal = sines((1000, 8000), seconds=0.12)
    one_by_one = b"".join(encode_all(signal))
    encoder = G722Encoder()
    assert encoder.encode(signal[:640]) == one_by_one[:320]  # 40 ms
    assert encoder.encode(signal[640:1920]) == one_by_one[320:]  # 80 ms


@pytest.mark.parametrize("size", [0, 1, 160, 319, 321, 480])
def test_encoder_takes_only_whole_frames(size: int) -> None:
    with pytest.raises(ValueError, match="whole 20 ms frames"):
        G722Encoder().encode(np.zeros(size, np.int16))


@pytest.mark.parametrize("samples", [np.zeros(320, np.float64), np.zeros((1, 320), np.int16), b"\x00" * 640])
def test_encoder_takes_only_1d_int16(samples: object) -> None:
    with pytest.raises(ValueError, match="1-D int16"):
        G722Encoder().encode(samples)  # type: ignore[arg-type]


# --- round trips ---------------------------------------------------------------------------------------------------


def test_codec_delay_is_22_samples() -> None:
    noise = (np.random.default_rng(7).standard_normal(RATE) * 2000).astype(np.int16)
    assert delay(noise, round_trip(noise)) == CODEC_DELAY == 22


def test_1khz_tone_round_trip() -> None:
    signal = sines((1000, 10000))
    decoded = round_trip(signal)
    assert decoded.size == signal.size
    assert abs(spectrum_peaks(decoded[FRAME_SAMPLES:], 1)[0] - 1000) < 5
    assert aligned_snr(signal, decoded) > 25


def test_300hz_and_3khz_mix_round_trip() -> None:
    signal = sines((300, 6000), (3000, 6000))
    decoded = round_trip(signal)
    low, high = spectrum_peaks(decoded[FRAME_SAMPLES:], 2)
    assert abs(low - 300) < 5
    assert abs(high - 3000) < 5
    assert aligned_snr(signal, decoded) > 25


def test_high_band_tone_survives() -> None:
    """A 6 kHz tone lives in G.722's upper sub-band (4-8 kHz), which narrowband codecs lose entirely."""
    decoded = round_trip(sines((6000, 8000)))
    assert abs(spectrum_peaks(decoded[FRAME_SAMPLES:], 1)[0] - 6000) < 5


def test_decoder_state_survives_1000_frames() -> None:
    signal = sines((1000, 10000), seconds=20.0)
    decoded = round_trip(signal)
    assert decoded.size == 1000 * FRAME_SAMPLES
    last_second = decoded[19 * RATE :]
    assert abs(spectrum_peaks(last_second, 1)[0] - 1000) < 5
    assert aligned_snr(signal[19 * RATE :], last_second) > 25


@pytest.mark.parametrize("length", [0, 1, 7, 80, 160, 1000])
def test_two_samples_per_byte_for_any_length(length: int) -> None:
    decoder = G722Decoder()
    assert decoder.decode(bytes(range(256))).size == 512
    decoded = decoder.decode(bytes(length))
    assert decoded.dtype == np.int16
    assert decoded.size == 2 * length


def test_state_is_carried_across_packets() -> None:
    """However the stream is cut into packets, the decoded audio is the same."""
    stream = b"".join(encode_all(voiced(0.2)))
    whole = G722Decoder().decode(stream)
    decoder = G722Decoder()
    cuts = [0, 1, 38, 160, 161, 999, 1000, len(stream)]
    pieces = [decoder.decode(stream[a:b]) for a, b in itertools.pairwise(cuts)]
    np.testing.assert_array_equal(np.concatenate(pieces), whole)


def test_an_empty_payload_does_not_end_the_stream() -> None:
    """An empty PyAV packet means end-of-stream; the decoder must never pass one on."""
    payloads = encode_all(sines((1000, 8000), seconds=0.1))
    decoder = G722Decoder()
    decoder.decode(payloads[0])
    assert decoder.decode(b"").size == 0
    assert decoder.decode(payloads[1]).size == FRAME_SAMPLES


# --- concealment ---------------------------------------------------------------------------------------------------


def lose(signal: npt.NDArray[np.int16], received: int, lost: int) -> tuple[G722Decoder, npt.NDArray[np.int16]]:
    """Decode the first `received` frames of `signal`; return the decoder and what it decoded."""
    decoder = G722Decoder()
    payloads = encode_all(signal)
    decoded = np.concatenate([decoder.decode(payload) for payload in payloads[:received]])
    return decoder, decoded


SIGNALS = {
    "1 kHz": sines((1000, 10000)),
    "300 Hz + 3 kHz": sines((300, 6000), (3000, 6000)),
    "voiced 137 Hz": voiced(),
}


@pytest.mark.parametrize("name", list(SIGNALS))
def test_conceal_joins_without_a_click(name: str) -> None:
    signal = SIGNALS[name]
    decoder, decoded = lose(signal, 20, 4)
    concealed = np.concatenate([decoder.conceal(FRAME_SAMPLES) for _ in range(3)])
    normal = largest_step(decoded[-4 * FRAME_SAMPLES :])
    joined = np.concatenate((decoded[-FRAME_SAMPLES:], concealed))
    assert largest_step(joined) <= normal * 1.05
    join = joined[FRAME_SAMPLES - 1 : FRAME_SAMPLES + 1]
    assert largest_step(join) <= normal * 1.05
    assert rms(concealed[:FRAME_SAMPLES]) > 0.8 * rms(decoded[-FRAME_SAMPLES:])  # a repeat, not silence


@pytest.mark.parametrize("name", list(SIGNALS))
def test_conceal_fades_to_silence_over_60_ms(name: str) -> None:
    decoder, decoded = lose(SIGNALS[name], 20, 6)
    concealed = decoder.conceal(6 * FRAME_SAMPLES)
    levels = [rms(concealed[i : i + 160]) for i in range(0, concealed.size, 160)]  # 10 ms steps
    assert levels[0] == pytest.approx(rms(decoded[-160:]), rel=0.3)  # full level for the first 10 ms
    assert all(later <= earlier * 1.1 for earlier, later in itertools.pairwise(levels))
    assert levels[4] < 0.6 * levels[0]
    assert not concealed[960:].any()  # silent after 60 ms


def test_consecutive_conceals_continue_one_fade() -> None:
    signal = voiced()
    in_pieces, _ = lose(signal, 20, 0)
    at_once, _ = lose(signal, 20, 0)
    pieces = np.concatenate([in_pieces.conceal(n) for n in (320, 100, 220, 0, 640)])
    np.testing.assert_array_equal(pieces, at_once.conceal(1280))


def test_a_real_packet_resets_the_fade_and_is_cross_faded_in() -> None:
    signal = sines((1000, 10000))
    payloads = encode_all(signal)
    decoder, decoded = lose(signal, 20, 0)
    decoder.conceal(5 * FRAME_SAMPLES)
    resumed = decoder.decode(payloads[25])
    assert abs(int(resumed[0])) < 1000  # from (almost) silence after 100 ms of loss, fading in over 2 ms
    assert largest_step(resumed) <= largest_step(decoded) * 1.5
    again = decoder.conceal(FRAME_SAMPLES)  # a new loss starts at full level again
    assert rms(again) > 0.8 * rms(resumed)
    assert largest_step(np.concatenate((resumed, again))) <= largest_step(decoded) * 1.05


def test_resuming_after_a_short_loss_has_no_click() -> None:
    signal = voiced()
    payloads = encode_all(signal)
    decoder, decoded = lose(signal, 20, 0)
    concealed = decoder.conceal(FRAME_SAMPLES)
    resumed = decoder.decode(payloads[21])
    assert largest_step(np.concatenate((concealed, resumed))) <= largest_step(decoded) * 1.05


def test_conceal_before_any_audio_is_silence() -> None:
    assert not G722Decoder().conceal(FRAME_SAMPLES).any()


def test_conceal_rejects_negative_lengths() -> None:
    with pytest.raises(ValueError, match="negative"):
        G722Decoder().conceal(-1)


# --- arbitrary input -----------------------------------------------------------------------------------------------


@settings(max_examples=300, deadline=None)
@given(payloads=st.lists(st.binary(max_size=400), min_size=1, max_size=8), losses=st.lists(st.integers(0, 700)))
def test_arbitrary_bytes_always_decode(payloads: list[bytes], losses: list[int]) -> None:
    decoder = G722Decoder()
    for index, payload in enumerate(payloads):
        decoded = decoder.decode(payload)
        assert decoded.dtype == np.int16
        assert decoded.size == 2 * len(payload)
        if index < len(losses):
            assert decoder.conceal(losses[index]).size == losses[index]
