"""The mixer: N-1 mixes of many conferences per tick as numpy arrays, the limiter, talk detection, resampling and
the tick schedule.

Knows nothing of SIP or RTP."""

from .clock import TickClock
from .limiter import soft_limit, to_pcm16
from .mixdown import conference_totals, mix_minus

__all__ = ["TickClock", "conference_totals", "mix_minus", "soft_limit", "to_pcm16"]
