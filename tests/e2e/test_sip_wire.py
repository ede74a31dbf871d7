"""SIP over real UDP against the running server: the answers a softphone or a scanner gets."""

from __future__ import annotations

import time

from sip.message import Response
from sip.sdp import parse_sdp
from tests.helpers.audio import tone
from tests.helpers.rtp_peer import RtpPeer
from tests.helpers.server_process import RunningServer
from tests.helpers.sip_client import SipClient
from tests.helpers.sip_messages import pcmu_offer

ALLOW = "INVITE, ACK, BYE, CANCEL, OPTIONS, UPDATE, INFO, PRACK"


def conference_uri(server: RunningServer) -> str:
    conference = server.api.post("/conferences", {"type": "conference", "name": "wire"})
    return server.direct_uri(conference["direct_hash"])


def test_options_is_answered_200_with_allow(server: RunningServer) -> None:
    client = SipClient(server.sip, f"sip:{server.sip[0]}:{server.sip[1]}")
    client.send(client.party.request("OPTIONS"))
    response, _ = client.receive()
    assert isinstance(response, Response) and response.status_code == 200
    assert response.headers.get("Allow") == ALLOW
    assert response.top_via.params.get("rport") == str(client.port)


def test_invite_to_unknown_hash_or_user_gets_404(server: RunningServer) -> None:
    for user in ("direct.0123456789ab", "bob", "direct.zzz"):
        client = SipClient(server.sip, f"sip:{user}@{server.sip[0]}:{server.sip[1]}")
        final = client.call(pcmu_offer("127.0.0.1", 40000))
        assert final.status_code == 404, user
        assert client.provisional == [100]
        assert client.nothing_within(0.7), "the 404 is not retransmitted once ACKed"
        client.close()


def test_invite_without_a_supported_codec_gets_488(server: RunningServer) -> None:
    client = SipClient(server.sip, conference_uri(server))
    final = client.call(pcmu_offer("127.0.0.1", 40000, formats="18"))
    assert final.status_code == 488


def test_unhandled_method_gets_405_with_allow_and_unknown_method_501(server: RunningServer) -> None:
    client = SipClient(server.sip, conference_uri(server))
    client.send(client.party.request("SUBSCRIBE", extra_headers=["Event: presence"]))
    response, _ = client.receive()
    assert isinstance(response, Response) and response.status_code == 405
    assert response.headers.get("Allow") == ALLOW
    client.send(client.party.request("NOTAMETHOD"))
    response, _ = client.receive()
    assert isinstance(response, Response) and response.status_code == 501


def test_malformed_request_gets_400_and_garbage_does_not_stop_the_server(server: RunningServer) -> None:
    client = SipClient(server.sip, conference_uri(server))
    client.send(client.party.request("OPTIONS").replace(b"Max-Forwards: 70", b"Max-Forwards: lots"))
    response, _ = client.receive()
    assert isinstance(response, Response) and response.status_code == 400
    for junk in (b"\x00" * 50, b"INVITE\r\n\r\n", b"SIP/2.0 200 OK\r\n\r\n", bytes(range(256)) * 5):
        client.send(junk)
    assert client.nothing_within(0.3)
    client.send(client.party.request("OPTIONS"))
    response, _ = client.receive()
    assert isinstance(response, Response) and response.status_code == 200


def test_200_is_retransmitted_until_the_ack_arrives(server: RunningServer) -> None:
    client = SipClient(server.sip, conference_uri(server))
    first = client.call(pcmu_offer("127.0.0.1", 40000), send_ack=False)
    assert first.status_code == 200
    copies = 0
    while True:
        try:
            message, _ = client.receive(1.2)
        except TimeoutError:
            break
        if isinstance(message, Response) and message.status_code == 200:
            copies += 1
        if copies == 2:
            break
    assert copies == 2, "200 OK retransmitted at T1 and 2*T1"
    client.send(client.party.ack())
    assert client.nothing_within(2.5), "no retransmission after the ACK"
    assert client.hangup().status_code == 200


def test_retransmitted_invite_creates_no_second_call(server: RunningServer) -> None:
    conference = server.api.post("/conferences", {"type": "conference"})
    client = SipClient(server.sip, server.direct_uri(conference["direct_hash"]))
    invite = client.party.invite(pcmu_offer("127.0.0.1", 40000))
    client.send(invite)
    client.send(invite)
    messages = []
    while True:
        try:
            message, _ = client.receive(0.4)
        except TimeoutError:
            break
        assert isinstance(message, Response)
        messages.append(message)
    assert [m.status_code for m in messages] == [100, 200, 200], "the second INVITE gets the same 200 again"
    assert messages[1].to_address.tag == messages[2].to_address.tag
    assert len(server.api.get("/calls")["result"]) == 1
    client.party.to_tag = messages[1].to_address.tag
    client.send(client.party.ack())
    assert client.hangup().status_code == 200


