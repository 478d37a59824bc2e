"""Lost-deal analysis: where new business is lost, stalls in "no decision", or drags on.

Every question is asked of new-business deals (expansion and renewal deals are open to customers
only and would flatter every segment), and every answer treats the *account* as the independent
unit: deals of one account share its budget, its people and its fit, so a hundred deals of one
account are not a hundred pieces of evidence. Concretely:

- win rate and "no decision" share per attribute level: pooled over the level's deals, with a
  cluster-robust (ratio-estimator) interval over accounts
  (:func:`icp_research.methods.stats.clustered_rate_ci`) and a cluster-robust score test of the level
  against the rest (:func:`icp_research.methods.stats.clustered_rate_test`, t reference with
  ``min(accounts) - 1`` degrees of freedom); levels with fewer than ``min_accounts`` accounts
  are not tested. Benjamini-Hochberg over each family (all levels of all attributes);
- loss reasons overall and per level, with the amount lost, "no decision" singled out;
- sales-cycle length per level as time-to-close curves, open deals censored at the as-of date
  (:func:`icp_research.methods.survival.time_to_close`), not dropped;
- won deal size per level (mean with a cluster-robust interval, and the median);
- a stage funnel when the data has stage history (it usually does not; the result says so);
- anti-patterns: levels with a significantly lower win rate or a higher "no decision" share, as
  candidate exclude rules (:mod:`icp_research.analyses.antipatterns`), checked against each other with
  a logistic GEE clustered by account.

Rates are fractions; durations in days; money in the export's currency.
"""

from __future__ import annotations

import re
import warnings
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
import pandas as pd

from icp_research.analyses import antipatterns as ap
from icp_research.analyses import registry
from icp_research.data.facts import DEAL_FACT_COLUMNS, NO_DECISION
from icp_research.data.study import Study
from icp_research.formatting import (
    error_bars,
    fmt_count,
    fmt_money,
    fmt_number,
    fmt_pct,
    fmt_rate_ci,
)
from icp_research.methods.stats import (
    adjust_pvalues,
    clustered_rate_ci,
    clustered_rate_test,
    clustered_ratio_ci,
    effective_clusters,
    shrink_rates,
)
from icp_research.methods.survival import SurvivalResult, time_to_close
from icp_research.result import Result, View

NO_REASON = "(no reason recorded)"
CYCLE_HORIZONS = {"30 days": 30.0, "90 days": 90.0, "180 days": 180.0}

RATE_COLUMNS = [
    "attribute",
    "level",
    "rule",
    "accounts",
    "deals",
    "events",
    "rate",
    "ci_low",
    "ci_high",
    "rate_shrunk",
    "rate_rest",
    "ratio",
    "ratio_ci_low",
    "ratio_ci_high",
    "p_value",
    "q_value",
    "significant",
    "direction",
    "note",
]


@dataclass(repr=False)
class DealsResult(Result):
    """What :func:`lost_deal_analysis` found.

    ``summary`` is the win-rate-by-attribute table; ``tables`` holds ``win_rate_by_attribute``,
    ``no_decision_by_attribute``, ``loss_reasons``, ``sales_cycle_by_segment``,
    ``deal_size_by_segment``, ``stage_funnel`` and ``anti_patterns``.
    """

    overall: dict = field(default_factory=dict)
    cycle_curves: dict = field(default_factory=dict)
    overall_cycle: SurvivalResult | None = None
    funnel: Result | None = None
    anti_patterns: pd.DataFrame = field(default_factory=ap.empty)
    not_computed: dict = field(default_factory=dict)

    def views(self) -> dict:
        """The tables of the lost-deal report by name, each with its reason when empty (see
        :func:`report_views`)."""
        return report_views(self)


