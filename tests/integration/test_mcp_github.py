"""The heron-github MCP server, driven by the real MCP client against a loopback fake GitHub:
in process, and `heron mcp github` over stdio and over streamable HTTP."""

from __future__ import annotations

import json
import os
import subprocess
import sys
import time
import urllib.error
import urllib.request
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx2
import pytest
from mcp.client import Client
from mcp.client.stdio import StdioServerParameters
from mcp.client.streamable_http import streamable_http_client
from mcp.server.mcpserver import MCPServer
from mcp_types import CallToolResult, TextContent

from heron.errors import ConfigError
from heron.github.allow import AllowList, parse_repos
from heron.github.client import GitHubClient
from heron.github.client import _iso as iso
from heron.mcp_servers.github import build_github_server, main
from heron.testing.github import FakeGitHub
from tests.conftest import wait_until
from tests.integration.test_mcp_docs import free_port, healthy

TOKEN = "ghp_test_token"
TOOLS = {
    "search_code",
    "search_issues",
    "get_file",
    "get_issue",
    "recent_commits",
    "list_releases",
}
README = "# Tool\n\nRun `tool --fast` to go fast. Ünïcode too.\n"


@pytest.fixture
def github() -> Iterator[FakeGitHub]:
    """acme/tool and acme/site (org acme) and other/lib, with files, issues, commits, releases."""
    with FakeGitHub(token=TOKEN) as fake:
        fake.add_repo(
            "acme/tool",
            files={
                "README.md": README,
                "src/fast.py": "def go_fast():\n    return 'fast path'\n",
                "logo.png": b"\x89PNG\r\n\x1a\n\x00\x00binary",
            },
        )
        fake.add_file("acme/tool", "README.md", "# Tool v1\n", ref="v1")
        fake.add_repo("acme/site", files={"index.md": "fast website"})
        fake.add_repo("other/lib", files={"fast.c": "int fast(void);"})
        fake.add_issue(
            "acme/tool",
            1,
            "Crash on startup",
            "It crashes when fast mode is on.",
            labels=("bug",),
            comments=(("alice", "Same here"), ("bob", "Fixed in #2")),
        )
        fake.add_issue(
            "acme/tool",
            2,
            "Fix fast mode crash",
            "Closes #1",
            state="closed",
            pull=True,
            comments=(("carol", "Looks good"),),
            reviews=(("carol", "APPROVED", "Ship it"), ("dave", "COMMENTED", "nit")),
        )
        fake.add_issue("other/lib", 7, "fast crash elsewhere")
        for message in ("first", "second", "third"):
            fake.add_commit("acme/tool", message, author="alice")
        fake.add_commit("acme/tool", "on a branch", branch="dev")
        fake.add_release("acme/tool", "v1.0.0", "One", "First release")
        fake.add_release("acme/tool", "v1.1.0-rc1", body="Candidate", prerelease=True)
        yield fake


def server(
    fake: FakeGitHub, token: str | None = TOKEN, allowed: str = "acme/tool,acme/site"
) -> MCPServer:
    """heron-github over the fake, allowing `allowed` (GITHUB_REPOS syntax)."""
    return build_github_server(
        GitHubClient(token, fake.api_url), AllowList.parse(parse_repos(allowed))
    )


def payload(result: CallToolResult) -> Any:
    assert not result.is_error, result.content
    assert result.structured_content is not None
    return result.structured_content


def error_text(result: CallToolResult) -> str:
    assert result.is_error, result.structured_content
    return " ".join(c.text for c in result.content if isinstance(c, TextContent))


async def test_tools_list_shows_the_six_tools_with_schemas(github: FakeGitHub) -> None:
    async with Client(server(github)) as client:
        tools = {tool.name: tool for tool in (await client.list_tools()).tools}
    assert set(tools) == TOOLS
    for tool in tools.values():
        assert tool.description, tool.name
        assert tool.output_schema is not None, tool.name
    assert tools["search_code"].input_schema["required"] == ["query"]
    assert tools["get_file"].input_schema["required"] == ["repo", "path"]
    assert tools["get_issue"].input_schema["required"] == ["repo", "number"]
    assert tools["search_issues"].input_schema["properties"]["limit"]["default"] == 10
    assert "description" in tools["search_issues"].input_schema["properties"]["query"]


