"""SRTP keyed by SDES (RFC 4568 `a=crypto`), on top of libsrtp through pylibsrtp.

SDES puts each side's master key in its own `a=crypto` line: the key in our answer is the one we send
with, the key in the peer's offer the one it sends with. `CryptoAttribute` parses and prints those
lines, `choose_crypto` answers an offer, and `SrtpContext` protects what we send and checks what we
receive without raising on hostile input: a packet that fails is dropped and its reason counted.
Only what pylibsrtp can do is accepted: the two AES-CM/HMAC-SHA1 suites, one key, no MKI and no
session parameters.
"""

from __future__ import annotations

import base64
import binascii
import re
import secrets
from dataclasses import dataclass

import pylibsrtp

SUITES: dict[str, int] = {
    "AES_CM_128_HMAC_SHA1_80": pylibsrtp.Policy.SRTP_PROFILE_AES128_CM_SHA1_80,
    "AES_CM_128_HMAC_SHA1_32": pylibsrtp.Policy.SRTP_PROFILE_AES128_CM_SHA1_32,
}
"""The crypto suites we speak, by their SDP names, with libsrtp's profile for each."""

KEY_LENGTH = 30
"""16 bytes of master key and 14 of master salt, for both suites."""

_TAG = re.compile(r"[0-9]{1,9}")
_LIFETIME = re.compile(r"(?:2\^[0-9]{1,2}|[0-9]{1,20})")
_MKI = re.compile(r"([0-9]{1,20}):([0-9]{1,3})")

_REPLAY_ERRORS = frozenset({
    "replay check failed (bad index)", "replay check failed (index too old)", "packet index is too old to consider",
})
_AUTH_ERRORS = frozenset({"authentication failure"})


class SrtpError(ValueError):
    """An unusable crypto attribute, or libsrtp refusing to protect a packet."""


@dataclass(frozen=True)
class CryptoAttribute:
    """The value of one `a=crypto` line: tag, suite and an inline master key (with optional lifetime and MKI)."""

    tag: int
    suite: str
    key: bytes
    """Master key (16 bytes) followed by master salt (14 bytes)."""
    lifetime: str | None = None
    """As written, e.g. "2^20"; kept for printing, not enforced (libsrtp enforces the 2^48 limit itself)."""
    mki: str | None = None
    """"value:length" as written, e.g. "1:4"."""

    def __post_init__(self) -> None:
        if not 0 <= self.tag <= 999_999_999:
            raise SrtpError(f"crypto tag {self.tag} out of range")
        if self.suite not in SUITES:
            raise SrtpError(f"unsupported crypto suite {self.suite!r}")
        if len(self.key) != KEY_LENGTH:
            raise SrtpError(f"{self.suite} needs a {KEY_LENGTH}-byte key and salt, got {len(self.key)} bytes")
        if self.lifetime is not None and not _LIFETIME.fullmatch(self.lifetime):
            raise SrtpError(f"bad key lifetime {self.lifetime!r}")
        if self.mki is not None:
            match = _MKI.fullmatch(self.mki)
            if match is None or not 1 <= int(match.group(2)) <= 128:
                raise SrtpError(f"bad MKI {self.mki!r}")

    @classmethod
    def parse(cls, value: str) -> CryptoAttribute:
        """Parse the value of an `a=crypto:` line; raise SrtpError for anything we cannot use or understand."""
        fields = value.split()
        if len(fields) < 3:
            raise SrtpError(f"crypto attribute needs a tag, a suite and key parameters: {value!r}")
        if len(fields) > 3:
            raise SrtpError(f"unsupported SRTP session parameters: {' '.join(fields[3:])!r}")
        tag, suite, key_params = fields
        if not _TAG.fullmatch(tag):
            raise SrtpError(f"bad crypto tag {tag!r}")
        if suite not in SUITES:
            raise SrtpError(f"unsupported crypto suite {suite!r}")
        if ";" in key_params:
            raise SrtpError("more than one key in a crypto attribute is not supported")
        method, _, info = key_params.partition(":")
        if method != "inline":
            raise SrtpError(f"unsupported key method {method!r}")
        key_b64, *extras = info.split("|")
        if len(extras) > 2:
            raise SrtpError(f"bad key parameters {key_params!r}")
        lifetime = mki = None
        if len(extras) == 2:
            lifetime, mki = extras
        elif extras and ":" in extras[0]:
            mki = extras[0]
        elif extras:
            lifetime = extras[0]
        try:
            key = base64.b64decode(key_b64, validate=True)
        except (binascii.Error, ValueError) as error:
            raise SrtpError(f"bad base64 key {key_b64!r}") from error
        return cls(int(tag), suite, key, lifetime, mki)

    @classmethod
    def generate(cls, tag: int, suite: str) -> CryptoAttribute:
        """A new attribute with a fresh random master key and salt."""
        return cls(tag, suite, secrets.token_bytes(KEY_LENGTH))

    def __str__(self) -> str:
        """The attribute value as it goes after `a=crypto:`."""
        key_params = "inline:" + base64.b64encode(self.key).decode("ascii")
        if self.lifetime is not None:
            key_params += "|" + self.lifetime
        if self.mki is not None:
            key_params += "|" + self.mki
        return f"{self.tag} {self.suite} {key_params}"


