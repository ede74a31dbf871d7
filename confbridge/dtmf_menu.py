"""The in-call DTMF menu: key sequences a participant types to act on its own call (e.g. `*6` toggles self-mute).

Each call has its own short memory of the keys it pressed; a sequence counts when it is typed with no more
than `INTER_DIGIT_TIMEOUT` seconds between its keys. Bindings come from the server configuration as
`SEQUENCE=ACTION`; no binding may be a suffix of another (the shorter one would always fire first).
"""

from __future__ import annotations

import enum
import re

INTER_DIGIT_TIMEOUT = 3.0
_SEQUENCE = re.compile(r"[0-9*#A-D]{1,8}")


class MenuAction(enum.StrEnum):
    """What a sequence can do."""

    TOGGLE_MUTE = "toggle_mute"
    """Self-mute on/off: the participant's voice leaves or rejoins the mix."""
    MUTE = "mute"
    UNMUTE = "unmute"
    LEAVE = "leave"
    """Hang up: the participant leaves the conference."""


DEFAULT_MENU: dict[str, MenuAction] = {"*6": MenuAction.TOGGLE_MUTE}


def parse_binding(text: str) -> tuple[str, MenuAction]:
    """`*6=toggle_mute` → ("*6", TOGGLE_MUTE); ValueError with the reason otherwise."""
    sequence, sep, action = text.partition("=")
    sequence = sequence.strip().upper()
    if not sep or not _SEQUENCE.fullmatch(sequence):
        raise ValueError(f"bad DTMF menu binding {text!r}: expected SEQUENCE=ACTION, SEQUENCE of 1-8 of 0-9*#A-D")
    try:
        return sequence, MenuAction(action.strip().lower())
    except ValueError:
        choices = ", ".join(action.value for action in MenuAction)
        raise ValueError(f"bad DTMF menu action {action!r}: one of {choices}") from None


def check_menu(bindings: dict[str, MenuAction]) -> None:
    """ValueError when one sequence ends another (it could never be typed)."""
    for sequence in bindings:
        for other in bindings:
            if other != sequence and other.endswith(sequence):
                raise ValueError(f"DTMF menu sequence {sequence!r} ends {other!r}, which could never be typed")


class DtmfMenu:
    """Key presses of many calls in, the actions they complete out."""

    def __init__(self, bindings: dict[str, MenuAction], *, timeout: float = INTER_DIGIT_TIMEOUT) -> None:
        check_menu(bindings)
        self.bindings = dict(bindings)
        self.timeout = timeout
        self._longest = max((len(sequence) for sequence in bindings), default=0)
        self._typed: dict[str, tuple[str, float]] = {}

    def press(self, call_id: str, digit: str, now: float) -> MenuAction | None:
        """A key pressed on a call; the action it completes, if any."""
        if not self.bindings:
            return None
        typed, last = self._typed.get(call_id, ("", now))
        if now - last > self.timeout:
            typed = ""
        typed = (typed + digit.upper())[-self._longest :]
        for sequence, action in self.bindings.items():
            if typed.endswith(sequence):
                self._typed.pop(call_id, None)
                return action
        self._typed[call_id] = (typed, now)
        return None

    def forget(self, call_id: str) -> None:
        """The call has ended."""
        self._typed.pop(call_id, None)
