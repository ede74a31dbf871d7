"""Which packets may feed a participant's stream: RTP that cannot be hijacked ("RTP bleed", CVE-2017-14099).

A stream is either *locked* to one source address from the start (the SDP address, when it is reachable:
public and the same host the signalling came from, or loopback on both sides) or *learning*: then it latches
to the first source that sends `probation` packets in sequence, and locks. Sources on the signalling host are
preferred: for the first `grace` seconds only they may latch, so a stranger racing the real peer loses.

Once locked, packets from any other address are dropped, and so are packets of an SSRC other than the stream's
until that SSRC has sent `probation` packets in sequence from the locked address (a legitimate sender restarting
its stream) — then it becomes the stream's SSRC. Every drop is counted by reason. Sans-IO: time comes in as `now`.
"""

from __future__ import annotations

import enum
import ipaddress
import logging
from dataclasses import dataclass

from .packet import Address

logger = logging.getLogger(__name__)

PROBATION = 3
"""Packets in sequence a new source or SSRC must send before it is accepted (Asterisk uses 4, RFC 3550 2)."""
GRACE = 1.0
"""Seconds during which only the signalling host may latch."""


class Verdict(enum.Enum):
    """What to do with one packet."""

    ACCEPT = "accept"
    WRONG_SOURCE = "wrong_source"
    WRONG_SSRC = "wrong_ssrc"
    LEARNING = "learning"
    """Held back while its source or SSRC is on probation."""


def is_reachable(sdp_host: str, signalling_host: str | None) -> bool:
    """Whether media may be sent to the SDP address as it stands (no latching needed)."""
    try:
        sdp = ipaddress.ip_address(sdp_host)
    except ValueError:
        return False
    if signalling_host is None:
        return False
    try:
        signalling = ipaddress.ip_address(signalling_host)
    except ValueError:
        return False
    if sdp.is_loopback:
        return signalling.is_loopback
    return sdp.is_global and sdp == signalling


@dataclass
class _Candidate:
    address: Address
    ssrc: int
    sequence: int
    count: int


class SourceLock:
    """The address and SSRC a stream accepts packets from."""

    def __init__(self, *, locked_to: Address | None, preferred_host: str | None, now: float,
                 probation: int = PROBATION, grace: float = GRACE) -> None:
        self.address: Address | None = locked_to
        """The locked source address (None while learning)."""
        self.ssrc: int | None = None
        self.probation = probation
        self.preferred_host = preferred_host
        self.learning_until = now + grace
        self.drops: dict[Verdict, int] = {Verdict.WRONG_SOURCE: 0, Verdict.WRONG_SSRC: 0, Verdict.LEARNING: 0}
        self.ssrc_changes = 0
        self._source_candidate: _Candidate | None = None
        self._ssrc_candidate: _Candidate | None = None

    @property
    def locked(self) -> bool:
        """Whether a source address has been fixed."""
        return self.address is not None

    def relock(self, *, locked_to: Address | None, preferred_host: str | None, now: float) -> None:
        """A renegotiated stream (re-INVITE): lock afresh to the new SDP address, or learn again."""
        if locked_to is None and self.address is not None and preferred_host == self.preferred_host:
            return  # the peer is still unreachable by SDP: keep what we latched
        self.address = locked_to
        self.preferred_host = preferred_host
        self.learning_until = now + GRACE
        self._source_candidate = None

    def source_allowed(self, source: Address) -> bool:
        """A cheap check before any work (decryption) is spent on a packet: False means drop it."""
        if self.address is None or source == self.address:
            return True
        self.drops[Verdict.WRONG_SOURCE] += 1
        return False

    def check(self, source: Address, ssrc: int, sequence: int, now: float) -> Verdict:
        """The verdict on a (parsed, authenticated) packet; drops are counted."""
        if self.address is None:
            verdict = self._learn_source(source, ssrc, sequence, now)
        elif source != self.address:
            verdict = Verdict.WRONG_SOURCE
        elif self.ssrc is None or ssrc == self.ssrc:
            self.ssrc = ssrc
            self._ssrc_candidate = None
            return Verdict.ACCEPT
        else:
            verdict = self._learn_ssrc(source, ssrc, sequence)
        if verdict is not Verdict.ACCEPT:
            self.drops[verdict] += 1
        return verdict

    def _learn_source(self, source: Address, ssrc: int, sequence: int, now: float) -> Verdict:
        if now < self.learning_until and self.preferred_host is not None and source[0] != self.preferred_host:
            return Verdict.WRONG_SOURCE
        self._source_candidate = candidate = _follow(self._source_candidate, source, ssrc, sequence)
        if candidate.count < self.probation:
            return Verdict.LEARNING
        self.address, self.ssrc = source, ssrc
        self._source_candidate = None
        logger.info("RTP source latched to %s:%d (SSRC %08x)", source[0], source[1], ssrc)
        return Verdict.ACCEPT

    def _learn_ssrc(self, source: Address, ssrc: int, sequence: int) -> Verdict:
        self._ssrc_candidate = candidate = _follow(self._ssrc_candidate, source, ssrc, sequence)
        if candidate.count < self.probation:
            return Verdict.WRONG_SSRC
        logger.info("RTP stream from %s:%d changed SSRC %08x -> %08x", source[0], source[1], self.ssrc or 0, ssrc)
        self.ssrc = ssrc
        self.ssrc_changes += 1
        self._ssrc_candidate = None
        return Verdict.ACCEPT


def _follow(candidate: _Candidate | None, source: Address, ssrc: int, sequence: int) -> _Candidate:
    """The candidate after one more packet: counted when it is the next in sequence, else a fresh start."""
    if candidate is not None and candidate.address == source and candidate.ssrc == ssrc:
        step = (sequence - candidate.sequence) & 0xFFFF
        if step == 0:
            return candidate  # a duplicate neither helps nor hurts
        if step == 1:
            candidate.sequence = sequence
            candidate.count += 1
            return candidate
    return _Candidate(source, ssrc, sequence, 1)
