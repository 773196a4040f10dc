"""Heron's Slack side end to end: the real slack_bolt and slack_sdk against the Slack fake,
the archive and queue on real PostgreSQL, replies through the outbox."""

from __future__ import annotations

import time
from collections.abc import AsyncIterator, Iterator
from contextlib import asynccontextmanager
from typing import Any

import psycopg
import pytest

from heron.database.connection import DatabaseConnection
from heron.runtime import Runtime
from heron.testing.slack import FileSpec, SlackFake
from tests.conftest import eventually, make_config, rows


@pytest.fixture
def fake() -> Iterator[SlackFake]:
    with SlackFake() as fake:
        yield fake


class Answers:
    """The responder: answers in Markdown and counts how often it was asked."""

    def __init__(
        self, text: str = "Run **VACUUM**; see [the docs](https://example.org/vacuum)."
    ) -> None:
        self.text = text
        self.asked: list[dict[str, Any]] = []

    async def __call__(self, question: dict[str, Any]) -> str:
        self.asked.append(question)
        return self.text


@asynccontextmanager
async def running_heron(
    database_url: str, fake: SlackFake, respond: Answers | None
) -> AsyncIterator[Runtime]:
    config = make_config(
        database_url,
        slack_bot_token=fake.bot_token,
        slack_app_token=fake.app_token,
        slack_signing_secret=fake.signing_secret,
        slack_api_url=fake.api_url,
        heron_http_port=0,
        worker_pool_size=2,
        heron_embedding_provider="hashing",
    )
    db = DatabaseConnection(database_url)
    runtime = Runtime(config, db, respond=respond)
    await runtime.start()
    try:
        yield runtime
    finally:
        await runtime.stop()
        db.dispose()


@pytest.fixture
async def heron(database_url: str, fake: SlackFake) -> AsyncIterator[tuple[Runtime, Answers]]:
    answers = Answers()
    async with running_heron(database_url, fake, answers) as runtime:
        yield runtime, answers


def user(fake: SlackFake) -> str:
    """Ada, in #eng with the bot (Slack tells an app only about conversations it is in)."""
    ada = fake.add_user("ada", real_name="Ada Lovelace", tz="Europe/London").id
    fake.add_channel("eng", members=[ada])
    return ada


async def test_a_mention_over_socket_mode_is_archived_queued_acked_and_answered_once(
    heron: tuple[Runtime, Answers], fake: SlackFake, database_url: str
) -> None:
    _, answers = heron
    ada = user(fake)
    question = fake.post_user_message("eng", ada, f"<@{fake.bot_user_id}> how do I vacuum?")
    eng = fake.channel("eng").id
    await eventually(lambda: len(fake.bot_replies(eng, question["ts"])) == 1, what="a reply")
    (reply,) = fake.bot_replies(eng, question["ts"])
    assert reply["text"] == "Run *VACUUM*; see <https://example.org/vacuum|the docs>."
    assert reply["metadata"]["event_type"] == "heron_reply"
    # Both deliveries (app_mention and message.channels) were acked; one question.
    for delivery in fake.deliveries:
        await fake.wait_for_event_ack_async(delivery.event_id)
    assert len(answers.asked) == 1
    (event,) = rows(database_url, "SELECT event_type, status, payload FROM events")
    assert event["event_type"] == "slack.question"
    assert event["payload"]["user"] == ada
    await eventually(
        lambda: rows(database_url, "SELECT status FROM events") == [{"status": "completed"}],
        what="the event completed",
    )
    # The archive holds the question and, from the echo of Heron's own post, the reply,
    # which never became a question.
    await eventually(
        lambda: len(rows(database_url, "SELECT 1 FROM slack_messages")) == 2, what="the echo"
    )
    assert len(rows(database_url, "SELECT 1 FROM events")) == 1
    assert len(fake.bot_replies(eng, question["ts"])) == 1


async def test_a_direct_message_is_answered_in_its_thread(
    heron: tuple[Runtime, Answers], fake: SlackFake
) -> None:
    ada = user(fake)
    dm = fake.open_dm(ada)
    question = fake.post_user_message(dm.id, ada, "what is a hypertable?")
    await eventually(lambda: len(fake.bot_replies(dm.id, question["ts"])) == 1, what="a DM reply")
    assert heron[1].asked[0]["kind"] == "dm"


