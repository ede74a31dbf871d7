"""Integer-ratio sample-rate conversion (8000, 16000, 48000 Hz) of many streams at once, with per-stream state.

The mixer works on one 20 ms block per participant per tick, every participant of every conference stacked as
the rows of one array, and participants may use codecs of different rates (G.711 at 8 kHz, G.722 at 16 kHz,
Opus at 48 kHz). `BatchResampler` converts all rows of such a block in a handful of numpy calls, with no Python
loop over rows or samples; the only per-stream state is the filter history, the last few input samples, which
the caller keeps beside each stream and passes back on the next tick, so a signal cut into blocks comes out the
same as if it had been converted in one piece.

One Kaiser-windowed sinc prototype low-pass runs at the higher of the two rates, cut a little below the lower
rate's Nyquist frequency so that nothing folds back.

- Up by L (polyphase, no zero stuffing): output n*L + p = L * sum_k h[k*L + p] * x[n - k].
- Down by M (only the kept outputs are computed): output n = sum_j h[j] * x[n*M + (M-1) - j].

Both are a sliding window over `concatenate([history, frames])` times a coefficient matrix. A window of one
low-rate sample per matrix row would make a `sliding_window_view` whose windows overlap in memory, which BLAS
cannot take, and numpy's fallback loop is several times slower than BLAS. So each window spans `_BLOCK`
low-rate samples plus the filter's support and the coefficient matrix is the matching block-Toeplitz
arrangement of the same coefficients (built once in `__init__`): the windows are copied into one contiguous
matrix and a single float32 GEMM yields `_BLOCK` low-rate samples' worth of output per window. The arithmetic
is exactly the two formulas above (the matrix only adds exact zeros), at about 60 % useful multiply-adds.
"""

from __future__ import annotations

import numpy as np
import numpy.typing as npt
from numpy.lib.stride_tricks import sliding_window_view

Frames = npt.NDArray[np.float32]

_BLOCK = 16  # low-rate samples per window: 160 (8 kHz) and 320 (16 kHz) samples per tick are multiples of it
_CUTOFF_MARGIN = 0.92  # the cutoff as a fraction of the lower rate's Nyquist frequency


def design_lowpass(taps: int, cutoff: float, beta: float = 8.6) -> npt.NDArray[np.float64]:
    """A Kaiser-windowed sinc low-pass of `taps` taps, `cutoff` a fraction of the sampling rate, unit DC gain."""
    if taps < 1:
        raise ValueError("taps must be at least 1")
    if not 0.0 < cutoff < 0.5:
        raise ValueError("cutoff must lie strictly between 0 and 0.5 (a fraction of the sampling rate)")
    n = np.arange(taps, dtype=np.float64) - (taps - 1) / 2.0
    h: npt.NDArray[np.float64] = 2.0 * cutoff * np.sinc(2.0 * cutoff * n) * np.kaiser(taps, beta)
    h /= h.sum()
    return h


