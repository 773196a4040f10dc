"""Embedding providers behind one small interface.

Search code depends only on `Embedder`; the provider decides the dimension, and a change
of provider (its `name`) means re-embedding. A provider that can count its model's tokens
(`TokenWindow`) gets chunks that fill its window; others get chunks sized in characters.
`HashingEmbedder` needs no model, no key and no network: a lexical baseline, and the
deterministic provider the tests use. The local MiniLM (heron.docsearch.minilm) is the
default without a key; OpenAI with one.
"""

from __future__ import annotations

import hashlib
import math
import re
from collections.abc import Sequence
from itertools import pairwise
from typing import TYPE_CHECKING, Protocol, runtime_checkable

from heron.errors import ConfigError

if TYPE_CHECKING:
    from heron.config import Config

_TOKEN = re.compile(r"[\w]+", re.UNICODE)


@runtime_checkable
class Embedder(Protocol):
    """Turns texts into unit-length vectors of `dimensions` floats."""

    @property
    def name(self) -> str:
        """Identifies the model: stored with each vector, so a switch is noticed."""
        ...

    @property
    def dimensions(self) -> int: ...

    def embed(self, texts: Sequence[str]) -> list[list[float]]: ...


@runtime_checkable
class TokenWindow(Protocol):
    """An embedder that can measure text as its model does, so chunks can fill its window."""

    @property
    def max_tokens(self) -> int:
        """The most tokens of text one vector reads (the model's special tokens excluded);
        the rest of a longer text is cut off."""
        ...

    def token_starts(self, text: str) -> Sequence[int]:
        """Where each of the model's tokens of `text` starts (a `chunking.Measure`)."""
        ...


class HashingEmbedder:
    """Feature hashing of words and word pairs into a fixed-size, L2-normalised vector.

    Texts that share words point the same way; it knows no synonyms. Deterministic across
    processes and machines (sha1, not Python's salted hash()).
    """

    def __init__(self, dimensions: int = 384) -> None:
        if dimensions < 8:
            raise ValueError(f"dimensions must be at least 8, not {dimensions}")
        self._dimensions = dimensions

    @property
    def name(self) -> str:
        return f"hashing-{self._dimensions}"

    @property
    def dimensions(self) -> int:
        return self._dimensions

    def embed(self, texts: Sequence[str]) -> list[list[float]]:
        return [self._embed_one(text) for text in texts]

    def _embed_one(self, text: str) -> list[float]:
        vector = [0.0] * self._dimensions
        words = [w.lower() for w in _TOKEN.findall(text)]
        features = words + [f"{a} {b}" for a, b in pairwise(words)]
        for feature in features:
            digest = hashlib.sha1(feature.encode(), usedforsecurity=False).digest()
            index = int.from_bytes(digest[:4], "little") % self._dimensions
            vector[index] += 1.0 if digest[4] & 1 else -1.0
        norm = math.sqrt(sum(v * v for v in vector))
        return [v / norm for v in vector] if norm else vector


def make_embedder(config: Config) -> Embedder:
    """The provider HERON_EMBEDDING_PROVIDER names; `auto` is OpenAI when OPENAI_API_KEY is
    set (the seed's choice), else the local MiniLM."""
    provider = config.heron_embedding_provider
    key = config.openai_api_key
    if provider == "auto":
        provider = "openai" if key is not None else "local"
    if provider == "openai":
        if key is None:
            raise ConfigError(["OPENAI_API_KEY is required for HERON_EMBEDDING_PROVIDER=openai"])
        from heron.docsearch.openai_embedder import OpenAIEmbedder

        return OpenAIEmbedder(key.get_secret_value(), base_url=config.openai_base_url)
    if provider == "local":
        from heron.docsearch.minilm import MiniLMEmbedder

        return MiniLMEmbedder()
    return HashingEmbedder()
