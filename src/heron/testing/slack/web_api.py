"""The HTTP side of the Web API: read a call as slack_sdk sends it, authorise, answer.

slack_sdk sends arguments as a query string, a form body or a JSON body (per method)
and the token as `Authorization: Bearer`, or as a `token` argument; all are accepted and
merged. Every call is recorded before anything can fail, then scripted faults, the
token check and rate limits apply in the order Slack's edge applies them.
"""

from __future__ import annotations

import asyncio
import base64
import binascii
import json
from collections.abc import Callable, Mapping
from typing import Any, NamedTuple, TypeVar

from aiohttp import web

from heron.testing.slack.faults import Fault, Faults
from heron.testing.slack.model import AppIdentity, Channel, ChannelKind
from heron.testing.slack.state import Workspace

T = TypeVar("T")
Params = dict[str, Any]
Handler = Callable[[Params], dict[str, Any]]

# Methods that take the app-level token (xapp-); everything else wants the bot token.
APP_TOKEN_METHODS = frozenset({"apps.connections.open"})
LOGIN_PAGE = "<!DOCTYPE html><html><body>Sign in to Slack</body></html>"


class ApiCall(NamedTuple):
    """One Web API call as the fake received it (token removed)."""

    method: str
    params: Params


class ApiError(Exception):
    """Answer `{"ok": false, "error": error}` with HTTP 200, as Slack does."""

    def __init__(self, error: str, **extra: Any) -> None:
        super().__init__(error)
        self.error = error
        self.extra = extra


# -- arguments ------------------------------------------------------------------------------


def text(params: Params, key: str) -> str | None:
    value = params.get(key)
    return None if value is None or value == "" else str(value)


def required(params: Params, key: str, error: str = "invalid_arguments") -> str:
    value = text(params, key)
    if value is None:
        raise ApiError(error)
    return value


def flag(params: Params, key: str) -> bool:
    """Booleans arrive as JSON true/false or as slack_sdk's form-encoded "1"/"0"."""
    return params.get(key) in (True, 1, "1", "true", "True")


def integer(params: Params, key: str, default: int, maximum: int) -> int:
    value = params.get(key)
    if value is None or value == "":
        return default
    try:
        number = int(value)
    except (TypeError, ValueError):
        raise ApiError("invalid_limit") from None
    return default if number <= 0 else min(number, maximum)


def json_value(params: Params, key: str, error: str = "invalid_arguments") -> Any:
    """A JSON argument (blocks, metadata, chunks): a string in forms, native in JSON."""
    value = params.get(key)
    if isinstance(value, str):
        if value == "":
            return None
        try:
            return json.loads(value)
        except json.JSONDecodeError:
            raise ApiError(error) from None
    return value


def encode_cursor(kind: str, key: str) -> str:
    return base64.b64encode(f"{kind}:{key}".encode()).decode()


def decode_cursor(cursor: str | None, kind: str) -> str | None:
    """The key a cursor points at, None for the first page; invalid_cursor if foreign."""
    if cursor is None:
        return None
    try:
        found, _, key = base64.b64decode(cursor, validate=True).decode().partition(":")
    except (binascii.Error, UnicodeDecodeError):
        raise ApiError("invalid_cursor") from None
    if found != kind or not key:
        raise ApiError("invalid_cursor")
    return key


def paginate(
    items: list[T], key: Callable[[T], str], cursor: str | None, limit: int, kind: str
) -> tuple[list[T], str]:
    """One page of `items` and the next cursor ("" on the last page)."""
    start = 0
    wanted = decode_cursor(cursor, kind)
    if wanted is not None:
        keys = [key(item) for item in items]
        if wanted not in keys:
            raise ApiError("invalid_cursor")
        start = keys.index(wanted)
    page = items[start : start + limit]
    rest = items[start + limit :]
    return page, encode_cursor(kind, key(rest[0])) if rest else ""


# -- access ---------------------------------------------------------------------------------


def resolve_channel(
    workspace: Workspace, identity: AppIdentity, ref: str | None, *, member: bool
) -> Channel:
    """The conversation the bot may see; Slack hides private ones it is not in.

    `member`: the call needs the bot in the conversation (reading history, posting),
    which for a public channel it is not in is `not_in_channel`.
    """
    channel = workspace.find_channel(ref) if ref else None
    if channel is None:
        raise ApiError("channel_not_found")
    inside = identity.bot_user_id in channel.members
    if channel.kind is not ChannelKind.PUBLIC and not inside:
        raise ApiError("channel_not_found")
    if member and not inside:
        raise ApiError("not_in_channel")
    return channel


