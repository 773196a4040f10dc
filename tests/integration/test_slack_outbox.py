"""The reply outbox against the Slack fake: one reply per event, whatever breaks between."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator, Iterator
from contextlib import asynccontextmanager

import aiohttp
import psycopg
import pytest
from slack_sdk.web.async_client import AsyncWebClient

from heron.queue.store import open_pool
from heron.slack.client import retry_handlers
from heron.slack.outbox import Outbox
from heron.testing.slack import SlackFake


@pytest.fixture
def fake() -> Iterator[SlackFake]:
    with SlackFake(echo_bot_messages=False) as fake:
        yield fake


@asynccontextmanager
async def outbox_on(
    database_url: str, fake: SlackFake, bot_user_id: str | None = None
) -> AsyncIterator[Outbox]:
    """An outbox posting to the fake as Heron does (no automatic retry of a post)."""
    pool = open_pool(database_url, max_size=4, name="test-outbox")
    await pool.open()
    client = AsyncWebClient(
        token=fake.bot_token, base_url=fake.api_url, retry_handlers=retry_handlers(idempotent=False)
    )
    try:
        yield Outbox(pool, client, bot_user_id=bot_user_id)
    finally:
        if client.session is not None:
            await client.session.close()
        await pool.close()


@pytest.fixture
async def outbox(database_url: str, fake: SlackFake) -> AsyncIterator[Outbox]:
    async with outbox_on(database_url, fake) as outbox:
        yield outbox


def an_event(database_url: str) -> int:
    with psycopg.connect(database_url) as conn:
        row = conn.execute(
            "INSERT INTO events (event_type) VALUES ('slack.question') RETURNING id"
        ).fetchone()
    assert row is not None
    return int(row[0])


def thread(fake: SlackFake) -> tuple[str, str]:
    ada = fake.add_user("ada").id
    channel = fake.add_channel("eng", members=[ada]).id
    question = fake.post_user_message(channel, ada, "how do I vacuum?")
    return channel, str(question["ts"])


async def test_an_answer_is_posted_once_even_when_delivered_twice(
    outbox: Outbox, fake: SlackFake, database_url: str
) -> None:
    channel, ts = thread(fake)
    event_id = an_event(database_url)
    first = await outbox.deliver(event_id, channel, ts, "**Yes**: `VACUUM` it.")
    again = await outbox.deliver(event_id, channel, ts, "a different answer from a retry")
    (reply,) = fake.bot_replies(channel, ts)
    assert reply["text"] == "*Yes*: `VACUUM` it."
    assert (first.posted, again.posted) == (1, 0)
    assert again.message_ts == first.message_ts
    assert await outbox.stored(event_id)


async def test_a_post_that_reached_slack_but_was_not_recorded_is_adopted(
    outbox: Outbox, fake: SlackFake, database_url: str
) -> None:
    channel, ts = thread(fake)
    event_id = an_event(database_url)
    await outbox.deliver(event_id, channel, ts, "the answer")
    # The state a worker killed between chat.postMessage and recording it leaves behind.
    with psycopg.connect(database_url) as conn:
        conn.execute(
            "UPDATE slack_replies SET message_ts = NULL, complete = false, post_attempts = 1"
        )
    retried = await outbox.deliver(event_id, channel, ts, None)
    assert (retried.posted, retried.adopted) == (0, 1)
    assert len(fake.bot_replies(channel, ts)) == 1
    assert fake.calls_to("conversations.replies")[-1]["include_all_metadata"] in (True, "true", "1")


async def test_a_dropped_post_is_looked_for_then_posted_once(
    outbox: Outbox, fake: SlackFake, database_url: str
) -> None:
    channel, ts = thread(fake)
    event_id = an_event(database_url)
    fake.drop_next("chat.postMessage")
    with pytest.raises(aiohttp.ClientError):
        await outbox.deliver(event_id, channel, ts, "the answer")
    assert fake.bot_replies(channel, ts) == []
    retried = await outbox.deliver(event_id, channel, ts, None)
    assert (retried.posted, retried.adopted) == (1, 0)
    assert len(fake.bot_replies(channel, ts)) == 1


async def test_rate_limited_posts_wait_and_succeed(
    outbox: Outbox, fake: SlackFake, database_url: str
) -> None:
    channel, ts = thread(fake)
    fake.fail_next("chat.postMessage", status=429, retry_after=1, times=2)
    delivery = await outbox.deliver(an_event(database_url), channel, ts, "patience")
    assert delivery.posted == 1
    assert len(fake.calls_to("chat.postMessage")) == 3
    assert len(fake.bot_replies(channel, ts)) == 1


async def test_concurrent_deliverers_post_once(
    outbox: Outbox, fake: SlackFake, database_url: str
) -> None:
    channel, ts = thread(fake)
    event_id = an_event(database_url)
    results = await asyncio.gather(
        *(outbox.deliver(event_id, channel, ts, f"answer {n}") for n in range(3))
    )
    assert sorted(r.posted for r in results) == [0, 0, 1]
    assert len(fake.bot_replies(channel, ts)) == 1


async def test_a_long_answer_is_split_in_order_and_code_blocks_stay_closed(
    outbox: Outbox, fake: SlackFake, database_url: str
) -> None:
    channel, ts = thread(fake)
    code = "\n".join(f"SELECT {n} FROM generate_series(1, 100) AS step_{n};" for n in range(300))
    answer = f"Here is the script:\n\n```sql\n{code}\n```\n\nRun it as a superuser."
    delivery = await outbox.deliver(an_event(database_url), channel, ts, answer)
    replies = fake.bot_replies(channel, ts)
    assert len(replies) == len(delivery.message_ts) >= 3
    assert [r["metadata"]["event_payload"]["part"] for r in replies] == list(range(len(replies)))
    assert all(len(r["text"]) <= 3_900 for r in replies)
    assert all(r["text"].count("```") % 2 == 0 for r in replies)
    assert replies[-1]["text"].endswith("Run it as a superuser.")


async def test_a_post_whose_answer_was_lost_is_adopted_on_retry(
    outbox: Outbox, fake: SlackFake, database_url: str
) -> None:
    channel, ts = thread(fake)
    event_id = an_event(database_url)
    fake.lose_response_next("chat.postMessage")  # Slack posts it; the answer never arrives
    with pytest.raises(aiohttp.ClientError):
        await outbox.deliver(event_id, channel, ts, "the answer")
    assert len(fake.bot_replies(channel, ts)) == 1
    retried = await outbox.deliver(event_id, channel, ts, None)
    assert (retried.posted, retried.adopted) == (0, 1)
    assert len(fake.bot_replies(channel, ts)) == 1
