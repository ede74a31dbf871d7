"""Telephony: turns SIP dialogs into calls and conferencecalls with a media leg each.

An INVITE to `direct.<hash>` finds its conference, negotiates G.711 audio, opens an RTP port,
admits the call (conferencecall `joining`) and answers 200 with the SDP. The first RTP packet makes
the participant `joined`; a BYE either way makes it `leaved`.
"""

from __future__ import annotations

import asyncio
import logging
import re
import secrets
from dataclasses import dataclass

from rtp.codecs import CODECS
from rtp.ports import PortsExhausted
from sip.dialog import Dialog, DialogId, EndReason
from sip.events import DialogConfirmed, DialogEnded, Event, InviteCancelled, InviteReceived
from sip.fields import NameAddress
from sip.offer_answer import AudioNegotiation, CodecSpec, OfferAnswerError, build_answer, negotiate_audio
from sip.sdp import Origin, SdpParseError, SessionDescription, parse_sdp
from sip.transport_asyncio import UdpEdge
from sip.uri import SipUri
from sip.useragent import UserAgent

from .errors import ConfbridgeError
from .media import MediaEngine, MediaLeg
from .models import sip_party
from .service import ConferenceService

logger = logging.getLogger(__name__)

DIRECT_USER_RE = re.compile(r"^direct\.([0-9a-f]{12})$")
SUPPORTED_CODECS = [CodecSpec(c.name, c.clock_rate, 1, c.static_payload_type) for c in CODECS.values()]


@dataclass(eq=False)
class ActiveCall:
    """A call that has a dialog and a media leg."""

    call_id: str
    conferencecall_id: str
    conference_id: str
    dialog: Dialog
    leg: MediaLeg
    origin: Origin
    answer: SessionDescription