def test_reinvite_refreshes_the_session_and_bumps_the_sdp_version_only_on_change(server: RunningServer) -> None:
    client = SipClient(server.sip, conference_uri(server))
    first = client.call(pcmu_offer("127.0.0.1", 40000))
    assert first.status_code == 200
    original = parse_sdp(first.body)

    def reinvite(sdp: bytes) -> Response:
        client.party.cseq += 1
        client.send(client.party.invite(sdp, cseq=client.party.cseq))
        while True:
            message, _ = client.receive()
            if isinstance(message, Response) and message.status_code >= 200:
                if message.status_code < 300:
                    client.send(client.party.ack(cseq=client.party.cseq))
                return message

    same = reinvite(pcmu_offer("127.0.0.1", 40000))
    assert same.status_code == 200 and parse_sdp(same.body) == original, "unchanged answer, same o= version"
    held = reinvite(pcmu_offer("127.0.0.1", 40000, version=2, direction="sendonly"))
    held_sdp = parse_sdp(held.body)
    assert held.status_code == 200 and held_sdp.media[0].direction() == "recvonly"
    assert held_sdp.origin.session_version == original.origin.session_version + 1
    assert held_sdp.media[0].port == original.media[0].port
    codec_change = reinvite(pcmu_offer("127.0.0.1", 40000, formats="8", version=3))
    changed = parse_sdp(codec_change.body)
    assert codec_change.status_code == 200 and changed.media[0].formats == ["8"]
    assert changed.origin.session_version == original.origin.session_version + 2
    bad = reinvite(pcmu_offer("127.0.0.1", 40000, formats="18", version=4))
    assert bad.status_code == 488
    assert client.hangup().status_code == 200, "the call survives a refused re-INVITE"


def test_invite_without_sdp_gets_our_offer_and_the_answer_comes_in_the_ack(server: RunningServer) -> None:
    conference = server.api.create_conference("offerless")
    peer = RtpPeer(payload_type=8)
    client = SipClient(server.sip, server.direct_uri(conference["direct_hash"]))
    try:
        answer = client.call(None, send_ack=False)
        offer = parse_sdp(answer.body)
        # Opus (dynamic), G.722, PCMU, PCMA, then telephone-event at 8000 and at 48000 Hz.
        assert answer.status_code == 200 and offer.media[0].formats == ["96", "9", "0", "8", "101", "103"]
        assert ("rtpmap", "96 opus/48000/2") in offer.media[0].attributes
        ours = pcmu_offer("127.0.0.1", peer.port, formats="8 101")
        client.send(client.party.request("ACK", body=ours))
        peer.start_sending((offer.connection.host if offer.connection else "", offer.media[0].port),
                           tone(500.0, 3.0))
        joined = server.api.wait_for(f"/conferences/{conference['id']}", lambda c: len(c["conferencecall_ids"]) == 1)
        assert joined["conferencecall_ids"]
        time.sleep(0.5)
        assert {r.packet.payload_type for r in peer.received} == {8}, "the codec the ACK's answer chose"
        assert client.hangup().status_code == 200
    finally:
        peer.stop()
        client.close()


def test_ack_without_the_answer_ends_the_call(server: RunningServer) -> None:
    client = SipClient(server.sip, server.direct_uri(server.api.create_conference("no answer")["direct_hash"]))
    answer = client.call(None)
    assert answer.status_code == 200 and answer.body
    bye, raw = client.expect_request("BYE")
    client.reply(raw)
    assert bye.call_id == client.party.call_id


def test_call_relayed_by_a_proxy_works_both_ways(server: RunningServer) -> None:
    """The client socket plays a record-routing proxy: responses and the server's BYE must come back to it."""
    conference = server.api.create_conference("proxied")
    proxy = SipClient(server.sip, server.direct_uri(conference["direct_hash"]))
    phone = "Via: SIP/2.0/UDP 10.0.0.7:5060;branch=z9hG4bKphone1"
    record_route = f"Record-Route: <sip:127.0.0.1:{proxy.port};lr>"
    invite = proxy.party.invite(pcmu_offer("127.0.0.1", 40000)).replace(
        b"\r\nMax-Forwards: 70", f"\r\n{phone}\r\n{record_route}\r\nMax-Forwards: 69".encode(), 1)
    invite = invite.replace(f"Contact: <sip:tester@127.0.0.1:{proxy.port}>".encode(),
                            b"Contact: <sip:phone@10.0.0.7:5060>")
    proxy.send(invite)
    final = proxy.final_response("INVITE")
    assert final.status_code == 200
    assert [str(v).split(";")[0] for v in final.vias][1] == "SIP/2.0/UDP 10.0.0.7:5060", "both Vias returned"
    assert final.headers.get("Record-Route") == f"<sip:127.0.0.1:{proxy.port};lr>"
    proxy.party.to_tag = final.to_address.tag
    proxy.send(proxy.party.ack())
    participant = server.api.wait_for("/conferencecalls", lambda page: len(page["result"]) == 1)["result"][0]
    server.api.delete(f"/conferencecalls/{participant['id']}")
    bye, raw = proxy.expect_request("BYE")
    assert str(bye.uri) == "sip:phone@10.0.0.7:5060", "loose routing: the Request-URI is the phone's Contact"
    assert bye.headers.get_all("Route") == [f"<sip:127.0.0.1:{proxy.port};lr>"]
    proxy.reply(raw)
    server.api.wait_for(f"/conferencecalls/{participant['id']}", lambda c: c["status"] == "leaved")
