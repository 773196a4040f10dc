"""The fake workspace's vocabulary: who the app is, users, conversations, message ids.

Plain values with their Slack JSON views (`to_api`), shared by the state, the Web API,
the events and the export.
"""

from __future__ import annotations

import re
import zlib
from dataclasses import dataclass, field
from enum import StrEnum
from typing import Any

Message = dict[str, Any]


@dataclass(frozen=True, slots=True)
class AppIdentity:
    """Who the app under test is in the fake workspace, and the secrets it holds."""

    team_id: str = "T0FAKETEAM"
    team_name: str = "Heron Test"
    domain: str = "heron-test"
    app_id: str = "A0FAKEAPP1"
    bot_id: str = "B0FAKEBOT1"
    bot_user_id: str = "U0FAKEBOT1"
    bot_name: str = "heron"
    bot_token: str = "xoxb-fake-bot-token"  # noqa: S105 - a fake's well-known token
    app_token: str = "xapp-1-fake-app-token"  # noqa: S105
    signing_secret: str = "fake-signing-secret"  # noqa: S105
    verification_token: str = "fake-verification-token"  # noqa: S105


class ChannelKind(StrEnum):
    """Slack's four kinds of conversation."""

    PUBLIC = "public_channel"
    PRIVATE = "private_channel"
    IM = "im"
    MPIM = "mpim"


@dataclass
class User:
    """A member of the workspace (a person or a bot user)."""

    id: str
    name: str
    real_name: str
    team_id: str
    tz: str = "UTC"
    is_bot: bool = False
    deleted: bool = False
    bot_id: str | None = None
    updated: int = 0

    def to_api(self) -> dict[str, Any]:
        """The user as users.info and users.list describe it."""
        profile: dict[str, Any] = {
            "real_name": self.real_name,
            "display_name": self.name,
            "real_name_normalized": self.real_name,
            "display_name_normalized": self.name,
            "first_name": self.real_name.split(" ")[0],
            "team": self.team_id,
        }
        if self.bot_id is not None:
            profile["bot_id"] = self.bot_id
        return {
            "id": self.id,
            "team_id": self.team_id,
            "name": self.name,
            "deleted": self.deleted,
            "real_name": self.real_name,
            "tz": self.tz,
            "tz_label": self.tz,
            "tz_offset": 0,
            "is_admin": False,
            "is_owner": False,
            "is_bot": self.is_bot,
            "is_app_user": False,
            "updated": self.updated,
            "profile": profile,
        }


@dataclass
class Channel:
    """A conversation: public or private channel, DM (im) or group DM (mpim)."""

    id: str
    name: str
    kind: ChannelKind
    created: int
    creator: str
    members: list[str] = field(default_factory=list)
    is_archived: bool = False
    is_general: bool = False
    topic: str = ""
    purpose: str = ""

    @property
    def is_private(self) -> bool:
        return self.kind is not ChannelKind.PUBLIC

    @property
    def channel_type(self) -> str:
        """The `channel_type` Slack puts on message events."""
        return {
            ChannelKind.PUBLIC: "channel",
            ChannelKind.PRIVATE: "group",
            ChannelKind.IM: "im",
            ChannelKind.MPIM: "mpim",
        }[self.kind]

    def to_api(self, viewer: str) -> dict[str, Any]:
        """The conversation as conversations.info/list show it to `viewer`."""
        if self.kind is ChannelKind.IM:
            other = next((m for m in self.members if m != viewer), viewer)
            return {
                "id": self.id,
                "created": self.created,
                "is_im": True,
                "is_org_shared": False,
                "user": other,
                "is_user_deleted": False,
                "priority": 0,
            }
        return {
            "id": self.id,
            "name": self.name,
            "name_normalized": self.name,
            "is_channel": self.kind is ChannelKind.PUBLIC,
            "is_group": self.kind is ChannelKind.PRIVATE,
            "is_im": False,
            "is_mpim": self.kind is ChannelKind.MPIM,
            "is_private": self.is_private,
            "created": self.created,
            "creator": self.creator,
            "is_archived": self.is_archived,
            "is_general": self.is_general,
            "is_shared": False,
            "is_ext_shared": False,
            "is_org_shared": False,
            "is_member": viewer in self.members,
            "topic": {"value": self.topic, "creator": self.creator, "last_set": 0},
            "purpose": {"value": self.purpose, "creator": self.creator, "last_set": 0},
            "previous_names": [],
            "num_members": len(self.members),
        }


def format_ts(micros: int) -> str:
    """Slack's message timestamp: seconds, a dot and six digits of microseconds."""
    return f"{micros // 1_000_000}.{micros % 1_000_000:06d}"


def ts_micros(ts: str) -> int:
    seconds, _, fraction = ts.partition(".")
    return int(seconds) * 1_000_000 + int((fraction + "000000")[:6])


def is_top_level(message: Message) -> bool:
    """Whether conversations.history lists it (parents, plain messages, broadcasts)."""
    thread_ts = message.get("thread_ts")
    return (
        thread_ts is None
        or thread_ts == message["ts"]
        or message.get("subtype") == "thread_broadcast"
    )


MENTION = re.compile(r"<@([UW][A-Z0-9]+)(?:\|[^>]*)?>")


def mentioned_users(text: str) -> list[str]:
    """User ids mentioned as `<@U…>` in a message text."""
    return MENTION.findall(text)


def rich_text_blocks(text: str) -> list[dict[str, Any]]:
    """The rich_text block Slack's clients attach to what a person types."""
    elements: list[dict[str, Any]] = []
    position = 0
    for match in MENTION.finditer(text):
        if match.start() > position:
            elements.append({"type": "text", "text": text[position : match.start()]})
        elements.append({"type": "user", "user_id": match.group(1)})
        position = match.end()
    if position < len(text):
        elements.append({"type": "text", "text": text[position:]})
    return [
        {
            "type": "rich_text",
            "block_id": f"b{zlib.crc32(text.encode()) % 100_000:05d}",
            "elements": [{"type": "rich_text_section", "elements": elements}],
        }
    ]
