"""`heron bench search`: how long a Slack archive search takes, by archive size.

Each size gets a fresh database: messages in ten public channels, one in ten written by
Heron and one in ten mentioning it, their text of words drawn as in natural language
(Zipf's law), bulk-imported through the archive's own COPY path; synthetic clustered
vectors for all of them, then the HNSW index and the statistics search relies on. It
times what a caller waits for, the question's vector given: the Slack MCP server's
hybrid `search_messages` as it runs by default (Heron's messages left out) and with
`include_heron`, and the full-text search behind retrieval-only answers.
"""

from __future__ import annotations

import asyncio
import json
import time
from collections.abc import Awaitable, Callable
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import numpy as np
from pgvector import Vector
from pgvector.psycopg import register_vector_async
from psycopg import sql
from psycopg_pool import AsyncConnectionPool
from rich.console import Console
from rich.table import Table

from heron.bench.database import drop, recreate
from heron.bench.docs import DIMENSIONS, SyntheticEmbedder, clustered_vectors, zipf_words
from heron.bench.stats import percentile
from heron.config import Config
from heron.database.connection import resolve_database_url
from heron.database.migrate import migrate
from heron.docsearch.vectors import hnsw_index_name
from heron.queue.store import open_pool
from heron.slack.archive import Archive
from heron.slack.embeddings import TABLE, MessageVectors
from heron.slack.events import BotIdentity, SaveChannel, message_row
from heron.slack.search import ArchiveReader, search_messages

BENCH_DATABASE = "heron_bench_search"
CHANNELS = 10
QUESTIONS = 200
VOCABULARY = 20_000
WORDS_PER_MESSAGE = 15
WORDS_PER_QUESTION = 6
READER = "UREADER"
BOT = BotIdentity(user_id="UHERON", bot_id="BHERON", team_id="TBENCH", url="https://b.slack.com/")
_START = 1_700_000_000  # the first message's ts; one a minute after it


def run_search_benchmark(
    config: Config, *, sizes: list[int], output: Path, console: Console
) -> dict[str, Any]:
    """Load and search each size in a fresh database; print a table, write JSON."""
    server = resolve_database_url(config.database_url)
    runs = []
    for size in sizes:
        bench = recreate(server, BENCH_DATABASE)
        try:
            migrate(bench.conninfo)
            console.print(f"  loading {size:,} messages and their vectors …")
            runs.append(asyncio.run(_measure(bench.conninfo, size)))
        finally:
            drop(server, BENCH_DATABASE)
    results = {
        "benchmark": "slack_search",
        "created_at": datetime.now(UTC).isoformat(),
        "parameters": {"sizes": sizes, "questions": QUESTIONS, "channels": CHANNELS},
        "runs": runs,
    }
    _render(runs, console)
    output.parent.mkdir(parents=True, exist_ok=True)
    output.write_text(json.dumps(results, indent=2) + "\n", encoding="utf-8")
    console.print(f"results written to {output}")
    return results


async def _measure(conninfo: str, size: int) -> dict[str, Any]:
    rng = np.random.default_rng(size)
    pool = open_pool(conninfo, max_size=4, name="heron-bench-search")
    await pool.open(wait=True)
    try:
        start = time.perf_counter()
        embedder = SyntheticEmbedder()
        centers = rng.normal(size=(64, DIMENSIONS)).astype(np.float32)  # the topics
        await _load(pool, embedder, size, rng, centers)
        loaded = time.perf_counter() - start
        vectors = MessageVectors(embedder)
        reader = ArchiveReader(pool, READER, vectors)
        questions = [
            (zipf_words(rng, WORDS_PER_QUESTION, VOCABULARY), [float(x) for x in vector])
            for vector in clustered_vectors(rng, centers, QUESTIONS)
        ]

        async def hybrid(text: str, include_heron: bool) -> None:
            await reader.search(text, limit=10, include_heron=include_heron)

        async def words_only(text: str) -> None:
            await search_messages(pool, READER, text, limit=5, bot_user_id=BOT.user_id)

        timed = {
            "hybrid": await _time(questions, embedder, lambda t: hybrid(t, False)),
            "hybrid_with_heron": await _time(questions, embedder, lambda t: hybrid(t, True)),
            "full_text": await _time(questions, embedder, words_only),
        }
    finally:
        await pool.close()
    return {"messages": size, "load_seconds": loaded, **timed}


