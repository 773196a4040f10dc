"""Reading the archive as a given Slack user: what Slack would show them, nothing more.

Every query runs behind `readable` (sql/search.sql), the one definition of access: public
channels, and the private channels, DMs and group DMs the user is a member of; never a
deleted channel, a deleted message or a placeholder. A channel the user cannot see is
reported exactly like one that does not exist. Search is hybrid: full text (any of the
query's words) and, with pgvector and an embedder, the nearest message vectors, fused by
reciprocal rank fusion. Full text ranks by all of the query's words but looks only at the
messages with one of its uncommon words (COMMON_WORD_MESSAGES). Both rankings leave out
Heron's own messages and the questions put to it (`searchable`) unless asked not to.
"""

from __future__ import annotations

import asyncio
import re
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import UTC, date, datetime, time, timedelta
from typing import Any, Final, LiteralString

import structlog
from psycopg import sql
from psycopg_pool import AsyncConnectionPool

from heron.docsearch.ranking import reciprocal_rank_fusion
from heron.errors import HeronError
from heron.slack import archive
from heron.slack.embeddings import Connection, MessageVectors, query

log = structlog.get_logger(__name__)

CANDIDATES: Final = 50  # from each ranker, before fusion
# Full text ranks only the messages with one of the query's uncommon words: a word in more
# than this many messages (by ANALYZE's statistics) would have them all ranked for every
# question; it still counts in the ranking (sql/search.sql).
COMMON_WORD_MESSAGES: Final = 1000
_MENTION = re.compile(r"<[@#!][^>]*>")
_TS = re.compile(r"^\d{1,12}\.\d{1,6}$")
_DATE = re.compile(r"^\d{4}-\d{2}-\d{2}$")
_USER_ID = re.compile(r"^[UW][A-Z0-9]{2,}$")
_CHANNEL_LINK = re.compile(r"^<#([A-Z0-9]+)(?:\|[^>]*)?>$")
_USER_LINK = re.compile(r"^<@([A-Z0-9]+)(?:\|[^>]*)?>$")


class ArchiveQueryError(HeronError):
    """A read the archive cannot answer as asked; the message says what to change."""


class NotFoundError(ArchiveQueryError, LookupError):
    """Nothing readable there: missing and not visible to the user look the same."""


def permalink(
    workspace_url: str | None, channel_id: str, ts: str, thread_ts: str | None
) -> str | None:
    """Slack's permalink format; None when the workspace URL is unknown."""
    if not workspace_url:
        return None
    link = f"{workspace_url.rstrip('/')}/archives/{channel_id}/p{ts.replace('.', '')}"
    if thread_ts and thread_ts != ts:
        link += f"?thread_ts={thread_ts}&cid={channel_id}"
    return link


@dataclass(frozen=True, slots=True)
class MessageHit:
    """A full-text match, as the retrieval-only responder shows it."""

    channel_id: str
    channel_name: str
    ts: str
    thread_ts: str | None
    author: str
    text: str
    at: datetime
    rank: float

    def permalink(self, workspace_url: str | None) -> str | None:
        """Slack's permalink format; None when the workspace URL is unknown."""
        return permalink(workspace_url, self.channel_id, self.ts, self.thread_ts)


@dataclass(frozen=True, slots=True)
class Message:
    """One readable message."""

    channel_id: str
    channel_name: str
    ts: str
    thread_ts: str | None
    user_id: str | None
    author: str
    text: str
    at: datetime
    reply_count: int

    @classmethod
    def from_row(cls, row: dict[str, Any]) -> Message:
        return cls(
            channel_id=row["channel_id"],
            channel_name=row["channel_name"],
            ts=row["ts"],
            thread_ts=row["thread_ts"],
            user_id=row["user_id"],
            author=row["author"],
            text=row["text"],
            at=row["message_at"].astimezone(UTC),
            reply_count=int(row["reply_count"]),
        )

    def permalink(self, workspace_url: str | None) -> str | None:
        return permalink(workspace_url, self.channel_id, self.ts, self.thread_ts)


@dataclass(frozen=True, slots=True)
class Page:
    """Messages oldest first; `has_more` when the limit left some out."""

    messages: list[Message]
    has_more: bool


