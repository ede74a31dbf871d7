"""RTP packets (RFC 3550 §5.1): parse and build, with CSRCs, header extension and padding."""

from __future__ import annotations

import struct
from dataclasses import dataclass
from typing import NamedTuple

Address = tuple[str, int]
"""A UDP peer: (host, port)."""
HEADER = struct.Struct("!BBHII")
"""V/P/X/CC, M/PT, sequence number, timestamp, SSRC: the 12 fixed bytes."""

RTP_VERSION = 2


class RtpParseError(ValueError):
    """The bytes are not a valid RTP packet."""


@dataclass(slots=True)
class RtpPacket:
    """One RTP packet."""

    payload_type: int
    sequence_number: int
    timestamp: int
    ssrc: int
    payload: bytes = b""
    marker: bool = False
    csrcs: tuple[int, ...] = ()
    extension: tuple[int, bytes] | None = None
    """(profile-defined 16 bits, extension data whose length is a multiple of 4)."""
    padding: int = 0
    """Number of padding bytes (including the count byte) to add when building; 0 for none."""

    def to_bytes(self) -> bytes:
        """Serialize the packet."""
        if not 0 <= self.payload_type < 128 or len(self.csrcs) > 15 or not 0 <= self.padding < 256:
            raise ValueError("RTP field out of range")
        first = (RTP_VERSION << 6) | (0x20 if self.padding else 0) | (0x10 if self.extension else 0) | len(self.csrcs)
        out = [HEADER.pack(first, (0x80 if self.marker else 0) | self.payload_type,
                           self.sequence_number & 0xFFFF, self.timestamp & 0xFFFFFFFF, self.ssrc & 0xFFFFFFFF)]
        out.extend(struct.pack("!I", csrc) for csrc in self.csrcs)
        if self.extension is not None:
            profile, data = self.extension
            if len(data) % 4:
                raise ValueError("RTP header extension length must be a multiple of 4")
            out.append(struct.pack("!HH", profile, len(data) // 4) + data)
        out.append(self.payload)
        if self.padding:
            out.append(bytes(self.padding - 1) + bytes([self.padding]))
        return b"".join(out)


class RtpHeaderView(NamedTuple):
    """The fields the media path needs, read without building a packet object."""

    payload_type: int
    marker: bool
    sequence_number: int
    timestamp: int
    ssrc: int
    payload_start: int
    payload_end: int


def read_header(data: bytes) -> RtpHeaderView:
    """Read the fixed header and locate the payload; raise RtpParseError when it is not RTP."""
    if len(data) < HEADER.size:
        raise RtpParseError(f"RTP packet too short ({len(data)} bytes)")
    first, second, sequence, timestamp, ssrc = HEADER.unpack_from(data)
    if first >> 6 != RTP_VERSION:
        raise RtpParseError(f"RTP version {first >> 6} is not 2")
    offset = HEADER.size + 4 * (first & 0x0F)
    if first & 0x10:
        if len(data) < offset + 4:
            raise RtpParseError("RTP packet truncated in its header extension")
        offset += 4 + 4 * struct.unpack_from("!H", data, offset + 2)[0]
    end = len(data)
    if first & 0x20:
        padding = data[-1]
        if padding == 0:
            raise RtpParseError("bad RTP padding length")
        end -= padding
    if end < offset:
        raise RtpParseError("RTP header, extension or padding longer than the packet")
    return RtpHeaderView(second & 0x7F, bool(second & 0x80), sequence, timestamp, ssrc, offset, end)


def parse_rtp(data: bytes) -> RtpPacket:
    """Parse an RTP packet; raise RtpParseError when it is not one."""
    view = read_header(data)
    csrc_count = data[0] & 0x0F
    csrcs = struct.unpack_from(f"!{csrc_count}I", data, HEADER.size)
    extension = None
    if data[0] & 0x10:
        offset = HEADER.size + 4 * csrc_count
        profile = struct.unpack_from("!H", data, offset)[0]
        extension = (profile, bytes(data[offset + 4 : view.payload_start]))
    padding = data[-1] if data[0] & 0x20 else 0
    return RtpPacket(view.payload_type, view.sequence_number, view.timestamp, view.ssrc,
                     bytes(data[view.payload_start : view.payload_end]), view.marker, tuple(csrcs), extension,
                     padding)


def is_rtcp(data: bytes) -> bool:
    """Whether a datagram on an RTP port is RTCP (RFC 5761 §4: packet types 192-223 in byte 2)."""
    return len(data) >= 2 and 192 <= data[1] <= 223
