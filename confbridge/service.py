"""The conference service: the lifecycle rules of conferences, participants, calls and recordings.

Every status change is stored first and published second. The service never talks SIP or RTP: it
asks a `CallControl` to hang calls up and a `RecordingControl` to start and stop recordings, and
learns what happened on the wire through `participant_media_started` and `participant_left`.
"""

from __future__ import annotations

import asyncio
import functools
import logging
import re
import time
from collections.abc import Callable, Iterator
from concurrent.futures import Future
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Concatenate, ParamSpec, Protocol, TypeVar, cast

from recorder.wav import repair_header
from recorder.worker import RecordingResult, TrackResult

from .actions import checked_actions
from .errors import ConferenceFull, Conflict, InvalidRequest, NotFound
from .events import Event, EventBus, resource_event, resource_topics
from .models import (
    GAIN_RANGE_DB,
    MUTE_DIRECTIONS,
    Call,
    CallStatus,
    Conference,
    Conferencecall,
    ConferencecallStatus,
    ConferenceStatus,
    ConferenceType,
    Recording,
    RecordingStatus,
    Resource,
    Transcribe,
    TranscribeStatus,
    moves_forward,
    new_direct_hash,
    new_id,
)
from .store import R, Store
from .supervision import HEALTH_INTERVAL, Supervisor
from .timestamps import NIL_UUID, now_timestamp, seconds_since

logger = logging.getLogger(__name__)

ACTIVE_PARTICIPANT = (ConferencecallStatus.JOINING, ConferencecallStatus.JOINED, ConferencecallStatus.LEAVING)
KICKABLE = (ConferencecallStatus.JOINING, ConferencecallStatus.JOINED)
RECORDING_MAX_SECONDS = 24 * 3600.0
"""A recording ends by itself after this much audio (the API's 24 h cap)."""
PARTICIPANT_MAX_SECONDS = 24 * 3600.0
"""A participant older than this fails its health checks (the API's 24 h limit)."""
CONNECT_SEATS = 2
"""A `connect` conference bridges exactly two participants."""
LANGUAGE_RE = re.compile(r"[A-Za-z]{2,3}(-[A-Za-z0-9]{2,8})*")
"""A BCP 47 language tag as transcription wants it (en-US, de, pt-BR, yue-Hant-HK)."""
CONFERENCE_FIELDS: dict[str, type] = {"name": str, "detail": str, "data": dict, "timeout": int, "pre_actions": list,
                                      "post_actions": list}
"""What `update_conference` may change, with the JSON type of each (create takes these and `type`)."""
MAX_TIMEOUT = 10 * 365 * 24 * 3600
"""The longest conference timeout: ten years (anything longer is no timeout in practice)."""

P = ParamSpec("P")
T = TypeVar("T")


class CallControl(Protocol):
    """What the service needs from the telephony side."""

    def hang_up(self, call_id: str, reason: str) -> bool:
        """End a call; `ConferenceService.participant_left` follows once it is over.

        False when there is no such call in progress (nothing will follow).
        """

    def cancel(self, call_id: str) -> bool:
        """Stop ringing a call we placed; `ConferenceService.call_failed` follows. False if not ringing."""

    def apply_controls(self, call: Call) -> None:
        """Put a call's mute direction, hold and gains into effect on its media."""

    def media_statistics(self, call_id: str) -> dict[str, Any] | None:
        """The live media figures of a call (None when it has no media)."""

    def media_idle(self, call_id: str) -> float | None:
        """Seconds since the call's peer was last heard (0 while it is not expected to send); None without media."""


class RecordingControl(Protocol):
    """What the service needs from the media side."""

    def start_recording(self, conference_id: str, recording_id: str, path: Path, *, tracks: bool = False,
                        max_seconds: float | None = None) -> int:
        """Start writing the conference's mix to `path` (and each participant's own track, with `tracks`), at most
        `max_seconds` of it; returns the sample rate."""

    def stop_recording(self, conference_id: str) -> Future[RecordingResult]:
        """Stop the conference's recording; the future resolves when the file is complete."""


def _checked_timeout(value: object) -> int:
    """A conference timeout: whole seconds, 0 for none."""
    if isinstance(value, bool) or not isinstance(value, int) or not 0 <= value <= MAX_TIMEOUT:
        raise InvalidRequest(f"timeout must be 0 (none) or a whole number of seconds up to {MAX_TIMEOUT}")
    return value


@dataclass
class Page:
    """One page of a list."""

    items: list[Resource]
    next_page_token: str

    def to_json(self) -> dict[str, Any]:
        """`{"result": [...], "next_page_token": "..."}`."""
        return {"result": [item.to_json() for item in self.items], "next_page_token": self.next_page_token}


def _transactional(
        method: Callable[Concatenate[ConferenceService, P], T]) -> Callable[Concatenate[ConferenceService, P], T]:
    """Run a service operation as one database transaction, its events published once it has committed."""
    def run(self: ConferenceService, *args: P.args, **kwargs: P.kwargs) -> T:
        with self._atomic():
            return method(self, *args, **kwargs)

    return functools.update_wrapper(cast("Callable[Concatenate[ConferenceService, P], T]", run), method)


