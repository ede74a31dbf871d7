"""Per-tick cost of `mixer.resample.BatchResampler`: 10, 100 and 1000 streams of 20 ms, history carried.

Prints one row per (conversion, streams): the median and 99th percentile over 200 ticks of one `process` call
converting every stream's 20 ms block, the way the mixer would call it once per tick.

    python benchmarks/resample.py
"""

from __future__ import annotations

import statistics
import time

import numpy as np

from mixer.resample import BatchResampler

RUNS = 200
WARMUP = 5
CONVERSIONS = ((8000, 48000), (48000, 8000), (8000, 16000))
STREAMS = (10, 100, 1000)


def measure(from_rate: int, to_rate: int, streams: int) -> tuple[float, float]:
    """Median and p99 milliseconds per tick."""
    resampler = BatchResampler(from_rate, to_rate)
    rng = np.random.default_rng(1)
    block = from_rate // 50
    ticks = [rng.integers(-32768, 32768, (streams, block)).astype(np.float32) for _ in range(8)]
    history = resampler.new_history(streams)
    times = []
    for run in range(WARMUP + RUNS):
        frames = ticks[run % len(ticks)]
        start = time.perf_counter()
        _, history = resampler.process(frames, history)
        if run >= WARMUP:
            times.append(time.perf_counter() - start)
    times.sort()
    return statistics.median(times) * 1e3, times[int(0.99 * len(times)) - 1] * 1e3


def main() -> None:
    """Print the table."""
    print(f"{'conversion':>14} {'streams':>7} {'p50 ms':>8} {'p99 ms':>8} {'p50 µs/stream':>13}")
    for from_rate, to_rate in CONVERSIONS:
        for streams in STREAMS:
            p50, p99 = measure(from_rate, to_rate, streams)
            name = f"{from_rate // 1000}k->{to_rate // 1000}k"
            print(f"{name:>14} {streams:>7} {p50:>8.3f} {p99:>8.3f} {p50 * 1e3 / streams:>13.2f}")


if __name__ == "__main__":
    main()
