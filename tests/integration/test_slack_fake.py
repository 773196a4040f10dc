"""heron.testing.slack against the real slack_sdk and slack_bolt clients, over loopback.

Every test talks to the fake through a real client (WebClient, AsyncWebClient, the
aiohttp SocketModeClient, a Bolt AsyncApp, an aiohttp Events API receiver), so a fake
that answered the wrong shape would fail here, not later in Heron's tests.
"""

from __future__ import annotations

import asyncio
import json
import urllib.error
import urllib.request
import zipfile
from collections.abc import AsyncIterator, Awaitable, Callable, Iterator
from contextlib import asynccontextmanager
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import aiohttp
import pytest
from aiohttp import web
from slack_bolt.adapter.socket_mode.async_handler import AsyncSocketModeHandler
from slack_bolt.app.async_app import AsyncApp
from slack_sdk import WebClient
from slack_sdk.errors import SlackApiError
from slack_sdk.http_retry import FixedValueRetryIntervalCalculator
from slack_sdk.http_retry.builtin_async_handlers import (
    AsyncConnectionErrorRetryHandler,
    AsyncRateLimitErrorRetryHandler,
    AsyncServerErrorRetryHandler,
)
from slack_sdk.http_retry.builtin_handlers import (
    ConnectionErrorRetryHandler,
    RateLimitErrorRetryHandler,
    ServerErrorRetryHandler,
)
from slack_sdk.signature import SignatureVerifier
from slack_sdk.socket_mode.aiohttp import SocketModeClient
from slack_sdk.socket_mode.async_client import AsyncBaseSocketModeClient
from slack_sdk.socket_mode.request import SocketModeRequest
from slack_sdk.socket_mode.response import SocketModeResponse
from slack_sdk.web.async_client import AsyncWebClient

from heron.testing.slack import DeliveryMode, FileSpec, SlackFake, Transport

QUICK = FixedValueRetryIntervalCalculator(0.01)


@pytest.fixture
def fake() -> Iterator[SlackFake]:
    with SlackFake() as running:
        yield running


@dataclass
class World:
    fake: SlackFake
    alice: str
    bob: str
    eng: str  # public, bot is a member
    secret: str  # private, bot is a member
    lounge: str  # public, bot is not a member


@pytest.fixture
def world(fake: SlackFake) -> World:
    alice = fake.add_user("alice", real_name="Alice Liddell", tz="Europe/London").id
    bob = fake.add_user("bob").id
    eng = fake.add_channel("eng").id
    secret = fake.add_channel("secret", private=True, members=[alice]).id
    lounge = fake.add_channel("lounge", bot=False).id
    return World(fake, alice, bob, eng, secret, lounge)


def api_error(info: pytest.ExceptionInfo[SlackApiError]) -> str:
    return str(info.value.response["error"])


# -- Web API with the real clients ----------------------------------------------------------


def test_tokens_are_checked_like_slack(fake: SlackFake) -> None:
    client = WebClient(token=fake.bot_token, base_url=fake.api_url)
    assert client.auth_test()["user_id"] == fake.bot_user_id

    cases = [
        (WebClient(token="xoxb-wrong", base_url=fake.api_url), "auth.test", "invalid_auth"),
        (WebClient(base_url=fake.api_url), "auth.test", "not_authed"),
        (
            WebClient(token=fake.app_token, base_url=fake.api_url),
            "auth.test",
            "not_allowed_token_type",
        ),
        (client, "apps.connections.open", "not_allowed_token_type"),
        (client, "no.such.method", "unknown_method"),
    ]
    for caller, method, error in cases:
        with pytest.raises(SlackApiError) as info:
            caller.api_call(method)
        assert api_error(info) == error
    url = WebClient(base_url=fake.api_url).apps_connections_open(app_token=fake.app_token)["url"]
    assert url.startswith(f"ws://127.0.0.1:{fake.base_url.rsplit(':', 1)[1]}/link/?ticket=")
    assert [c.method for c in fake.calls][:2] == ["auth.test", "auth.test"]
    assert "token" not in fake.calls[-1].params


def test_raw_http_get_form_and_token_argument(fake: SlackFake) -> None:
    """Not only slack_sdk's shapes: GET with ?token=, and form POSTs with token=."""
    with urllib.request.urlopen(f"{fake.api_url}auth.test?token={fake.bot_token}") as response:
        assert json.loads(response.read())["user_id"] == fake.bot_user_id
    form = f"token={fake.bot_token}&channel=general&text=hi".encode()
    with urllib.request.urlopen(f"{fake.api_url}chat.postMessage", data=form) as response:
        assert json.loads(response.read())["error"] == "not_in_channel"
    with urllib.request.urlopen(f"{fake.api_url}conversations.info", data=b"token=x") as response:
        assert json.loads(response.read())["error"] == "invalid_auth"
    assert fake.calls_to("chat.postMessage") == [{"channel": "general", "text": "hi"}]


