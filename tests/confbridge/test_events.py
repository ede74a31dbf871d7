"""Event subscriptions filtered by customer and topic (what the event WebSocket is built on), and the socket's
message parsing."""

from __future__ import annotations

import asyncio
import json
from collections.abc import Callable, Iterator

import pytest

from confbridge.errors import InvalidRequest
from confbridge.event_socket import parse_command, topic_allowed
from confbridge.events import Event, EventBus, Subscription
from confbridge.models import Call, Conference, Conferencecall

C = "11111111-1111-4111-8111-111111111111"
D = "22222222-2222-4222-8222-222222222222"
CONF_1 = "aaaaaaaa-0000-4000-8000-000000000001"
CONF_2 = "aaaaaaaa-0000-4000-8000-000000000002"
PART_1 = "bbbbbbbb-0000-4000-8000-000000000001"
CALL_1 = "cccccccc-0000-4000-8000-000000000001"

Drain = Callable[[Subscription], list[tuple[str, str]]]


@pytest.fixture
def drain() -> Iterator[Drain]:
    """Reads every event queued so far as (type, resource id), all on one event loop (a subscription's queue
    stays bound to the loop that first waited on it)."""
    with asyncio.Runner() as loop:
        yield lambda subscription: loop.run(read_queued(subscription))


async def read_queued(subscription: Subscription) -> list[tuple[str, str]]:
    """(type, resource id) of every event queued so far."""
    seen: list[tuple[str, str]] = []
    while True:
        try:
            event = await subscription.get(0.01)
        except TimeoutError:
            return seen
        seen.append((event.type, str(event.data["id"])))


def publish_activity(bus: EventBus) -> None:
    """Two conferences of customer C (one with a participant and its call), one of customer D."""
    bus.publish("conference_created", Conference(id=CONF_1, customer_id=C))
    bus.publish("conference_created", Conference(id=CONF_2, customer_id=C))
    bus.publish("conferencecall_created", Conferencecall(id=PART_1, customer_id=C, conference_id=CONF_1))
    bus.publish("call_updated", Call(id=CALL_1, customer_id=C, conference_id=CONF_1))
    bus.publish("conference_updated", Conference(id=CONF_1, customer_id=C))
    bus.publish("conference_created", Conference(id=CONF_1.replace("a", "d"), customer_id=D))


def test_plain_subscribe_still_gets_every_event(drain: Drain) -> None:
    bus = EventBus()
    everything = bus.subscribe()
    assert not everything.filtered
    publish_activity(bus)
    assert len(drain(everything)) == 6


def test_a_customer_subscription_gets_nothing_until_it_subscribes(drain: Drain) -> None:
    bus = EventBus()
    subscription = bus.subscribe(customer_id=C)
    assert subscription.filtered and subscription.topics == []
    publish_activity(bus)
    assert drain(subscription) == []


def test_the_conference_topic_gets_conferences_and_what_belongs_to_them(drain: Drain) -> None:
    bus = EventBus()
    subscription = bus.subscribe(customer_id=C, topics=[f"customer_id:{C}:conference"])
    publish_activity(bus)
    assert drain(subscription) == [("conference_created", CONF_1), ("conference_created", CONF_2),
                                   ("conferencecall_created", PART_1), ("call_updated", CALL_1),
                                   ("conference_updated", CONF_1)]


def test_conference_is_not_a_prefix_of_conferencecall(drain: Drain) -> None:
    bus = EventBus()
    subscription = bus.subscribe(customer_id=C, topics=[f"customer_id:{C}:conference"])
    bus.publish_data("conferencecall_updated", {"id": PART_1}, C, (f"customer_id:{C}:conferencecall:{PART_1}",))
    assert drain(subscription) == []
    event = Event("conferencecall_updated", {}, C, (f"customer_id:{C}:conferencecall:{PART_1}",))
    assert not event.matches(f"customer_id:{C}:conference")
    assert event.matches(f"customer_id:{C}:conferencecall")


def test_one_conference_topic_gets_only_that_conference(drain: Drain) -> None:
    bus = EventBus()
    subscription = bus.subscribe(customer_id=C, topics=[f"customer_id:{C}:conference:{CONF_1}"])
    publish_activity(bus)
    assert drain(subscription) == [("conference_created", CONF_1), ("conferencecall_created", PART_1),
                                   ("call_updated", CALL_1), ("conference_updated", CONF_1)]


def test_another_customers_events_never_arrive(drain: Drain) -> None:
    bus = EventBus()
    subscription = bus.subscribe(customer_id=C)
    # Even a topic naming the other customer (the socket refuses those) yields nothing of theirs.
    subscription.subscribe_topics([f"customer_id:{D}", f"customer_id:{D}:conference"])
    publish_activity(bus)
    assert drain(subscription) == []


def test_topics_alone_filter_without_a_customer(drain: Drain) -> None:
    bus = EventBus()
    subscription = bus.subscribe(topics=[f"customer_id:{D}"])
    publish_activity(bus)
    assert [kind for kind, _ in drain(subscription)] == ["conference_created"]


