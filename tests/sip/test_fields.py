"""Tests for sip/fields.py: NameAddress (From/To/Contact), Via and CSeq parsing and serialization."""

from __future__ import annotations

import pytest

from sip.fields import CSeq, NameAddress, Via
from sip.grammar import Params
from sip.uri import AbsoluteUri, SipUri

# -- NameAddress ------------------------------------------------------------------------------------


def test_quoted_display_name_with_escaped_quote() -> None:
    value = NameAddress.parse(r'"Alice \"The Boss\" Smith" <sip:alice@atlanta.example.com>;tag=1928301774')
    assert value.display_name == 'Alice "The Boss" Smith'
    assert str(value.uri) == "sip:alice@atlanta.example.com"
    assert value.tag == "1928301774"
    assert value.params.items() == [("tag", "1928301774")]


def test_quoted_display_name_with_special_characters() -> None:
    value = NameAddress.parse('"Doe, John <jd>; x" <sip:jd@example.com>')
    assert value.display_name == "Doe, John <jd>; x"
    assert str(value.uri) == "sip:jd@example.com"
    assert value.tag is None


def test_quoted_display_name_without_space_before_bracket() -> None:
    value = NameAddress.parse('"Bob"<sip:bob@example.com>')
    assert value.display_name == "Bob"
    assert str(value.uri) == "sip:bob@example.com"


def test_token_display_name_several_words() -> None:
    value = NameAddress.parse("Bob  Smith <sip:bob@biloxi.example.com>;tag=a6c85cf")
    assert value.display_name == "Bob Smith"
    assert value.tag == "a6c85cf"


def test_token_display_name_without_space_before_bracket() -> None:
    value = NameAddress.parse("caller<sip:caller@example.com>;tag=323")
    assert value.display_name == "caller"
    assert isinstance(value.uri, SipUri)
    assert value.uri.user == "caller"
    assert value.uri.host == "example.com"
    assert value.tag == "323"


def test_no_display_name() -> None:
    value = NameAddress.parse("<sip:carol@chicago.example.com>")
    assert value.display_name is None
    assert value.params.items() == []
    assert value.tag is None


def test_uri_params_inside_brackets_belong_to_uri() -> None:
    value = NameAddress.parse("<sip:proxy.example.com;lr;transport=tcp>;tag=x;expires=60")
    assert isinstance(value.uri, SipUri)
    assert value.uri.params.items() == [("lr", None), ("transport", "tcp")]
    assert value.params.items() == [("tag", "x"), ("expires", "60")]


def test_addr_spec_form_params_belong_to_header() -> None:
    value = NameAddress.parse("sip:bob@biloxi.example.com;tag=887s;transport=tcp")
    assert value.display_name is None
    assert isinstance(value.uri, SipUri)
    assert str(value.uri) == "sip:bob@biloxi.example.com"
    assert value.uri.params.items() == []
    assert value.tag == "887s"
    assert value.params.items() == [("tag", "887s"), ("transport", "tcp")]


def test_addr_spec_without_params() -> None:
    value = NameAddress.parse("  sip:bob@biloxi.example.com  ")
    assert str(value.uri) == "sip:bob@biloxi.example.com"
    assert value.params.items() == []


def test_tel_uri_in_name_addr() -> None:
    value = NameAddress.parse("<tel:+15551234>;tag=9")
    assert value.uri == AbsoluteUri("tel", "tel:+15551234")
    assert value.tag == "9"
    with pytest.raises(ValueError):
        _ = value.sip_uri


def test_sip_uri_property() -> None:
    value = NameAddress.parse("<sip:a@example.com>")
    assert value.sip_uri.user == "a"


def test_tag_param_name_is_case_insensitive() -> None:
    assert NameAddress.parse("<sip:a@example.com>;TAG=xyz").tag == "xyz"


@pytest.mark.parametrize(
    ("value", "text"),
    [
        (NameAddress(SipUri("example.com", "alice")), "<sip:alice@example.com>"),
        (NameAddress(SipUri("example.com", "alice"), "Alice"), "Alice <sip:alice@example.com>"),
        (NameAddress(SipUri("example.com", "alice"), "Alice Smith"), "Alice Smith <sip:alice@example.com>"),
        (NameAddress(SipUri("example.com", "a"), 'Say "hi"'), r'"Say \"hi\"" <sip:a@example.com>'),
        (NameAddress(SipUri("example.com", "a"), "Doe, John"), '"Doe, John" <sip:a@example.com>'),
        (NameAddress(SipUri("example.com", "a"), params=Params([("tag", "1")])), "<sip:a@example.com>;tag=1"),
    ],
)
def test_str(value: NameAddress, text: str) -> None:
    assert str(value) == text


