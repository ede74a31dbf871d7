"""The UA core's newer duties in fake time: UPDATE, INFO, PRACK, content checks, REGISTER, routing
through proxies and NAT, scanner throttling and the transaction cap."""

from __future__ import annotations

from sip.events import InviteReceived, RequestReceived
from sip.message import Request, Response
from sip.scanner_guard import ScannerGuard
from tests.helpers.sip_messages import CallParty, pcmu_offer, response_to
from tests.helpers.ua_harness import CALLER, TARGET, Harness


def last_response(h: Harness) -> Response:
    message = [m for m in h.messages() if isinstance(m, Response)][-1]
    return message


def test_update_without_a_body_is_answered_by_the_ua_and_with_a_body_by_the_application() -> None:
    h = Harness()
    h.establish()
    h.party.cseq += 1
    h.deliver(h.party.request("UPDATE"))
    assert last_response(h).status_code == 200
    assert not [e for e in h.events if isinstance(e, RequestReceived)]
    h.party.cseq += 1
    h.deliver(h.party.request("UPDATE", body=pcmu_offer("192.0.2.10", 4002, version=2)))
    updates = [e for e in h.events if isinstance(e, RequestReceived)]
    assert len(updates) == 1 and updates[0].request.method == "UPDATE"
    h.ua.answer(updates[0].request_id, 200, h.now, body=b"v=0\r\n")
    h._collect()
    assert last_response(h).status_code == 200 and last_response(h).body == b"v=0\r\n"


def test_info_goes_to_the_application_in_a_dialog_and_481_outside() -> None:
    h = Harness()
    h.deliver(h.party.request("INFO", body=b"Signal=1\r\n", content_type="application/dtmf-relay"))
    assert last_response(h).status_code == 481
    h.establish()
    h.party.cseq += 1
    h.deliver(h.party.request("INFO", body=b"Signal=1\r\n", content_type="application/dtmf-relay"))
    assert [e.request.method for e in h.events if isinstance(e, RequestReceived)] == ["INFO"]
    h.party.cseq += 1
    h.deliver(h.party.request("INFO", body=b"hello", content_type="text/plain"))
    response = last_response(h)
    assert response.status_code == 415
    assert response.headers.get("Accept") == "application/dtmf-relay, application/dtmf"


def test_prack_without_a_reliable_provisional_gets_481() -> None:
    h = Harness()
    h.establish()
    h.party.cseq += 1
    h.deliver(h.party.request("PRACK", extra_headers=["RAck: 1 1 INVITE"]))
    assert last_response(h).status_code == 481


def test_invite_requiring_100rel_and_timer_is_accepted() -> None:
    h = Harness()
    h.deliver(h.party.invite(pcmu_offer("192.0.2.10", 4000), extra_headers=["Require: 100rel, timer",
                                                                            "Session-Expires: 1800"]))
    assert len([e for e in h.events if isinstance(e, InviteReceived)]) == 1


def test_body_checks_answer_415_and_406() -> None:
    h = Harness()
    h.deliver(h.party.invite(b"<xml/>", content_type="application/xml"))
    response = last_response(h)
    assert response.status_code == 415 and response.headers.get("Accept") == "application/sdp"
    other = CallParty(*CALLER, TARGET)
    h.deliver(other.invite(pcmu_offer("192.0.2.10", 4000), extra_headers=["Accept: text/nobodyknowsthis"]))
    assert last_response(h).status_code == 406
    third = CallParty(*CALLER, TARGET)
    h.deliver(third.invite(pcmu_offer("192.0.2.10", 4000), extra_headers=["Content-Encoding: gzip"]))
    assert last_response(h).status_code == 415
    assert last_response(h).headers.get("Accept-Encoding") == "identity"
    assert not [e for e in h.events if isinstance(e, InviteReceived)]


def test_register_is_not_allowed_and_a_non_sip_address_of_record_is_malformed() -> None:
    h = Harness()
    h.deliver(h.party.request("REGISTER", uri="sip:192.0.2.1"))
    assert last_response(h).status_code == 405
    weird = h.party.request("REGISTER", uri="sip:192.0.2.1").replace(
        f"To: <{TARGET}>".encode(), b"To: <isbn:2983792873>")
    h.deliver(weird)
    assert last_response(h).status_code == 400


