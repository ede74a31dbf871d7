"""Participants without SIP: in-process bots (and WebSocket clients, which are bots fed by a socket).

A bot is an ordinary participant whose RTP peer lives inside the server process: `Bots.add` binds a UDP
socket on loopback, admits a call (type "bot" or "websocket") and opens a normal media leg that sends to it.
The bot then talks RTP with its leg, so it is mixed (never hearing itself), recorded, muted, held,
gain-controlled, health-checked and kicked exactly like a phone, with nothing special in the mixer.

Out (bot → conference): a pacing task sends one 20 ms packet every 20 ms on absolute deadlines, from a queue
of at most `QUEUE_SECONDS` of audio (the oldest is dropped when an app pushes faster than real time), and
silence when the queue is empty, so the leg never times out. In (conference → bot): every packet from the leg
is decoded to 16-bit PCM at the bot's rate and queued for `async for frame in bot` (oldest dropped when the
consumer is slow). The bot's rate picks its codec: 8000 PCMU, 16000 G.722, 48000 Opus.
"""

from __future__ import annotations

import asyncio
import logging
import secrets
from collections import deque
from collections.abc import AsyncIterable, AsyncIterator
from typing import Any

import numpy as np
import numpy.typing as npt

from rtp.codecs import FRAME_SECONDS, G722, OPUS, PCMU, AudioCodec, FrameDecoder, FrameEncoder
from rtp.opus import OpusError
from rtp.packet import Address, RtpPacket, RtpParseError, is_rtcp, read_header
from rtp.ports import PortsExhausted
from rtp.session import AudioStarted, MediaTimeout, StreamParams

from .errors import ConfbridgeError, InvalidRequest, Unavailable
from .media import LegEvent, MediaEngine, MediaLeg
from .mixing import TalkingChanged
from .models import Conference
from .service import ConferenceService

logger = logging.getLogger(__name__)

Pcm = npt.NDArray[np.int16]
AudioFrame = npt.NDArray[Any]
"""What a bot may send: int16 samples, or floats from -1 to 1; any length, mono."""

CODECS_BY_RATE: dict[int, tuple[AudioCodec, int]] = {8000: (PCMU, 0), 16000: (G722, 9), 48000: (OPUS, 111)}
"""A bot's sample rate -> the codec and payload type of its leg."""
RATES = tuple(CODECS_BY_RATE)
DEFAULT_RATE = 16000
QUEUE_SECONDS = 1.0
"""Audio a bot may have waiting to be sent; beyond it the oldest is dropped."""
HEARD_FRAMES = 50
"""20 ms frames heard but not yet read by the bot's consumer; beyond it the oldest is dropped."""
MAX_LATE = 0.1
"""Seconds behind its deadline (a stalled loop) after which the pacer skips the frames missed, not bursts them."""
TAIL_SECONDS = 0.1
"""How long a bot whose audio ended stays, so its last packets are mixed before its leg closes."""
LOOPBACK = {"0.0.0.0": "127.0.0.1", "": "127.0.0.1", "::": "::1"}
"""Wildcard bind addresses -> the loopback address a bot's socket uses instead."""


def as_pcm16(frame: AudioFrame) -> Pcm:
    """A frame as mono int16 samples: int16 as it is, floats (-1..1) scaled and clipped; TypeError otherwise."""
    array = np.asarray(frame).reshape(-1)
    samples: Pcm
    if array.dtype.kind == "i" and array.dtype.itemsize == 2:
        samples = array.astype(np.int16, copy=False)
    elif array.dtype.kind == "f":
        samples = np.rint(np.clip(array, -1.0, 1.0) * 32767.0).astype(np.int16)
    else:
        raise TypeError(f"bot audio must be int16 or float (-1..1) samples, not {array.dtype}")
    return samples


class PcmQueue:
    """Samples waiting to be sent, cut into exact frames; holds at most `capacity` samples, dropping the oldest."""

    def __init__(self, capacity: int) -> None:
        self.capacity = capacity
        self.size = 0
        self.dropped = 0
        """Samples dropped because more than `capacity` were waiting."""
        self._chunks: deque[Pcm] = deque()

    def push(self, samples: Pcm) -> None:
        """Queue samples after those waiting."""
        if samples.size == 0:
            return
        self._chunks.append(samples)
        self.size += samples.size
        excess = self.size - self.capacity
        while excess > 0:
            first = self._chunks[0]
            if first.size <= excess:
                self._chunks.popleft()
                cut = first.size
            else:
                self._chunks[0] = first[excess:]
                cut = excess
            excess -= cut
            self.size -= cut
            self.dropped += cut

    def pop(self, count: int, *, partial: bool = False) -> Pcm | None:
        """The next `count` samples; None when fewer wait, unless `partial`, when what waits is padded with silence."""
        if self.size == 0 or (self.size < count and not partial):
            return None
        out = np.zeros(count, dtype=np.int16)
        filled = 0
        while filled < count and self._chunks:
            first = self._chunks[0]
            take = min(count - filled, first.size)
            out[filled:filled + take] = first[:take]
            if take == first.size:
                self._chunks.popleft()
            else:
                self._chunks[0] = first[take:]
            filled += take
        self.size -= filled
        return out


