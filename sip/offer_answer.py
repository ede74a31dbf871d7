"""SDP offer/answer (RFC 3264) for a single audio stream.

The answerer picks the first offered codec it supports (the offerer's preference order), accepts
telephone-event (RFC 4733) and comfort noise (RFC 3389) alongside it, keeps RTP/SAVP streams with
their a=crypto lines for the caller to key, and rejects every other media section with port 0.
SIP knows nothing of media: the codecs, the crypto answer and the SRTP policy come from the caller.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field

from .errors import RemoteProtocolError
from .grammar import number
from .sdp import Connection, Media, Origin, SdpParseError, SessionDescription

STATIC_PAYLOAD_TYPES: dict[int, tuple[str, int, int]] = {
    0: ("PCMU", 8000, 1),
    3: ("GSM", 8000, 1),
    4: ("G723", 8000, 1),
    8: ("PCMA", 8000, 1),
    9: ("G722", 8000, 1),
    13: ("CN", 8000, 1),
    18: ("G729", 8000, 1),
}
"""RFC 3551 static audio payload types: number -> (encoding, clock rate, channels)."""

PLAIN_PROFILE = "RTP/AVP"
SECURE_PROFILE = "RTP/SAVP"
TELEPHONE_EVENT_PAYLOAD_TYPES = {8000: 101, 16000: 102, 48000: 103}
"""Our telephone-event payload type for each clock rate we offer it at."""
COMFORT_NOISE_PAYLOAD_TYPE = 13


class OfferAnswerError(RemoteProtocolError):
    """The offer has nothing we can accept; answered 488 Not Acceptable Here."""

    def __init__(self, message: str) -> None:
        super().__init__(message, 488)


@dataclass(frozen=True)
class CodecSpec:
    """A codec we can send and receive, as SDP names it."""

    name: str
    clock_rate: int
    channels: int = 1
    static_payload_type: int | None = None
    fmtp: str | None = None
    """The format parameters we put in our own SDP for it."""

    def matches(self, encoding: str, clock_rate: int, channels: int) -> bool:
        """Whether an rtpmap entry names this codec."""
        return (encoding.lower(), clock_rate, channels) == (self.name.lower(), self.clock_rate, self.channels)

    def rtpmap(self, payload_type: int) -> str:
        """The a=rtpmap value for this codec."""
        channels = f"/{self.channels}" if self.channels != 1 else ""
        return f"{payload_type} {self.name}/{self.clock_rate}{channels}"


@dataclass(frozen=True)
class AudioNegotiation:
    """The outcome of negotiating one audio offer (or of reading the answer to ours)."""

    media_index: int
    codec: CodecSpec
    payload_type: int
    telephone_event_payload_type: int | None
    telephone_event_fmtp: str | None
    remote_host: str
    remote_port: int
    remote_direction: str
    remote_ptime: int | None
    comfort_noise_payload_type: int | None = None
    telephone_event_clock_rate: int | None = None
    """Normally the codec's; some phones offer telephone-event/8000 only, next to Opus."""
    remote_rtcp_port: int | None = None
    """From a=rtcp (RFC 3605); None means the RTP port + 1."""
    secure: bool = False
    """RTP/SAVP: the stream must be keyed from one of `crypto` (the offer's a=crypto values)."""
    crypto: tuple[str, ...] = field(default=())
    rtcp_mux: bool = False

    @property
    def answer_direction(self) -> str:
        """Our direction in an answer, mirroring the offer's (RFC 3264 §6.1)."""
        return {"sendonly": "recvonly", "recvonly": "sendonly"}.get(self.remote_direction, self.remote_direction)


def _payload_names(media: Media) -> dict[int, tuple[str, int, int]]:
    names = dict(STATIC_PAYLOAD_TYPES)
    names.update(media.rtpmap())
    return names


def negotiate_audio(offer: SessionDescription, supported: Sequence[CodecSpec], *,
                    profiles: Sequence[str] = (PLAIN_PROFILE, SECURE_PROFILE)) -> AudioNegotiation:
    """Choose the audio stream and codec of an offer (or read them from an answer to our offer).

    Only streams whose transport profile is in `profiles` are considered. Raises OfferAnswerError when
    no audio stream carries a supported codec.
    """
    for index, media in enumerate(offer.media):
        if media.kind != "audio" or media.port == 0 or media.proto.upper() not in profiles:
            continue
        names = _payload_names(media)
        codec, payload_type = _first_supported(media, names, supported)
        if codec is None or payload_type is None:
            continue
        connection = media.connection or offer.connection
        if connection is None:
            raise SdpParseError("SDP offer has no connection address")
        telephone_event = _companion(media, names, "telephone-event", codec.clock_rate)
        if telephone_event is None:
            telephone_event = _companion(media, names, "telephone-event", None)
        ptime = media.attribute("ptime")
        direction = media.direction(offer.direction())
        if connection.host in ("0.0.0.0", "::"):
            direction = "inactive"  # RFC 2543 hold (RFC 3264 §8.4)
        return AudioNegotiation(
            media_index=index,
            codec=codec,
            payload_type=payload_type,
            telephone_event_payload_type=telephone_event,
            telephone_event_fmtp=media.fmtp().get(telephone_event) if telephone_event is not None else None,
            remote_host=connection.host,
            remote_port=media.port,
            remote_direction=direction,
            remote_ptime=number(ptime, 4) if ptime else None,
            comfort_noise_payload_type=_companion(media, names, "CN", 8000),
            telephone_event_clock_rate=names[telephone_event][1] if telephone_event is not None else None,
            remote_rtcp_port=_rtcp_port(media.attribute("rtcp")),
            secure=media.proto.upper() == SECURE_PROFILE,
            crypto=tuple(media.attribute_values("crypto")),
            rtcp_mux=media.attribute("rtcp-mux") is not None,
        )
    raise OfferAnswerError("No supported audio codec offered")


