"""An ordered, case-insensitive SIP header list with compact-form expansion (RFC 3261 §7.3.3)."""

from __future__ import annotations

from collections.abc import Iterable, Iterator

from .grammar import split_unquoted

COMPACT_FORMS: dict[str, str] = {
    "a": "Accept-Contact",
    "b": "Referred-By",
    "c": "Content-Type",
    "d": "Request-Disposition",
    "e": "Content-Encoding",
    "f": "From",
    "i": "Call-ID",
    "j": "Reject-Contact",
    "k": "Supported",
    "l": "Content-Length",
    "m": "Contact",
    "n": "Identity-Info",
    "o": "Event",
    "r": "Refer-To",
    "s": "Subject",
    "t": "To",
    "u": "Allow-Events",
    "v": "Via",
    "x": "Session-Expires",
    "y": "Identity",
}

_SPECIAL_SPELLINGS = {
    name.lower(): name
    for name in ("Call-ID", "CSeq", "WWW-Authenticate", "MIME-Version", "RSeq", "RAck", "SIP-ETag", "SIP-If-Match")
}

MULTI_VALUE_HEADERS = frozenset(
    name.lower() for name in ("Via", "Contact", "Route", "Record-Route", "Allow", "Supported", "Require",
                              "Proxy-Require", "Unsupported", "Accept", "Accept-Encoding", "Accept-Language",
                              "Content-Encoding", "Allow-Events")
)
"""Headers whose values are comma-separated lists that `Headers.get_list` splits."""


def canonical_name(name: str) -> str:
    """The usual spelling of a header name, expanding compact forms: `v` -> `Via`, `call-id` -> `Call-ID`."""
    lower = name.lower()
    if lower in COMPACT_FORMS:
        return COMPACT_FORMS[lower]
    if lower in _SPECIAL_SPELLINGS:
        return _SPECIAL_SPELLINGS[lower]
    return "-".join(part[:1].upper() + part[1:].lower() for part in name.split("-"))


class Headers:
    """Header fields in wire order; names are canonicalised, look-ups ignore case."""

    __slots__ = ("_items",)

    def __init__(self, items: Iterable[tuple[str, str]] = ()) -> None:
        self._items: list[tuple[str, str]] = [(canonical_name(n), v) for n, v in items]

    def add(self, name: str, value: str) -> None:
        """Append a header field."""
        self._items.append((canonical_name(name), value))

    def prepend(self, name: str, value: str) -> None:
        """Insert a header field before all others (used for a new top Via)."""
        self._items.insert(0, (canonical_name(name), value))

    def set(self, name: str, value: str) -> None:
        """Replace every field called `name` by one field with `value`, at the first one's position."""
        canonical = canonical_name(name)
        lower = canonical.lower()
        for index, (key, _) in enumerate(self._items):
            if key.lower() == lower:
                self._items[index] = (canonical, value)
                self._items[index + 1 :] = [(k, v) for k, v in self._items[index + 1 :] if k.lower() != lower]
                return
        self._items.append((canonical, value))

    def replace_first(self, name: str, value: str) -> None:
        """Replace the value of the first field called `name` (append one if there is none)."""
        lower = canonical_name(name).lower()
        for index, (key, _) in enumerate(self._items):
            if key.lower() == lower:
                self._items[index] = (key, value)
                return
        self.add(name, value)

    def remove(self, name: str) -> None:
        """Drop every field called `name`."""
        lower = canonical_name(name).lower()
        self._items = [(k, v) for k, v in self._items if k.lower() != lower]

    def get(self, name: str, default: str | None = None) -> str | None:
        """The value of the first field called `name`, or `default`."""
        lower = canonical_name(name).lower()
        for key, value in self._items:
            if key.lower() == lower:
                return value
        return default

    def get_all(self, name: str) -> list[str]:
        """The values of every field called `name`, as written."""
        lower = canonical_name(name).lower()
        return [value for key, value in self._items if key.lower() == lower]

    def get_list(self, name: str) -> list[str]:
        """Every comma-separated element of every field called `name` (for list-valued headers)."""
        elements: list[str] = []
        for value in self.get_all(name):
            elements.extend(part.strip() for part in split_unquoted(value, ",") if part.strip())
        return elements

    def count(self) -> int:
        """The number of header fields."""
        return len(self._items)

    def items(self) -> list[tuple[str, str]]:
        """(name, value) pairs in order."""
        return list(self._items)

    def copy(self) -> Headers:
        """An independent copy."""
        return Headers(self._items)

    def __contains__(self, name: object) -> bool:
        return isinstance(name, str) and self.get(name) is not None

    def __iter__(self) -> Iterator[tuple[str, str]]:
        return iter(list(self._items))

    def __len__(self) -> int:
        return len(self._items)

    def __repr__(self) -> str:
        return f"Headers({self._items!r})"
