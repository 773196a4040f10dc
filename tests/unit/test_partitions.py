from __future__ import annotations

import pytest

from heron.slack.partitions import statistics_stale


@pytest.mark.parametrize(
    ("live", "analyzed", "stale"),
    [
        (0, -1, False),  # an empty archive never analyzed: nothing to learn
        (1, -1, True),  # never analyzed
        (50, 0, False),
        (51, 0, True),
        (1150, 1000, False),  # 50 + 10%
        (1151, 1000, True),
        (10, 1000, False),  # fewer rows (compressed chunks) is not growth
    ],
)
def test_statistics_are_stale_after_50_rows_and_a_tenth_more(
    live: int, analyzed: int, stale: bool
) -> None:
    assert statistics_stale(live, analyzed) is stale
