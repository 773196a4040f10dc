"""heron-docs: the documentation search as an MCP server, over stdio or streamable HTTP.

Two tools: `search_docs` (hybrid search, best passages first) and `get_document` (one
document's sections in order). Every anticipated failure - a bad argument, an unknown
document, a database without pgvector - reaches the client as a tool error (`isError`)
with a message that says what to do, and the server keeps serving.

Over HTTP the server answers at `/mcp`, with an unauthenticated `/health`. Bound to a
non-loopback address it requires `Authorization: Bearer $HERON_MCP_TOKEN`.
"""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from typing import Annotated, Any, Final

from mcp.server.mcpserver import MCPServer
from mcp.server.mcpserver.exceptions import ToolError
from pydantic import BaseModel, Field

from heron.docsearch.store import DocStore, store_from_config
from heron.errors import ConfigError
from heron.mcp_servers.serving import (
    add_health,
    add_tool,
    as_tool_errors,
    http_token,
    serve,
    transport_problems,
)

SERVER_NAME: Final = "heron-docs"
SNIPPET_CHARS: Final = 500
MAX_LIMIT: Final = 20


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


def build_docs_server(store: DocStore) -> MCPServer:
    """The `heron-docs` MCP server: `search_docs` and `get_document` over `store`, whose
    connections it keeps while it runs."""

    @asynccontextmanager
    async def lifespan(server: MCPServer[Any]) -> AsyncIterator[None]:
        await asyncio.to_thread(store.open_pool)
        try:
            yield None
        finally:
            await asyncio.to_thread(store.close)

    server: MCPServer = MCPServer(
        SERVER_NAME,
        instructions=(
            "Search Heron's ingested documentation with search_docs, then read a whole "
            "document with get_document (by the id or the source a result names)."
        ),
        lifespan=lifespan,
    )

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
        with as_tool_errors(), store.connect() as conn:
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
        with as_tool_errors(), store.connect() as conn:
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

    add_tool(server, search_docs)
    add_tool(server, get_document)
    add_health(server)
    return server


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
    problems = transport_problems(transport)
    if problems:
        raise ConfigError(problems)
    token = http_token(host) if transport == "http" else None
    if store is None:
        from heron.config import Config

        store = store_from_config(Config())
    serve(build_docs_server(store), transport, host, port, token)


def _run_from_environment(argv: list[str]) -> None:
    """`python -m heron.mcp_servers.docs [stdio|http] [host] [port]`, for tests and debugging."""
    transport = argv[0] if argv else "stdio"
    host = argv[1] if len(argv) > 1 else "127.0.0.1"
    port = int(argv[2]) if len(argv) > 2 else 8000
    main(transport, host, port)


if __name__ == "__main__":
    import sys

    _run_from_environment(sys.argv[1:])


__all__: list[str] = ["Document", "SearchResult", "Section", "build_docs_server", "main"]
