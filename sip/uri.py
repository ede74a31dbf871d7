"""SIP and SIPS URIs (RFC 3261 §19.1) and other absolute URIs, parsed and serialized.

The user part is kept exactly as written (escapes and all) so a message round-trips byte for byte;
`SipUri.user_unescaped` gives the decoded form that comparisons and look-ups use.
"""

from __future__ import annotations

from dataclasses import dataclass, field

from .grammar import HOSTPORT_RE, Params, unescape, valid_host


@dataclass
class SipUri:
    """A `sip:` or `sips:` URI."""

    host: str
    user: str | None = None
    password: str | None = None
    port: int | None = None
    scheme: str = "sip"
    params: Params = field(default_factory=Params)
    headers: str | None = None

    @property
    def user_unescaped(self) -> str | None:
        """The user part with %HH escapes decoded once."""
        return None if self.user is None else unescape(self.user)

    @property
    def secure(self) -> bool:
        """Whether this is a `sips:` URI."""
        return self.scheme == "sips"

    @property
    def transport(self) -> str | None:
        """The `transport=` parameter, lower-cased, if present."""
        value = self.params.get("transport")
        return value.lower() if value else None

    def host_and_port(self, default_port: int | None = None) -> tuple[str, int]:
        """The host without IPv6 brackets and the port (5060/5061 by scheme if none is given)."""
        host = self.host[1:-1] if self.host.startswith("[") else self.host
        port = self.port or default_port or (5061 if self.secure else 5060)
        return host, port

    @property
    def address_of_record(self) -> str:
        """`scheme:user@host[:port]` without parameters or headers: the URI as a party's address."""
        user = f"{self.user}@" if self.user is not None else ""
        port = f":{self.port}" if self.port is not None else ""
        return f"{self.scheme}:{user}{self.host}{port}"

    def copy(self) -> SipUri:
        """An independent copy."""
        return SipUri(self.host, self.user, self.password, self.port, self.scheme, self.params.copy(), self.headers)

    def __str__(self) -> str:
        userinfo = ""
        if self.user is not None:
            userinfo = self.user + (f":{self.password}" if self.password is not None else "") + "@"
        port = f":{self.port}" if self.port is not None else ""
        headers = f"?{self.headers}" if self.headers is not None else ""
        return f"{self.scheme}:{userinfo}{self.host}{port}{self.params}{headers}"


@dataclass
class AbsoluteUri:
    """A URI of a scheme other than sip/sips (tel:, http:, urn:, ...), kept as text."""

    scheme: str
    text: str

    def __str__(self) -> str:
        return self.text


Uri = SipUri | AbsoluteUri


def parse_uri(text: str) -> Uri:
    """Parse a URI; raise ValueError if it is not one. Schemes other than sip/sips are not decomposed."""
    text = text.strip()
    scheme, colon, rest = text.partition(":")
    if not colon or not scheme or not scheme[0].isalpha() or not all(c.isalnum() or c in "+-." for c in scheme):
        raise ValueError(f"not a URI: {text!r}")
    scheme = scheme.lower()
    if scheme not in ("sip", "sips"):
        if not rest or any(c in rest for c in " \t\r\n<>\""):
            raise ValueError(f"bad {scheme} URI: {text!r}")
        return AbsoluteUri(scheme, text)
    return _parse_sip_uri(scheme, rest, text)


def _parse_sip_uri(scheme: str, rest: str, text: str) -> SipUri:
    if any(c in rest for c in " \t\r\n<>\""):
        raise ValueError(f"bad character in SIP URI {text!r}")
    user = password = None
    at = rest.find("@")
    if at >= 0:
        userinfo, rest = rest[:at], rest[at + 1 :]
        if not userinfo:
            raise ValueError(f"empty user part in {text!r}")
        user, colon, pw = userinfo.partition(":")
        password = pw if colon else None
        if not user:
            raise ValueError(f"empty user in {text!r}")
    headers = None
    question = rest.find("?")
    if question >= 0:
        rest, headers = rest[:question], rest[question + 1 :]
    hostport, semicolon, param_text = rest.partition(";")
    match = HOSTPORT_RE.fullmatch(hostport)
    if not match or not valid_host(match.group(1)):
        raise ValueError(f"bad host in SIP URI {text!r}")
    host, port_text = match.groups()
    port = None
    if port_text is not None:
        port = int(port_text)
        if port > 65535:
            raise ValueError(f"port out of range in {text!r}")
    params = Params.parse(param_text) if semicolon else Params()
    return SipUri(host=host, user=user, password=password, port=port, scheme=scheme, params=params, headers=headers)
