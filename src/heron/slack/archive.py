"""The Slack archive's writes: a Plan in one transaction, and bulk imports through COPY.

`take()` is the ack path: it only writes to PostgreSQL (the message, the receipt that
makes redeliveries no-ops, the question's queue event) and returns; nothing here waits
for Slack or for the model.
"""

from __future__ import annotations

import json
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass
from typing import Any, Literal

import psycopg
import structlog
from psycopg.types.json import Jsonb
from psycopg_pool import AsyncConnectionPool

from heron.database.named_sql import NamedQueries
from heron.queue import queries as queue_queries
from heron.slack.events import (
    FILE_TEXT_EVENT_TYPE,
    QUESTION_EVENT_TYPE,
    Action,
    BotIdentity,
    DeleteMessage,
    FetchFileText,
    Membership,
    MessageRow,
    PayloadError,
    Plan,
    React,
    SaveChannel,
    SaveMessage,
    SaveUser,
    SetMembers,
    plan_event,
)
from heron.slack.partitions import Partitions

log = structlog.get_logger(__name__)
query = NamedQueries("heron.slack.sql", "archive.sql")

Outcome = Literal["stored", "duplicate", "rejected"]
_RAW_ERROR_CHARS = 20_000


@dataclass(frozen=True, slots=True)
class TakeResult:
    outcome: Outcome
    question_event_id: int | None = None


class Archive:
    """Writes to the archive on an autocommit async pool (see heron.queue.store.open_pool)."""

    def __init__(self, pool: AsyncConnectionPool[Any], bot: BotIdentity) -> None:
        self.pool = pool
        self.bot = bot
        self.partitions = Partitions(pool)

    async def take(self, body: Mapping[str, Any]) -> TakeResult:
        """Take in one Slack event_callback exactly once; bad payloads are recorded."""
        try:
            plan = plan_event(body, self.bot)
        except PayloadError as error:
            await self.record_error(body, str(error))
            log.warning("slack payload skipped", error=str(error), **_ids(body))
            return TakeResult("rejected")
        await self.partitions.ensure(plan.message_timestamps())
        try:
            return await self._store(plan)
        except psycopg.errors.CheckViolation as error:
            if "no partition" not in str(error):
                raise
            # Someone dropped partitions this process believed in: look again, once.
            self.partitions.forget()
            await self.partitions.ensure(plan.message_timestamps())
            return await self._store(plan)

    async def _store(self, plan: Plan) -> TakeResult:
        one_statement = _take_message_params(plan)
        if one_statement is not None:  # most events: one round trip instead of five
            async with self.pool.connection() as conn:
                cursor = await conn.execute(query("take_message"), one_statement)
                taken = await cursor.fetchone()
            return TakeResult("stored" if taken is not None else "duplicate")
        async with self.pool.connection() as conn, conn.transaction():
            if plan.event_id is not None:
                params = {"event_id": plan.event_id, "event_type": plan.event_type}
                receipt = await conn.execute(query("receipt"), params)
                if await receipt.fetchone() is None:
                    return TakeResult("duplicate")
            for action in plan.actions:
                await _apply(conn, action)
            question_id = None
            if plan.question is not None:
                question = plan.question
                params = queue_queries.enqueue_params(
                    QUESTION_EVENT_TYPE, question.payload(), question.dedupe_key, 0.0
                )
                row = await (await conn.execute(queue_queries.query("enqueue"), params)).fetchone()
                if row is None:  # asked before (the app_mention / message twin)
                    key = {"dedupe_key": question.dedupe_key}
                    by_key = await conn.execute(queue_queries.query("event_by_dedupe_key"), key)
                    row = await by_key.fetchone()
                question_id = None if row is None else int(row["id"])
        return TakeResult("stored", question_id)

    async def save_workspace(self) -> None:
        """Remember the workspace (its URL makes permalinks for the MCP server and tools)."""
        params = {
            "team_id": self.bot.team_id or "",
            "name": self.bot.team_name or "",
            "url": self.bot.url or "",
            "bot_user_id": self.bot.user_id,
        }
        async with self.pool.connection() as conn:
            await conn.execute(query("save_workspace"), params)

    async def record_error(self, body: Any, error: str) -> None:
        raw = json.dumps(body, default=str)
        shown: Any = body if len(raw) <= _RAW_ERROR_CHARS else {"truncated": raw[:_RAW_ERROR_CHARS]}
        ids = _ids(body)
        params = {
            "event_id": _str_or_none(ids.get("event_id")),
            "event_type": _str_or_none(ids.get("event_type")),
            "error": error,
            "raw": Jsonb(shown, dumps=lambda value: json.dumps(value, default=str)),
        }
        async with self.pool.connection() as conn:
            await conn.execute(query("record_error"), params)

    async def save(self, actions: Iterable[Action]) -> None:
        """Apply actions outside any event (directory sync, imports), in one transaction."""
        actions = list(actions)
        await self.partitions.ensure(Plan(None, "", actions).message_timestamps())
        async with self.pool.connection() as conn, conn.transaction():
            for action in actions:
                await _apply(conn, action)

    async def import_messages(self, rows: Sequence[MessageRow]) -> int:
        """Bulk insert through COPY; existing messages are left alone. Returns rows added."""
        if not rows:
            return 0
        await self.partitions.ensure(row.ts for row in rows)
        async with self.pool.connection() as conn, conn.transaction():
            await conn.execute(query("staging"))
            async with conn.cursor() as cursor:
                async with cursor.copy(query("copy_staging")) as copy:
                    for row in rows:
                        await copy.write_row(_staging_row(row))
                await cursor.execute(query("import_staged"))
                return int(cursor.rowcount)


