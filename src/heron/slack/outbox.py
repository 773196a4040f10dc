"""Replies posted exactly once, whatever crashes in between.

Each part of an answer is written to slack_replies before it is posted, and the attempt
is counted (committed) before the HTTP call. A part with attempts but no message_ts may
have reached Slack before its poster died; so before posting it again, the thread is read
(conversations.replies with metadata) and a message carrying this event's metadata is
adopted instead. A streamed reply gets that metadata only when it stops, so a stream
whose start went unanswered is found as the bot's one message in the thread that no
reply is recorded as. A session advisory lock per event keeps two deliverers (a worker
whose lease ran out and the one that took over) from posting side by side; PostgreSQL
drops it with the connection of a killed process.
"""

from __future__ import annotations

import contextlib
from collections.abc import AsyncIterator, Awaitable, Sequence
from contextlib import asynccontextmanager
from dataclasses import dataclass
from typing import Any

import structlog
from psycopg_pool import AsyncConnectionPool
from slack_sdk.errors import SlackApiError
from slack_sdk.web.async_client import AsyncWebClient

from heron.database.named_sql import NamedQueries
from heron.slack.formatting import markdown_to_mrkdwn, split_message

log = structlog.get_logger(__name__)
query = NamedQueries("heron.slack.sql", "outbox.sql")

METADATA_EVENT_TYPE = "heron_reply"
_LOCK_NAMESPACE = 0x48524E31  # "HRN1": outbox locks, keyed by event id
_REPLIES_PAGE = 200
# Slack's answers for a stream that has ended (streams expire after a few minutes).
_STREAM_GONE = {"message_not_in_streaming_state", "streaming_state_conflict", "message_not_found"}


@dataclass(frozen=True, slots=True)
class Delivery:
    """What deliver() did: the posted message ts per part, and how many were adopted."""

    message_ts: list[str]
    posted: int
    adopted: int


