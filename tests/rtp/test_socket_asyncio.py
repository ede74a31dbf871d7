"""Tests for rtp/socket_asyncio.py: RTP/RTCP port pairs on loopback, datagrams in and out, ports returned."""

from __future__ import annotations

import asyncio
import socket

from rtp.ports import PortAllocator
from rtp.socket_asyncio import DatagramHub, RtpSocket
from tests.helpers.ports import free_rtp_range

LOOPBACK = "127.0.0.1"


def test_a_pair_is_an_even_port_and_the_odd_one_above_and_both_deliver() -> None:
    loop = asyncio.new_event_loop()
    low, high = free_rtp_range()
    allocator = PortAllocator(low, high)
    rtp_in: list[bytes] = []
    rtcp_in: list[bytes] = []
    hub = DatagramHub(loop)
    rtp, rtcp = RtpSocket.open_pair(LOOPBACK, allocator, hub, lambda d, s, t: rtp_in.append(d),
                                    lambda d, s, t: rtcp_in.append(d))
    try:
        assert rtp.port % 2 == 0 and rtcp.port == rtp.port + 1
        with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as peer:
            peer.bind((LOOPBACK, 0))
            peer.sendto(b"rtp", (LOOPBACK, rtp.port))
            peer.sendto(b"rtcp", (LOOPBACK, rtcp.port))
            loop.run_until_complete(asyncio.sleep(0.05))
            rtcp.sendto(b"report", peer.getsockname())
            peer.settimeout(1.0)
            assert peer.recvfrom(100) == (b"report", (LOOPBACK, rtcp.port))
        assert (rtp_in, rtcp_in) == ([b"rtp"], [b"rtcp"])
    finally:
        rtp.close()
        rtcp.close()
        hub.close()
        loop.close()
    assert allocator.available == (high - low + 1) // 2


def test_a_port_whose_rtcp_neighbour_is_taken_is_skipped() -> None:
    loop = asyncio.new_event_loop()
    low, _ = free_rtp_range()
    first = low + low % 2
    allocator = PortAllocator(first, first + 5)  # pairs first/first+1, first+2/first+3, first+4/first+5
    blocker = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
    blocker.bind((LOOPBACK, first + 1))
    try:
        rtp, rtcp = RtpSocket.open_pair(LOOPBACK, allocator, DatagramHub(loop), lambda d, s, t: None,
                                        lambda d, s, t: None)
        assert rtp.port == first + 2 and rtcp.port == first + 3
        rtp.close()
        rtcp.close()
    finally:
        blocker.close()
        loop.close()