@dataclass(frozen=True, slots=True)
class Channel:
    """A conversation the user can read."""

    id: str
    name: str
    is_private: bool
    is_im: bool
    is_mpim: bool
    is_archived: bool
    topic: str
    purpose: str
    member_count: int
    members: list[str] | None  # DMs and group DMs: who is in it


@dataclass(frozen=True, slots=True)
class User:
    """A person (or bot) of the workspace."""

    id: str
    name: str
    real_name: str
    display_name: str
    is_bot: bool
    deleted: bool
    tz: str | None


@dataclass(frozen=True, slots=True)
class Period:
    """A time range: `since` inclusive, `until` exclusive; None is open-ended."""

    since: datetime | None = None
    until: datetime | None = None

    @classmethod
    def parse(cls, since: str | None, until: str | None) -> Period:
        """From ISO dates (a whole day, UTC) or date-times (UTC unless they say)."""
        period = cls(_bound(since, "since", end=False), _bound(until, "until", end=True))
        if period.since and period.until and period.since >= period.until:
            raise ArchiveQueryError(f"since ({since}) must be before until ({until})")
        return period


def _bound(value: str | None, name: str, *, end: bool) -> datetime | None:
    text = (value or "").strip()
    if not text:
        return None
    try:
        if _DATE.match(text):
            start = datetime.combine(date.fromisoformat(text), time(), UTC)
            return start + timedelta(days=1) if end else start  # the whole day
        moment = datetime.fromisoformat(text)
    except ValueError:
        raise ArchiveQueryError(
            f"{name}: {value!r} is not an ISO date (2024-11-26) or date and time "
            "(2024-11-26T14:30:00Z)"
        ) from None
    moment = moment if moment.tzinfo else moment.replace(tzinfo=UTC)
    return moment + timedelta(microseconds=1) if end else moment  # until is inclusive


def is_user_id(value: str) -> bool:
    """Whether `value` looks like a Slack user id (U0123ABCD, or W… on Enterprise Grid)."""
    return _USER_ID.match(value) is not None


def check_ts(ts: str, name: str = "ts") -> str:
    """A Slack message timestamp such as 1732579200.000100, or ArchiveQueryError."""
    ts = ts.strip()
    if not _TS.match(ts):
        raise ArchiveQueryError(f"{name} must be a Slack message ts such as 1732579200.000100")
    return ts


def _readable(name: str) -> LiteralString:
    """A named query behind the access rules (see sql/search.sql)."""
    return query("readable") + "\n" + query(name)


def _searchable(name: str) -> LiteralString:
    """A search query: behind the access rules, then the rule that leaves Heron out."""
    return _readable("searchable") + "\n" + query(name)


