"""The JSON the page reads: conversations and messages from the Slack fake's state, each
question with its journey. Pure: the caller reads the state and the events rows."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any

from heron.testing.slack import Channel, ChannelKind, Message, User
from heron.web.workspace.journey import Journey


def person(user: User | None, user_id: str) -> dict[str, Any]:
    if user is None:
        return {"id": user_id, "name": user_id or "unknown", "real_name": "", "is_bot": False}
    return {"id": user.id, "name": user.name, "real_name": user.real_name, "is_bot": user.is_bot}


def channel_view(
    channel: Channel, bot_user_id: str, latest: str | None, bot_name: str
) -> dict[str, Any]:
    """A sidebar entry: a channel by name, the DM by the bot's name."""
    is_dm = channel.kind is ChannelKind.IM
    return {
        "id": channel.id,
        "name": bot_name if is_dm else channel.name,
        "kind": "dm" if is_dm else "channel",
        "topic": channel.topic,
        "is_general": channel.is_general,
        "members": len(channel.members),
        "with_bot": bot_user_id in channel.members,
        "latest": latest,
    }


def message_view(
    message: Message,
    users: Mapping[str, User],
    journey: Journey | None,
) -> dict[str, Any]:
    """One message: who wrote it, its text as Slack stores it, its thread and reactions."""
    author = str(message.get("user") or "")
    thread_ts = message.get("thread_ts")
    profile = message.get("bot_profile") or {}
    who = person(users.get(author), author)
    if not author and profile:
        who = {"id": "", "name": profile.get("name", "bot"), "real_name": "", "is_bot": True}
    return {
        "ts": message["ts"],
        "thread_ts": thread_ts,
        "is_reply": thread_ts is not None and thread_ts != message["ts"],
        "author": who,
        "is_bot": bool(message.get("bot_id")) or who["is_bot"],
        "text": str(message.get("text") or ""),
        "edited": "edited" in message,
        "reply_count": int(message.get("reply_count") or 0),
        "latest_reply": message.get("latest_reply"),
        "reply_users": [person(users.get(u), u) for u in message.get("reply_users") or []],
        "reactions": [
            {
                "name": r["name"],
                "count": r.get("count", len(r.get("users", []))),
                "users": r["users"],
            }
            for r in message.get("reactions") or []
        ],
        "question": journey.to_json() if journey is not None else None,
    }


def messages_view(
    messages: Sequence[Message],
    users: Mapping[str, User],
    journeys: Mapping[str, Journey],
) -> list[dict[str, Any]]:
    """Messages in order; `journeys` by message ts, for the questions among them."""
    return [message_view(m, users, journeys.get(m["ts"])) for m in messages]
