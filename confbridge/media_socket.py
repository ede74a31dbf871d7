"""The media WebSocket, `GET /v1.0/conferences/{id}/media_stream?token=...&rate=16000`: a participant without SIP.

On connect the socket becomes a participant of the conference (a bot whose call type is "websocket"). The
server first sends one text frame, `{"type": "media_stream_started", "conference_id", "conferencecall_id",
"call_id", "rate", "format": "s16le", "frame_ms": 20}`, then binary frames, each 20 ms of 16-bit little-endian
mono PCM at `rate` of what the participant hears (the mix without itself). Binary frames from the client, of any
length, s16le at the same rate, are its voice (an odd byte waits for the next frame); text frames are answered
with `{"type": "error", "message": ...}`. The client closing the socket makes the participant leave; when the
server ends the participation (a kick, the conference ending, shutdown) it closes the socket with code 4000
and the reason. `rate` is 8000, 16000 (the default) or 48000.
"""

from __future__ import annotations

import asyncio
import logging

import numpy as np
from aiohttp import WSMsgType, web

from .bots import DEFAULT_RATE, RATES, BotParticipant, Bots
from .errors import InvalidRequest
from .socket_sender import SocketSender

logger = logging.getLogger(__name__)

BOTS = web.AppKey("bots", Bots)
HEARTBEAT_SECONDS = 30.0
MAX_MESSAGE_BYTES = 1024 * 1024
CLOSE_REMOVED = 4000
"""Close code when the server ended the participation (the close reason says why)."""
MAX_CLOSE_REASON = 123
"""Bytes of reason a close frame can carry (125 of payload less the 2 of the code)."""
MAX_NAME = 100


def stream_rate(text: str) -> int:
    """The `rate` query parameter; InvalidRequest unless it is one of the bots' rates."""
    if not text.isdigit() or int(text) not in RATES:
        raise InvalidRequest(f"rate must be one of {', '.join(map(str, RATES))}, not {text!r}")
    return int(text)


class MediaSocket:
    """One connected client: the heard mix goes out as binary frames, its binary frames go to its bot."""

    def __init__(self, ws: web.WebSocketResponse, bot: BotParticipant) -> None:
        self.ws = ws
        self.bot = bot
        self.sender = SocketSender(ws, f"media socket of call {bot.call_id}")
        self.send_json = self.sender.send_json
        self._odd_byte = b""

    async def forward_heard(self) -> None:
        """Send what the participant hears until it leaves (or the connection goes)."""
        async for frame in self.bot:
            if not await self.sender.send_bytes(frame.astype("<i2", copy=False).tobytes()):
                return

    async def exchange(self) -> None:
        """Audio both ways until either side ends. When the server removed the participant, the socket is closed
        with `CLOSE_REMOVED` and the reason, by this task once nothing else reads the socket: a close from another
        task while a read is pending drops the connection without waiting for the client's close frame."""
        sender = asyncio.create_task(self.forward_heard(), name=f"media-socket-{self.bot.call_id}-send")
        receiver = asyncio.create_task(self.receive_voice(), name=f"media-socket-{self.bot.call_id}-receive")
        try:
            await asyncio.wait([sender, receiver], return_when=asyncio.FIRST_COMPLETED)
        finally:
            for task in (sender, receiver):
                task.cancel()
            await asyncio.wait([sender, receiver])
        for task in (sender, receiver):
            if not task.cancelled() and (error := task.exception()) is not None:
                raise error
        if self.bot.hangup_by == "local" and not self.ws.closed:
            reason = (self.bot.end_reason or "removed").encode()[:MAX_CLOSE_REASON]
            await self.ws.close(code=CLOSE_REMOVED, message=reason)

    async def receive_voice(self) -> None:
        """Read the client's frames until the connection closes: binary is voice, text gets an error."""
        async for message in self.ws:
            if message.type == WSMsgType.BINARY:
                await self.voice(message.data)
            elif message.type == WSMsgType.TEXT:
                await self.send_json({"type": "error", "message": "send audio as binary frames of s16le PCM at "
                                      f"{self.bot.rate} Hz; text frames are not understood"})
            elif message.type == WSMsgType.ERROR:
                logger.info("media socket of call %s: connection error: %s", self.bot.call_id, self.ws.exception())
                return

    async def voice(self, data: bytes) -> None:
        """Some of the client's voice; a trailing odd byte is kept for the next frame."""
        data = self._odd_byte + data
        cut = len(data) - len(data) % 2
        self._odd_byte = data[cut:]
        if cut:
            await self.bot.send(np.frombuffer(data[:cut], dtype="<i2"))


async def media_stream(request: web.Request) -> web.WebSocketResponse:
    """`GET /v1.0/conferences/{id}/media_stream`: upgrade, join the conference, exchange audio until either ends."""
    from .rest import CUSTOMER, REQUEST_ID, resource_id  # here, not at the top: rest imports this module

    conference_id = resource_id(request)
    rate = stream_rate(request.query.get("rate", str(DEFAULT_RATE)))
    name = request.query.get("name", "websocket")[:MAX_NAME]
    ws = web.WebSocketResponse(heartbeat=HEARTBEAT_SECONDS, max_msg_size=MAX_MESSAGE_BYTES)
    if not ws.can_prepare(request).ok:
        raise InvalidRequest("this endpoint is a WebSocket: connect with an Upgrade: websocket request")
    bot = await request.app[BOTS].add(conference_id, customer_id=request[CUSTOMER], rate=rate, name=name,
                                      call_type="websocket")
    ws.headers["X-Request-Id"] = request[REQUEST_ID]
    try:
        await ws.prepare(request)
    except BaseException:
        await bot.leave("websocket failed")
        raise
    client = MediaSocket(ws, bot)
    logger.info("conference %s: media socket of call %s connected from %s at %d Hz", conference_id, bot.call_id,
                request.remote, rate)
    try:
        if await client.send_json({"type": "media_stream_started", "conference_id": bot.conference_id,
                                   "conferencecall_id": bot.conferencecall_id, "call_id": bot.call_id,
                                   "rate": rate, "format": "s16le", "frame_ms": 20}):
            await client.exchange()
    except Exception:
        # Nothing may escape after the upgrade: the error middleware can no longer answer with a response.
        logger.exception("media socket of call %s failed", bot.call_id)
    finally:
        await bot.leave("websocket closed")
        if not ws.closed:
            await ws.close()
        logger.info("conference %s: media socket of call %s disconnected (code %s: %s by %s)", conference_id,
                    bot.call_id, ws.close_code, bot.end_reason, bot.hangup_by)
    return ws
