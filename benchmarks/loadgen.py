"""A load generator for the capacity benchmarks: N plain-RTP PCMU participants on loopback, in one process.

It sets up its participants either as SIP calls to a confbridge conference (`--sip HOST:PORT --uri URI`)
or as plain-RTP participants of a Janus AudioBridge room (`--janus URL --room ID`), then streams 20 ms
PCMU packets from every participant on absolute deadlines for `--seconds`, receives everything sent back,
and prints one JSON object: its own CPU use, packets sent, received, expected and lost (by sequence gaps),
and how late its own sends were (so a report can show the generator was not the bottleneck).

A fraction of the participants (`--talkers`) send a tone; the others send PCMU silence, as the idle
microphones of a real conference do.

    python benchmarks/loadgen.py --sip 127.0.0.1:5060 --uri sip:direct.abc@127.0.0.1:5060 -n 500 --seconds 20
"""

from __future__ import annotations

import argparse
import gc
import json
import os
import resource
import secrets
import select
import socket
import struct
import sys
import time
import urllib.request
from dataclasses import dataclass, field
from typing import Any

import numpy as np
from bench_server import LOOPBACK, process_cpu_seconds, read_metrics

from rtp.g711 import ulaw_encode
from sip.errors import SipParseError
from sip.message import Response, parse_message

FRAME = 160
PACKET = 12 + FRAME
TICK = 0.020
MAX_DEVIATION = 1.0
"""Seconds off the stream's timing beyond which a packet is a stall, not jitter."""
SO_TIMESTAMPNS = getattr(socket, "SO_TIMESTAMPNS", 35)
"""Linux: kernel receive timestamps as a control message (the constant Python does not export)."""


@dataclass
class Participant:
    """One load participant: its RTP socket, where it sends, and what it got back."""

    sock: socket.socket
    port: int
    ssrc: int = field(default_factory=lambda: secrets.randbits(32))
    server: tuple[str, int] | None = None
    call_id: str = ""
    from_tag: str = ""
    to_tag: str = ""
    received: int = 0
    first_seq: int | None = None
    highest: int = 0
    """Extended highest sequence number received."""
    jitter: float = 0.0
    """RFC 3550 interarrival jitter of what the server sends, in seconds (kernel arrival times)."""
    last: tuple[float, int] | None = None
    """(arrival, RTP timestamp) of the previous packet received."""
    stalls: int = 0
    """Packets that came more than `MAX_DEVIATION` off the stream's timing (or with a kernel time out of order,
    as loopback timestamps can be under overload): counted, not folded into the jitter."""

    def count(self, data: bytes, ancillary: list[tuple[int, int, bytes]]) -> None:
        """One RTP packet from the server: sequence accounting and jitter."""
        sequence = (data[2] << 8) | data[3]
        if self.first_seq is None:
            self.first_seq = self.highest = sequence
            self.last = None
        else:
            delta = (sequence - self.highest) & 0xFFFF
            if delta < 0x8000:
                self.highest += delta
        self.received += 1
        arrival = kernel_time(ancillary)
        if arrival is None:
            return
        timestamp = int.from_bytes(data[4:8], "big")
        if self.last is not None and arrival >= self.last[0]:
            elapsed = ((timestamp - self.last[1] + (1 << 31)) & 0xFFFF_FFFF) - (1 << 31)
            deviation = abs(arrival - self.last[0] - elapsed / 8000)
            if deviation < MAX_DEVIATION:
                self.jitter += (deviation - self.jitter) / 16
            else:
                self.stalls += 1
        self.last = (arrival, timestamp)


def open_participants(count: int) -> list[Participant]:
    """`count` RTP sockets on loopback, non-blocking, with roomy receive buffers."""
    people = []
    for _ in range(count):
        sock = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
        sock.bind((LOOPBACK, 0))
        sock.setblocking(False)
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, 1 << 16)
        people.append(Participant(sock, sock.getsockname()[1]))
    return people


# -- SIP set-up (confbridge) ----------------------------------------------------------------------------------


def sdp(port: int) -> bytes:
    """A PCMU offer for an RTP port on loopback."""
    return (f"v=0\r\no=load {port} 1 IN IP4 {LOOPBACK}\r\ns=-\r\nc=IN IP4 {LOOPBACK}\r\nt=0 0\r\n"
            f"m=audio {port} RTP/AVP 0\r\na=rtpmap:0 PCMU/8000\r\na=ptime:20\r\na=sendrecv\r\n").encode()


