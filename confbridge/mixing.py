"""One mixer tick for every conference mixing at one rate: all participants as rows of numpy arrays.

`Layout` is the arrangement of one rate's participants (conference by conference) with everything the tick
needs as arrays: table slots, codec groups, gains, masks. It is rebuilt only when someone joins, leaves,
changes codec or has a control changed, so a tick runs without Python work per participant except where a
codec or SRTP demands it (G.722 and Opus coders, concealment of a lost frame, SRTP protection) and the one
`sendto` per packet.

`Mixer.run(layout)` does one tick for a layout:
  1. every byte-stream participant's 20 ms from the `StreamTable` in one call; G.711 of all of them decoded
     in one lookup (either law), G.722 and Opus per participant; missing frames concealed;
  2. every participant resampled to the conference's rate, one batched call per rate pair, with filter state
     kept per participant; input gain, mute and hold as one multiply;
  3. talk detection for all; the optional noise gate zeroes the rows of those not talking;
  4. exact float sums per conference; a participant contributing nothing (silent, muted, gated) hears exactly
     its conference's total, so all such participants of a conference share one output, resampled, limited
     and encoded once per codec ("encode once, send many"), while talkers get total minus own signal;
  5. output gain and deafness, resampling back, the soft-knee limiter, 16-bit rounding, encoding;
  6. RTP headers for every packet in one call, packets of plain G.711 assembled as one byte array, sent;
  7. recordings: each recording conference's total (and, with tracks, each participant's own signal),
     resampled to the recording rate, handed to the recorder thread.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from typing import TYPE_CHECKING

import numpy as np
import numpy.typing as npt

from mixer.limiter import to_pcm16
from mixer.mixdown import conference_totals
from mixer.resample import BatchResampler
from mixer.talk import TalkDetector
from rtp.codecs import FrameEncoder, G711Codec, G722Codec
from rtp.g711 import DECODE_TABLES, ENCODE_TABLES
from rtp.playout import SILENT_AFTER
from rtp.stream_table import HEADER_DTYPE, StreamTable

if TYPE_CHECKING:
    from recorder.worker import RecorderWorker

    from .media import ConferenceMedia, MediaLeg

Frames = npt.NDArray[np.float32]
Pcm = npt.NDArray[np.int16]
Rows = npt.NDArray[np.intp]

G711_FRAME = 160
_G711_PACKET = np.dtype([("header", HEADER_DTYPE), ("payload", np.uint8, (G711_FRAME,))])


@dataclass(frozen=True)
class TalkingChanged:
    """A participant started or stopped talking."""

    talking: bool


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
    g711_law: Rows
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
    byte_stream: Rows = field(init=False)

    def __post_init__(self) -> None:
        self.byte_stream = np.concatenate([self.g711, self.g722])

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
        g711 = list(laws)
        heard = np.array([leg.mixing and not leg.muted and not leg.held for leg in legs], dtype=np.bool_)
        return cls(
            rate=rate,
            conferences=conferences,
            legs=legs,
            slots=np.array([leg.slot for leg in legs], dtype=np.intp),
            starts=np.asarray(starts, dtype=np.intp),
            conference_of_row=np.repeat(np.arange(len(starts)), np.diff([*starts, len(legs)])).astype(np.intp),
            g711=_rows(g711),
            g711_law=np.array(list(laws.values()), dtype=np.intp),
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
        )


@dataclass
class _Outputs:
    """What one native rate's sending rows get this tick: PCM rows and, per sending row, which one."""

    rows: Rows
    pcm: Pcm
    index: Rows
    shared_keys: list[tuple[str, int]]
    """The (conference id, row of `pcm`) of each shared output."""


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
        self.g711_history = np.zeros((capacity, 2 * G711_FRAME), dtype=np.int16)
        self.shared = np.zeros(capacity, dtype=np.bool_)

    # -- per-slot state ---------------------------------------------------------------------------

    def fit(self) -> None:
        """Grow the per-slot arrays with the table."""
        capacity = self.table.capacity
        old = self.lost_ticks.size
        if capacity <= old:
            return
        self.lost_ticks = np.concatenate([self.lost_ticks, np.full(capacity - old, SILENT_AFTER, np.int64)])
        self.g711_history = np.concatenate([self.g711_history, np.zeros((capacity - old, 2 * G711_FRAME),
                                                                        np.int16)])
        self.shared = np.concatenate([self.shared, np.zeros(capacity - old, np.bool_)])
        for key, history in self._histories.items():
            self._histories[key] = np.concatenate([history, np.zeros((capacity - old, history.shape[1]),
                                                                     np.float32)])

    def reset_slot(self, slot: int) -> None:
        """A new participant in a slot (or a new codec): nothing heard yet, filters silent."""
        self.lost_ticks[slot] = SILENT_AFTER
        self.g711_history[slot] = 0
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
        """One tick of every conference in `layout`; talk changes are appended to `events`."""
        frames = self._receive(layout)
        slots = layout.slots
        frames *= layout.gain_in[:, None]
        started, stopped = self.talk.update(slots, frames)
        if started.size or stopped.size:
            by_slot = {int(slot): row for row, slot in enumerate(slots)}
            events.extend((layout.legs[by_slot[int(slot)]], TalkingChanged(True)) for slot in started)
            events.extend((layout.legs[by_slot[int(slot)]], TalkingChanged(False)) for slot in stopped)
        if self.noise_gate:
            frames[~self.talk.talking[slots]] = 0.0
        totals = conference_totals(frames, layout.starts)
        if layout.sending.size:
            self._send(layout, frames, totals, now)
        if layout.idle_slots.size:
            self.table.skip(layout.idle_slots)
        self._record(layout, frames, totals)

    def _receive(self, layout: Layout) -> Frames:
        """Every participant's next 20 ms at the mixing rate (zero rows for silence)."""
        table = self.table
        legs, slots = layout.legs, layout.slots
        codes, got = table.pop(slots[layout.byte_stream])
        lost = self.lost_ticks[slots[layout.byte_stream]]
        self.lost_ticks[slots[layout.byte_stream]] = np.where(got, 0, np.minimum(lost + 1, SILENT_AFTER + 1))
        native: dict[int, tuple[list[Rows], list[Pcm]]] = {}
        count = layout.g711.size
        if count:
            pcm = DECODE_TABLES[layout.g711_law[:, None], codes[:count]]
            arrived, was_lost = got[:count], lost[:count]
            for index in np.flatnonzero(arrived & (was_lost > 0)):
                playout = legs[layout.g711[index]].playout
                pcm[index] = playout.resume(pcm[index])
            g711_slots = slots[layout.g711]
            for index in np.flatnonzero(~arrived):
                if was_lost[index] < SILENT_AFTER:
                    playout = legs[layout.g711[index]].playout
                    pcm[index] = playout.conceal(self.g711_history[g711_slots[index]])
                else:
                    pcm[index] = 0
            played = g711_slots[arrived]
            self.g711_history[played, :G711_FRAME] = self.g711_history[played, G711_FRAME:]
            self.g711_history[played, G711_FRAME:] = pcm[arrived]
            native.setdefault(8000, ([], []))[0].append(layout.g711)
            native[8000][1].append(pcm)
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
            audio = np.concatenate(pcm_parts).astype(np.float32)
            if rate != layout.rate:
                audio = self._convert("in", rate, layout.rate, audio, slots[rows])
            frames[rows] = audio
        return frames

    def _send(self, layout: Layout, frames: Frames, totals: Frames, now: float) -> None:
        """Each sending participant's mix, shared where it can be, encoded and sent."""
        contributes = frames.any(axis=1)
        unity = layout.gain_out == 1.0
        sending = layout.sending
        share_row = ~contributes & ~layout.deaf & unity
        payloads: dict[int, bytes] = {}
        g711_payload: npt.NDArray[np.uint8] | None = None
        g711_rows: Rows = np.zeros(0, dtype=np.intp)
        for rate in np.unique(layout.native[sending]):
            rows = sending[layout.native[sending] == rate]
            outputs = self._outputs(layout, int(rate), rows, frames, totals, share_row[rows])
            if rate == 8000:
                laws = layout.g711_law[np.searchsorted(layout.g711, rows)]
                encoded = ENCODE_TABLES[:, outputs.pcm.view(np.uint16)]  # both laws of every distinct output
                g711_payload = encoded[laws, outputs.index]
                g711_rows = rows
            else:
                self._encode(layout, rows, outputs, payloads)
        self._transmit(layout, g711_rows, g711_payload, payloads, now)

    def _outputs(self, layout: Layout, rate: int, rows: Rows, frames: Frames, totals: Frames,
                 share: npt.NDArray[np.bool_]) -> _Outputs:
        """The distinct outputs of one native rate's sending rows, at that rate, limited and rounded."""
        slots = layout.slots
        deaf = layout.deaf[rows]
        own = rows[~share & ~deaf]
        shared_rows = rows[share]
        conference = layout.conference_of_row
        shared_conferences, shared_index = np.unique(conference[shared_rows], return_inverse=True)
        keys = [layout.conferences[c].conference_id for c in shared_conferences]
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
        index[np.flatnonzero(deaf)] = own.size + len(keys)
        return _Outputs(rows, pcm, index, [(key, own.size + i) for i, key in enumerate(keys)])

    def _encode(self, layout: Layout, rows: Rows, outputs: _Outputs, payloads: dict[int, bytes]) -> None:
        """Stateful codecs: each talker with its own encoder, each shared output once with its group's."""
        shared_payloads: dict[int, bytes] = {}
        group_of_index = {index: key for key, index in outputs.shared_keys}
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
        """Stamp every packet in one call, build plain G.711 packets as one byte string, send each."""
        legs, table = layout.legs, self.table
        if g711_payload is not None and g711_rows.size:
            rows = g711_rows.tolist()
            remotes = [legs[row].session.remote for row in rows]
            ready = np.fromiter((remote is not None for remote in remotes), dtype=np.bool_, count=len(rows))
            if not ready.all():
                table.skip(layout.slots[g711_rows[~ready]])
                g711_rows, g711_payload = g711_rows[ready], g711_payload[ready]
                rows = g711_rows.tolist()
                remotes = [remote for remote in remotes if remote is not None]
            headers = table.stamp_headers(layout.slots[g711_rows], np.full(len(rows), G711_FRAME, np.int64), now)
            packets = np.empty(len(rows), dtype=_G711_PACKET)
            packets["header"] = headers
            packets["payload"] = g711_payload
            wire = packets.tobytes()
            size = _G711_PACKET.itemsize
            senders, plain = layout.senders, layout.plain
            for position, row in enumerate(rows):
                packet: bytes | None = wire[position * size : (position + 1) * size]
                if not plain[row]:
                    packet = legs[row].session.finish_packet(packet)
                    if packet is None:
                        continue
                try:
                    senders[row](packet, remotes[position])
                except OSError:
                    legs[row].socket.send_failures += 1
        if payloads:
            ordered = list(payloads)
            remotes = [legs[row].session.remote for row in ordered]
            silent = [row for row, remote in zip(ordered, remotes, strict=True) if remote is None]
            if silent:
                table.skip(layout.slots[silent])
            chosen = [(row, remote) for row, remote in zip(ordered, remotes, strict=True) if remote is not None]
            sizes = np.array([len(payloads[row]) for row, _ in chosen], dtype=np.int64)
            headers = table.stamp_headers(layout.slots[[row for row, _ in chosen]], sizes, now)
            for header, (row, remote) in zip(headers, chosen, strict=True):
                leg = legs[row]
                finished = leg.session.finish_packet(header.tobytes() + payloads[row])
                if finished is not None:
                    leg.socket.sendto(finished, remote)

    def _record(self, layout: Layout, frames: Frames, totals: Frames) -> None:
        """Hand each recording conference's total (and its participants' tracks) to the recorder."""
        recording = [index for index, media in enumerate(layout.conferences) if media.recording_id is not None]
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
                rows = np.flatnonzero(layout.conference_of_row == index)
                own = frames[rows]
                if layout.rate != self.recording_rate:
                    own = self._convert("track", layout.rate, self.recording_rate, own.copy(), layout.slots[rows])
                tracks = to_pcm16(own)
                for track, row in zip(tracks, rows, strict=True):
                    media.write_track(layout.legs[row].leg_id, track)