async def test_each_tool_returns_the_fakes_data(github: FakeGitHub) -> None:
    async with Client(server(github)) as client:
        code = payload(await client.call_tool("search_code", {"query": "fast"}))["result"]
        assert {(hit["repo"], hit["path"]) for hit in code} == {
            ("acme/tool", "README.md"),
            ("acme/tool", "src/fast.py"),
            ("acme/site", "index.md"),
        }
        assert any("tool --fast" in f for hit in code for f in hit["fragments"])

        issues = payload(await client.call_tool("search_issues", {"query": "crash"}))["result"]
        assert [(i["repo"], i["number"], i["is_pull_request"]) for i in issues] == [
            ("acme/tool", 1, False),
            ("acme/tool", 2, True),
        ]
        closed = payload(
            await client.call_tool("search_issues", {"query": "crash", "state": "closed"})
        )["result"]
        assert [i["number"] for i in closed] == [2]
        only_issues = payload(
            await client.call_tool("search_issues", {"query": "crash", "kind": "issue"})
        )["result"]
        assert [i["number"] for i in only_issues] == [1]

        readme = payload(
            await client.call_tool("get_file", {"repo": "acme/tool", "path": "README.md"})
        )
        assert readme["text"] == README  # base64 decoded, UTF-8 intact
        assert readme["size"] == len(README.encode())
        old = payload(
            await client.call_tool(
                "get_file", {"repo": "acme/tool", "path": "README.md", "ref": "v1"}
            )
        )
        assert (old["text"], old["ref"]) == ("# Tool v1\n", "v1")

        issue = payload(await client.call_tool("get_issue", {"repo": "acme/tool", "number": 1}))
        assert (issue["title"], issue["is_pull_request"], issue["labels"]) == (
            "Crash on startup",
            False,
            ["bug"],
        )
        assert [(c["author"], c["body"]) for c in issue["comments"]] == [
            ("alice", "Same here"),
            ("bob", "Fixed in #2"),
        ]
        assert issue["reviews"] == []
        pull = payload(await client.call_tool("get_issue", {"repo": "acme/tool", "number": 2}))
        assert pull["is_pull_request"]
        assert pull["state"] == "closed"
        assert [(r["author"], r["state"]) for r in pull["reviews"]] == [
            ("carol", "APPROVED"),
            ("dave", "COMMENTED"),
        ]

        commits = payload(
            await client.call_tool("recent_commits", {"repo": "acme/tool", "limit": 2})
        )["result"]
        assert [c["message"] for c in commits] == ["third", "second"]
        assert commits[0]["author"] == "alice"
        assert len(commits[0]["sha"]) == 40
        dev = payload(
            await client.call_tool("recent_commits", {"repo": "acme/tool", "branch": "dev"})
        )
        assert [c["message"] for c in dev["result"]] == ["on a branch"]

        releases = payload(await client.call_tool("list_releases", {"repo": "acme/tool"}))
        assert [(r["tag"], r["name"], r["prerelease"]) for r in releases["result"]] == [
            ("v1.1.0-rc1", "v1.1.0-rc1", True),
            ("v1.0.0", "One", False),
        ]

    pulls = [r for r in github.requests if r.path == "/search/issues"]
    assert all(r.query["per_page"] == "10" for r in pulls)
    reviews = [r.path for r in github.requests if r.path.endswith("/reviews")]
    assert reviews == ["/repos/acme/tool/pulls/2/reviews"]  # not fetched for an issue


