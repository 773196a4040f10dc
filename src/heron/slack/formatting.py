"""Answers written in Markdown, made into valid Slack mrkdwn and cut to Slack's sizes."""

from __future__ import annotations

import re

# Slack accepts 40,000 characters but folds long messages behind "Show more"; parts of
# this size read well and stay clear of every limit.
PART_CHARS = 3_900

_FENCE = "```"
_CODE = re.compile(r"```.*?```|`[^`\n]+`", re.DOTALL)
_SLACK_TOKEN = re.compile(r"<(?:[@#!][^<>\s]+|(?:https?|mailto):[^<>\s]+)>")
_LINK = re.compile(r"\[([^\]\n]+)\]\(((?:https?|mailto):[^)\s]+)\)")
_HEADING = re.compile(r"^#{1,6}\s+(.+?)\s*#*\s*$", re.MULTILINE)
_BULLET = re.compile(r"^(\s*)[*+-]\s+", re.MULTILINE)
_BOLD = re.compile(r"\*\*(?=\S)(.+?)(?<=\S)\*\*|__(?=\S)(.+?)(?<=\S)__")
_ITALIC = re.compile(r"(?<![*\w])\*(?=[^\s*])([^*\n]+?)(?<=[^\s*])\*(?![*\w])")
_STRIKE = re.compile(r"~~(?=\S)(.+?)(?<=\S)~~")


def markdown_to_mrkdwn(text: str) -> str:
    """Convert the Markdown a model writes to Slack mrkdwn; code is left as it is."""
    kept: list[str] = []

    def keep(value: str) -> str:
        kept.append(value)
        return f"\x00{len(kept) - 1}\x00"

    text = _CODE.sub(lambda m: keep(_escape(m.group(0))), text)  # Slack decodes these in code too
    text = _SLACK_TOKEN.sub(lambda m: keep(m.group(0)), text)
    text = _LINK.sub(lambda m: keep(f"<{m.group(2)}|{_escape(m.group(1))}>"), text)
    text = _escape(text)
    text = _HEADING.sub(lambda m: keep(f"*{m.group(1)}*"), text)
    text = _BULLET.sub(lambda m: f"{m.group(1)}• ", text)
    text = _ITALIC.sub(lambda m: f"_{m.group(1)}_", text)
    text = _BOLD.sub(lambda m: keep(f"*{m.group(1) or m.group(2)}*"), text)
    text = _STRIKE.sub(lambda m: f"~{m.group(1)}~", text)
    while "\x00" in text:
        text = re.sub(r"\x00(\d+)\x00", lambda m: kept[int(m.group(1))], text)
    return text


def _escape(text: str) -> str:
    # Slack's three control characters; everything else is literal.
    return text.replace("&", "&amp;").replace("<", "&lt;").replace(">", "&gt;")


def split_message(text: str, limit: int = PART_CHARS) -> list[str]:
    """Cut text into parts of at most `limit` characters at paragraph, then line, then
    word boundaries; a code block cut in two is closed and reopened so both parts render."""
    if limit < 100:
        raise ValueError("limit must be at least 100 characters")
    parts: list[str] = []
    rest = text.strip()
    reopen = ""
    while rest:
        budget = limit - len(reopen) - len(_FENCE) - 1  # room to close a fence
        if len(reopen) + len(rest) <= limit:
            parts.append(reopen + rest)
            break
        cut = _cut_point(rest, budget)
        head, rest = rest[:cut].rstrip(), rest[cut:].lstrip("\n ")
        part = reopen + head
        if part.count(_FENCE) % 2 == 1:
            language = _open_fence_language(part)
            part += "\n" + _FENCE
            reopen = _FENCE + language + "\n"
        else:
            reopen = ""
        parts.append(part)
    return parts or [""]


def _cut_point(text: str, budget: int) -> int:
    window = text[:budget]
    for separator in ("\n\n", "\n", " "):
        at = window.rfind(separator)
        if at > budget // 2:
            return at
    return budget


def _open_fence_language(part: str) -> str:
    opening = part.rfind(_FENCE)
    match = re.match(r"```([\w+-]*)", part[opening:])
    return match.group(1) if match else ""
