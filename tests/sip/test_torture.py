"""RFC 4475 and RFC 5118 torture messages against the SIP parser and the user agent core, in memory.

Why: these are the IETF's own corner cases for SIP parsers (line folding, escaping, odd whitespace,
overlarge numbers, IPv6 references, broken framing). Every message must either parse and survive a
serialize/parse round trip, or be refused with `SipParseError` (never another exception), and a UAS
fed it as one UDP datagram must answer what the RFC says it answers.

The corpus lives outside the repository, beside the clone (../shared/conformance/sip-torture/, see its
README.md): each message is a byte-exact .sip file, and expected.json gives its `valid` flag and its
`expect` outcomes (`parse`, `respond:NNN`, `reject`, `reject:NNN`, alternatives separated by `|`).
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest

from sip.errors import SipParseError
from sip.events import InviteReceived, RequestReceived
from sip.grammar import STATUS_LINE_RE
from sip.message import Request, Response, parse_message
from sip.transport import UDP, Peer
from sip.useragent import UserAgent

CONFORMANCE_DIR = Path(__file__).resolve().parents[2].parent / "shared" / "conformance" / "sip-torture"
SOURCE = Peer(UDP, ("198.51.100.7", 5070))
NOW = 1.0

if not (CONFORMANCE_DIR / "expected.json").is_file():
    pytest.skip(f"conformance data not found at {CONFORMANCE_DIR}; it lives beside the clone in CI",
                allow_module_level=True)


@dataclass(frozen=True)
class Entry:
    """One torture message and what is expected of it."""

    file: str
    section: str
    name: str
    valid: bool
    expect: str

    @property
    def data(self) -> bytes:
        """The message bytes, exactly as in the file."""
        return (CONFORMANCE_DIR / self.file).read_bytes()

    @property
    def alternatives(self) -> list[str]:
        """The acceptable outcomes."""
        return self.expect.split("|")

    @property
    def codes(self) -> set[int]:
        """The response codes named by `respond:NNN` / `reject:NNN` alternatives."""
        return {int(alt.split(":", 1)[1]) for alt in self.alternatives if ":" in alt}

    @property
    def is_response(self) -> bool:
        """Whether the message is a response (its start line is a status line)."""
        return self.data.lstrip(b"\r\n").startswith(b"SIP/")


def _entry(raw: dict[str, Any]) -> Entry:
    """An Entry from one expected.json record; the name is the RFC's message name from the file name."""
    prefix = f"rfc{raw['rfc']}-{raw['section']}-"
    name = raw["file"].removeprefix(prefix).removesuffix(".sip")
    return Entry(raw["file"], raw["section"], name, raw["valid"], raw["expect"])


ENTRIES = [_entry(raw) for raw in json.loads((CONFORMANCE_DIR / "expected.json").read_text())]


# Entries that fail because of a library bug, by test id, each marked xfail(strict=True) with its reason.
# None at present: every message gets an outcome its `expect` allows.
KNOWN_BUGS: dict[str, str] = {}


def _params() -> list[Any]:
    """Every entry as a pytest param with id `<section>-<name>`, known bugs marked as strict xfails."""
    params = []
    for entry in ENTRIES:
        ident = f"{entry.section}-{entry.name}"
        marks = [pytest.mark.xfail(reason=f"BUG: {KNOWN_BUGS[ident]}", strict=True)] if ident in KNOWN_BUGS else []
        params.append(pytest.param(entry, id=ident, marks=marks))
    return params


def test_corpus_is_complete() -> None:
    """expected.json names every .sip file of the corpus once, with ids unique per entry."""
    assert sorted(e.file for e in ENTRIES) == sorted(p.name for p in CONFORMANCE_DIR.glob("*.sip"))
    assert len({f"{e.section}-{e.name}" for e in ENTRIES}) == len(ENTRIES) == 61


# -- parser level ------------------------------------------------------------------------------------

