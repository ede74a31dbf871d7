"""Shared fixtures: the real server as a child process, torn down and its log shown when a test fails."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest

from confbridge import ServerConfig
from tests.helpers.inprocess import InProcessServer, start_inprocess
from tests.helpers.server_process import RunningServer, free_rtp_range, start_server


@pytest.hookimpl(wrapper=True, tryfirst=True)
def pytest_runtest_makereport(item: pytest.Item, call: pytest.CallInfo[None]) -> Iterator[None]:
    """Remember each phase's report on the test item, so fixtures can tell whether the test failed."""
    report = yield
    setattr(item, f"report_{report.when}", report)
    return report


@pytest.fixture
def server(tmp_path: Path, request: pytest.FixtureRequest) -> Iterator[RunningServer]:
    """A freshly started server with its own data folder; it must exit cleanly on SIGTERM."""
    running = start_server(tmp_path / "data")
    yield running
    code = running.stop()
    report = getattr(request.node, "report_call", None)
    if report is not None and report.failed:
        print("---- server log (tail) ----\n" + running.log()[-30000:])
    assert code == 0, f"server exited with {code}:\n{running.log()[-5000:]}"


@pytest.fixture
def inprocess_server(tmp_path: Path) -> Iterator[InProcessServer]:
    """The server as a library on its own thread (for tests that watch its events); loopback, free ports."""
    running = start_inprocess(ServerConfig(sip_port=0, http_port=0, rtp_ports=free_rtp_range(),
                                           data_dir=tmp_path / "inprocess", token="test-token"))
    yield running
    running.stop()
