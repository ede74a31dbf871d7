"""The conference rules of the VoIPBIN Conference API in the service, in fake time: connect bridges, timeouts,
health checks, transcription, direct hashes, actions, updates, and one transaction per operation."""

from __future__ import annotations

import asyncio
from pathlib import Path

import pytest

from confbridge.errors import ConferenceFull, Conflict, InvalidRequest, NotFound
from confbridge.events import Event, EventBus
from confbridge.models import Call, Conference, Conferencecall, Transcribe, sip_party
from confbridge.service import ConferenceService
from confbridge.store import Store
from confbridge.timestamps import NEVER, NIL_UUID
from tests.helpers.service_fakes import FakeCalls, FakeMedia

CUSTOMER = "5e4a0680-804e-11ec-8477-2fea5968d85b"
OTHER = "0f2a5a0c-0000-4000-8000-000000000001"


class FakeClock:
    """Time that moves only when told."""

    def __init__(self) -> None:
        self.now = 1000.0

    def __call__(self) -> float:
        return self.now


class World:
    """A service with fake calls, media and clock, and every event it published."""

    def __init__(self, tmp_path: Path) -> None:
        self.events: list[Event] = []
        self.bus = EventBus()
        self.bus.add_listener(self.events.append)
        self.clock = FakeClock()
        self.store = Store(tmp_path / "db.sqlite3")
        self.service = ConferenceService(self.store, self.bus, tmp_path / "recordings", health_interval=5.0,
                                         clock=self.clock)
        self.calls, self.media = FakeCalls(), FakeMedia()
        self.service.attach(self.calls, self.media)

    def join(self, conference: Conference) -> tuple[Call, Conferencecall]:
        call, participant = self.service.admit_call(conference, source=sip_party("sip:a@b"),
                                                    destination=sip_party("sip:c@d"))
        self.service.participant_media_started(participant.id)
        return call, participant

    def hang_ups_complete(self) -> None:
        """The BYEs the service sent are answered: each kicked participant has left."""
        for call_id, reason in self.calls.hung_up:
            call = self.service.get_call(None, call_id)
            if call.status != "hangup":
                self.service.participant_left(call.conferencecall_id, hangup_by="local", reason=reason)

    def advance(self, seconds: float, step: float = 1.0) -> None:
        """Move the clock on, running whatever falls due on the way."""
        end = self.clock.now + seconds
        while self.clock.now < end:
            self.clock.now = min(end, self.clock.now + step)
            self.service.handle_timer(self.clock.now)

    def participant(self, conferencecall_id: str) -> Conferencecall:
        return self.service.get_conferencecall(None, conferencecall_id)

    def conference(self, conference_id: str) -> Conference:
        return self.service.get_conference(None, conference_id)


@pytest.fixture
def world(tmp_path: Path) -> World:
    return World(tmp_path)


# -- connect ----------------------------------------------------------------------------------------

def test_connect_kicks_the_other_participant_when_one_leaves_then_terminates(world: World) -> None:
    conference = world.service.create_conference(CUSTOMER, type="connect")
    _, first = world.join(conference)
    second_call, second = world.join(conference)
    world.service.participant_left(first.id, hangup_by="remote", reason="normal")
    assert world.calls.hung_up == [(second_call.id, "connect partner left")]
    assert world.participant(second.id).status == "leaving"
    assert world.participant(second.id).leave_reason == "connect partner left"
    assert world.conference(conference.id).status == "terminating"
    world.hang_ups_complete()
    done = world.conference(conference.id)
    assert (done.status, done.conferencecall_ids) == ("terminated", [])
    assert done.tm_delete != NEVER
    assert [e.type for e in world.events][-1] == "conference_deleted"


def test_connect_refuses_a_third_participant_but_a_conference_takes_any_number(world: World) -> None:
    connect = world.service.create_conference(CUSTOMER, type="connect")
    world.join(connect)
    world.join(connect)
    with pytest.raises(ConferenceFull):
        world.join(connect)
    assert len(world.store.find(Conferencecall, conference_id=connect.id)) == 2
    room = world.service.create_conference(CUSTOMER, type="conference")
    for _ in range(5):
        world.join(room)
    assert len(world.conference(room.id).conferencecall_ids) == 5


def test_connect_kick_through_the_api_also_ends_the_bridge(world: World) -> None:
    conference = world.service.create_conference(CUSTOMER, type="connect")
    first_call, first = world.join(conference)
    second_call, _ = world.join(conference)
    world.service.kick(CUSTOMER, first.id)
    assert {call_id for call_id, _ in world.calls.hung_up} == {first_call.id, second_call.id}
    world.hang_ups_complete()
    assert world.conference(conference.id).status == "terminated"


