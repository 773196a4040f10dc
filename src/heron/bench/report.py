"""Turn the results into the comparison table, the rich output and the JSON file."""

from __future__ import annotations

import json
import os
import platform
import subprocess
import sys
from datetime import UTC, datetime
from importlib import metadata
from pathlib import Path
from typing import Any

from rich.console import Console
from rich.table import Table

from heron.bench.results import LatencyResult, SystemResults
from heron.bench.stats import Comparison, LatencySummary, Target, TargetKind

OTHER = "PGQueuer"
STEADY_TARGET = Target(TargetKind.AT_LEAST_TIMES_OTHER, 2.0)
DRAIN_TARGET = Target(TargetKind.AT_LEAST_TIMES_OTHER, 1.0)
CLAIM_P99_TARGET = Target(TargetKind.AT_MOST, 2.0, "ms")
WAKE_P99_TARGET = Target(TargetKind.AT_MOST, 10.0, "ms")


def _claim(result: LatencyResult | None) -> LatencySummary | None:
    return None if result is None or result.claims is None else result.claims.latency


def _wake(result: LatencyResult | None) -> LatencySummary | None:
    return None if result is None else result.wake


def _ms(summary: LatencySummary | None, field: str) -> float | None:
    return None if summary is None else float(getattr(summary, field))


def comparisons(heron: SystemResults, other: SystemResults | None) -> list[Comparison]:
    """The lines of the result table, in the order of the scenarios."""
    o_lat = other.latency if other else None
    return [
        Comparison(
            "drain", "events/s", heron.drain.rate, other.drain.rate if other else None,
            higher_is_better=True, target=DRAIN_TARGET,
        ),
        Comparison(
            "steady", "events/s", heron.steady.rate, other.steady.rate if other else None,
            higher_is_better=True, target=STEADY_TARGET,
        ),
        Comparison(
            "claim p50", "ms", _ms(_claim(heron.latency), "p50_ms"),
            _ms(_claim(o_lat), "p50_ms"), higher_is_better=False,
        ),
        Comparison(
            "claim p99", "ms", _ms(_claim(heron.latency), "p99_ms"),
            _ms(_claim(o_lat), "p99_ms"), higher_is_better=False, target=CLAIM_P99_TARGET,
        ),
        Comparison(
            "enqueue→handler p50", "ms", _ms(_wake(heron.latency), "p50_ms"),
            _ms(_wake(o_lat), "p50_ms"), higher_is_better=False,
        ),
        Comparison(
            "enqueue→handler p99", "ms", _ms(_wake(heron.latency), "p99_ms"),
            _ms(_wake(o_lat), "p99_ms"), higher_is_better=False, target=WAKE_P99_TARGET,
        ),
    ]  # fmt: skip


def _num(value: float | None, unit: str) -> str:
    if value is None:
        return "—"
    return f"{value:,.0f}" if unit == "events/s" else f"{value:.2f}"


def _met(value: bool | None) -> str:
    if value is None:
        return "[dim]n/a[/dim]"
    return "[green]yes[/green]" if value else "[red]no[/red]"


def render(console: Console, rows: list[Comparison], heron: SystemResults,
           other: SystemResults | None, machine: dict[str, Any]) -> None:  # fmt: skip
    """Print the comparison table and what is needed to read it."""
    server = machine.get("postgresql", {})
    table = Table(
        title="heron bench queue",
        caption=f"latencies at {heron.latency.offered_rate:g} events/s offered · "
        f"{machine['cpu_count']} CPUs · PostgreSQL {server.get('server_version', '?')} · "
        f"fsync={server.get('fsync', '?')} · ratio = Heron / {OTHER}",
    )
    table.add_column("scenario")
    table.add_column("unit")
    table.add_column("Heron", justify="right")
    table.add_column(OTHER, justify="right")
    table.add_column("ratio", justify="right")
    table.add_column("target")
    table.add_column("met", justify="center")
    for row in rows:
        ratio = "—" if row.ratio is None else f"{row.ratio:.2f}x"
        other_text = _num(row.other, row.unit)
        if other is None:
            other_text = "[dim]skipped[/dim]"
        elif row.other is None:
            other_text = "[dim]not measurable[/dim]"
        target = "" if row.target is None else row.target.describe(OTHER)
        table.add_row(
            row.metric, row.unit, _num(row.heron, row.unit), other_text, ratio, target,
            "" if row.target is None else _met(row.met),
        )  # fmt: skip
    console.print(table)
    for result in (heron, other):
        if result is None:
            continue
        steady, lat = result.steady, result.latency
        claims = steady.claims
        per_claim = f", {claims.events_per_claim:.1f} events/claim" if claims else ""
        console.print(
            f"[bold]{result.name}[/bold]: steady producer {steady.enqueue_rate:,.0f}/s, "
            f"backlog at end {steady.backlog_at_end:,}{per_claim}; latency run "
            f"{lat.handled:,} handled of {lat.enqueued:,} sent",
            highlight=False,
        )
        if lat.claims is not None:
            console.print(
                f"  claims @ {lat.offered_rate:g}/s: {lat.claims.calls:,} calls, "
                f"{lat.claims.empty:,} empty; all-claims p99 "
                f"{_ms(lat.claims.latency_all, 'p99_ms') or 0:.2f} ms",
                highlight=False,
            )


def machine_info(postgresql: dict[str, Any]) -> dict[str, Any]:
    """Where the numbers come from: hardware, software versions, commit."""
    versions: dict[str, str | None] = {}
    for dist in ("heron", "pgqueuer", "asyncpg", "psycopg", "psycopg-pool", "sqlalchemy"):
        try:
            versions[dist] = metadata.version(dist)
        except metadata.PackageNotFoundError:
            versions[dist] = None
    return {
        "cpu_count": os.cpu_count(),
        "platform": platform.platform(),
        "machine": platform.machine(),
        "python": sys.version.split()[0],
        "packages": versions,
        "postgresql": postgresql,
        "git": git_commit(),
    }


def git_commit(cwd: Path | None = None) -> dict[str, Any] | None:
    """The checked-out commit and whether the tree has changes; None outside a git tree."""
    try:
        head = subprocess.run(
            ["git", "rev-parse", "HEAD"], cwd=cwd, capture_output=True, text=True, timeout=5,
            check=True,
        ).stdout.strip()  # fmt: skip
        status = subprocess.run(
            ["git", "status", "--porcelain", "--untracked-files=no"], cwd=cwd,
            capture_output=True, text=True, timeout=5, check=True,
        ).stdout  # fmt: skip
    except (OSError, subprocess.SubprocessError):
        return None
    return {"commit": head, "dirty": bool(status.strip())}


def write_json(
    output: Path,
    *,
    parameters: dict[str, Any],
    machine: dict[str, Any],
    heron: SystemResults,
    other: SystemResults | None,
    rows: list[Comparison],
) -> None:
    """Write the results (parent folder created), atomically."""
    document = {
        "benchmark": "queue",
        "created_at": datetime.now(UTC).isoformat(),
        "parameters": parameters,
        "machine": machine,
        "results": {
            "heron": heron.as_dict(),
            "pgqueuer": None if other is None else other.as_dict(),
        },
        "comparison": [row.as_dict(OTHER) for row in rows],
    }
    output.parent.mkdir(parents=True, exist_ok=True)
    partial = output.with_name(output.name + ".tmp")
    partial.write_text(json.dumps(document, indent=2, default=str) + "\n", encoding="utf-8")
    partial.replace(output)
