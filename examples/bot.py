"""Bots: participants that live inside the server process, next to callers on the phone.

It starts a server on loopback, creates a conference, prints the SIP URI to dial into it, and adds two bots:
one plays a 440 Hz tone, the other says nothing and prints the level of what it hears once a second
(the tone, and whatever callers say). Stop it with Ctrl-C.

    python examples/bot.py --sip-port 5060 --http-port 8088 --data-dir example-data
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
from confbridge.bots import BotParticipant

RATE = 16000


async def tone(frequency: float, rate: int = RATE) -> AsyncIterator[np.ndarray]:
    """An endless tone in 20 ms frames of floats; the bot takes them at real-time pace."""
    frame = rate // 50
    phase = 0
    while True:
        t = (phase + np.arange(frame)) / rate
        phase += frame
        yield 0.2 * np.sin(2 * np.pi * frequency * t)


async def print_levels(bot: BotParticipant) -> None:
    """Print the level of what the bot hears, in dB below full scale, once a second (50 frames)."""
    frames: list[np.ndarray] = []
    async for frame in bot:
        frames.append(frame)
        if len(frames) == 50:
            samples = np.concatenate(frames).astype(np.float64)
            level = 10 * np.log10(np.mean(samples**2) / 32768.0**2 + 1e-12)
            print(f"listener hears {level:6.1f} dBFS", flush=True)
            frames.clear()
    print(f"listener left: {bot.end_reason}", flush=True)


async def main(config: ServerConfig) -> None:
    async with Server(config) as server:
        conference = server.create_conference(name="bots", detail="created by examples/bot.py")
        print(f"Conference {conference.id}", flush=True)
        print(f"Dial {server.direct_uri(conference)}", flush=True)
        print(f"REST {server.http_url} (token {server.token})", flush=True)
        player = await server.add_bot(conference.id, tone(440.0), name="tone")
        listener = await server.add_bot(conference.id, name="listener")
        print(f"Bots: tone {player.conferencecall_id}, listener {listener.conferencecall_id}", flush=True)
        levels = asyncio.create_task(print_levels(listener))
        stop = asyncio.Event()
        for signum in (signal.SIGINT, signal.SIGTERM):
            asyncio.get_running_loop().add_signal_handler(signum, stop.set)
        await stop.wait()
        await listener.leave()
        await levels


if __name__ == "__main__":
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--sip-port", type=int, default=5060)
    parser.add_argument("--http-port", type=int, default=8088)
    parser.add_argument("--data-dir", type=Path, default=Path("example-data"))
    args = parser.parse_args()
    logging.basicConfig(level=logging.WARNING, format="%(asctime)s %(levelname)s %(name)s: %(message)s")
    asyncio.run(main(ServerConfig(sip_port=args.sip_port, http_port=args.http_port, data_dir=args.data_dir)))
