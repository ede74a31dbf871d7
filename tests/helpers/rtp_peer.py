"""A test RTP endpoint: streams a signal as 20 ms packets of any of our codecs on a real socket, keeps what arrives.

It can protect its stream with SRTP (pylibsrtp, keyed like SDES), slip RFC 4733 key presses into it the way a
phone does, and replay or tamper with what it sent.
"""

from __future__ import annotations

import socket
import threading
import time
from collections import deque
from dataclasses import dataclass

import numpy as np
import numpy.typing as npt

from rtp.dtmf import tone_event_packets
from rtp.packet import RtpPacket, is_rtcp, parse_rtp
from rtp.srtp import SrtpContext

from .peer_codecs import PCMA, PCMU, PeerCodec

LOOPBACK = "127.0.0.1"
TELEPHONE_EVENT = 101


def waiting_rtp(sock: socket.socket) -> list[bytes]:
    """The RTP packets (not RTCP) waiting on a non-blocking socket, read without waiting."""
    packets = []
    while True:
        try:
            data = sock.recv(2048)
        except BlockingIOError:
            return packets
        if not is_rtcp(data):
            packets.append(data)


@dataclass
class Received:
    """One packet as it arrived."""

    at: float
    packet: RtpPacket
    source: tuple[str, int]


class RtpPeer:
    """Sends `samples` in a loop to `remote` every packet time (absolute deadlines) and records every packet.

    `codec` defaults from `payload_type` (0 PCMU, 8 PCMA); `host` may be an IPv6 address; with `srtp` every
    packet out is protected and every packet in must authenticate (failures are counted, not kept).
    """

    def __init__(self, payload_type: int = 0, host: str = LOOPBACK, *, codec: PeerCodec | None = None,
                 srtp: SrtpContext | None = None) -> None:
        self.codec = codec or {0: PCMU, 8: PCMA}[payload_type]
        self.payload_type = self.codec.payload_type
        self.srtp = srtp
        self.sock = socket.socket(socket.AF_INET6 if ":" in host else socket.AF_INET, socket.SOCK_DGRAM)
        self.sock.bind((host, 0))
        self.sock.settimeout(0.05)
        self.port: int = self.sock.getsockname()[1]
        self.received: list[Received] = []
        self.rtcp_packets: list[bytes] = []
        self.unprotect_failures = 0
        self.sent = 0
        self.last_sent: bytes | None = None
        self._events: deque[tuple[bool, bytes]] = deque()
        self._stop = threading.Event()
        self._stop_sending = threading.Event()
        self._threads: list[threading.Thread] = []
        self._receiver = threading.Thread(target=self._receive_loop, daemon=True)
        self._receiver.start()

    @property
    def rate(self) -> int:
        """Sample rate of the audio this peer sends and hears."""
        return self.codec.rate

    def start_sending(self, remote: tuple[str, int], samples: npt.NDArray[np.int16], ssrc: int = 0x1234) -> None:
        """Start streaming `samples` (at the codec's rate, looped) to `remote`."""
        payloads = self.codec.encode(samples)
        thread = threading.Thread(target=self._send_loop, args=(remote, payloads, ssrc), daemon=True)
        thread.start()
        self._threads.append(thread)

    def press(self, digit: str, duration_ms: int = 160) -> None:
        """Slip one key press (RFC 4733, payload type 101) into the stream, in place of audio."""
        self._events.extend(tone_event_packets(digit, duration_ms, self.codec.clock_rate, step_ms=20))

    def send_raw(self, data: bytes, remote: tuple[str, int]) -> None:
        """Send one datagram as is."""
        self.sock.sendto(data, remote)

    def _send_loop(self, remote: tuple[str, int], payloads: list[bytes], ssrc: int) -> None:
        start = time.monotonic()
        index = 0
        event_timestamp: int | None = None
        while not self._stop.is_set() and not self._stop_sending.is_set():
            timestamp = (index * self.codec.frame_clock) & 0xFFFFFFFF
            if self._events:
                marker, payload = self._events.popleft()
                if marker or event_timestamp is None:
                    event_timestamp = timestamp
                packet = RtpPacket(TELEPHONE_EVENT, index & 0xFFFF, event_timestamp, ssrc, payload, marker=marker)
            else:
                event_timestamp = None
                packet = RtpPacket(self.payload_type, index & 0xFFFF, timestamp, ssrc,
                                   payloads[index % len(payloads)], marker=index == 0)
            data = packet.to_bytes()
            if self.srtp is not None:
                data = self.srtp.protect(data)
            self.sock.sendto(data, remote)
            self.last_sent = data
            self.sent += 1
            index += 1
            delay = start + index * self.codec.ptime / 1000 - time.monotonic()
            if delay > 0:
                time.sleep(delay)

    def _receive_loop(self) -> None:
        while not self._stop.is_set():
            try:
                data, source = self.sock.recvfrom(2048)
            except (TimeoutError, OSError):
                continue
            if is_rtcp(data):
                self.rtcp_packets.append(data)
                continue
            if self.srtp is not None:
                clear = self.srtp.unprotect(data)
                if clear is None:
                    self.unprotect_failures += 1
                    continue
                data = clear
            self.received.append(Received(time.monotonic(), parse_rtp(data), (source[0], source[1])))

    def decoded(self) -> list[tuple[float, npt.NDArray[np.int16]]]:
        """(arrival time, samples) of every audio packet received, decoded in order."""
        decoder = self.codec.decoder()
        return [(r.at, decoder.decode(r.packet.payload)) for r in list(self.received)
                if r.packet.payload_type == self.payload_type]

    def audio(self, skip_seconds: float = 0.0) -> npt.NDArray[np.int16]:
        """Everything received, decoded to 16-bit samples at the codec's rate."""
        pieces = [samples for _, samples in self.decoded()]
        samples = np.concatenate(pieces) if pieces else np.zeros(0, dtype=np.int16)
        return samples[int(skip_seconds * self.rate):]

    def heard_between(self, start: float, end: float) -> npt.NDArray[np.int16]:
        """The audio of the packets that arrived between two `time.monotonic()` instants."""
        pieces = [samples for at, samples in self.decoded() if start <= at < end]
        return np.concatenate(pieces) if pieces else np.zeros(0, dtype=np.int16)

    def stop_sending(self) -> None:
        """Go quiet (a phone that lost its network, say) but keep receiving."""
        self._stop_sending.set()
        for thread in self._threads:
            thread.join(2)

    def stop(self) -> None:
        """Stop sending and receiving, close the socket."""
        self._stop.set()
        for thread in self._threads:
            thread.join(2)
        self._receiver.join(2)
        self.sock.close()
