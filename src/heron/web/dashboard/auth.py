"""Who may see the dashboard and replay events.

- HERON_DASHBOARD_TOKEN set: every request needs it, as `Authorization: Bearer <token>`
  or as the cookie that opening `/dashboard?token=<token>` once sets (HttpOnly,
  SameSite=Strict; it holds an HMAC of the token, never the token).
- No token, HTTP on loopback: open, but only to requests addressed to a loopback name
  (`localhost`, `127.0.0.1`, `[::1]`), so a web page cannot reach it by pointing its own
  domain at 127.0.0.1 (DNS rebinding).
- No token, HTTP beyond loopback: the dashboard is off (`from_config` gives None).

A write (POST) that a browser could be tricked into sending (cookie or open access) must
come from the dashboard's own origin: its Origin (or Referer) must name this host.
"""

from __future__ import annotations

import hashlib
import hmac
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from typing import Final
from urllib.parse import urlencode, urlsplit

from starlette.requests import Request
from starlette.responses import JSONResponse, PlainTextResponse, RedirectResponse, Response

from heron.config import Config
from heron.mcp_servers.serving import is_loopback

COOKIE: Final = "heron_dashboard"
COOKIE_PATH: Final = "/dashboard"
COOKIE_MAX_AGE: Final = 7 * 24 * 3600
TOKEN_ENV: Final = "HERON_DASHBOARD_TOKEN"  # noqa: S105 - a variable name, not a secret
_SESSION_CONTEXT: Final = b"heron dashboard session v1"
_SAFE_METHODS: Final = frozenset({"GET", "HEAD", "OPTIONS"})

Endpoint = Callable[[Request], Awaitable[Response]]


@dataclass(frozen=True, slots=True)
class DashboardAuth:
    """The dashboard's access rule; `token` None means open to loopback requests only."""

    token: str | None

    @classmethod
    def from_config(cls, config: Config) -> DashboardAuth | None:
        """The rule for these settings, or None when the dashboard must stay off (HTTP
        reachable from other machines and no token)."""
        secret = config.heron_dashboard_token
        token = (secret.get_secret_value().strip() or None) if secret is not None else None
        if token is None and not is_loopback(config.heron_http_host):
            return None
        return cls(token)

    def _bearer_ok(self, request: Request) -> bool:
        scheme, _, supplied = request.headers.get("authorization", "").partition(" ")
        return (
            self.token is not None
            and scheme.lower() == "bearer"
            and hmac.compare_digest(supplied.strip().encode(), self.token.encode())
        )

    def _cookie_ok(self, request: Request) -> bool:
        supplied = request.cookies.get(COOKIE)
        return (
            self.token is not None
            and supplied is not None
            and hmac.compare_digest(supplied.encode(), _session(self.token))
        )

    def refusal(self, request: Request) -> Response | None:
        """Why this request may not pass (a 401 or 403 response), or None to let it in."""
        if self.token is None:
            if not is_loopback(request.url.hostname or ""):
                return _refuse(
                    request,
                    403,
                    "forbidden",
                    "without HERON_DASHBOARD_TOKEN the dashboard answers only to "
                    "localhost, 127.0.0.1 or [::1]",
                )
            bearer = False
        else:
            bearer = self._bearer_ok(request)
            if not bearer and not self._cookie_ok(request):
                return _refuse(
                    request,
                    401,
                    "unauthorized",
                    "send 'Authorization: Bearer <HERON_DASHBOARD_TOKEN>', or open "
                    "/dashboard?token=<HERON_DASHBOARD_TOKEN> once to sign in",
                )
        if request.method not in _SAFE_METHODS and not bearer and not _same_origin(request):
            return _refuse(
                request, 403, "forbidden", "cross-origin request refused: use the dashboard"
            )
        return None

    def sign_in(self, request: Request) -> Response | None:
        """For `?token=` on the page: a redirect that sets the session cookie and drops the
        token from the address, or a 401; None when the request carries no `?token=`."""
        supplied = request.query_params.get("token")
        if supplied is None or self.token is None:
            return None
        if not hmac.compare_digest(supplied.strip().encode(), self.token.encode()):
            return _refuse(request, 401, "unauthorized", "that is not HERON_DASHBOARD_TOKEN")
        query = urlencode([(k, v) for k, v in request.query_params.multi_items() if k != "token"])
        target = request.url.path + (f"?{query}" if query else "")
        response = RedirectResponse(target, status_code=303)
        response.set_cookie(
            COOKIE,
            _session(self.token).decode(),
            max_age=COOKIE_MAX_AGE,
            path=COOKIE_PATH,
            httponly=True,
            samesite="strict",
            secure=request.url.scheme == "https",
        )
        response.headers["Referrer-Policy"] = "no-referrer"
        return response

    def guard(self, endpoint: Endpoint, *, page: bool = False) -> Endpoint:
        """`endpoint` behind this rule; the page also takes `?token=` to sign in."""

        async def guarded(request: Request) -> Response:
            if page and (signed_in := self.sign_in(request)) is not None:
                return signed_in
            refused = self.refusal(request)
            return refused if refused is not None else await endpoint(request)

        return guarded


def _session(token: str) -> bytes:
    """The cookie's value: derived from the token, so changing the token signs everyone
    out, and the cookie never holds the token itself."""
    return hmac.new(token.encode(), _SESSION_CONTEXT, hashlib.sha256).hexdigest().encode()


def _same_origin(request: Request) -> bool:
    """Whether a browser sent this from a page of this host. A request with neither Origin
    nor Referer did not come from a browser page (browsers send Origin with every POST)."""
    source = request.headers.get("origin") or request.headers.get("referer")
    if source is None:
        return True
    host = request.headers.get("host", "")
    return bool(host) and urlsplit(source).netloc.lower() == host.lower()


def _refuse(request: Request, status: int, error: str, description: str) -> Response:
    headers = {"Cache-Control": "no-store"}
    if status == 401:
        headers["WWW-Authenticate"] = 'Bearer realm="heron-dashboard"'
    if request.url.path.startswith("/dashboard/api/"):
        return JSONResponse(
            {"error": error, "error_description": description}, status, headers=headers
        )
    return PlainTextResponse(f"Heron dashboard: {description}\n", status, headers=headers)
