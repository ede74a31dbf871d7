"""Flow actions as a conference's `pre_actions` and `post_actions` hold them: `{id, next_id, type, option}`.

They are checked and stored here; running them is the flow engine's business. An action is refused when it
is not an object, has a field we do not know, an unknown `type`, an `id`/`next_id` that is not a UUID or an
`option` that is not an object; missing `id`/`next_id` are the nil UUID and a missing `option` is `{}`.
"""

from __future__ import annotations

import uuid
from typing import Any

from .errors import InvalidRequest
from .timestamps import NIL_UUID

ACTION_TYPES = frozenset({
    "ai_talk", "amd", "answer", "beep", "branch", "call", "condition_call_digits", "condition_call_status",
    "condition_datetime", "condition_variable", "confbridge_join", "conference_join", "connect",
    "conversation_send", "digits_receive", "digits_send", "echo", "email_send", "external_media_start",
    "external_media_stop", "fetch", "fetch_flow", "goto", "hangup", "hangup_relay", "message_send", "mute",
    "play", "queue_join", "recording_start", "recording_stop", "sleep", "stop", "stream_echo", "talk",
    "transcribe_recording", "transcribe_start", "transcribe_stop", "variable_set", "webhook_send",
})
"""The action types of VoIPBIN flows."""
ACTION_FIELDS = frozenset({"id", "next_id", "type", "option"})
MAX_ACTIONS = 100


def checked_actions(value: object, name: str) -> list[dict[str, Any]]:
    """`value` as a list of complete action objects; InvalidRequest naming `name` and the culprit otherwise."""
    if value is None:
        return []
    if not isinstance(value, list):
        raise InvalidRequest(f"{name} must be an array of actions")
    if len(value) > MAX_ACTIONS:
        raise InvalidRequest(f"{name} may hold at most {MAX_ACTIONS} actions")
    return [_checked_action(item, f"{name}[{index}]") for index, item in enumerate(value)]


def _checked_action(item: object, where: str) -> dict[str, Any]:
    if not isinstance(item, dict):
        raise InvalidRequest(f"{where} must be an object {{id, next_id, type, option}}")
    unknown = sorted(set(item) - ACTION_FIELDS)
    if unknown:
        raise InvalidRequest(f"{where} has unknown fields {', '.join(unknown)} (allowed: id, next_id, type, option)")
    action_type = item.get("type")
    if not isinstance(action_type, str) or action_type not in ACTION_TYPES:
        raise InvalidRequest(f"{where}.type must be one of {', '.join(sorted(ACTION_TYPES))}, not {action_type!r}")
    option = item.get("option")
    if option is None:
        option = {}
    if not isinstance(option, dict):
        raise InvalidRequest(f"{where}.option must be an object")
    return {"id": _action_uuid(item.get("id"), f"{where}.id"),
            "next_id": _action_uuid(item.get("next_id"), f"{where}.next_id"),
            "type": action_type, "option": option}


def _action_uuid(value: object, where: str) -> str:
    if value is None:
        return NIL_UUID
    if not isinstance(value, str):
        raise InvalidRequest(f"{where} must be a UUID string")
    try:
        return str(uuid.UUID(value))
    except ValueError:
        raise InvalidRequest(f"{where} {value!r} is not a valid UUID") from None
