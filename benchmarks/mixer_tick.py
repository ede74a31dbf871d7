"""Mixer tick compute time without I/O, for many participants in one, ten or a hundred conferences.

Every participant is a PCMU leg of a real `MediaEngine` whose packets are handed to its session and whose sends
go to a null socket, so what is timed is the tick itself: ingest (RTP statistics and jitter buffers of every
stream), playout, G.711 decode, gains, talk detection, exact per-conference sums, N-1 with one shared output for
those who contribute nothing, the limiter, G.711 encode, RTP headers and the packet loop (to a socket that does
nothing). "core" is the numpy mixing the issue asks about (decode, mix, N-1, limit, encode); "tick" is all of it.

Two kinds of load: "speech" (two talkers per conference, everyone else silent, as in a real call) and "all" (every
participant talking at once: no output can be shared and the limiter works on every row).

    python benchmarks/mixer_tick.py
"""

from __future__ import annotations

import asyncio
import statistics
import time
from pathlib import Path

import numpy as np
import numpy.typing as npt

from confbridge.media import MediaEngine
from rtp.codecs import PCMU
from rtp.packet import RtpPacket
from rtp.ports import PortAllocator
from rtp.session import StreamParams

TICKS = 200
WARMUP = 30
CORE = ("decode", "mix", "encode")


class NullRecorder:
    """Takes the recorder's calls and does nothing."""

    def open(self, recording_id: str, path: Path, sample_rate: int) -> None:
        """Nothing to open."""

    def write(self, recording_id: str, samples: npt.NDArray[np.int16]) -> None:
        """Nothing to write."""


class NullSocket:
    """A socket whose sends go nowhere (the tick's own cost is what is measured)."""

    def sendto(self, data: bytes, destination: tuple[str, int]) -> int:
        """Pretend to send."""
        return len(data)


def measure(participants: int, conferences: int, talkers_per_conference: int | None) -> dict[str, float]:
    """Median and 99th percentile tick time, and the median of each stage, in ms."""
    loop = asyncio.new_event_loop()
    media = MediaEngine(host="127.0.0.1", ports=PortAllocator(20000, 29999), recorder=NullRecorder(),  # type: ignore[arg-type]
                        loop=loop)
    rng = np.random.default_rng(1)
    streams = []
    real_sockets = []
    per_conference = -(-participants // conferences)
    for index in range(participants):
        peer = ("127.0.0.1", 9)
        leg = media.open_leg(f"leg{index}", f"conference{index // per_conference}",
                             StreamParams(PCMU, 0, remote=peer, remote_reachable=True))
        real_sockets.append((leg.socket, leg.socket.sock))
        leg.socket.sock = NullSocket()  # type: ignore[assignment]
        talking = talkers_per_conference is None or index % per_conference < talkers_per_conference
        level = 2500.0 if talking else 0.0
        audio = np.clip(rng.normal(0, level, (TICKS, 160)), -32768, 32767).astype(np.int16)
        packets = [RtpPacket(0, tick, tick * 160, 1000 + index, PCMU.encode_samples(audio[tick]).tobytes())
                   .to_bytes() for tick in range(TICKS)]
        streams.append((leg.session, peer, packets))
    if media._timer is not None:  # the benchmark drives the tick itself
        media._timer.cancel()
        media._timer = None
    ticks, core = [], []
    stages: dict[str, list[float]] = {name: [] for name in media.mixer.stage_seconds}
    for tick in range(TICKS):
        now = loop.time()
        for session, peer, packets in streams:
            session.receive(packets[tick], peer, now)
        before = dict(media.mixer.stage_seconds)
        started = time.perf_counter()
        media.tick()
        elapsed = time.perf_counter() - started
        if tick >= WARMUP:
            ticks.append(elapsed)
            spent = {name: media.mixer.stage_seconds[name] - before[name] for name in before}
            core.append(sum(spent[name] for name in CORE))
            for name, seconds in spent.items():
                stages[name].append(seconds)
    for rtp_socket, sock in real_sockets:
        rtp_socket.sock = sock
    media.close()
    loop.close()
    ticks.sort()
    figures = {"tick_p50": statistics.median(ticks) * 1e3, "tick_p99": ticks[int(0.99 * len(ticks)) - 1] * 1e3,
               "core_p50": statistics.median(core) * 1e3}
    figures.update({name: statistics.median(values) * 1e3 for name, values in stages.items()})
    return figures


def main() -> None:
    cases = [(10, 1), (100, 1), (100, 10), (1000, 1), (1000, 10), (1000, 100), (3000, 10), (3000, 100)]
    stage_names = ("ingest", "playout", "decode", "mix", "encode", "send")
    print(f"{'load':>6} {'parts':>5} {'confs':>5} {'core p50':>8} {'tick p50':>8} {'tick p99':>8}  "
          + " ".join(f"{name:>7}" for name in stage_names) + "   (ms)")
    for load, talkers in (("speech", 2), ("all", None)):
        for participants, conferences in cases:
            figures = measure(participants, conferences, talkers)
            print(f"{load:>6} {participants:>5} {conferences:>5} {figures['core_p50']:>8.3f} "
                  f"{figures['tick_p50']:>8.3f} {figures['tick_p99']:>8.3f}  "
                  + " ".join(f"{figures[name]:>7.3f}" for name in stage_names), flush=True)


if __name__ == "__main__":
    main()
