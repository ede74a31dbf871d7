"""Telephony: turns SIP dialogs into calls and conferencecalls with a media leg each.

Incoming: an INVITE to `direct.<hash>` finds its conference, negotiates audio (Opus, G.722, PCMU, PCMA;
RTP/SAVP with SDES keys as the SRTP policy allows) or makes the offer itself when the INVITE has none,
opens an RTP/RTCP port pair, admits the call (`joining`) and answers 200. Outgoing: `dial()` resolves the
target, opens the ports, offers our codecs and joins the conference once the callee answers. Either way
the first RTP packet makes the participant `joined` and a BYE makes it `leaved`. Mid-call re-INVITEs and
UPDATEs change address, codec, keys and hold state. Key presses (RFC 4733 or INFO) become events and
drive the DTMF menu; a peer whose RTP stops for the inactivity timeout is hung up.
"""

from __future__ import annotations

import asyncio
import logging
import re
import secrets
import socket
from dataclasses import dataclass, field

from rtp.ports import PortsExhausted
from rtp.session import AudioStarted, DigitReceived, MediaTimeout
from rtp.srtp import CryptoAttribute
from sip.dialog import Dialog, DialogId, EndReason
from sip.digest import Credentials
from sip.events import (
    AckReceived,
    CallAnswered,
    CallFailed,
    CallProgress,
    DialogEnded,
    Event,
    InviteCancelled,
    InviteReceived,
    RequestReceived,
)
from sip.fields import NameAddress
from sip.offer_answer import OfferAnswerError, build_answer, build_offer
from sip.outgoing import OutgoingCall
from sip.sdp import Origin, SdpParseError, SessionDescription, parse_sdp
from sip.transport import TCP, TLS, UDP, Peer
from sip.transport_asyncio import SipEdge
from sip.uri import SipUri, parse_uri
from sip.useragent import UserAgent

from .dtmf_menu import DEFAULT_MENU, DtmfMenu, MenuAction
from .errors import ConfbridgeError, InvalidRequest
from .media import LegEvent, MediaEngine, MediaLeg
from .mixing import TalkingChanged
from .models import Call, Conference, ConferenceStatus, sip_party
from .negotiation import (
    SUPPORTED_CODECS,
    NegotiatedStream,
    SrtpPolicy,
    answer_offer,
    offer_crypto,
    placeholder_params,
    read_answer,
)
from .service import ConferenceService

logger = logging.getLogger(__name__)

DIRECT_USER_RE = re.compile(r"^direct\.([0-9a-f]{12})$")
DTMF_RELAY_RE = re.compile(r"^\s*signal\s*=\s*([0-9A-Da-d*#])\s*$", re.IGNORECASE | re.MULTILINE)
DTMF_DURATION_RE = re.compile(r"^\s*duration\s*=\s*(\d+)\s*$", re.IGNORECASE | re.MULTILINE)
FAILURE_REASONS = {486: "busy", 600: "busy", 603: "busy", 408: "noanswer", 480: "noanswer", 487: "cancel"}


@dataclass(eq=False)
class ActiveCall:
    """A call with a media leg: ringing (outgoing, no dialog yet) or in a dialog."""

    call_id: str
    conference_id: str
    leg: MediaLeg
    origin: Origin
    conferencecall_id: str = ""
    dialog: Dialog | None = None
    outgoing: OutgoingCall | None = None
    answer: SessionDescription | None = None
    """Our last session description (answer or offer)."""
    remote_version: int | None = None
    """The o= version of the peer's last description, to tell a changed offer from a repeated one."""
    awaiting_answer: bool = False
    """We offered in a 2xx (the INVITE had no SDP) and the answer comes in the ACK."""
    ring_timer: asyncio.TimerHandle | None = field(default=None, repr=False)
    ring_timed_out: bool = False
    signalling_host: str | None = None
    """Where the peer's signalling comes from: its media is expected from there too."""
    stream: NegotiatedStream | None = None
    """The agreed audio stream (None until an answer is in)."""
    our_crypto: CryptoAttribute | None = None
    """The SDES key of our own offer (when the policy requires SRTP)."""
    end_reason: str | None = None
    """Why we ended the call, when it was not the usual (e.g. the RTP timeout)."""
    final_media: dict[str, object] | None = None


