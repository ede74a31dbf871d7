"""Tests for sip/message.py and sip/headers.py: parsing, validation, serialization, responses and Headers."""

from __future__ import annotations

import pytest

from sip.errors import RemoteProtocolError, SipParseError
from sip.fields import Via
from sip.headers import Headers, canonical_name
from sip.message import MessageLimits, Request, Response, make_response, parse_message
from sip.uri import SipUri

SDP_BODY = (
    b"v=0\r\n"
    b"o=alice 2890844526 2890844526 IN IP4 192.0.2.101\r\n"
    b"s=-\r\n"
    b"c=IN IP4 192.0.2.101\r\n"
    b"t=0 0\r\n"
    b"m=audio 49170 RTP/AVP 0 8 101\r\n"
    b"a=rtpmap:0 PCMU/8000\r\n"
    b"a=rtpmap:8 PCMA/8000\r\n"
    b"a=rtpmap:101 telephone-event/8000\r\n"
    b"a=fmtp:101 0-16\r\n"
    b"a=ptime:20\r\n"
    b"a=sendrecv\r\n"
)

INVITE_HEAD = (
    "INVITE sip:bob@biloxi.example.com SIP/2.0\r\n"
    "Via: SIP/2.0/UDP pc33.atlanta.example.com:5060;branch=z9hG4bK776asdhds;rport\r\n"
    "Max-Forwards: 70\r\n"
    'To: "Bob" <sip:bob@biloxi.example.com>\r\n'
    "From: Alice <sip:alice@atlanta.example.com>;tag=1928301774\r\n"
    "Call-ID: a84b4c76e66710@pc33.atlanta.example.com\r\n"
    "CSeq: 314159 INVITE\r\n"
    "Contact: <sip:alice@pc33.atlanta.example.com>\r\n"
    "Content-Type: application/sdp\r\n"
)
INVITE = (INVITE_HEAD + f"Content-Length: {len(SDP_BODY)}\r\n\r\n").encode() + SDP_BODY


def parse_request(data: bytes) -> Request:
    """parse_message, asserting that the result is a Request."""
    message = parse_message(data)
    assert isinstance(message, Request)
    return message


def parse_response(data: bytes) -> Response:
    """parse_message, asserting that the result is a Response."""
    message = parse_message(data)
    assert isinstance(message, Response)
    return message


def build(start_line: str, headers: list[str], body: bytes = b"") -> bytes:
    """A message from a start line, header lines (without line ends) and a body."""
    return ("\r\n".join([start_line, *headers]) + "\r\n\r\n").encode() + body


def basic_headers(method: str = "OPTIONS", *, without: str | None = None) -> list[str]:
    """The mandatory header lines of a simple request, optionally leaving one out by name."""
    lines = {
        "Via": "Via: SIP/2.0/UDP host.example.com;branch=z9hG4bKabc",
        "From": "From: <sip:a@example.com>;tag=f1",
        "To": "To: <sip:b@example.com>",
        "Call-ID": "Call-ID: call-1",
        "CSeq": f"CSeq: 1 {method}",
    }
    return [line for name, line in lines.items() if name != without]


# -- parsing requests -------------------------------------------------------------------------------


def test_parse_realistic_invite() -> None:
    request = parse_request(INVITE)
    assert request.method == "INVITE"
    assert isinstance(request.uri, SipUri)
    assert str(request.uri) == "sip:bob@biloxi.example.com"
    assert request.version == "SIP/2.0"
    assert request.call_id == "a84b4c76e66710@pc33.atlanta.example.com"
    assert request.cseq.number == 314159
    assert request.cseq.method == "INVITE"
    assert request.from_address.display_name == "Alice"
    assert request.from_address.tag == "1928301774"
    assert request.to_address.display_name == "Bob"
    assert request.to_address.tag is None
    assert request.top_via.branch == "z9hG4bK776asdhds"
    assert request.top_via.sent_by == ("pc33.atlanta.example.com", 5060)
    assert [str(c.uri) for c in request.contacts] == ["sip:alice@pc33.atlanta.example.com"]
    assert request.content_type == "application/sdp"
    assert request.headers.get("Max-Forwards") == "70"
    assert request.body == SDP_BODY
    assert [name for name, _ in request.headers] == [
        "Via", "Max-Forwards", "To", "From", "Call-ID", "CSeq", "Contact", "Content-Type", "Content-Length",
    ]


