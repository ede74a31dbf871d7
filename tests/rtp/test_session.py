"""Tests for rtp/session.py in fake time: what a packet must pass, events out, packetizing, RTCP and the timeout."""

from __future__ import annotations

import itertools

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from rtp.codecs import G722, OPUS, PCMA, PCMU
from rtp.dtmf import tone_event_packets
from rtp.jitter import PacketBuffer
from rtp.opus import OpusEncoder
from rtp.packet import Address, RtpPacket, parse_rtp
from rtp.rtcp import parse_compound
from rtp.session import AudioStarted, DigitReceived, MediaTimeout, RtpSession, StreamParams
from rtp.source_lock import PROBATION
from rtp.srtp import CryptoAttribute, SrtpContext

PEER: Address = ("127.0.0.1", 40000)
OTHER: Address = ("127.0.0.1", 50000)
PRIVATE: Address = ("10.0.0.7", 40000)


def params(**overrides: object) -> StreamParams:
    """PCMU on payload type 0, telephone-event 101, CN 13, locked to PEER."""
    values: dict[str, object] = dict(codec=PCMU, payload_type=0, telephone_event_payload_type=101,
                                     comfort_noise_payload_type=13, remote=PEER, remote_reachable=True,
                                     signalling_host=PEER[0])
    values.update(overrides)
    return StreamParams(**values)  # type: ignore[arg-type]


def audio(number: int, *, ssrc: int = 0x11223344, payload_type: int = 0, size: int = 160,
          marker: bool = False) -> bytes:
    """Packet `number` of a 20 ms stream; every payload byte is the packet number."""
    return RtpPacket(payload_type, 500 + number, 1000 + 160 * number, ssrc, bytes([number % 256]) * size,
                     marker=marker).to_bytes()


def test_accepted_audio_starts_the_stream_once_and_reaches_the_jitter_buffer() -> None:
    session = RtpSession(params(), now=0.0)
    assert session.packets is None, "byte streams are buffered in the table"
    assert isinstance(session.receive(audio(0), PEER, 1.0), AudioStarted)
    assert session.receive(audio(1), PEER, 1.02) is None
    assert session.first_packet_at == 1.0 and session.last_packet_at == 1.02
    assert session.stats.packets_received == 2
    assert session.pop() == bytes([0]) * 160
    assert session.pop() == bytes([1]) * 160


def test_packets_from_anywhere_but_the_locked_address_are_dropped_and_counted() -> None:
    session = RtpSession(params(), now=0.0)
    assert session.receive(audio(0), OTHER, 1.0) is None
    assert session.stats.packets_received == 0
    assert session.snapshot()["dropped"]["wrong_source"] == 1  # type: ignore[index]
    assert session.remote == PEER


def test_behind_nat_the_session_latches_to_the_source_and_sends_there() -> None:
    session = RtpSession(params(remote=PRIVATE, remote_reachable=False, signalling_host=PEER[0]), now=0.0)
    assert session.remote == PRIVATE
    events = [session.receive(audio(n), PEER, 0.02 * n) for n in range(PROBATION)]
    assert events[-1] is not None and session.remote == PEER
    assert session.snapshot()["dropped"]["learning"] == PROBATION - 1  # type: ignore[index]
    assert session.receive(audio(PROBATION), OTHER, 0.1) is None


def test_unknown_payload_types_and_junk_are_counted() -> None:
    session = RtpSession(params(), now=0.0)
    session.receive(audio(0, payload_type=18), PEER, 0.0)
    for junk in (b"", b"\x80", b"\x00" * 12, b"\xa0" + b"\x00" * 11):
        session.receive(junk, PEER, 0.0)
    assert session.stats.dropped_payload_type == 1
    assert session.stats.dropped_malformed == 4


def test_comfort_noise_is_accepted_and_keeps_the_call_alive() -> None:
    session = RtpSession(params(), now=0.0, timeout=5.0)
    session.receive(audio(0), PEER, 0.0)
    cn = RtpPacket(13, 501, 1160, 0x11223344, b"\x40").to_bytes()
    for second in range(1, 10):
        session.receive(cn, PEER, float(second))
        assert not [e for e in session.handle_timer(float(second), 0.0) if isinstance(e, MediaTimeout)]
    assert session.stats.comfort_noise == 9


def test_rfc4733_key_presses_are_reported_once() -> None:
    session = RtpSession(params(), now=0.0)
    session.receive(audio(0), PEER, 0.0)
    digits = []
    for index, (marker, payload) in enumerate(tone_event_packets("7", 100, 8000, step_ms=20)):
        packet = RtpPacket(101, 501 + index, 1160, 0x11223344, payload, marker=marker).to_bytes()
        event = session.receive(packet, PEER, 0.02 * (index + 1))
        if isinstance(event, DigitReceived):
            digits.append(event.digit)
    assert [(d.digit, d.duration_ms) for d in digits] == [("7", 100)]
    assert session.stats.telephone_events == 7


