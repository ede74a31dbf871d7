"""The recorder: WAV files fed with numpy frames from a thread of its own. Knows nothing of SIP."""

from .wav import WavWriter, repair_header, wav_header
from .worker import RecorderWorker, RecordingResult

__all__ = ["RecorderWorker", "RecordingResult", "WavWriter", "repair_header", "wav_header"]
