"""Slack for one `heron run`: who the bot is, the archive, both transports, the directory
sync, partition upkeep and the queue handlers, started and stopped together."""

from __future__ import annotations

import asyncio
import itertools
from typing import Any
from urllib.parse import urlsplit

import structlog
from psycopg_pool import AsyncConnectionPool
from slack_bolt.adapter.socket_mode.async_handler import AsyncSocketModeHandler
from slack_bolt.adapter.starlette.async_handler import AsyncSlackRequestHandler
from slack_sdk.errors import SlackApiError
from slack_sdk.web.async_client import AsyncWebClient
from starlette.requests import Request
from starlette.responses import Response
from starlette.routing import Route

from heron.config import Config
from heron.errors import ConfigError, HeronError
from heron.queue.handlers import HandlerRegistry
from heron.queue.runner import cancel_and_wait
from heron.slack.app import build_app
from heron.slack.archive import Archive
from heron.slack.client import api_url, web_client
from heron.slack.directory import sync_directory
from heron.slack.events import FILE_TEXT_EVENT_TYPE, QUESTION_EVENT_TYPE, BotIdentity
from heron.slack.handlers import FileTextHandler, QuestionHandler, Responder
from heron.slack.outbox import Outbox

log = structlog.get_logger(__name__)

MAINTENANCE_SECONDS = 3600.0


class SlackError(HeronError):
    """Slack refused Heron's credentials or could not be reached at startup."""


async def identify(client: AsyncWebClient) -> BotIdentity:
    """auth.test: who the token belongs to. A refused token is a clear startup error."""
    try:
        response = await client.auth_test()
    except SlackApiError as error:
        code = error.response.get("error", "unknown_error")
        raise SlackError(
            f"Slack refused SLACK_BOT_TOKEN ({code}); copy the Bot User OAuth Token "
            "(xoxb-...) from OAuth & Permissions"
        ) from None
    except OSError as error:
        raise SlackError(f"cannot reach Slack at {client.base_url}: {error}") from None
    return BotIdentity(
        user_id=str(response["user_id"]),
        bot_id=response.get("bot_id"),
        team_id=response.get("team_id"),
        url=response.get("url"),
        team_name=response.get("team"),
        name=response.get("user") or "heron",
    )


def slack_enabled(config: Config) -> bool:
    return config.slack_app_token is not None or config.slack_signing_secret is not None


class SlackService:
    """Start with `await start()`, register_handlers() before the worker pool starts."""

    def __init__(self, config: Config, pool: AsyncConnectionPool[Any]) -> None:
        if config.slack_bot_token is None:
            raise ConfigError(["SLACK_BOT_TOKEN is required when Slack is enabled"])
        self.config = config
        self.pool = pool
        self.client = web_client(config)
        self.poster = web_client(config, idempotent=False)
        self.bot: BotIdentity | None = None
        self.archive: Archive | None = None
        self.socket: AsyncSocketModeHandler | None = None
        self.events_api: AsyncSlackRequestHandler | None = None
        self._tasks: list[asyncio.Task[None]] = []

    async def start(self) -> None:
        self.bot = await identify(self.client)
        self.archive = Archive(self.pool, self.bot)
        await self.archive.save_workspace()
        await self.archive.partitions.ensure_ahead()
        secret = self.config.slack_signing_secret
        app = build_app(
            self.client,
            self.archive,
            self.bot,
            None if secret is None else secret.get_secret_value(),
        )
        if secret is not None:
            self.events_api = AsyncSlackRequestHandler(app)
        if self.config.slack_app_token is not None:
            self.socket = AsyncSocketModeHandler(
                app, self.config.slack_app_token.get_secret_value(), web_client=self.client
            )
            await self.socket.connect_async()  # type: ignore[no-untyped-call]
        self._tasks.append(asyncio.create_task(self._maintain(), name="heron-slack-maintenance"))
        log.info(
            "slack connected",
            bot_user_id=self.bot.user_id,
            team_id=self.bot.team_id,
            socket_mode=self.socket is not None,
            events_api=self.events_api is not None,
        )

    def register_handlers(self, registry: HandlerRegistry, respond: Responder) -> None:
        token = self.config.slack_bot_token
        assert token is not None
        questions = QuestionHandler(
            Outbox(self.pool, self.poster, bot_user_id=self.bot.user_id if self.bot else None),
            respond,
            max_retries=self.config.max_retry_count,
            client=self.client,
        )
        registry.register(QUESTION_EVENT_TYPE, questions)
        hosts = {"files.slack.com", urlsplit(api_url(self.config)).hostname or ""}
        registry.register(
            FILE_TEXT_EVENT_TYPE,
            FileTextHandler(self._archive(), token.get_secret_value(), hosts),
        )

    def routes(self) -> list[Route]:
        """The Events API endpoint, when a signing secret is configured."""
        if self.events_api is None:
            return []
        handler = self.events_api

        async def slack_events(request: Request) -> Response:
            return await handler.handle(request)

        return [Route("/slack/events", slack_events, methods=["POST"])]

    @property
    def connected(self) -> bool:
        """Socket Mode is connected (or not used): what /readyz reports."""
        if self.socket is None:
            return self.bot is not None
        session = self.socket.client.current_session
        return session is not None and not session.closed

    async def stop(self) -> None:
        await cancel_and_wait(self._tasks)
        if self.socket is not None:
            await self.socket.close_async()  # type: ignore[no-untyped-call]
        for client in (self.client, self.poster):
            if client.session is not None and not client.session.closed:
                await client.session.close()
        log.info("slack disconnected")

    def _archive(self) -> Archive:
        if self.archive is None:
            raise RuntimeError("SlackService.start() has not run")
        return self.archive

    async def _maintain(self) -> None:
        """Directory sync at startup and hourly, with the partitions ahead; the archive's
        statistics at startup and whenever it has grown enough since they were taken."""
        archive = self._archive()
        for round_ in itertools.count():
            try:
                await sync_directory(self.client, archive)
                await archive.partitions.ensure_ahead()
            except Exception as error:  # the next round tries again
                log.warning("slack maintenance failed", error=str(error))
            partitions = archive.partitions
            try:  # not skipped when Slack failed this round
                await (partitions.analyze() if round_ == 0 else partitions.analyze_if_stale())
            except Exception as error:
                log.warning("slack archive statistics not refreshed", error=str(error))
            await asyncio.sleep(MAINTENANCE_SECONDS)
