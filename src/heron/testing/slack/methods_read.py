"""The Web API methods the bot reads with: auth, apps.connections.open, conversations.*, users.*.

Paging follows Slack: opaque `next_cursor` in `response_metadata` ("" on the last page),
history newest first with `has_more`, replies oldest first with the parent at the top
of every page, and metadata only for the app's own messages unless asked for all.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from heron.testing.slack.model import AppIdentity, Channel, ChannelKind, Message, ts_micros
from heron.testing.slack.state import Workspace
from heron.testing.slack.web_api import (
    ApiError,
    Handler,
    Params,
    flag,
    integer,
    paginate,
    required,
    resolve_channel,
    text,
)


class ReadMethods:
    """auth.test, apps.connections.open, conversations.* and users.* on a shared workspace."""

    def __init__(
        self, workspace: Workspace, identity: AppIdentity, socket_url: Callable[[], str]
    ) -> None:
        self.workspace = workspace
        self.identity = identity
        self.socket_url = socket_url

    def handlers(self) -> dict[str, Handler]:
        """Slack method name -> handler, for `WebApi`."""
        return {
            "auth.test": self.auth_test,
            "apps.connections.open": self.connections_open,
            "conversations.list": self.list_conversations,
            "conversations.info": self.info,
            "conversations.history": self.history,
            "conversations.replies": self.replies,
            "conversations.members": self.members,
            "conversations.open": self.open,
            "users.list": self.list_users,
            "users.info": self.user_info,
        }

    def auth_test(self, p: Params) -> dict[str, Any]:
        identity = self.identity
        return {
            "ok": True,
            "url": f"https://{identity.domain}.slack.com/",
            "team": identity.team_name,
            "user": identity.bot_name,
            "team_id": identity.team_id,
            "user_id": identity.bot_user_id,
            "bot_id": identity.bot_id,
            "is_enterprise_install": False,
        }

    def connections_open(self, p: Params) -> dict[str, Any]:
        return {"ok": True, "url": self.socket_url()}

    # -- conversations --------------------------------------------------------------------

    def list_conversations(self, p: Params) -> dict[str, Any]:
        kinds = set()
        for name in (text(p, "types") or "public_channel").split(","):
            try:
                kinds.add(ChannelKind(name.strip()))
            except ValueError:
                raise ApiError("invalid_types") from None
        bot = self.identity.bot_user_id
        visible = [
            c
            for c in self.workspace.channels()
            if c.kind in kinds
            and (c.kind is ChannelKind.PUBLIC or bot in c.members)
            and not (flag(p, "exclude_archived") and c.is_archived)
        ]
        limit = integer(p, "limit", 100, 1000)
        page, cursor = paginate(visible, lambda c: c.id, text(p, "cursor"), limit, "team")
        return {
            "ok": True,
            "channels": [c.to_api(bot) for c in page],
            "response_metadata": {"next_cursor": cursor},
        }

    def info(self, p: Params) -> dict[str, Any]:
        channel = self._channel(p, member=False)
        shown = channel.to_api(self.identity.bot_user_id)
        if not flag(p, "include_num_members"):
            shown.pop("num_members", None)
        return {"ok": True, "channel": shown}

    def history(self, p: Params) -> dict[str, Any]:
        channel = self._channel(p, member=True)
        messages = _within(self.workspace.history(channel.id), p)[::-1]
        limit = integer(p, "limit", 100, 999)
        page, cursor = paginate(messages, _ts, text(p, "cursor"), limit, "next_ts")
        return {
            "ok": True,
            "messages": self._shown(page, p),
            "has_more": bool(cursor),
            "pin_count": 0,
            "response_metadata": {"next_cursor": cursor},
        }

    def replies(self, p: Params) -> dict[str, Any]:
        channel = self._channel(p, member=True)
        thread = self.workspace.thread(channel.id, required(p, "ts"))
        if not thread:
            raise ApiError("thread_not_found")
        parent, replies = thread[0], _within(thread[1:], p)
        size = max(integer(p, "limit", 1000, 1000) - 1, 1)
        page, cursor = paginate(replies, _ts, text(p, "cursor"), size, "next_ts")
        return {
            "ok": True,
            "messages": self._shown([parent, *page], p),
            "has_more": bool(cursor),
            "response_metadata": {"next_cursor": cursor},
        }

    def members(self, p: Params) -> dict[str, Any]:
        channel = self._channel(p, member=False)
        limit = integer(p, "limit", 100, 1000)
        page, cursor = paginate(channel.members, str, text(p, "cursor"), limit, "members")
        return {"ok": True, "members": page, "response_metadata": {"next_cursor": cursor}}

    def open(self, p: Params) -> dict[str, Any]:
        """conversations.open for one user (their DM with the bot) or several (an mpim)."""
        wanted = [u.strip() for u in (text(p, "users") or "").split(",") if u.strip()]
        if not wanted:
            channel = self._channel(p, member=True)
            return {"ok": True, "channel": {"id": channel.id}}
        for user_id in wanted:
            if self.workspace.user(user_id) is None:
                raise ApiError("user_not_found")
        bot = self.identity.bot_user_id
        if len(wanted) == 1:
            existing = self.workspace.dm_between(bot, wanted[0])
            if existing is not None:
                return {
                    "ok": True,
                    "no_op": True,
                    "already_open": True,
                    "channel": {"id": existing.id},
                }
            kind, prefix, name = ChannelKind.IM, "D", wanted[0]
        else:
            kind, prefix = ChannelKind.MPIM, "C"
            names = [u.name for uid in wanted if (u := self.workspace.user(uid)) is not None]
            name = "mpdm-" + "--".join(names) + "-1"
        channel = self.workspace.add_channel(
            Channel(
                self.workspace.new_id(prefix),
                name,
                kind,
                int(self.workspace.clock()),
                bot,
                [*wanted, bot],
            )
        )
        return {"ok": True, "channel": {"id": channel.id}}

    # -- users ----------------------------------------------------------------------------

    def list_users(self, p: Params) -> dict[str, Any]:
        users = self.workspace.users()
        limit = integer(p, "limit", len(users) or 1, 1000)
        page, cursor = paginate(users, lambda u: u.id, text(p, "cursor"), limit, "users")
        return {
            "ok": True,
            "members": [u.to_api() for u in page],
            "cache_ts": int(self.workspace.clock()),
            "response_metadata": {"next_cursor": cursor},
        }

    def user_info(self, p: Params) -> dict[str, Any]:
        user = self.workspace.user(required(p, "user", "user_not_found"))
        if user is None:
            raise ApiError("user_not_found")
        return {"ok": True, "user": user.to_api()}

    # -- internals ------------------------------------------------------------------------

    def _channel(self, p: Params, *, member: bool) -> Channel:
        return resolve_channel(self.workspace, self.identity, text(p, "channel"), member=member)

    def _shown(self, messages: list[Message], p: Params) -> list[Message]:
        """Slack shows other apps' metadata only with include_all_metadata."""
        if flag(p, "include_all_metadata"):
            return messages
        for message in messages:
            if message.get("app_id") != self.identity.app_id:
                message.pop("metadata", None)
        return messages


def _ts(message: Message) -> str:
    return str(message["ts"])


def _within(messages: list[Message], p: Params) -> list[Message]:
    """Messages between `oldest` and `latest` (bounds excluded unless `inclusive`)."""
    oldest = ts_micros(text(p, "oldest") or "0")
    latest_text = text(p, "latest")
    latest = ts_micros(latest_text) if latest_text else None
    inclusive = flag(p, "inclusive")

    def keep(message: Message) -> bool:
        at = ts_micros(message["ts"])
        above = at >= oldest if inclusive else at > oldest
        below = latest is None or (at <= latest if inclusive else at < latest)
        return above and below

    return [m for m in messages if keep(m)]
