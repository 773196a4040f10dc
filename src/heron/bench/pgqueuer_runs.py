"""PGQueuer's side of the queue benchmark, in the shape of its own `tools/benchmark.py`.

`workers` PgQueuer instances, each on its own asyncpg connection (its default driver),
each dequeuing batches of 10 with no in-flight cap: the `-s drain --dequeue N` shape.
Claim latency is timed around Queries.dequeue (driver lock, the dequeue statement and
building the Job models), patched in for the run only, like QueueStore.claim for Heron.
PGQueuer is imported inside functions: it is an optional, bench-only dependency.
"""

from __future__ import annotations

import asyncio
import json
import time
from collections.abc import Awaitable, Callable, Iterator
from contextlib import contextmanager, suppress
from importlib import metadata
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
from heron.errors import BenchmarkError

WARMUP_SECONDS = 1.0
BATCH_SIZE = 10  # PGQueuer's benchmark default (--dequeue-batch-size)
_STOP_TIMEOUT = 30.0


@contextmanager
def timed_dequeues() -> Iterator[list[ClaimSample]]:
    """Record every Queries.dequeue call while the block runs."""
    from pgqueuer.queries import Queries

    original = Queries.dequeue
    samples: list[ClaimSample] = []

    async def dequeue(self: Any, *args: Any, **kwargs: Any) -> Any:
        at = time.time()
        start = time.perf_counter()
        jobs = await original(self, *args, **kwargs)
        samples.append(ClaimSample(at, time.perf_counter() - start, len(jobs)))
        return jobs

    Queries.dequeue = dequeue  # type: ignore[method-assign]
    try:
        yield samples
    finally:
        Queries.dequeue = original  # type: ignore[method-assign]


