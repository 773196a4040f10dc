"""slack-manifest.json asks for what Heron handles and uses, and for nothing else."""

from __future__ import annotations

import json
from pathlib import Path

from heron.slack import events

MANIFEST = json.loads((Path(__file__).parents[2] / "slack-manifest.json").read_text())

# The scope Slack requires for each event subscription (api.slack.com/events).
EVENT_SCOPES = {
    "app_mention": "app_mentions:read",
    "assistant_thread_context_changed": "assistant:write",
    "assistant_thread_started": "assistant:write",
    "message.channels": "channels:history",
    "message.groups": "groups:history",
    "message.im": "im:history",
    "message.mpim": "mpim:history",
    "reaction_added": "reactions:read",
    "reaction_removed": "reactions:read",
    "member_joined_channel": "channels:read",
    "member_left_channel": "channels:read",
    "team_join": "users:read",
    "user_change": "users:read",
}
# Scopes of the Web API methods Heron calls: chat.postMessage, users.list, file downloads,
# reactions.add, assistant.threads.setStatus, conversations.list of DMs and group DMs.
METHOD_SCOPES = {
    *("chat:write", "users:read", "files:read", "reactions:write", "assistant:write"),
    *("im:read", "mpim:read"),
}


def event_scope(name: str) -> str:
    if name in EVENT_SCOPES:
        return EVENT_SCOPES[name]
    prefix = name.split("_", 1)[0]
    return {"channel": "channels:read", "group": "groups:read"}[prefix]


def test_every_subscribed_event_is_handled_by_heron() -> None:
    for name in MANIFEST["settings"]["event_subscriptions"]["bot_events"]:
        event_type = name.split(".", 1)[0]  # message.channels -> message
        assert event_type in events._PLANNERS or event_type in events._IGNORED, name


def test_scopes_cover_the_events_and_the_calls_and_nothing_more() -> None:
    subscribed = MANIFEST["settings"]["event_subscriptions"]["bot_events"]
    needed = {event_scope(name) for name in subscribed} | METHOD_SCOPES
    assert set(MANIFEST["oauth_config"]["scopes"]["bot"]) == needed


def test_socket_mode_is_on() -> None:
    assert MANIFEST["settings"]["socket_mode_enabled"] is True
