"""Key presses in the RTP stream (RFC 4733) and the DTMF menu, RTCP round trips, and the RTP inactivity timeout."""

from __future__ import annotations

import struct
import time
from pathlib import Path

from aiortc.rtp import RtcpReceiverInfo, RtcpRrPacket, RtcpSrPacket

from confbridge import ServerConfig
from rtp.rtcp import ntp_middle, parse_compound
from tests.helpers.audio import tone_level_db
from tests.helpers.inprocess import InProcessServer, start_inprocess, wait_until
from tests.helpers.participant import Participant, conferencecall_of
from tests.helpers.peer_codecs import PEER_CODECS
from tests.helpers.ports import free_rtp_range, free_sip_port
from tests.helpers.server_process import LaunchServer


def test_rfc4733_key_presses_become_events_once_each(inprocess_server: InProcessServer) -> None:
    api = inprocess_server.api
    conference = api.create_conference("keys")
    person = Participant(inprocess_server.sip, inprocess_server.direct_uri(conference["direct_hash"]), 500.0,
                         codec=PEER_CODECS["opus"])
    try:
        api.wait_for(f"/conferences/{conference['id']}", lambda c: len(c["conferencecall_ids"]) == 1)
        for digit in "19#":
            person.peer.press(digit, 120)
            time.sleep(0.3)
        wait_until(lambda: len(inprocess_server.events_of("call_dtmf_received")) >= 3)
        time.sleep(0.7)  # end packets come three times; a late duplicate would show up by now
        events = inprocess_server.events_of("call_dtmf_received")
        assert [(e.data["digit"], e.data["method"]) for e in events] == [("1", "rfc4733"), ("9", "rfc4733"),
                                                                          ("#", "rfc4733")]
        assert all(e.data["duration"] == 120 for e in events), [e.data for e in events]
    finally:
        person.close(hang_up=True)


def test_star_six_toggles_self_mute(inprocess_server: InProcessServer) -> None:
    api = inprocess_server.api
    conference = api.create_conference("mute")
    uri = inprocess_server.direct_uri(conference["direct_hash"])
    talker = Participant(inprocess_server.sip, uri, 800.0, codec=PEER_CODECS["G722"], seconds=20.0)
    listener = Participant(inprocess_server.sip, uri, 1500.0)
    try:
        api.wait_for(f"/conferences/{conference['id']}", lambda c: len(c["conferencecall_ids"]) == 2)
        call_id = conferencecall_of(api, talker.sip)["reference_id"]

        def heard_now() -> float:
            time.sleep(1.2)
            end = time.monotonic()
            return tone_level_db(listener.heard_between(end - 0.8, end), 8000, 800.0)

        assert heard_now() > -15.0
        talker.peer.press("*")
        talker.peer.press("6")
        api.wait_for(f"/calls/{call_id}", lambda c: c["mute_direction"] == "in")
        muted = heard_now()
        assert muted < -40.0, ("a self-muted participant is still heard", muted)
        assert conferencecall_of(api, talker.sip)["media"]["muted"] is True
        talker.peer.press("*")
        talker.peer.press("6")
        api.wait_for(f"/calls/{call_id}", lambda c: c["mute_direction"] == "")
        assert heard_now() > -15.0
        updates = [e for e in inprocess_server.events_of("call_updated") if e.data["id"] == call_id]
        assert [e.data["mute_direction"] for e in updates][-2:] == ["in", ""]
    finally:
        talker.close(hang_up=True)
        listener.close(hang_up=True)


