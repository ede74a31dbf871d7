"""Tests for confbridge/mixing.py through the media engine: N-1 of many participants against a plain reference,
encode once for those who contribute nothing, talk events, gains, recording caps and tracks.

Legs are opened on real loopback ports; packets are handed to each leg's session and the tick is driven by hand;
what the engine sends is read off each peer's socket.
"""

from __future__ import annotations

import asyncio
import socket
from collections.abc import Iterator
from pathlib import Path

import numpy as np
import numpy.typing as npt
import pytest

from confbridge.media import MediaEngine, MediaLeg
from confbridge.mixing import TalkingChanged
from mixer.limiter import CEILING, KNEE
from rtp.codecs import PCMA, PCMU, G711Codec
from rtp.packet import RtpPacket, parse_rtp
from rtp.ports import PortAllocator
from rtp.session import StreamParams
from tests.confbridge.test_media import FakeRecorder
from tests.helpers.audio import has_tone, lacks_tone, tone, tone_power_db
from tests.helpers.ports import free_rtp_range
from tests.helpers.rtp_peer import waiting_rtp

HOST = "127.0.0.1"
FRAME = 160
Pcm = npt.NDArray[np.int16]


class Peer:
    """A G.711 participant: sends given 20 ms frames, keeps every payload the engine sent it."""

    def __init__(self, media: MediaEngine, conference: str, codec: G711Codec, frames: Pcm,
                 events: list[tuple[str, bool]] | None = None) -> None:
        self.codec = codec
        self.frames = frames
        self.sock = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
        self.sock.bind((HOST, 0))
        self.sock.setblocking(False)
        self.address: tuple[str, int] = self.sock.getsockname()
        params = StreamParams(codec, codec.static_payload_type or 0, remote=self.address, remote_reachable=True,
                              signalling_host=HOST)

        def on_event(leg: MediaLeg, event: object) -> None:
            if events is not None and isinstance(event, TalkingChanged):
                events.append((leg.leg_id, event.talking))

        self.leg = media.open_leg(f"{conference}-{self.address[1]}", conference, params, on_event=on_event)
        self.payloads: list[bytes] = []

    def send(self, tick: int, now: float) -> None:
        payload = self.codec.encode_samples(self.frames[tick % len(self.frames)]).tobytes()
        packet = RtpPacket(self.leg.session.params.payload_type, tick, tick * FRAME, 0x7000 + self.address[1],
                           payload, marker=tick == 0)
        self.leg.session.receive(packet.to_bytes(), self.address, now)

    def collect(self) -> None:
        self.payloads += [parse_rtp(data).payload for data in waiting_rtp(self.sock)]

    def heard(self, last: int) -> Pcm:
        self.collect()
        return np.concatenate([self.codec.decode_codes(np.frombuffer(p, np.uint8)) for p in self.payloads[-last:]])


@pytest.fixture
def media() -> Iterator[MediaEngine]:
    loop = asyncio.new_event_loop()
    engine = MediaEngine(host=HOST, ports=PortAllocator(*free_rtp_range(400)), recorder=FakeRecorder(),  # type: ignore[arg-type]
                         loop=loop)
    yield engine
    engine.close()
    loop.close()


def run(media: MediaEngine, peers: list[Peer], ticks: int, start: int = 0) -> None:
    for tick in range(start, start + ticks):
        now = media.loop.time()
        for peer in peers:
            peer.send(tick, now)
        media.tick()
        for peer in peers:
            peer.collect()


def reference_limit(mix: npt.NDArray[np.float64]) -> npt.NDArray[np.float64]:
    """The limiter's curve written out plainly in double precision."""
    magnitude = np.abs(mix)
    over = (magnitude - KNEE) / (CEILING - KNEE)
    bent = KNEE + (CEILING - KNEE) * over / (1 + over)
    return np.where(magnitude > KNEE, np.sign(mix) * bent, mix)


