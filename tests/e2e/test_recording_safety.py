"""Recordings that never lose audio, end by themselves at their cap, survive a full disk and carry tracks.

Real servers on loopback, real callers streaming tones; the WAV files are read back and checked by FFT. The
disk-full test runs the server inside `unshare -rm` with a tiny tmpfs mounted over its recordings folder, so the
disk really fills (ENOSPC) while the database beside it is unaffected.
"""

from __future__ import annotations

import shutil
import time
import wave
from pathlib import Path

import numpy as np
import pytest

from tests.helpers.audio import has_tone, lacks_tone, read_wav, tone_level_db
from tests.helpers.participant import Participant
from tests.helpers.server_process import LaunchServer, RunningServer, start_server

NIL = "00000000-0000-0000-0000-000000000000"


def wav_seconds(path: Path) -> tuple[float, np.ndarray]:
    """(duration by the header, samples) of a WAV file as a player reads it."""
    with wave.open(str(path)) as reader:
        frames = reader.getnframes()
        samples = np.frombuffer(reader.readframes(frames), "<i2")
        return frames / reader.getframerate(), samples


def test_a_kill_9_loses_at_most_a_second_and_the_file_still_plays(tmp_path: Path) -> None:
    servers: list[RunningServer] = [start_server(tmp_path / "data")]
    person: Participant | None = None
    try:
        api = servers[0].api
        conference = api.create_conference("crash")
        person = Participant(servers[0].sip, servers[0].direct_uri(conference["direct_hash"]), 700.0, seconds=30)
        api.wait_for(f"/conferences/{conference['id']}", lambda c: len(c["conferencecall_ids"]) == 1)
        recording_id = api.post(f"/conferences/{conference['id']}/recording_start", {"format": "wav"})["recording_id"]
        began = time.monotonic()
        time.sleep(4.7)  # a header refreshed only every 3 s would be 1.7 s behind here
        servers[0].process.kill()
        elapsed = time.monotonic() - began
        servers[0].process.wait(10)

        path = servers[0].data_dir / "recordings" / f"{recording_id}.wav"
        seconds, samples = wav_seconds(path)  # the header as the crash left it: no repair has run yet
        assert elapsed - 1.0 <= seconds <= elapsed + 0.1, (elapsed, seconds)
        assert has_tone(samples[-16000:], 16000, 700.0), tone_level_db(samples[-16000:], 16000, 700.0)

        servers.append(start_server(servers[0].data_dir))  # a restart repairs what the crash cut off
        recovered = servers[1].api.get(f"/recordings/{recording_id}")
        assert recovered["status"] == "ended" and seconds <= recovered["duration"] <= elapsed + 0.1
        assert servers[1].api.get(f"/conferences/{conference['id']}")["recording_id"] == NIL
        status, _, data = servers[1].api.call("GET", f"/recordingfiles/{recording_id}")
        rate, played = read_wav(data)
        assert status == 200 and abs(len(played) / rate - recovered["duration"]) < 0.01
    finally:
        if person is not None:
            person.close()
        for server in servers[1:]:
            assert server.stop() == 0
        servers[0].stop()


def test_a_full_disk_ends_the_recording_with_an_error_and_the_conference_goes_on(tmp_path: Path) -> None:
    if shutil.which("unshare") is None:
        pytest.fail("`unshare` (util-linux) is not installed; this test needs it to mount a tiny tmpfs")
    recordings = tmp_path / "data" / "recordings"
    recordings.mkdir(parents=True)
    tiny = ["unshare", "-rm", "sh", "-c", 'mount -t tmpfs -o size=96k tmpfs "$0" && exec "$@"', str(recordings)]
    server = start_server(tmp_path / "data", wrapper=tiny)
    people: list[Participant] = []
    try:
        api = server.api
        conference = api.create_conference("full disk")
        people = [Participant(server.sip, server.direct_uri(conference["direct_hash"]), frequency, seconds=30)
                  for frequency in (600.0, 1100.0)]
        api.wait_for(f"/conferences/{conference['id']}", lambda c: len(c["conferencecall_ids"]) == 2)
        recording_id = api.post(f"/conferences/{conference['id']}/recording_start", {"format": "wav"})["recording_id"]
        recording = api.wait_for(f"/recordings/{recording_id}", lambda r: r["status"] == "ended", timeout=15)
        failed_at = time.monotonic()
        assert "No space left on device" in recording["error"], recording
        assert 1.0 <= recording["duration"] <= 3.2, "96 KiB hold about 3 s at 16 kHz"

        after = api.get(f"/conferences/{conference['id']}")
        assert after["status"] == "progressing" and after["recording_id"] == NIL
        assert len(after["conferencecall_ids"]) == 2
        time.sleep(1.2)
        heard = people[1].heard_between(failed_at + 0.2, time.monotonic())
        assert has_tone(heard, 8000, 600.0), "the conference still mixes after the recording failed"

        status, _, data = api.call("GET", f"/recordingfiles/{recording_id}")
        rate, samples = read_wav(data)
        assert status == 200 and abs(len(samples) / rate - recording["duration"]) < 0.01, "what is on disk plays"
        assert has_tone(samples, rate, 600.0) and has_tone(samples, rate, 1100.0)

        again = api.post(f"/conferences/{conference['id']}/recording_start", {"format": "wav"})["recording_id"]
        second = api.wait_for(f"/recordings/{again}", lambda r: r["status"] == "ended", timeout=15)
        assert second["error"], "a disk that is still full fails the next recording too, cleanly"
        assert api.get(f"/conferences/{conference['id']}")["recording_ids"] == [recording_id, again]
        assert "Traceback" not in server.log()
    finally:
        for person in people:
            person.close()
        assert server.stop() == 0