class Telephony:
    """The SIP side of the server: implements the service's `CallControl`."""

    def __init__(self, ua: UserAgent, service: ConferenceService, media: MediaEngine, *,
                 public_address: str, loop: asyncio.AbstractEventLoop) -> None:
        self.ua = ua
        self.service = service
        self.media = media
        self.public_address = public_address
        self.loop = loop
        self.edge: UdpEdge | None = None
        self._calls: dict[str, ActiveCall] = {}
        self._by_dialog: dict[DialogId, ActiveCall] = {}

    @property
    def active_calls(self) -> list[ActiveCall]:
        """Calls in progress."""
        return list(self._calls.values())

    # -- events from the user agent ---------------------------------------------------------------

    def on_event(self, event: Event) -> None:
        """Handle one user agent event (called by the UDP edge)."""
        if isinstance(event, InviteReceived):
            if event.dialog is None:
                self._on_new_call(event)
            else:
                self._on_reinvite(event)
        elif isinstance(event, DialogConfirmed):
            logger.debug("Call-ID %s: confirmed", event.dialog.call_id)
        elif isinstance(event, DialogEnded):
            self._on_dialog_ended(event.dialog, event.reason)
        elif isinstance(event, InviteCancelled):
            logger.info("Call-ID %s: cancelled by the caller", event.request.call_id)

    def _reject(self, event: InviteReceived, status: int, why: str) -> None:
        logger.info("Call-ID %s: %d for %s from %s:%s (%s)", event.request.call_id, status, event.request.uri,
                    event.source[0], event.source[1], why)
        self.ua.answer(event.invite_id, status, self.loop.time())

    def _on_new_call(self, event: InviteReceived) -> None:
        request = event.request
        assert isinstance(request.uri, SipUri)
        match = DIRECT_USER_RE.match((request.uri.user_unescaped or "").lower())
        conference = self.service.conference_for_direct_hash(match.group(1)) if match else None
        if conference is None:
            self._reject(event, 404, "no such conference")
            return
        negotiated = self._negotiate(event)
        if negotiated is None:
            return
        offer, negotiation = negotiated
        try:
            caller = request.from_address
            call, participant = self.service.admit_call(
                conference, source=sip_party(_address_text(caller), caller.display_name or ""),
                destination=sip_party(request.uri.address_of_record))
        except ConfbridgeError as exc:
            self._reject(event, 404, str(exc))
            return
        try:
            leg = self._open_leg(participant.id, conference.id, negotiation)
        except (PortsExhausted, OSError) as exc:
            self._reject(event, 503, f"no RTP port: {exc}")
            self.service.participant_left(participant.id, hangup_by="local", reason="no media port")
            return
        origin = Origin("confbridge", secrets.randbelow(2**31), 1, "IN",
                        "IP6" if ":" in self.public_address else "IP4", self.public_address)
        answer = build_answer(offer, negotiation, address=self.public_address, port=leg.port, origin=origin)
        dialog = self.ua.answer(event.invite_id, 200, self.loop.time(), body=answer.to_bytes())
        assert dialog is not None
        active = ActiveCall(call.id, participant.id, conference.id, dialog, leg, origin, answer)
        self._calls[call.id] = active
        self._by_dialog[dialog.id] = active
        logger.info("Call-ID %s: call %s answered into conference %s (%s, RTP port %d)", request.call_id, call.id,
                    conference.id, negotiation.codec.name, leg.port)

    def _negotiate(self, event: InviteReceived) -> tuple[SessionDescription, AudioNegotiation] | None:
        """The INVITE's SDP offer and what we accept of it; None when the INVITE has been rejected."""
        request = event.request
        if not request.body:
            self._reject(event, 488, "INVITE without an SDP offer")
            return None
        if request.content_type not in (None, "application/sdp"):
            self._reject(event, 415, f"unsupported body type {request.content_type}")
            return None
        try:
            offer = parse_sdp(request.body)
            return offer, negotiate_audio(offer, SUPPORTED_CODECS)
        except (SdpParseError, OfferAnswerError) as exc:
            self._reject(event, exc.status_code, str(exc))
            return None

    def _open_leg(self, participant_id: str, conference_id: str, negotiation: AudioNegotiation) -> MediaLeg:
        return self.media.open_leg(
            participant_id, conference_id, CODECS[negotiation.codec.name], negotiation.payload_type,
            remote=_media_address(negotiation),
            telephone_event_payload_type=negotiation.telephone_event_payload_type,
            on_started=lambda leg: self._media_started(leg))

    def _media_started(self, leg: MediaLeg) -> None:
        try:
            self.service.participant_media_started(leg.leg_id)
        except ConfbridgeError:
            logger.exception("participant %s: could not mark joined", leg.leg_id)

    def _on_reinvite(self, event: InviteReceived) -> None:
        """A re-INVITE (a session refresh, a new address): answer with our same port and codec choice."""
        assert event.dialog is not None
        active = self._by_dialog.get(event.dialog.id)
        if active is None:
            self._reject(event, 481, "dialog has no call")
            return
        if not event.request.body:
            self.ua.answer(event.invite_id, 200, self.loop.time(), body=active.answer.to_bytes())
            return
        negotiated = self._negotiate(event)
        if negotiated is None:
            return
        offer, negotiation = negotiated
        session = active.leg.session
        if negotiation.codec.name != session.codec.name or negotiation.payload_type != session.payload_type:
            self._reject(event, 488, "changing the codec mid-call is not supported yet")
            return
        if session.first_packet_at is None:
            session.remote = _media_address(negotiation)
        answer = build_answer(offer, negotiation, address=self.public_address, port=active.leg.port,
                              origin=active.origin)
        if (answer.connection, answer.media) != (active.answer.connection, active.answer.media):
            active.origin.session_version += 1  # a changed description gets a new o= version (RFC 3264 §8)
        active.answer = answer
        self.ua.answer(event.invite_id, 200, self.loop.time(), body=answer.to_bytes())

    def _on_dialog_ended(self, dialog: Dialog, reason: EndReason) -> None:
        active = self._by_dialog.pop(dialog.id, None)
        if active is None:
            return
        self._calls.pop(active.call_id, None)
        self.media.close_leg(active.leg.leg_id)
        hangup_by = "remote" if reason is EndReason.REMOTE_BYE else "local"
        logger.info("Call-ID %s: call %s ended (%s)", dialog.call_id, active.call_id, reason.value)
        self.service.participant_left(active.conferencecall_id, hangup_by=hangup_by, reason=_hangup_reason(reason))

    # -- CallControl ------------------------------------------------------------------------------

    def hang_up(self, call_id: str, reason: str) -> bool:
        """Send BYE for a call; the participant leaves once the BYE completes. False if no such call."""
        active = self._calls.get(call_id)
        if active is None:
            logger.warning("call %s: nothing to hang up", call_id)
            return False
        logger.info("Call-ID %s: hanging up call %s (%s)", active.dialog.call_id, call_id, reason)
        self.media.close_leg(active.leg.leg_id)
        self.ua.hangup(active.dialog, self.loop.time())
        if self.edge is not None:
            self.edge.transmit()
        return True


def _media_address(negotiation: AudioNegotiation) -> tuple[str, int] | None:
    """Where to send media before the peer's first packet: None for an unspecified address (0.0.0.0)."""
    if negotiation.remote_host in ("0.0.0.0", "::") or negotiation.remote_port == 0:
        return None
    return negotiation.remote_host, negotiation.remote_port


def _address_text(address: NameAddress) -> str:
    uri = address.uri
    return uri.address_of_record if isinstance(uri, SipUri) else str(uri)


def _hangup_reason(reason: EndReason) -> str:
    return {EndReason.REMOTE_BYE: "normal", EndReason.LOCAL_BYE: "normal", EndReason.NO_ACK: "noanswer"}[reason]
