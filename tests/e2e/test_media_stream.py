"""The media WebSocket against the real server: a client hears the conference as s16le frames and is heard in it.

A SIP caller streams 440 Hz into a conference; a WebSocket client joins it through
`GET /v1.0/conferences/{id}/media_stream`, sends 1000 Hz as binary frames paced in real time, and reads the
mix it hears; both are checked by FFT, and its participant's life (joined, leaved, kicked) over REST.
"""

from __future__ import annotations

import asyncio
import json
import time
import uuid
from collections.abc import Iterator
from typing import Any

import aiohttp
import numpy as np
import numpy.typing as npt
import pytest

from tests.helpers.audio import has_tone, tone, tone_level_db
from tests.helpers.participant import Participant
from tests.helpers.server_process import LaunchServer, RunningServer

pytestmark = pytest.mark.e2e

RATE = 16000
FRAME_BYTES = RATE // 50 * 2


def stream_url(server: RunningServer, conference_id: str, query: str = "rate=16000") -> str:
    return f"{server.http_url}/conferences/{conference_id}/media_stream?token={server.token}&{query}"


@pytest.fixture
def room(server: RunningServer) -> Iterator[tuple[str, Participant]]:
    """A conference with a SIP caller streaming 440 Hz in it: (conference id, the caller)."""
    conference = server.api.create_conference("media stream")
    caller = Participant(server.sip, server.direct_uri(conference["direct_hash"]), 440.0, seconds=30)
    try:
        server.api.wait_for(f"/conferences/{conference['id']}", lambda c: len(c["conferencecall_ids"]) == 1)
        yield conference["id"], caller
    finally:
        caller.close(hang_up=True)


