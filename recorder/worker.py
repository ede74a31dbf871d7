"""Recording I/O on a thread of its own, so the mixer tick never waits for the disk.

The tick hands each recording one frame of 16-bit samples per tick (`write`); the worker appends
them and makes the WAV header valid again every `flush_interval` seconds of audio. A write error
(a full disk, say) ends that recording with an error report and leaves the others alone.
"""

from __future__ import annotations

import contextlib
import logging
import queue
import threading
from collections.abc import Callable
from concurrent.futures import Future
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import numpy.typing as npt

from .wav import WavWriter, repair_header

logger = logging.getLogger(__name__)


@dataclass(frozen=True)
class TrackResult:
    """One participant's track beside a mixed recording."""

    name: str
    path: Path
    offset: float
    """Seconds into the mixed recording where the track begins."""
    frames: int
    error: str | None = None


@dataclass(frozen=True)
class RecordingResult:
    """How a recording ended."""

    recording_id: str
    path: Path
    sample_rate: int
    frames: int
    error: str | None = None
    tracks: tuple[TrackResult, ...] = ()

    @property
    def duration(self) -> float:
        """Seconds of audio in the file."""
        return self.frames / self.sample_rate


class _Open:
    __slots__ = ("error", "frames_on_disk", "path", "sample_rate", "unflushed", "writer")

    def __init__(self, path: Path, sample_rate: int) -> None:
        self.path = path
        self.sample_rate = sample_rate
        self.writer: WavWriter | None = None
        self.unflushed = 0
        self.error: str | None = None
        self.frames_on_disk = 0
        """After a failure: the samples that did reach the disk (the header is made to cover them)."""


_STOP = object()
FLUSH_INTERVAL = 0.5
"""Seconds of audio between header updates (with fsync): a crash loses at most this much, well under a second."""


class RecorderWorker:
    """Owns every open recording file; all methods are safe to call from the event loop."""

    def __init__(self, flush_interval: float = FLUSH_INTERVAL,
                 on_error: Callable[[str, str], None] | None = None) -> None:
        self.flush_interval = flush_interval
        self.on_error = on_error
        self._queue: queue.SimpleQueue[tuple[object, ...] | object] = queue.SimpleQueue()
        self._open: dict[str, _Open] = {}
        self._thread = threading.Thread(target=self._run, name="recorder", daemon=True)
        self._thread.start()

    def open(self, recording_id: str, path: Path, sample_rate: int) -> None:
        """Start a recording file."""
        self._queue.put(("open", recording_id, path, sample_rate))

    def write(self, recording_id: str, samples: npt.NDArray[np.int16]) -> None:
        """Queue samples for a recording (copied, so the caller may reuse its array)."""
        self._queue.put(("write", recording_id, samples.astype("<i2").tobytes()))

    def close(self, recording_id: str) -> Future[RecordingResult]:
        """Finish a recording; the future resolves once its file is complete on disk."""
        future: Future[RecordingResult] = Future()
        self._queue.put(("close", recording_id, future))
        return future

    def stop(self, timeout: float = 10.0) -> None:
        """Close every recording and end the thread."""
        self._queue.put(_STOP)
        self._thread.join(timeout)

    def _run(self) -> None:
        while True:
            command = self._queue.get()
            if command is _STOP:
                for recording_id in list(self._open):
                    self._close(recording_id)
                return
            assert isinstance(command, tuple)
            try:
                self._dispatch(command)
            except Exception:
                logger.exception("recorder failed on %s", command[0])

    def _dispatch(self, command: tuple[object, ...]) -> None:
        kind, recording_id = command[0], str(command[1])
        if kind == "open":
            path, rate = command[2], command[3]
            assert isinstance(path, Path) and isinstance(rate, int)
            entry = self._open[recording_id] = _Open(path, rate)
            try:
                entry.writer = WavWriter(path, rate)
            except OSError as exc:
                self._fail(recording_id, entry, exc)
        elif kind == "write":
            target = self._open.get(recording_id)
            data = command[2]
            if target is None or target.writer is None or target.error or not isinstance(data, bytes):
                return
            try:
                target.writer.write(data)
                target.unflushed += len(data) // 2
                if target.unflushed >= self.flush_interval * target.sample_rate:
                    target.writer.flush()
                    target.unflushed = 0
            except OSError as exc:
                self._fail(recording_id, target, exc)
        elif kind == "close":
            future = command[2]
            assert isinstance(future, Future)
            future.set_result(self._close(recording_id))

    def _fail(self, recording_id: str, entry: _Open, exc: OSError) -> None:
        entry.error = f"{type(exc).__name__}: {exc}"
        logger.error("recording %s: %s", recording_id, entry.error)
        if entry.writer is not None:
            with contextlib.suppress(OSError):
                entry.writer.close()
            try:  # rewriting the header needs no new space, so even a full disk keeps a playable file
                entry.frames_on_disk = repair_header(entry.path)
            except (OSError, ValueError) as repair_error:
                logger.error("recording %s: could not repair %s: %s", recording_id, entry.path, repair_error)
        if self.on_error is not None:
            self.on_error(recording_id, entry.error)

    def _close(self, recording_id: str) -> RecordingResult:
        entry = self._open.pop(recording_id, None)
        if entry is None:
            return RecordingResult(recording_id, Path(), 0, 0, "not open")
        if entry.writer is not None and not entry.error:
            try:
                entry.writer.close()
                entry.frames_on_disk = entry.writer.frames_written
            except OSError as exc:
                self._fail(recording_id, entry, exc)
        return RecordingResult(recording_id, entry.path, entry.sample_rate, entry.frames_on_disk, entry.error)