async def test_posting_threads_and_reading_them_back(world: World) -> None:
    fake = world.fake
    client = AsyncWebClient(token=fake.bot_token, base_url=fake.api_url)
    parent = await client.chat_postMessage(
        channel=world.eng,
        text="deploy done",
        metadata={"event_type": "heron_answer", "event_payload": {"event": 7}},
        blocks=[{"type": "section", "text": {"type": "mrkdwn", "text": "*deploy* done"}}],
        mrkdwn=True,
    )
    ts = parent["ts"]
    reply = await client.chat_postMessage(channel=world.eng, text="details", thread_ts=ts)
    broadcast = await client.chat_postMessage(
        channel=world.eng, text="also here", thread_ts=ts, reply_broadcast=True
    )
    # metadata as a JSON string, form-encoded, the way older callers send it
    form = await client.api_call(
        "chat.postMessage",
        data={
            "channel": world.eng,
            "text": "form",
            "metadata": json.dumps({"event_type": "x", "event_payload": {}}),
        },
    )
    assert form["message"]["metadata"]["event_type"] == "x"

    history = (await client.conversations_history(channel=world.eng))["messages"]
    assert [m["text"] for m in history] == ["form", "also here", "deploy done"]  # newest first
    top = history[-1]
    assert top["reply_count"] == 2
    assert top["latest_reply"] == broadcast["ts"]
    assert top["reply_users"] == [fake.bot_user_id]
    assert top["metadata"]["event_payload"] == {"event": 7}  # the app's own metadata
    replies = (await client.conversations_replies(channel=world.eng, ts=ts))["messages"]
    assert [m["ts"] for m in replies] == [ts, reply["ts"], broadcast["ts"]]
    assert replies[1]["parent_user_id"] == fake.bot_user_id
    assert [m["text"] for m in fake.bot_replies("#eng", ts)] == ["details", "also here"]

    with pytest.raises(SlackApiError) as info:
        await client.chat_postMessage(channel=world.eng, text="x" * 40_001)
    assert api_error(info) == "msg_too_long"
    with pytest.raises(SlackApiError) as info:
        await client.api_call("chat.postMessage", json={"channel": world.eng})
    assert api_error(info) == "no_text"


async def test_history_and_replies_page_like_slack(world: World) -> None:
    fake = world.fake
    seeded = fake.seed_history(world.eng, 25, with_threads=1, replies_per_thread=7)
    other_app = {"event_type": "other", "event_payload": {}}
    fake.seed_message(world.eng, world.alice, "with metadata", metadata=other_app)
    client = AsyncWebClient(token=fake.bot_token, base_url=fake.api_url)

    pages, cursor = [], None
    while True:
        page = await client.conversations_history(channel=world.eng, limit=10, cursor=cursor)
        pages.append([m["text"] for m in page["messages"]])
        cursor = page["response_metadata"]["next_cursor"]
        assert page["has_more"] is bool(cursor)
        if not cursor:
            break
    assert [len(p) for p in pages] == [10, 10, 6]
    texts = [t for p in pages for t in p]
    assert texts == ["with metadata", *(f"message {i}" for i in range(25, 0, -1))]
    newest = (await client.conversations_history(channel=world.eng, limit=1))["messages"][0]
    assert "metadata" not in newest  # another app's metadata needs include_all_metadata
    everything = await client.conversations_history(
        channel=world.eng, limit=1, include_all_metadata=True
    )
    assert everything["messages"][0]["metadata"] == other_app

    first, second = seeded[0]["ts"], seeded[8]["ts"]  # message 1 and message 2
    window = await client.conversations_history(channel=world.eng, oldest=first, latest=second)
    assert window["messages"] == []
    window = await client.conversations_history(
        channel=world.eng, oldest=first, latest=second, inclusive=True
    )
    assert [m["text"] for m in window["messages"]] == ["message 2", "message 1"]

    thread: list[str] = []
    cursor = None
    while True:
        page = await client.conversations_replies(
            channel=world.eng, ts=first, limit=3, cursor=cursor
        )
        assert page["messages"][0]["ts"] == first  # the parent heads every page
        thread.extend(m["text"] for m in page["messages"][1:])
        cursor = page["response_metadata"]["next_cursor"]
        if not cursor:
            break
    assert thread == [f"reply {j} to message 1" for j in range(1, 8)]
    with pytest.raises(SlackApiError) as info:
        await client.conversations_replies(channel=world.eng, ts="1.000001")
    assert api_error(info) == "thread_not_found"
    with pytest.raises(SlackApiError) as info:
        await client.conversations_history(channel=world.eng, cursor="bm9wZQ==")
    assert api_error(info) == "invalid_cursor"


