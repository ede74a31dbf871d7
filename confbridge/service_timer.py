"""The asyncio adapter of the service's time-driven rules: one timer, armed for `service.get_timer()`."""

from __future__ import annotations

import asyncio
import logging

from .service import ConferenceService

logger = logging.getLogger(__name__)


class ServiceTimer:
    """Calls `service.handle_timer(loop.time())` whenever something is due (the service's clock is `loop.time`)."""

    def __init__(self, service: ConferenceService, loop: asyncio.AbstractEventLoop) -> None:
        self.service = service
        self.loop = loop
        self._handle: asyncio.TimerHandle | None = None
        self._when = 0.0
        service.on_timer_changed = self.arm

    def arm(self) -> None:
        """Set the timer for the service's next deadline, unless it is already set for that or earlier."""
        when = self.service.get_timer()
        if when is None:
            self.close()
            return
        if self._handle is not None:
            if self._when <= when:
                return
            self._handle.cancel()
        self._when = when
        self._handle = self.loop.call_at(when, self._fire)

    def _fire(self) -> None:
        self._handle = None
        try:
            self.service.handle_timer(self.loop.time())
        except Exception:
            logger.exception("conference timeouts and health checks failed")
        self.arm()

    def close(self) -> None:
        """Stop timing."""
        if self._handle is not None:
            self._handle.cancel()
            self._handle = None
