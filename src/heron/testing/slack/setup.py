"""Setting the fake workspace up without telling the app: users, conversations, history.

Nothing here delivers events; it is the state a workspace already had before the app
joined (for imports and thread memory). `UserActivity` builds on it for the live side.
"""

from __future__ import annotations

import uuid
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from typing import Any

from heron.testing.slack.model import (
    AppIdentity,
    Channel,
    ChannelKind,
    Message,
    User,
    rich_text_blocks,
)
from heron.testing.slack.state import Workspace


@dataclass(frozen=True, slots=True)
class FileSpec:
    """A file a user shares; the fake serves `content` at its url_private_download."""

    name: str
    content: bytes | str
    mimetype: str = "text/plain"
    title: str | None = None


class WorkspaceSetup:
    """Silent setup helpers; the host class provides the workspace and identity."""

    workspace: Workspace
    identity: AppIdentity

    def _base_url(self) -> str:
        raise NotImplementedError

    # -- people and conversations ---------------------------------------------------------

    def add_user(
        self,
        name: str,
        *,
        real_name: str | None = None,
        tz: str = "UTC",
        is_bot: bool = False,
        deleted: bool = False,
        user_id: str | None = None,
    ) -> User:
        """A workspace member; active people also join #general, as in Slack."""
        user = User(
            id=user_id or self.workspace.new_id("U"),
            name=name,
            real_name=real_name or name.replace(".", " ").title(),
            team_id=self.identity.team_id,
            tz=tz,
            is_bot=is_bot,
            deleted=deleted,
            updated=int(self.workspace.clock()),
        )
        self.workspace.add_user(user)
        general = next((c for c in self.workspace.channels() if c.is_general), None)
        if general is not None and not deleted and not is_bot:
            self.workspace.set_member(general.id, user.id, True)
        return user

    def add_channel(
        self,
        name: str,
        *,
        private: bool = False,
        members: Iterable[str] | None = None,
        bot: bool = True,
        topic: str = "",
        purpose: str = "",
        created: int | None = None,
    ) -> Channel:
        """A channel; `members` defaults to every active person, `bot` adds the app's bot."""
        if members is None:
            members = [u.id for u in self.workspace.users() if not u.is_bot and not u.deleted]
        everyone = list(dict.fromkeys([*members, *([self.identity.bot_user_id] if bot else [])]))
        creator = everyone[0] if everyone else self.identity.bot_user_id
        return self.workspace.add_channel(
            Channel(
                id=self.workspace.new_id("C"),
                name=name.removeprefix("#"),
                kind=ChannelKind.PRIVATE if private else ChannelKind.PUBLIC,
                created=created if created is not None else int(self.workspace.clock()),
                creator=creator,
                members=everyone,
                topic=topic,
                purpose=purpose,
            )
        )

    def open_dm(self, user_id: str) -> Channel:
        """The DM between `user_id` and the bot (opened once, then reused)."""
        existing = self.workspace.dm_between(self.identity.bot_user_id, user_id)
        if existing is not None:
            return existing
        return self.workspace.add_channel(
            Channel(
                self.workspace.new_id("D"),
                user_id,
                ChannelKind.IM,
                int(self.workspace.clock()),
                user_id,
                [user_id, self.identity.bot_user_id],
            )
        )

    def open_mpim(self, user_ids: Sequence[str], *, bot: bool = True) -> Channel:
        """A group DM of `user_ids` (and the bot)."""
        names = [u.name for uid in user_ids if (u := self.workspace.user(uid)) is not None]
        members = [*user_ids, *([self.identity.bot_user_id] if bot else [])]
        return self.workspace.add_channel(
            Channel(
                self.workspace.new_id("C"),
                "mpdm-" + "--".join(names) + "-1",
                ChannelKind.MPIM,
                int(self.workspace.clock()),
                user_ids[0],
                members,
            )
        )

    # -- history --------------------------------------------------------------------------

    def seed_message(
        self,
        channel: str,
        user: str,
        text: str,
        *,
        at: float | None = None,
        thread_ts: str | None = None,
        broadcast: bool = False,
        files: Sequence[FileSpec] = (),
        metadata: dict[str, Any] | None = None,
        subtype: str | None = None,
    ) -> Message:
        """Store a message as if sent before; `user` may be the bot's user id."""
        target = self.channel(channel)
        parent = self.workspace.message(target.id, thread_ts) if thread_ts else None
        if thread_ts and parent is None:
            raise KeyError(f"no message {thread_ts} in {channel}")
        message = self._message(target, user, text, self.workspace.next_ts(at), parent, files)
        if broadcast and parent is not None:
            message["subtype"] = "thread_broadcast"
        if subtype is not None:
            message["subtype"] = subtype
        if metadata is not None:
            message["metadata"] = metadata
        return self.workspace.insert(target.id, message)

    def seed_history(
        self,
        channel: str,
        n: int,
        *,
        with_threads: int = 0,
        replies_per_thread: int = 3,
        users: Sequence[str] | None = None,
        start: float | None = None,
        interval: float = 600.0,
    ) -> list[Message]:
        """`n` top-level messages `interval` seconds apart, ending before now.

        The first `with_threads` of them get `replies_per_thread` replies each (extra to
        `n`), a second apart. Authors rotate through `users` (default: the channel's
        people). Returns every message created, oldest first.
        """
        target = self.channel(channel)
        authors = list(users or [m for m in target.members if m != self.identity.bot_user_id])
        if not authors:
            raise ValueError(f"{channel} has no members to write its history")
        begin = start if start is not None else self.workspace.clock() - (n + 1) * interval
        created: list[Message] = []
        for i in range(n):
            at = begin + i * interval
            top = self.seed_message(target.id, authors[i % len(authors)], f"message {i + 1}", at=at)
            created.append(top)
            if i < with_threads:
                for j in range(replies_per_thread):
                    created.append(
                        self.seed_message(
                            target.id,
                            authors[(i + j + 1) % len(authors)],
                            f"reply {j + 1} to message {i + 1}",
                            at=at + j + 1,
                            thread_ts=top["ts"],
                        )
                    )
        return created

    # -- shared ---------------------------------------------------------------------------

    def channel(self, ref: str) -> Channel:
        """A conversation by id, name or '#name'; a user id means their DM with the bot."""
        if self.workspace.user(ref) is not None:
            return self.open_dm(ref)
        found = self.workspace.find_channel(ref)
        if found is None:
            raise KeyError(f"no conversation {ref!r} in the fake workspace")
        return found

    def _message(
        self,
        channel: Channel,
        user: str,
        text: str,
        ts: str,
        parent: Message | None,
        files: Sequence[FileSpec] = (),
    ) -> Message:
        """A message as Slack stores it: a person's (with blocks) or the bot's."""
        message: Message = {"type": "message", "user": user, "text": text, "ts": ts}
        message["team"] = self.identity.team_id
        if user == self.identity.bot_user_id:
            message.update({"bot_id": self.identity.bot_id, "app_id": self.identity.app_id})
        else:
            message["client_msg_id"] = str(uuid.uuid4())
            message["blocks"] = rich_text_blocks(text)
        if parent is not None:
            message["thread_ts"] = parent.get("thread_ts", parent["ts"])
            message["parent_user_id"] = parent.get("user", "")
        if files:
            message["subtype"] = "file_share"
            message["upload"] = False
            message["files"] = [self._file(user, spec, ts) for spec in files]
        return message

    def _file(self, user: str, spec: FileSpec, ts: str) -> dict[str, Any]:
        content = spec.content.encode() if isinstance(spec.content, str) else spec.content
        file_id = self.workspace.new_id("F")
        base = f"{self._base_url()}/files-pri/{self.identity.team_id}-{file_id}"
        extension = spec.name.rpartition(".")[2] if "." in spec.name else "text"
        file = {
            "id": file_id,
            "created": int(float(ts)),
            "timestamp": int(float(ts)),
            "name": spec.name,
            "title": spec.title or spec.name,
            "mimetype": spec.mimetype,
            "filetype": extension,
            "pretty_type": extension.upper(),
            "user": user,
            "mode": "hosted",
            "is_external": False,
            "is_public": True,
            "size": len(content),
            "url_private": f"{base}/{spec.name}",
            "url_private_download": f"{base}/download/{spec.name}",
            "permalink": f"https://{self.identity.domain}.slack.com/files/{user}/{file_id}",
        }
        self.workspace.add_file(file, content)
        return file
