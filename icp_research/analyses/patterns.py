"""Pattern discovery: which combinations of attributes go with the outcomes that matter?

Runs the subgroup search (:func:`icp_research.methods.subgroups.find_subgroups`) for three targets and
puts the results in one table, ``subgroups.csv``:

``best_customer``
    Customers: is the customer one of the best (top share by the configured metric)?
``won``
    Closed new-business deals: was the deal won? Deals of one account are not independent, so
    every test and interval is corrected for the clustering (design effect over accounts), and
    each subgroup says how many accounts its deals come from.
``retained_12m``
    Customers who started at least ``retention_months`` before the as-of date: were they still
    customers ``retention_months`` after they started? A fixed horizon, so that recent customers,
    who had less time to churn, do not look more loyal than old ones.

:func:`pattern_summary` then picks the strongest significant findings of the whole report (the
best-customer profile, the subgroups, the segments) for its opening summary.
"""

from __future__ import annotations

import math
from pathlib import Path

import numpy as np
import pandas as pd

from icp_research.analyses import registry
from icp_research.data.facts import retained_for, with_traits
from icp_research.data.study import Study
from icp_research.formatting import fmt_number, fmt_p, fmt_pct
from icp_research.methods.subgroups import (
    SUMMARY_COLUMNS,
    SubgroupResult,
    find_subgroups,
    subgroup_mask,
)
from icp_research.result import Result

TARGETS = ("best_customer", "won", "retained_12m")

#: Smallest subgroup searched, whatever ``min_support`` says: a rate over fewer rows than this
#: cannot support a finding.
MIN_SUBGROUP_ROWS = 10

#: Columns of ``subgroups.csv``: the run-output contract first, then extras.
SUBGROUP_COLUMNS = [
    *SUMMARY_COLUMNS[:10],
    "unit",
    "accounts",
    *SUMMARY_COLUMNS[10:],
    "family_size",
    # The subgroup in words ("in FinTech or SaaS and with 100+ employees"), with the config's
    # [labels]; "description" is the same subgroup as code.
    "words",
]


class PatternResult(Result):
    """Subgroups for every target.

    ``summary`` is ``subgroups.csv`` (:data:`SUBGROUP_COLUMNS`): one row per subgroup shown,
    grouped by target, ranked within it. ``tables['<target>']`` is each target's own summary;
    ``params['results']`` maps a target to its :class:`SubgroupResult` (with its caveats and
    pruned subgroups), ``params['skipped']`` a target that could not be searched to the reason.
    """

    def result(self, target: str) -> SubgroupResult | None:
        return self.params.get("results", {}).get(target)


def target_frames(
    study, *, best=None, retention_months: int = 12
) -> tuple[dict[str, tuple[pd.DataFrame, str, str]], dict[str, str]]:
    """The rows and outcome of each target: ``{target: (data, unit, definition)}``.

    ``best`` overrides the study's best-customer flag (a Series over ``study.facts``). Targets
    that cannot be built are returned in the second dict with the reason.
    """
    facts = study.facts
    frames: dict[str, tuple[pd.DataFrame, str, str]] = {}
    skipped: dict[str, str] = {}
    customers = facts["is_customer"].astype(bool)

    flag = facts["best_customer"] if best is None else best
    data = facts.loc[customers].assign(best_customer=flag[customers].astype("boolean"))
    if customers.any():
        frames["best_customer"] = (
            data,
            "customers",
            "customers: best customer or not (the best-customer definition above)",
        )
    else:
        skipped["best_customer"] = "there are no customers"

    deals = study.deals
    if len(deals) and "won" in deals:
        closed = deals[deals["is_new_business"].astype(bool) & deals["is_closed"].astype(bool)]
        closed = closed[with_traits(closed)].assign(won=lambda d: d["won"].astype(bool))
        if len(closed):
            frames["won"] = (
                closed,
                "deals",
                "closed new-business deals: won or lost (open deals are left out)",
            )
        else:
            skipped["won"] = "there are no closed new-business deals with an account"
    else:
        skipped["won"] = study.absent("opportunities")

    target = f"retained_{retention_months}m"
    if not study.churn_measured:
        skipped[target] = (
            f"retention needs subscriptions: {study.absent('subscriptions')}"
            if not study.has("subscriptions")
            else "retention needs a subscriptions table (or churn events)"
        )
    else:
        eligible, retained = retained_for(facts, retention_months, study.as_of)
        eligible &= customers
        data = facts.loc[eligible].assign(**{target: retained[eligible]})
        if len(data):
            frames[target] = (
                data,
                "customers",
                f"customers who started at least {retention_months} months before the as-of "
                f"date: still a customer {retention_months} months after starting",
            )
        else:
            skipped[target] = f"no customer started {retention_months} or more months ago"
    return frames, skipped


