"""Vectors of archived Slack messages, so that search finds messages by meaning.

`slack_message_embeddings` (channel_id, ts, model, embedding, text_hash, embedded_at) is
created at runtime when the server has pgvector, like docs search's doc_embeddings, with
one HNSW cosine index per model. `embed_pending` fills it, newest messages first: those
without a vector from the model and those whose text changed since; it also drops the
vectors of deleted messages. Search joins vectors back to live messages, so a message
deleted between two runs is never returned either way. Without pgvector, search matches
words only, and says so once in the log.
"""

from __future__ import annotations

import asyncio
import hashlib
import re
import time
from collections.abc import AsyncIterator, Callable
from contextlib import asynccontextmanager
from dataclasses import dataclass
from datetime import datetime
from typing import Any, Final

import psycopg
import structlog
from psycopg import sql
from psycopg.rows import dict_row
from psycopg_pool import AsyncConnectionPool

from heron.database.named_sql import NamedQueries
from heron.docsearch.embedding import Embedder
from heron.docsearch.vectors import PGVECTOR_AVAILABLE, vector_literal, vector_table_statements

log = structlog.get_logger(__name__)
query = NamedQueries("heron.slack.sql", "search.sql")

TABLE: Final = "slack_message_embeddings"
DEFAULT_BATCH: Final = 256
# Slack allows 40,000 characters; embedding APIs cap their input, and a message's gist
# is in its beginning.
EMBED_CHARS: Final = 8_000
HNSW_EF_SEARCH: Final = 100
PGVECTOR_MISSING: Final = (
    "the PostgreSQL server has no pgvector extension, so Slack search matches words only, "
    "not meaning: install pgvector on the server (https://github.com/pgvector/pgvector; "
    "Debian: apt install postgresql-NN-pgvector), or unset DATABASE_URL to use the embedded "
    "PostgreSQL, which ships it"
)
_COLUMNS: Final = (
    "channel_id TEXT NOT NULL, ts TEXT NOT NULL, model TEXT NOT NULL,"
    " embedding vector NOT NULL, text_hash TEXT NOT NULL,"
    " embedded_at TIMESTAMPTZ NOT NULL DEFAULT now(), PRIMARY KEY (channel_id, ts, model)"
)
_VERSION: Final = re.compile(r"(\d+)\.(\d+)")

Connection = psycopg.AsyncConnection[Any]


class MessageVectors:
    """The archive's vectors from one embedding model: set up once, filled, searched."""

    def __init__(self, embedder: Embedder) -> None:
        self.embedder = embedder
        self._available: bool | None = None
        self._iterative_scan = False
        self._changed_since: datetime | None = None

    async def available(self, conn: Connection) -> bool:
        """Whether vector search works here; the first call creates the table and index."""
        if self._available is None:
            self._available = await self._set_up(conn)
        return self._available

    async def _set_up(self, conn: Connection) -> bool:
        if await (await conn.execute(PGVECTOR_AVAILABLE)).fetchone() is None:
            log.warning("slack search without vectors", reason=PGVECTOR_MISSING)
            return False
        async with conn.transaction():
            for statement in vector_table_statements(TABLE, _COLUMNS, self.embedder):
                await conn.execute(statement)
        row = await (await conn.execute(query("vector_version"))).fetchone()
        found = _VERSION.match(str(row["extversion"])) if row else None
        # pgvector 0.8 can go on scanning the index while filters reject its candidates.
        self._iterative_scan = found is not None and (int(found[1]), int(found[2])) >= (0, 8)
        return True

    async def tune(self, conn: Connection) -> None:
        """Settings for one nearest-neighbour query; call inside its transaction."""
        ef_search = sql.SQL("SET LOCAL hnsw.ef_search = {}").format(sql.Literal(HNSW_EF_SEARCH))
        await conn.execute(ef_search)
        if self._iterative_scan:
            await conn.execute("SET LOCAL hnsw.iterative_scan = strict_order")

    async def embed_query(self, text: str) -> str:
        """The query's vector, in pgvector's text form (embedding runs off the event loop)."""
        (vector,) = await asyncio.to_thread(self.embedder.embed, [text[:EMBED_CHARS]])
        return vector_literal(vector)

    async def embed_pending(self, conn: Connection, batch: int = DEFAULT_BATCH) -> int:
        """Embed up to `batch` pending messages; 0 when none, or another process is at it.

        The first pass looks at the whole archive; later ones only at messages changed
        since the last pass that finished everything.
        """
        if not await self.available(conn):
            return 0
        model = self.embedder.name
        async with conn.transaction():
            lock = await (await conn.execute(query("embed_lock"), {"model": model})).fetchone()
            if lock is None or not lock["locked"]:
                return 0
            scope = {"model": model, "changed_since": self._changed_since, "batch": batch}
            await conn.execute(query("prune_embeddings"), scope)
            rows = await (await conn.execute(query("pending_embeddings"), scope)).fetchall()
            if rows:
                await self._save(conn, rows)
        if len(rows) < batch:
            self._changed_since = lock["mark"]
        return len(rows)

    async def _save(self, conn: Connection, rows: list[dict[str, Any]]) -> None:
        texts = [str(r["text"]) for r in rows]
        vectors = await asyncio.to_thread(
            self.embedder.embed, [text[:EMBED_CHARS] for text in texts]
        )
        params = {
            "model": self.embedder.name,
            "channel_ids": [r["channel_id"] for r in rows],
            "tss": [r["ts"] for r in rows],
            "embeddings": [vector_literal(v) for v in vectors],
            # The digest PostgreSQL's md5(text) gives: a later edit shows as a mismatch.
            "text_hashes": [_md5(text) for text in texts],
        }
        await conn.execute(query("save_embeddings"), params)


