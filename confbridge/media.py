"""The media engine: every participant's RTP leg, the 20 ms tick that mixes all conferences, and recordings.

A conference mixes at the highest audio rate among its participants (8, 16 or 48 kHz: G.711, G.722, Opus),
chosen again whenever someone joins, leaves or changes codec. Every session keeps its numbers in one shared
`StreamTable`; all sockets are read through one `DatagramHub`. Each tick first takes every packet received
since the last one into the table (`ingest`), then runs `confbridge.mixing.Mixer` over the participants of
each mixing rate (see there for the steps). Ticks follow absolute deadlines (`TickClock`), their lateness
is kept for the metrics; with no leg and no recording no tick runs at all, so empty conferences cost nothing.
Each session does what is due (RTCP reports, DTMF timeouts, RTP inactivity) twice a second, a share of the
legs after each tick; leg events (joins, digits, talk changes) are handled after the tick within a time budget.
"""

from __future__ import annotations

import asyncio
import logging
import math
import time
from collections import Counter, deque
from collections.abc import Callable
from concurrent.futures import Future
from dataclasses import dataclass, field, replace
from pathlib import Path

import numpy as np
import numpy.typing as npt

from mixer.clock import TickClock
from mixer.talk import TalkDetector
from recorder.worker import RecorderWorker, RecordingResult, TrackResult
from rtp.codecs import AudioCodec, FrameEncoder
from rtp.opus import OpusEncoder
from rtp.playout import Playout
from rtp.ports import PortAllocator
from rtp.session import RTP_TIMEOUT, AudioStarted, DigitReceived, MediaEvent, MediaTimeout, RtpSession, StreamParams
from rtp.socket_asyncio import DatagramHub, RtpSocket
from rtp.stream_table import StreamTable

from .mixing import Layout, Mixer, TalkingChanged

logger = logging.getLogger(__name__)

BASE_RATE = 8000
"""The rate of a conference with nobody in it (a recording of an empty room)."""
RECORDING_RATE = 16000
HOUSEKEEPING_PERIOD = 0.5
TICK_SECONDS = 0.020
"""The audio a tick carries (the tick period is this too, unless a test runs the clock faster)."""
WAKE_EARLY = 0.001
"""How long before its deadline the tick's timer is set (the event loop sleeps in whole milliseconds)."""
EVENT_BUDGET = 0.004
"""Seconds per tick spent handling leg events (joins, digits, talk changes); the rest wait for the next tick."""
CATCH_UP_READS_PER_LEG = 4
"""Datagrams per leg read between catch-up ticks (RTP and RTCP of a late tick or two, not a flood)."""
LATENESS_WINDOW = 1500
"""Ticks (30 s) over which tick lateness and duration are kept for the metrics."""

LegEvent = MediaEvent | TalkingChanged


def db_to_gain(db: float) -> float:
    """A level change in dB as a linear factor."""
    return float(10 ** (db / 20))


@dataclass(eq=False)
class MediaLeg:
    """One participant's media: its RTP session, decoder, encoder, sockets and controls.

    Controls are changed through `MediaEngine.configure_leg`, which rebuilds the tick's layout.
    """

    leg_id: str
    conference_id: str
    session: RtpSession
    socket: RtpSocket
    rtcp_socket: RtpSocket
    playout: Playout
    encoder: FrameEncoder
    on_event: Callable[[MediaLeg, LegEvent], None] | None = None
    sending: bool = True
    """Whether the participant gets the mix (not while it holds us, or is inactive)."""
    mixing: bool = True
    """Whether the participant's audio goes into the mix (not while it holds us)."""
    muted: bool = False
    """Mute "in": its audio stays out of the mix."""
    deaf: bool = False
    """Mute "out": it hears silence (packets still flow, so its NAT and timers stay happy)."""
    held: bool = False
    """On hold by the bridge: neither heard nor hearing."""
    gain_in: float = 1.0
    gain_out: float = 1.0
    mixing_rate: int = BASE_RATE
    """The rate its conference mixes at."""
    talking: bool = False

    @property
    def port(self) -> int:
        """Our local RTP port for this leg."""
        return self.socket.port

    @property
    def codec(self) -> AudioCodec:
        """The codec the leg carries."""
        return self.session.codec

    @property
    def slot(self) -> int:
        """The leg's row in the engine's `StreamTable`."""
        return self.session.slot

    def flush(self) -> None:
        """Send the RTCP the session has queued, from the port the peer expects it from."""
        for data, destination, via_rtcp_port in self.session.datagrams_to_send():
            (self.rtcp_socket if via_rtcp_port else self.socket).sendto(data, destination)

    def statistics(self) -> dict[str, object]:
        """The leg's media figures: the session's, concealment, and its controls."""
        figures = self.session.snapshot()
        figures["concealed_frames"] = self.playout.concealed_frames
        figures["fec_recovered_frames"] = self.playout.fec_frames
        figures["decode_errors"] = self.playout.decode_errors
        figures["muted"] = self.muted
        figures["deaf"] = self.deaf
        figures["held"] = self.held
        figures["gain_in_db"] = round(20 * math.log10(self.gain_in), 2) if self.gain_in > 0 else None
        figures["gain_out_db"] = round(20 * math.log10(self.gain_out), 2) if self.gain_out > 0 else None
        figures["talking"] = self.talking
        figures["mixing_rate"] = self.mixing_rate
        return figures


