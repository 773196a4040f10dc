"""`heron bench docs`: ingest throughput, and search latency and HNSW recall by corpus size.

Ingest embeds a generated documentation folder with the configured provider (the local
MiniLM by default) through the real `ingest_path`. Search runs at each size on synthetic
chunks (bulk-loaded, then indexed): clustered random unit vectors, and text of words
drawn as in natural language (a few common, most rare: Zipf's law). It times the store's
vector query through the HNSW index and measures its recall@10 against an exact scan of
the same rows, then times the whole hybrid search a question gets (`DocStore.search`:
full text, vectors, fusion, the passages read), the query's vector given.
"""

from __future__ import annotations

import json
import random
import tempfile
import time
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import numpy as np
import psycopg
from pgvector import Vector
from pgvector.psycopg import register_vector
from psycopg import sql
from rich.console import Console
from rich.table import Table

from heron.bench.stats import percentile
from heron.config import Config
from heron.database.connection import resolve_database_url
from heron.database.migrate import migrate
from heron.database.url import psycopg_conninfo
from heron.docsearch.embedding import make_embedder
from heron.docsearch.ingest import ingest_path
from heron.docsearch.store import HNSW_EF_SEARCH, DocStore
from heron.errors import BenchmarkError

BENCH_DATABASE = "heron_bench_docs"
DIMENSIONS = 384
SYNTHETIC_MODEL = "synthetic-384"
QUERIES = 200
TOP_K = 10
TARGET_P95_MS = 10.0
TARGET_RECALL = 0.95


VOCABULARY = 30_000  # distinct words in the synthetic text
WORDS_PER_CHUNK = 120
WORDS_PER_QUESTION = 6


class SyntheticEmbedder:
    """Stands in for a model of DIMENSIONS so that the stores build the same index shape;
    it "embeds" a question as the vector set for it."""

    name = SYNTHETIC_MODEL
    dimensions = DIMENSIONS

    def __init__(self) -> None:
        self.vector: list[float] = [0.0] * DIMENSIONS

    def embed(self, texts: Sequence[str]) -> list[list[float]]:
        return [self.vector for _ in texts]


def run_docs_benchmark(
    config: Config, *, sizes: list[int], documents: int, output: Path, console: Console
) -> dict[str, Any]:
    """Run everything, print a table, write JSON; returns the results."""
    admin = psycopg_conninfo(resolve_database_url(config.database_url))
    conninfo = _fresh_database(admin)
    try:
        migrate(conninfo)
        results: dict[str, Any] = {"ingest": _ingest(conninfo, config, documents, console)}
        results["search"] = [_search_at(conninfo, size, console) for size in sizes]
    finally:
        _drop_database(admin)
    _render(results, console)
    document = {"benchmark": "docs", "parameters": {"sizes": sizes, "documents": documents}}
    output.parent.mkdir(parents=True, exist_ok=True)
    output.write_text(json.dumps(document | results, indent=2) + "\n", encoding="utf-8")
    console.print(f"results written to {output}")
    return results


def _ingest(conninfo: str, config: Config, documents: int, console: Console) -> dict[str, Any]:
    embedder = make_embedder(config)
    store = DocStore(conninfo, embedder)
    rng = random.Random(7)
    with tempfile.TemporaryDirectory(prefix="heron-bench-docs-") as folder:
        root = Path(folder)
        for n in range(documents):
            (root / f"page{n:04d}.md").write_text(_page(n, rng), encoding="utf-8")
        console.print(f"  ingest   {documents} generated pages with {embedder.name} …")
        start = time.perf_counter()
        totals = ingest_path(store, root)
        elapsed = time.perf_counter() - start
    return {
        "provider": embedder.name,
        "documents": documents,
        "chunks": totals.added,
        "seconds": elapsed,
        "chunks_per_second": totals.added / elapsed if elapsed else 0.0,
    }


def _page(n: int, rng: random.Random) -> str:
    words = ["index", "vacuum", "replica", "lock", "table", "query", "plan", "backup"]
    sections = []
    for s in range(6):
        body = " ".join(rng.choice(words) + rng.choice([".", "", "", ","]) for _ in range(120))
        sections.append(f"## Section {s}\n\n{body.capitalize()}.\n")
    return f"# Page {n}\n\nAbout topic {n % 17}.\n\n" + "\n".join(sections)