def lost_deal_analysis(
    study: Study,
    *,
    attributes: list[str] | None = None,
    n_bins: int = 5,
    min_accounts: int = 5,
    cycle_curves: tuple = ("size_segment",),
    anti_patterns_only: bool = False,
) -> DealsResult:
    """Win rate, loss reasons, "no decision", sales cycle and deal size by attribute level.

    Parameters
    ----------
    study : Study
        Needs an opportunities table.
    attributes : list of str, optional
        Account attributes to compare (default: the study's pre-sale candidates, plus the
        configured size segments).
    n_bins : int
        Quantile bins per numeric attribute (the same cut points as the churn report).
    min_accounts : int
        A level (and the rest) needs at least this many accounts with closed deals to be tested.
    cycle_curves : tuple of str
        Attributes whose time-to-close curves are kept for plotting (the table covers all).
    anti_patterns_only : bool
        Only what the anti-patterns need (the blueprint's use): the result then holds
        ``anti_patterns`` and the rate tables they come from, without the sales cycle, deal
        sizes, funnel, findings and caveats.

    Returns
    -------
    DealsResult
        ``tables['win_rate_by_attribute']`` (and ``no_decision_by_attribute``): one row per
        attribute level with ``accounts`` (with closed deals), ``deals`` (closed new-business
        deals; lost deals for "no decision"), ``events`` (won; "no decision" losses), ``rate``
        with a cluster-robust ``ci_low`` / ``ci_high``, ``rate_rest``, ``ratio`` (level / rest)
        with its interval, ``p_value``, ``q_value`` (BH over the family), ``significant``,
        ``direction`` (``lower`` / ``higher``) and ``note`` (why a level was not tested).
        ``rate_shrunk`` is the empirical-Bayes rate
        (:func:`icp_research.methods.stats.shrink_rates`, a beta prior fitted over the levels of
        the same attribute, on deal counts): small levels pulled toward the attribute's pooled
        rate; levels are ranked by it in the findings.
    """
    alpha = study.alpha
    method = study.analysis.get("correction", "fdr_bh")
    title = "Lost-deal analysis"
    caveats: list[str] = []
    not_computed: dict = {}
    deals = study.deals
    if deals.empty:
        reason = study.absent("opportunities") + "."
        return DealsResult(
            title=title,
            caveats=[f"Deals could not be analysed: {reason}"],
            tables=_empty_tables(),
            funnel=stage_funnel(study),
            not_computed={
                part: reason
                for part in ("deals", "loss reasons", "no decision", "sales cycle", "deal size")
            },
        )
    facts = study.facts
    # The deals' own columns, then the rows: the account attributes joined onto every deal are
    # not read here (the levels come from the account facts), and at 10M deals a copy of them
    # is gigabytes.
    own = set(study.tables["opportunities"].columns) | set(DEAL_FACT_COLUMNS)
    new = deals.loc[deals["is_new_business"], [c for c in deals.columns if c in own]]
    if len(new) < len(deals):
        caveats.append(
            f"Only new-business deals are analysed ({fmt_number(len(new))} of "
            f"{fmt_number(len(deals))}); expansion and renewal deals are open to customers only "
            "and would inflate every win rate."
        )
    known_accounts = set(facts["account_id"].unique())
    attributed = new["account_id"].isin(known_accounts)
    closed_all = new[new["is_closed"].astype(bool)]
    no_account = closed_all["account_id"].isna()
    unattributed = int((~closed_all["account_id"].isin(known_accounts) & ~no_account).sum())
    if unattributed:
        caveats.append(
            f"{fmt_number(unattributed)} closed deals are at accounts the accounts table does not "
            "hold: they count in the overall win rate, but in no segment (deals are compared by "
            "their account's attributes)."
        )
    if no_account.any():
        # Not clustered by account, so in no rate: the overview leaves them out too.
        caveats.append(
            f"{fmt_number(int(no_account.sum()))} closed deals have no account: they are left "
            "out of every win rate (the intervals are clustered by account), as in the overview."
        )
    closed = new[new["is_closed"].astype(bool) & attributed].copy()
    open_unattributed = int((~attributed & (new["stage"] == "open")).sum())
    if open_unattributed:
        caveats.append(
            f"{fmt_number(open_unattributed)} open deals have no known account: they count in "
            "the overall sales cycle but in no segment."
        )

    names = attributes if attributes is not None else study.attributes.all
    spec = study.attributes
    levels = ap.segment_levels(
        facts,
        categorical=[a for a in names if a in spec.categorical or a not in spec.numeric],
        numeric=[a for a in names if a in spec.numeric],
        n_bins=n_bins,
        min_level_count=int(study.analysis["min_level_count"]),
        segments=study.config.segments,
    )
    by_account = levels.labels.set_index("account_id")
    new_labels = by_account.reindex(new["account_id"]).set_axis(new.index)

    # The overall rate counts every closed deal with an account, as the overview does; the
    # segments, only those whose account (and so its attributes) is known.
    overall = _overall(closed_all[closed_all["account_id"].notna()], new, alpha, study)
    # Outcomes that never vary in this export (every deal won, same-day closes): said plainly.
    unmeasurable = study.variation
    overall["not_measurable"] = {
        k: unmeasurable[k] for k in ("won", "sales_cycle") if k in unmeasurable
    }
    findings = [_overall_sentence(overall)]
    caveats.append(_cluster_caveat(overall))

    has_reasons = "loss_reason" in new and new["loss_reason"].notna().any()
    accounts = _per_account(closed, new, has_reasons)
    account_labels = by_account.reindex(accounts.index)
    # Linked accounts (subsidiaries of one parent) are one independent unit in every test.
    units = _unit_codes(study, accounts.index)
    win_rate = _rate_by_attribute(
        accounts,
        account_labels,
        levels,
        events="won",
        trials="closed",
        alpha=alpha,
        method=method,
        min_accounts=min_accounts,
        units=units,
    )
    lost = closed[closed["stage"] == "lost"]
    if has_reasons and len(lost):
        no_decision = _rate_by_attribute(
            accounts,
            account_labels,
            levels,
            events="no_decision",
            trials="lost",
            alpha=alpha,
            method=method,
            min_accounts=min_accounts,
            units=units,
        )
        reasons = _loss_reasons(lost, account_labels, levels, alpha, method, min_accounts, study)
        overall["no_decision_share"] = _pooled(
            *_by_unit(units, accounts["no_decision"], accounts["lost"]), alpha
        )
    else:
        reason = (
            "the opportunities table has no loss_reason column"
            if "loss_reason" not in new
            else "no lost deal has a loss reason"
        )
        not_computed["loss reasons"] = reason
        not_computed["no decision"] = reason
        caveats.append(f"Loss reasons and 'no decision' not analysed: {reason}.")
        no_decision = pd.DataFrame(columns=RATE_COLUMNS)
        reasons = pd.DataFrame(columns=_REASON_COLUMNS)

    anti = _anti_patterns(accounts, account_labels, levels, win_rate, no_decision, reasons, alpha)
    # Rules and levels in words for the report ("with no CRM"); "rule" keeps the code form.
    anti = ap.in_words(anti, ap.labels_of(study), alpha)
    if len(anti) and spec.contract:
        # A term of the contract (plan, tier, billing period) is set at the sale, and a CRM
        # often fills it from what the customer pays: never a kind of company to turn away
        # (the blueprint uses none as a rule), so not a candidate exclude rule either.
        contract = anti["attribute"].isin(list(spec.contract)) & (anti["status"] == "candidate")
        anti.loc[contract, "status"] = "contract term"
    if anti_patterns_only:
        # Sales cycle, deal size and funnel are work that no anti-pattern reads.
        return DealsResult(
            title=title,
            summary=win_rate,
            tables={
                "win_rate_by_attribute": win_rate,
                "no_decision_by_attribute": no_decision,
                "loss_reasons": reasons,
                "anti_patterns": anti,
            },
            anti_patterns=anti,
            not_computed=not_computed,
        )

    # Cycle curves for the size segments and for attributes whose win rate differs: enough to
    # see where deals drag, without a curve per noise attribute.
    cycle_attributes = [
        a
        for a in levels.attributes
        if a in cycle_curves or a in set(win_rate.loc[win_rate["significant"], "attribute"])
    ]
    cycle_table, overall_cycle, curves = _sales_cycle(
        study, new, new_labels, levels, cycle_attributes, cycle_curves
    )
    if overall_cycle is None:
        not_computed["sales cycle"] = "no deal has a creation date"
    size = _deal_size(closed, account_labels, levels, alpha)
    if size.empty:
        not_computed["deal size"] = "won deals have no amount"
    funnel = stage_funnel(study)
    if not funnel.ok:
        not_computed["stage funnel"] = funnel.caveats[0] if funnel.caveats else "no stage history"
    if len(win_rate):
        win_rate = ap.level_words(win_rate, levels, ap.labels_of(study))
    findings += _findings(win_rate, no_decision, reasons, overall, cycle_table, anti, has_reasons)
    tables = {
        "win_rate_by_attribute": win_rate,
        "no_decision_by_attribute": no_decision,
        "loss_reasons": reasons,
        "sales_cycle_by_segment": cycle_table,
        "deal_size_by_segment": size,
        "stage_funnel": funnel.summary,
        "anti_patterns": anti,
    }
    caveats.append(
        "Each level is compared with the deals of all other accounts; q-values are "
        "Benjamini-Hochberg corrected within each family (win rate, 'no decision', loss "
        "reasons) over every level of every attribute tested."
    )
    caveats.append(
        "Shrunk rates (rate_shrunk) are empirical-Bayes estimates: a beta prior fitted over the "
        "levels of each attribute pulls levels with few deals toward that attribute's pooled "
        "rate. The prior counts deals as independent; with deals clustered by account a level "
        "of few accounts is shrunk less than its evidence warrants."
    )
    return DealsResult(
        title=title,
        summary=win_rate,
        findings=findings,
        caveats=caveats,
        tables=tables,
        params={
            "as_of": f"{study.as_of:%Y-%m-%d}",
            "n_bins": n_bins,
            "min_accounts": min_accounts,
            "alpha": alpha,
            "correction": method,
        },
        overall=overall,
        cycle_curves=curves,
        overall_cycle=overall_cycle,
        funnel=funnel,
        anti_patterns=anti,
        not_computed=not_computed,
    )


# ---------------------------------------------------------------------------------------------
# Overall


def _pooled(events, trials, alpha: float) -> dict:
    rate, low, high, k = clustered_rate_ci(events, trials, alpha)
    return {
        "rate": rate,
        "ci_low": low,
        "ci_high": high,
        "n": int(np.sum(trials)),
        "events": int(np.sum(events)),
        "accounts": int(k),
    }


def _overall(closed: pd.DataFrame, new: pd.DataFrame, alpha: float, study: Study) -> dict:
    per_account = (
        closed.assign(won=closed["stage"].eq("won").astype(int))
        .groupby("account_id")["won"]
        .agg(won="sum", closed="size")
    )
    units = _unit_codes(study, per_account.index)
    out = {
        "win_rate": _pooled(*_by_unit(units, per_account["won"], per_account["closed"]), alpha)
        if len(per_account)
        else {}
    }
    if len(per_account) and units is not None:
        out["win_rate"]["accounts"] = len(per_account)
        out["cluster"], out["units"] = "account or group", "accounts or groups"
    out["deals_per_account_median"] = (
        float(per_account["closed"].median()) if len(per_account) else np.nan
    )
    out["deals_per_account_max"] = int(per_account["closed"].max()) if len(per_account) else 0
    out["open_deals"] = int((new["stage"] == "open").sum())
    out["closed_deals"] = int(len(closed))
    return out