def test_a_key_press_without_end_packets_is_reported_by_the_timer() -> None:
    session = RtpSession(params(), now=0.0)
    packets = tone_event_packets("#", 200, 8000, step_ms=20)[:3]  # the end packets are lost
    for index, (marker, payload) in enumerate(packets):
        session.receive(RtpPacket(101, index, 0, 5, payload, marker=marker).to_bytes(), PEER, 0.02 * index)
    assert session.handle_timer(0.2, 0.0) == []
    (event,) = [e for e in session.handle_timer(0.7, 0.0) if isinstance(e, DigitReceived)]
    assert event.digit.digit == "#"


def test_a_new_ssrc_resets_the_buffer_once_it_proves_itself() -> None:
    session = RtpSession(params(), now=0.0)
    for n in range(3):
        session.receive(audio(n), PEER, 0.02 * n)
    for n in range(PROBATION):
        session.receive(RtpPacket(0, 9000 + n, 1480 + 160 * n, 0xABCD, b"\x07" * 160).to_bytes(), PEER, 0.1)
    assert session.lock.ssrc == 0xABCD and session.lock.ssrc_changes == 1
    assert session.pop() == b"\x07" * 160, "the buffer restarted with the new stream"


def test_opus_packets_go_to_a_packet_buffer_with_their_duration() -> None:
    session = RtpSession(params(codec=OPUS, payload_type=111), now=0.0)
    assert isinstance(session.packets, PacketBuffer)
    encoder = OpusEncoder()
    for n in range(3):
        packet = encoder.encode(np.zeros(1920, np.int16))  # 40 ms packets
        session.receive(RtpPacket(111, n, 1920 * n, 1, packet).to_bytes(), PEER, 0.04 * n)
    assert session.pop() is not None
    session.receive(RtpPacket(111, 3, 1920 * 3, 1, b"\xff").to_bytes(), PEER, 0.2)  # an unreadable TOC
    assert session.stats.dropped_malformed == 1


def test_srtp_both_ways_and_failures_are_counted() -> None:
    ours = CryptoAttribute.generate(1, "AES_CM_128_HMAC_SHA1_80")
    theirs = CryptoAttribute.generate(1, "AES_CM_128_HMAC_SHA1_80")
    peer = SrtpContext(theirs, ours)
    session = RtpSession(params(srtp=SrtpContext(ours, theirs)), now=0.0)
    assert session.secure
    protected = peer.protect(audio(0))
    assert isinstance(session.receive(protected, PEER, 0.0), AudioStarted)
    assert session.receive(protected, PEER, 0.02) is None  # replayed
    assert session.receive(audio(1), PEER, 0.04) is None  # plain RTP on an SRTP stream
    assert session.stats.dropped_srtp == 2
    sent = session.packetize(b"\x01" * 160, 0.1)
    assert sent is not None and sent != b"\x01" * 160
    clear = peer.unprotect(sent)
    assert clear is not None and parse_rtp(clear).payload == b"\x01" * 160


def test_packetize_sequence_timestamp_marker_and_ssrc() -> None:
    session = RtpSession(params(codec=G722, payload_type=9), now=0.0)
    packets = [parse_rtp(session.packetize(bytes(160), 0.02 * n) or b"") for n in range(3)]
    assert [p.marker for p in packets] == [True, False, False]
    assert [(p.sequence_number - packets[0].sequence_number) % 65536 for p in packets] == [0, 1, 2]
    assert [(p.timestamp - packets[0].timestamp) % 2**32 for p in packets] == [0, 160, 320]  # G.722: 8 kHz clock
    assert {p.ssrc for p in packets} == {session.ssrc} and {p.payload_type for p in packets} == {9}
    session.skip_frame()
    after = parse_rtp(session.packetize(bytes(160), 0.1) or b"")
    assert after.marker and (after.timestamp - packets[0].timestamp) % 2**32 == 640
    assert session.snapshot()["packets_sent"] == 4


def test_rtcp_reports_go_to_the_rtcp_port_or_the_rtp_port_with_mux() -> None:
    for mux, port, via_rtcp in ((False, PEER[1] + 1, True), (True, PEER[1], False)):
        session = RtpSession(params(rtcp_mux=mux), now=0.0)
        session.receive(audio(0), PEER, 0.0)
        session.packetize(bytes(160), 0.0)
        times = [t / 10 for t in range(0, 100)]
        for now in times:
            session.handle_timer(now, 1_700_000_000.0 + now)
        outbox = session.datagrams_to_send()
        assert 1 <= len(outbox) <= 4, "every 5 s on average, the first after about 2.5 s"
        data, destination, from_rtcp_port = outbox[0]
        assert destination == (PEER[0], port) and from_rtcp_port is via_rtcp
        kinds = [type(p).__name__ for p in parse_compound(data)]
        assert kinds == ["RtcpSrPacket", "RtcpSdesPacket"]


