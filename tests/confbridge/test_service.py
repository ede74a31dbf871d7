"""Conference lifecycle rules in the service, with the telephony and media sides replaced by fakes."""

from __future__ import annotations

import asyncio
from concurrent.futures import Future
from pathlib import Path

import pytest

from confbridge.errors import Conflict, InvalidRequest, NotFound
from confbridge.events import Event, EventBus
from confbridge.models import Call, Conference, Conferencecall, Recording, sip_party
from confbridge.service import ConferenceService
from confbridge.store import Store
from confbridge.timestamps import NEVER, NIL_UUID
from recorder.wav import WavWriter
from recorder.worker import RecordingResult, TrackResult
from tests.helpers.service_fakes import FakeCalls, FakeMedia

CUSTOMER = "5e4a0680-804e-11ec-8477-2fea5968d85b"
OTHER = "0f2a5a0c-0000-4000-8000-000000000001"


@pytest.fixture
def world(tmp_path: Path) -> tuple[ConferenceService, FakeCalls, FakeMedia, list[Event]]:
    events: list[Event] = []
    bus = EventBus()
    bus.add_listener(events.append)
    service = ConferenceService(Store(tmp_path / "db.sqlite3"), bus, tmp_path / "recordings")
    calls, media = FakeCalls(), FakeMedia()
    service.attach(calls, media)
    return service, calls, media, events


def join(service: ConferenceService, conference: Conference) -> tuple[Call, Conferencecall]:
    call, participant = service.admit_call(conference, source=sip_party("sip:a@b"), destination=sip_party("sip:c@d"))
    service.participant_media_started(participant.id)
    return call, participant


def test_create_is_progressing_with_seed_fields_and_publishes_created_then_updated(world: tuple) -> None:
    service, _, _, events = world
    conference = service.create_conference(CUSTOMER, name="standup", detail="daily")
    assert conference.status == "progressing" and conference.type == "conference"
    assert len(conference.direct_hash) == 12 and all(c in "0123456789abcdef" for c in conference.direct_hash)
    assert conference.recording_id == NIL_UUID and conference.tm_delete == NEVER
    assert [(e.type, e.data["status"]) for e in events] == [("conference_created", "starting"),
                                                            ("conference_updated", "progressing")]
    assert service.conference_for_direct_hash(conference.direct_hash.upper()) is not None


def test_create_rejects_a_bad_type_and_a_negative_timeout(world: tuple) -> None:
    service = world[0]
    with pytest.raises(InvalidRequest):
        service.create_conference(CUSTOMER, type="party")
    with pytest.raises(InvalidRequest):
        service.create_conference(CUSTOMER, timeout=-1)


def test_other_customers_resources_are_not_found(world: tuple) -> None:
    service = world[0]
    conference = service.create_conference(CUSTOMER)
    with pytest.raises(NotFound):
        service.get_conference(OTHER, conference.id)
    with pytest.raises(NotFound):
        service.delete_conference(OTHER, conference.id)
    assert service.list_conferences(OTHER).items == []


def test_participant_joins_on_media_and_leaves_on_hangup(world: tuple) -> None:
    service, _, _, events = world
    conference = service.create_conference(CUSTOMER)
    call, participant = service.admit_call(conference, source=sip_party("sip:a@b"), destination=sip_party("sip:c"))
    assert participant.status == "joining" and participant.reference_id == call.id
    assert service.get_conference(CUSTOMER, conference.id).conferencecall_ids == []
    service.participant_media_started(participant.id)
    assert service.get_conference(CUSTOMER, conference.id).conferencecall_ids == [participant.id]
    service.participant_left(participant.id, hangup_by="remote", reason="normal")
    assert service.get_conferencecall(CUSTOMER, participant.id).status == "leaved"
    stored_call = service.get_call(CUSTOMER, call.id)
    assert (stored_call.status, stored_call.hangup_by, stored_call.hangup_reason) == ("hangup", "remote", "normal")
    assert stored_call.tm_hangup != NEVER
    assert service.get_conference(CUSTOMER, conference.id).status == "progressing"
    kinds = [e.type for e in events if e.type.startswith("conferencecall")]
    assert kinds == ["conferencecall_created", "conferencecall_updated", "conferencecall_updated"]