def _take_message_params(plan: Plan) -> dict[str, Any] | None:
    """take_message's parameters when the plan has its shape (a message, its channel's
    flags, no question: a question's id comes back from the queue); None otherwise."""
    if plan.event_id is None or plan.question is not None or len(plan.actions) != 2:
        return None
    channel, message = plan.actions
    if not (isinstance(channel, SaveChannel) and isinstance(message, SaveMessage)):
        return None
    flags = (channel.is_private, channel.is_im, channel.is_mpim)
    only_flags = SaveChannel(channel.id, is_private=flags[0], is_im=flags[1], is_mpim=flags[2])
    if channel != only_flags or None in flags or channel.id != message.row.channel_id:
        return None
    return message_params(message.row) | {
        "event_id": plan.event_id,
        "event_type": plan.event_type,
        "is_private": flags[0],
        "is_im": flags[1],
        "is_mpim": flags[2],
    }


async def _apply(conn: psycopg.AsyncConnection[Any], action: Action) -> None:
    if isinstance(action, SaveMessage):
        await conn.execute(query("save_message"), message_params(action.row))
    elif isinstance(action, DeleteMessage):
        params = {"channel_id": action.channel_id, "ts": action.ts}
        await conn.execute(query("delete_message"), params)
    elif isinstance(action, React):
        params = {
            "channel_id": action.channel_id,
            "ts": action.ts,
            "name": action.name,
            "user_id": action.user_id,
        }
        await conn.execute(query("react_add" if action.added else "react_remove"), params)
    elif isinstance(action, SaveChannel):
        await conn.execute(query("save_channel"), channel_params(action))
    elif isinstance(action, Membership):
        params = {"channel_id": action.channel_id, "user_id": action.user_id}
        await conn.execute(query("join" if action.joined else "leave"), params)
    elif isinstance(action, SetMembers):
        members = {"channel_id": action.channel_id, "user_ids": list(action.user_ids)}
        await conn.execute(query("set_members_remove"), members)
        await conn.execute(query("set_members_add"), members)
    elif isinstance(action, SaveUser):
        await conn.execute(query("save_user"), user_params(action.user))
    elif isinstance(action, FetchFileText):
        payload = {
            "channel": action.channel_id,
            "ts": action.ts,
            "file_id": action.file_id,
            "url": action.url,
        }
        key = f"slack-file:{action.channel_id}:{action.ts}:{action.file_id}"
        params = queue_queries.enqueue_params(FILE_TEXT_EVENT_TYPE, payload, key, 0.0)
        await conn.execute(queue_queries.query("enqueue"), params)


