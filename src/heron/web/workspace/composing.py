"""What a person types, as Slack's own client sends it: `&`, `<` and `>` escaped, links
wrapped in `<…>`, and `@name` of a workspace member turned into the mention `<@U…>`."""

from __future__ import annotations

import re
from collections.abc import Mapping

_URL = re.compile(r"https?://[^\s<>]+")
_MENTION = re.compile(r"(?<![\w@/.])@([A-Za-z0-9][\w.-]*)")
_TRAILING = ".,;:!?)'\""


def encode_message(typed: str, members: Mapping[str, str]) -> str:
    """`members` maps lower-case names to user ids; unknown `@words` stay as typed."""
    text = typed.replace("&", "&amp;").replace("<", "&lt;").replace(">", "&gt;")
    parts: list[str] = []
    position = 0
    for match in _URL.finditer(text):
        url = match.group(0).rstrip(_TRAILING)
        parts.append(_mentions(text[position : match.start()], members))
        parts.append(f"<{url}>")
        position = match.start() + len(url)
    parts.append(_mentions(text[position:], members))
    return "".join(parts)


def _mentions(text: str, members: Mapping[str, str]) -> str:
    return _MENTION.sub(lambda match: _mention(match, members), text)


def _mention(match: re.Match[str], members: Mapping[str, str]) -> str:
    name = match.group(1)
    bare = name.rstrip(".-")  # "@heron." : the full stop ends the sentence, not the name
    user = members.get(bare.lower())
    if user is None:
        return match.group(0)
    return f"<@{user}>{name[len(bare) :]}"
