"""Tests for rtp/packet.py: RTP build/parse round trips, header views, parse errors and RTCP demultiplexing."""

from __future__ import annotations

import struct

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from rtp.packet import HEADER, RtpPacket, RtpParseError, is_rtcp, parse_rtp, read_header


def fixed_header(first: int = 0x80, second: int = 0, sequence: int = 1, timestamp: int = 2, ssrc: int = 3) -> bytes:
    """The 12 fixed header bytes with the given first two bytes."""
    return HEADER.pack(first, second, sequence, timestamp, ssrc)


# --- round trips -------------------------------------------------------------------------------------------------


def test_minimal_packet_bytes() -> None:
    packet = RtpPacket(0, 0x1234, 0x89ABCDEF, 0x01020304, b"\xff\xfe")
    assert packet.to_bytes() == bytes.fromhex("80001234" "89abcdef" "01020304") + b"\xff\xfe"


def test_round_trip_marker() -> None:
    packet = RtpPacket(8, 65535, 2**32 - 1, 0xDEADBEEF, b"abc", marker=True)
    data = packet.to_bytes()
    assert data[1] == 0x88
    assert parse_rtp(data) == packet


def test_round_trip_csrcs() -> None:
    packet = RtpPacket(0, 7, 160, 42, b"payload", csrcs=(1, 2, 0xFFFFFFFF))
    data = packet.to_bytes()
    assert data[0] == 0x83
    assert data[12:24] == struct.pack("!III", 1, 2, 0xFFFFFFFF)
    assert parse_rtp(data) == packet


def test_round_trip_extension() -> None:
    packet = RtpPacket(0, 7, 160, 42, b"payload", extension=(0xBEDE, b"\x01\x02\x03\x04\x05\x06\x07\x08"))
    data = packet.to_bytes()
    assert data[0] == 0x90
    assert data[12:16] == b"\xbe\xde\x00\x02"
    assert parse_rtp(data) == packet


def test_round_trip_empty_extension() -> None:
    packet = RtpPacket(0, 7, 160, 42, b"x", extension=(0x1000, b""))
    data = packet.to_bytes()
    assert data[0] == 0x90
    assert parse_rtp(data) == packet


def test_round_trip_padding() -> None:
    packet = RtpPacket(0, 7, 160, 42, b"payload", padding=4)
    data = packet.to_bytes()
    assert data[0] == 0xA0
    assert data[-4:] == b"\x00\x00\x00\x04"
    assert parse_rtp(data) == packet


def test_round_trip_everything() -> None:
    packet = RtpPacket(101, 1, 2, 3, b"\x00" * 5, marker=True, csrcs=(9, 10), extension=(1, b"abcd"), padding=3)
    data = packet.to_bytes()
    assert data[0] == 0x80 | 0x20 | 0x10 | 2
    assert parse_rtp(data) == packet


def test_to_bytes_rejects_out_of_range_fields() -> None:
    with pytest.raises(ValueError):
        RtpPacket(128, 0, 0, 0).to_bytes()
    with pytest.raises(ValueError):
        RtpPacket(0, 0, 0, 0, csrcs=tuple(range(16))).to_bytes()
    with pytest.raises(ValueError):
        RtpPacket(0, 0, 0, 0, padding=256).to_bytes()
    with pytest.raises(ValueError):
        RtpPacket(0, 0, 0, 0, extension=(0, b"abc")).to_bytes()


# --- read_header -----------------------------------------------------------------------------------------------


def test_read_header_plain() -> None:
    data = RtpPacket(0, 100, 200, 300, b"a" * 160, marker=True).to_bytes()
    view = read_header(data)
    assert view == (0, True, 100, 200, 300, 12, 172)


def test_read_header_csrcs() -> None:
    data = RtpPacket(8, 1, 2, 3, b"a" * 10, csrcs=(1, 2, 3)).to_bytes()
    view = read_header(data)
    assert (view.payload_start, view.payload_end) == (24, 34)
    assert data[view.payload_start : view.payload_end] == b"a" * 10


def test_read_header_extension() -> None:
    data = RtpPacket(0, 1, 2, 3, b"b" * 10, csrcs=(5,), extension=(7, b"12345678")).to_bytes()
    view = read_header(data)
    assert (view.payload_start, view.payload_end) == (12 + 4 + 4 + 8, 12 + 4 + 4 + 8 + 10)
    assert data[view.payload_start : view.payload_end] == b"b" * 10


def test_read_header_padding() -> None:
    data = RtpPacket(0, 1, 2, 3, b"c" * 10, padding=6).to_bytes()
    view = read_header(data)
    assert (view.payload_start, view.payload_end) == (12, 22)
    assert len(data) == 28


def test_read_header_padding_only() -> None:
    data = RtpPacket(0, 1, 2, 3, b"", padding=8).to_bytes()
    view = read_header(data)
    assert (view.payload_start, view.payload_end) == (12, 12)


# --- parse errors ----------------------------------------------------------------------------------------------


@pytest.mark.parametrize("length", [0, 1, 11])
def test_too_short(length: int) -> None:
    data = fixed_header()[:length]
    with pytest.raises(RtpParseError):
        read_header(data)
    with pytest.raises(RtpParseError):
        parse_rtp(data)


@pytest.mark.parametrize("version", [0, 1, 3])
def test_bad_version(version: int) -> None:
    data = fixed_header(first=version << 6) + b"payload"
    with pytest.raises(RtpParseError):
        read_header(data)
    with pytest.raises(RtpParseError):
        parse_rtp(data)