def test_parse_ignores_leading_crlf() -> None:
    assert parse_request(b"\r\n\r\n" + INVITE).method == "INVITE"


def test_parse_bare_lf_line_ends() -> None:
    data = (INVITE_HEAD + "Content-Length: 4\r\n\r\nbody").replace("\r\n", "\n").encode()
    request = parse_request(data)
    assert request.method == "INVITE"
    assert request.call_id == "a84b4c76e66710@pc33.atlanta.example.com"
    assert request.headers.get("Content-Type") == "application/sdp"
    assert request.body == b"body"


def test_compact_header_forms() -> None:
    body = b"v=0\r\n"
    data = build(
        "INVITE sip:bob@example.com SIP/2.0",
        [
            "v: SIP/2.0/UDP host.example.com;branch=z9hG4bK1",
            "f: <sip:alice@example.com>;tag=9",
            "t: <sip:bob@example.com>",
            "i: compact-call-id",
            "CSeq: 2 INVITE",
            "m: <sip:alice@192.0.2.1>",
            "c: application/sdp",
            f"l: {len(body)}",
        ],
        body,
    )
    request = parse_request(data)
    assert [name for name, _ in request.headers] == [
        "Via", "From", "To", "Call-ID", "CSeq", "Contact", "Content-Type", "Content-Length",
    ]
    assert request.headers.get("Via") == "SIP/2.0/UDP host.example.com;branch=z9hG4bK1"
    assert request.from_address.tag == "9"
    assert str(request.to_address.uri) == "sip:bob@example.com"
    assert request.call_id == "compact-call-id"
    assert str(request.contacts[0].uri) == "sip:alice@192.0.2.1"
    assert request.content_type == "application/sdp"
    assert request.headers.get("Content-Length") == "5"
    assert request.body == body


def test_header_names_are_case_insensitive_and_colon_spacing_is_free() -> None:
    data = build(
        "OPTIONS sip:b@example.com SIP/2.0",
        [
            "VIA  :SIP/2.0/UDP h;branch=z9hG4bK1",
            "from:\t<sip:a@example.com>;tag=1",
            "TO:<sip:b@example.com>",
            "call-id: x1   ",
            "cseq: 7 OPTIONS",
        ],
    )
    request = parse_request(data)
    assert request.headers.items()[:5] == [
        ("Via", "SIP/2.0/UDP h;branch=z9hG4bK1"),
        ("From", "<sip:a@example.com>;tag=1"),
        ("To", "<sip:b@example.com>"),
        ("Call-ID", "x1"),
        ("CSeq", "7 OPTIONS"),
    ]


def test_line_folding() -> None:
    data = build(
        "OPTIONS sip:b@example.com SIP/2.0",
        [
            *basic_headers(),
            "Subject: I know you're there,",
            "    pick up the phone",
            "\tand talk to me!",
            "Via: SIP/2.0/UDP second.example.com",
            " ;branch=z9hG4bK2",
        ],
    )
    request = parse_request(data)
    assert request.headers.get("Subject") == "I know you're there, pick up the phone and talk to me!"
    assert [via.host for via in request.vias] == ["host.example.com", "second.example.com"]
    assert request.vias[1].branch == "z9hG4bK2"


def test_multiple_vias_in_one_header_and_separate_headers() -> None:
    data = build(
        "OPTIONS sip:b@example.com SIP/2.0",
        [
            "Via: SIP/2.0/UDP first.example.com;branch=z9hG4bK1, SIP/2.0/TCP second.example.com:5070;branch=z9hG4bK2",
            "From: <sip:a@example.com>;tag=f",
            "Via: SIP/2.0/TLS third.example.com;branch=z9hG4bK3",
            "To: <sip:b@example.com>",
            "Call-ID: c",
            "CSeq: 1 OPTIONS",
            "Via: SIP/2.0/UDP [2001:db8::4]:5080;branch=z9hG4bK4",
        ],
    )
    request = parse_request(data)
    assert [(v.transport, v.host, v.port, v.branch) for v in request.vias] == [
        ("UDP", "first.example.com", None, "z9hG4bK1"),
        ("TCP", "second.example.com", 5070, "z9hG4bK2"),
        ("TLS", "third.example.com", None, "z9hG4bK3"),
        ("UDP", "[2001:db8::4]", 5080, "z9hG4bK4"),
    ]
    assert request.top_via.branch == "z9hG4bK1"
    assert len(request.headers.get_all("Via")) == 3


