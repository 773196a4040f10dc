"""The answering side of one `heron run`: prompts and MCP servers checked at startup,
then the model answerer, or retrieval-only answers when no model is configured."""

from __future__ import annotations

import asyncio
import os
from decimal import Decimal
from functools import partial
from typing import Any

import structlog
from psycopg_pool import AsyncConnectionPool

from heron.agent.agent import ModelAnswerer, build_model, model_configured
from heron.agent.mcp_config import McpServerSpec, load_mcp_config
from heron.agent.memory import Memory
from heron.agent.prompts import Prompts
from heron.agent.retrieval import DocsLookup, RetrievalResponder
from heron.agent.tools import AgentTools, lookup_asker
from heron.agent.usage import Ledger, Limits
from heron.config import Config
from heron.mcp_servers.hosting import HostedServers
from heron.queue.runner import cancel_and_wait
from heron.slack.handlers import Responder
from heron.slack.service import SlackService

log = structlog.get_logger(__name__)

RECHECK_SECONDS = 60.0


class AgentService:
    """Construct before anything starts (broken prompts or MCP config fail fast), then
    `await start(slack)` for the responder and `await stop()` at the end."""

    def __init__(self, config: Config, conninfo: str, pool: AsyncConnectionPool[Any]) -> None:
        self.config = config
        self.conninfo = conninfo
        self.pool = pool
        self.prompts = Prompts(config.heron_prompts_dir)
        self.extra: list[McpServerSpec] = (
            load_mcp_config(config.heron_mcp_config, os.environ) if config.heron_mcp_config else []
        )
        self.hosted: HostedServers | None = None
        self.tools: AgentTools | None = None
        self.docs: DocsLookup | None = None
        self._recheck: asyncio.Task[None] | None = None

    async def start(self, slack: SlackService) -> Responder:
        bot = slack.bot
        assert bot is not None, "start Slack first"
        if not model_configured(self.config):
            log.warning(
                "no model configured: answering in retrieval-only mode",
                model=self.config.heron_model,
                fix="set ANTHROPIC_API_KEY",
            )
            self.docs = DocsLookup(self.config, self.conninfo)
            return RetrievalResponder(self.pool, self.docs, bot.url, bot_user_id=bot.user_id)
        self.hosted = HostedServers(self.config, self.conninfo)
        own = await self.hosted.start()
        self.tools = AgentTools([*own, *self.extra], self.pool)
        await self.tools.check()
        self._recheck = asyncio.create_task(self._recheck_loop(), name="heron-mcp-recheck")
        limits = Limits(
            questions_per_user_per_hour=self.config.heron_questions_per_user_per_hour,
            daily_spend_usd=Decimal(str(self.config.heron_daily_spend_limit_usd)) or None,
        )
        return ModelAnswerer(
            self.config,
            build_model(self.config),
            self.prompts,
            Memory(self.pool, slack.client, bot_user_id=bot.user_id, bot_name=bot.name),
            Ledger(self.pool, limits),
            self.tools.toolbox,
            partial(lookup_asker, self.pool),
            bot_name=bot.name,
            workspace_name=bot.team_name or "",
        )

    async def stop(self) -> None:
        if self._recheck is not None:
            await cancel_and_wait([self._recheck])
        if self.tools is not None:
            await self.tools.close()
        if self.hosted is not None:
            await self.hosted.stop()
        if self.docs is not None:
            await asyncio.to_thread(self.docs.close)

    async def _recheck_loop(self) -> None:
        """A server that failed may come back (and one that worked may fail): look again."""
        assert self.tools is not None
        while True:
            await asyncio.sleep(RECHECK_SECONDS)
            try:
                await self.tools.check()
            except Exception as error:  # the next round tries again
                log.warning("mcp recheck failed", error=str(error))
