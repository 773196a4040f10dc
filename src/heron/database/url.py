"""Database URL handling: one normal form for SQLAlchemy, one for psycopg, one for logs."""

from __future__ import annotations

from sqlalchemy.engine import URL, make_url
from sqlalchemy.exc import ArgumentError

from heron.errors import HeronError

_SCHEMES = {"postgres", "postgresql", "postgresql+psycopg", "postgresql+psycopg2"}


class UrlError(HeronError, ValueError):
    """A database URL that Heron cannot use."""


def normalize_url(raw: str) -> URL:
    """Parse any usual PostgreSQL URL into the SQLAlchemy URL Heron uses (psycopg 3 driver)."""
    text = raw.strip()
    if text.startswith("postgres://"):
        text = "postgresql://" + text.removeprefix("postgres://")
    try:
        url = make_url(text)
    except ArgumentError:
        raise UrlError(f"{redact_text(raw)!r} is not a database URL") from None
    if url.drivername not in _SCHEMES:
        raise UrlError(
            f"unsupported scheme {url.drivername!r}: Heron needs PostgreSQL (postgresql://...)"
        )
    if not url.database:
        raise UrlError(f"{redact_text(raw)!r} names no database (…/dbname)")
    return url.set(drivername="postgresql+psycopg")


def psycopg_conninfo(url: URL) -> str:
    """The libpq URL psycopg connects with (no SQLAlchemy driver suffix)."""
    return url.set(drivername="postgresql").render_as_string(hide_password=False)


def redact_url(raw: str | URL) -> str:
    """A URL safe to log or show: the password is replaced by ***."""
    try:
        url = raw if isinstance(raw, URL) else normalize_url(raw)
    except UrlError:
        return redact_text(str(raw))
    return url.set(drivername="postgresql").render_as_string(hide_password=True)


def redact_text(text: str) -> str:
    """Hide the password part of something that looks like scheme://user:password@host."""
    head, sep, tail = text.partition("://")
    if not sep or "@" not in tail:
        return text
    credentials, _, rest = tail.rpartition("@")
    user = credentials.split(":", 1)[0]
    return f"{head}://{user}:***@{rest}" if ":" in credentials else text