class Telephony:
    """The SIP side of the server: places, answers and ends calls (the service reaches it through
    `call_router.CallRouter`)."""

    def __init__(self, ua: UserAgent, service: ConferenceService, media: MediaEngine, *,
                 public_address: str, loop: asyncio.AbstractEventLoop, ring_timeout: float = 60.0,
                 credentials: tuple[Credentials, ...] = (), answer_delay: float = 0.0,
                 srtp: SrtpPolicy = SrtpPolicy.OPTIONAL, menu: DtmfMenu | None = None) -> None:
        self.ua = ua
        self.srtp = srtp
        self.menu = menu if menu is not None else DtmfMenu(DEFAULT_MENU)
        self.service = service
        self.media = media
        self.public_address = public_address
        self.loop = loop
        self.ring_timeout = ring_timeout
        self.credentials = credentials
        self.answer_delay = answer_delay
        self.edge: SipEdge | None = None
        self._ringing: dict[str, asyncio.TimerHandle] = {}
        self._calls: dict[str, ActiveCall] = {}
        self._by_dialog: dict[DialogId, ActiveCall] = {}
        self._by_outgoing: dict[OutgoingCall, ActiveCall] = {}

    @property
    def active_calls(self) -> list[ActiveCall]:
        """Calls in progress (ringing or established)."""
        return list(self._calls.values())

    def _transmit(self) -> None:
        if self.edge is not None:
            self.edge.transmit()

    # -- events from the user agent ---------------------------------------------------------------

    def on_event(self, event: Event) -> None:
        """Handle one user agent event (called by the SIP edge)."""
        if isinstance(event, InviteReceived):
            if event.dialog is None:
                self._on_new_call(event)
            else:
                self._on_reoffer(event.invite_id, event.request.body, event.dialog, event.source.host)
        elif isinstance(event, RequestReceived):
            self._on_in_dialog_request(event)
        elif isinstance(event, AckReceived):
            self._on_ack(event)
        elif isinstance(event, DialogEnded):
            self._on_dialog_ended(event.dialog, event.reason)
        elif isinstance(event, InviteCancelled):
            logger.info("Call-ID %s: cancelled by the caller", event.request.call_id)
            ringing = self._ringing.pop(event.invite_id, None)
            if ringing is not None:
                ringing.cancel()
        elif isinstance(event, CallProgress):
            self._on_progress(event)
        elif isinstance(event, CallAnswered):
            self._on_answered(event)
        elif isinstance(event, CallFailed):
            self._on_failed(event)

    def _reject(self, request_id: str, status: int, why: str, call_id: str) -> None:
        """Answer with an error; a 488 says why in a Warning header (RFC 3261 §20.43)."""
        logger.info("Call-ID %s: answering %d (%s)", call_id, status, why)
        headers = None
        if status == 488:
            text = why.replace('"', "'").replace("\\", "/")
            headers = [("Warning", f'399 {self.public_address} "{text}"')]
        self.ua.answer(request_id, status, self.loop.time(), reason=None, headers=headers)

    # -- incoming calls ---------------------------------------------------------------------------

    def _on_new_call(self, event: InviteReceived) -> None:
        request = event.request
        assert isinstance(request.uri, SipUri)
        match = DIRECT_USER_RE.match((request.uri.user_unescaped or "").lower())
        conference = self.service.conference_for_direct_hash(match.group(1)) if match else None
        if conference is None:
            logger.info("Call-ID %s: 404 for %s from %s", request.call_id, request.uri, event.source)
            self.ua.answer(event.invite_id, 404, self.loop.time())
            return
        offer = stream = None
        if request.body:
            negotiated = self._negotiate(event.invite_id, request.body, request.call_id, event.source.host, None)
            if negotiated is None:
                return
            offer, stream = negotiated
        if self.answer_delay > 0:
            self.ua.answer(event.invite_id, 180, self.loop.time())
            self._ringing[event.invite_id] = self.loop.call_later(
                self.answer_delay, self._answer_after_ringing, event, conference.id, offer, stream)
            return
        self._answer_new_call(event, conference, offer, stream)

    def _answer_after_ringing(self, event: InviteReceived, conference_id: str, offer: SessionDescription | None,
                              stream: NegotiatedStream | None) -> None:
        self._ringing.pop(event.invite_id, None)
        if self.ua.pending_request(event.invite_id) is None:
            return
        conference = self.service.get_conference(None, conference_id)
        if conference.status is not ConferenceStatus.PROGRESSING:
            self._reject(event.invite_id, 404, "conference ended while ringing", event.request.call_id)
        else:
            self._answer_new_call(event, conference, offer, stream)
        self._transmit()

    def _answer_new_call(self, event: InviteReceived, conference: Conference, offer: SessionDescription | None,
                         stream: NegotiatedStream | None) -> None:
        request = event.request
        assert isinstance(request.uri, SipUri)
        try:
            caller = request.from_address
            call, participant = self.service.admit_call(
                conference, source=sip_party(_address_text(caller), caller.display_name or ""),
                destination=sip_party(request.uri.address_of_record))
        except ConfbridgeError as exc:
            self._reject(event.invite_id, exc.sip_status, str(exc), request.call_id)
            return
        try:
            leg = self._open_leg(call.id, conference.id, stream)
        except (PortsExhausted, OSError) as exc:
            self._reject(event.invite_id, 503, f"no RTP port: {exc}", request.call_id)
            self.service.participant_left(participant.id, hangup_by="local", reason="no media port")
            return
        active = ActiveCall(call.id, conference.id, leg, self._new_origin(), conferencecall_id=participant.id,
                            signalling_host=event.source.host, stream=stream)
        if offer is not None and stream is not None:
            active.answer = self._answer_sdp(offer, stream, active)
            active.remote_version = offer.origin.session_version
        else:
            active.answer = self._our_offer(active)
            active.awaiting_answer = True
        dialog = self.ua.answer(event.invite_id, 200, self.loop.time(), body=active.answer.to_bytes())
        assert dialog is not None
        active.dialog = dialog
        self._calls[call.id] = active
        self._by_dialog[dialog.id] = active
        logger.info("Call-ID %s: call %s answered into conference %s (%s, RTP port %d)", request.call_id, call.id,
                    conference.id, _describe(stream) if stream else "offer in 200", leg.port)

    def _negotiate(self, request_id: str, body: bytes, call_id: str, signalling_host: str,
                   previous: NegotiatedStream | None) -> tuple[SessionDescription, NegotiatedStream] | None:
        """Parse an SDP offer and agree what we accept of it; None when the request has been rejected."""
        try:
            offer = parse_sdp(body)
            return offer, answer_offer(offer, self.srtp, signalling_host=signalling_host, previous=previous)
        except (SdpParseError, OfferAnswerError) as exc:
            self._reject(request_id, exc.status_code, str(exc), call_id)
            return None

    def _answer_sdp(self, offer: SessionDescription, stream: NegotiatedStream,
                    active: ActiveCall) -> SessionDescription:
        """Our answer under the call's own o= line, with our SDES key for an RTP/SAVP stream."""
        crypto = str(stream.local_crypto) if stream.local_crypto is not None else None
        return build_answer(offer, stream.negotiation, address=self.public_address, port=active.leg.port,
                            origin=active.origin, crypto=crypto)

    def _open_leg(self, call_id: str, conference_id: str, stream: NegotiatedStream | None) -> MediaLeg:
        leg = self.media.open_leg(call_id, conference_id, stream.params if stream else placeholder_params(),
                                  on_event=self._media_event)
        if stream is not None:
            self._set_directions(leg, stream, offered_by_peer=True)
        else:
            self.media.configure_leg(leg.leg_id, sending=False, mixing=False)  # nothing agreed yet
        return leg

    def _apply(self, active: ActiveCall, stream: NegotiatedStream, *, offered_by_peer: bool) -> None:
        """Put a negotiated stream into effect: codec, keys, where to send, and hold state."""
        active.stream = stream
        self.media.update_leg(active.call_id, stream.params)
        self._set_directions(active.leg, stream, offered_by_peer=offered_by_peer)

    def _set_directions(self, leg: MediaLeg, stream: NegotiatedStream, *, offered_by_peer: bool) -> None:
        direction = stream.negotiation.remote_direction
        if offered_by_peer:
            # Holding us (sendonly/inactive): their music on hold stays out of the mix, and they hear nothing.
            self.media.configure_leg(leg.leg_id, mixing=direction == "sendrecv",
                                     sending=direction in ("sendrecv", "recvonly"))
        else:
            self.media.configure_leg(leg.leg_id, mixing=direction in ("sendrecv", "sendonly"),
                                     sending=direction in ("sendrecv", "recvonly"))

    def _our_offer(self, active: ActiveCall) -> SessionDescription:
        """Our offer for a call, under the call's own o= line (RTP/SAVP with a fresh key when SRTP is required)."""
        if active.our_crypto is None:
            active.our_crypto = offer_crypto(self.srtp)
        crypto = str(active.our_crypto) if active.our_crypto is not None else None
        return build_offer(address=self.public_address, port=active.leg.port, origin=active.origin,
                           codecs=SUPPORTED_CODECS, crypto=crypto)

    def _new_origin(self) -> Origin:
        return Origin("confbridge", secrets.randbelow(2**31), 1, "IN",
                      "IP6" if ":" in self.public_address else "IP4", self.public_address)

    # -- media events -----------------------------------------------------------------------------

    def _media_event(self, leg: MediaLeg, event: LegEvent) -> None:
        if isinstance(event, AudioStarted):
            self._media_started(leg)
        elif isinstance(event, DigitReceived):
            self._digit(leg.leg_id, event.digit.digit, event.digit.duration_ms, "rfc4733")
        elif isinstance(event, TalkingChanged):
            active = self._calls.get(leg.leg_id)
            if active is not None and active.conferencecall_id:
                self.service.talking_changed(active.conferencecall_id, event.talking)
        elif isinstance(event, MediaTimeout):
            active = self._calls.get(leg.leg_id)
            if active is not None and active.dialog is not None:
                logger.info("Call-ID %s: no RTP for %.0f s; hanging up", active.dialog.call_id, event.idle)
                active.end_reason = "timeout"
                self.hang_up(leg.leg_id, "rtp timeout")

    def _media_started(self, leg: MediaLeg) -> None:
        active = self._calls.get(leg.leg_id)
        if active is None or not active.conferencecall_id:
            return
        try:
            self.service.participant_media_started(active.conferencecall_id)
        except ConfbridgeError:
            logger.exception("call %s: could not mark its participant joined", leg.leg_id)

    def _digit(self, call_id: str, digit: str, duration_ms: int, method: str) -> None:
        """A key press: an event for the API, then the DTMF menu."""
        try:
            self.service.dtmf_received(call_id, digit, duration_ms, method)
            action = self.menu.press(call_id, digit, self.loop.time())
            if action is MenuAction.TOGGLE_MUTE:
                self.service.toggle_self_mute(call_id)
            elif action is MenuAction.MUTE:
                self.service.set_mute(None, call_id, _with_in(self.service.get_call(None, call_id).mute_direction))
            elif action is MenuAction.UNMUTE:
                self.service.set_mute(None, call_id,
                                      _without_in(self.service.get_call(None, call_id).mute_direction))
            elif action is MenuAction.LEAVE:
                self.hang_up(call_id, "left by DTMF")
        except ConfbridgeError:
            logger.exception("call %s: DTMF %s could not be handled", call_id, digit)

    # -- mid-call changes -------------------------------------------------------------------------

    def _on_reoffer(self, request_id: str, body: bytes, dialog: Dialog, source_host: str) -> None:
        """A re-INVITE or UPDATE: a repeated offer keeps our answer; a new one is negotiated again."""
        active = self._by_dialog.get(dialog.id)
        if active is None or active.answer is None:
            self._reject(request_id, 481, "dialog has no call", dialog.call_id)
            return
        if not body:
            # No offer: ours goes in the 2xx, the peer answers in the ACK.
            active.answer = self._version_bumped(active, self._our_offer(active))
            active.awaiting_answer = True
            self.ua.answer(request_id, 200, self.loop.time(), body=active.answer.to_bytes())
            return
        negotiated = self._negotiate(request_id, body, dialog.call_id, source_host, active.stream)
        if negotiated is None:
            return
        offer, stream = negotiated
        if offer.origin.session_version == active.remote_version and active.answer is not None:
            self.ua.answer(request_id, 200, self.loop.time(), body=active.answer.to_bytes())
            return
        active.signalling_host = source_host
        self._apply(active, stream, offered_by_peer=True)
        active.remote_version = offer.origin.session_version
        active.answer = self._version_bumped(active, self._answer_sdp(offer, stream, active))
        logger.info("Call-ID %s: session changed: %s, peer %s", dialog.call_id, _describe(stream),
                    stream.negotiation.remote_direction)
        self.ua.answer(request_id, 200, self.loop.time(), body=active.answer.to_bytes())

    def _version_bumped(self, active: ActiveCall, description: SessionDescription) -> SessionDescription:
        """Our o= line stays the call's own; its version moves only when the description changes (RFC 3264 §8)."""
        previous = active.answer
        description.origin = active.origin
        if previous is not None and (previous.connection, previous.media) != (description.connection,
                                                                              description.media):
            active.origin.session_version += 1
        return description

    def _read_answer(self, active: ActiveCall, body: bytes) -> NegotiatedStream:
        """The peer's answer to our offer (SdpParseError or OfferAnswerError when it is unusable)."""
        answer = parse_sdp(body)
        stream = read_answer(answer, self.srtp, our_crypto=active.our_crypto,
                             signalling_host=active.signalling_host)
        active.remote_version = answer.origin.session_version
        return stream

    def _on_ack(self, event: AckReceived) -> None:
        active = self._by_dialog.get(event.dialog.id)
        if active is None or not active.awaiting_answer:
            return
        active.awaiting_answer = False
        try:
            stream = self._read_answer(active, event.ack.body)
        except (SdpParseError, OfferAnswerError) as exc:
            logger.info("Call-ID %s: ACK without a usable answer (%s); hanging up", event.dialog.call_id, exc)
            self.hang_up(active.call_id, "no usable answer")
            return
        self._apply(active, stream, offered_by_peer=False)

    def _on_in_dialog_request(self, event: RequestReceived) -> None:
        if event.request.method == "UPDATE":
            self._on_reoffer(event.request_id, event.request.body, event.dialog, event.source.host)
            return
        active = self._by_dialog.get(event.dialog.id)
        digit, duration = _dtmf_of(event.request.body.decode("utf-8", "replace"), event.request.content_type)
        if active is None or digit is None:
            self.ua.answer(event.request_id, 400 if active else 481, self.loop.time(),
                           reason="Bad DTMF body" if active else None)
            return
        self.ua.answer(event.request_id, 200, self.loop.time())
        self._digit(active.call_id, digit, duration, "info")

    # -- outgoing calls ---------------------------------------------------------------------------

    @staticmethod
    def parse_target(target: str) -> SipUri:
        """A destination as a sip: or sips: URI; InvalidRequest when it is not one."""
        try:
            uri = parse_uri(target)
        except ValueError:
            uri = None
        if not isinstance(uri, SipUri):
            raise InvalidRequest(f"destination target {target!r} is not a SIP URI")
        return uri

    def dial(self, customer_id: str, *, target: str, conference_id: str, source: dict[str, str] | None = None,
             credentials: tuple[Credentials, ...] | None = None) -> Call:
        """Place a call to `target` (a sip: or sips: URI) that joins `conference_id` once answered."""
        uri = self.parse_target(target)
        from_user = "confbridge"
        if source and source.get("target"):
            source_uri = parse_uri(source["target"]) if ":" in source["target"] else None
            from_user = source_uri.user if isinstance(source_uri, SipUri) and source_uri.user else source["target"]
        call = self.service.create_outgoing_call(
            customer_id, source=sip_party(source.get("target", "") if source else f"sip:{from_user}@"
                                          f"{self.public_address}", (source or {}).get("target_name", "")),
            destination=sip_party(uri.address_of_record), conference_id=conference_id)
        task = self.loop.create_task(self._place(call, uri, from_user, credentials or self.credentials))
        task.add_done_callback(_log_task_failure)
        return call

    async def _place(self, call: Call, target: SipUri, from_user: str, credentials: tuple[Credentials, ...]) -> None:
        try:
            destination = await self._resolve(target)
        except OSError as exc:
            logger.info("call %s: cannot resolve %s: %s", call.id, target.host, exc)
            self.service.call_failed(call.id, hangup_by="local", reason="failed")
            return
        try:
            leg = self._open_leg(call.id, call.conference_id, None)
        except (PortsExhausted, OSError) as exc:
            logger.warning("call %s: no RTP port: %s", call.id, exc)
            self.service.call_failed(call.id, hangup_by="local", reason="failed")
            return
        if self.service.get_call(None, call.id).status.value not in ("dialing", "canceling"):
            self.media.close_leg(call.id)
            return
        active = ActiveCall(call.id, call.conference_id, leg, self._new_origin(), signalling_host=destination.host)
        active.answer = self._our_offer(active)
        outgoing = self.ua.invite(target, destination, self.loop.time(), offer=active.answer.to_bytes(),
                                  from_user=from_user, credentials=credentials)
        active.outgoing = outgoing
        self._calls[call.id] = active
        self._by_outgoing[outgoing] = active
        active.ring_timer = self.loop.call_later(self.ring_timeout, self._ring_timeout, call.id)
        if self.service.get_call(None, call.id).status.value == "canceling":
            self.ua.cancel(outgoing, self.loop.time())
        self._transmit()

    async def _resolve(self, uri: SipUri) -> Peer:
        transport = {"tcp": TCP, "tls": TLS, "udp": UDP}.get(uri.transport or "", TLS if uri.secure else UDP)
        host, port = uri.host_and_port()
        infos = await self.loop.getaddrinfo(host, port, type=socket.SOCK_DGRAM)
        family = socket.AF_INET6 if ":" in self.public_address else socket.AF_INET
        chosen = next((info for info in infos if info[0] == family), infos[0])
        return Peer(transport, (str(chosen[4][0]), int(chosen[4][1])))

    def _ring_timeout(self, call_id: str) -> None:
        active = self._calls.get(call_id)
        if active is not None and active.outgoing is not None and not active.outgoing.done:
            logger.info("call %s: no answer after %.0f s; cancelling", call_id, self.ring_timeout)
            active.ring_timed_out = True
            self.ua.cancel(active.outgoing, self.loop.time())
            self._transmit()

    def _on_progress(self, event: CallProgress) -> None:
        active = self._by_outgoing.get(event.call)
        if active is not None and 180 <= event.response.status_code < 190:
            self.service.call_ringing(active.call_id)

    def _on_answered(self, event: CallAnswered) -> None:
        active = self._by_outgoing.pop(event.call, None)
        if active is None:
            self.ua.hangup(event.dialog, self.loop.time())
            return
        if active.ring_timer is not None:
            active.ring_timer.cancel()
        active.dialog = event.dialog
        self._by_dialog[event.dialog.id] = active
        try:
            stream = self._read_answer(active, event.response.body)
        except (SdpParseError, OfferAnswerError) as exc:
            logger.info("call %s: answer has no usable SDP (%s); hanging up", active.call_id, exc)
            self.ua.hangup(event.dialog, self.loop.time())
            return
        self._apply(active, stream, offered_by_peer=False)
        participant = self.service.call_answered(active.call_id)
        if participant is None:
            self.ua.hangup(event.dialog, self.loop.time())
            return
        active.conferencecall_id = participant.id
        if active.leg.session.first_packet_at is not None:
            self._media_started(active.leg)
        logger.info("call %s: answered (%s), joining conference %s", active.call_id, _describe(stream),
                    active.conference_id)

    def _on_failed(self, event: CallFailed) -> None:
        active = self._by_outgoing.pop(event.call, None)
        if active is None:
            return
        if active.ring_timer is not None:
            active.ring_timer.cancel()
        self._calls.pop(active.call_id, None)
        self.media.close_leg(active.call_id)
        reason = "timeout" if active.ring_timed_out else FAILURE_REASONS.get(event.status_code, "failed")
        hangup_by = "local" if event.status_code == 487 or active.ring_timed_out else "remote"
        self.service.call_failed(active.call_id, hangup_by=hangup_by, reason=reason)

    # -- the end of a call ------------------------------------------------------------------------

    def _on_dialog_ended(self, dialog: Dialog, reason: EndReason) -> None:
        active = self._by_dialog.pop(dialog.id, None)
        if active is None:
            return
        self._calls.pop(active.call_id, None)
        self._close_media(active)
        self.menu.forget(active.call_id)
        hangup_by = "remote" if reason is EndReason.REMOTE_BYE else "local"
        why = active.end_reason or _hangup_reason(reason)
        logger.info("Call-ID %s: call %s ended (%s)", dialog.call_id, active.call_id, active.end_reason or reason.value)
        if active.conferencecall_id:
            self.service.participant_left(active.conferencecall_id, hangup_by=hangup_by, reason=why,
                                          media=active.final_media)
        else:
            self.service.call_failed(active.call_id, hangup_by=hangup_by, reason=why)

    def _close_media(self, active: ActiveCall) -> None:
        """Close the call's media leg, keeping its final figures for the participant."""
        figures = self.media.close_leg(active.call_id)
        if figures is not None:
            active.final_media = figures

    # -- ending calls ------------------------------------------------------------------------------

    def hang_up(self, call_id: str, reason: str) -> bool:
        """Send BYE for a call; the participant leaves once the BYE completes. False if no such call."""
        active = self._calls.get(call_id)
        if active is None or active.dialog is None:
            if active is not None and active.outgoing is not None:
                return self.cancel(call_id)
            logger.warning("call %s: nothing to hang up", call_id)
            return False
        logger.info("Call-ID %s: hanging up call %s (%s)", active.dialog.call_id, call_id, reason)
        self._close_media(active)
        self.ua.hangup(active.dialog, self.loop.time())
        self._transmit()
        return True

    def cancel(self, call_id: str) -> bool:
        """Stop ringing a call we placed (CANCEL); False when it is not ringing."""
        active = self._calls.get(call_id)
        if active is None or active.outgoing is None or active.outgoing.done:
            return False
        self.ua.cancel(active.outgoing, self.loop.time())
        self._transmit()
        return True


