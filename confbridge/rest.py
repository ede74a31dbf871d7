"""The REST API (VoIPBIN Conference API, /v1.0) on aiohttp.

Every request is authenticated by `?token=` or `Authorization: Bearer`, scoped to the token's
customer, and every error uses one envelope: `{"error": {"status", "reason", "message",
"request_id"}}`. Bad input is a 4xx with a reason, never a 500.
"""

from __future__ import annotations

import asyncio
import json
import logging
import uuid
from collections.abc import Awaitable, Callable
from http import HTTPStatus
from typing import Any

from aiohttp import web
from aiohttp.abc import AbstractAccessLogger
from prometheus_client import CollectorRegistry

from .errors import ConfbridgeError, InvalidRequest, NotFound, Unauthorized
from .event_socket import add_event_socket
from .media_socket import media_stream
from .metrics import CONTENT_TYPE as METRICS_CONTENT_TYPE
from .metrics import build_registry, render
from .openapi import document
from .service import CONFERENCE_FIELDS, ConferenceService
from .store import MAX_PAGE_SIZE, Store
from .telephony import Telephony

logger = logging.getLogger(__name__)

API_PREFIX = "/v1.0"
Handler = Callable[[web.Request], Awaitable[web.StreamResponse]]
CUSTOMER = web.RequestKey("customer_id", str)
REQUEST_ID = web.RequestKey("request_id", str)
SERVICE = web.AppKey("service", ConferenceService)
STORE = web.AppKey("store", Store)
TELEPHONY = web.AppKey("telephony", Telephony)
METRICS = web.AppKey("metrics", CollectorRegistry)
MAX_DESTINATIONS = 20


def error_body(status: int, message: str, request_id: str) -> dict[str, Any]:
    """The error envelope."""
    return {"error": {"status": status, "reason": HTTPStatus(status).phrase, "message": message,
                      "request_id": request_id}}


@web.middleware
async def error_envelope(request: web.Request, handler: Handler) -> web.StreamResponse:
    """Give every request an id and turn every failure into the error envelope."""
    request_id = str(uuid.uuid4())
    request[REQUEST_ID] = request_id
    try:
        response = await handler(request)
    except ConfbridgeError as exc:
        if exc.status >= 500:
            logger.error("request %s %s %s: %s", request_id, request.method, request.path, exc)
        response = web.json_response(error_body(exc.status, str(exc), request_id), status=exc.status)
    except web.HTTPException as exc:
        message = exc.text if exc.status != 404 else f"no route for {request.method} {request.path}"
        response = web.json_response(error_body(exc.status, message or exc.reason, request_id), status=exc.status,
                                     headers={k: v for k, v in exc.headers.items() if k.lower() == "allow"})
    except Exception:
        logger.exception("request %s %s %s failed", request_id, request.method, request.path)
        response = web.json_response(error_body(500, "internal error", request_id), status=500)
    response.headers["X-Request-Id"] = request_id
    return response


@web.middleware
async def authenticate(request: web.Request, handler: Handler) -> web.StreamResponse:
    """Resolve the token to a customer for every /v1.0 route."""
    if request.path.startswith(API_PREFIX + "/"):
        token = request.query.get("token")
        authorization = request.headers.get("Authorization", "")
        if not token and authorization.lower().startswith("bearer "):
            token = authorization[7:].strip()
        if not token:
            raise Unauthorized("missing token: pass ?token= or an Authorization: Bearer header")
        customer_id = request.app[STORE].customer_for_token(token)
        if customer_id is None:
            raise Unauthorized("invalid token")
        request[CUSTOMER] = customer_id
    return await handler(request)


# -- input helpers --------------------------------------------------------------------------------

MAX_JSON_DEPTH = 32
"""How deeply objects and arrays may nest in a request body."""


async def json_object(request: web.Request) -> dict[str, Any]:
    """The request body as a JSON object ({} when empty): strict JSON (no NaN or Infinity), nested at most
    `MAX_JSON_DEPTH` deep, every string valid Unicode, so whatever is accepted can be stored and sent back."""
    raw = await request.read()
    if not raw.strip():
        return {}
    try:
        body = json.loads(raw, parse_constant=_no_constant)
    except (ValueError, UnicodeDecodeError, RecursionError) as exc:
        raise InvalidRequest(f"body is not valid JSON: {str(exc)[:200]}") from None
    if not isinstance(body, dict):
        raise InvalidRequest("body must be a JSON object")
    _check_values(body)
    return body


