"""The spine end to end: real calls into a real server, audio checked by FFT.

SIPp (Debian's sip-tester) streams three μ-law WAVs made by sox into one conference while it is
recorded; the recording must hold all three tones. Test RTP peers check N-1 mixing from the
receiving side: each hears the other tones and not its own.
"""

from __future__ import annotations

import itertools
import time
from pathlib import Path

from tests.helpers.audio import has_tone, lacks_tone, read_wav, tone_level_db
from tests.helpers.participant import Participant
from tests.helpers.server_process import RunningServer
from tests.helpers.sip_client import SipClient
from tests.helpers.sip_messages import pcmu_offer
from tests.helpers.sipp import Sipp, make_tone_wav, scenario_with_tone

TONES = (440.0, 1050.0, 1730.0)


def test_three_sipp_calls_are_mixed_into_the_recording(server: RunningServer, tmp_path: Path) -> None:
    api = server.api
    conference = api.post("/conferences", {"type": "conference", "name": "sipp", "detail": "three tones"})
    calls = [Sipp(scenario_with_tone("uac_tone.xml", make_tone_wav(tmp_path / f"tone{int(f)}.wav", f), tmp_path),
                  tmp_path, target=server.sip, name=f"tone{int(f)}", service=f"direct.{conference['direct_hash']}",
                  extra=("-d", "7000")) for f in TONES]
    try:
        joined = api.wait_for(f"/conferences/{conference['id']}", lambda c: len(c["conferencecall_ids"]) == 3)
        started = api.post(f"/conferences/{conference['id']}/recording_start", {"format": "wav"})
        recording_id = started["recording_id"]
        assert recording_id != "00000000-0000-0000-0000-000000000000"
        assert started["recording_ids"] == [recording_id]
        time.sleep(2.5)
        stopped = api.post(f"/conferences/{conference['id']}/recording_stop")
        assert stopped["recording_id"] == "00000000-0000-0000-0000-000000000000"
        assert stopped["recording_ids"] == [recording_id]
    finally:
        outcomes = [call.wait() for call in calls]
    assert all(outcome.code == 0 for outcome in outcomes), [outcome.explain() for outcome in outcomes]

    recording = api.get(f"/recordings/{recording_id}")
    assert recording["status"] == "ended" and recording["reference_id"] == conference["id"]
    assert 2.2 <= recording["duration"] <= 3.2
    status, _, wav_bytes = api.call("GET", f"/recordingfiles/{recording_id}")
    assert status == 200
    rate, samples = read_wav(wav_bytes)
    assert rate == recording["sample_rate"] == 16000 and abs(len(samples) / rate - recording["duration"]) < 0.05
    for frequency in TONES:
        assert has_tone(samples, rate, frequency), (frequency, tone_level_db(samples, rate, frequency))
        # The 8 kHz mix is resampled to 16 kHz for the file: no image above 4 kHz.
        assert lacks_tone(samples, rate, 8000 - frequency), ("image", tone_level_db(samples, rate, 8000 - frequency))
    assert lacks_tone(samples, rate, 2500.0), "nothing but the three tones"

    participants = [api.get(f"/conferencecalls/{cc_id}") for cc_id in joined["conferencecall_ids"]]
    after = api.wait_for(f"/conferences/{conference['id']}", lambda c: c["conferencecall_ids"] == [])
    assert after["status"] == "progressing", "a conference stays up when everyone has left"
    for participant in participants:
        final = api.get(f"/conferencecalls/{participant['id']}")
        assert final["status"] == "leaved" and final["reference_type"] == "call"
        call = api.get(f"/calls/{final['reference_id']}")
        assert call["status"] == "hangup" and call["hangup_by"] == "remote"
        assert call["direction"] == "incoming" and call["destination"]["target"].startswith("sip:direct.")


