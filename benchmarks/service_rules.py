"""What the conference rules cost the event loop: joins and leaves (one SQLite transaction each, events after the
commit), health checks, and fanning events out to WebSocket subscriptions and webhook queues.

Everything runs in-process against a real `ConferenceService` on a real SQLite file (WAL, synchronous=NORMAL) in a
temporary folder, with the telephony side replaced by a stand-in that answers at once, so what is timed is the
service, the store and the event bus. "check batch" is one `handle_timer` call: at most 50 checks, the longest the
loop is held by health checks at a time; "checks CPU" is the share of one core that checking every participant
every 5 s takes.

    python benchmarks/service_rules.py
"""

from __future__ import annotations

import asyncio
import statistics
import tempfile
import time
from pathlib import Path

from confbridge.events import EventBus
from confbridge.models import Call, sip_party
from confbridge.service import ConferenceService
from confbridge.store import Store
from confbridge.webhooks import WebhookDispatcher, WebhookTarget

CUSTOMER = "5e4a0680-804e-11ec-8477-2fea5968d85b"
SIZES = (100, 1000, 3000)
INTERVAL = 5.0


class InstantCalls:
    """Hangs up at once; every call's media is alive."""

    def __init__(self) -> None:
        self.service: ConferenceService | None = None

    def hang_up(self, call_id: str, reason: str) -> bool:
        return False

    def cancel(self, call_id: str) -> bool:
        return False

    def apply_controls(self, call: Call) -> None:
        return None

    def media_statistics(self, call_id: str) -> dict[str, object] | None:
        return None

    def media_idle(self, call_id: str) -> float | None:
        return 0.1


class NoMedia:
    """Recording is not measured here."""

    def start_recording(self, *args: object, **kwargs: object) -> int:
        raise NotImplementedError

    def stop_recording(self, conference_id: str) -> object:
        raise NotImplementedError


class Clock:
    """Fake time for the health checks."""

    now = 0.0

    def __call__(self) -> float:
        return self.now


def measure(size: int, folder: Path) -> dict[str, float]:
    """Figures for one conference of `size` participants."""
    clock = Clock()
    bus = EventBus()
    service = ConferenceService(Store(folder / f"bench{size}.sqlite3"), bus, folder, clock=clock,
                                health_interval=INTERVAL)
    service.attach(InstantCalls(), NoMedia())  # type: ignore[arg-type]
    conference = service.create_conference(CUSTOMER, name="bench")
    joins: list[float] = []
    participants = []
    for _ in range(size):
        started = time.perf_counter()
        _, participant = service.admit_call(conference, source=sip_party("sip:a@b"), destination=sip_party("sip:c"))
        service.participant_media_started(participant.id)
        joins.append(time.perf_counter() - started)
        participants.append(participant.id)
    batches: list[float] = []
    clock.now = INTERVAL
    checked = 0
    round_started = time.perf_counter()
    while (when := service.get_timer()) is not None and when <= clock.now:
        started = time.perf_counter()
        service.handle_timer(clock.now)
        batches.append(time.perf_counter() - started)
        checked += 1
    round_seconds = time.perf_counter() - round_started
    leaves: list[float] = []
    for participant_id in participants[: min(size, 200)]:
        started = time.perf_counter()
        service.participant_left(participant_id, hangup_by="remote", reason="normal")
        leaves.append(time.perf_counter() - started)
    service.store.close()
    return {"join_ms": statistics.median(joins) * 1e3, "join_last_ms": statistics.median(joins[-50:]) * 1e3,
            "leave_ms": statistics.median(leaves) * 1e3, "batch_ms": max(batches) * 1e3,
            "per_check_us": round_seconds / size * 1e6, "checks_cpu": round_seconds / INTERVAL * 100}


async def fan_out(subscriptions: int, customers: int, events: int) -> tuple[float, float]:
    """µs per event published to `subscriptions` topic-filtered subscriptions (one topic each) and to webhook
    queues of `customers` customers (nobody sending: only the publishing side is timed)."""
    bus = EventBus()
    conference_ids = [f"{index:08d}-0000-4000-8000-000000000000" for index in range(subscriptions)]
    held = []
    for conference_id in conference_ids:
        subscription = bus.subscribe(events + 1, customer_id=CUSTOMER)
        subscription.subscribe_topics([f"customer_id:{CUSTOMER}:conference:{conference_id}"])
        held.append(subscription)
    from confbridge.models import Conference
    conference = Conference(id=conference_ids[0], customer_id=CUSTOMER)
    started = time.perf_counter()
    for _ in range(events):
        bus.publish("conference_updated", conference)
    subscribed = (time.perf_counter() - started) / events * 1e6
    dispatcher = WebhookDispatcher({f"{index}": WebhookTarget("http://127.0.0.1:9/", "k") for index in range(customers)}
                                   | {CUSTOMER: WebhookTarget("http://127.0.0.1:9/", "k")}, queue_size=events + 1)
    bus.add_listener(dispatcher.deliver)
    started = time.perf_counter()
    for _ in range(events):
        bus.publish("conference_updated", conference)
    with_webhooks = (time.perf_counter() - started) / events * 1e6
    for subscription in held:
        subscription.close()
    return subscribed, with_webhooks


def main() -> None:
    with tempfile.TemporaryDirectory() as folder:
        print("participants | join ms (median, last 50) | leave ms | check batch ms | µs per check | checks CPU %")
        for size in SIZES:
            figures = measure(size, Path(folder))
            print(f"{size:>12} | {figures['join_ms']:>10.2f}, {figures['join_last_ms']:>6.2f}         | "
                  f"{figures['leave_ms']:>8.2f} | {figures['batch_ms']:>14.2f} | {figures['per_check_us']:>12.1f} | "
                  f"{figures['checks_cpu']:>12.2f}")
    print()
    print("subscriptions | µs per event published | with a webhook queue too")
    for subscriptions in (10, 100, 1000):
        subscribed, with_webhooks = asyncio.run(fan_out(subscriptions, 10, 2000))
        print(f"{subscriptions:>13} | {subscribed:>21.1f} | {with_webhooks:>24.1f}")


if __name__ == "__main__":
    main()
