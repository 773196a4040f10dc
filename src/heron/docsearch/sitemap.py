"""`heron docs ingest https://…/sitemap.xml`: documentation sites, page by page.

The sitemap (or sitemap index) names the pages; each HTML, Markdown or text page is
ingested under its URL, and pages under the sitemap's folder that it no longer lists are
dropped, exactly as a folder ingest does for files. Pages that fail to download are
reported and skipped, never half-ingested.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator
from dataclasses import dataclass
from urllib.parse import urljoin, urlsplit

import httpx2
from defusedxml import ElementTree
from defusedxml.common import DefusedXmlException

from heron.docsearch.chunking import DocumentKind
from heron.docsearch.ingest import IngestTotals
from heron.docsearch.store import DocStore
from heron.errors import HeronError

MAX_PAGES = 20_000
MAX_SITEMAPS = 200
MAX_PAGE_BYTES = 5_000_000
_NS = "{http://www.sitemaps.org/schemas/sitemap/0.9}"
_KINDS: dict[str, DocumentKind] = {
    "text/html": "html",
    "application/xhtml+xml": "html",
    "text/markdown": "markdown",
    "text/x-markdown": "markdown",
    "text/plain": "text",
}


@dataclass(frozen=True)
class SitemapIngest(IngestTotals):
    """IngestTotals plus the pages that could not be read: (url, why)."""

    skipped: tuple[tuple[str, str], ...] = ()


def is_url(target: str) -> bool:
    return target.startswith(("http://", "https://"))


def page_urls(client: httpx2.Client, sitemap_url: str) -> list[str]:
    """Every page a sitemap (or a sitemap index, followed) lists, in order, once."""
    pages: list[str] = []
    listed: set[str] = set()
    seen_sitemaps: set[str] = set()
    pending = [sitemap_url]
    while pending:
        url = pending.pop(0)
        if url in seen_sitemaps:
            continue
        seen_sitemaps.add(url)
        if len(seen_sitemaps) > MAX_SITEMAPS:
            raise HeronError(f"{sitemap_url}: more than {MAX_SITEMAPS} sitemaps; is it looping?")
        for kind, location in _entries(client, url):
            absolute = urljoin(url, location)
            if kind == "sitemap":
                pending.append(absolute)
            elif absolute not in listed:
                listed.add(absolute)
                pages.append(absolute)
        if len(pages) > MAX_PAGES:
            raise HeronError(f"{sitemap_url}: more than {MAX_PAGES:,} pages")
    return pages


def _entries(client: httpx2.Client, url: str) -> Iterator[tuple[str, str]]:
    response = _get(client, url)
    try:
        root = ElementTree.fromstring(response.content)
    except (ElementTree.ParseError, DefusedXmlException) as error:
        raise HeronError(f"{url} is not a sitemap: {error}") from None
    if root.tag not in (f"{_NS}urlset", f"{_NS}sitemapindex", "urlset", "sitemapindex"):
        raise HeronError(f"{url} is not a sitemap (root element {root.tag!r})")
    child = "sitemap" if root.tag.endswith("sitemapindex") else "url"
    for entry in root:
        if entry.tag.removeprefix(_NS) != child:
            continue
        location = entry.findtext(f"{_NS}loc") or entry.findtext("loc")
        if location and location.strip():
            yield child, location.strip()


def _get(client: httpx2.Client, url: str) -> httpx2.Response:
    try:
        response = client.get(url)
    except httpx2.HTTPError as error:
        raise HeronError(f"cannot fetch {url}: {error}") from None
    if response.status_code != 200:
        raise HeronError(f"cannot fetch {url}: HTTP {response.status_code}")
    return response


def page_kind(url: str, content_type: str) -> DocumentKind | None:
    """What the page is, from its Content-Type (its extension for plain text)."""
    mime = content_type.split(";", 1)[0].strip().lower()
    kind = _KINDS.get(mime)
    if kind == "text" and urlsplit(url).path.lower().endswith((".md", ".markdown")):
        return "markdown"
    return kind


def ingest_sitemap(
    store: DocStore,
    sitemap_url: str,
    on_progress: Callable[[int, int], None] | None = None,
    *,
    client: httpx2.Client | None = None,
) -> SitemapIngest:
    """Ingest every page the sitemap lists; drop vanished pages under its folder."""
    own = client is None
    http = client or httpx2.Client(
        timeout=30.0, follow_redirects=True, headers={"User-Agent": "heron-docs-ingest"}
    )
    try:
        pages = page_urls(http, sitemap_url)
        added = removed = unchanged = 0
        ingested: set[str] = set()
        skipped: list[tuple[str, str]] = []
        with store.connect() as conn:
            for done, url in enumerate(pages, start=1):
                page = _page(http, url)
                if isinstance(page, str):
                    skipped.append((url, page))
                else:
                    content, kind = page
                    result = store.ingest(conn, url, content, kind=kind)
                    added, removed = added + result.added, removed + result.removed
                    unchanged += result.unchanged
                    ingested.add(url)
                if on_progress is not None:
                    on_progress(done, len(pages))
            # A page that failed to download this time is kept, not dropped.
            keep = ingested | {url for url, _ in skipped}
            gone = store.remove_missing(conn, site_prefix(sitemap_url), keep)
            if added or removed or gone:
                store.settle(conn)
    finally:
        if own:
            http.close()
    return SitemapIngest(len(ingested), added, removed, unchanged, gone, tuple(skipped))


def _page(client: httpx2.Client, url: str) -> tuple[str, DocumentKind] | str:
    """(content, kind), or why it was skipped."""
    try:
        response = _get(client, url)
    except HeronError as error:
        return str(error)
    kind = page_kind(url, response.headers.get("content-type", ""))
    if kind is None:
        return f"not HTML, Markdown or text ({response.headers.get('content-type')})"
    if len(response.content) > MAX_PAGE_BYTES:
        return f"larger than {MAX_PAGE_BYTES:,} bytes"
    return response.text, kind


def site_prefix(sitemap_url: str) -> str:
    """The folder the sitemap describes: pages under it that it stops listing are dropped."""
    parts = urlsplit(sitemap_url)
    folder = parts.path.rsplit("/", 1)[0] + "/"
    return f"{parts.scheme}://{parts.netloc}{folder}"
