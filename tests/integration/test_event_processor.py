"""The seed API's queue semantics against a real PostgreSQL."""

from __future__ import annotations

import threading
from datetime import timedelta

import psycopg
import pytest
from sqlalchemy import text

from heron import DatabaseConnection, EventProcessor, enqueue
from heron.config import Config
from heron.errors import EventNotFoundError, EventStateError


def processor(db: DatabaseConnection, config: Config, worker_id: str = "w1") -> EventProcessor:
    return EventProcessor(db._sessions(), worker_id, config)


def expire_lease(db: DatabaseConnection, event_id: int) -> None:
    """Move the lease deadline into the past: what time does to a dead worker's lease."""
    with db.session() as s:
        s.execute(
            text(
                "UPDATE events SET visibility_timeout = now() - interval '1 second' WHERE id = :id"
            ),
            {"id": event_id},
        )


def make_visible(db: DatabaseConnection, event_id: int) -> None:
    """Skip the rest of a backoff wait."""
    with db.session() as s:
        s.execute(text("UPDATE events SET run_after = now() WHERE id = :id"), {"id": event_id})


def test_claim_returns_oldest_visible_event_with_a_lease(db, config):
    p = processor(db, config)
    first = p.enqueue("a", {"n": 1})
    p.enqueue("b", {"n": 2})
    p.enqueue("later", {}, delay_seconds=3600)
    claimed = p.claim_event()
    assert claimed is not None
    assert claimed.id == first.id
    assert claimed.status == "processing"
    assert claimed.claimed_by == "w1"
    assert claimed.payload == {"n": 1}
    assert claimed.attempts == 1
    assert claimed.lease_id is not None
    assert claimed.visibility_timeout is not None
    assert claimed.visibility_timeout - claimed.claimed_at == timedelta(seconds=300)
    assert p.claim_event().event_type == "b"
    assert p.claim_event() is None  # "later" is not visible yet


def test_dedupe_key_returns_the_existing_event_and_does_nothing_else(db, config):
    p = processor(db, config)
    first = p.enqueue("slack", {"text": "hi"}, dedupe_key="Ev123")
    assert p.claim_event() is not None
    again = p.enqueue("slack", {"text": "changed"}, dedupe_key="Ev123")
    assert again.id == first.id
    assert again.payload == {"text": "hi"}
    assert again.status == "processing"
    assert p.get_queue_stats()["total"] == 1


def test_enqueue_joins_the_callers_transaction(db, config):
    def enqueue_then_fail() -> None:
        with db.session() as s:
            enqueue(s, "x", {"n": 1})
            raise RuntimeError("rolled back")

    with pytest.raises(RuntimeError):
        enqueue_then_fail()
    assert processor(db, config).get_queue_depth() == 0


