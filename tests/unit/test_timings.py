"""The pool's latency histograms: buckets as Prometheus expects them."""

from __future__ import annotations

from heron.queue.timings import BUCKETS, Histogram


def test_observations_land_in_cumulative_buckets() -> None:
    histogram = Histogram()
    for seconds in (0.0005, 0.004, 0.004, 7.0, 1000.0):
        histogram.observe(seconds)
    pairs = dict(histogram.cumulative())
    assert pairs["0.001"] == 1
    assert pairs["0.005"] == 3
    assert pairs["5.0"] == 3
    assert pairs["10.0"] == 4
    assert pairs["+Inf"] == 5
    assert len(pairs) == len(BUCKETS) + 1
    assert histogram.total == 0.0005 + 0.008 + 7.0 + 1000.0
