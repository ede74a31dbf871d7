"""The audio codecs we carry over RTP: what SDP calls them, their rates, and a decoder and encoder per stream.

| codec | RTP clock | audio rate | payload                 | loss concealment         |
|-------|-----------|------------|-------------------------|--------------------------|
| Opus  | 48000     | 48000      | one packet per frame    | libopus PLC and FEC      |
| G.722 | 8000      | 16000      | one byte per clock tick | fading repeat            |
| PCMU  | 8000      | 8000       | one byte per clock tick | fading repeat            |
| PCMA  | 8000      | 8000       | one byte per clock tick | fading repeat            |

G.711 is a table lookup, so `G711Codec` also decodes and encodes the frames of many streams in one numpy call;
the per-stream `G711Decoder` then only keeps the concealment state. G.722 and Opus decode stream by stream
(their coders carry state from frame to frame).
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import Protocol

import numpy as np
import numpy.typing as npt

from . import opus
from .concealment import Concealer
from .g711 import ALAW_SILENCE, ULAW_SILENCE, alaw_decode, alaw_encode, ulaw_decode, ulaw_encode
from .g722 import G722Decoder, G722Encoder

Pcm = npt.NDArray[np.int16]
FRAME_SECONDS = 0.020
"""The frame we send and mix: 20 ms."""


class FrameDecoder(Protocol):
    """One stream's decoder: payloads to 16-bit PCM at the codec's audio rate, and stand-ins for lost audio."""

    def decode(self, payload: bytes) -> Pcm:
        """The audio of one payload (ValueError or OpusError for a payload the codec cannot read)."""
        ...

    def conceal(self, samples: int) -> Pcm:
        """`samples` samples standing in for lost audio, continuing from what was decoded last."""
        ...


class FrameEncoder(Protocol):
    """One stream's encoder: 20 ms of 16-bit PCM at the codec's audio rate to one payload."""

    def encode(self, samples: Pcm) -> bytes:
        """The payload for one 20 ms frame."""
        ...


@dataclass(frozen=True, eq=False)
class AudioCodec:
    """A codec as SDP names it (`name/clock_rate[/channels]`) and as the mixer sees it (`sample_rate`)."""

    name: str
    clock_rate: int
    """The RTP timestamp rate (G.722 keeps 8000 although it samples at 16000: RFC 3551)."""
    sample_rate: int
    """The rate of the PCM the decoder gives and the encoder takes."""
    channels: int = 1
    """Channels as SDP writes them (Opus is always `opus/48000/2`; we decode and send mono)."""
    static_payload_type: int | None = None
    fmtp: str | None = None
    """Format parameters for our SDP."""
    byte_stream: bool = True
    """Whether a payload holds one byte per RTP clock tick (so any packet time cuts into exact frames)."""
    fill_byte: int = 0
    """For byte streams: the byte that stands for (near) silence where part of a frame is missing."""

    @property
    def frame_samples(self) -> int:
        """PCM samples in a 20 ms frame."""
        return round(self.sample_rate * FRAME_SECONDS)

    @property
    def frame_clock(self) -> int:
        """RTP clock ticks in a 20 ms frame: how far our timestamp moves per packet."""
        return round(self.clock_rate * FRAME_SECONDS)

    def packet_duration(self, payload: bytes) -> int:
        """RTP clock ticks a payload covers (ValueError when it cannot be read)."""
        return len(payload)

    def new_decoder(self) -> FrameDecoder:
        """A decoder for one received stream."""
        raise NotImplementedError

    def new_encoder(self) -> FrameEncoder:
        """An encoder for one sent stream."""
        raise NotImplementedError

    def __str__(self) -> str:
        channels = f"/{self.channels}" if self.channels != 1 else ""
        return f"{self.name}/{self.clock_rate}{channels}"


@dataclass(frozen=True, eq=False)
class G711Codec(AudioCodec):
    """PCMU or PCMA: one byte per sample through lookup tables, for many streams at once."""

    decode_codes: Callable[[npt.NDArray[np.uint8]], Pcm] = ulaw_decode
    encode_samples: Callable[[Pcm], npt.NDArray[np.uint8]] = ulaw_encode
    law: int = 0
    """Row of `rtp.g711.DECODE_TABLES`/`ENCODE_TABLES`: 0 μ-law, 1 A-law."""

    def decode_frames(self, payloads: list[bytes]) -> Pcm:
        """Decode the equal-length payloads of several streams in one call: shape (len(payloads), length)."""
        joined = np.frombuffer(b"".join(payloads), dtype=np.uint8)
        return self.decode_codes(joined.reshape(len(payloads), -1) if payloads else joined.reshape(0, 0))

    def encode_frames(self, frames: Pcm) -> npt.NDArray[np.uint8]:
        """Encode the rows of a (streams, samples) int16 array in one call."""
        return self.encode_samples(frames)

    def new_decoder(self) -> G711Decoder:
        """A stream decoder (the table lookup plus this stream's concealment)."""
        return G711Decoder(self)

    def new_encoder(self) -> G711Encoder:
        """A stream encoder."""
        return G711Encoder(self)


class G711Decoder:
    """One G.711 stream: table decoding, and the fading repeat for losses."""

    __slots__ = ("codec", "concealer")

    def __init__(self, codec: G711Codec) -> None:
        self.codec = codec
        self.concealer = Concealer(codec.sample_rate, codec.frame_samples)

    def decode(self, payload: bytes) -> Pcm:
        """Decode one payload."""
        return self.decoded(self.codec.decode_codes(np.frombuffer(payload, dtype=np.uint8)))

    def decoded(self, pcm: Pcm) -> Pcm:
        """Take audio decoded in a batch with other streams (`G711Codec.decode_frames`) as this stream's next."""
        return self.concealer.good(pcm)

    def conceal(self, samples: int) -> Pcm:
        """A fading repeat of the last audio."""
        return self.concealer.conceal(samples)


class G711Encoder:
    """One G.711 stream's encoder (stateless: the table)."""

    __slots__ = ("codec",)

    def __init__(self, codec: G711Codec) -> None:
        self.codec = codec

    def encode(self, samples: Pcm) -> bytes:
        """Encode one frame."""
        return self.codec.encode_samples(samples).tobytes()


@dataclass(frozen=True, eq=False)
class G722Codec(AudioCodec):
    """G.722: 16 kHz sub-band ADPCM at 64 kbit/s, one byte per 8 kHz RTP clock tick."""

    def new_decoder(self) -> G722Decoder:
        """A stream decoder (FFmpeg's, with the fading repeat for losses)."""
        return G722Decoder()

    def new_encoder(self) -> G722Encoder:
        """A stream encoder."""
        return G722Encoder()


@dataclass(frozen=True, eq=False)
class OpusCodec(AudioCodec):
    """Opus at 48 kHz, mono, 20 ms frames, with in-band FEC."""

    bitrate: int = 32000
    complexity: int = 5
    """libopus's 0-10 effort knob: 5 costs ~30 % less CPU per frame than 10 for a hardly audible difference."""

    def packet_duration(self, payload: bytes) -> int:
        """The packet's duration from its TOC byte (ValueError when malformed)."""
        try:
            return opus.packet_samples(payload, self.clock_rate)
        except opus.OpusError as exc:
            raise ValueError(str(exc)) from exc

    def new_decoder(self) -> opus.OpusDecoder:
        """A libopus decoder (with its own PLC and FEC)."""
        return opus.OpusDecoder(self.sample_rate, 1)

    def new_encoder(self) -> opus.OpusEncoder:
        """A libopus encoder for speech with in-band FEC."""
        return opus.OpusEncoder(self.sample_rate, 1, bitrate=self.bitrate, fec=True, expected_loss=5,
                                complexity=self.complexity)


OPUS = OpusCodec("opus", 48000, 48000, channels=2, fmtp="minptime=10;useinbandfec=1;stereo=0;sprop-stereo=0",
                 byte_stream=False)
G722 = G722Codec("G722", 8000, 16000, static_payload_type=9, fill_byte=0xFA)
PCMU = G711Codec("PCMU", 8000, 8000, static_payload_type=0, fill_byte=ULAW_SILENCE,
                 decode_codes=ulaw_decode, encode_samples=ulaw_encode)
PCMA = G711Codec("PCMA", 8000, 8000, static_payload_type=8, fill_byte=ALAW_SILENCE,
                 decode_codes=alaw_decode, encode_samples=alaw_encode, law=1)

CODECS: dict[str, AudioCodec] = {codec.name: codec for codec in (OPUS, G722, PCMU, PCMA)}
"""Every codec by SDP encoding name, in our order of preference for our own offers."""
MIX_RATES = (8000, 16000, 48000)
"""The audio rates of our codecs: a conference mixes at the highest among its participants."""

