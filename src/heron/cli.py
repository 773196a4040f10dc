"""The `heron` command. Every failure is one line on stderr and a non-zero exit."""

from __future__ import annotations

import json
import sys
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from functools import wraps
from pathlib import Path
from typing import Annotated, Any, TypeVar

import psycopg
import sqlalchemy.exc
import typer
from rich.console import Console
from rich.table import Table

from heron.config import Config
from heron.database.connection import DatabaseConnection, resolve_database_url
from heron.database.models import EventStatus
from heron.database.url import psycopg_conninfo, redact_url
from heron.errors import HeronError, first_line
from heron.log import configure_logging
from heron.queue.event_processor import EventProcessor

app = typer.Typer(help="Heron: a Slack-native AI assistant on PostgreSQL.", no_args_is_help=True)
db_app = typer.Typer(help="The database: migrations, URL, status.", no_args_is_help=True)
events_app = typer.Typer(help="Inspect and replay queued events.", no_args_is_help=True)
bench_app = typer.Typer(help="Benchmarks that print numbers.", no_args_is_help=True)
docs_app = typer.Typer(help="Documentation search: ingest and search.", no_args_is_help=True)
mcp_app = typer.Typer(
    help="Heron's MCP servers, for the agent and any MCP client.", no_args_is_help=True
)
app.add_typer(db_app, name="db")
app.add_typer(events_app, name="events")
app.add_typer(bench_app, name="bench")
app.add_typer(docs_app, name="docs")
app.add_typer(mcp_app, name="mcp")

out = Console()
err = Console(stderr=True)
F = TypeVar("F", bound=Callable[..., Any])


def one_line_errors(func: F) -> F:
    """Turn expected failures into `error: ...` and exit 1, never a traceback."""

    @wraps(func)
    def wrapper(*args: Any, **kwargs: Any) -> Any:
        try:
            return func(*args, **kwargs)
        except HeronError as error:
            message = str(error)
        except (sqlalchemy.exc.OperationalError, psycopg.OperationalError) as error:
            cause = error.orig if isinstance(error, sqlalchemy.exc.DBAPIError) else error
            message = f"database unavailable: {first_line(cause or error)}"
        except sqlalchemy.exc.DBAPIError as error:
            message = f"database error: {first_line(error.orig or error)}"
        err.print(f"[red]error:[/red] {message}", highlight=False, soft_wrap=True)
        raise typer.Exit(1)

    return wrapper  # type: ignore[return-value]


def load_config() -> Config:
    config = Config()
    configure_logging(config.heron_log_level, config.heron_log_format)
    config.validate()
    return config


def connect(config: Config) -> DatabaseConnection:
    return DatabaseConnection(
        config.database_url,
        pool_size=config.heron_db_pool_size,
        max_overflow=config.heron_db_max_overflow,
    )


@contextmanager
def processor(config: Config) -> Iterator[EventProcessor]:
    db = connect(config)
    try:
        with db.session() as session:
            yield EventProcessor(session, "cli", config)
    finally:
        db.dispose()


@app.command()
@one_line_errors
def run(
    workers: Annotated[int | None, typer.Option(help="Worker pool size (WORKER_POOL_SIZE)")] = None,
) -> None:
    """Run Heron: database (embedded without DATABASE_URL), migrations, Slack, workers, HTTP."""
    from heron.runtime import Runtime, run_until_signal
    from heron.tracing import configure_tracing, flush_tracing
    from heron.web.dashboard import dashboard_enabled

    config = load_config()
    config.log_configuration()
    tracing = configure_tracing(config)
    db = connect(config)
    db.create_tables()
    runtime = Runtime(config, db, workers=workers)

    def started(runtime: Runtime) -> None:
        slack = "Slack connected" if runtime.slack is not None else "no Slack tokens configured"
        if runtime.workspace is not None:
            slack = "no Slack tokens configured: local workspace"
        http = runtime.http.url if runtime.http is not None else "-"
        dashboard = (
            f"dashboard {http}/dashboard"
            if dashboard_enabled(config)
            else "dashboard off (set HERON_DASHBOARD_TOKEN)"
        )
        err.print(
            f"Heron is running: {runtime.workers.size} workers on {redact_url(db.url)}, "
            f"{slack}, HTTP on {http}, {dashboard} "
            f"(handlers: {', '.join(runtime.registry.event_types)}). "
            "Ctrl-C stops it.",
            highlight=False,
            soft_wrap=True,
        )
        if runtime.workspace is not None:
            err.print(f"open {http}/ to try Heron in the local workspace", highlight=False)

    try:
        run_until_signal(runtime, started)
    finally:
        db.dispose()
        if tracing:
            flush_tracing()


