"""The event WebSocket, `GET /v1.0/ws?token=...`: a customer's resource events, filtered by topic.

The client sends JSON text `{"type": "subscribe" | "unsubscribe", "topics": [...]}`; every topic must lie under
`customer_id:<the caller's customer id>`. Each change is acknowledged with `{"type": "subscribed" |
"unsubscribed", "topics": [<all topics now subscribed, sorted>]}`, from which on it is in force; a bad message
gets `{"type": "error", "message": ...}` and changes nothing. Events arrive as `{"type": ..., "data": ...}`.
A new socket has no topic and receives nothing until it subscribes.
"""

from __future__ import annotations

import asyncio
import json
import logging

from aiohttp import WSCloseCode, WSMsgType, web

from .errors import InvalidRequest
from .events import Subscription
from .socket_sender import SocketSender

logger = logging.getLogger(__name__)

HEARTBEAT_SECONDS = 30.0
MAX_MESSAGE_BYTES = 64 * 1024
MAX_TOPICS = 100
"""Topics one socket may hold at once."""
QUEUE_SIZE = 1000
"""Events waiting for a slow client beyond this are dropped (and counted in the disconnect log)."""

EVENT_SOCKETS = web.AppKey("event_sockets", set[web.WebSocketResponse])
"""The open event sockets of an app, closed with 1001 (going away) when the app shuts down."""


def add_event_socket(app: web.Application, path: str) -> None:
    """Serve the event socket at `path` and close open sockets on shutdown (else they hold shutdown up)."""
    app[EVENT_SOCKETS] = set()
    app.router.add_get(path, event_socket)
    app.on_shutdown.append(close_event_sockets)


async def close_event_sockets(app: web.Application) -> None:
    """Close every open event socket with 1001, so clients know to reconnect elsewhere or later."""
    sockets = list(app.get(EVENT_SOCKETS, ()))
    if sockets:
        logger.info("closing %d event sockets for shutdown", len(sockets))
    await asyncio.gather(*(ws.close(code=WSCloseCode.GOING_AWAY, message=b"server shutdown") for ws in sockets),
                         return_exceptions=True)


def topic_allowed(topic: object, customer_id: str) -> bool:
    """Whether `topic` is a string at or below `customer_id:<customer_id>` (segment-wise)."""
    own = f"customer_id:{customer_id}"
    return isinstance(topic, str) and (topic == own or topic.startswith(own + ":"))


def parse_command(text: str, customer_id: str) -> tuple[str, list[str]]:
    """The (type, topics) of a client message; InvalidRequest saying what is wrong otherwise."""
    try:
        message = json.loads(text)
    except ValueError as exc:
        raise InvalidRequest(f"message is not valid JSON: {exc}") from None
    except RecursionError:
        raise InvalidRequest("message is nested too deeply") from None
    if not isinstance(message, dict):
        raise InvalidRequest('message must be a JSON object like {"type": "subscribe", "topics": [...]}')
    kind = message.get("type")
    if kind not in ("subscribe", "unsubscribe"):
        raise InvalidRequest(f'type must be "subscribe" or "unsubscribe", not {kind!r}')
    topics = message.get("topics")
    if not isinstance(topics, list):
        raise InvalidRequest("topics must be an array of strings")
    for topic in topics:
        if not topic_allowed(topic, customer_id):
            raise InvalidRequest(f"topic {topic!r} is not one of yours: topics start with customer_id:{customer_id}")
    return kind, topics


class EventSocket:
    """One connected client: its subscription, and sends serialised so acks and events never interleave."""

    def __init__(self, ws: web.WebSocketResponse, subscription: Subscription, customer_id: str) -> None:
        self.ws = ws
        self.subscription = subscription
        self.customer_id = customer_id
        self.send = SocketSender(ws, f"event socket of customer {customer_id}").send_json

    async def forward_events(self) -> None:
        """Send the subscription's events until it closes or the connection goes."""
        try:
            async for event in self.subscription:
                # Re-checked: an unsubscribe acknowledged after the event was queued keeps it from the client.
                if self.subscription.accepts(event) and not await self.send(event.to_json()):
                    return
        except Exception:
            logger.exception("event socket of customer %s: sending events failed", self.customer_id)

    async def handle(self, text: str) -> None:
        """Apply one client message and answer it (ack or error)."""
        try:
            kind, topics = parse_command(text, self.customer_id)
            if kind == "subscribe":
                if len(set(self.subscription.topics) | set(topics)) > MAX_TOPICS:
                    raise InvalidRequest(f"at most {MAX_TOPICS} topics may be subscribed at once")
                self.subscription.subscribe_topics(topics)
            else:
                self.subscription.unsubscribe_topics(topics)
        except InvalidRequest as exc:
            logger.debug("event socket of customer %s: rejected message: %s", self.customer_id, exc)
            await self.send({"type": "error", "message": str(exc)})
            return
        logger.debug("event socket of customer %s: %s %s", self.customer_id, kind, topics)
        await self.send({"type": f"{kind}d", "topics": self.subscription.topics})

    async def receive_commands(self) -> None:
        """Read client messages until the connection closes."""
        async for message in self.ws:
            if message.type == WSMsgType.TEXT:
                await self.handle(message.data)
            elif message.type == WSMsgType.BINARY:
                await self.send({"type": "error", "message": "messages must be JSON text frames"})
            elif message.type == WSMsgType.ERROR:
                logger.info("event socket of customer %s: connection error: %s", self.customer_id,
                            self.ws.exception())
                return


async def event_socket(request: web.Request) -> web.WebSocketResponse:
    """`GET /v1.0/ws`: upgrade to a WebSocket and stream the caller's subscribed events until it closes."""
    from .rest import CUSTOMER, SERVICE  # here, not at the top: rest imports this module to route to it

    ws = web.WebSocketResponse(heartbeat=HEARTBEAT_SECONDS, max_msg_size=MAX_MESSAGE_BYTES)
    if not ws.can_prepare(request).ok:
        raise InvalidRequest("this endpoint is a WebSocket: connect with an Upgrade: websocket request")
    customer_id = request[CUSTOMER]
    await ws.prepare(request)
    sockets = request.app.get(EVENT_SOCKETS)
    if sockets is not None:
        sockets.add(ws)
    subscription = request.app[SERVICE].events.subscribe(QUEUE_SIZE, customer_id=customer_id)
    client = EventSocket(ws, subscription, customer_id)
    sender = asyncio.create_task(client.forward_events(), name=f"event-socket-{customer_id}")
    logger.info("event socket of customer %s connected from %s", customer_id, request.remote)
    try:
        await client.receive_commands()
    except Exception:
        # Nothing may escape after the upgrade: the error middleware can no longer answer with a response.
        logger.exception("event socket of customer %s failed", customer_id)
    finally:
        subscription.close()
        sender.cancel()
        await asyncio.wait([sender])
        if sockets is not None:
            sockets.discard(ws)
        if not ws.closed:
            await ws.close()
        logger.info("event socket of customer %s disconnected (code %s, %d events dropped)", customer_id,
                    ws.close_code, subscription.dropped)
    return ws
