"""Slack's event payloads, Socket Mode frames and Events API signatures, as pure functions.

The shapes follow what Slack sends (api.slack.com/events, Socket Mode and request
signing docs), so code written against the fake reads real Slack payloads too.
"""

from __future__ import annotations

import base64
import hashlib
import hmac
import json
import uuid
from typing import Any

from heron.testing.slack.model import AppIdentity, Channel, Message

# Fields conversations.history shows that message events do not carry.
_HISTORY_ONLY = (
    "reply_count",
    "reply_users_count",
    "reply_users",
    "latest_reply",
    "reactions",
    "is_locked",
    "subscribed",
)


def new_event_id() -> str:
    """An Events API event id (`Ev` and ten characters)."""
    return "Ev" + uuid.uuid4().hex[:10].upper()


def new_envelope_id() -> str:
    return str(uuid.uuid4())


def event_callback(
    event: dict[str, Any], identity: AppIdentity, *, event_id: str, event_time: int
) -> dict[str, Any]:
    """The `event_callback` body both transports carry around an event."""
    context = json.dumps({"d": "", "tid": identity.team_id, "aid": identity.app_id})
    return {
        "token": identity.verification_token,
        "team_id": identity.team_id,
        "context_team_id": identity.team_id,
        "context_enterprise_id": None,
        "api_app_id": identity.app_id,
        "event": event,
        "type": "event_callback",
        "event_id": event_id,
        "event_time": event_time,
        "authorizations": [
            {
                "enterprise_id": None,
                "team_id": identity.team_id,
                "user_id": identity.bot_user_id,
                "is_bot": True,
                "is_enterprise_install": False,
            }
        ],
        "is_ext_shared_channel": False,
        "event_context": "4-" + base64.urlsafe_b64encode(context.encode()).decode(),
    }


def url_verification(challenge: str, identity: AppIdentity) -> dict[str, Any]:
    return {
        "token": identity.verification_token,
        "challenge": challenge,
        "type": "url_verification",
    }


def envelope(
    payload: dict[str, Any], *, envelope_id: str, retry_attempt: int, retry_reason: str
) -> dict[str, Any]:
    """A Socket Mode `events_api` envelope."""
    return {
        "envelope_id": envelope_id,
        "payload": payload,
        "type": "events_api",
        "accepts_response_payload": False,
        "retry_attempt": retry_attempt,
        "retry_reason": retry_reason,
    }


def hello_frame(identity: AppIdentity, num_connections: int) -> dict[str, Any]:
    return {
        "type": "hello",
        "num_connections": num_connections,
        "debug_info": {
            "host": "applink-fake-1",
            "build_number": 1,
            "approximate_connection_time": 18060,
        },
        "connection_info": {"app_id": identity.app_id},
    }


def disconnect_frame(reason: str) -> dict[str, Any]:
    return {"type": "disconnect", "reason": reason, "debug_info": {"host": "applink-fake-1"}}


def signature(secret: str, timestamp: str, body: bytes) -> str:
    """Slack's v0 request signature: HMAC-SHA256 over `v0:{timestamp}:{body}`."""
    base = b"v0:" + timestamp.encode() + b":" + body
    return "v0=" + hmac.new(secret.encode(), base, hashlib.sha256).hexdigest()


# -- event bodies ---------------------------------------------------------------------------


def message_event(message: Message, channel: Channel) -> dict[str, Any]:
    """The `message` event for a stored message (user, bot or file_share)."""
    event = {k: v for k, v in message.items() if k not in _HISTORY_ONLY}
    event.update(
        {"channel": channel.id, "event_ts": message["ts"], "channel_type": channel.channel_type}
    )
    return event