def test_kick_moves_to_leaving_hangs_up_and_only_once(world: tuple) -> None:
    service, calls, _, _ = world
    conference = service.create_conference(CUSTOMER)
    call, participant = join(service, conference)
    kicked = service.kick(CUSTOMER, participant.id)
    assert kicked.status == "leaving"
    assert calls.hung_up == [(call.id, "kicked")]
    assert service.get_conference(CUSTOMER, conference.id).conferencecall_ids == []
    with pytest.raises(Conflict):
        service.kick(CUSTOMER, participant.id)
    service.participant_left(participant.id, hangup_by="local", reason="normal")
    assert service.get_conferencecall(CUSTOMER, participant.id).status == "leaved"
    with pytest.raises(Conflict):
        service.kick(CUSTOMER, participant.id)


def test_delete_kicks_everyone_and_terminates_when_the_last_one_leaves(world: tuple) -> None:
    service, calls, _, events = world
    conference = service.create_conference(CUSTOMER)
    pairs = [join(service, conference) for _ in range(2)]
    deleted = service.delete_conference(CUSTOMER, conference.id)
    assert deleted.status == "terminating" and deleted.tm_delete == NEVER
    assert sorted(c for c, _ in calls.hung_up) == sorted(call.id for call, _ in pairs)
    assert service.conference_for_direct_hash(conference.direct_hash) is None
    with pytest.raises(Conflict):
        service.admit_call(conference, source=sip_party("sip:x"), destination=sip_party("sip:y"))
    service.participant_left(pairs[0][1].id, hangup_by="local", reason="normal")
    assert service.get_conference(CUSTOMER, conference.id).status == "terminating"
    service.participant_left(pairs[1][1].id, hangup_by="local", reason="normal")
    final = service.get_conference(CUSTOMER, conference.id)
    assert final.status == "terminated" and final.tm_delete != NEVER
    assert events[-1].type == "conference_deleted"
    with pytest.raises(Conflict):
        service.delete_conference(CUSTOMER, conference.id)
    assert service.list_conferences(CUSTOMER).items == [], "deleted conferences are not listed"


def test_kicking_a_participant_whose_call_is_already_gone_leaves_it_at_once(world: tuple) -> None:
    service, calls, _, _ = world
    conference = service.create_conference(CUSTOMER)
    call, participant = join(service, conference)
    calls.gone.add(call.id)
    service.kick(CUSTOMER, participant.id)
    assert service.get_conferencecall(CUSTOMER, participant.id).status == "leaved"
    assert service.get_call(CUSTOMER, call.id).hangup_by == "local"


def test_delete_of_an_empty_conference_terminates_at_once(world: tuple) -> None:
    service = world[0]
    conference = service.create_conference(CUSTOMER)
    assert service.delete_conference(CUSTOMER, conference.id).status == "terminated"


def test_recording_rules(world: tuple) -> None:
    service, _, media, events = world

    async def scenario() -> None:
        conference = service.create_conference(CUSTOMER)
        with pytest.raises(Conflict):
            service.stop_recording(CUSTOMER, conference.id)
        started = service.start_recording(CUSTOMER, conference.id)
        recording_id = started.recording_id
        assert recording_id != NIL_UUID and started.recording_ids == [recording_id]
        assert media.recording[conference.id][1].name == f"{recording_id}.wav"
        with pytest.raises(Conflict):
            service.start_recording(CUSTOMER, conference.id)
        stopped, finished = service.stop_recording(CUSTOMER, conference.id)
        assert stopped.recording_id == NIL_UUID and stopped.recording_ids == [recording_id]
        recording = await asyncio.wait_for(finished, 1)
        assert (recording.status, recording.duration) == ("ended", 2.0)
        again = service.start_recording(CUSTOMER, conference.id)
        assert again.recording_ids == [recording_id, again.recording_id]
        await asyncio.wait_for(service.stop_recording(CUSTOMER, conference.id)[1], 1)
        service.delete_conference(CUSTOMER, conference.id)
        with pytest.raises(InvalidRequest):
            service.start_recording(CUSTOMER, conference.id)

    asyncio.run(scenario())
    assert [e.type for e in events].count("recording_finished") == 2


def test_statuses_never_move_backwards(world: tuple) -> None:
    service = world[0]
    conference = service.create_conference(CUSTOMER)
    _, participant = join(service, conference)
    service.participant_left(participant.id, hangup_by="remote", reason="normal")
    service.participant_media_started(participant.id)  # a late first packet must not revive it
    assert service.get_conferencecall(CUSTOMER, participant.id).status == "leaved"


def test_list_pages_newest_first(world: tuple) -> None:
    service = world[0]
    created = [service.create_conference(CUSTOMER, name=str(i)) for i in range(5)]
    first = service.list_conferences(CUSTOMER, page_size=2)
    second = service.list_conferences(CUSTOMER, page_size=2, page_token=first.next_page_token)
    third = service.list_conferences(CUSTOMER, page_size=2, page_token=second.next_page_token)
    names = [c.name for page in (first, second, third) for c in page.items]  # type: ignore[attr-defined]
    assert names == ["4", "3", "2", "1", "0"]
    assert first.next_page_token == created[3].tm_create


