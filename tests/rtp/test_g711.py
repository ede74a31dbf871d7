"""Tests for rtp/g711.py: ITU-T G.711 reference values, round trips, quantisation error and audioop agreement."""

from __future__ import annotations

import warnings
from types import ModuleType

import numpy as np
import numpy.typing as npt
import pytest

from rtp.g711 import (
    ALAW_SILENCE,
    ALAW_TO_LINEAR,
    LINEAR_TO_ALAW,
    LINEAR_TO_ULAW,
    ULAW_SILENCE,
    ULAW_TO_LINEAR,
    alaw_decode,
    alaw_encode,
    ulaw_decode,
    ulaw_encode,
)

ALL_CODES = np.arange(256, dtype=np.uint8)
ALL_SAMPLES = np.arange(-32768, 32768, dtype=np.int32).astype(np.int16)


def audioop_module() -> ModuleType:
    """Python's audioop (deprecated, removed in 3.13), or skip."""
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", DeprecationWarning)
        module: ModuleType = pytest.importorskip("audioop")
    return module


def differing(ours: npt.NDArray[np.integer], theirs: npt.NDArray[np.integer],
              inputs: npt.NDArray[np.integer]) -> list[tuple[int, int, int]]:
    """(input, ours, theirs) for every input where the two arrays disagree."""
    index = np.nonzero(ours != theirs)[0]
    return [(int(inputs[i]), int(ours[i]), int(theirs[i])) for i in index]


# --- reference values ------------------------------------------------------------------------------------------


@pytest.mark.parametrize(("code", "linear"), [(0x00, -32124), (0x80, 32124), (0xFF, 0), (0x7F, 0),
                                               (0xFE, 8), (0x7E, -8), (0xF0, 120), (0x70, -120)])
def test_ulaw_reference_values(code: int, linear: int) -> None:
    assert int(ULAW_TO_LINEAR[code]) == linear
    assert int(ulaw_decode(np.array([code], dtype=np.uint8))[0]) == linear


@pytest.mark.parametrize(("code", "linear"), [(0xD5, 8), (0x55, -8), (0x2A, -32256), (0xAA, 32256),
                                               (0xD4, 24), (0x54, -24), (0xC5, 264), (0x45, -264)])
def test_alaw_reference_values(code: int, linear: int) -> None:
    assert int(ALAW_TO_LINEAR[code]) == linear
    assert int(alaw_decode(np.array([code], dtype=np.uint8))[0]) == linear


def test_silence_codes() -> None:
    assert ULAW_SILENCE == 0xFF
    assert ALAW_SILENCE == 0xD5
    assert int(ulaw_encode(np.array([0], dtype=np.int16))[0]) == ULAW_SILENCE
    assert int(alaw_encode(np.array([0], dtype=np.int16))[0]) == ALAW_SILENCE


def test_table_shapes_and_dtypes() -> None:
    assert ULAW_TO_LINEAR.shape == ALAW_TO_LINEAR.shape == (256,)
    assert ULAW_TO_LINEAR.dtype == ALAW_TO_LINEAR.dtype == np.int16
    assert LINEAR_TO_ULAW.shape == LINEAR_TO_ALAW.shape == (65536,)
    assert LINEAR_TO_ULAW.dtype == LINEAR_TO_ALAW.dtype == np.uint8


def test_decode_tables_are_odd_symmetric() -> None:
    ulaw = ULAW_TO_LINEAR.astype(np.int32)
    alaw = ALAW_TO_LINEAR.astype(np.int32)
    assert np.array_equal(ulaw[ALL_CODES ^ 0x80], -ulaw)
    assert np.array_equal(alaw[ALL_CODES ^ 0x80], -alaw)


# --- round trips -----------------------------------------------------------------------------------------------


def test_alaw_every_code_round_trips() -> None:
    assert np.array_equal(alaw_encode(alaw_decode(ALL_CODES)), ALL_CODES)


def test_ulaw_every_code_but_negative_zero_round_trips() -> None:
    back = ulaw_encode(ulaw_decode(ALL_CODES))
    assert np.nonzero(back != ALL_CODES)[0].tolist() == [0x7F]
    assert int(back[0x7F]) == 0xFF  # "negative zero" encodes back as positive zero


def test_encoding_keeps_shape() -> None:
    samples = np.arange(-600, 600, dtype=np.int16).reshape(3, 400)
    assert ulaw_encode(samples).shape == (3, 400)
    assert alaw_decode(alaw_encode(samples)).shape == (3, 400)


@pytest.mark.parametrize("law", ["ulaw", "alaw"])
def test_quantisation_error_and_monotonic(law: str) -> None:
    encode, decode = (ulaw_encode, ulaw_decode) if law == "ulaw" else (alaw_encode, alaw_decode)
    x = ALL_SAMPLES.astype(np.int64)
    y = decode(encode(ALL_SAMPLES)).astype(np.int64)
    large = np.abs(x) > 256
    relative = np.abs(y - x)[large] / np.abs(x)[large]
    assert relative.max() < 1 / 16
    assert np.abs(y - x)[~large].max() <= 16
    assert np.all(np.diff(y) >= 0)


# --- audioop cross-check ---------------------------------------------------------------------------------------


def test_ulaw_decode_matches_audioop() -> None:
    audioop = audioop_module()
    theirs = np.frombuffer(audioop.ulaw2lin(ALL_CODES.tobytes(), 2), dtype=np.int16)
    assert differing(ulaw_decode(ALL_CODES), theirs, ALL_CODES) == []


def test_alaw_decode_matches_audioop() -> None:
    audioop = audioop_module()
    theirs = np.frombuffer(audioop.alaw2lin(ALL_CODES.tobytes(), 2), dtype=np.int16)
    assert differing(alaw_decode(ALL_CODES), theirs, ALL_CODES) == []


def test_ulaw_encode_matches_audioop() -> None:
    audioop = audioop_module()
    theirs = np.frombuffer(audioop.lin2ulaw(ALL_SAMPLES.tobytes(), 2), dtype=np.uint8)
    assert differing(ulaw_encode(ALL_SAMPLES), theirs, ALL_SAMPLES) == []


def test_alaw_encode_matches_audioop() -> None:
    audioop = audioop_module()
    theirs = np.frombuffer(audioop.lin2alaw(ALL_SAMPLES.tobytes(), 2), dtype=np.uint8)
    assert differing(alaw_encode(ALL_SAMPLES), theirs, ALL_SAMPLES) == []
