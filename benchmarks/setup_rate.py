"""Call set-up rate: how many SIP calls per second the real server answers, and tears down, without failing any.

Why: the mixer and media benchmarks measure calls that already exist; this one measures getting them in and
out. SIPp (an implementation of SIP that is not ours) plays the callers: every call is an INVITE with a PCMU
offer on SIPp's own media port, optional 100/180, a 200 with our answer, ACK, a pause of `--pause` seconds
(no RTP is sent, so participants stay `joining`; `--pause 0` hangs up right after the ACK), BYE and its 200
(benchmarks/scenarios/uac_setup.xml). All calls go into one conference.

The script starts `python -m confbridge serve` itself (pinned with `taskset` to `--server-cpu`, SIPp to
`--sipp-cpu`), creates a conference over REST and, for every rate of `--rates`, runs SIPp with
`-r RATE -m RATE*SECONDS`. Per step it prints: calls placed, successful and failed (SIPp's stat file),
SIPp's retransmissions, the achieved rate (successful calls over the set-up window: from the first INVITE
sent to the last 200 received, read from SIPp's response-time trace), the server's CPU over the SIPp run
(utime+stime from /proc, 100 % = one core) on average and at its busiest second, per call, SIPp's own, and
what other programs took of the server's core ("others": a server that waits for its core answers late, so a
step with a high figure there measured the neighbours too), the INVITE-to-200 time (SIPp's
clock ticks in milliseconds), datagrams the kernel dropped on the server's and SIPp's SIP sockets (full receive
buffers: lost ACKs and BYEs), and the health check: the REST API still answers, and no participant is left
joining, joined or leaving once the server has had `--drain` seconds to clean up.

Lost datagrams are recovered by retransmission (SIPp's INVITE and BYE, our 200; the scenario matches responses
to their transaction, so a retransmitted 200 to the INVITE is not taken for the 200 to the BYE), so an
overloaded server shows first as retransmissions, long set-up times and an achieved rate below the target,
and only later as failed calls. `left`/`stuck` count participants still in the conference when SIPp ended /
after `--drain`. A step passes with no failed call and no participant left; it is also sustained when the
achieved rate is at least 90 % of the target.

    .venv/bin/python benchmarks/setup_rate.py                      # 50,100,200,300,400 calls/s, 5 s each
    .venv/bin/python benchmarks/setup_rate.py --rates 100,200 --seconds 10 --pause 0 --server-log-level INFO

Ports (loopback only): server SIP 5260, HTTP 8388, RTP 30000-39999; SIPp SIP 15060, media 15000-15003.
"""

from __future__ import annotations

import argparse
import csv
import os
import re
import resource
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import time
import urllib.parse
import urllib.request
from collections import Counter
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path

from bench_server import CLOCK_TICKS, LOOPBACK, BenchServer, pinned

SCENARIO = Path(__file__).resolve().parent / "scenarios" / "uac_setup.xml"
ACTIVE = ("joining", "joined", "leaving")
SIPP_SOCKET_BUFFER = 4 << 20
"""SIPp's socket buffers (its default, 64 KiB, drops bursts of responses; the kernel caps it at rmem_max)."""
RECV_TIMEOUT_MS = 32_000
"""SIPp gives up on a response after this long (as 64*T1 would), so no call waits forever."""


@dataclass
class Step:
    """What one SIPp run at one target rate gave."""

    rate: int
    calls: int
    created: int = 0
    successful: int = 0
    failed: int = 0
    retransmissions: int = 0
    achieved: float = 0.0
    server_cpu: float = 0.0
    server_cpu_peak: float = 0.0
    sipp_cpu: float = 0.0
    other_cpu: float = 0.0
    setup_ms: list[float] = field(default_factory=list)
    api_ok: bool = False
    active_after: int = -1
    stuck: int = -1
    drain_seconds: float = 0.0
    sipp_code: int = 0
    failures: dict[str, int] = field(default_factory=dict)
    unexpected: dict[str, int] = field(default_factory=dict)
    foreign_rtp_ports: int = 0
    server_drops: int = 0
    sipp_drops: int = 0
    cpu_ms_per_call: float = 0.0
    server_warnings: list[tuple[int, str]] = field(default_factory=list)

    @property
    def sustained(self) -> bool:
        """Clean, and the server kept up: at least 90 % of the target rate achieved."""
        return self.clean and self.achieved >= 0.9 * self.rate

    @property
    def clean(self) -> bool:
        """Every call placed and successful, none left in the server when SIPp ended, the API answering."""
        return (self.failed == 0 and self.successful == self.calls and self.api_ok and self.active_after == 0
                and self.stuck == 0 and self.sipp_code == 0)


