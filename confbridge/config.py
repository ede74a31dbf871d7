"""Server settings, with the embedded defaults `confbridge serve` uses."""

from __future__ import annotations

import uuid
from dataclasses import dataclass, field
from pathlib import Path

from rtp.codecs import MIX_RATES
from sip.digest import Credentials
from sip.timers import TimerConfig

from .dtmf_menu import DEFAULT_MENU, MenuAction, check_menu
from .negotiation import SrtpPolicy
from .service import RECORDING_MAX_SECONDS

RECORDING_RATES = MIX_RATES
"""Recordings are written at one of the rates the mixer runs at."""


@dataclass
class ServerConfig:
    """Everything a `Server` needs to know; every field has a working loopback default."""

    bind: str = "127.0.0.1"
    public_address: str | None = None
    """What goes into SDP and Contact; defaults to `bind`."""
    sip_port: int = 5060
    rtp_ports: tuple[int, int] = (20000, 20999)
    http_port: int = 8088
    data_dir: Path = field(default_factory=lambda: Path("confbridge-data"))
    token: str | None = None
    """REST token of the default customer; generated and stored in the data dir when None."""
    tokens: dict[str, str] = field(default_factory=dict)
    """More REST tokens: token -> the customer id (a UUID) it belongs to (`--token TOKEN=CUSTOMER_ID`)."""
    webhooks: dict[str, str] = field(default_factory=dict)
    """customer id -> the URL its events are POSTed to (`--webhook CUSTOMER_ID=URL`)."""
    webhook_secrets: dict[str, str] = field(default_factory=dict)
    """customer id -> the HMAC key of its webhook signatures; a customer without one gets a random one, kept in
    the database and shown by `GET /v1.0/customer`."""
    health_interval: float = 5.0
    """Seconds between health checks of each participant (three failures in a row kick it)."""
    user_agent: str = "confbridge"
    """The Server / User-Agent header value."""
    sip_timers: TimerConfig = field(default_factory=TimerConfig)
    tls_port: int | None = None
    """SIP over TLS (with `tls_cert` and `tls_key`); off when None."""
    tls_cert: Path | None = None
    tls_key: Path | None = None
    tcp_idle_timeout: float = 600.0
    """Stream connections without traffic for this long are closed."""
    scanner_threshold: int = 10
    """Requests for unknown users from one address within `scanner_window` before it is throttled (0: never)."""
    scanner_window: float = 60.0
    scanner_block: float = 300.0
    answer_delay: float = 0.0
    """Ring (180) this long before answering an incoming call; 0 answers at once."""
    ring_timeout: float = 60.0
    """How long a call we place may ring before we CANCEL it."""
    dialout_credentials: tuple[Credentials, ...] = ()
    """Digest credentials for 401/407 challenges to calls we place."""
    tick_period: float = 0.020
    srtp: SrtpPolicy = SrtpPolicy.OPTIONAL
    """Whether calls may (optional), must (required) or may not (off) use SRTP."""
    rtp_timeout: float = 30.0
    """A call whose peer should be sending but has sent no RTP or RTCP for this long is hung up."""
    dtmf_menu: dict[str, MenuAction] = field(default_factory=lambda: dict(DEFAULT_MENU))
    """Key sequences participants type to act on their own call."""
    recording_rate: int = 16000
    """Sample rate of recordings (the mix is resampled to it)."""
    recording_max_duration: float = RECORDING_MAX_SECONDS
    """Seconds of audio after which a recording ends by itself (the API's 24 h cap)."""
    noise_gate: bool = False
    """Leave participants who are not talking out of the sum, so idle microphones add no noise."""

    def __post_init__(self) -> None:
        if self.tls_port is not None and (self.tls_cert is None or self.tls_key is None):
            raise ValueError("a TLS port needs --tls-cert and --tls-key")
        if self.recording_rate not in RECORDING_RATES:
            raise ValueError(f"recording rate must be one of {RECORDING_RATES}, not {self.recording_rate}")
        if self.rtp_timeout <= 0:
            raise ValueError("the RTP timeout must be positive")
        if not 0 < self.recording_max_duration <= RECORDING_MAX_SECONDS:
            raise ValueError(f"the recording cap must be above 0 and at most {RECORDING_MAX_SECONDS:g} s")
        check_menu(self.dtmf_menu)
        if self.health_interval <= 0:
            raise ValueError("the health check interval must be positive")
        self.tokens = {token: check_customer_id(customer_id) for token, customer_id in self.tokens.items()}
        self.webhooks = {check_customer_id(customer_id): url for customer_id, url in self.webhooks.items()}
        self.webhook_secrets = {check_customer_id(customer_id): secret
                                for customer_id, secret in self.webhook_secrets.items()}
        for url in self.webhooks.values():
            if not url.startswith(("http://", "https://")):
                raise ValueError(f"a webhook URL must be http:// or https://, not {url!r}")

    @property
    def advertised_address(self) -> str:
        """The address peers should send to."""
        return self.public_address or self.bind


def parse_port_range(text: str) -> tuple[int, int]:
    """Parse `LOW-HIGH` into a port pair; raise ValueError when it is not one."""
    low_text, dash, high_text = text.partition("-")
    if not dash or not low_text.isdigit() or not high_text.isdigit():
        raise ValueError(f"expected LOW-HIGH, got {text!r}")
    low, high = int(low_text), int(high_text)
    if not 1024 <= low < high <= 65535:
        raise ValueError(f"port range {text!r} must lie within 1024-65535 with LOW < HIGH")
    return low, high


def parse_credentials(text: str) -> Credentials:
    """Parse `USER:PASSWORD` or `USER:PASSWORD@REALM` (the password may not contain '@')."""
    secret, at, realm = text.rpartition("@") if "@" in text else (text, "", "")
    user, colon, password = secret.partition(":")
    if not colon or not user:
        raise ValueError(f"expected USER:PASSWORD[@REALM], got {text!r}")
    return Credentials(user, password, realm if at else None)


def check_customer_id(text: str) -> str:
    """A customer id, which must be a UUID (it is part of event topics), in its canonical form; ValueError
    otherwise."""
    try:
        return str(uuid.UUID(text))
    except ValueError:
        raise ValueError(f"a customer id must be a UUID, not {text!r}") from None


def parse_assignment(text: str, what: str) -> tuple[str, str]:
    """Parse `KEY=VALUE` (both non-empty; the value may contain '=')."""
    key, equals, value = text.partition("=")
    if not equals or not key or not value:
        raise ValueError(f"expected {what}, got {text!r}")
    return key, value
