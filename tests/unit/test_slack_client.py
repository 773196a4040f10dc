"""slack_sdk configuration that Heron adds: Retry-After read correctly, failures counted."""

from __future__ import annotations

from collections import Counter
from typing import Any

import pytest
from slack_sdk.errors import SlackApiError

from heron.config import Config
from heron.slack.client import API_ERRORS, retry_after, web_client
from heron.testing.slack import SlackFake


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


async def test_every_failed_call_is_counted_by_method_and_error() -> None:
    """Retried failures count too: /metrics should show a Slack that keeps refusing."""
    with SlackFake() as fake:
        config = Config(_env_file=None, slack_bot_token=fake.bot_token, slack_api_url=fake.api_url)
        client = web_client(config)
        general = fake.add_channel("metrics").id
        before = API_ERRORS.copy()
        fake.fail_next("chat.postMessage", status=429, retry_after=0)
        fake.fail_next("chat.postMessage", status=503)
        await client.chat_postMessage(channel=general, text="arrives after two failures")
        with pytest.raises(SlackApiError):
            await client.conversations_info(channel="C_NOT_THERE")
        counted = API_ERRORS - before
    assert counted == Counter(
        {
            ("chat.postMessage", "ratelimited"): 1,
            ("chat.postMessage", "internal_error"): 1,  # the 503's body
            ("conversations.info", "channel_not_found"): 1,
        }
    )