def _per_account(closed: pd.DataFrame, new: pd.DataFrame, has_reasons: bool) -> pd.DataFrame:
    """Per account: closed, won and lost new-business deals, 'no decision' losses, open
    pipeline, won amount. Attributes are account-level, so every test runs on these counts."""
    stage = closed["stage"]
    grouped = closed.assign(
        won=(stage == "won").astype(int),
        lost=(stage == "lost").astype(int),
        no_decision=(closed["no_decision"].fillna(False).astype(bool) & (stage == "lost")).astype(
            int
        )
        if has_reasons
        else 0,
        won_amount=closed["amount"].where(stage == "won") if "amount" in closed else np.nan,
        won_with_amount=((stage == "won") & closed["amount"].notna()).astype(int)
        if "amount" in closed
        else 0,
    ).groupby("account_id")
    accounts = grouped.agg(
        closed=("won", "size"),
        won=("won", "sum"),
        lost=("lost", "sum"),
        no_decision=("no_decision", "sum"),
        won_amount=("won_amount", "sum"),
        won_with_amount=("won_with_amount", "sum"),
    )
    if "amount" in new:
        open_amount = new[new["stage"] == "open"].groupby("account_id")["amount"].sum()
        accounts["open_pipeline"] = open_amount.reindex(accounts.index).fillna(0.0)
        extra = open_amount.index.difference(accounts.index)
        if len(extra):
            accounts = pd.concat(
                [accounts, pd.DataFrame({"open_pipeline": open_amount[extra]})]
            ).fillna({c: 0 for c in accounts.columns if c != "open_pipeline"})
    else:
        accounts["open_pipeline"] = np.nan
    return accounts


def _overall_sentence(overall: dict) -> str:
    w = overall["win_rate"]
    if not w or not w["n"]:
        return "No closed new-business deals with a known account: no win rate to compute."
    if "won" in overall.get("not_measurable", {}):
        return (
            f"{fmt_number(w['n'])} closed new-business deals at {fmt_number(w['accounts'])} "
            f"accounts: the win rate is not measurable, {overall['not_measurable']['won']}; "
            f"{fmt_number(overall['open_deals'])} deals still open."
        )
    return (
        f"{fmt_number(w['n'])} closed new-business deals at {fmt_number(w['accounts'])} accounts: "
        f"win rate {fmt_pct(w['rate'])} ({fmt_pct(w['ci_low'])}–{fmt_pct(w['ci_high'])}, "
        f"clustered by {overall.get('cluster', 'account')}); "
        f"{fmt_number(overall['open_deals'])} deals still open."
    )


def _cluster_caveat(overall: dict) -> str:
    text = (
        "Deals cluster by account: intervals and tests treat accounts, not deals, as the "
        "independent units (cluster-robust), so a segment of a few accounts with many deals "
        "does not produce a confident claim."
    )
    if "units" in overall:
        text += (
            " Accounts linked to one parent company are one unit here: a parent's subsidiaries "
            "buy together, so a segment that holds one group holds one unit of evidence."
        )
    if overall["deals_per_account_max"] > 20:
        text += (
            f" Here clustering is heavy: up to {fmt_number(overall['deals_per_account_max'])} "
            f"closed deals per account (median {overall['deals_per_account_median']:.0f}), so "
            "the intervals are much wider than deal counts suggest."
        )
    return text


# ---------------------------------------------------------------------------------------------
# Rates by attribute


def _unit_codes(study: Study, account_ids) -> np.ndarray | None:
    """The independent unit of each account as integer codes: its group of linked accounts
    (:meth:`~icp_research.data.study.Study.cluster_ids`); None when no account is linked, and
    each account is its own unit."""
    if not study.account_groups[1]:
        return None
    return pd.factorize(study.cluster_ids(pd.Series(account_ids, dtype=object)))[0]


def _by_unit(units: np.ndarray | None, *counts) -> tuple:
    """Per-account ``counts`` summed per independent unit (``units`` from :func:`_unit_codes`,
    aligned with them); unchanged when ``units`` is None. Units without any count are dropped."""
    arrays = [np.asarray(c, dtype=float) for c in counts]
    if units is None:
        return tuple(arrays)
    summed = [np.bincount(units, weights=a) for a in arrays]
    present = np.bincount(units) > 0
    return tuple(a[present] for a in summed)


def _rate_by_attribute(
    accounts, labels, levels, *, events, trials, alpha, method, min_accounts, units=None
):
    """Cluster-robust rate of ``events / trials`` per level against the rest (accounts are the
    clusters; ``accounts`` holds one row per account). With ``units`` (each account's group of
    linked accounts, :func:`_unit_codes`) the groups are: a level's accounts of one group are
    one cluster, as are the rest's."""
    rows = []
    has_trials = (accounts[trials] > 0).to_numpy()
    k = accounts[events].to_numpy(dtype=float)[has_trials]
    n = accounts[trials].to_numpy(dtype=float)[has_trials]
    codes = None if units is None else units[has_trials]
    for name in levels.attributes:
        column = labels[name].to_numpy(dtype=object)[has_trials]
        for level in levels.order[name]:
            inside = column == level
            if not inside.any():
                continue
            row = _level_row(
                name,
                level,
                levels,
                _by_unit(None if codes is None else codes[inside], k[inside], n[inside]),
                _by_unit(None if codes is None else codes[~inside], k[~inside], n[~inside]),
                alpha=alpha,
                min_accounts=min_accounts,
                unit="account" if codes is None else "account or group",
            )
            row["accounts"] = int(inside.sum())
            rows.append(row)
    columns = [
        c for c in RATE_COLUMNS if c not in ("q_value", "significant", "direction", "rate_shrunk")
    ]
    table = pd.DataFrame(rows, columns=columns)
    # Empirical-Bayes rates, one beta prior per attribute fitted over its levels (deal counts).
    table["rate_shrunk"] = np.nan
    for _, part in table.groupby("attribute", sort=False):
        shrunk = shrink_rates(part["events"].to_numpy(float), part["deals"].to_numpy(float))
        table.loc[part.index, "rate_shrunk"] = shrunk["rate_shrunk"]
    table["q_value"] = adjust_pvalues(table["p_value"], method)
    table["significant"] = table["q_value"] < alpha
    table["direction"] = np.select(
        [table["significant"] & (table["ratio"] < 1), table["significant"]], ["lower", "higher"], ""
    )
    return table[RATE_COLUMNS]


def _level_row(name, level, levels, part, rest, *, alpha, min_accounts, unit="account") -> dict:
    rate, low, high, k = clustered_rate_ci(part[0], part[1], alpha)
    rate_rest, _, _, k_rest = clustered_rate_ci(rest[0], rest[1], alpha)
    note = ""
    p = np.nan
    if k < min_accounts:
        note = f"only {fmt_count(k, unit)}: not tested"
    elif k_rest < min_accounts:
        note = f"only {fmt_count(k_rest, 'other ' + unit)}: not tested"
    else:
        p = clustered_rate_test(part[0], part[1], rest[0], rest[1])
    ratio, ratio_low, ratio_high = _ratio_ci(part, rest, alpha, p)
    return {
        "attribute": name,
        "level": level,
        "rule": levels.conditions[(name, level)].text(),
        "accounts": int(k),
        "deals": int(part[1].sum()),
        "events": int(part[0].sum()),
        "rate": rate,
        "ci_low": low,
        "ci_high": high,
        "rate_rest": rate_rest,
        "ratio": ratio,
        "ratio_ci_low": ratio_low,
        "ratio_ci_high": ratio_high,
        "p_value": p,
        "note": note,
    }


