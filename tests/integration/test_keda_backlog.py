"""The KEDA overlay's backlog query (deploy/k8s/keda) on the real queue: events running or
due count, events waiting out a backoff or finished do not."""

from __future__ import annotations

from pathlib import Path

import psycopg
import yaml

from heron import DatabaseConnection, EventProcessor, enqueue
from heron.config import Config

SCALED_OBJECT = (
    Path(__file__).resolve().parents[2] / "deploy" / "k8s" / "keda" / "scaledobject.yaml"
)


def backlog_query() -> str:
    (scaled,) = [
        r for r in yaml.safe_load_all(SCALED_OBJECT.read_text()) if r["kind"] == "ScaledObject"
    ]
    (trigger,) = [t for t in scaled["spec"]["triggers"] if t["type"] == "postgresql"]
    query: str = trigger["metadata"]["query"]
    return query


def test_the_backlog_counts_events_running_or_due(
    db: DatabaseConnection, config: Config, database_url: str
) -> None:
    with db.session() as session:
        for n in range(4):
            enqueue(session, "slack.question", {"n": n})
        enqueue(session, "slack.question", {"n": "later"}, delay_seconds=600)  # backing off
    worker = EventProcessor(db._sessions(), "w1", config)
    finished = worker.claim_event()
    running = worker.claim_event()
    assert finished is not None
    assert running is not None
    assert worker.complete_event(finished)
    with psycopg.connect(database_url) as conn:
        row = conn.execute(backlog_query()).fetchone()
    assert row == (3,)  # one running, two due; not the finished one nor the delayed one
