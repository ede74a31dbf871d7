"""The bridge's own latency for a click: how long audio sent by one participant takes to come out to another.

Why: capacity benchmarks say how many legs a tick can carry, not how long audio spends inside the bridge. A
conference feels laggy well before it breaks, and the components of the delay (jitter buffer, waiting for
the next mixer tick, processing) are easy to get wrong. This script measures the sum end to end, on loopback,
with the real server, and splits it into those parts.

What it does: start `confbridge serve` (SIP 5360, HTTP 8488, RTP 40000-44999, a temporary data directory),
create a conference through the REST API and call in two plain-RTP PCMU participants A and B with the SIP
helpers of `loadgen.py`. Both stream 20 ms packets on absolute deadlines (no jitter); A sends μ-law silence
(0xFF) except that every `--interval` one packet carries a click (three full-scale samples) at a known sample
offset; B sends silence. A's send time of each click packet is `time.monotonic()` right after `sendto`;
B's socket is watched with epoll (a short timeout, then a busy poll for the last 1.5 ms before each send
deadline) and every packet is stamped with `time.monotonic()` right after `recvmsg`. B's payloads are
decoded and the click is found by its first loud sample. The first `--warmup` seconds (jitter-buffer
priming) carry no clicks.

Latency of one click, the time its click sample left the server relative to when it left A:

    (t_arrival_B - t_sent_A) + (offset_in_A_packet - offset_in_B_packet) / 8000 s

(the bridge re-frames audio on its own grid; when the offsets agree this is packet arrival minus packet send).
Kernel receive timestamps (SO_TIMESTAMPNS) are read too, to show that the reading itself adds no delay.

Expected with no jitter, from the code: the jitter buffer primes as soon as its target delay (20 ms minimum:
one frame) is buffered, which on a clean stream is A's first packet, so each packet is mixed by the first tick
that starts after it arrived. The wait for that tick (the phase) is 0-20 ms and fixed for a call, both sides
running on steady 20 ms grids (each row here is a fresh call, so a fresh phase); then B's packet leaves after
the tick's work (about a millisecond for two legs, three with 200 more) and a loopback hop. A packet arriving
just after a tick started waits a whole tick. A packet that misses its tick altogether (an underrun: it was
late, or the phase sits right on the tick) makes the buffer hold its playout point, and that frame (20 ms)
stays until the buffer sheds it (a whole frame above its target for half a second, once the jitter estimate
the late packet raised has decayed: a second or two). So 1-22 ms, and up to 42 ms for a moment after a
disturbance: within the 60 ms target.

`--background N` adds rows with N silent participants in the same conference, streaming from a `loadgen.py`
subprocess; they join before A and B start streaming, and the measurement begins a second after all of them
are up. At the end of each row the server's `/metrics` tick lateness and compute quantiles (its last 30 s,
which in a background row include the joins) are shown, with late and skipped ticks counted separately for the
measured stream and for the background set-up. `--repeat R` runs R fresh call pairs per setting, each at a new
tick phase. On a busy machine `--realtime` runs this client (only) under SCHED_FIFO so that A's sends stay on
their deadlines; a row whose A sends were late by more than a millisecond is flagged, since late sends are
jitter and can cost a frame. `--glitch-ms X` makes that happen on purpose: the stream is held X ms once, just
before the first click.

    .venv/bin/python benchmarks/latency.py --clicks 40 --background 200 --repeat 3 --realtime
"""

from __future__ import annotations

import argparse
import bisect
import contextlib
import json
import math
import os
import secrets
import select
import signal
import socket
import statistics
import struct
import subprocess
import sys
import time
from collections import Counter
from collections.abc import Iterator
from dataclasses import dataclass, field
from types import FrameType
from typing import Any

import numpy as np
from bench_server import LOOPBACK, ROOT, BenchServer, read_metrics, stop_process
from loadgen import (
    FRAME,
    PACKET,
    SO_TIMESTAMPNS,
    Participant,
    kernel_time,
    open_participants,
    scrape_tick_figures,
    sip_setup,
    sip_teardown,
)

from rtp.g711 import ulaw_decode, ulaw_encode

