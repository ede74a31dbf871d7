"""The REST API over real HTTP against the running server: shapes, auth, errors, lists, deletion."""

from __future__ import annotations

import re
import uuid

from tests.helpers.rest import ApiClient
from tests.helpers.server_process import RunningServer

TIMESTAMP = re.compile(r"^\d{4}-\d{2}-\d{2} \d{2}:\d{2}:\d{2}\.\d{6}$")
NEVER = "9999-01-01 00:00:00.000000"
NIL = "00000000-0000-0000-0000-000000000000"
CONFERENCE_FIELDS = {"id", "customer_id", "type", "status", "name", "detail", "data", "timeout", "pre_actions",
                     "post_actions", "conferencecall_ids", "recording_id", "recording_ids", "direct_hash",
                     "tm_create", "tm_update", "tm_delete"}


def assert_error(server: RunningServer, status: int, body: object) -> None:
    assert isinstance(body, dict) and set(body) == {"error"}, body
    error = body["error"]
    assert error["status"] == status and error["message"] and error["reason"]
    uuid.UUID(error["request_id"])


def test_create_conference_returns_the_seed_fields(server: RunningServer) -> None:
    created = server.api.post("/conferences", {"type": "conference", "name": "test conference",
                                               "detail": "test conference for example"})
    assert set(created) >= CONFERENCE_FIELDS
    assert created["type"] == "conference" and created["status"] == "progressing"
    assert created["name"] == "test conference" and created["detail"] == "test conference for example"
    assert re.fullmatch(r"[0-9a-f]{12}", created["direct_hash"])
    assert created["recording_id"] == NIL and created["recording_ids"] == [] and created["conferencecall_ids"] == []
    assert TIMESTAMP.match(created["tm_create"]) and TIMESTAMP.match(created["tm_update"])
    assert created["tm_delete"] == NEVER
    assert created["data"] == {} and created["timeout"] == 0 and created["pre_actions"] == []
    uuid.UUID(created["id"])
    uuid.UUID(created["customer_id"])
    assert server.api.get(f"/conferences/{created['id']}") == created


def test_direct_hashes_are_unique_and_random(server: RunningServer) -> None:
    hashes = {server.api.post("/conferences", {"type": "conference"})["direct_hash"] for _ in range(20)}
    assert len(hashes) == 20


def test_token_by_query_or_bearer_and_401_otherwise(server: RunningServer) -> None:
    bearer = ApiClient(server.http_url, server.token)
    status, body, _ = bearer.call("GET", "/conferences", token_in="header")
    assert status == 200 and body["result"] == []
    for client in (ApiClient(server.http_url, None), ApiClient(server.http_url, "wrong")):
        status, body, _ = client.call("GET", "/conferences")
        assert status == 401
        assert_error(server, 401, body)


def test_bad_input_gets_400_with_a_reason(server: RunningServer) -> None:
    api = server.api
    cases = [
        ("POST", "/conferences", b"{not json"),
        ("POST", "/conferences", b"[1, 2]"),
        ("POST", "/conferences", b'{"name": "no type"}'),
        ("POST", "/conferences", b'{"type": "party"}'),
        ("POST", "/conferences", b'{"type": "conference", "name": 5}'),
        ("POST", "/conferences", b'{"type": "conference", "timeout": "soon"}'),
        ("POST", "/conferences", b'{"type": "conference", "timeout": true}'),
        ("GET", "/conferences/not-a-uuid", None),
        ("GET", "/conferences?page_size=0", None),
        ("GET", "/conferences?page_size=101", None),
    ]
    for method, path, raw in cases:
        status, body, _ = api.call(method, path, raw_body=raw)
        assert status == 400, (method, path, raw, body)
        assert_error(server, 400, body)


def test_unknown_ids_and_routes_get_404(server: RunningServer) -> None:
    api = server.api
    missing = str(uuid.uuid4())
    for path in (f"/conferences/{missing}", f"/conferencecalls/{missing}", f"/calls/{missing}",
                 f"/recordings/{missing}", f"/recordingfiles/{missing}", "/nothing-here"):
        status, body, _ = api.call("GET", path)
        assert status == 404, path
        assert_error(server, 404, body)
    status, body, _ = api.call("DELETE", f"/conferences/{missing}")
    assert status == 404


def test_list_is_newest_first_and_pages_by_tm_create(server: RunningServer) -> None:
    api = server.api
    ids = [api.post("/conferences", {"type": "conference", "name": f"c{i}"})["id"] for i in range(5)]
    first = api.get("/conferences?page_size=2")
    assert [c["id"] for c in first["result"]] == ids[:2:-1][:2]
    assert first["next_page_token"] == first["result"][-1]["tm_create"]
    collected = [c["id"] for c in first["result"]]
    token = first["next_page_token"]
    while True:
        page = api.get(f"/conferences?page_size=2&page_token={token.replace(' ', '%20')}")
        if not page["result"]:
            break
        collected += [c["id"] for c in page["result"]]
        token = page["next_page_token"]
    assert collected == list(reversed(ids))


def test_delete_terminates_an_empty_conference_and_hides_it_from_the_list(server: RunningServer) -> None:
    api = server.api
    created = api.post("/conferences", {"type": "conference"})
    deleted = api.delete(f"/conferences/{created['id']}")
    assert deleted["status"] == "terminated" and TIMESTAMP.match(deleted["tm_delete"])
    assert deleted["tm_delete"] != NEVER
    assert api.get(f"/conferences/{created['id']}")["status"] == "terminated"
    assert created["id"] not in [c["id"] for c in api.get("/conferences")["result"]]
    status, body, _ = api.call("DELETE", f"/conferences/{created['id']}")
    assert status == 409
    assert_error(server, 409, body)


def test_recording_rules_over_rest(server: RunningServer) -> None:
    api = server.api
    conference = api.post("/conferences", {"type": "conference"})
    base = f"/conferences/{conference['id']}"
    status, body, _ = api.call("POST", base + "/recording_stop")
    assert status == 409
    status, body, _ = api.call("POST", base + "/recording_start", raw_body=b'{"format": "mp3"}')
    assert status == 400 and "format" in body["error"]["message"]
    started = api.post(base + "/recording_start", {"format": "wav"})
    status, body, _ = api.call("POST", base + "/recording_start")
    assert status == 409 and started["recording_id"] in body["error"]["message"]
    api.post(base + "/recording_stop")
    recording = api.get(f"/recordings/{started['recording_id']}")
    assert recording["status"] == "ended" and recording["format"] == "wav"
    status, _, wav = api.call("GET", f"/recordingfiles/{started['recording_id']}")
    assert status == 200 and wav[:4] == b"RIFF" and wav[8:12] == b"WAVE"
    assert [r["id"] for r in api.get("/recordings")["result"]] == [started["recording_id"]]
    api.delete(base)
    status, body, _ = api.call("POST", base + "/recording_start")
    assert status == 400 and "progressing" in body["error"]["message"]
