"""The OpenAPI 3.1 description of the REST API, served at `GET /openapi.json`.

It is built from Python data rather than kept as one big literal, so that it follows the code: the resource
schemas come from the model dataclasses (their fields are the JSON, their attribute docstrings the descriptions),
the enums from the StrEnum classes, the conference body from `rest.CONFERENCE_BODY`, limits from the constants the
server enforces, and every error response from one helper.
"""

from __future__ import annotations

import ast
import dataclasses
import enum
import functools
import inspect
import itertools
import textwrap
import typing
from http import HTTPStatus
from typing import Any

from .actions import ACTION_TYPES, MAX_ACTIONS
from .bots import DEFAULT_RATE, RATES
from .media_socket import MAX_NAME
from .models import GAIN_RANGE_DB, MUTE_DIRECTIONS, Call, Conference, Conferencecall, Recording, Transcribe
from .service import LANGUAGE_RE, MAX_TIMEOUT
from .store import MAX_PAGE_SIZE

Json = dict[str, Any]

OPENAPI_VERSION = "3.1.0"
MAX_BODY = "1 MiB"
"""The request body limit of the app (`client_max_size`), as the descriptions state it."""
RESOURCES: tuple[type, ...] = (Conference, Conferencecall, Call, Recording, Transcribe)
TIMESTAMP_PATTERN = r"^\d{4}-\d{2}-\d{2} \d{2}:\d{2}:\d{2}\.\d{6}$"
TIMESTAMP_TEXT = "UTC time as `2022-02-03 06:08:56.672025`; `9999-01-01 00:00:00.000000` when it has not happened."
UUID_TEXT = "`00000000-0000-0000-0000-000000000000` stands for none."
UNAUTHORIZED = "No token (`?token=` or `Authorization: Bearer`), or a token nobody owns."
BAD_ID = "The `id` in the path is not a UUID."
BAD_PAGE = f"`page_size` is not an integer from 1 to {MAX_PAGE_SIZE}."
TOO_LARGE = f"The request body is larger than {MAX_BODY}."
BAD_BODY = "The body is not a JSON object ({} when empty)"

_JSON_TYPES: dict[type, str] = {str: "string", int: "integer", float: "number", bool: "boolean", dict: "object",
                                list: "array"}


def ref(name: str) -> Json:
    """A reference to a component schema."""
    return {"$ref": f"#/components/schemas/{name}"}


# -- component schemas from the models -------------------------------------------------------------------------

def field_docs(cls: type) -> dict[str, str]:
    """The attribute docstrings (the string right under a field) of a dataclass and its bases, by field name.

    Python keeps them only in the source, so they are read from there; a class without source has none.
    """
    docs: dict[str, str] = {}
    for klass in reversed(cls.__mro__):
        if not dataclasses.is_dataclass(klass):
            continue
        try:
            tree = ast.parse(textwrap.dedent(inspect.getsource(klass)))
        except (OSError, TypeError):
            continue
        body = typing.cast(ast.ClassDef, tree.body[0]).body
        for node, after in itertools.pairwise(body):
            if (isinstance(node, ast.AnnAssign) and isinstance(node.target, ast.Name) and isinstance(after, ast.Expr)
                    and isinstance(after.value, ast.Constant) and isinstance(after.value.value, str)):
                docs[node.target.id] = " ".join(after.value.value.split())
    return docs


def is_uuid_name(name: str) -> bool:
    """Whether a string field of this name holds a UUID (`id`, `..._id`)."""
    return name == "id" or name.endswith("_id")


