"""SIPp (Debian's sip-tester) as a test peer: bounded runs of our scenario files, and what they traced.

SIPp is an implementation of SIP that is not ours, so the end-to-end tests place and take calls with it.
Every run uses loopback, free ports of its own, SIPp's global timeout plus a process timeout here, and
keeps its error file, final screen and message trace for the failure message.
"""

from __future__ import annotations

import re
import shutil
import socket
import subprocess
import time
from dataclasses import dataclass
from pathlib import Path

import pytest

from .ports import LOOPBACK, free_media_port, free_sip_port

SCENARIOS = Path(__file__).resolve().parents[1] / "e2e" / "scenarios"
SIPP_TIMEOUT = 30.0
"""SIPp's own global timeout (seconds); the process gets a little longer before it is killed."""


def require_tool(name: str) -> str:
    """The path of a tool the test command installs; fail (not skip) without it."""
    path = shutil.which(name)
    if path is None:
        pytest.fail(f"{name} is not installed; the test command (scripts/test.sh) installs it from Debian")
    return path


def make_tone_wav(path: Path, frequency: float, seconds: float = 10.0) -> Path:
    """A μ-law WAV of a sine tone, made by sox (an encoder independent of ours)."""
    subprocess.run([require_tool("sox"), "-n", "-r", "8000", "-c", "1", "-e", "u-law", str(path), "synth",
                    str(seconds), "sine", str(frequency), "vol", "0.4"], check=True)
    return path


def scenario_with_tone(name: str, tone_file: Path, work: Path, *, loops: int = -1) -> Path:
    """A copy of scenario `name` with TONE_FILE (and LOOPS: -1 for ever) replaced: SIPp does not expand variables
    in rtp_stream."""
    scenario = work / f"{Path(name).stem}_{tone_file.stem}_{loops}.xml"
    scenario.write_text((SCENARIOS / name).read_text().replace("TONE_FILE", str(tone_file))
                        .replace("LOOPS", str(loops)))
    return scenario


@dataclass
class SippResult:
    """How one SIPp run ended: exit code, final screen, error file and (with -trace_msg) the message trace."""

    code: int
    screen: str
    errors: str
    messages: str

    def successful_calls(self) -> int:
        """The cumulative 'Successful call' counter of SIPp's final statistics screen."""
        counts = re.findall(r"Successful call\s*\|\s*\d+\s*\|\s*(\d+)", self.screen)
        return int(counts[-1]) if counts else -1

    def traced(self, direction: str, start: str = "") -> list[str]:
        """The messages SIPp 'sent' or 'received' (per its -trace_msg file) that start with `start`, in order."""
        parts = re.split(r"^-{20,} [^\n]*\n(?:UDP|TCP) message (sent|received)[^\n]*\n\n", self.messages,
                         flags=re.MULTILINE)
        return [text.strip() for way, text in zip(parts[1::2], parts[2::2], strict=True)
                if way == direction and text.strip().startswith(start)]

    def received(self, start: str) -> int:
        """How many received messages start with `start` (e.g. 'SIP/2.0 487')."""
        return len(self.traced("received", start))

    def explain(self) -> str:
        """Everything worth reading when a run went wrong."""
        return (f"SIPp exited with {self.code}\n---- SIPp error file ----\n{self.errors[-6000:] or '(empty)'}\n"
                f"---- SIPp final screen ----\n{self.screen[-4000:]}")


def header(message: str, name: str) -> str:
    """The first value of a header in a traced message ('' when it has none)."""
    found = re.search(rf"^{re.escape(name)}\s*:\s*(.*?)\s*$", message, re.MULTILINE | re.IGNORECASE)
    return found.group(1) if found else ""


def assert_acknowledged_in_transaction(result: SippResult, status: str) -> None:
    """Each final `status` response was ACKed as RFC 3261 §17.1.1.3 says: the INVITE's branch, the response's To.

    The server retransmits an error response until its ACK arrives (after T1, 2*T1, ...); the scenarios wait
    1.2 s after the ACK, so one received copy per call also shows that the server matched the ACK to its
    transaction.
    """
    finals = result.traced("received", f"SIP/2.0 {status}")
    invites = result.traced("sent", "INVITE ")
    acks = result.traced("sent", "ACK ")
    assert finals and len(finals) == len(invites) == len(acks), (
        f"one {status} and one ACK per INVITE; a repeated {status} means the ACK did not match\n"
        + result.messages[-4000:])
    for final in finals:
        call_id = header(final, "Call-ID")
        (invite,) = [m for m in invites if header(m, "Call-ID") == call_id]
        (ack,) = [m for m in acks if header(m, "Call-ID") == call_id]
        branch = re.search(r"branch=([^;\s]+)", header(invite, "Via"))
        assert branch is not None and f"branch={branch.group(1)}" in header(ack, "Via"), (invite, ack)
        assert ";tag=" in header(final, "To") and header(ack, "To") == header(final, "To"), (final, ack)
        assert header(ack, "CSeq") == header(invite, "CSeq").replace("INVITE", "ACK"), (invite, ack)


