"""A 16-bit PCM WAV writer whose header is rewritten on every flush, so the file always plays."""

from __future__ import annotations

import os
import struct
from pathlib import Path
from typing import BinaryIO

HEADER_SIZE = 44


def wav_header(data_bytes: int, sample_rate: int, channels: int = 1) -> bytes:
    """The canonical 44-byte RIFF/WAVE header for `data_bytes` of 16-bit PCM."""
    block_align = 2 * channels
    return struct.pack("<4sI4s4sIHHIIHH4sI", b"RIFF", 36 + data_bytes, b"WAVE", b"fmt ", 16, 1, channels,
                       sample_rate, sample_rate * block_align, block_align, 16, b"data", data_bytes)


class WavWriter:
    """Appends 16-bit little-endian samples to a WAV file."""

    def __init__(self, path: str | Path, sample_rate: int, channels: int = 1) -> None:
        self.path = Path(path)
        self.sample_rate = sample_rate
        self.channels = channels
        self.data_bytes = 0
        self._file: BinaryIO | None = open(self.path, "wb")  # noqa: SIM115 -- closed in close()
        self._file.write(wav_header(0, sample_rate, channels))
        self._file.flush()  # an empty recording is a valid WAV file from the first moment

    @property
    def frames_written(self) -> int:
        """Sample frames written so far."""
        return self.data_bytes // (2 * self.channels)

    def write(self, pcm16le: bytes) -> None:
        """Append raw 16-bit little-endian samples."""
        assert self._file is not None, "writer is closed"
        self._file.write(pcm16le)
        self.data_bytes += len(pcm16le)

    def flush(self) -> None:
        """Make the header describe everything written so far and push it to the disk."""
        assert self._file is not None, "writer is closed"
        self._file.seek(0)
        self._file.write(wav_header(self.data_bytes, self.sample_rate, self.channels))
        self._file.seek(0, os.SEEK_END)
        self._file.flush()
        os.fsync(self._file.fileno())

    def close(self) -> None:
        """Flush and close; closing twice is harmless."""
        if self._file is None:
            return
        try:
            self.flush()
        finally:
            self._file.close()
            self._file = None


def repair_header(path: str | Path) -> int:
    """Rewrite the header of a 16-bit mono WAV to cover every whole sample in the file.

    A recording cut off by a crash has up to one flush interval of audio past what its header
    says; this makes all of it playable. Returns the number of sample frames.
    """
    with open(path, "r+b") as file:
        size = file.seek(0, os.SEEK_END)
        file.seek(0)
        header = file.read(HEADER_SIZE)
        if len(header) < HEADER_SIZE or header[:4] != b"RIFF" or header[8:12] != b"WAVE":
            raise ValueError(f"{path} is not a WAV file written by this recorder")
        channels, sample_rate = struct.unpack_from("<HI", header, 22)
        block_align = 2 * int(channels)
        data_bytes = (size - HEADER_SIZE) // block_align * block_align
        file.truncate(HEADER_SIZE + data_bytes)
        file.seek(0)
        file.write(wav_header(data_bytes, sample_rate, channels))
    return data_bytes // block_align