def test_content_length_truncates_extra_bytes() -> None:
    data = build("OPTIONS sip:b@example.com SIP/2.0", [*basic_headers(), "Content-Length: 5"], b"hello world")
    assert parse_request(data).body == b"hello"


def test_content_length_zero_drops_trailing_bytes() -> None:
    data = build("OPTIONS sip:b@example.com SIP/2.0", [*basic_headers(), "Content-Length: 0"], b"\r\n\r\njunk")
    assert parse_request(data).body == b""


def test_missing_content_length_takes_rest_of_datagram() -> None:
    data = build("OPTIONS sip:b@example.com SIP/2.0", basic_headers(), b"all of it")
    assert parse_request(data).body == b"all of it"


def test_body_may_contain_blank_lines() -> None:
    body = b"line1\r\n\r\nline2"
    data = build("OPTIONS sip:b@example.com SIP/2.0", [*basic_headers(), f"Content-Length: {len(body)}"], body)
    assert parse_request(data).body == body


def test_body_shorter_than_content_length() -> None:
    data = build("OPTIONS sip:b@example.com SIP/2.0", [*basic_headers(), "Content-Length: 50"], b"short")
    with pytest.raises(SipParseError) as info:
        parse_message(data)
    assert info.value.status_code == 400


@pytest.mark.parametrize("values", [["abc"], ["-1"], ["5", "6"], [""]])
def test_malformed_content_length(values: list[str]) -> None:
    lines = [*basic_headers(), *(f"Content-Length: {v}" for v in values)]
    with pytest.raises(SipParseError) as info:
        parse_message(build("OPTIONS sip:b@example.com SIP/2.0", lines, b"hello world"))
    assert info.value.status_code == 400


def test_repeated_equal_content_length_is_accepted() -> None:
    lines = [*basic_headers(), "Content-Length: 2", "l: 2"]
    assert parse_request(build("OPTIONS sip:b@example.com SIP/2.0", lines, b"abc")).body == b"ab"


@pytest.mark.parametrize("missing", ["Via", "From", "To", "Call-ID", "CSeq"])
def test_missing_mandatory_header(missing: str) -> None:
    data = build("OPTIONS sip:b@example.com SIP/2.0", basic_headers(without=missing))
    with pytest.raises(SipParseError) as info:
        parse_message(data)
    error = info.value
    assert error.status_code == 400
    assert missing in str(error)
    assert isinstance(error.request, Request)
    assert error.request.method == "OPTIONS"
    assert str(error.request.uri) == "sip:b@example.com"
    assert missing not in error.request.headers


@pytest.mark.parametrize(
    ("name", "value"),
    [
        ("Via", "garbage"),
        ("From", "<sip:a@example.com"),
        ("To", "not a uri"),
        ("Call-ID", "has space"),
        ("CSeq", "x OPTIONS"),
        ("Max-Forwards", "abc"),
        ("Max-Forwards", "256"),
    ],
)
def test_malformed_mandatory_header_attaches_request(name: str, value: str) -> None:
    lines = [line for line in basic_headers() if not line.startswith(f"{name}:")] + [f"{name}: {value}"]
    with pytest.raises(SipParseError) as info:
        parse_message(build("OPTIONS sip:b@example.com SIP/2.0", lines))
    assert info.value.status_code == 400
    assert info.value.request is not None
    assert info.value.request.headers.get(name) == value


def test_two_from_headers_rejected() -> None:
    lines = [*basic_headers(), "From: <sip:c@example.com>;tag=2"]
    with pytest.raises(SipParseError) as info:
        parse_message(build("OPTIONS sip:b@example.com SIP/2.0", lines))
    assert info.value.status_code == 400


def test_cseq_method_mismatch() -> None:
    data = build("INVITE sip:b@example.com SIP/2.0", basic_headers("BYE"))
    with pytest.raises(SipParseError) as info:
        parse_message(data)
    assert info.value.status_code == 400
    assert info.value.request is not None
    assert info.value.request.method == "INVITE"