# -- the server -----------------------------------------------------------------------------------------------


class Server(BenchServer):
    """The server under test, with what this benchmark reads of it besides the REST API."""

    def __init__(self, args: argparse.Namespace, data_dir: Path, token: str) -> None:
        low, high = map(int, args.rtp_ports.split("-"))
        super().__init__(sip_port=args.sip_port, http_port=args.http_port, rtp_ports=(low, high), token=token,
                         cpu=args.server_cpu, data_dir=data_dir, log_level=args.server_log_level)
        self.start()

    def active_participants(self) -> Counter[str] | None:
        """How many conferencecalls are joining, joined or leaving (None when the API does not answer)."""
        counts: Counter[str] = Counter()
        token = ""
        try:
            while True:
                page = self.request("GET", "/conferencecalls?page_size=100"
                                    + (f"&page_token={urllib.parse.quote(token)}" if token else ""), timeout=10.0)
                counts.update(item["status"] for item in page["result"] if item["status"] in ACTIVE)
                token = page.get("next_page_token") or ""
                if not page["result"] or not token:
                    return counts
        except (OSError, ValueError, KeyError):
            return None

    def foreign_rtp_ports(self, ports: str) -> int:
        """How many UDP ports of the server's RTP range other programs hold (the server skips those)."""
        low, high = map(int, ports.split("-"))
        ours = set()
        for fd in Path(f"/proc/{self.pid}/fd").iterdir():
            try:
                ours.add(os.readlink(fd))
            except OSError:
                continue
        count = 0
        for line in Path("/proc/net/udp").read_text().splitlines()[1:]:
            fields = line.split()
            if low <= int(fields[1].rsplit(":", 1)[1], 16) <= high and f"socket:[{fields[9]}]" not in ours:
                count += 1
        return count

    def log_size(self) -> int:
        """The log's current length, to read what a step added."""
        return self.log_path.stat().st_size if self.log_path.exists() else 0

    def warnings_since(self, offset: int) -> list[tuple[int, str]]:
        """WARNING/ERROR lines logged after `offset`, with Call-IDs, ids and numbers blanked, most frequent first."""
        with open(self.log_path, "rb") as log:
            log.seek(offset)
            text = log.read().decode(errors="replace")
        kinds: Counter[str] = Counter()
        for line in text.splitlines():
            if " WARNING " in line or " ERROR " in line or line.startswith("Traceback"):
                line = re.sub(r"^\S+ \S+ ", "", line)
                line = re.sub(r"Call-ID \S+", "Call-ID *", line)
                line = re.sub(r"[0-9a-f]{8}-[0-9a-f-]{27}", "<id>", line)
                kinds[re.sub(r"\d+", "N", line)[:150]] += 1
        return [(count, kind) for kind, count in kinds.most_common()]


def busy_seconds(cpu: int) -> float:
    """CPU seconds core `cpu` (all cores for a negative `cpu`) spent busy since boot, from /proc/stat."""
    name = f"cpu{cpu}" if cpu >= 0 else "cpu"
    for line in Path("/proc/stat").read_text().splitlines():
        fields = line.split()
        if fields[0] == name:
            ticks = [int(value) for value in fields[1:9]]
            return (sum(ticks) - ticks[3] - ticks[4]) / CLOCK_TICKS  # less idle and iowait
    raise RuntimeError(f"no {name} in /proc/stat")


def udp_drops(port: int) -> int:
    """Datagrams the kernel dropped (receive buffer full) on the UDP sockets bound to `port`, from /proc/net/udp."""
    total = 0
    for line in Path("/proc/net/udp").read_text().splitlines()[1:]:
        fields = line.split()
        if int(fields[1].rsplit(":", 1)[1], 16) == port:
            total += int(fields[-1])
    return total