@db_app.command("migrate")
@one_line_errors
def db_migrate() -> None:
    """Apply pending migrations (safe to run twice, and from two processes at once)."""
    from heron.database.migrate import migrate

    config = load_config()
    applied = migrate(psycopg_conninfo(resolve_database_url(config.database_url)))
    if applied:
        for m in applied:
            out.print(f"applied {m.version:03d}_{m.name}")
    else:
        out.print("database is up to date")


@db_app.command("url")
@one_line_errors
def db_url(
    show_password: Annotated[bool, typer.Option(help="Print the password too")] = False,
) -> None:
    """Print the database URL (starting the embedded server, left running, if needed)."""
    config = load_config()
    url = resolve_database_url(config.database_url, stop_at_exit=False)
    if show_password:
        typer.echo(psycopg_conninfo(url))
    else:
        typer.echo(redact_url(url))


@db_app.command("stop")
@one_line_errors
def db_stop() -> None:
    """Stop the embedded PostgreSQL (if it runs)."""
    from heron.database.embedded import stop_embedded

    config = load_config()
    stopped = stop_embedded(config.heron_data_dir)
    out.print("embedded PostgreSQL stopped" if stopped else "embedded PostgreSQL is not running")


@db_app.command("status")
@one_line_errors
def db_status() -> None:
    """Server version, extensions, and which migrations are applied."""
    from heron.database.migrate import migration_status

    config = load_config()
    url = resolve_database_url(config.database_url)
    with psycopg.connect(psycopg_conninfo(url), connect_timeout=5) as conn:
        version = conn.execute("SHOW server_version").fetchone()
        extensions = conn.execute(
            "SELECT name, installed_version FROM pg_available_extensions "
            "WHERE name IN ('timescaledb', 'vector') ORDER BY name"
        ).fetchall()
        status = migration_status(conn)
    out.print(f"database:   {redact_url(url)}")
    out.print(f"server:     PostgreSQL {version[0] if version else '?'}")
    for name, installed in extensions:
        out.print(f"extension:  {name} ({'installed ' + installed if installed else 'available'})")
    out.print(f"applied:    {', '.join(f'{v:03d}' for v in status.applied) or 'none'}")
    out.print(
        f"pending:    {', '.join(f'{m.version:03d}_{m.name}' for m in status.pending) or 'none'}"
    )
    if status.changed:
        out.print(f"[yellow]changed since applied: {status.changed}[/yellow]")


@app.command()
@one_line_errors
def status() -> None:
    """Queue statistics, the agent's MCP servers and today's model usage."""
    config = load_config()
    with processor(config) as p:
        stats = p.get_queue_stats()
        conn = p.session.connection()
        servers = conn.exec_driver_sql(
            "SELECT name, transport, ok, tools, error, checked_at FROM mcp_server_status "
            "ORDER BY name"
        ).all()
        usage = conn.exec_driver_sql(
            "SELECT count(*), COALESCE(sum(input_tokens + output_tokens), 0), sum(cost_usd) "
            "FROM agent_usage WHERE created_at >= date_trunc('day', now() AT TIME ZONE 'UTC') "
            "AT TIME ZONE 'UTC'"
        ).one()
    table = Table(title="Heron queue")
    table.add_column("status")
    table.add_column("events", justify="right")
    for name, count in stats.items():
        table.add_row(name, str(count))
    out.print(table)
    if servers:
        mcp = Table(title="MCP servers (as last checked by heron run)")
        for column in ("server", "transport", "state", "tools", "checked"):
            mcp.add_column(column)
        for name, transport, ok, tools, error, checked in servers:
            state = "ok" if ok else f"unavailable: {first_line(Exception(error or ''))[:60]}"
            shown = ", ".join(tools) if len(tools) <= 4 else f"{len(tools)} tools"
            mcp.add_row(name, transport, state, shown, checked.strftime("%Y-%m-%d %H:%M:%S"))
        out.print(mcp)
    runs, tokens, cost = usage
    spent = "unknown" if cost is None else f"${cost:.4f}"
    out.print(f"Model usage today (UTC): {runs} runs, {tokens} tokens, {spent} estimated")


