"""The dashboard's reads (and its one write, replay) on the run's async pool.

The queue's own named SQL is reused where it exists (counts by status, the newest events,
one event, its attempts, replay); what only the dashboard asks lives in sql/dashboard.sql.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any, LiteralString

from psycopg_pool import AsyncConnectionPool

from heron.database.models import Attempt, Event, EventStatus
from heron.database.named_sql import NamedQueries
from heron.errors import EventNotFoundError
from heron.queue import queries as queue_sql

query = NamedQueries("heron.web.dashboard.sql", "dashboard.sql")


@dataclass(frozen=True, slots=True)
class EventWithAttempts:
    """An event and its finished attempts, oldest first."""

    event: Event
    attempts: list[Attempt]


class DashboardReader:
    """Reads what the dashboard shows; every call is one short autocommit round trip or a
    few, on the pool the rest of the run uses."""

    def __init__(self, pool: AsyncConnectionPool[Any]) -> None:
        self.pool = pool

    async def _rows(
        self, sql: LiteralString, params: dict[str, Any] | None = None
    ) -> list[dict[str, Any]]:
        async with self.pool.connection() as conn:
            cursor = await conn.execute(sql, params or {})
            return await cursor.fetchall() if cursor.description else []

    async def queue_counts(self) -> dict[str, int]:
        """Events in each status, every status present."""
        counts = {status.value: 0 for status in EventStatus}
        for row in await self._rows(queue_sql.query("queue_stats")):
            counts[row["status"]] = int(row["n"])
        return counts

    async def minutes(self, minutes: int) -> list[dict[str, Any]]:
        """Per minute: enqueued, completed, retried, failed, and events that left the queue."""
        return await self._rows(query("minutes"), {"minutes": minutes})

    async def latency(self, minutes: int, sample: int) -> dict[str, Any]:
        """Percentile arrays of enqueue→completed and claim→completed, and the sample size."""
        rows = await self._rows(query("latency"), {"minutes": minutes, "sample": sample})
        return rows[0]

    async def events(self, status: str | None, limit: int) -> list[EventWithAttempts]:
        """The newest events (optionally of one status), each with its attempts."""
        rows = await self._rows(queue_sql.query("list_events"), {"status": status, "limit": limit})
        events = [Event.from_row(row) for row in rows]
        attempts: dict[int, list[Attempt]] = {event.id: [] for event in events}
        if events:
            found = await self._rows(query("attempts_of_events"), {"ids": list(attempts)})
            for row in found:
                attempts[row["event_id"]].append(Attempt.from_row(row))
        return [EventWithAttempts(event, attempts[event.id]) for event in events]

    async def event(self, event_id: int) -> EventWithAttempts:
        """One event with its attempts; EventNotFoundError when there is none."""
        rows = await self._rows(queue_sql.query("event_by_id"), {"id": event_id})
        if not rows:
            raise EventNotFoundError(f"no event with id {event_id}")
        found = await self._rows(queue_sql.query("attempts_of_event"), {"id": event_id})
        return EventWithAttempts(Event.from_row(rows[0]), [Attempt.from_row(r) for r in found])

    async def usage_per_day(self, days: int) -> list[dict[str, Any]]:
        """Agent runs per UTC day over the last `days` days, newest first."""
        return await self._rows(query("usage_per_day"), {"days": days})

    async def usage_per_user(self, days: int, limit: int) -> list[dict[str, Any]]:
        """Agent runs per user over the last `days` days, the costliest first."""
        return await self._rows(query("usage_per_user"), {"days": days, "limit": limit})

    async def mcp_servers(self) -> list[dict[str, Any]]:
        """The agent's MCP servers as a running Heron last checked them."""
        return await self._rows(query("mcp_servers"))

    async def replay(self, event_id: int) -> Event:
        """Queue a failed event again with fresh retries, as `heron events replay` does."""
        rows = await self._rows(queue_sql.query("replay"), {"id": event_id})
        if rows:
            return Event.from_row(rows[0])
        raise queue_sql.not_replayable((await self.event(event_id)).event)
