"""The slack_bolt app both transports feed: Socket Mode and the Events API.

Bolt does what it is good at (signature check with its 5-minute window, url_verification,
ssl_check, dispatch). Heron adds one listener for every event type, which writes the event
to the archive and the queue and returns: with process_before_response, Bolt acks only
after that commit, and a failed write is not acked (Socket Mode) or answered 500 (Events
API), so Slack delivers it again. Nothing on this path waits for the model.
"""

from __future__ import annotations

import logging
import re
from typing import Any

from slack_bolt.async_app import AsyncApp
from slack_bolt.authorization import AuthorizeResult
from slack_sdk.web.async_client import AsyncWebClient

from heron.slack.archive import Archive
from heron.slack.events import BotIdentity

_ANY_EVENT = re.compile(".*")


def build_app(
    client: AsyncWebClient, archive: Archive, bot: BotIdentity, signing_secret: str | None
) -> AsyncApp:
    """A Bolt app that archives every event; `signing_secret=None` = Socket Mode only."""
    token = client.token

    async def authorize(**_: Any) -> AuthorizeResult:
        # Known from auth.test at startup: no Web API call on the ack path.
        return AuthorizeResult(
            enterprise_id=None,
            team_id=bot.team_id,
            bot_user_id=bot.user_id,
            bot_id=bot.bot_id,
            bot_token=token,
        )

    # Bolt takes the token from AuthorizeResult; a client without one keeps it from
    # warning that the token is ignored.
    tokenless = AsyncWebClient(
        base_url=client.base_url, timeout=client.timeout, retry_handlers=client.retry_handlers
    )
    app = AsyncApp(
        client=tokenless,
        authorize=authorize,
        signing_secret=signing_secret or "",
        request_verification_enabled=signing_secret is not None,
        process_before_response=True,
        # Heron archives its own messages (thread memory needs them); events.py makes
        # sure they never become questions.
        ignoring_self_events_enabled=False,
        ignoring_self_assistant_message_events_enabled=False,
        logger=logging.getLogger("heron.slack.bolt"),
    )

    async def take(body: dict[str, Any]) -> None:
        await archive.take(body)

    app.event(_ANY_EVENT)(take)
    return app
