"""The archive on real PostgreSQL: exactly-once intake, edits, deletes, partitions, imports."""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import AsyncIterator
from datetime import UTC, datetime
from typing import Any

import psycopg
import pytest

from heron.queue.store import open_pool
from heron.slack.archive import Archive
from heron.slack.events import BotIdentity, message_row
from heron.slack.partitions import query, week_start
from tests.conftest import rows

BOT = BotIdentity(user_id="UBOT", bot_id="BBOT")
TS = "1732579200.000100"  # 2024-11-26


@pytest.fixture
async def archive(database_url: str) -> AsyncIterator[Archive]:
    pool = open_pool(database_url, max_size=4, name="test-archive")
    await pool.open()
    try:
        yield Archive(pool, BOT)
    finally:
        await pool.close()


def callback(event: dict[str, Any], event_id: str) -> dict[str, Any]:
    return {"type": "event_callback", "team_id": "T1", "event_id": event_id, "event": event}


def message(text: str, ts: str = TS, **extra: Any) -> dict[str, Any]:
    return {"type": "message", "channel": "C1", "channel_type": "channel", "user": "U1",
            "text": text, "ts": ts, **extra}  # fmt: skip


async def test_redeliveries_and_twin_events_give_one_row_and_one_question(
    archive: Archive, database_url: str
) -> None:
    text = "<@UBOT> how do I vacuum?"
    mention = callback({**message(text), "type": "app_mention"}, "Ev1")
    results = [await archive.take(mention) for _ in range(3)]
    assert [r.outcome for r in results] == ["stored", "duplicate", "duplicate"]
    twin = await archive.take(callback(message(text), "Ev2"))
    assert twin.outcome == "stored"
    assert twin.question_event_id == results[0].question_event_id  # deduped on (channel, ts)
    events = rows(database_url, "SELECT event_type, payload FROM events")
    assert len(events) == 1
    assert events[0]["event_type"] == "slack.question"
    assert events[0]["payload"]["text"] == text
    archived = rows(database_url, "SELECT channel_id, ts, message_at, text FROM slack_messages")
    assert len(archived) == 1
    assert archived[0]["message_at"] == datetime.fromtimestamp(float(TS), UTC)


async def test_concurrent_deliveries_of_one_event_store_it_once(
    archive: Archive, database_url: str
) -> None:
    body = callback({**message("<@UBOT> race"), "type": "app_mention"}, "EvRace")
    results = await asyncio.gather(*(archive.take(body) for _ in range(4)))
    assert sorted(r.outcome for r in results) == ["duplicate"] * 3 + ["stored"]
    assert rows(database_url, "SELECT count(*) AS n FROM events")[0]["n"] == 1


async def test_edits_keep_history_and_never_go_backwards(
    archive: Archive, database_url: str
) -> None:
    await archive.take(callback(message("v1"), "Ev1"))

    def edit(text: str, previous: str, edited: str, event_id: str) -> dict[str, Any]:
        inner = {**message(text), "edited": {"user": "U1", "ts": edited}}
        return callback(
            {
                "type": "message",
                "subtype": "message_changed",
                "channel": "C1",
                "message": inner,
                "previous_message": message(previous),
            },
            event_id,
        )

    await archive.take(edit("v2", "v1", "1732579300.000000", "Ev2"))
    await archive.take(edit("v3", "v2", "1732579400.000000", "Ev3"))
    await archive.take(edit("v2", "v1", "1732579300.000000", "Ev2-late"))  # out of order
    await archive.take(callback(message("v1"), "Ev1-again"))  # a stale redelivery
    (row,) = rows(database_url, "SELECT text, previous_texts, edited_at FROM slack_messages")
    assert row["text"] == "v3"
    assert row["previous_texts"] == ["v1", "v2"]


async def test_a_delete_empties_the_message_and_nothing_revives_it(
    archive: Archive, database_url: str
) -> None:
    await archive.take(callback(message("secret plans"), "Ev1"))
    deleted = {"type": "message", "subtype": "message_deleted", "channel": "C1",
               "deleted_ts": TS, "previous_message": message("secret plans")}  # fmt: skip
    await archive.take(callback(deleted, "Ev2"))
    await archive.take(callback(message("secret plans"), "Ev3"))  # e.g. an app_mention twin
    (row,) = rows(database_url, "SELECT text, raw, deleted_at FROM slack_messages")
    assert row["deleted_at"] is not None
    assert row["text"] == ""
    assert "secret" not in str(row["raw"])
    search = "SELECT 1 FROM slack_messages WHERE search @@ plainto_tsquery('secret')"
    found = rows(database_url, search)
    assert found == []


async def test_a_delete_before_the_message_leaves_a_tombstone(
    archive: Archive, database_url: str
) -> None:
    deleted = {"type": "message", "subtype": "message_deleted", "channel": "C1", "deleted_ts": TS}
    await archive.take(callback(deleted, "Ev1"))
    await archive.take(callback(message("late arrival"), "Ev2"))
    (row,) = rows(database_url, "SELECT text, deleted_at FROM slack_messages")
    assert row["text"] == ""
    assert row["deleted_at"] is not None


