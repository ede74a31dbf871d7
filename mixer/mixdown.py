"""N-1 mixing of many conferences in one pass over numpy arrays.

Participants are laid out conference by conference (each conference's rows contiguous), so every
conference is summed in a few whole-array operations and one fancy-indexed subtraction removes each
participant's own signal. Inputs are integer-valued (decoded 16-bit audio), so the float32 sums are
exact while a conference's sum stays below 2**24, i.e. for up to 512 full-scale talkers.
"""

from __future__ import annotations

import numpy as np
import numpy.typing as npt

Frames = npt.NDArray[np.float32]
_MAX_RUNS = 32
"""Runs of equal-sized conferences up to which they are summed run by run rather than by `np.add.reduceat`."""


def conference_totals(frames: Frames, starts: npt.NDArray[np.intp]) -> Frames:
    """Sum the rows of each conference: `starts[g]` is the first row of conference g (ascending).

    Consecutive conferences of one size are summed together as a (conferences, size, samples) block, which is
    several times quicker than `np.add.reduceat` (a caller that orders conferences by size gets one block per
    size); with many different sizes in a row, reduceat it is.
    """
    rows = frames.shape[0]
    if rows == 0:
        return np.zeros((0, frames.shape[1]), dtype=np.float32)
    sizes = np.diff(starts, append=rows)
    change = np.flatnonzero(np.diff(sizes)) + 1
    if change.size >= _MAX_RUNS:
        return np.add.reduceat(frames, starts, axis=0)
    run_starts = np.concatenate(([0], change))
    run_ends = np.concatenate((change, [sizes.size]))
    blocks = []
    for first, end in zip(run_starts.tolist(), run_ends.tolist(), strict=True):
        size, row = int(sizes[first]), int(starts[first])
        count = end - first
        blocks.append(frames[row : row + count * size].reshape(count, size, -1).sum(axis=1, dtype=np.float32))
    return blocks[0] if len(blocks) == 1 else np.concatenate(blocks)


def mix_minus(frames: Frames, totals: Frames, conference_of_row: npt.NDArray[np.intp]) -> Frames:
    """What each participant hears: its conference's total minus its own signal."""
    return totals[conference_of_row] - frames
