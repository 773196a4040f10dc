"""The local model really runs (shipped tokenizer, packaged ONNX file, onnxruntime)."""

import math

import pytest

from heron.docsearch.embedding import Embedder, HashingEmbedder, make_embedder
from heron.docsearch.minilm import MAX_TOKENS, MiniLMEmbedder


@pytest.fixture(scope="module")
def model() -> MiniLMEmbedder:
    return MiniLMEmbedder()


def cosine(a, b):
    return sum(x * y for x, y in zip(a, b, strict=True))


def test_unit_vectors_of_384_dimensions(model):
    assert isinstance(model, Embedder)
    vectors = model.embed(["first", "a second, longer sentence"])
    assert [len(v) for v in vectors] == [384, 384]
    assert all(math.isclose(sum(x * x for x in v), 1.0, rel_tol=1e-4) for v in vectors)


def test_meaning_not_just_words(model):
    question, answer, other = model.embed(
        [
            "How do I shrink a bloated table?",
            "VACUUM FULL rewrites the table and returns unused space to the operating system.",
            "LISTEN and NOTIFY deliver messages between database sessions.",
        ]
    )
    assert cosine(question, answer) > cosine(question, other) + 0.15  # seen: 0.28 vs 0.04


def test_batches_and_padding_do_not_change_a_vector(model):
    alone = model.embed(["padding must not leak into the mean"])[0]
    batched = model.embed(["short", "padding must not leak into the mean", "x " * 400])[1]
    assert cosine(alone, batched) > 0.9999


def test_vectors_come_back_in_the_order_of_the_texts(model):
    texts = [f"{n} " + "word " * (60 - n) for n in range(40)]  # longest first
    vectors = model.embed(texts)
    assert [vectors[n] for n in (0, 20, 39)] == [model.embed([texts[n]])[0] for n in (0, 20, 39)]


def test_tokens_are_counted_as_the_model_reads_them(model):
    assert model.max_tokens == MAX_TOKENS - 2  # [CLS] and [SEP]
    starts = model.token_starts("Vacuuming reclaims space")
    assert starts == [0, 6, 10, 17, 19]  # vacuum ##ing reclaim ##s space
    assert len(model.token_starts("word " * 1000)) == 1000  # not truncated


def test_long_text_is_truncated_not_refused(model):
    (vector,) = model.embed(["word " * (MAX_TOKENS * 4)])
    assert len(vector) == 384


def test_provider_by_name():
    from heron.config import Config

    def provider(**values):
        return make_embedder(Config(_env_file=None, **values))

    assert isinstance(provider(heron_embedding_provider="local"), MiniLMEmbedder)
    assert isinstance(provider(heron_embedding_provider="hashing"), HashingEmbedder)
    assert isinstance(provider(heron_embedding_provider="auto"), MiniLMEmbedder)  # no key
