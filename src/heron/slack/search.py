"""Searching the archive as a given Slack user: what Slack would show them, nothing more."""

from __future__ import annotations

import re
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from psycopg_pool import AsyncConnectionPool

from heron.slack.archive import query

_MENTION = re.compile(r"<[@#!][^>]*>")


@dataclass(frozen=True, slots=True)
class MessageHit:
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
        if not workspace_url:
            return None
        link = f"{workspace_url.rstrip('/')}/archives/{self.channel_id}/p{self.ts.replace('.', '')}"
        if self.thread_ts and self.thread_ts != self.ts:
            link += f"?thread_ts={self.thread_ts}&cid={self.channel_id}"
        return link


async def search_messages(
    pool: AsyncConnectionPool[Any],
    user_id: str,
    text: str,
    *,
    limit: int = 5,
    exclude: tuple[str, str] | None = None,
) -> list[MessageHit]:
    """Full-text search over the messages `user_id` may read; `exclude` = (channel, ts)."""
    words = _MENTION.sub(" ", text).strip()
    if not words:
        return []
    channel, ts = exclude or ("", "")
    params = {
        "user_id": user_id,
        "query": words,
        "limit": limit,
        "exclude_channel": channel,
        "exclude_ts": ts,
    }
    async with pool.connection() as conn:
        rows = await (await conn.execute(query("search"), params)).fetchall()
    return [
        MessageHit(
            channel_id=row["channel_id"],
            channel_name=row["channel_name"] or row["channel_id"],
            ts=row["ts"],
            thread_ts=row["thread_ts"],
            author=row["author"] or "someone",
            text=row["text"],
            at=row["message_at"],
            rank=float(row["rank"]),
        )
        for row in rows
    ]
