"""Typed settings from the environment and an optional `.env` file.

Everything configurable lives here so that `validate()` can report every problem at once
and `log_configuration()` can show the effective settings with secrets masked.
"""

from __future__ import annotations

import re
from pathlib import Path
from typing import Any, Literal

import structlog
from pydantic import Field, SecretStr, ValidationError
from pydantic_settings import BaseSettings, SettingsConfigDict

from heron.errors import ConfigError

_SECRETISH = re.compile("TOKEN|KEY|SECRET|PASSWORD|URL")

_FIX_HINTS = {
    "database_url": "set DATABASE_URL=postgresql://user:password@host:5432/dbname, "
    "or unset it to use the embedded PostgreSQL",
    "slack_app_token": "SLACK_APP_TOKEN is the app-level token (xapp-...) from Basic Information",
    "slack_bot_token": "SLACK_BOT_TOKEN is the Bot User OAuth Token (xoxb-...) "
    "from OAuth & Permissions",
}


class Config(BaseSettings):
    """Heron's settings; field names are the environment variables (case-insensitive)."""

    model_config = SettingsConfigDict(
        env_file=".env", env_file_encoding="utf-8", extra="ignore", case_sensitive=False
    )

    database_url: str | None = Field(
        default=None, description="PostgreSQL URL; unset = embedded server in HERON_DATA_DIR"
    )
    heron_data_dir: Path = Field(
        default=Path(".heron"), description="Embedded database and local state"
    )
    heron_embedded_database: bool = Field(
        default=True,
        description="false: DATABASE_URL is required (Heron's container image sets this)",
    )

    slack_app_token: SecretStr | None = Field(
        default=None, description="App-level token (xapp-…): Socket Mode"
    )
    slack_bot_token: SecretStr | None = Field(
        default=None, description="Bot User OAuth Token (xoxb-…): required to connect Slack"
    )
    slack_signing_secret: SecretStr | None = Field(
        default=None, description="Signing secret: the Events API at POST /slack/events"
    )
    slack_api_url: str | None = Field(
        default=None,
        description="Slack Web API base URL (default https://slack.com/api/); the local "
        "workspace and the tests point it at Heron's Slack fake",
    )
    anthropic_api_key: SecretStr | None = Field(
        default=None, description="Claude API key; unset = retrieval-only answers"
    )
    anthropic_base_url: str | None = Field(
        default=None, description="Anthropic API base URL (a proxy, or the tests' fake)"
    )
    heron_model: str = Field(
        default="anthropic:claude-sonnet-5-5",
        description="Any pydantic-ai model string; anthropic:* needs ANTHROPIC_API_KEY",
    )
    heron_max_answer_tokens: int = Field(
        default=4096, ge=256, le=64_000, description="Longest answer the model may write"
    )
    heron_model_timeout_seconds: float = Field(
        default=120.0, gt=0, description="One model request; a timeout is retried by the queue"
    )
    heron_model_retries: int = Field(
        default=1, ge=0, le=10, description="Quick SDK retries before the queue's backoff"
    )
    heron_max_model_requests: int = Field(
        default=12, ge=1, le=200, description="Model calls one answer may make (tool loops)"
    )
    heron_max_tokens_per_answer: int = Field(
        default=300_000, ge=1000, description="Input + output tokens one answer may use in all"
    )
    heron_memory_tokens: int = Field(
        default=6000, ge=0, description="Thread history given to the model, in tokens"
    )
    heron_prompts_dir: Path | None = Field(
        default=None, description="Folder whose system.j2 / user.j2 replace the shipped ones"
    )
    heron_mcp_config: Path | None = Field(
        default=None, description="JSON file of extra MCP servers (Claude Desktop format)"
    )
    heron_questions_per_user_per_hour: int = Field(
        default=30, ge=0, description="Questions per person per hour sent to the model; 0 = off"
    )
    heron_daily_spend_limit_usd: float = Field(
        default=20.0, ge=0, description="Model spend per UTC day, estimated; 0 = no cap"
    )

    worker_pool_size: int = Field(
        default=5, ge=1, le=1000, description="Events one process handles at once"
    )
    event_visibility_timeout: float = Field(default=300.0, gt=0, description="Lease, seconds")
    max_retry_count: int = Field(
        default=3, ge=0, le=100, description="Retries before an event is failed for good"
    )
    retry_backoff_base_seconds: float = Field(
        default=10.0, ge=0, description="Backoff: base · 2^(n-1) seconds (10, 20, 40)"
    )
    heron_poll_interval: float = Field(
        default=1.0, gt=0, description="Safety-net poll; NOTIFY wakes workers at once"
    )
    heron_rescue_interval: float = Field(
        default=5.0, gt=0, description="How often expired leases are looked for, seconds"
    )
    heron_prefetch: int = Field(
        default=50,
        ge=0,
        le=1000,
        description="Most events a pool claims beyond its free slots (fast handlers only)",
    )
    heron_claim_batch_size: int = Field(
        default=50, ge=1, le=1000, description="Most events one claim statement takes"
    )
    heron_shutdown_grace_seconds: float = Field(
        default=30.0, ge=0, description="Time in-flight answers get to finish on Ctrl-C/SIGTERM"
    )
    heron_db_pool_size: int = Field(
        default=10, ge=1, description="Connections of heron run's shared pool (and the CLI's)"
    )
    heron_db_max_overflow: int = Field(
        default=20, ge=0, description="The CLI's SQLAlchemy pool overflow (seed API)"
    )

    heron_embedding_provider: Literal["auto", "local", "openai", "hashing"] = Field(
        default="auto",
        description="Docs search embeddings; auto = openai with OPENAI_API_KEY, else local",
    )
    openai_api_key: SecretStr | None = Field(
        default=None, description="OpenAI embeddings (text-embedding-3-small) for docs search"
    )
    github_token: SecretStr | None = Field(
        default=None, description="GitHub tools for the agent (`heron mcp github`)"
    )
    github_api_url: str = Field(
        default="https://api.github.com", description="GitHub Enterprise: https://HOST/api/v3"
    )
    github_repos: str | None = Field(
        default=None, description="Comma-separated orgs and owner/repo the GitHub tools may read"
    )
    openai_base_url: str | None = Field(
        default=None, description="OpenAI-compatible API base URL (a proxy, or the tests' fake)"
    )
    heron_mcp_token: SecretStr | None = Field(
        default=None, description="Bearer token MCP clients send over HTTP (required off loopback)"
    )
    heron_mcp_slack_user: str | None = Field(
        default=None,
        description="Slack user whose view `heron mcp slack` gives over stdio (as --as-user)",
    )
    heron_mcp_user_tokens: SecretStr | None = Field(
        default=None,
        description="Slack MCP over HTTP: 'token:U123,token2:U456', each token reads as its user",
    )

    heron_http_host: str = Field(
        default="127.0.0.1",
        description="Heron's HTTP server (Events API, health); 0.0.0.0 to expose",
    )
    heron_http_port: int = Field(default=8080, ge=0, le=65535, description="0 picks a free port")
    heron_local_workspace: Literal["auto", "on", "off"] = Field(
        default="auto",
        description="With no Slack tokens, serve a Slack-like local workspace at / (auto: "
        "only when HERON_HTTP_HOST is loopback; on: on any address; off: never)",
    )
    heron_dashboard_token: SecretStr | None = Field(
        default=None,
        description="Token for /dashboard (bearer or ?token= once); required for the dashboard "
        "when HERON_HTTP_HOST is not loopback, else it stays off",
    )

    heron_log_level: Literal["DEBUG", "INFO", "WARNING", "ERROR"] = Field(
        default="INFO", description="Lowest level logged"
    )
    heron_log_format: Literal["auto", "json", "console"] = Field(
        default="auto", description="auto: readable on a terminal, JSON lines otherwise"
    )
    logfire_token: SecretStr | None = Field(
        default=None,
        description="Pydantic Logfire write token: traces of model runs, SQL and HTTP calls; "
        "unset = off",
    )

    def __init__(self, **values: Any) -> None:
        try:
            super().__init__(**values)
        except ValidationError as error:
            raise ConfigError(_describe(error)) from None

    def validate_settings(self) -> None:
        """Raise one ConfigError naming every missing or invalid value; features decide."""
        problems: list[str] = []
        if self.database_url is None and not self.heron_embedded_database:
            problems.append(
                "DATABASE_URL is required: HERON_EMBEDDED_DATABASE=false (as in Heron's "
                "container image), and the embedded PostgreSQL is for a laptop, not a container"
            )
        if self.database_url is not None:
            from heron.database.url import UrlError, normalize_url

            try:
                normalize_url(self.database_url)
            except UrlError as error:
                problems.append(f"DATABASE_URL: {error}; {_FIX_HINTS['database_url']}")
        app = _secret(self.slack_app_token)
        bot = _secret(self.slack_bot_token)
        if app is not None and not app.startswith("xapp-"):
            problems.append(
                f"SLACK_APP_TOKEN must start with 'xapp-'; {_FIX_HINTS['slack_app_token']}"
            )
        if bot is not None and not bot.startswith("xoxb-"):
            problems.append(
                f"SLACK_BOT_TOKEN must start with 'xoxb-'; {_FIX_HINTS['slack_bot_token']}"
            )
        if (app is not None or self.slack_signing_secret is not None) and bot is None:
            problems.append(
                "SLACK_BOT_TOKEN is required when Slack is enabled "
                f"(SLACK_APP_TOKEN or SLACK_SIGNING_SECRET set); {_FIX_HINTS['slack_bot_token']}"
            )
        dashboard = (_secret(self.heron_dashboard_token) or "").strip()  # empty = unset
        if dashboard and len(dashboard) < 16:
            problems.append(
                "HERON_DASHBOARD_TOKEN must be at least 16 characters; make one with "
                "python3 -c 'import secrets; print(secrets.token_urlsafe(32))'"
            )
        if self.heron_embedding_provider == "openai" and self.openai_api_key is None:
            problems.append(
                "OPENAI_API_KEY is required when HERON_EMBEDDING_PROVIDER=openai; set it, "
                "or use HERON_EMBEDDING_PROVIDER=local (no key needed)"
            )
        if problems:
            raise ConfigError(problems)

    # The seed API calls it validate(); pydantic reserves the name on the class, so alias it.
    def validate(self) -> None:  # type: ignore[override]
        """Raise one ConfigError naming every missing or invalid value."""
        self.validate_settings()

    def masked(self) -> dict[str, Any]:
        """The effective settings, secrets replaced by a mask, safe to log or show."""
        shown: dict[str, Any] = {}
        for name, value in self:
            if isinstance(value, SecretStr):
                shown[name] = "********"
            elif name == "database_url" and value:
                from heron.database.url import redact_url

                shown[name] = redact_url(value)
            elif isinstance(value, Path):
                shown[name] = str(value)
            else:
                shown[name] = value
        return shown

    def log_configuration(self) -> None:
        """Log the effective settings with secrets masked."""
        structlog.get_logger("heron.config").info("configuration", **self.masked())


def _secret(value: SecretStr | None) -> str | None:
    return None if value is None else value.get_secret_value()


def _describe(error: ValidationError) -> list[str]:
    problems = []
    for item in error.errors():
        name = ".".join(str(part) for part in item["loc"]).upper() or "configuration"
        shown = "" if _SECRETISH.search(name) else f" (got {item.get('input')!r})"
        problems.append(f"{name}: {item['msg']}{shown}")
    return problems
