"""The dashboard's routes, to mount on `heron run`'s HTTP server."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any, Final

import structlog
from psycopg_pool import AsyncConnectionPool
from starlette.routing import Route

from heron.config import Config
from heron.queue.runner import RunnerStats
from heron.web.dashboard.api import DashboardApi
from heron.web.dashboard.auth import TOKEN_ENV, DashboardAuth
from heron.web.dashboard.page import asset, page
from heron.web.dashboard.queries import DashboardReader

log = structlog.get_logger(__name__)

PATH: Final = "/dashboard"


def dashboard_enabled(config: Config) -> bool:
    """False when HTTP is reachable from other machines and HERON_DASHBOARD_TOKEN is unset."""
    return DashboardAuth.from_config(config) is not None


def dashboard_routes(
    pool: AsyncConnectionPool[Any], config: Config, stats: Callable[[], RunnerStats]
) -> list[Route]:
    """The page at /dashboard, its assets and the JSON API under /dashboard/api/, all
    behind the access rule of heron.web.dashboard.auth; none (and a warning) when the
    dashboard must stay off."""
    auth = DashboardAuth.from_config(config)
    if auth is None:
        log.warning(
            "dashboard disabled",
            reason=f"HERON_HTTP_HOST={config.heron_http_host} is reachable from other "
            f"machines and {TOKEN_ENV} is not set",
            fix=f"set {TOKEN_ENV} to a long random secret, or HERON_HTTP_HOST=127.0.0.1",
        )
        return []
    api = DashboardApi(DashboardReader(pool), stats)
    guard = auth.guard
    return [
        Route(PATH, guard(page, page=True), methods=["GET"]),
        Route(f"{PATH}/static/{{name}}", guard(asset), methods=["GET"]),
        Route(f"{PATH}/api/overview", guard(api.overview), methods=["GET"]),
        Route(f"{PATH}/api/events", guard(api.events), methods=["GET"]),
        Route(f"{PATH}/api/events/{{event_id:int}}", guard(api.event), methods=["GET"]),
        Route(f"{PATH}/api/events/{{event_id:int}}/replay", guard(api.replay), methods=["POST"]),
        Route(f"{PATH}/api/usage", guard(api.usage), methods=["GET"]),
        Route(f"{PATH}/api/mcp", guard(api.mcp), methods=["GET"]),
    ]