def type_schema(name: str, hint: Any, enums: dict[str, Json]) -> Json:
    """The JSON schema of a model field from its type hint; StrEnum types are collected into `enums`."""
    origin, args = typing.get_origin(hint), typing.get_args(hint)
    if isinstance(hint, type) and issubclass(hint, enum.StrEnum):
        enums[hint.__name__] = {"type": "string", "enum": [member.value for member in hint],
                                "description": " ".join((inspect.getdoc(hint) or "").split())}
        return ref(hint.__name__)
    if hint is str:
        if is_uuid_name(name):
            return {"type": "string", "format": "uuid"}
        if name.startswith("tm_"):
            return {"type": "string", "pattern": TIMESTAMP_PATTERN}
        return {"type": "string"}
    if hint in _JSON_TYPES:
        return {"type": _JSON_TYPES[hint]}
    if origin is list:
        item_name = name[:-1] if name.endswith("_ids") else name
        return {"type": "array", "items": type_schema(item_name, args[0], enums)}
    if origin is dict:
        schema: Json = {"type": "object"}
        if args and args[1] is not Any:
            schema["additionalProperties"] = type_schema(name, args[1], enums)
        return schema
    raise TypeError(f"no JSON schema for field {name} of type {hint!r}")


FIELD_DETAILS: dict[tuple[str, str], Json] = {
    ("Conference", "timeout"): {"minimum": 0, "maximum": MAX_TIMEOUT},
    ("Conference", "pre_actions"): {"items": ref("Action")},
    ("Conference", "post_actions"): {"items": ref("Action")},
    ("Conference", "direct_hash"): {"pattern": "^([0-9a-f]{12})?$"},
    ("Call", "mute_direction"): {"enum": list(MUTE_DIRECTIONS)},
    ("Call", "gain_in"): {"minimum": GAIN_RANGE_DB[0], "maximum": GAIN_RANGE_DB[1]},
    ("Call", "gain_out"): {"minimum": GAIN_RANGE_DB[0], "maximum": GAIN_RANGE_DB[1]},
    ("Call", "source"): {"description": "The calling party: `{type, target, target_name, name, detail}`."},
    ("Call", "destination"): {"description": "The called party: `{type, target, target_name, name, detail}`."},
    ("Recording", "format"): {"enum": ["wav"]},
    ("Recording", "tracks"): {"items": ref("RecordingTrack")},
}
"""What the type hints cannot say about some fields (ranges, patterns, item schemas)."""


def resource_schema(cls: type, enums: dict[str, Json]) -> Json:
    """A resource's schema: every field of its dataclass, all of them always present, nothing else."""
    hints = typing.get_type_hints(cls)
    docs = field_docs(cls)
    properties: Json = {}
    for item in dataclasses.fields(cls):
        schema = type_schema(item.name, hints[item.name], enums)
        if item.name in docs:
            schema["description"] = docs[item.name]
        elif item.name.startswith("tm_"):
            schema["description"] = TIMESTAMP_TEXT
        elif schema.get("format") == "uuid" and item.name not in ("id", "customer_id"):
            schema["description"] = UUID_TEXT
        schema.update(FIELD_DETAILS.get((cls.__name__, item.name), {}))
        properties[item.name] = schema
    return {"type": "object", "description": " ".join((inspect.getdoc(cls) or "").split()),
            "properties": properties, "required": list(properties), "additionalProperties": False}


def page_schema(name: str) -> Json:
    """The schema of one page of a list of `name` resources."""
    return {"type": "object", "required": ["result", "next_page_token"], "additionalProperties": False,
            "properties": {
                "result": {"type": "array", "items": ref(name), "maxItems": MAX_PAGE_SIZE,
                           "description": "The resources of this page, newest first."},
                "next_page_token": {"type": "string", "description": "Pass as `page_token` for the next page "
                                    "(the `tm_create` of the last item; empty when this page is empty)."}}}


def action_schema() -> Json:
    """A flow action of a conference's `pre_actions` / `post_actions` (checked by confbridge.actions)."""
    return {"type": "object", "required": ["type"], "additionalProperties": False,
            "description": "A flow action. A missing `id`/`next_id` is the nil UUID, a missing `option` is {}.",
            "properties": {"id": {"type": "string", "format": "uuid"},
                           "next_id": {"type": "string", "format": "uuid"},
                           "type": {"type": "string", "enum": sorted(ACTION_TYPES)},
                           "option": {"type": "object"}}}


