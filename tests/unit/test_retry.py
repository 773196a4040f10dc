import random

import pytest

from heron.database.models import AttemptOutcome, EventStatus
from heron.queue.backoff import reconnect_delays
from heron.queue.retry import MAX_ERROR_LENGTH, RetryPolicy, truncate_error


def test_backoff_doubles_from_base():
    policy = RetryPolicy(max_retries=3, backoff_base_seconds=10)
    assert [policy.backoff(n) for n in (1, 2, 3)] == [10, 20, 40]


def test_three_retries_then_failed_for_good():
    policy = RetryPolicy(max_retries=3, backoff_base_seconds=10)
    decisions = [policy.after_failure(retry_count) for retry_count in range(4)]
    assert [(d.status, d.retry_count, d.delay_seconds) for d in decisions] == [
        (EventStatus.PENDING, 1, 10),
        (EventStatus.PENDING, 2, 20),
        (EventStatus.PENDING, 3, 40),
        (EventStatus.FAILED, 3, 0),
    ]
    assert decisions[-1].final
    assert decisions[-1].outcome is AttemptOutcome.FAILED


def test_permanent_error_skips_retries():
    decision = RetryPolicy().after_failure(0, permanent=True)
    assert decision.status is EventStatus.FAILED
    assert decision.retry_count == 0


def test_zero_retries_fails_at_once():
    assert RetryPolicy(max_retries=0).after_failure(0).final


def test_lease_expiry_counts_as_attempt_but_requeues_at_once():
    policy = RetryPolicy(max_retries=3, backoff_base_seconds=10)
    decision = policy.after_lease_expiry(1)
    assert decision.status is EventStatus.PENDING
    assert decision.retry_count == 2
    assert decision.delay_seconds == 0
    assert decision.outcome is AttemptOutcome.LEASE_EXPIRED
    assert policy.after_lease_expiry(3).status is EventStatus.FAILED


def test_retry_numbers_start_at_one():
    with pytest.raises(ValueError, match="start at 1"):
        RetryPolicy().backoff(0)


def test_long_errors_are_truncated():
    assert truncate_error("short") == "short"
    long = truncate_error("x" * 100_000)
    assert len(long) == MAX_ERROR_LENGTH
    assert long.endswith("[truncated]")


def test_reconnect_delays_double_up_to_cap_with_jitter():
    delays = reconnect_delays(first=0.1, cap=1.0, jitter=0.0)
    assert [round(next(delays), 3) for _ in range(6)] == [0.1, 0.2, 0.4, 0.8, 1.0, 1.0]
    jittered = reconnect_delays(first=1.0, cap=1.0, jitter=0.2, rng=random.Random(1))
    values = [next(jittered) for _ in range(50)]
    assert all(0.8 <= v <= 1.2 for v in values)
    assert len(set(values)) > 1
