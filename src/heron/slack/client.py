"""slack_sdk clients configured once: base URL, timeouts and retry handlers."""

from __future__ import annotations

import asyncio
import random
from collections import Counter
from collections.abc import Mapping
from typing import Any

from slack_sdk.http_retry.async_handler import AsyncRetryHandler
from slack_sdk.http_retry.builtin_async_handlers import (
    AsyncConnectionErrorRetryHandler,
    AsyncRateLimitErrorRetryHandler,
    AsyncServerErrorRetryHandler,
)
from slack_sdk.http_retry.request import HttpRequest
from slack_sdk.http_retry.response import HttpResponse
from slack_sdk.http_retry.state import RetryState
from slack_sdk.web.async_client import AsyncWebClient

from heron.config import Config
from heron.errors import ConfigError

DEFAULT_API_URL = "https://slack.com/api/"


def api_url(config: Config) -> str:
    url = config.slack_api_url or DEFAULT_API_URL
    return url if url.endswith("/") else url + "/"


class RetryAfterHandler(AsyncRateLimitErrorRetryHandler):
    """Waits as long as Slack's Retry-After says. slack_sdk 3.x's async handler reads only
    the header's first character (aiohttp gives a string, not a list): "30" waits 3 s."""

    async def prepare_for_next_attempt_async(
        self,
        *,
        state: RetryState,
        request: HttpRequest,
        response: HttpResponse | None = None,
        error: Exception | None = None,
    ) -> None:
        if response is None:
            raise error or RuntimeError("rate-limit retry without a response")
        state.next_attempt_requested = True
        await asyncio.sleep(retry_after(response.headers) + random.random())
        state.increment_current_attempt()


def retry_after(headers: Mapping[str, Any]) -> float:
    """Seconds from a Retry-After header (a string, or a list of them); 1 if absent."""
    for name, value in headers.items():
        if name.lower() == "retry-after":
            first = value[0] if isinstance(value, list) and value else value
            try:
                return max(0.0, float(str(first)))
            except ValueError:
                return 1.0
    return 1.0


# Failed Slack Web API calls in this process, by (method, error), retried ones included;
# /metrics reports them as heron_slack_api_errors.
API_ERRORS: Counter[tuple[str, str]] = Counter()


class ErrorCounter(AsyncRetryHandler):
    """Never retries. First in the list, slack_sdk shows it every response and every
    exception before a real handler decides, so each failure is counted once."""

    async def can_retry_async(
        self,
        *,
        state: RetryState,
        request: HttpRequest,
        response: HttpResponse | None = None,
        error: Exception | None = None,
    ) -> bool:
        method = request.url.rsplit("/", 1)[-1]
        if error is not None:
            API_ERRORS[method, "timeout" if isinstance(error, TimeoutError) else "connection"] += 1
        elif response is not None:
            body = response.body or {}
            if response.status_code != 200:
                API_ERRORS[method, str(body.get("error") or f"http_{response.status_code}")] += 1
            elif body.get("ok") is False:
                API_ERRORS[method, str(body.get("error") or "unknown")] += 1
        return False


def retry_handlers(*, idempotent: bool = True) -> list[AsyncRetryHandler]:
    """429s are always retried after Retry-After (Slack refused the call). 5xx answers and
    dropped connections are retried only for calls that are safe to repeat: a post that
    reached Slack before the connection broke would otherwise appear twice."""
    handlers: list[AsyncRetryHandler] = [ErrorCounter(), RetryAfterHandler(max_retry_count=5)]
    if idempotent:
        handlers.append(AsyncServerErrorRetryHandler(max_retry_count=3))
        handlers.append(AsyncConnectionErrorRetryHandler(max_retry_count=3))
    return handlers


def web_client(config: Config, *, idempotent: bool = True, timeout: int = 30) -> AsyncWebClient:
    """The bot's Web API client. `idempotent=False` for posting (see retry_handlers)."""
    if config.slack_bot_token is None:
        raise ConfigError(["SLACK_BOT_TOKEN is required to talk to Slack"])
    return AsyncWebClient(
        token=config.slack_bot_token.get_secret_value(),
        base_url=api_url(config),
        timeout=timeout,
        retry_handlers=retry_handlers(idempotent=idempotent),
    )