# Every invalid entry without a `parse` alternative is caught by the parser itself, so no entry is
# exempted here. The one semantic case is 3.1.2.18 mismatch02 (NEWMETHOD with CSeq INVITE): its
# preferred 501 is a decision of the UA core (the method is unknown), but the parser's 400 for the
# CSeq method mismatch is the RFC's other acceptable answer; part b checks what the UA sends.


def _key_fields(message: Request | Response) -> dict[str, object]:
    """The fields a round trip must keep."""
    start = ((message.method, str(message.uri)) if isinstance(message, Request)
             else (message.status_code, message.reason))
    return {
        "start line": start,
        "From": str(message.from_address),
        "To": str(message.to_address),
        "Call-ID": message.call_id,
        "CSeq": message.cseq,
        "Via": [str(via) for via in message.vias],
        "body": message.body,
    }


@pytest.mark.parametrize("entry", _params())
def test_parser(entry: Entry) -> None:
    """Valid messages parse and round-trip; invalid ones raise SipParseError with a named code."""
    data = entry.data
    if entry.valid:
        try:
            message = parse_message(data)
        except SipParseError as error:
            pytest.fail(f"valid message refused with {error.status_code}: {error}")
        assert isinstance(message, Response) == entry.is_response
        first = _key_fields(message)
        again = parse_message(message.to_bytes())
        assert type(again) is type(message)
        assert _key_fields(again) == first
        return
    try:
        parse_message(data)
    except SipParseError as error:
        if entry.codes:
            assert error.status_code in entry.codes, f"{error.status_code} ({error}) not in {sorted(entry.codes)}"
        return
    except Exception as error:
        pytest.fail(f"parser raised {type(error).__name__} instead of SipParseError: {error}")
    assert "parse" in entry.alternatives, "invalid message parsed, but the RFC requires rejecting it"


# -- user agent level --------------------------------------------------------------------------------


def _status_code(data: bytes) -> int | None:
    """The status code of a message the UA sent, or None for a request.

    A 400 to a malformed request copies its broken From/To/Via verbatim (RFC 3261 §8.2.6.2), so such
    an answer does not itself parse; its status line is then read on its own.
    """
    try:
        message = parse_message(data)
    except SipParseError:
        match = STATUS_LINE_RE.fullmatch(data.split(b"\r\n", 1)[0].decode("utf-8", "replace"))
        assert match is not None, f"UA sent something that is not a response: {data[:200]!r}"
        return int(match.group(2))
    return message.status_code if isinstance(message, Response) else None


def _first_final(entry: Entry) -> tuple[int | None, list[int | None]]:
    """Feed the message to a fresh UA, answer what the application gets; the first final code and all codes."""
    ua = UserAgent(host="192.0.2.1", port=5060)
    ua.receive(entry.data, SOURCE, NOW)
    for event in ua.events():
        if isinstance(event, InviteReceived):
            ua.answer(event.invite_id, 486, NOW)
        elif isinstance(event, RequestReceived):
            ua.answer(event.request_id, 200, NOW)
    codes = [_status_code(data) for data, _ in ua.messages_to_send()]
    return next((code for code in codes if code is not None and code >= 200), None), codes


def _satisfies(alternative: str, status: int | None, is_response: bool) -> bool:
    """Whether one `expect` alternative accepts the first final response (None: nothing was sent)."""
    kind, _, code = alternative.partition(":")
    if code:
        return status == int(code)
    if kind == "reject":
        return status is None or 400 <= status < 600
    if kind == "parse":
        # Processed normally: a response is absorbed; a request gets an answer, but never a 400.
        return status is None if is_response else status is not None and status != 400
    raise AssertionError(f"unknown expect alternative {alternative!r}")


@pytest.mark.parametrize("entry", _params())
def test_user_agent(entry: Entry) -> None:
    """One datagram to a fresh UA gets the final response the RFC names (or none, for responses)."""
    status, codes = _first_final(entry)
    assert any(_satisfies(alt, status, entry.is_response) for alt in entry.alternatives), (
        f"expected {entry.expect}, UA sent {codes} (first final: {status})")