def _no_constant(name: str) -> Any:
    raise ValueError(f"{name} is not a JSON number")


def _check_values(body: dict[str, Any]) -> None:
    """Refuse bodies nested too deeply or holding strings that are not valid Unicode (lone surrogates)."""
    pending: list[tuple[Any, int]] = [(body, 1)]
    while pending:
        value, depth = pending.pop()
        if isinstance(value, dict | list):
            if depth > MAX_JSON_DEPTH:
                raise InvalidRequest(f"body nests more than {MAX_JSON_DEPTH} levels deep")
            items = [*value.keys(), *value.values()] if isinstance(value, dict) else value
            pending.extend((item, depth + 1) for item in items)
        elif isinstance(value, str):
            try:
                value.encode()
            except UnicodeEncodeError:
                raise InvalidRequest("body holds a string that is not valid Unicode") from None


_TYPE_NAMES = {str: "a string", int: "an integer", bool: "true or false", dict: "an object", list: "an array"}


def field_of(body: dict[str, Any], name: str, kind: type, default: Any) -> Any:
    """A typed optional field of a JSON object (null means the default; booleans are not integers)."""
    value = body.get(name)
    if value is None:
        return default
    if not isinstance(value, kind) or (kind is int and isinstance(value, bool)):
        raise InvalidRequest(f"{name} must be {_TYPE_NAMES[kind]}")
    return value


def resource_id(request: web.Request) -> str:
    """The `{id}` of the path, which must be a UUID."""
    return valid_uuid(request.match_info["id"], "id")


def valid_uuid(text: object, name: str) -> str:
    """A UUID given as text, normalised; InvalidRequest naming `name` otherwise."""
    try:
        return str(uuid.UUID(str(text)))
    except ValueError:
        raise InvalidRequest(f"{name} {text!r} is not a valid UUID") from None


def paging(request: web.Request) -> tuple[int, str | None]:
    """`page_size` (1-100, default 100) and `page_token` from the query."""
    size_text = request.query.get("page_size", str(MAX_PAGE_SIZE))
    if not size_text.isdigit() or not 1 <= int(size_text) <= MAX_PAGE_SIZE:
        raise InvalidRequest(f"page_size must be an integer from 1 to {MAX_PAGE_SIZE}")
    return int(size_text), request.query.get("page_token") or None


def ok(payload: dict[str, Any]) -> web.Response:
    """A 200 JSON response."""
    return web.json_response(payload)


# -- handlers -------------------------------------------------------------------------------------

async def list_conferences(request: web.Request) -> web.Response:
    size, token = paging(request)
    return ok(request.app[SERVICE].list_conferences(request[CUSTOMER], size, token).to_json())


CONFERENCE_BODY: dict[str, type] = {"type": str, **CONFERENCE_FIELDS}
"""The fields a conference is created or updated with, and their JSON types."""


def conference_fields(body: dict[str, Any]) -> dict[str, Any]:
    """The conference fields of a body, type-checked; unknown fields are refused (a typo must not pass silently)."""
    unknown = sorted(set(body) - set(CONFERENCE_BODY))
    if unknown:
        raise InvalidRequest(f"unknown fields {', '.join(unknown)}; a conference has {', '.join(CONFERENCE_BODY)}")
    return {name: field_of(body, name, kind, None) for name, kind in CONFERENCE_BODY.items()
            if body.get(name) is not None}


async def create_conference(request: web.Request) -> web.Response:
    fields = conference_fields(await json_object(request))
    if "type" not in fields:
        raise InvalidRequest("type is required (conference or connect)")
    return ok(request.app[SERVICE].create_conference(request[CUSTOMER], **fields).to_json())


async def update_conference(request: web.Request) -> web.Response:
    conference_id = resource_id(request)
    fields = conference_fields(await json_object(request))
    return ok(request.app[SERVICE].update_conference(request[CUSTOMER], conference_id, fields).to_json())


