"""`heron bench queue`: Heron's event queue against PGQueuer, same server, same invocation.

Scenarios, each run for Heron and then for PGQueuer on a dedicated database
(`heron_bench`, dropped and recreated), every run from empty, vacuumed tables:

1. drain   - `events` queued beforehand, `workers` consumers, no-op handler: events/s.
2. steady  - one producer process inserting batches of 10 flat out while the consumers
             run for `seconds`: completed events/s.
3. claim   - a producer process paced at 200 single-event inserts/s: claim (dequeue)
             statement latency p50/p99, as the client sees it.
4. wake    - the same run: enqueue-to-handler-start latency across processes, from the
             producer's time.time() in the payload to the handler's.
"""

from __future__ import annotations

import logging
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any, Protocol

from rich.console import Console
from sqlalchemy.engine import URL

from heron.bench import database as benchdb
from heron.bench.heron_runs import HeronRuns
from heron.bench.report import comparisons, machine_info, render, write_json
from heron.bench.results import DrainResult, LatencyResult, SteadyResult, SystemResults
from heron.config import Config
from heron.database.connection import resolve_database_url
from heron.database.url import redact_url
from heron.errors import BenchmarkError

OFFERED_RATE = 200.0  # events/s for the latency scenarios
_QUIET_LOGGERS = ("heron.queue", "heron.database", "pgqueuer")


class QueueRuns(Protocol):
    """One system's side of the benchmark."""

    name: str

    def settings(self) -> dict[str, Any]: ...
    def drain(self, events: int) -> DrainResult: ...
    def steady(self, seconds: float) -> SteadyResult: ...
    def latency(self, seconds: float, offered_rate: float) -> LatencyResult: ...


def run_queue_benchmark(
    config: Config,
    *,
    events: int = 20_000,
    seconds: float = 30.0,
    workers: int = 5,
    output: Path = Path("benchmarks/results/queue.json"),
    with_pgqueuer: bool = True,
    console: Console | None = None,
) -> dict[str, SystemResults]:
    """Run every scenario for Heron (and PGQueuer), print the table, write `output`."""
    console = console or Console()
    if events < 1 or seconds <= 0 or workers < 1:
        raise BenchmarkError("--events and --workers must be at least 1, --seconds above 0")
    if with_pgqueuer:
        _require_pgqueuer()
    server_url = resolve_database_url(config.database_url)
    console.print(
        f"benchmark database {benchdb.BENCH_DATABASE!r} on {redact_url(server_url)} "
        f"(dropped and recreated); {events:,} drain events, {seconds:g} s runs, "
        f"{workers} workers",
        highlight=False,
    )
    with _quiet_logs(config):
        results, machine = _run_on_fresh_database(
            config, server_url, events, seconds, workers, with_pgqueuer, console
        )
    heron, other = results["Heron"], results.get("PGQueuer")
    rows = comparisons(heron, other)
    render(console, rows, heron, other, machine)
    parameters = {
        "events": events,
        "seconds": seconds,
        "workers": workers,
        "offered_rate": OFFERED_RATE,
        "with_pgqueuer": with_pgqueuer,
        "database": redact_url(server_url),
        "embedded": config.database_url is None,
    }
    write_json(output, parameters=parameters, machine=machine, heron=heron, other=other, rows=rows)
    console.print(f"results written to {output}", highlight=False)
    return results


def _run_on_fresh_database(
    config: Config,
    server_url: URL,
    events: int,
    seconds: float,
    workers: int,
    with_pgqueuer: bool,
    console: Console,
) -> tuple[dict[str, SystemResults], dict[str, Any]]:
    """Create the benchmark database, run every scenario in it, drop it."""
    bench = benchdb.recreate(server_url)
    heron_db = benchdb.install_heron(bench)
    try:
        if with_pgqueuer:
            benchdb.install_pgqueuer(bench)
        systems: list[QueueRuns] = [
            HeronRuns(bench, heron_db, config, workers, pgqueuer_tables=with_pgqueuer)
        ]
        if with_pgqueuer:
            from heron.bench.pgqueuer_runs import PgQueuerRuns

            systems.append(PgQueuerRuns(bench, workers))
        results = _run_scenarios(systems, events, seconds, console)
        return results, machine_info(benchdb.server_info(bench))
    finally:
        heron_db.dispose()
        benchdb.drop(server_url)


def _run_scenarios(
    systems: list[QueueRuns], events: int, seconds: float, console: Console
) -> dict[str, SystemResults]:
    """Each scenario for every system in turn, so both meet the server in the same state."""
    drains: dict[str, DrainResult] = {}
    steadies: dict[str, SteadyResult] = {}
    latencies: dict[str, LatencyResult] = {}
    for system in systems:
        with console.status(f"drain: {system.name}, {events:,} events"):
            drains[system.name] = result = system.drain(events)
        console.print(
            f"  drain    {system.name:<9} {result.rate:>10,.0f} events/s", highlight=False
        )
    for system in systems:
        with console.status(f"steady: {system.name}, {seconds:g} s"):
            steadies[system.name] = steady = system.steady(seconds)
        console.print(
            f"  steady   {system.name:<9} {steady.rate:>10,.0f} events/s "
            f"(producer {steady.enqueue_rate:,.0f}/s)",
            highlight=False,
        )
    for system in systems:
        with console.status(f"latency: {system.name}, {OFFERED_RATE:g}/s for {seconds:g} s"):
            latencies[system.name] = latency = system.latency(seconds, OFFERED_RATE)
        wake = latency.wake
        shown = (
            "no samples" if wake is None else f"p50 {wake.p50_ms:.2f} ms, p99 {wake.p99_ms:.2f} ms"
        )
        console.print(f"  wake     {system.name:<9} {shown}", highlight=False)
    return {
        s.name: SystemResults(
            s.name, drains[s.name], steadies[s.name], latencies[s.name], s.settings()
        )
        for s in systems
    }


def _require_pgqueuer() -> None:
    try:
        import asyncpg  # noqa: F401
        import pgqueuer  # noqa: F401
    except ImportError:
        raise BenchmarkError(
            "PGQueuer is not installed: pip install -e '.[bench]' "
            "(or pass --skip-pgqueuer to measure Heron alone)"
        ) from None


@contextmanager
def _quiet_logs(config: Config) -> Iterator[None]:
    """At the default INFO level, migrations and pools starting and stopping would bury the
    progress lines; warnings still show."""
    if config.heron_log_level != "INFO":
        yield
        return
    loggers = [logging.getLogger(name) for name in _QUIET_LOGGERS]
    levels = [logger.level for logger in loggers]
    for logger in loggers:
        logger.setLevel(logging.WARNING)
    try:
        yield
    finally:
        for logger, level in zip(loggers, levels, strict=True):
            logger.setLevel(level)
