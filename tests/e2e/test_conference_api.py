"""The VoIPBIN Conference API rules through REST against the running server, with SIPp callers where a rule
needs a call: connect bridges, timeouts, health checks, direct hashes, recording and transcription rules,
kicks, updates, pagination, customers, and the error envelope."""

from __future__ import annotations

import time
import uuid
from pathlib import Path
from typing import Any

import pytest

from tests.helpers.participant import Participant
from tests.helpers.ports import LOOPBACK
from tests.helpers.rest import ApiClient
from tests.helpers.server_process import LaunchServer, RunningServer
from tests.helpers.sip_client import SipClient
from tests.helpers.sip_messages import audio_offer
from tests.helpers.sipp import Sipp, make_tone_wav, scenario_with_tone

pytestmark = pytest.mark.e2e

CUSTOMER_B = "6f5b1791-915f-42fd-9588-3feb6a79e96c"
PCMU_OFFER = audio_offer(LOOPBACK, 40000, ["0 PCMU/8000"])


@pytest.fixture
def fast_server(launch_server: LaunchServer) -> RunningServer:
    """A server checking participants' health every 0.5 s, with a second customer's token `tok-b`."""
    return launch_server("--health-interval", "0.5", "--token", f"tok-b={CUSTOMER_B}")


def until_bye_caller(server: RunningServer, conference: dict[str, Any], work: Path, name: str, *,
                     tone_seconds: float = 10.0, loops: int = -1) -> Sipp:
    """A SIPp caller streaming a tone (looped, or once) until the server hangs up on it."""
    tone = make_tone_wav(work / f"{name}.wav", 440.0, seconds=tone_seconds)
    return Sipp(scenario_with_tone("uac_until_bye.xml", tone, work, loops=loops), work, name=name,
                target=server.sip, service=f"direct.{conference['direct_hash']}")


def dial_status(server: RunningServer, direct_hash: str) -> int:
    """The final status of an INVITE to a direct URI (a 2xx call is hung up again)."""
    client = SipClient(server.sip, server.direct_uri(direct_hash))
    try:
        answer = client.call(PCMU_OFFER)
        if answer.status_code < 300:
            client.hangup()
        return answer.status_code
    finally:
        client.close()


def nested(depth: int) -> dict[str, Any]:
    """An object `depth` levels deep."""
    value: dict[str, Any] = {}
    for _ in range(depth - 1):
        value = {"a": value}
    return value


def error_of(api: ApiClient, method: str, path: str, body: Any = None, **options: Any) -> tuple[int, str]:
    """(status, message) of a request that must fail with the error envelope."""
    status, parsed, raw = api.call(method, path, body, **options)
    assert status >= 400, (method, path, status, raw[:300])
    assert parsed is not None and set(parsed) == {"error"}, raw[:300]
    error = parsed["error"]
    assert set(error) == {"status", "reason", "message", "request_id"} and error["status"] == status, error
    uuid.UUID(error["request_id"])
    return status, str(error["message"])


# -- connect ----------------------------------------------------------------------------------------

def test_connect_bridges_two_refuses_a_third_and_ends_when_one_leaves(fast_server: RunningServer,
                                                                      tmp_path: Path) -> None:
    api = fast_server.api
    conference = api.post("/conferences", {"type": "connect", "name": "support"})
    path = f"/conferences/{conference['id']}"
    staying = until_bye_caller(fast_server, conference, tmp_path, "staying")
    leaving_tone = make_tone_wav(tmp_path / "leaving.wav", 440.0)
    leaving = Sipp(scenario_with_tone("uac_tone.xml", leaving_tone, tmp_path), tmp_path, name="leaving",
                   target=fast_server.sip, service=f"direct.{conference['direct_hash']}", extra=("-d", "3000"))
    try:
        api.wait_for(path, lambda c: len(c["conferencecall_ids"]) == 2)
        assert dial_status(fast_server, conference["direct_hash"]) == 486, "a third joiner is refused"
        assert leaving.wait().code == 0
        assert staying.wait().code == 0, "the other participant was hung up on (BYE, answered)"
        ended = api.wait_for(path, lambda c: c["status"] == "terminated")
        assert ended["conferencecall_ids"] == []
        participants = [p for p in api.get("/conferencecalls")["result"] if p["conference_id"] == conference["id"]]
        assert sorted(p["leave_reason"] for p in participants) == ["connect partner left", "normal"]
        assert all(p["status"] == "leaved" for p in participants)
    finally:
        staying.stop()
        leaving.stop()