def test_conversations_users_and_access(world: World) -> None:
    fake = world.fake
    hidden = fake.add_channel("hidden", private=True, members=[world.bob], bot=False).id
    old = fake.add_channel("old").id
    fake.workspace.update_channel(old, is_archived=True)
    dm = fake.open_dm(world.alice).id
    client = WebClient(token=fake.bot_token, base_url=fake.api_url)

    public = client.conversations_list()["channels"]
    assert {c["name"] for c in public} == {"general", "eng", "lounge", "old"}
    listed: list[str] = []
    cursor = None
    while True:
        page = client.conversations_list(
            types="public_channel,private_channel,im", exclude_archived=True, limit=2, cursor=cursor
        )
        listed.extend(c["id"] for c in page["channels"])
        cursor = page["response_metadata"]["next_cursor"]
        if not cursor:
            break
    assert set(listed) == {fake.channel("general").id, world.eng, world.lounge, world.secret, dm}
    assert hidden not in listed
    assert old not in listed

    info = client.conversations_info(channel=world.secret, include_num_members=True)["channel"]
    assert info["is_private"]
    assert info["is_member"]
    assert info["num_members"] == 2
    assert client.conversations_info(channel=dm)["channel"]["user"] == world.alice
    assert set(client.conversations_members(channel=world.eng)["members"]) == {
        world.alice,
        world.bob,
        fake.bot_user_id,
    }
    for method, channel, error in [
        ("conversations.info", hidden, "channel_not_found"),
        ("conversations.history", hidden, "channel_not_found"),
        ("conversations.history", world.lounge, "not_in_channel"),
        ("conversations.history", "C404", "channel_not_found"),
        ("chat.postMessage", world.lounge, "not_in_channel"),
    ]:
        with pytest.raises(SlackApiError) as raised:
            client.api_call(method, params={"channel": channel, "text": "hi"})
        assert api_error(raised) == error, method

    users: list[str] = []
    cursor = None
    while True:
        page = client.users_list(limit=2, cursor=cursor)
        users.extend(u["name"] for u in page["members"])
        cursor = page["response_metadata"]["next_cursor"]
        if not cursor:
            break
    assert users == ["heron", "alice", "bob"]
    alice = client.users_info(user=world.alice)["user"]
    assert (alice["real_name"], alice["tz"], alice["is_bot"]) == (
        "Alice Liddell",
        "Europe/London",
        False,
    )
    with pytest.raises(SlackApiError) as raised:
        client.users_info(user="U404")
    assert api_error(raised) == "user_not_found"


def test_edits_deletes_reactions_ephemerals_and_permalinks(world: World) -> None:
    fake = world.fake
    client = WebClient(token=fake.bot_token, base_url=fake.api_url)
    posted = client.chat_postMessage(channel=world.alice, text="hello")  # a user id: the DM
    dm = posted["channel"]
    assert dm == fake.open_dm(world.alice).id
    ts = posted["ts"]
    updated = client.chat_update(channel=dm, ts=ts, text="hello again")
    assert updated["message"]["edited"]["user"] == fake.bot_user_id
    assert fake.messages(dm)[0]["text"] == "hello again"

    client.reactions_add(channel=dm, timestamp=ts, name="eyes")
    with pytest.raises(SlackApiError) as info:
        client.reactions_add(channel=dm, timestamp=ts, name="eyes")
    assert api_error(info) == "already_reacted"
    assert fake.messages(dm)[0]["reactions"] == [
        {"name": "eyes", "users": [fake.bot_user_id], "count": 1}
    ]
    client.reactions_remove(channel=dm, timestamp=ts, name="eyes")
    assert "reactions" not in fake.messages(dm)[0]

    users_message = fake.seed_message(world.eng, world.alice, "mine")
    with pytest.raises(SlackApiError) as info:
        client.chat_update(channel=world.eng, ts=users_message["ts"], text="hijack")
    assert api_error(info) == "cant_update_message"
    link = client.chat_getPermalink(channel=world.eng, message_ts=users_message["ts"])
    assert link["permalink"].endswith(
        f"/archives/{world.eng}/p{users_message['ts'].replace('.', '')}"
    )

    client.chat_postEphemeral(channel=world.eng, user=world.bob, text="only you")
    assert fake.ephemerals[0]["user"] == world.bob
    with pytest.raises(SlackApiError) as info:
        client.chat_postEphemeral(channel=world.secret, user=world.bob, text="no")
    assert api_error(info) == "user_not_in_channel"

    client.chat_delete(channel=dm, ts=ts)
    assert fake.messages(dm) == []
    with pytest.raises(SlackApiError) as info:
        client.chat_delete(channel=dm, ts=ts)
    assert api_error(info) == "message_not_found"


