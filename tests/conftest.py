from __future__ import annotations

import asyncio
import threading
import time
from collections.abc import Callable, Iterator, Sequence
from typing import Any

import psycopg
import pytest
from psycopg.rows import dict_row

from heron.config import Config
from heron.database.connection import DatabaseConnection
from heron.docsearch.embedding import HashingEmbedder
from tests import pg


@pytest.fixture(scope="session")
def pg_admin_url() -> Iterator[str]:
    with pg.test_server() as url:
        pg.create_template(url)
        yield url


@pytest.fixture
def database_url(pg_admin_url: str) -> Iterator[str]:
    """A fresh, migrated database for this test alone."""
    with pg.cloned_database(pg_admin_url) as url:
        yield url


@pytest.fixture
def db(database_url: str) -> Iterator[DatabaseConnection]:
    connection = DatabaseConnection(database_url)
    yield connection
    connection.dispose()


@pytest.fixture
def config(database_url: str) -> Config:
    """Settings for tests: no backoff waits, fast rescue, a slow poll (NOTIFY must wake)."""
    return make_config(database_url)


def make_config(database_url: str, **overrides: Any) -> Config:
    values: dict[str, Any] = {
        "database_url": database_url,
        "retry_backoff_base_seconds": 0.0,
        "heron_poll_interval": 30.0,
        "heron_rescue_interval": 0.2,
        "heron_shutdown_grace_seconds": 5.0,
    }
    values.update(overrides)
    return Config(_env_file=None, **values)


def wait_until(
    predicate: Callable[[], bool], timeout: float = 15.0, what: str = "condition"
) -> None:
    """Wait for a condition that another thread or process brings about."""
    deadline = time.monotonic() + timeout
    while not predicate():
        if time.monotonic() > deadline:
            raise AssertionError(f"timed out after {timeout}s waiting for {what}")
        time.sleep(0.01)


async def eventually(
    predicate: Callable[[], bool], within: float = 15.0, what: str = "condition"
) -> None:
    """wait_until for async tests: polls without blocking the loop the code under test
    runs on (for effects in the database or in a fake, which have no event to await)."""
    deadline = time.monotonic() + within
    while not predicate():
        if time.monotonic() > deadline:
            raise AssertionError(f"timed out after {within}s waiting for {what}")
        await asyncio.sleep(0.02)


def rows(database_url: str, sql: str, *params: Any) -> list[dict[str, Any]]:
    """A query's rows as dicts, on a connection of its own (tests read what others wrote)."""
    with psycopg.connect(database_url, row_factory=dict_row) as conn:
        cursor = conn.execute(sql, params)  # type: ignore[arg-type]
        return cursor.fetchall() if cursor.description else []


class WatchedEmbedder(HashingEmbedder):
    """A hashing embedder that tells when it is first asked to embed (`started`): to see
    how far a search got while its query waits on the server."""

    def __init__(self) -> None:
        super().__init__()
        self.started = threading.Event()

    def embed(self, texts: Sequence[str]) -> list[list[float]]:
        self.started.set()
        return super().embed(texts)