async def talk_and_listen(ws: aiohttp.ClientWebSocketResponse, seconds: float
                          ) -> tuple[list[tuple[float, bytes]], list[dict[str, Any]]]:
    """Send 1000 Hz for `seconds` as 20 ms of audio per frame, cut at odd byte counts, paced on absolute deadlines;
    return the binary frames received (with arrival times) and the text messages."""
    audio = tone(1000.0, seconds, rate=RATE).astype("<i2").tobytes()
    received: list[tuple[float, bytes]] = []
    texts: list[dict[str, Any]] = []

    async def receive() -> None:
        async for message in ws:
            if message.type == aiohttp.WSMsgType.BINARY:
                received.append((time.monotonic(), message.data))
            elif message.type == aiohttp.WSMsgType.TEXT:
                texts.append(json.loads(message.data))

    receiver = asyncio.create_task(receive())
    loop = asyncio.get_running_loop()
    start = loop.time()
    offset = 0
    for index in range(len(audio) // FRAME_BYTES):
        end = (index + 1) * FRAME_BYTES + (1 if index % 2 == 0 else 0)  # odd cuts: a byte carries over
        await ws.send_bytes(audio[offset:end])
        offset = end
        if index == 10:
            await ws.send_str("hello?")
        await asyncio.sleep(max(0.0, start + (index + 1) * 0.02 - loop.time()))
    receiver.cancel()
    return received, texts


def pcm_between(frames: list[tuple[float, bytes]], start: float, end: float) -> npt.NDArray[np.int16]:
    return np.frombuffer(b"".join(data for at, data in frames if start <= at < end), dtype="<i2")


def test_a_websocket_client_hears_the_conference_and_is_heard(server: RunningServer,
                                                              room: tuple[str, Participant]) -> None:
    api = server.api
    conference_id, caller = room

    async def scenario() -> tuple[dict[str, Any], list[tuple[float, bytes]], list[dict[str, Any]], float]:
        async with aiohttp.ClientSession() as session, session.ws_connect(stream_url(server, conference_id)) as ws:
            header = await ws.receive_json(timeout=5)
            frames, texts = await talk_and_listen(ws, 3.0)
            ended = time.monotonic()
            participant = api.get(f"/conferencecalls/{header['conferencecall_id']}")
            assert participant["status"] == "joined"
            assert header["conferencecall_id"] in api.get(f"/conferences/{conference_id}")["conferencecall_ids"]
        return header, frames, texts, ended

    header, frames, texts, ended = asyncio.run(scenario())
    assert header == {"type": "media_stream_started", "conference_id": conference_id,
                      "conferencecall_id": header["conferencecall_id"], "call_id": header["call_id"],
                      "rate": RATE, "format": "s16le", "frame_ms": 20}
    assert {len(data) for _, data in frames} == {FRAME_BYTES}
    heard = pcm_between(frames, ended - 1.5, ended)
    assert heard.size >= RATE
    assert has_tone(heard, RATE, 440.0), tone_level_db(heard, RATE, 440.0)
    assert tone_level_db(heard, RATE, 1000.0) < -30, "the client never hears itself"
    heard_by_caller = caller.heard_between(ended - 1.5, ended)
    assert has_tone(heard_by_caller, 8000, 1000.0), tone_level_db(heard_by_caller, 8000, 1000.0)
    assert tone_level_db(heard_by_caller, 8000, 1000.0) > -3, "odd-length frames were joined up without damage"
    assert [text["type"] for text in texts] == ["error"]

    participant = api.wait_for(f"/conferencecalls/{header['conferencecall_id']}", lambda p: p["status"] == "leaved")
    assert participant["reference_id"] == header["call_id"]
    call = api.get(f"/calls/{header['call_id']}")
    assert (call["type"], call["status"], call["hangup_by"]) == ("websocket", "hangup", "remote")


def test_kicking_the_websocket_participant_closes_the_socket_with_4000(server: RunningServer) -> None:
    api = server.api
    conference_id = api.create_conference("kick")["id"]

    async def scenario() -> tuple[aiohttp.WSMessage, int | None, dict[str, Any]]:
        async with aiohttp.ClientSession() as session, \
                session.ws_connect(stream_url(server, conference_id, "rate=8000")) as ws:
            header = await ws.receive_json(timeout=5)
            assert header["rate"] == 8000
            await asyncio.to_thread(api.wait_for, f"/conferencecalls/{header['conferencecall_id']}",
                                    lambda p: p["status"] == "joined")
            await asyncio.to_thread(api.delete, f"/conferencecalls/{header['conferencecall_id']}")
            while (message := await ws.receive(timeout=5)).type == aiohttp.WSMsgType.BINARY:
                pass
            return message, ws.close_code, header

    message, close_code, header = asyncio.run(scenario())
    assert (message.type, message.data, message.extra) == (aiohttp.WSMsgType.CLOSE, 4000, "kicked")
    assert close_code == 4000
    api.wait_for(f"/conferencecalls/{header['conferencecall_id']}", lambda p: p["status"] == "leaved")
    assert api.get(f"/calls/{header['call_id']}")["hangup_reason"] == "kicked"


def test_media_stream_refusals_use_the_error_envelope(launch_server: LaunchServer) -> None:
    server = launch_server("--token", f"other-token={uuid.uuid4()}")
    api = server.api
    conference_id = api.create_conference("refusals")["id"]
    path = f"/conferences/{conference_id}/media_stream"

    status, body, _ = api.call("GET", f"{path}?rate=44100")
    assert status == 400 and "rate" in body["error"]["message"], body
    status, body, _ = api.call("GET", path)
    assert status == 400 and "WebSocket" in body["error"]["message"], body

    async def handshake(conference: str, query: str = "rate=16000", token: str = server.token) -> int:
        url = stream_url(server, conference, query).replace(f"token={server.token}", f"token={token}")
        async with aiohttp.ClientSession() as session:
            try:
                async with session.ws_connect(url):
                    return 101
            except aiohttp.WSServerHandshakeError as error:
                return error.status

    assert asyncio.run(handshake(conference_id, "rate=12345")) == 400
    assert asyncio.run(handshake(str(uuid.uuid4()))) == 404
    assert asyncio.run(handshake(conference_id, token="other-token")) == 404, "another customer's conference"
    assert asyncio.run(handshake(conference_id, token="nobody")) == 401
    api.delete(f"/conferences/{conference_id}")
    api.wait_for(f"/conferences/{conference_id}", lambda c: c["status"] == "terminated")
    assert asyncio.run(handshake(conference_id)) == 409
    assert api.call("GET", f"{path}?rate=16000")[0] == 400, "not a WebSocket request"


def test_stopping_the_server_closes_open_media_sockets(server: RunningServer) -> None:
    conference_id = server.api.create_conference("shutdown")["id"]

    async def scenario() -> tuple[aiohttp.WSMessage, int]:
        async with aiohttp.ClientSession() as session, session.ws_connect(stream_url(server, conference_id)) as ws:
            await ws.receive_json(timeout=5)
            stopping = asyncio.create_task(asyncio.to_thread(server.stop))
            while (message := await ws.receive(timeout=10)).type == aiohttp.WSMsgType.BINARY:
                pass
            return message, await stopping

    started = time.monotonic()
    message, exit_code = asyncio.run(scenario())
    assert (message.type, message.data, message.extra) == (aiohttp.WSMsgType.CLOSE, 4000, "server shutdown")
    assert exit_code == 0 and time.monotonic() - started < 10, server.log()[-3000:]