async def test_streaming_grows_one_message_and_can_expire(world: World) -> None:
    fake = world.fake
    question = fake.seed_message(world.eng, world.alice, "<@U0FAKEBOT1> explain")
    client = AsyncWebClient(token=fake.bot_token, base_url=fake.api_url)

    stream = await client.chat_stream(
        channel=world.eng,
        thread_ts=question["ts"],
        recipient_team_id=fake.team_id,
        recipient_user_id=world.alice,
        buffer_size=1,
    )
    await stream.append(markdown_text="Postgres ")
    await stream.append(markdown_text="is the queue.")
    assert fake.bot_replies(world.eng, question["ts"])[0]["text"] == "Postgres is the queue."
    await stream.stop(markdown_text=" Done.")
    [answer] = fake.bot_replies(world.eng, question["ts"])
    assert answer["text"] == "Postgres is the queue. Done."
    assert [c.method for c in fake.calls].count("chat.appendStream") == 1

    fake.expire_streams(after_appends=1)
    started = await client.chat_startStream(
        channel=world.eng, thread_ts=question["ts"], markdown_text="Part"
    )
    await client.chat_appendStream(channel=world.eng, ts=started["ts"], markdown_text=" one")
    with pytest.raises(SlackApiError) as info:
        await client.chat_appendStream(channel=world.eng, ts=started["ts"], markdown_text=" two")
    assert api_error(info) == "message_not_in_streaming_state"
    # the fallback slack_sdk documents: finish the message with chat.update
    await client.chat_update(channel=world.eng, ts=started["ts"], text="Part one two")
    assert fake.bot_replies(world.eng, question["ts"])[1]["text"] == "Part one two"


async def test_assistant_status_and_files(world: World) -> None:
    fake = world.fake
    client = AsyncWebClient(token=fake.bot_token, base_url=fake.api_url)
    thread = fake.start_assistant_thread(world.alice)
    await client.assistant_threads_setStatus(
        channel_id=thread.channel_id, thread_ts=thread.thread_ts, status="is thinking..."
    )
    assert fake.statuses[0].status == "is thinking..."
    assert fake.statuses[0].thread_ts == thread.thread_ts

    shared = fake.post_user_message(
        world.eng, world.alice, "the log", files=[FileSpec("build.log", "line 1\nline 2\n")]
    )
    assert shared["subtype"] == "file_share"
    url = shared["files"][0]["url_private_download"]
    async with aiohttp.ClientSession() as session:
        headers = {"Authorization": f"Bearer {fake.bot_token}"}
        async with session.get(url, headers=headers) as response:
            assert await response.text() == "line 1\nline 2\n"
        async with session.get(url) as response:  # no token: Slack's sign-in page
            assert response.content_type == "text/html"


# -- scripted failures and retry handlers ---------------------------------------------------


def test_sync_client_retries_429_500_and_drops(fake: SlackFake) -> None:
    client = WebClient(
        token=fake.bot_token,
        base_url=fake.api_url,
        retry_handlers=[
            RateLimitErrorRetryHandler(max_retry_count=1),
            ServerErrorRetryHandler(max_retry_count=1, interval_calculator=QUICK),
            ConnectionErrorRetryHandler(max_retry_count=1, interval_calculator=QUICK),
        ],
    )
    # one fault per call: slack_sdk counts retries per call across all its handlers
    for inject in (
        lambda: fake.fail_next("auth.test", status=429, retry_after=0),
        lambda: fake.fail_next("auth.test", status=500),
        lambda: fake.drop_next("auth.test"),
    ):
        inject()
        assert client.auth_test()["ok"]
    assert [c.method for c in fake.calls] == ["auth.test"] * 6

    fake.fail_next("chat.postMessage", error="fatal_error")
    with pytest.raises(SlackApiError) as info:
        client.chat_postMessage(channel="general", text="hi")
    assert api_error(info) == "fatal_error"

    bare = WebClient(token=fake.bot_token, base_url=fake.api_url, retry_handlers=[])
    fake.fail_next("auth.test", status=429, retry_after=30)
    with pytest.raises(SlackApiError) as info:
        bare.auth_test()
    assert info.value.response.status_code == 429
    assert info.value.response.headers["Retry-After"] == "30"


async def test_async_client_retries_429_500_and_drops(fake: SlackFake) -> None:
    client = AsyncWebClient(
        token=fake.bot_token,
        base_url=fake.api_url,
        retry_handlers=[
            AsyncRateLimitErrorRetryHandler(max_retry_count=1),
            AsyncServerErrorRetryHandler(max_retry_count=1, interval_calculator=QUICK),
            AsyncConnectionErrorRetryHandler(max_retry_count=1, interval_calculator=QUICK),
        ],
    )
    for inject in (
        lambda: fake.fail_next("conversations.list", status=429, retry_after=0),
        lambda: fake.fail_next("conversations.list", status=503),
        lambda: fake.drop_next("conversations.list"),
    ):
        inject()
        assert (await client.conversations_list())["channels"][0]["name"] == "general"
    assert len(fake.calls_to("conversations.list")) == 6


