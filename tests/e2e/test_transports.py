"""SIP over TLS, TCP and IPv6 against the real server, and the §18.1.1 switch of large requests to TCP.

UDP is what most tests use; these check the other transports end to end. A call made over a stream
connection must be answered on it, and the server's BYE for that call must come back on the very same
connection (RFC 3261 §18: a UAS cannot open a connection to a caller behind NAT). The stream edge also
answers RFC 5626 keep-alives, refuses unframeable input with a status code before closing, handles
pipelined messages and closes idle connections. Over IPv6 the server has to answer, describe its media
and address itself with `::1`. The size rule (a request over 1300 bytes goes over TCP) is hard to trigger
from outside, so it is checked on the sans-IO user agent directly.
"""

from __future__ import annotations

import socket
import subprocess
import time
from pathlib import Path
from typing import Any

import pytest

from sip.events import InviteReceived
from sip.message import Request, parse_message
from sip.sdp import parse_sdp
from sip.transport import TCP, UDP, Peer
from sip.uri import SipUri
from sip.useragent import UserAgent
from tests.helpers.audio import tone
from tests.helpers.ports import free_port, free_sip_port
from tests.helpers.rest import ApiClient
from tests.helpers.rtp_peer import RtpPeer
from tests.helpers.server_process import LaunchServer, RunningServer
from tests.helpers.sip_client import SipClient
from tests.helpers.sip_messages import CallParty, pcmu_offer
from tests.helpers.stream_client import StreamSipClient, tls_client_context

LOOPBACK = "127.0.0.1"
LOOPBACK6 = "::1"



@pytest.fixture(scope="module")
def certificate(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, Path]:
    """A self-signed certificate for 127.0.0.1 and its key (the certificate doubles as the client's CA)."""
    folder = tmp_path_factory.mktemp("tls")
    cert, key = folder / "cert.pem", folder / "key.pem"
    subprocess.run(["openssl", "req", "-x509", "-newkey", "rsa:2048", "-nodes", "-subj", "/CN=127.0.0.1",
                    "-days", "1", "-keyout", str(key), "-out", str(cert)], check=True, capture_output=True)
    return cert, key


def call_kick_and_bye_on_the_same_connection(server: RunningServer, client: StreamSipClient,
                                             conference: dict[str, Any], transport: str, port: int) -> None:
    """Call over `client`'s connection, stream RTP until joined, kick over REST, get and answer the BYE on it."""
    api = server.api
    peer = RtpPeer()
    try:
        answer = client.call(pcmu_offer(LOOPBACK, peer.port))
        assert answer.status_code == 200, answer
        assert answer.top_via.transport == transport and answer.top_via.params.get("rport") == str(client.port)
        contact = answer.contacts[0].uri
        assert isinstance(contact, SipUri)
        assert contact.secure or contact.transport == transport.lower(), f"Contact {contact} for a {transport} call"
        assert contact.port == port, "the Contact names the port of the transport the call came in on"
        sdp = parse_sdp(answer.body)
        peer.start_sending((sdp.connection.host if sdp.connection else "", sdp.media[0].port), tone(440.0, 5.0))
        joined = api.wait_for(f"/conferences/{conference['id']}", lambda c: len(c["conferencecall_ids"]) == 1)
        cc_id = joined["conferencecall_ids"][0]
        assert api.get(f"/conferencecalls/{cc_id}")["status"] == "joined"
        assert peer.received, "the server sends RTP back"

        assert api.delete(f"/conferencecalls/{cc_id}")["status"] == "leaving"
        bye, raw = client.expect_request("BYE")
        assert bye.top_via.transport == transport and bye.top_via.port == port, bye.headers.get("Via")
        assert bye.call_id == client.party.call_id and bye.to_address.tag == client.party.from_tag
        client.reply(raw)
        left = api.wait_for(f"/conferencecalls/{cc_id}", lambda c: c["status"] == "leaved")
        call = api.get(f"/calls/{left['reference_id']}")
        assert call["status"] == "hangup" and call["hangup_by"] == "local", call
        assert client.nothing_within(0.7), "a BYE over a reliable transport is not retransmitted"
    finally:
        peer.stop()


# -- TLS ------------------------------------------------------------------------------------------------

