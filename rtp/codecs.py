"""Audio codecs the RTP layer can carry, with batch decode/encode over many participants at once."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass

import numpy as np
import numpy.typing as npt

from .g711 import ALAW_SILENCE, ULAW_SILENCE, alaw_decode, alaw_encode, ulaw_decode, ulaw_encode


@dataclass(frozen=True)
class AudioCodec:
    """A sample-per-byte codec: the frame for `n` samples is `n` bytes, so frames stack into arrays."""

    name: str
    clock_rate: int
    static_payload_type: int | None
    silence: int
    decode: Callable[[npt.NDArray[np.uint8]], npt.NDArray[np.int16]]
    encode: Callable[[npt.NDArray[np.int16]], npt.NDArray[np.uint8]]

    def samples_per_frame(self, ptime_ms: int = 20) -> int:
        """Samples in one frame of `ptime_ms`."""
        return self.clock_rate * ptime_ms // 1000

    def decode_frames(self, payloads: list[bytes], samples: int) -> npt.NDArray[np.int16]:
        """Decode equal-length frames of several participants in one call: shape (len(payloads), samples)."""
        codes = np.frombuffer(b"".join(payloads), dtype=np.uint8).reshape(len(payloads), samples)
        return self.decode(codes)


PCMU = AudioCodec("PCMU", 8000, 0, ULAW_SILENCE, ulaw_decode, ulaw_encode)
PCMA = AudioCodec("PCMA", 8000, 8, ALAW_SILENCE, alaw_decode, alaw_encode)

CODECS: dict[str, AudioCodec] = {codec.name: codec for codec in (PCMU, PCMA)}
"""Codecs by SDP encoding name, in our order of preference."""