def test_each_participant_hears_everyone_but_itself(server: RunningServer) -> None:
    api = server.api
    conference = api.post("/conferences", {"type": "conference", "name": "n-1"})
    people = [Participant(server.sip, server.direct_uri(conference["direct_hash"]), f) for f in TONES]
    try:
        api.wait_for(f"/conferences/{conference['id']}", lambda c: len(c["conferencecall_ids"]) == 3)
        time.sleep(2.5)
        for person in people:
            audio = person.peer.audio()[-2 * 8000:]
            for other in people:
                if other is person:
                    assert lacks_tone(audio, 8000, other.frequency), (
                        "hears itself", tone_level_db(audio, 8000, other.frequency))
                else:
                    assert has_tone(audio, 8000, other.frequency), (
                        "misses", other.frequency, tone_level_db(audio, 8000, other.frequency))
            packets = [r.packet for r in person.peer.received]
            assert {r.source for r in person.peer.received} == {person.server_rtp}, "symmetric RTP"
            assert len({p.ssrc for p in packets}) == 1
            for before, after in itertools.pairwise(packets):
                assert after.sequence_number == (before.sequence_number + 1) & 0xFFFF
                assert after.timestamp == (before.timestamp + 160) & 0xFFFFFFFF
            assert all(len(p.payload) == 160 and p.payload_type == 0 for p in packets)
            gaps = [b.at - a.at for a, b in zip(person.peer.received, person.peer.received[1:], strict=False)]
            assert 0.019 < sum(gaps) / len(gaps) < 0.021, "one packet per 20 ms tick"

        deleted = api.delete(f"/conferences/{conference['id']}")
        assert deleted["status"] in ("terminating", "terminated")
        for person in people:
            _, raw = person.sip.expect_request("BYE")
            person.sip.reply(raw)
        final = api.wait_for(f"/conferences/{conference['id']}", lambda c: c["status"] == "terminated")
        assert final["tm_delete"] != "9999-01-01 00:00:00.000000" and final["conferencecall_ids"] == []
        for cc in api.get("/conferencecalls")["result"]:
            assert cc["status"] == "leaved"
        late = SipClient(server.sip, server.direct_uri(conference["direct_hash"]))
        assert late.call(pcmu_offer("127.0.0.1", 40000)).status_code == 404
        late.close()
    finally:
        for person in people:
            person.close()


def test_pcma_and_pcmu_participants_hear_each_other(server: RunningServer) -> None:
    api = server.api
    conference = api.post("/conferences", {"type": "conference", "name": "codecs"})
    alaw = Participant(server.sip, server.direct_uri(conference["direct_hash"]), 700.0, payload_type=8)
    ulaw = Participant(server.sip, server.direct_uri(conference["direct_hash"]), 1300.0, payload_type=0)
    try:
        api.wait_for(f"/conferences/{conference['id']}", lambda c: len(c["conferencecall_ids"]) == 2)
        time.sleep(1.5)
        assert {r.packet.payload_type for r in alaw.peer.received} == {8}
        assert {r.packet.payload_type for r in ulaw.peer.received} == {0}
        heard_by_alaw, heard_by_ulaw = alaw.peer.audio()[-8000:], ulaw.peer.audio()[-8000:]
        assert has_tone(heard_by_alaw, 8000, 1300.0) and lacks_tone(heard_by_alaw, 8000, 700.0)
        assert has_tone(heard_by_ulaw, 8000, 700.0) and lacks_tone(heard_by_ulaw, 8000, 1300.0)
        assert alaw.sip.hangup().status_code == 200 and ulaw.sip.hangup().status_code == 200
    finally:
        alaw.close()
        ulaw.close()


def test_kick_sends_bye_with_retransmission_and_the_participant_leaves(server: RunningServer) -> None:
    api = server.api
    conference = api.post("/conferences", {"type": "conference", "name": "kick"})
    person = Participant(server.sip, server.direct_uri(conference["direct_hash"]), 440.0)
    try:
        joined = api.wait_for(f"/conferences/{conference['id']}", lambda c: len(c["conferencecall_ids"]) == 1)
        cc_id = joined["conferencecall_ids"][0]
        assert api.get(f"/conferencecalls/{cc_id}")["status"] == "joined"
        kicked = api.delete(f"/conferencecalls/{cc_id}")
        assert kicked["status"] == "leaving"
        first, _raw = person.sip.expect_request("BYE")
        sent_at = time.monotonic()
        again, raw_again = person.sip.expect_request("BYE", timeout=2.0)
        assert 0.3 < time.monotonic() - sent_at < 1.5, "BYE retransmitted after T1"
        assert again.headers.get("Via") == first.headers.get("Via"), "a retransmission, not a new request"
        person.sip.reply(raw_again)
        left = api.wait_for(f"/conferencecalls/{cc_id}", lambda c: c["status"] == "leaved")
        assert left["conference_id"] == conference["id"]
        assert api.get(f"/conferences/{conference['id']}")["conferencecall_ids"] == []
        call = api.get(f"/calls/{left['reference_id']}")
        assert call["status"] == "hangup" and call["hangup_by"] == "local"
        status, body, _ = api.call("DELETE", f"/conferencecalls/{cc_id}")
        assert status == 409 and body["error"]["status"] == 409
    finally:
        person.close()
