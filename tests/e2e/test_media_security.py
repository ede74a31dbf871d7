"""SRTP calls end to end, the SRTP policy, and RTP that cannot be hijacked (RTP bleed, CVE-2017-14099)."""

from __future__ import annotations

import socket
import time
import urllib.request
from typing import Any

import pytest

from rtp.g711 import ulaw_encode
from rtp.packet import RtpPacket
from rtp.srtp import CryptoAttribute, SrtpContext
from sip.sdp import parse_sdp
from tests.helpers.audio import has_tone, lacks_tone, read_wav, tone, tone_level_db
from tests.helpers.participant import Participant, conferencecall_of
from tests.helpers.peer_codecs import PEER_CODECS
from tests.helpers.ports import LOOPBACK
from tests.helpers.rtp_peer import RtpPeer
from tests.helpers.server_process import LaunchServer, RunningServer
from tests.helpers.sip_client import SipClient
from tests.helpers.sip_messages import audio_offer

ATTACK_TONE = 3000.0


def metrics(server: RunningServer) -> str:
    """The server's Prometheus text."""
    url = server.http_url.removesuffix("/v1.0") + "/metrics"
    with urllib.request.urlopen(url, timeout=5) as response:
        assert response.headers["Content-Type"].startswith("text/plain")
        return str(response.read().decode())


def media_of(server: RunningServer, participant: Participant) -> dict[str, Any]:
    """The live media figures of a participant's conferencecall."""
    return dict(conferencecall_of(server.api, participant.sip)["media"])


def test_srtp_call_is_heard_both_ways_and_tampered_or_replayed_packets_are_dropped(server: RunningServer) -> None:
    conference = server.api.create_conference("srtp")
    path = f"/conferences/{conference['id']}"
    uri = server.direct_uri(conference["direct_hash"])
    secure = Participant(server.sip, uri, 700.0, codec=PEER_CODECS["G722"], srtp=True)
    plain = Participant(server.sip, uri, 1300.0, codec=PEER_CODECS["PCMU"])
    try:
        answer_media = parse_sdp(secure.answer.body).media[0]
        assert answer_media.proto == "RTP/SAVP"
        server_key = CryptoAttribute.parse(answer_media.attribute_values("crypto")[0])
        assert server_key.suite == "AES_CM_128_HMAC_SHA1_80" and server_key.tag == 1
        server.api.wait_for(path, lambda c: len(c["conferencecall_ids"]) == 2)
        time.sleep(2.0)
        end = time.monotonic()
        heard_secure = secure.heard_between(end - 1.5, end)
        heard_plain = plain.heard_between(end - 1.5, end)
        assert has_tone(heard_secure, 16000, 1300.0), tone_level_db(heard_secure, 16000, 1300.0)
        assert has_tone(heard_plain, 8000, 700.0), tone_level_db(heard_plain, 8000, 700.0)
        assert secure.peer.unprotect_failures == 0 and len(secure.peer.received) > 50

        # A fresh packet, keyed right, changed in flight: its authentication tag no longer matches.
        assert secure.our_key is not None and secure.server_key is not None
        forger = SrtpContext(secure.our_key, secure.server_key)
        fresh = forger.protect(RtpPacket(9, 60000, 0, 0x1234, bytes(160)).to_bytes())
        tampered = bytearray(fresh)
        tampered[20] ^= 0x55
        secure.peer.send_raw(bytes(tampered), secure.server_rtp)
        sent = secure.peer.last_sent
        assert sent is not None
        secure.peer.send_raw(sent, secure.server_rtp)  # a replay of a packet already accepted
        time.sleep(0.3)
        media = media_of(server, secure)
        assert media["srtp"] is True and media["codec"] == "G722/8000"
        assert media["srtp_auth_failed"] >= 1, media
        assert media["srtp_replayed"] >= 1, media
        assert media["dropped"]["srtp"] >= 2, media
        assert media_of(server, plain)["srtp"] is False
    finally:
        secure.close(hang_up=True)
        plain.close(hang_up=True)


def call_with(server: RunningServer, offer: bytes) -> tuple[int, str]:
    """(status, Warning header) of an INVITE with `offer` to a new conference."""
    conference = server.api.create_conference("policy")
    client = SipClient(server.sip, server.direct_uri(conference["direct_hash"]))
    try:
        response = client.call(offer)
        warning = response.headers.get("Warning") or ""
        if response.status_code == 200:
            client.hangup()
        return response.status_code, warning
    finally:
        client.close()


KEY = str(CryptoAttribute.generate(1, "AES_CM_128_HMAC_SHA1_32"))
PLAIN = audio_offer(LOOPBACK, 40000, ["0 PCMU/8000"])
SECURE = audio_offer(LOOPBACK, 40000, ["0 PCMU/8000"], crypto=KEY)


