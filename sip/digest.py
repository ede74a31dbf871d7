"""HTTP Digest authentication for a SIP UAC (RFC 3261 §22, RFC 2617, RFC 7616, RFC 8760).

A registrar or proxy answers 401/407 with a WWW-Authenticate / Proxy-Authenticate challenge; the UAC
repeats the request with an Authorization / Proxy-Authorization header proving it knows the password.
This module parses challenges and computes those header values, with MD5 and SHA-256, their -sess
variants, and qop auth / auth-int, or the RFC 2069 form when the server offers no qop. It is pure: the
only outside input is a random client nonce, and tests can pass their own.
"""

from __future__ import annotations

import hashlib
import re
import secrets
from dataclasses import dataclass, field

from .grammar import check_quotes_balanced, is_token, quote, split_unquoted, unquote

ALGORITHMS = ("MD5", "MD5-SESS", "SHA-256", "SHA-256-SESS")
"""The supported algorithm names, as `Challenge.algorithm` spells them."""

_HASH_NAMES = {"MD5": "md5", "SHA-256": "sha256"}
_SESSION_SUFFIX = "-SESS"
_SCHEME_RE = re.compile(r"[ \t]*(\S+)(?:[ \t\r\n]+(.*))?", re.ASCII | re.DOTALL)
# quoted-string = DQUOTE *(qdtext / quoted-pair) DQUOTE
_QUOTED_STRING_RE = re.compile(r'"(?:[^"\\]|\\.)*"', re.DOTALL)


@dataclass(frozen=True, slots=True)
class Challenge:
    """A Digest challenge from a WWW-Authenticate or Proxy-Authenticate header."""

    scheme: str
    realm: str
    nonce: str
    opaque: str | None = None
    algorithm: str = "MD5"
    qop: tuple[str, ...] = ()
    stale: bool = False


@dataclass(frozen=True, slots=True)
class Credentials:
    """A username and password, for one realm or (realm None) for any."""

    username: str
    password: str = field(repr=False)
    realm: str | None = None

    def matches(self, realm: str) -> bool:
        """Whether these credentials may answer a challenge for `realm`."""
        return self.realm is None or self.realm == realm


def parse_challenge(value: str) -> Challenge:
    """Parse a WWW-Authenticate / Proxy-Authenticate value; raise ValueError if it is not a usable Digest one."""
    params = _digest_params(value)
    realm = params.get("realm")
    nonce = params.get("nonce")
    if realm is None or nonce is None:
        raise ValueError("Digest challenge without realm or nonce")
    algorithm = params.get("algorithm", "MD5").upper()
    if algorithm not in ALGORITHMS:
        raise ValueError(f"unsupported Digest algorithm {algorithm!r}")
    qop = tuple(option.strip().lower() for option in params.get("qop", "").split(",") if option.strip())
    return Challenge(
        scheme="Digest",
        realm=realm,
        nonce=nonce,
        opaque=params.get("opaque"),
        algorithm=algorithm,
        qop=qop,
        stale=params.get("stale", "").lower() == "true",
    )


def parse_credentials_header(value: str) -> dict[str, str]:
    """The parameters of a Digest Authorization / Proxy-Authorization value, names lower-cased, values unquoted."""
    return _digest_params(value)


def authorization(challenge: Challenge, credentials: Credentials, method: str, uri: str, *,
                  cnonce: str | None = None, nc: int = 1, body: bytes = b"") -> str:
    """The Authorization / Proxy-Authorization value answering `challenge` for a `method` request to `uri`.

    qop "auth" is preferred, then "auth-int" (which covers `body`); with no qop offered the RFC 2069 form
    is used. Raises ValueError when the credentials are for another realm, the algorithm is unsupported,
    only unknown qop values are offered, or `nc` does not fit in 8 hex digits.
    """
    if not credentials.matches(challenge.realm):
        raise ValueError(f"credentials are not for realm {challenge.realm!r}")
    algorithm = challenge.algorithm.upper()
    if algorithm not in ALGORITHMS:
        raise ValueError(f"unsupported Digest algorithm {challenge.algorithm!r}")
    if not 0 < nc <= 0xFFFFFFFF:
        raise ValueError(f"nonce count {nc} out of range")
    qop = _chosen_qop(challenge.qop)
    session = algorithm.endswith(_SESSION_SUFFIX)
    hash_name = _HASH_NAMES[algorithm.removesuffix(_SESSION_SUFFIX)]

    def digest(data: str | bytes) -> str:
        return hashlib.new(hash_name, data.encode() if isinstance(data, str) else data).hexdigest()

    if cnonce is None and (qop or session):
        cnonce = secrets.token_hex(16)
    ha1 = digest(f"{credentials.username}:{challenge.realm}:{credentials.password}")
    if session:
        ha1 = digest(f"{ha1}:{challenge.nonce}:{cnonce}")
    ha2 = digest(f"{method}:{uri}:{digest(body)}" if qop == "auth-int" else f"{method}:{uri}")
    nonce_count = f"{nc:08x}"
    if qop:
        response = digest(f"{ha1}:{challenge.nonce}:{nonce_count}:{cnonce}:{qop}:{ha2}")
    else:
        response = digest(f"{ha1}:{challenge.nonce}:{ha2}")

    params = [
        f"username={quote(credentials.username)}",
        f"realm={quote(challenge.realm)}",
        f"nonce={quote(challenge.nonce)}",
        f"uri={quote(uri)}",
        f"response={quote(response)}",
        f"algorithm={algorithm}",
    ]
    if challenge.opaque is not None:
        params.append(f"opaque={quote(challenge.opaque)}")
    if qop:
        params += [f"qop={qop}", f"nc={nonce_count}"]
    if cnonce is not None and (qop or session):
        params.append(f"cnonce={quote(cnonce)}")
    return "Digest " + ", ".join(params)


def _chosen_qop(offered: tuple[str, ...]) -> str | None:
    lowered = [option.lower() for option in offered]
    for option in ("auth", "auth-int"):
        if option in lowered:
            return option
    if lowered:
        raise ValueError(f"no supported qop among {', '.join(offered)}")
    return None


def _digest_params(value: str) -> dict[str, str]:
    """The `name=value` list after a Digest scheme: names lower-cased, each at most once, values unquoted.

    auth-param = token BWS "=" BWS ( token / quoted-string ) (RFC 7235 §2.1)
    """
    match = _SCHEME_RE.fullmatch(value)
    if match is None or match.group(1).lower() != "digest":
        raise ValueError(f"not a Digest authentication value: {value[:40]!r}")
    rest = match.group(2) or ""
    if not check_quotes_balanced(rest):
        raise ValueError("unterminated quoted string")
    params: dict[str, str] = {}
    for part in split_unquoted(rest, ","):
        if not part.strip():
            continue
        name, equals, raw = part.partition("=")
        name, raw = name.strip().lower(), raw.strip()
        if not equals or not is_token(name):
            raise ValueError(f"malformed Digest parameter {part.strip()[:40]!r}")
        if name in params:
            raise ValueError(f"Digest parameter {name!r} given twice")
        if _QUOTED_STRING_RE.fullmatch(raw):
            params[name] = unquote(raw)
        elif is_token(raw):
            params[name] = raw
        else:
            raise ValueError(f"malformed value for Digest parameter {name!r}")
    return params