# -- SIPp -----------------------------------------------------------------------------------------------------


def run_step(args: argparse.Namespace, server: Server, target: str, rate: int, work: Path) -> Step:
    """One SIPp run of `rate * seconds` calls at `rate` calls/s, measured, then the server's health check."""
    calls = max(10, round(rate * args.seconds))
    step = Step(rate, calls)
    work.mkdir(parents=True)
    pause_ms = round(args.pause * 1000)
    sipp_timeout = args.seconds + args.pause + 2 * RECV_TIMEOUT_MS / 1000 + 30
    command = [shutil.which("sipp") or "sipp", f"{LOOPBACK}:{args.sip_port}", "-sf", str(SCENARIO),
               "-s", target.split(":", 1)[1].split("@", 1)[0], "-t", "u1", "-i", LOOPBACK,
               "-p", str(args.sipp_port), "-mp", str(args.sipp_media_port), "-r", str(rate), "-rp", "1000",
               "-m", str(calls), "-l", str(calls), "-d", str(pause_ms), "-recv_timeout", str(RECV_TIMEOUT_MS),
               "-buff_size", str(SIPP_SOCKET_BUFFER),
               "-timeout", f"{sipp_timeout:.0f}s", "-timeout_error", "-nostdin",
               "-trace_stat", "-stf", str(work / "stat.csv"), "-fd", "1",
               "-trace_rtt", "-rtt_freq", "1", "-trace_err", "-error_file", str(work / "errors.log"),
               "-trace_screen", "-screen_file", str(work / "screen.log")]
    log_offset = server.log_size()
    step.foreign_rtp_ports = server.foreign_rtp_ports(args.rtp_ports)
    children_before = resource.getrusage(resource.RUSAGE_CHILDREN)
    host_before, cpu_before, started = busy_seconds(args.server_cpu), server.cpu_seconds(), time.monotonic()
    drops_before = udp_drops(args.sip_port)
    with open(work / "stdout.log", "wb") as out:
        sipp = subprocess.Popen(pinned(command, args.sipp_cpu), stdin=subprocess.DEVNULL, stdout=out,
                                stderr=subprocess.STDOUT, cwd=work)
        samples = [(started, cpu_before)]
        try:
            while sipp.poll() is None and time.monotonic() - started < sipp_timeout + 15:
                step.sipp_drops = max(step.sipp_drops, udp_drops(args.sipp_port))  # its socket goes when it exits
                time.sleep(0.25)
                samples.append((time.monotonic(), server.cpu_seconds()))
        finally:
            if sipp.poll() is None:
                sipp.kill()
            step.sipp_code = sipp.wait()
    elapsed = time.monotonic() - started
    server_cpu = server.cpu_seconds() - cpu_before
    step.server_cpu = 100 * server_cpu / elapsed
    step.server_cpu_peak = peak_cpu(samples)
    step.server_drops = udp_drops(args.sip_port) - drops_before
    children_after = resource.getrusage(resource.RUSAGE_CHILDREN)
    step.sipp_cpu = 100 * (children_after.ru_utime + children_after.ru_stime - children_before.ru_utime
                           - children_before.ru_stime) / elapsed
    # what else ran on the server's core (on the whole host, less SIPp, when the server is not pinned)
    others = 100 * (busy_seconds(args.server_cpu) - host_before) / elapsed - step.server_cpu
    step.other_cpu = max(0.0, others - (step.sipp_cpu if args.server_cpu < 0 else 0.0))
    read_stats(step, work)
    step.cpu_ms_per_call = 1000 * server_cpu / step.created if step.created else 0.0
    step.unexpected = unexpected_messages(work / "errors.log")
    step.achieved = setup_window_rate(step, work, elapsed, args.pause)
    check_health(step, server, args.drain)
    step.server_warnings = server.warnings_since(log_offset)
    return step