async def test_an_event_delivered_three_times_is_one_question(
    heron: tuple[Runtime, Answers], fake: SlackFake, database_url: str
) -> None:
    ada = user(fake)
    eng = fake.channel("eng").id
    event = {
        "type": "app_mention",
        "channel": eng,
        "user": ada,
        "text": f"<@{fake.bot_user_id}> once please",
        "ts": "1764115200.000100",
        "event_ts": "1764115200.000100",
    }
    fake.deliver_event(event, event_id="EvTriple", duplicate=3)
    await eventually(
        lambda: len([d for d in fake.deliveries if d.acked and d.event_id == "EvTriple"]) == 3,
        what="3 acks",
    )
    await eventually(
        lambda: rows(database_url, "SELECT status FROM events") == [{"status": "completed"}]
    )
    posts = fake.calls_to("chat.postMessage")
    assert [p["thread_ts"] for p in posts] == ["1764115200.000100"]
    assert len(rows(database_url, "SELECT 1 FROM events")) == 1
    assert (
        len(rows(database_url, "SELECT 1 FROM slack_event_receipts WHERE event_id = 'EvTriple'"))
        == 1
    )


async def test_edits_deletes_and_reactions_reach_the_archive(
    heron: tuple[Runtime, Answers], fake: SlackFake, database_url: str
) -> None:
    ada = user(fake)
    eng = fake.channel("eng").id
    posted = fake.post_user_message("eng", ada, "the deploy is at 5")
    fake.edit_message(eng, posted["ts"], "the deploy is at 6")
    fake.add_reaction(eng, posted["ts"], ada, "thumbsup")
    doomed = fake.post_user_message("eng", ada, "my password is hunter2")
    fake.delete_message(eng, doomed["ts"])

    def archived() -> dict[str, dict[str, Any]]:
        found = rows(
            database_url,
            "SELECT ts, text, previous_texts, reactions, deleted_at FROM slack_messages",
        )
        return {row["ts"]: row for row in found}

    await eventually(
        lambda: (
            archived().get(doomed["ts"], {}).get("deleted_at") is not None
            and archived()[posted["ts"]]["reactions"] == {"thumbsup": [ada]}
            and archived()[posted["ts"]]["text"] == "the deploy is at 6"
        ),
        what="the edit, the reaction and the delete",
    )
    kept = archived()[posted["ts"]]
    assert (kept["text"], kept["previous_texts"]) == ("the deploy is at 6", ["the deploy is at 5"])
    assert archived()[doomed["ts"]]["text"] == ""


async def test_the_events_api_verifies_signatures_and_answers_url_verification(
    heron: tuple[Runtime, Answers], fake: SlackFake, database_url: str
) -> None:
    runtime, _ = heron
    assert runtime.http is not None
    fake.events_api_url = f"{runtime.http.url}/slack/events"
    status, body = await fake.send_url_verification_async("challenge-42")
    assert status == 200
    assert "challenge-42" in body
    ada = user(fake)
    eng = fake.channel("eng").id
    event = {"type": "message", "channel": eng, "channel_type": "channel", "user": ada,
             "text": "signed and sealed", "ts": "1764115300.000100"}  # fmt: skip
    forged = await fake.send_events_api_async(event, event_id="EvForged", bad_signature=True)
    stale = await fake.send_events_api_async(
        event, event_id="EvStale", timestamp=int(time.time()) - 6 * 60
    )
    assert (forged[0], stale[0]) == (401, 401)
    assert rows(database_url, "SELECT 1 FROM slack_messages") == []
    accepted = await fake.send_events_api_async(event, event_id="EvGood")
    assert accepted[0] == 200
    assert rows(database_url, "SELECT text FROM slack_messages") == [{"text": "signed and sealed"}]


async def test_maintenance_refreshes_the_archive_s_statistics_at_start(
    heron: tuple[Runtime, Answers], database_url: str
) -> None:
    # Archive search tells common words by them; autovacuum never analyzes the parent.
    await eventually(
        lambda: (
            rows(
                database_url,
                "SELECT analyze_count AS n FROM pg_stat_user_tables"
                " WHERE relname = 'slack_messages'",
            )
            == [{"n": 1}]
        ),
        what="the whole archive analyzed",
    )


