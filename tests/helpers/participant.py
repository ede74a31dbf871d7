"""A test participant: our SIP client dials a conference and a test RTP peer streams a tone into it."""

from __future__ import annotations

import contextlib
from typing import Any

import numpy as np
import numpy.typing as npt

from rtp.srtp import CryptoAttribute, SrtpContext
from sip.sdp import parse_sdp

from .audio import tone
from .peer_codecs import PCMA, PCMU, PeerCodec
from .ports import LOOPBACK
from .rest import ApiClient
from .rtp_peer import RtpPeer
from .sip_client import SipClient
from .sip_messages import audio_offer


class Participant:
    """Dials `uri` on `sip_address`, then streams `signal` (default: a `frequency` tone); keeps what it hears.

    The codec is `codec`, or PCMU/PCMA by `payload_type`; the server must accept it with telephone-event.
    With `srtp` the offer is RTP/SAVP with a fresh key and the stream is protected both ways; with `rtcp_mux`
    RTCP shares the RTP port (the peer only listens there).
    """

    def __init__(self, sip_address: tuple[str, int], uri: str, frequency: float, *, payload_type: int = 0,
                 codec: PeerCodec | None = None, amplitude: float = 6000.0, seconds: float = 8.0,
                 signal: npt.NDArray[np.int16] | None = None, srtp: bool = False, rtcp_mux: bool = False) -> None:
        self.frequency = frequency
        self.codec = codec or {0: PCMU, 8: PCMA}[payload_type]
        self.our_key = our_key = CryptoAttribute.generate(1, "AES_CM_128_HMAC_SHA1_80") if srtp else None
        self.sip = SipClient(sip_address, uri)
        self.peer = RtpPeer(codec=self.codec)
        offer = audio_offer(LOOPBACK, self.peer.port, [self.codec.rtpmap],
                            fmtps=[f"{self.codec.payload_type} {self.codec.fmtp}"] if self.codec.fmtp else [],
                            crypto=str(our_key) if our_key else None, extra=["a=rtcp-mux"] if rtcp_mux else [])
        self.answer = answer = self.sip.call(offer)
        assert answer.status_code == 200, answer
        sdp = parse_sdp(answer.body)
        self.server_rtp = (sdp.connection.host if sdp.connection else "", sdp.media[0].port)
        media = sdp.media[0]
        assert media.formats == [str(self.codec.payload_type), "101"], "our codec and telephone-event accepted"
        assert media.rtpmap()[101] == ("telephone-event", self.codec.clock_rate, 1)
        self.server_key: CryptoAttribute | None = None
        if our_key is not None:
            self.server_key = CryptoAttribute.parse(media.attribute_values("crypto")[0])
            self.peer.srtp = SrtpContext(our_key, self.server_key)
        samples = signal if signal is not None else tone(frequency, seconds, rate=self.codec.rate,
                                                         amplitude=amplitude)
        self.peer.start_sending(self.server_rtp, samples)

    @property
    def rate(self) -> int:
        """The sample rate of what this participant sends and hears."""
        return self.codec.rate

    def heard_between(self, start: float, end: float) -> npt.NDArray[np.int16]:
        """The audio of the packets that arrived between two `time.monotonic()` instants."""
        return self.peer.heard_between(start, end)

    def close(self, hang_up: bool = False) -> None:
        """Free the sockets, hanging up first (best effort) when asked."""
        if hang_up:
            with contextlib.suppress(TimeoutError, OSError):
                self.sip.hangup(timeout=2.0)
        self.peer.stop()
        self.sip.close()


def conferencecall_of(api: ApiClient, caller: SipClient) -> dict[str, Any]:
    """The conferencecall of the call a test caller placed (its From URI carries the caller's port)."""
    source = f"sip:tester@{caller.party.local_host}:{caller.party.local_port}"
    calls = [call for call in api.get("/calls")["result"] if call["source"]["target"] == source]
    assert len(calls) == 1, (source, calls)
    return dict(api.get(f"/conferencecalls/{calls[0]['conferencecall_id']}"))
