"""Survival analysis for right-censored times: time to churn, time to close a deal.

Churn is not a ratio of churned to all accounts: an account that joined last month has not had
the time to churn yet. Each account contributes a *duration* (from start to churn, or to the
as-of date when it is still a customer) and an *event* flag (churned or censored). The same
holds for sales cycles, where open deals are censored at the as-of date rather than dropped.

The estimators come from statsmodels; this module handles the awkward parts around them
(groups with missing labels, empty groups, no events, all censored, separation in a Cox model)
and returns :class:`~icp_research.result.Result` objects with findings in words.

- :func:`kaplan_meier` -- Kaplan-Meier curves per group (``SurvfuncRight``), medians with
  Brookmeyer-Crowley intervals, survival at chosen horizons, and a log-rank test across groups.
- :func:`logrank_test` -- log-rank test and its weighted variants (``survdiff``).
- :func:`cox_ph` -- Cox proportional-hazards model (``PHReg``) with hazard ratios, intervals and
  BH-adjusted p-values, or a caveat in words when the model cannot be fitted honestly.
- :func:`restricted_mean` -- restricted mean survival time (average time retained within a
  horizon), useful when the median is not reached.
- :func:`durations_from_dates` and :func:`time_to_close` -- durations and events from dates,
  censored at the as-of date.
- :func:`plot_survival` -- step curves with interval bands from the compact curve table.

Conventions
-----------
- Durations are non-negative numbers in one unit (``time_unit``: days, weeks, months, years);
  every time in the output (medians, horizons, curve times) is in that unit.
- Pointwise survival intervals use the log-log ("exponential Greenwood") transform, which stays
  inside [0, 1]; median intervals invert the same transform (Brookmeyer-Crowley, as SAS).
- The median is the first time at which the survival curve is at or below 50%; when the curve
  never gets there the median is *not reached* (NaN in tables, said in words in findings).
- Missing group labels form their own level, ``(missing)``.
- p-values are per test. When several attributes are tested, adjust them as a family with
  :func:`icp_research.methods.stats.adjust_pvalues` before calling anything significant.
"""

from __future__ import annotations

import math
import warnings
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field

import numpy as np
import pandas as pd
from scipy import stats as sps

from icp_research.errors import DataError, InputError
from icp_research.formatting import fmt_number, fmt_p, fmt_pct, slug
from icp_research.methods.binning import MISSING
from icp_research.methods.stats import adjust_pvalues
from icp_research.result import Result

__all__ = [
    "CoxResult",
    "LogrankResult",
    "SurvivalResult",
    "cox_ph",
    "durations_from_dates",
    "kaplan_meier",
    "logrank_test",
    "plot_survival",
    "restricted_mean",
    "time_to_close",
]

DAYS_PER_UNIT = {"days": 1.0, "weeks": 7.0, "months": 365.25 / 12, "years": 365.25}

# Horizons used when ``horizons="auto"``: 6, 12 and 24 months in the unit of the durations.
AUTO_HORIZONS = {
    unit: {
        f"{months} months": months * DAYS_PER_UNIT["months"] / per_unit for months in (6, 12, 24)
    }
    for unit, per_unit in DAYS_PER_UNIT.items()
}

ALL = "all"  # label of the single curve when no groups are given

_WEIGHTINGS = {
    None: (None, "log-rank"),
    "logrank": (None, "log-rank"),
    "log-rank": (None, "log-rank"),
    "wilcoxon": ("gb", "Gehan-Breslow (Wilcoxon)"),
    "gehan-breslow": ("gb", "Gehan-Breslow (Wilcoxon)"),
    "tarone-ware": ("tw", "Tarone-Ware"),
    "fleming-harrington": ("fh", "Fleming-Harrington"),
}


# ---------------------------------------------------------------------------------------------
# Result objects


@dataclass(frozen=True)
class LogrankResult:
    """Outcome of a (weighted) log-rank test of equal survival across groups.

    ``statistic`` is the chi-square statistic with ``df`` degrees of freedom (groups - 1);
    ``p_value`` is NaN when the test could not be run, and ``caveat`` then says why.
    """

    statistic: float
    df: int
    p_value: float
    test: str = "log-rank"
    groups: tuple[str, ...] = ()
    n: int = 0
    events: int = 0
    caveat: str | None = None

    @property
    def ok(self) -> bool:
        return not math.isnan(self.p_value)

    def describe(self) -> str:
        """'log-rank chi2 = 12.3, df = 2, p < 0.001' (or why the test was not run)."""
        if not self.ok:
            return f"{self.test} test not run: {self.caveat}"
        return (
            f"{self.test} chi2 = {self.statistic:.1f}, df = {self.df}, p {_p_words(self.p_value)}"
        )

    def to_frame(self) -> pd.DataFrame:
        """One-row table: test, groups, n, events, statistic, df, p_value."""
        return pd.DataFrame(
            [
                {
                    "test": self.test,
                    "groups": len(self.groups),
                    "n": self.n,
                    "events": self.events,
                    "statistic": self.statistic,
                    "df": self.df,
                    "p_value": self.p_value,
                }
            ]
        )


@dataclass(repr=False)
class SurvivalResult(Result):
    """Kaplan-Meier curves per group.

    ``summary``: one row per group with ``group``, ``n``, ``events``, ``censored``,
    ``max_time`` (longest follow-up), ``median``, ``median_ci_low``, ``median_ci_high`` and, per
    horizon, ``survival_<horizon>`` with ``_ci_low`` / ``_ci_high`` (fractions).

    ``tables``:

    - ``curve``: the step function in long format, one row per group and event time: ``group``,
      ``time``, ``at_risk``, ``events``, ``survival``, ``ci_low``, ``ci_high``. Survival is 1
      before the first event time and constant between event times.
    - ``horizons``: ``group``, ``horizon``, ``time``, ``n``, ``at_risk``, ``events_by``,
      ``survival``, ``ci_low``, ``ci_high``; survival is NaN when the group was not followed
      that long.
    - ``at_risk``: numbers at risk at round times (for the table under a plot).
    - ``logrank``: the test across groups (when there are two or more).
    """

    logrank: LogrankResult | None = None

    def survival_at(self, times, *, group: str | None = None) -> pd.DataFrame:
        """Survival and its interval at arbitrary ``times`` from the step curve.

        Returns ``group``, ``time``, ``survival``, ``ci_low``, ``ci_high``; NaN beyond a
        group's longest follow-up.
        """
        times = np.atleast_1d(np.asarray(times, dtype=float))
        curve = self.tables["curve"]
        rows = []
        for _, info in self.summary.iterrows():
            if group is not None and info["group"] != group:
                continue
            steps = curve[curve["group"] == info["group"]]
            looked_up = _step_lookup(steps, times, info["max_time"])
            looked_up.insert(0, "group", info["group"])
            rows.append(looked_up)
        if not rows:
            return pd.DataFrame(columns=["group", "time", "survival", "ci_low", "ci_high"])
        return pd.concat(rows, ignore_index=True)


@dataclass(repr=False)
class CoxResult(Result):
    """Cox proportional-hazards model.

    ``summary``: one row per term: ``covariate``, ``level`` (categorical level, empty for
    numeric), ``reference`` (reference level), ``per`` (the change in a numeric covariate that
    the ratio refers to), ``n`` and ``events`` (rows and events in the level, or in the model for
    numeric terms), ``hazard_ratio``, ``ci_low``, ``ci_high``, ``p_value``, ``q_value``
    (Benjamini-Hochberg over the model's estimated terms), ``significant`` and ``note``
    (``reference``, ``no events: not estimated``, ...). Empty when the model was not fitted.

    ``fitted`` is False when the model could not be fitted; ``caveats`` say why.
    """

    fitted: bool = False
    n: int = 0
    events: int = 0
    n_parameters: int = 0
    log_likelihood: float = float("nan")


# ---------------------------------------------------------------------------------------------
# Input handling