async def test_reactions_are_a_set_per_name(archive: Archive, database_url: str) -> None:
    await archive.take(callback(message("ship it"), "Ev0"))

    def reaction(kind: str, user: str, event_id: str) -> dict[str, Any]:
        item = {"type": "message", "channel": "C1", "ts": TS}
        return callback({"type": kind, "user": user, "reaction": "tada", "item": item}, event_id)

    for n, (kind, user) in enumerate(
        [
            ("reaction_added", "U1"),
            ("reaction_added", "U2"),
            ("reaction_added", "U1"),
            ("reaction_removed", "U1"),
        ]
    ):
        await archive.take(reaction(kind, user, f"Ev{n + 1}"))
    assert rows(database_url, "SELECT reactions FROM slack_messages")[0]["reactions"] == {
        "tada": ["U2"]
    }
    await archive.take(reaction("reaction_removed", "U2", "Ev9"))
    assert rows(database_url, "SELECT reactions FROM slack_messages")[0]["reactions"] == {}


async def test_a_reaction_before_its_message_is_kept(archive: Archive, database_url: str) -> None:
    item = {"type": "message", "channel": "C1", "ts": TS}
    early = {"type": "reaction_added", "user": "U2", "reaction": "eyes", "item": item}
    await archive.take(callback(early, "Ev1"))
    await archive.take(callback(message("here now"), "Ev2"))
    (row,) = rows(
        database_url, "SELECT text, previous_texts, reactions, user_id FROM slack_messages"
    )
    assert row == {"text": "here now", "previous_texts": [], "reactions": {"eyes": ["U2"]},
                   "user_id": "U1"}  # fmt: skip


async def test_channels_members_and_users_are_kept_current(
    archive: Archive, database_url: str
) -> None:
    created = {"type": "channel_created", "channel": {"id": "C9", "name": "ops", "created": 1}}
    await archive.take(callback(created, "Ev1"))
    await archive.take(
        callback({"type": "channel_rename", "channel": {"id": "C9", "name": "sre"}}, "Ev2")
    )
    await archive.take(callback({"type": "channel_archive", "channel": "C9"}, "Ev3"))
    joined = {"type": "member_joined_channel", "user": "U7", "channel": "G1", "channel_type": "G"}
    await archive.take(callback(joined, "Ev4"))
    user = {"type": "team_join", "user": {"id": "U7", "name": "grace", "tz": "Europe/Paris",
                                          "profile": {"display_name": "Grace H"}}}  # fmt: skip
    await archive.take(callback(user, "Ev5"))
    channels = {
        r["id"]: r
        for r in rows(database_url, "SELECT id, name, is_private, is_archived FROM slack_channels")
    }
    assert (channels["C9"]["name"], channels["C9"]["is_archived"]) == ("sre", True)
    assert channels["G1"]["is_private"] is True
    assert rows(database_url, "SELECT channel_id, user_id FROM slack_channel_members") == [
        {"channel_id": "G1", "user_id": "U7"}
    ]
    (person,) = rows(database_url, "SELECT name, display_name, tz FROM slack_users")
    assert person == {"name": "grace", "display_name": "Grace H", "tz": "Europe/Paris"}
    left = {**joined, "type": "member_left_channel"}
    await archive.take(callback(left, "Ev6"))
    assert rows(database_url, "SELECT * FROM slack_channel_members") == []


async def test_bad_payloads_are_recorded_and_do_not_stop_intake(
    archive: Archive, database_url: str
) -> None:
    bad = [
        callback({"type": "message", "channel": "C1", "text": "no ts"}, "Bad1"),
        callback(message("x" * 60_000), "Bad2"),
        callback({"type": "never_heard_of_it"}, "Bad3"),
        {"type": "event_callback", "event": "not an object"},
    ]
    outcomes = [(await archive.take(body)).outcome for body in bad]
    assert outcomes == ["rejected"] * 4
    assert (await archive.take(callback(message("fine"), "Good"))).outcome == "stored"
    errors = rows(database_url, "SELECT event_id, error, raw FROM slack_ingest_errors ORDER BY id")
    assert [e["event_id"] for e in errors] == ["Bad1", "Bad2", "Bad3", None]
    assert "characters" in errors[1]["error"]
    assert "truncated" in errors[1]["raw"]  # huge payloads are not stored whole
    assert rows(database_url, "SELECT text FROM slack_messages") == [{"text": "fine"}]


