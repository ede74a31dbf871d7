"""confbridge: a SIP/RTP audio conference bridge with the VoIPBIN Conference API on top."""

from .config import ServerConfig
from .errors import ConfbridgeError, Conflict, InvalidRequest, NotFound, Unauthorized
from .events import Event, EventBus
from .models import Call, Conference, Conferencecall, Recording
from .server import Server
from .service import ConferenceService

__all__ = [
    "Call",
    "ConfbridgeError",
    "Conference",
    "ConferenceService",
    "Conferencecall",
    "Conflict",
    "Event",
    "EventBus",
    "InvalidRequest",
    "NotFound",
    "Recording",
    "Server",
    "ServerConfig",
    "Unauthorized",
]
