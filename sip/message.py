"""SIP requests and responses: parsing from bytes, serializing to bytes, building responses.

`parse_message` accepts one complete message (a UDP datagram or a framed TCP message). Malformed
input raises `SipParseError` carrying the status code to answer with; when the request line and
headers were readable, the error also carries the partly parsed request so a UAS can answer it.
"""

from __future__ import annotations

import re
from dataclasses import dataclass

from .errors import SipParseError
from .fields import CSeq, NameAddress, Via
from .grammar import (
    HEADER_LINE_RE,
    LOOSE_REQUEST_LINE_RE,
    REQUEST_LINE_RE,
    STATUS_LINE_RE,
    TEXT_ENCODING,
    number,
    split_unquoted,
    unfolded_lines,
)
from .headers import Headers
from .status import reason_phrase
from .uri import AbsoluteUri, Uri, parse_uri

SIP_VERSION = "SIP/2.0"
MANDATORY_HEADERS = ("Via", "From", "To", "Call-ID", "CSeq")


class Message:
    """Fields shared by requests and responses; typed accessors parse header values on demand."""

    __slots__ = ("body", "headers")

    def __init__(self, headers: Headers | None = None, body: bytes = b"") -> None:
        self.headers = headers if headers is not None else Headers()
        self.body = body

    def _required(self, name: str) -> str:
        value = self.headers.get(name)
        if value is None:
            raise SipParseError(f"Missing {name} header")
        return value

    @property
    def call_id(self) -> str:
        """The Call-ID value."""
        value = self._required("Call-ID").strip()
        if not value or " " in value:
            raise SipParseError("Malformed Call-ID header")
        return value

    @property
    def cseq(self) -> CSeq:
        """The CSeq value."""
        try:
            return CSeq.parse(self._required("CSeq"))
        except ValueError as exc:
            raise SipParseError(f"Malformed CSeq header: {exc}") from None

    @property
    def from_address(self) -> NameAddress:
        """The From value."""
        return self._name_address("From")

    @property
    def to_address(self) -> NameAddress:
        """The To value."""
        return self._name_address("To")

    def _name_address(self, name: str) -> NameAddress:
        values = self.headers.get_all(name)
        if len(values) > 1:
            raise SipParseError(f"More than one {name} header")
        try:
            return NameAddress.parse(self._required(name))
        except ValueError as exc:
            raise SipParseError(f"Malformed {name} header: {exc}") from None

    @property
    def vias(self) -> list[Via]:
        """Every Via value, top first."""
        try:
            vias = [Via.parse(value) for value in self.headers.get_list("Via")]
        except ValueError as exc:
            raise SipParseError(f"Malformed Via header: {exc}") from None
        if not vias:
            raise SipParseError("Missing Via header")
        return vias

    @property
    def top_via(self) -> Via:
        """The topmost Via value."""
        return self.vias[0]

    def set_top_via(self, via: Via) -> None:
        """Replace the topmost Via value, leaving any others in the same field line untouched."""
        elements = split_unquoted(self.headers.get("Via") or "", ",")
        elements[0] = str(via)
        self.headers.replace_first("Via", ",".join(elements))

    @property
    def contacts(self) -> list[NameAddress]:
        """Every Contact value (an empty list when there is none; `*` is not a name-addr)."""
        try:
            return [NameAddress.parse(v) for v in self.headers.get_list("Contact") if v != "*"]
        except ValueError as exc:
            raise SipParseError(f"Malformed Contact header: {exc}") from None

    def name_addresses(self, name: str) -> list[NameAddress]:
        """Every value of a list header of name-addrs (Route, Record-Route)."""
        try:
            return [NameAddress.parse(v) for v in self.headers.get_list(name)]
        except ValueError as exc:
            raise SipParseError(f"Malformed {name} header: {exc}") from None

    @property
    def content_type(self) -> str | None:
        """The media type of the body, lower-cased and without parameters."""
        value = self.headers.get("Content-Type")
        return value.split(";", 1)[0].strip().lower() if value else None

    def _start_line(self) -> str:
        raise NotImplementedError

    def to_bytes(self) -> bytes:
        """Serialize; Content-Length is always written and always matches the body."""
        lines = [self._start_line()]
        length_written = False
        for name, value in self.headers:
            if name == "Content-Length":
                if length_written:
                    continue
                value, length_written = str(len(self.body)), True
            lines.append(f"{name}: {value}")
        if not length_written:
            lines.append(f"Content-Length: {len(self.body)}")
        return ("\r\n".join(lines) + "\r\n\r\n").encode(*TEXT_ENCODING) + self.body


