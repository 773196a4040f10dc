"""What each Slack event means: archive actions and questions, without I/O."""

from __future__ import annotations

from typing import Any

import pytest

from heron.slack.events import (
    MAX_TEXT_CHARS,
    BotIdentity,
    DeleteMessage,
    FetchFileText,
    Membership,
    PayloadError,
    React,
    SaveChannel,
    SaveMessage,
    SaveUser,
    plan_event,
)

BOT = BotIdentity(user_id="UBOT", bot_id="BBOT", team_id="T1")


def callback(event: dict[str, Any], event_id: str = "Ev1") -> dict[str, Any]:
    return {"type": "event_callback", "team_id": "T1", "event_id": event_id, "event": event}


def message(text: str, **extra: Any) -> dict[str, Any]:
    return {
        "type": "message",
        "channel": "C1",
        "channel_type": "channel",
        "user": "U1",
        "text": text,
        "ts": "1732579200.000100",
        **extra,
    }


def saved(plan: Any) -> list[Any]:
    return [a.row for a in plan.actions if isinstance(a, SaveMessage)]


def test_a_channel_message_is_archived_and_is_no_question() -> None:
    plan = plan_event(callback(message("hello")), BOT)
    (row,) = saved(plan)
    assert (row.channel_id, row.ts, row.text, row.user_id) == (
        "C1",
        "1732579200.000100",
        "hello",
        "U1",
    )
    assert plan.question is None
    assert SaveChannel(id="C1", is_private=False, is_im=False, is_mpim=False) in plan.actions


def test_app_mention_and_its_message_twin_are_one_question() -> None:
    text = "<@UBOT> how do I vacuum?"
    mention = plan_event(callback({**message(text), "type": "app_mention"}, "Ev1"), BOT)
    twin = plan_event(callback(message(text), "Ev2"), BOT)
    assert mention.question is not None
    assert twin.question is not None
    assert mention.question.dedupe_key == twin.question.dedupe_key == "slack:C1:1732579200.000100"
    assert mention.question.thread_ts == "1732579200.000100"  # answered in a new thread
    assert mention.question.payload()["event_id"] == "Ev1"


def test_a_mention_inside_a_thread_is_answered_in_that_thread() -> None:
    event = {**message("<@UBOT> and now?", thread_ts="1732579100.000001"), "type": "app_mention"}
    question = plan_event(callback(event), BOT).question
    assert question is not None
    assert question.thread_ts == "1732579100.000001"


def test_a_direct_message_is_a_question_and_proves_membership() -> None:
    plan = plan_event(callback(message("hi", channel="D1", channel_type="im")), BOT)
    assert plan.question is not None
    assert plan.question.kind == "dm"
    assert Membership("D1", "U1", joined=True) in plan.actions
    assert SaveChannel(id="D1", is_private=True, is_im=True, is_mpim=False) in plan.actions


@pytest.mark.parametrize(
    "event",
    [
        message("<@UBOT> echo", user="UBOT", bot_id="BBOT"),  # the bot's own message
        message("<@UBOT> loop", bot_id="BOTHER", subtype="bot_message"),  # another bot
        message("<@UBOT> joined", subtype="channel_join"),
        message("hi", channel="D1", channel_type="im", user="UBOT"),
    ],
)
def test_bots_and_system_messages_are_archived_never_answered(event: dict[str, Any]) -> None:
    plan = plan_event(callback(event), BOT)
    assert plan.question is None
    assert saved(plan)


def test_an_edit_keeps_the_previous_text() -> None:
    event = {
        "type": "message",
        "subtype": "message_changed",
        "channel": "C1",
        "channel_type": "channel",
        "hidden": True,
        "message": {**message("new"), "edited": {"user": "U1", "ts": "1732579300.000000"}},
        "previous_message": message("old"),
        "ts": "1732579300.000200",
    }
    plan = plan_event(callback(event), BOT)
    (row,) = saved(plan)
    assert (row.text, row.previous_text, row.edited_ts) == ("new", "old", "1732579300.000000")
    assert plan.question is None  # an edit adding a mention is not a new question