def choose_crypto(offered: list[str]) -> tuple[CryptoAttribute, CryptoAttribute] | None:
    """Pick the first usable offered `a=crypto` value: (the peer's attribute, our answer with a fresh key), or None."""
    for value in offered:
        try:
            remote = CryptoAttribute.parse(value)
        except SrtpError:
            continue
        if remote.mki is not None:
            continue
        return remote, CryptoAttribute.generate(remote.tag, remote.suite)
    return None


class SrtpContext:
    """Both directions of one SRTP session: protect with our key, unprotect with the peer's."""

    def __init__(self, local: CryptoAttribute, remote: CryptoAttribute) -> None:
        for attribute in (local, remote):
            if attribute.mki is not None:
                raise SrtpError("crypto attributes with an MKI are not supported")
        outbound = pylibsrtp.Policy(key=local.key, ssrc_type=pylibsrtp.Policy.SSRC_ANY_OUTBOUND,
                                    srtp_profile=SUITES[local.suite])
        inbound = pylibsrtp.Policy(key=remote.key, ssrc_type=pylibsrtp.Policy.SSRC_ANY_INBOUND,
                                   srtp_profile=SUITES[remote.suite])
        self._tx = pylibsrtp.Session(outbound)
        self._rx = pylibsrtp.Session(inbound)
        self.stats: dict[str, int] = {"auth_failed": 0, "replayed": 0, "malformed": 0}

    def protect(self, rtp: bytes) -> bytes:
        """Encrypt and authenticate one RTP packet; SrtpError if libsrtp refuses it."""
        try:
            return self._tx.protect(bytes(rtp))
        except (pylibsrtp.Error, ValueError) as error:
            raise SrtpError(f"SRTP protect failed: {error}") from error

    def protect_rtcp(self, rtcp: bytes) -> bytes:
        """Encrypt and authenticate one RTCP compound packet; SrtpError if libsrtp refuses it."""
        try:
            return self._tx.protect_rtcp(bytes(rtcp))
        except (pylibsrtp.Error, ValueError) as error:
            raise SrtpError(f"SRTCP protect failed: {error}") from error

    def unprotect(self, srtp: bytes) -> bytes | None:
        """The RTP packet inside an SRTP packet, or None (reason counted in `stats`) when it fails."""
        try:
            return self._rx.unprotect(bytes(srtp))
        except (pylibsrtp.Error, ValueError) as error:
            self._count(error)
            return None

    def unprotect_rtcp(self, srtcp: bytes) -> bytes | None:
        """The RTCP packet inside an SRTCP packet, or None (reason counted in `stats`) when it fails."""
        try:
            return self._rx.unprotect_rtcp(bytes(srtcp))
        except (pylibsrtp.Error, ValueError) as error:
            self._count(error)
            return None

    def _count(self, error: Exception) -> None:
        """Count a failed unprotect under its reason."""
        text = str(error) if isinstance(error, pylibsrtp.Error) else ""
        if text in _AUTH_ERRORS:
            self.stats["auth_failed"] += 1
        elif text in _REPLAY_ERRORS:
            self.stats["replayed"] += 1
        else:
            self.stats["malformed"] += 1
