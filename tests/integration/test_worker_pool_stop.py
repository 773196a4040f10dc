"""A pool stops even when one of its loops swallows the cancellation (found by the chaos
storm, tests/chaos/storm.py: a `heron run` told to stop just after PostgreSQL restarted
ran on until it was killed)."""

from __future__ import annotations

import asyncio

from heron.config import Config
from heron.database.models import Event
from heron.queue.retry import RetryPolicy
from heron.queue.runner import PoolRunner
from heron.queue.store import QueueStore, open_pool
from tests.conftest import eventually


class SwallowsOneCancellation(QueueStore):
    """rescue_expired() as it behaves on Python 3.11 when the stop lands just as a pooled
    connection arrives: psycopg_pool waits for it with asyncio.wait_for, which then
    returns the connection instead of raising CancelledError."""

    swallowed = False

    async def rescue_expired(self, limit: int = 100) -> int:
        try:
            await asyncio.sleep(3600)  # waiting for a connection while the server restarts
        except asyncio.CancelledError:
            if self.swallowed:
                raise
            self.swallowed = True
        return 0


async def handle(event: Event) -> None:
    pass


async def test_a_pool_stops_even_if_a_loop_swallows_its_cancellation(
    database_url: str, config: Config
) -> None:
    pool = open_pool(database_url, max_size=4)
    await pool.open()
    try:
        policy = RetryPolicy.from_config(config)
        store = SwallowsOneCancellation(pool, policy, config.event_visibility_timeout)
        runner = PoolRunner(2, handle, store, database_url, config, "w1")
        stop = asyncio.Event()
        running = asyncio.create_task(runner.run(stop))
        await eventually(runner.listener.connected.is_set, 15, "the pool listening")
        stop.set()
        async with asyncio.timeout(15):
            await running
        assert store.swallowed
    finally:
        await pool.close()
