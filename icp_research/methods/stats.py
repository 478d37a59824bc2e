"""Statistical building blocks shared by every analysis.

Thin, vectorised wrappers over scipy and statsmodels, so that each rate, lift and p-value in the
kit is computed one way: rates carry Wilson intervals, ratios carry log-scale (Katz) intervals,
families of p-values are adjusted with Benjamini-Hochberg (or Holm) and NaN p-values are left
out of the family rather than counted.
"""

from __future__ import annotations

import numpy as np
import pandas as pd
from scipy import special
from scipy import stats as sps

Z95 = 1.959963984540054


def proportion_ci(successes, trials, alpha: float = 0.05, method: str = "wilson"):
    """Confidence interval of a proportion, vectorised.

    Returns ``(low, high)`` arrays (fractions in [0, 1]); NaN where ``trials`` is 0.
    """
    from statsmodels.stats.proportion import proportion_confint

    k = np.asarray(successes, dtype=float)
    n = np.asarray(trials, dtype=float)
    with np.errstate(invalid="ignore", divide="ignore"):
        safe_n = np.where(n > 0, n, 1.0)
        low, high = proportion_confint(k, safe_n, alpha=alpha, method=method)
    low = np.where(n > 0, low, np.nan)
    high = np.where(n > 0, high, np.nan)
    return low, high


def rate_table(
    frame: pd.DataFrame, by: str | list[str], outcome: str, alpha: float = 0.05
) -> pd.DataFrame:
    """Rate of a boolean ``outcome`` per group of ``by``, with Wilson intervals.

    Returns one row per group with ``n`` (rows with a known outcome), ``events``, ``rate``,
    ``ci_low`` and ``ci_high`` (fractions). Missing outcomes are not counted in ``n``.
    """
    known = frame[frame[outcome].notna()]
    grouped = known.groupby(by, observed=True, dropna=False)[outcome]
    table = pd.DataFrame({"n": grouped.size(), "events": grouped.sum().astype(float)})
    table["rate"] = table["events"] / table["n"]
    table["ci_low"], table["ci_high"] = proportion_ci(table["events"], table["n"], alpha)
    return table.reset_index()


def ratio_ci(k1, n1, k2, n2, alpha: float = 0.05):
    """Ratio of two proportions (k1/n1) / (k2/n2) with a Katz log interval.

    Returns ``(ratio, low, high)``. A 0.5 continuity correction is applied where a count is 0,
    so that the interval stays finite and honest (wide).
    """
    k1, n1, k2, n2 = (np.asarray(x, dtype=float) for x in (k1, n1, k2, n2))
    z = sps.norm.ppf(1 - alpha / 2)
    with np.errstate(invalid="ignore", divide="ignore"):
        ratio = (k1 / n1) / (k2 / n2)
        zero = (k1 == 0) | (k2 == 0)
        a = np.where(zero, k1 + 0.5, k1)
        c = np.where(zero, k2 + 0.5, k2)
        b = np.where(zero, n1 + 0.5, n1)
        d = np.where(zero, n2 + 0.5, n2)
        se = np.sqrt(1 / a - 1 / b + 1 / c - 1 / d)
        log_ratio = np.log((a / b) / (c / d))
        low = np.exp(log_ratio - z * se)
        high = np.exp(log_ratio + z * se)
    return ratio, low, high


def odds_ratio_ci(a, b, c, d, alpha: float = 0.05):
    """Odds ratio of a 2x2 table [[a, b], [c, d]] with a Woolf (log) interval.

    ``a`` = exposed with event, ``b`` = exposed without, ``c`` = unexposed with event,
    ``d`` = unexposed without. Haldane's 0.5 correction where any cell is 0.
    Returns ``(odds_ratio, low, high)``.
    """
    a, b, c, d = (np.asarray(x, dtype=float) for x in (a, b, c, d))
    z = sps.norm.ppf(1 - alpha / 2)
    zero = (a == 0) | (b == 0) | (c == 0) | (d == 0)
    a2, b2, c2, d2 = (np.where(zero, x + 0.5, x) for x in (a, b, c, d))
    with np.errstate(invalid="ignore", divide="ignore"):
        log_or = np.log(a2 * d2 / (b2 * c2))
        se = np.sqrt(1 / a2 + 1 / b2 + 1 / c2 + 1 / d2)
    return np.exp(log_or), np.exp(log_or - z * se), np.exp(log_or + z * se)


