"""Heron's side of the queue benchmark: its real WorkerPool, no-op or timing handlers.

Claim latency is timed around the QueueStore call the pool claims with (pool checkout, the
statement and building the Event values), patched in for the run only: what the pool
waits for before it can start handlers.
"""

from __future__ import annotations

import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from typing import Any

from heron.bench import database as benchdb
from heron.bench.database import BenchDatabase
from heron.bench.producer import ENTRYPOINT, ProducerProcess, ProducerSpec, System
from heron.bench.results import (
    ClaimSample,
    ClaimStats,
    DrainResult,
    LatencyResult,
    SteadyResult,
)
from heron.config import Config
from heron.database.connection import DatabaseConnection
from heron.database.models import Event
from heron.errors import BenchmarkError
from heron.queue.store import QueueStore
from heron.queue.worker_pool import WorkerPool

WARMUP_SECONDS = 1.0  # consumers connected and listening before the producer starts
_STALL_SECONDS = 60.0


def _claimed(result: tuple[set[int], list[Any]]) -> int:
    """Events claimed, from complete_and_claim's (completed ids, events) pair."""
    return len(result[1])


@contextmanager
def timed_claims() -> Iterator[list[ClaimSample]]:
    """Record every claim round trip of QueueStore while the block runs (its time includes
    the completions that ride along)."""
    name = "complete_and_claim"
    original = getattr(QueueStore, name)
    samples: list[ClaimSample] = []

    async def timed(self: QueueStore, *args: Any, **kwargs: Any) -> Any:
        at = time.time()
        start = time.perf_counter()
        result = await original(self, *args, **kwargs)
        samples.append(ClaimSample(at, time.perf_counter() - start, _claimed(result)))
        return result

    setattr(QueueStore, name, timed)
    try:
        yield samples
    finally:
        setattr(QueueStore, name, original)


class HeronRuns:
    """Runs each scenario against a fresh WorkerPool of `workers` on the benchmark database."""

    name = "Heron"
    system: System = "heron"

    def __init__(
        self,
        bench: BenchDatabase,
        db: DatabaseConnection,
        config: Config,
        workers: int,
        *,
        pgqueuer_tables: bool,
    ) -> None:
        self.bench = bench
        self.pgqueuer_tables = pgqueuer_tables  # emptied too, so no run inherits the other's rows
        self.db = db
        self.config = config
        self.workers = workers

    def settings(self) -> dict[str, Any]:
        """How Heron was configured for the runs."""
        return {
            "shape": f"WorkerPool({self.workers}): one claim loop, up to {self.workers} events "
            f"in flight, claims min(free slots, HERON_CLAIM_BATCH_SIZE) per statement",
            "workers": self.workers,
            "claim_batch_size": self.config.heron_claim_batch_size,
            "poll_interval_s": self.config.heron_poll_interval,
            "visibility_timeout_s": self.config.event_visibility_timeout,
            "producer_client": "psycopg (named query enqueue_many)",
            "claim_timed": "QueueStore.complete_and_claim",
        }

    def _pool(self, handler: Callable[[Event], Any]) -> WorkerPool:
        return WorkerPool(self.workers, self.db, handler, config=self.config, worker_id="bench")

    def drain(self, events: int) -> DrainResult:
        """Queue `events`, then time a pool from start until every one is completed."""
        benchdb.reset(self.bench, pgqueuer=self.pgqueuer_tables)
        benchdb.fill_heron(self.bench, events, ENTRYPOINT)
        benchdb.settle(self.bench)

        async def handler(event: Event) -> None:
            return None

        pool = self._pool(handler)
        with timed_claims() as samples:
            try:
                start = time.perf_counter()
                pool.start()
                _wait_completed(pool, events)
                elapsed = time.perf_counter() - start
            finally:
                pool.stop()
        left = benchdb.pending(self.bench, self.system)
        if left:
            raise BenchmarkError(f"Heron drain finished with {left} events still pending")
        return DrainResult(events, elapsed, ClaimStats.of(samples))

    def steady(self, seconds: float) -> SteadyResult:
        """Completed events per second while one producer inserts batches of 10 flat out."""
        benchdb.reset(self.bench, pgqueuer=self.pgqueuer_tables)
        benchdb.settle(self.bench)
        handled = [0]

        async def handler(event: Event) -> None:
            handled[0] += 1

        spec = ProducerSpec(self.system, self.bench.conninfo, batch=10)
        pool = self._pool(handler)
        with ProducerProcess(spec) as producer, timed_claims() as samples:
            try:
                pool.start()
                _check_running(pool)
                time.sleep(WARMUP_SECONDS)
                producer.go()
                at, start, before = time.time(), time.perf_counter(), handled[0]
                time.sleep(seconds)
                after, elapsed = handled[0], time.perf_counter() - start
                _check_running(pool)
                report = producer.finish()
                backlog = benchdb.pending(self.bench, self.system)
            finally:
                pool.stop()
        window = [s for s in samples if at <= s.at <= at + elapsed]
        return SteadyResult(
            elapsed, after - before, report.enqueued, backlog, ClaimStats.of(window)
        )

    def latency(self, seconds: float, offered_rate: float) -> LatencyResult:
        """Paced single-event inserts from another process: claim and wake-up latencies."""
        benchdb.reset(self.bench, pgqueuer=self.pgqueuer_tables)
        benchdb.settle(self.bench)
        wake: list[tuple[float, float]] = []  # (sent at, handler start - sent at)

        async def handler(event: Event) -> None:
            now = time.time()
            sent = float(event.payload["ts"])
            wake.append((sent, now - sent))

        spec = ProducerSpec(self.system, self.bench.conninfo, batch=1, rate=offered_rate)
        pool = self._pool(handler)
        with ProducerProcess(spec) as producer, timed_claims() as samples:
            try:
                pool.start()
                _check_running(pool)
                time.sleep(WARMUP_SECONDS)
                producer.go()
                begin = time.time() + WARMUP_SECONDS  # the first second warms the pool up
                time.sleep(WARMUP_SECONDS + seconds)
                report = producer.finish()
                _wait_handled(wake, report.enqueued)
                _check_running(pool)
            finally:
                pool.stop()
        return LatencyResult.of_window(
            offered_rate=offered_rate,
            seconds=seconds,
            begin=begin,
            enqueued=report.enqueued,
            wake=wake,
            samples=samples,
        )


def _check_running(pool: WorkerPool) -> None:
    if not pool.get_stats()["workers_running"]:
        raise BenchmarkError("Heron's worker pool stopped on its own; see the log above")


def _wait_completed(pool: WorkerPool, target: int) -> None:
    """Block until the pool has completed `target` events; fail if it stalls or dies."""
    last, last_change = -1, time.monotonic()
    while True:
        done = pool.get_stats()["completed"]
        if done >= target:
            return
        now = time.monotonic()
        if done != last:
            last, last_change = done, now
        elif now - last_change > _STALL_SECONDS:
            raise BenchmarkError(f"Heron stalled at {done}/{target} completed events")
        if not pool.get_stats()["workers_running"] and now - last_change > 1:
            raise BenchmarkError("Heron's worker pool stopped on its own; see the log above")
        time.sleep(0.002)


def _wait_handled(handled: list[Any], target: int, timeout: float = 10.0) -> None:
    deadline = time.monotonic() + timeout
    while len(handled) < target and time.monotonic() < deadline:
        time.sleep(0.01)
