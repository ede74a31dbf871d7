"""N-1 mixing of many conferences in one pass over numpy arrays.

Participants are laid out conference by conference (each conference's rows contiguous), so one
`np.add.reduceat` sums every conference at once and one fancy-indexed subtraction removes each
participant's own signal. Inputs are integer-valued (decoded 16-bit audio), so the float32 sums are
exact while a conference's sum stays below 2**24, i.e. for up to 512 full-scale talkers.
"""

from __future__ import annotations

import numpy as np
import numpy.typing as npt

Frames = npt.NDArray[np.float32]
_SUMMED_ONE_BY_ONE = 16


def conference_totals(frames: Frames, starts: npt.NDArray[np.intp]) -> Frames:
    """Sum the rows of each conference: `starts[g]` is the first row of conference g (ascending)."""
    if frames.shape[0] == 0:
        return np.zeros((0, frames.shape[1]), dtype=np.float32)
    if starts.size <= _SUMMED_ONE_BY_ONE:  # a few (large) conferences: a plain sum each is quicker than reduceat
        ends = [*starts[1:].tolist(), frames.shape[0]]
        return np.stack([frames[start:end].sum(axis=0, dtype=np.float32)
                         for start, end in zip(starts.tolist(), ends, strict=True)])
    return np.add.reduceat(frames, starts, axis=0)


def mix_minus(frames: Frames, totals: Frames, conference_of_row: npt.NDArray[np.intp]) -> Frames:
    """What each participant hears: its conference's total minus its own signal."""
    return totals[conference_of_row] - frames


def to_pcm16(mix: Frames) -> npt.NDArray[np.int16]:
    """Round and clip a float mix to 16-bit samples, the single final clip of the mixing chain."""
    rounded = np.rint(mix)
    np.clip(rounded, -32768, 32767, out=rounded)  # in place: ten times faster than a clipped copy here
    return rounded.astype(np.int16)
