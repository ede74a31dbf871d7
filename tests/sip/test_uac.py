"""Two user agents joined by an in-memory link, in fake time: calls placed, answered, cancelled,
challenged and hung up, over UDP and over a stream split at every byte boundary."""

from __future__ import annotations

from collections.abc import Callable

import pytest

from sip.dialog import EndReason
from sip.digest import Credentials, authorization, parse_challenge, parse_credentials_header
from sip.events import (
    AckReceived,
    CallAnswered,
    CallFailed,
    CallProgress,
    DialogEnded,
    Event,
    InviteCancelled,
    InviteReceived,
)
from sip.framing import FramedMessage, StreamFramer
from sip.message import Request, Response, parse_message
from sip.outgoing import OutgoingCall
from sip.timers import TimerConfig
from sip.transport import TCP, UDP, Peer
from sip.uri import SipUri, parse_uri
from sip.useragent import UserAgent

CALLER_HOST, CALLEE_HOST = "192.0.2.1", "192.0.2.2"
OFFER = b"v=0\r\no=a 1 1 IN IP4 192.0.2.1\r\ns=-\r\nc=IN IP4 192.0.2.1\r\nt=0 0\r\nm=audio 4000 RTP/AVP 0\r\n"
ANSWER = b"v=0\r\no=b 2 1 IN IP4 192.0.2.2\r\ns=-\r\nc=IN IP4 192.0.2.2\r\nt=0 0\r\nm=audio 5000 RTP/AVP 0\r\n"


class Link:
    """A caller UA and a callee UA; `run()` moves messages both ways until the network is quiet.

    Over a stream transport each message is cut in two at `split` bytes before it is fed to the
    receiving side's framer, so every framing boundary can be exercised.
    """

    def __init__(self, transport: str = UDP, split: int | None = None) -> None:
        self.transport = transport
        self.split = split
        self.caller = UserAgent(host=CALLER_HOST, port=5060, tcp_port=5060, timers=TimerConfig())
        self.callee = UserAgent(host=CALLEE_HOST, port=5060, tcp_port=5060, timers=TimerConfig())
        self.now = 0.0
        self.caller_events: list[Event] = []
        self.callee_events: list[Event] = []
        self.on_invite: Callable[[InviteReceived], None] = self.answer_ok
        self.drop: Callable[[bytes], bool] = lambda data: False
        self.wire: list[tuple[str, bytes]] = []
        self._framers = {"caller": StreamFramer(), "callee": StreamFramer()}

    def peer_of(self, host: str) -> Peer:
        return Peer(self.transport, (host, 5060))

    def deliver(self, receiver: str, data: bytes) -> None:
        ua = self.callee if receiver == "callee" else self.caller
        source = self.peer_of(CALLER_HOST if receiver == "callee" else CALLEE_HOST)
        if self.transport == UDP:
            ua.receive(data, source, self.now)
            return
        framer = self._framers[receiver]
        cut = len(data) if self.split is None else min(self.split, len(data))
        for chunk in (data[:cut], data[cut:]):
            for item in framer.feed(chunk):
                assert isinstance(item, FramedMessage), item
                ua.receive(item.data, source, self.now)

    def run(self) -> None:
        for _ in range(50):
            moved = False
            for name, ua, other in (("caller", self.caller, "callee"), ("callee", self.callee, "caller")):
                for data, peer in ua.messages_to_send():
                    assert peer.transport == self.transport
                    self.wire.append((name, data))
                    moved = True
                    if not self.drop(data):
                        self.deliver(other, data)
            for event in self.callee.events():
                self.callee_events.append(event)
                if isinstance(event, InviteReceived):
                    self.on_invite(event)
                    moved = True
            for event in self.caller.events():
                self.caller_events.append(event)
            if not moved:
                return
        raise AssertionError("the link never went quiet")

    def advance(self, until: float) -> None:
        while True:
            deadlines = [d for d in (self.caller.get_timer(), self.callee.get_timer()) if d is not None and d <= until]
            if not deadlines:
                break
            self.now = min(deadlines)
            self.caller.handle_timer(self.now)
            self.callee.handle_timer(self.now)
            self.run()
        self.now = until

    def answer_ok(self, event: InviteReceived) -> None:
        self.callee.answer(event.invite_id, 180, self.now)
        self.callee.answer(event.invite_id, 200, self.now, body=ANSWER)

    def call(self, target: str = f"sip:bob@{CALLEE_HOST}", **options: object) -> OutgoingCall:
        uri = parse_uri(target)
        assert isinstance(uri, SipUri)
        call = self.caller.invite(uri, self.peer_of(CALLEE_HOST), self.now, offer=OFFER, **options)  # type: ignore[arg-type]
        self.run()
        return call

    def sent_by(self, side: str, method_or_status: str | int) -> list[Request | Response]:
        found = []
        for name, data in self.wire:
            if name != side:
                continue
            message = parse_message(data)
            if isinstance(message, Request) and message.method == method_or_status:
                found.append(message)
            if isinstance(message, Response) and message.status_code == method_or_status:
                found.append(message)
        return found


