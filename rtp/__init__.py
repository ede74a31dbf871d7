"""RTP: packets, codecs, jitter buffers, SRTP, RTCP, DTMF and sessions (sans-IO), plus a thin asyncio socket edge."""

from .codecs import CODECS, G722, OPUS, PCMA, PCMU, AudioCodec
from .packet import RtpPacket, RtpParseError, parse_rtp, read_header
from .ports import PortAllocator, PortsExhausted
from .session import RtpSession, StreamParams

__all__ = [
    "CODECS", "G722", "OPUS", "PCMA", "PCMU", "AudioCodec", "PortAllocator", "PortsExhausted", "RtpPacket",
    "RtpParseError", "RtpSession", "StreamParams", "parse_rtp", "read_header",
]