# -- serving --------------------------------------------------------------------------------


async def read_params(request: web.Request) -> Params:
    """Query string merged with a form, multipart or JSON body (JSON keeps its types)."""
    params: Params = dict(request.query)
    if request.method == "POST" and request.body_exists:
        if request.content_type == "application/json":
            body = await request.json()
            if isinstance(body, dict):
                params.update(body)
        else:
            form = await request.post()
            for key, value in form.items():
                params[key] = value if isinstance(value, str) else getattr(value, "filename", "")
    return params


def _bearer(request: web.Request) -> str | None:
    scheme, _, token = request.headers.get("Authorization", "").partition(" ")
    return token.strip() if scheme.lower() == "bearer" and token.strip() else None


class WebApi:
    """Serves `/api/{method}` and the files behind `url_private_download`."""

    def __init__(
        self,
        identity: AppIdentity,
        workspace: Workspace,
        faults: Faults,
        handlers: Mapping[str, Handler],
        record: Callable[[ApiCall], None],
    ) -> None:
        self.identity = identity
        self.workspace = workspace
        self.faults = faults
        self.handlers = handlers
        self.record = record
        # Held answers (Fault.hold) go out when this is set: release_responses() or stop.
        self.released = asyncio.Event()

    async def handle(self, request: web.Request) -> web.StreamResponse:
        """One call: record, scripted fault, method, token, rate limit, then the handler."""
        method = request.match_info["method"]
        params = await read_params(request)
        token = _bearer(request) or params.pop("token", None)
        self.record(ApiCall(method, dict(params)))
        fault = self.faults.take(method)
        if fault is not None and not fault.after:
            return self._fault(request, fault)
        handler = self.handlers.get(method)
        if handler is None:
            return web.json_response({"ok": False, "error": "unknown_method", "req_method": method})
        refusal = self._refusal(method, token)
        if refusal is not None:
            return web.json_response({"ok": False, "error": refusal})
        retry_after = self.faults.admit(method)
        if retry_after is not None:
            return self._rate_limited(retry_after)
        max_page = self.faults.max_page(method)
        if max_page is not None:
            params["limit"] = min(integer(params, "limit", max_page, max_page), max_page)
        try:
            body = handler(params)
        except ApiError as error:
            body = {"ok": False, "error": error.error, **error.extra}
        if fault is not None and fault.hold:
            await self.released.wait()
        if fault is not None and fault.drop:
            return self._fault(request, fault)
        return web.json_response(body)

    async def download(self, request: web.Request) -> web.StreamResponse:
        """A file's bytes for its bot; without the token, Slack's sign-in page (HTML, 200)."""
        file_id = request.match_info["team_file"].rpartition("-")[2]
        found = self.workspace.file(file_id)
        if found is None:
            return web.Response(status=404, text="Not Found")
        if _bearer(request) != self.identity.bot_token:
            return web.Response(text=LOGIN_PAGE, content_type="text/html")
        file, content = found
        return web.Response(body=content, content_type=file["mimetype"])

    def _refusal(self, method: str, token: str | None) -> str | None:
        if not token:
            return "not_authed"
        wanted = self.identity.app_token if method in APP_TOKEN_METHODS else self.identity.bot_token
        if token == wanted:
            return None
        if token in (self.identity.app_token, self.identity.bot_token):
            return "not_allowed_token_type"
        return "invalid_auth"

    def _fault(self, request: web.Request, fault: Fault) -> web.StreamResponse:
        if fault.drop:
            if request.transport is not None:
                request.transport.abort()
            return web.Response()  # never reaches the client
        if fault.error is not None:
            return web.json_response({"ok": False, "error": fault.error})
        if fault.status == 429:
            return self._rate_limited(fault.retry_after)
        headers = {} if fault.retry_after is None else {"Retry-After": f"{fault.retry_after:g}"}
        return web.json_response(
            {"ok": False, "error": "internal_error"}, status=fault.status, headers=headers
        )

    @staticmethod
    def _rate_limited(retry_after: float | None) -> web.StreamResponse:
        headers = {"Retry-After": f"{retry_after if retry_after is not None else 1:g}"}
        return web.json_response({"ok": False, "error": "ratelimited"}, status=429, headers=headers)