def conference_body(*, create: bool) -> Json:
    """The body of conference create (`type` required) or update (every field optional, `type` immutable)."""
    from .rest import CONFERENCE_BODY  # here: rest imports this module

    properties: Json = {name: {"type": _JSON_TYPES[kind]} for name, kind in CONFERENCE_BODY.items()}
    properties["type"] = ref("ConferenceType")
    properties["timeout"].update(minimum=0, maximum=MAX_TIMEOUT,
                                  description="Seconds from creation until it terminates; 0 for never.")
    properties["data"]["description"] = "Free-form data stored with the conference."
    for name in ("pre_actions", "post_actions"):
        properties[name].update(items=ref("Action"), maxItems=MAX_ACTIONS)
    schema: Json = {"type": "object", "properties": properties, "additionalProperties": False}
    if create:
        schema["required"] = ["type"]
    return schema


def schemas() -> Json:
    """Every component schema."""
    enums: dict[str, Json] = {}
    resources = {cls.__name__: resource_schema(cls, enums) for cls in RESOURCES}
    pages = {f"{name}Page": page_schema(name) for name in resources}
    direction = {"type": "string", "enum": ["in", "out", "both"],
                 "description": "`in`: the caller's voice, `out`: what it hears, `both`."}
    uuid = {"type": "string", "format": "uuid"}
    return {
        **resources, **pages, **dict(sorted(enums.items())),
        "Action": action_schema(),
        "RecordingTrack": {
            "type": "object", "required": ["conferencecall_id", "call_id", "filename", "offset", "duration"],
            "description": "One participant's own track file of a recording.",
            "properties": {"conferencecall_id": uuid, "call_id": uuid, "filename": {"type": "string"},
                           "offset": {"type": "number", "description": "Seconds into the mix where it starts."},
                           "duration": {"type": "number"}, "error": {"type": "string"}}},
        "Customer": {
            "type": "object", "required": ["id", "webhook_uri", "webhook_method", "webhook_secret", "tm_create"],
            "additionalProperties": False, "description": "The caller's own customer.",
            "properties": {"id": uuid, "webhook_uri": {"type": "string", "description": "Where events are POSTed."},
                           "webhook_method": {"type": "string", "enum": ["", "POST"]},
                           "webhook_secret": {"type": "string", "description": "HMAC key of the webhook signatures."},
                           "tm_create": {"type": "string", "pattern": TIMESTAMP_PATTERN}}},
        "Error": {
            "type": "object", "required": ["error"], "additionalProperties": False,
            "properties": {"error": {
                "type": "object", "required": ["status", "reason", "message", "request_id"],
                "additionalProperties": False,
                "properties": {"status": {"type": "integer", "description": "The HTTP status."},
                               "reason": {"type": "string", "description": "Its phrase, e.g. Not Found."},
                               "message": {"type": "string", "description": "What was wrong."},
                               "request_id": {**uuid, "description": "Also in the X-Request-Id header."}}}}},
        "ConferenceCreate": conference_body(create=True),
        "ConferenceUpdate": conference_body(create=False),
        "RecordingStart": {
            "type": "object",
            "properties": {"format": {"type": "string", "enum": ["wav"]},
                           "duration": {"type": "integer", "minimum": 0, "format": "int64",
                                        "description": "Seconds after which it ends by itself (0: the 24 h cap)."},
                           "tracks": {"type": "boolean", "description": "Also record each participant's own track."}}},
        "TranscribeStart": {
            "type": "object", "required": ["language"],
            "properties": {"language": {"type": "string", "pattern": f"^(?:{LANGUAGE_RE.pattern})$",
                                        "description": "BCP 47 tag of the spoken language, e.g. en-US."}}},
        "MuteStart": {"type": "object", "required": ["direction"], "properties": {"direction": direction}},
        "MuteStop": {"type": "object", "properties": {"direction": {**direction, "default": "both"}}},
        "GainSet": {"type": "object", "required": ["direction", "gain"],
                    "properties": {"direction": direction,
                                   "gain": {"type": "number", "minimum": GAIN_RANGE_DB[0],
                                            "maximum": GAIN_RANGE_DB[1], "description": "dB."}}},
        "GainReset": {"type": "object", "properties": {"direction": {**direction, "default": "both"}}},
        "CallsCreate": calls_body(),
        "CallsCreated": {"type": "object", "required": ["calls"], "additionalProperties": False,
                         "properties": {"calls": {"type": "array", "items": ref("Call")}}},
    }


