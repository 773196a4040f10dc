"""A protocol-level Anthropic Messages API for tests and the local demo: the real `anthropic`
SDK and pydantic-ai talk to it over loopback, in JSON and in SSE streaming.

    with FakeAnthropic() as fake:
        fake.script(tool_use("search_docs", {"query": "lease"}), text("Leases last 300 s."))
        client = AsyncAnthropic(base_url=fake.base_url, api_key=fake.api_key)
        ...
        assert fake.last_request.tool_results[0].content == "..."
"""

from heron.testing.anthropic.fake import UNSCRIPTED, FakeAnthropic, Responder
from heron.testing.anthropic.recording import RecordedRequest, ToolResult
from heron.testing.anthropic.replies import (
    Answer,
    Drop,
    Failure,
    Hang,
    Reply,
    ToolCall,
    Usage,
    drop,
    error,
    estimate_tokens,
    hang,
    text,
    tool_calls,
    tool_use,
)

__all__ = [
    "UNSCRIPTED",
    "Answer",
    "Drop",
    "Failure",
    "FakeAnthropic",
    "Hang",
    "RecordedRequest",
    "Reply",
    "Responder",
    "ToolCall",
    "ToolResult",
    "Usage",
    "drop",
    "error",
    "estimate_tokens",
    "hang",
    "text",
    "tool_calls",
    "tool_use",
]
