"""Calls the server places (REST `POST /v1.0/calls`), answered, challenged, rejected or left ringing by SIPp.

SIPp plays the callee as a UAS (scenarios `uas_*.xml`), so the server's UAC side -- INVITE, 180
handling, ACK, digest retry, CANCEL on ring timeout or on a REST hangup, BYE -- meets an implementation
that is not ours. The audio check uses SIPp's `-rtp_echo`: a test participant streams a 700 Hz tone and
must hear that very tone again. N-1 mixing never plays a participant its own signal, so the only way
back is through the SIPp leg, which proves the dialled leg both hears the conference and is heard in it.
"""

from __future__ import annotations

import time
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest

from tests.helpers.audio import has_tone, lacks_tone, tone_level_db
from tests.helpers.participant import Participant
from tests.helpers.ports import free_port
from tests.helpers.rest import ApiClient
from tests.helpers.server_process import LaunchServer
from tests.helpers.sipp import SCENARIOS, Sipp

LOOPBACK = "127.0.0.1"
NEVER = "9999-01-01 00:00:00.000000"
NIL_UUID = "00000000-0000-0000-0000-000000000000"
TONE_HZ = 700.0



# -- the pieces --------------------------------------------------------------------------------------

@pytest.fixture
def callee(tmp_path: Path) -> Iterator[Callable[..., Sipp]]:
    """Start SIPp UAS scenarios (SIPp plays the called party); any still running at the end is killed."""
    started: list[Sipp] = []

    def launch(scenario: str, *, rtp_echo: bool = False, transport: str = "u1") -> Sipp:
        sipp = Sipp(SCENARIOS / scenario, tmp_path, name=f"{Path(scenario).stem}{len(started)}",
                    transport=transport, extra=("-rtp_echo",) if rtp_echo else ())
        started.append(sipp)
        return sipp

    yield launch
    for sipp in started:
        sipp.stop()


def dial(api: ApiClient, target: str, conference_id: str) -> dict[str, Any]:
    """POST /calls for one destination joining `conference_id`; the call as returned."""
    body = {"source": {"type": "sip", "target": "sip:conference@example.test"},
            "destinations": [{"type": "sip", "target": target}],
            "actions": [{"type": "conference_join", "option": {"conference_id": conference_id}}]}
    created = api.post("/calls", body)
    assert isinstance(created["calls"], list) and len(created["calls"]) == 1, created
    call: dict[str, Any] = created["calls"][0]
    assert call["status"] == "dialing" and call["direction"] == "outgoing", call
    assert call["conference_id"] == conference_id, call
    assert call["destination"]["target"] == target.split(";")[0], "the address of record, without parameters"
    return call


def watch_statuses(api: ApiClient, call_id: str, until: Callable[[dict[str, Any]], bool],
                   timeout: float = 10.0) -> tuple[list[str], dict[str, Any]]:
    """Poll a call until `until(call)`: the distinct statuses seen in order, and the last call."""
    seen: list[str] = []
    deadline = time.monotonic() + timeout
    while True:
        call = api.get(f"/calls/{call_id}")
        if not seen or seen[-1] != call["status"]:
            seen.append(call["status"])
        if until(call):
            return seen, call
        if time.monotonic() > deadline:
            raise AssertionError(f"call {call_id}: timed out; statuses {seen}, last {call}")
        time.sleep(0.03)


# -- tests --------------------------------------------------------------------------------------------

