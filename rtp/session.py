"""One RTP audio stream between us and a peer, with its RTCP, sans-IO.

In: `receive(data, source, now)` for every datagram on the RTP port, `receive_rtcp(...)` for the RTCP port.
Out: `pop()` gives the jitter buffer's next 20 ms for the mixer tick; `packetize(payload, now)` stamps (and
protects) our outgoing frames with gapless sequence numbers and timestamps; `handle_timer(now, wallclock)`
does what is due (RTCP reports, DTMF whose end packets were lost, the inactivity timeout) and
`datagrams_to_send()` hands over the RTCP it produced. Events come back from `receive` and `handle_timer`.

What a packet goes through: the source lock's cheap address check (before any decryption is spent on it),
SRTP unprotect, header parsing, the payload type, then the source lock's verdict on address and SSRC
(rtp.source_lock); only then does it count as the peer's. Every drop is counted by reason.
"""

from __future__ import annotations

import logging
import secrets
from collections.abc import Sequence
from dataclasses import dataclass

from .codecs import AudioCodec
from .dtmf import DtmfDigit, DtmfReceiver
from .jitter import ByteStreamBuffer, PacketBuffer
from .packet import HEADER, Address, RtpParseError, is_rtcp, read_header
from .rtcp import RtcpSession
from .source_lock import SourceLock, Verdict
from .srtp import SrtpContext, SrtpError

logger = logging.getLogger(__name__)

RTP_TIMEOUT = 30.0
"""Seconds without a packet from a peer that should be sending before the stream is declared dead."""


@dataclass(frozen=True)
class StreamParams:
    """What offer/answer agreed for one audio stream (built by the signalling layer)."""

    codec: AudioCodec
    payload_type: int
    telephone_event_payload_type: int | None = None
    telephone_event_clock_rate: int | None = None
    comfort_noise_payload_type: int | None = None
    remote: Address | None = None
    """Where the SDP says to send RTP (None: not known yet)."""
    remote_rtcp: Address | None = None
    """Where the SDP says to send RTCP (a=rtcp, else the RTP port + 1); ignored with rtcp-mux."""
    remote_reachable: bool = False
    """The SDP address can be trusted as is: lock to it; otherwise latch to the first source."""
    signalling_host: str | None = None
    """The address the signalling came from: preferred when latching."""
    rtcp_mux: bool = False
    peer_sends: bool = True
    """The peer's direction includes sending (sendrecv/sendonly): its silence counts towards the timeout."""
    srtp: SrtpContext | None = None


@dataclass(frozen=True)
class AudioStarted:
    """The first audio packet from the peer was accepted."""


@dataclass(frozen=True)
class DigitReceived:
    """The peer finished a key press (RFC 4733)."""

    digit: DtmfDigit


@dataclass(frozen=True)
class MediaTimeout:
    """Nothing has come from a peer that should be sending for `idle` seconds."""

    idle: float


MediaEvent = AudioStarted | DigitReceived | MediaTimeout


@dataclass
class RtpStats:
    """Counters of one session."""

    packets_received: int = 0
    bytes_received: int = 0
    packets_sent: int = 0
    telephone_events: int = 0
    comfort_noise: int = 0
    rtcp_received: int = 0
    dropped_malformed: int = 0
    dropped_payload_type: int = 0
    dropped_srtp: int = 0
    dropped_rtcp: int = 0
    send_errors: int = 0


Buffer = ByteStreamBuffer | PacketBuffer


