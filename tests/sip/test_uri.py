"""Tests for sip/uri.py: parsing and serializing sip:/sips: URIs, absolute URIs, and their derived values."""

from __future__ import annotations

import pytest

from sip.grammar import Params
from sip.uri import AbsoluteUri, SipUri, parse_uri


def parse_sip(text: str) -> SipUri:
    """parse_uri, asserting that the result is a SipUri."""
    uri = parse_uri(text)
    assert isinstance(uri, SipUri)
    return uri


def test_parse_host_only() -> None:
    uri = parse_sip("sip:example.com")
    assert uri == SipUri(host="example.com")
    assert uri.user is None
    assert uri.password is None
    assert uri.port is None
    assert uri.scheme == "sip"
    assert not uri.secure
    assert uri.params.items() == []
    assert uri.headers is None


def test_parse_full_sip_uri() -> None:
    uri = parse_sip("sip:alice:secret@atlanta.example.com:5070;transport=tcp;lr?subject=project&priority=urgent")
    assert uri.scheme == "sip"
    assert uri.user == "alice"
    assert uri.password == "secret"
    assert uri.host == "atlanta.example.com"
    assert uri.port == 5070
    assert uri.params.items() == [("transport", "tcp"), ("lr", None)]
    assert uri.headers == "subject=project&priority=urgent"
    assert uri.transport == "tcp"


def test_parse_sips_uri_is_secure() -> None:
    uri = parse_sip("sips:bob@biloxi.example.com")
    assert uri.scheme == "sips"
    assert uri.secure
    assert uri.user == "bob"


def test_scheme_is_case_insensitive() -> None:
    uri = parse_sip("SIP:carol@Chicago.example.com")
    assert uri.scheme == "sip"
    assert uri.host == "Chicago.example.com"
    assert str(uri) == "sip:carol@Chicago.example.com"


def test_transport_property_is_lower_cased() -> None:
    assert parse_sip("sip:h;transport=TCP").transport == "tcp"
    assert parse_sip("sip:h").transport is None


def test_lr_flag_param() -> None:
    uri = parse_sip("sip:proxy.example.com;lr")
    assert "lr" in uri.params
    assert uri.params.get("lr") is None


def test_parse_ipv6_host_with_port() -> None:
    uri = parse_sip("sip:bob@[2001:db8::10]:5070")
    assert uri.host == "[2001:db8::10]"
    assert uri.port == 5070
    assert uri.host_and_port() == ("2001:db8::10", 5070)


def test_parse_ipv6_host_without_port() -> None:
    uri = parse_sip("sip:[2001:db8::10];transport=udp")
    assert uri.host == "[2001:db8::10]"
    assert uri.port is None
    assert uri.host_and_port() == ("2001:db8::10", 5060)
    assert uri.transport == "udp"


def test_parse_ipv4_host() -> None:
    uri = parse_sip("sip:192.0.2.4:5062")
    assert (uri.host, uri.port) == ("192.0.2.4", 5062)


def test_user_with_escapes_kept_raw_and_decoded_on_demand() -> None:
    uri = parse_sip("sip:alice%40home%2520@example.com")
    assert uri.user == "alice%40home%2520"
    assert uri.user_unescaped == "alice@home%20"
    assert str(uri) == "sip:alice%40home%2520@example.com"


def test_user_unescaped_none_without_user() -> None:
    assert parse_sip("sip:example.com").user_unescaped is None


def test_user_may_contain_telephone_subscriber_params() -> None:
    uri = parse_sip("sip:+1-212-555-1212;isub=1411@gateway.example.com;user=phone")
    assert uri.user == "+1-212-555-1212;isub=1411"
    assert uri.host == "gateway.example.com"
    assert uri.params.items() == [("user", "phone")]


def test_empty_password_is_kept() -> None:
    uri = parse_sip("sip:alice:@example.com")
    assert uri.user == "alice"
    assert uri.password == ""
    assert str(uri) == "sip:alice:@example.com"


