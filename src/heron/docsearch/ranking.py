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
    rankings: Sequence[Sequence[K]],
    *,
    k: int = RRF_K,
    limit: int | None = None,
    weights: Sequence[float] | None = None,
) -> list[tuple[K, float]]:
    """Fuse rankings (best first) into (item, score) pairs, best first.

    An item scores sum(weight / (k + rank)) over the rankings it appears in (rank from 1;
    every weight 1 unless `weights` gives one per ranking); a repeat within one ranking
    counts once, at its best rank. Ties keep the order in which items were first seen,
    so the result is deterministic.
    """
    if k < 0:
        raise ValueError(f"k must be 0 or more, not {k}")
    if weights is not None and (len(weights) != len(rankings) or min(weights, default=0) < 0):
        raise ValueError(f"weights must be one per ranking and not negative, not {weights}")
    scores: dict[K, float] = {}
    for number, ranking in enumerate(rankings):
        weight = 1.0 if weights is None else weights[number]
        seen: set[K] = set()
        for rank, item in enumerate(ranking, start=1):
            if item in seen:
                continue
            seen.add(item)
            scores[item] = scores.get(item, 0.0) + weight / (k + rank)
    order = {item: i for i, item in enumerate(scores)}
    fused = sorted(scores.items(), key=lambda pair: (-pair[1], order[pair[0]]))
    return fused if limit is None else fused[:limit]