def test_unsupported_sip_version_in_request() -> None:
    data = build("OPTIONS sip:b@example.com SIP/3.0", basic_headers())
    with pytest.raises(SipParseError) as info:
        parse_message(data)
    assert info.value.status_code == 505
    assert info.value.request is not None
    assert info.value.request.version == "SIP/3.0"
    assert info.value.request.call_id == "call-1"


def test_lower_case_version_is_accepted() -> None:
    assert parse_request(build("OPTIONS sip:b@example.com sip/2.0", basic_headers())).method == "OPTIONS"


@pytest.mark.parametrize(
    "data",
    [
        b"",
        b"\r\n\r\n",
        b"\x00\xff\xfe garbage \x01",
        b"hello world\r\n\r\n",
        b"INVITE sip:b@example.com SIP/2.0\r\nVia: x",
        b"INVITE sip:b@example.com\r\n\r\n",
        b"SIP/2.0 20 OK\r\n\r\n",
        b"SIP/2.0 OK\r\n\r\n",
    ],
)
def test_garbage_raises_without_request(data: bytes) -> None:
    with pytest.raises(SipParseError) as info:
        parse_message(data)
    assert info.value.request is None
    assert info.value.status_code == 400
    assert isinstance(info.value, RemoteProtocolError)


@pytest.mark.parametrize(
    ("data", "method", "reason"),
    [
        (b"INVITE  sip:b@example.com SIP/2.0\r\n", "INVITE", "Malformed request line"),
        (b"OPTIONS sip:a b SIP/2.0\r\n", "OPTIONS", "Malformed request line"),
        (b"OPTIONS <sip:b@example.com> SIP/2.0\r\n", "OPTIONS", "Malformed Request-URI"),
        (b"OPTIONS sip:b@example.com SIP/2.0\r\nno colon here\r\n", "OPTIONS", "Malformed header line"),
        (b"OPTIONS sip:b@example.com SIP/2.0\r\nBad Name: x\r\n", "OPTIONS", "Malformed header line"),
    ],
)
def test_broken_requests_that_are_still_requests_carry_the_request_for_a_400(data: bytes, method: str,
                                                                            reason: str) -> None:
    head = data + b"Via: SIP/2.0/UDP h;branch=z9hG4bK1\r\nFrom: <sip:a@h>;tag=1\r\nTo: <sip:b@h>\r\n"
    head += b"Call-ID: c1\r\nCSeq: 1 " + method.encode() + b"\r\n\r\n"
    with pytest.raises(SipParseError) as info:
        parse_message(head)
    assert info.value.status_code == 400 and str(info.value).startswith(reason)
    assert info.value.request is not None and info.value.request.method == method
    assert info.value.request.call_id == "c1"


@pytest.mark.parametrize("extra", ["Content-Length: \u00b2", "Max-Forwards: \u00b2"])
def test_non_ascii_digit_numbers_raise_sip_parse_error(extra: str) -> None:
    data = build("OPTIONS sip:b@example.com SIP/2.0", [*basic_headers(), extra])
    with pytest.raises(SipParseError) as info:
        parse_message(data)
    assert info.value.status_code == 400


# -- parsing responses ------------------------------------------------------------------------------


def response_headers() -> list[str]:
    """Header lines of a response to an INVITE."""
    return [
        "Via: SIP/2.0/UDP host.example.com;branch=z9hG4bKabc;received=192.0.2.1",
        "From: <sip:a@example.com>;tag=f1",
        "To: <sip:b@example.com>;tag=t1",
        "Call-ID: call-1",
        "CSeq: 1 INVITE",
    ]


@pytest.mark.parametrize(
    ("status_line", "code", "reason"),
    [
        ("SIP/2.0 200 OK", 200, "OK"),
        ("SIP/2.0 180 Ringing", 180, "Ringing"),
        ("SIP/2.0 486 Busy Here", 486, "Busy Here"),
        ("SIP/2.0 603 Decline  ", 603, "Decline  "),
        ("SIP/2.0 699 ", 699, ""),
        ("SIP/2.0 100", 100, ""),
        ("SIP/2.0 200 Ça va", 200, "Ça va"),
    ],
)
def test_parse_response(status_line: str, code: int, reason: str) -> None:
    response = parse_response(build(status_line, response_headers()))
    assert response.status_code == code
    assert response.reason == reason
    assert response.version == "SIP/2.0"
    assert response.to_address.tag == "t1"
    assert response.cseq.method == "INVITE"


