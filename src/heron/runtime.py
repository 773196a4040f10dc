"""`heron run`: every part of Heron on one event loop, started in order, stopped in reverse.

Order matters for "nothing lost": Slack intake starts before the workers (events wait in
the queue meanwhile), and on the way down the HTTP server stops taking requests first,
the workers drain (in-flight answers finish within the grace period, the rest go back to
the queue), and only then do Slack and the database pool close.
"""

from __future__ import annotations

import asyncio
import gc
import signal
from collections.abc import Callable
from contextlib import suppress
from typing import Any

import structlog
from starlette.routing import Route

from heron.agent.service import AgentService
from heron.config import Config
from heron.database.connection import DatabaseConnection
from heron.queue.handlers import HandlerRegistry, default_registry
from heron.queue.store import open_pool
from heron.queue.worker_pool import WorkerPool
from heron.slack.handlers import Responder
from heron.slack.service import SlackService, slack_enabled
from heron.tracing import instrument_http_app
from heron.web.dashboard import dashboard_routes
from heron.web.metrics import metrics_endpoint
from heron.web.server import HttpServer, build_http_app
from heron.web.workspace import LocalWorkspace, local_workspace_enabled

log = structlog.get_logger(__name__)


class Runtime:
    """Start with `await start()`, stop with `await stop()`; `run()` does both around a
    stop signal."""

    def __init__(
        self,
        config: Config,
        db: DatabaseConnection,
        registry: HandlerRegistry | None = None,
        *,
        respond: Responder | None = None,
        workers: int | None = None,
    ) -> None:
        self.config = config
        self.db = db
        self.registry = registry or default_registry()
        self.respond = respond
        self.pool = open_pool(db.conninfo, max_size=max(4, config.heron_db_pool_size), name="heron")
        self.slack: SlackService | None = None
        self.workspace: LocalWorkspace | None = None  # Slack's stand-in when none is set up
        # Prompts and the MCP server list are checked now: mistakes stop the start.
        self.agent = AgentService(config, db.conninfo, self.pool)
        self.workers = WorkerPool(
            workers or config.worker_pool_size, db, self.registry, config=config
        )
        self.http: HttpServer | None = None
        self._workers_task: asyncio.Task[None] | None = None

    async def start(self) -> None:
        await self.pool.open(wait=True, timeout=30)
        routes = []
        slack_config = self.config
        if local_workspace_enabled(self.config):
            self.workspace = LocalWorkspace(self.config, self.pool)
            slack_config = await self.workspace.start()
        if slack_enabled(slack_config):
            self.slack = SlackService(slack_config, self.pool)
            await self.slack.start()
            respond = self.respond or await self.agent.start(self.slack)
            self.slack.register_handlers(self.registry, respond)
            routes = self.slack.routes()
        self._workers_task = asyncio.create_task(self.workers.serve(), name="heron-workers")
        readiness = {"database": self._database_ok, "workers": self._workers_ok}
        if self.slack is not None:
            readiness["slack"] = self._slack_ok
        endpoint = metrics_endpoint(
            self.pool,
            lambda: self.workers.stats,
            lambda: self.workers.get_stats()["workers_running"],
        )
        dashboard = dashboard_routes(self.pool, self.config, lambda: self.workers.stats)
        routes = [*routes, Route("/metrics", endpoint), *dashboard]
        if self.workspace is not None:
            routes = [*routes, *self.workspace.routes()]
        app = build_http_app(routes, readiness)
        if self.config.logfire_token is not None:
            instrument_http_app(app)
        self.http = HttpServer(app, self.config.heron_http_host, self.config.heron_http_port)
        await self.http.start()

    async def stop(self) -> None:
        if self.workspace is not None:
            self.workspace.close_feeds()  # open event streams would hold the HTTP server up
        if self.http is not None:
            await self.http.stop()
        self.workers.stop()
        if self._workers_task is not None:
            await self._workers_task
        if self.slack is not None:
            await self.slack.stop()
        if self.workspace is not None:
            await self.workspace.stop()
        await self.agent.stop()
        await self.pool.close()

    async def run(
        self, stop: asyncio.Event, on_started: Callable[[Runtime], Any] | None = None
    ) -> None:
        try:
            await self.start()
        except BaseException:
            await self.stop()  # close whatever did start (the pool at least)
            raise
        settle_heap()
        try:
            if on_started is not None:
                on_started(self)
            await stop.wait()
        finally:
            await self.stop()

    async def _database_ok(self) -> bool:
        try:
            async with self.pool.connection(timeout=2) as conn:
                await conn.execute("SELECT 1")
        except Exception:
            return False
        return True

    async def _workers_ok(self) -> bool:
        return bool(self.workers.get_stats()["workers_running"] > 0)

    async def _slack_ok(self) -> bool:
        return self.slack is not None and self.slack.connected


def settle_heap() -> None:
    """Start-up leaves a large heap of objects that live as long as the process (modules,
    pydantic schemas, SQL). Frozen, later collections no longer walk them; without this a
    full collection landing in a question added several milliseconds to its answer."""
    gc.collect()
    gc.freeze()
    gc.set_threshold(10_000, 20, 20)  # fewer, still small, young collections


def run_until_signal(runtime: Runtime, on_started: Callable[[Runtime], Any] | None = None) -> None:
    """Run until SIGINT or SIGTERM, then stop gracefully."""

    async def main() -> None:
        stop = asyncio.Event()
        loop = asyncio.get_running_loop()
        for sig in (signal.SIGINT, signal.SIGTERM):
            with suppress(NotImplementedError, RuntimeError):
                loop.add_signal_handler(sig, stop.set)
        await runtime.run(stop, on_started)

    asyncio.run(main())
