"""The Web API methods the bot writes with: chat.*, reactions.*, assistant.threads.*.

Each handler takes the merged arguments and returns Slack's response body, or raises
`ApiError` with Slack's error code. Writes go to the shared `Workspace`, and the events
real Slack would send the app about its own writes go to `echo`.
"""

from __future__ import annotations

import threading
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from heron.testing.slack import events
from heron.testing.slack.model import AppIdentity, Channel, ChannelKind, Message
from heron.testing.slack.state import Workspace
from heron.testing.slack.web_api import (
    ApiError,
    Handler,
    Params,
    flag,
    json_value,
    required,
    resolve_channel,
    text,
)

TEXT_LIMIT = 40_000  # chat.postMessage truncates nothing: longer text is msg_too_long
STREAM_CHUNK_LIMIT = 12_000  # per appended markdown_text
STREAM_CLOSED = "message_not_in_streaming_state"

Echo = Callable[[dict[str, Any], Channel], None]


@dataclass(frozen=True, slots=True)
class AssistantStatus:
    """One assistant.threads.setStatus call ("" clears the status)."""

    channel_id: str
    thread_ts: str
    status: str
    loading_messages: tuple[str, ...] = ()


@dataclass
class _Stream:
    channel_id: str
    appends: int = 0
    open: bool = True


