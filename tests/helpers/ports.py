"""Free loopback ports for the servers, SIPp instances and RTP peers a test starts."""

from __future__ import annotations

import random
import socket

LOOPBACK = "127.0.0.1"


def _family(host: str) -> int:
    return socket.AF_INET6 if ":" in host else socket.AF_INET


def free_port(kind: int = socket.SOCK_DGRAM, host: str = LOOPBACK) -> int:
    """A port the kernel says is free right now (UDP by default)."""
    with socket.socket(_family(host), kind) as sock:
        sock.bind((host, 0))
        return int(sock.getsockname()[1])


def free_sip_port(host: str = LOOPBACK) -> int:
    """A port free for both UDP and TCP, as a SIP listener (the server's, or SIPp's) needs."""
    for _ in range(100):
        port = free_port(socket.SOCK_DGRAM, host)
        with socket.socket(_family(host), socket.SOCK_STREAM) as tcp:
            try:
                tcp.bind((host, port))
            except OSError:
                continue
        return port
    raise RuntimeError(f"no port free for both UDP and TCP on {host}")


def free_media_port() -> int:
    """An even UDP port with the next three free too (SIPp uses audio, RTCP and video ports)."""
    for _ in range(100):
        base = free_port() & ~1
        socks: list[socket.socket] = []
        try:
            for port in range(base, base + 4):
                sock = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
                socks.append(sock)
                sock.bind((LOOPBACK, port))
        except OSError:
            continue
        finally:
            for sock in socks:
                sock.close()
        return base
    raise RuntimeError("no free media port block")


def free_rtp_range(size: int = 100) -> tuple[int, int]:
    """A block of `size` ports in 30000-59999 whose first ports are free."""
    for _ in range(50):
        low = random.randrange(30000, 60000 - size, 2)
        try:
            for port in range(low, low + 8):
                with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as sock:
                    sock.bind((LOOPBACK, port))
        except OSError:
            continue
        return low, low + size - 1
    raise RuntimeError("no free RTP port block")
