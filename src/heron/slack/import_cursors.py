"""slack_import_cursors: where a Web API backfill stands, one row per history and thread.

A row's cursor is the next page to fetch (NULL: from the start); `done` means there is
none. Threads found on a history page are added with that page's cursor in one
transaction, so a restart never forgets a thread it had seen.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any

from psycopg_pool import AsyncConnectionPool

from heron.database.named_sql import NamedQueries

query = NamedQueries("heron.slack.sql", "backfill.sql")


class CursorStore:
    """slack_import_cursors: one row per history and per thread."""

    def __init__(self, pool: AsyncConnectionPool[Any]) -> None:
        self.pool = pool

    async def _rows(self, name: str, params: Mapping[str, Any]) -> list[dict[str, Any]]:
        async with self.pool.connection() as conn:
            cursor = await conn.execute(query(name), params)
            return await cursor.fetchall() if cursor.description else []

    async def start(self, channel_ids: Sequence[str]) -> dict[str, tuple[str | None, bool]]:
        """Rows for histories never started; returns every history's (cursor, done)."""
        params = {"channel_ids": list(channel_ids)}
        await self._rows("start_history", params)
        rows = await self._rows("history_cursors", params)
        return {r["channel_id"]: (r["cursor"], bool(r["done"])) for r in rows}

    async def pending_threads(
        self, channel_ids: Sequence[str]
    ) -> list[tuple[str, str, str | None]]:
        """(channel_id, thread_ts, cursor) of every thread not done yet."""
        rows = await self._rows("pending_replies", {"channel_ids": list(channel_ids)})
        return [(r["channel_id"], r["thread_ts"], r["cursor"]) for r in rows]

    async def advance(
        self,
        channel_id: str,
        scope: str,
        cursor: str | None,
        messages: int,
        threads: Sequence[str] = (),
    ) -> None:
        """Store the next page's cursor (done when there is none) with the threads found."""
        params = {
            "channel_id": channel_id,
            "scope": scope,
            "cursor": cursor,
            "done": cursor is None,
            "messages": messages,
        }
        async with self.pool.connection() as conn, conn.transaction():
            if threads:
                found = {"channel_id": channel_id, "thread_ts": list(threads)}
                await conn.execute(query("add_threads"), found)
            await conn.execute(query("advance"), params)
