"""What each answer cost, and the limits that keep the bill unsurprising.

Prices come from genai-prices (the table pydantic-ai itself uses); a model it does not
know is recorded with its tokens and a NULL cost rather than a guess.
"""

from __future__ import annotations

from dataclasses import dataclass
from decimal import Decimal
from typing import Any

import structlog
from genai_prices import Usage, calc_price
from psycopg_pool import AsyncConnectionPool

from heron.database.named_sql import NamedQueries

log = structlog.get_logger(__name__)
query = NamedQueries("heron.agent.sql", "usage.sql")


@dataclass(frozen=True, slots=True)
class RunUsage:
    """One agent run, as recorded in agent_usage."""

    model: str
    outcome: str
    input_tokens: int = 0
    output_tokens: int = 0
    cache_read_tokens: int = 0
    cache_write_tokens: int = 0
    requests: int = 0
    tool_calls: int = 0
    duration_ms: int = 0
    error: str | None = None
    priced: Decimal | None = None  # pydantic-ai's own genai-prices figure, when it has one

    @property
    def cost_usd(self) -> Decimal | None:
        return self.priced if self.priced is not None else estimate_cost(self)


def estimate_cost(usage: RunUsage) -> Decimal | None:
    """USD for this run from the price table; None when the model is unknown to it."""
    provider, _, name = usage.model.partition(":")
    if not name:
        provider, name = "", provider
    try:
        price = calc_price(
            Usage(
                input_tokens=usage.input_tokens,
                output_tokens=usage.output_tokens,
                cache_read_tokens=usage.cache_read_tokens,
                cache_write_tokens=usage.cache_write_tokens,
            ),
            model_ref=name,
            provider_id=provider or None,
        )
    except LookupError:
        return None
    return Decimal(str(price.total_price))


@dataclass(frozen=True, slots=True)
class Limits:
    """Zero or None turns a limit off."""

    questions_per_user_per_hour: int = 30
    daily_spend_usd: Decimal | None = Decimal("20")


class Ledger:
    """Writes usage rows and answers "may this user ask the model now?"."""

    def __init__(self, pool: AsyncConnectionPool[Any], limits: Limits) -> None:
        self.pool = pool
        self.limits = limits

    async def record(
        self, usage: RunUsage, *, event_id: int | None, user_id: str | None, channel_id: str | None
    ) -> None:
        params = {
            "event_id": event_id,
            "user_id": user_id,
            "channel_id": channel_id,
            "model": usage.model,
            "outcome": usage.outcome,
            "input_tokens": usage.input_tokens,
            "output_tokens": usage.output_tokens,
            "cache_read_tokens": usage.cache_read_tokens,
            "cache_write_tokens": usage.cache_write_tokens,
            "requests": usage.requests,
            "tool_calls": usage.tool_calls,
            "duration_ms": usage.duration_ms,
            "cost_usd": usage.cost_usd,
            "error": usage.error,
        }
        async with self.pool.connection() as conn:
            await conn.execute(query("record"), params)

    async def refusal(self, user_id: str, event_id: int | None = None) -> str | None:
        """A polite sentence when a limit stops this question, else None."""
        cap = self.limits.daily_spend_usd
        if cap:
            spent = await self._value("spent_today", {})
            if Decimal(str(spent)) >= cap:
                log.warning("daily spend cap reached", spent_usd=str(spent), cap_usd=str(cap))
                return (
                    "I have used today's budget for answering questions, so I cannot ask the "
                    "model now. I will be back tomorrow (UTC); an admin can raise "
                    "`HERON_DAILY_SPEND_LIMIT_USD`."
                )
        per_hour = self.limits.questions_per_user_per_hour
        if per_hour:
            params = {"user_id": user_id, "event_id": event_id or 2**62}
            asked = await self._value("user_questions", params)
            if int(asked) >= per_hour:
                return (
                    f"You have asked me {per_hour} questions in the last hour, which is the "
                    "limit here. Please try again in a little while."
                )
        return None

    async def _value(self, name: str, params: dict[str, Any]) -> Any:
        async with self.pool.connection() as conn:
            row = await (await conn.execute(query(name), params)).fetchone()
        assert row is not None
        return next(iter(row.values()))