async def test_allow_list_is_enforced(github: FakeGitHub) -> None:
    async with Client(server(github, allowed="acme,other/lib")) as client:
        github.requests.clear()
        outside = await client.call_tool("get_file", {"repo": "evil/repo", "path": "README.md"})
        message = error_text(outside)
        assert "'evil/repo' is not in the allowed list (acme, other/lib)" in message
        assert "GITHUB_REPOS" in message
        refused: list[tuple[str, dict[str, Any]]] = [
            ("get_issue", {"repo": "evil/repo", "number": 1}),
            ("recent_commits", {"repo": "evil/repo"}),
            ("list_releases", {"repo": "evil/repo"}),
            ("search_issues", {"query": "crash", "repo": "evil/repo"}),
            ("search_code", {"query": "fast", "repo": "evil/repo"}),
        ]
        for tool, args in refused:
            assert "not in the allowed list" in error_text(await client.call_tool(tool, args))
        sneaky = await client.call_tool("search_issues", {"query": "crash repo:evil/repo"})
        assert "must not contain repo:" in error_text(sneaky)
        assert "owner/name" in error_text(
            await client.call_tool("get_file", {"repo": "acme", "path": "x"})
        )
        assert github.requests == []  # refused before asking GitHub

        # Case differs from the allow-list entry: still allowed (GitHub names are case-blind).
        found = payload(await client.call_tool("list_releases", {"repo": "ACME/tool"}))
        assert len(found["result"]) == 2

        await client.call_tool("search_issues", {"query": "crash", "state": "open"})
        await client.call_tool("search_code", {"query": "fast", "repo": "other/lib"})
        issues = payload(await client.call_tool("search_issues", {"query": "crash"}))["result"]
        assert {(i["repo"], i["number"]) for i in issues} == {
            ("acme/tool", 1),
            ("acme/tool", 2),
            ("other/lib", 7),
        }

    queries = [r.query["q"] for r in github.requests if r.path.startswith("/search/")]
    assert queries == [
        "crash state:open org:acme repo:other/lib",
        "fast repo:other/lib",
        "crash org:acme repo:other/lib",
    ]


async def test_rate_limits_and_http_errors_are_tool_errors(github: FakeGitHub) -> None:
    reset = time.time() + 1800
    async with Client(server(github)) as client:
        github.fail_next(403, reset=reset)
        limited = error_text(await client.call_tool("list_releases", {"repo": "acme/tool"}))
        assert "rate limit" in limited
        assert f"resets at {iso(reset)}" in limited

        github.fail_next(429, retry_after=60)
        slow = error_text(await client.call_tool("recent_commits", {"repo": "acme/tool"}))
        assert "retry after 60 s" in slow

        # A short retry-after is retried once, and only once.
        github.requests.clear()
        github.fail_next(429, retry_after=0.1)
        ok = payload(await client.call_tool("list_releases", {"repo": "acme/tool"}))
        assert len(ok["result"]) == 2
        assert len(github.requests) == 2
        github.requests.clear()
        github.fail_next(429, retry_after=0.1, times=2)
        twice = error_text(await client.call_tool("list_releases", {"repo": "acme/tool"}))
        assert "retry after 0.1 s" in twice
        assert len(github.requests) == 2

        github.fail_next(500)
        assert "GitHub is failing (HTTP 500" in error_text(
            await client.call_tool("list_releases", {"repo": "acme/tool"})
        )
        github.fail_next(403)
        assert "refused access" in error_text(
            await client.call_tool("list_releases", {"repo": "acme/tool"})
        )
        missing = await client.call_tool("get_issue", {"repo": "acme/tool", "number": 99})
        assert "not found on GitHub: /repos/acme/tool/issues/99 (404)" in error_text(missing)
        no_ref = await client.call_tool(
            "get_file", {"repo": "acme/tool", "path": "README.md", "ref": "nope"}
        )
        assert "404" in error_text(no_ref)
        bad_limit = await client.call_tool("list_releases", {"repo": "acme/tool", "limit": 0})
        assert "limit must be between 1 and 50" in error_text(bad_limit)

        # Still serving after all of that.
        assert len((await client.list_tools()).tools) == 6
        again = payload(await client.call_tool("get_issue", {"repo": "acme/tool", "number": 1}))
        assert again["number"] == 1