class PgQueuerRuns:
    """Runs each scenario against `workers` fresh PgQueuer consumers."""

    name = "PGQueuer"
    system: System = "pgqueuer"

    def __init__(self, bench: BenchDatabase, workers: int) -> None:
        self.bench = bench
        self.workers = workers

    def settings(self) -> dict[str, Any]:
        """How PGQueuer was configured for the runs."""
        return {
            "shape": f"{self.workers} PgQueuer consumers x batch {BATCH_SIZE}, one asyncpg "
            "connection each, no in-flight cap (tools/benchmark.py -s drain)",
            "version": metadata.version("pgqueuer"),
            "consumers": self.workers,
            "batch_size": BATCH_SIZE,
            "driver": "asyncpg (AsyncpgDriver)",
            "event_loop": "asyncio (the benchmark tool uses uvloop)",
            "producer_client": "asyncpg (Queries.enqueue)",
        }

    async def _consumers(
        self, handler: Callable[[Any], Awaitable[None]]
    ) -> tuple[list[Any], list[Any]]:
        import asyncpg
        from pgqueuer import PgQueuer
        from pgqueuer.db import AsyncpgDriver

        conns = [await asyncpg.connect(self.bench.conninfo) for _ in range(self.workers)]
        consumers = [PgQueuer(AsyncpgDriver(conn)) for conn in conns]
        for pgq in consumers:
            pgq.entrypoint(ENTRYPOINT)(handler)
        return consumers, conns

    def drain(self, events: int) -> DrainResult:
        """Queue `events`, then time the consumers in drain mode until they exit."""
        benchdb.reset(self.bench, pgqueuer=True)
        benchdb.fill_pgqueuer(self.bench, events, ENTRYPOINT)
        benchdb.settle(self.bench)
        with timed_dequeues() as samples:
            handled, elapsed = asyncio.run(self._drain())
        left = benchdb.pending(self.bench, self.system)
        if left or handled != events:
            raise BenchmarkError(f"PGQueuer drain handled {handled}/{events}; {left} still queued")
        return DrainResult(events, elapsed, ClaimStats.of(samples))

    async def _drain(self) -> tuple[int, float]:
        from pgqueuer.types import QueueExecutionMode

        handled = [0]

        async def handler(job: Any) -> None:
            handled[0] += 1

        consumers, conns = await self._consumers(handler)
        try:
            start = time.perf_counter()
            await asyncio.gather(
                *(
                    pgq.run(batch_size=BATCH_SIZE, mode=QueueExecutionMode.drain)
                    for pgq in consumers
                )
            )
            return handled[0], time.perf_counter() - start
        finally:
            await _close(conns)

    def steady(self, seconds: float) -> SteadyResult:
        """Completed jobs per second while one producer inserts batches of 10 flat out."""
        benchdb.reset(self.bench, pgqueuer=True)
        benchdb.settle(self.bench)
        spec = ProducerSpec(self.system, self.bench.conninfo, batch=10)
        with ProducerProcess(spec) as producer, timed_dequeues() as samples:
            return asyncio.run(self._steady(producer, seconds, samples))

    async def _steady(
        self, producer: ProducerProcess, seconds: float, samples: list[ClaimSample]
    ) -> SteadyResult:
        handled = [0]

        async def handler(job: Any) -> None:
            handled[0] += 1

        consumers, conns = await self._consumers(handler)
        tasks = [asyncio.create_task(pgq.run(batch_size=BATCH_SIZE)) for pgq in consumers]
        try:
            await asyncio.sleep(WARMUP_SECONDS)
            _check_running(tasks)
            producer.go()
            at, start, before = time.time(), time.perf_counter(), handled[0]
            await asyncio.sleep(seconds)
            after, elapsed = handled[0], time.perf_counter() - start
            _check_running(tasks)
            report = await asyncio.to_thread(producer.finish)
            backlog = await asyncio.to_thread(benchdb.pending, self.bench, self.system)
        finally:
            await _stop(consumers, tasks)
            await _close(conns)
        window = [s for s in samples if at <= s.at <= at + elapsed]
        return SteadyResult(
            elapsed, after - before, report.enqueued, backlog, ClaimStats.of(window)
        )

    def latency(self, seconds: float, offered_rate: float) -> LatencyResult:
        """Paced single-job inserts from another process: dequeue and wake-up latencies."""
        benchdb.reset(self.bench, pgqueuer=True)
        benchdb.settle(self.bench)
        spec = ProducerSpec(self.system, self.bench.conninfo, batch=1, rate=offered_rate)
        with ProducerProcess(spec) as producer, timed_dequeues() as samples:
            return asyncio.run(self._latency(producer, seconds, offered_rate, samples))

    async def _latency(
        self,
        producer: ProducerProcess,
        seconds: float,
        offered_rate: float,
        samples: list[ClaimSample],
    ) -> LatencyResult:
        wake: list[tuple[float, float]] = []
        expected: list[int] = []  # set once the producer has reported
        all_handled = asyncio.Event()

        async def handler(job: Any) -> None:
            now = time.time()
            sent = float(json.loads(job.payload)["ts"])
            wake.append((sent, now - sent))
            if expected and len(wake) >= expected[0]:
                all_handled.set()

        consumers, conns = await self._consumers(handler)
        tasks = [asyncio.create_task(pgq.run(batch_size=BATCH_SIZE)) for pgq in consumers]
        try:
            await asyncio.sleep(WARMUP_SECONDS)
            _check_running(tasks)
            producer.go()
            begin = time.time() + WARMUP_SECONDS
            await asyncio.sleep(WARMUP_SECONDS + seconds)
            report = await asyncio.to_thread(producer.finish)
            expected.append(report.enqueued)
            if len(wake) >= report.enqueued:
                all_handled.set()
            with suppress(TimeoutError):
                await asyncio.wait_for(all_handled.wait(), 10)
            _check_running(tasks)
        finally:
            await _stop(consumers, tasks)
            await _close(conns)
        return LatencyResult.of_window(
            offered_rate=offered_rate,
            seconds=seconds,
            begin=begin,
            enqueued=report.enqueued,
            wake=wake,
            samples=samples,
            notes=(
                "each NOTIFY wakes every consumer; the ones that lose the race run an empty "
                "dequeue (counted in claims.empty, timed in claims.latency_all)",
            ),
        )


def _check_running(tasks: list[asyncio.Task[None]]) -> None:
    for task in tasks:
        if task.done():
            error = task.exception()
            raise BenchmarkError(f"a PGQueuer consumer stopped on its own: {error!r}")


async def _stop(consumers: list[Any], tasks: list[asyncio.Task[None]]) -> None:
    for pgq in consumers:
        pgq.shutdown.set()
    _, pending = await asyncio.wait(tasks, timeout=_STOP_TIMEOUT)
    for task in pending:
        task.cancel()
    await asyncio.gather(*tasks, return_exceptions=True)


async def _close(conns: list[Any]) -> None:
    for conn in conns:
        with suppress(Exception):
            await conn.close(timeout=5)