def test_a_conference_stays_up_with_one_or_no_participant(world: World) -> None:
    conference = world.service.create_conference(CUSTOMER)
    _, first = world.join(conference)
    _, second = world.join(conference)
    world.service.participant_left(first.id, hangup_by="remote", reason="normal")
    world.service.participant_left(second.id, hangup_by="remote", reason="normal")
    assert world.conference(conference.id).status == "progressing"
    assert world.calls.hung_up == []


def test_type_is_immutable(world: World) -> None:
    conference = world.service.create_conference(CUSTOMER, type="connect")
    with pytest.raises(InvalidRequest, match="immutable"):
        world.service.update_conference(CUSTOMER, conference.id, {"type": "conference"})
    updated = world.service.update_conference(CUSTOMER, conference.id, {"type": "connect", "name": "renamed"})
    assert (updated.type, updated.name) == ("connect", "renamed")


def test_shutting_down_ends_calls_but_not_connect_conferences(world: World) -> None:
    conference = world.service.create_conference(CUSTOMER, type="connect")
    _, first = world.join(conference)
    _, second = world.join(conference)
    world.service.closing = True
    world.service.participant_left(first.id, hangup_by="local", reason="server shutdown")
    world.service.participant_left(second.id, hangup_by="local", reason="server shutdown")
    assert world.conference(conference.id).status == "progressing"


# -- timeout ----------------------------------------------------------------------------------------

def test_timeout_terminates_kicks_everyone_and_ends_recording_and_transcription(world: World) -> None:
    async def scenario() -> None:  # a recording ends through a future of the running loop
        conference = world.service.create_conference(CUSTOMER, timeout=30)
        call, participant = world.join(conference)
        world.service.start_recording(CUSTOMER, conference.id)
        world.service.start_transcribe(CUSTOMER, conference.id, "en-US")
        world.advance(29)
        assert world.conference(conference.id).status == "progressing"
        world.advance(1)
        terminating = world.conference(conference.id)
        assert terminating.status == "terminating"
        assert (terminating.recording_id, terminating.transcribe_id) == (NIL_UUID, NIL_UUID)
        assert world.calls.hung_up == [(call.id, "conference timeout")]
        assert world.store.get(Transcribe, terminating.transcribe_ids[0]).status == "done"
        world.hang_ups_complete()
        assert world.conference(conference.id).status == "terminated"
        assert world.participant(participant.id).leave_reason == "conference timeout"
        await asyncio.sleep(0)

    asyncio.run(scenario())


def test_timeout_with_nobody_there_terminates_at_once(world: World) -> None:
    conference = world.service.create_conference(CUSTOMER, timeout=5)
    world.advance(5)
    assert world.conference(conference.id).status == "terminated"
    statuses = [e.data["status"] for e in world.events if e.data.get("id") == conference.id]
    assert statuses == ["starting", "progressing", "terminating", "terminated"]


def test_zero_timeout_never_expires_and_an_update_starts_one_from_creation(world: World) -> None:
    conference = world.service.create_conference(CUSTOMER, timeout=0)
    world.advance(100, step=50)
    assert world.conference(conference.id).status == "progressing"
    world.service.update_conference(CUSTOMER, conference.id, {"timeout": 3600})
    world.advance(3599, step=600)
    assert world.conference(conference.id).status == "progressing"
    world.advance(2)
    assert world.conference(conference.id).status == "terminated"


def test_deleted_conference_does_not_time_out_again(world: World) -> None:
    conference = world.service.create_conference(CUSTOMER, timeout=10)
    world.service.delete_conference(CUSTOMER, conference.id)
    world.advance(20)
    assert [e.type for e in world.events].count("conference_deleted") == 1


# -- health checks ----------------------------------------------------------------------------------

def test_three_failed_health_checks_kick_a_participant_whose_media_stopped(world: World) -> None:
    conference = world.service.create_conference(CUSTOMER)
    call, participant = world.join(conference)
    world.advance(10)
    assert world.calls.hung_up == []
    world.calls.idle[call.id] = 12.0  # RTP stopped, no BYE
    world.advance(5)
    world.advance(5)
    assert world.calls.hung_up == [], "two failures are not enough"
    world.advance(5)
    assert world.calls.hung_up == [(call.id, "health check failed: no media for 12.0 s")]
    assert world.participant(participant.id).status == "leaving"
    assert world.conference(conference.id).conferencecall_ids == []


def test_a_passing_check_resets_the_failure_count(world: World) -> None:
    conference = world.service.create_conference(CUSTOMER)
    call, _ = world.join(conference)
    for idle in (9.0, 9.0, 0.1, 9.0, 9.0, 0.1, 9.0, 9.0):
        world.calls.idle[call.id] = idle
        world.advance(5)
    assert world.calls.hung_up == []
    world.calls.idle[call.id] = 9.0
    world.advance(5)
    assert world.calls.hung_up and world.calls.hung_up[0][0] == call.id


