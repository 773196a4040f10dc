"""heron.testing.anthropic against the real anthropic SDK and pydantic-ai, over loopback.

Every test goes through a real client, so a fake that sent the wrong JSON, the wrong SSE
framing or the wrong error shape would fail here rather than in Heron's agent tests.
"""

from __future__ import annotations

import asyncio
import json
import threading
import urllib.error
import urllib.request
from collections.abc import Iterator
from decimal import Decimal
from typing import Any

import anthropic
import pytest
from anthropic import Anthropic, AsyncAnthropic
from anthropic.types import Message, MessageParam, TextBlock, ToolParam, ToolUseBlock
from pydantic_ai import Agent
from pydantic_ai.exceptions import (
    ModelConnectionError,
    ModelHTTPError,
    ModelOverloadedError,
    ModelRateLimitError,
    ModelTimeoutError,
    UsageLimitExceeded,
)
from pydantic_ai.models.anthropic import AnthropicModel
from pydantic_ai.providers.anthropic import AnthropicProvider
from pydantic_ai.settings import ModelSettings
from pydantic_ai.usage import UsageLimits

from heron.testing.anthropic import (
    FakeAnthropic,
    RecordedRequest,
    Reply,
    ToolCall,
    Usage,
    drop,
    error,
    estimate_tokens,
    hang,
    text,
    tool_calls,
    tool_use,
)

# Not claude-sonnet-4-5: anthropic 2.14 warns (DeprecationWarning) on it, an error here.
MODEL = "claude-sonnet-4-6"
HELLO: list[MessageParam] = [{"role": "user", "content": "Hello"}]


@pytest.fixture
def fake() -> Iterator[FakeAnthropic]:
    with FakeAnthropic() as running:
        yield running


def sync_client(fake: FakeAnthropic, **options: Any) -> Anthropic:
    return Anthropic(base_url=fake.base_url, api_key=fake.api_key, **options)


def async_client(fake: FakeAnthropic, **options: Any) -> AsyncAnthropic:
    return AsyncAnthropic(base_url=fake.base_url, api_key=fake.api_key, **options)


def text_of(message: Message) -> str:
    return "".join(block.text for block in message.content if isinstance(block, TextBlock))


# -- the anthropic SDK ------------------------------------------------------------------------


def test_json_text_echoes_the_model_and_reports_scripted_usage(fake: FakeAnthropic) -> None:
    fake.script(text("Hello from the fake", usage=Usage(input_tokens=12, output_tokens=4)))
    with sync_client(fake, max_retries=0) as client:
        message = client.messages.create(
            model=MODEL, max_tokens=256, system="Be brief.", messages=HELLO
        )

    assert message.model == MODEL
    assert [block.type for block in message.content] == ["text"]
    assert text_of(message) == "Hello from the fake"
    assert message.stop_reason == "end_turn"
    assert (message.usage.input_tokens, message.usage.output_tokens) == (12, 4)
    request = fake.last_request
    assert (request.model, request.stream, request.max_tokens) == (MODEL, False, 256)
    assert request.system_prompt == "Be brief."
    assert request.messages == HELLO
    assert request.headers["authorization"] == "[redacted]"
    assert fake.api_key not in json.dumps(dict(request.headers))
    assert "anthropic-version" in request.headers


def test_streamed_text_arrives_delta_by_delta(fake: FakeAnthropic) -> None:
    fake.script(text("Leases last five minutes", stop_reason="max_tokens"))
    with (
        sync_client(fake, max_retries=0) as client,
        client.messages.stream(model=MODEL, max_tokens=5, messages=HELLO) as stream,
    ):
        deltas = list(stream.text_stream)
        final = stream.get_final_message()

    assert deltas == ["Leases ", "last ", "five ", "minutes"]
    assert text_of(final) == "Leases last five minutes"
    assert final.stop_reason == "max_tokens"
    assert final.usage.output_tokens == estimate_tokens("Leases last five minutes")
    assert final.usage.input_tokens == fake.last_request.input_tokens
    assert fake.last_request.stream


