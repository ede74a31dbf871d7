"""WebhookDispatcher against a local aiohttp receiver: signatures, body, retries with back-off, refusals, per-customer
order and isolation, a non-blocking `deliver` and a bounded queue."""

from __future__ import annotations

import asyncio
import hashlib
import hmac
import itertools
import json
import logging
import socket
import time
from collections.abc import Callable, Coroutine
from dataclasses import dataclass, field
from typing import Any

import pytest
from aiohttp import web

from confbridge.events import Event
from confbridge.webhooks import WebhookDispatcher, WebhookTarget, sign

CUSTOMER_A = "0b6c1a2e-1111-4c8e-9d6a-5f0d4c3b2a10"
CUSTOMER_B = "7e2f9c4d-2222-4b1a-8e3f-6a5b4c3d2e1f"
STRANGER = "c3d4e5f6-3333-4a7b-9c8d-0e1f2a3b4c5d"
SECRET_A = "secret-of-a"
SECRET_B = "secret-of-b"
BACKOFF = 0.05


@dataclass
class Received:
    """One request the receiver got."""

    path: str
    headers: dict[str, str]
    body: bytes
    at: float


@dataclass
class Receiver:
    """A local HTTP server that records every request and answers each path with scripted statuses.

    `script[path]` is consumed one status per request (200 once it is empty); a path in `hang` never answers
    until `release` is set.
    """

    script: dict[str, list[int]] = field(default_factory=dict)
    hang: set[str] = field(default_factory=set)
    delays: dict[str, Callable[[int], float]] = field(default_factory=dict)
    received: list[Received] = field(default_factory=list)
    release: asyncio.Event = field(default_factory=asyncio.Event)
    port: int = 0
    _runner: web.AppRunner | None = None

    async def _handle(self, request: web.Request) -> web.Response:
        body = await request.read()
        path = request.path
        index = sum(1 for r in self.received if r.path == path)
        self.received.append(Received(path, dict(request.headers), body, time.monotonic()))
        if path in self.hang:
            await self.release.wait()
        delay = self.delays.get(path)
        if delay is not None:
            await asyncio.sleep(delay(index))
        statuses = self.script.get(path)
        return web.Response(status=statuses.pop(0) if statuses else 200)

    async def __aenter__(self) -> Receiver:
        app = web.Application()
        app.router.add_post("/{name}", self._handle)
        self._runner = web.AppRunner(app, shutdown_timeout=0.5)
        await self._runner.setup()
        site = web.TCPSite(self._runner, "127.0.0.1", 0)
        await site.start()
        self.port = self._runner.addresses[0][1]
        return self

    async def __aexit__(self, *exc: object) -> None:
        self.release.set()
        if self._runner is not None:
            await self._runner.cleanup()

    def url(self, name: str) -> str:
        """The URL of one scripted endpoint."""
        return f"http://127.0.0.1:{self.port}/{name}"

    def at(self, name: str) -> list[Received]:
        """The requests that reached one endpoint, in arrival order."""
        return [r for r in self.received if r.path == f"/{name}"]


def event(customer_id: str, number: int = 0, event_type: str = "conference_updated") -> Event:
    """A conference event whose data carries a sequence number."""
    return Event(event_type, {"id": f"conf-{number}", "customer_id": customer_id, "number": number}, customer_id,
                 (f"customer_id:{customer_id}:conference:conf-{number}",))


def fast(targets: dict[str, WebhookTarget], *, queue_size: int = 10000, timeout: float = 2.0) -> WebhookDispatcher:
    """A dispatcher with a short back-off, so retries take a fraction of a second."""
    return WebhookDispatcher(targets, backoff=BACKOFF, timeout=timeout, queue_size=queue_size)


def hmac_hex(secret: str, body: bytes) -> str:
    """The signature computed independently of the module under test."""
    return hmac.new(secret.encode(), body, hashlib.sha256).hexdigest()


def run(scenario: Callable[[], Coroutine[Any, Any, None]]) -> None:
    """Run one async scenario on a fresh event loop."""
    asyncio.run(scenario())


async def until(condition: Callable[[], bool], timeout: float = 5.0) -> None:
    """Wait until `condition()` holds; fail after `timeout` seconds."""
    deadline = time.monotonic() + timeout
    while not condition():
        assert time.monotonic() < deadline, "timed out"
        await asyncio.sleep(0.01)


def closed_port() -> int:
    """A loopback TCP port nobody listens on (connections are refused)."""
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return int(probe.getsockname()[1])


def test_sign_is_hex_hmac_sha256_of_the_body() -> None:
    body = b'{"type":"x","data":{}}'
    assert sign("k", body) == "sha256=" + hmac_hex("k", body)
    assert sign("k", body) != sign("other", body)
    assert sign("k", body) != sign("k", body + b" ")


