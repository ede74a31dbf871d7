"""From SDP offer/answer to an RTP stream: our codecs, the SRTP policy, and where media may come from.

`sip.offer_answer` picks the stream and codec; this module adds what SIP does not know: which codecs the
media engine has, whether SRTP is off, optional or required, the SDES keys (a fresh one for every new
key the peer offers), and whether the SDP address can be trusted or the stream must latch
(`rtp.source_lock`). Refusals are `OfferAnswerError`s (488) whose message says exactly why.
"""

from __future__ import annotations

import enum
from dataclasses import dataclass

from rtp.codecs import CODECS, AudioCodec
from rtp.session import StreamParams
from rtp.source_lock import is_reachable
from rtp.srtp import CryptoAttribute, SrtpContext, SrtpError, choose_crypto
from sip.offer_answer import (
    PLAIN_PROFILE,
    SECURE_PROFILE,
    AudioNegotiation,
    CodecSpec,
    OfferAnswerError,
    negotiate_audio,
)
from sip.sdp import SessionDescription


class SrtpPolicy(enum.StrEnum):
    """Whether calls may, or must, use SRTP."""

    OFF = "off"
    OPTIONAL = "optional"
    REQUIRED = "required"


CODEC_SPECS: dict[CodecSpec, AudioCodec] = {
    CodecSpec(codec.name, codec.clock_rate, codec.channels, codec.static_payload_type, codec.fmtp): codec
    for codec in CODECS.values()
}
SUPPORTED_CODECS = list(CODEC_SPECS)
"""What we accept and offer, in our order of preference (Opus, G.722, PCMU, PCMA)."""
_PROFILES = {SrtpPolicy.OFF: (PLAIN_PROFILE,), SrtpPolicy.OPTIONAL: (PLAIN_PROFILE, SECURE_PROFILE),
             SrtpPolicy.REQUIRED: (SECURE_PROFILE,)}


@dataclass(frozen=True)
class NegotiatedStream:
    """An agreed audio stream: the SDP side, the media side, and our a=crypto for the answer."""

    negotiation: AudioNegotiation
    params: StreamParams
    local_crypto: CryptoAttribute | None = None
    remote_crypto: CryptoAttribute | None = None

    @property
    def codec(self) -> AudioCodec:
        """The codec agreed."""
        return self.params.codec


def answer_offer(offer: SessionDescription, policy: SrtpPolicy, *, signalling_host: str | None,
                 previous: NegotiatedStream | None = None) -> NegotiatedStream:
    """Accept what we can of a peer's offer, or raise OfferAnswerError (488) saying why not.

    An RTP/SAVP stream is keyed from the first usable a=crypto; when it repeats the key of `previous` our
    key stays too (RFC 4568 §7.1.4: no rekeying unless a key changes).
    """
    negotiation = _negotiate(offer, policy)
    local = remote = None
    srtp = None
    if negotiation.secure:
        remote, local, srtp = _answer_crypto(list(negotiation.crypto), previous)
    params = stream_params(negotiation, signalling_host=signalling_host, srtp=srtp)
    return NegotiatedStream(negotiation, params, local, remote)


def read_answer(answer: SessionDescription, policy: SrtpPolicy, *, our_crypto: CryptoAttribute | None,
                signalling_host: str | None) -> NegotiatedStream:
    """Read the peer's answer to our offer (made with `our_crypto` when we offered RTP/SAVP)."""
    negotiation = _negotiate(answer, policy)
    srtp = remote = None
    if negotiation.secure:
        if our_crypto is None:
            raise OfferAnswerError("the answer is RTP/SAVP but we offered RTP/AVP")
        remote = _crypto_matching(list(negotiation.crypto), our_crypto)
        srtp = SrtpContext(our_crypto, remote)
    elif our_crypto is not None:
        raise OfferAnswerError("we offered SRTP only, the answer is plain RTP")
    params = stream_params(negotiation, signalling_host=signalling_host, srtp=srtp)
    return NegotiatedStream(negotiation, params, our_crypto, remote)


