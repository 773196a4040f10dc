"""The page and its assets, shipped as package data (static/): one HTML file, one script,
one style sheet. No build step, nothing fetched from elsewhere; a strict
Content-Security-Policy keeps it that way."""

from __future__ import annotations

from dataclasses import dataclass
from functools import cache
from importlib import resources
from pathlib import PurePosixPath
from typing import Final

from starlette.requests import Request
from starlette.responses import PlainTextResponse, Response

INDEX: Final = "index.html"
_MEDIA_TYPES: Final = {
    ".html": "text/html; charset=utf-8",
    ".js": "text/javascript; charset=utf-8",
    ".css": "text/css; charset=utf-8",
    ".svg": "image/svg+xml",
}
SECURITY_HEADERS: Final = {
    "Content-Security-Policy": "default-src 'none'; script-src 'self'; style-src 'self'; "
    "img-src 'self' data:; connect-src 'self'; base-uri 'none'; form-action 'none'; "
    "frame-ancestors 'none'",
    "X-Content-Type-Options": "nosniff",
    "Referrer-Policy": "no-referrer",
    "X-Frame-Options": "DENY",
    # Revalidate every time: a new Heron version must not run with an old script.
    "Cache-Control": "no-cache",
}


@dataclass(frozen=True, slots=True)
class Asset:
    """One shipped file, read once."""

    body: bytes
    media_type: str


@cache
def assets() -> dict[str, Asset]:
    """Every file of static/ by name."""
    folder = resources.files("heron.web.dashboard").joinpath("static")
    found: dict[str, Asset] = {}
    for item in folder.iterdir():
        suffix = PurePosixPath(item.name).suffix
        if item.is_file() and suffix in _MEDIA_TYPES:
            found[item.name] = Asset(item.read_bytes(), _MEDIA_TYPES[suffix])
    return found


def _serve(name: str) -> Response:
    asset = assets().get(name)
    if asset is None:
        return PlainTextResponse("not found\n", 404)
    return Response(asset.body, media_type=asset.media_type, headers=SECURITY_HEADERS)


async def page(request: Request) -> Response:
    """The dashboard page; it loads static/app.js, which reads the JSON API."""
    return _serve(INDEX)


async def asset(request: Request) -> Response:
    """A script, style sheet or image of the page (static/NAME)."""
    return _serve(str(request.path_params["name"]))
