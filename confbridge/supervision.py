"""Conference timeouts and participant health checks, as a sans-IO core: deadlines in, due work out.

Every call takes an explicit `now` (any monotonic clock, seconds); `get_timer()` says when something is next due
and `handle_timer(now)` hands back what is: conferences whose timeout has passed and participants whose health
check is due. Whoever owns the resources checks those participants and reports each result with `report()`,
which says when one has failed `failures_to_kick` checks in a row. Deadlines sit in a heap with lazy deletion, so
a thousand participants cost O(log n) per check rather than a scan.
"""

from __future__ import annotations

import heapq
import itertools
from dataclasses import dataclass, field

HEALTH_INTERVAL = 5.0
"""Seconds between two health checks of a participant."""
FAILURES_TO_KICK = 3
"""Consecutive failed health checks after which a participant is removed."""
CHECKS_PER_CALL = 50
"""Health checks `handle_timer` hands out at once; more that are due stay due (a burst of joins would otherwise
fall due together and hold the event loop, and the mixer with it, for one long batch)."""


@dataclass
class Due:
    """What `handle_timer` found due."""

    expired: list[str] = field(default_factory=list)
    """Conferences whose timeout has passed."""
    checks: list[str] = field(default_factory=list)
    """Participants whose health check is due."""


class Supervisor:
    """Deadlines of conference timeouts and participant health checks."""

    def __init__(self, interval: float = HEALTH_INTERVAL, failures_to_kick: int = FAILURES_TO_KICK,
                 checks_per_call: int = CHECKS_PER_CALL) -> None:
        if interval <= 0 or failures_to_kick < 1 or checks_per_call < 1:
            raise ValueError("the health check interval must be positive, at least one failure must kick and at "
                             "least one check must be handed out at a time")
        self.interval = interval
        self.failures_to_kick = failures_to_kick
        self.checks_per_call = checks_per_call
        self._expiries: dict[str, float] = {}
        self._checks: dict[str, float] = {}
        self._failures: dict[str, int] = {}
        self._since: dict[str, float] = {}
        self._heap: list[tuple[float, int, bool, str]] = []
        """(when, tie-breaker, is a conference expiry, id); entries no longer in the dicts are stale."""
        self._order = itertools.count()

    # -- what is watched ------------------------------------------------------------------------------

    def watch_conference(self, conference_id: str, expires_at: float) -> None:
        """Time a conference out at `expires_at` (replacing any earlier deadline)."""
        self._expiries[conference_id] = expires_at
        heapq.heappush(self._heap, (expires_at, next(self._order), True, conference_id))

    def unwatch_conference(self, conference_id: str) -> None:
        """No timeout for this conference (any more)."""
        self._expiries.pop(conference_id, None)

    def watch_participant(self, conferencecall_id: str, now: float) -> None:
        """Check a participant every `interval` from `now` on, starting with no failures."""
        if conferencecall_id in self._checks:
            return
        self._failures[conferencecall_id] = 0
        self._since[conferencecall_id] = now
        self._schedule_check(conferencecall_id, now + self.interval)

    def unwatch_participant(self, conferencecall_id: str) -> None:
        """Stop checking a participant (it left, or is being removed)."""
        self._checks.pop(conferencecall_id, None)
        self._failures.pop(conferencecall_id, None)
        self._since.pop(conferencecall_id, None)

    def _schedule_check(self, conferencecall_id: str, when: float) -> None:
        self._checks[conferencecall_id] = when
        heapq.heappush(self._heap, (when, next(self._order), False, conferencecall_id))

    @property
    def watched_conferences(self) -> int:
        """Conferences with a timeout pending."""
        return len(self._expiries)

    @property
    def watched_participants(self) -> int:
        """Participants being health-checked."""
        return len(self._checks)

    def age(self, conferencecall_id: str, now: float) -> float:
        """Seconds a participant has been watched (it is watched from when it is created)."""
        return now - self._since.get(conferencecall_id, now)

    def failures(self, conferencecall_id: str) -> int:
        """A participant's consecutive failed checks so far."""
        return self._failures.get(conferencecall_id, 0)

    # -- time -----------------------------------------------------------------------------------------

    def get_timer(self) -> float | None:
        """When `handle_timer` next has something to do (None: nothing is watched)."""
        self._drop_stale()
        return self._heap[0][0] if self._heap else None

    def handle_timer(self, now: float) -> Due:
        """What is due at `now`: every expired conference, and at most `checks_per_call` health checks (the others
        stay due: `get_timer()` is then not after `now`). Each participant's next check is scheduled one interval
        after this one was due (a late wake-up does not shift the rhythm; one far behind skips the missed checks)."""
        due = Due()
        while self._heap and self._heap[0][0] <= now:
            when, _, is_conference, key = self._heap[0]
            if not is_conference and len(due.checks) >= self.checks_per_call and self._checks.get(key) == when:
                break
            heapq.heappop(self._heap)
            if is_conference:
                if self._expiries.get(key) == when:
                    del self._expiries[key]
                    due.expired.append(key)
            elif self._checks.get(key) == when:
                due.checks.append(key)
                following = when + self.interval
                if following <= now:
                    following = now + self.interval
                self._schedule_check(key, following)
        return due

    def report(self, conferencecall_id: str, healthy: bool) -> bool:
        """The result of a participant's check; True when it has now failed `failures_to_kick` in a row (it is then
        no longer watched: the caller removes it). A healthy check resets the count."""
        if conferencecall_id not in self._checks:
            return False
        if healthy:
            self._failures[conferencecall_id] = 0
            return False
        self._failures[conferencecall_id] += 1
        if self._failures[conferencecall_id] < self.failures_to_kick:
            return False
        self.unwatch_participant(conferencecall_id)
        return True

    def _drop_stale(self) -> None:
        heap = self._heap
        while heap:
            when, _, is_conference, key = heap[0]
            current = (self._expiries if is_conference else self._checks).get(key)
            if current == when:
                return
            heapq.heappop(heap)
