"""The local workspace end to end: `Runtime` with no Slack tokens starts the Slack fake,
connects to it over Socket Mode as to Slack, and serves the page and its API; questions
posted through the API are queued and answered (retrieval-only) in their thread."""

from __future__ import annotations

import asyncio
import json
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from typing import Any

import aiohttp
import pytest

from heron.database.connection import DatabaseConnection
from heron.runtime import Runtime
from heron.testing.anthropic import FakeAnthropic, text
from heron.testing.slack import SlackFake
from heron.web.workspace.seed import IDENTITY, STARTERS
from tests.conftest import eventually, make_config, rows

STARTER_MESSAGES = sum(1 + len(s.replies) for s in STARTERS)
QUESTIONS = "SELECT id, status, payload FROM events WHERE event_type = 'slack.question'"


@asynccontextmanager
async def heron(database_url: str, **settings: Any) -> AsyncIterator[Runtime]:
    """Heron as `heron run` starts it with no Slack tokens and no model key."""
    values: dict[str, Any] = {
        "heron_http_port": 0,
        "worker_pool_size": 2,
        "heron_embedding_provider": "hashing",
        "anthropic_api_key": None,
        "slack_bot_token": None,
        "slack_app_token": None,
        "slack_signing_secret": None,
    }
    config = make_config(database_url, **(values | settings))
    db = DatabaseConnection(database_url)
    runtime = Runtime(config, db)
    await runtime.start()
    try:
        yield runtime
    finally:
        await runtime.stop()
        db.dispose()


class Page:
    """What the browser does: the page's HTTP calls."""

    def __init__(self, runtime: Runtime, session: aiohttp.ClientSession) -> None:
        assert runtime.http is not None
        self.url = runtime.http.url
        self.session = session

    async def get(self, path: str) -> tuple[int, str]:
        async with self.session.get(self.url + path) as response:
            return response.status, await response.text()

    async def api(self, path: str) -> Any:
        status, body = await self.get(f"/workspace/api{path}")
        assert status == 200, body
        return json.loads(body)

    async def post(
        self, channel: str, text: str, thread_ts: str | None = None
    ) -> tuple[int, dict[str, Any]]:
        body: dict[str, Any] = {"text": text} | ({"thread_ts": thread_ts} if thread_ts else {})
        async with self.session.post(
            f"{self.url}/workspace/api/channels/{channel}/messages", json=body
        ) as response:
            return response.status, await response.json()

    async def channel_id(self, name: str) -> str:
        channels = (await self.api("/channels"))["channels"]
        return next(c["id"] for c in channels if c["name"] == name)


@pytest.fixture
async def session() -> AsyncIterator[aiohttp.ClientSession]:
    async with aiohttp.ClientSession() as session:
        yield session


async def archived(database_url: str, count: int) -> None:
    """Wait until Heron has archived `count` messages (what retrieval searches)."""
    await eventually(
        lambda: len(rows(database_url, "SELECT 1 FROM slack_messages")) >= count,
        what=f"{count} archived messages",
    )


async def test_the_page_the_banner_and_the_conversations(
    database_url: str, session: aiohttp.ClientSession
) -> None:
    async with heron(database_url) as runtime:
        page = Page(runtime, session)
        assert runtime.workspace is not None
        assert runtime.slack is not None  # the production SlackService, pointed at the fake
        for path in ("/", "/workspace"):
            status, html = await page.get(path)
            assert status == 200
            assert 'data-testid="banner"' in html
            assert "Local workspace</strong> — not connected to Slack" in html
            assert "SLACK_BOT_TOKEN" in html
        for name, marker in (("workspace.js", "EventSource"), ("workspace.css", ".banner")):
            status, text = await page.get(f"/workspace/static/{name}")
            assert status == 200
            assert marker in text
        assert (await page.get("/workspace/static/service.py"))[0] == 404  # listed files only

        channels = (await page.api("/channels"))["channels"]
        assert [(c["name"], c["kind"]) for c in channels] == [
            ("general", "channel"),
            ("engineering", "channel"),
            ("heron", "dm"),
        ]
        assert all(c["with_bot"] for c in channels)
        info = await page.api("/workspace")
        assert info["me"]["name"] == "you"
        assert info["bot"] == {
            "id": IDENTITY.bot_user_id,
            "name": "heron",
            "real_name": "Heron",
            "is_bot": True,
        }
        # Heron reached the fake as it reaches Slack: auth.test, then Socket Mode.
        fake = runtime.workspace.fake
        assert fake.calls[0].method == "auth.test"
        assert fake.calls_to("apps.connections.open")
        assert fake.connected == 1
        status, ready = await page.get("/readyz")
        assert status == 200
        assert json.loads(ready)["checks"]["slack"] is True


