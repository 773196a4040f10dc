"""A question's journey, as the page shows it under the message: sent → queued → working
→ answered (or retrying, failed), read from Heron's own events table."""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from enum import StrEnum
from typing import Any

from psycopg_pool import AsyncConnectionPool

from heron.slack.events import Question
from heron.testing.slack import Channel, ChannelKind, Message
from heron.web.workspace.restore import query


class Stage(StrEnum):
    """Where a question is; the first four are the happy path, in order."""

    SENT = "sent"  # in the workspace; Heron has not queued it (yet)
    QUEUED = "queued"  # Heron took it in over Socket Mode and queued an event
    WORKING = "working"  # a worker holds the event
    ANSWERED = "answered"  # the event completed: the reply is in the thread
    RETRYING = "retrying"  # an attempt failed; the queue tries again after a backoff
    FAILED = "failed"  # out of retries (replayable from the dashboard or the CLI)


@dataclass(frozen=True, slots=True)
class Journey:
    stage: Stage
    event_id: int | None = None
    attempts: int = 0
    error: str | None = None

    def to_json(self) -> dict[str, Any]:
        return {
            "stage": self.stage.value,
            "event_id": self.event_id,
            "attempts": self.attempts,
            "error": self.error,
        }


def question_key(channel_id: str, ts: str) -> str:
    """The queue's dedupe key for the question asked by this message."""
    return Question(channel_id, ts, ts, "", "", "mention").dedupe_key


def is_question(message: Message, channel: Channel, bot_user_id: str) -> bool:
    """What Heron treats as a question: a person's message in a DM with it, or one that
    mentions it (see heron.slack.events)."""
    if message.get("bot_id") or message.get("subtype") not in (None, "thread_broadcast"):
        return False
    if not message.get("user") or message.get("user") == bot_user_id:
        return False
    return channel.kind is ChannelKind.IM or f"<@{bot_user_id}>" in str(message.get("text", ""))


def journey(row: Mapping[str, Any] | None) -> Journey:
    """The stage an events row (or its absence) stands for."""
    if row is None:
        return Journey(Stage.SENT)
    status, event_id = row["status"], int(row["id"])
    attempts = int(row["attempts"] or 0)
    error = _first_line(row.get("error_message"))
    if status == "completed":
        return Journey(Stage.ANSWERED, event_id, attempts)
    if status == "failed":
        return Journey(Stage.FAILED, event_id, attempts, error)
    if status == "processing":
        return Journey(Stage.WORKING, event_id, attempts)
    if int(row["retry_count"] or 0) > 0:
        return Journey(Stage.RETRYING, event_id, attempts, error)
    return Journey(Stage.QUEUED, event_id, attempts)


async def question_events(
    pool: AsyncConnectionPool[Any], keys: Iterable[str]
) -> dict[str, dict[str, Any]]:
    """The events rows of these questions, by dedupe key (a question not queued is absent)."""
    wanted = list(dict.fromkeys(keys))
    if not wanted:
        return {}
    async with pool.connection() as conn:
        cursor = await conn.execute(query("question_events"), {"keys": wanted})
        return {row["dedupe_key"]: dict(row) for row in await cursor.fetchall()}


def _first_line(text: Any) -> str | None:
    if not text:
        return None
    line = str(text).strip().splitlines()[0] if str(text).strip() else ""
    return line[:300] or None