def test_a_participant_whose_call_has_no_media_any_more_is_kicked(world: World) -> None:
    conference = world.service.create_conference(CUSTOMER)
    call, _ = world.join(conference)
    world.calls.gone.add(call.id)
    world.advance(15)
    assert world.calls.hung_up == [(call.id, "health check failed: call has no media")]


def test_a_participant_older_than_24_hours_fails_its_checks(world: World) -> None:
    conference = world.service.create_conference(CUSTOMER)
    call, _ = world.join(conference)
    world.advance(24 * 3600 - 10, step=3600)
    assert world.calls.hung_up == []
    world.advance(30, step=5)
    assert world.calls.hung_up == [(call.id, "health check failed: participant is 24 hours old")]


def test_left_participants_are_no_longer_checked(world: World) -> None:
    conference = world.service.create_conference(CUSTOMER)
    _, participant = world.join(conference)
    world.service.participant_left(participant.id, hangup_by="remote", reason="normal")
    assert world.service.supervisor.watched_participants == 0
    assert world.service.get_timer() is None


# -- recording and transcription --------------------------------------------------------------------

def test_recording_duration_is_capped_by_the_server_maximum(world: World) -> None:
    conference = world.service.create_conference(CUSTOMER)
    started = world.service.start_recording(CUSTOMER, conference.id, duration=90)
    assert world.media.options[started.recording_id] == (False, 90.0)
    with pytest.raises(InvalidRequest):
        world.service.start_recording(CUSTOMER, conference.id, duration=0)


def test_transcription_rules(world: World) -> None:
    conference = world.service.create_conference(CUSTOMER)
    for bad in ("", None, 42, "english please", "e"):
        with pytest.raises(InvalidRequest):
            world.service.start_transcribe(CUSTOMER, conference.id, bad)
    started = world.service.start_transcribe(CUSTOMER, conference.id, "en-US")
    first = started.transcribe_id
    assert first != NIL_UUID and started.transcribe_ids == [first]
    transcribe = world.service.get_transcribe(CUSTOMER, first)
    assert (transcribe.status, transcribe.language, transcribe.reference_id) == ("progressing", "en-US", conference.id)
    with pytest.raises(Conflict):
        world.service.start_transcribe(CUSTOMER, conference.id, "de")
    stopped = world.service.stop_transcribe(CUSTOMER, conference.id)
    assert stopped.transcribe_id == NIL_UUID
    assert world.service.get_transcribe(CUSTOMER, first).status == "done"
    with pytest.raises(Conflict):
        world.service.stop_transcribe(CUSTOMER, conference.id)
    again = world.service.start_transcribe(CUSTOMER, conference.id, "pt-BR")
    assert again.transcribe_ids == [first, again.transcribe_id]
    with pytest.raises(NotFound):
        world.service.get_transcribe(OTHER, first)
    world.service.delete_conference(CUSTOMER, conference.id)
    with pytest.raises(InvalidRequest, match="progressing"):
        world.service.start_transcribe(CUSTOMER, conference.id, "en-US")
    kinds = [e.type for e in world.events if e.type.startswith("transcribe")]
    assert kinds == ["transcribe_started", "transcribe_stopped", "transcribe_started", "transcribe_stopped"]


# -- direct hash, actions, updates ------------------------------------------------------------------

def test_regenerating_the_direct_hash_retires_the_old_one_at_once(world: World) -> None:
    conference = world.service.create_conference(CUSTOMER)
    old = conference.direct_hash
    renewed = world.service.regenerate_direct_hash(CUSTOMER, conference.id)
    assert renewed.direct_hash != old and len(renewed.direct_hash) == 12
    assert world.service.conference_for_direct_hash(old) is None
    assert world.service.conference_for_direct_hash(renewed.direct_hash).id == conference.id
    assert world.events[-1].type == "conference_updated" and world.events[-1].data["direct_hash"] == renewed.direct_hash


def test_a_conference_without_a_hash_gets_one_and_a_terminated_one_none(world: World) -> None:
    conference = world.service.create_conference(CUSTOMER)
    bare = world.conference(conference.id)
    bare.direct_hash = ""
    world.store.save(bare)
    assert world.service.conference_for_direct_hash("") is None
    assert len(world.service.regenerate_direct_hash(CUSTOMER, conference.id).direct_hash) == 12
    world.service.delete_conference(CUSTOMER, conference.id)
    with pytest.raises(Conflict):
        world.service.regenerate_direct_hash(CUSTOMER, conference.id)
    with pytest.raises(NotFound):
        world.service.regenerate_direct_hash(OTHER, conference.id)


