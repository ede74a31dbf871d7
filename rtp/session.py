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

import numpy as np

from .codecs import AudioCodec
from .dtmf import DtmfDigit, DtmfReceiver
from .jitter import PacketBuffer
from .packet import HEADER, Address, RtpParseError, read_header
from .rtcp import RtcpSession
from .source_lock import SourceLock, Verdict
from .srtp import SrtpContext, SrtpError
from .stream_table import SlotStatistics, StreamTable

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
    telephone_events: int = 0
    comfort_noise: int = 0
    rtcp_received: int = 0
    dropped_malformed: int = 0
    dropped_payload_type: int = 0
    dropped_srtp: int = 0
    dropped_rtcp: int = 0
    send_errors: int = 0


class RtpSession:
    """The media of one call leg: what we accept from the peer, and how we stamp what we send.

    Its numbers (jitter buffer of byte-stream codecs, RTCP counters, sequence and timestamp) live in a
    `StreamTable` slot, shared with every other session of the engine so that the tick works on all of them at
    once; a session made without a table gets a private one.
    """

    def __init__(self, params: StreamParams, *, now: float, cname: str = "confbridge",
                 timeout: float = RTP_TIMEOUT, table: StreamTable | None = None) -> None:
        self.table = table if table is not None else StreamTable(capacity=1)
        self.ssrc = secrets.randbits(32)
        codec = params.codec
        self.slot = self.table.allocate(clock_rate=codec.clock_rate, frame_clock=codec.frame_clock,
                                        fill=codec.fill_byte, payload_type=params.payload_type, ssrc=self.ssrc,
                                        sequence=secrets.randbits(16), timestamp=secrets.randbits(32))
        self.stats = RtpStats()
        self.timeout = timeout
        self.first_packet_at: float | None = None
        self.last_packet_at: float | None = None
        self.rtcp = RtcpSession(self.ssrc, cname, codec.clock_rate,
                                statistics=SlotStatistics(self.table, self.slot))
        self._timed_out = False
        self._outbox: list[tuple[bytes, Address, bool]] = []
        self._rtcp_source: Address | None = None
        self._idle_since = now
        self.lock = SourceLock(locked_to=params.remote if params.remote_reachable else None,
                               preferred_host=params.signalling_host, now=now)
        self._accepted: tuple[Address, int] | None = None
        """(source, SSRC) the lock accepted last: the same again needs no further lock checks."""
        self._fast: tuple[Address, int, bytes] | None = None
        """(source, audio payload type, SSRC bytes) of plain byte-stream RTP that may skip every check but these
        (see `receive`); None while anything else is possible (learning, SRTP, a frame codec)."""
        self.params = params
        self.remote: Address | None = params.remote
        """Where we send RTP: the SDP address, then (symmetric RTP) the locked source."""
        self.packets: PacketBuffer | None = self._new_packet_buffer(codec)
        """The jitter buffer of a frame codec (Opus); byte-stream codecs are buffered in the table."""
        self.dtmf = DtmfReceiver(params.telephone_event_clock_rate or codec.clock_rate)

    def close(self) -> None:
        """Give the table slot back (the session is over)."""
        self.table.release(self.slot)

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
        codec = params.codec
        if codec is not old.codec or params.payload_type != old.payload_type:
            self.table.configure(self.slot, clock_rate=codec.clock_rate, frame_clock=codec.frame_clock,
                                 fill=codec.fill_byte, payload_type=params.payload_type)
            if codec.clock_rate != old.codec.clock_rate:
                self.table.reset_reception(self.slot)
            self.packets = self._new_packet_buffer(codec)
            self.rtcp.clock_rate = codec.clock_rate
        if params.telephone_event_clock_rate != old.telephone_event_clock_rate or codec is not old.codec:
            self.dtmf = DtmfReceiver(params.telephone_event_clock_rate or codec.clock_rate)
        if (params.remote, params.remote_reachable) != (old.remote, old.remote_reachable):
            self.lock.relock(locked_to=params.remote if params.remote_reachable else None,
                             preferred_host=params.signalling_host, now=now)
            self.remote = self.lock.address or params.remote
            self._accepted = None
        self._fast = None
        if params.peer_sends and not old.peer_sends:
            self._idle_since = now
            self._timed_out = False

    @staticmethod
    def _new_packet_buffer(codec: AudioCodec) -> PacketBuffer | None:
        return None if codec.byte_stream else PacketBuffer(codec.clock_rate, codec.frame_clock)

    # -- receiving ----------------------------------------------------------------------------------

    def receive(self, data: bytes, source: Address, now: float) -> MediaEvent | None:
        """Take one datagram from the RTP port (RTP, or RTCP when multiplexed).

        The usual packet (the accepted source and SSRC, the audio payload type, a bare 12-byte header, no SRTP) is
        appended whole to the table, whose ingest reads the headers of all such packets at once.
        """
        fast = self._fast
        if fast is not None and source == fast[0] and len(data) > 12 and data[0] == 0x80 \
                and data[1] & 0x7F == fast[1] and data[8:12] == fast[2]:
            self.table.raw.append((self.slot, data, now))
            self.last_packet_at = now
            self.stats.packets_received += 1
            return None
        return self._receive(data, source, now)

    def _receive(self, data: bytes, source: Address, now: float) -> MediaEvent | None:
        if len(data) < 12:
            if not self.lock.source_allowed(source):
                return None
            self.stats.dropped_malformed += 1
            return None
        if 192 <= data[1] <= 223:
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
        if data[0] == 0x80:  # version 2, no padding, extension or CSRCs: the header is the first 12 bytes
            _, second, sequence, timestamp, ssrc = HEADER.unpack_from(data)
            payload_type, marker, start, end = second & 0x7F, second > 0x7F, 12, len(data)
        else:
            try:
                header = read_header(data)
            except RtpParseError:
                self.stats.dropped_malformed += 1
                return None
            payload_type, marker, sequence = header.payload_type, header.marker, header.sequence_number
            timestamp, ssrc, start, end = header.timestamp, header.ssrc, header.payload_start, header.payload_end
        params = self.params
        if payload_type != params.payload_type and payload_type != params.telephone_event_payload_type \
                and payload_type != params.comfort_noise_payload_type:
            self.stats.dropped_payload_type += 1
            return None
        if (source, ssrc) != self._accepted:
            lock = self.lock
            if lock.check(source, ssrc, sequence, now) is not Verdict.ACCEPT:
                return None
            self._accepted = (source, ssrc)
            self._fast = None
            self.remote = lock.address
            if self.rtcp.note_source(ssrc, now):
                self.table.new_source(self.slot)
                if self.packets is not None:
                    self.packets.reset()
                self.dtmf.reset()
        if self._fast is None and params.srtp is None and params.codec.byte_stream:
            self._fast = (source, params.payload_type, ssrc.to_bytes(4, "big"))
        self.last_packet_at = now
        payload = data[start:end]
        if payload_type == params.payload_type:
            if start == 12 and end == len(data) and end > 12 and self.packets is None:
                self.table.raw.append((self.slot, data, now))  # (the clear packet, for SRTP)
                return self._counted(now)
            return self._audio(payload, sequence, timestamp, marker, now)
        self.table.pending.append((self.slot, sequence, timestamp, marker, now, None))
        if payload_type == params.telephone_event_payload_type:
            self.stats.telephone_events += 1
            digit = self.dtmf.receive(timestamp, payload, marker, now)
            return DigitReceived(digit) if digit is not None else None
        self.stats.comfort_noise += 1  # RFC 3389: the peer went quiet; the buffer runs dry and we play silence
        return None

    def _audio(self, payload: bytes, sequence: int, timestamp: int, marker: bool, now: float) -> MediaEvent | None:
        packets = self.packets
        if packets is None:
            self.table.pending.append((self.slot, sequence, timestamp, marker, now, payload or None))
        else:
            try:
                duration = self.codec.packet_duration(payload)
            except ValueError:
                self.stats.dropped_malformed += 1
                return None
            self.table.pending.append((self.slot, sequence, timestamp, marker, now, None))
            packets.push(timestamp, payload, duration, marker, now)
        return self._counted(now)

    def _counted(self, now: float) -> MediaEvent | None:
        """One more audio packet; the first starts the stream."""
        self.stats.packets_received += 1
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
        """The next 20 ms on its own (the engine pops every slot at once): bytes for byte-stream codecs, the
        packets for frame codecs, or None."""
        if self.packets is not None:
            self.table.ingest()
            return self.packets.pop()
        self.table.ingest()
        codes, got = self.table.pop(np.array([self.slot], dtype=np.intp))
        return codes[0].tobytes() if got[0] else None

    # -- sending ------------------------------------------------------------------------------------

    def packetize(self, payload: bytes, now: float) -> bytes | None:
        """One outgoing (S)RTP packet carrying `payload` on its own (the engine stamps every slot at once)."""
        header = self.table.stamp_headers(np.array([self.slot], dtype=np.intp), np.array([len(payload)]), now)
        return self.finish_packet(header.tobytes() + payload)

    def finish_packet(self, packet: bytes) -> bytes | None:
        """A stamped packet as it goes on the wire: protected when the stream is SRTP."""
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
        self.table.skip(np.array([self.slot], dtype=np.intp))

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
            deadlines.append(self._last_heard() + self.timeout)
        return min(deadlines) if deadlines else None

    def handle_timer(self, now: float, wallclock: float) -> Sequence[MediaEvent]:
        """Do what is due at `now`: an RTCP report, a key press whose end packets were lost, the timeout."""
        events: list[MediaEvent] = []
        digit = self.dtmf.poll(now)
        if digit is not None:
            events.append(DigitReceived(digit))
        table, slot = self.table, self.slot
        self.rtcp.update_sent(int(table.packets_sent[slot]), int(table.octets_sent[slot]),
                              int(table.last_sent_timestamp[slot]), float(table.last_sent_at[slot]))
        report = self.rtcp.report(now, wallclock)
        if report is not None:
            self._queue_rtcp(report)
        idle = now - self._last_heard()
        if self.params.peer_sends and not self._timed_out and idle >= self.timeout:
            self._timed_out = True
            events.append(MediaTimeout(idle))
        return events

    def idle_seconds(self, now: float) -> float:
        """Seconds since the peer was last heard (RTP or RTCP); 0 while it is not expected to send (on hold)."""
        return max(0.0, now - self._last_heard()) if self.params.peer_sends else 0.0

    def _last_heard(self) -> float:
        """When the peer was last heard from (RTP or RTCP), or when listening began."""
        last = self.last_packet_at
        return self._idle_since if last is None or last < self._idle_since else last

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
        table, slot = self.table, self.slot
        if self.packets is not None:
            stats = self.packets.stats
            late, duplicates, underruns = stats.late, stats.duplicates, stats.underruns
            delay_ms = 1000 * self.packets.target_delay / self.packets.clock_rate
        else:
            late, duplicates, underruns = int(table.late[slot]), int(table.duplicates[slot]), \
                int(table.underruns[slot])
            delay_ms = 1000 * int(table.target_delay(np.array([slot]))[0]) / self.codec.clock_rate
        srtp = self.params.srtp
        dropped = {
            "wrong_source": self.lock.drops[Verdict.WRONG_SOURCE],
            "wrong_ssrc": self.lock.drops[Verdict.WRONG_SSRC],
            "learning": self.lock.drops[Verdict.LEARNING],
            "malformed": self.stats.dropped_malformed,
            "payload_type": self.stats.dropped_payload_type,
            "srtp": self.stats.dropped_srtp,
            "rtcp": self.stats.dropped_rtcp,
            "late": late,
            "duplicate": duplicates,
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
            "packets_sent": int(table.packets_sent[slot]),
            "packets_lost": rtcp.packets_lost,
            "fraction_lost": round(rtcp.fraction_lost, 4),
            "jitter_ms": round(rtcp.jitter_ms, 2),
            "rtt_ms": round(rtcp.rtt_ms, 2) if rtcp.rtt_ms is not None else None,
            "remote_fraction_lost": rtcp.remote_fraction_lost,
            "remote_jitter_ms": round(rtcp.remote_jitter_ms, 2) if rtcp.remote_jitter_ms is not None else None,
            "rtcp_received": self.stats.rtcp_received,
            "jitter_buffer_ms": round(delay_ms, 1),
            "concealed_underruns": underruns,
            "ssrc_changes": self.lock.ssrc_changes,
            "telephone_events": self.stats.telephone_events,
            "dropped": dropped,
        }