@events_app.command("list")
@one_line_errors
def events_list(
    status: Annotated[EventStatus | None, typer.Option(help="Only events with this status")] = None,
    limit: Annotated[int, typer.Option(min=1, max=10_000)] = 50,
) -> None:
    """The newest events."""
    config = load_config()
    with processor(config) as p:
        events = p.list_events(status.value if status else None, limit)
    table = Table()
    for column in ("id", "type", "status", "retries", "attempts", "created", "error"):
        table.add_column(column)
    for e in events:
        table.add_row(
            str(e.id),
            e.event_type,
            e.status,
            str(e.retry_count),
            str(e.attempts),
            e.created_at.strftime("%Y-%m-%d %H:%M:%S"),
            first_line(Exception(e.error_message or ""))[:60],
        )
    out.print(table)


@events_app.command("show")
@one_line_errors
def events_show(event_id: int) -> None:
    """One event with its payload and every attempt."""
    config = load_config()
    with processor(config) as p:
        event = p.get_event(event_id)
        attempts = p.get_attempts(event_id)
    for field in (
        "id",
        "event_type",
        "status",
        "dedupe_key",
        "retry_count",
        "attempts",
        "created_at",
        "run_after",
        "claimed_by",
        "completed_at",
        "error_message",
    ):
        out.print(f"{field + ':':15} {getattr(event, field)}", highlight=False)
    out.print("payload:", highlight=False)
    out.print_json(json.dumps(event.payload, default=str))
    table = Table(title="attempts")
    for column in ("#", "worker", "started", "finished", "outcome", "error"):
        table.add_column(column)
    for a in attempts:
        table.add_row(
            str(a.attempt),
            a.worker_id,
            str(a.started_at),
            str(a.finished_at),
            a.outcome,
            (a.error or "")[:80],
        )
    if event.status == EventStatus.PROCESSING:
        table.add_row(
            str(event.attempts), event.claimed_by or "", str(event.claimed_at), "", "running", ""
        )
    out.print(table)


@events_app.command("replay")
@one_line_errors
def events_replay(event_id: int) -> None:
    """Queue a failed event again, with fresh retries."""
    config = load_config()
    with processor(config) as p:
        event = p.replay_event(event_id)
    out.print(f"event {event.id} queued again")


@events_app.command("enqueue")
@one_line_errors
def events_enqueue(
    event_type: str,
    payload: Annotated[str, typer.Option(help="JSON object")] = "{}",
    dedupe_key: Annotated[
        str | None, typer.Option(help="Unique key; a repeat does nothing")
    ] = None,
) -> None:
    """Queue an event by hand (handy with the `noop` handler)."""
    try:
        data = json.loads(payload)
    except json.JSONDecodeError as error:
        raise HeronError(f"--payload is not valid JSON: {error}") from None
    if not isinstance(data, dict):
        raise HeronError("--payload must be a JSON object")
    config = load_config()
    with processor(config) as p:
        event = p.enqueue(event_type, data, dedupe_key=dedupe_key)
    out.print(f"event {event.id} ({event.status})")


@docs_app.command("ingest")
@one_line_errors
def docs_ingest(
    target: Annotated[str, typer.Argument(help="A folder or file, or a sitemap URL")],
) -> None:
    """Ingest Markdown, HTML and text files under a folder, or the pages a sitemap URL
    lists (only what changed; drops what vanished)."""
    from rich.progress import Progress

    from heron.docsearch.ingest import IngestTotals, ingest_path
    from heron.docsearch.sitemap import ingest_sitemap, is_url
    from heron.docsearch.store import store_from_config

    config = load_config()
    store = store_from_config(config)
    with Progress(console=err, transient=True) as progress:
        task = progress.add_task("ingesting", total=None)

        def advance(done: int, total: int) -> None:
            progress.update(task, completed=done, total=total)

        totals: IngestTotals
        if is_url(target):
            site = ingest_sitemap(store, target, advance)
            for url, why in site.skipped:
                err.print(f"skipped {url}: {why}", highlight=False, soft_wrap=True)
            totals = site
        else:
            totals = ingest_path(store, Path(target), advance)
    out.print(
        f"{totals.documents} documents: {totals.added} chunks embedded, {totals.unchanged} "
        f"unchanged, {totals.removed} removed; {totals.documents_removed} vanished documents "
        f"dropped (embeddings: {store.embedder.name})",
        highlight=False,
    )


@docs_app.command("search")
@one_line_errors
def docs_search(query: str, limit: Annotated[int, typer.Option(min=1, max=50)] = 5) -> None:
    """The best documentation passages for QUERY (full text + vectors, fused by rank)."""
    from heron.docsearch.store import context_path, store_from_config

    config = load_config()
    store = store_from_config(config)
    with store.connect() as conn:
        hits = store.search(conn, query, limit)
    if not hits:
        out.print("no matching passages")
    for hit in hits:
        path = " > ".join(context_path(hit.title, hit.heading_path))
        out.print(f"[bold]{path}[/bold]  ({hit.score:.4f})\n  {hit.link}", highlight=False)
        out.print(f"  {hit.text[:240]}", highlight=False, markup=False)


