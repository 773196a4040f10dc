"""Logfire tracing: on with LOGFIRE_TOKEN (model runs, SQL, outgoing and incoming HTTP
reach the exporter, with the token), silent without it. Each case runs in a fresh
interpreter because Logfire and OpenTelemetry configure process-wide state."""

from __future__ import annotations

import os
import subprocess
import sys
import textwrap

from heron.testing.otlp import FakeLogfire

SCRIPT = textwrap.dedent(
    """
    import asyncio
    import aiohttp, psycopg
    from pydantic_ai import Agent
    from pydantic_ai.models.test import TestModel
    from heron.config import Config
    from heron.tracing import configure_tracing, flush_tracing, instrument_http_app
    from heron.web.server import HttpServer, build_http_app

    async def main() -> None:
        config = Config()
        tracing = configure_tracing(config)
        await Agent(TestModel()).run("What is Heron?")
        with psycopg.connect(config.database_url) as conn:
            conn.execute("SELECT 42 AS heron_traced_query")
        if not tracing:
            print("tracing off")
            return
        app = build_http_app([], {})
        instrument_http_app(app)
        server = HttpServer(app, "127.0.0.1", 0)
        await server.start()
        async with aiohttp.ClientSession() as session:
            async with session.get(server.url + "/healthz") as response:
                assert response.status == 200
        await server.stop()
        flush_tracing()
        print("tracing on")

    asyncio.run(main())
    """
)


def run_script(database_url: str, **env: str) -> str:
    clean = {k: v for k, v in os.environ.items() if not k.startswith("LOGFIRE_")}
    result = subprocess.run(
        [sys.executable, "-c", SCRIPT],
        env=clean | {"DATABASE_URL": database_url} | env,
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )
    assert result.returncode == 0, result.stderr
    return result.stdout.strip().splitlines()[-1]  # structlog, unconfigured, prints too


def test_with_a_token_model_runs_sql_and_http_are_traced(database_url: str) -> None:
    with FakeLogfire() as fake:
        out = run_script(
            database_url, LOGFIRE_TOKEN="pylf_v1_us_testtoken", LOGFIRE_BASE_URL=fake.base_url
        )
        assert out == "tracing on"
        names = fake.span_names()
        assert any("agent" in name for name in names), names  # pydantic-ai's run
        assert any(name.startswith("SELECT") for name in names), names  # psycopg
        assert any(name.startswith("GET") for name in names), names  # aiohttp + starlette
        sent_with = fake.authorizations()
        assert sent_with
        assert all("pylf_v1_us_testtoken" in auth for auth in sent_with)


def test_without_a_token_nothing_is_sent(database_url: str) -> None:
    with FakeLogfire() as fake:
        out = run_script(database_url, LOGFIRE_BASE_URL=fake.base_url)
        assert out == "tracing off"
        assert fake.exports == []