def request(method: str, uri: str, person: Participant, sip_port: int, cseq: int, body: bytes = b"") -> bytes:
    """A request of one participant's dialog (the SIP socket is shared by every participant)."""
    to_tag = f";tag={person.to_tag}" if person.to_tag else ""
    lines = [
        f"{method} {uri} SIP/2.0",
        f"Via: SIP/2.0/UDP {LOOPBACK}:{sip_port};branch=z9hG4bK{secrets.token_hex(8)};rport",
        "Max-Forwards: 70",
        f"From: <sip:load{person.port}@{LOOPBACK}>;tag={person.from_tag}",
        f"To: <{uri}>{to_tag}",
        f"Call-ID: {person.call_id}",
        f"CSeq: {cseq} {method}",
        f"Contact: <sip:load{person.port}@{LOOPBACK}:{sip_port}>",
    ]
    if body:
        lines.append("Content-Type: application/sdp")
    lines.append(f"Content-Length: {len(body)}")
    return ("\r\n".join(lines) + "\r\n\r\n").encode() + body


def sip_setup(people: list[Participant], server: tuple[str, int], uri: str, per_second: float) -> socket.socket:
    """Call in every participant (INVITE, 200, ACK), at most `per_second` new calls a second."""
    sip = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
    sip.bind((LOOPBACK, 0))
    sip.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, 1 << 20)
    sip_port = sip.getsockname()[1]
    by_call: dict[str, Participant] = {}
    pending: dict[str, float] = {}
    for person in people:
        person.call_id, person.from_tag = secrets.token_hex(10), secrets.token_hex(4)
        by_call[person.call_id] = person
    queue = list(people)
    sip.settimeout(0.01)
    start = time.monotonic()
    sent = 0
    while queue or pending:
        now = time.monotonic()
        while queue and sent < (now - start) * per_second + 1:
            person = queue.pop(0)
            sip.sendto(request("INVITE", uri, person, sip_port, 1, sdp(person.port)), server)
            pending[person.call_id] = now
            sent += 1
        for call_id, since in list(pending.items()):
            if now - since > 2.0:  # lost on the way: ask again
                person = by_call[call_id]
                sip.sendto(request("INVITE", uri, person, sip_port, 1, sdp(person.port)), server)
                pending[call_id] = now
        try:
            data, _ = sip.recvfrom(65535)
        except TimeoutError:
            continue
        try:
            message = parse_message(data)
        except SipParseError:  # RTCP a participant's server leg sends to port+1, which may be this socket
            continue
        if not isinstance(message, Response) or message.cseq.method != "INVITE" or message.status_code < 200:
            continue
        person = by_call[message.call_id]
        if message.status_code >= 300:
            raise SystemExit(f"call {message.call_id} refused: {message.status_code}")
        person.to_tag = message.to_address.tag or ""
        body = message.body.decode()
        port = int(body.split("m=audio ")[1].split()[0])
        host = body.split("c=IN IP4 ")[1].split()[0]
        person.server = (host, port)
        sip.sendto(request("ACK", uri, person, sip_port, 1), server)
        pending.pop(message.call_id, None)
    return sip


def sip_teardown(sip: socket.socket, people: list[Participant], server: tuple[str, int], uri: str) -> None:
    """BYE every call (best effort; the server is stopped after the run anyway)."""
    sip_port = sip.getsockname()[1]
    for person in people:
        sip.sendto(request("BYE", uri, person, sip_port, 2), server)
    sip.settimeout(0.2)
    deadline = time.monotonic() + 5
    answered = 0
    while answered < len(people) and time.monotonic() < deadline:
        try:
            sip.recvfrom(65535)
            answered += 1
        except TimeoutError:
            continue


# -- Janus AudioBridge set-up ---------------------------------------------------------------------------------


def janus(url: str, body: dict[str, Any]) -> dict[str, Any]:
    """One Janus HTTP API request."""
    body = {"transaction": secrets.token_hex(6), **body}
    data = json.dumps(body).encode()
    with urllib.request.urlopen(urllib.request.Request(url, data=data, method="POST",
                                                       headers={"Content-Type": "application/json"}),
                                timeout=10) as response:
        result: dict[str, Any] = json.loads(response.read())
        return result


def janus_setup(people: list[Participant], url: str, room: int) -> None:
    """Join every participant to the AudioBridge room as a plain-RTP participant (one handle each)."""
    session = janus(url, {"janus": "create"})["data"]["id"]
    for person in people:
        handle = janus(f"{url}/{session}", {"janus": "attach", "plugin": "janus.plugin.audiobridge"})["data"]["id"]
        reply = janus(f"{url}/{session}/{handle}", {"janus": "message", "body": {
            "request": "join", "room": room, "display": f"load{person.port}", "codec": "pcmu",
            "rtp": {"ip": LOOPBACK, "port": person.port, "payload_type": 0}}})
        transaction = reply.get("transaction")
        while reply.get("janus") == "ack":  # Janus answers a join later, as an event on the session's long poll
            with urllib.request.urlopen(f"{url}/{session}?maxev=1000", timeout=40) as response:
                events = json.loads(response.read())
            for event in events if isinstance(events, list) else [events]:
                if event.get("transaction") == transaction:
                    reply = event
        joined = reply.get("plugindata", {}).get("data", {})
        if "rtp" not in joined:
            raise SystemExit(f"janus join failed: {reply}")
        person.server = (joined["rtp"]["ip"], joined["rtp"]["port"])
    # Keep the session alive for the run: Janus drops idle sessions after 60 s.
    person_session[0] = session


