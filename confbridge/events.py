"""In-process event bus: every status change of a resource is published once, after it is stored.

Listeners are plain callables (run synchronously, failures logged); `subscribe()` gives an async
iterator over a bounded queue for code that wants to `async for` over events, optionally only one
customer's events under some topics (the event WebSocket).

Every event carries the topics it is published under, `customer_id:<cid>:<kind>:<id>`, and, for what
belongs to a conference (participants, calls, recordings, transcribes), also
`customer_id:<cid>:conference:<conference id>:<kind>:<id>`. A subscription to a topic receives every event
with a topic equal to it or below it, colon-separated segment by segment (`...:conference` matches
`...:conference:<id>` but not `...:conferencecall:<id>`).
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import AsyncIterator, Callable, Iterable
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


def resource_event(event_type: str, resource: Resource) -> Event:
    """An event carrying the resource as it is now, under the resource's topics."""
    topics = resource_topics(resource.customer_id, type(resource).__name__.lower(), resource.id,
                             conference_of(resource))
    return Event(event_type, resource.to_json(), resource.customer_id, topics)


def conference_of(resource: Resource) -> str:
    """The conference a resource belongs to (NIL_UUID when none)."""
    if getattr(resource, "reference_type", None) == "conference":
        return str(getattr(resource, "reference_id", NIL_UUID))
    return str(getattr(resource, "conference_id", NIL_UUID))


class Subscription:
    """An async iterator of events; `close()` (or leaving `async with`) ends it.

    Unfiltered (made with no customer and no topics) it receives every event. Filtered it receives only the
    events matching one of its topics (and, with a customer, only that customer's), none while it has no topic;
    `subscribe_topics` narrows an unfiltered subscription to the topics given.
    """

    def __init__(self, bus: EventBus, maxsize: int, *, customer_id: str | None = None,
                 topics: Iterable[str] = ()) -> None:
        self._bus = bus
        self._queue: asyncio.Queue[Event | None] = asyncio.Queue(maxsize)
        self.dropped = 0
        self.customer_id = customer_id
        wanted = frozenset(topics)
        # None: unfiltered. Replaced, never mutated, so a publish iterating it never sees it change.
        self._topics: frozenset[str] | None = wanted if customer_id is not None or wanted else None

    @property
    def filtered(self) -> bool:
        """Whether only events matching the topics (and customer) are received."""
        return self._topics is not None

    @property
    def topics(self) -> list[str]:
        """The topics subscribed to, sorted (empty when unfiltered)."""
        return sorted(self._topics or ())

    def subscribe_topics(self, topics: Iterable[str]) -> None:
        """Also receive the events under `topics` (an unfiltered subscription becomes filtered)."""
        old, self._topics = self._topics, (self._topics or frozenset()) | frozenset(topics)
        self._bus._reindex(self, old, self._topics)

    def unsubscribe_topics(self, topics: Iterable[str]) -> None:
        """Stop receiving the events under `topics` (topics not subscribed to are ignored)."""
        if self._topics is not None:
            old, self._topics = self._topics, self._topics - frozenset(topics)
            self._bus._reindex(self, old, self._topics)

    def accepts(self, event: Event) -> bool:
        """Whether the subscription, as it is now, wants `event`."""
        topics = self._topics
        if topics is None:
            return True
        if not topics or (self.customer_id is not None and event.customer_id != self.customer_id):
            return False
        return any(event.matches(topic) for topic in topics)

    def _offer(self, event: Event) -> None:
        if not self.accepts(event):
            return
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
    """Publishes resource events to listeners and subscriptions.

    Filtered subscriptions are indexed by topic, so an event reaches the subscriptions of its topics' segment
    prefixes without looking at any other: a thousand sockets each watching one conference cost nothing to the
    events of the others.
    """

    def __init__(self) -> None:
        self._listeners: list[Callable[[Event], None]] = []
        self._subscriptions: set[Subscription] = set()
        self._unfiltered: set[Subscription] = set()
        self._by_topic: dict[str, set[Subscription]] = {}

    def publish(self, event_type: str, resource: Resource) -> Event:
        """Publish `event_type` with the resource's current representation."""
        logger.debug("event %s %s", event_type, resource.id)
        return self.publish_event(resource_event(event_type, resource))

    def publish_data(self, event_type: str, data: dict[str, Any], customer_id: str,
                     topics: tuple[str, ...] = ()) -> Event:
        """Publish an event that is not a resource snapshot (a DTMF digit, say) under `topics`."""
        return self.publish_event(Event(event_type, data, customer_id, topics))

    def publish_event(self, event: Event) -> Event:
        """Publish an event made earlier (a snapshot taken when its change was saved, say)."""
        for listener in list(self._listeners):
            try:
                listener(event)
            except Exception:
                logger.exception("event listener failed on %s", event.type)
        for subscription in self._candidates(event):
            subscription._offer(event)
        return event

    def _candidates(self, event: Event) -> list[Subscription]:
        """The subscriptions that may want `event`: the unfiltered ones and those of a prefix of its topics."""
        found = list(self._unfiltered)
        by_topic = self._by_topic
        if not by_topic:
            return found
        seen: set[Subscription] = set()
        for topic in event.topics:
            prefix = ""
            for segment in topic.split(":"):
                prefix = f"{prefix}:{segment}" if prefix else segment
                for subscription in by_topic.get(prefix, ()):
                    if subscription not in seen:
                        seen.add(subscription)
                        found.append(subscription)
        return found

    def _reindex(self, subscription: Subscription, old: frozenset[str] | None, new: frozenset[str] | None) -> None:
        """A subscription's topics changed from `old` to `new` (None: unfiltered)."""
        if subscription not in self._subscriptions:
            return
        if old is None:
            self._unfiltered.discard(subscription)
        for topic in old or ():
            holders = self._by_topic.get(topic)
            if holders is not None:
                holders.discard(subscription)
                if not holders:
                    del self._by_topic[topic]
        if new is None:
            self._unfiltered.add(subscription)
        for topic in new or ():
            self._by_topic.setdefault(topic, set()).add(subscription)

    def add_listener(self, listener: Callable[[Event], None]) -> Callable[[], None]:
        """Call `listener` for every event; returns a function that removes it."""
        self._listeners.append(listener)

        def remove() -> None:
            if listener in self._listeners:
                self._listeners.remove(listener)

        return remove

    def subscribe(self, maxsize: int = 1000, *, customer_id: str | None = None,
                  topics: Iterable[str] = ()) -> Subscription:
        """An async iterator of events from now on (events beyond `maxsize` unread are dropped).

        With neither `customer_id` nor `topics`, every event; otherwise only `customer_id`'s events under
        `topics` (none until topics are added with `Subscription.subscribe_topics`).
        """
        subscription = Subscription(self, maxsize, customer_id=customer_id, topics=topics)
        self._subscriptions.add(subscription)
        self._reindex(subscription, frozenset(), subscription._topics)
        return subscription

    def unsubscribe(self, subscription: Subscription) -> None:
        """Stop delivering to `subscription`."""
        self._reindex(subscription, subscription._topics, frozenset())
        self._subscriptions.discard(subscription)
