"""Tests for rtp/codecs.py: the PCMU/PCMA descriptions and batch frame decoding."""

from __future__ import annotations

import numpy as np
import pytest

from rtp.codecs import CODECS, PCMA, PCMU, AudioCodec
from rtp.g711 import alaw_decode, alaw_encode, ulaw_decode, ulaw_encode


def test_pcmu_properties() -> None:
    assert (PCMU.name, PCMU.clock_rate, PCMU.static_payload_type, PCMU.silence) == ("PCMU", 8000, 0, 0xFF)
    assert PCMU.decode is ulaw_decode
    assert PCMU.encode is ulaw_encode


def test_pcma_properties() -> None:
    assert (PCMA.name, PCMA.clock_rate, PCMA.static_payload_type, PCMA.silence) == ("PCMA", 8000, 8, 0xD5)
    assert PCMA.decode is alaw_decode
    assert PCMA.encode is alaw_encode


def test_codecs_by_name_in_preference_order() -> None:
    assert list(CODECS) == ["PCMU", "PCMA"]
    assert CODECS["PCMU"] is PCMU
    assert CODECS["PCMA"] is PCMA


@pytest.mark.parametrize("codec", [PCMU, PCMA])
@pytest.mark.parametrize(("ptime", "samples"), [(10, 80), (20, 160), (30, 240), (60, 480)])
def test_samples_per_frame(codec: AudioCodec, ptime: int, samples: int) -> None:
    assert codec.samples_per_frame(ptime) == samples


@pytest.mark.parametrize("codec", [PCMU, PCMA])
def test_samples_per_frame_default_is_20_ms(codec: AudioCodec) -> None:
    assert codec.samples_per_frame() == 160


@pytest.mark.parametrize("codec", [PCMU, PCMA])
def test_decode_frames_stacks_payloads(codec: AudioCodec) -> None:
    rng = np.random.default_rng(1234)
    payloads = [rng.integers(0, 256, 160, dtype=np.uint8).tobytes() for _ in range(5)]
    frames = codec.decode_frames(payloads, 160)
    assert frames.shape == (5, 160)
    assert frames.dtype == np.int16
    for row, payload in zip(frames, payloads, strict=True):
        assert np.array_equal(row, codec.decode(np.frombuffer(payload, dtype=np.uint8)))


@pytest.mark.parametrize("codec", [PCMU, PCMA])
def test_decode_frames_of_silence_is_near_zero(codec: AudioCodec) -> None:
    frames = codec.decode_frames([bytes([codec.silence]) * 160] * 3, 160)
    assert frames.shape == (3, 160)
    assert np.all(np.abs(frames.astype(np.int32)) <= 8)


@pytest.mark.parametrize("codec", [PCMU, PCMA])
def test_encode_then_decode_frames(codec: AudioCodec) -> None:
    samples = (np.arange(2 * 160, dtype=np.int32) * 97 % 20000 - 10000).astype(np.int16).reshape(2, 160)
    encoded = codec.encode(samples)
    assert encoded.shape == (2, 160)
    assert encoded.dtype == np.uint8
    frames = codec.decode_frames([encoded[0].tobytes(), encoded[1].tobytes()], 160)
    assert np.array_equal(frames, codec.decode(encoded))


def test_decode_frames_rejects_wrong_length() -> None:
    with pytest.raises(ValueError):
        PCMU.decode_frames([b"\xff" * 160, b"\xff" * 159], 160)