SIP_PORT = 5360
HTTP_PORT = 8488
RTP_PORTS = (40000, 44999)
METRICS = f"http://{LOOPBACK}:{HTTP_PORT}/metrics"
TICK = 0.020
RATE = 8000
SILENCE = 0xFF
CLICK = ulaw_encode(np.array([32000, -32000, 32000], dtype=np.int16)).tobytes()
"""Three full-scale samples: loud enough to stand out after the bridge's soft limiter."""
THRESHOLD = 8000
"""A decoded sample at least this loud is the click (silence decodes to 0)."""
SPIN = 0.0015
"""Busy-poll this long before each send deadline (epoll timeouts have millisecond granularity)."""


# -- server and REST ------------------------------------------------------------------------------------------


def leg_media(server: BenchServer, conference_id: str, port: int) -> dict[str, Any]:
    """The `media` figures of the conference's participant whose RTP comes from `port` (empty if not found)."""
    conference = server.request("GET", f"/conferences/{conference_id}")
    for call_id in conference.get("conferencecall_ids", []):
        media: dict[str, Any] = server.request("GET", f"/conferencecalls/{call_id}").get("media", {})
        if media.get("remote") == f"{LOOPBACK}:{port}":
            return media
    return {}


# -- streaming ------------------------------------------------------------------------------------------------


@dataclass
class Capture:
    """What one row's stream saw: A's sends, its clicks, and every packet B received."""

    send_lateness: list[float] = field(default_factory=list)
    """A's send time minus its deadline, every tick (seconds)."""
    clicks: list[tuple[float, int]] = field(default_factory=list)
    """(monotonic time right after sendto, sample offset of the click in the packet)."""
    received: list[tuple[float, float, bytes]] = field(default_factory=list)
    """B: (monotonic time right after recvmsg, kernel receive time on the monotonic clock or nan, datagram)."""


def realtime_offset() -> float:
    """CLOCK_REALTIME minus CLOCK_MONOTONIC, from the tightest of a few paired readings."""
    best = (math.inf, 0.0)
    for _ in range(50):
        before = time.monotonic()
        real = time.time()
        after = time.monotonic()
        best = min(best, (after - before, real - (before + after) / 2))
    return best[1]


def monotonic_kernel_time(ancillary: list[tuple[int, int, bytes]], offset: float) -> float:
    """The SO_TIMESTAMPNS receive time of a datagram on the monotonic clock (nan when absent)."""
    received = kernel_time(ancillary)
    return received - offset if received is not None else math.nan


def stream(a: Participant, b: Participant, ticks: int, clicks: dict[int, int], delays: dict[int, float]) -> Capture:
    """A and B send a packet every 20 ms on absolute deadlines for `ticks` ticks; A's packet of tick k carries
    a click at offset `clicks[k]`. Everything B receives is time-stamped as it comes. `delays[k]` sends tick k's
    packets that many seconds after their deadline, on purpose."""
    capture = Capture()
    poller = select.epoll()
    poller.register(a.sock.fileno(), select.EPOLLIN)
    poller.register(b.sock.fileno(), select.EPOLLIN)
    b_fd = b.sock.fileno()
    ancillary_size = socket.CMSG_SPACE(16)
    offset = realtime_offset()
    assert a.server is not None and b.server is not None
    packets = {}
    for person in (a, b):
        buffer = bytearray(PACKET)
        struct.pack_into("!BBHII", buffer, 0, 0x80, 0, 0, 0, person.ssrc)
        buffer[12:] = bytes([SILENCE]) * FRAME
        packets[person.port] = buffer
    a_packet, b_packet = packets[a.port], packets[b.port]
    silence = bytes([SILENCE]) * FRAME
    received = capture.received
    for person in (a, b):  # what the bridge sent while we were setting up is not ours to time
        with contextlib.suppress(BlockingIOError):
            while True:
                person.sock.recv(2048)
    start = time.monotonic() + 0.05
    try:
        for tick in range(ticks):
            deadline = start + tick * TICK + delays.get(tick, 0.0)
            while True:
                remaining = deadline - time.monotonic()
                if remaining <= 0:
                    break
                for fd, _ in poller.poll(remaining - SPIN if remaining > SPIN else 0):
                    while True:
                        try:
                            if fd == b_fd:
                                data, ancillary, _, _ = b.sock.recvmsg(2048, ancillary_size)
                                now = time.monotonic()
                                received.append((now, monotonic_kernel_time(ancillary, offset), data))
                            else:
                                a.sock.recv(2048)
                        except BlockingIOError:
                            break
            sequence, timestamp = tick & 0xFFFF, (tick * FRAME) & 0xFFFFFFFF
            struct.pack_into("!HI", a_packet, 2, sequence, timestamp)
            struct.pack_into("!HI", b_packet, 2, sequence, timestamp)
            click = clicks.get(tick)
            if click is not None:
                a_packet[12 + click : 12 + click + len(CLICK)] = CLICK
            a.sock.sendto(a_packet, a.server)
            sent = time.monotonic()
            b.sock.sendto(b_packet, b.server)
            capture.send_lateness.append(sent - deadline)
            if click is not None:
                capture.clicks.append((sent, click))
                a_packet[12:] = silence
    finally:
        poller.close()
    return capture