def read_stats(step: Step, work: Path) -> None:
    """Calls created, successful, failed (by reason) and retransmissions from the last row of SIPp's stat file."""
    path = work / "stat.csv"
    if not path.exists():
        return
    rows = [row for row in csv.reader(path.read_text(errors="replace").splitlines(), delimiter=";") if row]
    if len(rows) < 2:
        return
    final = dict(zip(rows[0], rows[-1], strict=False))

    def number(name: str) -> int:
        try:
            return int(float(final.get(name, "0") or 0))
        except ValueError:
            return 0

    step.created = number("TotalCallCreated")
    step.successful = number("SuccessfulCall(C)")
    step.failed = number("FailedCall(C)")
    step.retransmissions = number("Retransmissions(C)")
    step.failures = {name[len("Failed"):-3]: number(name) for name in rows[0]
                     if name.startswith("Failed") and name.endswith("(C)") and name != "FailedCall(C)" and number(name)}
    for name in ("DeadCallMsgs(C)", "OutOfCallMsgs(C)", "FatalErrors(C)", "WatchdogMajor(C)"):
        if number(name):
            step.failures[name[:-3]] = number(name)


def peak_cpu(samples: list[tuple[float, float]], window: float = 1.0) -> float:
    """The highest CPU % over any `window` seconds of (time, CPU seconds) samples."""
    peak, j = 0.0, 0
    for i, (start, cpu) in enumerate(samples):
        j = max(j, i + 1)
        while j < len(samples) and samples[j][0] - start < window:
            j += 1
        if j < len(samples):
            peak = max(peak, 100 * (samples[j][1] - cpu) / (samples[j][0] - start))
    return peak


def unexpected_messages(path: Path) -> dict[str, int]:
    """What SIPp aborted calls on ('503 Service Unavailable', 'BYE', ...), counted, from its error file."""
    if not path.exists():
        return {}
    found = re.findall(r"Aborting call on unexpected message.*?received '(?:SIP/2\.0 (\d+ [^\r\n]*)|([A-Z]+) )",
                       path.read_text(errors="replace"))
    return dict(Counter(status or method for status, method in found).most_common())


def setup_window_rate(step: Step, work: Path, elapsed: float, pause: float) -> float:
    """Successful calls per second of the set-up window (first INVITE sent to last 200 received).

    The window is read from SIPp's response-time trace (date of each 200, in ms since SIPp started, and its
    INVITE-to-200 time); without it, the SIPp run time less the pause is used.
    """
    answers: list[tuple[float, float]] = []
    for path in work.glob("*_rtt.csv"):
        for line in path.read_text(errors="replace").splitlines()[1:]:
            parts = line.split(";")
            if len(parts) >= 3 and parts[2].strip() == "1":
                answers.append((float(parts[0]), float(parts[1])))
    step.setup_ms = sorted(rtt for _, rtt in answers)
    if len(answers) >= 2:
        window = (max(date for date, _ in answers) - min(date - rtt for date, rtt in answers)) / 1000
    else:
        window = elapsed - pause
    return step.successful / window if window > 0 else 0.0


def check_health(step: Step, server: Server, drain: float) -> None:
    """The REST API answers, and within `drain` seconds no participant is left joining, joined or leaving."""
    started = time.monotonic()
    while True:
        counts = server.active_participants()
        step.api_ok = counts is not None and server.running
        step.stuck = -1 if counts is None else sum(counts.values())
        if step.active_after < 0:
            step.active_after = step.stuck
        if step.stuck == 0 or time.monotonic() - started > drain or not server.running:
            break
        time.sleep(1.0)
    step.drain_seconds = time.monotonic() - started


# -- set-up and report ----------------------------------------------------------------------------------------


def check_ports(args: argparse.Namespace) -> None:
    """Fail early when a port this benchmark needs is taken; warn about RTP ports others hold."""
    needed = [(args.sip_port, socket.SOCK_DGRAM), (args.sip_port, socket.SOCK_STREAM),
              (args.http_port, socket.SOCK_STREAM), (args.sipp_port, socket.SOCK_DGRAM),
              *((args.sipp_media_port + k, socket.SOCK_DGRAM) for k in range(4))]
    for port, kind in needed:
        with socket.socket(socket.AF_INET, kind) as sock:
            if kind == socket.SOCK_STREAM:  # as the server's listener does, so TIME_WAIT leftovers do not count
                sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
            try:
                sock.bind((LOOPBACK, port))
            except OSError as exc:
                protocol = "UDP" if kind == socket.SOCK_DGRAM else "TCP"
                raise SystemExit(f"port {port} ({protocol}) is busy: {exc}") from None
    low, high = map(int, args.rtp_ports.split("-"))
    busy = sum(1 for line in Path("/proc/net/udp").read_text().splitlines()[1:]
               if low <= int(line.split()[1].rsplit(":", 1)[1], 16) <= high)
    if busy:
        print(f"warning: {busy} UDP ports in {args.rtp_ports} are held by other programs; the server skips them",
              file=sys.stderr)