def adjust_pvalues(pvalues, method: str = "fdr_bh") -> np.ndarray:
    """Multiple-testing adjustment of a family of p-values (q-values for ``fdr_bh``).

    ``method`` is any :func:`statsmodels.stats.multitest.multipletests` method (``fdr_bh``,
    ``holm``, ``bonferroni``; ``bh`` is accepted for ``fdr_bh``). NaN p-values (tests that could
    not be run) stay NaN and do not count towards the family size.
    """
    from statsmodels.stats.multitest import multipletests

    method = {"bh": "fdr_bh", "benjamini-hochberg": "fdr_bh", "by": "fdr_by"}.get(
        method.lower(), method.lower()
    )
    p = np.asarray(pvalues, dtype=float)
    out = np.full(p.shape, np.nan)
    ok = ~np.isnan(p)
    if ok.any():
        out[ok] = multipletests(np.clip(p[ok], 0, 1), method=method)[1]
    return out


def two_proportion_pvalue(k1, n1, k2, n2, exact_below: int = 5) -> np.ndarray:
    """Two-sided p-value for equal proportions, per row.

    Fisher's exact test where any expected cell count is below ``exact_below``, Pearson's
    chi-square (no continuity correction) otherwise. Returns NaN where a group is empty.
    Batched: the chi-square tests are computed in one vectorised pass and Fisher's test once
    per distinct table, so millions of rows (e.g. every subgroup of a search) cost seconds.
    """
    k1, n1, k2, n2 = np.broadcast_arrays(
        *(np.atleast_1d(np.asarray(x, dtype=float)) for x in (k1, n1, k2, n2))
    )
    out = np.full(k1.shape, np.nan)
    events = k1 + k2
    total = n1 + n2
    non_events = total - events
    valid = (n1 > 0) & (n2 > 0)
    degenerate = valid & ((events == 0) | (non_events == 0))
    out[degenerate] = 1.0
    testable = valid & ~degenerate
    with np.errstate(invalid="ignore", divide="ignore"):
        expected_min = np.minimum(n1, n2) * np.minimum(events, non_events) / total
        exact = testable & (expected_min < exact_below)
        chi2 = testable & ~exact
        statistic = (
            total[chi2]
            * (k1[chi2] * (n2[chi2] - k2[chi2]) - k2[chi2] * (n1[chi2] - k1[chi2])) ** 2
            / (n1[chi2] * n2[chi2] * events[chi2] * non_events[chi2])
        )
    # chi2.sf(x, 1) == erfc(sqrt(x / 2)), 40x faster than the incomplete gamma function.
    out[chi2] = special.erfc(np.sqrt(statistic / 2))
    if exact.any():
        tables = np.column_stack([k1[exact], n1[exact], k2[exact], n2[exact]])
        distinct, inverse = np.unique(tables, axis=0, return_inverse=True)
        out[exact] = fisher_exact_pvalue(*distinct.T)[inverse.reshape(-1)]
    return out


