"""The dashboard against a real PostgreSQL: each API answers what the database holds,
replay requeues a failed event that then gets processed, access rules, masked secrets."""

from __future__ import annotations

import re
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from dataclasses import dataclass
from typing import Any

import httpx2
import pytest
import structlog
from psycopg_pool import AsyncConnectionPool
from starlette.applications import Starlette

from heron import DatabaseConnection, EventProcessor
from heron.config import Config
from heron.database.models import Event
from heron.queue.handlers import HandlerRegistry
from heron.queue.runner import RunnerStats
from heron.queue.store import open_pool
from heron.runtime import Runtime
from heron.web.dashboard import dashboard_enabled, dashboard_routes
from tests.conftest import eventually, make_config, rows

TOKEN = "dashboard-token-for-tests-0123456789"
SECRETS = (
    "verification-secret-value",
    "xoxb-1111-2222-abcdefabcdef",
    "sk-ant-api03-abcdefghijklmnopqrstuvwxyz",
    "hunter2",
    "ghp_abcdefghijklmnopqrstuvwxyz0123456789",
)


@pytest.fixture
async def pool(database_url: str) -> AsyncIterator[AsyncConnectionPool[Any]]:
    opened = open_pool(database_url, max_size=4, name="dashboard-test")
    await opened.open(wait=True, timeout=30)
    yield opened
    await opened.close()


@asynccontextmanager
async def client(
    pool: AsyncConnectionPool[Any],
    config: Config,
    *,
    base_url: str = "http://127.0.0.1",
    stats: RunnerStats | None = None,
) -> AsyncIterator[httpx2.AsyncClient]:
    """The dashboard's routes in an app of their own, reached in-process."""
    runner_stats = stats or RunnerStats()
    app = Starlette(routes=dashboard_routes(pool, config, lambda: runner_stats))
    transport = httpx2.ASGITransport(app=app)
    async with httpx2.AsyncClient(transport=transport, base_url=base_url) as http:
        yield http


@dataclass
class Seeded:
    old: int
    done: int
    retried: int
    failed: int
    running: int
    waiting: int


def seed_queue(db: DatabaseConnection, config: Config, database_url: str) -> Seeded:
    """Events in every state, made by the queue's own operations (so attempts are real),
    plus one completed two hours ago, outside the overview's window."""
    old = rows(
        database_url,
        "INSERT INTO events (event_type, payload, status, created_at, updated_at, completed_at,"
        " attempts) VALUES ('noop', '{}', 'completed', now() - interval '2 hours',"
        " now() - interval '2 hours', now() - interval '2 hours', 1) RETURNING id",
    )[0]["id"]
    rows(
        database_url,
        "INSERT INTO event_attempts (event_id, attempt, worker_id, lease_id, started_at,"
        " finished_at, outcome) VALUES (%s, 1, 'w-old', gen_random_uuid(),"
        " now() - interval '2 hours', now() - interval '2 hours', 'completed')",
        old,
    )
    with db.session() as session:
        p = EventProcessor(session, "worker-a", config)
        done = p.enqueue("noop", {"n": 1})
        p.complete_event(claim(p, done.id))
        retried = p.enqueue("noop", {"n": 2})
        p.fail_event(claim(p, retried.id), "first try broke")
        p.complete_event(claim(p, retried.id))
        failed = p.enqueue(
            "slack.question",
            {
                "text": "why is the build red?",
                "user": "U1",
                "token": SECRETS[0],
                "headers": {"Authorization": f"Bearer {SECRETS[2]}"},
                "note": f"my bot token is {SECRETS[1]}",
                "input_tokens": 12,
            },
        )
        p.fail_event(claim(p, failed.id), f"model overloaded (key {SECRETS[2]})")
        p.fail_event(claim(p, failed.id), "still overloaded", permanent=True)
        running = p.enqueue("noop", {"n": 4})
        claim(p, running.id)
        waiting = p.enqueue("noop", {"n": 5})
    return Seeded(old, done.id, retried.id, failed.id, running.id, waiting.id)