def test_a_recording_ends_by_itself_at_its_maximum_duration(launch_server: LaunchServer) -> None:
    server = launch_server("--recording-max-duration", "1.5")
    api = server.api
    conference = api.create_conference("capped")
    person = Participant(server.sip, server.direct_uri(conference["direct_hash"]), 900.0, seconds=10)
    try:
        api.wait_for(f"/conferences/{conference['id']}", lambda c: len(c["conferencecall_ids"]) == 1)
        recording_id = api.post(f"/conferences/{conference['id']}/recording_start", {"format": "wav"})["recording_id"]
        after = api.wait_for(f"/conferences/{conference['id']}", lambda c: c["recording_id"] == NIL, timeout=6)
        assert after["recording_ids"] == [recording_id]
        recording = api.wait_for(f"/recordings/{recording_id}", lambda r: r["status"] == "ended")
        assert recording["duration"] == 1.5 and recording["error"] == ""
        rate, samples = read_wav(api.call("GET", f"/recordingfiles/{recording_id}")[2])
        assert len(samples) == 1.5 * rate and has_tone(samples, rate, 900.0)
        status, body, _ = api.call("POST", f"/conferences/{conference['id']}/recording_stop")
        assert status == 409 and body["error"]["status"] == 409, "nothing left to stop"
    finally:
        person.close(hang_up=True)


def test_tracks_beside_the_mix_hold_each_participant_alone(server: RunningServer) -> None:
    api = server.api
    conference = api.create_conference("tracks")
    uri = server.direct_uri(conference["direct_hash"])
    people = [Participant(server.sip, uri, frequency, seconds=10) for frequency in (500.0, 1300.0)]
    try:
        joined = api.wait_for(f"/conferences/{conference['id']}", lambda c: len(c["conferencecall_ids"]) == 2)
        status, body, _ = api.call("POST", f"/conferences/{conference['id']}/recording_start", {"tracks": "yes"})
        assert status == 400 and "tracks" in body["error"]["message"]
        recording_id = api.post(f"/conferences/{conference['id']}/recording_start",
                                {"format": "wav", "tracks": True})["recording_id"]
        time.sleep(2.0)
        api.post(f"/conferences/{conference['id']}/recording_stop")
        recording = api.get(f"/recordings/{recording_id}")
        tracks = {track["conferencecall_id"]: track for track in recording["tracks"]}
        assert set(tracks) == set(joined["conferencecall_ids"])
        rate, mix = read_wav(api.call("GET", f"/recordingfiles/{recording_id}")[2])
        assert has_tone(mix, rate, 500.0) and has_tone(mix, rate, 1300.0)
        for conferencecall_id, track in tracks.items():
            call = api.get(f"/calls/{track['call_id']}")
            assert call["conferencecall_id"] == conferencecall_id
            mine = 500.0 if call["source"]["target"].endswith(f":{people[0].sip.party.local_port}") else 1300.0
            other = 1300.0 if mine == 500.0 else 500.0
            status, _, data = api.call("GET", f"/recordingfiles/{recording_id}/tracks/{conferencecall_id}")
            assert status == 200
            track_rate, samples = read_wav(data)
            assert abs(len(samples) / track_rate - track["duration"]) < 0.01 and track["duration"] > 1.5
            assert has_tone(samples, track_rate, mine) and lacks_tone(samples, track_rate, other)
        status, _, _ = api.call("GET", f"/recordingfiles/{recording_id}/tracks/{conference['id']}")
        assert status == 404
    finally:
        for person in people:
            person.close(hang_up=True)
