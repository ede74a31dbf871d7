"""SIP dialogs (RFC 3261 §12): the state two user agents share for the length of a call."""

from __future__ import annotations

import enum
import secrets
from dataclasses import dataclass, field

from .fields import NameAddress
from .grammar import MAGIC_COOKIE
from .headers import Headers
from .message import Request
from .transactions import Address
from .uri import Uri


class DialogState(enum.Enum):
    """Dialog life (the early state is not used by a UAS that answers at once)."""

    CONFIRMED = "confirmed"
    TERMINATING = "terminating"
    TERMINATED = "terminated"


class EndReason(enum.Enum):
    """Why a dialog ended."""

    REMOTE_BYE = "remote hung up"
    LOCAL_BYE = "we hung up"
    NO_ACK = "the 2xx was never acknowledged"


DialogId = tuple[str, str, str]
"""(Call-ID, local tag, remote tag)."""


def new_tag() -> str:
    """A fresh From/To tag with at least 32 bits of randomness (§19.3)."""
    return secrets.token_hex(6)


def new_branch() -> str:
    """A fresh RFC 3261 branch parameter."""
    return MAGIC_COOKIE + secrets.token_hex(8)


@dataclass(eq=False)
class Dialog:
    """One dialog as the UAS created it from an INVITE and its 2xx (§12.1.1)."""

    call_id: str
    local_tag: str
    remote_tag: str
    local_party: NameAddress
    remote_party: NameAddress
    remote_target: Uri
    route_set: list[str]
    remote_cseq: int
    peer: Address
    """Where in-dialog requests go: the address the peer's requests come from (works through NAT)."""
    local_cseq: int = field(default_factory=lambda: secrets.randbelow(2**16) + 1)
    state: DialogState = DialogState.CONFIRMED
    acknowledged: bool = False
    end_reason: EndReason | None = None

    @property
    def id(self) -> DialogId:
        """The dialog identifier (§12)."""
        return (self.call_id, self.local_tag, self.remote_tag)

    def create_request(self, method: str, via_host: str, via_port: int, user_agent: str | None = None) -> Request:
        """A new in-dialog request with the next local CSeq, a fresh branch and the route set (§12.2.1.1)."""
        self.local_cseq += 1
        headers = Headers()
        headers.add("Via", f"SIP/2.0/UDP {via_host}:{via_port};branch={new_branch()};rport")
        headers.add("Max-Forwards", "70")
        local = self.local_party.copy()
        local.params.set("tag", self.local_tag)
        remote = self.remote_party.copy()
        remote.params.set("tag", self.remote_tag)
        headers.add("From", str(local))
        headers.add("To", str(remote))
        headers.add("Call-ID", self.call_id)
        headers.add("CSeq", f"{self.local_cseq} {method}")
        for route in self.route_set:
            headers.add("Route", route)
        if user_agent:
            headers.add("User-Agent", user_agent)
        return Request(method, self.remote_target, headers)
