"""Tests for sip/offer_answer.py: choosing the audio stream and codec from an offer, and building the answer."""

from __future__ import annotations

import pytest

from sip.offer_answer import AudioNegotiation, CodecSpec, OfferAnswerError, build_answer, negotiate_audio
from sip.sdp import Connection, Origin, SdpParseError, SessionDescription, parse_sdp

PCMU = CodecSpec("PCMU", 8000, 1, 0)
PCMA = CodecSpec("PCMA", 8000, 1, 8)
SUPPORTED = [PCMU, PCMA]
OUR_ORIGIN = Origin("confbridge", 42, 1, "IN", "IP4", "203.0.113.10")


def offer(*media_lines: str, session: str = "c=IN IP4 192.0.2.50\r\n") -> SessionDescription:
    """An SDP offer with the given session-level extra lines and media sections (lines without line ends)."""
    text = "v=0\r\no=- 1 1 IN IP4 192.0.2.50\r\ns=-\r\n" + session + "t=0 0\r\n"
    text += "".join(line + "\r\n" for line in media_lines)
    return parse_sdp(text)


def negotiate(*media_lines: str, session: str = "c=IN IP4 192.0.2.50\r\n") -> AudioNegotiation:
    """negotiate_audio over `offer(...)` with PCMU and PCMA supported."""
    return negotiate_audio(offer(*media_lines, session=session), SUPPORTED)


def test_offer_order_pcmu_first() -> None:
    result = negotiate("m=audio 4000 RTP/AVP 0 8")
    assert result.codec == PCMU
    assert result.payload_type == 0
    assert result.media_index == 0
    assert result.remote_host == "192.0.2.50"
    assert result.remote_port == 4000
    assert result.telephone_event_payload_type is None
    assert result.telephone_event_fmtp is None
    assert result.remote_direction == "sendrecv"
    assert result.answer_direction == "sendrecv"
    assert result.remote_ptime is None


def test_offer_order_pcma_first() -> None:
    result = negotiate("m=audio 4000 RTP/AVP 8 0")
    assert result.codec == PCMA
    assert result.payload_type == 8


def test_our_preference_does_not_override_offerer_order() -> None:
    result = negotiate_audio(offer("m=audio 4000 RTP/AVP 8 0"), [PCMU, PCMA])
    assert result.codec == PCMA
    result = negotiate_audio(offer("m=audio 4000 RTP/AVP 0 8"), [PCMA, PCMU])
    assert result.codec == PCMU


def test_unsupported_codecs_before_supported_are_skipped() -> None:
    result = negotiate("m=audio 4000 RTP/AVP 18 3 9 8 0", "a=rtpmap:9 G722/8000")
    assert result.codec == PCMA
    assert result.payload_type == 8


def test_static_payload_types_without_rtpmap() -> None:
    result = negotiate("m=audio 4000 RTP/AVP 8")
    assert (result.codec, result.payload_type) == (PCMA, 8)


def test_dynamic_payload_type_by_rtpmap_name_case_insensitive() -> None:
    result = negotiate("m=audio 4000 RTP/AVP 96", "a=rtpmap:96 pcmu/8000")
    assert result.codec == PCMU
    assert result.payload_type == 96


def test_dynamic_payload_type_without_rtpmap_is_ignored() -> None:
    result = negotiate("m=audio 4000 RTP/AVP 96 8")
    assert result.payload_type == 8


def test_rtpmap_with_other_clock_rate_or_channels_does_not_match() -> None:
    with pytest.raises(OfferAnswerError):
        negotiate("m=audio 4000 RTP/AVP 96 97", "a=rtpmap:96 PCMU/16000", "a=rtpmap:97 PCMA/8000/2")


def test_rtpmap_overrides_static_meaning() -> None:
    result = negotiate("m=audio 4000 RTP/AVP 0 8", "a=rtpmap:0 G729/8000")
    assert result.codec == PCMA
    assert result.payload_type == 8


def test_telephone_event_accepted_with_fmtp_echoed() -> None:
    result = negotiate(
        "m=audio 4000 RTP/AVP 0 101",
        "a=rtpmap:101 telephone-event/8000",
        "a=fmtp:101 0-15",
    )
    assert result.codec == PCMU
    assert result.telephone_event_payload_type == 101
    assert result.telephone_event_fmtp == "0-15"