async def test_tool_use_round_trip_with_a_responder(fake: FakeAnthropic) -> None:
    def respond(request: RecordedRequest) -> Reply:
        if not request.tool_results:
            return tool_use("get_weather", {"city": "Paris"}, text="Let me look that up.")
        return text(f"The tool said: {request.tool_results[0].content}")

    fake.responder = respond
    tools: list[ToolParam] = [
        {
            "name": "get_weather",
            "description": "Weather for a city",
            "input_schema": {"type": "object", "properties": {"city": {"type": "string"}}},
        }
    ]
    async with async_client(fake, max_retries=0) as client:
        async with client.messages.stream(
            model=MODEL,
            max_tokens=512,
            messages=HELLO,
            tools=tools,
        ) as stream:
            first = await stream.get_final_message()
        call = first.content[1]
        assert first.stop_reason == "tool_use"
        assert text_of(first) == "Let me look that up."
        assert call.type == "tool_use"
        assert (call.name, call.input) == ("get_weather", {"city": "Paris"})

        second = await client.messages.create(
            model=MODEL,
            max_tokens=512,
            tools=tools,
            messages=[
                *HELLO,
                {"role": "assistant", "content": first.content},
                {
                    "role": "user",
                    "content": [{"type": "tool_result", "tool_use_id": call.id, "content": "18 C"}],
                },
            ],
        )

    assert text_of(second) == "The tool said: 18 C"
    request = fake.last_request
    assert request.tool_names == ["get_weather"]
    assert [(r.tool_use_id, r.content, r.is_error) for r in request.tool_results] == [
        (call.id, "18 C", False)
    ]
    assert request.tool_uses[0]["id"] == call.id
    assert request.last_user_text == "Hello"


async def test_parallel_tool_calls_keep_scripted_ids_and_invent_the_others(
    fake: FakeAnthropic,
) -> None:
    fake.script(tool_calls(ToolCall("search", {"q": "lease"}, id="toolu_1"), ToolCall("now")))
    async with async_client(fake, max_retries=0) as client:
        message = await client.messages.create(model=MODEL, max_tokens=64, messages=HELLO)

    ids = [block.id for block in message.content if isinstance(block, ToolUseBlock)]
    assert [block.type for block in message.content] == ["tool_use", "tool_use"]
    assert ids[0] == "toolu_1"
    assert ids[1].startswith("toolu_")
    assert ids[1] != ids[0]


def test_rate_limit_with_retry_after_is_retried_by_the_sdk(fake: FakeAnthropic) -> None:
    fake.script(error(429, retry_after=0.01), text("Back again"))
    with sync_client(fake, max_retries=1) as client:
        message = client.messages.create(model=MODEL, max_tokens=64, messages=HELLO)

    assert text_of(message) == "Back again"
    first, second = fake.requests
    assert (
        first.headers["x-stainless-retry-count"],
        second.headers["x-stainless-retry-count"],
    ) == (
        "0",
        "1",
    )


def test_rate_limit_error_shape_when_retries_are_off(fake: FakeAnthropic) -> None:
    fake.script(error(429, "slow down", retry_after=3))
    with (
        sync_client(fake, max_retries=0) as client,
        pytest.raises(anthropic.RateLimitError) as raised,
    ):
        client.messages.create(model=MODEL, max_tokens=64, messages=HELLO)

    assert raised.value.response.headers["retry-after"] == "3"
    assert raised.value.type == "rate_limit_error"
    assert raised.value.api_message == "slow down"
    assert raised.value.request_id is not None
    assert len(fake.requests) == 1


async def test_overloaded_surfaces_as_the_sdk_error_class(fake: FakeAnthropic) -> None:
    fake.script(error(529))
    async with async_client(fake, max_retries=0) as client:
        with pytest.raises(anthropic.OverloadedError) as raised:
            await client.messages.create(model=MODEL, max_tokens=64, messages=HELLO)

    assert raised.value.status_code == 529
    assert raised.value.body == {
        "type": "error",
        "error": {"type": "overloaded_error", "message": "Overloaded"},
        "request_id": raised.value.request_id,
    }