class Request(Message):
    """A SIP request."""

    __slots__ = ("method", "uri", "version")

    def __init__(self, method: str, uri: Uri, headers: Headers | None = None, body: bytes = b"",
                 version: str = SIP_VERSION) -> None:
        super().__init__(headers, body)
        self.method = method
        self.uri = uri
        self.version = version

    def _start_line(self) -> str:
        return f"{self.method} {self.uri} {self.version}"

    def __repr__(self) -> str:
        return f"<Request {self.method} {self.uri}>"


class Response(Message):
    """A SIP response."""

    __slots__ = ("reason", "status_code", "version")

    def __init__(self, status_code: int, reason: str | None = None, headers: Headers | None = None,
                 body: bytes = b"", version: str = SIP_VERSION) -> None:
        super().__init__(headers, body)
        self.status_code = status_code
        self.reason = reason_phrase(status_code) if reason is None else reason
        self.version = version

    def _start_line(self) -> str:
        return f"{self.version} {self.status_code} {self.reason}"

    def __repr__(self) -> str:
        return f"<Response {self.status_code} {self.reason}>"


@dataclass(frozen=True)
class MessageLimits:
    """Size caps for received messages; anything larger is answered 513 Message Too Large."""

    max_message_bytes: int = 65535
    max_header_fields: int = 256
    max_header_line: int = 8192


DEFAULT_LIMITS = MessageLimits()


def parse_message(data: bytes, limits: MessageLimits = DEFAULT_LIMITS) -> Request | Response:
    """Parse one complete SIP message; raise `SipParseError` if it is not one.

    Once the start line is recognisably a request, every later error carries the partly parsed
    request (`error.request`) so that a UAS can still answer it.
    """
    data = data.lstrip(b"\r\n")
    head, available = _split_head_and_body(data)
    lines = unfolded_lines(head)
    start_line, header_lines = lines[0], lines[1:]
    headers = Headers()
    problems: list[SipParseError] = []
    if len(data) > limits.max_message_bytes:
        problems.append(SipParseError(f"Message larger than {limits.max_message_bytes} bytes", 513))
    if len(header_lines) > limits.max_header_fields:
        problems.append(SipParseError(f"More than {limits.max_header_fields} header fields", 513))
    for line in header_lines[: limits.max_header_fields]:
        match = HEADER_LINE_RE.fullmatch(line)
        if len(line) > limits.max_header_line:
            problems.append(SipParseError(f"Header field longer than {limits.max_header_line} bytes", 513))
        elif match:
            headers.add(match.group(1), match.group(2).rstrip(" \t"))
        else:
            problems.append(SipParseError(f"Malformed header line: {line[:60]!r}"))

    status_match = STATUS_LINE_RE.fullmatch(start_line)
    if status_match:
        if problems:
            raise problems[0]
        return _validated_response(status_match, headers, _body_by_content_length(headers, available))
    request = _request_from_start_line(start_line, headers, problems)
    try:
        if problems:
            raise problems[0]
        request.body = _body_by_content_length(headers, available)
        _validate_request(request)
    except SipParseError as error:
        error.request = request
        raise
    return request


def _split_head_and_body(data: bytes) -> tuple[bytes, bytes]:
    """Header section and the rest, split at the first blank line (CRLF CRLF, or a bare LF LF)."""
    ends = [(index, len(marker)) for marker in (b"\r\n\r\n", b"\n\n") if (index := data.find(marker)) >= 0]
    if not ends:
        raise SipParseError("Missing empty line after the header fields")
    end, size = min(ends)
    return data[:end], data[end + size :]


