"""heron-docs: the documentation search as an MCP server, over stdio or streamable HTTP.

Two tools: `search_docs` (hybrid search, best passages first) and `get_document` (one
document's sections in order). Every anticipated failure - a bad argument, an unknown
document, a database without pgvector - reaches the client as a tool error (`isError`)
with a message that says what to do, and the server keeps serving.

Over HTTP the server answers at `/mcp`, with an unauthenticated `/health`. Bound to a
non-loopback address it requires `Authorization: Bearer $HERON_MCP_TOKEN`.
"""

from __future__ import annotations

import hmac
import ipaddress
import os
from collections.abc import Awaitable, Callable, Iterator
from contextlib import contextmanager
from typing import Annotated, Final, cast

import psycopg
from mcp.server.mcpserver import MCPServer
from mcp.server.mcpserver.exceptions import ToolError
from pydantic import BaseModel, Field
from starlette.datastructures import Headers
from starlette.requests import Request
from starlette.responses import JSONResponse, Response
from starlette.types import ASGIApp, Receive, Scope, Send

from heron.docsearch.store import DocStore, store_from_config
from heron.errors import ConfigError, HeronError, first_line

SERVER_NAME: Final = "heron-docs"
MCP_PATH: Final = "/mcp"
HEALTH_PATH: Final = "/health"
TOKEN_ENV: Final = "HERON_MCP_TOKEN"  # noqa: S105 - a variable name, not a secret
TRANSPORTS: Final = ("stdio", "http")
SNIPPET_CHARS: Final = 500
MAX_LIMIT: Final = 20

_Endpoint = Callable[[Request], Awaitable[Response]]


class SearchResult(BaseModel):
    """One passage that matches the query, with where to find it."""

    title: str = Field(description="Title of the document the passage comes from")
    source: str = Field(description="The document's source path, as ingested")
    link: str = Field(description="source#anchor: the passage's place in the document")
    heading_path: list[str] = Field(description="Headings from the top of the document down")
    snippet: str = Field(description=f"The passage text, trimmed to about {SNIPPET_CHARS} chars")
    score: float = Field(description="Fused rank score: higher is better")
    chunk_id: int = Field(description="Identifier of the passage")


class Section(BaseModel):
    """One section (chunk) of a document."""

    heading_path: list[str]
    anchor: str
    text: str


class Document(BaseModel):
    """A whole ingested document, section by section in reading order."""

    id: int
    source: str
    title: str
    kind: str
    sections: list[Section]


def snippet(text: str, limit: int = SNIPPET_CHARS) -> str:
    """`text` cut at a word boundary near `limit` characters, with an ellipsis if cut."""
    text = text.strip()
    if len(text) <= limit:
        return text
    cut = text[:limit]
    space = cut.rfind(" ")
    if space > limit // 2:
        cut = cut[:space]
    return cut.rstrip() + "…"


@contextmanager
def _as_tool_errors() -> Iterator[None]:
    """Anticipated failures become tool errors with their message, not a generic crash."""
    try:
        yield
    except HeronError as error:
        raise ToolError(str(error)) from error
    except psycopg.OperationalError as error:
        raise ToolError(f"database unavailable: {first_line(error)}") from error
    except psycopg.Error as error:
        raise ToolError(f"database error: {first_line(error)}") from error