class Outbox:
    """Delivers answers through slack_replies; `client` must not retry 5xx by itself
    (see heron.slack.client.retry_handlers), the outbox does it safely. `bot_user_id`
    (the bot's Slack user) lets it find a stream whose start went unanswered."""

    def __init__(
        self,
        pool: AsyncConnectionPool[Any],
        client: AsyncWebClient,
        *,
        bot_user_id: str | None = None,
    ) -> None:
        self.pool = pool
        self.client = client
        self.bot_user_id = bot_user_id

    async def stored(self, event_id: int) -> bool:
        """True once an answer for this event is in the outbox (a retry must not re-ask
        the model: it delivers what is stored)."""
        async with self.pool.connection() as conn:
            cursor = await conn.execute(query("has_answer"), {"event_id": event_id})
            return await cursor.fetchone() is not None

    async def deliver(
        self, event_id: int, channel_id: str, thread_ts: str | None, markdown: str | None
    ) -> Delivery:
        """Post the answer (Markdown) in the thread unless it already is; `markdown=None`
        delivers what an earlier attempt stored."""
        texts = [] if markdown is None else split_message(markdown_to_mrkdwn(markdown))
        async with self._locked(event_id) as conn:
            async with conn.pipeline():  # one round trip for both
                if texts:
                    params = {
                        "event_id": event_id,
                        "channel_id": channel_id,
                        "thread_ts": thread_ts,
                        "texts": texts,
                    }
                    await conn.execute(query("store"), params)
                cursor = await conn.execute(query("parts"), {"event_id": event_id})
            return await self._post_parts(conn, event_id, await cursor.fetchall())

    @asynccontextmanager
    async def _locked(self, event_id: int) -> AsyncIterator[Any]:
        """A connection holding this event's outbox lock (see the module docstring)."""
        key = {"namespace": _LOCK_NAMESPACE, "key": event_id % 2**31}
        async with self.pool.connection() as conn:
            await conn.execute(query("lock"), key)
            try:
                yield conn
            finally:
                await conn.execute(query("unlock"), key)

    async def _post_parts(self, conn: Any, event_id: int, parts: Sequence[Any]) -> Delivery:
        found: dict[int, str] | None = None
        strays: list[str] = []
        posted = adopted = 0
        done: list[str] = []
        for part in parts:
            ts = part["message_ts"]
            if part["complete"]:
                done.append(ts)
                continue
            if ts is not None and part["streaming"]:
                # A streamed message holds a partial (or no) answer: it becomes the answer.
                await self._replace(part, ts, event_id)
                posted += 1
            elif ts is None and part["post_attempts"] > 0:
                if found is None:
                    found, strays = await self._find_posted(
                        part["channel_id"], part["thread_ts"], event_id
                    )
                ts = found.get(part["part"])
                if ts is not None:
                    adopted += 1
                    log.info(
                        "reply adopted after an interrupted post",
                        event_id=event_id,
                        part=part["part"],
                        message_ts=ts,
                    )
                elif part["streaming"]:
                    ts = await self._unrecorded(conn, part["channel_id"], strays)
                    if ts is not None:  # an earlier attempt started it, never heard back
                        log.info("stream adopted after its start went unanswered", ts=ts)
                        await self._replace(part, ts, event_id)
                        posted += 1
            if ts is None:
                await conn.execute(query("attempt"), {"event_id": event_id, "part": part["part"]})
                ts = await self._post(part, event_id)
                posted += 1
            params = {"event_id": event_id, "part": part["part"], "message_ts": ts}
            await conn.execute(query("posted"), params)
            done.append(ts)
        return Delivery(done, posted, adopted)

    # -- streaming --------------------------------------------------------------------------

    async def open_stream(
        self, event_id: int, channel_id: str, thread_ts: str, *, user_id: str, team_id: str | None
    ) -> str | None:
        """Start a streamed reply (Slack's chat.startStream) and record its ts; or None
        when this event's reply is already on its way by other means: posted, or a
        stream a previous attempt started (or may have: its answer can be lost). That
        one holds the broken-off text of the earlier answer, so it is not appended to:
        deliver() rewrites it whole, or posts the answer if there is none."""
        async with self._locked(event_id) as conn:
            params = {"event_id": event_id, "channel_id": channel_id, "thread_ts": thread_ts}
            opened = await (await conn.execute(query("open_stream"), params)).fetchone()
            parts = await (await conn.execute(query("parts"), {"event_id": event_id})).fetchall()
            first = parts[0]
            if first["complete"] or not first["streaming"] or first["text"]:
                return None
            if opened is None:  # an earlier attempt started a stream, or may have
                return None
            response = await self.client.chat_startStream(
                channel=channel_id,
                thread_ts=thread_ts,
                recipient_user_id=user_id,
                recipient_team_id=team_id,
            )
            ts = str(response["ts"])
            started = {"event_id": event_id, "part": 0, "message_ts": ts}
            await conn.execute(query("started"), started)
            return ts

    async def append(self, channel_id: str, ts: str, markdown: str) -> bool:
        """Add text to an open stream; False once Slack has closed it (they expire)."""
        return await _while_open(
            self.client.chat_appendStream(channel=channel_id, ts=ts, markdown_text=markdown)
        )

    async def show(self, event_id: int, channel_id: str, ts: str, markdown: str) -> bool:
        """The fallback when a stream expired: rewrite the message with the text so far.

        False, and nothing written, once the reply is complete: then another worker
        delivered it (this one outlived its lease), and the text so far would overwrite
        the whole answer."""
        async with self._locked(event_id) as conn:
            cursor = await conn.execute(query("parts"), {"event_id": event_id})
            first = await cursor.fetchone()
            if first is not None and first["complete"]:
                return False
            await self.client.chat_update(
                channel=channel_id, ts=ts, text=split_message(markdown_to_mrkdwn(markdown))[0]
            )
        return True

    async def finish_stream(
        self, event_id: int, channel_id: str, thread_ts: str, ts: str, markdown: str, *, live: bool
    ) -> Delivery:
        """Close the stream with its metadata when it holds the whole answer; otherwise
        the message is rewritten (chat.update) and further parts are posted."""
        texts = split_message(markdown_to_mrkdwn(markdown))
        if live and len(texts) == 1:
            async with self._locked(event_id) as conn:
                params = {
                    "event_id": event_id,
                    "channel_id": channel_id,
                    "thread_ts": thread_ts,
                    "texts": texts,
                }
                await conn.execute(query("store"), params)
                stop = self.client.chat_stopStream(
                    channel=channel_id, ts=ts, metadata=_metadata(event_id, 0)
                )
                if await _while_open(stop):
                    done = {"event_id": event_id, "part": 0, "message_ts": ts}
                    await conn.execute(query("posted"), done)
                    return Delivery([ts], 1, 0)
        return await self.deliver(event_id, channel_id, thread_ts, markdown)

    async def _replace(self, part: Any, ts: str, event_id: int) -> None:
        with contextlib.suppress(SlackApiError):  # close it if Slack has not already
            await self.client.chat_stopStream(channel=part["channel_id"], ts=ts)
        await self.client.chat_update(
            channel=part["channel_id"],
            ts=ts,
            text=part["text"],
            metadata=_metadata(event_id, part["part"]),
        )

    async def _post(self, part: Any, event_id: int) -> str:
        response = await self.client.chat_postMessage(
            channel=part["channel_id"],
            thread_ts=part["thread_ts"],
            text=part["text"],
            metadata=_metadata(event_id, part["part"]),
            unfurl_links=False,
            unfurl_media=False,
        )
        return str(response["ts"])

    async def _find_posted(
        self, channel_id: str, thread_ts: str | None, event_id: int
    ) -> tuple[dict[int, str], list[str]]:
        """Parts of this event's answer already in the thread, {part: ts}; and the ts of
        the bot's messages there without reply metadata: streams not stopped yet (a
        stopped one has its metadata), oldest first."""
        if thread_ts is None:
            return {}, []
        found: dict[int, str] = {}
        strays: list[str] = []
        cursor: str | None = None
        while True:
            page = await self.client.conversations_replies(
                channel=channel_id,
                ts=thread_ts,
                include_all_metadata=True,
                limit=_REPLIES_PAGE,
                cursor=cursor,
            )
            for message in page.get("messages") or []:
                part = reply_part(message, event_id)
                if part is not None:
                    found.setdefault(part, str(message["ts"]))
                elif self._stray(message, thread_ts):
                    strays.append(str(message["ts"]))
            cursor = (page.get("response_metadata") or {}).get("next_cursor") or None
            if not cursor:
                return found, strays

    def _stray(self, message: dict[str, Any], thread_ts: str) -> bool:
        """A message of this bot in the thread, not its root, that is no reply."""
        metadata = message.get("metadata")
        is_reply = isinstance(metadata, dict) and metadata.get("event_type") == METADATA_EVENT_TYPE
        return (
            self.bot_user_id is not None
            and message.get("user") == self.bot_user_id
            and message.get("ts") != thread_ts
            and not is_reply
        )

    async def _unrecorded(self, conn: Any, channel_id: str, strays: list[str]) -> str | None:
        """The oldest of the bot's stray messages that no event's reply is recorded as:
        the stream an attempt started without hearing back (Slack's answer lost, or the
        worker killed before it recorded the ts)."""
        if not strays:
            return None
        params = {"channel_id": channel_id, "message_ts": strays}
        recorded = {
            row["message_ts"]
            for row in await (await conn.execute(query("recorded"), params)).fetchall()
        }
        return next((ts for ts in strays if ts not in recorded), None)


async def _while_open(call: Awaitable[Any]) -> bool:
    """Run a stream call; False when Slack had already ended the stream."""
    try:
        await call
    except SlackApiError as error:
        if error.response.get("error") in _STREAM_GONE:
            return False
        raise
    return True


def _metadata(event_id: int, part: int) -> dict[str, Any]:
    """Slack message metadata naming the event (how a retry recognises its reply)."""
    return {
        "event_type": METADATA_EVENT_TYPE,
        "event_payload": {"heron_event_id": event_id, "part": part},
    }


def reply_part(message: dict[str, Any], event_id: int) -> int | None:
    """The part number if this Slack message is part of the answer to `event_id`."""
    metadata = message.get("metadata")
    if not isinstance(metadata, dict) or metadata.get("event_type") != METADATA_EVENT_TYPE:
        return None
    payload = metadata.get("event_payload")
    if not isinstance(payload, dict) or str(payload.get("heron_event_id")) != str(event_id):
        return None
    part = payload.get("part")
    return part if isinstance(part, int) else None
