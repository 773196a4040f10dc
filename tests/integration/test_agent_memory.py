"""Thread memory from the archive on real PostgreSQL, with Slack as the fallback."""

from __future__ import annotations

from collections.abc import AsyncIterator, Iterator
from typing import Any

import pytest
from slack_sdk.web.async_client import AsyncWebClient

from heron.agent.memory import Memory
from heron.queue.store import open_pool
from heron.slack.archive import Archive
from heron.slack.events import BotIdentity
from heron.testing.slack import SlackFake

BOT = BotIdentity(user_id="UBOT", bot_id="BBOT")
PARENT = "1764115200.000100"


@pytest.fixture
def fake() -> Iterator[SlackFake]:
    with SlackFake() as fake:
        yield fake


@pytest.fixture
async def archive(database_url: str) -> AsyncIterator[Archive]:
    pool = open_pool(database_url, max_size=4, name="test-memory")
    await pool.open()
    try:
        yield Archive(pool, BOT)
    finally:
        await pool.close()


def callback(event: dict[str, Any], event_id: str) -> dict[str, Any]:
    return {"type": "event_callback", "event_id": event_id, "event": event}


def message(ts: str, text: str, user: str = "U1", **extra: Any) -> dict[str, Any]:
    return {"type": "message", "channel": "C1", "channel_type": "channel", "user": user,
            "text": text, "ts": ts, "thread_ts": PARENT, **extra}  # fmt: skip


async def fill_thread(archive: Archive) -> None:
    await archive.take(callback({**message(PARENT, "how do we fail over?")}, "E0"))
    for n in range(1, 6):
        await archive.take(callback(message(f"1764115200.00020{n}", f"reply {n}"), f"E{n}"))
    await archive.take(callback(message("1764115200.000300", "ask the bot", user="UBOT"), "E6"))
    deleted = {"type": "message", "subtype": "message_deleted", "channel": "C1",
               "deleted_ts": "1764115200.000203"}  # fmt: skip
    await archive.take(callback(deleted, "E7"))


def question(ts: str, **extra: Any) -> dict[str, Any]:
    return {"channel": "C1", "ts": ts, "thread_ts": PARENT, "user": "U1", "kind": "mention",
            **extra}  # fmt: skip


async def test_the_thread_comes_oldest_first_without_deleted_messages_or_the_question(
    archive: Archive,
) -> None:
    await fill_thread(archive)
    memory = Memory(archive.pool, None, bot_user_id="UBOT", bot_name="heron")
    history = await memory.history(question("1764115200.000205"), budget=10_000)
    assert [m.text for m in history] == [
        "how do we fail over?", "reply 1", "reply 2", "reply 4", "ask the bot",
    ]  # fmt: skip
    assert history[-1].author == "heron"  # the bot's own words, under its name


async def test_a_small_budget_keeps_the_newest(archive: Archive) -> None:
    await fill_thread(archive)
    memory = Memory(archive.pool, None, bot_user_id="UBOT", bot_name="heron")
    history = await memory.history(question("1764115200.000205"), budget=40)
    assert [m.text for m in history] == ["reply 4", "ask the bot"]


async def test_a_thread_the_archive_lacks_comes_from_slack(
    archive: Archive, fake: SlackFake
) -> None:
    ada = fake.add_user("ada").id
    channel = fake.add_channel("eng", members=[ada]).id
    parent = fake.seed_message(channel, ada, "an old thread, from before Heron joined")
    fake.seed_message(channel, ada, "with a reply", thread_ts=parent["ts"])
    asked = fake.seed_message(channel, ada, "what was decided?", thread_ts=parent["ts"])
    client = AsyncWebClient(token=fake.bot_token, base_url=fake.api_url)
    try:
        memory = Memory(archive.pool, client, bot_user_id=fake.bot_user_id, bot_name="heron")
        history = await memory.history(
            {"channel": channel, "ts": asked["ts"], "thread_ts": parent["ts"], "user": ada},
            budget=10_000,
        )
    finally:
        if client.session is not None:
            await client.session.close()
    assert [m.text for m in history] == ["an old thread, from before Heron joined", "with a reply"]