def test_telephone_event_name_case_insensitive_without_fmtp() -> None:
    result = negotiate("m=audio 4000 RTP/AVP 8 100", "a=rtpmap:100 Telephone-Event/8000")
    assert result.telephone_event_payload_type == 100
    assert result.telephone_event_fmtp is None


def test_telephone_event_at_the_codec_clock_rate_is_preferred() -> None:
    result = negotiate(
        "m=audio 4000 RTP/AVP 0 101 102",
        "a=rtpmap:101 telephone-event/16000",
        "a=rtpmap:102 telephone-event/8000",
        "a=fmtp:101 0-16",
        "a=fmtp:102 0-11",
    )
    assert result.telephone_event_payload_type == 102
    assert result.telephone_event_fmtp == "0-11"
    assert result.telephone_event_clock_rate == 8000


def test_telephone_event_at_another_clock_rate_is_taken_when_it_is_the_only_one() -> None:
    result = negotiate("m=audio 4000 RTP/AVP 0 101", "a=rtpmap:101 telephone-event/48000")
    assert (result.telephone_event_payload_type, result.telephone_event_clock_rate) == (101, 48000)
    answer = build_answer(offer("m=audio 4000 RTP/AVP 0 101", "a=rtpmap:101 telephone-event/48000"), result,
                          address="192.0.2.1", port=20000, origin=OUR_ORIGIN)
    assert ("rtpmap", "101 telephone-event/48000") in answer.media[0].attributes


@pytest.mark.parametrize(("value", "port"), [("53020", 53020), ("53020 IN IP4 126.16.64.4", 53020), ("0", None),
                                             ("junk", None), ("70000", None)])
def test_rtcp_attribute_gives_the_rtcp_port(value: str, port: int | None) -> None:
    assert negotiate("m=audio 4000 RTP/AVP 0", f"a=rtcp:{value}").remote_rtcp_port == port
    assert negotiate("m=audio 4000 RTP/AVP 0").remote_rtcp_port is None


def test_only_g729_is_not_acceptable() -> None:
    with pytest.raises(OfferAnswerError) as info:
        negotiate("m=audio 4000 RTP/AVP 18", "a=rtpmap:18 G729/8000")
    assert info.value.status_code == 488


def test_only_telephone_event_is_not_acceptable() -> None:
    with pytest.raises(OfferAnswerError) as info:
        negotiate("m=audio 4000 RTP/AVP 101", "a=rtpmap:101 telephone-event/8000")
    assert info.value.status_code == 488


@pytest.mark.parametrize("proto", ["RTP/SAVPF", "UDP/TLS/RTP/SAVP", "RTP/AVPF"])
def test_feedback_and_dtls_profiles_are_not_acceptable(proto: str) -> None:
    with pytest.raises(OfferAnswerError) as info:
        negotiate(f"m=audio 4000 {proto} 0 8")
    assert info.value.status_code == 488


def test_savp_is_accepted_with_its_crypto_lines_unless_the_caller_allows_only_avp() -> None:
    result = negotiate("m=audio 4000 RTP/SAVP 0", "a=crypto:1 AES_CM_128_HMAC_SHA1_80 inline:abc",
                       "a=crypto:2 AES_CM_128_HMAC_SHA1_32 inline:def")
    assert result.secure and result.crypto == ("1 AES_CM_128_HMAC_SHA1_80 inline:abc",
                                               "2 AES_CM_128_HMAC_SHA1_32 inline:def")
    with pytest.raises(OfferAnswerError):
        negotiate_audio(offer("m=audio 4000 RTP/SAVP 0"), SUPPORTED, profiles=("RTP/AVP",))


def test_profile_compared_case_insensitively() -> None:
    assert negotiate("m=audio 4000 rtp/avp 0").payload_type == 0


def test_savp_then_avp_picks_avp_when_srtp_is_off() -> None:
    result = negotiate_audio(offer("m=audio 4000 RTP/SAVP 0", "m=audio 4002 RTP/AVP 8"), SUPPORTED,
                             profiles=("RTP/AVP",))
    assert result.media_index == 1
    assert result.remote_port == 4002
    assert result.codec == PCMA


def test_no_media_is_not_acceptable() -> None:
    with pytest.raises(OfferAnswerError) as info:
        negotiate()
    assert info.value.status_code == 488


