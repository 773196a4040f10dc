import math

import pytest

from heron.docsearch.embedding import Embedder, HashingEmbedder


def cosine(a, b):
    return sum(x * y for x, y in zip(a, b, strict=True))


def test_vectors_have_the_declared_dimension_and_unit_length():
    embedder = HashingEmbedder(64)
    assert isinstance(embedder, Embedder)
    (vector,) = embedder.embed(["create an index concurrently"])
    assert len(vector) == 64
    assert math.isclose(sum(v * v for v in vector), 1.0)


def test_shared_words_score_higher_than_unrelated_text():
    embedder = HashingEmbedder()
    query, near, far = embedder.embed(
        [
            "vacuum full locks the table",
            "VACUUM FULL takes an exclusive lock on the table",
            "listen and notify deliver messages between sessions",
        ]
    )
    assert cosine(query, near) > cosine(query, far) + 0.2


def test_deterministic_and_named_by_dimension():
    assert HashingEmbedder(32).embed(["x y"]) == HashingEmbedder(32).embed(["x y"])
    assert HashingEmbedder(32).name != HashingEmbedder(64).name


def test_empty_text_is_a_zero_vector_and_tiny_dimensions_are_refused():
    assert HashingEmbedder(16).embed([""]) == [[0.0] * 16]
    with pytest.raises(ValueError, match="at least 8"):
        HashingEmbedder(4)