def discover_subgroups(
    study,
    *,
    best=None,
    max_depth: int | None = None,
    min_support: float | None = None,
    top_k: int = 10,
    n_bins: int = 10,
    retention_months: int = 12,
) -> PatternResult:
    """Subgroups for best-customer membership, deal won and 12-month retention.

    Parameters
    ----------
    study : Study
    best : Series, optional
        Best-customer flag over ``study.facts`` (default: the study's ``best_customer``).
    max_depth, min_support : optional
        Default: the config's ``[analysis]`` ``max_depth`` and ``min_support``.
    top_k : int
        Subgroups shown per target.
    n_bins : int
        Quantile bins per numeric attribute (ranges of adjacent bins are searched too); deciles
        by default, so that thresholds such as 100 employees can be found.
    retention_months : int
        Horizon of the retention target.

    Returns
    -------
    PatternResult
    """
    analysis = study.analysis
    depth = int(max_depth or analysis.get("max_depth", 3))
    support = min_support or analysis.get("min_support", 0.02)
    attributes = list(study.attributes.categorical) + list(study.attributes.numeric)
    frames, skipped = target_frames(study, best=best, retention_months=retention_months)
    results: dict[str, SubgroupResult] = {}
    parts = []
    caveats: list[str] = []
    contract = study.attributes.contract
    for target, (data, unit, definition) in frames.items():
        present = [a for a in attributes if a in data.columns]
        if target == "best_customer":
            # Contract terms (seats, plan) make up what best customers pay: contract size.
            present = [a for a in present if a not in contract]
        # Subsidiaries of one parent are one independent unit, deals and customers alike.
        data, cluster = study.with_groups(data, "account_id" if unit == "deals" else None)
        known = int(data[target].notna().sum())
        rows = support if isinstance(support, int) else math.ceil(float(support) * known - 1e-9)
        result = find_subgroups(
            data,
            target,
            attributes=present,
            max_depth=depth,
            min_support=max(int(rows), MIN_SUBGROUP_ROWS),
            top_k=top_k,
            n_bins=n_bins,
            alpha=study.alpha,
            correction=str(analysis.get("correction", "fdr_bh")),
            unit=unit,
            clusters=cluster,
        )
        result.params["definition"] = definition
        results[target] = result
        table = result.summary.copy()
        table["unit"] = unit
        table["accounts"] = _accounts_per_subgroup(data, table) if unit == "deals" else table["n"]
        table["family_size"] = result.family_size
        table["words"] = [subgroup_words(c, labels_of(study)) for c in table["conditions"]]
        parts.append(table[SUBGROUP_COLUMNS])
    summary = (
        pd.concat(parts, ignore_index=True)
        if any(len(p) for p in parts)
        else pd.DataFrame(columns=SUBGROUP_COLUMNS)
    )
    findings = []
    for target, result in results.items():
        findings += _target_findings(target, result, summary)
    for target, reason in skipped.items():
        caveats.append(f"No subgroups for {target.replace('_', ' ')}: {reason}.")
    tables = {target: r.summary for target, r in results.items()}
    params = {
        "max_depth": depth,
        "min_support": support,
        "n_bins": n_bins,
        "top_k": top_k,
        "retention_months": retention_months,
        "results": results,
        "skipped": skipped,
    }
    return PatternResult("Subgroups", summary, findings, caveats, tables, params)