person_session: list[int] = [0]


def janus_keepalive(url: str) -> None:
    """Keep the HTTP session alive."""
    if person_session[0]:
        janus(f"{url}/{person_session[0]}", {"janus": "keepalive"})


# -- streaming ------------------------------------------------------------------------------------------------


def scrape_tick_figures(url: str) -> dict[str, dict[str, float]]:
    """confbridge's tick lateness and compute quantiles (over its last 30 s) from /metrics, in ms."""
    figures: dict[str, dict[str, float]] = {"server_tick_lateness_ms": {}, "server_tick_compute_ms": {}}
    names = {"confbridge_mixer_tick_lateness_seconds": "server_tick_lateness_ms",
             "confbridge_mixer_tick_compute_seconds": "server_tick_compute_ms"}
    keys = {"0.5": "p50", "0.99": "p99", "1": "max"}
    for series, value in read_metrics(url).items():
        name, _, rest = series.partition("{")
        if name in names and rest.startswith('quantile="'):
            figures[names[name]][keys[rest.split('"')[1]]] = round(value * 1000, 3)
    return figures


def kernel_time(ancillary: list[tuple[int, int, bytes]]) -> float | None:
    """The SO_TIMESTAMPNS receive time of a datagram (CLOCK_REALTIME seconds), None when the kernel gave none."""
    for level, kind, data in ancillary:
        if level == socket.SOL_SOCKET and kind == SO_TIMESTAMPNS and len(data) >= 16:
            seconds, nanoseconds = struct.unpack("qq", data[:16])
            return float(seconds + nanoseconds / 1e9)
    return None