async def get_conference(request: web.Request) -> web.Response:
    return ok(request.app[SERVICE].get_conference(request[CUSTOMER], resource_id(request)).to_json())


async def delete_conference(request: web.Request) -> web.Response:
    return ok(request.app[SERVICE].delete_conference(request[CUSTOMER], resource_id(request)).to_json())


async def recording_start(request: web.Request) -> web.Response:
    conference_id = resource_id(request)
    body = await json_object(request)
    if field_of(body, "format", str, "wav") != "wav":
        raise InvalidRequest("format must be wav")
    tracks = field_of(body, "tracks", bool, False)
    duration = field_of(body, "duration", int, None)
    return ok(request.app[SERVICE].start_recording(request[CUSTOMER], conference_id, tracks=tracks,
                                                   duration=duration or None).to_json())


RECORDING_STOP_WAIT = 10.0
"""Seconds recording_stop waits for the file to be complete before answering anyway."""


async def recording_stop(request: web.Request) -> web.Response:
    conference, finished = request.app[SERVICE].stop_recording(request[CUSTOMER], resource_id(request))
    try:
        await asyncio.wait_for(asyncio.shield(finished), timeout=RECORDING_STOP_WAIT)
    except TimeoutError:
        logger.warning("conference %s: recording still being finished after %g s; answering anyway",
                       conference.id, RECORDING_STOP_WAIT)
    return ok(conference.to_json())


async def transcribe_start(request: web.Request) -> web.Response:
    conference_id = resource_id(request)
    body = await json_object(request)
    language = field_of(body, "language", str, None)
    if language is None:
        raise InvalidRequest('language is required: a BCP 47 tag such as "en-US"')
    return ok(request.app[SERVICE].start_transcribe(request[CUSTOMER], conference_id, language).to_json())


async def transcribe_stop(request: web.Request) -> web.Response:
    return ok(request.app[SERVICE].stop_transcribe(request[CUSTOMER], resource_id(request)).to_json())


async def regenerate_direct_hash(request: web.Request) -> web.Response:
    conference_id = resource_id(request)
    await json_object(request)  # no body is expected; one that is not JSON is still refused
    return ok(request.app[SERVICE].regenerate_direct_hash(request[CUSTOMER], conference_id).to_json())


async def list_transcribes(request: web.Request) -> web.Response:
    size, token = paging(request)
    return ok(request.app[SERVICE].list_transcribes(request[CUSTOMER], size, token).to_json())


async def get_transcribe(request: web.Request) -> web.Response:
    return ok(request.app[SERVICE].get_transcribe(request[CUSTOMER], resource_id(request)).to_json())


async def get_customer(request: web.Request) -> web.Response:
    """The caller's own customer: its id and webhook (URL, method and the secret its deliveries are signed with)."""
    customer = request.app[STORE].customer(request[CUSTOMER])
    if customer is None:
        raise NotFound("customer not found")
    return ok(customer)


async def list_conferencecalls(request: web.Request) -> web.Response:
    size, token = paging(request)
    return ok(request.app[SERVICE].list_conferencecalls(request[CUSTOMER], size, token).to_json())


async def get_conferencecall(request: web.Request) -> web.Response:
    return ok(request.app[SERVICE].get_conferencecall(request[CUSTOMER], resource_id(request)).to_json())


async def kick_conferencecall(request: web.Request) -> web.Response:
    return ok(request.app[SERVICE].kick(request[CUSTOMER], resource_id(request)).to_json())


async def list_calls(request: web.Request) -> web.Response:
    size, token = paging(request)
    return ok(request.app[SERVICE].list_calls(request[CUSTOMER], size, token).to_json())


async def get_call(request: web.Request) -> web.Response:
    return ok(request.app[SERVICE].get_call(request[CUSTOMER], resource_id(request)).to_json())


