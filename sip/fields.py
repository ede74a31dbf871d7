"""Typed values of the header fields the stack interprets: name-addr (From/To/Contact/Route), Via, CSeq."""

from __future__ import annotations

import re
from dataclasses import dataclass, field

from .grammar import (
    HOSTPORT_RE,
    SENT_PROTOCOL_RE,
    Params,
    find_unquoted,
    is_digits,
    is_token,
    number,
    quote,
    unquote,
    valid_host,
)
from .uri import SipUri, Uri, parse_uri


@dataclass
class NameAddress:
    """`"Display" <uri>;param=value`: the value of From, To, Contact, Route and Record-Route."""

    uri: Uri
    display_name: str | None = None
    params: Params = field(default_factory=Params)

    @property
    def tag(self) -> str | None:
        """The `tag` parameter (dialog identification), if any."""
        return self.params.get("tag")

    @property
    def sip_uri(self) -> SipUri:
        """The URI as a SIP URI; raises ValueError for other schemes."""
        if not isinstance(self.uri, SipUri):
            raise ValueError(f"not a SIP URI: {self.uri}")
        return self.uri

    def copy(self) -> NameAddress:
        """An independent copy."""
        uri = self.uri.copy() if isinstance(self.uri, SipUri) else self.uri
        return NameAddress(uri, self.display_name, self.params.copy())

    def __str__(self) -> str:
        display = ""
        if self.display_name:
            display = (self.display_name if all(is_token(w) for w in self.display_name.split(" "))
                       else quote(self.display_name)) + " "
        return f"{display}<{self.uri}>{self.params}"

    @classmethod
    def parse(cls, text: str) -> NameAddress:
        """Parse name-addr or addr-spec with header parameters; raise ValueError when malformed.

        from-spec = ( name-addr / addr-spec ) *( SEMI from-param )
        name-addr = [ display-name ] LAQUOT addr-spec RAQUOT
        """
        text = text.strip()
        display: str | None = None
        if text.startswith('"'):
            end = _closing_quote(text)
            display = unquote(text[: end + 1])
            text = text[end + 1 :].lstrip()
            if not text.startswith("<"):
                raise ValueError("quoted display name without <uri>")
        lt = find_unquoted(text, "<")
        if lt >= 0:
            if display is None:
                words = text[:lt].split()
                if words and not all(is_token(w) for w in words):
                    raise ValueError(f"bad display name {text[:lt]!r}")
                display = " ".join(words) or None
            gt = text.find(">", lt)
            if gt < 0:
                raise ValueError("missing '>' in name-addr")
            uri_text, rest = text[lt + 1 : gt], text[gt + 1 :]
            rest = rest.strip()
            if rest and not rest.startswith(";"):
                raise ValueError(f"junk after name-addr: {rest!r}")
        else:
            semicolon = find_unquoted(text, ";")
            uri_text, rest = (text, "") if semicolon < 0 else (text[:semicolon], text[semicolon:])
            if " " in uri_text.strip():
                raise ValueError(f"bad addr-spec {uri_text!r}")
        return cls(parse_uri(uri_text), display, Params.parse(rest))


def _closing_quote(text: str) -> int:
    index = 1
    while index < len(text):
        if text[index] == "\\":
            index += 2
            continue
        if text[index] == '"':
            return index
        index += 1
    raise ValueError("unterminated quoted string")


@dataclass
class Via:
    """One Via value: `SIP/2.0/UDP host:port;branch=z9hG4bK...;rport`."""

    transport: str
    host: str
    port: int | None = None
    params: Params = field(default_factory=Params)
    protocol: str = "SIP/2.0"

    @property
    def branch(self) -> str | None:
        """The branch parameter, which names the transaction."""
        return self.params.get("branch")

    @property
    def sent_by(self) -> tuple[str, int]:
        """(host, port) of sent-by, with the transport's default port filled in."""
        return self.host.lower(), self.port or (5061 if self.transport == "TLS" else 5060)

    def copy(self) -> Via:
        """An independent copy."""
        return Via(self.transport, self.host, self.port, self.params.copy(), self.protocol)

    def __str__(self) -> str:
        port = f":{self.port}" if self.port is not None else ""
        return f"{self.protocol}/{self.transport} {self.host}{port}{self.params}"

    @classmethod
    def parse(cls, text: str) -> Via:
        """Parse one via-parm; raise ValueError when malformed.

        via-parm = sent-protocol LWS sent-by *( SEMI via-params ) ; sent-by = host [ COLON port ]
        """
        match = SENT_PROTOCOL_RE.fullmatch(text.strip())
        if not match:
            raise ValueError(f"bad Via {text!r}")
        name, version, transport, rest = match.groups()
        semicolon = find_unquoted(rest, ";")
        sent_by, param_text = (rest, "") if semicolon < 0 else (rest[:semicolon], rest[semicolon:])
        sent_by = re.sub(r"\s*:\s*", ":", sent_by.strip())  # COLON = SWS ":" SWS; nowhere else
        hostport = HOSTPORT_RE.fullmatch(sent_by)
        if not hostport or not valid_host(hostport.group(1)):
            raise ValueError(f"bad sent-by in Via {text!r}")
        port = int(hostport.group(2)) if hostport.group(2) else None
        if port is not None and port > 65535:
            raise ValueError(f"port out of range in Via {text!r}")
        return cls(transport.upper(), hostport.group(1), port, Params.parse(param_text), f"{name}/{version}")


@dataclass(frozen=True)
class CSeq:
    """`CSeq: 4711 INVITE`."""

    number: int
    method: str

    def __str__(self) -> str:
        return f"{self.number} {self.method}"

    @classmethod
    def parse(cls, text: str) -> CSeq:
        """Parse a CSeq value; the number must fit 31 bits (RFC 3261 §8.1.1.5)."""
        parts = text.split()
        if len(parts) != 2 or not is_digits(parts[0]) or not is_token(parts[1]):
            raise ValueError(f"bad CSeq {text!r}")
        value = number(parts[0])
        if value is None or value >= 2**31:
            raise ValueError(f"CSeq number out of range: {parts[0][:20]}")
        return cls(value, parts[1])
