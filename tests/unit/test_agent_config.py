"""The agent's prompts and MCP server list: overrides, substitution, clear startup errors."""

from __future__ import annotations

import json
from datetime import UTC, datetime
from pathlib import Path

import pytest

from heron.agent.mcp_config import McpServerSpec, load_mcp_config
from heron.agent.memory import within_budget
from heron.agent.prompts import (
    PromptChannel,
    PromptContext,
    PromptMessage,
    Prompts,
    PromptTool,
    PromptUser,
)
from heron.errors import ConfigError

CONTEXT = PromptContext(
    user=PromptUser("U1", "Grace", "Grace Hopper", "America/New_York"),
    channel=PromptChannel("C1", "eng"),
    question="Where is the failover runbook?",
    history=[
        PromptMessage("Ada", "We moved the runbooks last week.", datetime(2026, 1, 1, tzinfo=UTC))
    ],
    tools=[PromptTool("search_messages", "Search Slack")],
    bot_name="heron",
    workspace_name="Acme",
    now=datetime(2026, 11, 26, 15, 30, tzinfo=UTC),
)


def test_the_shipped_prompts_carry_user_channel_time_tools_and_history() -> None:
    prompts = Prompts()
    system = prompts.system(CONTEXT)
    assert "Grace (Grace Hopper)" in system
    assert "10:30 (America/New_York)" in system  # the asker's local time
    assert "#eng" in system
    assert "- search_messages: Search Slack" in system
    assert "heron" in system
    user = prompts.user(CONTEXT)
    assert "Ada: We moved the runbooks last week." in user
    assert user.endswith("Where is the failover runbook?")


def test_a_prompt_is_overridden_file_by_file(tmp_path: Path) -> None:
    (tmp_path / "system.j2").write_text("You are {{ bot.name }} for {{ user.display_name }}.")
    prompts = Prompts(tmp_path)
    assert prompts.system(CONTEXT) == "You are heron for Grace."
    assert prompts.user(CONTEXT).endswith("Where is the failover runbook?")  # shipped one


@pytest.mark.parametrize(
    ("template", "problem"),
    [
        ("{% if user %}unclosed", "system.j2, line 1"),
        ("{{ user.no_such_field }}", "no_such_field"),
        ("{{ missing_variable }}", "missing_variable"),
    ],
)
def test_a_broken_override_is_a_startup_error(tmp_path: Path, template: str, problem: str) -> None:
    (tmp_path / "system.j2").write_text(template)
    with pytest.raises(ConfigError, match=problem):
        Prompts(tmp_path)


def test_history_is_cut_to_the_budget_keeping_the_newest() -> None:
    at = datetime(2026, 1, 1, tzinfo=UTC)
    newest_first = [PromptMessage("Ada", f"message {n} " + "x" * 400, at) for n in range(10)]
    kept = within_budget(newest_first, budget=400)
    assert 1 <= len(kept) < 10
    assert kept[-1].text.startswith("message 0")  # the newest, last in reading order
    assert within_budget(newest_first, budget=0) == []


def test_mcp_config_substitutes_the_environment_and_checks_entries(tmp_path: Path) -> None:
    path = tmp_path / "mcp.json"
    path.write_text(json.dumps({"mcpServers": {
        "linear": {"url": "https://mcp.linear.app/mcp", "allowed_tools": ["search_issues"],
                   "headers": {"Authorization": "Bearer ${LINEAR_TOKEN}"}},
        "files": {"command": "npx", "args": ["-y", "server-filesystem", "${DOCS}"]},
        "old": {"command": "x", "enabled": False},
    }}))  # fmt: skip
    specs = load_mcp_config(path, {"LINEAR_TOKEN": "lin_123", "DOCS": "/srv/docs"})
    linear = McpServerSpec(
        "linear",
        url="https://mcp.linear.app/mcp",
        headers={"Authorization": "Bearer lin_123"},
        allowed_tools=("search_issues",),
    )
    files = McpServerSpec("files", command="npx", args=("-y", "server-filesystem", "/srv/docs"))
    assert specs == [linear, files]
    assert [s.transport for s in specs] == ["http", "stdio"]


def test_mcp_config_reports_every_problem(tmp_path: Path) -> None:
    path = tmp_path / "mcp.json"
    path.write_text(json.dumps({"mcpServers": {
        "a": {"url": "https://x", "headers": {"Authorization": "Bearer ${NOPE}"}},
        "b": {"command": "x", "url": "https://y"},
        "c": {"url": "ftp://z"},
        "Bad Name": {"command": "x"},
    }}))  # fmt: skip
    with pytest.raises(ConfigError) as raised:
        load_mcp_config(path, {})
    problems = raised.value.problems
    assert len(problems) == 4
    assert "${NOPE} is not set" in problems[0]
    (tmp_path / "bad.json").write_text("{")
    with pytest.raises(ConfigError, match="not valid JSON"):
        load_mcp_config(tmp_path / "bad.json", {})
