"""Immutable domain values read from the database: events, attempts, their states."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, fields
from datetime import datetime
from enum import StrEnum
from typing import Any
from uuid import UUID


class EventStatus(StrEnum):
    """Where an event is in its life; `failed` is final until replayed."""

    PENDING = "pending"
    PROCESSING = "processing"
    COMPLETED = "completed"
    FAILED = "failed"


class AttemptOutcome(StrEnum):
    """How one attempt ended."""

    COMPLETED = "completed"
    RETRY = "retry"
    FAILED = "failed"
    LEASE_EXPIRED = "lease_expired"
    RELEASED = "released"


@dataclass(frozen=True, slots=True)
class Event:
    """One queued event as it was when read; `lease_id` proves who holds it."""

    id: int
    event_type: str
    payload: dict[str, Any]
    status: str
    created_at: datetime
    updated_at: datetime
    claimed_at: datetime | None
    claimed_by: str | None
    completed_at: datetime | None
    retry_count: int
    error_message: str | None
    visibility_timeout: datetime | None
    dedupe_key: str | None
    run_after: datetime
    lease_id: UUID | None
    attempts: int

    @classmethod
    def from_row(cls, row: Mapping[str, Any]) -> Event:
        """Build from a row mapping that has every column of `events`."""
        return cls(**{f.name: row[f.name] for f in fields(cls)})


@dataclass(frozen=True, slots=True)
class Attempt:
    """One finished attempt of an event: who ran it, when, and how it ended."""

    id: int
    event_id: int
    attempt: int
    worker_id: str
    lease_id: UUID
    started_at: datetime
    finished_at: datetime
    outcome: str
    error: str | None

    @classmethod
    def from_row(cls, row: Mapping[str, Any]) -> Attempt:
        """Build from a row mapping that has every column of `event_attempts`."""
        return cls(**{f.name: row[f.name] for f in fields(cls)})