@pytest.mark.parametrize(
    "text",
    [
        r'"Alice \"The Boss\" Smith" <sip:alice@atlanta.example.com>;tag=1928301774',
        '"Doe, John" <sip:jd@example.com;lr>;tag=x;expires=3600',
        "Bob <sips:bob@[2001:db8::1]:5061>",
        "caller<sip:caller@example.com>;tag=323",
        "sip:bob@example.com;tag=1",
        "<tel:+15551234>",
        r'"back\\slash" <sip:a@b.example>',
        '"" <sip:a@b.example>',
    ],
)
def test_round_trip(text: str) -> None:
    value = NameAddress.parse(text)
    again = NameAddress.parse(str(value))
    assert again.uri == value.uri
    assert (again.display_name or None) == (value.display_name or None)
    assert again.params == value.params
    assert str(again) == str(value)


def test_canonical_text_is_stable() -> None:
    assert str(NameAddress.parse('"Alice"<sip:alice@example.com>;tag=1')) == "Alice <sip:alice@example.com>;tag=1"
    assert str(NameAddress.parse("sip:bob@example.com;tag=1")) == "<sip:bob@example.com>;tag=1"


def test_copy_is_independent() -> None:
    value = NameAddress.parse('"A" <sip:a@example.com;lr>;tag=1')
    clone = value.copy()
    assert clone == value
    clone.params.set("tag", "2")
    assert isinstance(clone.uri, SipUri)
    clone.uri.params.remove("lr")
    assert str(value) == "A <sip:a@example.com;lr>;tag=1"
    assert str(clone) == "A <sip:a@example.com>;tag=2"


@pytest.mark.parametrize(
    "text",
    [
        "",
        '"unterminated <sip:a@example.com>',
        '"Alice" sip:alice@example.com',
        "Alice <sip:alice@example.com",
        "<sip:alice@example.com> junk",
        "<sip:alice@example.com>tag=1",
        "Al@ce <sip:alice@example.com>",
        "<>",
        "<notauri>",
        "sip:a b@example.com",
        "<sip:a@example.com>;=1",
        "<sip:a@example.com>;tag=",
        '<sip:a@example.com>;tag="x',
    ],
)
def test_name_address_rejects_malformed(text: str) -> None:
    with pytest.raises(ValueError):
        NameAddress.parse(text)


def test_tag_flag_without_value_has_no_tag() -> None:
    value = NameAddress.parse("<sip:a@example.com>;tag")
    assert "tag" in value.params
    assert value.tag is None


# -- Via --------------------------------------------------------------------------------------------


def test_via_simple() -> None:
    via = Via.parse("SIP/2.0/UDP pc33.atlanta.example.com:5066;branch=z9hG4bK776asdhds")
    assert via.protocol == "SIP/2.0"
    assert via.transport == "UDP"
    assert via.host == "pc33.atlanta.example.com"
    assert via.port == 5066
    assert via.branch == "z9hG4bK776asdhds"
    assert via.sent_by == ("pc33.atlanta.example.com", 5066)
    assert str(via) == "SIP/2.0/UDP pc33.atlanta.example.com:5066;branch=z9hG4bK776asdhds"


def test_via_with_spaces_around_slash_and_colon() -> None:
    via = Via.parse("SIP / 2.0 / UDP host : 5060 ;branch=z9hG4bK1")
    assert via.protocol == "SIP/2.0"
    assert via.transport == "UDP"
    assert via.host == "host"
    assert via.port == 5060
    assert via.branch == "z9hG4bK1"
    assert str(via) == "SIP/2.0/UDP host:5060;branch=z9hG4bK1"


def test_via_spaces_around_params() -> None:
    via = Via.parse("SIP/2.0/TCP client.example.com ; branch = z9hG4bK2 ; rport")
    assert via.port is None
    assert via.params.items() == [("branch", "z9hG4bK2"), ("rport", None)]


def test_via_rport_flag_and_received() -> None:
    via = Via.parse("SIP/2.0/UDP 192.0.2.1:5060;rport;branch=z9hG4bKnashds8;received=198.51.100.7")
    assert "rport" in via.params
    assert via.params.get("rport") is None
    assert via.params.get("received") == "198.51.100.7"
    assert via.branch == "z9hG4bKnashds8"


def test_via_rport_with_value() -> None:
    via = Via.parse("SIP/2.0/UDP 192.0.2.1;rport=5070;received=198.51.100.7;branch=z9hG4bK3")
    assert via.params.get("rport") == "5070"


def test_via_ipv6_sent_by() -> None:
    via = Via.parse("SIP/2.0/UDP [2001:DB8::9]:5070;branch=z9hG4bK4")
    assert via.host == "[2001:DB8::9]"
    assert via.port == 5070
    assert via.sent_by == ("[2001:db8::9]", 5070)
    assert str(via) == "SIP/2.0/UDP [2001:DB8::9]:5070;branch=z9hG4bK4"


