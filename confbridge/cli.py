"""`confbridge serve`: run the bridge on the command line."""

from __future__ import annotations

import argparse
import asyncio
import logging
import signal
import sys
from pathlib import Path

from sip.digest import Credentials
from sip.timers import TimerConfig

from .config import (
    RECORDING_RATES,
    ServerConfig,
    parse_assignment,
    parse_credentials,
    parse_port_range,
)
from .dtmf_menu import DEFAULT_MENU, MenuAction, parse_binding
from .negotiation import SrtpPolicy
from .server import Server
from .service import RECORDING_MAX_SECONDS


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
    serve.add_argument("--token", action="append", default=[], metavar="TOKEN[=CUSTOMER_ID]",
                       help="a REST token: TOKEN alone is the default customer's (default: generated and kept in the "
                            "data dir); TOKEN=CUSTOMER_ID gives another customer (a UUID) access (repeatable)")
    serve.add_argument("--webhook", type=_customer_value, action="append", default=[], metavar="CUSTOMER_ID=URL",
                       help="POST the customer's events to URL, signed with its webhook secret (repeatable)")
    serve.add_argument("--webhook-secret", type=_customer_value, action="append", default=[],
                       metavar="CUSTOMER_ID=SECRET",
                       help="the key of a customer's webhook signatures (default: random, kept in the database)")
    serve.add_argument("--health-interval", type=float, default=5.0, metavar="SECONDS",
                       help="seconds between participant health checks; three failures kick (default 5)")
    serve.add_argument("--tls-port", type=int, default=None, help="SIP over TLS port (needs --tls-cert/--tls-key)")
    serve.add_argument("--tls-cert", type=Path, default=None, help="TLS certificate chain (PEM)")
    serve.add_argument("--tls-key", type=Path, default=None, help="TLS private key (PEM)")
    serve.add_argument("--sip-t1", type=float, default=0.5, help="RFC 3261 T1 in seconds (default 0.5)")
    serve.add_argument("--sip-t2", type=float, default=4.0, help="RFC 3261 T2 in seconds (default 4)")
    serve.add_argument("--sip-t4", type=float, default=5.0, help="RFC 3261 T4 in seconds (default 5)")
    serve.add_argument("--user-agent", default="confbridge", help="Server/User-Agent header value")
    serve.add_argument("--tcp-idle-timeout", type=float, default=600.0,
                       help="close SIP TCP/TLS connections idle this long (seconds, default 600)")
    serve.add_argument("--scanner-threshold", type=int, default=10,
                       help="requests for unknown users from one address before it is throttled (0: off)")
    serve.add_argument("--scanner-window", type=float, default=60.0, help="seconds those requests are counted over")
    serve.add_argument("--scanner-block", type=float, default=300.0, help="seconds a scanner stays throttled")
    serve.add_argument("--answer-delay", type=float, default=0.0,
                       help="ring (180) this many seconds before answering incoming calls (default 0)")
    serve.add_argument("--ring-timeout", type=float, default=60.0,
                       help="seconds a call we place may ring before it is cancelled")
    serve.add_argument("--dialout-credentials", type=_credentials, action="append", default=[],
                       metavar="USER:PASSWORD[@REALM]", help="digest credentials for calls we place (repeatable)")
    serve.add_argument("--srtp", choices=[policy.value for policy in SrtpPolicy], default="optional",
                       help="SRTP (SDES) for calls: off, optional (default: answer RTP/SAVP offers with SRTP) or "
                            "required (refuse plain RTP)")
    serve.add_argument("--rtp-timeout", type=float, default=30.0,
                       help="hang up a call whose RTP has stopped for this many seconds (default 30)")
    serve.add_argument("--dtmf-menu", type=_binding, action="append", default=None, metavar="SEQUENCE=ACTION",
                       help="a key sequence participants can type (repeatable; actions: "
                            f"{', '.join(action.value for action in MenuAction)}; default *6=toggle_mute); "
                            "'none' turns the menu off")
    serve.add_argument("--recording-rate", type=int, choices=list(RECORDING_RATES), default=16000,
                       help="sample rate of recordings in Hz (default 16000)")
    serve.add_argument("--recording-max-duration", type=float, default=RECORDING_MAX_SECONDS, metavar="SECONDS",
                       help="end a recording by itself after this much audio (default and most: 86400, 24 h)")
    serve.add_argument("--noise-gate", action="store_true",
                       help="leave participants who are not talking out of the mix (idle microphones add no noise)")
    serve.add_argument("--log-level", default="INFO", choices=["DEBUG", "INFO", "WARNING", "ERROR"])
    return parser


