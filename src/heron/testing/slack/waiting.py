"""Waiting for the fake's state to change, from any thread or any event loop.

The fake's server runs on its own thread and loop, while tests wait from a plain thread
(sync tests) or from their own loop (async tests, where blocking would stall the very
client they are waiting for). `Signal` serves both without polling.
"""

from __future__ import annotations

import asyncio
import contextlib
import threading
from collections.abc import Callable


class Signal:
    """Call `notify()` after every change; waiters re-check their predicate then."""

    def __init__(self) -> None:
        self._condition = threading.Condition()
        self._waiters: set[tuple[asyncio.AbstractEventLoop, asyncio.Event]] = set()

    def notify(self) -> None:
        with self._condition:
            self._condition.notify_all()
            waiters = list(self._waiters)
        for loop, event in waiters:
            with contextlib.suppress(RuntimeError):  # that waiter's loop has just closed
                loop.call_soon_threadsafe(event.set)

    def wait(self, predicate: Callable[[], bool], timeout: float) -> bool:
        """Block this thread until `predicate()` holds; False on timeout."""
        with self._condition:
            return self._condition.wait_for(predicate, timeout)

    async def wait_async(self, predicate: Callable[[], bool], seconds: float) -> bool:
        """Wait without blocking the running loop; False on timeout."""
        waiter = (asyncio.get_running_loop(), asyncio.Event())
        with self._condition:
            self._waiters.add(waiter)
        try:
            async with asyncio.timeout(seconds):
                while True:
                    waiter[1].clear()
                    if predicate():
                        return True
                    await waiter[1].wait()
        except TimeoutError:
            return predicate()
        finally:
            with self._condition:
                self._waiters.discard(waiter)