def test_dialled_callee_joins_and_hears_the_conference(launch_server: LaunchServer,
                                                       callee: Callable[..., Sipp]) -> None:
    server = launch_server()
    api = server.api
    conference = api.create_conference("dial-out")
    speaker = Participant(server.sip, server.direct_uri(conference["direct_hash"]), TONE_HZ)
    try:
        api.wait_for(f"/conferences/{conference['id']}", lambda c: len(c["conferencecall_ids"]) == 1)
        time.sleep(1.0)
        alone = speaker.peer.audio()[-8000:]
        if alone.size >= 800:
            assert lacks_tone(alone, 8000, TONE_HZ), ("hears itself before anyone else is in",
                                                      tone_level_db(alone, 8000, TONE_HZ))
        sipp = callee("uas_answer.xml", rtp_echo=True)
        call = dial(api, sipp.uri, conference["id"])

        seen, call = watch_statuses(api, call["id"], lambda c: c["status"] != "dialing" and
                                    c["status"] != "ringing")
        assert seen == ["dialing", "ringing", "progressing"] or seen == ["ringing", "progressing"], seen
        assert call["tm_ringing"] != NEVER and call["tm_progressing"] != NEVER, call
        assert call["conferencecall_id"] != NIL_UUID, "an answered call gets its conferencecall"
        participant = api.wait_for(f"/conferencecalls/{call['conferencecall_id']}",
                                   lambda c: c["status"] == "joined")
        assert participant["reference_type"] == "call" and participant["reference_id"] == call["id"]
        assert participant["conference_id"] == conference["id"]
        api.wait_for(f"/conferences/{conference['id']}", lambda c: participant["id"] in c["conferencecall_ids"])

        joined_at = len(speaker.peer.received)
        time.sleep(2.0)
        echoed = speaker.peer.audio()[joined_at * 160:][-8000:]
        assert echoed.size >= 6000, f"only {echoed.size} samples received after the dialled leg joined"
        assert has_tone(echoed, 8000, TONE_HZ), (
            "the SIPp leg did not echo the conference back", tone_level_db(echoed, 8000, TONE_HZ))

        hung = api.delete(f"/calls/{call['id']}")
        assert hung["status"] == "terminating", hung
        assert (result := sipp.wait()).code == 0, result.explain()
        ended = api.wait_for(f"/calls/{call['id']}", lambda c: c["status"] == "hangup")
        assert ended["hangup_by"] == "local" and ended["hangup_reason"], ended
        assert ended["tm_hangup"] != NEVER
        left = api.wait_for(f"/conferencecalls/{participant['id']}", lambda c: c["status"] == "leaved")
        assert left["id"] not in api.get(f"/conferences/{conference['id']}")["conferencecall_ids"]
        assert api.get(f"/conferences/{conference['id']}")["status"] == "progressing"
    finally:
        speaker.close()


def test_digest_challenge_is_answered_with_configured_credentials(launch_server: LaunchServer,
                                                                  callee: Callable[..., Sipp]) -> None:
    server = launch_server("--dialout-credentials", "alice:s3cret@sipp.test")
    api = server.api
    conference = api.create_conference("digest")
    sipp = callee("uas_auth.xml")
    call = dial(api, sipp.uri, conference["id"])
    _, call = watch_statuses(api, call["id"], lambda c: c["status"] in ("progressing", "hangup"))
    assert call["status"] == "progressing", call
    assert call["conferencecall_id"] != NIL_UUID
    assert "answering 401 challenge of realm sipp.test" in server.log()
    api.delete(f"/calls/{call['id']}")
    assert (result := sipp.wait()).code == 0, result.explain()
    ended = api.wait_for(f"/calls/{call['id']}", lambda c: c["status"] == "hangup")
    assert ended["hangup_by"] == "local"


def test_wrong_credentials_fail_the_call_and_leave_the_conference_alone(launch_server: LaunchServer,
                                                                        callee: Callable[..., Sipp]) -> None:
    server = launch_server("--dialout-credentials", "alice:wrong@sipp.test")
    api = server.api
    conference = api.create_conference("forbidden")
    sipp = callee("uas_auth.xml")
    call = dial(api, sipp.uri, conference["id"])
    seen, call = watch_statuses(api, call["id"], lambda c: c["status"] == "hangup")
    assert "progressing" not in seen, seen
    assert (result := sipp.wait()).code == 0, result.explain()
    assert call["hangup_by"] == "remote" and call["hangup_reason"] == "failed", call
    assert call["conferencecall_id"] == NIL_UUID and call["tm_progressing"] == NEVER, call
    assert "call to sip:bob@" in server.log() and "failed: 403" in server.log()
    after = api.get(f"/conferences/{conference['id']}")
    assert after["status"] == "progressing" and after["conferencecall_ids"] == [], after
    assert api.get("/conferencecalls")["result"] == [], "a failed call creates no participant"


def test_ring_timeout_cancels_the_call(launch_server: LaunchServer, callee: Callable[..., Sipp]) -> None:
    server = launch_server("--ring-timeout", "2")
    api = server.api
    conference = api.create_conference("ring-timeout")
    sipp = callee("uas_ring_forever.xml")
    placed = time.monotonic()
    call = dial(api, sipp.uri, conference["id"])
    seen, call = watch_statuses(api, call["id"], lambda c: c["status"] == "hangup", timeout=10)
    elapsed = time.monotonic() - placed
    assert "ringing" in seen, seen
    assert 1.8 <= elapsed <= 4.5, f"cancelled after {elapsed:.2f} s, ring timeout is 2 s"
    assert (result := sipp.wait()).code == 0, "SIPp did not get CANCEL and the 487's ACK:\n" + result.explain()
    assert call["hangup_by"] == "local" and call["hangup_reason"] == "timeout", call
    assert "no answer after 2 s; cancelling" in server.log()
    assert api.get(f"/conferences/{conference['id']}")["status"] == "progressing"


