"""Tests for recorder/wav.py: WavWriter output read back by `wave`, flush-time validity and header repair."""

from __future__ import annotations

import shutil
import struct
import wave
from pathlib import Path

import numpy as np
import numpy.typing as npt
import pytest

from recorder.wav import HEADER_SIZE, WavWriter, repair_header, wav_header


def ramp(start: int, count: int) -> npt.NDArray[np.int16]:
    """Distinct int16 samples, so any misplaced byte shows."""
    return ((np.arange(start, start + count, dtype=np.int64) * 37) % 65536 - 32768).astype(np.int16)


def read_wav(path: Path) -> tuple[int, int, int, npt.NDArray[np.int16]]:
    """(rate, channels, sample width, samples) as Python's `wave` module reads them."""
    with wave.open(str(path), "rb") as reader:
        frames = reader.readframes(reader.getnframes())
        return (reader.getframerate(), reader.getnchannels(), reader.getsampwidth(),
                np.frombuffer(frames, dtype="<i2").astype(np.int16))


def test_header_layout() -> None:
    header = wav_header(320, 8000)
    assert len(header) == HEADER_SIZE == 44
    assert header[:4] == b"RIFF"
    assert struct.unpack_from("<I", header, 4)[0] == 36 + 320
    assert header[8:16] == b"WAVEfmt "
    assert struct.unpack_from("<IHHIIHH", header, 16) == (16, 1, 1, 8000, 16000, 2, 16)
    assert header[36:40] == b"data"
    assert struct.unpack_from("<I", header, 40)[0] == 320


def test_writer_round_trip(tmp_path: Path) -> None:
    path = tmp_path / "call.wav"
    samples = ramp(0, 8000)
    writer = WavWriter(path, 8000)
    for chunk in np.split(samples, 50):
        writer.write(chunk.astype("<i2").tobytes())
    assert writer.frames_written == 8000
    writer.close()
    rate, channels, width, read = read_wav(path)
    assert (rate, channels, width) == (8000, 1, 2)
    assert np.array_equal(read, samples)
    assert path.stat().st_size == HEADER_SIZE + 16000


def test_writer_stereo_and_other_rate(tmp_path: Path) -> None:
    path = tmp_path / "stereo.wav"
    samples = ramp(5, 2 * 480)
    writer = WavWriter(path, 48000, channels=2)
    writer.write(samples.astype("<i2").tobytes())
    assert writer.frames_written == 480
    writer.close()
    rate, channels, width, read = read_wav(path)
    assert (rate, channels, width) == (48000, 2, 2)
    assert np.array_equal(read, samples)


def test_empty_recording_is_valid(tmp_path: Path) -> None:
    path = tmp_path / "empty.wav"
    WavWriter(path, 8000).close()
    rate, channels, width, read = read_wav(path)
    assert (rate, channels, width, len(read)) == (8000, 1, 2, 0)


def test_flush_makes_the_file_valid_before_close(tmp_path: Path) -> None:
    path = tmp_path / "live.wav"
    writer = WavWriter(path, 8000)
    first = ramp(0, 1600)
    writer.write(first.tobytes())
    writer.flush()
    assert np.array_equal(read_wav(path)[3], first)
    second = ramp(1600, 800)
    writer.write(second.tobytes())
    writer.flush()
    rate, channels, width, read = read_wav(path)
    assert (rate, channels, width) == (8000, 1, 2)
    assert np.array_equal(read, np.concatenate([first, second]))
    writer.close()


def test_new_file_is_a_valid_wav_before_any_flush(tmp_path: Path) -> None:
    path = tmp_path / "new.wav"
    writer = WavWriter(path, 8000)
    try:
        assert path.read_bytes() == wav_header(0, 8000)
    finally:
        writer.close()


def test_close_twice_is_harmless(tmp_path: Path) -> None:
    path = tmp_path / "twice.wav"
    writer = WavWriter(path, 8000)
    writer.write(ramp(0, 160).tobytes())
    writer.close()
    writer.close()
    assert np.array_equal(read_wav(path)[3], ramp(0, 160))


def test_repair_header_after_a_crash(tmp_path: Path) -> None:
    path = tmp_path / "live.wav"
    crashed = tmp_path / "crashed.wav"
    writer = WavWriter(path, 8000)
    flushed = ramp(0, 800)
    writer.write(flushed.tobytes())
    writer.flush()
    unflushed = ramp(800, 300)
    writer.write(unflushed.tobytes())
    assert writer._file is not None
    writer._file.flush()  # the bytes reached the OS, but the header was never rewritten: then the process died
    shutil.copyfile(path, crashed)
    writer.close()
    with crashed.open("ab") as file:
        file.write(b"\x7f")  # half a sample
    assert len(read_wav(crashed)[3]) == 800  # the stale header hides the tail
    assert repair_header(crashed) == 1100
    assert crashed.stat().st_size == HEADER_SIZE + 2200
    rate, channels, width, read = read_wav(crashed)
    assert (rate, channels, width) == (8000, 1, 2)
    assert np.array_equal(read, np.concatenate([flushed, unflushed]))


def test_repair_header_of_a_never_flushed_file(tmp_path: Path) -> None:
    path = tmp_path / "raw.wav"
    samples = ramp(0, 480)
    path.write_bytes(wav_header(0, 16000) + samples.tobytes() + b"\x01")
    assert repair_header(path) == 480
    assert path.stat().st_size == HEADER_SIZE + 960
    rate, channels, width, read = read_wav(path)
    assert (rate, channels, width) == (16000, 1, 2)
    assert np.array_equal(read, samples)
    assert path.read_bytes()[:HEADER_SIZE] == wav_header(960, 16000)


def test_repair_header_of_a_complete_file_changes_nothing(tmp_path: Path) -> None:
    path = tmp_path / "done.wav"
    writer = WavWriter(path, 8000)
    writer.write(ramp(0, 321).tobytes())
    writer.close()
    before = path.read_bytes()
    assert repair_header(path) == 321
    assert path.read_bytes() == before


def test_repair_header_of_a_header_only_file(tmp_path: Path) -> None:
    path = tmp_path / "header.wav"
    path.write_bytes(wav_header(1000, 8000) + b"\x05")
    assert repair_header(path) == 0
    assert path.read_bytes() == wav_header(0, 8000)


@pytest.mark.parametrize("content", [b"", b"RIFF", b"not a wav file at all" * 5,
                                     b"RIFF\x00\x00\x00\x00AVI " + bytes(40)])
def test_repair_header_rejects_non_wav(tmp_path: Path, content: bytes) -> None:
    path = tmp_path / "other.bin"
    path.write_bytes(content)
    with pytest.raises(ValueError):
        repair_header(path)
    assert path.read_bytes() == content
