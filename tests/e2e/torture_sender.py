"""Send every RFC 4475 / RFC 5118 torture message to a real server over UDP and record what comes back.

Why: the in-memory tests (tests/sip/test_torture.py) cover the sans-IO stack; this covers the running
server, its asyncio edge and its application, which must answer each message as the RFC says and keep
serving afterwards. It is a script, not a test module, meant to run INSIDE a private network namespace
whose loopback the caller has brought up (tests/e2e/test_torture_server.py does both), because many
messages name hosts that are not on this machine:

    python tests/e2e/torture_sender.py <conformance_dir> <result_json_path>

It starts `python -m confbridge serve` on loopback, sends each .sip file named in expected.json as one
datagram from one socket, keeps every datagram that comes back within 0.5 s, checks that an OPTIONS
still gets its 200 afterwards, stops the server with SIGTERM and writes a JSON result. It only uses the
standard library, so that it tests the server as a black box.
"""

from __future__ import annotations

import json
import os
import re
import secrets
import signal
import socket
import subprocess
import sys
import tempfile
import time
import traceback
from pathlib import Path
from typing import Any

__test__ = False

LOOPBACK = "127.0.0.1"
REPO_ROOT = Path(__file__).resolve().parents[2]
COLLECT_SECONDS = 0.5
OPTIONS_SECONDS = 2.0
START_SECONDS = 30.0
STOP_SECONDS = 20.0
LOG_TAIL_CHARS = 20000

_HEADER_NAMES = {"v": "via", "f": "from", "t": "to", "i": "call-id"}


def free_port() -> int:
    """A loopback port free for both UDP and TCP (the server listens for SIP on both)."""
    for _ in range(100):
        with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as udp:
            udp.bind((LOOPBACK, 0))
            port = int(udp.getsockname()[1])
            with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as tcp:
                try:
                    tcp.bind((LOOPBACK, port))
                except OSError:
                    continue
            return port
    raise RuntimeError("no port free for both UDP and TCP")


def free_tcp_port() -> int:
    """A loopback TCP port that is free right now."""
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.bind((LOOPBACK, 0))
        return int(sock.getsockname()[1])


def first_line(data: bytes) -> str:
    """The start line of a datagram, as text."""
    return data.split(b"\n", 1)[0].rstrip(b"\r").decode("utf-8", "replace")


def header_lines(data: bytes) -> list[tuple[str, str]]:
    """(lower-cased full name, value) of each header line of a message, folded lines not joined."""
    head = data.split(b"\r\n\r\n", 1)[0].decode("utf-8", "replace")
    lines = []
    for line in head.split("\r\n")[1:]:
        name, colon, value = line.partition(":")
        if colon:
            key = name.strip().lower()
            lines.append((_HEADER_NAMES.get(key, key), value.strip()))
    return lines


def header(data: bytes, name: str) -> str | None:
    """The first value of header `name` (lower-case full name), or None."""
    return next((value for key, value in header_lines(data) if key == name), None)


def top_via(value: str) -> str:
    """The first element of a Via field value (elements are comma-separated outside quotes)."""
    in_quotes = False
    for index, char in enumerate(value):
        if char == '"':
            in_quotes = not in_quotes
        elif char == "," and not in_quotes:
            return value[:index].strip()
    return value.strip()


def ack_for(response: bytes, request: bytes) -> bytes | None:
    """The ACK a UAC sends for a non-2xx final response to its INVITE (RFC 3261 §17.1.1.3), if one applies.

    Without it the server's INVITE transaction retransmits its final answer (after 0.5 s, 1 s, ...),
    and those copies would land in the collection windows of later messages.
    """
    match = re.match(rb"SIP/2\.0 (\d{3}) ", response)
    if match is None or int(match.group(1)) < 300:
        return None
    cseq = header(response, "cseq") or ""
    via, from_, to, call_id = (header(response, name) for name in ("via", "from", "to", "call-id"))
    parts = cseq.split()
    if len(parts) != 2 or parts[1] != "INVITE" or not (via and from_ and to and call_id):
        return None
    request_uri = first_line(request).split(" ")
    uri = request_uri[1] if len(request_uri) == 3 else f"sip:{LOOPBACK}"
    lines = [f"ACK {uri} SIP/2.0", f"Via: {top_via(via)}", "Max-Forwards: 70", f"From: {from_}", f"To: {to}",
             f"Call-ID: {call_id}", f"CSeq: {parts[0]} ACK", "Content-Length: 0"]
    return ("\r\n".join(lines) + "\r\n\r\n").encode()


def options_request(local: tuple[str, int], server: tuple[str, int]) -> tuple[bytes, str]:
    """A plain OPTIONS to the server, and its Call-ID."""
    call_id = f"torture-options-{secrets.token_hex(8)}"
    lines = [
        f"OPTIONS sip:{server[0]}:{server[1]} SIP/2.0",
        f"Via: SIP/2.0/UDP {local[0]}:{local[1]};branch=z9hG4bK{secrets.token_hex(8)};rport",
        "Max-Forwards: 70",
        f"From: <sip:torture@{local[0]}>;tag={secrets.token_hex(6)}",
        f"To: <sip:{server[0]}:{server[1]}>",
        f"Call-ID: {call_id}",
        "CSeq: 1 OPTIONS",
        "Content-Length: 0",
    ]
    return ("\r\n".join(lines) + "\r\n\r\n").encode(), call_id