def test_rtcp_reports_give_loss_jitter_and_round_trip_on_the_conferencecall(inprocess_server: InProcessServer) -> None:
    api = inprocess_server.api
    conference = api.create_conference("rtcp")
    person = Participant(inprocess_server.sip, inprocess_server.direct_uri(conference["direct_hash"]), 500.0,
                         rtcp_mux=True)
    try:
        api.wait_for(f"/conferences/{conference['id']}", lambda c: len(c["conferencecall_ids"]) == 1)
        # Answer the server's first sender report at once with a receiver report about its stream (RFC 3550 §6.4).
        wait_until(lambda: person.peer.rtcp_packets, timeout=9.0)
        (report, *_) = [p for p in parse_compound(person.peer.rtcp_packets[0]) if isinstance(p, RtcpSrPacket)]
        block = RtcpReceiverInfo(ssrc=report.ssrc, fraction_lost=64, packets_lost=3, highest_sequence=1000,
                                 jitter=80, lsr=ntp_middle(report.sender_info.ntp_timestamp), dlsr=0)
        person.peer.send_raw(bytes(RtcpRrPacket(ssrc=0x1234, reports=[block])), person.server_rtp)
        wait_until(lambda: conferencecall_of(api, person.sip)["media"]["rtt_ms"] is not None)
        media = conferencecall_of(api, person.sip)["media"]
        assert 0.0 <= media["rtt_ms"] < 1000.0, media
        assert media["remote_fraction_lost"] == 0.25 and media["remote_jitter_ms"] == 10.0, media
        assert media["packets_lost"] == 0 and media["jitter_ms"] < 20.0 and media["rtcp_received"] == 1, media
    finally:
        person.close(hang_up=True)


def test_a_call_whose_rtp_stops_is_hung_up_after_the_timeout(tmp_path: Path) -> None:
    running = start_inprocess(ServerConfig(sip_port=free_sip_port(), http_port=0, rtp_ports=free_rtp_range(),
                                           data_dir=tmp_path / "data", token="test-token", rtp_timeout=2.0))
    try:
        api = running.api
        conference = api.create_conference("silent")
        person = Participant(running.sip, running.direct_uri(conference["direct_hash"]), 500.0, seconds=1.0)
        try:
            api.wait_for(f"/conferences/{conference['id']}", lambda c: len(c["conferencecall_ids"]) == 1)
            participant = conferencecall_of(api, person.sip)
            person.peer.stop_sending()
            stopped = time.monotonic()
            _, raw = person.sip.expect_request("BYE", timeout=6.0)
            waited = time.monotonic() - stopped
            person.sip.reply(raw)
            assert 1.5 <= waited <= 3.5, waited
            final = api.wait_for(f"/conferencecalls/{participant['id']}", lambda p: p["status"] == "leaved")
            call = api.get(f"/calls/{final['reference_id']}")
            assert (call["hangup_by"], call["hangup_reason"]) == ("local", "timeout"), call
            assert final["media"]["packets_received"] > 0
        finally:
            person.close()
    finally:
        running.stop()


def test_the_inactivity_timeout_is_a_command_line_option(launch_server: LaunchServer) -> None:
    server = launch_server("--rtp-timeout", "1.5")
    conference = server.api.create_conference("cli timeout")
    person = Participant(server.sip, server.direct_uri(conference["direct_hash"]), 500.0)
    try:
        server.api.wait_for(f"/conferences/{conference['id']}", lambda c: len(c["conferencecall_ids"]) == 1)
        time.sleep(2.5)
        assert server.api.get(f"/conferences/{conference['id']}")["conferencecall_ids"], "still sending: stays"
        person.peer.stop_sending()
        _, raw = person.sip.expect_request("BYE", timeout=5.0)
        person.sip.reply(raw)
    finally:
        person.close()


def test_a_rtcp_bye_or_junk_on_the_rtcp_port_does_not_end_the_call(inprocess_server: InProcessServer) -> None:
    api = inprocess_server.api
    conference = api.create_conference("rtcp junk")
    person = Participant(inprocess_server.sip, inprocess_server.direct_uri(conference["direct_hash"]), 500.0)
    try:
        path = f"/conferences/{conference['id']}"
        api.wait_for(path, lambda c: len(c["conferencecall_ids"]) == 1)
        rtcp_port = (person.server_rtp[0], person.server_rtp[1] + 1)
        for junk in (b"", b"\x80", b"\x81\xc8\x00\x01" + b"\xff" * 3, struct.pack("!BBHI", 0x81, 203, 1, 0x1234)):
            person.peer.send_raw(junk, rtcp_port)
            person.peer.send_raw(junk, person.server_rtp)
        time.sleep(0.5)
        assert api.get(path)["conferencecall_ids"], "the participant is still in"
        media = conferencecall_of(api, person.sip)["media"]
        assert media["dropped"]["rtcp"] + media["dropped"]["malformed"] >= 3, media
    finally:
        person.close(hang_up=True)