def _search_at(conninfo: str, size: int, console: Console) -> dict[str, Any]:
    console.print(f"  search   loading {size:,} synthetic chunks and building HNSW …")
    rng = np.random.default_rng(size)
    centers = rng.normal(size=(64, DIMENSIONS)).astype(np.float32)
    with psycopg.connect(conninfo, autocommit=True) as conn:
        with DocStore(conninfo, SyntheticEmbedder()).connect():  # pgvector, table, index DDL
            pass
        register_vector(conn)
        conn.execute("TRUNCATE doc_documents CASCADE")
        conn.execute("DROP INDEX IF EXISTS doc_embeddings_synthetic_384_hnsw")
        doc = conn.execute(
            "INSERT INTO doc_documents (source, title, kind) VALUES ('synthetic', 's', 'text')"
            " RETURNING id"
        ).fetchone()
        assert doc is not None
        conn.execute("SELECT setseed(0.5)")
        ids = [
            row[0]
            for row in conn.execute(
                "INSERT INTO doc_chunks (document_id, chunk_index, text, content_hash)"
                " SELECT %s, i, (SELECT string_agg(" + _WORD + ", ' ')"
                "  FROM generate_series(1, %s) WHERE i > 0), md5(i::text)"
                " FROM generate_series(1, %s) AS i RETURNING id",
                (doc[0], WORDS_PER_CHUNK, size),
            )
        ]
        vectors = clustered_vectors(rng, centers, size)
        with conn.cursor().copy(
            "COPY doc_embeddings (chunk_id, model, embedding) FROM STDIN WITH (FORMAT BINARY)"
        ) as copy:
            copy.set_types(["int8", "text", "vector"])
            for chunk_id, vector in zip(ids, vectors, strict=True):
                copy.write_row([chunk_id, SYNTHETIC_MODEL, Vector(vector)])
        conn.execute("SET maintenance_work_mem = '512MB'")
        start = time.perf_counter()
        conn.execute(
            "CREATE INDEX doc_embeddings_synthetic_384_hnsw ON doc_embeddings USING hnsw"
            " ((embedding::vector(384)) vector_cosine_ops) WHERE model = 'synthetic-384'"
        )
        build = time.perf_counter() - start
        # What autovacuum does soon after a bulk load: statistics, and the full-text
        # index's pending list merged (searches scan that list until it is).
        for table in ("doc_embeddings", "doc_chunks", "doc_terms"):
            conn.execute(sql.SQL("VACUUM (ANALYZE) {}").format(sql.Identifier(table)))
        conn.execute(sql.SQL("SET hnsw.ef_search = {}").format(sql.Literal(HNSW_EF_SEARCH)))
        queries = clustered_vectors(rng, centers, QUERIES)
        latencies, recalls = [], []
        for query in queries:
            start = time.perf_counter()
            approximate = _nearest(conn, query)
            latencies.append(time.perf_counter() - start)
            conn.execute("SET enable_indexscan = off")
            exact = _nearest(conn, query)
            conn.execute("RESET enable_indexscan")
            recalls.append(len(set(approximate) & set(exact)) / TOP_K)
    ms = [seconds * 1000 for seconds in latencies]
    return {
        "chunks": size,
        "index_build_seconds": build,
        "latency": {f"p{q}_ms": percentile(ms, q) for q in (50, 95, 99)},
        "recall_at_10": float(np.mean(recalls)),
        "hybrid_latency": _hybrid_search(conninfo, queries, rng),
    }


# A word of the synthetic text: w1 … wVOCABULARY, log-uniformly (Zipf's law, s = 1).
_WORD = f"'w' || floor(exp(random() * ln({VOCABULARY})))::int"


def zipf_words(rng: np.random.Generator, count: int, vocabulary: int = VOCABULARY) -> str:
    """`count` words drawn as `_WORD` draws them in SQL: w1 … w`vocabulary`, log-uniformly."""
    ranks = np.floor(np.exp(rng.random(count) * np.log(vocabulary)))
    return " ".join(f"w{int(rank)}" for rank in ranks)