def test_port_zero_audio_skipped() -> None:
    result = negotiate("m=audio 0 RTP/AVP 0", "m=audio 5004 RTP/AVP 8 0")
    assert result.media_index == 1
    assert result.remote_port == 5004
    assert result.codec == PCMA


def test_only_port_zero_audio_is_not_acceptable() -> None:
    with pytest.raises(OfferAnswerError):
        negotiate("m=audio 0 RTP/AVP 0")


def test_media_level_connection_overrides_session_level() -> None:
    result = negotiate("m=audio 4000 RTP/AVP 0", "c=IN IP4 198.51.100.77")
    assert result.remote_host == "198.51.100.77"


def test_media_level_connection_only() -> None:
    result = negotiate("m=audio 4000 RTP/AVP 0", "c=IN IP4 198.51.100.78/127", session="")
    assert result.remote_host == "198.51.100.78"


def test_missing_connection_is_a_parse_error() -> None:
    with pytest.raises(SdpParseError) as info:
        negotiate("m=audio 4000 RTP/AVP 0", session="")
    assert info.value.status_code == 400


def test_remote_ptime() -> None:
    assert negotiate("m=audio 4000 RTP/AVP 0", "a=ptime:30").remote_ptime == 30
    assert negotiate("m=audio 4000 RTP/AVP 0", "a=ptime:x").remote_ptime is None


@pytest.mark.parametrize(
    ("offered", "answered"),
    [("sendonly", "recvonly"), ("recvonly", "sendonly"), ("inactive", "inactive"), ("sendrecv", "sendrecv")],
)
def test_answer_direction_mirrors_offer(offered: str, answered: str) -> None:
    result = negotiate("m=audio 4000 RTP/AVP 0", f"a={offered}")
    assert result.remote_direction == offered
    assert result.answer_direction == answered


def test_session_level_direction_applies_when_media_has_none() -> None:
    result = negotiate("m=audio 4000 RTP/AVP 0", session="c=IN IP4 192.0.2.50\r\na=sendonly\r\n")
    assert result.remote_direction == "sendonly"
    assert result.answer_direction == "recvonly"


def test_media_level_direction_overrides_session_level() -> None:
    result = negotiate("m=audio 4000 RTP/AVP 0", "a=recvonly", session="c=IN IP4 192.0.2.50\r\na=inactive\r\n")
    assert result.remote_direction == "recvonly"
    assert result.answer_direction == "sendonly"


# -- build_answer -----------------------------------------------------------------------------------


def test_build_answer_single_audio() -> None:
    the_offer = offer(
        "m=audio 4000 RTP/AVP 8 0 101",
        "a=rtpmap:101 telephone-event/8000",
        "a=fmtp:101 0-15",
        "a=sendonly",
    )
    negotiation = negotiate_audio(the_offer, SUPPORTED)
    answer = build_answer(the_offer, negotiation, address="203.0.113.10", port=30000, origin=OUR_ORIGIN)
    assert answer.origin == OUR_ORIGIN
    assert answer.connection == Connection("203.0.113.10", "IP4", "IN")
    assert len(answer.media) == 1
    media = answer.media[0]
    assert (media.kind, media.port, media.proto) == ("audio", 30000, "RTP/AVP")
    assert media.formats == ["8", "101"]
    assert media.attributes == [
        ("rtpmap", "8 PCMA/8000"),
        ("rtpmap", "101 telephone-event/8000"),
        ("fmtp", "101 0-15"),
        ("ptime", "20"),
        ("recvonly", None),
    ]
    assert answer.to_bytes() == (
        b"v=0\r\n"
        b"o=confbridge 42 1 IN IP4 203.0.113.10\r\n"
        b"s=confbridge\r\n"
        b"c=IN IP4 203.0.113.10\r\n"
        b"t=0 0\r\n"
        b"m=audio 30000 RTP/AVP 8 101\r\n"
        b"a=rtpmap:8 PCMA/8000\r\n"
        b"a=rtpmap:101 telephone-event/8000\r\n"
        b"a=fmtp:101 0-15\r\n"
        b"a=ptime:20\r\n"
        b"a=recvonly\r\n"
    )
    assert parse_sdp(answer.to_bytes()) == answer


