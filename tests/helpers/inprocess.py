"""The server as a library, running in a thread of its own, for tests that need to see its events."""

from __future__ import annotations

import asyncio
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

from confbridge import Server, ServerConfig
from confbridge.events import Event

from .rest import ApiClient


@dataclass
class InProcessServer:
    """A started `Server` on its own event loop thread, with every event it published."""

    server: Server
    loop: asyncio.AbstractEventLoop
    thread: threading.Thread
    events: list[Event] = field(default_factory=list)

    @property
    def api(self) -> ApiClient:
        """A REST client with the server's token."""
        return ApiClient(self.server.http_url, self.server.token)

    @property
    def sip(self) -> tuple[str, int]:
        """(host, port) of the SIP listener."""
        return (self.server.config.bind, self.server.sip_port)

    def direct_uri(self, direct_hash: str) -> str:
        """The SIP URI that dials a conference."""
        return f"sip:direct.{direct_hash}@{self.server.config.bind}:{self.server.sip_port}"

    def call(self, function: Callable[[], Any]) -> Any:
        """Run `function` on the server's loop and return its result."""
        async def run() -> Any:
            return function()

        return asyncio.run_coroutine_threadsafe(run(), self.loop).result(10)

    def events_of(self, event_type: str) -> list[Event]:
        """The events of one type, in order."""
        return [event for event in list(self.events) if event.type == event_type]

    def stop(self) -> None:
        """Stop the server and its thread."""
        asyncio.run_coroutine_threadsafe(self.server.stop(), self.loop).result(20)
        self.loop.call_soon_threadsafe(self.loop.stop)
        self.thread.join(10)


def start_inprocess(config: ServerConfig) -> InProcessServer:
    """Start a server on a new thread and wait until it serves."""
    loop = asyncio.new_event_loop()
    server = Server(config)
    ready = threading.Event()
    failure: list[BaseException] = []

    def run() -> None:
        asyncio.set_event_loop(loop)
        try:
            loop.run_until_complete(server.start())
        except BaseException as exc:  # reported to the starting thread
            failure.append(exc)
            ready.set()
            return
        ready.set()
        loop.run_forever()

    thread = threading.Thread(target=run, name="confbridge-test-server", daemon=True)
    thread.start()
    ready.wait(20)
    if failure:
        raise failure[0]
    running = InProcessServer(server, loop, thread)
    server.events.add_listener(running.events.append)
    return running


def wait_until(condition: Callable[[], object], timeout: float = 5.0) -> None:
    """Poll `condition()` until it is true (an event published, say); fail after `timeout` seconds."""
    deadline = time.monotonic() + timeout
    while not condition():
        assert time.monotonic() < deadline, "timed out"
        time.sleep(0.05)
