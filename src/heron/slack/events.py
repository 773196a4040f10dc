"""What a Slack event means for Heron: pure translation of an event_callback into a Plan.

No I/O here, so every rule (what is archived, what is a question, what is ignored) is
tested alone; slack/archive.py carries a Plan out in one transaction.
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from dataclasses import dataclass, field, replace
from typing import Any

from heron.errors import HeronError

# Slack caps a message's text at 40,000 characters; anything far beyond is not a message.
MAX_TEXT_CHARS = 50_000
# Text files at most this big have their content fetched and archived (by a worker).
MAX_TEXT_FILE_BYTES = 256 * 1024

_TS = re.compile(r"^\d{1,12}\.\d{1,6}$")
_ID = re.compile(r"^[A-Z0-9][A-Z0-9_-]{1,40}$")
_CHANNEL_TYPES = {
    "channel": (False, False, False),
    "group": (True, False, False),
    "im": (True, True, False),
    "mpim": (True, False, True),
}
# Message subtypes that are someone saying something (a question can only be one of these).
_SPOKEN = {None, "file_share", "thread_broadcast", "me_message"}
_TEXT_FILE_TYPES = {
    *("text", "markdown", "csv", "json", "yaml", "xml", "diff", "shell", "sql"),
    *("python", "javascript", "typescript", "go", "rust", "java", "c", "cpp"),
}
_IGNORED = {
    "assistant_thread_started",
    "assistant_thread_context_changed",
    "app_home_opened",
    "app_uninstalled",
    "tokens_revoked",
    "emoji_changed",
    "user_status_changed",
    "user_huddle_changed",
    "user_profile_changed",
    "pin_added",
    "pin_removed",
    "star_added",
    "star_removed",
}

QUESTION_EVENT_TYPE = "slack.question"
FILE_TEXT_EVENT_TYPE = "slack.file_text"


class PayloadError(HeronError):
    """A Slack payload Heron cannot take in: recorded and skipped, never retried."""


@dataclass(frozen=True, slots=True)
class BotIdentity:
    """Who Heron is in this workspace (from auth.test): never answer these."""

    user_id: str
    bot_id: str | None = None
    team_id: str | None = None
    url: str | None = None  # the workspace, e.g. https://acme.slack.com/ (for permalinks)
    team_name: str | None = None
    name: str = "heron"  # the bot user's name, as people mention it

    def is_self(self, event: Mapping[str, Any]) -> bool:
        return event.get("user") == self.user_id or (
            self.bot_id is not None and event.get("bot_id") == self.bot_id
        )


@dataclass(frozen=True, slots=True)
class MessageRow:
    """One message as the archive keeps it."""

    channel_id: str
    ts: str
    text: str
    thread_ts: str | None = None
    user_id: str | None = None
    bot_id: str | None = None
    subtype: str | None = None
    edited_ts: str | None = None
    previous_text: str | None = None
    reply_count: int = 0
    files: list[dict[str, Any]] = field(default_factory=list)
    reactions: dict[str, list[str]] = field(default_factory=dict)
    metadata: dict[str, Any] | None = None
    raw: dict[str, Any] = field(default_factory=dict)


@dataclass(frozen=True, slots=True)
class SaveMessage:
    row: MessageRow


@dataclass(frozen=True, slots=True)
class DeleteMessage:
    channel_id: str
    ts: str


@dataclass(frozen=True, slots=True)
class React:
    channel_id: str
    ts: str
    name: str
    user_id: str
    added: bool


@dataclass(frozen=True, slots=True)
class SaveChannel:
    """A channel seen or created; fields left None keep what the archive has."""

    id: str
    name: str | None = None
    is_private: bool | None = None
    is_im: bool | None = None
    is_mpim: bool | None = None
    is_archived: bool | None = None
    is_deleted: bool | None = None
    created_ts: str | None = None
    raw: dict[str, Any] | None = None


@dataclass(frozen=True, slots=True)
class Membership:
    channel_id: str
    user_id: str
    joined: bool


@dataclass(frozen=True, slots=True)
class SetMembers:
    """The full member list of a channel, as conversations.members or an export gives it."""

    channel_id: str
    user_ids: tuple[str, ...]


@dataclass(frozen=True, slots=True)
class SaveUser:
    user: dict[str, Any]


@dataclass(frozen=True, slots=True)
class FetchFileText:
    """Queue a worker to download a small text file and archive its content."""

    channel_id: str
    ts: str
    file_id: str
    url: str


Action = (
    SaveMessage
    | DeleteMessage
    | React
    | SaveChannel
    | Membership
    | SetMembers
    | SaveUser
    | FetchFileText
)


@dataclass(frozen=True, slots=True)
class Question:
    """Someone asked Heron something: becomes one queue event, answered in its thread."""

    channel_id: str
    ts: str
    thread_ts: str
    user_id: str
    text: str
    kind: str  # mention | dm
    event_id: str | None = None
    team_id: str | None = None

    @property
    def dedupe_key(self) -> str:
        # One message may arrive as app_mention and as message.channels: same key.
        return f"slack:{self.channel_id}:{self.ts}"

    def payload(self) -> dict[str, Any]:
        return {
            "channel": self.channel_id,
            "ts": self.ts,
            "thread_ts": self.thread_ts,
            "user": self.user_id,
            "text": self.text,
            "kind": self.kind,
            "event_id": self.event_id,
            "team": self.team_id,
        }


@dataclass(frozen=True, slots=True)
class Plan:
    event_id: str | None
    event_type: str
    actions: list[Action] = field(default_factory=list)
    question: Question | None = None

    def message_timestamps(self) -> list[str]:
        """The ts of every archive row this plan may insert (their partitions must exist)."""
        found = []
        for action in self.actions:
            if isinstance(action, SaveMessage):
                found.append(action.row.ts)
            elif isinstance(action, DeleteMessage | React):
                found.append(action.ts)
        return found


def plan_event(body: Mapping[str, Any], bot: BotIdentity) -> Plan:
    """Translate one event_callback body (Events API request or Socket Mode payload)."""
    if not isinstance(body, Mapping) or body.get("type") != "event_callback":
        raise PayloadError("not an event_callback")
    event = body.get("event")
    if not isinstance(event, Mapping):
        raise PayloadError("event_callback without an event object")
    event_type = _text(event, "type")
    event_id = body.get("event_id")
    if event_id is not None and not isinstance(event_id, str):
        raise PayloadError("event_id is not a string")
    plan = Plan(event_id=event_id, event_type=event_type)
    if event_type in _IGNORED:
        return plan
    planner = _PLANNERS.get(event_type)
    if planner is None:
        raise PayloadError(f"unsupported event type {event_type!r}")
    return planner(plan, event, body, bot)


def message_row(channel_id: str, message: Mapping[str, Any]) -> MessageRow:
    """An archive row from a message object (as in events, history pages and exports)."""
    text = message.get("text") or ""
    if not isinstance(text, str):
        raise PayloadError("message text is not a string")
    if len(text) > MAX_TEXT_CHARS:
        raise PayloadError(f"message text is {len(text):,} characters (limit {MAX_TEXT_CHARS:,})")
    edited = message.get("edited")
    files = message.get("files") or []
    metadata = message.get("metadata")
    return MessageRow(
        channel_id=_check_id(channel_id, "channel"),
        ts=_check_ts(message.get("ts"), "ts"),
        text=text,
        thread_ts=_optional_ts(message.get("thread_ts")),
        user_id=_optional_str(message.get("user")),
        bot_id=_optional_str(message.get("bot_id")),
        subtype=_optional_str(message.get("subtype")),
        edited_ts=_optional_ts(edited.get("ts")) if isinstance(edited, Mapping) else None,
        reply_count=int(message.get("reply_count") or 0),
        files=[_file_summary(f) for f in files if isinstance(f, Mapping)],
        reactions=_reactions(message.get("reactions")),
        metadata=dict(metadata) if isinstance(metadata, Mapping) else None,
        raw=dict(message),
    )


def _plan_message(
    plan: Plan, event: Mapping[str, Any], body: Mapping[str, Any], bot: BotIdentity
) -> Plan:
    channel_id = _check_id(event.get("channel"), "channel")
    subtype = event.get("subtype")
    actions = plan.actions
    actions.extend(_channel_seen(channel_id, event))
    if subtype == "message_deleted":
        actions.append(DeleteMessage(channel_id, _check_ts(event.get("deleted_ts"), "deleted_ts")))
        return plan
    if subtype == "message_changed":
        inner = _mapping(event, "message")
        if inner.get("subtype") == "tombstone":  # a thread parent deleted under its replies
            actions.append(DeleteMessage(channel_id, _check_ts(inner.get("ts"), "message.ts")))
            return plan
        previous = event.get("previous_message")
        previous_text = previous.get("text") if isinstance(previous, Mapping) else None
        row = message_row(channel_id, inner)
        if isinstance(previous_text, str):
            row = replace(row, previous_text=previous_text)
        actions.append(SaveMessage(row))
        return plan
    if subtype == "message_replied":  # legacy: the parent with its new reply_count
        actions.append(SaveMessage(message_row(channel_id, _mapping(event, "message"))))
        return plan
    if subtype in ("channel_join", "group_join") and isinstance(event.get("user"), str):
        actions.append(Membership(channel_id, event["user"], joined=True))
    elif subtype in ("channel_leave", "group_leave") and isinstance(event.get("user"), str):
        actions.append(Membership(channel_id, event["user"], joined=False))
    row = message_row(channel_id, event)
    actions.append(SaveMessage(row))
    private = _CHANNEL_TYPES.get(str(event.get("channel_type")), (False, False, False))[0]
    if private and row.user_id and subtype is None:
        actions.append(Membership(channel_id, row.user_id, joined=True))  # they wrote in it
    actions.extend(_file_fetches(row))
    if subtype in _SPOKEN and row.user_id and not bot.is_self(event) and row.bot_id is None:
        kind = _question_kind(event, row, bot)
        if kind is not None:
            return _with_question(plan, row, kind, body)
    return plan


def _plan_app_mention(
    plan: Plan, event: Mapping[str, Any], body: Mapping[str, Any], bot: BotIdentity
) -> Plan:
    channel_id = _check_id(event.get("channel"), "channel")
    row = message_row(channel_id, event)
    plan.actions.extend(_channel_seen(channel_id, event))
    plan.actions.append(SaveMessage(row))
    if bot.is_self(event) or row.bot_id is not None or not row.user_id:
        return plan
    return _with_question(plan, row, "mention", body)


def _plan_reaction(
    plan: Plan, event: Mapping[str, Any], body: Mapping[str, Any], bot: BotIdentity
) -> Plan:
    item = _mapping(event, "item")
    if item.get("type") != "message":
        return plan  # reactions on files and file comments are not archived
    plan.actions.append(
        React(
            channel_id=_check_id(item.get("channel"), "item.channel"),
            ts=_check_ts(item.get("ts"), "item.ts"),
            name=_text(event, "reaction"),
            user_id=_check_id(event.get("user"), "user"),
            added=event.get("type") == "reaction_added",
        )
    )
    return plan


def _plan_channel(
    plan: Plan, event: Mapping[str, Any], body: Mapping[str, Any], bot: BotIdentity
) -> Plan:
    kind = str(event["type"])
    private = kind.startswith("group_")
    channel = event.get("channel")
    if isinstance(channel, Mapping):  # created / rename carry the channel object
        channel_id = _check_id(channel.get("id"), "channel.id")
        name = channel.get("name")
        created = channel.get("created")
    else:
        channel_id = _check_id(channel, "channel")
        name = created = None
    action = kind.split("_", 1)[1]
    plan.actions.append(
        SaveChannel(
            id=channel_id,
            name=name if isinstance(name, str) else None,
            is_private=private or bool(isinstance(channel, Mapping) and channel.get("is_private")),
            is_archived={"archive": True, "unarchive": False}.get(action),
            is_deleted=True if action == "deleted" else None,
            created_ts=str(created) if isinstance(created, int | float) else None,
            raw=dict(channel) if isinstance(channel, Mapping) else None,
        )
    )
    return plan


def _plan_member(
    plan: Plan, event: Mapping[str, Any], body: Mapping[str, Any], bot: BotIdentity
) -> Plan:
    channel_id = _check_id(event.get("channel"), "channel")
    user_id = _check_id(event.get("user"), "user")
    private = event.get("channel_type") == "G"
    plan.actions.append(SaveChannel(id=channel_id, is_private=private))
    plan.actions.append(
        Membership(channel_id, user_id, joined=event["type"] == "member_joined_channel")
    )
    return plan


def _plan_bot_left(
    plan: Plan, event: Mapping[str, Any], body: Mapping[str, Any], bot: BotIdentity
) -> Plan:
    channel_id = _check_id(event.get("channel"), "channel")
    plan.actions.append(Membership(channel_id, bot.user_id, joined=False))
    return plan


def _plan_im_created(
    plan: Plan, event: Mapping[str, Any], body: Mapping[str, Any], bot: BotIdentity
) -> Plan:
    channel = _mapping(event, "channel")
    channel_id = _check_id(channel.get("id"), "channel.id")
    user_id = _check_id(event.get("user") or channel.get("user"), "user")
    plan.actions.append(SaveChannel(id=channel_id, is_private=True, is_im=True, raw=dict(channel)))
    plan.actions.append(Membership(channel_id, user_id, joined=True))
    plan.actions.append(Membership(channel_id, bot.user_id, joined=True))
    return plan


def _plan_user(
    plan: Plan, event: Mapping[str, Any], body: Mapping[str, Any], bot: BotIdentity
) -> Plan:
    user = _mapping(event, "user")
    _check_id(user.get("id"), "user.id")
    plan.actions.append(SaveUser(dict(user)))
    return plan


_PLANNERS = {
    "message": _plan_message,
    "app_mention": _plan_app_mention,
    "reaction_added": _plan_reaction,
    "reaction_removed": _plan_reaction,
    **{
        f"{prefix}_{what}": _plan_channel
        for prefix in ("channel", "group")
        for what in ("created", "rename", "archive", "unarchive", "deleted")
    },
    "member_joined_channel": _plan_member,
    "member_left_channel": _plan_member,
    "channel_left": _plan_bot_left,
    "group_left": _plan_bot_left,
    "im_created": _plan_im_created,
    "user_change": _plan_user,
    "team_join": _plan_user,
}


def _question_kind(event: Mapping[str, Any], row: MessageRow, bot: BotIdentity) -> str | None:
    if event.get("channel_type") == "im":
        return "dm"
    if f"<@{bot.user_id}>" in row.text:
        return "mention"  # the message.channels twin of an app_mention
    return None


def _with_question(plan: Plan, row: MessageRow, kind: str, body: Mapping[str, Any]) -> Plan:
    assert row.user_id is not None
    team = body.get("team_id")
    question = Question(
        channel_id=row.channel_id,
        ts=row.ts,
        thread_ts=row.thread_ts or row.ts,
        user_id=row.user_id,
        text=row.text,
        kind=kind,
        event_id=plan.event_id,
        team_id=team if isinstance(team, str) else None,
    )
    return Plan(plan.event_id, plan.event_type, plan.actions, question)


def _channel_seen(channel_id: str, event: Mapping[str, Any]) -> list[Action]:
    flags = _CHANNEL_TYPES.get(str(event.get("channel_type")))
    if flags is None:
        return []
    private, im, mpim = flags
    return [SaveChannel(id=channel_id, is_private=private, is_im=im, is_mpim=mpim)]


def _file_fetches(row: MessageRow) -> list[Action]:
    fetches: list[Action] = []
    for file in row.files:
        url = file.get("url_private_download") or file.get("url_private")
        small = isinstance(file.get("size"), int) and file["size"] <= MAX_TEXT_FILE_BYTES
        texty = file.get("filetype") in _TEXT_FILE_TYPES or str(
            file.get("mimetype", "")
        ).startswith("text/")
        if url and small and texty and file.get("id"):
            fetches.append(FetchFileText(row.channel_id, row.ts, str(file["id"]), str(url)))
    return fetches


_FILE_FIELDS = (
    "id",
    "name",
    "title",
    "mimetype",
    "filetype",
    "size",
    "permalink",
    "url_private",
    "url_private_download",
    "created",
    "user",
)


def _file_summary(file: Mapping[str, Any]) -> dict[str, Any]:
    return {key: file[key] for key in _FILE_FIELDS if key in file}


def _reactions(value: Any) -> dict[str, list[str]]:
    found: dict[str, list[str]] = {}
    if isinstance(value, list):
        for reaction in value:
            if isinstance(reaction, Mapping) and isinstance(reaction.get("name"), str):
                users = reaction.get("users") or []
                found[reaction["name"]] = [u for u in users if isinstance(u, str)]
    return found


def _mapping(event: Mapping[str, Any], key: str) -> Mapping[str, Any]:
    value = event.get(key)
    if not isinstance(value, Mapping):
        raise PayloadError(f"{event.get('type')} event without a {key!r} object")
    return value


def _text(event: Mapping[str, Any], key: str) -> str:
    value = event.get(key)
    if not isinstance(value, str) or not value:
        raise PayloadError(f"event without a {key!r}")
    return value


def _check_id(value: Any, what: str) -> str:
    if not isinstance(value, str) or not _ID.match(value):
        raise PayloadError(f"missing or malformed {what} id: {str(value)[:40]!r}")
    return value


def _check_ts(value: Any, what: str) -> str:
    if not isinstance(value, str) or not _TS.match(value):
        raise PayloadError(f"missing or malformed {what}: {str(value)[:40]!r}")
    return value


def _optional_ts(value: Any) -> str | None:
    return value if isinstance(value, str) and _TS.match(value) else None


def _optional_str(value: Any) -> str | None:
    return value if isinstance(value, str) and value else None