async def test_a_hang_trips_the_client_timeout(fake: FakeAnthropic) -> None:
    fake.script(hang(30))
    async with async_client(fake, max_retries=0, timeout=0.2) as client:
        with pytest.raises(anthropic.APITimeoutError):
            await client.messages.create(model=MODEL, max_tokens=64, messages=HELLO)


def test_a_short_hang_then_answers(fake: FakeAnthropic) -> None:
    fake.script(hang(0.05, then=text("Sorry for the wait")))
    with sync_client(fake, max_retries=0) as client:
        message = client.messages.create(model=MODEL, max_tokens=64, messages=HELLO)

    assert text_of(message) == "Sorry for the wait"


def test_a_dropped_connection_is_a_connection_error(fake: FakeAnthropic) -> None:
    fake.script(drop())
    with sync_client(fake, max_retries=0) as client, pytest.raises(anthropic.APIConnectionError):
        client.messages.create(model=MODEL, max_tokens=64, messages=HELLO)


def test_a_wrong_key_is_refused_without_taking_a_reply(fake: FakeAnthropic) -> None:
    fake.script(text("for the right key only"))
    with (
        Anthropic(base_url=fake.base_url, api_key="sk-ant-wrong", max_retries=0) as client,
        pytest.raises(anthropic.AuthenticationError) as raised,
    ):
        client.messages.create(model=MODEL, max_tokens=64, messages=HELLO)

    assert raised.value.type == "authentication_error"
    assert not fake.last_request.authorized
    assert fake.pending == 1


def test_the_x_api_key_header_is_accepted_too(fake: FakeAnthropic) -> None:
    fake.script(text("Hi"))
    with sync_client(
        fake, max_retries=0, default_headers={"Authorization": anthropic.Omit()}
    ) as client:
        client.messages.create(
            model=MODEL, max_tokens=8, messages=HELLO, extra_headers={"x-api-key": fake.api_key}
        )

    assert fake.last_request.authorized
    assert fake.last_request.headers["x-api-key"] == "[redacted]"
    assert "authorization" not in fake.last_request.headers


def test_an_unscripted_request_fails_loudly_and_default_can_change_that() -> None:
    with FakeAnthropic() as strict, sync_client(strict, max_retries=2) as client:
        with pytest.raises(anthropic.BadRequestError, match="no reply for this request"):
            client.messages.create(model=MODEL, max_tokens=8, messages=HELLO)
        assert len(strict.requests) == 1  # a 400: the SDK does not retry it

    with FakeAnthropic(default=text("Demo answer")) as demo, sync_client(demo) as client:
        answers = [
            text_of(client.messages.create(model=MODEL, max_tokens=8, messages=HELLO))
            for _ in range(2)
        ]
    assert answers == ["Demo answer", "Demo answer"]


def test_count_tokens_estimates_without_taking_a_reply(fake: FakeAnthropic) -> None:
    fake.script(text("kept"))
    with sync_client(fake, max_retries=0) as client:
        counted = client.messages.count_tokens(model=MODEL, messages=HELLO)

    assert counted.input_tokens == fake.token_count_requests[0].input_tokens > 0
    assert fake.pending == 1
    assert fake.requests == []


def test_protocol_errors_have_anthropics_shape(fake: FakeAnthropic) -> None:
    def post(path: str, body: bytes, headers: dict[str, str]) -> tuple[int, dict[str, Any]]:
        request = urllib.request.Request(fake.base_url + path, body, headers, method="POST")
        try:
            with urllib.request.urlopen(request, timeout=5) as response:
                return response.status, json.loads(response.read())
        except urllib.error.HTTPError as failure:
            with failure:
                return failure.code, json.loads(failure.read())

    good = {"x-api-key": fake.api_key, "anthropic-version": "2023-06-01"}
    body = json.dumps({"model": MODEL, "messages": HELLO}).encode()
    cases = [
        ("/v1/messages", body, {"anthropic-version": "2023-06-01"}, 401, "authentication_error"),
        ("/v1/messages", body, {"x-api-key": fake.api_key}, 400, "invalid_request_error"),
        ("/v1/messages", b"{not json", good, 400, "invalid_request_error"),
        ("/v1/messages", body, good, 400, "invalid_request_error"),  # no max_tokens
        ("/v1/complete", body, good, 404, "not_found_error"),
    ]
    for path, payload, headers, status, kind in cases:
        got_status, got = post(path, payload, headers)
        assert (got_status, got["type"], got["error"]["type"]) == (status, "error", kind)
    assert fake.pending == 0


