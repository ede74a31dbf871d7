"""The four RFC 3261 transaction machines in fake time: every timer, retransmission and absorption."""

from __future__ import annotations

import itertools

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from sip.errors import LocalProtocolError
from sip.message import Request, Response, make_response, parse_message
from sip.timers import TimerConfig
from sip.transactions import TABLE, Kind, State, Transaction
from sip.transport import TCP, UDP, Peer
from tests.helpers.sip_messages import CallParty

T1, T2, T4 = 0.5, 4.0, 5.0
PEER_ADDRESS = ("192.0.2.10", 5070)


class Recorder:
    """A TransactionUser that writes down everything it is told."""

    def __init__(self) -> None:
        self.sent: list[tuple[float, bytes]] = []
        self.responses: list[int] = []
        self.acks = 0
        self.failures: list[str] = []
        self.now = 0.0

    def transmit(self, data: bytes, destination: Peer, transaction: Transaction) -> None:
        assert destination.address == PEER_ADDRESS
        self.sent.append((self.now, data))

    def response_received(self, transaction: Transaction, response: Response) -> None:
        self.responses.append(response.status_code)

    def ack_received(self, transaction: Transaction, ack: Request) -> None:
        self.acks += 1

    def transaction_failed(self, transaction: Transaction, reason: str) -> None:
        self.failures.append(reason)

    def sent_times(self) -> list[float]:
        return [round(t, 6) for t, _ in self.sent]


def request(method: str) -> Request:
    party = CallParty("192.0.2.10", 5070, "sip:direct.0123456789ab@192.0.2.1")
    message = parse_message(party.request(method, body=b"v=0\r\n" if method == "INVITE" else b""))
    assert isinstance(message, Request)
    return message


def run_until(transaction: Transaction, user: Recorder, end: float) -> None:
    """Advance fake time through every deadline up to `end`."""
    while True:
        deadline = transaction.get_timer()
        if deadline is None or deadline > end:
            break
        user.now = deadline
        transaction.handle_timer(deadline)
    user.now = end


def server(kind: Kind, reliable: bool = False) -> tuple[Transaction, Recorder]:
    user = Recorder()
    method = "INVITE" if kind is Kind.INVITE_SERVER else "OPTIONS"
    tx = Transaction(kind, ("key",), request(method), peer(reliable), config=TimerConfig(T1, T2, T4), user=user)
    return tx, user


def peer(reliable: bool) -> Peer:
    return Peer(TCP if reliable else UDP, PEER_ADDRESS)


def client(kind: Kind, reliable: bool = False) -> tuple[Transaction, Recorder]:
    user = Recorder()
    method = "INVITE" if kind is Kind.INVITE_CLIENT else "BYE"
    tx = Transaction(kind, ("key",), request(method), peer(reliable), config=TimerConfig(T1, T2, T4), user=user)
    tx.start(0.0)
    return tx, user


def respond(tx: Transaction, status: int, now: float) -> None:
    tx.send_response(make_response(tx.request, status, to_tag="abc"), now)


def response(tx: Transaction, status: int) -> Response:
    return make_response(tx.request, status, to_tag="xyz")


# -- INVITE server ---------------------------------------------------------------------------------

def test_invite_server_resends_provisional_for_retransmitted_invite() -> None:
    tx, user = server(Kind.INVITE_SERVER)
    respond(tx, 100, 0.0)
    tx.receive_request(tx.request, 0.5)
    assert len(user.sent) == 2 and user.sent[0][1] == user.sent[1][1]
    assert tx.state is State.PROCEEDING


def test_invite_server_retransmits_2xx_with_backoff_until_ack() -> None:
    tx, user = server(Kind.INVITE_SERVER)
    respond(tx, 200, 0.0)
    assert tx.state is State.ACCEPTED
    run_until(tx, user, 12.0)
    # T1, 2T1, 4T1, then capped at T2: sent at 0, .5, 1.5, 3.5, 7.5, 11.5
    assert user.sent_times() == [0.0, 0.5, 1.5, 3.5, 7.5, 11.5]
    tx.receive_request(request("ACK"), 12.0)
    assert user.acks == 1
    run_until(tx, user, 40.0)
    assert len(user.sent) == 6, "no 2xx retransmission after the ACK"
    assert tx.state is State.TERMINATED and user.failures == []


def test_invite_server_reports_missing_ack_at_timer_l() -> None:
    tx, user = server(Kind.INVITE_SERVER)
    respond(tx, 200, 0.0)
    run_until(tx, user, 64 * T1 - 0.001)
    assert tx.state is State.ACCEPTED and user.failures == []
    run_until(tx, user, 64 * T1)
    assert tx.state is State.TERMINATED
    assert user.failures == ["no ACK for 2xx"]


