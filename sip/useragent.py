"""The user agent core (RFC 3261 §8, §12-15; RFC 3311, 4028, 6086): methods and dialogs over the
transaction layer, both as UAS (calls that come in) and UAC (calls we place).

Sans-IO like the layers below it: the asyncio edge feeds `receive(data, source, now)` and
`handle_timer(now)`, sends `messages_to_send()`, arms one timer at `get_timer()` and hands `events()`
to the application. The application answers INVITEs, UPDATEs and INFOs with `answer()`, places calls
with `invite()`, and ends them with `cancel()` or `hangup()`. OPTIONS, BYE, CANCEL, ACK, PRACK,
session refreshes and every protocol error (400/405/406/415/416/420/422/481/501) are handled here.
"""

from __future__ import annotations

import logging
import secrets
from dataclasses import dataclass

from .deadlines import DeadlineHeap
from .dialog import Dialog, DialogId, DialogState, EndReason, new_branch, new_call_id, new_tag
from .digest import Credentials, authorization, parse_challenge
from .errors import LocalProtocolError
from .events import (
    AckReceived,
    CallAnswered,
    CallFailed,
    CallProgress,
    DialogEnded,
    Event,
    InviteCancelled,
    InviteReceived,
    RequestReceived,
)
from .fields import NameAddress, Via
from .grammar import Params
from .headers import Headers
from .message import DEFAULT_LIMITS, MessageLimits, Request, Response, make_response
from .outgoing import OutgoingCall, OutgoingState
from .scanner_guard import ScannerGuard
from .session_timer import (
    DEFAULT_MIN_SE,
    SessionExpires,
    SessionTimer,
    parse_session_expires,
    supports_timer,
    uas_refresher,
)
from .timers import TimerConfig
from .transaction_layer import DEFAULT_MAX_TRANSACTIONS, TransactionLayer, server_key
from .transactions import State, Transaction
from .transport import TCP, TLS, UDP, Address, Peer, bracket
from .uri import SipUri

logger = logging.getLogger(__name__)

ALLOWED_METHODS = ("INVITE", "ACK", "BYE", "CANCEL", "OPTIONS", "UPDATE", "INFO", "PRACK")
KNOWN_METHODS = frozenset({*ALLOWED_METHODS, "REGISTER", "SUBSCRIBE", "NOTIFY", "REFER", "MESSAGE", "PUBLISH"})
IN_DIALOG_ONLY = frozenset({"BYE", "UPDATE", "INFO", "PRACK"})
SUPPORTED_EXTENSIONS = frozenset({"timer", "100rel"})
"""100rel: we never send a provisional response other than 100, so a caller may require it freely."""
SESSION_BODY_TYPES = ("application/sdp",)
INFO_BODY_TYPES = ("application/dtmf-relay", "application/dtmf")
ALLOW_HEADER = ", ".join(ALLOWED_METHODS)


@dataclass(eq=False)
class _Pending:
    """A server request waiting for the application's final answer."""

    transaction: Transaction
    to_tag: str
    dialog: Dialog | None


