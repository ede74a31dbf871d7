"""Tests for rtp/opus.py: libopus through ctypes, round trips, packet sizes, PLC, in-band FEC and bad input."""

from __future__ import annotations

import contextlib
import ctypes.util
from pathlib import Path

import numpy as np
import numpy.typing as npt
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from rtp import opus
from rtp.opus import OpusDecoder, OpusEncoder, OpusError, libopus_path, libopus_version

FULL_SCALE = 32768


def tone(frequency: float, seconds: float, rate: int = 48000, amplitude: float = 6000.0) -> npt.NDArray[np.int16]:
    """A sine of `frequency` Hz, by default at a speech-like level (-15 dBFS).

    (Louder pure tones trip libopus 1.6 up in 40/60 ms frames at 32 kbit/s: a few hundred ms of wobbling
    amplitude, SNR near 0 dB there. Speech is not a pure tone; 1.3 does not do it.)
    """
    t = np.arange(int(seconds * rate)) / rate
    return (amplitude * np.sin(2 * np.pi * frequency * t)).astype(np.int16)


def voiced(seconds: float, rate: int = 48000, pitch: float = 140.0) -> npt.NDArray[np.int16]:
    """Speech-like audio: a harmonic-rich pulse train with vibrato and a slowly swinging loudness."""
    t = np.arange(int(seconds * rate)) / rate
    phase = 2 * np.pi * np.cumsum(pitch * (1 + 0.05 * np.sin(2 * np.pi * 3 * t))) / rate
    harmonics = sum(np.sin(k * phase) / k for k in range(1, 25) if k * pitch < 4000)
    envelope = 0.6 + 0.4 * np.sin(2 * np.pi * 2 * t)
    return (6000 * harmonics * envelope).astype(np.int16)


def round_trip(
    signal: npt.NDArray[np.int16], frame: int, encoder: OpusEncoder, decoder: OpusDecoder
) -> npt.NDArray[np.int16]:
    """Encode and decode `signal` frame by frame (dropping the incomplete tail)."""
    frames = [signal[i : i + frame] for i in range(0, signal.size - frame + 1, frame)]
    return np.concatenate([decoder.decode(encoder.encode(chunk)) for chunk in frames])


def delay(reference: npt.NDArray[np.int16], decoded: npt.NDArray[np.int16], start: int, max_lag: int) -> int:
    """How many samples `decoded` lags `reference`, by cross-correlating from `start` on."""
    length = min(decoded.size - start - max_lag, 8000)
    window = reference[start : start + length].astype(np.float64)
    candidates = decoded[start : start + length + max_lag].astype(np.float64)
    return int(np.argmax(np.correlate(candidates, window, mode="valid")))


def snr_db(reference: npt.NDArray[np.integer], decoded: npt.NDArray[np.integer]) -> float:
    """Signal-to-noise ratio of `decoded` against `reference`, in dB."""
    ref = reference.astype(np.float64)
    noise = np.sum((ref - decoded.astype(np.float64)) ** 2)
    return float(10 * np.log10(np.sum(ref**2) / max(noise, 1e-9)))