class BatchResampler:
    """Converts many streams from `from_rate` to `to_rate` (an integer ratio) block by block, filter state per row."""

    def __init__(self, from_rate: int, to_rate: int, *, taps_per_phase: int = 24) -> None:
        if from_rate <= 0 or to_rate <= 0:
            raise ValueError(f"sample rates must be positive, got {from_rate} -> {to_rate}")
        if taps_per_phase < 1:
            raise ValueError("taps_per_phase must be at least 1")
        if to_rate % from_rate == 0:
            up, down = to_rate // from_rate, 1
        elif from_rate % to_rate == 0:
            up, down = 1, from_rate // to_rate
        else:
            raise ValueError(f"{from_rate} -> {to_rate} Hz is not an integer up- or downsampling ratio")
        self.from_rate = from_rate
        self.to_rate = to_rate
        self.up = up
        self.down = down
        self.taps_per_phase = taps_per_phase
        factor = max(up, down)
        self.taps = taps_per_phase * factor if factor > 1 else 0
        self.filter: npt.NDArray[np.float64] = (
            design_lowpass(self.taps, 0.5 / factor * _CUTOFF_MARGIN) if factor > 1 else np.ones(1)
        )
        if up > 1:
            # Window j holds inputs jB - (T-1) .. jB + B - 1; input n = jB + b sits at window index b + T - 1,
            # so x[n - k] is window[b + T - 1 - k] and feeds output (b, p) with weight L * h[k*L + p].
            t = taps_per_phase
            phases = (up * self.filter).reshape(t, up)[::-1]  # phases[T-1-k, p] = L * h[k*L + p]
            matrix = np.zeros((_BLOCK + t - 1, _BLOCK, up))
            for b in range(_BLOCK):
                matrix[b : b + t, b, :] = phases
            self._history = t - 1
            self._offset = 0  # leading history samples no window needs
            self._window = _BLOCK + t - 1
            self._step = _BLOCK
            self._coefficients: Frames = np.ascontiguousarray(matrix.reshape(self._window, _BLOCK * up), np.float32)
        elif down > 1:
            # With the first M-1 history samples skipped, window j starts at input j*B*M - (N-M); output
            # n = jB + b needs x[n*M + M-1 - i], which is window[b*M + N-1 - i], with weight h[i].
            n_taps = self.taps
            matrix = np.zeros(((_BLOCK - 1) * down + n_taps, _BLOCK))
            for b in range(_BLOCK):
                matrix[b * down : b * down + n_taps, b] = self.filter[::-1]
            self._history = n_taps - 1
            self._offset = down - 1
            self._window = matrix.shape[0]
            self._step = _BLOCK * down
            self._coefficients = np.ascontiguousarray(matrix, np.float32)
        else:
            self._history = 0
            self._offset = 0
            self._window = 0
            self._step = 0
            self._coefficients = np.ones((1, 1), np.float32)

    @property
    def history_length(self) -> int:
        """Past input samples each stream keeps between calls: taps_per_phase - 1 up, taps - 1 down, 0 identity."""
        return self._history

    @property
    def delay(self) -> float:
        """Group delay of the conversion in output samples (input sample 0 comes out around output `delay`)."""
        if self.up > 1:
            return (self.taps - 1) / 2.0
        if self.down > 1:
            return ((self.taps - 1) / 2.0 - (self.down - 1)) / self.down
        return 0.0

    def new_history(self, rows: int) -> Frames:
        """The initial (silent) filter state of `rows` streams."""
        return np.zeros((rows, self._history), dtype=np.float32)

    def output_length(self, n_in: int) -> int:
        """Output samples per row for `n_in` input samples per row."""
        return n_in * self.up // self.down

    def process(self, frames: Frames, history: Frames) -> tuple[Frames, Frames]:
        """Convert one block of every row; returns (output, new history) and leaves the arguments untouched."""
        if frames.ndim != 2:
            raise ValueError(f"frames must be 2-D (rows, samples), got shape {frames.shape}")
        rows, n_in = frames.shape
        if history.shape != (rows, self._history):
            raise ValueError(f"history must have shape {(rows, self._history)}, got {history.shape}")
        if n_in % self.down:
            raise ValueError(f"block of {n_in} samples is not a multiple of the downsampling factor {self.down}")
        if self.up == self.down:
            return frames.astype(np.float32), history.astype(np.float32)
        n_low = n_in // self.down
        n_out = n_in * self.up // self.down
        history_end = self._history + n_in
        if n_low == 0:
            return np.zeros((rows, 0), np.float32), history.astype(np.float32)
        n_windows = -(-n_low // _BLOCK)
        pad = n_windows * _BLOCK * self.down - n_in  # zeros after the block so whole windows cover it; cut off after
        buffer = np.empty((rows, history_end + pad), dtype=np.float32)  # concatenate([history, frames, zeros])
        buffer[:, : self._history] = history
        buffer[:, self._history : history_end] = frames
        buffer[:, history_end:] = 0.0
        windows = sliding_window_view(buffer[:, self._offset :], self._window, axis=1)[:, :: self._step]
        # reshape copies the overlapping windows into one contiguous matrix, so the product is a single GEMM.
        matrix = windows.reshape(rows * n_windows, self._window)
        out: Frames = (matrix @ self._coefficients).reshape(rows, n_windows * _BLOCK * self.up)
        if pad:
            out = np.ascontiguousarray(out[:, :n_out])
        return out, buffer[:, n_in:history_end].copy()
