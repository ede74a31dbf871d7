"""A test participant: our SIP client dials a conference and a test RTP peer streams a tone into it."""

from __future__ import annotations

import contextlib

import numpy as np
import numpy.typing as npt

from sip.sdp import parse_sdp

from .audio import tone
from .ports import LOOPBACK
from .rtp_peer import RtpPeer
from .sip_client import SipClient
from .sip_messages import pcmu_offer


class Participant:
    """Dials `uri` on `sip_address`, then streams a `frequency` tone; keeps everything it hears.

    Payload type 0 is PCMU, 8 is PCMA; the server must accept it together with telephone-event.
    """

    def __init__(self, sip_address: tuple[str, int], uri: str, frequency: float, *, payload_type: int = 0,
                 amplitude: float = 6000.0, seconds: float = 8.0) -> None:
        self.frequency = frequency
        self.peer = RtpPeer(payload_type)
        self.sip = SipClient(sip_address, uri)
        answer = self.sip.call(pcmu_offer(LOOPBACK, self.peer.port, formats=f"{payload_type} 101"))
        assert answer.status_code == 200, answer
        sdp = parse_sdp(answer.body)
        self.server_rtp = (sdp.connection.host if sdp.connection else "", sdp.media[0].port)
        assert sdp.media[0].formats == [str(payload_type), "101"], "our codec and telephone-event accepted"
        assert sdp.media[0].rtpmap()[101] == ("telephone-event", 8000, 1)
        self.peer.start_sending(self.server_rtp, tone(frequency, seconds, amplitude=amplitude))

    def heard_between(self, start: float, end: float) -> npt.NDArray[np.int16]:
        """The audio of the packets that arrived between two `time.monotonic()` instants."""
        payload = b"".join(r.packet.payload for r in list(self.peer.received) if start <= r.at < end)
        return self.peer.decode(np.frombuffer(payload, dtype=np.uint8))

    def close(self, hang_up: bool = False) -> None:
        """Free the sockets, hanging up first (best effort) when asked."""
        if hang_up:
            with contextlib.suppress(TimeoutError, OSError):
                self.sip.hangup(timeout=2.0)
        self.peer.stop()
        self.sip.close()