def test_rate_limit_for_non_marketplace_apps() -> None:
    now = [1_000.0]
    with SlackFake(clock=lambda: now[0]) as fake:
        alice = fake.add_user("alice").id
        fake.add_channel("eng")
        fake.seed_history("eng", 40, users=[alice], start=500.0, interval=1.0)
        fake.rate_limit("conversations.history", per_minute=1, max_page=15)
        client = WebClient(token=fake.bot_token, base_url=fake.api_url, retry_handlers=[])

        first = client.conversations_history(channel=fake.channel("eng").id, limit=200)
        assert len(first["messages"]) == 15
        assert first["has_more"]
        with pytest.raises(SlackApiError) as info:
            client.conversations_history(channel=fake.channel("eng").id)
        assert info.value.response.status_code == 429
        assert info.value.response.headers["Retry-After"] == "60"
        now[0] += 59.5
        with pytest.raises(SlackApiError) as info:
            client.conversations_history(channel=fake.channel("eng").id)
        assert info.value.response.headers["Retry-After"] == "1"
        now[0] += 1
        cursor = first["response_metadata"]["next_cursor"]
        second = client.conversations_history(channel=fake.channel("eng").id, cursor=cursor)
        assert len(second["messages"]) == 15


async def test_rate_limit_retry_after_is_honoured(world: World) -> None:
    """A tiny window stands in for Slack's minute; the SDK waits out Retry-After: 1."""
    fake = world.fake
    fake.seed_history(world.eng, 3)
    fake.rate_limit("conversations.replies", per_minute=1, window=0.9)
    client = AsyncWebClient(
        token=fake.bot_token,
        base_url=fake.api_url,
        retry_handlers=[AsyncRateLimitErrorRetryHandler(max_retry_count=2)],
    )
    parent = fake.messages(world.eng)[0]["ts"]
    for _ in range(2):
        assert (await client.conversations_replies(channel=world.eng, ts=parent))["ok"]
    assert len(fake.calls_to("conversations.replies")) == 3  # one 429, retried


# -- Socket Mode with slack_sdk's aiohttp client -------------------------------------------


@dataclass
class SocketApp:
    client: SocketModeClient
    requests: asyncio.Queue[SocketModeRequest]
    frames: list[dict[str, Any]] = field(default_factory=list)

    async def next_event(self) -> SocketModeRequest:
        return await asyncio.wait_for(self.requests.get(), 5.0)


AckPolicy = Callable[[SocketModeRequest], bool]


@asynccontextmanager
async def socket_app(fake: SlackFake, ack: AckPolicy = lambda _: True) -> AsyncIterator[SocketApp]:
    """slack_sdk's aiohttp SocketModeClient, acking each request `ack` approves."""
    client = SocketModeClient(
        app_token=fake.app_token,
        web_client=AsyncWebClient(base_url=fake.api_url),
        ping_interval=0.1,  # how soon it notices a dropped link
    )
    app = SocketApp(client, asyncio.Queue())

    async def on_request(c: AsyncBaseSocketModeClient, request: SocketModeRequest) -> None:
        app.requests.put_nowait(request)  # before any await: keeps the arrival order
        if ack(request):
            await c.send_socket_mode_response(SocketModeResponse(envelope_id=request.envelope_id))

    async def on_frame(message: aiohttp.WSMessage) -> None:
        app.frames.append(json.loads(message.data))  # every text frame, as received

    client.socket_mode_request_listeners.append(on_request)
    client.on_message_listeners.append(on_frame)
    await client.connect()
    try:
        yield app
    finally:
        await client.close()


async def test_socket_mode_hello_envelope_and_ack(fake: SlackFake) -> None:
    async with socket_app(fake) as app:
        await fake.wait_connected_async()
        event_id = fake.deliver_event({"type": "app_home_opened", "user": "U1", "tab": "home"})
        request = await app.next_event()
        envelope = next(f for f in app.frames if f.get("envelope_id") == request.envelope_id)
        delivered = await fake.wait_for_ack_async(request.envelope_id)

    assert app.frames[0]["type"] == "hello"
    assert envelope["type"] == "events_api"
    assert envelope["accepts_response_payload"] is False
    assert (envelope["retry_attempt"], envelope["retry_reason"]) == (0, "")
    payload = request.payload
    assert payload["type"] == "event_callback"
    assert payload["event_id"] == event_id
    assert payload["api_app_id"] == fake.app_id
    assert payload["team_id"] == fake.team_id
    assert payload["authorizations"][0]["user_id"] == fake.bot_user_id
    assert delivered.ack == {"envelope_id": request.envelope_id}
    assert fake.wait_for_event_ack(event_id).transport is Transport.SOCKET