async def test_files_that_cannot_be_returned(github: FakeGitHub) -> None:
    github.add_file("acme/tool", "big.txt", "x" * 1_000_001)
    async with Client(server(github)) as client:
        binary = await client.call_tool("get_file", {"repo": "acme/tool", "path": "logo.png"})
        assert "binary file" in error_text(binary)
        big = await client.call_tool("get_file", {"repo": "acme/tool", "path": "big.txt"})
        assert "too large" in error_text(big)
        folder = await client.call_tool("get_file", {"repo": "acme/tool", "path": "src"})
        assert "is a directory" in error_text(folder)
        assert "fast.py" in error_text(folder)


async def test_token_is_sent_and_anonymous_works(github: FakeGitHub) -> None:
    async with Client(server(github)) as client:
        await client.call_tool("list_releases", {"repo": "acme/tool"})
    sent = github.requests[-1].headers
    assert sent["Authorization"] == f"Bearer {TOKEN}"
    assert sent["X-GitHub-Api-Version"] == "2022-11-28"

    github.requests.clear()
    async with Client(server(github, token=None)) as client:
        anonymous = payload(await client.call_tool("list_releases", {"repo": "acme/tool"}))
        assert len(anonymous["result"]) == 2
        needs_token = await client.call_tool("search_code", {"query": "fast"})
        assert "search_code needs GITHUB_TOKEN" in error_text(needs_token)
        github.fail_next(403, reset=time.time() + 60)
        limited = await client.call_tool("list_releases", {"repo": "acme/tool"})
        assert "set GITHUB_TOKEN for a higher limit" in error_text(limited)
    assert all("Authorization" not in r.headers for r in github.requests)

    async with Client(server(github, token="wrong")) as client:
        rejected = await client.call_tool("list_releases", {"repo": "acme/tool"})
        assert "rejected the credentials (401" in error_text(rejected)


async def test_unreachable_github_is_a_tool_error() -> None:
    with FakeGitHub() as fake:
        url = fake.api_url
    client = GitHubClient(TOKEN, url)
    allow = AllowList.parse(["acme"])
    async with Client(build_github_server(client, allow)) as mcp:
        down = await mcp.call_tool("list_releases", {"repo": "acme/tool"})
        assert "cannot reach GitHub" in error_text(down)


@pytest.mark.parametrize(
    ("entries", "problem"),
    [
        ([], "GITHUB_REPOS: required"),
        (["  ", ""], "GITHUB_REPOS: required"),
        (["a/b/c"], "is not 'org' or 'org/repo'"),
        (["bad name"], "is not 'org' or 'org/repo'"),
    ],
)
def test_allow_list_configuration(entries: list[str], problem: str) -> None:
    with pytest.raises(ConfigError, match=problem):
        AllowList.parse(entries)


