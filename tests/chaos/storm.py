"""A storm of mentions into several `heron run` processes while everything around them fails.

Mentions go through the Slack fake over Socket Mode into `processes` Heron processes that
answer with the Anthropic fake, while a chaos driver SIGKILLs a process in the middle of
answering (and starts a new one), freezes one (SIGSTOP) for longer than its leases so
that another takes its events over while it still holds them, restarts PostgreSQL, makes
Slack answer 429 (with Retry-After), 5xx or nothing at all on chat.postMessage and the
streaming calls, and makes the model answer 529 now and then. At the end, with every
process stopped, the invariant is checked in the fake Slack and in the database
(tests/chaos/invariant.py).

    python -m tests.chaos.storm --mentions 300 --seed 7        # what `make chaos` runs

One seed (printed in the report) decides the questions, the answers, the fault schedule
and which model requests fail, so a failing storm can be run again with the same plan;
which event a fault meets still depends on timing.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import json
import random
import sys
import tempfile
import time
from collections import Counter
from collections.abc import AsyncIterator, Callable
from dataclasses import asdict, dataclass, field
from functools import partial
from pathlib import Path
from typing import Any

import psycopg

from heron.testing.anthropic import FakeAnthropic
from heron.testing.slack import ApiCall, SlackFake
from tests import pg
from tests.chaos.answers import Model, expected_answer, tag_of
from tests.chaos.fleet import LEASE_SECONDS, Fleet, heron_env
from tests.chaos.invariant import Check, Mention, ok

DEFAULT_OUTPUT = Path("benchmarks/results/chaos.json")
MAX_RETRY_COUNT = 3  # Heron's default: four attempts in all
KILL_WAIT_SECONDS = 5.0  # for a process that holds events, before killing (or pausing) any
PAUSE_SECONDS = 2 * LEASE_SECONDS  # the paused process's events are taken over meanwhile
ANSWER_CALLS = ("chat.postMessage", "chat.stopStream")  # a reply delivered (or tried)
SLACK_METHODS = ("chat.postMessage", "chat.startStream", "chat.appendStream", "chat.stopStream")
SLACK_FAULTS = ("429", "500", "503", "lost")  # lost: Slack did the work, its answer vanished


@dataclass(frozen=True, slots=True)
class StormPlan:
    """How big the storm is and how much fails in it."""

    mentions: int = 300
    processes: int = 3
    workers: int = 3  # per process
    kills: int = 8
    pauses: int = 4  # SIGSTOP for longer than a lease, then SIGCONT
    postgres_restarts: int = 3
    slack_faults: int = 40
    model_fault_rate: float = 0.08  # share of /v1/messages answered 529
    long_answer_rate: float = 0.5  # long answers are streamed, short ones posted
    mention_interval: float = 0.3  # mean seconds between two mentions
    seed: int = 1
    deadline: float = 600.0  # seconds for the whole storm

    @classmethod
    def ci(cls, seed: int) -> StormPlan:
        """The short storm the test suite runs."""
        return cls(
            mentions=30,
            processes=2,
            kills=2,
            pauses=1,
            postgres_restarts=1,
            slack_faults=8,
            model_fault_rate=0.15,
            mention_interval=0.6,
            seed=seed,
            deadline=150.0,
        )


@dataclass(frozen=True, slots=True)
class Action:
    """One chaos step, taken `at` seconds into the storm's timeline (see Storm._until)."""

    at: float
    kind: str  # kill | pause | postgres | slack
    method: str = ""
    fault: str = ""


@dataclass
class Tally:
    """What the chaos driver did."""

    kills: int = 0
    events_held_by_killed: int = 0
    pauses: int = 0
    events_held_by_paused: int = 0
    postgres_restarts: int = 0
    slack_faults_queued: int = 0
    skipped: list[str] = field(default_factory=list)


def schedule(plan: StormPlan, rng: random.Random) -> list[Action]:
    """Kills, pauses, restarts and Slack faults at random moments among the mentions."""
    window = plan.mentions * plan.mention_interval

    def moment() -> float:
        return window * rng.uniform(0.05, 0.9)

    kinds = ["kill"] * plan.kills + ["pause"] * plan.pauses
    kinds += ["postgres"] * plan.postgres_restarts
    actions = [Action(moment(), kind) for kind in kinds]
    for _ in range(plan.slack_faults):
        method, fault = rng.choice(SLACK_METHODS), rng.choice(SLACK_FAULTS)
        actions.append(Action(moment(), "slack", method, fault))
    return sorted(actions, key=lambda action: action.at)