def percentile(values: list[float], fraction: float) -> float:
    """The `fraction` quantile of sorted `values` (nearest rank)."""
    return values[min(len(values) - 1, max(0, round(fraction * len(values)) - 1))] if values else float("nan")


def print_table(steps: list[Step], idle_cpu: float, args: argparse.Namespace) -> None:
    """The results table, then the notes on failed steps and the verdict."""
    print(f"\nset-up rate: INVITE/200/ACK, {args.pause:g} s pause, BYE/200; one conference; server on CPU "
          f"{args.server_cpu}, SIPp on CPU {args.sipp_cpu}; idle server CPU {idle_cpu:.1f} %")
    columns = [("target/s", 8), ("calls", 6), ("ok", 6), ("failed", 6), ("retrans", 7), ("achieved/s", 10),
               ("server CPU %", 12), ("peak %", 6), ("CPU ms/call", 11), ("SIPp CPU %", 10), ("others %", 8),
               ("p50 ms", 6), ("p95 ms", 6), ("max ms", 6), ("drops", 9), ("API", 4), ("left", 5), ("stuck", 5),
               ("drain s", 7)]
    print(" ".join(f"{name:>{width}}" for name, width in columns))
    for s in steps:
        cells = [str(s.rate), str(s.calls), str(s.successful), str(s.failed), str(s.retransmissions),
                 f"{s.achieved:.1f}", f"{s.server_cpu:.1f}", f"{s.server_cpu_peak:.0f}", f"{s.cpu_ms_per_call:.2f}",
                 f"{s.sipp_cpu:.1f}", f"{s.other_cpu:.0f}", f"{percentile(s.setup_ms, 0.5):.0f}",
                 f"{percentile(s.setup_ms, 0.95):.0f}", f"{max(s.setup_ms, default=float('nan')):.0f}",
                 f"{s.server_drops}/{s.sipp_drops}", "yes" if s.api_ok else "NO", str(s.active_after), str(s.stuck),
                 f"{s.drain_seconds:.1f}"]
        print(" ".join(f"{cell:>{width}}" for cell, (_, width) in zip(cells, columns, strict=True)))
    for s in steps:
        if s.clean:
            continue
        reasons = ", ".join(f"{name} {count}" for name, count in s.failures.items()) or "none reported"
        print(f"\n{s.rate}/s: SIPp exit {s.sipp_code}, {s.created} calls created; SIPp failures: {reasons}")
        if s.unexpected:
            print("  calls aborted on: " + ", ".join(f"{what} x{count}" for what, count in s.unexpected.items()))
        if s.foreign_rtp_ports:
            print(f"  {s.foreign_rtp_ports} ports of the RTP range were held by other programs at the start")
        for count, kind in s.server_warnings[:5]:
            print(f"  server log x{count}: {kind}")
    disturbed = [str(s.rate) for s in steps if s.other_cpu > 20]
    if disturbed:
        print(f"\nother programs took more than 20 % of the server's core during the {', '.join(disturbed)}/s "
              "step(s): those figures are low")
    best = highest_passing(steps, lambda s: s.clean)
    if best is None:
        print("\nno rate passed with 0 failed calls")
    else:
        print(f"\nhighest rate with 0 failed calls (and none at lower rates): {best.rate} calls/s "
              f"(achieved {best.achieved:.1f}/s, server CPU {best.server_cpu:.0f} %)")
    kept_up = highest_passing(steps, lambda s: s.sustained)
    if kept_up is not None:
        print(f"highest rate sustained (0 failed, >= 90 % of the target achieved): {kept_up.rate} calls/s "
              f"(p95 set-up {percentile(kept_up.setup_ms, 0.95):.0f} ms)")
    else:
        print("no rate sustained (0 failed, >= 90 % of the target achieved)")
    met = kept_up is not None and kept_up.rate >= 200
    print(f"target, 200 calls/s sustained with 0 failures: {'met' if met else 'NOT met'}")


