"""/metrics in Prometheus's text format, gathered at scrape time: totals from PostgreSQL
(true for the whole deployment, whichever process is scraped) and this process's worker
pool counters and latency histograms."""

from __future__ import annotations

from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from typing import Any

from prometheus_client import CONTENT_TYPE_LATEST, CollectorRegistry, generate_latest
from prometheus_client.core import (
    CounterMetricFamily,
    GaugeMetricFamily,
    HistogramMetricFamily,
    Metric,
)
from prometheus_client.registry import Collector
from psycopg_pool import AsyncConnectionPool
from starlette.requests import Request
from starlette.responses import Response

from heron.queue.runner import RunnerStats
from heron.queue.timings import Histogram
from heron.slack.client import API_ERRORS

_QUERIES = {
    "queue": "SELECT status, count(*) AS n FROM events GROUP BY status",
    "model": "SELECT outcome, count(*) AS runs, COALESCE(sum(input_tokens), 0) AS input, "
    "COALESCE(sum(output_tokens), 0) AS output, COALESCE(sum(cost_usd), 0) AS cost "
    "FROM agent_usage GROUP BY outcome",
    "ingest_errors": "SELECT count(*) AS n FROM slack_ingest_errors",
}
STATUSES = ("pending", "processing", "completed", "failed")


@dataclass
class Snapshot:
    """What one scrape read from the database."""

    queue: dict[str, int] = field(default_factory=dict)
    model: list[dict[str, Any]] = field(default_factory=list)
    ingest_errors: int = 0


async def read_snapshot(pool: AsyncConnectionPool[Any]) -> Snapshot:
    async with pool.connection() as conn:
        queue = await (await conn.execute(_QUERIES["queue"])).fetchall()
        model = await (await conn.execute(_QUERIES["model"])).fetchall()
        errors = await (await conn.execute(_QUERIES["ingest_errors"])).fetchone()
    return Snapshot(
        queue={row["status"]: int(row["n"]) for row in queue},
        model=[dict(row) for row in model],
        ingest_errors=int(errors["n"]) if errors else 0,
    )


class HeronCollector(Collector):
    """Turns a snapshot and the pool's stats into metric families."""

    def __init__(self, snapshot: Snapshot, stats: RunnerStats, workers: int) -> None:
        self.snapshot = snapshot
        self.stats = stats
        self.workers = workers

    def collect(self) -> Iterator[Metric]:
        queue = GaugeMetricFamily("heron_queue_events", "Events by status", labels=["status"])
        for status in STATUSES:
            queue.add_metric([status], self.snapshot.queue.get(status, 0))
        yield queue
        done = CounterMetricFamily(
            "heron_events_processed", "Events this process finished, by outcome", labels=["outcome"]
        )
        stats = self.stats
        for outcome, value in (
            ("completed", stats.completed),
            ("retried", stats.retried),
            ("failed", stats.failed),
            ("lease_lost", stats.lost_leases),
        ):
            done.add_metric([outcome], value)
        yield done
        yield GaugeMetricFamily(
            "heron_workers_running", "Workers this process runs", value=self.workers
        )
        yield _histogram("heron_claim_wait_seconds", "Due to claimed", stats.claim_wait)
        yield _histogram("heron_handler_seconds", "Handler run time", stats.handling)
        runs = CounterMetricFamily("heron_model_runs", "Agent runs by outcome", labels=["outcome"])
        tokens = CounterMetricFamily("heron_model_tokens", "Model tokens", labels=["kind"])
        cost = CounterMetricFamily("heron_model_cost_usd", "Estimated model spend, USD")
        totals = {"input": 0, "output": 0}
        spent = 0.0
        for row in self.snapshot.model:
            runs.add_metric([row["outcome"]], row["runs"])
            totals["input"] += int(row["input"])
            totals["output"] += int(row["output"])
            spent += float(row["cost"])
        for kind, value in totals.items():
            tokens.add_metric([kind], value)
        cost.add_metric([], spent)
        yield from (runs, tokens, cost)
        yield CounterMetricFamily(
            "heron_slack_ingest_errors", "Slack payloads refused", value=self.snapshot.ingest_errors
        )
        api = CounterMetricFamily(
            "heron_slack_api_errors",
            "Failed Slack Web API calls in this process, retried ones included",
            labels=["method", "error"],
        )
        for (method, error), count in sorted(API_ERRORS.items()):
            api.add_metric([method, error], count)
        yield api


def _histogram(name: str, documentation: str, histogram: Histogram) -> HistogramMetricFamily:
    return HistogramMetricFamily(
        name, documentation, buckets=histogram.cumulative(), sum_value=histogram.total
    )


def metrics_endpoint(
    pool: AsyncConnectionPool[Any], stats: Callable[[], RunnerStats], workers: Callable[[], int]
) -> Callable[[Request], Any]:
    async def metrics(request: Request) -> Response:
        registry = CollectorRegistry(auto_describe=False)
        registry.register(HeronCollector(await read_snapshot(pool), stats(), workers()))
        return Response(generate_latest(registry), media_type=CONTENT_TYPE_LATEST)

    return metrics
