"""After a PostgreSQL restart the pools hand out live connections only (found by the chaos
storm, tests/chaos/storm.py: each dead pooled connection failed one handler, so one
question burnt its retries on them within three seconds and was never answered)."""

from __future__ import annotations

import asyncio
from contextlib import AsyncExitStack

import pytest

from heron.queue.store import open_pool
from tests import pg

pytestmark = pytest.mark.slow


async def test_no_connection_the_restart_killed_is_handed_out() -> None:
    with pg.dedicated_server() as server:
        pool = open_pool(server.url, max_size=4, name="test-restart")
        await pool.open(wait=True)
        try:
            async with AsyncExitStack() as stack:  # four idle connections in the pool
                for _ in range(4):
                    await stack.enter_async_context(pool.connection())
            await asyncio.to_thread(server.restart)
            for _ in range(4):
                async with pool.connection() as conn:
                    await conn.execute("SELECT 1")
        finally:
            await pool.close()
