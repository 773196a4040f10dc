"""Heron's MCP servers (docs, slack, github) as the MCP Inspector CLI, a third-party client,
sees them: `heron mcp <server>` over stdio, tools listed and called."""

from __future__ import annotations

import asyncio
import json
import os
import shutil
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path

import pytest

from heron.docsearch.embedding import HashingEmbedder
from heron.docsearch.ingest import ingest_path
from heron.docsearch.store import DocStore
from heron.queue.store import open_pool
from heron.slack.archive import Archive
from heron.testing.github import FakeGitHub
from tests.integration.test_slack_search import BOT, MESSAGES, seed

ROOT = Path(__file__).parents[2]
TOOLS = ROOT / ".tools"
INSPECTOR = TOOLS / "node_modules" / "@modelcontextprotocol" / "inspector"

pytestmark = pytest.mark.skipif(
    not INSPECTOR.exists() or shutil.which("npx") is None,
    reason="MCP Inspector not installed (`make test` installs it when npm is available)",
)


def inspector(
    database_url: str | None, *args: str, server: str = "docs", env: tuple[str, ...] = ()
) -> dict[str, object]:
    """Run the Inspector CLI against `heron mcp <server>` (stdio); its JSON answer."""
    heron = [sys.executable, "-m", "heron", "mcp", server]
    database = ("-e", f"DATABASE_URL={database_url}") if database_url else ()
    result = subprocess.run(
        [
            "npx",
            "--offline",
            "@modelcontextprotocol/inspector",
            "--cli",
            *database,
            "-e",
            "HERON_EMBEDDING_PROVIDER=hashing",
            "-e",
            "HERON_LOG_FORMAT=json",
            *(option for setting in env for option in ("-e", setting)),
            *heron,
            *args,
        ],
        cwd=TOOLS,
        capture_output=True,
        text=True,
        timeout=120,
        env=os.environ | {"npm_config_update_notifier": "false"},
    )
    assert result.returncode == 0, result.stderr
    parsed: dict[str, object] = json.loads(result.stdout)
    return parsed


def test_inspector_lists_and_calls_the_docs_tools(database_url, tmp_path):
    (tmp_path / "guide.md").write_text("# Guide\n\n## Backups\n\npg_dump writes a snapshot.\n")
    ingest_path(DocStore(database_url, HashingEmbedder()), tmp_path)

    listed = inspector(database_url, "--method", "tools/list")
    names = {tool["name"] for tool in listed["tools"]}  # type: ignore[attr-defined]
    assert names == {"search_docs", "get_document"}

    called = inspector(
        database_url,
        "--method",
        "tools/call",
        "--tool-name",
        "search_docs",
        "--tool-arg",
        "query=pg_dump snapshot",
        "--tool-arg",
        "limit=1",
    )
    assert called.get("isError") is not True
    assert "Backups" in json.dumps(called)


async def seed_archive(database_url: str) -> None:
    pool = open_pool(database_url, max_size=2, name="test-inspector-seed")
    await pool.open()
    try:
        await seed(Archive(pool, BOT))
    finally:
        await pool.close()


def test_inspector_lists_and_calls_the_slack_tools(database_url):
    asyncio.run(seed_archive(database_url))
    alice = ("HERON_MCP_SLACK_USER=UALICE",)

    listed = inspector(database_url, "--method", "tools/list", server="slack", env=alice)
    names = {tool["name"] for tool in listed["tools"]}  # type: ignore[attr-defined]
    assert "search_messages" in names
    assert "get_thread" in names

    called = inspector(
        database_url,
        "--method",
        "tools/call",
        "--tool-name",
        "search_messages",
        "--tool-arg",
        "query=billing patch",
        "--tool-arg",
        "limit=3",
        server="slack",
        env=alice,
    )
    assert called.get("isError") is not True
    shown = json.dumps(called)
    assert MESSAGES["review"][3] in shown  # Alice's DM with Bob
    assert "https://acme.slack.com/archives/DAB/p" in shown
    assert MESSAGES["party"][3] not in shown  # Bob and Carol's DM


GITHUB_TOKEN = "ghp_inspector"


@pytest.fixture
def github() -> Iterator[FakeGitHub]:
    with FakeGitHub(token=GITHUB_TOKEN) as fake:
        fake.add_repo("acme/tool", files={"README.md": "# Tool\n\nRun tool --fast.\n"})
        fake.add_issue("acme/tool", 3, "Slow start", "Startup takes a minute.", labels=("perf",))
        yield fake


def github_settings(fake: FakeGitHub) -> tuple[str, ...]:
    return (
        f"GITHUB_API_URL={fake.api_url}",
        "GITHUB_REPOS=acme/tool",
        f"GITHUB_TOKEN={GITHUB_TOKEN}",
    )


def test_inspector_lists_and_calls_the_github_tools(github):
    settings = github_settings(github)
    listed = inspector(None, "--method", "tools/list", server="github", env=settings)
    names = {tool["name"] for tool in listed["tools"]}  # type: ignore[attr-defined]
    assert names == {
        "search_code",
        "search_issues",
        "get_file",
        "get_issue",
        "recent_commits",
        "list_releases",
    }

    called = inspector(
        None,
        "--method",
        "tools/call",
        "--tool-name",
        "get_issue",
        "--tool-arg",
        "repo=acme/tool",
        "--tool-arg",
        "number=3",
        server="github",
        env=settings,
    )
    assert called.get("isError") is not True
    assert "Startup takes a minute." in json.dumps(called)
    assert github.requests[0].path == "/repos/acme/tool/issues/3"
    assert github.requests[0].headers["Authorization"] == f"Bearer {GITHUB_TOKEN}"

    refused = inspector(
        None,
        "--method",
        "tools/call",
        "--tool-name",
        "get_file",
        "--tool-arg",
        "repo=evil/repo",
        "--tool-arg",
        "path=README.md",
        server="github",
        env=settings,
    )
    assert refused.get("isError") is True  # a tool error, and the server answered it
    assert "not in the allowed list" in json.dumps(refused)
