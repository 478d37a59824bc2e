"""The fit score: learn a 0-100 points scorecard from outcomes, and prove it on a holdout.

Fitting (:func:`fit_scorecard`) follows the credit-scorecard recipe, because sales can read it:

1. Numeric attributes are cut into bins at nice quantile cut points
   (:func:`icp_research.methods.binning.cut_points`). When the data says the relation is monotone
   (a significant Spearman trend and no significant departure from the isotonic fit), adjacent
   bins that break the trend are merged, so that "more employees" never loses points by noise.
   Categorical attributes keep their levels, rare ones pooled into ``(other)``.
2. Each bin or level gets its weight of evidence (log of its share of outcomes over its share of
   non-outcomes, smoothed). Attributes with no evidence of association after
   Benjamini-Hochberg correction get no points; the rest enter an L2-regularised logistic
   regression on their weights of evidence (statsmodels), which discounts overlapping
   attributes.
3. Coefficient x weight of evidence is each bin's log-odds contribution; these are shifted and
   scaled to whole points so that the lowest reachable total is exactly 0 and the highest 100.

Missing values and categories unseen in training score the attribute's neutral points (the
training population's average on that attribute) and are flagged; see
:mod:`icp_research.scoring.model`, which applies a scorecard.

:func:`validate_scorecard` measures a scorecard on a holdout: AUC with a DeLong (or cluster
bootstrap) interval, a calibration table, outcome rate and value per tier, and the Tier 1 vs
Tier 3 and ICP vs non-ICP ratios with intervals, in plain words.
"""

from __future__ import annotations

import math
import warnings
from collections.abc import Mapping, Sequence
from dataclasses import dataclass

import numpy as np
import pandas as pd
from scipy import stats as sps

from icp_research.errors import DataError, NotEnoughData
from icp_research.formatting import error_bars, to_jsonable
from icp_research.methods.association import clustered_association_test
from icp_research.methods.binning import (
    MISSING,
    OTHER,
    cut_points,
    interval_labels,
    pool_rare_levels,
)
from icp_research.methods.stats import (
    adjust_pvalues,
    cluster_design_effect,
    fisher_exact_pvalue,
    proportion_ci,
    ratio_ci,
)
from icp_research.result import Result
from icp_research.scoring.model import (
    NOT_A_NUMBER,
    Attribute,
    Scorecard,
    coerce_numeric,
    combination_index,
    normalise_category,
)

__all__ = [
    "Scorecard",
    "ScorecardValidation",
    "auc",
    "auc_ci",
    "fit_scorecard",
    "plot_calibration",
    "plot_tiers",
    "validate_scorecard",
]

DEFAULT_TIERS = ("Tier 1", "Tier 2", "Tier 3")
MIN_CLASS_SIZE = 10

_TRUE = frozenset({"true", "t", "yes", "y", "1", "won", "retained"})
_FALSE = frozenset({"false", "f", "no", "n", "0", "lost", "churned"})


# ---------------------------------------------------------------------------------------------
# Inputs


#: An outcome's rate in words for a chart ("won rate" reads as a typo).
_RATE_WORDS = {
    "won": "win rate",
    "retained": "retention rate",
    "best_customer": "best-customer rate",
    "churned": "churn rate",
}


def _outcome_values(frame: pd.DataFrame, outcome: str) -> np.ndarray:
    """The outcome column as floats 1.0 / 0.0, NaN where unknown; DataError if not boolean."""
    if outcome not in frame.columns:
        raise DataError(
            f"outcome column {outcome!r} not found; columns are {list(frame.columns)[:20]}"
        )
    column = frame[outcome]
    if pd.api.types.is_bool_dtype(column) or pd.api.types.is_numeric_dtype(column):
        values = column.to_numpy(dtype=float, na_value=np.nan)
        bad = ~np.isnan(values) & ~np.isin(values, (0.0, 1.0))
    else:
        text = column.astype("string").str.strip().str.lower()
        values = np.where(
            text.isin(_TRUE).fillna(False),
            1.0,
            np.where(text.isin(_FALSE).fillna(False), 0.0, np.nan),
        )
        bad = np.isnan(values) & text.notna().to_numpy() & (text != "").fillna(False).to_numpy()
    if bad.any():
        examples = ", ".join(repr(v) for v in pd.unique(column[bad])[:3])
        raise DataError(
            f"outcome column {outcome!r} must be true/false (or 1/0); found {examples} in "
            f"{int(bad.sum())} rows. Recode it, e.g. won = stage == 'won'."
        )
    return values


def _require_columns(frame: pd.DataFrame, columns: Sequence[str]) -> None:
    missing = [c for c in columns if c not in frame.columns]
    if missing:
        raise DataError(
            f"attribute column(s) {missing} not found in the training data; "
            f"available columns: {list(frame.columns)[:30]}"
        )


# ---------------------------------------------------------------------------------------------
# Binning


def _pool_adjacent_violators(events, counts, increasing: bool) -> list[list[int]]:
    """Groups of adjacent bins whose pooled rates are monotone (pool-adjacent-violators)."""
    blocks: list[list] = []
    for i, (e, n) in enumerate(zip(events, counts, strict=True)):
        blocks.append([float(e), float(n), [i]])
        while len(blocks) > 1:
            (e1, n1, _), (e2, n2, _) = blocks[-2], blocks[-1]
            violates = e1 / n1 > e2 / n2 if increasing else e1 / n1 < e2 / n2
            if not violates:
                break
            last = blocks.pop()
            blocks[-1][0] += last[0]
            blocks[-1][1] += last[1]
            blocks[-1][2].extend(last[2])
    return [b[2] for b in blocks]


def _binomial_loglik(events, counts) -> float:
    events, counts = np.asarray(events, float), np.asarray(counts, float)
    rate = events / counts
    with np.errstate(divide="ignore", invalid="ignore"):
        terms = events * np.log(rate) + (counts - events) * np.log1p(-rate)
    return float(np.nansum(terms))


def _monotone_cuts(
    values: np.ndarray, y: np.ndarray, cuts: list[float], mode, alpha: float
) -> tuple[list[float], str | None, dict]:
    """Merge adjacent bins into a monotone pattern when ``mode`` (or the data) says so.

    ``mode``: True (always merge, in the direction of the Spearman trend), False (never) or
    "auto": merge when the Spearman trend is significant at ``alpha`` and a likelihood-ratio
    test of the bins against their isotonic (merged) fit finds no significant departure from
    monotone. Returns the kept cut points, the direction ("increasing" / "decreasing" / None)
    and the evidence.
    """
    evidence: dict = {}
    if len(cuts) < 1 or values.size < 3 or np.ptp(values) == 0:
        return cuts, None, evidence
    rho, p_trend = sps.spearmanr(values, y)
    evidence.update({"spearman_rho": float(rho), "spearman_p": float(p_trend)})
    if not np.isfinite(rho) or rho == 0:
        return cuts, None, evidence
    increasing = bool(rho > 0)
    codes = np.searchsorted(np.asarray(cuts, float), values, side="right")
    counts = np.bincount(codes, minlength=len(cuts) + 1).astype(float)
    events = np.bincount(codes, weights=y, minlength=len(cuts) + 1)
    groups = _pool_adjacent_violators(events, counts, increasing)
    pooled_events = [events[g].sum() for g in groups]
    pooled_counts = [counts[g].sum() for g in groups]
    deviance = 2 * (
        _binomial_loglik(events, counts) - _binomial_loglik(pooled_events, pooled_counts)
    )
    df = len(counts) - len(groups)
    # chi2 with the merged degrees of freedom is a conservative reference for this isotonic
    # likelihood-ratio statistic (its true null law is a chi-bar-square mixture).
    p_departure = float(sps.chi2.sf(max(deviance, 0.0), df)) if df > 0 else 1.0
    evidence["nonmonotone_p"] = p_departure
    merge = (p_trend < alpha and p_departure >= alpha) if mode == "auto" else bool(mode)
    if not merge:
        return cuts, None, evidence
    kept = [cuts[g[-1]] for g in groups[:-1]]
    return kept, "increasing" if increasing else "decreasing", evidence