def claim(p: EventProcessor, expected: int) -> Event:
    event = p.claim_event()
    assert event is not None
    assert event.id == expected
    return event


def dashboard_config(database_url: str, **overrides: Any) -> Config:
    return make_config(database_url, max_retry_count=3, **overrides)


# ---- what each API returns ----------------------------------------------------------------


async def test_overview_counts_the_queue_and_its_last_hour(
    pool: AsyncConnectionPool[Any], db: DatabaseConnection, database_url: str
) -> None:
    config = dashboard_config(database_url)
    seeded = seed_queue(db, config, database_url)
    stats = RunnerStats()
    for _ in range(10):
        stats.handling.observe(0.2)
    stats.claim_wait.observe(0.003)
    async with client(pool, config, stats=stats) as http:
        response = await http.get("/dashboard/api/overview")
    assert response.status_code == 200
    assert response.headers["cache-control"] == "no-store"
    body = response.json()
    assert body["queue"] == {"pending": 1, "processing": 1, "completed": 3, "failed": 1}
    assert body["outstanding"] == 2
    minutes = body["minutes"]
    assert len(minutes) == body["window_minutes"] == 60
    # The event of two hours ago is outside the window; everything seeded now is inside.
    assert sum(m["enqueued"] for m in minutes) == 5
    assert sum(m["completed"] for m in minutes) == 2
    assert sum(m["retried"] for m in minutes) == 2  # one retry each for `retried`, `failed`
    assert sum(m["failed"] for m in minutes) == 1
    assert minutes[-1]["depth"] == 2
    assert all(m["depth"] >= 0 for m in minutes)
    # Before anything was enqueued the queue was empty: the depth is worked back exactly.
    assert minutes[0]["depth"] == 0
    latency = body["latency"]
    end_to_end = rows(
        database_url,
        "SELECT percentile_cont(0.5) WITHIN GROUP (ORDER BY extract(epoch FROM"
        " completed_at - created_at)) AS p50 FROM events WHERE id = ANY(%s)",
        [seeded.done, seeded.retried],
    )[0]["p50"]
    assert latency["enqueue_to_completed"]["count"] == 2
    assert latency["enqueue_to_completed"]["p50"] == pytest.approx(float(end_to_end), abs=1e-6)
    assert latency["attempt"]["count"] == 2
    assert latency["handler"]["count"] == 10
    assert 0.1 < latency["handler"]["p50"] <= 0.25
    assert latency["claim_wait"]["count"] == 1
    assert body["process"]["completed"] == 0


async def test_recent_and_failed_events_come_with_their_attempts(
    pool: AsyncConnectionPool[Any], db: DatabaseConnection, database_url: str
) -> None:
    config = dashboard_config(database_url)
    seeded = seed_queue(db, config, database_url)
    async with client(pool, config) as http:
        recent = (await http.get("/dashboard/api/events")).json()["events"]
        failed = (await http.get("/dashboard/api/events", params={"status": "failed"})).json()
        two = (await http.get("/dashboard/api/events", params={"limit": 2})).json()["events"]
    assert [e["id"] for e in recent] == [
        seeded.waiting,
        seeded.running,
        seeded.failed,
        seeded.retried,
        seeded.done,
        seeded.old,
    ]
    by_id = {e["id"]: e for e in recent}
    assert by_id[seeded.running]["status"] == "processing"
    assert by_id[seeded.running]["claimed_by"] == "worker-a"
    assert by_id[seeded.running]["attempts"] == []  # running: not finished yet
    assert [(a["outcome"], a["error"]) for a in by_id[seeded.retried]["attempts"]] == [
        ("retry", "first try broke"),
        ("completed", None),
    ]
    assert "payload" not in by_id[seeded.done]  # payloads only in the detail view
    assert [e["id"] for e in failed["events"]] == [seeded.failed]
    history = failed["events"][0]["attempts"]
    stored = rows(
        database_url,
        "SELECT attempt, outcome, worker_id FROM event_attempts WHERE event_id = %s"
        " ORDER BY attempt",
        seeded.failed,
    )
    assert [(a["attempt"], a["outcome"], a["worker_id"]) for a in history] == [
        (r["attempt"], r["outcome"], r["worker_id"]) for r in stored
    ]
    assert [a["error"] for a in history] == ["model overloaded (key ********)", "still overloaded"]
    assert failed["events"][0]["error_message"] == "still overloaded"
    assert [e["id"] for e in two] == [seeded.waiting, seeded.running]


