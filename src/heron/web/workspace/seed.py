"""The local workspace's cast: who is in it, its conversations and a little history.

Everything here is fixed (ids, names, texts), so that a restart finds the same people and
conversations in Heron's archive; only the history's times follow the clock.
"""

from __future__ import annotations

from dataclasses import dataclass

from heron.testing.slack import AppIdentity, SlackFake
from heron.testing.slack.events import message_event

IDENTITY = AppIdentity(
    team_id="T0LOCALTEAM",
    team_name="Local workspace",
    domain="heron-local",
    app_id="A0LOCALAPP1",
    bot_id="B0LOCALBOT1",
    bot_user_id="U0LOCALBOT1",
    bot_name="heron",
    bot_token="xoxb-local-workspace",  # noqa: S106 - never leaves loopback
    app_token="xapp-1-local-workspace",  # noqa: S106
    signing_secret="local-workspace-signing-secret",  # noqa: S106
    verification_token="local-workspace-verification-token",  # noqa: S106
)


@dataclass(frozen=True, slots=True)
class Person:
    id: str
    name: str
    real_name: str


YOU = Person("U0LOCALYOU1", "you", "You")
PEOPLE = (
    YOU,
    Person("U0LOCALMAYA", "maya", "Maya Chen"),
    Person("U0LOCALSAM1", "sam", "Sam Okafor"),
)
MAYA, SAM = PEOPLE[1].id, PEOPLE[2].id


@dataclass(frozen=True, slots=True)
class Starter:
    """One message of the history the workspace starts with."""

    channel: str  # a channel name
    user: str
    text: str
    minutes_ago: int
    replies: tuple[tuple[str, str], ...] = ()  # (user, text), a minute apart


STARTERS = (
    Starter(
        "general",
        MAYA,
        "Welcome to the team :wave: Build and deploy questions go to #engineering, "
        "anything else here.",
        26 * 60,
    ),
    Starter("general", SAM, "Reminder: this week's all-hands moved to Thursday, 15:00.", 25 * 60),
    Starter(
        "engineering",
        MAYA,
        "How we deploy: merge to `main` and wait for CI to go green, then run "
        "`make deploy ENV=staging`. Once staging looks good, `make deploy ENV=production` "
        "ships it. The full runbook is in docs/deploy.md.",
        24 * 60,
        replies=(
            (
                SAM,
                "And if a production deploy goes wrong, `make rollback ENV=production` puts "
                "the previous release back within a minute.",
            ),
            (MAYA, "Good point, I added rollback to the runbook."),
        ),
    ),
    Starter(
        "engineering",
        SAM,
        "Heads-up: the staging database moves to PostgreSQL 17 on Thursday at 10:00; "
        "expect ten minutes of downtime.",
        5 * 60,
    ),
    Starter(
        "engineering",
        MAYA,
        "New here? `make dev` starts the app locally with a seeded database on "
        "http://localhost:3000.",
        3 * 60,
    ),
)


@dataclass(frozen=True, slots=True)
class Directory:
    """The conversations the local user sees, in sidebar order, and who they are."""

    me: str
    channels: tuple[str, ...]  # channel ids: #general, #engineering, then the DM
    dm: str


def populate(fake: SlackFake) -> Directory:
    """People and conversations, set up silently (before Heron connects); ids are stable
    because the fake numbers new conversations in the order they are made."""
    for person in PEOPLE:
        fake.add_user(person.name, real_name=person.real_name, user_id=person.id)
    general = fake.channel("general")
    fake.workspace.set_member(general.id, IDENTITY.bot_user_id, True)
    fake.workspace.update_channel(
        general.id, topic="Company-wide announcements", purpose="Everyone is here"
    )
    engineering = fake.add_channel(
        "engineering", topic="Builds, deploys and on-call", purpose="Engineering talk"
    )
    dm = fake.open_dm(YOU.id)
    return Directory(YOU.id, (general.id, engineering.id, dm.id), dm.id)


def post_starters(fake: SlackFake, now: float) -> int:
    """The starting history, sent to Heron as message events (queued by the fake until
    Heron's Socket Mode client connects), so the archive has something to find.
    Returns how many messages were sent."""
    sent = 0
    for starter in STARTERS:
        at = now - starter.minutes_ago * 60
        top = _send(fake, starter.channel, starter.user, starter.text, at, None)
        sent += 1
        for i, (user, text) in enumerate(starter.replies, start=1):
            _send(fake, starter.channel, user, text, at + 60 * i, top)
            sent += 1
    return sent


def _send(
    fake: SlackFake, channel: str, user: str, text: str, at: float, thread_ts: str | None
) -> str:
    stored = fake.seed_message(channel, user, text, at=at, thread_ts=thread_ts)
    fake.deliver_event(message_event(stored, fake.channel(channel)))
    return str(stored["ts"])
