"""Subgroup discovery: which combinations of attributes set an outcome apart?

Given one row per account (or deal) and a boolean outcome (best customer, won, retained),
:func:`find_subgroups` searches conjunctions of up to ``max_depth`` conditions such as
``industry in {FinTech, SaaS} AND 100 <= employees < 1,000`` and returns the ones where the
outcome is most over-represented, ranked by weighted relative accuracy (WRAcc) or lift.

Conditions
    A categorical column (text, category or boolean) gives one condition per value,
    ``industry = FinTech``; missing values are a level of their own (``industry is missing``).
    A numeric column is cut on data-driven, rounded cut points (:func:`binning.cut_points`) and
    gives every range of adjacent bins: ``employees < 50``, ``100 <= employees < 1,000``,
    ``employees >= 1,000``, plus ``employees is missing`` when values are missing. Value sets
    (``industry in {FinTech, SaaS}``) are formed after the search by merging, one at a time,
    values whose rate is similar (see ``value_sets``).

Search
    Exhaustive, not heuristic: for every combination of attributes, the rows are counted once
    into a contingency table of their levels (one ``np.bincount``) and the counts of every
    conjunction of conditions on those attributes follow by summing cells (a tensor
    contraction). Every conjunction with enough support is scored, so the top subgroups are
    exact and the number of subgroups searched is known, which is what the multiple-testing
    correction needs.

Statistics
    Each subgroup is compared with the rest of the rows by a two-proportion test (Fisher's exact
    test where an expected count is below 5, chi-square otherwise) and the p-values of *all*
    subgroups searched, not only the ones shown (value sets tried included), are corrected
    together (Benjamini-Hochberg by default), so that pure noise yields no significant subgroup.
    Rows that cluster (deals of one account) are not independent: with ``clusters`` every test
    and interval uses counts divided by the design effect of the outcome (a first-order
    Rao-Scott correction), so that a deal counts for less than an independent account.

Redundancy
    The best-scoring subgroups are mostly variations of one another. Going down the list, a
    subgroup is shown only if it says something the ones above it do not:

    - every condition earns its place: the subgroup's rate is significantly higher than that of
      the rows the condition drops (those matching only the other conditions), corrected over
      every such test in the search;
    - lying mostly (``OVERLAP`` of its rows or more) inside a subgroup shown, it must be a
      better core of it: a rate above that one's confidence interval and significantly above
      the rest of it;
    - holding most of a subgroup shown, it must add rows about as good (a broader version of
      it, not a dilution);
    - near-identical subgroups (Jaccard similarity ``NEAR_DUPLICATE`` or more) are collapsed.

    What was left out, and why, is in ``tables["pruned"]``.
"""

from __future__ import annotations

import heapq
import json
import math
import numbers
from dataclasses import dataclass
from itertools import combinations

import numpy as np
import pandas as pd

from icp_research.errors import InputError
from icp_research.formatting import fmt_p, fmt_rate_ci
from icp_research.methods.binning import MISSING, cut_points, fmt_edge
from icp_research.methods.stats import (
    adjust_pvalues,
    cluster_design_effect,
    effective_clusters,
    fisher_exact_pvalue,
    proportion_ci,
    two_proportion_pvalue,
)
from icp_research.result import Result

SUMMARY_COLUMNS = [
    "rank",
    "description",
    "target",
    "n",
    "coverage",
    "target_rate",
    "baseline_rate",
    "lift",
    "p_value",
    "q_value",
    "wracc",
    "ci_low",
    "ci_high",
    "lift_ci_low",
    "lift_ci_high",
    "significant",
    "depth",
    "conditions",
]

QUALITIES = ("wracc", "lift")

#: Subgroups whose rows overlap a higher-ranked one's this much (Jaccard) are collapsed into it.
NEAR_DUPLICATE = 0.95
#: Share of the smaller subgroup's rows inside a higher-ranked one from which the lower-ranked
#: subgroup must show it adds something (see ``_Walk._overlap``).
OVERLAP = 0.6

# The table of subgroups left out as redundant shows at most this many.
_PRUNED_ROWS = 200
# Contingency tables larger than this many cells are counted slice by slice.
_MAX_CELLS = 1 << 22
# Counts of the deepest conjunctions are kept up to this many cells (16 bytes each), and
# recounted when needed beyond that.
_KEPT_CELLS = 1 << 22

_CORRECTION_NAMES = {
    "fdr_bh": "Benjamini-Hochberg",
    "bh": "Benjamini-Hochberg",
    "holm": "Holm",
    "bonferroni": "Bonferroni",
    "fdr_by": "Benjamini-Yekutieli",
}


class SubgroupResult(Result):
    """Result of :func:`find_subgroups`.

    ``summary`` has one row per subgroup, best first, with the columns of ``subgroups.csv``
    (``rank, description, target, n, coverage, target_rate, baseline_rate, lift, p_value,
    q_value``) followed by ``wracc``, the Wilson interval of the target rate (``ci_low``,
    ``ci_high``), the lift interval (``lift_ci_low``, ``lift_ci_high``: the rate interval
    divided by the overall rate), ``significant`` (``q_value < alpha``), ``depth`` (number of
    conditions) and ``conditions`` (JSON, see :func:`subgroup_mask`). Rates are fractions.
    ``tables`` holds ``conditions`` (every condition searched, with its size and rate) and
    ``pruned`` (subgroups left out as redundant, with the reason).
    """

    @property
    def significant(self) -> pd.DataFrame:
        """The rows of ``summary`` that are significant after correction."""
        if self.summary.empty:
            return self.summary
        return self.summary[self.summary["significant"]]

    @property
    def family_size(self) -> int:
        """Number of subgroups searched, i.e. the size of the multiple-testing family."""
        return int(self.params.get("family_size", 0))

    def mask(self, data: pd.DataFrame, rank: int = 1) -> pd.Series:
        """Boolean Series: which rows of ``data`` belong to the subgroup of this ``rank``."""
        rows = self.summary[self.summary["rank"] == rank]
        if rows.empty:
            raise InputError(
                f"No subgroup has rank {rank}; ranks go from 1 to {len(self.summary)}."
            )
        return subgroup_mask(data, rows["conditions"].iloc[0])


# ---------------------------------------------------------------------------------------------
# Conditions


@dataclass
class _Attribute:
    """One attribute's level codes and the conditions (selectors) defined on them."""

    name: str
    kind: str  # "categorical" or "numeric"
    codes: np.ndarray  # level code per analysed row
    n_levels: int
    membership: np.ndarray  # (n_conditions, n_levels) bool: levels each condition covers
    conditions: list[dict]
    descriptions: list[str]
    values: list[str]  # categorical: the value of each condition (for value sets)

    @property
    def n_conditions(self) -> int:
        return len(self.conditions)

    @property
    def mergeable(self) -> bool:
        # A value set needs at least one value outside it to say anything.
        return self.kind == "categorical" and self.n_conditions >= 3


def _as_levels(values) -> pd.Series:
    """Categorical values as text, missing as ``(missing)`` (the form conditions compare to)."""
    return pd.Series(values, copy=False).astype("string").fillna(MISSING).astype(object)


def _is_numeric(series: pd.Series) -> bool:
    return pd.api.types.is_numeric_dtype(series) and not pd.api.types.is_bool_dtype(series)


def _edge(x: float):
    """A cut point as a JSON-friendly number (int when whole)."""
    x = float(x)
    return int(x) if x.is_integer() else x


