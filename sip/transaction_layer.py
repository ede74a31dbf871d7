"""The transaction layer (RFC 3261 §17-18): parse, match to transactions, answer what cannot be parsed.

Sans-IO: `receive(data, source, now)` takes one message from a peer (a UDP datagram, or a message
framed off a TCP/TLS stream); outgoing messages queue up for `messages_to_send()`; `get_timer()` /
`handle_timer(now)` drive every transaction's timers through one deadline heap. What matters to the
layer above goes to its `TransactionLayerUser` callbacks.

Bad input never escapes as an exception: a malformed request that can still be answered gets its
400/505/513 statelessly, anything else is dropped and logged. The number of live transactions is
capped so that a flood cannot grow memory without bound (503 beyond the cap).
"""

from __future__ import annotations

import logging
from typing import Protocol

from .deadlines import DeadlineHeap
from .errors import RemoteProtocolError, SipParseError
from .grammar import MAGIC_COOKIE
from .message import DEFAULT_LIMITS, MessageLimits, Request, Response, make_response, parse_message
from .timers import TimerConfig
from .transactions import Kind, State, Transaction
from .transport import TCP, UDP, UDP_SIZE_LIMIT, Peer

logger = logging.getLogger(__name__)

ServerKey = tuple[str, ...]
DEFAULT_MAX_TRANSACTIONS = 20000


class TransactionLayerUser(Protocol):
    """Callbacks from the transaction layer to the transaction user (the UA core)."""

    def request_received(self, request: Request, source: Peer, transaction: Transaction) -> None:
        """A new request (not ACK) created `transaction`; the TU must answer through it."""

    def ack_received(self, ack: Request, source: Peer, transaction: Transaction | None) -> None:
        """An ACK for a 2xx (transaction is its INVITE's, if still Accepted) or a stray ACK."""

    def response_received(self, response: Response, transaction: Transaction) -> None:
        """A response for one of our client transactions."""

    def stray_response(self, response: Response, source: Peer) -> None:
        """A response that matched no client transaction (a retransmitted 2xx to an INVITE, say)."""

    def transaction_failed(self, transaction: Transaction, reason: str) -> None:
        """A transaction timed out, was never acknowledged, or hit a transport error."""

    def transaction_terminated(self, transaction: Transaction) -> None:
        """A transaction is over (after any failure report) and has been forgotten."""


def server_key(request: Request) -> ServerKey:
    """The RFC 3261 §17.2.3 key of the server transaction a request belongs to (ACK maps to INVITE)."""
    via = request.top_via
    method = "INVITE" if request.method == "ACK" else request.method
    branch = via.branch or ""
    host, port = via.sent_by
    if branch.startswith(MAGIC_COOKIE) and len(branch) > len(MAGIC_COOKIE):
        return (branch, host, str(port), method)
    # RFC 2543 peers: no unique branch, fall back to the dialog and sequence identifiers.
    from_tag = request.from_address.tag or ""
    return ("2543", request.call_id, from_tag, str(request.cseq.number), host, str(port), branch, method)


def client_key(branch: str, method: str) -> tuple[str, str]:
    """The key of a client transaction: our branch and the CSeq method (§17.1.3)."""
    return (branch, "INVITE" if method == "ACK" else method)


