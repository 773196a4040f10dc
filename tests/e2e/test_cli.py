"""The real `heron` command as a subprocess."""

from __future__ import annotations

import os
import shutil
import signal
import subprocess
import sys
from pathlib import Path

import psycopg
import pytest

from tests.conftest import wait_until

HERON = [sys.executable, "-m", "heron"]


def env(**extra: str) -> dict[str, str]:
    base = {
        k: v for k, v in os.environ.items() if k != "DATABASE_URL" and not k.startswith("SLACK_")
    }
    return base | {"HERON_LOG_FORMAT": "json", "COLUMNS": "200", "HERON_HTTP_PORT": "0"} | extra


def heron(
    *args: str, database_url: str | None = None, **extra: str
) -> subprocess.CompletedProcess[str]:
    variables = env(**extra) | ({"DATABASE_URL": database_url} if database_url else {})
    return subprocess.run(
        [*HERON, *args], env=variables, capture_output=True, text=True, timeout=120
    )


def assert_one_line_error(result: subprocess.CompletedProcess[str], *fragments: str) -> None:
    assert result.returncode == 1, result
    assert "Traceback" not in result.stderr
    lines = [line for line in result.stderr.splitlines() if line.startswith("error:")]
    assert len(lines) == 1, result.stderr
    for fragment in fragments:
        assert fragment in lines[0]


def test_migrate_status_and_event_commands(database_url):
    assert "up to date" in heron("db", "migrate", database_url=database_url).stdout
    enqueued = heron(
        "events", "enqueue", "noop", "--payload", '{"a": 1}', database_url=database_url
    )
    assert enqueued.returncode == 0
    assert "event 1 (pending)" in enqueued.stdout
    with psycopg.connect(database_url) as conn:
        conn.execute(
            "INSERT INTO mcp_server_status (name, transport, ok, tools, error) VALUES "
            "('docs', 'http', true, '{search_docs,get_document}', NULL), "
            "('linear', 'http', false, '{}', 'connection refused')"
        )
        conn.execute(
            "INSERT INTO agent_usage (model, outcome, input_tokens, output_tokens, cost_usd) "
            "VALUES ('anthropic:claude-sonnet-4-6', 'answered', 1000, 200, 0.006)"
        )
    status = heron("status", database_url=database_url)
    assert status.returncode == 0
    assert "pending" in status.stdout
    assert "search_docs, get_document" in status.stdout
    assert "unavailable: connection refused" in status.stdout
    assert "1 runs, 1200 tokens, $0.0060 estimated" in status.stdout
    listed = heron("events", "list", "--status", "pending", database_url=database_url)
    assert "noop" in listed.stdout
    shown = heron("events", "show", "1", database_url=database_url)
    assert '"a": 1' in shown.stdout
    assert "attempts" in shown.stdout
    db_status = heron("db", "status", database_url=database_url)
    assert "pending:    none" in db_status.stdout
    assert "PostgreSQL" in db_status.stdout


def test_bad_input_gives_one_line_and_non_zero_exit(database_url):
    assert_one_line_error(
        heron("events", "show", "424242", database_url=database_url), "no event with id 424242"
    )
    assert_one_line_error(
        heron("events", "replay", "424242", database_url=database_url), "no event"
    )
    assert_one_line_error(
        heron("events", "enqueue", "x", "--payload", "[1", database_url=database_url),
        "not valid JSON",
    )
    assert heron("events", "list", "--status", "bogus", database_url=database_url).returncode == 2


def test_bad_or_unreachable_database_is_one_line_without_secrets():
    down = heron("status", database_url="postgresql://heron:hunter2@127.0.0.1:1/heron")
    assert_one_line_error(down, "database unavailable")
    assert "hunter2" not in down.stderr + down.stdout
    wrong = heron("status", database_url="mysql://heron:hunter2@localhost/heron")
    assert_one_line_error(wrong, "DATABASE_URL")
    assert "hunter2" not in wrong.stderr
    invalid = heron("status", WORKER_POOL_SIZE="lots")
    assert_one_line_error(invalid, "invalid configuration")


def test_db_url_redacts_the_password(database_url):
    shown = heron("db", "url", database_url="postgresql://heron:hunter2@db.example:5432/heron")
    assert shown.stdout.strip() == "postgresql://heron:***@db.example:5432/heron"


def test_run_processes_events_and_stops_gracefully_on_sigint(database_url):
    heron("events", "enqueue", "noop", database_url=database_url)
    heron("events", "enqueue", "unknown-type", database_url=database_url)
    proc = subprocess.Popen(
        [*HERON, "run", "--workers", "2"],
        env=env(DATABASE_URL=database_url, HERON_POLL_INTERVAL="30"),
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )
    try:

        def settled() -> bool:
            with psycopg.connect(database_url) as conn:
                rows = dict(conn.execute("SELECT event_type, status FROM events").fetchall())
            return rows == {"noop": "completed", "unknown-type": "failed"}

        wait_until(settled, timeout=30, what="heron run to handle both events")
        # a third event arrives while it idles: NOTIFY must wake it (the poll is 30 s)
        heron("events", "enqueue", "noop", "--dedupe-key", "late", database_url=database_url)

        def late_done() -> bool:
            with psycopg.connect(database_url) as conn:
                row = conn.execute("SELECT status FROM events WHERE dedupe_key = 'late'").fetchone()
            return row == ("completed",)

        wait_until(late_done, timeout=10, what="the late event")
    finally:
        proc.send_signal(signal.SIGINT)
        _, stderr = proc.communicate(timeout=30)
    assert proc.returncode == 0, stderr
    assert "worker pool stopped" in stderr


@pytest.mark.slow
def test_embedded_database_is_created_reused_and_stopped(tmp_path: Path):
    data_dir = tmp_path / "state"
    try:
        first = heron("db", "url", HERON_DATA_DIR=str(data_dir))
        assert first.returncode == 0, first.stderr
        assert first.stdout.startswith("postgresql://postgres:***@/heron?host=")
        assert (data_dir / "postgres" / "PG_VERSION").exists()
        migrated = heron("db", "migrate", HERON_DATA_DIR=str(data_dir))
        assert "applied 001_initial_schema" in migrated.stdout
        again = heron("db", "migrate", HERON_DATA_DIR=str(data_dir))
        assert "up to date" in again.stdout  # same cluster, reused
    finally:
        stopped = heron("db", "stop", HERON_DATA_DIR=str(data_dir))
        shutil.rmtree(data_dir, ignore_errors=True)
    assert "stopped" in stopped.stdout
