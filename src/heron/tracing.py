"""Optional Pydantic Logfire tracing: on with LOGFIRE_TOKEN; without it nothing is
configured and nothing is sent (Logfire stays an optional extra: heron[logfire])."""

from __future__ import annotations

import importlib.util

import structlog

from heron import __version__
from heron.config import Config
from heron.errors import ConfigError

log = structlog.get_logger(__name__)

# The OpenTelemetry instrumentations Heron turns on, by what they trace.
_NEEDS = ("logfire", "opentelemetry.instrumentation.psycopg")


def configure_tracing(config: Config) -> bool:
    """Send spans for model runs (pydantic-ai), SQL (psycopg) and outgoing HTTP (aiohttp,
    which slack_sdk uses) to Logfire. Returns whether tracing is on. Call before any
    database connection opens: psycopg is instrumented at connect time."""
    if config.logfire_token is None:
        return False
    missing = [name for name in _NEEDS if importlib.util.find_spec(name) is None]
    if missing:
        raise ConfigError(
            [
                "LOGFIRE_TOKEN is set but Logfire is not installed: "
                "pip install 'heron[logfire]' (or unset LOGFIRE_TOKEN)"
            ]
        )
    import logfire

    logfire.configure(
        token=config.logfire_token.get_secret_value(),
        send_to_logfire=True,
        service_name="heron",
        service_version=__version__,
        console=False,  # structlog owns the terminal
        inspect_arguments=False,
    )
    logfire.instrument_pydantic_ai()
    logfire.instrument_psycopg("psycopg")
    logfire.instrument_aiohttp_client()
    log.info("logfire tracing on", service="heron")
    return True


def instrument_http_app(app: object) -> None:
    """Trace requests to Heron's own HTTP server, when tracing is on."""
    import logfire

    logfire.instrument_starlette(app)  # type: ignore[arg-type]


def flush_tracing() -> None:
    """Send what is buffered before the process exits."""
    import logfire

    logfire.force_flush()
