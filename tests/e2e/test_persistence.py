"""Persistence: a restart keeps every conference, hash, recording and transcribe; participants that were up are
`leaved` with a reason; a `kill -9` in the middle of traffic leaves a database that is whole and consistent."""

from __future__ import annotations

import json
import signal
import sqlite3
import threading
import time
from pathlib import Path
from typing import Any

import pytest

from tests.e2e.test_conference_api import dial_status
from tests.helpers.participant import Participant
from tests.helpers.rest import ApiClient
from tests.helpers.server_process import RunningServer, start_server

pytestmark = pytest.mark.e2e

NIL = "00000000-0000-0000-0000-000000000000"
CUSTOMER_B = "6f5b1791-915f-42fd-9588-3feb6a79e96c"


def everything(api: ApiClient, kind: str) -> list[dict[str, Any]]:
    """Every item of a list endpoint, page by page."""
    items: list[dict[str, Any]] = []
    token = ""
    while True:
        page = api.get(f"/{kind}?page_size=100&page_token={token.replace(' ', '%20')}")
        if not page["result"]:
            return items
        items.extend(page["result"])
        token = page["next_page_token"]


def assert_consistent(data_dir: Path) -> None:
    """The database is whole, and every reference in it points at something that agrees with it."""
    db = sqlite3.connect(f"file:{data_dir / 'confbridge.sqlite3'}?mode=ro", uri=True)
    try:
        assert db.execute("PRAGMA integrity_check").fetchone()[0] == "ok"
        assert db.execute("PRAGMA foreign_key_check").fetchall() == []
        conferences = {row[0]: row for row in db.execute(
            "SELECT id, status, conferencecall_ids, recording_id, recording_ids, transcribe_id, transcribe_ids, "
            "direct_hash FROM conferences")}
        participants = {row[0]: row for row in db.execute(
            "SELECT id, conference_id, reference_id, status, leave_reason FROM conferencecalls")}
        calls = {row[0]: row for row in db.execute("SELECT id, conferencecall_id, status FROM calls")}
        recordings = {row[0]: row for row in db.execute("SELECT id, reference_id, status FROM recordings")}
        transcribes = {row[0]: row for row in db.execute("SELECT id, reference_id, status FROM transcribes")}
        hashes = [row[7] for row in conferences.values() if row[7]]
        assert len(hashes) == len(set(hashes)), "direct hashes are unique"
        for conference_id, (_, status, members, recording_id, recording_ids, transcribe_id, transcribe_ids,
                            _hash) in conferences.items():
            for member in json.loads(members):
                assert participants[member][1] == conference_id and participants[member][3] == "joined"
            for owned, table in ((json.loads(recording_ids), recordings), (json.loads(transcribe_ids), transcribes)):
                for item in owned:
                    assert table[item][1] == conference_id, (conference_id, item)
            assert recording_id == NIL or recording_id in json.loads(recording_ids)
            assert transcribe_id == NIL or transcribe_id in json.loads(transcribe_ids)
            if status == "terminated":
                assert json.loads(members) == []
        for participant_id, (_, conference_id, call_id, status, reason) in participants.items():
            assert conference_id in conferences
            assert calls[call_id][1] == participant_id
            if status == "leaved":
                assert reason, f"participant {participant_id} left without a reason"
    finally:
        db.close()


