"""The page's live feed: Server-Sent Events saying "something changed", so that the page
fetches again. It wakes on every Web API call to the fake (Heron posting, streaming,
reacting), on a message posted from a page, and at least every `tick` seconds for what
has no signal of its own (a question moving through the queue)."""

from __future__ import annotations

import asyncio
import contextlib
import json
from collections.abc import AsyncIterator, Awaitable, Callable

import structlog

from heron.testing.slack import SlackFake

log = structlog.get_logger(__name__)


class Pulse:
    """Wakes every waiter at once; later waiters wait for the next fire()."""

    def __init__(self) -> None:
        self._event = asyncio.Event()

    def fire(self) -> None:
        self._event.set()
        self._event = asyncio.Event()

    async def wait(self) -> None:
        await self._event.wait()


class Feed:
    """`stream()` is one page's event stream; `close()` ends them all (before the HTTP
    server stops: it waits for open responses to finish)."""

    def __init__(
        self, fake: SlackFake, version: Callable[[], Awaitable[str]], *, tick: float = 1.0
    ) -> None:
        self.fake = fake
        self.version = version
        self.tick = tick
        self.pulse = Pulse()
        self.closed = False

    def close(self) -> None:
        self.closed = True
        self.pulse.fire()

    async def stream(self) -> AsyncIterator[str]:
        yield "retry: 1000\n\n"  # how soon a browser reconnects, in ms
        last: str | None = None
        while not self.closed:
            seen = len(self.fake.calls)
            version: str | None
            try:
                version = await self.version()
            except Exception as error:  # e.g. the database restarting: try again next tick
                log.warning("local workspace feed could not read the state", error=str(error))
                version = last
            if version != last:
                last = version
                yield f"event: change\ndata: {json.dumps({'version': version})}\n\n"
            await self._wait(seen)

    async def _wait(self, seen: int) -> None:
        calls = asyncio.ensure_future(
            self.fake.wait_for_calls_async(lambda calls: len(calls) > seen, self.tick)
        )
        pulse = asyncio.ensure_future(self.pulse.wait())
        try:
            await asyncio.wait(
                (calls, pulse), timeout=self.tick, return_when=asyncio.FIRST_COMPLETED
            )
        finally:
            for waiter in (calls, pulse):
                waiter.cancel()
            for waiter in (calls, pulse):
                with contextlib.suppress(asyncio.CancelledError, TimeoutError):
                    await waiter
