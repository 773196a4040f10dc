from __future__ import annotations

import pytest

from heron.database.embedded import shared_buffers_for

GB = 2**30


@pytest.mark.parametrize(
    ("memory", "expected"),
    [(256 * 2**20, "128MB"), (2 * GB, "512MB"), (3 * GB, "768MB"), (24 * GB, "1024MB")],
)
def test_shared_buffers_are_a_quarter_of_memory_within_bounds(memory: int, expected: str) -> None:
    assert shared_buffers_for(memory) == expected
