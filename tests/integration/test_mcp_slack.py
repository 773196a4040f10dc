"""The heron-slack MCP server, driven by the real MCP client: in process, stdio and HTTP.

The archive is the one test_slack_search seeds: Alice, Bob, Carol and Dave with public
channels, a private channel (Alice and Bob), a DM between Bob and Carol, a DM between
Alice and Bob, a private channel Alice left, a deleted channel and a deleted message.
"""

from __future__ import annotations

import os
import subprocess
import sys
import threading
from collections.abc import AsyncIterator, Iterator
from contextlib import asynccontextmanager
from pathlib import Path
from typing import Any

import httpx2
import pytest
import uvicorn
from mcp.client import Client
from mcp.client.stdio import StdioServerParameters
from mcp.client.streamable_http import streamable_http_client
from mcp_types import CallToolResult

from heron.config import Config
from heron.docsearch.embedding import HashingEmbedder
from heron.docsearch.minilm import MiniLMEmbedder
from heron.errors import ConfigError
from heron.mcp_servers.slack import NO_IDENTITY, build_http_app, build_slack_server, main
from heron.mcp_servers.slack_identity import USER_HEADER, HttpAuth, http_auth, parse_user_tokens
from heron.queue.store import open_pool
from heron.slack.archive import Archive
from tests.conftest import wait_until
from tests.integration.test_mcp_docs import error_text, free_port, healthy, payload
from tests.integration.test_slack_search import BOT, MESSAGES, T4, T5, add_heron, seed

TOOLS = {
    "list_channels": {"name", "limit"},
    "list_users": {"name", "limit"},
    "get_channel_history": {"channel", "since", "until", "limit"},
    "get_thread": {"channel", "thread_ts", "limit"},
    "get_message_context": {"channel", "ts", "before", "after"},
    "get_messages_with_user": {"user", "since", "until", "limit"},
    "search_messages": {"query", "channel", "author", "since", "until", "limit", "include_heron"},
}


@pytest.fixture
async def archive_url(database_url: str) -> str:
    """The database, seeded."""
    pool = open_pool(database_url, max_size=2, name="test-mcp-slack-seed")
    await pool.open()
    try:
        await seed(Archive(pool, BOT))
    finally:
        await pool.close()
    return database_url


def as_user(archive_url: str, user: str | None, **options: Any) -> Client:
    """An in-process client of a server that reads as `user`."""
    options.setdefault("embed_every", 0.0)
    return Client(build_slack_server(archive_url, HashingEmbedder(), user=user, **options))


def texts(result: CallToolResult) -> list[str]:
    found = payload(result)
    messages = found["messages"] if "messages" in found else found["result"]
    return [m["text"] for m in messages]


def found(result: CallToolResult) -> list[dict[str, Any]]:
    hits: list[dict[str, Any]] = payload(result)["result"]
    return hits


def reason(result: CallToolResult) -> str:
    """A tool error's message without the SDK's "Error executing tool NAME: " prefix."""
    return error_text(result).split(": ", 1)[1]


def text_of(*keys: str) -> list[str]:
    return [MESSAGES[key][3] for key in keys]


async def test_tools_have_schemas_and_no_say_in_whose_view_it_is(archive_url: str) -> None:
    async with as_user(archive_url, "UALICE") as client:
        tools = {tool.name: tool for tool in (await client.list_tools()).tools}
    assert set(tools) == set(TOOLS)
    for name, tool in tools.items():
        assert set(tool.input_schema["properties"]) == TOOLS[name], name
        assert tool.description, name
        assert tool.output_schema is not None, name
        for parameter in tool.input_schema["properties"].values():
            assert parameter.get("description"), (name, parameter)
    assert tools["search_messages"].input_schema["required"] == ["query"]
    include_heron = tools["search_messages"].input_schema["properties"]["include_heron"]
    assert (include_heron["type"], include_heron["default"]) == ("boolean", False)
    assert "left out unless true" in include_heron["description"]
    assert tools["get_thread"].input_schema["required"] == ["channel", "thread_ts"]


