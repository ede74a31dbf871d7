"""Server settings, with the embedded defaults `confbridge serve` uses."""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path

from sip.timers import TimerConfig


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
    user_agent: str = "confbridge"
    sip_timers: TimerConfig = field(default_factory=TimerConfig)
    tick_period: float = 0.020

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