def test_type_is_immutable_over_rest(fast_server: RunningServer) -> None:
    api = fast_server.api
    conference = api.post("/conferences", {"type": "connect"})
    status, message = error_of(api, "PUT", f"/conferences/{conference['id']}", {"type": "conference"})
    assert status == 400 and "immutable" in message
    assert api.get(f"/conferences/{conference['id']}")["type"] == "connect"


# -- timeout and health checks ----------------------------------------------------------------------

def test_timeout_kicks_everyone_and_terminates(fast_server: RunningServer, tmp_path: Path) -> None:
    api = fast_server.api
    conference = api.post("/conferences", {"type": "conference", "timeout": 3})
    path = f"/conferences/{conference['id']}"
    caller = until_bye_caller(fast_server, conference, tmp_path, "timed")
    try:
        api.wait_for(path, lambda c: len(c["conferencecall_ids"]) == 1)
        assert api.get(path)["status"] == "progressing"
        assert caller.wait().code == 0, "the timeout hung up on the caller"
        ended = api.wait_for(path, lambda c: c["status"] == "terminated")
        created = time.strptime(ended["tm_create"][:19], "%Y-%m-%d %H:%M:%S")
        deleted = time.strptime(ended["tm_delete"][:19], "%Y-%m-%d %H:%M:%S")
        assert 2 <= time.mktime(deleted) - time.mktime(created) <= 6
        leaver = api.get("/conferencecalls")["result"][0]
        assert (leaver["status"], leaver["leave_reason"]) == ("leaved", "conference timeout")
    finally:
        caller.stop()


def test_a_participant_whose_rtp_stops_without_bye_is_removed_by_health_checks(fast_server: RunningServer,
                                                                                tmp_path: Path) -> None:
    api = fast_server.api
    conference = api.create_conference("health")
    path = f"/conferences/{conference['id']}"
    caller = until_bye_caller(fast_server, conference, tmp_path, "silent", tone_seconds=2.0, loops=1)
    try:
        api.wait_for(path, lambda c: len(c["conferencecall_ids"]) == 1)
        joined_at = time.monotonic()
        assert api.get(path)["conferencecall_ids"], "still there while its RTP flows"
        assert caller.wait().code == 0, "the server hung up on the silent caller"
        removed_after = time.monotonic() - joined_at
        assert 2.5 <= removed_after <= 8, f"2 s of RTP, then three failed checks 0.5 s apart: {removed_after:.1f} s"
        participant = api.get("/conferencecalls")["result"][0]
        assert participant["status"] == "leaved"
        assert participant["leave_reason"].startswith("health check failed: no media"), participant
        assert api.get(path)["status"] == "progressing", "a conference-type room stays up"
    finally:
        caller.stop()


# -- direct hash ------------------------------------------------------------------------------------

def test_regenerating_the_direct_hash_makes_the_old_uri_404_at_once(fast_server: RunningServer) -> None:
    api = fast_server.api
    conference = api.create_conference("hash")
    old = conference["direct_hash"]
    assert dial_status(fast_server, old) == 200
    renewed = api.post(f"/conferences/{conference['id']}/direct-hash-regenerate")
    assert renewed["direct_hash"] != old and len(renewed["direct_hash"]) == 12
    assert dial_status(fast_server, old) == 404
    assert dial_status(fast_server, renewed["direct_hash"]) == 200
    assert api.get(f"/conferences/{conference['id']}")["direct_hash"] == renewed["direct_hash"]
    assert error_of(api, "POST", f"/conferences/{uuid.uuid4()}/direct-hash-regenerate")[0] == 404


# -- recording, transcription, kick -----------------------------------------------------------------

