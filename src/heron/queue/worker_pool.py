"""The seed's WorkerPool: a bounded pool of workers draining the events table.

The work happens in heron.queue.runner on an asyncio loop of the pool's own, in a
thread, so that the synchronous `start()` / `run_forever()` / `stop()` work from any
program. Any number of pools, in any number of processes, share one database.
"""

from __future__ import annotations

import asyncio
import os
import signal
import socket
import threading
import uuid
from contextlib import suppress
from types import FrameType
from typing import Any

import structlog

from heron.config import Config
from heron.database.connection import DatabaseConnection
from heron.queue.retry import RetryPolicy
from heron.queue.runner import MAX_ROUND_TRIPS, PoolRunner, ProcessFunc, RunnerStats
from heron.queue.store import QueueStore, open_pool

log = structlog.get_logger(__name__)


def default_worker_id() -> str:
    """host:pid:random, unique across machines and restarts, readable in `heron events`."""
    return f"{socket.gethostname()}:{os.getpid()}:{uuid.uuid4().hex[:6]}"


class WorkerPool:
    """Runs `process_func(event)` for queued events, at most `size` at once.

    A handler that returns completes the event; one that raises fails it (retried with
    backoff, `failed` for good when retries are spent; PermanentError skips the retries).
    `process_func` may be a plain or an async function.
    """

    def __init__(
        self,
        size: int | None = None,
        db_connection: DatabaseConnection | None = None,
        process_func: ProcessFunc | None = None,
        *,
        config: Config | None = None,
        worker_id: str | None = None,
    ) -> None:
        if process_func is None:
            raise TypeError("WorkerPool needs a process_func(event)")
        self.config = config or Config()
        self.size = size if size is not None else self.config.worker_pool_size
        if self.size < 1:
            raise ValueError("a worker pool needs at least one worker")
        self._db = db_connection
        self.process_func = process_func
        self.worker_id = worker_id or default_worker_id()
        self._runner: PoolRunner | None = None
        self._thread: threading.Thread | None = None
        self._loop: asyncio.AbstractEventLoop | None = None
        self._stop_requested: asyncio.Event | None = None
        self._started = threading.Event()
        self._finished = threading.Event()
        self._stopped = False
        self._running = False

    def start(self) -> None:
        """Start the workers in the background and return at once."""
        if self._thread is not None or self._stopped:
            return
        if self._db is None:
            self._db = DatabaseConnection()
        self._thread = threading.Thread(
            target=self._thread_main, name="heron-worker-pool", daemon=True
        )
        self._thread.start()
        self._started.wait()

    def run_forever(self) -> None:
        """Start if needed and block until SIGINT/SIGTERM (or stop()), then stop gracefully."""
        self.start()
        stop_now = threading.Event()

        def on_signal(signum: int, frame: FrameType | None) -> None:
            log.info("signal received; stopping", signal=signal.Signals(signum).name)
            stop_now.set()

        previous = {}
        if threading.current_thread() is threading.main_thread():
            for sig in (signal.SIGINT, signal.SIGTERM):
                previous[sig] = signal.signal(sig, on_signal)
        try:
            while not stop_now.is_set() and not self._finished.is_set():
                stop_now.wait(0.5)
        finally:
            for sig, handler in previous.items():
                signal.signal(sig, handler)
            self.stop()

    def stop(self, timeout: float | None = None) -> None:
        """Stop claiming, let in-flight events finish within the grace period, release the
        rest. Idempotent and safe before start()."""
        self._stopped = True
        self._running = False  # no new claims from here on; workers_running reads 0
        thread, loop, requested = self._thread, self._loop, self._stop_requested
        if loop is not None and requested is not None and not loop.is_closed():
            with suppress(RuntimeError):  # the loop closed between the check and the call
                loop.call_soon_threadsafe(requested.set)
        if thread is None:  # not started, or serve() runs on the caller's own loop
            return
        grace = self.config.heron_shutdown_grace_seconds
        thread.join(timeout if timeout is not None else grace + 30)

    def get_stats(self) -> dict[str, Any]:
        """Counters since start; safe to call from any thread."""
        runner = self._runner
        s = runner.stats if runner is not None else RunnerStats()
        return {
            "worker_id": self.worker_id,
            "size": self.size,
            "workers_running": self.size if self._running else 0,
            "in_flight": len(runner.in_flight) if runner is not None else 0,
            "total_events_processed": s.completed + s.retried + s.failed,
            "completed": s.completed,
            "retried": s.retried,
            "failed": s.failed,
            "lost_leases": s.lost_leases,
            "released": s.released,
            "claimed": s.claimed,
        }

    @property
    def stats(self) -> RunnerStats:
        """The running pool's counters and latency histograms (empty before start)."""
        runner = self._runner
        return runner.stats if runner is not None else RunnerStats()

    def health_check(self) -> bool:
        """True only while the workers run and the database answers."""
        loop, runner = self._loop, self._runner
        if not self._running or loop is None or runner is None:
            return False
        future = asyncio.run_coroutine_threadsafe(runner.store.ping(), loop)
        try:
            future.result(timeout=5)
        except Exception:
            return False
        return True

    @property
    def listening(self) -> bool:
        """True while the LISTEN connection is up (NOTIFY wakes the workers)."""
        runner = self._runner
        return runner is not None and runner.listener.connected.is_set()

    def _thread_main(self) -> None:
        try:
            asyncio.run(self.serve())
        except BaseException:  # logged; the thread must not die silently
            log.exception("worker pool crashed")
        finally:
            self._running = False
            self._started.set()
            self._finished.set()

    async def serve(self) -> None:
        """Run the pool on the current event loop until stop(), then shut down gracefully."""
        self._loop = asyncio.get_running_loop()
        self._stop_requested = asyncio.Event()
        if self._stopped:
            self._started.set()
            return
        if self._db is None:
            self._db = DatabaseConnection()
        conninfo = self._db.conninfo
        # round trips + failure writes + heartbeat and rescuer
        pool = open_pool(conninfo, max_size=MAX_ROUND_TRIPS + min(self.size, 8) + 2)
        await pool.open(wait=False)
        store = QueueStore(
            pool, RetryPolicy.from_config(self.config), self.config.event_visibility_timeout
        )
        self._runner = PoolRunner(
            self.size, self.process_func, store, conninfo, self.config, self.worker_id
        )
        self._running = True
        self._started.set()
        log.info("worker pool started", worker_id=self.worker_id, size=self.size)
        try:
            await self._runner.run(self._stop_requested)
        finally:
            self._running = False
            await pool.close()
            log.info("worker pool stopped", **self.get_stats())
