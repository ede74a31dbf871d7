"""Tests for confbridge/media.py, tick by tick: mixing rates, N-1 across rates, mute/deaf/hold, recording rate.

Legs are opened on real loopback ports, but the tick is driven by hand and packets are handed to the legs
directly; what a leg sends is captured from its socket.
"""

from __future__ import annotations

import asyncio
import socket
import time
from collections.abc import Iterator
from concurrent.futures import Future
from pathlib import Path

import numpy as np
import numpy.typing as npt
import pytest

from confbridge.media import MediaEngine, MediaLeg
from recorder.worker import RecordingResult
from rtp.codecs import G722, OPUS, PCMA, PCMU, AudioCodec
from rtp.packet import RtpPacket, parse_rtp
from rtp.ports import PortAllocator
from rtp.session import StreamParams
from tests.helpers.audio import has_tone, lacks_tone, tone, tone_level_db
from tests.helpers.ports import free_rtp_range
from tests.helpers.rtp_peer import waiting_rtp

PEER_HOST = "127.0.0.1"


class FakeRecorder:
    """Keeps what the engine writes, per recording."""

    def __init__(self) -> None:
        self.rates: dict[str, int] = {}
        self.samples: dict[str, list[npt.NDArray[np.int16]]] = {}

    def open(self, recording_id: str, path: Path, sample_rate: int) -> None:
        self.rates[recording_id] = sample_rate
        self.samples[recording_id] = []

    def write(self, recording_id: str, samples: npt.NDArray[np.int16]) -> None:
        self.samples[recording_id].append(samples.copy())

    def audio(self, recording_id: str) -> npt.NDArray[np.int16]:
        return np.concatenate(self.samples[recording_id])

    def close(self, recording_id: str) -> Future[RecordingResult]:
        future: Future[RecordingResult] = Future()
        frames = sum(chunk.size for chunk in self.samples.get(recording_id, []))
        future.set_result(RecordingResult(recording_id, Path(recording_id), self.rates.get(recording_id, 0), frames))
        return future


class Stream:
    """The peer of one leg: a real UDP socket on loopback; it hands its packets straight to the session."""

    def __init__(self, leg: MediaLeg, codec: AudioCodec, sock: socket.socket, frequency: float) -> None:
        self.leg = leg
        self.codec = codec
        self.sock = sock
        self.address: tuple[str, int] = sock.getsockname()
        self.frequency = frequency
        self.encoder = codec.new_encoder()
        self.decoder = codec.new_decoder()
        self.signal = tone(frequency, 4.0, rate=codec.sample_rate, amplitude=6000.0)
        self.index = 0
        self.sent: list[bytes] = []
        """What the leg sent to this peer (read off the socket)."""

    def send_frame(self, now: float) -> None:
        frame = self.codec.frame_samples
        samples = self.signal[(self.index * frame) % (self.signal.size - frame):][:frame]
        payload = self.encoder.encode(samples)
        packet = RtpPacket(self.leg.session.params.payload_type, self.index, self.index * self.codec.frame_clock,
                           0x5000 + self.address[1], payload, marker=self.index == 0)
        self.leg.session.receive(packet.to_bytes(), self.address, now)
        self.index += 1

    def collect(self) -> None:
        self.sent += waiting_rtp(self.sock)

    def heard(self, last_frames: int = 50) -> npt.NDArray[np.int16]:
        self.collect()
        return np.concatenate([self.decoder.decode(parse_rtp(p).payload) for p in self.sent[-last_frames:]])


@pytest.fixture
def engine() -> Iterator[tuple[MediaEngine, FakeRecorder]]:
    loop = asyncio.new_event_loop()
    recorder = FakeRecorder()
    media = MediaEngine(host=PEER_HOST, ports=PortAllocator(*free_rtp_range()), recorder=recorder,  # type: ignore[arg-type]
                        loop=loop)
    yield media, recorder
    media.close()
    loop.close()
    for sock in SOCKETS:
        sock.close()
    SOCKETS.clear()


PAYLOAD_TYPES = {OPUS: 111, G722: 9, PCMU: 0, PCMA: 8}


