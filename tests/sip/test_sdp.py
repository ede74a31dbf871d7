"""Tests for sip/sdp.py: parsing a softphone offer, the Media helpers, serialization round trip and errors."""

from __future__ import annotations

import pytest

from sip.errors import RemoteProtocolError
from sip.sdp import Connection, Media, Origin, SdpParseError, SessionDescription, parse_sdp

SOFTPHONE_OFFER = (
    "v=0\r\n"
    "o=- 3912345678 3912345679 IN IP4 192.168.1.20\r\n"
    "s=Softphone call\r\n"
    "c=IN IP4 192.168.1.20\r\n"
    "t=0 0\r\n"
    "m=audio 40000 RTP/AVP 9 0 8 101\r\n"
    "a=rtpmap:9 G722/8000\r\n"
    "a=rtpmap:0 PCMU/8000\r\n"
    "a=rtpmap:8 PCMA/8000\r\n"
    "a=rtpmap:101 telephone-event/8000\r\n"
    "a=fmtp:101 0-16\r\n"
    "a=ptime:20\r\n"
    "a=sendrecv\r\n"
)


def test_parse_softphone_offer() -> None:
    sdp = parse_sdp(SOFTPHONE_OFFER.encode())
    assert sdp.version == 0
    assert sdp.origin == Origin("-", 3912345678, 3912345679, "IN", "IP4", "192.168.1.20")
    assert sdp.session_name == "Softphone call"
    assert sdp.connection == Connection("192.168.1.20", "IP4", "IN")
    assert sdp.times == ["0 0"]
    assert sdp.attributes == []
    assert sdp.other_lines == []
    assert len(sdp.media) == 1
    media = sdp.media[0]
    assert media.kind == "audio"
    assert media.port == 40000
    assert media.port_count is None
    assert media.proto == "RTP/AVP"
    assert media.formats == ["9", "0", "8", "101"]
    assert media.connection is None
    assert media.attributes == [
        ("rtpmap", "9 G722/8000"),
        ("rtpmap", "0 PCMU/8000"),
        ("rtpmap", "8 PCMA/8000"),
        ("rtpmap", "101 telephone-event/8000"),
        ("fmtp", "101 0-16"),
        ("ptime", "20"),
        ("sendrecv", None),
    ]


def test_parse_accepts_str() -> None:
    assert parse_sdp(SOFTPHONE_OFFER) == parse_sdp(SOFTPHONE_OFFER.encode())


def test_media_rtpmap_and_fmtp() -> None:
    media = parse_sdp(SOFTPHONE_OFFER).media[0]
    assert media.rtpmap() == {
        9: ("G722", 8000, 1),
        0: ("PCMU", 8000, 1),
        8: ("PCMA", 8000, 1),
        101: ("telephone-event", 8000, 1),
    }
    assert media.fmtp() == {101: "0-16"}


def test_rtpmap_channels_and_malformed_entries_skipped() -> None:
    media = Media("audio", 1, "RTP/AVP", ["96", "97", "98", "99"], attributes=[
        ("rtpmap", "96 opus/48000/2"),
        ("rtpmap", "97 L16/16000/x"),
        ("rtpmap", "x PCMU/8000"),
        ("rtpmap", "98 PCMU"),
        ("rtpmap", "99 PCMU/fast"),
        ("fmtp", "96 minptime=10;useinbandfec=1"),
        ("fmtp", "bad stuff"),
    ])
    assert media.rtpmap() == {96: ("opus", 48000, 2), 97: ("L16", 16000, 1)}
    assert media.fmtp() == {96: "minptime=10;useinbandfec=1"}


def test_media_attribute_helpers() -> None:
    media = parse_sdp(SOFTPHONE_OFFER).media[0]
    assert media.attribute("ptime") == "20"
    assert media.attribute("sendrecv") == ""
    assert media.attribute("rtpmap") == "9 G722/8000"
    assert media.attribute("maxptime") is None
    assert media.attribute_values("rtpmap")[1:3] == ["0 PCMU/8000", "8 PCMA/8000"]
    assert media.attribute_values("sendrecv") == []
    assert media.direction() == "sendrecv"


