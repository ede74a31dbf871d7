"""SIP: grammar, messages, URIs, SDP, transactions, dialogs and a user agent core (sans-IO),
plus a thin asyncio edge for UDP, TCP and TLS."""

from .dialog import Dialog, EndReason
from .digest import Credentials
from .errors import LocalProtocolError, RemoteProtocolError, SipError, SipParseError
from .events import (
    AckReceived,
    CallAnswered,
    CallFailed,
    CallProgress,
    DialogEnded,
    InviteCancelled,
    InviteReceived,
    RequestReceived,
)
from .message import MessageLimits, Request, Response, make_response, parse_message
from .outgoing import OutgoingCall
from .sdp import SessionDescription, parse_sdp
from .timers import TimerConfig
from .transport import TCP, TLS, UDP, Peer
from .uri import SipUri, parse_uri
from .useragent import UserAgent

__all__ = [
    "TCP", "TLS", "UDP", "AckReceived", "CallAnswered", "CallFailed", "CallProgress", "Credentials", "Dialog",
    "DialogEnded", "EndReason", "InviteCancelled", "InviteReceived", "LocalProtocolError", "MessageLimits",
    "OutgoingCall", "Peer", "RemoteProtocolError", "Request", "RequestReceived", "Response", "SessionDescription",
    "SipError", "SipParseError", "SipUri", "TimerConfig", "UserAgent", "make_response", "parse_message",
    "parse_sdp", "parse_uri",
]
