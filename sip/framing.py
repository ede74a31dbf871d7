"""Message framing for stream transports (TCP, TLS): RFC 3261 §18.3 and RFC 5626 keep-alives.

A datagram carries exactly one message, but a stream is just bytes: messages end where their
Content-Length says, and peers may send CRLF keep-alives between them. `StreamFramer` is sans-IO:
the transport feeds it whatever it read and gets back complete messages, keep-alive pings and, when
the stream can no longer be framed, one error after which the connection has to be closed. The result
does not depend on how the bytes were chunked, and memory is capped by the header and body limits.
"""

from __future__ import annotations

from dataclasses import dataclass

from .grammar import HEADER_LINE_RE, is_digits, unfolded_lines
from .headers import canonical_name

PING = b"\r\n\r\n"
"""An RFC 5626 keep-alive ping; it is answered with `PONG`."""
PONG = b"\r\n"
"""An RFC 5626 keep-alive pong; received between messages it is skipped."""

_CRLF_TERMINATOR = b"\r\n\r\n"
_LF_TERMINATOR = b"\n\n"


@dataclass(frozen=True, slots=True)
class FramedMessage:
    """One complete message: its header section, the blank line and exactly Content-Length body bytes."""

    data: bytes


@dataclass(frozen=True, slots=True)
class KeepAlive:
    """A double-CRLF ping seen between messages; answer it with a single CRLF (`PONG`)."""


@dataclass(frozen=True, slots=True)
class FramingError:
    """The stream cannot be framed: answer with `status_code` if possible, then close the connection.

    `head` is the header section, blank line included, when it was read; otherwise it is empty.
    """

    reason: str
    status_code: int
    head: bytes


Framed = FramedMessage | KeepAlive | FramingError


class StreamFramer:
    """Splits a SIP byte stream into messages by Content-Length and recognises CRLF keep-alives."""

    __slots__ = ("_body_length", "_broken", "_buffer", "_head_length", "_max_body", "_max_header", "_scanned")

    def __init__(self, max_header_bytes: int = 16384, max_body_bytes: int = 65536) -> None:
        if max_header_bytes < 1 or max_body_bytes < 0:
            raise ValueError("max_header_bytes must be positive and max_body_bytes not negative")
        self._max_header = max_header_bytes
        self._max_body = max_body_bytes
        self._buffer = bytearray()
        self._broken = False
        # None between messages; 0 once a header section has started, then how far the terminator search got.
        self._scanned: int | None = None
        # Once a header section has been read: its length (blank line included) and the body's.
        self._head_length: int | None = None
        self._body_length = 0

    @property
    def broken(self) -> bool:
        """Whether a framing error was reported; the framer then ignores all input."""
        return self._broken

    @property
    def buffered(self) -> int:
        """The number of bytes held while waiting for the rest of a message or keep-alive."""
        return len(self._buffer)

    def feed(self, data: bytes) -> list[Framed]:
        """Add bytes read from the stream; return the messages, pings and error they complete, in order."""
        if self._broken:
            return []
        self._buffer += data
        results: list[Framed] = []
        while (result := self._next()) is not None:
            results.append(result)
            if isinstance(result, FramingError):
                self._broken = True
                self._buffer.clear()
                break
        return results

    def _next(self) -> Framed | None:
        if self._head_length is not None:
            return self._read_body(self._head_length + self._body_length)
        if self._scanned is None:
            buffer = self._buffer
            while not buffer.startswith(PING):
                if not buffer or (len(buffer) < len(PING) and PING.startswith(buffer)):
                    return None
                if buffer.startswith(PONG):
                    del buffer[: len(PONG)]
                elif buffer.startswith(b"\n"):
                    del buffer[:1]
                else:
                    self._scanned = 0
                    return self._read_head()
            del buffer[: len(PING)]
            return KeepAlive()
        return self._read_head()

    def _read_head(self) -> Framed | None:
        span = self._find_head_end()
        if span is None:
            # A terminator not seen yet starts at most 3 bytes back, so the header section is at least this long.
            if len(self._buffer) - (len(_CRLF_TERMINATOR) - 1) > self._max_header:
                return self._too_long_head()
            self._scanned = len(self._buffer)
            return None
        start, stop = span
        if start > self._max_header:
            return self._too_long_head()
        head = bytes(self._buffer[:stop])
        length = self._content_length(head)
        if isinstance(length, FramingError):
            return length
        self._scanned = None
        self._head_length = stop
        self._body_length = length
        return self._read_body(stop + length)

    def _read_body(self, total: int) -> FramedMessage | None:
        if len(self._buffer) < total:
            return None
        message = bytes(self._buffer[:total])
        del self._buffer[:total]
        self._head_length = None
        return FramedMessage(message)

    def _find_head_end(self) -> tuple[int, int] | None:
        """The (start, stop) of the first blank line after the header fields, scanning only new bytes."""
        from_index = max(0, (self._scanned or 0) - (len(_CRLF_TERMINATOR) - 1))
        crlf = self._buffer.find(_CRLF_TERMINATOR, from_index)
        lf = self._buffer.find(_LF_TERMINATOR, from_index)
        ends = [(index, index + len(term)) for index, term in ((crlf, _CRLF_TERMINATOR), (lf, _LF_TERMINATOR))
                if index >= 0]
        # Whichever terminator is complete first wins, so the answer never depends on the chunking.
        return min(ends, key=lambda span: span[1]) if ends else None

    def _too_long_head(self) -> FramingError:
        return FramingError(f"Header section longer than {self._max_header} bytes", 513, b"")

    def _content_length(self, head: bytes) -> int | FramingError:
        lines = unfolded_lines(head)
        values = [
            match.group(2).strip(" \t")
            for match in map(HEADER_LINE_RE.fullmatch, lines[1:])
            if match and canonical_name(match.group(1)) == "Content-Length"
        ]
        if not values:
            return FramingError("Missing Content-Length header", 400, head)
        for value in values:
            if value.startswith("-") and is_digits(value[1:]):
                return FramingError("Negative Content-Length", 400, head)
            if not is_digits(value):
                return FramingError("Malformed Content-Length header", 400, head)
        # Leading zeros do not make a different value; dropping them also keeps huge strings away from int().
        lengths = {value.lstrip("0") or "0" for value in values}
        if len(lengths) > 1:
            return FramingError("Conflicting Content-Length headers", 400, head)
        length = lengths.pop()
        if len(length) > len(str(self._max_body)) or int(length) > self._max_body:
            return FramingError(f"Body longer than {self._max_body} bytes", 513, head)
        return int(length)
