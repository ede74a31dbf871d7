"""DTMF as RTP telephone-events (RFC 4733): the 4-byte event payload, a receiver that turns the packet
stream into key presses, and the payloads a sender would send.

A key press arrives as a run of packets with one RTP timestamp (the event's start) and a growing
duration, closed by three identical end packets. Any of them may be lost, repeated or reordered, so the
receiver reports each press exactly once: at its first end packet, or, when all end packets are lost,
as soon as a newer event starts or the event has been silent for 500 ms. Sans-IO: time comes in as
`now` (monotonic seconds).
"""

from __future__ import annotations

import struct
from collections import deque
from dataclasses import dataclass

DIGITS = "0123456789*#ABCD"
"""Event codes 0-15 in order; code 16 is flash, and codes above 15 are not digits."""

FLASH = 16

EVENT_TIMEOUT = 0.5
"""Seconds without a packet after which an event whose end packets were lost is reported."""

REORDER_WINDOW_S = 10.0
"""An event timestamp at most this far behind the newest is a late packet, not a new event."""

_EVENT = struct.Struct("!BBH")
_WRAP = 2**32
_HALF = 2**31


@dataclass(frozen=True)
class ToneEvent:
    """One RFC 4733 §2.3 event payload: event code, end bit, volume (-dBm0, 0-63) and duration (timestamp units)."""

    event: int
    end: bool
    volume: int
    duration: int

    def __post_init__(self) -> None:
        if not 0 <= self.event <= 255 or not 0 <= self.volume <= 63 or not 0 <= self.duration <= 0xFFFF:
            raise ValueError(f"telephone-event field out of range: {self}")

    @classmethod
    def parse(cls, payload: bytes) -> ToneEvent:
        """Parse a 4-byte event payload (the R bit is ignored); ValueError for any other length."""
        if len(payload) != _EVENT.size:
            raise ValueError(f"telephone-event payload must be {_EVENT.size} bytes, got {len(payload)}")
        event, flags, duration = _EVENT.unpack(payload)
        return cls(event, bool(flags & 0x80), flags & 0x3F, duration)

    def to_bytes(self) -> bytes:
        """Serialize the payload (R bit zero)."""
        return _EVENT.pack(self.event, (0x80 if self.end else 0) | self.volume, self.duration)


@dataclass(frozen=True)
class DtmfDigit:
    """One key press: the digit, how long it was held and the RTP timestamp of its start."""

    digit: str
    duration_ms: int
    timestamp: int


@dataclass
class _Event:
    """The event currently being received."""

    timestamp: int
    code: int
    duration: int
    """Latest duration of the current segment, in timestamp units."""
    last_seen: float
    earlier_segments: int = 0
    """Duration of the segments before the current one (long events, RFC 4733 §2.5.2.1)."""
    reported: bool = False


class DtmfReceiver:
    """Telephone-event packets of one RTP stream in, each key press out exactly once."""

    def __init__(self, clock_rate: int) -> None:
        if clock_rate <= 0:
            raise ValueError("clock rate must be positive")
        self.clock_rate = clock_rate
        self.malformed = 0
        self.ignored = 0
        """Packets of events that are not digits (flash, codes above 15)."""
        self._current: _Event | None = None
        self._newest: int | None = None
        self._ready: deque[DtmfDigit] = deque()

    def reset(self) -> None:
        """Forget the stream (a new SSRC, say); a pending press is dropped, not reported."""
        self._current = None
        self._newest = None
        self._ready.clear()

    def receive(self, timestamp: int, payload: bytes, marker: bool, now: float) -> DtmfDigit | None:
        """Take one telephone-event packet; a finished key press when there is one, else None. Never raises."""
        try:
            event = ToneEvent.parse(payload)
        except ValueError:
            self.malformed += 1
            return self._next()
        timestamp &= 0xFFFFFFFF
        current = self._current
        if self._newest is not None and timestamp != self._newest:
            delta = (timestamp - self._newest + _HALF) % _WRAP - _HALF
            if -REORDER_WINDOW_S * self.clock_rate <= delta < 0:
                return self._next()  # a late packet of an event already over
            if (current is not None and not current.reported and not marker and event.event == current.code
                    and 0 < delta <= current.duration):
                current.earlier_segments += current.duration  # the next segment of a long event
                current.timestamp, current.duration = timestamp, 0
                self._newest = timestamp
            else:
                self._flush()
                self._newest = timestamp
                current = self._current = None
        elif self._newest is None:
            self._newest = timestamp
        if event.event >= len(DIGITS):
            self.ignored += 1
            return self._next()
        if current is None:
            current = self._current = _Event(timestamp, event.event, event.duration, now)
        elif current.reported or event.event != current.code:
            return self._next()  # end packet repeats, stragglers, or a sender changing its mind mid-event
        current.duration = max(current.duration, event.duration)
        current.last_seen = now
        if event.end:
            self._flush()
        return self._next()

    def poll(self, now: float) -> DtmfDigit | None:
        """Report an event whose end packets were lost once it has been silent for 500 ms; call it every tick."""
        current = self._current
        if current is not None and not current.reported and now - current.last_seen >= EVENT_TIMEOUT:
            self._flush()
        return self._next()

    def _flush(self) -> None:
        """Queue the current event as a digit, unless it was reported already."""
        current = self._current
        if current is None or current.reported:
            return
        current.reported = True
        samples = current.earlier_segments + current.duration
        start = (current.timestamp - current.earlier_segments) & 0xFFFFFFFF
        self._ready.append(DtmfDigit(DIGITS[current.code], round(samples * 1000 / self.clock_rate), start))

    def _next(self) -> DtmfDigit | None:
        """The oldest digit not handed out yet."""
        return self._ready.popleft() if self._ready else None


def tone_event_packets(digit: str, duration_ms: int, clock_rate: int = 8000,
                       step_ms: int = 50) -> list[tuple[bool, bytes]]:
    """(marker, payload) of every packet a sender sends for one key press: updates every `step_ms`, then 3 ends."""
    if len(digit) != 1 or digit.upper() not in DIGITS:
        raise ValueError(f"not a DTMF digit: {digit!r}")
    if duration_ms <= 0 or step_ms <= 0:
        raise ValueError("duration and step must be positive")
    code = DIGITS.index(digit.upper())
    total = duration_ms * clock_rate // 1000
    step = step_ms * clock_rate // 1000
    if not 0 < total <= 0xFFFF or step <= 0:
        raise ValueError(f"a {duration_ms} ms event does not fit one segment at {clock_rate} Hz")
    packets = [ToneEvent(code, False, 10, duration).to_bytes() for duration in range(step, total, step)]
    packets += [ToneEvent(code, True, 10, total).to_bytes()] * 3
    return [(index == 0, payload) for index, payload in enumerate(packets)]