async def test_every_tool_in_process(archive_url: str) -> None:
    async with as_user(archive_url, "UALICE") as client:
        channels = payload(await client.call_tool("list_channels", {}))["result"]
        kinds = {c["id"]: c["kind"] for c in channels}
        assert kinds == {"CGEN": "public_channel", "CENG": "public_channel",
                         "GSEC": "private_channel", "DAB": "dm"}  # fmt: skip
        users = payload(await client.call_tool("list_users", {"name": "bob"}))["result"]
        assert [(u["id"], u["real_name"]) for u in users] == [("UBOB", "Bob Builder")]

        history = payload(
            await client.call_tool("get_channel_history", {"channel": "#general", "limit": 2})
        )
        assert [m["text"] for m in history["messages"]] == text_of("lunch", "deployed")
        assert history["has_more"] is True
        lunch = history["messages"][0]
        assert lunch["permalink"] == (
            f"https://acme.slack.com/archives/CGEN/p{T4.replace('.', '')}"
        )
        assert (lunch["author"], lunch["author_id"], lunch["channel_name"]) == (
            "Dave Grohl",
            "UDAVE",
            "general",
        )
        assert lunch["time"] == "2024-11-26T00:30:00.000100+00:00"

        thread = payload(await client.call_tool("get_thread", {"channel": "CGEN", "thread_ts": T4}))
        reply = thread["messages"][1]
        assert reply["text"] == MESSAGES["count_me"][3]
        assert reply["permalink"] == (
            f"https://acme.slack.com/archives/CGEN/p{T5.replace('.', '')}?thread_ts={T4}&cid=CGEN"
        )
        context = await client.call_tool(
            "get_message_context", {"channel": "general", "ts": T5, "before": 1, "after": 0}
        )
        assert texts(context) == text_of("lunch", "count_me")
        with_bob = await client.call_tool("get_messages_with_user", {"user": "@bob", "limit": 3})
        assert texts(with_bob) == text_of("disk", "pizza", "deployed")

        hits = payload(
            await client.call_tool(
                "search_messages", {"query": "billing patch", "author": "bob", "limit": 5}
            )
        )["result"]
        # Word matches first; the vector side adds Bob's other messages after them.
        assert [h["text"] for h in hits[:2]] == text_of("review", "deployed")
        assert {h["author_id"] for h in hits} == {"UBOB"}
        assert hits[0]["channel_id"] == "DAB"
        assert hits[0]["permalink"].startswith("https://acme.slack.com/archives/DAB/p")
        assert hits[0]["score"] > hits[1]["score"] > hits[-1]["score"]
        one_day = {"since": "2024-11-27", "until": "2024-11-27"}
        dated = await client.call_tool(
            "search_messages", {"query": "billing", "channel": "#general", **one_day}
        )
        assert texts(dated) == text_of("deployed")


async def test_search_leaves_heron_out_unless_include_heron(archive_url: str) -> None:
    pool = open_pool(archive_url, max_size=1, name="test-mcp-slack-heron")
    await pool.open()
    try:
        heron = await add_heron(pool)
    finally:
        await pool.close()
    billing = {"query": "billing deploy", "limit": 50}
    async with as_user(archive_url, "UDAVE") as client:
        left_out = found(await client.call_tool("search_messages", billing))
        assert left_out  # words and vectors find the others
        assert heron.isdisjoint(h["text"] for h in left_out)
        assert BOT.user_id not in {h["author_id"] for h in left_out}
        included = await client.call_tool("search_messages", billing | {"include_heron": True})
        assert heron <= set(texts(included))
        explicit = await client.call_tool("search_messages", billing | {"include_heron": False})
        assert set(texts(explicit)) == {h["text"] for h in left_out}


