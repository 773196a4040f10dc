"""The agent's prompts: Jinja2 templates shipped in the package, overridable file by file.

Templates are loaded and test-rendered at startup, so a broken override is a clear
startup error naming the file and line, not a failed event in the middle of the night.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import Any
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

import jinja2

from heron.errors import ConfigError

TEMPLATES = ("system.j2", "user.j2")


@dataclass(frozen=True, slots=True)
class PromptUser:
    id: str
    display_name: str
    real_name: str = ""
    timezone: str = "UTC"


@dataclass(frozen=True, slots=True)
class PromptChannel:
    id: str
    name: str
    is_dm: bool = False


@dataclass(frozen=True, slots=True)
class PromptMessage:
    author: str
    text: str
    time: datetime


@dataclass(frozen=True, slots=True)
class PromptTool:
    name: str
    description: str


@dataclass(frozen=True, slots=True)
class PromptContext:
    """Everything a template may use."""

    user: PromptUser
    channel: PromptChannel
    question: str
    bot_name: str = "heron"
    workspace_name: str = ""
    history: list[PromptMessage] = field(default_factory=list)
    tools: list[PromptTool] = field(default_factory=list)
    thread: bool = False
    now: datetime | None = None

    def variables(self) -> dict[str, Any]:
        now = self.now or datetime.now(UTC)
        return {
            "user": self.user,
            "channel": self.channel,
            "question": self.question,
            "bot": {"name": self.bot_name},
            "workspace": {"name": self.workspace_name},
            "history": self.history,
            "tools": self.tools,
            "thread": self.thread,
            "local_time": now.astimezone(_zone(self.user.timezone)),
        }


class Prompts:
    """The system and user prompt templates: the package's, or a directory's overrides."""

    def __init__(self, override_dir: Path | None = None) -> None:
        loaders: list[jinja2.BaseLoader] = [jinja2.PackageLoader("heron.agent", "prompts")]
        if override_dir is not None:
            if not override_dir.is_dir():
                raise ConfigError([f"HERON_PROMPTS_DIR: {override_dir} is not a directory"])
            loaders.insert(0, jinja2.FileSystemLoader(override_dir))
        # Prompts are plain text for a model, not HTML: nothing to escape.
        self.env = jinja2.Environment(
            loader=jinja2.ChoiceLoader(loaders),
            undefined=jinja2.StrictUndefined,
            autoescape=False,  # noqa: S701
            keep_trailing_newline=False,
        )
        self.templates = {name: self._load(name) for name in TEMPLATES}
        self.check()

    def system(self, context: PromptContext) -> str:
        return self._render("system.j2", context)

    def user(self, context: PromptContext) -> str:
        return self._render("user.j2", context)

    def check(self) -> None:
        """Render every template with sample values: a mistake fails here, at startup."""
        sample = PromptContext(
            user=PromptUser("U0SAMPLE", "Ada", "Ada Lovelace", "Europe/London"),
            channel=PromptChannel("C0SAMPLE", "general"),
            question="How do I run the migrations?",
            history=[PromptMessage("Ada", "Hello", datetime(2026, 1, 1, tzinfo=UTC))],
            tools=[PromptTool("search_docs", "Search the documentation")],
            thread=True,
        )
        for name in TEMPLATES:
            self._render(name, sample)

    def _load(self, name: str) -> jinja2.Template:
        try:
            return self.env.get_template(name)
        except jinja2.TemplateSyntaxError as error:
            raise ConfigError([f"prompt template {_where(error)}: {error.message}"]) from None
        except jinja2.TemplateNotFound:
            raise ConfigError([f"prompt template {name} not found"]) from None

    def _render(self, name: str, context: PromptContext) -> str:
        try:
            return self.templates[name].render(context.variables()).strip()
        except jinja2.TemplateError as error:
            raise ConfigError([f"prompt template {name}: {error}"]) from None


def _zone(name: str) -> ZoneInfo:
    try:
        return ZoneInfo(name)
    except (ZoneInfoNotFoundError, ValueError):
        return ZoneInfo("UTC")


def _where(error: jinja2.TemplateSyntaxError) -> str:
    return f"{error.filename or error.name}, line {error.lineno}"
