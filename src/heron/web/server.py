"""One HTTP server per `heron run` (uvicorn on the run's own event loop)."""

from __future__ import annotations

import asyncio
import contextlib
import socket
from collections.abc import Awaitable, Callable, Iterator, Mapping, Sequence

import structlog
import uvicorn
from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import JSONResponse
from starlette.routing import BaseRoute, Route
from starlette.types import ASGIApp

from heron.errors import ConfigError

log = structlog.get_logger(__name__)

# Named checks, each True when its part is healthy; /readyz is ready when all are.
ReadinessChecks = Mapping[str, Callable[[], Awaitable[bool]]]


def build_http_app(routes: Sequence[BaseRoute], readiness: ReadinessChecks) -> Starlette:
    async def healthz(request: Request) -> JSONResponse:
        return JSONResponse({"status": "alive"})

    async def readyz(request: Request) -> JSONResponse:
        checks = {name: bool(await check()) for name, check in readiness.items()}
        ready = all(checks.values())
        return JSONResponse(
            {"status": "ready" if ready else "not ready", "checks": checks},
            status_code=200 if ready else 503,
        )

    base = [Route("/healthz", healthz), Route("/readyz", readyz)]
    return Starlette(routes=[*base, *routes])


class _Server(uvicorn.Server):
    """uvicorn without its own SIGINT/SIGTERM handling: Heron's runtime owns the signals
    and stops its parts in order. Left to uvicorn, a SIGTERM would shut every server down
    at once, the MCP servers hosted for the agent among them, while answers in flight
    still needed their tools."""

    @contextlib.contextmanager
    def capture_signals(self) -> Iterator[None]:
        yield


class HttpServer:
    """uvicorn, started and stopped with the rest of the run; port 0 picks a free one."""

    def __init__(self, app: ASGIApp, host: str, port: int, *, lifespan: bool = False) -> None:
        self.sock = socket.socket(socket.AF_INET6 if ":" in host else socket.AF_INET)
        self.sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        try:
            self.sock.bind((host, port))
        except OSError as error:
            self.sock.close()
            raise ConfigError(
                [f"HERON_HTTP_HOST/HERON_HTTP_PORT: cannot listen on {host}:{port}: {error}"]
            ) from None
        self.sock.listen(2048)  # connections wait in the backlog until uvicorn serves
        self.host = host
        self.port = int(self.sock.getsockname()[1])
        config = uvicorn.Config(
            app, log_level="warning", access_log=False, lifespan="on" if lifespan else "off"
        )
        self.server = _Server(config)
        self._task: asyncio.Task[None] | None = None

    @property
    def url(self) -> str:
        return f"http://{self.host}:{self.port}"

    async def start(self) -> None:
        self._task = asyncio.create_task(self.server.serve(sockets=[self.sock]), name="heron-http")
        log.info("http server listening", url=self.url)

    async def stop(self) -> None:
        self.server.should_exit = True
        if self._task is not None:
            await self._task
        self.sock.close()