async def create_calls(request: web.Request) -> web.Response:
    """Dial out: one call per destination, each joining the conference of its conference_join action."""
    body = await json_object(request)
    destinations = field_of(body, "destinations", list, [])
    if not destinations or len(destinations) > MAX_DESTINATIONS:
        raise InvalidRequest(f"destinations must list 1 to {MAX_DESTINATIONS} addresses")
    targets = []
    for destination in destinations:
        if not isinstance(destination, dict) or destination.get("type") != "sip":
            raise InvalidRequest('each destination must be {"type": "sip", "target": "sip:user@host"}')
        targets.append(field_of(destination, "target", str, ""))
        Telephony.parse_target(targets[-1])  # every destination is checked before any is dialled
    conference_id = None
    for action in field_of(body, "actions", list, []):
        if not isinstance(action, dict) or action.get("type") != "conference_join":
            raise InvalidRequest("the only supported action is conference_join")
        option = field_of(action, "option", dict, {})
        conference_id = valid_uuid(option.get("conference_id"), "conference_id")
    if conference_id is None:
        raise InvalidRequest('actions must hold a {"type": "conference_join", "option": {"conference_id": ...}}')
    source = field_of(body, "source", dict, {})
    if not all(isinstance(value, str) for value in source.values()):
        raise InvalidRequest("every field of source must be a string")
    dialer = request.app[TELEPHONY]
    calls = [dialer.dial(request[CUSTOMER], target=target, conference_id=conference_id, source=source)
             for target in targets]
    return ok({"calls": [call.to_json() for call in calls]})


async def hangup_call(request: web.Request) -> web.Response:
    return ok(request.app[SERVICE].hangup_call(request[CUSTOMER], resource_id(request)).to_json())


async def control_direction(request: web.Request, *, default: str | None) -> tuple[dict[str, Any], str]:
    """The body and its `direction` (required unless there is a default; the service checks its value)."""
    body = await json_object(request)
    direction = field_of(body, "direction", str, default)
    if direction is None:
        raise InvalidRequest('direction is required: "in", "out" or "both"')
    return body, direction


async def mute_call(request: web.Request) -> web.Response:
    _, direction = await control_direction(request, default=None)
    return ok(request.app[SERVICE].mute(request[CUSTOMER], resource_id(request), direction).to_json())


async def unmute_call(request: web.Request) -> web.Response:
    _, direction = await control_direction(request, default="both")
    return ok(request.app[SERVICE].unmute(request[CUSTOMER], resource_id(request), direction).to_json())


async def set_gain(request: web.Request) -> web.Response:
    body, direction = await control_direction(request, default=None)
    return ok(request.app[SERVICE].set_gain(request[CUSTOMER], resource_id(request), direction,
                                            body.get("gain")).to_json())


async def reset_gain(request: web.Request) -> web.Response:
    _, direction = await control_direction(request, default="both")
    return ok(request.app[SERVICE].set_gain(request[CUSTOMER], resource_id(request), direction, 0.0).to_json())


async def hold_call(request: web.Request) -> web.Response:
    return ok(request.app[SERVICE].set_hold(request[CUSTOMER], resource_id(request), True).to_json())


async def unhold_call(request: web.Request) -> web.Response:
    return ok(request.app[SERVICE].set_hold(request[CUSTOMER], resource_id(request), False).to_json())


async def list_recordings(request: web.Request) -> web.Response:
    size, token = paging(request)
    return ok(request.app[SERVICE].list_recordings(request[CUSTOMER], size, token).to_json())


async def get_recording(request: web.Request) -> web.Response:
    return ok(request.app[SERVICE].get_recording(request[CUSTOMER], resource_id(request)).to_json())


async def get_recording_file(request: web.Request) -> web.StreamResponse:
    service = request.app[SERVICE]
    recording = service.get_recording(request[CUSTOMER], resource_id(request))
    path = service.recording_path(recording)
    if not path.is_file():
        raise NotFound(f"recording {recording.id} has no file")
    return web.FileResponse(path, headers={"Content-Type": "audio/wav",
                                           "Content-Disposition": f'attachment; filename="{recording.filename}"'})


async def get_track_file(request: web.Request) -> web.StreamResponse:
    service = request.app[SERVICE]
    recording = service.get_recording(request[CUSTOMER], resource_id(request))
    participant = valid_uuid(request.match_info["conferencecall_id"], "conferencecall_id")
    path = service.track_path(recording, participant)
    if not path.is_file():
        raise NotFound(f"recording {recording.id} has no track file for {participant}")
    return web.FileResponse(path, headers={"Content-Type": "audio/wav",
                                           "Content-Disposition": f'attachment; filename="{participant}.wav"'})


