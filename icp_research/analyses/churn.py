"""Churn analysis: who leaves, how fast, why, and what that says about the ICP's boundaries.

Churn is right-censored survival, never a ratio of churned to all customers: a customer who
joined last month has not had the time to churn. Every customer contributes a tenure (from
becoming a customer to churning, or to the as-of date) and an event flag. From those:

- logo churn per attribute level: churns per customer-year with exact Poisson intervals, the
  rate ratio against the other customers (exact conditional test), Kaplan-Meier retention at 6,
  12 and 24 months, and a log-rank test of the level against the rest, Benjamini-Hochberg
  corrected over the whole family of levels;
- revenue churn: the share of the ARR paying twelve months ago that left with customers who
  churned since (gross revenue churn), with a ratio-estimator interval, and ARR lost;
- Kaplan-Meier curves and a log-rank test across levels for each attribute, corrected over
  attributes; a Cox proportional-hazards model on a pre-specified set of attributes (chosen
  without looking at churn, never from the log-rank results; BH-corrected over its terms);
- churn reasons overall and per level, with the ARR lost and the reasons that are
  over-represented in a segment (exact or chi-square tests, corrected);
- early churn (within ``analysis.early_churn_months``), the onboarding drop-off signal;
- trial conversion, when the data has trials;
- anti-patterns: levels that churn significantly faster, as candidate exclude rules
  (:mod:`icp_research.analyses.antipatterns`).

Times are in months (365.25 / 12 days); rates per customer-year are fractions (0.25 = 25 churns
per 100 customer-years); money in the export's currency.
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
import pandas as pd

from icp_research.analyses import antipatterns as ap
from icp_research.analyses import registry
from icp_research.data import churn_source
from icp_research.data.facts import DAYS_PER_YEAR, retention_days
from icp_research.data.study import Study
from icp_research.formatting import (
    error_bars,
    fmt_count,
    fmt_money,
    fmt_number,
    fmt_pct,
    fmt_rate_ci,
    fmt_ratio,
    slug,
)
from icp_research.methods.binning import MISSING
from icp_research.methods.stats import (
    adjust_pvalues,
    clustered_rate_ci,
    poisson_rate_ci,
    poisson_rate_ratio,
    proportion_ci,
    two_proportion_pvalue,
)
from icp_research.methods.survival import SurvivalResult, cox_ph, kaplan_meier, logrank_test
from icp_research.result import Result, View

DAYS_PER_MONTH = DAYS_PER_YEAR / 12
NO_REASON = "(no reason recorded)"
TRIAL = re.compile(r"trial", re.IGNORECASE)

BY_ATTRIBUTE_COLUMNS = [
    "attribute",
    "level",
    "rule",
    "customers",
    "churned",
    "customer_years",
    "churn_rate",
    "churn_rate_ci_low",
    "churn_rate_ci_high",
    "churn_rate_rest",
    "rate_ratio",
    "rate_ratio_ci_low",
    "rate_ratio_ci_high",
]


# Columns of the Cox model table (see icp_research.methods.survival.CoxResult), also when not fitted.
COX_COLUMNS = [
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


@dataclass(repr=False)
class ChurnResult(Result):
    """What :func:`churn_analysis` found.

    ``summary`` is the churn-by-attribute table (see :func:`churn_analysis`); ``tables`` holds
    ``churn_by_attribute``, ``logrank``, ``retention_curves``, ``churn_reasons``,
    ``early_churn_reasons``, ``cox``, ``trial_conversion`` and ``anti_patterns``.
    """

    overall: dict = field(default_factory=dict)
    curves: dict = field(default_factory=dict)
    overall_curve: SurvivalResult | None = None
    cox: Result | None = None
    trials: Result | None = None
    anti_patterns: pd.DataFrame = field(default_factory=ap.empty)
    attributes_that_matter: list = field(default_factory=list)
    not_computed: dict = field(default_factory=dict)

    def views(self) -> dict:
        """The tables of the churn report by name, each with its reason when empty (see
        :func:`report_views`)."""
        return report_views(self)


def churn_analysis(
    study: Study,
    *,
    attributes: list[str] | None = None,
    n_bins: int = 5,
    horizons_months: tuple = (6, 12, 24),
    max_curves: int = 4,
    min_customers: int = 10,
    anti_patterns_only: bool = False,
) -> ChurnResult:
    """Logo and revenue churn by attribute, retention curves, Cox model, reasons, anti-patterns.

    Parameters
    ----------
    study : Study
        Needs customers (a subscriptions or a churn_events table); without any, the result says
        so in ``caveats`` and ``not_computed``.
    attributes : list of str, optional
        Account attributes to compare (default: the study's pre-sale candidates, plus the
        configured size segments).
    n_bins : int
        Quantile bins per numeric attribute (nice cut points, shared with the lost-deal report).
    horizons_months : tuple of int
        Retention is reported at these tenures (months).
    max_curves : int
        Retention curves are kept for at most this many attributes (those whose curves differ
        most).
    min_customers : int
        A level needs at least this many customers to be tested against the rest (a log-rank
        test on three customers says nothing).
    anti_patterns_only : bool
        Only what the anti-patterns need (the blueprint's use): the result then holds
        ``anti_patterns`` and the tables they come from, without the Cox model, trials,
        findings and caveats.

    Returns
    -------
    ChurnResult
        ``summary`` / ``tables['churn_by_attribute']``: one row per attribute level with
        ``customers``, ``churned``, ``customer_years``, ``churn_rate`` (churns per
        customer-year) and its exact interval, ``churn_rate_rest``, ``rate_ratio`` with an exact
        interval, ``retention_<m>m`` (Kaplan-Meier, fraction) with intervals, ``early_churn``
        (1 - retention at the early-churn window), ``arr_current`` (active customers),
        ``arr_lost`` (ARR of churned customers when they left), ``revenue_churn_12m`` with its
        interval, ``p_value`` (log-rank, level vs rest), ``q_value`` (BH over all levels),
        ``significant``, ``direction`` (``faster`` / ``slower``) and ``note``.
    """
    alpha = study.alpha
    method = study.analysis.get("correction", "fdr_bh")
    early_months = float(study.analysis["early_churn_months"])
    facts = study.facts
    title = "Churn analysis"
    caveats: list[str] = []
    not_computed: dict = {}
    has_subscriptions = study.revenue_basis == "subscriptions"
    source = facts.attrs.get("churn_source", "subscriptions")
    said = churn_source.describe(source)
    is_customer = facts["is_customer"].astype(bool)
    churned_any = facts["churned"].fillna(False).astype(bool) & is_customer
    undated = churned_any & facts["tenure_days"].isna()
    known = is_customer & facts["churned"].notna()
    share = {
        "churned_all": int(churned_any.sum()),
        "customers_known": int(known.sum()),
        "churned_share": float(churned_any.sum() / known.sum()) if known.any() else np.nan,
        "undated": int(undated.sum()),
    }
    notes = facts.attrs.get("churn_notes", [])
    if notes:
        # The records disagree: say which one counts, why, and the setting that changes it.
        caveats.append(churn_source.sentence(f"{said} ({facts.attrs['churn_source_reason']})"))
        caveats += [churn_source.sentence(n) for n in notes]

    customers = facts[is_customer & facts["tenure_days"].notna() & facts["churned"].notna()].copy()
    if customers.empty:
        reason = "there are no customers with a known start date and churn status."
        return ChurnResult(
            title=title,
            caveats=[f"Churn could not be analysed: {reason}"],
            tables=_empty_tables(),
            not_computed={"churn": reason},
        )
    trial_only = _trial_only_accounts(study)
    if trial_only and customers["account_id"].isin(trial_only).any():
        # Trials with a price (free ones are not customers in the first place).
        dropped = customers["account_id"].isin(trial_only)
        customers = customers[~dropped]
        caveats.append(
            f"{fmt_number(int(dropped.sum()))} accounts only ever had trial subscriptions: they "
            "are trials that did not convert (see Trials), not customers who churned, and are "
            "left out of churn."
        )
        if customers.empty:
            reason = "every account with a subscription only had a trial."
            return ChurnResult(
                title=title,
                caveats=caveats + [f"Churn could not be analysed: {reason}"],
                tables=_empty_tables(),
                trials=trial_conversion(study),
                not_computed={"churn": reason},
            )
    customers["months"] = customers["tenure_days"] / DAYS_PER_MONTH
    customers["event"] = customers["churned"].astype(bool).astype(int)
    if has_subscriptions:
        by_source = source != "subscriptions"
        customers["arr_lost"] = arr_at_churn(study, customers, by_churn_date=by_source)
        if by_source:
            # Their subscriptions may still run: gone is what the churn source says.
            since = study.as_of - pd.Timedelta(days=365)
            customers["gone_12m"] = customers["event"].astype(bool) & (
                customers["churned_at"] > since
            )
    else:
        customers["arr_lost"] = np.nan
        reason = (
            "there is no subscriptions table, so there is no ARR to lose (revenue churn, ARR "
            "lost and ARR at risk are left empty)."
        )
        not_computed["revenue churn"] = reason
        caveats.append(f"Revenue churn not computed: {reason}")

    spec = study.attributes
    if attributes is not None:
        names = attributes
    else:
        # The candidate traits, and how customers pay (a contract term known for customers
        # only: a churn driver worth naming, never an ICP trait).
        names = spec.all + [c for c in ("billing_period",) if c in spec.contract and c in facts]
    levels = ap.segment_levels(
        facts,
        categorical=[a for a in names if a in spec.categorical or a not in spec.numeric],
        numeric=[a for a in names if a in spec.numeric],
        n_bins=n_bins,
        min_level_count=int(study.analysis["min_level_count"]),
        segments=study.config.segments,
    )
    labels = levels.labels.loc[customers.index]

    # Whole years are read at the day after, as 12-month retention is everywhere
    # (retention_days): a 12-month contract ending on day 366 is a first-year churn, which
    # the curve read at 365.25 days had left out (91% retained here, 87% in the other reports).
    horizons = {
        f"{m} months": retention_days(m) / DAYS_PER_MONTH if m % 12 == 0 else float(m)
        for m in sorted({*horizons_months})
    }
    early_key = f"{early_months:g} months"
    horizons.setdefault(early_key, early_months)
    n_events = int(customers["event"].sum())

    overall_curve = kaplan_meier(
        customers["months"],
        customers["event"],
        time_unit="months",
        horizons=horizons,
        label="Retention of all customers",
    )
    overall = _overall(customers, overall_curve, horizons, early_key, alpha, has_subscriptions)
    overall.update(share, churn_source=source)
    findings = [_overall_sentence(overall, study)]
    if share["undated"]:
        findings.append(
            f"Counting the {fmt_number(share['undated'])} churned customers that have no churn "
            f"date, {fmt_number(share['churned_all'])} of {fmt_number(share['customers_known'])} "
            f"customers ({fmt_pct(share['churned_share'])}) have churned, {churn_source.short(source)}"
            "; the rates, retention curves and the Cox model leave the undated ones out."
        )
    if n_events == 0:
        reason = (
            f"no customer has churned among {fmt_number(len(customers))} customers up to "
            f"{study.as_of:%Y-%m-%d} ({said})."
        )
        for what in ("churn differences between segments", "the Cox model", "churn reasons"):
            not_computed[what] = reason
        caveats.append(
            f"No churn yet: {reason} Retention is 100% so far; nothing can be said about who "
            "churns faster."
        )

    by_attribute, logrank_table, curves = _by_attribute(
        customers, labels, levels, horizons, early_key, alpha, method, min_customers
    )
    significant_attributes = logrank_table.loc[logrank_table["significant"], "attribute"].tolist()
    ranked = logrank_table[logrank_table["significant"]].sort_values("statistic", ascending=False)
    kept = ranked["attribute"].head(max_curves).tolist()
    curves = {name: curves[name] for name in kept}
    retention_curves = _curves_table(overall_curve, curves)

    reasons, early_reasons = _reasons(customers, labels, levels, alpha, method, early_months)
    anti = _anti_patterns(
        customers, labels, levels, by_attribute, reasons, facts, alpha, has_subscriptions
    )
    # Rules and levels in words for the report ("with no CRM"); "rule" keeps the code form.
    anti = ap.in_words(anti, ap.labels_of(study), alpha)
    if len(anti) and spec.contract:
        # Monthly payers churning faster is a pricing lever (offer annual plans), not a kind of
        # company to turn away: a lead has no contract yet.
        contract = anti["attribute"].isin(list(spec.contract)) & (anti["status"] == "candidate")
        anti.loc[contract, "status"] = "contract term"
    if anti_patterns_only:
        # The Cox model and the trials are seconds of work that no anti-pattern reads.
        return ChurnResult(
            title=title,
            summary=by_attribute,
            tables={
                "churn_by_attribute": by_attribute,
                "logrank": logrank_table,
                "churn_reasons": reasons,
                "anti_patterns": anti,
            },
            anti_patterns=anti,
            attributes_that_matter=significant_attributes,
            not_computed=not_computed,
        )

    cox = _cox_model(customers, labels, levels, alpha, n_events)
    trials = trial_conversion(study, levels=levels)
    if len(by_attribute):
        by_attribute = ap.level_words(by_attribute, levels, ap.labels_of(study))
    findings += _findings(
        by_attribute, logrank_table, cox, reasons, early_reasons, overall, anti, alpha
    )
    if trials.findings:
        findings.append(trials.findings[0])
    caveats += _caveats(customers, by_attribute, logrank_table, n_events)
    caveats += trials.caveats[:1]
    tables = {
        "churn_by_attribute": by_attribute,
        "logrank": logrank_table,
        "retention_curves": retention_curves,
        "churn_reasons": reasons,
        "early_churn_reasons": early_reasons,
        "cox": cox.summary.reindex(columns=COX_COLUMNS),
        "trial_conversion": trials.summary,
        "anti_patterns": anti,
    }
    return ChurnResult(
        title=title,
        summary=by_attribute,
        findings=findings,
        caveats=caveats,
        tables=tables,
        params={
            "as_of": f"{study.as_of:%Y-%m-%d}",
            "n_bins": n_bins,
            "min_customers": min_customers,
            "horizons_months": list(horizons_months),
            "early_churn_months": early_months,
            "alpha": alpha,
            "correction": method,
            "churn_source": source,
        },
        overall=overall,
        curves=curves,
        overall_curve=overall_curve,
        cox=cox,
        trials=trials,
        anti_patterns=anti,
        attributes_that_matter=significant_attributes,
        not_computed=not_computed,
    )


# ---------------------------------------------------------------------------------------------
# Revenue


def arr_at_churn(study: Study, customers: pd.DataFrame, by_churn_date: bool = False) -> pd.Series:
    """ARR each churned customer was paying just before it left (0 for active customers).

    Taken from the subscriptions active the day before the account's last subscription ended
    (``by_churn_date``: the day before ``churned_at``, for churn not taken from subscriptions,
    whose subscriptions may still run); when that cannot be placed, the account's peak ARR.
    """
    subs = study.tables["subscriptions"]
    churned = customers.loc[customers["churned"].astype(bool), "account_id"]
    lost = pd.Series(0.0, index=customers.index)
    if churned.empty:
        return lost
    subs = subs[subs["account_id"].isin(churned.unique())]
    if "end_date" not in subs:
        if not by_churn_date:
            return lost.where(~customers["churned"].astype(bool), customers["arr_peak"])
        subs = subs.assign(end_date=pd.NaT)
    if by_churn_date:
        last_end = customers.loc[churned.index].set_index("account_id")["churned_at"]
    else:
        last_end = subs.groupby("account_id")["end_date"].max()
    joined = subs.join(last_end.rename("_last_end"), on="account_id")
    before = joined["_last_end"] - pd.Timedelta(days=1)
    active = (joined["start_date"] <= before) & (
        joined["end_date"].isna() | (joined["end_date"] > before)
    )
    arr = joined.loc[active].groupby("account_id")["arr"].sum()
    by_account = churned.map(arr)
    fallback = customers.loc[churned.index, "arr_peak"]
    lost.loc[churned.index] = by_account.fillna(fallback).fillna(0.0).to_numpy()
    return lost


def _revenue_churn(frame: pd.DataFrame, alpha: float):
    """Gross revenue churn over the last 12 months: ARR of a year ago lost with churned customers.

    Churned customers are those whose subscriptions ended, or (column ``gone_12m``, for churn
    not taken from subscriptions) those the churn source says churned in the last 12 months.
    """
    cohort = frame[frame["arr_12m_ago"] > 0]
    if cohort.empty:
        return np.nan, np.nan, np.nan, 0
    gone = cohort["gone_12m"] if "gone_12m" in cohort else cohort["arr_current"] <= 0
    lost = cohort["arr_12m_ago"].where(gone, 0.0)
    rate, low, high, k = clustered_rate_ci(lost, cohort["arr_12m_ago"], alpha)
    return rate, low, high, k


# ---------------------------------------------------------------------------------------------
# Overall


def _overall(customers, curve, horizons, early_key, alpha, has_subscriptions) -> dict:
    events = int(customers["event"].sum())
    years = float(customers["tenure_days"].sum()) / DAYS_PER_YEAR
    rate, low, high = poisson_rate_ci(events, years, alpha)
    row = curve.summary.iloc[0]
    out = {
        "customers": int(len(customers)),
        "churned": events,
        "customer_years": years,
        "churn_rate": rate,
        "churn_rate_ci_low": low,
        "churn_rate_ci_high": high,
        "median_months": float(row["median"]),
        "max_months": float(row["max_time"]),
    }
    for key in horizons:
        key_slug = slug(key)
        out[f"retention_{_short(key)}"] = float(row[f"survival_{key_slug}"])
        out[f"retention_{_short(key)}_ci_low"] = float(row[f"survival_{key_slug}_ci_low"])
        out[f"retention_{_short(key)}_ci_high"] = float(row[f"survival_{key_slug}_ci_high"])
    early = _short(early_key)
    out["early_churn_months"] = horizons[early_key]
    out["early_churn"] = 1 - out[f"retention_{early}"]
    out["early_churn_ci_low"] = 1 - out[f"retention_{early}_ci_high"]
    out["early_churn_ci_high"] = 1 - out[f"retention_{early}_ci_low"]
    out["early_churns"] = int(
        (customers["event"].astype(bool) & (customers["months"] <= horizons[early_key])).sum()
    )
    if out["early_churns"] == 0 and not np.isfinite(out["early_churn_ci_high"]):
        # No churn in the window: Greenwood's variance is 0 and its interval empty ("0% (–––"),
        # but 0 of n customers followed through the window bounds the rate (Wilson).
        followed = int((customers["months"] >= horizons[early_key]).sum())
        if followed:
            _, high = proportion_ci(0, followed, alpha)
            out["early_churn_ci_low"], out["early_churn_ci_high"] = 0.0, float(high)
    if has_subscriptions:
        rate, low, high, k = _revenue_churn(customers, alpha)
        out.update(
            revenue_churn_12m=rate,
            revenue_churn_12m_ci_low=low,
            revenue_churn_12m_ci_high=high,
            revenue_cohort=k,
            arr_lost=float(customers["arr_lost"].sum()),
            arr_current=float(customers["arr_current"].where(customers["event"] == 0, 0.0).sum()),
        )
    return out


def _overall_sentence(overall: dict, study: Study) -> str:
    text = (
        f"{fmt_number(overall['customers'])} customers, {fmt_number(overall['churned'])} churned "
        f"over {fmt_number(overall['customer_years'])} customer-years: "
        f"{fmt_pct(overall['churn_rate'], 1)} churn a year "
        f"({fmt_pct(overall['churn_rate_ci_low'], 1)}–{fmt_pct(overall['churn_rate_ci_high'], 1)}"
        f"; {churn_source.describe(overall.get('churn_source', 'subscriptions'))})"
    )
    r12 = overall.get("retention_12m", np.nan)
    if not np.isnan(r12):
        interval = _rate_text(
            r12, overall["retention_12m_ci_low"], overall["retention_12m_ci_high"]
        )
        text += f"; {interval} are still customers after 12 months (Kaplan-Meier)"
    text += "."
    if not np.isnan(overall.get("revenue_churn_12m", np.nan)):
        text += (
            f" Of the ARR paying a year ago, {fmt_pct(overall['revenue_churn_12m'], 1)} "
            f"({fmt_pct(overall['revenue_churn_12m_ci_low'], 1)}–"
            f"{fmt_pct(overall['revenue_churn_12m_ci_high'], 1)}) left with customers who churned "
            f"since; {fmt_money(overall['arr_lost'])} ARR lost to churn in all."
        )
    return text


def _short(key: str) -> str:
    """'12 months' -> '12m'."""
    return f"{float(key.split()[0]):g}m"


# ---------------------------------------------------------------------------------------------
# By attribute


def _attribute_logrank(time, event, column, present, min_customers):
    """The log-rank test across an attribute's levels, with the levels of fewer than
    ``min_customers`` customers pooled into one group (left out when the pool is that small
    too): a level of two customers, one of whom churned, gives the chi-square a large term
    on one event, and with a few churns in all "retention differs by industry" came out of
    noise (p = 0.009 over five levels, none of which differed on its own). Returns
    ``(result or None, what was pooled)``."""
    counts = {lv: int((column == lv).sum()) for lv in present}
    small = [lv for lv in present if counts[lv] < min_customers]
    if not small:
        return (logrank_test(time, event, column) if event.sum() else None), ""
    pool = np.isin(column, small)
    groups = np.where(pool, "(smaller levels)", column).astype(object)
    keep = np.ones(len(column), dtype=bool)
    said = (
        f"{fmt_count(len(small), 'level')} of fewer than {min_customers} customers pooled "
        "as one group"
    )
    if pool.sum() < min_customers:
        keep = ~pool
        said = (
            f"{fmt_count(len(small), 'level')} of fewer than {min_customers} customers "
            f"({int(pool.sum())} in all) left out of the test"
        )
    if len(np.unique(groups[keep])) < 2 or not event[keep].sum():
        return None, f"{said}: fewer than two groups left to compare"
    return logrank_test(time[keep], event[keep], groups[keep]), said


def _by_attribute(customers, labels, levels, horizons, early_key, alpha, method, min_customers):
    time = customers["months"].to_numpy(dtype=float)
    event = customers["event"].to_numpy(dtype=int)
    years = customers["tenure_days"].to_numpy(dtype=float) / DAYS_PER_YEAR
    arr_lost = customers["arr_lost"].to_numpy(dtype=float)
    active_arr = customers["arr_current"].where(customers["event"] == 0, 0.0).to_numpy(dtype=float)
    revenue = "arr_12m_ago" in customers and customers["arr_lost"].notna().any()
    # Only the columns _revenue_churn reads: selecting a level's rows of the whole customer
    # table (and copying its attrs) for every level costs more than the measure itself.
    revenue_columns = customers[
        [c for c in ("arr_12m_ago", "gone_12m", "arr_current") if c in customers]
    ]
    rows, tests, curves = [], [], {}
    for name in levels.attributes:
        column = labels[name].to_numpy(dtype=object)
        present = [lv for lv in levels.order[name] if (column == lv).any()]
        if len(present) < 2:
            continue
        groups = pd.Categorical(column, categories=present)
        curve = kaplan_meier(
            time, event, groups=groups, time_unit="months", horizons=horizons, group_name=name
        )
        curves[name] = curve
        logrank, pooled = _attribute_logrank(time, event, column, present, min_customers)
        tests.append(
            {
                "attribute": name,
                "levels": len(present),
                "customers": int(len(column)),
                "churned": int(event.sum()),
                "statistic": logrank.statistic if logrank else np.nan,
                "df": logrank.df if logrank else np.nan,
                "p_value": logrank.p_value if logrank else np.nan,
                "note": "; ".join(
                    part for part in (pooled, (logrank.caveat or "") if logrank else "") if part
                ),
            }
        )
        summary = curve.summary.set_index("group")
        for level in present:
            inside = column == level
            k, exposure = int(event[inside].sum()), float(years[inside].sum())
            k_rest, exposure_rest = int(event[~inside].sum()), float(years[~inside].sum())
            rate, low, high = poisson_rate_ci(k, exposure, alpha)
            ratio, ratio_low, ratio_high, _ = poisson_rate_ratio(
                k, exposure, k_rest, exposure_rest, alpha
            )
            small = min(inside.sum(), (~inside).sum()) < min_customers
            test = logrank_test(time, event, inside) if event.sum() and not small else None
            row = {
                "attribute": name,
                "level": level,
                "rule": levels.conditions[(name, level)].text(),
                "customers": int(inside.sum()),
                "churned": k,
                "customer_years": exposure,
                "churn_rate": rate,
                "churn_rate_ci_low": low,
                "churn_rate_ci_high": high,
                "churn_rate_rest": k_rest / exposure_rest if exposure_rest > 0 else np.nan,
                "rate_ratio": ratio,
                "rate_ratio_ci_low": ratio_low,
                "rate_ratio_ci_high": ratio_high,
            }
            info = summary.loc[level]
            for key in horizons:
                key_slug, short = slug(key), _short(key)
                row[f"retention_{short}"] = info[f"survival_{key_slug}"]
                row[f"retention_{short}_ci_low"] = info[f"survival_{key_slug}_ci_low"]
                row[f"retention_{short}_ci_high"] = info[f"survival_{key_slug}_ci_high"]
            early = _short(early_key)
            row["early_churn"] = 1 - row[f"retention_{early}"]
            row["early_churn_ci_low"] = 1 - row[f"retention_{early}_ci_high"]
            row["early_churn_ci_high"] = 1 - row[f"retention_{early}_ci_low"]
            row["arr_current"] = float(active_arr[inside].sum()) if revenue else np.nan
            row["arr_lost"] = float(np.nansum(arr_lost[inside])) if revenue else np.nan
            if revenue:
                r, lo, hi, _ = _revenue_churn(revenue_columns[inside], alpha)
            else:
                r = lo = hi = np.nan
            row.update(
                revenue_churn_12m=r, revenue_churn_12m_ci_low=lo, revenue_churn_12m_ci_high=hi
            )
            row["p_value"] = test.p_value if test is not None else np.nan
            row["note"] = (
                f"only {fmt_count(min(inside.sum(), (~inside).sum()), 'customer')}: not tested"
                if small
                else _level_note(row, test)
            )
            rows.append(row)
    table = pd.DataFrame(rows)
    if table.empty:
        table = pd.DataFrame(columns=[*BY_ATTRIBUTE_COLUMNS, "p_value", "q_value", "significant"])
    table["q_value"] = adjust_pvalues(table["p_value"], method)
    table["significant"] = table["q_value"] < alpha
    table["direction"] = np.select(
        [table["significant"] & (table["rate_ratio"] > 1), table["significant"]],
        ["faster", "slower"],
        "",
    )
    tests = pd.DataFrame(
        tests,
        columns=[
            "attribute",
            "levels",
            "customers",
            "churned",
            "statistic",
            "df",
            "p_value",
            "note",
        ],
    )
    tests["q_value"] = adjust_pvalues(tests["p_value"], method)
    tests["significant"] = tests["q_value"] < alpha
    return table, tests, curves


def _level_note(row, test) -> str:
    if test is None:
        return "no churn events"
    if not test.ok:
        return f"not tested: {test.caveat}"
    if row["churned"] < 5:
        return f"only {row['churned']} churned: rough estimate"
    return ""


def _curves_table(overall_curve: SurvivalResult, curves: dict) -> pd.DataFrame:
    """Long table of the Kaplan-Meier steps: overall, then each kept attribute."""
    parts = []
    for name, result in [("all", overall_curve), *curves.items()]:
        steps = result.tables.get("curve")
        if steps is None or steps.empty:
            continue
        parts.append(steps.assign(attribute=name))
    columns = [
        "attribute",
        "level",
        "months",
        "at_risk",
        "churned",
        "retention",
        "ci_low",
        "ci_high",
    ]
    if not parts:
        return pd.DataFrame(columns=columns)
    table = pd.concat(parts, ignore_index=True).rename(
        columns={"group": "level", "time": "months", "events": "churned", "survival": "retention"}
    )
    return table[columns]


# ---------------------------------------------------------------------------------------------
# Cox model


# Events per model parameter: 5-9 are enough for Cox models (Vittinghoff & McCulloch 2007).
COX_EVENTS_PER_PARAMETER = 8
#: An attribute with this share of the known customers in one level is left out of the Cox
#: model (chosen without looking at churn, like the rest of its pre-specification).
NEARLY_CONSTANT = 0.95


def _cox_model(customers, labels, levels, alpha, n_events) -> Result:
    """Cox model on a pre-specified set of attributes (levels as categories).

    The set is chosen without looking at churn, never from the log-rank results: every
    candidate attribute of ``levels`` (in their declared order), except one nearly constant
    (:data:`NEARLY_CONSTANT` of the known customers in one level) or one strongly
    associated with an attribute already in (bias-corrected Cramér's V >= 0.5 over the rows
    where both are known: revenue with employees, size
    segments with employees; two versions of one quantity split its effect between them and
    leave both ratios unreadable), up to one parameter per ``COX_EVENTS_PER_PARAMETER``
    churns; when that budget binds, the most complete attributes, then those with the fewest
    levels, go in first. Fitting the model on the attributes the log-rank tests found would
    re-test the winners on the same data: on data where nothing affects churn, a Cox model
    shown at all would then "confirm" them nearly every time. The q-values are
    Benjamini-Hochberg over all the model's terms.
    """
    from icp_research.methods.stats import cramers_v_corrected

    title = "Cox model of time to churn"
    if n_events == 0:
        return Result(title=title, caveats=["Not fitted: no churn events."])
    candidates: list[str] = []
    left_out: list[str] = []
    for name in levels.attributes:
        if name not in labels or labels[name].nunique() < 2:
            continue
        known = labels[name][labels[name] != MISSING]
        top = float(known.value_counts(normalize=True).iloc[0]) if len(known) else 1.0
        if top >= NEARLY_CONSTANT:
            # "B2B" on 97% of companies: a parameter spent on a contrast of a few customers.
            left_out.append(f"{name} (nearly constant: {top:.0%} of customers in one level)")
            continue
        strongest = None
        for other in candidates:
            # Over the rows where both are known: a blank multi-select cell is missing on every
            # item at once, and 2 such customers made "Fintech" travel with "B2B" (V 0.71,
            # 0.02 without them), so the real churn driver was left out of the model.
            known = (labels[name] != MISSING) & (labels[other] != MISSING)
            table = pd.crosstab(labels.loc[known, name], labels.loc[known, other]).to_numpy()
            if min(table.shape) < 2:
                continue
            v = cramers_v_corrected(table)
            if v >= 0.5 and (strongest is None or v > strongest[1]):
                strongest = (other, v)
        if strongest is None:
            candidates.append(name)
        else:
            left_out.append(f"{name} (travels with {strongest[0]}, Cramér's V {strongest[1]:.2f})")
    budget = n_events // COX_EVENTS_PER_PARAMETER
    parameters = {name: int(labels[name].nunique()) - 1 for name in candidates}
    complete = {name: float((labels[name] != MISSING).mean()) for name in candidates}
    chosen: list[str] = []
    for name in sorted(candidates, key=lambda n: (-complete[n], parameters[n])):
        if sum(parameters[c] for c in chosen) + parameters[name] <= budget:
            chosen.append(name)
        else:
            left_out.append(f"{name} (no room: {parameters[name]} more parameters)")
    chosen = [name for name in candidates if name in chosen]
    design = (
        "The Cox model is pre-specified, not built from the log-rank results: it holds the "
        "candidate attributes chosen without looking at churn (at most one parameter per "
        f"{COX_EVENTS_PER_PARAMETER} churns, the most complete and fewest-level attributes "
        "first), and its q-values are Benjamini-Hochberg corrected over all its terms, so it is "
        "not a second test of the log-rank findings on the same data."
    )
    if not chosen:
        return Result(
            title=title,
            caveats=[
                f"Not fitted: {n_events} churns are too few for a model of the candidate "
                f"attributes (one parameter per {COX_EVENTS_PER_PARAMETER} churns).",
                design,
            ],
        )
    frame = labels[chosen].copy()
    frame["months"] = customers["months"].to_numpy()
    frame["event"] = customers["event"].to_numpy()
    model = cox_ph(_whole_months(frame), "months", "event", chosen, categorical=chosen, alpha=alpha)
    model.caveats.insert(0, design)
    if left_out:
        model.caveats.insert(1, "Left out of the model: " + "; ".join(left_out) + ".")
    return model


# ---------------------------------------------------------------------------------------------
# Reasons


def _reason_column(customers: pd.DataFrame) -> pd.Series:
    if "churn_reason" not in customers:
        return pd.Series(NO_REASON, index=customers.index, dtype=object)
    reason = customers["churn_reason"].astype("string").str.strip()
    return reason.mask(reason.isna() | (reason == ""), NO_REASON).astype(object)


def _reasons(customers, labels, levels, alpha, method, early_months):
    """Reasons overall and per level (shares of churns, ARR lost, over-representation tests),
    and reasons of early versus later churns."""
    columns = [
        "attribute",
        "level",
        "reason",
        "churned",
        "share",
        "share_ci_low",
        "share_ci_high",
        "share_rest",
        "arr_lost",
        "early_churns",
        "p_value",
        "q_value",
        "over_represented",
    ]
    churned = customers[customers["event"].astype(bool)].copy()
    if churned.empty:
        empty = pd.DataFrame(columns=columns)
        return empty, pd.DataFrame(
            columns=["reason", "early", "later", "share_early", "share_later", "p_value", "q_value"]
        )
    churned["reason"] = _reason_column(churned)
    churned["early"] = churned["months"] <= early_months
    churn_labels = labels.loc[churned.index]
    reasons = churned["reason"].value_counts().index.tolist()
    rows = []
    # Per reason and column once, not once per level.
    hits = {reason: (churned["reason"] == reason).to_numpy() for reason in reasons}
    arr_lost = churned["arr_lost"].to_numpy()
    early_churn = churned["early"].to_numpy()

    def add(attribute, level, inside):
        total, total_rest = int(inside.sum()), int((~inside).sum())
        if total == 0:
            return
        for reason in reasons:
            hit = hits[reason]
            k = int((hit & inside).sum())
            k_rest = int((hit & ~inside).sum())
            rows.append(
                {
                    "attribute": attribute,
                    "level": level,
                    "reason": reason,
                    "churned": k,
                    "total": total,
                    "share": k / total,
                    "share_rest": k_rest / total_rest if total_rest else np.nan,
                    "k_rest": k_rest,
                    "total_rest": total_rest,
                    "arr_lost": float(np.nansum(arr_lost[hit & inside])),
                    "early_churns": int((hit & inside & early_churn).sum()),
                }
            )

    everyone = np.ones(len(churned), dtype=bool)
    add("all", "all", everyone)
    for name in levels.attributes:
        column = churn_labels[name].to_numpy(dtype=object)
        for level in levels.order[name]:
            add(name, level, column == level)
    table = pd.DataFrame(rows)
    table["share_ci_low"], table["share_ci_high"] = proportion_ci(
        table["churned"], table["total"], alpha
    )
    testable = (table["attribute"] != "all") & (table["churned"] + table["k_rest"] > 0)
    p = np.full(len(table), np.nan)
    p[testable.to_numpy()] = two_proportion_pvalue(
        table.loc[testable, "churned"],
        table.loc[testable, "total"],
        table.loc[testable, "k_rest"],
        table.loc[testable, "total_rest"],
    )
    table["p_value"] = p
    table["q_value"] = adjust_pvalues(p, method)
    table["over_represented"] = (table["q_value"] < alpha) & (table["share"] > table["share_rest"])
    if not churned["arr_lost"].notna().any():
        table["arr_lost"] = np.nan
    table = table[columns]

    early = churned["early"].to_numpy()
    early_rows = []
    for reason in reasons:
        hit = (churned["reason"] == reason).to_numpy()
        early_rows.append(
            {
                "reason": reason,
                "early": int((hit & early).sum()),
                "later": int((hit & ~early).sum()),
                "share_early": (hit & early).sum() / early.sum() if early.any() else np.nan,
                "share_later": (hit & ~early).sum() / (~early).sum() if (~early).any() else np.nan,
            }
        )
    early_table = pd.DataFrame(early_rows)
    n_reasons = len(early_table)
    early_table["p_value"] = two_proportion_pvalue(
        early_table["early"],
        np.full(n_reasons, early.sum()),
        early_table["later"],
        np.full(n_reasons, (~early).sum()),
    )
    early_table["q_value"] = adjust_pvalues(early_table["p_value"], method)
    return table, early_table


# ---------------------------------------------------------------------------------------------
# Trials


def trial_conversion(study: Study, *, levels: ap.Levels | None = None) -> Result:
    """Trial-to-paid conversion, when the data has trials; otherwise says there are none.

    Trials are subscriptions whose ``plan`` is named like "trial" (converted: the account later
    has a subscription on another plan), or else the ``trials`` table (a billing export's free
    trials, by trial end or status; converted: a paid subscription began on or after the
    trial's start), or else opportunities whose ``type`` is named like "trial" (converted:
    won). Trials still running on the as-of date are undecided and left out of the rate. Returns a :class:`Result` whose ``summary`` has one row overall
    (``level`` = ``all``) and one per attribute level: ``attribute``, ``level``, ``trials``,
    ``converted``, ``conversion_rate``, ``ci_low``, ``ci_high`` (Wilson for subscriptions,
    clustered by account for deals), ``undecided``; empty when there are no trials.
    """
    title = "Trial conversion"
    subs = study.tables.get("subscriptions")
    if subs is not None and "plan" in subs:
        is_trial = subs["plan"].astype("string").str.contains(TRIAL, na=False)
        if is_trial.any():
            return _subscription_trials(study, subs, is_trial.to_numpy(), levels, title)
    billing = study.tables.get("trials")
    deals = study.tables.get("opportunities")
    deal_trials = None
    if deals is not None and "type" in deals:
        is_trial = deals["type"].astype("string").str.contains(TRIAL, na=False)
        if is_trial.any():
            deal_trials = deals[is_trial.to_numpy()]
    if billing is not None and len(billing):
        if deal_trials is None or len(deal_trials) <= len(billing):
            return _billing_trials(study, billing, levels, title)
        # A product-led export's 2,355 trial opportunities beside the 4 subscriptions a
        # billing export still has in trial: the opportunities are the trials.
        result = _deal_trials(study, deal_trials, levels, title)
        result.caveats.append(
            f"Trials are read from the {len(deal_trials):,} opportunities typed like 'trial', "
            f"not from the billing export's {fmt_count(len(billing), 'trial')}, which are fewer."
        )
        return result
    if deal_trials is not None:
        return _deal_trials(study, deal_trials, levels, title)
    looked = []
    looked.append(
        "no subscription plan named like 'trial'"
        if subs is not None and "plan" in subs
        else "no subscription plans"
    )
    looked.append(
        "no opportunity type named like 'trial'"
        if deals is not None and "type" in deals
        else "no opportunity types"
    )
    caveat = f"No trial data ({'; '.join(looked)}): trial conversion cannot be measured."
    seen = [
        p.message.split(":")[0]
        for p in study.report.problems
        if p.table == "subscriptions"
        and re.match(
            r"[\d,]+ subscriptions (are in trial|ended on or before their trial end|"
            r"began with a free trial)",
            p.message,
        )
    ]
    if seen:
        # The billing export has trials, read by status or trial end at load: they set who is
        # a customer and from when, but are not measured as conversion here.
        caveat = (
            f"Trial conversion is measured from subscription plans or opportunity types named "
            f"like 'trial' ({'; '.join(looked)}). The billing export's trials ({'; '.join(seen)}) "
            "decide who is a customer and from when, but are not counted as conversion."
        )
    return Result(title=title, caveats=[caveat], params={"source": None})


def _trial_only_accounts(study: Study) -> set:
    """Accounts whose every subscription is on a plan named like 'trial'."""
    subs = study.tables.get("subscriptions")
    if subs is None or "plan" not in subs or subs.empty:
        return set()
    is_trial = subs["plan"].astype("string").str.contains(TRIAL, na=False)
    if not is_trial.any():
        return set()
    paid = set(subs.loc[~is_trial.to_numpy(), "account_id"].unique())
    return set(subs.loc[is_trial.to_numpy(), "account_id"].unique()) - paid


def _subscription_trials(study, subs, is_trial, levels, title) -> Result:
    as_of = study.as_of
    trials = subs[is_trial]
    paid = subs[~is_trial]
    first_trial = trials.groupby("account_id")["start_date"].min()
    trial_end = trials.groupby("account_id")["end_date"].max() if "end_date" in trials else None
    first_paid = (
        paid.join(first_trial.rename("_trial"), on="account_id", how="inner")
        .loc[lambda f: f["start_date"] >= f["_trial"]]
        .groupby("account_id")["start_date"]
        .min()
    )
    table = pd.DataFrame({"trial_start": first_trial})
    table["converted"] = table.index.isin(first_paid.index)
    running = (
        trial_end.reindex(table.index).isna() | (trial_end.reindex(table.index) > as_of)
        if trial_end is not None
        else pd.Series(True, index=table.index)
    )
    table["undecided"] = ~table["converted"] & running.to_numpy()
    decided = table[~table["undecided"]]
    summary = _trial_rows(decided, table, levels, study, clustered=False)
    return _trial_result(title, summary, "subscriptions whose plan is named like 'trial'", study)


#: A trial converted when the account paid within this many days of the trial's end.
CONVERSION_DAYS = 90


def _billing_trials(study, trials, levels, title) -> Result:
    """Trial conversion from the ``trials`` table, per account: from its first trial, converted
    when a paid subscription of the account began on or after that trial's start and within
    :data:`CONVERSION_DAYS` of its trial end (of its start when the end is unknown), by the
    as-of date (the trial itself running past its trial end, or a plan bought soon after);
    undecided when it has not converted and a trial is still running (no end, and a trial end
    after the as-of date or none known) or its window has not closed by the as-of date."""
    as_of = study.as_of
    ordered = trials.sort_values("start_date", kind="stable")
    first = ordered.groupby("account_id")["start_date"].first()
    ends = ordered.groupby("account_id")["trial_end"].first()
    # Converted: paid within CONVERSION_DAYS of the trial's end (of its start when the end is
    # unknown). A purchase a year later, after a sales cycle, is no conversion of the trial (a
    # first user's "65% converted" was 5% within 90 days).
    deadline = ends.fillna(first) + pd.Timedelta(days=CONVERSION_DAYS)
    running = trials["end_date"].isna() & ~(trials["trial_end"] <= as_of)
    table = pd.DataFrame({"trial_start": first, "deadline": deadline})
    subs = study.tables.get("subscriptions")
    converted = pd.Series(False, index=table.index)
    if subs is not None and len(subs):
        paid = subs[subs["arr"] > 0] if "arr" in subs else subs
        later = paid.join(table[["trial_start", "deadline"]], on="account_id", how="inner")
        later = later[
            (later["start_date"] >= later["trial_start"])
            & (later["start_date"] <= later["deadline"])
        ]
        converted = table.index.isin(later["account_id"].unique())
    table["converted"] = converted
    still = trials.loc[running.to_numpy(dtype=bool), "account_id"].unique()
    # Not converted yet, with the window still open: undecided.
    table["undecided"] = ~table["converted"] & (
        table.index.isin(still) | (table["deadline"] > as_of).to_numpy()
    )
    table = table.drop(columns=["deadline"])
    decided = table[~table["undecided"]]
    summary = _trial_rows(decided, table, levels, study, clustered=False)
    return _trial_result(
        title,
        summary,
        "the billing export's free trials (trial end or status)",
        study,
        window=CONVERSION_DAYS,
    )


def _deal_trials(study, deals, levels, title) -> Result:
    closed = deals[deals["stage"].isin(["won", "lost"])]
    per_account = closed.groupby("account_id").agg(
        converted=("stage", lambda s: int((s == "won").sum())), trials=("stage", "size")
    )
    per_account["undecided"] = (
        deals[deals["stage"] == "open"].groupby("account_id").size().reindex(per_account.index)
    )
    open_count = int((deals["stage"] == "open").sum())
    summary = _trial_rows(
        per_account, per_account, levels, study, clustered=True, open_count=open_count
    )
    return _trial_result(title, summary, "opportunities whose type is named like 'trial'", study)


def _trial_rows(decided, everything, levels, study, *, clustered, open_count=None):
    alpha = study.alpha

    def row(attribute, level, part, undecided):
        if clustered:
            k = part["converted"].to_numpy(dtype=float)
            n = part["trials"].to_numpy(dtype=float)
            rate, low, high, _ = clustered_rate_ci(k, n, alpha)
            n_trials, n_converted = int(n.sum()), int(k.sum())
        else:
            n_trials, n_converted = len(part), int(part["converted"].sum())
            rate = n_converted / n_trials if n_trials else np.nan
            low, high = (float(v) for v in proportion_ci(n_converted, n_trials, alpha))
        return {
            "attribute": attribute,
            "level": level,
            "trials": n_trials,
            "converted": n_converted,
            "conversion_rate": rate,
            "ci_low": low,
            "ci_high": high,
            "undecided": undecided,
        }

    undecided_all = int(open_count or 0) if clustered else int(everything["undecided"].sum())
    rows = [row("all", "all", decided, undecided_all)]
    if levels is not None:
        labels = levels.labels.set_index("account_id") if "account_id" in levels.labels else None
        # A contract term (monthly / annual) is set when the trial converts: every trial with
        # one converted and every one without did not ("monthly 100%, (missing) 0%").
        terms = set(study.attributes.contract) | {"billing_period"}
        for name in levels.attributes if labels is not None else []:
            if name in terms:
                continue
            mapped = labels[name].reindex(decided.index)
            for level in levels.order[name]:
                part = decided[(mapped == level).to_numpy()]
                if len(part):
                    rows.append(row(name, level, part, np.nan))
    return pd.DataFrame(rows)


def _trial_result(title, summary, source, study, window: int | None = None) -> Result:
    overall = summary.iloc[0]
    findings = []
    caveats = []
    within = f" within {window} days of the trial's end" if window else ""
    if overall["trials"] > 0:
        findings.append(
            f"Trials ({source}): {fmt_rate_ci(overall['conversion_rate'], overall['ci_low'], overall['ci_high'], overall['trials'])} "
            f"converted to paid{within}."
        )
    if overall["undecided"]:
        caveats.append(
            f"{fmt_number(overall['undecided'])} trials were still running on "
            f"{study.as_of:%Y-%m-%d}"
            + (
                f", or ended less than {window} days before it without paying yet,"
                if window
                else ""
            )
            + " and are not counted."
        )
    if (summary["level"] != "all").any():
        # "Netherlands 46%" beside "Australia 20%" read as a difference: each has its
        # interval, but no level is tested against the rest.
        caveats.append(
            "The conversion rates by level describe the trials: no level is tested against the "
            "rest here, so read a gap between two levels as a question for the predictor "
            "report, which tests the characteristics, not as a finding."
        )
    return Result(
        title=title, summary=summary, findings=findings, caveats=caveats, params={"source": source}
    )


# ---------------------------------------------------------------------------------------------
# Anti-patterns


def _whole_months(frame: pd.DataFrame) -> pd.DataFrame:
    """Tenure rounded up to whole months for the Cox models.

    Billing runs by the month, so day-level churn times are noise; whole months turn a few
    hundred distinct event times into a few dozen (Efron handles the ties), which makes each
    fit about ten times faster with the same hazard ratios to the second decimal.
    """
    return frame.assign(months=np.ceil(frame["months"]).clip(lower=1))


def _anti_patterns(customers, labels, levels, by_attribute, reasons, facts, alpha, revenue):
    """Levels that churn significantly faster, as candidate exclude rules."""
    worse = by_attribute[by_attribute["direction"] == "faster"].copy()
    if worse.empty:
        return ap.empty()
    worse = worse.sort_values(["q_value", "rate_ratio"], ascending=[True, False])
    frame = pd.DataFrame(
        {"months": customers["months"].to_numpy(), "event": customers["event"].to_numpy()}
    )
    indicators = {}
    all_labels = levels.labels
    rows = []
    for _, level_row in worse.iterrows():
        name, level = level_row["attribute"], level_row["level"]
        condition = levels.conditions[(name, level)]
        rule_id = f"churn:{name}:{level}"
        inside = (labels[name] == level).to_numpy()
        indicators[rule_id] = inside.astype(int)
        frame[_column(rule_id)] = inside.astype(int)
        univariate = cox_ph(
            _whole_months(frame), "months", "event", [_column(rule_id)], scale="unit", alpha=alpha
        )
        hr = univariate.summary.iloc[0] if univariate.fitted else None
        members = ap.member_rows(all_labels[name] == level)
        level_reasons = reasons[
            (reasons["attribute"] == name)
            & (reasons["level"] == level)
            & reasons["over_represented"]
        ].sort_values("q_value")
        accounts_in_level = int((all_labels[name] == level).sum())
        rows.append(
            {
                "rule_id": rule_id,
                "source": "churn",
                "outcome": "churn",
                "attribute": condition.attribute,
                "operator": condition.operator,
                "value": condition.value,
                "rule": condition.text(),
                "phrase": condition.phrase(),
                "level_attribute": name,
                "level": level,
                "accounts": int(level_row["customers"]),
                "share_of_accounts": accounts_in_level / len(all_labels),
                "n": int(level_row["customers"]),
                "events": int(level_row["churned"]),
                "rate_level": level_row["churn_rate"],
                "rate_rest": level_row["churn_rate_rest"],
                "effect_name": "hazard_ratio" if hr is not None else "rate_ratio",
                "effect": hr["hazard_ratio"] if hr is not None else level_row["rate_ratio"],
                "ci_low": hr["ci_low"] if hr is not None else level_row["rate_ratio_ci_low"],
                "ci_high": hr["ci_high"] if hr is not None else level_row["rate_ratio_ci_high"],
                "p_value": level_row["p_value"],
                "q_value": level_row["q_value"],
                "reasons": "; ".join(level_reasons["reason"]),
                "arr_at_risk": level_row["arr_current"] if revenue else np.nan,
                "open_pipeline": np.nan,
                "_members": members,
            }
        )
    candidates = pd.DataFrame(rows)

    def adjusted(selected: list[str], rule_id: str):
        covariates = [_column(r) for r in selected] + [_column(rule_id)]
        model = cox_ph(
            _whole_months(frame), "months", "event", covariates, scale="unit", alpha=alpha
        )
        if not model.fitted:
            return np.nan, None
        term = model.summary.set_index("covariate").loc[_column(rule_id)]
        if pd.isna(term["p_value"]):
            # Collinear with the rules already selected: nothing left to explain.
            return 1.0, False
        return float(term["p_value"]), bool(term["hazard_ratio"] > 1)

    selected = ap.select_independent(candidates, adjusted, alpha=alpha)
    selected["statement"] = [ap.evidence_sentence(r, alpha) for r in selected.to_dict("records")]
    return ap.finish(selected)


def _column(rule_id: str) -> str:
    return "rule_" + re.sub(r"[^0-9A-Za-z]+", "_", rule_id)


# ---------------------------------------------------------------------------------------------
# Words


def _findings(by_attribute, logrank_table, cox, reasons, early_reasons, overall, anti, alpha):
    lines = []
    if by_attribute.empty:
        return lines
    mattering = logrank_table[logrank_table["significant"]]
    terms = cox.summary if cox is not None else pd.DataFrame()
    terms = terms[terms["significant"].astype(bool)] if "significant" in terms else terms.iloc[:0]
    if len(logrank_table) and mattering.empty and overall["churned"] > 0:
        curves = (
            f"No attribute's retention curves differ after Benjamini-Hochberg correction over "
            f"{int(logrank_table['p_value'].notna().sum())} attributes"
        )
        levels = (
            by_attribute[by_attribute["significant"].fillna(False).astype(bool)]
            if "significant" in by_attribute
            else by_attribute.iloc[:0]
        )
        if terms.empty and levels.empty:
            lines.append(f"{curves}: no segment stands out on churn.")
        elif terms.empty:
            # One level against the rest can stand out where the attribute's curves as a whole
            # do not ("Indicação" 0.45x at q = 0.048 under "no segment stands out").
            lines.append(
                f"{curves} (log-rank tests over all of each attribute's values); one value "
                "against the rest does (below). That is weaker evidence: confirm it on later "
                "quarters before acting on it."
            )
        else:
            # The model's own family found a term: "no segment stands out" beside it read as
            # a contradiction (a null export's plan = starter at q = 0.046).
            named = "; ".join(
                f"{t['covariate']} = {t['level']} ({t['hazard_ratio']:.2f}x, q {_q(t['q_value'])})"
                if t["level"] != ""
                else f"{t['covariate']} ({t['hazard_ratio']:.2f}x per unit, q {_q(t['q_value'])})"
                for t in terms.sort_values("q_value").to_dict("records")
            )
            lines.append(
                f"{curves} (log-rank tests); only the Cox model, with the attributes together, "
                f"finds a difference: {named}. Where the curves show none, that is weak "
                "evidence: confirm it on later quarters before acting on it."
            )
    elif len(mattering):
        # Each with its q, and said plainly where no level of it stands out on its own: a
        # log-rank test over eight countries at q = 0.04, none of them different, is weak
        # evidence (a noise column in a first user's export).
        parts, vague = [], []
        for row in mattering.sort_values("statistic", ascending=False).to_dict("records"):
            name = row["attribute"]
            parts.append(f"{name} (q {_q(row['q_value'])})")
            levels = by_attribute[by_attribute["attribute"] == name]
            if (
                "significant" in levels
                and not levels["significant"].fillna(False).astype(bool).any()
            ):
                vague.append(name)
        line = (
            "Retention differs by " + ", ".join(parts) + " (log-rank tests, corrected over "
            "attributes)."
        )
        if vague:
            line += (
                f" For {' and '.join(vague)} no single "
                f"{['value', 'value of either', 'value of any of them'][min(len(vague), 3) - 1]}"
                " churns significantly "
                "faster or slower than the rest: weak evidence, to confirm on later quarters "
                "before acting on it."
            )
        lines.append(line)
    candidates = anti[anti["status"] == "candidate"] if len(anti) else anti
    for _, row in candidates.iterrows():
        lines.append(row["statement"])
    terms = anti[anti["status"] == "contract term"] if len(anti) else anti
    for _, row in terms.iterrows():
        line = (
            f"{row['statement']} This is how they pay, a term of the contract: a pricing lever "
            "(annual plans, for instance), not a kind of company to turn away."
        )
        if row.get("attribute") == "billing_period" or row.get("level_attribute") == (
            "billing_period"
        ):
            # A yearly contract can end only at its renewal, so a rate per customer-year
            # favours it by construction (a first user's "monthly churns 1.5x as fast" beside
            # 77% vs 79% retained at 12 months, with the same monthly hazard for both plans).
            line += (
                " Part of the gap is how the terms are built: an annual contract can end only "
                "at a renewal, a monthly one any month; compare retention at 12 months or "
                "later before pricing on it."
            )
        lines.append(line)
    explained = anti[anti["status"] == "explained"] if len(anti) else anti
    words = ap.worded(anti)
    if len(explained):
        lines.append(
            f"{len(explained)} more segment{'s churn' if len(explained) > 1 else ' churns'} "
            "faster but no longer significantly once the rules above are accounted for: "
            + "; ".join(
                f"accounts {words.get(r, r)} (explained by accounts {words.get(b, b)})"
                for r, b in zip(explained["rule"], explained["explained_by"], strict=True)
            )
            + "."
        )
    # The clearest (smallest q), then the slowest: a size band's 0.45x on 48 customers at
    # q = 0.04 was shown over the data's own 1,000+ employees at 0.50x on 108, q = 0.005.
    slower = by_attribute[by_attribute["direction"] == "slower"]
    slower = slower.sort_values([c for c in ("q_value", "rate_ratio") if c in slower])
    if len(slower):
        best = slower.iloc[0]
        who = f"accounts {best['words']}" if best.get("words") else best["rule"]
        lines.append(
            f"Slower churn, most clearly: {who} "
            f"({fmt_ratio(best['rate_ratio'])} the churn rate of "
            f"other customers, {fmt_count(best['customers'], 'customer')}, "
            f"q {_q(best['q_value'])})."
        )
    if overall["churned"] > 0 and not np.isnan(overall.get("early_churn", np.nan)):
        months = overall["early_churn_months"]
        text = (
            f"Early churn (onboarding drop-off): {fmt_pct(overall['early_churn'])} of customers "
            f"leave within their first {months:g} months "
            + (
                f"({fmt_pct(overall['early_churn_ci_low'])}–"
                f"{fmt_pct(overall['early_churn_ci_high'])}, Kaplan-Meier); "
                if np.isfinite(overall["early_churn_ci_high"])
                else "(Kaplan-Meier); "
            )
            + f"{fmt_number(overall['early_churns'])} of "
            f"{fmt_number(overall['churned'])} churns happened in that window."
        )
        early_over = early_reasons[
            (early_reasons["q_value"] < alpha)
            & (early_reasons["share_early"] > early_reasons["share_later"])
        ]
        if len(early_over):
            text += " Over-represented among early churns: " + ", ".join(early_over["reason"]) + "."
        lines.append(text)
    sentence = _top_reasons(reasons)
    if sentence:
        lines.append(sentence)
    return lines


def _top_reasons(reasons: pd.DataFrame) -> str | None:
    """The commonest churn reasons recorded, with their share of every churn; the churns
    without one are said apart ("(no reason recorded)" is no reason to rank among them)."""
    overall_reasons = reasons[reasons["attribute"] == "all"].sort_values("churned", ascending=False)
    recorded = overall_reasons[overall_reasons["reason"] != NO_REASON]
    if not len(overall_reasons):
        return None
    if recorded.empty:
        return (
            "No churn reason is recorded for any churned customer: a churn_events table with "
            "a reason column would say why customers leave."
        )
    top = recorded.head(3)
    text = "Top churn reasons: " + ", ".join(
        f"{r} ({fmt_pct(s)})" for r, s in zip(top["reason"], top["share"], strict=True)
    )
    missing = overall_reasons[overall_reasons["reason"] == NO_REASON]
    if len(missing):
        text += f" ({fmt_pct(missing['share'].iloc[0])} of churns have no reason recorded)"
    return text + "."


def _caveats(customers, by_attribute, logrank_table, n_events) -> list[str]:
    out = []
    if 0 < n_events < 30:
        out.append(
            f"Only {n_events} churn events: differences between segments can only be large to "
            "be detected; an absent finding is not evidence of no difference."
        )
    out.append(
        "Churn is measured per customer-year of exposure and with Kaplan-Meier curves, so recent "
        "customers count for the time they were observed (right-censored), not as retained."
    )
    if n_events == 0:
        return out
    out.append(
        "Each level is compared with all other customers by a log-rank test; q-values are "
        "Benjamini-Hochberg corrected over every level of every attribute tested "
        f"({int(by_attribute['p_value'].notna().sum()) if len(by_attribute) else 0} tests)."
    )
    out.append(
        "The Cox model is fitted on attributes declared before looking at churn, not on those "
        "the log-rank tests found, and corrected over its own terms: a finding in both is one "
        "finding seen twice in the same data, not two."
    )
    return out


def _q(q) -> str:
    return ap._q_words(q)


def _empty_tables() -> dict:
    return {
        "churn_by_attribute": pd.DataFrame(columns=BY_ATTRIBUTE_COLUMNS),
        "logrank": pd.DataFrame(columns=["attribute", "statistic", "df", "p_value", "q_value"]),
        "retention_curves": pd.DataFrame(
            columns=["attribute", "level", "months", "at_risk", "churned", "retention"]
        ),
        "churn_reasons": pd.DataFrame(columns=["attribute", "level", "reason", "churned", "share"]),
        "early_churn_reasons": pd.DataFrame(columns=["reason", "early", "later"]),
        "cox": pd.DataFrame(columns=COX_COLUMNS),
        "trial_conversion": pd.DataFrame(),
        "anti_patterns": ap.empty(),
    }


# ---------------------------------------------------------------------------------------------
# Views and plots for the report


def headline(result: ChurnResult) -> dict:
    """Headline numbers as display strings (for ``report.kpis``)."""
    o = result.overall
    if not o:
        return {}
    source = o.get("churn_source", "subscriptions")
    out = {
        "Churn measured": churn_source.short(source),
        "Customers": fmt_number(o["customers"]),
        "Churned": fmt_number(o["churned"]),
        "Churn / year": f"{fmt_pct(o['churn_rate'], 1)} "
        f"({fmt_pct(o['churn_rate_ci_low'], 1)}–{fmt_pct(o['churn_rate_ci_high'], 1)}) "
        + churn_source.short(source),
    }
    if o.get("undated"):
        out["Churned, incl. undated"] = (
            f"{fmt_number(o['churned_all'])} of {fmt_number(o['customers_known'])} "
            f"({fmt_pct(o['churned_share'])})"
        )
    if not np.isnan(o.get("retention_12m", np.nan)):
        out["Retained at 12 months"] = _rate_text(
            o["retention_12m"], o["retention_12m_ci_low"], o["retention_12m_ci_high"]
        )
    if not np.isnan(o.get("early_churn", np.nan)):
        out[f"Gone within {o['early_churn_months']:g} months"] = fmt_pct(o["early_churn"])
    if not np.isnan(o.get("revenue_churn_12m", np.nan)):
        out["Revenue churn (12 months)"] = fmt_pct(o["revenue_churn_12m"], 1)
    if "arr_lost" in o:
        out["ARR lost to churn"] = fmt_money(o["arr_lost"])
    return out


def attributes_shown(result: ChurnResult) -> list[str]:
    """Attributes whose curves differ or that have a significant level, strongest first."""
    table = result.tables.get("logrank", pd.DataFrame())
    if table.empty:
        return []
    by_level = result.summary
    with_level = set(by_level.loc[by_level["significant"].astype(bool), "attribute"])
    ranked = table.sort_values("statistic", ascending=False)
    return [a for a in ranked["attribute"] if a in with_level or a in result.attributes_that_matter]


def attribute_view(result: ChurnResult, attributes: list[str] | None = None) -> pd.DataFrame:
    """Churn by level for a report table (rates with intervals as text)."""
    table = result.summary
    if table.empty:
        return pd.DataFrame()
    names = attributes if attributes is not None else attributes_shown(result)
    table = table[table["attribute"].isin(names)].copy()
    table["_order"] = table["attribute"].map({n: i for i, n in enumerate(names)})
    table = table.sort_values("_order", kind="stable")
    view = pd.DataFrame(
        {
            "Attribute": table["attribute"],
            "Level": table["level"],
            "Customers": table["customers"],
            "Churned": table["churned"],
            "Churn per year": [
                fmt_rate_ci(r, lo, hi, digits=0)
                for r, lo, hi in zip(
                    table["churn_rate"],
                    table["churn_rate_ci_low"],
                    table["churn_rate_ci_high"],
                    strict=True,
                )
            ],
            "vs other customers": [
                _ratio_text(r, lo, hi)
                for r, lo, hi in zip(
                    table["rate_ratio"],
                    table["rate_ratio_ci_low"],
                    table["rate_ratio_ci_high"],
                    strict=True,
                )
            ],
        }
    )
    if "retention_12m" in table:
        view["Retained at 12 months"] = [
            _rate_text(r, lo, hi)
            for r, lo, hi in zip(
                table["retention_12m"],
                table["retention_12m_ci_low"],
                table["retention_12m_ci_high"],
                strict=True,
            )
        ]
    if table["arr_lost"].notna().any():
        view["ARR lost"] = [fmt_money(v) for v in table["arr_lost"]]
    view["q"] = table["q_value"].to_numpy()
    view["Churns"] = table["direction"].to_numpy()
    return view.reset_index(drop=True)


def _rate_text(rate, low, high) -> str:
    """'83% (79–87%)', or just '100%' when there is no interval (no event yet)."""
    if pd.isna(low) or pd.isna(high):
        return fmt_pct(rate)
    return fmt_rate_ci(rate, low, high)


def _ratio_text(ratio, low, high) -> str:
    if ratio is None or pd.isna(ratio) or np.isinf(ratio):
        return "–"
    return f"{ratio:.2f}x ({low:.2f}–{high:.2f})"


def cox_view(result: ChurnResult) -> pd.DataFrame:
    """The Cox model's estimated terms for a report table."""
    if result.cox is None or result.cox.summary.empty:
        return pd.DataFrame()
    table = result.cox.summary
    table = table[table["note"] != "reference"]
    return pd.DataFrame(
        {
            "Attribute": table["covariate"],
            "Level": table["level"],
            "Compared with": table["reference"],
            "Customers": table["n"],
            "Churned": table["events"],
            "Hazard ratio": [
                _ratio_text(r, lo, hi)
                for r, lo, hi in zip(
                    table["hazard_ratio"], table["ci_low"], table["ci_high"], strict=True
                )
            ],
            "q": table["q_value"],
            "Note": table["note"],
        }
    ).reset_index(drop=True)


def reasons_view(result: ChurnResult) -> pd.DataFrame:
    """Churn reasons of all churned customers, with the ARR lost."""
    reasons = result.tables.get("churn_reasons", pd.DataFrame())
    if reasons.empty:
        return pd.DataFrame()
    overall = reasons[reasons["attribute"] == "all"].sort_values("churned", ascending=False)
    if (overall["reason"] == NO_REASON).all():
        return pd.DataFrame()  # nothing recorded: said in words, not as a 100% "reason"
    view = pd.DataFrame(
        {
            "Reason": overall["reason"],
            "Churned": overall["churned"],
            "Share of churns": [
                fmt_rate_ci(s, lo, hi)
                for s, lo, hi in zip(
                    overall["share"], overall["share_ci_low"], overall["share_ci_high"], strict=True
                )
            ],
            "Within the early-churn window": overall["early_churns"],
        }
    )
    if overall["arr_lost"].notna().any():
        view["ARR lost"] = [fmt_money(v) for v in overall["arr_lost"]]
    return view.reset_index(drop=True)


def segment_reasons_view(result: ChurnResult) -> pd.DataFrame:
    """Reasons significantly over-represented among a level's churns (vs other churns)."""
    reasons = result.tables.get("churn_reasons", pd.DataFrame())
    if reasons.empty:
        return pd.DataFrame()
    over = reasons[reasons["over_represented"].astype(bool)].sort_values("q_value")
    return pd.DataFrame(
        {
            "Attribute": over["attribute"],
            "Level": over["level"],
            "Reason": over["reason"],
            "Churned for it": over["churned"],
            "Share of the level's churns": [fmt_pct(v) for v in over["share"]],
            "Share of other churns": [fmt_pct(v) for v in over["share_rest"]],
            "q": over["q_value"],
        }
    ).reset_index(drop=True)


def early_churn_view(result: ChurnResult) -> pd.DataFrame:
    """Reasons of early churns against later churns."""
    table = result.tables.get("early_churn_reasons", pd.DataFrame())
    if table.empty or "share_early" not in table:
        return pd.DataFrame()
    return pd.DataFrame(
        {
            "Reason": table["reason"],
            "Early churns": table["early"],
            "Later churns": table["later"],
            "Share of early churns": [fmt_pct(v) for v in table["share_early"]],
            "Share of later churns": [fmt_pct(v) for v in table["share_later"]],
            "q": table["q_value"],
        }
    )


def trial_view(result: ChurnResult) -> pd.DataFrame:
    """Trial conversion overall and by level, when there are trials."""
    if result.trials is None or result.trials.summary.empty:
        return pd.DataFrame()
    table = result.trials.summary
    return pd.DataFrame(
        {
            "Attribute": table["attribute"],
            "Level": table["level"],
            "Trials": table["trials"],
            "Converted": table["converted"],
            "Conversion": [
                fmt_rate_ci(r, lo, hi)
                for r, lo, hi in zip(
                    table["conversion_rate"], table["ci_low"], table["ci_high"], strict=True
                )
            ],
        }
    )


def report_views(result: ChurnResult) -> dict:
    """``{name: callable returning a View}``: the churn report's tables with their reasons.

    ``by_attribute`` (:func:`attribute_view`), ``cox`` (:func:`cox_view`, the model's findings
    and caveats as notes), ``reasons`` (:func:`reasons_view`), ``reasons_by_segment``
    (:func:`segment_reasons_view`), ``early_churn`` (:func:`early_churn_view`), ``trials``
    (:func:`trial_view`) and ``exclude_rules`` (the anti-patterns).
    """
    not_computed = result.not_computed
    cox, trials = result.cox, result.trials
    # Why churn could not be analysed at all (no customers): the reason of every table.
    no_churn = not_computed.get("churn")

    def by_attribute() -> View:
        return View(
            "differences in churn between segments",
            attribute_view(result),
            not_computed.get(
                "churn differences between segments",
                no_churn
                or "no attribute level churns significantly faster or slower than the rest after "
                "correction.",
            ),
            max_rows=80,
        )

    def cox_model() -> View:
        if cox is None:
            return View("an adjusted model", reason=no_churn or "there are no customers.")
        return View(
            "an adjusted model",
            cox_view(result),
            " ".join(cox.caveats),
            notes=[*cox.findings[1:], *cox.caveats],
        )

    def reasons() -> View:
        return View(
            "churn reasons",
            reasons_view(result),
            not_computed.get("churn reasons", no_churn or "no churn reason was recorded."),
        )

    def reasons_by_segment() -> View:
        return View(
            "churn reasons by segment",
            segment_reasons_view(result),
            "No churn reason is significantly more common in one segment than in the others."
            if len(reasons_view(result))
            else "No churn reasons to compare.",
            empty_as="info",
        )

    def early_churn() -> View:
        return View(
            "early churn", early_churn_view(result), no_churn or "no customer has churned yet."
        )

    def trials_table() -> View:
        return View(
            "trial conversion",
            trial_view(result),
            " ".join(trials.caveats) if trials is not None else "No trial data.",
            empty_as="skipped",
        )

    def exclude_rules() -> View:
        return View(
            "exclude rules from churn",
            ap.rules_view(result.anti_patterns),
            "No segment churns significantly faster than the rest: churn gives no exclude rule.",
            empty_as="success",
        )

    return {
        "by_attribute": by_attribute,
        "cox": cox_model,
        "reasons": reasons,
        "reasons_by_segment": reasons_by_segment,
        "early_churn": early_churn,
        "trials": trials_table,
        "exclude_rules": exclude_rules,
    }


def plot_churn_rates(result: ChurnResult, attributes: list[str] | None = None, *, ax=None):
    """Churns per customer-year by level with exact intervals, one row per level.

    Draws the levels of ``attributes`` (default: those shown in the report), a dashed line at
    the overall rate; levels that churn significantly faster are drawn in red, slower in
    green. Returns the Axes.
    """
    import matplotlib.pyplot as plt

    names = attributes if attributes is not None else attributes_shown(result)
    table = result.summary
    table = table[table["attribute"].isin(names)] if len(table) else table
    if ax is None:
        _, ax = plt.subplots(figsize=(8, max(2.5, 0.32 * len(table) + 1)))
    if table.empty:
        ax.text(0.5, 0.5, "No segment to show", ha="center", va="center", transform=ax.transAxes)
        ax.set_axis_off()
        return ax
    table = table.assign(_order=table["attribute"].map({n: i for i, n in enumerate(names)}))
    table = table.sort_values("_order", kind="stable").reset_index(drop=True)
    y = np.arange(len(table))[::-1]
    colors = table["direction"].map({"faster": "#d55e00", "slower": "#009e73"}).fillna("#56606b")
    ax.errorbar(
        table["churn_rate"] * 100,
        y,
        xerr=error_bars(
            table["churn_rate"], table["churn_rate_ci_low"], table["churn_rate_ci_high"], 100
        ),
        fmt="none",
        ecolor="#9aa3ad",
        lw=1.5,
    )
    ax.scatter(table["churn_rate"] * 100, y, c=list(colors), zorder=3, s=28)
    ax.axvline(result.overall["churn_rate"] * 100, ls="--", color="#56606b", lw=1)
    ax.set_yticks(y)
    ax.set_yticklabels(
        [f"{a}: {lv}" for a, lv in zip(table["attribute"], table["level"], strict=True)]
    )
    ax.set_xlabel("Churns per 100 customer-years (95% exact interval)")
    ax.set_title("Churn rate by segment (dashed: all customers)")
    ax.set_xlim(left=0)
    return ax


def plot_retention(result: ChurnResult, attribute: str | None = None, *, ax=None):
    """Kaplan-Meier retention curves of one attribute's levels (overall when None)."""
    from icp_research.methods.survival import plot_survival

    curve = result.overall_curve if attribute is None else result.curves[attribute]
    ax = plot_survival(curve, ax=ax, at_risk=False)
    ax.set_xlabel("Months as a customer")
    ax.set_ylabel("Still a customer")
    ax.set_title("Retention of all customers" if attribute is None else f"Retention by {attribute}")
    return ax


def retention_figures(result: ChurnResult):
    """Retention curves of the attributes whose curves differ, as report HTML."""
    from icp_research.reporting import display as report

    if result.overall_curve is None:
        return report.not_enough_evidence("retention curves", "there are no customers.")
    parts = [report.figure(plot_retention(result), alt="Kaplan-Meier retention of all customers")]
    for name in result.curves:
        parts.append(
            report.figure(
                plot_retention(result, name),
                alt=f"Kaplan-Meier retention by {name}, with 95% bands",
            )
        )
    html = parts[0]
    for part in parts[1:]:
        html = html + part
    return html


def plot_reasons(result: ChurnResult, *, ax=None):
    """Share of churns per reason (all churned customers), horizontal bars. Returns the Axes."""
    import matplotlib.pyplot as plt

    reasons = result.tables.get("churn_reasons", pd.DataFrame())
    overall = (
        reasons[reasons["attribute"] == "all"].sort_values("churned") if len(reasons) else reasons
    )
    if ax is None:
        _, ax = plt.subplots(figsize=(7, max(2.5, 0.35 * len(overall) + 1)))
    if overall.empty:
        ax.text(0.5, 0.5, "No churn reasons", ha="center", va="center", transform=ax.transAxes)
        ax.set_axis_off()
        return ax
    ax.barh(overall["reason"], overall["share"] * 100, color="#0173b2")
    ax.errorbar(
        overall["share"] * 100,
        np.arange(len(overall)),
        xerr=error_bars(overall["share"], overall["share_ci_low"], overall["share_ci_high"], 100),
        fmt="none",
        ecolor="#333333",
        lw=1,
    )
    ax.set_xlabel("Share of churned customers (%)")
    ax.set_title("Why customers churn")
    return ax


def save_artifacts(study: Study, result: ChurnResult) -> list[Path]:
    """Write the churn tables and exclude rules declared in the registry, and the result."""
    written = study.save_artifact(
        registry.CHURN, {"overall": result.overall, "not_computed": result.not_computed}
    )
    for artifact, key in (
        (registry.CHURN_BY_ATTRIBUTE, "churn_by_attribute"),
        (registry.CHURN_REASONS, "churn_reasons"),
        (registry.RETENTION_CURVES, "retention_curves"),
        (registry.CHURN_COX, "cox"),
    ):
        written += study.save_artifact(artifact, result.tables[key])
    written += study.save_artifact(
        registry.ANTI_PATTERNS_CHURN, ap.to_csv_frame(result.anti_patterns)
    )
    study.save_result(result, "churn")
    return written
