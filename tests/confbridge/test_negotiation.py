"""Tests for confbridge/negotiation.py: codecs, the SRTP policy, SDES keys and where media may come from."""

from __future__ import annotations

import pytest

from confbridge.negotiation import (
    SUPPORTED_CODECS,
    SrtpPolicy,
    answer_offer,
    offer_crypto,
    placeholder_params,
    read_answer,
)
from rtp.codecs import G722, OPUS, PCMU
from rtp.srtp import CryptoAttribute
from sip.offer_answer import OfferAnswerError, build_offer
from sip.sdp import Origin, SessionDescription, parse_sdp

PUBLIC = "8.8.4.4"


def offer(*lines: str, host: str = PUBLIC, proto: str = "RTP/AVP", formats: str = "0 101") -> SessionDescription:
    text = (f"v=0\r\no=- 1 1 IN IP4 {host}\r\ns=-\r\nc=IN IP4 {host}\r\nt=0 0\r\n"
            f"m=audio 40000 {proto} {formats}\r\na=rtpmap:101 telephone-event/8000\r\n")
    return parse_sdp(text + "".join(line + "\r\n" for line in lines))


def key(suite: str = "AES_CM_128_HMAC_SHA1_80") -> CryptoAttribute:
    return CryptoAttribute.generate(1, suite)


def test_we_support_opus_g722_pcmu_pcma_in_that_order() -> None:
    assert [(c.name, c.clock_rate, c.channels) for c in SUPPORTED_CODECS] == [
        ("opus", 48000, 2), ("G722", 8000, 1), ("PCMU", 8000, 1), ("PCMA", 8000, 1)]


def test_the_offerers_order_wins_and_maps_to_our_codec() -> None:
    stream = answer_offer(offer("a=rtpmap:111 opus/48000/2", formats="9 111 0"), SrtpPolicy.OPTIONAL,
                          signalling_host=PUBLIC)
    assert stream.codec is G722 and stream.params.payload_type == 9
    stream = answer_offer(offer("a=rtpmap:111 OPUS/48000/2", formats="111 0"), SrtpPolicy.OPTIONAL,
                          signalling_host=PUBLIC)
    assert stream.codec is OPUS and stream.params.payload_type == 111


def test_a_public_sdp_address_from_the_signalling_host_is_locked_others_latch() -> None:
    locked = answer_offer(offer(), SrtpPolicy.OPTIONAL, signalling_host=PUBLIC).params
    assert locked.remote == (PUBLIC, 40000) and locked.remote_reachable
    assert locked.remote_rtcp == (PUBLIC, 40001) and locked.peer_sends
    natted = answer_offer(offer(host="192.168.1.9"), SrtpPolicy.OPTIONAL, signalling_host=PUBLIC).params
    assert natted.remote == ("192.168.1.9", 40000) and not natted.remote_reachable
    assert natted.signalling_host == PUBLIC


def test_rtcp_attribute_mux_and_hold() -> None:
    params = answer_offer(offer("a=rtcp:40009", "a=rtcp-mux", "a=sendonly"), SrtpPolicy.OPTIONAL,
                          signalling_host=PUBLIC).params
    assert params.remote_rtcp == (PUBLIC, 40009) and params.rtcp_mux and params.peer_sends
    held = answer_offer(offer("a=inactive"), SrtpPolicy.OPTIONAL, signalling_host=PUBLIC).params
    assert not held.peer_sends
    zero = answer_offer(offer(host="0.0.0.0"), SrtpPolicy.OPTIONAL, signalling_host=PUBLIC).params
    assert zero.remote is None and not zero.peer_sends


@pytest.mark.parametrize("suite", ["AES_CM_128_HMAC_SHA1_80", "AES_CM_128_HMAC_SHA1_32"])
def test_an_savp_offer_gets_a_fresh_key_of_the_same_suite(suite: str) -> None:
    theirs = key(suite)
    stream = answer_offer(offer(f"a=crypto:{theirs}", proto="RTP/SAVP"), SrtpPolicy.OPTIONAL, signalling_host=PUBLIC)
    assert stream.remote_crypto == theirs
    assert stream.local_crypto is not None and stream.local_crypto.suite == suite
    assert stream.local_crypto.key != theirs.key and stream.params.srtp is not None


