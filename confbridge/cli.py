"""`confbridge serve`: run the bridge on the command line."""

from __future__ import annotations

import argparse
import asyncio
import logging
import signal
import sys
from pathlib import Path

from .config import ServerConfig, parse_port_range
from .server import Server


def build_parser() -> argparse.ArgumentParser:
    """The command-line grammar."""
    parser = argparse.ArgumentParser(prog="confbridge", description="A SIP/RTP audio conference bridge.")
    commands = parser.add_subparsers(dest="command", required=True)
    serve = commands.add_parser("serve", help="run the server")
    serve.add_argument("--bind", default="127.0.0.1", help="address to listen on (default 127.0.0.1)")
    serve.add_argument("--public-address", default=None,
                       help="address announced in SDP and Contact (default: the bind address)")
    serve.add_argument("--sip-port", type=int, default=5060, help="SIP UDP port (default 5060)")
    serve.add_argument("--rtp-ports", type=_port_range, default=(20000, 20999), metavar="LOW-HIGH",
                       help="RTP port range (default 20000-20999)")
    serve.add_argument("--http-port", type=int, default=8088, help="REST API port (default 8088)")
    serve.add_argument("--data-dir", type=Path, default=Path("confbridge-data"),
                       help="database and recordings folder (default ./confbridge-data)")
    serve.add_argument("--token", default=None,
                       help="REST token of the default customer (default: generated and kept in the data dir)")
    serve.add_argument("--log-level", default="INFO", choices=["DEBUG", "INFO", "WARNING", "ERROR"])
    return parser


def _port_range(text: str) -> tuple[int, int]:
    try:
        return parse_port_range(text)
    except ValueError as exc:
        raise argparse.ArgumentTypeError(str(exc)) from None


async def serve(config: ServerConfig) -> None:
    """Run a server until SIGINT or SIGTERM, then stop it cleanly."""
    server = Server(config)
    await server.start()
    loop = asyncio.get_running_loop()
    stopping = asyncio.Event()
    for signum in (signal.SIGINT, signal.SIGTERM):
        loop.add_signal_handler(signum, stopping.set)
    print(f"SIP:   {config.advertised_address}:{server.sip_port} (UDP)", flush=True)
    print(f"HTTP:  {server.http_url}", flush=True)
    print(f"Token: {server.token}", flush=True)
    print(f"Dial:  sip:direct.<direct_hash>@{config.advertised_address}:{server.sip_port}", flush=True)
    await stopping.wait()
    await server.stop()


def main(argv: list[str] | None = None) -> int:
    """Entry point of the `confbridge` console script."""
    args = build_parser().parse_args(argv)
    logging.basicConfig(level=args.log_level, format="%(asctime)s %(levelname)s %(name)s: %(message)s")
    config = ServerConfig(bind=args.bind, public_address=args.public_address, sip_port=args.sip_port,
                          rtp_ports=args.rtp_ports, http_port=args.http_port, data_dir=args.data_dir,
                          token=args.token)
    try:
        asyncio.run(serve(config))
    except OSError as exc:
        print(f"confbridge: {exc}", file=sys.stderr)
        return 1
    return 0
