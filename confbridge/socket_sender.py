"""Sending on a server WebSocket from several tasks: one frame at a time, and a closed peer is not an error."""

from __future__ import annotations

import asyncio
import logging
from typing import Any

from aiohttp import web

logger = logging.getLogger(__name__)


class SocketSender:
    """Serialises the frames sent on one WebSocket (so a reply never interleaves with a stream of frames)."""

    def __init__(self, ws: web.WebSocketResponse, label: str) -> None:
        self.ws = ws
        self.label = label
        """Who the socket is, for the log ("event socket of customer ...")."""
        self._lock = asyncio.Lock()

    async def send_json(self, payload: dict[str, Any]) -> bool:
        """Send one JSON text frame; False when the connection is gone."""
        return await self._send(self.ws.send_json, payload)

    async def send_bytes(self, data: bytes) -> bool:
        """Send one binary frame; False when the connection is gone."""
        return await self._send(self.ws.send_bytes, data)

    async def _send(self, send: Any, payload: Any) -> bool:
        if self.ws.closed:
            return False
        try:
            async with self._lock:
                await send(payload)
        except (ConnectionError, RuntimeError) as exc:
            logger.debug("%s: send failed: %s", self.label, exc)
            return False
        return True
