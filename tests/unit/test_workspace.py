"""The local workspace's pure parts: typed text to Slack text, question journeys, views
and archive rows back into the fake, and when the workspace starts at all."""

from __future__ import annotations

from typing import Any

import pytest

from heron.config import Config
from heron.slack.events import BotIdentity, plan_event
from heron.testing.slack import AppIdentity, Channel, ChannelKind, User
from heron.testing.slack.events import event_callback, message_event
from heron.web.workspace import local_workspace_enabled
from heron.web.workspace.composing import encode_message
from heron.web.workspace.journey import Stage, is_question, journey, question_key
from heron.web.workspace.restore import fake_message
from heron.web.workspace.seed import IDENTITY
from heron.web.workspace.views import message_view

MEMBERS = {"heron": "U0BOT", "maya": "U0MAYA", "maya.chen": "U0MAYA2"}


@pytest.mark.parametrize(
    ("typed", "sent"),
    [
        ("@heron how do I deploy?", "<@U0BOT> how do I deploy?"),
        ("@Heron, hi", "<@U0BOT>, hi"),
        ("thanks @heron.", "thanks <@U0BOT>."),
        ("ask @maya.chen", "ask <@U0MAYA2>"),
        ("@nobody and mail@heron.dev", "@nobody and mail@heron.dev"),
        ("if a < b && c > d", "if a &lt; b &amp;&amp; c &gt; d"),
        ("see https://example.org/a?b=1&c=2.", "see <https://example.org/a?b=1&amp;c=2>."),
        ("https://example.org/@heron", "<https://example.org/@heron>"),
        ("<@U0BOT> typed by hand", "&lt;@U0BOT&gt; typed by hand"),
    ],
)
def test_typed_text_is_sent_as_slack_sends_it(typed: str, sent: str) -> None:
    assert encode_message(typed, MEMBERS) == sent


def events_row(status: str, retry_count: int = 0, error: str | None = None) -> dict[str, Any]:
    return {
        "id": 7,
        "status": status,
        "retry_count": retry_count,
        "attempts": retry_count + 1,
        "error_message": error,
    }


def test_a_question_moves_through_the_queue() -> None:
    assert journey(None).stage is Stage.SENT
    assert journey(events_row("pending")).stage is Stage.QUEUED
    assert journey(events_row("processing")).stage is Stage.WORKING
    answered = journey(events_row("completed"))
    assert (answered.stage, answered.event_id) == (Stage.ANSWERED, 7)
    retrying = journey(events_row("pending", 1, "model overloaded\ntraceback..."))
    assert (retrying.stage, retrying.error) == (Stage.RETRYING, "model overloaded")
    assert journey(events_row("failed", 3, "gave up")).to_json() == {
        "stage": "failed",
        "event_id": 7,
        "attempts": 4,
        "error": "gave up",
    }


def test_the_journey_reads_the_key_heron_queues_questions_under() -> None:
    eng = Channel("C1", "eng", ChannelKind.PUBLIC, 0, "U1", ["U1", "UB"])
    message = {"type": "message", "ts": "1700000000.000100", "user": "U1", "text": "<@UB> hi"}
    body = event_callback(
        message_event(message, eng), AppIdentity(), event_id="Ev1", event_time=1700000000
    )
    question = plan_event(body, BotIdentity(user_id="UB")).question
    assert question is not None
    assert question_key("C1", "1700000000.000100") == question.dedupe_key


def channel(kind: ChannelKind) -> Channel:
    return Channel("D1" if kind is ChannelKind.IM else "C1", "eng", kind, 0, "U1", ["U1", "UB"])


def test_what_heron_takes_for_a_question() -> None:
    public, dm = channel(ChannelKind.PUBLIC), channel(ChannelKind.IM)
    mention = {"ts": "1.1", "user": "U1", "text": "<@UB> help"}
    plain = {"ts": "1.2", "user": "U1", "text": "hello"}
    assert is_question(mention, public, "UB")
    assert not is_question(plain, public, "UB")
    assert is_question(plain, dm, "UB")
    assert not is_question({"ts": "1.3", "user": "UB", "bot_id": "B1", "text": "hi"}, dm, "UB")
    assert not is_question({**plain, "subtype": "channel_join"}, dm, "UB")