def test_tls_options_and_a_call_whose_bye_comes_back_on_the_connection(launch_server: LaunchServer,
                                                                      certificate: tuple[Path, Path]) -> None:
    cert, key = certificate
    tls_port = free_port(socket.SOCK_STREAM)
    server = launch_server("--tls-port", str(tls_port), "--tls-cert", str(cert), "--tls-key", str(key))
    assert f"TLS {tls_port}" in server.log()
    conference = server.api.create_conference("tls")
    client = StreamSipClient((LOOPBACK, tls_port), server.direct_uri(conference["direct_hash"]), transport="TLS",
                             ssl_context=tls_client_context(cert))
    try:
        options = client.options()
        assert options.status_code == 200 and options.top_via.transport == "TLS"
        assert client.ping() == b"\r\n", "RFC 5626 keep-alives work inside TLS too"
        call_kick_and_bye_on_the_same_connection(server, client, conference, "TLS", tls_port)
        assert client.options().status_code == 200, "the connection is still open after the call"
    finally:
        client.close()


# -- TCP ------------------------------------------------------------------------------------------------

def test_tcp_call_whose_bye_comes_back_on_the_connection(launch_server: LaunchServer) -> None:
    server = launch_server()
    conference = server.api.create_conference("tcp")
    client = StreamSipClient(server.sip, server.direct_uri(conference["direct_hash"]))
    try:
        call_kick_and_bye_on_the_same_connection(server, client, conference, "TCP", server.sip[1])
    finally:
        client.close()


def test_tcp_keepalive_pipelining_and_oversized_body(launch_server: LaunchServer) -> None:
    server = launch_server()
    client = StreamSipClient(server.sip, f"sip:{LOOPBACK}:{server.sip[1]}")
    try:
        assert client.ping() == b"\r\n", "RFC 5626: a double-CRLF ping is answered with one CRLF"
        assert client.options().status_code == 200, "the connection carries SIP after a ping"

        first, second = client.party.request("OPTIONS", cseq=10), client.party.request("OPTIONS", cseq=11)
        client.send(first + second)
        answers = [client.final_response("OPTIONS") for _ in range(2)]
        assert [(a.status_code, a.cseq.number) for a in answers] == [(200, 10), (200, 11)]
        split = client.party.request("OPTIONS", cseq=12)
        for index in range(0, len(split), 37):  # one message in many small writes frames the same
            client.send(split[index:index + 37])
            time.sleep(0.002)
        assert client.final_response("OPTIONS").cseq.number == 12

        huge = client.party.request("OPTIONS", cseq=13).replace(b"Content-Length: 0", b"Content-Length: 10000000")
        client.send(huge)
        refused = client.final_response("OPTIONS")
        assert refused.status_code == 513 and refused.cseq.number == 13, refused
        assert client.closed_by_peer(2.0), "the server closes a connection it can no longer frame"
    finally:
        client.close()
    fresh = StreamSipClient(server.sip, f"sip:{LOOPBACK}:{server.sip[1]}")
    try:
        unframed = fresh.party.request("OPTIONS", cseq=20).replace(b"Content-Length: 0\r\n", b"")
        assert b"Content-Length" not in unframed
        fresh.send(unframed)
        refused = fresh.final_response("OPTIONS")
        assert refused.status_code == 400 and refused.cseq.number == 20, refused
        assert fresh.closed_by_peer(2.0), "a stream message without Content-Length ends the connection"
    finally:
        fresh.close()
    assert "Body longer than 65536 bytes" in server.log()


def test_idle_tcp_connection_is_closed(launch_server: LaunchServer) -> None:
    server = launch_server("--tcp-idle-timeout", "1")
    busy = StreamSipClient(server.sip, f"sip:{LOOPBACK}:{server.sip[1]}")
    idle = StreamSipClient(server.sip, f"sip:{LOOPBACK}:{server.sip[1]}")
    try:
        assert idle.options().status_code == 200
        quiet_since = time.monotonic()
        for _ in range(6):  # pings are traffic: they keep a connection open past the idle timeout
            assert busy.ping() == b"\r\n"
            time.sleep(0.4)
        assert idle.closed_by_peer(3.0)
        closed_after = time.monotonic() - quiet_since
        assert 1.0 <= closed_after <= 2.0 + 0.5, f"closed after {closed_after:.2f} s of silence, timeout 1 s"
        assert busy.options().status_code == 200, "a connection with keep-alives stays open"
        assert "closing idle connection" in server.log()
    finally:
        busy.close()
        idle.close()


# -- IPv6 -----------------------------------------------------------------------------------------------

