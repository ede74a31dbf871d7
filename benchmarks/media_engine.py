"""Cost of the whole media engine per codec: RTP receive and one full tick (decode, conceal, resample, mix, encode,
packetize), for conferences of 10 participants all on one codec, and for mixed-codec conferences.

Packets are handed to each leg's session directly and sends go nowhere, so this is CPU only, no socket I/O.
Prints one row per case: microseconds per received packet, milliseconds per tick, microseconds per leg per tick.

    python benchmarks/media_engine.py
"""

from __future__ import annotations

import asyncio
import time

import numpy as np
from mixer_tick import NullRecorder, NullSocket

from confbridge.media import MediaEngine
from rtp.codecs import G722, OPUS, PCMA, PCMU, AudioCodec
from rtp.packet import RtpPacket
from rtp.ports import PortAllocator
from rtp.session import StreamParams

TICKS = 150
WARMUP = 20
PAYLOAD_TYPES = {OPUS: 111, G722: 9, PCMU: 0, PCMA: 8}




def measure(codecs: list[AudioCodec], legs: int, per_conference: int = 10) -> tuple[float, float]:
    """(µs per received packet, ms per tick) with `legs` legs cycling through `codecs`."""
    loop = asyncio.new_event_loop()
    media = MediaEngine(host="127.0.0.1", ports=PortAllocator(20000, 29999), recorder=NullRecorder(),  # type: ignore[arg-type]
                        loop=loop)
    streams = []
    real_sockets = []
    for index in range(legs):
        codec = codecs[index % len(codecs)]
        peer = ("127.0.0.1", 50000 + 2 * index)
        leg = media.open_leg(f"leg{index}", f"conference{index // per_conference}",
                             StreamParams(codec, PAYLOAD_TYPES[codec], remote=peer, remote_reachable=True))
        real_sockets.append((leg.socket, leg.socket.sock))
        leg.socket.sock = NullSocket()  # type: ignore[assignment]
        t = np.arange(codec.frame_samples) / codec.sample_rate
        payload = codec.new_encoder().encode(np.rint(3000 * np.sin(2 * np.pi * (300 + index) * t)).astype(np.int16))
        packets = [RtpPacket(PAYLOAD_TYPES[codec], k, k * codec.frame_clock, 1000 + index, payload).to_bytes()
                   for k in range(TICKS)]
        streams.append((leg, peer, packets))
    receive = tick = 0.0
    for k in range(TICKS):
        now = loop.time()
        start = time.perf_counter()
        for leg, peer, packets in streams:
            leg.session.receive(packets[k], peer, now)
        middle = time.perf_counter()
        media.tick()
        end = time.perf_counter()
        if k >= WARMUP:
            receive += middle - start
            tick += end - middle
    for rtp_socket, sock in real_sockets:
        rtp_socket.sock = sock
    media.close()
    loop.close()
    runs = TICKS - WARMUP
    return receive / runs / legs * 1e6, tick / runs * 1e3


def main() -> None:
    cases = [("PCMU", [PCMU], 100), ("PCMU", [PCMU], 1000), ("G722", [G722], 100), ("opus", [OPUS], 100),
             ("PCMU+G722+opus", [PCMU, G722, OPUS], 99)]
    print(f"{'codecs':>16} {'legs':>5} {'mix Hz':>7} {'rx us/pkt':>10} {'tick ms':>8} {'us/leg':>7}")
    for name, codecs, legs in cases:
        rate = max(codec.sample_rate for codec in codecs)
        per_packet, per_tick = measure(codecs, legs)
        print(f"{name:>16} {legs:>5} {rate:>7} {per_packet:>10.1f} {per_tick:>8.2f} {per_tick * 1e3 / legs:>7.1f}")


if __name__ == "__main__":
    main()
