"""The model-backed answer: pydantic-ai with Claude, Heron's prompts, thread memory and
MCP tools, within per-run limits, with its usage recorded.

Errors are sorted for the queue: a model that is busy, rate-limited, slow or unreachable
raises ModelUnavailable (the event is retried with backoff); anything else the model
refuses raises ModelRefused (retrying would not help). The question handler decides what
the user is told.
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import AsyncIterator, Awaitable, Callable, Sequence
from dataclasses import dataclass
from typing import Any

import structlog
from pydantic_ai import Agent
from pydantic_ai.exceptions import (
    ModelAPIError,
    ModelConnectionError,
    ModelHTTPError,
    ModelTimeoutError,
    UsageLimitExceeded,
)
from pydantic_ai.models import Model
from pydantic_ai.settings import ModelSettings
from pydantic_ai.toolsets import AbstractToolset
from pydantic_ai.usage import UsageLimits

from heron.agent.memory import Memory
from heron.agent.prompts import PromptChannel, PromptContext, Prompts, PromptTool, PromptUser
from heron.agent.usage import Ledger, RunUsage
from heron.config import Config
from heron.errors import ConfigError, HeronError, ModelRefused, ModelUnavailable

log = structlog.get_logger(__name__)

# Statuses worth retrying later: rate limited, overloaded, server trouble, gateway timeouts.
_TRANSIENT_STATUS = {408, 409, 429, 500, 502, 503, 504, 529}


@dataclass(frozen=True, slots=True)
class Asker:
    """Who asks and where, as the archive knows them."""

    user: PromptUser
    channel: PromptChannel


@dataclass(frozen=True, slots=True)
class Toolbox:
    """The toolsets for one run (already bound to the asker) and what they offer."""

    toolsets: Sequence[AbstractToolset[str]]  # deps: the asking user's Slack id
    tools: list[PromptTool]


ToolboxFactory = Callable[[], Toolbox]
AskerLookup = Callable[[dict[str, Any]], Awaitable[Asker]]


def build_model(config: Config) -> Model | str:
    """The configured model: Claude through the anthropic SDK (ANTHROPIC_BASE_URL honoured),
    or any pydantic-ai model string (e.g. an OpenAI-compatible local server)."""
    name = config.heron_model
    if not name.startswith("anthropic:"):
        return name
    from pydantic_ai.models.anthropic import AnthropicModel
    from pydantic_ai.providers.anthropic import AnthropicProvider

    if config.anthropic_api_key is None:
        raise ConfigError(["ANTHROPIC_API_KEY is required for HERON_MODEL=" + name])
    provider = AnthropicProvider(
        api_key=config.anthropic_api_key.get_secret_value(), base_url=config.anthropic_base_url
    )
    return AnthropicModel(name.split(":", 1)[1], provider=provider)


def model_configured(config: Config) -> bool:
    """False means retrieval-only mode: Claude chosen but no key to call it with."""
    return not config.heron_model.startswith("anthropic:") or config.anthropic_api_key is not None


class ModelAnswerer:
    """Answers one question payload in Markdown."""

    def __init__(
        self,
        config: Config,
        model: Model | str,
        prompts: Prompts,
        memory: Memory,
        ledger: Ledger,
        toolbox: ToolboxFactory,
        asker: AskerLookup,
        *,
        bot_name: str,
        workspace_name: str,
    ) -> None:
        self.config = config
        self.model = model
        self.prompts = prompts
        self.memory = memory
        self.ledger = ledger
        self.toolbox = toolbox
        self.asker = asker
        self.bot_name = bot_name
        self.workspace_name = workspace_name
        self.model_name = config.heron_model
        self.settings = ModelSettings(
            max_tokens=config.heron_max_answer_tokens,
            timeout=config.heron_model_timeout_seconds,
            max_retries=config.heron_model_retries,
        )
        # One agent for every question: instructions and tools come with each run.
        self.agent: Agent[str, str] = Agent(model, deps_type=str, model_settings=self.settings)
        self.limits = UsageLimits(
            request_limit=config.heron_max_model_requests,
            total_tokens_limit=config.heron_max_tokens_per_answer,
        )

    async def __call__(self, question: dict[str, Any]) -> str:
        """The whole answer at once (see stream() for the same, as it is written)."""
        return "".join([delta async for delta in self.stream(question)])

    async def stream(self, question: dict[str, Any]) -> AsyncIterator[str]:
        """The answer in Markdown, delta by delta as the model writes it."""
        event_id = question.get("heron_event_id")
        user_id, channel_id = str(question["user"]), str(question["channel"])
        # Independent reads, side by side: each is a database round trip on the answer's path.
        refusal, (instructions, prompt, toolsets) = await asyncio.gather(
            self.ledger.refusal(user_id, event_id), self._prepare(question)
        )
        if refusal is not None:
            usage = RunUsage(self.model_name, "limited")
            await self.ledger.record(
                usage, event_id=event_id, user_id=user_id, channel_id=channel_id
            )
            yield refusal
            return
        started = time.monotonic()
        try:
            async with self.agent.run_stream(
                prompt,
                instructions=instructions,
                toolsets=toolsets,
                deps=user_id,
                usage_limits=self.limits,
            ) as run:
                async for delta in run.stream_text(delta=True, debounce_by=None):
                    yield delta
                spent = run.usage
        except UsageLimitExceeded as error:
            await self._record_failure(started, "limited", error, event_id, user_id, channel_id)
            yield (
                "\n\nThis question needed more work than one answer is allowed here "
                f"({error}). Could you narrow it down?"
            )
            return
        except ModelAPIError as error:
            await self._record_failure(started, "failed", error, event_id, user_id, channel_id)
            raise classify(error) from error
        await self.ledger.record(
            RunUsage(
                model=self.model_name,
                outcome="answered",
                input_tokens=spent.input_tokens,
                output_tokens=spent.output_tokens,
                cache_read_tokens=spent.cache_read_tokens,
                cache_write_tokens=spent.cache_write_tokens,
                requests=spent.requests,
                tool_calls=spent.tool_calls,
                duration_ms=int((time.monotonic() - started) * 1000),
                priced=spent.cost,
            ),
            event_id=event_id,
            user_id=user_id,
            channel_id=channel_id,
        )

    async def _prepare(
        self, question: dict[str, Any]
    ) -> tuple[str, str, list[AbstractToolset[str]]]:
        """The instructions, the user prompt and the tools for this question."""
        asker, history = await asyncio.gather(
            self.asker(question), self.memory.history(question, self.config.heron_memory_tokens)
        )
        toolbox = self.toolbox()
        context = PromptContext(
            user=asker.user,
            channel=asker.channel,
            question=str(question.get("text") or ""),
            bot_name=self.bot_name,
            workspace_name=self.workspace_name,
            history=history,
            tools=toolbox.tools,
            thread=str(question.get("thread_ts") or question["ts"]) != str(question["ts"]),
        )
        return self.prompts.system(context), self.prompts.user(context), list(toolbox.toolsets)

    async def _record_failure(
        self,
        started: float,
        outcome: str,
        error: Exception,
        event_id: int | None,
        user_id: str,
        channel_id: str,
    ) -> None:
        usage = RunUsage(
            self.model_name,
            outcome,
            duration_ms=int((time.monotonic() - started) * 1000),
            error=f"{type(error).__name__}: {error}"[:500],
        )
        await self.ledger.record(usage, event_id=event_id, user_id=user_id, channel_id=channel_id)


def classify(error: ModelAPIError) -> HeronError:
    """ModelUnavailable when waiting may help, else ModelRefused."""
    if isinstance(error, ModelTimeoutError | ModelConnectionError):
        return ModelUnavailable(f"the model did not answer: {error}")
    if isinstance(error, ModelHTTPError) and error.status_code not in _TRANSIENT_STATUS:
        return ModelRefused(f"the model refused the request (HTTP {error.status_code}): {error}")
    return ModelUnavailable(f"the model is unavailable: {error}")
