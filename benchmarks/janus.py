"""confbridge and Janus AudioBridge side by side under the same load, in the same run.

For each N, a fresh confbridge (pinned to one core) and then a fresh Janus from Debian's `janus` package (pinned to
the same core, AudioBridge only, one 8 kHz room admitting plain-RTP participants) each get N PCMU participants
from the same load generator on the other core (see `capacity.py` for the figures). The table shows both; then
the ratio of Janus's CPU per participant to confbridge's (above 1.0: confbridge is cheaper) at every N both
carry, and the ratio of the largest N each carries (Janus's lateness is not visible from outside, so for both a
row holds when everyone hears a full stream with less than 0.1 % lost and the core is not saturated).

    python benchmarks/janus.py --participants 250,500,750,1000 --seconds 30
"""

from __future__ import annotations

from typing import Any

from capacity import (
    HEADER,
    LATENESS_LIMIT_MS,
    Ports,
    arguments,
    cpu_per_participant,
    format_row,
    holds,
    largest_holding,
    measure_confbridge,
    run_loadgen,
)
from janus_server import JanusServer

JOIN_SECONDS_PER_PARTICIPANT = 0.03
"""Janus answers each join after telling everyone already in the room: a thousand joins take about 20 s."""


def measure_janus(participants: int, *, seconds: float, warmup: float, talkers: float, server_cpu: int | None,
                  loadgen_cpu: int | None) -> dict[str, Any]:
    """One row: `participants` plain-RTP participants in one AudioBridge room of a fresh Janus."""
    with JanusServer(cpu=server_cpu) as janus:
        report = run_loadgen(["--janus", janus.url, "--room", str(janus.room), "-n", str(participants),
                              "--seconds", str(seconds), "--warmup", str(warmup), "--talkers", str(talkers),
                              "--server-pid", str(janus.pid)],
                             loadgen_cpu, timeout=seconds + warmup + participants * JOIN_SECONDS_PER_PARTICIPANT + 120)
    report["server"] = "janus"
    return report


def main() -> None:
    args = arguments(__doc__.splitlines()[0]).parse_args()
    ports = Ports()
    print(HEADER, flush=True)
    ours, theirs = [], []
    for count in args.participants:
        options = {"seconds": args.seconds, "warmup": args.warmup, "talkers": args.talkers,
                   "server_cpu": args.server_cpu, "loadgen_cpu": args.loadgen_cpu}
        ours.append(measure_confbridge(count, ports=ports, **options))
        print(format_row(ours[-1]), flush=True)
        theirs.append(measure_janus(count, **options))
        print(format_row(theirs[-1]), flush=True)
    print()
    print(f"{'N':>5} {'confbridge µs/part/s':>21} {'janus µs/part/s':>16} {'ratio janus/confbridge':>23}")
    for mine, janus in zip(ours, theirs, strict=True):
        both = holds(mine) and holds(janus)
        ratio = cpu_per_participant(janus) / cpu_per_participant(mine)
        print(f"{mine['participants']:>5} {cpu_per_participant(mine):>21.1f} {cpu_per_participant(janus):>16.1f} "
              f"{ratio:>22.2f}{'' if both else ' (not both holding)'}")
    best_ours, best_theirs = largest_holding(ours), largest_holding(theirs)
    print(f"largest N holding: confbridge {best_ours} (p99 tick lateness ≤ {LATENESS_LIMIT_MS} ms too), "
          f"janus {best_theirs}; ratio {best_ours / best_theirs if best_theirs else float('inf'):.2f}")


if __name__ == "__main__":
    main()