def test_recover_after_a_crash_closes_calls_and_recordings(world: tuple, tmp_path: Path) -> None:
    service, _, _, _ = world

    async def record() -> tuple[Conference, Conferencecall, str]:
        conference = service.create_conference(CUSTOMER)
        _, participant = join(service, conference)
        return conference, participant, service.start_recording(CUSTOMER, conference.id).recording_id

    conference, participant, recording_id = asyncio.run(record())
    path = service.recording_path(service.get_recording(CUSTOMER, recording_id))
    path.parent.mkdir(parents=True, exist_ok=True)
    writer = WavWriter(path, 8000)
    writer.write(b"\x01\x00" * 8000)
    writer.close()
    with open(path, "ab") as file:  # audio written after the last header update, as a crash leaves it
        file.write(b"\x02\x00" * 4000)

    restarted = ConferenceService(Store(tmp_path / "db.sqlite3"), EventBus(), tmp_path / "recordings")
    restarted.recover()
    assert restarted.get_conferencecall(CUSTOMER, participant.id).status == "leaved"
    assert restarted.get_call(CUSTOMER, participant.reference_id).hangup_reason == "server restart"
    recovered = restarted.get_conference(CUSTOMER, conference.id)
    assert recovered.status == "progressing" and recovered.conferencecall_ids == []
    assert recovered.recording_id == NIL_UUID and recovered.recording_ids == [recording_id]
    recording = restarted.get_recording(CUSTOMER, recording_id)
    assert recording.status == "ended" and recording.duration == 1.5
    assert isinstance(recording, Recording)


def test_mute_directions_are_stored_published_and_applied(world: tuple) -> None:
    service, calls, _, events = world
    call, _ = join(service, service.create_conference(CUSTOMER))
    assert call.mute_direction == ""
    assert service.set_mute(CUSTOMER, call.id, "out").mute_direction == "out"
    assert service.toggle_self_mute(call.id).mute_direction == "both"
    assert service.toggle_self_mute(call.id).mute_direction == "out"
    assert calls.mutes == [(call.id, "out"), (call.id, "both"), (call.id, "out")]
    assert [e.data["mute_direction"] for e in events if e.type == "call_updated"][-3:] == ["out", "both", "out"]
    with pytest.raises(InvalidRequest):
        service.set_mute(CUSTOMER, call.id, "sideways")
    with pytest.raises(NotFound):
        service.set_mute(OTHER, call.id, "in")


def test_a_call_that_is_over_cannot_be_muted(world: tuple) -> None:
    service, _, _, _ = world
    call, participant = join(service, service.create_conference(CUSTOMER))
    service.participant_left(participant.id, hangup_by="remote", reason="normal")
    with pytest.raises(Conflict):
        service.set_mute(CUSTOMER, call.id, "in")


def test_media_figures_are_live_while_in_and_final_after_leaving(world: tuple) -> None:
    service, calls, _, _ = world
    call, participant = join(service, service.create_conference(CUSTOMER))
    assert service.get_conferencecall(CUSTOMER, participant.id).media == {}
    calls.live[call.id] = {"codec": "PCMU/8000", "packets_received": 5}
    assert service.get_conferencecall(CUSTOMER, participant.id).media["packets_received"] == 5
    listed = service.list_conferencecalls(CUSTOMER).items
    assert [item.media for item in listed if item.id == participant.id] == [{"codec": "PCMU/8000",
                                                                            "packets_received": 5}]
    service.participant_left(participant.id, hangup_by="remote", reason="normal",
                             media={"codec": "PCMU/8000", "packets_received": 250})
    calls.live[call.id] = {"codec": "stale"}
    stored = service.get_conferencecall(CUSTOMER, participant.id)
    assert stored.status == "leaved" and stored.media == {"codec": "PCMU/8000", "packets_received": 250}