async def test_a_question_is_queued_and_answered_once_in_its_thread(
    database_url: str, session: aiohttp.ClientSession
) -> None:
    async with heron(database_url) as runtime:
        page = Page(runtime, session)
        await archived(database_url, STARTER_MESSAGES)
        engineering = await page.channel_id("engineering")

        status, posted = await page.post(engineering, "@heron how do I deploy?")
        assert status == 201
        question = posted["message"]
        assert question["text"] == f"<@{IDENTITY.bot_user_id}> how do I deploy?"
        assert question["author"]["name"] == "you"
        assert question["question"]["stage"] in ("sent", "queued", "working", "answered")

        await eventually(
            lambda: [r["status"] for r in rows(database_url, QUESTIONS)] == ["completed"],
            what="the question answered",
        )
        thread_path = f"/channels/{engineering}/threads/{question['ts']}"
        thread = await page.api(thread_path)
        (event,) = rows(database_url, QUESTIONS)
        assert event["payload"]["channel"] == engineering
        assert event["payload"]["ts"] == question["ts"]
        assert event["payload"]["kind"] == "mention"

        (reply,) = thread["replies"]
        assert reply["is_bot"]
        assert reply["author"]["name"] == "heron"
        assert "No model is configured" in reply["text"]
        assert "make deploy ENV=staging" in reply["text"]  # found in the workspace's history
        assert thread["parent"]["question"] == {
            "stage": "answered",
            "event_id": event["id"],
            "attempts": 1,
            "error": None,
        }
        assert [r["name"] for r in thread["parent"]["reactions"]] == ["white_check_mark"]

        listed = (await page.api(f"/channels/{engineering}/messages"))["messages"]
        (shown,) = [m for m in listed if m["ts"] == question["ts"]]
        assert shown["reply_count"] == 1
        assert shown["question"]["stage"] == "answered"
        assert all(not m["is_bot"] for m in listed)  # the answer is in the thread only
        assert len(rows(database_url, QUESTIONS)) == 1
        assert len((await page.api(thread_path))["replies"]) == 1


async def test_a_direct_message_is_a_question_without_a_mention(
    database_url: str, session: aiohttp.ClientSession
) -> None:
    async with heron(database_url) as runtime:
        page = Page(runtime, session)
        dm = await page.channel_id("heron")
        status, posted = await page.post(dm, "when is the staging database upgrade?")
        assert status == 201
        ts = posted["message"]["ts"]
        await eventually(
            lambda: [r["status"] for r in rows(database_url, QUESTIONS)] == ["completed"],
            what="the DM answered",
        )
        thread = await page.api(f"/channels/{dm}/threads/{ts}")
        assert len(thread["replies"]) == 1
        assert rows(database_url, QUESTIONS)[0]["payload"]["kind"] == "dm"


async def test_with_a_model_the_streamed_answer_is_shown_whole(
    database_url: str, session: aiohttp.ClientSession
) -> None:
    answer = " ".join(["Merge to `main`, then run **make deploy ENV=staging**."] * 8)
    with FakeAnthropic() as claude:
        claude.script(text(answer))
        model = {
            "anthropic_api_key": claude.api_key,
            "anthropic_base_url": claude.base_url,
            "heron_model": "anthropic:claude-sonnet-4-6",
            "heron_model_retries": 0,
        }
        async with heron(database_url, **model) as runtime:
            page = Page(runtime, session)
            dm = await page.channel_id("heron")
            _, posted = await page.post(dm, "how do I deploy?")
            await eventually(
                lambda: [r["status"] for r in rows(database_url, QUESTIONS)] == ["completed"],
                30,
                "the model's answer",
            )
            thread = await page.api(f"/channels/{dm}/threads/{posted['message']['ts']}")
            assert runtime.workspace is not None
            assert runtime.workspace.fake.calls_to("chat.appendStream")  # it was streamed
    (reply,) = thread["replies"]
    assert reply["text"] == answer


async def test_threads_are_listed_and_a_reply_stays_in_its_thread(
    database_url: str, session: aiohttp.ClientSession
) -> None:
    async with heron(database_url) as runtime:
        page = Page(runtime, session)
        engineering = await page.channel_id("engineering")
        messages = (await page.api(f"/channels/{engineering}/messages"))["messages"]
        (deploy,) = [m for m in messages if m["reply_count"]]
        assert deploy["reply_count"] == 2
        assert deploy["author"]["real_name"] == "Maya Chen"
        assert [m["ts"] for m in messages] == sorted(m["ts"] for m in messages)
        thread = await page.api(f"/channels/{engineering}/threads/{deploy['ts']}")
        assert thread["parent"]["ts"] == deploy["ts"]
        assert [r["author"]["name"] for r in thread["replies"]] == ["sam", "maya"]

        status, posted = await page.post(engineering, "thanks, and @sam too", deploy["ts"])
        assert status == 201
        assert posted["message"]["text"] == "thanks, and <@U0LOCALSAM1> too"
        assert posted["message"]["question"] is None  # no @heron: not a question
        thread = await page.api(f"/channels/{engineering}/threads/{deploy['ts']}")
        assert thread["replies"][-1]["ts"] == posted["message"]["ts"]
        listed = (await page.api(f"/channels/{engineering}/messages"))["messages"]
        assert posted["message"]["ts"] not in [m["ts"] for m in listed]
        await archived(database_url, STARTER_MESSAGES + 1)
        assert rows(database_url, QUESTIONS) == []