def build_docs_server(store: DocStore) -> MCPServer:
    """The `heron-docs` MCP server: `search_docs` and `get_document` over `store`."""
    server: MCPServer = MCPServer(
        SERVER_NAME,
        instructions=(
            "Search Heron's ingested documentation with search_docs, then read a whole "
            "document with get_document (by the id or the source a result names)."
        ),
    )

    @server.tool()
    def search_docs(
        query: Annotated[str, Field(description="What to look for, in plain words")],
        limit: Annotated[
            int, Field(description=f"How many passages to return, 1 to {MAX_LIMIT}")
        ] = 5,
    ) -> list[SearchResult]:
        """Search the ingested documentation; the best passages come first.

        Full-text and vector rankings are fused, so a question in natural language works.
        Each result names its document (source, link) for get_document.
        """
        if not 1 <= limit <= MAX_LIMIT:
            raise ToolError(f"limit must be between 1 and {MAX_LIMIT}, got {limit}")
        if not query.strip():
            raise ToolError("query is empty: pass the words to search for")
        with _as_tool_errors(), store.connect() as conn:
            hits = store.search(conn, query, limit)
        return [
            SearchResult(
                title=hit.title,
                source=hit.source,
                link=hit.link,
                heading_path=list(hit.heading_path),
                snippet=snippet(hit.text),
                score=hit.score,
                chunk_id=hit.chunk_id,
            )
            for hit in hits
        ]

    @server.tool()
    def get_document(
        id_or_path: Annotated[
            str,
            Field(description="A numeric document id, or the document's exact source path"),
        ],
    ) -> Document:
        """Return one ingested document: its metadata and every section in reading order."""
        key = id_or_path.strip()
        if not key:
            raise ToolError("id_or_path is empty: pass a document id or its source path")
        with _as_tool_errors(), store.connect() as conn:
            document = store.get_document(conn, key)
        if document is None:
            raise ToolError(
                f"no document with id or source {key!r}: use search_docs to find one "
                "(each result names its source), or ingest it with `heron docs ingest`"
            )
        return Document(
            id=document.id,
            source=document.source,
            title=document.title,
            kind=document.kind,
            sections=[
                Section(heading_path=list(s.heading_path), anchor=s.anchor, text=s.text)
                for s in document.sections
            ],
        )

    # The SDK leaves custom_route's decorator unannotated; the cast restores the type.
    register = cast(
        Callable[[_Endpoint], _Endpoint], server.custom_route(HEALTH_PATH, methods=["GET"])
    )
    register(_health)
    return server


async def _health(request: Request) -> Response:
    """Readiness for load balancers and tests: the app is up and routing."""
    return JSONResponse({"status": "ok", "server": SERVER_NAME})


# -- HTTP ---------------------------------------------------------------------------------


def is_loopback(host: str) -> bool:
    """Whether `host` only accepts connections from this machine."""
    if host.lower() == "localhost":
        return True
    try:
        return ipaddress.ip_address(host.strip("[]")).is_loopback
    except ValueError:
        return False


def http_token(host: str, environ: dict[str, str] | None = None) -> str | None:
    """The bearer token HTTP clients must send; required when `host` is not loopback."""
    token = (os.environ if environ is None else environ).get(TOKEN_ENV, "").strip() or None
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
        self,
        app: ASGIApp,
        token: str,
        exempt: frozenset[str] = frozenset(),
        realm: str = SERVER_NAME,
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
        app = BearerTokenMiddleware(app, token, exempt=frozenset({HEALTH_PATH}), realm=server.name)
    return app


# -- entry point ----------------------------------------------------------------------------


def main(
    transport: str = "stdio",
    host: str = "127.0.0.1",
    port: int = 8000,
    store: DocStore | None = None,
) -> None:
    """Serve heron-docs until interrupted: `stdio`, or streamable HTTP at host:port/mcp.

    Configuration problems (an unknown transport, a public HTTP address without
    HERON_MCP_TOKEN) raise `ConfigError` before anything starts.
    """
    if transport not in TRANSPORTS:
        raise ConfigError([f"transport: {transport!r} is not one of {', '.join(TRANSPORTS)}"])
    token = http_token(host) if transport == "http" else None
    if store is None:
        from heron.config import Config

        store = store_from_config(Config())
    server = build_docs_server(store)
    if transport == "stdio":
        server.run("stdio")
        return
    import uvicorn

    uvicorn.run(build_http_app(server, host, token), host=host, port=port, log_level="info")


def _run_from_environment(argv: list[str]) -> None:
    """`python -m heron.mcp_servers.docs [stdio|http] [host] [port]`, for tests and debugging."""
    transport = argv[0] if argv else "stdio"
    host = argv[1] if len(argv) > 1 else "127.0.0.1"
    port = int(argv[2]) if len(argv) > 2 else 8000
    main(transport, host, port)


if __name__ == "__main__":
    import sys

    _run_from_environment(sys.argv[1:])


__all__: list[str] = [
    "BearerTokenMiddleware",
    "Document",
    "SearchResult",
    "Section",
    "build_docs_server",
    "build_http_app",
    "http_token",
    "main",
]