def _ratio_ci(part, rest, alpha, p_value=np.nan):
    """Ratio of two pooled rates with a delta-method interval from the clustered variances.

    The interval is at least as wide as the level's test (``p_value``) implies: when every
    cluster of a level agrees (three groups of subsidiaries that won nearly all), their own
    variance is small where the test, around the pooled rate, finds little evidence; an
    interval that excluded 1 beside a p-value above alpha would say two things at once."""
    from scipy import stats as sps

    r1, _, _, k1, se1 = clustered_ratio_ci(part[0], part[1], alpha)
    r2, _, _, k2, se2 = clustered_ratio_ci(rest[0], rest[1], alpha)
    if k1 == 0 or k2 == 0 or not r2:
        return np.nan, np.nan, np.nan
    ratio = r1 / r2
    if r1 <= 0 or np.isnan(se1) or np.isnan(se2):
        return ratio, np.nan, np.nan
    se_log = np.sqrt((se1 / r1) ** 2 + (se2 / r2) ** 2)
    # The t of the level's test, on the smaller effective number of clusters (Kish): a level
    # of a few accounts (or groups) with many deals weighs like those few here too, so the
    # interval does not exclude 1 where the test finds nothing.
    df = max(min(effective_clusters(part[1]), effective_clusters(rest[1])) - 1, 1.0)
    t = sps.t.ppf(1 - alpha / 2, df)
    if 0 < p_value < 1 and ratio != 1:
        se_log = max(se_log, abs(np.log(ratio)) / sps.t.isf(p_value / 2, df))
    return ratio, ratio * np.exp(-t * se_log), ratio * np.exp(t * se_log)


# ---------------------------------------------------------------------------------------------
# Loss reasons

_REASON_COLUMNS = [
    "attribute",
    "level",
    "reason",
    "lost_deals",
    "accounts",
    "share",
    "ci_low",
    "ci_high",
    "share_rest",
    "amount_lost",
    "p_value",
    "q_value",
    "over_represented",
    "is_no_decision",
]


def _reason_labels(lost: pd.DataFrame) -> pd.Series:
    reason = lost["loss_reason"].astype("string").str.strip()
    return reason.mask(reason.isna() | (reason == ""), NO_REASON).astype(object)


def _crosstab(rows: pd.Series, columns: pd.Series) -> pd.DataFrame:
    """``pd.crosstab(rows, columns)`` (rows and columns sorted, pairs with a missing value left
    out) counted on integer codes: a million lost deals by account and reason in a fraction of
    the time the grouping by two text keys takes."""
    known = (rows.notna() & columns.notna()).to_numpy(dtype=bool)
    row_codes, row_names = pd.factorize(rows[known], sort=True)
    column_codes, column_names = pd.factorize(columns[known], sort=True)
    width = len(column_names)
    cells = np.bincount(row_codes * width + column_codes, minlength=len(row_names) * width)
    return pd.DataFrame(
        cells.reshape(len(row_names), width),
        index=pd.Index(row_names, name=rows.name),
        columns=pd.Index(column_names, name=columns.name),
    )


def _loss_reasons(lost, account_labels, levels, alpha, method, min_accounts, study) -> pd.DataFrame:
    """Share of lost deals per reason, overall and per level (clustered by account, or by group
    of linked accounts)."""
    lost = lost.assign(reason=_reason_labels(lost))
    reasons = lost["reason"].value_counts().index.tolist()
    counts = _crosstab(lost["account_id"], lost["reason"]).reindex(columns=reasons)
    trials = counts.sum(axis=1).to_numpy(dtype=float)
    amounts = (
        lost.pivot_table(index="account_id", columns="reason", values="amount", aggfunc="sum")
        .reindex(index=counts.index, columns=reasons)
        .fillna(0.0)
        if "amount" in lost and lost["amount"].notna().any()
        else None
    )
    is_no_decision = lost.groupby("reason")["no_decision"].apply(
        lambda s: bool(s.fillna(False).astype(bool).mean() > 0.5)
    )
    labels = account_labels.reindex(counts.index)
    units = _unit_codes(study, counts.index)
    rows = []

    def add(attribute, level, inside):
        mine = None if units is None else units[inside]
        theirs = None if units is None else units[~inside]
        for reason in reasons:
            hits = counts[reason].to_numpy(dtype=float)
            part = _by_unit(mine, hits[inside], trials[inside])
            rest = _by_unit(theirs, hits[~inside], trials[~inside])
            share, low, high, k = clustered_rate_ci(*part, alpha)
            share_rest = rest[0].sum() / rest[1].sum() if rest[1].sum() else np.nan
            p = np.nan
            if attribute != "all" and k >= min_accounts and rest[1].size >= min_accounts:
                p = clustered_rate_test(*part, *rest)
            rows.append(
                {
                    "attribute": attribute,
                    "level": level,
                    "reason": reason,
                    "lost_deals": int(hits[inside].sum()),
                    "accounts": int(np.count_nonzero(trials[inside])),
                    "share": share,
                    "ci_low": low,
                    "ci_high": high,
                    "share_rest": share_rest,
                    "amount_lost": float(amounts[reason].to_numpy()[inside].sum())
                    if amounts is not None
                    else np.nan,
                    "p_value": p,
                    "is_no_decision": bool(is_no_decision.get(reason, False)),
                }
            )

    add("all", "all", np.ones(len(counts), dtype=bool))
    for name in levels.attributes:
        column = labels[name].to_numpy(dtype=object)
        for level in levels.order[name]:
            inside = column == level
            if inside.any():
                add(name, level, inside)
    table = pd.DataFrame(rows)
    table["q_value"] = adjust_pvalues(table["p_value"], method)
    table["over_represented"] = (table["q_value"] < alpha) & (table["share"] > table["share_rest"])
    return table[_REASON_COLUMNS]


# ---------------------------------------------------------------------------------------------
# Sales cycle and deal size


def _sales_cycle(study, new, labels, levels, attributes, keep_curves):
    """Time to close per level; open deals censored at the as-of date."""
    columns = [
        "attribute",
        "level",
        "deals",
        "closed",
        "open",
        "median_days",
        "median_ci_low",
        "median_ci_high",
        *[f"still_open_{k.split()[0]}d" for k in CYCLE_HORIZONS],
    ]
    if "created_at" not in new or new["created_at"].notna().sum() == 0:
        return pd.DataFrame(columns=columns), None, {}
    overall = time_to_close(new, as_of=study.as_of, horizons=CYCLE_HORIZONS, alpha=study.alpha)
    rows = [_cycle_row("all", overall.summary.iloc[0])]
    curves = {}
    attributed = labels.notna().any(axis=1).to_numpy()
    base = new.loc[attributed, ["stage", "created_at", "closed_at"]]
    for name in attributes:
        level = labels.loc[attributed, name].to_numpy(dtype=object)
        present = [lv for lv in levels.order[name] if (level == lv).any()]
        frame = base.assign(**{name: pd.Categorical(level, categories=present)})
        result = time_to_close(
            frame, as_of=study.as_of, by=name, horizons=CYCLE_HORIZONS, alpha=study.alpha
        )
        for _, info in result.summary.iterrows():
            if info["n"] > 0:
                rows.append(_cycle_row(name, info))
        if name in keep_curves:
            curves[name] = result
    return pd.DataFrame(rows)[columns], overall, curves


def _cycle_row(attribute: str, info) -> dict:
    row = {
        "attribute": attribute,
        "level": info["group"],
        "deals": int(info["n"]),
        "closed": int(info["events"]),
        "open": int(info["censored"]),
        "median_days": info["median"],
        "median_ci_low": info["median_ci_low"],
        "median_ci_high": info["median_ci_high"],
    }
    for key in CYCLE_HORIZONS:
        row[f"still_open_{key.split()[0]}d"] = info.get(f"survival_{key.replace(' ', '_')}", np.nan)
    return row