def _accounts_per_subgroup(deals: pd.DataFrame, table: pd.DataFrame) -> list[int]:
    return [
        int(deals.loc[subgroup_mask(deals, conditions).to_numpy(), "account_id"].nunique())
        for conditions in table["conditions"]
    ]


def subgroup_conditions(conditions) -> list:
    """A subgroup's conditions (``subgroups.csv``'s JSON) as the rules' conditions."""
    import json

    from icp_research.analyses.antipatterns import Condition

    items = json.loads(conditions) if isinstance(conditions, str) else conditions or []
    out = []
    for c in items:
        op, attribute = c.get("op"), c["attribute"]
        if op == "==":
            out.append(Condition(attribute, "equals", str(c["value"])))
        elif op == "in":
            out.append(Condition(attribute, "in", [str(v) for v in c["values"]]))
        elif op == "missing":
            out.append(Condition(attribute, "is_missing"))
        elif op == "range" and c.get("low") is not None and c.get("high") is not None:
            out.append(Condition(attribute, "between", [c["low"], c["high"]]))
        elif op == "range" and c.get("low") is not None:
            out.append(Condition(attribute, "at_least", c["low"]))
        elif op == "range" and c.get("high") is not None:
            out.append(Condition(attribute, "less_than", c["high"]))
        else:
            raise ValueError(f"unknown subgroup condition {c!r}")
    return out


def subgroup_words(conditions, labels=None) -> str:
    """A subgroup in words after "accounts", with the config's ``[labels]``: "in FinTech or
    SaaS and with 100+ employees" (empty when its conditions cannot be read)."""
    from icp_research.analyses.blueprint.statement import conditions_words

    try:
        parsed = subgroup_conditions(conditions)
    except (ValueError, KeyError, TypeError, AttributeError):
        return ""
    return conditions_words(parsed, labels) if parsed else ""


def labels_of(study):
    from icp_research.analyses.antipatterns import labels_of as labels

    return labels(study)


def _who(row, noun: str) -> str:
    """'Customers in FinTech or SaaS' from the row's words, else its code form after 'with'."""
    words = getattr(row, "words", None)
    if isinstance(words, str) and words:
        return f"{noun} {words}"
    return f"{noun} with {row.description}"


def subgroup_sentence(row, *, unit: str | None = None) -> str:
    """The plain sentence for one row of ``subgroups.csv``."""
    unit = unit or row.unit
    q = "q < 0.001" if row.q_value < 0.001 else f"q = {fmt_p(row.q_value)}"
    rate = (
        f"{fmt_pct(row.target_rate)} ({fmt_pct(row.ci_low)}-{fmt_pct(row.ci_high)}, "
        f"n={fmt_number(row.n)} {unit}"
        + (f" from {fmt_number(row.accounts)} accounts" if unit == "deals" else "")
        + ")"
    )
    if row.target == "best_customer":
        return (
            f"{_who(row, 'Customers')} are {row.lift:.1f}x as likely to be best "
            f"customers as the average customer: {rate} vs {fmt_pct(row.baseline_rate)} of all "
            f"customers, these included; {q}."
        )
    if row.target == "won":
        return (
            f"Deals of {_who(row, 'accounts')} are won {row.lift:.1f}x as often as the average "
            f"deal: {rate} vs {fmt_pct(row.baseline_rate)} of all new-business deals, these "
            f"included; {q}."
        )
    months = str(row.target).removeprefix("retained_").removesuffix("m")
    return (
        f"{_who(row, 'Customers')} stay longer: {rate} are still customers "
        f"{months} months after starting vs {fmt_pct(row.baseline_rate)} of all customers; {q}."
    )


def _target_findings(target: str, result: SubgroupResult, summary: pd.DataFrame) -> list[str]:
    rows = summary[(summary["target"] == target) & summary["significant"].astype(bool)]
    if rows.empty:
        return [
            f"No subgroup stands out for {target.replace('_', ' ')} after correcting for "
            f"{result.family_size:,} subgroups searched."
        ]
    return [subgroup_sentence(rows.iloc[0])]


def _tick(words, description: str) -> str:
    """A subgroup's label on the chart: its words on lines of about 45 characters."""
    import textwrap

    if isinstance(words, str) and words:
        return "\n".join(textwrap.wrap(words[:1].upper() + words[1:], 45))
    return description.replace(" AND ", "\nAND ") if len(description) > 45 else description


