"""`heron bench docs` runs end to end at a small size and reports what it measured."""

from __future__ import annotations

import json
from pathlib import Path

from rich.console import Console

from heron.bench.docs import run_docs_benchmark
from tests.conftest import make_config


def test_the_docs_benchmark_measures_vector_and_hybrid_search(pg_admin_url, tmp_path: Path):
    output = tmp_path / "docs.json"
    console = Console(record=True, width=120)
    config = make_config(pg_admin_url)
    run_docs_benchmark(config, sizes=[500], documents=2, output=output, console=console)
    result = json.loads(output.read_text())
    (search,) = result["search"]
    assert search["chunks"] == 500
    assert search["recall_at_10"] >= 0.95
    for latency in (search["latency"], search["hybrid_latency"]):
        assert 0 < latency["p50_ms"] <= latency["p95_ms"] <= latency["p99_ms"]
    assert result["ingest"]["chunks"] > 0
    assert "hybrid" in console.export_text()
