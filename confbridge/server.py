"""The Server: store, service, media engine, SIP user agent and REST API wired together.

    async with Server(ServerConfig(sip_port=5060)) as server:
        conference = server.create_conference(name="standup")
        print(server.direct_uri(conference))
        await server.serve_forever()
"""

from __future__ import annotations

import asyncio
import logging
import os
import secrets
import ssl
import uuid
from collections.abc import AsyncIterable, Callable
from pathlib import Path
from typing import Any

from aiohttp import web

from recorder.worker import RecorderWorker
from rtp.ports import PortAllocator
from sip.scanner_guard import ScannerGuard
from sip.transport import TLS
from sip.transport_asyncio import SipEdge
from sip.useragent import UserAgent

from .bots import DEFAULT_RATE, AudioFrame, BotParticipant, Bots
from .call_router import CallRouter
from .config import ServerConfig
from .dtmf_menu import DtmfMenu
from .events import EventBus
from .media import MediaEngine
from .media_socket import BOTS
from .models import Call, Conference, Conferencecall
from .rest import AccessLogger, build_app
from .service import ACTIVE_PARTICIPANT, ConferenceService
from .service_timer import ServiceTimer
from .store import Store
from .telephony import Telephony
from .timestamps import NIL_UUID
from .webhooks import WebhookDispatcher, WebhookTarget

logger = logging.getLogger(__name__)

SHUTDOWN_BYE_WAIT = 1.0