async def test_one_event_shows_its_payload_with_secrets_masked(
    pool: AsyncConnectionPool[Any], db: DatabaseConnection, database_url: str
) -> None:
    config = dashboard_config(database_url)
    seeded = seed_queue(db, config, database_url)
    async with client(pool, config) as http:
        response = await http.get(f"/dashboard/api/events/{seeded.failed}")
        listing = await http.get("/dashboard/api/events")
    assert response.status_code == 200
    event = response.json()["event"]
    assert event["payload"] == {
        "text": "why is the build red?",
        "user": "U1",
        "token": "********",
        "headers": {"Authorization": "********"},
        "note": "my bot token is ********",
        "input_tokens": 12,
    }
    assert len(event["attempts"]) == 2
    for text in (response.text, listing.text):
        for secret in SECRETS:
            assert secret not in text


async def test_bad_parameters_and_unknown_events_are_clear_errors(
    pool: AsyncConnectionPool[Any], database_url: str
) -> None:
    config = dashboard_config(database_url)
    async with client(pool, config) as http:
        bad_status = await http.get("/dashboard/api/events", params={"status": "lost"})
        bad_limit = await http.get("/dashboard/api/events", params={"limit": "0"})
        bad_days = await http.get("/dashboard/api/usage", params={"days": "many"})
        unknown = await http.get("/dashboard/api/events/424242")
        replay_unknown = await http.post("/dashboard/api/events/424242/replay")
    assert bad_status.status_code == 400
    assert "pending, processing, completed, failed" in bad_status.json()["error_description"]
    assert bad_limit.status_code == 400
    assert bad_days.status_code == 400
    assert unknown.status_code == 404
    assert unknown.json()["error_description"] == "no event with id 424242"
    assert replay_unknown.status_code == 404


async def test_usage_per_day_and_per_user_with_names_from_slack(
    pool: AsyncConnectionPool[Any], database_url: str
) -> None:
    rows(
        database_url,
        "INSERT INTO slack_users (id, name, real_name, display_name) VALUES"
        " ('U1', 'ada', 'Ada Lovelace', 'Ada'), ('U3', 'grace', 'Grace Hopper', '')",
    )
    usage = [
        # user, days ago, outcome, input, output, cost
        ("U1", 0, "answered", 1000, 200, "0.010000"),
        ("U1", 0, "answered", 3000, 400, "0.020000"),
        ("U3", 0, "failed", 500, 0, "0.001000"),
        ("U2", 1, "answered", 700, 70, None),  # a model without a price
        ("U1", 40, "answered", 9000, 900, "5.000000"),  # outside 30 days
    ]
    for user, days_ago, outcome, tokens_in, tokens_out, cost in usage:
        rows(
            database_url,
            "INSERT INTO agent_usage (user_id, model, outcome, input_tokens, output_tokens,"
            " requests, cost_usd, created_at) VALUES (%s, 'anthropic:claude', %s, %s, %s, 1,"
            " %s::numeric, now() - make_interval(days => %s))",
            user,
            outcome,
            tokens_in,
            tokens_out,
            cost,
            days_ago,
        )
    today, yesterday = (
        str(r["day"])
        for r in rows(
            database_url,
            "SELECT (now() AT TIME ZONE 'UTC')::date AS day"
            " UNION ALL SELECT ((now() - interval '1 day') AT TIME ZONE 'UTC')::date",
        )
    )
    config = dashboard_config(database_url)
    async with client(pool, config) as http:
        body = (await http.get("/dashboard/api/usage")).json()
        week = (await http.get("/dashboard/api/usage", params={"days": 1})).json()
    assert body["days"] == 30
    assert body["per_day"] == [
        {
            "day": today,
            "runs": 3,
            "answered": 2,
            "input_tokens": 4500,
            "output_tokens": 600,
            "cost_usd": pytest.approx(0.031),
            "unpriced_runs": 0,
        },
        {
            "day": yesterday,
            "runs": 1,
            "answered": 1,
            "input_tokens": 700,
            "output_tokens": 70,
            "cost_usd": 0.0,
            "unpriced_runs": 1,
        },
    ]
    users = [(u["user_id"], u["user_name"], u["runs"], u["cost_usd"]) for u in body["per_user"]]
    assert users == [
        ("U1", "Ada", 2, pytest.approx(0.03)),
        ("U3", "Grace Hopper", 1, pytest.approx(0.001)),
        ("U2", None, 1, 0.0),
    ]
    assert [d["day"] for d in week["per_day"]] == [today]