def receive_one(sock: socket.socket, deadline: float) -> bytes | None:
    """The next datagram to arrive on `sock` before `deadline` (a time.monotonic value), or None."""
    left = deadline - time.monotonic()
    if left <= 0:
        return None
    sock.settimeout(left)
    try:
        data, _ = sock.recvfrom(65535)
    except TimeoutError:
        return None
    return data


class ServerProcess:
    """`python -m confbridge serve` on loopback, its output going to a log file."""

    def __init__(self, work_dir: Path) -> None:
        self.sip_port = free_port()
        self.http_port = free_tcp_port()
        self.log_path = work_dir / "server.log"
        args = [sys.executable, "-m", "confbridge", "serve", "--bind", LOOPBACK, "--sip-port", str(self.sip_port),
                "--http-port", str(self.http_port), "--rtp-ports", "40000-40099", "--data-dir", str(work_dir / "data"),
                "--token", "t", "--log-level", "DEBUG",
                # every message comes from one address and eight of them ask for unknown users: keep the
                # scanner guard out of a test about parsing, or it would throttle the sender part-way
                "--scanner-threshold", "0"]
        env = dict(os.environ, PYTHONUNBUFFERED="1")
        with open(self.log_path, "wb") as log:
            self.process = subprocess.Popen(args, stdout=log, stderr=subprocess.STDOUT, cwd=REPO_ROOT, env=env)

    def log(self) -> str:
        """Everything the server printed so far."""
        return self.log_path.read_text(errors="replace") if self.log_path.exists() else ""

    def wait_ready(self) -> None:
        """Wait until the server prints its `Token:` line; raise if it exits or takes too long."""
        deadline = time.monotonic() + START_SECONDS
        while re.search(r"^Token:", self.log(), re.MULTILINE) is None:
            if self.process.poll() is not None:
                raise RuntimeError(f"server exited with {self.process.returncode} before it was ready")
            if time.monotonic() > deadline:
                raise RuntimeError(f"server not ready within {START_SECONDS} s")
            time.sleep(0.05)

    def stop(self) -> int | None:
        """SIGTERM, then wait; None (after SIGKILL) if it does not exit in time."""
        if self.process.poll() is None:
            self.process.send_signal(signal.SIGTERM)
        try:
            return self.process.wait(STOP_SECONDS)
        except subprocess.TimeoutExpired:
            self.process.kill()
            self.process.wait()
            return None


def send_all(conformance_dir: Path, server: tuple[str, int]) -> tuple[dict[str, list[str]], bool, list[str]]:
    """Send every message, then an OPTIONS: what came back per file, whether OPTIONS got 200, OPTIONS replies."""
    expected = json.loads((conformance_dir / "expected.json").read_text())
    received: dict[str, list[str]] = {}
    with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as sock:
        sock.bind((LOOPBACK, 0))
        for entry in expected:
            data = (conformance_dir / entry["file"]).read_bytes()
            sock.sendto(data, server)
            lines = received[entry["file"]] = []
            deadline = time.monotonic() + COLLECT_SECONDS
            while (reply := receive_one(sock, deadline)) is not None:
                lines.append(first_line(reply))
                ack = ack_for(reply, data)
                if ack is not None:
                    sock.sendto(ack, server)
        request, call_id = options_request(sock.getsockname(), server)
        sock.sendto(request, server)
        options_replies: list[str] = []
        options_ok = False
        deadline = time.monotonic() + OPTIONS_SECONDS
        while not options_ok and (reply := receive_one(sock, deadline)) is not None:
            options_replies.append(first_line(reply))
            options_ok = first_line(reply).startswith("SIP/2.0 200 ") and header(reply, "call-id") == call_id
    return received, options_ok, options_replies


def run(conformance_dir: Path, result_path: Path) -> dict[str, Any]:
    """Start the server, send everything, stop it; the result to write."""
    work_dir = Path(tempfile.mkdtemp(prefix="torture-server-", dir=result_path.parent))
    result: dict[str, Any] = {"received": {}, "options_ok": False, "options_replies": [], "exit_code": None,
                              "traceback_in_log": False, "log_tail": "", "log_path": str(work_dir / "server.log"),
                              "error": None}
    server = ServerProcess(work_dir)
    try:
        server.wait_ready()
        result["sip_port"] = server.sip_port
        received, options_ok, options_replies = send_all(conformance_dir, (LOOPBACK, server.sip_port))
        result.update(received=received, options_ok=options_ok, options_replies=options_replies)
    except Exception:
        result["error"] = traceback.format_exc()
    finally:
        result["exit_code"] = server.stop()
        log = server.log()
        result["traceback_in_log"] = "Traceback" in log
        result["log_tail"] = log[-LOG_TAIL_CHARS:]
    return result


def main(argv: list[str]) -> int:
    """Entry point: `torture_sender.py <conformance_dir> <result_json_path>`."""
    if len(argv) != 3:
        print(f"usage: {argv[0]} <conformance_dir> <result_json_path>", file=sys.stderr)
        return 2
    result_path = Path(argv[2]).resolve()
    result = run(Path(argv[1]).resolve(), result_path)
    result_path.write_text(json.dumps(result, indent=2, ensure_ascii=False))
    return 1 if result["error"] else 0


if __name__ == "__main__":
    sys.exit(main(sys.argv))
