"""`heron docs ingest URL`: a documentation site on loopback, read through its sitemap."""

from __future__ import annotations

from collections.abc import Iterator
from http.server import ThreadingHTTPServer
from typing import ClassVar

import pytest

from heron.docsearch.embedding import HashingEmbedder
from heron.docsearch.sitemap import ingest_sitemap, page_kind, site_prefix
from heron.docsearch.store import DocStore
from heron.testing.http import JsonHandler, start_server, stop_server


class Site(JsonHandler):
    """A tiny docs site; tests edit `pages` between ingests."""

    pages: ClassVar[dict[str, tuple[str, bytes]]] = {}

    def do_GET(self) -> None:
        found = self.pages.get(self.path)
        if found is None:
            self.send_error(404)
            return
        content_type, body = found
        self.send_response(200)
        self.send_header("Content-Type", content_type)
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)


def sitemap(*locations: str, index: bool = False) -> tuple[str, bytes]:
    tag, child = ("sitemapindex", "sitemap") if index else ("urlset", "url")
    entries = "".join(f"<{child}><loc>{loc}</loc></{child}>" for loc in locations)
    namespace = "http://www.sitemaps.org/schemas/sitemap/0.9"
    xml = f'<?xml version="1.0"?><{tag} xmlns="{namespace}">{entries}</{tag}>'
    return "application/xml", xml.encode()


@pytest.fixture
def site() -> Iterator[str]:
    server: ThreadingHTTPServer = start_server(Site)
    base = f"http://127.0.0.1:{server.server_address[1]}"
    vacuum = (
        b"<html><head><title>Routine Vacuuming</title></head><body><h1>Routine Vacuuming</h1>"
        b"<p>VACUUM reclaims storage occupied by dead tuples.</p></body></html>"
    )
    guides = [
        f"{base}/docs/{name}" for name in ("vacuum.html", "backup.md", "logo.png", "gone.html")
    ]
    Site.pages = {
        "/docs/sitemap.xml": sitemap(f"{base}/docs/sitemap-guides.xml", index=True),
        "/docs/sitemap-guides.xml": sitemap(*guides),
        "/docs/vacuum.html": ("text/html; charset=utf-8", vacuum),
        "/docs/backup.md": ("text/plain", b"# Backups\n\nUse pg_basebackup for a base backup.\n"),
        "/docs/logo.png": ("image/png", b"PNG"),
    }
    try:
        yield base
    finally:
        stop_server(server)


def test_a_sitemap_index_is_followed_and_its_pages_ingested(site: str, database_url: str) -> None:
    store = DocStore(database_url, HashingEmbedder())
    first = ingest_sitemap(store, f"{site}/docs/sitemap.xml")
    assert first.documents == 2
    assert first.added > 0
    assert [url.rsplit("/", 1)[1] for url, _ in first.skipped] == ["logo.png", "gone.html"]
    with store.connect() as conn:
        hits = store.search(conn, "reclaim dead tuples", limit=1)
        assert hits[0].source == f"{site}/docs/vacuum.html"
        assert hits[0].title == "Routine Vacuuming"
        backup = store.get_document(conn, f"{site}/docs/backup.md")
        assert backup is not None
        assert backup.kind == "markdown"
    again = ingest_sitemap(store, f"{site}/docs/sitemap.xml")
    assert (again.added, again.removed) == (0, 0)  # nothing changed, nothing re-embedded


def test_pages_the_sitemap_stops_listing_are_dropped(site: str, database_url: str) -> None:
    store = DocStore(database_url, HashingEmbedder())
    ingest_sitemap(store, f"{site}/docs/sitemap.xml")
    Site.pages["/docs/sitemap-guides.xml"] = sitemap(f"{site}/docs/vacuum.html")
    later = ingest_sitemap(store, f"{site}/docs/sitemap.xml")
    assert later.documents_removed == 1
    with store.connect() as conn:
        assert store.get_document(conn, f"{site}/docs/backup.md") is None


def test_a_broken_sitemap_is_a_clear_error(site: str, database_url: str) -> None:
    from heron.errors import HeronError

    store = DocStore(database_url, HashingEmbedder())
    Site.pages["/docs/bad.xml"] = ("application/xml", b"<html>not a sitemap</html>")
    with pytest.raises(HeronError, match="is not a sitemap"):
        ingest_sitemap(store, f"{site}/docs/bad.xml")
    with pytest.raises(HeronError, match="HTTP 404"):
        ingest_sitemap(store, f"{site}/docs/missing.xml")


def test_kinds_and_prefixes() -> None:
    assert page_kind("https://x/a", "text/html; charset=utf-8") == "html"
    assert page_kind("https://x/a.md", "text/plain") == "markdown"
    assert page_kind("https://x/a", "text/plain") == "text"
    assert page_kind("https://x/a", "image/png") is None
    assert site_prefix("https://www.postgresql.org/docs/sitemap.xml") == (
        "https://www.postgresql.org/docs/"
    )