def _body_by_content_length(headers: Headers, available: bytes) -> bytes:
    lengths = headers.get_all("Content-Length")
    if not lengths:
        return available
    values = {number(value.strip(" \t")) for value in lengths}
    length = values.pop() if len(values) == 1 else None
    if length is None:
        raise SipParseError("Malformed Content-Length header")
    if length > len(available):
        raise SipParseError("Body shorter than Content-Length")
    return available[:length]


def _request_from_start_line(start_line: str, headers: Headers, problems: list[SipParseError]) -> Request:
    """The request a start line names; a request line that is only loosely right still yields one (for a 400)."""
    start_problems: list[SipParseError] = []
    match = REQUEST_LINE_RE.fullmatch(start_line)
    if match is None:
        match = LOOSE_REQUEST_LINE_RE.fullmatch(start_line)
        if match is None:
            raise SipParseError(f"Malformed start line: {start_line[:60]!r}")
        start_problems.append(SipParseError(f"Malformed request line: {start_line[:60]!r}"))
    method, uri_text, version = match.groups()
    try:
        uri: Uri = parse_uri(uri_text)
    except ValueError as exc:
        start_problems.append(SipParseError(f"Malformed Request-URI: {exc}"))
        uri = AbsoluteUri("invalid", uri_text)
    problems[:0] = start_problems
    return Request(method, uri, headers, b"", version)


def _validate_request(request: Request) -> None:
    if request.version.upper() != SIP_VERSION:
        raise SipParseError(f"SIP version {request.version} not supported", 505)
    _check_common_headers(request)
    if request.cseq.method != request.method:
        raise SipParseError("CSeq method does not match the request method")
    max_forwards = request.headers.get("Max-Forwards")
    hops = 0 if max_forwards is None else number(max_forwards.strip(" \t"), 3)
    if hops is None or hops > 255:
        raise SipParseError("Malformed Max-Forwards header")


def _validated_response(match: re.Match[str], headers: Headers, body: bytes) -> Response:
    version, code, reason = match.groups()
    if version.upper() != SIP_VERSION:
        raise SipParseError(f"SIP version {version} not supported", 505)
    status_code = int(code)
    if not 100 <= status_code <= 699:
        raise SipParseError(f"Status code {status_code} out of range")
    response = Response(status_code, reason or "", headers, body, version)
    _check_common_headers(response)
    return response


def _check_common_headers(message: Message) -> None:
    for name in MANDATORY_HEADERS:
        if name not in message.headers:
            raise SipParseError(f"Missing {name} header")
    message.vias  # noqa: B018 -- parsing validates
    message.from_address  # noqa: B018
    message.to_address  # noqa: B018
    message.call_id  # noqa: B018
    message.cseq  # noqa: B018


def make_response(request: Request, status_code: int, reason: str | None = None, *,
                  to_tag: str | None = None, body: bytes = b"", content_type: str | None = None) -> Response:
    """A response to `request` with Via, From, To, Call-ID and CSeq copied (RFC 3261 §8.2.6.2).

    `to_tag` is added to To when the request's To has none (every response but 100 should carry one).
    Record-Route is copied into dialog-forming responses (§12.1.1).
    """
    headers = Headers()
    for via in request.headers.get_all("Via"):
        headers.add("Via", via)
    headers.add("From", request.headers.get("From") or "")
    to_value = request.headers.get("To") or ""
    if to_tag and status_code != 100 and request.to_address.tag is None:
        to_value = f"{to_value};tag={to_tag}"
    headers.add("To", to_value)
    headers.add("Call-ID", request.headers.get("Call-ID") or "")
    headers.add("CSeq", request.headers.get("CSeq") or "")
    if request.method in ("INVITE", "SUBSCRIBE") and 100 < status_code < 300:
        for route in request.headers.get_all("Record-Route"):
            headers.add("Record-Route", route)
    if body:
        headers.add("Content-Type", content_type or "application/sdp")
    return Response(status_code, reason, headers, body)
