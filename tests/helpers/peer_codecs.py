"""Codecs of the test RTP peer, independent of the server's codec code where it matters.

G.722 and Opus go through PyAV's own FFmpeg encoders and decoders (`g722`, `libopus`), not through the
server's modules (which reach libopus with ctypes), so a round trip through the server checks it against
another implementation. G.711 is the same lookup table on both sides (it has no state to get wrong).
"""

from __future__ import annotations

from dataclasses import dataclass

import av
import numpy as np
import numpy.typing as npt
from av.audio.frame import AudioFrame

from rtp.g711 import alaw_decode, alaw_encode, ulaw_decode, ulaw_encode

Pcm = npt.NDArray[np.int16]


@dataclass(frozen=True)
class PeerCodec:
    """A codec as the test peer offers it in SDP, with its rates."""

    name: str
    payload_type: int
    clock_rate: int
    rate: int
    """Sample rate of the audio."""
    channels: int = 1
    fmtp: str | None = None
    ptime: int = 20
    """Milliseconds of audio per packet (`dataclasses.replace(codec, ptime=30)` for another packet time)."""

    @property
    def frame(self) -> int:
        """Samples in one packet."""
        return self.rate * self.ptime // 1000

    @property
    def frame_clock(self) -> int:
        """RTP timestamp ticks in one packet."""
        return self.clock_rate * self.ptime // 1000

    @property
    def rtpmap(self) -> str:
        """The a=rtpmap value."""
        channels = f"/{self.channels}" if self.channels != 1 else ""
        return f"{self.payload_type} {self.name}/{self.clock_rate}{channels}"

    def encode(self, samples: Pcm) -> list[bytes]:
        """One payload per packet time of `samples` (cut to a whole number of packets)."""
        frames = samples[: samples.size - samples.size % self.frame].reshape(-1, self.frame)
        if self.name == "PCMU":
            return [ulaw_encode(frame).tobytes() for frame in frames]
        if self.name == "PCMA":
            return [alaw_encode(frame).tobytes() for frame in frames]
        if self.name == "G722":
            # FFmpeg codes G.722 in 20 ms frames; the byte stream (one byte per 8 kHz clock tick) is then cut
            # at any packet time.
            stream = b"".join(self._encode_frames(samples[: samples.size - samples.size % 320].reshape(-1, 320)))
            step = self.frame_clock
            return [stream[i : i + step] for i in range(0, len(stream) - step + 1, step)]
        return [payload for payload in self._encode_frames(frames) if payload]

    def _encode_frames(self, frames: Pcm) -> list[bytes]:
        context = self._context("w")
        payloads: list[bytes] = []
        for index, frame in enumerate(frames):
            audio = AudioFrame.from_ndarray(np.ascontiguousarray(frame).reshape(1, -1), format="s16", layout="mono")
            audio.sample_rate = self.rate
            audio.pts = index * frame.size
            packets = [bytes(packet) for packet in context.encode(audio)]
            payloads.append(b"".join(packets))
        return payloads

    def decoder(self) -> StreamDecoder:
        """A decoder for one received stream."""
        return StreamDecoder(self)

    def _context(self, mode: str) -> av.CodecContext:
        context = av.CodecContext.create("libopus" if self.name == "opus" else "g722", mode)
        context.sample_rate = self.rate
        context.layout = "mono"
        if mode == "w":
            context.format = "s16"
            if self.name == "opus":
                context.bit_rate = 64000
                context.options = {"application": "voip", "frame_duration": str(self.ptime)}
        context.open()
        return context


class StreamDecoder:
    """Decodes the payloads of one stream in order (G.722 and Opus keep state between packets)."""

    def __init__(self, codec: PeerCodec) -> None:
        self.codec = codec
        self._context = codec._context("r") if codec.name in ("G722", "opus") else None

    def decode(self, payload: bytes) -> Pcm:
        """The samples of one payload."""
        if self.codec.name == "PCMU":
            return ulaw_decode(np.frombuffer(payload, dtype=np.uint8))
        if self.codec.name == "PCMA":
            return alaw_decode(np.frombuffer(payload, dtype=np.uint8))
        assert self._context is not None
        frames = self._context.decode(av.Packet(payload))
        if not frames:
            return np.zeros(0, dtype=np.int16)
        return np.concatenate([frame.to_ndarray().reshape(-1) for frame in frames]).astype(np.int16)


PCMU = PeerCodec("PCMU", 0, 8000, 8000)
PCMA = PeerCodec("PCMA", 8, 8000, 8000)
G722 = PeerCodec("G722", 9, 8000, 16000)
OPUS = PeerCodec("opus", 111, 48000, 48000, channels=2, fmtp="useinbandfec=1")
PEER_CODECS = {codec.name: codec for codec in (PCMU, PCMA, G722, OPUS)}