# Options every `heron mcp` server takes.
TransportOption = Annotated[str, typer.Option(help="stdio, or http (streamable HTTP at /mcp)")]
HostOption = Annotated[
    str, typer.Option(help="HTTP address; off loopback HERON_MCP_TOKEN is required")
]


@mcp_app.command("docs")
@one_line_errors
def mcp_docs(
    transport: TransportOption = "stdio",
    host: HostOption = "127.0.0.1",
    port: Annotated[int, typer.Option(min=1, max=65535)] = 8000,
) -> None:
    """Serve the docs MCP server: search_docs and get_document over the ingested docs."""
    from heron.docsearch.store import store_from_config
    from heron.mcp_servers.docs import main as serve_docs

    config = load_config()
    serve_docs(transport, host, port, store=store_from_config(config))


@mcp_app.command("slack")
@one_line_errors
def mcp_slack(
    transport: TransportOption = "stdio",
    host: HostOption = "127.0.0.1",
    port: Annotated[int, typer.Option(min=1, max=65535)] = 8002,
    as_user: Annotated[
        str | None,
        typer.Option(
            "--as-user",
            help="Slack user id whose view the tools give (stdio; HTTP's default); "
            "else HERON_MCP_SLACK_USER",
        ),
    ] = None,
) -> None:
    """Serve the Slack MCP server: the archive as one Slack user may read it."""
    from heron.mcp_servers.slack import main as serve_slack

    serve_slack(transport, host, port, config=load_config(), as_user=as_user)


@mcp_app.command("github")
@one_line_errors
def mcp_github(
    transport: TransportOption = "stdio",
    host: HostOption = "127.0.0.1",
    port: Annotated[int, typer.Option(min=1, max=65535)] = 8001,
) -> None:
    """Serve the GitHub MCP server: code, issues, PRs, files, commits, releases (GITHUB_REPOS)."""
    from heron.github.allow import parse_repos
    from heron.mcp_servers.github import main as serve_github

    config = load_config()
    token = config.github_token.get_secret_value() if config.github_token else None
    serve_github(
        transport,
        host,
        port,
        allowed=parse_repos(config.github_repos or ""),
        github_token=token,
        api_url=config.github_api_url,
    )


@bench_app.command("queue")
@one_line_errors
def bench_queue(
    events: Annotated[int, typer.Option(help="Events for the drain run")] = 20_000,
    seconds: Annotated[float, typer.Option(help="Length of the steady run")] = 30.0,
    workers: Annotated[int, typer.Option(help="Workers (both systems)")] = 5,
    output: Annotated[Path, typer.Option(help="Where to write the JSON results")] = Path(
        "benchmarks/results/queue.json"
    ),
    skip_pgqueuer: Annotated[bool, typer.Option(help="Measure Heron alone")] = False,
) -> None:
    """Heron vs PGQueuer on the same database: drain, steady, claim and wake-up latency."""
    from heron.bench.queue import run_queue_benchmark

    config = load_config()
    run_queue_benchmark(
        config,
        events=events,
        seconds=seconds,
        workers=workers,
        output=output,
        with_pgqueuer=not skip_pgqueuer,
        console=out,
    )


@bench_app.command("docs")
@one_line_errors
def bench_docs(
    sizes: Annotated[str, typer.Option(help="Corpus sizes in chunks, comma-separated")] = (
        "10000,100000"
    ),
    documents: Annotated[int, typer.Option(help="Generated pages for the ingest run")] = 200,
    output: Annotated[Path, typer.Option(help="Where to write the JSON results")] = Path(
        "benchmarks/results/docs.json"
    ),
) -> None:
    """Docs search: ingest chunks/s; vector and hybrid search p50/p95, HNSW recall@10."""
    from heron.bench.docs import run_docs_benchmark

    counts = _sizes(sizes, minimum=100)
    if documents < 1:
        raise HeronError("--documents needs at least 1")
    config = load_config()
    run_docs_benchmark(config, sizes=counts, documents=documents, output=output, console=out)