def _md5(text: str) -> str:
    return hashlib.md5(text.encode(), usedforsecurity=False).hexdigest()


@dataclass(frozen=True, slots=True)
class ArchiveEmbedding:
    """What `embed_archive` did."""

    model: str
    embedded: int
    left: int  # still without a vector: another process held the embedding lock
    seconds: float
    available: bool = True  # False: no pgvector on the server, nothing to do


async def embed_archive(
    pool: AsyncConnectionPool[Any],
    embedder: Embedder,
    on_progress: Callable[[int, int], None] | None = None,
    batch: int = DEFAULT_BATCH,
) -> ArchiveEmbedding:
    """Embed every message without a vector from `embedder`, batch after batch: after an
    import, so that search finds the history by meaning at once (CatchUp embeds one batch
    before a search, at most every half minute). `on_progress(done, total)`."""
    start = time.monotonic()
    vectors = MessageVectors(embedder)
    model = embedder.name
    async with pool.connection() as conn:
        if not await vectors.available(conn):
            return ArchiveEmbedding(model, 0, 0, 0.0, available=False)
        total = await _pending(conn, model)
    done = 0
    if on_progress is not None:
        on_progress(done, total)
    while True:
        async with pool.connection() as conn:
            embedded = await vectors.embed_pending(conn, batch)
        done += embedded
        if on_progress is not None:
            on_progress(done, max(total, done))
        if embedded < batch:
            break
    async with pool.connection() as conn:
        left = await _pending(conn, model)
    return ArchiveEmbedding(model, done, left, time.monotonic() - start)


async def _pending(conn: Connection, model: str) -> int:
    row = await (await conn.execute(query("count_pending_embeddings"), {"model": model})).fetchone()
    return int(row["n"]) if row else 0


class CatchUp:
    """Embeds what is pending before a search, at most once every `every` seconds.

    Keeps search current on its own: nothing else embeds new messages in `heron run`.
    A failure is logged and costs only freshness: search goes on with the vectors it has.
    """

    def __init__(self, vectors: MessageVectors, every: float, batch: int = DEFAULT_BATCH):
        self.vectors = vectors
        self.every = every
        self.batch = batch
        self._lock = asyncio.Lock()
        self._last: float | None = None

    async def run(self, pool: AsyncConnectionPool[Any]) -> None:
        async with self._lock:
            now = time.monotonic()
            if self._last is not None and now - self._last < self.every:
                return
            self._last = now
            try:
                async with pool.connection() as conn:
                    await self.vectors.embed_pending(conn, self.batch)
            except Exception as error:  # the embedder is a plug-in: a model, an API
                log.warning("slack message embedding failed", error=str(error))


# One per database and model, so that set-up runs, and a missing pgvector is logged, once.
_by_database: dict[tuple[object, str], MessageVectors] = {}


async def embed_pending(
    db: AsyncConnectionPool[Any] | str, embedder: Embedder, batch: int = DEFAULT_BATCH
) -> int:
    """Embed up to `batch` archived messages that lack a vector from `embedder` (or whose
    text changed), newest first, and drop deleted messages' vectors.

    For a periodic job: call it until it returns less than `batch`. Returns 0 without
    pgvector (logged once) and while another process is embedding for the same model.
    """
    vectors = _by_database.setdefault((db, embedder.name), MessageVectors(embedder))
    async with _connection(db) as conn:
        return await vectors.embed_pending(conn, batch)


@asynccontextmanager
async def _connection(db: AsyncConnectionPool[Any] | str) -> AsyncIterator[Connection]:
    if not isinstance(db, str):
        async with db.connection() as pooled:
            yield pooled
        return
    conn = await psycopg.AsyncConnection.connect(db, autocommit=True, row_factory=dict_row)
    async with conn:
        yield conn
