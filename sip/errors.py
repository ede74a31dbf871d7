"""SIP error classes.

Two families, as in h11: the peer broke the protocol (`RemoteProtocolError`, which carries the status
code a UAS should answer with), or our own code misused the API (`LocalProtocolError`).
"""

from __future__ import annotations

from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from .message import Request


class SipError(Exception):
    """Base class of every error raised by the `sip` package."""


class RemoteProtocolError(SipError):
    """The peer sent something that breaks the protocol; `status_code` is the response to send."""

    def __init__(self, message: str, status_code: int = 400) -> None:
        super().__init__(message)
        self.status_code = status_code

    @property
    def reason(self) -> str:
        """A short reason phrase for the response: the error text itself, one line."""
        return str(self).splitlines()[0][:120] if str(self) else "Bad Request"


class SipParseError(RemoteProtocolError):
    """A message could not be parsed; `status_code` is 400 unless the grammar says otherwise.

    `request` is the partly parsed request when its start line and header fields were readable, so
    that a UAS can still answer it.
    """

    request: Request | None = None


class LocalProtocolError(SipError):
    """Our own code asked for something the protocol does not allow (a bug on our side)."""
