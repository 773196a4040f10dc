"""The embedded PostgreSQL sizes its shared buffers for the machine once, when Heron
starts it, and leaves a value someone set by ALTER SYSTEM alone."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import psycopg
import pytest

from heron.database import embedded
from heron.database.embedded import (
    pgdata_path,
    shared_buffers_for,
    stop_embedded,
)

pytestmark = pytest.mark.slow

MEMORY = os.sysconf("SC_PAGE_SIZE") * os.sysconf("SC_PHYS_PAGES")


def shared_buffers(url: str) -> str:
    with psycopg.connect(url) as conn:
        row = conn.execute(
            "SELECT setting::bigint * 8 / 1024 || 'MB' FROM pg_settings"
            " WHERE name = 'shared_buffers'"
        ).fetchone()
    assert row is not None
    return str(row[0])


def start(data_dir: Path, *, stop_at_exit: bool) -> str:
    """start_embedded in a process of its own, as each `heron` command is; its URL."""
    script = (
        "import sys; from pathlib import Path; from heron.database.embedded import "
        "start_embedded; print(start_embedded(Path(sys.argv[1]), stop_at_exit=sys.argv[2] == 's'))"
    )
    argv = [sys.executable, "-c", script, str(data_dir), "s" if stop_at_exit else "k"]
    done = subprocess.run(argv, check=True, timeout=120, capture_output=True, text=True)
    return done.stdout.strip().splitlines()[-1]


def test_a_new_server_is_tuned_and_a_chosen_value_kept(tmp_path: Path) -> None:
    try:
        url = start(tmp_path, stop_at_exit=False)
        assert shared_buffers(url) == shared_buffers_for(MEMORY)
        with psycopg.connect(url, autocommit=True) as conn:
            conn.execute("ALTER SYSTEM SET shared_buffers = '160MB'")
        assert stop_embedded(tmp_path)
        assert shared_buffers(start(tmp_path, stop_at_exit=False)) == "160MB"
    finally:
        stop_embedded(tmp_path)


def test_the_server_restarted_for_tuning_still_stops_with_its_process(tmp_path: Path) -> None:
    try:
        start(tmp_path, stop_at_exit=True)
        assert not (pgdata_path(tmp_path) / "postmaster.pid").exists()
        assert "shared_buffers" in (pgdata_path(tmp_path) / "postgresql.auto.conf").read_text()
    finally:
        stop_embedded(tmp_path)


def test_a_size_the_server_cannot_start_with_falls_back_to_the_default(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    # 4TB: more than RAM and swap, which Linux refuses to map by default (overcommit 0)
    monkeypatch.setattr(embedded, "shared_buffers_for", lambda memory: "4TB")
    try:
        url = embedded.start_embedded(tmp_path, stop_at_exit=False)
        assert shared_buffers(url) == embedded.DEFAULT_SHARED_BUFFERS
        assert stop_embedded(tmp_path)
        # chosen now, so the next start neither tries again nor fails
        assert shared_buffers(start(tmp_path, stop_at_exit=False)) == "128MB"
    finally:
        stop_embedded(tmp_path)
