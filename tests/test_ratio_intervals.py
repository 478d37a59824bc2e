"""Intervals for a ratio of two proportions: coverage near 0% and 100%, and honest edge cases."""

from __future__ import annotations

import numpy as np
import pytest
from scipy import stats as sps

from icp_research.methods.stats import clustered_ratio_test, ratio_ci

# Rates near 0 and 1, equal (ratio 1) and unequal, for small groups compared with a group of the
# same size or with a larger "rest" (the usual shape of a lift: one segment against the others).
RATES = [
    (0.9, 0.9),
    (0.95, 0.95),
    (0.05, 0.05),
    (0.1, 0.1),
    (0.95, 0.9),
    (0.9, 0.95),
    (0.1, 0.05),
    (0.05, 0.1),
    (1.0, 0.8),
    (0.8, 0.8),
]
SIZES = [5, 7, 10, 20, 50]


def _exact_coverage(n1: int, p1: float, n2: int, p2: float) -> float:
    """Probability that the 95% interval covers p1 / p2, summed over every possible outcome."""
    k1, k2 = np.meshgrid(np.arange(n1 + 1), np.arange(n2 + 1), indexing="ij")
    weight = sps.binom.pmf(k1, n1, p1) * sps.binom.pmf(k2, n2, p2)
    _, low, high = ratio_ci(k1, n1, k2, n2)
    covered = (low <= p1 / p2) & (p1 / p2 <= high)
    return float((weight * covered).sum())


@pytest.mark.parametrize("n", SIZES)
@pytest.mark.parametrize("rest", ["same", "large"])
def test_ratio_ci_keeps_nominal_coverage_near_0_and_100_percent(n, rest):
    n2 = n if rest == "same" else 100
    coverage = {(p1, p2): _exact_coverage(n, p1, n2, p2) for p1, p2 in RATES}
    worst = min(coverage, key=coverage.get)
    # The old log (Katz) interval covered 0.65 at n=10 vs 200, p=0.9 and 0.79 at n=7, p=0.8.
    assert coverage[worst] >= 0.93, (n, n2, worst, coverage[worst])


def test_simulated_coverage_agrees_with_the_exact_computation():
    rng = np.random.default_rng(20261205)
    reps = 20000
    for (n1, p1), (n2, p2) in [
        ((10, 0.9), (200, 0.9)),
        ((7, 0.8), (100, 0.79)),
        ((5, 0.05), (5, 0.1)),
    ]:
        k1, k2 = rng.binomial(n1, p1, reps), rng.binomial(n2, p2, reps)
        # ratio_ci computes each distinct table once, so 20,000 draws cost milliseconds.
        _, low, high = ratio_ci(k1, n1, k2, n2)
        simulated = np.mean((low <= p1 / p2) & (p1 / p2 <= high))
        assert simulated >= 0.93
        assert simulated == pytest.approx(_exact_coverage(n1, p1, n2, p2), abs=0.01)


def test_estimate_lies_inside_its_interval_for_every_small_table():
    sizes = [1, 2, 5, 7]
    grid = np.array(
        [
            (k1, n1, k2, n2)
            for n1 in sizes
            for n2 in sizes
            for k1 in range(n1 + 1)
            for k2 in range(n2 + 1)
        ],
        dtype=float,
    )
    k1, n1, k2, n2 = grid.T
    ratio, low, high = ratio_ci(k1, n1, k2, n2)
    both_zero = (k1 == 0) & (k2 == 0)
    # No events at all: the ratio is undefined and the interval uninformative.
    assert np.isnan(ratio[both_zero]).all()
    assert (low[both_zero] == 0).all() and np.isinf(high[both_zero]).all()
    rest = ~both_zero
    assert (low[rest] <= ratio[rest]).all() and (ratio[rest] <= high[rest]).all()
    assert (low[rest] < high[rest]).all()
    # k2 = 0 < k1: infinite ratio with an infinite upper bound and a finite lower bound.
    inf = (k2 == 0) & (k1 > 0)
    assert np.isinf(ratio[inf]).all() and np.isinf(high[inf]).all()
    assert np.isfinite(low[inf]).all() and (low[inf] > 0).all()
    # k1 = 0 < k2: a ratio of 0 with a lower bound of 0 and a finite upper bound.
    zero = (k1 == 0) & (k2 > 0)
    assert (ratio[zero] == 0).all() and (low[zero] == 0).all() and np.isfinite(high[zero]).all()


def test_ratio_ci_at_100_percent_and_scalar_and_empty_inputs():
    # Retention 100% of 7 against 79 of 100: the old interval 1.19-1.35 excluded 1 and claimed
    # a lift; seven accounts cannot show that.
    ratio, low, high = ratio_ci(7, 7, 79, 100)
    assert ratio == pytest.approx(100 / 79)
    assert low < 1 < high
    # 10/10 vs 10/10 is symmetric on the log scale around 1 (statsmodels 0.15 gives 1.00-1.40).
    ratio, low, high = ratio_ci(10, 10, 10, 10)
    assert ratio == 1 and low == pytest.approx(1 / high, rel=1e-6) and low < 0.8
    # Interior tables agree with statsmodels' score interval (Miettinen-Nurminen).
    from statsmodels.stats.proportion import confint_proportions_2indep

    for table in [(30, 100, 15, 100), (3, 10, 5, 10), (12, 40, 20, 90)]:
        expected = confint_proportions_2indep(*table, method="score", compare="ratio")
        assert ratio_ci(*table)[1:] == pytest.approx(expected, rel=1e-5)
    assert np.ndim(ratio_ci(1, 2, 1, 2)[0]) == 0
    ratio, low, high = ratio_ci([1, 1], [0, 3], [1, 1], [2, 2])
    assert np.isnan([ratio[0], low[0], high[0]]).all() and np.isfinite(ratio[1])


def test_unclustered_ratio_test_uses_the_score_interval():
    outcome = np.r_[np.ones(7), np.ones(79), np.zeros(21)]
    exposed = np.r_[np.ones(7, bool), np.zeros(100, bool)]
    out = clustered_ratio_test(outcome, exposed)
    assert out["ci_low"] < 1 < out["ci_high"]


def test_rows_without_a_cluster_are_clusters_of_their_own():
    # A won or lost deal with no account used to crash the clustered test (code -1 of a missing
    # account in np.bincount); it is one deal of its own, like a deal of an account of one deal.
    rng = np.random.default_rng(11)
    accounts = rng.integers(0, 60, 400).astype(str).astype(object)
    exposed = rng.random(400) < 0.4
    outcome = (rng.random(400) < np.where(exposed, 0.5, 0.3)).astype(float)
    missing = accounts.copy()
    missing[[3, 17, 250]] = None
    unique = accounts.copy()
    unique[[3, 17, 250]] = ["only-a", "only-b", "only-c"]
    with_missing = clustered_ratio_test(outcome, exposed, missing)
    with_unique = clustered_ratio_test(outcome, exposed, unique)
    assert with_missing["test"] == "poisson_cluster_robust"
    for key in ("ratio", "ci_low", "ci_high", "p_value", "clusters_exposed", "clusters_rest"):
        assert with_missing[key] == pytest.approx(with_unique[key], rel=1e-12), key
