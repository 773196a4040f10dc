"""The queue's named SQL (sql/queries.sql), loaded once, and the parameters each one takes."""

from __future__ import annotations

import re
from functools import cache
from importlib import resources
from typing import Any, LiteralString
from uuid import UUID

from psycopg.types.json import Jsonb

from heron.database.models import Event
from heron.queue.retry import RetryDecision

_NAME = re.compile(r"^-- name: (\w+)\s*$", re.MULTILINE)


@cache
def _load() -> dict[str, str]:
    text = resources.files("heron.queue.sql").joinpath("queries.sql").read_text(encoding="utf-8")
    parts = _NAME.split(text)
    return {
        name: body.strip().rstrip(";") for name, body in zip(parts[1::2], parts[2::2], strict=True)
    }


def query(name: str) -> LiteralString:
    """The text of a named query (shipped with the package, never built from input)."""
    try:
        return _load()[name]  # shipped text, never built from input
    except KeyError:
        raise KeyError(f"no query named {name!r} in queue/sql/queries.sql") from None


def enqueue_params(
    event_type: str, payload: dict[str, Any] | None, dedupe_key: str | None, delay_seconds: float
) -> dict[str, Any]:
    return {
        "event_type": event_type,
        "payload": Jsonb(payload or {}),
        "dedupe_key": dedupe_key,
        "delay_seconds": float(delay_seconds),
    }


def claim_params(worker_id: str, lease_seconds: float, limit: int) -> dict[str, Any]:
    return {"worker_id": worker_id, "lease_seconds": float(lease_seconds), "limit": limit}


def held_params(events: list[Event]) -> dict[str, Any]:
    """Parameters naming events together with the leases their holder has."""
    return {"ids": [e.id for e in events], "lease_ids": [e.lease_id for e in events]}


def decision_params(
    event_id: int, lease_id: UUID | None, decision: RetryDecision, error: str
) -> dict[str, Any]:
    return {
        "id": event_id,
        "lease_id": lease_id,
        "status": decision.status.value,
        "retry_count": decision.retry_count,
        "delay_seconds": decision.delay_seconds,
        "outcome": decision.outcome.value,
        "error": error,
    }
