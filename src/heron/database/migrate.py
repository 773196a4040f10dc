"""Apply the numbered SQL files in migrations/ in order, once each, safely from many processes."""

from __future__ import annotations

import hashlib
import re
from dataclasses import dataclass
from importlib import resources

import psycopg
import structlog

from heron.errors import MigrationError

log = structlog.get_logger(__name__)

# Any constant works; it only has to be the same in every Heron process.
_MIGRATION_LOCK = 0x4845524F4E  # "HERON"
_FILE_NAME = re.compile(r"^(\d{3})_([a-z0-9_]+)\.sql$")

_CREATE_TABLE = """
CREATE TABLE IF NOT EXISTS heron_migrations (
    version     INTEGER PRIMARY KEY,
    name        TEXT NOT NULL,
    checksum    TEXT NOT NULL,
    applied_at  TIMESTAMPTZ NOT NULL DEFAULT now()
)
"""


@dataclass(frozen=True, slots=True)
class Migration:
    """One shipped SQL file."""

    version: int
    name: str
    sql: str

    @property
    def checksum(self) -> str:
        return hashlib.sha256(self.sql.encode()).hexdigest()


@dataclass(frozen=True, slots=True)
class MigrationStatus:
    """Which shipped migrations a database has."""

    applied: list[int]
    pending: list[Migration]
    changed: list[int]


def shipped_migrations() -> list[Migration]:
    """The migrations shipped in the package, in version order."""
    found = []
    for entry in resources.files("heron.database.migrations").iterdir():
        match = _FILE_NAME.match(entry.name)
        if match:
            found.append(Migration(int(match[1]), match[2], entry.read_text(encoding="utf-8")))
    found.sort(key=lambda m: m.version)
    versions = [m.version for m in found]
    if len(set(versions)) != len(versions):
        raise MigrationError(f"two migration files share a version number: {versions}")
    return found


def migration_status(conn: psycopg.Connection[tuple[object, ...]]) -> MigrationStatus:
    """Compare the database's record with the shipped files (read-only)."""
    table = conn.execute("SELECT to_regclass('heron_migrations')").fetchone()
    applied: dict[int, str] = {}
    if table is not None and table[0] is not None:
        rows = conn.execute("SELECT version, checksum FROM heron_migrations").fetchall()
        applied = {int(str(v)): str(c) for v, c in rows}
    shipped = shipped_migrations()
    return MigrationStatus(
        applied=sorted(applied),
        pending=[m for m in shipped if m.version not in applied],
        changed=[m.version for m in shipped if applied.get(m.version, m.checksum) != m.checksum],
    )


def migrate(conninfo: str) -> list[Migration]:
    """Apply every pending migration in one transaction; return those applied.

    A transaction-scoped advisory lock serialises concurrent runs: the second process
    waits, then finds nothing left to do.
    """
    with psycopg.connect(conninfo) as conn:
        with conn.transaction():
            conn.execute("SELECT pg_advisory_xact_lock(%s)", (_MIGRATION_LOCK,))
            conn.execute(_CREATE_TABLE)
            status = migration_status(conn)
            if status.changed:
                log.warning(
                    "applied migrations differ from the shipped files", versions=status.changed
                )
            for migration in status.pending:
                try:
                    conn.execute(migration.sql.encode())
                except psycopg.Error as error:
                    raise MigrationError(
                        f"migration {migration.version:03d}_{migration.name} failed: {error}"
                    ) from error
                conn.execute(
                    "INSERT INTO heron_migrations (version, name, checksum) VALUES (%s, %s, %s)",
                    (migration.version, migration.name, migration.checksum),
                )
                log.info("migration applied", version=migration.version, name=migration.name)
        return status.pending
