"""The user agent core (RFC 3261 §8, §12-15): method handling and dialogs over the transaction layer.

Sans-IO like the layers below it: the asyncio edge feeds `receive_datagram(data, source, now)` and
`handle_timer(now)`, sends `datagrams_to_send()`, arms one timer at `get_timer()` and hands
`events()` to the application. The application answers INVITEs with `answer()` and ends calls with
`hangup()`. Everything else (OPTIONS, BYE, CANCEL, ACK, errors) is handled here.
"""

from __future__ import annotations

import logging
import secrets

from .dialog import Dialog, DialogId, DialogState, EndReason, new_tag
from .errors import LocalProtocolError
from .events import DialogConfirmed, DialogEnded, Event, InviteCancelled, InviteReceived
from .message import Request, Response, make_response
from .timers import TimerConfig
from .transaction_layer import TransactionLayer, server_key
from .transactions import Address, State, Transaction
from .uri import SipUri

logger = logging.getLogger(__name__)

ALLOWED_METHODS = ("INVITE", "ACK", "BYE", "CANCEL", "OPTIONS")
KNOWN_METHODS = frozenset({"INVITE", "ACK", "BYE", "CANCEL", "OPTIONS", "REGISTER", "INFO", "UPDATE", "PRACK",
                           "SUBSCRIBE", "NOTIFY", "REFER", "MESSAGE", "PUBLISH"})
SUPPORTED_EXTENSIONS: frozenset[str] = frozenset()


class _PendingInvite:
    """An INVITE server transaction waiting for the application's final answer."""

    __slots__ = ("dialog", "to_tag", "transaction")

    def __init__(self, transaction: Transaction, to_tag: str, dialog: Dialog | None) -> None:
        self.transaction = transaction
        self.to_tag = to_tag
        self.dialog = dialog


