"""pgvector tables made at runtime: one embeddings table per use, one HNSW index per model.

The tables live outside the migrations because pgvector is optional and the vector's
dimension follows the embedding provider. Docs search and the Slack archive both use
this; the statements are returned, not run, so that sync and async code can share them.
"""

from __future__ import annotations

import re
from typing import Final, LiteralString

from psycopg import sql

from heron.docsearch.embedding import Embedder

PGVECTOR_AVAILABLE: Final = "SELECT 1 FROM pg_available_extensions WHERE name = 'vector'"
_SAFE_NAME = re.compile(r"[^a-z0-9]+")


def hnsw_index_name(table: str, model: str) -> str:
    """The per-model index's name: `<table>_<model, lowercased and made safe>_hnsw`."""
    return f"{table}_{_SAFE_NAME.sub('_', model.lower())}_hnsw"


def vector_table_statements(
    table: LiteralString, columns: LiteralString, embedder: Embedder
) -> list[sql.SQL | sql.Composed]:
    """Run in one transaction: lock, create pgvector, the table and this model's index.

    `columns` is the table's column list (it must hold `model TEXT` and `embedding vector`).
    The index is a partial expression index, cosine, so that models of different
    dimensions share one table; queries must order by `embedding::vector(N)` and filter
    on `model = '<name>'` to use it.
    """
    index = hnsw_index_name(table, embedder.name)
    return [
        sql.SQL("SELECT pg_advisory_xact_lock(hashtext({}))").format(sql.Literal(f"heron {table}")),
        sql.SQL("CREATE EXTENSION IF NOT EXISTS vector"),
        sql.SQL("CREATE TABLE IF NOT EXISTS {} ({})").format(
            sql.Identifier(table), sql.SQL(columns)
        ),
        sql.SQL(
            "CREATE INDEX IF NOT EXISTS {} ON {} USING hnsw "
            "((embedding::vector({})) vector_cosine_ops) WHERE model = {}"
        ).format(
            sql.Identifier(index),
            sql.Identifier(table),
            sql.Literal(embedder.dimensions),
            sql.Literal(embedder.name),
        ),
    ]


def vector_literal(vector: list[float]) -> str:
    """pgvector's text form, for a `%s::vector` parameter (no type registration needed)."""
    return "[" + ",".join(repr(float(value)) for value in vector) + "]"
