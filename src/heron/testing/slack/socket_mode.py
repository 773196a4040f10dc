"""Slack's Socket Mode server side: `/link/?ticket=…` websockets, envelopes and acks.

As Slack does, it greets each connection with `hello`, sends `events_api` envelopes,
records the `{"envelope_id": …}` acks, redelivers an unacked envelope after
`ack_timeout` (retry_attempt + 1, retry_reason "timeout"), queues envelopes while no
client is connected, and can ask clients to reconnect (`disconnect` frame) or vanish
(abrupt close). Everything here runs on the fake's own event loop.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import secrets
from collections import deque
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from aiohttp import WSMsgType, web

from heron.testing.slack import events
from heron.testing.slack.delivery import Delivery, DeliveryLog, Transport
from heron.testing.slack.model import AppIdentity

MAX_RETRIES = 3  # Slack retries an unacked envelope three times


@dataclass
class _Link:
    ws: web.WebSocketResponse
    request: web.Request
    draining: bool = False


class SocketModeServer:
    """Accepts Socket Mode clients and feeds them envelopes in order."""

    def __init__(
        self, identity: AppIdentity, log: DeliveryLog, base_url: Callable[[], str]
    ) -> None:
        self.identity = identity
        self.log = log
        self.base_url = base_url
        self.ack_timeout: float | None = None
        self.disconnect_grace = 10.0  # Slack closes a refreshed link about 10 s later
        self._tickets: set[str] = set()
        self._links: list[_Link] = []
        self._pending: deque[Delivery] = deque()
        self._wake = asyncio.Event()
        self._sender: asyncio.Task[None] | None = None
        self._timers: list[asyncio.TimerHandle] = []

    # -- lifecycle (on the fake's loop) ---------------------------------------------------

    def start(self) -> None:
        self._sender = asyncio.get_running_loop().create_task(self._send_forever())

    async def stop(self) -> None:
        for timer in self._timers:
            timer.cancel()
        if self._sender is not None:
            self._sender.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._sender
        for link in list(self._links):
            await link.ws.close(code=1001, message=b"server shutdown")

    # -- what the fake asks for -----------------------------------------------------------

    def issue_url(self) -> str:
        """A fresh apps.connections.open URL (the ticket stays valid, as Slack's do a while)."""
        ticket = secrets.token_hex(8)
        self._tickets.add(ticket)
        ws_base = self.base_url().replace("http://", "ws://", 1)
        return f"{ws_base}/link/?ticket={ticket}&app_id={self.identity.app_id}"

    @property
    def connected(self) -> int:
        """Open, greeted links that are not being retired."""
        return sum(1 for link in self._links if not link.draining and not link.ws.closed)

    def send(
        self, payload: dict[str, Any], event_id: str, retry_attempt: int, retry_reason: str
    ) -> None:
        """Queue one envelope; it goes out as soon as a client is connected."""
        delivery = Delivery(
            event_id=event_id,
            event_type=str(payload.get("event", {}).get("type", "")),
            transport=Transport.SOCKET,
            retry_attempt=retry_attempt,
            retry_reason=retry_reason,
            payload=payload,
            envelope_id=events.new_envelope_id(),
        )
        self.log.add(delivery)
        self._pending.append(delivery)
        self._wake.set()

    async def disconnect(self, reason: str) -> None:
        """Send Slack's disconnect frame to every live link, then retire them."""
        loop = asyncio.get_running_loop()
        for link in [link for link in self._links if not link.draining]:
            link.draining = True
            with contextlib.suppress(ConnectionError, RuntimeError):
                await link.ws.send_json(events.disconnect_frame(reason))
            self._timers.append(loop.call_later(self.disconnect_grace, self._close, link.ws))

    @staticmethod
    def _close(ws: web.WebSocketResponse) -> None:
        asyncio.get_running_loop().create_task(ws.close())

    def drop(self) -> None:
        """Cut every link without a close frame, like a network failure."""
        for link in list(self._links):
            link.draining = True
            if link.request.transport is not None:
                link.request.transport.abort()

    # -- the websocket endpoint -----------------------------------------------------------

    async def handle(self, request: web.Request) -> web.StreamResponse:
        """One client link: `hello`, then read acks until it closes."""
        if request.query.get("ticket") not in self._tickets:
            return web.Response(status=401, text="invalid ticket")
        ws = web.WebSocketResponse(autoping=True)
        await ws.prepare(request)
        link = _Link(ws, request)
        self._links.append(link)
        try:
            await ws.send_json(events.hello_frame(self.identity, self.connected))
            self._wake.set()
            self.log.signal.notify()
            async for message in ws:
                if message.type == WSMsgType.TEXT:
                    self._on_text(message.data)
        finally:
            self._links.remove(link)
            self.log.signal.notify()
        return ws

    def _on_text(self, data: str) -> None:
        try:
            frame = json.loads(data)
        except json.JSONDecodeError:
            return
        envelope_id = frame.get("envelope_id") if isinstance(frame, dict) else None
        delivery = self.log.by_envelope(envelope_id) if isinstance(envelope_id, str) else None
        if delivery is not None and not delivery.acked:
            self.log.update(delivery, acked=True, ack=frame)

    # -- sending --------------------------------------------------------------------------

    def _live(self) -> _Link | None:
        """The newest link not being retired: after a refresh, the client listens there."""
        return next(
            (link for link in reversed(self._links) if not link.draining and not link.ws.closed),
            None,
        )

    async def _send_forever(self) -> None:
        while True:
            await self._wake.wait()
            self._wake.clear()
            while self._pending:
                link = self._live()
                if link is None:
                    break
                delivery = self._pending[0]
                frame = events.envelope(
                    delivery.payload,
                    envelope_id=delivery.envelope_id or "",
                    retry_attempt=delivery.retry_attempt,
                    retry_reason=delivery.retry_reason,
                )
                try:
                    await link.ws.send_json(frame)
                except (ConnectionError, RuntimeError):
                    link.draining = True  # broken: try the next link, or wait for one
                    continue
                self._pending.popleft()
                self.log.update(delivery, sent=True)
                self._arm_retry(delivery)

    def _arm_retry(self, delivery: Delivery) -> None:
        if self.ack_timeout is None or delivery.retry_attempt >= MAX_RETRIES:
            return
        loop = asyncio.get_running_loop()
        self._timers.append(loop.call_later(self.ack_timeout, self._retry_unacked, delivery))

    def _retry_unacked(self, delivery: Delivery) -> None:
        if delivery.acked:
            return
        self.send(delivery.payload, delivery.event_id, delivery.retry_attempt + 1, "timeout")
