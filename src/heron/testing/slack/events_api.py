"""Slack's Events API side: signed POSTs of event_callback bodies to the app's endpoint.

Requests carry what Slack's carry: JSON body, `X-Slack-Request-Timestamp`,
`X-Slack-Signature` (v0 HMAC-SHA256 with the signing secret) and, on retries,
`X-Slack-Retry-Num` / `X-Slack-Retry-Reason`. With `ack_timeout` set, a delivery that
is not answered 2xx in time is retried up to three times, as Slack retries.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import time
from collections.abc import Callable
from typing import Any

import aiohttp

from heron.testing.slack import events
from heron.testing.slack.delivery import Delivery, DeliveryLog, Transport
from heron.testing.slack.model import AppIdentity

MAX_RETRIES = 3
DEFAULT_TIMEOUT = 10.0  # when retries are off, still never hang forever


class EventsApiSender:
    """Posts events to `url`; runs on the fake's loop."""

    def __init__(
        self, identity: AppIdentity, log: DeliveryLog, clock: Callable[[], float] = time.time
    ) -> None:
        self.identity = identity
        self.log = log
        self.clock = clock
        self.url: str | None = None
        self.ack_timeout: float | None = None
        self._session: aiohttp.ClientSession | None = None
        self._tasks: set[asyncio.Task[None]] = set()

    async def stop(self) -> None:
        for task in list(self._tasks):
            task.cancel()
        for task in list(self._tasks):
            with contextlib.suppress(asyncio.CancelledError):
                await task
        if self._session is not None:
            await self._session.close()

    async def post(
        self,
        body: dict[str, Any],
        *,
        retry_num: int | None = None,
        retry_reason: str | None = None,
        bad_signature: bool = False,
        timestamp: int | None = None,
        seconds: float | None = None,
    ) -> tuple[int, str]:
        """One signed POST; returns the app's (status, body)."""
        if self.url is None:
            raise RuntimeError("set events_api_url on the SlackFake first")
        data = json.dumps(body).encode()
        stamp = str(int(self.clock()) if timestamp is None else timestamp)
        secret = self.identity.signing_secret + ("-wrong" if bad_signature else "")
        headers = {
            "Content-Type": "application/json",
            "User-Agent": "Slackbot 1.0 (+https://api.slack.com/robots)",
            "X-Slack-Request-Timestamp": stamp,
            "X-Slack-Signature": events.signature(secret, stamp, data),
        }
        if retry_num is not None:
            headers["X-Slack-Retry-Num"] = str(retry_num)
        if retry_reason is not None:
            headers["X-Slack-Retry-Reason"] = retry_reason
        if self._session is None:
            self._session = aiohttp.ClientSession()
        limit = aiohttp.ClientTimeout(total=seconds or DEFAULT_TIMEOUT)
        async with self._session.post(self.url, data=data, headers=headers, timeout=limit) as r:
            return r.status, await r.text()

    def deliver(
        self, payload: dict[str, Any], event_id: str, retry_attempt: int, retry_reason: str
    ) -> None:
        """Post in the background, retrying as Slack does when `ack_timeout` is set."""
        task = asyncio.get_running_loop().create_task(
            self._deliver(payload, event_id, retry_attempt, retry_reason)
        )
        self._tasks.add(task)
        task.add_done_callback(self._tasks.discard)

    async def _deliver(
        self, payload: dict[str, Any], event_id: str, attempt: int, reason: str
    ) -> None:
        while True:
            delivery = Delivery(
                event_id=event_id,
                event_type=str(payload.get("event", {}).get("type", "")),
                transport=Transport.EVENTS_API,
                retry_attempt=attempt,
                retry_reason=reason,
                payload=payload,
            )
            self.log.add(delivery)
            try:
                status, text = await self.post(
                    payload,
                    retry_num=attempt if attempt else None,
                    retry_reason=reason or None,
                    seconds=self.ack_timeout,
                )
            except TimeoutError:
                self.log.update(delivery, sent=True)
                reason = "http_timeout"
            except aiohttp.ClientError:
                reason = "connection_failed"
            else:
                ok = 200 <= status < 300
                self.log.update(delivery, sent=True, acked=ok, status=status, response=text)
                if ok:
                    return
                reason = "http_error"
            if self.ack_timeout is None or attempt >= MAX_RETRIES:
                return
            attempt += 1
