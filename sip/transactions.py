"""The four RFC 3261 §17 transaction machines, with the RFC 6026 corrections, as one table.

Theory of operation
-------------------
A transaction is a request and all its responses between two hops. Each machine below is a row set
of `TABLE`: `(kind, state, input) -> Transition(next state, steps)`. Inputs come from three places:
the network (a retransmitted request, an ACK, a response), the transaction user (a response to send),
and timers (`handle_timer(now)`). Steps are side effects: transmit, retransmit, hand something to the
transaction user (TU), arm/back off/cancel a timer.

A remote input with no row is absorbed silently (that is how retransmissions die); a local input
with no row is our bug and raises `LocalProtocolError`. Nothing here touches a socket or a clock:
every entry point takes `now` and output goes through the `TransactionUser` interface.

RFC 6026 changes applied: an INVITE server transaction that sends a 2xx enters Accepted (Timer L)
instead of Terminated, keeps retransmitted INVITEs from the TU (answering them with the 2xx again,
as the UAS core may) and passes ACKs to the TU; an INVITE client
transaction that receives a 2xx enters Accepted (Timer M) and passes 2xx retransmissions up. The
2xx itself is retransmitted here in Accepted (T1 doubling to T2, §13.3.1.4) until the ACK arrives;
if Timer L fires first the TU is told the ACK never came.
"""

from __future__ import annotations

import enum
from dataclasses import dataclass
from typing import Protocol

from .errors import LocalProtocolError
from .headers import Headers
from .message import Request, Response
from .timers import TimerConfig
from .transport import Peer


class Kind(enum.Enum):
    """The four machines of RFC 3261 §17."""

    INVITE_CLIENT = "ICT"
    NON_INVITE_CLIENT = "NICT"
    INVITE_SERVER = "IST"
    NON_INVITE_SERVER = "NIST"


class State(enum.Enum):
    """Transaction states (RFC 3261 figures 5-8, RFC 6026 figures 3-4)."""

    CALLING = "Calling"
    TRYING = "Trying"
    PROCEEDING = "Proceeding"
    COMPLETED = "Completed"
    CONFIRMED = "Confirmed"
    ACCEPTED = "Accepted"
    TERMINATED = "Terminated"


class Input(enum.Enum):
    """What can happen to a transaction."""

    # from the network
    REQUEST = "request retransmission"
    ACK = "ACK"
    RESPONSE_1XX = "1xx received"
    RESPONSE_2XX = "2xx received"
    RESPONSE_ERROR = "300-699 received"
    # from the transaction user
    SEND_1XX = "send 1xx"
    SEND_2XX = "send 2xx"
    SEND_ERROR = "send 300-699"
    # timers
    TIMER_A = "Timer A"
    TIMER_B = "Timer B"
    TIMER_D = "Timer D"
    TIMER_E = "Timer E"
    TIMER_F = "Timer F"
    TIMER_G = "Timer G"
    TIMER_H = "Timer H"
    TIMER_I = "Timer I"
    TIMER_J = "Timer J"
    TIMER_K = "Timer K"
    TIMER_L = "Timer L"
    TIMER_M = "Timer M"
    TIMER_2XX = "2xx retransmit timer"
    # from the transport
    TRANSPORT_ERROR = "transport error"


LOCAL_INPUTS = frozenset({Input.SEND_1XX, Input.SEND_2XX, Input.SEND_ERROR})


class Action(enum.Enum):
    """Side effects a transition performs, in table order."""

    SEND = "transmit the new message"
    RESEND = "retransmit the last message"
    SEND_ACK = "transmit an ACK for the non-2xx final response"
    PASS_RESPONSE = "hand the response to the TU"
    PASS_ACK = "hand the ACK to the TU"
    REPORT_TIMEOUT = "tell the TU the transaction timed out"
    REPORT_NO_ACK = "tell the TU a 2xx was never acknowledged (if it was not)"
    REPORT_TRANSPORT_ERROR = "tell the TU the transport failed"