def highest_passing(steps: list[Step], passes: Callable[[Step], bool]) -> Step | None:
    """The step of the highest rate that passes, below which every step passes too."""
    best = None
    for step in sorted(steps, key=lambda s: s.rate):
        if not passes(step):
            break
        best = step
    return best


def parse_args() -> argparse.Namespace:
    """Command-line options."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rates", default="50,100,200,300,400", help="comma-separated target calls/s")
    parser.add_argument("--seconds", type=float, default=5.0, help="seconds of new calls per step (calls = rate*s)")
    parser.add_argument("--pause", type=float, default=1.0, help="seconds between ACK and BYE (0: hang up at once)")
    parser.add_argument("--drain", type=float, default=70.0,
                        help="seconds the server gets after a step to end every participant (a lost ACK and BYE "
                             "take 64*T1 plus a BYE timeout, about 64 s, to clear)")
    parser.add_argument("--rest", type=float, default=2.0, help="seconds of rest between steps")
    parser.add_argument("--server-cpu", type=int, default=0, help="CPU the server is pinned to (-1: no pinning)")
    parser.add_argument("--sipp-cpu", type=int, default=1, help="CPU SIPp is pinned to (-1: no pinning)")
    parser.add_argument("--server-log-level", default="WARNING", choices=["DEBUG", "INFO", "WARNING", "ERROR"])
    parser.add_argument("--sip-port", type=int, default=5260)
    parser.add_argument("--http-port", type=int, default=8388)
    parser.add_argument("--rtp-ports", default="30000-39999")
    parser.add_argument("--sipp-port", type=int, default=15060)
    parser.add_argument("--sipp-media-port", type=int, default=15000, help="SIPp's media port (it takes 4 from here)")
    parser.add_argument("--keep", action="store_true", help="keep the temporary directory (logs, SIPp traces)")
    args = parser.parse_args()
    args.rate_list = [int(rate) for rate in args.rates.split(",") if rate.strip()]
    return args


def main() -> None:
    args = parse_args()
    if shutil.which("sipp") is None:
        raise SystemExit("sipp is not installed (Debian package sip-tester)")
    check_ports(args)
    signal.signal(signal.SIGTERM, lambda *_: sys.exit(143))  # run the clean-up below on SIGTERM too
    work = Path(tempfile.mkdtemp(prefix="confbridge-setup-rate-"))
    server: Server | None = None
    steps: list[Step] = []
    try:
        server = Server(args, work / "data", token=os.urandom(12).hex())
        server.wait_ready()
        conference = server.request("POST", "/conferences", {"type": "conference", "name": "setup-rate"})
        target = f"sip:direct.{conference['direct_hash']}@{LOOPBACK}:{args.sip_port}"
        cpu_before, started = server.cpu_seconds(), time.monotonic()
        time.sleep(2.0)
        idle_cpu = 100 * (server.cpu_seconds() - cpu_before) / (time.monotonic() - started)
        print(f"server pid {server.pid}, conference {conference['id']}, target {target}", flush=True)
        for index, rate in enumerate(args.rate_list):
            step = run_step(args, server, target, rate, work / f"step-{index}-{rate}")
            steps.append(step)
            print(f"  {rate}/s: {step.successful}/{step.calls} ok, {step.failed} failed, {step.achieved:.1f}/s, "
                  f"server CPU {step.server_cpu:.0f} %, stuck {step.stuck}", flush=True)
            if not server.running:
                print(f"server exited with {server.process.returncode if server.process else None}:\n"
                      f"{server.log_tail()}", file=sys.stderr)
                break
            time.sleep(args.rest)
        print_table(steps, idle_cpu, args)
    finally:
        if server is not None:
            server.stop()
        if args.keep:
            print(f"kept {work}")
        else:
            shutil.rmtree(work, ignore_errors=True)


if __name__ == "__main__":
    main()