def fisher_exact_pvalue(k1, n1, k2, n2) -> np.ndarray:
    """Two-sided Fisher exact p-values of many 2x2 tables ``[[k1, n1-k1], [k2, n2-k2]]``.

    The same test as :func:`scipy.stats.fisher_exact` (the p-value sums the probabilities of
    every table with the observed margins that is no more likely than the observed one), but
    vectorised: scipy evaluates one table in about half a millisecond, a subgroup search needs
    thousands. Hypergeometric probabilities come from log-gamma functions; "no more likely" is
    judged with a relative tolerance of 1e-7, far above their rounding error. Both groups must
    be non-empty.
    """
    k1, n1, k2, n2 = np.broadcast_arrays(
        *(np.atleast_1d(np.asarray(x, dtype=float)) for x in (k1, n1, k2, n2))
    )
    shape = k1.shape
    k1, n1, k2, n2 = (x.ravel() for x in (k1, n1, k2, n2))
    events = k1 + k2
    total = n1 + n2
    low = np.maximum(0.0, events - n2)
    width = (np.minimum(n1, events) - low + 1).astype(np.int64)
    out = np.ones(k1.shape)

    def log_comb(a, b):
        return special.gammaln(a + 1) - special.gammaln(b + 1) - special.gammaln(a - b + 1)

    def log_pmf(x, rows):
        return (
            log_comb(events[rows, None], x)
            + log_comb(total[rows, None] - events[rows, None], n1[rows, None] - x)
            - log_comb(total[rows, None], n1[rows, None])
        )

    # Tables sorted by support size, processed in chunks of at most `budget` cells.
    order = np.argsort(width, kind="stable")
    budget = 1 << 21
    start = 0
    while start < order.size:
        stop = min(order.size, start + max(1, budget // int(width[order[start]])))
        while stop - start > 1 and width[order[stop - 1]] * (stop - start) > budget:
            stop = start + (stop - start) // 2
        rows = order[start:stop]
        span = int(width[rows].max())
        x = low[rows, None] + np.arange(span)[None, :]
        inside = x <= np.minimum(n1, events)[rows, None]
        x = np.where(inside, x, low[rows, None])
        log_p = log_pmf(x, rows)
        log_observed = log_pmf(k1[rows, None], rows)
        as_extreme = inside & (log_p <= log_observed + np.log1p(1e-7))
        out[rows] = np.minimum(1.0, np.where(as_extreme, np.exp(log_p), 0.0).sum(axis=1))
        start = stop
    return out.reshape(shape)


def test_choice(expected_min: float, exact_below: int = 5) -> str:
    """Name of the test used for a 2x2 table with the given smallest expected count."""
    return "fisher" if expected_min < exact_below else "chi2"


def describe_p(q: float, alpha: float = 0.05) -> str:
    """Plain-language strength of evidence for a corrected p-value."""
    if q is None or np.isnan(q):
        return "not tested"
    if q < 0.001:
        return "very strong evidence"
    if q < 0.01:
        return "strong evidence"
    if q < alpha:
        return "evidence"
    if q < 0.2:
        return "weak, not significant"
    return "no evidence"


def clustered_rate_ci(events, trials, alpha: float = 0.05):
    """A pooled rate over clusters (e.g. deals grouped by account) with a cluster-robust interval.

    ``events`` and ``trials`` are per-cluster counts (won deals and closed deals per account).
    The rate is sum(events) / sum(trials); its standard error is the ratio estimator's
    linearised (sandwich) variance, so that 100 deals of one account weigh like one account's
    worth of evidence, not like 100 independent deals. Returns ``(rate, low, high, n_clusters)``;
    the interval is clipped to [0, 1]. With fewer than 2 clusters the interval is NaN.
    """
    e = np.asarray(events, dtype=float)
    t = np.asarray(trials, dtype=float)
    keep = t > 0
    e, t = e[keep], t[keep]
    k = e.size
    if k == 0:
        return np.nan, np.nan, np.nan, 0
    rate = e.sum() / t.sum()
    if k < 2:
        return rate, np.nan, np.nan, k
    residual = e - rate * t
    var = k / (k - 1) * np.sum(residual**2) / t.sum() ** 2
    z = sps.norm.ppf(1 - alpha / 2)
    se = np.sqrt(var)
    return rate, max(0.0, rate - z * se), min(1.0, rate + z * se), k


def poisson_rate_ci(events: float, exposure: float, alpha: float = 0.05):
    """Event rate per unit of exposure (e.g. churns per customer-year) with an exact interval.

    Returns ``(rate, low, high)``; NaN when exposure is 0.
    """
    if exposure <= 0:
        return np.nan, np.nan, np.nan
    low = sps.chi2.ppf(alpha / 2, 2 * events) / 2 if events > 0 else 0.0
    high = sps.chi2.ppf(1 - alpha / 2, 2 * events + 2) / 2
    return events / exposure, low / exposure, high / exposure


def clustered_ratio_ci(numerators, denominators, alpha: float = 0.05):
    """A ratio of sums over clusters, sum(numerators) / sum(denominators), with a sandwich interval.

    The same linearised (ratio-estimator) variance as :func:`clustered_rate_ci`, for ratios that
    are not proportions: mean won deal size (won amount / won deals per account), ARR lost per
    ARR at risk. Nothing is clipped. Returns ``(ratio, low, high, n_clusters, se)``; the interval
    and ``se`` are NaN with fewer than 2 clusters.
    """
    y = np.asarray(numerators, dtype=float)
    x = np.asarray(denominators, dtype=float)
    keep = x > 0
    y, x = y[keep], x[keep]
    k = y.size
    if k == 0:
        return np.nan, np.nan, np.nan, 0, np.nan
    ratio = y.sum() / x.sum()
    if k < 2:
        return ratio, np.nan, np.nan, k, np.nan
    residual = y - ratio * x
    se = float(np.sqrt(k / (k - 1) * np.sum(residual**2)) / x.sum())
    z = sps.norm.ppf(1 - alpha / 2)
    return ratio, ratio - z * se, ratio + z * se, k, se


def clustered_rate_test(events1, trials1, events2, trials2) -> float:
    """Two-sided p-value that two independent groups of clusters share one rate.

    ``events*`` and ``trials*`` are per-cluster counts (won and closed deals per account) of the
    two groups (accounts in a segment, and the rest). A cluster-robust score test: residuals are
    taken around the pooled rate, so a group without any event still has a variance, and the
    statistic is referred to a t distribution with ``min(k1, k2) - 1`` degrees of freedom, where
    ``k`` is a group's *effective* number of clusters, ``(sum t)^2 / sum t^2`` (Kish): two
    accounts with 200 deals each among sixty accounts with five weigh like a handful of
    clusters, not sixty. This keeps a segment of a few big accounts from producing a confident
    claim however many deals they hold. NaN when either group has fewer than 2 clusters with
    trials.
    """
    e1, t1, e2, t2 = (np.asarray(v, dtype=float) for v in (events1, trials1, events2, trials2))
    keep1, keep2 = t1 > 0, t2 > 0
    e1, t1, e2, t2 = e1[keep1], t1[keep1], e2[keep2], t2[keep2]
    k1, k2 = e1.size, e2.size
    if k1 < 2 or k2 < 2:
        return np.nan
    pooled = (e1.sum() + e2.sum()) / (t1.sum() + t2.sum())
    k = k1 + k2
    var = (
        k
        / (k - 1)
        * (
            np.sum((e1 - pooled * t1) ** 2) / t1.sum() ** 2
            + np.sum((e2 - pooled * t2) ** 2) / t2.sum() ** 2
        )
    )
    difference = e1.sum() / t1.sum() - e2.sum() / t2.sum()
    if var <= 0:
        return 1.0
    statistic = difference / np.sqrt(var)
    effective = min(t1.sum() ** 2 / np.sum(t1**2), t2.sum() ** 2 / np.sum(t2**2))
    return float(2 * sps.t.sf(abs(statistic), df=max(effective - 1, 1.0)))


def poisson_rate_ratio(events1, exposure1, events2, exposure2, alpha: float = 0.05):
    """Ratio of two event rates (events per unit of exposure) with an exact interval and p-value.

    Conditional on the total number of events, the first group's count is binomial with
    probability ``exposure1 * ratio / (exposure1 * ratio + exposure2)``; the Clopper-Pearson
    interval of that probability and the exact binomial test give the interval of the ratio and
    the two-sided p-value of ratio = 1 (scipy ``binomtest``). Returns
    ``(ratio, low, high, p_value)``; NaN where an exposure is 0 or there are no events.
    """
    k1, k2 = float(events1), float(events2)
    if exposure1 <= 0 or exposure2 <= 0 or k1 + k2 == 0:
        return np.nan, np.nan, np.nan, np.nan
    n = int(round(k1 + k2))
    share = exposure1 / (exposure1 + exposure2)
    test = sps.binomtest(int(round(k1)), n, share)
    low_p, high_p = test.proportion_ci(1 - alpha, method="exact")
    odds = exposure2 / exposure1
    with np.errstate(divide="ignore"):
        ratio = (k1 / exposure1) / (k2 / exposure2) if k2 > 0 else np.inf
        low = low_p / (1 - low_p) * odds if low_p < 1 else np.inf
        high = high_p / (1 - high_p) * odds if high_p < 1 else np.inf
    return ratio, low, high, float(test.pvalue)


def clustered_ratio_test(outcome, exposed, clusters=None, alpha: float = 0.05) -> dict:
    """Rate of a binary ``outcome`` in ``exposed`` versus other units, with clustering.

    Units of one cluster (deals of one account) are not independent. With clusters that hold
    more than one unit the rate ratio, its interval and the p-value come from a Poisson model
    with a log link and cluster-robust (CR1) errors, t-distributed with clusters - 1 degrees
    of freedom (the "modified Poisson" estimate of a risk ratio; Zou & Donner 2013). Without
    clusters, or when every cluster holds one unit, or when a cell is empty (the model has no
    finite estimate), the p-value is :func:`two_proportion_pvalue` (Fisher's exact test for
    small cells) and the interval :func:`ratio_ci`; ``test`` then says which, and that it is
    not cluster-adjusted when clusters were given.

    Returns a dict: ``n_exposed``, ``events_exposed``, ``n_rest``, ``events_rest``,
    ``rate_exposed``, ``rate_rest``, ``ratio``, ``ci_low``, ``ci_high``, ``p_value``,
    ``test``, ``clusters_exposed``, ``clusters_rest`` (NaN where a group is empty).
    """
    y = np.asarray(outcome, dtype=float)
    x = np.asarray(exposed, dtype=bool)
    keep = ~np.isnan(y)
    y, x = y[keep], x[keep]
    groups = None if clusters is None else pd.factorize(pd.Series(clusters)[keep])[0]
    k1, n1 = float(y[x].sum()), float(x.sum())
    k0, n0 = float(y[~x].sum()), float((~x).sum())
    out = {
        "n_exposed": int(n1),
        "events_exposed": int(k1),
        "n_rest": int(n0),
        "events_rest": int(k0),
        "rate_exposed": k1 / n1 if n1 else np.nan,
        "rate_rest": k0 / n0 if n0 else np.nan,
        "ratio": np.nan,
        "ci_low": np.nan,
        "ci_high": np.nan,
        "p_value": np.nan,
        "test": "",
        "clusters_exposed": np.nan,
        "clusters_rest": np.nan,
    }
    if n1 == 0 or n0 == 0:
        out["test"] = "not tested: one group is empty"
        return out
    clustered = groups is not None and np.bincount(groups).max() > 1
    if groups is not None:
        out["clusters_exposed"] = int(np.unique(groups[x]).size)
        out["clusters_rest"] = int(np.unique(groups[~x]).size)
    sparse = min(k1, n1 - k1, k0, n0 - k0) == 0
    few = clustered and min(out["clusters_exposed"], out["clusters_rest"]) < 2
    if clustered and not sparse and not few:
        import warnings

        from statsmodels.genmod import families
        from statsmodels.genmod.generalized_linear_model import GLM

        design = np.column_stack([np.ones(y.size), x.astype(float)])
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            fit = GLM(y, design, family=families.Poisson()).fit(
                cov_type="cluster", cov_kwds={"groups": groups}, use_t=True
            )
        beta, se = float(fit.params[1]), float(fit.bse[1])
        df = int(np.unique(groups).size) - 1
        t_crit = sps.t.ppf(1 - alpha / 2, df)
        out.update(
            ratio=float(np.exp(beta)),
            ci_low=float(np.exp(beta - t_crit * se)),
            ci_high=float(np.exp(beta + t_crit * se)),
            p_value=float(2 * sps.t.sf(abs(beta / se), df)) if se > 0 else np.nan,
            test="poisson_cluster_robust",
        )
        return out
    ratio, low, high = ratio_ci(k1, n1, k0, n0, alpha)
    table = np.array([[k1, n1 - k1], [k0, n0 - k0]])
    expected_min = (
        float(sps.contingency.expected_freq(table).min()) if table.sum(axis=0).all() else 0.0
    )
    out.update(
        ratio=float(ratio),
        ci_low=float(low),
        ci_high=float(high),
        p_value=float(two_proportion_pvalue(k1, n1, k0, n0)[0]),
        test=test_choice(expected_min) + (" (not cluster-adjusted)" if clustered else ""),
    )
    return out


def cluster_design_effect(events, trials) -> float:
    """How much clustering inflates the variance of a pooled rate (Kish's design effect).

    ``events`` and ``trials`` are per-cluster counts (won and closed deals per account). Returns
    the variance of the pooled rate under clustering (the linearised variance of
    :func:`clustered_rate_ci`) divided by its binomial variance, or NaN when it cannot be
    estimated (fewer than 2 clusters, or a rate of 0 or 1). Dividing counts by it gives the
    effective sample size of a first-order Rao-Scott correction.
    """
    e = np.asarray(events, dtype=float)
    t = np.asarray(trials, dtype=float)
    keep = t > 0
    e, t = e[keep], t[keep]
    k = e.size
    if k < 2:
        return np.nan
    rate = e.sum() / t.sum()
    if rate <= 0 or rate >= 1:
        return np.nan
    clustered = k / (k - 1) * np.sum((e - rate * t) ** 2) / t.sum() ** 2
    binomial = rate * (1 - rate) / t.sum()
    return float(clustered / binomial)


def mean_ci(values, alpha: float = 0.05):
    """Mean with a Student-t interval; NaN values are ignored.

    Returns ``(mean, low, high, n)``; the interval is NaN with fewer than 2 values. For skewed
    amounts (revenue, deal size) pair it with :func:`median_ci`.
    """
    x = np.asarray(values, dtype=float)
    x = x[~np.isnan(x)]
    n = x.size
    if n == 0:
        return np.nan, np.nan, np.nan, 0
    mean = float(x.mean())
    if n < 2:
        return mean, np.nan, np.nan, n
    half = sps.t.ppf(1 - alpha / 2, n - 1) * x.std(ddof=1) / np.sqrt(n)
    return mean, mean - half, mean + half, n


def median_ci(values, alpha: float = 0.05):
    """Median with a distribution-free interval from order statistics; NaN values are ignored.

    The interval runs from the j-th to the k-th smallest value, with j and k the binomial(n, 1/2)
    quantiles, so it covers the median with probability at least ``1 - alpha`` whatever the
    distribution. Returns ``(median, low, high, n)``; the interval is NaN when n is too small
    for that coverage (n < 6 at 95%).
    """
    x = np.sort(np.asarray(values, dtype=float))
    x = x[~np.isnan(x)]
    n = x.size
    if n == 0:
        return np.nan, np.nan, np.nan, 0
    median = float(np.median(x))
    # Ranks j and n - j + 1 cover the median unless j - 1 or fewer values fall below it (or
    # above): j - 1 is the largest count whose binomial(n, 1/2) tail is at most alpha / 2.
    below = int(sps.binom.ppf(alpha / 2, n, 0.5))
    if sps.binom.cdf(below, n, 0.5) > alpha / 2:
        below -= 1
    j = below + 1
    if j < 1:
        return median, np.nan, np.nan, n
    return median, float(x[j - 1]), float(x[n - j]), n
