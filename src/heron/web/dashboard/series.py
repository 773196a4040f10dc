"""Pure shaping of what the overview reads: the queue's depth minute by minute, and
percentiles estimated from the worker pool's latency histograms."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any

from heron.queue.timings import Histogram

QUANTILES = (0.5, 0.95, 0.99)
# The events still to be handled: waiting (backing off included) or running.
OUTSTANDING = ("pending", "processing")


def with_depth(minutes: Sequence[Mapping[str, Any]], depth_now: int) -> list[dict[str, Any]]:
    """Each minute's row plus `depth`, the outstanding events at the end of that minute.

    Worked back from the depth now: before a minute, the queue held what it holds at its
    end, less what was enqueued during it, plus what left it (completed or failed for
    good). Replays are not in the history, so a minute before one may read slightly high;
    depth never reads below zero.
    """
    rows = [dict(row) for row in minutes]
    depth = depth_now
    for row in reversed(rows):
        row["depth"] = max(depth, 0)
        depth = depth - int(row["enqueued"]) + int(row["left_queue"])
    return rows


def outstanding(queue: Mapping[str, int]) -> int:
    """Pending plus processing, from counts by status."""
    return sum(int(queue.get(status, 0)) for status in OUTSTANDING)


def quantile(histogram: Histogram, q: float) -> float | None:
    """The q-quantile in seconds, interpolated within its bucket; None without samples.

    A quantile that falls beyond the last bound reads as that bound (a lower bound).
    """
    total = sum(histogram.counts)
    if total == 0:
        return None
    rank = q * total
    seen = 0
    lower = 0.0
    for bound, count in zip(histogram.bounds, histogram.counts, strict=False):
        if count and seen + count >= rank:
            return lower + (bound - lower) * (rank - seen) / count
        seen += count
        lower = bound
    return histogram.bounds[-1]


def percentiles(histogram: Histogram) -> dict[str, Any]:
    """p50, p95 and p99 of a histogram, with its sample count."""
    shown: dict[str, Any] = {f"p{round(q * 100)}": quantile(histogram, q) for q in QUANTILES}
    shown["count"] = sum(histogram.counts)
    return shown


def from_array(values: Sequence[float] | None, count: int) -> dict[str, Any]:
    """p50, p95 and p99 from PostgreSQL's percentile_cont(ARRAY[...]), with the count."""
    shown: dict[str, Any] = {
        f"p{round(q * 100)}": (float(values[i]) if values else None)
        for i, q in enumerate(QUANTILES)
    }
    shown["count"] = count
    return shown
