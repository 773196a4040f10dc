"""Queue handlers for Slack work: answering questions and reading small text files."""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from typing import Any
from urllib.parse import urlsplit

import aiohttp
import structlog

from heron.database.models import Event
from heron.errors import PermanentError
from heron.slack.archive import Archive, query
from heron.slack.events import MAX_TEXT_FILE_BYTES
from heron.slack.outbox import Outbox

log = structlog.get_logger(__name__)

# Answers a question payload (see heron.slack.events.Question.payload) in Markdown.
Responder = Callable[[dict[str, Any]], Awaitable[str]]


class QuestionHandler:
    """One answer per question: a retry after the answer was stored delivers the stored
    answer (the model is not asked twice); the outbox posts it exactly once."""

    def __init__(self, outbox: Outbox, respond: Responder) -> None:
        self.outbox = outbox
        self.respond = respond

    async def __call__(self, event: Event) -> None:
        question = event.payload
        channel, thread_ts = question["channel"], question.get("thread_ts") or question["ts"]
        answer = None if await self.outbox.stored(event.id) else await self.respond(question)
        delivery = await self.outbox.deliver(event.id, channel, thread_ts, answer)
        log.info(
            "question answered",
            event_id=event.id,
            channel=channel,
            thread_ts=thread_ts,
            parts=len(delivery.message_ts),
            adopted=delivery.adopted,
        )


class FileTextHandler:
    """Downloads a small text file a message shared and archives its content."""

    def __init__(self, archive: Archive, token: str, allowed_hosts: set[str]) -> None:
        self.archive = archive
        self.token = token
        self.allowed_hosts = allowed_hosts

    async def __call__(self, event: Event) -> None:
        payload = event.payload
        url = str(payload["url"])
        host = urlsplit(url).hostname or ""
        if host not in self.allowed_hosts:
            # Only Slack's own file hosts get the bot token.
            raise PermanentError(f"refusing to download a file from {host!r}")
        timeout = aiohttp.ClientTimeout(total=30)
        headers = {"Authorization": f"Bearer {self.token}"}
        async with (
            aiohttp.ClientSession(timeout=timeout) as session,
            session.get(url, headers=headers) as response,
        ):
            if response.status in (401, 403, 404, 410):
                raise PermanentError(f"file download refused: HTTP {response.status}")
            response.raise_for_status()
            data = await response.content.read(MAX_TEXT_FILE_BYTES + 1)
        if len(data) > MAX_TEXT_FILE_BYTES:
            raise PermanentError("file is larger than its metadata said")
        content = data.decode("utf-8", errors="replace").replace("\x00", "")
        params = {
            "channel_id": payload["channel"],
            "ts": payload["ts"],
            "file_id": payload["file_id"],
            "content": content,
        }
        async with self.archive.pool.connection() as conn:
            await conn.execute(query("file_text"), params)
