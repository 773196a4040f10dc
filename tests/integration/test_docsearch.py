"""Docs ingest and hybrid search against a real PostgreSQL with pgvector."""

from __future__ import annotations

import textwrap
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import Any

import psycopg
import pytest

from heron.docsearch.chunking import ChunkSize
from heron.docsearch.embedding import HashingEmbedder
from heron.docsearch.ingest import ingest_path
from heron.docsearch.store import FULL_TEXT, RARE_WORD_CHUNKS, DocStore
from tests.conftest import WatchedEmbedder, wait_until

VACUUM = textwrap.dedent(
    """\
    # Routine Vacuuming

    PostgreSQL databases require periodic maintenance known as vacuuming.

    ## Recovering Disk Space

    VACUUM FULL rewrites the entire table into a new disk file with no extra space,
    which returns unused space to the operating system. It takes an exclusive lock.

    ## Preventing Transaction ID Wraparound Failures

    Every table must be vacuumed at least once every two billion transactions,
    or old rows would appear to be in the future: the freeze horizon.
    """
)
NOTIFY = textwrap.dedent(
    """\
    <html><head><title>NOTIFY</title></head><body>
    <h1>NOTIFY</h1>
    <h2>Description</h2>
    <p>The NOTIFY command sends a notification event together with an optional payload
    string to each client application that has previously executed LISTEN channel.</p>
    </body></html>
    """
)


@pytest.fixture
def docs(tmp_path: Path) -> Path:
    root = tmp_path / "manual"
    root.mkdir()
    (root / "vacuum.md").write_text(VACUUM)
    (root / "notify.html").write_text(NOTIFY)
    (root / "notes.txt").write_text("Release notes mention nothing about vacuuming here.")
    (root / ".hidden").mkdir()
    (root / ".hidden" / "skip.md").write_text("# Secret\n\nnot documentation")
    (root / "image.png").write_bytes(b"\x89PNG")
    return root


@pytest.fixture
def store(database_url: str) -> DocStore:
    return DocStore(database_url, HashingEmbedder())


def counts(database_url: str) -> tuple[int, int, int]:
    with psycopg.connect(database_url) as conn:
        row = conn.execute(
            "SELECT (SELECT count(*) FROM doc_documents), (SELECT count(*) FROM doc_chunks),"
            " (SELECT count(*) FROM doc_embeddings)"
        ).fetchone()
    assert row is not None
    return (int(row[0]), int(row[1]), int(row[2]))


def test_ingest_then_search_finds_the_right_section(store, docs, database_url):
    totals = ingest_path(store, docs)
    assert (totals.documents, totals.removed, totals.documents_removed) == (3, 0, 0)
    documents, chunks, embeddings = counts(database_url)
    assert documents == 3
    assert chunks == embeddings == totals.added
    with store.connect() as conn:
        hits = store.search(conn, "how do I give disk space back to the operating system")
        assert hits[0].heading_path == ("Routine Vacuuming", "Recovering Disk Space")
        assert hits[0].link.endswith("vacuum.md#recovering-disk-space")
        notify = store.search(conn, "send a notification to listening clients")
        assert notify[0].title == "NOTIFY"
        assert notify[0].source.endswith("notify.html")
        assert store.search(conn, "   ") == []
        # only some of a question's words appear in the passage that answers it
        partial = store.search(conn, "which failures does the freeze horizon prevent")
        assert partial[0].heading_path[-1] == "Preventing Transaction ID Wraparound Failures"


def test_reingest_changes_only_what_changed_and_drops_what_vanished(store, docs, database_url):
    first = ingest_path(store, docs)
    again = ingest_path(store, docs)
    assert (again.added, again.removed, again.unchanged) == (0, 0, first.added)

    (docs / "vacuum.md").write_text(VACUUM.replace("two billion", "2^31"))
    (docs / "notes.txt").unlink()
    changed = ingest_path(store, docs)
    assert (changed.added, changed.removed) == (1, 1)
    assert changed.documents_removed == 1
    documents, chunks, embeddings = counts(database_url)
    assert documents == 2
    assert chunks == embeddings
    with store.connect() as conn:
        hit = store.search(conn, "2^31 transactions wraparound")[0]
    assert "2^31" in hit.text


def test_vectors_have_an_hnsw_index_per_model(store, docs, database_url):
    ingest_path(store, docs)
    with psycopg.connect(database_url) as conn:
        indexes = [
            row[0]
            for row in conn.execute(
                "SELECT indexdef FROM pg_indexes WHERE tablename = 'doc_embeddings'"
            )
        ]
    assert any("hnsw" in d and "vector(384)" in d and "hashing-384" in d for d in indexes)


