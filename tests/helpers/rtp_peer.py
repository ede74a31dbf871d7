"""A test RTP endpoint: sends a tone as 20 ms PCMU packets on a real socket and keeps what it receives."""

from __future__ import annotations

import socket
import threading
import time
from dataclasses import dataclass

import numpy as np
import numpy.typing as npt

from rtp.g711 import alaw_decode, alaw_encode, ulaw_decode, ulaw_encode
from rtp.packet import RtpPacket, parse_rtp

LOOPBACK = "127.0.0.1"
FRAME = 160


@dataclass
class Received:
    """One packet as it arrived."""

    at: float
    packet: RtpPacket
    source: tuple[str, int]


CODECS = {0: (ulaw_encode, ulaw_decode), 8: (alaw_encode, alaw_decode)}


class RtpPeer:
    """Sends `samples` in a loop to `remote` every 20 ms (absolute deadlines) and records every packet.

    Payload type 0 is PCMU, 8 is PCMA; `host` may be an IPv6 address.
    """

    def __init__(self, payload_type: int = 0, host: str = LOOPBACK) -> None:
        self.payload_type = payload_type
        self.encode, self.decode = CODECS[payload_type]
        self.sock = socket.socket(socket.AF_INET6 if ":" in host else socket.AF_INET, socket.SOCK_DGRAM)
        self.sock.bind((host, 0))
        self.sock.settimeout(0.05)
        self.port: int = self.sock.getsockname()[1]
        self.received: list[Received] = []
        self.sent = 0
        self._stop = threading.Event()
        self._threads: list[threading.Thread] = []
        self._receiver = threading.Thread(target=self._receive_loop, daemon=True)
        self._receiver.start()

    def start_sending(self, remote: tuple[str, int], samples: npt.NDArray[np.int16], ssrc: int = 0x1234) -> None:
        """Start streaming `samples` (looped) to `remote`."""
        thread = threading.Thread(target=self._send_loop, args=(remote, self.encode(samples).tobytes(), ssrc),
                                  daemon=True)
        thread.start()
        self._threads.append(thread)

    def send_raw(self, data: bytes, remote: tuple[str, int]) -> None:
        """Send one datagram as is."""
        self.sock.sendto(data, remote)

    def _send_loop(self, remote: tuple[str, int], encoded: bytes, ssrc: int) -> None:
        start = time.monotonic()
        index = 0
        while not self._stop.is_set():
            offset = (index * FRAME) % (len(encoded) - FRAME)
            packet = RtpPacket(self.payload_type, index & 0xFFFF, (index * FRAME) & 0xFFFFFFFF, ssrc,
                               encoded[offset : offset + FRAME], marker=index == 0)
            self.sock.sendto(packet.to_bytes(), remote)
            self.sent += 1
            index += 1
            delay = start + index * 0.020 - time.monotonic()
            if delay > 0:
                time.sleep(delay)

    def _receive_loop(self) -> None:
        while not self._stop.is_set():
            try:
                data, source = self.sock.recvfrom(2048)
            except (TimeoutError, OSError):
                continue
            self.received.append(Received(time.monotonic(), parse_rtp(data), (source[0], source[1])))

    def audio(self, skip_seconds: float = 0.0) -> npt.NDArray[np.int16]:
        """Everything received, in sequence order, decoded to 16-bit samples."""
        packets = [r.packet for r in self.received]
        payload = b"".join(p.payload for p in packets)
        samples = self.decode(np.frombuffer(payload, dtype=np.uint8))
        return samples[int(skip_seconds * 8000):]

    def stop(self) -> None:
        """Stop sending and receiving, close the socket."""
        self._stop.set()
        for thread in self._threads:
            thread.join(2)
        self._receiver.join(2)
        self.sock.close()
