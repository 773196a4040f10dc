"""`SlackFake`: a loopback Slack (Web API, Socket Mode, Events API) for the real SDKs.

The server runs in a thread of its own with its own event loop, so sync tests, async
tests and other processes can all use one fake; every public method is thread-safe and
returns at once, except the explicit waits (`wait_*`, with `*_async` twins that do not
block the caller's loop) and the synchronous Events API sends.
"""

from __future__ import annotations

import asyncio
import threading
import time
from collections.abc import Callable, Coroutine
from functools import partial
from pathlib import Path
from typing import Any

from aiohttp import web

from heron.testing.slack import events
from heron.testing.slack.activity import UserActivity
from heron.testing.slack.delivery import Delivery, DeliveryLog, DeliveryMode
from heron.testing.slack.events_api import EventsApiSender
from heron.testing.slack.export import write_export
from heron.testing.slack.faults import Fault, Faults
from heron.testing.slack.methods_chat import AssistantStatus, ChatMethods
from heron.testing.slack.methods_read import ReadMethods
from heron.testing.slack.model import AppIdentity, Channel, ChannelKind, Message, User
from heron.testing.slack.server import LoopThread
from heron.testing.slack.socket_mode import SocketModeServer
from heron.testing.slack.state import Workspace
from heron.testing.slack.waiting import Signal
from heron.testing.slack.web_api import ApiCall, Params, WebApi


