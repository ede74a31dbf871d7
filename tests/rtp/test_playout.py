"""Tests for rtp/playout.py: one 20 ms frame per tick from the jitter buffer, losses concealed, Opus FEC used."""

from __future__ import annotations

import numpy as np
import numpy.typing as npt
import pytest

from rtp.codecs import G722, OPUS, PCMU
from rtp.jitter import PacketBuffer
from rtp.opus import OpusEncoder
from rtp.playout import SILENT_AFTER, Pcm, Playout


def sine(rate: int, seconds: float, frequency: float = 440.0) -> npt.NDArray[np.int16]:
    t = np.arange(int(rate * seconds)) / rate
    return np.rint(8000 * np.sin(2 * np.pi * frequency * t)).astype(np.int16)


def largest_step(signal: npt.NDArray[np.int16]) -> int:
    return int(np.abs(np.diff(signal.astype(np.int32))).max())


def test_g711_concealment_continues_from_the_history_the_engine_keeps_and_resumes_smoothly() -> None:
    playout = Playout(PCMU)
    signal = sine(8000, 0.2, 300.0)
    frames = [PCMU.decode_frames([PCMU.new_encoder().encode(signal[i : i + 160])])[0] for i in range(0, 1600, 160)]
    history = np.concatenate(frames[:2])
    concealed = playout.conceal(history)
    resumed = playout.resume(frames[3])
    assert concealed.size == 160 and playout.concealed_frames == 1
    assert largest_step(np.concatenate([*frames[:2], concealed, resumed])) <= 1.2 * largest_step(signal)
    assert np.abs(concealed.astype(np.int32)).max() > 3000, "a repeat of the tone, not silence"


def test_g722_decodes_160_bytes_to_320_samples_and_conceals_a_frame() -> None:
    playout = Playout(G722)
    payload = G722.new_encoder().encode(sine(16000, 0.02))
    assert playout.decode(payload).size == 320
    assert playout.conceal().size == 320


def opus_packets(frame_ms: int, count: int) -> list[bytes]:
    encoder = OpusEncoder(expected_loss=20)
    samples = 48 * frame_ms
    signal = sine(48000, count * frame_ms / 1000)
    return [encoder.encode(signal[i * samples : (i + 1) * samples]) for i in range(count)]


def opus_ticks(frame_ms: int, count: int, ticks: int, *, lost: tuple[int, ...] = (),
               ahead: int = 0) -> tuple[Playout, list[Pcm | None]]:
    """Feed `count` Opus packets of `frame_ms` (but the `lost` ones) as they would arrive, one tick at a time,
    `ahead` ticks early (a deeper jitter buffer)."""
    buffer = PacketBuffer(48000, 960)
    playout = Playout(OPUS)
    packets = list(enumerate(opus_packets(frame_ms, count)))
    frames = []
    for tick in range(ticks):
        while packets and packets[0][0] * frame_ms < (tick + 1 + ahead) * 20:
            index, packet = packets.pop(0)
            if index not in lost:
                buffer.push(index * 48 * frame_ms, packet, 48 * frame_ms, False, index * frame_ms / 1000)
        frames.append(playout.next_packets(buffer.pop(), buffer))
    return playout, frames


@pytest.mark.parametrize(("frame_ms", "per_tick"), [(10, 2), (20, 1), (40, 0.5), (60, 1 / 3)])
def test_opus_packets_of_any_duration_fill_20_ms_ticks(frame_ms: int, per_tick: float) -> None:
    playout, frames = opus_ticks(frame_ms, int(16 / frame_ms * 20), 14)
    frames = frames[2:]  # primed once 20 ms (and one packet) are buffered
    assert all(f is not None and f.size == 960 for f in frames)
    assert playout.concealed_frames == 0 and playout.fec_frames == 0


def test_a_lost_opus_packet_is_rebuilt_from_the_next_ones_fec() -> None:
    playout, frames = opus_ticks(20, 12, 10, lost=(5,), ahead=1)
    assert all(f is not None and f.size == 960 for f in frames)
    assert playout.fec_frames == 1 and playout.concealed_frames == 0


def test_without_the_next_packet_opus_runs_its_plc() -> None:
    playout, frames = opus_ticks(20, 4, 4 + SILENT_AFTER + 1)
    assert [f is None for f in frames] == [False] * (4 + SILENT_AFTER) + [True]
    assert playout.concealed_frames == SILENT_AFTER and playout.fec_frames == 0


def test_unreadable_opus_packets_are_counted_and_concealed() -> None:
    buffer = PacketBuffer(48000, 960)
    playout = Playout(OPUS)
    good = opus_packets(20, 2)
    buffer.push(0, good[0], 960, False, 0.0)
    buffer.push(960, b"\xff", 960, False, 0.02)  # a code 3 packet without its frame count
    buffer.push(1920, good[1], 960, False, 0.04)
    frames = [playout.next_packets(buffer.pop(), buffer) for _ in range(3)]
    assert all(f is not None and f.size == 960 for f in frames)
    assert playout.decode_errors >= 1
