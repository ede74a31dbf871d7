"""Tests for rtp/srtp.py: a=crypto parsing and printing, answering an offer, and SRTP/SRTCP between two contexts."""

from __future__ import annotations

import base64

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from rtp.packet import RtpPacket
from rtp.srtp import KEY_LENGTH, SUITES, CryptoAttribute, SrtpContext, SrtpError, choose_crypto

RFC_EXAMPLE = "1 AES_CM_128_HMAC_SHA1_80 inline:PS1uQCVeeCFCanVmcjkpPywjNWhcYD0mXXtxaVBR|2^20|1:4"
"""The a=crypto value of RFC 4568 §4 (and its 80-bit-tag sibling of §9.1)."""
KEY_B64 = "PS1uQCVeeCFCanVmcjkpPywjNWhcYD0mXXtxaVBR"
RTCP_RR = bytes.fromhex("81c90007" "11223344" "55667788") + bytes(20)
"""A receiver report with one (zero) report block."""


def rtp(sequence: int, payload: bytes = b"\x7f" * 160, ssrc: int = 0x11223344) -> bytes:
    """A PCMU packet of a 20 ms stream."""
    return RtpPacket(0, sequence, 160 * sequence, ssrc, payload).to_bytes()


def pair(suite: str = "AES_CM_128_HMAC_SHA1_80") -> tuple[SrtpContext, SrtpContext]:
    """Two contexts wired back to back: A's local key is B's remote key and vice versa."""
    a, b = CryptoAttribute.generate(1, suite), CryptoAttribute.generate(1, suite)
    return SrtpContext(a, b), SrtpContext(b, a)


# --- CryptoAttribute ---------------------------------------------------------------------------------------------


def test_rfc_4568_example() -> None:
    attribute = CryptoAttribute.parse(RFC_EXAMPLE)
    assert attribute.tag == 1
    assert attribute.suite == "AES_CM_128_HMAC_SHA1_80"
    assert attribute.key == base64.b64decode(KEY_B64)
    assert len(attribute.key) == KEY_LENGTH
    assert attribute.lifetime == "2^20"
    assert attribute.mki == "1:4"
    assert str(attribute) == RFC_EXAMPLE


@pytest.mark.parametrize("value", [
    f"1 AES_CM_128_HMAC_SHA1_80 inline:{KEY_B64}",
    f"2 AES_CM_128_HMAC_SHA1_32 inline:{KEY_B64}|2^31",
    f"3 AES_CM_128_HMAC_SHA1_80 inline:{KEY_B64}|1048576",
    f"4 AES_CM_128_HMAC_SHA1_80 inline:{KEY_B64}|7:2",
    f"123456789 AES_CM_128_HMAC_SHA1_32 inline:{KEY_B64}|2^20|255:1",
])
def test_round_trips(value: str) -> None:
    attribute = CryptoAttribute.parse(value)
    assert str(attribute) == value
    assert CryptoAttribute.parse(str(attribute)) == attribute


def test_lifetime_and_mki_told_apart_when_alone() -> None:
    assert CryptoAttribute.parse(f"1 AES_CM_128_HMAC_SHA1_80 inline:{KEY_B64}|2^20").mki is None
    only_mki = CryptoAttribute.parse(f"1 AES_CM_128_HMAC_SHA1_80 inline:{KEY_B64}|1:4")
    assert (only_mki.lifetime, only_mki.mki) == (None, "1:4")


def test_extra_whitespace_is_tolerated() -> None:
    attribute = CryptoAttribute.parse(f"  5   AES_CM_128_HMAC_SHA1_80\tinline:{KEY_B64} ")
    assert str(attribute) == f"5 AES_CM_128_HMAC_SHA1_80 inline:{KEY_B64}"