async def test_requests_the_page_should_not_make_are_refused(
    database_url: str, session: aiohttp.ClientSession
) -> None:
    async with heron(database_url) as runtime:
        page = Page(runtime, session)
        general = await page.channel_id("general")
        assert (await page.post(general, "   "))[0] == 400
        assert (await page.post("C999", "hello"))[0] == 404
        assert (await page.post(general, "hi", thread_ts="1.000001"))[0] == 404
        url = f"{page.url}/workspace/api/channels/{general}/messages"
        # A form post (what another site could make the browser send) is refused.
        async with session.post(url, data={"text": "hello"}) as response:
            assert response.status == 415
        status, _ = await page.get(f"/workspace/api/channels/{general}/threads/1.000001")
        assert status == 404
        messages = (await page.api(f"/channels/{general}/messages"))["messages"]
        assert len(messages) == sum(1 for s in STARTERS if s.channel == "general")


async def test_the_feed_announces_the_answer_and_ends_when_heron_stops(
    database_url: str, session: aiohttp.ClientSession
) -> None:
    versions = asyncio.Queue[str]()

    async def read(feed: aiohttp.ClientResponse) -> None:
        async for line in feed.content:
            if line.startswith(b"data: "):
                await versions.put(json.loads(line[6:])["version"])

    async with heron(database_url) as runtime:
        assert runtime.workspace is not None
        assert runtime.workspace.conversations is not None
        conversations = runtime.workspace.conversations
        page = Page(runtime, session)
        dm = await page.channel_id("heron")
        feed = await session.get(f"{page.url}/workspace/api/feed")
        assert feed.headers["Content-Type"].startswith("text/event-stream")
        reader = asyncio.create_task(read(feed))
        seen = [await asyncio.wait_for(versions.get(), 5)]
        await page.post(dm, "how do I roll back?")
        await eventually(
            lambda: [r["status"] for r in rows(database_url, QUESTIONS)] == ["completed"]
        )
        answered = await conversations.version()
        while seen[-1] != answered:  # every change is announced, the answer's too
            seen.append(await asyncio.wait_for(versions.get(), 5))
        assert len(set(seen)) == len(seen) >= 2
    # Heron stopped with the feed open: the feed ended, or the HTTP server would still wait.
    await asyncio.wait_for(reader, 5)
    feed.close()


async def test_a_restart_shows_the_same_conversations_and_sends_no_history_twice(
    database_url: str, session: aiohttp.ClientSession
) -> None:
    async with heron(database_url) as runtime:
        page = Page(runtime, session)
        engineering = await page.channel_id("engineering")
        _, posted = await page.post(engineering, "@heron how do I deploy?")
        await eventually(
            lambda: [r["status"] for r in rows(database_url, QUESTIONS)] == ["completed"]
        )
        before = (await page.api(f"/channels/{engineering}/messages"))["messages"]
        thread = await page.api(f"/channels/{engineering}/threads/{posted['message']['ts']}")
        await archived(database_url, STARTER_MESSAGES + 2)
    async with heron(database_url) as runtime:
        page = Page(runtime, session)
        after = (await page.api(f"/channels/{engineering}/messages"))["messages"]
        assert [(m["ts"], m["text"], m["reply_count"]) for m in after] == [
            (m["ts"], m["text"], m["reply_count"]) for m in before
        ]
        again = await page.api(f"/channels/{engineering}/threads/{posted['message']['ts']}")
        assert again["replies"][0]["text"] == thread["replies"][0]["text"]
        assert again["parent"]["question"]["stage"] == "answered"
        assert runtime.workspace is not None
        assert runtime.workspace.fake.deliveries == []  # nothing was sent to Heron again
    assert len(rows(database_url, "SELECT 1 FROM slack_messages")) == STARTER_MESSAGES + 2


async def test_with_slack_configured_there_is_no_local_workspace(
    database_url: str, session: aiohttp.ClientSession
) -> None:
    with SlackFake() as fake:
        settings = {
            "slack_bot_token": fake.bot_token,
            "slack_app_token": fake.app_token,
            "slack_api_url": fake.api_url,
        }
        async with heron(database_url, **settings) as runtime:
            page = Page(runtime, session)
            assert runtime.workspace is None
            for path in ("/", "/workspace", "/workspace/api/channels", "/workspace/api/feed"):
                assert (await page.get(path))[0] == 404, path


async def test_turned_off_there_is_no_local_workspace(database_url: str) -> None:
    async with heron(database_url, heron_local_workspace="off") as runtime:
        assert runtime.workspace is None
        assert runtime.slack is None