def test_a_repeated_key_keeps_ours_a_new_one_rekeys() -> None:
    theirs = key()
    first = answer_offer(offer(f"a=crypto:{theirs}", proto="RTP/SAVP"), SrtpPolicy.OPTIONAL, signalling_host=PUBLIC)
    again = answer_offer(offer(f"a=crypto:{theirs}", proto="RTP/SAVP"), SrtpPolicy.OPTIONAL, signalling_host=PUBLIC,
                         previous=first)
    assert again.local_crypto == first.local_crypto and again.params.srtp is first.params.srtp
    rekeyed = answer_offer(offer(f"a=crypto:{key()}", proto="RTP/SAVP"), SrtpPolicy.OPTIONAL,
                           signalling_host=PUBLIC, previous=first)
    assert rekeyed.local_crypto != first.local_crypto


@pytest.mark.parametrize(("policy", "proto", "message"), [
    (SrtpPolicy.REQUIRED, "RTP/AVP", "SRTP (RTP/SAVP) is required"),
    (SrtpPolicy.OFF, "RTP/SAVP", "SRTP is turned off"),
])
def test_the_policy_refuses_with_its_reason(policy: SrtpPolicy, proto: str, message: str) -> None:
    with pytest.raises(OfferAnswerError, match=message.replace("(", r"\(").replace(")", r"\)")) as info:
        answer_offer(offer(f"a=crypto:{key()}", proto=proto), policy, signalling_host=PUBLIC)
    assert info.value.status_code == 488


def test_mki_and_unknown_suites_are_refused_clearly() -> None:
    with pytest.raises(OfferAnswerError, match="MKI"):
        answer_offer(offer(f"a=crypto:{key()}|2^20|1:4", proto="RTP/SAVP"), SrtpPolicy.OPTIONAL,
                     signalling_host=PUBLIC)
    with pytest.raises(OfferAnswerError, match="no supported SRTP crypto suite"):
        answer_offer(offer("a=crypto:1 F8_128_HMAC_SHA1_80 inline:" + "A" * 40, proto="RTP/SAVP"),
                     SrtpPolicy.OPTIONAL, signalling_host=PUBLIC)


def test_no_common_codec_is_488() -> None:
    with pytest.raises(OfferAnswerError, match="No supported audio codec"):
        answer_offer(offer("a=rtpmap:18 G729/8000", formats="18 101"), SrtpPolicy.OPTIONAL, signalling_host=PUBLIC)


def test_our_offer_is_plain_unless_srtp_is_required_and_answers_are_read_against_it() -> None:
    assert offer_crypto(SrtpPolicy.OPTIONAL) is None and offer_crypto(SrtpPolicy.OFF) is None
    ours = offer_crypto(SrtpPolicy.REQUIRED)
    assert ours is not None and ours.suite == "AES_CM_128_HMAC_SHA1_80"
    answer = offer(f"a=crypto:{CryptoAttribute.generate(ours.tag, ours.suite)}", proto="RTP/SAVP")
    stream = read_answer(answer, SrtpPolicy.REQUIRED, our_crypto=ours, signalling_host=PUBLIC)
    assert stream.params.srtp is not None and stream.local_crypto == ours
    with pytest.raises(OfferAnswerError, match="no usable a=crypto"):
        read_answer(offer(f"a=crypto:{CryptoAttribute.generate(7, ours.suite)}", proto="RTP/SAVP"),
                    SrtpPolicy.REQUIRED, our_crypto=ours, signalling_host=PUBLIC)
    with pytest.raises(OfferAnswerError):
        read_answer(offer(), SrtpPolicy.OPTIONAL, our_crypto=ours, signalling_host=PUBLIC)


def test_our_offer_round_trips_through_negotiation() -> None:
    ours = build_offer(address=PUBLIC, port=20000, origin=Origin("confbridge", 1, 1, "IN", "IP4", PUBLIC),
                       codecs=SUPPORTED_CODECS)
    stream = answer_offer(ours, SrtpPolicy.OPTIONAL, signalling_host=PUBLIC)
    assert stream.codec is OPUS and stream.params.telephone_event_clock_rate == 48000


def test_before_any_offer_the_leg_is_a_silent_pcmu_placeholder() -> None:
    placeholder = placeholder_params()
    assert placeholder.codec is PCMU and placeholder.remote is None and not placeholder.peer_sends
