"""The media engine: every participant's RTP leg, and the 20 ms tick that mixes all conferences.

One tick, for every conference at once:
  1. pull one frame per leg from its playout buffer, decode each codec's frames in one call;
  2. sum each conference (`conference_totals`), subtract each leg's own signal (`mix_minus`),
     clip once to 16 bits;
  3. encode each codec's outputs in one call, stamp each leg's RTP header and send;
  4. hand each recording conference's total to the recorder thread.
Ticks follow absolute deadlines (`TickClock`); with no leg and no recording, no tick runs at all.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Callable
from concurrent.futures import Future
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

from mixer.clock import TickClock
from mixer.mixdown import conference_totals, mix_minus, to_pcm16
from recorder.worker import RecorderWorker, RecordingResult
from rtp.codecs import AudioCodec
from rtp.ports import PortAllocator
from rtp.session import Address, RtpSession
from rtp.socket_asyncio import RtpSocket

logger = logging.getLogger(__name__)

MIX_RATE = 8000


@dataclass(eq=False)
class MediaLeg:
    """One participant's media stream."""

    leg_id: str
    conference_id: str
    session: RtpSession
    socket: RtpSocket
    on_started: Callable[[MediaLeg], None] | None = None
    started: bool = False
    sending: bool = True
    """Whether the participant gets the mix (not while it holds us, or is inactive)."""
    mixing: bool = True
    """Whether the participant's audio goes into the mix (not while on hold)."""

    @property
    def port(self) -> int:
        """Our local RTP port for this leg."""
        return self.socket.port

    def datagram_received(self, data: bytes, source: Address) -> None:
        """Feed the session; the first audio packet announces that media flows."""
        if self.session.receive(data, source, self.socket.loop.time()) and not self.started:
            self.started = True
            if self.on_started is not None:
                self.on_started(self)


@dataclass
class _ConferenceMedia:
    legs: dict[str, MediaLeg] = field(default_factory=dict)
    recording_id: str | None = None


