"""The storm's invariant, read from the fake Slack and from the database once every
process has stopped: each mention has exactly one reply in its thread and it answers
that mention, none is lost, each question is one event, and every attempt is recorded."""

from __future__ import annotations

from collections import Counter
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

import psycopg

from heron.slack.formatting import markdown_to_mrkdwn
from heron.slack.handlers import apology
from heron.testing.slack import SlackFake


@dataclass(frozen=True, slots=True)
class Mention:
    """A question the storm asked: its tag and where it is."""

    tag: str
    channel: str
    ts: str


class Check:
    """Counts what held and what did not; `problems` says which mention or event broke it.

    `expected(tag)` is the model's answer to a question. An apology counts as the one
    answer only when the model failed the event's last attempt (retry_count reached
    `max_retries`): sent earlier, it is wrong.
    """

    def __init__(
        self,
        database_url: str,
        slack: SlackFake,
        mentions: list[Mention],
        expected: Callable[[str], str],
        max_retries: int,
    ) -> None:
        self.answered = self.duplicates = self.lost = self.wrong = self.apologies = 0
        self.strays = self.failed = self.unrecorded = self.retries = self.mismatched = 0
        self.outcomes: Counter[str] = Counter()
        self.problems: list[str] = []
        self.max_retries = max_retries
        events = self._events(database_url)
        for mention in mentions:
            event = events.get((mention.channel, mention.ts))
            self._mention(slack, mention, event, _words(markdown_to_mrkdwn(expected(mention.tag))))
        for channel in {m.channel for m in mentions}:
            self.strays += sum(m.get("bot_id") == slack.bot_id for m in slack.messages(channel))
        self._attempts(database_url, events)

    def _mention(
        self, slack: SlackFake, mention: Mention, event: dict[str, Any] | None, wanted: str
    ) -> None:
        replies = slack.bot_replies(mention.channel, mention.ts)
        if not replies:
            self.lost += 1
            self._problem(mention, event, "no reply")
            return
        if len(replies) > 1:
            self.duplicates += len(replies) - 1
            self._problem(mention, event, f"{len(replies)} replies")
            return
        (reply,) = replies
        said = _words(str(reply.get("text", "")))
        if event is not None and said == _words(apology(event["id"])):
            if event["retry_count"] < self.max_retries:
                self.wrong += 1
                self._problem(mention, event, "an apology before the last attempt")
                return
            self.apologies += 1  # the model failed every attempt: this is the one answer
        elif said != wanted:
            self.wrong += 1
            self._problem(mention, event, f"reply {said[:80]!r}")
            return
        self.answered += 1
        if event is None:
            self.mismatched += 1
            self._problem(mention, event, "answered, but there is no question event")
        elif event["status"] != "completed" or event["message_ts"] != reply["ts"]:
            self.mismatched += 1
            self._problem(mention, event, f"answered, but slack_replies has {event['message_ts']}")

    def _events(self, database_url: str) -> dict[tuple[str, str], dict[str, Any]]:
        with psycopg.connect(database_url) as conn:
            rows = conn.execute(
                "SELECT e.id, e.payload ->> 'channel', e.payload ->> 'ts', e.status, "
                "e.attempts, e.retry_count, r.message_ts FROM events e "
                "LEFT JOIN slack_replies r ON r.event_id = e.id AND r.part = 0 "
                "WHERE e.event_type = 'slack.question' ORDER BY e.id"
            ).fetchall()
        found: dict[tuple[str, str], dict[str, Any]] = {}
        for id_, channel, ts, status, attempts, retry_count, message_ts in rows:
            if (channel, ts) in found:
                self.duplicates += 1
                self.problems.append(f"a second question event ({id_}) for {channel}/{ts}")
                continue
            found[(channel, ts)] = {
                "id": id_,
                "status": status,
                "attempts": attempts,
                "retry_count": retry_count,
                "message_ts": message_ts,
            }
        return found

    def _attempts(self, database_url: str, events: dict[tuple[str, str], dict[str, Any]]) -> None:
        """Every claim of an event ended in exactly one event_attempts row."""
        with psycopg.connect(database_url) as conn:
            rows = conn.execute(
                "SELECT event_id, array_agg(outcome ORDER BY attempt) FROM event_attempts "
                "GROUP BY event_id"
            ).fetchall()
        history = {event_id: outcomes for event_id, outcomes in rows}
        for event in events.values():
            outcomes = history.get(event["id"], [])
            self.outcomes.update(outcomes)
            self.retries += sum(outcome != "completed" for outcome in outcomes)
            self.failed += event["status"] == "failed"
            if len(outcomes) != event["attempts"] or event["status"] not in ("completed", "failed"):
                self.unrecorded += 1
                self.problems.append(
                    f"event {event['id']} {event['status']}: {event['attempts']} attempts, "
                    f"recorded {outcomes}"
                )

    def _problem(self, mention: Mention, event: dict[str, Any] | None, what: str) -> None:
        where = f"{mention.tag} {mention.channel}/{mention.ts}"
        state = "no event" if event is None else f"event {event['id']} {event['status']}"
        self.problems.append(f"{where} ({state}): {what}")


def ok(report: dict[str, Any]) -> bool:
    """The invariant held: nothing lost, nothing twice, every reply right and recorded,
    and every process ended as it was told to."""
    return (
        report["answered"] == report["events"]
        and not report["duplicates"]
        and not report["lost"]
        and not report["wrong_answers"]
        and not report["stray_messages"]
        and not report["events_failed"]
        and not report["attempts_unrecorded"]
        and not report["replies_unrecorded"]
        and not report["unexpected_exits"]
        and not report["hung_on_stop"]
    )


def _words(text: str) -> str:
    return " ".join(text.split())
