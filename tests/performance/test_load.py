"""The load suite, short: locust sends signed Events API requests to `heron run` on loopback.

The full run (50 users, 60 s) is `make load`, which prints requests/s and ack latency
against the targets; speed is measured there, not asserted here. This run asserts what
must hold under any load: no request failed, and every event acked with a 200 is in the
database exactly once, redeliveries (sent on purpose, with Slack's retry headers) and
mention twins included.
"""

from __future__ import annotations

import asyncio
import importlib.util
import re
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import psycopg
import pytest

from heron.bench.load import LoadSettings, run_load, summary
from heron.queue.store import open_pool
from heron.slack.archive import Archive, channel_params, query
from heron.slack.events import BotIdentity, SaveChannel
from tests.conftest import rows

LOCUSTFILE = Path(__file__).with_name("locustfile.py")


@pytest.mark.slow
def test_signed_events_under_load_are_acked_and_stored_exactly_once(
    database_url: str, tmp_path: Path
) -> None:
    assert importlib.util.find_spec("locust") is not None, "locust missing: run `make install`"
    settings = LoadSettings(
        users=20,
        spawn_rate=10,
        seconds=12,
        mention_share=0.1,
        retry_share=0.1,
        heron_workers=2,
        history=300,
        locustfile=LOCUSTFILE,
    )
    result = run_load(database_url, settings, log_dir=tmp_path)
    print(summary(result))
    assert result["failures"] == 0, result["statuses"]
    check = result["exactly_once"]
    assert check["ok"], (check["problems"], check["examples"])
    # The run did what it is for: redeliveries and mention twins were sent and acked.
    assert check["acked_redeliveries"] > 0
    assert check["acked_questions"] > 0
    assert result["by_kind"]["mention-message"] > 0
    assert result["ack_ms"] is not None
    # The history was there before the run, with its vectors, and is not counted as the run's.
    history = "SELECT count(*) AS n FROM slack_messages WHERE message_at < now() - interval '1h'"
    assert rows(database_url, history) == [{"n": 300}]
    assert rows(database_url, "SELECT count(*) AS n FROM slack_message_embeddings")[0]["n"] >= 300


# -- what keeps the ack path short: one statement for a message, no lock on its channel ---

BOT = BotIdentity(user_id="UBOT", bot_id="BBOT")
TS = "1732579200.000100"


@pytest.fixture
async def archive(database_url: str) -> AsyncIterator[Archive]:
    pool = open_pool(database_url, max_size=2, name="test-load")
    await pool.open()
    try:
        yield Archive(pool, BOT)
    finally:
        await pool.close()


def channel_message(ts: str, event_id: str) -> dict[str, Any]:
    event = {"type": "message", "channel": "C1", "channel_type": "channel", "user": "U1",
             "text": "busy here", "ts": ts}  # fmt: skip
    return {"type": "event_callback", "team_id": "T1", "event_id": event_id, "event": event}


def locked(database_url: str, channel_id: str) -> bool:
    """Whether another transaction holds the channel's row lock (asks without waiting)."""
    with psycopg.connect(database_url) as conn:
        try:
            conn.execute(
                "SELECT 1 FROM slack_channels WHERE id = %s FOR UPDATE NOWAIT", (channel_id,)
            )
        except psycopg.errors.LockNotAvailable:
            return True
    return False


async def test_a_message_in_a_known_channel_leaves_the_channel_row_unlocked(
    archive: Archive, database_url: str
) -> None:
    # Every message carries its channel; were that row locked until the ack's commit,
    # the messages of one channel would be acked one at a time.
    assert (await archive.take(channel_message(TS, "Ev1"))).outcome == "stored"
    same = SaveChannel(id="C1", is_private=False, is_im=False, is_mpim=False)
    changed = SaveChannel(id="C1", is_archived=True)
    async with archive.pool.connection() as conn, conn.transaction():
        await conn.execute(query("save_channel"), channel_params(same))
        assert not locked(database_url, "C1")
        await conn.execute(query("save_channel"), channel_params(changed))
        assert locked(database_url, "C1")  # a real change still writes (and locks) it
    with psycopg.connect(database_url) as conn:
        row = conn.execute("SELECT is_archived FROM slack_channels WHERE id = 'C1'").fetchone()
    assert row == (True,)


async def test_a_plain_message_delivered_at_once_four_times_is_stored_once(
    archive: Archive, database_url: str
) -> None:
    body = channel_message(TS, "EvRace")
    results = await asyncio.gather(*(archive.take(body) for _ in range(4)))
    assert sorted(r.outcome for r in results) == ["duplicate"] * 3 + ["stored"]
    with psycopg.connect(database_url) as conn:
        counts = conn.execute(
            "SELECT (SELECT count(*) FROM slack_messages), "
            "(SELECT count(*) FROM slack_event_receipts), "
            "(SELECT count(*) FROM slack_channels WHERE id = 'C1' AND NOT is_private)"
        ).fetchone()
    assert counts == (1, 1, 1)


def _normalised(sql: str) -> str:
    code = " ".join(line for line in sql.splitlines() if not line.strip().startswith("--"))
    return re.sub(r"\s+", " ", code).replace("( ", "(").replace(" )", ")").strip()


def test_the_one_statement_path_inserts_a_message_as_save_message_does() -> None:
    # take_message repeats save_message's insert (gated on the receipt); they must not drift.
    save = _normalised(query("save_message"))
    take = _normalised(query("take_message"))
    start = take.index("INSERT INTO slack_messages")
    inserted = take[start : take.rindex(") SELECT event_id FROM receipt")]
    expected = save.replace("VALUES (", "SELECT ", 1).replace(
        "%(metadata)s, %(raw)s) ON CONFLICT", "%(metadata)s, %(raw)s FROM receipt ON CONFLICT"
    )
    assert inserted == expected
