"""Conversation memory: the thread (and a DM's recent messages) from the archive, newest
first, cut to a token budget; Slack's conversations.replies when the archive lacks it."""

from __future__ import annotations

from collections.abc import Sequence
from datetime import UTC, datetime
from typing import Any

from psycopg_pool import AsyncConnectionPool
from slack_sdk.web.async_client import AsyncWebClient

from heron.agent.prompts import PromptMessage
from heron.database.named_sql import NamedQueries

query = NamedQueries("heron.agent.sql", "memory.sql")

DM_HOURS = 24
MAX_MESSAGES = 200


def estimate_tokens(text: str) -> int:
    """About four characters a token, plus the per-message framing: good enough to budget."""
    return len(text) // 4 + 8


def within_budget(newest_first: Sequence[PromptMessage], budget: int) -> list[PromptMessage]:
    """The newest messages that fit in `budget` tokens, returned oldest first."""
    kept: list[PromptMessage] = []
    spent = 0
    for message in newest_first:
        cost = estimate_tokens(message.text) + estimate_tokens(message.author)
        if spent + cost > budget:
            break
        kept.append(message)
        spent += cost
    return kept[::-1]


class Memory:
    """Reads what came before a question; `client` is only for the archive's blind spots."""

    def __init__(
        self,
        pool: AsyncConnectionPool[Any],
        client: AsyncWebClient | None,
        *,
        bot_user_id: str | None,
        bot_name: str,
    ) -> None:
        self.pool = pool
        self.client = client
        self.bot_user_id = bot_user_id
        self.bot_name = bot_name

    async def history(self, question: dict[str, Any], budget: int) -> list[PromptMessage]:
        """The thread before `question` (or a DM's last day), within `budget` tokens."""
        channel, ts = str(question["channel"]), str(question["ts"])
        thread_ts = str(question.get("thread_ts") or ts)
        if thread_ts != ts:
            rows = await self._rows(
                "thread", channel_id=channel, thread_ts=thread_ts, exclude_ts=ts, limit=MAX_MESSAGES
            )
            if not await self._archived(channel, thread_ts):
                rows = await self._from_slack(channel, thread_ts, exclude_ts=ts)
        elif question.get("kind") == "dm":
            rows = await self._rows(
                "recent", channel_id=channel, hours=DM_HOURS, exclude_ts=ts, limit=MAX_MESSAGES
            )
        else:
            rows = []
        return within_budget([self._message(row) for row in rows], budget)

    async def _rows(self, name: str, **params: Any) -> list[dict[str, Any]]:
        async with self.pool.connection() as conn:
            return list(await (await conn.execute(query(name), params)).fetchall())

    async def _archived(self, channel: str, ts: str) -> bool:
        return bool(await self._rows("has_message", channel_id=channel, ts=ts))

    async def _from_slack(
        self, channel: str, thread_ts: str, *, exclude_ts: str
    ) -> list[dict[str, Any]]:
        """The thread as Slack has it (e.g. started before Heron joined), newest first."""
        if self.client is None:
            return []
        response = await self.client.conversations_replies(
            channel=channel, ts=thread_ts, limit=MAX_MESSAGES
        )
        rows = [
            {
                "ts": m["ts"],
                "text": m.get("text") or "",
                "message_at": datetime.fromtimestamp(float(m["ts"]), UTC),
                "user_id": m.get("user"),
                "bot_id": m.get("bot_id"),
                "author": m.get("user") or m.get("username") or "a bot",
            }
            for m in response.get("messages") or []
            if m.get("ts") != exclude_ts and m.get("text")
        ]
        return rows[::-1]

    def _message(self, row: dict[str, Any]) -> PromptMessage:
        mine = row.get("user_id") == self.bot_user_id and self.bot_user_id is not None
        return PromptMessage(
            author=self.bot_name if mine else str(row["author"]),
            text=str(row["text"]),
            time=row["message_at"],
        )