async def _time(
    questions: list[tuple[str, list[float]]],
    embedder: SyntheticEmbedder,
    search: Callable[[str], Awaitable[None]],
) -> dict[str, float]:
    latencies = []
    for text, vector in questions:
        embedder.vector = vector
        start = time.perf_counter()
        await search(text)
        latencies.append((time.perf_counter() - start) * 1000)
    return {f"p{q}_ms": percentile(latencies, q) for q in (50, 95, 99)}


async def _load(
    pool: AsyncConnectionPool[Any],
    embedder: SyntheticEmbedder,
    size: int,
    rng: np.random.Generator,
    centers: np.ndarray[Any, Any],
) -> None:
    """The archive (through Archive's COPY import), vectors, index and statistics."""
    archive = Archive(pool, BOT)
    await archive.save_workspace()
    await archive.save(
        SaveChannel(f"CBENCH{n}", name=f"bench-{n}", is_private=False, is_im=False, is_mpim=False)
        for n in range(CHANNELS)
    )
    batch = []
    for n in range(size):
        text = zipf_words(rng, WORDS_PER_MESSAGE, VOCABULARY)
        author = BOT.user_id if n % 10 == 0 else f"UPERSON{n % 50}"
        if n % 10 == 1:
            text = f"<@{BOT.user_id}> {text}"
        message = {"type": "message", "ts": f"{_START + n * 60}.000100", "user": author}
        batch.append(message_row(f"CBENCH{n % CHANNELS}", message | {"text": text}))
        if len(batch) == 10_000 or n == size - 1:
            await archive.import_messages(batch)
            batch = []
    async with pool.connection() as conn:
        assert await MessageVectors(embedder).available(conn)
        # Loaded without the HNSW index, which is then built once: far faster than
        # adding vectors to it one by one.
        index = hnsw_index_name(TABLE, embedder.name)
        found = await (
            await conn.execute("SELECT indexdef FROM pg_indexes WHERE indexname = %s", (index,))
        ).fetchone()
        assert found is not None
        await conn.execute(sql.SQL("DROP INDEX {}").format(sql.Identifier(index)))
        await register_vector_async(conn)
        keys = await (await conn.execute("SELECT channel_id, ts FROM slack_messages")).fetchall()
        vectors = clustered_vectors(rng, centers, len(keys))
        async with conn.cursor().copy(
            f"COPY {TABLE} (channel_id, ts, model, embedding, text_hash)"
            " FROM STDIN WITH (FORMAT BINARY)"
        ) as copy:
            copy.set_types(["text", "text", "text", "vector", "text"])
            for row, vector in zip(keys, vectors, strict=True):
                await copy.write_row(
                    [row["channel_id"], row["ts"], embedder.name, Vector(vector), "synthetic"]
                )
        await conn.execute("SET maintenance_work_mem = '512MB'")
        await conn.execute(found["indexdef"])
        await conn.execute(sql.SQL("VACUUM (ANALYZE) {}").format(sql.Identifier(TABLE)))
    await archive.partitions.analyze()


def _render(runs: list[dict[str, Any]], console: Console) -> None:
    table = Table(title="heron bench search: Slack archive search (ms)")
    table.add_column("messages", justify="right")
    for name in ("hybrid", "hybrid, with Heron", "full text (retrieval-only)"):
        table.add_column(f"{name} p50", justify="right")
        table.add_column("p95", justify="right")
    for run in runs:
        cells = [f"{run['messages']:,}"]
        for key in ("hybrid", "hybrid_with_heron", "full_text"):
            cells += [f"{run[key]['p50_ms']:.1f}", f"{run[key]['p95_ms']:.1f}"]
        table.add_row(*cells)
    console.print(table)