@bench_app.command("search")
@one_line_errors
def bench_search(
    sizes: Annotated[str, typer.Option(help="Archive sizes in messages, comma-separated")] = (
        "10000,100000"
    ),
    output: Annotated[Path, typer.Option(help="Where to write the JSON results")] = Path(
        "benchmarks/results/slack_search.json"
    ),
) -> None:
    """Slack archive search: hybrid (with and without Heron's messages) and full text, p50/p95."""
    from heron.bench.slack_search import run_search_benchmark

    config = load_config()
    run_search_benchmark(config, sizes=_sizes(sizes, minimum=100), output=output, console=out)


def _sizes(text: str, *, minimum: int) -> list[int]:
    """--sizes: numbers separated by commas, each at least `minimum`."""
    try:
        counts = [int(part) for part in text.split(",") if part.strip()]
    except ValueError:
        raise HeronError(f"--sizes must be numbers separated by commas, not {text!r}") from None
    if not counts or min(counts) < minimum:
        raise HeronError(f"--sizes needs values of at least {minimum}")
    return counts


@bench_app.command("agent")
@one_line_errors
def bench_agent(
    questions: Annotated[int, typer.Option(min=10, help="Questions to time")] = 200,
    warmup: Annotated[int, typer.Option(min=0, help="Questions answered before timing")] = 20,
    output: Annotated[Path, typer.Option(help="Where to write the JSON results")] = Path(
        "benchmarks/results/agent.json"
    ),
) -> None:
    """Heron's overhead per answered question (Slack fake -> agent -> reply), model excluded."""
    from heron.bench.agent import run_agent_benchmark

    config = load_config()
    run_agent_benchmark(config, questions=questions, warmup=warmup, output=output, console=out)


slack_app = typer.Typer(help="Slack: import the workspace's history.", no_args_is_help=True)
app.add_typer(slack_app, name="slack")


@slack_app.command("import")
@one_line_errors
def slack_import(
    path: Annotated[
        Path | None, typer.Argument(help="A Slack export: the zip, or its unzipped folder")
    ] = None,
    api: Annotated[
        bool, typer.Option("--api", help="Backfill through the Web API (SLACK_BOT_TOKEN)")
    ] = False,
    channel: Annotated[
        list[str] | None, typer.Option(help="With --api: only this conversation (id or name)")
    ] = None,
    requests_per_minute: Annotated[
        float | None, typer.Option(help="With --api: history/replies calls a minute (50)")
    ] = None,
    page_size: Annotated[int | None, typer.Option(help="With --api: messages a page (200)")] = None,
    non_marketplace: Annotated[
        bool,
        typer.Option(
            "--non-marketplace",
            help="With --api: Slack's 2025 limit for non-Marketplace apps (1/min, 15)",
        ),
    ] = False,
    embed: Annotated[
        bool,
        typer.Option(
            "--embed/--no-embed",
            help="Compute the messages' vectors for search now (else a batch per search)",
        ),
    ] = True,
) -> None:
    """Import history from an export, or (--api) backfill it: idempotent and resumable."""
    from heron.slack import import_cli

    paced = requests_per_minute is not None or page_size is not None or non_marketplace
    if path is None and not api:
        raise HeronError("give a Slack export (zip or folder), or --api to read the Web API")
    if path is not None and api:
        raise HeronError("give a Slack export or --api, not both")
    if path is not None and (channel or paced):
        raise HeronError(
            "--channel, --requests-per-minute, --page-size and --non-marketplace go with --api"
        )
    config = load_config()
    if path is not None:
        summary, vectors = import_cli.run_export_import(config, path, err, embed=embed)
        out.print(import_cli.export_summary_line(summary), highlight=False)
    else:
        pace = import_cli.pace_from_options(requests_per_minute, page_size, non_marketplace)
        backfilled, vectors = import_cli.run_backfill(config, channel or [], pace, err, embed=embed)
        out.print(import_cli.backfill_summary_line(backfilled), highlight=False)
    if vectors is not None:
        out.print(import_cli.embedding_summary_line(vectors), highlight=False)


@bench_app.command("import")
@one_line_errors
def bench_import(
    messages: Annotated[int, typer.Option(min=1_000, help="Messages in the synthetic export")] = (
        200_000
    ),
    output: Annotated[Path, typer.Option(help="Where to write the JSON results")] = Path(
        "benchmarks/results/slack_import.json"
    ),
) -> None:
    """Slack export import: a synthetic export into a fresh database, messages/s."""
    from heron.bench.slack_import import run_import_benchmark

    config = load_config()
    run_import_benchmark(config, messages=messages, output=output, console=out)


def main() -> None:
    """Console entry point."""
    try:
        app()
    except KeyboardInterrupt:  # pragma: no cover - interactive
        sys.exit(130)
