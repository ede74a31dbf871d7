"""The user agent core over the transaction layer, in memory and in fake time: no sockets, no sleeps."""

from __future__ import annotations

from sip.dialog import EndReason
from sip.events import AckReceived, DialogEnded, InviteCancelled, InviteReceived
from sip.message import Request, Response, parse_message
from sip.transport import UDP, Peer
from tests.helpers.sip_messages import pcmu_offer, response_to
from tests.helpers.ua_harness import CALLER, Harness


def test_invite_gets_100_then_the_applications_200_with_contact_and_a_to_tag() -> None:
    h = Harness()
    h.deliver(h.party.invite(pcmu_offer("192.0.2.10", 4000)))
    assert h.responses() == [100]
    invite = h.take_invite()
    assert invite.dialog is None and invite.source == Peer(UDP, CALLER)
    h.ua.answer(invite.invite_id, 200, h.now, body=b"v=0\r\n")
    h._collect()
    final = h.messages()[-1]
    assert isinstance(final, Response) and final.status_code == 200
    assert final.to_address.tag
    assert str(final.contacts[0].uri) == "sip:direct.0123456789ab@192.0.2.1:5060"
    assert final.headers.get("Server") == "confbridge-test"
    via = final.top_via
    assert via.params.get("rport") == "5070" and via.params.get("received") == "192.0.2.10"
    assert all(destination == CALLER for _, _, destination in h.sent)


def test_retransmitted_invite_is_absorbed_into_the_same_transaction() -> None:
    h = Harness()
    branch = h.party.new_branch()
    offer = pcmu_offer("192.0.2.10", 4000)
    h.deliver(h.party.invite(offer, branch=branch))
    h.deliver(h.party.invite(offer, branch=branch))
    assert len([e for e in h.events if isinstance(e, InviteReceived)]) == 1
    assert h.responses() == [100, 100]


def test_ack_confirms_the_dialog_and_stops_the_2xx_retransmissions() -> None:
    h = Harness()
    h.deliver(h.party.invite(pcmu_offer("192.0.2.10", 4000)))
    invite = h.take_invite()
    h.ua.answer(invite.invite_id, 200, h.now, body=b"v=0\r\n")
    h._collect()
    h.advance(2.0)
    assert h.responses() == [100, 200, 200, 200]  # at 0, 0.5 and 1.5
    final = h.messages()[-1]
    assert isinstance(final, Response)
    h.party.to_tag = final.to_address.tag
    h.deliver(h.party.ack())
    assert [e.initial for e in h.events if isinstance(e, AckReceived)] == [True]
    h.advance(40.0)
    assert h.responses() == [100, 200, 200, 200]


def test_missing_ack_ends_the_call_with_bye_after_timer_l() -> None:
    h = Harness()
    h.deliver(h.party.invite(pcmu_offer("192.0.2.10", 4000)))
    h.ua.answer(h.take_invite().invite_id, 200, h.now, body=b"v=0\r\n")
    h._collect()
    h.advance(31.9)
    assert not [m for m in h.messages() if isinstance(m, Request)]
    h.advance(32.0)
    byes = [m for m in h.messages() if isinstance(m, Request) and m.method == "BYE"]
    assert len(byes) == 1
    h.deliver(response_to(h.sent[-1][1], 200, "OK"))
    ended = [e for e in h.events if isinstance(e, DialogEnded)]
    assert len(ended) == 1 and ended[0].reason is EndReason.NO_ACK


def test_remote_bye_is_answered_and_ends_the_dialog() -> None:
    h = Harness()
    h.establish()
    h.deliver(h.party.bye())
    assert h.responses()[-1] == 200
    ended = [e for e in h.events if isinstance(e, DialogEnded)]
    assert len(ended) == 1 and ended[0].reason is EndReason.REMOTE_BYE
    assert h.ua.dialogs == []


def test_bye_outside_a_dialog_gets_481() -> None:
    h = Harness()
    h.party.to_tag = "nosuchtag"
    h.deliver(h.party.bye())
    assert h.responses() == [481]


def test_hangup_sends_bye_with_retransmissions_until_answered() -> None:
    h = Harness()
    _invite, _ = h.establish()
    dialog = h.ua.dialogs[0]
    h.ua.hangup(dialog, h.now)
    h._collect()
    h.advance(h.now + 1.6)
    byes = [m for m in h.messages() if isinstance(m, Request) and m.method == "BYE"]
    assert len(byes) == 3, "sent, then retransmitted after T1 and 2*T1"
    bye = byes[0]
    assert bye.to_address.tag == h.party.from_tag and bye.from_address.tag == dialog.local_tag
    assert str(bye.uri) == f"sip:tester@{CALLER[0]}:{CALLER[1]}", "BYE goes to the caller's Contact"
    assert not [e for e in h.events if isinstance(e, DialogEnded)]
    h.deliver(response_to(h.sent[-1][1], 200, "OK"))
    ended = [e for e in h.events if isinstance(e, DialogEnded)]
    assert len(ended) == 1 and ended[0].reason is EndReason.LOCAL_BYE


def test_unanswered_bye_still_ends_the_dialog_after_timer_f() -> None:
    h = Harness()
    h.establish()
    h.ua.hangup(h.ua.dialogs[0], h.now)
    h._collect()
    h.advance(h.now + 32.0)
    ended = [e for e in h.events if isinstance(e, DialogEnded)]
    assert len(ended) == 1 and ended[0].reason is EndReason.LOCAL_BYE