def test_main_refuses_bad_configuration(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    monkeypatch.chdir(tmp_path)  # no .env of the developer's
    with pytest.raises(ConfigError, match="GITHUB_REPOS"):
        main("stdio", allowed=[])
    with pytest.raises(ConfigError, match="transport"):
        main("sse", allowed=["acme"])
    with pytest.raises(ConfigError, match="GITHUB_API_URL"):
        main("stdio", allowed=["acme"], api_url="api.github.com")
    monkeypatch.delenv("HERON_MCP_TOKEN", raising=False)
    with pytest.raises(ConfigError, match="HERON_MCP_TOKEN"):
        main("http", "0.0.0.0", 0, allowed=["acme"])


# -- `heron mcp github` as a process: stdio and streamable HTTP ------------------------------


def heron_environment(**settings: str) -> dict[str, str]:
    """This process's environment without Heron's or GitHub's settings, plus `settings`."""
    kept = {k: v for k, v in os.environ.items() if not k.startswith(("HERON_", "GITHUB_"))}
    return kept | {"HERON_LOG_LEVEL": "WARNING"} | settings


async def test_heron_mcp_github_over_stdio(github: FakeGitHub, tmp_path: Path) -> None:
    environment = heron_environment(
        GITHUB_API_URL=github.api_url, GITHUB_REPOS="acme/tool", GITHUB_TOKEN=TOKEN
    )
    params = StdioServerParameters(
        command=sys.executable,
        args=["-m", "heron", "mcp", "github", "--transport", "stdio"],
        env=environment,
        cwd=str(tmp_path),
    )
    async with Client(params, read_timeout_seconds=60) as client:
        assert {tool.name for tool in (await client.list_tools()).tools} == TOOLS
        readme = payload(
            await client.call_tool("get_file", {"repo": "acme/tool", "path": "README.md"})
        )
        assert readme["text"] == README
        issue = payload(await client.call_tool("get_issue", {"repo": "acme/tool", "number": 2}))
        assert [r["state"] for r in issue["reviews"]] == ["APPROVED", "COMMENTED"]
        site = await client.call_tool("list_releases", {"repo": "acme/site"})
        assert "'acme/site' is not in the allowed list (acme/tool)" in error_text(site)
        github.fail_next(403, reset=time.time() + 600)
        limited = await client.call_tool("recent_commits", {"repo": "acme/tool"})
        assert "rate limit" in error_text(limited)
        # still serving after the errors
        releases = payload(await client.call_tool("list_releases", {"repo": "acme/tool"}))
        assert [r["tag"] for r in releases["result"]] == ["v1.1.0-rc1", "v1.0.0"]
    assert {r.headers.get("Authorization") for r in github.requests} == {f"Bearer {TOKEN}"}


@pytest.fixture
def github_over_http(github: FakeGitHub, tmp_path: Path) -> Iterator[tuple[str, str]]:
    """`heron mcp github --transport http` configured by a .env file alone (the bearer token
    included); yields (url, token)."""
    token = "mcp-token-from-dotenv"
    (tmp_path / ".env").write_text(
        f"GITHUB_API_URL={github.api_url}\nGITHUB_REPOS=acme\n"
        f"GITHUB_TOKEN={TOKEN}\nHERON_MCP_TOKEN={token}\n"
    )
    port = free_port()
    command = ["mcp", "github", "--transport", "http", "--host", "127.0.0.1", "--port", str(port)]
    process = subprocess.Popen(
        [sys.executable, "-m", "heron", *command],
        cwd=tmp_path,
        env=heron_environment(),
        stdout=subprocess.DEVNULL,
        stderr=subprocess.PIPE,
        text=True,
    )
    base = f"http://127.0.0.1:{port}"
    try:
        wait_until(
            lambda: process.poll() is not None or healthy(f"{base}/health"),
            timeout=60,
            what="heron mcp github over HTTP",
        )
        assert process.poll() is None, process.communicate()[1]
        yield f"{base}/mcp", token
    finally:
        process.terminate()
        process.communicate(timeout=20)


async def test_heron_mcp_github_over_http(
    github: FakeGitHub, github_over_http: tuple[str, str]
) -> None:
    url, token = github_over_http
    async with (
        httpx2.AsyncClient(headers={"Authorization": f"Bearer {token}"}, timeout=30) as http,
        Client(streamable_http_client(url, http_client=http)) as client,
    ):
        assert {tool.name for tool in (await client.list_tools()).tools} == TOOLS
        code = payload(await client.call_tool("search_code", {"query": "fast"}))["result"]
        assert {(hit["repo"], hit["path"]) for hit in code} == {
            ("acme/tool", "README.md"),
            ("acme/tool", "src/fast.py"),
            ("acme/site", "index.md"),
        }
        outside = await client.call_tool("get_file", {"repo": "other/lib", "path": "fast.c"})
        assert "not in the allowed list (acme)" in error_text(outside)
    searches = [r.query["q"] for r in github.requests if r.path == "/search/code"]
    assert searches == ["fast org:acme"]


def test_heron_mcp_github_over_http_refuses_a_wrong_token(
    github_over_http: tuple[str, str],
) -> None:
    url, _ = github_over_http
    for authorization in ("Bearer wrong", None):
        request = urllib.request.Request(
            url,
            data=json.dumps({"jsonrpc": "2.0", "id": 1, "method": "ping"}).encode(),
            headers={"Content-Type": "application/json"}
            | ({"Authorization": authorization} if authorization else {}),
            method="POST",
        )
        with pytest.raises(urllib.error.HTTPError) as refused:
            urllib.request.urlopen(request, timeout=5)
        assert refused.value.code == 401
        refused.value.close()
