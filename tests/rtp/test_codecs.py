"""Tests for rtp/codecs.py: the codec registry, frame sizes, G.711 batches and per-stream coders."""

from __future__ import annotations

import numpy as np
import pytest

from rtp.codecs import CODECS, G722, MIX_RATES, OPUS, PCMA, PCMU, AudioCodec, G711Codec
from rtp.g711 import alaw_decode, ulaw_decode
from rtp.opus import OpusEncoder


def test_registry_in_our_order_of_preference() -> None:
    assert list(CODECS) == ["opus", "G722", "PCMU", "PCMA"]
    assert sorted({codec.sample_rate for codec in CODECS.values()}) == list(MIX_RATES)


@pytest.mark.parametrize(("codec", "sdp", "frame", "frame_clock", "byte_stream"), [
    (OPUS, "opus/48000/2", 960, 960, False),
    (G722, "G722/8000", 320, 160, True),
    (PCMU, "PCMU/8000", 160, 160, True),
    (PCMA, "PCMA/8000", 160, 160, True),
])
def test_rates_and_frames(codec: AudioCodec, sdp: str, frame: int, frame_clock: int, byte_stream: bool) -> None:
    assert str(codec) == sdp
    assert (codec.frame_samples, codec.frame_clock, codec.byte_stream) == (frame, frame_clock, byte_stream)


def test_static_payload_types_and_opus_fmtp() -> None:
    assert (PCMU.static_payload_type, PCMA.static_payload_type, G722.static_payload_type) == (0, 8, 9)
    assert OPUS.static_payload_type is None
    assert OPUS.fmtp is not None and "useinbandfec=1" in OPUS.fmtp


@pytest.mark.parametrize("codec", [PCMU, PCMA, G722])
def test_byte_stream_durations_are_payload_lengths(codec: AudioCodec) -> None:
    assert codec.packet_duration(b"\x00" * 240) == 240


@pytest.mark.parametrize("frame_ms", [10, 20, 40, 60])
def test_opus_durations_come_from_the_toc(frame_ms: int) -> None:
    packet = OpusEncoder().encode(np.zeros(48 * frame_ms, dtype=np.int16))
    assert OPUS.packet_duration(packet) == 48 * frame_ms


def test_a_malformed_opus_packet_has_no_duration() -> None:
    with pytest.raises(ValueError):
        OPUS.packet_duration(b"\xff")


@pytest.mark.parametrize(("codec", "decode"), [(PCMU, ulaw_decode), (PCMA, alaw_decode)])
def test_g711_batch_decoding_equals_stream_decoding(codec: G711Codec, decode: object) -> None:
    rng = np.random.default_rng(7)
    payloads = [rng.integers(0, 256, 160, dtype=np.uint8).tobytes() for _ in range(5)]
    batch = codec.decode_frames(payloads)
    assert batch.shape == (5, 160) and batch.dtype == np.int16
    for row, payload in zip(batch, payloads, strict=True):
        assert np.array_equal(row, codec.new_decoder().decode(payload))
    assert codec.decode_frames([]).shape[0] == 0


@pytest.mark.parametrize("codec", [PCMU, PCMA])
def test_g711_batch_encoding_round_trips(codec: G711Codec) -> None:
    samples = (np.arange(3 * 160, dtype=np.int32) * 97 % 20000 - 10000).astype(np.int16).reshape(3, 160)
    encoded = codec.encode_frames(samples)
    assert encoded.shape == (3, 160) and encoded.dtype == np.uint8
    assert codec.new_encoder().encode(samples[1]) == encoded[1].tobytes()
    error = np.abs(codec.decode_frames([row.tobytes() for row in encoded]).astype(np.int32) - samples)
    assert int(error.max()) <= 320  # G.711's coarsest step near full scale is 512 (μ) / 1024 (A) wide; here < 10000


@pytest.mark.parametrize("codec", [PCMU, PCMA])
def test_fill_byte_is_silence(codec: G711Codec) -> None:
    assert np.abs(codec.decode_frames([bytes([codec.fill_byte]) * 160]).astype(np.int32)).max() <= 8


@pytest.mark.parametrize("codec", [OPUS, G722, PCMU, PCMA])
def test_every_codec_round_trips_a_tone_at_its_rate(codec: AudioCodec) -> None:
    rate, frame = codec.sample_rate, codec.frame_samples
    t = np.arange(25 * frame) / rate
    signal = np.rint(8000 * np.sin(2 * np.pi * 1000 * t)).astype(np.int16)
    encoder, decoder = codec.new_encoder(), codec.new_decoder()
    out = np.concatenate([decoder.decode(encoder.encode(signal[i : i + frame])) for i in range(0, signal.size, frame)])
    assert out.size == signal.size
    spectrum = np.abs(np.fft.rfft(out[rate // 10 :] * np.hanning(out.size - rate // 10)))
    assert abs(np.argmax(spectrum) * rate / (out.size - rate // 10) - 1000) < 15
    assert codec.new_decoder().conceal(frame).size == frame
