"""LISTEN heron_events on a connection of its own and wake the dispatcher on every NOTIFY."""

from __future__ import annotations

import asyncio
from collections.abc import Callable

import psycopg
import structlog

from heron.errors import first_line
from heron.queue.backoff import reconnect_delays

CHANNEL = "heron_events"
log = structlog.get_logger(__name__)


class NotifyListener:
    """Calls `on_wake` for each notification, and once after every (re)connect.

    The call after a reconnect covers notifications sent while the connection was down.
    """

    def __init__(self, conninfo: str, on_wake: Callable[[], None]) -> None:
        self.conninfo = conninfo
        self.on_wake = on_wake
        self.connected = asyncio.Event()

    async def run(self) -> None:
        """Listen until cancelled, reconnecting with backoff when the connection drops."""
        delays = reconnect_delays()
        while True:
            try:
                conn = await psycopg.AsyncConnection.connect(self.conninfo, autocommit=True)
            except psycopg.OperationalError as error:
                delay = next(delays)
                log.warning(
                    "listener cannot connect; retrying", error=first_line(error), in_s=delay
                )
                await asyncio.sleep(delay)
                continue
            try:
                async with conn:
                    await conn.execute(f"LISTEN {CHANNEL}")
                    self.connected.set()
                    delays = reconnect_delays()
                    self.on_wake()
                    async for _ in conn.notifies():
                        self.on_wake()
            except psycopg.OperationalError as error:
                log.warning("listener connection lost; reconnecting", error=first_line(error))
            finally:
                self.connected.clear()
            await asyncio.sleep(next(delays))