def _port_range(text: str) -> tuple[int, int]:
    try:
        return parse_port_range(text)
    except ValueError as exc:
        raise argparse.ArgumentTypeError(str(exc)) from None


def _binding(text: str) -> tuple[str, MenuAction] | None:
    if text.strip().lower() == "none":
        return None
    try:
        return parse_binding(text)
    except ValueError as exc:
        raise argparse.ArgumentTypeError(str(exc)) from None


def _menu(bindings: list[tuple[str, MenuAction] | None] | None) -> dict[str, MenuAction]:
    if bindings is None:
        return dict(DEFAULT_MENU)
    return dict(binding for binding in bindings if binding is not None)


def _customer_value(text: str) -> tuple[str, str]:
    """CUSTOMER_ID=VALUE (the configuration checks both)."""
    try:
        return parse_assignment(text, "CUSTOMER_ID=VALUE")
    except ValueError as exc:
        raise argparse.ArgumentTypeError(str(exc)) from None


def _tokens(values: list[str]) -> tuple[str | None, dict[str, str]]:
    """The default customer's token (the last TOKEN given alone) and the TOKEN=CUSTOMER_ID ones."""
    default, others = None, {}
    for value in values:
        if "=" in value:
            token, customer_id = parse_assignment(value, "TOKEN=CUSTOMER_ID")
            others[token] = customer_id
        elif value:
            default = value
        else:
            raise ValueError("a token may not be empty")
    return default, others


def _credentials(text: str) -> Credentials:
    try:
        return parse_credentials(text)
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
    tls = f", TLS {server.tls_port}" if server.tls_port else ""
    print(f"SIP:   {config.advertised_address}:{server.sip_port} (UDP, TCP{tls})", flush=True)
    print(f"HTTP:  {server.http_url}", flush=True)
    print(f"Token: {server.token}", flush=True)
    print(f"Dial:  sip:direct.<direct_hash>@{config.advertised_address}:{server.sip_port}", flush=True)
    await stopping.wait()
    await server.stop()


def config_from_args(args: argparse.Namespace) -> ServerConfig:
    """The server configuration the `serve` options describe (ValueError when they do not fit together)."""
    token, tokens = _tokens(args.token)
    return ServerConfig(
        bind=args.bind, public_address=args.public_address, sip_port=args.sip_port, rtp_ports=args.rtp_ports,
        http_port=args.http_port, data_dir=args.data_dir, token=token, tokens=tokens,
        webhooks=dict(args.webhook), webhook_secrets=dict(args.webhook_secret),
        health_interval=args.health_interval, user_agent=args.user_agent,
        sip_timers=TimerConfig(args.sip_t1, args.sip_t2, args.sip_t4), tls_port=args.tls_port,
        tls_cert=args.tls_cert, tls_key=args.tls_key, tcp_idle_timeout=args.tcp_idle_timeout,
        scanner_threshold=args.scanner_threshold, scanner_window=args.scanner_window,
        scanner_block=args.scanner_block, answer_delay=args.answer_delay, ring_timeout=args.ring_timeout,
        dialout_credentials=tuple(args.dialout_credentials), srtp=SrtpPolicy(args.srtp),
        rtp_timeout=args.rtp_timeout, dtmf_menu=_menu(args.dtmf_menu), recording_rate=args.recording_rate,
        recording_max_duration=args.recording_max_duration, noise_gate=args.noise_gate)


def main(argv: list[str] | None = None) -> int:
    """Entry point of the `confbridge` console script."""
    args = build_parser().parse_args(argv)
    logging.basicConfig(level=args.log_level, format="%(asctime)s %(levelname)s %(name)s: %(message)s")
    try:
        config = config_from_args(args)
    except ValueError as exc:
        print(f"confbridge: {exc}", file=sys.stderr)
        return 2
    try:
        asyncio.run(serve(config))
    except OSError as exc:
        print(f"confbridge: {exc}", file=sys.stderr)
        return 1
    return 0