class Sipp:
    """One SIPp process in the background: a client of `target`, or (target None) a server on `self.port`."""

    def __init__(self, scenario: Path, work: Path, *, name: str, target: tuple[str, int] | None = None,
                 calls: int = 1, service: str | None = None, transport: str = "u1",
                 extra: tuple[str, ...] = ()) -> None:
        self.port = free_sip_port()
        self.media_port = free_media_port()
        self.transport = transport
        self.errors = work / f"{name}.errors"
        self.messages = work / f"{name}.messages"
        self.screen = work / f"{name}.screen"
        self.started = time.monotonic()
        args = [require_tool("sipp"), *([f"{target[0]}:{target[1]}"] if target else []), "-sf", str(scenario),
                "-t", transport, "-i", LOOPBACK, "-p", str(self.port), "-mp", str(self.media_port),
                "-m", str(calls), "-nostdin", "-timeout", f"{SIPP_TIMEOUT:.0f}s", "-timeout_error",
                "-trace_err", "-error_file", str(self.errors), "-trace_msg", "-message_file", str(self.messages),
                *(["-s", service] if service else []), *extra]
        with open(self.screen, "wb") as screen:
            self.process = subprocess.Popen(args, stdin=subprocess.DEVNULL, stdout=screen,
                                            stderr=subprocess.STDOUT, cwd=work)
        if target is None:
            self._wait_until_listening()

    @property
    def uri(self) -> str:
        """A SIP URI that reaches this SIPp when it plays the server."""
        suffix = ";transport=tcp" if self.transport == "t1" else ""
        return f"sip:bob@{LOOPBACK}:{self.port}{suffix}"

    def _wait_until_listening(self) -> None:
        deadline = time.monotonic() + 5
        while not _bound(self.port, tcp=self.transport == "t1"):
            if self.process.poll() is not None:
                raise AssertionError(self.result().explain())
            if time.monotonic() > deadline:
                raise AssertionError("SIPp did not bind its port")
            time.sleep(0.02)

    def wait(self, timeout: float = SIPP_TIMEOUT + 15) -> SippResult:
        """Wait for SIPp to finish (killing it after `timeout`) and collect what it wrote."""
        try:
            self.process.wait(max(0.0, self.started + timeout - time.monotonic()))
        except subprocess.TimeoutExpired:
            self.stop()
        return self.result()

    def result(self) -> SippResult:
        """What SIPp wrote so far, with its exit code (-9 when it had to be killed)."""

        def read(path: Path) -> str:
            return path.read_text(errors="replace") if path.exists() else ""

        code = self.process.poll()
        return SippResult(-9 if code is None else code, read(self.screen), read(self.errors), read(self.messages))

    def stop(self) -> None:
        """Kill SIPp if it is still running (test teardown)."""
        if self.process.poll() is None:
            self.process.kill()
            self.process.wait()


def run_sipp(target: tuple[str, int], scenario: Path, work: Path, *, name: str, calls: int = 1,
             service: str | None = None, transport: str = "u1", extra: tuple[str, ...] = ()) -> SippResult:
    """Run a SIPp client scenario to its end."""
    return Sipp(scenario, work, name=name, target=target, calls=calls, service=service, transport=transport,
                extra=extra).wait()


def _bound(port: int, *, tcp: bool) -> bool:
    """Whether some socket holds `port` (UDP), or listens on it (TCP, read from /proc without connecting)."""
    if tcp:
        lines = Path("/proc/net/tcp").read_text().splitlines()[1:]
        return any(fields[1].endswith(f":{port:04X}") and fields[3] == "0A" for fields in map(str.split, lines))
    with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as sock:
        try:
            sock.bind((LOOPBACK, port))
        except OSError:
            return True
    return False