@contextlib.contextmanager
def realtime(enabled: bool) -> Iterator[None]:
    """This process under SCHED_FIFO for the block (so processes started outside it, the server and the load
    generator, keep the normal policy: it is inherited); a no-op when not enabled or not permitted."""
    if not enabled:
        yield
        return
    try:
        os.sched_setscheduler(0, os.SCHED_FIFO, os.sched_param(10))
    except OSError:
        yield
        return
    try:
        yield
    finally:
        os.sched_setscheduler(0, os.SCHED_OTHER, os.sched_param(0))


# -- analysis -------------------------------------------------------------------------------------------------


@dataclass
class Result:
    """One row's figures."""

    background: int
    clicks_sent: int
    latencies: list[float] = field(default_factory=list)
    """Seconds, by the definition in the module docstring."""
    kernel_latencies: list[float] = field(default_factory=list)
    """The same with B's kernel receive time instead of the user-space read time."""
    phase: list[float] = field(default_factory=list)
    """Per click: the part of the wait for the carrying tick's best-case output below 20 ms (the tick phase, plus
    the least tick work and loopback seen around it)."""
    whole_ticks: list[int] = field(default_factory=list)
    """Per click: whole 20 ms periods in that wait."""
    output_delay: list[float] = field(default_factory=list)
    """Per click: how much later the carrying packet reached B than the best case of B's packets around it (the
    tick's own lateness and work beyond the least)."""
    offset_shift: list[int] = field(default_factory=list)
    """Per click: offset in B's packet minus offset in A's packet (samples)."""
    read_delay: list[float] = field(default_factory=list)
    """Every B packet: user-space read time minus kernel receive time."""
    send_lateness: list[float] = field(default_factory=list)
    """A's send time minus its deadline, every tick (seconds)."""
    spurious: int = 0
    jitter_buffer_ms: float | None = None
    underruns: int | None = None
    """A's jitter-buffer underruns while it streamed (its count after the stream, less the one its end makes)."""
    server: dict[str, float] = field(default_factory=dict)
    setup_ticks: dict[str, float] = field(default_factory=dict)
    """Tick counters while the background calls were set up (and the generator settled)."""
    stream_ticks: dict[str, float] = field(default_factory=dict)
    """Tick counters while the clicks were measured."""
    loadgen: dict[str, Any] = field(default_factory=dict)


def rtp_payload(datagram: bytes) -> bytes | None:
    """The PCMU payload of an RTP packet (None for anything else)."""
    if len(datagram) < 12 or datagram[0] >> 6 != 2 or datagram[1] & 0x7F != 0:
        return None
    start = 12 + 4 * (datagram[0] & 0x0F)
    if datagram[0] & 0x10 and len(datagram) >= start + 4:
        start += 4 + 4 * int.from_bytes(datagram[start + 2 : start + 4], "big")
    end = len(datagram) - (datagram[-1] if datagram[0] & 0x20 else 0)
    return datagram[start:end]