def test_deletes_and_tombstones_delete() -> None:
    deleted = {"type": "message", "subtype": "message_deleted", "channel": "C1",
               "deleted_ts": "1732579200.000100", "ts": "1732579400.000000"}  # fmt: skip
    assert DeleteMessage("C1", "1732579200.000100") in plan_event(callback(deleted), BOT).actions
    tombstone = {
        "type": "message",
        "subtype": "message_changed",
        "channel": "C1",
        "message": {**message("This message was deleted."), "subtype": "tombstone"},
    }
    assert DeleteMessage("C1", "1732579200.000100") in plan_event(callback(tombstone), BOT).actions


def test_reactions_channels_members_and_users() -> None:
    item = {"type": "message", "channel": "C1", "ts": "1732579200.000100"}
    reaction = {"type": "reaction_added", "user": "U2", "reaction": "eyes", "item": item}
    assert plan_event(callback(reaction), BOT).actions == [
        React("C1", "1732579200.000100", "eyes", "U2", added=True)
    ]
    rename = {"type": "group_rename", "channel": {"id": "G1", "name": "secret-2"}}
    (channel,) = plan_event(callback(rename), BOT).actions
    assert isinstance(channel, SaveChannel)
    assert (channel.name, channel.is_private) == ("secret-2", True)
    archive = plan_event(callback({"type": "channel_archive", "channel": "C1"}), BOT).actions
    assert archive == [SaveChannel(id="C1", is_private=False, is_archived=True)]
    left = {"type": "member_left_channel", "user": "U2", "channel": "G1", "channel_type": "G"}
    assert Membership("G1", "U2", joined=False) in plan_event(callback(left), BOT).actions
    user = {"type": "user_change", "user": {"id": "U2", "name": "ada"}}
    assert plan_event(callback(user), BOT).actions == [SaveUser({"id": "U2", "name": "ada"})]


def test_small_text_files_are_fetched_later_big_ones_are_not() -> None:
    files = [
        {"id": "F1", "name": "notes.md", "filetype": "markdown", "size": 120,
         "url_private_download": "https://files/F1", "secret_field": "x"},
        {"id": "F2", "name": "big.txt", "filetype": "text", "size": 10_000_000,
         "url_private_download": "https://files/F2"},
        {"id": "F3", "name": "cat.png", "filetype": "png", "size": 100,
         "url_private_download": "https://files/F3"},
    ]  # fmt: skip
    plan = plan_event(callback(message("see", subtype="file_share", files=files)), BOT)
    (row,) = saved(plan)
    assert [f["id"] for f in row.files] == ["F1", "F2", "F3"]
    assert "secret_field" not in row.files[0]
    fetches = [a for a in plan.actions if isinstance(a, FetchFileText)]
    assert fetches == [FetchFileText("C1", "1732579200.000100", "F1", "https://files/F1")]


@pytest.mark.parametrize(
    ("body", "problem"),
    [
        ({"type": "url_verification"}, "not an event_callback"),
        ({"type": "event_callback"}, "without an event"),
        (callback({"type": "message", "channel": "C1", "text": "x"}), "ts"),
        (callback({"type": "message", "ts": "1.2", "text": "x"}), "channel"),
        (callback(message("x", ts="yesterday")), "ts"),
        (callback(message("x" * (MAX_TEXT_CHARS + 1))), "characters"),
        (callback({"type": "mystery_event"}), "unsupported event type"),
        (callback({"type": "reaction_added", "reaction": "x", "user": "U1"}), "item"),
    ],
)
def test_bad_payloads_are_refused_with_a_reason(body: dict[str, Any], problem: str) -> None:
    with pytest.raises(PayloadError, match=problem):
        plan_event(body, BOT)


def test_events_heron_has_no_use_for_are_ignored_quietly() -> None:
    plan = plan_event(callback({"type": "assistant_thread_started"}), BOT)
    assert plan.actions == []
    assert plan.question is None
