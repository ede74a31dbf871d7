"""Adaptive jitter buffers: received payloads ordered by RTP timestamp, played out one frame per tick.

Both buffers share the timeline logic of `_Timeline`:
- timestamps are unwrapped to 64 bits, packets kept in timestamp order; duplicates and packets that
  arrive after their playout time are dropped and counted;
- playout starts once the target delay is buffered; the target follows the interarrival jitter
  (RFC 3550 A.8) between `min_delay` and `max_delay`;
- when nothing at all is buffered ahead (the stream is late, or silent), the playout point waits
  instead of running on, so a late stream grows the delay instead of being thrown away; when more
  than the target stays buffered for half a second, half the excess is skipped to shrink it back;
- a marker bit after silence, a timestamp jump or a new SSRC restarts playout (`reset`).

`ByteStreamBuffer` serves codecs whose payload is one byte per clock tick (G.711, and G.722 with its
8 kHz RTP clock): any packet time comes out as exact frames. `PacketBuffer` serves frame codecs
(Opus): it hands out the packets that start in each frame window and leaves the decoding, and the
concealment of what is missing, to the caller.
"""

from __future__ import annotations

import bisect
from dataclasses import dataclass

_WRAP = 2**32
_HALF = 2**31
SHRINK_AFTER_TICKS = 25


@dataclass
class JitterStats:
    """What a buffer has seen and done."""

    packets: int = 0
    late: int = 0
    duplicates: int = 0
    underruns: int = 0
    skipped_frames: int = 0
    resyncs: int = 0


