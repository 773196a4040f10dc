"""Writing the workspace as a Slack workspace export (the admin "Export data" zip).

Layout as Slack produces it: users.json, channels.json (public), groups.json (private),
dms.json, mpims.json at the top; one folder per conversation (channel name, or the DM's
id) holding one `YYYY-MM-DD.json` per day (UTC) with that day's messages oldest first,
thread replies included in the day they were sent.
"""

from __future__ import annotations

import json
import zipfile
from collections import defaultdict
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from heron.testing.slack.model import Channel, ChannelKind, Message, User
from heron.testing.slack.state import Workspace


def export_files(workspace: Workspace) -> dict[str, Any]:
    """Every export file as {relative path: JSON value}."""
    users = {u.id: u for u in workspace.users()}
    channels = workspace.channels()
    files: dict[str, Any] = {
        "users.json": [u.to_api() for u in users.values()],
        "channels.json": [_channel(c) for c in channels if c.kind is ChannelKind.PUBLIC],
        "groups.json": [_channel(c) for c in channels if c.kind is ChannelKind.PRIVATE],
        "mpims.json": [_channel(c) for c in channels if c.kind is ChannelKind.MPIM],
        "dms.json": [
            {"id": c.id, "created": c.created, "members": c.members}
            for c in channels
            if c.kind is ChannelKind.IM
        ],
        "integration_logs.json": [],
    }
    for channel in channels:
        folder = channel.id if channel.kind is ChannelKind.IM else channel.name
        messages = workspace.all_messages(channel.id)
        replies: dict[str, list[dict[str, str]]] = defaultdict(list)
        for message in messages:
            if message.get("thread_ts") not in (None, message["ts"]):
                author = message.get("user") or message.get("bot_id", "")
                replies[message["thread_ts"]].append({"user": author, "ts": message["ts"]})
        days: dict[str, list[Message]] = defaultdict(list)
        for message in messages:
            day = datetime.fromtimestamp(float(message["ts"]), UTC).strftime("%Y-%m-%d")
            days[day].append(_exported(message, users, replies.get(message["ts"], [])))
        for day, listed in days.items():
            files[f"{folder}/{day}.json"] = listed
    return files


def write_export(workspace: Workspace, path: Path, *, as_zip: bool) -> Path:
    """Write the export as a folder at `path`, or as a zip file at `path`."""
    files = export_files(workspace)
    if as_zip:
        path.parent.mkdir(parents=True, exist_ok=True)
        with zipfile.ZipFile(path, "w", zipfile.ZIP_DEFLATED) as archive:
            for name, value in files.items():
                archive.writestr(name, json.dumps(value, indent=4, ensure_ascii=False))
        return path
    for name, value in files.items():
        target = path / name
        target.parent.mkdir(parents=True, exist_ok=True)
        target.write_text(json.dumps(value, indent=4, ensure_ascii=False), encoding="utf-8")
    return path


def _channel(channel: Channel) -> dict[str, Any]:
    return {
        "id": channel.id,
        "name": channel.name,
        "created": channel.created,
        "creator": channel.creator,
        "is_archived": channel.is_archived,
        "is_general": channel.is_general,
        "members": channel.members,
        "pins": [],
        "topic": {"value": channel.topic, "creator": channel.creator, "last_set": 0},
        "purpose": {"value": channel.purpose, "creator": channel.creator, "last_set": 0},
    }


def _exported(message: Message, users: dict[str, User], replies: list[dict[str, str]]) -> Message:
    """Exports add the author's profile and the legacy `replies` list on parents."""
    exported = dict(message)
    author = users.get(message.get("user", ""))
    if author is not None and "bot_id" not in message:
        exported["user_profile"] = {
            "avatar_hash": "",
            "first_name": author.real_name.split(" ")[0],
            "real_name": author.real_name,
            "display_name": author.name,
            "team": author.team_id,
            "name": author.name,
            "is_restricted": False,
            "is_ultra_restricted": False,
        }
    if replies:
        exported["replies"] = replies
    return exported
