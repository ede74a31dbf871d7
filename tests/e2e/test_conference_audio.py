"""The spine end to end: real calls into a real server, audio checked by FFT.

SIPp (Debian's sip-tester) streams three μ-law WAVs made by sox into one conference while it is
recorded; the recording must hold all three tones. Test RTP peers check N-1 mixing from the
receiving side: each hears the other tones and not its own.
"""

from __future__ import annotations

import itertools
import shutil
import socket
import subprocess
import time
from pathlib import Path

import pytest

from sip.sdp import parse_sdp
from tests.helpers.audio import has_tone, lacks_tone, read_wav, tone, tone_level_db
from tests.helpers.rtp_peer import RtpPeer
from tests.helpers.server_process import RunningServer, free_port
from tests.helpers.sip_client import SipClient
from tests.helpers.sip_messages import pcmu_offer

SCENARIOS = Path(__file__).parent / "scenarios"
TONES = (440.0, 1050.0, 1730.0)


def require_tool(name: str) -> str:
    path = shutil.which(name)
    if path is None:
        pytest.fail(f"{name} is not installed; the test command (scripts/test.sh) installs it from Debian")
    return path


def make_tone_wav(path: Path, frequency: float, seconds: float = 10.0) -> Path:
    """A μ-law WAV of a sine tone, made by sox (an encoder independent of ours)."""
    subprocess.run([require_tool("sox"), "-n", "-r", "8000", "-c", "1", "-e", "u-law", str(path), "synth",
                    str(seconds), "sine", str(frequency), "vol", "0.4"], check=True)
    return path


def free_media_port() -> int:
    """An even UDP port with the next three free too (SIPp uses audio, RTCP and video ports)."""
    for _ in range(100):
        base = free_port() & ~1
        try:
            socks = []
            for port in range(base, base + 4):
                sock = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
                socks.append(sock)
                sock.bind(("127.0.0.1", port))
        except OSError:
            continue
        finally:
            for sock in socks:
                sock.close()
        return base
    raise RuntimeError("no free media port block")


def start_sipp(server: RunningServer, direct_hash: str, tone_file: Path, duration_ms: int, work: Path) -> \
        subprocess.Popen[bytes]:
    """One SIPp UAC call that streams `tone_file` for `duration_ms` and then hangs up."""
    scenario = work / f"uac_{tone_file.stem}.xml"
    scenario.write_text((SCENARIOS / "uac_tone.xml").read_text().replace("TONE_FILE", str(tone_file)))
    args = [require_tool("sipp"), f"{server.sip[0]}:{server.sip[1]}", "-sf", str(scenario),
            "-s", f"direct.{direct_hash}", "-m", "1", "-d", str(duration_ms), "-i", "127.0.0.1",
            "-p", str(free_port()), "-mp", str(free_media_port()), "-nostdin", "-timeout", "40s",
            "-trace_err", "-error_file", str(work / f"{tone_file.stem}.errors")]
    return subprocess.Popen(args, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, cwd=work)


def test_three_sipp_calls_are_mixed_into_the_recording(server: RunningServer, tmp_path: Path) -> None:
    api = server.api
    conference = api.post("/conferences", {"type": "conference", "name": "sipp", "detail": "three tones"})
    calls = [start_sipp(server, conference["direct_hash"], make_tone_wav(tmp_path / f"tone{int(f)}.wav", f),
                        7000, tmp_path) for f in TONES]
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
        outcomes = [(call.wait(60), call.stderr.read() if call.stderr else b"") for call in calls]
    assert all(code == 0 for code, _ in outcomes), outcomes

    recording = api.get(f"/recordings/{recording_id}")
    assert recording["status"] == "ended" and recording["reference_id"] == conference["id"]
    assert 2.2 <= recording["duration"] <= 3.2
    status, _, wav_bytes = api.call("GET", f"/recordingfiles/{recording_id}")
    assert status == 200
    rate, samples = read_wav(wav_bytes)
    assert rate == 8000 and abs(len(samples) / rate - recording["duration"]) < 0.05
    for frequency in TONES:
        assert has_tone(samples, rate, frequency), (frequency, tone_level_db(samples, rate, frequency))
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


class Participant:
    """A test caller with its own RTP peer."""

    def __init__(self, server: RunningServer, direct_hash: str, frequency: float, payload_type: int = 0) -> None:
        self.frequency = frequency
        self.peer = RtpPeer(payload_type)
        self.sip = SipClient(server.sip, server.direct_uri(direct_hash))
        answer = self.sip.call(pcmu_offer("127.0.0.1", self.peer.port, formats=f"{payload_type} 101"))
        assert answer.status_code == 200, answer
        sdp = parse_sdp(answer.body)
        self.server_rtp = (sdp.connection.host if sdp.connection else "", sdp.media[0].port)
        assert sdp.media[0].formats == [str(payload_type), "101"], "our codec and telephone-event accepted"
        assert sdp.media[0].rtpmap()[101] == ("telephone-event", 8000, 1)
        self.peer.start_sending(self.server_rtp, tone(frequency, 8.0))

    def close(self) -> None:
        self.peer.stop()
        self.sip.close()


def test_each_participant_hears_everyone_but_itself(server: RunningServer) -> None:
    api = server.api
    conference = api.post("/conferences", {"type": "conference", "name": "n-1"})
    people = [Participant(server, conference["direct_hash"], f) for f in TONES]
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
    alaw = Participant(server, conference["direct_hash"], 700.0, payload_type=8)
    ulaw = Participant(server, conference["direct_hash"], 1300.0, payload_type=0)
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
    person = Participant(server, conference["direct_hash"], 440.0)
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
