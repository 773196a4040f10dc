"""The local workspace on Heron's HTTP server: the page at `/` (and `/workspace`), its
static files, and a small JSON API with a Server-Sent Events feed under `/workspace/api/`.

Posts must be JSON: a form on another site cannot send that without the browser asking
first (CORS preflight), so no other page can post in the user's name.
"""

from __future__ import annotations

import json
from collections.abc import Awaitable, Callable
from functools import cache
from importlib import resources
from typing import Any

from starlette.requests import Request
from starlette.responses import HTMLResponse, JSONResponse, Response, StreamingResponse
from starlette.routing import Route

from heron.web.workspace.conversations import Conversations, RequestError
from heron.web.workspace.feed import Feed

API = "/workspace/api"
Endpoint = Callable[[Request], Awaitable[Response]]
STATIC = {"workspace.css": "text/css", "workspace.js": "text/javascript"}
NO_CACHE = {"Cache-Control": "no-cache"}  # a new Heron version's page shows at once


@cache
def static_text(name: str) -> str:
    """A file shipped in the package's static/ folder."""
    return resources.files("heron.web.workspace").joinpath("static", name).read_text("utf-8")


def workspace_routes(conversations: Conversations, feed: Feed) -> list[Route]:
    """Every route of the local workspace."""

    async def index(request: Request) -> Response:
        return HTMLResponse(static_text("index.html"), headers=NO_CACHE)

    async def static(request: Request) -> Response:
        name = request.path_params["name"]
        if name not in STATIC:
            return Response("not found", status_code=404, media_type="text/plain")
        return Response(static_text(name), media_type=STATIC[name], headers=NO_CACHE)

    async def info(request: Request) -> Response:
        return JSONResponse(conversations.info())

    async def channels(request: Request) -> Response:
        return JSONResponse({"channels": conversations.channels()})

    async def messages(request: Request) -> Response:
        ref = request.path_params["channel"]
        if request.method == "GET":
            return JSONResponse(await conversations.messages(ref))
        body = await _json_body(request)
        text, thread_ts = body.get("text"), body.get("thread_ts")
        if not isinstance(text, str) or not (thread_ts is None or isinstance(thread_ts, str)):
            raise RequestError("send {'text': '...', 'thread_ts': optional}", 400)
        message = await conversations.post(ref, text, thread_ts)
        feed.pulse.fire()
        return JSONResponse({"message": message}, status_code=201)

    async def thread(request: Request) -> Response:
        params = request.path_params
        return JSONResponse(await conversations.thread(params["channel"], params["ts"]))

    async def events(request: Request) -> Response:
        return StreamingResponse(
            feed.stream(),
            media_type="text/event-stream",
            headers={"Cache-Control": "no-cache", "X-Accel-Buffering": "no"},
        )

    return [
        Route("/", index),
        Route("/workspace", index),
        Route("/workspace/static/{name}", static),
        Route(f"{API}/workspace", _answering(info)),
        Route(f"{API}/channels", _answering(channels)),
        Route(
            f"{API}/channels/{{channel}}/messages", _answering(messages), methods=["GET", "POST"]
        ),
        Route(f"{API}/channels/{{channel}}/threads/{{ts}}", _answering(thread)),
        Route(f"{API}/feed", events),
    ]


def _answering(endpoint: Endpoint) -> Endpoint:
    """A RequestError becomes a JSON error with its status."""

    async def wrapped(request: Request) -> Response:
        try:
            return await endpoint(request)
        except RequestError as error:
            return JSONResponse({"error": str(error)}, status_code=error.status)

    return wrapped


async def _json_body(request: Request) -> dict[str, Any]:
    if request.headers.get("content-type", "").split(";")[0].strip() != "application/json":
        raise RequestError("post JSON (Content-Type: application/json)", 415)
    try:
        body = json.loads(await request.body())
    except (json.JSONDecodeError, UnicodeDecodeError):
        raise RequestError("the body is not valid JSON", 400) from None
    if not isinstance(body, dict):
        raise RequestError("the body must be a JSON object", 400)
    return body