def kinds(events: list[Event]) -> list[str]:
    return [type(event).__name__ for event in events]


def test_call_is_answered_acknowledged_and_hung_up_over_udp() -> None:
    link = Link()
    call = link.call()
    assert kinds(link.caller_events) == ["CallProgress", "CallAnswered"]
    answered = link.caller_events[1]
    assert isinstance(answered, CallAnswered) and answered.call is call and answered.response.body == ANSWER
    assert [e.initial for e in link.callee_events if isinstance(e, AckReceived)] == [True]
    ack = link.sent_by("caller", "ACK")[0]
    invite = link.sent_by("caller", "INVITE")[0]
    assert isinstance(ack, Request) and isinstance(invite, Request)
    assert ack.cseq.number == invite.cseq.number and ack.top_via.branch != invite.top_via.branch
    assert str(ack.uri) == f"sip:bob@{CALLEE_HOST}:5060", "the ACK goes to the callee's Contact"
    link.caller.hangup(answered.dialog, link.now)
    link.run()
    caller_end = [e for e in link.caller_events if isinstance(e, DialogEnded)]
    callee_end = [e for e in link.callee_events if isinstance(e, DialogEnded)]
    assert caller_end[0].reason is EndReason.LOCAL_BYE and callee_end[0].reason is EndReason.REMOTE_BYE
    assert link.caller.dialogs == [] and link.callee.dialogs == []


def test_the_same_call_over_a_stream_split_at_every_byte_boundary() -> None:
    longest = 0
    for split in range(1, 2000):
        link = Link(TCP, split)
        link.call()
        answered = next(e for e in link.caller_events if isinstance(e, CallAnswered))
        link.caller.hangup(answered.dialog, link.now)
        link.run()
        assert kinds(link.caller_events) == ["CallProgress", "CallAnswered", "DialogEnded"], split
        assert kinds(link.callee_events) == ["InviteReceived", "AckReceived", "DialogEnded"], split
        longest = max(len(data) for _, data in link.wire)
        if split > longest:
            break
    assert split > longest, "every cut point of the longest message was tried"


def test_a_stream_fed_one_byte_at_a_time() -> None:
    link = Link(TCP, split=None)
    original = link.deliver

    def bytewise(receiver: str, data: bytes) -> None:
        for index in range(len(data)):
            link.split = 1
            original(receiver, data[index : index + 1])

    link.deliver = bytewise  # type: ignore[method-assign]
    link.call()
    assert kinds(link.caller_events) == ["CallProgress", "CallAnswered"]


def test_retransmitted_2xx_gets_the_same_ack_again() -> None:
    link = Link()
    dropped = {"acks": 0}

    def drop_first_ack(data: bytes) -> bool:
        if data.startswith(b"ACK") and dropped["acks"] == 0:
            dropped["acks"] += 1
            return True
        return False

    link.drop = drop_first_ack
    link.call()
    link.advance(1.0)  # the callee retransmits its 200 at T1; the caller answers it with the ACK again
    acks = link.sent_by("caller", "ACK")
    assert len(acks) == 2 and acks[0].top_via.branch == acks[1].top_via.branch
    assert [e.initial for e in link.callee_events if isinstance(e, AckReceived)] == [True]
    assert len(link.sent_by("callee", 200)) == 2


def test_cancel_waits_for_a_provisional_then_the_invite_ends_487() -> None:
    link = Link()
    link.on_invite = lambda event: None  # the callee neither rings nor answers yet
    link.drop = lambda data: data.startswith(b"SIP/2.0 100 ")  # and its 100 Trying is lost
    call = link.call()
    link.caller.cancel(call, link.now)
    link.run()
    assert link.sent_by("caller", "CANCEL") == [], "no CANCEL before a provisional response (§9.1)"
    invite = next(e for e in link.callee_events if isinstance(e, InviteReceived))
    link.callee.answer(invite.invite_id, 180, link.now)
    link.run()
    assert len(link.sent_by("caller", "CANCEL")) == 1
    assert any(isinstance(e, InviteCancelled) for e in link.callee_events)
    failed = [e for e in link.caller_events if isinstance(e, CallFailed)]
    assert len(failed) == 1 and failed[0].status_code == 487
    assert link.sent_by("callee", 487) and link.sent_by("caller", "ACK"), "the 487 is acknowledged"


def test_answer_racing_a_cancel_is_hung_up() -> None:
    link = Link()
    link.on_invite = lambda event: None
    call = link.call()
    invite = next(e for e in link.callee_events if isinstance(e, InviteReceived))
    link.callee.answer(invite.invite_id, 180, link.now)
    link.run()
    link.caller.cancel(call, link.now)
    link.callee.answer(invite.invite_id, 200, link.now, body=ANSWER)  # the 200 crosses the CANCEL
    link.run()
    assert any(isinstance(e, CallAnswered) for e in link.caller_events)
    assert len(link.sent_by("caller", "BYE")) == 1
    assert [e.reason for e in link.callee_events if isinstance(e, DialogEnded)] == [EndReason.REMOTE_BYE]


