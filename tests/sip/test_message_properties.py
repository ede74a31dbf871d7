"""Hypothesis property tests: message serialize/parse round trip, and that the sip parsers never crash."""

from __future__ import annotations

import ipaddress
import string

from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from sip.errors import RemoteProtocolError, SipParseError
from sip.fields import NameAddress, Via
from sip.grammar import Params
from sip.headers import Headers
from sip.message import Request, Response, parse_message
from sip.sdp import SdpParseError, SessionDescription, parse_sdp
from sip.uri import AbsoluteUri, SipUri, parse_uri

PROPERTY_SETTINGS = settings(max_examples=300, deadline=None, suppress_health_check=[HealthCheck.too_slow])
FUZZ_SETTINGS = settings(max_examples=800, deadline=None, suppress_health_check=[HealthCheck.too_slow])

TOKEN_CHARS = string.ascii_letters + string.digits + "-.!%*_+`'~"
UNRESERVED = string.ascii_letters + string.digits + "-_.!~*'()"
USER_CHARS = UNRESERVED + "&=+$,;?/"
PASSWORD_CHARS = UNRESERVED + "&=+$,"
HEADER_VALUE_CHARS = UNRESERVED + "[]/?:+$"
GRAMMAR_CHARS = "sipSIPtel:@;=<>\"\\ ,/.:[]?%&+-_*!~'()\t0123456789abcdefABCDEF\r\nzZ#"

VALID_INVITE = (
    b"INVITE sip:bob@biloxi.example.com SIP/2.0\r\n"
    b"Via: SIP/2.0/UDP pc33.atlanta.example.com;branch=z9hG4bK776asdhds, SIP/2.0/TCP [2001:db8::1]:5070;rport\r\n"
    b"Max-Forwards: 70\r\n"
    b'To: "Bob \\"B\\"" <sip:bob@biloxi.example.com>\r\n'
    b"f: Alice <sip:alice%40x@atlanta.example.com;lr>;tag=1928301774\r\n"
    b"Call-ID: a84b4c76e66710@pc33.atlanta.example.com\r\n"
    b"CSeq: 314159 INVITE\r\n"
    b"Contact: <sip:alice@pc33.atlanta.example.com>, *\r\n"
    b"Subject: folded\r\n  line\r\n"
    b"Content-Type: application/sdp\r\n"
    b"Content-Length: 142\r\n"
    b"\r\n"
    b"v=0\r\n"
    b"o=alice 2890844526 2890844526 IN IP4 pc33.atlanta.example.com\r\n"
    b"s=-\r\n"
    b"c=IN IP4 192.0.2.101\r\n"
    b"t=0 0\r\n"
    b"m=audio 49172 RTP/AVP 0 101\r\n"
    b"a=rtpmap:0 PCMU/8000\r\n"
)

VALID_SDP = (
    b"v=0\r\n"
    b"o=- 3912345678 3912345679 IN IP4 192.168.1.20\r\n"
    b"s=call\r\n"
    b"c=IN IP4 192.168.1.20/127\r\n"
    b"t=0 0\r\n"
    b"a=sendonly\r\n"
    b"m=audio 40000/2 RTP/AVP 9 0 101\r\n"
    b"c=IN IP6 2001:db8::1\r\n"
    b"a=rtpmap:101 telephone-event/8000\r\n"
    b"a=fmtp:101 0-16\r\n"
    b"a=ptime:20\r\n"
    b"m=video 0 RTP/AVP 31\r\n"
)


def test_valid_samples_parse() -> None:
    """The seeds that the mutation fuzzers start from are themselves valid."""
    assert isinstance(parse_message(VALID_INVITE), Request)
    assert len(parse_sdp(VALID_SDP).media) == 2


# -- strategies -------------------------------------------------------------------------------------

tokens = st.text(alphabet=TOKEN_CHARS, min_size=1, max_size=12)
methods = tokens


def domain_label(first: str, middle: str, last: str) -> str:
    """A domain label: `middle` only when there is a last character, so no label ends with '-'."""
    return first + (middle + last if last else "")


