"""The record of every attempt to hand an event to the app, and waiting on its outcome.

Both transports write here: Socket Mode (sent, then acked by an envelope_id frame) and
the Events API (answered with an HTTP status). Tests read copies and wait on the log.
"""

from __future__ import annotations

import dataclasses
import threading
from dataclasses import dataclass
from enum import StrEnum
from typing import Any

from heron.testing.slack.waiting import Signal


class DeliveryMode(StrEnum):
    """Where user activity is delivered: Socket Mode, the Events API endpoint, or both."""

    SOCKET = "socket"
    EVENTS_API = "events_api"
    BOTH = "both"


class Transport(StrEnum):
    """How one delivery travelled."""

    SOCKET = "socket"
    EVENTS_API = "events_api"


@dataclass
class Delivery:
    """One attempt: a Socket Mode envelope, or one Events API POST."""

    event_id: str
    event_type: str
    transport: Transport
    retry_attempt: int
    retry_reason: str
    payload: dict[str, Any]
    envelope_id: str | None = None
    sent: bool = False
    acked: bool = False
    ack: dict[str, Any] | None = None
    status: int | None = None
    response: str | None = None


class DeliveryLog:
    """Thread-safe list of deliveries; every change wakes waiters."""

    def __init__(self) -> None:
        self.signal = Signal()
        self._lock = threading.Lock()
        self._items: list[Delivery] = []

    def add(self, delivery: Delivery) -> None:
        with self._lock:
            self._items.append(delivery)
        self.signal.notify()

    def update(self, delivery: Delivery, **changes: Any) -> None:
        """Change a live record (sent, acked, status) under the lock, then wake waiters."""
        with self._lock:
            for key, value in changes.items():
                setattr(delivery, key, value)
        self.signal.notify()

    def all(self) -> list[Delivery]:
        """Copies of every record, oldest first."""
        with self._lock:
            return [dataclasses.replace(d) for d in self._items]

    def by_envelope(self, envelope_id: str) -> Delivery | None:
        """The live record (for the server side to update)."""
        with self._lock:
            return next((d for d in self._items if d.envelope_id == envelope_id), None)

    def acked_envelope(self, envelope_id: str) -> Delivery | None:
        with self._lock:
            found = next((d for d in self._items if d.envelope_id == envelope_id and d.acked), None)
            return dataclasses.replace(found) if found else None

    def acked_event(self, event_id: str) -> Delivery | None:
        with self._lock:
            found = next((d for d in self._items if d.event_id == event_id and d.acked), None)
            return dataclasses.replace(found) if found else None