class ArchiveReader:
    """The archive as `user_id` may read it: every method applies the same rules."""

    def __init__(
        self,
        pool: AsyncConnectionPool[Any],
        user_id: str,
        vectors: MessageVectors | None = None,
    ) -> None:
        self.pool = pool
        self.user_id = user_id
        self.vectors = vectors

    async def _rows(self, query_name: str, /, **params: Any) -> list[dict[str, Any]]:
        async with self.pool.connection() as conn:
            cursor = await conn.execute(_readable(query_name), {"user_id": self.user_id, **params})
            rows: list[dict[str, Any]] = await cursor.fetchall()
        return rows

    async def workspace_url(self) -> str | None:
        async with self.pool.connection() as conn:
            row = await (await conn.execute(archive.query("workspace_url"))).fetchone()
        return None if row is None else str(row["url"])

    async def channels(self, name: str | None, limit: int) -> list[Channel]:
        rows = await self._rows("channels", name=name or None, limit=limit)
        return [Channel(**row) for row in rows]

    async def users(self, name: str | None, limit: int) -> list[User]:
        """The directory: like Slack's, the same for everyone in the workspace."""
        async with self.pool.connection() as conn:
            cursor = await conn.execute(query("users"), {"name": name or None, "limit": limit})
            return [User(**row) for row in await cursor.fetchall()]

    async def channel_id(self, ref: str) -> str:
        """A readable channel's id from its id, `#name`, `name` or `<#C123|name>`."""
        text = ref.strip()
        link = _CHANNEL_LINK.match(text)
        key = link[1] if link else text.lstrip("#")
        rows = await self._rows("channel_by_ref", ref=key) if key else []
        if not rows:
            raise NotFoundError(
                f"channel {ref!r} not found: list_channels shows the ones you can read"
            )
        return str(rows[0]["id"])

    async def user_ref(self, ref: str) -> str:
        """A user id from an id, `@name`, display or real name, or `<@U123>`."""
        text = ref.strip()
        link = _USER_LINK.match(text)
        key = link[1] if link else text.lstrip("@")
        async with self.pool.connection() as conn:
            cursor = await conn.execute(query("user_by_ref"), {"ref": key})
            rows = await cursor.fetchall()
        if rows and (rows[0]["id"] == key.upper() or len(rows) == 1):
            return str(rows[0]["id"])
        if rows:
            names = ", ".join(f"{r['label']} ({r['id']})" for r in rows)
            raise ArchiveQueryError(f"{ref!r} could mean several people: {names}; pass an id")
        if is_user_id(key):
            return key  # not in the directory (yet), but unmistakably a user id
        raise NotFoundError(f"no user {ref!r}: list_users shows who there is")

    async def history(self, channel: str, period: Period, limit: int) -> Page:
        """The channel's newest top-level messages in the period (replies: get_thread)."""
        channel_id = await self.channel_id(channel)
        rows = await self._rows(
            "history", channel_id=channel_id, **_period(period), limit=limit + 1
        )
        return _newest_page(rows, limit)

    async def thread(self, channel: str, ts: str, limit: int) -> Page:
        """A thread from its parent's ts or any reply's, oldest first."""
        ts = check_ts(ts)
        channel_id = await self.channel_id(channel)
        rows = await self._rows("thread", channel_id=channel_id, ts=ts, limit=limit + 1)
        if not rows:
            raise NotFoundError(f"no message {ts} in channel {channel!r}")
        return Page([Message.from_row(r) for r in rows[:limit]], len(rows) > limit)

    async def context(self, channel: str, ts: str, before: int, after: int) -> list[Message]:
        """A message with up to `before` and `after` neighbours at its level."""
        ts = check_ts(ts)
        channel_id = await self.channel_id(channel)
        rows = await self._rows("context", channel_id=channel_id, ts=ts, before=before, after=after)
        if not any(r["ts"] == ts for r in rows):
            raise NotFoundError(f"no message {ts} in channel {channel!r}")
        return [Message.from_row(r) for r in rows]

    async def with_user(self, user: str, period: Period, limit: int) -> Page:
        """Messages by `user` the reader can see, and their DMs together (newest kept)."""
        other_id = await self.user_ref(user)
        rows = await self._rows("with_user", other_id=other_id, **_period(period), limit=limit + 1)
        return _newest_page(rows, limit)

    async def search(
        self,
        text: str,
        *,
        channel: str | None = None,
        author: str | None = None,
        period: Period | None = None,
        limit: int = 10,
        include_heron: bool = False,
    ) -> list[tuple[Message, float]]:
        """Hybrid search, best first: (message, fused score) pairs.

        Heron's own messages and the questions that mention it are left out of both
        rankings unless `include_heron` (Heron's user comes from the saved workspace:
        without one, nothing is left out).
        """
        words = _MENTION.sub(" ", text).strip()
        if not words:
            raise ArchiveQueryError("query is empty: pass the words to search for")
        filters = {
            "channel_id": await self.channel_id(channel) if channel else None,
            "author_id": await self.user_ref(author) if author else None,
            **_period(period or Period()),
        }
        async with self.pool.connection() as conn:
            filters["bot_user_id"] = None if include_heron else await _bot_user_id(conn)
            # The question is embedded (in a thread) while the server ranks its words.
            embedding = await self._start_embedding(conn, words)
            try:
                by_text = await self._text_candidates(conn, words, filters, CANDIDATES)
            except BaseException:
                if embedding is not None:  # not wanted now; its own failure is no news
                    embedding.cancel()
                    embedding.add_done_callback(lambda task: task.cancelled() or task.exception())
                raise
            by_vector = await self._vector_candidates(conn, embedding, filters)
        rows = {(r["channel_id"], r["ts"]): r for r in (*by_vector, *by_text)}
        fused = reciprocal_rank_fusion(
            [[(r["channel_id"], r["ts"]) for r in ranking] for ranking in (by_text, by_vector)],
            limit=limit,
        )
        return [(Message.from_row(rows[key]), score) for key, score in fused]

    async def _text_candidates(
        self,
        conn: Connection,
        words: str,
        filters: dict[str, Any],
        limit: int,
        exclude: tuple[str, str] = ("", ""),
    ) -> list[dict[str, Any]]:
        params = {
            "user_id": self.user_id,
            "query": words,
            "common_messages": COMMON_WORD_MESSAGES,
            "limit": limit,
            "exclude_channel": exclude[0],
            "exclude_ts": exclude[1],
            **filters,
        }
        return await (await conn.execute(_searchable("text_candidates"), params)).fetchall()

    async def _start_embedding(self, conn: Connection, words: str) -> asyncio.Task[str] | None:
        """The query's vector, on its way; None when this archive has no vectors."""
        vectors = self.vectors
        if vectors is None or not await vectors.available(conn):
            return None
        return asyncio.create_task(vectors.embed_query(words))

    async def _vector_candidates(
        self, conn: Connection, embedding: asyncio.Task[str] | None, filters: dict[str, Any]
    ) -> list[dict[str, Any]]:
        vectors = self.vectors
        if vectors is None or embedding is None:
            return []
        try:
            vector = await embedding
        except Exception as error:  # the embedder is a plug-in: a model, an API
            log.warning("slack search without vectors: the query could not be embedded",
                        error=str(error))  # fmt: skip
            return []
        # A channel or an author narrows the messages enough to measure them all; else
        # the HNSW index finds the nearest, with access and time checked as it goes.
        exact = filters["channel_id"] is not None or filters["author_id"] is not None
        embedder = vectors.embedder
        statement = sql.SQL(_searchable("vector_exact" if exact else "vector_nearest")).format(
            dims=sql.Literal(embedder.dimensions), model=sql.Literal(embedder.name)
        )
        params = {
            "user_id": self.user_id,
            "vector": vector,
            "limit": CANDIDATES,
            "nearest": 2 * CANDIDATES,  # room for deleted messages the join drops
            **filters,
        }
        async with conn.transaction():
            await vectors.tune(conn)
            return await (await conn.execute(statement, params)).fetchall()


