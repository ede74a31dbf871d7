"""The numeric state of many RTP streams, one row (slot) each, worked a whole tick at a time with numpy.

A bridge with a thousand participants cannot afford Python work per packet beyond reading it and checking
where it came from. So a session's packet path ends by appending one tuple to `StreamTable.pending`, and the
mixer tick then does, for every stream at once:

- `ingest()`: RTCP reception statistics of every packet (RFC 3550 A.1 sequence accounting with its
  probation of wild jumps, A.8 jitter) and, for byte-stream codecs (G.711, G.722: one byte per 8 kHz clock
  tick), the adaptive jitter buffer: timestamps unwrapped, late packets and duplicates dropped and counted,
  payload bytes scattered into a per-slot ring (where packets overlap, the later arrival's bytes win), the
  target delay following the interarrival jitter between 20 and 200 ms, a timestamp jump or a marked
  talkspurt after silence restarting playout, a stream running far ahead skipped forward;
- `pop(slots)`: each slot's next 20 ms (160 clock ticks) with a flag for whether any of it arrived, priming
  until the target delay is buffered, holding the playout point while nothing is buffered ahead (a late
  stream is delayed, not discarded), and shrinking a standing excess by skipping half of it;
- `stamp_headers(slots, ...)`: the RTP headers of our outgoing packets, sequence numbers and timestamps gapless,
  with the counters an RTCP sender report needs.

Several packets of one slot within a tick are processed in arrival order ("waves": the k-th packet of every
slot together), so the outcome is exactly that of handling them one by one. Each ring cell remembers the
(32-bit) timestamp it holds, so stale data is never read and nothing needs clearing; the ring (4096 ticks)
is longer than the deepest buffer plus the longest packet, so live data is never overwritten. The first frame
of each ring row is mirrored after its end, so every 20 ms window is one contiguous run of cells: a tick
reads all slots' windows as whole-row copies, without per-sample index arithmetic.
"""

from __future__ import annotations

from operator import itemgetter

import numpy as np
import numpy.typing as npt

from .rtcp import Reception

I64 = npt.NDArray[np.int64]
F64 = npt.NDArray[np.float64]
Bools = npt.NDArray[np.bool_]
Codes = npt.NDArray[np.uint8]

FRAME = 160
"""Clock ticks per 20 ms at the 8 kHz RTP clock of every byte-stream codec."""
RING = 4096
"""Ring length in clock ticks (512 ms): above 200 ms of delay, a frame and the largest packet. A power of two."""
_MASK = RING - 1
_WIDTH = RING + 160
"""Cells per ring row: the ring and the mirror of its first frame."""
MIN_DELAY = 160
MAX_DELAY = 1600
JUMP = 16000
"""A timestamp this far (2 s) from the playout point restarts playout."""
SHRINK_AFTER_TICKS = 25
RTP_SEQ_MOD = 1 << 16
MAX_DROPOUT = 3000
MAX_MISORDER = 100
LOST_MIN, LOST_MAX = -(1 << 23), (1 << 23) - 1
_NONE = np.iinfo(np.int64).max

HEADER_DTYPE = np.dtype([("flags", "u1"), ("marker_pt", "u1"), ("sequence", ">u2"), ("timestamp", ">u4"),
                         ("ssrc", ">u4")])
"""The 12-byte fixed RTP header as a numpy record (big-endian fields)."""


