"""The ratio of two cells' statistics with a two-level bootstrap interval, against scipy's bootstrap."""

from __future__ import annotations

import numpy as np
import pytest
from hypothesis import given
from hypothesis import strategies as st
from scipy import stats

from themis.profiler.stats import RatioEstimate, mean_statistic, quantile_statistic, ratio_ci, split_by_process


def test_one_process_per_side_matches_scipys_percentile_bootstrap() -> None:
    rng = np.random.default_rng(1)
    baseline, current = rng.lognormal(0.0, 0.2, 300), rng.lognormal(0.05, 0.2, 300)
    ours = ratio_ci([baseline], [current], resamples=20_000)
    reference = stats.bootstrap(
        (current, baseline), lambda c, b, axis=-1: np.median(c, axis=axis) / np.median(b, axis=axis), vectorized=True,
        paired=False, method="percentile", n_resamples=20_000, random_state=2,
    ).confidence_interval
    assert ours.ratio == pytest.approx(np.median(current) / np.median(baseline))
    assert ours.low == pytest.approx(reference.low, rel=0.01) and ours.high == pytest.approx(reference.high, rel=0.01)


def test_the_mean_and_other_quantiles_work_the_same_way() -> None:
    rng = np.random.default_rng(4)
    baseline, current = [rng.exponential(1.0, 200)], [rng.exponential(2.0, 200)]
    mean = ratio_ci(baseline, current, statistic=mean_statistic)
    p90 = ratio_ci(baseline, current, statistic=quantile_statistic(0.9))
    assert mean.ratio == pytest.approx(current[0].mean() / baseline[0].mean())
    assert p90.ratio == pytest.approx(np.quantile(current[0], 0.9) / np.quantile(baseline[0], 0.9))
    assert 1.0 < mean.low < mean.ratio < mean.high and p90.low < p90.ratio < p90.high


def test_with_several_processes_a_side_the_processes_are_the_units() -> None:
    rng = np.random.default_rng(2)
    baseline = [o * rng.lognormal(0, 0.05, 100) for o in (0.9, 1.0, 1.1)]  # each process lands at its own speed
    current = [o * rng.lognormal(0, 0.05, 100) for o in (1.3, 1.4, 1.5)]
    estimate = ratio_ci(baseline, current)
    # Welch's t interval on the log medians, computed here from its textbook formula.
    x, y = np.log([np.median(p) for p in baseline]), np.log([np.median(p) for p in current])
    vx, vy = x.var(ddof=1) / 3, y.var(ddof=1) / 3
    df = (vx + vy) ** 2 / (vx**2 / 2 + vy**2 / 2)
    half = stats.t.ppf(0.975, df) * np.sqrt(vx + vy)
    assert estimate.method == "processes"
    assert estimate.ratio == pytest.approx(np.exp(y.mean() - x.mean()))
    assert (estimate.low, estimate.high) == pytest.approx((np.exp(y.mean() - x.mean() - half), np.exp(y.mean() - x.mean() + half)))


def test_the_spread_between_processes_widens_the_interval() -> None:
    rng = np.random.default_rng(2)
    offsets = (0.9, 1.0, 1.1)
    baseline = [o * rng.lognormal(0, 0.05, 100) for o in offsets]
    current = [o * rng.lognormal(0, 0.05, 100) for o in offsets[::-1]]
    by_process = ratio_ci(baseline, current)
    pooled = ratio_ci([np.concatenate(baseline)], [np.concatenate(current)])  # as if one process: the bootstrap
    assert pooled.method == "bootstrap" and (by_process.high - by_process.low) > 2 * (pooled.high - pooled.low)
    assert by_process.low < 1.0 < by_process.high


def test_identical_processes_give_a_point_interval() -> None:
    same = [np.array([1.0, 2.0, 3.0]), np.array([2.0, 2.0, 2.0])]
    estimate = ratio_ci(same, same)
    assert (estimate.ratio, estimate.low, estimate.high) == (1.0, 1.0, 1.0)


def test_a_seed_gives_the_same_verdict() -> None:
    rng = np.random.default_rng(3)
    sides = [[rng.normal(10, 1, 50) for _ in range(3)] for _ in range(2)]
    assert ratio_ci(*sides, seed=5) == ratio_ci(*sides, seed=5)


def test_split_by_process_inverts_the_pooled_column() -> None:
    parts = split_by_process([1.0, 2.0, 3.0, 4.0, 5.0], [2, 3])
    assert [p.tolist() for p in parts] == [[1.0, 2.0], [3.0, 4.0, 5.0]]
    assert [p.tolist() for p in split_by_process([1.0, 2.0], [])] == [[1.0, 2.0]]  # no split recorded: one process
    with pytest.raises(ValueError, match="add up"):
        split_by_process([1.0, 2.0], [3])


@pytest.mark.parametrize(
    ("estimate", "text"),
    [
        (RatioEstimate(1.18, 1.12, 1.25), "slower by 18% (95% CI 12–25%)"),
        (RatioEstimate(0.96, 0.91, 1.01), "faster by 4% (95% CI −1–9%)"),
        (RatioEstimate(1.30, 1.30, 1.30, bootstrapped=False), "slower by 30% (no raw samples in one profile: no confidence interval)"),
    ],
)
def test_verdict_text(estimate: RatioEstimate, text: str) -> None:
    assert estimate.describe() == text


def test_confidently_slower_judges_the_lower_end() -> None:
    assert RatioEstimate(1.18, 1.12, 1.25).is_confidently_slower(0.10)
    assert not RatioEstimate(1.18, 1.08, 1.30).is_confidently_slower(0.10)  # 18% slower, but it could be 8%


@given(st.lists(st.floats(0.1, 100.0), min_size=2, max_size=30), st.floats(0.5, 2.0))
def test_scaling_every_call_scales_the_ratio_and_its_interval(calls: list[float], factor: float) -> None:
    baseline = [np.array(calls)]
    estimate = ratio_ci(baseline, [np.array(calls) * factor], resamples=200)
    assert estimate.ratio == pytest.approx(factor, rel=1e-9)
    # Both sides resample the same calls, so the ratio's bootstrap distribution is centred on the factor.
    assert estimate.low <= factor * (1 + 1e-9) and estimate.high >= factor * (1 - 1e-9)
