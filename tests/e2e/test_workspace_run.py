"""`heron run` with no Slack tokens: it says where the local workspace is, and serves it."""

from __future__ import annotations

import json
import os
import queue
import re
import signal
import subprocess
import sys
import threading
import urllib.request
from collections.abc import Iterator
from contextlib import contextmanager

HERON = [sys.executable, "-m", "heron"]
URL_LINE = re.compile(r"open (http://\S+/) to try Heron in the local workspace")


@contextmanager
def heron_run(database_url: str) -> Iterator[tuple[subprocess.Popen[str], queue.Queue[str]]]:
    """`heron run` in the background; its stderr lines arrive on the queue."""
    variables = {
        k: v
        for k, v in os.environ.items()
        if k not in ("DATABASE_URL", "ANTHROPIC_API_KEY") and not k.startswith("SLACK_")
    }
    variables |= {
        "DATABASE_URL": database_url,
        "HERON_HTTP_PORT": "0",
        "HERON_LOG_FORMAT": "json",
        "HERON_EMBEDDING_PROVIDER": "hashing",
        "COLUMNS": "300",
    }
    proc = subprocess.Popen(
        [*HERON, "run", "--workers", "2"],
        env=variables,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.PIPE,
        text=True,
    )
    lines: queue.Queue[str] = queue.Queue()

    def pump() -> None:
        assert proc.stderr is not None
        for line in proc.stderr:
            lines.put(line)

    reader = threading.Thread(target=pump, daemon=True)
    reader.start()
    try:
        yield proc, lines
    finally:
        if proc.poll() is None:
            proc.send_signal(signal.SIGINT)
        proc.wait(timeout=60)
        reader.join(timeout=10)
        if proc.stderr is not None:
            proc.stderr.close()


def test_run_prints_the_workspace_url_and_serves_the_page(database_url: str) -> None:
    with heron_run(database_url) as (proc, lines):
        seen: list[str] = []
        url = None
        while url is None:
            try:
                line = lines.get(timeout=60)
            except queue.Empty:
                raise AssertionError(f"no workspace URL printed; stderr: {seen}") from None
            seen.append(line)
            found = URL_LINE.search(line)
            url = found.group(1) if found else None
        assert any("local workspace" in line and "Heron is running" in line for line in seen)
        with urllib.request.urlopen(url, timeout=10) as response:
            assert response.status == 200
            page = response.read().decode()
        assert 'data-testid="banner"' in page
        assert "not connected to Slack" in page
        with urllib.request.urlopen(f"{url}workspace/api/channels", timeout=10) as response:
            names = [c["name"] for c in json.load(response)["channels"]]
        assert names == ["general", "engineering", "heron"]
        proc.send_signal(signal.SIGINT)
        assert proc.wait(timeout=60) == 0