@pytest.mark.parametrize("status_line", ["SIP/2.0 099 Low", "SIP/2.0 700 High", "SIP/2.0 000 Zero"])
def test_response_status_code_out_of_range(status_line: str) -> None:
    with pytest.raises(SipParseError) as info:
        parse_message(build(status_line, response_headers()))
    assert info.value.status_code == 400
    assert info.value.request is None


def test_response_wrong_version() -> None:
    with pytest.raises(SipParseError) as info:
        parse_message(build("SIP/1.0 200 OK", response_headers()))
    assert info.value.status_code == 505


def test_response_missing_header() -> None:
    headers = [h for h in response_headers() if not h.startswith("Call-ID")]
    with pytest.raises(SipParseError) as info:
        parse_message(build("SIP/2.0 200 OK", headers))
    assert info.value.status_code == 400
    assert info.value.request is None


def test_response_reason_defaults_to_standard_phrase() -> None:
    assert Response(486).reason == "Busy Here"
    assert Response(299).reason == "Success"
    assert Response(200, "Fine").reason == "Fine"


# -- serialization ----------------------------------------------------------------------------------


def assert_same_message(a: Request | Response, b: Request | Response) -> None:
    """Equal start line, headers and body."""
    assert type(a) is type(b)
    assert a._start_line() == b._start_line()
    assert a.headers.items() == b.headers.items()
    assert a.body == b.body


@pytest.mark.parametrize(
    "data",
    [
        INVITE,
        build("OPTIONS sip:b@example.com SIP/2.0", [*basic_headers(), "Content-Length: 0"]),
        build("SIP/2.0 200 OK", [*response_headers(), "Content-Length: 3"], b"abc"),
    ],
)
def test_to_bytes_round_trip(data: bytes) -> None:
    message = parse_message(data)
    assert_same_message(parse_message(message.to_bytes()), message)


def test_to_bytes_round_trip_adds_content_length_at_end() -> None:
    message = parse_request(build("OPTIONS sip:b@example.com SIP/2.0", basic_headers()))
    reparsed = parse_request(message.to_bytes())
    assert reparsed.headers.items() == [*message.headers.items(), ("Content-Length", "0")]
    assert reparsed._start_line() == "OPTIONS sip:b@example.com SIP/2.0"
    assert reparsed.body == b""


def test_to_bytes_exact_text() -> None:
    headers = Headers([("v", "SIP/2.0/UDP h;branch=z9hG4bK1"), ("f", "<sip:a@x>;tag=1"), ("t", "<sip:b@x>"),
                       ("i", "c1"), ("cseq", "1 MESSAGE"), ("content-type", "text/plain")])
    request = Request("MESSAGE", SipUri("x", "b"), headers, b"hi")
    assert request.to_bytes() == (
        b"MESSAGE sip:b@x SIP/2.0\r\n"
        b"Via: SIP/2.0/UDP h;branch=z9hG4bK1\r\n"
        b"From: <sip:a@x>;tag=1\r\n"
        b"To: <sip:b@x>\r\n"
        b"Call-ID: c1\r\n"
        b"CSeq: 1 MESSAGE\r\n"
        b"Content-Type: text/plain\r\n"
        b"Content-Length: 2\r\n"
        b"\r\n"
        b"hi"
    )


def test_to_bytes_fixes_wrong_content_length_in_place() -> None:
    headers = Headers([("Via", "SIP/2.0/UDP h"), ("Content-Length", "99"), ("X-After", "1"), ("l", "7")])
    response = Response(200, "OK", headers, b"12345")
    data = response.to_bytes()
    assert data == (
        b"SIP/2.0 200 OK\r\nVia: SIP/2.0/UDP h\r\nContent-Length: 5\r\nX-After: 1\r\n\r\n12345"
    )


def test_to_bytes_always_writes_content_length() -> None:
    data = Response(100, headers=Headers([("Via", "SIP/2.0/UDP h")])).to_bytes()
    assert data == b"SIP/2.0 100 Trying\r\nVia: SIP/2.0/UDP h\r\nContent-Length: 0\r\n\r\n"