def test_subscribe_and_unsubscribe_change_what_arrives(drain: Drain) -> None:
    bus = EventBus()
    subscription = bus.subscribe(customer_id=C)
    subscription.subscribe_topics([f"customer_id:{C}:conference:{CONF_2}", f"customer_id:{C}:call"])
    assert subscription.topics == sorted([f"customer_id:{C}:conference:{CONF_2}", f"customer_id:{C}:call"])
    publish_activity(bus)
    assert drain(subscription) == [("conference_created", CONF_2), ("call_updated", CALL_1)]
    subscription.unsubscribe_topics([f"customer_id:{C}:conference:{CONF_2}", f"customer_id:{C}:call",
                                     "never-subscribed"])
    assert subscription.topics == []
    publish_activity(bus)
    assert drain(subscription) == []


def test_accepts_follows_an_unsubscribe_of_queued_events() -> None:
    bus = EventBus()
    subscription = bus.subscribe(customer_id=C, topics=[f"customer_id:{C}"])
    event = bus.publish("conference_created", Conference(id=CONF_1, customer_id=C))
    assert subscription.accepts(event)
    subscription.unsubscribe_topics([f"customer_id:{C}"])
    assert not subscription.accepts(event)


def test_subscribe_topics_narrows_an_unfiltered_subscription(drain: Drain) -> None:
    bus = EventBus()
    subscription = bus.subscribe()
    subscription.unsubscribe_topics(["anything"])
    assert not subscription.filtered
    subscription.subscribe_topics([f"customer_id:{C}:conference:{CONF_2}"])
    publish_activity(bus)
    assert drain(subscription) == [("conference_created", CONF_2)]


def test_a_full_filtered_queue_counts_drops(drain: Drain) -> None:
    bus = EventBus()
    subscription = bus.subscribe(2, customer_id=C, topics=[f"customer_id:{C}"])
    publish_activity(bus)
    assert len(drain(subscription)) == 2
    assert subscription.dropped == 3


def test_closed_subscriptions_receive_nothing() -> None:
    bus = EventBus()
    subscription = bus.subscribe(customer_id=C, topics=[f"customer_id:{C}"])
    subscription.close()
    publish_activity(bus)

    async def rest() -> list[Event]:
        return [event async for event in subscription]

    assert asyncio.run(rest()) == []


# -- the event socket's messages ------------------------------------------------------------------

def test_topics_must_be_the_callers_own() -> None:
    assert topic_allowed(f"customer_id:{C}", C)
    assert topic_allowed(f"customer_id:{C}:conference:{CONF_1}", C)
    assert not topic_allowed(f"customer_id:{D}:conference", C)
    assert not topic_allowed(f"customer_id:{C}x:conference", C)
    assert not topic_allowed(f"customer_id:{C[:-1]}", C)
    assert not topic_allowed("customer_id", C)
    assert not topic_allowed(7, C)


def test_parse_command_accepts_subscribe_and_unsubscribe() -> None:
    topics = [f"customer_id:{C}:conference", f"customer_id:{C}:conference:{CONF_1}"]
    assert parse_command(json.dumps({"type": "subscribe", "topics": topics}), C) == ("subscribe", topics)
    assert parse_command(f'{{"type": "unsubscribe", "topics": ["customer_id:{C}"]}}', C) == (
        "unsubscribe", [f"customer_id:{C}"])


@pytest.mark.parametrize("text", [
    "not json", "[1, 2]", '"subscribe"', '{"topics": []}', '{"type": "publish", "topics": []}',
    '{"type": "subscribe"}', '{"type": "subscribe", "topics": "customer_id:x"}',
    f'{{"type": "subscribe", "topics": [1, "customer_id:{C}"]}}',
    f'{{"type": "subscribe", "topics": ["customer_id:{C}", "customer_id:{D}"]}}',
    "[" * 100_000,
])
def test_parse_command_rejects_bad_messages(text: str) -> None:
    with pytest.raises(InvalidRequest):
        parse_command(text, C)


def test_the_topic_index_matches_what_filtering_alone_would(drain: Drain) -> None:
    """Many subscriptions at every level of the topic tree get exactly what `accepts` says, through the index."""
    bus = EventBus()
    topics = [f"customer_id:{C}", f"customer_id:{C}:conference", f"customer_id:{C}:conference:{CONF_1}",
              f"customer_id:{C}:conference:{CONF_2}", f"customer_id:{C}:conferencecall",
              f"customer_id:{C}:call:{CALL_1}", f"customer_id:{D}:conference"]
    subscriptions = [bus.subscribe(customer_id=C if C in topic else D, topics=[topic]) for topic in topics]
    everything = bus.subscribe()
    recorded: list[Event] = []
    bus.add_listener(recorded.append)
    publish_activity(bus)
    assert drain(everything) == [(e.type, str(e.data["id"])) for e in recorded]
    for topic, subscription in zip(topics, subscriptions, strict=True):
        got = drain(subscription)
        assert got == [(e.type, str(e.data["id"])) for e in recorded if subscription.accepts(e)], topic
        assert got, f"{topic}: every topic here has some activity"
    for subscription in [*subscriptions, everything]:
        subscription.close()
    assert bus._by_topic == {} and bus._unfiltered == set(), "closed subscriptions leave the index"


def test_topics_changed_after_close_do_not_resubscribe(drain: Drain) -> None:
    bus = EventBus()
    subscription = bus.subscribe(customer_id=C)
    subscription.close()
    subscription.subscribe_topics([f"customer_id:{C}"])
    assert bus._by_topic == {}
