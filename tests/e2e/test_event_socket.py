"""The event WebSocket against the real server: nothing before a subscribe, topic-filtered events in the
`{"type", "data"}` shape, only the caller's own, errors that leave the socket usable, 401 without a valid token,
and a prompt close (1001) when the server shuts down.

Where a test shows that something does not arrive, it makes something that must arrive right after it and checks
that this comes first: the server sends a socket's events in the order they happen.
"""

from __future__ import annotations

import asyncio
import json
import time
from typing import Any

import aiohttp
import pytest

from tests.helpers.rest import ApiClient
from tests.helpers.server_process import LaunchServer, RunningServer

pytestmark = pytest.mark.e2e

CUSTOMER_B = "0b0b0b0b-0000-4000-8000-00000000000b"
TOKEN_B = "tok-b"
RECEIVE_TIMEOUT = 5.0
QUIET = 0.4
"""Seconds of silence taken to mean nothing was sent (only where no later event can show it)."""

Message = dict[str, Any]


@pytest.fixture
def server(launch_server: LaunchServer) -> RunningServer:
    """A server with a second customer, B, whose token is `tok-b`."""
    return launch_server("--token", f"{TOKEN_B}={CUSTOMER_B}")


def ws_url(server: RunningServer, token: str) -> str:
    return f"{server.http_url.replace('http://', 'ws://')}/ws?token={token}"


async def receive(ws: aiohttp.ClientWebSocketResponse) -> Message:
    """The next JSON text message (fails after RECEIVE_TIMEOUT)."""
    message = await ws.receive(RECEIVE_TIMEOUT)
    assert message.type == aiohttp.WSMsgType.TEXT, message
    parsed: Message = json.loads(message.data)
    return parsed


async def nothing_arrives(ws: aiohttp.ClientWebSocketResponse) -> None:
    with pytest.raises(TimeoutError):
        await ws.receive(QUIET)


async def request(ws: aiohttp.ClientWebSocketResponse, kind: str, *topics: Any) -> Message:
    """Send a subscribe/unsubscribe and return the answer (an ack or an error); no event may come first."""
    events, answer = await request_past_events(ws, kind, *topics)
    assert events == []
    return answer


async def request_past_events(ws: aiohttp.ClientWebSocketResponse, kind: str,
                              *topics: Any) -> tuple[list[Message], Message]:
    """Send a subscribe/unsubscribe: (the events sent before its answer, the answer)."""
    await ws.send_json({"type": kind, "topics": list(topics)})
    events = []
    while "data" in (answer := await receive(ws)):
        events.append(answer)
    return events, answer


async def create_conference(api: ApiClient, name: str) -> Message:
    conference: Message = await asyncio.to_thread(api.create_conference, name)
    return conference


def test_subscribed_conference_events_arrive_and_nothing_before(server: RunningServer) -> None:
    api = server.api

    async def scenario() -> None:
        async with aiohttp.ClientSession() as session, session.ws_connect(ws_url(server, server.token)) as ws:
            before = await create_conference(api, "before")
            customer = before["customer_id"]
            await nothing_arrives(ws)
            topic = f"customer_id:{customer}:conference"
            assert await request(ws, "subscribe", topic) == {"type": "subscribed", "topics": [topic]}
            conference = await create_conference(api, "after")
            created, updated = await receive(ws), await receive(ws)
            assert set(created) == {"type", "data"} and created["type"] == "conference_created"
            assert created["data"]["id"] == conference["id"] and created["data"]["name"] == "after"
            assert updated == {"type": "conference_updated", "data": conference}

    asyncio.run(scenario())


def test_one_conference_topic_and_unsubscribe(server: RunningServer) -> None:
    api = server.api

    async def scenario() -> None:
        async with aiohttp.ClientSession() as session, session.ws_connect(ws_url(server, server.token)) as ws:
            watched = await create_conference(api, "watched")
            customer = watched["customer_id"]
            everything = f"customer_id:{customer}:conference"
            one = f"{everything}:{watched['id']}"
            assert await request(ws, "subscribe", one) == {"type": "subscribed", "topics": [one]}
            other = await create_conference(api, "other")
            await asyncio.to_thread(api.delete, f"/conferences/{watched['id']}")
            first = await receive(ws)
            assert first["type"] == "conference_updated" and first["data"]["id"] == watched["id"]

            # The rest of the watched one's deletion may be sent before the answer.
            rest, answer = await request_past_events(ws, "subscribe", everything)
            assert answer == {"type": "subscribed", "topics": sorted([everything, one])}
            assert {event["data"]["id"] for event in rest} <= {watched["id"]}
            await asyncio.to_thread(api.delete, f"/conferences/{other['id']}")
            while (event := await receive(ws))["data"]["id"] != other["id"]:
                assert event["data"]["id"] == watched["id"]

            rest, answer = await request_past_events(ws, "unsubscribe", everything, one)
            assert answer == {"type": "unsubscribed", "topics": []}
            assert {event["data"]["id"] for event in rest} <= {other["id"]}
            await create_conference(api, "unwatched")
            await nothing_arrives(ws)

    asyncio.run(scenario())