async def test_access_control_through_the_tools(archive_url: str) -> None:
    async with as_user(archive_url, "UALICE") as alice, as_user(archive_url, "UBOB") as bob:
        missing = reason(await alice.call_tool("get_channel_history", {"channel": "CNOPE"}))
        assert "not found" in missing
        for hidden in ("DBC", "GOLD", "old-project", "CDEL"):  # others' DM, left, deleted
            refused = await alice.call_tool("get_channel_history", {"channel": hidden})
            assert reason(refused) == missing.replace("CNOPE", hidden)
        party_ts = MESSAGES["party"][1]
        refused = await alice.call_tool("get_thread", {"channel": "DBC", "thread_ts": party_ts})
        assert reason(refused) == missing.replace("CNOPE", "DBC")
        # (Search always returns the nearest vectors: what matters is what is left out.)
        party = await alice.call_tool("search_messages", {"query": "surprise party", "limit": 50})
        assert {"DBC", "GOLD", "CDEL"}.isdisjoint(h["channel_id"] for h in found(party))
        secret = await alice.call_tool("search_messages", {"query": "hunter2", "limit": 50})
        assert MESSAGES["secret"][1] not in {h["ts"] for h in found(secret)}
        own_dm = await bob.call_tool("get_channel_history", {"channel": "DBC"})
        assert texts(own_dm) == text_of("party")
        old = await bob.call_tool("search_messages", {"query": "old plans"})
        assert texts(old)[0] == MESSAGES["old"][3]
        assert MESSAGES["old"][3] not in texts(
            await alice.call_tool("search_messages", {"query": "old plans"})
        )


async def test_errors_are_tool_errors_and_the_server_keeps_serving(archive_url: str) -> None:
    async with as_user(archive_url, "UDAVE") as client:
        cases = {
            ("search_messages", "limit must be between 1 and 50"): {"query": "x", "limit": 51},
            ("search_messages", "query is empty"): {"query": "   "},
            ("search_messages", "since: 'yesterday' is not an ISO date"): {
                "query": "billing",
                "since": "yesterday",
            },
            ("search_messages", "no user 'zed'"): {"query": "billing", "author": "zed"},
            ("get_channel_history", "must be before"): {
                "channel": "CGEN",
                "since": "2024-11-27",
                "until": "2024-11-26",
            },
            ("get_thread", "ts must be a Slack message ts"): {"channel": "CGEN", "thread_ts": "x"},
            ("get_message_context", "before must be between 0 and 50"): {
                "channel": "CGEN",
                "ts": T4,
                "before": 51,
            },
            ("get_message_context", "no message"): {"channel": "CGEN", "ts": "1.000001"},
            ("list_channels", "limit must be between 1 and 1000"): {"limit": 0},
        }
        for (tool, expected), arguments in cases.items():
            assert expected in error_text(await client.call_tool(tool, arguments)), tool
        assert texts(await client.call_tool("get_thread", {"channel": "CGEN", "thread_ts": T4}))


async def test_without_an_identity_every_tool_refuses(archive_url: str) -> None:
    arguments = {
        "list_channels": {},
        "list_users": {},
        "get_channel_history": {"channel": "CGEN"},
        "get_thread": {"channel": "CGEN", "thread_ts": T4},
        "get_message_context": {"channel": "CGEN", "ts": T4},
        "get_messages_with_user": {"user": "UBOB"},
        "search_messages": {"query": "billing"},
    }
    async with as_user(archive_url, None) as client:
        for tool in TOOLS:
            assert reason(await client.call_tool(tool, arguments[tool])) == NO_IDENTITY


async def test_database_failure_is_a_tool_error(database_url: str) -> None:
    broken = database_url + "_does_not_exist"
    async with as_user(broken, "UALICE", pool_timeout=1.0) as client:
        result = await client.call_tool("list_channels", {})
        assert "database unavailable" in error_text(result)
        assert len((await client.list_tools()).tools) == len(TOOLS)


async def test_search_by_meaning_embeds_what_is_pending_first(archive_url: str) -> None:
    server = build_slack_server(archive_url, MiniLMEmbedder(), user="UDAVE", embed_every=0.0)
    async with Client(server) as client:
        found = await client.call_tool("search_messages", {"query": "storage is full"})
        assert texts(found)[0] == MESSAGES["disk"][3]
    async with as_user(archive_url, "UDAVE", embed_every=0.0) as words_only:
        server_without = build_slack_server(archive_url, None, user="UDAVE")
        async with Client(server_without) as plain:
            nothing = await plain.call_tool("search_messages", {"query": "storage is full"})
        assert texts(nothing) == []
        assert texts(await words_only.call_tool("search_messages", {"query": "billing"}))


