"""examples/bot.py, media_stream_client.py and events.py, run as a user would."""

from __future__ import annotations

import re
import signal
import socket
import subprocess
import sys
import time
from pathlib import Path

import pytest

from tests.helpers.ports import free_port, free_sip_port
from tests.helpers.server_process import REPO_ROOT

pytestmark = pytest.mark.e2e


def start_example(name: str, tmp_path: Path, *args: str) -> tuple[subprocess.Popen[bytes], Path]:
    log = tmp_path / f"{name}.log"
    with open(log, "wb") as out:
        process = subprocess.Popen([sys.executable, str(REPO_ROOT / "examples" / f"{name}.py"), *args],
                                   stdout=out, stderr=subprocess.STDOUT, cwd=tmp_path)
    return process, log


def wait_for_output(process: subprocess.Popen[bytes], log: Path, pattern: str, timeout: float = 20.0) -> re.Match[str]:
    deadline = time.monotonic() + timeout
    while (match := re.search(pattern, log.read_text(), re.MULTILINE)) is None:
        assert time.monotonic() < deadline, log.read_text()
        assert process.poll() is None or pattern in log.read_text(), log.read_text()
        time.sleep(0.05)
    return match


def stop(process: subprocess.Popen[bytes], log: Path) -> None:
    if process.poll() is None:
        process.send_signal(signal.SIGTERM)
    assert process.wait(15) == 0, log.read_text()


def server_args(tmp_path: Path) -> list[str]:
    return ["--sip-port", str(free_sip_port()), "--http-port", str(free_port(socket.SOCK_STREAM)),
            "--data-dir", str(tmp_path / "data")]


def test_the_bot_example_hears_its_tone_and_a_media_stream_client(tmp_path: Path) -> None:
    bots, bots_log = start_example("bot", tmp_path, *server_args(tmp_path))
    try:
        conference = wait_for_output(bots, bots_log, r"^Conference ([0-9a-f-]{36})$").group(1)
        rest = wait_for_output(bots, bots_log, r"^REST (\S+) \(token (\S+)\)$")
        level = wait_for_output(bots, bots_log, r"^listener hears +(-?[\d.]+) dBFS$")
        assert float(level.group(1)) > -30, "the listener hears the tone bot"

        client = subprocess.run([sys.executable, str(REPO_ROOT / "examples" / "media_stream_client.py"), "--url",
                                 rest.group(1), "--token", rest.group(2), "--conference", conference, "--seconds",
                                 "2.5"], capture_output=True, text=True, timeout=30, cwd=tmp_path)
        assert client.returncode == 0, client.stdout + client.stderr
        assert re.search(r"^joined as conferencecall [0-9a-f-]{36} \(16000 Hz\)$", client.stdout, re.MULTILINE)
        heard = [float(value) for value in re.findall(r"^hearing +(-?[\d.]+) dBFS$", client.stdout, re.MULTILINE)]
        assert heard and min(heard) > -30, client.stdout
    finally:
        stop(bots, bots_log)
    assert "listener left: bot left" in bots_log.read_text()


def test_the_events_example_prints_a_bots_life(tmp_path: Path) -> None:
    process, log = start_example("events", tmp_path, *server_args(tmp_path), "--bot-seconds", "0.5")
    try:
        wait_for_output(process, log, r"^Dial sip:direct\.[0-9a-f]{12}@")
        wait_for_output(process, log, r"^call_hangup +[0-9a-f-]{36} hangup$")
    finally:
        stop(process, log)
    types = re.findall(r"^(\w+) ", log.read_text(), re.MULTILINE)
    for expected in ("conference_created", "call_created", "conferencecall_created", "conferencecall_updated",
                     "call_hangup"):
        assert expected in types, log.read_text()
