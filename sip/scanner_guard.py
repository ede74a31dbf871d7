"""Throttling of SIP scanners: source hosts that keep asking for users that do not exist.

Tools such as sipvicious walk through extension numbers and collect the 404s. `ScannerGuard` counts
those misses per source host; `threshold` misses within `window` seconds block the host for `block_for`
seconds, during which the caller drops its requests unanswered. The guard is sans-IO: every call takes
the current time, and it remembers at most `max_tracked` hosts, so a flood of spoofed sources cannot
grow it without bound (the least recently seen host is forgotten first).
"""

from __future__ import annotations

from collections import OrderedDict, deque
from dataclasses import dataclass


@dataclass(slots=True)
class _Host:
    misses: deque[float]
    blocked_until: float | None = None


class ScannerGuard:
    """Blocks source hosts that run into `threshold` unknown-user misses within `window` seconds."""

    __slots__ = ("_block_for", "_hosts", "_max_tracked", "_threshold", "_window")

    def __init__(self, *, threshold: int = 10, window: float = 60.0, block_for: float = 300.0,
                 max_tracked: int = 10000) -> None:
        if threshold < 0 or window <= 0 or block_for < 0 or max_tracked < 1:
            raise ValueError("threshold and block_for must not be negative, window and max_tracked must be positive")
        self._threshold = threshold
        self._window = window
        self._block_for = block_for
        self._max_tracked = max_tracked
        # Least recently seen first.
        self._hosts: OrderedDict[str, _Host] = OrderedDict()

    def record_miss(self, host: str, now: float) -> bool:
        """Count a request from `host` for an unknown user; True when this miss starts a block."""
        if self._threshold == 0:
            return False
        entry = self._seen(host, now)
        if entry is None:
            entry = self._hosts[host] = _Host(deque(maxlen=self._threshold))
            if len(self._hosts) > self._max_tracked:
                self._hosts.popitem(last=False)
        elif entry.blocked_until is not None:
            return False
        misses = entry.misses
        misses.append(now)
        while now - misses[0] >= self._window:
            misses.popleft()
        if len(misses) < self._threshold:
            return False
        misses.clear()
        entry.blocked_until = now + self._block_for
        return True

    def is_blocked(self, host: str, now: float) -> bool:
        """Whether requests from `host` are to be dropped at `now`."""
        entry = self._seen(host, now)
        return entry is not None and entry.blocked_until is not None

    def blocked_hosts(self, now: float) -> list[str]:
        """The hosts blocked at `now`, sorted."""
        expired = [host for host, entry in self._hosts.items()
                   if entry.blocked_until is not None and now >= entry.blocked_until]
        for host in expired:
            del self._hosts[host]
        return sorted(host for host, entry in self._hosts.items() if entry.blocked_until is not None)

    def __len__(self) -> int:
        """The number of hosts currently remembered."""
        return len(self._hosts)

    def _seen(self, host: str, now: float) -> _Host | None:
        """The entry of a remembered host, made the most recently seen; a host whose block expired is forgotten."""
        entry = self._hosts.get(host)
        if entry is None:
            return None
        if entry.blocked_until is not None and now >= entry.blocked_until:
            del self._hosts[host]
            return None
        self._hosts.move_to_end(host)
        return entry
