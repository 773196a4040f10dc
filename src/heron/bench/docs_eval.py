"""`make eval-docs`: docs search judged on the PostgreSQL 15 manual.

Ingests every page of the manual (Debian's postgresql-doc-15 HTML) with the configured
embedding provider (the local MiniLM by default) into a database of its own,
`heron_eval_docs` on the configured server, then asks the development and held-out
questions (benchmarks/docs_eval/) and writes recall@1/5/10 and MRR, page- and
section-level, with the ingest time, to benchmarks/results/docs_eval.json.

The database is kept between runs, so a second run ingests incrementally (only what the
chunker now cuts differently is embedded again); `--fresh` starts from empty and times a
whole ingest.

    python -m heron.bench.docs_eval [--fresh] [--manual DIR] [--output FILE]
"""

from __future__ import annotations

import argparse
import json
import platform
import time
from pathlib import Path
from typing import Any

import psycopg
from psycopg import sql
from rich.console import Console
from rich.progress import Progress
from rich.table import Table

from heron.bench.stats import percentile
from heron.config import Config
from heron.database.connection import resolve_database_url
from heron.database.migrate import migrate
from heron.database.url import psycopg_conninfo
from heron.docsearch.embedding import make_embedder
from heron.docsearch.evaluation import (
    CUTOFFS,
    MANUAL,
    QUESTION_SETS,
    QUESTIONS,
    TARGET_RECALL_AT_5,
    SetResult,
    evaluate,
    load_questions,
)
from heron.docsearch.ingest import ingest_path
from heron.docsearch.store import DocStore
from heron.errors import BenchmarkError

EVAL_DATABASE = "heron_eval_docs"


def run_docs_evaluation(
    config: Config,
    *,
    manual: Path = MANUAL,
    questions: Path = QUESTIONS,
    output: Path,
    console: Console,
    fresh: bool = False,
) -> dict[str, Any]:
    """Ingest the manual, ask every question set, print a table, write JSON."""
    if not manual.is_dir():
        raise BenchmarkError(
            f"{manual} is not there: install the manual (Debian/Ubuntu: "
            "apt-get install postgresql-doc-15) or pass --manual DIR"
        )
    sets = {name: load_questions(questions / file) for name, file in QUESTION_SETS.items()}
    admin = psycopg_conninfo(resolve_database_url(config.database_url))
    conninfo = _database(admin, fresh=fresh)
    migrate(conninfo)
    store = DocStore(conninfo, make_embedder(config))
    ingest = _ingest(store, manual, console)
    store.open_pool()  # searched as the docs MCP server and the responder search
    try:
        results = {name: evaluate(store, qs, name=name) for name, qs in sets.items()}
    finally:
        store.close()
    latencies = [ms for result in results.values() for ms in result.latencies_ms]
    document: dict[str, Any] = {
        "benchmark": "docs_eval",
        "manual": str(manual),
        "provider": store.embedder.name,
        "chunking": store.chunk_size.describe(),
        "machine": {"platform": platform.platform(), "python": platform.python_version()},
        "ingest": ingest,
        "search_ms": {"p50": percentile(latencies, 50), "p95": percentile(latencies, 95)},
        "target": {"recall@5": TARGET_RECALL_AT_5},
        "sets": {name: result.as_dict() for name, result in results.items()},
    }
    _render(document, results, console)
    output.parent.mkdir(parents=True, exist_ok=True)
    output.write_text(json.dumps(document, indent=2, ensure_ascii=False) + "\n", encoding="utf-8")
    console.print(f"results written to {output}")
    return document


def _database(admin: str, *, fresh: bool) -> str:
    """The evaluation's database, created if missing (or recreated with `fresh`)."""
    name = sql.Identifier(EVAL_DATABASE)
    with psycopg.connect(admin, autocommit=True) as conn:
        if fresh:
            conn.execute(sql.SQL("DROP DATABASE IF EXISTS {} WITH (FORCE)").format(name))
        exists = conn.execute(
            "SELECT 1 FROM pg_database WHERE datname = %s", (EVAL_DATABASE,)
        ).fetchone()
        if exists is None:
            conn.execute(sql.SQL("CREATE DATABASE {}").format(name))
    return psycopg.conninfo.make_conninfo(admin, dbname=EVAL_DATABASE)


def _ingest(store: DocStore, manual: Path, console: Console) -> dict[str, Any]:
    console.print(f"ingesting {manual} with {store.embedder.name} …")
    with Progress(console=console, transient=True) as progress:
        task = progress.add_task("ingesting", total=None)
        start = time.perf_counter()
        totals = ingest_path(
            store, manual, lambda done, total: progress.update(task, completed=done, total=total)
        )
        seconds = time.perf_counter() - start
    with store.connect() as conn:
        row = conn.execute("SELECT count(*) AS n FROM doc_chunks").fetchone()
    chunks = int(row["n"]) if row else 0
    return {
        "documents": totals.documents,
        "chunks": chunks,
        "embedded": totals.added,
        "unchanged": totals.unchanged,
        "seconds": round(seconds, 1),
        "embedded_per_second": round(totals.added / seconds, 1) if seconds else 0.0,
    }


def _render(document: dict[str, Any], results: dict[str, SetResult], console: Console) -> None:
    ingest = document["ingest"]
    console.print(
        f"ingest: {ingest['documents']} pages, {ingest['chunks']} chunks "
        f"({ingest['embedded']} embedded in {ingest['seconds']:.0f} s, "
        f"{document['provider']}); search p50 {document['search_ms']['p50']:.1f} ms, "
        f"p95 {document['search_ms']['p95']:.1f} ms"
    )
    table = Table(title="docs search on the PostgreSQL 15 manual")
    table.add_column("set")
    table.add_column("level")
    table.add_column("questions", justify="right")
    for k in CUTOFFS:
        table.add_column(f"recall@{k}", justify="right")
    table.add_column("MRR", justify="right")
    for name, result in results.items():
        for level, scores in (("page", result.page), ("section", result.section)):
            table.add_row(
                name,
                level,
                str(scores.questions),
                *(f"{scores.recall[k]:.3f}" for k in CUTOFFS),
                f"{scores.mrr:.3f}",
            )
    console.print(table)
    for name, result in results.items():
        verdict = "meets" if result.page.recall[5] >= TARGET_RECALL_AT_5 else "misses"
        console.print(
            f"{name}: page recall@5 {result.page.recall[5]:.3f} {verdict} the target "
            f"{TARGET_RECALL_AT_5}; {len(result.misses)} questions without an answer in the top 5"
        )


def main(argv: list[str] | None = None) -> None:
    """Command line: see the module's docstring."""
    parser = argparse.ArgumentParser(prog="python -m heron.bench.docs_eval", description=__doc__)
    parser.add_argument("--manual", type=Path, default=MANUAL, help="the manual's HTML folder")
    parser.add_argument("--questions", type=Path, default=QUESTIONS, help="question sets folder")
    parser.add_argument(
        "--output", type=Path, default=Path("benchmarks/results/docs_eval.json"), help="JSON"
    )
    parser.add_argument("--fresh", action="store_true", help="drop the database, ingest all")
    args = parser.parse_args(argv)
    console = Console()
    try:
        run_docs_evaluation(
            Config(),
            manual=args.manual,
            questions=args.questions,
            output=args.output,
            console=console,
            fresh=args.fresh,
        )
    except BenchmarkError as error:
        console.print(f"[red]error:[/red] {error}")
        raise SystemExit(1) from None


if __name__ == "__main__":
    main()