class ChatMethods:
    """chat.*, reactions.* and assistant.threads.setStatus on a shared workspace."""

    def __init__(self, workspace: Workspace, identity: AppIdentity, echo: Echo) -> None:
        self.workspace = workspace
        self.identity = identity
        self.echo = echo
        self.statuses: list[AssistantStatus] = []
        self.ephemerals: list[dict[str, Any]] = []
        self.stream_appends_limit: int | None = None
        self._streams: dict[str, _Stream] = {}
        self._lock = threading.Lock()

    def handlers(self) -> dict[str, Handler]:
        """Slack method name -> handler, for `WebApi`."""
        return {
            "chat.postMessage": self.post_message,
            "chat.update": self.update,
            "chat.delete": self.delete,
            "chat.postEphemeral": self.post_ephemeral,
            "chat.getPermalink": self.get_permalink,
            "chat.startStream": self.start_stream,
            "chat.appendStream": self.append_stream,
            "chat.stopStream": self.stop_stream,
            "reactions.add": self.react,
            "reactions.remove": self.unreact,
            "assistant.threads.setStatus": self.set_status,
        }

    # -- messages -------------------------------------------------------------------------

    def post_message(self, p: Params) -> dict[str, Any]:
        channel = self._target(p)
        body = _content(p, need_text=True)
        parent = self._thread_parent(channel, text(p, "thread_ts"))
        message = self._bot_message(body)
        if parent is not None:
            message["thread_ts"] = parent["ts"]
            message["parent_user_id"] = parent.get("user", "")
            if flag(p, "reply_broadcast"):
                message["subtype"] = "thread_broadcast"
        stored = self.workspace.insert(channel.id, message)
        self.echo(events.message_event(stored, channel), channel)
        return {"ok": True, "channel": channel.id, "ts": stored["ts"], "message": stored}

    def update(self, p: Params) -> dict[str, Any]:
        channel, previous = self._own_message(p, "ts", "cant_update_message")
        changes = _content(p, need_text=True)
        changes["edited"] = {"user": self.identity.bot_user_id, "ts": self.workspace.next_ts()}
        message = self.workspace.update(channel.id, previous["ts"], changes)
        event_ts = self.workspace.next_ts()
        self.echo(events.message_changed_event(channel, message, previous, event_ts), channel)
        return {
            "ok": True,
            "channel": channel.id,
            "ts": message["ts"],
            "text": message.get("text", ""),
            "message": message,
        }

    def delete(self, p: Params) -> dict[str, Any]:
        channel, previous = self._own_message(p, "ts", "cant_delete_message")
        self.workspace.delete(channel.id, previous["ts"])
        event_ts = self.workspace.next_ts()
        self.echo(events.message_deleted_event(channel, previous, event_ts), channel)
        return {"ok": True, "channel": channel.id, "ts": previous["ts"]}

    def post_ephemeral(self, p: Params) -> dict[str, Any]:
        channel = self._target(p)
        user = required(p, "user", "user_not_found")
        if user not in channel.members:
            raise ApiError("user_not_in_channel")
        body = _content(p, need_text=True)
        ts = self.workspace.next_ts()
        with self._lock:
            self.ephemerals.append({"channel": channel.id, "user": user, "ts": ts, **body})
        return {"ok": True, "message_ts": ts}

    def get_permalink(self, p: Params) -> dict[str, Any]:
        channel = resolve_channel(self.workspace, self.identity, text(p, "channel"), member=False)
        ts = required(p, "message_ts", "message_not_found")
        message = self.workspace.message(channel.id, ts)
        if message is None:
            raise ApiError("message_not_found")
        link = (
            f"https://{self.identity.domain}.slack.com/archives/{channel.id}/p{ts.replace('.', '')}"
        )
        thread_ts = message.get("thread_ts")
        if thread_ts is not None and thread_ts != ts:
            link += f"?thread_ts={thread_ts}&cid={channel.id}"
        return {"ok": True, "channel": channel.id, "permalink": link}

    # -- streaming ------------------------------------------------------------------------

    def start_stream(self, p: Params) -> dict[str, Any]:
        channel = self._target(p)
        parent = self._thread_parent(channel, required(p, "thread_ts"))
        message = self._bot_message({"text": _stream_text(p)})
        if parent is not None:
            message["thread_ts"] = parent["ts"]
            message["parent_user_id"] = parent.get("user", "")
        stored = self.workspace.insert(channel.id, message)
        with self._lock:
            self._streams[stored["ts"]] = _Stream(channel.id)
        self.echo(events.message_event(stored, channel), channel)
        return {"ok": True, "channel": channel.id, "ts": stored["ts"]}

    def append_stream(self, p: Params) -> dict[str, Any]:
        channel, ts = self._open_stream(p, appending=True)
        addition = _stream_text(p)
        current = self.workspace.message(channel.id, ts) or {}
        self.workspace.update(channel.id, ts, {"text": current.get("text", "") + addition})
        return {"ok": True, "channel": channel.id, "ts": ts}

    def stop_stream(self, p: Params) -> dict[str, Any]:
        channel, ts = self._open_stream(p, appending=False)
        current = self.workspace.message(channel.id, ts) or {}
        changes: dict[str, Any] = {"text": current.get("text", "") + _stream_text(p)}
        blocks = json_value(p, "blocks", "invalid_blocks_format")
        if blocks:
            changes["blocks"] = blocks
        metadata = _metadata(p)
        if metadata is not None:
            changes["metadata"] = metadata
        with self._lock:
            self._streams[ts].open = False
        message = self.workspace.update(channel.id, ts, changes)
        return {"ok": True, "channel": channel.id, "ts": ts, "message": message}

    # -- reactions and assistant status ---------------------------------------------------

    def react(self, p: Params) -> dict[str, Any]:
        return self._reaction(p, add=True)

    def unreact(self, p: Params) -> dict[str, Any]:
        return self._reaction(p, add=False)

    def set_status(self, p: Params) -> dict[str, Any]:
        channel = resolve_channel(self.workspace, self.identity, text(p, "channel_id"), member=True)
        thread_ts = required(p, "thread_ts")
        loading = json_value(p, "loading_messages") or []
        if isinstance(loading, str):
            loading = [loading]
        status = AssistantStatus(channel.id, thread_ts, str(p.get("status") or ""), tuple(loading))
        with self._lock:
            self.statuses.append(status)
        return {"ok": True}

    # -- internals ------------------------------------------------------------------------

    def _target(self, p: Params) -> Channel:
        """The conversation to post in: an id, a name, or a user id (their DM with the bot)."""
        ref = required(p, "channel", "channel_not_found")
        user = self.workspace.user(ref)
        if user is not None:
            channel = self.workspace.dm_between(self.identity.bot_user_id, user.id)
            if channel is None:
                channel = self.workspace.add_channel(
                    Channel(
                        self.workspace.new_id("D"),
                        user.id,
                        ChannelKind.IM,
                        int(self.workspace.clock()),
                        user.id,
                        [user.id, self.identity.bot_user_id],
                    )
                )
        else:
            channel = resolve_channel(self.workspace, self.identity, ref, member=True)
        if channel.is_archived:
            raise ApiError("is_archived")
        return channel

    def _thread_parent(self, channel: Channel, thread_ts: str | None) -> Message | None:
        """The thread root for a reply; an unknown thread_ts posts to the channel, as Slack."""
        if thread_ts is None:
            return None
        message = self.workspace.message(channel.id, thread_ts)
        if message is None:
            return None
        root = str(message.get("thread_ts", message["ts"]))
        return message if root == message["ts"] else self.workspace.message(channel.id, root)

    def _bot_message(self, body: dict[str, Any]) -> Message:
        identity = self.identity
        return {
            "type": "message",
            "user": identity.bot_user_id,
            "bot_id": identity.bot_id,
            "app_id": identity.app_id,
            "ts": self.workspace.next_ts(),
            "team": identity.team_id,
            "bot_profile": {
                "id": identity.bot_id,
                "app_id": identity.app_id,
                "name": identity.bot_name,
                "deleted": False,
                "team_id": identity.team_id,
            },
            "text": "",
            **body,
        }

    def _own_message(self, p: Params, key: str, refusal: str) -> tuple[Channel, Message]:
        channel = resolve_channel(self.workspace, self.identity, text(p, "channel"), member=True)
        message = self.workspace.message(channel.id, required(p, key, "message_not_found"))
        if message is None:
            raise ApiError("message_not_found")
        if message.get("bot_id") != self.identity.bot_id:
            raise ApiError(refusal)
        return channel, message

    def _open_stream(self, p: Params, *, appending: bool) -> tuple[Channel, str]:
        channel, message = self._own_message(p, "ts", STREAM_CLOSED)
        ts = message["ts"]
        with self._lock:
            stream = self._streams.get(ts)
            if stream is None or not stream.open:
                raise ApiError(STREAM_CLOSED)
            if appending:
                limit = self.stream_appends_limit
                if limit is not None and stream.appends >= limit:
                    stream.open = False  # expired server-side, as after Slack's ~5 minutes
                    raise ApiError(STREAM_CLOSED)
                stream.appends += 1
        return channel, ts

    def _reaction(self, p: Params, *, add: bool) -> dict[str, Any]:
        channel = resolve_channel(self.workspace, self.identity, text(p, "channel"), member=True)
        ts = required(p, "timestamp", "message_not_found")
        name = required(p, "name", "invalid_name").strip(":")
        message = self.workspace.message(channel.id, ts)
        if message is None:
            raise ApiError("message_not_found")
        if not self.workspace.react(channel.id, ts, name, self.identity.bot_user_id, add):
            raise ApiError("already_reacted" if add else "no_reaction")
        event = events.reaction_event(
            add,
            user=self.identity.bot_user_id,
            reaction=name,
            item_user=message.get("user"),
            channel_id=channel.id,
            ts=ts,
            event_ts=self.workspace.next_ts(),
        )
        self.echo(event, channel)
        return {"ok": True}


