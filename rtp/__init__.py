"""RTP: packets, G.711, playout buffer and sessions (sans-IO), plus a thin asyncio socket edge."""

from .codecs import CODECS, PCMA, PCMU, AudioCodec
from .packet import RtpPacket, RtpParseError, parse_rtp, read_header
from .playout import PlayoutBuffer
from .ports import PortAllocator, PortsExhausted
from .session import RtpSession

__all__ = [
    "CODECS", "PCMA", "PCMU", "AudioCodec", "PlayoutBuffer", "PortAllocator", "PortsExhausted", "RtpPacket",
    "RtpParseError", "RtpSession", "parse_rtp", "read_header",
]