def test_a_message_view_names_its_author_and_counts_its_thread() -> None:
    users = {"U1": User("U1", "ada", "Ada Lovelace", "T1")}
    message = {
        "ts": "1.1",
        "thread_ts": "1.1",
        "user": "U1",
        "text": "hi",
        "reply_count": 2,
        "reply_users": ["U1", "U9"],
        "reactions": [{"name": "eyes", "users": ["U1"], "count": 1}],
        "edited": {"user": "U1", "ts": "1.5"},
    }
    view = message_view(message, users, journey(None))
    assert view["author"]["real_name"] == "Ada Lovelace"
    assert view["is_reply"] is False
    assert view["edited"] is True
    assert view["reply_count"] == 2
    assert [u["name"] for u in view["reply_users"]] == ["ada", "U9"]
    assert view["reactions"] == [{"name": "eyes", "count": 1, "users": ["U1"]}]
    assert view["question"]["stage"] == "sent"
    reply = message_view({"ts": "1.2", "thread_ts": "1.1", "user": "U9", "text": "x"}, users, None)
    assert reply["is_reply"] is True
    assert reply["question"] is None


def archive_row(**values: Any) -> dict[str, Any]:
    row = {
        "channel_id": "C1",
        "ts": "1.000100",
        "thread_ts": None,
        "user_id": "U1",
        "bot_id": None,
        "subtype": None,
        "text": "hello",
        "edited": False,
        "reactions": {},
        "metadata": None,
        "reply_text": None,
    }
    return row | values


def test_archive_rows_become_the_fakes_messages() -> None:
    identity = AppIdentity(bot_id="B1", app_id="A1", bot_user_id="UB")
    person = fake_message(archive_row(reactions={"eyes": ["U2"], "gone": []}), identity)
    assert person == {
        "type": "message",
        "ts": "1.000100",
        "text": "hello",
        "user": "U1",
        "reactions": [{"name": "eyes", "users": ["U2"], "count": 1}],
    }
    # Heron's own streamed reply: the archive kept its start, the outbox its whole text.
    reply = fake_message(
        archive_row(
            user_id="UB",
            bot_id="B1",
            text="Part",
            reply_text="Part and whole",
            thread_ts="1.000000",
            metadata={"event_type": "heron_reply"},
        ),
        identity,
    )
    assert reply["text"] == "Part and whole"
    assert (reply["bot_id"], reply["app_id"], reply["thread_ts"]) == ("B1", "A1", "1.000000")
    assert reply["metadata"] == {"event_type": "heron_reply"}
    edited = fake_message(archive_row(edited=True), identity)
    assert edited["edited"] == {"user": "U1", "ts": "1.000100"}


def config(**values: Any) -> Config:
    return Config(_env_file=None, **values)


def test_the_workspace_starts_only_without_slack_and_on_loopback_unless_asked() -> None:
    assert local_workspace_enabled(config())
    assert local_workspace_enabled(config(heron_http_host="::1"))
    assert local_workspace_enabled(config(heron_http_host="localhost"))
    assert not local_workspace_enabled(config(heron_local_workspace="off"))
    assert not local_workspace_enabled(config(heron_http_host="0.0.0.0"))
    assert local_workspace_enabled(config(heron_http_host="0.0.0.0", heron_local_workspace="on"))
    slack = {"slack_bot_token": "xoxb-1", "slack_app_token": "xapp-1"}
    assert not local_workspace_enabled(config(**slack))
    assert not local_workspace_enabled(config(heron_local_workspace="on", **slack))
    assert IDENTITY.bot_token.startswith("xoxb-")
    assert IDENTITY.app_token.startswith("xapp-")
