"""The Server as a library: start, events, a failed start that leaves nothing open, stop."""

from __future__ import annotations

import asyncio
import socket
import threading
from pathlib import Path

import pytest

from confbridge import Server, ServerConfig
from sip.timers import TimerConfig
from tests.helpers.ports import free_rtp_range, free_sip_port


def config(tmp_path: Path, sip_port: int = 0) -> ServerConfig:
    return ServerConfig(sip_port=sip_port, http_port=0, rtp_ports=free_rtp_range(), data_dir=tmp_path / "data",
                        token="library-token")


def test_library_server_publishes_events_and_stops_cleanly(tmp_path: Path) -> None:
    async def scenario() -> list[str]:
        async with Server(config(tmp_path)) as server:
            assert server.sip_port > 0 and server.http_port > 0
            subscription = server.events.subscribe()
            conference = server.create_conference(name="lib")
            assert server.direct_uri(conference) == (
                f"sip:direct.{conference.direct_hash}@127.0.0.1:{server.sip_port}")
            seen = [(await subscription.get(1)).type for _ in range(2)]
            subscription.close()
            return seen

    assert asyncio.run(scenario()) == ["conference_created", "conference_updated"]
    assert not [t for t in threading.enumerate() if t.name == "recorder"], "recorder thread ended"


def test_failed_start_releases_everything(tmp_path: Path) -> None:
    taken = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
    port = free_sip_port()
    taken.bind(("127.0.0.1", port))
    try:
        async def failing() -> None:
            await Server(config(tmp_path, sip_port=port)).start()

        with pytest.raises(OSError):
            asyncio.run(failing())
    finally:
        taken.close()
    assert not [t for t in threading.enumerate() if t.name == "recorder"]

    async def works() -> int:
        async with Server(config(tmp_path, sip_port=port)) as server:
            return server.sip_port

    assert asyncio.run(works()) == port


def test_library_dial_creates_a_dialing_call_that_fails_when_nobody_answers(tmp_path: Path) -> None:
    nobody = free_sip_port()

    async def scenario() -> tuple[str, str]:
        cfg = config(tmp_path)
        cfg.sip_timers = TimerConfig(t1=0.02)
        cfg.ring_timeout = 30
        async with Server(cfg) as server:
            conference = server.create_conference(name="dial")
            call = server.dial(f"sip:nobody@127.0.0.1:{nobody}", conference.id)
            first = call.status.value
            for _ in range(200):  # Timer B is 64*T1 = 1.28 s
                await asyncio.sleep(0.02)
                assert server.service is not None
                final = server.service.get_call(None, call.id)
                if final.status.value == "hangup":
                    return first, final.hangup_reason
            raise AssertionError("the unanswered call never ended")

    assert asyncio.run(scenario()) == ("dialing", "noanswer")
