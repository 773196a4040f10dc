"""Reconnect pacing for database outages: pure, so its shape is tested without a database."""

from __future__ import annotations

import random
from collections.abc import Iterator


def reconnect_delays(
    first: float = 0.1, cap: float = 5.0, jitter: float = 0.2, rng: random.Random | None = None
) -> Iterator[float]:
    """Delays that double from `first` up to `cap`, each spread by ±jitter so that many
    workers do not reconnect in lockstep after a PostgreSQL restart."""
    rng = rng or random.Random()
    delay = first
    while True:
        yield delay * (1 + rng.uniform(-jitter, jitter))
        delay = min(cap, delay * 2)
