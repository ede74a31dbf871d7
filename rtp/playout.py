"""A playout buffer: received payloads ordered by RTP timestamp, played out one frame per tick.

For sample-per-byte codecs (G.711), a payload of n bytes covers n samples from its timestamp, so
any packet time the peer uses, reordering and duplicates all come out as a continuous stream of
fixed frames. Playout starts after a short priming delay; gaps are left to the caller (None).
"""

from __future__ import annotations

import bisect

_WRAP = 2**32
_HALF = 2**31


class PlayoutBuffer:
    """Timestamp-ordered payloads of one RTP stream, played out `frame_samples` at a time."""

    def __init__(self, frame_samples: int, silence: int, *, prime_frames: int = 2, max_frames: int = 10,
                 jump_frames: int = 50, idle_frames: int = 10) -> None:
        self.frame_samples = frame_samples
        self._silence = bytes([silence]) * frame_samples
        self._prime = prime_frames * frame_samples
        self._max = max_frames * frame_samples
        self._jump = jump_frames * frame_samples
        self._idle_limit = idle_frames
        self._starts: list[int] = []
        self._payloads: list[bytes] = []
        self._cursor: int | None = None
        self._last_ext: int | None = None
        self._idle = 0
        self.late = 0
        self.duplicates = 0
        self.overflows = 0

    def reset(self) -> None:
        """Forget everything (a new SSRC, say); playout primes again."""
        self._starts.clear()
        self._payloads.clear()
        self._cursor = None
        self._last_ext = None
        self._idle = 0

    def _extend(self, timestamp: int) -> int:
        if self._last_ext is None:
            self._last_ext = timestamp
            return timestamp
        delta = ((timestamp - self._last_ext) + _HALF) % _WRAP - _HALF
        ext = self._last_ext + delta
        if delta > 0:
            self._last_ext = ext
        return ext

    def push(self, timestamp: int, payload: bytes) -> None:
        """Add one packet's payload."""
        if not payload:
            return
        ext = self._extend(timestamp)
        if self._cursor is not None:
            if abs(ext - self._cursor) > self._jump:
                self.reset()
                ext = self._extend(timestamp)
            elif ext + len(payload) <= self._cursor:
                self.late += 1
                return
        index = bisect.bisect_left(self._starts, ext)
        if index < len(self._starts) and self._starts[index] == ext:
            self.duplicates += 1
            return
        self._starts.insert(index, ext)
        self._payloads.insert(index, payload)
        if self._cursor is not None:
            end = self._starts[-1] + len(self._payloads[-1])
            if end - self._cursor > self._max:
                self.overflows += 1
                self._cursor = end - self._prime

    def pop(self) -> bytes | None:
        """The next frame, or None when there is nothing to play for it (a gap or no stream)."""
        if self._cursor is None:
            if not self._starts:
                return None
            if self._starts[-1] + len(self._payloads[-1]) - self._starts[0] < self._prime:
                return None
            self._cursor = self._starts[0]
        start = self._cursor
        end = start + self.frame_samples
        self._cursor = end
        frame: bytearray | None = None
        consumed = 0
        for ts, payload in zip(self._starts, self._payloads, strict=False):
            if ts >= end:
                break
            payload_end = ts + len(payload)
            if payload_end > start:
                if frame is None:
                    frame = bytearray(self._silence)
                low, high = max(ts, start), min(payload_end, end)
                frame[low - start : high - start] = payload[low - ts : high - ts]
            if payload_end <= end:
                consumed += 1
            else:
                break
        if consumed:
            del self._starts[:consumed]
            del self._payloads[:consumed]
        if frame is None:
            self._idle += 1
            if self._idle >= self._idle_limit and not self._starts:
                self._cursor = None
            return None
        self._idle = 0
        return bytes(frame)

    @property
    def buffered_samples(self) -> int:
        """Samples waiting ahead of the playout point."""
        if not self._starts:
            return 0
        end = self._starts[-1] + len(self._payloads[-1])
        return end - (self._cursor if self._cursor is not None else self._starts[0])
