"""Shared fixtures: the real server as a child process or as a library on a thread, torn down after
the test, with its log shown when the test failed."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest

from confbridge import ServerConfig
from tests.helpers.inprocess import InProcessServer, start_inprocess
from tests.helpers.ports import free_rtp_range, free_sip_port
from tests.helpers.server_process import LaunchServer, RunningServer, start_server


@pytest.hookimpl(wrapper=True, tryfirst=True)
def pytest_runtest_makereport(item: pytest.Item, call: pytest.CallInfo[None]) -> Iterator[None]:
    """Remember each phase's report on the test item, so fixtures can tell whether the test failed."""
    report = yield
    setattr(item, f"report_{report.when}", report)
    return report


@pytest.fixture
def launch_server(tmp_path: Path, request: pytest.FixtureRequest) -> Iterator[LaunchServer]:
    """Start real servers (`confbridge serve` child processes) with extra command-line options.

    `launch_server("--answer-delay", "3", sip_port=..., http_port=...)`; every server started must exit 0
    on SIGTERM at the end, and its log tail is printed when the test failed.
    """
    started: list[RunningServer] = []

    def launch(*extra_args: str, sip_port: int | None = None, http_port: int | None = None,
               token: str | None = "test-token") -> RunningServer:
        running = start_server(tmp_path / f"data{len(started)}", extra_args=list(extra_args), sip_port=sip_port,
                               http_port=http_port, token=token)
        started.append(running)
        return running

    yield launch
    codes = [running.stop() for running in started]
    report = getattr(request.node, "report_call", None)
    if report is not None and report.failed:
        for running in started:
            print("---- server log (tail) ----\n" + running.log()[-30000:])
    assert codes == [0] * len(started), [running.log()[-3000:] for running in started]


@pytest.fixture
def server(launch_server: LaunchServer) -> RunningServer:
    """A freshly started server with its own data folder and default options."""
    return launch_server()


@pytest.fixture
def inprocess_server(tmp_path: Path) -> Iterator[InProcessServer]:
    """The server as a library on its own thread (for tests that watch its events); loopback, free ports."""
    running = start_inprocess(ServerConfig(sip_port=free_sip_port(), http_port=0, rtp_ports=free_rtp_range(),
                                           data_dir=tmp_path / "inprocess", token="test-token"))
    yield running
    running.stop()