class UserAgent:
    """A SIP user agent: answers calls, places calls, keeps their dialogs, hangs them up."""

    def __init__(self, *, host: str, port: int = 5060, tcp_port: int | None = None, tls_port: int | None = None,
                 user_agent: str = "confbridge", timers: TimerConfig | None = None,
                 limits: MessageLimits = DEFAULT_LIMITS, max_transactions: int = DEFAULT_MAX_TRANSACTIONS,
                 min_session_expires: int = DEFAULT_MIN_SE, scanner_guard: ScannerGuard | None = None) -> None:
        self.host = host
        self.ports: dict[str, int] = {UDP: port}
        if tcp_port is not None:
            self.ports[TCP] = tcp_port
        if tls_port is not None:
            self.ports[TLS] = tls_port
        self.user_agent = user_agent
        self.min_session_expires = min_session_expires
        self.guard = scanner_guard if scanner_guard is not None else ScannerGuard()
        self.blocked_drops = 0
        self.transactions = TransactionLayer(self, timers, server_header=user_agent, limits=limits,
                                             max_transactions=max_transactions, tcp_available=TCP in self.ports)
        self._now = 0.0
        self._events: list[Event] = []
        self._pending: dict[str, _Pending] = {}
        self._dialogs: dict[DialogId, Dialog] = {}
        self._unacknowledged: dict[Transaction, Dialog] = {}
        self._byes: dict[Transaction, Dialog] = {}
        self._refreshes: dict[Transaction, Dialog] = {}
        self._calls: dict[Transaction, OutgoingCall] = {}
        self._answered: dict[tuple[str, str], OutgoingCall] = {}
        self._dialog_timers: DeadlineHeap[Dialog] = DeadlineHeap()

    @property
    def port(self) -> int:
        """The UDP port (also TCP's unless told otherwise)."""
        return self.ports[UDP]

    @port.setter
    def port(self, value: int) -> None:
        if self.ports.get(TCP) == self.ports[UDP]:
            self.ports[TCP] = value
        self.ports[UDP] = value

    # -- sans-IO plumbing -------------------------------------------------------------------------

    def receive(self, data: bytes, source: Peer, now: float) -> None:
        """Feed one message from `source`.

        While the source is throttled as a scanner only its ACKs get through, so that the 404s which
        triggered the block stop being retransmitted; everything else is dropped unread.
        """
        self._now = now
        if self.guard.is_blocked(source.host, now) and not data.lstrip(b"\r\n").startswith(b"ACK "):
            self.blocked_drops += 1
            return
        self.transactions.receive(data, source, now)

    def receive_datagram(self, data: bytes, source: Address, now: float) -> None:
        """Feed one UDP datagram."""
        self.receive(data, Peer(UDP, source), now)

    def messages_to_send(self) -> list[tuple[bytes, Peer]]:
        """Messages to transmit now, with their destinations."""
        return self.transactions.messages_to_send()

    def get_timer(self) -> float | None:
        """When `handle_timer` next has work."""
        deadlines = [d for d in (self.transactions.get_timer(), self._dialog_timers.next_deadline()) if d is not None]
        return min(deadlines, default=None)

    def handle_timer(self, now: float) -> None:
        """Advance every timer to `now`."""
        self._now = now
        self.transactions.handle_timer(now)
        for dialog in self._dialog_timers.pop_due(now):
            self._session_timer_fired(dialog, now)

    def transport_failed(self, peer: Peer, now: float) -> None:
        """Messages to `peer` cannot be delivered."""
        self._now = now
        self.transactions.transport_failed(peer, now)

    def answer_framing_error(self, head: bytes, status_code: int, reason: str, source: Peer) -> None:
        """A stream from `source` could not be framed; answer what can be answered."""
        self.transactions.answer_framing_error(head, status_code, reason, source)

    def events(self) -> list[Event]:
        """Events since the last call."""
        events, self._events = self._events, []
        return events

    @property
    def dialogs(self) -> list[Dialog]:
        """Dialogs that are not terminated."""
        return list(self._dialogs.values())

    # -- application API: answering ---------------------------------------------------------------

    def answer(self, request_id: str, status_code: int, now: float, *, body: bytes = b"",
               reason: str | None = None, headers: list[tuple[str, str]] | None = None) -> Dialog | None:
        """Answer a pending INVITE, UPDATE or INFO; a 2xx to an INVITE returns its dialog."""
        pending = self._pending.get(request_id)
        if pending is None:
            raise LocalProtocolError(f"no pending request {request_id}")
        self._now = now
        request = pending.transaction.request
        response = make_response(request, status_code, reason, to_tag=pending.to_tag, body=body)
        for name, value in headers or ():
            response.headers.add(name, value)
        dialog = pending.dialog
        if request.method == "INVITE" and 100 < status_code < 300:
            response.headers.add("Contact", f"<{self._contact_uri(request, pending.transaction.peer)}>")
            response.headers.add("Allow", ALLOW_HEADER)
            response.headers.add("Supported", ", ".join(sorted(SUPPORTED_EXTENSIONS)))
        if 200 <= status_code < 300 and request.method in ("INVITE", "UPDATE"):
            if dialog is None:
                dialog = self._create_uas_dialog(request, pending)
            if body:
                dialog.local_sdp = body
            self._answer_session_timer(dialog, request, response, now)
            if request.method == "INVITE":
                dialog.remote_cseq = request.cseq.number
                self._unacknowledged[pending.transaction] = dialog
        if status_code == 404 and pending.dialog is None and self.guard.record_miss(pending.transaction.peer.host, now):
            logger.warning("throttling %s: too many requests for users that do not exist",
                           pending.transaction.peer.host)
        if status_code >= 200:
            del self._pending[request_id]
        self.transactions.send_response(pending.transaction, response, now)
        return dialog if request.method == "INVITE" and 200 <= status_code < 300 else None

    def pending_request(self, request_id: str) -> Request | None:
        """A request still waiting for the application's final answer."""
        pending = self._pending.get(request_id)
        return pending.transaction.request if pending else None

    # -- application API: calls we place ----------------------------------------------------------

    def invite(self, target: SipUri, destination: Peer, now: float, *, offer: bytes, from_user: str = "confbridge",
               from_display: str | None = None, credentials: tuple[Credentials, ...] = ()) -> OutgoingCall:
        """Place a call to `target` through `destination` with an SDP offer; events tell how it goes."""
        self._now = now
        uri = SipUri(host=bracket(self.host), user=from_user, scheme="sips" if target.secure else "sip")
        to_uri = SipUri(host=target.host, user=target.user, port=target.port, scheme=target.scheme)
        call = OutgoingCall(call_id=new_call_id(self.host), local_tag=new_tag(), target=target,
                            local_party=NameAddress(uri, from_display), remote_party=NameAddress(to_uri),
                            destination=destination, offer=offer, credentials=tuple(credentials))
        self._send_invite(call, now)
        return call

    def cancel(self, call: OutgoingCall, now: float) -> None:
        """Give up on a call we placed: CANCEL once it rings (§9.1), BYE if it is answered meanwhile."""
        self._now = now
        if call.done or call.cancel_requested:
            return
        call.cancel_requested = True
        if call.provisional_received:
            self._send_cancel(call, now)

    def hangup(self, dialog: Dialog, now: float) -> None:
        """End a dialog with BYE (retransmitted until answered); DialogEnded follows.

        As UAS, before the ACK for our 2xx has arrived the BYE waits for it (or for Timer L), as §15 requires.
        """
        if dialog.state is not DialogState.CONFIRMED:
            return
        self._now = now
        if dialog.acknowledged:
            self._send_bye(dialog, EndReason.LOCAL_BYE, now)
        else:
            dialog.state = DialogState.TERMINATING
            dialog.end_reason = EndReason.LOCAL_BYE

    # -- transaction layer callbacks --------------------------------------------------------------

    def request_received(self, request: Request, source: Peer, transaction: Transaction) -> None:
        """Check a new request in RFC 3261 §8.2 order, then dispatch it by method."""
        now = self._now
        method = request.method
        if not isinstance(request.uri, SipUri):
            self._respond(transaction, 416, now)
            return
        if method not in KNOWN_METHODS:
            self._respond(transaction, 501, now, headers=[("Allow", ALLOW_HEADER)])
            return
        if method not in ALLOWED_METHODS:
            if method == "REGISTER" and not isinstance(request.to_address.uri, SipUri):
                self._respond(transaction, 400, now, reason="REGISTER address-of-record must be a SIP URI")
            else:
                self._respond(transaction, 405, now, headers=[("Allow", ALLOW_HEADER)])
            return
        dialog = None
        if request.to_address.tag is not None and method != "CANCEL":
            dialog = self._dialogs.get((request.call_id, request.to_address.tag, request.from_address.tag or ""))
            if dialog is None or dialog.state is DialogState.TERMINATED:
                self._respond(transaction, 481, now)
                return
        elif method in IN_DIALOG_ONLY:
            self._respond(transaction, 481, now)
            return
        if self._refused_by_headers(request, transaction, now):
            return
        {
            "INVITE": self._on_invite,
            "BYE": self._on_bye,
            "CANCEL": self._on_cancel,
            "OPTIONS": self._on_options,
            "UPDATE": self._on_update,
            "INFO": self._on_info,
            "PRACK": self._on_prack,
        }[method](request, source, transaction, dialog)

    def ack_received(self, ack: Request, source: Peer, transaction: Transaction | None) -> None:
        """The ACK for one of our 2xx: the first one confirms the dialog."""
        if transaction is None:
            return
        dialog = self._unacknowledged.pop(transaction, None)
        if dialog is None:
            return
        initial = not dialog.acknowledged
        dialog.acknowledged = True
        if dialog.state is DialogState.TERMINATING and dialog.end_reason is EndReason.LOCAL_BYE and initial:
            self._send_bye(dialog, EndReason.LOCAL_BYE, self._now)
            return
        if dialog.state is DialogState.CONFIRMED:
            self._events.append(AckReceived(dialog, ack, initial))

    def response_received(self, response: Response, transaction: Transaction) -> None:
        """A response to one of our requests."""
        if transaction in self._calls:
            self._on_invite_response(self._calls[transaction], response, transaction)
        elif response.status_code >= 200:
            if transaction in self._byes:
                self._finish_bye(transaction)
            elif transaction in self._refreshes:
                self._on_refresh_response(self._refreshes.pop(transaction), response, transaction)

    def stray_response(self, response: Response, source: Peer) -> None:
        """A 2xx retransmitted after our INVITE transaction ended gets its ACK again; the rest is dropped."""
        call = self._answered.get((response.call_id, response.to_address.tag or ""))
        if call is not None and call.ack is not None and response.cseq.method == "INVITE":
            self.transactions.send_raw(call.ack, call.destination)
            return
        logger.debug("stray %d response for Call-ID %s from %s", response.status_code,
                     response.headers.get("Call-ID"), source)

    def transaction_terminated(self, transaction: Transaction) -> None:
        """A transaction is over: forget what we kept about it."""
        self._calls.pop(transaction, None)
        self._refreshes.pop(transaction, None)
        if self._byes.get(transaction) is not None:
            self._finish_bye(transaction)

    def transaction_failed(self, transaction: Transaction, reason: str) -> None:
        """A transaction ended without success."""
        now = self._now
        if transaction in self._calls:
            call = self._calls.pop(transaction)
            if not call.done:
                self._fail_call(call, 503 if reason == "transport error" else 408, reason)
            return
        if transaction in self._byes:
            logger.info("Call-ID %s: BYE %s", transaction.request.call_id, reason)
            self._finish_bye(transaction)
            return
        if transaction in self._refreshes:
            refreshed = self._refreshes.pop(transaction)
            logger.info("Call-ID %s: session refresh %s; hanging up", refreshed.call_id, reason)
            self._send_bye(refreshed, EndReason.SESSION_EXPIRED, now)
            return
        unacknowledged = self._unacknowledged.pop(transaction, None)
        if unacknowledged is not None and not unacknowledged.acknowledged \
                and unacknowledged.state is not DialogState.TERMINATED:
            logger.warning("Call-ID %s: %s; hanging up", unacknowledged.call_id, reason)
            self._send_bye(unacknowledged, EndReason.NO_ACK, now)

    # -- UAS method handlers ----------------------------------------------------------------------

    def _refused_by_headers(self, request: Request, transaction: Transaction, now: float) -> bool:
        """Require (420), body type and encoding (415), Accept (406) and Min-SE (422) checks."""
        if request.method in ("CANCEL", "ACK"):
            return False
        unsupported = [tag for tag in request.headers.get_list("Require") if tag.lower() not in SUPPORTED_EXTENSIONS]
        if unsupported:
            self._respond(transaction, 420, now, headers=[("Unsupported", ", ".join(unsupported))])
            return True
        if request.body:
            accepted = INFO_BODY_TYPES if request.method == "INFO" else SESSION_BODY_TYPES
            if request.content_type not in accepted:
                self._respond(transaction, 415, now, headers=[("Accept", ", ".join(accepted))])
                return True
            encodings = [e.lower() for e in request.headers.get_list("Content-Encoding")]
            if any(e != "identity" for e in encodings):
                self._respond(transaction, 415, now, headers=[("Accept-Encoding", "identity")])
                return True
        if request.method in ("INVITE", "UPDATE") and "Accept" in request.headers:
            accept = [value.split(";")[0].strip().lower() for value in request.headers.get_list("Accept")]
            if not {"application/sdp", "application/*", "*/*"} & set(accept):
                self._respond(transaction, 406, now, headers=[("Accept", "application/sdp")])
                return True
        expires = parse_session_expires(request.headers)
        if request.method in ("INVITE", "UPDATE") and expires and expires.interval < self.min_session_expires:
            self._respond(transaction, 422, now, headers=[("Min-SE", str(self.min_session_expires))])
            return True
        return False

    def _on_invite(self, request: Request, source: Peer, transaction: Transaction, dialog: Dialog | None) -> None:
        now = self._now
        if dialog is not None and request.cseq.number <= dialog.remote_cseq:
            self._respond(transaction, 500, now, reason="CSeq out of order")
            return
        request_id = secrets.token_hex(8)
        self._pending[request_id] = _Pending(transaction, request.to_address.tag or new_tag(), dialog)
        self.transactions.send_response(transaction, make_response(request, 100), now)
        self._events.append(InviteReceived(request_id, request, source, dialog))

    def _on_bye(self, request: Request, source: Peer, transaction: Transaction, dialog: Dialog | None) -> None:
        assert dialog is not None
        self._respond(transaction, 200, self._now)
        dialog.remote_cseq = max(dialog.remote_cseq, request.cseq.number)
        self._end(dialog, EndReason.REMOTE_BYE)

    def _on_cancel(self, request: Request, source: Peer, transaction: Transaction, dialog: Dialog | None) -> None:
        now = self._now
        invite_tx = self.transactions.server_transaction((*server_key(request)[:-1], "INVITE"))
        if invite_tx is None:
            self._respond(transaction, 481, now)
            return
        self._respond(transaction, 200, now)
        if invite_tx.state is not State.PROCEEDING:
            return
        for request_id, pending in list(self._pending.items()):
            if pending.transaction is invite_tx:
                del self._pending[request_id]
                response = make_response(invite_tx.request, 487, to_tag=pending.to_tag)
                self.transactions.send_response(invite_tx, response, now)
                self._events.append(InviteCancelled(request_id, invite_tx.request))

    def _on_options(self, request: Request, source: Peer, transaction: Transaction, dialog: Dialog | None) -> None:
        self._respond(transaction, 200, self._now, headers=[
            ("Allow", ALLOW_HEADER), ("Accept", "application/sdp"),
            ("Supported", ", ".join(sorted(SUPPORTED_EXTENSIONS)))])

    def _on_update(self, request: Request, source: Peer, transaction: Transaction, dialog: Dialog | None) -> None:
        assert dialog is not None
        if request.body:
            self._await_application(request, source, transaction, dialog)
            return
        response = make_response(request, 200, to_tag=dialog.local_tag)
        response.headers.add("Contact", f"<{self._contact_uri(request, transaction.peer)}>")
        self._answer_session_timer(dialog, request, response, self._now)
        self.transactions.send_response(transaction, response, self._now)

    def _on_info(self, request: Request, source: Peer, transaction: Transaction, dialog: Dialog | None) -> None:
        assert dialog is not None
        self._await_application(request, source, transaction, dialog)

    def _on_prack(self, request: Request, source: Peer, transaction: Transaction, dialog: Dialog | None) -> None:
        self._respond(transaction, 481, self._now, reason="No reliable provisional response to acknowledge")

    def _await_application(self, request: Request, source: Peer, transaction: Transaction, dialog: Dialog) -> None:
        request_id = secrets.token_hex(8)
        self._pending[request_id] = _Pending(transaction, dialog.local_tag, dialog)
        self._events.append(RequestReceived(request_id, request, source, dialog))

    # -- UAC: INVITE, CANCEL, ACK, digest authentication ------------------------------------------

    def _send_invite(self, call: OutgoingCall, now: float) -> None:
        local = call.local_party.copy()
        local.params.set("tag", call.local_tag)
        contact = self._contact_uri(None, call.destination, user=call.local_party.sip_uri.user)
        headers = Headers([("Max-Forwards", "70"), ("From", str(local)), ("To", str(call.remote_party)),
                           ("Call-ID", call.call_id), ("CSeq", f"{call.cseq} INVITE"), ("Contact", f"<{contact}>"),
                           ("Allow", ALLOW_HEADER), ("Supported", "timer"), ("User-Agent", self.user_agent),
                           *call.authorization, ("Content-Type", "application/sdp")])
        request = Request("INVITE", call.target, headers, call.offer)
        transaction = self._send_request(request, call.destination, now)
        call.branch = request.top_via.branch or ""
        self._calls[transaction] = call

    def _send_cancel(self, call: OutgoingCall, now: float) -> None:
        call.state = OutgoingState.CANCELLING
        invite = next((t.request for t, c in self._calls.items() if c is call), None)
        if invite is None:
            return
        headers = Headers([("Via", invite.headers.get_all("Via")[0]), ("Max-Forwards", "70"),
                           ("From", invite.headers.get("From") or ""), ("To", invite.headers.get("To") or ""),
                           ("Call-ID", call.call_id), ("CSeq", f"{call.cseq} CANCEL"),
                           ("User-Agent", self.user_agent)])
        for route in invite.headers.get_all("Route"):
            headers.add("Route", route)
        self.transactions.send_request(Request("CANCEL", invite.uri, headers), call.destination, now)

    def _on_invite_response(self, call: OutgoingCall, response: Response, transaction: Transaction) -> None:
        now = self._now
        status = response.status_code
        if status < 200:
            first = not call.provisional_received
            call.provisional_received = True
            if call.cancel_requested and first:
                self._send_cancel(call, now)
            elif status > 100 and call.state is OutgoingState.CALLING:
                call.state = OutgoingState.RINGING
            if status > 100:
                self._events.append(CallProgress(call, response))
        elif status < 300:
            self._on_invite_answered(call, response, now)
        elif status in (401, 407) and self._retry_with_credentials(call, response, now):
            del self._calls[transaction]
        else:
            del self._calls[transaction]
            self._fail_call(call, status, response.reason)

    def _retry_with_credentials(self, call: OutgoingCall, response: Response, now: float) -> bool:
        header = "WWW-Authenticate" if response.status_code == 401 else "Proxy-Authenticate"
        answer_header = "Authorization" if response.status_code == 401 else "Proxy-Authorization"
        for value in response.headers.get_all(header):
            try:
                challenge = parse_challenge(value)
            except ValueError:
                continue
            if challenge.realm in call.realms_tried and not challenge.stale:
                continue
            credentials = next((c for c in call.credentials if c.matches(challenge.realm)), None)
            if credentials is None:
                continue
            call.realms_tried.add(challenge.realm)
            call.authorization = [(answer_header, authorization(challenge, credentials, "INVITE", str(call.target),
                                                                body=call.offer))]
            call.cseq += 1
            logger.info("Call-ID %s: answering %d challenge of realm %s", call.call_id, response.status_code,
                        challenge.realm)
            self._send_invite(call, now)
            return True
        return False

    def _on_invite_answered(self, call: OutgoingCall, response: Response, now: float) -> None:
        remote_tag = response.to_address.tag or ""
        if call.state is OutgoingState.ANSWERED:
            existing = self._answered.get((call.call_id, remote_tag))
            if existing is not None and call.ack is not None:
                self.transactions.send_raw(call.ack, call.destination)
            else:  # a second 2xx from another fork: acknowledge it and end that extra dialog
                extra = self._create_uac_dialog(call, response)
                self._acknowledge(call, extra, now)
                self._send_bye(extra, EndReason.LOCAL_BYE, now)
            return
        dialog = self._create_uac_dialog(call, response)
        self._acknowledge(call, dialog, now)
        call.state = OutgoingState.ANSWERED
        call.final_status = response.status_code
        self._answered[(call.call_id, remote_tag)] = call
        expires = parse_session_expires(response.headers)
        if expires is not None:
            self._start_session_timer(dialog, expires.interval, we_refresh=expires.refresher != "uas", now=now)
        self._events.append(CallAnswered(call, dialog, response))
        if call.cancel_requested:
            self._send_bye(dialog, EndReason.LOCAL_BYE, now)

    def _acknowledge(self, call: OutgoingCall, dialog: Dialog, now: float) -> None:
        ack = dialog.create_request("ACK", self.user_agent, cseq=call.cseq)
        hop = dialog.next_hop()
        self._add_via(ack, hop)
        call.ack = ack.to_bytes()
        self.transactions.send_raw(call.ack, hop)

    def _create_uac_dialog(self, call: OutgoingCall, response: Response) -> Dialog:
        contacts = response.contacts
        dialog = Dialog(
            call_id=call.call_id,
            local_tag=call.local_tag,
            remote_tag=response.to_address.tag or "",
            local_party=call.local_party,
            remote_party=call.remote_party,
            remote_target=contacts[0].uri if contacts else call.target,
            route_set=list(reversed(response.headers.get_list("Record-Route"))),
            remote_cseq=0,
            peer=call.destination,
            is_uac=True,
            local_cseq=call.cseq,
            acknowledged=True,
            local_sdp=call.offer,
            remote_allow=frozenset(m.upper() for m in response.headers.get_list("Allow")),
        )
        self._dialogs[dialog.id] = dialog
        return dialog

    def _fail_call(self, call: OutgoingCall, status: int, reason: str) -> None:
        call.state = OutgoingState.FAILED
        call.final_status = status
        logger.info("Call-ID %s: call to %s failed: %d %s", call.call_id, call.target, status, reason)
        self._events.append(CallFailed(call, status, reason))

    # -- session timers ---------------------------------------------------------------------------

    def _answer_session_timer(self, dialog: Dialog, request: Request, response: Response, now: float) -> None:
        """RFC 4028 §9: echo Session-Expires with the refresher in our 2xx and (re)start the timer."""
        expires = parse_session_expires(request.headers)
        if expires is None:
            self._stop_session_timer(dialog)
            return
        refresher = uas_refresher(expires, request.headers)
        response.headers.add("Session-Expires", str(SessionExpires(expires.interval, refresher)))
        if supports_timer(request.headers):
            response.headers.add("Require", "timer")
        self._start_session_timer(dialog, expires.interval, we_refresh=refresher == "uas", now=now)

    def _start_session_timer(self, dialog: Dialog, interval: int, *, we_refresh: bool, now: float) -> None:
        dialog.session_timer = SessionTimer(interval, we_refresh, now)
        self._dialog_timers.schedule(dialog, dialog.session_timer.deadline)

    def _stop_session_timer(self, dialog: Dialog) -> None:
        dialog.session_timer = None
        self._dialog_timers.schedule(dialog, None)

    def _session_timer_fired(self, dialog: Dialog, now: float) -> None:
        timer = dialog.session_timer
        if timer is None or dialog.state is not DialogState.CONFIRMED:
            return
        if not timer.we_refresh:
            logger.info("Call-ID %s: session expired without a refresh", dialog.call_id)
            self._send_bye(dialog, EndReason.SESSION_EXPIRED, now)
            return
        method = "UPDATE" if "UPDATE" in dialog.remote_allow else "INVITE"
        request = dialog.create_request(method, self.user_agent)
        request.headers.add("Contact", f"<{self._contact_uri(None, dialog.peer)}>")
        request.headers.add("Session-Expires", f"{timer.interval};refresher=uac")
        request.headers.add("Supported", "timer")
        if method == "INVITE" and dialog.local_sdp:
            request.headers.add("Content-Type", "application/sdp")
            request.body = dialog.local_sdp
        transaction = self._send_request(request, dialog.next_hop(), now)
        self._refreshes[transaction] = dialog
        timer.last_refresh = now  # keep the deadline moving even if the answer is slow
        self._dialog_timers.schedule(dialog, timer.expires_at)

    def _on_refresh_response(self, dialog: Dialog, response: Response, transaction: Transaction) -> None:
        now = self._now
        if transaction.request.method == "INVITE" and 200 <= response.status_code < 300:
            ack = dialog.create_request("ACK", self.user_agent, cseq=transaction.request.cseq.number)
            hop = dialog.next_hop()
            self._add_via(ack, hop)
            self.transactions.send_stateless(ack, hop)
        if 200 <= response.status_code < 300:
            expires = parse_session_expires(response.headers)
            interval = expires.interval if expires else (dialog.session_timer.interval if dialog.session_timer else 0)
            if interval:
                self._start_session_timer(dialog, interval, we_refresh=not expires or expires.refresher != "uas",
                                          now=now)
        elif response.status_code in (408, 481):
            self._send_bye(dialog, EndReason.SESSION_EXPIRED, now)

    # -- helpers ----------------------------------------------------------------------------------

    def _respond(self, transaction: Transaction, status_code: int, now: float, *, reason: str | None = None,
                 headers: list[tuple[str, str]] | None = None) -> None:
        response = make_response(transaction.request, status_code, reason, to_tag=new_tag())
        for name, value in headers or ():
            response.headers.add(name, value)
        self.transactions.send_response(transaction, response, now)

    def _add_via(self, request: Request, hop: Peer) -> None:
        port = self.ports.get(hop.transport, self.ports[UDP])
        request.headers.prepend("Via", str(Via(hop.transport, bracket(self.host), port,
                                               _via_params(new_branch()))))

    def _send_request(self, request: Request, hop: Peer, now: float) -> Transaction:
        self._add_via(request, hop)
        return self.transactions.send_request(request, hop, now)

    def _contact_uri(self, request: Request | None, peer: Peer, user: str | None = None) -> SipUri:
        if user is None and request is not None and isinstance(request.uri, SipUri):
            user = request.uri.user
        secure = peer.transport == TLS and (request is None or (isinstance(request.uri, SipUri) and request.uri.secure))
        uri = SipUri(host=bracket(self.host), user=user, port=self.ports.get(peer.transport, self.ports[UDP]),
                     scheme="sips" if secure else "sip")
        if peer.transport != UDP and not secure:
            uri.params.set("transport", peer.transport.lower())
        return uri

    def _create_uas_dialog(self, request: Request, pending: _Pending) -> Dialog:
        contacts = request.contacts
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
            remote_target=contacts[0].uri if contacts else request.from_address.uri,
            route_set=request.headers.get_list("Record-Route"),
            remote_cseq=request.cseq.number,
            peer=pending.transaction.peer,
            remote_allow=frozenset(m.upper() for m in request.headers.get_list("Allow")),
        )
        self._dialogs[dialog.id] = dialog
        return dialog

    def _send_bye(self, dialog: Dialog, reason: EndReason, now: float) -> None:
        if dialog.state is DialogState.TERMINATED:
            return
        dialog.state = DialogState.TERMINATING
        dialog.end_reason = reason
        self._stop_session_timer(dialog)
        bye = dialog.create_request("BYE", self.user_agent)
        self._byes[self._send_request(bye, dialog.next_hop(), now)] = dialog

    def _finish_bye(self, transaction: Transaction) -> None:
        dialog = self._byes.pop(transaction, None)
        if dialog is not None:
            self._end(dialog, dialog.end_reason or EndReason.LOCAL_BYE)

    def _end(self, dialog: Dialog, reason: EndReason) -> None:
        if dialog.state is DialogState.TERMINATED:
            return
        dialog.state = DialogState.TERMINATED
        dialog.end_reason = reason
        self._stop_session_timer(dialog)
        self._dialogs.pop(dialog.id, None)
        if dialog.is_uac:
            self._answered.pop((dialog.call_id, dialog.remote_tag), None)
        self._events.append(DialogEnded(dialog, reason))


def _via_params(branch: str) -> Params:
    return Params([("branch", branch), ("rport", None)])