@dataclass
class _Candidate:
    """An attribute on its way to the scorecard: bins, per-row codes and counts."""

    name: str
    kind: str
    labels: list[str]
    codes: np.ndarray  # per row; len(labels) = scored neutral (missing)
    counts: np.ndarray
    events: np.ndarray
    edges: list[float]
    nonnegative: bool = False
    observed_min: float | None = None
    observed_max: float | None = None
    monotone: str | None = None
    other_members: tuple[str, ...] = ()
    evidence: dict | None = None
    n_missing: int = 0
    groups: np.ndarray | None = None  # per label: the group it is scored with (pooled levels)

    @property
    def rates(self) -> np.ndarray:
        return self.events / self.counts

    def woe(self) -> np.ndarray:
        """Smoothed weight of evidence per bin (+0.5 per cell), positive = more outcomes.

        Shares are among rows with a known value: missing rows score neutral, not a bin.
        Levels pooled into one group (:func:`_pool_indistinct_levels`) share the group's.
        """
        groups = np.arange(len(self.labels)) if self.groups is None else self.groups
        k = int(groups.max()) + 1
        events = np.bincount(groups, weights=self.events, minlength=k)
        counts = np.bincount(groups, weights=self.counts, minlength=k)
        non_events = counts - events
        good = (events + 0.5) / (events.sum() + 0.5 * k)
        bad = (non_events + 0.5) / (non_events.sum() + 0.5 * k)
        return np.log(good / bad)[groups]


def _numeric_candidate(
    name, column, y, *, n_bins, min_bin_share, monotonic, alpha, nonnegative, edges=()
) -> _Candidate:
    values, status = coerce_numeric(column)
    if nonnegative is None:
        nonnegative = bool(np.nanmin(values) >= 0) if np.isfinite(values).any() else False
    if nonnegative:
        values = np.where(values < 0, np.nan, values)
    known = ~np.isnan(values)
    cuts = cut_points(values[known], n_bins, min_bin_share=min_bin_share)
    if known.any() and len(edges):
        low, high = values[known].min(), values[known].max()
        cuts = sorted({*cuts, *(float(e) for e in edges if low < e <= high)})
    monotone, evidence = None, {}
    if known.sum() > 0:
        cuts, monotone, evidence = _monotone_cuts(values[known], y[known], cuts, monotonic, alpha)
    labels = interval_labels(cuts)
    codes = np.full(values.size, len(labels), dtype=np.int32)
    codes[known] = np.searchsorted(np.asarray(cuts, float), values[known], side="right")
    counts = np.bincount(codes[known], minlength=len(labels)).astype(float)
    events = np.bincount(codes[known], weights=y[known], minlength=len(labels))
    unreadable = int((status == NOT_A_NUMBER).sum())
    if unreadable:
        evidence["unreadable_rows"] = unreadable
    return _Candidate(
        name=name,
        kind="numeric",
        labels=labels,
        codes=codes,
        counts=counts,
        events=events,
        edges=[float(c) for c in cuts],
        nonnegative=nonnegative,
        observed_min=float(values[known].min()) if known.any() else None,
        observed_max=float(values[known].max()) if known.any() else None,
        monotone=monotone,
        evidence=evidence,
        n_missing=int((~known).sum()),
    )


def _categorical_candidate(name, column, y, *, min_level_count) -> _Candidate:
    # The same normalisation as scoring, so training and scoring agree on every value.
    row_codes, uniques = pd.factorize(column.astype(object), use_na_sentinel=True)
    normalised = np.array([normalise_category(u) for u in uniques] + [None], dtype=object)
    values = pd.Series(normalised[row_codes], dtype=object)
    pooled = pool_rare_levels(values, min_level_count)
    counts_by_level = pooled[pooled != MISSING].value_counts(sort=False)
    # Most common first (stable by name for equal counts), "(other)" last: a readable table.
    levels = sorted(
        (lvl for lvl in counts_by_level.index if lvl != OTHER),
        key=lambda lvl: (-counts_by_level[lvl], str(lvl)),
    )
    if OTHER in counts_by_level.index:
        levels.append(OTHER)
    code_of = {lvl: i for i, lvl in enumerate(levels)}
    codes = pooled.map(code_of).fillna(len(levels)).to_numpy(dtype=np.int32)
    known = codes < len(levels)
    counts = np.bincount(codes[known], minlength=len(levels)).astype(float)
    events = np.bincount(codes[known], weights=y[known], minlength=len(levels))
    pooled_values = set(values[(pooled == OTHER).to_numpy()].dropna())
    return _Candidate(
        name=name,
        kind="categorical",
        labels=[str(lvl) for lvl in levels],
        codes=codes,
        counts=counts,
        events=events,
        edges=[],
        other_members=tuple(sorted(pooled_values, key=str)),
        evidence={},
        n_missing=int((~known).sum()),
    )


def _association_pvalue(candidate: _Candidate, y: np.ndarray, clusters=None) -> float:
    """Test of bins x outcome (rows with a known value); NaN if untestable.

    Without ``clusters`` a chi-square (rows independent); with them (the account of each row)
    the cluster-robust score test of
    :func:`icp_research.methods.association.clustered_association_test`.
    """
    table = np.column_stack([candidate.events, candidate.counts - candidate.events])
    table = table[table.sum(axis=1) > 0]
    if table.shape[0] < 2 or (table.sum(axis=0) == 0).any():
        return float("nan")
    if clusters is None:
        return float(sps.chi2_contingency(table, correction=False)[1])
    known = candidate.codes < len(candidate.labels)
    test = clustered_association_test(y[known], candidate.codes[known], clusters[known])
    return float(test["p_value"])


def _listed(labels: Sequence[str], limit: int = 6) -> str:
    """``a, b, c`` or ``a, b, c ... and 4 more``."""
    shown = ", ".join(labels[:limit])
    return shown if len(labels) <= limit else f"{shown} and {len(labels) - limit:,} more"


