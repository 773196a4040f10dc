"""A restart of the local workspace shows what Heron remembers: its conversations are put
back into the Slack fake from Heron's archive, silently (Heron has seen them already).

The archive is the one source of truth, so the page and Heron's memory always agree,
and the starting history is sent to Heron once per database, never twice.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any

from psycopg_pool import AsyncConnectionPool

from heron.database.named_sql import NamedQueries
from heron.testing.slack import AppIdentity, Message, SlackFake

query = NamedQueries("heron.web.workspace.sql", "workspace.sql")


async def archived_messages(
    pool: AsyncConnectionPool[Any], channels: Sequence[str]
) -> list[dict[str, Any]]:
    """The archive's rows for these conversations, oldest first."""
    async with pool.connection() as conn:
        cursor = await conn.execute(query("archived_messages"), {"channels": list(channels)})
        return list(await cursor.fetchall())


def fake_message(row: Mapping[str, Any], identity: AppIdentity) -> Message:
    """An archive row as the Slack fake stores a message."""
    message: Message = {"type": "message", "ts": row["ts"], "text": row["text"] or ""}
    if row["user_id"]:
        message["user"] = row["user_id"]
    if row["subtype"]:
        message["subtype"] = row["subtype"]
    if row["thread_ts"]:
        message["thread_ts"] = row["thread_ts"]
    if row["bot_id"]:
        message["bot_id"] = row["bot_id"]
    if row["bot_id"] == identity.bot_id:
        message["app_id"] = identity.app_id
        message["text"] = row["reply_text"] or message["text"]
    if row["edited"]:
        message["edited"] = {"user": row["user_id"] or "", "ts": row["ts"]}
    if row["metadata"]:
        message["metadata"] = row["metadata"]
    reactions = [
        {"name": name, "users": list(users), "count": len(users)}
        for name, users in (row["reactions"] or {}).items()
        if users
    ]
    if reactions:
        message["reactions"] = reactions
    return message


def restore(fake: SlackFake, rows: Sequence[Mapping[str, Any]]) -> int:
    """Put the rows back into the fake (parents before their replies); returns how many."""
    for row in rows:
        fake.workspace.insert(row["channel_id"], fake_message(row, fake.identity))
    return len(rows)
