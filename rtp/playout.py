"""From a stream's jitter buffer to one 20 ms frame of PCM per mixer tick, with what is missing concealed.

Byte-stream codecs (G.711, G.722) get exactly one frame of payload per tick from `ByteStreamBuffer`. Frame
codecs (Opus) get the packets that start in the tick's window from `PacketBuffer`; their decoded audio goes
through a small queue, so packets of 10, 40 or 60 ms fill ticks of 20 ms. A tick with too little audio is a
loss: Opus rebuilds it from the next packet's in-band FEC when that packet is already here, else runs its
PLC; G.711 and G.722 play the fading repeat. After `SILENT_AFTER` lost ticks in a row the stream is silent
and costs nothing until audio returns (`None`: the mixer leaves the row at zero).
"""

from __future__ import annotations

import numpy as np
import numpy.typing as npt

from .codecs import AudioCodec, FrameDecoder, G711Decoder
from .jitter import ByteStreamBuffer, PacketBuffer
from .opus import OpusDecoder, OpusError

Pcm = npt.NDArray[np.int16]
SILENT_AFTER = 4
"""Lost ticks in a row after which concealment stops (it has faded out by 60 ms anyway)."""
MAX_QUEUED_FRAMES = 10
"""Frames of decoded audio a frame codec may hold ahead (a sender whose timestamps undercount its audio)."""

_EMPTY = np.zeros(0, dtype=np.int16)


class Playout:
    """One received stream's decoder and concealment, driven once per tick."""

    __slots__ = (
        "_lost_ticks",
        "_queue",
        "codec",
        "concealed_frames",
        "decode_errors",
        "decoder",
        "fec_frames",
        "frame",
    )

    def __init__(self, codec: AudioCodec) -> None:
        self.codec = codec
        self.decoder: FrameDecoder = codec.new_decoder()
        self.frame = codec.frame_samples
        self.concealed_frames = 0
        self.fec_frames = 0
        self.decode_errors = 0
        self._lost_ticks = SILENT_AFTER  # nothing heard yet: silent
        self._queue: Pcm = _EMPTY

    @property
    def batch_decoded(self) -> bool:
        """Whether the mixer decodes this stream's payloads in a batch with others (G.711)."""
        return isinstance(self.decoder, G711Decoder)

    def decoded(self, pcm: Pcm) -> Pcm:
        """This tick's audio, decoded in a batch (G.711 only): joined to any concealment before it."""
        assert isinstance(self.decoder, G711Decoder)
        self._lost_ticks = 0
        return self.decoder.decoded(pcm)

    def next_frame(self, item: bytes | list[bytes] | None, buffer: ByteStreamBuffer | PacketBuffer) -> Pcm | None:
        """This tick's audio from what `buffer` gave (a frame codec may look at the packet after it, for FEC)."""
        if isinstance(item, bytes):
            return self._decode_bytes(item)
        if isinstance(buffer, PacketBuffer):
            return self._frame_codec(item, buffer)
        return self.lost()

    def lost(self) -> Pcm | None:
        """A tick with no audio: concealment, or None once the stream has gone silent."""
        if self._lost_ticks >= SILENT_AFTER:
            return None
        self._lost_ticks += 1
        self.concealed_frames += 1
        return self.decoder.conceal(self.frame)

    def _decode_bytes(self, payload: bytes) -> Pcm | None:
        try:
            pcm = self.decoder.decode(payload)
        except ValueError:
            self.decode_errors += 1
            return self.lost()
        if pcm.size != self.frame:
            pcm = np.resize(pcm, self.frame) if pcm.size else np.zeros(self.frame, np.int16)
        self._lost_ticks = 0
        return pcm

    def _frame_codec(self, packets: list[bytes] | None, buffer: PacketBuffer) -> Pcm | None:
        decoder = self.decoder
        assert isinstance(decoder, OpusDecoder)
        queue = self._queue
        if packets:
            parts = [queue]
            for packet in packets:
                try:
                    parts.append(decoder.decode(packet))
                except OpusError:
                    self.decode_errors += 1
                else:
                    self._lost_ticks = 0
            queue = np.concatenate(parts)
            if queue.size > MAX_QUEUED_FRAMES * self.frame:
                queue = queue[-MAX_QUEUED_FRAMES * self.frame :]
        if queue.size >= self.frame:
            self._lost_ticks = 0
            self._queue = queue[self.frame :]
            return queue[: self.frame]
        missing = self.frame - queue.size
        upcoming = buffer.upcoming() if packets is not None else None
        if upcoming is not None:
            try:
                recovered = decoder.recover(upcoming, missing)
            except OpusError:
                self.decode_errors += 1
            else:
                self.fec_frames += 1
                self._lost_ticks = 0
                self._queue = _EMPTY
                return np.concatenate((queue, recovered)) if queue.size else recovered
        if self._lost_ticks >= SILENT_AFTER:
            self._queue = _EMPTY
            return None
        self._lost_ticks += 1
        self.concealed_frames += 1
        self._queue = _EMPTY
        return np.concatenate((queue, decoder.conceal(missing))) if queue.size else decoder.conceal(missing)