def _level_against_pool(
    level: np.ndarray, n: np.ndarray, e: np.ndarray, cluster: np.ndarray | None, pool: list[int]
) -> dict[int, float]:
    """p-value of each level of ``pool`` against the pool's other levels.

    ``level``, ``n``, ``e`` and ``cluster`` are cells: rows and outcomes per (cluster, level).
    Without clusters: the Pearson chi-square of the 2x2 table; with them: the cluster-robust
    score test of :func:`~icp_research.methods.association.clustered_association_test` (F with
    1 and clusters - 1 degrees of freedom), from the cells, so that each test costs the number
    of cells, not of rows.
    """
    in_pool = np.isin(level, pool)
    level, n, e = level[in_pool], n[in_pool], e[in_pool]
    total_n, total_e = float(n.sum()), float(e.sum())
    out = {}
    if cluster is not None:
        groups, _ = pd.factorize(cluster[in_pool])
        n_clusters = int(groups.max()) + 1 if groups.size else 0
        cluster_n = np.bincount(groups, weights=n, minlength=n_clusters)
        cluster_e = np.bincount(groups, weights=e, minlength=n_clusters)
    for j in pool:
        mine = level == j
        level_n, level_e = float(n[mine].sum()), float(e[mine].sum())
        if total_n == 0 or total_e in (0.0, total_n) or level_n in (0.0, total_n):
            out[j] = float("nan")
            continue
        if cluster is None:
            table = np.array([[level_e, level_n - level_e], [total_e - level_e, 0.0]])
            table[1, 1] = total_n - level_n - table[1, 0]
            out[j] = float(sps.chi2_contingency(table, correction=False)[1])
            continue
        if n_clusters < 2:
            out[j] = float("nan")
            continue
        rate, share = total_e / total_n, level_n / total_n
        # Per cluster: sum over its rows of (indicator - share) x (outcome - rate).
        per = np.bincount(groups[mine], weights=e[mine] - rate * n[mine], minlength=n_clusters)
        per -= share * (cluster_e - rate * cluster_n)
        variance = n_clusters / (n_clusters - 1) * float(per @ per)
        score = float(per.sum())
        if variance <= 0:
            out[j] = float("nan")
            continue
        out[j] = float(sps.f.sf(score * score / variance, 1, n_clusters - 1))
    return out


def _pool_indistinct_levels(
    candidate: _Candidate, y: np.ndarray, clusters=None, alpha: float = 0.05
) -> None:
    """Score alike the levels of a categorical attribute that do not differ from the rest.

    The attribute as a whole passed its test, but that says that one level or more differs,
    not that every level does: scored by its own rate, each of the other levels would get
    points from its noise (with one real industry among twelve, the eleven others spread over
    the attribute's range). Step by step: each level still in the pool is tested against the
    pool's other levels (cluster-robust with ``clusters``, as the attribute's own test),
    Benjamini-Hochberg over them, and the most significant one leaves the pool when its q is
    below ``alpha``; the pool of the levels left, if it holds two or more, gets one weight of
    evidence. A level is compared with the levels that do not differ, not with a rest that
    holds the real one (against which every ordinary level looks worse). Nothing is pooled when
    no level differs on its own (the attribute's evidence is spread over many levels).
    """
    k = len(candidate.labels)
    if candidate.kind != "categorical" or k < 3:
        return
    known = candidate.codes < k
    codes, outcome = candidate.codes[known].astype(np.int64), y[known]
    if clusters is None:
        cell_level = np.arange(k)
        cell_n = np.bincount(codes, minlength=k).astype(float)
        cell_e = np.bincount(codes, weights=outcome, minlength=k)
        cell_cluster = None
    else:
        # ``clusters`` are dense integer codes (fit_scorecard factorizes them once).
        cells, cell_index = np.unique(
            clusters[known].astype(np.int64) * k + codes, return_inverse=True
        )
        cell_level = cells % k
        cell_cluster = cells // k
        cell_n = np.bincount(cell_index, minlength=cells.size).astype(float)
        cell_e = np.bincount(cell_index, weights=outcome, minlength=cells.size)
    pool, distinct = list(range(k)), []
    while len(pool) >= 2:
        p_values = _level_against_pool(cell_level, cell_n, cell_e, cell_cluster, pool)
        p = np.array([p_values[j] for j in pool])
        if np.isnan(p).all():
            break
        q = adjust_pvalues(p)
        best = int(np.nanargmin(p))
        if not q[best] < alpha:
            break
        distinct.append(pool.pop(best))
    if not distinct or len(pool) < 2:
        return
    groups = np.empty(k, dtype=np.int64)
    groups[distinct] = np.arange(len(distinct))
    groups[pool] = len(distinct)
    candidate.groups = groups
    candidate.evidence["scored_alike"] = [candidate.labels[j] for j in pool]
    candidate.evidence["scored_alike_rate"] = float(
        candidate.events[pool].sum() / candidate.counts[pool].sum()
    )


# ---------------------------------------------------------------------------------------------
# Model


def _fit_logistic(
    codes: np.ndarray, woe_tables: list[np.ndarray], y: np.ndarray, l2: float
) -> np.ndarray:
    """L2-regularised logistic regression of ``y`` on WoE columns; returns [intercept, betas].

    ``codes[:, j]`` indexes ``woe_tables[j]``. Rows with the same bins have the same features,
    so the fit runs on distinct bin combinations with (events, non-events) counts: the same
    likelihood, far fewer rows.
    """
    import statsmodels.api as sm
    from statsmodels.tools.sm_exceptions import ConvergenceWarning

    inverse, combos = combination_index(codes, [len(t) for t in woe_tables])
    trials = np.bincount(inverse, minlength=len(combos)).astype(float)
    events = np.bincount(inverse, weights=y, minlength=len(combos))
    endog = np.column_stack([events, trials - events])
    features = [table[combos[:, j]] for j, table in enumerate(woe_tables)]
    exog = np.column_stack([np.ones(len(combos)), *features])
    model = sm.GLM(endog, exog, family=sm.families.Binomial())
    # statsmodels' ridge objective is loglik / nobs - alpha * beta^2 / 2 with nobs the number of
    # aggregated rows; scale alpha so the penalty is l2 * beta^2 / 2 on the full log-likelihood.
    penalty = np.full(exog.shape[1], l2 / model.nobs)
    penalty[0] = 0.0
    with warnings.catch_warnings():
        warnings.simplefilter("error", ConvergenceWarning)
        try:
            fitted = model.fit_regularized(alpha=penalty, L1_wt=0.0, opt_method="bfgs")
        except ConvergenceWarning:
            fitted = model.fit_regularized(alpha=penalty, L1_wt=0.0, opt_method="nm")
    return np.asarray(fitted.params, dtype=float)


def _whole_points(contributions: list[np.ndarray]) -> list[np.ndarray]:
    """Shift and scale log-odds contributions to whole points: min total 0, max total exactly 100.

    Each attribute's range is its share of 100 by the largest-remainder rule, so the ranges add
    up to exactly 100 after rounding; within an attribute the worst bin gets 0 and the best its
    whole range.
    """
    spans = np.array([c.max() - c.min() for c in contributions])
    shares = 100 * spans / spans.sum()
    ranges = np.floor(shares).astype(int)
    remainder = 100 - ranges.sum()
    order = np.argsort(-(shares - ranges), kind="stable")
    ranges[order[:remainder]] += 1
    points = []
    for contribution, span, whole in zip(contributions, spans, ranges, strict=True):
        if span == 0 or whole == 0:
            points.append(np.zeros(contribution.size, dtype=int))
            continue
        scaled = np.rint((contribution - contribution.min()) / span * whole).astype(int)
        points.append(scaled)
    return points


def _tier_cutoffs(scores: np.ndarray, shares: Sequence[float]) -> list[int]:
    """Whole-point minimum scores so that tiers hold about ``shares`` of ``scores``, best first."""
    cutoffs = []
    cumulative = 0.0
    for share in shares[:-1]:
        cumulative += share
        cutoffs.append(int(np.quantile(scores, 1 - cumulative, method="higher")))
    cutoffs.append(0)
    # Heavy ties can make two cut-offs equal; keep them non-increasing (a tier may be empty).
    return [int(c) for c in np.minimum.accumulate(cutoffs)]