async def test_mcp_status_as_last_checked_with_errors_masked(
    pool: AsyncConnectionPool[Any], database_url: str
) -> None:
    rows(
        database_url,
        "INSERT INTO mcp_server_status (name, transport, ok, tools, error) VALUES"
        " ('docs', 'http', true, ARRAY['search_docs', 'get_document'], NULL),"
        " ('github', 'http', false, '{}', %s)",
        f"401 from https://bot:{SECRETS[3]}@api.example.org with {SECRETS[4]}",
    )
    async with client(pool, dashboard_config(database_url)) as http:
        response = await http.get("/dashboard/api/mcp")
    servers = response.json()["servers"]
    assert [(s["name"], s["ok"], s["tools"]) for s in servers] == [
        ("docs", True, ["search_docs", "get_document"]),
        ("github", False, []),
    ]
    assert servers[1]["error"] == "401 from https://bot:***@api.example.org with ********"
    assert servers[0]["checked_at"].endswith("+00:00")


# ---- replay ------------------------------------------------------------------------------


class Flaky:
    """A handler that fails while `broken` is set."""

    def __init__(self) -> None:
        self.broken = True
        self.calls = 0

    async def __call__(self, event: Event) -> None:
        self.calls += 1
        if self.broken:
            raise RuntimeError("upstream said no")


@pytest.fixture
async def heron(database_url: str) -> AsyncIterator[tuple[Runtime, Flaky]]:
    """`heron run`'s runtime (no Slack) with a handler that fails until told otherwise."""
    flaky = Flaky()
    registry = HandlerRegistry()
    registry.register("flaky", flaky)
    config = make_config(database_url, heron_http_port=0, worker_pool_size=2, max_retry_count=0)
    db = DatabaseConnection(database_url)
    runtime = Runtime(config, db, registry)
    await runtime.start()
    try:
        yield runtime, flaky
    finally:
        await runtime.stop()
        db.dispose()


async def test_replay_from_the_dashboard_requeues_and_the_event_gets_processed(
    heron: tuple[Runtime, Flaky], database_url: str
) -> None:
    runtime, flaky = heron
    assert runtime.http is not None
    event_id = rows(
        database_url, "INSERT INTO events (event_type, payload) VALUES ('flaky', '{}') RETURNING id"
    )[0]["id"]
    status = f"SELECT status FROM events WHERE id = {event_id}"
    await eventually(lambda: rows(database_url, status) == [{"status": "failed"}], what="failed")
    async with httpx2.AsyncClient(base_url=runtime.http.url) as http:
        failed = (await http.get("/dashboard/api/events", params={"status": "failed"})).json()
        assert [e["id"] for e in failed["events"]] == [event_id]
        assert failed["events"][0]["attempts"][0]["error"] == "RuntimeError: upstream said no"
        flaky.broken = False
        replayed = await http.post(
            f"/dashboard/api/events/{event_id}/replay",
            headers={"Origin": runtime.http.url},
        )
        assert replayed.status_code == 200
        assert replayed.json()["event"]["status"] in {"pending", "processing", "completed"}
        await eventually(
            lambda: rows(database_url, status) == [{"status": "completed"}], what="completed"
        )
        again = await http.post(f"/dashboard/api/events/{event_id}/replay")
        detail = (await http.get(f"/dashboard/api/events/{event_id}")).json()["event"]
        page = await http.get("/dashboard")
    assert again.status_code == 409
    assert "only failed events can be replayed" in again.json()["error_description"]
    assert [a["outcome"] for a in detail["attempts"]] == ["failed", "completed"]
    assert flaky.calls == 2
    assert page.status_code == 200  # served by `heron run`'s own HTTP server


