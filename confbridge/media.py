"""The media engine: every participant's RTP leg, and the 20 ms tick that mixes all conferences.

A conference mixes at the highest audio rate among its participants (8, 16 or 48 kHz: G.711, G.722,
Opus), chosen again whenever someone joins, leaves or changes codec. One tick, for every conference:
  1. take each leg's next 20 ms from its jitter buffer; decode G.711 of all legs in one table lookup per
     codec, G.722 and Opus leg by leg; conceal what is missing;
  2. resample each leg to its conference's rate, all legs of one rate pair in one batched call (each
     leg's filter state is kept between ticks);
  3. per mixing rate, sum each conference and subtract each leg's own signal (N-1);
  4. resample each leg's mix back to its codec's rate, clip once to 16 bits, encode (G.711 in one call
     per codec), stamp, protect and send;
  5. resample each recording conference's total to the recording rate and hand it to the recorder.
Ticks follow absolute deadlines (`TickClock`); with no leg and no recording, no tick runs at all.
Twice a second each leg's session does what is due (RTCP reports, DTMF timeouts, RTP inactivity).
"""

from __future__ import annotations

import asyncio
import logging
import time
from collections.abc import Callable
from concurrent.futures import Future
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
import numpy.typing as npt

from mixer.clock import TickClock
from mixer.mixdown import conference_totals, mix_minus, to_pcm16
from mixer.resample import BatchResampler
from recorder.worker import RecorderWorker, RecordingResult
from rtp.codecs import AudioCodec, FrameEncoder, G711Codec
from rtp.opus import OpusEncoder
from rtp.packet import Address
from rtp.playout import Playout
from rtp.ports import PortAllocator
from rtp.session import RTP_TIMEOUT, MediaEvent, RtpSession, StreamParams
from rtp.socket_asyncio import RtpSocket

logger = logging.getLogger(__name__)

Frames = npt.NDArray[np.float32]
Pcm = npt.NDArray[np.int16]
BASE_RATE = 8000
"""The rate of a conference with nobody in it (a recording of an empty room)."""
RECORDING_RATE = 16000
HOUSEKEEPING_PERIOD = 0.5


@dataclass(eq=False)
class MediaLeg:
    """One participant's media: its RTP session, decoder, encoder, sockets and resampler state."""

    leg_id: str
    conference_id: str
    session: RtpSession
    socket: RtpSocket
    rtcp_socket: RtpSocket
    playout: Playout
    encoder: FrameEncoder
    on_event: Callable[[MediaLeg, MediaEvent], None] | None = None
    sending: bool = True
    """Whether the participant gets the mix (not while it holds us, or is inactive)."""
    mixing: bool = True
    """Whether the participant's audio goes into the mix (not while on hold)."""
    muted: bool = False
    """Muted (mute direction "in"): its audio stays out of the mix."""
    deaf: bool = False
    """Mute direction "out": it hears silence (packets still flow, so its NAT and timers stay happy)."""
    mixing_rate: int = BASE_RATE
    """The rate its conference mixes at."""
    in_history: Frames | None = field(default=None, repr=False)
    """Resampler state from the codec's rate to the conference's (None: silence)."""
    out_history: Frames | None = field(default=None, repr=False)

    @property
    def port(self) -> int:
        """Our local RTP port for this leg."""
        return self.socket.port

    @property
    def codec(self) -> AudioCodec:
        """The codec the leg carries."""
        return self.session.codec

    def datagram_received(self, data: bytes, source: Address) -> None:
        """A datagram on the RTP port."""
        event = self.session.receive(data, source, self.socket.loop.time())
        if event is not None and self.on_event is not None:
            self.on_event(self, event)

    def rtcp_received(self, data: bytes, source: Address) -> None:
        """A datagram on the RTCP port."""
        self.session.receive_rtcp(data, source, self.socket.loop.time())

    def flush(self) -> None:
        """Send the RTCP the session has queued, from the port the peer expects it from."""
        for data, destination, via_rtcp_port in self.session.datagrams_to_send():
            sock = self.rtcp_socket if via_rtcp_port else self.socket
            sock.sendto(data, destination)

    def statistics(self) -> dict[str, object]:
        """The leg's media figures: the session's plus concealment."""
        figures = self.session.snapshot()
        figures["concealed_frames"] = self.playout.concealed_frames
        figures["fec_recovered_frames"] = self.playout.fec_frames
        figures["decode_errors"] = self.playout.decode_errors
        figures["muted"] = self.muted
        figures["deaf"] = self.deaf
        figures["mixing_rate"] = self.mixing_rate
        return figures


