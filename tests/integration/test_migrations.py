"""Migrations: in order, once, safely concurrent, and usable with plain psql."""

from __future__ import annotations

import subprocess
import threading
from collections.abc import Iterator
from importlib import resources

import psycopg
import pytest
from psycopg import sql

from heron.database.embedded import client_program
from heron.database.migrate import migrate, migration_status, shipped_migrations
from tests import pg


@pytest.fixture
def empty_database(pg_admin_url: str) -> Iterator[str]:
    name = "heron_empty_" + threading.current_thread().name.lower().replace("-", "_")[:20]
    with psycopg.connect(pg_admin_url, autocommit=True) as conn:
        conn.execute(
            sql.SQL("DROP DATABASE IF EXISTS {} WITH (FORCE)").format(sql.Identifier(name))
        )
        conn.execute(sql.SQL("CREATE DATABASE {}").format(sql.Identifier(name)))
    yield pg.with_database(pg_admin_url, name)
    with psycopg.connect(pg_admin_url, autocommit=True) as conn:
        conn.execute(
            sql.SQL("DROP DATABASE IF EXISTS {} WITH (FORCE)").format(sql.Identifier(name))
        )


def pg_tool(name: str) -> str:
    return str(client_program(name))


def schema(url: str) -> str:
    dump = subprocess.run(
        [
            pg_tool("pg_dump"),
            "--schema-only",
            "--no-owner",
            "--exclude-table=heron_migrations",
            url,
        ],
        check=True,
        capture_output=True,
        text=True,
    ).stdout
    return "\n".join(
        line
        for line in dump.splitlines()
        if not line.startswith(("--", "\\restrict", "\\unrestrict"))
    )


def test_migrations_are_numbered_and_start_with_the_events_table():
    shipped = shipped_migrations()
    assert [m.version for m in shipped] == list(range(1, len(shipped) + 1))
    assert "CREATE TABLE IF NOT EXISTS events" in shipped[0].sql


def test_migrate_applies_each_migration_once(empty_database):
    applied = migrate(empty_database)
    assert [m.version for m in applied] == [m.version for m in shipped_migrations()]
    assert migrate(empty_database) == []
    with psycopg.connect(empty_database) as conn:
        status = migration_status(conn)
    assert status.pending == []
    assert status.changed == []


def test_two_processes_migrating_at_once_both_succeed(empty_database):
    errors: list[BaseException] = []
    results: list[int] = []
    barrier = threading.Barrier(2)

    def run() -> None:
        barrier.wait()
        try:
            results.append(len(migrate(empty_database)))
        except BaseException as error:
            errors.append(error)

    threads = [threading.Thread(target=run) for _ in range(2)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert errors == []
    assert sorted(results) == [0, len(shipped_migrations())]


def test_psql_can_apply_the_files_twice_and_gets_the_same_schema(empty_database, database_url):
    for _ in range(2):
        for migration in shipped_migrations():
            path = resources.files("heron.database.migrations").joinpath(
                f"{migration.version:03d}_{migration.name}.sql"
            )
            subprocess.run(
                [pg_tool("psql"), empty_database, "-v", "ON_ERROR_STOP=1", "-q", "-f", str(path)],
                check=True,
                capture_output=True,
            )
    assert schema(empty_database) == schema(database_url)
    # and `heron db migrate` afterwards is happy with what psql made
    migrate(empty_database)
