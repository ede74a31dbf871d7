"""Tones in, tones out: generate test signals and find them again by FFT."""

from __future__ import annotations

import io
import wave

import numpy as np
import numpy.typing as npt


def tone(frequency: float, seconds: float, rate: int = 8000, amplitude: float = 6000.0) -> npt.NDArray[np.int16]:
    """A sine tone as 16-bit samples."""
    t = np.arange(int(seconds * rate)) / rate
    return np.rint(amplitude * np.sin(2 * np.pi * frequency * t)).astype(np.int16)


def _band_energy(signal: npt.NDArray[np.int16], rate: int, frequency: float, width: float) -> tuple[float, float]:
    """(energy within +-width Hz of `frequency`, total energy) of the Hann-windowed spectrum."""
    samples = signal.astype(np.float64)
    if samples.size < rate // 10:
        raise ValueError("signal too short to analyse")
    spectrum = np.abs(np.fft.rfft(samples * np.hanning(samples.size))) ** 2
    freqs = np.fft.rfftfreq(samples.size, 1 / rate)
    band = (freqs >= frequency - width) & (freqs <= frequency + width)
    return float(spectrum[band].sum()), float(spectrum.sum())


def tone_level_db(signal: npt.NDArray[np.int16], rate: int, frequency: float, width: float = 15.0) -> float:
    """The share of the signal's energy within +-width Hz of `frequency`, in dB (0 dB = all of it)."""
    band, total = _band_energy(signal, rate, frequency, width)
    return float(10 * np.log10(band / (total + 1e-9) + 1e-15))


def tone_power_db(signal: npt.NDArray[np.int16], rate: int, frequency: float, width: float = 15.0) -> float:
    """The energy within +-width Hz of `frequency` in dB of an arbitrary reference: differences between signals of
    the same length are level changes of the tone."""
    band, _ = _band_energy(signal, rate, frequency, width)
    return float(10 * np.log10(band + 1e-9))


def has_tone(signal: npt.NDArray[np.int16], rate: int, frequency: float) -> bool:
    """Present: the tone carries at least 3 % of the energy (-15 dB); three equal tones carry -4.8 dB each."""
    return tone_level_db(signal, rate, frequency) >= -15.0


def lacks_tone(signal: npt.NDArray[np.int16], rate: int, frequency: float) -> bool:
    """Absent: the tone carries less than 0.01 % of the energy (-40 dB)."""
    return tone_level_db(signal, rate, frequency) < -40.0


def read_wav(data: bytes) -> tuple[int, npt.NDArray[np.int16]]:
    """(sample rate, mono 16-bit samples) of a WAV file's bytes."""
    with wave.open(io.BytesIO(data)) as reader:
        assert reader.getnchannels() == 1 and reader.getsampwidth() == 2
        return reader.getframerate(), np.frombuffer(reader.readframes(reader.getnframes()), dtype="<i2")
