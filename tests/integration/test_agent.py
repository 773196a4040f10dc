"""The agent end to end: the Slack fake delivers a mention over Socket Mode, the worker
runs pydantic-ai against the Anthropic fake, tools go through Heron's MCP servers, and
the answer arrives once in the thread with its usage recorded."""

from __future__ import annotations

import json
from collections.abc import AsyncIterator, Iterator
from contextlib import asynccontextmanager
from pathlib import Path
from typing import Any

import psycopg
import pytest

from heron.database.connection import DatabaseConnection
from heron.errors import ConfigError
from heron.runtime import Runtime
from heron.testing.anthropic import FakeAnthropic, RecordedRequest, Reply, error, text, tool_use
from heron.testing.slack import SlackFake
from tests.conftest import eventually, make_config, rows


@pytest.fixture
def slack() -> Iterator[SlackFake]:
    with SlackFake() as fake:
        yield fake


@pytest.fixture
def claude() -> Iterator[FakeAnthropic]:
    with FakeAnthropic() as fake:
        yield fake


@asynccontextmanager
async def heron(
    database_url: str, slack: SlackFake, claude: FakeAnthropic, **settings: Any
) -> AsyncIterator[Runtime]:
    config = make_config(
        database_url,
        slack_bot_token=slack.bot_token,
        slack_app_token=slack.app_token,
        slack_api_url=slack.api_url,
        anthropic_api_key=claude.api_key,
        anthropic_base_url=claude.base_url,
        heron_model="anthropic:claude-sonnet-4-6",
        heron_model_retries=0,
        heron_http_port=0,
        heron_embedding_provider="hashing",
        worker_pool_size=2,
        **settings,
    )
    db = DatabaseConnection(database_url)
    runtime = Runtime(config, db)
    await runtime.start()
    try:
        yield runtime
    finally:
        await runtime.stop()
        db.dispose()


def team(slack: SlackFake) -> tuple[str, str, str]:
    """Ada and Bob in #eng with the bot; Bob alone in a private channel."""
    ada = slack.add_user("ada", real_name="Ada Lovelace", tz="Europe/London").id
    bob = slack.add_user("bob").id
    eng = slack.add_channel("eng", members=[ada, bob]).id
    slack.add_channel("secret", private=True, members=[bob])
    return ada, bob, eng


def quote_tool_results(request: RecordedRequest) -> Reply | None:
    """After a tool call, answer with what the tool returned (as Claude would cite it)."""
    results = request.tool_results
    if not results:
        return None
    return text(f"From the archive: {results[-1].content[:3000]}")


async def test_a_mention_is_answered_once_with_a_tool_result_and_one_usage_row(
    database_url: str, slack: SlackFake, claude: FakeAnthropic
) -> None:
    ada, bob, eng = team(slack)
    claude.script(tool_use("search_messages", {"query": "failover runbook"}))
    claude.responder = quote_tool_results
    async with heron(database_url, slack, claude):
        slack.post_user_message(eng, bob, "the failover runbook lives at wiki/failover")
        slack.post_user_message("secret", bob, "failover runbook password: hunter2")
        await eventually(lambda: len(rows(database_url, "SELECT 1 FROM slack_messages")) == 2)
        question = slack.post_user_message(
            eng, ada, f"<@{slack.bot_user_id}> where is the failover runbook?"
        )
        await eventually(lambda: len(slack.bot_replies(eng, question["ts"])) == 1, 30, "reply")
        questions = "SELECT status FROM events WHERE event_type = 'slack.question'"
        await eventually(lambda: rows(database_url, questions) == [{"status": "completed"}])
    (reply,) = slack.bot_replies(eng, question["ts"])
    assert "wiki/failover" in reply["text"]
    # Streamed: opened, appended to, closed with the metadata that makes retries safe.
    assert len(slack.calls_to("chat.startStream")) == 1
    assert slack.calls_to("chat.appendStream")
    assert reply["metadata"]["event_payload"]["part"] == 0
    assert slack.calls_to("chat.postMessage") == []
    first, second = claude.requests
    assert "Ada Lovelace" in first.system_prompt
    assert "where is the failover runbook?" in (first.last_user_text or "")
    assert {"search_messages", "search_docs"} <= set(first.tool_names)
    (result,) = second.tool_results
    assert "wiki/failover" in result.content
    assert "hunter2" not in result.content  # Ada cannot read Bob's private channel
    (usage,) = rows(database_url, "SELECT * FROM agent_usage")
    assert usage["outcome"] == "answered"
    assert (usage["requests"], usage["tool_calls"]) == (2, 1)
    assert usage["input_tokens"] > 0
    assert usage["output_tokens"] > 0
    assert usage["cost_usd"] > 0
    assert usage["user_id"] == ada


async def test_an_overloaded_model_is_retried_then_the_asker_gets_one_apology(
    database_url: str, slack: SlackFake, claude: FakeAnthropic
) -> None:
    ada, _, eng = team(slack)
    claude.default = error(529, "Overloaded")
    async with heron(database_url, slack, claude, max_retry_count=1):
        question = slack.post_user_message(eng, ada, f"<@{slack.bot_user_id}> anyone there?")
        await eventually(lambda: len(slack.bot_replies(eng, question["ts"])) == 1, 30, "apology")
        await eventually(
            lambda: rows(database_url, "SELECT status FROM events") == [{"status": "completed"}]
        )
    (reply,) = slack.bot_replies(eng, question["ts"])
    assert "could not answer" in reply["text"]
    assert "reference: event" in reply["text"]
    assert len(claude.requests) == 2  # one per attempt
    outcomes = [r["outcome"] for r in rows(database_url, "SELECT outcome FROM event_attempts")]
    assert outcomes == ["retry", "completed"]
    usage = rows(database_url, "SELECT outcome, error FROM agent_usage ORDER BY id")
    assert [u["outcome"] for u in usage] == ["failed", "failed"]
    assert "Overloaded" in usage[0]["error"]