# -- stdio -----------------------------------------------------------------------------------


def server_env(archive_url: str, **extra: str) -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith("HERON_MCP")}
    env.update(DATABASE_URL=archive_url, HERON_EMBEDDING_PROVIDER="hashing",
               HERON_LOG_LEVEL="WARNING", **extra)  # fmt: skip
    return env


async def test_over_stdio_subprocess(archive_url: str, tmp_path: Path) -> None:
    params = StdioServerParameters(
        command=sys.executable,
        args=["-m", "heron.mcp_servers.slack", "stdio"],
        env=server_env(archive_url, HERON_MCP_SLACK_USER="UALICE"),
        cwd=tmp_path,  # no stray .env
    )
    async with Client(params, read_timeout_seconds=60) as client:
        names = {tool.name for tool in (await client.list_tools()).tools}
        assert names == set(TOOLS)
        found = texts(await client.call_tool("search_messages", {"query": "billing patch"}))
        assert found[0] == MESSAGES["review"][3]  # Alice's DM with Bob
        refused = await client.call_tool("get_channel_history", {"channel": "DBC"})
        assert "not found" in error_text(refused)


def test_stdio_without_a_user_refuses_to_start(archive_url: str, tmp_path: Path) -> None:
    result = subprocess.run(
        [sys.executable, "-m", "heron", "mcp", "slack"],
        env=server_env(archive_url),
        cwd=tmp_path,
        capture_output=True,
        text=True,
        timeout=60,
        stdin=subprocess.DEVNULL,
    )
    assert result.returncode == 1
    assert "HERON_MCP_SLACK_USER" in result.stderr
    assert "--as-user" in result.stderr


def test_configuration_problems_are_reported_before_serving() -> None:
    config = Config(_env_file=None, heron_mcp_slack_user="alice")
    with pytest.raises(ConfigError, match="'alice' is not a Slack user id"):
        main("stdio", config=config)
    with pytest.raises(ConfigError, match="transport"):
        main("sse", config=Config(_env_file=None), as_user="UALICE")
    with pytest.raises(ConfigError, match="HERON_MCP_TOKEN") as public:
        http_auth("0.0.0.0", {}, environ={})
    assert "required" in str(public.value)
    tokens = parse_user_tokens(" tok-alice-1234:UALICE , tok:with:colons:UBOB ")
    assert tokens == {"tok-alice-1234": "UALICE", "tok:with:colons": "UBOB"}
    assert http_auth("0.0.0.0", tokens, environ={}).main_token is None  # user tokens suffice
    with pytest.raises(ConfigError, match="must differ") as same:
        http_auth("0.0.0.0", tokens, environ={"HERON_MCP_TOKEN": "tok-alice-1234"})
    assert "tok-alice" not in str(same.value)
    with pytest.raises(ConfigError) as bad:
        parse_user_tokens("secret-one:alice,secret-two,secret-3:UTHREE,secret-3:UTHREE")
    message = str(bad.value)
    assert "entry 1 is not token:U0123ABCD" in message
    assert "entry 4 repeats an earlier token" in message
    assert "secret" not in message


def test_identity_rules() -> None:
    guarded = HttpAuth("main-token", {"alice-token": "UALICE"}, default_user="UDAVE")
    assert guarded.identify("Bearer main-token", "UBOB") == (True, "UBOB")
    assert guarded.identify("Bearer main-token", None) == (True, "UDAVE")
    assert guarded.identify("bearer alice-token", "UBOB") == (True, "UALICE")
    assert guarded.identify("Bearer wrong", "UBOB") == (False, None)
    assert guarded.identify("", "UBOB") == (False, None)
    assert guarded.identify("Basic main-token", None) == (False, None)
    open_loopback = HttpAuth(None, {})
    assert open_loopback.identify("", "UCAROL") == (True, "UCAROL")
    assert open_loopback.identify("", None) == (True, None)  # the tools then refuse


