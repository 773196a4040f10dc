"""A bounded pool of workers that drains the events table, in this process or beside others.

The pool runs on its own asyncio loop (in a thread, so the seed's synchronous
`start()`/`run_forever()` work from any program). One cycle loop makes every round trip:
in one statement it completes the events that finished and claims as many new ones as
there are free slots. Each event runs in a task, sync handlers in a thread of their own.
A NOTIFY wakes the loop at once; the poll is only a safety net. Completions are
group-committed: while one round trip is in flight the next completions gather.
"""

from __future__ import annotations

import asyncio
import inspect
import os
import signal
import socket
import threading
import uuid
from collections.abc import Awaitable, Callable
from concurrent.futures import ThreadPoolExecutor
from contextlib import suppress
from dataclasses import dataclass
from types import FrameType
from typing import Any, TypeVar

import psycopg
import psycopg_pool
import structlog

from heron.config import Config
from heron.database.connection import DatabaseConnection
from heron.database.models import Event
from heron.errors import PermanentError, first_line
from heron.queue.backoff import reconnect_delays
from heron.queue.listener import NotifyListener
from heron.queue.retry import RetryPolicy
from heron.queue.store import QueueStore, open_pool

log = structlog.get_logger(__name__)

ProcessFunc = Callable[[Event], Any] | Callable[[Event], Awaitable[Any]]
T = TypeVar("T")
_DB_ERRORS = (psycopg.OperationalError, psycopg_pool.PoolTimeout, psycopg.InterfaceError)


@dataclass(slots=True)
class _Stats:
    completed: int = 0
    retried: int = 0
    failed: int = 0
    lost_leases: int = 0
    released: int = 0
    claimed: int = 0


def default_worker_id() -> str:
    """host:pid:random, unique across machines and restarts, readable in `heron events`."""
    return f"{socket.gethostname()}:{os.getpid()}:{uuid.uuid4().hex[:6]}"


