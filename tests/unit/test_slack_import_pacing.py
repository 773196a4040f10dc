"""The pure parts of the Slack import: pacing, estimates, choosing conversations, parsing."""

from __future__ import annotations

import asyncio

import pytest

from heron.errors import HeronError
from heron.slack.backfill import BackfillPlan, Skipped, select_conversations, thread_parents
from heron.slack.events import message_row
from heron.slack.export_import import ExportError, parse_day
from heron.slack.import_cli import pace_from_options, plan_line
from heron.slack.pacing import (
    NON_MARKETPLACE,
    Pace,
    Pacer,
    VirtualClock,
    estimate_seconds,
    format_duration,
)


async def test_a_pacer_spaces_calls_evenly_from_the_first_one() -> None:
    clock = VirtualClock(start=1000.0)
    pacer = Pacer(60.0, clock)
    sent = []
    for _ in range(4):
        await pacer.wait()
        sent.append(clock.now())
    assert sent == [1000.0, 1060.0, 1120.0, 1180.0]


async def test_a_pacer_does_not_wait_when_calls_are_slower_than_its_pace() -> None:
    clock = VirtualClock(start=0.0)
    pacer = Pacer(1.0, clock)
    await pacer.wait()
    clock.time += 5.0  # the caller took its time
    await pacer.wait()
    assert clock.slept == 0.0
    assert pacer.delay() == pytest.approx(1.0)


async def test_concurrent_callers_of_one_pacer_get_separate_slots() -> None:
    clock = VirtualClock(start=0.0)
    pacer = Pacer(10.0, clock)
    sent: list[float] = []

    async def call() -> None:
        await pacer.wait()
        sent.append(clock.now())

    await asyncio.gather(*(call() for _ in range(3)))
    assert sent == [0.0, 10.0, 20.0]


async def test_hold_pushes_the_next_call_back_by_retry_after() -> None:
    clock = VirtualClock(start=0.0)
    pacer = Pacer(1.0, clock)
    await pacer.wait()
    pacer.hold(30.0)
    await pacer.wait()
    assert clock.now() == 30.0
    pacer.hold(0.5)  # never earlier than the pace allows
    assert pacer.delay() == pytest.approx(1.0)


def test_pace_checks_its_figures_and_describes_itself() -> None:
    assert Pace().interval == pytest.approx(1.2)  # Tier 3: 50 a minute
    assert NON_MARKETPLACE.interval == 60.0
    assert NON_MARKETPLACE.describe() == "1 request/min per method, pages of 15"
    with pytest.raises(ValueError, match="positive"):
        Pace(requests_per_minute=0)
    with pytest.raises(ValueError, match="page size"):
        Pace(page_size=1000)


def test_options_choose_the_pace() -> None:
    assert pace_from_options(None, None, non_marketplace=False) == Pace(50, 200)
    assert pace_from_options(None, None, non_marketplace=True) == Pace(1, 15)
    assert pace_from_options(2, None, non_marketplace=True) == Pace(2, 15)
    assert pace_from_options(None, 100, non_marketplace=False) == Pace(50, 100)
    with pytest.raises(HeronError, match="page size"):
        pace_from_options(None, 0, non_marketplace=False)


def test_the_estimate_is_the_busiest_method_at_its_pace() -> None:
    assert estimate_seconds({}, 60.0) == 0.0
    assert estimate_seconds({"history": 1}, 60.0) == 0.0  # the first call goes at once
    assert estimate_seconds({"history": 30, "replies": 100}, 60.0) == 99 * 60.0
    plan = BackfillPlan(("C1", "C2"), (), users=3, histories_left=2, threads_left=0,
                        pace=NON_MARKETPLACE)  # fmt: skip
    assert plan.seconds_at_least == 60.0


@pytest.mark.parametrize(
    ("seconds", "shown"),
    [
        (0, "0 s"),
        (89.2, "90 s"),
        (600, "10 min"),
        (7200, "2 h"),
        (7260, "2 h 1 min"),
        (3 * 86400 + 3600, "3 d 1 h"),
    ],
)
def test_durations_read_naturally(seconds: float, shown: str) -> None:
    assert format_duration(seconds) == shown


def test_the_plan_line_gives_a_lower_bound_and_the_pace() -> None:
    skipped = (Skipped("C9", "random", "the bot is not a member"),)
    plan = BackfillPlan(tuple(f"C{n}" for n in range(31)), skipped, users=5, histories_left=31,
                        threads_left=4, pace=NON_MARKETPLACE)  # fmt: skip
    line = plan_line(plan)
    assert line.startswith("31 conversations (1 skipped): 31 histories and 4 threads")
    assert "1 request/min per method, pages of 15" in line
    assert "at least 30 min" in line
    done = BackfillPlan(("C1",), (), users=1, histories_left=0, threads_left=0, pace=Pace())
    assert plan_line(done) == "1 conversation: all imported already"


def test_only_conversations_the_bot_is_in_are_read() -> None:
    listed = [
        {"id": "C1", "name": "eng", "is_member": True},
        {"id": "C2", "name": "random", "is_member": False},
        {"id": "D1", "is_im": True, "user": "U1"},  # DMs carry no is_member: always its own
        {"id": "G1", "name": "secret", "is_private": True, "is_member": True},
    ]
    chosen, skipped = select_conversations(listed)
    assert [c["id"] for c in chosen] == ["C1", "D1", "G1"]
    assert [(s.id, s.name) for s in skipped] == [("C2", "random")]
    assert "not a member" in skipped[0].reason


def test_conversations_can_be_chosen_by_id_or_name() -> None:
    listed = [{"id": "C1", "name": "eng", "is_member": True},
              {"id": "C2", "name": "ops", "is_member": True}]  # fmt: skip
    chosen, skipped = select_conversations(listed, ["#ops", "C1", "nope"])
    assert [c["id"] for c in chosen] == ["C1", "C2"]
    assert [s.id for s in skipped] == ["nope"]


def test_thread_parents_are_messages_with_replies() -> None:
    rows = [
        message_row("C1", {"ts": "1.000001", "text": "plain"}),
        message_row("C1", {"ts": "2.000001", "thread_ts": "2.000001", "reply_count": 2}),
        message_row(
            "C1", {"ts": "3.000001", "thread_ts": "2.000001", "subtype": "thread_broadcast"}
        ),
        message_row("C1", {"ts": "4.000001", "thread_ts": "4.000001"}),  # replies all deleted
    ]
    assert thread_parents(rows) == ["2.000001"]


def test_unusable_export_messages_are_counted_not_fatal() -> None:
    day = [{"ts": "1700000000.000100", "text": "fine", "user": "U1"}, {"text": "no ts"},
           "not a message", {"ts": "1700000001.000100", "text": "x" * 60_000}]  # fmt: skip
    rows, bad = parse_day("C1", day, "eng/2023-11-14.json")
    assert [r.text for r in rows] == ["fine"]
    assert bad == 3
    with pytest.raises(ExportError, match="not a JSON list"):
        parse_day("C1", {"oops": 1}, "eng/2023-11-14.json")