def test_post_is_signed_json_with_delivery_headers_and_ignores_other_customers() -> None:
    async def scenario() -> None:
        async with Receiver() as receiver:
            dispatcher = fast({CUSTOMER_A: WebhookTarget(receiver.url("a"), SECRET_A)})
            await dispatcher.start()
            dispatcher.deliver(event(STRANGER, 9))
            dispatcher.deliver(event(CUSTOMER_A, 1, "conference_created"))
            await dispatcher.close(drain_timeout=5)
        assert len(receiver.received) == 1
        request = receiver.received[0]
        assert request.path == "/a"
        signature = request.headers["X-Confbridge-Signature"]
        assert signature == "sha256=" + hmac_hex(SECRET_A, request.body)
        assert signature != "sha256=" + hmac_hex(SECRET_B, request.body)
        assert json.loads(request.body) == {"type": "conference_created",
                                            "data": {"id": "conf-1", "customer_id": CUSTOMER_A, "number": 1}}
        assert request.headers["Content-Type"] == "application/json"
        assert request.headers["X-Confbridge-Event"] == "conference_created"
        assert request.headers["X-Confbridge-Attempt"] == "1"
        assert request.headers["User-Agent"] == "confbridge"
        assert len(request.headers["X-Confbridge-Delivery"]) == 36
        assert (dispatcher.delivered, dispatcher.failed, dispatcher.attempts_made) == (1, 0, 1)

    run(scenario)


def test_5xx_is_retried_with_backoff_and_the_same_delivery_id() -> None:
    async def scenario() -> None:
        async with Receiver(script={"/a": [500, 503, 200]}) as receiver:
            dispatcher = fast({CUSTOMER_A: WebhookTarget(receiver.url("a"), SECRET_A)})
            await dispatcher.start()
            dispatcher.deliver(event(CUSTOMER_A))
            await dispatcher.close(drain_timeout=5)
        tries = receiver.at("a")
        assert [r.headers["X-Confbridge-Attempt"] for r in tries] == ["1", "2", "3"]
        assert len({r.headers["X-Confbridge-Delivery"] for r in tries}) == 1
        assert len({r.body for r in tries}) == 1
        gaps = [later.at - earlier.at for earlier, later in itertools.pairwise(tries)]
        assert gaps[0] >= BACKOFF * 0.9 and gaps[1] >= 2 * BACKOFF * 0.9, gaps
        assert (dispatcher.delivered, dispatcher.failed, dispatcher.attempts_made) == (1, 0, 3)

    run(scenario)


def test_always_5xx_fails_after_three_attempts_and_the_next_event_still_goes() -> None:
    async def scenario() -> None:
        async with Receiver(script={"/a": [500, 500, 500]}) as receiver:
            dispatcher = fast({CUSTOMER_A: WebhookTarget(receiver.url("a"), SECRET_A)})
            await dispatcher.start()
            dispatcher.deliver(event(CUSTOMER_A, 1))
            dispatcher.deliver(event(CUSTOMER_A, 2))
            await dispatcher.close(drain_timeout=5)
        numbers = [json.loads(r.body)["data"]["number"] for r in receiver.at("a")]
        assert numbers == [1, 1, 1, 2]
        assert (dispatcher.delivered, dispatcher.failed, dispatcher.attempts_made) == (1, 1, 4)

    run(scenario)


def test_refused_connection_is_retried_then_failed(caplog: pytest.LogCaptureFixture) -> None:
    async def scenario() -> None:
        url = f"http://127.0.0.1:{closed_port()}/hook"
        dispatcher = fast({CUSTOMER_A: WebhookTarget(url, SECRET_A)})
        await dispatcher.start()
        dispatcher.deliver(event(CUSTOMER_A, event_type="conference_deleted"))
        await dispatcher.close(drain_timeout=5)
        assert (dispatcher.delivered, dispatcher.failed, dispatcher.attempts_made) == (0, 1, 3)

    with caplog.at_level(logging.WARNING, logger="confbridge.webhooks"):
        run(scenario)
    failures = [r.getMessage() for r in caplog.records if "failed after 3 attempts" in r.getMessage()]
    assert len(failures) == 1
    assert CUSTOMER_A in failures[0] and "conference_deleted" in failures[0] and "delivery" in failures[0]


def test_4xx_is_a_refusal_and_not_retried() -> None:
    async def scenario() -> None:
        async with Receiver(script={"/a": [404, 404, 404]}) as receiver:
            dispatcher = fast({CUSTOMER_A: WebhookTarget(receiver.url("a"), SECRET_A)})
            await dispatcher.start()
            dispatcher.deliver(event(CUSTOMER_A))
            await dispatcher.close(drain_timeout=5)
        assert len(receiver.at("a")) == 1
        assert (dispatcher.delivered, dispatcher.failed, dispatcher.attempts_made) == (0, 1, 1)

    run(scenario)


