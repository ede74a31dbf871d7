"""The SIP wire grammar (RFC 3261 §25) as named fragments and small scanners.

Every other module parses through these pieces, so the grammar lives in one place. The ABNF each
fragment implements is quoted beside it. Patterns are ASCII-only and meant for `fullmatch`.
"""

from __future__ import annotations

import ipaddress
import re
from collections.abc import Iterator

# token = 1*(alphanum / "-" / "." / "!" / "%" / "*" / "_" / "+" / "`" / "'" / "~" )
TOKEN = r"[A-Za-z0-9\-.!%*_+`'~]+"
TOKEN_RE = re.compile(TOKEN, re.ASCII)

# SIP-Version = "SIP" "/" 1*DIGIT "." 1*DIGIT
SIP_VERSION = r"[Ss][Ii][Pp]/\d+\.\d+"

# Request-Line = Method SP Request-URI SP SIP-Version CRLF
REQUEST_LINE_RE = re.compile(rf"({TOKEN}) (\S+) ({SIP_VERSION})", re.ASCII)

# A request line with the wrong spacing or a bad Request-URI: not valid, but clearly a request that
# can be answered 400 (RFC 4475 §3.1.2.7-3.1.2.10).
LOOSE_REQUEST_LINE_RE = re.compile(rf"({TOKEN})[ \t]+(.+?)[ \t]+({SIP_VERSION})[ \t]*", re.ASCII)

# Status-Line = SIP-Version SP Status-Code SP Reason-Phrase CRLF ; Status-Code = 3DIGIT
STATUS_LINE_RE = re.compile(rf"({SIP_VERSION}) (\d{{3}})(?: (.*))?", re.ASCII | re.DOTALL)

# message-header = field-name HCOLON field-value ; HCOLON = *( SP / HTAB ) ":" SWS
HEADER_LINE_RE = re.compile(rf"({TOKEN})[ \t]*:[ \t]*(.*)", re.ASCII | re.DOTALL)

# LWS = [*WSP CRLF] 1*WSP ; a header line that starts with whitespace continues the previous one.
FOLDED_LINE_RE = re.compile(r"\r?\n[ \t]+")
LINE_SPLIT_RE = re.compile(r"\r?\n")

TEXT_ENCODING = ("utf-8", "surrogateescape")
"""How message text is decoded and encoded: UTF-8, with undecodable bytes kept as they were."""

# sent-protocol = protocol-name SLASH protocol-version SLASH transport (SLASH = SWS "/" SWS)
SENT_PROTOCOL_RE = re.compile(rf"({TOKEN})\s*/\s*({TOKEN})\s*/\s*({TOKEN})\s+(.*)", re.ASCII | re.DOTALL)

# hostport = host [ ":" port ] ; host = hostname / IPv4address / IPv6reference
HOSTPORT_RE = re.compile(r"(\[[0-9A-Fa-f:.]+\]|[A-Za-z0-9\-.]+)(?::(\d{1,5}))?", re.ASCII)

# domainlabel = alphanum / alphanum *( alphanum / "-" ) alphanum
DOMAIN_LABEL = r"[A-Za-z0-9](?:[A-Za-z0-9\-]*[A-Za-z0-9])?"

# hostname = *( domainlabel "." ) toplabel [ "." ]
HOSTNAME_RE = re.compile(rf"(?:{DOMAIN_LABEL}\.)*{DOMAIN_LABEL}\.?", re.ASCII)

# IPv4address = 1*3DIGIT "." 1*3DIGIT "." 1*3DIGIT "." 1*3DIGIT
IPV4_RE = re.compile(r"(\d{1,3})\.(\d{1,3})\.(\d{1,3})\.(\d{1,3})", re.ASCII)

MAGIC_COOKIE = "z9hG4bK"
"""RFC 3261 branch prefix: a branch starting with it is globally unique and names a transaction."""


def unfolded_lines(head: bytes) -> list[str]:
    """The lines of a header section (start line first), with folded continuation lines joined."""
    return LINE_SPLIT_RE.split(FOLDED_LINE_RE.sub(" ", head.decode(*TEXT_ENCODING)))


def is_digits(text: str) -> bool:
    """Whether `text` is one or more ASCII digits (str.isdigit also accepts "²" and "٥")."""
    return text.isascii() and text.isdigit()


def number(text: str, max_digits: int = 10) -> int | None:
    """The value of a string of ASCII digits (leading zeros allowed), or None when it is not one or is
    longer than `max_digits` significant digits (which also keeps huge strings away from int())."""
    if not is_digits(text) or len(text.lstrip("0")) > max_digits:
        return None
    return int(text.lstrip("0") or "0")


def is_token(text: str) -> bool:
    """Whether `text` is a non-empty SIP token."""
    return TOKEN_RE.fullmatch(text) is not None


def valid_host(host: str) -> bool:
    """Whether `host` is a hostname, an IPv4 address or a bracketed IPv6 reference."""
    if host.startswith("[") and host.endswith("]"):
        return _valid_ipv6(host[1:-1])
    match = IPV4_RE.fullmatch(host)
    if match:
        return all(int(part) <= 255 for part in match.groups())
    return HOSTNAME_RE.fullmatch(host) is not None and not is_digits(host.replace(".", ""))


def _valid_ipv6(text: str) -> bool:
    # RFC 5118 §4.10: RFC 3261's ABNF lets "2001:db8:::192.0.2.1" through; tolerate it as "::".
    for candidate in (text, text.replace(":::", "::")):
        try:
            ipaddress.IPv6Address(candidate)
        except ValueError:
            continue
        return True
    return False


