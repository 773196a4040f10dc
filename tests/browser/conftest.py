"""Headless Chromium (Debian's package, installed by `make test`) driven by Playwright,
against a real `heron run` with no Slack tokens: the local workspace and the dashboard.
Screenshots go to test-artifacts/browser/."""

from __future__ import annotations

import os
import shutil
from collections.abc import Iterator
from pathlib import Path

import pytest

from tests.heron_run import heron_run, workspace_url

CHROMIUM = shutil.which("chromium") or "/usr/bin/chromium"
ARTIFACTS = Path(__file__).parents[2] / "test-artifacts" / "browser"
# Chromium's own background traffic is refused by a closed network, and as root it
# needs --no-sandbox.
CHROMIUM_ARGS = [
    "--no-sandbox",
    "--disable-gpu",
    "--disable-quic",
    "--no-first-run",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
    "--disable-dev-shm-usage",
]

pytestmark = pytest.mark.skipif(
    not Path(CHROMIUM).exists() and not os.environ.get("CI"),
    reason="chromium not installed (`make test` installs Debian's package when run as root)",
)


@pytest.fixture
def heron_url(database_url: str) -> Iterator[str]:
    """A `heron run` on a free port with no Slack tokens, until the test ends."""
    with heron_run(database_url) as (_, lines):
        yield workspace_url(lines).rstrip("/")


@pytest.fixture
def page() -> Iterator[object]:
    from playwright.sync_api import sync_playwright

    if not Path(CHROMIUM).exists():
        pytest.fail(f"{CHROMIUM} is missing: `make test` installs Debian's chromium package")
    ARTIFACTS.mkdir(parents=True, exist_ok=True)
    with sync_playwright() as playwright:
        browser = playwright.chromium.launch(executable_path=CHROMIUM, args=CHROMIUM_ARGS)
        context = browser.new_context(viewport={"width": 1280, "height": 800})
        try:
            yield context.new_page()
        finally:
            context.close()
            browser.close()