@pytest.mark.parametrize(
    "text",
    [
        "sip:example.com",
        "sips:example.com",
        "sip:alice@example.com",
        "sip:alice:secret@example.com:5070",
        "sip:alice@example.com;transport=tcp;lr",
        "sip:alice@example.com:5060;Transport=TCP;maddr=239.255.255.1;ttl=15?subject=hi&h=%20x",
        "sip:bob@[2001:db8::10]:5070",
        "sip:[::1]",
        "sips:192.0.2.1:5061;lr",
        "sip:alice%40home@example.com",
        "sip:user;x=y@example.com",
        "sip:example.com?to=alice%40example.com",
    ],
)
def test_str_round_trip(text: str) -> None:
    uri = parse_sip(text)
    assert str(uri) == text
    assert parse_uri(str(uri)) == uri


def test_parse_strips_surrounding_whitespace() -> None:
    assert str(parse_uri("  sip:alice@example.com \t")) == "sip:alice@example.com"


@pytest.mark.parametrize(
    ("text", "scheme"),
    [
        ("tel:+1-201-555-0123", "tel"),
        ("http://www.example.com/index.html", "http"),
        ("urn:service:sos", "urn"),
        ("TEL:+1555", "tel"),
        ("mailto:someone@example.com", "mailto"),
    ],
)
def test_other_schemes_give_absolute_uri(text: str, scheme: str) -> None:
    uri = parse_uri(text)
    assert isinstance(uri, AbsoluteUri)
    assert uri.scheme == scheme
    assert uri.text == text
    assert str(uri) == text


@pytest.mark.parametrize(
    "text",
    [
        "sip:",
        "sip:user@",
        "sip:host:99999",
        "sip:host:65536",
        "notauri",
        "sip:a b@host",
        "",
        ":nothing",
        "1sip:host",
        "s_p:host",
        "sip:@host",
        "sip::pw@host",
        "sip:host:",
        "sip:host:abc",
        "sip:host:123456",
        "sip:256.1.1.1",
        "sip:[::g]",
        "sip:exa_mple.com",
        "sip:host;=x",
        "sip:host;a=",
        "sip:<host>",
        'sip:"host"',
        "sip:ho\r\nst",
        'sip:example.com;q="0.5"',
        "tel:",
        "tel:+1 555",
        "http:<x>",
    ],
)
def test_malformed_uris_raise_value_error(text: str) -> None:
    with pytest.raises(ValueError):
        parse_uri(text)


def test_port_boundaries() -> None:
    assert parse_sip("sip:host:65535").port == 65535
    assert parse_sip("sip:host:1").port == 1


def test_address_of_record_drops_params_and_headers() -> None:
    uri = parse_sip("sip:alice:pw@example.com:5070;transport=tcp;lr?subject=x")
    assert uri.address_of_record == "sip:alice@example.com:5070"
    assert parse_sip("sips:bob@example.com;user=phone").address_of_record == "sips:bob@example.com"
    assert parse_sip("sip:example.com;lr").address_of_record == "sip:example.com"
    assert parse_sip("sip:a%40b@[::1]:5062;x").address_of_record == "sip:a%40b@[::1]:5062"


def test_host_and_port_defaults() -> None:
    assert parse_sip("sip:example.com").host_and_port() == ("example.com", 5060)
    assert parse_sip("sips:example.com").host_and_port() == ("example.com", 5061)
    assert parse_sip("sip:example.com:5080").host_and_port() == ("example.com", 5080)
    assert parse_sip("sips:example.com:5080").host_and_port() == ("example.com", 5080)
    assert parse_sip("sip:example.com").host_and_port(default_port=5070) == ("example.com", 5070)
    assert parse_sip("sip:example.com:5080").host_and_port(default_port=5070) == ("example.com", 5080)


def test_copy_is_independent() -> None:
    uri = parse_sip("sip:alice@example.com;lr")
    clone = uri.copy()
    assert clone == uri
    clone.params.set("transport", "tcp")
    clone.host = "other.example.com"
    assert str(uri) == "sip:alice@example.com;lr"
    assert str(clone) == "sip:alice@other.example.com;lr;transport=tcp"


def test_construct_and_serialize() -> None:
    uri = SipUri(host="example.com", user="bob", port=5070, scheme="sips", params=Params([("lr", None)]))
    assert str(uri) == "sips:bob@example.com:5070;lr"


def test_non_ascii_digits_in_port_rejected() -> None:
    with pytest.raises(ValueError):
        parse_uri("sip:example.com:\u0665\u0660\u0666\u0660")
