"""The local user's side of the workspace: read its conversations from the Slack fake,
and post as the user through the fake, so that Heron hears it exactly as it hears Slack
(message events over Socket Mode, then its answer through the Web API)."""

from __future__ import annotations

import hashlib
from collections.abc import Sequence
from typing import Any

from psycopg_pool import AsyncConnectionPool

from heron.errors import HeronError
from heron.testing.slack import Channel, Message, SlackFake, User
from heron.web.workspace.composing import encode_message
from heron.web.workspace.journey import (
    Journey,
    is_question,
    journey,
    question_events,
    question_key,
)
from heron.web.workspace.seed import Directory
from heron.web.workspace.views import channel_view, messages_view, person

MAX_TEXT_CHARS = 4000  # what Slack's message box takes


class RequestError(HeronError):
    """A request the page should not have made: unknown conversation, empty message."""

    def __init__(self, message: str, status: int) -> None:
        super().__init__(message)
        self.status = status


class Conversations:
    """Reads and writes the local user's conversations (the sidebar's)."""

    def __init__(
        self, fake: SlackFake, directory: Directory, pool: AsyncConnectionPool[Any]
    ) -> None:
        self.fake = fake
        self.directory = directory
        self.pool = pool
        self.posted = 0

    # -- reading --------------------------------------------------------------------------

    def info(self) -> dict[str, Any]:
        """Who is who: the team, the bot, the local user and every member."""
        identity = self.fake.identity
        users = self._users()
        return {
            "team": {"id": identity.team_id, "name": identity.team_name, "domain": identity.domain},
            "bot": person(users.get(identity.bot_user_id), identity.bot_user_id),
            "me": person(users.get(self.directory.me), self.directory.me),
            "users": [person(u, u.id) for u in users.values() if not u.deleted],
            "channels": self.channels(),
            "dashboard": "/dashboard",
        }

    def channels(self) -> list[dict[str, Any]]:
        identity = self.fake.identity
        views = []
        for channel in self._channels():
            history = self.fake.workspace.all_messages(channel.id)
            latest = history[-1]["ts"] if history else None
            views.append(channel_view(channel, identity.bot_user_id, latest, identity.bot_name))
        return views

    async def messages(self, ref: str) -> dict[str, Any]:
        """A conversation's top-level messages, oldest first."""
        channel = self._channel(ref)
        history = self.fake.workspace.history(channel.id)
        return {
            "channel": self._view(channel),
            "messages": messages_view(
                history, self._users(), await self._journeys(channel, history)
            ),
        }

    async def thread(self, ref: str, ts: str) -> dict[str, Any]:
        """A thread: its parent and replies, oldest first."""
        channel = self._channel(ref)
        found = self.fake.workspace.thread(channel.id, ts)
        if not found:
            raise RequestError(f"no thread {ts} in this conversation", 404)
        views = messages_view(found, self._users(), await self._journeys(channel, found))
        return {"channel": self._view(channel), "parent": views[0], "replies": views[1:]}

    async def version(self) -> str:
        """Changes whenever the page would show something new."""
        questions: list[str] = []
        bot = self.fake.identity.bot_user_id
        for channel in self._channels():
            for message in self.fake.workspace.all_messages(channel.id):
                if is_question(message, channel, bot):
                    questions.append(question_key(channel.id, message["ts"]))
        rows = await question_events(self.pool, questions)
        stages = sorted((key, journey(row).stage.value) for key, row in rows.items())
        digest = hashlib.sha256(repr(stages).encode()).hexdigest()[:16]
        return f"{len(self.fake.calls)}.{self.posted}.{len(questions)}.{digest}"

    # -- writing --------------------------------------------------------------------------

    async def post(self, ref: str, typed: str, thread_ts: str | None) -> dict[str, Any]:
        """Post as the local user; Slack's client escapes the text and encodes mentions."""
        channel = self._channel(ref)
        if not typed.strip():
            raise RequestError("the message is empty", 400)
        if len(typed) > MAX_TEXT_CHARS:
            raise RequestError(f"the message is longer than {MAX_TEXT_CHARS} characters", 400)
        if thread_ts is not None and self.fake.workspace.message(channel.id, thread_ts) is None:
            raise RequestError(f"no message {thread_ts} in this conversation", 404)
        members = {u.name.lower(): u.id for u in self._users().values() if not u.deleted}
        text = encode_message(typed.strip(), members)
        stored = self.fake.post_user_message(
            channel.id, self.directory.me, text, thread_ts=thread_ts
        )
        self.posted += 1
        (view,) = messages_view([stored], self._users(), await self._journeys(channel, [stored]))
        return view

    # -- internals ------------------------------------------------------------------------

    def _channels(self) -> list[Channel]:
        found = (self.fake.workspace.channel(c) for c in self.directory.channels)
        return [c for c in found if c is not None]

    def _channel(self, ref: str) -> Channel:
        for channel in self._channels():
            if ref in (channel.id, channel.name, f"#{channel.name}"):
                return channel
        raise RequestError(f"no conversation {ref!r} in the local workspace", 404)

    def _view(self, channel: Channel) -> dict[str, Any]:
        identity = self.fake.identity
        return channel_view(channel, identity.bot_user_id, None, identity.bot_name)

    def _users(self) -> dict[str, User]:
        return {u.id: u for u in self.fake.users()}

    async def _journeys(self, channel: Channel, messages: Sequence[Message]) -> dict[str, Journey]:
        bot = self.fake.identity.bot_user_id
        asked = {
            question_key(channel.id, m["ts"]): m["ts"]
            for m in messages
            if is_question(m, channel, bot)
        }
        rows = await question_events(self.pool, asked)
        return {ts: journey(rows.get(key)) for key, ts in asked.items()}