@dataclass(frozen=True)
class Arm:
    """Start a timer at its initial interval."""

    timer: Input


@dataclass(frozen=True)
class Backoff:
    """Restart a retransmission timer at twice its interval (capped where the RFC caps it)."""

    timer: Input


@dataclass(frozen=True)
class Cancel:
    """Stop a timer."""

    timer: Input


Step = Action | Arm | Backoff | Cancel


@dataclass(frozen=True)
class Transition:
    """The next state and the steps to perform on the way."""

    next_state: State
    steps: tuple[Step, ...] = ()


def _t(next_state: State, *steps: Step) -> Transition:
    return Transition(next_state, steps)


K, S, I, A = Kind, State, Input, Action  # noqa: E741 -- short names keep the table readable

TABLE: dict[tuple[Kind, State, Input], Transition] = {
    # INVITE client (RFC 3261 fig. 5 + RFC 6026 fig. 3). Start: Calling, SEND, Arm A (unreliable), Arm B.
    (K.INVITE_CLIENT, S.CALLING, I.TIMER_A): _t(S.CALLING, A.RESEND, Backoff(I.TIMER_A)),
    (K.INVITE_CLIENT, S.CALLING, I.TIMER_B): _t(S.TERMINATED, A.REPORT_TIMEOUT),
    (K.INVITE_CLIENT, S.CALLING, I.RESPONSE_1XX): _t(S.PROCEEDING, Cancel(I.TIMER_A), Cancel(I.TIMER_B),
                                                     A.PASS_RESPONSE),
    (K.INVITE_CLIENT, S.CALLING, I.RESPONSE_2XX): _t(S.ACCEPTED, Cancel(I.TIMER_A), Cancel(I.TIMER_B),
                                                     A.PASS_RESPONSE, Arm(I.TIMER_M)),
    (K.INVITE_CLIENT, S.CALLING, I.RESPONSE_ERROR): _t(S.COMPLETED, Cancel(I.TIMER_A), Cancel(I.TIMER_B),
                                                       A.SEND_ACK, A.PASS_RESPONSE, Arm(I.TIMER_D)),
    (K.INVITE_CLIENT, S.CALLING, I.TRANSPORT_ERROR): _t(S.TERMINATED, A.REPORT_TRANSPORT_ERROR),
    (K.INVITE_CLIENT, S.PROCEEDING, I.RESPONSE_1XX): _t(S.PROCEEDING, A.PASS_RESPONSE),
    (K.INVITE_CLIENT, S.PROCEEDING, I.RESPONSE_2XX): _t(S.ACCEPTED, A.PASS_RESPONSE, Arm(I.TIMER_M)),
    (K.INVITE_CLIENT, S.PROCEEDING, I.RESPONSE_ERROR): _t(S.COMPLETED, A.SEND_ACK, A.PASS_RESPONSE,
                                                          Arm(I.TIMER_D)),
    (K.INVITE_CLIENT, S.COMPLETED, I.RESPONSE_ERROR): _t(S.COMPLETED, A.SEND_ACK),
    (K.INVITE_CLIENT, S.COMPLETED, I.TIMER_D): _t(S.TERMINATED),
    (K.INVITE_CLIENT, S.COMPLETED, I.TRANSPORT_ERROR): _t(S.TERMINATED, A.REPORT_TRANSPORT_ERROR),
    (K.INVITE_CLIENT, S.ACCEPTED, I.RESPONSE_2XX): _t(S.ACCEPTED, A.PASS_RESPONSE),
    (K.INVITE_CLIENT, S.ACCEPTED, I.TIMER_M): _t(S.TERMINATED),
    # non-INVITE client (RFC 3261 fig. 6). Start: Trying, SEND, Arm E (unreliable), Arm F.
    (K.NON_INVITE_CLIENT, S.TRYING, I.TIMER_E): _t(S.TRYING, A.RESEND, Backoff(I.TIMER_E)),
    (K.NON_INVITE_CLIENT, S.TRYING, I.TIMER_F): _t(S.TERMINATED, A.REPORT_TIMEOUT),
    (K.NON_INVITE_CLIENT, S.TRYING, I.TRANSPORT_ERROR): _t(S.TERMINATED, A.REPORT_TRANSPORT_ERROR),
    (K.NON_INVITE_CLIENT, S.TRYING, I.RESPONSE_1XX): _t(S.PROCEEDING, A.PASS_RESPONSE),
    (K.NON_INVITE_CLIENT, S.TRYING, I.RESPONSE_2XX): _t(S.COMPLETED, Cancel(I.TIMER_E), Cancel(I.TIMER_F),
                                                        A.PASS_RESPONSE, Arm(I.TIMER_K)),
    (K.NON_INVITE_CLIENT, S.TRYING, I.RESPONSE_ERROR): _t(S.COMPLETED, Cancel(I.TIMER_E), Cancel(I.TIMER_F),
                                                          A.PASS_RESPONSE, Arm(I.TIMER_K)),
    (K.NON_INVITE_CLIENT, S.PROCEEDING, I.TIMER_E): _t(S.PROCEEDING, A.RESEND, Backoff(I.TIMER_E)),
    (K.NON_INVITE_CLIENT, S.PROCEEDING, I.TIMER_F): _t(S.TERMINATED, A.REPORT_TIMEOUT),
    (K.NON_INVITE_CLIENT, S.PROCEEDING, I.TRANSPORT_ERROR): _t(S.TERMINATED, A.REPORT_TRANSPORT_ERROR),
    (K.NON_INVITE_CLIENT, S.PROCEEDING, I.RESPONSE_1XX): _t(S.PROCEEDING, A.PASS_RESPONSE),
    (K.NON_INVITE_CLIENT, S.PROCEEDING, I.RESPONSE_2XX): _t(S.COMPLETED, Cancel(I.TIMER_E), Cancel(I.TIMER_F),
                                                            A.PASS_RESPONSE, Arm(I.TIMER_K)),
    (K.NON_INVITE_CLIENT, S.PROCEEDING, I.RESPONSE_ERROR): _t(S.COMPLETED, Cancel(I.TIMER_E),
                                                              Cancel(I.TIMER_F), A.PASS_RESPONSE, Arm(I.TIMER_K)),
    (K.NON_INVITE_CLIENT, S.COMPLETED, I.TIMER_K): _t(S.TERMINATED),
    # INVITE server (RFC 3261 fig. 7 + RFC 6026 fig. 4). Start: Proceeding (the TU sends 100 Trying).
    (K.INVITE_SERVER, S.PROCEEDING, I.REQUEST): _t(S.PROCEEDING, A.RESEND),
    (K.INVITE_SERVER, S.PROCEEDING, I.SEND_1XX): _t(S.PROCEEDING, A.SEND),
    (K.INVITE_SERVER, S.PROCEEDING, I.SEND_2XX): _t(S.ACCEPTED, A.SEND, Arm(I.TIMER_2XX), Arm(I.TIMER_L)),
    (K.INVITE_SERVER, S.PROCEEDING, I.SEND_ERROR): _t(S.COMPLETED, A.SEND, Arm(I.TIMER_G), Arm(I.TIMER_H)),
    (K.INVITE_SERVER, S.PROCEEDING, I.TRANSPORT_ERROR): _t(S.TERMINATED, A.REPORT_TRANSPORT_ERROR),
    (K.INVITE_SERVER, S.COMPLETED, I.REQUEST): _t(S.COMPLETED, A.RESEND),
    (K.INVITE_SERVER, S.COMPLETED, I.TIMER_G): _t(S.COMPLETED, A.RESEND, Backoff(I.TIMER_G)),
    (K.INVITE_SERVER, S.COMPLETED, I.TIMER_H): _t(S.TERMINATED, A.REPORT_TIMEOUT),
    (K.INVITE_SERVER, S.COMPLETED, I.ACK): _t(S.CONFIRMED, Cancel(I.TIMER_G), Cancel(I.TIMER_H), Arm(I.TIMER_I)),
    (K.INVITE_SERVER, S.COMPLETED, I.TRANSPORT_ERROR): _t(S.TERMINATED, A.REPORT_TRANSPORT_ERROR),
    (K.INVITE_SERVER, S.CONFIRMED, I.TIMER_I): _t(S.TERMINATED),
    (K.INVITE_SERVER, S.ACCEPTED, I.REQUEST): _t(S.ACCEPTED, A.RESEND),
    (K.INVITE_SERVER, S.ACCEPTED, I.SEND_2XX): _t(S.ACCEPTED, A.SEND),
    (K.INVITE_SERVER, S.ACCEPTED, I.TIMER_2XX): _t(S.ACCEPTED, A.RESEND, Backoff(I.TIMER_2XX)),
    (K.INVITE_SERVER, S.ACCEPTED, I.ACK): _t(S.ACCEPTED, Cancel(I.TIMER_2XX), A.PASS_ACK),
    (K.INVITE_SERVER, S.ACCEPTED, I.TIMER_L): _t(S.TERMINATED, A.REPORT_NO_ACK),
    # non-INVITE server (RFC 3261 fig. 8). Start: Trying.
    (K.NON_INVITE_SERVER, S.TRYING, I.SEND_1XX): _t(S.PROCEEDING, A.SEND),
    (K.NON_INVITE_SERVER, S.TRYING, I.SEND_2XX): _t(S.COMPLETED, A.SEND, Arm(I.TIMER_J)),
    (K.NON_INVITE_SERVER, S.TRYING, I.SEND_ERROR): _t(S.COMPLETED, A.SEND, Arm(I.TIMER_J)),
    (K.NON_INVITE_SERVER, S.PROCEEDING, I.REQUEST): _t(S.PROCEEDING, A.RESEND),
    (K.NON_INVITE_SERVER, S.PROCEEDING, I.SEND_1XX): _t(S.PROCEEDING, A.SEND),
    (K.NON_INVITE_SERVER, S.PROCEEDING, I.SEND_2XX): _t(S.COMPLETED, A.SEND, Arm(I.TIMER_J)),
    (K.NON_INVITE_SERVER, S.PROCEEDING, I.SEND_ERROR): _t(S.COMPLETED, A.SEND, Arm(I.TIMER_J)),
    (K.NON_INVITE_SERVER, S.PROCEEDING, I.TRANSPORT_ERROR): _t(S.TERMINATED, A.REPORT_TRANSPORT_ERROR),
    (K.NON_INVITE_SERVER, S.COMPLETED, I.REQUEST): _t(S.COMPLETED, A.RESEND),
    (K.NON_INVITE_SERVER, S.COMPLETED, I.TIMER_J): _t(S.TERMINATED),
    (K.NON_INVITE_SERVER, S.COMPLETED, I.TRANSPORT_ERROR): _t(S.TERMINATED, A.REPORT_TRANSPORT_ERROR),
}
del K, S, I, A

