"""The confbridge server the benchmarks run against, and the /proc readings they take of it.

`BenchServer` starts `python -m confbridge serve` on loopback ports with a data folder of its own, pinned to one
CPU when asked, waits until its REST API answers, and stops it again (SIGTERM, then SIGKILL); `request` calls the
API with the server's token. Each benchmark script imports this module (the `benchmarks/` folder is first on
`sys.path` when a script there runs).
"""

from __future__ import annotations

import contextlib
import json
import os
import shutil
import subprocess
import sys
import tempfile
import time
import urllib.request
from pathlib import Path
from types import TracebackType
from typing import Any

ROOT = Path(__file__).resolve().parent.parent
LOOPBACK = "127.0.0.1"
CLOCK_TICKS = os.sysconf("SC_CLK_TCK")


def server_python() -> str:
    """The project's virtualenv Python if there is one, else the one running this script."""
    venv = ROOT / ".venv" / "bin" / "python"
    return str(venv) if venv.exists() else sys.executable


def pinned(command: list[str], cpu: int | None) -> list[str]:
    """`command` under `taskset -c cpu` (unchanged for None or a negative cpu)."""
    if cpu is None or cpu < 0:
        return command
    taskset = shutil.which("taskset")
    if taskset is None:
        raise SystemExit("taskset (util-linux) is needed to pin a process to a CPU; ask for no pinning without it")
    return [taskset, "-c", str(cpu), *command]


def process_cpu_seconds(pid: int) -> float:
    """User plus system CPU seconds of a process so far, all its threads (from /proc)."""
    fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / CLOCK_TICKS


def read_metrics(url: str, timeout: float = 30.0) -> dict[str, float]:
    """A Prometheus text page as {'name{labels}': value} (comments skipped)."""
    with urllib.request.urlopen(url, timeout=timeout) as response:
        text = response.read().decode()
    figures: dict[str, float] = {}
    for line in text.splitlines():
        if line and not line.startswith("#"):
            name, _, value = line.rpartition(" ")
            with contextlib.suppress(ValueError):
                figures[name] = float(value)
    return figures


def stop_process(process: subprocess.Popen[bytes] | None, grace: float = 10.0) -> None:
    """SIGTERM, then SIGKILL after `grace` seconds; nothing if it has already ended."""
    if process is None or process.poll() is not None:
        return
    process.terminate()
    try:
        process.wait(grace)
    except subprocess.TimeoutExpired:
        process.kill()
        process.wait()


class BenchServer:
    """`confbridge serve` as a child process, started on `__enter__` (or `start`) and stopped on `__exit__`."""

    def __init__(self, *, sip_port: int, http_port: int, rtp_ports: tuple[int, int], token: str,
                 cpu: int | None = None, data_dir: Path | None = None, log_level: str = "WARNING") -> None:
        self.sip_port = sip_port
        self.http_port = http_port
        self.rtp_ports = rtp_ports
        self.token = token
        self.cpu = cpu
        self.log_level = log_level
        self.data_dir = data_dir or Path(tempfile.mkdtemp(prefix="confbridge-bench-"))
        self._own_data_dir = data_dir is None
        self.log_path = self.data_dir / "server.log"
        self.api = f"http://{LOOPBACK}:{http_port}/v1.0"
        self.metrics_url = f"http://{LOOPBACK}:{http_port}/metrics"
        self.process: subprocess.Popen[bytes] | None = None

    def __enter__(self) -> BenchServer:
        try:
            self.start()
            self.wait_ready()
        except BaseException:
            self.close()
            raise
        return self

    def __exit__(self, kind: type[BaseException] | None, value: BaseException | None,
                 traceback: TracebackType | None) -> None:
        self.close()

    @property
    def pid(self) -> int:
        """The server's process id."""
        assert self.process is not None, "not started"
        return self.process.pid

    @property
    def running(self) -> bool:
        """Whether the server has been started and has not ended."""
        return self.process is not None and self.process.poll() is None

    def start(self) -> None:
        """Start the server (its output goes to `log_path`)."""
        self.data_dir.mkdir(parents=True, exist_ok=True)
        low, high = self.rtp_ports
        command = [server_python(), "-m", "confbridge", "serve", "--bind", LOOPBACK, "--sip-port", str(self.sip_port),
                   "--http-port", str(self.http_port), "--rtp-ports", f"{low}-{high}", "--data-dir", str(self.data_dir),
                   "--token", self.token, "--log-level", self.log_level]
        with open(self.log_path, "wb") as log:
            self.process = subprocess.Popen(pinned(command, self.cpu), cwd=ROOT, stdin=subprocess.DEVNULL, stdout=log,
                                            stderr=subprocess.STDOUT, env=dict(os.environ, PYTHONUNBUFFERED="1"))

    def request(self, method: str, path: str, body: dict[str, Any] | None = None, timeout: float = 5.0) -> Any:
        """One REST call under /v1.0 with the token; the decoded JSON answer (raises on HTTP errors)."""
        separator = "&" if "?" in path else "?"
        data = json.dumps(body).encode() if body is not None else None
        call = urllib.request.Request(f"{self.api}{path}{separator}token={self.token}", data=data, method=method,
                                      headers={"Content-Type": "application/json"})
        with urllib.request.urlopen(call, timeout=timeout) as response:
            return json.loads(response.read() or b"null")

    def answers(self) -> bool:
        """Whether the REST API answers a small request."""
        try:
            self.request("GET", "/conferences?page_size=1")
        except (OSError, ValueError):
            return False
        return True

    def wait_ready(self, timeout: float = 30.0) -> None:
        """Wait until the REST API answers; raise, with the end of the log, if the server exits or takes too long."""
        assert self.process is not None, "not started"
        deadline = time.monotonic() + timeout
        while not self.answers():
            if self.process.poll() is not None:
                raise RuntimeError(f"server exited with {self.process.returncode}:\n{self.log_tail()}")
            if time.monotonic() > deadline:
                raise RuntimeError(f"server's REST API did not answer within {timeout:.0f} s:\n{self.log_tail()}")
            time.sleep(0.1)

    def create_conference(self, name: str) -> dict[str, Any]:
        """A new conference of type `conference`."""
        conference: dict[str, Any] = self.request("POST", "/conferences", {"type": "conference", "name": name})
        return conference

    def direct_uri(self, conference: dict[str, Any]) -> str:
        """The SIP URI that dials a conference."""
        return f"sip:direct.{conference['direct_hash']}@{LOOPBACK}:{self.sip_port}"

    def cpu_seconds(self) -> float:
        """The server's user plus system CPU seconds so far."""
        return process_cpu_seconds(self.pid)

    def log_tail(self, lines: int = 30) -> str:
        """The end of the server's output."""
        try:
            return "\n".join(self.log_path.read_text(errors="replace").splitlines()[-lines:])
        except OSError:
            return "(no log)"

    def stop(self, grace: float = 15.0) -> None:
        """SIGTERM, then SIGKILL after `grace` seconds."""
        stop_process(self.process, grace)

    def close(self) -> None:
        """Stop the server and remove the data folder it made itself."""
        self.stop()
        if self._own_data_dir:
            shutil.rmtree(self.data_dir, ignore_errors=True)