class UserAgent:
    """A SIP user agent: answers calls, keeps their dialogs, hangs them up."""

    def __init__(self, *, host: str, port: int, user_agent: str = "confbridge",
                 timers: TimerConfig | None = None) -> None:
        self.host = host
        self.port = port
        self.user_agent = user_agent
        self.transactions = TransactionLayer(self, timers, server_header=user_agent)
        self._now = 0.0
        self._events: list[Event] = []
        self._invites: dict[str, _PendingInvite] = {}
        self._dialogs: dict[DialogId, Dialog] = {}
        self._unacknowledged: dict[Transaction, Dialog] = {}
        self._bye_dialogs: dict[Transaction, Dialog] = {}

    # -- sans-IO plumbing -------------------------------------------------------------------------

    def receive_datagram(self, data: bytes, source: Address, now: float) -> None:
        """Feed one datagram."""
        self._now = now
        self.transactions.receive(data, source, now)

    def datagrams_to_send(self) -> list[tuple[bytes, Address]]:
        """Datagrams to transmit now."""
        return self.transactions.datagrams_to_send()

    def get_timer(self) -> float | None:
        """When `handle_timer` next has work."""
        return self.transactions.get_timer()

    def handle_timer(self, now: float) -> None:
        """Advance every timer to `now`."""
        self._now = now
        self.transactions.handle_timer(now)

    def events(self) -> list[Event]:
        """Events since the last call."""
        events, self._events = self._events, []
        return events

    @property
    def dialogs(self) -> list[Dialog]:
        """Dialogs that are not terminated."""
        return list(self._dialogs.values())

    # -- application API --------------------------------------------------------------------------

    def answer(self, invite_id: str, status_code: int, now: float, *, body: bytes = b"",
               reason: str | None = None, headers: list[tuple[str, str]] | None = None) -> Dialog | None:
        """Answer a pending INVITE: 1xx (provisional), 2xx (returns the dialog) or 300-699 (rejects)."""
        pending = self._invites.get(invite_id)
        if pending is None:
            raise LocalProtocolError(f"no pending INVITE {invite_id}")
        self._now = now
        request = pending.transaction.request
        response = make_response(request, status_code, reason, to_tag=pending.to_tag, body=body)
        for name, value in headers or ():
            response.headers.add(name, value)
        dialog = None
        if 100 < status_code < 300:
            response.headers.add("Contact", f"<{self._contact_uri(request)}>")
            response.headers.add("Allow", ", ".join(ALLOWED_METHODS))
        if 200 <= status_code < 300:
            dialog = pending.dialog or self._create_dialog(request, pending)
            if pending.dialog is not None:
                dialog.remote_cseq = request.cseq.number
            self._unacknowledged[pending.transaction] = dialog
        if status_code >= 200:
            del self._invites[invite_id]
        self.transactions.send_response(pending.transaction, response, now)
        return dialog

    def hangup(self, dialog: Dialog, now: float) -> None:
        """End a dialog with BYE (retransmitted until answered); DialogEnded follows.

        Before the ACK for our 2xx has arrived the BYE waits for it (or for Timer L), as §15 requires.
        """
        if dialog.state is not DialogState.CONFIRMED:
            return
        self._now = now
        if dialog.acknowledged:
            self._send_bye(dialog, EndReason.LOCAL_BYE, now)
        else:
            dialog.state = DialogState.TERMINATING
            dialog.end_reason = EndReason.LOCAL_BYE

    def pending_invite(self, invite_id: str) -> Request | None:
        """The request of a pending INVITE, if it is still waiting for a final answer."""
        pending = self._invites.get(invite_id)
        return pending.transaction.request if pending else None

    # -- transaction layer callbacks --------------------------------------------------------------

    def request_received(self, request: Request, source: Address, transaction: Transaction) -> None:
        """Dispatch a new request by method (§8.2)."""
        now = self._now
        if not isinstance(request.uri, SipUri):
            self._respond(transaction, 416, now)
            return
        unsupported = self._unsupported_extensions(request)
        if unsupported and request.method not in ("CANCEL", "BYE"):
            self._respond(transaction, 420, now, headers=[("Unsupported", ", ".join(unsupported))])
            return
        handler = {
            "INVITE": self._on_invite,
            "BYE": self._on_bye,
            "CANCEL": self._on_cancel,
            "OPTIONS": self._on_options,
        }.get(request.method)
        if handler is not None:
            handler(request, source, transaction)
        elif request.method in KNOWN_METHODS:
            self._respond(transaction, 405, now, headers=[("Allow", ", ".join(ALLOWED_METHODS))])
        else:
            self._respond(transaction, 501, now, headers=[("Allow", ", ".join(ALLOWED_METHODS))])

    def ack_received(self, ack: Request, source: Address, transaction: Transaction | None) -> None:
        """The ACK for one of our 2xx: the first one confirms the dialog."""
        if transaction is None:
            return
        dialog = self._unacknowledged.pop(transaction, None)
        if dialog is None or dialog.acknowledged:
            return
        dialog.acknowledged = True
        if dialog.state is DialogState.CONFIRMED:
            self._events.append(DialogConfirmed(dialog))
        elif dialog.state is DialogState.TERMINATING and dialog.end_reason is EndReason.LOCAL_BYE:
            self._send_bye(dialog, EndReason.LOCAL_BYE, self._now)

    def response_received(self, response: Response, transaction: Transaction) -> None:
        """A response to one of our requests (a BYE, so far)."""
        if response.status_code >= 200:
            self._finish_bye(transaction)

    def stray_response(self, response: Response, source: Address) -> None:
        """Responses that match nothing are dropped (§18.1.2)."""
        logger.debug("stray %d response for Call-ID %s from %s", response.status_code,
                     response.headers.get("Call-ID"), source)

    def transaction_failed(self, transaction: Transaction, reason: str) -> None:
        """A transaction ended without success."""
        if transaction.is_client:
            logger.info("Call-ID %s: %s %s", transaction.request.call_id, transaction.request.method, reason)
            self._finish_bye(transaction)
            return
        dialog = self._unacknowledged.pop(transaction, None)
        if dialog is not None and not dialog.acknowledged and dialog.state is not DialogState.TERMINATED:
            logger.warning("Call-ID %s: %s; hanging up", dialog.call_id, reason)
            self._send_bye(dialog, EndReason.NO_ACK, self._now)

    # -- method handlers --------------------------------------------------------------------------

    def _on_invite(self, request: Request, source: Address, transaction: Transaction) -> None:
        now = self._now
        to_tag = request.to_address.tag
        dialog = None
        if to_tag is not None:
            dialog = self._dialogs.get((request.call_id, to_tag, request.from_address.tag or ""))
            if dialog is None or dialog.state is not DialogState.CONFIRMED:
                self._respond(transaction, 481, now)
                return
            if request.cseq.number <= dialog.remote_cseq:
                self._respond(transaction, 500, now, reason="CSeq out of order")
                return
        invite_id = secrets.token_hex(8)
        self._invites[invite_id] = _PendingInvite(transaction, to_tag or new_tag(), dialog)
        self.transactions.send_response(transaction, make_response(request, 100), now)
        self._events.append(InviteReceived(invite_id, request, source, dialog))

    def _on_bye(self, request: Request, source: Address, transaction: Transaction) -> None:
        dialog = self._dialogs.get((request.call_id, request.to_address.tag or "", request.from_address.tag or ""))
        if dialog is None:
            self._respond(transaction, 481, self._now)
            return
        self._respond(transaction, 200, self._now)
        dialog.remote_cseq = max(dialog.remote_cseq, request.cseq.number)
        self._end(dialog, EndReason.REMOTE_BYE)

    def _on_cancel(self, request: Request, source: Address, transaction: Transaction) -> None:
        now = self._now
        key = server_key(request)
        invite_tx = self.transactions.server_transaction((*key[:-1], "INVITE"))
        if invite_tx is None:
            self._respond(transaction, 481, now)
            return
        self._respond(transaction, 200, now)
        if invite_tx.state is not State.PROCEEDING:
            return
        for invite_id, pending in list(self._invites.items()):
            if pending.transaction is invite_tx:
                del self._invites[invite_id]
                response = make_response(invite_tx.request, 487, to_tag=pending.to_tag)
                self.transactions.send_response(invite_tx, response, now)
                self._events.append(InviteCancelled(invite_id, invite_tx.request))

    def _on_options(self, request: Request, source: Address, transaction: Transaction) -> None:
        self._respond(transaction, 200, self._now, headers=[
            ("Allow", ", ".join(ALLOWED_METHODS)), ("Accept", "application/sdp")])

    # -- helpers ----------------------------------------------------------------------------------

    def _respond(self, transaction: Transaction, status_code: int, now: float, *, reason: str | None = None,
                 headers: list[tuple[str, str]] | None = None) -> None:
        response = make_response(transaction.request, status_code, reason, to_tag=new_tag())
        for name, value in headers or ():
            response.headers.add(name, value)
        self.transactions.send_response(transaction, response, now)

    @staticmethod
    def _unsupported_extensions(request: Request) -> list[str]:
        required = [tag.lower() for tag in request.headers.get_list("Require")]
        return [tag for tag in required if tag not in SUPPORTED_EXTENSIONS]

    def _contact_uri(self, request: Request) -> SipUri:
        user = request.uri.user if isinstance(request.uri, SipUri) else None
        host = f"[{self.host}]" if ":" in self.host else self.host
        return SipUri(host=host, user=user, port=self.port)

    def _create_dialog(self, request: Request, pending: _PendingInvite) -> Dialog:
        contacts = request.contacts
        remote_target = contacts[0].uri if contacts else request.from_address.uri
        local = request.to_address
        local.params.remove("tag")
        remote = request.from_address
        remote_tag = remote.tag or ""
        remote.params.remove("tag")
        dialog = Dialog(
            call_id=request.call_id,
            local_tag=pending.to_tag,
            remote_tag=remote_tag,
            local_party=local,
            remote_party=remote,
            remote_target=remote_target,
            route_set=request.headers.get_list("Record-Route"),
            remote_cseq=request.cseq.number,
            peer=pending.transaction.peer,
        )
        self._dialogs[dialog.id] = dialog
        return dialog

    def _send_bye(self, dialog: Dialog, reason: EndReason, now: float) -> None:
        dialog.state = DialogState.TERMINATING
        dialog.end_reason = reason
        bye = dialog.create_request("BYE", self.host, self.port, self.user_agent)
        transaction = self.transactions.send_request(bye, dialog.peer, now)
        self._bye_dialogs[transaction] = dialog

    def _finish_bye(self, transaction: Transaction) -> None:
        dialog = self._bye_dialogs.pop(transaction, None)
        if dialog is not None:
            self._end(dialog, dialog.end_reason or EndReason.LOCAL_BYE)

    def _end(self, dialog: Dialog, reason: EndReason) -> None:
        if dialog.state is DialogState.TERMINATED:
            return
        dialog.state = DialogState.TERMINATED
        dialog.end_reason = reason
        self._dialogs.pop(dialog.id, None)
        self._events.append(DialogEnded(dialog, reason))