class SlackFake(UserActivity):
    """Start with `with SlackFake() as fake:`; point slack_sdk at `fake.api_url`.

    `delivery`: where user activity goes ("socket", "events_api" or "both");
    `ack_timeout`: seconds before an unacknowledged delivery is retried (None: never);
    `echo_bot_messages`: send the app the events about its own posts, as Slack does.
    """

    def __init__(
        self,
        *,
        identity: AppIdentity | None = None,
        delivery: DeliveryMode | str = DeliveryMode.SOCKET,
        events_api_url: str | None = None,
        ack_timeout: float | None = None,
        echo_bot_messages: bool = True,
        clock: Callable[[], float] = time.time,
    ) -> None:
        self.identity = identity or AppIdentity()
        self.delivery = DeliveryMode(delivery)
        self.echo_bot_messages = echo_bot_messages
        self.clock = clock
        self.workspace = Workspace(self.identity.team_id, clock)
        self.faults = Faults(clock)
        self._lock = threading.Lock()
        self._calls: list[ApiCall] = []
        self._calls_signal = Signal()
        self._log = DeliveryLog()
        self._socket = SocketModeServer(self.identity, self._log, self._base_url)
        self._events_api = EventsApiSender(self.identity, self._log, clock)
        self._chat = ChatMethods(self.workspace, self.identity, self._echo)
        reads = ReadMethods(self.workspace, self.identity, self._socket.issue_url)
        self._api = WebApi(
            self.identity,
            self.workspace,
            self.faults,
            {**self._chat.handlers(), **reads.handlers()},
            self._record,
        )
        self._server = LoopThread(self._app, self._socket.start, self._shutdown)
        self.events_api_url = events_api_url
        self.ack_timeout = ack_timeout
        self._seed_workspace()

    # -- identity and settings ------------------------------------------------------------

    @property
    def base_url(self) -> str:
        """http://127.0.0.1:PORT, where files and the Socket Mode link are served too."""
        if self._server.port is None:
            raise RuntimeError("start the SlackFake first")
        return f"http://127.0.0.1:{self._server.port}"

    @property
    def api_url(self) -> str:
        """What to pass as slack_sdk's `base_url` (ends with /api/)."""
        return f"{self.base_url}/api/"

    @property
    def bot_token(self) -> str:
        """The xoxb- token every Web API method but apps.connections.open wants."""
        return self.identity.bot_token

    @property
    def app_token(self) -> str:
        """The xapp- token apps.connections.open wants (Socket Mode)."""
        return self.identity.app_token

    @property
    def signing_secret(self) -> str:
        """The secret Events API requests are signed with."""
        return self.identity.signing_secret

    @property
    def team_id(self) -> str:
        """The workspace's id (T…)."""
        return self.identity.team_id

    @property
    def bot_user_id(self) -> str:
        """The app's bot user (U…): what `<@…>` mentions name."""
        return self.identity.bot_user_id

    @property
    def bot_id(self) -> str:
        """The app's bot id (B…): on every message the bot posts."""
        return self.identity.bot_id

    @property
    def app_id(self) -> str:
        """The app's id (A…): `api_app_id` in every event."""
        return self.identity.app_id

    @property
    def events_api_url(self) -> str | None:
        """The app's Events API endpoint (e.g. http://127.0.0.1:P/slack/events)."""
        return self._events_api.url

    @events_api_url.setter
    def events_api_url(self, url: str | None) -> None:
        self._events_api.url = url

    @property
    def ack_timeout(self) -> float | None:
        """Seconds before an unacknowledged delivery is retried (None: never, the default)."""
        return self._socket.ack_timeout

    @ack_timeout.setter
    def ack_timeout(self, seconds: float | None) -> None:
        self._socket.ack_timeout = seconds
        self._events_api.ack_timeout = seconds

    # -- lifecycle ------------------------------------------------------------------------

    def start(self) -> SlackFake:
        """Serve on a free 127.0.0.1 port; returns once it accepts connections."""
        self._server.start()
        return self

    def stop(self) -> None:
        """Close every connection and stop serving; safe twice and before start."""
        self._server.stop()

    def __enter__(self) -> SlackFake:
        return self.start()

    def __exit__(self, *exc: object) -> None:
        self.stop()

    # -- recorded calls and state ---------------------------------------------------------

    @property
    def calls(self) -> list[ApiCall]:
        """Every Web API call so far, as (method, params), oldest first."""
        with self._lock:
            return list(self._calls)

    def calls_to(self, method: str) -> list[Params]:
        """The params of every call to `method`, oldest first."""
        return [call.params for call in self.calls if call.method == method]

    @property
    def statuses(self) -> list[AssistantStatus]:
        """assistant.threads.setStatus calls, oldest first."""
        with self._chat._lock:
            return list(self._chat.statuses)

    @property
    def ephemerals(self) -> list[dict[str, Any]]:
        """chat.postEphemeral messages (never stored in the conversation, as in Slack)."""
        with self._chat._lock:
            return list(self._chat.ephemerals)

    @property
    def deliveries(self) -> list[Delivery]:
        """Every attempt to deliver an event (Socket Mode envelopes and Events API POSTs)."""
        return self._log.all()

    @property
    def connected(self) -> int:
        """Socket Mode clients connected now."""
        return self._socket.connected

    def users(self) -> list[User]:
        """Every member of the workspace, the bot user first."""
        return self.workspace.users()

    def messages(self, channel: str) -> list[Message]:
        """A conversation's top-level messages, oldest first (as the channel shows them)."""
        return self.workspace.history(self.channel(channel).id)

    def replies(self, channel: str, thread_ts: str) -> list[Message]:
        """A thread's replies, oldest first, without the parent."""
        return self.workspace.thread(self.channel(channel).id, thread_ts)[1:]

    def bot_replies(self, channel: str, thread_ts: str) -> list[Message]:
        """The replies this app's bot posted in a thread."""
        return [m for m in self.replies(channel, thread_ts) if m.get("bot_id") == self.bot_id]

    def write_export(self, path: str | Path, *, zip: bool = False) -> Path:
        """Write a Slack workspace export: a folder, or a zip file when `zip`."""
        return write_export(self.workspace, Path(path), as_zip=zip)

    # -- failures -------------------------------------------------------------------------

    def fail_next(
        self,
        method: str,
        *,
        status: int = 429,
        retry_after: float | None = 1,
        error: str | None = None,
        times: int = 1,
    ) -> None:
        """Answer the next `times` calls of `method` with `status` (429 carries Retry-After),
        or with HTTP 200 `{"ok": false, "error": error}` when `error` is given."""
        self.faults.add(method, Fault(status, retry_after, error), times)

    def drop_next(self, method: str, times: int = 1) -> None:
        """Close the connection on the next `times` calls of `method`, answering nothing."""
        self.faults.add(method, Fault(drop=True), times)

    def lose_response_next(self, method: str, times: int = 1) -> None:
        """The next `times` calls take effect, then the connection closes unanswered: the
        caller cannot know that Slack did the work (a post made, its reply lost)."""
        self.faults.add(method, Fault(drop=True, after=True), times)

    def hold_response_next(self, method: str, times: int = 1) -> None:
        """The next `times` calls take effect, and their answers wait for
        release_responses() (or stop()): a caller can be killed in between."""
        self.faults.add(method, Fault(hold=True, after=True), times)

    def release_responses(self) -> None:
        """Send every held answer (see hold_response_next); later holds pass at once."""
        self._server.call_soon(self._api.released.set)

    def rate_limit(
        self, method: str, *, per_minute: int, max_page: int | None = None, window: float = 60.0
    ) -> None:
        """Allow `per_minute` calls per `window` seconds (429 beyond), pages of `max_page`."""
        self.faults.limit(method, per_minute=per_minute, max_page=max_page, window=window)

    def expire_streams(self, *, after_appends: int | None = 0) -> None:
        """Streams end server-side after `after_appends` appends (None: never), as Slack's
        do after minutes: chat.appendStream then answers message_not_in_streaming_state."""
        self._chat.stream_appends_limit = after_appends

    # -- socket mode and events -----------------------------------------------------------

    def deliver_event(
        self,
        event: dict[str, Any],
        *,
        event_id: str | None = None,
        retry_attempt: int = 0,
        retry_reason: str = "",
        duplicate: int = 1,
    ) -> str:
        """Send a raw event (`duplicate` times, one event_id); returns the event_id.

        Goes where `delivery` says; with no Socket Mode client connected it waits in a
        queue until one connects.
        """
        return self._dispatch(event, event_id, retry_attempt, retry_reason, duplicate)

    def disconnect(self, reason: str = "refresh_requested") -> None:
        """Send Slack's `disconnect` frame; clients reconnect via apps.connections.open."""
        self._server.call_soon(partial(self._spawn, self._socket.disconnect, reason))

    def drop_connections(self) -> None:
        """Cut every Socket Mode connection without a close frame."""
        self._server.call_soon(self._socket.drop)

    def wait_connected(self, timeout: float = 5.0, *, count: int = 1) -> None:
        """Block until `count` Socket Mode clients are connected; TimeoutError otherwise."""
        if not self._log.signal.wait(lambda: self.connected >= count, timeout):
            raise TimeoutError(f"no Socket Mode client connected within {timeout} s")

    async def wait_connected_async(
        self,
        timeout: float = 5.0,  # noqa: ASYNC109 - the sync twin's signature
        *,
        count: int = 1,
    ) -> None:
        """`wait_connected` without blocking the caller's event loop."""
        if not await self._log.signal.wait_async(lambda: self.connected >= count, timeout):
            raise TimeoutError(f"no Socket Mode client connected within {timeout} s")

    def wait_for_ack(self, envelope_id: str, timeout: float = 5.0) -> Delivery:
        """Wait until the client acknowledges this envelope; returns its delivery."""
        return self._wait_sync(lambda: self._log.acked_envelope(envelope_id), timeout, envelope_id)

    async def wait_for_ack_async(
        self,
        envelope_id: str,
        timeout: float = 5.0,  # noqa: ASYNC109 - the sync twin's signature
    ) -> Delivery:
        """`wait_for_ack` without blocking the caller's event loop."""
        return await self._wait(lambda: self._log.acked_envelope(envelope_id), timeout, envelope_id)

    def wait_for_event_ack(self, event_id: str, timeout: float = 5.0) -> Delivery:
        """Wait until any delivery of this event is acked (socket ack or HTTP 2xx)."""
        return self._wait_sync(lambda: self._log.acked_event(event_id), timeout, event_id)

    async def wait_for_event_ack_async(
        self,
        event_id: str,
        timeout: float = 5.0,  # noqa: ASYNC109 - the sync twin's signature
    ) -> Delivery:
        """`wait_for_event_ack` without blocking the caller's event loop."""
        return await self._wait(lambda: self._log.acked_event(event_id), timeout, event_id)

    def wait_for_call(self, method: str, *, count: int = 1, timeout: float = 5.0) -> Params:
        """Wait until `method` was called `count` times; returns that call's params."""
        done = self._calls_signal.wait(lambda: len(self.calls_to(method)) >= count, timeout)
        return self._nth_call(method, count, timeout, done)

    async def wait_for_calls_async(
        self,
        predicate: Callable[[list[ApiCall]], bool],
        timeout: float = 5.0,  # noqa: ASYNC109 - like the other waits
    ) -> None:
        """Wait until `predicate(calls)` holds (e.g. "a reply was posted or streamed")."""
        if not await self._calls_signal.wait_async(lambda: predicate(self.calls), timeout):
            raise TimeoutError(f"the Web API calls did not match within {timeout} s")

    async def wait_for_call_async(
        self,
        method: str,
        *,
        count: int = 1,
        timeout: float = 5.0,  # noqa: ASYNC109 - the sync twin's signature
    ) -> Params:
        """`wait_for_call` without blocking the caller's event loop."""
        done = await self._calls_signal.wait_async(
            lambda: len(self.calls_to(method)) >= count, timeout
        )
        return self._nth_call(method, count, timeout, done)

    def send_events_api(
        self,
        event: dict[str, Any],
        *,
        event_id: str | None = None,
        retry_num: int | None = None,
        retry_reason: str | None = None,
        bad_signature: bool = False,
        timestamp: int | None = None,
    ) -> tuple[int, str]:
        """POST one signed event_callback to `events_api_url`; returns (status, body).

        Blocks this thread: from async code use `send_events_api_async`.
        """
        body = self._callback(event, event_id)
        post = self._events_api.post(
            body,
            retry_num=retry_num,
            retry_reason=retry_reason,
            bad_signature=bad_signature,
            timestamp=timestamp,
        )
        return self._server.run(post).result()

    async def send_events_api_async(
        self,
        event: dict[str, Any],
        *,
        event_id: str | None = None,
        retry_num: int | None = None,
        retry_reason: str | None = None,
        bad_signature: bool = False,
        timestamp: int | None = None,
    ) -> tuple[int, str]:
        """`send_events_api` for async code: the app's server may share this loop."""
        body = self._callback(event, event_id)
        post = self._events_api.post(
            body,
            retry_num=retry_num,
            retry_reason=retry_reason,
            bad_signature=bad_signature,
            timestamp=timestamp,
        )
        return await asyncio.wrap_future(self._server.run(post))

    def send_url_verification(self, challenge: str) -> tuple[int, str]:
        """The handshake Slack sends when the Request URL is set; returns (status, body)."""
        body = events.url_verification(challenge, self.identity)
        return self._server.run(self._events_api.post(body)).result()

    async def send_url_verification_async(self, challenge: str) -> tuple[int, str]:
        """`send_url_verification` for async code."""
        body = events.url_verification(challenge, self.identity)
        return await asyncio.wrap_future(self._server.run(self._events_api.post(body)))

    # -- internals ------------------------------------------------------------------------

    def _seed_workspace(self) -> None:
        identity = self.identity
        self.workspace.add_user(
            User(
                identity.bot_user_id,
                identity.bot_name,
                identity.bot_name.title(),
                identity.team_id,
                is_bot=True,
                bot_id=identity.bot_id,
            )
        )
        general = Channel(
            self.workspace.new_id("C"),
            "general",
            ChannelKind.PUBLIC,
            int(self.clock()),
            identity.bot_user_id,
            is_general=True,
        )
        self.workspace.add_channel(general)

    def _base_url(self) -> str:
        return self.base_url

    def _record(self, call: ApiCall) -> None:
        with self._lock:
            self._calls.append(call)
        self._calls_signal.notify()

    def _echo(self, event: dict[str, Any], channel: Channel) -> None:
        if self.echo_bot_messages:
            self._publish(event, channel)

    def _publish(self, event: dict[str, Any], channel: Channel | None = None) -> str | None:
        if channel is not None and self.bot_user_id not in channel.members:
            return None  # Slack only tells an app about conversations its bot is in
        return self._dispatch(event, None, 0, "", 1)

    def _dispatch(
        self,
        event: dict[str, Any],
        event_id: str | None,
        retry_attempt: int,
        retry_reason: str,
        duplicate: int,
    ) -> str:
        payload = self._callback(event, event_id)
        for _ in range(duplicate):
            self._server.call_soon(
                partial(self._route, payload, payload["event_id"], retry_attempt, retry_reason)
            )
        return str(payload["event_id"])

    def _callback(self, event: dict[str, Any], event_id: str | None) -> dict[str, Any]:
        return events.event_callback(
            event,
            self.identity,
            event_id=event_id or events.new_event_id(),
            event_time=int(self.clock()),
        )

    def _route(
        self, payload: dict[str, Any], event_id: str, retry_attempt: int, retry_reason: str
    ) -> None:
        if self.delivery in (DeliveryMode.SOCKET, DeliveryMode.BOTH):
            self._socket.send(payload, event_id, retry_attempt, retry_reason)
        if self.delivery in (DeliveryMode.EVENTS_API, DeliveryMode.BOTH):
            self._events_api.deliver(payload, event_id, retry_attempt, retry_reason)

    @staticmethod
    def _spawn(start: Callable[[str], Coroutine[Any, Any, None]], argument: str) -> None:
        asyncio.get_running_loop().create_task(start(argument))

    def _wait_sync(
        self, find: Callable[[], Delivery | None], timeout: float, what: str
    ) -> Delivery:
        if not self._log.signal.wait(lambda: find() is not None, timeout):
            raise TimeoutError(f"{what} was not acknowledged within {timeout} s")
        found = find()
        assert found is not None
        return found

    async def _wait(
        self, find: Callable[[], Delivery | None], seconds: float, what: str
    ) -> Delivery:
        if not await self._log.signal.wait_async(lambda: find() is not None, seconds):
            raise TimeoutError(f"{what} was not acknowledged within {seconds} s")
        found = find()
        assert found is not None
        return found

    def _nth_call(self, method: str, count: int, timeout: float, done: bool) -> Params:
        if not done:
            raise TimeoutError(f"{method} was not called {count} time(s) within {timeout} s")
        return self.calls_to(method)[count - 1]

    def _app(self) -> web.Application:
        app = web.Application()
        app.router.add_route("*", "/api/{method}", self._api.handle)
        app.router.add_get("/link/", self._socket.handle)
        app.router.add_get("/files-pri/{team_file}/{name}", self._api.download)
        app.router.add_get("/files-pri/{team_file}/download/{name}", self._api.download)
        return app

    async def _shutdown(self) -> None:
        self._api.released.set()
        await self._socket.stop()
        await self._events_api.stop()
