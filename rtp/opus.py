"""Opus (RFC 6716, RTP payload RFC 7587) through libopus, called directly with ctypes.

PyAV's libopus wrapper would be the obvious route, but it cannot conceal a lost packet: decoding an empty
packet puts the FFmpeg decoder into draining mode and every later decode fails with EOFError, and it exposes
no in-band FEC. The bridge needs both, so this module calls libopus itself: `OpusDecoder.conceal` is libopus's
packet-loss concealment (PLC) and `OpusDecoder.recover` rebuilds a lost frame from the redundant (LBRR) copy
that the encoder puts into the following packet when in-band FEC is on.

The library is loaded once, on first use: preferably the copy bundled inside the PyAV wheel (present wherever
PyAV is installed), else the system's libopus. Encoders and decoders own a C state each, freed by `close()`
(or when garbage-collected); every buffer handed to libopus is sized so that no input can overrun it, and
every libopus error becomes an `OpusError`.
"""

from __future__ import annotations

import ctypes
import ctypes.util
import functools
import importlib.util
from pathlib import Path
from typing import Self

import numpy as np
import numpy.typing as npt

OPUS_OK = 0
OPUS_BAD_ARG = -1
OPUS_INVALID_PACKET = -4
OPUS_APPLICATION_VOIP = 2048
OPUS_SET_BITRATE_REQUEST = 4002
OPUS_SET_INBAND_FEC_REQUEST = 4012
OPUS_SET_PACKET_LOSS_PERC_REQUEST = 4014
OPUS_SET_DTX_REQUEST = 4016
OPUS_SET_COMPLEXITY_REQUEST = 4010
OPUS_GET_LOOKAHEAD_REQUEST = 4027

SAMPLE_RATES = (8000, 12000, 16000, 24000, 48000)
"""Rates libopus can encode and decode at."""
MAX_PACKET_BYTES = 4000
"""Output buffer for one encoded packet: above the 3 × 1275 + 7 bytes of a 60 ms packet at the top bitrate."""
MAX_DECODE_MS = 120
"""Longest audio one Opus packet can hold; decode buffers are this long."""
_FRAME_UNITS = (1, 2, 4, 8, 16, 24)
"""Frame durations libopus encodes, in units of 2.5 ms: 2.5, 5, 10, 20, 40 and 60 ms."""


class OpusError(RuntimeError):
    """A libopus call failed; the message is libopus's own error text."""

    def __init__(self, code: int, context: str = "") -> None:
        self.code = code
        prefix = f"{context}: " if context else ""
        super().__init__(f"{prefix}libopus error {code}: {_strerror(code)}")


class _LibOpus:
    """libopus's entry points with their C signatures declared, so ctypes converts and checks arguments."""

    def __init__(self, lib: ctypes.CDLL, path: str) -> None:
        self.path = path
        c_int, c_int32, c_void_p, c_char_p = ctypes.c_int, ctypes.c_int32, ctypes.c_void_p, ctypes.c_char_p
        int_p = ctypes.POINTER(ctypes.c_int)

        self.encoder_create = lib.opus_encoder_create
        self.encoder_create.argtypes = [c_int32, c_int, c_int, int_p]
        self.encoder_create.restype = c_void_p
        self.encode = lib.opus_encode
        self.encode.argtypes = [c_void_p, c_void_p, c_int, c_void_p, c_int32]
        self.encode.restype = c_int32
        # Variadic `int opus_encoder_ctl(OpusEncoder *st, int request, ...)`: declare only the fixed arguments and
        # pass the variadic one as an explicit ctypes value (which also makes ctypes use the variadic calling
        # convention where it differs, as on Apple arm64).
        self.encoder_ctl = lib.opus_encoder_ctl
        self.encoder_ctl.argtypes = [c_void_p, c_int]
        self.encoder_ctl.restype = c_int
        self.encoder_destroy = lib.opus_encoder_destroy
        self.encoder_destroy.argtypes = [c_void_p]
        self.encoder_destroy.restype = None

        self.decoder_create = lib.opus_decoder_create
        self.decoder_create.argtypes = [c_int32, c_int, int_p]
        self.decoder_create.restype = c_void_p
        self.decode = lib.opus_decode
        self.decode.argtypes = [c_void_p, c_char_p, c_int32, c_void_p, c_int, c_int]
        self.decode.restype = c_int
        self.decoder_destroy = lib.opus_decoder_destroy
        self.decoder_destroy.argtypes = [c_void_p]
        self.decoder_destroy.restype = None

        self.packet_get_nb_samples = lib.opus_packet_get_nb_samples
        self.packet_get_nb_samples.argtypes = [c_char_p, c_int32, c_int32]
        self.packet_get_nb_samples.restype = c_int
        self.strerror = lib.opus_strerror
        self.strerror.argtypes = [c_int]
        self.strerror.restype = c_char_p
        self.get_version_string = lib.opus_get_version_string
        self.get_version_string.argtypes = []
        self.get_version_string.restype = c_char_p


