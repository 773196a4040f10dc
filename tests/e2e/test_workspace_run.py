"""`heron run` with no Slack tokens: it says where the local workspace is, and serves it."""

from __future__ import annotations

import json
import signal
import urllib.request

from tests.heron_run import heron_run, workspace_url


def test_run_prints_the_workspace_url_and_serves_the_page(database_url: str) -> None:
    with heron_run(database_url) as (proc, lines):
        seen: list[str] = []
        url = workspace_url(lines, seen)
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
