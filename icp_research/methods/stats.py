"""Statistical building blocks shared by every analysis.

Thin, vectorised wrappers over scipy and statsmodels, so that each rate, lift and p-value in the
kit is computed one way: rates carry Wilson intervals, ratios of proportions carry score
(Miettinen-Nurminen) intervals, small groups' rates are shrunk by empirical Bayes
(beta-binomial) beside their raw value, families of p-values are adjusted with
Benjamini-Hochberg (or Holm) and NaN p-values are left out of the family rather than counted.
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
    """Ratio of two proportions (k1/n1) / (k2/n2) with a Miettinen-Nurminen score interval.

    Returns ``(ratio, low, high)`` (unitless ratios), vectorised over any broadcastable inputs.
    The interval is the set of ratios that the score test (variance at the proportions that
    maximise the likelihood under that ratio, with the N / (N - 1) small-sample factor) does not
    reject at ``alpha``; it keeps close to nominal coverage with small groups and rates near 0%
    or 100%, where a log (Katz) interval does not, and it always contains the estimate.

    - ``k1 = 0 < k2``: the ratio is 0 and so is the lower bound.
    - ``k2 = 0 < k1``: the ratio is infinite (``inf``) and so is the upper bound; the lower bound
      is finite. Formatters show non-finite ratios as "–".
    - ``k1 = k2 = 0``: no events, the ratio is undefined (NaN) and the interval is (0, inf).
    - ``n1 = 0`` or ``n2 = 0``: all NaN.

    statsmodels' ``confint_proportions_2indep(method="score", compare="ratio")`` computes the
    same interval but is scalar-only and (statsmodels 0.15) collapses the lower bound
    onto the estimate when a group's rate is 100% (e.g. 10/10 vs 10/10 gives 1.00-1.40); here
    the score statistic is inverted by bisection, once per distinct table.
    """
    k1, n1, k2, n2 = np.broadcast_arrays(*(np.asarray(x, dtype=float) for x in (k1, n1, k2, n2)))
    shape = k1.shape
    k1, n1, k2, n2 = (np.atleast_1d(x).ravel() for x in (k1, n1, k2, n2))
    ratio = np.full(k1.shape, np.nan)
    low = np.full(k1.shape, np.nan)
    high = np.full(k1.shape, np.nan)
    valid = (n1 > 0) & (n2 > 0) & np.isfinite(k1 + k2 + n1 + n2)
    if valid.any():
        tables = np.column_stack([k1[valid], n1[valid], k2[valid], n2[valid]])
        distinct, inverse = np.unique(tables, axis=0, return_inverse=True)
        inverse = inverse.reshape(-1)
        a, m, b, n = distinct.T
        with np.errstate(divide="ignore", invalid="ignore"):
            estimate = np.where(a + b > 0, (a / m) / (b / n), np.nan)
        lo, hi = _score_ratio_bounds(a, m, b, n, alpha)
        ratio[valid], low[valid], high[valid] = estimate[inverse], lo[inverse], hi[inverse]
    if not shape:
        return ratio[0], low[0], high[0]
    return ratio.reshape(shape), low.reshape(shape), high.reshape(shape)


def _score_ratio_statistic(theta, k1, n1, k2, n2):
    """Miettinen-Nurminen score statistic (chi-square, 1 df) of H0: p1 / p2 = theta > 0.

    The variance is taken at the maximum-likelihood proportions under p1 = theta * p2
    (Farrington & Manning 1990), times the small-sample factor N / (N - 1), N = n1 + n2.
    """
    total = n1 + n2
    b = n1 * theta + k1 + n2 + k2 * theta
    c = k1 + k2
    disc = np.sqrt(np.maximum(b * b - 4 * total * theta * c, 0.0))
    # p2 is the smaller root of N*theta*p^2 - b*p + c = 0, written without cancellation.
    p2 = np.clip(np.where(c > 0, 2 * c / (b + disc), 0.0), 0.0, 1.0)
    p1 = np.clip(theta * p2, 0.0, 1.0)
    numerator = (k1 / n1 - theta * k2 / n2) ** 2
    variance = (p1 * (1 - p1) / n1 + theta**2 * p2 * (1 - p2) / n2) * total / (total - 1)
    with np.errstate(invalid="ignore", divide="ignore"):
        statistic = numerator / variance
    return np.where(numerator <= 0, 0.0, np.where(variance > 0, statistic, np.inf))


def _score_ratio_bounds(k1, n1, k2, n2, alpha):
    """Bounds of :func:`ratio_ci` for 1-d arrays of tables with n1, n2 > 0.

    The statistic is 0 at the estimate and grows away from it, so each bound is found by
    bisection on log(ratio) between the estimate and a ratio e^40 times smaller (larger).
    Where the estimate is infinite (k2 = 0) the lower bound's search starts from e^20 times
    the ratio that half an event would give, where the statistic is near 0; likewise for the
    upper bound when k1 = 0. 60 halvings leave an error far below any printed digit.
    """
    crit = sps.norm.ppf(1 - alpha / 2) ** 2
    low = np.where(k1 > 0, np.nan, 0.0)
    high = np.where(k2 > 0, np.nan, np.inf)
    low[(k1 == 0) & (k2 == 0)], high[(k1 == 0) & (k2 == 0)] = 0.0, np.inf
    with np.errstate(divide="ignore"):
        log_p1 = np.log(np.maximum(k1, 0.5) / n1)
        log_p2 = np.log(np.maximum(k2, 0.5) / n2)
    # Both bounds of every table are searched in one array: each element's bisection is its
    # own, so this is the same arithmetic with half the passes.
    todo_low, todo_high = k1 > 0, k2 > 0
    if not (todo_low.any() or todo_high.any()):
        return low, high
    inners = []
    for side, todo in (("low", todo_low), ("high", todo_high)):
        a, b = k1[todo], k2[todo]
        centre = log_p1[todo] - log_p2[todo]
        if side == "low":
            inners.append(np.where(b > 0, centre, centre + 20.0))
        else:
            inners.append(np.where(a > 0, centre, centre - 20.0))
    inner = np.concatenate(inners)
    outer = np.concatenate([inners[0] - 40.0, inners[1] + 40.0])
    a, m, b, n = (np.concatenate([x[todo_low], x[todo_high]]) for x in (k1, n1, k2, n2))
    # Invariant: statistic(inner) <= crit < statistic(outer).
    for _ in range(60):
        middle = (inner + outer) / 2
        beyond = _score_ratio_statistic(np.exp(middle), a, m, b, n) > crit
        outer = np.where(beyond, middle, outer)
        inner = np.where(beyond, inner, middle)
    bounds = np.exp(inner)
    split = int(todo_low.sum())
    low[todo_low] = bounds[:split]
    high[todo_high] = bounds[split:]
    return low, high


def shrink_rates(events, trials) -> dict:
    """Empirical-Bayes (beta-binomial) shrinkage of the rates of several groups.

    ``events`` and ``trials`` are counts per group (won and closed deals per level of one
    attribute, or per segment of one segmentation); the groups should be the levels of one
    attribute, so that their pooled rate is a meaningful centre. Each group's rate is taken to
    be drawn from a Beta(a, b) prior, fitted to all groups by maximum likelihood of the
    beta-binomial distribution (scipy ``betabinom``; parametrised by the prior mean
    ``a / (a + b)`` and its weight ``a + b``, started from the method of moments); each rate is
    then replaced by its posterior mean ``(events + a) / (trials + a + b)``. A group with few
    trials moves most of the way to the prior mean, one with many barely moves, and the order of
    the shrunk rates is a fairer ranking of small groups than the order of the raw ones.

    Returns a dict: ``rate_shrunk`` (fractions, one per group; NaN where ``trials`` is 0),
    ``prior_mean`` (fraction), ``prior_weight`` (``a + b``, in trials: the number of deals the
    prior is worth), ``a``, ``b`` and ``caveat`` (a sentence, empty when the fit was ordinary).

    Degenerate cases, said in ``caveat``: fewer than two groups with trials, or every group at
    0% or every group at 100%, leave the rates as they are (``rate_shrunk`` equals the raw rate,
    ``a`` and ``b`` NaN); when the groups differ no more than chance alone would make them the
    weight is capped at the total number of trials, so the prior never counts for more than the
    data, and the rates are pulled close to the pooled rate.

    The counts are treated as independent trials. Deals clustered by account are not: a level
    whose deals come from a few accounts holds less information than its deal count says, so
    its rate is shrunk less than it should be. Read ``rate_shrunk`` as a ranking aid beside the
    raw rate, its cluster-robust interval and its number of accounts, not instead of them.
    """
    from scipy import optimize

    k = np.atleast_1d(np.asarray(events, dtype=float))
    n = np.atleast_1d(np.asarray(trials, dtype=float))
    out = {
        "rate_shrunk": np.full(k.shape, np.nan),
        "prior_mean": np.nan,
        "prior_weight": np.nan,
        "a": np.nan,
        "b": np.nan,
        "caveat": "",
    }
    ok = (n > 0) & np.isfinite(k) & np.isfinite(n)
    with np.errstate(invalid="ignore", divide="ignore"):
        out["rate_shrunk"][ok] = k[ok] / n[ok]
    k, n = k[ok], n[ok]
    if k.size < 2:
        out["caveat"] = "Only one group has trials: there is nothing to pool, rates not shrunk."
        return out
    total = float(n.sum())
    pooled = float(k.sum()) / total
    out["prior_mean"] = pooled
    if pooled <= 0 or pooled >= 1:
        out["caveat"] = (
            f"Every group's rate is {pooled:.0%}: there is no spread to estimate a prior from, "
            "rates not shrunk."
        )
        return out
    # Method of moments (Kleinman 1973, equal weights) as the starting point.
    rates = k / n
    spread = float(np.var(rates, ddof=1)) if k.size > 1 else 0.0
    binomial = pooled * (1 - pooled) * float(np.mean(1 / n))
    start_weight = pooled * (1 - pooled) / (spread - binomial) - 1 if spread > binomial else total
    cap = max(total, 2.0)
    start = np.array(
        [np.log(pooled / (1 - pooled)), np.log(float(np.clip(start_weight, 1e-2, cap)))]
    )

    def negative_log_likelihood(theta):
        mean = 1 / (1 + np.exp(-theta[0]))
        weight = np.exp(theta[1])
        return -float(np.sum(sps.betabinom.logpmf(k, n, mean * weight, (1 - mean) * weight)))

    fit = optimize.minimize(
        negative_log_likelihood,
        start,
        method="L-BFGS-B",
        bounds=[(-30.0, 30.0), (np.log(1e-2), np.log(cap))],
    )
    theta = fit.x if np.isfinite(fit.fun) else start
    mean = float(1 / (1 + np.exp(-theta[0])))
    weight = float(np.exp(theta[1]))
    if weight >= 0.99 * cap:
        # No spread beyond chance: the likelihood is flat in the weight and the prior mean that
        # maximises it is the pooled rate.
        mean, weight = pooled, cap
    a, b = mean * weight, (1 - mean) * weight
    out.update(prior_mean=mean, prior_weight=weight, a=a, b=b)
    out["rate_shrunk"][ok] = (k + a) / (n + a + b)
    if weight >= 0.99 * cap:
        out["caveat"] = (
            "The groups' rates differ no more than chance would make them: the prior is capped "
            f"at the weight of all {total:,.0f} trials and every rate is pulled close to the "
            f"pooled {mean:.0%}."
        )
    return out


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
        if method in ("h", "holm"):
            out[ok] = _holm(np.clip(p[ok], 0, 1))
        else:
            out[ok] = multipletests(np.clip(p[ok], 0, 1), method=method)[1]
    return out


def _holm(pvals: np.ndarray) -> np.ndarray:
    """Holm-adjusted p-values, step for step as statsmodels' ``multipletests(method="holm")``,
    which also runs a full garbage collection per call (tens of milliseconds in a large
    process, paid once per family)."""
    order = np.argsort(pvals)
    ranked = np.take(pvals, order)
    adjusted = np.maximum.accumulate(ranked * np.arange(ranked.size, 0, -1))
    adjusted[adjusted > 1] = 1
    out = np.empty_like(adjusted)
    out[order] = adjusted
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


#: Largest count whose log-factorial is looked up in a table (32 MiB of them at most).
_LOG_FACTORIAL_MAX = 1 << 22
_log_factorial_table = np.zeros(0)


def _log_factorials(largest: int) -> np.ndarray:
    """``log(v!)`` for ``v = 0 .. largest`` at least (a table kept for the process, grown by
    doubling: the same values as ``gammaln(v + 1)`` computed afresh, element by element)."""
    global _log_factorial_table
    if _log_factorial_table.size <= largest:
        size = min(max(largest + 1, 2 * _log_factorial_table.size, 1024), _LOG_FACTORIAL_MAX)
        _log_factorial_table = special.gammaln(np.arange(size) + 1.0)
    return _log_factorial_table


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
    # The test does not depend on which group or which outcome comes first: each table is
    # computed in one orientation (the rarer outcome counted, the smaller group first), so
    # that a level and its complement (a two-level split) get the very same p-value, to the
    # last bit.
    events, non_events = k1 + k2, (n1 - k1) + (n2 - k2)
    flip = (events > non_events) | ((events == non_events) & (k1 > n1 - k1))
    k1, k2 = np.where(flip, n1 - k1, k1), np.where(flip, n2 - k2, k2)
    swap = (n1 > n2) | ((n1 == n2) & (k1 > k2))
    k1, k2 = np.where(swap, k2, k1), np.where(swap, k1, k2)
    n1, n2 = np.where(swap, n2, n1), np.where(swap, n1, n2)
    events = k1 + k2
    total = n1 + n2
    low = np.maximum(0.0, events - n2)
    width = (np.minimum(n1, events) - low + 1).astype(np.int64)
    out = np.ones(k1.shape)
    # Counts are whole numbers, so log(v!) = gammaln(v + 1) can be looked up in a table of the
    # same values, computed once per process (a subgroup search calls this thousands of times
    # with a few tables each) instead of once per cell.
    table = None
    if total.size and bool(
        np.all((k1 >= 0) & (k2 >= 0) & (k1 <= n1) & (k2 <= n2))
        and np.all((np.floor(k1) == k1) & (np.floor(n1) == n1))
        and np.all((np.floor(k2) == k2) & (np.floor(n2) == n2))
        and total.max() < _LOG_FACTORIAL_MAX
    ):
        table = _log_factorials(int(total.max()))

    if table is None:
        counts = np.float64

        def log_factorial(v):
            return special.gammaln(v + 1.0)

    else:
        counts = np.intp

        def log_factorial(v):
            return table[v]

    # log P(x) = const - log x! - log (events - x)! - log (n1 - x)! - log (rest - n1 + x)!, with
    # const = log events! + log rest! + log n1! + log n2! - log total! the same for every x of
    # a table: only the part that varies is computed per cell, on whole numbers.
    events_i, n1_i, rest_i = (v.astype(counts) for v in (events, n1, total - events))
    low_i, high_i = low.astype(counts), np.minimum(n1, events).astype(counts)
    const = (
        log_factorial(events_i)
        + log_factorial(rest_i)
        + log_factorial(n1_i)
        + log_factorial(n2.astype(counts))
        - log_factorial(total.astype(counts))
    )

    def varying(x, rows):
        e, m, r = events_i[rows, None], n1_i[rows, None], rest_i[rows, None]
        return -(
            log_factorial(x)
            + log_factorial(e - x)
            + log_factorial(m - x)
            + log_factorial(r - m + x)
        )

    # Tables sorted by support size, processed in chunks of at most `budget` cells.
    order = np.argsort(width, kind="stable")
    budget = 1 << 21
    tolerance = np.log1p(1e-7)
    k1_i = k1.astype(counts)
    start = 0
    while start < order.size:
        stop = min(order.size, start + max(1, budget // int(width[order[start]])))
        while stop - start > 1 and width[order[stop - 1]] * (stop - start) > budget:
            stop = start + (stop - start) // 2
        rows = order[start:stop]
        span = int(width[rows].max())
        x = low_i[rows, None] + np.arange(span, dtype=counts)[None, :]
        inside = x <= high_i[rows, None]
        x = np.where(inside, x, low_i[rows, None])
        log_p = varying(x, rows)
        as_extreme = inside & (log_p <= varying(k1_i[rows, None], rows) + tolerance)
        probability = np.exp(log_p + const[rows, None])
        out[rows] = np.minimum(1.0, np.where(as_extreme, probability, 0.0).sum(axis=1))
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
    worth of evidence, not like 100 independent deals. Returns ``(rate, low, high, n_clusters)``.
    When the normal interval would cross 0 or 1, it is Wilson's on the effective sample size
    (rate x (1 - rate) / variance): 2 wins of 10 deals at 10 accounts read 5%-53%, never from
    0%. With fewer than 2 clusters the interval is NaN. When no
    cluster departs from the rate (none won, or all), the sandwich variance is 0 and says
    nothing: the interval is then Wilson's with one trial per cluster (0 of 29 deals at 12
    accounts: 0-24%), never a zero-width "0% (0%-0%)".
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
    if var <= 0:
        low, high = proportion_ci(rate * k, k, alpha)
        return rate, float(low), float(high), k
    z = sps.norm.ppf(1 - alpha / 2)
    se = np.sqrt(var)
    low, high = rate - z * se, rate + z * se
    if low < 0 or high > 1:
        # A symmetric interval would cross 0 or 1 ("0%-44%" with 2 wins seen): Wilson's on the
        # effective sample size (the n whose binomial variance equals the clustered one), which
        # stays inside, asymmetric as a small sample's interval is.
        n_eff = rate * (1 - rate) / var
        low, high = proportion_ci(rate * n_eff, n_eff, alpha)
        return rate, float(low), float(high), k
    return rate, low, high, k


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


def cramers_v_corrected(table) -> float:
    """Cramér's V of a contingency table, bias-corrected (Bergsma 2013): the plain V of two
    unrelated attributes grows with their levels over few rows (a 21-level attribute over 65
    customers reads 0.65 against another of 3 levels, by chance alone); the correction takes
    out what chance gives. 0 for a table of one row or column; NaN when empty."""
    table = np.asarray(table, dtype=float)
    n = table.sum()
    r, k = table.shape
    if n <= 1:
        return np.nan
    if min(r, k) < 2:
        return 0.0
    chi2 = sps.chi2_contingency(table, correction=False)[0]
    phi2 = max(0.0, chi2 / n - (k - 1) * (r - 1) / (n - 1))
    r_corr = r - (r - 1) ** 2 / (n - 1)
    k_corr = k - (k - 1) ** 2 / (n - 1)
    denominator = min(k_corr - 1, r_corr - 1)
    return float(np.sqrt(phi2 / denominator)) if denominator > 0 else 0.0


def effective_clusters(sizes) -> float:
    """Kish's effective number of clusters of clusters with ``sizes`` rows: (sum n)^2 / sum n^2
    (the count itself when clusters are equal; a few large ones weigh like a few). 0 for none."""
    n = np.asarray(sizes, dtype=float)
    n = n[n > 0]
    return float(n.sum() ** 2 / np.sum(n**2)) if n.size else 0.0


def sign_flip_pvalue(scores, alternative: str = "two-sided", exact: int = 12) -> float:
    """P-value of a sum of independent clusters' score contributions by flipping their signs.

    ``scores`` holds each cluster's share of a score statistic under the null (for the slope of
    a logit with an intercept: the sum over its rows of ``(x - mean x) * (y - mean y)``), whose
    total is the statistic. Under the null every share is as likely positive as negative, so
    the statistic is referred to the distribution of ``sum(w_g * s_g)`` over random signs
    ``w_g``: the wild cluster score bootstrap with Rademacher weights (Kline and Santos 2012),
    computed rather than sampled: exactly over the signs of the ``exact`` largest shares,
    with the others' sum taken as normal (their variance is the sum of their squares).

    With many clusters of similar weight this is the cluster-robust score test; with a few
    clusters carrying most of the statistic (three groups of subsidiaries holding most of a
    level's deals) it is what a t test is not: when every large share already points the same
    way, only 1 in 2^k sign patterns does so too, and the p-value cannot fall below that, however
    many rows the few hold (MacKinnon and Webb 2017 on few treated clusters). ``alternative``:
    ``"two-sided"``, ``"greater"`` (the total is large) or ``"less"``. 1.0 when every share is 0.
    """
    s = np.asarray(scores, dtype=float)
    s = s[s != 0]
    if s.size == 0:
        return 1.0
    total = float(s.sum())
    order = np.argsort(-np.abs(s), kind="stable")
    big, rest = s[order[:exact]], s[order[exact:]]
    spread = float(np.sqrt(np.sum(rest**2)))
    patterns = 1 - 2 * ((np.arange(2**big.size)[:, None] >> np.arange(big.size)) & 1)
    b = patterns @ big
    tolerance = 1e-9 * float(np.abs(s).sum())
    if spread > tolerance:
        if alternative == "greater":
            p = sps.norm.sf((total - b) / spread)
        elif alternative == "less":
            p = sps.norm.cdf((total - b) / spread)
        else:
            p = sps.norm.sf((abs(total) - b) / spread) + sps.norm.cdf((-abs(total) - b) / spread)
    elif alternative == "greater":
        p = b >= total - tolerance
    elif alternative == "less":
        p = b <= total + tolerance
    else:
        p = np.abs(b) >= abs(total) - tolerance
    return float(min(1.0, np.mean(p)))


def cluster_score_shares(y, x, clusters) -> np.ndarray:
    """Each cluster's share of the score that the logit slope of ``y`` on ``x`` is zero.

    The null model has an intercept only, so a row's share is ``(x - mean x) * (y - mean y)``;
    ``clusters`` are integer codes. The input of :func:`sign_flip_pvalue`.
    """
    y = np.asarray(y, dtype=float)
    x = np.asarray(x, dtype=float)
    return np.bincount(clusters, weights=(x - x.mean()) * (y - y.mean()))


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
    contrast = clustered_rate_contrast(events1, trials1, events2, trials2)
    if np.isnan(contrast["df"]):
        return np.nan
    if contrast["variance"] <= 0:
        return 1.0
    return float(2 * sps.t.sf(abs(contrast["statistic"]), df=contrast["df"]))


def clustered_rate_contrast(events1, trials1, events2, trials2) -> dict:
    """The statistic of :func:`clustered_rate_test`, signed, with what ranks candidates.

    ``events*`` and ``trials*`` are per-cluster counts of two groups. Returns ``difference``
    (rate 1 - rate 2), ``statistic`` (the difference over its cluster-robust standard error
    around the pooled rate), ``df`` (the smaller group's effective number of clusters - 1, at
    least 1) ``variance`` and ``log_p_greater`` (log of the one-sided t p-value that rate 1 is higher), which
    stays finite where the p-value itself underflows, so that candidates can be ranked on it.
    Every value is NaN when either group has fewer than 2 clusters with trials.
    """
    e1, t1, e2, t2 = (np.asarray(v, dtype=float) for v in (events1, trials1, events2, trials2))
    keep1, keep2 = t1 > 0, t2 > 0
    e1, t1, e2, t2 = e1[keep1], t1[keep1], e2[keep2], t2[keep2]
    out = {
        "difference": np.nan,
        "statistic": np.nan,
        "df": np.nan,
        "log_p_greater": np.nan,
        "variance": np.nan,
    }
    k1, k2 = e1.size, e2.size
    if k1 < 2 or k2 < 2:
        return out
    pooled = (e1.sum() + e2.sum()) / (t1.sum() + t2.sum())
    k = k1 + k2
    variance = (
        k
        / (k - 1)
        * (
            np.sum((e1 - pooled * t1) ** 2) / t1.sum() ** 2
            + np.sum((e2 - pooled * t2) ** 2) / t2.sum() ** 2
        )
    )
    difference = float(e1.sum() / t1.sum() - e2.sum() / t2.sum())
    effective = min(effective_clusters(t1), effective_clusters(t2))
    df = float(max(effective - 1, 1.0))
    if variance <= 0:
        statistic = 0.0 if difference == 0 else np.sign(difference) * np.inf
    else:
        statistic = float(difference / np.sqrt(variance))
    out.update(
        difference=difference,
        statistic=statistic,
        df=df,
        log_p_greater=float(sps.t.logsf(statistic, df)),
        variance=float(variance),
    )
    return out


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
    with a log link and cluster-robust (CR1) errors (the "modified Poisson" estimate of a risk
    ratio; Zou & Donner 2013), t-distributed with the smaller group's *effective* number of
    clusters - 1 degrees of freedom (Kish's, as :func:`clustered_rate_test`): the sandwich
    of a group of three accounts or parent companies with many units each is as unsure as
    three, however many clusters the other group holds. When a cell is empty (the model has
    no finite estimate), the test is :func:`clustered_rate_test`, the score test around the
    pooled rate (``test`` "score_cluster_robust"), with :func:`ratio_ci`'s interval widened
    to agree with it. Without clusters, when every cluster holds one unit, or when a group
    has fewer than 2 clusters, the p-value is :func:`two_proportion_pvalue` (Fisher's exact
    test for small cells) and the interval :func:`ratio_ci`; ``test`` then says which (and
    "not cluster-adjusted" when clusters were given).

    Returns a dict: ``n_exposed``, ``events_exposed``, ``n_rest``, ``events_rest``,
    ``rate_exposed``, ``rate_rest``, ``ratio``, ``ci_low``, ``ci_high``, ``p_value``,
    ``test``, ``clusters_exposed``, ``clusters_rest`` (NaN where a group is empty).
    """
    y = np.asarray(outcome, dtype=float)
    x = np.asarray(exposed, dtype=bool)
    keep = ~np.isnan(y)
    y, x = y[keep], x[keep]
    groups = None
    if clusters is not None:
        groups = pd.factorize(pd.Series(clusters)[keep])[0]
        # A row without a cluster (a deal with no account) is a cluster of its own.
        missing = groups < 0
        if missing.any():
            groups[missing] = groups.max() + 1 + np.arange(int(missing.sum()))
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
        df = max(
            min(
                effective_clusters(np.bincount(groups[x])),
                effective_clusters(np.bincount(groups[~x])),
            )
            - 1,
            1.0,
        )
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
    if clustered and sparse and not few:
        # A group where every unit had the outcome (or none did): the model has no finite
        # estimate, but clusters still are not independent (44 won deals at three parent
        # companies are not 44 coin flips). The cluster-robust score test around the pooled
        # rate has a variance there; the interval is widened to agree with it.
        trials = np.bincount(groups, minlength=groups.max() + 1)
        events_x = np.bincount(groups[x], weights=y[x], minlength=trials.size)
        trials_x = np.bincount(groups[x], minlength=trials.size)
        events_r = np.bincount(groups[~x], weights=y[~x], minlength=trials.size)
        trials_r = np.bincount(groups[~x], minlength=trials.size)
        p_value = clustered_rate_test(events_x, trials_x, events_r, trials_r)
        df = max(min(effective_clusters(trials_x), effective_clusters(trials_r)) - 1, 1.0)
        if 0 < p_value < 1 and 0 < ratio < np.inf and ratio != 1:
            t_crit = sps.t.ppf(1 - alpha / 2, df)
            se_log = abs(np.log(ratio)) / sps.t.isf(p_value / 2, df)
            low = min(float(low), ratio * np.exp(-t_crit * se_log))
            high = max(float(high), ratio * np.exp(t_crit * se_log))
        out.update(
            ratio=float(ratio),
            ci_low=float(low),
            ci_high=float(high),
            p_value=float(p_value),
            test="score_cluster_robust",
        )
        return out
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
    amounts (revenue, deal size) pair it with :func:`median_ci`. When no value is negative
    (money, lifetimes) but the t interval reaches below zero (a few accounts, one large
    amount), the interval is scipy's percentile bootstrap instead (2,000 resamples, seeded):
    it stays within the values seen, so a mean CLV is never said to be possibly negative.
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
    if mean - half < 0 <= x.min():
        boot = sps.bootstrap(
            (np.sort(x),),  # sorted: the same values in any order give the same interval
            np.mean,
            confidence_level=1 - alpha,
            n_resamples=2000,
            method="percentile",
            random_state=np.random.default_rng(0),
        )
        low, high = boot.confidence_interval
        return mean, float(low), float(high), n
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