class TransactionLayer:
    """All transactions of one SIP endpoint, fed messages and time."""

    def __init__(self, user: TransactionLayerUser, config: TimerConfig | None = None, *,
                 server_header: str | None = None, limits: MessageLimits = DEFAULT_LIMITS,
                 max_transactions: int = DEFAULT_MAX_TRANSACTIONS, tcp_available: bool = False) -> None:
        self.user = user
        self.config = config or TimerConfig()
        self.server_header = server_header
        self.limits = limits
        self.max_transactions = max_transactions
        self.tcp_available = tcp_available
        self.dropped = 0
        self._server: dict[ServerKey, Transaction] = {}
        self._client: dict[tuple[str, str], Transaction] = {}
        self._accepted_invites: dict[tuple[str, int], Transaction] = {}
        self._outgoing: list[tuple[bytes, Peer]] = []
        self._timers: DeadlineHeap[Transaction] = DeadlineHeap()

    # -- network input ----------------------------------------------------------------------------

    def receive(self, data: bytes, source: Peer, now: float) -> None:
        """Feed one message received from `source`."""
        if not data.strip(b"\r\n"):
            return  # keep-alive CRLFs (RFC 5626 §3.5.1)
        try:
            message = parse_message(data, self.limits)
        except SipParseError as error:
            self._answer_unparseable(error, source)
            return
        if isinstance(message, Request):
            self._receive_request(message, source, now)
        else:
            self._receive_response(message, source, now)

    def answer_framing_error(self, head: bytes, status_code: int, reason: str, source: Peer) -> None:
        """A stream could not be framed: answer the request whose header section we have, if any."""
        error = SipParseError(reason, status_code)
        try:
            message = parse_message(head.rstrip(b"\r\n") + b"\r\n\r\n", self.limits)
            error.request = message if isinstance(message, Request) else None
        except SipParseError as parse_error:
            error.request = parse_error.request
        self._answer_unparseable(error, source)

    def _answer_unparseable(self, error: SipParseError, source: Peer) -> None:
        self.dropped += 1
        request = error.request
        if request is None or request.method == "ACK":
            logger.info("dropped unparseable message from %s: %s", source, error)
            return
        try:
            response = make_response(request, error.status_code, error.reason)
            self._stamp(response)
            data = response.to_bytes()
        except RemoteProtocolError:
            logger.info("dropped unanswerable request from %s: %s", source, error)
            return
        logger.info("answered %d to malformed %s from %s: %s", error.status_code, request.method, source, error)
        self._outgoing.append((data, source))

    def _receive_request(self, request: Request, source: Peer, now: float) -> None:
        self._mark_received(request, source)
        key = server_key(request)
        transaction = self._server.get(key)
        if transaction is not None:
            transaction.receive_request(request, now)
            self._after(transaction)
            return
        if request.method == "ACK":
            accepted = self._accepted_invites.get((request.call_id, request.cseq.number))
            if accepted is not None:
                accepted.receive_request(request, now)
                self._after(accepted)
                return
            self.user.ack_received(request, source, None)
            return
        if len(self._server) + len(self._client) >= self.max_transactions:
            self.dropped += 1
            logger.warning("transaction table full (%d): 503 to %s from %s", self.max_transactions,
                           request.method, source)
            response = make_response(request, 503, "Service Unavailable")
            response.headers.add("Retry-After", "5")
            self.send_stateless(response, source)
            return
        kind = Kind.INVITE_SERVER if request.method == "INVITE" else Kind.NON_INVITE_SERVER
        transaction = Transaction(kind, key, request, source, config=self.config, user=self)
        self._server[key] = transaction
        self.user.request_received(request, source, transaction)
        self._after(transaction)

    @staticmethod
    def _mark_received(request: Request, source: Peer) -> None:
        """§18.2.1 and RFC 3581: record where the request really came from in its top Via."""
        top = request.top_via
        wants_rport = "rport" in top.params
        if wants_rport or top.host.strip("[]") != source.host:
            top.params.set("received", source.host)
            if wants_rport:
                top.params.set("rport", str(source.address[1]))
            request.set_top_via(top)

    def _receive_response(self, response: Response, source: Peer, now: float) -> None:
        branch = response.top_via.branch or ""
        transaction = self._client.get(client_key(branch, response.cseq.method))
        if transaction is None:
            self.user.stray_response(response, source)
            return
        transaction.receive_response(response, now)
        self._after(transaction)

    # -- transaction user input -------------------------------------------------------------------

    def send_response(self, transaction: Transaction, response: Response, now: float) -> None:
        """Send `response` through a server transaction."""
        self._stamp(response)
        transaction.send_response(response, now)
        if transaction.kind is Kind.INVITE_SERVER and transaction.state is State.ACCEPTED:
            self._accepted_invites[(transaction.request.call_id, transaction.request.cseq.number)] = transaction
        self._after(transaction)

    def send_request(self, request: Request, destination: Peer, now: float) -> Transaction:
        """Start a client transaction for `request` (its top Via must carry a fresh branch).

        A request too large for UDP goes over TCP instead (§18.1.1), with its Via rewritten to say so.
        """
        if destination.transport == UDP and self.tcp_available and len(request.to_bytes()) > UDP_SIZE_LIMIT:
            via = request.top_via
            via.transport = TCP
            request.set_top_via(via)
            destination = Peer(TCP, destination.address)
        branch = request.top_via.branch or ""
        kind = Kind.INVITE_CLIENT if request.method == "INVITE" else Kind.NON_INVITE_CLIENT
        key = client_key(branch, request.method)
        transaction = Transaction(kind, key, request, destination, config=self.config, user=self)
        self._client[key] = transaction
        transaction.start(now)
        self._after(transaction)
        return transaction

    def send_stateless(self, message: Request | Response, destination: Peer) -> None:
        """Send a message outside any transaction (the ACK for a 2xx, a 503 under overload)."""
        if isinstance(message, Response):
            self._stamp(message)
        self.send_raw(message.to_bytes(), destination)

    def send_raw(self, data: bytes, destination: Peer) -> None:
        """Send bytes already serialized (an ACK sent again for a retransmitted 2xx)."""
        self._outgoing.append((data, destination))

    def server_transaction(self, key: ServerKey) -> Transaction | None:
        """The live server transaction with this key, if any."""
        return self._server.get(key)

    def transport_failed(self, peer: Peer, now: float) -> None:
        """Messages to `peer` cannot be delivered (a refused or broken connection)."""
        for transaction in [t for t in (*self._client.values(), *self._server.values()) if t.peer == peer]:
            transaction.transport_error(now)
            self._after(transaction)

    def _stamp(self, response: Response) -> None:
        if self.server_header and "Server" not in response.headers:
            response.headers.add("Server", self.server_header)

    # -- output and time --------------------------------------------------------------------------

    def messages_to_send(self) -> list[tuple[bytes, Peer]]:
        """Everything queued for transmission since the last call, in order."""
        outgoing, self._outgoing = self._outgoing, []
        return outgoing

    def get_timer(self) -> float | None:
        """When `handle_timer` next has work, or None."""
        return self._timers.next_deadline()

    def handle_timer(self, now: float) -> None:
        """Run every transaction timer that is due."""
        for transaction in self._timers.pop_due(now):
            transaction.handle_timer(now)
            self._after(transaction)

    def __len__(self) -> int:
        return len(self._server) + len(self._client)

    def _after(self, transaction: Transaction) -> None:
        """Re-schedule a transaction after it changed, or forget it once it terminated."""
        if not transaction.terminated:
            self._timers.schedule(transaction, transaction.get_timer())
            return
        self._timers.schedule(transaction, None)
        if transaction.is_client:
            if self._client.pop(transaction.key, None) is None:  # type: ignore[arg-type]
                return
        else:
            if self._server.pop(transaction.key, None) is None:
                return
            ident = (transaction.request.call_id, transaction.request.cseq.number)
            if self._accepted_invites.get(ident) is transaction:
                del self._accepted_invites[ident]
        self.user.transaction_terminated(transaction)

    # -- TransactionUser (called by transactions) -------------------------------------------------

    def transmit(self, data: bytes, destination: Peer, transaction: Transaction) -> None:
        """Queue bytes from a transaction."""
        self._outgoing.append((data, destination))

    def response_received(self, transaction: Transaction, response: Response) -> None:
        """Pass a client transaction's response up."""
        self.user.response_received(response, transaction)

    def ack_received(self, transaction: Transaction, ack: Request) -> None:
        """Pass the ACK for an accepted INVITE up."""
        self.user.ack_received(ack, transaction.peer, transaction)

    def transaction_failed(self, transaction: Transaction, reason: str) -> None:
        """Pass a transaction failure up."""
        self.user.transaction_failed(transaction, reason)