async def _bot_user_id(conn: Connection) -> str | None:
    """Heron's Slack user by the latest saved workspace; None for an archive without one
    (imported from an export only)."""
    row = await (await conn.execute(query("bot_user_id"))).fetchone()
    return None if row is None else str(row["bot_user_id"])


def _period(period: Period) -> dict[str, datetime | None]:
    return {"since": period.since, "until": period.until}


def _newest_page(rows: Sequence[dict[str, Any]], limit: int) -> Page:
    """Rows newest first (one more than `limit` asked) as a page, oldest first."""
    return Page([Message.from_row(r) for r in reversed(rows[:limit])], len(rows) > limit)


async def search_messages(
    pool: AsyncConnectionPool[Any],
    user_id: str,
    text: str,
    *,
    limit: int = 5,
    exclude: tuple[str, str] | None = None,
    bot_user_id: str | None = None,
) -> list[MessageHit]:
    """Full-text search over the messages `user_id` may read; `exclude` = (channel, ts).
    With `bot_user_id`, the bot's own messages and the questions mentioning it are left
    out: an answer made of earlier answers and questions tells the asker nothing new."""
    words = _MENTION.sub(" ", text).strip()
    if not words:
        return []
    reader = ArchiveReader(pool, user_id)
    filters = {"channel_id": None, "author_id": None, "bot_user_id": bot_user_id}
    async with pool.connection() as conn:
        rows = await reader._text_candidates(
            conn, words, {**filters, **_period(Period())}, limit, exclude or ("", "")
        )
    return [
        MessageHit(
            channel_id=row["channel_id"],
            channel_name=row["channel_name"],
            ts=row["ts"],
            thread_ts=row["thread_ts"],
            author=row["author"],
            text=row["text"],
            at=row["message_at"],
            rank=float(row["rank"]),
        )
        for row in rows
    ]
