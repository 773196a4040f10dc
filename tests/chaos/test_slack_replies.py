"""A `heron run` killed between posting an answer and recording it: still one reply."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
from collections.abc import Iterator

import psycopg
import pytest

from heron.testing.slack import SlackFake
from tests.conftest import wait_until

pytestmark = pytest.mark.slow


def heron_run(database_url: str, fake: SlackFake) -> subprocess.Popen[str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith(("SLACK_", "DATABASE_"))}
    env |= {
        "DATABASE_URL": database_url,
        "SLACK_BOT_TOKEN": fake.bot_token,
        "SLACK_APP_TOKEN": fake.app_token,
        "SLACK_API_URL": fake.api_url,
        "HERON_HTTP_PORT": "0",
        "EVENT_VISIBILITY_TIMEOUT": "2.0",  # the killed process's lease runs out soon
        "HERON_RESCUE_INTERVAL": "0.2",
        "RETRY_BACKOFF_BASE_SECONDS": "0",
        "HERON_EMBEDDING_PROVIDER": "hashing",
        "HERON_LOG_FORMAT": "json",
    }
    return subprocess.Popen(
        [sys.executable, "-m", "heron", "run", "--workers", "2"],
        env=env,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.PIPE,
        text=True,
    )


@pytest.fixture
def fake() -> Iterator[SlackFake]:
    with SlackFake() as fake:
        yield fake


def test_a_worker_killed_after_posting_leaves_exactly_one_reply(
    database_url: str, fake: SlackFake
) -> None:
    ada = fake.add_user("ada").id
    eng = fake.add_channel("eng", members=[ada]).id
    fake.hold_response_next("chat.postMessage")  # the post lands; its answer waits
    first = heron_run(database_url, fake)
    second = None
    try:
        fake.wait_connected(timeout=30)
        question = fake.post_user_message(eng, ada, f"<@{fake.bot_user_id}> are you there?")
        # The reply is in the thread and the worker is waiting for Slack's answer: the
        # worst moment to die.
        wait_until(lambda: len(fake.bot_replies(eng, question["ts"])) == 1, 30, "the post")
        first.send_signal(signal.SIGKILL)
        first.wait(timeout=10)
        second = heron_run(database_url, fake)

        def completed() -> bool:
            with psycopg.connect(database_url) as conn:
                row = conn.execute("SELECT status FROM events").fetchone()
            return row == ("completed",)

        wait_until(completed, 60, "the event completed by the second process")
        with psycopg.connect(database_url) as conn:
            outcomes = [r[0] for r in conn.execute(
                "SELECT outcome FROM event_attempts ORDER BY attempt").fetchall()]  # fmt: skip
            reply = conn.execute("SELECT message_ts, post_attempts FROM slack_replies").fetchone()
        assert outcomes == ["lease_expired", "completed"]
        (posted,) = fake.bot_replies(eng, question["ts"])
        assert reply == (posted["ts"], 1)  # adopted, not posted again
        assert len(fake.calls_to("chat.postMessage")) == 1
    finally:
        fake.release_responses()
        for proc in (first, second):
            if proc is not None:
                if proc.poll() is None:
                    proc.send_signal(signal.SIGINT)
                proc.communicate(timeout=30)  # and close its pipe
