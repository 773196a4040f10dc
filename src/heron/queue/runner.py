"""The worker pool's asynchronous core: round trips, handlers, leases, shutdown.

One loop makes every round trip to the database: in one statement it completes the
events whose handlers returned and claims as many new ones as there is room for. Up to
MAX_ROUND_TRIPS run at once, each on its own connection, so a slow commit (a busy disk)
holds back only its own events and the server can flush several at once; completions
that arrive meanwhile ride along with the next one (group commit). A slot is freed the
moment its handler returns, so at most `size` handlers ever run, and an event's lease
is renewed until its completion is durable.
"""

from __future__ import annotations

import asyncio
import contextvars
import inspect
import time
from collections import deque
from collections.abc import Awaitable, Callable
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from typing import Any, TypeVar

import psycopg
import psycopg_pool
import structlog

from heron.config import Config
from heron.database.models import Event
from heron.errors import PermanentError, first_line
from heron.queue.backoff import reconnect_delays
from heron.queue.listener import NotifyListener
from heron.queue.store import QueueStore
from heron.queue.timings import Histogram

log = structlog.get_logger(__name__)

ProcessFunc = Callable[[Event], Any] | Callable[[Event], Awaitable[Any]]
DB_ERRORS = (psycopg.OperationalError, psycopg_pool.PoolTimeout, psycopg.InterfaceError)
MAX_ROUND_TRIPS = 4
# Prefetched events wait in this process for a free slot; keep that wait, on average,
# under this many seconds. With fast handlers a pool then claims ahead and drains many
# events per round trip; with slow ones (model calls) it never holds an event another
# process could be running.
PREFETCH_WAIT_BUDGET = 0.005
CANCEL_AGAIN_SECONDS = 1.0  # see cancel_and_wait
T = TypeVar("T")


@dataclass(slots=True)
class RunnerStats:
    """Counters since start (read from other threads; plain ints are safe to read)."""

    completed: int = 0
    retried: int = 0
    failed: int = 0
    lost_leases: int = 0
    released: int = 0
    claimed: int = 0
    # How long events waited to be claimed once due, and how long handlers ran.
    claim_wait: Histogram = field(default_factory=Histogram)
    handling: Histogram = field(default_factory=Histogram)


async def cancel_and_wait(tasks: list[asyncio.Task[Any]]) -> None:
    """Cancel the tasks and wait until they have ended, cancelling again any that runs on.

    Once is not always enough on Python 3.11: asyncio.wait_for, which psycopg_pool uses
    while a task waits for a connection, swallows a cancellation that lands just as the
    connection arrives (as it does right after a database restart), and a loop that
    swallowed its cancellation would run forever and hold up the whole stop.
    """
    pending = {task for task in tasks if not task.done()}
    while pending:
        for task in pending:
            task.cancel()
        _, pending = await asyncio.wait(pending, timeout=CANCEL_AGAIN_SECONDS)
    await asyncio.gather(*tasks, return_exceptions=True)  # all done: collect their outcomes


def is_async_callable(func: object) -> bool:
    """True for coroutine functions and objects whose __call__ is one."""
    return inspect.iscoroutinefunction(func) or inspect.iscoroutinefunction(
        getattr(func, "__call__", None)  # noqa: B004 - async callable objects
    )


