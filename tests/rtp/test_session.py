"""Tests for rtp/session.py: receiving (symmetric RTP, drops, RTCP, SSRC changes) and packetizing."""

from __future__ import annotations

import itertools

import pytest

from rtp.codecs import PCMU
from rtp.packet import RtpPacket, parse_rtp
from rtp.session import Address, RtpSession

PEER: Address = ("192.0.2.10", 40000)
OTHER: Address = ("198.51.100.7", 50000)


def make_session() -> RtpSession:
    """A PCMU session on payload type 0 with telephone-event on 101 and no remote yet."""
    return RtpSession(PCMU, 0, remote=None, telephone_event_payload_type=101)


def audio(number: int, *, ssrc: int = 0x11223344, payload_type: int = 0, base: int = 1000) -> bytes:
    """Packet `number` of a 20 ms stream; every payload byte is the packet number."""
    return RtpPacket(payload_type, 500 + number, base + 160 * number, ssrc, bytes([number]) * 160).to_bytes()


def test_valid_packet_is_accepted_and_latches_the_remote() -> None:
    session = make_session()
    assert session.remote is None
    assert session.receive(audio(0), PEER, 10.0) is True
    assert session.remote == PEER
    assert session.first_packet_at == 10.0
    assert session.last_packet_at == 10.0
    assert session.stats.packets_received == 1
    assert session.receive(audio(1), OTHER, 10.02) is True
    assert session.remote == OTHER  # symmetric RTP follows the source
    assert session.first_packet_at == 10.0
    assert session.last_packet_at == 10.02
    assert session.stats.packets_received == 2


def test_received_audio_reaches_the_playout_buffer() -> None:
    session = make_session()
    session.receive(audio(0), PEER, 1.0)
    assert session.pull_frame() is None  # priming
    session.receive(audio(1), PEER, 1.02)
    assert session.pull_frame() == bytes([0]) * 160
    assert session.pull_frame() == bytes([1]) * 160


def test_payload_is_taken_without_padding_csrcs_or_extension() -> None:
    session = make_session()
    packet = RtpPacket(0, 1, 0, 5, b"\x01" * 160, csrcs=(7, 8), extension=(1, b"abcd"), padding=4)
    assert session.receive(packet.to_bytes(), PEER, 0.0)
    assert session.playout.buffered_samples == 160


def test_telephone_event_is_not_audio_and_not_a_drop() -> None:
    session = make_session()
    event = RtpPacket(101, 1, 0, 5, b"\x01\x0a\x00\xa0", marker=True).to_bytes()
    assert session.receive(event, PEER, 3.0) is False
    assert session.stats.dropped_payload_type == 0
    assert session.stats.packets_received == 0
    assert session.stats.dropped_malformed == 0
    assert session.playout.buffered_samples == 0


def test_unknown_payload_type_is_dropped_and_counted() -> None:
    session = make_session()
    assert session.receive(audio(0, payload_type=8), PEER, 1.0) is False
    assert session.receive(audio(1, payload_type=18), PEER, 1.0) is False
    assert session.stats.dropped_payload_type == 2
    assert session.stats.packets_received == 0
    assert session.playout.buffered_samples == 0


@pytest.mark.parametrize("junk", [b"", b"\x80", b"hello world, not RTP", bytes(11), b"\x40" + bytes(20)])
def test_junk_is_counted_as_malformed(junk: bytes) -> None:
    session = make_session()
    assert session.receive(junk, PEER, 1.0) is False
    assert session.stats.dropped_malformed == 1
    assert session.stats.packets_received == 0
    assert session.remote is None
    assert session.first_packet_at is None


@pytest.mark.parametrize("packet_type", [200, 201])
def test_rtcp_is_counted(packet_type: int) -> None:
    session = make_session()
    report = bytes([0x81, packet_type, 0x00, 0x07]) + bytes(28)
    assert session.receive(report, PEER, 1.0) is False
    assert session.stats.rtcp_received == 1
    assert session.stats.dropped_malformed == 0
    assert session.stats.packets_received == 0


def test_ssrc_change_resets_the_playout_buffer() -> None:
    session = make_session()
    session.receive(audio(0, ssrc=1), PEER, 0.0)
    session.receive(audio(1, ssrc=1), PEER, 0.02)
    session.receive(audio(2, ssrc=1), PEER, 0.04)
    assert session.playout.buffered_samples == 480
    assert session.stats.ssrc_changes == 0
    assert session.receive(audio(9, ssrc=2, base=77_000_000), PEER, 0.06) is True
    assert session.stats.ssrc_changes == 1
    assert session.playout.buffered_samples == 160
    session.receive(audio(10, ssrc=2, base=77_000_000), PEER, 0.08)
    assert session.pull_frame() == bytes([9]) * 160
    assert session.stats.packets_received == 5


def test_packetize_sequence_timestamp_marker_and_ssrc() -> None:
    session = make_session()
    packets = [parse_rtp(session.packetize(bytes([n]) * 160)) for n in range(5)]
    first = packets[0]
    assert first.marker is True
    assert all(packet.marker is False for packet in packets[1:])
    for previous, packet in itertools.pairwise(packets):
        assert packet.sequence_number == (previous.sequence_number + 1) % 2**16
        assert packet.timestamp == (previous.timestamp + 160) % 2**32
    assert {packet.ssrc for packet in packets} == {session.ssrc}
    assert all(packet.payload_type == 0 for packet in packets)
    assert [packet.payload for packet in packets] == [bytes([n]) * 160 for n in range(5)]
    assert all(packet.csrcs == () and packet.extension is None and packet.padding == 0 for packet in packets)
    assert session.stats.packets_sent == 5


def test_packetize_exact_bytes() -> None:
    session = make_session()
    session.ssrc = 0x01020304
    session._sequence = 0x0506
    session._timestamp = 0x0708090A
    assert session.packetize(b"\xff\xff") == bytes.fromhex("8080" "0506" "0708090a" "01020304") + b"\xff\xff"
    assert session.packetize(b"") == bytes.fromhex("8000" "0507" "070809aa" "01020304")


def test_packetize_sequence_and_timestamp_wrap() -> None:
    session = make_session()
    session._sequence = 65535
    session._timestamp = 2**32 - 160
    first = parse_rtp(session.packetize(b"a"))
    second = parse_rtp(session.packetize(b"b"))
    third = parse_rtp(session.packetize(b"c"))
    assert (first.sequence_number, second.sequence_number, third.sequence_number) == (65535, 0, 1)
    assert (first.timestamp, second.timestamp, third.timestamp) == (2**32 - 160, 0, 160)


def test_ptime_sets_the_frame_size() -> None:
    session = RtpSession(PCMU, 0, remote=PEER, ptime_ms=30)
    assert session.frame_samples == 240
    first = parse_rtp(session.packetize(b"x"))
    second = parse_rtp(session.packetize(b"y"))
    assert second.timestamp == (first.timestamp + 240) % 2**32
    assert session.remote == PEER
