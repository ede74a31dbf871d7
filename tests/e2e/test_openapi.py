"""The OpenAPI document against the real server.

`GET /openapi.json` is served without a token, is a valid OpenAPI document and documents exactly the routes the app
serves under /v1.0. Then schemathesis runs its coverage, fuzzing and stateful phases against a server seeded with
real resources (conferences, two SIP callers, a recording with tracks, a transcribe): no request may get a 5xx, and
every response must conform to the document (status code, content type, headers, body schema).
"""

from __future__ import annotations

import collections
import json
import time
import urllib.request
from collections.abc import Iterator
from dataclasses import dataclass, field
from types import SimpleNamespace
from typing import Any, cast

import pytest
import schemathesis
from hypothesis import strategies as st
from hypothesis.strategies import SearchStrategy
from schemathesis import engine
from schemathesis.config import SchemathesisConfig
from schemathesis.core.result import Err
from schemathesis.engine import events
from schemathesis.hooks import HookContext

from confbridge.openapi import document
from confbridge.rest import API_PREFIX, build_app
from tests.helpers.participant import Participant
from tests.helpers.rest import ApiClient
from tests.helpers.server_process import RunningServer

pytestmark = pytest.mark.e2e

METHODS = ("get", "put", "post", "delete", "patch", "head", "options", "trace")
NOT_FUZZED = {
    "calls_create": "POST /v1.0/calls dials the SIP targets it is given: fuzzing it would send INVITEs to arbitrary "
                    "hosts (and leave outgoing calls ringing for the rest of the run)",
}
"""Operations the schemathesis run leaves out besides the WebSocket upgrades (plain HTTP cannot test those), and why."""
CHECKS = ("not_a_server_error", "status_code_conformance", "content_type_conformance",
          "response_headers_conformance", "response_schema_conformance")
MAX_EXAMPLES = 25
"""Test cases per operation and phase: enough to reach every documented status, bounded for CI (the run takes
about 20 s)."""
SEED = 1
REAL_IDS_USED = ("GET /v1.0/conferences/{id}", "PUT /v1.0/conferences/{id}", "GET /v1.0/conferencecalls/{id}",
                 "GET /v1.0/calls/{id}", "POST /v1.0/calls/{id}/mute", "POST /v1.0/calls/{id}/gain",
                 "POST /v1.0/calls/{id}/hold", "GET /v1.0/recordings/{id}", "GET /v1.0/recordingfiles/{id}",
                 "GET /v1.0/recordingfiles/{id}/tracks/{conferencecall_id}", "GET /v1.0/transcribes/{id}")
"""Operations that must have been answered 200 at least once, so that the checks covered real resources and not
only 404s."""


def fetch_document(server: RunningServer) -> tuple[int, str, dict[str, Any]]:
    """(status, content type, parsed body) of `GET /openapi.json`, without a token."""
    url = server.http_url.removesuffix(API_PREFIX) + "/openapi.json"
    with urllib.request.urlopen(url, timeout=10) as response:
        return response.status, response.headers.get("Content-Type", ""), json.loads(response.read())


def served_routes() -> set[tuple[str, str]]:
    """(METHOD, path) of every route the app serves under /v1.0 (the HEAD aiohttp adds to every GET aside)."""
    app = build_app(cast(Any, None), cast(Any, None), cast(Any, SimpleNamespace(media=None)))
    return {(route.method, route.resource.canonical) for route in app.router.routes()
            if route.resource is not None and route.resource.canonical.startswith(API_PREFIX + "/")
            and route.method != "HEAD"}


def documented_routes(doc: dict[str, Any]) -> set[tuple[str, str]]:
    """(METHOD, path) of every operation of the document."""
    return {(method.upper(), path) for path, item in doc["paths"].items() for method in item if method in METHODS}


def websocket_operations(doc: dict[str, Any]) -> set[str]:
    """The operation ids of the WebSocket upgrades (the operations answering 101)."""
    return {op["operationId"] for item in doc["paths"].values() for method, op in item.items()
            if method in METHODS and "101" in op["responses"]}