def _numeric_attribute(
    name: str, column: pd.Series, n_bins: int, ranges: bool, min_count: int
) -> _Attribute:
    values = pd.to_numeric(column, errors="coerce").to_numpy(dtype=float, na_value=np.nan)
    missing = np.isnan(values)
    cuts = cut_points(values, n_bins)
    n_bins_found = len(cuts) + 1
    codes = np.searchsorted(np.asarray(cuts, dtype=float), values, side="right")
    codes = np.where(missing, n_bins_found, codes).astype(np.int64)
    n_levels = n_bins_found + int(missing.any())
    level_counts = np.bincount(codes, minlength=n_levels)
    known = values[~missing]
    whole = bool(np.all(known == np.round(known)))
    members, conditions, descriptions = [], [], []
    for low in range(n_bins_found):
        for high in range(low + 1, n_bins_found + 1):
            if (low, high) == (0, n_bins_found) or (not ranges and high != low + 1):
                continue
            if level_counts[low:high].sum() < min_count:
                continue
            lo_edge = _edge(cuts[low - 1]) if low > 0 else None
            hi_edge = _edge(cuts[high - 1]) if high < n_bins_found else None
            row = np.zeros(n_levels, bool)
            row[low:high] = True
            members.append(row)
            conditions.append({"attribute": name, "op": "range", "low": lo_edge, "high": hi_edge})
            if whole and lo_edge is not None and hi_edge is not None and hi_edge - lo_edge == 1:
                # On whole numbers [k, k + 1) is one value.
                descriptions.append(f"{name} = {fmt_edge(lo_edge)}")
            elif lo_edge is None:
                descriptions.append(f"{name} < {fmt_edge(hi_edge)}")
            elif hi_edge is None:
                descriptions.append(f"{name} >= {fmt_edge(lo_edge)}")
            else:
                descriptions.append(f"{fmt_edge(lo_edge)} <= {name} < {fmt_edge(hi_edge)}")
    if missing.any() and min_count <= missing.sum() < missing.size:
        row = np.zeros(n_levels, bool)
        row[n_bins_found] = True
        members.append(row)
        conditions.append({"attribute": name, "op": "missing"})
        descriptions.append(f"{name} is missing")
    membership = np.array(members, dtype=bool).reshape(len(members), n_levels)
    return _Attribute(
        name,
        "numeric",
        codes,
        n_levels,
        membership,
        conditions,
        descriptions,
        [None] * len(members),
    )


def _categorical_attribute(
    name: str, column: pd.Series, min_count: int, max_levels: int
) -> tuple[_Attribute, int]:
    """Returns the attribute and how many eligible values were left out by ``max_levels``."""
    raw_codes, uniques = pd.factorize(column, use_na_sentinel=True)
    # Values are compared as text (see subgroup_mask): 1 and "1" are one level.
    # As _as_levels would convert them (uniques hold no missing values).
    labels = pd.Series(uniques, dtype=object).astype("string").astype(object).tolist() + [MISSING]
    label_ids, names = pd.factorize(pd.Series(labels, dtype=object))
    codes = label_ids[np.where(raw_codes < 0, len(labels) - 1, raw_codes)]
    counts = np.bincount(codes, minlength=len(names))
    eligible = [i for i, count in enumerate(counts) if min_count <= count < codes.size]
    # Most frequent first, ties by name, so the choice is deterministic.
    ranked = sorted(eligible, key=lambda i: (-counts[i], str(names[i])))
    dropped = max(0, len(ranked) - max_levels)
    kept = sorted(ranked[:max_levels], key=lambda i: str(names[i]))
    new_code = np.full(len(names), len(kept), np.int64)
    new_code[kept] = np.arange(len(kept))
    codes = new_code[codes]
    values = [str(names[i]) for i in kept]
    n_levels = len(kept) + int((codes == len(kept)).any())
    membership = np.zeros((len(kept), n_levels), bool)
    membership[np.arange(len(kept)), np.arange(len(kept))] = True
    conditions = [
        {"attribute": name, "op": "missing"}
        if value == MISSING
        else {"attribute": name, "op": "==", "value": value}
        for value in values
    ]
    descriptions = [
        f"{name} is missing" if value == MISSING else f"{name} = {value}" for value in values
    ]
    attribute = _Attribute(
        name, "categorical", codes, n_levels, membership, conditions, descriptions, values
    )
    return attribute, dropped


def _build_attributes(
    frame: pd.DataFrame,
    columns: list[str],
    *,
    min_count: int,
    n_bins: int,
    numeric_ranges: bool,
    max_levels: int,
) -> tuple[list[_Attribute], list[str]]:
    """The conditions of every usable column, and notes on the columns left out or cut short."""
    attrs, not_used, truncated = [], [], []
    for column in columns:
        series = frame[column]
        if pd.api.types.is_datetime64_any_dtype(series) or pd.api.types.is_timedelta64_dtype(
            series
        ):
            not_used.append(f"{column} (dates are not searched; derive e.g. an age in days)")
            continue
        if _is_numeric(series):
            attr = _numeric_attribute(column, series, n_bins, numeric_ranges, min_count)
        else:
            attr, dropped = _categorical_attribute(column, series, min_count, max_levels)
            if dropped:
                truncated.append(
                    f"{column}: only the {max_levels} most common of "
                    f"{max_levels + dropped} values were used"
                )
        if attr.n_conditions == 0:
            not_used.append(f"{column} (no value or range covers {min_count:,}+ rows but not all)")
            continue
        attrs.append(attr)
    notes = []
    if truncated:
        notes.append("Many values: " + "; ".join(truncated) + ".")
    if not_used:
        notes.append("Not used: " + ", ".join(not_used) + ".")
    return attrs, notes


# ---------------------------------------------------------------------------------------------
# Counting


def _level_code(attrs, combo, outcome: np.ndarray, rows=None) -> np.ndarray:
    """One integer per row numbering its cell of the (outcome x levels of ``combo``) table."""
    code = outcome if rows is None else outcome[rows]
    for a in combo:
        codes = attrs[a].codes if rows is None else attrs[a].codes[rows]
        code = code * attrs[a].n_levels + codes
    return code


def _tabulate(attrs, combo, code: np.ndarray):
    """Sizes and positives of every conjunction on ``combo``, from the rows' cell numbers.

    Returns two float arrays with one axis per attribute of ``combo``, indexed by condition.
    """
    shape = [2] + [attrs[a].n_levels for a in combo]
    cube = np.bincount(code, minlength=math.prod(shape)).reshape(shape).astype(float)
    sizes, positives = cube[0] + cube[1], cube[1]
    for a in combo:
        membership = attrs[a].membership.astype(float)
        # Contracting the leading level axis appends the condition axis: order is preserved.
        sizes = np.tensordot(sizes, membership, axes=([0], [1]))
        positives = np.tensordot(positives, membership, axes=([0], [1]))
    return sizes, positives


def _count(attrs, combo, outcome: np.ndarray, rows=None):
    """Sizes and positives of every conjunction on ``combo`` over ``rows`` (default: all)."""
    if len(combo) > 1 and 2 * math.prod(attrs[a].n_levels for a in combo) > _MAX_CELLS:
        # Too many cells for one table: count the others within each condition of the first.
        first = attrs[combo[0]]
        first_codes = first.codes if rows is None else first.codes[rows]
        all_rows = np.arange(outcome.size) if rows is None else rows
        counts = [
            _count(attrs, combo[1:], outcome, all_rows[members[first_codes]])
            for members in first.membership
        ]
        return np.stack([n for n, _ in counts]), np.stack([p for _, p in counts])
    return _tabulate(attrs, combo, _level_code(attrs, combo, outcome, rows))