def _candidate_paths() -> list[str]:
    """Where libopus may be, best first: PyAV's bundled copy (found without importing av), then the system's."""
    paths: list[str] = []
    spec = importlib.util.find_spec("av")
    if spec is not None and spec.origin is not None:
        package = Path(spec.origin).resolve().parent
        bundled = [(package.parent / "av.libs", "libopus*.so*"), (package / ".dylibs", "libopus*.dylib")]
        for folder, pattern in bundled:
            if folder.is_dir():
                paths.extend(sorted(str(path) for path in folder.glob(pattern)))
    system = ctypes.util.find_library("opus")
    if system is not None:
        paths.append(system)
    return paths


@functools.cache
def _libopus() -> _LibOpus:
    """Load libopus once, on first use, so importing this module never fails just because libopus is missing."""
    failures: list[str] = []
    for path in _candidate_paths():
        try:
            return _LibOpus(ctypes.CDLL(path), path)
        except (OSError, AttributeError) as exc:
            failures.append(f"{path}: {exc}")
    tried = "; ".join(failures) if failures else "no candidate found"
    raise OSError(
        "libopus not found: install PyAV (its wheel bundles libopus) or the system library (e.g. libopus0)"
        f" ({tried})"
    )


def _strerror(code: int) -> str:
    """libopus's text for an error code (falls back to the number if the library cannot be asked)."""
    try:
        text: bytes | None = _libopus().strerror(code)
    except OSError:
        return "unknown error"
    return text.decode("ascii", "replace") if text else "unknown error"


def libopus_version() -> str:
    """The loaded libopus's version string, e.g. 'libopus 1.5.2'."""
    version: bytes = _libopus().get_version_string()
    return version.decode("ascii", "replace")


def libopus_path() -> str:
    """The file libopus was loaded from."""
    return _libopus().path


def _check_format(sample_rate: int, channels: int) -> None:
    """Reject rates and channel counts libopus does not support, with a clear message."""
    if sample_rate not in SAMPLE_RATES:
        raise ValueError(f"Opus sample rate must be one of {SAMPLE_RATES}, not {sample_rate}")
    if channels not in (1, 2):
        raise ValueError(f"Opus channels must be 1 or 2, not {channels}")


def _as_payload(payload: bytes | bytearray | memoryview) -> bytes:
    """The payload as bytes (ctypes passes bytes without copying)."""
    return payload if isinstance(payload, bytes) else bytes(payload)


def packet_samples(payload: bytes | bytearray | memoryview, sample_rate: int = 48000) -> int:
    """Samples per channel an Opus packet decodes to at `sample_rate`, read from its TOC; OpusError if malformed."""
    data = _as_payload(payload)
    count = int(_libopus().packet_get_nb_samples(data, len(data), sample_rate))
    if count < 0:
        raise OpusError(count, "opus_packet_get_nb_samples")
    return count