async def test_partitions_are_weekly_made_ahead_and_on_demand(
    archive: Archive, database_url: str
) -> None:
    assert await archive.partitions.storage_mode() == "partitioned"
    now = datetime(2030, 1, 3, 12, tzinfo=UTC)  # a Thursday
    created = await archive.partitions.ensure_ahead(now)
    assert created >= 5
    assert await archive.partitions.ensure_ahead(now) == 0  # idempotent
    bounds = rows(
        database_url,
        "SELECT c.relname, pg_get_expr(c.relpartbound, c.oid) AS bound FROM pg_inherits i "
        "JOIN pg_class c ON c.oid = i.inhrelid "
        "WHERE i.inhparent = 'slack_messages'::regclass AND c.relname = 'slack_messages_w20291231'",
    )
    assert bounds[0]["bound"] == (
        "FOR VALUES FROM ('2029-12-31 00:00:00+00') TO ('2030-01-07 00:00:00+00')"
    )
    # A message from years ago gets its week on demand, by several writers at once.
    old = "1262304000.000001"  # 2010-01-01, a Friday
    bodies = [callback(message("old news", ts=old), f"Old{n}") for n in range(3)]
    fresh = [Archive(archive.pool, BOT) for _ in bodies]  # separate caches: real races
    await asyncio.gather(*(a.take(b) for a, b in zip(fresh, bodies, strict=True)))
    assert week_start(float(old)) == datetime(2009, 12, 28, tzinfo=UTC).timestamp()
    assert rows(
        database_url, "SELECT to_regclass('slack_messages_w20091228') IS NOT NULL AS ok"
    ) == [{"ok": True}]
    assert rows(database_url, "SELECT count(*) AS n FROM slack_messages_w20091228")[0]["n"] == 1


async def test_the_archive_s_statistics_are_refreshed_by_one_process_at_a_time(
    archive: Archive, database_url: str
) -> None:
    await archive.take(callback(message("standup notes", ts=TS), "Ev1"))
    statistics = (
        "SELECT most_common_elems::text AS words FROM pg_stats WHERE tablename ="
        " 'slack_messages' AND inherited AND attname = 'search'"
    )
    assert rows(database_url, statistics) == []  # autovacuum never analyzes the parent
    with psycopg.connect(database_url, autocommit=True) as other:
        locked = other.execute(query("try_lock_analyze")).fetchone()
        assert locked is not None
        assert locked[0]  # another process is at it
        assert await archive.partitions.analyze() is False
        # released here, not by the disconnect (which the server sees a moment later)
        other.execute(query("unlock_analyze"))
    assert await archive.partitions.analyze() is True
    assert "standup" in rows(database_url, statistics)[0]["words"]


async def counted(archive: Archive) -> None:
    """What the pool's connections wrote, in the server's row counts now: a backend
    otherwise reports them up to 10 s after it goes idle."""
    async with contextlib.AsyncExitStack() as stack:
        pool = archive.pool
        for conn in [await stack.enter_async_context(pool.connection()) for _ in range(4)]:
            await conn.execute("SELECT pg_stat_force_next_flush()")


async def test_the_statistics_are_refreshed_once_the_archive_has_grown(
    archive: Archive, database_url: str
) -> None:
    analyzed = "SELECT reltuples::bigint AS n FROM pg_class WHERE oid = 'slack_messages'::regclass"
    partitions = archive.partitions
    assert await partitions.analyze_if_stale() is False  # empty: nothing to learn
    await archive.take(callback(message("standup notes", ts=TS), "Ev0"))
    await counted(archive)
    assert await partitions.analyze_if_stale() is True  # never analyzed
    assert rows(database_url, analyzed) == [{"n": 1}]
    assert await partitions.analyze_if_stale() is False
    for n in range(1, 51):  # 51 rows: not more than 50 + 1.1 x 1
        ts = f"{int(float(TS)) + n}.000100"
        await archive.take(callback(message(f"note {n}", ts=ts), f"Ev{n}"))
    await counted(archive)
    assert await partitions.analyze_if_stale() is False
    await archive.take(callback(message("one more", ts="1732579300.000100"), "Ev51"))
    await counted(archive)
    assert await partitions.analyze_if_stale() is True
    assert rows(database_url, analyzed) == [{"n": 52}]


async def test_a_dropped_partition_is_recreated_on_the_next_write(
    archive: Archive, database_url: str
) -> None:
    await archive.take(callback(message("first", ts=TS), "Ev1"))
    rows(database_url, "DROP TABLE slack_messages_w20241125")  # someone else's retention job
    await archive.take(callback(message("second", ts="1732579200.000200"), "Ev2"))
    assert rows(database_url, "SELECT text FROM slack_messages") == [{"text": "second"}]


async def test_imports_copy_in_bulk_and_never_overwrite(
    archive: Archive, database_url: str
) -> None:
    await archive.take(callback(message("edited live", ts="1732579200.000003"), "Ev1"))
    batch = [
        message_row("C1", message(f"imported {n}", ts=f"1732579200.{n:06d}")) for n in range(1, 6)
    ]
    assert await archive.import_messages(batch) == 4  # one was already there
    assert await archive.import_messages(batch) == 0  # idempotent
    texts = [r["text"] for r in rows(database_url, "SELECT text FROM slack_messages ORDER BY ts")]
    assert texts == ["imported 1", "imported 2", "edited live", "imported 4", "imported 5"]


async def test_imports_survive_nul_characters(archive: Archive, database_url: str) -> None:
    broken = message_row("C1", message("before\x00after", ts="1732579200.000001"))
    assert await archive.import_messages([broken]) == 1
    (row,) = rows(database_url, "SELECT text, raw->>'text' AS raw_text FROM slack_messages")
    assert row == {"text": "beforeafter", "raw_text": "beforeafter"}