@pytest.mark.parametrize("value", [
    "",
    "1",
    "1 AES_CM_128_HMAC_SHA1_80",
    f"x AES_CM_128_HMAC_SHA1_80 inline:{KEY_B64}",
    f"-1 AES_CM_128_HMAC_SHA1_80 inline:{KEY_B64}",
    f"1234567890 AES_CM_128_HMAC_SHA1_80 inline:{KEY_B64}",
    f"1 F8_128_HMAC_SHA1_80 inline:{KEY_B64}",
    f"1 AES_256_CM_HMAC_SHA1_80 inline:{KEY_B64}",
    f"1 aes_cm_128_hmac_sha1_80 inline:{KEY_B64}",
    f"1 AES_CM_128_HMAC_SHA1_80 outline:{KEY_B64}",
    f"1 AES_CM_128_HMAC_SHA1_80 {KEY_B64}",
    "1 AES_CM_128_HMAC_SHA1_80 inline:",
    "1 AES_CM_128_HMAC_SHA1_80 inline:!!!notbase64!!!",
    f"1 AES_CM_128_HMAC_SHA1_80 inline:{KEY_B64[:-4]}",
    f"1 AES_CM_128_HMAC_SHA1_80 inline:{KEY_B64}AAAA",
    f"1 AES_CM_128_HMAC_SHA1_80 inline:{KEY_B64}|2^20|1:4|extra",
    f"1 AES_CM_128_HMAC_SHA1_80 inline:{KEY_B64}|forever",
    f"1 AES_CM_128_HMAC_SHA1_80 inline:{KEY_B64}|2^20|1:0",
    f"1 AES_CM_128_HMAC_SHA1_80 inline:{KEY_B64}|2^20|1:129",
    f"1 AES_CM_128_HMAC_SHA1_80 inline:{KEY_B64}|2^20|x:4",
    f"1 AES_CM_128_HMAC_SHA1_80 inline:{KEY_B64};inline:{KEY_B64}",
    f"1 AES_CM_128_HMAC_SHA1_80 inline:{KEY_B64} UNENCRYPTED_SRTCP",
    f"1 AES_CM_128_HMAC_SHA1_80 inline:{KEY_B64} KDR=1",
    f"1 AES_CM_128_HMAC_SHA1_80 inline:{KEY_B64} WSH=128",
])
def test_parse_errors(value: str) -> None:
    with pytest.raises(SrtpError):
        CryptoAttribute.parse(value)


def test_srtp_error_is_a_value_error() -> None:
    assert issubclass(SrtpError, ValueError)


def test_constructor_validates() -> None:
    with pytest.raises(SrtpError):
        CryptoAttribute(1, "AES_CM_128_HMAC_SHA1_80", bytes(16))
    with pytest.raises(SrtpError):
        CryptoAttribute(1, "NULL", bytes(30))


@pytest.mark.parametrize("suite", sorted(SUITES))
def test_generate_gives_fresh_keys(suite: str) -> None:
    first, second = CryptoAttribute.generate(7, suite), CryptoAttribute.generate(7, suite)
    assert (first.tag, first.suite, len(first.key)) == (7, suite, KEY_LENGTH)
    assert first.key != second.key
    assert CryptoAttribute.parse(str(first)) == first


@settings(max_examples=300, deadline=None)
@given(st.text(max_size=120))
def test_parse_arbitrary_text_raises_only_srtp_error(value: str) -> None:
    try:
        attribute = CryptoAttribute.parse(value)
    except SrtpError:
        return
    assert CryptoAttribute.parse(str(attribute)) == attribute


# --- choose_crypto -----------------------------------------------------------------------------------------------


def test_choose_crypto_answers_the_first_offer_with_a_fresh_key() -> None:
    offered = [f"1 AES_CM_128_HMAC_SHA1_80 inline:{KEY_B64}", f"2 AES_CM_128_HMAC_SHA1_32 inline:{KEY_B64}"]
    chosen = choose_crypto(offered)
    assert chosen is not None
    remote, local = chosen
    assert remote == CryptoAttribute.parse(offered[0])
    assert (local.tag, local.suite, local.lifetime, local.mki) == (1, "AES_CM_128_HMAC_SHA1_80", None, None)
    assert local.key != remote.key


def test_choose_crypto_skips_unknown_suites_mki_and_garbage() -> None:
    offered = [
        f"1 AEAD_AES_256_GCM inline:{KEY_B64}",
        RFC_EXAMPLE.replace("1 ", "2 ", 1),
        "3 garbage",
        f"4 AES_CM_128_HMAC_SHA1_80 inline:{KEY_B64} UNENCRYPTED_SRTP",
        f"5 AES_CM_128_HMAC_SHA1_32 inline:{KEY_B64}|2^31",
        f"6 AES_CM_128_HMAC_SHA1_80 inline:{KEY_B64}",
    ]
    chosen = choose_crypto(offered)
    assert chosen is not None
    remote, local = chosen
    assert (remote.tag, remote.suite, remote.lifetime) == (5, "AES_CM_128_HMAC_SHA1_32", "2^31")
    assert (local.tag, local.suite) == (5, "AES_CM_128_HMAC_SHA1_32")


def test_choose_crypto_none_usable() -> None:
    assert choose_crypto([]) is None
    assert choose_crypto([RFC_EXAMPLE, f"1 F8_128_HMAC_SHA1_80 inline:{KEY_B64}"]) is None


# --- SrtpContext -------------------------------------------------------------------------------------------------


