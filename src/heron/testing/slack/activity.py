"""What people do in the workspace: each helper changes the state and sends the app the
events real Slack would send, with fresh event ids.

Slack only tells an app about conversations its bot is in, except team-wide channel
events (public channel created, renamed, archived, deleted), and always tells it about
assistant threads; `_publish` applies that rule when given the conversation.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

from heron.testing.slack import events
from heron.testing.slack.model import (
    Channel,
    ChannelKind,
    Message,
    mentioned_users,
    rich_text_blocks,
)
from heron.testing.slack.setup import FileSpec, WorkspaceSetup


@dataclass(frozen=True, slots=True)
class AssistantThread:
    """An assistant thread a user opened: its DM and root ts."""

    user_id: str
    channel_id: str
    thread_ts: str


class UserActivity(WorkspaceSetup):
    """Live user activity; the host class delivers what `_publish` is given."""

    def _publish(self, event: dict[str, Any], channel: Channel | None = None) -> str | None:
        raise NotImplementedError

    # -- messages -------------------------------------------------------------------------

    def post_user_message(
        self,
        channel: str,
        user: str,
        text: str,
        *,
        thread_ts: str | None = None,
        broadcast: bool = False,
        files: Sequence[FileSpec] = (),
    ) -> Message:
        """A person posts; a `<@bot>` mention outside DMs also sends `app_mention`."""
        target = self.channel(channel)
        parent = self._parent(target, thread_ts)
        message = self._message(target, user, text, self.workspace.next_ts(), parent, files)
        if broadcast and parent is not None:
            message["subtype"] = "thread_broadcast"
        stored = self.workspace.insert(target.id, message)
        self._publish(events.message_event(stored, target), target)
        mentioned = self.identity.bot_user_id in mentioned_users(text)
        if mentioned and target.kind is not ChannelKind.IM:
            self._publish(events.app_mention_event(stored, target), target)
        return stored

    def post_bot_message(
        self,
        channel: str,
        text: str,
        *,
        bot_id: str = "B0OTHERBOT",
        username: str = "other-bot",
        thread_ts: str | None = None,
    ) -> Message:
        """Another integration posts: subtype `bot_message`, no user."""
        target = self.channel(channel)
        parent = self._parent(target, thread_ts)
        message: Message = {
            "type": "message",
            "subtype": "bot_message",
            "text": text,
            "ts": self.workspace.next_ts(),
            "bot_id": bot_id,
            "username": username,
        }
        if parent is not None:
            message["thread_ts"] = parent["ts"]
        stored = self.workspace.insert(target.id, message)
        self._publish(events.message_event(stored, target), target)
        return stored

    def edit_message(self, channel: str, ts: str, text: str) -> Message:
        """The author edits: `message_changed` with the new and previous message."""
        target = self.channel(channel)
        previous = self._existing(target, ts)
        event_ts = self.workspace.next_ts()
        changes: dict[str, Any] = {
            "text": text,
            "edited": {"user": previous.get("user", ""), "ts": event_ts},
        }
        if "blocks" in previous:
            changes["blocks"] = rich_text_blocks(text)
        message = self.workspace.update(target.id, ts, changes)
        self._publish(events.message_changed_event(target, message, previous, event_ts), target)
        return message

    def delete_message(self, channel: str, ts: str) -> Message:
        """The author deletes: `message_deleted`; returns what was deleted."""
        target = self.channel(channel)
        previous = self.workspace.delete(target.id, self._existing(target, ts)["ts"])
        event = events.message_deleted_event(target, previous, self.workspace.next_ts())
        self._publish(event, target)
        return previous

    def add_reaction(self, channel: str, ts: str, user: str, name: str) -> None:
        """`user` reacts with :name: (`reaction_added`)."""
        self._reaction(channel, ts, user, name, added=True)

    def remove_reaction(self, channel: str, ts: str, user: str, name: str) -> None:
        """`user` takes :name: back (`reaction_removed`)."""
        self._reaction(channel, ts, user, name, added=False)

    # -- conversations --------------------------------------------------------------------

    def create_channel(
        self, name: str, creator: str, *, private: bool = False, bot: bool = False
    ) -> Channel:
        """A person creates a channel: `channel_created` (public channels only, as Slack)."""
        created = self.add_channel(name, private=private, members=[creator], bot=bot)
        created = self.workspace.update_channel(created.id, creator=creator)
        if not private:
            self._publish(events.channel_created_event(created, self.workspace.next_ts()))
        return created

    def rename_channel(self, channel: str, name: str) -> Channel:
        """`channel_rename`, or `group_rename` for a private channel."""
        target = self.workspace.update_channel(self.channel(channel).id, name=name)
        self._team_event(events.channel_renamed_event(target, self.workspace.next_ts()), target)
        return target

    def archive_channel(self, channel: str, user: str) -> Channel:
        """`user` archives it: `channel_archive` / `group_archive`."""
        target = self.workspace.update_channel(self.channel(channel).id, is_archived=True)
        event = events.channel_archived_event(target, user, self.workspace.next_ts())
        self._team_event(event, target)
        return target

    def delete_channel(self, channel: str) -> None:
        """An admin deletes it with its history: `channel_deleted` / `group_deleted`."""
        target = self.channel(channel)
        self.workspace.remove_channel(target.id)
        self._team_event(events.channel_deleted_event(target, self.workspace.next_ts()), target)

    def join_channel(self, channel: str, user: str, *, inviter: str | None = None) -> None:
        """`member_joined_channel` (also when the bot itself is added)."""
        target = self.channel(channel)
        if self.workspace.set_member(target.id, user, True):
            after = self.channel(target.id)
            team = self.identity.team_id
            event = events.member_event(True, after, user, team, self.workspace.next_ts(), inviter)
            self._publish(event, after)

    def leave_channel(self, channel: str, user: str) -> None:
        """`member_left_channel`; a leaving bot still hears of its own departure."""
        before = self.channel(channel)
        if self.workspace.set_member(before.id, user, False):
            team = self.identity.team_id
            event = events.member_event(False, before, user, team, self.workspace.next_ts())
            self._publish(event, before)

    # -- assistant ------------------------------------------------------------------------

    def start_assistant_thread(
        self, user: str, *, context_channel: str | None = None
    ) -> AssistantThread:
        """The user opens the assistant pane: a new thread in their DM with the bot."""
        dm = self.open_dm(user)
        root = self._message(dm, self.identity.bot_user_id, "", self.workspace.next_ts(), None)
        stored = self.workspace.insert(dm.id, root)
        context = self.channel(context_channel).id if context_channel else None
        event = events.assistant_thread_started_event(
            user, dm.id, stored["ts"], context, self.identity.team_id
        )
        self._publish(event)
        return AssistantThread(user, dm.id, stored["ts"])

    # -- internals ------------------------------------------------------------------------

    def _team_event(self, event: dict[str, Any], channel: Channel) -> None:
        """Public channel events reach every app; private ones only their members."""
        self._publish(event, channel if channel.is_private else None)

    def _parent(self, channel: Channel, thread_ts: str | None) -> Message | None:
        if thread_ts is None:
            return None
        return self._existing(channel, thread_ts)

    def _existing(self, channel: Channel, ts: str) -> Message:
        message = self.workspace.message(channel.id, ts)
        if message is None:
            raise KeyError(f"no message {ts} in {channel.name or channel.id}")
        return message

    def _reaction(self, channel: str, ts: str, user: str, name: str, *, added: bool) -> None:
        target = self.channel(channel)
        message = self._existing(target, ts)
        if self.workspace.react(target.id, ts, name, user, added):
            event = events.reaction_event(
                added,
                user=user,
                reaction=name,
                item_user=message.get("user"),
                channel_id=target.id,
                ts=ts,
                event_ts=self.workspace.next_ts(),
            )
            self._publish(event, target)