def test_a_restart_keeps_conferences_hashes_recordings_and_transcribes(tmp_path: Path) -> None:
    data = tmp_path / "data"
    first = start_server(data, extra_args=["--token", f"tok-b={CUSTOMER_B}"])
    try:
        api = first.api
        room = api.create_conference("room", detail="kept", data={"k": "v"}, timeout=3600)
        connect = api.post("/conferences", {"type": "connect", "pre_actions": [{"type": "answer"}]})
        ended = api.create_conference("ended")
        api.delete(f"/conferences/{ended['id']}")
        theirs = ApiClient(first.http_url, "tok-b").create_conference("theirs")
        caller = Participant(first.sip, first.direct_uri(room["direct_hash"]), 440.0)
        try:
            api.wait_for(f"/conferences/{room['id']}", lambda c: len(c["conferencecall_ids"]) == 1)
            recording_id = api.post(f"/conferences/{room['id']}/recording_start")["recording_id"]
            transcribe_id = api.post(f"/conferences/{room['id']}/transcribe_start", {"language": "en-US"})[
                "transcribe_id"]
            time.sleep(1.0)
            before = {c["id"]: c for c in everything(api, "conferences")}
        finally:
            caller.close()
    finally:
        assert first.stop() == 0

    again = start_server(data, extra_args=["--token", f"tok-b={CUSTOMER_B}"])
    try:
        api = again.api
        after = {c["id"]: c for c in everything(api, "conferences")}
        assert set(after) == {room["id"], connect["id"]} == set(before), "the deleted one stays unlisted"
        kept = after[room["id"]]
        for name in ("name", "detail", "data", "timeout", "direct_hash", "recording_ids", "transcribe_ids",
                     "pre_actions", "type", "status"):
            assert kept[name] == before[room["id"]][name], name
        assert (kept["conferencecall_ids"], kept["recording_id"], kept["transcribe_id"]) == ([], NIL, NIL)
        assert after[connect["id"]]["pre_actions"][0]["type"] == "answer"
        assert api.get(f"/conferences/{ended['id']}")["status"] == "terminated"
        assert ApiClient(again.http_url, "tok-b").get(f"/conferences/{theirs['id']}")["name"] == "theirs"
        recording = api.get(f"/recordings/{recording_id}")
        assert recording["status"] == "ended" and recording["duration"] > 0.5
        assert api.call("GET", f"/recordingfiles/{recording_id}")[0] == 200
        assert api.get(f"/transcribes/{transcribe_id}")["status"] == "done"
        participant = everything(api, "conferencecalls")[0]
        assert (participant["status"], participant["leave_reason"]) == ("leaved", "server shutdown")
        assert dial_status(again, room["direct_hash"]) == 200, "the same URI still dials in"
    finally:
        assert again.stop() == 0
    assert_consistent(data)


def test_kill_9_in_the_middle_of_traffic_leaves_a_whole_consistent_database(tmp_path: Path) -> None:
    data = tmp_path / "data"
    victim = start_server(data)
    api = victim.api
    created: list[str] = []
    stop = threading.Event()

    def churn() -> None:
        """Create, change and end conferences as fast as the API answers, until the server dies."""
        while not stop.is_set():
            try:
                conference = api.create_conference("churn", timeout=3600)
                created.append(conference["id"])
                path = f"/conferences/{conference['id']}"
                api.post(f"{path}/transcribe_start", {"language": "en-US"})
                api.post(f"{path}/direct-hash-regenerate")
                api.ok("PUT", path, {"name": "churned"})
                api.post(f"{path}/recording_start")
                api.delete(path)
            except (AssertionError, OSError):
                return

    room = api.create_conference("room")
    callers = [Participant(victim.sip, victim.direct_uri(room["direct_hash"]), 440.0 + 100 * index)
               for index in range(3)]
    try:
        api.wait_for(f"/conferences/{room['id']}", lambda c: len(c["conferencecall_ids"]) == 3)
        api.post(f"/conferences/{room['id']}/recording_start")
        workers = [threading.Thread(target=churn) for _ in range(3)]
        for worker in workers:
            worker.start()
        time.sleep(2.0)
        victim.process.send_signal(signal.SIGKILL)
        victim.process.wait(10)
        stop.set()
        for worker in workers:
            worker.join(20)
    finally:
        for caller in callers:
            caller.close()
    assert len(created) > 10, "the kill came in the middle of traffic"
    assert_consistent(data)

    again: RunningServer = start_server(data)
    try:
        api = again.api
        listed = {c["id"] for c in everything(api, "conferences")}
        for conference_id in created:
            assert api.get(f"/conferences/{conference_id}")["id"] == conference_id, "every answered create survived"
        assert room["id"] in listed
        recovered = api.get(f"/conferences/{room['id']}")
        assert (recovered["status"], recovered["conferencecall_ids"], recovered["recording_id"]) == \
            ("progressing", [], NIL)
        recording = api.get(f"/recordings/{recovered['recording_ids'][0]}")
        assert recording["status"] == "ended" and recording["duration"] >= 1.0
        people = [p for p in everything(api, "conferencecalls") if p["conference_id"] == room["id"]]
        assert len(people) == 3
        assert all((p["status"], p["leave_reason"]) == ("leaved", "server restart") for p in people)
        calls = everything(api, "calls")
        assert all((c["status"], c["hangup_reason"]) == ("hangup", "server restart") for c in calls)
        assert all(api.get(f"/transcribes/{t['id']}")["status"] == "done" for t in everything(api, "transcribes"))
        assert dial_status(again, recovered["direct_hash"]) == 200
    finally:
        assert again.stop() == 0
    assert_consistent(data)
