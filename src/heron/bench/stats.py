"""Pure figures for the benchmarks: percentiles, rates, ratios and the targets they are held to."""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass
from enum import StrEnum


def percentile(samples: Sequence[float], q: float) -> float:
    """The q-th percentile (0..100) by linear interpolation between closest ranks.

    The same definition as numpy's default, so published numbers can be checked.
    """
    if not samples:
        raise ValueError("percentile of no samples")
    if not 0 <= q <= 100:
        raise ValueError(f"percentile must be within 0..100, got {q}")
    ordered = sorted(samples)
    rank = (len(ordered) - 1) * q / 100
    low = math.floor(rank)
    high = math.ceil(rank)
    return ordered[low] + (ordered[high] - ordered[low]) * (rank - low)


@dataclass(frozen=True, slots=True)
class LatencySummary:
    """Latencies of one run, in milliseconds."""

    count: int
    p50_ms: float
    p90_ms: float
    p99_ms: float
    max_ms: float
    mean_ms: float

    @classmethod
    def of_seconds(cls, samples: Sequence[float]) -> LatencySummary | None:
        """Summarise latencies given in seconds; None when there are none."""
        if not samples:
            return None
        ms = [s * 1000 for s in samples]
        return cls(
            count=len(ms),
            p50_ms=percentile(ms, 50),
            p90_ms=percentile(ms, 90),
            p99_ms=percentile(ms, 99),
            max_ms=max(ms),
            mean_ms=sum(ms) / len(ms),
        )


def rate(count: int, seconds: float) -> float:
    """Events per second; 0 for an empty or zero-length interval."""
    return count / seconds if seconds > 0 else 0.0


def ratio(heron: float | None, other: float | None) -> float | None:
    """Heron / other, or None when either figure is missing or other is zero."""
    if heron is None or other is None or other == 0:
        return None
    return heron / other


class TargetKind(StrEnum):
    """How a figure is held to its target."""

    AT_LEAST_TIMES_OTHER = "at_least_times_other"  # ratio Heron/other >= bound
    AT_MOST = "at_most"  # Heron's own figure <= bound


@dataclass(frozen=True, slots=True)
class Target:
    """A goal for one of Heron's figures, e.g. `>= 2x PGQueuer` or `<= 2 ms`."""

    kind: TargetKind
    bound: float
    unit: str = ""

    def describe(self, other_name: str) -> str:
        """The target as shown next to the numbers."""
        if self.kind is TargetKind.AT_LEAST_TIMES_OTHER:
            return f">= {self.bound:g}x {other_name}"
        return f"<= {self.bound:g} {self.unit}".rstrip()

    def met(self, heron: float | None, other: float | None) -> bool | None:
        """True/False, or None when the figures needed to judge are missing."""
        if self.kind is TargetKind.AT_LEAST_TIMES_OTHER:
            r = ratio(heron, other)
            return None if r is None else r >= self.bound
        return None if heron is None else heron <= self.bound


@dataclass(frozen=True, slots=True)
class Comparison:
    """One line of the result table: a metric for both systems, their ratio and the target."""

    metric: str
    unit: str
    heron: float | None
    other: float | None
    higher_is_better: bool
    target: Target | None = None
    note: str = ""

    @property
    def ratio(self) -> float | None:
        """Heron / other (above 1 is better for throughput, below 1 for latency)."""
        return ratio(self.heron, self.other)

    @property
    def met(self) -> bool | None:
        """Whether Heron meets the target (None: no target, or not measurable here)."""
        return None if self.target is None else self.target.met(self.heron, self.other)

    def as_dict(self, other_name: str) -> dict[str, object]:
        """The JSON form, target spelt out."""
        return {
            "metric": self.metric,
            "unit": self.unit,
            "heron": self.heron,
            other_name.lower(): self.other,
            "ratio_heron_over_" + other_name.lower(): self.ratio,
            "higher_is_better": self.higher_is_better,
            "target": None if self.target is None else self.target.describe(other_name),
            "target_met": self.met,
            "note": self.note or None,
        }
