"""Documentation chunks in PostgreSQL: full text everywhere, vectors where pgvector is.

Ingest is incremental by content hash: re-ingesting a document embeds only the chunks
that changed and removes the ones that vanished. Search is hybrid: a full-text ranking
and a vector ranking (HNSW, cosine) fused by reciprocal rank fusion.
"""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from typing import Any, Final

import psycopg
import structlog
from pgvector import Vector
from pgvector.psycopg import register_vector
from psycopg import sql
from psycopg.rows import dict_row
from psycopg_pool import ConnectionPool

from heron.config import Config
from heron.docsearch.chunking import (
    CHARACTERS,
    Chunk,
    ChunkSize,
    DocumentKind,
    chunk_document,
    diff_chunks,
    infer_kind,
)
from heron.docsearch.chunking import context_path as context_path  # re-exported
from heron.docsearch.embedding import Embedder, TokenWindow
from heron.docsearch.ranking import reciprocal_rank_fusion
from heron.docsearch.vectors import PGVECTOR_AVAILABLE, vector_table_statements
from heron.errors import HeronError

log = structlog.get_logger(__name__)

POOL_SIZE = 4  # connections a long-lived user keeps (DocStore.open_pool)
POOL_NAME = "heron-docs"  # their application_name, in pg_stat_activity
POOL_TIMEOUT = 10.0  # seconds a search waits for one of them
CANDIDATES = 50  # chunks from each ranker, before fusion
# Fusion, as tuned on the development questions of `make eval-docs` (PostgreSQL manual):
# a small k lets the top of each ranking count, and the full-text ranking counts half as
# much as the vectors (on its own it finds far less: benchmarks/docs_eval/README.md).
FUSION_K = 10
FULL_TEXT_WEIGHT = 0.5
# HNSW candidate list per query: pgvector's default (40) gives recall@10 near 0.88 at 100k
# chunks; 100 keeps it above 0.95 for about a millisecond more (heron bench docs).
HNSW_EF_SEARCH = 100
_COLUMNS = (
    "chunk_id BIGINT NOT NULL REFERENCES doc_chunks (id) ON DELETE CASCADE,"
    " model TEXT NOT NULL, embedding vector NOT NULL, PRIMARY KEY (chunk_id, model)"
)

# The full-text ranking: each of the query's words (English lexemes, stop words dropped)
# that a chunk has scores how rare the word is among all chunks (BM25's inverse document
# frequency, from the counts migration 005 keeps in doc_terms) times how the chunk has it
# (ts_rank: in a heading, the weight-A part of `search`, counts 2.5 times as much as in
# the text). Any word counts, because a question's words rarely all appear in the passage
# that answers it; rare words decide. So only the rarest words choose the candidates:
# the rarest, then the next ones while the chunks they are in add up to RARE_WORD_CHUNKS
# at most; when every word is in that many chunks or more, the chunks with both of the
# two rarest. A common word still scores the candidates, but ranking every chunk that has
# it would cost time in proportion to the corpus for almost no change in the top results
# (none in recall on the development questions of `make eval-docs`).
RARE_WORD_CHUNKS = 1000
FULL_TEXT: Final = """
WITH words AS MATERIALIZED (
    SELECT DISTINCT lexeme
    FROM unnest(tsvector_to_array(to_tsvector('english', %(query)s))) AS lexeme
), weighted AS MATERIALIZED (
    SELECT t.lexeme, t.chunks AS df, to_tsquery('simple', quote_literal(t.lexeme)) AS q,
           ln(1 + (total.chunks - t.chunks + 0.5) / (t.chunks + 0.5)) AS idf
    FROM words AS w JOIN doc_terms AS t ON t.lexeme = w.lexeme
        CROSS JOIN (SELECT chunks::float AS chunks FROM doc_terms WHERE lexeme = '') AS total
    WHERE t.lexeme <> ''
), ranked AS MATERIALIZED (
    SELECT lexeme, df, row_number() OVER (ORDER BY df, lexeme) AS n,
           sum(df) OVER (ORDER BY df, lexeme) - df AS before
    FROM weighted
), rarest AS MATERIALIZED (
    SELECT CASE
        WHEN min(df) < %(rare_word_chunks)s OR count(*) = 1 THEN
            to_tsquery('simple', string_agg(quote_literal(lexeme), ' | ')
                FILTER (WHERE before + df <= %(rare_word_chunks)s OR n = 1))
        ELSE to_tsquery('simple', string_agg(quote_literal(lexeme), ' & ') FILTER (WHERE n <= 2))
    END AS q
    FROM ranked
)
SELECT c.id FROM doc_chunks AS c
WHERE c.search @@ (SELECT q FROM rarest)
ORDER BY (SELECT sum(w.idf * ts_rank(c.search, w.q)) FROM weighted AS w WHERE c.search @@ w.q)
    DESC, c.id
LIMIT %(limit)s
"""