def test_an_ingest_that_changed_chunks_leaves_fresh_statistics(store, docs, database_url):
    def analyzed() -> dict[str, int]:
        return dict(
            rows_of(
                database_url,
                "SELECT relname, analyze_count FROM pg_stat_user_tables"
                " WHERE relname IN ('doc_chunks', 'doc_terms')",
            )
        )

    before = analyzed()
    ingest_path(store, docs)
    wait_until(lambda: analyzed() == {"doc_chunks": 1, "doc_terms": 1}, what="both analyzed")
    assert before.get("doc_chunks", 0) == 0
    ingest_path(store, docs)  # nothing changed: nothing to do
    assert analyzed() == {"doc_chunks": 1, "doc_terms": 1}


def rows_of(database_url: str, query: str) -> list[tuple[Any, ...]]:
    with psycopg.connect(database_url) as conn:
        return conn.execute(query).fetchall()


def test_missing_path_is_a_clear_error(store, tmp_path):
    from heron.errors import HeronError

    with pytest.raises(HeronError, match="does not exist"):
        ingest_path(store, tmp_path / "nowhere")


def test_local_model_finds_passages_that_share_no_words_with_the_question(docs, database_url):
    from heron.docsearch.minilm import MiniLMEmbedder

    store = DocStore(database_url, MiniLMEmbedder())
    ingest_path(store, docs)
    with store.connect() as conn:
        hit = store.search(conn, "give freed storage back to the OS")[0]
        notify = store.search(conn, "push a message to subscribers")[0]
    assert hit.heading_path[-1] == "Recovering Disk Space"
    assert notify.title == "NOTIFY"


def test_new_chunk_sizes_re_embed_only_what_is_cut_differently(docs, database_url):
    sentences = " ".join(f"Sentence {n} says vacuum reclaims disk space." for n in range(60))
    (docs / "long.md").write_text(f"# Long\n\n{sentences}\n")
    first = ingest_path(DocStore(database_url, HashingEmbedder()), docs)

    smaller = DocStore(database_url, HashingEmbedder(), ChunkSize(400, 60))
    again = ingest_path(smaller, docs)
    assert again.removed > 0
    assert again.added > again.removed  # the long page is now cut into more, smaller chunks
    assert again.unchanged == first.added - again.removed  # short sections kept their vectors
    _, chunks, embeddings = counts(database_url)
    assert chunks == embeddings
    with psycopg.connect(database_url) as conn:
        lengths = [
            row[0]
            for row in conn.execute(
                "SELECT length(c.text) FROM doc_chunks c JOIN doc_documents d"
                " ON d.id = c.document_id WHERE d.source LIKE '%%long.md'"
            )
        ]
    assert len(lengths) > 4
    assert max(lengths) < 400


def test_switching_provider_embeds_every_chunk_again(docs, database_url):
    first = ingest_path(DocStore(database_url, HashingEmbedder()), docs)
    other = DocStore(database_url, HashingEmbedder(dimensions=256))  # another model name
    switched = ingest_path(other, docs)
    assert (switched.added, switched.removed, switched.unchanged) == (first.added, 0, 0)
    with psycopg.connect(database_url) as conn:
        models = dict(
            conn.execute("SELECT model, count(*) FROM doc_embeddings GROUP BY model").fetchall()
        )
    assert models == {"hashing-384": first.added, "hashing-256": first.added}
    assert ingest_path(other, docs).added == 0  # and then it is up to date
    with other.connect() as conn:
        hit = other.search(conn, "give disk space back to the operating system")[0]
    assert hit.heading_path[-1] == "Recovering Disk Space"


def test_full_text_lets_rare_words_and_headings_decide(store, tmp_path):
    root = tmp_path / "ranking"
    root.mkdir()
    for n in range(6):
        (root / f"rows{n}.md").write_text(f"# Rows {n}\n\nA table has rows; table after table.\n")
    (root / "toast.md").write_text("# Storage\n\nA table keeps oversized values in TOAST.\n")
    (root / "heading.md").write_text("# Checkpoints\n\nThey flush dirty pages.\n")
    (root / "mention.md").write_text("# Tuning\n\nSpread checkpoints out over time.\n")
    ingest_path(store, root)

    # "table" is in every chunk but one and thrice in some; "toast" is in one.
    assert full_text(store, "table toast")[0] == "A table keeps oversized values in TOAST."
    # The same word counts more in a heading than in the text.
    assert full_text(store, "checkpoints")[:2] == [
        "They flush dirty pages.",
        "Spread checkpoints out over time.",
    ]


def full_text(store: DocStore, query: str, rare_word_chunks: int = RARE_WORD_CHUNKS) -> list[str]:
    """The texts the full-text ranking gives, best first."""
    params = {"query": query, "limit": 10, "rare_word_chunks": rare_word_chunks}
    with store.connect() as conn:
        return [
            conn.execute("SELECT text FROM doc_chunks WHERE id = %s", (r["id"],)).fetchone()["text"]
            for r in conn.execute(FULL_TEXT, params).fetchall()
        ]


