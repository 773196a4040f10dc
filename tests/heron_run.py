"""`heron run` as a subprocess with no Slack tokens (the local workspace), for the e2e and
browser tests."""

from __future__ import annotations

import os
import queue
import re
import signal
import subprocess
import sys
import threading
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


def workspace_url(lines: queue.Queue[str], seen: list[str] | None = None) -> str:
    """The local workspace's URL from the start line; every line read goes into `seen`."""
    seen = [] if seen is None else seen
    while True:
        try:
            line = lines.get(timeout=90)
        except queue.Empty:
            raise AssertionError(f"no workspace URL printed; stderr: {seen}") from None
        seen.append(line)
        if found := URL_LINE.search(line):
            return found.group(1)
