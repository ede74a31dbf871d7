"""Scanner throttling end to end: a source that keeps dialling users that do not exist is ignored for a while.

Tools like sipvicious walk extension numbers and collect 404s. With `--scanner-threshold 5
--scanner-window 30 --scanner-block 3` the fifth 404 from one address blocks it for three seconds,
during which its requests get no answer at all -- not even 100 Trying. On loopback every socket is
127.0.0.1, so "another address is unaffected" is checked as: the REST API keeps working, the block
expires on time and the server log names the throttled address. The 404 itself must give a scanner no
hint (plain "Not Found", no Warning) and carry the configured Server header.
"""

from __future__ import annotations

import secrets
import time

import pytest

from sip.message import Response
from tests.helpers.server_process import LaunchServer, RunningServer
from tests.helpers.sip_client import SipClient
from tests.helpers.sip_messages import pcmu_offer

THRESHOLD = 5
BLOCK_SECONDS = 3.0
USER_AGENT = "bridge-under-test/9.9"


@pytest.fixture
def guarded(launch_server: LaunchServer) -> RunningServer:
    """A server with a low scanner threshold and a short block."""
    return launch_server("--scanner-threshold", str(THRESHOLD), "--scanner-window", "30",
                         "--scanner-block", str(BLOCK_SECONDS), "--user-agent", USER_AGENT)


def unknown_uri(server: RunningServer) -> str:
    return f"sip:direct.{secrets.token_hex(6)}@{server.sip[0]}:{server.sip[1]}"


def invite_unknown(client: SipClient, server: RunningServer) -> Response:
    """INVITE a direct hash that belongs to no conference (a new call each time), ACK the final answer, return it.

    Responses are matched by Call-ID, so a late copy of an earlier 404 is never taken for this one.
    """
    client.party.target_uri = unknown_uri(server)
    client.party.call_id = secrets.token_hex(8) + "@scan"
    client.party.to_tag = None
    branch = client.party.new_branch()
    client.send(client.party.invite(pcmu_offer("127.0.0.1", 40000), branch=branch))
    client.provisional.clear()
    deadline = time.monotonic() + 5
    while True:
        message, _ = client.receive(max(0.01, deadline - time.monotonic()))
        if not isinstance(message, Response) or message.call_id != client.party.call_id:
            continue
        if message.status_code < 200:
            client.provisional.append(message.status_code)
            continue
        client.send(client.party.request("ACK", branch=branch, to_tag=message.to_address.tag))
        return message


def answers_within(client: SipClient, seconds: float, call_id: str) -> list[Response]:
    """Every response for Call-ID `call_id` that arrives within `seconds` (other traffic is skipped)."""
    found: list[Response] = []
    deadline = time.monotonic() + seconds
    while (remaining := deadline - time.monotonic()) > 0:
        try:
            message, _ = client.receive(remaining)
        except TimeoutError:
            break
        if isinstance(message, Response) and message.call_id == call_id:
            found.append(message)
    return found


def test_scanner_is_throttled_then_released(guarded: RunningServer) -> None:
    server = guarded
    scanner = SipClient(server.sip, unknown_uri(server))
    try:
        for attempt in range(THRESHOLD):
            final = invite_unknown(scanner, server)
            assert final.status_code == 404, (attempt, final)
            assert final.reason == "Not Found", "no hint in the reason phrase"
            assert "Warning" not in final.headers, "no hint in a Warning header"
            assert final.headers.get("Server") == USER_AGENT
            assert scanner.provisional == [100]
        blocked_at = time.monotonic()

        # Throttled: a sixth INVITE and an OPTIONS from the same source get nothing at all.
        scanner.party.target_uri = unknown_uri(server)
        scanner.party.call_id = secrets.token_hex(8) + "@scan"
        scanner.party.to_tag = None
        scanner.send(scanner.party.invite(pcmu_offer("127.0.0.1", 40000)))
        assert answers_within(scanner, 1.0, scanner.party.call_id) == [], "a throttled source is not answered"
        scanner.party.call_id = secrets.token_hex(8) + "@scan"
        scanner.send(scanner.party.request("OPTIONS"))
        assert answers_within(scanner, 0.5, scanner.party.call_id) == []
        other = SipClient(server.sip, f"sip:{server.sip[0]}:{server.sip[1]}")
        other.send(other.party.request("OPTIONS"))
        assert answers_within(other, 0.5, other.party.call_id) == [], "the block is per address (all 127.0.0.1)"
        other.close()

        log = server.log()
        assert "WARNING" in log and "throttling 127.0.0.1" in log, "the log names the throttled address"
        assert log.count("throttling 127.0.0.1") == 1

        # The REST API is not SIP: it keeps working for everyone meanwhile.
        conference = server.api.post("/conferences", {"type": "conference", "name": "during the block"})
        assert server.api.get(f"/conferences/{conference['id']}")["status"] == "progressing"

        # After --scanner-block seconds the address is answered again.
        time.sleep(max(0.0, blocked_at + BLOCK_SECONDS + 0.2 - time.monotonic()))
        scanner.party.call_id = secrets.token_hex(8) + "@scan"
        scanner.send(scanner.party.request("OPTIONS"))
        answers = answers_within(scanner, 1.0, scanner.party.call_id)
        assert [a.status_code for a in answers] == [200], answers
        assert answers[0].headers.get("Server") == USER_AGENT
        assert invite_unknown(scanner, server).status_code == 404, "a released source starts counting afresh"
    finally:
        scanner.close()


def test_unanswered_404s_are_not_resent_to_a_source_blocked_by_them(guarded: RunningServer) -> None:
    """The block starts with the fifth 404; its ACK then arrives from a blocked source and is dropped.

    Whatever the server does about that, the scanner must not get that 404 again and again for the
    length of Timer H (64*T1 = 32 s) while it is supposedly ignored.
    """
    server = guarded
    scanner = SipClient(server.sip, unknown_uri(server))
    try:
        for _ in range(THRESHOLD):
            assert invite_unknown(scanner, server).status_code == 404
        last_call_id = scanner.party.call_id
        resent = answers_within(scanner, 2.0, last_call_id)
        assert resent == [], f"the last 404 came {len(resent)} more times while the source was blocked"
    finally:
        scanner.close()
