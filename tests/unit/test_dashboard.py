"""The dashboard's pure parts: masking secrets, the depth worked back, histogram quantiles."""

from __future__ import annotations

import pytest

from heron.config import Config
from heron.queue.timings import Histogram
from heron.web.dashboard.auth import DashboardAuth
from heron.web.dashboard.masking import MASK, is_secret_key, mask_text, mask_value
from heron.web.dashboard.series import percentiles, quantile, with_depth


@pytest.mark.parametrize(
    "key",
    ["token", "bot_token", "SLACK_BOT_TOKEN", "accessToken", "client_secret", "Authorization",
     "X-Api-Key", "api_key", "apiKey", "password", "private_key", "Cookie", "x-slack-signature"],
)  # fmt: skip
def test_keys_that_name_secrets_are_masked(key: str) -> None:
    assert is_secret_key(key)
    assert mask_value({key: "value", "nested": [{key: {"deep": 1}}]}) == {
        key: MASK,
        "nested": [{key: MASK}],
    }


@pytest.mark.parametrize(
    "key",
    ["input_tokens", "authorizations", "api_app_id", "dedupe_key", "text", "user", "keyword"],
)
def test_ordinary_keys_are_shown(key: str) -> None:
    assert not is_secret_key(key)
    assert mask_value({key: 12}) == {key: 12}


def test_a_secret_key_with_no_value_stays_none() -> None:
    assert mask_value({"token": None}) == {"token": None}


@pytest.mark.parametrize(
    ("text", "shown"),
    [
        ("bot xoxb-123-456-abcdef here", f"bot {MASK} here"),
        ("app xapp-1-A0-123-abc", f"app {MASK}"),
        ("key sk-ant-api03-abcdefghijklmnop", f"key {MASK}"),
        ("gh ghp_abcdefghijklmnopqrstuvwxyz0123", f"gh {MASK}"),
        ("Authorization: Bearer abc.def-ghi", f"Authorization: {MASK}"),
        ("db postgresql://u:hunter2@db/heron down", "db postgresql://u:***@db/heron down"),
        ("see https://example.org/docs, line 3", "see https://example.org/docs, line 3"),
    ],
)  # fmt: skip
def test_credentials_in_text_are_masked_wherever_they_are(text: str, shown: str) -> None:
    assert mask_text(text) == shown
    assert mask_value({"text": text, "list": [text]}) == {"text": shown, "list": [shown]}


def test_depth_is_worked_back_from_now() -> None:
    minutes = [
        {"minute": "10:00", "enqueued": 0, "left_queue": 0},
        {"minute": "10:01", "enqueued": 5, "left_queue": 1},
        {"minute": "10:02", "enqueued": 2, "left_queue": 4},
    ]
    # now 2 outstanding: before 10:02 it was 2 - 2 + 4 = 4, before 10:01 it was 4 - 5 + 1 = 0.
    assert [m["depth"] for m in with_depth(minutes, 2)] == [0, 4, 2]
    assert minutes[0].keys() == {"minute", "enqueued", "left_queue"}  # input untouched


def test_depth_never_reads_below_zero() -> None:
    # A replay re-enters the queue without an enqueue: history alone cannot see it.
    minutes = [{"enqueued": 0, "left_queue": 0}, {"enqueued": 3, "left_queue": 0}]
    assert [m["depth"] for m in with_depth(minutes, 1)] == [0, 1]


def test_quantiles_interpolate_within_buckets() -> None:
    histogram = Histogram()
    assert quantile(histogram, 0.5) is None
    for _ in range(100):
        histogram.observe(0.2)  # bucket (0.1, 0.25]
    assert quantile(histogram, 0.5) == pytest.approx(0.175)
    assert 0.1 < quantile(histogram, 0.99) <= 0.25  # type: ignore[operator]
    histogram.observe(1000.0)  # beyond the last bound: read as that bound
    assert quantile(histogram, 1.0) == histogram.bounds[-1]
    shown = percentiles(histogram)
    assert shown["count"] == 101
    assert set(shown) == {"p50", "p95", "p99", "count"}


def test_access_rule_follows_the_host_and_the_token() -> None:
    def rule(**values: object) -> DashboardAuth | None:
        return DashboardAuth.from_config(Config(_env_file=None, **values))

    assert rule() == DashboardAuth(None)  # loopback: open to loopback names
    assert rule(heron_http_host="localhost") == DashboardAuth(None)
    assert rule(heron_http_host="::1") == DashboardAuth(None)
    assert rule(heron_http_host="0.0.0.0") is None  # reachable, no token: off
    assert rule(heron_http_host="0.0.0.0", heron_dashboard_token="  ") is None
    token = "x" * 20
    assert rule(heron_http_host="0.0.0.0", heron_dashboard_token=token) == DashboardAuth(token)
    assert rule(heron_dashboard_token=token) == DashboardAuth(token)  # set: always required
