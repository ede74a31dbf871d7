"""Stand-ins for the telephony and media sides of `ConferenceService`, for tests of its rules alone."""

from __future__ import annotations

from concurrent.futures import Future
from pathlib import Path

from confbridge.models import Call
from recorder.worker import RecordingResult


class FakeCalls:
    """Records hang-ups instead of sending BYE; calls in `gone` no longer exist."""

    def hang_up(self, call_id: str, reason: str) -> bool:
        self.hung_up.append((call_id, reason))
        return call_id not in self.gone

    def __init__(self) -> None:
        self.hung_up: list[tuple[str, str]] = []
        self.gone: set[str] = set()
        self.mutes: list[tuple[str, str]] = []
        self.live: dict[str, dict[str, object]] = {}
        self.idle: dict[str, float] = {}
        """Seconds a call's media has been silent (0 unless set)."""

    def cancel(self, call_id: str) -> bool:
        return False

    def apply_controls(self, call: Call) -> None:
        self.mutes.append((call.id, call.mute_direction))

    def media_statistics(self, call_id: str) -> dict[str, object] | None:
        return self.live.get(call_id)

    def media_idle(self, call_id: str) -> float | None:
        return None if call_id in self.gone else self.idle.get(call_id, 0.0)


class FakeMedia:
    """Pretends to record; the test resolves the futures."""

    def __init__(self) -> None:
        self.recording: dict[str, tuple[str, Path]] = {}
        self.futures: dict[str, Future[RecordingResult]] = {}
        self.options: dict[str, tuple[bool, float | None]] = {}

    def start_recording(self, conference_id: str, recording_id: str, path: Path, *, tracks: bool = False,
                        max_seconds: float | None = None) -> int:
        self.recording[conference_id] = (recording_id, path)
        self.options[recording_id] = (tracks, max_seconds)
        return 8000

    def stop_recording(self, conference_id: str) -> Future[RecordingResult]:
        recording_id, path = self.recording.pop(conference_id)
        future: Future[RecordingResult] = Future()
        self.futures[recording_id] = future
        future.set_result(RecordingResult(recording_id, path, 8000, 16000))
        return future
