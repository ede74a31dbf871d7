"""SIP over real UDP against the running server: the answers a softphone or a scanner gets."""

from __future__ import annotations

from sip.message import Response
from sip.sdp import parse_sdp
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