def aligned_snr(reference: npt.NDArray[np.int16], decoded: npt.NDArray[np.int16], rate: int) -> float:
    """SNR after the startup (100 ms) with the codec delay found by cross-correlation taken out."""
    start = rate // 10
    lag = delay(reference, decoded, start, max_lag=rate // 20)
    usable = min(reference.size, decoded.size - lag)
    return snr_db(reference[start:usable], decoded[start + lag : usable + lag])


def peak_frequency(samples: npt.NDArray[np.int16], rate: int) -> float:
    """The strongest frequency in `samples`, in Hz."""
    spectrum = np.abs(np.fft.rfft(samples.astype(np.float64) * np.hanning(samples.size)))
    return float(np.argmax(spectrum) * rate / samples.size)


def rms(samples: npt.NDArray[np.integer]) -> float:
    """Root mean square level."""
    return float(np.sqrt(np.mean(samples.astype(np.float64) ** 2)))


# --- library -------------------------------------------------------------------------------------------------------


def test_libopus_loads_and_prefers_the_copy_bundled_with_pyav() -> None:
    assert libopus_version().startswith("libopus ")
    import av

    bundled = Path(av.__file__).resolve().parent.parent / "av.libs"
    if any(bundled.glob("libopus*.so*")):
        assert Path(libopus_path()).parent == bundled


def test_falls_back_to_the_system_libopus_and_says_clearly_when_there_is_none(monkeypatch: pytest.MonkeyPatch) -> None:
    system = ctypes.util.find_library("opus")
    try:
        if system is not None:
            monkeypatch.setattr(opus, "_candidate_paths", lambda: [system])
            opus._libopus.cache_clear()
            assert libopus_path() == system
            decoded = round_trip(tone(1000, 0.2), 960, OpusEncoder(), OpusDecoder())
            assert abs(peak_frequency(decoded[4800:], 48000) - 1000) < 5
        monkeypatch.setattr(opus, "_candidate_paths", lambda: ["/nonexistent/libopus.so.0"])
        opus._libopus.cache_clear()
        with pytest.raises(OSError, match="libopus not found"):
            OpusDecoder()
    finally:
        monkeypatch.undo()
        opus._libopus.cache_clear()
    assert libopus_path() != "/nonexistent/libopus.so.0"


# --- encoder and round trips ---------------------------------------------------------------------------------------


@pytest.mark.parametrize("frame_ms", [10, 20, 40, 60])
def test_tone_round_trip_at_32_kbit(frame_ms: int) -> None:
    rate = 48000
    signal = tone(1000, 1.0)
    decoded = round_trip(signal, rate * frame_ms // 1000, OpusEncoder(bitrate=32000), OpusDecoder())
    assert abs(peak_frequency(decoded[rate // 10 :], rate) - 1000) < 5
    assert aligned_snr(signal, decoded, rate) > 20


@pytest.mark.parametrize("frame_ms", [2.5, 5])
def test_short_frames_round_trip(frame_ms: float) -> None:
    """2.5 and 5 ms frames are CELT-only and need more bits for the same SNR (about 20 dB at 32 kbit/s)."""
    rate = 48000
    signal = tone(1000, 1.0)
    decoded = round_trip(signal, int(rate * frame_ms / 1000), OpusEncoder(bitrate=64000), OpusDecoder())
    assert abs(peak_frequency(decoded[rate // 10 :], rate) - 1000) < 5
    assert aligned_snr(signal, decoded, rate) > 20


@pytest.mark.parametrize("rate", [8000, 12000, 16000, 24000])
def test_other_rates_keep_the_tone(rate: int) -> None:
    """At narrow/wideband rates SILK codes a pure tone less exactly (about 21 dB), but keeps it."""
    signal = tone(1000, 1.0, rate)
    decoded = round_trip(signal, rate // 50, OpusEncoder(sample_rate=rate), OpusDecoder(sample_rate=rate))
    assert decoded.size == signal.size
    assert abs(peak_frequency(decoded[rate // 10 :], rate) - 1000) < 5
    assert aligned_snr(signal, decoded, rate) > 15


def test_round_trip_delay_is_the_encoder_lookahead() -> None:
    rate = 48000
    noise = (np.random.default_rng(1).standard_normal(rate) * 3000).astype(np.int16)
    encoder = OpusEncoder(bitrate=64000)
    decoded = round_trip(noise, 960, encoder, OpusDecoder())
    assert encoder.lookahead == 312  # 6.5 ms at 48 kHz
    assert delay(noise, decoded, start=rate // 10, max_lag=2000) == encoder.lookahead


def test_decoder_state_survives_1000_frames() -> None:
    rate = 48000
    signal = tone(1000, 20.0)
    decoded = round_trip(signal, 960, OpusEncoder(), OpusDecoder())
    assert decoded.size == 1000 * 960
    last_second = slice(19 * rate, 20 * rate)
    assert abs(peak_frequency(decoded[last_second], rate) - 1000) < 5
    assert aligned_snr(signal[18 * rate :], decoded[18 * rate :], rate) > 20


def test_stereo_is_interleaved_and_mono_decoder_downmixes() -> None:
    encoder = OpusEncoder(channels=2)
    left_right = np.repeat(tone(1000, 0.02), 2)
    packet = encoder.encode(left_right)
    assert OpusDecoder(channels=2).decode(packet).size == 1920
    assert OpusDecoder(channels=1).decode(packet).size == 960


def test_dtx_sends_tiny_packets_for_silence() -> None:
    encoder = OpusEncoder(dtx=True)
    sizes = [len(encoder.encode(np.zeros(960, np.int16))) for _ in range(40)]
    assert sum(size <= 2 for size in sizes[20:]) >= 15


def test_bitrate_controls_packet_size() -> None:
    signal = voiced(1.0)
    sizes = {}
    for bitrate in (12000, 48000):
        encoder = OpusEncoder(bitrate=bitrate, fec=False)
        sizes[bitrate] = np.mean([len(encoder.encode(signal[i : i + 960])) for i in range(0, 48000, 960)])
    assert sizes[12000] < 40 < sizes[48000]


@pytest.mark.parametrize("size", [0, 1, 100, 959, 961, 1440, 3840])
def test_encoder_rejects_frames_of_other_lengths(size: int) -> None:
    with pytest.raises(ValueError, match="Opus frame"):
        OpusEncoder().encode(np.zeros(size, np.int16))


@pytest.mark.parametrize(
    "samples", [np.zeros(960, np.float32), np.zeros(960, np.int32), np.zeros((960, 1), np.int16), b"\x00" * 1920]
)
def test_encoder_rejects_other_arrays(samples: object) -> None:
    with pytest.raises(ValueError, match="1-D int16"):
        OpusEncoder().encode(samples)  # type: ignore[arg-type]


@pytest.mark.parametrize(("rate", "channels"), [(44100, 1), (96000, 1), (48000, 0), (48000, 3)])
def test_unsupported_formats_are_value_errors(rate: int, channels: int) -> None:
    with pytest.raises(ValueError, match="Opus"):
        OpusEncoder(sample_rate=rate, channels=channels)
    with pytest.raises(ValueError, match="Opus"):
        OpusDecoder(sample_rate=rate, channels=channels)


def test_bad_bitrate_is_an_opus_error() -> None:
    with pytest.raises(OpusError, match="invalid argument"):
        OpusEncoder(bitrate=-5)


def test_close_is_idempotent_and_closed_codecs_refuse_work() -> None:
    with OpusEncoder() as encoder, OpusDecoder() as decoder:
        packet = encoder.encode(np.zeros(960, np.int16))
        decoder.decode(packet)
    encoder.close()
    decoder.close()
    with pytest.raises(ValueError, match="closed"):
        encoder.encode(np.zeros(960, np.int16))
    with pytest.raises(ValueError, match="closed"):
        decoder.decode(packet)
    with pytest.raises(ValueError, match="closed"):
        decoder.conceal(960)


# --- packet_samples ------------------------------------------------------------------------------------------------


@pytest.mark.parametrize("frame_ms", [10, 20, 40])
def test_packet_samples(frame_ms: int) -> None:
    packet = OpusEncoder().encode(tone(1000, frame_ms / 1000))
    assert OpusDecoder().packet_samples(packet) == 48 * frame_ms
    assert OpusDecoder(sample_rate=16000).packet_samples(packet) == 16 * frame_ms
    assert OpusDecoder().decode(packet).size == 48 * frame_ms


@pytest.mark.parametrize("payload", [b"", b"\x03", b"\x0b\xff"])
def test_packet_samples_of_malformed_packets(payload: bytes) -> None:
    with pytest.raises(OpusError):
        OpusDecoder().packet_samples(payload)


# --- packet-loss concealment ---------------------------------------------------------------------------------------


def decoded_then_concealed(
    signal: npt.NDArray[np.int16], rate: int, lost: int
) -> tuple[npt.NDArray[np.int16], npt.NDArray[np.int16], OpusDecoder]:
    """Decode 40 frames of 20 ms, then conceal `lost` samples; (decoded, concealed, decoder)."""
    frame = rate // 50
    decoder = OpusDecoder(sample_rate=rate)
    decoded = round_trip(signal[: 40 * frame], frame, OpusEncoder(sample_rate=rate), decoder)
    return decoded, decoder.conceal(lost), decoder


@pytest.mark.parametrize("rate", [48000, 16000])
@pytest.mark.parametrize("kind", ["tone", "voiced"])
def test_plc_continues_the_audio_without_a_jump(rate: int, kind: str) -> None:
    signal = tone(1000, 1.0, rate) if kind == "tone" else voiced(1.0, rate)
    decoded, concealed, _ = decoded_then_concealed(signal, rate, rate // 50)
    extrapolated = 2 * int(decoded[-1]) - int(decoded[-2])
    assert abs(int(concealed[0]) - extrapolated) < 0.03 * FULL_SCALE
    largest_step = np.abs(np.diff(decoded[-rate // 50 :].astype(np.int32))).max()
    assert np.abs(np.diff(concealed.astype(np.int32))).max() <= largest_step * 1.1
    assert rms(concealed) > 0.2 * rms(decoded[-rate // 50 :])  # really concealment, not silence


@pytest.mark.parametrize("kind", ["tone", "voiced"])
def test_plc_decays_over_a_long_loss(kind: str) -> None:
    """Tonal (CELT) concealment fades to silence; SILK's settles into comfort noise well below the speech."""
    rate = 48000
    signal = tone(1000, 1.0) if kind == "tone" else voiced(1.0)
    decoded, concealed, _ = decoded_then_concealed(signal, rate, rate)
    assert concealed.size == rate  # a loss longer than 120 ms is concealed in chunks
    before = rms(decoded[-960:])
    frames = [rms(concealed[i : i + 960]) for i in range(0, rate, 960)]
    assert frames[-1] < frames[0]
    assert max(frames[-5:]) < before / 4  # at least 12 dB down after a second
    if kind == "tone":
        assert max(frames[-5:]) < 0.01 * before


def test_decoding_goes_on_after_concealment() -> None:
    """The PyAV failure mode this module exists to avoid: after a loss, later packets must still decode."""
    encoder, decoder = OpusEncoder(), OpusDecoder()
    signal = tone(1000, 1.0)
    packets = [encoder.encode(signal[i : i + 960]) for i in range(0, 48000, 960)]
    output = [decoder.decode(packet) if i % 7 else decoder.conceal(960) for i, packet in enumerate(packets)]
    assert all(chunk.size == 960 for chunk in output)
    assert abs(peak_frequency(np.concatenate(output[-10:]), 48000) - 1000) < 5


@pytest.mark.parametrize("samples", [0, -960, 100, 959])
def test_conceal_needs_a_positive_multiple_of_2_5_ms(samples: int) -> None:
    with pytest.raises(ValueError, match=r"2\.5 ms"):
        OpusDecoder().conceal(samples)
    with pytest.raises(ValueError, match=r"2\.5 ms"):
        OpusDecoder().recover(b"\x48\x00", samples)


def test_conceal_before_any_packet_is_silence() -> None:
    assert not OpusDecoder().conceal(960).any()


# --- in-band FEC ---------------------------------------------------------------------------------------------------


def loss_outcomes(packets: list[bytes], reference: npt.NDArray[np.int16], lost: int) -> tuple[float, float]:
    """SNR of the lost frame `lost` against the loss-free decode: (concealed by PLC, recovered by FEC)."""
    plc, fec = OpusDecoder(), OpusDecoder()
    for packet in packets[:lost]:
        plc.decode(packet)
        fec.decode(packet)
    original = reference[lost * 960 : (lost + 1) * 960]
    return snr_db(original, plc.conceal(960)), snr_db(original, fec.recover(packets[lost + 1], 960))


def test_fec_recovers_a_lost_frame_better_than_plc() -> None:
    signal = voiced(2.0)
    encoder = OpusEncoder(bitrate=32000, fec=True, expected_loss=20)
    packets = [encoder.encode(signal[i : i + 960]) for i in range(0, signal.size, 960)]
    reference_decoder = OpusDecoder()
    reference = np.concatenate([reference_decoder.decode(packet) for packet in packets])
    outcomes = np.array([loss_outcomes(packets, reference, lost) for lost in range(20, 96, 4)])
    plc, fec = outcomes[:, 0], outcomes[:, 1]
    # libopus adds redundancy only for active, loud enough frames; where it does, FEC is far closer than PLC.
    assert np.all(fec >= plc - 0.5)
    assert np.sum(fec > plc + 6) >= len(outcomes) // 2
    assert fec.mean() > plc.mean() + 6


def test_recover_without_fec_data_falls_back_to_plc() -> None:
    signal = voiced(1.0)
    encoder = OpusEncoder(fec=False)
    packets = [encoder.encode(signal[i : i + 960]) for i in range(0, signal.size, 960)]
    plc, fec = OpusDecoder(), OpusDecoder()
    for packet in packets[:30]:
        plc.decode(packet)
        fec.decode(packet)
    np.testing.assert_array_equal(fec.recover(packets[31], 960), plc.conceal(960))
    np.testing.assert_array_equal(fec.decode(packets[31]), plc.decode(packets[31]))


def test_recover_a_longer_gap_than_the_next_packet() -> None:
    """Two lost 20 ms frames: libopus conceals the first 20 ms and rebuilds the last 20 ms from FEC."""
    signal = voiced(1.0)
    encoder = OpusEncoder(fec=True, expected_loss=20)
    packets = [encoder.encode(signal[i : i + 960]) for i in range(0, signal.size, 960)]
    decoder = OpusDecoder()
    for packet in packets[:30]:
        decoder.decode(packet)
    assert decoder.recover(packets[32], 1920).size == 1920
    assert decoder.decode(packets[32]).size == 960
    with pytest.raises(ValueError, match="120 ms"):
        decoder.recover(packets[33], 48000)


# --- malformed input -----------------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    "payload",
    [
        b"",  # RTP never carries an empty Opus payload (libopus would take it as a loss)
        b"\x03",  # code 3 (arbitrary frame count) without its count byte
        b"\x03\x00",  # ... with zero frames
        b"\x03\xff",  # ... with 63 frames, more than 120 ms
        b"\x01\x01",  # code 1 (two equal frames) with an odd frame length
        b"\x02\xfc\xff",  # code 2 with a first-frame length beyond the packet
        b"\xfc" + bytes(1300),  # a CELT frame longer than 1275 bytes
    ],
)
def test_malformed_payloads_raise_opus_error(payload: bytes) -> None:
    decoder = OpusDecoder()
    with pytest.raises(OpusError, match="libopus error"):
        decoder.decode(payload)
    if payload:
        with pytest.raises(OpusError):
            decoder.recover(payload, 960)
    packet = OpusEncoder().encode(tone(1000, 0.02))
    assert decoder.decode(packet).size == 960  # the decoder is still usable


@settings(max_examples=300, deadline=None)
@given(payload=st.binary(max_size=1500))
def test_arbitrary_bytes_decode_or_raise_opus_error(payload: bytes) -> None:
    decoder = OpusDecoder()
    try:
        samples = decoder.decode(payload)
    except OpusError:
        pass
    else:
        assert samples.dtype == np.int16
        assert samples.size == decoder.packet_samples(payload) <= 5760
    with contextlib.suppress(OpusError):
        decoder.recover(payload, 960)
    assert decoder.conceal(960).size == 960


@settings(max_examples=200, deadline=None)
@given(payloads=st.lists(st.binary(min_size=1, max_size=200), min_size=1, max_size=10))
def test_a_stream_of_arbitrary_bytes_never_breaks_the_decoder(payloads: list[bytes]) -> None:
    decoder = OpusDecoder(sample_rate=16000)
    for payload in payloads:
        try:
            decoder.decode(payload)
        except OpusError:
            decoder.conceal(320)
    assert decoder.decode(OpusEncoder(sample_rate=16000).encode(tone(1000, 0.02, 16000))).size == 320
