"""`LocalWorkspace`: with no Slack tokens, `heron run` starts Heron's Slack fake on
loopback, fills it with a small team, and points Heron's Slack side at it. Heron then
starts exactly as in production (auth.test, Socket Mode, the Web API): only the other
end of the wire is local. The page on Heron's HTTP server is the team's Slack client.
"""

from __future__ import annotations

import asyncio
import ipaddress
import time
from typing import Any

import structlog
from psycopg_pool import AsyncConnectionPool
from pydantic import SecretStr
from starlette.routing import Route

from heron.config import Config
from heron.slack.service import slack_enabled
from heron.testing.slack import SlackFake
from heron.web.workspace.conversations import Conversations
from heron.web.workspace.feed import Feed
from heron.web.workspace.restore import archived_messages, restore
from heron.web.workspace.routes import workspace_routes
from heron.web.workspace.seed import IDENTITY, populate, post_starters

log = structlog.get_logger(__name__)


def local_workspace_enabled(config: Config) -> bool:
    """No Slack configured and HERON_LOCAL_WORKSPACE allows it. `auto` serves it only on
    a loopback address: the page posts as a member of the team, and may spend model
    tokens, so it is not offered to the network unless asked for (`on`)."""
    mode = config.heron_local_workspace
    if slack_enabled(config) or mode == "off":
        return False
    if mode == "on" or _loopback(config.heron_http_host):
        return True
    log.warning(
        "local workspace not started: HERON_HTTP_HOST is not a loopback address",
        host=config.heron_http_host,
        fix="set HERON_LOCAL_WORKSPACE=on to serve it anyway, or configure Slack tokens",
    )
    return False


class LocalWorkspace:
    """Start before Slack (`await start()` returns the settings Slack should use), stop
    after it; `stop()` is safe twice and before start."""

    def __init__(self, config: Config, pool: AsyncConnectionPool[Any]) -> None:
        self.config = config
        self.pool = pool
        self.fake = SlackFake(identity=IDENTITY)
        self.conversations: Conversations | None = None
        self.feed: Feed | None = None
        self._started = False

    async def start(self) -> Config:
        await asyncio.to_thread(self.fake.start)
        self._started = True
        directory = populate(self.fake)
        rows = await archived_messages(self.pool, directory.channels)
        if rows:
            restore(self.fake, rows)
        else:
            post_starters(self.fake, time.time())
        self.conversations = Conversations(self.fake, directory, self.pool)
        self.feed = Feed(self.fake, self.conversations.version)
        log.info(
            "local workspace started",
            slack_api_url=self.fake.api_url,
            restored_messages=len(rows),
        )
        return self.slack_config()

    def slack_config(self) -> Config:
        """The run's settings with Slack pointed at the fake (Socket Mode, no Events API)."""
        return self.config.model_copy(
            update={
                "slack_bot_token": SecretStr(self.fake.bot_token),
                "slack_app_token": SecretStr(self.fake.app_token),
                "slack_signing_secret": None,
                "slack_api_url": self.fake.api_url,
            }
        )

    def routes(self) -> list[Route]:
        if self.conversations is None or self.feed is None:
            raise RuntimeError("start the local workspace first")
        return workspace_routes(self.conversations, self.feed)

    def close_feeds(self) -> None:
        """End the pages' live feeds, so that the HTTP server can stop."""
        if self.feed is not None:
            self.feed.close()

    async def stop(self) -> None:
        self.close_feeds()
        if self._started:
            self._started = False
            await asyncio.to_thread(self.fake.stop)
            log.info("local workspace stopped")


def _loopback(host: str) -> bool:
    if host == "localhost":
        return True
    try:
        return ipaddress.ip_address(host).is_loopback
    except ValueError:
        return False
