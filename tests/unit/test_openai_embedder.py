"""The real OpenAI SDK against the loopback fake of the Embeddings API."""

from __future__ import annotations

import pytest

from heron.config import Config
from heron.docsearch.embedding import Embedder, HashingEmbedder, make_embedder
from heron.docsearch.openai_embedder import BATCH, OpenAIEmbedder
from heron.errors import ConfigError
from heron.testing.openai import FakeOpenAI


@pytest.fixture
def fake():
    with FakeOpenAI() as server:
        yield server


def test_vectors_in_input_order_across_batches(fake):
    embedder = OpenAIEmbedder(fake.api_key, base_url=fake.base_url)
    texts = [f"passage {i}" for i in range(BATCH + 3)]
    vectors = embedder.embed(texts)
    assert isinstance(embedder, Embedder)
    assert len(vectors) == BATCH + 3
    assert all(len(v) == embedder.dimensions == 1536 for v in vectors)
    assert vectors[5] == HashingEmbedder(1536).embed(["passage 5"])[0]
    assert [len(r["input"]) for r in fake.requests] == [BATCH, 3]
    assert {r["model"] for r in fake.requests} == {"text-embedding-3-small"}


def test_rate_limits_are_retried(fake):
    fake.fail_next(429, retry_after=0)
    fake.fail_next(503, retry_after=0)
    (vector,) = OpenAIEmbedder(fake.api_key, base_url=fake.base_url).embed(["hello"])
    assert len(vector) == 1536
    assert len(fake.requests) == 3


def test_a_wrong_key_is_an_error_not_a_retry_loop(fake):
    import openai

    with pytest.raises(openai.AuthenticationError):
        OpenAIEmbedder("sk-wrong", base_url=fake.base_url).embed(["x"])
    assert len(fake.requests) == 1


def test_auto_picks_openai_when_a_key_is_set_and_openai_needs_one(fake):
    chosen = make_embedder(
        Config(_env_file=None, openai_api_key=fake.api_key, openai_base_url=fake.base_url)
    )
    assert chosen.name == "openai-text-embedding-3-small"
    with pytest.raises(ConfigError, match="OPENAI_API_KEY is required"):
        make_embedder(Config(_env_file=None, heron_embedding_provider="openai"))
    with pytest.raises(ConfigError, match="OPENAI_API_KEY is required"):
        Config(_env_file=None, heron_embedding_provider="openai").validate()


def test_unknown_models_are_refused():
    with pytest.raises(ValueError, match="unknown OpenAI embedding model"):
        OpenAIEmbedder("k", model="ada-001")