def fit_scorecard(
    data: pd.DataFrame,
    outcome: str,
    *,
    categorical: Sequence[str] = (),
    numeric: Sequence[str] = (),
    n_bins: int = 5,
    monotonic: str | bool = "auto",
    min_bin_share: float = 0.05,
    min_level_count: int = 10,
    nonnegative: Sequence[str] | None = None,
    rule_edges: Mapping[str, Sequence[float]] | None = None,
    select: bool = True,
    alpha: float = 0.05,
    l2: float = 1.0,
    tiers: Sequence[tuple[str, float]] | None = None,
    tier_shares: Sequence[float] = (0.2, 0.3, 0.5),
    tier_names: Sequence[str] = DEFAULT_TIERS,
    cluster: str | None = None,
) -> Scorecard:
    """Learn a 0-100 points scorecard for a boolean ``outcome`` (won, retained ...).

    Parameters
    ----------
    data : DataFrame
        Training rows (deals or accounts) with the attribute columns and ``outcome``
        (true/false or 1/0; rows where it is missing are left out).
    outcome : str
        The outcome column the score should predict.
    categorical, numeric : list of str
        Attribute columns. Numeric columns may arrive as text ("1,200").
    n_bins : int
        Quantile bins per numeric attribute before merging.
    monotonic : "auto", True or False
        Merge numeric bins into a monotone pattern: "auto" when a Spearman trend is
        significant and the bins do not depart significantly from monotone; True always;
        False never.
    min_bin_share : float
        Smallest share of rows a numeric bin may hold.
    min_level_count : int
        Categories with fewer training rows are pooled into "(other)".
    nonnegative : list of str, optional
        Numeric attributes that cannot be negative (negative values are treated as missing).
    rule_edges : mapping of attribute to cut points, optional
        The edges of rules an attribute is bounded by on both sides (the ICP's "51 to < 1,000
        employees"): added to its cut points, and its bins are never merged into a monotone
        pattern, so that the score does not contradict the rule (a trend over every size can
        miss the fall past the range that the rule found and confirmed).
        Default: those with no negative value in training.
    select : bool
        Give no points to attributes without evidence of association with the outcome
        (chi-square, or with ``cluster`` a cluster-robust score test; Benjamini-Hochberg
        q >= ``alpha``).
    alpha : float
        Significance level of the selection and monotonicity checks.
    l2 : float
        Ridge penalty on the logistic regression coefficients (on the full log-likelihood).
    tiers : list of (name, min_score), optional
        Fixed tier cut-offs, best first. Default: cut-offs so that the training rows split by
        ``tier_shares`` (top 20% / next 30% / rest) into ``tier_names``.
    cluster : str, optional
        Column of cluster ids (the account of each deal). The selection test then counts
        accounts, not deals, as the independent units (cluster-robust score test, F with
        accounts - 1 degrees of freedom): an account with many deals that all won is one
        account's worth of evidence.

    Returns
    -------
    Scorecard
        Whole points per level or bin; the lowest reachable total is 0 and the highest 100.

    Raises
    ------
    NotEnoughData
        When the outcome has fewer than 10 rows of either class, or no attribute carries
        evidence about it (a score would be noise).

    Notes
    -----
    An attribute's *neutral* points are the training rows' average points on it (rounded to a
    whole point); missing values, unreadable numbers and unseen categories score them, in
    training as in scoring. Without ``cluster`` the selection test treats rows as independent:
    when one account has many deals it is optimistic (on data where nothing matters it keeps
    noise attributes far more often than ``alpha``), so pass ``cluster`` for deals. Attributes whose coefficient turns non-positive next to the others are dropped
    (and listed in ``dropped``) rather than given points against their own rates.
    """
    categorical, numeric = list(categorical), list(numeric)
    if monotonic not in ("auto", True, False):
        raise DataError(f"monotonic must be 'auto', True or False, not {monotonic!r}")
    if not categorical and not numeric:
        raise DataError("fit_scorecard needs at least one categorical or numeric attribute")
    _require_columns(data, categorical + numeric + ([cluster] if cluster else []))
    y_all = _outcome_values(data, outcome)
    known = ~np.isnan(y_all)
    frame = data.loc[known] if not known.all() else data
    y = y_all[known]
    clusters = frame[cluster].to_numpy() if cluster else None
    events_total, n_total = float(y.sum()), float(y.size)
    caveats: list[str] = []
    if (~known).any():
        caveats.append(f"{int((~known).sum()):,} rows with an unknown {outcome} were left out.")
    if min(events_total, n_total - events_total) < MIN_CLASS_SIZE:
        raise NotEnoughData(
            f"cannot fit a score for {outcome!r}: {int(events_total):,} rows with it and "
            f"{int(n_total - events_total):,} without (at least {MIN_CLASS_SIZE} of each needed)."
        )
    if min(events_total, n_total - events_total) < 50:
        caveats.append(
            f"Only {int(min(events_total, n_total - events_total))} rows in the rarer outcome "
            "class: points are unstable; treat the score as a draft."
        )

    candidates = []
    rule_edges = dict(rule_edges or {})
    for name in numeric:
        candidates.append(
            _numeric_candidate(
                name,
                frame[name],
                y,
                n_bins=n_bins,
                min_bin_share=min_bin_share,
                monotonic=False if name in rule_edges else monotonic,
                alpha=alpha,
                nonnegative=None if nonnegative is None else name in nonnegative,
                edges=rule_edges.get(name, ()),
            )
        )
    for name in categorical:
        candidates.append(
            _categorical_candidate(name, frame[name], y, min_level_count=min_level_count)
        )

    dropped: list[dict] = []
    # The accounts as numbers, once for every candidate's test (not a text id per row each).
    cluster_codes = None
    if clusters is not None:
        cluster_codes = pd.factorize(frame[cluster])[0].astype(float)
        cluster_codes[cluster_codes < 0] = np.nan
    p_values = np.array([_association_pvalue(c, y, cluster_codes) for c in candidates])
    q_values = adjust_pvalues(p_values)
    kept = []
    for candidate, p, q in zip(candidates, p_values, q_values, strict=True):
        candidate.evidence.update({"p_value": p, "q_value": q})
        if candidate.evidence.get("unreadable_rows"):
            caveats.append(
                f"{candidate.name}: {candidate.evidence['unreadable_rows']:,} training values "
                "are not numbers and were treated as missing."
            )
        if candidate.n_missing:
            share = candidate.n_missing / n_total
            caveats.append(
                f"{candidate.name} is missing for {share:.0%} of training rows; "
                "missing values score neutral."
            )
        if len(candidate.labels) < 2:
            dropped.append({"name": candidate.name, "reason": "a single level or bin in training"})
        elif np.isnan(p):
            dropped.append(
                {
                    "name": candidate.name,
                    "reason": f"cannot be tested: {outcome} does not vary among rows with a value",
                }
            )
        elif select and not q < alpha:
            dropped.append(
                {
                    "name": candidate.name,
                    "reason": f"no evidence of association with {outcome} "
                    f"(q = {q:.2g} after Benjamini-Hochberg)",
                }
            )
        else:
            kept.append(candidate)
    cluster_codes = None if clusters is None else pd.factorize(pd.Series(clusters))[0]
    for candidate in kept:
        _pool_indistinct_levels(candidate, y, cluster_codes, alpha)
        alike = candidate.evidence.get("scored_alike")
        if alike:
            caveats.append(
                f"{candidate.name}: {len(alike)} of {len(candidate.labels)} levels do not "
                f"differ from one another (each tested against the levels that do not "
                f"differ, Benjamini-Hochberg q >= {alpha:g}) and score alike, by their pooled rate "
                f"({candidate.evidence['scored_alike_rate']:.0%}): "
                f"{_listed(alike)}."
            )

    # Each row's WoE per attribute; missing rows get the population-weighted mean (neutral).
    while True:
        if not kept:
            raise NotEnoughData(
                f"no attribute carries evidence about {outcome!r} "
                f"({', '.join(d['name'] for d in dropped)} tested); a fit score would be noise."
            )
        woes, neutral_woes = [], []
        for candidate in kept:
            woe = candidate.woe()
            neutral = float(np.average(woe, weights=candidate.counts))
            woes.append(woe)
            neutral_woes.append(neutral)
        params = _fit_logistic(
            np.column_stack([c.codes for c in kept]),
            [np.append(w, nw) for w, nw in zip(woes, neutral_woes, strict=True)],
            y,
            l2,
        )
        betas = params[1:]
        reversed_ = [c for c, b in zip(kept, betas, strict=True) if not b > 0]
        if not reversed_:
            break
        # A sign reversed by overlapping attributes would give points against the attribute's
        # own rates; drop it and refit rather than show sales a contradiction.
        for candidate in reversed_:
            dropped.append(
                {
                    "name": candidate.name,
                    "reason": "adds nothing once the other attributes are known "
                    "(its coefficient turned non-positive)",
                }
            )
        kept = [c for c in kept if c not in reversed_]

    contributions = [b * w for b, w in zip(betas, woes, strict=True)]
    if sum(c.max() - c.min() for c in contributions) <= 0:
        raise NotEnoughData(
            f"the attributes do not separate rows with and without {outcome!r}; "
            "a fit score would be flat."
        )
    points = _whole_points(contributions)
    span_total = float(sum(c.max() - c.min() for c in contributions))
    attributes = []
    for candidate, beta, pts in zip(kept, betas, points, strict=True):
        neutral = int(np.rint(np.average(pts, weights=candidate.counts)))
        attributes.append(
            Attribute(
                name=candidate.name,
                kind=candidate.kind,
                labels=list(candidate.labels),
                points=[int(p) for p in pts],
                neutral=neutral,
                counts=[int(n) for n in candidate.counts],
                rates=[float(r) for r in candidate.rates],
                weight=float(beta),
                edges=list(candidate.edges),
                nonnegative=candidate.nonnegative,
                observed_min=candidate.observed_min,
                observed_max=candidate.observed_max,
                monotone=candidate.monotone,
                other_members=list(candidate.other_members),
                evidence={k: v for k, v in candidate.evidence.items() if v is not None},
            )
        )
    if tiers is None:
        if len(tier_shares) != len(tier_names):
            raise DataError(
                f"tier_shares {list(tier_shares)} and tier_names {list(tier_names)} differ "
                "in length; give one share per tier"
            )
        training_scores = np.zeros(int(n_total), dtype=np.int64)
        for candidate, attribute in zip(kept, attributes, strict=True):
            training_scores += attribute.points_of(candidate.codes)
        tiers = list(zip(tier_names, _tier_cutoffs(training_scores, tier_shares), strict=True))
    scorecard = Scorecard(
        outcome=outcome,
        attributes=attributes,
        tiers=list(tiers),
        log_odds_at_0=float(params[0] + sum(c.min() for c in contributions)),
        log_odds_per_point=span_total / 100,
        training={"n": int(n_total), "events": int(events_total), "rate": events_total / n_total},
        dropped=dropped,
        caveats=caveats,
        params={
            "categorical": categorical,
            "numeric": numeric,
            "n_bins": n_bins,
            "monotonic": monotonic,
            "min_bin_share": min_bin_share,
            "min_level_count": min_level_count,
            "nonnegative": None if nonnegative is None else list(nonnegative),
            "rule_edges": {k: [float(e) for e in v] for k, v in rule_edges.items()},
            "select": select,
            "alpha": alpha,
            "l2": l2,
            "tier_shares": list(tier_shares),
            "cluster": cluster,
        },
    )
    return scorecard