def tick_grid(capture: Capture) -> tuple[list[float], list[int]]:
    """B's packets as (arrival, extended RTP sequence number): one sequence number per mixer tick."""
    arrivals: list[float] = []
    sequences: list[int] = []
    for read, _, datagram in capture.received:
        if rtp_payload(datagram) is None:
            continue
        sequence = int.from_bytes(datagram[2:4], "big")
        if sequences:
            sequence = sequences[-1] + ((sequence - sequences[-1] + 0x8000) & 0xFFFF) - 0x8000
        arrivals.append(read)
        sequences.append(sequence)
    return arrivals, sequences


def analyse(capture: Capture, background: int) -> Result:
    """Find the clicks in B's stream, match each to the click A sent last before it, and split its latency into
    whole ticks, the tick phase and the carrying tick's own output delay.

    The split uses B's sequence numbers as tick numbers: `arrival - 20 ms * sequence`, at its least over the
    second around a click, is the best-case output time of the tick grid (skipped ticks shift it, hence local)."""
    result = Result(background, len(capture.clicks))
    result.send_lateness = capture.send_lateness
    result.read_delay = [read - kernel for read, kernel, _ in capture.received if not math.isnan(kernel)]
    arrivals, sequences = tick_grid(capture)
    grid = np.array(arrivals) - TICK * np.array(sequences, dtype=np.float64)
    sent_times = [sent for sent, _ in capture.clicks]
    matched: set[int] = set()
    last_detection = -math.inf
    for read, kernel, datagram in capture.received:
        payload = rtp_payload(datagram)
        if not payload:
            continue
        loud = np.flatnonzero(np.abs(ulaw_decode(np.frombuffer(payload, dtype=np.uint8)).astype(np.int32))
                              >= THRESHOLD)
        if loud.size == 0 or read - last_detection < 0.2:
            continue
        last_detection = read
        click = bisect.bisect_right(sent_times, read) - 1
        if click < 0 or click in matched or read - sent_times[click] > 0.45:
            result.spurious += 1
            continue
        matched.add(click)
        sent, a_offset = capture.clicks[click]
        b_offset = int(loud[0])
        correction = (a_offset - b_offset) / RATE
        result.latencies.append(read - sent + correction)
        if not math.isnan(kernel):
            result.kernel_latencies.append(kernel - sent + correction)
        result.offset_shift.append(b_offset - a_offset)
        index = bisect.bisect_left(arrivals, read)
        low, high = bisect.bisect_left(arrivals, read - 0.5), bisect.bisect_right(arrivals, read + 0.5)
        best = float(grid[low:high].min()) + TICK * sequences[index]
        wait = best - sent + correction
        result.output_delay.append(read - best)
        result.whole_ticks.append(max(0, math.floor(wait / TICK)))
        result.phase.append(wait - TICK * result.whole_ticks[-1])
    return result


# -- one row --------------------------------------------------------------------------------------------------


def start_background(count: int, uri: str, seconds: float) -> subprocess.Popen[bytes]:
    """`loadgen.py` with `count` silent participants in the conference, streaming for `seconds`."""
    command = [sys.executable, str(ROOT / "benchmarks" / "loadgen.py"), "--sip", f"{LOOPBACK}:{SIP_PORT}",
               "--uri", uri, "-n", str(count), "--seconds", f"{seconds:.1f}", "--warmup", "0", "--talkers", "0",
               "--setup-rate", "200"]
    return subprocess.Popen(command, cwd=ROOT, stdin=subprocess.DEVNULL, stdout=subprocess.PIPE,
                            stderr=subprocess.PIPE)


def wait_for_legs(count: int, loadgen: subprocess.Popen[bytes], timeout: float) -> None:
    """Until the server has `count` live media legs (the background calls are up)."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if loadgen.poll() is not None:
            raise SystemExit(f"loadgen exited early: {loadgen.communicate()[1].decode(errors='replace')[-2000:]}")
        if read_metrics(METRICS).get("confbridge_media_legs", 0) >= count:
            return
        time.sleep(0.2)
    raise SystemExit(f"the background calls did not come up within {timeout:.0f} s")


def tick_counters() -> dict[str, float]:
    """The server's cumulative tick counters: ticks, late ticks (a period or more late), skipped ticks."""
    figures = read_metrics(METRICS)
    found: dict[str, float] = {}
    for key in ("ticks", "late_ticks", "skipped_ticks"):
        for name in (f"confbridge_mixer_{key}_total", f"confbridge_mixer_{key}"):
            if name in figures:
                found[key] = figures[name]
                break
    return found