class ConferenceService:
    """Conferences and everything in them, for every customer.

    Each operation is one transaction: a crash leaves every change of it or none. Time-driven rules (conference
    timeouts, participant health checks) run through `get_timer()` / `handle_timer(now)` on the `clock` given.
    """

    def __init__(self, store: Store, events: EventBus, recordings_dir: Path, *,
                 recording_max_seconds: float = RECORDING_MAX_SECONDS, health_interval: float = HEALTH_INTERVAL,
                 clock: Callable[[], float] = time.monotonic) -> None:
        self.store = store
        self.events = events
        self.recordings_dir = recordings_dir
        self.recording_max_seconds = recording_max_seconds
        self.calls: CallControl | None = None
        self.media: RecordingControl | None = None
        self.supervisor = Supervisor(health_interval)
        self.clock = clock
        self.on_timer_changed: Callable[[], None] | None = None
        """Told when `get_timer()` may have moved earlier (the asyncio adapter re-arms its timer)."""
        self._recordings_done: dict[str, asyncio.Future[Recording]] = {}
        self._pending_events: list[Event] | None = None
        """Events of the transaction in progress, published when it commits (None outside one)."""
        self.closing = False
        """Set while the server shuts down: calls end, but no conference ends because of it (a `connect`
        conference whose participants drop out with the server is still there after a restart)."""

    def attach(self, calls: CallControl, media: RecordingControl) -> None:
        """Connect the telephony and media sides (they are built after the service)."""
        self.calls = calls
        self.media = media

    # -- storage helpers --------------------------------------------------------------------------

    @contextmanager
    def _atomic(self) -> Iterator[None]:
        """One transaction (nested blocks join the outer one); its events go out after the commit, or never."""
        if self._pending_events is not None:
            yield
            return
        self._pending_events = []
        try:
            with self.store.atomic():
                yield
        except BaseException:
            self._pending_events = None
            raise
        pending, self._pending_events = self._pending_events, None
        for event in pending:
            self.events.publish_event(event)

    def _save(self, resource: Resource, event: str | None) -> None:
        if hasattr(resource, "tm_update"):
            resource.tm_update = now_timestamp()
        self.store.save(resource)
        if event:
            if self._pending_events is not None:
                self._pending_events.append(resource_event(event, resource))
            else:
                self.events.publish(event, resource)

    def _get(self, model: type[R], resource_id: str, customer_id: str | None) -> R:
        resource = self.store.get(model, resource_id)
        if resource is None or (customer_id is not None and resource.customer_id != customer_id):
            raise NotFound(f"{model.__name__.lower()} {resource_id} not found")
        return resource

    def _page(self, model: type[R], customer_id: str, page_size: int, page_token: str | None) -> Page:
        items = self.store.page(model, customer_id, page_size=page_size, page_token=page_token)
        token = getattr(items[-1], "tm_create", "") if items else ""
        return Page(list(items), token)

    def _set_status(self, resource: Call | Conference | Conferencecall | Recording | Transcribe, status: Any,
                    event: str) -> None:
        if not moves_forward(resource.status, status):
            raise Conflict(f"{type(resource).__name__.lower()} {resource.id} is {resource.status}, "
                           f"it cannot become {status}")
        resource.status = status
        self._save(resource, event)

    # -- conferences ------------------------------------------------------------------------------

    @_transactional
    def create_conference(self, customer_id: str, *, type: str = "conference", name: str = "", detail: str = "",
                          data: dict[str, Any] | None = None, timeout: int = 0,
                          pre_actions: list[dict[str, Any]] | None = None,
                          post_actions: list[dict[str, Any]] | None = None) -> Conference:
        """Create a conference; it is `progressing` (ready for calls) when this returns."""
        try:
            conference_type = ConferenceType(type)
        except ValueError:
            raise InvalidRequest(f"type must be one of {', '.join(t.value for t in ConferenceType)}") from None
        conference = Conference(id=new_id(), customer_id=customer_id, type=conference_type, name=name, detail=detail,
                                data=data or {}, timeout=_checked_timeout(timeout),
                                pre_actions=checked_actions(pre_actions, "pre_actions"),
                                post_actions=checked_actions(post_actions, "post_actions"),
                                direct_hash=self._unused_direct_hash())
        self._save(conference, "conference_created")
        self._set_status(conference, ConferenceStatus.PROGRESSING, "conference_updated")
        self._watch_timeout(conference)
        logger.info("conference %s created (%s, hash %s, timeout %d s)", conference.id, conference.type,
                    conference.direct_hash, conference.timeout)
        return conference

    def _unused_direct_hash(self) -> str:
        direct_hash = new_direct_hash()
        while self.store.find(Conference, direct_hash=direct_hash):
            direct_hash = new_direct_hash()
        return direct_hash

    def get_conference(self, customer_id: str | None, conference_id: str) -> Conference:
        """A conference; NotFound if it does not exist or belongs to someone else."""
        return self._get(Conference, conference_id, customer_id)

    def list_conferences(self, customer_id: str, page_size: int = 100, page_token: str | None = None) -> Page:
        """A page of the customer's conferences that are not deleted, newest first."""
        return self._page(Conference, customer_id, page_size, page_token)

    @_transactional
    def update_conference(self, customer_id: str | None, conference_id: str, changes: dict[str, Any]) -> Conference:
        """Change a conference's name, detail, data, timeout or actions (`changes` holds those given; a `type`
        must be the one it has: type is immutable). A changed timeout counts from the conference's creation."""
        conference = self.get_conference(customer_id, conference_id)
        if "type" in changes and changes["type"] != conference.type.value:
            raise InvalidRequest(f"type is immutable: conference {conference_id} is a {conference.type} conference")
        unknown = sorted(set(changes) - {*CONFERENCE_FIELDS, "type"})
        if unknown:
            raise InvalidRequest(f"unknown fields {', '.join(unknown)}; a conference update may change "
                                 f"{', '.join(CONFERENCE_FIELDS)}")
        if conference.status in (ConferenceStatus.TERMINATING, ConferenceStatus.TERMINATED):
            raise Conflict(f"conference {conference_id} is {conference.status}; it can no longer be changed")
        if "pre_actions" in changes:
            conference.pre_actions = checked_actions(changes["pre_actions"], "pre_actions")
        if "post_actions" in changes:
            conference.post_actions = checked_actions(changes["post_actions"], "post_actions")
        if "timeout" in changes:
            conference.timeout = _checked_timeout(changes["timeout"])
        for name in ("name", "detail", "data"):
            if name in changes:
                setattr(conference, name, changes[name])
        self._save(conference, "conference_updated")
        if "timeout" in changes:
            self._watch_timeout(conference)
        logger.info("conference %s updated (%s)", conference.id, ", ".join(sorted(changes)) or "nothing")
        return conference

    @_transactional
    def regenerate_direct_hash(self, customer_id: str | None, conference_id: str) -> Conference:
        """Give a conference a new direct hash (one without gets its first): the old URI stops dialling in at once."""
        conference = self.get_conference(customer_id, conference_id)
        if conference.status is ConferenceStatus.TERMINATED:
            raise Conflict(f"conference {conference_id} is terminated")
        old, conference.direct_hash = conference.direct_hash, self._unused_direct_hash()
        self._save(conference, "conference_updated")
        logger.info("conference %s: direct hash %s replaced by %s", conference.id, old or "(none)",
                    conference.direct_hash)
        return conference

    def conference_for_direct_hash(self, direct_hash: str) -> Conference | None:
        """The progressing conference a direct hash dials into, if any."""
        if not direct_hash:
            return None
        found = self.store.find(Conference, direct_hash=direct_hash.lower())
        if found and found[0].status is ConferenceStatus.PROGRESSING:
            return found[0]
        return None

    @_transactional
    def delete_conference(self, customer_id: str | None, conference_id: str) -> Conference:
        """Terminate a conference: every participant is kicked, then it is `terminated`."""
        conference = self.get_conference(customer_id, conference_id)
        if conference.status in (ConferenceStatus.TERMINATING, ConferenceStatus.TERMINATED):
            raise Conflict(f"conference {conference_id} is already {conference.status}")
        self._terminate(conference, "conference terminated")
        return self.get_conference(customer_id, conference_id)

    def _terminate(self, conference: Conference, reason: str) -> None:
        """`terminating`: recording and transcription end, everyone is kicked; `terminated` once nobody is left."""
        self._set_status(conference, ConferenceStatus.TERMINATING, "conference_updated")
        self.supervisor.unwatch_conference(conference.id)
        logger.info("conference %s terminating (%s)", conference.id, reason)
        if conference.recording_id != NIL_UUID:
            self._end_recording(conference)
        if conference.transcribe_id != NIL_UUID:
            self._end_transcribe(conference)
        for participant in self.store.find(Conferencecall, conference_id=conference.id):
            if participant.status in KICKABLE:
                self._kick(participant, reason)
        self._terminate_if_empty(conference.id)

    def _terminate_if_empty(self, conference_id: str) -> None:
        conference = self._get(Conference, conference_id, None)
        if conference.status is not ConferenceStatus.TERMINATING:
            return
        if any(p.status in ACTIVE_PARTICIPANT for p in self.store.find(Conferencecall, conference_id=conference.id)):
            return
        conference.tm_delete = now_timestamp()
        self._set_status(conference, ConferenceStatus.TERMINATED, "conference_deleted")
        logger.info("conference %s terminated", conference.id)

    def _watch_timeout(self, conference: Conference) -> None:
        """Time the conference out `timeout` seconds after its creation (now, if that has passed already)."""
        if conference.timeout <= 0 or conference.status is not ConferenceStatus.PROGRESSING:
            self.supervisor.unwatch_conference(conference.id)
            return
        remaining = max(0.0, conference.timeout - seconds_since(conference.tm_create))
        self.supervisor.watch_conference(conference.id, self.clock() + remaining)
        self._timer_changed()

    def _timer_changed(self) -> None:
        if self.on_timer_changed is not None:
            self.on_timer_changed()

    # -- timeouts and health checks ---------------------------------------------------------------

    def get_timer(self) -> float | None:
        """When `handle_timer` next has something to do, on `clock` (None: nothing is timed)."""
        return self.supervisor.get_timer()

    @_transactional
    def handle_timer(self, now: float) -> None:
        """Time out the conferences due at `now` and run the participants' health checks that are due."""
        due = self.supervisor.handle_timer(now)
        for conference_id in due.expired:
            conference = self.store.get(Conference, conference_id)
            if conference is not None and conference.status is ConferenceStatus.PROGRESSING:
                logger.info("conference %s: timeout of %d s expired", conference_id, conference.timeout)
                self._terminate(conference, "conference timeout")
        self._check_health(due.checks)

    def _check_health(self, conferencecall_ids: list[str]) -> None:
        """Run the health checks of these participants: their statuses are read in three queries for all of them,
        and only a participant to be kicked is read whole."""
        participants = self.store.columns_of(Conferencecall, conferencecall_ids,
                                             ("status", "conference_id", "reference_id"))
        conferences = self.store.columns_of(Conference, list({row[1] for row in participants.values()}),
                                            ("status",))
        calls = self.store.columns_of(Call, [row[2] for row in participants.values()], ("status",))
        for conferencecall_id in conferencecall_ids:
            row = participants.get(conferencecall_id)
            if row is None or row[0] not in KICKABLE:
                self.supervisor.unwatch_participant(conferencecall_id)
                continue
            _, conference_id, call_id = row
            problem = self._health_problem(conferences.get(conference_id, (None,))[0],
                                           calls.get(call_id, (None,))[0], call_id,
                                           self.supervisor.age(conferencecall_id, self.clock()))
            if problem:
                logger.info("conference %s: %s failed a health check (%d in a row): %s", conference_id,
                            conferencecall_id, self.supervisor.failures(conferencecall_id) + 1, problem)
            if self.supervisor.report(conferencecall_id, not problem):
                logger.warning("conference %s: removing %s after %d failed health checks (%s)", conference_id,
                               conferencecall_id, self.supervisor.failures_to_kick, problem)
                self._kick(self._get(Conferencecall, conferencecall_id, None), f"health check failed: {problem}")

    def _health_problem(self, conference_status: str | None, call_status: str | None, call_id: str,
                        age: float) -> str:
        """What is wrong with a participant ("" when healthy): its call must be up with its media flowing, its
        conference progressing, and the participant younger than 24 hours."""
        if conference_status != ConferenceStatus.PROGRESSING:
            return "conference is not progressing"
        if call_status != CallStatus.PROGRESSING:
            return f"call is {call_status or 'gone'}"
        if age >= PARTICIPANT_MAX_SECONDS:
            return "participant is 24 hours old"
        idle = self.calls.media_idle(call_id) if self.calls is not None else None
        if idle is None:
            return "call has no media"
        if idle >= self.supervisor.interval:
            return f"no media for {idle:.1f} s"
        return ""

    # -- participants -----------------------------------------------------------------------------

    @_transactional
    def admit_call(self, conference: Conference, *, source: dict[str, str], destination: dict[str, str],
                   call_type: str = "sip") -> tuple[Call, Conferencecall]:
        """An incoming call for a conference: create the call and its conferencecall (`joining`).

        `call_type` says what carries it: "sip", or "bot" / "websocket" for participants without SIP.
        """
        conference = self.get_conference(None, conference.id)
        if conference.status is not ConferenceStatus.PROGRESSING:
            raise Conflict(f"conference {conference.id} is {conference.status}")
        self._check_seats(conference)
        call = Call(id=new_id(), customer_id=conference.customer_id, type=call_type, direction="incoming",
                    source=source, destination=destination, status=CallStatus.PROGRESSING,
                    conference_id=conference.id, tm_progressing=now_timestamp())
        return call, self._new_participant(conference, call, "call_created")

    def _new_participant(self, conference: Conference, call: Call, call_event: str) -> Conferencecall:
        participant = Conferencecall(id=new_id(), customer_id=conference.customer_id, conference_id=conference.id,
                                     reference_type="call", reference_id=call.id)
        call.conferencecall_id = participant.id
        self._save(call, call_event)
        self._save(participant, "conferencecall_created")
        self.supervisor.watch_participant(participant.id, self.clock())
        self._timer_changed()
        logger.info("conference %s: call %s joining as %s", conference.id, call.id, participant.id)
        return participant

    def _check_seats(self, conference: Conference) -> None:
        """A `connect` conference takes no third participant (ConferenceFull)."""
        if conference.type is not ConferenceType.CONNECT:
            return
        present = sum(1 for participant in self.store.find(Conferencecall, conference_id=conference.id)
                      if participant.status in KICKABLE)
        if present >= CONNECT_SEATS:
            raise ConferenceFull(f"connect conference {conference.id} already bridges {CONNECT_SEATS} participants")

    @_transactional
    def create_outgoing_call(self, customer_id: str, *, source: dict[str, str], destination: dict[str, str],
                             conference_id: str) -> Call:
        """A call we are about to place, to join `conference_id` once answered (`dialing`)."""
        conference = self.get_conference(customer_id, conference_id)
        if conference.status is not ConferenceStatus.PROGRESSING:
            raise Conflict(f"conference {conference_id} is {conference.status}; calls can only join while "
                           "it is progressing")
        self._check_seats(conference)
        call = Call(id=new_id(), customer_id=customer_id, direction="outgoing", source=source,
                    destination=destination, status=CallStatus.DIALING, conference_id=conference.id)
        self._save(call, "call_created")
        logger.info("call %s: dialing %s for conference %s", call.id, destination.get("target"), conference.id)
        return call

    @_transactional
    def call_ringing(self, call_id: str) -> None:
        """The callee is alerted (a 180/183 to our INVITE)."""
        call = self._get(Call, call_id, None)
        if call.status is CallStatus.DIALING:
            call.tm_ringing = now_timestamp()
            self._set_status(call, CallStatus.RINGING, "call_updated")

    @_transactional
    def call_answered(self, call_id: str) -> Conferencecall | None:
        """A call we placed was answered: it joins its conference (None when that is no longer possible)."""
        call = self._get(Call, call_id, None)
        if call.status in (CallStatus.DIALING, CallStatus.RINGING):
            call.tm_progressing = now_timestamp()
            self._set_status(call, CallStatus.PROGRESSING, "call_updated")
        conference = self._get(Conference, call.conference_id, None)
        if call.status is not CallStatus.PROGRESSING or conference.status is not ConferenceStatus.PROGRESSING:
            return None
        try:
            self._check_seats(conference)
        except ConferenceFull:
            logger.info("call %s: answered, but connect conference %s is full", call.id, conference.id)
            return None
        return self._new_participant(conference, call, "call_updated")

    @_transactional
    def call_failed(self, call_id: str, *, hangup_by: str, reason: str) -> None:
        """A call we placed ended before it was answered (rejected, cancelled, unreachable)."""
        call = self._get(Call, call_id, None)
        if call.status is CallStatus.HANGUP:
            return
        call.hangup_by, call.hangup_reason, call.tm_hangup = hangup_by, reason, now_timestamp()
        self._set_status(call, CallStatus.HANGUP, "call_hangup")
        logger.info("call %s: failed (%s by %s)", call.id, reason, hangup_by)

    @_transactional
    def hangup_call(self, customer_id: str | None, call_id: str) -> Call:
        """End a call: cancel it while it rings, hang it up (and leave its conference) once answered."""
        call = self._get(Call, call_id, customer_id)
        if self.calls is None:
            raise RuntimeError("no call control attached")
        if call.status in (CallStatus.DIALING, CallStatus.RINGING):
            self._set_status(call, CallStatus.CANCELING, "call_updated")
            if not self.calls.cancel(call.id):
                self.call_failed(call.id, hangup_by="local", reason="cancel")
        elif call.status is CallStatus.PROGRESSING:
            self._set_status(call, CallStatus.TERMINATING, "call_updated")
            participant = self.store.get(Conferencecall, call.conferencecall_id)
            if participant is not None and participant.status in KICKABLE:
                self._kick(participant, "hangup")
            elif not self.calls.hang_up(call.id, "hangup"):
                self.call_failed(call.id, hangup_by="local", reason="normal")
        else:
            raise Conflict(f"call {call_id} is {call.status}")
        return self._get(Call, call_id, customer_id)

    def dtmf_received(self, call_id: str, digit: str, duration_ms: int, method: str) -> None:
        """A caller pressed a key: publish `call_dtmf_received`."""
        call = self._get(Call, call_id, None)
        self.events.publish_data("call_dtmf_received", {
            "call_id": call.id, "conference_id": call.conference_id, "conferencecall_id": call.conferencecall_id,
            "digit": digit, "duration": duration_ms, "method": method}, call.customer_id,
            resource_topics(call.customer_id, "call", call.id, call.conference_id))
        logger.info("call %s: DTMF %s (%d ms, %s)", call.id, digit, duration_ms, method)

    @_transactional
    def participant_media_started(self, conferencecall_id: str) -> None:
        """The participant's audio reached the bridge: it is `joined`."""
        participant = self._get(Conferencecall, conferencecall_id, None)
        if participant.status is not ConferencecallStatus.JOINING:
            return
        self._set_status(participant, ConferencecallStatus.JOINED, "conferencecall_updated")
        conference = self._get(Conference, participant.conference_id, None)
        if participant.id not in conference.conferencecall_ids:
            conference.conferencecall_ids.append(participant.id)
            self._save(conference, "conference_updated")
        logger.info("conference %s: %s joined", conference.id, participant.id)

    @_transactional
    def participant_left(self, conferencecall_id: str, *, hangup_by: str, reason: str,
                         media: dict[str, Any] | None = None) -> None:
        """The participant's call is over: `leaved` (with its final media figures and why), and its call hung up.

        In a `connect` conference the other participant is then kicked and the conference terminates.
        """
        participant = self._get(Conferencecall, conferencecall_id, None)
        self.supervisor.unwatch_participant(participant.id)
        if media:
            participant.media = media
        if not participant.leave_reason:
            participant.leave_reason = reason
        if participant.status is not ConferencecallStatus.LEAVED:
            self._set_status(participant, ConferencecallStatus.LEAVED, "conferencecall_updated")
        call = self.store.get(Call, participant.reference_id)
        if call is not None and call.status is not CallStatus.HANGUP:
            call.hangup_by, call.hangup_reason, call.tm_hangup = hangup_by, reason, now_timestamp()
            self._set_status(call, CallStatus.HANGUP, "call_hangup")
        logger.info("conference %s: %s left (%s by %s)", participant.conference_id, participant.id, reason, hangup_by)
        self._leave_conference(participant)

    def _leave_conference(self, participant: Conferencecall) -> None:
        """Take a participant that is leaving or has left off its conference's list; a `connect` conference ends
        with it; a terminating one ends once empty."""
        conference = self._get(Conference, participant.conference_id, None)
        if participant.id in conference.conferencecall_ids:
            conference.conferencecall_ids.remove(participant.id)
            self._save(conference, "conference_updated")
        if (conference.type is ConferenceType.CONNECT and conference.status is ConferenceStatus.PROGRESSING
                and not self.closing):
            self._terminate(conference, "connect partner left")
        elif conference.status is ConferenceStatus.TERMINATING:
            self._terminate_if_empty(conference.id)

    @_transactional
    def kick(self, customer_id: str | None, conferencecall_id: str) -> Conferencecall:
        """Remove a participant: `leaving` now, `leaved` once its call has ended."""
        participant = self._get(Conferencecall, conferencecall_id, customer_id)
        if participant.status not in KICKABLE:
            raise Conflict(f"conferencecall {conferencecall_id} is {participant.status}; "
                           "only joining or joined participants can be kicked")
        self._kick(participant, "kicked")
        return self._get(Conferencecall, conferencecall_id, customer_id)

    def _kick(self, participant: Conferencecall, reason: str) -> None:
        self.supervisor.unwatch_participant(participant.id)
        participant.leave_reason = reason
        self._set_status(participant, ConferencecallStatus.LEAVING, "conferencecall_updated")
        if self.calls is None:
            raise RuntimeError("no call control attached")
        if not self.calls.hang_up(participant.reference_id, reason):
            self.participant_left(participant.id, hangup_by="local", reason=reason)
        else:
            self._leave_conference(participant)

    def get_conferencecall(self, customer_id: str | None, conferencecall_id: str) -> Conferencecall:
        """A participant, with its live media figures while it is in the conference."""
        return self._with_live_media(self._get(Conferencecall, conferencecall_id, customer_id))

    def list_conferencecalls(self, customer_id: str, page_size: int = 100, page_token: str | None = None) -> Page:
        """A page of the customer's participants, newest first."""
        page = self._page(Conferencecall, customer_id, page_size, page_token)
        for item in page.items:
            if isinstance(item, Conferencecall):
                self._with_live_media(item)
        return page

    def _with_live_media(self, participant: Conferencecall) -> Conferencecall:
        if participant.status in ACTIVE_PARTICIPANT and self.calls is not None:
            live = self.calls.media_statistics(participant.reference_id)
            if live is not None:
                participant.media = live
        return participant

    # -- participant controls ---------------------------------------------------------------------

    def _controlled_call(self, customer_id: str | None, call_id: str) -> Call:
        call = self._get(Call, call_id, customer_id)
        if call.status is not CallStatus.PROGRESSING:
            raise Conflict(f"call {call_id} is {call.status}; only a call in progress has controls")
        return call

    def _controls_changed(self, call: Call, changed: bool, what: str) -> Call:
        if changed:
            self._save(call, "call_updated")
            logger.info("call %s: %s (mute %r, hold %s, gain in %+.1f dB, out %+.1f dB)", call.id, what,
                        call.mute_direction or "none", call.hold, call.gain_in, call.gain_out)
        if self.calls is not None:
            self.calls.apply_controls(call)
        return call

    def set_mute(self, customer_id: str | None, call_id: str, direction: str) -> Call:
        """Set whose audio of a call is muted: "" (none), "in" (it is not heard), "out" (it hears nothing), "both"."""
        if direction not in MUTE_DIRECTIONS:
            raise InvalidRequest(f"mute direction must be one of in, out, both (or empty), not {direction!r}")
        return self._set_mute(self._controlled_call(customer_id, call_id), direction)

    def _set_mute(self, call: Call, direction: str) -> Call:
        changed = call.mute_direction != direction
        call.mute_direction = direction
        return self._controls_changed(call, changed, "mute")

    def mute(self, customer_id: str | None, call_id: str, direction: str) -> Call:
        """Add a mute direction ("in", "out" or "both") to what is muted already."""
        wanted = _requested(direction)
        call = self._controlled_call(customer_id, call_id)
        return self._set_mute(call, _DIRECTION_NAMES[_DIRECTIONS[call.mute_direction] | wanted])

    def unmute(self, customer_id: str | None, call_id: str, direction: str = "both") -> Call:
        """Take a mute direction away ("both", the default, unmutes completely)."""
        unwanted = _requested(direction)
        call = self._controlled_call(customer_id, call_id)
        return self._set_mute(call, _DIRECTION_NAMES[_DIRECTIONS[call.mute_direction] - unwanted])

    def toggle_self_mute(self, call_id: str) -> Call:
        """The caller's own mute key: its voice leaves the mix, or comes back (what it hears is unchanged)."""
        call = self._controlled_call(None, call_id)
        return self._set_mute(call, _DIRECTION_NAMES[_DIRECTIONS[call.mute_direction] ^ {"in"}])

    def set_hold(self, customer_id: str | None, call_id: str, hold: bool) -> Call:
        """Put a call on hold (neither heard nor hearing) or take it off."""
        call = self._controlled_call(customer_id, call_id)
        changed = call.hold != hold
        call.hold = hold
        return self._controls_changed(call, changed, "hold" if hold else "unhold")

    def set_gain(self, customer_id: str | None, call_id: str, direction: str, gain_db: object) -> Call:
        """Set the gain in dB of the caller's voice ("in"), of what it hears ("out"), or of both (`gain_db` as it
        came, from JSON say: anything but a number within range is refused)."""
        low, high = GAIN_RANGE_DB
        if isinstance(gain_db, bool) or not isinstance(gain_db, (int, float)) or not low <= gain_db <= high:
            raise InvalidRequest(f"gain must be a number of dB from {low:g} to {high:g}, not {gain_db!r}")
        directions = _requested(direction)
        call = self._controlled_call(customer_id, call_id)
        before = (call.gain_in, call.gain_out)
        if "in" in directions:
            call.gain_in = float(gain_db)
        if "out" in directions:
            call.gain_out = float(gain_db)
        return self._controls_changed(call, before != (call.gain_in, call.gain_out), "gain")

    def talking_changed(self, conferencecall_id: str, talking: bool) -> None:
        """A participant started or stopped talking: publish `talking_started` or `talking_stopped`."""
        participant = self._get(Conferencecall, conferencecall_id, None)
        self.events.publish_data("talking_started" if talking else "talking_stopped", {
            "conferencecall_id": participant.id, "conference_id": participant.conference_id,
            "call_id": participant.reference_id}, participant.customer_id,
            resource_topics(participant.customer_id, "conferencecall", participant.id, participant.conference_id))

    def get_call(self, customer_id: str | None, call_id: str) -> Call:
        """A call."""
        return self._get(Call, call_id, customer_id)

    def list_calls(self, customer_id: str, page_size: int = 100, page_token: str | None = None) -> Page:
        """A page of the customer's calls, newest first."""
        return self._page(Call, customer_id, page_size, page_token)

    def _startable(self, customer_id: str | None, conference_id: str, activity: str) -> Conference:
        """A conference that may start a recording or transcribe: progressing (else 400) and without one running
        already (else 409)."""
        conference = self.get_conference(customer_id, conference_id)
        if conference.status is not ConferenceStatus.PROGRESSING:
            raise InvalidRequest(f"conference {conference_id} is {conference.status}; "
                                 f"a {activity} can only start while it is progressing")
        active = getattr(conference, f"{activity}_id")
        if active != NIL_UUID:
            raise Conflict(f"conference {conference_id} already has an active {activity} ({active})")
        return conference

    # -- recordings -------------------------------------------------------------------------------

    @_transactional
    def start_recording(self, customer_id: str | None, conference_id: str, *, tracks: bool = False,
                        duration: int | None = None) -> Conference:
        """Start recording the conference's mix (only while progressing, one at a time), with `tracks` also each
        participant's own audio; it ends by itself after `duration` seconds, at most `recording_max_seconds`."""
        if duration is not None and (isinstance(duration, bool) or not isinstance(duration, int) or duration < 1):
            raise InvalidRequest("duration must be a whole number of seconds, at least 1")
        max_seconds = self.recording_max_seconds
        if duration and duration < max_seconds:  # compared as ints: a huge one must not overflow a float
            max_seconds = float(duration)
        conference = self._startable(customer_id, conference_id, "recording")
        if self.media is None:
            raise RuntimeError("no media attached")
        recording = Recording(id=new_id(), customer_id=conference.customer_id, reference_id=conference.id,
                              tm_start=now_timestamp())
        recording.filename = f"{recording.id}.wav"
        recording.sample_rate = self.media.start_recording(conference.id, recording.id,
                                                           self.recordings_dir / recording.filename, tracks=tracks,
                                                           max_seconds=max_seconds)
        self._save(recording, "recording_started")
        conference.recording_id = recording.id
        conference.recording_ids.append(recording.id)
        self._save(conference, "conference_updated")
        logger.info("conference %s: recording %s started", conference.id, recording.id)
        return conference

    @_transactional
    def stop_recording(self, customer_id: str | None,
                       conference_id: str) -> tuple[Conference, asyncio.Future[Recording]]:
        """Stop the active recording; the future resolves once its file is complete."""
        conference = self.get_conference(customer_id, conference_id)
        if conference.recording_id == NIL_UUID:
            raise Conflict(f"conference {conference_id} has no active recording")
        return conference, self._end_recording(conference)

    def _end_recording(self, conference: Conference) -> asyncio.Future[Recording]:
        assert self.media is not None
        recording = self._get(Recording, conference.recording_id, None)
        self._set_status(recording, RecordingStatus.STOPPING, "recording_updated")
        done: asyncio.Future[Recording] = asyncio.get_running_loop().create_future()
        self._recordings_done[recording.id] = done
        loop = asyncio.get_running_loop()
        self.media.stop_recording(conference.id).add_done_callback(
            lambda future: loop.call_soon_threadsafe(self._recording_finished, recording.id, future))
        conference.recording_id = NIL_UUID
        self._save(conference, "conference_updated")
        logger.info("conference %s: recording %s stopping", conference.id, recording.id)
        return done

    @_transactional
    def _recording_finished(self, recording_id: str, future: Future[RecordingResult]) -> None:
        try:
            result = future.result()
        except Exception as exc:  # the media side lost the recording: end it with the reason
            result = RecordingResult(recording_id, Path(), 8000, 0, f"{type(exc).__name__}: {exc}")
        recording = self._get(Recording, recording_id, None)
        recording.duration = round(result.duration, 3)
        recording.error = result.error or recording.error
        recording.tracks = [self._track_entry(recording, track, result.sample_rate) for track in result.tracks]
        recording.tm_end = now_timestamp()
        if recording.status is not RecordingStatus.ENDED:
            self._set_status(recording, RecordingStatus.ENDED, "recording_finished")
        logger.info("recording %s ended: %.2f s%s", recording.id, recording.duration,
                    f" ({recording.error})" if recording.error else "")
        done = self._recordings_done.pop(recording.id, None)
        if done is not None and not done.done():
            done.set_result(recording)

    def _track_entry(self, recording: Recording, track: TrackResult, sample_rate: int) -> dict[str, Any]:
        call = self.store.get(Call, track.name)
        entry: dict[str, Any] = {
            "conferencecall_id": call.conferencecall_id if call is not None else NIL_UUID, "call_id": track.name,
            "filename": str(track.path.relative_to(self.recordings_dir)), "offset": round(track.offset, 3),
            "duration": round(track.frames / sample_rate, 3)}
        if track.error:
            entry["error"] = track.error
        return entry

    @_transactional
    def recording_failed(self, recording_id: str, error: str) -> None:
        """The recorder could not write (a full disk, say): `recording_failed` is published and the recording ends
        with what was written; the conference goes on. A track that fails only marks its own entry."""
        recording = self.store.get(Recording, recording_id)
        if recording is None or recording.status is RecordingStatus.ENDED or recording.error:
            return
        recording.error = error
        self._save(recording, "recording_failed")
        logger.error("recording %s failed: %s", recording_id, error)
        for conference in self.store.find(Conference, recording_id=recording_id):
            self._end_recording(conference)

    @_transactional
    def recording_full(self, conference_id: str, recording_id: str) -> None:
        """A recording reached its maximum duration: it ends cleanly and the conference's `recording_id` clears."""
        conference = self.store.get(Conference, conference_id)
        if conference is None or conference.recording_id != recording_id:
            return
        logger.info("conference %s: recording %s reached its maximum duration", conference_id, recording_id)
        self._end_recording(conference)

    def get_recording(self, customer_id: str | None, recording_id: str) -> Recording:
        """A recording's metadata."""
        return self._get(Recording, recording_id, customer_id)

    def list_recordings(self, customer_id: str, page_size: int = 100, page_token: str | None = None) -> Page:
        """A page of the customer's recordings, newest first."""
        return self._page(Recording, customer_id, page_size, page_token)

    def _recover_tracks(self, recording: Recording) -> list[dict[str, Any]]:
        """The track files a recording cut off by a crash left behind, repaired (their offsets are lost: 0)."""
        tracks = []
        for path in sorted(self.recording_path(recording).with_suffix("").glob("*.wav")):
            try:
                frames, error = repair_header(path), None
            except (OSError, ValueError) as exc:
                frames, error = 0, f"recovery: {exc}"
            tracks.append(self._track_entry(recording, TrackResult(path.stem, path, 0.0, frames, error),
                                            recording.sample_rate))
        return tracks

    def track_path(self, recording: Recording, conferencecall_id: str) -> Path:
        """Where a participant's track of a recording is; NotFound if the recording has none for it."""
        for track in recording.tracks:
            if track.get("conferencecall_id") == conferencecall_id:
                return self.recordings_dir / str(track["filename"])
        raise NotFound(f"recording {recording.id} has no track of conferencecall {conferencecall_id}")

    def recording_path(self, recording: Recording) -> Path:
        """Where a recording's file is."""
        return self.recordings_dir / recording.filename

    # -- transcription ----------------------------------------------------------------------------

    @_transactional
    def start_transcribe(self, customer_id: str | None, conference_id: str, language: object) -> Conference:
        """Start transcribing the conference in `language` (a BCP 47 tag; only while progressing, one at a time)."""
        if not isinstance(language, str) or not language:
            raise InvalidRequest('language is required: a BCP 47 tag such as "en-US"')
        if not LANGUAGE_RE.fullmatch(language):
            raise InvalidRequest(f'language must be a BCP 47 tag such as "en-US", not {language!r}')
        conference = self._startable(customer_id, conference_id, "transcribe")
        transcribe = Transcribe(id=new_id(), customer_id=conference.customer_id, reference_id=conference.id,
                                language=language, tm_start=now_timestamp())
        self._save(transcribe, "transcribe_started")
        conference.transcribe_id = transcribe.id
        conference.transcribe_ids.append(transcribe.id)
        self._save(conference, "conference_updated")
        logger.info("conference %s: transcribe %s started (%s)", conference.id, transcribe.id, language)
        return conference

    @_transactional
    def stop_transcribe(self, customer_id: str | None, conference_id: str) -> Conference:
        """Stop the conference's transcription; `transcribe_id` clears, the transcribe is `done`."""
        conference = self.get_conference(customer_id, conference_id)
        if conference.transcribe_id == NIL_UUID:
            raise Conflict(f"conference {conference_id} has no active transcription")
        self._end_transcribe(conference)
        return conference

    def _end_transcribe(self, conference: Conference) -> None:
        transcribe = self.store.get(Transcribe, conference.transcribe_id)
        if transcribe is not None and transcribe.status is not TranscribeStatus.DONE:
            transcribe.tm_end = now_timestamp()
            self._set_status(transcribe, TranscribeStatus.DONE, "transcribe_stopped")
        logger.info("conference %s: transcribe %s stopped", conference.id, conference.transcribe_id)
        conference.transcribe_id = NIL_UUID
        self._save(conference, "conference_updated")

    def get_transcribe(self, customer_id: str | None, transcribe_id: str) -> Transcribe:
        """A transcribe."""
        return self._get(Transcribe, transcribe_id, customer_id)

    def list_transcribes(self, customer_id: str, page_size: int = 100, page_token: str | None = None) -> Page:
        """A page of the customer's transcribes, newest first."""
        return self._page(Transcribe, customer_id, page_size, page_token)

    # -- start-up ---------------------------------------------------------------------------------

    @_transactional
    def recover(self) -> None:
        """After a restart: calls and participants of the previous run are over (`leaved`, "server restart"),
        recordings are closed and repaired, transcriptions done, and conference timeouts run on."""
        for participant in self.store.find(Conferencecall):
            if participant.status in ACTIVE_PARTICIPANT:
                participant.status = ConferencecallStatus.LEAVED
                participant.leave_reason = participant.leave_reason or "server restart"
                self._save(participant, None)
        for call in self.store.find(Call):
            if call.status is not CallStatus.HANGUP:
                call.status, call.hangup_by, call.hangup_reason = CallStatus.HANGUP, "local", "server restart"
                call.tm_hangup = now_timestamp()
                self._save(call, None)
        for recording in self.store.find(Recording):
            if recording.status is not RecordingStatus.ENDED:
                try:
                    frames = repair_header(self.recording_path(recording))
                    recording.duration = round(frames / recording.sample_rate, 3)
                except (OSError, ValueError) as exc:
                    recording.error = f"recovery: {exc}"
                recording.tracks = self._recover_tracks(recording)
                recording.status, recording.tm_end = RecordingStatus.ENDED, now_timestamp()
                self._save(recording, None)
        for transcribe in self.store.find(Transcribe, status=TranscribeStatus.PROGRESSING):
            transcribe.status, transcribe.tm_end = TranscribeStatus.DONE, now_timestamp()
            self._save(transcribe, None)
        for conference in self.store.find(Conference):
            changed = (bool(conference.conferencecall_ids) or conference.recording_id != NIL_UUID
                       or conference.transcribe_id != NIL_UUID)
            conference.conferencecall_ids, conference.recording_id = [], NIL_UUID
            conference.transcribe_id = NIL_UUID
            if conference.status is ConferenceStatus.STARTING:
                conference.status, changed = ConferenceStatus.PROGRESSING, True
            elif conference.status is ConferenceStatus.TERMINATING:
                conference.status, conference.tm_delete, changed = ConferenceStatus.TERMINATED, now_timestamp(), True
            if changed:
                self._save(conference, None)
            self._watch_timeout(conference)


_DIRECTIONS: dict[str, frozenset[str]] = {"": frozenset(), "in": frozenset({"in"}), "out": frozenset({"out"}),
                                          "both": frozenset({"in", "out"})}
"""A mute direction as the set of sides it mutes."""
_DIRECTION_NAMES = {sides: name for name, sides in _DIRECTIONS.items()}


def _requested(direction: object) -> frozenset[str]:
    """The sides a request names: "in", "out" or "both"; InvalidRequest for anything else."""
    if direction not in ("in", "out", "both"):
        raise InvalidRequest(f'direction must be "in", "out" or "both", not {direction!r}')
    return _DIRECTIONS[str(direction)]
