"""Users, channels and private memberships from the Web API, so that the archive's
directory is right even for what happened while Heron was not running."""

from __future__ import annotations

from collections.abc import AsyncIterator
from typing import Any

import structlog
from slack_sdk.web.async_client import AsyncWebClient

from heron.slack.archive import Archive
from heron.slack.events import Action, SaveChannel, SaveUser, SetMembers

log = structlog.get_logger(__name__)

CONVERSATION_TYPES = "public_channel,private_channel,mpim,im"
_PAGE = 200


async def pages(client: AsyncWebClient, method: str, key: str, **params: Any) -> AsyncIterator[Any]:
    """Every item of a cursor-paginated Web API list."""
    cursor: str | None = None
    while True:
        response = await client.api_call(
            method, params={**params, "limit": _PAGE, "cursor": cursor}
        )
        for item in response.get(key) or []:
            yield item
        cursor = (response.get("response_metadata") or {}).get("next_cursor") or None
        if not cursor:
            return


def channel_action(channel: dict[str, Any]) -> SaveChannel:
    """A SaveChannel from a conversation object (conversations.list/info, exports)."""
    is_im = bool(channel.get("is_im"))
    is_mpim = bool(channel.get("is_mpim"))
    created = channel.get("created")
    return SaveChannel(
        id=str(channel["id"]),
        name=channel.get("name") or (f"dm-{channel.get('user')}" if is_im else None),
        is_private=bool(channel.get("is_private")) or is_im or is_mpim,
        is_im=is_im,
        is_mpim=is_mpim,
        is_archived=bool(channel.get("is_archived")),
        created_ts=str(created) if isinstance(created, int | float) else None,
        raw=channel,
    )


async def sync_directory(client: AsyncWebClient, archive: Archive) -> dict[str, int]:
    """Upsert every user and conversation; replace the member lists of private ones."""
    actions: list[Action] = []
    users = channels = 0
    async for user in pages(client, "users.list", "members"):
        actions.append(SaveUser(user))
        users += 1
    async for channel in pages(
        client, "conversations.list", "channels", types=CONVERSATION_TYPES, exclude_archived=False
    ):
        action = channel_action(channel)
        actions.append(action)
        channels += 1
        if action.is_private and not channel.get("is_archived"):
            if action.is_im and channel.get("user"):
                members = [str(channel["user"]), archive.bot.user_id]
            else:
                members = [
                    m
                    async for m in pages(
                        client, "conversations.members", "members", channel=action.id
                    )
                ]
            actions.append(SetMembers(action.id, tuple(members)))
    await archive.save(actions)
    log.info("slack directory synced", users=users, channels=channels)
    return {"users": users, "channels": channels}