def _as_float(values, what: str) -> np.ndarray:
    series = pd.Series(values, copy=False)
    if pd.api.types.is_datetime64_any_dtype(series) or pd.api.types.is_timedelta64_dtype(series):
        # to_numeric would silently turn these into nanoseconds.
        raise DataError(
            f"{what} are dates or time spans, not numbers: convert them with "
            "durations_from_dates() (or .dt.days for time spans)."
        )
    if series.dtype == bool:
        return series.to_numpy(dtype=float)
    try:
        return pd.to_numeric(series, errors="raise").to_numpy(dtype=float, na_value=np.nan)
    except (TypeError, ValueError) as exc:
        raise DataError(
            f"{what} must be numeric; got values such as {series.dropna().iloc[:3].tolist()!r}. "
            "Convert dates to durations with durations_from_dates()."
        ) from exc


def _group_codes(groups, n: int) -> tuple[np.ndarray, list[str]]:
    """Integer codes and ordered string labels; missing values become the ``(missing)`` level.

    Categorical groups keep their category order (unused categories stay, as empty groups);
    other values are sorted.
    """
    if groups is None:
        return np.zeros(n, dtype=int), [ALL]
    series = pd.Series(groups, copy=False).reset_index(drop=True)
    if len(series) != n:
        raise InputError(f"groups has {len(series)} values but there are {n} durations.")
    missing = series.isna().to_numpy()
    if isinstance(series.dtype, pd.CategoricalDtype):
        labels = [str(c) for c in series.cat.categories]
        codes = series.cat.codes.to_numpy().astype(int)
    else:
        codes, uniques = pd.factorize(series, sort=True)
        labels = [str(u) for u in uniques]
    if MISSING in labels:
        missing_code = labels.index(MISSING)
    else:
        missing_code = len(labels)
        if missing.any():
            labels.append(MISSING)
    codes = np.where(missing, missing_code, codes)
    return codes, labels


def _clean_inputs(durations, events, groups):
    """Validated float durations, 0/1 events and group codes, with caveats for dropped rows.

    Returns ``(time, status, codes, labels, caveats, kept)``; ``kept`` is the boolean mask of
    input rows that remain.
    """
    time = _as_float(durations, "durations")
    status = _as_float(events, "events")
    if time.shape != status.shape:
        raise InputError(
            f"durations ({time.size} values) and events ({status.size} values) differ in length."
        )
    known = ~np.isnan(status)
    bad = known & ~np.isin(status, (0.0, 1.0))
    if bad.any():
        raise DataError(
            f"events must be 0/1 or True/False; found {np.unique(status[bad])[:5].tolist()}. "
            "Use 1 for an observed event (churned, closed) and 0 for censored."
        )
    codes, labels = _group_codes(groups, time.size)
    caveats = []
    missing = np.isnan(time) | ~known
    if missing.any():
        caveats.append(
            f"{fmt_number(missing.sum())} rows with a missing duration or event were left out."
        )
    invalid = ~missing & (~np.isfinite(time) | (time < 0))
    if invalid.any():
        caveats.append(
            f"{fmt_number(invalid.sum())} rows with a negative or infinite duration (an end "
            "before its start?) were left out; check the date columns."
        )
    keep = ~(missing | invalid)
    return time[keep], status[keep].astype(int), codes[keep], labels, caveats, keep


def _resolve_horizons(horizons, time_unit: str) -> dict[str, float]:
    if horizons is None:
        return {}
    if isinstance(horizons, str):
        if horizons != "auto":
            raise InputError(f"horizons must be 'auto', None, a list or a dict, not {horizons!r}.")
        return dict(AUTO_HORIZONS.get(time_unit, {}))
    if isinstance(horizons, Mapping):
        return {str(k): float(v) for k, v in horizons.items()}
    if isinstance(horizons, int | float):
        horizons = [horizons]
    return {f"{_fmt_time(t)} {time_unit}": float(t) for t in horizons}


# ---------------------------------------------------------------------------------------------
# Formatting in words


def _fmt_time(x: float) -> str:
    if x is None or not np.isfinite(x):
        return "–"
    if float(x).is_integer():
        return f"{x:,.0f}"
    return f"{x:,.1f}" if abs(x) >= 10 else f"{x:.2g}"


def _p_words(p: float) -> str:
    text = fmt_p(p)
    return text.replace("<", "< ") if text.startswith("<") else f"= {text}"


def _fmt_interval(estimate: float, low: float, high: float, n: int) -> str:
    """'91% (88–93%, n=812)'; without an interval (no event yet) '100% (n=80)'."""
    if np.isnan(low) or np.isnan(high):
        return f"{fmt_pct(estimate)} (n={fmt_number(n)})"
    return f"{fmt_pct(estimate)} ({fmt_pct(low)[:-1]}–{fmt_pct(high)}, n={fmt_number(n)})"


# ---------------------------------------------------------------------------------------------
# Kaplan-Meier


def _loglog_interval(survival, se, z):
    """Pointwise interval on the log(-log S) scale (exponential Greenwood), as lifelines and R.

    NaN where the interval is undefined (S = 1 before any event, S = 0 after the last).
    """
    survival = np.asarray(survival, dtype=float)
    se = np.asarray(se, dtype=float)
    with np.errstate(divide="ignore", invalid="ignore"):
        log_s = np.log(survival)
        half_width = z * (se / survival) / np.abs(log_s)
        center = np.log(-log_s)
        low = np.exp(-np.exp(center + half_width))
        high = np.exp(-np.exp(center - half_width))
    undefined = ~np.isfinite(half_width) | (survival <= 0) | (survival >= 1)
    return np.where(undefined, np.nan, low), np.where(undefined, np.nan, high)


def _median(times: np.ndarray, survival: np.ndarray) -> float:
    """First time at which the curve is at or below one half (NaN when never)."""
    # A tolerance so that a product of fractions equal to 1/2 counts as 1/2.
    below = np.flatnonzero(survival <= 0.5 + 1e-12)
    return float(times[below[0]]) if below.size else float("nan")


def _fit_group(time, status, alpha, z):
    """One group's curve table, median and median interval (statsmodels SurvfuncRight)."""
    from statsmodels.duration.survfunc import SurvfuncRight

    fit = SurvfuncRight(time, status)
    ci_low, ci_high = _loglog_interval(fit.surv_prob, fit.surv_prob_se, z)
    curve = pd.DataFrame(
        {
            "time": fit.surv_times.astype(float),
            "at_risk": fit.n_risk.astype(int),
            "events": fit.n_events.astype(int),
            "survival": fit.surv_prob,
            "ci_low": ci_low,
            "ci_high": ci_high,
        }
    )
    median = _median(fit.surv_times, fit.surv_prob)
    if fit.surv_times.size:
        with np.errstate(divide="ignore", invalid="ignore"):
            median_low, median_high = fit.quantile_ci(0.5, alpha=alpha, method="cloglog")
    else:
        median_low, median_high = np.nan, np.nan
    # An infinite upper limit means "not reached within follow-up".
    median_low = float(median_low) if np.isfinite(median_low) else np.nan
    median_high = float(median_high) if np.isfinite(median_high) else np.nan
    return curve, median, median_low, median_high


def _step_lookup(curve: pd.DataFrame, times: np.ndarray, max_time: float) -> pd.DataFrame:
    """Right-continuous step lookup of survival and interval at ``times``."""
    event_times = curve["time"].to_numpy()
    position = np.searchsorted(event_times, times, side="right") - 1
    before_first = position < 0
    position = np.clip(position, 0, None)
    out = pd.DataFrame({"time": times})
    for column in ("survival", "ci_low", "ci_high"):
        values = curve[column].to_numpy(dtype=float)
        looked_up = values[position] if values.size else np.full(times.size, np.nan)
        fill = 1.0 if column == "survival" else np.nan
        out[column] = np.where(before_first, fill, looked_up)
    beyond = ~(times <= max_time)
    out.loc[beyond, ["survival", "ci_low", "ci_high"]] = np.nan
    return out


def _tick_times(max_time: float) -> np.ndarray:
    from matplotlib.ticker import MaxNLocator

    if not np.isfinite(max_time) or max_time <= 0:
        return np.array([0.0])
    ticks = MaxNLocator(nbins=6, steps=[1, 2, 2.5, 3, 5, 6, 10]).tick_values(0, max_time)
    return ticks[(ticks >= 0) & (ticks <= max_time)]


