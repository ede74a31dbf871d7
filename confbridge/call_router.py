"""Which side carries a call: the one `CallControl` the service talks to.

Ending a call is its owner's business: SIP dialogs belong to `Telephony`, participants without SIP to `Bots`.
Everything about a call's media (its controls, figures and liveness) is the same for both, since every call's
media is a leg of the `MediaEngine` under the call's id; the router answers that itself.
"""

from __future__ import annotations

from typing import Any, Protocol

from .media import MediaEngine
from .models import Call


class CallEnds(Protocol):
    """What differs by who carries a call: ending it."""

    def hang_up(self, call_id: str, reason: str) -> bool:
        """End a call; False when there is no such call in progress."""

    def cancel(self, call_id: str) -> bool:
        """Stop ringing a call we placed; False when it is not ringing."""


class Owners(CallEnds, Protocol):
    """A side that carries some of the calls."""

    def owns(self, call_id: str) -> bool:
        """Whether a call is carried here."""


class CallRouter:
    """The service's `CallControl`: calls `bots` owns are ended there, every other call by `telephony`."""

    def __init__(self, telephony: CallEnds, bots: Owners, media: MediaEngine) -> None:
        self.telephony = telephony
        self.bots = bots
        self.media = media

    def _owner(self, call_id: str) -> CallEnds:
        return self.bots if self.bots.owns(call_id) else self.telephony

    def hang_up(self, call_id: str, reason: str) -> bool:
        """End a call on whichever side carries it."""
        return self._owner(call_id).hang_up(call_id, reason)

    def cancel(self, call_id: str) -> bool:
        """Stop ringing a call we placed (only SIP calls ring)."""
        return self._owner(call_id).cancel(call_id)

    def apply_controls(self, call: Call) -> None:
        """Put a call's mute direction, hold and gains into effect on its media leg."""
        self.media.configure_leg(call.id, muted=call.mute_direction in ("in", "both"),
                                 deaf=call.mute_direction in ("out", "both"), held=call.hold,
                                 gain_in_db=call.gain_in, gain_out_db=call.gain_out)

    def media_statistics(self, call_id: str) -> dict[str, Any] | None:
        """The live media figures of a call's leg (None without one)."""
        leg = self.media.leg(call_id)
        return leg.statistics() if leg is not None else None

    def media_idle(self, call_id: str) -> float | None:
        """Seconds since the call's peer was last heard (0 while it should not be sending); None without media."""
        leg = self.media.leg(call_id)
        return leg.session.idle_seconds(self.media.loop.time()) if leg is not None else None
