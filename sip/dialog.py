"""SIP dialogs (RFC 3261 §12): the state two user agents share for the length of a call, and how
in-dialog requests are addressed and routed (§12.2.1.1, §16.12 loose and strict routing)."""

from __future__ import annotations

import enum
import ipaddress
import secrets
from dataclasses import dataclass, field

from .fields import NameAddress
from .grammar import MAGIC_COOKIE
from .headers import Headers
from .message import Request
from .session_timer import SessionTimer
from .transport import TCP, TLS, UDP, Peer
from .uri import SipUri, Uri


class DialogState(enum.Enum):
    """Dialog life (dialogs are created confirmed: early dialogs are not kept)."""

    CONFIRMED = "confirmed"
    TERMINATING = "terminating"
    TERMINATED = "terminated"


class EndReason(enum.Enum):
    """Why a dialog ended."""

    REMOTE_BYE = "remote hung up"
    LOCAL_BYE = "we hung up"
    NO_ACK = "the 2xx was never acknowledged"
    SESSION_EXPIRED = "the session timer expired"
    TRANSPORT_ERROR = "the peer could not be reached"


DialogId = tuple[str, str, str]
"""(Call-ID, local tag, remote tag)."""


def new_tag() -> str:
    """A fresh From/To tag with at least 32 bits of randomness (§19.3)."""
    return secrets.token_hex(6)


def new_branch() -> str:
    """A fresh RFC 3261 branch parameter."""
    return MAGIC_COOKIE + secrets.token_hex(8)


def new_call_id(host: str) -> str:
    """A globally unique Call-ID."""
    return f"{secrets.token_hex(12)}@{host.strip('[]')}"


@dataclass(eq=False)
class Dialog:
    """One dialog, created by us as UAS (from an INVITE we answered) or as UAC (from a 2xx we got)."""

    call_id: str
    local_tag: str
    remote_tag: str
    local_party: NameAddress
    remote_party: NameAddress
    remote_target: Uri
    route_set: list[str]
    remote_cseq: int
    peer: Peer
    """The flow the dialog's requests arrive on; where requests go when the route set and target don't say."""
    is_uac: bool = False
    local_cseq: int = field(default_factory=lambda: secrets.randbelow(2**16) + 1)
    state: DialogState = DialogState.CONFIRMED
    acknowledged: bool = False
    end_reason: EndReason | None = None
    local_sdp: bytes = b""
    """Our current session description (what a refresh re-INVITE offers again)."""
    remote_allow: frozenset[str] = frozenset()
    session_timer: SessionTimer | None = None

    @property
    def id(self) -> DialogId:
        """The dialog identifier (§12)."""
        return (self.call_id, self.local_tag, self.remote_tag)

    def create_request(self, method: str, user_agent: str | None = None, *, cseq: int | None = None) -> Request:
        """A new in-dialog request (without Via: the sender adds it) with the next local CSeq and the route set."""
        if cseq is None:
            self.local_cseq += 1
            cseq = self.local_cseq
        request_uri, routes = self.request_target()
        headers = Headers()
        headers.add("Max-Forwards", "70")
        local = self.local_party.copy()
        local.params.set("tag", self.local_tag)
        remote = self.remote_party.copy()
        remote.params.set("tag", self.remote_tag)
        headers.add("From", str(local))
        headers.add("To", str(remote))
        headers.add("Call-ID", self.call_id)
        headers.add("CSeq", f"{cseq} {method}")
        for route in routes:
            headers.add("Route", route)
        if user_agent:
            headers.add("User-Agent", user_agent)
        return Request(method, request_uri, headers)

    def request_target(self) -> tuple[Uri, list[str]]:
        """Request-URI and Route headers for an in-dialog request (loose or strict routing, §12.2.1.1)."""
        if not self.route_set:
            return self.remote_target, []
        first = NameAddress.parse(self.route_set[0])
        if isinstance(first.uri, SipUri) and "lr" not in first.uri.params:
            strict = first.uri.copy()
            for name in ("method", "maddr", "ttl", "transport", "lr"):
                strict.params.remove(name)
            return strict, [*self.route_set[1:], f"<{self.remote_target}>"]
        return self.remote_target, list(self.route_set)

    def next_hop(self) -> Peer:
        """Where an in-dialog request goes: the first route, else the remote target, else the flow.

        A remote target on another address than the flow (a private Contact behind NAT) loses to the flow.
        """
        if self.route_set:
            uri: Uri = NameAddress.parse(self.route_set[0]).uri
        else:
            uri = self.remote_target
        if not isinstance(uri, SipUri) or not _is_ip(uri.host):
            return self.peer
        host, port = uri.host_and_port()
        if not self.route_set and host != self.peer.host:
            return self.peer
        transport = {"tcp": TCP, "tls": TLS, "udp": UDP}.get(uri.transport or "", TLS if uri.secure else None)
        return Peer(transport or self.peer.transport, (host, port))


def _is_ip(host: str) -> bool:
    try:
        ipaddress.ip_address(host.strip("[]"))
    except ValueError:
        return False
    return True