labels = st.builds(
    domain_label,
    st.sampled_from(string.ascii_letters),
    st.text(alphabet=string.ascii_letters + string.digits + "-", max_size=6),
    st.text(alphabet=string.ascii_letters + string.digits, max_size=1),
)
hostnames = st.lists(labels, min_size=1, max_size=3).map(".".join)


ipv4_hosts = st.ip_addresses(v=4).map(str)
ipv6_hosts = st.ip_addresses(v=6).map(lambda a: f"[{ipaddress.IPv6Address(a).compressed}]")
hosts = st.one_of(hostnames, ipv4_hosts, ipv6_hosts)
ports = st.one_of(st.none(), st.integers(min_value=1, max_value=65535))


escapes = st.integers(min_value=0, max_value=255).map(lambda b: f"%{b:02X}")


def join3(head: str, middle: str, tail: str) -> str:
    """Concatenate three strings."""
    return head + middle + tail


def escaped_text(chars: str, max_size: int) -> st.SearchStrategy[str]:
    """Non-empty text from `chars`, sometimes with a %HH escape inside."""
    plain = st.text(alphabet=chars, max_size=max_size)
    return st.builds(join3, st.text(alphabet=chars, min_size=1, max_size=max_size),
                     st.one_of(st.just(""), escapes), plain)


params = st.lists(st.tuples(tokens, st.one_of(st.none(), tokens)), max_size=3).map(Params)
uri_headers = st.one_of(
    st.none(),
    st.lists(
        st.tuples(escaped_text(HEADER_VALUE_CHARS, 4), escaped_text(HEADER_VALUE_CHARS, 4)), min_size=1, max_size=2
    ).map(lambda pairs: "&".join(f"{k}={v}" for k, v in pairs)),
)
users = st.one_of(st.none(), escaped_text(USER_CHARS, 5))
passwords = st.one_of(st.none(), escaped_text(PASSWORD_CHARS, 4))
schemes = st.sampled_from(["sip", "sips"])


@st.composite
def sip_uris(draw: st.DrawFn) -> SipUri:
    """A random valid sip: or sips: URI."""
    user = draw(users)
    return SipUri(
        host=draw(hosts),
        user=user,
        password=draw(passwords) if user is not None else None,
        port=draw(ports),
        scheme=draw(schemes),
        params=draw(params),
        headers=draw(uri_headers),
    )


printable = st.characters(codec="utf-8", exclude_categories=("Cc", "Cs"))
header_value_text = st.text(alphabet=printable, max_size=30).filter(lambda v: v == v.strip(" \t"))
display_names = st.one_of(st.none(), st.text(alphabet=printable, min_size=1, max_size=12))
transports = st.sampled_from(["UDP", "TCP", "TLS", "SCTP", "WS"])


@st.composite
def name_addresses(draw: st.DrawFn, with_tag: bool) -> str:
    """The text of a From/To value."""
    uri = draw(sip_uris())
    uri.headers = None
    tag = Params([("tag", draw(tokens))]) if with_tag else Params()
    return str(NameAddress(uri, draw(display_names), tag))


@st.composite
def vias(draw: st.DrawFn) -> str:
    """The text of a Via value."""
    via_params = draw(params)
    via_params.set("branch", "z9hG4bK" + draw(tokens))
    return str(Via(draw(transports), draw(hosts), draw(ports), via_params))


via_lists = st.lists(vias(), min_size=1, max_size=2).map(", ".join)
call_ids = st.builds(join3, tokens, st.one_of(st.just(""), st.just("@")), st.text(alphabet=TOKEN_CHARS, max_size=8))
cseq_numbers = st.integers(min_value=0, max_value=2**31 - 1)
extension_headers = st.lists(st.tuples(tokens.map(lambda t: "X-" + t), header_value_text), max_size=4)
stale_lengths = st.one_of(st.none(), st.integers(min_value=0, max_value=10**6))
bodies = st.binary(max_size=200)
reasons = st.text(alphabet=printable, max_size=20)
status_codes = st.integers(min_value=100, max_value=699)


