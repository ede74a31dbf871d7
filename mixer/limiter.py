"""The one limiter at the end of the mixing chain: a memoryless soft knee, so nothing wraps and nothing
depends on the order in which signals were added.

Below the knee (-2.5 dBFS) samples pass unchanged; above it they are bent smoothly towards full scale, which
they never pass: with u the excess over the knee in units of the headroom, the output is knee + headroom·u/(1+u),
whose slope is 1 at the knee (no corner) and falls as the input grows (no wrap-around, no flat clip). Being
memoryless it has no attack or release to pump, and a quiet mix is bit-for-bit untouched.
"""

from __future__ import annotations

import numpy as np
import numpy.typing as npt

Frames = npt.NDArray[np.float32]

CEILING = 32767.0
KNEE = 0.75 * CEILING
"""Where limiting starts (about -2.5 dBFS)."""
_SPAN = CEILING - KNEE


def soft_limit(mix: Frames) -> Frames:
    """`mix` (2-D: rows of float samples on the 16-bit scale) limited in place; returns it.

    Only rows that reach the knee are computed; within them every sample goes through the same expression, which
    gives back exactly the samples below the knee.
    """
    if mix.size == 0:
        return mix
    peaks = np.maximum(mix.max(axis=1), -mix.min(axis=1))
    hot = np.flatnonzero(peaks > KNEE)
    if hot.size == 0:
        return mix
    rows = mix[hot]
    magnitude = np.abs(rows)
    over = np.maximum(magnitude - KNEE, 0.0) / _SPAN
    mix[hot] = np.copysign(np.minimum(magnitude, KNEE) + _SPAN * over / (1.0 + over), rows)
    return mix


def to_pcm16(mix: Frames) -> npt.NDArray[np.int16]:
    """The limited mix rounded to 16-bit samples (the limiter keeps it within range; the clip is a guard)."""
    rounded = np.rint(soft_limit(mix))
    np.clip(rounded, -32768, 32767, out=rounded)
    return rounded.astype(np.int16)