_SETTLE: Final = (
    "ANALYZE doc_chunks",
    "ANALYZE doc_terms",
    "SELECT gin_clean_pending_list('doc_chunks_search_idx'::regclass)",
)

PGVECTOR_MISSING = (
    "the PostgreSQL server has no pgvector extension, so docs search has no vector side: "
    "install pgvector on the server (https://github.com/pgvector/pgvector; "
    "Debian: apt install postgresql-NN-pgvector), or unset DATABASE_URL to use the "
    "embedded PostgreSQL, which ships it"
)


class DocSearchError(HeronError):
    """Docs search cannot run as configured; the message says what to do."""


@dataclass(frozen=True, slots=True)
class IngestResult:
    """What one document's ingest changed."""

    source: str
    added: int
    removed: int
    unchanged: int


@dataclass(frozen=True, slots=True)
class SearchHit:
    """One passage found, with where it lives."""

    chunk_id: int
    source: str
    title: str
    heading_path: tuple[str, ...]
    anchor: str
    text: str
    score: float

    @property
    def link(self) -> str:
        return f"{self.source}#{self.anchor}" if self.anchor else self.source


@dataclass(frozen=True, slots=True)
class StoredSection:
    """One stored chunk of a document, in reading order."""

    heading_path: tuple[str, ...]
    anchor: str
    text: str


@dataclass(frozen=True, slots=True)
class StoredDocument:
    """An ingested document and its sections."""

    id: int
    source: str
    title: str
    kind: str
    sections: tuple[StoredSection, ...]


