"""Heron's HTTP server leaves SIGINT/SIGTERM to the runtime, which stops parts in order."""

from __future__ import annotations

import asyncio
import signal

import aiohttp

from heron.web.server import HttpServer, build_http_app


async def test_a_sigterm_reaches_the_runtime_and_the_server_keeps_serving() -> None:
    loop = asyncio.get_running_loop()
    stop = asyncio.Event()
    loop.add_signal_handler(signal.SIGTERM, stop.set)
    server = HttpServer(build_http_app([], {}), "127.0.0.1", 0)
    try:
        await server.start()
        async with aiohttp.ClientSession() as session:
            async with session.get(server.url + "/healthz") as response:
                assert response.status == 200  # serving: uvicorn has set up its signals
            signal.raise_signal(signal.SIGTERM)
            await asyncio.wait_for(stop.wait(), timeout=10)
            assert not server.server.should_exit
            async with session.get(server.url + "/healthz") as response:
                assert response.status == 200  # still serving until the runtime says stop
    finally:
        await server.stop()
        loop.remove_signal_handler(signal.SIGTERM)
