"""Statistical building blocks shared by every analysis.

Thin, vectorised wrappers over scipy and statsmodels, so that each rate, lift and p-value in the
kit is computed one way: rates carry Wilson intervals, ratios carry log-scale (Katz) intervals,
families of p-values are adjusted with Benjamini-Hochberg (or Holm) and NaN p-values are left
out of the family rather than counted.
"""

from __future__ import annotations

import numpy as np
import pandas as pd
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
    """
    k1, n1, k2, n2 = (np.atleast_1d(np.asarray(x, dtype=float)) for x in (k1, n1, k2, n2))
    out = np.full(k1.shape, np.nan)
    valid = (n1 > 0) & (n2 > 0)
    events, total = k1 + k2, n1 + n2
    degenerate = valid & ((events == 0) | (events == total))
    out[degenerate] = 1.0
    rest = valid & ~degenerate
    with np.errstate(invalid="ignore", divide="ignore"):
        # Smallest expected count of the 2x2 table: smaller row total x smaller column total.
        expected_min = np.minimum(n1, n2) * np.minimum(events, total - events) / total
        # Pearson's chi-square of a 2x2 table, vectorised (what chi2_contingency computes).
        a, b, c, d = k1, n1 - k1, k2, n2 - k2
        statistic = total * (a * d - b * c) ** 2 / (n1 * n2 * events * (total - events))
    large = rest & (expected_min >= exact_below)
    out[large] = sps.chi2.sf(statistic[large], 1)
    for i in np.flatnonzero(rest & ~large):
        table = np.array([[k1[i], n1[i] - k1[i]], [k2[i], n2[i] - k2[i]]])
        out[i] = sps.fisher_exact(table)[1]
    return out


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
