"""Webhooks end to end: the real server POSTs a customer's conference events, HMAC-signed, to the URL given with
`--webhook`, retries a receiver that answers 500, and never sends another customer's events there."""

from __future__ import annotations

import hashlib
import hmac
import json
import threading
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any

import pytest

from tests.helpers.rest import ApiClient
from tests.helpers.server_process import LaunchServer, RunningServer

pytestmark = pytest.mark.e2e

CUSTOMER_B = "5d3c2b1a-9e8f-4a7b-8c6d-1e2f3a4b5c6d"
SECRET = "s3cret"


@dataclass(frozen=True)
class Hit:
    """One request the receiver got (header names lower-cased)."""

    method: str
    path: str
    headers: dict[str, str]
    body: bytes

    @property
    def event(self) -> dict[str, Any]:
        """The parsed JSON body."""
        parsed: dict[str, Any] = json.loads(self.body)
        return parsed


class Receiver:
    """A threaded HTTP server on loopback that records every request and answers 500 to the first `fail_first`."""

    def __init__(self, fail_first: int = 0) -> None:
        self.hits: list[Hit] = []
        self.fail_first = fail_first
        self._lock = threading.Lock()
        receiver = self

        class Handler(BaseHTTPRequestHandler):
            def do_POST(self) -> None:
                body = self.rfile.read(int(self.headers.get("Content-Length", "0")))
                with receiver._lock:
                    receiver.hits.append(Hit(self.command, self.path,
                                             {k.lower(): v for k, v in self.headers.items()}, body))
                    status = 500 if len(receiver.hits) <= receiver.fail_first else 200
                self.send_response(status)
                self.send_header("Content-Length", "0")
                self.end_headers()

            def log_message(self, format: str, *args: Any) -> None:
                pass

        self._server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.port = self._server.server_address[1]
        self._thread = threading.Thread(target=self._server.serve_forever, name="webhook-receiver", daemon=True)
        self._thread.start()

    def close(self) -> None:
        """Stop serving."""
        self._server.shutdown()
        self._server.server_close()
        self._thread.join(5)

    def snapshot(self) -> list[Hit]:
        """The requests so far."""
        with self._lock:
            return list(self.hits)

    def wait_for(self, predicate: Callable[[list[Hit]], bool], timeout: float = 8.0) -> list[Hit]:
        """Poll until `predicate(hits)` holds; fail with what arrived after `timeout` seconds."""
        deadline = time.monotonic() + timeout
        while True:
            hits = self.snapshot()
            if predicate(hits):
                return hits
            if time.monotonic() > deadline:
                raise AssertionError(f"timed out; received {[(h.event['type'], h.headers) for h in hits]}")
            time.sleep(0.05)


@pytest.fixture
def receiver() -> Iterator[Receiver]:
    running = Receiver()
    yield running
    running.close()


def launch_with_webhook(launch_server: LaunchServer, port: int) -> RunningServer:
    return launch_server("--token", f"tok-b={CUSTOMER_B}", "--webhook", f"{CUSTOMER_B}=http://127.0.0.1:{port}/hook",
                         "--webhook-secret", f"{CUSTOMER_B}={SECRET}")


def types_of(hits: list[Hit], conference_id: str) -> list[str]:
    """The event types received about one conference, in arrival order (retries included)."""
    return [hit.event["type"] for hit in hits if hit.event["data"].get("id") == conference_id]


def test_conference_events_reach_the_customers_webhook_signed(launch_server: LaunchServer,
                                                              receiver: Receiver) -> None:
    server = launch_with_webhook(launch_server, receiver.port)
    others = server.api.create_conference("default customer's")
    api_b = ApiClient(server.http_url, "tok-b")
    conference = api_b.create_conference("customer b's")
    assert conference["customer_id"] == CUSTOMER_B
    hits = receiver.wait_for(lambda hits: len(types_of(hits, conference["id"])) >= 2)
    assert types_of(hits, conference["id"])[:2] == ["conference_created", "conference_updated"]
    updated = next(hit for hit in hits if hit.event["type"] == "conference_updated")
    assert updated.event["data"]["status"] == "progressing"
    for hit in hits:
        assert (hit.method, hit.path) == ("POST", "/hook")
        assert hit.headers["content-type"] == "application/json"
        assert set(hit.event) == {"type", "data"}
        assert hit.headers["x-confbridge-event"] == hit.event["type"]
        expected = "sha256=" + hmac.new(SECRET.encode(), hit.body, hashlib.sha256).hexdigest()
        assert hit.headers["x-confbridge-signature"] == expected
        forged = "sha256=" + hmac.new(b"not the secret", hit.body, hashlib.sha256).hexdigest()
        assert hit.headers["x-confbridge-signature"] != forged

    api_b.delete(f"/conferences/{conference['id']}")
    hits = receiver.wait_for(lambda hits: "conference_deleted" in types_of(hits, conference["id"]))
    assert types_of(hits, conference["id"])[-1] == "conference_deleted"
    assert all(hit.event["data"]["customer_id"] == CUSTOMER_B for hit in hits)
    assert not types_of(hits, others["id"])
    assert len({hit.headers["x-confbridge-delivery"] for hit in hits}) == len(hits), "one delivery id per event"


def test_a_failing_receiver_gets_the_event_on_the_third_attempt(launch_server: LaunchServer,
                                                                receiver: Receiver) -> None:
    receiver.fail_first = 2
    server = launch_with_webhook(launch_server, receiver.port)
    conference = ApiClient(server.http_url, "tok-b").create_conference("retried")
    hits = receiver.wait_for(lambda hits: types_of(hits, conference["id"]).count("conference_created") >= 3)
    created = [hit for hit in hits if hit.event["type"] == "conference_created"][:3]
    assert [hit.headers["x-confbridge-attempt"] for hit in created] == ["1", "2", "3"]
    assert len({hit.headers["x-confbridge-delivery"] for hit in created}) == 1
    assert len({hit.body for hit in created}) == 1
    hits = receiver.wait_for(lambda hits: "conference_updated" in types_of(hits, conference["id"]))
    assert types_of(hits, conference["id"]) == ["conference_created"] * 3 + ["conference_updated"]
