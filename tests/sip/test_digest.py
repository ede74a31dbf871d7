"""Tests for sip/digest.py: Digest challenges, Authorization values and the RFC 2617 / RFC 7616 examples."""

from __future__ import annotations

import hashlib

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from sip.digest import Challenge, Credentials, authorization, parse_challenge, parse_credentials_header

MUFASA = Credentials("Mufasa", "Circle Of Life")
SIP_CHALLENGE = 'Digest realm="atlanta.example.com", nonce="84a4cc6f3082121f32b42a2187831a9e", algorithm=MD5'


def md5(text: str) -> str:
    """The hex MD5 digest of `text`."""
    return hashlib.md5(text.encode()).hexdigest()


def sha256(text: str) -> str:
    """The hex SHA-256 digest of `text`."""
    return hashlib.sha256(text.encode()).hexdigest()


# -- published examples -----------------------------------------------------------------------------------


def test_rfc2617_example() -> None:
    challenge = parse_challenge(
        'Digest realm="testrealm@host.com", qop="auth,auth-int", nonce="dcd98b7102dd2f0e8b11d0f600bfb0c093", '
        'opaque="5ccc069c403ebaf9f0171e9517f40e41"'
    )
    value = authorization(challenge, MUFASA, "GET", "/dir/index.html", cnonce="0a4f113b")
    assert value == (
        'Digest username="Mufasa", realm="testrealm@host.com", nonce="dcd98b7102dd2f0e8b11d0f600bfb0c093", '
        'uri="/dir/index.html", response="6629fae49393a05397450978507c4ef1", algorithm=MD5, '
        'opaque="5ccc069c403ebaf9f0171e9517f40e41", qop=auth, nc=00000001, cnonce="0a4f113b"'
    )


def test_rfc7616_sha256_example() -> None:
    # RFC 7616 §3.9.1 spells the password "Circle of Life", unlike RFC 2617's "Circle Of Life".
    challenge = parse_challenge(
        'Digest realm="http-auth@example.org", qop="auth, auth-int", algorithm=SHA-256, '
        'nonce="7ypf/xlj9XXwfDPEoM4URrv/xwf94BcCAzFZH4GiTo0v", opaque="FQhe/qaU925kfnzjCev0ciny7QMkPqMAFRtzCUYo5tdS"'
    )
    value = authorization(challenge, Credentials("Mufasa", "Circle of Life"), "GET", "/dir/index.html",
                          cnonce="f2/wE4q74E6zIJEtWaHKaf5wv/H5QzzpXusqGemxURZJ")
    params = parse_credentials_header(value)
    assert params["response"] == "753927fa0e85d155564e2e272a28d1802ca10daf4496794697cf8db5856cb6c1"
    assert params["algorithm"] == "SHA-256"
    assert params["opaque"] == "FQhe/qaU925kfnzjCev0ciny7QMkPqMAFRtzCUYo5tdS"
    assert params["cnonce"] == "f2/wE4q74E6zIJEtWaHKaf5wv/H5QzzpXusqGemxURZJ"
    assert (params["qop"], params["nc"]) == ("auth", "00000001")


# -- computing responses -----------------------------------------------------------------------------------


def test_sip_md5_challenge_without_qop_uses_the_rfc2069_form() -> None:
    challenge = parse_challenge(SIP_CHALLENGE)
    value = authorization(challenge, Credentials("alice", "s3cret"), "REGISTER", "sip:atlanta.example.com")
    ha1 = md5("alice:atlanta.example.com:s3cret")
    ha2 = md5("REGISTER:sip:atlanta.example.com")
    expected = md5(f"{ha1}:84a4cc6f3082121f32b42a2187831a9e:{ha2}")
    assert value == (
        'Digest username="alice", realm="atlanta.example.com", nonce="84a4cc6f3082121f32b42a2187831a9e", '
        f'uri="sip:atlanta.example.com", response="{expected}", algorithm=MD5'
    )


