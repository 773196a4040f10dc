"""The heron-docs MCP server, driven by the real MCP client: in process, stdio and HTTP."""

from __future__ import annotations

import json
import os
import socket
import sys
import textwrap
import threading
import urllib.error
import urllib.request
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx2
import psycopg
import pytest
import uvicorn
from mcp.client import Client
from mcp.client.stdio import StdioServerParameters
from mcp.client.streamable_http import streamable_http_client
from mcp_types import CallToolResult, TextContent

from heron.docsearch.embedding import HashingEmbedder
from heron.docsearch.ingest import ingest_path
from heron.docsearch.store import POOL_NAME, POOL_SIZE, DocStore
from heron.errors import ConfigError
from heron.mcp_servers.docs import build_docs_server, main
from heron.mcp_servers.serving import build_http_app
from tests.conftest import wait_until
from tests.integration.test_docsearch import VACUUM

NOTIFY = textwrap.dedent(
    """\
    # NOTIFY

    ## Description

    The NOTIFY command sends a notification event together with an optional payload
    string to each client application that has previously executed LISTEN channel.
    """
)


@pytest.fixture
def store(database_url: str, tmp_path: Path) -> DocStore:
    """A store over a tiny ingested manual: vacuum.md and notify.md."""
    root = tmp_path / "manual"
    root.mkdir()
    (root / "vacuum.md").write_text(VACUUM)
    (root / "notify.md").write_text(NOTIFY)
    store = DocStore(database_url, HashingEmbedder())
    ingest_path(store, root)
    return store


def source_of(store: DocStore, name: str) -> tuple[int, str]:
    with store.connect() as conn:
        row = conn.execute(
            "SELECT id, source FROM doc_documents WHERE source LIKE %s", (f"%{name}",)
        ).fetchone()
    assert row is not None
    return int(row["id"]), str(row["source"])


def payload(result: CallToolResult) -> Any:
    assert not result.is_error, result.content
    assert result.structured_content is not None
    return result.structured_content


def error_text(result: CallToolResult) -> str:
    assert result.is_error
    return " ".join(c.text for c in result.content if isinstance(c, TextContent))


async def test_tools_list_shows_both_tools_with_schemas(store: DocStore) -> None:
    async with Client(build_docs_server(store)) as client:
        tools = {tool.name: tool for tool in (await client.list_tools()).tools}
    assert set(tools) == {"search_docs", "get_document"}
    search = tools["search_docs"]
    assert search.description is not None
    assert "documentation" in search.description
    assert search.input_schema["required"] == ["query"]
    assert search.input_schema["properties"]["limit"]["default"] == 5
    assert "description" in search.input_schema["properties"]["query"]
    assert search.output_schema is not None
    get = tools["get_document"]
    assert get.input_schema["required"] == ["id_or_path"]
    assert get.output_schema is not None
    assert "sections" in get.output_schema["properties"]


async def test_search_get_and_errors_in_process(store: DocStore) -> None:
    vacuum_id, vacuum_source = source_of(store, "vacuum.md")
    async with Client(build_docs_server(store)) as client:
        found = payload(
            await client.call_tool(
                "search_docs", {"query": "give disk space back to the operating system"}
            )
        )["result"]
        top = found[0]
        assert top["heading_path"] == ["Routine Vacuuming", "Recovering Disk Space"]
        assert top["source"] == vacuum_source
        assert top["link"] == f"{vacuum_source}#{top['link'].split('#')[1]}"
        assert "VACUUM FULL" in top["snippet"]
        assert isinstance(top["chunk_id"], int)
        assert isinstance(top["score"], float)
        assert len(found) <= 5

        one = payload(await client.call_tool("search_docs", {"query": "NOTIFY", "limit": 1}))
        assert len(one["result"]) == 1

        bad_limit = await client.call_tool("search_docs", {"query": "vacuum", "limit": 21})
        assert "limit must be between 1 and 20" in error_text(bad_limit)
        zero = await client.call_tool("search_docs", {"query": "vacuum", "limit": 0})
        assert "limit must be between 1 and 20" in error_text(zero)

        by_id = payload(await client.call_tool("get_document", {"id_or_path": str(vacuum_id)}))
        by_path = payload(await client.call_tool("get_document", {"id_or_path": vacuum_source}))
        assert by_id == by_path
        assert (by_id["id"], by_id["source"], by_id["title"]) == (
            vacuum_id,
            vacuum_source,
            "Routine Vacuuming",
        )
        assert by_id["kind"] == "markdown"
        headings = [s["heading_path"][-1] for s in by_id["sections"]]
        assert headings[-2:] == [
            "Recovering Disk Space",
            "Preventing Transaction ID Wraparound Failures",
        ]
        assert all(set(s) == {"heading_path", "anchor", "text"} for s in by_id["sections"])

        unknown = await client.call_tool("get_document", {"id_or_path": "no/such/file.md"})
        assert "no document with id or source 'no/such/file.md'" in error_text(unknown)
        missing_id = await client.call_tool("get_document", {"id_or_path": "999999"})
        assert "no document" in error_text(missing_id)

        # Still serving after the errors.
        again = payload(await client.call_tool("search_docs", {"query": "LISTEN channel"}))
        assert again["result"][0]["title"] == "NOTIFY"


