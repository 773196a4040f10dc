"""`FakeAnthropic`: a loopback Messages API (`POST /v1/messages`, `/v1/messages/count_tokens`).

Served by the stdlib threaded server, like the other JSON fakes: one thread per
connection means a hanging reply holds only its own request, SSE is plain writes on the
socket, and both sync and async tests can block or await without stalling the server.
Every public method is thread-safe.
"""

from __future__ import annotations

import asyncio
import contextlib
import itertools
import json
import threading
import time
from collections import deque
from collections.abc import Callable, Mapping
from http.server import ThreadingHTTPServer
from types import TracebackType
from typing import Any, ClassVar
from urllib.parse import urlsplit

from heron.testing.anthropic.recording import RecordedRequest, redact
from heron.testing.anthropic.replies import (
    Answer,
    Drop,
    Failure,
    Hang,
    Rendered,
    Reply,
    error,
    output_tokens,
    sse,
)
from heron.testing.http import JsonHandler, stop_server

Responder = Callable[[RecordedRequest], Reply | None]
"""Decides a reply from the request; None falls through to the fake's default."""

MESSAGES_PATH = "/v1/messages"
COUNT_TOKENS_PATH = "/v1/messages/count_tokens"

# A 400, not a 5xx: clients do not retry it, so an unexpected call fails the test at once.
UNSCRIPTED = error(
    400,
    "FakeAnthropic has no reply for this request: script one with fake.script(...), "
    "or pass default= or responder=",
)


