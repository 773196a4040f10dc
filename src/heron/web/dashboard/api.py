"""The dashboard's JSON API under /dashboard/api/ (see the README's Dashboard section)."""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from datetime import UTC, datetime
from functools import wraps
from typing import Final

import psycopg
import structlog
from starlette.requests import Request
from starlette.responses import Response

from heron.database.models import EventStatus
from heron.errors import EventNotFoundError, EventStateError, first_line
from heron.queue.runner import RunnerStats
from heron.web.dashboard import series
from heron.web.dashboard.queries import DashboardReader
from heron.web.dashboard.views import (
    ApiResponse,
    event_view,
    mcp_view,
    usage_day_view,
    usage_user_view,
)

log = structlog.get_logger(__name__)

WINDOW_MINUTES: Final = 60  # the overview's chart and latency window
LATENCY_SAMPLE: Final = 10_000  # newest completions the percentiles are taken over
USER_ROWS: Final = 100

Handler = Callable[["DashboardApi", Request], Awaitable[Response]]


class BadRequest(Exception):
    """A query parameter out of range; answered with 400 and the message."""


def _int_param(request: Request, name: str, default: int, low: int, high: int) -> int:
    raw = request.query_params.get(name)
    if raw is None:
        return default
    try:
        value = int(raw)
    except ValueError:
        raise BadRequest(f"{name} must be a whole number") from None
    if not low <= value <= high:
        raise BadRequest(f"{name} must be between {low} and {high}")
    return value


def _answers(handler: Handler) -> Handler:
    """Expected failures become JSON errors: 400, 404, 409, 503 (database unavailable)."""

    @wraps(handler)
    async def wrapper(api: DashboardApi, request: Request) -> Response:
        try:
            return await handler(api, request)
        except BadRequest as error:
            return ApiResponse({"error": "bad_request", "error_description": str(error)}, 400)
        except EventNotFoundError as error:
            return ApiResponse({"error": "not_found", "error_description": str(error)}, 404)
        except EventStateError as error:
            return ApiResponse({"error": "conflict", "error_description": str(error)}, 409)
        except psycopg.OperationalError as error:
            log.warning("dashboard: database unavailable", error=first_line(error))
            return ApiResponse(
                {"error": "unavailable", "error_description": "database unavailable"}, 503
            )

    return wrapper


class DashboardApi:
    """Endpoints reading through `reader`; `stats` gives this process's worker counters."""

    def __init__(self, reader: DashboardReader, stats: Callable[[], RunnerStats]) -> None:
        self.reader = reader
        self.stats = stats

    @_answers
    async def overview(self, request: Request) -> Response:
        """Queue depth by status, the last hour minute by minute, latency percentiles."""
        counts = await self.reader.queue_counts()
        minutes = await self.reader.minutes(WINDOW_MINUTES)
        latency = await self.reader.latency(WINDOW_MINUTES, LATENCY_SAMPLE)
        stats = self.stats()
        completions = int(latency["n"])
        return ApiResponse(
            {
                "generated_at": datetime.now(UTC),
                "window_minutes": WINDOW_MINUTES,
                "queue": counts,
                "outstanding": series.outstanding(counts),
                "minutes": series.with_depth(minutes, series.outstanding(counts)),
                "latency": {
                    "enqueue_to_completed": series.from_array(
                        latency["enqueue_to_completed"], completions
                    ),
                    "attempt": series.from_array(latency["attempt"], completions),
                    "handler": series.percentiles(stats.handling),
                    "claim_wait": series.percentiles(stats.claim_wait),
                },
                "process": {
                    "completed": stats.completed,
                    "retried": stats.retried,
                    "failed": stats.failed,
                    "lost_leases": stats.lost_leases,
                    "claimed": stats.claimed,
                },
            }
        )

    @_answers
    async def events(self, request: Request) -> Response:
        """The newest events with their attempts; `?status=failed` for the failed ones."""
        status = request.query_params.get("status") or None
        if status is not None and status not in set(EventStatus):
            raise BadRequest(f"status must be one of {', '.join(EventStatus)}")
        limit = _int_param(request, "limit", 50, 1, 500)
        found = await self.reader.events(status, limit)
        return ApiResponse({"events": [event_view(item) for item in found]})

    @_answers
    async def event(self, request: Request) -> Response:
        """One event with its attempts and its payload, secrets masked."""
        found = await self.reader.event(int(request.path_params["event_id"]))
        return ApiResponse({"event": event_view(found, payload=True)})

    @_answers
    async def replay(self, request: Request) -> Response:
        """Queue a failed event again (fresh retries; its attempt history stays)."""
        event_id = int(request.path_params["event_id"])
        await self.reader.replay(event_id)
        log.info("event replayed from the dashboard", event_id=event_id)
        return ApiResponse({"event": event_view(await self.reader.event(event_id))})

    @_answers
    async def usage(self, request: Request) -> Response:
        """Runs, tokens and estimated cost per UTC day and per user over `?days=` (30)."""
        days = _int_param(request, "days", 30, 1, 366)
        per_day = await self.reader.usage_per_day(days)
        per_user = await self.reader.usage_per_user(days, USER_ROWS)
        return ApiResponse(
            {
                "days": days,
                "per_day": [usage_day_view(row) for row in per_day],
                "per_user": [usage_user_view(row) for row in per_user],
            }
        )

    @_answers
    async def mcp(self, request: Request) -> Response:
        """The agent's MCP servers as last checked by a running Heron."""
        return ApiResponse({"servers": [mcp_view(row) for row in await self.reader.mcp_servers()]})
