"""slack_sdk configuration that Heron adds: Retry-After read correctly."""

from __future__ import annotations

from typing import Any

import pytest

from heron.slack.client import retry_after


@pytest.mark.parametrize(
    ("headers", "seconds"),
    [
        ({"Retry-After": "30"}, 30.0),
        ({"retry-after": ["12"]}, 12.0),
        ({}, 1.0),
        ({"Retry-After": "soon"}, 1.0),
    ],
)
def test_retry_after_reads_the_whole_header(headers: dict[str, Any], seconds: float) -> None:
    assert retry_after(headers) == seconds