class _Search:
    """Counts of every conjunction with enough support, as flat candidate arrays."""

    def __init__(self, attrs, positive, min_count, max_depth):
        self.attrs = attrs
        self.outcome = positive.astype(np.int64)
        self.total = float(positive.size)
        self.total_positive = float(positive.sum())
        self.min_count = min_count
        self.max_depth = max_depth
        # Counts are divided by this before any test or interval (1: independent rows).
        self.design_effect = 1.0
        self.combos: list[tuple[int, ...]] = []
        self.combo_id: dict[tuple[int, ...], int] = {}
        self._tensors: dict[int, tuple[np.ndarray, np.ndarray]] = {}
        self._recounted: dict[int, tuple[np.ndarray, np.ndarray]] = {}
        # Candidates of combination cid are combo_start[cid]:combo_start[cid + 1].
        self.combo_start = [0]
        combo_ids, flats, sizes, positives = [], [], [], []
        usable = [i for i, attr in enumerate(attrs) if attr.n_conditions > 0]
        prefix, prefix_code = None, None
        kept_cells = 0
        for depth in range(1, max_depth + 1):
            for combo in combinations(usable, depth):
                cid = len(self.combos)
                self.combos.append(combo)
                self.combo_id[combo] = cid
                if 2 * math.prod(attrs[a].n_levels for a in combo) > _MAX_CELLS:
                    n, p = _count(attrs, combo, self.outcome)
                else:
                    # Consecutive combinations share all but their last attribute.
                    if combo[:-1] != prefix:
                        prefix = combo[:-1]
                        prefix_code = _level_code(attrs, prefix, self.outcome)
                    last = attrs[combo[-1]]
                    n, p = _tabulate(attrs, combo, prefix_code * last.n_levels + last.codes)
                # Parents (depth < max_depth) are always kept; the deepest while memory allows.
                if depth < max_depth or kept_cells + n.size <= _KEPT_CELLS:
                    self._tensors[cid] = (n, p)
                    kept_cells += n.size
                n_flat, p_flat = n.reshape(-1), p.reshape(-1)
                keep = np.flatnonzero((n_flat >= min_count) & (n_flat < self.total))
                self.combo_start.append(self.combo_start[-1] + keep.size)
                combo_ids.append(np.full(keep.size, cid, np.int32))
                flats.append(keep)
                sizes.append(n_flat[keep])
                positives.append(p_flat[keep])
        self.cand_combo = np.concatenate(combo_ids or [np.zeros(0, np.int32)])
        self.cand_flat = np.concatenate(flats or [np.zeros(0, np.int64)])
        self.cand_n = np.concatenate(sizes or [np.zeros(0)])
        self.cand_p = np.concatenate(positives or [np.zeros(0)])
        depth_of_combo = np.array([len(c) for c in self.combos] or [0], dtype=np.int64)
        self.cand_depth = depth_of_combo[self.cand_combo]

    def tensors(self, cid: int):
        """Counts of every conjunction of combination ``cid`` (recounted when not kept)."""
        if cid in self._tensors:
            return self._tensors[cid]
        if cid not in self._recounted:
            if len(self._recounted) >= 64:
                self._recounted.pop(next(iter(self._recounted)))
            self._recounted[cid] = _count(self.attrs, self.combos[cid], self.outcome)
        return self._recounted[cid]

    def shape(self, cid: int) -> tuple[int, ...]:
        return tuple(self.attrs[a].n_conditions for a in self.combos[cid])

    def selectors(self, g: int) -> tuple[int, ...]:
        cid = int(self.cand_combo[g])
        return tuple(int(i) for i in np.unravel_index(int(self.cand_flat[g]), self.shape(cid)))

    def counts_of(self, combo: tuple[int, ...], selectors: tuple[int, ...]) -> tuple[float, float]:
        """Size and positives of one conjunction; the empty conjunction is every row."""
        if not combo:
            return self.total, self.total_positive
        n, p = self.tensors(self.combo_id[combo])
        return float(n[selectors]), float(p[selectors])


# ---------------------------------------------------------------------------------------------
# Quality and the subgroups found


def _quality(n, p, total, total_positive, quality: str):
    """WRAcc = coverage x (target rate - baseline rate); lift = target rate / baseline rate."""
    n = np.asarray(n, dtype=float)
    p = np.asarray(p, dtype=float)
    with np.errstate(invalid="ignore", divide="ignore"):
        if quality == "wracc":
            return (n / total) * (p / n - total_positive / total)
        return (p / n) / (total_positive / total)


#: Chi-square p-values below this are recomputed with Fisher's exact test, for tables whose
#: smaller group has at most EXACT_MAX_N rows: in the tail, where a search's significance is
#: decided, the approximation is several times too small for a subgroup of some dozens (23 of
#: 51 against 20%: 1.9e-5 against the exact 7.9e-5); for thousands of rows it is close.
EXACT_TAIL = 0.01
EXACT_MAX_N = 2000


def _pvalue(k1, n1, k2, n2, design_effect: float = 1.0) -> np.ndarray:
    """Two-proportion p-values on effective counts: counts divided by the design effect.

    With clustered rows (deals of one account) the binomial variance understates the real one
    by the design effect; dividing every count by it (rounded, so that small tables still get
    Fisher's exact test) is the first-order Rao-Scott correction of the test. Pearson's
    chi-square p-values below :data:`EXACT_TAIL` are Fisher's exact ones instead (once per
    distinct table) where the smaller group has at most :data:`EXACT_MAX_N` rows.
    """
    counts = [np.atleast_1d(np.asarray(x, dtype=float)) for x in (k1, n1, k2, n2)]
    if design_effect != 1.0:
        counts = [np.round(x / design_effect) for x in counts]
    counts = np.broadcast_arrays(*counts)
    out = two_proportion_pvalue(*counts)
    tail = (out < EXACT_TAIL) & (np.minimum(counts[1], counts[3]) <= EXACT_MAX_N)
    if tail.any():
        out = out.copy()
        out[tail] = fisher_exact_pvalue(*(x[tail] for x in counts))
    return out


@dataclass
class _Found:
    """A subgroup on its way to the summary: per condition, a set of condition indices."""

    combo: tuple[int, ...]
    sets: list[tuple[int, ...]]
    n: float
    p: float
    quality: float
    search_index: int  # position among the candidates searched (ties keep this order)
    family_index: int  # position of its p-value in the family (differs once merged)
    cover: np.ndarray | None = None
    interval: tuple[float, float] | None = None  # confidence interval of the rate, once needed
    design_effect: float | None = None  # its own, when larger than the data's (few clusters)


# ---------------------------------------------------------------------------------------------
# The search


