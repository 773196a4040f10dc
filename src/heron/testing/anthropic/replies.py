"""What the fake answers, and how an answer looks on the wire (Messages JSON or SSE).

Replies are immutable values a test scripts ahead of time (or a responder returns);
rendering them is pure, so the exact shapes the SDK parses live in one place.
"""

from __future__ import annotations

import json
import re
from collections.abc import Iterator, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any, Literal

StopReason = Literal["end_turn", "max_tokens", "stop_sequence", "refusal", "pause_turn"]

# Anthropic's error `type` for each status it uses (https://docs.anthropic.com/en/api/errors).
ERROR_TYPES = {
    400: "invalid_request_error",
    401: "authentication_error",
    402: "billing_error",
    403: "permission_error",
    404: "not_found_error",
    413: "request_too_large",
    429: "rate_limit_error",
    500: "api_error",
    504: "timeout_error",
    529: "overloaded_error",
}
_DEFAULT_MESSAGES = {
    "rate_limit_error": "Number of request tokens has exceeded your per-minute rate limit",
    "overloaded_error": "Overloaded",
    "api_error": "Internal server error",
}
_JSON_DELTA_SIZE = 16  # input_json_delta pieces: small, so clients must really assemble them


@dataclass(frozen=True, slots=True)
class Usage:
    """Token counts to report; `None`: estimated (input from the request, output from the reply)."""

    input_tokens: int | None = None
    output_tokens: int | None = None
    cache_creation_input_tokens: int = 0
    cache_read_input_tokens: int = 0


@dataclass(frozen=True, slots=True)
class ToolCall:
    """One `tool_use` block; `id` defaults to a fresh `toolu_fake_…` id."""

    name: str
    input: Mapping[str, Any] = field(default_factory=dict)
    id: str | None = None


@dataclass(frozen=True, slots=True)
class Answer:
    """A 200 reply: optional text (as streamed deltas), then tool calls.

    `delay`: seconds between streamed events, for tests that watch text arrive.
    """

    text_deltas: tuple[str, ...] = ()
    tool_calls: tuple[ToolCall, ...] = ()
    stop_reason: StopReason | Literal["tool_use"] = "end_turn"
    usage: Usage = Usage()
    delay: float = 0.0

    @property
    def text(self) -> str:
        """The whole text block ("" when the answer has none)."""
        return "".join(self.text_deltas)


@dataclass(frozen=True, slots=True)
class Failure:
    """An error in Anthropic's shape; `in_stream` sends it as an SSE `error` event after a 200."""

    status: int
    type: str
    message: str
    retry_after: float | None = None
    in_stream: bool = False

    def body(self, request_id: str) -> dict[str, Any]:
        """The JSON Anthropic sends, in an HTTP error body and in a stream's `error` event."""
        return {
            "type": "error",
            "error": {"type": self.type, "message": self.message},
            "request_id": request_id,
        }


@dataclass(frozen=True, slots=True)
class Hang:
    """Send nothing for `seconds` (client timeouts fire), then serve `then` or hang up."""

    seconds: float
    then: Reply | None = None


@dataclass(frozen=True, slots=True)
class Drop:
    """Close the connection without a response (the client sees a connection error)."""


Reply = Answer | Failure | Hang | Drop


def text(
    content: str | Sequence[str],
    *,
    stop_reason: StopReason = "end_turn",
    usage: Usage | None = None,
    delay: float = 0.0,
) -> Answer:
    """A text answer; a string streams word by word, a sequence streams as exactly those deltas."""
    deltas = _words(content) if isinstance(content, str) else tuple(content)
    return Answer(text_deltas=deltas, stop_reason=stop_reason, usage=usage or Usage(), delay=delay)


def tool_use(
    name: str,
    input: Mapping[str, Any] | None = None,
    id: str | None = None,
    *,
    text: str | None = None,
    usage: Usage | None = None,
    delay: float = 0.0,
) -> Answer:
    """An answer that calls one tool (stop_reason `tool_use`), optionally after some text."""
    return tool_calls(ToolCall(name, input or {}, id), text=text, usage=usage, delay=delay)


def tool_calls(
    *calls: ToolCall,
    text: str | None = None,
    usage: Usage | None = None,
    delay: float = 0.0,
) -> Answer:
    """An answer that calls several tools at once (parallel tool use)."""
    if not calls:
        raise ValueError("tool_calls() needs at least one ToolCall")
    return Answer(
        text_deltas=_words(text) if text else (),
        tool_calls=calls,
        stop_reason="tool_use",
        usage=usage or Usage(),
        delay=delay,
    )


def error(
    status: int,
    message: str | None = None,
    *,
    retry_after: float | None = None,
    error_type: str | None = None,
    in_stream: bool = False,
) -> Failure:
    """An API error: 429 rate_limit_error, 529 overloaded_error, 500 api_error, 400 ….

    `retry_after` becomes the `retry-after` header (seconds; the SDK honours fractions).
    `in_stream`: answer a streaming request 200 and send the error as an SSE `error`
    event after `message_start`, as Anthropic does when it overloads mid-answer (a
    non-streaming request still gets the plain HTTP error).
    """
    fallback = "api_error" if status >= 500 else "invalid_request_error"
    kind = error_type or ERROR_TYPES.get(status, fallback)
    wording = message or _DEFAULT_MESSAGES.get(kind, kind)
    return Failure(status, kind, wording, retry_after, in_stream)