class OpusEncoder:
    """A libopus encoder for speech (OPUS_APPLICATION_VOIP): `encode` turns one frame of int16 PCM into a packet.

    With `fec` on and `expected_loss` > 0 the encoder adds a low-bitrate copy of each frame to the next packet
    (used by `OpusDecoder.recover`). With `dtx` on, silent frames come out as packets of at most 2 bytes, which
    the sender may skip. The encoder looks ahead `lookahead` samples, so its output lags its input by that much.
    """

    def __init__(
        self,
        sample_rate: int = 48000,
        channels: int = 1,
        bitrate: int = 32000,
        fec: bool = True,
        expected_loss: int = 10,
        dtx: bool = False,
        complexity: int = 10,
    ) -> None:
        _check_format(sample_rate, channels)
        self._lib = _libopus()
        self.sample_rate = sample_rate
        self.channels = channels
        self.frame_sizes = frozenset(sample_rate // 400 * units for units in _FRAME_UNITS)
        """Samples per channel in the frames `encode` accepts: 2.5, 5, 10, 20, 40 or 60 ms at the rate."""
        self._out = ctypes.create_string_buffer(MAX_PACKET_BYTES)
        error = ctypes.c_int(OPUS_OK)
        state = self._lib.encoder_create(sample_rate, channels, OPUS_APPLICATION_VOIP, ctypes.byref(error))
        if error.value != OPUS_OK or not state:
            raise OpusError(error.value or OPUS_BAD_ARG, "opus_encoder_create")
        self._state: int | None = state
        self.set_bitrate(bitrate)
        self._ctl(OPUS_SET_INBAND_FEC_REQUEST, 1 if fec else 0)
        self.set_expected_loss(expected_loss)
        self._ctl(OPUS_SET_DTX_REQUEST, 1 if dtx else 0)
        self._ctl(OPUS_SET_COMPLEXITY_REQUEST, complexity)

    def _live_state(self) -> int:
        """The C encoder state, or ValueError once closed (libopus must never see a freed or NULL state)."""
        if self._state is None:
            raise ValueError("Opus encoder is closed")
        return self._state

    def _ctl(self, request: int, value: int) -> None:
        """Call opus_encoder_ctl with one int argument."""
        result = int(self._lib.encoder_ctl(self._live_state(), request, ctypes.c_int32(value)))
        if result != OPUS_OK:
            raise OpusError(result, f"opus_encoder_ctl({request}, {value})")

    def set_bitrate(self, bitrate: int) -> None:
        """Target bitrate in bit/s (libopus accepts 500 to 512000)."""
        self._ctl(OPUS_SET_BITRATE_REQUEST, bitrate)

    def set_expected_loss(self, percent: int) -> None:
        """Expected packet loss in percent (0-100): how much the encoder spends on in-band FEC."""
        self._ctl(OPUS_SET_PACKET_LOSS_PERC_REQUEST, percent)

    @property
    def lookahead(self) -> int:
        """The encoder's algorithmic delay in samples at its rate (e.g. 312 at 48 kHz for VOIP)."""
        value = ctypes.c_int32(0)
        result = int(self._lib.encoder_ctl(self._live_state(), OPUS_GET_LOOKAHEAD_REQUEST, ctypes.byref(value)))
        if result != OPUS_OK:
            raise OpusError(result, "OPUS_GET_LOOKAHEAD")
        return value.value

    def encode(self, samples: npt.NDArray[np.int16]) -> bytes:
        """Encode one frame (1-D int16, channels interleaved) of 2.5, 5, 10, 20, 40 or 60 ms into one Opus packet."""
        if not isinstance(samples, np.ndarray) or samples.dtype != np.int16 or samples.ndim != 1:
            raise ValueError("Opus encoder takes a 1-D int16 numpy array")
        frame_size, odd = divmod(samples.size, self.channels)
        if odd or frame_size not in self.frame_sizes:
            durations = ", ".join(f"{size * 1000 / self.sample_rate:g}" for size in sorted(self.frame_sizes))
            raise ValueError(f"Opus frame must be {durations} ms ({samples.size} samples given)")
        pcm = np.ascontiguousarray(samples)
        length = int(self._lib.encode(self._live_state(), pcm.ctypes.data, frame_size, self._out, MAX_PACKET_BYTES))
        if length < 0:
            raise OpusError(length, "opus_encode")
        return ctypes.string_at(self._out, length)

    def close(self) -> None:
        """Free the C encoder state (idempotent)."""
        state, self._state = getattr(self, "_state", None), None
        if state is not None:
            self._lib.encoder_destroy(state)

    def __enter__(self) -> Self:
        """Use as a context manager that closes the encoder."""
        return self

    def __exit__(self, *exc_info: object) -> None:
        """Close on leaving the block."""
        self.close()

    def __del__(self) -> None:
        """Free the C state when garbage-collected."""
        self.close()


class OpusDecoder:
    """A libopus decoder: `decode` packets, `conceal` lost ones with libopus's PLC, `recover` them with in-band FEC.

    Output is int16 at `sample_rate`, mono for `channels=1` (stereo streams are down-mixed by libopus) and
    interleaved for `channels=2`. For a lost packet followed by a received one, call `recover(next, lost_samples)`
    and then `decode(next)`; when the next packet is not there (yet), call `conceal(lost_samples)`.
    All three keep the decoder's state continuous, so the audio joins up without clicks.
    """

    def __init__(self, sample_rate: int = 48000, channels: int = 1) -> None:
        _check_format(sample_rate, channels)
        self._lib = _libopus()
        self.sample_rate = sample_rate
        self.channels = channels
        self._step = sample_rate // 400
        self._max_samples = sample_rate * MAX_DECODE_MS // 1000
        # One output buffer per decoder, large enough for any packet at any rate (120 ms at 48 kHz), reused by
        # every call; callers get copies.
        self._pcm = np.zeros(48000 * MAX_DECODE_MS // 1000 * channels, dtype=np.int16)
        self._pcm_address: int = self._pcm.ctypes.data
        error = ctypes.c_int(OPUS_OK)
        state = self._lib.decoder_create(sample_rate, channels, ctypes.byref(error))
        if error.value != OPUS_OK or not state:
            raise OpusError(error.value or OPUS_BAD_ARG, "opus_decoder_create")
        self._state: int | None = state

    def _live_state(self) -> int:
        """The C decoder state, or ValueError once closed (libopus must never see a freed or NULL state)."""
        if self._state is None:
            raise ValueError("Opus decoder is closed")
        return self._state

    def _check_gap(self, samples: int) -> None:
        """A lost stretch must be a positive multiple of 2.5 ms, as libopus requires for PLC and FEC."""
        if samples <= 0 or samples % self._step:
            raise ValueError(f"lost audio must be a positive multiple of 2.5 ms ({self._step} samples), not {samples}")

    def _run(self, data: bytes | None, length: int, frame_size: int, fec: int, context: str) -> npt.NDArray[np.int16]:
        """One opus_decode call into the shared buffer; a copy of what it wrote."""
        decoded = int(self._lib.decode(self._live_state(), data, length, self._pcm_address, frame_size, fec))
        if decoded < 0:
            raise OpusError(decoded, context)
        return self._pcm[: decoded * self.channels].copy()

    def decode(self, payload: bytes) -> npt.NDArray[np.int16]:
        """Decode one packet: all the samples it holds (per channel: up to 120 ms). Malformed packets: OpusError."""
        data = _as_payload(payload)
        if not data:
            # libopus would take a zero-length packet as "lost" and conceal 120 ms; an RTP payload is never empty.
            raise OpusError(OPUS_INVALID_PACKET, "opus_decode of an empty payload")
        return self._run(data, len(data), self._max_samples, 0, "opus_decode")

    def conceal(self, samples: int) -> npt.NDArray[np.int16]:
        """libopus's packet-loss concealment for `samples` lost samples per channel (a multiple of 2.5 ms)."""
        self._check_gap(samples)
        if samples <= self._max_samples:
            return self._run(None, 0, samples, 0, "opus_decode (PLC)")
        chunks = []
        remaining = samples
        while remaining > 0:
            chunk = min(remaining, self._max_samples)
            chunks.append(self._run(None, 0, chunk, 0, "opus_decode (PLC)"))
            remaining -= chunk
        return np.concatenate(chunks)

    def recover(self, next_payload: bytes, samples: int) -> npt.NDArray[np.int16]:
        """Rebuild the lost `samples` just before `next_payload` from its in-band FEC data (libopus falls back to PLC
        when the packet carries none); then decode `next_payload` as usual."""
        self._check_gap(samples)
        if samples > self._max_samples:
            raise ValueError(f"FEC recovers at most {MAX_DECODE_MS} ms ({self._max_samples} samples), not {samples}")
        data = _as_payload(next_payload)
        if not data:
            raise OpusError(OPUS_INVALID_PACKET, "opus_decode (FEC) of an empty payload")
        return self._run(data, len(data), samples, 1, "opus_decode (FEC)")

    def packet_samples(self, payload: bytes) -> int:
        """Samples per channel the packet decodes to at this decoder's rate, without decoding it."""
        return packet_samples(payload, self.sample_rate)

    def close(self) -> None:
        """Free the C decoder state (idempotent)."""
        state, self._state = getattr(self, "_state", None), None
        if state is not None:
            self._lib.decoder_destroy(state)

    def __enter__(self) -> Self:
        """Use as a context manager that closes the decoder."""
        return self

    def __exit__(self, *exc_info: object) -> None:
        """Close on leaving the block."""
        self.close()

    def __del__(self) -> None:
        """Free the C state when garbage-collected."""
        self.close()