def test_hangup_before_the_ack_waits_for_it() -> None:
    h = Harness()
    h.deliver(h.party.invite(pcmu_offer("192.0.2.10", 4000)))
    dialog = h.ua.answer(h.take_invite().invite_id, 200, h.now, body=b"v=0\r\n")
    h._collect()
    assert dialog is not None
    h.ua.hangup(dialog, h.now)
    h._collect()
    assert not [m for m in h.messages() if isinstance(m, Request)], "no BYE before the ACK (RFC 3261 §15)"
    final = [m for m in h.messages() if isinstance(m, Response)][-1]
    h.party.to_tag = final.to_address.tag
    h.deliver(h.party.ack())
    assert [m.method for m in h.messages() if isinstance(m, Request)] == ["BYE"]


def test_options_is_answered_with_allow() -> None:
    h = Harness()
    h.deliver(h.party.request("OPTIONS"))
    final = h.messages()[-1]
    assert isinstance(final, Response) and final.status_code == 200
    assert final.headers.get("Allow") == "INVITE, ACK, BYE, CANCEL, OPTIONS, UPDATE, INFO, PRACK"


def test_known_but_unhandled_method_gets_405_and_unknown_method_501() -> None:
    h = Harness()
    h.deliver(h.party.request("MESSAGE", body=b"hi", content_type="text/plain"))
    h.deliver(h.party.request("FROBNICATE"))
    first, second = [m for m in h.messages() if isinstance(m, Response)]
    assert (first.status_code, second.status_code) == (405, 501)
    assert first.headers.get("Allow") == "INVITE, ACK, BYE, CANCEL, OPTIONS, UPDATE, INFO, PRACK"


def test_malformed_request_that_can_be_answered_gets_400_and_garbage_is_dropped() -> None:
    h = Harness()
    h.deliver(h.party.request("OPTIONS").replace(b"Max-Forwards: 70", b"Max-Forwards: seventy"))
    h.deliver(h.party.request("OPTIONS").replace(b"CSeq: 1 OPTIONS", b"CSeq: one OPTIONS"))
    h.deliver(b"\x00\x01garbage that is not SIP\r\n\r\n")
    assert len(h.sent) == 2
    first = parse_message(h.sent[0][1])
    assert isinstance(first, Response) and first.status_code == 400
    assert first.reason == "Malformed Max-Forwards header"
    assert first.headers.get("Call-ID") == h.party.call_id
    assert h.sent[1][1].startswith(b"SIP/2.0 400 Malformed CSeq header")
    assert b"CSeq: one OPTIONS" in h.sent[1][1], "the offending header is copied back as RFC 3261 8.2.6.2 says"


def test_wrong_version_gets_505_and_non_sip_uri_416() -> None:
    h = Harness()
    h.deliver(h.party.request("OPTIONS").replace(b"SIP/2.0\r\n", b"SIP/7.0\r\n", 1))
    h.deliver(h.party.request("OPTIONS", uri="tel:+15551234"))
    assert h.responses() == [505, 416]


def test_unknown_required_extension_gets_420_with_unsupported() -> None:
    h = Harness()
    h.deliver(h.party.invite(pcmu_offer("192.0.2.10", 4000), extra_headers=["Require: foo, bar"]))
    final = h.messages()[-1]
    assert isinstance(final, Response) and final.status_code == 420
    assert final.headers.get("Unsupported") == "foo, bar"


def test_cancel_gets_200_and_the_invite_487() -> None:
    h = Harness()
    branch = h.party.new_branch()
    h.deliver(h.party.invite(pcmu_offer("192.0.2.10", 4000), branch=branch))
    invite = h.take_invite()
    h.deliver(h.party.request("CANCEL", branch=branch))
    statuses = [(m.status_code, m.cseq.method) for m in h.messages() if isinstance(m, Response)]
    assert statuses == [(100, "INVITE"), (200, "CANCEL"), (487, "INVITE")]
    cancelled = [e for e in h.events if isinstance(e, InviteCancelled)]
    assert len(cancelled) == 1 and cancelled[0].invite_id == invite.invite_id
    assert h.ua.pending_request(invite.invite_id) is None
    h.deliver(h.party.ack(branch=branch))  # ACK for the 487 stays in the transaction
    h.advance(40.0)
    assert [m.status_code for m in h.messages() if isinstance(m, Response)].count(487) == 1


def test_cancel_for_unknown_transaction_gets_481() -> None:
    h = Harness()
    h.deliver(h.party.request("CANCEL"))
    assert h.responses() == [481]


def test_reinvite_in_the_dialog_reaches_the_application_with_its_dialog() -> None:
    h = Harness()
    h.establish()
    h.party.cseq = 2
    h.deliver(h.party.invite(pcmu_offer("192.0.2.10", 4002), cseq=2))
    reinvites = [e for e in h.events if isinstance(e, InviteReceived) and e.dialog is not None]
    assert len(reinvites) == 1
    assert h.ua.answer(reinvites[0].invite_id, 200, h.now, body=b"v=0\r\n") is h.ua.dialogs[0]


def test_reinvite_with_an_old_cseq_is_refused() -> None:
    h = Harness()
    h.establish()
    h.deliver(h.party.invite(pcmu_offer("192.0.2.10", 4002), cseq=1))
    assert h.responses()[-1] == 500