async def test_socket_mode_queues_until_connected_and_duplicates(fake: SlackFake) -> None:
    early = fake.deliver_event({"type": "app_home_opened", "user": "U1"})
    twice = fake.deliver_event({"type": "app_home_opened", "user": "U2"}, duplicate=2)
    async with socket_app(fake) as app:
        got = [(await app.next_event()).payload["event_id"] for _ in range(3)]
    assert got == [early, twice, twice]
    envelopes = [d.envelope_id for d in fake.deliveries if d.event_id == twice]
    assert len(set(envelopes)) == 2


async def test_socket_mode_reconnects_after_disconnect_and_drop(fake: SlackFake) -> None:
    async with socket_app(fake) as app:
        await fake.wait_connected_async()
        fake.disconnect("refresh_requested")
        await fake.wait_for_call_async("apps.connections.open", count=2)
        await fake.wait_connected_async()
        first = fake.deliver_event({"type": "app_home_opened", "user": "U1"})
        assert (await app.next_event()).payload["event_id"] == first
        assert {"type": "disconnect", "reason": "refresh_requested"}.items() <= next(
            f for f in app.frames if f.get("type") == "disconnect"
        ).items()

        fake.drop_connections()
        await fake.wait_for_call_async("apps.connections.open", count=3)
        await fake.wait_connected_async()
        second = fake.deliver_event({"type": "app_home_opened", "user": "U2"})
        assert (await app.next_event()).payload["event_id"] == second
        await fake.wait_for_event_ack_async(second)


async def test_unacked_envelope_is_redelivered_with_retry_attempt(fake: SlackFake) -> None:
    fake.ack_timeout = 0.2
    async with socket_app(fake, ack=lambda r: r.retry_attempt != 0) as app:
        event_id = fake.deliver_event({"type": "app_home_opened", "user": "U1"})
        first, retry = await app.next_event(), await app.next_event()
        acked = await fake.wait_for_event_ack_async(event_id)
    assert (first.retry_attempt, first.retry_reason) == (0, "")
    assert (retry.retry_attempt, retry.retry_reason) == (1, "timeout")
    assert retry.payload["event_id"] == event_id
    assert retry.envelope_id != first.envelope_id
    assert acked.envelope_id == retry.envelope_id


# -- user activity: what Slack sends the app ------------------------------------------------


async def test_user_activity_events(world: World) -> None:
    fake = world.fake
    async with socket_app(fake) as app:

        async def next_events(n: int) -> list[dict[str, Any]]:
            return [(await app.next_event()).payload for _ in range(n)]

        fake.post_user_message(world.lounge, world.alice, "<@U0FAKEBOT1> not here")  # no event
        mention = fake.post_user_message(world.eng, world.alice, "hi <@U0FAKEBOT1>")
        message, app_mention = await next_events(2)
        assert message["event"]["type"] == "message"
        assert app_mention["event"]["type"] == "app_mention"
        assert message["event_id"] != app_mention["event_id"]
        assert message["event"]["ts"] == app_mention["event"]["ts"] == mention["ts"]
        assert message["event"]["channel_type"] == "channel"
        assert app_mention["event"]["blocks"][0]["elements"][0]["elements"][1] == {
            "type": "user",
            "user_id": fake.bot_user_id,
        }

        fake.post_user_message(world.alice, world.alice, "<@U0FAKEBOT1> in a DM")
        [dm] = await next_events(1)  # only `message`: Slack sends no app_mention in DMs
        assert (dm["event"]["type"], dm["event"]["channel_type"]) == ("message", "im")

        reply = fake.post_user_message(world.eng, world.bob, "me too", thread_ts=mention["ts"])
        edited = fake.edit_message(world.eng, reply["ts"], "me three")
        fake.add_reaction(world.eng, mention["ts"], world.bob, "eyes")
        fake.delete_message(world.eng, reply["ts"])
        fake.post_bot_message(world.secret, "build green")
        events = [p["event"] for p in await next_events(5)]
        assert (events[0]["thread_ts"], events[0]["parent_user_id"]) == (mention["ts"], world.alice)
        assert events[1]["subtype"] == "message_changed"
        assert events[1]["message"]["text"] == edited["text"] == "me three"
        assert events[1]["previous_message"]["text"] == "me too"
        assert events[2]["type"] == "reaction_added"
        assert events[2]["item"]["ts"] == mention["ts"]
        assert (events[3]["subtype"], events[3]["deleted_ts"]) == ("message_deleted", reply["ts"])
        assert (events[4]["subtype"], events[4]["channel_type"]) == ("bot_message", "group")

        created = fake.create_channel("new", world.bob)
        fake.join_channel("new", fake.bot_user_id, inviter=world.bob)
        fake.rename_channel("new", "newer")
        fake.rename_channel("secret", "classified")
        fake.leave_channel("newer", fake.bot_user_id)
        fake.archive_channel("newer", world.bob)
        fake.delete_channel("lounge")
        thread = fake.start_assistant_thread(world.bob)
        types = [p["event"]["type"] for p in await next_events(8)]
        assert types == [
            "channel_created",
            "member_joined_channel",
            "channel_rename",
            "group_rename",
            "member_left_channel",
            "channel_archive",
            "channel_deleted",
            "assistant_thread_started",
        ]
        assert created.name == "new"

        fake.post_user_message(
            thread.channel_id, world.bob, "what is heron?", thread_ts=thread.thread_ts
        )
        [in_thread] = await next_events(1)
        assert in_thread["event"]["thread_ts"] == thread.thread_ts
        assert in_thread["event"]["channel_type"] == "im"

        # the app's own post comes back as a message with its bot_id (echo)
        client = AsyncWebClient(token=fake.bot_token, base_url=fake.api_url)
        await client.chat_postMessage(channel=world.eng, text="answer", thread_ts=mention["ts"])
        [echo] = await next_events(1)
        assert (echo["event"]["bot_id"], echo["event"]["user"]) == (fake.bot_id, fake.bot_user_id)

        shared = fake.post_user_message(
            world.eng, world.bob, "logs", files=[FileSpec("a.txt", b"x", title="A")]
        )
        [file_share] = await next_events(1)
        assert file_share["event"]["subtype"] == "file_share"
        assert file_share["event"]["files"] == shared["files"]

        fake.echo_bot_messages = False
        await client.chat_postMessage(channel=world.eng, text="quiet")
        marker = fake.deliver_event({"type": "app_home_opened", "user": world.bob})
        [after] = await next_events(1)  # events keep their order: no echo came first
        assert after["event_id"] == marker


