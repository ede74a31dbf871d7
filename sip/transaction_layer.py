"""The transaction layer (RFC 3261 §17-18): parse, match to transactions, answer what cannot be parsed.

Sans-IO: `receive(data, source, now)` takes one datagram; outgoing datagrams queue up for
`datagrams_to_send()`; `get_timer()` / `handle_timer(now)` drive every transaction's timers through
one heap. What matters to the layer above goes to its `TransactionLayerUser` callbacks.
"""

from __future__ import annotations

import heapq
import itertools
import logging
from typing import Protocol

from .errors import RemoteProtocolError, SipParseError
from .grammar import MAGIC_COOKIE
from .message import Request, Response, make_response, parse_message
from .timers import TimerConfig
from .transactions import Address, Kind, State, Transaction

logger = logging.getLogger(__name__)

ServerKey = tuple[str, ...]


class TransactionLayerUser(Protocol):
    """Callbacks from the transaction layer to the transaction user (the UA core)."""

    def request_received(self, request: Request, source: Address, transaction: Transaction) -> None:
        """A new request (not ACK) created `transaction`; the TU must answer through it."""

    def ack_received(self, ack: Request, source: Address, transaction: Transaction | None) -> None:
        """An ACK for a 2xx (transaction is its INVITE's, if still Accepted) or a stray ACK."""

    def response_received(self, response: Response, transaction: Transaction) -> None:
        """A response for one of our client transactions."""

    def stray_response(self, response: Response, source: Address) -> None:
        """A response that matched no client transaction (a retransmitted 2xx to an INVITE, say)."""

    def transaction_failed(self, transaction: Transaction, reason: str) -> None:
        """A transaction timed out, was never acknowledged, or hit a transport error."""


def server_key(request: Request) -> ServerKey:
    """The RFC 3261 §17.2.3 key of the server transaction a request belongs to (ACK maps to INVITE)."""
    via = request.top_via
    method = "INVITE" if request.method == "ACK" else request.method
    branch = via.branch or ""
    host, port = via.sent_by
    if branch.startswith(MAGIC_COOKIE):
        return (branch, host, str(port), method)
    # RFC 2543 peers: no unique branch, fall back to the dialog and sequence identifiers.
    from_tag = request.from_address.tag or ""
    return ("2543", request.call_id, from_tag, str(request.cseq.number), host, str(port), branch, method)


def client_key(branch: str, method: str) -> tuple[str, str]:
    """The key of a client transaction: our branch and the CSeq method (§17.1.3)."""
    return (branch, "INVITE" if method == "ACK" else method)