async def test_readiness_reports_slack_workers_and_database(
    heron: tuple[Runtime, Answers], fake: SlackFake
) -> None:
    import aiohttp

    runtime, _ = heron
    assert runtime.http is not None
    async with aiohttp.ClientSession() as session:
        async with session.get(f"{runtime.http.url}/readyz") as response:
            ready = await response.json()
        async with session.get(f"{runtime.http.url}/healthz") as response:
            assert response.status == 200
    assert ready == {
        "status": "ready",
        "checks": {"database": True, "workers": True, "slack": True},
    }


async def test_without_a_model_the_answer_is_what_the_asker_may_read(
    database_url: str, fake: SlackFake
) -> None:
    ada = user(fake)
    bob = fake.add_user("bob").id
    fake.add_channel("ops-private", private=True, members=[bob])
    eng = fake.channel("eng").id
    secret = fake.channel("ops-private").id
    async with running_heron(database_url, fake, respond=None):
        fake.post_user_message("eng", ada, "to vacuum a big table run VACUUM (VERBOSE) at night")
        fake.post_user_message(secret, bob, "the vacuum password is hunter2")
        await eventually(
            lambda: len(rows(database_url, "SELECT 1 FROM slack_messages")) == 2, what="archive"
        )
        question = fake.post_user_message("eng", ada, f"<@{fake.bot_user_id}> how to vacuum?")
        await eventually(lambda: len(fake.bot_replies(eng, question["ts"])) == 1, what="reply")
        again = fake.post_user_message("eng", ada, f"<@{fake.bot_user_id}> vacuum a table?")
        await eventually(lambda: len(fake.bot_replies(eng, again["ts"])) == 1, what="reply 2")
    (reply,) = fake.bot_replies(eng, question["ts"])
    assert "No model is configured" in reply["text"]
    assert "VACUUM (VERBOSE)" in reply["text"]
    assert f"/archives/{eng}/p" in reply["text"]  # a permalink
    assert "hunter2" not in reply["text"]  # Ada is not in the private channel
    assert "how to vacuum" not in reply["text"]  # the question does not answer itself
    # Later answers quote neither Heron's earlier answer nor the earlier question.
    (second,) = fake.bot_replies(eng, again["ts"])
    assert "VACUUM (VERBOSE)" in second["text"]
    assert second["text"].count("No model is configured") == 1
    assert "how to vacuum" not in second["text"]


async def test_assistant_thread_messages_are_questions_answered_in_that_thread(
    heron: tuple[Runtime, Answers], fake: SlackFake
) -> None:
    ada = user(fake)
    pane = fake.start_assistant_thread(ada)
    asked = fake.post_user_message(pane.channel_id, ada, "summarise #eng", thread_ts=pane.thread_ts)
    await eventually(
        lambda: len(fake.bot_replies(pane.channel_id, pane.thread_ts)) == 1, what="the reply"
    )
    assert heron[1].asked[0]["ts"] == asked["ts"]
    assert heron[1].asked[0]["thread_ts"] == pane.thread_ts


async def test_a_shared_text_file_is_read_into_the_archive(
    heron: tuple[Runtime, Answers], fake: SlackFake, database_url: str
) -> None:
    ada = user(fake)
    notes = FileSpec("runbook.md", "# Failover\nPromote the replica with pg_ctl promote.\n",
                     mimetype="text/markdown")  # fmt: skip
    fake.post_user_message("eng", ada, "the runbook", files=[notes])

    def content() -> str | None:
        found = rows(database_url, "SELECT files FROM slack_messages WHERE text = 'the runbook'")
        return found[0]["files"][0].get("content") if found else None

    await eventually(lambda: content() is not None, what="the file's text")
    assert "pg_ctl promote" in str(content())


async def test_bad_payloads_are_recorded_acked_and_do_not_stop_intake(
    heron: tuple[Runtime, Answers], fake: SlackFake, database_url: str
) -> None:
    ada = user(fake)
    eng = fake.channel("eng").id
    bad = fake.deliver_event({"type": "message", "channel": eng, "text": "no ts at all"})
    huge = fake.deliver_event(
        {
            "type": "message",
            "channel": eng,
            "user": ada,
            "ts": "1764115200.000001",
            "text": "x" * 100_000,
        }
    )
    for event_id in (bad, huge):
        assert (await fake.wait_for_event_ack_async(event_id)).acked
    fake.post_user_message("eng", ada, "still listening")
    await eventually(
        lambda: (
            rows(database_url, "SELECT text FROM slack_messages") == [{"text": "still listening"}]
        ),
        what="the next message",
    )
    errors = rows(database_url, "SELECT event_id FROM slack_ingest_errors ORDER BY id")
    assert [e["event_id"] for e in errors] == [bad, huge]