class RtpSession:
    """The media of one call leg: what we accept from the peer, and how we stamp what we send."""

    def __init__(self, params: StreamParams, *, now: float, cname: str = "confbridge",
                 timeout: float = RTP_TIMEOUT) -> None:
        self.ssrc = secrets.randbits(32)
        self.stats = RtpStats()
        self.timeout = timeout
        self.first_packet_at: float | None = None
        self.last_packet_at: float | None = None
        self.rtcp = RtcpSession(self.ssrc, cname, params.codec.clock_rate)
        self._sequence = secrets.randbits(16)
        self._timestamp = secrets.randbits(32)
        self._marker_next = True
        self._timed_out = False
        self._outbox: list[tuple[bytes, Address, bool]] = []
        self._rtcp_source: Address | None = None
        self._idle_since = now
        self.lock = SourceLock(locked_to=params.remote if params.remote_reachable else None,
                               preferred_host=params.signalling_host, now=now)
        self.params = params
        self.remote: Address | None = params.remote
        """Where we send RTP: the SDP address, then (symmetric RTP) the locked source."""
        self.buffer: Buffer = self._new_buffer(params.codec)
        self.dtmf = DtmfReceiver(params.telephone_event_clock_rate or params.codec.clock_rate)

    # -- negotiation --------------------------------------------------------------------------------

    @property
    def codec(self) -> AudioCodec:
        """The codec the stream currently carries."""
        return self.params.codec

    @property
    def secure(self) -> bool:
        """Whether the stream is SRTP."""
        return self.params.srtp is not None

    def update(self, params: StreamParams, now: float) -> None:
        """Apply a renegotiated stream (re-INVITE/UPDATE): codec, payload types, address, keys, direction."""
        old = self.params
        self.params = params
        if params.codec is not old.codec:
            self.buffer = self._new_buffer(params.codec)
            self.rtcp.clock_rate = params.codec.clock_rate
            self._marker_next = True
        if params.telephone_event_clock_rate != old.telephone_event_clock_rate or params.codec is not old.codec:
            self.dtmf = DtmfReceiver(params.telephone_event_clock_rate or params.codec.clock_rate)
        if (params.remote, params.remote_reachable) != (old.remote, old.remote_reachable):
            self.lock.relock(locked_to=params.remote if params.remote_reachable else None,
                             preferred_host=params.signalling_host, now=now)
            self.remote = self.lock.address or params.remote
        if params.peer_sends and not old.peer_sends:
            self._idle_since = now
            self._timed_out = False

    @staticmethod
    def _new_buffer(codec: AudioCodec) -> Buffer:
        if codec.byte_stream:
            return ByteStreamBuffer(codec.clock_rate, codec.frame_clock, codec.fill_byte)
        return PacketBuffer(codec.clock_rate, codec.frame_clock)

    # -- receiving ----------------------------------------------------------------------------------

    def receive(self, data: bytes, source: Address, now: float) -> MediaEvent | None:
        """Take one datagram from the RTP port (RTP, or RTCP when multiplexed)."""
        if is_rtcp(data):
            self.receive_rtcp(data, source, now)
            return None
        if not self.lock.source_allowed(source):
            return None
        srtp = self.params.srtp
        if srtp is not None:
            clear = srtp.unprotect(data)
            if clear is None:
                self.stats.dropped_srtp += 1
                return None
            data = clear
        try:
            header = read_header(data)
        except RtpParseError:
            self.stats.dropped_malformed += 1
            return None
        params = self.params
        payload_type = header.payload_type
        if payload_type != params.payload_type and payload_type != params.telephone_event_payload_type \
                and payload_type != params.comfort_noise_payload_type:
            self.stats.dropped_payload_type += 1
            return None
        changes = self.lock.ssrc_changes
        if self.lock.check(source, header.ssrc, header.sequence_number, now) is not Verdict.ACCEPT:
            return None
        if changes != self.lock.ssrc_changes:
            self.buffer.reset()
            self.dtmf.reset()
        self.remote = self.lock.address
        self.last_packet_at = self._idle_since = now
        self.rtcp.on_rtp_received(header.ssrc, header.sequence_number, header.timestamp, now)
        payload = bytes(data[header.payload_start : header.payload_end])
        if payload_type == params.payload_type:
            return self._audio(payload, header.timestamp, header.marker, now)
        if payload_type == params.telephone_event_payload_type:
            self.stats.telephone_events += 1
            digit = self.dtmf.receive(header.timestamp, payload, header.marker, now)
            return DigitReceived(digit) if digit is not None else None
        self.stats.comfort_noise += 1  # RFC 3389: the peer went quiet; the buffer runs dry and we play silence
        return None

    def _audio(self, payload: bytes, timestamp: int, marker: bool, now: float) -> MediaEvent | None:
        buffer = self.buffer
        if isinstance(buffer, ByteStreamBuffer):
            buffer.push(timestamp, payload, marker, now)
        else:
            try:
                duration = self.codec.packet_duration(payload)
            except ValueError:
                self.stats.dropped_malformed += 1
                return None
            buffer.push(timestamp, payload, duration, marker, now)
        self.stats.packets_received += 1
        self.stats.bytes_received += len(payload)
        if self.first_packet_at is None:
            self.first_packet_at = now
            return AudioStarted()
        return None

    def receive_rtcp(self, data: bytes, source: Address, now: float) -> None:
        """Take one datagram from the RTCP port: the peer's reports (from the peer's host only)."""
        expected = self.lock.address or self.params.remote
        if expected is None or source[0] != expected[0]:
            self.stats.dropped_rtcp += 1
            return
        srtp = self.params.srtp
        if srtp is not None:
            clear = srtp.unprotect_rtcp(data)
            if clear is None:
                self.stats.dropped_srtp += 1
                return
            data = clear
        if not self.rtcp.receive(data, now):
            self.stats.dropped_rtcp += 1
            return
        self.stats.rtcp_received += 1
        self._rtcp_source = source
        self._idle_since = now

    def pop(self) -> bytes | list[bytes] | None:
        """The jitter buffer's next 20 ms: bytes for byte-stream codecs, the packets for frame codecs, or None."""
        return self.buffer.pop()

    # -- sending ------------------------------------------------------------------------------------

    def packetize(self, payload: bytes, now: float) -> bytes | None:
        """One outgoing (S)RTP packet carrying `payload`; sequence and timestamp advance by one frame."""
        marker = 0x80 if self._marker_next else 0
        self._marker_next = False
        timestamp = self._timestamp
        packet = HEADER.pack(0x80, marker | self.params.payload_type, self._sequence, timestamp, self.ssrc) + payload
        self._sequence = (self._sequence + 1) & 0xFFFF
        self._timestamp = (timestamp + self.params.codec.frame_clock) & 0xFFFFFFFF
        self.stats.packets_sent += 1
        self.rtcp.on_rtp_sent(timestamp, len(payload), now)
        srtp = self.params.srtp
        if srtp is not None:
            try:
                return srtp.protect(packet)
            except SrtpError:
                self.stats.send_errors += 1
                return None
        return packet

    def skip_frame(self) -> None:
        """A tick without a packet from us (hold, inactive): time moves on, and the next packet starts a talkspurt."""
        self._timestamp = (self._timestamp + self.params.codec.frame_clock) & 0xFFFFFFFF
        self._marker_next = True

    @property
    def rtcp_destination(self) -> Address | None:
        """Where our RTCP goes: where the peer's came from, else the SDP's RTCP address."""
        if self.params.rtcp_mux:
            return self.remote
        if self._rtcp_source is not None:
            return self._rtcp_source
        if self.params.remote_rtcp is not None:
            return self.params.remote_rtcp
        remote = self.remote
        return (remote[0], remote[1] + 1) if remote is not None else None

    # -- timers -------------------------------------------------------------------------------------

    def get_timer(self) -> float | None:
        """When `handle_timer` next has something to do."""
        deadlines = [self.rtcp.next_report_at] if self.rtcp.next_report_at is not None else []
        if self.params.peer_sends and not self._timed_out:
            deadlines.append(self._idle_since + self.timeout)
        return min(deadlines) if deadlines else None

    def handle_timer(self, now: float, wallclock: float) -> Sequence[MediaEvent]:
        """Do what is due at `now`: an RTCP report, a key press whose end packets were lost, the timeout."""
        events: list[MediaEvent] = []
        digit = self.dtmf.poll(now)
        if digit is not None:
            events.append(DigitReceived(digit))
        report = self.rtcp.report(now, wallclock)
        if report is not None:
            self._queue_rtcp(report)
        idle = now - self._idle_since
        if self.params.peer_sends and not self._timed_out and idle >= self.timeout:
            self._timed_out = True
            events.append(MediaTimeout(idle))
        return events

    def bye(self, now: float) -> None:
        """Queue an RTCP BYE (the stream is ending)."""
        self._queue_rtcp(self.rtcp.bye(now))

    def _queue_rtcp(self, compound: bytes) -> None:
        destination = self.rtcp_destination
        if destination is None:
            return
        srtp = self.params.srtp
        if srtp is not None:
            try:
                compound = srtp.protect_rtcp(compound)
            except SrtpError:
                self.stats.send_errors += 1
                return
        self._outbox.append((compound, destination, not self.params.rtcp_mux))

    def datagrams_to_send(self) -> list[tuple[bytes, Address, bool]]:
        """RTCP waiting to go out: (data, destination, whether it goes from the RTCP port rather than the RTP one)."""
        outbox, self._outbox = self._outbox, []
        return outbox

    # -- figures ------------------------------------------------------------------------------------

    def snapshot(self) -> dict[str, object]:
        """Every figure of the stream, for the conferencecall's media statistics and logs."""
        rtcp = self.rtcp
        buffer_stats = self.buffer.stats
        srtp = self.params.srtp
        dropped = {
            "wrong_source": self.lock.drops[Verdict.WRONG_SOURCE],
            "wrong_ssrc": self.lock.drops[Verdict.WRONG_SSRC],
            "learning": self.lock.drops[Verdict.LEARNING],
            "malformed": self.stats.dropped_malformed,
            "payload_type": self.stats.dropped_payload_type,
            "srtp": self.stats.dropped_srtp,
            "rtcp": self.stats.dropped_rtcp,
            "late": buffer_stats.late,
            "duplicate": buffer_stats.duplicates,
        }
        return {
            "codec": str(self.codec),
            "payload_type": self.params.payload_type,
            "srtp": srtp is not None,
            "srtp_auth_failed": srtp.stats["auth_failed"] if srtp else 0,
            "srtp_replayed": srtp.stats["replayed"] if srtp else 0,
            "remote": f"{self.remote[0]}:{self.remote[1]}" if self.remote else None,
            "source_locked": self.lock.locked,
            "packets_received": self.stats.packets_received,
            "packets_sent": self.stats.packets_sent,
            "packets_lost": rtcp.packets_lost,
            "fraction_lost": round(rtcp.fraction_lost, 4),
            "jitter_ms": round(rtcp.jitter_ms, 2),
            "rtt_ms": round(rtcp.rtt_ms, 2) if rtcp.rtt_ms is not None else None,
            "remote_fraction_lost": rtcp.remote_fraction_lost,
            "remote_jitter_ms": round(rtcp.remote_jitter_ms, 2) if rtcp.remote_jitter_ms is not None else None,
            "rtcp_received": self.stats.rtcp_received,
            "jitter_buffer_ms": round(1000 * self.buffer.target_delay / self.buffer.clock_rate, 1),
            "concealed_underruns": buffer_stats.underruns,
            "ssrc_changes": self.lock.ssrc_changes,
            "telephone_events": self.stats.telephone_events,
            "dropped": dropped,
        }
