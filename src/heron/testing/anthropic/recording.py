"""What the fake received: each request as the client sent it, with readers for what tests check.

The readers understand both ways clients send a system prompt (the top-level `system`,
as a string or text blocks, and `{"role": "system"}` entries newer pydantic-ai puts in
`messages`) and both shapes of a tool result's content (a string or blocks).
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

from heron.testing.anthropic.replies import estimate_tokens

REDACTED = "[redacted]"
CREDENTIAL_HEADERS = frozenset({"x-api-key", "authorization"})


@dataclass(frozen=True, slots=True)
class ToolResult:
    """A `tool_result` block the client sent back: which call it answers and its text."""

    tool_use_id: str
    content: str
    is_error: bool = False


@dataclass(frozen=True, slots=True)
class RecordedRequest:
    """One request: path, lowercased headers (credentials redacted), JSON body, key accepted."""

    path: str
    headers: Mapping[str, str]
    body: Mapping[str, Any]
    authorized: bool

    @property
    def model(self) -> str:
        """The `model` the client asked for."""
        return str(self.body.get("model", ""))

    @property
    def stream(self) -> bool:
        """Whether the client asked for server-sent events."""
        return self.body.get("stream") is True

    @property
    def max_tokens(self) -> int | None:
        """The client's `max_tokens` (None when it sent none, e.g. on count_tokens)."""
        value = self.body.get("max_tokens")
        return value if isinstance(value, int) else None

    @property
    def messages(self) -> list[dict[str, Any]]:
        """The `messages` list as sent."""
        value = self.body.get("messages")
        return list(value) if isinstance(value, list) else []

    @property
    def system_prompt(self) -> str:
        """All system text: the `system` parameter, then system entries, joined by blank lines."""
        parts = [_text_of(self.body.get("system"))]
        parts += [_text_of(m.get("content")) for m in self.messages if m.get("role") == "system"]
        return "\n\n".join(part for part in parts if part)

    @property
    def tool_names(self) -> list[str]:
        """The names of the tools offered to the model, in order."""
        tools = self.body.get("tools")
        if not isinstance(tools, list):
            return []
        return [str(tool["name"]) for tool in tools if isinstance(tool, dict) and "name" in tool]

    @property
    def tool_results(self) -> list[ToolResult]:
        """Every `tool_result` block in the messages, oldest first."""
        return [
            ToolResult(
                tool_use_id=str(block.get("tool_use_id", "")),
                content=_text_of(block.get("content")),
                is_error=block.get("is_error") is True,
            )
            for block in self._blocks()
            if block.get("type") == "tool_result"
        ]

    @property
    def tool_uses(self) -> list[dict[str, Any]]:
        """Every `tool_use` block the client replayed from earlier assistant turns."""
        return [block for block in self._blocks() if block.get("type") == "tool_use"]

    @property
    def last_user_text(self) -> str:
        """The text of the last user message that has any (tool results are not text)."""
        for message in reversed(self.messages):
            if message.get("role") == "user" and (found := _text_of(message.get("content"))):
                return found
        return ""

    @property
    def input_tokens(self) -> int:
        """The fake's estimate of the input tokens (what usage reports unless scripted)."""
        sized = {key: self.body.get(key) for key in ("system", "messages", "tools")}
        return estimate_tokens(sized)

    def _blocks(self) -> list[dict[str, Any]]:
        return [
            block
            for message in self.messages
            if isinstance(message.get("content"), list)
            for block in message["content"]
            if isinstance(block, dict)
        ]


def redact(headers: Mapping[str, str]) -> dict[str, str]:
    """Headers lowercased, with the credentials replaced so recordings are safe to print."""
    return {
        name.lower(): REDACTED if name.lower() in CREDENTIAL_HEADERS else value
        for name, value in headers.items()
    }


def _text_of(content: object) -> str:
    # A string, or text blocks (tool results may also hold images: those have no text).
    if isinstance(content, str):
        return content
    if isinstance(content, list):
        return "".join(
            str(block.get("text", ""))
            for block in content
            if isinstance(block, dict) and block.get("type") == "text"
        )
    return ""