def test_invite_server_answers_retransmitted_invite_with_the_2xx_and_passes_only_the_first_ack() -> None:
    tx, user = server(Kind.INVITE_SERVER)
    respond(tx, 200, 0.0)
    tx.receive_request(tx.request, 0.1)
    assert len(user.sent) == 2 and user.sent[1][1] == user.sent[0][1]
    tx.receive_request(request("ACK"), 0.2)
    tx.receive_request(request("ACK"), 0.3)
    assert user.acks == 2 and tx.acknowledged  # RFC 6026: every ACK in Accepted goes to the TU


def test_invite_server_error_response_retransmits_on_timer_g_until_ack() -> None:
    tx, user = server(Kind.INVITE_SERVER)
    respond(tx, 486, 0.0)
    assert tx.state is State.COMPLETED
    run_until(tx, user, 8.0)
    assert user.sent_times() == [0.0, 0.5, 1.5, 3.5, 7.5]
    tx.receive_request(tx.request, 8.0)  # retransmitted INVITE gets the response again
    assert len(user.sent) == 6
    tx.receive_request(request("ACK"), 8.1)
    assert tx.state is State.CONFIRMED
    assert user.acks == 0, "the ACK for a non-2xx stays in the transaction"
    run_until(tx, user, 8.1 + T4 - 0.01)
    assert tx.state is State.CONFIRMED and len(user.sent) == 6
    run_until(tx, user, 8.1 + T4)
    assert tx.state is State.TERMINATED and user.failures == []


def test_invite_server_timer_h_gives_up_without_ack() -> None:
    tx, user = server(Kind.INVITE_SERVER)
    respond(tx, 404, 0.0)
    run_until(tx, user, 64 * T1)
    assert tx.state is State.TERMINATED
    assert user.failures == ["timeout"]
    retransmissions = len(user.sent)
    assert retransmissions == 1 + 3 + 7  # .5 1.5 3.5, then every 4 s up to 31.5
    run_until(tx, user, 100.0)
    assert len(user.sent) == retransmissions


def test_invite_server_over_reliable_transport_does_not_retransmit_errors() -> None:
    tx, user = server(Kind.INVITE_SERVER, reliable=True)
    respond(tx, 486, 0.0)
    run_until(tx, user, 31.0)
    assert len(user.sent) == 1
    tx.receive_request(request("ACK"), 31.0)
    run_until(tx, user, 31.0)
    assert tx.state is State.TERMINATED, "Timer I is zero over a reliable transport"


def test_invite_server_refuses_a_second_final_response() -> None:
    tx, _user = server(Kind.INVITE_SERVER)
    respond(tx, 486, 0.0)
    with pytest.raises(LocalProtocolError):
        respond(tx, 200, 0.1)


# -- non-INVITE server -----------------------------------------------------------------------------

def test_non_invite_server_absorbs_in_trying_and_resends_final_in_completed() -> None:
    tx, user = server(Kind.NON_INVITE_SERVER)
    tx.receive_request(tx.request, 0.1)
    assert user.sent == []
    respond(tx, 200, 0.2)
    tx.receive_request(tx.request, 0.3)
    assert len(user.sent) == 2 and user.sent[0][1] == user.sent[1][1]
    run_until(tx, user, 0.2 + 64 * T1 - 0.01)
    assert tx.state is State.COMPLETED
    run_until(tx, user, 0.2 + 64 * T1)
    assert tx.state is State.TERMINATED


def test_non_invite_server_provisional_then_final() -> None:
    tx, user = server(Kind.NON_INVITE_SERVER)
    respond(tx, 100, 0.0)
    assert tx.state is State.PROCEEDING
    tx.receive_request(tx.request, 0.1)
    assert len(user.sent) == 2
    respond(tx, 404, 0.2)
    assert tx.state is State.COMPLETED


def test_non_invite_server_timer_j_is_zero_when_reliable() -> None:
    tx, user = server(Kind.NON_INVITE_SERVER, reliable=True)
    respond(tx, 200, 1.0)
    run_until(tx, user, 1.0)
    assert tx.state is State.TERMINATED


# -- non-INVITE client -----------------------------------------------------------------------------

def test_non_invite_client_timer_e_backs_off_to_t2_and_timer_f_times_out() -> None:
    tx, user = client(Kind.NON_INVITE_CLIENT)
    run_until(tx, user, 64 * T1)
    times = user.sent_times()
    assert times[:6] == [0.0, 0.5, 1.5, 3.5, 7.5, 11.5]
    assert all(round(b - a, 6) == T2 for a, b in itertools.pairwise(times[4:]))
    assert tx.state is State.TERMINATED and user.failures == ["timeout"]


def test_non_invite_client_proceeding_retransmits_every_t2() -> None:
    tx, user = client(Kind.NON_INVITE_CLIENT)
    user.now = 0.2
    tx.receive_response(response(tx, 100), 0.2)
    assert tx.state is State.PROCEEDING and user.responses == [100]
    run_until(tx, user, 9.0)
    assert user.sent_times() == [0.0, 0.5, 4.5, 8.5]