def hang(seconds: float = 30.0, then: Reply | None = None) -> Hang:
    """Hold the request `seconds` before answering `then` (or closing): triggers client timeouts."""
    return Hang(seconds, then)


def drop() -> Drop:
    """Close the connection without answering."""
    return Drop()


def estimate_tokens(value: object) -> int:
    """A deterministic stand-in for a tokenizer: about four characters a token, at least one."""
    chars = value if isinstance(value, str) else json.dumps(value, sort_keys=True)
    return max(1, (len(chars) + 3) // 4)


# -- rendering -----------------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class Rendered:
    """An answer bound to one request: ids assigned, usage resolved."""

    answer: Answer
    message_id: str
    model: str
    tool_ids: tuple[str, ...]
    input_tokens: int
    output_tokens: int

    def usage(self, *, output_tokens: int | None = None) -> dict[str, Any]:
        """The `usage` object; streaming reports a provisional output count at the start."""
        usage = self.answer.usage
        return {
            "input_tokens": self.input_tokens,
            "output_tokens": self.output_tokens if output_tokens is None else output_tokens,
            "cache_creation_input_tokens": usage.cache_creation_input_tokens,
            "cache_read_input_tokens": usage.cache_read_input_tokens,
        }

    def content(self) -> list[dict[str, Any]]:
        """The content blocks, as the JSON response (and the streamed start events) carry them."""
        blocks: list[dict[str, Any]] = []
        if self.answer.text_deltas:
            blocks.append({"type": "text", "text": self.answer.text})
        for call, tool_id in zip(self.answer.tool_calls, self.tool_ids, strict=True):
            block = {
                "type": "tool_use",
                "id": tool_id,
                "name": call.name,
                "input": dict(call.input),
            }
            blocks.append(block)
        return blocks

    def message(self) -> dict[str, Any]:
        """The non-streaming response body."""
        return {
            **self._envelope(),
            "content": self.content(),
            "stop_reason": self.answer.stop_reason,
            "usage": self.usage(),
        }

    def opening(self) -> tuple[str, dict[str, Any]]:
        """The `message_start` event: an empty message, its stop reason still unknown."""
        start = {
            **self._envelope(),
            "content": [],
            "stop_reason": None,
            "usage": self.usage(output_tokens=1),
        }
        return "message_start", {"type": "message_start", "message": start}

    def events(self) -> Iterator[tuple[str, dict[str, Any]]]:
        """The SSE events of a streaming response, in Anthropic's order."""
        yield self.opening()
        yield "ping", {"type": "ping"}
        for index, block in enumerate(self.content()):
            if block["type"] == "text":
                opening: dict[str, Any] = {"type": "text", "text": ""}
                deltas = [{"type": "text_delta", "text": t} for t in self.answer.text_deltas]
            else:
                opening = {**block, "input": {}}
                arguments = json.dumps(block["input"])
                pieces = [""] + [
                    arguments[i : i + _JSON_DELTA_SIZE]
                    for i in range(0, len(arguments), _JSON_DELTA_SIZE)
                ]
                deltas = [{"type": "input_json_delta", "partial_json": piece} for piece in pieces]
            yield (
                "content_block_start",
                {
                    "type": "content_block_start",
                    "index": index,
                    "content_block": opening,
                },
            )
            for delta in deltas:
                event = {"type": "content_block_delta", "index": index, "delta": delta}
                yield "content_block_delta", event
            yield "content_block_stop", {"type": "content_block_stop", "index": index}
        yield (
            "message_delta",
            {
                "type": "message_delta",
                "delta": {"stop_reason": self.answer.stop_reason, "stop_sequence": None},
                "usage": self.usage(),
            },
        )
        yield "message_stop", {"type": "message_stop"}

    def _envelope(self) -> dict[str, Any]:
        return {
            "id": self.message_id,
            "type": "message",
            "role": "assistant",
            "model": self.model,
            "stop_sequence": None,
        }


def output_tokens(answer: Answer) -> int:
    """The scripted output count, or an estimate from the text and the tool calls."""
    if answer.usage.output_tokens is not None:
        return answer.usage.output_tokens
    total = estimate_tokens(answer.text) if answer.text else 0
    for call in answer.tool_calls:
        total += estimate_tokens(call.name) + estimate_tokens(dict(call.input))
    return max(1, total)


def sse(event: str, data: Mapping[str, Any]) -> bytes:
    """One server-sent event, framed as Anthropic frames it."""
    return f"event: {event}\ndata: {json.dumps(data, separators=(',', ':'))}\n\n".encode()


def _words(content: str) -> tuple[str, ...]:
    # Each word keeps the whitespace after it, so the deltas join back to `content` exactly.
    return tuple(re.findall(r"\s+(?=\S)|\S+\s*|\s+", content)) or (content,)