class PoolRunner:
    """Runs `process_func` for claimed events on the current event loop until stopped."""

    def __init__(
        self,
        size: int,
        process_func: ProcessFunc,
        store: QueueStore,
        listener_conninfo: str,
        config: Config,
        worker_id: str,
    ) -> None:
        self.size = size
        self.process_func = process_func
        self.store = store
        self.config = config
        self.worker_id = worker_id
        self.stats = RunnerStats()
        self.listener = NotifyListener(listener_conninfo, self._on_notify)
        self.in_flight: dict[int, tuple[Event, asyncio.Task[None]]] = {}
        self._executor = (
            None if is_async_callable(process_func) else ThreadPoolExecutor(size, "heron-worker")
        )
        self._acks: list[tuple[Event, asyncio.Future[bool]]] = []
        self._kick = asyncio.Event()
        self._wakes = 0  # NOTIFYs received
        self._wakes_seen = 0
        self._claiming = True
        self._may_have_more = True
        self._busy = 0  # handlers running: the slots in use
        self._reserved = 0  # room promised to claims in flight
        self._prefetch_cap = config.heron_prefetch
        self._handler_seconds: float | None = None  # moving average of handler durations
        self._waiting: deque[Event] = deque()  # claimed (prefetched), not started yet
        self._trips: set[asyncio.Task[None]] = set()
        self._delays = reconnect_delays()

    async def run(self, stop: asyncio.Event) -> None:
        """Work until `stop` is set, then shut down gracefully."""
        background = [
            asyncio.create_task(self.listener.run(), name="heron-listener"),
            asyncio.create_task(self._heartbeat_loop(), name="heron-heartbeat"),
            asyncio.create_task(self._rescue_loop(), name="heron-rescuer"),
        ]
        cycle = asyncio.create_task(self._cycle_loop(), name="heron-cycle")
        try:
            await stop.wait()
        finally:
            self._claiming = False  # the cycle goes on completing while in-flight events end
            self._kick.set()
            await self._drain()
            await cancel_and_wait([cycle, *background])
            if self._executor is not None:
                self._executor.shutdown(wait=False, cancel_futures=True)

    def _room(self) -> int:
        """How many more events this pool may claim now: free slots plus prefetch room."""
        held = self._busy + len(self._waiting) + self._reserved
        return self.size + self._prefetch_room() - held

    def _prefetch_room(self) -> int:
        """Events to claim ahead: as many as the slots get through within the wait budget."""
        seconds = self._handler_seconds
        if seconds is None or self._prefetch_cap == 0:
            return 0
        return min(self._prefetch_cap, int(PREFETCH_WAIT_BUDGET * self.size / max(seconds, 1e-6)))

    def _observe_handler(self, seconds: float) -> None:
        previous = self._handler_seconds
        self._handler_seconds = seconds if previous is None else 0.8 * previous + 0.2 * seconds

    def _on_notify(self) -> None:
        self._wakes += 1
        self._kick.set()

    # -- round trips ------------------------------------------------------------------------

    async def _cycle_loop(self) -> None:
        """Start a round trip whenever there is something to complete or room to claim."""
        poll = self.config.heron_poll_interval
        while True:
            if self._wakes != self._wakes_seen:  # something new may be claimable
                self._wakes_seen = self._wakes
                self._may_have_more = True
            free = self._room() if self._claiming else 0
            can_start = len(self._trips) < MAX_ROUND_TRIPS
            wants_claim = self._may_have_more and free > 0
            if can_start and (self._acks or wants_claim):
                # Claim only when something may be claimable: an idle queue costs nothing.
                limit = min(free, self.config.heron_claim_batch_size) if wants_claim else 0
                self._start_round_trip(limit)
                continue
            self._kick.clear()
            if self._wakes != self._wakes_seen:
                continue
            # Wait for a completion, a freed slot, a NOTIFY, or (when idle) the poll.
            timeout = poll if can_start and free > 0 else None
            # asyncio.timeout, not wait_for: on 3.11 wait_for can swallow a cancellation
            # that lands together with the wake-up, and the loop would never stop.
            try:
                async with asyncio.timeout(timeout):
                    await self._kick.wait()
            except TimeoutError:
                self._may_have_more = True

    def _start_round_trip(self, limit: int) -> None:
        acks, self._acks = self._acks, []
        self._reserved += limit
        trip = asyncio.create_task(self._round_trip(acks, limit, self._wakes))
        self._trips.add(trip)
        trip.add_done_callback(self._trips.discard)

    async def _round_trip(
        self, acks: list[tuple[Event, asyncio.Future[bool]]], limit: int, wakes: int
    ) -> None:
        """`wakes` is the NOTIFY count when the trip started: a claim that came back short
        proves the queue empty only if no NOTIFY arrived since."""
        try:
            try:
                done, events = await self.store.complete_and_claim(
                    [event for event, _ in acks], self.worker_id, limit
                )
            except Exception as error:
                # Nothing was written (or, if the reply alone was lost, the completions
                # are fenced the second time): try them again, paced. This trip keeps its
                # place while it waits, so retries never pile up.
                self._acks = acks + self._acks
                delay = next(self._delays)
                if isinstance(error, DB_ERRORS):
                    log.warning(
                        "queue round trip failed; database unavailable?",
                        error=first_line(error),
                        retry_in_s=round(delay, 2),
                    )
                else:
                    log.exception("queue round trip failed", retry_in_s=round(delay, 2))
                await asyncio.sleep(delay)
                return
            self._delays = reconnect_delays()
            for event, future in acks:
                if not future.done():
                    future.set_result(event.id in done)
            if not self._claiming and events:
                await self._release(events, "claimed while stopping")
                return
            self.stats.claimed += len(events)
            for event in events:
                if event.claimed_at is not None:
                    due = max(event.run_after, event.created_at)
                    self.stats.claim_wait.observe(
                        max(0.0, (event.claimed_at - due).total_seconds())
                    )
            self._waiting.extend(events)
            self._start_waiting()
            if limit > 0 and len(events) == limit:
                self._may_have_more = True
            elif limit > 0 and self._wakes == wakes:  # a claim-free trip proves nothing
                self._may_have_more = False
        finally:
            self._reserved -= limit
            self._kick.set()

    # -- one event --------------------------------------------------------------------------

    def _start_waiting(self) -> None:
        """Give free slots to claimed events, oldest first."""
        while self._waiting and self._busy < self.size and self._claiming:
            event = self._waiting.popleft()
            self._busy += 1
            task = asyncio.create_task(self._run_event(event))
            self.in_flight[event.id] = (event, task)

    async def _run_event(self, event: Event) -> None:
        # This task's own context: every line the handler logs carries the event and worker.
        structlog.contextvars.bind_contextvars(
            event_id=event.id, event_type=event.event_type, worker_id=self.worker_id
        )
        slot_held = True

        def free_slot() -> None:
            nonlocal slot_held
            if slot_held:
                slot_held = False
                spent = time.perf_counter() - started
                self._observe_handler(spent)
                self.stats.handling.observe(spent)
                self._busy -= 1
                self._start_waiting()
                self._kick.set()

        started = time.perf_counter()
        try:
            try:
                await self._call_handler(event)
            except asyncio.CancelledError:
                raise
            except Exception as error:
                free_slot()
                await self._record_failure(event, error)
            else:
                free_slot()
                if await self._ack(event):
                    self.stats.completed += 1
                else:
                    self._lease_lost(event, "completion")
        finally:
            free_slot()
            self.in_flight.pop(event.id, None)

    async def _call_handler(self, event: Event) -> None:
        if self._executor is None:
            await self.process_func(event)
            return
        loop = asyncio.get_running_loop()
        context = contextvars.copy_context()  # the thread logs with the event's bindings
        result = await loop.run_in_executor(self._executor, context.run, self.process_func, event)
        if inspect.isawaitable(result):  # a sync wrapper around async work
            await result

    async def _ack(self, event: Event) -> bool:
        """Queue a completion for the next round trip and wait until it is durable."""
        future: asyncio.Future[bool] = asyncio.get_running_loop().create_future()
        self._acks.append((event, future))
        self._kick.set()
        return await future

    async def _record_failure(self, event: Event, error: Exception) -> None:
        permanent = isinstance(error, PermanentError)
        message = f"{type(error).__name__}: {error}"
        if not await self._with_db_retry(self.store.fail, event, message, permanent):
            self._lease_lost(event, "failure")
        elif permanent or event.retry_count >= self.config.max_retry_count:
            self.stats.failed += 1
            log.error("event failed for good", error=message, retries=event.retry_count)
        else:
            self.stats.retried += 1
            log.warning("event failed; will retry", error=message, retry=event.retry_count + 1)

    def _lease_lost(self, event: Event, what: str) -> None:
        self.stats.lost_leases += 1
        log.warning(f"lease lost: {what} ignored", lease_id=str(event.lease_id))

    async def _with_db_retry(self, operation: Callable[..., Awaitable[T]], *args: Any) -> T:
        """Run a write until the database takes it: an outage must not lose a failure.

        If the lease runs out meanwhile, the fenced write changes nothing and says so.
        """
        delays = reconnect_delays()
        while True:
            try:
                return await operation(*args)
            except DB_ERRORS as error:
                delay = next(delays)
                log.warning(
                    "queue write failed; retrying", error=first_line(error), retry_in_s=delay
                )
                await asyncio.sleep(delay)

    # -- leases -----------------------------------------------------------------------------

    async def _heartbeat_loop(self) -> None:
        """Renew the leases of held events so a long handler is never run twice."""
        interval = max(0.05, self.config.event_visibility_timeout / 3)
        while True:
            await asyncio.sleep(interval)
            held = [event for event, _ in self.in_flight.values()] + list(self._waiting)
            if not held:
                continue
            try:
                renewed = await self.store.heartbeat(held)
            except DB_ERRORS as error:
                log.warning("heartbeat failed", error=first_line(error))
                continue
            for event in held:
                if event.id not in renewed and event.id in self.in_flight:
                    log.warning("lease lost while running", event_id=event.id)

    async def _rescue_loop(self) -> None:
        """Return events whose holder died (lease expired) to the queue; any pool may."""
        while True:
            try:
                rescued = await self.store.rescue_expired()
            except DB_ERRORS as error:
                log.warning("lease rescue failed", error=first_line(error))
            else:
                if rescued:
                    log.warning("expired leases rescued", count=rescued)
            await asyncio.sleep(self.config.heron_rescue_interval)

    # -- shutdown ---------------------------------------------------------------------------

    async def _drain(self) -> None:
        """Give running events the grace period, then cancel them and release their leases."""
        if self._waiting:  # prefetched, never started: give them back at once
            waiting, self._waiting = list(self._waiting), deque()
            await self._release(waiting, "released prefetched events")
        if self.in_flight:
            tasks = [task for _, task in self.in_flight.values()]
            log.info("waiting for in-flight events", count=len(tasks))
            await asyncio.wait(tasks, timeout=self.config.heron_shutdown_grace_seconds)
        left = list(self.in_flight.values())
        await cancel_and_wait([task for _, task in left])
        if self._trips:  # a claim in flight releases what it brings back
            await asyncio.wait(list(self._trips), timeout=10)
        if left:
            events = [event for event, _ in left]
            await self._release(events, "released unfinished events", expected=False)

    async def _release(self, events: list[Event], why: str, *, expected: bool = True) -> None:
        """Give held events back; `expected` (prefetched, or claimed while stopping) logs
        at info, events cut off by the grace period at warning."""
        try:
            async with asyncio.timeout(10):
                released = await self.store.release(events)
        except (*DB_ERRORS, TimeoutError) as error:
            log.warning("could not release events; their leases will expire", error=str(error))
            return
        self.stats.released += len(released)
        if released:
            (log.info if expected else log.warning)(why, ids=sorted(released))
