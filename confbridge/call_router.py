"""Which side carries a call: the one `CallControl` the service talks to, routing each call to its owner.

Calls of SIP dialogs belong to `Telephony`, calls of participants without SIP to `Bots`; both put a call's
controls into effect on its media leg the same way (`apply_call_controls`).
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from .media import MediaEngine
from .models import Call
from .service import CallControl

if TYPE_CHECKING:
    from .bots import Bots


def apply_call_controls(media: MediaEngine, call: Call) -> None:
    """Put a call's mute direction, hold and gains into effect on its media leg."""
    media.configure_leg(call.id, muted=call.mute_direction in ("in", "both"),
                        deaf=call.mute_direction in ("out", "both"), held=call.hold,
                        gain_in_db=call.gain_in, gain_out_db=call.gain_out)


class CallRouter:
    """The service's `CallControl`: calls the bots own go to `bots`, every other call to `telephony`."""

    def __init__(self, telephony: CallControl, bots: Bots) -> None:
        self.telephony = telephony
        self.bots = bots

    def _owner(self, call_id: str) -> CallControl:
        return self.bots if self.bots.owns(call_id) else self.telephony

    def hang_up(self, call_id: str, reason: str) -> bool:
        """End a call on whichever side carries it."""
        return self._owner(call_id).hang_up(call_id, reason)

    def cancel(self, call_id: str) -> bool:
        """Stop ringing a call we placed (only SIP calls ring)."""
        return self._owner(call_id).cancel(call_id)

    def apply_controls(self, call: Call) -> None:
        """Put a call's controls into effect on its media."""
        self._owner(call.id).apply_controls(call)

    def media_statistics(self, call_id: str) -> dict[str, Any] | None:
        """The live media figures of a call."""
        return self._owner(call_id).media_statistics(call_id)

    def media_idle(self, call_id: str) -> float | None:
        """Seconds since a call's peer was last heard."""
        return self._owner(call_id).media_idle(call_id)
