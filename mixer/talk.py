"""Talk detection for many participants at once: frame energy against two thresholds, with hysteresis.

A participant starts talking after `start_frames` frames in a row above `start_dbfs` and stops after
`stop_frames` frames in a row below `stop_dbfs` (a lower threshold, so a voice that dips briefly does not flap).
State is kept per index (the caller's stable participant index), in arrays that grow on demand.
"""

from __future__ import annotations

import numpy as np
import numpy.typing as npt

Frames = npt.NDArray[np.float32]
Indices = npt.NDArray[np.intp]

FULL_SCALE_POWER = 32768.0 ** 2


class TalkDetector:
    """Energy-based talk detection with hysteresis."""

    def __init__(self, *, start_dbfs: float = -40.0, stop_dbfs: float = -46.0, start_frames: int = 2,
                 stop_frames: int = 25, capacity: int = 16) -> None:
        if stop_dbfs > start_dbfs:
            raise ValueError("the stop threshold must not be above the start threshold")
        self.start_power = FULL_SCALE_POWER * 10 ** (start_dbfs / 10)
        self.stop_power = FULL_SCALE_POWER * 10 ** (stop_dbfs / 10)
        self.start_frames = start_frames
        self.stop_frames = stop_frames
        self.talking = np.zeros(capacity, dtype=np.bool_)
        self._above = np.zeros(capacity, dtype=np.int32)
        self._below = np.zeros(capacity, dtype=np.int32)
        self.level_dbfs = np.full(capacity, -120.0, dtype=np.float32)

    def _ensure(self, size: int) -> None:
        if size <= self.talking.size:
            return
        grow = max(size, 2 * self.talking.size) - self.talking.size
        self.talking = np.concatenate([self.talking, np.zeros(grow, np.bool_)])
        self._above = np.concatenate([self._above, np.zeros(grow, np.int32)])
        self._below = np.concatenate([self._below, np.zeros(grow, np.int32)])
        self.level_dbfs = np.concatenate([self.level_dbfs, np.full(grow, -120.0, np.float32)])

    def reset(self, indices: Indices) -> None:
        """Forget participants (they left, or their slot is reused): not talking."""
        self._ensure(int(indices.max()) + 1 if indices.size else 0)
        self.talking[indices] = False
        self._above[indices] = self._below[indices] = 0
        self.level_dbfs[indices] = -120.0

    def update(self, indices: Indices, frames: Frames) -> tuple[Indices, Indices]:
        """One frame per participant (rows of `frames` for `indices`); returns (started, stopped) indices."""
        if indices.size == 0:
            return indices, indices
        self._ensure(int(indices.max()) + 1)
        power = np.einsum("ij,ij->i", frames, frames) / frames.shape[1]
        self.level_dbfs[indices] = 10 * np.log10(power / FULL_SCALE_POWER + 1e-12)
        above = np.where(power > self.start_power, self._above[indices] + 1, 0)
        below = np.where(power < self.stop_power, self._below[indices] + 1, 0)
        self._above[indices], self._below[indices] = above, below
        talking = self.talking[indices]
        start = ~talking & (above >= self.start_frames)
        stop = talking & (below >= self.stop_frames)
        self.talking[indices[start]] = True
        self.talking[indices[stop]] = False
        return indices[start], indices[stop]