def find_subgroups(
    data: pd.DataFrame,
    target: str | pd.Series,
    *,
    attributes: list[str] | None = None,
    max_depth: int = 3,
    min_support: float | int = 0.05,
    top_k: int = 20,
    n_bins: int = 5,
    quality: str = "wracc",
    alpha: float = 0.05,
    correction: str = "fdr_bh",
    target_name: str | None = None,
    unit: str = "accounts",
    numeric_ranges: bool = True,
    value_sets: bool = True,
    prune_redundant: bool = True,
    max_levels: int = 30,
    clusters: str | pd.Series | None = None,
) -> SubgroupResult:
    """Find the subgroups of rows where a boolean outcome is most over-represented.

    Parameters
    ----------
    data : DataFrame
        One row per account (or deal). Categorical columns (text, category, boolean) give
        ``attr = value`` conditions, numeric columns give ranges of data-driven bins.
    target : str or Series
        The boolean outcome: a column of ``data`` or a Series with ``data``'s index. True/False
        or 1/0; rows where it is missing are left out.
    attributes : list of str, optional
        Columns to search. Default: every column but the target, except date columns and
        identifiers (``id`` or ending in ``_id``).
    max_depth : int
        Largest number of conditions in a subgroup.
    min_support : float or int
        Smallest subgroup: a fraction of the rows with a known outcome (float) or a number of
        rows (int).
    top_k : int
        Number of subgroups returned.
    n_bins : int
        Number of quantile bins per numeric attribute (fewer when the data has few values).
    quality : {"wracc", "lift"}
        Ranking: weighted relative accuracy (coverage x rate difference; favours large groups
        with a clear difference) or lift (rate ratio; favours small, extreme groups).
    alpha : float
        Significance level after correction; also sets the confidence level of the intervals.
    correction : str
        Multiple-testing correction over every subgroup searched (see
        :func:`stats.adjust_pvalues`).
    target_name : str, optional
        Name of the outcome in the table and in sentences. Default: the column or Series name.
    unit : str
        What a row is, for sentences ("accounts", "deals").
    numeric_ranges : bool
        Also use ranges of adjacent bins (``100 <= employees < 1,000`` when bins are finer), not
        only the bins themselves.
    value_sets : bool
        Merge values of a categorical condition whose rate is similar into a value set
        (``industry in {FinTech, SaaS}``) after the search. Each merge tried counts as a
        subgroup searched.
    prune_redundant : bool
        Leave out subgroups with a condition that adds no lift, and collapse subgroups covering
        nearly the same rows. With ``False`` (and ``numeric_ranges=False``,
        ``value_sets=False``) the result is the plain top-``top_k`` by quality, as in classic
        subgroup discovery tools.
    max_levels : int
        At most this many values of one categorical attribute become conditions (the most
        frequent ones).
    clusters : str or Series, optional
        The account of each row when rows are not independent (deals): a column of ``data``
        (not searched) or a Series with ``data``'s index. Tests and intervals then use counts
        divided by the design effect of the outcome over these clusters (the variance of the
        overall rate under clustering over its binomial variance, at least 1): a first-order
        Rao-Scott correction. ``params`` records ``design_effect`` and ``n_clusters``.

    Only subgroups where the outcome is more common than overall are returned; to find where
    it is rarer, pass the opposite outcome (``~target``).

    Returns
    -------
    SubgroupResult
        ``summary`` (one row per subgroup, best first; rates are fractions), ``findings``
        (a sentence per significant subgroup, or a plain statement that none stands out),
        ``caveats``, ``tables`` (``conditions``, ``pruned``) and ``params`` (settings and
        ``family_size``, the number of subgroups searched).
    """
    _check_options(max_depth, min_support, top_k, n_bins, quality, alpha, max_levels)
    outcome, name = _outcome(data, target)
    columns = _attribute_columns(data, target if isinstance(target, str) else None, attributes)
    cluster_ids = _cluster_ids(data, clusters)
    if isinstance(clusters, str):
        columns = [c for c in columns if c != clusters]
    name = target_name or name
    label = name.replace("_", " ")
    known = ~np.isnan(outcome)
    frame = data if known.all() else data.loc[known]
    positive = outcome[known] == 1
    total, total_positive = int(positive.size), int(positive.sum())
    if isinstance(min_support, numbers.Integral):
        min_count = int(min_support)
    else:
        min_count = max(1, math.ceil(min_support * total - 1e-9))
    params = {
        "target": name,
        "max_depth": max_depth,
        "min_support": min_support,
        "min_count": min_count,
        "top_k": top_k,
        "n_bins": n_bins,
        "quality": quality,
        "alpha": alpha,
        "correction": correction,
        "numeric_ranges": numeric_ranges,
        "value_sets": value_sets,
        "prune_redundant": prune_redundant,
        "n_rows": total,
        "n_positive": total_positive,
        "baseline_rate": total_positive / total if total else float("nan"),
        "family_size": 0,
    }
    title = f"Subgroups with the highest {label} rate"
    caveats = []
    if known.sum() < len(data):
        caveats.append(
            f"{len(data) - int(known.sum()):,} rows with an unknown {name} were left out."
        )
    empty = pd.DataFrame(columns=SUMMARY_COLUMNS)
    if total == 0 or total_positive in (0, total):
        value = "unknown" if total == 0 else str(total_positive == total)
        caveats.append(
            f"Every row has {name} = {value}: there is nothing to separate, so no subgroup "
            "was searched."
        )
        return SubgroupResult(title, empty, [], caveats, {}, params)
    if total < 50:
        caveats.append(f"Only {total} {unit} with a known {name}: too few for reliable subgroups.")

    attrs, notes = _build_attributes(
        frame,
        columns,
        min_count=min_count,
        n_bins=n_bins,
        numeric_ranges=numeric_ranges,
        max_levels=max_levels,
    )
    if not attrs:
        caveats.extend(notes)
        caveats.append(
            f"No attribute has a value or range covering at least {min_count:,} {unit} but not "
            "all of them, so no subgroup was searched."
        )
        return SubgroupResult(title, empty, [], caveats, {}, params)

    search = _Search(attrs, positive, min_count, max_depth)
    if cluster_ids is not None:
        ids = cluster_ids[known]
        events = np.bincount(ids, weights=positive.astype(float))
        trials = np.bincount(ids).astype(float)
        design_effect = cluster_design_effect(events, trials)
        # Below 1 (outcomes within a cluster vary more than chance) is not counted as a gain.
        search.design_effect = max(1.0, design_effect) if np.isfinite(design_effect) else 1.0
        params["design_effect"] = search.design_effect
        params["n_clusters"] = int(np.count_nonzero(trials))
    qualities = _quality(search.cand_n, search.cand_p, total, total_positive, quality)
    walk = _Walk(
        search, qualities, quality, alpha, min_count, value_sets, prune_redundant, correction
    )
    found, pruned = walk.run(top_k)

    # Every subgroup searched is one test of the family, merges tried included.
    family_n = np.concatenate([search.cand_n, np.array([n for n, _ in walk.merges_tried])])
    family_p = np.concatenate([search.cand_p, np.array([p for _, p in walk.merges_tried])])
    pvalues = _pvalue(
        family_p, family_n, total_positive - family_p, total - family_n, search.design_effect
    )
    # A subgroup of two or more conditions is a discovery only when each condition adds lift
    # (an intersection-union test): one whose condition adds nothing ("Manufacturing and
    # Germany" beside "Manufacturing") counts in the correction with p = 1. Counted at its own
    # p-value, each such variant of one strong pattern raised the rank, and so lowered the
    # q-value, of every other subgroup: two noise conditions paired up passed at q = 0.006
    # beside a real 2x effect and its seventy variants.
    # Likewise the value sets tried on the way ("Manufacturing or Education", "Manufacturing
    # or Retail"): each counts in the family, but as a discovery only the ones taken, each of
    # whose values stood out on its own.
    counted = np.ones(pvalues.size, bool)
    if walk.condition_tests is not None:
        weakest = walk.condition_tests[0]
        counted[: weakest.size] = ~(weakest >= alpha)  # NaN (one condition) is counted
    counted[search.cand_n.size :] = False
    for index in walk.merges_accepted:
        counted[index] = True
    for candidate in found:
        counted[candidate.family_index] = True

    def corrected(p: np.ndarray) -> np.ndarray:
        return adjust_pvalues(np.where(counted | np.isnan(p), p, 1.0), correction)

    qvalues = corrected(pvalues)
    few_clusters = 0
    if cluster_ids is not None:
        pvalues, raised = _own_design_effect(
            found,
            walk,
            cluster_ids[known],
            positive,
            pvalues,
            qvalues,
            alpha,
            search.design_effect,
        )
        if raised:
            before = qvalues
            qvalues = corrected(pvalues)
            few_clusters = sum(
                1
                for c in found
                if before[c.family_index] < alpha and not qvalues[c.family_index] < alpha
            )
    family_size = int(np.sum(~np.isnan(pvalues)))
    params["family_size"] = family_size
    params["n_conditions"] = int(sum(a.n_conditions for a in attrs))
    params["n_attributes"] = len(attrs)

    summary = _summary(found, search, pvalues, qvalues, name, alpha)
    pruned_table = pd.DataFrame(pruned, columns=["description", "n", "target_rate", "reason"])
    conditions_table = _conditions_table(search)
    findings = _findings(summary, label, unit, family_size)

    caveats.append(
        f"{family_size:,} subgroups searched ({params['n_conditions']} conditions on "
        f"{len(attrs)} attributes, up to {max_depth} at a time, each covering at least "
        f"{min_count:,} {unit}); p-values are corrected for all of them "
        f"({_CORRECTION_NAMES.get(correction.lower(), correction)}), and a subgroup with a "
        "condition that adds no lift counts in that correction but not as a discovery."
    )
    if value_sets and walk.merges_tried:
        caveats.append(
            "Value sets such as 'industry A or B' merge values with similar rates after the "
            f"search; the {len(walk.merges_tried):,} merges tried count among the subgroups "
            "searched."
        )
    if prune_redundant and walk.n_left_out:
        caveats.append(
            f"{walk.n_left_out:,} subgroups scoring higher than the last one shown are left out as "
            f"redundant: a condition adds no lift, or they hold mostly the same {unit} as one "
            "shown without a clearly higher rate."
        )
    caveats.extend(notes)
    if cluster_ids is not None and search.design_effect > 1:
        caveats.append(
            f"The {total:,} {unit} come from {params['n_clusters']:,} accounts, and {unit} of one "
            "account are not independent: tests and intervals count them as "
            f"{total / search.design_effect:,.0f} independent rows (design effect "
            f"{search.design_effect:.2f}, a first-order Rao-Scott correction)."
        )
    elif cluster_ids is not None:
        caveats.append(
            f"The {total:,} {unit} come from {params['n_clusters']:,} accounts; their outcomes "
            "vary between accounts no more than chance would make them (design effect 1 or "
            "less), so no correction for clustering was needed."
        )
    elif unit not in ("accounts", "customers"):
        caveats.append(
            f"Rows are treated as independent; {unit} of the same account are not, so search "
            "at account level when several rows share an account."
        )
    if few_clusters:
        caveats.append(
            f"{few_clusters:,} subgroup{'s' if few_clusters > 1 else ''} that passed on the "
            f"design effect of all the data did not on {'their' if few_clusters > 1 else 'its'} "
            f"own: most of {'their' if few_clusters > 1 else 'its'} {unit} come from a few "
            "large accounts, whose outcomes are not independent, so "
            f"{'they are' if few_clusters > 1 else 'it is'} not counted as significant."
        )
    caveats.append(
        "Subgroups are found by searching this data; confirm them on later data before "
        "acting on them."
    )
    return SubgroupResult(
        title,
        summary,
        findings,
        caveats,
        {"conditions": conditions_table, "pruned": pruned_table},
        params,
    )


