"""A PostgreSQL for the tests: HERON_TEST_DATABASE_URL's server, else an embedded one.

Each test gets a database of its own, cloned from a template that has the migrations,
so tests never see each other's rows and cloning costs milliseconds.
"""

from __future__ import annotations

import os
import tempfile
import uuid
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

import psycopg
from psycopg import sql
from sqlalchemy.engine import make_url

from heron.database.embedded import start_embedded
from heron.database.migrate import migrate

TEMPLATE = "heron_test_template"


def server_url(database: str = "postgres") -> str:
    """Admin URL of the test server, started on first use (embedded unless a URL is given)."""
    given = os.environ.get("HERON_TEST_DATABASE_URL")
    if given:
        return make_url(given).set(database=database).render_as_string(hide_password=False)
    data_dir = Path(os.environ.setdefault("HERON_TEST_DATA_DIR", tempfile.mkdtemp(prefix="heron-test-")))
    return start_embedded(data_dir, database=database)


def with_database(url: str, database: str) -> str:
    return make_url(url).set(database=database).render_as_string(hide_password=False)


def create_template(admin_url: str) -> None:
    with psycopg.connect(admin_url, autocommit=True) as conn:
        conn.execute(sql.SQL("DROP DATABASE IF EXISTS {} WITH (FORCE)").format(sql.Identifier(TEMPLATE)))
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
            conn.execute(sql.SQL("DROP DATABASE IF EXISTS {} WITH (FORCE)").format(sql.Identifier(name)))
