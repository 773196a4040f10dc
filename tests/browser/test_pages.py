"""What a newcomer does on day one, in a real browser: talk to Heron in the local
workspace, watch the question in the dashboard, replay a failed event."""

from __future__ import annotations

from typing import Any

import psycopg
import pytest

from tests.browser.conftest import ARTIFACTS
from tests.conftest import wait_until

pytestmark = pytest.mark.slow

TIMEOUT_MS = 60_000


def test_a_question_in_the_local_workspace_is_answered_in_its_thread(
    heron_url: str, page: Any, database_url: str
) -> None:
    page.goto(heron_url + "/")
    banner = page.get_by_test_id("banner")
    banner.wait_for(timeout=TIMEOUT_MS)
    assert "local workspace" in banner.inner_text().lower()

    page.get_by_test_id("composer-input").fill("@heron how do I deploy Heron?")
    page.get_by_test_id("send-button").click()

    question = page.get_by_test_id("message").filter(has_text="how do I deploy Heron?")
    question.wait_for(timeout=TIMEOUT_MS)
    status = question.get_by_test_id("question-status")
    status.and_(page.locator("[data-stage=answered]")).wait_for(timeout=TIMEOUT_MS)

    question.get_by_test_id("replies-link").click()
    replies = page.get_by_test_id("thread-panel").get_by_test_id("thread-reply")
    replies.first.wait_for(timeout=TIMEOUT_MS)
    page.screenshot(path=str(ARTIFACTS / "workspace-answered.png"), full_page=True)
    assert replies.count() == 1  # exactly one answer
    answer = replies.first.get_by_test_id("message-text").inner_text()
    assert "no model" in answer.lower()  # retrieval-only mode says so

    with psycopg.connect(database_url) as conn:
        events = conn.execute(
            "SELECT status FROM events WHERE event_type = 'slack.question'"
        ).fetchall()
    assert events == [("completed",)]


def test_the_dashboard_shows_events_and_replays_a_failed_one(
    heron_url: str, page: Any, database_url: str
) -> None:
    with psycopg.connect(database_url, autocommit=True) as conn:
        ok = conn.execute(
            "INSERT INTO events (event_type, payload) VALUES ('noop', '{}') RETURNING id"
        ).fetchone()
        # No handler for this type: it fails for good, with its attempt recorded.
        failed = conn.execute(
            "INSERT INTO events (event_type, payload) VALUES ('report.weekly', '{}') RETURNING id"
        ).fetchone()
    assert ok is not None
    assert failed is not None

    def status_of(event: tuple[int]) -> str | None:
        with psycopg.connect(database_url) as conn:
            row = conn.execute("SELECT status FROM events WHERE id = %s", event).fetchone()
        return None if row is None else str(row[0])

    wait_until(lambda: status_of(failed) == "failed", what="the event to fail")
    with psycopg.connect(database_url, autocommit=True) as conn:  # "the fix is deployed"
        conn.execute("UPDATE events SET event_type = 'noop' WHERE id = %s", failed)

    page.goto(heron_url + "/dashboard")
    page.get_by_test_id("queue-chart").wait_for(timeout=TIMEOUT_MS)
    done = page.locator(f"[data-testid=event-row][data-event-id='{ok[0]}'][data-status=completed]")
    done.first.wait_for(timeout=TIMEOUT_MS)
    failed_row = page.locator(f"[data-testid=failed-row][data-event-id='{failed[0]}']")
    failed_row.wait_for(timeout=TIMEOUT_MS)
    assert "report.weekly" in failed_row.get_by_test_id("error-history").inner_text()
    page.screenshot(path=str(ARTIFACTS / "dashboard-failed.png"), full_page=True)

    page.locator(f"[data-testid=replay-button][data-event-id='{failed[0]}']").click()
    replayed = page.locator(
        f"[data-testid=event-row][data-event-id='{failed[0]}'][data-status=completed]"
    )
    replayed.first.wait_for(timeout=TIMEOUT_MS)
    assert failed_row.count() == 0
    page.screenshot(path=str(ARTIFACTS / "dashboard-replayed.png"), full_page=True)

    assert status_of(failed) == "completed"