def test_wait_for_requests_sees_a_request_still_in_flight(fake: FakeAnthropic) -> None:
    fake.script(hang(10, then=text("done")))
    outcome: list[BaseException] = []

    def call(client: Anthropic) -> None:
        try:
            client.messages.create(model=MODEL, max_tokens=8, messages=HELLO)
        except anthropic.APIConnectionError as failure:
            outcome.append(failure)

    with sync_client(fake, max_retries=0) as client:
        caller = threading.Thread(target=call, args=(client,))
        caller.start()
        (request,) = fake.wait_for_requests(1, timeout=5)
        assert request.messages == HELLO
        with pytest.raises(TimeoutError, match="1 of 2"):
            fake.wait_for_requests(2, timeout=0.05)
        fake.stop()  # ends the hang: the caller sees the connection close unanswered
        caller.join(timeout=5)
    assert not caller.is_alive()
    assert len(outcome) == 1


async def test_wait_for_requests_async_does_not_block_the_loop(fake: FakeAnthropic) -> None:
    fake.script(text("Hi"))
    async with async_client(fake, max_retries=0) as client:
        call = asyncio.create_task(
            client.messages.create(model=MODEL, max_tokens=8, messages=HELLO)
        )
        (request,) = await fake.wait_for_requests_async(1, timeout=5)
        message = await call

    assert request.model == MODEL
    assert text_of(message) == "Hi"


def test_stop_is_safe_twice_and_before_start() -> None:
    never_started = FakeAnthropic()
    never_started.stop()
    never_started.stop()
    with pytest.raises(RuntimeError, match="start"):
        _ = never_started.base_url

    with FakeAnthropic() as fake:
        fake.start()  # already running: nothing happens
    fake.stop()
    with pytest.raises(RuntimeError, match="runs once"):
        fake.start()


# -- pydantic-ai ------------------------------------------------------------------------------


def lookup(term: str) -> str:
    """Look a term up in the team glossary."""
    return f"{term}: a claim on an event that expires after 300 s"


def pydantic_agent(client: AsyncAnthropic) -> Agent[None, str]:
    model = AnthropicModel(MODEL, provider=AnthropicProvider(anthropic_client=client))
    return Agent(model, system_prompt="You are Heron.", tools=[lookup])


async def test_agent_runs_a_tool_and_answers_with_its_result(fake: FakeAnthropic) -> None:
    fake.script(
        tool_use("lookup", {"term": "lease"}, usage=Usage(input_tokens=100, output_tokens=20)),
        text("A lease expires after 300 s.", usage=Usage(input_tokens=150, output_tokens=30)),
    )
    async with async_client(fake, max_retries=0) as client:
        # max_tokens under the SDK's non-streaming limit, so agent.run() sends plain JSON
        result = await pydantic_agent(client).run(
            "What is a lease?", model_settings={"max_tokens": 1024}
        )

    assert result.output == "A lease expires after 300 s."
    first, second = fake.requests
    assert (first.stream, second.stream) == (False, False)
    assert first.tool_names == ["lookup"]
    assert first.last_user_text == "What is a lease?"
    assert first.system_prompt.endswith("You are Heron.")
    (tool_result,) = second.tool_results
    assert tool_result.content == lookup("lease")
    assert tool_result.tool_use_id == second.tool_uses[0]["id"]
    usage = result.usage
    assert (usage.input_tokens, usage.output_tokens) == (250, 50)
    assert (usage.requests, usage.tool_calls) == (2, 1)
    assert usage.cost is not None
    assert usage.cost > Decimal(0)


