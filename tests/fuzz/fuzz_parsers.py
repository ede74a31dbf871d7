#!/usr/bin/env python3
"""Coverage-guided fuzzing (atheris / libFuzzer) of the code that takes bytes straight off the network.

What: every input goes three ways.

1. `sip.message.parse_message`: it must return a Request or Response or raise `SipParseError`. A parsed
   message must survive `to_bytes()` and a second parse with the same start line, header fields (names
   and values, in order) and body. Content-Length is left out of the header comparison because
   serialising rewrites it on purpose (one field, always equal to the body length); the re-parsed
   message must carry exactly that one value.
2. `sip.sdp.parse_sdp`: it must return a SessionDescription or raise `SdpParseError`, and a parsed
   description must come back equal from `parse_sdp(description.to_bytes())`.
3. One long-lived `sip.useragent.UserAgent`, fed the input as a UDP datagram with a fake clock that
   advances 0.1 s per input; it must never raise. INVITEs it reports are answered 486.

Anything else (another exception, or an `AssertionError` from a failed round trip) is a finding.

Why: a UDP datagram from anyone reaches these functions before any authentication, so they must
reject garbage with their own error types and never crash the stack, and what the stack writes must
read back as what it parsed.

`check_one_input` is the plain check, so pytest can call it without atheris. Run the fuzzer with
`.venv/bin/python tests/fuzz/fuzz_parsers.py [libFuzzer flags] [corpus dirs]`; see README.md here.
"""

from __future__ import annotations

import contextlib
import dataclasses
import importlib
import importlib.util
import sys
from pathlib import Path
from types import ModuleType

# Optional: pytest calls check_one_input without the fuzzer, and main() says how to install it.
atheris: ModuleType | None = importlib.import_module("atheris") if importlib.util.find_spec("atheris") else None

REPO_ROOT = Path(__file__).resolve().parents[2]
if str(REPO_ROOT) not in sys.path:
    sys.path.insert(0, str(REPO_ROOT))  # run as a script, sys.path[0] is tests/fuzz: fuzz the checkout

# Instrument the sip package (and only it) for coverage feedback when running as the fuzzer; when pytest
# imports this module the package is imported plainly (and may already be imported by other tests).
_instrumentation = (
    atheris.instrument_imports(include=["sip"])
    if atheris is not None and __name__ == "__main__"
    else contextlib.nullcontext()
)
with _instrumentation:
    from sip.errors import SipParseError
    from sip.events import InviteReceived
    from sip.message import Request, Response, parse_message
    from sip.sdp import Media, SdpParseError, SessionDescription, parse_sdp
    from sip.useragent import UserAgent

UA_HOST = "192.0.2.1"
UA_PORT = 5060
PEER = ("198.51.100.7", 5070)
TIME_STEP = 0.1
"""Seconds the fake clock advances per input, so transaction timers (T1 = 0.5 s, 32 s timeouts) do fire."""
REJECT_STATUS = 486
_SHOWN = 300
"""Characters of a value shown in a failure message."""


def check_one_input(data: bytes) -> None:
    """Run every check on one input; raise (AssertionError for a broken round trip) on a finding."""
    _check_sip_message(data)
    _check_sdp(data)
    _UA.feed(data)


def TestOneInput(data: bytes) -> None:  # the name atheris documents for the entry point
    """The atheris entry point."""
    check_one_input(data)


# -- SIP messages -------------------------------------------------------------------------------------

MessageView = tuple[tuple[object, ...], list[tuple[str, str]], bytes]


def _check_sip_message(data: bytes) -> None:
    try:
        message = parse_message(data)
    except SipParseError:
        return
    if not isinstance(message, Request | Response):
        raise AssertionError(f"parse_message returned {type(message).__name__}, not a Request or Response")
    wire = message.to_bytes()
    try:
        again = parse_message(wire)
    except SipParseError as exc:
        raise AssertionError(f"the serialised message does not parse again: {exc}\n"
                             f"serialised: {_show(wire)}") from exc
    first, second = _message_view(message), _message_view(again)
    if first != second:
        raise AssertionError(f"round trip changed the message: {_first_difference(first, second)}\n"
                             f"serialised: {_show(wire)}")
    lengths = again.headers.get_all("Content-Length")
    if lengths != [str(len(again.body))]:
        raise AssertionError(f"serialised Content-Length {lengths!r} for a body of {len(again.body)} bytes")


