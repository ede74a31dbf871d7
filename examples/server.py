"""The bundled example server: confbridge composed from its public library API.

It starts a server on loopback, creates one conference and prints the SIP URI to dial into it.
Stop it with Ctrl-C.

    python examples/server.py --sip-port 5060 --http-port 8088 --data-dir example-data
"""

from __future__ import annotations

import argparse
import asyncio
import logging
import signal
from pathlib import Path

from confbridge import Server, ServerConfig


async def main(config: ServerConfig) -> None:
    async with Server(config) as server:
        conference = server.create_conference(name="example", detail="created by examples/server.py")
        print(f"Dial {server.direct_uri(conference)}", flush=True)
        print(f"REST {server.http_url} (token {server.token})", flush=True)
        stop = asyncio.Event()
        for signum in (signal.SIGINT, signal.SIGTERM):
            asyncio.get_running_loop().add_signal_handler(signum, stop.set)
        await stop.wait()


if __name__ == "__main__":
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--sip-port", type=int, default=5060)
    parser.add_argument("--http-port", type=int, default=8088)
    parser.add_argument("--data-dir", type=Path, default=Path("example-data"))
    args = parser.parse_args()
    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(levelname)s %(name)s: %(message)s")
    asyncio.run(main(ServerConfig(sip_port=args.sip_port, http_port=args.http_port, data_dir=args.data_dir)))
