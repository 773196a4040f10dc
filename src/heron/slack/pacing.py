"""Keeping to Slack's per-method rate limits, and saying how long a backfill will take.

Slack limits each Web API method per app and workspace (Tier 3: about 50 requests a
minute for conversations.history and .replies). Since 2025, apps not approved for the
Marketplace may get 1 request a minute with at most 15 messages a page for those two,
so a backfill can take hours; spacing calls evenly keeps it from ever being refused,
and the pace is what bounds the time left. The clock is injectable so tests run fast.
"""

from __future__ import annotations

import asyncio
import math
import time
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Protocol

TIER_3_PER_MINUTE = 50.0
TIER_3_PAGE_SIZE = 200
# Slack's 2025 limit for apps not approved for the Marketplace.
NON_MARKETPLACE_PER_MINUTE = 1.0
NON_MARKETPLACE_PAGE_SIZE = 15
MAX_PAGE_SIZE = 999  # conversations.history's own ceiling


class Clock(Protocol):
    """Monotonic time and sleeping, replaceable by a virtual clock in tests."""

    def now(self) -> float: ...

    async def sleep(self, seconds: float) -> None: ...


class SystemClock:
    """The real clock."""

    def now(self) -> float:
        return time.monotonic()

    async def sleep(self, seconds: float) -> None:
        await asyncio.sleep(seconds)


class VirtualClock:
    """A clock that jumps instead of sleeping: an hour of pacing passes in no time.

    Sleepers never wake before their time, so pacing checked against this clock (by a
    fake Slack sharing it) holds exactly as it would in real time.
    """

    def __init__(self, start: float = 1_000_000.0) -> None:
        self.time = start
        self.slept = 0.0

    def now(self) -> float:
        return self.time

    async def sleep(self, seconds: float) -> None:
        if seconds > 0:
            self.time += seconds
            self.slept += seconds
        await asyncio.sleep(0)


@dataclass(frozen=True, slots=True)
class Pace:
    """How fast one method family may be called, and how much a page may hold."""

    requests_per_minute: float = TIER_3_PER_MINUTE
    page_size: int = TIER_3_PAGE_SIZE

    def __post_init__(self) -> None:
        if not self.requests_per_minute > 0:
            raise ValueError("requests per minute must be positive")
        if not 1 <= self.page_size <= MAX_PAGE_SIZE:
            raise ValueError(f"page size must be between 1 and {MAX_PAGE_SIZE}")

    @property
    def interval(self) -> float:
        """Seconds between two calls of one method."""
        return 60.0 / self.requests_per_minute

    def describe(self) -> str:
        rate = f"{self.requests_per_minute:g} request{'s' if self.requests_per_minute != 1 else ''}"
        return f"{rate}/min per method, pages of {self.page_size}"


NON_MARKETPLACE = Pace(NON_MARKETPLACE_PER_MINUTE, NON_MARKETPLACE_PAGE_SIZE)


class Pacer:
    """Spaces the calls of one method evenly, `interval` seconds apart.

    Even spacing (not bursts up to the limit) means a window never holds more than the
    limit, whatever Slack's window boundaries are. `hold` pushes the next call back when
    Slack answered 429 anyway (another process using the same app, a stricter limit).
    """

    def __init__(self, interval: float, clock: Clock) -> None:
        self.interval = interval
        self.clock = clock
        self._next = -math.inf
        self._lock = asyncio.Lock()

    def delay(self) -> float:
        """Seconds until the next call may go (0 if now)."""
        return max(0.0, self._next - self.clock.now())

    async def wait(self) -> None:
        """Return when the next call may go, and book the slot after it."""
        async with self._lock:
            delay = self.delay()
            if delay > 0:
                await self.clock.sleep(delay)
            self._next = max(self.clock.now(), self._next) + self.interval

    def hold(self, seconds: float) -> None:
        """No call before `seconds` from now (a Retry-After Slack sent)."""
        self._next = max(self._next, self.clock.now() + seconds)


def estimate_seconds(requests: Mapping[str, int], interval: float) -> float:
    """The least time `requests` (per method, the methods paced apart and in parallel)
    can take: the busiest method's calls, one interval apart, the first one at once."""
    busiest = max(requests.values(), default=0)
    return max(0, busiest - 1) * interval


def format_duration(seconds: float) -> str:
    """`45 s`, `12 min`, `3 h 20 min`, `2 d 4 h`: precise enough for a forecast."""
    if seconds < 90:
        return f"{math.ceil(seconds)} s"
    minutes = math.ceil(seconds / 60)
    if minutes < 120:
        return f"{minutes} min"
    hours, minutes = divmod(minutes, 60)
    if hours < 48:
        return f"{hours} h {minutes} min" if minutes else f"{hours} h"
    days, hours = divmod(hours, 24)
    return f"{days} d {hours} h" if hours else f"{days} d"