def test_csrc_count_larger_than_packet() -> None:
    data = fixed_header(first=0x80 | 3) + struct.pack("!II", 1, 2)  # says 3 CSRCs, holds 2
    with pytest.raises(RtpParseError):
        read_header(data)
    with pytest.raises(RtpParseError):
        parse_rtp(data)
    assert read_header(data + b"\x00\x00\x00\x03").payload_start == 24  # exactly 3 is fine


def test_extension_header_truncated() -> None:
    data = fixed_header(first=0x90) + b"\x00\x01"  # only half of the extension header
    with pytest.raises(RtpParseError):
        read_header(data)
    with pytest.raises(RtpParseError):
        parse_rtp(data)


def test_extension_length_beyond_packet() -> None:
    data = fixed_header(first=0x90) + b"\x00\x01\x00\x03" + b"\x00" * 8  # says 12 bytes, holds 8
    with pytest.raises(RtpParseError):
        read_header(data)
    with pytest.raises(RtpParseError):
        parse_rtp(data)
    assert read_header(data + b"\x00" * 4).payload_start == 28


def test_padding_count_zero() -> None:
    data = fixed_header(first=0xA0) + b"abc\x00"
    with pytest.raises(RtpParseError):
        read_header(data)
    with pytest.raises(RtpParseError):
        parse_rtp(data)


@pytest.mark.parametrize("count", [5, 16, 200, 255])
def test_padding_count_larger_than_packet_body(count: int) -> None:
    data = fixed_header(first=0xA0) + b"abc" + bytes([count])  # 4 bytes after the header
    with pytest.raises(RtpParseError):
        read_header(data)
    with pytest.raises(RtpParseError):
        parse_rtp(data)


def test_padding_count_exactly_body() -> None:
    data = fixed_header(first=0xA0) + b"abc\x04"
    assert parse_rtp(data).payload == b""


# --- RTCP demultiplexing ----------------------------------------------------------------------------------------


@pytest.mark.parametrize("packet_type", [200, 201])
def test_is_rtcp_for_sender_and_receiver_reports(packet_type: int) -> None:
    assert is_rtcp(bytes([0x80, packet_type, 0x00, 0x06]) + b"\x00" * 24)


@pytest.mark.parametrize("payload_type", [0, 8, 101])
@pytest.mark.parametrize("marker", [False, True])
def test_is_rtcp_false_for_audio(payload_type: int, marker: bool) -> None:
    assert not is_rtcp(RtpPacket(payload_type, 1, 2, 3, b"x" * 160, marker=marker).to_bytes())


def test_is_rtcp_short_data() -> None:
    assert not is_rtcp(b"")
    assert not is_rtcp(b"\x80")


# --- properties -----------------------------------------------------------------------------------------------


@st.composite
def rtp_packets(draw: st.DrawFn) -> RtpPacket:
    """Random valid RTP packets."""
    word = st.integers(0, 2**32 - 1)
    extension = draw(st.none() | st.tuples(st.integers(0, 0xFFFF),
                                           st.integers(0, 16).flatmap(lambda n: st.binary(min_size=4 * n,
                                                                                          max_size=4 * n))))
    return RtpPacket(
        payload_type=draw(st.integers(0, 127)),
        sequence_number=draw(st.integers(0, 65535)),
        timestamp=draw(word),
        ssrc=draw(word),
        payload=draw(st.binary(max_size=200)),
        marker=draw(st.booleans()),
        csrcs=tuple(draw(st.lists(word, max_size=15))),
        extension=extension,
        padding=draw(st.integers(0, 255)),
    )


@settings(max_examples=200, deadline=None)
@given(rtp_packets())
def test_round_trip_property(packet: RtpPacket) -> None:
    data = packet.to_bytes()
    assert parse_rtp(data) == packet
    view = read_header(data)
    assert data[view.payload_start : view.payload_end] == packet.payload
    assert (view.payload_type, view.marker, view.sequence_number, view.timestamp, view.ssrc) == (
        packet.payload_type, packet.marker, packet.sequence_number, packet.timestamp, packet.ssrc)


@settings(max_examples=300, deadline=None)
@given(st.binary(max_size=300))
def test_arbitrary_bytes_parse_or_raise_parse_error(data: bytes) -> None:
    try:
        view = read_header(data)
    except RtpParseError:
        view = None
    try:
        packet = parse_rtp(data)
    except RtpParseError:
        packet = None
    assert (view is None) == (packet is None)
    if view is not None and packet is not None:
        assert 12 <= view.payload_start <= view.payload_end <= len(data)
        assert packet.payload == data[view.payload_start : view.payload_end]


@settings(max_examples=200, deadline=None)
@given(st.binary(min_size=12, max_size=300))
def test_arbitrary_version_2_bytes_parse_or_raise_parse_error(raw: bytes) -> None:
    data = bytes([0x80 | (raw[0] & 0x3F)]) + raw[1:]
    try:
        packet = parse_rtp(data)
    except RtpParseError:
        return
    rebuilt = packet.to_bytes()
    assert len(rebuilt) == len(data)
    body = len(data) - packet.padding
    assert rebuilt[:body] == data[:body]  # only the content of padding bytes may differ
    assert rebuilt[-1] == data[-1] or packet.padding == 0
