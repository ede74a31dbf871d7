"""Webhook delivery: each customer's events are POSTed as signed JSON to its URL, off the media path.

`WebhookDispatcher.deliver` is an `EventBus` listener that only serialises the event and queues it; one worker
task per customer sends the queue in order, so a slow or dead receiver delays nobody else. Every POST carries
`X-Confbridge-Signature: sha256=<hex HMAC-SHA256 of the raw body keyed with the customer's secret>`.
"""

from __future__ import annotations

import asyncio
import hashlib
import hmac
import json
import logging
import uuid
from collections.abc import Mapping
from dataclasses import dataclass

import aiohttp

from .events import Event

logger = logging.getLogger(__name__)

USER_AGENT = "confbridge"
DROP_LOG_EVERY = 100
"""A full queue logs its first drop and then every this many, so a dead receiver cannot flood the log."""


def sign(secret: str, body: bytes) -> str:
    """The `X-Confbridge-Signature` value of `body`: `sha256=` and the hex HMAC-SHA256 keyed with `secret`."""
    return "sha256=" + hmac.new(secret.encode(), body, hashlib.sha256).hexdigest()


@dataclass(frozen=True)
class WebhookTarget:
    """Where a customer's events go and the key they are signed with."""

    url: str
    secret: str


@dataclass(frozen=True)
class _Queued:
    """One event waiting to be sent: its wire body (serialised once) and type."""

    body: bytes
    event_type: str


class WebhookDispatcher:
    """Sends events to per-customer webhooks: bounded queues, one ordered worker per customer, retries with back-off.

    A 2xx answer is delivered; a connection error, timeout or 5xx is tried again, `attempts` times in all, waiting
    `backoff * 2**(attempt-1)` seconds after each failed attempt; any other answer (a 4xx, or a redirect, which is
    not followed) is a refusal and is not retried.
    """

    def __init__(self, targets: Mapping[str, WebhookTarget], *, attempts: int = 3, backoff: float = 0.5,
                 timeout: float = 5.0, queue_size: int = 10000) -> None:
        if attempts < 1:
            raise ValueError("a webhook needs at least one attempt")
        self._targets = dict(targets)
        self._attempts = attempts
        self._backoff = backoff
        self._timeout = timeout
        self._queues: dict[str, asyncio.Queue[_Queued]] = {
            customer_id: asyncio.Queue(queue_size) for customer_id in self._targets}
        self._dropped_by_customer = dict.fromkeys(self._targets, 0)
        self._workers: list[asyncio.Task[None]] = []
        self._session: aiohttp.ClientSession | None = None
        self._closed = False
        self.delivered = 0
        """Events a receiver accepted (2xx)."""
        self.failed = 0
        """Events given up on: refused (4xx) or still failing after every attempt."""
        self.dropped = 0
        """Events never sent: their customer's queue was full, or they were still queued when the dispatcher closed."""
        self.attempts_made = 0
        """POSTs tried, retries included."""

    @property
    def pending(self) -> int:
        """Events queued and not yet taken by a worker."""
        return sum(queue.qsize() for queue in self._queues.values())

    def deliver(self, event: Event) -> None:
        """Queue `event` for its customer's webhook (the `EventBus` listener); never blocks, never raises on a full
        queue (the event is dropped and counted instead)."""
        queue = self._queues.get(event.customer_id)
        if queue is None or self._closed:
            return
        body = json.dumps(event.to_json(), separators=(",", ":")).encode()
        try:
            queue.put_nowait(_Queued(body, event.type))
        except asyncio.QueueFull:
            self.dropped += 1
            count = self._dropped_by_customer[event.customer_id] + 1
            self._dropped_by_customer[event.customer_id] = count
            if (count - 1) % DROP_LOG_EVERY == 0:
                logger.warning("webhook queue of customer %s is full: dropped %s (%d dropped so far)",
                               event.customer_id, event.type, count)

    async def start(self) -> None:
        """Open the HTTP client and start one worker per customer (events queued before now are sent too)."""
        if self._session is not None or self._closed:
            return
        self._session = aiohttp.ClientSession(timeout=aiohttp.ClientTimeout(total=self._timeout),
                                              headers={"User-Agent": USER_AGENT})
        self._workers = [asyncio.create_task(self._work(customer_id, target, self._queues[customer_id]),
                                             name=f"webhook-{customer_id}")
                         for customer_id, target in self._targets.items()]
        logger.info("webhooks for %d customer(s)", len(self._targets))

    async def close(self, drain_timeout: float = 2.0) -> None:
        """Send what is queued for up to `drain_timeout` seconds, then stop the workers and the HTTP client."""
        if self._closed:
            return
        if self._workers:
            try:
                await asyncio.wait_for(asyncio.gather(*(queue.join() for queue in self._queues.values())),
                                       drain_timeout)
            except TimeoutError:
                logger.warning("webhooks: %d event(s) not delivered within %.1f s of closing", self.pending,
                               drain_timeout)
        self._closed = True
        for worker in self._workers:
            worker.cancel()
        await asyncio.gather(*self._workers, return_exceptions=True)
        self._workers = []
        left = self.pending
        if left:
            self.dropped += left
            logger.warning("webhooks: %d queued event(s) dropped on close", left)
        if self._session is not None:
            await self._session.close()
            self._session = None

    async def _work(self, customer_id: str, target: WebhookTarget, queue: asyncio.Queue[_Queued]) -> None:
        """Send the customer's events one after another, forever (until cancelled)."""
        while True:
            item = await queue.get()
            try:
                await self._send(customer_id, target, item)
            except Exception:
                self.failed += 1
                logger.exception("webhook of customer %s: sending %s failed", customer_id, item.event_type)
            finally:
                queue.task_done()

    async def _send(self, customer_id: str, target: WebhookTarget, item: _Queued) -> None:
        """POST one event, retrying connection errors, timeouts and 5xx; counts it delivered or failed."""
        assert self._session is not None
        delivery = str(uuid.uuid4())
        headers = {"Content-Type": "application/json", "X-Confbridge-Signature": sign(target.secret, item.body),
                   "X-Confbridge-Event": item.event_type, "X-Confbridge-Delivery": delivery}
        for attempt in range(1, self._attempts + 1):
            self.attempts_made += 1
            try:
                async with self._session.post(target.url, data=item.body, allow_redirects=False,
                                              headers={**headers, "X-Confbridge-Attempt": str(attempt)}) as response:
                    status = response.status
                    await response.read()
            except (aiohttp.ClientError, TimeoutError, OSError) as exc:
                problem = f"{type(exc).__name__}: {exc}" if str(exc) else type(exc).__name__
            else:
                if 200 <= status < 300:
                    self.delivered += 1
                    logger.debug("webhook of customer %s: %s delivered (%s, attempt %d)", customer_id,
                                 item.event_type, delivery, attempt)
                    return
                if status < 500:
                    self.failed += 1
                    logger.warning("webhook of customer %s: %s refused with HTTP %d, not retried (delivery %s)",
                                   customer_id, item.event_type, status, delivery)
                    return
                problem = f"HTTP {status}"
            last = attempt == self._attempts
            logger.warning("webhook of customer %s: %s attempt %d/%d failed: %s (delivery %s)%s", customer_id,
                           item.event_type, attempt, self._attempts, problem, delivery, "" if last else ", retrying")
            if not last:
                await asyncio.sleep(self._backoff * 2 ** (attempt - 1))
        self.failed += 1
        logger.error("webhook of customer %s: %s failed after %d attempts (delivery %s)", customer_id,
                     item.event_type, self._attempts, delivery)
