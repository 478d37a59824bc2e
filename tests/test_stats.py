"""Statistical building blocks: intervals for ratios of sums, medians and means; design effects."""

from __future__ import annotations

import numpy as np
import pytest
from scipy import stats as sps

from icp_research.methods.stats import (
    cluster_design_effect,
    clustered_rate_ci,
    clustered_ratio_ci,
    mean_ci,
    median_ci,
    sign_flip_pvalue,
)


def test_clustered_ratio_ci_matches_the_hand_computed_sandwich_and_is_not_clipped():
    arr_now = np.array([120.0, 90.0, 0.0, 300.0])
    arr_before = np.array([100.0, 100.0, 50.0, 200.0])
    ratio, low, high, n, se = clustered_ratio_ci(arr_now, arr_before)
    assert ratio == pytest.approx(510 / 450)
    residual = arr_now - ratio * arr_before
    expected_se = np.sqrt(4 / 3 * np.sum(residual**2)) / 450
    assert se == pytest.approx(expected_se)
    assert (low, high) == pytest.approx((ratio - 1.959964 * se, ratio + 1.959964 * se), rel=1e-6)
    assert high > 1 and n == 4
    # Units without a denominator are left out; one unit gives no interval.
    ratio, low, high, n, _ = clustered_ratio_ci([5.0, 1.0], [0.0, 2.0])
    assert (ratio, n) == (0.5, 1) and np.isnan(low) and np.isnan(high)


def test_clustered_ratio_ci_of_rates_equals_clustered_rate_ci():
    won, closed = np.array([1, 0, 2, 3, 0]), np.array([2, 1, 2, 5, 3])
    ratio, low, high, _, _ = clustered_ratio_ci(won, closed)
    rate, rate_low, rate_high, _ = clustered_rate_ci(won, closed)
    # The same estimator; only the rate's interval is clipped to [0, 1].
    assert (rate, rate_low, rate_high) == pytest.approx((ratio, max(0.0, low), min(1.0, high)))


def test_design_effect_is_one_for_independent_rows_and_the_cluster_size_for_copies(rng):
    outcome = rng.random(4000) < 0.3
    ones = np.ones(outcome.size)
    assert cluster_design_effect(outcome, ones) == pytest.approx(1.0, abs=1e-3)
    # Every account's deal copied three times: three deals carry one deal's information.
    k = outcome.size
    assert cluster_design_effect(3 * outcome, 3 * ones) == pytest.approx(3 * k / (k - 1))
    assert np.isnan(cluster_design_effect([1.0], [1.0]))
    assert np.isnan(cluster_design_effect([0.0, 0.0], [2.0, 3.0]))


def test_median_ci_uses_the_binomial_order_statistics():
    values = np.arange(1.0, 21.0)  # 20 values
    median, low, high, n = median_ci(values)
    assert median == 10.5 and n == 20
    # P(Binomial(20, 1/2) <= 5) = 0.0207 <= 0.025 < P(<= 6): ranks 6 and 15.
    assert sps.binom.cdf(5, 20, 0.5) <= 0.025 < sps.binom.cdf(6, 20, 0.5)
    assert (low, high) == (6.0, 15.0)
    assert np.isnan(median_ci([1.0, 2.0, 3.0, 4.0, 5.0])[1])  # n = 5: no 95% interval exists
    assert median_ci([1, 2, 3, 4, 5, 6])[1:3] == (1.0, 6.0)
    assert median_ci([np.nan, 4.0])[0] == 4.0


def test_median_ci_covers_the_median_at_least_at_the_nominal_rate(rng):
    hits = 0
    for _ in range(400):
        sample = rng.exponential(size=31)
        _, low, high, _ = median_ci(sample)
        hits += low <= np.log(2) <= high
    assert hits / 400 >= 0.93


def test_mean_ci_is_the_student_t_interval():
    values = np.array([2.0, 4.0, 4.0, 5.0, np.nan])
    mean, low, high, n = mean_ci(values)
    expected = sps.t.interval(0.95, 3, loc=3.75, scale=np.std([2, 4, 4, 5], ddof=1) / 2)
    assert (mean, n) == (3.75, 4)
    assert (low, high) == pytest.approx(expected)
    assert np.isnan(mean_ci([1.0])[1])