# -- HTTP ------------------------------------------------------------------------------------


@pytest.fixture
def http_url(archive_url: str, request: pytest.FixtureRequest) -> Iterator[str]:
    """heron-slack over streamable HTTP on 127.0.0.1, with the auth the test marks."""
    auth = getattr(request, "param", None) or HttpAuth(
        "main-token", {"alice-token": "UALICE", "dave-token": "UDAVE"}
    )
    port = free_port()
    server = build_slack_server(archive_url, HashingEmbedder(), user=None, embed_every=0.0)
    app = build_http_app(server, "127.0.0.1", auth)
    http = uvicorn.Server(
        uvicorn.Config(app, host="127.0.0.1", port=port, log_level="warning", lifespan="on")
    )
    thread = threading.Thread(target=http.run, name="mcp-slack-http", daemon=True)
    thread.start()
    base = f"http://127.0.0.1:{port}"
    wait_until(lambda: healthy(f"{base}/health"), timeout=20, what="the MCP HTTP server")
    try:
        yield f"{base}/mcp"
    finally:
        http.should_exit = True
        thread.join(timeout=20)
        assert not thread.is_alive(), "uvicorn did not shut down"


@asynccontextmanager
async def over_http(url: str, **headers: str) -> AsyncIterator[Client]:
    async with (
        httpx2.AsyncClient(headers=headers, timeout=30) as http,
        Client(streamable_http_client(url, http_client=http)) as client,
    ):
        yield client


def bearer(token: str, user: str | None = None) -> dict[str, str]:
    headers = {"Authorization": f"Bearer {token}"}
    return headers | ({USER_HEADER: user} if user else {})


async def test_over_http_each_token_reads_as_its_user(http_url: str) -> None:
    launch = {"query": "launch codes", "limit": 50}
    async with over_http(http_url, **bearer("alice-token")) as alice:
        assert texts(await alice.call_tool("search_messages", launch))[0] == MESSAGES["launch"][3]
    async with over_http(http_url, **bearer("dave-token")) as dave:
        hits = found(await dave.call_tool("search_messages", launch))
        assert {h["channel_id"] for h in hits} == {"CGEN", "CENG"}
    # Heron's agent: the main token, and the user it acts for in a header.
    async with over_http(http_url, **bearer("main-token", "UBOB")) as agent:
        own_dm = await agent.call_tool("get_channel_history", {"channel": "DBC"})
        assert texts(own_dm) == text_of("party")
    # A user's token cannot borrow someone else's view.
    async with over_http(http_url, **bearer("alice-token", "UBOB")) as alice:
        refused = await alice.call_tool("get_channel_history", {"channel": "DBC"})
        assert "not found" in error_text(refused)
    async with over_http(http_url, **bearer("main-token")) as nobody:
        refused = await nobody.call_tool("list_channels", {})
        assert reason(refused) == NO_IDENTITY


async def test_over_http_a_wrong_token_is_refused(http_url: str) -> None:
    for headers in (bearer("wrong", "UBOB"), {USER_HEADER: "UBOB"}):
        async with httpx2.AsyncClient(timeout=10) as http:
            response = await http.post(
                http_url,
                json={"jsonrpc": "2.0", "id": 1, "method": "ping"},
                headers=headers,
            )
        assert response.status_code == 401
        assert response.headers["www-authenticate"].startswith("Bearer")


@pytest.mark.parametrize("http_url", [HttpAuth(None, {})], indirect=True)
async def test_over_http_on_loopback_without_tokens_the_header_is_needed(http_url: str) -> None:
    async with over_http(http_url, **{USER_HEADER: "UCAROL"}) as carol:
        assert texts(await carol.call_tool("get_channel_history", {"channel": "DBC"}))
    async with over_http(http_url) as nobody:
        refused = await nobody.call_tool("search_messages", {"query": "billing"})
        assert reason(refused) == NO_IDENTITY