def test_to_bytes_content_length_matches_body_after_body_change() -> None:
    request = parse_request(INVITE)
    request.body = b"x" * 7
    reparsed = parse_request(request.to_bytes())
    assert reparsed.headers.get_all("Content-Length") == ["7"]
    assert reparsed.body == b"x" * 7


# -- make_response ----------------------------------------------------------------------------------


def invite_with(extra: list[str], to: str = "To: <sip:b@example.com>", method: str = "INVITE") -> Request:
    """An INVITE (or other method) with two Via lines (three values), Record-Route and extra headers."""
    return parse_request(build(
        f"{method} sip:b@example.com SIP/2.0",
        [
            "Via: SIP/2.0/UDP proxy2.example.com;branch=z9hG4bK2, SIP/2.0/UDP proxy1.example.com;branch=z9hG4bK1",
            "Record-Route: <sip:proxy2.example.com;lr>",
            "Via: SIP/2.0/UDP client.example.com;branch=z9hG4bK0;received=192.0.2.9",
            "Record-Route: <sip:proxy1.example.com;lr>",
            "From: Alice <sip:a@example.com>;tag=f1",
            to,
            "Call-ID: call-9",
            f"CSeq: 5 {method}",
            "Contact: <sip:a@192.0.2.9>",
            *extra,
        ],
    ))


def test_make_response_copies_fields() -> None:
    request = invite_with([])
    response = make_response(request, 180, to_tag="t9")
    assert response.status_code == 180
    assert response.reason == "Ringing"
    assert response.headers.items() == [
        ("Via", "SIP/2.0/UDP proxy2.example.com;branch=z9hG4bK2, SIP/2.0/UDP proxy1.example.com;branch=z9hG4bK1"),
        ("Via", "SIP/2.0/UDP client.example.com;branch=z9hG4bK0;received=192.0.2.9"),
        ("From", "Alice <sip:a@example.com>;tag=f1"),
        ("To", "<sip:b@example.com>;tag=t9"),
        ("Call-ID", "call-9"),
        ("CSeq", "5 INVITE"),
        ("Record-Route", "<sip:proxy2.example.com;lr>"),
        ("Record-Route", "<sip:proxy1.example.com;lr>"),
    ]
    assert [via.branch for via in response.vias] == ["z9hG4bK2", "z9hG4bK1", "z9hG4bK0"]
    assert response.body == b""


def test_make_response_to_bytes_parses() -> None:
    response = make_response(invite_with([]), 200, to_tag="t9", body=SDP_BODY)
    reparsed = parse_response(response.to_bytes())
    assert reparsed.status_code == 200
    assert reparsed.to_address.tag == "t9"
    assert reparsed.body == SDP_BODY
    assert reparsed.content_type == "application/sdp"


def test_make_response_keeps_existing_to_tag() -> None:
    request = invite_with([], to="To: <sip:b@example.com>;tag=already")
    response = make_response(request, 200, to_tag="new")
    assert response.headers.get("To") == "<sip:b@example.com>;tag=already"
    assert response.to_address.tag == "already"


def test_make_response_100_never_gets_to_tag_or_record_route() -> None:
    response = make_response(invite_with([]), 100, to_tag="t9")
    assert response.headers.get("To") == "<sip:b@example.com>"
    assert response.reason == "Trying"
    assert "Record-Route" not in response.headers


def test_make_response_without_to_tag() -> None:
    assert make_response(invite_with([]), 486).headers.get("To") == "<sip:b@example.com>"


@pytest.mark.parametrize(
    ("method", "status", "copied"),
    [
        ("INVITE", 100, False),
        ("INVITE", 101, True),
        ("INVITE", 183, True),
        ("INVITE", 200, True),
        ("INVITE", 299, True),
        ("INVITE", 302, False),
        ("INVITE", 486, False),
        ("BYE", 200, False),
        ("OPTIONS", 200, False),
    ],
)
def test_make_response_record_route(method: str, status: int, copied: bool) -> None:
    response = make_response(invite_with([], method=method), status, to_tag="x")
    expected = ["<sip:proxy2.example.com;lr>", "<sip:proxy1.example.com;lr>"] if copied else []
    assert response.headers.get_all("Record-Route") == expected


