"""The conference service: the lifecycle rules of conferences, participants, calls and recordings.

Every status change is stored first and published second. The service never talks SIP or RTP: it
asks a `CallControl` to hang calls up and a `RecordingControl` to start and stop recordings, and
learns what happened on the wire through `participant_media_started` and `participant_left`.
"""

from __future__ import annotations

import asyncio
import logging
from concurrent.futures import Future
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Protocol

from recorder.wav import repair_header
from recorder.worker import RecordingResult, TrackResult

from .errors import Conflict, InvalidRequest, NotFound
from .events import EventBus, resource_topics
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
    moves_forward,
    new_direct_hash,
    new_id,
)
from .store import R, Store
from .timestamps import NIL_UUID, now_timestamp

logger = logging.getLogger(__name__)

ACTIVE_PARTICIPANT = (ConferencecallStatus.JOINING, ConferencecallStatus.JOINED, ConferencecallStatus.LEAVING)
KICKABLE = (ConferencecallStatus.JOINING, ConferencecallStatus.JOINED)
RECORDING_MAX_SECONDS = 24 * 3600.0
"""A recording ends by itself after this much audio (the API's 24 h cap)."""


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


class RecordingControl(Protocol):
    """What the service needs from the media side."""

    def start_recording(self, conference_id: str, recording_id: str, path: Path, *, tracks: bool = False,
                        max_seconds: float | None = None) -> int:
        """Start writing the conference's mix to `path` (and each participant's own track, with `tracks`), at most
        `max_seconds` of it; returns the sample rate."""

    def stop_recording(self, conference_id: str) -> Future[RecordingResult]:
        """Stop the conference's recording; the future resolves when the file is complete."""


@dataclass
class Page:
    """One page of a list."""

    items: list[Resource]
    next_page_token: str

    def to_json(self) -> dict[str, Any]:
        """`{"result": [...], "next_page_token": "..."}`."""
        return {"result": [item.to_json() for item in self.items], "next_page_token": self.next_page_token}


