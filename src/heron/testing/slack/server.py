"""Serving an aiohttp application from a thread and event loop of its own.

The fake must answer while the test's own thread blocks (sync tests) and while the
test's loop is busy with the very client under test (async tests), so it cannot share
either; a daemon thread with a private loop serves both kinds, and other processes.
"""

from __future__ import annotations

import asyncio
import concurrent.futures
import socket
import threading
from collections.abc import Awaitable, Callable, Coroutine
from typing import Any, TypeVar

from aiohttp import web

T = TypeVar("T")


class LoopThread:
    """Start/stop an app on a free 127.0.0.1 port; run callbacks and coroutines on its loop.

    Runs once: `stop()` is safe twice and before `start()`, but a stopped server does not
    start again.
    """

    def __init__(
        self,
        app: Callable[[], web.Application],
        on_start: Callable[[], None],
        on_stop: Callable[[], Awaitable[None]],
    ) -> None:
        self._app = app
        self._on_start = on_start
        self._on_stop = on_stop
        self._lock = threading.Lock()
        self._loop: asyncio.AbstractEventLoop | None = None
        self._thread: threading.Thread | None = None
        self._runner: web.AppRunner | None = None
        self._early: list[Callable[[], object]] = []
        self._stopped = False
        self.port: int | None = None

    def start(self) -> None:
        with self._lock:
            if self._stopped:
                raise RuntimeError("a SlackFake runs once; create a new one")
            if self._thread is not None:
                return
            listener = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
            listener.bind(("127.0.0.1", 0))
            self.port = listener.getsockname()[1]
            ready: concurrent.futures.Future[None] = concurrent.futures.Future()
            self._thread = threading.Thread(
                target=self._serve, args=(listener, ready), name="slack-fake", daemon=True
            )
            self._thread.start()
        ready.result(timeout=10)

    def stop(self) -> None:
        with self._lock:
            if self._stopped:
                return
            self._stopped = True
            loop, thread = self._loop, self._thread
        if loop is None or thread is None:
            return
        asyncio.run_coroutine_threadsafe(self._shutdown(), loop).result(timeout=10)
        loop.call_soon_threadsafe(loop.stop)
        thread.join(timeout=10)

    def call_soon(self, callback: Callable[[], object]) -> None:
        """Run `callback` on the loop, in call order; held until the loop runs."""
        with self._lock:
            loop = self._loop
            if loop is None:
                self._early.append(callback)
                return
        if not loop.is_closed():
            loop.call_soon_threadsafe(callback)

    def run(self, coroutine: Coroutine[Any, Any, T]) -> concurrent.futures.Future[T]:
        """Schedule `coroutine` on the loop; wait on the future, or wrap it for asyncio."""
        if self._loop is None:
            coroutine.close()
            raise RuntimeError("start the SlackFake first")
        return asyncio.run_coroutine_threadsafe(coroutine, self._loop)

    def _serve(self, listener: socket.socket, ready: concurrent.futures.Future[None]) -> None:
        loop = asyncio.new_event_loop()
        asyncio.set_event_loop(loop)
        try:
            loop.run_until_complete(self._start_app(listener))
        except BaseException as error:
            ready.set_exception(error)
            loop.close()
            return
        with self._lock:  # callbacks queued before start run first, keeping their order
            self._loop = loop
            for callback in self._early:
                loop.call_soon(callback)
            self._early.clear()
        ready.set_result(None)
        try:
            loop.run_forever()
        finally:
            loop.run_until_complete(loop.shutdown_asyncgens())
            loop.close()

    async def _start_app(self, listener: socket.socket) -> None:
        self._runner = web.AppRunner(self._app(), access_log=None, handle_signals=False)
        await self._runner.setup()
        await web.SockSite(self._runner, listener).start()
        self._on_start()

    async def _shutdown(self) -> None:
        await self._on_stop()
        if self._runner is not None:
            await self._runner.cleanup()
