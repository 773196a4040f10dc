"""What the load run measured, from the load generator's records and the database: pure.

The generator (tests/performance/locustfile.py) writes one CSV row per request. Here they
become figures (requests/s, ack latency percentiles) and the exactly-once check: every
event Slack got a 200 for is in the database once, and nothing else is.
"""

from __future__ import annotations

import csv
from collections import Counter
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from heron.bench.stats import percentile

# Kinds of request the generator sends: a plain message (or thread reply), the two
# deliveries of a mention (app_mention and its message twin), a redelivery of either.
MESSAGE, MENTION, MENTION_MESSAGE, RETRY = "message", "mention", "mention-message", "retry"
_SHOWN = 10  # ids listed per problem in the report


@dataclass(frozen=True, slots=True)
class Request:
    """One POST to /slack/events as the generator saw it."""

    sent_at: float  # time.time() when it was sent
    ms: float | None  # None: stopped by locust before an answer (at the end of the run)
    status: int | None
    kind: str
    event_id: str
    channel: str
    ts: str
    retry_num: int

    @property
    def acked(self) -> bool:
        return self.status == 200


def read_requests(folder: Path) -> list[Request]:
    """Every process's records (requests-PID.csv), oldest first."""
    found: list[Request] = []
    for path in sorted(folder.glob("requests-*.csv")):
        with path.open(newline="") as file:
            found.extend(_request(row) for row in csv.DictReader(file))
    return sorted(found, key=lambda r: r.sent_at)


def _request(row: dict[str, str]) -> Request:
    return Request(
        sent_at=float(row["sent_at"]),
        ms=float(row["ms"]) if row["ms"] else None,
        status=int(row["status"]) if row["status"] else None,
        kind=row["kind"],
        event_id=row["event_id"],
        channel=row["channel"],
        ts=row["ts"],
        retry_num=int(row["retry_num"] or 0),
    )


def latency_figures(ms: Sequence[float]) -> dict[str, float] | None:
    """p50/p95/p99/max/mean in milliseconds; None without samples."""
    if not ms:
        return None
    return {
        "p50": percentile(ms, 50),
        "p95": percentile(ms, 95),
        "p99": percentile(ms, 99),
        "max": max(ms),
        "mean": sum(ms) / len(ms),
    }


def traffic(requests: Sequence[Request], steady_from: float) -> dict[str, Any]:
    """Counts, rates and ack latencies; `steady` leaves out requests sent while users
    were still being spawned (before `steady_from`)."""
    done = [r for r in requests if r.ms is not None]
    steady = [r for r in done if r.sent_at >= steady_from]
    return {
        "requests": len(requests),
        "answered": len(done),
        "failures": sum(1 for r in done if not r.acked),
        "unfinished": len(requests) - len(done),
        "statuses": dict(Counter(str(r.status) for r in done)),
        "by_kind": dict(Counter(r.kind for r in requests)),
        "requests_per_s": _rate(done),
        "steady_requests_per_s": _rate(steady),
        "steady_seconds": _span(steady),
        "ack_ms": latency_figures([r.ms for r in steady if r.ms is not None]),
        "ack_ms_all": latency_figures([r.ms for r in done if r.ms is not None]),
    }


def _span(requests: Sequence[Request]) -> float:
    if len(requests) < 2:
        return 0.0
    return max(r.sent_at + (r.ms or 0) / 1000 for r in requests) - requests[0].sent_at


def _rate(requests: Sequence[Request]) -> float:
    span = _span(requests)
    return len(requests) / span if span > 0 else 0.0


@dataclass(frozen=True, slots=True)
class Stored:
    """What the database holds after the run (the parts the check needs)."""

    receipts: Sequence[str]  # slack_event_receipts.event_id
    messages: Sequence[tuple[str, str]]  # slack_messages (channel_id, ts)
    questions: Sequence[str]  # events.dedupe_key of slack.question events


def question_key(channel: str, ts: str) -> str:
    """A question's queue dedupe key (heron.slack.events.Question.dedupe_key)."""
    return f"slack:{channel}:{ts}"


def exactly_once(requests: Sequence[Request], stored: Stored) -> dict[str, Any]:
    """Every event acked with a 200 is stored exactly once; nothing stored was not sent.

    Requests cut off before their answer (the run's end) may or may not have been taken
    in; they are allowed either way, but still at most once.
    """
    acked = [r for r in requests if r.acked]
    sent_ids = {r.event_id for r in requests}
    acked_ids = {r.event_id for r in acked}
    receipts = Counter(stored.receipts)
    messages = Counter(stored.messages)
    questions = Counter(stored.questions)
    sent_messages = {(r.channel, r.ts) for r in requests}
    acked_messages = {(r.channel, r.ts) for r in acked}
    mentions = [r for r in requests if r.kind in (MENTION, MENTION_MESSAGE)]
    sent_questions = {question_key(r.channel, r.ts) for r in mentions}
    acked_questions = {question_key(r.channel, r.ts) for r in mentions if r.acked}
    problems: dict[str, set[str]] = {
        "missing_receipts": acked_ids - receipts.keys(),
        "unexpected_receipts": receipts.keys() - sent_ids,
        "duplicate_receipts": _repeated(receipts),
        "missing_messages": _pairs(acked_messages - messages.keys()),
        "unexpected_messages": _pairs(messages.keys() - sent_messages),
        "duplicate_messages": _pairs(_repeated(messages)),
        "missing_questions": acked_questions - questions.keys(),
        "unexpected_questions": questions.keys() - sent_questions,
        "duplicate_questions": _repeated(questions),
    }
    found = {name: ids for name, ids in problems.items() if ids}
    return {
        "ok": not found,
        "acked_events": len(acked_ids),
        "acked_redeliveries": sum(1 for r in acked if r.kind == RETRY),
        "receipts": len(stored.receipts),
        "acked_messages": len(acked_messages),
        "archive_rows": len(stored.messages),
        "acked_questions": len(acked_questions),
        "queue_events": len(stored.questions),
        "problems": {name: len(ids) for name, ids in found.items()},
        "examples": {name: sorted(ids)[:_SHOWN] for name, ids in found.items()},
    }


def _repeated(counts: Counter[Any]) -> set[Any]:
    # The tables' keys make a repeat impossible; counted anyway, as the check's point.
    return {key for key, n in counts.items() if n > 1}


def _pairs(pairs: Iterable[tuple[str, str]]) -> set[str]:
    return {f"{channel}/{ts}" for channel, ts in pairs}
