"""The seed's database API: a pooled SQLAlchemy engine, sessions, health and migrations."""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from typing import Any

import structlog
from sqlalchemy import create_engine, text
from sqlalchemy.engine import URL
from sqlalchemy.exc import SQLAlchemyError
from sqlalchemy.orm import Session, sessionmaker

from heron.database.migrate import migrate
from heron.database.url import normalize_url, psycopg_conninfo, redact_url

log = structlog.get_logger(__name__)


def resolve_database_url(database_url: str | None = None, *, stop_at_exit: bool = True) -> URL:
    """The URL to use: the argument, else DATABASE_URL, else the embedded server."""
    if database_url is None:
        from heron.config import Config

        config = Config()
        database_url = config.database_url
        if database_url is None:
            from heron.database.embedded import start_embedded

            database_url = start_embedded(config.heron_data_dir, stop_at_exit=stop_at_exit)
            log.debug("using the embedded PostgreSQL", data_dir=str(config.heron_data_dir))
    return normalize_url(database_url)


class DatabaseConnection:
    """A pooled connection to Heron's PostgreSQL; one per process is plenty."""

    def __init__(
        self,
        database_url: str | None = None,
        pool_size: int = 10,
        max_overflow: int = 20,
        echo: bool = False,
    ) -> None:
        self.url = resolve_database_url(database_url)
        self.engine = create_engine(
            self.url,
            pool_size=pool_size,
            max_overflow=max_overflow,
            pool_pre_ping=True,
            connect_args={"connect_timeout": 5},
            echo=echo,
        )
        self._sessions = sessionmaker(self.engine, expire_on_commit=False)

    @property
    def conninfo(self) -> str:
        """The libpq URL for code that talks to psycopg directly (the worker pool)."""
        return psycopg_conninfo(self.url)

    def __repr__(self) -> str:
        return f"DatabaseConnection({redact_url(self.url)!r})"

    @contextmanager
    def session(self) -> Iterator[Session]:
        """A session that commits when the block succeeds and rolls back when it raises."""
        session = self._sessions()
        try:
            yield session
            session.commit()
        except BaseException:
            session.rollback()
            raise
        finally:
            session.close()

    def health_check(self) -> bool:
        """True when the database answers a query."""
        try:
            with self.engine.connect() as conn:
                conn.execute(text("SELECT 1"))
        except SQLAlchemyError as error:
            log.warning("database health check failed", error=str(error).splitlines()[0])
            return False
        return True

    def get_pool_status(self) -> dict[str, Any]:
        """Connection pool figures for health pages and metrics."""
        pool: Any = self.engine.pool
        return {
            "size": pool.size(),
            "checked_in": pool.checkedin(),
            "checked_out": pool.checkedout(),
            "overflow": pool.overflow(),
        }

    def create_tables(self) -> None:
        """Apply the shipped migrations (the seed name for it)."""
        migrate(self.conninfo)

    def dispose(self) -> None:
        """Close every pooled connection."""
        self.engine.dispose()


_default: DatabaseConnection | None = None


def init_db(database_url: str | None = None, **kwargs: Any) -> DatabaseConnection:
    """Create the process-wide connection, apply migrations, and return it."""
    global _default
    if _default is not None:
        _default.dispose()
    _default = DatabaseConnection(database_url, **kwargs)
    _default.create_tables()
    return _default


@contextmanager
def get_session() -> Iterator[Session]:
    """A session from the connection made by init_db() (made on first use if needed)."""
    global _default
    if _default is None:
        _default = init_db()
    with _default.session() as session:
        yield session
