"""What the JSON API returns for each thing it shows: plain JSON values, secrets masked.

Times are ISO 8601 in UTC, durations seconds, money US dollars as numbers.
"""

from __future__ import annotations

import json
from collections.abc import Mapping
from datetime import UTC, date, datetime
from decimal import Decimal
from typing import Any
from uuid import UUID

from starlette.responses import JSONResponse

from heron.database.models import Attempt, Event
from heron.web.dashboard.masking import mask_text, mask_value
from heron.web.dashboard.queries import EventWithAttempts


def _plain(value: Any) -> Any:
    if isinstance(value, datetime):
        return value.astimezone(UTC).isoformat()
    if isinstance(value, date):
        return value.isoformat()
    if isinstance(value, Decimal):
        return float(value)
    if isinstance(value, UUID):
        return str(value)
    raise TypeError(f"{type(value).__name__} is not JSON serializable")


class ApiResponse(JSONResponse):
    """JSON with times, decimals and UUIDs as above; never cached."""

    def __init__(self, content: Any, status_code: int = 200) -> None:
        super().__init__(content, status_code, headers={"Cache-Control": "no-store"})

    def render(self, content: Any) -> bytes:
        return json.dumps(content, default=_plain, ensure_ascii=False).encode("utf-8")


def _masked(text: str | None) -> str | None:
    return None if text is None else mask_text(text)


def attempt_view(attempt: Attempt) -> dict[str, Any]:
    """One finished attempt: who ran it, when, how long, how it ended (error masked)."""
    return {
        "attempt": attempt.attempt,
        "worker_id": attempt.worker_id,
        "started_at": attempt.started_at,
        "finished_at": attempt.finished_at,
        "duration_seconds": (attempt.finished_at - attempt.started_at).total_seconds(),
        "outcome": attempt.outcome,
        "error": _masked(attempt.error),
    }


def event_view(item: EventWithAttempts, *, payload: bool = False) -> dict[str, Any]:
    """An event with its attempts; its payload (masked) only when asked for."""
    event: Event = item.event
    shown: dict[str, Any] = {
        "id": event.id,
        "event_type": event.event_type,
        "status": event.status,
        "created_at": event.created_at,
        "updated_at": event.updated_at,
        "run_after": event.run_after,
        "claimed_at": event.claimed_at,
        "claimed_by": event.claimed_by,
        "completed_at": event.completed_at,
        "retry_count": event.retry_count,
        "attempt_count": event.attempts,
        "error_message": _masked(event.error_message),
        "dedupe_key": event.dedupe_key,
        "attempts": [attempt_view(attempt) for attempt in item.attempts],
    }
    if payload:
        shown["payload"] = mask_value(event.payload)
    return shown


def usage_day_view(row: Mapping[str, Any]) -> dict[str, Any]:
    """One UTC day of agent runs: counts, tokens, estimated cost."""
    return {
        "day": row["day"],
        "runs": int(row["runs"]),
        "answered": int(row["answered"]),
        "input_tokens": int(row["input_tokens"]),
        "output_tokens": int(row["output_tokens"]),
        "cost_usd": float(row["cost_usd"]),
        "unpriced_runs": int(row["unpriced_runs"]),
    }


def usage_user_view(row: Mapping[str, Any]) -> dict[str, Any]:
    """One user's agent runs over the period; `user_name` None when Slack has no name."""
    return {
        "user_id": row["user_id"],
        "user_name": row["user_name"],
        "runs": int(row["runs"]),
        "input_tokens": int(row["input_tokens"]),
        "output_tokens": int(row["output_tokens"]),
        "cost_usd": float(row["cost_usd"]),
        "last_run_at": row["last_run_at"],
    }


def mcp_view(row: Mapping[str, Any]) -> dict[str, Any]:
    """One MCP server as last checked (error masked)."""
    return {
        "name": row["name"],
        "transport": row["transport"],
        "ok": bool(row["ok"]),
        "tools": list(row["tools"] or []),
        "error": _masked(row["error"]),
        "checked_at": row["checked_at"],
    }
