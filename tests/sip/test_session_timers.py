"""RFC 4028 session timers in fake time: negotiation in our 2xx, refreshes both ways, expiry, 422."""

from __future__ import annotations

from sip.dialog import EndReason
from sip.events import DialogEnded
from sip.message import Request, Response
from tests.helpers.sip_messages import response_to
from tests.helpers.ua_harness import Harness


def final_ok(h: Harness) -> Response:
    return [m for m in h.messages() if isinstance(m, Response) and m.status_code == 200][-1]


def requests(h: Harness, method: str) -> list[Request]:
    return [m for m in h.messages() if isinstance(m, Request) and m.method == method]


def test_caller_refreshes_and_an_unrefreshed_session_ends_with_bye() -> None:
    h = Harness()
    h.establish(extra_headers=["Supported: timer", "Session-Expires: 100;refresher=uac"])
    ok = final_ok(h)
    assert ok.headers.get("Session-Expires") == "100;refresher=uac" and ok.headers.get("Require") == "timer"
    h.advance(67.9)
    assert requests(h, "BYE") == []
    h.advance(68.0)  # 100 - min(32, 100/3)
    assert len(requests(h, "BYE")) == 1
    h.deliver(response_to(h.sent[-1][1], 200, "OK"))
    assert [e.reason for e in h.events if isinstance(e, DialogEnded)] == [EndReason.SESSION_EXPIRED]


def test_a_refresh_update_restarts_the_timer() -> None:
    h = Harness()
    h.establish(extra_headers=["Supported: timer", "Session-Expires: 100;refresher=uac"])
    h.advance(40.0)
    h.party.cseq += 1
    h.deliver(h.party.request("UPDATE", extra_headers=["Supported: timer", "Session-Expires: 100;refresher=uac"]))
    assert final_ok(h).headers.get("Session-Expires") == "100;refresher=uac"
    h.advance(107.9)
    assert requests(h, "BYE") == []
    h.advance(108.0)
    assert len(requests(h, "BYE")) == 1


def test_we_refresh_with_update_when_the_peer_allows_it() -> None:
    h = Harness()
    h.establish(extra_headers=["Supported: timer", "Session-Expires: 120;refresher=uas",
                               "Allow: INVITE, ACK, BYE, CANCEL, UPDATE"])
    assert final_ok(h).headers.get("Session-Expires") == "120;refresher=uas"
    h.advance(59.9)
    assert requests(h, "UPDATE") == []
    h.advance(60.0)
    update = requests(h, "UPDATE")
    assert len(update) == 1 and update[0].headers.get("Session-Expires") == "120;refresher=uac"
    h.deliver(response_to(h.sent[-1][1], 200, "OK").replace(
        b"Content-Length: 0", b"Session-Expires: 120;refresher=uac\r\nContent-Length: 0"))
    h.advance(119.9)
    assert len(requests(h, "UPDATE")) == 1
    h.advance(120.0)
    assert len(requests(h, "UPDATE")) == 2, "the next refresh is half an interval after the last"


def test_we_refresh_with_reinvite_and_our_sdp_when_update_is_not_allowed() -> None:
    h = Harness()
    h.establish(extra_headers=["Session-Expires: 120"])  # a proxy asked; the caller lacks timer support
    ok = final_ok(h)
    assert ok.headers.get("Session-Expires") == "120;refresher=uas" and ok.headers.get("Require") is None
    h.advance(60.0)
    reinvite = requests(h, "INVITE")
    assert len(reinvite) == 1 and reinvite[0].body == b"v=0\r\n"
    h.deliver(response_to(h.sent[-1][1], 200, "OK", to_tag=h.party.from_tag))
    assert len(requests(h, "ACK")) == 1, "the refresh re-INVITE's 2xx is acknowledged"


def test_too_short_session_interval_gets_422_with_min_se() -> None:
    h = Harness()
    h.deliver(h.party.invite(b"", extra_headers=["Supported: timer", "Session-Expires: 30"]))
    response = [m for m in h.messages() if isinstance(m, Response)][-1]
    assert response.status_code == 422 and response.headers.get("Min-SE") == "90"


def test_a_failed_refresh_ends_the_call() -> None:
    h = Harness()
    h.establish(extra_headers=["Supported: timer", "Session-Expires: 120;refresher=uas", "Allow: UPDATE"])
    h.advance(60.0)
    h.deliver(response_to(h.sent[-1][1], 481, "Call Does Not Exist"))
    assert len(requests(h, "BYE")) == 1