def join(media: MediaEngine, conference: str, codec: AudioCodec, frequency: float) -> Stream:
    sock = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
    sock.bind((PEER_HOST, 0))
    sock.setblocking(False)
    SOCKETS.append(sock)
    params = StreamParams(codec, PAYLOAD_TYPES[codec], remote=sock.getsockname(), remote_reachable=True,
                          signalling_host=PEER_HOST)
    leg = media.open_leg(f"{conference}-{sock.getsockname()[1]}", conference, params)
    return Stream(leg, codec, sock, frequency)


SOCKETS: list[socket.socket] = []


def run(media: MediaEngine, streams: list[Stream], ticks: int, *, skip: tuple[Stream, ...] = ()) -> None:
    for _ in range(ticks):
        now = media.loop.time()
        for stream in streams:
            if stream not in skip:
                stream.send_frame(now)
        media.tick()
        for stream in streams:
            stream.collect()


def test_the_mixing_rate_is_the_highest_native_rate_and_follows_joins_and_leaves(
        engine: tuple[MediaEngine, FakeRecorder]) -> None:
    media, _ = engine
    assert media.conference_rate("c") is None
    narrow = join(media, "c", PCMU, 500.0)
    assert media.conference_rate("c") == 8000
    wide = join(media, "c", G722, 900.0)
    assert media.conference_rate("c") == 16000
    full = join(media, "c", OPUS, 1300.0)
    assert media.conference_rate("c") == 48000 and narrow.leg.mixing_rate == 48000
    media.close_leg(full.leg.leg_id)
    assert media.conference_rate("c") == 16000
    media.update_leg(wide.leg.leg_id, StreamParams(PCMA, 8, remote=wide.address, remote_reachable=True))
    assert media.conference_rate("c") == 8000 and wide.leg.codec is PCMA


def test_n_minus_one_across_three_rates(engine: tuple[MediaEngine, FakeRecorder]) -> None:
    media, _ = engine
    streams = [join(media, "c", PCMU, 500.0), join(media, "c", G722, 900.0),
               join(media, "c", OPUS, 1300.0)]
    run(media, streams, 60)
    for stream in streams:
        heard, rate = stream.heard(), stream.codec.sample_rate
        for other in streams:
            frequency = other.frequency
            if other is stream:
                assert lacks_tone(heard, rate, frequency), (stream.codec, tone_level_db(heard, rate, frequency))
            else:
                assert has_tone(heard, rate, frequency), (stream.codec, tone_level_db(heard, rate, frequency))


def test_conferences_at_different_rates_stay_apart(engine: tuple[MediaEngine, FakeRecorder]) -> None:
    media, _ = engine
    a = [join(media, "a", PCMU, 500.0), join(media, "a", PCMU, 900.0)]
    b = [join(media, "b", OPUS, 1300.0), join(media, "b", PCMA, 1700.0)]
    run(media, a + b, 40)
    assert lacks_tone(a[0].heard(), 8000, 1300.0) and lacks_tone(a[0].heard(), 8000, 1700.0)
    assert has_tone(a[0].heard(), 8000, 900.0)
    assert has_tone(b[1].heard(), 8000, 1300.0) and lacks_tone(b[1].heard(), 8000, 900.0)


def test_muted_is_not_heard_deaf_hears_nothing_and_not_sending_sends_nothing(
        engine: tuple[MediaEngine, FakeRecorder]) -> None:
    media, _ = engine
    talker, listener, held = (join(media, "c", PCMU, 500.0), join(media, "c", PCMU, 900.0),
                              join(media, "c", PCMU, 1300.0))
    streams = [talker, listener, held]
    media.configure_leg(talker.leg.leg_id, muted=True)
    media.configure_leg(listener.leg.leg_id, deaf=True)
    media.configure_leg(held.leg.leg_id, sending=False)
    run(media, streams, 40)
    assert not held.sent, "a leg that is not sending gets no packets"
    assert np.abs(listener.heard(30).astype(np.int32)).max() <= 8, "deaf: silence (packets still flow)"
    assert len(listener.sent) == 40
    heard_by_talker = talker.heard(30)
    assert has_tone(heard_by_talker, 8000, 900.0) and has_tone(heard_by_talker, 8000, 1300.0)
    assert talker.leg.statistics()["muted"] is True