def offer_crypto(policy: SrtpPolicy) -> CryptoAttribute | None:
    """Our a=crypto for an offer: SRTP only when it is required (an optional offer stays plain RTP/AVP)."""
    if policy is SrtpPolicy.REQUIRED:
        return CryptoAttribute.generate(1, "AES_CM_128_HMAC_SHA1_80")
    return None


def placeholder_params() -> StreamParams:
    """A stream before anything is agreed (an INVITE without an offer): PCMU, nowhere to send."""
    codec = CODECS["PCMU"]
    assert codec.static_payload_type is not None
    return StreamParams(codec, codec.static_payload_type, peer_sends=False)


def stream_params(negotiation: AudioNegotiation, *, signalling_host: str | None,
                  srtp: SrtpContext | None = None) -> StreamParams:
    """The media engine's view of an agreed stream."""
    host, port = negotiation.remote_host, negotiation.remote_port
    remote = None if host in ("0.0.0.0", "::") or port == 0 else (host, port)
    remote_rtcp = None
    if remote is not None:
        remote_rtcp = (host, negotiation.remote_rtcp_port or port + 1)
    return StreamParams(
        codec=CODEC_SPECS[negotiation.codec],
        payload_type=negotiation.payload_type,
        telephone_event_payload_type=negotiation.telephone_event_payload_type,
        telephone_event_clock_rate=negotiation.telephone_event_clock_rate,
        comfort_noise_payload_type=negotiation.comfort_noise_payload_type,
        remote=remote,
        remote_rtcp=remote_rtcp,
        remote_reachable=remote is not None and is_reachable(host, signalling_host),
        signalling_host=signalling_host,
        rtcp_mux=negotiation.rtcp_mux,
        peer_sends=negotiation.remote_direction in ("sendrecv", "sendonly"),
        srtp=srtp,
    )


def _negotiate(description: SessionDescription, policy: SrtpPolicy) -> AudioNegotiation:
    try:
        return negotiate_audio(description, SUPPORTED_CODECS, profiles=_PROFILES[policy])
    except OfferAnswerError:
        if policy is not SrtpPolicy.OPTIONAL:
            other = SECURE_PROFILE if policy is SrtpPolicy.OFF else PLAIN_PROFILE
            try:
                negotiate_audio(description, SUPPORTED_CODECS, profiles=(other,))
            except OfferAnswerError:
                pass
            else:
                raise OfferAnswerError("SRTP (RTP/SAVP) is required here" if policy is SrtpPolicy.REQUIRED
                                       else "SRTP is turned off here; offer RTP/AVP") from None
        raise


def _answer_crypto(offered: list[str], previous: NegotiatedStream | None
                   ) -> tuple[CryptoAttribute, CryptoAttribute, SrtpContext]:
    if previous is not None and previous.remote_crypto is not None and previous.local_crypto is not None:
        for value in offered:
            if _parse(value) == previous.remote_crypto:
                assert previous.params.srtp is not None
                return previous.remote_crypto, previous.local_crypto, previous.params.srtp
    chosen = choose_crypto(offered)
    if chosen is None:
        attributes = [attribute for attribute in map(_parse, offered) if attribute is not None]
        if attributes and all(attribute.mki is not None for attribute in attributes):
            raise OfferAnswerError("SRTP keys with an MKI are not supported; offer a=crypto without MKI")
        raise OfferAnswerError("no supported SRTP crypto suite offered "
                               "(we take AES_CM_128_HMAC_SHA1_80 and AES_CM_128_HMAC_SHA1_32)")
    remote, local = chosen
    return remote, local, SrtpContext(local, remote)


def _crypto_matching(answered: list[str], ours: CryptoAttribute) -> CryptoAttribute:
    """The answer's a=crypto for the one we offered: same tag and suite, no MKI."""
    for value in answered:
        attribute = _parse(value)
        if attribute is not None and (attribute.tag, attribute.suite) == (ours.tag, ours.suite) \
                and attribute.mki is None:
            return attribute
    raise OfferAnswerError(f"the answer has no usable a=crypto for our tag {ours.tag} ({ours.suite})")


def _parse(value: str) -> CryptoAttribute | None:
    try:
        return CryptoAttribute.parse(value)
    except SrtpError:
        return None