@dataclass
class _ConferenceMedia:
    legs: dict[str, MediaLeg] = field(default_factory=dict)
    rate: int = BASE_RATE
    recording_id: str | None = None
    recording_history: Frames | None = None


@dataclass
class MediaTotals:
    """Figures of legs that have closed, so server-wide counters never go backwards."""

    packets_received: int = 0
    packets_sent: int = 0
    dropped: dict[str, int] = field(default_factory=dict)
    legs: int = 0


class MediaEngine:
    """Owns RTP sockets, the tick and the recorder."""

    def __init__(self, *, host: str, ports: PortAllocator, recorder: RecorderWorker,
                 loop: asyncio.AbstractEventLoop, tick_period: float = 0.020, rtp_timeout: float = RTP_TIMEOUT,
                 recording_rate: int = RECORDING_RATE) -> None:
        self.host = host
        self.ports = ports
        self.recorder = recorder
        self.loop = loop
        self.tick_period = tick_period
        self.rtp_timeout = rtp_timeout
        self.recording_rate = recording_rate
        self.clock: TickClock | None = None
        self.closed_totals = MediaTotals()
        self._conferences: dict[str, _ConferenceMedia] = {}
        self._legs: dict[str, MediaLeg] = {}
        self._timer: asyncio.TimerHandle | None = None
        self._resamplers: dict[tuple[int, int], BatchResampler] = {}
        self._next_housekeeping = 0.0

    # -- legs -------------------------------------------------------------------------------------

    def open_leg(self, leg_id: str, conference_id: str, params: StreamParams, *,
                 on_event: Callable[[MediaLeg, MediaEvent], None] | None = None) -> MediaLeg:
        """Bind an RTP/RTCP port pair for a participant and add it to its conference's mix."""
        leg: MediaLeg
        sock, rtcp_sock = RtpSocket.open_pair(self.host, self.ports,
                                              lambda data, source: leg.datagram_received(data, source),
                                              lambda data, source: leg.rtcp_received(data, source), self.loop)
        session = RtpSession(params, now=self.loop.time(), cname=f"confbridge@{self.host}", timeout=self.rtp_timeout)
        leg = MediaLeg(leg_id, conference_id, session, sock, rtcp_sock, Playout(params.codec),
                       params.codec.new_encoder(), on_event)
        self._legs[leg_id] = leg
        media = self._conferences.setdefault(conference_id, _ConferenceMedia())
        media.legs[leg_id] = leg
        self._choose_rate(conference_id, media)
        self._ensure_ticking()
        logger.info("conference %s: media leg %s on port %d (%s/%d%s)", conference_id, leg_id, leg.port,
                    params.codec, params.payload_type, ", SRTP" if params.srtp else "")
        return leg

    def update_leg(self, leg_id: str, params: StreamParams) -> None:
        """Apply a renegotiated stream; a new codec gets a new decoder and encoder, and may change the mix rate."""
        leg = self._legs.get(leg_id)
        if leg is None:
            return
        codec_changed = params.codec is not leg.codec
        leg.session.update(params, self.loop.time())
        if codec_changed:
            leg.playout = Playout(params.codec)
            leg.encoder = params.codec.new_encoder()
            leg.in_history = leg.out_history = None
            media = self._conferences.get(leg.conference_id)
            if media is not None:
                self._choose_rate(leg.conference_id, media)
            logger.info("conference %s: media leg %s now %s/%d", leg.conference_id, leg_id, params.codec,
                        params.payload_type)

    def close_leg(self, leg_id: str) -> dict[str, object] | None:
        """Take a participant out of the mix and free its ports; returns its final media figures."""
        leg = self._legs.pop(leg_id, None)
        if leg is None:
            return None
        leg.session.bye(self.loop.time())
        leg.flush()
        leg.socket.close()
        leg.rtcp_socket.close()
        media = self._conferences.get(leg.conference_id)
        if media is not None:
            media.legs.pop(leg_id, None)
            if not media.legs and media.recording_id is None:
                del self._conferences[leg.conference_id]
            else:
                self._choose_rate(leg.conference_id, media)
        figures = leg.statistics()
        dropped = figures["dropped"]
        assert isinstance(dropped, dict)
        self._add_to_totals(leg, dropped)
        logger.info("conference %s: media leg %s closed (%s: rx %s, tx %s, lost %s, dropped %s)", leg.conference_id,
                    leg_id, figures["codec"], figures["packets_received"], figures["packets_sent"],
                    figures["packets_lost"], {reason: count for reason, count in dropped.items() if count} or "none")
        return figures

    def _add_to_totals(self, leg: MediaLeg, dropped: dict[str, int]) -> None:
        totals = self.closed_totals
        totals.legs += 1
        totals.packets_received += leg.session.stats.packets_received
        totals.packets_sent += leg.session.stats.packets_sent
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

    def _choose_rate(self, conference_id: str, media: _ConferenceMedia) -> None:
        rate = max((leg.codec.sample_rate for leg in media.legs.values()), default=BASE_RATE)
        for leg in media.legs.values():
            leg.mixing_rate = rate
        if rate == media.rate:
            return
        logger.info("conference %s: mixing at %d Hz (was %d)", conference_id, rate, media.rate)
        media.rate = rate
        media.recording_history = None
        for leg in media.legs.values():
            leg.in_history = leg.out_history = None

    # -- recordings -------------------------------------------------------------------------------

    def start_recording(self, conference_id: str, recording_id: str, path: Path) -> int:
        """Write the conference's mix to a WAV file from the next tick on; returns the sample rate."""
        path.parent.mkdir(parents=True, exist_ok=True)
        self.recorder.open(recording_id, path, self.recording_rate)
        media = self._conferences.setdefault(conference_id, _ConferenceMedia())
        media.recording_id = recording_id
        media.recording_history = None
        self._ensure_ticking()
        return self.recording_rate

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
        now = self.loop.time()
        if now >= self._next_housekeeping:
            self._next_housekeeping = now + HOUSEKEEPING_PERIOD
            self.housekeeping(now)
        if self._conferences:
            self._timer = self.loop.call_at(self.clock.next_deadline, self._on_timer, self.clock.next_deadline)

    def tick(self) -> None:
        """Mix and send one frame for every conference."""
        now = self.loop.time()
        by_rate: dict[int, list[_ConferenceMedia]] = {}
        for media in self._conferences.values():
            if media.legs:
                by_rate.setdefault(media.rate, []).append(media)
            elif media.recording_id is not None:
                self.recorder.write(media.recording_id, np.zeros(self._frame(self.recording_rate), dtype=np.int16))
        for rate, conferences in by_rate.items():
            self._mix(rate, conferences, now)

    def _frame(self, rate: int) -> int:
        return round(rate * self.tick_period)

    def _resampler(self, from_rate: int, to_rate: int) -> BatchResampler:
        resampler = self._resamplers.get((from_rate, to_rate))
        if resampler is None:
            resampler = self._resamplers[(from_rate, to_rate)] = BatchResampler(from_rate, to_rate)
        return resampler

    def _convert(self, from_rate: int, to_rate: int, frames: Frames,
                 histories: list[Frames | None]) -> tuple[Frames, Frames]:
        """Resample the rows of `frames`, each with its own filter state (None: it was silent before)."""
        resampler = self._resampler(from_rate, to_rate)
        silent = np.zeros(resampler.history_length, dtype=np.float32)
        history = np.stack([h if h is not None else silent for h in histories])
        return resampler.process(frames, history)

    def _mix(self, rate: int, conferences: list[_ConferenceMedia], now: float) -> None:
        rows: list[MediaLeg] = []
        starts: list[int] = []
        for media in conferences:
            starts.append(len(rows))
            rows.extend(media.legs.values())
        frames = self._receive(rows, rate)

        conference_of_row = np.repeat(np.arange(len(starts)), np.diff([*starts, len(rows)]))
        totals = conference_totals(frames, np.asarray(starts, dtype=np.intp))
        self._send(rows, rate, mix_minus(frames, totals, conference_of_row), now)

        for index, media in enumerate(conferences):
            if media.recording_id is not None:
                self._record(media, rate, totals[index : index + 1])

    def _receive(self, rows: list[MediaLeg], rate: int) -> Frames:
        """Every leg's next 20 ms at the mixing rate (zero rows for silent, held or muted legs)."""
        frames = np.zeros((len(rows), self._frame(rate)), dtype=np.float32)
        batches: dict[G711Codec, tuple[list[int], list[bytes]]] = {}
        audio: dict[int, tuple[list[int], list[Pcm]]] = {}
        for row, leg in enumerate(rows):
            item = leg.session.pop()
            if not leg.mixing or leg.muted:
                leg.in_history = None
                continue
            playout = leg.playout
            if isinstance(item, bytes) and playout.batch_decoded:
                codec = leg.codec
                assert isinstance(codec, G711Codec)
                batch = batches.setdefault(codec, ([], []))
                batch[0].append(row)
                batch[1].append(item)
                continue
            pcm = playout.next_frame(item, leg.session.buffer)
            if pcm is None:
                leg.in_history = None
                continue
            entry = audio.setdefault(leg.codec.sample_rate, ([], []))
            entry[0].append(row)
            entry[1].append(pcm)
        for codec, (batch_rows, payloads) in batches.items():
            decoded = codec.decode_frames(payloads)
            entry = audio.setdefault(codec.sample_rate, ([], []))
            for index, row in enumerate(batch_rows):
                entry[0].append(row)
                entry[1].append(rows[row].playout.decoded(decoded[index]))
        for native, (audio_rows, pcms) in audio.items():
            stacked = np.stack(pcms).astype(np.float32)
            if native == rate:
                frames[audio_rows] = stacked
                continue
            converted, history = self._convert(native, rate, stacked, [rows[row].in_history for row in audio_rows])
            frames[audio_rows] = converted
            for index, row in enumerate(audio_rows):
                rows[row].in_history = history[index]
        return frames

    def _send(self, rows: list[MediaLeg], rate: int, mixes: Frames, now: float) -> None:
        """Resample each sending leg's mix to its codec's rate, clip, encode, stamp and send."""
        by_rate: dict[int, list[int]] = {}
        for row, leg in enumerate(rows):
            if leg.sending and leg.session.remote is not None:
                by_rate.setdefault(leg.codec.sample_rate, []).append(row)
            else:
                leg.session.skip_frame()
        for native, send_rows in by_rate.items():
            out = mixes[send_rows]
            deaf = [index for index, row in enumerate(send_rows) if rows[row].deaf]
            if deaf:
                out[deaf] = 0.0
            if native != rate:
                out, history = self._convert(rate, native, out, [rows[row].out_history for row in send_rows])
                for index, row in enumerate(send_rows):
                    rows[row].out_history = history[index]
            pcm = to_pcm16(out)
            batches: dict[G711Codec, list[int]] = {}
            for index, row in enumerate(send_rows):
                codec = rows[row].codec
                if isinstance(codec, G711Codec):
                    batches.setdefault(codec, []).append(index)
                else:
                    self._transmit(rows[row], rows[row].encoder.encode(pcm[index]), now)
            for codec, indices in batches.items():
                encoded = codec.encode_frames(pcm[indices])
                for position, index in enumerate(indices):
                    self._transmit(rows[send_rows[index]], encoded[position].tobytes(), now)

    @staticmethod
    def _transmit(leg: MediaLeg, payload: bytes, now: float) -> None:
        packet = leg.session.packetize(payload, now)
        remote = leg.session.remote
        if packet is not None and remote is not None:
            leg.socket.sendto(packet, remote)

    def _record(self, media: _ConferenceMedia, rate: int, total: Frames) -> None:
        assert media.recording_id is not None
        if rate != self.recording_rate:
            total, history = self._convert(rate, self.recording_rate, total, [media.recording_history])
            media.recording_history = history[0]
        self.recorder.write(media.recording_id, to_pcm16(total[0]))

    # -- housekeeping -----------------------------------------------------------------------------

    def housekeeping(self, now: float) -> None:
        """What each session has due: RTCP reports, DTMF whose end was lost, inactivity; Opus adapts its FEC."""
        wallclock = time.time()
        for leg in list(self._legs.values()):
            try:
                events = leg.session.handle_timer(now, wallclock)
                leg.flush()
                encoder = leg.encoder
                loss = leg.session.rtcp.remote_fraction_lost
                if isinstance(encoder, OpusEncoder) and loss is not None:
                    encoder.set_expected_loss(min(50, max(5, round(loss * 100))))
                for event in events:
                    if leg.on_event is not None and self._legs.get(leg.leg_id) is leg:
                        leg.on_event(leg, event)
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