def _deal_size(closed, account_labels, levels, alpha) -> pd.DataFrame:
    """Won new-business deal size per level: mean (clustered interval) and median."""
    columns = [
        "attribute",
        "level",
        "won_deals",
        "accounts",
        "mean_amount",
        "mean_ci_low",
        "mean_ci_high",
        "median_amount",
        "total_amount",
    ]
    if "amount" not in closed:
        return pd.DataFrame(columns=columns)
    won = closed[(closed["stage"] == "won") & closed["amount"].notna()]
    if won.empty:
        return pd.DataFrame(columns=columns)
    per_account = won.groupby("account_id")["amount"].agg(["sum", "size"])
    labels = account_labels.reindex(per_account.index)
    deal_labels = account_labels.reindex(won["account_id"])

    def row(attribute, level, inside, deal_inside):
        part = per_account[inside]
        mean, low, high, k, _ = clustered_ratio_ci(part["sum"], part["size"], alpha)
        amounts = won["amount"].to_numpy()[deal_inside]
        return {
            "attribute": attribute,
            "level": level,
            "won_deals": int(part["size"].sum()),
            "accounts": int(k),
            "mean_amount": mean,
            "mean_ci_low": low,
            "mean_ci_high": high,
            "median_amount": float(np.median(amounts)),
            "total_amount": float(amounts.sum()),
        }

    rows = [row("all", "all", np.ones(len(per_account), bool), np.ones(len(won), bool))]
    for name in levels.attributes:
        column = labels[name].to_numpy(dtype=object)
        deal_column = deal_labels[name].to_numpy(dtype=object)
        for level in levels.order[name]:
            inside = column == level
            if inside.any():
                rows.append(row(name, level, inside, deal_column == level))
    return pd.DataFrame(rows, columns=columns)


# ---------------------------------------------------------------------------------------------
# Stage funnel


def _stage_order(reached: pd.DataFrame, counts: pd.Series) -> list:
    """Stages in the order deals pass through them, from each deal's own sequence (deals start
    on different dates, so calendar dates say nothing of the order): a stage comes before
    another when, of the deals that entered both, more entered it first; stages are ranked by
    how many others they come before (a closed stage, entered last, comes last), then by how
    many deals reached them. A history without dates is in the order its rows were exported."""
    place = reached.groupby("opportunity_id", sort=False).cumcount().to_numpy()
    deal = pd.factorize(reached["opportunity_id"])[0]
    stage_codes, names = pd.factorize(reached["stage"])
    positions = np.full((deal.max() + 1, len(names)), np.nan)
    positions[deal, stage_codes] = place
    wins = np.zeros(len(names))
    for a in range(len(names)):
        both = ~np.isnan(positions[:, a, None]) & ~np.isnan(positions)
        first = np.sum((positions[:, a, None] < positions) & both, axis=0)
        later = np.sum((positions[:, a, None] > positions) & both, axis=0)
        wins[a] = np.sum(first > later)
    order = pd.DataFrame({"stage": names, "wins": wins, "deals": counts.reindex(names).to_numpy()})
    return order.sort_values(["wins", "deals"], ascending=False, kind="stable")["stage"].tolist()


def stage_funnel(study: Study) -> Result:
    """Share of new-business deals that reached each stage, when stage history exists.

    Stage history is a ``stage_history`` table (``opportunity_id``, ``stage``, optionally
    ``entered_at``): one row per deal and stage it entered. Most CRM exports only hold the
    current stage; then the result is empty and its caveat says so. ``summary``: ``stage`` (in
    the order deals reach them: by median entry date, else by how many deals reached them),
    ``deals`` reaching it, ``share`` of all deals, ``conversion`` from the previous stage.
    """
    title = "Stage funnel"
    history = study.tables.get("stage_history")
    if history is None or history.empty or not {"opportunity_id", "stage"} <= set(history):
        return Result(
            title=title,
            caveats=[
                "The opportunities table records only each deal's current stage (won / lost / "
                "open), not the stages it passed through, so there is no stage funnel. Export "
                "the stage history (one row per deal and stage change, such as Salesforce's "
                "Opportunity History) and read it with history = true under "
                "[tables.opportunities], or as a [tables.stage_history] table, to get one."
            ],
        )
    if "entered_at" in history and history["entered_at"].notna().any():
        history = history.assign(_row=np.arange(len(history))).sort_values(
            ["opportunity_id", "entered_at", "_row"], kind="stable"
        )
    reached = history.drop_duplicates(["opportunity_id", "stage"])
    counts = reached.groupby("stage")["opportunity_id"].nunique()
    stages = _stage_order(reached, counts)
    total = reached["opportunity_id"].nunique()
    summary = pd.DataFrame({"stage": stages, "deals": counts.reindex(stages).to_numpy()})
    summary["share"] = summary["deals"] / total
    summary["conversion"] = summary["deals"] / summary["deals"].shift(1)
    return Result(title=title, summary=summary)


# ---------------------------------------------------------------------------------------------
# Anti-patterns


def _anti_patterns(accounts, labels, levels, win_rate, no_decision, reasons, alpha):
    """Levels with a significantly lower win rate or a larger 'no decision' share."""
    all_labels = levels.labels
    parts = []
    specs = [
        (
            "win_rate",
            win_rate[win_rate["direction"] == "lower"],
            win_rate[win_rate["direction"] == "higher"],
            "won",
            "closed",
        )
    ]
    if len(no_decision):
        specs.append(
            (
                "no_decision",
                no_decision[no_decision["direction"] == "higher"],
                no_decision[no_decision["direction"] == "lower"],
                "no_decision",
                "lost",
            )
        )
    for outcome, worse, better, events, trials in specs:
        if worse.empty:
            continue
        worse = worse.sort_values(["q_value", "ratio"], ascending=[True, outcome == "win_rate"])
        keep = (accounts[trials] > 0).to_numpy()
        model_frame = pd.DataFrame(
            {
                "events": accounts[events].to_numpy(dtype=float)[keep],
                "trials": accounts[trials].to_numpy(dtype=float)[keep],
            }
        )
        model_labels = labels[keep]
        # The levels that do significantly better are in every candidate's model: "IT wins
        # less than the rest" only because the rest holds the ICP's Fertigung (39%) is no
        # finding about IT (17% against 21% for the other industries).
        favoured = {}
        for _, level_row in better.iterrows():
            name, level = level_row["attribute"], level_row["level"]
            column = _column(f"favoured:{name}:{level}")
            model_frame[column] = (model_labels[name] == level).to_numpy(dtype=float)
            favoured[column] = (name, levels.conditions[(name, level)].text())
        rows = []
        for _, level_row in worse.iterrows():
            name, level = level_row["attribute"], level_row["level"]
            condition = levels.conditions[(name, level)]
            rule_id = f"{outcome}:{name}:{level}"
            model_frame[_column(rule_id)] = (model_labels[name] == level).to_numpy(dtype=float)
            in_level = (labels[name] == level).to_numpy()
            members = ap.member_rows(all_labels[name] == level)
            level_reasons = (
                reasons[
                    (reasons["attribute"] == name)
                    & (reasons["level"] == level)
                    & reasons["over_represented"].astype(bool)
                ].sort_values("q_value")
                if outcome == "win_rate" and len(reasons)
                else reasons.iloc[0:0]
            )
            rows.append(
                {
                    "rule_id": rule_id,
                    "source": "deals",
                    "outcome": outcome,
                    "attribute": condition.attribute,
                    "operator": condition.operator,
                    "value": condition.value,
                    "rule": condition.text(),
                    "phrase": condition.phrase(),
                    "level_attribute": name,
                    "level": level,
                    "accounts": int(level_row["accounts"]),
                    "share_of_accounts": (all_labels[name] == level).sum() / len(all_labels),
                    "n": int(level_row["deals"]),
                    "events": int(level_row["events"]),
                    "rate_level": level_row["rate"],
                    "rate_rest": level_row["rate_rest"],
                    "effect_name": "rate_ratio",
                    "effect": level_row["ratio"],
                    "ci_low": level_row["ratio_ci_low"],
                    "ci_high": level_row["ratio_ci_high"],
                    "p_value": level_row["p_value"],
                    "q_value": level_row["q_value"],
                    "reasons": "; ".join(level_reasons["reason"]),
                    "arr_at_risk": np.nan,
                    "open_pipeline": float(accounts.loc[in_level, "open_pipeline"].sum()),
                    "_members": members,
                }
            )
        candidates = pd.DataFrame(rows)
        bad_sign = -1 if outcome == "win_rate" else 1

        def adjusted(selected, rule_id, model_frame=model_frame, bad_sign=bad_sign, f=favoured):
            candidate = _column(rule_id)
            name = rule_id.split(":")[1]
            own = [c for c, (attribute, _) in f.items() if attribute == name]
            given = list(f)
            if own and (model_frame[[candidate, *own]].sum(axis=1) == 1).all():
                # A two-level attribute ("weak" against "core"): the level that does better
                # is all of the rest; there is nothing else to compare with.
                given = [c for c in given if c not in own]
                if not selected and not given:
                    return np.nan, None
            return _adjusted_check(
                model_frame, [*given, *(_column(r) for r in selected)], candidate, bad_sign
            )

        better_rules = [(name, text) for name, text in favoured.values()]
        parts.append(ap.select_independent(candidates, adjusted, alpha=alpha, given=better_rules))
    if not parts:
        return ap.empty()
    out = pd.concat(parts, ignore_index=True)
    out["statement"] = [ap.evidence_sentence(r, alpha) for r in out.to_dict("records")]
    return ap.finish(out)