def _message_view(message: Request | Response) -> MessageView:
    """Start line, header fields without Content-Length, and body: what a round trip must keep."""
    start: tuple[object, ...]
    if isinstance(message, Request):
        start = ("request", message.method, str(message.uri), message.version)
    else:
        start = ("response", message.version, message.status_code, message.reason)
    headers = [(name, value) for name, value in message.headers if name != "Content-Length"]
    return start, headers, message.body


def _first_difference(first: MessageView, second: MessageView) -> str:
    if first[0] != second[0]:
        return f"start line {_show(first[0])} became {_show(second[0])}"
    if first[1] != second[1]:
        for index, (before, after) in enumerate(zip(first[1], second[1], strict=False)):
            if before != after:
                return f"header field #{index} {_show(before)} became {_show(after)}"
        return f"{len(first[1])} header fields became {len(second[1])}: {_show(first[1])} -> {_show(second[1])}"
    return f"body {_show(first[2])} became {_show(second[2])}"


# -- SDP ----------------------------------------------------------------------------------------------


def _check_sdp(data: bytes) -> None:
    try:
        description = parse_sdp(data)
    except SdpParseError:
        return
    if not isinstance(description, SessionDescription):
        raise AssertionError(f"parse_sdp returned {type(description).__name__}, not a SessionDescription")
    wire = description.to_bytes()
    try:
        again = parse_sdp(wire)
    except SdpParseError as exc:
        raise AssertionError(f"the serialised SDP does not parse again: {exc}\nserialised: {_show(wire)}") from exc
    if again != description:
        raise AssertionError(f"SDP round trip changed the description: {_sdp_difference(description, again)}\n"
                             f"serialised: {_show(wire)}")


def _sdp_difference(first: SessionDescription, second: SessionDescription) -> str:
    for name, before, after in _field_pairs(first, second):
        if name == "media" and isinstance(before, list) and isinstance(after, list) and len(before) == len(after):
            for index, (media_before, media_after) in enumerate(zip(before, after, strict=True)):
                for media_name, value_before, value_after in _field_pairs(media_before, media_after):
                    if value_before != value_after:
                        return f"media[{index}].{media_name} {_show(value_before)} became {_show(value_after)}"
        elif before != after:
            return f"{name} {_show(before)} became {_show(after)}"
    return f"{_show(first)} became {_show(second)}"


def _field_pairs(first: SessionDescription | Media,
                 second: SessionDescription | Media) -> list[tuple[str, object, object]]:
    return [(item.name, getattr(first, item.name), getattr(second, item.name)) for item in dataclasses.fields(first)]


# -- the user agent -----------------------------------------------------------------------------------


class UaDriver:
    """One UserAgent for the whole run, a fake clock, and an application that rejects every call."""

    def __init__(self) -> None:
        self.ua = UserAgent(host=UA_HOST, port=UA_PORT)
        self.now = 0.0
        self.inputs = 0
        self.messages_sent = 0
        self.invites_answered = 0

    def feed(self, data: bytes) -> None:
        """Deliver `data` as one datagram from PEER, run the timers that are due and drain the output."""
        self.inputs += 1
        self.now = self.inputs * TIME_STEP  # multiplied, not summed, so the clock does not drift
        self.ua.receive_datagram(data, PEER, self.now)
        self.ua.handle_timer(self.now)
        self._drain()

    def _drain(self) -> None:
        while True:
            self.messages_sent += len(self.ua.messages_to_send())
            events = self.ua.events()
            if not events:
                return
            for event in events:
                if isinstance(event, InviteReceived):
                    self.ua.answer(event.invite_id, REJECT_STATUS, self.now)
                    self.invites_answered += 1


_UA = UaDriver()


def _show(value: object) -> str:
    text = repr(value)
    return text if len(text) <= _SHOWN else text[:_SHOWN] + f"... ({len(text)} characters)"


def main(argv: list[str] | None = None) -> None:
    """Run libFuzzer over TestOneInput with the command-line flags and corpus directories."""
    if atheris is None:
        sys.exit("atheris is not installed in this interpreter: run `.venv/bin/pip install atheris`")
    atheris.Setup(sys.argv if argv is None else argv, TestOneInput)
    atheris.Fuzz()


if __name__ == "__main__":
    main()
