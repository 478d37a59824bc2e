"""Data-driven bins for numeric attributes, with labels a reader understands.

Cut points come from the data (quantiles), are rounded to "nice" numbers (100, 250, 1,000 ...)
so that a rule reads ``100 <= employees < 1000`` rather than ``97.3 <= employees < 1012.8``,
and collapse when the data has fewer distinct values than bins. Missing values get their own
level, ``(missing)``: missingness is information, not a row to drop.
"""

from __future__ import annotations

import math

import numpy as np
import pandas as pd

MISSING = "(missing)"
OTHER = "(other)"


def nice_number(x: float) -> float:
    """Round to 2 significant figures, snapping to 1, 1.5, 2, 2.5, 3, 4, 5, 6, 7.5, 8 x 10^k."""
    if x == 0 or not math.isfinite(x):
        return x
    sign = -1.0 if x < 0 else 1.0
    x = abs(x)
    exponent = math.floor(math.log10(x))
    mantissa = x / 10**exponent
    steps = np.array([1, 1.5, 2, 2.5, 3, 4, 5, 6, 7.5, 8, 10])
    snapped = steps[np.argmin(np.abs(steps - mantissa))]
    value = snapped * 10**exponent
    # Integer-valued data gets integer cut points.
    return sign * (round(value) if value >= 1 else value)


#: A numeric column with at most this many distinct values (and five rows a value on average)
#: is cut at its own values (:func:`cut_points`).
FEW_VALUES = 12


def cut_points(
    values, n_bins: int = 5, *, nice: bool = True, min_bin_share: float = 0.05
) -> list[float]:
    """Interior cut points from quantiles of ``values`` (NaN ignored).

    Returns a sorted list of unique cut points (possibly empty when the column is constant).
    Bins holding less than ``min_bin_share`` of the non-missing rows are merged into a neighbour.
    A column of few distinct values, each shared by several rows (at most :data:`FEW_VALUES`,
    five rows a value on average: a 1-5 rating, company sizes exported as bands and read as
    their lower ends) is cut at its own values, never between
    them: a cut at 30 between the bands "11-50" and "51-200" (read as 11 and 51) would read
    "fewer than 30 employees" for the band up to 50; the cut is 51, the next band's start.
    """
    x = pd.to_numeric(pd.Series(values), errors="coerce").dropna().to_numpy(dtype=float)
    if x.size == 0 or n_bins < 2:
        return []
    qs = np.quantile(x, np.linspace(0, 1, n_bins + 1)[1:-1])
    distinct = np.unique(x)
    if distinct.size <= FEW_VALUES and x.size >= 5 * distinct.size:
        # Each quantile moves up to the first value at or above it: bins are [v_i, v_j).
        cuts = sorted({float(distinct[np.searchsorted(distinct, q, side="left")]) for q in qs})
    else:
        cuts = sorted({nice_number(q) if nice else float(q) for q in qs})
    lo, hi = x.min(), x.max()
    cuts = [c for c in cuts if lo < c <= hi]
    # Merge bins that are too small (by removing a cut point), smallest first.
    min_count = max(1, int(math.ceil(min_bin_share * x.size)))
    while cuts:
        # Rows per bin [c_i, c_i+1); counting them is cheaper than sorting the column.
        counts = np.bincount(np.searchsorted(cuts, x, side="right"), minlength=len(cuts) + 1)
        smallest = int(np.argmin(counts))
        if counts[smallest] >= min_count:
            break
        # Remove the cut that joins the smallest bin to its smaller neighbour.
        if smallest == 0:
            del cuts[0]
        elif smallest == len(counts) - 1:
            del cuts[-1]
        else:
            left, right = counts[smallest - 1], counts[smallest + 1]
            del cuts[smallest - 1 if left <= right else smallest]
    return cuts


def fmt_edge(x: float) -> str:
    """A cut point as a reader writes it: 60, 1,000, 75,000, 150k, 40M; years stay 2015."""
    x = float(x)
    size = abs(x)
    if x.is_integer() and 1800 <= size <= 2100:
        return str(int(x))  # a year (a round count this size reads as well without a comma)
    if size >= 1e9:
        return f"{x / 1e9:g}B"
    if size >= 1e6:
        return f"{x / 1e6:g}M"
    if size >= 1e5:
        return f"{x / 1e3:g}k"
    if x.is_integer():
        return f"{int(x):,}"
    return f"{x:,.3g}"


def interval_labels(cuts: list[float], name: str | None = None) -> list[str]:
    """Readable labels for the bins defined by ``cuts``: '< 100', '100 to < 500', '>= 500'."""
    if not cuts:
        return ["all"]
    labels = [f"< {fmt_edge(cuts[0])}"]
    for lo, hi in zip(cuts[:-1], cuts[1:], strict=True):
        labels.append(f"{fmt_edge(lo)} to < {fmt_edge(hi)}")
    labels.append(f">= {fmt_edge(cuts[-1])}")
    return labels


def apply_bins(values, cuts: list[float], *, missing_label: str = MISSING) -> pd.Categorical:
    """Assign each value to its bin (left-closed ``[lo, hi)``), missing to ``(missing)``.

    Returns an ordered Categorical whose categories are the bin labels in order, then the
    missing level.
    """
    x = pd.to_numeric(pd.Series(values), errors="coerce").to_numpy(dtype=float)
    labels = interval_labels(cuts)
    codes = (
        np.searchsorted(np.asarray(cuts, dtype=float), x, side="right")
        if cuts
        else np.zeros(x.size, int)
    )
    categories = labels + [missing_label]
    codes = np.where(np.isnan(x), len(labels), codes)
    return pd.Categorical.from_codes(codes, categories=categories, ordered=True)


def bin_numeric(values, n_bins: int = 5, **kwargs) -> tuple[pd.Categorical, list[float]]:
    """Quantile bins with nice cut points: returns ``(binned, cuts)``."""
    cuts = cut_points(values, n_bins, **kwargs)
    return apply_bins(values, cuts), cuts


def pool_rare_levels(
    values, min_count: int = 10, *, other_label: str = OTHER, missing_label: str = MISSING
) -> pd.Series:
    """Categorical values as strings, missing as ``(missing)``, levels rarer than ``min_count``
    pooled into ``(other)`` (tests on a level with two accounts say nothing and break
    cluster-robust variances)."""
    s = pd.Series(values, copy=False).astype("string").fillna(missing_label).astype(object)
    counts = s.value_counts()
    rare = counts.index[(counts < min_count) & (counts.index != missing_label)]
    if len(rare) > 0:
        s = s.where(~s.isin(set(rare)), other_label)
    return s