def test_recording_and_transcription_rules(fast_server: RunningServer) -> None:
    api = fast_server.api
    conference = api.create_conference("rules")
    base = f"/conferences/{conference['id']}"
    started = api.post(f"{base}/recording_start", {"format": "wav", "duration": 30})
    assert started["recording_id"] in started["recording_ids"]
    assert error_of(api, "POST", f"{base}/recording_start", {"format": "wav"})[0] == 409
    assert error_of(api, "POST", f"{base}/recording_start", {"format": "mp3"})[0] == 400
    stopped = api.post(f"{base}/recording_stop")
    assert stopped["recording_id"] == "00000000-0000-0000-0000-000000000000"
    assert error_of(api, "POST", f"{base}/recording_stop")[0] == 409

    assert error_of(api, "POST", f"{base}/transcribe_start", {})[1].startswith("language is required")
    assert error_of(api, "POST", f"{base}/transcribe_start", {"language": "not a tag"})[0] == 400
    transcribing = api.post(f"{base}/transcribe_start", {"language": "en-US"})
    transcribe_id = transcribing["transcribe_id"]
    assert transcribing["transcribe_ids"] == [transcribe_id]
    assert error_of(api, "POST", f"{base}/transcribe_start", {"language": "en-US"})[0] == 409
    transcribe = api.get(f"/transcribes/{transcribe_id}")
    assert (transcribe["status"], transcribe["language"], transcribe["reference_id"]) == \
        ("progressing", "en-US", conference["id"])
    assert api.post(f"{base}/transcribe_stop")["transcribe_id"] == "00000000-0000-0000-0000-000000000000"
    assert api.get(f"/transcribes/{transcribe_id}")["status"] == "done"
    assert [t["id"] for t in api.get("/transcribes")["result"]] == [transcribe_id]

    api.delete(base)
    status, message = error_of(api, "POST", f"{base}/recording_start", {})
    assert status == 400 and "progressing" in message
    assert error_of(api, "POST", f"{base}/transcribe_start", {"language": "en-US"})[0] == 400


def test_kick_only_joining_or_joined(fast_server: RunningServer) -> None:
    api = fast_server.api
    conference = api.create_conference("kick")
    caller = Participant(fast_server.sip, fast_server.direct_uri(conference["direct_hash"]), 440.0)
    try:
        current = api.wait_for(f"/conferences/{conference['id']}", lambda c: len(c["conferencecall_ids"]) == 1)
        participant_id = current["conferencecall_ids"][0]
        kicked = api.delete(f"/conferencecalls/{participant_id}")
        assert kicked["status"] in ("leaving", "leaved")
        _, raw = caller.sip.expect_request("BYE")
        caller.sip.reply(raw)
        api.wait_for(f"/conferencecalls/{participant_id}", lambda p: p["status"] == "leaved")
        assert error_of(api, "DELETE", f"/conferencecalls/{participant_id}")[0] == 409
        assert api.get(f"/conferencecalls/{participant_id}")["leave_reason"] == "kicked"
    finally:
        caller.close()


# -- conferences: update, actions, pagination, customers, errors ------------------------------------

def test_update_and_actions(fast_server: RunningServer) -> None:
    api = fast_server.api
    talk = {"type": "talk", "option": {"text": "Welcome", "language": "en-US"}}
    conference = api.post("/conferences", {"type": "conference", "name": "a", "pre_actions": [talk]})
    assert conference["pre_actions"] == [{"id": "00000000-0000-0000-0000-000000000000",
                                          "next_id": "00000000-0000-0000-0000-000000000000", **talk}]
    path = f"/conferences/{conference['id']}"
    updated = api.ok("PUT", path, {"name": "b", "detail": "d", "timeout": 3600, "post_actions": [{"type": "hangup"}]})
    assert (updated["name"], updated["detail"], updated["timeout"]) == ("b", "d", 3600)
    assert updated["post_actions"][0]["type"] == "hangup" and updated["pre_actions"] == conference["pre_actions"]
    assert api.get(path)["name"] == "b"
    for bad in ({"pre_actions": [{"type": "dance"}]}, {"timeout": -5}, {"timeout": "soon"}, {"colour": "red"},
                {"pre_actions": [{"type": "talk", "id": "x"}]}):
        assert error_of(api, "PUT", path, bad)[0] == 400, bad
        assert error_of(api, "POST", "/conferences", {"type": "conference", **bad})[0] == 400, bad
    api.delete(path)
    assert error_of(api, "PUT", path, {"name": "late"})[0] == 409


def test_pagination_newest_first_across_pages_without_deleted(fast_server: RunningServer) -> None:
    api = fast_server.api
    created = [api.create_conference(f"page{index}")["id"] for index in range(7)]
    api.delete(f"/conferences/{created[3]}")
    expected = [conference_id for conference_id in reversed(created) if conference_id != created[3]]
    seen: list[str] = []
    token = ""
    pages = 0
    while True:
        page = api.get(f"/conferences?page_size=2&page_token={token}")
        assert len(page["result"]) <= 2
        seen.extend(item["id"] for item in page["result"])
        pages += 1
        if not page["result"]:
            break
        assert page["next_page_token"] == page["result"][-1]["tm_create"]
        token = page["next_page_token"].replace(" ", "%20")
    assert seen == expected and pages == 4
    assert [c["id"] for c in api.get("/conferences")["result"]] == expected, "default page size holds them all"
    for bad in ("0", "101", "x", "-1"):
        assert error_of(api, "GET", f"/conferences?page_size={bad}")[0] == 400