@pytest.mark.parametrize(("suite", "tag_length"), [("AES_CM_128_HMAC_SHA1_80", 10), ("AES_CM_128_HMAC_SHA1_32", 4)])
def test_rtp_both_ways(suite: str, tag_length: int) -> None:
    alice, bob = pair(suite)
    for sequence in range(65530, 65536 + 10):
        packet = rtp(sequence & 0xFFFF, bytes([sequence & 0xFF]) * 160)
        protected = alice.protect(packet)
        assert len(protected) == len(packet) + tag_length
        assert protected[:12] == packet[:12]
        assert protected[12:172] != packet[12:]
        assert bob.unprotect(protected) == packet
        reply = rtp(sequence & 0xFFFF, b"reply", ssrc=0x55667788)
        assert alice.unprotect(bob.protect(reply)) == reply
    assert alice.stats == bob.stats == {"auth_failed": 0, "replayed": 0, "malformed": 0}


@pytest.mark.parametrize("suite", sorted(SUITES))
def test_rtcp_both_ways(suite: str) -> None:
    alice, bob = pair(suite)
    for _ in range(3):
        protected = alice.protect_rtcp(RTCP_RR)
        assert len(protected) == len(RTCP_RR) + 4 + 10  # SRTCP index and an 80-bit tag for both suites
        assert protected[:8] == RTCP_RR[:8]
        assert bob.unprotect_rtcp(protected) == RTCP_RR
        assert alice.unprotect_rtcp(bob.protect_rtcp(RTCP_RR)) == RTCP_RR


def test_wrong_key_fails_authentication() -> None:
    alice, _ = pair()
    stranger, _ = pair()
    assert stranger.unprotect(alice.protect(rtp(1))) is None
    assert stranger.stats["auth_failed"] == 1


@pytest.mark.parametrize("position", [0, 11, 12, 100, -1])
def test_tampered_rtp_fails_authentication(position: int) -> None:
    alice, bob = pair()
    protected = bytearray(alice.protect(rtp(1)))
    protected[position] ^= 0x01
    assert bob.unprotect(bytes(protected)) is None
    assert bob.stats == {"auth_failed": 1, "replayed": 0, "malformed": 0}
    assert bob.unprotect(alice.protect(rtp(2))) == rtp(2)


def test_tampered_rtcp_fails_authentication() -> None:
    alice, bob = pair()
    protected = bytearray(alice.protect_rtcp(RTCP_RR))
    protected[20] ^= 0x80
    assert bob.unprotect_rtcp(bytes(protected)) is None
    assert bob.stats["auth_failed"] == 1
    assert bob.unprotect_rtcp(alice.protect_rtcp(RTCP_RR)) == RTCP_RR


def test_replayed_rtp_is_refused() -> None:
    alice, bob = pair()
    protected = alice.protect(rtp(1))
    assert bob.unprotect(protected) == rtp(1)
    assert bob.unprotect(protected) is None
    assert bob.stats == {"auth_failed": 0, "replayed": 1, "malformed": 0}


def test_replayed_rtcp_is_refused() -> None:
    alice, bob = pair()
    protected = alice.protect_rtcp(RTCP_RR)
    assert bob.unprotect_rtcp(protected) == RTCP_RR
    assert bob.unprotect_rtcp(protected) is None
    assert bob.stats["replayed"] == 1


def test_reordered_rtp_within_the_window_is_accepted() -> None:
    alice, bob = pair()
    protected = [alice.protect(rtp(sequence)) for sequence in range(1, 6)]
    for index in (0, 3, 1, 4, 2):
        assert bob.unprotect(protected[index]) == rtp(index + 1)


def test_protect_refuses_what_libsrtp_refuses() -> None:
    alice, _ = pair()
    with pytest.raises(SrtpError):
        alice.protect(b"\x80")
    with pytest.raises(SrtpError):
        alice.protect(rtp(1, bytes(2000)))


def test_mki_attributes_are_refused_by_the_context() -> None:
    with pytest.raises(SrtpError):
        SrtpContext(CryptoAttribute.generate(1, "AES_CM_128_HMAC_SHA1_80"), CryptoAttribute.parse(RFC_EXAMPLE))


@pytest.mark.parametrize("data", [b"", b"\x80", b"\x80\x00", bytes(12), rtp(1)[:12], bytes(40), b"\xff" * 1600])
def test_garbage_is_counted_not_raised(data: bytes) -> None:
    _, bob = pair()
    assert bob.unprotect(data) is None
    assert bob.unprotect_rtcp(data) is None
    assert sum(bob.stats.values()) == 2
    assert bob.stats["replayed"] == 0


@settings(max_examples=300, deadline=None)
@given(st.binary(max_size=1600))
def test_unprotect_arbitrary_bytes_never_raises(data: bytes) -> None:
    alice, bob = pair()
    assert bob.unprotect(data) is None
    assert bob.unprotect_rtcp(data) is None
    assert bob.stats["auth_failed"] + bob.stats["malformed"] == 2
    assert bob.unprotect(alice.protect(rtp(1))) == rtp(1)
