"""`heron slack import` on real PostgreSQL: exports (folder and zip) and the Web API
backfill against the Slack fake, with pagination, 429s, a kill half-way and the 2025
non-Marketplace rate limit."""

from __future__ import annotations

import asyncio
import json
import math
from collections.abc import AsyncIterator, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest
from slack_sdk.web.async_client import AsyncWebClient
from typer.testing import CliRunner

from heron.bench.slack_import import write_synthetic_export
from heron.cli import app
from heron.queue.store import open_pool
from heron.slack.archive import Archive
from heron.slack.backfill import Backfill, BackfillError, BackfillProgress, BackfillSummary
from heron.slack.client import web_client
from heron.slack.events import BotIdentity
from heron.slack.export_import import ExportError, import_export
from heron.slack.pacing import NON_MARKETPLACE, Clock, Pace, VirtualClock
from heron.testing.openai import FakeOpenAI
from heron.testing.slack import Channel, SlackFake
from tests.conftest import make_config, rows

START = 1_700_000_000.0  # 2023-11-14
# Several messages a day over weeks: many day files, several weekly partitions.
INTERVAL = 20_000.0
FAST = Pace(requests_per_minute=60_000, page_size=7)  # small pages, no real waiting


@dataclass
class Workspace:
    """The seeded fake workspace and what an import of it must find."""

    fake: SlackFake
    eng: Channel
    secret: Channel
    outside: Channel
    dm: Channel
    mpim: Channel

    def all_messages(self, channels: list[Channel]) -> list[dict[str, Any]]:
        return [m for c in channels for m in self.fake.workspace.all_messages(c.id)]

    @property
    def readable(self) -> list[Channel]:
        """The conversations the bot is in (the backfill can read no others)."""
        return [self.eng, self.secret, self.dm, self.mpim]


def seed(fake: SlackFake) -> Workspace:
    alice, bob, carol = (fake.add_user(name) for name in ("alice", "bob", "carol"))
    eng = fake.add_channel("eng", topic="engineering")
    secret = fake.add_channel("secret", private=True, members=[alice.id, bob.id])
    outside = fake.add_channel("outside", bot=False)
    dm = fake.open_dm(carol.id)
    mpim = fake.open_mpim([alice.id, carol.id])
    fake.seed_history("eng", 40, with_threads=3, replies_per_thread=8, start=START,
                      interval=INTERVAL)  # fmt: skip
    fake.seed_history(secret.id, 9, with_threads=1, start=START + 7, interval=INTERVAL)
    fake.seed_history(outside.id, 5, start=START, interval=INTERVAL)
    fake.seed_history(dm.id, 6, start=START + 3, interval=INTERVAL)
    fake.seed_history(mpim.id, 3, with_threads=1, replies_per_thread=2, start=START)
    return Workspace(fake, eng, secret, outside, dm, mpim)


def is_reply(message: dict[str, Any]) -> bool:
    return message.get("thread_ts") not in (None, message["ts"])


def count(database_url: str, sql: str, *params: Any) -> int:
    return int(rows(database_url, sql, *params)[0]["n"])


@pytest.fixture
def fake() -> Iterator[SlackFake]:
    with SlackFake() as fake:
        yield fake


@pytest.fixture
async def archive(database_url: str) -> AsyncIterator[Archive]:
    pool = open_pool(database_url, max_size=4, name="test-import")
    await pool.open()
    try:
        yield Archive(pool, BotIdentity(user_id="U0FAKEBOT1", bot_id="B0FAKEBOT1"))
    finally:
        await pool.close()


@pytest.fixture
async def client(fake: SlackFake, database_url: str) -> AsyncIterator[AsyncWebClient]:
    config = make_config(database_url, slack_bot_token=fake.bot_token, slack_api_url=fake.api_url)
    client = web_client(config)  # the real retry handlers: 429s wait Retry-After
    try:
        yield client
    finally:
        if client.session is not None and not client.session.closed:
            await client.session.close()


# -- exports ----------------------------------------------------------------------------