# -- slack_bolt -----------------------------------------------------------------------------


async def test_bolt_app_answers_a_mention_over_socket_mode(world: World) -> None:
    fake = world.fake
    app = AsyncApp(client=AsyncWebClient(token=fake.bot_token, base_url=fake.api_url))
    mentioned: asyncio.Future[dict[str, Any]] = asyncio.get_running_loop().create_future()

    @app.event("app_mention")
    async def on_mention(event: dict[str, Any], say: Callable[..., Awaitable[Any]]) -> None:
        await say(text=f"hello <@{event['user']}>", thread_ts=event["ts"])
        mentioned.set_result(event)

    @app.event("message")
    async def on_message() -> None:
        pass

    handler = AsyncSocketModeHandler(app, fake.app_token, ping_interval=0.1)
    await handler.connect_async()
    try:
        question = fake.post_user_message(world.eng, world.alice, "<@U0FAKEBOT1> hi")
        event = await asyncio.wait_for(mentioned, 5)
        await fake.wait_for_call_async("chat.postMessage")
        for delivery in [d for d in fake.deliveries if d.event_type in ("message", "app_mention")]:
            await fake.wait_for_event_ack_async(delivery.event_id)
    finally:
        await handler.close_async()
    assert event["ts"] == question["ts"]
    [reply] = fake.bot_replies(world.eng, question["ts"])
    assert reply["text"] == f"hello <@{world.alice}>"
    assert next(c.method for c in fake.calls if c.method != "apps.connections.open") == "auth.test"


# -- Events API -----------------------------------------------------------------------------


@asynccontextmanager
async def events_endpoint(
    secret: str, status: Callable[[dict[str, Any]], int] = lambda _: 200
) -> AsyncIterator[tuple[str, asyncio.Queue[tuple[dict[str, str], dict[str, Any]]]]]:
    """A minimal Events API receiver that checks signatures with slack_sdk's verifier."""
    verifier = SignatureVerifier(secret)
    received: asyncio.Queue[tuple[dict[str, str], dict[str, Any]]] = asyncio.Queue()

    async def handle(request: web.Request) -> web.Response:
        body = await request.read()
        if not verifier.is_valid_request(body, dict(request.headers)):
            return web.Response(status=401, text="invalid signature")
        payload = json.loads(body)
        if payload["type"] == "url_verification":
            return web.json_response({"challenge": payload["challenge"]})
        await received.put((dict(request.headers), payload))
        return web.Response(status=status(payload), text="")

    app = web.Application()
    app.router.add_post("/slack/events", handle)
    runner = web.AppRunner(app, access_log=None)
    await runner.setup()
    site = web.TCPSite(runner, "127.0.0.1", 0)
    await site.start()
    port = runner.addresses[0][1]
    try:
        yield f"http://127.0.0.1:{port}/slack/events", received
    finally:
        await runner.cleanup()