async def test_a_failed_database_write_is_not_acked_and_slack_delivers_again(
    heron: tuple[Runtime, Answers], fake: SlackFake, database_url: str
) -> None:
    ada = user(fake)
    fake.ack_timeout = 0.5
    with psycopg.connect(database_url, autocommit=True) as conn:
        conn.execute("ALTER TABLE slack_event_receipts RENAME TO receipts_away")
        message = fake.post_user_message("eng", ada, "written when the database is back")
        await eventually(
            lambda: any(d.retry_attempt >= 1 for d in fake.deliveries), what="redelivery"
        )
        assert not any(d.acked for d in fake.deliveries)
        assert rows(database_url, "SELECT 1 FROM slack_messages") == []
        conn.execute("ALTER TABLE receipts_away RENAME TO slack_event_receipts")
    await eventually(lambda: any(d.acked for d in fake.deliveries), what="an ack")
    assert rows(database_url, "SELECT ts FROM slack_messages") == [{"ts": message["ts"]}]


async def test_socket_mode_reconnects_after_a_disconnect_frame(
    heron: tuple[Runtime, Answers], fake: SlackFake, database_url: str
) -> None:
    ada = user(fake)
    fake.disconnect("refresh_requested")
    await eventually(lambda: len(fake.calls_to("apps.connections.open")) >= 2, what="reconnect")
    await fake.wait_connected_async(timeout=10)
    fake.post_user_message("eng", ada, "after the refresh")
    await eventually(
        lambda: (
            rows(database_url, "SELECT text FROM slack_messages") == [{"text": "after the refresh"}]
        ),
        what="the message after reconnecting",
    )


async def test_metrics_count_what_happened(
    heron: tuple[Runtime, Answers], fake: SlackFake, database_url: str
) -> None:
    import aiohttp

    runtime, _ = heron
    assert runtime.http is not None
    ada = user(fake)
    eng = fake.channel("eng").id
    fake.fail_next("reactions.add", status=500)  # retried, and counted
    question = fake.post_user_message("eng", ada, f"<@{fake.bot_user_id}> count me")
    await eventually(lambda: len(fake.bot_replies(eng, question["ts"])) == 1, what="a reply")
    fake.deliver_event({"type": "message", "channel": eng, "text": "no ts"})
    await eventually(
        lambda: len(rows(database_url, "SELECT 1 FROM slack_ingest_errors")) == 1, what="error"
    )
    await eventually(
        lambda: rows(database_url, "SELECT status FROM events") == [{"status": "completed"}]
    )
    async with (
        aiohttp.ClientSession() as session,
        session.get(f"{runtime.http.url}/metrics") as response,
    ):
        assert response.status == 200
        text = await response.text()
    lines = set(text.splitlines())
    assert 'heron_queue_events{status="completed"} 1.0' in lines
    assert 'heron_events_processed_total{outcome="completed"} 1.0' in lines
    assert "heron_handler_seconds_count 1.0" in lines
    assert "heron_claim_wait_seconds_count 1.0" in lines
    assert "heron_slack_ingest_errors_total 1.0" in lines
    assert "heron_workers_running 2.0" in lines
    retried = 'heron_slack_api_errors_total{error="internal_error",method="reactions.add"} 1.0'
    assert retried in lines


async def test_a_refused_bot_token_is_a_clear_error_and_nothing_is_left_open(
    database_url: str, fake: SlackFake
) -> None:
    import asyncio

    from heron.slack.service import SlackError

    config = make_config(
        database_url,
        slack_bot_token="xoxb-not-the-right-one",
        slack_app_token=fake.app_token,
        slack_api_url=fake.api_url,
        heron_http_port=0,
    )
    db = DatabaseConnection(database_url)
    runtime = Runtime(config, db)
    with pytest.raises(SlackError, match="refused SLACK_BOT_TOKEN"):
        await runtime.run(asyncio.Event())
    assert runtime.pool.closed
    assert "xoxb-not-the-right-one" not in str(runtime.config.masked())
    db.dispose()