INITIAL_STATE = {
    Kind.INVITE_CLIENT: State.CALLING,
    Kind.NON_INVITE_CLIENT: State.TRYING,
    Kind.INVITE_SERVER: State.PROCEEDING,
    Kind.NON_INVITE_SERVER: State.TRYING,
}

_RETRANSMIT_TIMERS = frozenset({Input.TIMER_A, Input.TIMER_E, Input.TIMER_G})
"""Timers that only run over unreliable transports (reliable ones retransmit for us)."""


class TransactionUser(Protocol):
    """What a transaction needs from the layer above it: a way out, and someone to tell."""

    def transmit(self, data: bytes, destination: Peer, transaction: Transaction) -> None:
        """Send bytes towards `destination`."""

    def response_received(self, transaction: Transaction, response: Response) -> None:
        """A client transaction got a response the TU must see."""

    def ack_received(self, transaction: Transaction, ack: Request) -> None:
        """An INVITE server transaction in Accepted got the ACK for its 2xx."""

    def transaction_failed(self, transaction: Transaction, reason: str) -> None:
        """Timeout (B/F/H), unacknowledged 2xx (L) or transport error."""


def response_input(status_code: int, sending: bool) -> Input:
    """Classify a response status into the matching table input."""
    if status_code < 200:
        return Input.SEND_1XX if sending else Input.RESPONSE_1XX
    if status_code < 300:
        return Input.SEND_2XX if sending else Input.RESPONSE_2XX
    return Input.SEND_ERROR if sending else Input.RESPONSE_ERROR