def test_non_invite_client_final_response_passes_once_then_timer_k() -> None:
    tx, user = client(Kind.NON_INVITE_CLIENT)
    run_until(tx, user, 0.7)
    tx.receive_response(response(tx, 200), 0.7)
    tx.receive_response(response(tx, 200), 0.8)
    assert user.responses == [200]
    assert tx.state is State.COMPLETED
    run_until(tx, user, 0.7 + T4)
    assert tx.state is State.TERMINATED
    assert user.sent_times() == [0.0, 0.5], "no retransmission after the final response"


def test_non_invite_client_over_reliable_transport_sends_once() -> None:
    tx, user = client(Kind.NON_INVITE_CLIENT, reliable=True)
    run_until(tx, user, 64 * T1)
    assert len(user.sent) == 1 and user.failures == ["timeout"]


# -- INVITE client ---------------------------------------------------------------------------------

def test_invite_client_timer_a_doubles_without_cap_until_timer_b() -> None:
    tx, user = client(Kind.INVITE_CLIENT)
    run_until(tx, user, 64 * T1)
    assert user.sent_times() == [0.0, 0.5, 1.5, 3.5, 7.5, 15.5, 31.5]
    assert tx.state is State.TERMINATED and user.failures == ["timeout"]


def test_invite_client_stops_retransmitting_on_provisional() -> None:
    tx, user = client(Kind.INVITE_CLIENT)
    tx.receive_response(response(tx, 180), 0.1)
    run_until(tx, user, 100.0)
    assert len(user.sent) == 1 and tx.state is State.PROCEEDING and user.failures == []


def test_invite_client_acks_error_response_and_absorbs_its_retransmission() -> None:
    tx, user = client(Kind.INVITE_CLIENT)
    tx.receive_response(response(tx, 486), 0.1)
    assert user.responses == [486] and tx.state is State.COMPLETED
    ack = parse_message(user.sent[-1][1])
    assert isinstance(ack, Request) and ack.method == "ACK"
    assert ack.cseq.number == tx.request.cseq.number and ack.cseq.method == "ACK"
    assert ack.top_via.branch == tx.request.top_via.branch
    assert ack.to_address.tag == "xyz"
    tx.receive_response(response(tx, 486), 0.2)
    assert user.responses == [486] and user.sent[-1][1] == user.sent[-2][1]
    run_until(tx, user, 0.1 + 32.0)
    assert tx.state is State.TERMINATED


def test_invite_client_accepted_passes_2xx_retransmissions_until_timer_m() -> None:
    tx, user = client(Kind.INVITE_CLIENT)
    tx.receive_response(response(tx, 200), 0.1)
    tx.receive_response(response(tx, 200), 0.6)
    assert user.responses == [200, 200] and tx.state is State.ACCEPTED
    run_until(tx, user, 0.1 + 64 * T1)
    assert tx.state is State.TERMINATED and user.failures == []


# -- the table as a whole --------------------------------------------------------------------------

REMOTE_STATUSES = [100, 180, 200, 486]
ACTIONS = st.lists(
    st.one_of(
        st.tuples(st.just("request"), st.sampled_from(["same", "ACK"])),
        st.tuples(st.just("response"), st.sampled_from(REMOTE_STATUSES)),
        st.tuples(st.just("send"), st.sampled_from([100, 180, 200, 486])),
        st.tuples(st.just("wait"), st.floats(0.0, 40.0)),
    ),
    max_size=25,
)


@settings(max_examples=400, deadline=None)
@given(kind=st.sampled_from(list(Kind)), reliable=st.booleans(), actions=ACTIONS)
def test_any_input_in_any_state_is_a_transition_or_a_local_error(kind: Kind, reliable: bool,
                                                                 actions: list[tuple[str, object]]) -> None:
    """h2-style: every input either follows the table, is absorbed, or (ours) raises LocalProtocolError."""
    make = client if kind in (Kind.INVITE_CLIENT, Kind.NON_INVITE_CLIENT) else server
    tx, user = make(kind, reliable)
    allowed = {state for (k, state, _) in TABLE if k is kind} | {next_state.next_state for (k, _, _), next_state
                                                                in TABLE.items() if k is kind}
    now = 0.0
    for action, value in actions:
        if action == "request":
            tx.receive_request(tx.request if value == "same" else request("ACK"), now)
        elif action == "response":
            tx.receive_response(response(tx, int(value)), now)  # type: ignore[call-overload]
        elif action == "send":
            try:
                respond(tx, int(value), now)  # type: ignore[call-overload]
            except LocalProtocolError:
                assert tx.is_client or tx.state is not State.TRYING
        else:
            now += float(value)  # type: ignore[arg-type]
            run_until(tx, user, now)
        assert tx.state in allowed | {State.TERMINATED}
        if tx.terminated:
            assert tx.get_timer() is None
