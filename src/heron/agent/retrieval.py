"""Retrieval-only answers: with no model configured, a question still gets the best
matching archive messages and docs passages, with links, and is told plainly why."""

from __future__ import annotations

import asyncio
import re
import threading
from typing import Any

import structlog
from psycopg_pool import AsyncConnectionPool

from heron.config import Config
from heron.docsearch.store import DocStore, SearchHit
from heron.errors import HeronError
from heron.slack.search import MessageHit, search_messages

log = structlog.get_logger(__name__)

SNIPPET_CHARS = 240
_SLACK_TOKEN = re.compile(r"<([@#!])?([^<>|]+)(?:\|([^<>]+))?>")
NO_MODEL = "No model is configured (set `ANTHROPIC_API_KEY`), so I cannot write an answer."


class DocsLookup:
    """Docs search for the responder: the embedder loads on first use, in a thread."""

    def __init__(self, config: Config, conninfo: str) -> None:
        self.config = config
        self.conninfo = conninfo
        self._store: DocStore | None = None
        self._unavailable = False
        self._opening = threading.Lock()  # searches run in threads: one store, one pool

    async def search(self, text: str, limit: int) -> list[SearchHit]:
        if self._unavailable:
            return []
        return await asyncio.to_thread(self._search, text, limit)

    def close(self) -> None:
        """Close the connections kept for searches."""
        if self._store is not None:
            self._store.close()

    def _search(self, text: str, limit: int) -> list[SearchHit]:
        from heron.docsearch.embedding import make_embedder

        try:
            with self._opening:
                if self._store is None:
                    self._store = DocStore(self.conninfo, make_embedder(self.config))
                    self._store.open_pool()
            with self._store.connect() as conn:
                if conn.execute("SELECT 1 FROM doc_chunks LIMIT 1").fetchone() is None:
                    return []
                return self._store.search(conn, text, limit)
        except HeronError as error:  # e.g. no pgvector: say so once, answer from Slack
            self._unavailable = True
            log.warning("docs search unavailable", error=str(error))
            return []


class RetrievalResponder:
    """Answers a question payload with search results instead of a model's answer."""

    def __init__(
        self,
        pool: AsyncConnectionPool[Any],
        docs: DocsLookup | None,
        workspace_url: str | None,
        *,
        bot_user_id: str | None = None,
        limit: int = 5,
    ) -> None:
        self.pool = pool
        self.docs = docs
        self.workspace_url = workspace_url
        self.bot_user_id = bot_user_id
        self.limit = limit

    async def __call__(self, question: dict[str, Any]) -> str:
        text = str(question.get("text") or "")
        exclude = (str(question["channel"]), str(question["ts"]))
        messages = await search_messages(
            self.pool,
            str(question["user"]),
            text,
            limit=self.limit,
            exclude=exclude,
            bot_user_id=self.bot_user_id,
        )
        passages = await self.docs.search(_plain(text), self.limit) if self.docs else []
        return compose(messages, passages, self.workspace_url)


def compose(
    messages: list[MessageHit], passages: list[SearchHit], workspace_url: str | None
) -> str:
    """The answer in Markdown (the outbox makes it mrkdwn)."""
    if not messages and not passages:
        return f"{NO_MODEL} Nothing in the Slack archive or the docs matches your question."
    lines = [f"{NO_MODEL} Here is what I found:"]
    if messages:
        lines += ["", "**From Slack**"]
        for hit in messages:
            where = f"#{hit.channel_name}" if not hit.channel_name.startswith("dm-") else "a DM"
            label = f"{where}, {hit.author}, {hit.at:%Y-%m-%d}"
            link = hit.permalink(workspace_url)
            shown = f"[{label}]({link})" if link else label
            lines.append(f"- {shown}: {_snippet(hit.text)}")
    if passages:
        lines += ["", "**From the docs**"]
        for passage in passages:
            label = " / ".join((passage.title, *passage.heading_path[1:])) or passage.source
            target = passage.link
            shown = (
                f"[{label}]({target})"
                if target.startswith(("http://", "https://"))
                else (f"{label} (`{target}`)")
            )
            lines.append(f"- {shown}: {_snippet(passage.text)}")
    return "\n".join(lines)


def _plain(text: str) -> str:
    """Slack markup to plain words: mentions, channels and links keep only their labels."""
    return _SLACK_TOKEN.sub(lambda m: (m.group(1) or "") + (m.group(3) or m.group(2)), text)


def _snippet(text: str) -> str:
    flat = " ".join(_plain(text).split())
    return flat if len(flat) <= SNIPPET_CHARS else flat[: SNIPPET_CHARS - 1].rstrip() + "…"