class Server:
    """A running conference bridge."""

    def __init__(self, config: ServerConfig | None = None) -> None:
        self.config = config or ServerConfig()
        self.events = EventBus()
        self.store: Store | None = None
        self.service: ConferenceService | None = None
        self.media: MediaEngine | None = None
        self.telephony: Telephony | None = None
        self.bots: Bots | None = None
        self.customer_id = ""
        self.token = ""
        self.webhook_secrets: dict[str, str] = {}
        """customer id -> the key its webhook deliveries are signed with (customers with a webhook or a secret)."""
        self._webhooks: WebhookDispatcher | None = None
        self._stop_webhooks: Callable[[], None] | None = None
        self._recorder: RecorderWorker | None = None
        self._sip: SipEdge | None = None
        self._http: web.AppRunner | None = None
        self._sip_port = self.config.sip_port
        self._tls_port: int | None = None
        self._http_port = self.config.http_port
        self._stopped = asyncio.Event()
        self._timer: ServiceTimer | None = None

    # -- life cycle -------------------------------------------------------------------------------

    async def start(self) -> None:
        """Open the data folder and start serving SIP, RTP and HTTP (nothing is left open on failure)."""
        try:
            await self._start()
        except BaseException:
            await self._release()
            raise

    async def _start(self) -> None:
        config = self.config
        loop = asyncio.get_running_loop()
        data_dir = Path(config.data_dir)
        recordings_dir = data_dir / "recordings"
        recordings_dir.mkdir(parents=True, exist_ok=True)
        self.store = store = Store(data_dir / "confbridge.sqlite3")
        self.customer_id = self._default_customer(store)
        self.token = self._default_token(store, data_dir)
        for token, customer_id in config.tokens.items():
            store.set_token(token, customer_id)
        self.webhook_secrets = {customer_id: store.set_webhook(customer_id, config.webhooks.get(customer_id, ""),
                                                               config.webhook_secrets.get(customer_id))
                                for customer_id in {*config.webhooks, *config.webhook_secrets}}
        if config.webhooks:
            self._webhooks = WebhookDispatcher({customer_id: WebhookTarget(url, self.webhook_secrets[customer_id])
                                                for customer_id, url in config.webhooks.items()})
            await self._webhooks.start()
            self._stop_webhooks = self.events.add_listener(self._webhooks.deliver)
        self.service = service = ConferenceService(store, self.events, recordings_dir,
                                                   recording_max_seconds=config.recording_max_duration,
                                                   health_interval=config.health_interval, clock=loop.time)
        service.recover()
        self._timer = ServiceTimer(service, loop)

        def recording_failed(recording_id: str, error: str) -> None:  # runs on the recorder thread
            loop.call_soon_threadsafe(service.recording_failed, recording_id, error)

        self._recorder = RecorderWorker(on_error=recording_failed)
        self.media = media = MediaEngine(host=config.bind, ports=PortAllocator(*config.rtp_ports),
                                         recorder=self._recorder, loop=loop, tick_period=config.tick_period,
                                         rtp_timeout=config.rtp_timeout, recording_rate=config.recording_rate,
                                         noise_gate=config.noise_gate)
        media.on_recording_full = service.recording_full
        guard = ScannerGuard(threshold=config.scanner_threshold, window=config.scanner_window,
                             block_for=config.scanner_block)
        ua = UserAgent(host=config.advertised_address, port=config.sip_port, tcp_port=config.sip_port,
                       tls_port=config.tls_port, user_agent=config.user_agent, timers=config.sip_timers,
                       scanner_guard=guard)
        self.telephony = telephony = Telephony(ua, service, media, public_address=config.advertised_address,
                                               loop=loop, ring_timeout=config.ring_timeout,
                                               credentials=config.dialout_credentials,
                                               answer_delay=config.answer_delay, srtp=config.srtp,
                                               menu=DtmfMenu(config.dtmf_menu))
        self.bots = bots = Bots(service, media)
        service.attach(CallRouter(telephony, bots, media), media)
        self._timer.arm()
        self._sip = edge = SipEdge(ua, telephony.on_event, idle_timeout=config.tcp_idle_timeout)
        self._sip_port = ua.port = await edge.listen_udp_and_tcp(config.bind, config.sip_port)
        if config.tls_port is not None and config.tls_cert is not None and config.tls_key is not None:
            context = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
            context.load_cert_chain(config.tls_cert, config.tls_key)
            self._tls_port = ua.ports[TLS] = await edge.listen_tls(config.bind, config.tls_port, context)
        telephony.edge = edge
        app = build_app(service, store, telephony)
        app[BOTS] = bots
        self._http = web.AppRunner(app, access_log=logging.getLogger("confbridge.http"), access_log_class=AccessLogger)
        await self._http.setup()
        site = web.TCPSite(self._http, config.bind, config.http_port)
        await site.start()
        self._http_port = self._http.addresses[0][1]
        logger.info("serving SIP on %s:%d (UDP, TCP)%s, HTTP on %s", config.bind, self._sip_port,
                    f" and {self._tls_port} (TLS)" if self._tls_port else "", self.http_url)

    async def stop(self) -> None:
        """Hang up every call, finish every recording, close everything."""
        if self.service is None or self.store is None:
            return
        service, telephony = self.service, self.telephony
        service.closing = True
        if self.bots is not None:
            self.bots.close("server shutdown")
        if telephony is not None:
            for active in telephony.active_calls:
                telephony.hang_up(active.call_id, "server shutdown")
            deadline = asyncio.get_running_loop().time() + SHUTDOWN_BYE_WAIT
            while telephony.active_calls and asyncio.get_running_loop().time() < deadline:
                await asyncio.sleep(0.02)
        for participant in self.store.find(Conferencecall):
            if participant.status in ACTIVE_PARTICIPANT:
                service.participant_left(participant.id, hangup_by="local", reason="server shutdown")
        pending = [service.stop_recording(None, conference.id)[1] for conference in self.store.find(Conference)
                   if conference.recording_id != NIL_UUID]
        if pending:
            await asyncio.wait_for(asyncio.gather(*pending, return_exceptions=True), timeout=10)
        await self._close_webhooks()
        await self._release()
        self._stopped.set()
        logger.info("stopped")

    async def _release(self) -> None:
        """Close whatever is open, in reverse order of opening."""
        if self._timer is not None:
            self._timer.close()
            self._timer = None
        if self._http is not None:
            await self._http.cleanup()
            self._http = None
        if self._sip is not None:
            self._sip.close()
            self._sip = None
        if self.media is not None:
            self.media.close()
            self.media = None
        if self._recorder is not None:
            self._recorder.stop()
            self._recorder = None
        await self._close_webhooks()
        if self.store is not None:
            self.store.close()
            self.store = None
        self.service = None
        self.bots = None

    async def _close_webhooks(self) -> None:
        """Stop queueing events for webhooks and send what is queued (best effort: failures are logged)."""
        if self._stop_webhooks is not None:
            self._stop_webhooks()
            self._stop_webhooks = None
        dispatcher, self._webhooks = self._webhooks, None
        if dispatcher is not None:
            try:
                await dispatcher.close()
            except Exception:
                logger.exception("closing the webhook dispatcher failed")

    async def serve_forever(self) -> None:
        """Wait until `stop()` is called."""
        await self._stopped.wait()

    async def __aenter__(self) -> Server:
        await self.start()
        return self

    async def __aexit__(self, *exc: object) -> None:
        await self.stop()

    # -- identity ---------------------------------------------------------------------------------

    @staticmethod
    def _default_customer(store: Store) -> str:
        customer_id = store.setting("default_customer_id")
        if customer_id is None:
            customer_id = str(uuid.uuid4())
            store.set_setting("default_customer_id", customer_id)
        store.add_customer(customer_id)
        return customer_id

    def _default_token(self, store: Store, data_dir: Path) -> str:
        token = self.config.token
        token_file = data_dir / "token"
        if token is None:
            if token_file.is_file():
                token = token_file.read_text().strip()
            else:
                token = secrets.token_urlsafe(24)
                token_file.write_text(token + "\n")
                os.chmod(token_file, 0o600)
        store.set_token(token, self.customer_id)
        return token

    # -- addresses and conveniences ---------------------------------------------------------------

    @property
    def sip_port(self) -> int:
        """The UDP port SIP listens on."""
        return self._sip_port

    @property
    def tls_port(self) -> int | None:
        """The TCP port SIP over TLS listens on, if enabled."""
        return self._tls_port

    @property
    def http_port(self) -> int:
        """The TCP port of the REST API."""
        return self._http_port

    @property
    def http_url(self) -> str:
        """Base URL of the REST API."""
        host = f"[{self.config.bind}]" if ":" in self.config.bind else self.config.bind
        return f"http://{host}:{self._http_port}/v1.0"

    def direct_uri(self, conference: Conference) -> str:
        """The SIP URI that dials straight into a conference."""
        host = self.config.advertised_address
        host = f"[{host}]" if ":" in host else host
        return f"sip:direct.{conference.direct_hash}@{host}:{self._sip_port}"

    def dial(self, target: str, conference_id: str, **options: Any) -> Call:
        """Call `target` (a sip:/sips: URI) for the default customer; it joins the conference when answered."""
        if self.telephony is None:
            raise RuntimeError("server is not started")
        return self.telephony.dial(self.customer_id, target=target, conference_id=conference_id, **options)

    def create_conference(self, **fields: Any) -> Conference:
        """Create a conference for the default customer (see `ConferenceService.create_conference`)."""
        if self.service is None:
            raise RuntimeError("server is not started")
        return self.service.create_conference(self.customer_id, **fields)

    async def add_bot(self, conference_id: str, audio: AsyncIterable[AudioFrame] | None = None, *,
                      rate: int = DEFAULT_RATE, name: str = "bot") -> BotParticipant:
        """A participant inside this process joins a conference: `send` it audio, `async for` what it hears; with
        `audio` it plays that at real-time pace and leaves when it ends (see `confbridge.bots`).

        NotFound for an unknown conference, Conflict when it is not progressing, InvalidRequest for a rate
        other than 8000, 16000 or 48000.
        """
        if self.bots is None:
            raise RuntimeError("server is not started")
        return await self.bots.add(conference_id, audio, rate=rate, name=name)