def _adjusted_check(frame: pd.DataFrame, selected: list[str], candidate: str, bad_sign: int):
    """p-value and direction of ``candidate`` in a logistic model that also holds ``selected``.

    The model is a binomial GLM on per-account counts with robust (HC0) standard errors: with
    one row per account this is the logistic GEE of the deals with an independence working
    correlation, clustered by account. The regressors are 0/1 rule indicators, so accounts
    collapse into a handful of covariate patterns: the fit runs on the patterns' totals and the
    robust "meat" is summed per pattern from each account's residual, which gives the
    account-level model's numbers exactly, at a fraction of the cost on large data.
    """
    import statsmodels.api as sm
    from scipy import stats as sps

    columns = [*selected, candidate]
    x = frame[columns].to_numpy(dtype=float)
    events = frame["events"].to_numpy(dtype=float)
    trials = frame["trials"].to_numpy(dtype=float)
    # 0/1 columns: each row's pattern is a binary number (np.unique on rows is slow).
    codes, inverse = np.unique(
        x.astype(np.int64) @ (1 << np.arange(x.shape[1])), return_inverse=True
    )
    inverse = inverse.ravel()
    patterns = ((codes[:, None] >> np.arange(x.shape[1])) & 1).astype(float)
    exog = sm.add_constant(patterns, has_constant="add")
    if exog.shape[0] < exog.shape[1] or np.linalg.matrix_rank(exog) < exog.shape[1]:
        return 1.0, False
    size = patterns.shape[0]
    sum_y = np.bincount(inverse, weights=events, minlength=size)
    sum_n = np.bincount(inverse, weights=trials, minlength=size)
    sum_yy = np.bincount(inverse, weights=events * events, minlength=size)
    sum_yn = np.bincount(inverse, weights=events * trials, minlength=size)
    sum_nn = np.bincount(inverse, weights=trials * trials, minlength=size)
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            fit = sm.GLM(
                np.column_stack([sum_y, sum_n - sum_y]), exog, family=sm.families.Binomial()
            ).fit()
        mu = np.asarray(fit.fittedvalues, dtype=float)
        bread = np.linalg.inv((exog * (sum_n * mu * (1 - mu))[:, None]).T @ exog)
        squared_residuals = sum_yy - 2 * mu * sum_yn + mu**2 * sum_nn
        meat = (exog * squared_residuals[:, None]).T @ exog
        cov = bread @ meat @ bread
        coef = float(fit.params[-1])
        se = float(np.sqrt(cov[-1, -1]))
        p = float(2 * sps.norm.sf(abs(coef / se)))
    except (np.linalg.LinAlgError, ValueError, ZeroDivisionError):
        return np.nan, None
    if not np.isfinite(coef) or not np.isfinite(p):
        return np.nan, None
    return p, bool(np.sign(coef) == bad_sign)


def _column(rule_id: str) -> str:
    return "rule_" + re.sub(r"[^0-9A-Za-z]+", "_", rule_id)


# ---------------------------------------------------------------------------------------------
# Words


def _findings(win_rate, no_decision, reasons, overall, cycle_table, anti, has_reasons):
    lines = []
    tested = int(win_rate["p_value"].notna().sum()) if len(win_rate) else 0
    if len(win_rate) and not win_rate["significant"].any():
        lines.append(
            f"No attribute level wins significantly more or less often than the rest after "
            f"correction over {tested} tests with {overall.get('units', 'accounts')} as the unit: "
            "no segment stands out "
            "on win rate."
        )
    candidates = anti[anti["status"] == "candidate"] if len(anti) else anti
    for _, row in candidates.iterrows():
        lines.append(row["statement"])
    terms = anti[anti["status"] == "contract term"] if len(anti) else anti
    for _, row in terms.iterrows():
        lines.append(
            f"{row['statement']} This is a term of the contract, set at the sale (and often "
            "filled from what customers pay): not a kind of company to turn away."
        )
    explained = anti[anti["status"] == "explained"] if len(anti) else anti
    words = ap.worded(anti)
    if len(explained):
        lines.append(
            f"{len(explained)} more weak segment{'s are' if len(explained) > 1 else ' is'} "
            "explained by the rules above (no longer significant once they are accounted for): "
            + "; ".join(
                f"accounts {words.get(r, r)} (explained by accounts {words.get(b, b)})"
                for r, b in zip(explained["rule"], explained["explained_by"], strict=True)
            )
            + "."
        )
    # Ranked by the shrunk rate: a level of three deals won three times does not outrank a level
    # of two hundred deals won at 60%.
    higher = win_rate[win_rate["direction"] == "higher"].sort_values(
        ["rate_shrunk", "ratio"], ascending=False
    )
    if len(higher):
        best = higher.iloc[0]
        lines.append(
            f"Highest win rate: "
            f"{'accounts ' + best['words'] if best.get('words') else best['rule']}, "
            f"{fmt_pct(best['rate'])} "
            f"({fmt_pct(best['ci_low'])}–{fmt_pct(best['ci_high'])}; "
            f"{fmt_pct(best['rate_shrunk'])} shrunk toward the attribute's pooled rate) against "
            f"{fmt_pct(best['rate_rest'])} for the rest ({fmt_count(best['accounts'], 'account')}, "
            f"{fmt_count(best['deals'], 'deal')})."
        )
    if has_reasons and len(reasons):
        top = reasons[reasons["attribute"] == "all"].sort_values("lost_deals", ascending=False)
        nd = overall.get("no_decision_share")
        text = (
            "Top loss reasons: "
            + ", ".join(
                f"{r} ({fmt_pct(s)})"
                for r, s in zip(top["reason"].head(3), top["share"].head(3), strict=True)
            )
            + "."
        )
        if nd:
            # The reasons counted as no decision (facts.NO_DECISION: "went dark" and "stalled"
            # too), named, and the pipeline of those same deals.
            matched = top["reason"].map(lambda r: bool(re.search(NO_DECISION, str(r), re.I)))
            named = [str(r) for r in top.loc[matched, "reason"]]
            shown = (
                f" ({', '.join(named[:4])}{', ...' if len(named) > 4 else ''})"
                if named and [r.lower() for r in named] != ["no decision"]
                else ""
            )
            text += (
                f" No decision{shown} ends {fmt_pct(nd['rate'])} of lost deals "
                f"({fmt_pct(nd['ci_low'])}–{fmt_pct(nd['ci_high'])})"
            )
            amount = top.loc[matched, "amount_lost"].sum()
            text += f", {fmt_money(amount)} of pipeline." if amount > 0 else "."
        lines.append(text)
    if len(cycle_table):
        overall_cycle = cycle_table[cycle_table["attribute"] == "all"]
        if len(overall_cycle) and pd.notna(overall_cycle["median_days"].iloc[0]):
            row = overall_cycle.iloc[0]
            low, high = row["median_ci_low"], row["median_ci_high"]
            interval = (
                f"{low:.0f}–{high:.0f}"
                if pd.notna(low) and pd.notna(high)
                else "too few deals for an interval"
            )
            lines.append(
                f"Median sales cycle {row['median_days']:.0f} days ({interval}), counting "
                f"{fmt_number(row['open'])} open deals as still running (censored), not dropped."
            )
    return lines


