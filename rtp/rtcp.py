"""RTCP for one RTP session (RFC 3550 §6 and appendix A), sans-IO.

`ReceptionStats` keeps the receiver-side figures of one source as appendix A prescribes: extended
highest sequence number, cumulative and interval loss, interarrival jitter. `RtcpSession` turns them
into compound reports (SR or RR, then SDES CNAME) on RFC 3550's randomised schedule, and reads the
peer's reports: its loss and jitter as seen from the far end, and the round-trip time. The wire format
is aiortc's (`aiortc.rtp`); time comes in as `now` (monotonic seconds) and, for the NTP field of our
sender reports, `wallclock` (Unix seconds). Nothing here raises on what the network sends.
"""

from __future__ import annotations

import random
import struct
from dataclasses import dataclass
from typing import Protocol

from aiortc.rtp import (
    RTCP_SDES,
    AnyRtcpPacket,
    RtcpByePacket,
    RtcpPacket,
    RtcpReceiverInfo,
    RtcpRrPacket,
    RtcpSdesPacket,
    RtcpSenderInfo,
    RtcpSourceInfo,
    RtcpSrPacket,
)

RTP_SEQ_MOD = 1 << 16
MAX_DROPOUT = 3000
"""A sequence jump forward by less than this is packet loss (A.1)."""
MAX_MISORDER = 100
"""A sequence jump backward by less than this is a late packet (A.1)."""

LOST_MIN, LOST_MAX = -(1 << 23), (1 << 23) - 1
"""The cumulative number of packets lost is a signed 24-bit field."""

NTP_EPOCH_OFFSET = 2_208_988_800
"""Seconds from 1900-01-01 (NTP) to 1970-01-01 (Unix)."""

MIN_INTERVAL = 5.0
"""RFC 3550 §6.2: the minimum average time between reports; the first report comes after half of it."""

RTCP_BANDWIDTH_FRACTION = 0.05
SENDER_BANDWIDTH_FRACTION = 0.25
IP_UDP_OVERHEAD = 28
"""Bytes of IPv4 and UDP header counted in the average RTCP packet size (§6.2)."""

SDES_CNAME = 1
_SENT_SR_MEMORY = 16
_PEER_MEMORY = 64


def ntp_timestamp(wallclock: float) -> int:
    """The 64-bit NTP timestamp of a Unix time."""
    return int((wallclock + NTP_EPOCH_OFFSET) * (1 << 32)) & 0xFFFF_FFFF_FFFF_FFFF


def ntp_middle(ntp: int) -> int:
    """The middle 32 bits of a 64-bit NTP timestamp: what LSR carries."""
    return (ntp >> 16) & 0xFFFF_FFFF


def parse_compound(data: bytes) -> list[AnyRtcpPacket]:
    """Parse an RTCP compound packet (aiortc, one packet at a time); ValueError when it is malformed.

    Unknown packet types are skipped, and so is an SDES packet aiortc cannot read: its parser ignores the
    padding after each chunk, so RFC-correct SDES with several chunks can fail, and that must not cost the
    reports next to it.
    """
    if not data:
        raise ValueError("empty RTCP packet")
    packets: list[AnyRtcpPacket] = []
    position = 0
    while position < len(data):
        if len(data) < position + 4:
            raise ValueError("RTCP packet header truncated")
        if data[position] >> 6 != 2:
            raise ValueError("RTCP packet has invalid version")
        end = position + 4 + 4 * struct.unpack_from("!H", data, position + 2)[0]
        if end > len(data):
            raise ValueError("RTCP packet is truncated")
        try:
            packets += RtcpPacket.parse(data[position:end])
        except (ValueError, struct.error, IndexError) as error:
            if data[position + 1] != RTCP_SDES:
                raise ValueError(str(error)) from error
        position = end
    return packets


@dataclass(frozen=True)
class Reception:
    """What a receiver report block says about one source (RFC 3550 §6.4.1), apart from SSRC, LSR and DLSR."""

    fraction_lost: int
    """Over the interval since the previous report, in 1/256."""
    packets_lost: int
    highest_sequence: int
    jitter: int
    """In timestamp units."""