def calls_body() -> Json:
    """The dial-out body: SIP destinations and the conference_join action saying where they go."""
    from .rest import MAX_DESTINATIONS  # here: rest imports this module

    destination = {"type": "object", "required": ["type", "target"],
                   "properties": {"type": {"type": "string", "enum": ["sip"]},
                                  "target": {"type": "string", "description": "sip:user@host[:port]"}}}
    action = {"type": "object", "required": ["type", "option"],
              "properties": {"type": {"type": "string", "enum": ["conference_join"]},
                             "option": {"type": "object", "required": ["conference_id"],
                                        "properties": {"conference_id": {"type": "string", "format": "uuid"}}}}}
    return {"type": "object", "required": ["destinations", "actions"],
            "properties": {"destinations": {"type": "array", "items": destination, "minItems": 1,
                                            "maxItems": MAX_DESTINATIONS},
                           "actions": {"type": "array", "items": action, "minItems": 1},
                           "source": {"type": "object", "description": "The calling party shown to the callee."}}}


# -- operations ------------------------------------------------------------------------------------------------

def request_id_header() -> Json:
    """The response headers every API response has."""
    return {"X-Request-Id": {"$ref": "#/components/headers/X-Request-Id"}}


def error(status: int, description: str) -> Json:
    """An error response: the envelope with `status`."""
    return {"description": f"{HTTPStatus(status).phrase}: {description}", "headers": request_id_header(),
            "content": {"application/json": {"schema": ref("Error")}}}


def ok(schema_name: str, description: str = "OK.", links: Json | None = None) -> Json:
    """A 200 JSON response holding a `schema_name`."""
    response: Json = {"description": description, "headers": request_id_header(),
                      "content": {"application/json": {"schema": ref(schema_name)}}}
    if links:
        response["links"] = links
    return response


def wav(description: str) -> Json:
    """A 200 response carrying a WAV file."""
    return {"description": description,
            "headers": {**request_id_header(),
                        "Content-Disposition": {"schema": {"type": "string"}, "description": "attachment; filename"}},
            "content": {"audio/wav": {"schema": {"type": "string", "contentMediaType": "audio/wav"}}}}


def param(name: str) -> Json:
    """A reference to a component parameter."""
    return {"$ref": f"#/components/parameters/{name}"}


def operation(op_id: str, tag: str, summary: str, description: str, response: Json, errors: dict[int, str], *,
              body: str | None = None, body_required: bool = True, parameters: tuple[Json, ...] = (),
              status: int = 200) -> Json:
    """One operation: its `status` (200) `response`, the given error responses and a 401 (every operation needs a
    token)."""
    responses = {str(status): response}
    for code, text in sorted({401: UNAUTHORIZED, **errors}.items()):
        responses[str(code)] = error(code, text)
    op: Json = {"operationId": op_id, "tags": [tag], "summary": summary, "description": description,
                "responses": responses}
    if parameters:
        op["parameters"] = list(parameters)
    if body is not None:
        op["requestBody"] = {"required": body_required,
                             "content": {"application/json": {"schema": ref(body)}}}
    return op


def listing(op_id: str, tag: str, what: str, model: str) -> Json:
    """A paged list operation."""
    return operation(op_id, tag, f"List {what}", f"A page of the customer's {what}, newest first.",
                     ok(f"{model}Page"), {400: BAD_PAGE}, parameters=(param("page_size"), param("page_token")))


def getter(op_id: str, tag: str, what: str, model: str, links: Json | None = None) -> Json:
    """A get-by-id operation."""
    return operation(op_id, tag, f"Get a {what}", f"One {what} of the customer's.", ok(model, links=links),
                     {400: BAD_ID, 404: f"No such {what} (another customer's is not found either)."})


def conference_action(op_id: str, summary: str, description: str, errors: dict[int, str], *, body: str | None = None,
                      links: Json | None = None) -> Json:
    """A POST on a conference that answers with the conference."""
    errors = {400: BAD_ID, 404: "No such conference.", **errors}
    if body is not None:
        errors[413] = TOO_LARGE
    return operation(op_id, "Conference", summary, description, ok("Conference", links=links), errors, body=body,
                     body_required=False)