def test_ipv6_call_over_udp_with_rtp(launch_server: LaunchServer) -> None:
    sip_port, http_port = free_sip_port(LOOPBACK6), free_sip_port(LOOPBACK6)
    server = launch_server("--bind", LOOPBACK6, sip_port=sip_port, http_port=http_port)
    api = ApiClient(f"http://[{LOOPBACK6}]:{http_port}/v1.0", server.token)
    conference = api.create_conference("ipv6")
    client = SipClient((LOOPBACK6, sip_port), f"sip:direct.{conference['direct_hash']}@[{LOOPBACK6}]:{sip_port}")
    media = RtpPeer(host=LOOPBACK6)
    try:
        answer = client.call(pcmu_offer(LOOPBACK6, media.port))
        assert answer.status_code == 200, answer
        sdp = parse_sdp(answer.body)
        assert b"c=IN IP6 ::1\r\n" in answer.body, answer.body
        assert sdp.origin.addrtype == "IP6" and sdp.origin.address == LOOPBACK6
        assert answer.top_via.host == f"[{LOOPBACK6}]" and answer.top_via.params.get("rport") == str(client.port)
        contact = answer.contacts[0].uri
        assert isinstance(contact, SipUri) and contact.host == f"[{LOOPBACK6}]" and contact.port == sip_port

        media.start_sending((LOOPBACK6, sdp.media[0].port), tone(600.0, 4.0))
        joined = api.wait_for(f"/conferences/{conference['id']}", lambda c: len(c["conferencecall_ids"]) == 1)
        assert api.get(f"/conferencecalls/{joined['conferencecall_ids'][0]}")["status"] == "joined"
        deadline = time.monotonic() + 3
        while not media.received and time.monotonic() < deadline:
            time.sleep(0.05)
        assert media.received, "the server sends RTP back over IPv6"
        assert {r.source for r in media.received} == {(LOOPBACK6, sdp.media[0].port)}, "symmetric RTP"

        assert client.hangup().status_code == 200
        api.wait_for(f"/conferencecalls/{joined['conferencecall_ids'][0]}", lambda c: c["status"] == "leaved")
    finally:
        media.stop()
        client.close()


# -- RFC 3261 §18.1.1 on the sans-IO user agent ----------------------------------------------------------

SDP = pcmu_offer(LOOPBACK, 40000)


def established_dialog(routes: int) -> tuple[UserAgent, Any]:
    """A UserAgent (UDP and TCP on 5060) with an acknowledged dialog from a caller that sent `routes` Record-Routes."""
    ua = UserAgent(host=LOOPBACK, port=5060, tcp_port=5060)
    caller = CallParty(LOOPBACK, 5070, f"sip:direct.0123456789ab@{LOOPBACK}:5060")
    record_routes = [f"Record-Route: <sip:{LOOPBACK}:5070;lr;hop={index};ftag={'f' * 48}>" for index in range(routes)]
    source = Peer(UDP, (LOOPBACK, 5070))
    ua.receive(caller.invite(SDP, extra_headers=record_routes), source, 0.0)
    invites = [event for event in ua.events() if isinstance(event, InviteReceived)]
    assert len(invites) == 1
    dialog = ua.answer(invites[0].invite_id, 200, 0.01, body=SDP)
    assert dialog is not None and len(dialog.route_set) == routes
    response = parse_message(next(data for data, _ in ua.messages_to_send() if data.startswith(b"SIP/2.0 200")))
    caller.to_tag = response.to_address.tag
    ua.receive(caller.ack(), source, 0.02)
    assert dialog.acknowledged
    ua.messages_to_send()
    return ua, dialog


@pytest.mark.parametrize(("routes", "transport"), [(1, UDP), (20, TCP)])
def test_bye_larger_than_1300_bytes_goes_over_tcp(routes: int, transport: str) -> None:
    ua, dialog = established_dialog(routes)
    ua.hangup(dialog, 1.0)
    sent = ua.messages_to_send()
    assert len(sent) == 1
    data, peer = sent[0]
    bye = parse_message(data)
    assert isinstance(bye, Request) and bye.method == "BYE"
    assert (len(data) > 1300) == (transport == TCP), len(data)
    assert peer == Peer(transport, (LOOPBACK, 5070)), "the first route, over the transport the size calls for"
    assert bye.top_via.transport == transport and bye.top_via.sent_by == (LOOPBACK, 5060), bye.headers.get("Via")
    assert len(bye.headers.get_list("Route")) == routes
    if transport == TCP:
        ua.handle_timer(1.0 + 4 * 0.5)
        assert ua.messages_to_send() == [], "no retransmission over a reliable transport"
