"""Run the real server as a child process (`python -m confbridge serve`) on free loopback ports."""

from __future__ import annotations

import os
import re
import signal
import socket
import subprocess
import sys
import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

from .ports import free_port, free_rtp_range, free_sip_port
from .rest import ApiClient

LOOPBACK = "127.0.0.1"
REPO_ROOT = Path(__file__).resolve().parents[2]


@dataclass
class RunningServer:
    """A server child process and how to reach it."""

    process: subprocess.Popen[bytes]
    sip: tuple[str, int]
    http_url: str
    token: str
    data_dir: Path
    log_path: Path
    rtp_ports: tuple[int, int]

    @property
    def api(self) -> ApiClient:
        """A REST client with the server's token."""
        return ApiClient(self.http_url, self.token)

    def direct_uri(self, direct_hash: str) -> str:
        """The SIP URI that dials a conference."""
        return f"sip:direct.{direct_hash}@{self.sip[0]}:{self.sip[1]}"

    def log(self) -> str:
        """Everything the server printed so far."""
        return self.log_path.read_text(errors="replace")

    def stop(self, sig: int = signal.SIGTERM, timeout: float = 15.0) -> int:
        """Signal the server and wait for it to exit; returns its exit status."""
        if self.process.poll() is None:
            self.process.send_signal(sig)
        try:
            return self.process.wait(timeout)
        except subprocess.TimeoutExpired:
            self.process.kill()
            self.process.wait()
            raise AssertionError(f"server did not exit within {timeout} s after signal {sig}") from None


def start_server(data_dir: Path, *, token: str | None = "test-token", extra_args: list[str] | None = None,
                 sip_port: int | None = None, http_port: int | None = None,
                 wrapper: list[str] | None = None) -> RunningServer:
    """Start `python -m confbridge serve` and wait until it reports its addresses.

    With `token=None` no --token is passed: the server generates or reuses its own, read from its output.
    `wrapper` goes before the command (it must exec it, so the child is the server itself).
    """
    sip_port = sip_port or free_sip_port()
    http_port = http_port or free_port(socket.SOCK_STREAM)
    rtp_low, rtp_high = free_rtp_range()
    data_dir.mkdir(parents=True, exist_ok=True)
    log_path = data_dir / f"server-{sip_port}.log"
    args = [*(wrapper or []), sys.executable, "-m", "confbridge", "serve", "--bind", LOOPBACK,
            "--sip-port", str(sip_port), "--http-port", str(http_port), "--rtp-ports", f"{rtp_low}-{rtp_high}",
            "--data-dir", str(data_dir), *(["--token", token] if token is not None else []), "--log-level", "DEBUG",
            *(extra_args or [])]
    env = dict(os.environ, PYTHONUNBUFFERED="1")
    with open(log_path, "wb") as log:
        process = subprocess.Popen(args, stdout=log, stderr=subprocess.STDOUT, cwd=REPO_ROOT, env=env)
    server = RunningServer(process, (LOOPBACK, sip_port), f"http://{LOOPBACK}:{http_port}/v1.0", token or "",
                           data_dir, log_path, (rtp_low, rtp_high))
    deadline = time.monotonic() + 20
    while (printed := re.search(r"^Token: (\S+)$", server.log(), re.MULTILINE)) is None:
        if process.poll() is not None:
            raise AssertionError(f"server exited with {process.returncode}:\n{server.log()}")
        if time.monotonic() > deadline:
            server.stop(signal.SIGKILL)
            raise AssertionError(f"server did not start:\n{server.log()}")
        time.sleep(0.05)
    server.token = printed.group(1)
    return server


LaunchServer = Callable[..., RunningServer]
"""The `launch_server` fixture: `launch_server(*extra_args, sip_port=None, http_port=None, token=...)`."""