class WorkerPool:
    """Runs `process_func(event)` for queued events, at most `size` at once.

    A handler that returns completes the event; one that raises fails it (retried with
    backoff, `failed` for good when retries are spent; PermanentError skips the retries).
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
        self._is_async = inspect.iscoroutinefunction(process_func) or inspect.iscoroutinefunction(
            getattr(process_func, "__call__", None)  # noqa: B004 - async callable objects
        )
        self._stats = _Stats()
        self._thread: threading.Thread | None = None
        self._loop: asyncio.AbstractEventLoop | None = None
        self._stop_requested: asyncio.Event | None = None
        self._started = threading.Event()
        self._finished = threading.Event()
        self._stopped = False
        self._running = False
        self._in_flight: dict[int, tuple[Event, asyncio.Task[None]]] = {}
        self._store: QueueStore | None = None
        self._listener: NotifyListener | None = None
        self._lost: set[int] = set()
        self._acks: list[tuple[Event, asyncio.Future[bool]]] = []
        self._kick = asyncio.Event()
        self._notified = False
        self._claiming = False
        self._error: BaseException | None = None

    # -- the seed's synchronous lifecycle --------------------------------------------------

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
        """Stop claiming, let in-flight events finish within the grace period, release the rest.

        Idempotent and safe before start().
        """
        self._stopped = True
        thread, loop, requested = self._thread, self._loop, self._stop_requested
        if thread is None:
            return
        if loop is not None and requested is not None and not loop.is_closed():
            with suppress(RuntimeError):  # the loop closed between the check and the call
                loop.call_soon_threadsafe(requested.set)
        grace = self.config.heron_shutdown_grace_seconds
        thread.join(timeout if timeout is not None else grace + 30)

    def get_stats(self) -> dict[str, Any]:
        """Counters since start; safe to call from any thread."""
        s = self._stats
        return {
            "worker_id": self.worker_id,
            "size": self.size,
            "workers_running": self.size if self._running else 0,
            "in_flight": len(self._in_flight),
            "total_events_processed": s.completed + s.retried + s.failed,
            "completed": s.completed,
            "retried": s.retried,
            "failed": s.failed,
            "lost_leases": s.lost_leases,
            "released": s.released,
            "claimed": s.claimed,
        }

    def health_check(self) -> bool:
        """True only while the workers run and the database answers."""
        loop = self._loop
        if not self._running or loop is None or self._store is None:
            return False
        future = asyncio.run_coroutine_threadsafe(self._store.ping(), loop)
        try:
            future.result(timeout=5)
        except Exception:
            return False
        return True

    # -- the asynchronous core -------------------------------------------------------------

    def _thread_main(self) -> None:
        try:
            asyncio.run(self.serve())
        except BaseException as error:  # surfaced through logs; the thread must not die silently
            self._error = error
            log.exception("worker pool crashed")
        finally:
            self._running = False
            self._started.set()
            self._finished.set()

    async def serve(self) -> None:
        """Run the pool on the current loop until stop() (or cancellation), then shut down."""
        self._loop = asyncio.get_running_loop()
        self._stop_requested = asyncio.Event()
        self._kick = asyncio.Event()
        if self._stopped:
            self._started.set()
            return
        if self._db is None:
            self._db = DatabaseConnection()
        conninfo = self._db.conninfo
        policy = RetryPolicy(self.config.max_retry_count, self.config.retry_backoff_base_seconds)
        pool = open_pool(conninfo, max_size=min(self.size, 8) + 3)
        await pool.open(wait=False)
        self._store = QueueStore(pool, policy, self.config.event_visibility_timeout)
        self._listener = NotifyListener(conninfo, self._on_notify)
        executor = None if self._is_async else ThreadPoolExecutor(self.size, "heron-worker")
        self._claiming = True
        background = [
            asyncio.create_task(self._listener.run(), name="heron-listener"),
            asyncio.create_task(self._heartbeat_loop(), name="heron-heartbeat"),
            asyncio.create_task(self._rescue_loop(), name="heron-rescuer"),
        ]
        cycle = asyncio.create_task(self._cycle_loop(executor), name="heron-cycle")
        self._running = True
        self._started.set()
        log.info("worker pool started", worker_id=self.worker_id, size=self.size)
        try:
            await self._stop_requested.wait()
        finally:
            self._running = False
            self._claiming = False  # the cycle loop goes on acking while in-flight events end
            await self._drain_in_flight()
            for task in [cycle, *background]:
                task.cancel()
            await asyncio.gather(cycle, *background, return_exceptions=True)
            await pool.close()
            if executor is not None:
                executor.shutdown(wait=False, cancel_futures=True)
            log.info("worker pool stopped", **self.get_stats())

    def _on_notify(self) -> None:
        self._notified = True
        self._kick.set()

    async def _cycle_loop(self, executor: ThreadPoolExecutor | None) -> None:
        """The hot path: each round trip completes the finished events and fills free slots.

        It runs when events finished (acks waiting), or when slots are free and events may
        be claimable: after a NOTIFY, after a poll interval, or after a claim that came
        back full. A completion waits for the next round trip, so while one is in flight
        the next ones gather (group commit).
        """
        assert self._store is not None
        delays = reconnect_delays()
        poll = self.config.heron_poll_interval
        batch = self.config.heron_claim_batch_size
        may_have_more = True
        while True:
            free = self.size - len(self._in_flight) + len(self._acks) if self._claiming else 0
            if not self._acks and not (may_have_more and free > 0):
                self._kick.clear()
                if not self._acks and not self._notified:
                    with suppress(TimeoutError):
                        await asyncio.wait_for(self._kick.wait(), poll if free > 0 else None)
                        if not self._notified:
                            continue  # kicked by an ack or a freed slot
                may_have_more = True  # a NOTIFY came, or the poll interval passed
                self._notified = False
                continue
            acks, self._acks = self._acks, []
            limit = min(max(free, 0), batch)
            self._notified = False
            try:
                done, events = await self._store.complete_and_claim(
                    [event for event, _ in acks], self.worker_id, limit
                )
            except _DB_ERRORS as error:
                self._acks = acks + self._acks
                delay = next(delays)
                log.warning(
                    "queue round trip failed; database unavailable?",
                    error=first_line(error),
                    retry_in_s=round(delay, 2),
                )
                await asyncio.sleep(delay)
                continue
            delays = reconnect_delays()
            for event, future in acks:
                if not future.done():
                    future.set_result(event.id in done)
            self._stats.claimed += len(events)
            for event in events:
                task = asyncio.create_task(self._run_event(event, executor))
                self._in_flight[event.id] = (event, task)
            may_have_more = limit > 0 and len(events) == limit

    async def _run_event(self, event: Event, executor: ThreadPoolExecutor | None) -> None:
        bound = log.bind(event_id=event.id, event_type=event.event_type, worker_id=self.worker_id)
        try:
            try:
                if executor is None:
                    await self.process_func(event)
                else:
                    loop = asyncio.get_running_loop()
                    result = await loop.run_in_executor(executor, self.process_func, event)
                    if inspect.isawaitable(result):  # a sync wrapper around async work
                        await result
            except asyncio.CancelledError:
                raise
            except PermanentError as error:
                await self._record_failure(event, bound, error, permanent=True)
            except Exception as error:
                await self._record_failure(event, bound, error, permanent=False)
            else:
                if await self._ack(event):
                    self._stats.completed += 1
                else:
                    self._lease_lost(event, bound, "completion")
        finally:
            self._in_flight.pop(event.id, None)
            self._kick.set()

    async def _record_failure(
        self, event: Event, bound: Any, error: BaseException, *, permanent: bool
    ) -> None:
        assert self._store is not None
        message = f"{type(error).__name__}: {error}"
        held = await self._with_db_retry(self._store.fail, event, message, permanent)
        if not held:
            self._lease_lost(event, bound, "failure")
            return
        final = permanent or event.retry_count >= self.config.max_retry_count
        if final:
            self._stats.failed += 1
            bound.error("event failed for good", error=message, retries=event.retry_count)
        else:
            self._stats.retried += 1
            bound.warning("event failed; will retry", error=message, retry=event.retry_count + 1)

    def _lease_lost(self, event: Event, bound: Any, what: str) -> None:
        self._stats.lost_leases += 1
        bound.warning(f"lease lost: {what} ignored", lease_id=str(event.lease_id))

    async def _ack(self, event: Event) -> bool:
        """Queue a completion for the next round trip and wait until it is durable."""
        future: asyncio.Future[bool] = asyncio.get_running_loop().create_future()
        self._acks.append((event, future))
        self._kick.set()
        return await future

    async def _with_db_retry(self, operation: Callable[..., Awaitable[T]], *args: Any) -> T:
        """Run a write until the database takes it: an outage must not lose a completion.

        If the lease runs out meanwhile, the fenced write changes nothing and says so.
        """
        delays = reconnect_delays()
        while True:
            try:
                return await operation(*args)
            except _DB_ERRORS as error:
                delay = next(delays)
                log.warning(
                    "queue write failed; retrying",
                    error=first_line(error),
                    retry_in_s=round(delay, 2),
                )
                await asyncio.sleep(delay)

    async def _heartbeat_loop(self) -> None:
        """Renew the leases of running events so a long handler is never run twice."""
        assert self._store is not None
        interval = max(0.05, self.config.event_visibility_timeout / 3)
        while True:
            await asyncio.sleep(interval)
            held = [event for event, _ in self._in_flight.values()]
            if not held:
                continue
            try:
                renewed = await self._store.heartbeat(held)
            except _DB_ERRORS as error:
                log.warning("heartbeat failed", error=first_line(error))
                continue
            for event in held:
                if event.id not in renewed and event.id in self._in_flight:
                    log.warning(
                        "lease lost while running", event_id=event.id, worker_id=self.worker_id
                    )

    async def _rescue_loop(self) -> None:
        """Return events whose holder died (lease expired) to the queue; any pool may do it."""
        assert self._store is not None
        interval = self.config.heron_rescue_interval
        while True:
            try:
                rescued = await self._store.rescue_expired()
            except _DB_ERRORS as error:
                log.warning("lease rescue failed", error=first_line(error))
            else:
                if rescued:
                    log.warning("expired leases rescued", count=rescued)
            await asyncio.sleep(interval)

    async def _drain_in_flight(self) -> None:
        """Give running events the grace period, then cancel them and release their leases."""
        if self._in_flight:
            tasks = [task for _, task in self._in_flight.values()]
            log.info("waiting for in-flight events", count=len(tasks))
            await asyncio.wait(tasks, timeout=self.config.heron_shutdown_grace_seconds)
        left = list(self._in_flight.values())
        if not left:
            return
        for _, task in left:
            task.cancel()
        await asyncio.gather(*(task for _, task in left), return_exceptions=True)
        assert self._store is not None
        events = [event for event, _ in left]
        try:
            released = await asyncio.wait_for(self._store.release(events), 10)
        except (*_DB_ERRORS, TimeoutError) as error:
            log.warning(
                "could not release events; their leases will expire", error=first_line(error)
            )
            return
        self._stats.released += len(released)
        log.warning("released unfinished events", ids=sorted(released))
