"""`heron slack import` as the command runs it: database, clients, rich progress, summary.

The progress bar goes to stderr (counts, rate, ETA); the one-line summary to stdout.
"""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator, Callable, Collection
from contextlib import asynccontextmanager
from pathlib import Path
from typing import Any

import aiohttp
from psycopg_pool import AsyncConnectionPool
from rich.console import Console
from rich.progress import (
    BarColumn,
    MofNCompleteColumn,
    Progress,
    TextColumn,
    TimeElapsedColumn,
    TimeRemainingColumn,
)
from slack_sdk.errors import SlackApiError

from heron.config import Config
from heron.database.connection import resolve_database_url
from heron.database.migrate import migrate
from heron.database.url import psycopg_conninfo
from heron.errors import HeronError, first_line
from heron.queue.store import open_pool
from heron.slack.archive import Archive
from heron.slack.backfill import Backfill, BackfillPlan, BackfillProgress, BackfillSummary
from heron.slack.client import web_client
from heron.slack.embeddings import ArchiveEmbedding, embed_archive
from heron.slack.events import BotIdentity
from heron.slack.export_import import ExportProgress, ExportSummary, import_export, open_export
from heron.slack.pacing import NON_MARKETPLACE, Pace, format_duration
from heron.slack.service import identify

# An export import needs no Slack identity: the archive only uses it for live events.
_NO_BOT = BotIdentity(user_id="")
_SHOWN_SKIPS = 10


@asynccontextmanager
async def _pool(config: Config) -> AsyncIterator[AsyncConnectionPool[Any]]:
    conninfo = psycopg_conninfo(resolve_database_url(config.database_url))
    await asyncio.to_thread(migrate, conninfo)
    pool = open_pool(conninfo, max_size=4, name="heron-slack-import")
    await pool.open()
    try:
        yield pool
    finally:
        await pool.close()


def run_export_import(
    config: Config, path: Path, console: Console, *, embed: bool = True
) -> tuple[ExportSummary, ArchiveEmbedding | None]:
    """Import an export zip or folder with a progress bar, then (`embed`) its messages'
    vectors; returns both summaries (the second None when not embedded)."""
    with open_export(path):  # a missing or broken export fails before the database starts
        pass
    return asyncio.run(_export(config, path, console, embed))


async def _export(
    config: Config, path: Path, console: Console, embed: bool
) -> tuple[ExportSummary, ArchiveEmbedding | None]:
    progress = Progress(
        TextColumn("importing"),
        BarColumn(),
        MofNCompleteColumn(),
        TextColumn("day files · {task.fields[messages]:,} messages · {task.fields[rate]}"),
        TimeRemainingColumn(),
        console=console,
        transient=True,
    )
    task = progress.add_task("export", total=None, messages=0, rate="")

    def show(p: ExportProgress) -> None:
        elapsed = progress.tasks[0].elapsed or 0.0
        rate = f"{p.messages / elapsed:,.0f}/s" if elapsed > 0 else ""
        progress.update(task, completed=p.files_done, total=p.files_total,
                        messages=p.messages, rate=rate)  # fmt: skip

    async with _pool(config) as pool:
        archive = Archive(pool, _NO_BOT)
        with progress:
            summary = await import_export(archive, path, on_progress=show)
        await archive.partitions.analyze()  # search tells common words by the statistics
        return summary, await _embed(config, pool, console) if embed else None


def counted(n: int, noun: str) -> str:
    """`1 conversation`, `2 conversations`."""
    return f"{n:,} {noun}{'' if n == 1 else 's'}"


def export_summary_line(s: ExportSummary) -> str:
    """The line an export import ends with."""
    skipped = f", {s.skipped:,} unusable skipped" if s.skipped else ""
    return (
        f"imported {counted(s.messages, 'message')} ({s.added:,} new{skipped}), "
        f"{counted(s.channels, 'conversation')} and {counted(s.users, 'user')} in "
        f"{s.seconds:.1f} s: {s.rate:,.0f} messages/s"
    )


def pace_from_options(
    requests_per_minute: float | None, page_size: int | None, non_marketplace: bool
) -> Pace:
    """Tier 3 by default, Slack's 2025 non-Marketplace limit on request; options override."""
    base = NON_MARKETPLACE if non_marketplace else Pace()
    try:
        return Pace(
            base.requests_per_minute if requests_per_minute is None else requests_per_minute,
            base.page_size if page_size is None else page_size,
        )
    except ValueError as error:
        raise HeronError(f"--requests-per-minute / --page-size: {error}") from None


def run_backfill(
    config: Config, channels: Collection[str], pace: Pace, console: Console, *, embed: bool = True
) -> tuple[BackfillSummary, ArchiveEmbedding | None]:
    """The Web API backfill with an estimate up front and a progress bar, then (`embed`)
    the messages' vectors."""
    try:
        return asyncio.run(_backfill(config, channels, pace, console, embed))
    except SlackApiError as error:
        method = str(error.response.api_url).rsplit("/", 1)[-1]
        code = error.response.get("error", "unknown_error")
        raise HeronError(f"Slack answered {code} to {method}; run again to resume") from None
    except (aiohttp.ClientError, TimeoutError) as error:
        reason = first_line(error)
        raise HeronError(f"cannot reach Slack ({reason}); run again to resume") from None