@pytest.mark.parametrize(("status", "header", "answer_header"), [
    (401, "WWW-Authenticate", "Authorization"), (407, "Proxy-Authenticate", "Proxy-Authorization")])
def test_digest_challenge_is_answered_with_configured_credentials(status: int, header: str,
                                                                  answer_header: str) -> None:
    link = Link()
    challenge = 'Digest realm="example.test", nonce="n0nce", qop="auth", opaque="op"'

    def challenge_then_check(event: InviteReceived) -> None:
        value = event.request.headers.get(answer_header)
        if value is None:
            link.callee.answer(event.invite_id, status, link.now, headers=[(header, challenge)])
            return
        params = parse_credentials_header(value)
        expected = authorization(parse_challenge(challenge), Credentials("alice", "s3cret"), "INVITE", params["uri"],
                                 cnonce=params["cnonce"], nc=int(params["nc"], 16), body=OFFER)
        ok = parse_credentials_header(expected)["response"] == params["response"]
        link.callee.answer(event.invite_id, 200 if ok else 403, link.now, body=ANSWER if ok else b"")

    link.on_invite = challenge_then_check
    link.call(credentials=(Credentials("alice", "s3cret", "example.test"),))
    assert kinds(link.caller_events) == ["CallAnswered"]
    invites = link.sent_by("caller", "INVITE")
    assert [i.cseq.number for i in invites] == [invites[0].cseq.number, invites[0].cseq.number + 1]
    assert invites[0].call_id == invites[1].call_id and invites[0].top_via.branch != invites[1].top_via.branch
    assert link.sent_by("caller", "ACK"), "the challenge itself was acknowledged"


def always_challenge(link: Link) -> Callable[[InviteReceived], None]:
    def answer(event: InviteReceived) -> None:
        link.callee.answer(event.invite_id, 401, link.now,
                           headers=[("WWW-Authenticate", 'Digest realm="example.test", nonce="x"')])

    return answer


def test_wrong_or_missing_credentials_fail_the_call_after_one_try() -> None:
    link = Link()
    link.on_invite = always_challenge(link)
    link.call(credentials=(Credentials("alice", "wrong", "example.test"),))
    failed = [e for e in link.caller_events if isinstance(e, CallFailed)]
    assert len(failed) == 1 and failed[0].status_code == 401
    assert len(link.sent_by("caller", "INVITE")) == 2
    other = Link()
    other.on_invite = always_challenge(other)
    other.call(credentials=(Credentials("alice", "s3cret", "another.realm"),))
    assert [e.status_code for e in other.caller_events if isinstance(e, CallFailed)] == [401]
    assert len(other.sent_by("caller", "INVITE")) == 1


def test_unanswered_invite_fails_408_after_timer_b() -> None:
    link = Link()
    link.drop = lambda data: True
    link.call()
    link.advance(31.9)
    assert not link.caller_events
    link.advance(32.0)
    assert [e.status_code for e in link.caller_events if isinstance(e, CallFailed)] == [408]


def test_unreachable_peer_fails_503() -> None:
    link = Link(TCP)
    link.drop = lambda data: True
    call = link.call()
    link.caller.transport_failed(call.destination, link.now)
    assert [e.status_code for e in link.caller.events() if isinstance(e, CallFailed)] == [503]


def test_a_second_2xx_from_another_fork_is_acknowledged_and_hung_up() -> None:
    link = Link()
    link.call()
    invite = link.sent_by("caller", "INVITE")[0]
    assert isinstance(invite, Request)
    from tests.helpers.sip_messages import response_to

    fork = response_to(invite.to_bytes(), 200, "OK", to_tag="forked").replace(
        b"Content-Length: 0", b"Contact: <sip:carol@192.0.2.3:5060>\r\nContent-Length: 0")
    link.caller.receive(fork, link.peer_of(CALLEE_HOST), link.now)
    sent = [parse_message(data) for data, _ in link.caller.messages_to_send()]
    methods = [m.method for m in sent if isinstance(m, Request)]
    assert methods == ["ACK", "BYE"]
    assert all(m.to_address.tag == "forked" for m in sent)


def test_progress_events_carry_the_provisional_response() -> None:
    link = Link()

    def ring_twice(event: InviteReceived) -> None:
        link.callee.answer(event.invite_id, 180, link.now)
        link.callee.answer(event.invite_id, 183, link.now)

    link.on_invite = ring_twice
    link.call()
    assert [e.response.status_code for e in link.caller_events if isinstance(e, CallProgress)] == [180, 183]
