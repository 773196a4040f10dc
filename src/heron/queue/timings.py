"""Latency histograms kept by the worker pool (pure; /metrics turns them into Prometheus)."""

from __future__ import annotations

import bisect
from dataclasses import dataclass, field

# Seconds: from milliseconds (claims, fast handlers) to minutes (model answers).
BUCKETS = (0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0,
           30.0, 60.0, 120.0, 300.0)  # fmt: skip


@dataclass(slots=True)
class Histogram:
    """Cumulative-ready counts per upper bound, plus the sum; read from other threads."""

    bounds: tuple[float, ...] = BUCKETS
    counts: list[int] = field(default_factory=lambda: [0] * (len(BUCKETS) + 1))
    total: float = 0.0

    def observe(self, seconds: float) -> None:
        self.counts[bisect.bisect_left(self.bounds, seconds)] += 1
        self.total += seconds

    def cumulative(self) -> list[tuple[str, int]]:
        """(upper bound, observations at or below it) pairs, ending with +Inf."""
        running, pairs = 0, []
        for bound, count in zip((*self.bounds, float("inf")), self.counts, strict=True):
            running += count
            pairs.append(("+Inf" if bound == float("inf") else repr(bound), running))
        return pairs
