"""`heron bench import`: Slack export import throughput (messages/s into the archive).

A synthetic export shaped like Slack's (users, public and private channels, a DM, one
file per channel and day, messages with blocks and author profiles, threads, reactions)
is written to a temporary folder and imported into a fresh database through the real
`import_export`, twice: the first run adds every message, the second (idempotence) none.
"""

from __future__ import annotations

import asyncio
import json
import os
import random
import tempfile
import time
import uuid
from collections.abc import Iterator
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import psycopg
from rich.console import Console
from sqlalchemy.engine import URL

from heron.bench.database import drop, recreate
from heron.bench.report import machine_info
from heron.config import Config
from heron.database.connection import resolve_database_url
from heron.database.migrate import migrate
from heron.queue.store import open_pool
from heron.slack.archive import Archive
from heron.slack.events import BotIdentity
from heron.slack.export_import import ExportSummary, import_export

BENCH_DATABASE = "heron_bench_slack"
TARGET_RATE = 20_000.0
_DAY = 86_400
_WORDS = (
    *("deploy", "vacuum", "replica", "index", "lock", "query"),
    *("plan", "backup", "table", "shard", "cache", "ship"),
)


def write_synthetic_export(
    root: Path, messages: int, *, channels: int = 20, users: int = 50, seed: int = 7
) -> Path:
    """An export folder with about `messages` messages (a tenth of them thread replies)."""
    rng = random.Random(seed)
    people = [_user(n) for n in range(users)]
    ids = [p["id"] for p in people]
    conversations = [_channel(n, ids, private=n % 5 == 4) for n in range(channels)]
    dm = {"id": "D000000001", "created": 1_600_000_000, "members": ids[:2]}
    _write(root / "users.json", people)
    _write(root / "channels.json", [c for c in conversations if not c["is_private"]])
    _write(root / "groups.json", [c for c in conversations if c["is_private"]])
    _write(root / "dms.json", [dm])
    _write(root / "mpims.json", [])
    folders = [c["name"] for c in conversations] + [dm["id"]]
    per_folder = max(1, messages // len(folders))
    for folder in folders:
        for day, listed in _days(per_folder, people, rng):
            _write(root / folder / f"{day}.json", listed)
    return root


def _days(
    count: int, people: list[dict[str, Any]], rng: random.Random
) -> Iterator[tuple[str, Any]]:
    """Days of up to 200 messages, every tenth message a reply to the one before."""
    start = 1_600_000_000
    for first in range(0, count, 200):
        at = start + (first // 200) * _DAY
        day = time.strftime("%Y-%m-%d", time.gmtime(at))
        listed: list[dict[str, Any]] = []
        for n in range(first, min(first + 200, count)):
            ts = f"{at + (n - first) * 60}.{n % 1_000_000:06d}"
            author = people[rng.randrange(len(people))]
            message = _message(ts, author, rng)
            if n % 10 == 9 and listed:
                parent = listed[-1]
                message["thread_ts"] = parent["ts"]
                parent.update(thread_ts=parent["ts"], reply_count=1, replies=[{"ts": ts}])
            listed.append(message)
        yield day, listed


def _message(ts: str, author: dict[str, Any], rng: random.Random) -> dict[str, Any]:
    text = " ".join(rng.choice(_WORDS) for _ in range(rng.randint(4, 30)))
    message: dict[str, Any] = {
        "type": "message",
        "user": author["id"],
        "text": text,
        "ts": ts,
        "team": "T0BENCH",
        "client_msg_id": str(uuid.UUID(int=rng.getrandbits(128))),
        "user_profile": {"real_name": author["real_name"], "name": author["name"]},
        "blocks": [
            {
                "type": "rich_text",
                "block_id": "b0",
                "elements": [
                    {"type": "rich_text_section", "elements": [{"type": "text", "text": text}]}
                ],
            }
        ],
    }
    if rng.random() < 0.1:
        message["reactions"] = [{"name": "tada", "users": [author["id"]], "count": 1}]
    return message


def _user(n: int) -> dict[str, Any]:
    name = f"person{n}"
    return {"id": f"U{n:09d}", "name": name, "real_name": f"Person {n}",
            "profile": {"display_name": name}}  # fmt: skip


def _channel(n: int, members: list[str], *, private: bool) -> dict[str, Any]:
    return {"id": f"C{n:09d}", "name": f"channel-{n}", "created": 1_600_000_000,
            "is_private": private, "members": members[:10]}  # fmt: skip


def _write(path: Path, value: Any) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(json.dumps(value), encoding="utf-8")


async def measure(conninfo: str, export: Path) -> tuple[ExportSummary, ExportSummary, float]:
    """Import the export twice into the database at `conninfo`: both summaries, and the
    CPU seconds this process spent on the first (PostgreSQL's are on top)."""
    pool = open_pool(conninfo, max_size=4, name="heron-bench-import")
    await pool.open()
    try:
        archive = Archive(pool, BotIdentity(user_id="UBENCH"))
        cpu = time.process_time()
        first = await import_export(archive, export)
        cpu = time.process_time() - cpu
        return first, await import_export(archive, export), cpu
    finally:
        await pool.close()


def run_import_benchmark(
    config: Config, *, messages: int, output: Path, console: Console
) -> dict[str, Any]:
    """Write a synthetic export, import it into a fresh database, print and save the rate."""
    server: URL = resolve_database_url(config.database_url)
    bench = recreate(server, BENCH_DATABASE)
    load = os.getloadavg()  # the figure depends on what else the machine is doing
    try:
        migrate(bench.conninfo)
        with psycopg.connect(bench.conninfo) as conn:
            version = conn.execute("SHOW server_version").fetchone()
        with tempfile.TemporaryDirectory(prefix="heron-bench-import-") as folder:
            console.print(f"  writing a synthetic export of {messages:,} messages …")
            export = write_synthetic_export(Path(folder), messages)
            first, again, cpu = asyncio.run(measure(bench.conninfo, export))
    finally:
        drop(server, BENCH_DATABASE)
    results = {
        "benchmark": "slack_import",
        "created_at": datetime.now(UTC).isoformat(),
        "parameters": {"messages": messages},
        "machine": machine_info({"server_version": version[0] if version else None}),
        "load_average_at_start": load[0],
        "first": _figures(first),
        "again": _figures(again),
        "python_cpu_us_per_message": cpu / first.messages * 1e6,
        "target_messages_per_second": TARGET_RATE,
    }
    console.print(
        f"export import: {first.messages:,} messages in {first.seconds:.2f} s = "
        f"[bold]{first.rate:,.0f} messages/s[/bold] (target ≥ {TARGET_RATE:,.0f}); "
        f"again: {again.added} added in {again.seconds:.2f} s ({again.rate:,.0f} messages/s); "
        f"Python CPU {cpu / first.messages * 1e6:.0f} µs/message"
    )
    output.parent.mkdir(parents=True, exist_ok=True)
    output.write_text(json.dumps(results, indent=2) + "\n", encoding="utf-8")
    console.print(f"results written to {output}")
    return results


def _figures(summary: ExportSummary) -> dict[str, Any]:
    return {
        "messages": summary.messages,
        "added": summary.added,
        "skipped": summary.skipped,
        "seconds": summary.seconds,
        "messages_per_second": summary.rate,
    }
