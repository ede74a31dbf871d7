"""The mixer: N-1 mixes of many conferences per tick as numpy arrays, and the tick schedule.

Knows nothing of SIP or RTP."""

from .clock import TickClock
from .mixdown import conference_totals, mix_minus, to_pcm16

__all__ = ["TickClock", "conference_totals", "mix_minus", "to_pcm16"]