def kaplan_meier(
    durations,
    events,
    *,
    groups=None,
    alpha: float = 0.05,
    label: str | None = None,
    time_unit: str = "days",
    horizons="auto",
    event_name: str = "churn",
    survival_name: str = "retention",
    group_name: str | None = None,
    weighting: str | None = None,
    min_events: int = 5,
) -> SurvivalResult:
    """Kaplan-Meier survival curves, overall or per group, with a log-rank test across groups.

    Parameters
    ----------
    durations : array-like of float
        Time from start to the event or to censoring, in ``time_unit`` (>= 0). Rows with a
        missing, negative or infinite duration are left out and counted in ``caveats``.
    events : array-like of bool or 0/1
        1 / True when the event (churn, close) was observed, 0 / False when censored.
    groups : array-like, optional
        Group label per row. Missing labels form the ``(missing)`` level; a categorical keeps its
        category order and its unused categories (reported with ``n = 0``).
    alpha : float
        1 - confidence level of every interval.
    label : str, optional
        Title of the result.
    time_unit : {'days', 'weeks', 'months', 'years'} or any word
        Unit of ``durations``; used in words and to choose automatic horizons.
    horizons : 'auto', None, list of float or dict of {label: time}
        Times at which survival is reported. ``'auto'`` means 6, 12 and 24 months expressed in
        ``time_unit`` (none for an unknown unit).
    event_name, survival_name : str
        Words for the findings: "median time to {event_name}", "{survival_name} at 12 months".
    group_name : str, optional
        What the groups are ("industry"), for the findings.
    weighting : str, optional
        Log-rank weighting: None (log-rank), 'wilcoxon', 'tarone-ware' (see :func:`logrank_test`).
    min_events : int
        Groups with fewer events are flagged in ``caveats`` (their curves are rough).

    Returns
    -------
    SurvivalResult
        ``summary`` one row per group, ``tables['curve']`` (event times only),
        ``tables['horizons']``, ``tables['at_risk']``, ``logrank`` (two or more groups), and
        ``findings`` in words. Times are in ``time_unit``; survival values are fractions.
    """
    time, status, codes, labels, caveats, _ = _clean_inputs(durations, events, groups)
    horizon_times = _resolve_horizons(horizons, time_unit)
    z = sps.norm.ppf(1 - alpha / 2)
    title = label or (
        f"{survival_name.capitalize()} by {group_name}"
        if group_name
        else f"{survival_name.capitalize()} (Kaplan-Meier)"
    )

    params = {
        "alpha": alpha,
        "time_unit": time_unit,
        "horizons": horizon_times,
        "event_name": event_name,
        "survival_name": survival_name,
        "group_name": group_name,
        "weighting": weighting,
    }
    if time.size == 0:
        caveats.append("No rows with a valid duration and event: nothing to estimate.")
        return SurvivalResult(title=title, caveats=caveats, params=params)

    summary_rows, curves, horizon_rows, risk_rows = [], [], [], []
    ticks = _tick_times(float(time.max()))
    for code, group in enumerate(labels):
        in_group = codes == code
        group_time, group_status = time[in_group], status[in_group]
        n, n_events = int(in_group.sum()), int(group_status.sum())
        row = {
            "group": group,
            "n": n,
            "events": n_events,
            "censored": n - n_events,
            "max_time": float(group_time.max()) if n else np.nan,
            "median": np.nan,
            "median_ci_low": np.nan,
            "median_ci_high": np.nan,
        }
        if n == 0:
            for key in horizon_times:
                for suffix in ("", "_ci_low", "_ci_high"):
                    row[f"survival_{slug(key)}{suffix}"] = np.nan
            summary_rows.append(row)
            continue
        curve, median, median_low, median_high = _fit_group(group_time, group_status, alpha, z)
        row.update(median=median, median_ci_low=median_low, median_ci_high=median_high)
        curves.append(curve.assign(group=group))
        if horizon_times:
            at = _step_lookup(curve, np.array(list(horizon_times.values())), row["max_time"])
            for (key, t), (_, looked_up) in zip(horizon_times.items(), at.iterrows(), strict=True):
                key_slug = slug(key)
                row[f"survival_{key_slug}"] = looked_up["survival"]
                row[f"survival_{key_slug}_ci_low"] = looked_up["ci_low"]
                row[f"survival_{key_slug}_ci_high"] = looked_up["ci_high"]
                horizon_rows.append(
                    {
                        "group": group,
                        "horizon": key,
                        "time": t,
                        "n": n,
                        "at_risk": int((group_time >= t).sum()),
                        "events_by": int(group_status[group_time <= t].sum()),
                        "survival": looked_up["survival"],
                        "ci_low": looked_up["ci_low"],
                        "ci_high": looked_up["ci_high"],
                    }
                )
        sorted_time = np.sort(group_time)
        at_risk = sorted_time.size - np.searchsorted(sorted_time, ticks, side="left")
        risk_rows.append(pd.DataFrame({"group": group, "time": ticks, "at_risk": at_risk}))
        summary_rows.append(row)

    summary = pd.DataFrame(summary_rows)
    curve_columns = ["group", "time", "at_risk", "events", "survival", "ci_low", "ci_high"]
    tables = {
        "curve": (
            pd.concat(curves, ignore_index=True)[curve_columns]
            if curves
            else pd.DataFrame(columns=curve_columns)
        ),
        "horizons": pd.DataFrame(
            horizon_rows,
            columns=[
                "group",
                "horizon",
                "time",
                "n",
                "at_risk",
                "events_by",
                "survival",
                "ci_low",
                "ci_high",
            ],
        ),
        "at_risk": (
            pd.concat(risk_rows, ignore_index=True)
            if risk_rows
            else pd.DataFrame(columns=["group", "time", "at_risk"])
        ),
    }

    logrank = None
    if groups is not None and (summary["n"] > 0).sum() >= 2:
        logrank = logrank_test(
            time, status, np.asarray(labels, dtype=object)[codes], weighting=weighting
        )
        tables["logrank"] = logrank.to_frame()

    words = _Words(event_name, survival_name, time_unit, group_name, alpha)
    findings = words.findings(summary, horizon_times, logrank, grouped=groups is not None)
    caveats += words.caveats(summary, logrank, min_events)
    return SurvivalResult(
        title=title,
        summary=summary,
        findings=findings,
        caveats=caveats,
        tables=tables,
        params=params,
        logrank=logrank,
    )