@pytest.mark.parametrize("direction", ["sendrecv", "sendonly", "recvonly", "inactive"])
def test_media_direction(direction: str) -> None:
    media = Media("audio", 1, "RTP/AVP", ["0"], attributes=[("ptime", "20"), (direction, None)])
    assert media.direction() == direction
    assert media.direction("inactive") == direction


def test_media_direction_falls_back_to_session() -> None:
    sdp = parse_sdp("v=0\r\no=- 1 1 IN IP4 h\r\ns=-\r\nt=0 0\r\na=sendonly\r\nm=audio 5 RTP/AVP 0\r\n")
    assert sdp.direction() == "sendonly"
    assert sdp.attributes == [("sendonly", None)]
    assert sdp.media[0].attributes == []
    assert sdp.media[0].direction() == "sendrecv"
    assert sdp.media[0].direction(sdp.direction()) == "sendonly"
    assert parse_sdp("v=0\r\no=- 1 1 IN IP4 h\r\ns=-\r\nt=0 0\r\n").direction() == "sendrecv"


def test_media_level_and_session_level_connection() -> None:
    sdp = parse_sdp(
        "v=0\r\n"
        "o=- 1 1 IN IP4 198.51.100.1\r\n"
        "s=-\r\n"
        "c=IN IP4 198.51.100.1\r\n"
        "t=0 0\r\n"
        "m=audio 5000 RTP/AVP 0\r\n"
        "c=IN IP4 203.0.113.5\r\n"
        "m=audio 6000 RTP/AVP 8\r\n"
        "m=video 7000 RTP/AVP 31\r\n"
        "c=IN IP6 2001:db8::5\r\n"
    )
    assert sdp.connection == Connection("198.51.100.1")
    assert sdp.media[0].connection == Connection("203.0.113.5")
    assert sdp.media[1].connection is None
    assert sdp.media[2].connection == Connection("2001:db8::5", "IP6", "IN")
    assert [m.port for m in sdp.media] == [5000, 6000, 7000]


def test_connection_multicast_ttl_and_case() -> None:
    connection = Connection.parse("IN ip4 224.2.36.42/127")
    assert connection.address == "224.2.36.42/127"
    assert connection.host == "224.2.36.42"
    assert connection.addrtype == "IP4"
    assert str(connection) == "IN IP4 224.2.36.42/127"


def test_port_count_and_other_lines() -> None:
    text = (
        "v=0\r\n"
        "o=jdoe 2890844526 2890842807 IN IP4 10.47.16.5\r\n"
        "s=SDP Seminar\r\n"
        "i=A Seminar on the session description protocol\r\n"
        "u=http://www.example.com/seminars/sdp.pdf\r\n"
        "e=j.doe@example.com (Jane Doe)\r\n"
        "c=IN IP4 224.2.17.12/127\r\n"
        "b=AS:128\r\n"
        "t=2873397496 2873404696\r\n"
        "r=7d 1h 0 25h\r\n"
        "a=recvonly\r\n"
        "m=audio 49170/2 RTP/AVP 0\r\n"
        "i=main audio\r\n"
        "c=IN IP4 224.2.17.12/127\r\n"
        "b=AS:64\r\n"
        "a=ptime:30\r\n"
        "m=video 51372 RTP/AVP 99\r\n"
        "a=rtpmap:99 h263-1998/90000\r\n"
    )
    sdp = parse_sdp(text)
    assert sdp.other_lines == [
        ("i", "A Seminar on the session description protocol"),
        ("u", "http://www.example.com/seminars/sdp.pdf"),
        ("e", "j.doe@example.com (Jane Doe)"),
        ("b", "AS:128"),
        ("r", "7d 1h 0 25h"),
    ]
    assert sdp.times == ["2873397496 2873404696"]
    assert sdp.media[0].port == 49170
    assert sdp.media[0].port_count == 2
    assert sdp.media[0].other_lines == [("i", "main audio"), ("b", "AS:64")]
    assert sdp.media[1].rtpmap() == {99: ("h263-1998", 90000, 1)}
    assert sdp.to_bytes() == text.encode()
    assert parse_sdp(sdp.to_bytes()) == sdp


