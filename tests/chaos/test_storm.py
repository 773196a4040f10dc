"""The short storm: 30 mentions into two `heron run` processes while two are SIGKILLed
and one is frozen mid-answer, PostgreSQL restarts once, Slack and the model fail now and
then.

`make chaos` runs the full one (tests/chaos/storm.py). HERON_CHAOS_SEED replays a storm:
the seed is in the report printed with a failure.
"""

from __future__ import annotations

import os
from pathlib import Path

import pytest

from tests.chaos.storm import StormPlan, run_storm

pytestmark = pytest.mark.slow

SEED = int(os.environ.get("HERON_CHAOS_SEED", "20261126"))


def test_every_mention_is_answered_exactly_once_through_the_storm(tmp_path: Path) -> None:
    report = run_storm(StormPlan.ci(SEED), tmp_path / "chaos.json", tmp_path / "logs")

    problems = report["problems"]
    assert report["duplicates"] == 0, problems
    assert report["lost"] == 0, problems
    assert report["wrong_answers"] == 0, problems
    assert report["answered"] == report["events"] == 30
    assert report["stray_messages"] == 0
    assert report["events_failed"] == 0, problems
    assert report["attempts_unrecorded"] == report["replies_unrecorded"] == 0, problems
    assert report["unexpected_exits"] == []
    assert report["hung_on_stop"] == []
    assert report["ok"]
    # The faults happened, and were felt: a storm in which they did nothing proves nothing.
    assert report["kills"] == 2
    assert report["events_held_by_killed"] > 0
    assert report["pauses"] == 1
    assert report["attempts"].get("lease_expired", 0) > 0
    assert report["postgres_restarts"] == 1
    assert report["slack_faults"] > 0
    assert report["model_faults"] > 0
    assert report["retries"] > 0