def delivered(calls: list[ApiCall]) -> int:
    return sum(call.method in ANSWER_CALLS for call in calls)


class Storm:
    """One run of a plan against a PostgreSQL of its own; `run()` returns the report."""

    def __init__(
        self,
        plan: StormPlan,
        server: pg.DedicatedServer,
        logs: Path,
        configure_fleet: Callable[[Fleet], None] | None = None,
    ) -> None:
        self.plan = plan
        self.server = server
        self.logs = logs
        self.rng = random.Random(plan.seed)
        self.tally = Tally()
        self.mentions: list[Mention] = []
        self.model = Model(plan.seed, plan.model_fault_rate, plan.long_answer_rate)
        self.phases: dict[str, float] = {}
        self._phase_started = time.monotonic()
        self._timeline_started = time.monotonic()
        self._stretch = 0.0  # seconds the timeline stood still (see _until)
        self._clock_running = asyncio.Event()
        self._clock_running.set()
        self._clock_stopped = asyncio.Event()
        self.configure_fleet = configure_fleet  # e.g. a diagnosis wrapping `heron run`

    def run(self) -> dict[str, Any]:
        started = time.monotonic()
        with (
            SlackFake(ack_timeout=3.0) as slack,  # unacked deliveries come again, as in Slack
            FakeAnthropic(responder=self.model) as claude,
        ):
            data = self.logs / "data"
            env = heron_env(self.server.url, slack, claude, data, max_retry_count=MAX_RETRY_COUNT)
            fleet = Fleet(self.plan.processes, self.plan.workers, env, self.logs)
            if self.configure_fleet is not None:
                self.configure_fleet(fleet)
            try:
                asyncio.run(self._storm(slack, fleet, started + self.plan.deadline))
            finally:
                exit_codes = fleet.stop()
                self._phase("stop")
            report = self._report(slack, fleet, exit_codes)
        report["phases"] = self.phases
        report["duration_s"] = round(time.monotonic() - started, 1)
        return report

    def _phase(self, name: str) -> None:
        """How long each part took (seconds since the previous one ended)."""
        now = time.monotonic()
        self.phases[f"{name}_s"] = round(now - self._phase_started, 1)
        self._phase_started = now

    async def _storm(self, slack: SlackFake, fleet: Fleet, deadline: float) -> None:
        fleet.start()
        if len(await fleet.ready(self.plan.processes, _left(deadline))) < self.plan.processes:
            raise RuntimeError(f"Heron did not start; see the logs in {self.logs}")
        self._phase("startup")
        people = [slack.add_user(f"person{i}").id for i in range(8)]
        channels = [slack.add_channel(f"storm{i}", members=people).id for i in range(4)]
        self._timeline_started = time.monotonic()
        poster = asyncio.create_task(self._post(slack, people, channels))
        await self._drive(slack, fleet, deadline)
        await poster
        self._phase("mentions")
        await self._settle(slack, fleet, deadline)
        self._phase("settle")

    async def _until(self, at: float) -> None:
        """Sleep until `at` seconds into the storm's timeline: the plan's clock, which
        stands still while the driver waits for a process to start, so that mentions and
        faults stay interleaved as planned however slowly Heron starts."""
        while True:
            await self._clock_running.wait()
            left = at - (time.monotonic() - self._timeline_started - self._stretch)
            if left <= 0:
                return
            with contextlib.suppress(TimeoutError):
                async with asyncio.timeout(left):
                    await self._clock_stopped.wait()

    @contextlib.asynccontextmanager
    async def _clock_stands_still(self) -> AsyncIterator[None]:
        stopped = time.monotonic()
        self._clock_running.clear()
        self._clock_stopped.set()
        try:
            yield
        finally:
            self._stretch += time.monotonic() - stopped
            self._clock_stopped.clear()
            self._clock_running.set()

    async def _post(self, slack: SlackFake, people: list[str], channels: list[str]) -> None:
        rng = random.Random(f"{self.plan.seed}:mentions")
        at = 0.0
        for n in range(self.plan.mentions):
            await self._until(at)
            tag, channel = tag_of(n), rng.choice(channels)
            question = f"<@{slack.bot_user_id}> {tag}: how do leases work?"
            message = slack.post_user_message(channel, rng.choice(people), question)
            self.mentions.append(Mention(tag, channel, message["ts"]))
            at += rng.expovariate(1 / self.plan.mention_interval)

    async def _drive(self, slack: SlackFake, fleet: Fleet, deadline: float) -> None:
        """Take each action at its moment on the timeline (a chaos pause, not a wait for
        something to happen)."""
        for action in schedule(self.plan, self.rng):
            await self._until(action.at)
            fleet.check()
            if action.kind == "slack":
                self._slack_fault(slack, action)
                continue
            # A kill or a pause leaves a process running; a restart waits for every
            # process to have started (one finding no database while starting exits).
            everyone = action.kind == "postgres"
            wanted = self.plan.processes if everyone else min(2, self.plan.processes)
            async with self._clock_stands_still():
                ready = await fleet.ready(wanted, _left(deadline))
            if len(ready) < wanted:
                self.tally.skipped.append(f"{action.kind} at {action.at:.1f} s: a process is down")
            elif action.kind == "kill":
                slot, held = await self._victim(fleet, ready)
                fleet.kill(slot)
                self.tally.kills += 1
                self.tally.events_held_by_killed += held
            elif action.kind == "pause":
                slot, held = await self._victim(fleet, ready)
                fleet.pause(slot)
                await asyncio.sleep(PAUSE_SECONDS)
                fleet.resume(slot)
                self.tally.pauses += 1
                self.tally.events_held_by_paused += held
            else:
                await asyncio.to_thread(self.server.restart)
                self.tally.postgres_restarts += 1

    async def _victim(self, fleet: Fleet, ready: list[int]) -> tuple[int, int]:
        """A started process in the middle of answering, and how many events it holds:
        one that holds some (waiting a little for one to: killing or pausing an idle
        process tests little), else any."""
        holding: Counter[int] = Counter()

        def someone_holds(conn: psycopg.Connection[Any]) -> bool:
            rows = conn.execute("SELECT claimed_by FROM events WHERE status = 'processing'")
            pids = [int(claimed_by.split(":")[-2]) for (claimed_by,) in rows]  # host:pid:id
            holding.clear()
            holding.update(slot for slot in map(fleet.slot_of, pids) if slot in ready)
            return bool(holding)

        await self._poll(someone_holds, KILL_WAIT_SECONDS)
        slot = self.rng.choice(sorted(holding) or ready)
        return slot, holding[slot]

    async def _poll(self, check: Callable[[psycopg.Connection[Any]], bool], within: float) -> bool:
        """Wait until `check` holds in the database (what happens there has no event to
        await); False after `within` seconds."""
        deadline = time.monotonic() + within
        with psycopg.connect(self.server.url, autocommit=True) as conn:
            while not check(conn):
                if time.monotonic() > deadline:
                    return False
                await asyncio.sleep(0.1)
        return True

    def _slack_fault(self, slack: SlackFake, action: Action) -> None:
        if action.fault == "lost":
            slack.lose_response_next(action.method)
        elif action.fault == "429":
            slack.fail_next(action.method, status=429, retry_after=1)
        else:
            slack.fail_next(action.method, status=int(action.fault), retry_after=None)
        self.tally.slack_faults_queued += 1

    async def _settle(self, slack: SlackFake, fleet: Fleet, deadline: float) -> None:
        """Wait until every mention has a reply and no question event is still open."""

        def answered(calls: list[ApiCall]) -> bool:
            if delivered(calls) < len(self.mentions):
                return False  # cheap: not even as many replies as mentions yet
            return all(slack.bot_replies(m.channel, m.ts) for m in self.mentions)

        def no_open_events(conn: psycopg.Connection[Any]) -> bool:
            row = conn.execute(
                "SELECT count(*) FROM events WHERE event_type = 'slack.question' "
                "AND status IN ('pending', 'processing')"
            ).fetchone()
            return row is not None and row[0] == 0

        try:
            await slack.wait_for_calls_async(answered, _left(deadline))
        except TimeoutError:
            self.tally.skipped.append("settle: not every mention has a reply")
        if not await self._poll(no_open_events, _left(deadline)):
            self.tally.skipped.append("settle: question events still open")
        fleet.check()

    def _report(self, slack: SlackFake, fleet: Fleet, exit_codes: list[int]) -> dict[str, Any]:
        plan = self.plan
        expected = partial(expected_answer, plan.seed, long_rate=plan.long_answer_rate)
        check = Check(self.server.url, slack, self.mentions, expected, MAX_RETRY_COUNT)
        fired = Counter(
            f"{method} {'lost' if fault.drop else fault.status}"
            for method, fault in slack.faults.fired()
        )
        return {
            "seed": plan.seed,
            "events": len(self.mentions),
            "answered": check.answered,
            "kills": self.tally.kills,
            "events_held_by_killed": self.tally.events_held_by_killed,
            "pauses": self.tally.pauses,
            "events_held_by_paused": self.tally.events_held_by_paused,
            "postgres_restarts": self.tally.postgres_restarts,
            "slack_faults": sum(fired.values()),
            "model_faults": self.model.faults,
            "retries": check.retries,
            "duplicates": check.duplicates,
            "lost": check.lost,
            "wrong_answers": check.wrong,
            "apologies": check.apologies,
            "stray_messages": check.strays,
            "events_failed": check.failed,
            "attempts_unrecorded": check.unrecorded,
            "replies_unrecorded": check.mismatched,
            "attempts": dict(sorted(check.outcomes.items())),
            "slack_faults_fired": dict(sorted(fired.items())),
            "slack_faults_queued": self.tally.slack_faults_queued,
            "unexpected_exits": fleet.exits,
            "hung_on_stop": fleet.hung,
            "exit_codes": exit_codes,
            "skipped": self.tally.skipped,
            "problems": check.problems[:20],
            "plan": asdict(plan),
            "logs": str(self.logs),
        }