def test_round_trip_softphone_offer() -> None:
    sdp = parse_sdp(SOFTPHONE_OFFER)
    data = sdp.to_bytes()
    assert data == SOFTPHONE_OFFER.encode()
    assert parse_sdp(data) == sdp


def test_to_bytes_of_constructed_model() -> None:
    sdp = SessionDescription(
        origin=Origin("confbridge", 7, 8, address="203.0.113.1"),
        session_name="confbridge",
        connection=Connection("203.0.113.1"),
        attributes=[("tool", "x")],
        media=[Media("audio", 20000, "RTP/AVP", ["0", "101"], attributes=[
            ("rtpmap", "0 PCMU/8000"), ("ptime", "20"), ("sendrecv", None),
        ])],
    )
    data = sdp.to_bytes()
    assert data == (
        b"v=0\r\n"
        b"o=confbridge 7 8 IN IP4 203.0.113.1\r\n"
        b"s=confbridge\r\n"
        b"c=IN IP4 203.0.113.1\r\n"
        b"t=0 0\r\n"
        b"a=tool:x\r\n"
        b"m=audio 20000 RTP/AVP 0 101\r\n"
        b"a=rtpmap:0 PCMU/8000\r\n"
        b"a=ptime:20\r\n"
        b"a=sendrecv\r\n"
    )
    assert parse_sdp(data) == sdp


def test_bare_lf_line_ends_and_blank_lines_tolerated() -> None:
    lf = SOFTPHONE_OFFER.replace("\r\n", "\n")
    assert parse_sdp(lf.encode()) == parse_sdp(SOFTPHONE_OFFER)
    assert parse_sdp((lf + "\n\n").encode()) == parse_sdp(SOFTPHONE_OFFER)


def test_trailing_whitespace_stripped_from_values() -> None:
    sdp = parse_sdp("v=0\no=- 1 1 IN IP4 h\ns=name  \nt=0 0\nm=audio 5 RTP/AVP 0 \na=ptime:20 \n")
    assert sdp.session_name == "name"
    assert sdp.media[0].formats == ["0"]
    assert sdp.media[0].attribute("ptime") == "20"


def test_missing_t_line_defaults() -> None:
    assert parse_sdp("v=0\no=- 1 1 IN IP4 h\ns=-\n").times == ["0 0"]


VALID_HEAD = "v=0\r\no=- 1 1 IN IP4 192.0.2.1\r\ns=-\r\nt=0 0\r\n"


