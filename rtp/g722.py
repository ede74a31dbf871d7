"""G.722 wideband audio (RTP payload type 9) through FFmpeg's native `g722` encoder and decoder, via PyAV.

G.722 codes 16 kHz audio with sub-band ADPCM at 64 kbit/s: one byte per two samples, so a 20 ms frame is
320 samples and 160 bytes. (RFC 3551 keeps the RTP clock at 8000 Hz for historical reasons; that is the caller's
business, this module only sees 16 kHz samples.) The codec is stateful in both directions, so each call
continues the stream of the previous one.

Encoder and decoder are each one PyAV codec context. PyAV queues encoder input in a FIFO until it holds a whole
codec frame (320 samples for FFmpeg's g722), so `G722Encoder` only accepts whole 20 ms frames: each call then
returns exactly its own bytes and nothing waits in the FIFO. The codec's QMF filter banks delay the audio by
`CODEC_DELAY` samples (encoder plus decoder; FFmpeg reports it as the encoder's initial padding).

G.722 has no packet-loss concealment of its own; `G722Decoder.conceal` is the fading repeat of
rtp.concealment, and the first packet after a loss is cross-faded in from that repeat.
"""

from __future__ import annotations

import av
import av.error
import numpy as np
import numpy.typing as npt
from av.audio.frame import AudioFrame

from .concealment import Concealer

SAMPLE_RATE = 16000
"""Audio sample rate of G.722 (RTP clock rate in SDP is nevertheless 8000)."""
FRAME_SAMPLES = 320
"""Samples in the 20 ms frame the encoder works on."""
FRAME_BYTES = FRAME_SAMPLES // 2
"""Encoded size of one 20 ms frame: 4 bits per sample."""
CODEC_DELAY = 22
"""Samples the decoded audio lags the encoded input by (the QMF analysis and synthesis filters)."""



_EMPTY = np.zeros(0, dtype=np.int16)


def _check_pcm(samples: npt.NDArray[np.int16]) -> npt.NDArray[np.int16]:
    """Whole 20 ms frames of 1-D int16, contiguous; ValueError otherwise."""
    if not isinstance(samples, np.ndarray) or samples.dtype != np.int16 or samples.ndim != 1:
        raise ValueError("G.722 encoder takes a 1-D int16 numpy array")
    if samples.size == 0 or samples.size % FRAME_SAMPLES:
        raise ValueError(f"G.722 encoder takes whole 20 ms frames of {FRAME_SAMPLES} samples, not {samples.size}")
    return np.ascontiguousarray(samples)


class G722Encoder:
    """FFmpeg's G.722 encoder: 16 kHz int16 in, 64 kbit/s G.722 out, 160 bytes per 20 ms."""

    def __init__(self) -> None:
        context = av.CodecContext.create("g722", "w")
        context.sample_rate = SAMPLE_RATE
        context.format = "s16"
        context.layout = "mono"
        context.open()
        self._context = context
        self._pts = 0

    def encode(self, samples: npt.NDArray[np.int16]) -> bytes:
        """Encode 320 samples (20 ms; any whole number of such frames) into 160 bytes per frame."""
        pcm = _check_pcm(samples)
        frame = AudioFrame.from_ndarray(pcm.reshape(1, -1), format="s16", layout="mono")
        frame.sample_rate = SAMPLE_RATE
        frame.pts = self._pts
        self._pts += pcm.size
        payload = b"".join(bytes(packet) for packet in self._context.encode(frame))
        if len(payload) != pcm.size // 2:
            # Cannot happen with whole codec frames (PyAV's FIFO never holds a remainder); fail loudly if it did.
            raise RuntimeError(f"G.722 encoder returned {len(payload)} bytes for {pcm.size} samples")
        return payload


class G722Decoder:
    """FFmpeg's G.722 decoder (two samples per byte, state carried across packets) plus concealment of losses."""

    def __init__(self) -> None:
        context = av.CodecContext.create("g722", "r")
        context.sample_rate = SAMPLE_RATE
        context.layout = "mono"
        context.open()
        self._context = context
        self._concealer = Concealer(SAMPLE_RATE, FRAME_SAMPLES)

    def decode(self, payload: bytes) -> npt.NDArray[np.int16]:
        """Decode a payload of any length into 2 samples per byte (every byte sequence is valid G.722)."""
        if not payload:
            # Never hand PyAV an empty packet: that means "end of stream" and the decoder would refuse all others.
            return _EMPTY.copy()
        try:
            frames = self._context.decode(av.Packet(bytes(payload)))
        except av.error.FFmpegError as exc:
            raise ValueError(f"G.722 decoder failed: {exc}") from exc
        pcm = np.concatenate([frame.to_ndarray().reshape(-1) for frame in frames]) if frames else _EMPTY.copy()
        return self._concealer.good(pcm.astype(np.int16, copy=False))

    def conceal(self, samples: int) -> npt.NDArray[np.int16]:
        """Audio for `samples` lost samples: a fading repeat of the last decoded audio (G.722 has no PLC).

        Consecutive calls continue the same repeat and fade; the next `decode` ends the loss and cross-fades
        the real audio back in (see rtp.concealment).
        """
        if samples < 0:
            raise ValueError(f"cannot conceal a negative number of samples ({samples})")
        return self._concealer.conceal(samples)