@pytest.mark.parametrize("as_zip", [False, True], ids=["folder", "zip"])
async def test_an_export_imports_everything_once(
    fake: SlackFake, archive: Archive, database_url: str, tmp_path: Path, as_zip: bool
) -> None:
    ws = seed(fake)
    export = fake.write_export(tmp_path / ("export.zip" if as_zip else "export"), zip=as_zip)
    everything = ws.all_messages([*ws.readable, ws.outside])
    replies = [m for m in everything if is_reply(m)]
    assert len(replies) == 3 * 8 + 3 + 2

    summary = await import_export(archive, export, batch_size=20)  # many batches in flight
    assert summary.users == len(fake.users())
    assert summary.channels == 6  # with #general
    assert (summary.messages, summary.added, summary.skipped) == (len(everything),) * 2 + (0,)
    assert count(database_url, "SELECT count(*) AS n FROM slack_messages") == len(everything)
    stored_replies = "SELECT count(*) AS n FROM slack_messages WHERE thread_ts <> ts"
    assert count(database_url, stored_replies) == len(replies)
    assert count(database_url, "SELECT count(*) AS n FROM slack_users") == len(fake.users())
    parent = rows(database_url, "SELECT reply_count FROM slack_messages WHERE channel_id = %s "
                  "AND ts = %s", ws.eng.id, fake.messages("eng")[0]["ts"])  # fmt: skip
    assert parent == [{"reply_count": 8}]

    channels = {r["id"]: r for r in rows(database_url, "SELECT * FROM slack_channels")}
    assert (channels[ws.eng.id]["name"], channels[ws.eng.id]["is_private"]) == ("eng", False)
    assert channels[ws.eng.id]["topic"] == "engineering"
    assert channels[ws.secret.id]["is_private"] is True
    assert channels[ws.dm.id]["is_im"] is True
    assert channels[ws.mpim.id]["is_mpim"] is True
    for private in (ws.secret, ws.dm, ws.mpim):
        members = rows(database_url, "SELECT user_id FROM slack_channel_members "
                       "WHERE channel_id = %s", private.id)  # fmt: skip
        assert {r["user_id"] for r in members} == set(private.members)
    public_members = "SELECT count(*) AS n FROM slack_channel_members WHERE channel_id = %s"
    assert count(database_url, public_members, ws.eng.id) == 0  # access is open anyway

    again = await import_export(archive, export)
    assert (again.messages, again.added) == (len(everything), 0)
    assert count(database_url, "SELECT count(*) AS n FROM slack_messages") == len(everything)


async def test_unusable_messages_are_skipped_and_counted(
    fake: SlackFake, archive: Archive, database_url: str, tmp_path: Path
) -> None:
    ws = seed(fake)
    export = fake.write_export(tmp_path / "export")
    day = sorted((export / "eng").glob("*.json"))[0]
    messages = json.loads(day.read_text())
    messages += [{"type": "message", "text": "no ts"}, "junk", {"ts": "1700000000.5", "text": 7}]
    day.write_text(json.dumps(messages))
    summary = await import_export(archive, export)
    expected = len(ws.all_messages([*ws.readable, ws.outside]))
    assert (summary.messages, summary.skipped) == (expected, 3)
    assert count(database_url, "SELECT count(*) AS n FROM slack_messages") == expected


async def test_a_missing_or_corrupt_export_is_a_clear_error(
    archive: Archive, tmp_path: Path
) -> None:
    with pytest.raises(ExportError, match="does not exist"):
        await import_export(archive, tmp_path / "nope.zip")
    (tmp_path / "notes.zip").write_text("not a zip")
    with pytest.raises(ExportError, match="not a readable zip"):
        await import_export(archive, tmp_path / "notes.zip")
    (tmp_path / "empty").mkdir()
    with pytest.raises(ExportError, match="not a Slack export"):
        await import_export(archive, tmp_path / "empty")
    broken = tmp_path / "broken"
    (broken / "eng").mkdir(parents=True)
    (broken / "channels.json").write_text('[{"id": "C1", "name": "eng"}]')
    (broken / "eng" / "2024-01-01.json").write_text("[{")
    with pytest.raises(ExportError, match=r"eng/2024-01-01.json is not valid JSON"):
        await import_export(archive, broken)


def analyzed(database_url: str) -> bool:
    """Whether the archive's parent has statistics (autovacuum never makes them)."""
    return bool(
        rows(
            database_url,
            "SELECT 1 FROM pg_stats WHERE tablename = 'slack_messages' AND inherited"
            " AND attname = 'search' AND most_common_elems IS NOT NULL",
        )
    )