def counter_delta(after: dict[str, float], before: dict[str, float]) -> dict[str, float]:
    """`after - before` per counter (the server's tick clock restarts when it had no conference: then `after`)."""
    if after.get("ticks", 0) < before.get("ticks", 0):
        return dict(after)
    return {key: value - before.get(key, 0) for key, value in after.items()}


def server_figures() -> dict[str, float]:
    """Tick lateness and compute quantiles (ms, the server's last 30 s) from `/metrics`."""
    figures = scrape_tick_figures(METRICS)
    return {**{f"lateness_{key}": value for key, value in figures["server_tick_lateness_ms"].items()},
            **{f"compute_{key}": value for key, value in figures["server_tick_compute_ms"].items()}}


def run_row(server: BenchServer, background: int, args: argparse.Namespace) -> Result:
    """A fresh conference and call pair (hence a fresh tick phase), optionally with background load."""
    conference = server.create_conference(f"latency-{background}")
    uri = server.direct_uri(conference)
    people = open_participants(2)
    a, b = people
    b.sock.setsockopt(socket.SOL_SOCKET, SO_TIMESTAMPNS, 1)
    sip: socket.socket | None = None
    loadgen: subprocess.Popen[bytes] | None = None
    loadgen_report: dict[str, Any] = {}
    finished = False
    click_every = max(1, round(args.interval / TICK))
    first_click = math.ceil(args.warmup / TICK)
    ticks = first_click + (args.clicks - 1) * click_every + round(0.8 / TICK)
    clicks = {first_click + i * click_every: 10 + (37 * i) % 140 for i in range(args.clicks)}
    try:
        sip = sip_setup(people, (LOOPBACK, SIP_PORT), uri, 50)
        setup_before = tick_counters()
        if background:
            loadgen = start_background(background, uri, ticks * TICK + 8)
            wait_for_legs(2 + background, loadgen, 20 + background / 50)
            time.sleep(1.0)  # let the generator's stream settle
        stream_before = tick_counters()
        glitch = {max(0, first_click - 5): args.glitch_ms / 1000} if args.glitch_ms else {}
        with realtime(args.realtime):
            capture = stream(a, b, ticks, clicks, glitch)
        stream_after = tick_counters()
        result = analyse(capture, background)
        result.setup_ticks = counter_delta(stream_before, setup_before)
        result.stream_ticks = counter_delta(stream_after, stream_before)
        time.sleep(0.1)  # a few ticks: A's stream has ended, which is one underrun, subtracted below
        media = leg_media(server, conference["id"], a.port)
        result.jitter_buffer_ms = media.get("jitter_buffer_ms")
        if "concealed_underruns" in media:
            result.underruns = max(0, int(media["concealed_underruns"]) - 1)
        result.server = server_figures()
        finished = True
    finally:
        if sip is not None:
            with contextlib.suppress(OSError):
                sip_teardown(sip, people, (LOOPBACK, SIP_PORT), uri)
            sip.close()
        for person in people:
            person.sock.close()
        if loadgen is not None:
            if finished:  # let it run out and hang up its calls, for its report
                with contextlib.suppress(subprocess.TimeoutExpired, ValueError, IndexError):
                    out, _ = loadgen.communicate(timeout=30)
                    loadgen_report = json.loads(out.decode().strip().splitlines()[-1])
            stop_process(loadgen)
        with contextlib.suppress(OSError):
            server.request("DELETE", f"/conferences/{conference['id']}")
    result.loadgen = loadgen_report
    return result


# -- report ---------------------------------------------------------------------------------------------------