def test_srtp_required_refuses_plain_rtp_with_a_reason(launch_server: LaunchServer) -> None:
    server = launch_server("--srtp", "required")
    status, warning = call_with(server, PLAIN)
    assert status == 488 and "SRTP (RTP/SAVP) is required" in warning, warning
    assert call_with(server, SECURE)[0] == 200


def test_srtp_off_refuses_srtp_only_offers_with_a_reason(launch_server: LaunchServer) -> None:
    server = launch_server("--srtp", "off")
    status, warning = call_with(server, SECURE)
    assert status == 488 and "SRTP is turned off" in warning, warning
    assert call_with(server, PLAIN)[0] == 200


@pytest.mark.parametrize(("crypto", "reason"), [
    (str(CryptoAttribute.generate(1, "AES_CM_128_HMAC_SHA1_80")) + "|2^20|1:4", "MKI"),
    ("1 AES_256_CM_HMAC_SHA1_80 inline:" + "A" * 60, "no supported SRTP crypto suite"),
])
def test_srtp_offers_we_cannot_key_are_refused_clearly(server: RunningServer, crypto: str, reason: str) -> None:
    status, warning = call_with(server, audio_offer(LOOPBACK, 40000, ["0 PCMU/8000"], crypto=crypto))
    assert status == 488 and reason in warning, warning


@pytest.mark.parametrize("latched", [False, True], ids=["sdp-address-locked", "latched-behind-nat"])
def test_rtp_bleed_a_third_party_is_never_heard_nor_recorded(server: RunningServer, latched: bool) -> None:
    conference = server.api.create_conference("bleed")
    path = f"/conferences/{conference['id']}"
    uri = server.direct_uri(conference["direct_hash"])
    victim_peer = RtpPeer()
    victim = SipClient(server.sip, uri)
    listener = Participant(server.sip, uri, 1300.0)
    attacker = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
    attacker.bind((LOOPBACK, 0))
    try:
        # Behind NAT the phone writes its private address in the SDP; the server must latch to its packets.
        offer = audio_offer(LOOPBACK, victim_peer.port, ["0 PCMU/8000"], connection="10.20.30.40" if latched else None)
        answer = victim.call(offer)
        assert answer.status_code == 200
        victim_rtp = (LOOPBACK, parse_sdp(answer.body).media[0].port)
        victim_peer.start_sending(victim_rtp, tone(700.0, 8.0))
        server.api.wait_for(path, lambda c: len(c["conferencecall_ids"]) == 2)
        server.api.post(f"{path}/recording_start", {"format": "wav"})
        time.sleep(0.5)
        # The attack: loud RTP from another socket to the victim's port, with the victim's payload type, its SSRC
        # (guessable from what the victim sends) and other SSRCs, in sequence, for two seconds.
        loud = tone(ATTACK_TONE, 2.0, amplitude=30000.0)
        payloads = ulaw_encode(loud).tobytes()
        start = time.monotonic()
        for index in range(100):
            for ssrc in (0x1234, 0xBAD0BAD0):
                packet = RtpPacket(0, 30000 + index, 5000 + 160 * index, ssrc,
                                   payloads[160 * index : 160 * index + 160])
                attacker.sendto(packet.to_bytes(), victim_rtp)
            time.sleep(max(0.0, start + (index + 1) * 0.02 - time.monotonic()))
        end = time.monotonic()
        stopped = server.api.post(f"{path}/recording_stop")
        recording_id = stopped["recording_ids"][-1]

        heard = listener.heard_between(start + 0.2, end)
        assert has_tone(heard, 8000, 700.0), ("the victim is still heard", tone_level_db(heard, 8000, 700.0))
        assert lacks_tone(heard, 8000, ATTACK_TONE), ("the attacker is heard", tone_level_db(heard, 8000, ATTACK_TONE))
        heard_by_victim = victim_peer.heard_between(start + 0.2, end)
        assert lacks_tone(heard_by_victim, 8000, ATTACK_TONE)
        assert {r.source for r in victim_peer.received} == {victim_rtp}, "the server sends only from its own port"

        server.api.wait_for(f"/recordings/{recording_id}", lambda r: r["status"] == "ended")
        status, _, wav = server.api.call("GET", f"/recordingfiles/{recording_id}")
        assert status == 200
        rate, samples = read_wav(wav)
        assert has_tone(samples, rate, 700.0) and has_tone(samples, rate, 1300.0)
        assert lacks_tone(samples, rate, ATTACK_TONE), ("recorded", tone_level_db(samples, rate, ATTACK_TONE))

        media = conferencecall_of(server.api, victim)["media"]
        assert media["source_locked"] is True
        assert media["dropped"]["wrong_source"] >= 200, media
        text = metrics(server)
        assert 'confbridge_rtp_packets_dropped_total{reason="wrong_source"}' in text
        assert "confbridge_media_legs 2.0" in text
    finally:
        attacker.close()
        victim_peer.stop()
        victim.close()
        listener.close(hang_up=True)