class ConferenceService:
    """Conferences and everything in them, for every customer."""

    def __init__(self, store: Store, events: EventBus, recordings_dir: Path, *,
                 recording_max_seconds: float = RECORDING_MAX_SECONDS) -> None:
        self.store = store
        self.events = events
        self.recordings_dir = recordings_dir
        self.recording_max_seconds = recording_max_seconds
        self.calls: CallControl | None = None
        self.media: RecordingControl | None = None
        self._recordings_done: dict[str, asyncio.Future[Recording]] = {}

    def attach(self, calls: CallControl, media: RecordingControl) -> None:
        """Connect the telephony and media sides (they are built after the service)."""
        self.calls = calls
        self.media = media

    # -- storage helpers --------------------------------------------------------------------------

    def _save(self, resource: Resource, event: str | None) -> None:
        if hasattr(resource, "tm_update"):
            resource.tm_update = now_timestamp()
        self.store.save(resource)
        if event:
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

    def _set_status(self, resource: Call | Conference | Conferencecall | Recording, status: Any, event: str) -> None:
        if not moves_forward(resource.status, status):
            raise Conflict(f"{type(resource).__name__.lower()} {resource.id} is {resource.status}, "
                           f"it cannot become {status}")
        resource.status = status
        self._save(resource, event)

    # -- conferences ------------------------------------------------------------------------------

    def create_conference(self, customer_id: str, *, type: str = "conference", name: str = "", detail: str = "",
                          data: dict[str, Any] | None = None, timeout: int = 0,
                          pre_actions: list[dict[str, Any]] | None = None,
                          post_actions: list[dict[str, Any]] | None = None) -> Conference:
        """Create a conference; it is `progressing` (ready for calls) when this returns."""
        try:
            conference_type = ConferenceType(type)
        except ValueError:
            raise InvalidRequest(f"type must be one of {', '.join(t.value for t in ConferenceType)}") from None
        if timeout < 0:
            raise InvalidRequest("timeout must be 0 (none) or a positive number of seconds")
        conference = Conference(id=new_id(), customer_id=customer_id, type=conference_type, name=name, detail=detail,
                                data=data or {}, timeout=timeout, pre_actions=pre_actions or [],
                                post_actions=post_actions or [])
        while self.store.find(Conference, direct_hash=conference.direct_hash):
            conference.direct_hash = new_direct_hash()
        self._save(conference, "conference_created")
        self._set_status(conference, ConferenceStatus.PROGRESSING, "conference_updated")
        logger.info("conference %s created (%s, hash %s)", conference.id, conference.type, conference.direct_hash)
        return conference

    def get_conference(self, customer_id: str | None, conference_id: str) -> Conference:
        """A conference; NotFound if it does not exist or belongs to someone else."""
        return self._get(Conference, conference_id, customer_id)

    def list_conferences(self, customer_id: str, page_size: int = 100, page_token: str | None = None) -> Page:
        """A page of the customer's conferences that are not deleted, newest first."""
        return self._page(Conference, customer_id, page_size, page_token)

    def conference_for_direct_hash(self, direct_hash: str) -> Conference | None:
        """The progressing conference a direct hash dials into, if any."""
        found = self.store.find(Conference, direct_hash=direct_hash.lower())
        if found and found[0].status is ConferenceStatus.PROGRESSING:
            return found[0]
        return None

    def delete_conference(self, customer_id: str | None, conference_id: str) -> Conference:
        """Terminate a conference: every participant is kicked, then it is `terminated`."""
        conference = self.get_conference(customer_id, conference_id)
        if conference.status in (ConferenceStatus.TERMINATING, ConferenceStatus.TERMINATED):
            raise Conflict(f"conference {conference_id} is already {conference.status}")
        self._set_status(conference, ConferenceStatus.TERMINATING, "conference_updated")
        logger.info("conference %s terminating", conference.id)
        if conference.recording_id != NIL_UUID:
            self._end_recording(conference)
        for participant in self.store.find(Conferencecall, conference_id=conference.id):
            if participant.status in KICKABLE:
                self._kick(participant, "conference terminated")
        return self._terminate_if_empty(conference)

    def _terminate_if_empty(self, conference: Conference) -> Conference:
        if conference.status is not ConferenceStatus.TERMINATING:
            return conference
        if any(p.status in ACTIVE_PARTICIPANT for p in self.store.find(Conferencecall, conference_id=conference.id)):
            return conference
        conference.tm_delete = now_timestamp()
        self._set_status(conference, ConferenceStatus.TERMINATED, "conference_deleted")
        logger.info("conference %s terminated", conference.id)
        return conference

    # -- participants -----------------------------------------------------------------------------

    def admit_call(self, conference: Conference, *, source: dict[str, str], destination: dict[str, str],
                   call_type: str = "sip") -> tuple[Call, Conferencecall]:
        """An incoming call for a conference: create the call and its conferencecall (`joining`).

        `call_type` says what carries it: "sip", or "bot" / "websocket" for participants without SIP.
        """
        conference = self.get_conference(None, conference.id)
        if conference.status is not ConferenceStatus.PROGRESSING:
            raise Conflict(f"conference {conference.id} is {conference.status}")
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
        logger.info("conference %s: call %s joining as %s", conference.id, call.id, participant.id)
        return participant

    def create_outgoing_call(self, customer_id: str, *, source: dict[str, str], destination: dict[str, str],
                             conference_id: str) -> Call:
        """A call we are about to place, to join `conference_id` once answered (`dialing`)."""
        conference = self.get_conference(customer_id, conference_id)
        if conference.status is not ConferenceStatus.PROGRESSING:
            raise Conflict(f"conference {conference_id} is {conference.status}; calls can only join while "
                           "it is progressing")
        call = Call(id=new_id(), customer_id=customer_id, direction="outgoing", source=source,
                    destination=destination, status=CallStatus.DIALING, conference_id=conference.id)
        self._save(call, "call_created")
        logger.info("call %s: dialing %s for conference %s", call.id, destination.get("target"), conference.id)
        return call

    def call_ringing(self, call_id: str) -> None:
        """The callee is alerted (a 180/183 to our INVITE)."""
        call = self._get(Call, call_id, None)
        if call.status is CallStatus.DIALING:
            call.tm_ringing = now_timestamp()
            self._set_status(call, CallStatus.RINGING, "call_updated")

    def call_answered(self, call_id: str) -> Conferencecall | None:
        """A call we placed was answered: it joins its conference (None when that is no longer possible)."""
        call = self._get(Call, call_id, None)
        if call.status in (CallStatus.DIALING, CallStatus.RINGING):
            call.tm_progressing = now_timestamp()
            self._set_status(call, CallStatus.PROGRESSING, "call_updated")
        conference = self._get(Conference, call.conference_id, None)
        if call.status is not CallStatus.PROGRESSING or conference.status is not ConferenceStatus.PROGRESSING:
            return None
        return self._new_participant(conference, call, "call_updated")

    def call_failed(self, call_id: str, *, hangup_by: str, reason: str) -> None:
        """A call we placed ended before it was answered (rejected, cancelled, unreachable)."""
        call = self._get(Call, call_id, None)
        if call.status is CallStatus.HANGUP:
            return
        call.hangup_by, call.hangup_reason, call.tm_hangup = hangup_by, reason, now_timestamp()
        self._set_status(call, CallStatus.HANGUP, "call_hangup")
        logger.info("call %s: failed (%s by %s)", call.id, reason, hangup_by)

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

    def participant_left(self, conferencecall_id: str, *, hangup_by: str, reason: str,
                         media: dict[str, Any] | None = None) -> None:
        """The participant's call is over: `leaved` (with its final media figures), and its call hung up."""
        participant = self._get(Conferencecall, conferencecall_id, None)
        if media:
            participant.media = media
        if participant.status is not ConferencecallStatus.LEAVED:
            self._set_status(participant, ConferencecallStatus.LEAVED, "conferencecall_updated")
        call = self.store.get(Call, participant.reference_id)
        if call is not None and call.status is not CallStatus.HANGUP:
            call.hangup_by, call.hangup_reason, call.tm_hangup = hangup_by, reason, now_timestamp()
            self._set_status(call, CallStatus.HANGUP, "call_hangup")
        conference = self._get(Conference, participant.conference_id, None)
        if participant.id in conference.conferencecall_ids:
            conference.conferencecall_ids.remove(participant.id)
            self._save(conference, "conference_updated")
        logger.info("conference %s: %s left (%s by %s)", conference.id, participant.id, reason, hangup_by)
        self._terminate_if_empty(conference)

    def kick(self, customer_id: str | None, conferencecall_id: str) -> Conferencecall:
        """Remove a participant: `leaving` now, `leaved` once its call has ended."""
        participant = self._get(Conferencecall, conferencecall_id, customer_id)
        if participant.status not in KICKABLE:
            raise Conflict(f"conferencecall {conferencecall_id} is {participant.status}; "
                           "only joining or joined participants can be kicked")
        self._kick(participant, "kicked")
        return participant

    def _kick(self, participant: Conferencecall, reason: str) -> None:
        self._set_status(participant, ConferencecallStatus.LEAVING, "conferencecall_updated")
        conference = self._get(Conference, participant.conference_id, None)
        if participant.id in conference.conferencecall_ids:
            conference.conferencecall_ids.remove(participant.id)
            self._save(conference, "conference_updated")
        if self.calls is None:
            raise RuntimeError("no call control attached")
        if not self.calls.hang_up(participant.reference_id, reason):
            self.participant_left(participant.id, hangup_by="local", reason=reason)

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

    # -- recordings -------------------------------------------------------------------------------

    def start_recording(self, customer_id: str | None, conference_id: str, *, tracks: bool = False) -> Conference:
        """Start recording the conference's mix (only while progressing, one at a time), with `tracks` also each
        participant's own audio; it ends by itself after `recording_max_seconds`."""
        conference = self.get_conference(customer_id, conference_id)
        if conference.status is not ConferenceStatus.PROGRESSING:
            raise InvalidRequest(f"conference {conference_id} is {conference.status}; "
                                 "recording can only start while it is progressing")
        if conference.recording_id != NIL_UUID:
            raise Conflict(f"conference {conference_id} is already recording ({conference.recording_id})")
        if self.media is None:
            raise RuntimeError("no media attached")
        recording = Recording(id=new_id(), customer_id=conference.customer_id, reference_id=conference.id,
                              tm_start=now_timestamp())
        recording.filename = f"{recording.id}.wav"
        recording.sample_rate = self.media.start_recording(conference.id, recording.id,
                                                           self.recordings_dir / recording.filename, tracks=tracks,
                                                           max_seconds=self.recording_max_seconds)
        self._save(recording, "recording_started")
        conference.recording_id = recording.id
        conference.recording_ids.append(recording.id)
        self._save(conference, "conference_updated")
        logger.info("conference %s: recording %s started", conference.id, recording.id)
        return conference

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

    def recording_full(self, conference_id: str, recording_id: str) -> None:
        """A recording reached its maximum duration: it ends cleanly and the conference's `recording_id` clears."""
        conference = self.store.get(Conference, conference_id)
        if conference is None or conference.recording_id != recording_id:
            return
        logger.info("conference %s: recording %s reached its maximum of %g s", conference_id, recording_id,
                    self.recording_max_seconds)
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

    # -- start-up ---------------------------------------------------------------------------------

    def recover(self) -> None:
        """After a restart: calls and participants of the previous run are over, recordings are closed."""
        for participant in self.store.find(Conferencecall):
            if participant.status in ACTIVE_PARTICIPANT:
                participant.status = ConferencecallStatus.LEAVED
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
        for conference in self.store.find(Conference):
            changed = bool(conference.conferencecall_ids) or conference.recording_id != NIL_UUID
            conference.conferencecall_ids, conference.recording_id = [], NIL_UUID
            if conference.status is ConferenceStatus.STARTING:
                conference.status, changed = ConferenceStatus.PROGRESSING, True
            elif conference.status is ConferenceStatus.TERMINATING:
                conference.status, conference.tm_delete, changed = ConferenceStatus.TERMINATED, now_timestamp(), True
            if changed:
                self._save(conference, None)


_DIRECTIONS: dict[str, frozenset[str]] = {"": frozenset(), "in": frozenset({"in"}), "out": frozenset({"out"}),
                                          "both": frozenset({"in", "out"})}
"""A mute direction as the set of sides it mutes."""
_DIRECTION_NAMES = {sides: name for name, sides in _DIRECTIONS.items()}


def _requested(direction: object) -> frozenset[str]:
    """The sides a request names: "in", "out" or "both"; InvalidRequest for anything else."""
    if direction not in ("in", "out", "both"):
        raise InvalidRequest(f'direction must be "in", "out" or "both", not {direction!r}')
    return _DIRECTIONS[str(direction)]
