"""What happens to an event after a failed attempt: pure rules, no I/O."""

from __future__ import annotations

from dataclasses import dataclass
from typing import TYPE_CHECKING

from heron.database.models import AttemptOutcome, EventStatus

if TYPE_CHECKING:
    from heron.config import Config

MAX_ERROR_LENGTH = 8000


def truncate_error(message: str) -> str:
    """Error text as stored: bounded, so one huge traceback cannot bloat the table."""
    if len(message) <= MAX_ERROR_LENGTH:
        return message
    marker = "… [truncated]"
    return message[: MAX_ERROR_LENGTH - len(marker)] + marker


@dataclass(frozen=True, slots=True)
class RetryPolicy:
    """MAX_RETRY_COUNT retries, the n-th after base * 2^(n-1) seconds (10, 20, 40 by default)."""

    max_retries: int = 3
    backoff_base_seconds: float = 10.0

    @classmethod
    def from_config(cls, config: Config) -> RetryPolicy:
        """MAX_RETRY_COUNT and RETRY_BACKOFF_BASE_SECONDS."""
        return cls(config.max_retry_count, config.retry_backoff_base_seconds)

    def backoff(self, retry_number: int) -> float:
        """Seconds to wait before retry number `retry_number` (1-based)."""
        if retry_number < 1:
            raise ValueError("retry numbers start at 1")
        return float(self.backoff_base_seconds * 2 ** (retry_number - 1))

    def after_failure(self, retry_count: int, *, permanent: bool = False) -> RetryDecision:
        """The decision for an event that has had `retry_count` retries and just failed again."""
        if permanent or retry_count >= self.max_retries:
            return RetryDecision(EventStatus.FAILED, retry_count, 0.0, AttemptOutcome.FAILED)
        retry_number = retry_count + 1
        return RetryDecision(
            EventStatus.PENDING, retry_number, self.backoff(retry_number), AttemptOutcome.RETRY
        )

    def after_lease_expiry(self, retry_count: int) -> RetryDecision:
        """An expired lease counts as an attempt, but the event is claimable again at once."""
        if retry_count >= self.max_retries:
            return RetryDecision(EventStatus.FAILED, retry_count, 0.0, AttemptOutcome.LEASE_EXPIRED)
        return RetryDecision(
            EventStatus.PENDING, retry_count + 1, 0.0, AttemptOutcome.LEASE_EXPIRED
        )


@dataclass(frozen=True, slots=True)
class RetryDecision:
    """The event's next status, its retry count and how long it stays invisible."""

    status: EventStatus
    retry_count: int
    delay_seconds: float
    outcome: AttemptOutcome

    @property
    def final(self) -> bool:
        return self.status is EventStatus.FAILED