@st.composite
def header_lists(draw: st.DrawFn, method: str) -> list[tuple[str, str]]:
    """The mandatory header fields plus random extension fields, in random order."""
    items = [
        ("Via", draw(via_lists)),
        ("From", draw(name_addresses(with_tag=True))),
        ("To", draw(name_addresses(with_tag=draw(st.booleans())))),
        ("Call-ID", draw(call_ids)),
        ("CSeq", f"{draw(cseq_numbers)} {method}"),
        *draw(extension_headers),
    ]
    length = draw(stale_lengths)
    if length is not None:
        items.append(("Content-Length", str(length)))
    return list(draw(st.permutations(items)))


@st.composite
def requests(draw: st.DrawFn) -> Request:
    """A random valid request."""
    method = draw(methods)
    return Request(method, draw(sip_uris()), Headers(draw(header_lists(method))), draw(bodies))


@st.composite
def responses(draw: st.DrawFn) -> Response:
    """A random valid response."""
    return Response(draw(status_codes), draw(reasons), Headers(draw(header_lists(draw(methods)))), draw(bodies))


def expected_headers(message: Request | Response) -> list[tuple[str, str]]:
    """The header fields a reparse must give: Content-Length corrected, or appended when absent."""
    items = [(n, str(len(message.body)) if n == "Content-Length" else v) for n, v in message.headers.items()]
    if not any(n == "Content-Length" for n, _ in items):
        items.append(("Content-Length", str(len(message.body))))
    return items


# -- (1) round trip ---------------------------------------------------------------------------------


@PROPERTY_SETTINGS
@given(uri=sip_uris())
def test_uri_round_trip(uri: SipUri) -> None:
    text = str(uri)
    parsed = parse_uri(text)
    assert parsed == uri
    assert str(parsed) == text


@PROPERTY_SETTINGS
@given(request=requests())
def test_request_round_trip(request: Request) -> None:
    parsed = parse_message(request.to_bytes())
    assert isinstance(parsed, Request)
    assert parsed.method == request.method
    assert str(parsed.uri) == str(request.uri)
    assert parsed.uri == request.uri
    assert parsed.version == "SIP/2.0"
    assert parsed.headers.items() == expected_headers(request)
    assert parsed.body == request.body
    assert parsed.to_bytes() == request.to_bytes()


@PROPERTY_SETTINGS
@given(response=responses())
def test_response_round_trip(response: Response) -> None:
    parsed = parse_message(response.to_bytes())
    assert isinstance(parsed, Response)
    assert parsed.status_code == response.status_code
    assert parsed.reason == response.reason
    assert parsed.headers.items() == expected_headers(response)
    assert parsed.body == response.body
    assert parsed.to_bytes() == response.to_bytes()


@PROPERTY_SETTINGS
@given(via_text=vias())
def test_via_round_trip(via_text: str) -> None:
    assert str(Via.parse(via_text)) == via_text


@PROPERTY_SETTINGS
@given(text=name_addresses(with_tag=True))
def test_name_address_round_trip(text: str) -> None:
    value = NameAddress.parse(text)
    assert str(value) == text
    assert NameAddress.parse(str(value)) == value


# -- (2) parse_message never crashes ----------------------------------------------------------------


def parse_message_or_error(data: bytes) -> None:
    """parse_message must give a Request/Response or raise SipParseError, never anything else."""
    try:
        message = parse_message(data)
    except SipParseError as error:
        assert isinstance(error, RemoteProtocolError)
        assert 400 <= error.status_code <= 599
        assert error.request is None or isinstance(error.request, Request)
        return
    assert isinstance(message, Request | Response)
    message.to_bytes()


