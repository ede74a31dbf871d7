"""Tests for recorder/worker.py: the recording thread, periodic header flushes and per-recording write errors."""

from __future__ import annotations

import threading
import time
import wave
from collections.abc import Iterator
from pathlib import Path

import numpy as np
import numpy.typing as npt
import pytest

from recorder.wav import WavWriter
from recorder.worker import RecorderWorker, RecordingResult

RATE = 8000
TIMEOUT = 10.0


def frame(number: int, samples: int = 160) -> npt.NDArray[np.int16]:
    """A frame of distinct samples that also encodes its number."""
    return ((np.arange(samples, dtype=np.int64) * 31 + number * 1009) % 65536 - 32768).astype(np.int16)


def read_samples(path: Path) -> tuple[int, int, int, npt.NDArray[np.int16]]:
    """(rate, channels, sample width, samples) as Python's `wave` module reads them."""
    with wave.open(str(path), "rb") as reader:
        data = reader.readframes(reader.getnframes())
        return (reader.getframerate(), reader.getnchannels(), reader.getsampwidth(),
                np.frombuffer(data, dtype="<i2").astype(np.int16))


class ErrorLog:
    """Collects on_error calls from the recorder thread."""

    def __init__(self) -> None:
        self.calls: list[tuple[str, str]] = []
        self._lock = threading.Lock()

    def __call__(self, recording_id: str, message: str) -> None:
        with self._lock:
            self.calls.append((recording_id, message))


@pytest.fixture
def errors() -> ErrorLog:
    return ErrorLog()


@pytest.fixture
def worker(errors: ErrorLog) -> Iterator[RecorderWorker]:
    recorder = RecorderWorker(flush_interval=1.0, on_error=errors)
    yield recorder
    recorder.stop()


def drain(worker: RecorderWorker, tmp_path: Path) -> None:
    """Wait until every command queued so far has been handled, using a throwaway recording."""
    worker.open("__drain__", tmp_path / "__drain__.wav", RATE)
    assert worker.close("__drain__").result(TIMEOUT).error is None


def test_open_write_close(worker: RecorderWorker, errors: ErrorLog, tmp_path: Path) -> None:
    path = tmp_path / "conf.wav"
    frames = [frame(n) for n in range(25)]
    worker.open("rec-1", path, RATE)
    for samples in frames:
        worker.write("rec-1", samples)
    result = worker.close("rec-1").result(TIMEOUT)
    assert result == RecordingResult("rec-1", path, RATE, 25 * 160, None)
    assert result.duration == 0.5
    rate, channels, width, samples_read = read_samples(path)
    assert (rate, channels, width) == (RATE, 1, 2)
    assert np.array_equal(samples_read, np.concatenate(frames))
    assert errors.calls == []


def test_write_copies_the_callers_array(worker: RecorderWorker, tmp_path: Path) -> None:
    path = tmp_path / "reuse.wav"
    buffer = frame(0)
    worker.open("rec", path, RATE)
    worker.write("rec", buffer)
    buffer[:] = 0  # the mixer reuses its array right away
    worker.write("rec", buffer)
    assert worker.close("rec").result(TIMEOUT).frames == 320
    assert np.array_equal(read_samples(path)[3], np.concatenate([frame(0), np.zeros(160, dtype=np.int16)]))


def test_write_to_unknown_recording_is_ignored(worker: RecorderWorker, errors: ErrorLog, tmp_path: Path) -> None:
    path = tmp_path / "known.wav"
    worker.write("nobody", frame(1))
    worker.open("known", path, RATE)
    worker.write("nobody", frame(2))
    worker.write("known", frame(3))
    result = worker.close("known").result(TIMEOUT)
    assert result.frames == 160
    assert result.error is None
    assert np.array_equal(read_samples(path)[3], frame(3))
    assert errors.calls == []
    assert not (tmp_path / "nobody").exists()


def test_close_unknown_recording(worker: RecorderWorker, errors: ErrorLog) -> None:
    result = worker.close("ghost").result(TIMEOUT)
    assert result.recording_id == "ghost"
    assert result.frames == 0
    assert result.error == "not open"
    assert errors.calls == []


def test_header_is_flushed_every_interval(errors: ErrorLog, tmp_path: Path) -> None:
    recorder = RecorderWorker(flush_interval=0.1, on_error=errors)
    try:
        path = tmp_path / "live.wav"
        frames = [frame(n, 200) for n in range(10)]  # 0.25 s at 8000 Hz
        recorder.open("live", path, RATE)
        for samples in frames:
            recorder.write("live", samples)
        drain(recorder, tmp_path)
        rate, channels, width, on_disk = read_samples(path)  # still open: what a crash would leave
        assert (rate, channels, width) == (RATE, 1, 2)
        assert len(on_disk) >= int(0.2 * RATE)
        assert np.array_equal(on_disk, np.concatenate(frames)[: len(on_disk)])
        result = recorder.close("live").result(TIMEOUT)
        assert result.frames == 2000
        assert np.array_equal(read_samples(path)[3], np.concatenate(frames))
    finally:
        recorder.stop()
    assert errors.calls == []


