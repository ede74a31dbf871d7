"""The Session Description Protocol (RFC 4566): a model that parses and serializes SDP bodies.

Only what offer/answer needs is interpreted (origin, connection, media lines, attributes); every
other line is kept in place so a description round-trips.
"""

from __future__ import annotations

from dataclasses import dataclass, field

from .errors import RemoteProtocolError
from .grammar import number

DIRECTIONS = ("sendrecv", "sendonly", "recvonly", "inactive")
SESSION_LINE_TYPES = frozenset("vosiuepcbtrzkam")
MEDIA_LINE_TYPES = frozenset("micbka")
"""RFC 4566 §5: the line types allowed at session level and inside a media section."""
SESSION_LINE_ORDER = "iuepbrzk"
MEDIA_LINE_ORDER = "ibk"
"""The order in which the uninterpreted lines are written (RFC 4566 §5)."""


class SdpParseError(RemoteProtocolError):
    """An SDP body is malformed; the INVITE that carried it is answered 400."""


@dataclass
class Origin:
    """`o=<username> <sess-id> <sess-version> <nettype> <addrtype> <unicast-address>`."""

    username: str = "-"
    session_id: int = 0
    session_version: int = 0
    nettype: str = "IN"
    addrtype: str = "IP4"
    address: str = "127.0.0.1"

    def __str__(self) -> str:
        return (f"{self.username} {self.session_id} {self.session_version} "
                f"{self.nettype} {self.addrtype} {self.address}")

    @classmethod
    def parse(cls, value: str) -> Origin:
        """Parse the value of an o= line."""
        parts = value.split()
        session_id = number(parts[1], 20) if len(parts) == 6 else None
        version = number(parts[2], 20) if len(parts) == 6 else None
        if session_id is None or version is None:
            raise SdpParseError(f"Malformed SDP origin: {value[:80]!r}")
        return cls(parts[0], session_id, version, parts[3], parts[4], parts[5])


@dataclass
class Connection:
    """`c=<nettype> <addrtype> <connection-address>`."""

    address: str
    addrtype: str = "IP4"
    nettype: str = "IN"

    def __str__(self) -> str:
        return f"{self.nettype} {self.addrtype} {self.address}"

    @classmethod
    def parse(cls, value: str) -> Connection:
        """Parse the value of a c= line (a multicast TTL suffix is kept in `address`)."""
        parts = value.split()
        if len(parts) != 3:
            raise SdpParseError(f"Malformed SDP connection: {value!r}")
        return cls(parts[2], parts[1].upper(), parts[0])

    @property
    def host(self) -> str:
        """The address without a multicast `/ttl` suffix."""
        return self.address.split("/", 1)[0]


@dataclass
class Media:
    """One media section: the m= line with its own c=, b= and a= lines."""

    kind: str
    port: int
    proto: str
    formats: list[str]
    port_count: int | None = None
    connection: Connection | None = None
    attributes: list[tuple[str, str | None]] = field(default_factory=list)
    other_lines: list[tuple[str, str]] = field(default_factory=list)

    def attribute(self, name: str) -> str | None:
        """The value of the first `a=name[:value]` (empty string for a flag), or None."""
        for key, value in self.attributes:
            if key == name:
                return value if value is not None else ""
        return None

    def attribute_values(self, name: str) -> list[str]:
        """The values of every `a=name:value`."""
        return [value for key, value in self.attributes if key == name and value is not None]

    def rtpmap(self) -> dict[int, tuple[str, int, int]]:
        """payload type -> (encoding name, clock rate, channels), from the a=rtpmap lines."""
        mapping: dict[int, tuple[str, int, int]] = {}
        for value in self.attribute_values("rtpmap"):
            pt_text, _, encoding = value.partition(" ")
            parts = encoding.strip().split("/")
            payload_type = number(pt_text, 3)
            rate = number(parts[1], 9) if len(parts) >= 2 else None
            if payload_type is None or rate is None:
                continue
            channels = (number(parts[2], 2) if len(parts) > 2 else None) or 1
            mapping[payload_type] = (parts[0], rate, channels)
        return mapping

    def fmtp(self) -> dict[int, str]:
        """payload type -> format parameters, from the a=fmtp lines."""
        mapping: dict[int, str] = {}
        for value in self.attribute_values("fmtp"):
            pt_text, _, params = value.partition(" ")
            payload_type = number(pt_text, 3)
            if payload_type is not None:
                mapping[payload_type] = params.strip()
        return mapping

    def direction(self, session_default: str = "sendrecv") -> str:
        """The media direction attribute, falling back to the session's."""
        for key, _ in self.attributes:
            if key in DIRECTIONS:
                return key
        return session_default

    def lines(self) -> list[str]:
        """The section as SDP lines (without line ends)."""
        port = f"{self.port}/{self.port_count}" if self.port_count is not None else str(self.port)
        out = [f"m={self.kind} {port} {self.proto} {' '.join(self.formats)}"]
        out.extend(f"{t}={v}" for t, v in self.other_lines if t == "i")
        if self.connection is not None:
            out.append(f"c={self.connection}")
        out.extend(f"{t}={v}" for t, v in self.other_lines if t != "i")
        out.extend(f"a={k}" if v is None else f"a={k}:{v}" for k, v in self.attributes)
        return out