def test_via_ipv6_sent_by_without_port() -> None:
    via = Via.parse("SIP/2.0/TCP [::1];branch=z9hG4bK5")
    assert via.host == "[::1]"
    assert via.port is None
    assert via.sent_by == ("[::1]", 5060)


@pytest.mark.parametrize(
    ("text", "sent_by"),
    [
        ("SIP/2.0/UDP Host.Example.COM", ("host.example.com", 5060)),
        ("SIP/2.0/TCP host", ("host", 5060)),
        ("SIP/2.0/TLS host", ("host", 5061)),
        ("SIP/2.0/tls host", ("host", 5061)),
        ("SIP/2.0/TLS host:5080", ("host", 5080)),
        ("SIP/2.0/UDP host:5080", ("host", 5080)),
        ("SIP/2.0/SCTP host", ("host", 5060)),
    ],
)
def test_via_sent_by_default_ports(text: str, sent_by: tuple[str, int]) -> None:
    assert Via.parse(text).sent_by == sent_by


@pytest.mark.parametrize(("given", "expected"), [("udp", "UDP"), ("Tcp", "TCP"), ("tls", "TLS"), ("ws", "WS")])
def test_via_transport_upper_cased(given: str, expected: str) -> None:
    via = Via.parse(f"SIP/2.0/{given} host;branch=z9hG4bK6")
    assert via.transport == expected
    assert str(via) == f"SIP/2.0/{expected} host;branch=z9hG4bK6"


def test_via_without_branch() -> None:
    assert Via.parse("SIP/2.0/UDP host").branch is None


def test_via_round_trip() -> None:
    text = "SIP/2.0/UDP 192.0.2.1:5060;rport;branch=z9hG4bKx;received=198.51.100.7;ttl=3"
    via = Via.parse(text)
    assert str(via) == text
    assert Via.parse(str(via)) == via


def test_via_copy_is_independent() -> None:
    via = Via.parse("SIP/2.0/UDP host;branch=z9hG4bK7")
    clone = via.copy()
    clone.params.set("received", "192.0.2.9")
    clone.port = 5070
    assert str(via) == "SIP/2.0/UDP host;branch=z9hG4bK7"
    assert str(clone) == "SIP/2.0/UDP host:5070;branch=z9hG4bK7;received=192.0.2.9"


@pytest.mark.parametrize(
    "text",
    [
        "",
        "SIP/2.0 host",
        "SIP/2.0/UDP",
        "SIP/2.0/UDP ",
        "SIP/2.0/UDP host:99999",
        "SIP/2.0/UDP host:",
        "SIP/2.0/UDP 256.0.0.1",
        "SIP/2.0/UDP [::g]",
        "SIP/2.0/UDP ho_st",
        "SIP/2.0/UDP host;=x",
        "SIP/2.0/UDP host;branch=",
        "UDP host:5060",
    ],
)
def test_via_rejects_malformed(text: str) -> None:
    with pytest.raises(ValueError):
        Via.parse(text)


# -- CSeq -------------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("text", "number", "method"),
    [
        ("4711 INVITE", 4711, "INVITE"),
        ("  1   BYE ", 1, "BYE"),
        ("0 ACK", 0, "ACK"),
        ("2147483647 OPTIONS", 2**31 - 1, "OPTIONS"),
        ("007 REGISTER", 7, "REGISTER"),
    ],
)
def test_cseq_parse_valid(text: str, number: int, method: str) -> None:
    cseq = CSeq.parse(text)
    assert cseq == CSeq(number, method)
    assert str(cseq) == f"{number} {method}"


@pytest.mark.parametrize(
    "text",
    [
        "4711",
        "INVITE",
        "",
        "abc INVITE",
        "-1 INVITE",
        "1.5 INVITE",
        "2147483648 INVITE",
        "99999999999999999999 INVITE",
        "1 INVITE extra",
        "1 INV:ITE",
    ],
)
def test_cseq_parse_rejects(text: str) -> None:
    with pytest.raises(ValueError):
        CSeq.parse(text)


def test_cseq_parse_rejects_non_ascii_digits() -> None:
    with pytest.raises(ValueError):
        CSeq.parse("\u0661\u0662 INVITE")


@pytest.mark.parametrize("text", ["SIP/2.0/UDP exa mple.com;branch=z9hG4bK1", "SIP/2.0/UDP host 5060;branch=z9hG4bK1"])
def test_via_rejects_whitespace_inside_host(text: str) -> None:
    with pytest.raises(ValueError):
        Via.parse(text)