def test_in_dialog_bye_follows_the_record_route_set_loose_routing() -> None:
    h = Harness()
    proxy = ("192.0.2.99", 5080)
    h.establish(extra_headers=[f"Record-Route: <sip:{proxy[0]}:{proxy[1]};lr>, <sip:edge.example.com;lr>"])
    dialog = h.ua.dialogs[0]
    assert dialog.route_set == [f"<sip:{proxy[0]}:{proxy[1]};lr>", "<sip:edge.example.com;lr>"]
    h.ua.hangup(dialog, h.now)
    h._collect()
    destination = h.sent[-1][2]
    bye = [m for m in h.messages() if isinstance(m, Request)][-1]
    assert bye.method == "BYE" and destination == proxy
    assert bye.headers.get_all("Route") == [f"<sip:{proxy[0]}:{proxy[1]};lr>", "<sip:edge.example.com;lr>"]
    assert str(bye.uri) == f"sip:tester@{CALLER[0]}:{CALLER[1]}", "loose routing keeps the remote target"


def test_strict_route_puts_the_first_hop_in_the_request_uri() -> None:
    h = Harness()
    h.establish(extra_headers=["Record-Route: <sip:192.0.2.98:5090>"])
    h.ua.hangup(h.ua.dialogs[0], h.now)
    h._collect()
    bye = [m for m in h.messages() if isinstance(m, Request)][-1]
    assert str(bye.uri) == "sip:192.0.2.98:5090"
    assert bye.headers.get_all("Route") == [f"<sip:tester@{CALLER[0]}:{CALLER[1]}>"]
    assert h.sent[-1][2] == ("192.0.2.98", 5090)


def test_private_contact_behind_nat_gets_its_bye_at_the_source_address() -> None:
    h = Harness()
    h.deliver(h.party.invite(pcmu_offer("10.0.0.5", 4000)).replace(
        f"Contact: <sip:tester@{CALLER[0]}:{CALLER[1]}>".encode(), b"Contact: <sip:tester@10.0.0.5:5060>"))
    invite = next(e for e in h.events if isinstance(e, InviteReceived))
    dialog = h.ua.answer(invite.invite_id, 200, h.now, body=b"v=0\r\n")
    h._collect()
    h.party.to_tag = last_response(h).to_address.tag
    h.deliver(h.party.ack())
    assert dialog is not None
    h.ua.hangup(dialog, h.now)
    h._collect()
    bye = [m for m in h.messages() if isinstance(m, Request)][-1]
    assert str(bye.uri) == "sip:tester@10.0.0.5:5060" and h.sent[-1][2] == CALLER


def test_a_scanner_is_throttled_after_repeated_misses() -> None:
    h = Harness(scanner_guard=ScannerGuard(threshold=3, window=60, block_for=100))
    for _ in range(3):
        h.deliver(CallParty(*CALLER, TARGET).invite(pcmu_offer("192.0.2.10", 4000)))
        invite = [e for e in h.events if isinstance(e, InviteReceived)][-1]
        h.ua.answer(invite.invite_id, 404, h.now)
        h._collect()
    assert [r for r in h.responses() if r >= 200] == [404, 404, 404]
    before = len(h.sent)
    h.deliver(h.party.request("OPTIONS"))
    assert len(h.sent) == before and h.ua.blocked_drops == 1, "a throttled source gets no answer at all"
    h.deliver(h.party.request("OPTIONS"), source=("192.0.2.77", 5060))
    assert last_response(h).status_code == 200, "other sources are served"
    h.now = 101.0
    h.deliver(CallParty(*CALLER, TARGET).request("OPTIONS"))
    assert last_response(h).status_code == 200, "the block expires"


def test_transaction_table_cap_answers_503_without_keeping_state() -> None:
    h = Harness(max_transactions=5)
    for _ in range(7):
        h.deliver(CallParty(*CALLER, TARGET).request("OPTIONS"))
    statuses = h.responses()
    assert statuses == [200] * 5 + [503, 503]
    assert last_response(h).headers.get("Retry-After") == "5"
    assert len(h.ua.transactions) == 5


def test_bye_response_to_a_refused_bye_still_ends_the_dialog() -> None:
    h = Harness()
    h.establish()
    h.ua.hangup(h.ua.dialogs[0], h.now)
    h._collect()
    h.deliver(response_to(h.sent[-1][1], 481, "Call Does Not Exist"))
    assert h.ua.dialogs == []
