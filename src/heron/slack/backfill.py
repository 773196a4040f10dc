"""The Web API backfill: every conversation's history and threads, resumable and paced.

Each page is imported (COPY, existing rows left alone) before its next cursor is stored
in slack_import_cursors, so a backfill killed at any point carries on from the page it
was at and at worst fetches that one page again; a finished history or thread is marked
`done` and never fetched again. Threads found in a history page are recorded with that
page's cursor in one transaction, so none is forgotten across a restart.

conversations.history and conversations.replies have separate limits, so one task walks
histories while another walks threads, each behind its own Pacer.
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import Callable, Collection, Iterable, Mapping, Sequence
from dataclasses import dataclass
from typing import Any

import structlog
from slack_sdk.errors import SlackApiError
from slack_sdk.web.async_client import AsyncWebClient

from heron.errors import HeronError
from heron.slack.archive import Archive
from heron.slack.directory import CONVERSATION_TYPES, pages, sync_directory
from heron.slack.events import MessageRow, PayloadError, message_row
from heron.slack.import_cursors import CursorStore
from heron.slack.pacing import Clock, Pace, Pacer, SystemClock, estimate_seconds

log = structlog.get_logger(__name__)

HISTORY = "conversations.history"
REPLIES = "conversations.replies"
# Refusals about one conversation: reported and skipped, the others carry on.
_SKIP_ERRORS = frozenset(
    {"not_in_channel", "channel_not_found", "missing_scope", "access_denied", "is_archived"}
)
# 429s after slack_sdk's own retries: waited out this many more times before giving up.
_RATE_LIMITED_ATTEMPTS = 10


class BackfillError(HeronError):
    """The backfill cannot go on (Slack kept refusing); rerunning resumes where it stopped."""


@dataclass(frozen=True, slots=True)
class Skipped:
    """A conversation the backfill does not read, and why."""

    id: str
    name: str
    reason: str


@dataclass(frozen=True, slots=True)
class BackfillPlan:
    """What a backfill will read, known after conversations.list and the stored cursors."""

    conversations: tuple[str, ...]
    skipped: tuple[Skipped, ...]
    users: int
    histories_left: int
    threads_left: int
    pace: Pace

    @property
    def seconds_at_least(self) -> float:
        """Pages are unknown up front: every history and known thread needs one at least."""
        requests = {HISTORY: self.histories_left, REPLIES: self.threads_left}
        return estimate_seconds(requests, self.pace.interval)


@dataclass(slots=True)
class BackfillProgress:
    """Counters as the backfill goes, handed to the progress callback after each page."""

    histories_left: int
    threads_left: int
    interval: float
    history_pages: int = 0
    replies_pages: int = 0
    threads_found: int = 0
    messages: int = 0
    added: int = 0
    bad: int = 0

    @property
    def requests(self) -> int:
        return self.history_pages + self.replies_pages

    @property
    def requests_left_at_least(self) -> int:
        return self.histories_left + self.threads_left

    @property
    def seconds_left_at_least(self) -> float:
        requests = {HISTORY: self.histories_left, REPLIES: self.threads_left}
        return estimate_seconds(requests, self.interval)


@dataclass(frozen=True, slots=True)
class BackfillSummary:
    """What a backfill did."""

    conversations: int
    skipped: tuple[Skipped, ...]
    users: int
    history_pages: int
    replies_pages: int
    messages: int
    added: int
    bad: int
    seconds: float

    @property
    def rate(self) -> float:
        """Messages per second (bounded by the pace, not by the archive)."""
        return self.messages / self.seconds if self.seconds > 0 else 0.0


@dataclass(frozen=True, slots=True)
class _Page:
    rows: list[MessageRow]
    added: int
    bad: int
    cursor: str | None


def select_conversations(
    listed: Iterable[Mapping[str, Any]], only: Collection[str] = ()
) -> tuple[list[Mapping[str, Any]], list[Skipped]]:
    """The conversations to read (`only`: ids or names) and the ones that cannot be.

    Slack lets a bot read only conversations it is in; DMs listed are always its own.
    """
    wanted = {ref.removeprefix("#") for ref in only}
    chosen: list[Mapping[str, Any]] = []
    skipped: list[Skipped] = []
    found: set[str] = set()
    for channel in listed:
        name = conversation_name(channel)
        keys = {str(channel["id"]), name}
        if wanted and not keys & wanted:
            continue
        found |= keys & wanted
        if not channel.get("is_member", True):
            reason = "the bot is not a member (invite it to import this channel)"
            skipped.append(Skipped(str(channel["id"]), name, reason))
        else:
            chosen.append(channel)
    for ref in sorted(wanted - found):
        skipped.append(Skipped(ref, ref, "not found among the conversations the bot can see"))
    return chosen, skipped


def conversation_name(channel: Mapping[str, Any]) -> str:
    """How a conversation is shown: its name, `dm-<user>` for a DM."""
    if channel.get("is_im"):
        return f"dm-{channel.get('user', channel['id'])}"
    return str(channel.get("name") or channel["id"])


def thread_parents(rows: Iterable[MessageRow]) -> list[str]:
    """The ts of messages that start a thread with replies."""
    return [r.ts for r in rows if r.reply_count > 0 and r.thread_ts in (None, r.ts)]


class Backfill:
    """`plan = await prepare()`, then `await run(plan)`; safe to run again at any time."""

    def __init__(
        self,
        client: AsyncWebClient,
        archive: Archive,
        *,
        pace: Pace | None = None,
        clock: Clock | None = None,
        on_progress: Callable[[BackfillProgress], None] | None = None,
    ) -> None:
        self.client = client
        self.archive = archive
        self.pace = pace or Pace()
        self.clock = clock or SystemClock()
        self.on_progress = on_progress
        self.cursors = CursorStore(archive.pool)
        self.pacers = {m: Pacer(self.pace.interval, self.clock) for m in (HISTORY, REPLIES)}
        self.progress = BackfillProgress(0, 0, self.pace.interval)
        self._skipped: list[Skipped] = []
        self._names: dict[str, str] = {}
        self._histories_done = False
        self._wake = asyncio.Event()

    async def prepare(self, only: Collection[str] = ()) -> BackfillPlan:
        """Sync users and conversations, choose what to read, and read the stored cursors."""
        directory = await sync_directory(self.client, self.archive)
        listed = [
            channel
            async for channel in pages(
                self.client,
                "conversations.list",
                "channels",
                types=CONVERSATION_TYPES,
                exclude_archived=False,
            )
        ]
        chosen, skipped = select_conversations(listed, only)
        self._names = {str(c["id"]): conversation_name(c) for c in chosen}
        ids = tuple(self._names)
        cursors = await self.cursors.start(ids)
        threads = await self.cursors.pending_threads(ids)
        plan = BackfillPlan(
            conversations=ids,
            skipped=tuple(skipped),
            users=directory["users"],
            histories_left=sum(1 for cid in ids if not cursors[cid][1]),
            threads_left=len(threads),
            pace=self.pace,
        )
        self.progress = BackfillProgress(plan.histories_left, plan.threads_left, self.pace.interval)
        return plan

    async def run(self, plan: BackfillPlan) -> BackfillSummary:
        """Read what is left; returns when every history and thread is done."""
        started = time.perf_counter()
        await _until_first_failure(
            self._histories(plan.conversations), self._threads(plan.conversations)
        )
        p = self.progress
        summary = BackfillSummary(
            conversations=len(plan.conversations),
            skipped=(*plan.skipped, *self._skipped),
            users=plan.users,
            history_pages=p.history_pages,
            replies_pages=p.replies_pages,
            messages=p.messages,
            added=p.added,
            bad=p.bad,
            seconds=time.perf_counter() - started,
        )
        log.info("slack backfill finished", messages=p.messages, added=p.added, bad=p.bad)
        return summary

    # -- histories ------------------------------------------------------------------------

    async def _histories(self, channel_ids: Sequence[str]) -> None:
        try:
            cursors = await self.cursors.start(channel_ids)
            for channel_id in channel_ids:
                cursor, done = cursors[channel_id]
                if not done:
                    await self._history(channel_id, cursor)
        finally:
            self._histories_done = True
            self._wake.set()

    async def _history(self, channel_id: str, cursor: str | None) -> None:
        while True:
            try:
                page = await self._page(HISTORY, channel_id, cursor, channel=channel_id)
            except SlackApiError as error:
                self._skip_or_raise(channel_id, error)
                self.progress.histories_left -= 1
                self._report()
                return
            threads = thread_parents(page.rows)
            await self.cursors.advance(channel_id, "history", page.cursor, len(page.rows), threads)
            self._count(page, len(page.rows))
            p = self.progress
            p.history_pages += 1
            p.threads_found += len(threads)
            p.threads_left += len(threads)
            if page.cursor is None:
                p.histories_left -= 1
            if threads:
                self._wake.set()
            self._report()
            if page.cursor is None:
                return
            cursor = page.cursor

    # -- threads --------------------------------------------------------------------------

    async def _threads(self, channel_ids: Sequence[str]) -> None:
        tried: set[tuple[str, str]] = set()
        while True:
            self._wake.clear()
            finished = self._histories_done  # read before looking: no thread found unseen
            pending = [
                t for t in await self.cursors.pending_threads(channel_ids) if t[:2] not in tried
            ]
            if not pending:
                if finished:
                    return
                await self._wake.wait()
                continue
            for channel_id, thread_ts, cursor in pending:
                tried.add((channel_id, thread_ts))
                await self._thread(channel_id, thread_ts, cursor)

    async def _thread(self, channel_id: str, thread_ts: str, cursor: str | None) -> None:
        scope = f"replies:{thread_ts}"
        while True:
            try:
                page = await self._page(
                    REPLIES, channel_id, cursor, channel=channel_id, ts=thread_ts
                )
            except SlackApiError as error:
                if _error_code(error) == "thread_not_found":  # deleted since: nothing to read
                    await self.cursors.advance(channel_id, scope, None, 0)
                else:
                    self._skip_or_raise(channel_id, error, thread_ts)
                self.progress.threads_left -= 1
                self._report()
                return
            replies = sum(1 for r in page.rows if r.ts != thread_ts)  # the parent heads each page
            await self.cursors.advance(channel_id, scope, page.cursor, replies)
            self._count(page, replies)
            self.progress.replies_pages += 1
            if page.cursor is None:
                self.progress.threads_left -= 1
            self._report()
            if page.cursor is None:
                return
            cursor = page.cursor

    # -- shared ---------------------------------------------------------------------------

    async def _page(self, method: str, channel_id: str, cursor: str | None, **params: Any) -> _Page:
        """Fetch one page and import its messages (bad ones counted and skipped)."""
        response = await self._call(method, cursor=cursor, limit=self.pace.page_size, **params)
        rows: list[MessageRow] = []
        bad = 0
        for message in response.get("messages") or []:
            try:
                rows.append(message_row(channel_id, message))
            except PayloadError as error:
                bad += 1
                log.warning("slack message skipped", channel=channel_id, error=str(error))
        added = await self.archive.import_messages(rows)
        next_cursor = (response.get("response_metadata") or {}).get("next_cursor") or None
        return _Page(rows, added, bad, next_cursor)

    def _count(self, page: _Page, messages: int) -> None:
        p = self.progress
        p.messages += messages
        p.added += page.added
        p.bad += page.bad

    async def _call(self, method: str, **params: Any) -> Any:
        """One paced call. slack_sdk already waits out 429s (Retry-After); if Slack still
        refuses, wait as told and try again rather than lose the run."""
        params = {k: v for k, v in params.items() if v is not None}
        pacer = self.pacers[method]
        for _ in range(_RATE_LIMITED_ATTEMPTS):
            await pacer.wait()
            try:
                return await self.client.api_call(method, http_verb="GET", params=params)
            except SlackApiError as error:
                if error.response.status_code != 429:
                    raise
                pacer.hold(_retry_after(error.response.headers))
                log.warning("slack rate limit persists", method=method)
        raise BackfillError(
            f"Slack kept answering 429 to {method}; run the import again later (it resumes) "
            "or lower --requests-per-minute"
        )

    def _skip_or_raise(self, channel_id: str, error: SlackApiError, thread_ts: str = "") -> None:
        code = _error_code(error)
        if code not in _SKIP_ERRORS:
            where = f"{channel_id} thread {thread_ts}" if thread_ts else channel_id
            raise BackfillError(f"Slack refused to read {where}: {code}") from None
        name = self._names.get(channel_id, channel_id)
        what = f"thread {thread_ts}" if thread_ts else "history"
        self._skipped.append(Skipped(channel_id, name, f"{what}: Slack answered {code}"))
        log.warning("slack conversation skipped", channel=channel_id, error=code)

    def _report(self) -> None:
        if self.on_progress is not None:
            self.on_progress(self.progress)


def _error_code(error: SlackApiError) -> str:
    return str(error.response.get("error") or "unknown_error")


def _retry_after(headers: Mapping[str, Any]) -> float:
    for key, value in headers.items():
        if key.lower() == "retry-after":
            text = value[0] if isinstance(value, list) else value
            try:
                return max(1.0, float(text))
            except (TypeError, ValueError):
                break
    return 1.0


async def _until_first_failure(*coroutines: Any) -> None:
    """Run side by side; the first failure cancels the others and is raised as is."""
    tasks = [asyncio.ensure_future(c) for c in coroutines]
    try:
        done, _ = await asyncio.wait(tasks, return_when=asyncio.FIRST_EXCEPTION)
        for task in done:
            error = task.exception()
            if error is not None:
                raise error
    finally:
        for task in tasks:
            task.cancel()
        await asyncio.gather(*tasks, return_exceptions=True)