def _own_design_effect(found, walk, ids, positive, pvalues, qvalues, alpha, design_effect):
    """Each significant subgroup's p-value on its own design effect, where that is larger.

    One design effect for all the data (a first-order Rao-Scott correction) is what makes the
    search fast, but it is that of the data's average cluster size: a subgroup whose rows come
    from a few large clusters (three groups of subsidiaries with sixty deals each) carries far
    fewer independent rows than it says. Kish's ``1 + (m - 1) x ICC``, with ``m`` the subgroup's
    own size-weighted mean cluster size (sum n^2 / sum n) and the ICC that gives the data's
    design effect at its own ``m``, is the subgroup's design effect; the test on counts divided
    by it replaces the family's where it is larger. Returns the p-values and how many changed;
    each subgroup changed keeps its design effect (``design_effect`` of :class:`_Found`) for
    its interval.
    """
    n_clusters = int(ids.max()) + 1 if ids.size else 0
    trials_all = np.bincount(ids, minlength=n_clusters).astype(float)
    # The size-weighted mean cluster size, sum n^2 / sum n: rows over Kish's effective clusters.
    mean_size = trials_all.sum() / effective_clusters(trials_all) if trials_all.sum() else 1.0
    if mean_size <= 1 or design_effect <= 1:
        return pvalues, 0
    icc = min(1.0, (design_effect - 1) / (mean_size - 1))
    total, total_positive = float(positive.size), float(positive.sum())
    pvalues = pvalues.copy()
    raised = 0
    for candidate in found:
        index = candidate.family_index
        if not qvalues[index] < alpha:
            continue
        inside = walk._cover(candidate)
        trials = np.bincount(ids[inside], minlength=n_clusters).astype(float)
        own_size = trials.sum() / effective_clusters(trials) if trials.sum() else 1.0
        own = 1 + (own_size - 1) * icc
        if own <= design_effect * (1 + 1e-9):
            continue
        candidate.design_effect = own
        n, k = float(candidate.n), float(candidate.p)
        p_own = float(_pvalue(k, n, total_positive - k, total - n, own)[0])
        if p_own > pvalues[index]:
            pvalues[index] = p_own
            raised += 1
    return pvalues, raised


def _check_options(max_depth, min_support, top_k, n_bins, quality, alpha, max_levels) -> None:
    problems = []
    if not isinstance(max_depth, int) or max_depth < 1:
        problems.append(f"max_depth must be a whole number of at least 1, not {max_depth!r}.")
    if isinstance(min_support, bool) or not isinstance(min_support, numbers.Real):
        problems.append(f"min_support must be a fraction or a row count, not {min_support!r}.")
    elif isinstance(min_support, numbers.Integral):
        if min_support < 1:
            problems.append(f"min_support as a row count must be at least 1, not {min_support}.")
    elif not 0 < min_support < 1:
        problems.append(f"min_support as a fraction must be between 0 and 1, not {min_support}.")
    if not isinstance(top_k, int) or top_k < 1:
        problems.append(f"top_k must be at least 1, not {top_k!r}.")
    if not isinstance(n_bins, int) or n_bins < 2:
        problems.append(f"n_bins must be at least 2, not {n_bins!r}.")
    if quality not in QUALITIES:
        problems.append(f"quality must be one of {', '.join(QUALITIES)}, not {quality!r}.")
    if not 0 < alpha < 1:
        problems.append(f"alpha must be between 0 and 1, not {alpha}.")
    if max_levels < 1:
        problems.append(f"max_levels must be at least 1, not {max_levels}.")
    if problems:
        raise InputError(problems[0], problems)


def _outcome(data: pd.DataFrame, target) -> tuple[np.ndarray, str]:
    """The outcome as floats (1, 0, NaN) aligned with ``data``, and its name."""
    if isinstance(target, str):
        if target not in data.columns:
            raise InputError(
                f"Target column {target!r} is not in the data; columns are: "
                f"{', '.join(map(str, data.columns))}."
            )
        series, name = data[target], target
    elif isinstance(target, pd.Series):
        if not target.index.equals(data.index):
            raise InputError(
                "The target Series must have the same index as the data (e.g. a column of it, "
                "or a comparison such as data['arr'] > 50_000)."
            )
        series, name = target, str(target.name) if target.name is not None else "target"
    else:
        raise InputError(f"target must be a column name or a boolean Series, not {type(target)}.")
    if pd.api.types.is_numeric_dtype(series) or pd.api.types.is_bool_dtype(series):
        values = series.to_numpy(dtype=float, na_value=np.nan)
        bad = ~np.isnan(values) & (values != 0) & (values != 1)
    else:
        # True == 1 and False == 0 as dictionary keys: 1/0 map too, text such as "yes" not.
        values = series.map({True: 1.0, False: 0.0}).to_numpy(dtype=float, na_value=np.nan)
        bad = series.notna().to_numpy() & np.isnan(values)
    if bad.any():
        examples = ", ".join(repr(v) for v in pd.unique(series[bad])[:3])
        raise InputError(
            f"Target {name!r} must be boolean (True/False or 1/0); found {examples}. Compare it "
            "to a value first, e.g. data['stage'] == 'won'."
        )
    return values, name


def _cluster_ids(data: pd.DataFrame, clusters) -> np.ndarray | None:
    """Integer cluster codes per row (a missing id is a cluster of its own), or None."""
    if clusters is None:
        return None
    if isinstance(clusters, str):
        if clusters not in data.columns:
            raise InputError(f"Cluster column {clusters!r} is not in the data.")
        series = data[clusters]
    elif isinstance(clusters, pd.Series) and clusters.index.equals(data.index):
        series = clusters
    else:
        raise InputError(
            "clusters must be a column name or a Series with the same index as the data."
        )
    codes, uniques = pd.factorize(series, use_na_sentinel=True)
    missing = codes < 0
    codes[missing] = len(uniques) + np.arange(int(missing.sum()))
    return codes.astype(np.int64)


def _attribute_columns(data, target_column, attributes) -> list[str]:
    if attributes is None:
        return [
            str(c)
            for c in data.columns
            if c != target_column and str(c) != "id" and not str(c).endswith("_id")
        ]
    missing = [a for a in attributes if a not in data.columns]
    if missing:
        raise InputError(f"Attribute column(s) not in the data: {', '.join(map(str, missing))}.")
    if target_column is not None and target_column in attributes:
        raise InputError(f"The target {target_column!r} cannot also be an attribute.")
    return list(dict.fromkeys(attributes))


