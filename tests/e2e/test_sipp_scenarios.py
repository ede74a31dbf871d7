"""SIPp call flows against the real server: CANCEL, hold and unhold, INFO DTMF, TCP, a lossy network, unknown users.

Why: the other end-to-end tests dial with our own hand-written SIP client, which shares our reading of the RFCs.
SIPp (Debian's sip-tester) is an independent implementation: its scenarios in tests/e2e/scenarios/uac_*.xml
send what a softphone sends (CANCEL in the INVITE's transaction, hold re-INVITEs with a bumped o= version, INFO
key presses, SIP over TCP, retransmissions when messages get lost), and each test checks what SIPp got back as
well as what the server made of it: REST state, events and, for hold, the audio another participant hears.

Every SIPp run is bounded (`-timeout 30s -timeout_error`, plus a process timeout here), uses loopback only and
free ports of its own; its exit code must be 0 and its error file is shown when it is not.
"""

from __future__ import annotations

import time
from pathlib import Path

import pytest

from tests.helpers.audio import has_tone, lacks_tone, tone_level_db
from tests.helpers.inprocess import InProcessServer
from tests.helpers.participant import Participant
from tests.helpers.server_process import LaunchServer
from tests.helpers.sipp import (
    SCENARIOS,
    Sipp,
    assert_acknowledged_in_transaction,
    header,
    make_tone_wav,
    run_sipp,
    scenario_with_tone,
)

pytestmark = pytest.mark.e2e

RATE = 8000
CALLER_TONE = 440.0
LISTENER_TONE = 1300.0


# -- the tests -------------------------------------------------------------------------------------


def test_cancel_of_a_ringing_call_gets_487_and_leaves_nothing_behind(
        launch_server: LaunchServer, tmp_path: Path) -> None:
    server = launch_server("--answer-delay", "3")
    api = server.api
    conference = api.create_conference("cancel")
    dialled = time.monotonic()
    result = run_sipp(server.sip, SCENARIOS / "uac_cancel.xml", tmp_path, name="cancel",
                      service=f"direct.{conference['direct_hash']}")
    assert result.code == 0, result.explain()
    assert result.successful_calls() == 1, result.explain()
    assert result.received("SIP/2.0 100") == 1 and result.received("SIP/2.0 180") == 1, result.messages[-4000:]
    (cancel,) = result.traced("sent", "CANCEL ")
    (cancelled,) = result.traced("received", "SIP/2.0 200")
    assert header(cancelled, "CSeq") == "1 CANCEL" and header(cancel, "Via") == header(
        result.traced("sent", "INVITE ")[0], "Via"), "the CANCEL is in the INVITE's transaction and answered 200"
    assert_acknowledged_in_transaction(result, "487")

    # The answer delay must run out without the cancelled call being answered after all.
    time.sleep(max(0.0, dialled + 3.5 - time.monotonic()))
    assert api.get(f"/conferences/{conference['id']}")["conferencecall_ids"] == []
    for call in api.get("/calls")["result"]:
        assert call["status"] == "hangup", call
    for participant in api.get("/conferencecalls")["result"]:
        assert participant["status"] == "leaved", participant
    log = server.log()
    assert "cancelled by the caller" in log
    assert "answered into conference" not in log, "a cancelled call must not be answered"


def test_reinvite_hold_takes_the_caller_out_of_the_mix_and_unhold_brings_it_back(
        launch_server: LaunchServer, tmp_path: Path) -> None:
    server = launch_server()
    api = server.api
    conference = api.create_conference("hold")
    path = f"/conferences/{conference['id']}"
    listener = Participant(server.sip, server.direct_uri(conference["direct_hash"]), LISTENER_TONE, amplitude=1500.0)
    sipp: Sipp | None = None
    try:
        api.wait_for(path, lambda c: len(c["conferencecall_ids"]) == 1)
        scenario = scenario_with_tone("uac_hold.xml", make_tone_wav(tmp_path / "tone440.wav", CALLER_TONE),
                                      tmp_path)
        sipp = Sipp(scenario, tmp_path, target=server.sip, name="hold",
                    service=f"direct.{conference['direct_hash']}")
        api.wait_for(path, lambda c: len(c["conferencecall_ids"]) == 2)
        # SIPp's first RTP packet made it `joined`, just after its ACK: the scenario's clock starts here
        # (polling adds up to ~0.1 s). Then: talk 3 s, re-INVITE sendonly, held 3 s, re-INVITE sendrecv, talk 3 s.
        t0 = time.monotonic()
        result = sipp.wait()
        assert result.code == 0, result.explain()
        assert result.successful_calls() == 1, result.explain()
    finally:
        if sipp is not None:
            sipp.stop()
        listener.close(hang_up=True)

    windows = {"talking": (0.7, 2.3), "held": (3.7, 5.3), "resumed": (6.7, 8.3)}
    heard = {phase: listener.heard_between(t0 + start, t0 + end) for phase, (start, end) in windows.items()}
    levels = {phase: round(tone_level_db(audio, RATE, CALLER_TONE), 1) for phase, audio in heard.items()}
    for phase, audio in heard.items():
        assert len(audio) >= 0.9 * 1.6 * RATE, (phase, "the listener keeps receiving packets", len(audio))
    assert has_tone(heard["talking"], RATE, CALLER_TONE), ("440 Hz missing before hold", levels)
    assert lacks_tone(heard["held"], RATE, CALLER_TONE), ("a held caller's audio is still mixed", levels)
    assert has_tone(heard["resumed"], RATE, CALLER_TONE), ("440 Hz missing after unhold", levels)

    # The held caller itself got no audio: its leg sent about 6 s of the call's 9 s (50 packets a second),
    # while it received the whole 9 s of SIPp's stream.
    (sipp_call,) = [c for c in api.get("/calls")["result"] if c["source"]["target"].startswith("sip:sipp@")]
    assert sipp_call["status"] == "hangup" and sipp_call["hangup_by"] == "remote", sipp_call
    media = api.get(f"/conferencecalls/{sipp_call['conferencecall_id']}")["media"]
    received, sent = media["packets_received"], media["packets_sent"]
    assert media["codec"] == "PCMU/8000" and media["packets_lost"] == 0, media
    assert received >= 8 * 50, ("SIPp kept streaming while held", received)
    assert 5 * 50 <= sent <= 7 * 50, ("nothing is sent to a held caller", sent)