class _Endpoint(asyncio.DatagramProtocol):
    """The bot's UDP socket; datagrams go to whoever is set as `receiver`."""

    def __init__(self) -> None:
        self.receiver: BotParticipant | None = None

    def datagram_received(self, data: bytes, addr: tuple[Any, ...]) -> None:
        if self.receiver is not None:
            self.receiver.received(data, (str(addr[0]), int(addr[1])))

    def error_received(self, exc: Exception) -> None:
        logger.debug("bot socket error: %s", exc)


class BotParticipant:
    """A participant inside the server process: `send` audio into its conference, `async for` what it hears.

    Frames heard are int16 arrays of 20 ms at `rate` (the mix without the bot itself); iteration ends when the
    bot has left, by `leave()`, a kick or the server stopping. What it sends may be int16 or float (-1..1)
    samples of any length at `rate`.
    """

    def __init__(self, owner: Bots, *, call_id: str, conferencecall_id: str, conference_id: str, rate: int,
                 transport: asyncio.DatagramTransport, leg_address: Address) -> None:
        self.call_id = call_id
        self.conferencecall_id = conferencecall_id
        self.conference_id = conference_id
        self.rate = rate
        self.codec, self.payload_type = CODECS_BY_RATE[rate]
        self.hangup_by: str | None = None
        """Who ended the bot's participation ("remote": the bot itself, "local": the server), once it has."""
        self.end_reason: str | None = None
        self.heard_dropped = 0
        """Frames heard that were dropped because the consumer did not keep up."""
        self.decode_errors = 0
        self._owner = owner
        self._transport = transport
        self._leg_address = leg_address
        self._encoder: FrameEncoder = self.codec.new_encoder()
        self._decoder: FrameDecoder = self.codec.new_decoder()
        self._outgoing = PcmQueue(round(QUEUE_SECONDS * rate))
        self._heard: asyncio.Queue[Pcm | None] = asyncio.Queue(HEARD_FRAMES)
        self._sent = asyncio.Event()
        """Set whenever the pacer has taken a frame (or the bot ends): a waiting feeder may look again."""
        self._flush = False
        """Send a last partial frame padded with silence rather than keep it for more audio."""
        self._ssrc = secrets.randbits(32)
        self._sequence = secrets.randbits(16)
        self._timestamp = secrets.randbits(32)
        self._tasks: list[asyncio.Task[None]] = []

    def __repr__(self) -> str:
        return f"<BotParticipant call {self.call_id} in conference {self.conference_id} at {self.rate} Hz>"

    @property
    def ended(self) -> bool:
        """Whether the bot has left its conference."""
        return self.hangup_by is not None

    @property
    def outgoing_dropped(self) -> int:
        """Samples sent that were dropped because they came faster than real time."""
        return self._outgoing.dropped

    # -- the app's side ---------------------------------------------------------------------------

    async def send(self, frame: AudioFrame) -> None:
        """Queue audio to be heard in the conference (dropping the oldest beyond a second); ignored once left."""
        if not self.ended:
            self._outgoing.push(as_pcm16(frame))

    def __aiter__(self) -> AsyncIterator[Pcm]:
        return self._frames()

    async def _frames(self) -> AsyncIterator[Pcm]:
        while True:
            frame = await self._heard.get()
            if frame is None:
                self._heard.put_nowait(None)  # any other iteration ends too
                return
            yield frame

    async def leave(self, reason: str = "bot left") -> None:
        """Leave the conference (nothing happens if the bot has left already)."""
        self._owner.end(self, hangup_by="remote", reason=reason)

    async def play(self, audio: AsyncIterable[AudioFrame]) -> None:
        """Send all of `audio` at real-time pace (waiting for room in the queue rather than dropping) and return
        once it has gone out; an app that generates audio faster than real time is slowed down, not cut."""
        queue = self._outgoing
        async for frame in audio:
            samples = as_pcm16(frame)
            for start in range(0, samples.size, queue.capacity):
                piece = samples[start:start + queue.capacity]
                while not self.ended and queue.size + piece.size > queue.capacity:
                    await self._next_send()
                if self.ended:
                    return
                queue.push(piece)
        self._flush = True
        while not self.ended and queue.size > 0:
            await self._next_send()
        self._flush = False

    async def _next_send(self) -> None:
        self._sent.clear()
        await self._sent.wait()

    async def _play_then_leave(self, audio: AsyncIterable[AudioFrame]) -> None:
        reason = "bot left"
        try:
            await self.play(audio)
            await asyncio.sleep(TAIL_SECONDS)
        except Exception:
            logger.exception("call %s: the bot's audio source failed", self.call_id)
            reason = "bot audio failed"
        await self.leave(reason)

    # -- RTP --------------------------------------------------------------------------------------

    def start(self, audio: AsyncIterable[AudioFrame] | None) -> None:
        """Start sending (and playing `audio`, if given)."""
        self._tasks.append(asyncio.get_running_loop().create_task(self._pace(), name=f"bot-{self.call_id}-pace"))
        if audio is not None:
            self._tasks.append(asyncio.get_running_loop().create_task(self._play_then_leave(audio),
                                                                       name=f"bot-{self.call_id}-play"))
        for task in self._tasks:
            task.add_done_callback(self._task_done)

    def _task_done(self, task: asyncio.Task[None]) -> None:
        if not task.cancelled() and task.exception() is not None:
            logger.error("call %s: bot task %s failed", self.call_id, task.get_name(), exc_info=task.exception())

    async def _pace(self) -> None:
        """One packet every 20 ms on absolute deadlines: queued audio, else silence."""
        loop = asyncio.get_running_loop()
        frame = self.codec.frame_samples
        start = loop.time()
        index = 0
        marker = True
        while not self.ended:
            samples = self._outgoing.pop(frame, partial=self._flush)
            self._send(samples if samples is not None else np.zeros(frame, dtype=np.int16), index, marker)
            self._sent.set()
            marker = False
            index += 1
            delay = start + index * FRAME_SECONDS - loop.time()
            if delay < -MAX_LATE:
                missed = int(-delay // FRAME_SECONDS)
                logger.info("call %s: bot pacing %.0f ms late; skipping %d frames", self.call_id, -delay * 1000,
                            missed)
                index += missed
                delay += missed * FRAME_SECONDS
                marker = True
            if delay > 0:
                await asyncio.sleep(delay)

    def _send(self, samples: Pcm, index: int, marker: bool) -> None:
        payload = self._encoder.encode(samples)
        packet = RtpPacket(self.payload_type, self._sequence, self._timestamp + index * self.codec.frame_clock,
                           self._ssrc, payload, marker=marker)
        self._sequence = (self._sequence + 1) & 0xFFFF
        if not self._transport.is_closing():
            self._transport.sendto(packet.to_bytes(), self._leg_address)

    def received(self, data: bytes, source: Address) -> None:
        """A datagram on the bot's socket: audio from its leg is decoded and queued; anything else is ignored."""
        if source != self._leg_address or self.ended or is_rtcp(data):
            return
        try:
            header = read_header(data)
            if header.payload_type != self.payload_type:
                return
            pcm = self._decoder.decode(data[header.payload_start:header.payload_end])
        except (RtpParseError, ValueError, OpusError):
            self.decode_errors += 1
            return
        if self._heard.full():
            self._heard.get_nowait()
            self.heard_dropped += 1
        self._heard.put_nowait(pcm)

    def close(self, hangup_by: str, reason: str) -> None:
        """Stop sending and receiving and end the iteration (its leg is the owner's to close)."""
        self.hangup_by, self.end_reason = hangup_by, reason
        current = asyncio.current_task()
        for task in self._tasks:
            if task is not current:
                task.cancel()
        self._transport.close()
        self._sent.set()
        if self._heard.full():
            self._heard.get_nowait()
        self._heard.put_nowait(None)


class Bots:
    """The server's participants without SIP, and the side that ends their calls (see `call_router`)."""

    def __init__(self, service: ConferenceService, media: MediaEngine) -> None:
        self.service = service
        self.media = media
        self.host = LOOPBACK.get(media.host, media.host)
        self._bots: dict[str, BotParticipant] = {}

    @property
    def active(self) -> list[BotParticipant]:
        """Bots in a conference."""
        return list(self._bots.values())

    def owns(self, call_id: str) -> bool:
        """Whether a call is one of the bots'."""
        return call_id in self._bots

    async def add(self, conference_id: str, audio: AsyncIterable[AudioFrame] | None = None, *,
                  customer_id: str | None = None, rate: int = DEFAULT_RATE, name: str = "bot",
                  call_type: str = "bot") -> BotParticipant:
        """A bot joins a conference (of `customer_id`, when given); with `audio`, it plays that and then leaves.

        NotFound for an unknown conference, Conflict when it is not progressing, InvalidRequest for a rate
        other than 8000, 16000 or 48000, Unavailable when no port is free.
        """
        if rate not in CODECS_BY_RATE:
            raise InvalidRequest(f"rate must be one of {', '.join(map(str, RATES))}, not {rate!r}")
        conference = self.service.get_conference(customer_id, conference_id)
        loop = asyncio.get_running_loop()
        try:
            transport, endpoint = await loop.create_datagram_endpoint(_Endpoint, local_addr=(self.host, 0))
        except OSError as exc:
            raise Unavailable(f"no socket for a bot on {self.host}: {exc}") from exc
        try:
            bot = self._admit(conference, name, call_type, rate, transport)
        except BaseException:
            transport.close()
            raise
        endpoint.receiver = bot
        bot.start(audio)
        logger.info("conference %s: %s %r joining as call %s (%s, RTP port %d)", conference.id, call_type, name,
                    bot.call_id, bot.codec, bot._leg_address[1])
        return bot

    def _admit(self, conference: Conference, name: str, call_type: str, rate: int,
               transport: asyncio.DatagramTransport) -> BotParticipant:
        """Admit the bot's call (the service checks the conference again) and open its leg towards `transport`."""
        party = {"type": call_type, "target": name, "target_name": name, "name": "", "detail": ""}
        call, participant = self.service.admit_call(
            conference, source=party, call_type=call_type,
            destination={"type": "conference", "target": conference.id, "target_name": conference.name,
                         "name": "", "detail": ""})
        codec, payload_type = CODECS_BY_RATE[rate]
        own = transport.get_extra_info("sockname")
        params = StreamParams(codec, payload_type, remote=(self.host, int(own[1])), remote_reachable=True,
                              signalling_host=self.host, rtcp_mux=True)
        try:
            leg = self.media.open_leg(call.id, conference.id, params, on_event=self._leg_event)
        except (PortsExhausted, OSError) as exc:
            self.service.participant_left(participant.id, hangup_by="local", reason="no media port")
            raise Unavailable(f"no RTP port for a bot: {exc}") from exc
        bot = BotParticipant(self, call_id=call.id, conferencecall_id=participant.id, conference_id=conference.id,
                             rate=rate, transport=transport, leg_address=(self.host, leg.port))
        self._bots[call.id] = bot
        return bot

    def _leg_event(self, leg: MediaLeg, event: LegEvent) -> None:
        bot = self._bots.get(leg.leg_id)
        if bot is None:
            return
        try:
            if isinstance(event, AudioStarted):
                self.service.participant_media_started(bot.conferencecall_id)
            elif isinstance(event, TalkingChanged):
                self.service.talking_changed(bot.conferencecall_id, event.talking)
            elif isinstance(event, MediaTimeout):
                logger.info("call %s: no RTP from the bot for %.0f s; it leaves", bot.call_id, event.idle)
                self.end(bot, hangup_by="local", reason="timeout")
        except ConfbridgeError:
            logger.exception("call %s: handling %s failed", bot.call_id, type(event).__name__)

    def end(self, bot: BotParticipant, *, hangup_by: str, reason: str, defer: bool = False) -> None:
        """Take a bot out of its conference: its leg closes, its participant leaves (on the next loop turn with
        `defer`, as when the service itself asked, mid-change), its iteration ends."""
        if self._bots.pop(bot.call_id, None) is None:
            return
        figures = self.media.close_leg(bot.call_id)
        bot.close(hangup_by, reason)
        logger.info("conference %s: bot call %s ended (%s by %s)", bot.conference_id, bot.call_id, reason, hangup_by)

        def left() -> None:
            try:
                self.service.participant_left(bot.conferencecall_id, hangup_by=hangup_by, reason=reason,
                                              media=figures)
            except ConfbridgeError:
                logger.exception("call %s: could not mark its participant left", bot.call_id)

        if defer:
            asyncio.get_running_loop().call_soon(left)
        else:
            left()

    def close(self, reason: str) -> None:
        """Every bot leaves (the server is stopping)."""
        for bot in self.active:
            self.end(bot, hangup_by="local", reason=reason)

    # -- ending calls ------------------------------------------------------------------------------

    def hang_up(self, call_id: str, reason: str) -> bool:
        """Remove a bot (kicked, or its conference ended); False when the call is not a live bot's."""
        bot = self._bots.get(call_id)
        if bot is None:
            return False
        self.end(bot, hangup_by="local", reason=reason, defer=True)
        return True

    def cancel(self, call_id: str) -> bool:
        """Bots never ring."""
        return False