def test_mean_ci_of_amounts_never_reaches_below_zero():
    """Five customers' CLV, one large: the t interval would run to about -3,060; amounts
    cannot be negative, so the interval is scipy's percentile bootstrap (seeded), within the
    values seen. Values that can be negative keep the t interval."""
    clv = np.array([0.0, 0.0, 120.0, 300.0, 9_000.0])
    mean, low, high, n = mean_ci(clv)
    t_low = mean - sps.t.ppf(0.975, 4) * clv.std(ddof=1) / np.sqrt(5)
    assert t_low < -3_000
    boot = sps.bootstrap(
        (clv,),
        np.mean,
        n_resamples=2000,
        method="percentile",
        random_state=np.random.default_rng(0),
    ).confidence_interval
    assert (mean, n) == (1884.0, 5)
    assert (low, high) == pytest.approx((boot.low, boot.high))
    assert 0.0 <= low < mean < high <= 9_000.0
    assert mean_ci(clv - 100.0)[1] == pytest.approx(t_low - 100.0)


def test_a_clustered_rate_with_no_event_has_an_interval_of_its_clusters():
    from icp_research.methods.stats import clustered_rate_ci, proportion_ci

    # 0 of 29 deals at 12 accounts: Wilson with one trial per account, not 0%-0%.
    trials = [3, 3, 3, 3, 3, 2, 2, 2, 2, 2, 2, 2]
    rate, low, high, k = clustered_rate_ci([0] * 12, trials)
    assert (rate, low, k) == (0.0, 0.0, 12)
    assert high == pytest.approx(float(proportion_ci(0, 12)[1][()]), rel=1e-12)
    assert 0.24 < high < 0.25
    rate, low, high, _ = clustered_rate_ci(trials, trials)  # every deal won
    assert rate == 1.0 and high == pytest.approx(1.0) and 0.75 < low < 0.76


def _flip_distribution(shares: np.ndarray) -> np.ndarray:
    """Every sign pattern's total, by brute force."""
    signs = np.array(np.meshgrid(*[[1.0, -1.0]] * shares.size)).reshape(shares.size, -1).T
    return signs @ shares


def test_sign_flip_pvalue_is_the_exact_share_of_sign_patterns_for_few_clusters(rng):
    shares = rng.normal(0.4, 1.0, 9) * rng.integers(1, 30, 9)
    totals = _flip_distribution(shares)
    observed = shares.sum()
    tolerance = 1e-9 * np.abs(shares).sum()
    assert sign_flip_pvalue(shares) == pytest.approx(
        np.mean(np.abs(totals) >= abs(observed) - tolerance), abs=1e-12
    )
    assert sign_flip_pvalue(shares, "greater") == pytest.approx(
        np.mean(totals >= observed - tolerance), abs=1e-12
    )
    assert sign_flip_pvalue(shares, "less") == pytest.approx(
        np.mean(totals <= observed + tolerance), abs=1e-12
    )


def test_three_clusters_that_carry_the_evidence_cannot_make_it_significant():
    # Three accounts with huge shares, all the same way, beside 200 accounts whose tiny ones
    # cancel out: only 2 of the 8 sign patterns of the three reach the observed total (and then
    # half of the others' draws), however large it is.
    shares = np.concatenate([[300.0, 250.0, 200.0], np.tile([0.01, -0.01], 100)])
    assert sign_flip_pvalue(shares) == pytest.approx(2 / 8 / 2, abs=0.01)
    assert sign_flip_pvalue(shares, "greater") == pytest.approx(1 / 8 / 2, abs=0.01)


def test_sign_flip_pvalue_of_many_clusters_matches_sampled_sign_flips(rng):
    shares = rng.normal(0.05, 1.0, 400) * rng.integers(1, 10, 400)
    shares[:3] *= 8  # a few larger accounts, exact in the computation
    draws = rng.choice([-1.0, 1.0], size=(100_000, shares.size)) @ shares
    sampled = np.mean(np.abs(draws) >= abs(shares.sum()))
    assert 0.001 < sampled < 0.5
    assert sign_flip_pvalue(shares) == pytest.approx(sampled, abs=0.005)
    assert sign_flip_pvalue(np.zeros(5)) == 1.0