class TransactionLayer:
    """All transactions of one SIP endpoint, fed datagrams and time."""

    def __init__(self, user: TransactionLayerUser, config: TimerConfig | None = None,
                 server_header: str | None = None) -> None:
        self.user = user
        self.config = config or TimerConfig()
        self.server_header = server_header
        self._server: dict[ServerKey, Transaction] = {}
        self._client: dict[tuple[str, str], Transaction] = {}
        self._accepted_invites: dict[tuple[str, int], Transaction] = {}
        self._outgoing: list[tuple[bytes, Address]] = []
        self._heap: list[tuple[float, int, Transaction]] = []
        self._scheduled: dict[Transaction, float] = {}
        self._counter = itertools.count()

    # -- network input ----------------------------------------------------------------------------

    def receive(self, data: bytes, source: Address, now: float) -> None:
        """Feed one datagram received from `source`."""
        if not data.strip(b"\r\n"):
            return  # keep-alive CRLFs (RFC 5626 §3.5.1)
        try:
            message = parse_message(data)
        except SipParseError as error:
            self._answer_unparseable(error, source)
            return
        if isinstance(message, Request):
            self._receive_request(message, source, now)
        else:
            self._receive_response(message, source, now)

    def _answer_unparseable(self, error: SipParseError, source: Address) -> None:
        request = error.request
        if request is None or request.method == "ACK":
            logger.info("dropped unparseable message from %s:%s: %s", source[0], source[1], error)
            return
        try:
            response = make_response(request, error.status_code, error.reason)
            self._stamp(response)
            data = response.to_bytes()
        except RemoteProtocolError:
            logger.info("dropped unanswerable request from %s:%s: %s", source[0], source[1], error)
            return
        logger.info("answered %d to malformed %s from %s:%s: %s", error.status_code, request.method,
                    source[0], source[1], error)
        self._outgoing.append((data, source))

    def _receive_request(self, request: Request, source: Address, now: float) -> None:
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
        kind = Kind.INVITE_SERVER if request.method == "INVITE" else Kind.NON_INVITE_SERVER
        transaction = Transaction(kind, key, request, source, reliable=False, config=self.config, user=self)
        self._server[key] = transaction
        self.user.request_received(request, source, transaction)
        self._after(transaction)

    @staticmethod
    def _mark_received(request: Request, source: Address) -> None:
        """§18.2.1 and RFC 3581: record where the request really came from in its top Via."""
        top = request.top_via
        wants_rport = "rport" in top.params
        if wants_rport or top.host.strip("[]") != source[0]:
            top.params.set("received", source[0])
            if wants_rport:
                top.params.set("rport", str(source[1]))
            request.set_top_via(top)

    def _receive_response(self, response: Response, source: Address, now: float) -> None:
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

    def send_request(self, request: Request, destination: Address, now: float) -> Transaction:
        """Start a client transaction for `request` (its top Via must carry a fresh branch)."""
        branch = request.top_via.branch or ""
        kind = Kind.INVITE_CLIENT if request.method == "INVITE" else Kind.NON_INVITE_CLIENT
        key = client_key(branch, request.method)
        transaction = Transaction(kind, key, request, destination, reliable=False, config=self.config, user=self)
        self._client[key] = transaction
        transaction.start(now)
        self._after(transaction)
        return transaction

    def send_stateless(self, message: Request | Response, destination: Address) -> None:
        """Send a message outside any transaction (the ACK for a 2xx)."""
        if isinstance(message, Response):
            self._stamp(message)
        self._outgoing.append((message.to_bytes(), destination))

    def server_transaction(self, key: ServerKey) -> Transaction | None:
        """The live server transaction with this key, if any."""
        return self._server.get(key)

    def _stamp(self, response: Response) -> None:
        if self.server_header and "Server" not in response.headers:
            response.headers.add("Server", self.server_header)

    # -- output and time --------------------------------------------------------------------------

    def datagrams_to_send(self) -> list[tuple[bytes, Address]]:
        """Everything queued for transmission since the last call, in order."""
        outgoing, self._outgoing = self._outgoing, []
        return outgoing

    def get_timer(self) -> float | None:
        """When `handle_timer` next has work, or None."""
        while self._heap:
            deadline, _, transaction = self._heap[0]
            if self._scheduled.get(transaction) == deadline:
                return deadline
            heapq.heappop(self._heap)
        return None

    def handle_timer(self, now: float) -> None:
        """Run every transaction timer that is due."""
        while self._heap and self._heap[0][0] <= now:
            deadline, _, transaction = heapq.heappop(self._heap)
            if self._scheduled.get(transaction) != deadline:
                continue
            del self._scheduled[transaction]
            transaction.handle_timer(now)
            self._after(transaction)

    def __len__(self) -> int:
        return len(self._server) + len(self._client)

    def _after(self, transaction: Transaction) -> None:
        """Re-schedule a transaction after it changed, or forget it once it terminated."""
        if transaction.terminated:
            self._scheduled.pop(transaction, None)
            if transaction.is_client:
                self._client.pop(transaction.key, None)  # type: ignore[arg-type]
            else:
                self._server.pop(transaction.key, None)
                request = transaction.request
                ident = (request.call_id, request.cseq.number)
                if self._accepted_invites.get(ident) is transaction:
                    del self._accepted_invites[ident]
            return
        deadline = transaction.get_timer()
        if deadline is None:
            self._scheduled.pop(transaction, None)
        elif self._scheduled.get(transaction) != deadline:
            self._scheduled[transaction] = deadline
            heapq.heappush(self._heap, (deadline, next(self._counter), transaction))

    # -- TransactionUser (called by transactions) -------------------------------------------------

    def transmit(self, data: bytes, destination: Address, transaction: Transaction) -> None:
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