class StreamTable:
    """Receive and send state of RTP streams, a slot each; see the module docstring."""

    # Receive, jitter buffer (byte-stream slots): the ring and the absolute timestamp each cell holds.
    ring: Codes
    stamp: npt.NDArray[np.uint32]
    fill: Codes
    clock: F64
    frame_clock: I64
    playing: Bools
    cursor: I64
    last_ext: I64
    has_ext: Bools
    first: I64
    """Earliest buffered timestamp while priming."""
    head: I64
    """End of the newest buffered packet."""
    played_to: I64
    """End of the last frame `pop` found audio in (what concealment continues from)."""
    _ring_windows: Codes
    _stamp_windows: npt.NDArray[np.uint32]
    jitter: F64
    transit: F64
    has_transit: Bools
    waiting: Bools
    over_target: I64
    packets: I64
    late: I64
    duplicates: I64
    underruns: I64
    skipped_frames: I64
    resyncs: I64
    # Receive, RTCP statistics (every slot; RFC 3550 A.1 names).
    rx_started: Bools
    base_seq: I64
    max_seq: I64
    cycles: I64
    bad_seq: I64
    received: I64
    expected_prior: I64
    received_prior: I64
    rx_jitter: F64
    last_arrival: F64
    last_timestamp: I64
    # Send.
    send_sequence: I64
    send_timestamp: I64
    ssrc: I64
    payload_type: I64
    marker_next: Bools
    packets_sent: I64
    octets_sent: I64
    last_sent_timestamp: I64
    last_sent_at: F64

    def __init__(self, capacity: int = 16) -> None:
        self.raw: list[tuple[int, bytes, float]] = []
        """Byte-stream audio packets since the last `ingest()` whose header is the bare 12 bytes (the usual
        case): (slot, the whole packet, arrival). Their fields are read at ingest, all at once."""
        self.pending: list[tuple[int, int, int, bool, float, bytes | None]] = []
        """Other packets since the last `ingest()`: (slot, sequence, timestamp, marker, arrival, payload); the
        payload is None for packets that only count towards statistics (telephone events, CN, frame codecs)."""
        self.capacity = 0
        self._free: list[int] = []
        self._grow(max(1, capacity))

    # -- slots ------------------------------------------------------------------------------------

    def _grow(self, capacity: int) -> None:
        old = self.capacity

        def grown(name: str, shape: tuple[int, ...], dtype: type, fill: object = 0) -> None:
            array: npt.NDArray[np.generic] = np.full(shape, fill, dtype=dtype)
            if old:
                array[:old] = getattr(self, name)
            setattr(self, name, array)

        # receive: jitter buffer (byte-stream slots)
        grown("ring", (capacity, _WIDTH), np.uint8)
        grown("stamp", (capacity, _WIDTH), np.uint32, 0xFFFF_FFFF)
        itemsize = self.ring.itemsize
        self._ring_windows = np.lib.stride_tricks.as_strided(
            self.ring.reshape(-1), shape=(capacity * _WIDTH - FRAME + 1, FRAME), strides=(itemsize, itemsize))
        itemsize = self.stamp.itemsize
        self._stamp_windows = np.lib.stride_tricks.as_strided(
            self.stamp.reshape(-1), shape=(capacity * _WIDTH - FRAME + 1, FRAME), strides=(itemsize, itemsize))
        grown("fill", (capacity,), np.uint8)
        grown("clock", (capacity,), np.float64, 8000.0)
        grown("frame_clock", (capacity,), np.int64, FRAME)
        grown("playing", (capacity,), np.bool_)
        grown("cursor", (capacity,), np.int64)
        grown("last_ext", (capacity,), np.int64)
        grown("has_ext", (capacity,), np.bool_)
        grown("first", (capacity,), np.int64, _NONE)
        grown("head", (capacity,), np.int64, -_NONE)
        grown("played_to", (capacity,), np.int64)
        grown("jitter", (capacity,), np.float64)
        grown("transit", (capacity,), np.float64)
        grown("has_transit", (capacity,), np.bool_)
        grown("waiting", (capacity,), np.bool_)
        grown("over_target", (capacity,), np.int64)
        for name in ("packets", "late", "duplicates", "underruns", "skipped_frames", "resyncs"):
            grown(name, (capacity,), np.int64)
        # receive: RTCP statistics (every slot)
        grown("rx_started", (capacity,), np.bool_)
        grown("base_seq", (capacity,), np.int64)
        grown("max_seq", (capacity,), np.int64)
        grown("cycles", (capacity,), np.int64)
        grown("bad_seq", (capacity,), np.int64, RTP_SEQ_MOD + 1)
        grown("received", (capacity,), np.int64)
        grown("expected_prior", (capacity,), np.int64)
        grown("received_prior", (capacity,), np.int64)
        grown("rx_jitter", (capacity,), np.float64)
        grown("last_arrival", (capacity,), np.float64)
        grown("last_timestamp", (capacity,), np.int64)
        # send
        grown("send_sequence", (capacity,), np.int64)
        grown("send_timestamp", (capacity,), np.int64)
        grown("ssrc", (capacity,), np.int64)
        grown("payload_type", (capacity,), np.int64)
        grown("marker_next", (capacity,), np.bool_, True)
        grown("packets_sent", (capacity,), np.int64)
        grown("octets_sent", (capacity,), np.int64)
        grown("last_sent_timestamp", (capacity,), np.int64)
        grown("last_sent_at", (capacity,), np.float64)
        self._free.extend(range(capacity - 1, old - 1, -1))
        self.capacity = capacity

    def allocate(self, *, clock_rate: int, frame_clock: int, fill: int, payload_type: int, ssrc: int,
                 sequence: int, timestamp: int) -> int:
        """A fresh slot for a new stream (the table doubles when full)."""
        if not self._free:
            self._grow(self.capacity * 2)
        slot = self._free.pop()
        self._reset_slot(slot)
        self.configure(slot, clock_rate=clock_rate, frame_clock=frame_clock, fill=fill, payload_type=payload_type)
        self.ssrc[slot] = ssrc & 0xFFFF_FFFF
        self.send_sequence[slot] = sequence & 0xFFFF
        self.send_timestamp[slot] = timestamp & 0xFFFF_FFFF
        return slot

    def release(self, slot: int) -> None:
        """Give a slot back; packets still pending for it are ignored."""
        self._drop_pending(slot)
        self._free.append(slot)

    def configure(self, slot: int, *, clock_rate: int, frame_clock: int, fill: int, payload_type: int) -> None:
        """Set a slot's codec (a new codec mid-call: the audio of the old one, buffered or pending, is dropped)."""
        self._drop_pending(slot)
        self.clock[slot] = float(clock_rate)
        self.frame_clock[slot] = frame_clock
        self.fill[slot] = fill
        self.payload_type[slot] = payload_type
        self.reset_buffer(slot)
        self.marker_next[slot] = True

    def _drop_pending(self, slot: int) -> None:
        self.raw = [entry for entry in self.raw if entry[0] != slot]
        self.pending = [entry for entry in self.pending if entry[0] != slot]

    def _reset_slot(self, slot: int) -> None:
        for name in ("jitter", "over_target", "packets", "late", "duplicates", "underruns", "skipped_frames",
                     "resyncs", "rx_started", "cycles", "received", "expected_prior", "received_prior", "rx_jitter",
                     "packets_sent", "octets_sent"):
            getattr(self, name)[slot] = 0
        self.bad_seq[slot] = RTP_SEQ_MOD + 1
        self.last_sent_timestamp[slot] = 0
        self.last_sent_at[slot] = 0.0
        self.reset_buffer(slot)

    def reset_buffer(self, slot: int) -> None:
        """Restart a slot's playout (a new codec); its statistics stay."""
        self._reset_playout(np.array([slot], dtype=np.intp))

    def reset_reception(self, slot: int) -> None:
        """Start the RTCP reception statistics afresh (a new clock rate)."""
        self.rx_started[slot] = False

    def new_source(self, slot: int) -> None:
        """The peer's stream restarted under a new SSRC: drop what is pending of the old one, start afresh."""
        self._drop_pending(slot)
        self.reset_buffer(slot)
        self.reset_reception(slot)

    def _reset_playout(self, slots: npt.NDArray[np.intp]) -> None:
        self.stamp[slots] = 0xFFFF_FFFF  # a new stream's timestamps may land on the old one's: forget the ring
        self.playing[slots] = False
        self.has_ext[slots] = False
        self.has_transit[slots] = False
        self.waiting[slots] = False
        self.over_target[slots] = 0
        self.first[slots] = _NONE
        self.head[slots] = -_NONE

    # -- derived figures --------------------------------------------------------------------------

    def target_delay(self, slots: npt.NDArray[np.intp] | slice = slice(None)) -> I64:
        """The delay playout aims at, in clock ticks: a frame plus three times the jitter, within 20-200 ms."""
        target: I64 = np.clip(FRAME + 3 * self.jitter[slots], MIN_DELAY, MAX_DELAY).astype(np.int64)
        return target

    def buffered(self, slot: int) -> int:
        """Clock ticks buffered ahead of the playout point (or in all, before playout starts)."""
        if self.head[slot] == -_NONE:
            return 0
        return max(0, int(self.head[slot] - (self.cursor[slot] if self.playing[slot] else self.first[slot])))

    def reception(self, slot: int, *, close_interval: bool) -> Reception:
        """The report block figures of a slot; `close_interval` starts a new fraction-lost interval (A.3)."""
        expected = int(self.cycles[slot] + self.max_seq[slot] - self.base_seq[slot] + 1) if self.rx_started[slot] \
            else 0
        received = int(self.received[slot])
        expected_interval = expected - int(self.expected_prior[slot])
        received_interval = received - int(self.received_prior[slot])
        lost_interval = expected_interval - received_interval
        fraction = 0 if expected_interval <= 0 or lost_interval <= 0 else min(255, (lost_interval << 8)
                                                                                 // expected_interval)
        if close_interval:
            self.expected_prior[slot], self.received_prior[slot] = expected, received
        return Reception(fraction, max(LOST_MIN, min(LOST_MAX, expected - received)),
                         int(self.cycles[slot] + self.max_seq[slot]) & 0xFFFF_FFFF,
                         min(0xFFFF_FFFF, int(self.rx_jitter[slot])))

    # -- receiving --------------------------------------------------------------------------------

    def ingest(self) -> None:
        """Take every pending packet into the statistics and, for byte streams, into the jitter buffer."""
        if not self.raw and not self.pending:
            return
        raw, self.raw = self.raw, []
        pending, self.pending = self.pending, []
        count = len(raw) + len(pending)
        slots = np.empty(count, dtype=np.intp)
        sequence = np.empty(count, dtype=np.int64)
        timestamp = np.empty(count, dtype=np.int64)
        marker = np.empty(count, dtype=np.bool_)
        arrival = np.empty(count, dtype=np.float64)
        lengths = np.zeros(count, dtype=np.int64)
        """Payload length of packets for the jitter buffer (0 for statistics-only packets)."""
        starts = np.zeros(count, dtype=np.int64)
        """Where each payload starts in `data`."""
        chunks: list[bytes] = []
        if raw:
            # Whole packets with a bare 12-byte header: their fields are read here, for all of them at once.
            n = len(raw)
            slots[:n] = np.fromiter(map(itemgetter(0), raw), dtype=np.intp, count=n)
            arrival[:n] = np.fromiter(map(itemgetter(2), raw), dtype=np.float64, count=n)
            packets = list(map(itemgetter(1), raw))
            sizes = np.fromiter(map(len, packets), dtype=np.int64, count=n)
            chunks.append(b"".join(packets))
            head = np.cumsum(sizes) - sizes
            wire = np.frombuffer(chunks[0], dtype=np.uint8)
            marker[:n] = wire[head + 1] >= 0x80
            sequence[:n] = (wire[head + 2].astype(np.int64) << 8) | wire[head + 3]
            timestamp[:n] = (wire[head + 4].astype(np.int64) << 24) | (wire[head + 5].astype(np.int64) << 16) \
                | (wire[head + 6].astype(np.int64) << 8) | wire[head + 7]
            starts[:n] = head + 12
            lengths[:n] = sizes - 12
        if pending:
            n, m = len(raw), len(pending)
            slots[n:] = np.fromiter((entry[0] for entry in pending), dtype=np.intp, count=m)
            sequence[n:] = np.fromiter((entry[1] for entry in pending), dtype=np.int64, count=m)
            timestamp[n:] = np.fromiter((entry[2] for entry in pending), dtype=np.int64, count=m)
            marker[n:] = np.fromiter((entry[3] for entry in pending), dtype=np.bool_, count=m)
            arrival[n:] = np.fromiter((entry[4] for entry in pending), dtype=np.float64, count=m)
            payloads = [entry[5] or b"" for entry in pending]
            lengths[n:] = np.fromiter((len(payload) for payload in payloads), dtype=np.int64, count=m)
            offset = len(chunks[0]) if chunks else 0
            starts[n:] = offset + np.cumsum(lengths[n:]) - lengths[n:]
            chunks.append(b"".join(payloads))
        data = np.frombuffer(b"".join(chunks) if len(chunks) > 1 else chunks[0], dtype=np.uint8)
        if np.bincount(slots).max() == 1:  # one packet per slot, the usual tick: a single wave
            waves = [np.arange(count)]
        else:
            # Waves: the k-th packet of every slot together (in the order they were appended; a statistics-only
            # packet appended between two raw ones of its slot in the same tick is taken after them).
            order = np.argsort(slots, kind="stable")
            sorted_slots = slots[order]
            group_start = np.flatnonzero(np.r_[True, sorted_slots[1:] != sorted_slots[:-1]])
            group_sizes = np.diff(np.r_[group_start, count])
            rank = np.empty(count, dtype=np.intp)
            rank[order] = np.arange(count) - np.repeat(group_start, group_sizes)
            waves = [np.flatnonzero(rank == wave) for wave in range(int(rank.max()) + 1)]
        for members in waves:
            self._count(slots[members], sequence[members], timestamp[members], arrival[members])
            audio = members[lengths[members] > 0]
            if audio.size:
                self._buffer(slots[audio], timestamp[audio], marker[audio], arrival[audio], data, starts[audio],
                             lengths[audio])

    def _count(self, s: npt.NDArray[np.intp], sequence: I64, timestamp: I64, arrival: F64) -> None:
        """RFC 3550 A.1 and A.8 for one packet of each slot in `s`."""
        counted = np.ones(len(s), dtype=np.bool_)
        start = ~self.rx_started[s]
        udelta = (sequence - self.max_seq[s]) & (RTP_SEQ_MOD - 1)
        in_order = ~start & (udelta < MAX_DROPOUT)
        jump = ~start & ~in_order & (udelta <= RTP_SEQ_MOD - MAX_MISORDER)
        restart = jump & (sequence == self.bad_seq[s])
        probation = jump & ~restart
        self.bad_seq[s[probation]] = (sequence[probation] + 1) & (RTP_SEQ_MOD - 1)
        counted[probation] = False
        wrapped = in_order & (sequence < self.max_seq[s])
        self.cycles[s[wrapped]] += RTP_SEQ_MOD
        self.max_seq[s[in_order]] = sequence[in_order]
        fresh = start | restart
        fs = s[fresh]
        self.base_seq[fs] = self.max_seq[fs] = sequence[fresh]
        self.bad_seq[fs] = RTP_SEQ_MOD + 1
        self.cycles[fs] = 0
        self.received[fs] = self.expected_prior[fs] = self.received_prior[fs] = 0
        self.rx_started[fs] = True
        # A.8 jitter: not for the packet that (re)starts the count, nor for one held back on probation.
        update = counted & ~restart & (self.received[s] > 0)
        us = s[update]
        elapsed = ((timestamp[update] - self.last_timestamp[us] + (1 << 31)) & 0xFFFF_FFFF) - (1 << 31)
        d = np.abs((arrival[update] - self.last_arrival[us]) * self.clock[us] - elapsed)
        self.rx_jitter[us] += (d - self.rx_jitter[us]) / 16
        cs = s[counted]
        self.last_arrival[cs] = arrival[counted]
        self.last_timestamp[cs] = timestamp[counted]
        self.received[cs] += 1

    def _buffer(self, s: npt.NDArray[np.intp], timestamp: I64, marker: Bools, arrival: F64, data: Codes,
                starts: I64, lengths: I64) -> None:
        """The jitter buffer's push for one packet of each slot in `s` (payloads: `data[starts : starts + lengths]`)."""
        self.packets[s] += 1
        ext = self._extend(s, timestamp)
        playing = self.playing[s]
        far = playing & (np.abs(ext - self.cursor[s]) > JUMP)
        talkspurt = playing & marker & self.waiting[s]
        resync = far | talkspurt
        if resync.any():
            rs = s[resync]
            self.resyncs[rs] += 1
            self._reset_playout(rs)
            ext[resync] = self._extend(rs, timestamp[resync])
            playing = self.playing[s]
        late = playing & (ext + lengths <= self.cursor[s])
        self.late[s[late]] += 1
        keep = ~late
        # Interarrival jitter for the playout target (A.8 on the extended timestamps, like the per-stream form).
        ks = s[keep]
        transit = arrival[keep] * self.clock[ks] - ext[keep]
        known = self.has_transit[ks]
        self.jitter[ks[known]] += (np.abs(transit[known] - self.transit[ks[known]]) - self.jitter[ks[known]]) / 16
        self.transit[ks] = transit
        self.has_transit[ks] = True
        # A duplicate is a packet whose whole span is already here; one that only overlaps is written over it.
        last = ext + np.maximum(lengths, 1) - 1
        duplicate = keep & (self.stamp[s, ext & _MASK] == (ext & 0xFFFF_FFFF)) \
            & (self.stamp[s, last & _MASK] == (last & 0xFFFF_FFFF))
        self.duplicates[s[duplicate]] += 1
        write = keep & ~duplicate & (lengths > 0)
        if not write.any():
            return
        ws, wext, wlen = s[write], ext[write], lengths[write]
        priming = ~self.playing[ws]
        self.head[ws] = np.maximum(self.head[ws], wext + wlen)
        self.first[ws[priming]] = np.minimum(self.first[ws[priming]], wext[priming])
        # Far more than the deepest delay buffered: play on (or start) at the target delay behind the newest.
        # Deciding this before writing keeps the ring from ever holding a span longer than itself.
        reference = np.where(self.playing[ws], self.cursor[ws], self.first[ws])
        ahead = self.head[ws] - reference > MAX_DELAY + FRAME
        if ahead.any():
            hs = ws[ahead]
            starting = ~self.playing[hs]
            self.cursor[hs[starting]] = self.first[hs[starting]]
            self.playing[hs] = True
            self._skip_to(hs, self.head[hs] - self.target_delay(hs))
            live = ~self.playing[ws] | (wext + wlen > self.cursor[ws])
            chosen = np.flatnonzero(write)[live]
            ws, wext, wlen = ws[live], wext[live], wlen[live]
        else:
            chosen = np.flatnonzero(write)
        starts = starts[chosen]
        if wlen.size and (wlen == wlen[0]).all():
            # One packet size (the usual case): packets that lie within the ring away from its mirrored first frame
            # are written as whole rows through window views, the others cell by cell below.
            length = int(wlen[0])
            offset = wext & _MASK
            whole = (offset >= FRAME) & (offset + length <= RING)
            if whole.any():
                self._write_rows(ws[whole] * _WIDTH + offset[whole], wext[whole], data, starts[whole], length)
                rest = ~whole
                ws, wext, wlen, starts = ws[rest], wext[rest], wlen[rest], starts[rest]
        total = int(wlen.sum())
        if total == 0:
            return
        ramp = np.arange(total) - np.repeat(np.cumsum(wlen) - wlen, wlen)
        positions = np.repeat(wext, wlen) + ramp
        cells = np.repeat(ws * _WIDTH, wlen) + (positions & _MASK)
        data = data[np.repeat(starts, wlen) + ramp]
        stamps = (positions & 0xFFFF_FFFF).astype(np.uint32)
        mirrored = (positions & _MASK) < FRAME
        if mirrored.any():
            cells = np.concatenate([cells, cells[mirrored] + RING])
            data = np.concatenate([data, data[mirrored]])
            stamps = np.concatenate([stamps, stamps[mirrored]])
        self.ring.reshape(-1)[cells] = data
        self.stamp.reshape(-1)[cells] = stamps

    def _write_rows(self, cells: I64, ext: I64, data: Codes, starts: I64, length: int) -> None:
        """Write payloads of `length` bytes (at `data[starts]`) to the ring cells starting at `cells`, whole rows."""
        flat_ring, flat_stamp = self.ring.reshape(-1), self.stamp.reshape(-1)
        windows = flat_ring.size - length + 1
        ring_rows = np.lib.stride_tricks.as_strided(flat_ring, shape=(windows, length), strides=(1, 1))
        stamp_rows = np.lib.stride_tricks.as_strided(flat_stamp, shape=(windows, length),
                                                     strides=(flat_stamp.itemsize, flat_stamp.itemsize))
        payloads = np.lib.stride_tricks.as_strided(data, shape=(data.size - length + 1, length), strides=(1, 1))
        ring_rows[cells] = payloads[starts]
        stamp_rows[cells] = (ext & 0xFFFF_FFFF).astype(np.uint32)[:, None] + np.arange(length, dtype=np.uint32)

    def _extend(self, s: npt.NDArray[np.intp], timestamp: I64) -> I64:
        """Unwrap 32-bit timestamps against each slot's highest so far."""
        known = self.has_ext[s]
        last = self.last_ext[s]
        ext = np.where(known, last + (((timestamp - last + (1 << 31)) & 0xFFFF_FFFF) - (1 << 31)), timestamp)
        self.last_ext[s] = np.where(known, np.maximum(last, ext), timestamp)
        self.has_ext[s] = True
        return ext

    def _skip_to(self, s: npt.NDArray[np.intp], position: I64) -> None:
        forward = position > self.cursor[s]
        fs, fp = s[forward], position[forward]
        self.skipped_frames[fs] += (fp - self.cursor[fs] + FRAME - 1) // FRAME
        self.cursor[fs] = fp

    def pop(self, slots: npt.NDArray[np.intp]) -> tuple[Codes, Bools]:
        """The next 20 ms of each byte-stream slot: (codes (len(slots), 160), whether any of each arrived).

        Missing bytes of a frame that partly arrived are the slot's fill byte; a frame with nothing at all (a
        loss, a slot priming or waiting for a late stream) is flagged False and is for the caller to conceal.
        """
        count = len(slots)
        codes = np.empty((count, FRAME), dtype=np.uint8)
        got = np.zeros(count, dtype=np.bool_)
        if count == 0:
            return codes, got
        target = self.target_delay(slots)
        prime = ~self.playing[slots] & (self.first[slots] != _NONE) & \
            (self.head[slots] - self.first[slots] >= target)
        ps = slots[prime]
        self.playing[ps] = True
        self.cursor[ps] = self.first[ps]
        playing = self.playing[slots]
        underrun = playing & (self.head[slots] <= self.cursor[slots])
        self.underruns[slots[underrun & ~self.waiting[slots]]] += 1
        self.waiting[slots[underrun]] = True
        go = playing & ~underrun
        self.waiting[slots[go]] = False
        excess = self.head[slots] - self.cursor[slots] - target
        big = go & (excess >= FRAME)
        self.over_target[slots[go & ~big]] = 0
        self.over_target[slots[big]] += 1
        shrink = big & (self.over_target[slots] >= SHRINK_AFTER_TICKS)
        if shrink.any():
            ss = slots[shrink]
            self.over_target[ss] = 0
            frames = np.maximum(1, excess[shrink] // FRAME // 2)
            self._skip_to(ss, self.cursor[ss] + frames * FRAME)
        rows = np.flatnonzero(go)
        gs = slots[rows]
        cursor = self.cursor[gs]
        starts = gs * _WIDTH + (cursor & _MASK)
        expected = ((cursor & 0xFFFF_FFFF).astype(np.uint32)[:, None] + np.arange(FRAME, dtype=np.uint32))
        valid = self._stamp_windows[starts] == expected
        windows = self._ring_windows[starts]
        if not valid.all():
            windows = np.where(valid, windows, self.fill[gs][:, None])
        if rows.size == count:
            codes = windows
        else:
            codes[:] = self.fill[slots][:, None]
            codes[rows] = windows
        found = valid.any(axis=1)
        got[rows] = found
        self.played_to[gs[found]] = cursor[found] + FRAME
        self.cursor[gs] += FRAME
        return codes, got

    def history(self, slot: int, length: int = 2 * FRAME) -> Codes:
        """The last `length` clock ticks a slot played, still in its ring (the fill byte where nothing was)."""
        end = int(self.played_to[slot])
        positions = np.arange(end - length, end, dtype=np.int64)
        cells = positions & _MASK
        valid = self.stamp[slot, cells] == (positions & 0xFFFF_FFFF)
        codes: Codes = np.where(valid, self.ring[slot, cells], self.fill[slot]).astype(np.uint8)
        return codes

    # -- sending ----------------------------------------------------------------------------------

    def stamp_headers(self, slots: npt.NDArray[np.intp], payload_sizes: I64, now: float) -> npt.NDArray[np.void]:
        """The RTP headers of one packet per slot; sequence numbers and timestamps then move on by a frame."""
        headers = np.empty(len(slots), dtype=HEADER_DTYPE)
        headers["flags"] = 0x80
        headers["marker_pt"] = self.payload_type[slots] | np.where(self.marker_next[slots], 0x80, 0)
        headers["sequence"] = self.send_sequence[slots]
        timestamps = self.send_timestamp[slots]
        headers["timestamp"] = timestamps
        headers["ssrc"] = self.ssrc[slots]
        self.marker_next[slots] = False
        self.send_sequence[slots] = (self.send_sequence[slots] + 1) & 0xFFFF
        self.send_timestamp[slots] = (timestamps + self.frame_clock[slots]) & 0xFFFF_FFFF
        self.packets_sent[slots] += 1
        self.octets_sent[slots] += payload_sizes
        self.last_sent_timestamp[slots] = timestamps
        self.last_sent_at[slots] = now
        return headers

    def skip(self, slots: npt.NDArray[np.intp]) -> None:
        """A tick without a packet (hold, inactive): time moves on, the next packet starts a talkspurt."""
        self.send_timestamp[slots] = (self.send_timestamp[slots] + self.frame_clock[slots]) & 0xFFFF_FFFF
        self.marker_next[slots] = True


class SlotStatistics:
    """One slot's RTCP reception statistics, as `rtp.rtcp.RtcpSession` reads them."""

    __slots__ = ("slot", "table")

    def __init__(self, table: StreamTable, slot: int) -> None:
        self.table = table
        self.slot = slot

    @property
    def received_count(self) -> int:
        """Packets received from the current source."""
        return int(self.table.received[self.slot])

    @property
    def lost(self) -> int:
        """Cumulative packets lost."""
        return self.table.reception(self.slot, close_interval=False).packets_lost

    @property
    def jitter_ms(self) -> float:
        """Interarrival jitter in milliseconds."""
        return float(self.table.rx_jitter[self.slot] * 1000 / self.table.clock[self.slot])

    def close_interval(self) -> Reception:
        """The report block figures, starting a new fraction-lost interval."""
        return self.table.reception(self.slot, close_interval=True)
