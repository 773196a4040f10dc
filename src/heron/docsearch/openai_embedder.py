"""OpenAI embeddings (text-embedding-3-small, the seed's choice) when OPENAI_API_KEY is set."""

from __future__ import annotations

from collections.abc import Sequence

from openai import OpenAI

BATCH = 256  # inputs per request, well under the API's limit
MODEL_DIMENSIONS = {"text-embedding-3-small": 1536, "text-embedding-3-large": 3072}


class OpenAIEmbedder:
    """Vectors from the OpenAI Embeddings API; the SDK retries 429/5xx with backoff."""

    def __init__(
        self,
        api_key: str,
        *,
        model: str = "text-embedding-3-small",
        base_url: str | None = None,
        max_retries: int = 5,
    ) -> None:
        if model not in MODEL_DIMENSIONS:
            known = ", ".join(MODEL_DIMENSIONS)
            raise ValueError(f"unknown OpenAI embedding model {model!r}; use one of {known}")
        self.model = model
        self._client = OpenAI(api_key=api_key, base_url=base_url, max_retries=max_retries)

    @property
    def name(self) -> str:
        return f"openai-{self.model}"

    @property
    def dimensions(self) -> int:
        return MODEL_DIMENSIONS[self.model]

    def embed(self, texts: Sequence[str]) -> list[list[float]]:
        vectors: list[list[float]] = []
        for start in range(0, len(texts), BATCH):
            batch = list(texts[start : start + BATCH])
            response = self._client.embeddings.create(model=self.model, input=batch)
            ordered = sorted(response.data, key=lambda item: item.index)
            vectors.extend(list(item.embedding) for item in ordered)
        return vectors
