"""The seed's synchronous queue API over a SQLAlchemy session.

Each call commits at once: a claim must be visible to every other worker the moment it
is made, and a completion must be durable before the caller moves on. The worker pool
runs the same named SQL asynchronously (heron.queue.store).
"""

from __future__ import annotations

from typing import Any

import structlog
from sqlalchemy.orm import Session

from heron.config import Config
from heron.database.models import Attempt, Event, EventStatus
from heron.errors import EventNotFoundError
from heron.queue import queries
from heron.queue.enqueue import enqueue
from heron.queue.retry import RetryPolicy, truncate_error

log = structlog.get_logger(__name__)


class EventProcessor:
    """Claim, complete and fail events as one worker, identified by `worker_id`."""

    def __init__(self, session: Session, worker_id: str, config: Config | None = None) -> None:
        self.session = session
        self.worker_id = worker_id
        self.config = config or Config()
        self.policy = RetryPolicy.from_config(self.config)

    def _run(self, name: str, params: dict[str, Any] | None = None) -> list[dict[str, Any]]:
        result = self.session.connection().exec_driver_sql(queries.query(name), params or {})
        rows = [dict(row) for row in result.mappings()] if result.returns_rows else []
        self.session.commit()
        return rows

    def enqueue(
        self,
        event_type: str,
        payload: dict[str, Any] | None = None,
        *,
        dedupe_key: str | None = None,
        delay_seconds: float = 0.0,
    ) -> Event:
        """Queue an event and commit; see heron.queue.enqueue.enqueue."""
        event = enqueue(
            self.session, event_type, payload, dedupe_key=dedupe_key, delay_seconds=delay_seconds
        )
        self.session.commit()
        return event

    def claim_event(self) -> Event | None:
        """Take the oldest visible event and a lease on it, or None when there is none."""
        events = self.claim_events(1)
        return events[0] if events else None

    def claim_events(self, limit: int) -> list[Event]:
        """Take up to `limit` events in one statement, each with a lease of its own."""
        return self._complete_and_claim([], limit)[1]

    def _complete_and_claim(self, done: list[Event], limit: int) -> tuple[set[int], list[Event]]:
        params = queries.complete_and_claim_params(
            done, self.worker_id, self.config.event_visibility_timeout, limit
        )
        return queries.split_complete_and_claim(self._run("complete_and_claim", params))

    def complete_event(self, event: Event) -> bool:
        """Mark the event done; False (and a warning) when this worker no longer holds it."""
        done = event.id in self._complete_and_claim([event], 0)[0]
        if not done:
            log.warning(
                "lease lost: completion ignored", event_id=event.id, worker_id=self.worker_id
            )
        return bool(done)

    def fail_event(self, event: Event, error_message: str, *, permanent: bool = False) -> bool:
        """Record a failure: retry later with backoff, or `failed` once retries are spent."""
        decision = self.policy.after_failure(event.retry_count, permanent=permanent)
        params = queries.decision_params(
            event.id, event.lease_id, decision, truncate_error(error_message)
        )
        done = self._run("end_attempt", params)
        if not done:
            log.warning("lease lost: failure ignored", event_id=event.id, worker_id=self.worker_id)
        return bool(done)

    def heartbeat(self, events: list[Event]) -> set[int]:
        """Extend the leases of events this worker holds; returns the ids still held."""
        params = queries.held_params(events) | {
            "lease_seconds": self.config.event_visibility_timeout
        }
        return {row["id"] for row in self._run("heartbeat", params)}

    def rescue_expired(self, limit: int = 100) -> int:
        """Give events whose holder's lease ran out back to the queue (or fail them)."""
        rescued = 0
        conn = self.session.connection()
        expired = conn.exec_driver_sql(queries.query("expired_leases"), {"limit": limit})
        for row in expired.mappings().all():
            decision = self.policy.after_lease_expiry(row["retry_count"])
            params = queries.decision_params(
                row["id"],
                row["lease_id"],
                decision,
                f"lease expired (held by {row['claimed_by']})",
                lease_expired=True,
            )
            rescued += len(conn.exec_driver_sql(queries.query("end_attempt"), params).all())
        self.session.commit()
        return rescued

    def replay_event(self, event_id: int) -> Event:
        """Queue a failed event again with fresh retries; its attempt history stays."""
        rows = self._run("replay", {"id": event_id})
        if rows:
            return Event.from_row(rows[0])
        raise queries.not_replayable(self.get_event(event_id))

    def get_event(self, event_id: int) -> Event:
        """The event with this id; EventNotFoundError if there is none."""
        rows = self._run("event_by_id", {"id": event_id})
        if not rows:
            raise EventNotFoundError(f"no event with id {event_id}")
        return Event.from_row(rows[0])

    def get_attempts(self, event_id: int) -> list[Attempt]:
        """Every attempt of an event, oldest first."""
        return [Attempt.from_row(row) for row in self._run("attempts_of_event", {"id": event_id})]

    def list_events(self, status: str | None = None, limit: int = 50) -> list[Event]:
        """The newest events, optionally only those with one status."""
        rows = self._run("list_events", {"status": status, "limit": limit})
        return [Event.from_row(row) for row in rows]

    def get_queue_stats(self) -> dict[str, int]:
        """How many events are in each status (every status present, zero if none)."""
        stats = {status.value: 0 for status in EventStatus}
        for row in self._run("queue_stats"):
            stats[row["status"]] = int(row["n"])
        stats["total"] = sum(stats.values())
        return stats

    def get_queue_depth(self) -> int:
        """Events waiting to be processed (pending, including those backing off)."""
        return int(self._run("queue_depth")[0]["n"])