# ---------------------------------------------------------------------------------------------
# Validation


def _clean_pairs(scores, outcome) -> tuple[np.ndarray, np.ndarray]:
    scores = np.asarray(scores, dtype=float)
    outcome = np.asarray(outcome, dtype=float)
    if scores.shape != outcome.shape:
        raise DataError(f"scores ({scores.size}) and outcome ({outcome.size}) differ in length")
    keep = ~np.isnan(scores) & ~np.isnan(outcome)
    return scores[keep], outcome[keep].astype(bool)


def auc(scores, outcome) -> float:
    """Area under the ROC curve of any score or probability vector for a boolean outcome.

    The Mann-Whitney U statistic over (positives x negatives), ties counting one half: the
    probability that a random row with the outcome scores above a random row without it.
    Rows where either value is missing are left out. NaN when a class is empty.
    """
    scores, outcome = _clean_pairs(scores, outcome)
    positives, negatives = scores[outcome], scores[~outcome]
    if positives.size == 0 or negatives.size == 0:
        return float("nan")
    u = sps.mannwhitneyu(positives, negatives, alternative="two-sided").statistic
    return float(u / (positives.size * negatives.size))


def _delong_se(positives: np.ndarray, negatives: np.ndarray) -> float:
    """DeLong standard error of the AUC (fast midrank algorithm of Sun & Xu, 2014)."""
    m, n = positives.size, negatives.size
    if m < 2 or n < 2:
        return float("nan")
    combined = sps.rankdata(np.concatenate([positives, negatives]))
    v10 = (combined[:m] - sps.rankdata(positives)) / n
    v01 = 1.0 - (combined[m:] - sps.rankdata(negatives)) / m
    return float(np.sqrt(v10.var(ddof=1) / m + v01.var(ddof=1) / n))


def _weighted_auc(value_code: np.ndarray, outcome: np.ndarray, weights: np.ndarray, k: int):
    """AUC from per-row weights, with scores given as ranks 0..k-1 of their distinct values."""
    positive = np.bincount(value_code, weights=weights * outcome, minlength=k)
    negative = np.bincount(value_code, weights=weights * ~outcome, minlength=k)
    below = np.cumsum(negative) - negative
    total = positive.sum() * negative.sum()
    return float((positive * (below + 0.5 * negative)).sum() / total) if total > 0 else np.nan


def _bootstrap_weights(cluster: np.ndarray, n_boot: int, seed: int):
    """Row weights for a seeded cluster bootstrap: each replicate redraws whole clusters."""
    cluster_code, clusters = pd.factorize(cluster)
    rng = np.random.default_rng(seed)
    n_clusters = len(clusters)
    for _ in range(n_boot):
        draws = rng.multinomial(n_clusters, np.full(n_clusters, 1.0 / n_clusters))
        yield draws[cluster_code].astype(float)


def auc_ci(
    scores,
    outcome,
    *,
    alpha: float = 0.05,
    cluster=None,
    n_boot: int = 1000,
    seed: int = 0,
) -> tuple[float, float, float]:
    """AUC with a ``1 - alpha`` confidence interval.

    DeLong's variance on the logit scale (which keeps the interval inside 0-1) for independent
    rows; with ``cluster`` (e.g. the account of each deal) a seeded bootstrap that resamples
    whole clusters, percentile interval. Returns ``(auc, low, high)``, NaN when a class is empty.
    """
    scores_arr = np.asarray(scores, dtype=float)
    outcome_arr = np.asarray(outcome, dtype=float)
    keep = ~np.isnan(scores_arr) & ~np.isnan(outcome_arr)
    scores_arr, positive = scores_arr[keep], outcome_arr[keep].astype(bool)
    estimate = auc(scores_arr, positive)
    if np.isnan(estimate):
        return estimate, float("nan"), float("nan")
    if cluster is not None:
        cluster = np.asarray(cluster, dtype=object)[keep]
        distinct, value_code = np.unique(scores_arr, return_inverse=True)
        replicates = np.array(
            [
                _weighted_auc(value_code, positive, w, distinct.size)
                for w in _bootstrap_weights(cluster, n_boot, seed)
            ]
        )
        low, high = np.nanquantile(replicates, [alpha / 2, 1 - alpha / 2])
        return estimate, float(low), float(high)
    se = _delong_se(scores_arr[positive], scores_arr[~positive])
    z = sps.norm.ppf(1 - alpha / 2)
    if not np.isfinite(se) or estimate in (0.0, 1.0):
        return estimate, max(0.0, estimate - z * se), min(1.0, estimate + z * se)
    logit = math.log(estimate / (1 - estimate))
    half_width = z * se / (estimate * (1 - estimate))
    return (
        estimate,
        1 / (1 + math.exp(-(logit - half_width))),
        1 / (1 + math.exp(-(logit + half_width))),
    )