@dataclass
class _Words:
    """Findings and caveats of a Kaplan-Meier result, in the analyst's words."""

    event_name: str
    survival_name: str
    time_unit: str
    group_name: str | None
    alpha: float
    max_groups: int = field(default=8)

    def median_text(self, row) -> str:
        if np.isnan(row["median"]):
            text = "not reached"
            if not np.isnan(row["median_ci_low"]):
                text += f" (lower bound {_fmt_time(row['median_ci_low'])} {self.time_unit})"
            return text
        text = f"{_fmt_time(row['median'])} {self.time_unit}"
        low, high = row["median_ci_low"], row["median_ci_high"]
        if not np.isnan(low):
            high_text = _fmt_time(high) if not np.isnan(high) else "not reached"
            text += f" ({100 * (1 - self.alpha):.0f}% CI {_fmt_time(low)}–{high_text})"
        return text

    def findings(self, summary, horizon_times, logrank, *, grouped) -> list[str]:
        shown = summary[summary["n"] > 0]
        if shown.empty:
            return []
        if shown["events"].sum() == 0:
            return [
                f"No {self.event_name} observed among {fmt_number(shown['n'].sum())} rows: "
                f"{self.survival_name} is 100% throughout follow-up "
                f"(up to {_fmt_time(shown['max_time'].max())} {self.time_unit})."
            ]
        many = len(shown) > self.max_groups
        if many:
            # Too many groups for a sentence each: name the extremes by median or first horizon.
            key = f"survival_{slug(next(iter(horizon_times)))}" if horizon_times else "median"
            ordered = shown.sort_values(key, na_position="last")
            shown = pd.concat([ordered.head(2), ordered.tail(2)]).drop_duplicates("group")
        lines = []
        if grouped:
            parts = [
                f"{self.median_text(r)} for {r['group']} (n={fmt_number(r['n'])})"
                for _, r in shown.iterrows()
            ]
            lines.append(f"Median time to {self.event_name}: " + "; ".join(parts) + ".")
        else:
            r = shown.iloc[0]
            lines.append(
                f"Median time to {self.event_name}: {self.median_text(r)}; "
                f"{fmt_number(r['n'])} rows, {fmt_number(r['events'])} {self.event_name} events."
            )
        for key in horizon_times:
            key_slug = slug(key)
            parts = []
            for _, r in shown.iterrows():
                estimate = r[f"survival_{key_slug}"]
                if np.isnan(estimate):
                    text = f"not followed for {key} (n={fmt_number(r['n'])})"
                else:
                    text = _fmt_interval(
                        estimate,
                        r[f"survival_{key_slug}_ci_low"],
                        r[f"survival_{key_slug}_ci_high"],
                        r["n"],
                    )
                parts.append(f"{r['group']} {text}" if grouped else text)
            joiner = " vs " if len(parts) == 2 else ", "
            lines.append(f"{self.survival_name.capitalize()} at {key}: " + joiner.join(parts) + ".")
        if many:
            lines.append(
                f"Only the groups at both ends of {len(summary)} are named; see the table."
            )
        if logrank is not None:
            across = f"between {self.group_name} groups" if self.group_name else "between groups"
            if not logrank.ok:
                lines.append(f"No test of {self.survival_name} {across}: {logrank.caveat}")
            elif logrank.p_value < self.alpha:
                lines.append(
                    f"{self.survival_name.capitalize()} differs {across} ({logrank.describe()})."
                )
            else:
                lines.append(
                    f"No evidence that {self.survival_name} differs {across} "
                    f"({logrank.describe()})."
                )
        return lines

    def caveats(self, summary, logrank, min_events) -> list[str]:
        notes = []
        empty = summary.loc[summary["n"] == 0, "group"].tolist()
        if empty:
            notes.append(f"No rows for {', '.join(map(str, empty))}: no curve.")
        few = summary[(summary["n"] > 0) & (summary["events"] < min_events)]
        if len(few) and summary["events"].sum() > 0:
            listed = ", ".join(
                f"{g} ({e})" for g, e in zip(few["group"], few["events"], strict=True)
            )
            notes.append(
                f"Fewer than {min_events} {self.event_name} events in {listed}: "
                "those curves rest on very few events and their intervals are wide."
            )
        n, events = summary["n"].sum(), summary["events"].sum()
        if n and events / n < 0.2 and events > 0:
            notes.append(
                f"{fmt_pct(1 - events / n)} of rows are censored (no {self.event_name} yet): "
                "the curves say little beyond the times where few rows remain at risk "
                "(see at_risk)."
            )
        if logrank is not None and logrank.ok:
            notes.append(
                "The log-rank p-value is for this comparison alone; adjust it with the "
                "other attributes tested before calling it significant."
            )
        return notes


# ---------------------------------------------------------------------------------------------
# Log-rank


def logrank_test(
    durations,
    events,
    groups,
    *,
    weighting: str | None = None,
    fh_p: float = 1.0,
) -> LogrankResult:
    """Test of equal survival across two or more groups (statsmodels ``survdiff``).

    Parameters
    ----------
    durations, events, groups : array-like
        As in :func:`kaplan_meier`; missing group labels form the ``(missing)`` group.
    weighting : {None, 'logrank', 'wilcoxon', 'gehan-breslow', 'tarone-ware',
                 'fleming-harrington'}
        None is the log-rank test (equal weight at every event time, most powerful under
        proportional hazards); Wilcoxon / Gehan-Breslow weights early differences by the
        number at risk, Tarone-Ware by its square root, Fleming-Harrington by ``S(t-)^fh_p``.
    fh_p : float
        Exponent of the Fleming-Harrington weights.

    Returns
    -------
    LogrankResult
        ``statistic`` (chi-square), ``df`` (groups - 1), ``p_value``. When the test cannot be
        run (fewer than two groups with rows, no events) the numbers are NaN and ``caveat``
        says why. Groups whose rows all end before the first event carry no information and
        are left out of the test (said in ``caveat``).
    """
    from statsmodels.duration.survfunc import survdiff

    key = weighting.lower() if isinstance(weighting, str) else weighting
    if key not in _WEIGHTINGS:
        raise InputError(
            f"weighting must be one of {sorted(k for k in _WEIGHTINGS if k)} or None, "
            f"not {weighting!r}."
        )
    weight_type, test_name = _WEIGHTINGS[key]
    time, status, codes, labels, _, _ = _clean_inputs(durations, events, groups)
    present = np.unique(codes)
    names = tuple(labels[c] for c in present)
    n, n_events = int(time.size), int(status.sum())

    def not_run(reason: str) -> LogrankResult:
        return LogrankResult(
            np.nan, max(len(present) - 1, 0), np.nan, test_name, names, n, n_events, reason
        )

    if len(present) < 2:
        return not_run("fewer than two groups have rows.")
    if n_events == 0:
        return not_run(f"no events among {fmt_number(n)} rows.")
    first_event = time[status == 1].min()
    uninformative = [c for c in present if time[codes == c].max() < first_event]
    note = None
    if uninformative:
        note = (
            f"{', '.join(labels[c] for c in uninformative)} left out of the test: "
            "every row ends before the first event."
        )
        keep = ~np.isin(codes, uninformative)
        time, status, codes = time[keep], status[keep], codes[keep]
        present = np.unique(codes)
        names = tuple(labels[c] for c in present)
        if len(present) < 2:
            return not_run(note)
    kwargs = {"fh_p": fh_p} if weight_type == "fh" else {}
    try:
        statistic, _ = survdiff(time, status, codes, weight_type=weight_type, **kwargs)
    except np.linalg.LinAlgError:
        return not_run("the groups' event counts have a singular variance matrix.")
    df = len(present) - 1
    statistic = float(statistic)
    # survdiff reports 1 - cdf, which rounds to 0 for strong effects; the survival function
    # keeps small p-values exact.
    p_value = float(sps.chi2.sf(statistic, df))
    return LogrankResult(statistic, df, p_value, test_name, names, n, n_events, note)


# ---------------------------------------------------------------------------------------------
# Restricted mean survival time


def restricted_mean(
    durations, events, horizon: float, *, groups=None, alpha: float = 0.05
) -> pd.DataFrame:
    """Restricted mean survival time: the average time retained within the first ``horizon``.

    The area under the Kaplan-Meier curve from 0 to ``horizon``, with the usual
    Greenwood-type variance (Klein & Moeschberger, section 4.5). Unlike the median it exists when
    most rows never have the event: "within their first 24 months, accounts stay 21.3 months on
    average".

    Returns
    -------
    DataFrame
        ``group``, ``n``, ``events``, ``horizon``, ``rmst``, ``se``, ``ci_low``, ``ci_high``, in
        the unit of ``durations``. NaN when a group was not followed up to ``horizon``.
    """
    from statsmodels.duration.survfunc import SurvfuncRight

    time, status, codes, labels, _, _ = _clean_inputs(durations, events, groups)
    z = sps.norm.ppf(1 - alpha / 2)
    rows = []
    for code, group in enumerate(labels):
        in_group = codes == code
        row = {
            "group": group,
            "n": int(in_group.sum()),
            "events": int(status[in_group].sum()),
            "horizon": float(horizon),
            "rmst": np.nan,
            "se": np.nan,
        }
        if row["n"] and time[in_group].max() >= horizon:
            fit = SurvfuncRight(time[in_group], status[in_group])
            inside = fit.surv_times <= horizon
            event_times = fit.surv_times[inside]
            knots = np.concatenate(([0.0], event_times, [horizon]))
            levels = np.concatenate(([1.0], fit.surv_prob[inside]))
            areas = np.diff(knots) * levels
            row["rmst"] = float(areas.sum())
            # Area under the curve from each event time to the horizon.
            tail_area = np.cumsum(areas[::-1])[::-1][1:]
            at_risk, died = fit.n_risk[inside].astype(float), fit.n_events[inside].astype(float)
            with np.errstate(divide="ignore", invalid="ignore"):
                terms = np.where(
                    at_risk > died, tail_area**2 * died / (at_risk * (at_risk - died)), 0.0
                )
            row["se"] = float(np.sqrt(terms.sum()))
        rows.append(row)
    table = pd.DataFrame(rows)
    table["ci_low"] = (table["rmst"] - z * table["se"]).clip(lower=0)
    table["ci_high"] = np.minimum(table["rmst"] + z * table["se"], table["horizon"])
    return table


# ---------------------------------------------------------------------------------------------
# Durations from dates; time to close


