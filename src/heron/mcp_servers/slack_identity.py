"""Who is calling the Slack MCP server over HTTP, and whether they may name the asker.

A token of HERON_MCP_USER_TOKENS is its user, whatever the request says. HERON_MCP_TOKEN
(how Heron's agent connects) is trusted: the request names its user in the
X-Heron-Slack-User header, or per call in its metadata. A loopback server without tokens
takes the header or the server's own user. Anything else is refused with 401 before MCP
sees it.
"""

from __future__ import annotations

import hmac
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Final

from starlette.datastructures import Headers
from starlette.responses import JSONResponse
from starlette.types import ASGIApp, Receive, Scope, Send

from heron.errors import ConfigError
from heron.mcp_servers.serving import HEALTH_PATH, TOKEN_ENV, configured_token, http_token
from heron.slack import search

SERVER_NAME: Final = "heron-slack"  # the MCP server's name, and its HTTP realm
USER_TOKENS_ENV: Final = "HERON_MCP_USER_TOKENS"
USER_HEADER: Final = "X-Heron-Slack-User"
IDENTITY: Final = "heron_slack_user"  # where the middleware leaves the user, in scope state
TRUSTED: Final = "heron_slack_trusted"  # the request came with the main token (or none exist)


def _bearer(authorization: str) -> bytes:
    scheme, _, supplied = authorization.partition(" ")
    return supplied.strip().encode() if scheme.lower() == "bearer" else b""


@dataclass(frozen=True, slots=True)
class HttpAuth:
    """Decides, per HTTP request, whether it may in and whose view it reads."""

    main_token: str | None
    user_tokens: Mapping[str, str]  # token -> Slack user id
    default_user: str | None = None

    def identify(self, authorization: str, asserted: str | None) -> tuple[bool, str | None]:
        """(let in, user). The header only counts with the main token or without tokens."""
        token = _bearer(authorization)
        if self.main_token is None and not self.user_tokens:
            return True, asserted or self.default_user
        if token and self.main_token and hmac.compare_digest(token, self.main_token.encode()):
            return True, asserted or self.default_user
        for candidate, user in self.user_tokens.items():
            if token and hmac.compare_digest(token, candidate.encode()):
                return True, user  # a user's token is that user, whatever the header says
        return False, None

    def trusted(self, authorization: str) -> bool:
        """Whether the request may name its user itself: the main token, or no tokens."""
        if self.main_token is None and not self.user_tokens:
            return True
        token = _bearer(authorization)
        return bool(
            token and self.main_token and hmac.compare_digest(token, self.main_token.encode())
        )


class IdentityMiddleware:
    """Refuses unknown tokens (401) and records whose view each request reads."""

    def __init__(self, app: ASGIApp, auth: HttpAuth) -> None:
        self.app = app
        self.auth = auth

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http" or scope["path"] == HEALTH_PATH:
            await self.app(scope, receive, send)
            return
        headers = Headers(scope=scope)
        let_in, user = self.auth.identify(
            headers.get("authorization", ""), headers.get(USER_HEADER)
        )
        if not let_in:
            response = JSONResponse(
                {
                    "error": "invalid_token",
                    "error_description": f"send Authorization: Bearer ${TOKEN_ENV}, "
                    f"or a token of {USER_TOKENS_ENV}",
                },
                status_code=401,
                headers={"WWW-Authenticate": f'Bearer realm="{SERVER_NAME}"'},
            )
            await response(scope, receive, send)
            return
        state = {
            **scope.get("state", {}),
            IDENTITY: user.strip() if user else None,
            TRUSTED: self.auth.trusted(headers.get("authorization", "")),
        }
        await self.app({**scope, "state": state}, receive, send)


def parse_user_tokens(text: str) -> dict[str, str]:
    """HERON_MCP_USER_TOKENS ("token:U123,token2:U456") as {token: user}; ConfigError."""
    tokens: dict[str, str] = {}
    problems = []
    for number, entry in enumerate((e.strip() for e in text.split(",") if e.strip()), 1):
        token, _, user = entry.rpartition(":")
        if not token.strip() or not search.is_user_id(user.strip()):
            problems.append(f"{USER_TOKENS_ENV}: entry {number} is not token:U0123ABCD")
        elif token.strip() in tokens:
            problems.append(f"{USER_TOKENS_ENV}: entry {number} repeats an earlier token")
        else:
            tokens[token.strip()] = user.strip()
    if problems:
        raise ConfigError(problems)
    return tokens


def http_auth(
    host: str,
    user_tokens: Mapping[str, str],
    default_user: str | None = None,
    environ: Mapping[str, str] | None = None,
) -> HttpAuth:
    """The HTTP rules; off loopback, some token (main or per user) is required."""
    main_token = configured_token(environ) if user_tokens else http_token(host, environ)
    if main_token is not None and main_token in user_tokens:
        raise ConfigError([f"{USER_TOKENS_ENV}: a user's token must differ from {TOKEN_ENV}"])
    return HttpAuth(main_token, dict(user_tokens), default_user)