def message_params(row: MessageRow) -> dict[str, Any]:
    return {
        "channel_id": row.channel_id,
        "ts": row.ts,
        "thread_ts": row.thread_ts,
        "user_id": row.user_id,
        "bot_id": row.bot_id,
        "subtype": row.subtype,
        "text": _clean(row.text),
        "previous_text": None if row.previous_text is None else _clean(row.previous_text),
        "edited_ts": row.edited_ts,
        "reply_count": row.reply_count,
        "files": Jsonb(row.files),
        "reactions": Jsonb(row.reactions),
        "metadata": None if row.metadata is None else Jsonb(row.metadata),
        "raw": Jsonb(_strip_nul(row.raw)),
    }


def channel_params(channel: SaveChannel) -> dict[str, Any]:
    raw = channel.raw
    topic = purpose = None
    if raw is not None:
        topic = _nested_text(raw, "topic")
        purpose = _nested_text(raw, "purpose")
    return {
        "id": channel.id,
        "name": channel.name,
        "is_private": channel.is_private,
        "is_im": channel.is_im,
        "is_mpim": channel.is_mpim,
        "is_archived": channel.is_archived,
        "is_deleted": channel.is_deleted,
        "topic": topic,
        "purpose": purpose,
        "created_ts": channel.created_ts,
        "raw": None if raw is None else Jsonb(_strip_nul(raw)),
    }


def user_params(user: Mapping[str, Any]) -> dict[str, Any]:
    profile = user.get("profile") if isinstance(user.get("profile"), Mapping) else {}
    assert isinstance(profile, Mapping)
    return {
        "id": user["id"],
        "team_id": _str_or_none(user.get("team_id")),
        "name": str(user.get("name") or ""),
        "real_name": str(user.get("real_name") or profile.get("real_name") or ""),
        "display_name": str(profile.get("display_name") or ""),
        "tz": _str_or_none(user.get("tz")),
        "is_bot": bool(user.get("is_bot")),
        "deleted": bool(user.get("deleted")),
        "raw": Jsonb(_strip_nul(dict(user))),
    }


def _staging_row(row: MessageRow) -> tuple[Any, ...]:
    """One COPY row; JSON goes as text (the server parses it), the hot path of imports."""
    return (
        row.channel_id,
        row.ts,
        row.thread_ts,
        row.user_id,
        row.bot_id,
        row.subtype,
        _clean(row.text),
        row.edited_ts,
        row.reply_count,
        _json_text(row.files),
        _json_text(row.reactions),
        None if row.metadata is None else _json_text(row.metadata),
        _json_text(row.raw),
    )


def _json_text(value: Any) -> str:
    text = json.dumps(value, separators=(",", ":"), default=str)
    # PostgreSQL's jsonb refuses \u0000; walk the value only in that rare case.
    return (
        json.dumps(_strip_nul(value), separators=(",", ":"), default=str)
        if "\\u0000" in text
        else text
    )


def _nested_text(raw: Mapping[str, Any], key: str) -> str | None:
    value = raw.get(key)
    if isinstance(value, Mapping) and isinstance(value.get("value"), str):
        return str(value["value"])
    return None


def _clean(text: str) -> str:
    # PostgreSQL text cannot hold NUL; Slack never sends it, a broken client might.
    return text.replace("\x00", "")


def _strip_nul(value: Any) -> Any:
    if isinstance(value, str):
        return _clean(value)
    if isinstance(value, Mapping):
        return {str(k): _strip_nul(v) for k, v in value.items()}
    if isinstance(value, list):
        return [_strip_nul(v) for v in value]
    return value


def _str_or_none(value: Any) -> str | None:
    return value if isinstance(value, str) else None


def _ids(body: Any) -> dict[str, Any]:
    if not isinstance(body, Mapping):
        return {}
    event = body.get("event") if isinstance(body.get("event"), Mapping) else {}
    assert isinstance(event, Mapping)
    return {"event_id": body.get("event_id"), "event_type": event.get("type")}
