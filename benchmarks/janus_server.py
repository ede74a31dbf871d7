"""A private Janus instance for the capacity benchmarks: the AudioBridge plugin behind the HTTP API, on loopback.

Comparing confbridge with Janus's AudioBridge needs a Janus that nothing else shares, pinned to one CPU like the
bridge under test, and with nothing loaded that the comparison does not use. `JanusServer` writes a self-contained
configuration into a temporary folder (AudioBridge and the HTTP transport only, no admin API, no websockets, no
event handlers, sessions that never time out), starts Debian's `janus` with it, waits for the HTTP API, and creates
an 8 kHz AudioBridge room that admits plain-RTP participants, which `benchmarks/loadgen.py --janus` joins.
`benchmarks/janus.py` runs the comparison.
"""

from __future__ import annotations

import json
import os
import secrets
import shutil
import subprocess
import tempfile
import time
import urllib.error
import urllib.request
from pathlib import Path
from types import TracebackType
from typing import Any

from bench_server import stop_process

JANUS = "/usr/bin/janus"
LIBRARIES = Path("/usr/lib/x86_64-linux-gnu/janus")
LOOPBACK = "127.0.0.1"
PLUGIN = "janus.plugin.audiobridge"
KEEP = {"plugins": "libjanus_audiobridge.so", "transports": "libjanus_http.so"}


def disabled(kind: str) -> str:
    """Every library of a Janus folder but the one the benchmark needs, as a `disable` list."""
    keep = KEEP.get(kind)
    return ",".join(sorted(p.name for p in (LIBRARIES / kind).glob("*.so") if p.name != keep))


