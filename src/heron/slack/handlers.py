"""Queue handlers for Slack work: answering questions and reading small text files."""

from __future__ import annotations

import contextlib
from collections.abc import Awaitable, Callable
from typing import Any
from urllib.parse import urlsplit

import aiohttp
import structlog
from slack_sdk.errors import SlackApiError
from slack_sdk.web.async_client import AsyncWebClient

from heron.database.models import Event
from heron.errors import ModelRefused, ModelUnavailable, PermanentError
from heron.slack.archive import Archive, query
from heron.slack.events import MAX_TEXT_FILE_BYTES
from heron.slack.outbox import Outbox

log = structlog.get_logger(__name__)

# Answers a question payload (see heron.slack.events.Question.payload) in Markdown.
Responder = Callable[[dict[str, Any]], Awaitable[str]]


class QuestionHandler:
    """One answer per question: a retry after the answer was stored delivers the stored
    answer (the model is not asked twice); the outbox posts it exactly once.

    A model that is unavailable fails the event so that the queue retries it with backoff;
    on the last attempt, or when retrying cannot help, the asker gets one short message
    with a reference instead of silence.
    """

    def __init__(
        self,
        outbox: Outbox,
        respond: Responder,
        *,
        max_retries: int,
        client: AsyncWebClient | None = None,
    ) -> None:
        self.outbox = outbox
        self.respond = respond
        self.max_retries = max_retries
        self.client = client

    async def __call__(self, event: Event) -> None:
        question = {**event.payload, "heron_event_id": event.id}
        channel, thread_ts = question["channel"], question.get("thread_ts") or question["ts"]
        answer = None
        if not await self.outbox.stored(event.id):
            await self._status(question, "is thinking…")
            answer = await self._answer(event, question)
        delivery = await self.outbox.deliver(event.id, channel, thread_ts, answer)
        await self._react(question, DONE_REACTION)
        log.info(
            "question answered",
            event_id=event.id,
            channel=channel,
            thread_ts=thread_ts,
            parts=len(delivery.message_ts),
            adopted=delivery.adopted,
        )

    async def _answer(self, event: Event, question: dict[str, Any]) -> str:
        try:
            return await self.respond(question)
        except ModelRefused as error:
            log.error("model refused the question", event_id=event.id, error=str(error))
            return apology(event.id)
        except ModelUnavailable as error:
            if event.retry_count < self.max_retries:
                raise
            log.error("model unavailable on the last attempt", event_id=event.id, error=str(error))
            return apology(event.id)

    async def _status(self, question: dict[str, Any], status: str) -> None:
        """The assistant pane's "thinking" line (DMs only; Slack refuses it elsewhere)."""
        if self.client is None or question.get("kind") != "dm":
            return
        thread_ts = question.get("thread_ts") or question["ts"]
        with contextlib.suppress(SlackApiError, aiohttp.ClientError):
            await self.client.assistant_threads_setStatus(
                channel_id=question["channel"], thread_ts=thread_ts, status=status
            )

    async def _react(self, question: dict[str, Any], name: str) -> None:
        if self.client is None:
            return
        with contextlib.suppress(SlackApiError, aiohttp.ClientError):  # e.g. already_reacted
            await self.client.reactions_add(
                channel=question["channel"], timestamp=question["ts"], name=name
            )


DONE_REACTION = "white_check_mark"


def apology(event_id: int) -> str:
    """The one message an asker gets when no answer could be made."""
    return (
        "Sorry, I could not answer this: the model I use is unavailable right now. "
        f"Please ask again in a while. (reference: event {event_id})"
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
