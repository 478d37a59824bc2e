"""Does an effect differ between groups? Heterogeneity of an odds ratio, clustered by account.

"The rule works differently by company size" is a claim about an interaction, and the scale
matters. Risk ratios are bounded by the base rate (a segment that already wins 60% of its deals
cannot show a risk ratio above 1.7), so one constant effect on the odds scale spreads into
different risk ratios in segments with different base rates, and Cochran's Q on log risk ratios
reads that spread as heterogeneity. :func:`odds_ratio_heterogeneity` tests the rule x group
interaction in a logistic model instead, with cluster-robust (account) standard errors.
"""

from __future__ import annotations

import warnings

import numpy as np
import pandas as pd
from scipy import stats as sps

__all__ = ["odds_ratio_heterogeneity"]


def odds_ratio_heterogeneity(outcome, exposed, groups, clusters=None, alpha: float = 0.05) -> dict:
    """Wald test that the odds ratio of ``exposed`` on ``outcome`` is the same in every group.

    A binomial GLM (statsmodels) of ``outcome`` on the groups, ``exposed`` and their
    interaction; the test is the joint Wald test of the interaction terms (one per group other
    than the largest, the reference). With ``clusters`` (account ids of deals) the covariance is
    cluster-robust (CR1) and the test an F with clusters - 1 denominator degrees of freedom;
    without, a chi-square on the model-based covariance. A group in which the exposed or the
    other rows all share one outcome has no finite odds ratio; it is left out of the test and
    listed in ``not_tested``.

    Parameters
    ----------
    outcome : array of 0/1 (NaN rows are dropped)
    exposed : array of bool (rows meeting the rule)
    groups : array of labels (size segment of each row; missing labels are dropped)
    clusters : array of cluster ids, optional
    alpha : float
        1 - confidence level of the per-group odds-ratio intervals.

    Returns
    -------
    dict
        ``p_value`` (NaN when fewer than two groups can be compared), ``statistic``, ``df``,
        ``df_denom`` (NaN for the chi-square), ``test`` (``logit_interaction_wald_f_cluster``,
        ``logit_interaction_wald_chi2`` or why not tested), ``groups`` (the groups compared),
        ``odds_ratios`` ({group: (ratio, low, high)}) and ``not_tested`` ({group: reason}).
    """
    y = np.asarray(outcome, dtype=float)
    x = np.asarray(exposed, dtype=bool)
    g = pd.Series(groups, dtype=object).to_numpy()
    c = None if clusters is None else pd.Series(clusters).to_numpy()
    keep = ~np.isnan(y) & ~pd.isna(g)
    if c is not None:
        keep &= ~pd.isna(c)
    y, x, g = y[keep], x[keep], g[keep]
    c = None if c is None else c[keep]
    out = {
        "p_value": np.nan,
        "statistic": np.nan,
        "df": 0,
        "df_denom": np.nan,
        "test": "",
        "groups": [],
        "odds_ratios": {},
        "not_tested": {},
    }
    usable = []
    for label in pd.unique(g):
        inside = g == label
        cells = [y[inside & x], y[inside & ~x]]
        if any(cell.size == 0 or cell.min() == cell.max() for cell in cells):
            out["not_tested"][label] = "no finite odds ratio (an empty or one-outcome cell)"
        else:
            usable.append(label)
    if len(usable) < 2:
        out["test"] = "not tested: fewer than two groups with a finite odds ratio"
        return out
    rows = np.isin(g, usable)
    y, x, g = y[rows], x[rows], g[rows]
    c = None if c is None else c[rows]
    sizes = {label: int((g == label).sum()) for label in usable}
    reference = max(usable, key=lambda label: sizes[label])
    others = [label for label in usable if label != reference]
    dummies = np.column_stack([(g == label).astype(float) for label in others])
    xf = x.astype(float)
    design = np.column_stack([np.ones(y.size), dummies, xf, dummies * xf[:, None]])
    k = len(others)
    import statsmodels.api as sm

    model = sm.GLM(y, design, family=sm.families.Binomial())
    clustered = c is not None
    fit = None
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        if clustered:
            from icp_research.methods.multivariable import _fit_logit

            codes = pd.factorize(pd.Series(c))[0]
            # Deals of an account share its segment and whether it meets the rule: fitted as
            # one row per account and outcome, weighted (the same estimates and clustered
            # inference; at 10M deals, gigabytes less).
            fit, _ = _fit_logit(sm, y, pd.DataFrame(design), codes)
            if fit is None:  # it could not be fitted: the fit over every row says why
                fit = model.fit(cov_type="cluster", cov_kwds={"groups": codes}, use_t=True)
        else:
            fit = model.fit()
        restriction = np.zeros((k, design.shape[1]))
        restriction[:, k + 2 :] = np.eye(k)
        wald = fit.wald_test(restriction, use_f=clustered, scalar=True)
    params = np.asarray(fit.params, dtype=float)
    cov = np.asarray(fit.cov_params(), dtype=float)
    if clustered:
        df_denom = float(np.unique(codes).size - 1)
        crit = float(sps.t.ppf(1 - alpha / 2, df_denom))
    else:
        df_denom = np.nan
        crit = float(sps.norm.ppf(1 - alpha / 2))
    for label in usable:
        contrast = np.zeros(design.shape[1])
        contrast[k + 1] = 1.0
        if label != reference:
            contrast[k + 2 + others.index(label)] = 1.0
        beta = float(contrast @ params)
        se = float(np.sqrt(contrast @ cov @ contrast))
        out["odds_ratios"][label] = (
            float(np.exp(beta)),
            float(np.exp(beta - crit * se)),
            float(np.exp(beta + crit * se)),
        )
    out.update(
        p_value=float(wald.pvalue),
        statistic=float(wald.statistic),
        df=k,
        df_denom=df_denom,
        test="logit_interaction_wald_f_cluster" if clustered else "logit_interaction_wald_chi2",
        groups=list(usable),
    )
    return out