def test_a_recording_is_capped_at_24_hours_and_a_full_one_ends_cleanly(world: tuple) -> None:
    service, _, media, events = world

    async def scenario() -> None:
        conference = service.create_conference(CUSTOMER)
        recording_id = service.start_recording(CUSTOMER, conference.id).recording_id
        assert media.options[recording_id] == (False, 24 * 3600.0)
        service.recording_full(conference.id, "00000000-0000-4000-8000-000000000000")  # not this one: ignored
        assert service.get_conference(CUSTOMER, conference.id).recording_id == recording_id
        service.recording_full(conference.id, recording_id)
        assert service.get_conference(CUSTOMER, conference.id).recording_id == NIL_UUID
        await asyncio.sleep(0)
        recording = service.get_recording(CUSTOMER, recording_id)
        assert recording.status == "ended" and recording.error == ""
        again = service.start_recording(CUSTOMER, conference.id)
        assert again.recording_ids == [recording_id, again.recording_id]

    asyncio.run(scenario())
    assert "recording_failed" not in [e.type for e in events]


def test_a_write_error_ends_the_recording_with_an_event_and_the_conference_goes_on(world: tuple) -> None:
    service, calls, _, events = world

    async def scenario() -> None:
        conference = service.create_conference(CUSTOMER)
        _, participant = join(service, conference)
        recording_id = service.start_recording(CUSTOMER, conference.id).recording_id
        service.recording_failed(f"{recording_id}/some-track", "OSError: [Errno 28] No space left on device")
        assert service.get_conference(CUSTOMER, conference.id).recording_id == recording_id  # a track: not the mix
        service.recording_failed(recording_id, "OSError: [Errno 28] No space left on device")
        service.recording_failed(recording_id, "OSError: again")  # reported once
        await asyncio.sleep(0)
        after = service.get_conference(CUSTOMER, conference.id)
        assert after.status == "progressing" and after.recording_id == NIL_UUID
        assert service.get_conferencecall(CUSTOMER, participant.id).status == "joined"
        recording = service.get_recording(CUSTOMER, recording_id)
        assert recording.status == "ended" and "No space left" in recording.error

    asyncio.run(scenario())
    failed = [e for e in events if e.type == "recording_failed"]
    assert len(failed) == 1 and "No space left" in failed[0].to_json()["data"]["error"]
    assert calls.hung_up == []


def test_tracks_are_listed_when_the_recording_ends_and_found_by_conferencecall(world: tuple) -> None:
    service, _, media, _ = world

    async def scenario() -> None:
        conference = service.create_conference(CUSTOMER)
        call, participant = join(service, conference)
        recording_id = service.start_recording(CUSTOMER, conference.id, tracks=True).recording_id
        assert media.options[recording_id][0] is True
        track_path = service.recordings_dir / recording_id / f"{call.id}.wav"
        media.stop_recording = lambda conference_id: _finished(  # type: ignore[method-assign]
            RecordingResult(recording_id, service.recordings_dir / f"{recording_id}.wav", 8000, 16000,
                            tracks=(TrackResult(call.id, track_path, 0.5, 4000),)))
        recording = await asyncio.wait_for(service.stop_recording(CUSTOMER, conference.id)[1], 1)
        assert recording.tracks == [{"conferencecall_id": participant.id, "call_id": call.id,
                                     "filename": f"{recording_id}/{call.id}.wav", "offset": 0.5, "duration": 0.5}]
        stored = service.get_recording(CUSTOMER, recording_id)
        assert service.track_path(stored, participant.id) == track_path
        with pytest.raises(NotFound):
            service.track_path(stored, OTHER)

    asyncio.run(scenario())


def _finished(result: RecordingResult) -> Future[RecordingResult]:
    future: Future[RecordingResult] = Future()
    future.set_result(result)
    return future


def test_recover_repairs_the_tracks_a_crash_left_behind(world: tuple, tmp_path: Path) -> None:
    service = world[0]

    async def record() -> tuple[str, str, str]:
        conference = service.create_conference(CUSTOMER)
        call, participant = join(service, conference)
        return service.start_recording(CUSTOMER, conference.id, tracks=True).recording_id, call.id, participant.id

    recording_id, call_id, participant_id = asyncio.run(record())
    for path, samples in ((service.recordings_dir / f"{recording_id}.wav", 8000),
                          (service.recordings_dir / recording_id / f"{call_id}.wav", 4000)):
        path.parent.mkdir(parents=True, exist_ok=True)
        WavWriter(path, 8000).close()
        with open(path, "ab") as file:  # nothing flushed into the header before the crash
            file.write(b"\x01\x00" * samples)
    restarted = ConferenceService(Store(tmp_path / "db.sqlite3"), EventBus(), tmp_path / "recordings")
    restarted.recover()
    recording = restarted.get_recording(CUSTOMER, recording_id)
    assert recording.duration == 1.0
    assert recording.tracks == [{"conferencecall_id": participant_id, "call_id": call_id,
                                 "filename": f"{recording_id}/{call_id}.wav", "offset": 0.0, "duration": 0.5}]
