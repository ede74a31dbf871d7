"""SDP offer/answer (RFC 3264) for a single audio stream.

The answerer picks the first offered codec it supports (the offerer's preference order), accepts
telephone-event (RFC 4733) alongside it, and rejects every other media section with port 0.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

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

AUDIO_PROFILES = ("RTP/AVP",)


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

    def matches(self, encoding: str, clock_rate: int, channels: int) -> bool:
        """Whether an rtpmap entry names this codec."""
        return (encoding.lower(), clock_rate, channels) == (self.name.lower(), self.clock_rate, self.channels)


@dataclass(frozen=True)
class AudioNegotiation:
    """The outcome of negotiating one audio offer."""

    media_index: int
    codec: CodecSpec
    payload_type: int
    telephone_event_payload_type: int | None
    telephone_event_fmtp: str | None
    remote_host: str
    remote_port: int
    remote_direction: str
    remote_ptime: int | None

    @property
    def answer_direction(self) -> str:
        """Our direction in an answer, mirroring the offer's (RFC 3264 §6.1)."""
        return {"sendonly": "recvonly", "recvonly": "sendonly"}.get(self.remote_direction, self.remote_direction)


def _payload_names(media: Media) -> dict[int, tuple[str, int, int]]:
    names = dict(STATIC_PAYLOAD_TYPES)
    names.update(media.rtpmap())
    return names


def negotiate_audio(offer: SessionDescription, supported: Sequence[CodecSpec]) -> AudioNegotiation:
    """Choose the audio stream and codec of an offer (or read them from an answer to our offer).

    Raises OfferAnswerError when no audio stream carries a supported codec.
    """
    for index, media in enumerate(offer.media):
        if media.kind != "audio" or media.port == 0 or media.proto.upper() not in AUDIO_PROFILES:
            continue
        names = _payload_names(media)
        codec, payload_type = _first_supported(media, names, supported)
        if codec is None or payload_type is None:
            continue
        connection = media.connection or offer.connection
        if connection is None:
            raise SdpParseError("SDP offer has no connection address")
        telephone_event = _telephone_event(media, names, codec.clock_rate)
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


def _telephone_event(media: Media, names: dict[int, tuple[str, int, int]], clock_rate: int) -> int | None:
    for fmt in media.formats:
        payload_type = number(fmt, 3)
        if payload_type is not None and payload_type in names:
            encoding, rate, _ = names[payload_type]
            if encoding.lower() == "telephone-event" and rate == clock_rate:
                return payload_type
    return None


def build_answer(offer: SessionDescription, negotiation: AudioNegotiation, *, address: str, port: int,
                 origin: Origin) -> SessionDescription:
    """The SDP answer: our address and port for the chosen stream, port 0 for every other one."""
    addrtype = "IP6" if ":" in address else "IP4"
    answer = SessionDescription(origin=origin, session_name="confbridge",
                                connection=Connection(address, addrtype))
    for index, offered in enumerate(offer.media):
        if index != negotiation.media_index:
            answer.media.append(Media(offered.kind, 0, offered.proto, offered.formats[:1] or ["0"]))
            continue
        media = Media("audio", port, offered.proto, [str(negotiation.payload_type)])
        codec = negotiation.codec
        channels = f"/{codec.channels}" if codec.channels != 1 else ""
        media.attributes.append(("rtpmap", f"{negotiation.payload_type} {codec.name}/{codec.clock_rate}{channels}"))
        if negotiation.telephone_event_payload_type is not None:
            te = negotiation.telephone_event_payload_type
            media.formats.append(str(te))
            media.attributes.append(("rtpmap", f"{te} telephone-event/{codec.clock_rate}"))
            media.attributes.append(("fmtp", f"{te} {negotiation.telephone_event_fmtp or '0-16'}"))
        media.attributes.append(("ptime", "20"))
        media.attributes.append((negotiation.answer_direction, None))
        answer.media.append(media)
    return answer


TELEPHONE_EVENT_PAYLOAD_TYPE = 101


def build_offer(*, address: str, port: int, origin: Origin, codecs: Sequence[CodecSpec],
                direction: str = "sendrecv") -> SessionDescription:
    """Our SDP offer: one audio stream with every codec we support, in our order, and telephone-event."""
    addrtype = "IP6" if ":" in address else "IP4"
    offer = SessionDescription(origin=origin, session_name="confbridge", connection=Connection(address, addrtype))
    media = Media("audio", port, AUDIO_PROFILES[0], [])
    dynamic = 96
    for codec in codecs:
        payload_type = codec.static_payload_type
        if payload_type is None:
            payload_type, dynamic = dynamic, dynamic + 1
        channels = f"/{codec.channels}" if codec.channels != 1 else ""
        media.formats.append(str(payload_type))
        media.attributes.append(("rtpmap", f"{payload_type} {codec.name}/{codec.clock_rate}{channels}"))
    te = TELEPHONE_EVENT_PAYLOAD_TYPE
    media.formats.append(str(te))
    media.attributes.extend([("rtpmap", f"{te} telephone-event/8000"), ("fmtp", f"{te} 0-16"), ("ptime", "20"),
                             (direction, None)])
    offer.media.append(media)
    return offer
