"""Weekly partitions of slack_messages exist before any row needs them.

Natively partitioned tables reject a row with no partition, and PostgreSQL cannot create
one from inside the insert, so writers ask for the weeks they are about to touch. Known
weeks are remembered per process: the common case (a message from this week) costs no
query. Under TimescaleDB (or a plain table) there is nothing to do.
"""

from __future__ import annotations

import math
from collections.abc import Iterable
from datetime import UTC, datetime, timedelta
from typing import Any

import structlog
from psycopg_pool import AsyncConnectionPool

from heron.database.named_sql import NamedQueries

log = structlog.get_logger(__name__)
query = NamedQueries("heron.slack.sql", "archive.sql")

WEEK_SECONDS = 7 * 24 * 3600
_FIRST_MONDAY = 4 * 24 * 3600  # 1970-01-05, the first Monday after the epoch
AHEAD = timedelta(days=28)
BEHIND = timedelta(days=7)
# The archive's statistics are refreshed once it has grown by 50 rows and a tenth since
# they were taken: autovacuum's own rule for a table (autovacuum_analyze_threshold and
# _scale_factor), which it never applies to a partitioned parent.
ANALYZE_ROWS = 50
ANALYZE_SHARE = 0.1


def week_start(epoch_seconds: float) -> int:
    """The Monday 00:00 UTC (epoch seconds) of the week holding this instant."""
    weeks = math.floor((epoch_seconds - _FIRST_MONDAY) / WEEK_SECONDS)
    return weeks * WEEK_SECONDS + _FIRST_MONDAY


def weeks_of(timestamps: Iterable[str]) -> set[int]:
    """The weeks a set of Slack ts fall in."""
    return {week_start(float(ts)) for ts in timestamps}


def statistics_stale(live: int, analyzed: int) -> bool:
    """Whether an archive of `live` rows, `analyzed` at its last ANALYZE (negative: never),
    has grown enough for new statistics. Only growth counts: a deleted message keeps its
    row, and a compressed chunk stops counting its rows."""
    if analyzed < 0:
        return live > 0
    return live > ANALYZE_ROWS + (1 + ANALYZE_SHARE) * analyzed


class Partitions:
    """Creates missing weekly partitions on demand and refreshes the archive's statistics;
    logs the storage mode once."""

    def __init__(self, pool: AsyncConnectionPool[Any]) -> None:
        self.pool = pool
        self.mode: str | None = None
        self._known: set[int] = set()

    async def storage_mode(self) -> str:
        if self.mode is None:
            async with self.pool.connection() as conn:
                row = await (await conn.execute(query("storage_mode"))).fetchone()
            self.mode = str(row["mode"]) if row else "plain"
            log.info("slack archive storage", mode=self.mode, **_MODE_NOTES[self.mode])
        return self.mode

    async def ensure(self, timestamps: Iterable[str]) -> int:
        """Make sure the weeks of these ts have partitions; returns how many were created."""
        missing = weeks_of(timestamps) - self._known
        if not missing or await self.storage_mode() != "partitioned":
            return 0
        created = 0
        async with self.pool.connection() as conn:
            for week in sorted(missing):
                start = datetime.fromtimestamp(week, UTC)
                params = {"from_at": start, "to_at": start}
                row = await (await conn.execute(query("ensure_partitions"), params)).fetchone()
                created += int(row["created"]) if row else 0
        self._known |= missing
        return created

    async def ensure_ahead(self, now: datetime | None = None) -> int:
        """The weeks from last week to four weeks ahead: run at startup and hourly."""
        now = now or datetime.now(UTC)
        if await self.storage_mode() != "partitioned":
            return 0
        params = {"from_at": now - BEHIND, "to_at": now + AHEAD}
        async with self.pool.connection() as conn:
            row = await (await conn.execute(query("ensure_partitions"), params)).fetchone()
        created = int(row["created"]) if row else 0
        if created:
            log.info("slack archive partitions created", count=created)
        return created

    async def analyze(self) -> bool:
        """Refresh the statistics of the whole archive (the partitioned parent, or the
        hypertable): archive search reads them to tell common words from rare ones
        (sql/search.sql). Autovacuum analyzes a plain table and each partition, never a
        partitioned parent. False when there is nothing to do, or another process is at
        it (one is enough)."""
        if await self.storage_mode() == "plain":
            return False
        async with self.pool.connection() as conn:
            locked = await (await conn.execute(query("try_lock_analyze"))).fetchone()
            if not locked or not locked["locked"]:
                return False
            try:
                # PostgreSQL 18 can leave the partitions, which autovacuum keeps, alone.
                await conn.execute(
                    "ANALYZE ONLY slack_messages"
                    if conn.info.server_version >= 180000
                    else "ANALYZE slack_messages"
                )
            finally:
                await conn.execute(query("unlock_analyze"))
        log.info("slack archive statistics refreshed")
        return True

    async def analyze_if_stale(self) -> bool:
        """`analyze` when the archive has grown enough since its statistics were taken
        (`statistics_stale`); a cheap check, run hourly."""
        if await self.storage_mode() == "plain":
            return False
        async with self.pool.connection() as conn:
            row = await (await conn.execute(query("archive_rows"))).fetchone()
        if row is None or not statistics_stale(int(row["live"]), int(row["analyzed"])):
            return False
        return await self.analyze()

    def forget(self) -> None:
        """Drop what this process believes exists (after someone dropped partitions)."""
        self._known.clear()


_MODE_NOTES: dict[str, dict[str, str]] = {
    "timescaledb": {"detail": "hypertable, 7-day chunks, compressed after 45 days"},
    "partitioned": {"detail": "weekly native partitions created ahead (TimescaleDB not available)"},
    "plain": {"detail": "one table (created before partitioning was supported)"},
}