def _first_supported(media: Media, names: dict[int, tuple[str, int, int]],
                     supported: Sequence[CodecSpec]) -> tuple[CodecSpec | None, int | None]:
    for fmt in media.formats:
        payload_type = number(fmt, 3)
        if payload_type is None or payload_type not in names:
            continue
        encoding, rate, channels = names[payload_type]
        for codec in supported:
            if codec.matches(encoding, rate, channels):
                return codec, payload_type
    return None, None


def _companion(media: Media, names: dict[int, tuple[str, int, int]], encoding: str,
               clock_rate: int | None) -> int | None:
    """The payload type of telephone-event or CN at `clock_rate` (None: any), when the stream lists one."""
    for fmt in media.formats:
        payload_type = number(fmt, 3)
        if payload_type is not None and payload_type in names:
            name, rate, _ = names[payload_type]
            if name.lower() == encoding.lower() and clock_rate in (None, rate):
                return payload_type
    return None


def _rtcp_port(value: str | None) -> int | None:
    """The port of an a=rtcp attribute (`port [nettype addrtype address]`), if it holds a valid one."""
    if not value:
        return None
    port = number(value.split()[0], 5)
    return port if port is not None and 0 < port < 65536 else None


def build_answer(offer: SessionDescription, negotiation: AudioNegotiation, *, address: str, port: int,
                 origin: Origin, crypto: str | None = None) -> SessionDescription:
    """The SDP answer: our address and port for the chosen stream, port 0 for every other one.

    `crypto` is our a=crypto value for an RTP/SAVP stream (required for one).
    """
    if negotiation.secure and crypto is None:
        raise ValueError("an RTP/SAVP stream needs our crypto attribute")
    addrtype = "IP6" if ":" in address else "IP4"
    answer = SessionDescription(origin=origin, session_name="confbridge",
                                connection=Connection(address, addrtype))
    for index, offered in enumerate(offer.media):
        if index != negotiation.media_index:
            answer.media.append(Media(offered.kind, 0, offered.proto, offered.formats[:1] or ["0"]))
            continue
        media = Media("audio", port, offered.proto, [str(negotiation.payload_type)])
        codec = negotiation.codec
        media.attributes.append(("rtpmap", codec.rtpmap(negotiation.payload_type)))
        if codec.fmtp:
            media.attributes.append(("fmtp", f"{negotiation.payload_type} {codec.fmtp}"))
        if negotiation.telephone_event_payload_type is not None:
            te = negotiation.telephone_event_payload_type
            media.formats.append(str(te))
            te_rate = negotiation.telephone_event_clock_rate or codec.clock_rate
            media.attributes.append(("rtpmap", f"{te} telephone-event/{te_rate}"))
            media.attributes.append(("fmtp", f"{te} {negotiation.telephone_event_fmtp or '0-16'}"))
        if negotiation.comfort_noise_payload_type is not None:
            media.formats.append(str(negotiation.comfort_noise_payload_type))
            if negotiation.comfort_noise_payload_type != COMFORT_NOISE_PAYLOAD_TYPE:
                media.attributes.append(("rtpmap", f"{negotiation.comfort_noise_payload_type} CN/8000"))
        media.attributes.append(("ptime", "20"))
        if crypto is not None:
            media.attributes.append(("crypto", crypto))
        if negotiation.rtcp_mux:
            media.attributes.append(("rtcp-mux", None))
        media.attributes.append((negotiation.answer_direction, None))
        answer.media.append(media)
    return answer


def build_offer(*, address: str, port: int, origin: Origin, codecs: Sequence[CodecSpec],
                direction: str = "sendrecv", crypto: str | None = None) -> SessionDescription:
    """Our SDP offer: one audio stream with every codec we support, in our order, telephone-event at
    each of their clock rates, and RTP/SAVP with `crypto` when given."""
    addrtype = "IP6" if ":" in address else "IP4"
    offer = SessionDescription(origin=origin, session_name="confbridge", connection=Connection(address, addrtype))
    media = Media("audio", port, SECURE_PROFILE if crypto else PLAIN_PROFILE, [])
    dynamic = 96
    for codec in codecs:
        payload_type = codec.static_payload_type
        if payload_type is None:
            payload_type, dynamic = dynamic, dynamic + 1
        media.formats.append(str(payload_type))
        media.attributes.append(("rtpmap", codec.rtpmap(payload_type)))
        if codec.fmtp:
            media.attributes.append(("fmtp", f"{payload_type} {codec.fmtp}"))
    for rate in sorted({codec.clock_rate for codec in codecs}):
        te = TELEPHONE_EVENT_PAYLOAD_TYPES.get(rate)
        if te is not None:
            media.formats.append(str(te))
            media.attributes.extend([("rtpmap", f"{te} telephone-event/{rate}"), ("fmtp", f"{te} 0-16")])
    media.attributes.append(("ptime", "20"))
    if crypto is not None:
        media.attributes.append(("crypto", crypto))
    media.attributes.append((direction, None))
    offer.media.append(media)
    return offer