class _Timeline:
    """Timestamp-ordered payloads with a playout cursor and an adaptive target delay (in clock units)."""

    def __init__(self, clock_rate: int, frame: int, *, min_delay: float, max_delay: float, jump: float) -> None:
        if frame <= 0 or not 0 < min_delay <= max_delay:
            raise ValueError("frame must be positive and 0 < min_delay <= max_delay")
        self.clock_rate = clock_rate
        self.frame = frame
        self.min_delay = round(min_delay * clock_rate)
        self.max_delay = round(max_delay * clock_rate)
        self._jump = round(jump * clock_rate)
        self.stats = JitterStats()
        self._starts: list[int] = []
        self._payloads: list[bytes] = []
        self._ends: list[int] = []
        self._cursor: int | None = None
        self._last_ext: int | None = None
        self._jitter = 0.0
        self._last_transit: float | None = None
        self._waiting = False
        self._over_target_ticks = 0

    # -- state ------------------------------------------------------------------------------------

    @property
    def target_delay(self) -> int:
        """The delay playout aims at, in clock units: a frame plus three times the jitter, within bounds."""
        return int(min(self.max_delay, max(self.min_delay, self.frame + 3 * self._jitter)))

    @property
    def jitter_ms(self) -> float:
        """The interarrival jitter estimate in milliseconds."""
        return 1000 * self._jitter / self.clock_rate

    @property
    def playing(self) -> bool:
        """Whether playout has started (a cursor exists)."""
        return self._cursor is not None

    @property
    def buffered(self) -> int:
        """Clock units buffered ahead of the playout point (or in all, before playout starts)."""
        if not self._starts:
            return 0
        return self._ends[-1] - (self._cursor if self._cursor is not None else self._starts[0])

    @property
    def delay_ms(self) -> float:
        """The current buffering delay in milliseconds."""
        return 1000 * self.buffered / self.clock_rate

    def reset(self) -> None:
        """Forget every packet and restart playout (a new SSRC, a jump, a new talkspurt)."""
        self._starts.clear()
        self._payloads.clear()
        self._ends.clear()
        self._cursor = None
        self._last_ext = None
        self._last_transit = None
        self._waiting = False
        self._over_target_ticks = 0

    # -- input ------------------------------------------------------------------------------------

    def _extend(self, timestamp: int) -> int:
        if self._last_ext is None:
            self._last_ext = timestamp
            return timestamp
        delta = ((timestamp - self._last_ext) + _HALF) % _WRAP - _HALF
        ext = self._last_ext + delta
        self._last_ext = max(self._last_ext, ext)
        return ext

    def _push(self, timestamp: int, payload: bytes, duration: int, marker: bool, arrival: float) -> None:
        self.stats.packets += 1
        ext = self._extend(timestamp)
        if self._cursor is not None:
            far = abs(ext - self._cursor) > self._jump
            talkspurt = marker and self._waiting
            if far or talkspurt:
                self.stats.resyncs += 1
                self.reset()
                ext = self._extend(timestamp)
            elif ext + duration <= self._cursor:
                self.stats.late += 1
                return
        self._observe_jitter(ext, arrival)
        index = bisect.bisect_left(self._starts, ext)
        if index < len(self._starts) and self._starts[index] == ext:
            self.stats.duplicates += 1
            return
        self._starts.insert(index, ext)
        self._payloads.insert(index, payload)
        self._ends.insert(index, ext + duration)
        if self.buffered > self.max_delay + self.frame:
            # Far more than the deepest delay is buffered: play on (or start) at the target delay behind the newest.
            if self._cursor is None:
                self._cursor = self._starts[0]
            self._skip_to(self._ends[-1] - self.target_delay)

    def _observe_jitter(self, ext: int, arrival: float) -> None:
        transit = arrival * self.clock_rate - ext
        if self._last_transit is not None:
            self._jitter += (abs(transit - self._last_transit) - self._jitter) / 16
        self._last_transit = transit

    # -- playout ----------------------------------------------------------------------------------

    def _next_window(self) -> tuple[int, int] | None:
        """The clock window to play this tick, or None while priming or waiting for a late stream."""
        if self._cursor is None:
            if not self._starts or self._ends[-1] - self._starts[0] < self.target_delay:
                return None
            self._cursor = self._starts[0]
        if not self._starts or self._ends[-1] <= self._cursor:
            # Nothing buffered ahead: hold the playout point so a late stream is delayed, not discarded.
            if not self._waiting:
                self.stats.underruns += 1
            self._waiting = True
            return None
        self._waiting = False
        self._shrink_if_over_target()
        start = self._cursor
        self._cursor = start + self.frame
        return start, self._cursor

    def _shrink_if_over_target(self) -> None:
        excess = self.buffered - self.target_delay
        if excess >= self.frame:
            self._over_target_ticks += 1
            if self._over_target_ticks >= SHRINK_AFTER_TICKS and self._cursor is not None:
                self._over_target_ticks = 0
                # Half the excess at a time (at least a frame): far off shrinks fast, close in gently.
                frames = max(1, excess // self.frame // 2)
                self._skip_to(self._cursor + frames * self.frame)
        else:
            self._over_target_ticks = 0

    def _skip_to(self, position: int) -> None:
        if self._cursor is None or position <= self._cursor:
            return
        self.stats.skipped_frames += (position - self._cursor + self.frame - 1) // self.frame
        self._cursor = position
        self._discard_before(position)

    def _discard_before(self, position: int) -> None:
        consumed = 0
        while consumed < len(self._starts) and self._ends[consumed] <= position:
            consumed += 1
        if consumed:
            del self._starts[:consumed], self._payloads[:consumed], self._ends[:consumed]


class ByteStreamBuffer(_Timeline):
    """For one-byte-per-clock-tick codecs: `pop()` gives exactly `frame` bytes per tick, or None."""

    def __init__(self, clock_rate: int, frame: int, silence: int, *, min_delay: float = 0.020,
                 max_delay: float = 0.200, jump: float = 2.0) -> None:
        super().__init__(clock_rate, frame, min_delay=min_delay, max_delay=max_delay, jump=jump)
        self._silence = bytes([silence]) * frame

    def push(self, timestamp: int, payload: bytes, marker: bool, arrival: float) -> None:
        """Add one packet's payload (its duration is its length in clock units)."""
        if payload:
            self._push(timestamp, payload, len(payload), marker, arrival)

    def pop(self) -> bytes | None:
        """The next frame; None when nothing of it arrived (a gap to conceal) or nothing is playing.

        A frame only partly covered has its missing bytes filled with the codec's silence.
        """
        window = self._next_window()
        if window is None:
            return None
        start, end = window
        frame: bytearray | None = None
        for ts, payload, payload_end in zip(self._starts, self._payloads, self._ends, strict=True):
            if ts >= end:
                break
            if payload_end > start:
                if frame is None:
                    frame = bytearray(self._silence)
                low, high = max(ts, start), min(payload_end, end)
                frame[low - start : high - start] = payload[low - ts : high - ts]
        self._discard_before(end)
        return bytes(frame) if frame is not None else None


class PacketBuffer(_Timeline):
    """For frame codecs: `pop()` gives the packets that start in each tick's window, in order."""

    def __init__(self, clock_rate: int, frame: int, *, min_delay: float = 0.020, max_delay: float = 0.200,
                 jump: float = 2.0) -> None:
        super().__init__(clock_rate, frame, min_delay=min_delay, max_delay=max_delay, jump=jump)

    def push(self, timestamp: int, payload: bytes, duration: int, marker: bool, arrival: float) -> None:
        """Add one packet that covers `duration` clock units."""
        if payload and duration > 0:
            self._push(timestamp, payload, duration, marker, arrival)

    def pop(self) -> list[bytes] | None:
        """The packets starting in the next window ([] for a window with none: a gap, or the tail of a
        longer packet); None while nothing is playing."""
        window = self._next_window()
        if window is None:
            return None
        start, end = window
        packets = [payload for ts, payload in zip(self._starts, self._payloads, strict=True) if start <= ts < end]
        self._discard_before(end)
        return packets

    def upcoming(self) -> bytes | None:
        """The packet that starts right after the last window, if it has arrived (for in-band FEC)."""
        if self._cursor is None:
            return None
        index = bisect.bisect_left(self._starts, self._cursor)
        if index < len(self._starts) and self._starts[index] == self._cursor:
            return self._payloads[index]
        return None