class Transaction:
    """One transaction: a state, its timers, and the last message it sent (for retransmission)."""

    def __init__(self, kind: Kind, key: tuple[str, ...], request: Request, peer: Peer, *, config: TimerConfig,
                 user: TransactionUser) -> None:
        self.kind = kind
        self.key = key
        self.request = request
        self.peer = peer
        self.reliable = peer.reliable
        self.config = config
        self.user = user
        self.state = INITIAL_STATE[kind]
        self.last_response: Response | None = None
        self.acknowledged = False
        self._last_sent: bytes | None = None
        self._pending: bytes | None = None
        self._ack: bytes | None = None
        self._deadlines: dict[Input, float] = {}
        self._intervals: dict[Input, float] = {}

    @property
    def is_client(self) -> bool:
        """Whether this is a client transaction."""
        return self.kind in (Kind.INVITE_CLIENT, Kind.NON_INVITE_CLIENT)

    @property
    def terminated(self) -> bool:
        """Whether the transaction has ended and can be forgotten."""
        return self.state is State.TERMINATED

    # -- entry points -----------------------------------------------------------------------------

    def start(self, now: float) -> None:
        """Client transactions: send the request and arm the initial timers."""
        if not self.is_client:
            raise LocalProtocolError("only client transactions are started")
        self._pending = self.request.to_bytes()
        self._apply(Action.SEND, now)
        first, timeout = ((Input.TIMER_A, Input.TIMER_B) if self.kind is Kind.INVITE_CLIENT
                          else (Input.TIMER_E, Input.TIMER_F))
        self._arm(first, now)
        self._arm(timeout, now)

    def receive_request(self, request: Request, now: float) -> None:
        """Server transactions: a retransmission of our request, or the ACK that belongs to it."""
        self._fire(Input.ACK if request.method == "ACK" else Input.REQUEST, now, request)

    def receive_response(self, response: Response, now: float) -> None:
        """Client transactions: a response that matched this transaction."""
        self.last_response = response
        self._fire(response_input(response.status_code, sending=False), now, response)

    def send_response(self, response: Response, now: float) -> None:
        """Server transactions: the TU's response, transmitted now and retransmitted as the RFC says."""
        self._pending = response.to_bytes()
        self.last_response = response
        self._fire(response_input(response.status_code, sending=True), now, response)

    def transport_error(self, now: float) -> None:
        """The transport could not deliver a message of this transaction."""
        self._fire(Input.TRANSPORT_ERROR, now)

    def get_timer(self) -> float | None:
        """The earliest deadline at which `handle_timer` has work, or None."""
        return min(self._deadlines.values(), default=None)

    def handle_timer(self, now: float) -> None:
        """Fire every timer that is due, earliest first."""
        while self._deadlines and not self.terminated:
            timer, deadline = min(self._deadlines.items(), key=lambda item: item[1])
            if deadline > now:
                return
            del self._deadlines[timer]
            self._fire(timer, now)

    # -- machinery --------------------------------------------------------------------------------

    def _fire(self, event: Input, now: float, message: Request | Response | None = None) -> None:
        transition = TABLE.get((self.kind, self.state, event))
        if transition is None:
            if event in LOCAL_INPUTS:
                raise LocalProtocolError(f"{self.kind.value} cannot {event.value} in state {self.state.value}")
            return
        self.state = transition.next_state
        for step in transition.steps:
            if isinstance(step, Arm):
                self._arm(step.timer, now)
            elif isinstance(step, Backoff):
                self._backoff(step.timer, now)
            elif isinstance(step, Cancel):
                self._deadlines.pop(step.timer, None)
            else:
                self._apply(step, now, message)
        if self.state is State.TERMINATED:
            self._deadlines.clear()

    def _apply(self, action: Action, now: float, message: Request | Response | None = None) -> None:
        if action is Action.SEND:
            assert self._pending is not None
            self._last_sent, self._pending = self._pending, None
            self.user.transmit(self._last_sent, self.peer, self)
        elif action is Action.RESEND:
            if self._last_sent is not None:
                self.user.transmit(self._last_sent, self.peer, self)
        elif action is Action.SEND_ACK:
            if self._ack is None:
                assert isinstance(message, Response)
                self._ack = build_non_2xx_ack(self.request, message).to_bytes()
            self.user.transmit(self._ack, self.peer, self)
        elif action is Action.PASS_RESPONSE:
            assert isinstance(message, Response)
            self.user.response_received(self, message)
        elif action is Action.PASS_ACK:
            assert isinstance(message, Request)
            self.acknowledged = True
            self.user.ack_received(self, message)
        elif action is Action.REPORT_TIMEOUT:
            self.user.transaction_failed(self, "timeout")
        elif action is Action.REPORT_NO_ACK:
            if not self.acknowledged:
                self.user.transaction_failed(self, "no ACK for 2xx")
        elif action is Action.REPORT_TRANSPORT_ERROR:
            self.user.transaction_failed(self, "transport error")

    def _initial_interval(self, timer: Input) -> float:
        config = self.config
        unreliable = not self.reliable
        return {
            Input.TIMER_A: config.t1,
            Input.TIMER_B: config.transaction_timeout,
            Input.TIMER_D: config.wait_for_response_retransmits(self.reliable),
            Input.TIMER_E: config.t1,
            Input.TIMER_F: config.transaction_timeout,
            Input.TIMER_G: config.t1,
            Input.TIMER_H: config.transaction_timeout,
            Input.TIMER_I: config.t4 if unreliable else 0.0,
            Input.TIMER_J: config.transaction_timeout if unreliable else 0.0,
            Input.TIMER_K: config.t4 if unreliable else 0.0,
            Input.TIMER_L: config.transaction_timeout,
            Input.TIMER_M: config.transaction_timeout,
            Input.TIMER_2XX: config.t1,
        }[timer]

    def _arm(self, timer: Input, now: float) -> None:
        if self.reliable and timer in _RETRANSMIT_TIMERS:
            return
        interval = self._initial_interval(timer)
        self._intervals[timer] = interval
        self._deadlines[timer] = now + interval

    def _backoff(self, timer: Input, now: float) -> None:
        interval = self._intervals.get(timer, self._initial_interval(timer)) * 2
        if timer is Input.TIMER_E and self.state is State.PROCEEDING:
            interval = self.config.t2
        elif timer is not Input.TIMER_A:
            interval = min(interval, self.config.t2)
        self._intervals[timer] = interval
        self._deadlines[timer] = now + interval

    def __repr__(self) -> str:
        return f"<{self.kind.value} {self.request.method} {self.state.value} {self.key}>"


def build_non_2xx_ack(invite: Request, response: Response) -> Request:
    """The ACK an INVITE client transaction sends for a 300-699 (RFC 3261 §17.1.1.3)."""
    headers = Headers()
    headers.add("Via", invite.headers.get_all("Via")[0])
    for route in invite.headers.get_all("Route"):
        headers.add("Route", route)
    headers.add("Max-Forwards", "70")
    headers.add("From", invite.headers.get("From") or "")
    headers.add("To", response.headers.get("To") or "")
    headers.add("Call-ID", invite.call_id)
    headers.add("CSeq", f"{invite.cseq.number} ACK")
    return Request("ACK", invite.uri, headers)