def _content(p: Params, *, need_text: bool) -> dict[str, Any]:
    """text/blocks/attachments/metadata as a message stores them, checked like Slack."""
    body: dict[str, Any] = {}
    message_text = text(p, "text")
    blocks = json_value(p, "blocks", "invalid_blocks_format")
    attachments = json_value(p, "attachments", "invalid_attachments")
    if need_text and not (message_text or blocks or attachments):
        raise ApiError("no_text")
    if message_text is not None:
        if len(message_text) > TEXT_LIMIT:
            raise ApiError("msg_too_long")
        body["text"] = message_text
    if blocks:
        body["blocks"] = blocks
    if attachments:
        body["attachments"] = attachments
    metadata = _metadata(p)
    if metadata is not None:
        body["metadata"] = metadata
    return body


def _metadata(p: Params) -> dict[str, Any] | None:
    metadata = json_value(p, "metadata", "invalid_metadata_format")
    if metadata is None:
        return None
    if not isinstance(metadata, dict) or "event_type" not in metadata:
        raise ApiError("invalid_metadata_format")
    return {
        "event_type": metadata["event_type"],
        "event_payload": metadata.get("event_payload", {}),
    }


def _stream_text(p: Params) -> str:
    """markdown_text plus the text of any markdown_text chunks."""
    parts = [text(p, "markdown_text") or ""]
    for chunk in json_value(p, "chunks") or []:
        if isinstance(chunk, dict) and chunk.get("type") == "markdown_text":
            parts.append(str(chunk.get("text", "")))
    added = "".join(parts)
    if any(len(part) > STREAM_CHUNK_LIMIT for part in parts):
        raise ApiError("msg_too_long")
    return added
