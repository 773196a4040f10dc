"""Heron: a Slack-native AI assistant that answers every question exactly once."""

from heron.config import Config
from heron.database import DatabaseConnection, get_session, init_db
from heron.database.models import Event, EventStatus
from heron.errors import ConfigError, HeronError, PermanentError
from heron.queue import EventProcessor, HandlerRegistry, WorkerPool, enqueue

__version__ = "0.1.0"

__all__ = [
    "Config",
    "ConfigError",
    "DatabaseConnection",
    "Event",
    "EventProcessor",
    "EventStatus",
    "HandlerRegistry",
    "HeronError",
    "PermanentError",
    "WorkerPool",
    "__version__",
    "enqueue",
    "get_session",
    "init_db",
]
