"""The README's examples run as written (they are the seed's, with `heron` imports)."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
from pathlib import Path

import psycopg

from tests.conftest import wait_until

ROOT = Path(__file__).parents[2]


def run_env(database_url: str) -> dict[str, str]:
    return os.environ | {"DATABASE_URL": database_url, "HERON_LOG_FORMAT": "json"}


def test_readme_shows_the_examples_verbatim():
    readme = (ROOT / "README.md").read_text()
    for example in ("worker_pool.py", "event_processor.py"):
        assert (ROOT / "examples" / example).read_text().strip() in readme


def test_event_processor_example(database_url):
    result = subprocess.run(
        [sys.executable, str(ROOT / "examples" / "event_processor.py")],
        env=run_env(database_url),
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert result.returncode == 0, result.stderr
    assert "Processing app_mention: {'text': 'hello'}" in result.stdout
    assert "'completed': 1" in result.stdout


def test_worker_pool_example(database_url):
    with psycopg.connect(database_url, autocommit=True) as conn:
        conn.execute(
            "INSERT INTO events (event_type, payload) VALUES ('greeting', %s)", ['{"to": "you"}']
        )
    proc = subprocess.Popen(
        [sys.executable, str(ROOT / "examples" / "worker_pool.py")],
        env=run_env(database_url),
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )

    def done() -> bool:
        with psycopg.connect(database_url) as conn:
            return conn.execute("SELECT status FROM events").fetchone() == ("completed",)

    try:
        wait_until(done, timeout=30, what="the example to process the event")
    finally:
        proc.send_signal(signal.SIGTERM)
        out, err = proc.communicate(timeout=30)
    assert proc.returncode == 0, err
    assert "Processing greeting #1: {'to': 'you'}" in out