def test_the_command_imports_an_export_and_prints_the_rate(
    fake: SlackFake, database_url: str, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    ws = seed(fake)
    export = fake.write_export(tmp_path / "export.zip", zip=True)
    monkeypatch.setenv("DATABASE_URL", database_url)
    monkeypatch.setenv("HERON_EMBEDDING_PROVIDER", "hashing")
    result = CliRunner().invoke(app, ["slack", "import", str(export)])
    assert result.exit_code == 0, result.output
    total = len(ws.all_messages([*ws.readable, ws.outside]))
    assert f"imported {total} messages ({total} new), 6 conversations" in result.stdout
    assert "messages/s" in result.stdout
    assert analyzed(database_url)  # archive search reads the statistics of the whole archive
    # Search finds the history by meaning at once: every message with text has its vector.
    texts = count(database_url, "SELECT count(*) AS n FROM slack_messages WHERE text <> ''")
    assert f"embedded {texts} messages for search (hashing-" in result.stdout
    assert vectors(database_url) == texts
    again = CliRunner().invoke(app, ["slack", "import", str(export)])
    assert f"({0} new)" in again.stdout
    assert "embedded 0 messages for search" in again.stdout


def vectors(database_url: str) -> int:
    return count(database_url, "SELECT count(*) AS n FROM slack_message_embeddings")


def test_no_embed_leaves_the_vectors_to_search(
    fake: SlackFake, database_url: str, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    seed(fake)
    export = fake.write_export(tmp_path / "export")
    monkeypatch.setenv("DATABASE_URL", database_url)
    monkeypatch.setenv("HERON_EMBEDDING_PROVIDER", "hashing")
    result = CliRunner().invoke(app, ["slack", "import", str(export), "--no-embed"])
    assert result.exit_code == 0, result.output
    assert "embedded" not in result.stdout
    assert rows(database_url, "SELECT to_regclass('slack_message_embeddings') AS t") == [
        {"t": None}
    ]


def test_an_embedding_failure_keeps_the_import_and_says_so(
    fake: SlackFake, database_url: str, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    ws = seed(fake)
    export = fake.write_export(tmp_path / "export")
    with FakeOpenAI(api_key="sk-right") as openai:
        for key, value in {"DATABASE_URL": database_url, "HERON_EMBEDDING_PROVIDER": "openai",
                           "OPENAI_API_KEY": "sk-wrong", "OPENAI_BASE_URL": openai.base_url
                           }.items():  # fmt: skip
            monkeypatch.setenv(key, value)
        result = CliRunner().invoke(app, ["slack", "import", str(export)])
    assert result.exit_code == 0, result.output
    total = len(ws.all_messages([*ws.readable, ws.outside]))
    assert f"imported {total} messages ({total} new)" in result.stdout
    said = " ".join(result.stderr.split())
    assert "message vectors not computed (" in said
    assert "search embeds them a batch at a time, or run the import again" in said
    assert "sk-wrong" not in result.output
    assert "embedded" not in result.stdout


def test_the_command_backfills_through_the_api_and_says_how_long_it_takes(
    fake: SlackFake, database_url: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    ws = seed(fake)
    for key, value in {"DATABASE_URL": database_url, "SLACK_BOT_TOKEN": fake.bot_token,
                       "SLACK_API_URL": fake.api_url,
                       "HERON_EMBEDDING_PROVIDER": "hashing"}.items():  # fmt: skip
        monkeypatch.setenv(key, value)
    args = ["slack", "import", "--api", "--requests-per-minute", "6000", "--page-size", "10"]
    result = CliRunner().invoke(app, args)
    assert result.exit_code == 0, result.output
    assert vectors(database_url) > 0
    assert f"embedded {vectors(database_url)} messages for search" in result.stdout
    assert "4 conversations (2 skipped): 4 histories to read at 6000 requests/min" in result.stderr
    assert "this takes at least" in result.stderr
    assert "skipped outside: the bot is not a member" in result.stderr
    total = len(ws.all_messages(ws.readable))
    assert f"backfilled {total} messages ({total} new) from 4 conversations" in result.stdout
    assert analyzed(database_url)
    again = CliRunner().invoke(app, [*args, "--channel", "eng"])
    assert "1 conversation: all imported already" in again.stderr
    assert "backfilled 0 messages (0 new) from 1 conversation in 0 pages" in again.stdout


def test_the_command_says_what_slack_refused(
    fake: SlackFake, database_url: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    for key, value in {"DATABASE_URL": database_url, "SLACK_BOT_TOKEN": fake.bot_token,
                       "SLACK_API_URL": fake.api_url}.items():  # fmt: skip
        monkeypatch.setenv(key, value)
    fake.fail_next("conversations.list", error="missing_scope")
    result = CliRunner().invoke(app, ["slack", "import", "--api"])
    assert result.exit_code == 1
    assert result.stderr.splitlines()[-1] == (  # after any log lines (e.g. a migration)
        "error: Slack answered missing_scope to conversations.list; run again to resume"
    )


@pytest.mark.parametrize(
    ("args", "env", "message"),
    [
        (["slack", "import", "/no/such/export.zip"], {}, "does not exist"),
        (["slack", "import"], {}, "or --api"),
        (["slack", "import", "x.zip", "--api"], {}, "not both"),
        (["slack", "import", "x.zip", "--page-size", "15"], {}, "go with --api"),
        (["slack", "import", "--api"], {"SLACK_BOT_TOKEN": "unset"}, "SLACK_BOT_TOKEN is required"),
        (["slack", "import", "--api", "--page-size", "1000"], {}, "page size"),
    ],
)
def test_command_errors_are_one_line(
    args: list[str],
    env: dict[str, str],
    message: str,
    database_url: str,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.setenv("DATABASE_URL", database_url)
    monkeypatch.setenv("SLACK_BOT_TOKEN", "xoxb-test")
    for key in env:
        monkeypatch.delenv(key)
    result = CliRunner().invoke(app, args)
    assert result.exit_code == 1
    assert result.stderr.startswith("error: ")
    assert message in result.stderr
    assert len(result.stderr.strip().splitlines()) == 1


# -- the Web API backfill ---------------------------------------------------------------


def history_pages(fake: SlackFake, channel: Channel, size: int) -> int:
    return max(1, math.ceil(len(fake.messages(channel.id)) / size))


def replies_pages(fake: SlackFake, channel: Channel, size: int) -> int:
    """conversations.replies repeats the parent atop every page."""
    threads = [m for m in fake.messages(channel.id) if m.get("reply_count")]
    return sum(max(1, math.ceil(m["reply_count"] / (size - 1))) for m in threads)


async def backfill(
    client: AsyncWebClient,
    archive: Archive,
    *,
    pace: Pace = FAST,
    clock: Clock | None = None,
    on_progress: Any = None,
) -> BackfillSummary:
    runner = Backfill(client, archive, pace=pace, clock=clock or VirtualClock(),
                      on_progress=on_progress)  # fmt: skip
    return await runner.run(await runner.prepare())


def history_calls(fake: SlackFake, channel: Channel) -> list[dict[str, Any]]:
    return [p for p in fake.calls_to("conversations.history") if p["channel"] == channel.id]


async def test_a_backfill_reads_every_page_and_thread_through_429s(
    fake: SlackFake, client: AsyncWebClient, archive: Archive, database_url: str
) -> None:
    ws = seed(fake)
    expected = ws.all_messages(ws.readable)
    fake.fail_next("conversations.history", status=429, retry_after=0, times=2)
    fake.fail_next("conversations.replies", status=429, retry_after=0)

    summary = await backfill(client, archive)

    pages = sum(history_pages(fake, c, FAST.page_size) for c in ws.readable)
    threads = sum(replies_pages(fake, c, FAST.page_size) for c in ws.readable)
    assert (summary.history_pages, summary.replies_pages) == (pages, threads)
    assert len(fake.calls_to("conversations.history")) == pages + 2  # the 429s, retried
    assert len(fake.calls_to("conversations.replies")) == threads + 1
    assert {p["limit"] for p in fake.calls_to("conversations.history")} == {"7"}
    assert (summary.messages, summary.added, summary.bad) == (len(expected), len(expected), 0)
    stored = rows(database_url, "SELECT channel_id, ts FROM slack_messages")
    assert sorted((r["channel_id"], r["ts"]) for r in stored) == sorted(
        (c.id, m["ts"]) for c in ws.readable for m in fake.workspace.all_messages(c.id)
    )
    assert {s.name for s in summary.skipped} == {"general", "outside"}  # the bot is not in them
    assert summary.users == len(fake.users())
    cursors = rows(database_url, "SELECT channel_id, scope, done, messages, cursor "
                   "FROM slack_import_cursors")  # fmt: skip
    assert all(c["done"] and c["cursor"] is None for c in cursors)
    eng_history = next(
        c for c in cursors if (c["channel_id"], c["scope"]) == (ws.eng.id, "history")
    )
    assert eng_history["messages"] == 40
    assert sum(1 for c in cursors if c["scope"].startswith("replies:")) == 3 + 1 + 1

    calls_before = len(fake.calls)
    again = await backfill(client, archive)
    assert (again.messages, again.added, again.history_pages, again.replies_pages) == (0, 0, 0, 0)
    later = [c.method for c in fake.calls[calls_before:]]
    assert "conversations.history" not in later
    assert "conversations.replies" not in later


async def test_a_backfill_killed_half_way_resumes_where_it_stopped(
    fake: SlackFake, client: AsyncWebClient, archive: Archive, database_url: str
) -> None:
    ws = seed(fake)
    expected = ws.all_messages(ws.readable)
    running: asyncio.Task[BackfillSummary] | None = None

    def kill_after_three_pages(progress: BackfillProgress) -> None:
        if progress.history_pages == 3 and running is not None:
            running.cancel()  # lands wherever the backfill awaits next, mid-import or not

    running = asyncio.create_task(backfill(client, archive, on_progress=kill_after_three_pages))
    with pytest.raises(asyncio.CancelledError):
        await running
    (eng,) = rows(database_url, "SELECT cursor, done FROM slack_import_cursors "
                  "WHERE channel_id = %s AND scope = 'history'", ws.eng.id)  # fmt: skip
    assert eng["done"] is False
    assert eng["cursor"] is not None
    partial = count(database_url, "SELECT count(*) AS n FROM slack_messages")
    assert 0 < partial < len(expected)
    calls_before = len(history_calls(fake, ws.eng))
    assert calls_before in (3, 4)  # a fourth may have left before the kill landed

    summary = await backfill(client, archive)

    resumed = history_calls(fake, ws.eng)[calls_before:]
    assert resumed[0]["cursor"] == eng["cursor"]  # not from the start
    assert len(resumed) == history_pages(fake, ws.eng, FAST.page_size) - 3
    assert count(database_url, "SELECT count(*) AS n FROM slack_messages") == len(expected)
    assert partial + summary.added == len(expected)  # nothing imported twice


async def test_a_refused_page_stops_the_backfill_and_a_rerun_finishes_it(
    fake: SlackFake, client: AsyncWebClient, archive: Archive, database_url: str
) -> None:
    ws = seed(fake)
    expected = ws.all_messages(ws.readable)

    def fail_after_two_pages(progress: BackfillProgress) -> None:
        if progress.history_pages == 2:
            fake.fail_next("conversations.history", error="fatal_error")

    with pytest.raises(BackfillError, match="fatal_error"):
        await backfill(client, archive, on_progress=fail_after_two_pages)
    first = count(database_url, "SELECT count(*) AS n FROM slack_messages")
    summary = await backfill(client, archive)
    assert first + summary.added == len(expected)
    assert count(database_url, "SELECT count(*) AS n FROM slack_messages") == len(expected)


async def test_the_2025_non_marketplace_limit_is_kept_and_the_backfill_finishes(
    archive: Archive, database_url: str
) -> None:
    clock = VirtualClock()
    with SlackFake(clock=clock.now) as fake:
        limited = make_config(database_url, slack_bot_token=fake.bot_token,
                              slack_api_url=fake.api_url)  # fmt: skip
        limited_client = web_client(limited)
        eng = fake.add_channel("eng", members=[fake.add_user("ada").id])
        fake.seed_history("eng", 40, with_threads=2, replies_per_thread=20, start=START)
        for method in ("conversations.history", "conversations.replies"):
            fake.rate_limit(method, per_minute=1, max_page=15)  # Slack's 2025 limit
        runner = Backfill(limited_client, archive, pace=NON_MARKETPLACE, clock=clock)
        plan = await runner.prepare()
        assert plan.seconds_at_least == 0.0  # one conversation: its first page goes at once
        started = clock.now()
        # A 429 here would make slack_sdk sleep Retry-After (virtual minutes) in real time.
        async with asyncio.timeout(30):
            summary = await runner.run(plan)
        assert limited_client.session is None  # slack_sdk opened and closed one per call

    history = fake.calls_to("conversations.history")
    replies = fake.calls_to("conversations.replies")
    assert len(history) == summary.history_pages == 3  # 40 in pages of 15; none refused
    assert len(replies) == summary.replies_pages == 2 * 2  # 20 replies in pages of 14
    assert {p["limit"] for p in history + replies} == {"15"}
    assert summary.messages == 40 + 2 * 20
    assert count(database_url, "SELECT count(*) AS n FROM slack_messages "
                 "WHERE channel_id = %s", eng.id) == 80  # fmt: skip
    # Each method at one call a minute, the two in parallel.
    assert clock.now() - started >= (len(replies) - 1) * 60


async def test_the_benchmark_writes_an_export_that_imports_whole(
    archive: Archive, database_url: str, tmp_path: Path
) -> None:
    export = write_synthetic_export(tmp_path, 2_100, channels=5, users=7)
    summary = await import_export(archive, export)
    assert (summary.users, summary.channels) == (7, 6)  # five channels and a DM
    assert summary.messages == summary.added == 2_100
    replies = count(database_url, "SELECT count(*) AS n FROM slack_messages WHERE thread_ts <> ts")
    assert replies == 2_100 // 10