@dataclass
class ConferenceMedia:
    """One conference's legs, mixing rate and recording."""

    conference_id: str
    recorder: RecorderWorker
    legs: dict[str, MediaLeg] = field(default_factory=dict)
    native_rates: Counter[int] = field(default_factory=Counter)
    """How many legs have each native sample rate."""
    rate: int = BASE_RATE
    recording_id: str | None = None
    tracks: bool = False
    track_dir: Path | None = None
    open_tracks: dict[str, str] = field(default_factory=dict)
    """leg id -> the recorder's id of its track file."""
    track_started: dict[str, float] = field(default_factory=dict)
    """leg id -> seconds into the recording when its track begins."""
    finished_tracks: list[tuple[str, float, Future[RecordingResult]]] = field(default_factory=list)
    """(leg id, offset, the recorder's future) of tracks already closed."""
    ticks_recorded: int = 0
    max_ticks: int | None = None
    """Ticks after which the recording is full (its maximum duration); None for no limit."""

    @property
    def recording(self) -> bool:
        """Whether this tick's mix goes to a recording (one is open and not yet full)."""
        return self.recording_id is not None and (self.max_ticks is None or self.ticks_recorded < self.max_ticks)

    def write_track(self, leg_id: str, samples: npt.NDArray[np.int16]) -> None:
        """A participant's own signal for its track file (opened on its first frame)."""
        track_id = self.open_tracks.get(leg_id)
        if track_id is None:
            assert self.recording_id is not None and self.track_dir is not None
            track_id = self.open_tracks[leg_id] = f"{self.recording_id}/{leg_id}"
            self.track_started[leg_id] = self.ticks_recorded * TICK_SECONDS
            self.recorder.open(track_id, self.track_dir / f"{leg_id}.wav", samples.size * 50)
        self.recorder.write(track_id, samples)


@dataclass
class MediaTotals:
    """Figures of legs that have closed, so server-wide counters never go backwards."""

    packets_received: int = 0
    packets_sent: int = 0
    dropped: dict[str, int] = field(default_factory=dict)
    legs: int = 0


def _with_tracks(mix: Future[RecordingResult],
                 tracks: list[tuple[str, float, Future[RecordingResult]]]) -> Future[RecordingResult]:
    """A future of the mixed recording that resolves once its tracks are complete too, listing them."""
    if not tracks:
        return mix
    combined: Future[RecordingResult] = Future()
    pending = [mix, *(future for _, _, future in tracks)]

    def done(_: Future[RecordingResult]) -> None:
        if not all(future.done() for future in pending) or combined.done():
            return
        try:
            result = mix.result()
            finished = tuple(TrackResult(leg_id, track.path, offset, track.frames, track.error)
                             for (leg_id, offset, future) in tracks for track in (future.result(),))
        except Exception as exc:  # the recorder never fails a future, but a combined one must always resolve
            combined.set_exception(exc)
            return
        combined.set_result(replace(result, tracks=finished))

    for future in pending:
        future.add_done_callback(done)
    return combined