# ---------------------------------------------------------------------------------------------
# The report's opening summary


_TARGET_LABELS = {
    "best_customer": "best customers",
    "won": "won deals",
    "retained_12m": "12-month retention",
}


def pattern_summary(profile, subgroups: PatternResult, segments=None, *, max_items: int = 5):
    """The strongest significant patterns of the report, in words, strongest first.

    One statement from the best-customer profile (its strongest attribute), the top significant
    subgroup of each target, and the segment comparison when a segment stands out; at most
    ``max_items``, followed by one sentence per target where no subgroup is significant. When
    nothing is significant anywhere, one sentence says so plainly. Returns a list of sentences.
    """
    sentences: list[str] = []
    if profile is not None and not profile.summary.empty:
        headlines = profile.headlines(max_items=1)
        sentences += list(headlines["sentence"])
    table = subgroups.summary
    nothing = []
    for target, result in subgroups.params.get("results", {}).items():
        rows = table[(table["target"] == target) & table["significant"].astype(bool)]
        if len(rows):
            sentences.append(subgroup_sentence(rows.iloc[0]))
        else:
            nothing.append(
                f"No combination of attributes stands out for {_TARGET_LABELS.get(target, target)}"
                f" after correcting for the {result.family_size:,} subgroups searched."
            )
    if segments is not None:
        sentences += segments.findings[:1] if segments.params.get("stands_out") else []
    sentences = sentences[:max_items]
    if sentences:
        # Saying where nothing was found is part of the result.
        return sentences + nothing
    searched = sum(r.family_size for r in subgroups.params.get("results", {}).values())
    tested = profile.params.get("family_size", 0) if profile is not None else 0
    return [
        "Nothing stands out: no attribute sets the best customers apart "
        f"({tested:,} attribute levels compared) and no subgroup of customers or deals is "
        f"significant after correcting for the {searched:,} subgroups searched. The "
        "differences seen in the tables below are within what chance produces."
    ]


def plot_subgroup_lifts(result: PatternResult, *, top: int = 5, ax=None):
    """Top significant subgroups of every target on one lift chart (log scale, intervals).

    Returns the Axes.
    """
    import matplotlib.pyplot as plt
    from matplotlib.ticker import FuncFormatter

    table = result.summary
    rows = (
        table[table["significant"].astype(bool)].groupby("target", sort=False).head(top)
        if len(table)
        else table
    )
    if ax is None:
        _, ax = plt.subplots(figsize=(9, 1.4 + 0.42 * max(len(rows), 1)))
    if rows.empty:
        ax.text(
            0.5, 0.5, "No significant subgroups", ha="center", va="center", transform=ax.transAxes
        )
        ax.set_axis_off()
        return ax
    rows = rows.iloc[::-1]
    y = np.arange(len(rows))
    colours = {t: f"C{i}" for i, t in enumerate(dict.fromkeys(table["target"]))}
    for target, colour in colours.items():
        mask = (rows["target"] == target).to_numpy()
        if not mask.any():
            continue
        ax.hlines(
            y[mask],
            rows["lift_ci_low"][mask],
            rows["lift_ci_high"][mask],
            color=colour,
            linewidth=2,
        )
        ax.scatter(
            rows["lift"][mask], y[mask], color=colour, zorder=3, label=target.replace("_", " ")
        )
    ax.axvline(1.0, color="grey", linestyle="--", linewidth=1)
    ax.set_yticks(y)
    ax.set_yticklabels(
        [
            _tick(w, d)
            for w, d in zip(
                rows.get("words", rows["description"]), rows["description"], strict=True
            )
        ],
        fontsize=8,
    )
    ax.set_xscale("log")
    values = np.r_[rows["lift_ci_low"], rows["lift_ci_high"]].astype(float)
    values = values[np.isfinite(values) & (values > 0)]
    left = min(float(values.min(initial=1.0)), 1.0) / 1.1
    right = max(float(values.max(initial=1.0)), 1.0) * 1.1
    ax.set_xlim(left, right)
    steps = [0.5, 0.75, 1, 1.1, 1.25, 1.5, 2, 2.5, 3, 4, 5, 7.5, 10]
    ax.set_xticks([s for s in steps if left <= s <= right])
    ax.xaxis.set_major_formatter(FuncFormatter(lambda v, _: f"{v:g}x"))
    ax.xaxis.set_minor_formatter(FuncFormatter(lambda v, _: ""))
    ax.set_xlabel("Lift: rate in the subgroup / overall rate (95% interval)")
    ax.set_title("Strongest significant subgroups per outcome")
    ax.legend(loc="lower right", fontsize=8, frameon=False)
    return ax