class MediaEngine:
    """Owns RTP sockets, the tick and the recorder."""

    def __init__(self, *, host: str, ports: PortAllocator, recorder: RecorderWorker,
                 loop: asyncio.AbstractEventLoop, tick_period: float = 0.020) -> None:
        self.host = host
        self.ports = ports
        self.recorder = recorder
        self.loop = loop
        self.tick_period = tick_period
        self.frame_samples = round(MIX_RATE * tick_period)
        self.clock: TickClock | None = None
        self._conferences: dict[str, _ConferenceMedia] = {}
        self._legs: dict[str, MediaLeg] = {}
        self._timer: asyncio.TimerHandle | None = None

    # -- legs -------------------------------------------------------------------------------------

    def open_leg(self, leg_id: str, conference_id: str, codec: AudioCodec, payload_type: int, *,
                 remote: Address | None, telephone_event_payload_type: int | None = None,
                 on_started: Callable[[MediaLeg], None] | None = None) -> MediaLeg:
        """Bind an RTP port for a participant and add it to its conference's mix."""
        if codec.samples_per_frame() != self.frame_samples or codec.clock_rate != MIX_RATE:
            raise ValueError(f"{codec.name} does not run at the {MIX_RATE} Hz mixing rate")
        session = RtpSession(codec, payload_type, remote=remote,
                             telephone_event_payload_type=telephone_event_payload_type)
        leg: MediaLeg
        sock = RtpSocket.open(self.host, self.ports, lambda data, source: leg.datagram_received(data, source),
                              self.loop)
        leg = MediaLeg(leg_id, conference_id, session, sock, on_started)
        self._legs[leg_id] = leg
        self._conferences.setdefault(conference_id, _ConferenceMedia()).legs[leg_id] = leg
        self._ensure_ticking()
        logger.info("conference %s: media leg %s on port %d (%s/%d)", conference_id, leg_id, leg.port,
                    codec.name, payload_type)
        return leg

    def close_leg(self, leg_id: str) -> None:
        """Take a participant out of the mix and free its port."""
        leg = self._legs.pop(leg_id, None)
        if leg is None:
            return
        leg.socket.close()
        media = self._conferences.get(leg.conference_id)
        if media is not None:
            media.legs.pop(leg_id, None)
            if not media.legs and media.recording_id is None:
                del self._conferences[leg.conference_id]
        stats = leg.session.stats
        logger.info("conference %s: media leg %s closed (rx %d, tx %d, dropped %d)", leg.conference_id, leg_id,
                    stats.packets_received, stats.packets_sent,
                    stats.dropped_malformed + stats.dropped_payload_type)

    def leg(self, leg_id: str) -> MediaLeg | None:
        """A live leg."""
        return self._legs.get(leg_id)

    # -- recordings -------------------------------------------------------------------------------

    def start_recording(self, conference_id: str, recording_id: str, path: Path) -> int:
        """Write the conference's mix to a WAV file from the next tick on; returns the sample rate."""
        path.parent.mkdir(parents=True, exist_ok=True)
        self.recorder.open(recording_id, path, MIX_RATE)
        self._conferences.setdefault(conference_id, _ConferenceMedia()).recording_id = recording_id
        self._ensure_ticking()
        return MIX_RATE

    def stop_recording(self, conference_id: str) -> Future[RecordingResult]:
        """Stop the conference's recording; the future resolves when the file is complete."""
        media = self._conferences.get(conference_id)
        if media is None or media.recording_id is None:
            future: Future[RecordingResult] = Future()
            future.set_exception(LookupError(f"conference {conference_id} is not recording"))
            return future
        recording_id, media.recording_id = media.recording_id, None
        if not media.legs:
            del self._conferences[conference_id]
        return self.recorder.close(recording_id)

    # -- the tick ---------------------------------------------------------------------------------

    def _ensure_ticking(self) -> None:
        if self._timer is None and self._conferences:
            self.clock = TickClock(self.loop.time(), self.tick_period)
            self._timer = self.loop.call_at(self.clock.next_deadline, self._on_timer, self.clock.next_deadline)

    def _on_timer(self, deadline: float) -> None:
        self._timer = None
        assert self.clock is not None
        # asyncio may run a timer a hair before its deadline; that tick is due all the same.
        for _ in range(self.clock.due(max(self.loop.time(), deadline))):
            try:
                self.tick()
            except Exception:
                logger.exception("mixer tick failed")
        if self._conferences:
            self._timer = self.loop.call_at(self.clock.next_deadline, self._on_timer, self.clock.next_deadline)

    def tick(self) -> None:
        """Mix and send one frame for every conference."""
        n = self.frame_samples
        rows: list[MediaLeg] = []
        starts: list[int] = []
        mixed: list[_ConferenceMedia] = []
        silent_recordings: list[str] = []
        for media in self._conferences.values():
            if media.legs:
                starts.append(len(rows))
                rows.extend(media.legs.values())
                mixed.append(media)
            elif media.recording_id is not None:
                silent_recordings.append(media.recording_id)

        frames = np.zeros((len(rows), n), dtype=np.float32)
        received: dict[AudioCodec, tuple[list[int], list[bytes]]] = {}
        by_codec: dict[AudioCodec, list[int]] = {}
        for row, leg in enumerate(rows):
            codec = leg.session.codec
            if leg.sending:
                by_codec.setdefault(codec, []).append(row)
            payload = leg.session.pull_frame()
            if payload is not None and leg.mixing:
                entry = received.setdefault(codec, ([], []))
                entry[0].append(row)
                entry[1].append(payload)
        for codec, (codec_rows, payloads) in received.items():
            frames[codec_rows] = codec.decode_frames(payloads, n)

        conference_of_row = np.repeat(np.arange(len(starts)), np.diff([*starts, len(rows)]))
        totals = conference_totals(frames, np.asarray(starts, dtype=np.intp))
        outputs = to_pcm16(mix_minus(frames, totals, conference_of_row))

        for codec, codec_rows in by_codec.items():
            encoded = codec.encode(outputs[codec_rows])
            for index, row in enumerate(codec_rows):
                leg = rows[row]
                remote = leg.session.remote
                if remote is not None:
                    leg.socket.sendto(leg.session.packetize(encoded[index].tobytes()), remote)

        for index, media in enumerate(mixed):
            if media.recording_id is not None:
                self.recorder.write(media.recording_id, to_pcm16(totals[index]))
        for recording_id in silent_recordings:
            self.recorder.write(recording_id, np.zeros(n, dtype=np.int16))

    # -- shutdown ---------------------------------------------------------------------------------

    def close(self) -> None:
        """Close every leg and stop ticking (recordings are closed by whoever started them)."""
        if self._timer is not None:
            self._timer.cancel()
            self._timer = None
        for leg_id in list(self._legs):
            self.close_leg(leg_id)