def stream(people: list[Participant], warmup: float, seconds: float, talkers: float, keepalive: Any = None,
           server_pid: int | None = None, metrics_url: str | None = None) -> dict[str, Any]:
    """Send a packet per participant every 20 ms for `warmup` + `seconds`; count what comes back in the last
    `seconds` (the stream itself runs on without a break). With `server_pid`, the server's CPU over those seconds
    is reported too; with `metrics_url` (confbridge), its tick lateness at the end of them."""
    tone = ulaw_encode(np.rint(4000 * np.sin(2 * np.pi * 440 * np.arange(8000) / 8000)).astype(np.int16)).tobytes()
    silence = bytes([0xFF]) * FRAME
    talking = max(1, round(talkers * len(people))) if talkers > 0 else 0
    buffers = []
    for index, person in enumerate(people):
        buffer = bytearray(PACKET)
        struct.pack_into("!BBHII", buffer, 0, 0x80, 0, 0, 0, person.ssrc)
        buffer[12:] = silence if index >= talking else tone[:FRAME]
        buffers.append(buffer)
    poller = select.epoll()
    by_fd = {}
    for person in people:
        person.sock.setsockopt(socket.SOL_SOCKET, SO_TIMESTAMPNS, 1)
        poller.register(person.sock.fileno(), select.EPOLLIN)
        by_fd[person.sock.fileno()] = person
    targets = [person.server for person in people]
    socks = [person.sock for person in people]
    start = time.monotonic()
    warmup_ticks = int(warmup / TICK)
    ticks = warmup_ticks + int(seconds / TICK)
    send_lateness: list[float] = []
    sent = 0
    next_keepalive = start + 20
    usage_before = resource.getrusage(resource.RUSAGE_SELF)
    server_before = process_cpu_seconds(server_pid) if server_pid else 0.0
    counting_since = start
    gc.collect()
    gc.freeze()  # nothing here lives long enough to need collecting: keep the generator's own timing steady
    gc.disable()
    for tick in range(ticks):
        deadline = start + tick * TICK
        if tick == warmup_ticks:
            for person in people:
                person.received, person.first_seq, person.jitter, person.stalls = 0, None, 0.0, 0
            usage_before = resource.getrusage(resource.RUSAGE_SELF)
            server_before = process_cpu_seconds(server_pid) if server_pid else 0.0
            counting_since, sent, send_lateness = time.monotonic(), 0, []
        # Sleep, send every participant's packet, then read everything that came. Sending first keeps the
        # stream on time however much there is to read; reading without blocking keeps a receiver blocked in
        # epoll_wait from making every packet the server sends also pay for waking this process (no real client
        # on a network puts that cost on a server). Arrival times come from the kernel (SO_TIMESTAMPNS), so
        # reading late does not blur them.
        wait = deadline - time.monotonic()
        if wait > 0:
            time.sleep(wait)
        send_lateness.append(time.monotonic() - deadline)
        sequence, timestamp = tick & 0xFFFF, (tick * FRAME) & 0xFFFFFFFF
        for index, buffer in enumerate(buffers):
            struct.pack_into("!HI", buffer, 2, sequence, timestamp)
            if index < talking:
                offset = (tick * FRAME) % (len(tone) - FRAME)
                buffer[12:] = tone[offset : offset + FRAME]
            socks[index].sendto(buffer, targets[index])  # type: ignore[arg-type]
        while True:
            events = poller.poll(0)
            for fd, _ in events:
                person = by_fd[fd]
                try:
                    data, ancillary, _, _ = person.sock.recvmsg(2048, 64)
                except BlockingIOError:
                    continue
                if len(data) < 12 or not 0x80 <= data[0] <= 0xBF or 192 <= data[1] <= 223:
                    continue
                person.count(data, ancillary)
            if not events:
                break
        sent += len(buffers)
        if keepalive is not None and time.monotonic() > next_keepalive:
            keepalive()
            next_keepalive += 20
    elapsed = time.monotonic() - counting_since
    gc.enable()
    usage = resource.getrusage(resource.RUSAGE_SELF)
    server_cpu = process_cpu_seconds(server_pid) - server_before if server_pid else None
    figures = scrape_tick_figures(metrics_url) if metrics_url else {}
    cpu = (usage.ru_utime - usage_before.ru_utime) + (usage.ru_stime - usage_before.ru_stime)
    received = sum(person.received for person in people)
    expected = sum(person.highest - person.first_seq + 1 for person in people if person.first_seq is not None)
    silent = sum(1 for person in people if person.first_seq is None)
    lateness = np.array(send_lateness) * 1000
    jitter = [person.jitter * 1000 for person in people if person.first_seq is not None]
    return {
        "participants": len(people), "seconds": round(elapsed, 2),
        "generator_cpu_percent": round(100 * cpu / elapsed, 1),
        "server_cpu_percent": round(100 * server_cpu / elapsed, 1) if server_cpu is not None else None,
        **figures,
        "sent": sent, "received": received, "expected_by_sequence": expected, "lost": max(0, expected - received),
        "participants_that_heard_nothing": silent,
        "received_per_participant_per_second": round(received / len(people) / elapsed, 2),
        "received_jitter_ms": round(float(np.mean(jitter)), 3) if jitter else 0.0,
        "received_jitter_max_ms": round(float(np.max(jitter)), 3) if jitter else 0.0,
        "received_stalls": sum(person.stalls for person in people),
        "generator_send_lateness_ms": {"p50": round(float(np.percentile(lateness, 50)), 3),
                                       "p99": round(float(np.percentile(lateness, 99)), 3),
                                       "max": round(float(lateness.max()), 3)},
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("-n", "--participants", type=int, required=True)
    parser.add_argument("--seconds", type=float, default=20.0)
    parser.add_argument("--warmup", type=float, default=3.0, help="seconds streamed before counting starts")
    parser.add_argument("--talkers", type=float, default=0.05, help="fraction of participants sending a tone")
    parser.add_argument("--sip", help="confbridge SIP address HOST:PORT")
    parser.add_argument("--uri", help="the conference's direct URI")
    parser.add_argument("--setup-rate", type=float, default=200.0, help="new SIP calls per second at set-up")
    parser.add_argument("--janus", help="Janus HTTP API URL, e.g. http://127.0.0.1:8088/janus")
    parser.add_argument("--room", type=int, default=1234)
    parser.add_argument("--cpu", type=int, default=None, help="pin this process to one CPU")
    parser.add_argument("--server-pid", type=int, default=None, help="report this process's CPU over the window")
    parser.add_argument("--metrics", default=None, help="confbridge /metrics URL: report its tick lateness")
    args = parser.parse_args()
    if args.cpu is not None:
        os.sched_setaffinity(0, {args.cpu})
    people = open_participants(args.participants)
    sip = None
    keepalive = None
    if args.janus:
        janus_setup(people, args.janus, args.room)
        keepalive = lambda: janus_keepalive(args.janus)  # noqa: E731
    else:
        host, port = args.sip.rsplit(":", 1)
        sip = sip_setup(people, (host, int(port)), args.uri, args.setup_rate)
    report = stream(people, args.warmup, args.seconds, args.talkers, keepalive, args.server_pid, args.metrics)
    if sip is not None:
        host, port = args.sip.rsplit(":", 1)
        sip_teardown(sip, people, (host, int(port)), args.uri)
    json.dump(report, sys.stdout)
    print()


if __name__ == "__main__":
    main()