async def _backfill(
    config: Config, channels: Collection[str], pace: Pace, console: Console, embed: bool
) -> tuple[BackfillSummary, ArchiveEmbedding | None]:
    client = web_client(config)
    try:
        bot = await identify(client)
        async with _pool(config) as pool:
            backfill = Backfill(client, Archive(pool, bot), pace=pace)
            plan = await backfill.prepare(channels)
            console.print(plan_line(plan), highlight=False, soft_wrap=True)
            for skipped in plan.skipped[:_SHOWN_SKIPS]:
                console.print(f"  skipped {skipped.name}: {skipped.reason}", highlight=False)
            if len(plan.skipped) > _SHOWN_SKIPS:
                console.print(f"  … and {len(plan.skipped) - _SHOWN_SKIPS} more", highlight=False)
            progress = _backfill_progress(console)
            backfill.on_progress = _show_backfill(progress)
            with progress:
                summary = await backfill.run(plan)
            await backfill.archive.partitions.analyze()  # as after an export import
            return summary, await _embed(config, pool, console) if embed else None
    finally:
        if client.session is not None and not client.session.closed:
            await client.session.close()


def plan_line(plan: BackfillPlan) -> str:
    """Pages are unknown up front: the pace and the work known give a lower bound."""
    skipped = f" ({len(plan.skipped)} skipped)" if plan.skipped else ""
    head = counted(len(plan.conversations), "conversation") + skipped
    if plan.histories_left + plan.threads_left == 0:
        return f"{head}: all imported already"
    histories = "1 history" if plan.histories_left == 1 else f"{plan.histories_left:,} histories"
    threads = f" and {counted(plan.threads_left, 'thread')}" if plan.threads_left else ""
    return (
        f"{head}: {histories}{threads} to read at {plan.pace.describe()}; this takes at "
        f"least {format_duration(plan.seconds_at_least)} (the ETA refines as pages arrive)"
    )


def _backfill_progress(console: Console) -> Progress:
    return Progress(
        TextColumn("backfill"),
        BarColumn(),
        TextColumn("{task.completed:,.0f} requests · {task.fields[messages]:,} messages"),
        TextColumn("· {task.fields[rate]} · ETA ≥ {task.fields[eta]}"),
        TimeElapsedColumn(),
        console=console,
        transient=True,
    )


def _show_backfill(progress: Progress) -> Callable[[BackfillProgress], None]:
    task = progress.add_task("backfill", total=None, messages=0, rate="", eta="?")

    def show(p: BackfillProgress) -> None:
        elapsed = progress.tasks[0].elapsed or 0.0
        progress.update(
            task,
            completed=p.requests,
            total=p.requests + p.requests_left_at_least,
            messages=p.messages,
            rate=f"{p.messages / elapsed:,.1f} messages/s" if elapsed > 0 else "",
            eta=format_duration(p.seconds_left_at_least),
        )

    return show


def backfill_summary_line(s: BackfillSummary) -> str:
    """The line a backfill ends with."""
    skipped = f" ({len(s.skipped)} skipped)" if s.skipped else ""
    bad = f", {s.bad:,} unusable skipped" if s.bad else ""
    return (
        f"backfilled {counted(s.messages, 'message')} ({s.added:,} new{bad}) from "
        f"{counted(s.conversations, 'conversation')}{skipped} in "
        f"{counted(s.history_pages + s.replies_pages, 'page')} and {s.seconds:.1f} s: "
        f"{s.rate:,.1f} messages/s"
    )


async def _embed(
    config: Config, pool: AsyncConnectionPool[Any], console: Console
) -> ArchiveEmbedding | None:
    """The imported messages' vectors, with a progress bar; None when the embedding model
    failed (the import stands; search then embeds a batch at a time)."""
    from heron.docsearch.embedding import make_embedder

    progress = Progress(
        TextColumn("embedding"),
        BarColumn(),
        MofNCompleteColumn(),
        TextColumn("messages"),
        TimeRemainingColumn(),
        console=console,
        transient=True,
    )
    task = progress.add_task("embed", total=None)

    def show(done: int, total: int) -> None:
        progress.update(task, completed=done, total=total)

    try:
        embedder = make_embedder(config)
        with progress:
            return await embed_archive(pool, embedder, show)
    except Exception as error:  # the embedder is a plug-in: a model, an API
        console.print(
            f"message vectors not computed ({first_line(error)}); search embeds them a "
            "batch at a time, or run the import again",
            highlight=False,
        )
        return None


def embedding_summary_line(e: ArchiveEmbedding) -> str:
    """The line about the imported messages' vectors."""
    if not e.available:
        return "no message vectors: the database has no pgvector, so search matches words only"
    left = f", {e.left:,} left to another process" if e.left else ""
    return (
        f"embedded {counted(e.embedded, 'message')} for search ({e.model}) in "
        f"{e.seconds:.1f} s{left}"
    )