class FakeAnthropic:
    """Start with `with FakeAnthropic() as fake:`; point the SDK at `fake.base_url`, `fake.api_key`.

    Each /v1/messages request takes the next scripted reply (`fake.script(...)`); when the
    script is empty, `responder(request)` decides, and failing that `default` (an error
    unless set). `count_tokens` never consumes a reply. Requests with another key get a 401.
    """

    def __init__(
        self,
        *,
        api_key: str = "sk-ant-fake-key",
        default: Reply | None = None,
        responder: Responder | None = None,
    ) -> None:
        self.api_key = api_key
        self.default: Reply = default or UNSCRIPTED
        self.responder = responder
        self._changed = threading.Condition()
        self._script: deque[Reply] = deque()
        self._requests: list[RecordedRequest] = []
        self._token_counts: list[RecordedRequest] = []
        self._ids = itertools.count(1)
        self._closing = threading.Event()
        self._server: ThreadingHTTPServer | None = None
        self._stopped = False
        self._served = 0.0

    # -- lifecycle ----------------------------------------------------------------------------

    @property
    def base_url(self) -> str:
        """http://127.0.0.1:PORT: the SDK's `base_url` (or `ANTHROPIC_BASE_URL`), without /v1."""
        if self._server is None:
            raise RuntimeError("start the FakeAnthropic first")
        return f"http://127.0.0.1:{self._server.server_address[1]}"

    def start(self) -> FakeAnthropic:
        """Serve on a free 127.0.0.1 port; a second call does nothing."""
        with self._changed:
            if self._stopped:
                raise RuntimeError("a FakeAnthropic runs once; create a new one")
            if self._server is None:
                self._server = ThreadingHTTPServer(("127.0.0.1", 0), _handler_for(self))
                # A short poll: shutdown() waits up to one poll interval, at every test's teardown.
                threading.Thread(
                    target=self._server.serve_forever,
                    kwargs={"poll_interval": 0.02},
                    name="fake-anthropic",
                    daemon=True,
                ).start()
        return self

    def stop(self) -> None:
        """Stop serving and end hanging replies; safe twice and before start."""
        with self._changed:
            if self._stopped:
                return
            self._stopped = True
            server = self._server
        self._closing.set()
        stop_server(server)

    def __enter__(self) -> FakeAnthropic:
        return self.start()

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        self.stop()

    # -- script -------------------------------------------------------------------------------

    def script(self, *replies: Reply) -> None:
        """Queue replies for the next requests, in order (after any still queued)."""
        with self._changed:
            self._script.extend(replies)

    @property
    def pending(self) -> int:
        """How many scripted replies no request has taken yet."""
        with self._changed:
            return len(self._script)

    # -- recordings -----------------------------------------------------------------------------

    @property
    def requests(self) -> list[RecordedRequest]:
        """Every /v1/messages request received, oldest first (refused ones included)."""
        with self._changed:
            return list(self._requests)

    @property
    def served_seconds(self) -> float:
        """Time spent serving requests, from reading one to its last byte: the "model
        time" a benchmark subtracts to measure what is Heron's own."""
        with self._changed:
            return self._served

    def _add_served(self, seconds: float) -> None:
        with self._changed:
            self._served += seconds

    @property
    def token_count_requests(self) -> list[RecordedRequest]:
        """Every /v1/messages/count_tokens request received."""
        with self._changed:
            return list(self._token_counts)

    @property
    def last_request(self) -> RecordedRequest:
        """The latest /v1/messages request; LookupError when there is none."""
        with self._changed:
            if not self._requests:
                raise LookupError("FakeAnthropic has received no /v1/messages request")
            return self._requests[-1]

    def wait_for_requests(self, count: int = 1, timeout: float = 5.0) -> list[RecordedRequest]:
        """Block until `count` /v1/messages requests have arrived; TimeoutError otherwise."""
        with self._changed:
            if not self._changed.wait_for(lambda: len(self._requests) >= count, timeout):
                raise TimeoutError(
                    f"FakeAnthropic got {len(self._requests)} of {count} request(s) in {timeout} s"
                )
            return list(self._requests)

    async def wait_for_requests_async(
        self,
        count: int = 1,
        timeout: float = 5.0,  # noqa: ASYNC109 - the sync twin's signature
    ) -> list[RecordedRequest]:
        """`wait_for_requests` without blocking the caller's event loop."""
        return await asyncio.to_thread(self.wait_for_requests, count, timeout)

    # -- used by the request handler ------------------------------------------------------------

    def _record(
        self, path: str, headers: Mapping[str, str], body: Mapping[str, Any]
    ) -> RecordedRequest:
        authorized = headers.get("x-api-key") == self.api_key or (
            headers.get("authorization") == f"Bearer {self.api_key}"
        )
        request = RecordedRequest(path, redact(headers), body, authorized)
        with self._changed:
            (self._token_counts if path == COUNT_TOKENS_PATH else self._requests).append(request)
            self._changed.notify_all()
        return request

    def _next_reply(self, request: RecordedRequest) -> Reply:
        with self._changed:
            if self._script:
                return self._script.popleft()
            responder = self.responder
        if responder is not None:
            try:
                reply = responder(request)
            except Exception as exc:  # the test's bug: show it, do not let the SDK retry it
                return error(400, f"FakeAnthropic responder raised {exc!r}")
            if reply is not None:
                return reply
        return self.default

    def _render(self, answer: Answer, request: RecordedRequest) -> Rendered:
        with self._changed:
            message_id = f"msg_fake_{next(self._ids):06d}"
            tool_ids = tuple(
                call.id or f"toolu_fake_{next(self._ids):06d}" for call in answer.tool_calls
            )
        scripted_input = answer.usage.input_tokens
        return Rendered(
            answer=answer,
            message_id=message_id,
            model=request.model,
            tool_ids=tool_ids,
            input_tokens=request.input_tokens if scripted_input is None else scripted_input,
            output_tokens=output_tokens(answer),
        )

    def _request_id(self) -> str:
        with self._changed:
            return f"req_fake_{next(self._ids):06d}"