def test_no_flush_before_the_interval(worker: RecorderWorker, tmp_path: Path) -> None:
    path = tmp_path / "slow.wav"
    worker.open("slow", path, RATE)
    for n in range(45):  # 0.9 s, flush interval 1 s: more than a file buffer, so most of it reaches the disk
        worker.write("slow", frame(n))
    drain(worker, tmp_path)
    assert path.stat().st_size > 44
    assert len(read_samples(path)[3]) == 0  # the header still says empty
    for n in range(45, 50):  # 1.0 s: flushed
        worker.write("slow", frame(n))
    drain(worker, tmp_path)
    assert np.array_equal(read_samples(path)[3], np.concatenate([frame(n) for n in range(50)]))
    worker.write("slow", frame(50))
    assert worker.close("slow").result(TIMEOUT).frames == 51 * 160


def test_open_error_is_reported_and_others_continue(worker: RecorderWorker, errors: ErrorLog,
                                                    tmp_path: Path) -> None:
    bad = tmp_path / "missing-dir" / "bad.wav"
    good = tmp_path / "good.wav"
    worker.open("good", good, RATE)
    worker.open("bad", bad, RATE)
    for n in range(5):
        worker.write("bad", frame(n))
        worker.write("good", frame(n))
    bad_result = worker.close("bad").result(TIMEOUT)
    good_result = worker.close("good").result(TIMEOUT)
    assert len(errors.calls) == 1
    recording_id, message = errors.calls[0]
    assert recording_id == "bad"
    assert message.startswith("FileNotFoundError: ")
    assert bad_result.error == message
    assert bad_result.frames == 0
    assert bad_result.path == bad
    assert not bad.parent.exists()
    assert good_result.error is None
    assert good_result.frames == 800
    assert np.array_equal(read_samples(good)[3], np.concatenate([frame(n) for n in range(5)]))


def test_write_error_is_reported_once_and_others_continue(worker: RecorderWorker, errors: ErrorLog,
                                                          tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    original_write = WavWriter.write
    full_after = 3

    def failing_write(self: WavWriter, pcm16le: bytes) -> None:
        if self.path.name == "full.wav" and self.frames_written >= full_after * 160:
            raise OSError(28, "No space left on device")
        original_write(self, pcm16le)

    monkeypatch.setattr(WavWriter, "write", failing_write)
    full = tmp_path / "full.wav"
    fine = tmp_path / "fine.wav"
    worker.open("full", full, RATE)
    worker.open("fine", fine, RATE)
    for n in range(8):
        worker.write("full", frame(n))
        worker.write("fine", frame(n))
    full_result = worker.close("full").result(TIMEOUT)
    fine_result = worker.close("fine").result(TIMEOUT)
    assert errors.calls == [("full", "OSError: [Errno 28] No space left on device")]
    assert full_result.error == "OSError: [Errno 28] No space left on device"
    assert full_result.frames == full_after * 160
    assert np.array_equal(read_samples(full)[3], np.concatenate([frame(n) for n in range(full_after)]))
    assert fine_result.error is None
    assert fine_result.frames == 8 * 160
    assert np.array_equal(read_samples(fine)[3], np.concatenate([frame(n) for n in range(8)]))


def test_stop_closes_open_recordings(errors: ErrorLog, tmp_path: Path) -> None:
    recorder = RecorderWorker(flush_interval=10.0, on_error=errors)
    paths = [tmp_path / "a.wav", tmp_path / "b.wav"]
    for index, path in enumerate(paths):
        recorder.open(str(index), path, RATE)
    for n in range(6):
        recorder.write("0", frame(n))
        recorder.write("1", frame(100 + n))
    recorder.stop()
    assert not recorder._thread.is_alive()
    assert np.array_equal(read_samples(paths[0])[3], np.concatenate([frame(n) for n in range(6)]))
    assert np.array_equal(read_samples(paths[1])[3], np.concatenate([frame(100 + n) for n in range(6)]))
    assert errors.calls == []


def test_writes_never_wait_for_a_stalled_disk(errors: ErrorLog, tmp_path: Path,
                                              monkeypatch: pytest.MonkeyPatch) -> None:
    original_write = WavWriter.write
    disk = threading.Event()

    def stalled_write(self: WavWriter, pcm16le: bytes) -> None:
        disk.wait(10)  # the disk hangs until the test lets it go
        original_write(self, pcm16le)

    monkeypatch.setattr(WavWriter, "write", stalled_write)
    recorder = RecorderWorker(on_error=errors)
    try:
        recorder.open("slow", tmp_path / "slow.wav", RATE)
        started = time.perf_counter()
        for n in range(250):  # five seconds of ticks
            recorder.write("slow", frame(n))
        queued_in = time.perf_counter() - started
        assert queued_in < 0.5, f"the tick's side of 250 writes took {queued_in:.3f} s while the disk hung"
        disk.set()
        result = recorder.close("slow").result(TIMEOUT)
    finally:
        disk.set()
        recorder.stop()
    assert result.frames == 250 * 160 and errors.calls == []
    assert np.array_equal(read_samples(tmp_path / "slow.wav")[3], np.concatenate([frame(n) for n in range(250)]))