async def test_events_api_requests_are_signed_and_retried(world: World) -> None:
    fake = world.fake
    fake.delivery = DeliveryMode.EVENTS_API
    fake.ack_timeout = 2.0
    failed: set[str] = set()

    def fail_each_message_once(payload: dict[str, Any]) -> int:
        if payload["event"]["type"] != "message" or payload["event_id"] in failed:
            return 200
        failed.add(payload["event_id"])
        return 500

    async with events_endpoint(fake.signing_secret, fail_each_message_once) as (url, received):
        fake.events_api_url = url
        assert await fake.send_url_verification_async("c-123") == (200, '{"challenge": "c-123"}')

        fake.post_user_message(world.eng, world.alice, "hi <@U0FAKEBOT1>")
        got = [await received.get() for _ in range(3)]  # message, its retry, app_mention
        messages = [(h, p) for h, p in got if p["event"]["type"] == "message"]
        (headers, first), (retry_headers, retry) = messages
        assert "X-Slack-Retry-Num" not in headers
        assert retry["event_id"] == first["event_id"]
        assert retry_headers["X-Slack-Retry-Num"] == "1"
        assert retry_headers["X-Slack-Retry-Reason"] == "http_error"
        assert (await fake.wait_for_event_ack_async(first["event_id"])).status == 200
        assert {p["event"]["type"] for _, p in got} == {"message", "app_mention"}

        status, _ = await fake.send_events_api_async(
            {"type": "app_mention", "text": "x"},
            event_id="Ev1",
            retry_num=2,
            retry_reason="http_timeout",
        )
        headers, payload = await received.get()
        assert status == 200
        assert payload["event_id"] == "Ev1"
        assert (headers["X-Slack-Retry-Num"], headers["X-Slack-Retry-Reason"]) == (
            "2",
            "http_timeout",
        )
        assert (await fake.send_events_api_async({"type": "x"}, bad_signature=True))[0] == 401
        assert (await fake.send_events_api_async({"type": "x"}, timestamp=1))[0] == 401  # stale


def test_events_api_from_sync_code(world: World) -> None:
    fake = world.fake

    async def scenario() -> tuple[int, str]:
        async with events_endpoint(fake.signing_secret) as (url, received):
            fake.events_api_url = url
            result = await asyncio.to_thread(fake.send_events_api, {"type": "app_home_opened"})
            _, payload = await received.get()
            assert payload["event"]["type"] == "app_home_opened"
            return result

    assert asyncio.run(scenario()) == (200, "")


# -- export ---------------------------------------------------------------------------------


@pytest.mark.parametrize("as_zip", [False, True])
def test_export_round_trip(world: World, tmp_path: Path, as_zip: bool) -> None:
    fake = world.fake
    day = 86_400.0
    start = 1_732_579_200.0  # 2024-11-26 00:00 UTC
    fake.seed_history(world.eng, 30, with_threads=3, start=start, interval=day / 6)
    fake.seed_history(world.secret, 4, start=start, interval=day)
    dm = fake.open_dm(world.bob)
    fake.seed_message(dm.id, world.bob, "hello bot", at=start + 5)

    target = tmp_path / ("export.zip" if as_zip else "export")
    fake.write_export(target, zip=as_zip)
    files = read_export(target)

    assert {u["name"] for u in files["users.json"]} == {"heron", "alice", "bob"}
    assert {c["name"] for c in files["channels.json"]} == {"general", "eng", "lounge"}
    assert [g["name"] for g in files["groups.json"]] == ["secret"]
    assert files["dms.json"][0]["members"] == [world.bob, fake.bot_user_id]
    eng_days = sorted(name for name in files if name.startswith("eng/"))
    assert eng_days[:2] == ["eng/2024-11-26.json", "eng/2024-11-27.json"]
    assert len(eng_days) == 5
    eng = [m for name in eng_days for m in files[name]]
    assert len(eng) == 30 + 3 * 3
    parents = [m for m in eng if m.get("reply_count")]
    assert len(parents) == 3
    assert all(len(p["replies"]) == 3 for p in parents)
    assert eng[0]["user_profile"]["name"] in {"alice", "bob"}
    assert sum(len(files[n]) for n in files if n.startswith("secret/")) == 4
    assert files[f"{dm.id}/2024-11-26.json"][0]["text"] == "hello bot"


def read_export(path: Path) -> dict[str, Any]:
    if path.suffix == ".zip":
        with zipfile.ZipFile(path) as archive:
            return {name: json.loads(archive.read(name)) for name in archive.namelist()}
    return {str(p.relative_to(path)): json.loads(p.read_text()) for p in path.rglob("*.json")}


def test_fake_lifecycle_is_idempotent() -> None:
    fake = SlackFake()
    fake.stop()  # before start: nothing to do
    with pytest.raises(RuntimeError):
        fake.start()
    running = SlackFake().start()
    url = running.api_url
    running.stop()
    running.stop()
    with pytest.raises(urllib.error.URLError):
        urllib.request.urlopen(url + "auth.test", timeout=1)
