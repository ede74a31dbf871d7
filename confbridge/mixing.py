"""One mixer tick for every conference mixing at one rate: all participants as rows of numpy arrays.

`Layout` is the arrangement of one rate's participants (conference by conference) with everything the tick
needs as arrays: table slots, codec groups, gains, masks. It is rebuilt only when someone joins, leaves,
changes codec or has a control changed, so a tick runs without Python work per participant except where a
codec or SRTP demands it (G.722 and Opus coders, concealment of a lost frame, SRTP protection) and the one
`sendto` per packet.

`Mixer.run(layout)` does one tick for a layout:
  1. every byte-stream participant's 20 ms from the `StreamTable` in one call; G.711 of all of them decoded
     straight to float in one lookup per law, G.722 and Opus per participant; missing frames concealed (from
     what the slot played last, still in its jitter buffer; a stream that was silent stays silent for free);
  2. every participant resampled to the conference's rate, one batched call per rate pair, with filter state
     kept per participant; input gain, mute and hold as one multiply of the rows they concern;
  3. talk detection for all; the optional noise gate zeroes the rows of those not talking;
  4. exact float sums per conference (blocks of equal-sized conferences at once); a participant contributing
     nothing (silent, muted, gated) hears exactly its conference's total, so all such participants of a
     conference share one output, resampled, limited and encoded once per codec ("encode once, send many"),
     while talkers get total minus own signal;
  5. output gain and deafness, resampling back, the soft-knee limiter, 16-bit rounding, encoding;
  6. RTP headers for every packet in one call, packets of plain G.711 assembled as one byte array, sent;
  7. recordings: each recording conference's total (and, with tracks, each participant's own signal),
     resampled to the recording rate, handed to the recorder thread.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from time import perf_counter
from typing import TYPE_CHECKING, cast

import numpy as np
import numpy.typing as npt

from mixer.limiter import to_pcm16
from mixer.mixdown import conference_totals
from mixer.resample import BatchResampler
from mixer.talk import TalkDetector
from rtp.codecs import FrameEncoder, G711Codec, G722Codec
from rtp.g711 import DECODE_TABLES, DECODE_TO_FLOAT, ENCODE_TABLES
from rtp.packet import Address
from rtp.playout import SILENT_AFTER
from rtp.session import RtpSession
from rtp.stream_table import HEADER_DTYPE, StreamTable

if TYPE_CHECKING:
    from recorder.worker import RecorderWorker

    from .media import ConferenceMedia, MediaLeg

Frames = npt.NDArray[np.float32]
Pcm = npt.NDArray[np.int16]
Rows = npt.NDArray[np.intp]
Codes = npt.NDArray[np.uint8]

G711_FRAME = 160
QUIET_DBFS = -90.0
"""A participant whose last frame was below this (digital silence) is concealed with silence, at no cost."""
STAGES = ("ingest", "playout", "decode", "mix", "encode", "send", "record")
"""The stages of a tick, as `Mixer.stage_seconds` counts them."""
_G711_PACKET = np.dtype([("header", HEADER_DTYPE), ("payload", np.uint8, (G711_FRAME,))])


@dataclass(frozen=True)
class TalkingChanged:
    """A participant started or stopped talking."""

    talking: bool


def _runs(values: Rows) -> tuple[Rows, Rows]:
    """(the distinct values, each value's position among them) of a sorted array: `np.unique` without sorting."""
    if values.size == 0:
        return values, values
    starts = np.empty(values.size, dtype=np.bool_)
    starts[0] = True
    np.not_equal(values[1:], values[:-1], out=starts[1:])
    return values[starts], np.cumsum(starts) - 1


def _rows(values: Sequence[int] | npt.NDArray[np.bool_]) -> Rows:
    if isinstance(values, np.ndarray):
        return np.flatnonzero(values).astype(np.intp)
    return np.asarray(values, dtype=np.intp)


@dataclass
class Layout:
    """One mixing rate's participants as rows, conference by conference, with their per-row arrays."""

    rate: int
    conferences: list[ConferenceMedia]
    legs: list[MediaLeg]
    slots: Rows
    starts: Rows
    conference_of_row: Rows
    g711: Rows
    """Rows of G.711 participants, μ-law ones first."""
    ulaw_count: int
    law_of_row: Rows
    """Each row's G.711 law (0 μ-law, 1 A-law; -1 for other codecs)."""
    g722: Rows
    opus: Rows
    native: npt.NDArray[np.int64]
    gain_in: Frames
    gain_out: Frames
    deaf: npt.NDArray[np.bool_]
    sending: Rows
    idle_slots: Rows
    senders: list[Callable[[bytes, tuple[str, int]], object]]
    """Each row's socket `sendto`."""
    plain: list[bool]
    """Whether each row's packets go out as they are (no SRTP)."""
    sessions: list[RtpSession]
    all_plain: bool = field(init=False)
    byte_stream: Rows = field(init=False)
    g711_in_order: bool = field(init=False)
    """Whether the G.711 rows are rows 0, 1, 2, ... (every row μ-law, or the laws already in row order)."""
    scaled: Rows = field(init=False)
    """Rows whose input gain is not 1 (muted and held rows have 0)."""
    sending_by_rate: list[tuple[int, Rows]] = field(init=False)
    """The sending rows grouped by their codec's native rate."""

    def __post_init__(self) -> None:
        self.byte_stream = np.concatenate([self.g711, self.g722])
        self.g711_in_order = bool(np.array_equal(self.g711, np.arange(self.g711.size)))
        self.scaled = np.flatnonzero(self.gain_in != 1.0).astype(np.intp)
        native = self.native[self.sending]
        self.sending_by_rate = [(int(rate), self.sending[native == rate]) for rate in np.unique(native)]
        self.all_plain = all(self.plain)

    @property
    def frame(self) -> int:
        """Samples per tick at the mixing rate."""
        return self.rate // 50

    @classmethod
    def build(cls, rate: int, conferences: list[ConferenceMedia]) -> Layout:
        """The rows of `conferences` (each with at least one leg) and their arrays."""
        legs: list[MediaLeg] = []
        starts: list[int] = []
        for media in conferences:
            starts.append(len(legs))
            legs.extend(media.legs.values())
        codecs = [leg.codec for leg in legs]
        laws = {row: codec.law for row, codec in enumerate(codecs) if isinstance(codec, G711Codec)}
        g711 = sorted(laws, key=laws.__getitem__)
        heard = np.array([leg.mixing and not leg.muted and not leg.held for leg in legs], dtype=np.bool_)
        return cls(
            rate=rate,
            conferences=conferences,
            legs=legs,
            slots=np.array([leg.slot for leg in legs], dtype=np.intp),
            starts=np.asarray(starts, dtype=np.intp),
            conference_of_row=np.repeat(np.arange(len(starts)), np.diff([*starts, len(legs)])).astype(np.intp),
            g711=_rows(g711),
            ulaw_count=sum(1 for law in laws.values() if law == 0),
            law_of_row=np.array([laws.get(row, -1) for row in range(len(legs))], dtype=np.intp),
            g722=_rows([row for row, codec in enumerate(codecs) if isinstance(codec, G722Codec)]),
            opus=_rows([row for row, codec in enumerate(codecs) if not codec.byte_stream]),
            native=np.array([codec.sample_rate for codec in codecs], dtype=np.int64),
            gain_in=np.array([leg.gain_in if heard[row] else 0.0 for row, leg in enumerate(legs)],
                             dtype=np.float32),
            gain_out=np.array([leg.gain_out for leg in legs], dtype=np.float32),
            deaf=np.array([leg.deaf or leg.held for leg in legs], dtype=np.bool_),
            sending=_rows([row for row, leg in enumerate(legs) if leg.sending]),
            idle_slots=np.array([leg.slot for leg in legs if not leg.sending], dtype=np.intp),
            senders=[leg.socket.sock.sendto for leg in legs],
            plain=[leg.session.params.srtp is None for leg in legs],
            sessions=[leg.session for leg in legs],
        )


@dataclass
class _Outputs:
    """What one native rate's sending rows get this tick: PCM rows and, per sending row, which one."""

    rows: Rows
    pcm: Pcm
    index: Rows
    shared_conferences: Rows
    """The conference (index in the layout) of each shared output; they follow the rows' own outputs in `pcm`."""
    shared_start: int
    """The row of `pcm` where the shared outputs begin."""


class Mixer:
    """Per-participant state that lives across ticks (indexed by table slot) and the tick itself."""

    def __init__(self, table: StreamTable, recorder: RecorderWorker, *, recording_rate: int, noise_gate: bool,
                 talk: TalkDetector) -> None:
        self.table = table
        self.recorder = recorder
        self.recording_rate = recording_rate
        self.noise_gate = noise_gate
        self.talk = talk
        self._resamplers: dict[tuple[int, int], BatchResampler] = {}
        self._histories: dict[tuple[str, int, int], Frames] = {}
        """Per-slot filter state: ("in" | "out" | "track", from, to) -> (capacity, history length)."""
        self._group_histories: dict[tuple[str, int, int], Frames] = {}
        """Filter state of shared outputs and recordings: (conference id, from, to) -> history."""
        self.group_encoders: dict[tuple[str, str], FrameEncoder] = {}
        """Shared encoders of stateful codecs: (conference id, codec name) -> encoder."""
        capacity = table.capacity
        self.lost_ticks = np.full(capacity, SILENT_AFTER, dtype=np.int64)
        self.shared = np.zeros(capacity, dtype=np.bool_)
        self.stage_seconds: dict[str, float] = dict.fromkeys(STAGES, 0.0)
        """Seconds spent in each stage of the tick, summed over every tick so far."""

    # -- per-slot state ---------------------------------------------------------------------------

    def fit(self) -> None:
        """Grow the per-slot arrays with the table."""
        capacity = self.table.capacity
        old = self.lost_ticks.size
        if capacity <= old:
            return
        self.lost_ticks = np.concatenate([self.lost_ticks, np.full(capacity - old, SILENT_AFTER, np.int64)])
        self.shared = np.concatenate([self.shared, np.zeros(capacity - old, np.bool_)])
        for key, history in self._histories.items():
            self._histories[key] = np.concatenate([history, np.zeros((capacity - old, history.shape[1]),
                                                                     np.float32)])

    def reset_slot(self, slot: int) -> None:
        """A new participant in a slot (or a new codec): nothing heard yet, filters silent."""
        self.lost_ticks[slot] = SILENT_AFTER
        self.shared[slot] = False
        for history in self._histories.values():
            history[slot] = 0.0
        self.talk.reset(np.array([slot], dtype=np.intp))

    def forget_conference(self, conference_id: str) -> None:
        """A conference's shared encoders and filter states (it has no media any more)."""
        for encoder_key in [key for key in self.group_encoders if key[0] == conference_id]:
            del self.group_encoders[encoder_key]
        for history_key in [key for key in self._group_histories if key[0] == conference_id]:
            del self._group_histories[history_key]

    def _resampler(self, from_rate: int, to_rate: int) -> BatchResampler:
        resampler = self._resamplers.get((from_rate, to_rate))
        if resampler is None:
            resampler = self._resamplers[(from_rate, to_rate)] = BatchResampler(from_rate, to_rate)
        return resampler

    def _convert(self, kind: str, from_rate: int, to_rate: int, frames: Frames, slots: Rows) -> Frames:
        """Resample rows whose filter state is kept per slot."""
        resampler = self._resampler(from_rate, to_rate)
        key = (kind, from_rate, to_rate)
        history = self._histories.get(key)
        if history is None:
            history = self._histories[key] = np.zeros((self.table.capacity, resampler.history_length), np.float32)
        converted, history[slots] = resampler.process(frames, history[slots])
        return converted

    def _convert_groups(self, keys: list[str], from_rate: int, to_rate: int, frames: Frames) -> Frames:
        """Resample rows whose filter state is kept per conference (shared outputs, recordings)."""
        resampler = self._resampler(from_rate, to_rate)
        blank = np.zeros(resampler.history_length, np.float32)
        history = np.stack([self._group_histories.get((key, from_rate, to_rate), blank) for key in keys])
        converted, history = resampler.process(frames, history)
        for index, key in enumerate(keys):
            self._group_histories[(key, from_rate, to_rate)] = history[index]
        return converted

    # -- the tick ---------------------------------------------------------------------------------

    def run(self, layout: Layout, now: float, events: list[tuple[MediaLeg, TalkingChanged]]) -> None:
        """One tick of every conference in `layout`; talk changes are appended to `events`.

        The time each stage takes is added to `stage_seconds`.
        """
        seconds = self.stage_seconds
        started_at = perf_counter()
        codes, got, lost = self._playout(layout)
        playout_done = perf_counter()
        frames = self._decode(layout, codes, got, lost)
        decode_done = perf_counter()
        totals = self._mix(layout, frames, events)
        mix_done = perf_counter()
        if layout.sending.size:
            g711_rows, g711_payload, payloads = self._encode_outputs(layout, frames, totals)
            encode_done = perf_counter()
            self._transmit(layout, g711_rows, g711_payload, payloads, now)
        else:
            encode_done = perf_counter()
        if layout.idle_slots.size:
            self.table.skip(layout.idle_slots)
        send_done = perf_counter()
        self._record(layout, frames, totals)
        seconds["playout"] += playout_done - started_at
        seconds["decode"] += decode_done - playout_done
        seconds["mix"] += mix_done - decode_done
        seconds["encode"] += encode_done - mix_done
        seconds["send"] += send_done - encode_done
        seconds["record"] += perf_counter() - send_done

    def _playout(self, layout: Layout) -> tuple[Codes, npt.NDArray[np.bool_], npt.NDArray[np.int64]]:
        """The byte-stream rows' next 20 ms from the jitter buffers: (codes, which arrived, ticks lost before)."""
        slots = layout.slots[layout.byte_stream]
        codes, got = self.table.pop(slots)
        lost = self.lost_ticks[slots]
        self.lost_ticks[slots] = np.where(got, 0, np.minimum(lost + 1, SILENT_AFTER + 1))
        return codes, got, lost

    def _mix(self, layout: Layout, frames: Frames, events: list[tuple[MediaLeg, TalkingChanged]]) -> Frames:
        """Input gains (mute and hold are a gain of 0), talk detection, the noise gate; each conference's total."""
        slots = layout.slots
        if layout.scaled.size:  # muted, held, or with a gain: everyone else is taken as it is
            frames[layout.scaled] *= layout.gain_in[layout.scaled, None]
        started, stopped = self.talk.update(slots, frames)
        if started.size or stopped.size:
            by_slot = {int(slot): row for row, slot in enumerate(slots)}
            events.extend((layout.legs[by_slot[int(slot)]], TalkingChanged(True)) for slot in started)
            events.extend((layout.legs[by_slot[int(slot)]], TalkingChanged(False)) for slot in stopped)
        if self.noise_gate:
            frames[~self.talk.talking[slots]] = 0.0
        return conference_totals(frames, layout.starts)

    def _decode(self, layout: Layout, codes: Codes, got: npt.NDArray[np.bool_], lost: npt.NDArray[np.int64]) -> Frames:
        """Every participant's next 20 ms at the mixing rate (zero rows for silence)."""
        legs, slots = layout.legs, layout.slots
        native: dict[int, tuple[list[Rows], list[Pcm | Frames]]] = {}
        count = layout.g711.size
        if count:
            audio = np.empty((count, G711_FRAME), dtype=np.float32)
            ulaw = layout.ulaw_count
            if ulaw:
                np.take(DECODE_TO_FLOAT[0], codes[:ulaw], out=audio[:ulaw])
            if ulaw < count:
                np.take(DECODE_TO_FLOAT[1], codes[ulaw:count], out=audio[ulaw:])
            arrived, was_lost = got[:count], lost[:count]
            mend = np.flatnonzero(~arrived | (was_lost > 0))  # losses, and the frames that end them
            if mend.size:
                # A stream that was silent goes on silent: no concealment to compute (a flood of underruns
                # from hundreds of idle microphones must not cost a pitch search each).
                quiet = ~arrived[mend] & (self.talk.level_dbfs[slots[layout.g711[mend]]] < QUIET_DBFS)
                for index in mend[quiet]:
                    audio[index] = 0.0
                    legs[layout.g711[index]].playout.concealed_frames += int(was_lost[index] < SILENT_AFTER)
                for index in mend[~quiet]:
                    audio[index] = self._mend_g711(layout, int(layout.g711[index]), bool(arrived[index]),
                                                   int(was_lost[index]), audio[index])
            if count == len(legs) and layout.rate == 8000 and layout.g711_in_order:
                return audio  # every row G.711, in row order: the decoded block is the tick's frames
            native[8000] = ([layout.g711], [audio])
        for position, row in enumerate(layout.g722, start=count):
            playout = legs[row].playout
            if got[position]:
                decoded = playout.decode(codes[position].tobytes())
            elif lost[position] < SILENT_AFTER:
                decoded = playout.conceal()
            else:
                continue
            entry = native.setdefault(16000, ([], []))
            entry[0].append(np.array([row], dtype=np.intp))
            entry[1].append(decoded[None, :])
        for row in layout.opus:
            leg = legs[row]
            buffer = leg.session.packets
            if buffer is None:
                continue
            frame = leg.playout.next_packets(buffer.pop(), buffer)
            if frame is not None:
                entry = native.setdefault(leg.codec.sample_rate, ([], []))
                entry[0].append(np.array([row], dtype=np.intp))
                entry[1].append(frame[None, :])
        frames = np.zeros((len(legs), layout.frame), dtype=np.float32)
        for rate, (row_parts, pcm_parts) in native.items():
            rows = np.concatenate(row_parts)
            decoded = np.concatenate(pcm_parts).astype(np.float32, copy=False)
            if rate != layout.rate:
                decoded = self._convert("in", rate, layout.rate, decoded, slots[rows])
            frames[rows] = decoded
        return frames

    def _mend_g711(self, layout: Layout, row: int, arrived: bool, ticks_lost: int, decoded: Frames) -> Pcm | int:
        """A G.711 row whose frame is missing (concealed from what the slot played last, which is still in its
        jitter buffer) or follows a loss (cross-faded in); silence once a stream has been quiet for long."""
        playout = layout.legs[row].playout
        if arrived:
            return playout.resume(decoded.astype(np.int16))
        if ticks_lost >= SILENT_AFTER:
            return 0
        history = DECODE_TABLES[layout.law_of_row[row], self.table.history(int(layout.slots[row]))]
        return playout.conceal(history)

    def _encode_outputs(self, layout: Layout, frames: Frames,
                        totals: Frames) -> tuple[Rows, npt.NDArray[np.uint8] | None, dict[int, bytes]]:
        """Each sending participant's mix, shared where it can be, limited and encoded: (G.711 rows, their payloads,
        the payloads of other rows)."""
        contributes = frames.any(axis=1)
        unity = layout.gain_out == 1.0
        share_row = ~contributes & ~layout.deaf & unity
        payloads: dict[int, bytes] = {}
        g711_payload: npt.NDArray[np.uint8] | None = None
        g711_rows: Rows = np.zeros(0, dtype=np.intp)
        for rate, rows in layout.sending_by_rate:
            outputs = self._outputs(layout, rate, rows, frames, totals, share_row[rows])
            if rate == 8000:
                g711_payload = self._encode_g711(layout.law_of_row[rows], outputs)
                g711_rows = rows
            else:
                self._encode(layout, rows, outputs, payloads)
        return g711_rows, g711_payload, payloads

    def _outputs(self, layout: Layout, rate: int, rows: Rows, frames: Frames, totals: Frames,
                 share: npt.NDArray[np.bool_]) -> _Outputs:
        """The distinct outputs of one native rate's sending rows, at that rate, limited and rounded."""
        slots = layout.slots
        deaf = layout.deaf[rows]
        own = rows[~share & ~deaf]
        shared_rows = rows[share]
        conference = layout.conference_of_row
        shared_conferences, shared_index = _runs(conference[shared_rows])
        own_mix = totals[conference[own]] - frames[own]
        own_mix *= layout.gain_out[own][:, None]
        shared_mix = totals[shared_conferences]
        width = rate // 50
        if rate != layout.rate:
            switching = own[self.shared[slots[own]]]
            for row in switching:  # from a shared output to its own: continue the shared filter state exactly
                group = (layout.conferences[conference[row]].conference_id, layout.rate, rate)
                history = self._group_histories.get(group)
                per_slot = self._histories.get(("out", layout.rate, rate))
                if history is not None and per_slot is not None:
                    per_slot[slots[row]] = history
            own_mix = self._convert("out", layout.rate, rate, own_mix, slots[own]) if own.size \
                else np.zeros((0, width), np.float32)
            keys = [layout.conferences[c].conference_id for c in shared_conferences]
            shared_mix = self._convert_groups(keys, layout.rate, rate, shared_mix) if keys \
                else np.zeros((0, width), np.float32)
        self.shared[slots[shared_rows]] = True
        self.shared[slots[own]] = False
        pieces = [own_mix, shared_mix]
        if deaf.any():
            pieces.append(np.zeros((1, width), np.float32))
        pcm = to_pcm16(np.concatenate(pieces))
        index = np.empty(rows.size, dtype=np.intp)
        index[np.flatnonzero(~share & ~deaf)] = np.arange(own.size)
        index[np.flatnonzero(share)] = own.size + shared_index
        index[np.flatnonzero(deaf)] = own.size + shared_conferences.size
        return _Outputs(rows, pcm, index, shared_conferences, own.size)

    @staticmethod
    def _encode_g711(laws: Rows, outputs: _Outputs) -> npt.NDArray[np.uint8]:
        """Each sending row's G.711 payload: every distinct output encoded once in each law that needs it."""
        samples = outputs.pcm.view(np.uint16)
        if (laws == laws[0]).all():
            return np.take(ENCODE_TABLES[laws[0]], samples)[outputs.index]
        payload = np.empty((laws.size, G711_FRAME), dtype=np.uint8)
        for law in (0, 1):
            chosen = laws == law
            needed, index = np.unique(outputs.index[chosen], return_inverse=True)
            payload[chosen] = np.take(ENCODE_TABLES[law], samples[needed])[index]
        return payload

    def _encode(self, layout: Layout, rows: Rows, outputs: _Outputs, payloads: dict[int, bytes]) -> None:
        """Stateful codecs: each talker with its own encoder, each shared output once with its group's."""
        shared_payloads: dict[int, bytes] = {}
        group_of_index = {outputs.shared_start + position: layout.conferences[conference].conference_id
                          for position, conference in enumerate(outputs.shared_conferences.tolist())}
        for row, index in zip(rows, outputs.index, strict=True):
            leg = layout.legs[row]
            index = int(index)
            if index in group_of_index:
                if index not in shared_payloads:
                    key = (group_of_index[index], leg.codec.name)
                    encoder = self.group_encoders.get(key)
                    if encoder is None:
                        encoder = self.group_encoders[key] = leg.codec.new_encoder()
                    shared_payloads[index] = encoder.encode(outputs.pcm[index])
                payloads[int(row)] = shared_payloads[index]
            else:
                payloads[int(row)] = leg.encoder.encode(outputs.pcm[index])

    def _transmit(self, layout: Layout, g711_rows: Rows, g711_payload: npt.NDArray[np.uint8] | None,
                  payloads: dict[int, bytes], now: float) -> None:
        """Stamp every packet in one call, build G.711 packets as one byte string, send each."""
        if g711_payload is not None and g711_rows.size:
            rows, remotes, ready = self._addressed(layout, g711_rows.tolist())
            if ready is not None:
                g711_rows, g711_payload = g711_rows[ready], g711_payload[ready]
            headers = self.table.stamp_headers(layout.slots[g711_rows], np.full(len(rows), G711_FRAME, np.int64),
                                               now)
            packets = np.empty(len(rows), dtype=_G711_PACKET)
            packets["header"] = headers
            packets["payload"] = g711_payload
            wire = packets.tobytes()
            size = _G711_PACKET.itemsize
            self._send_all(layout, rows, [wire[start : start + size] for start in range(0, len(wire), size)],
                           remotes)
        if payloads:
            rows, remotes, _ = self._addressed(layout, list(payloads))
            sizes = np.array([len(payloads[row]) for row in rows], dtype=np.int64)
            headers = self.table.stamp_headers(layout.slots[rows], sizes, now)
            self._send_all(layout, rows, [header.tobytes() + payloads[row]
                                          for header, row in zip(headers, rows, strict=True)], remotes)

    def _addressed(self, layout: Layout, rows: list[int]) -> tuple[list[int], list[Address],
                                                                   npt.NDArray[np.bool_] | None]:
        """The rows that have somewhere to send, their addresses, and (when some had none) which of `rows` they
        are; a row whose address is still being learnt sends nothing this tick, and its time moves on."""
        sessions = layout.sessions
        remotes = [sessions[row].remote for row in rows]
        if None not in remotes:
            return rows, cast(list[Address], remotes), None
        ready = np.array([remote is not None for remote in remotes], dtype=np.bool_)
        self.table.skip(layout.slots[np.asarray(rows, dtype=np.intp)[~ready]])
        return ([row for row, remote in zip(rows, remotes, strict=True) if remote is not None],
                [remote for remote in remotes if remote is not None], ready)

    @staticmethod
    def _send_all(layout: Layout, rows: list[int], packets: list[bytes], remotes: list[Address]) -> None:
        """Send each row's stamped packet (SRTP-protected where the stream is) from the row's own socket."""
        senders = layout.senders
        if layout.all_plain:
            for row, packet, remote in zip(rows, packets, remotes, strict=True):
                try:
                    senders[row](packet, remote)
                except OSError:
                    layout.legs[row].socket.send_failures += 1
            return
        plain, sessions = layout.plain, layout.sessions
        for row, packet, remote in zip(rows, packets, remotes, strict=True):
            wire = packet if plain[row] else sessions[row].finish_packet(packet)
            if wire is None:
                continue
            try:
                senders[row](wire, remote)
            except OSError:
                layout.legs[row].socket.send_failures += 1

    def _record(self, layout: Layout, frames: Frames, totals: Frames) -> None:
        """Hand each recording conference's total (and its participants' tracks) to the recorder."""
        recording = [index for index, media in enumerate(layout.conferences) if media.recording]
        if not recording:
            return
        mixes = totals[recording]
        keys = [layout.conferences[index].conference_id for index in recording]
        if layout.rate != self.recording_rate:
            mixes = self._convert_groups(keys, layout.rate, self.recording_rate, mixes)
        pcm = to_pcm16(mixes)
        for position, index in enumerate(recording):
            media = layout.conferences[index]
            assert media.recording_id is not None
            self.recorder.write(media.recording_id, pcm[position])
            if media.tracks:
                end = layout.starts[index + 1] if index + 1 < layout.starts.size else len(layout.legs)
                rows = np.arange(layout.starts[index], end, dtype=np.intp)
                own = frames[rows]
                if layout.rate != self.recording_rate:
                    own = self._convert("track", layout.rate, self.recording_rate, own.copy(), layout.slots[rows])
                tracks = to_pcm16(own)
                for track, row in zip(tracks, rows, strict=True):
                    media.write_track(layout.legs[row].leg_id, track)