def _hybrid_search(
    conninfo: str, vectors: np.ndarray[Any, Any], rng: np.random.Generator
) -> dict[str, float]:
    """Latency percentiles of whole searches, questions of words drawn like the text's,
    through a kept pool as the docs MCP server and the responder search."""
    embedder = SyntheticEmbedder()
    store = DocStore(conninfo, embedder)
    latencies = []
    if not store.open_pool():
        raise BenchmarkError("docs search could not keep connections (see the log above)")
    try:
        with store.connect() as conn:
            for vector in vectors:
                question = zipf_words(rng, WORDS_PER_QUESTION)
                embedder.vector = [float(value) for value in vector]
                start = time.perf_counter()
                store.search(conn, question, limit=TOP_K)
                latencies.append((time.perf_counter() - start) * 1000)
    finally:
        store.close()
    return {f"p{q}_ms": percentile(latencies, q) for q in (50, 95, 99)}


_NEAREST = sql.SQL(
    "SELECT chunk_id FROM doc_embeddings WHERE model = %s"
    " ORDER BY embedding::vector({}) <=> %s LIMIT {}"
).format(sql.Literal(DIMENSIONS), sql.Literal(TOP_K))


def _nearest(conn: psycopg.Connection[Any], query: np.ndarray[Any, Any]) -> list[int]:
    """The store's vector query (same text and ef_search as DocStore.search's vector side)."""
    return [row[0] for row in conn.execute(_NEAREST, (SYNTHETIC_MODEL, Vector(query)))]


def clustered_vectors(
    rng: np.random.Generator, centers: np.ndarray[Any, Any], n: int
) -> np.ndarray[Any, Any]:
    """Unit vectors around random centres: real embeddings cluster by topic."""
    picks = centers[rng.integers(0, len(centers), size=n)]
    points = picks + rng.normal(scale=0.6, size=picks.shape).astype(np.float32)
    norms: np.ndarray[Any, Any] = np.linalg.norm(points, axis=1, keepdims=True)
    unit: np.ndarray[Any, Any] = (points / norms).astype(np.float32)
    return unit


def _fresh_database(admin: str) -> str:
    with psycopg.connect(admin, autocommit=True) as conn:
        conn.execute(
            sql.SQL("DROP DATABASE IF EXISTS {} WITH (FORCE)").format(
                sql.Identifier(BENCH_DATABASE)
            )
        )
        conn.execute(sql.SQL("CREATE DATABASE {}").format(sql.Identifier(BENCH_DATABASE)))
    return psycopg.conninfo.make_conninfo(admin, dbname=BENCH_DATABASE)


def _drop_database(admin: str) -> None:
    with psycopg.connect(admin, autocommit=True) as conn:
        conn.execute(
            sql.SQL("DROP DATABASE IF EXISTS {} WITH (FORCE)").format(
                sql.Identifier(BENCH_DATABASE)
            )
        )


def _render(results: dict[str, Any], console: Console) -> None:
    ingest = results["ingest"]
    console.print(
        f"ingest: {ingest['chunks']} chunks from {ingest['documents']} pages in "
        f"{ingest['seconds']:.1f} s = {ingest['chunks_per_second']:.0f} chunks/s "
        f"({ingest['provider']})"
    )
    table = Table(title="heron bench docs: vector search (HNSW, top 10); hybrid search")
    for column in (
        "chunks",
        "p50 ms",
        "p95 ms",
        f"p95 <= {TARGET_P95_MS:g}",
        "recall@10",
        f">= {TARGET_RECALL}",
        "index build s",
        "hybrid p50",
        "hybrid p95",
    ):
        table.add_column(column, justify="right")
    for row in results["search"]:
        latency = row["latency"]
        p95 = latency["p95_ms"]
        table.add_row(
            f"{row['chunks']:,}",
            f"{latency['p50_ms']:.2f}",
            f"{p95:.2f}",
            "yes" if p95 <= TARGET_P95_MS else "no",
            f"{row['recall_at_10']:.3f}",
            "yes" if row["recall_at_10"] >= TARGET_RECALL else "no",
            f"{row['index_build_seconds']:.1f}",
            f"{row['hybrid_latency']['p50_ms']:.2f}",
            f"{row['hybrid_latency']['p95_ms']:.2f}",
        )
    console.print(table)
