"""Events the user agent core reports to the application."""

from __future__ import annotations

from dataclasses import dataclass

from .dialog import Dialog, EndReason
from .message import Request
from .transactions import Address


@dataclass(frozen=True)
class InviteReceived:
    """An INVITE the application must answer with `UserAgent.answer(invite_id, ...)`.

    `dialog` is None for a new call and the existing dialog for a re-INVITE.
    """

    invite_id: str
    request: Request
    source: Address
    dialog: Dialog | None


@dataclass(frozen=True)
class InviteCancelled:
    """The caller cancelled an INVITE before it was answered; it has been answered 487."""

    invite_id: str
    request: Request


@dataclass(frozen=True)
class DialogConfirmed:
    """The ACK for our 2xx arrived: the call is fully established."""

    dialog: Dialog


@dataclass(frozen=True)
class DialogEnded:
    """The dialog is over (BYE either way, or a 2xx that was never acknowledged)."""

    dialog: Dialog
    reason: EndReason


Event = InviteReceived | InviteCancelled | DialogConfirmed | DialogEnded
