"""examples/server.py, run as a user would: it prints a direct URI that a caller can dial."""

from __future__ import annotations

import re
import signal
import socket
import subprocess
import sys
import time
from pathlib import Path

from tests.helpers.ports import free_port, free_sip_port
from tests.helpers.server_process import REPO_ROOT
from tests.helpers.sip_client import SipClient
from tests.helpers.sip_messages import pcmu_offer


def test_example_server_prints_a_uri_that_answers_calls(tmp_path: Path) -> None:
    sip_port, http_port = free_sip_port(), free_port(socket.SOCK_STREAM)
    log = tmp_path / "example.log"
    with open(log, "wb") as out:
        process = subprocess.Popen([sys.executable, str(REPO_ROOT / "examples" / "server.py"), "--sip-port",
                                    str(sip_port), "--http-port", str(http_port), "--data-dir", str(tmp_path / "d")],
                                   stdout=out, stderr=subprocess.STDOUT, cwd=tmp_path)
    try:
        deadline = time.monotonic() + 20
        while (match := re.search(r"^Dial (sip:direct\.[0-9a-f]{12}@127\.0\.0\.1:(\d+))$", log.read_text(),
                                  re.MULTILINE)) is None:
            assert process.poll() is None and time.monotonic() < deadline, log.read_text()
            time.sleep(0.05)
        assert int(match.group(2)) == sip_port
        client = SipClient(("127.0.0.1", sip_port), match.group(1))
        assert client.call(pcmu_offer("127.0.0.1", 40000)).status_code == 200
        assert client.hangup().status_code == 200
        client.close()
    finally:
        process.send_signal(signal.SIGTERM)
        assert process.wait(15) == 0, log.read_text()
