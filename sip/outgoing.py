"""The state of one call we place (an INVITE client transaction and what follows it)."""

from __future__ import annotations

import enum
from dataclasses import dataclass, field

from .digest import Credentials
from .fields import NameAddress
from .transport import Peer
from .uri import SipUri


class OutgoingState(enum.Enum):
    """Where an outgoing call stands."""

    CALLING = "calling"
    RINGING = "ringing"
    ANSWERED = "answered"
    CANCELLING = "cancelling"
    FAILED = "failed"


@dataclass(eq=False)
class OutgoingCall:
    """One call we place: the INVITE we (re)send, and its outcome."""

    call_id: str
    local_tag: str
    target: SipUri
    local_party: NameAddress
    remote_party: NameAddress
    destination: Peer
    offer: bytes
    credentials: tuple[Credentials, ...] = ()
    cseq: int = 1
    state: OutgoingState = OutgoingState.CALLING
    branch: str = ""
    provisional_received: bool = False
    cancel_requested: bool = False
    realms_tried: set[str] = field(default_factory=set)
    authorization: list[tuple[str, str]] = field(default_factory=list)
    """Authorization / Proxy-Authorization headers answering the last challenge."""
    ack: bytes | None = None
    """The ACK we sent for the 2xx, sent again when the 2xx is retransmitted."""
    final_status: int | None = None

    @property
    def done(self) -> bool:
        """Whether the INVITE has its final outcome."""
        return self.state in (OutgoingState.ANSWERED, OutgoingState.FAILED)
