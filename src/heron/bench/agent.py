"""`heron bench agent`: Heron's own overhead per answered question, model time excluded.

The whole production path runs: a mention goes from the Slack fake over Socket Mode
through Bolt into the archive and the queue, a worker claims it, the agent builds its
prompt (memory, asker, MCP toolsets of Heron's own servers), calls the Anthropic fake
(which answers at once) and the outbox posts the reply back to the fake. A question's
overhead is from the fake sending the event to the fake receiving chat.postMessage, less
the time the fake spent in /v1/messages (the model's share, here a loopback echo).
"""

from __future__ import annotations

import asyncio
import json
import time
from pathlib import Path
from typing import Any

from rich.console import Console

from heron.bench.database import drop, recreate
from heron.bench.stats import LatencySummary, percentile
from heron.config import Config
from heron.database.connection import DatabaseConnection, resolve_database_url
from heron.runtime import Runtime
from heron.testing.anthropic import FakeAnthropic, text
from heron.testing.slack import SlackFake

BENCH_DATABASE = "heron_bench_agent"
TARGET_P95_MS = 20.0


def run_agent_benchmark(
    config: Config, *, questions: int, warmup: int, output: Path, console: Console
) -> dict[str, Any]:
    """Answer `questions` mentions one after another; print and save p50/p95 overhead."""
    server = resolve_database_url(config.database_url)
    bench = recreate(server, BENCH_DATABASE)
    try:
        with SlackFake() as slack, FakeAnthropic(default=text("Done.")) as claude:
            samples, model = asyncio.run(
                _measure(config, bench.url_string, slack, claude, questions, warmup)
            )
    finally:
        drop(server, BENCH_DATABASE)
    overhead = [total - spent for total, spent in zip(samples, model, strict=True)]
    summary = LatencySummary.of_seconds(overhead)
    assert summary is not None
    p95 = percentile([s * 1000 for s in overhead], 95)
    result: dict[str, Any] = {
        "benchmark": "agent overhead per answered question (model time excluded)",
        "questions": len(overhead),
        "overhead_ms": {
            "p50": summary.p50_ms,
            "p95": p95,
            "p99": summary.p99_ms,
            "max": summary.max_ms,
        },
        "model_ms_p50": percentile([m * 1000 for m in model], 50),
        "end_to_end_ms_p50": percentile([s * 1000 for s in samples], 50),
        "target": f"p95 <= {TARGET_P95_MS:g} ms",
    }
    output.parent.mkdir(parents=True, exist_ok=True)
    output.write_text(json.dumps(result, indent=2) + "\n")
    console.print(
        f"agent overhead over {len(overhead)} questions: p50 {summary.p50_ms:.1f} ms, "
        f"p95 {p95:.1f} ms, p99 {summary.p99_ms:.1f} ms (target p95 <= {TARGET_P95_MS:g} ms: "
        f"{'met' if p95 <= TARGET_P95_MS else 'NOT met'}); model share p50 "
        f"{result['model_ms_p50']:.1f} ms; results in {output}"
    )
    return result


async def _measure(
    config: Config,
    database_url: str,
    slack: SlackFake,
    claude: FakeAnthropic,
    questions: int,
    warmup: int,
) -> tuple[list[float], list[float]]:
    settings = config.model_copy(
        update={
            "database_url": database_url,
            "slack_bot_token": _secret(slack.bot_token),
            "slack_app_token": _secret(slack.app_token),
            "slack_signing_secret": None,
            "slack_api_url": slack.api_url,
            "anthropic_api_key": _secret(claude.api_key),
            "anthropic_base_url": claude.base_url,
            "heron_model": "anthropic:claude-sonnet-4-6",
            "heron_http_port": 0,
            "heron_questions_per_user_per_hour": 0,
            "heron_daily_spend_limit_usd": 0.0,
            "heron_mcp_config": None,
        }
    )
    db = DatabaseConnection(database_url)
    db.create_tables()
    asker = slack.add_user("bench").id
    channel = slack.add_channel("bench", members=[asker]).id
    runtime = Runtime(settings, db)
    await runtime.start()
    totals: list[float] = []
    model: list[float] = []
    try:
        await slack.wait_connected_async(timeout=30)
        for n in range(warmup + questions):
            before = len(slack.calls_to("chat.postMessage"))
            served_before = claude.served_seconds
            started = time.perf_counter()
            slack.post_user_message(channel, asker, f"<@{slack.bot_user_id}> question {n}")
            await slack.wait_for_call_async("chat.postMessage", count=before + 1, timeout=30)
            if n >= warmup:
                totals.append(time.perf_counter() - started)
                model.append(claude.served_seconds - served_before)
    finally:
        await runtime.stop()
        db.dispose()
    return totals, model


def _secret(value: str) -> Any:
    from pydantic import SecretStr

    return SecretStr(value)