def test_make_response_does_not_copy_other_headers() -> None:
    response = make_response(invite_with(["Subject: hi", "Max-Forwards: 70"]), 200, to_tag="x")
    assert "Subject" not in response.headers
    assert "Max-Forwards" not in response.headers
    assert "Contact" not in response.headers


def test_make_response_body_and_content_type() -> None:
    response = make_response(invite_with([]), 200, "Fine", to_tag="x", body=b"text", content_type="text/plain")
    assert response.reason == "Fine"
    assert response.body == b"text"
    assert response.headers.get("Content-Type") == "text/plain"
    default = make_response(invite_with([]), 200, to_tag="x", body=b"v=0\r\n")
    assert default.headers.get("Content-Type") == "application/sdp"


# -- Message helpers --------------------------------------------------------------------------------


def test_set_top_via_rewrites_only_first_element() -> None:
    request = invite_with([])
    top = request.top_via.copy()
    top.params.set("received", "198.51.100.1")
    top.params.set("rport", "5099")
    request.set_top_via(top)
    assert request.headers.get_all("Via") == [
        "SIP/2.0/UDP proxy2.example.com;branch=z9hG4bK2;received=198.51.100.1;rport=5099,"
        " SIP/2.0/UDP proxy1.example.com;branch=z9hG4bK1",
        "SIP/2.0/UDP client.example.com;branch=z9hG4bK0;received=192.0.2.9",
    ]
    assert [via.branch for via in request.vias] == ["z9hG4bK2", "z9hG4bK1", "z9hG4bK0"]


def test_set_top_via_single_element_line() -> None:
    request = parse_request(build("OPTIONS sip:b@example.com SIP/2.0", basic_headers()))
    request.set_top_via(Via("TCP", "new.example.com", 5070))
    assert request.headers.get_all("Via") == ["SIP/2.0/TCP new.example.com:5070"]
    assert request.headers.items()[0][0] == "Via"


def test_name_addresses_and_contacts() -> None:
    request = invite_with(["Contact: *"])
    assert [str(v.uri) for v in request.name_addresses("Record-Route")] == [
        "sip:proxy2.example.com;lr", "sip:proxy1.example.com;lr",
    ]
    assert [str(c.uri) for c in request.contacts] == ["sip:a@192.0.2.9"]


def test_content_type_lowercased_without_params() -> None:
    request = invite_with(["Content-Type: Application/SDP ; charset=utf-8"])
    assert request.content_type == "application/sdp"
    assert invite_with([]).content_type is None


# -- Headers ----------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("name", "canonical"),
    [
        ("call-id", "Call-ID"),
        ("CALL-ID", "Call-ID"),
        ("v", "Via"),
        ("V", "Via"),
        ("cseq", "CSeq"),
        ("www-authenticate", "WWW-Authenticate"),
        ("x-foo-bar", "X-Foo-Bar"),
        ("X-FOO-BAR", "X-Foo-Bar"),
        ("content-length", "Content-Length"),
        ("l", "Content-Length"),
        ("i", "Call-ID"),
        ("f", "From"),
        ("t", "To"),
        ("m", "Contact"),
        ("c", "Content-Type"),
        ("k", "Supported"),
        ("record-route", "Record-Route"),
        ("max-forwards", "Max-Forwards"),
        ("rack", "RAck"),
        ("mime-version", "MIME-Version"),
    ],
)
def test_canonical_name(name: str, canonical: str) -> None:
    assert canonical_name(name) == canonical


def test_headers_get_and_get_all() -> None:
    headers = Headers([("via", "a"), ("From", "f"), ("VIA", "b"), ("v", "c")])
    assert headers.get("Via") == "a"
    assert headers.get("v") == "a"
    assert headers.get_all("via") == ["a", "b", "c"]
    assert headers.get("Missing") is None
    assert headers.get("Missing", "dflt") == "dflt"
    assert headers.get_all("Missing") == []
    assert "FROM" in headers
    assert "f" in headers
    assert "To" not in headers
    assert 5 not in headers
    assert len(headers) == 4
    assert headers.count() == 4
    assert headers.items() == [("Via", "a"), ("From", "f"), ("Via", "b"), ("Via", "c")]


