"""The worker pool against a real PostgreSQL: wake-ups, retries, leases, shutdown."""

from __future__ import annotations

import asyncio
import threading
from collections import Counter

import psycopg
import pytest
import structlog
from structlog.testing import capture_logs

from heron import DatabaseConnection, EventProcessor, WorkerPool
from heron.errors import PermanentError
from tests.conftest import wait_until


def stats(db: DatabaseConnection, config) -> dict[str, int]:
    with db.session() as s:
        return EventProcessor(s, "test", config).get_queue_stats()


def enqueue_many(db: DatabaseConnection, config, n: int, event_type: str = "x") -> list[int]:
    with db.session() as s:
        p = EventProcessor(s, "test", config)
        return [p.enqueue(event_type, {"n": i}).id for i in range(n)]


@pytest.fixture
def pools():
    started: list[WorkerPool] = []
    yield started
    for pool in started:
        pool.stop()


def test_seed_example_runs_sync_handlers(db, config, pools):
    seen: list[int] = []
    pool = WorkerPool(3, db, lambda event: seen.append(event.payload["n"]), config=config)
    pools.append(pool)
    pool.start()
    enqueue_many(db, config, 50)
    wait_until(lambda: stats(db, config)["completed"] == 50, what="50 completions")
    assert sorted(seen) == list(range(50))
    s = pool.get_stats()
    assert s["workers_running"] == 3
    assert s["total_events_processed"] == 50
    assert s["completed"] == 50
    assert pool.health_check() is True
    pool.stop()
    assert pool.health_check() is False
    assert pool.get_stats()["workers_running"] == 0


def test_notify_wakes_an_idle_pool_for_a_plain_insert(db, config, database_url, pools):
    """The poll is 30 s: only NOTIFY (fired by the trigger) can deliver this in time."""
    arrived = threading.Event()

    async def handle(event):
        arrived.set()

    pool = WorkerPool(2, db, handle, config=config)
    pools.append(pool)
    pool.start()
    wait_until(lambda: pool.listening, what="LISTEN")
    with psycopg.connect(database_url, autocommit=True) as conn:
        conn.execute("INSERT INTO events (event_type, payload) VALUES ('psql', '{}')")
    assert arrived.wait(10), "an idle worker was not woken by NOTIFY"


def test_failures_retry_then_fail_for_good_and_count(db, config, pools):
    calls: Counter[int] = Counter()

    async def handle(event):
        calls[event.id] += 1
        if event.payload["n"] == 0:
            raise RuntimeError("always broken")
        if event.payload["n"] == 1 and event.retry_count == 0:
            raise RuntimeError("broken once")
        if event.payload["n"] == 2:
            raise PermanentError("hopeless")

    pool = WorkerPool(2, db, handle, config=config.model_copy(update={"max_retry_count": 2}))
    pools.append(pool)
    pool.start()
    ids = enqueue_many(db, config, 4)
    wait_until(lambda: stats(db, config)["completed"] + stats(db, config)["failed"] == 4)
    assert [calls[i] for i in ids] == [3, 2, 1, 1]
    s = pool.get_stats()
    assert (s["completed"], s["failed"], s["retried"]) == (2, 2, 3)
    with db.session() as session:
        broken = EventProcessor(session, "t", config).get_event(ids[0])
    assert broken.status == "failed"
    assert broken.error_message == "RuntimeError: always broken"


def test_heartbeat_keeps_a_long_handler_from_running_twice(db, config, pools):
    runs: Counter[int] = Counter()

    async def slow(event):
        runs[event.id] += 1
        await asyncio.sleep(2.5)  # the work itself: two and a half leases long

    # 1 s, renewed every 1/3 s: short enough to expire mid-run without the heartbeat, long
    # enough that a loaded CI machine does not delay a renewal past it
    short_lease = config.model_copy(update={"event_visibility_timeout": 1.0})
    pool = WorkerPool(1, db, slow, config=short_lease)
    rescuer = WorkerPool(1, db, slow, config=short_lease)  # would steal an unrenewed lease
    pools.extend([pool, rescuer])
    pool.start()
    (event_id,) = enqueue_many(db, config, 1)
    wait_until(lambda: runs[event_id] == 1, what="the first run")
    rescuer.start()
    wait_until(lambda: stats(db, config)["completed"] == 1)
    assert runs[event_id] == 1
    assert pool.get_stats()["lost_leases"] == 0


def test_a_dead_workers_event_is_rescued_and_completed(db, config, pools):
    with db.session() as s:
        p = EventProcessor(
            s, "dead-worker", config.model_copy(update={"event_visibility_timeout": 0.2})
        )
        p.enqueue("x")
        claimed = p.claim_event()
    done = threading.Event()
    pool = WorkerPool(1, db, lambda e: done.set(), config=config)
    pools.append(pool)
    pool.start()
    assert done.wait(15)
    wait_until(lambda: stats(db, config)["completed"] == 1)
    with db.session() as s:
        attempts = EventProcessor(s, "t", config).get_attempts(claimed.id)
    assert [(a.worker_id, a.outcome) for a in attempts] == [
        ("dead-worker", "lease_expired"),
        (pool.worker_id, "completed"),
    ]


