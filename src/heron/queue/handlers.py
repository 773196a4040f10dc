"""Which function handles which event type: the process_func that `heron run` gives the pool."""

from __future__ import annotations

import inspect
from collections.abc import Awaitable, Callable
from typing import Any

from heron.database.models import Event
from heron.errors import PermanentError

Handler = Callable[[Event], Awaitable[Any]] | Callable[[Event], Any]


class HandlerRegistry:
    """Maps event_type to a handler; unknown types fail for good (retrying cannot help)."""

    def __init__(self) -> None:
        self._handlers: dict[str, Handler] = {}

    def register(self, event_type: str, handler: Handler) -> None:
        if event_type in self._handlers:
            raise ValueError(f"a handler for {event_type!r} is already registered")
        self._handlers[event_type] = handler

    def handler(self, event_type: str) -> Callable[[Handler], Handler]:
        """Decorator form of register()."""

        def decorate(func: Handler) -> Handler:
            self.register(event_type, func)
            return func

        return decorate

    @property
    def event_types(self) -> list[str]:
        return sorted(self._handlers)

    async def __call__(self, event: Event) -> Any:
        handler = self._handlers.get(event.event_type)
        if handler is None:
            known = ", ".join(self.event_types) or "none"
            raise PermanentError(f"no handler for event type {event.event_type!r} (known: {known})")
        result = handler(event)
        if inspect.isawaitable(result):
            return await result
        return result


def default_registry() -> HandlerRegistry:
    """The handlers `heron run` starts with; the Slack and agent parts add theirs."""
    registry = HandlerRegistry()

    async def noop(event: Event) -> None:
        """Completes at once: lets you check the queue end to end (`heron events ...`)."""

    registry.register("noop", noop)
    return registry
