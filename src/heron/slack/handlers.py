"""Queue handlers for Slack work: answering questions and reading small text files."""

from __future__ import annotations

import contextlib
import time
from collections.abc import AsyncIterator, Awaitable, Callable
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
from heron.slack.outbox import Delivery, Outbox

log = structlog.get_logger(__name__)

# Answers a question payload (see heron.slack.events.Question.payload) in Markdown.
Responder = Callable[[dict[str, Any]], Awaitable[str]]
# A responder may also stream: `respond.stream(question)` yields the answer in pieces.
StreamingResponder = Callable[[dict[str, Any]], AsyncIterator[str]]

STREAM_CHUNK_CHARS = 120  # send to Slack when this much text is waiting...
STREAM_FLUSH_SECONDS = 0.4  # ...or this long has passed
NO_TEXT = "I have no answer to give to this."


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
        structlog.contextvars.bind_contextvars(slack_channel=channel, slack_ts=question["ts"])
        # Only a later claim of the event can find an answer stored by an earlier one.
        if event.attempts > 1 and await self.outbox.stored(event.id):
            delivery = await self.outbox.deliver(event.id, channel, thread_ts, None)
        else:
            await self._status(question, "is thinking…")
            stream = getattr(self.respond, "stream", None)
            if stream is not None:
                delivery = await self._streamed(event, question, stream)
            else:
                answer = await self._answer(event, question)
                delivery = await self.outbox.deliver(event.id, channel, thread_ts, answer)
        await self._react(question, DONE_REACTION)
        log.info(
            "question answered",
            thread_ts=thread_ts,
            parts=len(delivery.message_ts),
            adopted=delivery.adopted,
        )

    async def _answer(self, event: Event, question: dict[str, Any]) -> str:
        try:
            return await self.respond(question)
        except (ModelRefused, ModelUnavailable) as error:
            return self._apology_unless_retrying(event, error)

    def _apology_unless_retrying(self, event: Event, error: ModelRefused | ModelUnavailable) -> str:
        """Re-raise while the queue may still retry an unavailable model; otherwise log
        why and return the one message the asker gets instead of an answer."""
        if isinstance(error, ModelUnavailable):
            if event.retry_count < self.max_retries:
                raise error  # the retry rewrites a streamed message, if one was started
            log.error("model unavailable on the last attempt", error=str(error))
        else:
            log.error("model refused the question", error=str(error))
        return apology(event.id)

    async def _streamed(
        self, event: Event, question: dict[str, Any], stream: StreamingResponder
    ) -> Delivery:
        """Write the answer into a Slack stream as the model produces it; when the stream
        expires, keep the message current with chat.update. An answer complete within
        STREAM_FLUSH_SECONDS is simply posted."""
        channel, thread_ts = question["channel"], question.get("thread_ts") or question["ts"]
        pieces = stream(question).__aiter__()
        text, started = "", time.monotonic()
        try:
            async for delta in pieces:
                text += delta
                if (
                    len(text) >= STREAM_CHUNK_CHARS
                    or time.monotonic() - started >= STREAM_FLUSH_SECONDS
                ):
                    break
            else:
                return await self.outbox.deliver(event.id, channel, thread_ts, text or NO_TEXT)
            ts = await self.outbox.open_stream(
                event.id, channel, thread_ts, user_id=question["user"], team_id=question.get("team")
            )
            if ts is None:  # an earlier attempt's reply: rewritten whole by deliver()
                text += "".join([delta async for delta in pieces])
                return await self.outbox.deliver(event.id, channel, thread_ts, text or NO_TEXT)
            text, live = await self._write_stream(event.id, channel, ts, text, pieces)
        except (ModelRefused, ModelUnavailable) as error:
            # A started stream's message is rewritten with the apology (see Outbox.deliver).
            sorry = self._apology_unless_retrying(event, error)
            return await self.outbox.deliver(event.id, channel, thread_ts, sorry)
        return await self.outbox.finish_stream(
            event.id, channel, thread_ts, ts, text or NO_TEXT, live=live
        )

    async def _write_stream(
        self, event_id: int, channel: str, ts: str, text: str, pieces: AsyncIterator[str]
    ) -> tuple[str, bool]:
        """Append as the model writes, in chunks; (the whole text, still streaming?)."""
        live = await self.outbox.append(channel, ts, text)
        showing = True  # until another worker delivered the reply (see Outbox.show)
        pending, flushed = "", time.monotonic()
        async for delta in pieces:
            text += delta
            pending += delta
            now = time.monotonic()
            if len(pending) < STREAM_CHUNK_CHARS and now - flushed < STREAM_FLUSH_SECONDS:
                continue
            if live:
                live = await self.outbox.append(channel, ts, pending)
            if not live and showing:
                showing = await self.outbox.show(event_id, channel, ts, text)
            pending, flushed = "", now
        if live and pending:
            live = await self.outbox.append(channel, ts, pending)
        return text, live

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