def test_build_answer_default_telephone_event_fmtp() -> None:
    the_offer = offer("m=audio 4000 RTP/AVP 0 101", "a=rtpmap:101 telephone-event/8000")
    answer = build_answer(the_offer, negotiate_audio(the_offer, SUPPORTED), address="203.0.113.10", port=30000,
                          origin=OUR_ORIGIN)
    assert answer.media[0].fmtp() == {101: "0-16"}


def test_build_answer_without_telephone_event_uses_dynamic_pt() -> None:
    the_offer = offer("m=audio 4000 RTP/AVP 96", "a=rtpmap:96 pcmu/8000")
    answer = build_answer(the_offer, negotiate_audio(the_offer, SUPPORTED), address="203.0.113.10", port=30002,
                          origin=OUR_ORIGIN)
    media = answer.media[0]
    assert media.formats == ["96"]
    assert media.attributes == [("rtpmap", "96 PCMU/8000"), ("ptime", "20"), ("sendrecv", None)]
    assert media.direction() == "sendrecv"


def test_build_answer_rejects_video_before_audio() -> None:
    the_offer = offer(
        "m=video 5000 RTP/AVP 31 34",
        "a=rtpmap:31 H261/90000",
        "m=audio 4000 RTP/AVP 0",
        "c=IN IP4 198.51.100.9",
    )
    negotiation = negotiate_audio(the_offer, SUPPORTED)
    assert negotiation.media_index == 1
    assert negotiation.remote_host == "198.51.100.9"
    answer = build_answer(the_offer, negotiation, address="203.0.113.10", port=30004, origin=OUR_ORIGIN)
    assert len(answer.media) == 2
    video, audio = answer.media
    assert (video.kind, video.port, video.proto, video.formats) == ("video", 0, "RTP/AVP", ["31"])
    assert video.attributes == []
    assert (audio.kind, audio.port, audio.formats) == ("audio", 30004, ["0"])
    assert audio.attribute("rtpmap") == "0 PCMU/8000"
    assert audio.attribute("ptime") == "20"
    assert audio.direction() == "sendrecv"


def test_build_answer_rejects_port_zero_and_extra_audio_streams() -> None:
    the_offer = offer("m=audio 0 RTP/AVP 0", "m=audio 4000 RTP/AVP 8", "m=audio 4002 RTP/AVP 0",
                      "m=application 9 UDP/BFCP *")
    negotiation = negotiate_audio(the_offer, SUPPORTED)
    answer = build_answer(the_offer, negotiation, address="203.0.113.10", port=30006, origin=OUR_ORIGIN)
    assert [(m.kind, m.port, m.formats) for m in answer.media] == [
        ("audio", 0, ["0"]),
        ("audio", 30006, ["8"]),
        ("audio", 0, ["0"]),
        ("application", 0, ["*"]),
    ]


def test_build_answer_ipv6_address() -> None:
    the_offer = offer("m=audio 4000 RTP/AVP 0")
    answer = build_answer(the_offer, negotiate_audio(the_offer, SUPPORTED), address="2001:db8::10", port=30008,
                          origin=OUR_ORIGIN)
    assert answer.connection == Connection("2001:db8::10", "IP6", "IN")
    assert b"c=IN IP6 2001:db8::10\r\n" in answer.to_bytes()


@pytest.mark.parametrize(
    ("offered", "answered"),
    [("sendonly", "recvonly"), ("recvonly", "sendonly"), ("inactive", "inactive"), ("sendrecv", "sendrecv")],
)
def test_build_answer_direction_attribute(offered: str, answered: str) -> None:
    the_offer = offer("m=audio 4000 RTP/AVP 0", f"a={offered}")
    answer = build_answer(the_offer, negotiate_audio(the_offer, SUPPORTED), address="203.0.113.10", port=30010,
                          origin=OUR_ORIGIN)
    assert answer.media[0].attributes[-1] == (answered, None)
    assert answer.media[0].direction() == answered


def test_build_answer_stereo_codec_channels() -> None:
    opus = CodecSpec("opus", 48000, 2)
    the_offer = offer("m=audio 4000 RTP/AVP 111 0", "a=rtpmap:111 opus/48000/2")
    negotiation = negotiate_audio(the_offer, [opus, PCMU])
    assert negotiation.payload_type == 111
    answer = build_answer(the_offer, negotiation, address="203.0.113.10", port=30012, origin=OUR_ORIGIN)
    assert answer.media[0].attribute("rtpmap") == "111 opus/48000/2"