def test_another_customers_resources_are_404_like_missing_ones(fast_server: RunningServer) -> None:
    mine, theirs = fast_server.api, ApiClient(fast_server.http_url, "tok-b")
    conference = mine.create_conference("mine")
    recording = mine.post(f"/conferences/{conference['id']}/recording_start")["recording_id"]
    assert theirs.get("/conferences")["result"] == []
    assert theirs.get("/customer")["id"] == CUSTOMER_B
    missing = str(uuid.uuid4())
    for method, path in [("GET", f"/conferences/{conference['id']}"), ("PUT", f"/conferences/{conference['id']}"),
                         ("DELETE", f"/conferences/{conference['id']}"),
                         ("POST", f"/conferences/{conference['id']}/recording_stop"),
                         ("POST", f"/conferences/{conference['id']}/direct-hash-regenerate"),
                         ("GET", f"/recordings/{recording}"), ("GET", f"/recordingfiles/{recording}")]:
        status, message = error_of(theirs, method, path, {} if method in ("PUT", "POST") else None)
        assert status == 404, (method, path, status)
        missing_status, missing_message = error_of(theirs, method, path.replace(conference["id"], missing)
                                                   .replace(recording, missing),
                                                   {} if method in ("PUT", "POST") else None)
        assert missing_status == 404
        assert message.replace(conference["id"], missing).replace(recording, missing) == missing_message
    assert mine.get(f"/conferences/{conference['id']}")["status"] == "progressing", "untouched by the other"


def test_bad_input_gets_the_error_envelope_never_a_500(fast_server: RunningServer) -> None:
    api = fast_server.api
    conference = api.create_conference("errors")
    cases: list[tuple[str, str, dict[str, Any]]] = [
        ("POST", "/conferences", {"raw_body": b"{not json"}),
        ("POST", "/conferences", {"raw_body": b"[1, 2]"}),
        ("POST", "/conferences", {"body": {"name": "no type"}}),
        ("POST", "/conferences", {"body": {"type": "party"}}),
        ("POST", "/conferences", {"body": {"type": "conference", "name": 7}}),
        ("GET", "/conferences/not-a-uuid", {}),
        ("DELETE", "/conferencecalls/12345", {}),
        ("POST", f"/conferences/{conference['id']}/recording_start", {"body": {"duration": "long"}}),
        ("POST", f"/conferences/{conference['id']}/transcribe_start", {"body": {"language": 5}}),
        ("POST", f"/conferences/{conference['id']}/direct-hash-regenerate", {"raw_body": b"\xff\xfe"}),
        ("POST", "/conferences", {"raw_body": b'{"type": "conference", "data": {"a": NaN}}'}),
        ("POST", "/conferences", {"raw_body": b'{"type": "conference", "name": "\\ud800"}'}),
        ("POST", "/conferences", {"raw_body": b"[" * 100000}),
        ("POST", "/conferences", {"body": {"type": "conference", "data": nested(40)}}),
        ("POST", "/conferences", {"body": {"type": "connect", "timeout": 2**63}}),
        ("PUT", f"/conferences/{conference['id']}", {"body": {"timeout": 2**63}}),
        ("POST", f"/conferences/{conference['id']}/transcribe_start", {"body": {"language": "en\n"}}),
        ("POST", "/calls", {"body": {"source": {"target": 5}, "destinations": [{"type": "sip", "target": "sip:a@b"}],
                                     "actions": [{"type": "conference_join",
                                                  "option": {"conference_id": conference["id"]}}]}}),
    ]
    for method, path, options in cases:
        assert error_of(api, method, path, **options)[0] == 400, (method, path, options)
    huge = 1 + 10**400  # no float holds it: the recording is capped at its maximum instead
    api.post(f"/conferences/{conference['id']}/recording_start", {"duration": huge})
    assert api.get(f"/conferences/{conference['id']}")["data"] == {}
    assert api.post("/conferences", {"type": "conference", "data": nested(20)})["data"] == nested(20)
    assert error_of(api, "GET", f"/conferences/{uuid.uuid4()}")[0] == 404
    assert error_of(ApiClient(fast_server.http_url, None), "GET", "/conferences")[0] == 401
    assert error_of(ApiClient(fast_server.http_url, "nobody"), "GET", "/conferences")[0] == 401
    assert ApiClient(fast_server.http_url, "tok-b").call("GET", "/conferences", token_in="header")[0] == 200