def test_headers_get_list_splits_commas_outside_quotes_and_brackets() -> None:
    headers = Headers([
        ("Contact", '"Doe, John" <sip:j@x;a=1,2>, <sip:k@y>;q=0.5'),
        ("Contact", " <sip:l@z> ,, "),
        ("Allow", "INVITE, ACK,BYE"),
    ])
    assert headers.get_list("Contact") == ['"Doe, John" <sip:j@x;a=1,2>', "<sip:k@y>;q=0.5", "<sip:l@z>"]
    assert headers.get_list("allow") == ["INVITE", "ACK", "BYE"]
    assert headers.get_list("Route") == []


def test_headers_set_replaces_all_at_first_position() -> None:
    headers = Headers([("X-A", "1"), ("Via", "a"), ("From", "f"), ("Via", "b"), ("X-B", "2"), ("v", "c")])
    headers.set("VIA", "new")
    assert headers.items() == [("X-A", "1"), ("Via", "new"), ("From", "f"), ("X-B", "2")]


def test_headers_set_appends_when_absent() -> None:
    headers = Headers([("From", "f")])
    headers.set("call-id", "c")
    assert headers.items() == [("From", "f"), ("Call-ID", "c")]


def test_headers_replace_first() -> None:
    headers = Headers([("Via", "a"), ("Via", "b")])
    headers.replace_first("v", "z")
    assert headers.items() == [("Via", "z"), ("Via", "b")]
    headers.replace_first("To", "t")
    assert headers.items() == [("Via", "z"), ("Via", "b"), ("To", "t")]


def test_headers_remove() -> None:
    headers = Headers([("Via", "a"), ("From", "f"), ("v", "b")])
    headers.remove("VIA")
    assert headers.items() == [("From", "f")]
    headers.remove("Nothing")
    assert headers.items() == [("From", "f")]


def test_headers_add_prepend_copy_iter() -> None:
    headers = Headers()
    headers.add("from", "f")
    headers.prepend("v", "top")
    clone = headers.copy()
    clone.add("To", "t")
    assert list(headers) == [("Via", "top"), ("From", "f")]
    assert list(clone) == [("Via", "top"), ("From", "f"), ("To", "t")]


@pytest.mark.parametrize("status_line", ["SIP/2.0 2000 OK", "SIP/2.0 1800 Ringing"])
def test_four_digit_status_code_rejected(status_line: str) -> None:
    with pytest.raises(SipParseError):
        parse_message(build(status_line, response_headers()))


@pytest.mark.parametrize(("header", "parses"), [
    ("Content-Length: " + "0" * 4301, True),  # leading zeros are allowed, and this is just 0
    ("Max-Forwards: " + "0" * 4300 + "70", True),
    ("Content-Length: " + "9" * 4301, False),  # beyond what int() converts: must not escape as ValueError
    ("Max-Forwards: 70\x1c", False),  # str.strip() would eat the control character, int() would not
    ("CSeq: " + "1" * 5000 + " OPTIONS", False),
])
def test_absurd_numbers_are_parse_errors_never_other_exceptions(header: str, parses: bool) -> None:
    name = header.split(":")[0]
    data = build("OPTIONS sip:b@example.com SIP/2.0", [h for h in basic_headers() if not h.startswith(name)] + [header])
    if parses:
        assert isinstance(parse_message(data), Request)
        return
    with pytest.raises(SipParseError) as info:
        parse_message(data)
    assert info.value.status_code == 400 and info.value.request is not None


@pytest.mark.parametrize(("extra", "limits", "reason"), [
    ([f"X-Filler-{n}: x" for n in range(300)], MessageLimits(), "More than 256 header fields"),
    (["Subject: " + "a" * 9000], MessageLimits(), "Header field longer than 8192 bytes"),
    (["Subject: " + "a" * 2000], MessageLimits(max_message_bytes=1000), "Message larger than 1000 bytes"),
])
def test_size_caps_answer_513_with_the_request_attached(extra: list[str], limits: MessageLimits,
                                                        reason: str) -> None:
    data = build("OPTIONS sip:b@example.com SIP/2.0", [*basic_headers(), *extra])
    with pytest.raises(SipParseError) as info:
        parse_message(data, limits)
    assert info.value.status_code == 513 and str(info.value) == reason
    assert info.value.request is not None and info.value.request.call_id == "call-1"
