"""The RFC 4475 / RFC 5118 torture messages against the real server, over UDP, in a private network namespace.

Why: tests/sip/test_torture.py checks the sans-IO stack in memory; this checks that the running server
(asyncio edge, UA core and application together) answers each torture message as the RFC says, never
crashes, and still answers an OPTIONS afterwards. Many messages name hosts elsewhere (documentation
addresses, example.com, a broadcast Via), so tests/e2e/torture_sender.py runs the server and sends the
messages inside `unshare -rn`, where only loopback exists and nothing the server answers can leave it.

The corpus lives beside the clone, in ../shared/conformance/sip-torture/ (see its README.md).
"""

from __future__ import annotations

import json
import re
import shutil
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest

REPO_ROOT = Path(__file__).resolve().parents[2]
CONFORMANCE_DIR = REPO_ROOT.parent / "shared" / "conformance" / "sip-torture"
SENDER = Path(__file__).resolve().with_name("torture_sender.py")
STATUS_RE = re.compile(r"SIP/2\.0 (\d{3})(?: |$)")


def _status_codes(lines: list[str]) -> list[int]:
    """The status codes of the received datagrams that are responses."""
    return [int(match.group(1)) for line in lines if (match := STATUS_RE.match(line))]


def _satisfies(alternative: str, lines: list[str], is_response: bool) -> bool:
    """Whether one `expect` alternative accepts what came back for a message.

    `respond:NNN` / `reject:NNN`: the first final response is NNN. `reject`: no final response, or a 4xx/5xx.
    `parse`: a request is processed normally, so no 400 comes back; a response is absorbed silently.
    Where `expect` lists several alternatives (3.2.1 badbranch: `respond:400|parse`), any one will do.
    """
    codes = _status_codes(lines)
    first_final = next((code for code in codes if code >= 200), None)
    kind, _, code = alternative.partition(":")
    if code:
        return first_final == int(code)
    if kind == "reject":
        return first_final is None or 400 <= first_final < 600
    if kind == "parse":
        return not lines if is_response else 400 not in codes
    raise AssertionError(f"unknown expect alternative {alternative!r}")


def _run_sender(result_path: Path) -> dict[str, Any]:
    """Run the sender inside a private network namespace and return its JSON result."""
    if shutil.which("unshare") is None:
        pytest.fail("`unshare` (util-linux) is not installed; this test needs it to isolate the server's network")
    command = ["unshare", "-rn", "sh", "-c", 'ip link set lo up && exec "$0" "$@"',
               sys.executable, str(SENDER), str(CONFORMANCE_DIR), str(result_path)]
    completed = subprocess.run(command, timeout=300, cwd=REPO_ROOT, capture_output=True, text=True, check=False)
    output = f"exit status {completed.returncode}\nstdout:\n{completed.stdout}\nstderr:\n{completed.stderr}"
    if not result_path.exists():
        if completed.stderr.startswith("unshare:"):
            pytest.fail("could not create a private network namespace with `unshare -rn` (are user namespaces "
                        f"permitted here? see kernel.unprivileged_userns_clone / user.max_user_namespaces):\n{output}")
        pytest.fail(f"the torture sender wrote no result:\n{output}")
    result: dict[str, Any] = json.loads(result_path.read_text())
    if result["error"]:
        pytest.fail(f"the torture sender failed:\n{result['error']}\n---- server log (tail) ----\n{result['log_tail']}")
    return result


@pytest.mark.timeout(360)
def test_server_answers_every_torture_message(tmp_path: Path) -> None:
    """Each message gets the answer its `expect` allows; the server keeps serving and stops cleanly."""
    if not (CONFORMANCE_DIR / "expected.json").is_file():
        pytest.skip(f"conformance data not found at {CONFORMANCE_DIR}; it lives beside the clone in CI")
    entries = json.loads((CONFORMANCE_DIR / "expected.json").read_text())
    result = _run_sender(tmp_path / "result.json")

    problems = []
    if not result["options_ok"]:
        problems.append(f"no 200 to OPTIONS after the torture messages (got {result['options_replies']})")
    if result["exit_code"] != 0:
        problems.append(f"server exit code on SIGTERM: {result['exit_code']}")
    if result["traceback_in_log"]:
        problems.append("the server log contains a Traceback")
    for entry in entries:
        lines = result["received"].get(entry["file"])
        if lines is None:
            problems.append(f"{entry['file']}: never sent")
            continue
        is_response = (CONFORMANCE_DIR / entry["file"]).read_bytes().lstrip(b"\r\n").startswith(b"SIP/")
        if is_response and lines:
            problems.append(f"{entry['file']}: a response was answered with {lines}")
        elif not any(_satisfies(alt, lines, is_response) for alt in entry["expect"].split("|")):
            problems.append(f"{entry['file']}: expected {entry['expect']}, got {lines}")

    assert not problems, "\n".join(problems) + f"\n---- server log (tail) ----\n{result['log_tail']}"