async def get_metrics(request: web.Request) -> web.Response:
    """Prometheus metrics (outside /v1.0 and without a token, as scrapers expect; bind HTTP accordingly)."""
    registry = request.app[METRICS]
    return web.Response(body=render(registry), headers={"Content-Type": METRICS_CONTENT_TYPE})


async def get_openapi(request: web.Request) -> web.Response:
    """The OpenAPI document of the API (outside /v1.0 and without a token, so tools can fetch it)."""
    return web.json_response(document())


class AccessLogger(AbstractAccessLogger):
    """One line per request: method, path without the query (tokens travel there), status, time, request id."""

    def log(self, request: web.BaseRequest, response: web.StreamResponse, time: float) -> None:
        self.logger.info("%s %s %s -> %d in %.1f ms (request %s)", request.remote, request.method, request.path,
                         response.status, time * 1000, response.headers.get("X-Request-Id", "-"))


def build_app(service: ConferenceService, store: Store, telephony: Telephony) -> web.Application:
    """The aiohttp application serving the API."""
    app = web.Application(middlewares=[error_envelope, authenticate], client_max_size=1024 * 1024)
    app[SERVICE] = service
    app[STORE] = store
    app[TELEPHONY] = telephony
    app[METRICS] = build_registry(telephony.media)
    app.router.add_get("/metrics", get_metrics)
    app.router.add_get("/openapi.json", get_openapi)
    p = API_PREFIX
    app.router.add_get(f"{p}/conferences", list_conferences)
    app.router.add_post(f"{p}/conferences", create_conference)
    app.router.add_get(f"{p}/conferences/{{id}}", get_conference)
    app.router.add_put(f"{p}/conferences/{{id}}", update_conference)
    app.router.add_delete(f"{p}/conferences/{{id}}", delete_conference)
    app.router.add_post(f"{p}/conferences/{{id}}/recording_start", recording_start)
    app.router.add_post(f"{p}/conferences/{{id}}/recording_stop", recording_stop)
    app.router.add_post(f"{p}/conferences/{{id}}/transcribe_start", transcribe_start)
    app.router.add_post(f"{p}/conferences/{{id}}/transcribe_stop", transcribe_stop)
    app.router.add_post(f"{p}/conferences/{{id}}/direct-hash-regenerate", regenerate_direct_hash)
    app.router.add_get(f"{p}/conferencecalls", list_conferencecalls)
    app.router.add_get(f"{p}/conferencecalls/{{id}}", get_conferencecall)
    app.router.add_delete(f"{p}/conferencecalls/{{id}}", kick_conferencecall)
    app.router.add_get(f"{p}/calls", list_calls)
    app.router.add_post(f"{p}/calls", create_calls)
    app.router.add_get(f"{p}/calls/{{id}}", get_call)
    app.router.add_delete(f"{p}/calls/{{id}}", hangup_call)
    app.router.add_post(f"{p}/calls/{{id}}/mute", mute_call)
    app.router.add_delete(f"{p}/calls/{{id}}/mute", unmute_call)
    app.router.add_post(f"{p}/calls/{{id}}/gain", set_gain)
    app.router.add_delete(f"{p}/calls/{{id}}/gain", reset_gain)
    app.router.add_post(f"{p}/calls/{{id}}/hold", hold_call)
    app.router.add_delete(f"{p}/calls/{{id}}/hold", unhold_call)
    app.router.add_get(f"{p}/transcribes", list_transcribes)
    app.router.add_get(f"{p}/transcribes/{{id}}", get_transcribe)
    app.router.add_get(f"{p}/customer", get_customer)
    app.router.add_get(f"{p}/recordings", list_recordings)
    app.router.add_get(f"{p}/recordings/{{id}}", get_recording)
    app.router.add_get(f"{p}/recordingfiles/{{id}}", get_recording_file)
    app.router.add_get(f"{p}/recordingfiles/{{id}}/tracks/{{conferencecall_id}}", get_track_file)
    app.router.add_get(f"{p}/conferences/{{id}}/media_stream", media_stream)
    add_event_socket(app, f"{p}/ws")
    return app
