"""Events the user agent core reports to the application."""

from __future__ import annotations

from dataclasses import dataclass

from .dialog import Dialog, EndReason
from .message import Request, Response
from .outgoing import OutgoingCall
from .transport import Peer


@dataclass(frozen=True)
class InviteReceived:
    """An INVITE the application must answer with `UserAgent.answer(invite_id, ...)`.

    `dialog` is None for a new call and the existing dialog for a re-INVITE. An INVITE without a
    body asks the application to make the offer in its 2xx; the answer then comes in `AckReceived`.
    """

    invite_id: str
    request: Request
    source: Peer
    dialog: Dialog | None


@dataclass(frozen=True)
class RequestReceived:
    """An in-dialog UPDATE (with an offer) or INFO the application answers with `UserAgent.answer`."""

    request_id: str
    request: Request
    source: Peer
    dialog: Dialog


@dataclass(frozen=True)
class InviteCancelled:
    """The caller cancelled an INVITE before it was answered; it has been answered 487."""

    invite_id: str
    request: Request


@dataclass(frozen=True)
class AckReceived:
    """The ACK for one of our 2xx; `initial` for the one that confirms a new dialog."""

    dialog: Dialog
    ack: Request
    initial: bool


@dataclass(frozen=True)
class DialogEnded:
    """The dialog is over (BYE either way, an unacknowledged 2xx, an expired session timer)."""

    dialog: Dialog
    reason: EndReason


@dataclass(frozen=True)
class CallProgress:
    """A provisional response (180, 183, ...) to one of our INVITEs."""

    call: OutgoingCall
    response: Response


@dataclass(frozen=True)
class CallAnswered:
    """A 2xx to one of our INVITEs: the dialog is up and the ACK has been sent."""

    call: OutgoingCall
    dialog: Dialog
    response: Response


@dataclass(frozen=True)
class CallFailed:
    """One of our INVITEs ended without a dialog (rejected, timed out, cancelled, unreachable)."""

    call: OutgoingCall
    status_code: int
    reason: str


Event = (InviteReceived | RequestReceived | InviteCancelled | AckReceived | DialogEnded | CallProgress
         | CallAnswered | CallFailed)
