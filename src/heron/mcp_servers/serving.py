"""What every Heron MCP server shares: tool registration, health, transports, the token.

Over HTTP a server answers at `/mcp` (streamable HTTP) with an open `/health`; bound to a
non-loopback address it requires `Authorization: Bearer $HERON_MCP_TOKEN`.
"""

from __future__ import annotations

import hmac
import inspect
import ipaddress
from collections.abc import Awaitable, Callable, Iterator, Mapping
from contextlib import contextmanager
from typing import Final, TypeVar, cast

import psycopg
from mcp.server.mcpserver import MCPServer
from mcp.server.mcpserver.exceptions import ToolError
from starlette.datastructures import Headers
from starlette.requests import Request
from starlette.responses import JSONResponse, Response
from starlette.types import ASGIApp, Receive, Scope, Send

from heron.errors import ConfigError, HeronError, first_line

MCP_PATH: Final = "/mcp"
HEALTH_PATH: Final = "/health"
TOKEN_ENV: Final = "HERON_MCP_TOKEN"  # noqa: S105 - a variable name, not a secret
TRANSPORTS: Final = ("stdio", "http")

F = TypeVar("F", bound=Callable[..., object])
_Endpoint = Callable[[Request], Awaitable[Response]]


def add_tool(server: MCPServer, func: F) -> F:
    """Register `func` as a tool; its docstring, dedented, is the tool's description."""
    registered: F = server.tool(description=inspect.cleandoc(func.__doc__ or ""))(func)
    return registered


def add_health(server: MCPServer) -> None:
    """An open GET /health for load balancers and tests: the app is up and routing."""

    async def health(request: Request) -> Response:
        return JSONResponse({"status": "ok", "server": server.name})

    # The SDK leaves custom_route's decorator unannotated; the cast restores the type.
    register = cast(
        Callable[[_Endpoint], _Endpoint], server.custom_route(HEALTH_PATH, methods=["GET"])
    )
    register(health)


def transport_problems(transport: str) -> list[str]:
    """Configuration problems with the transport name (empty when it is fine)."""
    if transport in TRANSPORTS:
        return []
    return [f"transport: {transport!r} is not one of {', '.join(TRANSPORTS)}"]


def is_loopback(host: str) -> bool:
    """Whether `host` only accepts connections from this machine."""
    if host.lower() == "localhost":
        return True
    try:
        return ipaddress.ip_address(host.strip("[]")).is_loopback
    except ValueError:
        return False


def configured_token(environ: Mapping[str, str] | None = None) -> str | None:
    """HERON_MCP_TOKEN from `environ` when given, else from the settings (env or `.env`)."""
    if environ is not None:
        return environ.get(TOKEN_ENV, "").strip() or None
    from heron.config import Config

    secret = Config().heron_mcp_token
    return (secret.get_secret_value().strip() or None) if secret is not None else None


def http_token(host: str, environ: Mapping[str, str] | None = None) -> str | None:
    """The bearer token HTTP clients must send; required when `host` is not loopback."""
    token = configured_token(environ)
    if token is None and not is_loopback(host):
        raise ConfigError(
            [
                f"{TOKEN_ENV}: required to serve MCP over HTTP on {host!r}, which is reachable "
                f"from other machines; set {TOKEN_ENV} to a long random secret (clients send "
                "'Authorization: Bearer <token>'), or bind to 127.0.0.1"
            ]
        )
    return token


class BearerTokenMiddleware:
    """Refuses HTTP requests without `Authorization: Bearer <token>` (health excepted)."""

    def __init__(
        self, app: ASGIApp, token: str, *, realm: str, exempt: frozenset[str] = frozenset()
    ) -> None:
        self.app = app
        self.realm = realm
        self._token = token.encode()
        self.exempt = exempt

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http" or scope["path"] in self.exempt:
            await self.app(scope, receive, send)
            return
        scheme, _, supplied = Headers(scope=scope).get("authorization", "").partition(" ")
        if scheme.lower() == "bearer" and hmac.compare_digest(
            supplied.strip().encode(), self._token
        ):
            await self.app(scope, receive, send)
            return
        response = JSONResponse(
            {
                "error": "invalid_token",
                "error_description": f"send Authorization: Bearer ${TOKEN_ENV}",
            },
            status_code=401,
            headers={"WWW-Authenticate": f'Bearer realm="{self.realm}"'},
        )
        await response(scope, receive, send)


def build_http_app(server: MCPServer, host: str, token: str | None) -> ASGIApp:
    """The streamable HTTP app at /mcp, behind the bearer check when there is a token."""
    app: ASGIApp = server.streamable_http_app(streamable_http_path=MCP_PATH, host=host)
    if token is not None:
        app = BearerTokenMiddleware(app, token, realm=server.name, exempt=frozenset({HEALTH_PATH}))
    return app


def serve(server: MCPServer, transport: str, host: str, port: int, token: str | None) -> None:
    """Run until interrupted: stdio, or uvicorn serving build_http_app."""
    if transport == "stdio":
        server.run("stdio")
        return
    import uvicorn

    uvicorn.run(build_http_app(server, host, token), host=host, port=port, log_level="info")


@contextmanager
def as_tool_errors() -> Iterator[None]:
    """Anticipated failures become tool errors with their message, not a generic crash."""
    try:
        yield
    except HeronError as error:
        raise ToolError(str(error)) from error
    except psycopg.OperationalError as error:
        raise ToolError(f"database unavailable: {first_line(error)}") from error
    except psycopg.Error as error:
        raise ToolError(f"database error: {first_line(error)}") from error
