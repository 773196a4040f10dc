"""`heron bench search` runs end to end at a small size and reports what it measured."""

from __future__ import annotations

import json
from pathlib import Path

from rich.console import Console

from heron.bench.slack_search import run_search_benchmark
from tests.conftest import make_config


def test_the_search_benchmark_times_each_way_of_searching(pg_admin_url, tmp_path: Path):
    output = tmp_path / "search.json"
    console = Console(record=True, width=160)
    run_search_benchmark(make_config(pg_admin_url), sizes=[1000], output=output, console=console)
    (run,) = json.loads(output.read_text())["runs"]
    assert run["messages"] == 1000
    for way in ("hybrid", "hybrid_with_heron", "full_text"):
        assert 0 < run[way]["p50_ms"] <= run[way]["p95_ms"] <= run[way]["p99_ms"]
    assert "full text" in console.export_text()