def call_control(op_id: str, summary: str, description: str, *, body: str | None = None,
                 body_required: bool = False) -> Json:
    """A mute, gain or hold change of a call in progress, answered with the call."""
    errors = {400: BAD_ID, 404: "No such call.",
              409: "The call is not in progress (only a progressing call has controls)."}
    if body is not None:
        errors.update({400: f"{BAD_ID} Or: {BAD_BODY}, a direction or gain that is missing or out of range.",
                       413: TOO_LARGE})
    return operation(op_id, "Call", summary, description, ok("Call"), errors, body=body, body_required=body_required)


def websocket(op_id: str, tag: str, summary: str, description: str, errors: dict[int, str],
              parameters: tuple[Json, ...] = ()) -> Json:
    """A GET that upgrades to a WebSocket (101); without an `Upgrade: websocket` it is refused with 400."""
    return operation(op_id, tag, summary, description,
                     {"description": "Switching Protocols: the connection is now a WebSocket."},
                     {400: "Not a WebSocket upgrade request.", **errors}, parameters=parameters, status=101)


def link(op_id: str, **parameters: str) -> Json:
    """A link to `op_id` whose parameters are fields of the response body (`id="id"` -> `$response.body#/id`)."""
    return {"operationId": op_id,
            "parameters": {name: f"$response.body#/{field}" for name, field in parameters.items()}}


def conference_links() -> Json:
    """Links from a conference in a response to what can be done with it (and where its parts are)."""
    return {
        "GetConference": link("conferences_get", id="id"),
        "UpdateConference": link("conferences_update", id="id"),
        "DeleteConference": link("conferences_delete", id="id"),
        "StartRecording": link("conferences_recording_start", id="id"),
        "StopRecording": link("conferences_recording_stop", id="id"),
        "StartTranscribe": link("conferences_transcribe_start", id="id"),
        "StopTranscribe": link("conferences_transcribe_stop", id="id"),
        "RegenerateDirectHash": link("conferences_direct_hash_regenerate", id="id"),
        "GetActiveRecording": link("recordings_get", id="recording_id"),
        "GetActiveTranscribe": link("transcribes_get", id="transcribe_id"),
    }


def call_links() -> Json:
    """Links from a call to its controls, its participant and its conference."""
    return {
        "HangUp": link("calls_delete", id="id"),
        "Mute": link("calls_mute", id="id"), "Unmute": link("calls_unmute", id="id"),
        "SetGain": link("calls_gain_set", id="id"), "ResetGain": link("calls_gain_reset", id="id"),
        "Hold": link("calls_hold", id="id"), "Unhold": link("calls_unhold", id="id"),
        "GetConferencecall": link("conferencecalls_get", id="conferencecall_id"),
        "GetConference": link("conferences_get", id="conference_id"),
    }


def conferencecall_links() -> Json:
    """Links from a participant to its call and its conference, and to kicking it."""
    return {"Kick": link("conferencecalls_delete", id="id"), "GetCall": link("calls_get", id="reference_id"),
            "GetConference": link("conferences_get", id="conference_id")}


def recording_links() -> Json:
    """Links from a recording to its files and its conference."""
    return {"GetFile": link("recordingfiles_get", id="id"),
            "GetFirstTrack": link("recordingfiles_track_get", id="id", conferencecall_id="tracks/0/conferencecall_id"),
            "GetConference": link("conferences_get", id="reference_id")}


