"""The resources of the VoIPBIN Conference API: conference, conferencecall, call, recording, transcribe.

Each is a plain dataclass whose fields are exactly its JSON representation; statuses are string
enums whose order is the only direction they may move in.
"""

from __future__ import annotations

import enum
import secrets
import uuid
from dataclasses import dataclass, field, fields
from typing import Any

from .timestamps import NEVER, NIL_UUID, now_timestamp


class ConferenceType(enum.StrEnum):
    """`conference`: a room that stays up; `connect`: a two-party bridge."""

    CONFERENCE = "conference"
    CONNECT = "connect"


class ConferenceStatus(enum.StrEnum):
    """Conference life: only ever forward."""

    STARTING = "starting"
    PROGRESSING = "progressing"
    TERMINATING = "terminating"
    TERMINATED = "terminated"


class ConferencecallStatus(enum.StrEnum):
    """Participant life: only ever forward."""

    JOINING = "joining"
    JOINED = "joined"
    LEAVING = "leaving"
    LEAVED = "leaved"


class CallStatus(enum.StrEnum):
    """Call life, as VoIPBIN names it."""

    DIALING = "dialing"
    RINGING = "ringing"
    PROGRESSING = "progressing"
    TERMINATING = "terminating"
    CANCELING = "canceling"
    HANGUP = "hangup"


class RecordingStatus(enum.StrEnum):
    """Recording life."""

    RECORDING = "recording"
    STOPPING = "stopping"
    ENDED = "ended"


class TranscribeStatus(enum.StrEnum):
    """Transcription life."""

    PROGRESSING = "progressing"
    DONE = "done"


STATUS_ORDER: dict[type[enum.StrEnum], list[Any]] = {
    CallStatus: list(CallStatus),
    ConferenceStatus: list(ConferenceStatus),
    ConferencecallStatus: list(ConferencecallStatus),
    RecordingStatus: list(RecordingStatus),
    TranscribeStatus: list(TranscribeStatus),
}


MUTE_DIRECTIONS = ("", "in", "out", "both")
GAIN_RANGE_DB = (-40.0, 20.0)


def moves_forward(current: enum.StrEnum, new: enum.StrEnum) -> bool:
    """Whether a status change goes forward (statuses never move back)."""
    order = STATUS_ORDER[type(current)]
    return order.index(new) > order.index(current)


def new_id() -> str:
    """A fresh resource identifier (UUID4)."""
    return str(uuid.uuid4())


def new_direct_hash() -> str:
    """12 lowercase hex characters from a cryptographic random source."""
    return secrets.token_hex(6)


@dataclass
class Resource:
    """Fields every resource has."""

    id: str
    customer_id: str

    def to_json(self) -> dict[str, Any]:
        """The API representation: every field, with lists and dicts copied (a conference's list of a thousand
        participants is copied as one list, not deep-copied item by item as `dataclasses.asdict` would)."""
        return {item.name: _copied(getattr(self, item.name)) for item in fields(self)}


def _copied(value: Any) -> Any:
    """A JSON-ready value that shares nothing mutable with the resource."""
    if isinstance(value, list):
        return [item if isinstance(item, str) else _copied(item) for item in value]
    if isinstance(value, dict):
        return {key: _copied(item) for key, item in value.items()}
    return value


@dataclass
class Conference(Resource):
    """A conference room."""

    type: ConferenceType = ConferenceType.CONFERENCE
    status: ConferenceStatus = ConferenceStatus.STARTING
    name: str = ""
    detail: str = ""
    data: dict[str, Any] = field(default_factory=dict)
    timeout: int = 0
    pre_actions: list[dict[str, Any]] = field(default_factory=list)
    post_actions: list[dict[str, Any]] = field(default_factory=list)
    conferencecall_ids: list[str] = field(default_factory=list)
    recording_id: str = NIL_UUID
    recording_ids: list[str] = field(default_factory=list)
    transcribe_id: str = NIL_UUID
    transcribe_ids: list[str] = field(default_factory=list)
    direct_hash: str = field(default_factory=new_direct_hash)
    """`sip:direct.<hash>@host` dials into the conference; "" when it has none."""
    tm_create: str = field(default_factory=now_timestamp)
    tm_update: str = NEVER
    tm_delete: str = NEVER


@dataclass
class Conferencecall(Resource):
    """A participant: links a call to a conference."""

    conference_id: str = NIL_UUID
    reference_type: str = "call"
    reference_id: str = NIL_UUID
    status: ConferencecallStatus = ConferencecallStatus.JOINING
    leave_reason: str = ""
    """Why it left (hangup, kicked, timeout, health check, connect partner left, server restart...)."""
    media: dict[str, Any] = field(default_factory=dict)
    """The participant's media figures (codec, loss, jitter, round trip, drops): live while it is in the
    conference, final once it has left; empty before its media started."""
    tm_create: str = field(default_factory=now_timestamp)
    tm_update: str = NEVER
    tm_delete: str = NEVER


@dataclass
class Call(Resource):
    """A call leg (so far, a SIP dialog that dialled into a conference)."""

    type: str = "sip"
    direction: str = "incoming"
    source: dict[str, str] = field(default_factory=dict)
    destination: dict[str, str] = field(default_factory=dict)
    status: CallStatus = CallStatus.DIALING
    conference_id: str = NIL_UUID
    conferencecall_id: str = NIL_UUID
    mute_direction: str = ""
    """Whose audio is muted: "" (none), "in" (the caller is not heard), "out" (hears nothing), "both"."""
    hold: bool = False
    """Put on hold by the bridge: neither heard nor hearing."""
    gain_in: float = 0.0
    """dB applied to the caller's voice in the mix."""
    gain_out: float = 0.0
    """dB applied to what the caller hears."""
    hangup_by: str = ""
    hangup_reason: str = ""
    tm_create: str = field(default_factory=now_timestamp)
    tm_update: str = NEVER
    tm_progressing: str = NEVER
    tm_ringing: str = NEVER
    tm_hangup: str = NEVER
    tm_delete: str = NEVER


@dataclass
class Recording(Resource):
    """A recording of a conference's mixed audio."""

    reference_type: str = "conference"
    reference_id: str = NIL_UUID
    status: RecordingStatus = RecordingStatus.RECORDING
    format: str = "wav"
    filename: str = ""
    sample_rate: int = 8000
    duration: float = 0.0
    error: str = ""
    tracks: list[dict[str, Any]] = field(default_factory=list)
    """Per-participant track files beside the mix (recording_start with "tracks": true), listed when it ends:
    conferencecall_id, call_id, filename, offset and duration in seconds (and an error, if one was lost)."""
    tm_start: str = NEVER
    tm_end: str = NEVER
    tm_create: str = field(default_factory=now_timestamp)
    tm_update: str = NEVER
    tm_delete: str = NEVER


@dataclass
class Transcribe(Resource):
    """A transcription of a conference's audio (its text comes from the speech-to-text engine)."""

    reference_type: str = "conference"
    reference_id: str = NIL_UUID
    status: TranscribeStatus = TranscribeStatus.PROGRESSING
    language: str = ""
    """BCP 47 tag of the spoken language, e.g. en-US."""
    direction: str = "both"
    tm_start: str = NEVER
    tm_end: str = NEVER
    tm_create: str = field(default_factory=now_timestamp)
    tm_update: str = NEVER
    tm_delete: str = NEVER


def sip_party(target: str, name: str = "") -> dict[str, str]:
    """A call's source or destination address in the VoIPBIN shape."""
    return {"type": "sip", "target": target, "target_name": name, "name": "", "detail": ""}