def test_info_dtmf_is_published_and_other_info_bodies_get_415(inprocess_server: InProcessServer,
                                                              tmp_path: Path) -> None:
    conference = inprocess_server.api.create_conference("dtmf")
    result = run_sipp(inprocess_server.sip, SCENARIOS / "uac_info_dtmf.xml", tmp_path, name="info",
                      service=f"direct.{conference['direct_hash']}")
    assert result.code == 0, result.explain()
    assert result.successful_calls() == 1, result.explain()
    assert result.received("SIP/2.0 415") == 1, result.messages[-3000:]

    deadline = time.monotonic() + 5
    while len(inprocess_server.events_of("call_dtmf_received")) < 2 and time.monotonic() < deadline:
        time.sleep(0.05)
    events = inprocess_server.events_of("call_dtmf_received")
    assert [(e.data["digit"], e.data["method"]) for e in events] == [("5", "info"), ("#", "info")], events
    assert events[0].data["duration"] == 160, "Duration= of the dtmf-relay body, in ms"
    (call,) = inprocess_server.api.get("/calls")["result"]
    for event in events:
        assert event.data["call_id"] == call["id"] and event.data["conference_id"] == conference["id"]


def test_call_and_options_over_tcp(launch_server: LaunchServer, tmp_path: Path) -> None:
    server = launch_server()
    api = server.api
    conference = api.create_conference("tcp")
    path = f"/conferences/{conference['id']}"
    listener = Participant(server.sip, server.direct_uri(conference["direct_hash"]), LISTENER_TONE, amplitude=1500.0)
    sipp: Sipp | None = None
    try:
        api.wait_for(path, lambda c: len(c["conferencecall_ids"]) == 1)
        scenario = scenario_with_tone("uac_tone.xml", make_tone_wav(tmp_path / "tone440.wav", CALLER_TONE),
                                      tmp_path)
        sipp = Sipp(scenario, tmp_path, target=server.sip, name="tcp-call",
                    service=f"direct.{conference['direct_hash']}",
                    transport="t1", extra=("-d", "4000"))
        api.wait_for(path, lambda c: len(c["conferencecall_ids"]) == 2)
        joined_at = time.monotonic()
        result = sipp.wait()
        assert result.code == 0, result.explain()
        assert result.successful_calls() == 1, result.explain()
    finally:
        if sipp is not None:
            sipp.stop()
        listener.close(hang_up=True)
    assert "TCP message sent" in result.messages and "UDP message" not in result.messages
    assert result.received("SIP/2.0 200") == 2, "the INVITE's and the BYE's 200, over TCP"
    heard = listener.heard_between(joined_at + 0.7, joined_at + 3.3)
    assert has_tone(heard, RATE, CALLER_TONE), tone_level_db(heard, RATE, CALLER_TONE)
    sipp_calls = [c for c in api.get("/calls")["result"] if c["source"]["target"].startswith("sip:sipp@")]
    assert len(sipp_calls) == 1 and sipp_calls[0]["status"] == "hangup" and sipp_calls[0]["hangup_by"] == "remote"

    options = run_sipp(server.sip, SCENARIOS / "uac_options.xml", tmp_path, name="tcp-options", transport="t1")
    assert options.code == 0, options.explain()
    assert "TCP message sent" in options.messages and options.received("SIP/2.0 200") == 1, options.messages


def test_ten_calls_survive_ten_percent_message_loss(launch_server: LaunchServer,
                                                    tmp_path: Path) -> None:
    server = launch_server("--sip-t1", "0.25")
    api = server.api
    conference = api.create_conference("lossy")
    result = run_sipp(server.sip, SCENARIOS / "uac_lossy_call.xml", tmp_path, name="lossy", calls=10,
                      service=f"direct.{conference['direct_hash']}", extra=("-l", "1", "-lost", "10"))
    assert result.code == 0, result.explain()
    assert result.successful_calls() == 10, result.explain()
    calls = api.wait_for("/calls", lambda page: len(page["result"]) == 10 and all(
        c["status"] == "hangup" for c in page["result"]))["result"]
    assert {c["hangup_by"] for c in calls} == {"remote"}, calls
    assert api.get(f"/conferences/{conference['id']}")["conferencecall_ids"] == []


def test_unknown_hash_and_unknown_user_get_404(launch_server: LaunchServer,
                                               tmp_path: Path) -> None:
    server = launch_server()
    server.api.create_conference("exists")  # a conference exists, just not under these users
    users = tmp_path / "users.csv"
    users.write_text("SEQUENTIAL\ndirect.0123456789ab;\nalice;\n")
    result = run_sipp(server.sip, SCENARIOS / "uac_unknown_hash.xml", tmp_path, name="unknown", calls=2,
                      extra=("-inf", str(users)))
    assert result.code == 0, result.explain()
    assert result.successful_calls() == 2, result.explain()
    assert "INVITE sip:direct.0123456789ab@" in result.messages and "INVITE sip:alice@" in result.messages
    assert result.received("SIP/2.0 404") == 2, result.messages[-4000:]
    assert_acknowledged_in_transaction(result, "404")
    assert server.api.get("/calls")["result"] == []