def paths(prefix: str) -> Json:
    """Every path of the API under `prefix` (/v1.0)."""
    not_progressing = "The conference is not progressing."
    conference_gone = "The conference is terminating or terminated."
    conference = {
        "get": getter("conferences_get", "Conference", "conference", "Conference", conference_links()),
        "put": operation(
            "conferences_update", "Conference", "Update a conference",
            "Change its name, detail, data, timeout or actions (only the fields given). `type` is immutable: if "
            "given it must be the current one. A changed timeout counts from the conference's creation.",
            ok("Conference"), {400: BAD_ID + f" Or: {BAD_BODY}, an unknown field, a field of the wrong type, a "
                               "different type.", 404: "No such conference.", 409: conference_gone,
                               413: TOO_LARGE},
            body="ConferenceUpdate", body_required=False),
        "delete": operation(
            "conferences_delete", "Conference", "Terminate a conference",
            "Recording and transcription end, every participant is kicked; it is `terminated` once nobody is "
            "left (answered with its state then, `terminating` or `terminated`).",
            ok("Conference"), {400: BAD_ID, 404: "No such conference.", 409: "Already terminating or terminated."}),
    }
    return {
        f"{prefix}/conferences": {
            "get": listing("conferences_list", "Conference", "conferences", "Conference"),
            "post": operation(
                "conferences_create", "Conference", "Create a conference",
                "A `conference` room (stays up until deleted or timed out) or a `connect` two-party bridge (ends "
                "when either party leaves). It is `progressing`, ready for calls, when this answers; callers dial "
                "in at `sip:direct.<direct_hash>@<host>`. Unknown fields are refused.",
                ok("Conference", links=conference_links()),
                {400: f"{BAD_BODY}, `type` is missing or not conference/connect, an unknown field, a field of the "
                      "wrong type, a negative timeout, an invalid action.", 413: TOO_LARGE},
                body="ConferenceCreate"),
        },
        f"{prefix}/conferences/{{id}}": conference,
        f"{prefix}/conferences/{{id}}/recording_start": {"post": conference_action(
            "conferences_recording_start", "Start recording",
            "Record the conference's mix to a WAV file (with `tracks`, each participant's own audio too). Only "
            "while the conference is progressing, one recording at a time. Answered with the conference, whose "
            "`recording_id` is the new recording.",
            {400: f"{BAD_ID} Or: {BAD_BODY}, format is not wav, a negative duration; or {not_progressing}",
             409: "The conference is recording already."},
            body="RecordingStart", links=conference_links())},
        f"{prefix}/conferences/{{id}}/recording_stop": {"post": conference_action(
            "conferences_recording_stop", "Stop recording",
            "End the active recording; answered once its file is complete, with the conference.",
            {409: "The conference has no active recording."})},
        f"{prefix}/conferences/{{id}}/transcribe_start": {"post": conference_action(
            "conferences_transcribe_start", "Start transcribing",
            "Transcribe the conference in `language`. Only while the conference is progressing, one "
            "transcription at a time. Answered with the conference, whose `transcribe_id` is the new transcribe.",
            {400: f"{BAD_ID} Or: {BAD_BODY}, language is missing or not a BCP 47 tag; or {not_progressing}",
             409: "The conference is being transcribed already."},
            body="TranscribeStart", links=conference_links())},
        f"{prefix}/conferences/{{id}}/transcribe_stop": {"post": conference_action(
            "conferences_transcribe_stop", "Stop transcribing",
            "End the active transcription (its transcribe becomes `done`); answered with the conference.",
            {409: "The conference has no active transcription."})},
        f"{prefix}/conferences/{{id}}/direct-hash-regenerate": {"post": conference_action(
            "conferences_direct_hash_regenerate", "Regenerate the direct hash",
            "Give the conference a new `direct_hash`: the old SIP URI stops dialling in at once. No body is "
            "expected (one that is not a JSON object is refused).",
            {400: f"{BAD_ID} Or: {BAD_BODY}.", 409: "The conference is terminated.", 413: TOO_LARGE})},
        f"{prefix}/conferences/{{id}}/media_stream": {"get": websocket(
            "conferences_media_stream", "Conference", "Join as a media WebSocket",
            "Upgrade to a WebSocket that is a participant of the conference (a call of type `websocket`). The "
            "server first sends a text frame `{type: media_stream_started, conference_id, conferencecall_id, "
            "call_id, rate, format: s16le, frame_ms: 20}`, then binary frames of 20 ms of 16-bit little-endian "
            "mono PCM at `rate` (what the participant hears). Binary frames from the client are its voice; text "
            "frames get an error message. When the server ends the participation it closes with code 4000.",
            {404: "No such conference.", 409: "The conference is not progressing, or a connect conference is full.",
             503: "No RTP port is free."},
            parameters=media_stream_parameters())},
        f"{prefix}/conferencecalls": {"get": listing("conferencecalls_list", "Conferencecall", "participants",
                                                     "Conferencecall")},
        f"{prefix}/conferencecalls/{{id}}": {
            "get": getter("conferencecalls_get", "Conferencecall", "participant", "Conferencecall",
                           conferencecall_links()),
            "delete": operation(
                "conferencecalls_delete", "Conferencecall", "Kick a participant",
                "The participant is `leaving` now and `leaved` once its call has ended (answered with it).",
                ok("Conferencecall"), {400: BAD_ID, 404: "No such participant.",
                                       409: "Only joining or joined participants can be kicked."}),
        },
        f"{prefix}/calls": {
            "get": listing("calls_list", "Call", "calls", "Call"),
            "post": operation(
                "calls_create", "Call", "Dial out",
                "Place one SIP call per destination; each joins the conference of the conference_join action once "
                "answered. Every destination is checked before any is dialled.",
                ok("CallsCreated"),
                {400: f"{BAD_BODY}, 1 to 20 destinations `{{type: sip, target}}` with a valid SIP target, and a "
                      "conference_join action with a conference_id UUID are needed.", 404: "No such conference.",
                 409: "The conference is not progressing, or a connect conference is full.", 413: TOO_LARGE},
                body="CallsCreate"),
        },
        f"{prefix}/calls/{{id}}": {
            "get": getter("calls_get", "Call", "call", "Call", call_links()),
            "delete": operation(
                "calls_delete", "Call", "Hang up a call",
                "A ringing call is cancelled, an answered one hung up (and leaves its conference).",
                ok("Call"), {400: BAD_ID, 404: "No such call.", 409: "The call is over already."}),
        },
        f"{prefix}/calls/{{id}}/mute": {
            "post": call_control("calls_mute", "Mute",
                                 "Add a mute direction to what is muted already: `in` (not heard), `out` (hears "
                                 "nothing), `both`.", body="MuteStart", body_required=True),
            "delete": call_control("calls_unmute", "Unmute",
                                   "Take a mute direction away (`both`, the default, unmutes completely).",
                                   body="MuteStop"),
        },
        f"{prefix}/calls/{{id}}/gain": {
            "post": call_control("calls_gain_set", "Set the gain",
                                 f"Set the gain in dB ({GAIN_RANGE_DB[0]:g} to {GAIN_RANGE_DB[1]:g}) of the "
                                 "caller's voice (`in`), of what it hears (`out`) or of both.",
                                 body="GainSet", body_required=True),
            "delete": call_control("calls_gain_reset", "Reset the gain",
                                   "Set the gain of `direction` (default `both`) back to 0 dB.", body="GainReset"),
        },
        f"{prefix}/calls/{{id}}/hold": {
            "post": call_control("calls_hold", "Hold", "Put the call on hold: neither heard nor hearing. No body."),
            "delete": call_control("calls_unhold", "Unhold", "Take the call off hold. No body."),
        },
        f"{prefix}/recordings": {"get": listing("recordings_list", "Recording", "recordings", "Recording")},
        f"{prefix}/recordings/{{id}}": {"get": getter("recordings_get", "Recording", "recording", "Recording",
                                                                recording_links())},
        f"{prefix}/recordingfiles/{{id}}": {"get": operation(
            "recordingfiles_get", "Recording", "Download a recording",
            "The recording's mixed audio as a WAV file.", wav("The WAV file."),
            {400: BAD_ID, 404: "No such recording, or it has no file."})},
        f"{prefix}/recordingfiles/{{id}}/tracks/{{conferencecall_id}}": {"get": operation(
            "recordingfiles_track_get", "Recording", "Download a participant's track",
            "One participant's own audio of a recording made with `tracks`, as a WAV file.", wav("The WAV file."),
            {400: "The `id` or `conferencecall_id` in the path is not a UUID.",
             404: "No such recording, or it has no track of that participant."},
            parameters=(param("conferencecall_id"),))},
        f"{prefix}/transcribes": {"get": listing("transcribes_list", "Transcribe", "transcribes", "Transcribe")},
        f"{prefix}/transcribes/{{id}}": {"get": getter("transcribes_get", "Transcribe", "transcribe", "Transcribe", {
            "GetConference": link("conferences_get", id="reference_id")})},
        f"{prefix}/customer": {"get": operation(
            "customer_get", "Customer", "Get the caller's customer",
            "Its id and webhook: URL, method and the secret its deliveries are signed with.", ok("Customer"),
            {404: "The token's customer does not exist."})},
        f"{prefix}/ws": {"get": websocket(
            "events_websocket", "Events", "Subscribe to events over a WebSocket",
            'Upgrade to a WebSocket of the customer\'s resource events. Send `{"type": "subscribe" | '
            '"unsubscribe", "topics": [...]}` (topics lie under `customer_id:<your customer id>`); each change '
            'is acknowledged with `{"type": "subscribed" | "unsubscribed", "topics": [...]}`, a bad message gets '
            '`{"type": "error", "message": ...}`. Events arrive as `{"type", "data"}`.', {})},
    }