@st.composite
def mutated(draw: st.DrawFn, seed: bytes) -> bytes:
    """`seed` with random byte flips, deletions, insertions and truncations applied."""
    data = bytearray(seed)
    interesting = st.sampled_from([b"\r\n", b"\n", b" ", b"\t", b":", b";", b",", b"<", b">", b'"', b"\\", b"%",
                                   b"=", b"/", b"@", b"[", b"]", b"0", b"9", b"\x00", b"\xff", b"\r\n\r\n", b"\r\n "])
    for _ in range(draw(st.integers(min_value=1, max_value=6))):
        kind = draw(st.sampled_from(["flip", "set", "delete", "insert", "insert_token", "truncate"]))
        position = draw(st.integers(min_value=0, max_value=max(len(data) - 1, 0)))
        if kind == "flip" and data:
            data[position] ^= 1 << draw(st.integers(min_value=0, max_value=7))
        elif kind == "set" and data:
            data[position] = draw(st.integers(min_value=0, max_value=255))
        elif kind == "delete" and data:
            del data[position : position + draw(st.integers(min_value=1, max_value=8))]
        elif kind == "insert":
            data[position:position] = draw(st.binary(min_size=1, max_size=4))
        elif kind == "insert_token":
            data[position:position] = draw(interesting)
        elif kind == "truncate":
            del data[position:]
    return bytes(data)


@FUZZ_SETTINGS
@given(data=st.binary(max_size=400))
def test_parse_message_arbitrary_bytes_never_crashes(data: bytes) -> None:
    parse_message_or_error(data)


@FUZZ_SETTINGS
@given(data=mutated(VALID_INVITE))
def test_parse_message_mutated_invite_never_crashes(data: bytes) -> None:
    parse_message_or_error(data)


@PROPERTY_SETTINGS
@given(data=st.lists(st.sampled_from([
    b"INVITE ", b"SIP/2.0 ", b"200 OK", b"sip:a@b ", b"SIP/2.0", b"\r\n", b"\n", b"Via: ", b"v:", b"From: ",
    b"To: ", b"Call-ID: x", b"CSeq: 1 INVITE", b"Content-Length: ", b"l:", b"1", b"99", b" ", b"\t", b";tag=",
    b"<sip:x@y>", b"SIP/2.0/UDP h", b",", b'"', b"\r\n\r\n", b"abc",
]), max_size=40).map(b"".join))
def test_parse_message_token_soup_never_crashes(data: bytes) -> None:
    parse_message_or_error(data)


# -- (3) field parsers only raise their documented errors -------------------------------------------

grammar_text = st.one_of(st.text(alphabet=GRAMMAR_CHARS, max_size=60), st.text(max_size=40))


@FUZZ_SETTINGS
@given(text=st.one_of(grammar_text, st.text(alphabet=GRAMMAR_CHARS, max_size=40).map(lambda t: "sip:" + t)))
def test_parse_uri_only_raises_value_error(text: str) -> None:
    try:
        uri = parse_uri(text)
    except ValueError:
        return
    assert isinstance(uri, SipUri | AbsoluteUri)
    if isinstance(uri, SipUri):
        str(uri)
        uri.host_and_port()


@FUZZ_SETTINGS
@given(text=st.one_of(
    grammar_text,
    st.text(alphabet=GRAMMAR_CHARS, max_size=40).map(lambda t: '"' + t),
    st.text(alphabet=GRAMMAR_CHARS, max_size=40).map(lambda t: "<sip:" + t),
))
def test_name_address_parse_only_raises_value_error(text: str) -> None:
    try:
        value = NameAddress.parse(text)
    except ValueError:
        return
    assert isinstance(value, NameAddress)
    str(value)


@FUZZ_SETTINGS
@given(text=st.one_of(grammar_text, st.text(alphabet=GRAMMAR_CHARS, max_size=40).map(lambda t: "SIP/2.0/UDP " + t)))
def test_via_parse_only_raises_value_error(text: str) -> None:
    try:
        via = Via.parse(text)
    except ValueError:
        return
    assert isinstance(via, Via)
    assert via.transport == via.transport.upper()
    via.sent_by  # noqa: B018 -- must not raise


@FUZZ_SETTINGS
@given(data=st.one_of(st.binary(max_size=300), mutated(VALID_SDP)))
def test_parse_sdp_only_raises_sdp_parse_error(data: bytes) -> None:
    try:
        sdp = parse_sdp(data)
    except SdpParseError as error:
        assert error.status_code == 400
        return
    assert isinstance(sdp, SessionDescription)
    for media in sdp.media:
        media.rtpmap()
        media.fmtp()
        media.direction()
    parse_sdp(sdp.to_bytes())