def test_hangup_while_ringing_cancels(launch_server: LaunchServer, callee: Callable[..., Sipp]) -> None:
    server = launch_server()
    api = server.api
    conference = api.create_conference("cancel")
    sipp = callee("uas_ring_forever.xml")
    call = dial(api, sipp.uri, conference["id"])
    api.wait_for(f"/calls/{call['id']}", lambda c: c["status"] == "ringing")
    cancelling = api.delete(f"/calls/{call['id']}")
    assert cancelling["status"] == "canceling", "the call ends only once the 487 has come back"
    assert (result := sipp.wait()).code == 0, "SIPp did not get CANCEL and the 487's ACK:\n" + result.explain()
    ended = api.wait_for(f"/calls/{call['id']}", lambda c: c["status"] == "hangup")
    assert ended["hangup_by"] == "local" and ended["hangup_reason"] == "cancel", ended
    assert ended["tm_progressing"] == NEVER and ended["conferencecall_id"] == NIL_UUID
    status, body, _ = api.call("DELETE", f"/calls/{call['id']}")
    assert status == 409 and body["error"]["status"] == 409, "a finished call cannot be hung up again"


def test_dial_out_request_validation_and_unreachable_destination(launch_server: LaunchServer) -> None:
    server = launch_server("--sip-t1", "0.1")
    api = server.api
    conference = api.create_conference("validation")
    join = [{"type": "conference_join", "option": {"conference_id": conference["id"]}}]
    target = [{"type": "sip", "target": f"sip:bob@{LOOPBACK}:5999"}]
    bad_requests: dict[str, Any] = {
        "no destinations": {"actions": join},
        "empty destinations": {"destinations": [], "actions": join},
        "tel destination": {"destinations": [{"type": "tel", "target": "+15551234567"}], "actions": join},
        "tel target": {"destinations": [{"type": "sip", "target": "tel:+15551234567"}], "actions": join},
        "not a uri": {"destinations": [{"type": "sip", "target": "bob"}], "actions": join},
        "no actions": {"destinations": target},
        "action without type": {"destinations": target, "actions": [{"option": join[0]["option"]}]},
        "unknown action": {"destinations": target, "actions": [{"type": "talk", "option": {"text": "hi"}}]},
        "bad conference id": {"destinations": target,
                              "actions": [{"type": "conference_join", "option": {"conference_id": "nope"}}]},
        "no conference id": {"destinations": target, "actions": [{"type": "conference_join", "option": {}}]},
    }
    for name, body in bad_requests.items():
        status, payload, raw = api.call("POST", "/calls", body)
        assert status == 400, (name, status, raw[:300])
        assert payload["error"]["status"] == 400 and payload["error"]["message"], (name, payload)
    status, payload, _ = api.call("POST", "/calls", raw_body=b"{not json")
    assert status == 400 and payload["error"]["reason"] == "Bad Request"
    unknown = {"destinations": target,
               "actions": [{"type": "conference_join",
                            "option": {"conference_id": "0b6f3c1e-4a5d-4e8f-9a7b-2c3d4e5f6a7b"}}]}
    status, payload, _ = api.call("POST", "/calls", unknown)
    assert status == 404 and payload["error"]["status"] == 404, payload
    assert api.get("/calls")["result"] == [], "a refused request places no call"

    unreachable = free_port()  # nothing listens there: the INVITE goes unanswered until Timer B (64*T1)
    call = dial(api, f"sip:nobody@{LOOPBACK}:{unreachable}", conference["id"])
    seen, ended = watch_statuses(api, call["id"], lambda c: c["status"] == "hangup", timeout=15)
    assert seen[-1] == "hangup" and "progressing" not in seen and "ringing" not in seen, seen
    assert ended["hangup_reason"] == "noanswer" and ended["tm_ringing"] == NEVER, ended
    assert api.get(f"/conferences/{conference['id']}")["status"] == "progressing"


def test_dial_out_over_tcp(launch_server: LaunchServer, callee: Callable[..., Sipp]) -> None:
    server = launch_server()
    api = server.api
    conference = api.create_conference("tcp dial-out")
    sipp = callee("uas_answer.xml", transport="t1")
    call = dial(api, sipp.uri, conference["id"])
    _, call = watch_statuses(api, call["id"], lambda c: c["status"] in ("progressing", "hangup"))
    assert call["status"] == "progressing" and call["tm_ringing"] != NEVER, call
    assert api.delete(f"/calls/{call['id']}")["status"] == "terminating"
    assert (result := sipp.wait()).code == 0, result.explain()
    ended = api.wait_for(f"/calls/{call['id']}", lambda c: c["status"] == "hangup")
    assert ended["hangup_by"] == "local" and ended["hangup_reason"] == "normal", ended