def reference_heard(peers: list[Peer], muted: set[int], deaf: set[int], tick: int) -> list[npt.NDArray[np.uint8]]:
    """What each peer of one conference should be sent for the input frames of `tick`, computed the plain way:
    decode what each sent, add everyone else who is not muted, limit, round, encode in the listener's law."""
    decoded = [peer.codec.decode_codes(peer.codec.encode_samples(peer.frames[tick % len(peer.frames)]))
               .astype(np.float64) for peer in peers]
    heard = []
    for index, peer in enumerate(peers):
        mix = np.zeros(FRAME)
        if index not in deaf:
            for other, frame in enumerate(decoded):
                if other != index and other not in muted:
                    mix = mix + frame
        pcm = np.clip(np.rint(reference_limit(mix)), -32768, 32767).astype(np.int16)
        heard.append(peer.codec.encode_samples(pcm))
    return heard


def test_n_minus_one_of_many_participants_matches_a_plain_reference(media: MediaEngine) -> None:
    rng = np.random.default_rng(7)
    ticks = 30
    sizes = {"solo": 1, "pair": 2, "loud": 7, "big": 40}
    conferences: dict[str, list[Peer]] = {}
    for name, size in sizes.items():
        peers = []
        for index in range(size):
            level = 9000 if name == "loud" else 600
            frames = np.clip(rng.normal(0, level, (ticks, FRAME)), -32768, 32767).astype(np.int16)
            if name == "big" and index % 9 == 0:
                frames[:] = 0  # silent microphones: they share one output
            peers.append(Peer(media, name, PCMU if rng.random() < 0.6 else PCMA, frames))
        conferences[name] = peers
    muted = {"big": {3, 4}, "loud": {2}}
    deaf = {"big": {5}, "pair": {1}}
    for name, indices in muted.items():
        for index in indices:
            media.configure_leg(conferences[name][index].leg.leg_id, muted=True)
    for name, indices in deaf.items():
        for index in indices:
            media.configure_leg(conferences[name][index].leg.leg_id, deaf=True)
    everyone = [peer for peers in conferences.values() for peer in peers]
    run(media, everyone, ticks)

    def mismatches(delay: int) -> tuple[int, int, int]:
        """(codes that differ, codes that differ by more than one step, codes compared) for a playout delay."""
        differ = far = compared = 0
        for name, peers in conferences.items():
            for tick in range(delay, ticks):
                expected = reference_heard(peers, muted.get(name, set()), deaf.get(name, set()), tick - delay)
                for peer, codes in zip(peers, expected, strict=True):
                    got = np.frombuffer(peer.payloads[tick], np.uint8)
                    pcm_got = peer.codec.decode_codes(got).astype(np.int32)
                    pcm_expected = peer.codec.decode_codes(codes).astype(np.int32)
                    step = np.maximum(np.abs(pcm_expected) // 16, 8)  # a G.711 step is about 1/16 of the level
                    differ += int((got != codes).sum())
                    far += int((np.abs(pcm_got - pcm_expected) > step).sum())
                    compared += FRAME
        return differ, far, compared

    assert all(len(peer.payloads) == ticks for peer in everyone)
    results = {delay: mismatches(delay) for delay in range(3)}
    differ, far, compared = min(results.values(), key=lambda figures: figures[0])
    assert far == 0, results
    # Everything below the limiter's knee is exact; above it float32 and float64 may round a sample apart.
    assert differ <= compared // 2000, results
    loud = conferences["loud"][0]
    assert np.abs(loud.heard(20).astype(np.int32)).max() > KNEE, "the loud conference does reach the limiter"


def test_participants_who_contribute_nothing_share_one_encoded_frame(media: MediaEngine) -> None:
    talker_frames = tone(700.0, 1.0, rate=8000, amplitude=5000.0).reshape(-1, FRAME)
    silent = np.zeros((50, FRAME), np.int16)
    talker = Peer(media, "c", PCMU, talker_frames)
    listeners = [Peer(media, "c", PCMU, silent) for _ in range(5)]
    alaw = Peer(media, "c", PCMA, silent)
    run(media, [talker, *listeners, alaw], 20)
    # Each silent listener gets exactly the conference's total, so one encoding serves them all.
    for tick in range(5, 20):
        assert len({listener.payloads[tick] for listener in listeners}) == 1
    assert has_tone(listeners[0].heard(10), 8000, 700.0) and has_tone(alaw.heard(10), 8000, 700.0)
    assert lacks_tone(talker.heard(10), 8000, 700.0)


def test_talking_events_follow_a_tone_burst_with_hysteresis(media: MediaEngine) -> None:
    events: list[tuple[str, bool]] = []
    burst = np.zeros((100, FRAME), np.int16)
    burst[20:45] = tone(440.0, 0.5, rate=8000, amplitude=8000.0).reshape(-1, FRAME)
    burst[46:48] = tone(440.0, 0.04, rate=8000, amplitude=8000.0).reshape(-1, FRAME)  # a brief dip, not a stop
    talker = Peer(media, "c", PCMU, burst, events)
    quiet = Peer(media, "c", PCMU, np.zeros((100, FRAME), np.int16), events)
    changes: list[tuple[int, bool]] = []
    for tick in range(100):
        run(media, [talker, quiet], 1, start=tick)
        changes += [(tick, talking) for _, talking in events]
        events.clear()
    assert [talking for _, talking in changes] == [True, False]
    started, stopped = changes[0][0], changes[1][0]
    assert 20 <= started <= 24, changes
    assert 48 + 20 <= stopped <= 48 + 30, changes  # about half a second of quiet after the burst
    assert talker.leg.statistics()["talking"] is False and not quiet.leg.talking


def test_gains_in_and_out_change_levels_by_their_decibels(media: MediaEngine) -> None:
    frames = tone(600.0, 1.0, rate=8000, amplitude=4000.0).reshape(-1, FRAME)
    other = tone(1100.0, 1.0, rate=8000, amplitude=4000.0).reshape(-1, FRAME)
    talker, listener = Peer(media, "c", PCMU, frames), Peer(media, "c", PCMU, other)
    run(media, [talker, listener], 30)
    before = tone_power_db(listener.heard(20), 8000, 600.0)
    media.configure_leg(talker.leg.leg_id, gain_in_db=-12.0)
    run(media, [talker, listener], 30, start=30)
    quieter = tone_power_db(listener.heard(20), 8000, 600.0)
    assert quieter == pytest.approx(before - 12.0, abs=0.5)
    media.configure_leg(listener.leg.leg_id, gain_out_db=6.0)
    run(media, [talker, listener], 30, start=60)
    assert tone_power_db(listener.heard(20), 8000, 600.0) == pytest.approx(before - 6.0, abs=0.5)
    assert tone_power_db(talker.heard(20), 8000, 1100.0) == pytest.approx(before, abs=0.5), "others are unchanged"


def test_the_noise_gate_leaves_quiet_participants_out_of_the_sum(tmp_path: Path) -> None:
    loop = asyncio.new_event_loop()
    media = MediaEngine(host=HOST, ports=PortAllocator(*free_rtp_range()), recorder=FakeRecorder(),  # type: ignore[arg-type]
                        loop=loop, noise_gate=True)
    try:
        rng = np.random.default_rng(3)
        hiss = np.clip(rng.normal(0, 40, (60, FRAME)), -32768, 32767).astype(np.int16)  # about -58 dBFS
        talker = Peer(media, "c", PCMU, tone(900.0, 1.2, rate=8000, amplitude=6000.0).reshape(-1, FRAME))
        idle = [Peer(media, "c", PCMU, hiss) for _ in range(3)]
        run(media, [talker, *idle], 60)
        heard_by_talker = talker.heard(30).astype(np.int32)
        assert np.abs(heard_by_talker).max() <= 8, "the hiss of idle microphones is gated out"
        assert has_tone(idle[0].heard(30), 8000, 900.0)
        assert len({peer.payloads[-1] for peer in idle}) == 1, "gated participants share one output"
    finally:
        media.close()
        loop.close()


def test_a_recording_stops_at_its_maximum_duration_and_says_so(media: MediaEngine, tmp_path: Path) -> None:
    recorder = media.recorder
    assert isinstance(recorder, FakeRecorder)
    full: list[tuple[str, str]] = []
    media.on_recording_full = lambda conference, recording: full.append((conference, recording))
    peer = Peer(media, "c", PCMU, tone(500.0, 1.0, rate=8000, amplitude=3000.0).reshape(-1, FRAME))
    media.start_recording("c", "r", tmp_path / "r.wav", max_seconds=0.2)
    run(media, [peer], 25)
    media.loop.run_until_complete(asyncio.sleep(0))
    assert recorder.audio("r").size == 10 * 320, "exactly 0.2 s at 16 kHz, then nothing more"
    assert full == [("c", "r")]
    assert media.stop_recording("c").result(1).recording_id is not None


def test_tracks_carry_each_participant_alone(tmp_path: Path) -> None:
    from recorder.worker import RecorderWorker

    loop = asyncio.new_event_loop()
    worker = RecorderWorker()
    media = MediaEngine(host=HOST, ports=PortAllocator(*free_rtp_range()), recorder=worker, loop=loop)
    try:
        a = Peer(media, "c", PCMU, tone(500.0, 1.0, rate=8000, amplitude=5000.0).reshape(-1, FRAME))
        media.start_recording("c", "rec", tmp_path / "rec.wav", tracks=True)
        run(media, [a], 10)
        b = Peer(media, "c", PCMA, tone(1300.0, 1.0, rate=8000, amplitude=5000.0).reshape(-1, FRAME))
        run(media, [a, b], 40, start=10)
        result = media.stop_recording("c").result(5)
        tracks = {track.name: track for track in result.tracks}
        assert set(tracks) == {a.leg.leg_id, b.leg.leg_id}
        assert tracks[a.leg.leg_id].offset == 0.0 and tracks[b.leg.leg_id].offset == pytest.approx(0.2)
        import wave

        def samples(path: Path) -> Pcm:
            with wave.open(str(path)) as reader:
                return np.frombuffer(reader.readframes(reader.getnframes()), "<i2").astype(np.int16)

        mix, track_a, track_b = (samples(result.path), samples(tracks[a.leg.leg_id].path),
                                 samples(tracks[b.leg.leg_id].path))
        assert mix.size == 50 * 320 and track_a.size == 50 * 320 and track_b.size == 40 * 320
        assert has_tone(track_a[-6400:], 16000, 500.0) and lacks_tone(track_a[-6400:], 16000, 1300.0)
        assert has_tone(track_b[-6400:], 16000, 1300.0) and lacks_tone(track_b[-6400:], 16000, 500.0)
        assert has_tone(mix[-6400:], 16000, 500.0) and has_tone(mix[-6400:], 16000, 1300.0)
    finally:
        media.close()
        worker.stop()
        loop.close()


@pytest.mark.parametrize("codec", [PCMU, PCMA])
def test_a_lost_g711_frame_is_concealed_from_what_was_played_and_faded_back(media: MediaEngine,
                                                                            codec: G711Codec) -> None:
    signal = tone(440.0, 1.0, rate=8000, amplitude=8000.0)
    talker = Peer(media, "c", codec, signal.reshape(-1, FRAME))
    listener = Peer(media, "c", PCMU, np.zeros((50, FRAME), np.int16))
    for tick in range(40):
        now = media.loop.time()
        if tick != 25:  # this packet is lost on the way
            talker.send(tick, now)
        listener.send(tick, now)
        media.tick()
    heard = listener.heard(40).astype(np.int32)
    around = heard[15 * FRAME : 35 * FRAME]
    own_step = np.abs(np.diff(signal.astype(np.int32))).max()
    assert np.abs(np.diff(around)).max() <= 1.3 * own_step, "no click where the frame went missing"
    for frame in around.reshape(-1, FRAME):
        assert np.abs(frame).max() > 3000, "no silent frame: the gap is filled with the tone's own shape"
    # The gap ran the buffer dry (an underrun holds playout) and the next frame then found the hole: one or two.
    assert 1 <= talker.leg.statistics()["concealed_frames"] <= 2