@pytest.mark.parametrize(
    "text",
    [
        "",
        "\r\n",
        "o=- 1 1 IN IP4 192.0.2.1\r\ns=-\r\nt=0 0\r\n",
        "s=-\r\nv=0\r\no=- 1 1 IN IP4 192.0.2.1\r\n",
        "v=1\r\no=- 1 1 IN IP4 192.0.2.1\r\ns=-\r\nt=0 0\r\n",
        "v=0\r\ns=-\r\nt=0 0\r\n",
        "v=0\r\ns=-\r\nt=0 0\r\nm=audio 5 RTP/AVP 0\r\no=- 1 1 IN IP4 192.0.2.1\r\n",
        "v=0\r\no=- 1 IN IP4 192.0.2.1\r\ns=-\r\n",
        "v=0\r\no=- x 1 IN IP4 192.0.2.1\r\ns=-\r\n",
        VALID_HEAD + "m=audio 49170 RTP/AVP\r\n",
        VALID_HEAD + "m=audio\r\n",
        VALID_HEAD + "m=audio abc RTP/AVP 0\r\n",
        VALID_HEAD + "m=audio 70000 RTP/AVP 0\r\n",
        VALID_HEAD + "m=audio -1 RTP/AVP 0\r\n",
        VALID_HEAD + "m=audio 5/x RTP/AVP 0\r\n",
        VALID_HEAD + "c=IN IP4\r\n",
        VALID_HEAD + "c=IN IP4 192.0.2.1 extra\r\n",
        VALID_HEAD + "m=audio 5 RTP/AVP 0\r\nc=192.0.2.1\r\n",
        VALID_HEAD + "no equals sign\r\n",
        VALID_HEAD + "ab=cd\r\n",
        VALID_HEAD + "=x\r\n",
    ],
)
def test_malformed_sdp_raises(text: str) -> None:
    with pytest.raises(SdpParseError) as info:
        parse_sdp(text.encode())
    assert info.value.status_code == 400
    assert isinstance(info.value, RemoteProtocolError)


@pytest.mark.parametrize(
    "text",
    [
        "v=0\r\no=- \u00b2 1 IN IP4 192.0.2.1\r\ns=-\r\nt=0 0\r\n",
        VALID_HEAD + "m=audio \u00b2 RTP/AVP 0\r\n",
        VALID_HEAD + "m=audio 5/\u00b2 RTP/AVP 0\r\n",
    ],
)
def test_non_ascii_digit_numbers_raise_sdp_parse_error(text: str) -> None:
    with pytest.raises(SdpParseError):
        parse_sdp(text)


def test_unknown_session_level_line_round_trips_or_is_rejected() -> None:
    try:
        sdp = parse_sdp("v=0\r\no=- 1 1 IN IP4 192.0.2.1\r\ns=-\r\nx=foo\r\nt=0 0\r\n")
    except SdpParseError:
        return
    assert parse_sdp(sdp.to_bytes()) == sdp


HEAD = "v=0\r\no=- 1 1 IN IP4 192.0.2.7\r\ns=-\r\nt=0 0\r\n"


@pytest.mark.parametrize("text", [
    "v=0\r\no=- " + "1" * 4301 + " 1 IN IP4 192.0.2.7\r\ns=-\r\nt=0 0\r\n",
    HEAD + "m=audio " + "4" * 4301 + " RTP/AVP 0\r\n",
    HEAD + "m=audio 4000/" + "2" * 4301 + " RTP/AVP 0\r\n",
])
def test_absurdly_long_numbers_are_sdp_errors(text: str) -> None:
    with pytest.raises(SdpParseError):
        parse_sdp(text)


def test_rtpmap_with_absurd_numbers_is_ignored_not_fatal() -> None:
    sdp = parse_sdp("v=0\r\no=- 1 1 IN IP4 192.0.2.7\r\ns=-\r\nt=0 0\r\nm=audio 4000 RTP/AVP 0\r\n"
                    f"a=rtpmap:{'9' * 5000} PCMU/8000\r\na=rtpmap:0 PCMU/{'8' * 5000}\r\n")
    assert sdp.media[0].rtpmap() == {}


def test_unordered_other_lines_are_kept_in_rfc_order_so_a_description_round_trips() -> None:
    sdp = parse_sdp("v=0\r\no=- 1 1 IN IP4 192.0.2.7\r\ns=-\r\nb=AS:64\r\ni=x\r\nt=0 0\r\n"
                    "m=audio 4000 RTP/AVP 0\r\nb=AS:64\r\ni=y\r\n")
    assert sdp.other_lines == [("i", "x"), ("b", "AS:64")]
    assert sdp.media[0].other_lines == [("i", "y"), ("b", "AS:64")]
    assert parse_sdp(sdp.to_bytes()) == sdp
