"""Is a binary outcome associated with an attribute's bins when rows cluster by account?

A chi-square test of bins x outcome over deals treats every deal as independent: an account
with forty deals that all won (or all lost) then counts as forty pieces of evidence, and on data
where nothing matters a noise attribute comes out "associated" far more often than alpha says.
:func:`clustered_association_test` is a generalised score test of the same hypothesis (one rate
in every bin) whose variance is summed over accounts (Rotnitzky & Jewell 1990; Boos 1992), so
the account, not the deal, is the independent unit. :func:`icp_research.methods.stats.clustered_rate_contrast` ranks
candidate groups (the ranges of a range scan) by the same cluster-robust rate comparison as
:func:`icp_research.methods.stats.clustered_rate_test`.
"""

from __future__ import annotations

import numpy as np
import pandas as pd
from scipy import stats as sps

__all__ = ["clustered_association_test"]


def clustered_association_test(outcome, codes, clusters=None) -> dict:
    """Test that a 0/1 ``outcome`` has the same rate in every bin of ``codes``.

    With ``clusters`` (account ids): the score test of the bin indicators in a logistic model,
    at the common rate, with a cluster-robust (CR1) variance of the score; the statistic divided
    by its degrees of freedom is referred to an F with clusters - 1 denominator degrees of
    freedom, as the kit's other clustered Wald tests. Unlike a Wald test it needs no fit per
    bin, so a bin in which every row has the same outcome is no problem. Without clusters: the
    Pearson chi-square of the bins x outcome table (rows independent).

    Parameters
    ----------
    outcome : array of 0/1 (NaN rows are dropped)
    codes : array of bin codes or labels, one per row (missing values are dropped)
    clusters : array of cluster ids, optional

    Returns
    -------
    dict
        ``p_value`` (NaN when fewer than two bins or the outcome does not vary), ``statistic``
        (chi-square scale), ``df``, ``df_denom`` (NaN for the plain chi-square), ``test``
        (``score_cluster_f`` or ``pearson_chi2``) and ``clusters``.
    """
    y = np.asarray(outcome, dtype=float)
    levels = pd.Series(codes).reset_index(drop=True)
    keep = ~np.isnan(y) & levels.notna().to_numpy()
    c = None if clusters is None else pd.Series(clusters).reset_index(drop=True)
    if c is not None:
        keep &= c.notna().to_numpy()
    y = y[keep]
    # The bins are the distinct values as text, sorted (1 and "1" are one bin): factorized
    # first, so that only the distinct values are made text and sorted, not every row.
    level_codes, distinct = pd.factorize(levels[keep])
    bins, remap = np.unique(np.asarray(distinct).astype(str), return_inverse=True)
    code = remap.reshape(-1)[level_codes]
    out = {
        "p_value": np.nan,
        "statistic": np.nan,
        "df": 0,
        "df_denom": np.nan,
        "test": "",
        "clusters": np.nan,
    }
    if bins.size < 2 or y.size == 0 or y.min() == y.max():
        out["test"] = "not tested: fewer than two bins or the outcome does not vary"
        return out
    counts = np.bincount(code, minlength=bins.size).astype(float)
    if c is None:
        events = np.bincount(code, weights=y, minlength=bins.size)
        table = np.column_stack([events, counts - events])
        statistic, p_value, df, _ = sps.chi2_contingency(table, correction=False)
        out.update(
            p_value=float(p_value), statistic=float(statistic), df=int(df), test="pearson_chi2"
        )
        return out
    groups = pd.factorize(c[keep])[0]
    n_clusters = int(groups.max()) + 1
    out["clusters"] = n_clusters
    if n_clusters < 2:
        out["test"] = "not tested: fewer than two clusters"
        return out
    reference = int(np.argmax(counts))
    others = [j for j in range(bins.size) if j != reference]
    indicators = (code[:, None] == np.asarray(others)[None, :]).astype(float)
    residual = y - y.mean()
    contributions = (indicators - indicators.mean(axis=0)) * residual[:, None]
    score = contributions.sum(axis=0)
    per_cluster = np.column_stack(
        [np.bincount(groups, weights=col, minlength=n_clusters) for col in contributions.T]
    )
    variance = n_clusters / (n_clusters - 1) * per_cluster.T @ per_cluster
    rank = int(np.linalg.matrix_rank(variance))
    if rank == 0:
        out["test"] = "not tested: the score has no variance"
        return out
    statistic = float(score @ np.linalg.pinv(variance) @ score)
    df_denom = float(n_clusters - 1)
    out.update(
        p_value=float(sps.f.sf(statistic / rank, rank, df_denom)),
        statistic=statistic,
        df=rank,
        df_denom=df_denom,
        test="score_cluster_f",
    )
    return out