def _empty_tables() -> dict:
    return {
        "win_rate_by_attribute": pd.DataFrame(columns=RATE_COLUMNS),
        "no_decision_by_attribute": pd.DataFrame(columns=RATE_COLUMNS),
        "loss_reasons": pd.DataFrame(columns=_REASON_COLUMNS),
        "sales_cycle_by_segment": pd.DataFrame(columns=["attribute", "level", "median_days"]),
        "deal_size_by_segment": pd.DataFrame(columns=["attribute", "level", "mean_amount"]),
        "stage_funnel": pd.DataFrame(columns=["stage", "deals", "share", "conversion"]),
        "anti_patterns": ap.empty(),
    }


# ---------------------------------------------------------------------------------------------
# Views and plots for the report


def headline(result: DealsResult) -> dict:
    """Headline numbers as display strings (for ``report.kpis``)."""
    o = result.overall
    w = o.get("win_rate") or {}
    if not w:
        return {}
    out = {
        "Closed new-business deals": fmt_number(w["n"]),
        "Accounts": fmt_number(w["accounts"]),
        "Win rate": f"{fmt_pct(w['rate'])} ({fmt_pct(w['ci_low'])}–{fmt_pct(w['ci_high'])})",
        "Open deals": fmt_number(o["open_deals"]),
    }
    unmeasurable = o.get("not_measurable", {})
    if "won" in unmeasurable:
        out["Win rate"] = f"not measurable — {unmeasurable['won']}"
    nd = o.get("no_decision_share")
    if nd:
        out["Lost to 'no decision'"] = fmt_pct(nd["rate"])
    cycle = result.tables.get("sales_cycle_by_segment", pd.DataFrame())
    overall = cycle[cycle["attribute"] == "all"] if len(cycle) else cycle
    if "sales_cycle" in unmeasurable:
        out["Median sales cycle"] = f"not measurable — {unmeasurable['sales_cycle']}"
    elif len(overall) and pd.notna(overall["median_days"].iloc[0]):
        out["Median sales cycle"] = f"{overall['median_days'].iloc[0]:.0f} days"
    return out


def attributes_shown(table: pd.DataFrame) -> list[str]:
    """Attributes with at least one significant level, most significant first."""
    if table.empty:
        return []
    significant = table[table["significant"].astype(bool)].sort_values("q_value")
    return list(dict.fromkeys(significant["attribute"]))


def rate_view(table: pd.DataFrame, attributes: list[str] | None = None, *, what: str = "Win rate"):
    """Win rate (or 'no decision' share) by level for a report table."""
    if table.empty:
        return pd.DataFrame()
    names = attributes if attributes is not None else attributes_shown(table)
    shown = table[table["attribute"].isin(names)].copy()
    shown["_order"] = shown["attribute"].map({n: i for i, n in enumerate(names)})
    shown = shown.sort_values("_order", kind="stable")
    return pd.DataFrame(
        {
            "Attribute": shown["attribute"],
            "Level": shown["level"],
            "Accounts": shown["accounts"],
            "Deals": shown["deals"],
            what: [
                fmt_rate_ci(r, lo, hi)
                for r, lo, hi in zip(shown["rate"], shown["ci_low"], shown["ci_high"], strict=True)
            ],
            "Shrunk": [
                fmt_pct(v) if pd.notna(v) else "–"
                for v in shown.get("rate_shrunk", pd.Series(np.nan, index=shown.index))
            ],
            "Rest": [fmt_pct(v) for v in shown["rate_rest"]],
            "vs rest": [
                "–"
                if pd.isna(r)
                else f"{r:.2f}x ({lo:.2f}–{hi:.2f})"
                if pd.notna(lo)
                else f"{r:.2f}x"
                for r, lo, hi in zip(
                    shown["ratio"], shown["ratio_ci_low"], shown["ratio_ci_high"], strict=True
                )
            ],
            "q": shown["q_value"],
            "Note": shown["note"],
        }
    ).reset_index(drop=True)


def loss_reasons_view(result: DealsResult) -> pd.DataFrame:
    """Loss reasons of all lost new-business deals, with the amount lost."""
    reasons = result.tables.get("loss_reasons", pd.DataFrame())
    if reasons.empty:
        return pd.DataFrame()
    overall = reasons[reasons["attribute"] == "all"].sort_values("lost_deals", ascending=False)
    view = pd.DataFrame(
        {
            "Reason": overall["reason"],
            "Lost deals": overall["lost_deals"],
            "Share of losses": [
                fmt_rate_ci(s, lo, hi)
                for s, lo, hi in zip(
                    overall["share"], overall["ci_low"], overall["ci_high"], strict=True
                )
            ],
            "No decision": ["yes" if v else "" for v in overall["is_no_decision"]],
        }
    )
    if overall["amount_lost"].notna().any():
        view["Amount lost"] = [fmt_money(v) for v in overall["amount_lost"]]
    return view.reset_index(drop=True)


def segment_reasons_view(result: DealsResult) -> pd.DataFrame:
    """Loss reasons significantly over-represented in a level (vs other accounts' losses)."""
    reasons = result.tables.get("loss_reasons", pd.DataFrame())
    if reasons.empty:
        return pd.DataFrame()
    over = reasons[reasons["over_represented"].astype(bool)].sort_values("q_value")
    return pd.DataFrame(
        {
            "Attribute": over["attribute"],
            "Level": over["level"],
            "Reason": over["reason"],
            "Lost deals": over["lost_deals"],
            "Accounts": over["accounts"],
            "Share of the level's losses": [
                fmt_rate_ci(s, lo, hi)
                for s, lo, hi in zip(over["share"], over["ci_low"], over["ci_high"], strict=True)
            ],
            "Share elsewhere": [fmt_pct(v) for v in over["share_rest"]],
            "q": over["q_value"],
        }
    ).reset_index(drop=True)


def cycle_view(result: DealsResult) -> pd.DataFrame:
    """Median time to close by level (open deals censored)."""
    table = result.tables.get("sales_cycle_by_segment", pd.DataFrame())
    if table.empty:
        return pd.DataFrame()

    def median_text(m, lo, hi):
        # An interval with an unknown end says which ("9 (––not reached)" read as broken).
        if pd.isna(m):
            return "not reached"
        if pd.isna(lo) and pd.isna(hi):
            return f"{m:.0f}"
        if pd.isna(hi):
            return f"{m:.0f} ({lo:.0f} or more)"
        if pd.isna(lo):
            return f"{m:.0f} (up to {hi:.0f})"
        return f"{m:.0f} ({lo:.0f}–{hi:.0f})"

    return pd.DataFrame(
        {
            "Attribute": table["attribute"],
            "Level": table["level"],
            "Deals": table["deals"],
            "Open (censored)": table["open"],
            "Median days to close": [
                median_text(m, lo, hi)
                for m, lo, hi in zip(
                    table["median_days"],
                    table["median_ci_low"],
                    table["median_ci_high"],
                    strict=True,
                )
            ],
            "Still open at 90 days": [fmt_pct(v) for v in table["still_open_90d"]],
        }
    )