@dataclass(repr=False)
class ScorecardValidation(Result):
    """What :func:`validate_scorecard` measured.

    ``summary`` is the tier table (``tier``, ``min_score``, ``n``, ``events``, ``rate`` with
    ``ci_low`` / ``ci_high``, and value columns when a value was given); ``tables`` holds
    ``calibration`` (score groups vs observed rate) and ``ratios`` (Tier 1 vs last tier, ICP vs
    non-ICP). ``auc`` / ``auc_low`` / ``auc_high`` is the ranking quality on the holdout.
    """

    auc: float = float("nan")
    auc_low: float = float("nan")
    auc_high: float = float("nan")
    n: int = 0
    events: int = 0

    def to_dict(self) -> dict:
        """The ``validation`` part of ``artifacts/icp.json`` (JSON-ready)."""

        def records(frame: pd.DataFrame) -> list[dict]:
            return [
                {k: to_jsonable(v) if not isinstance(v, str) else v for k, v in row.items()}
                for row in frame.to_dict(orient="records")
            ]

        return {
            "outcome": self.params.get("outcome"),
            "holdout_n": int(self.n),
            "holdout_events": int(self.events),
            "auc": to_jsonable(self.auc),
            "auc_ci": [to_jsonable(self.auc_low), to_jsonable(self.auc_high)],
            "auc_interval": self.params.get("interval"),
            "tiers": records(self.summary),
            "ratios": records(self.tables.get("ratios", pd.DataFrame())),
            "findings": list(self.findings),
            "caveats": list(self.caveats),
        }


def _cluster_bootstrap(scores, y, tier_code, n_tiers, cluster, n_boot, seed) -> dict:
    """Seeded cluster-bootstrap replicates of the AUC, tier rates and the two tier ratios.

    One pass per replicate over row weights (how often each row's cluster was redrawn), so
    memory stays at one weight vector whatever ``n_boot`` is.
    """
    distinct, value_code = np.unique(scores, return_inverse=True)
    out = {"auc": [], "rates": [], "top_vs_bottom": [], "icp_vs_rest": []}
    with np.errstate(invalid="ignore", divide="ignore"):
        for weights in _bootstrap_weights(cluster, n_boot, seed):
            out["auc"].append(_weighted_auc(value_code, y, weights, distinct.size))
            tier_weight = np.bincount(tier_code, weights=weights, minlength=n_tiers)
            tier_hits = np.bincount(tier_code, weights=weights * y, minlength=n_tiers)
            rates = tier_hits / tier_weight
            rest_rate = (tier_hits[1:].sum()) / tier_weight[1:].sum()
            out["rates"].append(rates)
            out["top_vs_bottom"].append(rates[0] / rates[-1])
            out["icp_vs_rest"].append(rates[0] / rest_rate)
    return {key: np.asarray(values, dtype=float) for key, values in out.items()}


def _percentile_interval(replicates: np.ndarray, alpha: float, axis=None):
    replicates = np.where(np.isfinite(replicates), replicates, np.nan)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", RuntimeWarning)
        return np.nanquantile(replicates, [alpha / 2, 1 - alpha / 2], axis=axis)


def _value_table(amounts: np.ndarray, y: np.ndarray, tier_code: np.ndarray, k: int, alpha):
    rows = []
    for code in range(k):
        money = amounts[(tier_code == code) & y & ~np.isnan(amounts)]
        low = high = np.nan
        if money.size >= 2 and money.std() > 0:
            low, high = sps.t.interval(
                1 - alpha, money.size - 1, loc=money.mean(), scale=sps.sem(money)
            )
        rows.append(
            {
                "value_n": int(money.size),
                "value_mean": money.mean() if money.size else np.nan,
                "value_ci_low": low,
                "value_ci_high": high,
                "value_median": np.median(money) if money.size else np.nan,
            }
        )
    return pd.DataFrame(rows)


def _design_effect(y: np.ndarray, rows: np.ndarray, groups) -> float:
    """Kish's design effect of the outcome rate over ``rows`` clustered in ``groups`` (at least
    1; 1 without groups or when it cannot be estimated)."""
    if groups is None:
        return 1.0
    _, code = np.unique(np.asarray(groups)[rows], return_inverse=True)
    events = np.bincount(code, weights=y[rows].astype(float))
    trials = np.bincount(code).astype(float)
    deff = cluster_design_effect(events, trials)
    return float(deff) if np.isfinite(deff) and deff > 1 else 1.0


def _count_words(events: int, n: int, unit: str) -> str:
    """'none of 215 deals', '128 of 266 deals (48%)', 'all 12 deals'."""
    if events == 0:
        return f"none of {n:,} {unit}"
    if events == n:
        return f"all {n:,} {unit}"
    return f"{events:,} of {n:,} {unit} ({events / n:.0%})"


def _zero_cell_sentence(row: dict, outcome: str, where: str, unit: str) -> tuple[str, bool]:
    """(sentence, is_finding) when exactly one group has no one with ``outcome``: Fisher's
    exact test says whether that is a clear difference; "not enough evidence" is left for
    samples too small for any split to be one."""
    a, b = row["group_a"], row["group_b"]
    counts = (
        f"{a} has the {outcome} outcome in {_count_words(row['events_a'], row['n_a'], unit)}, "
        f"{b} in {_count_words(row['events_b'], row['n_b'], unit)}"
    )
    p = row["p_exact"]
    test = f"Fisher's exact test p {'< 0.001' if p < 0.001 else f'= {p:.3f}'}"
    if p < row.get("alpha", 0.05):
        bound = (
            f"; the rate ratio is not finite, at least {row['ci_low']:.1f}x by its 95% CI"
            if np.isinf(row["ratio"]) and np.isfinite(row["ci_low"])
            else (
                f"; rate ratio 0, at most {row['ci_high']:.2f}x by its 95% CI"
                if row["ratio"] == 0 and np.isfinite(row["ci_high"])
                else ""
            )
        )
        return f"{counts} {where} ({test}{bound}).", True
    # The most lopsided split of these events would it have been clear?
    total = row["events_a"] + row["events_b"]
    extremes = [
        fisher_exact_pvalue(
            np.array([k]), np.array([row["n_a"]]), np.array([total - k]), np.array([row["n_b"]])
        )[0]
        for k in (min(total, row["n_a"]), max(0, total - row["n_b"]))
    ]
    if min(extremes) >= row.get("alpha", 0.05):
        return (
            f"Not enough evidence to compare {a} with {b} {where}: {counts}, too few for any "
            "split of them to be a clear difference.",
            False,
        )
    return f"{a} and {b} are not clearly different {where}: {counts} ({test}).", True