def test_graceful_stop_lets_in_flight_events_finish(db, config, pools):
    started = threading.Event()
    release = threading.Event()

    def handle(event):
        started.set()
        release.wait(10)

    pool = WorkerPool(1, db, handle, config=config)
    pools.append(pool)
    pool.start()
    enqueue_many(db, config, 2)
    assert started.wait(10)
    stopper = threading.Thread(target=pool.stop)
    stopper.start()
    wait_until(lambda: not pool._running, what="the pool to stop claiming")
    release.set()
    stopper.join(20)
    assert not stopper.is_alive()
    after = stats(db, config)
    assert (after["completed"], after["pending"], after["processing"]) == (1, 1, 0)


def test_stop_releases_events_that_outlive_the_grace_period(db, config, pools):
    started = threading.Event()

    async def hang(event):
        started.set()
        await asyncio.Event().wait()

    pool = WorkerPool(
        2, db, hang, config=config.model_copy(update={"heron_shutdown_grace_seconds": 0.1})
    )
    pools.append(pool)
    pool.start()
    ids = enqueue_many(db, config, 2)
    assert started.wait(10)
    wait_until(lambda: stats(db, config)["processing"] == 2)
    pool.stop()
    assert stats(db, config)["pending"] == 2
    assert pool.get_stats()["released"] == 2
    with db.session() as s:
        p = EventProcessor(s, "t", config)
        assert all(p.get_event(i).retry_count == 0 for i in ids)
        assert [a.outcome for a in p.get_attempts(ids[0])] == ["released"]


def test_stop_is_idempotent_and_safe_before_start(db, config):
    pool = WorkerPool(1, db, print, config=config)
    pool.stop()
    pool.stop()
    pool.start()  # a stopped pool stays stopped
    assert pool.get_stats()["workers_running"] == 0
    assert pool.health_check() is False


def test_pool_size_bounds_concurrency(db, config, pools):
    running = 0
    peak = 0
    lock = threading.Lock()

    def handle(event):
        nonlocal running, peak
        with lock:
            running += 1
            peak = max(peak, running)
        threading.Event().wait(0.02)
        with lock:
            running -= 1

    pool = WorkerPool(3, db, handle, config=config)
    pools.append(pool)
    enqueue_many(db, config, 30)
    pool.start()
    wait_until(lambda: stats(db, config)["completed"] == 30)
    assert peak == 3


def test_async_callable_objects_are_awaited(db, config, pools):
    from heron.queue.handlers import HandlerRegistry

    registry = HandlerRegistry()
    seen = threading.Event()

    async def handle(event):
        await asyncio.sleep(0)
        seen.set()
        raise PermanentError("ran")

    registry.register("x", handle)
    pool = WorkerPool(1, db, registry, config=config)
    pools.append(pool)
    pool.start()
    enqueue_many(db, config, 1)
    assert seen.wait(10)
    wait_until(lambda: stats(db, config)["failed"] == 1, what="the handler's error to count")


def test_stop_under_load_leaves_nothing_held(db, config, pools):
    """Fast handlers make the pool claim ahead; stopping gives every unstarted event back."""
    handled = threading.Event()
    count = 0

    async def fast(event):
        nonlocal count
        count += 1
        if count == 300:
            handled.set()

    pool = WorkerPool(2, db, fast, config=config)
    pools.append(pool)
    with db.session() as s:
        from sqlalchemy import text

        s.execute(text("INSERT INTO events (event_type) SELECT 'x' FROM generate_series(1, 5000)"))
    pool.start()
    assert handled.wait(30)
    pool.stop()
    after = stats(db, config)
    assert after["processing"] == 0
    assert after["completed"] + after["pending"] == 5000
    assert after["completed"] == pool.get_stats()["completed"]


@pytest.mark.parametrize("kind", ["sync", "async"])
def test_every_line_a_handler_logs_names_its_event_and_worker(db, config, pools, kind):
    handler_log = structlog.get_logger("tests.handler")

    def sync_handle(event):
        handler_log.info("handled")

    async def async_handle(event):
        await asyncio.sleep(0)  # the other events' tasks run in between
        handler_log.info("handled")

    with capture_logs(processors=[structlog.contextvars.merge_contextvars]) as lines:
        pool = WorkerPool(3, db, sync_handle if kind == "sync" else async_handle, config=config)
        pools.append(pool)
        pool.start()
        ids = enqueue_many(db, config, 6)
        wait_until(lambda: stats(db, config)["completed"] == 6, what="6 completions")
        pool.stop()
    handled = [line for line in lines if line["event"] == "handled"]
    assert sorted(line["event_id"] for line in handled) == sorted(ids)
    assert all(line["worker_id"] == pool.worker_id for line in handled)
    assert all(line["event_type"] == "x" for line in handled)