def run_storm(
    plan: StormPlan,
    output: Path | None = None,
    logs: Path | None = None,
    configure_fleet: Callable[[Fleet], None] | None = None,
) -> dict[str, Any]:
    """Run one storm on a PostgreSQL of its own; print the report as JSON and save it."""
    logs = logs or Path(tempfile.mkdtemp(prefix="heron-storm-"))
    logs.mkdir(parents=True, exist_ok=True)
    with pg.dedicated_server() as server:
        report = Storm(plan, server, logs, configure_fleet).run()
    report["ok"] = ok(report)
    rendered = json.dumps(report, indent=2)
    print(rendered, flush=True)
    if output is not None:
        output.parent.mkdir(parents=True, exist_ok=True)
        output.write_text(rendered + "\n")
    return report


def _left(deadline: float) -> float:
    return max(0.1, deadline - time.monotonic())


def main(argv: list[str] | None = None) -> int:
    defaults = StormPlan()
    parser = argparse.ArgumentParser(description="Heron's chaos storm (see tests/chaos/storm.py)")
    parser.add_argument("--mentions", type=int, default=defaults.mentions)
    parser.add_argument("--processes", type=int, default=defaults.processes)
    parser.add_argument("--workers", type=int, default=defaults.workers, help="per process")
    parser.add_argument("--kills", type=int, default=defaults.kills)
    parser.add_argument("--pauses", type=int, default=defaults.pauses)
    parser.add_argument("--postgres-restarts", type=int, default=defaults.postgres_restarts)
    parser.add_argument("--slack-faults", type=int, default=defaults.slack_faults)
    parser.add_argument("--model-fault-rate", type=float, default=defaults.model_fault_rate)
    parser.add_argument("--mention-interval", type=float, default=defaults.mention_interval)
    parser.add_argument("--seed", type=int, default=None, help="default: a random one")
    parser.add_argument("--deadline", type=float, default=defaults.deadline)
    parser.add_argument("--output", type=Path, default=DEFAULT_OUTPUT)
    parser.add_argument("--logs", type=Path, default=None, help="default: a temporary folder")
    args = parser.parse_args(argv)
    plan = StormPlan(
        mentions=args.mentions,
        processes=args.processes,
        workers=args.workers,
        kills=args.kills,
        pauses=args.pauses,
        postgres_restarts=args.postgres_restarts,
        slack_faults=args.slack_faults,
        model_fault_rate=args.model_fault_rate,
        mention_interval=args.mention_interval,
        seed=args.seed if args.seed is not None else random.SystemRandom().randrange(10**6),
        deadline=args.deadline,
    )
    return 0 if run_storm(plan, args.output, args.logs)["ok"] else 1


if __name__ == "__main__":
    sys.exit(main())