def _ratio_sentence(row: dict, outcome: str, where: str, unit: str = "rows") -> tuple[str, bool]:
    """(sentence, is_finding) for one comparison row of the ratio table."""
    a, b = row["group_a"], row["group_b"]
    if row["n_a"] == 0 or row["n_b"] == 0:
        return f"Not enough evidence to compare {a} with {b}: one of them is empty {where}.", False
    if np.isfinite(row.get("p_exact", np.nan)):
        return _zero_cell_sentence(row, outcome, where, unit)
    if not (np.isfinite(row["ratio"]) and np.isfinite(row["ci_low"])):
        return (
            f"Not enough evidence to compare {a} with {b}: too few with {outcome} {where}.",
            False,
        )
    interval = f"95% CI {row['ci_low']:.1f}–{row['ci_high']:.1f}x"
    rates = f"{row['rate_a']:.0%} vs {row['rate_b']:.0%}"
    if row["ci_low"] > 1:
        return (
            f"{a} has {row['ratio']:.1f}x the {outcome} rate of {b} ({interval}; {rates}) {where}.",
            True,
        )
    if np.isfinite(row["ci_high"]) and row["ci_high"] < 1:
        # "not clearly different" beside an interval below 1 read as a mistake: it is clearly
        # different, the wrong way round.
        return (
            f"{a} has only {row['ratio']:.1f}x the {outcome} rate of {b} ({interval}; {rates}) "
            f"{where}: the wrong way round.",
            True,
        )
    return (
        f"{a} and {b} are not clearly different {where}: {outcome} rate ratio "
        f"{row['ratio']:.1f}x ({interval}; {rates}).",
        True,
    )


def validate_scorecard(
    scorecard: Scorecard,
    holdout: pd.DataFrame,
    outcome: str,
    *,
    value: str | None = None,
    cluster: str | None = None,
    unit: str = "rows",
    n_groups: int = 10,
    alpha: float = 0.05,
    n_boot: int = 1000,
    seed: int = 0,
) -> ScorecardValidation:
    """Measure a scorecard on rows it was not fitted on (a time-based holdout).

    Parameters
    ----------
    scorecard : Scorecard
    holdout : DataFrame
        Rows with the attribute columns and ``outcome``; rows with an unknown outcome are left
        out.
    outcome : str
        Boolean outcome column (won, retained ...).
    value : str, optional
        A money column (e.g. ACV) averaged per tier over the rows with the outcome.
    cluster : str, optional
        Column grouping dependent rows (the account of each deal): intervals then come from a
        seeded bootstrap over clusters (``n_boot``, ``seed``) instead of DeLong / Wilson / Katz.
    unit : str
        What a row is, for the sentences ("deals", "accounts").
    n_groups : int
        Score groups (quantiles) of the calibration table.

    Returns
    -------
    ScorecardValidation
        AUC with interval, tier table (rates as fractions with intervals and n), calibration
        and ratio tables, and plain-language findings. A holdout with one outcome class gives a
        NaN AUC and a "not enough evidence" caveat, not an error.
    """
    y_all = _outcome_values(holdout, outcome)
    known = ~np.isnan(y_all)
    rows = holdout.loc[known] if not known.all() else holdout
    y = y_all[known].astype(bool)
    scores = scorecard.score(rows, reasons=False)["fit_score"].to_numpy()
    tier_names = [name for name, _ in scorecard.tiers]
    k = len(tier_names)
    tier_code = np.asarray(scorecard.tier_of(scores).codes)
    n, events = int(y.size), int(y.sum())
    where = f"on the holdout of {n:,} {unit}"
    findings: list[str] = []
    caveats: list[str] = []
    if (~known).any():
        caveats.append(f"{int((~known).sum()):,} holdout rows with an unknown {outcome} left out.")
    one_class = events in (0, n)
    if n == 0:
        caveats.append(f"Not enough evidence: the holdout has no rows with a known {outcome}.")
    boot = None
    if cluster is not None:
        if cluster not in rows.columns:
            raise DataError(f"cluster column {cluster!r} not found in the holdout")
        groups = rows[cluster].to_numpy()
        if n:
            boot = _cluster_bootstrap(scores, y, tier_code, k, groups, n_boot, seed)

    # Outcome rate (and value) per tier.
    tier_n = np.bincount(tier_code, minlength=k).astype(float)
    tier_events = np.bincount(tier_code, weights=y, minlength=k)
    with np.errstate(invalid="ignore", divide="ignore"):
        tier_rate = tier_events / tier_n
    if boot is not None:
        rate_low, rate_high = _percentile_interval(boot["rates"], alpha, axis=0)
    else:
        rate_low, rate_high = proportion_ci(tier_events, tier_n, alpha)
    tier_table = pd.DataFrame(
        {
            "tier": tier_names,
            "min_score": [m for _, m in scorecard.tiers],
            "n": tier_n.astype(int),
            "share": tier_n / max(n, 1),
            "events": tier_events.astype(int),
            "rate": tier_rate,
            "ci_low": rate_low,
            "ci_high": rate_high,
        }
    )
    empty = [name for name, count in zip(tier_names, tier_n, strict=True) if count == 0]
    if n and empty and 1 < len(np.unique(scores[np.isfinite(scores)])) <= 5:
        # A score of one yes/no attribute takes two or three values: a middle tier with no one
        # in it is the score's shape, not a finding about those accounts.
        values = ", ".join(f"{v:g}" for v in np.unique(scores[np.isfinite(scores)]))
        caveats.append(
            f"{' and '.join(empty)} {'holds' if len(empty) == 1 else 'hold'} none of the "
            f"{n:,} {unit}: the score takes only the values {values} (few attributes with few "
            "levels), so no one falls between those cut-offs."
        )
    if value is not None:
        if value not in rows.columns:
            raise DataError(f"value column {value!r} not found in the holdout")
        amounts, _ = coerce_numeric(rows[value])
        tier_table = pd.concat([tier_table, _value_table(amounts, y, tier_code, k, alpha)], axis=1)
        caveats.append(
            f"{value} is averaged over the {unit} with {outcome} in each tier (t intervals; "
            "money is skewed, so read the median too)."
        )

    # Ranking quality.
    if n == 0:
        auc_value = auc_low = auc_high = float("nan")
    elif one_class:
        auc_value = auc_low = auc_high = float("nan")
        caveats.append(
            f"Not enough evidence: every holdout row has {outcome} = "
            f"{'true' if events else 'false'}, so the ranking (AUC) cannot be measured."
        )
    else:
        if boot is not None:
            auc_value = auc(scores, y)
            auc_low, auc_high = (float(v) for v in _percentile_interval(boot["auc"], alpha))
        else:
            auc_value, auc_low, auc_high = auc_ci(scores, y, alpha=alpha)
        one = unit[:-1] if unit.endswith("s") else unit
        findings.append(
            f"The fit score ranks a random {one} with {outcome} above one without it "
            f"{auc_value:.0%} of the time (AUC {auc_value:.2f}, 95% CI {auc_low:.2f}–"
            f"{auc_high:.2f}; 0.5 is chance) {where}."
        )

    # Best tier vs worst tier, and best tier (the ICP) vs every other tier.
    comparisons = [
        (tier_names[0], tier_names[-1], tier_code == 0, tier_code == k - 1, "top_vs_bottom"),
        (
            f"the ICP ({tier_names[0]})",
            "the rest",
            tier_code == 0,
            tier_code != 0,
            "icp_vs_rest",
        ),
    ]
    ratio_rows = []
    for name_a, name_b, in_a, in_b, key in comparisons:
        k1, n1 = float(y[in_a].sum()), float(in_a.sum())
        k2, n2 = float(y[in_b].sum()), float(in_b.sum())
        ratio = low = high = p_exact = np.nan
        if min(n1, n2) > 0 and (k1 == 0) != (k2 == 0):
            # A group without events: the bootstrap's ratios are all 0 or infinite, so the
            # interval is the score interval and the test Fisher's exact test, on the
            # effective sample sizes when rows cluster in accounts.
            deff = _design_effect(y, in_a | in_b, groups if boot is not None else None)
            e1, m1, e2, m2 = (v / deff for v in (k1, n1, k2, n2))
            ratio, low, high = (float(v) for v in ratio_ci(e1, m1, e2, m2, alpha))
            counts = [round(e1), max(int(m1), 1), round(e2), max(int(m2), 1)]
            p_exact = float(fisher_exact_pvalue(*(np.array([c]) for c in counts))[0])
        elif min(n1, n2) > 0:
            ratio, low, high = (float(v) for v in ratio_ci(k1, n1, k2, n2, alpha))
            if boot is not None:
                low, high = (float(v) for v in _percentile_interval(boot[key], alpha))
        ratio_rows.append(
            {
                "comparison": f"{name_a} vs {name_b}",
                "group_a": name_a,
                "group_b": name_b,
                "n_a": int(n1),
                "events_a": int(k1),
                "rate_a": k1 / n1 if n1 else np.nan,
                "n_b": int(n2),
                "events_b": int(k2),
                "rate_b": k2 / n2 if n2 else np.nan,
                "ratio": ratio,
                "ci_low": low,
                "ci_high": high,
                "p_exact": p_exact,
                "alpha": alpha,
            }
        )
    for row in ratio_rows if not one_class else []:
        sentence, is_finding = _ratio_sentence(row, outcome, where, unit)
        (findings if is_finding else caveats).append(sentence[0].upper() + sentence[1:])
    ratios = pd.DataFrame(ratio_rows)

    calibration = _calibration_table(scorecard, scores, y, n_groups, alpha)
    if n and not one_class:
        predicted = float(np.mean(scorecard.probability(scores)))
        obs_low, obs_high = (float(v) for v in proportion_ci(events, n, alpha))
        if not obs_low <= predicted <= obs_high:
            caveats.append(
                f"The holdout's {outcome} rate ({events / n:.0%}, 95% CI {obs_low:.0%}–"
                f"{obs_high:.0%}) differs from what the training fit predicts ({predicted:.0%}): "
                "read scores as ranks, not probabilities."
            )
    if n < 200:
        caveats.append(f"Small holdout ({n:,} {unit}): intervals are wide.")
    if cluster is None:
        caveats.append(
            "Intervals treat holdout rows as independent; pass cluster= (the account) when "
            "one account has several rows."
        )
    return ScorecardValidation(
        title=f"Fit score validation: {outcome} on {n:,} holdout {unit}",
        summary=tier_table,
        findings=findings,
        caveats=caveats,
        tables={"calibration": calibration, "ratios": ratios},
        params={
            "outcome": outcome,
            "value": value,
            "cluster": cluster,
            "unit": unit,
            "alpha": alpha,
            "interval": "cluster bootstrap" if cluster else "DeLong",
            "n_boot": n_boot if cluster else None,
            "seed": seed if cluster else None,
        },
        auc=auc_value,
        auc_low=auc_low,
        auc_high=auc_high,
        n=n,
        events=events,
    )


