"""Events in-process: every change of every conference, call and recording, as an async stream.

It starts a server on loopback, creates a conference, prints the SIP URI to dial into it, and prints each event
the server publishes: dial in, hang up, or use the REST API and watch. A bot plays a short tone at the start,
so there is something to see right away. Stop it with Ctrl-C.

    python examples/events.py --sip-port 5060 --http-port 8088 --data-dir example-data
"""

from __future__ import annotations

import argparse
import asyncio
import logging
import signal
from collections.abc import AsyncIterator
from pathlib import Path

import numpy as np

from confbridge import Server, ServerConfig


async def beep(seconds: float, rate: int = 16000) -> AsyncIterator[np.ndarray]:
    """A 660 Hz tone of `seconds` in one frame: the bot plays it out in real time, then leaves."""
    t = np.arange(int(seconds * rate)) / rate
    yield 0.2 * np.sin(2 * np.pi * 660.0 * t)


async def print_events(server: Server) -> None:
    async with server.events.subscribe() as events:
        async for event in events:
            data = event.data
            status = data.get("status", "")
            print(f"{event.type:<24} {data.get('id', '')} {status}", flush=True)


async def main(config: ServerConfig, bot_seconds: float) -> None:
    async with Server(config) as server:
        printer = asyncio.create_task(print_events(server))
        await asyncio.sleep(0)  # subscribed before anything happens
        conference = server.create_conference(name="events", detail="created by examples/events.py")
        print(f"Dial {server.direct_uri(conference)}", flush=True)
        if bot_seconds > 0:
            await server.add_bot(conference.id, beep(bot_seconds), name="beep")
        stop = asyncio.Event()
        for signum in (signal.SIGINT, signal.SIGTERM):
            asyncio.get_running_loop().add_signal_handler(signum, stop.set)
        await stop.wait()
        printer.cancel()


if __name__ == "__main__":
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--sip-port", type=int, default=5060)
    parser.add_argument("--http-port", type=int, default=8088)
    parser.add_argument("--data-dir", type=Path, default=Path("example-data"))
    parser.add_argument("--bot-seconds", type=float, default=2.0, help="how long the bot beeps (0: no bot)")
    args = parser.parse_args()
    logging.basicConfig(level=logging.WARNING, format="%(asctime)s %(levelname)s %(name)s: %(message)s")
    config = ServerConfig(sip_port=args.sip_port, http_port=args.http_port, data_dir=args.data_dir)
    asyncio.run(main(config, args.bot_seconds))