def app_mention_event(message: Message, channel: Channel) -> dict[str, Any]:
    """The `app_mention` event Slack sends alongside the message that mentions the app."""
    keys = ("user", "text", "ts", "client_msg_id", "team", "blocks", "thread_ts", "files")
    event: dict[str, Any] = {"type": "app_mention"}
    event.update({k: message[k] for k in keys if k in message})
    if "parent_user_id" in message:
        event["parent_user_id"] = message["parent_user_id"]
    event.update({"channel": channel.id, "event_ts": message["ts"]})
    return event


def message_changed_event(
    channel: Channel, message: Message, previous: Message, event_ts: str
) -> dict[str, Any]:
    return {
        "type": "message",
        "subtype": "message_changed",
        "hidden": True,
        "message": {k: v for k, v in message.items() if k not in ("reactions",)},
        "previous_message": previous,
        "channel": channel.id,
        "ts": event_ts,
        "event_ts": event_ts,
        "channel_type": channel.channel_type,
    }


def message_deleted_event(channel: Channel, previous: Message, event_ts: str) -> dict[str, Any]:
    return {
        "type": "message",
        "subtype": "message_deleted",
        "hidden": True,
        "deleted_ts": previous["ts"],
        "previous_message": previous,
        "channel": channel.id,
        "ts": event_ts,
        "event_ts": event_ts,
        "channel_type": channel.channel_type,
    }


def reaction_event(
    added: bool,
    *,
    user: str,
    reaction: str,
    item_user: str | None,
    channel_id: str,
    ts: str,
    event_ts: str,
) -> dict[str, Any]:
    event: dict[str, Any] = {
        "type": "reaction_added" if added else "reaction_removed",
        "user": user,
        "reaction": reaction,
        "item": {"type": "message", "channel": channel_id, "ts": ts},
        "event_ts": event_ts,
    }
    if item_user is not None:
        event["item_user"] = item_user
    return event


def channel_created_event(channel: Channel, event_ts: str) -> dict[str, Any]:
    return {
        "type": "channel_created",
        "channel": {
            "id": channel.id,
            "name": channel.name,
            "created": channel.created,
            "creator": channel.creator,
            "is_channel": True,
        },
        "event_ts": event_ts,
    }


def channel_renamed_event(channel: Channel, event_ts: str) -> dict[str, Any]:
    """`channel_rename`, or `group_rename` for a private channel."""
    kind = "group" if channel.is_private else "channel"
    return {
        "type": f"{kind}_rename",
        "channel": {"id": channel.id, "name": channel.name, "created": channel.created},
        "event_ts": event_ts,
    }


def channel_archived_event(channel: Channel, user: str, event_ts: str) -> dict[str, Any]:
    kind = "group" if channel.is_private else "channel"
    return {"type": f"{kind}_archive", "channel": channel.id, "user": user, "event_ts": event_ts}


def channel_deleted_event(channel: Channel, event_ts: str) -> dict[str, Any]:
    kind = "group" if channel.is_private else "channel"
    return {"type": f"{kind}_deleted", "channel": channel.id, "event_ts": event_ts}


def member_event(
    joined: bool,
    channel: Channel,
    user: str,
    team_id: str,
    event_ts: str,
    inviter: str | None = None,
) -> dict[str, Any]:
    event: dict[str, Any] = {
        "type": "member_joined_channel" if joined else "member_left_channel",
        "user": user,
        "channel": channel.id,
        "channel_type": "G" if channel.is_private else "C",
        "team": team_id,
        "event_ts": event_ts,
    }
    if joined and inviter is not None:
        event["inviter"] = inviter
    return event


def assistant_thread_started_event(
    user: str, channel_id: str, thread_ts: str, context_channel: str | None, team_id: str
) -> dict[str, Any]:
    context: dict[str, Any] = {"enterprise_id": None}
    if context_channel is not None:
        context.update({"channel_id": context_channel, "team_id": team_id})
    return {
        "type": "assistant_thread_started",
        "assistant_thread": {
            "user_id": user,
            "context": context,
            "channel_id": channel_id,
            "thread_ts": thread_ts,
        },
        "event_ts": thread_ts,
    }