class MediaEngine:
    """Owns RTP sockets, the stream table, the tick and the recorder."""

    def __init__(self, *, host: str, ports: PortAllocator, recorder: RecorderWorker,
                 loop: asyncio.AbstractEventLoop, tick_period: float = 0.020, rtp_timeout: float = RTP_TIMEOUT,
                 recording_rate: int = RECORDING_RATE, noise_gate: bool = False,
                 talk: TalkDetector | None = None) -> None:
        self.host = host
        self.ports = ports
        self.recorder = recorder
        self.loop = loop
        self.tick_period = tick_period
        self.rtp_timeout = rtp_timeout
        self.recording_rate = recording_rate
        self.clock: TickClock | None = None
        self.on_recording_full: Callable[[str, str], None] | None = None
        """Told (conference id, recording id) when a recording reaches its maximum duration."""
        self.closed_totals = MediaTotals()
        self.table = StreamTable(capacity=64)
        self.hub = DatagramHub(loop)
        self.mixer = Mixer(self.table, recorder, recording_rate=recording_rate, noise_gate=noise_gate,
                           talk=talk if talk is not None else TalkDetector())
        self.lateness = np.zeros(LATENESS_WINDOW, dtype=np.float64)
        self.tick_seconds = np.zeros(LATENESS_WINDOW, dtype=np.float64)
        self.ticks = 0
        self._conferences: dict[str, ConferenceMedia] = {}
        self._legs: dict[str, MediaLeg] = {}
        self._layouts: dict[int, Layout] | None = None
        self._timer: asyncio.TimerHandle | None = None
        self._housekeeping_due: deque[str] = deque()
        """Leg ids still to be looked after in the current housekeeping round."""
        self._events: deque[tuple[MediaLeg, LegEvent]] = deque()
        """Leg events waiting to be handled after a tick (`_deliver_events`)."""

    # -- legs -------------------------------------------------------------------------------------

    def open_leg(self, leg_id: str, conference_id: str, params: StreamParams, *,
                 on_event: Callable[[MediaLeg, LegEvent], None] | None = None) -> MediaLeg:
        """Bind an RTP/RTCP port pair for a participant and add it to its conference's mix."""
        session = RtpSession(params, now=self.loop.time(), cname=f"confbridge@{self.host}", timeout=self.rtp_timeout,
                             table=self.table)
        leg: MediaLeg

        def deliver(event: object) -> None:  # on the receive path: the event is handled after the next tick
            if isinstance(event, (AudioStarted, DigitReceived, MediaTimeout)):
                self._events.append((leg, event))

        try:
            sock, rtcp_sock = RtpSocket.open_pair(self.host, self.ports, self.hub, session.receive,
                                                  session.receive_rtcp, deliver)
        except BaseException:
            session.close()
            raise
        leg = MediaLeg(leg_id, conference_id, session, sock, rtcp_sock, Playout(params.codec),
                       params.codec.new_encoder(), on_event)
        self.mixer.fit()
        self.mixer.reset_slot(leg.slot)
        self._legs[leg_id] = leg
        media = self._media(conference_id)
        media.legs[leg_id] = leg
        media.native_rates[leg.codec.sample_rate] += 1
        self._choose_rate(media, leg)
        self._layouts = None
        self._ensure_ticking()
        logger.info("conference %s: media leg %s on port %d (%s/%d%s)", conference_id, leg_id, leg.port,
                    params.codec, params.payload_type, ", SRTP" if params.srtp else "")
        return leg

    def _media(self, conference_id: str) -> ConferenceMedia:
        media = self._conferences.get(conference_id)
        if media is None:
            media = self._conferences[conference_id] = ConferenceMedia(conference_id, self.recorder)
        return media

    def update_leg(self, leg_id: str, params: StreamParams) -> None:
        """Apply a renegotiated stream; a new codec gets a new decoder and encoder, and may change the mix rate."""
        leg = self._legs.get(leg_id)
        if leg is None:
            return
        old_rate = leg.codec.sample_rate
        codec_changed = params.codec is not leg.codec
        leg.session.update(params, self.loop.time())
        if codec_changed:
            leg.playout = Playout(params.codec)
            leg.encoder = params.codec.new_encoder()
            self.mixer.reset_slot(leg.slot)
            media = self._conferences.get(leg.conference_id)
            if media is not None:
                media.native_rates[old_rate] -= 1
                media.native_rates[leg.codec.sample_rate] += 1
                self._choose_rate(media, leg)
            logger.info("conference %s: media leg %s now %s/%d", leg.conference_id, leg_id, params.codec,
                        params.payload_type)
        self._layouts = None

    def configure_leg(self, leg_id: str, *, sending: bool | None = None, mixing: bool | None = None,
                      muted: bool | None = None, deaf: bool | None = None, held: bool | None = None,
                      gain_in_db: float | None = None, gain_out_db: float | None = None) -> None:
        """Change a leg's controls (None leaves one as it is); the next tick mixes accordingly."""
        leg = self._legs.get(leg_id)
        if leg is None:
            return
        for name, value in (("sending", sending), ("mixing", mixing), ("muted", muted), ("deaf", deaf),
                            ("held", held)):
            if value is not None:
                setattr(leg, name, value)
        if gain_in_db is not None:
            leg.gain_in = db_to_gain(gain_in_db)
        if gain_out_db is not None:
            leg.gain_out = db_to_gain(gain_out_db)
        self._layouts = None

    def close_leg(self, leg_id: str) -> dict[str, object] | None:
        """Take a participant out of the mix and free its ports; returns its final media figures."""
        leg = self._legs.pop(leg_id, None)
        if leg is None:
            return None
        leg.session.bye(self.loop.time())
        leg.flush()
        leg.socket.close()
        leg.rtcp_socket.close()
        figures = leg.statistics()
        leg.session.close()
        media = self._conferences.get(leg.conference_id)
        if media is not None:
            media.legs.pop(leg_id, None)
            media.native_rates[leg.codec.sample_rate] -= 1
            track = media.open_tracks.pop(leg_id, None)
            if track is not None:
                self._close_track(media, leg_id, track)
            if not media.legs and media.recording_id is None:
                self._drop_conference(media)
            else:
                self._choose_rate(media)
        self._layouts = None
        dropped = figures["dropped"]
        assert isinstance(dropped, dict)
        self._add_to_totals(leg, dropped)
        logger.info("conference %s: media leg %s closed (%s: rx %s, tx %s, lost %s, dropped %s)", leg.conference_id,
                    leg_id, figures["codec"], figures["packets_received"], figures["packets_sent"],
                    figures["packets_lost"], {reason: count for reason, count in dropped.items() if count} or "none")
        return figures

    def _drop_conference(self, media: ConferenceMedia) -> None:
        del self._conferences[media.conference_id]
        self.mixer.forget_conference(media.conference_id)

    def _add_to_totals(self, leg: MediaLeg, dropped: dict[str, int]) -> None:
        totals = self.closed_totals
        totals.legs += 1
        totals.packets_received += leg.session.stats.packets_received
        totals.packets_sent += int(self.table.packets_sent[leg.slot])
        for reason, count in dropped.items():
            totals.dropped[reason] = totals.dropped.get(reason, 0) + count

    def leg(self, leg_id: str) -> MediaLeg | None:
        """A live leg."""
        return self._legs.get(leg_id)

    @property
    def legs(self) -> list[MediaLeg]:
        """Every live leg."""
        return list(self._legs.values())

    def conference_rate(self, conference_id: str) -> int | None:
        """The rate a conference mixes at (None when it has no media)."""
        media = self._conferences.get(conference_id)
        return media.rate if media is not None else None

    def _choose_rate(self, media: ConferenceMedia, changed: MediaLeg | None = None) -> None:
        """Mix at the highest native rate among the legs; `changed` is the leg that joined or changed codec."""
        rate = max((rate for rate, count in media.native_rates.items() if count > 0), default=BASE_RATE)
        if changed is not None:
            changed.mixing_rate = rate
        if rate == media.rate:
            return
        for leg in media.legs.values():
            leg.mixing_rate = rate
        logger.info("conference %s: mixing at %d Hz (was %d)", media.conference_id, rate, media.rate)
        media.rate = rate
        self.mixer.forget_conference(media.conference_id)
        for leg in media.legs.values():
            self.mixer.reset_slot(leg.slot)

    # -- recordings -------------------------------------------------------------------------------

    def start_recording(self, conference_id: str, recording_id: str, path: Path, *, tracks: bool = False,
                        max_seconds: float | None = None) -> int:
        """Write the conference's mix to a WAV file from the next tick on; returns the sample rate.

        With `tracks`, each participant's own signal also goes to `<path without .wav>/<leg id>.wav`. After
        `max_seconds` of audio nothing more is written and `on_recording_full` is told.
        """
        path.parent.mkdir(parents=True, exist_ok=True)
        self.recorder.open(recording_id, path, self.recording_rate)
        media = self._media(conference_id)
        media.recording_id = recording_id
        media.tracks = tracks
        media.ticks_recorded = 0
        media.max_ticks = max(1, round(max_seconds / TICK_SECONDS)) if max_seconds is not None else None
        media.finished_tracks = []
        media.track_started = {}
        if tracks:
            media.track_dir = path.with_suffix("")
            media.track_dir.mkdir(parents=True, exist_ok=True)
        self._ensure_ticking()
        return self.recording_rate

    def stop_recording(self, conference_id: str) -> Future[RecordingResult]:
        """Stop the conference's recording; the future resolves when the file (and its tracks) are complete."""
        media = self._conferences.get(conference_id)
        if media is None or media.recording_id is None:
            future: Future[RecordingResult] = Future()
            future.set_exception(LookupError(f"conference {conference_id} is not recording"))
            return future
        recording_id, media.recording_id = media.recording_id, None
        for leg_id, track in list(media.open_tracks.items()):
            self._close_track(media, leg_id, track)
        media.open_tracks.clear()
        media.tracks = False
        tracks, media.finished_tracks = media.finished_tracks, []
        if not media.legs:
            self._drop_conference(media)
        return _with_tracks(self.recorder.close(recording_id), tracks)

    def _close_track(self, media: ConferenceMedia, leg_id: str, track_id: str) -> None:
        media.finished_tracks.append((leg_id, media.track_started.get(leg_id, 0.0), self.recorder.close(track_id)))

    # -- the tick ---------------------------------------------------------------------------------

    def _ensure_ticking(self) -> None:
        if self._timer is None and self._conferences:
            self.clock = TickClock(self.loop.time(), self.tick_period)
            self._arm()

    def _on_timer(self, deadline: float) -> None:
        self._timer = None
        self.hub.yield_at = math.inf  # until the next tick is armed, reading may go on
        assert self.clock is not None
        # Woken up to WAKE_EARLY before the deadline: that tick is due all the same.
        clock = self.clock
        count = clock.due(max(self.loop.time(), deadline))
        for index in range(clock.index - count, clock.index):  # behind schedule: each tick late by its own amount
            if index > clock.index - count:
                # Catching up: what arrived meanwhile is read first, or every leg would seem to have lost a frame.
                self.hub.drain(CATCH_UP_READS_PER_LEG * len(self._legs))
            slot = self.ticks % LATENESS_WINDOW
            self.lateness[slot] = max(0.0, self.loop.time() - clock.deadline(index))
            started = time.perf_counter()
            try:
                self.tick()
            except Exception:
                logger.exception("mixer tick failed")
            self.tick_seconds[slot] = time.perf_counter() - started
            self.ticks += 1
        self._housekeep_share(self.loop.time())
        if self._conferences:
            self._arm()

    def _arm(self) -> None:
        """Wake for the next tick. The event loop sleeps in whole milliseconds, rounded up, so a timer set for the
        deadline fires up to a millisecond after it; set `WAKE_EARLY` before, it fires within a millisecond of it
        (a tick woken early runs at once: the deadline grid, not the wake-up, is what the audio follows)."""
        assert self.clock is not None
        deadline = self.clock.next_deadline
        self._timer = self.loop.call_at(deadline - WAKE_EARLY, self._on_timer, deadline)
        self.hub.yield_at = deadline - WAKE_EARLY  # reading sockets gives way to the tick when it is due

    def tick(self) -> None:
        """Mix and send one frame for every conference, and record what is being recorded."""
        now = self.loop.time()
        started = time.perf_counter()
        self.table.ingest()
        self.mixer.stage_seconds["ingest"] += time.perf_counter() - started
        if self._layouts is None:
            self._layouts = self._build_layouts()
        events: list[tuple[MediaLeg, TalkingChanged]] = []
        for layout in self._layouts.values():
            self.mixer.run(layout, now, events)
        for leg, talk in events:
            leg.talking = talk.talking
        self._events.extend(events)
        for media in self._conferences.values():
            if media.recording:
                assert media.recording_id is not None
                if not media.legs:
                    self.recorder.write(media.recording_id, np.zeros(self.recording_rate // 50, dtype=np.int16))
                media.ticks_recorded += 1
                if not media.recording and self.on_recording_full is not None:
                    self.loop.call_soon(self.on_recording_full, media.conference_id, media.recording_id)
        self._deliver_events()

    def _deliver_events(self) -> None:
        """Hand queued leg events to their owners, for at most `EVENT_BUDGET` seconds a tick: a burst (hundreds of
        callers whose audio starts at once, each joining in the database) is spread over ticks instead of holding
        up the mix. Events of legs closed meanwhile are dropped."""
        events = self._events
        deadline = time.perf_counter() + EVENT_BUDGET
        while events and time.perf_counter() < deadline:
            leg, event = events.popleft()
            if leg.on_event is not None and self._legs.get(leg.leg_id) is leg:
                try:
                    leg.on_event(leg, event)
                except Exception:
                    logger.exception("media leg %s: handling %s failed", leg.leg_id, type(event).__name__)

    def _build_layouts(self) -> dict[int, Layout]:
        by_rate: dict[int, list[ConferenceMedia]] = {}
        for media in self._conferences.values():
            if media.legs:
                by_rate.setdefault(media.rate, []).append(media)
        # Conferences of one size side by side: their sums are then taken as one block (see conference_totals).
        return {rate: Layout.build(rate, sorted(conferences, key=lambda media: len(media.legs)))
                for rate, conferences in by_rate.items()}

    def lateness_figures(self) -> dict[str, float]:
        """p50/p99/max tick lateness and tick compute time over the last `LATENESS_WINDOW` ticks, in seconds."""
        count = min(self.ticks, LATENESS_WINDOW)
        if count == 0:
            return {"lateness_p50": 0.0, "lateness_p99": 0.0, "lateness_max": 0.0, "tick_p50": 0.0, "tick_p99": 0.0}
        lateness, seconds = self.lateness[:count], self.tick_seconds[:count]
        return {"lateness_p50": float(np.percentile(lateness, 50)), "lateness_p99": float(np.percentile(lateness, 99)),
                "lateness_max": float(lateness.max()), "tick_p50": float(np.percentile(seconds, 50)),
                "tick_p99": float(np.percentile(seconds, 99))}

    # -- housekeeping -----------------------------------------------------------------------------

    def _housekeep_share(self, now: float) -> None:
        """This tick's share of a housekeeping round: every leg is looked after once per `HOUSEKEEPING_PERIOD`,
        a slice per tick, so no single tick pays for all of them."""
        due = self._housekeeping_due
        if not due:
            due.extend(self._legs)
        share = math.ceil(len(self._legs) * self.tick_period / HOUSEKEEPING_PERIOD)
        legs = [leg for leg in (self._legs.get(due.popleft()) for _ in range(min(share, len(due)))) if leg is not None]
        self._housekeep(legs, now)

    def _housekeep(self, legs: list[MediaLeg], now: float) -> None:
        """What each session has due: RTCP reports, DTMF whose end was lost, inactivity; Opus adapts its FEC."""
        wallclock = time.time()
        for leg in legs:
            try:
                events = leg.session.handle_timer(now, wallclock)
                leg.flush()
                encoder = leg.encoder
                loss = leg.session.rtcp.remote_fraction_lost
                if isinstance(encoder, OpusEncoder) and loss is not None:
                    encoder.set_expected_loss(min(50, max(5, round(loss * 100))))
                self._events.extend((leg, event) for event in events)
            except Exception:
                logger.exception("media leg %s: housekeeping failed", leg.leg_id)

    # -- shutdown ---------------------------------------------------------------------------------

    def close(self) -> None:
        """Close every leg and stop ticking (recordings are closed by whoever started them)."""
        if self._timer is not None:
            self._timer.cancel()
            self._timer = None
        for leg_id in list(self._legs):
            self.close_leg(leg_id)
        self.hub.close()