def ms(values: list[float], quantile: float, digits: int = 1) -> str:
    """A quantile of seconds, in ms."""
    return f"{1000 * float(np.percentile(values, quantile)):.{digits}f}" if values else "-"


def number(value: float | None, digits: int = 1) -> str:
    """A figure or a dash."""
    return "-" if value is None else f"{value:.{digits}f}"


def tick_text(counters: dict[str, float]) -> str:
    """'late/skipped of ticks'."""
    if not counters:
        return "-"
    return (f"{counters.get('late_ticks', 0):.0f}/{counters.get('skipped_ticks', 0):.0f} "
            f"of {counters.get('ticks', 0):.0f}")


def report(results: list[Result]) -> None:
    """The three tables: latency, its parts, the server's tick figures."""
    print("\n## Click latency A -> bridge -> B (ms)\n")
    print("| background | clicks found | p50 | p90 | min | max | p50 kernel rx |")
    print("| ---: | ---: | ---: | ---: | ---: | ---: | ---: |")
    for r in results:
        print(f"| {r.background} | {len(r.latencies)}/{r.clicks_sent} | {ms(r.latencies, 50)} | "
              f"{ms(r.latencies, 90)} | {ms(r.latencies, 0)} | {ms(r.latencies, 100)} | "
              f"{ms(r.kernel_latencies, 50)} |")
    print("\n## Where it goes\n")
    print("| background | phase p50 ms (min-max) | + whole ticks (clicks) | + output delay p50/max ms | A underruns "
          "| A jitter-buffer target ms | offset shift (clicks) | B read delay p50/max µs "
          "| A send lateness p99/max ms |")
    print("| ---: | ---: | :--- | ---: | ---: | ---: | :--- | ---: | ---: |")
    for r in results:
        held = ", ".join(f"{frames} ({count})" for frames, count in sorted(Counter(r.whole_ticks).items()))
        shift = ", ".join(f"{s:+d} ({c})" for s, c in sorted(Counter(r.offset_shift).items()))
        delay = (f"{1e6 * statistics.median(r.read_delay):.0f}/{1e6 * max(r.read_delay):.0f}"
                 if r.read_delay else "-")
        print(f"| {r.background} | {ms(r.phase, 50)} ({ms(r.phase, 0)}-{ms(r.phase, 100)}) | {held or '-'} | "
              f"{ms(r.output_delay, 50)}/{ms(r.output_delay, 100)} | {'-' if r.underruns is None else r.underruns} | "
              f"{number(r.jitter_buffer_ms)} | "
              f"{shift or '-'} | {delay} | "
              f"{ms(r.send_lateness, 99, 2)}/{ms(r.send_lateness, 100, 2)} |")
    print("\n## Server /metrics at the end of each row (ms; quantiles over the server's last 30 s)\n")
    print("| background | tick lateness p50 | p99 | max | tick compute p50 | p99 | late/skipped ticks while measuring "
          "| late/skipped ticks during set-up |")
    print("| ---: | ---: | ---: | ---: | ---: | ---: | ---: | ---: |")
    for r in results:
        s, m, u = r.server, r.stream_ticks, r.setup_ticks
        print(f"| {r.background} | {number(s.get('lateness_p50'), 2)} | {number(s.get('lateness_p99'), 2)} | "
              f"{number(s.get('lateness_max'), 2)} | {number(s.get('compute_p50'), 2)} | "
              f"{number(s.get('compute_p99'), 2)} | {tick_text(m)} | {tick_text(u) if r.background else '-'} |")
    for r in results:
        if r.loadgen:
            g = r.loadgen
            print(f"\nbackground {r.background}: loadgen sent {g.get('sent')}, received {g.get('received')}, "
                  f"lost {g.get('lost')}, its CPU {g.get('generator_cpu_percent')} %, "
                  f"its send lateness {g.get('generator_send_lateness_ms')} ms")
        late_sends = float(np.percentile(r.send_lateness, 99)) if r.send_lateness else 0.0
        if late_sends > 0.001:
            print(f"background {r.background}: A's sends were late by {1000 * late_sends:.1f} ms at p99 (a busy"
                  " machine?): that is jitter, the jitter buffer may hold a frame more; try --realtime")
        if r.spurious:
            print(f"background {r.background}: {r.spurious} loud packets at B matched no click")
    print("\nlatency = (t_arrival_B - t_sent_A) + (offset_A - offset_B)/8000 = whole ticks x 20 ms + phase + output"
          " delay. B's RTP sequence numbers number the mixer ticks; the earliest arrivals against them give each"
          " tick's best-case output time. phase: from A's send to the best-case output of a tick, below 20 ms (the"
          " wait for the next tick, plus the least tick work and loopback); whole ticks: 0 when the click left with"
          " the first tick after A's packet arrived; 1 when the packet reached the server just after a tick had"
          " started (phase then within the tick's work time, a few ms), or when A's jitter buffer holds a frame:"
          " after an underrun (A underruns, while A streamed) or after skipped"
          " ticks, since the buffer shrinks back to one frame over its target, never below; output delay: how much"
          " later than best case the carrying tick's packet came (tick lateness and work).")


