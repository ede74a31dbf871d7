"""One received stream's decoder and concealment: the part of playout that cannot be done for all streams at once.

The engine takes byte-stream codecs (G.711, G.722) out of the `StreamTable` for every stream in one call and
decodes G.711 as one table lookup; what is left per stream is here:

- `decode` for G.722 (its coder carries state from frame to frame);
- `conceal` when a frame is missing: the fading repeat for G.711 and G.722 (starting from the history the
  engine keeps, for G.711), and `resume` to cross-fade real audio back in after a loss;
- `next_packets` for frame codecs (Opus): the packets that start in the tick's window are decoded into a
  small queue, so packets of 10, 40 or 60 ms fill ticks of 20 ms; a tick with too little audio is rebuilt
  from the next packet's in-band FEC when that packet is already buffered, else from libopus's PLC. After
  `SILENT_AFTER` lost ticks in a row the stream is silent and costs nothing until audio returns (None).
"""

from __future__ import annotations

import numpy as np
import numpy.typing as npt

from .codecs import AudioCodec, FrameDecoder, G711Decoder
from .jitter import PacketBuffer
from .opus import OpusDecoder, OpusError

Pcm = npt.NDArray[np.int16]
SILENT_AFTER = 4
"""Lost ticks in a row after which concealment stops (it has faded out by 60 ms anyway)."""
MAX_QUEUED_FRAMES = 10
"""Frames of decoded audio a frame codec may hold ahead (a sender whose timestamps undercount its audio)."""

_EMPTY = np.zeros(0, dtype=np.int16)


class Playout:
    """One received stream's decoder and concealment state."""

    __slots__ = ("_lost_ticks", "_queue", "codec", "concealed_frames", "decode_errors", "decoder", "fec_frames",
                 "frame")

    def __init__(self, codec: AudioCodec) -> None:
        self.codec = codec
        self.decoder: FrameDecoder = codec.new_decoder()
        self.frame = codec.frame_samples
        self.concealed_frames = 0
        self.fec_frames = 0
        self.decode_errors = 0
        self._lost_ticks = SILENT_AFTER  # nothing heard yet: silent
        self._queue: Pcm = _EMPTY

    def decode(self, payload: bytes) -> Pcm:
        """A frame of real audio (after a loss the decoder cross-fades it in); a broken payload is concealed."""
        try:
            pcm = self.decoder.decode(payload)
        except ValueError:
            self.decode_errors += 1
            return self.conceal()
        if pcm.size != self.frame:
            pcm = np.resize(pcm, self.frame) if pcm.size else np.zeros(self.frame, np.int16)
        return pcm

    def conceal(self, history: Pcm | None = None) -> Pcm:
        """A frame standing in for a lost one (`history`: what G.711 played last, kept by the engine)."""
        self.concealed_frames += 1
        decoder = self.decoder
        if isinstance(decoder, G711Decoder):
            return decoder.concealer.conceal(self.frame, history)
        return decoder.conceal(self.frame)

    def resume(self, pcm: Pcm) -> Pcm:
        """G.711 audio decoded with other streams' after a loss: cross-faded in from the concealment."""
        decoder = self.decoder
        assert isinstance(decoder, G711Decoder)
        return decoder.decoded(pcm)

    def next_packets(self, packets: list[bytes] | None, buffer: PacketBuffer) -> Pcm | None:
        """A frame codec's audio for this tick from the packets `buffer` gave, or None once silent."""
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
        self._queue = _EMPTY
        if self._lost_ticks >= SILENT_AFTER:
            return None
        self._lost_ticks += 1
        self.concealed_frames += 1
        concealed = decoder.conceal(missing)
        return np.concatenate((queue, concealed)) if queue.size else concealed