def _describe(stream: NegotiatedStream) -> str:
    """The agreed stream in a few words for the log: codec, payload type, SRTP."""
    srtp = f", SRTP {stream.local_crypto.suite}" if stream.local_crypto is not None else ""
    return f"{stream.codec}/{stream.negotiation.payload_type}{srtp}"


def _with_in(direction: str) -> str:
    return {"": "in", "out": "both"}.get(direction, direction)


def _without_in(direction: str) -> str:
    return {"in": "", "both": "out"}.get(direction, direction)


def _address_text(address: NameAddress) -> str:
    uri = address.uri
    return uri.address_of_record if isinstance(uri, SipUri) else str(uri)


def _dtmf_of(body: str, content_type: str | None) -> tuple[str | None, int]:
    """The digit and duration (ms) of an INFO body: application/dtmf-relay or application/dtmf."""
    if content_type == "application/dtmf":
        digit = body.strip()
        return (digit.upper() if len(digit) == 1 and digit in "0123456789*#ABCDabcd" else None), 250
    signal = DTMF_RELAY_RE.search(body)
    duration = DTMF_DURATION_RE.search(body)
    return (signal.group(1).upper() if signal else None), int(duration.group(1)) if duration else 250


def _hangup_reason(reason: EndReason) -> str:
    return {EndReason.REMOTE_BYE: "normal", EndReason.LOCAL_BYE: "normal", EndReason.NO_ACK: "noanswer",
            EndReason.SESSION_EXPIRED: "timeout", EndReason.TRANSPORT_ERROR: "failed"}[reason]


def _log_task_failure(task: asyncio.Task[None]) -> None:
    if not task.cancelled() and task.exception() is not None:
        logger.error("placing a call failed", exc_info=task.exception())