class JanusServer:
    """Janus with one AudioBridge room, started on `__enter__` and stopped on `__exit__`."""

    def __init__(self, *, cpu: int | None = 0, http_port: int = 8288, rtp_ports: tuple[int, int] = (46000, 49999),
                 workdir: Path | None = None, room: int = 1234, debug_level: int = 3) -> None:
        self.cpu = cpu
        self.http_port = http_port
        self.rtp_ports = rtp_ports
        self.workdir = workdir
        self.room = room
        self.debug_level = debug_level
        self.url = f"http://{LOOPBACK}:{http_port}/janus"
        self.folder = Path()
        self.process: subprocess.Popen[bytes] | None = None
        self.own_folder = False

    @property
    def pid(self) -> int:
        """The janus process id."""
        assert self.process is not None
        return self.process.pid

    @property
    def log(self) -> Path:
        """Janus's log file."""
        return self.folder / "janus.log"

    def __enter__(self) -> JanusServer:
        if self.workdir is None:
            self.folder, self.own_folder = Path(tempfile.mkdtemp(prefix="janus-bench-")), True
        else:
            self.folder = self.workdir
            self.folder.mkdir(parents=True, exist_ok=True)
        try:
            self.write_configs()
            self.start()
            self.wait_ready()
            self.create_room()
        except BaseException:
            self.__exit__(None, None, None)
            raise
        return self

    def __exit__(self, kind: type[BaseException] | None, value: BaseException | None,
                 traceback: TracebackType | None) -> None:
        self.stop()
        if self.own_folder:
            shutil.rmtree(self.folder, ignore_errors=True)

    def write_configs(self) -> None:
        """janus.jcfg, the HTTP transport's and the AudioBridge plugin's configuration."""
        low, high = self.rtp_ports
        (self.folder / "janus.jcfg").write_text(f"""general: {{
    configs_folder = "{self.folder}"
    plugins_folder = "{LIBRARIES / 'plugins'}"
    transports_folder = "{LIBRARIES / 'transports'}"
    events_folder = "{LIBRARIES / 'events'}"
    loggers_folder = "{LIBRARIES / 'loggers'}"
    debug_level = {self.debug_level}
    debug_timestamps = true
    debug_colors = false
    session_timeout = 0
    server_name = "confbridge-benchmark"
}}
media: {{
    rtp_port_range = "{low}-{high}"
}}
nat: {{
    nice_debug = false
    ice_enforce_list = "lo"
}}
plugins: {{
    disable = "{disabled('plugins')}"
}}
transports: {{
    disable = "{disabled('transports')}"
}}
loggers: {{
    disable = "{disabled('loggers')}"
}}
events: {{
    broadcast = false
    disable = "{disabled('events')}"
}}
""")
        (self.folder / "janus.transport.http.jcfg").write_text(f"""general: {{
    json = "plain"
    base_path = "/janus"
    http = true
    port = {self.http_port}
    ip = "{LOOPBACK}"
    https = false
}}
admin: {{
    admin_http = false
    admin_https = false
}}
""")
        (self.folder / "janus.plugin.audiobridge.jcfg").write_text(f"""general: {{
    local_ip = "{LOOPBACK}"
    rtp_port_range = "{low}-{high}"
    events = false
}}
""")

    def start(self) -> None:
        """Start janus, pinned to `cpu` (every thread it makes inherits the affinity), logging to the folder."""
        cpu = self.cpu

        def pin() -> None:
            if cpu is not None:
                os.sched_setaffinity(0, {cpu})

        with self.log.open("ab") as log:
            self.process = subprocess.Popen(
                [JANUS, "-F", str(self.folder), "-C", str(self.folder / "janus.jcfg")],
                stdin=subprocess.DEVNULL, stdout=log, stderr=subprocess.STDOUT, cwd=self.folder,
                preexec_fn=pin, start_new_session=True)

    def wait_ready(self, timeout: float = 15.0) -> None:
        """Wait until the HTTP API answers and lists the AudioBridge plugin."""
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if self.process is not None and self.process.poll() is not None:
                raise RuntimeError(f"janus exited with {self.process.returncode}:\n{self.tail()}")
            try:
                with urllib.request.urlopen(f"{self.url}/info", timeout=1) as response:
                    info = json.loads(response.read())
            except (urllib.error.URLError, ConnectionError, TimeoutError):
                time.sleep(0.1)
                continue
            if PLUGIN not in info.get("plugins", {}):
                raise RuntimeError(f"janus runs without {PLUGIN}:\n{self.tail()}")
            return
        raise RuntimeError(f"janus did not answer on {self.url} within {timeout} s:\n{self.tail()}")

    def request(self, path: str, body: dict[str, Any]) -> dict[str, Any]:
        """One Janus HTTP API request; raises on a Janus error."""
        data = json.dumps({"transaction": secrets.token_hex(6), **body}).encode()
        request = urllib.request.Request(f"{self.url}{path}", data=data, method="POST",
                                         headers={"Content-Type": "application/json"})
        with urllib.request.urlopen(request, timeout=10) as response:
            reply: dict[str, Any] = json.loads(response.read())
        if reply.get("janus") == "error":
            raise RuntimeError(f"janus refused {body}: {reply['error']}")
        return reply

    def create_room(self) -> None:
        """Create the benchmark's room: 8 kHz mix, plain-RTP participants allowed, no recording, no events."""
        session = self.request("", {"janus": "create"})["data"]["id"]
        try:
            handle = self.request(f"/{session}", {"janus": "attach", "plugin": PLUGIN})["data"]["id"]
            reply = self.request(f"/{session}/{handle}", {"janus": "message", "body": {
                "request": "create", "room": self.room, "permanent": False, "description": "benchmark",
                "sampling_rate": 8000, "allow_rtp_participants": True, "record": False,
                "audiolevel_ext": False, "audiolevel_event": False}})
            data = reply.get("plugindata", {}).get("data", {})
            if data.get("audiobridge") != "created":
                raise RuntimeError(f"janus did not create room {self.room}: {reply}")
        finally:
            self.request(f"/{session}", {"janus": "destroy"})

    def stop(self, timeout: float = 10.0) -> None:
        """SIGTERM, then SIGKILL if janus is still running after `timeout` seconds."""
        stop_process(self.process, timeout)

    def tail(self, lines: int = 30) -> str:
        """The end of Janus's log."""
        try:
            return "\n".join(self.log.read_text(errors="replace").splitlines()[-lines:])
        except OSError:
            return "(no log)"
