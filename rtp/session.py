"""One RTP audio stream between us and a peer, sans-IO.

`receive(data, source, now)` takes a datagram from the socket; `pull_frame()` gives the next 20 ms of
the peer's encoded audio for the mixer tick; `packetize(payload)` stamps our outgoing frames with
gapless sequence numbers and timestamps. Symmetric RTP: we send to where the peer sends from.
"""

from __future__ import annotations

import logging
import secrets
from dataclasses import dataclass

from .codecs import AudioCodec
from .packet import HEADER, RtpParseError, is_rtcp, read_header
from .playout import PlayoutBuffer

logger = logging.getLogger(__name__)

Address = tuple[str, int]


@dataclass
class RtpStats:
    """Counters of one session."""

    packets_received: int = 0
    packets_sent: int = 0
    dropped_malformed: int = 0
    dropped_payload_type: int = 0
    rtcp_received: int = 0
    ssrc_changes: int = 0


class RtpSession:
    """The media of one call leg: what we receive from the peer and how we stamp what we send."""

    def __init__(self, codec: AudioCodec, payload_type: int, *, remote: Address | None,
                 telephone_event_payload_type: int | None = None, ptime_ms: int = 20) -> None:
        self.codec = codec
        self.payload_type = payload_type
        self.telephone_event_payload_type = telephone_event_payload_type
        self.frame_samples = codec.samples_per_frame(ptime_ms)
        self.remote = remote
        self.ssrc = secrets.randbits(32)
        self.stats = RtpStats()
        self.first_packet_at: float | None = None
        self.last_packet_at: float | None = None
        self.playout = PlayoutBuffer(self.frame_samples, codec.silence)
        self._sequence = secrets.randbits(16)
        self._timestamp = secrets.randbits(32)
        self._remote_ssrc: int | None = None
        self._marker_next = True

    def receive(self, data: bytes, source: Address, now: float) -> bool:
        """Take one datagram; True if it carried audio for the playout buffer."""
        if is_rtcp(data):
            self.stats.rtcp_received += 1
            return False
        try:
            header = read_header(data)
        except RtpParseError:
            self.stats.dropped_malformed += 1
            return False
        payload_type, ssrc = header.payload_type, header.ssrc
        self.remote = source
        self.last_packet_at = now
        if self.first_packet_at is None:
            self.first_packet_at = now
        if payload_type != self.payload_type:
            if payload_type != self.telephone_event_payload_type:
                self.stats.dropped_payload_type += 1
            return False
        if ssrc != self._remote_ssrc:
            if self._remote_ssrc is not None:
                self.stats.ssrc_changes += 1
                self.playout.reset()
            self._remote_ssrc = ssrc
        self.stats.packets_received += 1
        self.playout.push(header.timestamp, bytes(data[header.payload_start : header.payload_end]))
        return True

    def set_codec(self, codec: AudioCodec, payload_type: int, telephone_event_payload_type: int | None) -> None:
        """Switch codec mid-call (a re-INVITE): buffered audio of the old codec is dropped."""
        if codec.samples_per_frame() != self.frame_samples:
            raise ValueError(f"{codec.name} frames differ in size from {self.codec.name}")
        self.codec = codec
        self.payload_type = payload_type
        self.telephone_event_payload_type = telephone_event_payload_type
        self.playout = PlayoutBuffer(self.frame_samples, codec.silence)
        self._marker_next = True

    def pull_frame(self) -> bytes | None:
        """The peer's next frame of encoded audio, or None for a gap."""
        return self.playout.pop()

    def packetize(self, payload: bytes) -> bytes:
        """One outgoing RTP packet carrying `payload`; sequence and timestamp advance by one frame."""
        marker = 0x80 if self._marker_next else 0
        self._marker_next = False
        packet = HEADER.pack(0x80, marker | self.payload_type, self._sequence, self._timestamp, self.ssrc) + payload
        self._sequence = (self._sequence + 1) & 0xFFFF
        self._timestamp = (self._timestamp + self.frame_samples) & 0xFFFFFFFF
        self.stats.packets_sent += 1
        return packet
