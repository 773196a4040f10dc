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
import os
import signal
import sys
import time
from functools import partial
from pathlib import Path
from typing import Any

from rich.console import Console

from heron.bench.database import drop, recreate
from heron.bench.stats import LatencySummary, percentile
from heron.config import Config
from heron.database.connection import DatabaseConnection, resolve_database_url
from heron.testing.anthropic import FakeAnthropic, text
from heron.testing.slack import ApiCall, SlackFake

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
    """Heron runs as `heron run` in a process of its own, so that the fakes (threads of
    this one) do not share its interpreter. A question is answered when its reply is
    posted (short, quick answers) or its stream is closed."""
    DatabaseConnection(database_url).create_tables()
    asker = slack.add_user("bench").id
    channel = slack.add_channel("bench", members=[asker]).id
    env = {k: v for k, v in os.environ.items() if not k.startswith(("SLACK_", "ANTHROPIC_"))}
    env |= {
        "DATABASE_URL": database_url,
        "SLACK_BOT_TOKEN": slack.bot_token,
        "SLACK_APP_TOKEN": slack.app_token,
        "SLACK_API_URL": slack.api_url,
        "ANTHROPIC_API_KEY": claude.api_key,
        "ANTHROPIC_BASE_URL": claude.base_url,
        "HERON_MODEL": "anthropic:claude-sonnet-4-6",
        "HERON_HTTP_PORT": "0",
        "HERON_QUESTIONS_PER_USER_PER_HOUR": "0",
        "HERON_DAILY_SPEND_LIMIT_USD": "0",
        "HERON_EMBEDDING_PROVIDER": config.heron_embedding_provider,
        "HERON_LOG_LEVEL": "WARNING",
        "HERON_LOG_FORMAT": "json",
    }
    env.pop("HERON_MCP_CONFIG", None)
    heron = await asyncio.create_subprocess_exec(
        sys.executable,
        "-m",
        "heron",
        "run",
        env=env,
        stdout=asyncio.subprocess.DEVNULL,
        stderr=asyncio.subprocess.DEVNULL,
    )
    totals: list[float] = []
    model: list[float] = []
    try:
        await slack.wait_connected_async(timeout=60)
        for n in range(warmup + questions):
            served_before = claude.served_seconds
            started = time.perf_counter()
            slack.post_user_message(channel, asker, f"<@{slack.bot_user_id}> question {n}")
            await slack.wait_for_calls_async(partial(answered, n + 1), 60)
            if n >= warmup:
                totals.append(time.perf_counter() - started)
                model.append(claude.served_seconds - served_before)
            # Let the answer's tail (done reaction, the echo of the reply) finish, so that
            # each question is timed alone, as people ask them.
            await slack.wait_for_call_async("reactions.add", count=n + 1, timeout=60)
            for delivery in slack.deliveries[-3:]:
                await slack.wait_for_event_ack_async(delivery.event_id, timeout=60)
    finally:
        heron.send_signal(signal.SIGINT)
        await asyncio.wait_for(heron.wait(), timeout=60)
    return totals, model


def answered(count: int, calls: list[ApiCall]) -> bool:
    """At least `count` replies delivered: posted, or streamed and closed."""
    return sum(call.method in ("chat.postMessage", "chat.stopStream") for call in calls) >= count