# ---- the page -------------------------------------------------------------------------


async def test_the_page_loads_its_script_and_styles_from_the_package(
    pool: AsyncConnectionPool[Any], database_url: str
) -> None:
    async with client(pool, dashboard_config(database_url)) as http:
        page = await http.get("/dashboard")
        script = await http.get("/dashboard/static/app.js")
        styles = await http.get("/dashboard/static/app.css")
        missing = await http.get("/dashboard/static/nothing.js")
    assert page.status_code == 200
    assert page.headers["content-type"].startswith("text/html")
    assert "script-src 'self'" in page.headers["content-security-policy"]
    assert '<script src="/dashboard/static/app.js"' in page.text
    assert 'href="/dashboard/static/app.css"' in page.text
    assert script.status_code == 200
    assert script.headers["content-type"].startswith("text/javascript")
    assert "/dashboard/api/" in script.text
    assert styles.headers["content-type"].startswith("text/css")
    assert missing.status_code == 404
    # Every element the script looks up by data-testid is on the page.
    wanted = set(re.findall(r'\$\("([\w-]+)"\)', script.text))
    assert wanted
    assert {name for name in wanted if f'data-testid="{name}"' not in page.text} == set()


# ---- who may see it ---------------------------------------------------------------------


async def test_off_loopback_without_a_token_the_dashboard_is_off_and_says_why(
    pool: AsyncConnectionPool[Any], database_url: str
) -> None:
    config = dashboard_config(database_url, heron_http_host="0.0.0.0")
    assert not dashboard_enabled(config)
    with structlog.testing.capture_logs() as logs:
        routes = dashboard_routes(pool, config, RunnerStats)
    assert routes == []
    assert [entry["event"] for entry in logs] == ["dashboard disabled"]
    assert "HERON_DASHBOARD_TOKEN" in logs[0]["fix"]
    async with client(pool, config, base_url="http://heron.example") as http:
        assert (await http.get("/dashboard")).status_code == 404


async def test_off_loopback_the_token_is_required_as_bearer_or_cookie(
    pool: AsyncConnectionPool[Any], database_url: str
) -> None:
    config = dashboard_config(database_url, heron_http_host="0.0.0.0", heron_dashboard_token=TOKEN)
    assert dashboard_enabled(config)
    async with client(pool, config, base_url="http://heron.example") as http:
        anonymous = await http.get("/dashboard/api/overview")
        page_anonymous = await http.get("/dashboard")
        wrong = await http.get(
            "/dashboard/api/overview", headers={"Authorization": "Bearer not-the-token"}
        )
        bearer = await http.get(
            "/dashboard/api/overview", headers={"Authorization": f"Bearer {TOKEN}"}
        )
        query_on_api = await http.get("/dashboard/api/overview", params={"token": TOKEN})
        bad_sign_in = await http.get("/dashboard", params={"token": "not-the-token"})
        assert not http.cookies
        sign_in = await http.get("/dashboard", params={"token": TOKEN})
        assert sign_in.status_code == 303
        assert sign_in.headers["location"] == "/dashboard"
        cookie = sign_in.headers["set-cookie"]
        with_cookie = await http.get("/dashboard/api/overview")
        page = await http.get("/dashboard")
    assert anonymous.status_code == 401
    assert anonymous.headers["www-authenticate"].startswith("Bearer")
    assert page_anonymous.status_code == 401
    assert "?token=" in page_anonymous.text
    assert wrong.status_code == 401
    assert bearer.status_code == 200
    assert query_on_api.status_code == 401  # ?token= signs in on the page only
    assert bad_sign_in.status_code == 401
    assert "HttpOnly" in cookie
    assert "SameSite=strict" in cookie
    assert "Path=/dashboard" in cookie
    assert TOKEN not in cookie
    assert with_cookie.status_code == 200
    assert page.status_code == 200
    for response in (anonymous, wrong, bad_sign_in, sign_in):
        assert TOKEN not in response.text


