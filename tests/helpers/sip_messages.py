"""Hand-written SIP messages for tests, built as text so they do not depend on the stack under test."""

from __future__ import annotations

import secrets
from collections.abc import Sequence
from dataclasses import dataclass, field


def pcmu_offer(host: str, port: int, formats: str = "0 101", extra: str = "", *, version: int = 1,
               direction: str = "sendrecv") -> bytes:
    """A typical softphone SDP offer; a changed offer must carry a higher `version` (RFC 3264 §8)."""
    lines = [
        "v=0",
        f"o=tester 1234 {version} IN IP{6 if ':' in host else 4} {host}",
        "s=-",
        f"c=IN IP{6 if ':' in host else 4} {host}",
        "t=0 0",
        f"m=audio {port} RTP/AVP {formats}",
        "a=rtpmap:0 PCMU/8000",
        "a=rtpmap:8 PCMA/8000",
        "a=rtpmap:18 G729/8000",
        "a=rtpmap:101 telephone-event/8000",
        "a=fmtp:101 0-16",
        "a=ptime:20",
    ]
    if extra:
        lines.append(extra)
    lines.append(f"a={direction}")
    return ("\r\n".join(lines) + "\r\n").encode()


def audio_offer(host: str, port: int, rtpmaps: Sequence[str], *, fmtps: Sequence[str] = (),
                telephone_event: int | None = 101, crypto: str | None = None, version: int = 1,
                direction: str = "sendrecv", connection: str | None = None, extra: Sequence[str] = ()) -> bytes:
    """An SDP offer of one audio stream with the given `a=rtpmap` values (RTP/SAVP when `crypto` is given).

    `connection` overrides the c= address (a phone behind NAT puts its private address there).
    """
    ip = f"IP{6 if ':' in host else 4}"
    formats = [rtpmap.split()[0] for rtpmap in rtpmaps]
    attributes = [f"a=rtpmap:{rtpmap}" for rtpmap in rtpmaps] + [f"a=fmtp:{fmtp}" for fmtp in fmtps]
    if telephone_event is not None:
        clock = rtpmaps[0].split("/")[1]
        formats.append(str(telephone_event))
        attributes += [f"a=rtpmap:{telephone_event} telephone-event/{clock}", f"a=fmtp:{telephone_event} 0-16"]
    lines = [
        "v=0",
        f"o=tester 4321 {version} IN {ip} {host}",
        "s=-",
        f"c=IN {ip} {connection or host}",
        "t=0 0",
        f"m=audio {port} RTP/{'SAVP' if crypto else 'AVP'} {' '.join(formats)}",
        *attributes,
        "a=ptime:20",
        *([f"a=crypto:{crypto}"] if crypto else []),
        *extra,
        f"a={direction}",
    ]
    return ("\r\n".join(lines) + "\r\n").encode()


@dataclass
class CallParty:
    """The caller side of a test call: addresses, tags and counters for building its requests."""

    local_host: str
    local_port: int
    target_uri: str
    call_id: str = field(default_factory=lambda: secrets.token_hex(8) + "@test")
    from_tag: str = field(default_factory=lambda: secrets.token_hex(4))
    cseq: int = 1
    to_tag: str | None = None

    def new_branch(self) -> str:
        """A fresh RFC 3261 branch."""
        return "z9hG4bK" + secrets.token_hex(6)

    def request(self, method: str, *, branch: str | None = None, body: bytes = b"",
                content_type: str = "application/sdp", extra_headers: list[str] | None = None,
                cseq: int | None = None, uri: str | None = None, to_tag: str | None = None) -> bytes:
        """A request from this party; in-dialog once `to_tag` is known."""
        branch = branch or self.new_branch()
        number = self.cseq if cseq is None else cseq
        tag = to_tag if to_tag is not None else self.to_tag
        lines = [
            f"{method} {uri or self.target_uri} SIP/2.0",
            f"Via: SIP/2.0/UDP {self.local_host}:{self.local_port};branch={branch};rport",
            "Max-Forwards: 70",
            f"From: \"Tester\" <sip:tester@{self.local_host}:{self.local_port}>;tag={self.from_tag}",
            f"To: <{self.target_uri}>" + (f";tag={tag}" if tag else ""),
            f"Call-ID: {self.call_id}",
            f"CSeq: {number} {method}",
            f"Contact: <sip:tester@{self.local_host}:{self.local_port}>",
        ]
        lines.extend(extra_headers or [])
        if body:
            lines.append(f"Content-Type: {content_type}")
        lines.append(f"Content-Length: {len(body)}")
        return ("\r\n".join(lines) + "\r\n\r\n").encode() + body

    def invite(self, sdp: bytes | None, branch: str | None = None, **kwargs: object) -> bytes:
        """The INVITE (CSeq 1 unless told otherwise)."""
        return self.request("INVITE", branch=branch, body=sdp or b"", **kwargs)  # type: ignore[arg-type]

    def ack(self, cseq: int = 1, branch: str | None = None) -> bytes:
        """The ACK for a 2xx (new branch) or, given the INVITE's branch, for an error response."""
        return self.request("ACK", cseq=cseq, branch=branch)

    def bye(self) -> bytes:
        """A BYE in the dialog (bumps CSeq)."""
        self.cseq += 1
        return self.request("BYE")


def response_to(request_text: bytes, status: int, reason: str, *, to_tag: str | None = None) -> bytes:
    """A minimal response to a received request (Via, From, To, Call-ID, CSeq copied)."""
    head = request_text.split(b"\r\n\r\n", 1)[0].decode()
    copied = []
    for line in head.split("\r\n")[1:]:
        name = line.split(":", 1)[0].strip().lower()
        if name in ("via", "v", "from", "f", "call-id", "i", "cseq"):
            copied.append(line)
        elif name in ("to", "t"):
            copied.append(line + (f";tag={to_tag}" if to_tag and ";tag=" not in line else ""))
    text = f"SIP/2.0 {status} {reason}\r\n" + "\r\n".join(copied) + "\r\nContent-Length: 0\r\n\r\n"
    return text.encode()