def test_a_hanging_receiver_neither_blocks_deliver_nor_delays_another_customer() -> None:
    async def scenario() -> None:
        async with Receiver(hang={"/a"}) as receiver:
            dispatcher = fast({CUSTOMER_A: WebhookTarget(receiver.url("a"), SECRET_A),
                               CUSTOMER_B: WebhookTarget(receiver.url("b"), SECRET_B)},
                          timeout=30.0)
            await dispatcher.start()
            dispatcher.deliver(event(CUSTOMER_A, 0))
            await until(lambda: len(receiver.at("a")) == 1)
            started = time.perf_counter()
            for number in range(1, 1001):
                dispatcher.deliver(event(CUSTOMER_A, number))
            elapsed = time.perf_counter() - started
            assert elapsed / 1000 < 0.001, f"{elapsed * 1000:.1f} ms for 1000 events"
            assert dispatcher.pending == 1000
            sent = time.monotonic()
            dispatcher.deliver(event(CUSTOMER_B, 7))
            await until(lambda: len(receiver.at("b")) == 1, timeout=2)
            assert receiver.at("b")[0].at - sent < 1.0
            assert dispatcher.delivered == 1
            closing = time.monotonic()
            await dispatcher.close(drain_timeout=0.2)
            assert time.monotonic() - closing < 2.0
            assert dispatcher.dropped == 1000
        assert len(receiver.at("a")) == 1

    run(scenario)


def test_each_customer_gets_its_events_in_order_despite_retries_and_slow_answers() -> None:
    async def scenario() -> None:
        slow_first = {"/a": lambda index: 0.1 if index == 0 else 0.0, "/b": lambda index: 0.03 * (index % 3)}
        async with Receiver(script={"/a": [500], "/b": [200, 502]}, delays=slow_first) as receiver:
            dispatcher = fast({CUSTOMER_A: WebhookTarget(receiver.url("a"), SECRET_A),
                               CUSTOMER_B: WebhookTarget(receiver.url("b"), SECRET_B)})
            await dispatcher.start()
            for number in range(10):
                dispatcher.deliver(event(CUSTOMER_A, number))
                dispatcher.deliver(event(CUSTOMER_B, 100 + number))
            await dispatcher.close(drain_timeout=5)
        got_a = [json.loads(r.body)["data"]["number"] for r in receiver.at("a")]
        got_b = [json.loads(r.body)["data"]["number"] for r in receiver.at("b")]
        assert got_a == [0, *range(10)]
        assert got_b == [100, 101, *range(101, 110)]
        assert all(r.headers["X-Confbridge-Signature"] == "sha256=" + hmac_hex(SECRET_B, r.body)
                   for r in receiver.at("b"))
        assert dispatcher.delivered == 20

    run(scenario)


def test_a_full_queue_drops_and_counts_without_blocking(caplog: pytest.LogCaptureFixture) -> None:
    async def scenario() -> None:
        async with Receiver() as receiver:
            dispatcher = fast({CUSTOMER_A: WebhookTarget(receiver.url("a"), SECRET_A)}, queue_size=5)
            for number in range(8):
                dispatcher.deliver(event(CUSTOMER_A, number))
            assert dispatcher.dropped == 3
            await dispatcher.start()
            await dispatcher.close(drain_timeout=5)
        assert [json.loads(r.body)["data"]["number"] for r in receiver.at("a")] == [0, 1, 2, 3, 4]
        assert (dispatcher.delivered, dispatcher.dropped) == (5, 3)

    with caplog.at_level(logging.WARNING, logger="confbridge.webhooks"):
        run(scenario)
    drops = [r for r in caplog.records if "full" in r.getMessage()]
    assert drops and drops[0].levelno == logging.WARNING and CUSTOMER_A in drops[0].getMessage()


def test_events_after_close_are_ignored() -> None:
    async def scenario() -> None:
        async with Receiver() as receiver:
            dispatcher = fast({CUSTOMER_A: WebhookTarget(receiver.url("a"), SECRET_A)})
            await dispatcher.start()
            dispatcher.deliver(event(CUSTOMER_A, 1))
            await dispatcher.close(drain_timeout=5)
            dispatcher.deliver(event(CUSTOMER_A, 2))
            await asyncio.sleep(0.1)
        assert [json.loads(r.body)["data"]["number"] for r in receiver.received] == [1]
        assert (dispatcher.delivered, dispatcher.pending) == (1, 0)

    run(scenario)