def test_document_is_served_valid_and_complete(server: RunningServer) -> None:
    """Without a token; valid OpenAPI; every /v1.0 route documented (and nothing else), each with 401."""
    status, content_type, doc = fetch_document(server)
    assert status == 200 and content_type.startswith("application/json")
    assert doc == json.loads(json.dumps(document()))
    schema = schemathesis.openapi.from_dict(doc, config=SchemathesisConfig())
    schema.validate()
    invalid = [str(result.err()) for result in schema.get_all_operations() if isinstance(result, Err)]
    assert invalid == []

    served, documented = served_routes(), documented_routes(doc)
    assert served - documented == set(), "routes served but not documented"
    assert documented - served == set(), "routes documented but not served"
    assert websocket_operations(doc) == {"events_websocket", "conferences_media_stream"}
    for path, item in doc["paths"].items():
        for method, op in item.items():
            assert "401" in op["responses"], f"{method} {path} does not document 401"
            assert "security" not in op, f"{method} {path} overrides the token requirement"
            if "{id}" in path:
                assert {"400", "404"} <= set(op["responses"]), f"{method} {path}: a bad or unknown id"
    assert {"token", "bearer"} == set(doc["components"]["securitySchemes"])


@dataclass
class Seeded:
    """What the server holds before the run: path parameters naming real resources, by the path they fit."""

    path_parameters: dict[str, list[dict[str, str]]] = field(default_factory=dict)
    callers: list[Participant] = field(default_factory=list)

    def learn(self, api: ApiClient, doc: dict[str, Any]) -> None:
        """Collect the ids of what the server holds now, for every path of `doc` that takes ids."""
        found = {collection: [{"id": item["id"]} for item in api.get(f"/{collection}")["result"]]
                 for collection in ("conferences", "conferencecalls", "calls", "recordings", "transcribes")}
        found["recordingfiles"] = found["recordings"]
        tracks = [{"id": recording["id"], "conferencecall_id": track["conferencecall_id"]}
                  for recording in api.get("/recordings")["result"] for track in recording["tracks"]]
        for path in doc["paths"]:
            if path.endswith("{conferencecall_id}"):
                self.path_parameters[path] = tracks
            elif "{id}" in path:
                self.path_parameters[path] = found[path.removeprefix(API_PREFIX + "/").split("/")[0]]


@pytest.fixture
def seeded(server: RunningServer) -> Iterator[Seeded]:
    """Real resources for schemathesis to find: a room with two SIP callers in it, a recording of it with a track per
    caller (and so files to download), a finished transcribe and an active one, a `connect` conference and a
    terminated one. The callers stay on the line during the run (unless the run kicks them)."""
    api = server.api
    room = api.create_conference("openapi room")
    connect = api.post("/conferences", {"type": "connect", "name": "openapi connect"})
    ended = api.create_conference("openapi ended")
    api.delete(f"/conferences/{ended['id']}")
    seed = Seeded()
    try:
        for frequency in (440.0, 880.0):
            seed.callers.append(Participant(server.sip, server.direct_uri(room["direct_hash"]), frequency,
                                            seconds=120))
        api.wait_for(f"/conferences/{room['id']}", lambda c: len(c["conferencecall_ids"]) == 2)
        api.post(f"/conferences/{room['id']}/recording_start", {"tracks": True})
        time.sleep(0.5)
        api.post(f"/conferences/{room['id']}/recording_stop")
        api.post(f"/conferences/{room['id']}/transcribe_start", {"language": "en-US"})
        api.post(f"/conferences/{room['id']}/transcribe_stop")
        api.post(f"/conferences/{connect['id']}/transcribe_start", {"language": "de"})
        seed.learn(api, document())
        assert all(seed.path_parameters.values()), seed.path_parameters
        yield seed
    finally:
        for caller in seed.callers:
            caller.close(hang_up=True)