# ---------------------------------------------------------------------------------------------
# The whole report


class PatternDiscovery(Result):
    """Everything the pattern-discovery report shows.

    ``findings`` are the opening summary (:func:`pattern_summary`), ``caveats`` the notes that
    qualify it. ``params`` holds the three analyses: ``profile`` (:class:`ProfileResult`),
    ``subgroups`` (:class:`PatternResult`) and ``segments`` (:class:`SegmentResult` or None when
    segmentation could not run).
    """

    @property
    def profile(self):
        return self.params["profile"]

    @property
    def subgroups(self) -> PatternResult:
        return self.params["subgroups"]

    @property
    def segments(self):
        return self.params["segments"]

    def views(self) -> dict:
        """The report's tables by name: the profile's (``profile``, ``combined``,
        ``behaviour``) and the segments' (``segment_sales``, ``segment_customers``,
        ``segment_profiles``, ``silhouette``), each with its reason when empty."""
        views = dict(self.profile.views())
        if self.segments is not None:
            views.update(self.segments.views())
        return views


def pattern_discovery(
    study,
    *,
    best_customer_metric: str = "",
    best_customer_top_share: float = 0.0,
    max_depth: int = 0,
    min_support: float = 0.0,
    top_k: int = 10,
    k_range=(2, 8),
) -> PatternDiscovery:
    """Best-customer profile, subgroups for three outcomes and segments, with a summary.

    Empty / zero arguments take the config's ``[analysis]`` values. Returns a
    :class:`PatternDiscovery`.
    """
    from icp_research.analyses.profile import best_customer_flags, best_customer_profile
    from icp_research.methods.segments import segment_accounts

    analysis = study.analysis
    metric = best_customer_metric or analysis["best_customer_metric"]
    share = float(best_customer_top_share or analysis["best_customer_top_share"])
    profile = best_customer_profile(study, metric=metric, top_share=share)
    default_best = metric == analysis["best_customer_metric"] and share == float(
        analysis["best_customer_top_share"]
    )
    ranking = str(analysis.get("best_customer_ranking", "cohort"))
    best = None if default_best else best_customer_flags(study.facts, metric, share, ranking)
    subgroups = discover_subgroups(
        study,
        best=best,
        max_depth=max_depth or None,
        min_support=min_support or None,
        top_k=top_k,
    )
    segments = segment_accounts(study, k_range=k_range)
    if best is not None:
        # Segment best-customer shares follow the definition of this report.
        segments.params["best_definition"] = profile.params.get("definition")
    findings = pattern_summary(profile, subgroups, segments)
    caveats = [profile.params.get("definition", "")] if profile.params.get("definition") else []
    # Small samples and a bookings-based ARR qualify every number of the profile.
    caveats += [
        c
        for c in profile.caveats
        if c.startswith(("Only ", "There is no subscriptions", "Who is best cannot be told"))
    ]
    searched = {
        target: result.family_size for target, result in subgroups.params["results"].items()
    }
    if searched:
        caveats.append(
            "Subgroup significance is corrected for every subgroup searched ("
            + ", ".join(f"{n:,} for {t.replace('_', ' ')}" for t, n in searched.items())
            + "); won-deal tests count deals of one account as partly the same evidence."
        )
    caveats += subgroups.caveats
    caveats.append(
        "These patterns are found by searching this data: confirm them on later data (the "
        "predictor and blueprint reports check them out of sample) before acting on them."
    )
    return PatternDiscovery(
        "Pattern discovery",
        subgroups.summary,
        findings,
        [c for c in caveats if c],
        {},
        {
            "profile": profile,
            "subgroups": subgroups,
            "segments": segments,
            "metric": metric,
            "top_share": share,
        },
    )


