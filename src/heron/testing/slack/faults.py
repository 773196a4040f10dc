"""Scripted Web API failures and Slack's per-method rate limits.

`fail_next` and `drop_next` queue one-off faults per method (`fired()` lists those
served, so a test can tell that a fault it scripted did happen); `rate_limit` models the
limit Slack put on non-Marketplace apps in 2025 (conversations.history and .replies:
a few requests per minute, at most 15 messages a page). The clock is injectable and the
window adjustable, so a test can exhaust and refill a limit without waiting a minute.
"""

from __future__ import annotations

import math
import threading
import time
from collections import deque
from collections.abc import Callable
from dataclasses import dataclass, field


@dataclass(frozen=True, slots=True)
class Fault:
    """One scripted answer: an HTTP status (429 with Retry-After, 5xx), an error, or a drop."""

    status: int = 429
    retry_after: float | None = 1
    error: str | None = None
    drop: bool = False
    # Faults after the call took effect, as when Slack did the work but its answer never
    # arrived: `drop` closes the connection, `hold` keeps the answer back until released.
    after: bool = False
    hold: bool = False


@dataclass
class _Limit:
    per_window: int
    window: float
    max_page: int | None
    admitted: deque[float] = field(default_factory=deque)


class Faults:
    """Per-method fault queues and sliding-window limits; thread-safe."""

    def __init__(self, clock: Callable[[], float] = time.monotonic) -> None:
        self.clock = clock
        self._lock = threading.Lock()
        self._queued: dict[str, deque[Fault]] = {}
        self._limits: dict[str, _Limit] = {}
        self._fired: list[tuple[str, Fault]] = []

    def add(self, method: str, fault: Fault, times: int) -> None:
        with self._lock:
            self._queued.setdefault(method, deque()).extend([fault] * times)

    def limit(self, method: str, *, per_minute: int, max_page: int | None, window: float) -> None:
        with self._lock:
            self._limits[method] = _Limit(per_minute, window, max_page)

    def clear(self) -> None:
        with self._lock:
            self._queued.clear()
            self._limits.clear()

    def take(self, method: str) -> Fault | None:
        """The next scripted fault for `method`, if any (consumed)."""
        with self._lock:
            queue = self._queued.get(method)
            fault = queue.popleft() if queue else None
            if fault is not None:
                self._fired.append((method, fault))
            return fault

    def fired(self) -> list[tuple[str, Fault]]:
        """Every scripted fault served so far, oldest first, with its method (`clear()`
        leaves this history alone)."""
        with self._lock:
            return list(self._fired)

    def admit(self, method: str) -> int | None:
        """None if the call may go ahead, else the whole seconds to put in Retry-After."""
        with self._lock:
            limit = self._limits.get(method)
            if limit is None:
                return None
            now = self.clock()
            while limit.admitted and limit.admitted[0] <= now - limit.window:
                limit.admitted.popleft()
            if len(limit.admitted) < limit.per_window:
                limit.admitted.append(now)
                return None
            # Slack always answers whole seconds, and never 0.
            return max(1, math.ceil(limit.admitted[0] + limit.window - now))

    def max_page(self, method: str) -> int | None:
        with self._lock:
            limit = self._limits.get(method)
            return limit.max_page if limit else None
