"""Capacity: N PCMU participants over real UDP on loopback against the running server, one conference.

For each N a fresh `confbridge serve` is started pinned to one core, a conference is created over REST, and the
load generator (`loadgen.py`, pinned to the other core) calls in N participants and streams 20 ms packets for
`--seconds` after a warm-up. The generator reports its own CPU and send lateness (it must visibly not be the
bottleneck), what it received and lost, and the server's CPU and tick lateness over the counting window (read
from /proc and /metrics). A row "holds" when every participant hears a full stream with less than 0.1 % lost,
the server's core is not saturated and the p99 tick lateness is at most 2 ms.

    python benchmarks/capacity.py --participants 250,500,1000,1500 --seconds 30
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import time
from dataclasses import dataclass
from typing import Any

from bench_server import LOOPBACK, ROOT, BenchServer

PYTHON = sys.executable
TOKEN = "capacity-benchmark"
LOSS_LIMIT = 0.001
LATENESS_LIMIT_MS = 2.0


@dataclass(frozen=True)
class Ports:
    """Where the benchmarked confbridge listens."""

    sip: int = 5160
    http: int = 8188
    rtp: tuple[int, int] = (20000, 29999)


def confbridge(cpu: int | None, ports: Ports) -> BenchServer:
    """A fresh confbridge with its own data folder, pinned to `cpu` (use it with `with`)."""
    return BenchServer(sip_port=ports.sip, http_port=ports.http, rtp_ports=ports.rtp, token=TOKEN, cpu=cpu)


def run_loadgen(arguments: list[str], cpu: int | None, timeout: float) -> dict[str, Any]:
    """Run the load generator and return its JSON report."""
    command = [PYTHON, str(ROOT / "benchmarks" / "loadgen.py"), *arguments]
    if cpu is not None:
        command += ["--cpu", str(cpu)]
    done = subprocess.run(command, cwd=ROOT, capture_output=True, timeout=timeout, check=False,
                          env={**os.environ, "PYTHONPATH": str(ROOT)})
    if done.returncode != 0:
        raise RuntimeError(f"loadgen failed ({done.returncode}): {done.stderr.decode()[-2000:]}")
    report: dict[str, Any] = json.loads(done.stdout.decode().strip().splitlines()[-1])
    return report


def measure_confbridge(participants: int, *, seconds: float, warmup: float, talkers: float,
                       server_cpu: int | None, loadgen_cpu: int | None, ports: Ports) -> dict[str, Any]:
    """One row: `participants` callers in one conference of a fresh server."""
    with confbridge(server_cpu, ports) as server:
        uri = server.direct_uri(server.create_conference("capacity"))
        report = run_loadgen(["--sip", f"{LOOPBACK}:{ports.sip}", "--uri", uri, "-n", str(participants),
                              "--seconds", str(seconds), "--warmup", str(warmup), "--talkers", str(talkers),
                              "--server-pid", str(server.pid), "--metrics", server.metrics_url],
                             loadgen_cpu, timeout=seconds + warmup + participants / 20 + 120)
    report["server"] = "confbridge"
    return report


def measure_idle(conferences: int, seconds: float, server_cpu: int | None, ports: Ports) -> float:
    """The CPU (% of a core) of a server holding `conferences` conferences that nobody has called."""
    with confbridge(server_cpu, ports) as server:
        for _ in range(conferences):
            server.create_conference("idle")
        time.sleep(2.0)
        before, started = server.cpu_seconds(), time.monotonic()
        time.sleep(seconds)
        return 100 * (server.cpu_seconds() - before) / (time.monotonic() - started)


def holds(row: dict[str, Any]) -> bool:
    """Whether a row meets the bar: everyone hears a full stream (50 packets a second, less than 0.1 % lost by
    sequence), the server's core is not saturated, and (where the server tells) p99 tick lateness ≤ 2 ms."""
    lateness = row.get("server_tick_lateness_ms", {}).get("p99")
    return (row["participants_that_heard_nothing"] == 0 and row["lost"] <= LOSS_LIMIT * row["sent"]
            and row["received_per_participant_per_second"] >= 50 * (1 - LOSS_LIMIT) - 0.5
            and row["server_cpu_percent"] < 98 and (lateness is None or lateness <= LATENESS_LIMIT_MS))


HEADER = (f"{'server':>10} {'N':>5} {'srv CPU%':>8} {'µs/part/s':>9} {'late p50':>8} {'p99':>6} {'max':>6} "
          f"{'tick p50':>8} {'lost':>7} {'out jit':>7} {'gen CPU%':>8} {'gen p99':>7} {'holds':>5}")


def format_row(row: dict[str, Any]) -> str:
    """One line of the table (lateness and tick times in ms; 'out jit' is the mean jitter of what came back)."""
    lateness = row.get("server_tick_lateness_ms") or {}
    tick = row.get("server_tick_compute_ms") or {}

    def ms(value: float | None) -> str:
        return f"{value:.2f}" if value is not None else "-"

    return (f"{row['server']:>10} {row['participants']:>5} {row['server_cpu_percent']:>8.1f} "
            f"{cpu_per_participant(row):>9.1f} "
            f"{ms(lateness.get('p50')):>8} {ms(lateness.get('p99')):>6} {ms(lateness.get('max')):>6} "
            f"{ms(tick.get('p50')):>8} {row['lost']:>7} {row['received_jitter_ms']:>7.2f} "
            f"{row['generator_cpu_percent']:>8.1f} {row['generator_send_lateness_ms']['p99']:>7.2f} "
            f"{'yes' if holds(row) else 'no':>5}")


def cpu_per_participant(row: dict[str, Any]) -> float:
    """Server CPU in µs per participant per second."""
    return float(row["server_cpu_percent"]) / 100 * 1e6 / int(row["participants"])


def largest_holding(rows: list[dict[str, Any]]) -> int:
    """The largest N of the rows that hold (0 when none does)."""
    return max((row["participants"] for row in rows if holds(row)), default=0)


def parse_counts(text: str) -> list[int]:
    """'250,500,1000' as a list of counts."""
    return [int(part) for part in text.split(",") if part]


def arguments(description: str) -> argparse.ArgumentParser:
    """The options every capacity run shares."""
    parser = argparse.ArgumentParser(description=description)
    parser.add_argument("--participants", type=parse_counts, default=parse_counts("250,500,750,1000,1250,1500"))
    parser.add_argument("--seconds", type=float, default=30.0, help="counting window (the lateness window is 30 s)")
    parser.add_argument("--warmup", type=float, default=3.0)
    parser.add_argument("--talkers", type=float, default=0.05, help="fraction of participants sending a tone")
    parser.add_argument("--server-cpu", type=int, default=0)
    parser.add_argument("--loadgen-cpu", type=int, default=1)
    return parser


def main() -> None:
    args = arguments(__doc__.splitlines()[0]).parse_args()
    ports = Ports()
    idle = measure_idle(100, 10.0, args.server_cpu, ports)
    print(f"idle server with 100 empty conferences: {idle:.2f} % of a core", flush=True)
    print(HEADER, flush=True)
    rows = []
    for count in args.participants:
        row = measure_confbridge(count, seconds=args.seconds, warmup=args.warmup, talkers=args.talkers,
                                 server_cpu=args.server_cpu, loadgen_cpu=args.loadgen_cpu, ports=ports)
        rows.append(row)
        print(format_row(row), flush=True)
    print(f"largest N holding p99 tick lateness ≤ {LATENESS_LIMIT_MS} ms with < {LOSS_LIMIT:.1%} loss: "
          f"{largest_holding(rows)}")


if __name__ == "__main__":
    main()