def test_md5_sess_with_qop_auth() -> None:
    challenge = Challenge("Digest", "biloxi.com", "n1", algorithm="MD5-SESS", qop=("auth",))
    params = parse_credentials_header(
        authorization(challenge, Credentials("bob", "zanzibar"), "INVITE", "sip:bob@biloxi.com", cnonce="c1", nc=2)
    )
    ha1 = md5(f"{md5('bob:biloxi.com:zanzibar')}:n1:c1")
    ha2 = md5("INVITE:sip:bob@biloxi.com")
    assert params["response"] == md5(f"{ha1}:n1:00000002:c1:auth:{ha2}")
    assert (params["algorithm"], params["nc"], params["cnonce"]) == ("MD5-SESS", "00000002", "c1")


def test_md5_sess_without_qop_still_sends_its_cnonce() -> None:
    challenge = Challenge("Digest", "biloxi.com", "n1", algorithm="MD5-SESS")
    params = parse_credentials_header(authorization(challenge, Credentials("bob", "pw"), "BYE", "sip:b", cnonce="c9"))
    ha1 = md5(f"{md5('bob:biloxi.com:pw')}:n1:c9")
    assert params["response"] == md5(f"{ha1}:n1:{md5('BYE:sip:b')}")
    assert params["cnonce"] == "c9"
    assert "qop" not in params
    assert "nc" not in params


def test_sha256_sess() -> None:
    challenge = parse_challenge('Digest realm="r", nonce="n", algorithm=sha-256-sess, qop=auth')
    assert challenge.algorithm == "SHA-256-SESS"
    params = parse_credentials_header(authorization(challenge, Credentials("u", "p"), "INVITE", "sip:x", cnonce="c"))
    ha1 = sha256(f"{sha256('u:r:p')}:n:c")
    assert params["response"] == sha256(f"{ha1}:n:00000001:c:auth:{sha256('INVITE:sip:x')}")


def test_auth_int_hashes_the_body() -> None:
    challenge = Challenge("Digest", "r", "n", qop=("auth-int",))
    body = b"v=0\r\no=- 1 1 IN IP4 192.0.2.1\r\n"
    params = parse_credentials_header(
        authorization(challenge, Credentials("u", "p"), "INVITE", "sip:x", cnonce="c", body=body)
    )
    ha2 = md5(f"INVITE:sip:x:{hashlib.md5(body).hexdigest()}")
    assert params["response"] == md5(f"{md5('u:r:p')}:n:00000001:c:auth-int:{ha2}")
    assert params["qop"] == "auth-int"
    other = parse_credentials_header(
        authorization(challenge, Credentials("u", "p"), "INVITE", "sip:x", cnonce="c", body=body + b"x")
    )
    assert other["response"] != params["response"]


def test_auth_is_preferred_over_auth_int() -> None:
    challenge = parse_challenge('Digest realm="r", nonce="n", qop="auth-int, AUTH"')
    assert parse_credentials_header(authorization(challenge, MUFASA, "INVITE", "sip:x"))["qop"] == "auth"


def test_only_unknown_qop_values_are_refused() -> None:
    challenge = parse_challenge('Digest realm="r", nonce="n", qop="auth-conf"')
    with pytest.raises(ValueError, match="qop"):
        authorization(challenge, MUFASA, "INVITE", "sip:x")


def test_opaque_is_echoed_only_when_given() -> None:
    with_opaque = parse_challenge('Digest realm="r", nonce="n", opaque="o,p \\"q\\""')
    assert with_opaque.opaque == 'o,p "q"'
    assert parse_credentials_header(authorization(with_opaque, MUFASA, "BYE", "sip:x"))["opaque"] == 'o,p "q"'
    without = parse_challenge('Digest realm="r", nonce="n"')
    assert without.opaque is None
    assert "opaque" not in parse_credentials_header(authorization(without, MUFASA, "BYE", "sip:x"))


def test_nonce_count_is_eight_hex_digits_and_checked() -> None:
    challenge = Challenge("Digest", "r", "n", qop=("auth",))
    assert parse_credentials_header(authorization(challenge, MUFASA, "BYE", "sip:x", nc=255))["nc"] == "000000ff"
    for bad in (0, -1, 0x100000000):
        with pytest.raises(ValueError, match="nonce count"):
            authorization(challenge, MUFASA, "BYE", "sip:x", nc=bad)


def test_fresh_random_cnonce_when_none_is_given() -> None:
    challenge = Challenge("Digest", "r", "n", qop=("auth",))
    first = parse_credentials_header(authorization(challenge, MUFASA, "BYE", "sip:x"))["cnonce"]
    second = parse_credentials_header(authorization(challenge, MUFASA, "BYE", "sip:x"))["cnonce"]
    assert len(first) == 32
    assert first != second


