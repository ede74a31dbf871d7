"""SIP: grammar, messages, URIs, SDP, transactions, dialogs and a user agent core (sans-IO),
plus a thin asyncio UDP edge."""

from .dialog import Dialog, EndReason
from .errors import LocalProtocolError, RemoteProtocolError, SipError, SipParseError
from .events import DialogConfirmed, DialogEnded, InviteCancelled, InviteReceived
from .message import Request, Response, make_response, parse_message
from .sdp import SessionDescription, parse_sdp
from .timers import TimerConfig
from .uri import SipUri, parse_uri
from .useragent import UserAgent

__all__ = [
    "Dialog", "DialogConfirmed", "DialogEnded", "EndReason", "InviteCancelled", "InviteReceived",
    "LocalProtocolError", "RemoteProtocolError", "Request", "Response", "SessionDescription", "SipError",
    "SipParseError", "SipUri", "TimerConfig", "UserAgent", "make_response", "parse_message", "parse_sdp",
    "parse_uri",
]