def revision() -> str:
    """The repository's commit, marked dirty when the working tree differs (the server under test)."""
    try:
        return subprocess.run(["git", "describe", "--always", "--dirty"], cwd=ROOT, capture_output=True, text=True,
                              timeout=5, check=True).stdout.strip()
    except (OSError, subprocess.SubprocessError):
        return "unknown"


def main() -> None:
    """Parse options, run the rows against a fresh server, print the tables, clean up."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--clicks", type=int, default=40, help="clicks per row")
    parser.add_argument("--interval", type=float, default=0.5, help="seconds between clicks")
    parser.add_argument("--warmup", type=float, default=1.0, help="seconds streamed before the first click")
    parser.add_argument("--background", type=int, default=0,
                        help="also run rows with this many silent participants streaming (0: no such rows)")
    parser.add_argument("--repeat", type=int, default=1, help="rows per setting (each a fresh call: a new phase)")
    parser.add_argument("--glitch-ms", type=float, default=0.0,
                        help="hold A's and B's stream this many ms once, 5 ticks before the first click (what "
                             "falls due meanwhile goes out at once), to see what one late packet does to what follows")
    parser.add_argument("--realtime", action="store_true",
                        help="stream from this client under SCHED_FIFO (the server and load generator stay at "
                             "normal priority), so its own sends and reads stay on time on a busy machine")
    args = parser.parse_args()
    if args.background > 2000:
        parser.error("--background is capped at 2000 (the RTP range holds 2500 legs)")

    def terminate(signum: int, _: FrameType | None) -> None:
        raise SystemExit(128 + signum)

    signal.signal(signal.SIGTERM, terminate)
    client = "normal priority"
    if args.realtime:
        try:
            with realtime(True):
                client = "SCHED_FIFO 10 while streaming" if os.sched_getscheduler(0) == os.SCHED_FIFO else client
        except OSError as exc:
            client = f"normal priority (SCHED_FIFO refused: {exc.strerror})"
    token = secrets.token_hex(16)
    load_before = os.getloadavg()[0]
    results: list[Result] = []
    with BenchServer(sip_port=SIP_PORT, http_port=HTTP_PORT, rtp_ports=RTP_PORTS, token=token) as server:
        settings = [0] + ([args.background] if args.background else [])
        for background in settings:
            for _ in range(args.repeat):
                result = run_row(server, background, args)
                results.append(result)
                print(f"background {background}: p50 {ms(result.latencies, 50)} ms over "
                      f"{len(result.latencies)}/{result.clicks_sent} clicks", file=sys.stderr)
    print(f"confbridge click latency, {os.cpu_count()} CPUs, loopback, PCMU 20 ms, "
          f"{'no jitter' if not args.glitch_ms else 'one glitch'}, "
          f"{args.clicks} clicks every {args.interval} s per row; load average before {load_before:.1f}, "
          f"after {os.getloadavg()[0]:.1f}; client at {client}, server at normal priority"
          + (f"; stream held {args.glitch_ms:g} ms once before the first click" if args.glitch_ms else "")
          + f"; confbridge {revision()}")
    report(results)


if __name__ == "__main__":
    main()