def _datetimes(values: pd.Series) -> pd.Series:
    """``pd.to_datetime`` of a Series, skipped when it already holds datetimes: pandas would
    still walk the values one by one to decide whether to cache the conversion."""
    if isinstance(values.dtype, np.dtype) and values.dtype.kind == "M":
        return values
    return pd.to_datetime(values)


def durations_from_dates(start, end, *, as_of, unit: str = "days") -> pd.DataFrame:
    """Right-censored durations from a start date and an (optional) end date.

    An end on or before ``as_of`` is an event; a missing end, or an end after ``as_of`` (the
    future, as seen from ``as_of``), is censored at ``as_of``. Rows that start after ``as_of`` or
    have no start get a missing duration (left out by :func:`kaplan_meier`, which counts them).

    Returns
    -------
    DataFrame
        ``duration`` (in ``unit``: days, weeks, months of 365.25/12 days, years) and ``event``
        (bool), aligned with the inputs.
    """
    if unit not in DAYS_PER_UNIT:
        raise InputError(f"unit must be one of {list(DAYS_PER_UNIT)}, not {unit!r}.")
    start = _datetimes(pd.Series(start, copy=False).reset_index(drop=True))
    end = _datetimes(pd.Series(end, copy=False).reset_index(drop=True))
    as_of = pd.Timestamp(as_of)
    event = (end.notna() & (end <= as_of)).to_numpy()
    stop = end.where(event, as_of)
    days = (stop - start).dt.total_seconds().to_numpy(dtype=float, na_value=np.nan) / 86400
    days[(start > as_of).to_numpy()] = np.nan
    return pd.DataFrame({"duration": days / DAYS_PER_UNIT[unit], "event": event})


def time_to_close(
    opportunities: pd.DataFrame,
    *,
    as_of,
    by: str | None = None,
    unit: str = "days",
    horizons=None,
    alpha: float = 0.05,
) -> SurvivalResult:
    """Sales-cycle length as a survival curve: time from creation to a decision (won or lost).

    Open deals are censored at ``as_of`` instead of being dropped, so long-running deals are not
    forgotten; a deal closed after ``as_of`` counts as open. The event is any close: won and
    lost deals both leave the pipeline. Whether a closed deal was won is a separate question
    (win rate); treating lost deals as censored would overstate how fast deals are won.

    Parameters
    ----------
    opportunities : DataFrame
        Canonical ``opportunities`` columns ``stage`` (won / lost / open), ``created_at``,
        ``closed_at``, plus the ``by`` column when given.
    as_of : date-like
        The date the pipeline is seen from.
    by : str, optional
        Column to split the curves by (segment, source, owner ...).
    unit : str
        Unit of the durations (days by default).
    horizons : optional
        As in :func:`kaplan_meier`; default 30, 90 and 180 days in ``unit``.

    Returns
    -------
    SurvivalResult
        Survival here is the share of deals *still open*; the median is the median sales cycle.
    """
    missing = [c for c in ("stage", "created_at", "closed_at") if c not in opportunities]
    if by is not None and by not in opportunities:
        missing.append(by)
    if missing:
        raise InputError(
            f"opportunities has no column {', '.join(map(repr, missing))}; "
            "map it in the [tables.opportunities.columns] section of icp.toml."
        )
    as_of = pd.Timestamp(as_of)
    stage = opportunities["stage"].astype("string").str.lower().to_numpy()
    created = _datetimes(opportunities["created_at"])
    closed = _datetimes(opportunities["closed_at"]).where(np.isin(stage, ("won", "lost")), pd.NaT)
    no_close_date = np.isin(stage, ("won", "lost")) & closed.isna().to_numpy()
    times = durations_from_dates(created, closed, as_of=as_of, unit=unit)
    # A closed deal without a close date cannot be timed; it must not pass for an open one.
    times.loc[no_close_date, "duration"] = np.nan
    not_yet = int((created > as_of).sum())
    if horizons is None:
        horizons = {f"{d} days": d / DAYS_PER_UNIT[unit] for d in (30, 90, 180)}
    result = kaplan_meier(
        times["duration"],
        times["event"],
        groups=None if by is None else opportunities[by].reset_index(drop=True),
        alpha=alpha,
        time_unit=unit,
        horizons=horizons,
        event_name="close",
        survival_name="still open",
        group_name=by,
        label=f"Time to close by {by}" if by else "Time to close",
    )
    if no_close_date.any():
        result.caveats.insert(
            0,
            f"{fmt_number(no_close_date.sum())} won or lost deals have no "
            "close date and could not be timed.",
        )
    if not_yet:
        result.caveats.insert(
            0, f"{fmt_number(not_yet)} deals created after {as_of.date()} are not counted."
        )
    result.caveats.append(
        "Deals of one account are not independent; the intervals treat them as "
        "independent and are somewhat too narrow."
    )
    result.params["as_of"] = str(as_of.date())
    return result


# ---------------------------------------------------------------------------------------------
# Cox proportional hazards


class _CannotFit(Exception):
    """The Cox model cannot be fitted honestly; the message says why, in words."""


def _cox_rows(frame, duration, event, covariates, categorical, extra, caveats):
    """Model rows: valid duration and event, categoricals as strings with a ``(missing)`` level,
    rows with a missing numeric covariate left out. Returns ``(data, kinds)``."""
    time, status, _, _, dropped, keep = _clean_inputs(frame[duration], frame[event], None)
    caveats += dropped
    data = frame.loc[keep, covariates + extra].reset_index(drop=True)
    data["_time"], data["_status"] = time, status
    kinds = {}
    for name in covariates:
        column = data[name]
        numeric = pd.api.types.is_numeric_dtype(column) and not pd.api.types.is_bool_dtype(column)
        kinds[name] = "numeric" if numeric and name not in categorical else "categorical"
        if kinds[name] == "categorical":
            data[name] = column.astype("string").fillna(MISSING).astype(object)
    numeric = [c for c in covariates if kinds[c] == "numeric"]
    incomplete = data[numeric].isna().any(axis=1) if numeric else pd.Series(False, data.index)
    if incomplete.any():
        names = " or ".join(c for c in numeric if data[c].isna().any())
        caveats.append(
            f"{fmt_number(incomplete.sum())} rows with a missing {names} were left out "
            "(bin the column to keep them as a (missing) level)."
        )
        data = data[~incomplete].reset_index(drop=True)
    return data, kinds


def _drop_uninformative(data, covariates, kinds, event_name, caveats):
    """Leave out constant covariates and the rows of levels without events.

    A level in which nobody has the event has a hazard ratio of zero (separation): no finite
    estimate exists. Removing its rows can empty a level of another covariate, hence the loop.
    Returns ``(data, active covariates, not-estimated level rows)``.
    """
    not_estimated = []
    active = list(covariates)
    changed = True
    while changed:
        changed = False
        for name in list(active):
            if data[name].nunique(dropna=False) < 2:
                caveats.append(f"{name} has a single value in the model rows; left out.")
                active.remove(name)
                changed = True
                continue
            if kinds[name] != "categorical":
                continue
            counts = data.groupby(name)["_status"].agg(["size", "sum"])
            no_events = counts.index[counts["sum"] == 0].tolist()
            if not no_events or len(no_events) == len(counts):
                continue
            not_estimated += [
                {
                    "covariate": name,
                    "level": level,
                    "n": int(counts.loc[level, "size"]),
                    "events": 0,
                }
                for level in no_events
            ]
            caveats.append(
                f"No {event_name} in {name} = {', '.join(map(str, no_events))} "
                f"({fmt_number(counts.loc[no_events, 'size'].sum())} rows): a hazard ratio there "
                "would be zero, not estimable; those rows were left out of the model (compare "
                "them with Kaplan-Meier curves)."
            )
            data = data[~data[name].isin(no_events)].reset_index(drop=True)
            changed = True
    return data, active, not_estimated