async def test_searches_reuse_the_connections_the_server_keeps(
    store: DocStore, database_url: str
) -> None:
    def kept() -> set[int]:
        with psycopg.connect(database_url) as conn:
            rows = conn.execute(
                "SELECT pid FROM pg_stat_activity WHERE application_name = %s", (POOL_NAME,)
            ).fetchall()
        return {pid for (pid,) in rows}

    async with Client(build_docs_server(store)) as client:
        payload(await client.call_tool("search_docs", {"query": "vacuum"}))
        first = kept()
        for query in ("disk space", "NOTIFY", "freeze horizon", "LISTEN channel"):
            payload(await client.call_tool("search_docs", {"query": query}))
            payload(await client.call_tool("get_document", {"id_or_path": "1"}))
        assert kept() == first
        assert 1 <= len(first) <= POOL_SIZE
    wait_until(lambda: kept() == set(), what="the kept connections closed with the server")


async def test_database_failure_is_a_tool_error(database_url: str) -> None:
    broken = DocStore(database_url + "_does_not_exist", HashingEmbedder())
    async with Client(build_docs_server(broken)) as client:
        result = await client.call_tool("search_docs", {"query": "vacuum"})
        assert "database unavailable" in error_text(result)
        assert len((await client.list_tools()).tools) == 2


async def test_over_stdio_subprocess(store: DocStore, database_url: str) -> None:
    _, vacuum_source = source_of(store, "vacuum.md")
    env = dict(os.environ)
    env.update(
        DATABASE_URL=database_url,
        HERON_EMBEDDING_PROVIDER="hashing",
        HERON_LOG_LEVEL="WARNING",
    )
    params = StdioServerParameters(
        command=sys.executable, args=["-m", "heron.mcp_servers.docs", "stdio"], env=env
    )
    async with Client(params, read_timeout_seconds=60) as client:
        names = {tool.name for tool in (await client.list_tools()).tools}
        assert names == {"search_docs", "get_document"}
        found = payload(await client.call_tool("search_docs", {"query": "freeze horizon"}))
        assert found["result"][0]["source"] == vacuum_source
        assert "two billion" in found["result"][0]["snippet"]
        bad = await client.call_tool("get_document", {"id_or_path": "nope.md"})
        assert "no document" in error_text(bad)


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def healthy(url: str) -> bool:
    try:
        with urllib.request.urlopen(url, timeout=1) as response:
            return bool(response.status == 200)
    except (urllib.error.URLError, ConnectionError):
        return False


@pytest.fixture
def http_server(store: DocStore) -> Iterator[tuple[str, str]]:
    """heron-docs over streamable HTTP on 127.0.0.1 with a token; yields (url, token)."""
    token = "test-token-1234"
    port = free_port()
    app = build_http_app(build_docs_server(store), "127.0.0.1", token)
    server = uvicorn.Server(
        uvicorn.Config(app, host="127.0.0.1", port=port, log_level="warning", lifespan="on")
    )
    thread = threading.Thread(target=server.run, name="mcp-http", daemon=True)
    thread.start()
    base = f"http://127.0.0.1:{port}"
    wait_until(lambda: healthy(f"{base}/health"), timeout=20, what="the MCP HTTP server")
    try:
        yield f"{base}/mcp", token
    finally:
        server.should_exit = True
        thread.join(timeout=20)
        assert not thread.is_alive(), "uvicorn did not shut down"


async def test_over_streamable_http(http_server: tuple[str, str], store: DocStore) -> None:
    url, token = http_server
    vacuum_id, vacuum_source = source_of(store, "vacuum.md")
    headers = {"Authorization": f"Bearer {token}"}
    async with (
        httpx2.AsyncClient(headers=headers, timeout=30) as http,
        Client(streamable_http_client(url, http_client=http)) as client,
    ):
        names = {tool.name for tool in (await client.list_tools()).tools}
        assert names == {"search_docs", "get_document"}
        document = payload(await client.call_tool("get_document", {"id_or_path": str(vacuum_id)}))
        assert document["source"] == vacuum_source
        bad = await client.call_tool("search_docs", {"query": "x", "limit": 100})
        assert "limit must be between 1 and 20" in error_text(bad)
        found = payload(await client.call_tool("search_docs", {"query": "LISTEN"}))
        assert found["result"][0]["title"] == "NOTIFY"


def test_http_without_the_token_is_refused(http_server: tuple[str, str]) -> None:
    url, _ = http_server
    request = urllib.request.Request(
        url,
        data=json.dumps({"jsonrpc": "2.0", "id": 1, "method": "ping"}).encode(),
        headers={"Content-Type": "application/json", "Authorization": "Bearer wrong"},
        method="POST",
    )
    with pytest.raises(urllib.error.HTTPError) as refused:
        urllib.request.urlopen(request, timeout=5)
    assert refused.value.code == 401
    refused.value.close()


def test_public_http_needs_a_token(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv("HERON_MCP_TOKEN", raising=False)
    with pytest.raises(ConfigError, match="HERON_MCP_TOKEN"):
        main("http", "0.0.0.0", free_port())


def test_unknown_transport_is_refused() -> None:
    with pytest.raises(ConfigError, match="transport"):
        main("sse", "127.0.0.1", free_port())
