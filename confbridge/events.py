"""In-process event bus: every status change of a resource is published once, after it is stored.

Listeners are plain callables (run synchronously, failures logged); `subscribe()` gives an async
iterator over a bounded queue for code that wants to `async for` over events.

Every event carries the topics it is published under, `customer_id:<cid>:<kind>:<id>`, and, for what
belongs to a conference (participants, calls, recordings, transcribes), also
`customer_id:<cid>:conference:<conference id>:<kind>:<id>`. A subscription to a topic receives every event
with a topic equal to it or below it, colon-separated segment by segment (`...:conference` matches
`...:conference:<id>` but not `...:conferencecall:<id>`).
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import AsyncIterator, Callable
from dataclasses import dataclass
from typing import Any

from .models import Resource
from .timestamps import NIL_UUID

logger = logging.getLogger(__name__)


@dataclass(frozen=True)
class Event:
    """`{"type": ..., "data": <resource>}` plus the customer it belongs to and the topics it is published under."""

    type: str
    data: dict[str, Any]
    customer_id: str
    topics: tuple[str, ...] = ()

    def to_json(self) -> dict[str, Any]:
        """The wire form."""
        return {"type": self.type, "data": self.data}

    def matches(self, topic: str) -> bool:
        """Whether a subscription to `topic` receives this event (segment-wise prefix of one of its topics)."""
        return any(own == topic or own.startswith(topic + ":") for own in self.topics)


def resource_topics(customer_id: str, kind: str, resource_id: str, conference_id: str = NIL_UUID) -> tuple[str, ...]:
    """The topics of an event about resource `kind`/`resource_id`, which may belong to a conference."""
    customer = f"customer_id:{customer_id}"
    own = f"{customer}:{kind}:{resource_id}"
    if kind == "conference" or not conference_id or conference_id == NIL_UUID:
        return (own,)
    return (own, f"{customer}:conference:{conference_id}:{kind}:{resource_id}")


def conference_of(resource: Resource) -> str:
    """The conference a resource belongs to (NIL_UUID when none)."""
    if getattr(resource, "reference_type", None) == "conference":
        return str(getattr(resource, "reference_id", NIL_UUID))
    return str(getattr(resource, "conference_id", NIL_UUID))


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
        kind = type(resource).__name__.lower()
        topics = resource_topics(resource.customer_id, kind, resource.id, conference_of(resource))
        return self.publish_data(event_type, resource.to_json(), resource.customer_id, topics)

    def publish_data(self, event_type: str, data: dict[str, Any], customer_id: str,
                     topics: tuple[str, ...] = ()) -> Event:
        """Publish an event that is not a resource snapshot (a DTMF digit, say) under `topics`."""
        event = Event(event_type, data, customer_id, topics)
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
