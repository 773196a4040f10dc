"""Merge ranked result lists (full text, vector) into one: reciprocal rank fusion.

Pure. RRF needs no score calibration between the rankers, which is why hybrid search
uses it: a full-text rank and a cosine rank cannot be compared, their positions can.
"""

from __future__ import annotations

from collections.abc import Hashable, Sequence
from typing import TypeVar

K = TypeVar("K", bound=Hashable)

RRF_K = 60
"""The constant of Cormack et al. (2009); it damps the weight of the very top ranks."""


def reciprocal_rank_fusion(
    rankings: Sequence[Sequence[K]], *, k: int = RRF_K, limit: int | None = None
) -> list[tuple[K, float]]:
    """Fuse rankings (best first) into (item, score) pairs, best first.

    An item scores sum(1 / (k + rank)) over the rankings it appears in (rank from 1);
    a repeat within one ranking counts once, at its best rank. Ties keep the order in
    which items were first seen, so the result is deterministic.
    """
    if k < 0:
        raise ValueError(f"k must be 0 or more, not {k}")
    scores: dict[K, float] = {}
    for ranking in rankings:
        seen: set[K] = set()
        for rank, item in enumerate(ranking, start=1):
            if item in seen:
                continue
            seen.add(item)
            scores[item] = scores.get(item, 0.0) + 1.0 / (k + rank)
    order = {item: i for i, item in enumerate(scores)}
    fused = sorted(scores.items(), key=lambda pair: (-pair[1], order[pair[0]]))
    return fused if limit is None else fused[:limit]
