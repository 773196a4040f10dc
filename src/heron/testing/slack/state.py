"""The fake workspace's memory: users, conversations, messages and files.

Pure and thread-safe: the Web API handlers (on the fake's loop) and the test's helpers
(on any thread) share one `Workspace`, so every method takes its lock and hands out
copies, never the stored dicts. Messages are stored in Slack's own JSON shape, so the
Web API, the events and the export all serve the same dicts.
"""

from __future__ import annotations

import bisect
import copy
import threading
import time
from collections.abc import Callable
from typing import Any

from heron.testing.slack.model import (
    Channel,
    ChannelKind,
    Message,
    User,
    format_ts,
    is_top_level,
    ts_micros,
)

TOMBSTONE_TEXT = "This message was deleted."


class Workspace:
    """One Slack team's state, guarded by a lock; all reads return copies."""

    def __init__(self, team_id: str, clock: Callable[[], float] = time.time) -> None:
        self.team_id = team_id
        self.clock = clock
        self.lock = threading.RLock()
        self._users: dict[str, User] = {}
        self._channels: dict[str, Channel] = {}
        self._messages: dict[str, list[Message]] = {}
        self._by_ts: dict[str, dict[str, Message]] = {}
        self._files: dict[str, tuple[dict[str, Any], bytes]] = {}
        self._next_id = 0
        self._last_micros = 0

    # -- ids and time ---------------------------------------------------------------------

    def new_id(self, prefix: str) -> str:
        """A fresh Slack-looking id (`U000000001A`): prefix, digits, upper case only."""
        with self.lock:
            self._next_id += 1
            return f"{prefix}{self._next_id:09d}A"

    def next_ts(self, at: float | None = None) -> str:
        """A message ts: now (strictly after every earlier one), or at `at` if given."""
        with self.lock:
            if at is not None:
                return format_ts(round(at * 1_000_000))
            micros = max(round(self.clock() * 1_000_000), self._last_micros + 1)
            self._last_micros = micros
            return format_ts(micros)

    # -- users ----------------------------------------------------------------------------

    def add_user(self, user: User) -> User:
        with self.lock:
            self._users[user.id] = user
            return copy.copy(user)

    def user(self, user_id: str) -> User | None:
        with self.lock:
            found = self._users.get(user_id)
            return copy.copy(found) if found else None

    def users(self) -> list[User]:
        with self.lock:
            return [copy.copy(u) for u in self._users.values()]

    # -- channels -------------------------------------------------------------------------

    def add_channel(self, channel: Channel) -> Channel:
        with self.lock:
            self._channels[channel.id] = channel
            self._messages.setdefault(channel.id, [])
            self._by_ts.setdefault(channel.id, {})
            return copy.deepcopy(channel)

    def channel(self, channel_id: str) -> Channel | None:
        with self.lock:
            found = self._channels.get(channel_id)
            return copy.deepcopy(found) if found else None

    def find_channel(self, ref: str) -> Channel | None:
        """By id, or by name with or without '#'."""
        with self.lock:
            if ref in self._channels:
                return copy.deepcopy(self._channels[ref])
            name = ref.removeprefix("#")
            for channel in self._channels.values():
                if channel.kind is not ChannelKind.IM and channel.name == name:
                    return copy.deepcopy(channel)
            return None

    def channels(self) -> list[Channel]:
        with self.lock:
            return [copy.deepcopy(c) for c in self._channels.values()]

    def dm_between(self, a: str, b: str) -> Channel | None:
        with self.lock:
            for channel in self._channels.values():
                if channel.kind is ChannelKind.IM and set(channel.members) == {a, b}:
                    return copy.deepcopy(channel)
            return None

    def update_channel(self, channel_id: str, **changes: Any) -> Channel:
        """Set attributes (name, is_archived, topic, ...) and return the new state."""
        with self.lock:
            channel = self._channels[channel_id]
            for key, value in changes.items():
                setattr(channel, key, value)
            return copy.deepcopy(channel)

    def set_member(self, channel_id: str, user_id: str, member: bool) -> bool:
        """Join or leave; False when nothing changed."""
        with self.lock:
            members = self._channels[channel_id].members
            if (user_id in members) == member:
                return False
            if member:
                members.append(user_id)
            else:
                members.remove(user_id)
            return True

    def remove_channel(self, channel_id: str) -> None:
        with self.lock:
            self._channels.pop(channel_id, None)
            self._messages.pop(channel_id, None)
            self._by_ts.pop(channel_id, None)

    # -- messages -------------------------------------------------------------------------

    def insert(self, channel_id: str, message: Message) -> Message:
        """Store a message (kept in ts order) and update its thread parent's counters."""
        with self.lock:
            stored = copy.deepcopy(message)
            index = self._by_ts[channel_id]
            while stored["ts"] in index:  # two seeds at the same instant
                stored["ts"] = format_ts(ts_micros(stored["ts"]) + 1)
            bisect.insort(self._messages[channel_id], stored, key=lambda m: ts_micros(m["ts"]))
            index[stored["ts"]] = stored
            thread_ts = stored.get("thread_ts")
            if thread_ts is not None and thread_ts != stored["ts"]:
                self._refresh_thread(channel_id, thread_ts)
            return copy.deepcopy(stored)

    def message(self, channel_id: str, ts: str) -> Message | None:
        with self.lock:
            found = self._find(channel_id, ts)
            return copy.deepcopy(found) if found else None

    def update(self, channel_id: str, ts: str, changes: dict[str, Any]) -> Message:
        """Apply `changes` (a None value removes the key); returns the new message."""
        with self.lock:
            stored = self._find(channel_id, ts)
            if stored is None:
                raise KeyError(ts)
            for key, value in changes.items():
                if value is None:
                    stored.pop(key, None)
                else:
                    stored[key] = copy.deepcopy(value)
            return copy.deepcopy(stored)

    def delete(self, channel_id: str, ts: str) -> Message:
        """Remove a message; a parent with replies becomes Slack's tombstone."""
        with self.lock:
            stored = self._find(channel_id, ts)
            if stored is None:
                raise KeyError(ts)
            previous = copy.deepcopy(stored)
            if stored.get("reply_count"):
                keep: dict[str, Any] = {
                    k: stored[k] for k in ("ts", "thread_ts", "type") if k in stored
                }
                keep.update(
                    {
                        "subtype": "tombstone",
                        "text": TOMBSTONE_TEXT,
                        "user": "USLACKBOT",
                        "hidden": True,
                    }
                )
                stored.clear()
                stored.update(keep)
                self._refresh_thread(channel_id, ts)
            else:
                self._messages[channel_id].remove(stored)
                del self._by_ts[channel_id][ts]
                thread_ts = stored.get("thread_ts")
                if thread_ts is not None and thread_ts != ts:
                    self._refresh_thread(channel_id, thread_ts)
            return previous

    def history(self, channel_id: str) -> list[Message]:
        """Top-level messages, oldest first."""
        with self.lock:
            return [copy.deepcopy(m) for m in self._messages[channel_id] if is_top_level(m)]

    def thread(self, channel_id: str, thread_ts: str) -> list[Message]:
        """The parent then its replies, oldest first (empty if there is no such message)."""
        with self.lock:
            parent = self._find(channel_id, thread_ts)
            if parent is None:
                return []
            replies = [
                m
                for m in self._messages[channel_id]
                if m.get("thread_ts") == thread_ts and m["ts"] != thread_ts
            ]
            return [copy.deepcopy(m) for m in [parent, *replies]]

    def all_messages(self, channel_id: str) -> list[Message]:
        """Every message incl. thread replies, oldest first."""
        with self.lock:
            return [copy.deepcopy(m) for m in self._messages.get(channel_id, [])]

    def react(self, channel_id: str, ts: str, name: str, user_id: str, add: bool) -> bool:
        """Add or remove a reaction; False when it was already so."""
        with self.lock:
            stored = self._find(channel_id, ts)
            if stored is None:
                raise KeyError(ts)
            reactions: list[dict[str, Any]] = stored.setdefault("reactions", [])
            entry = next((r for r in reactions if r["name"] == name), None)
            if add:
                if entry is None:
                    entry = {"name": name, "users": [], "count": 0}
                    reactions.append(entry)
                if user_id in entry["users"]:
                    return False
                entry["users"].append(user_id)
            else:
                if entry is None or user_id not in entry["users"]:
                    return False
                entry["users"].remove(user_id)
                if not entry["users"]:
                    reactions.remove(entry)
            if entry in reactions:
                entry["count"] = len(entry["users"])
            if not reactions:
                del stored["reactions"]
            return True

    # -- files ----------------------------------------------------------------------------

    def add_file(self, file: dict[str, Any], content: bytes) -> None:
        with self.lock:
            self._files[file["id"]] = (copy.deepcopy(file), content)

    def file(self, file_id: str) -> tuple[dict[str, Any], bytes] | None:
        with self.lock:
            found = self._files.get(file_id)
            return (copy.deepcopy(found[0]), found[1]) if found else None

    # -- internals ------------------------------------------------------------------------

    def _find(self, channel_id: str, ts: str) -> Message | None:
        return self._by_ts.get(channel_id, {}).get(ts)

    def _refresh_thread(self, channel_id: str, parent_ts: str) -> None:
        parent = self._find(channel_id, parent_ts)
        if parent is None:
            return
        replies = [
            m
            for m in self._messages[channel_id]
            if m.get("thread_ts") == parent_ts and m["ts"] != parent_ts
        ]
        if not replies:
            for key in ("reply_count", "reply_users_count", "latest_reply", "reply_users"):
                parent.pop(key, None)
            if parent.get("subtype") == "tombstone":
                self._messages[channel_id].remove(parent)
                del self._by_ts[channel_id][parent_ts]
            else:
                parent.pop("thread_ts", None)
            return
        users = list(dict.fromkeys(m.get("user") or m.get("bot_id") or "" for m in replies))
        parent.update(
            {
                "thread_ts": parent_ts,
                "reply_count": len(replies),
                "reply_users_count": len(users),
                "reply_users": users,
                "latest_reply": replies[-1]["ts"],
                "is_locked": False,
                "subscribed": False,
            }
        )
