"""Timestamp and identifier conventions of the VoIPBIN API."""

from __future__ import annotations

import threading
from datetime import UTC, datetime, timedelta

TIMESTAMP_FORMAT = "%Y-%m-%d %H:%M:%S.%f"
NEVER = "9999-01-01 00:00:00.000000"
"""The timestamp of an event that has not happened."""
NIL_UUID = "00000000-0000-0000-0000-000000000000"
"""The identifier that stands for "none" (e.g. no active recording)."""

_lock = threading.Lock()
_last = datetime.min.replace(tzinfo=UTC)


def now_timestamp() -> str:
    """The current UTC time as `2022-02-03 06:08:56.672025`, strictly increasing within the process.

    Distinct creation times keep `tm_create` usable as a page token.
    """
    global _last
    with _lock:
        now = datetime.now(UTC)
        if now <= _last:
            now = _last + timedelta(microseconds=1)
        _last = now
    return now.strftime(TIMESTAMP_FORMAT)


def parse_timestamp(text: str) -> datetime:
    """A timestamp of ours as an aware UTC datetime (ValueError when it is not one)."""
    return datetime.strptime(text, TIMESTAMP_FORMAT).replace(tzinfo=UTC)


def seconds_since(text: str) -> float:
    """Seconds from a timestamp of ours until now (negative for one in the future)."""
    return (datetime.now(UTC) - parse_timestamp(text)).total_seconds()
