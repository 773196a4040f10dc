"""Retrieval quality on a small labelled manual: does the right section come back?

The questions are worded the way people ask, mostly not with the passage's own words.
A guide for the bigger evaluation (issue 6), not the final judge.
"""

from __future__ import annotations

from pathlib import Path

import pytest

from heron.docsearch.ingest import ingest_path
from heron.docsearch.minilm import MiniLMEmbedder
from heron.docsearch.store import DocStore

MANUAL = Path(__file__).parent / "data" / "manual"

# question -> (file name, last heading of the section that answers it)
LABELLED = {
    "how can I add an index without blocking writes": (
        "indexes.md",
        "Building Indexes Concurrently",
    ),
    "which index type helps full text search": ("indexes.md", "GIN"),
    "my table file is still huge after deleting rows, how do I shrink it": (
        "vacuum.md",
        "Recovering Disk Space",
    ),
    "do I need to run vacuum manually": ("vacuum.md", "The Autovacuum Daemon"),
    "how does a replica stay up to date with the primary": (
        "replication.md",
        "Streaming Replication",
    ),
    "make a standby the new primary after a failure": ("replication.md", "Promoting a Standby"),
    "avoid losing committed transactions on failover": (
        "replication.md",
        "Synchronous Commit on Standbys",
    ),
    "push a message to other connected sessions": ("notify.html", "Sending Notifications"),
    "undo an accidental DROP TABLE from yesterday": ("backup.md", "Point-in-Time Recovery"),
    "export one database to a file": ("backup.md", "SQL Dump"),
    "let several workers pick different jobs without waiting on each other": (
        "locking.md",
        "Row-Level Locks",
    ),
    "two transactions waiting for each other forever": ("locking.md", "Deadlocks"),
}


@pytest.fixture(scope="module")
def model() -> MiniLMEmbedder:
    return MiniLMEmbedder()


def test_recall_at_5_on_the_labelled_manual(database_url, model):
    store = DocStore(database_url, model)
    ingest_path(store, MANUAL)
    misses = []
    with store.connect() as conn:
        for question, (file_name, heading) in LABELLED.items():
            hits = store.search(conn, question, limit=5)
            found = [
                (Path(h.source).name, h.heading_path[-1] if h.heading_path else "") for h in hits
            ]
            if (file_name, heading) not in found:
                misses.append(f"{question!r}: got {found}")
    recall = 1 - len(misses) / len(LABELLED)
    assert recall >= 0.9, "\n".join(misses)
