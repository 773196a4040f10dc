"""Streamed answers when attempts overlap or break off (found by the chaos storm,
tests/chaos/storm.py): a retry's reply holds the new answer alone, not the broken-off
text followed by it; a stream whose start went unanswered becomes the reply instead of
staying next to a second one; and a worker that outlived its lease does not overwrite
the answer the worker that took over delivered."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator, Iterator
from dataclasses import replace
from typing import Any

import aiohttp
import psycopg
import pytest
from psycopg.rows import dict_row

from heron.database.models import Event
from heron.errors import ModelUnavailable
from heron.slack.handlers import QuestionHandler
from heron.slack.outbox import Outbox
from heron.testing.slack import SlackFake
from tests.integration.test_slack_outbox import outbox_on

ANSWER = " ".join(f"word{n}" for n in range(60))  # long enough to be streamed


class Answers:
    """A streaming responder; with `break_first` the first answer breaks off after some
    text (the model overloaded mid-answer, or the worker died), the next one is whole."""

    def __init__(self, *, break_first: bool) -> None:
        self.break_first = break_first
        self.calls = 0

    async def __call__(self, question: dict[str, Any]) -> str:
        return "".join([piece async for piece in self.stream(question)])

    async def stream(self, question: dict[str, Any]) -> AsyncIterator[str]:
        self.calls += 1
        words = ANSWER.split(" ")
        for n, word in enumerate(words):
            if self.break_first and self.calls == 1 and n == 40:
                raise ModelUnavailable("overloaded mid-answer")
            yield word if n == 0 else f" {word}"


@pytest.fixture
def fake() -> Iterator[SlackFake]:
    with SlackFake(echo_bot_messages=False) as fake:
        yield fake


@pytest.fixture
async def outbox(database_url: str, fake: SlackFake) -> AsyncIterator[Outbox]:
    """One that knows Heron's user: it looks for the streams Heron started."""
    async with outbox_on(database_url, fake, fake.bot_user_id) as outbox:
        yield outbox


def asked(database_url: str, fake: SlackFake) -> tuple[str, dict[str, Any], Event]:
    """Ada asks Heron in #eng; (channel, her message, its event, claimed once)."""
    ada = fake.add_user("ada").id
    channel = fake.add_channel("eng", members=[ada]).id
    question = fake.post_user_message(channel, ada, f"<@{fake.bot_user_id}> count for me")
    payload = {"channel": channel, "ts": question["ts"], "user": ada, "kind": "mention"}
    with psycopg.connect(database_url, row_factory=dict_row) as conn:
        row = conn.execute(
            "INSERT INTO events (event_type, payload, status, attempts) "
            "VALUES ('slack.question', %s, 'processing', 1) RETURNING *",
            (psycopg.types.json.Jsonb(payload),),
        ).fetchone()
    assert row is not None
    return channel, question, Event.from_row(row)


async def test_a_retry_rewrites_the_stream_a_broken_attempt_left(
    database_url: str, fake: SlackFake, outbox: Outbox
) -> None:
    channel, question, event = asked(database_url, fake)
    handler = QuestionHandler(outbox, Answers(break_first=True), max_retries=3)

    with pytest.raises(ModelUnavailable):
        await handler(event)
    (broken,) = fake.bot_replies(channel, question["ts"])
    assert broken["text"].startswith("word0")
    assert "word39" not in broken["text"]  # broken off

    await handler(replace(event, attempts=2, retry_count=1))
    (reply,) = fake.bot_replies(channel, question["ts"])
    assert reply["ts"] == broken["ts"]  # the same message, rewritten
    assert reply["text"] == ANSWER
    assert reply["metadata"]["event_payload"] == {"heron_event_id": event.id, "part": 0}
    assert len(fake.calls_to("chat.startStream")) == 1


async def test_a_stream_whose_start_went_unanswered_is_adopted_not_started_twice(
    database_url: str, fake: SlackFake, outbox: Outbox
) -> None:
    channel, question, event = asked(database_url, fake)
    handler = QuestionHandler(outbox, Answers(break_first=False), max_retries=3)
    fake.lose_response_next("chat.startStream")  # Slack starts it; the answer never arrives

    with pytest.raises(aiohttp.ClientError):
        await handler(event)
    (stray,) = fake.bot_replies(channel, question["ts"])  # an empty stream, no metadata
    await handler(replace(event, attempts=2, retry_count=1))
    (reply,) = fake.bot_replies(channel, question["ts"])
    assert reply["ts"] == stray["ts"]
    assert reply["text"] == ANSWER
    assert reply["metadata"]["event_payload"] == {"heron_event_id": event.id, "part": 0}
    assert len(fake.calls_to("chat.startStream")) == 1


class Stalls:
    """The first answer stalls halfway until `resume` is set (its worker outlives its
    lease), the next one is whole."""

    def __init__(self) -> None:
        self.calls = 0
        self.resume = asyncio.Event()

    async def __call__(self, question: dict[str, Any]) -> str:
        return "".join([piece async for piece in self.stream(question)])

    async def stream(self, question: dict[str, Any]) -> AsyncIterator[str]:
        self.calls += 1
        first = self.calls == 1
        for n, word in enumerate(ANSWER.split(" ")):
            if first and n == 30:
                await self.resume.wait()
            yield word if n == 0 else f" {word}"


async def test_a_worker_that_lost_its_lease_does_not_overwrite_the_answer(
    database_url: str, fake: SlackFake, outbox: Outbox
) -> None:
    channel, question, event = asked(database_url, fake)
    responder = Stalls()
    handler = QuestionHandler(outbox, responder, max_retries=3)

    stale = asyncio.create_task(handler(event))  # streams, then stalls past its lease
    await fake.wait_for_call_async("chat.appendStream", timeout=10)
    await handler(replace(event, attempts=2, retry_count=1))  # the one that took over
    (reply,) = fake.bot_replies(channel, question["ts"])
    assert reply["text"] == ANSWER
    responder.resume.set()
    await stale
    (reply,) = fake.bot_replies(channel, question["ts"])
    assert reply["text"] == ANSWER
