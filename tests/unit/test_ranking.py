import pytest

from heron.docsearch.ranking import RRF_K, reciprocal_rank_fusion


def test_items_found_by_both_rankers_win():
    full_text = ["a", "b", "c"]
    vector = ["c", "d", "a"]
    fused = [item for item, _ in reciprocal_rank_fusion([full_text, vector])]
    assert fused[:2] == ["a", "c"]
    assert set(fused) == {"a", "b", "c", "d"}


def test_scores_are_sums_of_reciprocal_ranks():
    fused = dict(reciprocal_rank_fusion([["x", "y"], ["y"]]))
    assert fused["x"] == pytest.approx(1 / (RRF_K + 1))
    assert fused["y"] == pytest.approx(1 / (RRF_K + 2) + 1 / (RRF_K + 1))


def test_repeats_within_one_ranking_count_once_at_best_rank():
    assert dict(reciprocal_rank_fusion([["x", "x", "x"]]))["x"] == pytest.approx(1 / (RRF_K + 1))


def test_ties_keep_first_seen_order_and_limit_cuts():
    fused = reciprocal_rank_fusion([["a", "b"], ["b", "a"]], limit=1)
    assert fused == [("a", pytest.approx(1 / 61 + 1 / 62))]


def test_empty_and_bad_input():
    assert reciprocal_rank_fusion([]) == []
    assert reciprocal_rank_fusion([[], []]) == []
    with pytest.raises(ValueError, match="k must be"):
        reciprocal_rank_fusion([["a"]], k=-1)


def test_weights_say_how_much_each_ranking_counts():
    fused = reciprocal_rank_fusion([["text"], ["vector"]], k=10, weights=[0.5, 1.0])
    assert fused == [("vector", pytest.approx(1 / 11)), ("text", pytest.approx(0.5 / 11))]
    # A strong agreement of the weaker ranking still beats a lone vector hit.
    both = dict(reciprocal_rank_fusion([["a", "b"], ["c", "a"]], k=10, weights=[0.5, 1.0]))
    assert both["a"] > both["c"] > both["b"]
    with pytest.raises(ValueError, match="one per ranking"):
        reciprocal_rank_fusion([["a"], ["b"]], weights=[1.0])
    with pytest.raises(ValueError, match="not negative"):
        reciprocal_rank_fusion([["a"]], weights=[-1.0])