def test_another_customers_events_never_arrive(server: RunningServer) -> None:
    api, api_b = server.api, ApiClient(server.http_url, TOKEN_B)

    async def scenario() -> None:
        async with aiohttp.ClientSession() as session, \
                session.ws_connect(ws_url(server, server.token)) as ws, \
                session.ws_connect(ws_url(server, TOKEN_B)) as ws_b:
            customer = (await create_conference(api, "probe"))["customer_id"]
            mine = f"customer_id:{customer}"
            assert await request(ws, "subscribe", mine) == {"type": "subscribed", "topics": [mine]}
            for theirs in (f"customer_id:{CUSTOMER_B}", f"customer_id:{CUSTOMER_B}:conference", "customer_id"):
                answer = await request(ws, "subscribe", theirs)
                assert answer["type"] == "error" and theirs in answer["message"], answer
            assert (await request(ws, "subscribe", mine, f"customer_id:{CUSTOMER_B}"))["type"] == "error"
            assert (await request(ws_b, "subscribe", mine))["type"] == "error"
            b_topic = f"customer_id:{CUSTOMER_B}:conference"
            assert await request(ws_b, "subscribe", b_topic) == {"type": "subscribed", "topics": [b_topic]}

            theirs_conference = await create_conference(api_b, "b's")
            assert theirs_conference["customer_id"] == CUSTOMER_B
            own = await create_conference(api, "a's")
            first = await receive(ws)
            assert first["type"] == "conference_created" and first["data"]["id"] == own["id"]
            first_b = await receive(ws_b)
            assert first_b["type"] == "conference_created" and first_b["data"]["id"] == theirs_conference["id"]
            assert (await receive(ws_b))["data"]["id"] == theirs_conference["id"]
            await nothing_arrives(ws_b)

    asyncio.run(scenario())


def test_bad_messages_get_an_error_and_the_socket_stays_usable(server: RunningServer) -> None:
    api = server.api

    async def scenario() -> None:
        async with aiohttp.ClientSession() as session, session.ws_connect(ws_url(server, server.token)) as ws:
            customer = (await create_conference(api, "probe"))["customer_id"]
            topic = f"customer_id:{customer}:conference"
            await ws.send_str("{not json")
            await ws.send_bytes(b'{"type": "subscribe"}')
            await ws.send_str('["subscribe"]')
            await ws.send_str(json.dumps({"type": "publish", "topics": [topic]}))
            await ws.send_str(json.dumps({"type": "subscribe", "topics": topic}))
            await ws.send_str(json.dumps({"type": "subscribe", "topics": [topic, 7]}))
            for _ in range(6):
                answer = await receive(ws)
                assert answer["type"] == "error" and set(answer) == {"type", "message"}, answer
            assert await request(ws, "subscribe", topic) == {"type": "subscribed", "topics": [topic]}
            conference = await create_conference(api, "after errors")
            assert (await receive(ws))["data"]["id"] == conference["id"]

    asyncio.run(scenario())


def test_a_missing_or_wrong_token_is_refused_with_401(server: RunningServer) -> None:
    status, body, _ = ApiClient(server.http_url, None).call("GET", "/ws")
    assert status == 401 and body["error"]["status"] == 401 and "token" in body["error"]["message"]
    status, body, _ = ApiClient(server.http_url, "wrong").call("GET", "/ws")
    assert status == 401 and body["error"]["message"] == "invalid token"
    status, body, _ = server.api.call("GET", "/ws")
    assert status == 400 and "WebSocket" in body["error"]["message"]

    async def handshakes() -> list[int]:
        statuses = []
        async with aiohttp.ClientSession() as session:
            for url in (ws_url(server, "").replace("?token=", ""), ws_url(server, "wrong")):
                with pytest.raises(aiohttp.WSServerHandshakeError) as refused:
                    await session.ws_connect(url)
                statuses.append(refused.value.status)
        return statuses

    assert asyncio.run(handshakes()) == [401, 401]


def test_shutdown_closes_open_sockets_with_going_away(server: RunningServer) -> None:
    async def scenario() -> tuple[aiohttp.WSMessage, int, float]:
        async with aiohttp.ClientSession() as session, session.ws_connect(ws_url(server, server.token)) as ws:
            customer = (await create_conference(server.api, "probe"))["customer_id"]
            assert (await request(ws, "subscribe", f"customer_id:{customer}"))["type"] == "subscribed"
            start = time.monotonic()
            stopping = asyncio.create_task(asyncio.to_thread(server.stop))
            message = await ws.receive(RECEIVE_TIMEOUT)
            code = await stopping
            return message, code, time.monotonic() - start

    message, code, seconds = asyncio.run(scenario())
    assert message.type == aiohttp.WSMsgType.CLOSE and message.data == aiohttp.WSCloseCode.GOING_AWAY
    assert code == 0 and seconds < 5