async def test_writes_from_another_origin_are_refused_unless_sent_with_the_bearer(
    pool: AsyncConnectionPool[Any], db: DatabaseConnection, database_url: str
) -> None:
    config = dashboard_config(database_url, heron_http_host="0.0.0.0", heron_dashboard_token=TOKEN)
    seeded = seed_queue(db, config, database_url)
    replay = f"/dashboard/api/events/{seeded.failed}/replay"
    async with client(pool, config, base_url="http://heron.example") as http:
        await http.get("/dashboard", params={"token": TOKEN})
        cross = await http.post(replay, headers={"Origin": "http://evil.example"})
        cross_referer = await http.post(replay, headers={"Referer": "http://evil.example/x"})
        null_origin = await http.post(replay, headers={"Origin": "null"})
        assert rows(database_url, f"SELECT status FROM events WHERE id = {seeded.failed}") == [
            {"status": "failed"}
        ]
        same = await http.post(replay, headers={"Origin": "http://heron.example"})
    assert (cross.status_code, cross_referer.status_code, null_origin.status_code) == (
        403,
        403,
        403,
    )
    assert same.status_code == 200
    async with client(pool, config, base_url="http://heron.example") as http:
        rows(database_url, f"UPDATE events SET status = 'failed' WHERE id = {seeded.failed}")
        bearer = await http.post(
            replay,
            headers={"Authorization": f"Bearer {TOKEN}", "Origin": "http://evil.example"},
        )
        anonymous = await http.post(replay, headers={"Origin": "http://heron.example"})
    assert bearer.status_code == 200  # a bearer token is never sent by a browser on its own
    assert anonymous.status_code == 401


async def test_on_loopback_without_a_token_it_answers_only_to_loopback_names(
    pool: AsyncConnectionPool[Any], db: DatabaseConnection, database_url: str
) -> None:
    config = dashboard_config(database_url)  # HERON_HTTP_HOST=127.0.0.1, no token
    seeded = seed_queue(db, config, database_url)
    replay = f"/dashboard/api/events/{seeded.failed}/replay"
    for base_url in ("http://127.0.0.1:8080", "http://localhost:8080", "http://[::1]:8080"):
        async with client(pool, config, base_url=base_url) as http:
            assert (await http.get("/dashboard/api/overview")).status_code == 200
    async with client(pool, config, base_url="http://rebound.example") as http:
        rebound = await http.get("/dashboard/api/overview")
    async with client(pool, config, base_url="http://127.0.0.1:8080") as http:
        cross = await http.post(replay, headers={"Origin": "http://evil.example"})
        same = await http.post(replay, headers={"Origin": "http://127.0.0.1:8080"})
    assert rebound.status_code == 403
    assert cross.status_code == 403
    assert same.status_code == 200


def test_a_short_token_is_a_configuration_problem() -> None:
    from heron.errors import ConfigError

    with pytest.raises(ConfigError, match="HERON_DASHBOARD_TOKEN must be at least 16"):
        Config(_env_file=None, heron_dashboard_token="short").validate()
    Config(_env_file=None, heron_dashboard_token="").validate()  # empty: unset
    Config(_env_file=None, heron_dashboard_token=TOKEN).validate()
    shown = Config(_env_file=None, heron_dashboard_token=TOKEN).masked()
    assert shown["heron_dashboard_token"] == "********"