def test_rtcp_from_the_peer_is_read_and_from_strangers_dropped() -> None:
    ours = RtpSession(params(), now=0.0)
    theirs = RtpSession(params(), now=0.0)
    theirs.packetize(bytes(160), 0.0)
    for tenth in range(100):
        theirs.handle_timer(tenth / 10, 1_700_000_000.0 + tenth / 10)
    report = theirs.datagrams_to_send()[0][0]
    ours.receive_rtcp(report, ("198.51.100.1", 40001), 3.0)
    assert ours.stats.dropped_rtcp == 1
    ours.receive_rtcp(report, (PEER[0], 40001), 3.0)
    assert ours.stats.rtcp_received == 1
    assert ours.rtcp_destination == (PEER[0], 40001), "symmetric RTCP"


def test_the_inactivity_timeout_fires_once_and_not_while_the_peer_holds() -> None:
    session = RtpSession(params(), now=0.0, timeout=30.0)
    session.receive(audio(0), PEER, 1.0)
    assert session.get_timer() is not None and session.get_timer() <= 31.0  # type: ignore[operator]
    assert [e for e in session.handle_timer(30.9, 0.0) if isinstance(e, MediaTimeout)] == []
    (timeout,) = [e for e in session.handle_timer(31.0, 0.0) if isinstance(e, MediaTimeout)]
    assert timeout.idle == pytest.approx(30.0)
    assert [e for e in session.handle_timer(90.0, 0.0) if isinstance(e, MediaTimeout)] == []

    held = RtpSession(params(peer_sends=False), now=0.0, timeout=30.0)
    assert [e for e in held.handle_timer(100.0, 0.0) if isinstance(e, MediaTimeout)] == []
    held.update(params(peer_sends=True), 100.0)
    assert [e for e in held.handle_timer(129.0, 0.0) if isinstance(e, MediaTimeout)] == []
    assert [e for e in held.handle_timer(130.0, 0.0) if isinstance(e, MediaTimeout)]


def test_a_codec_change_gets_a_new_buffer_and_a_new_talkspurt() -> None:
    session = RtpSession(params(), now=0.0)
    session.receive(audio(0), PEER, 0.0)
    session.packetize(bytes(160), 0.0)
    session.update(params(codec=PCMA, payload_type=8), 1.0)
    assert session.codec is PCMA
    assert session.receive(audio(1), PEER, 1.0) is None and session.stats.dropped_payload_type == 1
    session.receive(audio(2, payload_type=8), PEER, 1.02)
    session.receive(audio(3, payload_type=8), PEER, 1.04)
    assert session.pop() == bytes([2]) * 160, "the PCMU audio buffered before the change is gone"
    assert parse_rtp(session.packetize(bytes(160), 1.02) or b"").marker


@settings(max_examples=300, deadline=None)
@given(st.lists(st.tuples(st.binary(max_size=200), st.sampled_from([PEER, OTHER, PRIVATE])), max_size=30))
def test_receive_never_raises(datagrams: list[tuple[bytes, Address]]) -> None:
    session = RtpSession(params(), now=0.0)
    for now, (data, source) in zip(itertools.count(), datagrams, strict=False):
        session.receive(data, source, now * 0.02)
        session.receive_rtcp(data, source, now * 0.02)
        session.pop()
    session.handle_timer(100.0, 0.0)


def test_srtcp_reports_are_protected_and_read_back() -> None:
    ours = CryptoAttribute.generate(1, "AES_CM_128_HMAC_SHA1_32")
    theirs = CryptoAttribute.generate(1, "AES_CM_128_HMAC_SHA1_32")
    sender = RtpSession(params(srtp=SrtpContext(ours, theirs), rtcp_mux=True), now=0.0)
    receiver = RtpSession(params(srtp=SrtpContext(theirs, ours), rtcp_mux=True), now=0.0)
    sender.packetize(bytes(160), 0.0)
    for tenth in range(100):
        sender.handle_timer(tenth / 10, 1_700_000_000.0 + tenth / 10)
    (data, destination, _), *_ = sender.datagrams_to_send()
    assert destination == PEER
    receiver.receive(data, PEER, 10.0)  # multiplexed: arrives on the RTP port
    assert receiver.stats.rtcp_received == 1 and receiver.rtcp.peer_ssrc is None
    assert receiver.rtcp.reports_received == 1
    tampered = bytearray(data)
    tampered[10] ^= 1
    receiver.receive(bytes(tampered), PEER, 10.1)
    assert receiver.stats.dropped_srtp == 1