def _cox_design(data, active, kinds, reference, scale):
    """Design matrix (one column per numeric covariate, one per non-reference level) and one
    term record per row of the eventual summary, references included."""
    n, n_events = len(data), int(data["_status"].sum())
    columns, terms, references = [], [], {}
    for name in active:
        if kinds[name] == "numeric":
            values = data[name].to_numpy(dtype=float)
            per = float(values.std(ddof=1)) if scale == "sd" else 1.0
            columns.append((values - values.mean()) / per)
            terms.append(
                {
                    "covariate": name,
                    "level": "",
                    "reference": "",
                    "per": per,
                    "n": n,
                    "events": n_events,
                }
            )
            continue
        counts = data.groupby(name)["_status"].agg(["size", "sum"])
        chosen = reference.get(name)
        if chosen is not None and str(chosen) not in counts.index:
            raise InputError(
                f"cox_ph: reference level {chosen!r} of {name} is not in the model rows "
                f"(levels: {', '.join(map(str, counts.index[:10]))})."
            )
        if chosen is None:
            with_events = counts[counts["sum"] > 0]
            chosen = with_events.sort_values("size", ascending=False, kind="stable").index[0]
        base = references[name] = str(chosen)
        first = len(terms)
        for level, (size, events) in counts.iterrows():
            term = {
                "covariate": name,
                "level": level,
                "reference": base,
                "per": np.nan,
                "n": int(size),
                "events": int(events),
            }
            if level == base:
                terms.insert(first, {**term, "_reference": True})
                continue
            columns.append((data[name] == level).to_numpy(dtype=float))
            terms.append(term)
    return np.column_stack(columns), terms, references


def _redundant_columns(design: np.ndarray, tolerance: float = 1e-8) -> list[int]:
    """Columns that are (near) linear combinations of earlier ones, in order."""
    centered = design - design.mean(axis=0)
    gram = centered.T @ centered
    scale = np.sqrt(np.diag(gram))
    scale[scale == 0] = 1.0
    correlation = gram / np.outer(scale, scale)
    kept, redundant = [], []
    for j in range(design.shape[1]):
        trial = kept + [j]
        smallest = np.linalg.eigvalsh(correlation[np.ix_(trial, trial)]).min()
        (kept if smallest > tolerance else redundant).append(j)
    return redundant


def cox_newton(
    time, status, design, *, ties: str = "efron", max_iter: int = 50, tol: float = 1e-10
):
    """Cox proportional-hazards fit by Newton-Raphson over grouped risk sets.

    The same estimator as statsmodels' ``PHReg`` (Efron or Breslow ties; no strata, entry
    times or clusters), written so that its cost grows with the number of rows and distinct
    event times instead of looping in Python over every event time: identical rows (same time,
    status and covariates, common with whole-month tenures and categorical covariates) are
    collapsed into weights, risk-set sums are reverse cumulative sums over time, and Efron's
    correction for tied events is summed in closed form per event time.

    Returns ``(coef, se, p_values, log_likelihood)``; raises :class:`_CannotFit` when the
    Hessian is singular or the fit does not converge (separation).
    """
    time = np.asarray(time, dtype=float)
    status = np.asarray(status, dtype=float) > 0
    design = np.asarray(design, dtype=float)
    n, k = design.shape
    # Collapse identical rows into frequency weights.
    frame = pd.DataFrame(design)
    frame["_time"], frame["_status"] = time, status
    grouped = frame.groupby(list(frame.columns), sort=False, dropna=False).size()
    keys = grouped.index.to_frame(index=False).to_numpy(dtype=float)
    weight = grouped.to_numpy(dtype=float)
    x, t, event = keys[:, :k], keys[:, k], keys[:, k + 1] > 0
    order = np.argsort(t, kind="mergesort")
    x, t, event, weight = x[order], t[order], event[order], weight[order]
    times, start = np.unique(t, return_index=True)
    bins = np.searchsorted(times, t)
    n_times = times.size
    ends = list(start[1:]) + [t.size]
    d = np.bincount(bins, weights=weight * event, minlength=n_times)  # tied events per time
    has_events = d > 0
    event_x = (weight * event) @ x  # sum of covariates over events

    if ties == "efron":
        # Pairs (time, j) for j = 0 .. d - 1: one Efron term each.
        counts = d[has_events].astype(int)
        pair_time = np.repeat(np.flatnonzero(has_events), counts)
        pair_frac = (
            np.concatenate([np.arange(c) / c for c in counts]) if counts.size else np.zeros(0)
        )

    def parts(beta):
        # Under separation the estimates run off to infinity and these sums overflow; the
        # caller turns that into "did not converge", so numpy's warnings are only noise.
        with np.errstate(over="ignore", invalid="ignore", divide="ignore"):
            return _parts(beta)

    def _parts(beta):
        eta = x @ beta
        shift = eta.max() if eta.size else 0.0
        risk = weight * np.exp(eta - shift)
        # Sums per time bin, then risk-set sums (all rows at or after each time).
        r_bin = np.bincount(bins, weights=risk, minlength=n_times)
        s1_bin = np.zeros((n_times, k))
        np.add.at(s1_bin, bins, risk[:, None] * x)
        s2_bin = np.zeros((n_times, k, k))
        d_s2 = np.zeros((n_times, k, k))
        for b, (lo, hi) in enumerate(zip(start, ends, strict=True)):
            xb, rb = x[lo:hi], risk[lo:hi]
            s2_bin[b] = (xb * rb[:, None]).T @ xb
            if ties == "efron" and has_events[b]:
                eb = event[lo:hi]
                d_s2[b] = (xb[eb] * rb[eb, None]).T @ xb[eb]
        r = np.cumsum(r_bin[::-1])[::-1]
        s1 = np.cumsum(s1_bin[::-1], axis=0)[::-1]
        s2 = np.cumsum(s2_bin[::-1], axis=0)[::-1]
        loglik = float(event_x @ beta) - shift * float(d.sum())
        grad = event_x.copy()
        hess = np.zeros((k, k))
        if ties == "efron":
            e_risk = risk * event
            d_r = np.bincount(bins, weights=e_risk, minlength=n_times)
            d_s1 = np.zeros((n_times, k))
            np.add.at(d_s1, bins, e_risk[:, None] * x)
            denom = r[pair_time] - pair_frac * d_r[pair_time]
            loglik -= float(np.log(denom).sum())
            inv = 1.0 / denom
            a0 = np.bincount(pair_time, weights=inv, minlength=n_times)
            a1 = np.bincount(pair_time, weights=pair_frac * inv, minlength=n_times)
            c0 = np.bincount(pair_time, weights=inv**2, minlength=n_times)
            c1 = np.bincount(pair_time, weights=pair_frac * inv**2, minlength=n_times)
            c2 = np.bincount(pair_time, weights=pair_frac**2 * inv**2, minlength=n_times)
            grad -= a0 @ s1 - a1 @ d_s1
            hess -= np.einsum("t,tij->ij", a0, s2) - np.einsum("t,tij->ij", a1, d_s2)
            hess += (
                np.einsum("t,ti,tj->ij", c0, s1, s1)
                - np.einsum("t,ti,tj->ij", c1, s1, d_s1)
                - np.einsum("t,ti,tj->ij", c1, d_s1, s1)
                + np.einsum("t,ti,tj->ij", c2, d_s1, d_s1)
            )
        else:  # Breslow
            idx = np.flatnonzero(has_events)
            dd, rr = d[idx], r[idx]
            loglik -= float((dd * np.log(rr)).sum())
            grad -= (dd / rr) @ s1[idx]
            hess -= np.einsum("t,tij->ij", dd / rr, s2[idx])
            hess += np.einsum("t,ti,tj->ij", dd / rr**2, s1[idx], s1[idx])
        return loglik, grad, hess

    beta = np.zeros(k)
    loglik, grad, hess = parts(beta)
    for _ in range(max_iter):
        try:
            step = np.linalg.solve(-hess, grad)
        except np.linalg.LinAlgError as exc:
            raise _CannotFit(f"Not fitted: the model could not be estimated ({exc}).") from exc
        scale = 1.0
        while True:
            candidate = beta + scale * step
            new = parts(candidate)
            if np.isfinite(new[0]) and new[0] >= loglik - 1e-12 or scale < 1e-6:
                break
            scale /= 2
        converged = np.max(np.abs(candidate - beta)) < tol or abs(new[0] - loglik) < tol * (
            1 + abs(loglik)
        )
        beta, (loglik, grad, hess) = candidate, new
        if converged:
            break
    else:
        raise _CannotFit(
            "Not fitted: the model did not converge (usually separation: a combination of "
            "covariates in which nobody, or everybody, has the event). Use fewer covariates or "
            "pool levels."
        )
    try:
        cov = np.linalg.inv(-hess)
    except np.linalg.LinAlgError as exc:
        raise _CannotFit(f"Not fitted: the model could not be estimated ({exc}).") from exc
    se = np.sqrt(np.clip(np.diag(cov), 0, None))
    with np.errstate(divide="ignore", invalid="ignore"):
        p_values = 2 * sps.norm.sf(np.abs(beta / se))
    if not np.isfinite(beta).all():
        raise _CannotFit("Not fitted: the estimates are not finite (separation).")
    return beta, se, p_values, loglik


