"""Packet-loss concealment for codecs without one of their own (G.711, G.722): a fading repeat.

When audio is lost the last ~20 ms played is repeated. The length of the repeated stretch is chosen
so that it continues the waveform (for voice and tones, a whole number of pitch periods), and what is
left of the step at the join is faded out over 2 ms, so the first concealed sample follows the last
real one without a click. Concealment holds its level for 10 ms, then fades to silence at 60 ms. The
first real audio after a loss is cross-faded in from where the concealment would have gone on.

Per received frame the concealer only keeps references to the last two frames; the work happens
when a loss starts.
"""

from __future__ import annotations

import numpy as np
import numpy.typing as npt
from numpy.lib.stride_tricks import sliding_window_view

Pcm = npt.NDArray[np.int16]
Audio = npt.NDArray[np.float32]

CROSSFADE = 0.002
HOLD = 0.010
SILENT = 0.060
LAG_SEARCH = 0.015
"""Repeat lengths searched below the longest: at least one period of any voice pitch (> 67 Hz)."""


def fade_in(length: int) -> Audio:
    """A raised-cosine ramp rising from ~0 to ~1 over `length` samples (never exactly 0 or 1: both ends blend)."""
    ramp: Audio = np.sin(np.pi / 2 * np.arange(1, length + 1, dtype=np.float32) / (length + 1)) ** 2
    return ramp


class Concealer:
    """The concealment state of one stream of 16-bit audio at `rate` Hz, played in frames of `frame` samples."""

    __slots__ = ("_concealed", "_crossfade", "_fade", "_frame", "_hold", "_lag_search", "_last", "_loop",
                 "_position", "_previous", "_silent")

    def __init__(self, rate: int, frame: int) -> None:
        self._frame = frame
        self._crossfade = max(1, round(CROSSFADE * rate))
        self._hold = round(HOLD * rate)
        self._silent = round(SILENT * rate)
        self._lag_search = round(LAG_SEARCH * rate)
        self._fade = fade_in(self._crossfade)
        self._previous: Pcm | None = None
        self._last: Pcm | None = None
        self._loop: Audio | None = None
        self._position = 0
        self._concealed = 0

    @property
    def concealing(self) -> bool:
        """Whether a loss is being concealed (until the next real audio)."""
        return self._loop is not None

    def good(self, pcm: Pcm) -> Pcm:
        """Real audio: remembered, and cross-faded in from the concealment when it ends a loss."""
        if self._loop is not None:
            pcm = self._fade_in_after_loss(pcm)
        if pcm.size:
            self._previous, self._last = self._last, pcm
        return pcm

    def conceal(self, samples: int, history: Pcm | None = None) -> Pcm:
        """Audio standing in for `samples` lost samples (silence when nothing was heard, or after 60 ms).

        `history` is what was played last (up to two frames), for a caller that keeps it itself instead of
        passing every good frame through `good`; it is used when the loss starts.
        """
        if self._loop is None:
            if history is not None:
                self._previous, self._last = None, history
            self._loop = self._repeat_loop()
            self._position = 0
            self._concealed = 0
        audio = self._continue(samples)
        return np.clip(np.rint(audio), -32768, 32767).astype(np.int16)

    def _history(self) -> Audio:
        parts = [p for p in (self._previous, self._last) if p is not None]
        if not parts:
            return np.zeros(0, dtype=np.float32)
        return np.concatenate(parts).astype(np.float32)[-2 * self._frame :]

    def _continue(self, samples: int) -> Audio:
        loop = self._loop
        if loop is None or samples == 0 or loop.size == 0:
            self._concealed += samples
            return np.zeros(samples, dtype=np.float32)
        indices = (self._position + np.arange(samples)) % loop.size
        elapsed = self._concealed + np.arange(samples, dtype=np.float32)
        gain = np.clip((self._silent - elapsed) / (self._silent - self._hold), 0.0, 1.0).astype(np.float32)
        self._position = (self._position + samples) % loop.size
        self._concealed += samples
        result: Audio = loop[indices] * gain
        return result

    def _fade_in_after_loss(self, pcm: Pcm) -> Pcm:
        count = min(self._crossfade, pcm.size)
        concealment = self._continue(count)
        self._loop = None
        if count == 0:
            return pcm
        ramp = self._fade if count == self._crossfade else fade_in(count)
        joined = pcm.astype(np.float32)
        joined[:count] = ramp * joined[:count] + (1.0 - ramp) * concealment
        return np.clip(np.rint(joined), -32768, 32767).astype(np.int16)

    def _repeat_loop(self) -> Audio:
        """One period of concealment audio: the last ~20 ms played, shaped to follow its end without a click.

        The period length L (at most a frame) is chosen so that the samples just before the repeat's start,
        history[-L - match : -L], look most like the last `match` samples played: for voiced speech and tones
        that makes L a whole number of pitch periods. What is left of the step at the join is removed by
        offsetting the first samples of the period and fading the offset out. Each repeat ends on the last
        sample played, so every later join is the same smooth one.
        """
        match = self._crossfade
        x = self._history()[-(self._frame + match) :]
        longest = x.size - match
        if longest < match or not x.any():  # too little heard, or silence: silence goes on
            return np.zeros(0, dtype=np.float32)
        shortest = max(match, longest - self._lag_search)
        windows = sliding_window_view(x, match)[: x.size - match - shortest + 1]
        errors = ((windows - x[-match:]) ** 2).sum(axis=1)  # errors[s] for L = x.size - match - s, longest first
        # Prefer the longest repeat that matches nearly as well as the best one: long repeats sound less buzzy.
        tolerance = errors.min() * 1.25 + match * 16.0
        lag = longest - int(np.flatnonzero(errors <= tolerance)[0])
        loop = x[-lag:].copy()
        step = x[-1] - x[-lag - 1]  # the last sample played minus the sample that really preceded the repeat's start
        loop[:match] += (1.0 - self._fade) * step
        return loop