def subgroup_table(discovery_or_result, target: str) -> pd.DataFrame:
    """One target's subgroups for display: description, size, rate with interval, lift, q."""
    result = (
        discovery_or_result.subgroups
        if isinstance(discovery_or_result, PatternDiscovery)
        else discovery_or_result
    )
    rows = result.summary[result.summary["target"] == target]
    if rows.empty:
        return pd.DataFrame()
    unit = rows["unit"].iloc[0]
    table = pd.DataFrame(
        {
            "rank": rows["rank"].to_numpy(),
            "subgroup": [
                f"Accounts {w}" if isinstance(w, str) and w else d
                for w, d in zip(
                    rows.get("words", rows["description"]), rows["description"], strict=True
                )
            ],
            unit: [fmt_number(v) for v in rows["n"]],
        }
    )
    if unit == "deals":
        table["accounts"] = [fmt_number(v) for v in rows["accounts"]]
    table["rate (95% CI)"] = [
        f"{fmt_pct(r)} ({fmt_pct(lo)}-{fmt_pct(hi)})"
        for r, lo, hi in zip(rows["target_rate"], rows["ci_low"], rows["ci_high"], strict=True)
    ]
    table["overall"] = [fmt_pct(v) for v in rows["baseline_rate"]]
    table["lift (95% CI)"] = [
        f"{lift:.2f}x ({lo:.2f}-{hi:.2f})"
        for lift, lo, hi in zip(
            rows["lift"], rows["lift_ci_low"], rows["lift_ci_high"], strict=True
        )
    ]
    table["q value"] = [fmt_p(q) for q in rows["q_value"]]
    table["significant"] = ["yes" if s else "no" for s in rows["significant"]]
    return table


def target_section(discovery: PatternDiscovery, target: str):
    """The HTML of one target's subgroup section: its definition, table and caveats, or a
    plain 'not enough evidence' when it could not be searched."""
    from icp_research.reporting import display as report

    subgroups = discovery.subgroups
    result = subgroups.result(target)
    label = target.replace("_", " ")
    if result is None:
        matches = [t for t in subgroups.params.get("skipped", {}) if t == target]
        why = subgroups.params["skipped"][matches[0]] if matches else "it was not searched"
        return report.not_enough_evidence(f"subgroups of {label}", why + ".")
    parts = [report.callout(f"Rows: {result.params.get('definition', '')}.", "info")]
    table = subgroup_table(subgroups, target)
    if table.empty:
        parts.append(
            report.not_enough_evidence(
                f"subgroups of {label}",
                " ".join(result.caveats[-2:]) or "no subgroup could be searched.",
            )
        )
    else:
        parts.append(report.table(table))
        rows = subgroups.summary[
            (subgroups.summary["target"] == target) & subgroups.summary["significant"].astype(bool)
        ]
        if len(rows):
            parts.append(
                report.bullets([subgroup_sentence(row) for row in rows.head(3).itertuples()])
            )
        else:
            parts.append(report.callout(result.findings[0] if result.findings else "", "info"))
    # How the search was done (size, value sets, pruning, clustering); the last caveat, "confirm
    # on later data", is in the summary already.
    parts.append(report.callout("How this was searched: " + " ".join(result.caveats[:-1])))
    return sum(parts[1:], parts[0])


def save_artifacts(study: Study, result: PatternDiscovery) -> list[Path]:
    """Write the pattern-discovery tables declared in the registry and the result."""
    written = study.save_artifact(registry.BEST_CUSTOMER_PROFILE, result.profile.summary)
    written += study.save_artifact(registry.SUBGROUPS, result.subgroups.summary)
    written += study.save_artifact(registry.SEGMENTS, result.segments.summary)
    written += study.save_artifact(
        registry.SEGMENT_SILHOUETTE, result.segments.tables["silhouette"]
    )
    study.save_result(result, "patterns")
    return written