@dataclass
class RunResult:
    """What a schemathesis run found: responses per operation and status, failures, errors."""

    statuses: dict[str, collections.Counter[int]] = field(
        default_factory=lambda: collections.defaultdict(collections.Counter))
    failures: dict[tuple[str, str, str], str] = field(default_factory=dict)
    """(operation, check, title) -> the first failing request, as curl, and what was wrong."""
    errors: list[str] = field(default_factory=list)
    tested: set[str] = field(default_factory=set)
    checks: set[str] = field(default_factory=set)
    """The names of the checks that ran."""

    def record(self, event: events.ScenarioFinished) -> None:
        """Take in one finished scenario."""
        recorder = event.recorder
        if event.status is not engine.Status.SKIP:
            self.tested.add(recorder.label)
        for case_id, interaction in recorder.interactions.items():
            node = recorder.cases.get(case_id)
            if interaction.response is not None and node is not None:
                self.statuses[node.value.operation.label][interaction.response.status_code] += 1
        for checks in recorder.checks.values():
            for check in checks:
                self.checks.add(check.name)
                info = check.failure_info
                if info is not None:
                    key = (info.failure.operation or recorder.label, check.name, info.failure.title)
                    self.failures.setdefault(key, f"{info.failure.message}\n{info.code_sample[:2000]}")

    def report(self) -> str:
        """Every failure, one block each, then the status counts per operation."""
        lines = [f"{operation}: {check}: {title}\n{detail}\n" for (operation, check, title), detail
                 in sorted(self.failures.items())]
        lines += [f"{label}: {dict(sorted(counts.items()))}" for label, counts in sorted(self.statuses.items())]
        return "\n".join(lines + self.errors)


def run_schemathesis(server: RunningServer, seeded: Seeded) -> RunResult:
    """Every phase of schemathesis against the server, token in the query, deterministic and bounded; path ids are
    random or, as often, those of the seeded resources."""
    config = SchemathesisConfig.from_dict({
        "seed": SEED,
        "workers": 1,
        "continue-on-failure": True,
        "auth": {"openapi": {"token": {"api_key": server.token}}},
        "generation": {"max-examples": MAX_EXAMPLES, "deterministic": True, "database": "none"},
        "checks": {"enabled": False, **{name: {"enabled": True} for name in CHECKS}},
    })
    base = server.http_url.removesuffix(API_PREFIX)
    loaded = schemathesis.openapi.from_url(f"{base}/openapi.json", config=config)
    schema = loaded.exclude(operation_id=[*NOT_FUZZED, *websocket_operations(loaded.raw_schema)])

    @schema.hook
    def before_generate_path_parameters(context: HookContext, strategy: SearchStrategy[Any]) -> SearchStrategy[Any]:
        known = seeded.path_parameters.get(context.operation.path, []) if context.operation is not None else []
        return st.one_of(strategy, st.sampled_from(known)) if known else strategy

    result = RunResult()
    for event in engine.from_schema(schema).execute():
        if isinstance(event, events.ScenarioFinished):
            result.record(event)
        elif isinstance(event, events.NonFatalError):
            result.errors.append(f"error in {event.label}: {event.value!r}")
        elif isinstance(event, events.FatalError):
            result.errors.append(f"fatal: {event.exception!r}")
    return result


def test_schemathesis_finds_no_server_error_and_no_nonconformance(server: RunningServer, seeded: Seeded) -> None:
    """No 5xx anywhere, and every response as documented; every operation tested, the seeded resources reached."""
    start = time.monotonic()
    result = run_schemathesis(server, seeded)
    report = result.report()
    print(f"schemathesis: {sum(sum(c.values()) for c in result.statuses.values())} responses, "
          f"{len(result.failures)} distinct failures in {time.monotonic() - start:.1f} s\n{report}")
    if result.errors or result.failures:
        pytest.fail(report, pytrace=False)
    assert result.checks == set(CHECKS)
    assert not [label for label, counts in result.statuses.items() if any(s >= 500 for s in counts)], report
    doc = document()
    left_out = {*NOT_FUZZED, *websocket_operations(doc)}
    fuzzed = {f"{method.upper()} {path}" for path, item in doc["paths"].items() for method, op in item.items()
              if method in METHODS and op["operationId"] not in left_out}
    assert fuzzed - result.tested == set(), "operations schemathesis did not test"
    assert [label for label in REAL_IDS_USED if result.statuses[label][200] == 0] == [], report
