"""Mixer tick compute time without I/O: G.711 decode, per-conference sums, N-1, clip, G.711 encode.

Prints one row per (participants, conferences): the median and 99th percentile of the vectorised
tick, and of the per-participant Python work around it (RTP receive with its checks, jitter buffer pop,
RTP packetize).

    python benchmarks/mixer_tick.py
"""

from __future__ import annotations

import statistics
import time

import numpy as np

from mixer.mixdown import conference_totals, mix_minus, to_pcm16
from rtp.codecs import PCMU
from rtp.packet import RtpPacket
from rtp.session import RtpSession, StreamParams

FRAME = 160
RUNS = 200


def vectorised_tick(payloads: list[bytes], starts: np.ndarray, conference_of_row: np.ndarray) -> bytes:
    frames = PCMU.decode_frames(payloads).astype(np.float32)
    totals = conference_totals(frames, starts)
    outputs = to_pcm16(mix_minus(frames, totals, conference_of_row))
    return PCMU.encode_frames(outputs).tobytes()


def measure(participants: int, conferences: int) -> tuple[float, float, float]:
    rng = np.random.default_rng(1)
    payloads = [rng.integers(0, 256, FRAME, dtype=np.uint8).tobytes() for _ in range(participants)]
    sizes = np.full(conferences, participants // conferences)
    sizes[: participants % conferences] += 1
    starts = np.concatenate([[0], np.cumsum(sizes)[:-1]]).astype(np.intp)
    conference_of_row = np.repeat(np.arange(conferences), sizes)
    peer = ("127.0.0.1", 9)
    params = StreamParams(PCMU, 0, remote=peer, remote_reachable=True)
    sessions = [RtpSession(params, now=0.0) for _ in range(participants)]
    packets = [[RtpPacket(0, k, k * FRAME, 7, payload).to_bytes() for k in range(RUNS + 3)] for payload in payloads]
    for session, stream in zip(sessions, packets, strict=False):
        for k in range(3):
            session.receive(stream[k], peer, k * 0.02)
    times, per_leg = [], []
    for run in range(RUNS):
        start = time.perf_counter()
        vectorised_tick(payloads, starts, conference_of_row)
        times.append(time.perf_counter() - start)
        now = (run + 3) * 0.02
        start = time.perf_counter()
        for session, stream, payload in zip(sessions, packets, payloads, strict=False):
            session.receive(stream[run + 3], peer, now)  # one packet in, one frame out: steady state
            session.pop()
            session.packetize(payload, now)
        per_leg.append(time.perf_counter() - start)
    times.sort()
    return statistics.median(times) * 1e3, times[int(0.99 * len(times)) - 1] * 1e3, statistics.median(per_leg) * 1e3


def main() -> None:
    print(f"{'participants':>12} {'conferences':>11} {'mix p50 ms':>10} {'mix p99 ms':>10} {'per-leg ms':>10}")
    for participants, conferences in ((10, 1), (100, 1), (100, 10), (1000, 10), (1000, 100), (3000, 100)):
        p50, p99, legs = measure(participants, conferences)
        print(f"{participants:>12} {conferences:>11} {p50:>10.3f} {p99:>10.3f} {legs:>10.3f}")


if __name__ == "__main__":
    main()