def _calibration_table(scorecard, scores, y, n_groups, alpha) -> pd.DataFrame:
    columns = [
        "score_group",
        "n",
        "events",
        "rate",
        "ci_low",
        "ci_high",
        "mean_score",
        "predicted_rate",
    ]
    if scores.size == 0:
        return pd.DataFrame(columns=columns)
    # Whole-point scores tie heavily; quantile groups collapse where cut points coincide.
    edges = np.unique(np.quantile(scores, np.linspace(0, 1, n_groups + 1)))
    group = np.clip(np.searchsorted(edges, scores, side="right") - 1, 0, max(len(edges) - 2, 0))
    k = max(len(edges) - 1, 1)
    count = np.bincount(group, minlength=k).astype(float)
    hits = np.bincount(group, weights=y, minlength=k)
    total = np.bincount(group, weights=scores, minlength=k)
    low, high = proportion_ci(hits, count, alpha)
    labels = []
    for i in range(k):
        members = scores[group == i]
        labels.append(f"{int(members.min())}–{int(members.max())}" if members.size else "–")
    with np.errstate(invalid="ignore", divide="ignore"):
        table = pd.DataFrame(
            {
                "score_group": labels,
                "n": count.astype(int),
                "events": hits.astype(int),
                "rate": hits / count,
                "ci_low": low,
                "ci_high": high,
                "mean_score": total / count,
            }
        )
    table["predicted_rate"] = scorecard.probability(table["mean_score"].to_numpy())
    return table[table["n"] > 0].reset_index(drop=True)


# ---------------------------------------------------------------------------------------------
# Plots


def plot_calibration(result: ScorecardValidation, *, ax=None, color: str = "C0"):
    """Observed outcome rate (with 95% intervals) against the mean score of each score group,
    and the rate the fit predicts. Returns the Axes."""
    import matplotlib.pyplot as plt

    if ax is None:
        _, ax = plt.subplots(figsize=(6, 4))
    table = result.tables.get("calibration", pd.DataFrame())
    if table.empty:
        ax.text(0.5, 0.5, "No holdout rows", ha="center", va="center", transform=ax.transAxes)
        return ax
    outcome = result.params.get("outcome", "outcome")
    ax.errorbar(
        table["mean_score"],
        table["rate"],
        yerr=error_bars(table["rate"], table["ci_low"], table["ci_high"]),
        fmt="o",
        color=color,
        capsize=3,
        label=f"observed {outcome} rate (95% CI)",
    )
    ax.plot(
        table["mean_score"],
        table["predicted_rate"],
        color="0.4",
        linestyle="--",
        label="predicted by the fit",
    )
    ax.set_xlim(0, 100)
    ax.set_ylim(0, min(1.0, max(0.05, float(np.nanmax(table["ci_high"])) * 1.1)))
    ax.set_xlabel("Fit score (mean of the group)")
    ax.set_ylabel(f"{outcome} rate")
    ax.yaxis.set_major_formatter(lambda v, _: f"{v:.0%}")
    ax.set_title(f"Calibration on the holdout (n={result.n:,})")
    ax.legend(frameon=False, loc="upper left")
    return ax


def plot_tiers(result: ScorecardValidation, *, ax=None, color: str = "C0"):
    """Outcome rate per tier with 95% intervals, n under each bar. Returns the Axes."""
    import matplotlib.pyplot as plt

    if ax is None:
        _, ax = plt.subplots(figsize=(6, 4))
    table = result.summary
    outcome = result.params.get("outcome", "outcome")
    positions = np.arange(len(table))
    rate = table["rate"].fillna(0).to_numpy()
    ax.bar(
        positions,
        rate,
        color=color,
        yerr=error_bars(rate, table["ci_low"], table["ci_high"]),
        capsize=4,
    )
    ax.set_xticks(positions)
    ax.set_xticklabels([f"{t}\n(n={n:,})" for t, n in zip(table["tier"], table["n"], strict=True)])
    rate = _RATE_WORDS.get(str(outcome), f"{outcome} rate")
    ax.set_ylabel(rate[:1].upper() + rate[1:])
    ax.yaxis.set_major_formatter(lambda v, _: f"{v:.0%}")
    ax.set_title(f"{rate[:1].upper() + rate[1:]} by tier on the holdout (95% CI)")
    return ax
