"""The benchmark's own database: created fresh on the configured server, both schemas in it.

Both systems run against the same database on the same server, one after the other, each
run starting from empty tables that were vacuumed, analysed and checkpointed, so that
neither inherits the other's dead rows or dirty buffers.
"""

from __future__ import annotations

import asyncio
from contextlib import suppress
from dataclasses import dataclass
from typing import Any

import psycopg
from psycopg import sql
from sqlalchemy.engine import URL

from heron.database.connection import DatabaseConnection
from heron.database.url import psycopg_conninfo
from heron.errors import BenchmarkError, first_line

BENCH_DATABASE = "heron_bench"
HERON_TABLES = ("events", "event_attempts")
PGQUEUER_TABLES = ("pgqueuer", "pgqueuer_log", "pgqueuer_statistics")


@dataclass(frozen=True, slots=True)
class BenchDatabase:
    """The dedicated database, as a SQLAlchemy URL and as a libpq URL."""

    url: URL

    @property
    def conninfo(self) -> str:
        """libpq URL (psycopg and asyncpg both take it)."""
        return psycopg_conninfo(self.url)

    @property
    def url_string(self) -> str:
        """The URL with its password, for DatabaseConnection."""
        return self.url.render_as_string(hide_password=False)


def recreate(server_url: URL, name: str = BENCH_DATABASE) -> BenchDatabase:
    """Drop `name` if it exists (closing its sessions) and create it empty."""
    if server_url.database == name:
        raise BenchmarkError(
            f"DATABASE_URL names {name!r}, the database the benchmark drops and recreates; "
            "point DATABASE_URL at another database on the same server"
        )
    try:
        with psycopg.connect(psycopg_conninfo(server_url), autocommit=True) as conn:
            ident = sql.Identifier(name)
            conn.execute(sql.SQL("DROP DATABASE IF EXISTS {} WITH (FORCE)").format(ident))
            conn.execute(sql.SQL("CREATE DATABASE {}").format(ident))
    except psycopg.errors.InsufficientPrivilege as error:
        raise BenchmarkError(
            f"cannot create the benchmark database {name!r}: {first_line(error)}; "
            "use a role with CREATEDB in DATABASE_URL"
        ) from None
    return BenchDatabase(server_url.set(database=name))


def drop(server_url: URL, name: str = BENCH_DATABASE) -> None:
    """Drop the benchmark database (best effort: it is recreated at the next run anyway)."""
    try:
        with psycopg.connect(psycopg_conninfo(server_url), autocommit=True) as conn:
            ident = sql.Identifier(name)
            conn.execute(sql.SQL("DROP DATABASE IF EXISTS {} WITH (FORCE)").format(ident))
    except psycopg.Error:
        pass


def install_heron(bench: BenchDatabase) -> DatabaseConnection:
    """Apply Heron's migrations; returns the connection the worker pools use."""
    db = DatabaseConnection(bench.url_string)
    db.create_tables()
    return db


def install_pgqueuer(bench: BenchDatabase) -> None:
    """Install PGQueuer's schema with its own installer (what `pgq install` runs)."""
    import asyncpg
    from pgqueuer.db import AsyncpgDriver
    from pgqueuer.queries import Queries

    async def install() -> None:
        conn = await asyncpg.connect(bench.conninfo)
        try:
            await Queries(AsyncpgDriver(conn)).install()
        finally:
            await conn.close()

    asyncio.run(install())


def reset(bench: BenchDatabase, *, pgqueuer: bool) -> None:
    """Empty every queue table of both systems."""
    tables = HERON_TABLES + (PGQUEUER_TABLES if pgqueuer else ())
    names = sql.SQL(", ").join(sql.Identifier(t) for t in tables)
    with psycopg.connect(bench.conninfo, autocommit=True) as conn:
        conn.execute(sql.SQL("TRUNCATE {} RESTART IDENTITY").format(names))


def settle(bench: BenchDatabase) -> None:
    """VACUUM ANALYZE and CHECKPOINT, so a run starts with fresh statistics and clean buffers.

    CHECKPOINT needs superuser or pg_checkpoint; without it the run goes on without.
    """
    with psycopg.connect(bench.conninfo, autocommit=True) as conn:
        conn.execute("VACUUM (ANALYZE)")
        with suppress(psycopg.errors.InsufficientPrivilege):
            conn.execute("CHECKPOINT")


def fill_heron(bench: BenchDatabase, events: int, event_type: str) -> None:
    """Queue `events` events in one statement (Heron's named query `enqueue_many`)."""
    from psycopg.types.json import Jsonb

    from heron.queue import queries

    payloads = [Jsonb({"n": n}) for n in range(events)]
    with psycopg.connect(bench.conninfo, autocommit=True) as conn:
        conn.execute(
            queries.query("enqueue_many"), {"event_type": event_type, "payloads": payloads}
        )


def fill_pgqueuer(bench: BenchDatabase, events: int, entrypoint: str) -> None:
    """Queue `events` jobs in one call to PGQueuer's enqueue, as its drain benchmark does."""
    import asyncpg
    from pgqueuer.db import AsyncpgDriver
    from pgqueuer.queries import Queries

    async def fill() -> None:
        conn = await asyncpg.connect(bench.conninfo)
        try:
            payloads: list[bytes | None] = [b'{"n": %d}' % n for n in range(events)]
            await Queries(AsyncpgDriver(conn)).enqueue(
                [entrypoint] * events, payloads, [0] * events
            )
        finally:
            await conn.close()

    asyncio.run(fill())


def pending(bench: BenchDatabase, system: str) -> int:
    """Events still waiting to be claimed (the backlog) in one system's table."""
    query = (
        "SELECT count(*) FROM events WHERE status = 'pending'"
        if system == "heron"
        else "SELECT count(*) FROM pgqueuer WHERE status = 'queued'"
    )
    with psycopg.connect(bench.conninfo, autocommit=True) as conn:
        row = conn.execute(query).fetchone()
    return int(row[0]) if row else 0


def server_info(bench: BenchDatabase) -> dict[str, Any]:
    """The server's version and the settings that move queue numbers."""
    settings = (
        "server_version",
        "fsync",
        "synchronous_commit",
        "wal_level",
        "shared_buffers",
        "max_connections",
    )
    with psycopg.connect(bench.conninfo, autocommit=True) as conn:
        row = conn.execute("SELECT version()").fetchone()
        info: dict[str, Any] = {"version": row[0] if row else None}
        for name in settings:
            value = conn.execute("SELECT current_setting(%s, true)", (name,)).fetchone()
            info[name] = value[0] if value else None
        host = conn.info.host
    info["unix_socket"] = host.startswith("/")
    return info
