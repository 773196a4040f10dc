"""The queue's named SQL (sql/queries.sql), loaded once, and the parameters each one takes."""

from __future__ import annotations

from typing import Any
from uuid import UUID

from psycopg.types.json import Jsonb

from heron.database.models import Event, EventStatus
from heron.database.named_sql import NamedQueries
from heron.errors import EventStateError
from heron.queue.retry import RetryDecision

query = NamedQueries("heron.queue.sql", "queries.sql")


def not_replayable(event: Event) -> EventStateError:
    """Why `replay` changed nothing: the event is not failed (the CLI and the dashboard)."""
    return EventStateError(
        f"event {event.id} is {event.status}, not {EventStatus.FAILED}: only failed "
        "events can be replayed"
    )


def enqueue_params(
    event_type: str, payload: dict[str, Any] | None, dedupe_key: str | None, delay_seconds: float
) -> dict[str, Any]:
    return {
        "event_type": event_type,
        "payload": Jsonb(payload or {}),
        "dedupe_key": dedupe_key,
        "delay_seconds": float(delay_seconds),
    }


def complete_and_claim_params(
    done: list[Event], worker_id: str, lease_seconds: float, limit: int
) -> dict[str, Any]:
    """Complete `done` (fenced by their leases) and claim up to `limit` events."""
    return held_params(done) | {
        "worker_id": worker_id,
        "lease_seconds": float(lease_seconds),
        "limit": limit,
    }


def split_complete_and_claim(rows: list[dict[str, Any]]) -> tuple[set[int], list[Event]]:
    """The ids completed and the events claimed, from complete_and_claim's rows."""
    completed = set(rows[0]["completed_ids"]) if rows else set()
    return completed, [Event.from_row(row) for row in rows if row["id"] is not None]


def held_params(events: list[Event]) -> dict[str, Any]:
    """Parameters naming events together with the leases their holder has."""
    return {"ids": [e.id for e in events], "lease_ids": [e.lease_id for e in events]}


def decision_params(
    event_id: int,
    lease_id: UUID | None,
    decision: RetryDecision,
    error: str,
    *,
    lease_expired: bool = False,
) -> dict[str, Any]:
    """Parameters of end_attempt: the holder's own failure, or the rescue of an expired lease."""
    return {
        "lease_expired": lease_expired,
        "id": event_id,
        "lease_id": lease_id,
        "status": decision.status.value,
        "retry_count": decision.retry_count,
        "delay_seconds": decision.delay_seconds,
        "outcome": decision.outcome.value,
        "error": error,
    }