async def test_the_daily_spend_cap_answers_politely_without_asking_the_model(
    database_url: str, slack: SlackFake, claude: FakeAnthropic
) -> None:
    ada, _, eng = team(slack)
    with psycopg.connect(database_url) as conn:
        conn.execute(
            "INSERT INTO agent_usage (model, outcome, cost_usd) VALUES ('x', 'answered', 25)"
        )
    async with heron(database_url, slack, claude, heron_daily_spend_limit_usd=20):
        question = slack.post_user_message(eng, ada, f"<@{slack.bot_user_id}> one more?")
        await eventually(lambda: len(slack.bot_replies(eng, question["ts"])) == 1, 30, "reply")
    assert "today's budget" in slack.bot_replies(eng, question["ts"])[0]["text"]
    assert claude.requests == []


async def test_the_per_user_rate_limit(
    database_url: str, slack: SlackFake, claude: FakeAnthropic
) -> None:
    ada, bob, eng = team(slack)
    claude.default = text("Sure.")
    async with heron(database_url, slack, claude, heron_questions_per_user_per_hour=1):
        first = slack.post_user_message(eng, ada, f"<@{slack.bot_user_id}> first?")
        await eventually(lambda: len(slack.bot_replies(eng, first["ts"])) == 1, 30, "first")
        second = slack.post_user_message(eng, ada, f"<@{slack.bot_user_id}> second?")
        by_bob = slack.post_user_message(eng, bob, f"<@{slack.bot_user_id}> mine?")
        for ts in (second["ts"], by_bob["ts"]):
            await eventually(lambda ts=ts: len(slack.bot_replies(eng, ts)) == 1, 30, "replies")
    assert "limit here" in slack.bot_replies(eng, second["ts"])[0]["text"]
    assert slack.bot_replies(eng, by_bob["ts"])[0]["text"] == "Sure."
    assert len(claude.requests) == 2


async def test_a_runaway_tool_loop_stops_at_the_request_limit(
    database_url: str, slack: SlackFake, claude: FakeAnthropic
) -> None:
    ada, _, eng = team(slack)
    claude.default = tool_use("list_channels", {})
    async with heron(database_url, slack, claude, heron_max_model_requests=2):
        question = slack.post_user_message(eng, ada, f"<@{slack.bot_user_id}> loop forever")
        await eventually(lambda: len(slack.bot_replies(eng, question["ts"])) == 1, 30, "reply")
    assert "narrow it down" in slack.bot_replies(eng, question["ts"])[0]["text"]
    assert len(claude.requests) == 2
    assert rows(database_url, "SELECT outcome FROM agent_usage") == [{"outcome": "limited"}]


async def test_a_broken_mcp_server_is_reported_and_the_agent_answers_without_it(
    database_url: str, slack: SlackFake, claude: FakeAnthropic, tmp_path: Path
) -> None:
    ada, _, eng = team(slack)
    config = tmp_path / "mcp.json"
    config.write_text(json.dumps({"mcpServers": {"broken": {"command": "/nonexistent/server"}}}))
    claude.default = text("Answered without it.")
    async with heron(database_url, slack, claude, heron_mcp_config=config):
        question = slack.post_user_message(eng, ada, f"<@{slack.bot_user_id}> hello?")
        await eventually(lambda: len(slack.bot_replies(eng, question["ts"])) == 1, 30, "reply")
    statuses = {r["name"]: r for r in rows(database_url, "SELECT * FROM mcp_server_status")}
    assert statuses["broken"]["ok"] is False
    assert statuses["broken"]["error"]
    assert statuses["slack"]["ok"] is True
    assert "search_messages" in statuses["slack"]["tools"]
    assert slack.bot_replies(eng, question["ts"])[0]["text"] == "Answered without it."
    assert slack.calls_to("chat.startStream") == []  # a short, quick answer is just posted


async def test_a_broken_prompt_override_stops_the_start(
    database_url: str, slack: SlackFake, claude: FakeAnthropic, tmp_path: Path
) -> None:
    (tmp_path / "system.j2").write_text("{{ nonsense.here }")
    with pytest.raises(ConfigError, match=r"system\.j2"):
        async with heron(database_url, slack, claude, heron_prompts_dir=tmp_path):
            pass


async def test_an_expired_stream_falls_back_to_updating_the_message(
    database_url: str, slack: SlackFake, claude: FakeAnthropic
) -> None:
    ada, _, eng = team(slack)
    slack.expire_streams(after_appends=1)
    long_answer = " ".join(f"word{n}" for n in range(400))
    claude.default = text([long_answer[i : i + 150] for i in range(0, len(long_answer), 150)])
    async with heron(database_url, slack, claude):
        question = slack.post_user_message(eng, ada, f"<@{slack.bot_user_id}> talk to me")
        await eventually(
            lambda: rows(database_url, "SELECT status FROM events") == [{"status": "completed"}],
            30,
            "the answer",
        )
    (reply,) = slack.bot_replies(eng, question["ts"])
    assert reply["text"].endswith("word399")
    assert slack.calls_to("chat.update")  # the fallback after the stream expired
    assert reply["metadata"]["event_payload"]["part"] == 0
