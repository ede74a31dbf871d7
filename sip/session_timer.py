"""Session timers (RFC 4028): keep-alive re-INVITE/UPDATE for dialogs, negotiated per transaction.

Pure helpers: read Session-Expires / Min-SE, decide who refreshes, and compute when to refresh or
give up. The user agent core turns the deadlines into requests (a refresh) or a BYE (expiry).
"""

from __future__ import annotations

from dataclasses import dataclass

from .grammar import Params, number
from .headers import Headers

DEFAULT_MIN_SE = 90
"""Our Min-SE: the smallest session interval we accept (RFC 4028's recommended floor)."""


@dataclass(frozen=True)
class SessionExpires:
    """A Session-Expires value: the interval in seconds and who refreshes ("uac", "uas" or None)."""

    interval: int
    refresher: str | None = None

    def __str__(self) -> str:
        return f"{self.interval}" + (f";refresher={self.refresher}" if self.refresher else "")


def parse_session_expires(headers: Headers) -> SessionExpires | None:
    """The Session-Expires of a message (compact form `x`), or None when absent or malformed."""
    value = headers.get("Session-Expires")
    if value is None:
        return None
    delta, _, rest = value.partition(";")
    interval = number(delta.strip(" \t"))
    if interval is None:
        return None
    try:
        params = Params.parse(rest)
    except ValueError:
        return None
    refresher = (params.get("refresher") or "").lower() or None
    return SessionExpires(interval, refresher if refresher in ("uac", "uas") else None)


def supports_timer(headers: Headers) -> bool:
    """Whether a message says it supports (or requires) the `timer` extension."""
    tags = {tag.lower() for tag in headers.get_list("Supported") + headers.get_list("Require")}
    return "timer" in tags


@dataclass
class SessionTimer:
    """The running session timer of a dialog."""

    interval: int
    we_refresh: bool
    last_refresh: float

    @property
    def refresh_at(self) -> float:
        """When the refresher sends its refresh: half-way through the interval."""
        return self.last_refresh + self.interval / 2

    @property
    def expires_at(self) -> float:
        """When the non-refresher gives up: the interval less min(32, interval/3) (§10)."""
        return self.last_refresh + self.interval - min(32.0, self.interval / 3)

    @property
    def deadline(self) -> float:
        """Our next action on this dialog's timer."""
        return self.refresh_at if self.we_refresh else self.expires_at


def uas_refresher(request_expires: SessionExpires, request_headers: Headers) -> str:
    """Who refreshes, as the UAS decides it for a 2xx (§9): the requester's choice, else the UAC when it can."""
    if request_expires.refresher:
        return request_expires.refresher
    return "uac" if supports_timer(request_headers) else "uas"