def _fit_phreg(data, design, *, ties, cluster, strata):
    """Fit statsmodels PHReg; returns ``(coef, se, p_values, log_likelihood)`` or raises
    :class:`_CannotFit` when the fit failed or did not converge.

    Without clusters or strata the same model is fitted by :func:`cox_newton`, which gives
    statsmodels' numbers at a fraction of the cost on large data.
    """
    if not cluster and not strata:
        return cox_newton(
            data["_time"].to_numpy(), data["_status"].to_numpy(dtype=float), design, ties=ties
        )
    from statsmodels.duration.hazard_regression import PHReg
    from statsmodels.tools.sm_exceptions import ConvergenceWarning

    model_kwargs = {"ties": ties}
    if strata:
        model_kwargs["strata"] = pd.factorize(data[strata].astype("string").fillna(MISSING))[0]
    fit_kwargs = {}
    if cluster:
        ids = data[cluster].astype("string")
        # A row without a cluster id is its own cluster.
        own = pd.Series([f"(row {i})" for i in range(len(data))], dtype="string")
        fit_kwargs["groups"] = pd.factorize(ids.fillna(own))[0]
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        try:
            model = PHReg(
                data["_time"].to_numpy(),
                design,
                data["_status"].to_numpy(dtype=float),
                **model_kwargs,
            )
            fit = model.fit(**fit_kwargs)
            coef = np.asarray(fit.params, dtype=float)
            se = np.asarray(fit.bse, dtype=float)
            p_values = np.asarray(fit.pvalues, dtype=float)
            log_likelihood = float(fit.llf)
        except (np.linalg.LinAlgError, ValueError, IndexError, ZeroDivisionError) as exc:
            raise _CannotFit(f"Not fitted: the model could not be estimated ({exc}).") from exc
    if any(issubclass(w.category, ConvergenceWarning) for w in caught) or not (
        np.isfinite(coef).all()
    ):
        raise _CannotFit(
            "Not fitted: the model did not converge (usually separation: a combination of "
            "covariates in which nobody, or everybody, has the event). Use fewer covariates or "
            "pool levels."
        )
    return coef, se, p_values, log_likelihood


def cox_ph(
    frame: pd.DataFrame,
    duration: str,
    event: str,
    covariates: Sequence[str],
    *,
    categorical: Sequence[str] | None = None,
    reference: Mapping[str, str] | None = None,
    scale: str = "sd",
    alpha: float = 0.05,
    cluster: str | None = None,
    strata: str | None = None,
    ties: str = "efron",
    min_events: int = 10,
    min_events_per_parameter: float = 5,
    event_name: str = "churn",
) -> CoxResult:
    """Cox proportional-hazards model (statsmodels ``PHReg``): hazard ratios with intervals.

    Parameters
    ----------
    frame : DataFrame
        One row per subject (account, deal).
    duration, event : str
        Columns with the duration (>= 0) and the event flag (1 = event, 0 = censored).
    covariates : list of str
        Columns to put in the model. Non-numeric and boolean columns, and those listed in
        ``categorical``, are one-hot coded against a reference level; missing values of a
        categorical form the ``(missing)`` level. Rows with a missing numeric covariate are left
        out (bin the column with :func:`icp_research.methods.binning.bin_numeric` to keep them).
    categorical : list of str, optional
        Numeric-looking columns to treat as categorical (codes, years).
    reference : dict of {covariate: level}, optional
        Reference levels; by default the level with the most rows (among levels with events),
        so that each ratio compares a level with the bulk of the data.
    scale : {'sd', 'unit'}
        Numeric covariates: hazard ratio per standard deviation (comparable across covariates;
        the ``per`` column gives the SD in the column's units) or per one unit. Skewed
        quantities (employees, revenue) read better binned or log-transformed first.
    alpha : float
        1 - confidence level; also the significance level applied to BH-adjusted q-values.
    cluster : str, optional
        Column of cluster ids (account_id for deals): robust (sandwich) standard errors. With
        tied times statsmodels' sandwich uses Breslow score residuals, so it can differ from
        lifelines' by a few percent.
    strata : str, optional
        Column whose levels get their own baseline hazard.
    ties : {'efron', 'breslow'}
        Handling of tied event times (Efron is the default of R and lifelines).
    min_events, min_events_per_parameter : int, float
        Below these the model is not fitted (too few events for stable ratios).
    event_name : str
        Word for the event in findings ("churn").

    Returns
    -------
    CoxResult
        ``summary`` one row per term (see :class:`CoxResult`); when the model cannot be fitted
        honestly (too few events, no events, non-convergence, separation) ``fitted`` is False,
        ``summary`` is empty and ``caveats`` say why -- no number is invented. Levels in which
        no event happened would have a hazard ratio of zero; their rows are left out of the
        model and listed in ``summary`` with a note, and the model is fitted on the rest.
        Collinear terms are listed with a note and not estimated.
    """
    if scale not in ("sd", "unit"):
        raise InputError(f"scale must be 'sd' or 'unit', not {scale!r}.")
    if ties not in ("efron", "breslow"):
        raise InputError(f"ties must be 'efron' or 'breslow', not {ties!r}.")
    covariates = list(dict.fromkeys(covariates))
    extra = [c for c in (cluster, strata) if c]
    absent = [c for c in [duration, event, *covariates, *extra] if c not in frame.columns]
    if absent:
        raise InputError(
            f"cox_ph: no column {', '.join(map(repr, absent))} in the data; "
            f"available: {', '.join(map(str, frame.columns[:20]))}."
        )
    title = f"Cox model of time to {event_name}"
    caveats: list[str] = []
    data, kinds = _cox_rows(
        frame, duration, event, covariates, set(categorical or ()), extra, caveats
    )
    data, active, not_estimated = _drop_uninformative(data, covariates, kinds, event_name, caveats)
    n, n_events = len(data), int(data["_status"].sum())
    params = {
        "covariates": covariates,
        "scale": scale,
        "alpha": alpha,
        "ties": ties,
        "cluster": cluster,
        "strata": strata,
    }

    def not_fitted(reason: str) -> CoxResult:
        return CoxResult(
            title=title,
            caveats=caveats + [reason],
            params=params,
            fitted=False,
            n=n,
            events=n_events,
        )

    if n_events == 0:
        return not_fitted(f"Not fitted: no {event_name} events among {fmt_number(n)} rows.")
    if not active:
        return not_fitted("Not fitted: no covariate varies.")
    design, terms, references = _cox_design(data, active, kinds, dict(reference or {}), scale)
    params.update(
        reference=references, categorical=sorted(c for c in active if kinds[c] == "categorical")
    )
    estimated = [t for t in terms if not t.get("_reference")]
    redundant = _redundant_columns(design)
    if redundant:
        caveats.append(
            f"{'; '.join(_term_name(estimated[j]) for j in redundant)}: fully "
            "determined by the other covariates (collinear); not estimated."
        )
        for j in redundant:
            estimated[j]["_note"] = "collinear: not estimated"
        design = np.delete(design, redundant, axis=1)
    fitted_terms = [t for t in estimated if "_note" not in t]
    n_parameters = design.shape[1]

    if n_events < min_events:
        return not_fitted(
            f"Not fitted: {n_events} {event_name} events; at least {min_events} "
            "are needed for hazard ratios worth reading."
        )
    if n_events < min_events_per_parameter * n_parameters:
        return not_fitted(
            f"Not fitted: {n_events} {event_name} events for {n_parameters} parameters "
            f"(fewer than {min_events_per_parameter:g} per parameter). Use fewer covariates or "
            "pool rare levels (binning.pool_rare_levels)."
        )
    try:
        coef, se, p_values, log_likelihood = _fit_phreg(
            data, design, ties=ties, cluster=cluster, strata=strata
        )
    except _CannotFit as reason:
        return not_fitted(str(reason))

    # Huge or undefined standard errors are the numerical face of (quasi-)separation.
    unstable = ~np.isfinite(se) | (se > 10) | (np.abs(coef) > 15)
    if unstable.all():
        return not_fitted(
            "Not fitted: the estimates are unstable (separation: the covariates order the "
            f"{event_name} events almost perfectly, so the hazard ratio runs off to infinity). "
            "Compare the groups with Kaplan-Meier curves instead."
        )
    if unstable.any():
        names = [_term_name(t) for t, u in zip(fitted_terms, unstable, strict=True) if u]
        caveats.append(
            f"{'; '.join(names)}: estimates unstable (a level with almost no "
            "events, or separation); not shown. The other ratios are adjusted for it "
            "but read them with care."
        )
    z = sps.norm.ppf(1 - alpha / 2)
    for j, term in enumerate(fitted_terms):
        if unstable[j]:
            term["_note"] = "unstable (separation?): not estimated"
        else:
            term.update(
                hazard_ratio=math.exp(coef[j]),
                ci_low=math.exp(coef[j] - z * se[j]),
                ci_high=math.exp(coef[j] + z * se[j]),
                p_value=p_values[j],
            )

    summary = _cox_summary(terms, not_estimated, references, alpha)
    caveats.append(
        "Hazard ratios assume proportional hazards (a constant ratio over time); "
        "check that the Kaplan-Meier curves do not cross."
    )
    if cluster:
        caveats.append(f"Standard errors are robust, clustered by {cluster}.")
    findings = _cox_findings(summary, n, n_events, n_parameters, event_name, alpha, scale)
    return CoxResult(
        title=title,
        summary=summary,
        findings=findings,
        caveats=caveats,
        params=params,
        fitted=True,
        n=n,
        events=n_events,
        n_parameters=n_parameters,
        log_likelihood=log_likelihood,
    )