def _rejection(request: RecordedRequest, parsed: bool) -> Failure | None:
    """The error Anthropic would answer before looking at the conversation, if any."""
    if request.path not in (MESSAGES_PATH, COUNT_TOKENS_PATH):
        return error(404, f"Not found: {request.path}")
    if not request.authorized:
        return error(401, "invalid x-api-key")
    if "anthropic-version" not in request.headers:
        return error(400, "anthropic-version: header is required")
    if not parsed:
        return error(400, "There was an error parsing the body of your request as JSON")
    required = ["model", "messages"] + (["max_tokens"] if request.path == MESSAGES_PATH else [])
    missing = [name for name in required if name not in request.body]
    if missing:
        return error(400, f"{missing[0]}: Field required")
    return None


class _Handler(JsonHandler):
    fake: ClassVar[FakeAnthropic]
    responses = {
        **JsonHandler.responses,
        529: ("Overloaded", "The API is temporarily overloaded"),
    }

    def do_GET(self) -> None:
        self._send_failure(error(404, f"Not found: {self.path}"))

    def do_POST(self) -> None:
        started = time.perf_counter()
        try:
            self._post()
        finally:
            self.fake._add_served(time.perf_counter() - started)

    def _post(self) -> None:
        raw = self.rfile.read(int(self.headers.get("Content-Length") or 0))
        try:
            body = json.loads(raw)
        except ValueError:
            body = None
        parsed = isinstance(body, dict)
        path = urlsplit(self.path).path  # the SDK's beta client adds ?beta=true
        headers = {name.lower(): value for name, value in self.headers.items()}
        request = self.fake._record(path, headers, body if parsed else {})
        with contextlib.suppress(ConnectionError):  # the client gave up (timeout) or dropped
            refused = _rejection(request, parsed)
            if refused is not None:
                self._send_failure(refused)
            elif path == COUNT_TOKENS_PATH:
                self.reply(200, {"input_tokens": request.input_tokens}, self._request_headers())
            else:
                self._serve(self.fake._next_reply(request), request)

    def _serve(self, reply: Reply, request: RecordedRequest) -> None:
        match reply:
            case Drop():
                self.close_connection = True
            case Hang(seconds=seconds, then=then):
                if not self.fake._closing.wait(seconds) and then is not None:
                    self._serve(then, request)
                else:
                    self.close_connection = True
            case Failure(in_stream=True) if request.stream:
                self._stream_failure(reply, request)
            case Failure():
                self._send_failure(reply)
            case Answer():
                rendered = self.fake._render(reply, request)
                if request.stream:
                    self._stream(rendered)
                else:
                    self.reply(200, rendered.message(), self._request_headers())

    def _send_failure(self, failure: Failure) -> None:
        headers = self._request_headers()
        if failure.retry_after is not None:
            seconds = failure.retry_after
            headers["retry-after"] = str(int(seconds)) if seconds == int(seconds) else str(seconds)
        self.reply(failure.status, failure.body(headers["request-id"]), headers)

    def _stream(self, rendered: Rendered) -> None:
        self._start_events()
        for number, (event, data) in enumerate(rendered.events()):
            if number and rendered.answer.delay and self.fake._closing.wait(rendered.answer.delay):
                return
            self.wfile.write(sse(event, data))

    def _stream_failure(self, failure: Failure, request: RecordedRequest) -> None:
        opening = self.fake._render(Answer(), request).opening()
        self._start_events()
        self.wfile.write(sse(*opening))
        self.wfile.write(sse("error", failure.body(self.fake._request_id())))

    def _start_events(self) -> None:
        self.close_connection = True  # HTTP/1.0: the end of the connection ends the stream
        self.send_response(200)
        self.send_header("Content-Type", "text/event-stream; charset=utf-8")
        self.send_header("Cache-Control", "no-cache")
        for name, value in self._request_headers().items():
            self.send_header(name, value)
        self.end_headers()

    def _request_headers(self) -> dict[str, str]:
        return {"request-id": self.fake._request_id()}


def _handler_for(fake: FakeAnthropic) -> type[_Handler]:
    class Handler(_Handler):
        pass

    Handler.fake = fake
    return Handler