async def test_agent_run_stream_yields_text_incrementally(fake: FakeAnthropic) -> None:
    fake.script(text(["Leases ", "are ", "fenced."], usage=Usage(input_tokens=40, output_tokens=3)))
    async with async_client(fake, max_retries=0) as client:
        agent = pydantic_agent(client)
        async with agent.run_stream("Explain leases") as run:
            seen = [chunk async for chunk in run.stream_text(debounce_by=None)]
            usage = run.usage

    assert seen == ["Leases ", "Leases are ", "Leases are fenced."]
    assert fake.last_request.stream
    assert (usage.input_tokens, usage.output_tokens, usage.requests) == (40, 3, 1)


async def test_agent_from_a_model_string_and_the_environment(
    fake: FakeAnthropic, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("ANTHROPIC_BASE_URL", fake.base_url)
    monkeypatch.setenv("ANTHROPIC_API_KEY", fake.api_key)
    fake.script(text("Configured from the environment"))
    agent = Agent(f"anthropic:{MODEL}")

    result = await agent.run("Hi")

    assert result.output == "Configured from the environment"
    assert fake.last_request.authorized
    assert fake.last_request.stream  # default max_tokens is over the SDK's non-streaming limit


async def test_agent_gets_sdk_retries_on_429_and_adds_none_of_its_own(fake: FakeAnthropic) -> None:
    fake.script(error(429, retry_after=0.01), text("Made it"))
    async with async_client(fake, max_retries=1) as client:
        agent = pydantic_agent(client)
        assert (await agent.run("Hi")).output == "Made it"
        assert len(fake.requests) == 2

        fake.script(error(429, retry_after=7), error(529), error(529, in_stream=True))
        settings: ModelSettings = {"max_retries": 0}  # per request, over the client's own
        with pytest.raises(ModelRateLimitError) as limited:
            await agent.run("Hi", model_settings=settings)
        with pytest.raises(ModelOverloadedError) as overloaded:
            await agent.run("Hi", model_settings=settings)
        with pytest.raises(ModelOverloadedError) as mid_stream:
            await agent.run("Hi", model_settings=settings)

    assert len(fake.requests) == 5
    assert isinstance(limited.value, ModelHTTPError)
    assert (limited.value.status_code, limited.value.retry_after) == (429, 7.0)
    assert isinstance(overloaded.value, ModelHTTPError)
    assert (overloaded.value.status_code, overloaded.value.in_stream) == (529, False)
    assert isinstance(mid_stream.value, ModelHTTPError)
    assert (mid_stream.value.status_code, mid_stream.value.in_stream) == (529, True)


async def test_agent_timeouts_and_drops_are_connection_errors(fake: FakeAnthropic) -> None:
    fake.script(hang(30), drop())
    async with async_client(fake, max_retries=0) as client:
        agent = pydantic_agent(client)
        with pytest.raises(ModelTimeoutError):
            await agent.run("Hi", model_settings={"timeout": 0.2})
        with pytest.raises(ModelConnectionError) as dropped:
            await agent.run("Hi")
    assert not isinstance(dropped.value, ModelTimeoutError)


async def test_agent_counts_tokens_first_when_usage_limits_ask(fake: FakeAnthropic) -> None:
    fake.script(text("Within budget"))
    async with async_client(fake, max_retries=0) as client:
        agent = pydantic_agent(client)
        generous = UsageLimits(input_tokens_limit=100_000, count_tokens_before_request=True)
        assert (await agent.run("Hi", usage_limits=generous)).output == "Within budget"

        stingy = UsageLimits(input_tokens_limit=5, count_tokens_before_request=True)
        with pytest.raises(UsageLimitExceeded):
            await agent.run("Hi", usage_limits=stingy)

    assert len(fake.token_count_requests) == 2
    assert len(fake.requests) == 1  # the over-budget run never sent its request