def deal_size_view(result: DealsResult, attributes: list[str] | None = None) -> pd.DataFrame:
    """Won deal size by level (mean with a clustered interval, median)."""
    table = result.tables.get("deal_size_by_segment", pd.DataFrame())
    if table.empty:
        return pd.DataFrame()
    names = ["all", *(attributes if attributes is not None else ["size_segment"])]
    shown = table[table["attribute"].isin(names)]
    return pd.DataFrame(
        {
            "Attribute": shown["attribute"],
            "Level": shown["level"],
            "Won deals": shown["won_deals"],
            "Accounts": shown["accounts"],
            "Mean deal": [
                # One won deal (or one account) has no interval: the mean alone, not "(–––)".
                f"{fmt_money(m)} ({fmt_money(lo)}–{fmt_money(hi)})"
                if pd.notna(lo) and pd.notna(hi)
                else fmt_money(m)
                for m, lo, hi in zip(
                    shown["mean_amount"], shown["mean_ci_low"], shown["mean_ci_high"], strict=True
                )
            ],
            "Median deal": [fmt_money(v) for v in shown["median_amount"]],
        }
    ).reset_index(drop=True)


def report_views(result: DealsResult) -> dict:
    """``{name: callable returning a View}``: the lost-deal report's tables with their reasons.

    ``win_rate_by_attribute`` and ``no_decision_by_attribute`` (:func:`rate_view`),
    ``loss_reasons`` (:func:`loss_reasons_view`), ``loss_reasons_by_segment``
    (:func:`segment_reasons_view`), ``sales_cycle`` (:func:`cycle_view`), ``deal_size``
    (:func:`deal_size_view`), ``stage_funnel`` and ``exclude_rules`` (the anti-patterns).
    """
    not_computed = result.not_computed

    def win_rate() -> View:
        return View(
            "differences in win rate between segments",
            rate_view(result.tables["win_rate_by_attribute"]),
            not_computed.get(
                "deals",
                "no segment wins significantly more or less often than the rest once deals are "
                "clustered by account.",
            ),
            max_rows=80,
        )

    def loss_reasons() -> View:
        return View(
            "loss reasons",
            loss_reasons_view(result),
            not_computed.get("loss reasons", "no lost deal has a reason."),
        )

    def no_decision() -> View:
        return View(
            "'no decision' differences between segments",
            rate_view(result.tables["no_decision_by_attribute"], what="No decision share"),
            not_computed.get(
                "no decision",
                "no segment's lost deals end in 'no decision' significantly more or less often "
                "than the rest.",
            ),
        )

    def loss_reasons_by_segment() -> View:
        return View(
            "loss reasons by segment",
            segment_reasons_view(result),
            "No loss reason is significantly more common in one segment than elsewhere."
            if len(loss_reasons_view(result))
            else "No loss reasons to compare.",
            empty_as="info",
        )

    def sales_cycle() -> View:
        return View(
            "the sales cycle",
            cycle_view(result),
            not_computed.get("sales cycle", "no creation dates."),
            max_rows=60,
        )

    def deal_size() -> View:
        return View(
            "deal size", deal_size_view(result), not_computed.get("deal size", "no amounts.")
        )

    def funnel_table() -> View:
        funnel = result.funnel
        if funnel is None:
            return View("the stage funnel", reason="There is no stage history.", empty_as="skipped")
        return View(
            "the stage funnel",
            funnel.summary if funnel.ok else None,
            funnel.caveats[0] if funnel.caveats else "There is no stage history.",
            empty_as="skipped",
        )

    def exclude_rules() -> View:
        return View(
            "exclude rules from lost deals",
            ap.rules_view(result.anti_patterns),
            "No segment wins significantly less often or stalls more in 'no decision' than the "
            "rest: lost deals give no exclude rule.",
            empty_as="success",
        )

    return {
        "win_rate_by_attribute": win_rate,
        "loss_reasons": loss_reasons,
        "no_decision_by_attribute": no_decision,
        "loss_reasons_by_segment": loss_reasons_by_segment,
        "sales_cycle": sales_cycle,
        "deal_size": deal_size,
        "stage_funnel": funnel_table,
        "exclude_rules": exclude_rules,
    }


def plot_win_rates(result: DealsResult, attributes: list[str] | None = None, *, ax=None):
    """Win rate by level with cluster-robust intervals; significantly lower levels in red,
    higher in green, a dashed line at the overall win rate. Returns the Axes."""
    import matplotlib.pyplot as plt

    table = result.tables.get("win_rate_by_attribute", pd.DataFrame())
    names = attributes if attributes is not None else attributes_shown(table)
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
    colors = table["direction"].map({"lower": "#d55e00", "higher": "#009e73"}).fillna("#56606b")
    bars = error_bars(table["rate"], table["ci_low"], table["ci_high"], 100)
    ax.errorbar(table["rate"] * 100, y, xerr=bars, fmt="none", ecolor="#9aa3ad", lw=1.5)
    ax.scatter(table["rate"] * 100, y, c=list(colors), zorder=3, s=28)
    ax.axvline(result.overall["win_rate"]["rate"] * 100, ls="--", color="#56606b", lw=1)
    ax.set_yticks(y)
    ax.set_yticklabels(
        [f"{a}: {lv}" for a, lv in zip(table["attribute"], table["level"], strict=True)]
    )
    ax.set_xlabel("Win rate of new-business deals (%, 95% interval clustered by account)")
    ax.set_title("Win rate by segment (dashed: all deals)")
    ax.set_xlim(0, 100)
    return ax


def plot_loss_reasons(result: DealsResult, *, ax=None):
    """Share of lost deals per reason, 'no decision' highlighted. Returns the Axes."""
    import matplotlib.pyplot as plt

    reasons = result.tables.get("loss_reasons", pd.DataFrame())
    overall = (
        reasons[reasons["attribute"] == "all"].sort_values("lost_deals")
        if len(reasons)
        else reasons
    )
    if ax is None:
        _, ax = plt.subplots(figsize=(7, max(2.5, 0.35 * len(overall) + 1)))
    if overall.empty:
        ax.text(0.5, 0.5, "No loss reasons", ha="center", va="center", transform=ax.transAxes)
        ax.set_axis_off()
        return ax
    colors = np.where(overall["is_no_decision"].astype(bool), "#d55e00", "#0173b2")
    ax.barh(overall["reason"], overall["share"] * 100, color=list(colors))
    ax.errorbar(
        overall["share"] * 100,
        np.arange(len(overall)),
        xerr=error_bars(overall["share"], overall["ci_low"], overall["ci_high"], 100),
        fmt="none",
        ecolor="#333333",
        lw=1,
    )
    ax.set_xlabel("Share of lost new-business deals (%)")
    ax.set_title("Why deals are lost ('no decision' in orange)")
    return ax


def plot_cycle(result: DealsResult, attribute: str | None = "size_segment", *, ax=None):
    """Time-to-close curves (share of deals still open) overall or by one attribute."""
    from icp_research.methods.survival import plot_survival

    curve = result.cycle_curves.get(attribute) if attribute else None
    curve = curve or result.overall_cycle
    ax = plot_survival(curve, ax=ax, legend=False)
    if len(curve.summary):
        # Curves fall towards zero: the legend goes where they have already left.
        ax.legend(frameon=False, loc="upper right", fontsize="small")
    ax.set_xlabel("Days since the deal was created")
    ax.set_ylabel("Still open")
    ax.set_title(
        f"Time to close by {attribute}"
        if curve is not result.overall_cycle
        else "Time to close, all new-business deals"
    )
    return ax


def save_artifacts(study: Study, result: DealsResult) -> list[Path]:
    """Write the lost-deal tables and exclude rules declared in the registry, and the result."""
    written = study.save_artifact(
        registry.DEALS, {"overall": result.overall, "not_computed": result.not_computed}
    )
    for artifact in (
        registry.WIN_RATE_BY_ATTRIBUTE,
        registry.NO_DECISION_BY_ATTRIBUTE,
        registry.LOSS_REASONS,
        registry.SALES_CYCLE_BY_SEGMENT,
        registry.DEAL_SIZE_BY_SEGMENT,
    ):
        written += study.save_artifact(artifact, result.tables[artifact.name])
    written += study.save_artifact(
        registry.ANTI_PATTERNS_DEALS, ap.to_csv_frame(result.anti_patterns)
    )
    study.save_result(result, "deals")
    return written
