import asyncio
import re
from datetime import UTC, datetime
from importlib import resources

import pytest

from heron.database.models import Event
from heron.errors import PermanentError
from heron.queue import queries
from heron.queue.handlers import HandlerRegistry, default_registry


def test_every_named_query_loads_and_uses_only_named_parameters():
    text = resources.files("heron.queue.sql").joinpath("queries.sql").read_text()
    names = re.findall(r"^-- name: (\w+)", text, re.MULTILINE)
    assert len(names) == len(set(names)) >= 10
    for name in names:
        body = queries.query(name)
        assert body
        assert not body.endswith(";")
        assert "%s" not in body, f"{name} must use named parameters"


def test_every_write_to_a_claimed_event_is_fenced_by_its_lease():
    for name in ("complete_and_claim", "end_attempt", "heartbeat", "release"):
        assert "lease_id" in queries.query(name), name


def test_claim_skips_locked_rows():
    assert "FOR UPDATE SKIP LOCKED" in queries.query("complete_and_claim")


def test_unknown_query_names_are_reported():
    with pytest.raises(KeyError, match="nope"):
        queries.query("nope")


def event(event_type: str) -> Event:
    now = datetime.now(UTC)
    return Event(
        id=1,
        event_type=event_type,
        payload={},
        status="processing",
        created_at=now,
        updated_at=now,
        claimed_at=now,
        claimed_by="w",
        completed_at=None,
        retry_count=0,
        error_message=None,
        visibility_timeout=now,
        dedupe_key=None,
        run_after=now,
        lease_id=None,
        attempts=1,
    )


def test_registry_dispatches_sync_and_async_handlers():
    registry = HandlerRegistry()
    seen = []
    registry.register("sync", lambda e: seen.append(("sync", e.id)))

    @registry.handler("async")
    async def handle(e: Event) -> str:
        seen.append(("async", e.id))
        return "ok"

    asyncio.run(registry(event("sync")))
    assert asyncio.run(registry(event("async"))) == "ok"
    assert seen == [("sync", 1), ("async", 1)]


def test_unknown_event_types_fail_for_good():
    with pytest.raises(PermanentError, match="no handler for event type 'mystery'"):
        asyncio.run(default_registry()(event("mystery")))


def test_a_type_cannot_be_registered_twice():
    registry = HandlerRegistry()
    registry.register("x", print)
    with pytest.raises(ValueError, match="already registered"):
        registry.register("x", print)
