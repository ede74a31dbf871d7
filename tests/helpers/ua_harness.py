"""A user agent core in memory and in fake time, with one caller: the harness of the UA unit tests."""

from __future__ import annotations

from sip.events import Event, InviteReceived
from sip.message import Request, Response, parse_message
from sip.scanner_guard import ScannerGuard
from sip.timers import TimerConfig
from sip.useragent import UserAgent

from .sip_messages import CallParty, pcmu_offer

CALLER = ("192.0.2.10", 5070)
TARGET = "sip:direct.0123456789ab@192.0.2.1:5060"


class Harness:
    """A UserAgent plus a caller, with fake time and everything the UA sent."""

    def __init__(self, *, scanner_guard: ScannerGuard | None = None, max_transactions: int = 20000) -> None:
        self.ua = UserAgent(host="192.0.2.1", port=5060, user_agent="confbridge-test", timers=TimerConfig(),
                            scanner_guard=scanner_guard, max_transactions=max_transactions)
        self.party = CallParty(*CALLER, TARGET)
        self.now = 0.0
        self.sent: list[tuple[float, bytes, tuple[str, int]]] = []
        self.events: list[Event] = []

    def deliver(self, data: bytes, source: tuple[str, int] = CALLER) -> None:
        self.ua.receive_datagram(data, source, self.now)
        self._collect()

    def advance(self, until: float) -> None:
        while (deadline := self.ua.get_timer()) is not None and deadline <= until:
            self.now = deadline
            self.ua.handle_timer(deadline)
            self._collect()
        self.now = until

    def _collect(self) -> None:
        for data, destination in self.ua.messages_to_send():
            self.sent.append((self.now, data, destination.address))
        self.events.extend(self.ua.events())

    def messages(self) -> list[Request | Response]:
        return [parse_message(data) for _, data, _ in self.sent]

    def responses(self) -> list[int]:
        return [m.status_code for m in self.messages() if isinstance(m, Response)]

    def take_invite(self) -> InviteReceived:
        invites = [e for e in self.events if isinstance(e, InviteReceived)]
        assert len(invites) == 1
        return invites[0]

    def establish(self, extra_headers: list[str] | None = None) -> tuple[InviteReceived, Response]:
        """A call set up and acknowledged; returns the INVITE event and our 200."""
        self.deliver(self.party.invite(pcmu_offer("192.0.2.10", 4000), extra_headers=extra_headers))
        invite = self.take_invite()
        dialog = self.ua.answer(invite.invite_id, 200, self.now, body=b"v=0\r\n")
        assert dialog is not None
        self._collect()
        final = self.messages()[-1]
        assert isinstance(final, Response) and final.status_code == 200
        self.party.to_tag = final.to_address.tag
        self.deliver(self.party.ack())
        return invite, final