class DocStore:
    """Reads and writes the docs tables for one embedding model.

    Chunks are sized for the model (`chunk_size_for`) unless `chunk_size` says otherwise.
    A long-lived user (an MCP server, the responder) calls `open_pool` and `close`, and
    its searches reuse connections; otherwise each `connect` opens one.
    """

    def __init__(
        self, conninfo: str, embedder: Embedder, chunk_size: ChunkSize | None = None
    ) -> None:
        self.conninfo = conninfo
        self.embedder = embedder
        self.chunk_size = chunk_size or chunk_size_for(embedder)
        self._ready = False
        self._pool: ConnectionPool[Any] | None = None

    @contextmanager
    def connect(self) -> Iterator[psycopg.Connection[dict[str, Any]]]:
        """A connection ready for the docs tables (pgvector registered, HNSW tuned), its
        transaction committed at the end of the block (rolled back on an error)."""
        if self._pool is not None:
            with self._pool.connection() as pooled:
                yield pooled
            return
        with psycopg.connect(self.conninfo, row_factory=dict_row) as conn:
            self._prepare(conn)
            yield conn

    def open_pool(self, max_size: int = POOL_SIZE) -> bool:
        """Keep up to `max_size` connections for later searches (a new one costs about
        5 ms, half a search). False, and none kept, when the store cannot be used now
        (no server, no pgvector): then each search reports why, as without a pool."""
        if self._pool is not None:
            return True
        try:
            with self.connect():
                pass
        except (psycopg.Error, DocSearchError) as error:
            log.warning("docs search keeps no connections", error=str(error))
            return False
        pool: ConnectionPool[Any] = ConnectionPool(
            self.conninfo,
            min_size=1,
            max_size=max_size,
            kwargs={"row_factory": dict_row, "application_name": POOL_NAME},
            configure=self._prepare,
            check=ConnectionPool.check_connection,  # not one a server restart closed
            timeout=POOL_TIMEOUT,
            name=POOL_NAME,
            open=False,
        )
        pool.open()
        self._pool = pool
        return True

    def close(self) -> None:
        """Close the kept connections, if any."""
        pool, self._pool = self._pool, None
        if pool is not None:
            pool.close()

    def _prepare(self, conn: psycopg.Connection[Any]) -> None:
        self._ensure_vectors(conn)
        register_vector(conn)
        conn.execute(sql.SQL("SET hnsw.ef_search = {}").format(sql.Literal(HNSW_EF_SEARCH)))
        conn.commit()

    def _ensure_vectors(self, conn: psycopg.Connection[Any]) -> None:
        """Create pgvector, doc_embeddings and this model's HNSW index, once per store."""
        if self._ready:
            return
        if conn.execute(PGVECTOR_AVAILABLE).fetchone() is None:
            raise DocSearchError(PGVECTOR_MISSING)
        with conn.transaction():
            for statement in vector_table_statements("doc_embeddings", _COLUMNS, self.embedder):
                conn.execute(statement)
        self._ready = True

    # -- ingest -----------------------------------------------------------------------------

    def ingest(
        self,
        conn: psycopg.Connection[dict[str, Any]],
        source: str,
        content: str,
        kind: DocumentKind | None = None,
    ) -> IngestResult:
        """Bring one document up to date, in one transaction.

        Chunks whose hash is new are embedded and added, stored ones that vanished are
        deleted, and unchanged ones without a vector from this model (the provider
        changed) are embedded again.
        """
        kind = kind or infer_kind(source)
        chunks = chunk_document(source, content, kind=kind, size=self.chunk_size)
        title = chunks[0].title if chunks else source
        with conn.transaction():
            row = conn.execute(
                "INSERT INTO doc_documents (source, title, kind) VALUES (%s, %s, %s) "
                "ON CONFLICT (source) DO UPDATE SET title = EXCLUDED.title, "
                "kind = EXCLUDED.kind, ingested_at = now() RETURNING id",
                (source, title, kind),
            ).fetchone()
            assert row is not None
            document_id = int(row["id"])
            stored = conn.execute(
                "SELECT c.id, c.content_hash, e.chunk_id IS NOT NULL AS embedded"
                " FROM doc_chunks c LEFT JOIN doc_embeddings e"
                " ON e.chunk_id = c.id AND e.model = %s WHERE c.document_id = %s",
                (self.embedder.name, document_id),
            ).fetchall()
            old = {r["content_hash"]: r["id"] for r in stored}
            added, removed = diff_chunks(set(old), chunks)
            if removed:
                conn.execute(
                    "DELETE FROM doc_chunks WHERE id = ANY(%s)", ([old[h] for h in removed],)
                )
            self._insert(conn, document_id, added)
            unembedded = {r["content_hash"] for r in stored if not r["embedded"]} - removed
            stale = list(
                {c.content_hash: c for c in chunks if c.content_hash in unembedded}.values()
            )
            self._embed(conn, [(old[c.content_hash], c) for c in stale])
            self._renumber(conn, document_id, chunks)
        return IngestResult(
            source, len(added) + len(stale), len(removed), len(chunks) - len(added) - len(stale)
        )

    def _insert(
        self, conn: psycopg.Connection[dict[str, Any]], document_id: int, chunks: list[Chunk]
    ) -> None:
        ids = []
        for chunk in chunks:
            row = conn.execute(
                "INSERT INTO doc_chunks (document_id, chunk_index, heading_path, heading_text,"
                " anchor, text, content_hash) VALUES (%s, %s, %s, %s, %s, %s, %s) RETURNING id",
                (
                    document_id,
                    chunk.index,
                    list(chunk.heading_path),
                    " ".join(context_path(chunk.title, chunk.heading_path)),
                    chunk.anchor,
                    chunk.text,
                    chunk.content_hash,
                ),
            ).fetchone()
            assert row is not None
            ids.append(int(row["id"]))
        self._embed(conn, list(zip(ids, chunks, strict=True)))

    def _embed(
        self, conn: psycopg.Connection[dict[str, Any]], chunks: list[tuple[int, Chunk]]
    ) -> None:
        """Store this model's vector for each (chunk id, chunk)."""
        if not chunks:
            return
        vectors = self.embedder.embed([chunk.embedding_text for _, chunk in chunks])
        with conn.cursor() as cursor:
            cursor.executemany(
                "INSERT INTO doc_embeddings (chunk_id, model, embedding) VALUES (%s, %s, %s)",
                [
                    (chunk_id, self.embedder.name, Vector(vector))
                    for (chunk_id, _), vector in zip(chunks, vectors, strict=True)
                ],
            )

    def _renumber(
        self, conn: psycopg.Connection[dict[str, Any]], document_id: int, chunks: list[Chunk]
    ) -> None:
        """Unchanged chunks keep their embedding but may have moved: update position."""
        if chunks:
            conn.execute(
                "UPDATE doc_chunks AS c SET chunk_index = n.i, anchor = n.anchor"
                " FROM unnest(%s::text[], %s::int[], %s::text[]) AS n(hash, i, anchor)"
                " WHERE c.document_id = %s AND c.content_hash = n.hash"
                " AND (c.chunk_index, c.anchor) IS DISTINCT FROM (n.i, n.anchor)",
                (
                    [c.content_hash for c in chunks],
                    [c.index for c in chunks],
                    [c.anchor for c in chunks],
                    document_id,
                ),
            )

    def remove_missing(
        self, conn: psycopg.Connection[dict[str, Any]], prefix: str, present: set[str]
    ) -> int:
        """Delete the documents under `prefix` that an ingest of it no longer found."""
        rows = conn.execute(
            "DELETE FROM doc_documents WHERE starts_with(source, %s) AND NOT source = ANY(%s)"
            " RETURNING id",
            (prefix, sorted(present)),
        ).fetchall()
        conn.commit()
        return len(rows)

    def settle(self, conn: psycopg.Connection[dict[str, Any]]) -> None:
        """After an ingest changed chunks: fresh statistics, and the new entries of the
        full-text index merged from its pending list (which every search reads through
        until then). Autovacuum does both, but only a while later; until it does, searches
        after a large ingest were several times slower."""
        for statement in _SETTLE:
            conn.execute(statement)
        conn.commit()

    def get_document(
        self, conn: psycopg.Connection[dict[str, Any]], key: str
    ) -> StoredDocument | None:
        """A document by numeric id, else by exact source; None when there is none."""
        row = None
        if key.isdigit():
            row = conn.execute(
                "SELECT id, source, title, kind FROM doc_documents WHERE id = %s", (int(key),)
            ).fetchone()
        if row is None:
            row = conn.execute(
                "SELECT id, source, title, kind FROM doc_documents WHERE source = %s", (key,)
            ).fetchone()
        if row is None:
            return None
        sections = conn.execute(
            "SELECT heading_path, anchor, text FROM doc_chunks WHERE document_id = %s"
            " ORDER BY chunk_index, id",
            (row["id"],),
        ).fetchall()
        return StoredDocument(
            row["id"],
            row["source"],
            row["title"],
            row["kind"],
            tuple(
                StoredSection(tuple(s["heading_path"]), s["anchor"], s["text"]) for s in sections
            ),
        )

    # -- search -----------------------------------------------------------------------------

    def search(
        self, conn: psycopg.Connection[dict[str, Any]], query: str, limit: int = 5
    ) -> list[SearchHit]:
        """The best passages for `query`, one per section: full text and vectors, fused by
        rank (`FUSION_K`, `FULL_TEXT_WEIGHT`).

        The full-text query goes to the server first and the question is embedded while
        the server ranks its words (pipelined on the one connection), so a search costs
        about the slower of the two, not both.
        """
        if not query.strip():
            return []
        with conn.pipeline():
            params = {"query": query, "limit": CANDIDATES, "rare_word_chunks": RARE_WORD_CHUNKS}
            by_text = conn.execute(FULL_TEXT, params)
            (vector,) = self.embedder.embed([query])
            by_vector = conn.execute(
                sql.SQL(
                    "SELECT chunk_id AS id FROM doc_embeddings WHERE model = %s"
                    " ORDER BY embedding::vector({}) <=> %s LIMIT %s"
                ).format(sql.Literal(self.embedder.dimensions)),
                (self.embedder.name, Vector(vector), CANDIDATES),
            )
            full_text = [r["id"] for r in by_text.fetchall()]
            nearest = [r["id"] for r in by_vector.fetchall()]
        fused = reciprocal_rank_fusion(
            [nearest, full_text], k=FUSION_K, weights=[1.0, FULL_TEXT_WEIGHT]
        )
        if not fused:
            return []
        rows = {
            r["id"]: r
            for r in conn.execute(
                "SELECT c.id, c.document_id, d.source, d.title, c.heading_path, c.anchor, c.text"
                " FROM doc_chunks c JOIN doc_documents d ON d.id = c.document_id"
                " WHERE c.id = ANY(%s)",
                ([chunk_id for chunk_id, _ in fused],),
            )
        }
        hits: list[SearchHit] = []
        sections: set[tuple[int, tuple[str, ...]]] = set()
        for chunk_id, score in fused:
            row = rows.get(chunk_id)
            if row is None:  # deleted since the rankings were read
                continue
            section = (row["document_id"], tuple(row["heading_path"]))
            if section in sections:  # the next piece of a section mostly repeats it
                continue
            sections.add(section)
            hits.append(
                SearchHit(
                    chunk_id,
                    row["source"],
                    row["title"],
                    section[1],
                    row["anchor"],
                    row["text"],
                    score,
                )
            )
            if len(hits) == limit:
                break
        return hits


def store_from_config(config: Config) -> DocStore:
    """The docs store as configured (DATABASE_URL, HERON_EMBEDDING_PROVIDER), migrated."""
    from heron.database.connection import resolve_database_url
    from heron.database.migrate import migrate
    from heron.database.url import psycopg_conninfo
    from heron.docsearch.embedding import make_embedder

    conninfo = psycopg_conninfo(resolve_database_url(config.database_url))
    migrate(conninfo)
    return DocStore(conninfo, make_embedder(config))


def chunk_size_for(embedder: Embedder) -> ChunkSize:
    """Chunks measured in the model's own tokens when it can count them, filling its window
    (an overlap of about a sixth); else characters (`CHARACTERS`)."""
    if isinstance(embedder, TokenWindow):
        limit = embedder.max_tokens
        return ChunkSize(limit, limit // 6, embedder.token_starts, f"{embedder.name} tokens")
    return CHARACTERS
