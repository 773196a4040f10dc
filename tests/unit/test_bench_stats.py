import pytest

from heron.bench.report import comparisons
from heron.bench.results import (
    ClaimSample,
    ClaimStats,
    DrainResult,
    LatencyResult,
    SteadyResult,
    SystemResults,
)
from heron.bench.stats import (
    Comparison,
    LatencySummary,
    Target,
    TargetKind,
    percentile,
    rate,
    ratio,
)


def test_percentile_interpolates_like_numpy() -> None:
    samples = [1.0, 2.0, 3.0, 4.0]
    assert percentile(samples, 0) == 1.0
    assert percentile(samples, 100) == 4.0
    assert percentile(samples, 50) == pytest.approx(2.5)
    # numpy.percentile([1, 2, 3, 4], 99) == 3.97
    assert percentile(samples, 99) == pytest.approx(3.97)


def test_percentile_ignores_input_order_and_handles_one_sample() -> None:
    assert percentile([9.0, 1.0, 5.0], 50) == 5.0
    assert percentile([7.0], 99) == 7.0


@pytest.mark.parametrize("q", [-1, 101])
def test_percentile_rejects_out_of_range(q: float) -> None:
    with pytest.raises(ValueError, match=r"within 0\.\.100"):
        percentile([1.0], q)


def test_percentile_of_nothing_is_an_error() -> None:
    with pytest.raises(ValueError, match="no samples"):
        percentile([], 50)


def test_latency_summary_converts_seconds_to_ms() -> None:
    summary = LatencySummary.of_seconds([0.001] * 99 + [0.101])
    assert summary is not None
    assert summary.count == 100
    assert summary.p50_ms == pytest.approx(1.0)
    assert summary.p99_ms == pytest.approx(1.0 + 100 * 0.01)  # 99th of 100: interpolated
    assert summary.max_ms == pytest.approx(101.0)
    assert summary.mean_ms == pytest.approx(2.0)


def test_latency_summary_of_no_samples_is_none() -> None:
    assert LatencySummary.of_seconds([]) is None


def test_rate_and_ratio_guard_against_zero() -> None:
    assert rate(100, 2.0) == 50.0
    assert rate(100, 0.0) == 0.0
    assert ratio(10.0, 5.0) == 2.0
    assert ratio(10.0, 0.0) is None
    assert ratio(None, 5.0) is None
    assert ratio(10.0, None) is None


def test_target_relative_to_the_other_system() -> None:
    target = Target(TargetKind.AT_LEAST_TIMES_OTHER, 2.0)
    assert target.describe("PGQueuer") == ">= 2x PGQueuer"
    assert target.met(2000.0, 1000.0) is True
    assert target.met(1999.0, 1000.0) is False
    assert target.met(2000.0, None) is None  # PGQueuer skipped: cannot judge


def test_absolute_target_needs_only_herons_figure() -> None:
    target = Target(TargetKind.AT_MOST, 2.0, "ms")
    assert target.describe("PGQueuer") == "<= 2 ms"
    assert target.met(1.5, None) is True
    assert target.met(2.5, 1.0) is False
    assert target.met(None, 1.0) is None


def test_comparison_json_names_the_other_system() -> None:
    row = Comparison(
        "steady", "events/s", 300.0, 100.0, True, Target(TargetKind.AT_LEAST_TIMES_OTHER, 2)
    )
    data = row.as_dict("PGQueuer")
    assert data["pgqueuer"] == 100.0
    assert data["ratio_heron_over_pgqueuer"] == 3.0
    assert data["target"] == ">= 2x PGQueuer"
    assert data["target_met"] is True


def test_claim_stats_separate_empty_claims() -> None:
    samples = [ClaimSample(0.0, 0.001, 5), ClaimSample(0.0, 0.003, 0), ClaimSample(0.0, 0.002, 3)]
    stats = ClaimStats.of(samples)
    assert (stats.calls, stats.empty, stats.events) == (3, 1, 8)
    assert stats.events_per_claim == 4.0
    assert stats.latency is not None
    assert stats.latency.count == 2
    assert stats.latency.max_ms == pytest.approx(2.0)
    assert stats.latency_all is not None
    assert stats.latency_all.max_ms == pytest.approx(3.0)


def _system(
    name: str, drain_rate: float, steady_rate: float, claim_ms: float, wake_ms: float
) -> SystemResults:
    claims = ClaimStats.of([ClaimSample(0.0, claim_ms / 1000, 1)])
    return SystemResults(
        name,
        DrainResult(events=int(drain_rate), seconds=1.0, claims=None),
        SteadyResult(
            seconds=1.0, completed=int(steady_rate), enqueued=0, backlog_at_end=0, claims=None
        ),
        LatencyResult(
            offered_rate=200.0,
            seconds=1.0,
            enqueued=1,
            handled=1,
            wake=LatencySummary.of_seconds([wake_ms / 1000]),
            claims=claims,
        ),
    )


def test_comparisons_hold_heron_to_the_targets() -> None:
    heron = _system("Heron", 3000, 5000, 1.0, 4.0)
    other = _system("PGQueuer", 2000, 2000, 3.0, 12.0)
    rows = {row.metric: row for row in comparisons(heron, other)}
    assert rows["drain"].ratio == 1.5
    assert rows["drain"].met is True
    assert rows["steady"].ratio == 2.5
    assert rows["steady"].met is True
    assert rows["claim p99"].met is True
    assert rows["enqueue→handler p99"].met is True
    assert rows["claim p50"].met is None  # no target on p50


def test_comparisons_without_pgqueuer_judge_only_absolute_targets() -> None:
    heron = _system("Heron", 3000, 5000, 3.0, 4.0)
    rows = {row.metric: row for row in comparisons(heron, None)}
    assert rows["steady"].other is None
    assert rows["steady"].met is None
    assert rows["claim p99"].met is False
    assert rows["enqueue→handler p99"].met is True


def test_system_results_json_has_derived_rates() -> None:
    data = _system("Heron", 3000, 5000, 1.0, 4.0).as_dict()
    assert data["drain"]["rate"] == 3000.0
    assert data["steady"]["rate"] == 5000.0
    assert data["latency"]["claims"]["events_per_claim"] == 1.0