@dataclass
class SessionDescription:
    """A whole SDP body."""

    origin: Origin = field(default_factory=Origin)
    session_name: str = "-"
    connection: Connection | None = None
    times: list[str] = field(default_factory=lambda: ["0 0"])
    attributes: list[tuple[str, str | None]] = field(default_factory=list)
    media: list[Media] = field(default_factory=list)
    other_lines: list[tuple[str, str]] = field(default_factory=list)
    version: int = 0

    def direction(self) -> str:
        """The session-level direction attribute (sendrecv when absent)."""
        for key, _ in self.attributes:
            if key in DIRECTIONS:
                return key
        return "sendrecv"

    def to_bytes(self) -> bytes:
        """Serialize with CRLF line ends, lines in the order RFC 4566 §5 requires."""
        lines = [f"v={self.version}", f"o={self.origin}", f"s={self.session_name}"]
        lines.extend(f"{t}={v}" for t, v in self.other_lines if t in "iuep")
        if self.connection is not None:
            lines.append(f"c={self.connection}")
        lines.extend(f"{t}={v}" for t, v in self.other_lines if t == "b")
        lines.extend(f"t={value}" for value in self.times)
        lines.extend(f"{t}={v}" for t, v in self.other_lines if t in "rzk")
        lines.extend(f"a={k}" if v is None else f"a={k}:{v}" for k, v in self.attributes)
        for media in self.media:
            lines.extend(media.lines())
        return ("\r\n".join(lines) + "\r\n").encode("utf-8")


def parse_sdp(data: bytes | str) -> SessionDescription:
    """Parse an SDP body; raise `SdpParseError` when it is malformed."""
    text = data.decode("utf-8", "replace") if isinstance(data, bytes) else data
    lines = [line for line in text.replace("\r\n", "\n").split("\n") if line.strip()]
    if not lines or not lines[0].startswith("v="):
        raise SdpParseError("SDP must start with v=")
    session = SessionDescription(times=[])
    current: Media | None = None
    seen_origin = False
    for line in lines:
        kind, eq, value = line.partition("=")
        if not eq or len(kind) != 1:
            raise SdpParseError(f"Malformed SDP line: {line[:60]!r}")
        value = value.rstrip()
        if kind not in (MEDIA_LINE_TYPES if current is not None else SESSION_LINE_TYPES):
            raise SdpParseError(f"SDP line type {kind!r} is not allowed {'in a media section' if current else 'here'}")
        if kind == "m":
            current = _parse_media_line(value)
            session.media.append(current)
        elif kind == "v":
            if value.strip() != "0":
                raise SdpParseError(f"Unsupported SDP version {value!r}")
        elif kind == "a":
            name, colon, attr_value = value.partition(":")
            (current.attributes if current else session.attributes).append((name, attr_value if colon else None))
        elif kind == "c":
            connection = Connection.parse(value)
            if current is None:
                session.connection = connection
            else:
                current.connection = connection
        elif current is not None:
            current.other_lines.append((kind, value))
        elif kind == "o":
            session.origin = Origin.parse(value)
            seen_origin = True
        elif kind == "s":
            session.session_name = value
        elif kind == "t":
            session.times.append(value)
        else:
            session.other_lines.append((kind, value))
    if not seen_origin:
        raise SdpParseError("SDP has no o= line")
    if not session.times:
        session.times.append("0 0")
    # Keep the other lines in RFC 4566 order, as to_bytes writes them, so that a description round-trips.
    session.other_lines.sort(key=lambda line: SESSION_LINE_ORDER.index(line[0]))
    for media in session.media:
        media.other_lines.sort(key=lambda line: MEDIA_LINE_ORDER.index(line[0]))
    return session


def _parse_media_line(value: str) -> Media:
    parts = value.split()
    if len(parts) < 4:
        raise SdpParseError(f"Malformed SDP media line: {value!r}")
    port_text, _, count_text = parts[1].partition("/")
    port = number(port_text, 5)
    count = number(count_text, 5) if count_text else None
    if port is None or port > 65535 or (count_text and count is None):
        raise SdpParseError(f"Malformed SDP media port: {parts[1][:40]!r}")
    return Media(parts[0], port, parts[2], parts[3:], count)