def _condition_tests(search: _Search, correction: str):
    """Does every condition of a subgroup earn its place? One test per condition.

    For each subgroup of two or more conditions and each of its conditions, the subgroup is
    compared with the rows the condition drops (those matching every other condition but not
    this one): a condition adds lift only if the subgroup's rate is higher, significantly. A
    subgroup is as strong as its weakest condition (largest p-value): an intersection-union
    test ("every condition adds lift" holds only if each test rejects). Each condition's
    p-value is corrected (Bonferroni) for the conditions the search could have put in its place
    beside the others (every value, bin or range of every attribute they do not use); the
    subgroup itself is tested, and corrected over every subgroup searched, apart.
    (Correcting the condition tests over every subgroup searched as well left out every
    subgroup of two or more conditions in searches of tens of thousands: a planted segment of
    three conditions at 2.6x, q = 4e-6, was never shown.)

    Returns arrays over the candidates: the weakest condition's p-value, its position, and the
    size and rate of the rows it drops (NaN for single conditions).
    """
    size, depth = search.cand_n.size, search.max_depth
    # One row per candidate, one column per condition (the drop-one parent's counts).
    n_parent = np.full((size, depth), np.nan)
    p_parent = np.full((size, depth), np.nan)
    for cid, combo in enumerate(search.combos):
        start, stop = search.combo_start[cid], search.combo_start[cid + 1]
        if len(combo) < 2 or start == stop:
            continue
        index = np.unravel_index(search.cand_flat[start:stop], search.shape(cid))
        for j in range(len(combo)):
            sizes, positives = search.tensors(search.combo_id[combo[:j] + combo[j + 1 :]])
            n_parent[start:stop, j] = sizes[index[:j] + index[j + 1 :]]
            p_parent[start:stop, j] = positives[index[:j] + index[j + 1 :]]
    n, p = search.cand_n[:, None], search.cand_p[:, None]
    n_rest, p_rest = n_parent - n, p_parent - p
    tested = ~np.isnan(n_parent)
    pvalues = np.full((size, depth), -np.inf)
    with np.errstate(invalid="ignore", divide="ignore"):
        rate_rest = p_rest / n_rest
        adds_lift = tested & (n_rest > 0) & (p / n > rate_rest)
    pvalues[tested] = 1.0
    pvalues[adds_lift] = _pvalue(
        np.broadcast_to(p, adds_lift.shape)[adds_lift],
        np.broadcast_to(n, adds_lift.shape)[adds_lift],
        p_rest[adds_lift],
        n_rest[adds_lift],
        search.design_effect,
    )
    pvalues[adds_lift & np.isnan(pvalues)] = 1.0
    # Bonferroni for the conditions the search could have put in each one's place: any
    # condition of an attribute the others do not use.
    total = sum(attr.n_conditions for attr in search.attrs)
    for cid, combo in enumerate(search.combos):
        start, stop = search.combo_start[cid], search.combo_start[cid + 1]
        if len(combo) < 2 or start == stop:
            continue
        for j in range(len(combo)):
            others = sum(search.attrs[a].n_conditions for k, a in enumerate(combo) if k != j)
            offered = max(total - others, 1)
            pvalues[start:stop, j] = np.minimum(pvalues[start:stop, j] * offered, 1.0)
    weakest = np.argmax(pvalues, axis=1)
    rows = np.arange(size)
    weakest_p = np.where(search.cand_depth >= 2, pvalues[rows, weakest], np.nan)
    n_without = n_rest[rows, weakest]
    rate_without = rate_rest[rows, weakest]
    return weakest_p, weakest, n_without, rate_without