def media_stream_parameters() -> tuple[Json, ...]:
    """The query parameters of the media WebSocket."""
    return ({"name": "rate", "in": "query", "required": False,
             "schema": {"type": "integer", "enum": list(RATES), "default": DEFAULT_RATE},
             "description": "Sample rate of the PCM both ways."},
            {"name": "name", "in": "query", "required": False, "schema": {"type": "string", "default": "websocket"},
             "description": f"Shown as the call's source (cut to {MAX_NAME} characters)."})


def path_parameters(path: str, op: Json) -> None:
    """Put the `{id}` path parameter first in every operation whose path has it."""
    if "{id}" in path:
        op["parameters"] = [param("id"), *(p for p in op.get("parameters", []) if p != param("id"))]


@functools.cache
def document() -> Json:
    """The OpenAPI document (built once; the same dict is returned every time, so it must not be modified)."""
    from .rest import API_PREFIX  # here: rest imports this module

    all_paths = paths(API_PREFIX)
    for path, item in all_paths.items():
        for op in item.values():
            path_parameters(path, op)
    uuid = {"type": "string", "format": "uuid"}
    return {
        "openapi": OPENAPI_VERSION,
        "info": {
            "title": "confbridge Conference API",
            "version": "1.0",
            "description": "VoIPBIN-style conference API: conferences, their participants (conferencecalls), calls, "
                           "recordings and transcribes. Every /v1.0 request needs a token, as `?token=` or "
                           "`Authorization: Bearer`, and sees only its customer's resources. Every error is "
                           '`{"error": {"status", "reason", "message", "request_id"}}`; bad input is a 4xx.',
        },
        "tags": [{"name": name} for name in ("Conference", "Conferencecall", "Call", "Recording", "Transcribe",
                                              "Customer", "Events")],
        "security": [{"token": []}, {"bearer": []}],
        "paths": all_paths,
        "components": {
            "securitySchemes": {
                "token": {"type": "apiKey", "in": "query", "name": "token"},
                "bearer": {"type": "http", "scheme": "bearer"},
            },
            "parameters": {
                "id": {"name": "id", "in": "path", "required": True, "schema": uuid,
                       "description": "The resource's id (a UUID; anything else is a 400)."},
                "conferencecall_id": {"name": "conferencecall_id", "in": "path", "required": True, "schema": uuid,
                                      "description": "The participant whose track is wanted."},
                "page_size": {"name": "page_size", "in": "query", "required": False,
                              "schema": {"type": "integer", "minimum": 1, "maximum": MAX_PAGE_SIZE,
                                         "default": MAX_PAGE_SIZE}},
                "page_token": {"name": "page_token", "in": "query", "required": False, "schema": {"type": "string"},
                               "description": "The `next_page_token` of the previous page."},
            },
            "headers": {"X-Request-Id": {"required": True, "schema": uuid,
                                         "description": "The request's id, as in the server's log."}},
            "schemas": schemas(),
        },
    }