class SourceStatistics(Protocol):
    """Reception statistics of the peer's source, however they are kept."""

    @property
    def received_count(self) -> int:
        """Packets received."""
        ...

    @property
    def lost(self) -> int:
        """Cumulative packets lost."""
        ...

    @property
    def jitter_ms(self) -> float:
        """Interarrival jitter in milliseconds."""
        ...

    def close_interval(self) -> Reception:
        """The report block figures, starting a new fraction-lost interval."""
        ...


class ReceptionStats:
    """Reception statistics of one RTP source (RFC 3550 A.1, A.3, A.8), a packet at a time.

    `rtp.stream_table.StreamTable` keeps the same figures for many streams at once and is tested against this.
    """

    def __init__(self) -> None:
        self.base_seq = 0
        self.max_seq = 0
        self.cycles = 0
        self.bad_seq = RTP_SEQ_MOD + 1
        self.received_count = 0
        self.jitter = 0.0
        """Interarrival jitter estimate in timestamp units."""
        self.fraction_lost = 0
        """Fraction lost over the last report interval, in 1/256 (as in a report block)."""
        self.clock_rate = 0
        self._started = False
        self._expected_prior = 0
        self._received_prior = 0
        self._last_arrival = 0.0
        self._last_timestamp = 0

    def _init_seq(self, sequence: int) -> None:
        """Start counting afresh at `sequence` (A.1 init_seq)."""
        self.base_seq = self.max_seq = sequence
        self.bad_seq = RTP_SEQ_MOD + 1
        self.cycles = 0
        self.received_count = self._expected_prior = self._received_prior = 0

    def received(self, sequence: int, timestamp: int, arrival: float, clock_rate: int) -> bool:
        """Account for one RTP packet; False when it was a wild sequence jump not (yet) accepted (A.1)."""
        sequence &= 0xFFFF
        timestamp &= 0xFFFF_FFFF
        if not self._started:
            self._started = True
            self._init_seq(sequence)
        else:
            udelta = (sequence - self.max_seq) % RTP_SEQ_MOD
            if udelta < MAX_DROPOUT:
                if sequence < self.max_seq:
                    self.cycles += RTP_SEQ_MOD
                self.max_seq = sequence
            elif udelta <= RTP_SEQ_MOD - MAX_MISORDER:
                if sequence != self.bad_seq:
                    self.bad_seq = (sequence + 1) % RTP_SEQ_MOD
                    return False
                self._init_seq(sequence)  # two sequential packets after a jump: the sender restarted
                self._last_arrival, self._last_timestamp, self.clock_rate = arrival, timestamp, clock_rate
                self.received_count += 1
                return True
            # else a duplicate or a late packet: counted, max_seq unchanged
        self._update_jitter(timestamp, arrival, clock_rate)
        self.received_count += 1
        return True

    def _update_jitter(self, timestamp: int, arrival: float, clock_rate: int) -> None:
        """A.8: J += (|D(i-1, i)| - J) / 16, with D the change in transit time, in timestamp units."""
        if self.received_count and clock_rate == self.clock_rate:
            elapsed = ((timestamp - self._last_timestamp + (1 << 31)) % (1 << 32)) - (1 << 31)
            d = abs((arrival - self._last_arrival) * clock_rate - elapsed)
            self.jitter += (d - self.jitter) / 16
        self.clock_rate = clock_rate
        self._last_arrival, self._last_timestamp = arrival, timestamp

    @property
    def extended_max(self) -> int:
        """The extended highest sequence number received (cycles and sequence)."""
        return self.cycles + self.max_seq

    @property
    def expected(self) -> int:
        """Packets expected: extended highest minus first, plus one (A.3)."""
        return self.extended_max - self.base_seq + 1 if self._started else 0

    @property
    def lost(self) -> int:
        """Cumulative packets lost (duplicates make it smaller, even negative), clamped to 24 signed bits."""
        return max(LOST_MIN, min(LOST_MAX, self.expected - self.received_count))

    @property
    def jitter_ms(self) -> float:
        """The jitter estimate in milliseconds."""
        return self.jitter * 1000 / self.clock_rate if self.clock_rate else 0.0

    def close_interval(self) -> Reception:
        """The report block figures, closing the loss interval (A.3)."""
        expected = self.expected
        expected_interval = expected - self._expected_prior
        received_interval = self.received_count - self._received_prior
        self._expected_prior, self._received_prior = expected, self.received_count
        lost_interval = expected_interval - received_interval
        self.fraction_lost = 0 if expected_interval <= 0 or lost_interval <= 0 else \
            min(255, (lost_interval << 8) // expected_interval)
        return Reception(self.fraction_lost, self.lost, self.extended_max & 0xFFFF_FFFF,
                         min(0xFFFF_FFFF, int(self.jitter)))

    def report_block(self, ssrc: int, now: float, last_sr: tuple[int, float] | None) -> RtcpReceiverInfo:
        """A report block about this source (`ssrc`), closing the loss interval; `last_sr` is (LSR, arrival)."""
        return report_block(ssrc, self.close_interval(), now, last_sr)


def report_block(ssrc: int, reception: Reception, now: float, last_sr: tuple[int, float] | None) -> RtcpReceiverInfo:
    """A report block about `ssrc`; `last_sr` is (LSR, when it arrived) of its last sender report, if any."""
    lsr = dlsr = 0
    if last_sr is not None:
        lsr = last_sr[0] & 0xFFFF_FFFF
        dlsr = min(0xFFFF_FFFF, max(0, int((now - last_sr[1]) * 65536)))
    return RtcpReceiverInfo(ssrc=ssrc & 0xFFFF_FFFF, fraction_lost=reception.fraction_lost,
                            packets_lost=reception.packets_lost, highest_sequence=reception.highest_sequence,
                            jitter=reception.jitter, lsr=lsr, dlsr=dlsr)


@dataclass
class _SentSr:
    """One sender report of ours: its LSR value and when it left."""

    lsr: int
    sent_at: float


class RtcpSession:
    """The RTCP side of one RTP session with one peer: our reports out, the peer's reports in."""

    def __init__(self, ssrc: int, cname: str, clock_rate: int, *, rng: random.Random | None = None,
                 session_bandwidth: float = 64_000.0, statistics: SourceStatistics | None = None) -> None:
        cname_bytes = cname.encode()
        if not 0 < len(cname_bytes) <= 255:
            raise ValueError("CNAME must be 1 to 255 bytes")
        self.ssrc = ssrc & 0xFFFF_FFFF
        self.cname = cname
        self.clock_rate = clock_rate
        self.session_bandwidth = session_bandwidth
        """Bits per second of the session's RTP; RTCP gets 5% of it (only above 5 s intervals does it matter)."""
        self.rng = rng if rng is not None else random.Random()
        self.next_report_at: float | None = None
        """When the next report is due; None until the session first sees the time."""
        self.malformed = 0
        self.reports_received = 0
        self.bye_received = False
        self.rtt_ms: float | None = None
        self.remote_fraction_lost: float | None = None
        """The fraction (0-1) of our packets the peer last reported lost."""
        self.remote_packets_lost: int | None = None
        self.remote_jitter_ms: float | None = None
        self.packets_sent = 0
        self.octets_sent = 0
        self.peer_ssrc: int | None = None
        self._own_statistics = statistics is None
        self.stats: SourceStatistics = statistics if statistics is not None else ReceptionStats()
        """The peer's source: counted here packet by packet (`on_rtp_received`), or kept by the caller (a
        `StreamTable` slot) who calls `note_source` when the peer's SSRC changes."""
        self.last_reception: Reception | None = None
        self._cname_bytes = cname_bytes
        self._sent_at_report = 0
        self._received_at_report = 0
        self._last_sent: tuple[int, float] | None = None
        self._last_sr: dict[int, tuple[int, float]] = {}
        self._sent_srs: list[_SentSr] = []
        self._members: set[int] = set()
        self._senders: set[int] = set()
        self._avg_rtcp_size = 100.0
        self._initial = True

    # --- what the figures say ---------------------------------------------------------------------------------

    @property
    def packets_received(self) -> int:
        """RTP packets received from the peer's current source."""
        return self.stats.received_count

    @property
    def packets_lost(self) -> int:
        """Cumulative packets lost from the peer's current source."""
        return self.stats.lost

    @property
    def fraction_lost(self) -> float:
        """Fraction (0-1) of the peer's packets lost over our last report interval."""
        return self.last_reception.fraction_lost / 256 if self.last_reception is not None else 0.0

    @property
    def jitter_ms(self) -> float:
        """Interarrival jitter of the peer's packets, in milliseconds."""
        return self.stats.jitter_ms

    # --- RTP events -------------------------------------------------------------------------------------------

    def on_rtp_sent(self, timestamp: int, payload_bytes: int, now: float) -> None:
        """Count one RTP packet we sent."""
        self._start(now)
        self.packets_sent += 1
        self.octets_sent += payload_bytes
        self._last_sent = (timestamp & 0xFFFF_FFFF, now)

    def update_sent(self, packets: int, octets: int, last_timestamp: int, last_sent_at: float) -> None:
        """Take our sender counters from wherever they are kept (a `StreamTable` slot)."""
        self.packets_sent, self.octets_sent = packets, octets
        if packets:
            self._start(last_sent_at)
            self._last_sent = (last_timestamp & 0xFFFF_FFFF, last_sent_at)

    def note_source(self, ssrc: int, now: float) -> bool:
        """The peer sends from `ssrc`; True when that is a new source (statistics kept here start afresh)."""
        self._start(now)
        ssrc &= 0xFFFF_FFFF
        changed = ssrc != self.peer_ssrc
        if changed:
            self.peer_ssrc = ssrc
            if self._own_statistics:
                self.stats = ReceptionStats()
        self._remember(self._members, ssrc)
        self._remember(self._senders, ssrc)
        return changed

    def on_rtp_received(self, ssrc: int, sequence: int, timestamp: int, now: float) -> bool:
        """Count one accepted RTP packet from the peer; a new SSRC starts fresh statistics. False if not counted."""
        self.note_source(ssrc, now)
        stats = self.stats
        if not isinstance(stats, ReceptionStats):
            raise TypeError("on_rtp_received counts packets itself; statistics kept elsewhere take note_source")
        return stats.received(sequence, timestamp, now, self.clock_rate)

    # --- incoming RTCP ----------------------------------------------------------------------------------------

    def receive(self, data: bytes, now: float) -> list[AnyRtcpPacket]:
        """Take one RTCP compound packet from the peer; its packets, or [] when malformed (counted, ignored)."""
        self._start(now)
        try:
            packets = parse_compound(bytes(data))
        except ValueError:
            self.malformed += 1
            return []
        if not packets:
            self.malformed += 1
            return []
        self.reports_received += 1
        self._avg_rtcp_size += (len(data) + IP_UDP_OVERHEAD - self._avg_rtcp_size) / 16
        for packet in packets:
            if isinstance(packet, RtcpSrPacket):
                self._remember(self._members, packet.ssrc)
                self._remember(self._senders, packet.ssrc)
                if len(self._last_sr) >= _PEER_MEMORY and packet.ssrc not in self._last_sr:
                    self._last_sr.clear()
                self._last_sr[packet.ssrc] = (ntp_middle(packet.sender_info.ntp_timestamp), now)
                self._read_reports(packet.reports, now)
            elif isinstance(packet, RtcpRrPacket):
                self._remember(self._members, packet.ssrc)
                self._senders.discard(packet.ssrc)
                self._read_reports(packet.reports, now)
            elif isinstance(packet, RtcpByePacket):
                for ssrc in packet.sources:
                    self._members.discard(ssrc)
                    self._senders.discard(ssrc)
                    if ssrc == self.peer_ssrc:
                        self.bye_received = True
        return packets

    def _read_reports(self, reports: list[RtcpReceiverInfo], now: float) -> None:
        """Take what a report block says about our stream: loss, jitter and (with LSR) the round-trip time."""
        for block in reports:
            if block.ssrc != self.ssrc:
                continue
            self.remote_fraction_lost = block.fraction_lost / 256
            self.remote_packets_lost = block.packets_lost
            self.remote_jitter_ms = block.jitter * 1000 / self.clock_rate
            if block.lsr == 0:
                continue
            for sent in self._sent_srs:
                if sent.lsr == block.lsr:
                    rtt = now - sent.sent_at - block.dlsr / 65536
                    if rtt > -0.001:
                        self.rtt_ms = max(0.0, rtt * 1000)
                    break

    # --- outgoing RTCP ----------------------------------------------------------------------------------------

    def report(self, now: float, wallclock: float) -> bytes | None:
        """The compound report (SR or RR, then SDES) when one is due, else None; `wallclock` is Unix time."""
        if now < self._start(now):
            return None
        data = self._compound(now, wallclock)
        self._initial = False
        self._avg_rtcp_size += (len(data) + IP_UDP_OVERHEAD - self._avg_rtcp_size) / 16
        self.next_report_at = now + self.interval()
        return data

    def bye(self, now: float) -> bytes:
        """A final compound packet: RR (with a block about the peer if we heard it), SDES and BYE."""
        self._start(now)
        return self._compound(now, None) + bytes(RtcpByePacket(sources=[self.ssrc]))

    def interval(self) -> float:
        """A randomised report interval (RFC 3550 §6.3.1 / A.7, without timer reconsideration or its compensation)."""
        we_sent = self.ssrc in self._senders or self.packets_sent != self._sent_at_report
        members = len(self._members | {self.ssrc})
        senders = len(self._senders | ({self.ssrc} if we_sent else set()))
        rtcp_bw = self.session_bandwidth * RTCP_BANDWIDTH_FRACTION / 8
        n = members
        if senders <= members * SENDER_BANDWIDTH_FRACTION:
            if we_sent:
                rtcp_bw *= SENDER_BANDWIDTH_FRACTION
                n = senders
            else:
                rtcp_bw *= 1 - SENDER_BANDWIDTH_FRACTION
                n = members - senders
        minimum = MIN_INTERVAL / 2 if self._initial else MIN_INTERVAL
        deterministic = max(minimum, n * self._avg_rtcp_size / rtcp_bw) if rtcp_bw > 0 else minimum
        return deterministic * self.rng.uniform(0.5, 1.5)

    def _start(self, now: float) -> float:
        """When the next report is due, scheduling the first one when the session first sees the time."""
        if self.next_report_at is None:
            self.next_report_at = now + self.interval()
        return self.next_report_at

    def _compound(self, now: float, wallclock: float | None) -> bytes:
        """SR (if we sent since the last report and have the wallclock) or RR, with a block about the peer, + SDES."""
        blocks = []
        received = self.stats.received_count
        if self.peer_ssrc is not None and received != self._received_at_report:
            self.last_reception = reception = self.stats.close_interval()
            blocks.append(report_block(self.peer_ssrc, reception, now, self._last_sr.get(self.peer_ssrc)))
            self._remember(self._senders, self.peer_ssrc)
        head: RtcpSrPacket | RtcpRrPacket
        if wallclock is not None and self.packets_sent != self._sent_at_report and self._last_sent is not None:
            ntp = ntp_timestamp(wallclock)
            last_timestamp, sent_at = self._last_sent
            rtp_timestamp = (last_timestamp + round((now - sent_at) * self.clock_rate)) & 0xFFFF_FFFF
            info = RtcpSenderInfo(ntp_timestamp=ntp, rtp_timestamp=rtp_timestamp,
                                  packet_count=self.packets_sent & 0xFFFF_FFFF,
                                  octet_count=self.octets_sent & 0xFFFF_FFFF)
            head = RtcpSrPacket(ssrc=self.ssrc, sender_info=info, reports=blocks)
            self._sent_srs = [*self._sent_srs[-(_SENT_SR_MEMORY - 1):], _SentSr(ntp_middle(ntp), now)]
            self._remember(self._senders, self.ssrc)
        else:
            head = RtcpRrPacket(ssrc=self.ssrc, reports=blocks)
            self._senders.discard(self.ssrc)
        sdes = RtcpSdesPacket(chunks=[RtcpSourceInfo(ssrc=self.ssrc, items=[(SDES_CNAME, self._cname_bytes)])])
        self._sent_at_report, self._received_at_report = self.packets_sent, received
        return bytes(head) + bytes(sdes)

    @staticmethod
    def _remember(members: set[int], ssrc: int) -> None:
        """Add an SSRC to a bounded set (a flood of forged SSRCs must not grow it without end)."""
        if ssrc not in members and len(members) >= _PEER_MEMORY:
            members.clear()
        members.add(ssrc)