def test_only_the_rarest_words_choose_the_candidates(store, tmp_path):
    root = tmp_path / "rarity"
    root.mkdir()
    for n in range(5):
        (root / f"table{n}.md").write_text(f"# Tables {n}\n\nA table has rows.\n")
    (root / "toast.md").write_text("# Storage\n\nA table keeps oversized values in TOAST.\n")
    (root / "wal.md").write_text("# WAL\n\nThe log is written before the table.\n")
    ingest_path(store, root)
    # "toast" (one chunk) and "log" (one) fill a budget of two chunks: "table" (seven)
    # only scores what they found.
    assert full_text(store, "table toast log", rare_word_chunks=2) == [
        "A table keeps oversized values in TOAST.",
        "The log is written before the table.",
    ]
    assert len(full_text(store, "table toast log", rare_word_chunks=8)) == 2
    assert len(full_text(store, "table toast log", rare_word_chunks=9)) == 7
    # The rarest word chooses however common it is, unless every word is: then the
    # chunks with both of the two rarest are the candidates.
    assert len(full_text(store, "table", rare_word_chunks=1)) == 7
    assert len(full_text(store, "table rows", rare_word_chunks=1)) == 5
    assert len(full_text(store, "table toast", rare_word_chunks=1)) == 1
    assert len(full_text(store, "table rows", rare_word_chunks=6)) == 5
    assert len(full_text(store, "table rows", rare_word_chunks=12)) == 7
    assert full_text(store, "nothing matches this") == []


def test_word_counts_follow_every_ingest_and_removal(store, docs, database_url):
    def counts_match() -> bool:
        with psycopg.connect(database_url) as conn:
            kept = dict(conn.execute("SELECT lexeme, chunks FROM doc_terms").fetchall())
            recount = dict(
                conn.execute(
                    "SELECT lexeme, count(*) FROM doc_chunks,"
                    " unnest(tsvector_to_array(search)) AS lexeme GROUP BY lexeme"
                    " UNION ALL SELECT '', count(*) FROM doc_chunks"
                ).fetchall()
            )
        return kept == {lexeme: n for lexeme, n in recount.items() if n or lexeme == ""}

    ingest_path(store, docs)
    assert counts_match()
    (docs / "vacuum.md").write_text(VACUUM.replace("two billion", "2^31 toasty"))
    (docs / "notes.txt").unlink()  # its document goes, and its chunks with it (cascade)
    ingest_path(store, docs)
    assert counts_match()
    with psycopg.connect(database_url) as conn:
        conn.execute("UPDATE doc_chunks SET text = text || ' appended'")
        assert conn.execute("SELECT chunks FROM doc_terms WHERE lexeme = 'append'").fetchone()
    assert counts_match()
    with psycopg.connect(database_url) as conn:
        conn.execute("DELETE FROM doc_documents")
        assert conn.execute("SELECT lexeme, chunks FROM doc_terms").fetchall() == [("", 0)]
    ingest_path(store, docs)
    with psycopg.connect(database_url) as conn:
        conn.execute("TRUNCATE doc_documents CASCADE")
    assert counts_match()


def test_search_gives_one_passage_per_section(store, tmp_path):
    root = tmp_path / "sections"
    root.mkdir()
    long = " ".join(f"Checkpoint tuning note {n} about checkpoint spacing." for n in range(80))
    (root / "wal.md").write_text(
        f"# WAL\n\n## Checkpoints\n\n{long}\n\n## Archiving\n\nCheckpoint files are archived.\n"
    )
    ingest_path(store, root)
    with store.connect() as conn:
        chunks = conn.execute("SELECT count(*) AS n FROM doc_chunks").fetchone()
        hits = store.search(conn, "checkpoint spacing", limit=5)
    assert chunks is not None
    assert chunks["n"] > 3  # the long section is several chunks
    assert [hit.heading_path[-1] for hit in hits] == ["Checkpoints", "Archiving"]


def test_the_question_is_embedded_while_the_server_ranks_its_words(database_url, docs):
    """The full-text query is on its way before the embedding starts: with its table
    locked, the search still gets as far as embedding the question."""
    embedder = WatchedEmbedder()
    embedding = embedder.started
    store = DocStore(database_url, embedder)
    ingest_path(store, docs)
    with store.connect() as conn:
        alone = store.search(conn, "send a notification to listening clients")
    embedding.clear()

    def search() -> list[Any]:
        with store.connect() as conn:
            return store.search(conn, "send a notification to listening clients")

    # the lock goes (locker closes) before the thread is waited for, even on a failure
    with ThreadPoolExecutor(1) as thread, psycopg.connect(database_url) as locker:
        locker.execute("LOCK TABLE doc_terms IN ACCESS EXCLUSIVE MODE")
        found = thread.submit(search)
        assert embedding.wait(timeout=30)
        assert not found.done()  # its full text still waits for the lock
        locker.rollback()
        assert found.result(timeout=30) == alone