def test_actions_are_completed_and_stored(world: World) -> None:
    talk = {"type": "talk", "option": {"text": "Hello", "language": "en-US"}}
    conference = world.service.create_conference(CUSTOMER, pre_actions=[talk], post_actions=[{"type": "hangup"}])
    stored = world.conference(conference.id)
    assert stored.pre_actions == [{"id": NIL_UUID, "next_id": NIL_UUID, **talk}]
    assert stored.post_actions == [{"id": NIL_UUID, "next_id": NIL_UUID, "type": "hangup", "option": {}}]


@pytest.mark.parametrize("actions", [
    "talk", [1], [{"type": "dance"}], [{"option": {}}], [{"type": "talk", "option": "x"}],
    [{"type": "talk", "id": "nope"}], [{"type": "talk", "next_id": 7}], [{"type": "talk", "colour": "red"}],
    [{"type": "talk"}] * 101,
])
def test_bad_actions_are_refused(world: World, actions: object) -> None:
    with pytest.raises(InvalidRequest):
        world.service.create_conference(CUSTOMER, pre_actions=actions)  # type: ignore[arg-type]
    with pytest.raises(InvalidRequest):
        world.service.create_conference(CUSTOMER, post_actions=actions)  # type: ignore[arg-type]
    assert world.store.find(Conference) == [], "nothing is created by a refused request"


def test_update_changes_only_what_is_given_and_not_a_terminated_conference(world: World) -> None:
    conference = world.service.create_conference(CUSTOMER, name="a", detail="b", data={"k": 1})
    updated = world.service.update_conference(CUSTOMER, conference.id, {"detail": "c", "post_actions": []})
    assert (updated.name, updated.detail, updated.data) == ("a", "c", {"k": 1})
    for bad in ({"timeout": -1}, {"timeout": True}, {"status": "terminated"}, {"pre_actions": [{}]}):
        with pytest.raises(InvalidRequest):
            world.service.update_conference(CUSTOMER, conference.id, bad)
    world.service.delete_conference(CUSTOMER, conference.id)
    with pytest.raises(Conflict):
        world.service.update_conference(CUSTOMER, conference.id, {"name": "late"})


# -- statuses and transactions ----------------------------------------------------------------------

def test_statuses_only_move_forward(world: World) -> None:
    conference = world.service.create_conference(CUSTOMER)
    _, participant = world.join(conference)
    world.service.kick(CUSTOMER, participant.id)
    with pytest.raises(Conflict):
        world.service.kick(CUSTOMER, participant.id)
    world.hang_ups_complete()
    world.service.participant_media_started(participant.id)
    assert world.participant(participant.id).status == "leaved"
    world.service.delete_conference(CUSTOMER, conference.id)
    with pytest.raises(Conflict):
        world.service.delete_conference(CUSTOMER, conference.id)
    for resource in ("conference", "conferencecall"):
        order = {"conference": ["starting", "progressing", "terminating", "terminated"],
                 "conferencecall": ["joining", "joined", "leaving", "leaved"]}[resource]
        seen = [order.index(e.data["status"]) for e in world.events if e.type.startswith(resource + "_")
                and e.type.split("_")[0] == resource]
        assert seen == sorted(seen), (resource, seen)


def test_an_operation_is_one_transaction_and_its_events_follow_the_commit(world: World) -> None:
    conference = world.service.create_conference(CUSTOMER, type="connect")
    _, first = world.join(conference)
    _, second = world.join(conference)
    seen_committed: list[bool] = []
    reader = Store(world.store.path)
    world.bus.add_listener(lambda event: seen_committed.append(
        reader.get(Conference, conference.id) is not None
        and reader.get(Conference, conference.id).status == world.conference(conference.id).status))
    world.calls.gone.update(c.reference_id for c in (first, second))
    world.service.participant_left(first.id, hangup_by="remote", reason="normal")
    assert seen_committed and all(seen_committed), "every event is published after its transaction committed"
    assert reader.get(Conference, conference.id).status == "terminated"


def test_a_failing_operation_leaves_nothing_behind_and_publishes_nothing(world: World) -> None:
    conference = world.service.create_conference(CUSTOMER)
    _, participant = world.join(conference)
    before = len(world.events)

    def broken(call_id: str, reason: str) -> bool:
        raise RuntimeError("telephony down")

    world.calls.hang_up = broken  # type: ignore[method-assign]
    with pytest.raises(RuntimeError):
        world.service.kick(CUSTOMER, participant.id)
    assert len(world.events) == before
    assert Store(world.store.path).get(Conferencecall, participant.id).status == "joined", "rolled back"
