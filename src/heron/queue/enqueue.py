"""Queue an event from anywhere that has a session (the Slack edge, the CLI, tests)."""

from __future__ import annotations

from typing import Any

from sqlalchemy.orm import Session

from heron.database.models import Event
from heron.queue import queries


def enqueue(
    session: Session,
    event_type: str,
    payload: dict[str, Any] | None = None,
    *,
    dedupe_key: str | None = None,
    delay_seconds: float = 0.0,
) -> Event:
    """Insert an event in the session's transaction; its commit wakes the workers (NOTIFY).

    With a dedupe_key seen before, return the existing event and do nothing else; check
    `event.created_at` or compare ids if you need to know which happened.
    """
    conn = session.connection()
    params = queries.enqueue_params(event_type, payload, dedupe_key, delay_seconds)
    row = conn.exec_driver_sql(queries.query("enqueue"), params).mappings().first()
    if row is None:
        # The key exists. A row committed by a concurrent enqueue can be invisible to the
        # INSERT's snapshot; a new statement sees it.
        by_key = queries.query("event_by_dedupe_key")
        row = conn.exec_driver_sql(by_key, {"dedupe_key": dedupe_key}).mappings().one()
    return Event.from_row(dict(row))