class _Walk:
    """Goes down the candidates, best first, deciding which ones to report."""

    def __init__(self, search, qualities, quality, alpha, min_count, value_sets, prune, correction):
        self.search = search
        self.qualities = qualities
        self.quality = quality
        self.alpha = alpha
        self.min_count = min_count
        self.value_sets = value_sets
        self.prune = prune
        self.merges_tried: list[tuple[float, float]] = []
        # Family indices of the value sets taken (each value added stood out on its own).
        self.merges_accepted: set[int] = set()
        self._merge_index: dict[tuple, int] = {}
        self.n_left_out = 0
        self._rows_of: dict[tuple, np.ndarray] = {}
        self._positive = search.outcome.astype(bool)
        total, total_positive = search.total, search.total_positive
        # Only subgroups where the outcome is more common than overall are reported.
        above = search.cand_p * total > search.cand_n * total_positive
        self.eligible = np.flatnonzero(above)
        self.condition_tests = _condition_tests(search, correction) if prune else None

    def _ordered(self, size: int) -> np.ndarray:
        """The ``size`` best eligible candidates: quality descending, then search order."""
        quality = self.qualities[self.eligible]
        if size < quality.size:
            threshold = np.partition(-quality, size - 1)[size - 1]
            chosen = self.eligible[-quality <= threshold]
        else:
            chosen = self.eligible
        return chosen[np.lexsort((chosen, -self.qualities[chosen]))]

    def run(self, top_k: int):
        size = max(100 * top_k, 20_000)
        while True:
            pool = self._ordered(size)
            found, pruned = self._walk(pool, top_k)
            if len(found) >= top_k or pool.size >= self.eligible.size:
                return found, pruned
            size *= 4

    def _walk(self, pool: np.ndarray, top_k: int):
        """Report the best ``top_k`` candidates of the pool that are not redundant.

        Candidates are taken in the order of their final quality, value sets included: each
        waits in a queue under an upper bound of the quality merging could give it, is merged
        when it comes first, and is queued again under its merged quality; when it comes first
        again, nothing left can beat it. Returns the subgroups found and rows of the table of
        the ones left out (best first).
        """
        search = self.search
        self.merges_tried = []
        self.merges_accepted = set()
        self._merge_index = {}
        weak = np.zeros(pool.size, bool)
        if self.prune:
            weak = self.condition_tests[0][pool] >= self.alpha  # NaN (one condition) is False
        candidates = pool[~weak]
        keys = self.qualities[candidates]
        final = np.ones(candidates.size, bool)
        if self.value_sets:
            bounds, mergeable = self._merge_bounds(candidates)
            keys = np.where(mergeable, bounds, keys)
            final = ~mergeable
        queue = list(zip((-keys).tolist(), candidates.tolist(), final.tolist(), strict=True))
        heapq.heapify(queue)
        merged: dict[int, _Found] = {}
        found: list[_Found] = []
        left_out: list[tuple[float, _Found, str]] = []
        while queue and len(found) < top_k:
            _, g, is_final = heapq.heappop(queue)
            candidate = merged.pop(g, None) or self._candidate(g)
            if not is_final:
                self._merge(candidate)
                merged[g] = candidate
                heapq.heappush(queue, (-candidate.quality, g, True))
                continue
            reason = self._redundant(candidate, found)
            if reason is None:
                found.append(candidate)
            elif reason:
                left_out.append((candidate.quality, candidate, reason))
        # Left out: those scoring above the last one shown, best first; the table shows the first.
        floor = found[-1].quality if len(found) >= top_k else -np.inf
        weak_left_out = pool[weak][self.qualities[pool[weak]] > floor]
        left_out = [row for row in left_out if row[0] > floor]
        self.n_left_out = len(left_out) + weak_left_out.size
        # Pool order is best first, so the first weak ones are enough to fill the table.
        for g in weak_left_out[:_PRUNED_ROWS]:
            candidate = self._candidate(int(g))
            left_out.append((candidate.quality, candidate, self._weak_condition(candidate)))
        left_out.sort(key=lambda row: (-row[0], row[1].search_index))
        rows, seen = [], set()
        for _, candidate, reason in left_out:
            description = _describe(search, candidate)
            if description not in seen:
                seen.add(description)
                rows.append((description, candidate.n, candidate.p / candidate.n, reason))
            if len(rows) == _PRUNED_ROWS:
                break
        return found, rows

    def _candidate(self, g: int) -> _Found:
        search = self.search
        return _Found(
            search.combos[int(search.cand_combo[g])],
            [(i,) for i in search.selectors(g)],
            float(search.cand_n[g]),
            float(search.cand_p[g]),
            float(self.qualities[g]),
            g,
            g,
        )

    def _weak_condition(self, candidate: _Found) -> str:
        """Why a subgroup of two or more conditions has one that adds no lift."""
        q, j, n_without, rate_without = (v[candidate.search_index] for v in self.condition_tests)
        j = int(j)
        dropped = self.search.attrs[candidate.combo[j]].descriptions[candidate.sets[j][0]]
        if n_without == 0:
            return f"'{dropped}' excludes no rows of the others"
        return (
            f"'{dropped}' adds no lift: the {n_without:,.0f} rows it excludes have a rate of "
            f"{_pct(rate_without)} (p={fmt_p(q)})"
        )

    def _mergeable(self, combo: tuple[int, ...]) -> list[int]:
        """Positions of the conditions that could grow into value sets."""
        return [j for j, a in enumerate(combo) if self.search.attrs[a].mergeable]

    def _merge_bounds(self, candidates: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        """Upper bounds of the quality of any value set grown from each candidate.

        A value set is a union of disjoint cells (one value per categorical condition). WRAcc
        adds up over disjoint parts, so it is at most the sum of the positive cells' WRAcc; a
        union's rate (hence lift) is at most that of its best cell. Returns the bounds and
        whether each candidate can grow at all.
        """
        search = self.search
        bounds = self.qualities[candidates].copy()
        mergeable = np.zeros(candidates.size, bool)
        combo_of = search.cand_combo[candidates]
        for cid in np.unique(combo_of):
            positions = self._mergeable(search.combos[cid])
            if not positions:
                continue
            rows = np.flatnonzero(combo_of == cid)
            sizes, positives = search.tensors(int(cid))
            with np.errstate(invalid="ignore", divide="ignore"):
                cells = _quality(
                    sizes, positives, search.total, search.total_positive, self.quality
                )
            if self.quality == "wracc":
                best = np.where(sizes > 0, np.maximum(cells, 0), 0).sum(axis=tuple(positions))
            else:
                best = np.where(sizes > 0, cells, -np.inf).max(axis=tuple(positions))
            index = np.unravel_index(search.cand_flat[candidates[rows]], search.shape(int(cid)))
            fixed = tuple(axis for j, axis in enumerate(index) if j not in positions)
            bounds[rows] = np.maximum(best[fixed], bounds[rows])
            mergeable[rows] = True
        return bounds, mergeable

    def _cover(self, candidate: _Found) -> np.ndarray:
        """Which rows the candidate covers (bool per row), from cached per-condition rows."""
        if candidate.cover is None:
            masks = [
                self._condition_rows(a, chosen)
                for a, chosen in zip(candidate.combo, candidate.sets, strict=True)
            ]
            candidate.cover = np.logical_and.reduce(masks) if len(masks) > 1 else masks[0]
        return candidate.cover

    def _condition_rows(self, a: int, chosen: tuple[int, ...]) -> np.ndarray:
        key = (a, chosen)
        if key not in self._rows_of:
            attr = self.search.attrs[a]
            self._rows_of[key] = attr.membership[list(chosen)].any(axis=0)[attr.codes]
        return self._rows_of[key]

    def _redundant(self, candidate: _Found, found: list[_Found]) -> str | None:
        """Why ``candidate`` adds nothing to the subgroups already ``found``, if so.

        Returns None when it is new, "" when it is one of them (merged into the same value set).
        """
        for other in found:
            if other.combo == candidate.combo and other.sets == candidate.sets:
                return ""  # merged into a subgroup shown: nothing to report
            if self.prune:
                reason = self._overlap(candidate, other)
                if reason:
                    return reason
        return None

    def _overlap(self, candidate: _Found, shown: _Found) -> str | None:
        """Why ``candidate`` says nothing beyond ``shown``, if it overlaps it that much.

        Near-identical rows (Jaccard >= NEAR_DUPLICATE) are collapsed. A candidate whose rows
        mostly (a share of OVERLAP or more) lie in ``shown`` is kept only if it singles out a
        better part of it: a rate above the upper confidence bound of ``shown``'s rate and
        significantly above the rate of the rest of ``shown``. A candidate holding most of
        ``shown`` is kept only if the rows it adds are about as good (a rate at least the lower
        confidence bound of ``shown``'s rate), i.e. it is a broader version, not a dilution.
        """
        both_rows = self._cover(candidate) & self._cover(shown)
        both = float(np.count_nonzero(both_rows))
        if both < OVERLAP * min(candidate.n, shown.n):
            return None
        name = f"'{_describe(self.search, shown)}'"
        jaccard = both / (candidate.n + shown.n - both)
        if jaccard >= NEAR_DUPLICATE:
            return f"nearly the same rows (Jaccard {jaccard:.2f}) as {name}"
        p_both = float(np.count_nonzero(both_rows & self._positive))
        rate, shown_rate = candidate.p / candidate.n, shown.p / shown.n
        if shown.interval is None:
            deff = self.search.design_effect
            shown.interval = tuple(
                float(x) for x in proportion_ci(shown.p / deff, shown.n / deff, self.alpha)
            )
        low, high = shown.interval
        if both >= OVERLAP * candidate.n:
            n_rest, p_rest = shown.n - both, shown.p - p_both
            if rate > high and n_rest > 0 and rate > p_rest / n_rest:
                p_value = _pvalue(
                    candidate.p, candidate.n, p_rest, n_rest, self.search.design_effect
                )[0]
                if p_value < self.alpha:
                    return None
            return (
                f"{both / candidate.n:.0%} of its rows are in {name}, and its rate "
                f"({_pct(rate)}) is not clearly above that one's ({_pct(shown_rate)})"
            )
        n_added, p_added = candidate.n - both, candidate.p - p_both
        if p_added / n_added >= low:
            return None
        return (
            f"holds {both / shown.n:.0%} of {name} and adds {n_added:,.0f} rows with a lower "
            f"rate ({_pct(p_added / n_added)} vs {_pct(shown_rate)})"
        )

    def _merge(self, candidate: _Found) -> None:
        """Grow categorical conditions into value sets while the added value's rate is similar.

        At each step every (condition, value) pair is tried; the one that improves quality most
        is kept if the rows it adds have a rate significantly above that of all other rows (with
        a Bonferroni correction for the size of the search) and not significantly below the
        subgroup's. The subgroup it grows from must stand out so too. Every distinct subgroup
        tried joins the family.
        """
        search = self.search
        positions = self._mergeable(candidate.combo)
        if not positions:
            return
        sizes, positives = search.tensors(search.combo_id[candidate.combo])
        baseline = search.total_positive / search.total
        # A set grows from a value that stands out on its own, as every value it takes must:
        # grown from an average one ("Trade Show" at the base rate), it would take in the real
        # one ("Partner Referral"), and the pair, diluted, would be shown in its place.
        seed = _pvalue(
            candidate.p,
            candidate.n,
            search.total_positive - candidate.p,
            search.total - candidate.n,
            search.design_effect,
        )
        if not (candidate.p / candidate.n > baseline and seed[0] * search.cand_n.size < self.alpha):
            return
        while True:
            options = []
            for j in positions:
                attr = search.attrs[candidate.combo[j]]
                if len(candidate.sets[j]) + 1 > attr.n_conditions - 1:
                    continue
                index = np.ix_(
                    *[
                        np.arange(attr.n_conditions) if k == j else np.array(chosen)
                        for k, chosen in enumerate(candidate.sets)
                    ]
                )
                other_axes = tuple(k for k in range(len(candidate.sets)) if k != j)
                add_n = sizes[index].sum(axis=other_axes)
                add_p = positives[index].sum(axis=other_axes)
                for w in range(attr.n_conditions):
                    if w in candidate.sets[j] or add_n[w] == 0:
                        continue
                    options.append((j, w, add_n[w], add_p[w]))
            if not options:
                return
            j_opt, w_opt, add_n, add_p = (np.array(c) for c in zip(*options, strict=True))
            merged_n, merged_p = candidate.n + add_n, candidate.p + add_p
            # Each distinct merged subgroup tried is one more test in the family.
            family_index = []
            for j, w, n, p in zip(j_opt, w_opt, merged_n, merged_p, strict=True):
                sets = list(candidate.sets)
                sets[j] = tuple(sorted(sets[j] + (int(w),)))
                key = (candidate.combo, tuple(sets))
                if key not in self._merge_index:
                    self._merge_index[key] = search.cand_n.size + len(self.merges_tried)
                    self.merges_tried.append((float(n), float(p)))
                family_index.append(self._merge_index[key])
            merged_quality = _quality(
                merged_n, merged_p, search.total, search.total_positive, self.quality
            )
            rate_added = add_p / add_n
            rate_now = candidate.p / candidate.n
            lower = _pvalue(add_p, add_n, candidate.p, candidate.n, search.design_effect)
            similar = (rate_added >= rate_now) | (lower >= self.alpha)
            # The value must stand out on its own (within the other conditions) too, even after a
            # Bonferroni correction for the whole search: merging is a search as well, and
            # sets of slightly-above-average values would otherwise creep in.
            alone = _pvalue(
                add_p,
                add_n,
                search.total_positive - add_p,
                search.total - add_n,
                search.design_effect,
            )
            stands_out = (rate_added > baseline) & (alone * search.cand_n.size < self.alpha)
            ok = similar & stands_out & (merged_quality >= candidate.quality)
            if not ok.any():
                return
            best = int(np.flatnonzero(ok)[np.argmax(merged_quality[ok])])
            j = int(j_opt[best])
            candidate.sets[j] = tuple(sorted(candidate.sets[j] + (int(w_opt[best]),)))
            candidate.n = float(merged_n[best])
            candidate.p = float(merged_p[best])
            candidate.quality = float(merged_quality[best])
            candidate.family_index = family_index[best]
            candidate.cover = None
            self.merges_accepted.add(family_index[best])


def _pct(x: float) -> str:
    return "–" if np.isnan(x) else f"{100 * x:.0f}%"


def _condition(attr: _Attribute, chosen: tuple[int, ...]) -> tuple[dict, str]:
    if len(chosen) == 1:
        return attr.conditions[chosen[0]], attr.descriptions[chosen[0]]
    values = sorted(attr.values[i] for i in chosen)
    return (
        {"attribute": attr.name, "op": "in", "values": values},
        f"{attr.name} in {{{', '.join(values)}}}",
    )


def _describe(search: _Search, found: _Found) -> str:
    return " AND ".join(
        _condition(search.attrs[a], chosen)[1]
        for a, chosen in zip(found.combo, found.sets, strict=True)
    )


def _summary(found, search, pvalues, qvalues, name, alpha) -> pd.DataFrame:
    if not found:
        return pd.DataFrame(columns=SUMMARY_COLUMNS)
    total, total_positive = search.total, search.total_positive
    baseline = total_positive / total
    n = np.array([f.n for f in found])
    p = np.array([f.p for f in found])
    rate = p / n
    deff = np.array(
        [search.design_effect if f.design_effect is None else f.design_effect for f in found]
    )
    ci_low, ci_high = proportion_ci(p / deff, n / deff, alpha)
    family = np.array([f.family_index for f in found])
    conditions = []
    for f in found:
        parts = [_condition(search.attrs[a], s) for a, s in zip(f.combo, f.sets, strict=True)]
        conditions.append(json.dumps([c for c, _ in parts]))
    summary = pd.DataFrame(
        {
            "rank": np.arange(1, len(found) + 1),
            "description": [_describe(search, f) for f in found],
            "target": name,
            "n": n.astype(np.int64),
            "coverage": n / total,
            "target_rate": rate,
            "baseline_rate": baseline,
            "lift": rate / baseline,
            "p_value": pvalues[family],
            "q_value": qvalues[family],
            "wracc": (n / total) * (rate - baseline),
            "ci_low": ci_low,
            "ci_high": ci_high,
            "lift_ci_low": ci_low / baseline,
            "lift_ci_high": ci_high / baseline,
            "significant": qvalues[family] < alpha,
            "depth": [len(f.combo) for f in found],
            "conditions": conditions,
        }
    )
    return summary[SUMMARY_COLUMNS]


def _conditions_table(search: _Search) -> pd.DataFrame:
    rows = []
    for a, attr in enumerate(search.attrs):
        n, p = search.tensors(search.combo_id[(a,)])
        for i, description in enumerate(attr.descriptions):
            rows.append(
                (
                    attr.name,
                    description,
                    int(n[i]),
                    p[i] / n[i] if n[i] else np.nan,
                    json.dumps(attr.conditions[i]),
                )
            )
    return pd.DataFrame(rows, columns=["attribute", "description", "n", "target_rate", "condition"])


def _findings(summary: pd.DataFrame, label: str, unit: str, family_size: int) -> list[str]:
    significant = summary[summary["significant"]] if not summary.empty else summary
    if significant.empty:
        return [
            f"No subgroup separates {label} {unit} from the rest after correcting for "
            f"{family_size:,} subgroups searched."
        ]
    sentences = []
    for row in significant.itertuples(index=False):
        q = row.q_value
        q_text = "q < 0.001" if q < 0.001 else f"q = {fmt_p(q)}"
        sentences.append(
            f"{unit[:1].upper()}{unit[1:]} with {row.description} are {row.lift:.1f}x as likely "
            f"to be {label}: "
            f"{fmt_rate_ci(row.target_rate, row.ci_low, row.ci_high, row.n)} vs "
            f"{row.baseline_rate:.0%} overall; {q_text}."
        )
    return sentences


# ---------------------------------------------------------------------------------------------
# Applying and plotting subgroups


def subgroup_mask(data: pd.DataFrame, conditions) -> pd.Series:
    """Which rows of ``data`` satisfy every condition of a subgroup.

    Parameters
    ----------
    data : DataFrame
        Rows to test; must hold every attribute the conditions name.
    conditions : str or list of dict
        The ``conditions`` column of a :class:`SubgroupResult` summary (JSON) or the parsed
        list. Each condition is ``{"attribute", "op", ...}`` with ``op`` one of ``"=="``
        (``value``), ``"in"`` (``values``), ``"range"`` (``low`` inclusive, ``high``
        exclusive, either may be null) or ``"missing"``. Categorical values are compared as
        text, missing values as ``"(missing)"``.

    Returns
    -------
    Series of bool, indexed like ``data``.
    """
    if isinstance(conditions, str):
        conditions = json.loads(conditions)
    mask = pd.Series(True, index=data.index)
    for condition in conditions:
        attribute = condition["attribute"]
        if attribute not in data.columns:
            raise InputError(
                f"Column {attribute!r} used by a subgroup condition is not in the data."
            )
        column = data[attribute]
        op = condition["op"]
        if op == "missing":
            mask &= column.isna().to_numpy()
        elif op == "==":
            mask &= (_as_levels(column) == str(condition["value"])).to_numpy()
        elif op == "in":
            mask &= _as_levels(column).isin([str(v) for v in condition["values"]]).to_numpy()
        elif op == "range":
            values = pd.to_numeric(column, errors="coerce").to_numpy(dtype=float)
            inside = ~np.isnan(values)
            if condition.get("low") is not None:
                inside &= values >= condition["low"]
            if condition.get("high") is not None:
                inside &= values < condition["high"]
            mask &= inside
        else:
            raise InputError(f"Unknown condition operator {op!r} in {condition}.")
    return mask


def plot_subgroups(result: SubgroupResult, *, top: int = 10, ax=None):
    """Lift of the top subgroups with their confidence intervals.

    One row per subgroup (best at the top), a point at its lift (target rate / overall rate)
    with the interval as a bar, filled when significant after correction, and a reference line
    at 1x. Returns the matplotlib Axes.
    """
    import matplotlib.pyplot as plt
    from matplotlib.ticker import FuncFormatter

    rows = result.summary.head(top)
    if ax is None:
        _, ax = plt.subplots(figsize=(8, 1.2 + 0.45 * max(len(rows), 1)))
    if rows.empty:
        ax.text(0.5, 0.5, "No subgroups to show", ha="center", va="center", transform=ax.transAxes)
        ax.set_axis_off()
        return ax
    y = np.arange(len(rows))[::-1]
    lift = rows["lift"].to_numpy(dtype=float)
    low = rows["lift_ci_low"].to_numpy(dtype=float)
    high = rows["lift_ci_high"].to_numpy(dtype=float)
    significant = rows["significant"].to_numpy(dtype=bool)
    ax.hlines(y, low, high, color="#4c72b0", linewidth=2)
    ax.scatter(lift[significant], y[significant], color="#4c72b0", zorder=3, label="significant")
    ax.scatter(
        lift[~significant],
        y[~significant],
        facecolor="white",
        edgecolor="#4c72b0",
        zorder=3,
        label="not significant",
    )
    ax.axvline(1.0, color="grey", linestyle="--", linewidth=1)
    labels = [_wrap(d) for d in rows["description"]]
    ax.set_yticks(y)
    ax.set_yticklabels(labels)
    for yi, hi, n in zip(y, high, rows["n"], strict=True):
        ax.annotate(
            f"n={n:,}",
            (hi, yi),
            xytext=(4, 0),
            textcoords="offset points",
            va="center",
            fontsize=8,
            color="grey",
        )
    ax.set_xscale("log")
    finite = np.isfinite(np.r_[low, high])
    left = min(float(np.r_[low, high][finite].min(initial=1.0)), 1.0) / 1.1
    right = max(float(np.r_[low, high][finite].max(initial=1.0)), 1.0) * 1.3  # room for n=
    ax.set_xlim(left, right)
    steps = [0.1, 0.25, 0.5, 0.75, 1, 1.5, 2, 3, 4, 5, 7.5, 10, 15, 20, 30, 50, 100]
    ax.set_xticks([s for s in steps if left <= s <= right])
    ax.xaxis.set_major_formatter(FuncFormatter(lambda v, _: f"{v:g}x"))
    ax.xaxis.set_minor_formatter(FuncFormatter(lambda v, _: ""))
    baseline = float(rows["baseline_rate"].iloc[0])
    target = str(rows["target"].iloc[0]).replace("_", " ")
    ax.set_xlabel(f"Lift: {target} rate relative to the overall {baseline:.0%}")
    ax.set_title(f"Subgroups with the highest {target} rate")
    ax.legend(loc="lower right", fontsize=8, frameon=False)
    return ax


def _wrap(text: str, width: int = 45) -> str:
    return text.replace(" AND ", "\nAND ") if len(text) > width else text