def test_concurrent_claimers_never_get_the_same_event(db, config):
    p = processor(db, config)
    with db.session() as s:
        s.execute(text("INSERT INTO events (event_type) SELECT 'x' FROM generate_series(1, 600)"))
    claimed: dict[str, list[int]] = {}
    start = threading.Barrier(8)

    def claimer(name: str) -> None:
        mine = processor(db, config, name)
        start.wait()
        got = claimed.setdefault(name, [])
        while batch := mine.claim_events(3):
            got.extend(e.id for e in batch)

    threads = [threading.Thread(target=claimer, args=(f"w{i}",)) for i in range(8)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    ids = [i for got in claimed.values() for i in got]
    assert len(ids) == 600
    assert len(set(ids)) == 600
    assert sum(1 for got in claimed.values() if got) > 1  # they really competed
    assert p.get_queue_stats()["processing"] == 600
    with db.session() as s:
        claims = s.execute(text("SELECT sum(attempts), max(attempts) FROM events")).one()
    assert tuple(claims) == (600, 1)


def test_skip_locked_does_not_block_on_a_locked_event(db, config, database_url):
    p = processor(db, config)
    locked = p.enqueue("x")
    free = p.enqueue("x")
    with psycopg.connect(database_url) as holder:
        holder.execute("SELECT id FROM events WHERE id = %s FOR UPDATE", (locked.id,))
        with db.session() as s:
            s.execute(text("SET statement_timeout = '2s'"))
            other = EventProcessor(s, "w2", config)
            claimed = other.claim_event()  # would raise on timeout if it waited for the lock
            assert claimed is not None
            assert claimed.id == free.id
            assert other.claim_event() is None


def test_failure_retries_with_backoff_then_fails_for_good(db, config):
    config = config.model_copy(update={"retry_backoff_base_seconds": 10.0})
    p = processor(db, config)
    event = p.enqueue("x")
    delays = []
    for attempt in range(4):
        claimed = p.claim_event()
        assert claimed is not None
        assert claimed.id == event.id
        assert claimed.attempts == attempt + 1
        assert p.fail_event(claimed, f"boom {attempt}")
        after = p.get_event(event.id)
        delays.append((after.run_after - after.updated_at).total_seconds())
        if after.status == "pending":
            assert p.claim_event() is None  # still backing off
            make_visible(db, event.id)
    final = p.get_event(event.id)
    assert delays[:3] == [10, 20, 40]
    assert final.status == "failed"
    assert final.retry_count == 3
    assert final.error_message == "boom 3"
    outcomes = [(a.attempt, a.outcome, a.error) for a in p.get_attempts(event.id)]
    assert outcomes == [
        (1, "retry", "boom 0"),
        (2, "retry", "boom 1"),
        (3, "retry", "boom 2"),
        (4, "failed", "boom 3"),
    ]
    assert p.claim_event() is None


def test_permanent_failure_skips_retries(db, config):
    p = processor(db, config)
    p.enqueue("x")
    claimed = p.claim_event()
    assert p.fail_event(claimed, "cannot work", permanent=True)
    assert p.get_event(claimed.id).status == "failed"


def test_expired_lease_makes_event_claimable_again_and_counts_as_attempt(db, config):
    p = processor(db, config, "dead")
    p.enqueue("x")
    claimed = p.claim_event()
    assert processor(db, config, "other").claim_event() is None
    expire_lease(db, claimed.id)
    assert p.rescue_expired() == 1
    rescued = p.get_event(claimed.id)
    assert rescued.status == "pending"
    assert rescued.retry_count == 1
    assert "lease expired (held by dead)" in rescued.error_message
    again = processor(db, config, "other").claim_event()
    assert again is not None
    assert again.id == claimed.id
    assert again.attempts == 2
    assert [(a.worker_id, a.outcome) for a in p.get_attempts(claimed.id)] == [
        ("dead", "lease_expired")
    ]


def test_a_stale_holder_cannot_complete_or_fail(db, config, caplog):
    stale = processor(db, config, "stale")
    fresh = processor(db, config, "fresh")
    stale.enqueue("x")
    old = stale.claim_event()
    expire_lease(db, old.id)
    assert stale.complete_event(old) is False  # lease over, even before anyone re-claims
    stale.rescue_expired()
    new = fresh.claim_event()
    assert new.id == old.id
    assert new.lease_id != old.lease_id
    assert stale.complete_event(old) is False
    assert stale.fail_event(old, "late") is False
    assert fresh.get_event(old.id).status == "processing"
    assert fresh.complete_event(new) is True
    done = fresh.get_event(old.id)
    assert done.status == "completed"
    assert done.error_message == "lease expired (held by stale)"


def test_lease_expiry_after_last_retry_fails_the_event(db, config):
    config = config.model_copy(update={"max_retry_count": 0})
    p = processor(db, config)
    p.enqueue("x")
    claimed = p.claim_event()
    expire_lease(db, claimed.id)
    p.rescue_expired()
    assert p.get_event(claimed.id).status == "failed"


def test_heartbeat_extends_only_held_leases(db, config):
    p = processor(db, config)
    p.enqueue("x")
    p.enqueue("x")
    mine, lost = p.claim_events(2)
    expire_lease(db, lost.id)
    with db.session() as s:
        s.execute(
            text(
                "UPDATE events SET visibility_timeout = now() + interval '1 second' WHERE id = :id"
            ),
            {"id": mine.id},
        )
    assert p.heartbeat([mine, lost]) == {mine.id}
    renewed = p.get_event(mine.id)
    assert renewed.visibility_timeout - renewed.updated_at == timedelta(seconds=300)


def test_replay_requeues_a_failed_event_and_keeps_its_history(db, config):
    p = processor(db, config)
    p.enqueue("x")
    claimed = p.claim_event()
    p.fail_event(claimed, "bad", permanent=True)
    replayed = p.replay_event(claimed.id)
    assert replayed.status == "pending"
    assert replayed.retry_count == 0
    again = p.claim_event()
    assert again.id == claimed.id
    assert again.attempts == 2
    assert p.complete_event(again)
    history = [(a.attempt, a.outcome, a.error) for a in p.get_attempts(claimed.id)]
    assert history == [(1, "failed", "bad"), (2, "completed", None)]
    with pytest.raises(EventStateError, match="only failed events can be replayed"):
        p.replay_event(claimed.id)
    with pytest.raises(EventNotFoundError):
        p.replay_event(10**9)


def test_queue_stats_and_depth(db, config):
    p = processor(db, config)
    for _ in range(3):
        p.enqueue("x")
    done = p.claim_event()
    p.complete_event(done)
    p.claim_event()
    assert p.get_queue_stats() == {
        "pending": 1,
        "processing": 1,
        "completed": 1,
        "failed": 0,
        "total": 3,
    }
    assert p.get_queue_depth() == 1


def test_hot_path_never_scans_the_whole_events_table(database_url):
    """psycopg prepares statements and PostgreSQL may switch them to a generic plan, which
    does not know the LIMIT: even that plan must use indexes, whatever the table size."""
    from heron.queue import queries

    with psycopg.connect(database_url, autocommit=True) as conn:
        if conn.info.server_version < 160000:
            pytest.skip("EXPLAIN (GENERIC_PLAN) needs PostgreSQL 16")
        conn.execute("INSERT INTO events (event_type) SELECT 'x' FROM generate_series(1, 5000)")
        conn.execute("ANALYZE events")
        for name in ("complete_and_claim", "heartbeat", "release", "end_attempt"):
            body = _numbered_placeholders(queries.query(name))
            rows = conn.execute(b"EXPLAIN (GENERIC_PLAN) " + body.encode()).fetchall()
            plan = "\n".join(row[0] for row in rows)
            assert "Seq Scan on events" not in plan, f"{name}:\n{plan}"
            if name in ("complete_and_claim", "heartbeat", "release"):
                # held events are found by id, not by walking recent leases
                assert "Index Cond: (id = ANY" in plan, f"{name}:\n{plan}"


def _numbered_placeholders(query: str) -> str:
    """%(name)s placeholders as $1, $2, ... (what EXPLAIN (GENERIC_PLAN) takes)."""
    import re

    numbers: dict[str, str] = {}
    return re.sub(r"%\((\w+)\)s", lambda m: numbers.setdefault(m[1], f"${len(numbers) + 1}"), query)