_COX_COLUMNS = [
    "covariate",
    "level",
    "reference",
    "per",
    "n",
    "events",
    "hazard_ratio",
    "ci_low",
    "ci_high",
    "p_value",
    "q_value",
    "significant",
    "note",
]


def _cox_summary(terms, not_estimated, references, alpha) -> pd.DataFrame:
    rows = []
    for term in terms:
        row = {k: v for k, v in term.items() if not k.startswith("_")}
        if term.get("_reference"):
            row.update(hazard_ratio=1.0, note="reference")
        else:
            row["note"] = term.get("_note", "")
        rows.append(row)
    rows += [
        {
            **item,
            "reference": references.get(item["covariate"], ""),
            "per": np.nan,
            "note": "no events: not estimated",
        }
        for item in not_estimated
    ]
    summary = pd.DataFrame(rows).reindex(columns=_COX_COLUMNS)
    summary["q_value"] = adjust_pvalues(summary["p_value"])
    summary["significant"] = summary["q_value"] < alpha
    return summary


def _term_name(term: Mapping) -> str:
    return f"{term['covariate']} = {term['level']}" if term["level"] != "" else term["covariate"]


def _cox_findings(summary, n, n_events, n_parameters, event_name, alpha, scale) -> list[str]:
    lines = [
        f"Cox model on {fmt_number(n)} rows with {fmt_number(n_events)} {event_name} events "
        f"({n_parameters} parameters)."
    ]
    significant = summary[summary["significant"]].sort_values("q_value")
    tested = int(summary["p_value"].notna().sum())
    if tested == 0:
        return lines
    if significant.empty:
        lines.append(
            f"No covariate is associated with the {event_name} hazard after "
            f"Benjamini-Hochberg correction over {tested} terms."
        )
        return lines
    for _, row in significant.iterrows():
        ratio = f"{row['hazard_ratio']:.2f}x"
        interval = (
            f"{100 * (1 - alpha):.0f}% CI {row['ci_low']:.2f}–{row['ci_high']:.2f}, "
            f"q {_p_words(row['q_value'])}"
        )
        if row["level"] != "":
            lines.append(
                f"{row['covariate']} = {row['level']}: {event_name} hazard {ratio} that "
                f"of {row['reference']} ({interval}, n={fmt_number(row['n'])})."
            )
        else:
            step = (
                f"one standard deviation ({_fmt_time(row['per'])})" if scale == "sd" else "one unit"
            )
            lines.append(
                f"{row['covariate']}, per {step} more: {event_name} hazard {ratio} ({interval})."
            )
    return lines


# ---------------------------------------------------------------------------------------------
# Plot


def plot_survival(
    result: SurvivalResult,
    *,
    ax=None,
    ci: bool = True,
    groups: Sequence[str] | None = None,
    at_risk: bool = False,
    palette=None,
    legend: bool = True,
):
    """Step curves per group with interval bands, drawn from the compact curve table.

    Parameters
    ----------
    result : SurvivalResult
        From :func:`kaplan_meier` or :func:`time_to_close`.
    ax : matplotlib Axes, optional
        Axes to draw on; a new figure is created when None.
    ci : bool
        Shade the pointwise confidence band.
    groups : list of str, optional
        Subset and order of groups to draw (default: all groups with rows).
    at_risk : bool
        Write the numbers at risk under the x axis at round times.
    palette : seaborn palette name or list of colours, optional
    legend : bool
        Legend with each group's n.

    Returns
    -------
    matplotlib Axes
    """
    import matplotlib.pyplot as plt
    import seaborn as sns
    from matplotlib.ticker import PercentFormatter

    if ax is None:
        _, ax = plt.subplots(figsize=(7, 4.5))
    summary = result.summary
    if summary.empty:
        summary = pd.DataFrame(columns=["group", "n", "max_time"])
    summary = summary[summary["n"] > 0]
    if groups is not None:
        summary = summary.set_index("group").loc[list(groups)].reset_index()
    colors = sns.color_palette(palette, n_colors=max(len(summary), 1))
    curve = result.tables.get("curve", pd.DataFrame(columns=["group", "time", "survival"]))
    for color, (_, info) in zip(colors, summary.iterrows(), strict=False):
        steps = curve[curve["group"] == info["group"]]
        end = max(info["max_time"], steps["time"].max() if len(steps) else 0.0)
        times = np.concatenate(([0.0], steps["time"].to_numpy(dtype=float), [end]))
        survival = np.concatenate(([1.0], steps["survival"].to_numpy(dtype=float)))
        survival = np.append(survival, survival[-1])
        name = f"{info['group']} (n={fmt_number(info['n'])})"
        ax.step(times, survival, where="post", color=color, lw=2, label=name)
        if ci and len(steps):
            low = np.concatenate(([1.0], steps["ci_low"].to_numpy(dtype=float)))
            high = np.concatenate(([1.0], steps["ci_high"].to_numpy(dtype=float)))
            ax.fill_between(
                times,
                np.append(low, low[-1]),
                np.append(high, high[-1]),
                step="post",
                color=color,
                alpha=0.18,
                lw=0,
            )
    unit = result.params.get("time_unit", "")
    ax.set_xlabel(f"Time ({unit})" if unit else "Time")
    ax.set_ylabel(str(result.params.get("survival_name", "survival")).capitalize())
    ax.set_ylim(0, 1.02)
    ax.set_xlim(left=0)
    ax.yaxis.set_major_formatter(PercentFormatter(1.0))
    if legend and len(summary):
        ax.legend(frameon=False, loc="lower left", fontsize="small")
    if at_risk and len(summary):
        # Below the tick labels and the axis label: a header line, then one row per group.
        risk = result.tables["at_risk"]
        ax.set_xticks(np.sort(risk["time"].unique()))
        ax.annotate(
            "Number at risk",
            xy=(0, 0),
            xycoords="axes fraction",
            xytext=(0, -44),
            textcoords="offset points",
            ha="left",
            va="top",
            fontsize="x-small",
        )
        for row, (color, (_, info)) in enumerate(zip(colors, summary.iterrows(), strict=False)):
            counts = risk[risk["group"] == info["group"]]
            for t, count in zip(counts["time"], counts["at_risk"], strict=True):
                ax.annotate(
                    fmt_number(count),
                    xy=(t, 0),
                    xycoords=("data", "axes fraction"),
                    xytext=(0, -56 - 10 * row),
                    textcoords="offset points",
                    ha="center",
                    va="top",
                    fontsize="x-small",
                    color=color,
                )
    return ax
