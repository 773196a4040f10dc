"""Docs ingest and hybrid search against a real PostgreSQL with pgvector."""

from __future__ import annotations

import textwrap
from pathlib import Path

import psycopg
import pytest

from heron.docsearch.embedding import HashingEmbedder
from heron.docsearch.ingest import ingest_path
from heron.docsearch.store import DocStore

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
