"""A media WebSocket client: takes part in a conference without SIP, sending a tone and printing what it hears.

It connects to `GET /v1.0/conferences/{id}/media_stream`, prints the server's first message, sends a tone as
20 ms binary frames of s16le PCM paced in real time, and prints the level of the audio it receives once a
second (the conference's mix without itself). It leaves after `--seconds`, or on Ctrl-C.

    python examples/media_stream_client.py --url http://127.0.0.1:8088/v1.0 --token TOKEN --conference ID
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import json

import aiohttp
import numpy as np


async def send_tone(ws: aiohttp.ClientWebSocketResponse, frequency: float, rate: int) -> None:
    """One 20 ms frame every 20 ms on absolute deadlines, so the stream neither drifts nor bursts."""
    loop = asyncio.get_running_loop()
    frame = rate // 50
    start = loop.time()
    index = 0
    while not ws.closed:
        t = (index * frame + np.arange(frame)) / rate
        samples = np.rint(6000 * np.sin(2 * np.pi * frequency * t)).astype("<i2")
        await ws.send_bytes(samples.tobytes())
        index += 1
        await asyncio.sleep(max(0.0, start + index * 0.02 - loop.time()))


async def print_levels(ws: aiohttp.ClientWebSocketResponse) -> None:
    """Print the level of the received audio once a second (50 frames), and any text message."""
    frames: list[bytes] = []
    async for message in ws:
        if message.type == aiohttp.WSMsgType.BINARY:
            frames.append(message.data)
            if len(frames) == 50:
                samples = np.frombuffer(b"".join(frames), dtype="<i2").astype(np.float64)
                level = 10 * np.log10(np.mean(samples**2) / 32768.0**2 + 1e-12)
                print(f"hearing {level:6.1f} dBFS", flush=True)
                frames.clear()
        elif message.type == aiohttp.WSMsgType.TEXT:
            print(f"server says {message.data}", flush=True)
    print(f"closed by the server: code {ws.close_code}", flush=True)


async def main(url: str, token: str, conference: str, rate: int, frequency: float, seconds: float) -> None:
    stream = f"{url.rstrip('/')}/conferences/{conference}/media_stream"
    async with aiohttp.ClientSession() as session, \
            session.ws_connect(stream, params={"token": token, "rate": str(rate)}) as ws:
        started = json.loads((await ws.receive(timeout=10)).data)
        print(f"joined as conferencecall {started['conferencecall_id']} ({started['rate']} Hz)", flush=True)
        sender = asyncio.create_task(send_tone(ws, frequency, rate))
        try:
            await asyncio.wait_for(print_levels(ws), seconds)
        except TimeoutError:
            print("leaving", flush=True)
        sender.cancel()


if __name__ == "__main__":
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--url", default="http://127.0.0.1:8088/v1.0", help="the REST API's base URL")
    parser.add_argument("--token", required=True)
    parser.add_argument("--conference", required=True, help="the conference id")
    parser.add_argument("--rate", type=int, choices=(8000, 16000, 48000), default=16000)
    parser.add_argument("--frequency", type=float, default=1000.0, help="the tone to send, in Hz")
    parser.add_argument("--seconds", type=float, default=10.0, help="how long to stay")
    args = parser.parse_args()
    with contextlib.suppress(KeyboardInterrupt):
        asyncio.run(main(args.url, args.token, args.conference, args.rate, args.frequency, args.seconds))