def test_credentials_for_another_realm_are_refused() -> None:
    challenge = Challenge("Digest", "r", "n")
    with pytest.raises(ValueError, match="realm"):
        authorization(challenge, Credentials("u", "p", realm="other"), "BYE", "sip:x")


def test_special_characters_are_quoted() -> None:
    challenge = Challenge("Digest", 'a "realm", with\\ comma', "n")
    value = authorization(challenge, Credentials('us"er', "p"), "BYE", "sip:x")
    assert 'username="us\\"er"' in value
    params = parse_credentials_header(value)
    assert params["username"] == 'us"er'
    assert params["realm"] == 'a "realm", with\\ comma'
    ha1 = md5('us"er:a "realm", with\\ comma:p')
    assert params["response"] == md5(f"{ha1}:n:{md5('BYE:sip:x')}")


# -- parsing -------------------------------------------------------------------------------------------------


def test_parse_challenge_fields() -> None:
    challenge = parse_challenge(
        'digest REALM="biloxi.com",\tnonce=abc123 , qop="auth,auth-int", Algorithm=md5-sess, stale=TRUE,, '
        'opaque="x"'
    )
    assert challenge == Challenge(
        scheme="Digest", realm="biloxi.com", nonce="abc123", opaque="x", algorithm="MD5-SESS",
        qop=("auth", "auth-int"), stale=True,
    )


def test_parse_challenge_defaults() -> None:
    assert parse_challenge('Digest realm="r", nonce="n", stale=false') == Challenge("Digest", "r", "n")


def test_quoted_commas_do_not_split_parameters() -> None:
    challenge = parse_challenge('Digest qop="auth,auth-int", realm="a,b", nonce="c,d=e"')
    assert challenge.qop == ("auth", "auth-int")
    assert challenge.realm == "a,b"
    assert challenge.nonce == "c,d=e"


@pytest.mark.parametrize(
    "value",
    [
        "",
        "Digest",
        'Basic realm="r"',
        'Digestrealm="r", nonce="n"',
        'Digest nonce="n"',
        'Digest realm="r"',
        'Digest realm="r, nonce="n"',
        'Digest realm="r", nonce',
        'Digest realm="r", nonce=',
        'Digest realm="r", nonce=a b',
        'Digest realm="r", nonce="n"x',
        'Digest realm="r", nonce="n", realm="s"',
        'Digest realm="r", nonce="n", algorithm=SHA-1',
        'Digest realm="r", nonce="n", b@d="x"',
    ],
)
def test_malformed_challenges_are_refused(value: str) -> None:
    with pytest.raises(ValueError):
        parse_challenge(value)


def test_parse_credentials_header() -> None:
    assert parse_credentials_header('Digest username="bob", nc=00000001, URI="sip:a@b;x=\\"y\\""') == {
        "username": "bob", "nc": "00000001", "uri": 'sip:a@b;x="y"',
    }
    with pytest.raises(ValueError):
        parse_credentials_header('Basic username="bob"')


def test_credentials_matches() -> None:
    assert Credentials("u", "p").matches("any.example.com")
    assert Credentials("u", "p", realm="biloxi.com").matches("biloxi.com")
    assert not Credentials("u", "p", realm="biloxi.com").matches("Biloxi.com")
    assert not Credentials("u", "p", realm="biloxi.com").matches("atlanta.com")


def test_credentials_repr_hides_the_password() -> None:
    assert "s3cret" not in repr(Credentials("u", "s3cret"))


texts = st.text(alphabet=st.characters(min_codepoint=32, max_codepoint=0x2FF), max_size=20)


@settings(max_examples=60, deadline=None)
@given(texts, texts, texts, texts)
def test_authorization_values_parse_back(username: str, realm: str, nonce: str, uri: str) -> None:
    challenge = Challenge("Digest", realm, nonce, opaque=nonce, qop=("auth",))
    params = parse_credentials_header(authorization(challenge, Credentials(username, "p"), "INVITE", uri, cnonce="c"))
    assert (params["username"], params["realm"], params["nonce"], params["uri"]) == (username, realm, nonce, uri)
    assert params["opaque"] == nonce
