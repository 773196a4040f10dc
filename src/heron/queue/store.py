"""The queue's operations for the worker pool: the named SQL, run on an async psycopg pool."""

from __future__ import annotations

import select
from typing import Any

import psycopg
from psycopg.rows import dict_row
from psycopg_pool import AsyncConnectionPool

from heron.database.models import Event
from heron.queue import queries
from heron.queue.retry import RetryPolicy, truncate_error


def open_pool(
    conninfo: str, max_size: int, *, name: str = "heron-queue", timeout: float = 10.0
) -> AsyncConnectionPool[Any]:
    """An autocommit pool: every queue statement is its own transaction; a connection is
    waited for at most `timeout` seconds.

    It never hands out a connection the server has closed (a restart, a failover): each
    would fail whatever used it, and an event whose handler fails spends a retry.
    """

    async def check(conn: psycopg.AsyncConnection[Any]) -> None:
        if not _has_input(conn):
            return  # the usual case: an idle connection has nothing to say, no round trip
        try:
            await AsyncConnectionPool.check_connection(conn)
        except psycopg.Error:
            await pool.check()  # the server said goodbye to this one: drop its siblings too
            raise

    pool: AsyncConnectionPool[Any] = AsyncConnectionPool(
        conninfo,
        min_size=1,
        max_size=max_size,
        kwargs={"autocommit": True, "row_factory": dict_row},
        open=False,
        name=name,
        timeout=timeout,
        reconnect_timeout=3600.0,
        check=check,
    )
    return pool


def _has_input(conn: psycopg.AsyncConnection[Any]) -> bool:
    """Whether the server wrote to this idle connection, as it does when it closes it
    (FATAL, then end of file); one poll(2), no round trip."""
    poller = select.poll()
    poller.register(conn.fileno(), select.POLLIN)
    return bool(poller.poll(0))


class QueueStore:
    """Claim, complete, fail, renew and rescue events; every write is fenced by lease_id."""

    def __init__(self, pool: AsyncConnectionPool[Any], policy: RetryPolicy, lease_seconds: float):
        self.pool = pool
        self.policy = policy
        self.lease_seconds = lease_seconds

    async def _rows(self, name: str, params: dict[str, Any]) -> list[dict[str, Any]]:
        async with self.pool.connection() as conn:
            cursor = await conn.execute(queries.query(name), params)
            return await cursor.fetchall() if cursor.description else []

    async def complete_and_claim(
        self, done: list[Event], worker_id: str, limit: int
    ) -> tuple[set[int], list[Event]]:
        """Complete the events in `done` still held and claim up to `limit` more, in one
        transaction; returns the ids completed and the events claimed."""
        params = queries.complete_and_claim_params(done, worker_id, self.lease_seconds, limit)
        return queries.split_complete_and_claim(await self._rows("complete_and_claim", params))

    async def fail(self, event: Event, error: str, permanent: bool = False) -> bool:
        decision = self.policy.after_failure(event.retry_count, permanent=permanent)
        params = queries.decision_params(event.id, event.lease_id, decision, truncate_error(error))
        return bool(await self._rows("end_attempt", params))

    async def heartbeat(self, events: list[Event]) -> set[int]:
        """Renew the leases still held; returns their ids."""
        params = queries.held_params(events) | {"lease_seconds": self.lease_seconds}
        return {row["id"] for row in await self._rows("heartbeat", params)}

    async def release(self, events: list[Event]) -> set[int]:
        """Give held events back to the queue untouched (shutdown); returns their ids."""
        return {row["id"] for row in await self._rows("release", queries.held_params(events))}

    async def rescue_expired(self, limit: int = 100) -> int:
        """Requeue (or fail, when spent) events whose holder's lease ran out."""
        rescued = 0
        async with self.pool.connection() as conn, conn.transaction():
            cursor = await conn.execute(queries.query("expired_leases"), {"limit": limit})
            for row in await cursor.fetchall():
                decision = self.policy.after_lease_expiry(row["retry_count"])
                error = f"lease expired (held by {row['claimed_by']})"
                params = queries.decision_params(
                    row["id"], row["lease_id"], decision, error, lease_expired=True
                )
                done = await conn.execute(queries.query("end_attempt"), params)
                rescued += len(await done.fetchall())
        return rescued

    async def ping(self) -> None:
        async with self.pool.connection() as conn:
            await conn.execute("SELECT 1")