def test_recording_is_written_at_its_own_rate_without_images(engine: tuple[MediaEngine, FakeRecorder],
                                                               tmp_path: Path) -> None:
    media, recorder = engine
    assert media.start_recording("c", "r1", tmp_path / "r1.wav") == 16000
    run(media, [], 5)  # an empty room records silence
    streams = [join(media, "c", PCMU, 1000.0), join(media, "c", OPUS, 5000.0)]
    run(media, streams, 60)
    audio = recorder.audio("r1")
    assert recorder.rates["r1"] == 16000 and audio.size == 65 * 320
    assert not audio[: 5 * 320].any()
    recent = audio[-40 * 320 :]
    assert has_tone(recent, 16000, 1000.0) and has_tone(recent, 16000, 5000.0)
    assert lacks_tone(recent, 16000, 7000.0), "1000 Hz from the 8 kHz leg comes without its image at 7000 Hz"


def test_closing_a_leg_reports_its_figures_and_keeps_totals(engine: tuple[MediaEngine, FakeRecorder]) -> None:
    media, _ = engine
    streams = [join(media, "c", PCMU, 500.0), join(media, "c", PCMU, 900.0)]
    run(media, streams, 10)
    figures = media.close_leg(streams[0].leg.leg_id)
    assert figures is not None and figures["packets_received"] == 10 and figures["packets_sent"] == 10
    assert media.close_leg(streams[0].leg.leg_id) is None
    assert media.closed_totals.legs == 1 and media.closed_totals.packets_received == 10


def test_a_stalled_loop_is_caught_up_tick_by_tick_without_drift(engine: tuple[MediaEngine, FakeRecorder]) -> None:
    media, _ = engine
    join(media, "c", PCMU, 500.0)  # a leg, so the engine ticks
    loop = media.loop

    async def stall() -> float:
        started = loop.time()
        await asyncio.sleep(0.2)
        time.sleep(0.09)  # something holds the loop for four and a half ticks
        await asyncio.sleep(0.3)
        return loop.time() - started

    elapsed = loop.run_until_complete(stall())
    assert media.clock is not None
    assert abs(media.ticks - elapsed / 0.02) <= 2, "ticks follow absolute deadlines: the stall is made up"
    lateness = media.lateness[: media.ticks]
    worst = int(np.argmax(lateness))
    caught_up = lateness[worst : worst + 5]
    assert 0.07 <= caught_up[0] <= 0.2, lateness
    assert np.all(np.diff(caught_up[:4]) < -0.012), ("each catch-up tick is one period less late", caught_up)
    assert media.lateness_figures()["lateness_max"] == pytest.approx(float(caught_up[0]))


def test_no_tick_runs_while_no_conference_has_media(engine: tuple[MediaEngine, FakeRecorder],
                                                    tmp_path: Path) -> None:
    media, _ = engine
    loop = media.loop
    loop.run_until_complete(asyncio.sleep(0.1))
    assert media.ticks == 0 and media._timer is None, "conferences without legs or recordings cost nothing"
    stream = join(media, "c", PCMU, 500.0)
    loop.run_until_complete(asyncio.sleep(0.1))
    assert media.ticks >= 3
    media.close_leg(stream.leg.leg_id)
    loop.run_until_complete(asyncio.sleep(0.05))
    stopped_at = media.ticks
    loop.run_until_complete(asyncio.sleep(0.1))
    assert media.ticks == stopped_at and media._timer is None, "the last leg gone, the tick stops"
    media.start_recording("empty", "r", tmp_path / "r.wav")  # a recording of an empty room does tick
    loop.run_until_complete(asyncio.sleep(0.1))
    assert media.ticks > stopped_at


def test_a_burst_of_joins_is_handled_a_few_milliseconds_per_tick(engine: tuple[MediaEngine, FakeRecorder]) -> None:
    media, _ = engine
    handled: list[str] = []

    def slow_join(leg: MediaLeg, event: object) -> None:  # a join writes to the database: say a millisecond
        time.sleep(0.001)
        handled.append(leg.leg_id)

    streams = [join(media, "c", PCMU, 500.0) for _ in range(40)]
    for stream in streams:
        stream.leg.on_event = slow_join
    now = media.loop.time()
    for stream in streams:
        stream.send_frame(now)  # everyone's audio starts at once
    durations = []
    for _ in range(20):
        started = time.perf_counter()
        media.tick()
        durations.append(time.perf_counter() - started)
    assert sorted(handled) == sorted(stream.leg.leg_id for stream in streams), "every join is handled"
    assert max(durations) < 0.025, "no tick holds the mix for all forty at once"
    assert len([d for d in durations if d > 0.003]) >= 5, "the joins are spread over several ticks"