def split_unquoted(text: str, separator: str) -> list[str]:
    """Split `text` on `separator`, ignoring separators inside quoted strings and <...> brackets."""
    parts: list[str] = []
    start = 0
    for index in _unquoted_positions(text, separator):
        parts.append(text[start:index])
        start = index + 1
    parts.append(text[start:])
    return parts


def find_unquoted(text: str, separator: str, start: int = 0) -> int:
    """Index of the first `separator` outside quotes and angle brackets at or after `start`, or -1."""
    for index in _unquoted_positions(text, separator, start):
        return index
    return -1


def _unquoted_positions(text: str, separator: str, start: int = 0) -> Iterator[int]:
    in_quotes = False
    depth = 0
    index = start
    length = len(text)
    while index < length:
        char = text[index]
        if in_quotes:
            if char == "\\":
                index += 1
            elif char == '"':
                in_quotes = False
        elif char == separator and depth == 0:
            yield index
        elif char == '"':
            in_quotes = True
        elif char == "<":
            depth += 1
        elif char == ">" and depth:
            depth -= 1
        index += 1


def unquote(text: str) -> str:
    """Strip the quotes of a quoted-string and undo its quoted-pairs; plain text comes back as is.

    quoted-string = SWS DQUOTE *(qdtext / quoted-pair ) DQUOTE ; quoted-pair = "\\" (%x00-09 / %x0B-0C / %x0E-7F)
    """
    text = text.strip()
    if len(text) >= 2 and text[0] == '"' and text[-1] == '"':
        inner = text[1:-1]
        return re.sub(r"\\(.)", r"\1", inner, flags=re.DOTALL)
    return text


def quote(text: str) -> str:
    """Make a quoted-string of `text`, escaping backslashes and double quotes."""
    return '"' + text.replace("\\", "\\\\").replace('"', '\\"') + '"'


def check_quotes_balanced(text: str) -> bool:
    """Whether every quoted-string in `text` is closed (an unterminated one is a syntax error)."""
    in_quotes = False
    index = 0
    while index < len(text):
        char = text[index]
        if in_quotes and char == "\\":
            index += 2
            continue
        if char == '"':
            in_quotes = not in_quotes
        index += 1
    return not in_quotes


class Params:
    """Ordered `;name=value` parameters; names compare case-insensitively, values keep their case.

    A parameter without `=` has the value None (e.g. `;lr`, `;rport`).
    """

    __slots__ = ("_items",)

    def __init__(self, items: list[tuple[str, str | None]] | None = None) -> None:
        self._items: list[tuple[str, str | None]] = list(items or [])

    @classmethod
    def parse(cls, text: str) -> Params:
        """Parse `;a=b;c` (the leading `;` is optional); raises ValueError on an empty or bad name.

        generic-param = token [ EQUAL gen-value ] ; gen-value = token / host / quoted-string
        """
        items: list[tuple[str, str | None]] = []
        text = text.strip()
        if text.startswith(";"):
            text = text[1:]
        if not text:
            return cls()
        for part in split_unquoted(text, ";"):
            name, eq, value = part.partition("=")
            name = name.strip()
            if not is_token(name):
                raise ValueError(f"bad parameter name {name!r}")
            if eq:
                value = value.strip()
                if not value:
                    raise ValueError(f"empty value for parameter {name!r}")
                if value.startswith('"') and not (value.endswith('"') and len(value) >= 2):
                    raise ValueError(f"unterminated quoted value for parameter {name!r}")
                items.append((name, value))
            else:
                items.append((name, None))
        return cls(items)

    def get(self, name: str, default: str | None = None) -> str | None:
        """The raw value of `name` (None for a flag parameter), or `default` when absent."""
        lname = name.lower()
        for key, value in self._items:
            if key.lower() == lname:
                return value
        return default

    def __contains__(self, name: object) -> bool:
        if not isinstance(name, str):
            return False
        lname = name.lower()
        return any(key.lower() == lname for key, _ in self._items)

    def set(self, name: str, value: str | None) -> None:
        """Set `name` to `value`, replacing an existing parameter in place or appending a new one."""
        lname = name.lower()
        for index, (key, _) in enumerate(self._items):
            if key.lower() == lname:
                self._items[index] = (key, value)
                return
        self._items.append((name, value))

    def remove(self, name: str) -> None:
        """Drop every parameter called `name`."""
        lname = name.lower()
        self._items = [(k, v) for k, v in self._items if k.lower() != lname]

    def items(self) -> list[tuple[str, str | None]]:
        """The parameters in order, as (name, value) pairs."""
        return list(self._items)

    def copy(self) -> Params:
        """An independent copy."""
        return Params(self._items)

    def __len__(self) -> int:
        return len(self._items)

    def __eq__(self, other: object) -> bool:
        if not isinstance(other, Params):
            return NotImplemented
        return [(k.lower(), v) for k, v in self._items] == [(k.lower(), v) for k, v in other._items]

    def __repr__(self) -> str:
        return f"Params({self._items!r})"

    def __str__(self) -> str:
        return "".join(f";{k}" if v is None else f";{k}={v}" for k, v in self._items)


_HEX = "0123456789ABCDEFabcdef"


def unescape(text: str) -> str:
    """Decode %HH escapes exactly once; a `%` not followed by two hex digits stays literal."""
    if "%" not in text:
        return text
    out = bytearray()
    index = 0
    raw = text.encode("utf-8", "surrogateescape")
    while index < len(raw):
        byte = raw[index]
        if byte == 0x25 and index + 2 < len(raw) and chr(raw[index + 1]) in _HEX and chr(raw[index + 2]) in _HEX:
            out.append(int(raw[index + 1 : index + 3], 16))
            index += 3
        else:
            out.append(byte)
            index += 1
    return out.decode("utf-8", "surrogateescape")
