"""In-process event bus: every status change of a resource is published once, after it is stored.

Listeners are plain callables (run synchronously, failures logged); `subscribe()` gives an async
iterator over a bounded queue for code that wants to `async for` over events.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import AsyncIterator, Callable
from dataclasses import dataclass
from typing import Any

from .models import Resource

logger = logging.getLogger(__name__)


@dataclass(frozen=True)
class Event:
    """`{"type": ..., "data": <resource>}` plus the customer it belongs to."""

    type: str
    data: dict[str, Any]
    customer_id: str

    def to_json(self) -> dict[str, Any]:
        """The wire form."""
        return {"type": self.type, "data": self.data}


class Subscription:
    """An async iterator of events; `close()` (or leaving `async with`) ends it."""

    def __init__(self, bus: EventBus, maxsize: int) -> None:
        self._bus = bus
        self._queue: asyncio.Queue[Event | None] = asyncio.Queue(maxsize)
        self.dropped = 0

    def _offer(self, event: Event) -> None:
        try:
            self._queue.put_nowait(event)
        except asyncio.QueueFull:
            self.dropped += 1

    def __aiter__(self) -> AsyncIterator[Event]:
        return self._iterate()

    async def _iterate(self) -> AsyncIterator[Event]:
        while True:
            event = await self._queue.get()
            if event is None:
                return
            yield event

    async def get(self, timeout: float | None = None) -> Event:
        """The next event (raises TimeoutError after `timeout` seconds)."""
        event = await asyncio.wait_for(self._queue.get(), timeout)
        if event is None:
            raise asyncio.CancelledError("subscription closed")
        return event

    def close(self) -> None:
        """Stop receiving events; an iteration in progress ends after the events already queued."""
        self._bus.unsubscribe(self)
        if self._queue.full():
            self._queue.get_nowait()
            self.dropped += 1
        self._queue.put_nowait(None)

    async def __aenter__(self) -> Subscription:
        return self

    async def __aexit__(self, *exc: object) -> None:
        self.close()


class EventBus:
    """Publishes resource events to listeners and subscriptions."""

    def __init__(self) -> None:
        self._listeners: list[Callable[[Event], None]] = []
        self._subscriptions: set[Subscription] = set()

    def publish(self, event_type: str, resource: Resource) -> Event:
        """Publish `event_type` with the resource's current representation."""
        logger.debug("event %s %s", event_type, resource.id)
        return self.publish_data(event_type, resource.to_json(), resource.customer_id)

    def publish_data(self, event_type: str, data: dict[str, Any], customer_id: str) -> Event:
        """Publish an event that is not a resource snapshot (a DTMF digit, say)."""
        event = Event(event_type, data, customer_id)
        for listener in list(self._listeners):
            try:
                listener(event)
            except Exception:
                logger.exception("event listener failed on %s", event_type)
        for subscription in list(self._subscriptions):
            subscription._offer(event)
        return event

    def add_listener(self, listener: Callable[[Event], None]) -> Callable[[], None]:
        """Call `listener` for every event; returns a function that removes it."""
        self._listeners.append(listener)

        def remove() -> None:
            if listener in self._listeners:
                self._listeners.remove(listener)

        return remove

    def subscribe(self, maxsize: int = 1000) -> Subscription:
        """An async iterator of every event from now on (events beyond `maxsize` unread are dropped)."""
        subscription = Subscription(self, maxsize)
        self._subscriptions.add(subscription)
        return subscription

    def unsubscribe(self, subscription: Subscription) -> None:
        """Stop delivering to `subscription`."""
        self._subscriptions.discard(subscription)
