"""Conditions: reading the significance tables' level labels as rule conditions, comparing
conditions, and scanning numeric ranges for the best one."""

from __future__ import annotations

import json
import math
import re
from collections.abc import Sequence

import numpy as np
import pandas as pd

from icp_research.analyses.antipatterns import Condition
from icp_research.methods.binning import MISSING, OTHER


def _parse_number(text: str) -> float:
    return float(text.replace(",", "").strip())


def level_condition(attribute: str, level: str, kind: str) -> Condition | None:
    """The condition that defines a level or bin label of the significance tables.

    ``'< 60'`` -> ``employees < 60``; ``'60 to < 150'`` -> between; ``'>= 600'`` -> at least;
    ``'(missing)'`` -> is missing; a category -> equals. None for ``(other)``, ``(trend)``.
    """
    level = str(level)
    if level == MISSING:
        return Condition(attribute, "is_missing")
    if level in (OTHER, "(trend)", "all"):
        return None
    if kind in ("bin", "numeric"):
        number = r"(-?[\d,]*\.?\d+(?:e[+-]?\d+)?)"
        for pattern, operator in (
            (rf"^< {number}$", "less_than"),
            (rf"^>= {number}$", "at_least"),
        ):
            found = re.match(pattern, level)
            if found:
                return Condition(attribute, operator, _parse_number(found.group(1)))
        found = re.match(rf"^{number} to < {number}$", level)
        if found:
            return Condition(
                attribute,
                "between",
                [_parse_number(found.group(1)), _parse_number(found.group(2))],
            )
        return None
    return Condition(attribute, "equals", level)


def condition_interval(condition: Condition) -> tuple[float, float] | None:
    if condition.operator == "less_than":
        return (-np.inf, float(condition.value))
    if condition.operator == "at_least":
        return (float(condition.value), np.inf)
    if condition.operator == "between":
        return (float(condition.value[0]), float(condition.value[1]))
    return None


def condition_values(condition: Condition) -> set | None:
    if condition.operator == "equals":
        return {str(condition.value)}
    if condition.operator == "in":
        return {str(v) for v in condition.value}
    return None


def overlaps(a: Condition, b: Condition) -> bool:
    """Whether some value meets both conditions on the same attribute."""
    if a.attribute != b.attribute:
        return False
    ia, ib = condition_interval(a), condition_interval(b)
    if ia is not None and ib is not None:
        return max(ia[0], ib[0]) < min(ia[1], ib[1])
    va, vb = condition_values(a), condition_values(b)
    if va is not None and vb is not None:
        return bool(va & vb)
    return a.operator == b.operator == "is_missing"


def contains(outer: Condition, inner: Condition) -> bool:
    """Whether every value meeting ``inner`` meets ``outer`` (same attribute)."""
    if outer.attribute != inner.attribute:
        return False
    io, ii = condition_interval(outer), condition_interval(inner)
    if io is not None and ii is not None:
        return io[0] <= ii[0] and ii[1] <= io[1]
    vo, vi = condition_values(outer), condition_values(inner)
    if vo is not None and vi is not None:
        return vi <= vo
    return outer.operator == inner.operator == "is_missing"


def best_range(
    values,
    outcome,
    edges: Sequence[float],
    *,
    min_share: float = 0.1,
    max_share: float = 0.8,
    clusters=None,
) -> tuple[float, float, float] | None:
    """The range of consecutive bins where the outcome rate is highest against the rest.

    Scans every range ``[edges[i], edges[j])`` (open-ended ones included) that holds between
    ``min_share`` and ``max_share`` of the rows with a value, and keeps the one with the largest
    two-proportion z statistic in favour of the range. With ``clusters`` (the account of each
    deal) accounts are the independent units: ranges are ranked by the one-sided p-value of the
    cluster-robust comparison (:func:`icp_research.methods.stats.clustered_rate_contrast`),
    so a range is not chosen for a few accounts with many deals. Returns
    ``(lower, upper, statistic)``, -inf / inf for open ends, or None when no range does better
    than the rest.
    """
    x = pd.to_numeric(pd.Series(values), errors="coerce").to_numpy(dtype=float)
    y = np.asarray(outcome, dtype=float)
    known = ~np.isnan(x) & ~np.isnan(y)
    x, y = x[known], y[known]
    if x.size < 20 or y.sum() == 0 or y.sum() == y.size:
        return None
    bounds = [-np.inf, *sorted(edges), np.inf]
    codes = np.searchsorted(np.asarray(sorted(edges), float), x, side="right")
    counts = np.bincount(codes, minlength=len(bounds) - 1).astype(float)
    events = np.bincount(codes, weights=y, minlength=len(bounds) - 1)
    total_n, total_e = counts.sum(), events.sum()
    p = total_e / total_n
    if clusters is not None:
        from icp_research.methods.stats import clustered_rate_contrast

        units = pd.DataFrame(
            {"cluster": pd.Series(clusters).to_numpy()[known], "code": codes, "y": y}
        )
        per = units.groupby(["cluster", "code"], sort=False)["y"].agg(["sum", "size"])
        unit_code = per.index.get_level_values("code").to_numpy()
        unit_events, unit_trials = per["sum"].to_numpy(float), per["size"].to_numpy(float)
    best, best_key = None, None
    for i in range(len(bounds) - 1):
        for j in range(i + 1, len(bounds)):
            if i == 0 and j == len(bounds) - 1:
                continue
            n1, e1 = counts[i:j].sum(), events[i:j].sum()
            n0, e0 = total_n - n1, total_e - e1
            if not min_share <= n1 / total_n <= max_share or n0 == 0:
                continue
            if clusters is None:
                z = (e1 / n1 - e0 / n0) / math.sqrt(p * (1 - p) * (1 / n1 + 1 / n0))
                key = z
            else:
                inside = (unit_code >= i) & (unit_code < j)
                contrast = clustered_rate_contrast(
                    unit_events[inside],
                    unit_trials[inside],
                    unit_events[~inside],
                    unit_trials[~inside],
                )
                z, key = contrast["statistic"], -contrast["log_p_greater"]
            if np.isfinite(key) and z > 0 and (best is None or key > best_key):
                best, best_key = (bounds[i], bounds[j], float(z)), key
    return best


def range_condition(attribute: str, lower: float, upper: float) -> Condition:
    if np.isinf(lower):
        return Condition(attribute, "less_than", float(upper))
    if np.isinf(upper):
        return Condition(attribute, "at_least", float(lower))
    return Condition(attribute, "between", [float(lower), float(upper)])


def condition_key(condition: Condition) -> tuple:
    value = condition.value
    if condition.operator in ("less_than", "at_least"):
        value = float(value)
    elif condition.operator == "between":
        value = [float(v) for v in value]
    elif condition.operator == "in":
        value = sorted(str(v) for v in value)
    return (condition.attribute, condition.operator, json.dumps(value))
