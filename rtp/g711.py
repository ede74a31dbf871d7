"""G.711 μ-law and A-law by table lookup, vectorised over whole arrays.

Decoding maps each byte through a 256-entry table; encoding maps each 16-bit sample through a
65536-entry table indexed by the sample's bit pattern. Tables are built once at import from the
ITU-T G.711 segment rules, so encoding a whole tick for every participant is one numpy indexing call.
"""

from __future__ import annotations

import numpy as np
import numpy.typing as npt

_ULAW_SEGMENT_ENDS = np.array([0x3F, 0x7F, 0xFF, 0x1FF, 0x3FF, 0x7FF, 0xFFF, 0x1FFF])
_ALAW_SEGMENT_ENDS = np.array([0x1F, 0x3F, 0x7F, 0xFF, 0x1FF, 0x3FF, 0x7FF, 0xFFF])
_ULAW_CLIP = 8159
_ULAW_BIAS = 0x21


def _ulaw_decode_table() -> npt.NDArray[np.int16]:
    codes = ~np.arange(256, dtype=np.int32) & 0xFF
    exponent = (codes >> 4) & 0x07
    mantissa = codes & 0x0F
    magnitude = (((mantissa << 3) + 0x84) << exponent) - 0x84
    return np.where(codes & 0x80, -magnitude, magnitude).astype(np.int16)


def _alaw_decode_table() -> npt.NDArray[np.int16]:
    codes = np.arange(256, dtype=np.int32) ^ 0x55
    exponent = (codes >> 4) & 0x07
    mantissa = codes & 0x0F
    magnitude = np.where(exponent == 0, (mantissa << 4) + 8, ((mantissa << 4) + 0x108) << np.maximum(exponent - 1, 0))
    return np.where(codes & 0x80, magnitude, -magnitude).astype(np.int16)


def _ulaw_encode_table() -> npt.NDArray[np.uint8]:
    pcm = np.arange(65536, dtype=np.uint16).view(np.int16).astype(np.int32) >> 2
    mask = np.where(pcm < 0, 0x7F, 0xFF)
    magnitude = np.minimum(np.abs(pcm), _ULAW_CLIP) + _ULAW_BIAS
    segment = np.searchsorted(_ULAW_SEGMENT_ENDS, magnitude)
    value = np.where(segment >= 8, 0x7F, (segment << 4) | ((magnitude >> (np.minimum(segment, 7) + 1)) & 0x0F))
    return (value ^ mask).astype(np.uint8)


def _alaw_encode_table() -> npt.NDArray[np.uint8]:
    pcm = np.arange(65536, dtype=np.uint16).view(np.int16).astype(np.int32) >> 3
    mask = np.where(pcm >= 0, 0xD5, 0x55)
    magnitude = np.where(pcm >= 0, pcm, -pcm - 1)
    segment = np.searchsorted(_ALAW_SEGMENT_ENDS, magnitude)
    shift = np.where(segment < 2, 1, np.minimum(segment, 7))
    value = np.where(segment >= 8, 0x7F, (segment << 4) | ((magnitude >> shift) & 0x0F))
    return (value ^ mask).astype(np.uint8)


ULAW_TO_LINEAR = _ulaw_decode_table()
ALAW_TO_LINEAR = _alaw_decode_table()
LINEAR_TO_ULAW = _ulaw_encode_table()
LINEAR_TO_ALAW = _alaw_encode_table()
ULAW_SILENCE = 0xFF
ALAW_SILENCE = 0xD5
DECODE_TABLES = np.stack([ULAW_TO_LINEAR, ALAW_TO_LINEAR])
"""Both decode tables, indexed [law, code] (0 μ-law, 1 A-law)."""
DECODE_TO_FLOAT = DECODE_TABLES.astype(np.float32)
"""The decode tables with float samples, for a mixer that sums in float: no integer step between."""
ENCODE_TABLES = np.stack([LINEAR_TO_ULAW, LINEAR_TO_ALAW])
"""Both encode tables, indexed [law, sample as uint16]."""


def ulaw_decode(codes: npt.NDArray[np.uint8]) -> npt.NDArray[np.int16]:
    """μ-law bytes (any shape) to 16-bit linear samples."""
    return ULAW_TO_LINEAR[codes]


def alaw_decode(codes: npt.NDArray[np.uint8]) -> npt.NDArray[np.int16]:
    """A-law bytes (any shape) to 16-bit linear samples."""
    return ALAW_TO_LINEAR[codes]


def ulaw_encode(samples: npt.NDArray[np.int16]) -> npt.NDArray[np.uint8]:
    """16-bit linear samples (any shape) to μ-law bytes."""
    return LINEAR_TO_ULAW[samples.view(np.uint16)]


def alaw_encode(samples: npt.NDArray[np.int16]) -> npt.NDArray[np.uint8]:
    """16-bit linear samples (any shape) to A-law bytes."""
    return LINEAR_TO_ALAW[samples.view(np.uint16)]
