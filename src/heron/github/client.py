"""A small read-only GitHub REST client: rate limits and errors explained, never hammered."""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable, Callable
from datetime import UTC, datetime
from typing import Any, Final

import httpx2

from heron.errors import HeronError, first_line

SERVER_NAME: Final = "heron-github"
DEFAULT_API_URL: Final = "https://api.github.com"
SHORT_RETRY_SECONDS: Final = 2.0
TIMEOUT_SECONDS: Final = 20.0
API_VERSION: Final = "2022-11-28"
_JSON: Final = "application/vnd.github+json"


class GitHubError(HeronError):
    """GitHub answered with an error, or could not be reached; the message says why."""


class RateLimitedError(GitHubError):
    """GitHub's rate limit is exhausted; the message says when it resets."""


# -- the REST client ------------------------------------------------------------------------


def _header_float(response: httpx2.Response, name: str) -> float | None:
    try:
        return float(response.headers[name])
    except (KeyError, ValueError):
        return None


def _rate_limit_message(response: httpx2.Response, authenticated: bool) -> str | None:
    """The error to report if `response` is a rate limit (403/429), else None."""
    if response.status_code not in (403, 429):
        return None
    retry_after = _header_float(response, "retry-after")
    reset = _header_float(response, "x-ratelimit-reset")
    exhausted = response.headers.get("x-ratelimit-remaining") == "0"
    if retry_after is None and not exhausted and response.status_code == 403:
        return None  # a plain permission refusal
    hint = "" if authenticated else "; set GITHUB_TOKEN for a higher limit"
    if retry_after is not None:
        at = datetime.now(UTC).timestamp() + retry_after
        when = f"retry after {retry_after:g} s (at {_iso(at)})"
    elif reset is not None:
        when = f"it resets at {_iso(reset)}"
    else:
        when = "try again later"
    return f"GitHub rate limit reached (HTTP {response.status_code}): {when}{hint}"


def _iso(epoch: float) -> str:
    return datetime.fromtimestamp(epoch, UTC).strftime("%Y-%m-%dT%H:%M:%SZ")


def _message(response: httpx2.Response) -> str:
    try:
        body = response.json()
    except ValueError:
        return response.text[:200].strip()
    return str(body.get("message", "")) if isinstance(body, dict) else ""


class GitHubClient:
    """GET requests to GitHub's REST API, with GitHub's failures turned into `GitHubError`."""

    def __init__(
        self,
        token: str | None = None,
        api_url: str = DEFAULT_API_URL,
        sleep: Callable[[float], Awaitable[None]] = asyncio.sleep,
    ) -> None:
        self.token = token or None
        self.api_url = api_url.rstrip("/")
        self._sleep = sleep

    def _headers(self, accept: str) -> dict[str, str]:
        headers = {
            "Accept": accept,
            "X-GitHub-Api-Version": API_VERSION,
            "User-Agent": SERVER_NAME,
        }
        if self.token is not None:
            headers["Authorization"] = f"Bearer {self.token}"
        return headers

    async def get(
        self, path: str, params: dict[str, Any] | None = None, accept: str = _JSON
    ) -> Any:
        """The decoded JSON of `GET path`; one short retry for `retry-after` <= 2 s."""
        query = {key: value for key, value in (params or {}).items() if value is not None}
        async with httpx2.AsyncClient(
            base_url=self.api_url, headers=self._headers(accept), timeout=TIMEOUT_SECONDS
        ) as http:
            for attempt in range(2):
                try:
                    response = await http.get(path, params=query)
                except httpx2.HTTPError as error:
                    raise GitHubError(
                        f"cannot reach GitHub at {self.api_url}: {first_line(error)}"
                        " (check GITHUB_API_URL and the network)"
                    ) from error
                retry_after = _header_float(response, "retry-after")
                if (
                    attempt == 0
                    and response.status_code in (403, 429)
                    and retry_after is not None
                    and retry_after <= SHORT_RETRY_SECONDS
                ):
                    await self._sleep(max(retry_after, 0.0))
                    continue
                break
        return self._decode(response, path)

    def _decode(self, response: httpx2.Response, path: str) -> Any:
        status = response.status_code
        if status < 300:
            try:
                return response.json()
            except ValueError as error:
                raise GitHubError(f"GitHub sent a response that is not JSON for {path}") from error
        limited = _rate_limit_message(response, self.token is not None)
        if limited is not None:
            raise RateLimitedError(limited)
        detail = _message(response)
        detail = f": {detail}" if detail else ""
        if status == 401:
            raise GitHubError(f"GitHub rejected the credentials (401{detail}); check GITHUB_TOKEN")
        if status == 403:
            raise GitHubError(
                f"GitHub refused access to {path} (403{detail}); "
                "the token may lack the scope or the repository may restrict it"
            )
        if status == 404:
            raise GitHubError(
                f"not found on GitHub: {path} (404); check the repository, path, ref or number "
                "(a private repository also answers 404 to a token that cannot read it)"
            )
        if status == 422:
            raise GitHubError(f"GitHub rejected the request (422{detail})")
        if status >= 500:
            raise GitHubError(f"GitHub is failing (HTTP {status}{detail}); try again later")
        raise GitHubError(f"GitHub answered HTTP {status} for {path}{detail}")
