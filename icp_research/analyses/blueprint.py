"""The ICP blueprint: a named ICP, fit rules with their evidence, a fit score and its proof.

:func:`build_blueprint` turns the evidence of the other analyses into what the seeds say
go-to-market teams use, for the report ``notebooks/05_icp_blueprint.ipynb``:

1. **Characteristics** -- the 3-5 that define the ICP are the predictors that were significant,
   held up in the latest quarters and kept an effect of their own
   (:func:`icp_research.analyses.significance.predictor_significance`). Firmographic and technographic
   ones are *filters* (who the company is); how an account came to us (``referral_source``) is
   a *signal* (it prioritises, it does not define).
2. **Rules**, in the format of :class:`icp_research.analyses.antipatterns.Condition`, so that one
   :func:`icp_research.scoring.model.rule_hits` applies every rule to accounts or leads:

   - *include*: one per characteristic, its favoured levels (categories) or the range of a
     numeric attribute where the outcome rate is highest (scanned over nice cut points on the
     training period, e.g. ``100 <= employees < 1,000``);
   - *exclude*: the anti-patterns of the churn and lost-deal analyses and the levels the
     significance analysis says to avoid, re-tested against the accounts the include rules do
     not already rule out (an exclude rule must add to them) on the training period, and
     re-tested on the latest quarters;
   - *uncertain* ("needs more discovery"): findings that were suggestive but not significant,
     significant but did not hold up (or could not be checked) in the latest quarters.

   Every rule carries its evidence per outcome: rows and accounts, the outcome rate in and
   outside the rule, the lift with its interval (clustered by account for deals; exact Poisson
   for churn), the p- and q-value (Benjamini-Hochberg over the rule family) on the training
   period, the same on the holdout, and whether it replicated (one-sided, Holm-corrected).
3. **A statement** in the seeds' template, "This product fits [company type] that needs [core
   workflow outcome] and has [integration/process conditions]", with the not-a-fit list; the
   need comes from survey answers that ICP customers give more often, or else from the
   config's own ``[codebook]`` themes that best customers mention more often; without either
   the need is left out and a caveat says what to add. Attributes and values read as words
   ("companies with no CRM", not ``crm = None``). The analyst can override it.
4. **A fit score** (:func:`icp_research.scoring.scorecard.fit_scorecard`) learned from the chosen
   outcome on the training period, tiers from ``[scoring] tiers`` (or shares of the training
   rows), **validated** on the latest ``holdout_quarters``: AUC with interval, calibration,
   outcome rate / retention / ACV per tier, Tier 1 vs the last tier and ICP vs non-ICP ratios,
   and a walk-forward **backtest**: for each recent quarter, a score fitted on what was known at
   its start ranks the accounts known then against what happened in the quarter.
5. **Segment ICPs** (SMB / Mid-market / Enterprise) only when the include rules work
   significantly differently by size segment and the segments have enough customers.

The machine-readable result is ``artifacts/icp.json`` (:meth:`Blueprint.to_json`), read by
``icp-research score`` (:func:`icp_research.scoring.model.score_file`) and the run dashboard; the
report also writes ``artifacts/icp_rules.csv`` (one row per rule and outcome measured, columns
:data:`RULE_COLUMNS`) and the printable ``artifacts/icp_onepager.html``
(:func:`onepager_html`). Nothing here depends on the demo's planted truth.

``artifacts/icp.json``, field by field
--------------------------------------
``format``
    1; readers refuse other versions.
``kit_version``, ``project``, ``as_of``
    The kit that wrote it, the project name and the analysis date (YYYY-MM-DD).
``name``
    A short name for the ICP ("Mid-size SaaS & FinTech on HubSpot / Salesforce"), null when
    no ICP could be drawn.
``statement``
    The ICP in one paragraph (template sentence, signals, not-a-fit list); when no ICP can be
    drawn, a sentence that says so and why. ``statement_drafted`` is the drafted version and
    ``statement_source`` says whether ``statement`` is ``drafted`` or came from the ``analyst``.
``drawn``
    True when at least one defining include rule exists.
``confidence``
    ``level`` (``high`` / ``moderate`` / ``low`` / ``none``) and ``reason`` (one sentence with
    the numbers it rests on).
``outcome``
    What "success" means for the rules' evidence and the fit score: ``name`` (``won``,
    ``retained``, ``best_customer``), ``definition``, ``unit`` (``deals`` / ``customers``),
    ``split_on`` (the date that places a row in time), ``holdout_from`` (first day of the
    holdout), ``holdout_quarters``, ``n_training``, ``n_holdout``; ``chosen`` (a sentence) when
    ``[scoring] outcome`` is not set and the outcome was chosen from the data.
``characteristics[]``
    The defining characteristics, strongest first: ``rank``, ``attribute``, ``kind``
    (``categorical`` / ``numeric``), ``role`` (``filter``: who the company is; ``signal``: how
    it came to us), ``favour`` / ``avoid`` (levels or bins), ``outcomes`` (those it held up
    for), ``rule`` (the include rule's text), ``evidence`` (one sentence).
``rules``
    ``include``, ``exclude`` and ``uncertain`` lists. Each rule: ``id``; ``kind``; ``text``
    (``industry in {FinTech, SaaS}``); ``conditions[]`` (``attribute``, ``operator`` -- one of
    ``equals``, ``in``, ``less_than``, ``at_least``, ``between`` (``[lower, upper)``),
    ``is_missing`` -- and ``value``; all must hold); include rules have ``role``
    (``filter`` / ``signal``); uncertain rules have ``direction`` (``favour`` / ``avoid``) and
    ``reason`` (why it is uncertain); ``sources`` (the analyses that proposed it);
    ``share_of_accounts`` (accounts meeting it); ``evidence[]``, one per outcome: ``outcome``,
    ``unit``, ``source``, ``rate_unit`` (``share`` or ``per customer-year``), ``compared_with``
    (the rows the rule is compared with), ``n`` and ``accounts`` in the rule and ``n_rest``,
    ``events``, ``rate_in``, ``rate_out``, ``lift`` (rate_in / rate_out) with ``ci_low`` /
    ``ci_high``, ``p_value``, ``q_value`` (Benjamini-Hochberg over the family of the rule
    kind), all on the training period; ``holdout`` (the same on the latest quarters, one-sided
    ``p_value`` and Holm-corrected ``p_adjusted``; null when there are no holdout rows);
    ``replicated`` (true / false / null when it could not be checked); ``replicated_upstream``
    (present when the analysis that proposed the rule confirmed it on the latest quarters
    against all other rows); ``statement`` (in words). ``notes`` lists candidate rules that
    were set aside and why (overlapping an include rule, already left out by it, a channel
    rather than a filter, redundant with a stronger exclude rule).
``attributes``
    How scorers read each attribute the rules or the score use: ``type`` (``numeric`` /
    ``categorical``) and, for numbers, ``nonnegative`` (negative values are treated as missing).
``scorecard``
    The points table (see :mod:`icp_research.scoring.model` for every field): points per level or
    bin, neutral points, bins, the log-odds scale; null when no fit score could be fitted.
``tiers[]``
    ``name`` and ``min_score``, best first; the last tier starts at 0.
``validation``
    The holdout proof: ``outcome``, ``holdout_n``, ``holdout_events``, ``auc`` with ``auc_ci``
    and ``auc_interval`` (cluster bootstrap for deals, DeLong for customers); ``tiers[]`` (per
    tier: ``n``, ``share``, ``events``, ``rate`` with ``ci_low`` / ``ci_high``, value columns
    ``value_mean`` etc. for ACV of won deals); ``ratios[]`` (Tier 1 vs the last tier and Tier 1
    vs the rest: ``rate_a``, ``rate_b``, ``ratio``, ``ci_low``, ``ci_high``); ``icp_vs_rest``
    (accounts meeting every defining include rule and no exclude rule vs the rest, per
    outcome measured: ``outcome``, ``n_icp``, ``rate_icp``, ``n_rest``, ``rate_rest``,
    ``ratio``, ``ci_low``, ``ci_high``); ``retention_by_tier`` (the same tier table for
    12-month retention, when measured); ``calibration[]`` (score groups: ``n``, observed
    ``rate`` with interval, ``predicted_rate``); ``backtest[]`` (per quarter and tier:
    ``quarter``, ``scored_as_of``, ``tier``, ``n``, ``events``, ``rate``, ``ci_low``,
    ``ci_high``, ``value``) and ``backtest_summary[]`` (per quarter: ``n``, ``events``,
    ``auc``, ``auc_low``, ``auc_high``, ``top_vs_bottom`` with interval); ``findings`` and
    ``caveats``. Empty when there is no fit score.
``segments``
    ``verdict`` (one sentence), ``drawn`` (per-segment ICPs drawn or not), ``table[]`` (per
    size segment: ``segment``, ``accounts``, ``customers``, ``rows`` of the outcome, ``rate``,
    and ``lifts`` {include rule: ``lift``, ``ci_low``, ``ci_high``, ``n``} within it) and
    ``icps`` ({segment: [include rules that clearly help there]}) when drawn.
``pmf``
    Product-market-fit indicators where the data has them: ``referral_share[]`` (``group``:
    all customers / new customers of the last four quarters, ``n``, ``referred``, ``share``
    with ``ci_low`` / ``ci_high``), ``threshold`` (0.3, the seeds' test), ``verdict``, and
    ``by_tier[]`` (``customers``, ``referred_share`` with interval, ``nps_n``, ``nps_mean``
    with interval, ``promoters``: share answering 9-10).
``headline``
    Display strings for the run dashboard, e.g. ``{"ICP": "...", "Holdout AUC": "0.67
    (0.64-0.70)", "Tier 1 vs Tier 3 win rate": "3.3x"}``.
``caveats``
    Warnings that travel with the blueprint.
"""

from __future__ import annotations

import json
import math
import re
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
import pandas as pd
from scipy import stats as sps

from icp_research.analyses import registry
from icp_research.analyses.antipatterns import Condition, read_anti_patterns
from icp_research.analyses.slide import write_slide
from icp_research.artifacts import read_artifact
from icp_research.data.study import Study
from icp_research.errors import AnalysisError, InputError, NotEnoughData
from icp_research.formatting import error_bars, fmt_money, fmt_p
from icp_research.methods.binning import MISSING, OTHER, cut_points
from icp_research.methods.stats import (
    adjust_pvalues,
    clustered_rate_test,
    clustered_ratio_ci,
    poisson_rate_ratio,
    proportion_ci,
    ratio_ci,
    two_proportion_pvalue,
)
from icp_research.result import Result
from icp_research.scoring.schema import ICP_FORMAT
from icp_research.version import __version__

__all__ = [
    "Blueprint",
    "build_blueprint",
    "crm_prospects",
    "market_sizing",
    "onepager_html",
    "plot_backtest",
    "plot_rule_lifts",
    "plot_scorecard",
    "pmf_indicators",
    "pmf_table",
    "rules_frame",
    "save_artifacts",
    "sizing_table",
    "sizing_tiers_table",
    "tier_spec",
    "write_onepager",
]

FORMAT = ICP_FORMAT

#: Attributes that say how an account came to us rather than who it is: signals, not filters.
CHANNEL_ATTRIBUTES = ("referral_source", "lead_source", "source", "channel")

#: Outcomes the blueprint can be built on (yes/no outcomes of the significance analysis).
OUTCOMES = ("won", "retained", "best_customer")

_OUTCOME_WORDS = {
    "won": ("win rate", "won", "deals"),
    "retained": ("12-month retention", "retained", "customers"),
    "best_customer": ("best-customer rate", "best customers", "customers"),
    "churn": ("churn rate", "churned", "customers"),
    "no_decision": ("'no decision' share", "no decision", "lost deals"),
}

_SOURCE_NAMES = {
    "significance": "predictor significance",
    "churn": "churn analysis",
    "deals": "lost-deal analysis",
}

#: The share of new customers that come from referrals above which the seeds see
#: product-market fit.
PMF_REFERRAL_SHARE = 0.30

MAX_UNCERTAIN = 8


# ---------------------------------------------------------------------------------------------
# Upstream evidence: the significance shortlist and the anti-patterns


@dataclass
class Upstream:
    """What the other analyses found, as the blueprint uses it.

    ``recommended`` / ``not_recommended``: the shortlist of
    :meth:`icp_research.analyses.significance.SignificanceResult.to_json`; ``predictors``: the rows of
    ``predictors.csv``; ``predictor_summary``: ``predictor_summary.csv``; ``anti_patterns``: the
    merged anti-pattern table; ``sources``: where each came from (computed or read from a run's
    artifacts); ``caveats``: what could not be computed.
    """

    recommended: list = field(default_factory=list)
    not_recommended: list = field(default_factory=list)
    predictors: pd.DataFrame = field(default_factory=pd.DataFrame)
    predictor_summary: pd.DataFrame = field(default_factory=pd.DataFrame)
    anti_patterns: pd.DataFrame = field(default_factory=pd.DataFrame)
    holdout_quarters: int | None = None
    sources: dict = field(default_factory=dict)
    caveats: list = field(default_factory=list)


def _snapshot_as_of(directory: Path) -> str | None:
    """The as-of date of the run whose artifacts folder this is (from its data snapshot)."""
    meta = directory / "data" / "dataset.json"
    try:
        derived = json.loads(meta.read_text(encoding="utf-8")).get("derived") or {}
    except (OSError, ValueError):
        return None
    return derived.get("as_of")


def upstream_evidence(
    study: Study,
    *,
    significance=None,
    anti_patterns: pd.DataFrame | None = None,
    reuse_artifacts: bool = True,
) -> Upstream:
    """Gather the significance shortlist and the anti-patterns the blueprint is built from.

    Given objects are used as they are. Otherwise, when ``reuse_artifacts`` and the study's
    artifacts folder belongs to a run of the same as-of date (its data snapshot says so), the
    run's ``icp_predictors.json``, ``predictors.csv``, ``predictor_summary.csv`` and
    ``anti_patterns_*.csv`` are read; what is missing is computed here (the blueprint never
    needs the other reports to have run).
    """
    upstream = Upstream()
    as_of = study.as_of.strftime("%Y-%m-%d")
    folder = study.artifacts_dir
    same_run = reuse_artifacts and folder is not None and _snapshot_as_of(Path(folder)) == as_of
    if significance is None and same_run:
        _read_significance(upstream, Path(folder), as_of)
    elif significance is not None:
        _take_significance(upstream, significance, "given")
    if "significance" not in upstream.sources:
        from icp_research.analyses.significance import predictor_significance

        try:
            result = predictor_significance(
                study, outcomes=("won", "retained", "best_customer"), behavioural=False
            )
        except (NotEnoughData, InputError, AnalysisError, ValueError) as error:
            upstream.caveats.append(f"The predictor significance could not be computed: {error}")
        else:
            _take_significance(upstream, result, "computed")

    if anti_patterns is not None:
        upstream.anti_patterns = anti_patterns
        upstream.sources["anti_patterns"] = "given"
        return upstream
    parts = []
    if same_run:
        found = read_anti_patterns(Path(folder))
        names = sorted(p.name for p in Path(folder).glob("anti_patterns_*.csv"))
        if names:
            parts.append(found)
            upstream.sources["anti_patterns"] = "read from " + ", ".join(names)
    have = {p.name for p in Path(folder).glob("anti_patterns_*.csv")} if same_run else set()
    computed = []
    if "anti_patterns_churn.csv" not in have and (
        study.has("subscriptions") or study.has("churn_events")
    ):
        from icp_research.analyses.churn import churn_analysis

        try:
            parts.append(churn_analysis(study, max_curves=0).anti_patterns)
            computed.append("churn")
        except (NotEnoughData, InputError, AnalysisError, ValueError) as error:
            upstream.caveats.append(f"Churn anti-patterns could not be computed: {error}")
    if "anti_patterns_deals.csv" not in have and study.has("opportunities"):
        from icp_research.analyses.deals import lost_deal_analysis

        try:
            parts.append(lost_deal_analysis(study, cycle_curves=()).anti_patterns)
            computed.append("lost deals")
        except (NotEnoughData, InputError, AnalysisError, ValueError) as error:
            upstream.caveats.append(f"Lost-deal anti-patterns could not be computed: {error}")
    if computed:
        upstream.sources["anti_patterns"] = "; ".join(
            filter(
                None, [upstream.sources.get("anti_patterns"), "computed: " + ", ".join(computed)]
            )
        )
    parts = [p for p in parts if len(p)]
    upstream.anti_patterns = (
        pd.concat(parts, ignore_index=True).drop_duplicates("rule_id") if parts else pd.DataFrame()
    )
    return upstream


def _take_significance(upstream: Upstream, result, source: str) -> None:
    shortlist = result.to_json()
    upstream.recommended = list(shortlist.get("recommended", []))
    upstream.not_recommended = list(shortlist.get("not_recommended", []))
    upstream.holdout_quarters = shortlist.get("holdout_quarters")
    upstream.predictors = result.summary.copy()
    upstream.predictor_summary = result.tables.get("predictor_summary", pd.DataFrame()).copy()
    upstream.sources["significance"] = source


def _read_significance(upstream: Upstream, folder: Path, as_of: str) -> None:
    # The lossless copies (never the spreadsheet-safe CSVs, whose cells may carry a "'").
    shortlist = read_artifact(registry.ICP_PREDICTORS, folder)
    if not isinstance(shortlist, dict) or shortlist.get("as_of") != as_of:
        return
    predictors = read_artifact(registry.PREDICTORS, folder)
    summary = read_artifact(registry.PREDICTOR_SUMMARY, folder)
    if predictors is None or summary is None:
        return
    for frame in (predictors, summary):
        for column in ("significant", "replicated", "underpowered", "recommended"):
            if column in frame.columns:
                frame[column] = frame[column].astype(str).str.lower().eq("true")
    upstream.recommended = list(shortlist.get("recommended", []))
    upstream.not_recommended = list(shortlist.get("not_recommended", []))
    upstream.holdout_quarters = shortlist.get("holdout_quarters")
    upstream.predictors = predictors
    upstream.predictor_summary = summary
    upstream.sources["significance"] = "read from " + ", ".join(
        a.filename
        for a in (registry.ICP_PREDICTORS, registry.PREDICTORS, registry.PREDICTOR_SUMMARY)
    )


# ---------------------------------------------------------------------------------------------
# Samples: the rows each outcome's evidence is measured on, split in time


@dataclass
class _Sample:
    """One outcome's rows (attributes + ``y``, or ``events`` / ``exposure`` for churn), split
    into the training period and the holdout (the latest quarters)."""

    outcome: str
    unit: str
    kind: str  # "rate" (a yes/no per row) or "churn" (events per customer-year)
    training: pd.DataFrame
    holdout: pd.DataFrame
    clustered: bool
    definition: str = ""
    split_on: str = ""
    holdout_from: pd.Timestamp | None = None

    @property
    def words(self) -> tuple[str, str, str]:
        return _OUTCOME_WORDS.get(self.outcome, (self.outcome, self.outcome, self.unit))


def _holdout_start(as_of: pd.Timestamp, quarters: int) -> pd.Timestamp:
    return (pd.Period(as_of, "Q") - (quarters - 1)).start_time


def _samples(study: Study, attributes: Sequence[str], holdout_quarters: int) -> dict:
    """Every outcome the data can measure: won / retained / best_customer (from
    :func:`icp_research.analyses.significance.outcome_frames`), 'no decision' among lost deals, churn."""
    from icp_research.analyses.significance import outcome_frames

    samples: dict[str, _Sample] = {}
    frames = outcome_frames(
        study,
        outcomes=OUTCOMES,
        predictors=list(attributes),
        holdout_quarters=max(int(holdout_quarters), 1),
    )
    amounts = None
    if len(study.deals) and "amount" in study.deals.columns:
        amounts = study.deals.set_index("opportunity_id")["amount"]
    for frame in frames:
        if frame.skipped or frame.discovery is None:
            continue
        parts = []
        for part in (frame.discovery, frame.confirmation):
            part = part.assign(y=part[frame.name].astype(float))
            if frame.name == "won" and amounts is not None:
                part = part.assign(amount=part["opportunity_id"].map(amounts).astype(float))
            parts.append(part)
        samples[frame.name] = _Sample(
            frame.name,
            frame.unit,
            "rate",
            parts[0],
            parts[1],
            clustered=frame.cluster is not None,
            definition=frame.definition,
            split_on=frame.split_on,
            holdout_from=frame.confirm_from,
        )
    holdout_from = _holdout_start(study.as_of, max(int(holdout_quarters), 1))
    deals = study.deals
    if len(deals) and "no_decision" in deals.columns:
        lost = deals[
            deals["is_new_business"].astype(bool)
            & deals["is_closed"].astype(bool)
            & deals["account_id"].notna()
        ]
        lost = lost[~lost["won"].astype(bool)]
        if len(lost) and lost["no_decision"].notna().any():
            lost = lost.assign(y=lost["no_decision"].astype(float))
            closed = pd.to_datetime(lost["closed_at"])
            samples["no_decision"] = _Sample(
                "no_decision",
                "lost deals",
                "rate",
                lost[closed < holdout_from],
                lost[closed >= holdout_from],
                clustered=True,
                definition="lost new-business deals: ended in 'no decision' (True) or not",
                split_on="closed_at",
                holdout_from=holdout_from,
            )
    churn = _churn_sample(study, holdout_from)
    if churn is not None:
        samples["churn"] = churn
    return samples


def _churn_sample(study: Study, holdout_from: pd.Timestamp) -> _Sample | None:
    if study.revenue_basis != "subscriptions":
        return None
    facts = study.facts
    customers = facts[
        facts["is_customer"].fillna(False).astype(bool) & facts["customer_since"].notna()
    ]
    if customers.empty:
        return None
    start = pd.to_datetime(customers["customer_since"])
    churned = customers["churned"].fillna(False).astype(bool).to_numpy()
    churned_at = pd.to_datetime(customers["churned_at"])
    end = churned_at.where(churned, study.as_of).fillna(study.as_of)
    day = pd.Timedelta(days=365.25)
    parts = []
    when = churned_at.to_numpy()
    for low, high, last in ((start.min(), holdout_from, False), (holdout_from, study.as_of, True)):
        begin = start.clip(lower=low)
        finish = end.clip(upper=high)
        exposure = ((finish - begin) / day).clip(lower=0).to_numpy(dtype=float)
        before_end = when <= np.datetime64(high) if last else when < np.datetime64(high)
        events = churned & (when >= np.datetime64(low)) & before_end
        part = customers.assign(exposure=exposure, events=events.astype(float))
        parts.append(part[part["exposure"] > 0])
    return _Sample(
        "churn",
        "customers",
        "churn",
        parts[0],
        parts[1],
        clustered=False,
        definition="customers: churns per customer-year while a customer",
        split_on="customer-time",
        holdout_from=holdout_from,
    )


# ---------------------------------------------------------------------------------------------
# Evidence: a rule's rate against the rest, on the training period and on the holdout


def _per_account(frame: pd.DataFrame, mask: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    part = frame.loc[mask]
    if part.empty:
        return np.zeros(0), np.zeros(0)
    grouped = part.groupby("account_id", sort=False)["y"]
    return grouped.sum().to_numpy(dtype=float), grouped.size().to_numpy(dtype=float)


def _compare(sample: _Sample, frame: pd.DataFrame, inside, rest, alpha: float) -> dict:
    """Outcome in the rule vs the rest on one period: n, rates, lift with CI, p-value."""
    inside = np.asarray(inside, bool)
    rest = np.asarray(rest, bool)
    out = {
        "n": int(inside.sum()),
        "accounts": int(frame.loc[inside, "account_id"].nunique()) if inside.any() else 0,
        "n_rest": int(rest.sum()),
        "events": np.nan,
        "rate_in": np.nan,
        "rate_out": np.nan,
        "lift": np.nan,
        "ci_low": np.nan,
        "ci_high": np.nan,
        "p_value": np.nan,
    }
    if not inside.any() or not rest.any():
        return out
    if sample.kind == "churn":
        events_in = float(frame.loc[inside, "events"].sum())
        exposure_in = float(frame.loc[inside, "exposure"].sum())
        events_out = float(frame.loc[rest, "events"].sum())
        exposure_out = float(frame.loc[rest, "exposure"].sum())
        ratio, low, high, p = poisson_rate_ratio(
            events_in, exposure_in, events_out, exposure_out, alpha
        )
        out.update(
            events=events_in,
            rate_in=events_in / exposure_in if exposure_in > 0 else np.nan,
            rate_out=events_out / exposure_out if exposure_out > 0 else np.nan,
            lift=ratio,
            ci_low=low,
            ci_high=high,
            p_value=p,
        )
        return out
    y = frame["y"].to_numpy(dtype=float)
    k1, n1 = float(y[inside].sum()), float(inside.sum())
    k2, n2 = float(y[rest].sum()), float(rest.sum())
    out.update(events=k1, rate_in=k1 / n1, rate_out=k2 / n2)
    if k1 + k2 == 0 or k1 + k2 == n1 + n2:
        out["p_value"] = 1.0
        return out
    if sample.clustered:
        e1, t1 = _per_account(frame, inside)
        e2, t2 = _per_account(frame, rest)
        r1, _, _, _, se1 = clustered_ratio_ci(e1, t1, alpha)
        r2, _, _, _, se2 = clustered_ratio_ci(e2, t2, alpha)
        out["p_value"] = clustered_rate_test(e1, t1, e2, t2)
        if r1 > 0 and r2 > 0 and np.isfinite(se1) and np.isfinite(se2):
            z = sps.norm.ppf(1 - alpha / 2)
            log_se = math.sqrt((se1 / r1) ** 2 + (se2 / r2) ** 2)
            lift = r1 / r2
            out.update(
                lift=lift, ci_low=lift * math.exp(-z * log_se), ci_high=lift * math.exp(z * log_se)
            )
            return out
    lift, low, high = (float(v) for v in ratio_ci(k1, n1, k2, n2, alpha))
    out.update(lift=lift, ci_low=low, ci_high=high)
    if not sample.clustered or np.isnan(out["p_value"]):
        out["p_value"] = float(two_proportion_pvalue(k1, n1, k2, n2)[0])
    return out


def _one_sided(p_two: float, lift: float, direction: int) -> float:
    """One-sided p in ``direction`` (+1: the rule does better, -1: worse) from a two-sided p."""
    if not np.isfinite(p_two) or not np.isfinite(lift) or lift <= 0:
        return np.nan if not np.isfinite(p_two) else (1.0 if direction > 0 else p_two / 2)
    same = (lift > 1) if direction > 0 else (lift < 1)
    if lift == 1:
        return 1.0
    return p_two / 2 if same else 1 - p_two / 2


@dataclass
class _Evidence:
    """One outcome's evidence for one rule (training and holdout)."""

    sample: _Sample
    source: str
    compared_with: str
    training: dict
    holdout: dict | None
    direction: int = 0  # +1 the rule's rate is higher than the rest's, -1 lower (training)
    alpha: float = 0.05
    q_value: float = np.nan
    p_adjusted: float = np.nan
    replicated: bool | None = None
    replicated_upstream: bool | None = None

    @property
    def held_up(self) -> bool:
        """Replicated here, or replicated against all other rows by the analysis that proposed
        it with the holdout pointing the same way here."""
        if self.replicated:
            return True
        h = self.holdout
        if not self.replicated_upstream or h is None or not h.get("n"):
            return False
        lift = h.get("lift", np.nan)
        return bool(np.isfinite(lift) and (lift - 1) * self.direction > 0)

    @property
    def significant(self) -> bool:
        return bool(np.isfinite(self.q_value) and self.q_value < self.alpha)

    @property
    def better(self) -> bool:
        """The rule does significantly better than the rest on this outcome (training)."""
        good = 1 if self.sample.outcome not in ("churn", "no_decision") else -1
        return self.significant and self.direction == good

    @property
    def worse(self) -> bool:
        """The rule does significantly worse than the rest on this outcome (training)."""
        good = 1 if self.sample.outcome not in ("churn", "no_decision") else -1
        return self.significant and self.direction == -good

    def to_dict(self) -> dict:
        sample = self.sample
        out = {
            "outcome": sample.outcome,
            "unit": sample.unit,
            "source": self.source,
            "rate_unit": "per customer-year" if sample.kind == "churn" else "share",
            "compared_with": self.compared_with,
        }
        out.update({k: _plain(v) for k, v in self.training.items()})
        out["q_value"] = _plain(self.q_value)
        if self.holdout is None or self.holdout.get("n", 0) == 0:
            out["holdout"] = None
        else:
            out["holdout"] = {k: _plain(v) for k, v in self.holdout.items()}
            out["holdout"]["p_adjusted"] = _plain(self.p_adjusted)
        out["replicated"] = self.replicated
        if self.replicated_upstream is not None:
            out["replicated_upstream"] = self.replicated_upstream
        out["statement"] = self.sentence()
        return out

    def sentence(self) -> str:
        sample = self.sample
        t = self.training
        label = sample.words[0]
        if t["n"] == 0:
            return f"{label}: no {sample.unit} in the rule on the training period."
        rates = _rates_text(sample, t)
        q = f"q {_q_words(self.q_value)}"
        size = f"{t['n']:,} {sample.unit}"
        if sample.clustered:
            size += f" at {t['accounts']:,} accounts"
        text = f"{label}: {rates} ({_lift_text(t)}; {size}; {q})"
        h = self.holdout
        if h is None or h.get("n", 0) == 0:
            text += "; nothing in the latest quarters to check it on."
        else:
            text += f"; latest quarters {_rates_text(sample, h)} ({_lift_text(h)}): "
            text += _verdict(self) + "."
        return text


def _verdict(evidence: _Evidence) -> str:
    if evidence.replicated:
        return "held up"
    if evidence.held_up:
        return (
            "same direction, not significant on its own; it held up against all other "
            f"{evidence.sample.unit} in the {_SOURCE_NAMES['significance']} analysis"
        )
    return {False: "did not hold up", None: "not re-tested"}[evidence.replicated]


def _rates_text(sample: _Sample, values: dict) -> str:
    if sample.kind == "churn":
        return (
            f"{_per100(values['rate_in'])} vs {_per100(values['rate_out'])} churns per 100 "
            "customer-years"
        )
    return f"{_pct(values['rate_in'])} vs {_pct(values['rate_out'])}"


def _lift_text(values: dict) -> str:
    lift = values.get("lift")
    if lift is None or not np.isfinite(lift):
        return "ratio –"
    text = f"{lift:.2f}x"
    low, high = values.get("ci_low"), values.get("ci_high")
    if low is not None and high is not None and np.isfinite(low) and np.isfinite(high):
        text += f", 95% CI {low:.2f}–{high:.2f}"
    return text


def _lift_short(values: dict) -> str:
    """'1.94x (1.70–2.22)'."""
    lift = values.get("lift")
    if lift is None or not np.isfinite(lift):
        return "–"
    low, high = values.get("ci_low"), values.get("ci_high")
    if low is None or high is None or not (np.isfinite(low) and np.isfinite(high)):
        return f"{lift:.2f}x"
    return f"{lift:.2f}x ({low:.2f}–{high:.2f})"


def _per100(x) -> str:
    return "–" if x is None or not np.isfinite(x) else f"{100 * x:.0f}"


def _pct(x) -> str:
    return "–" if x is None or not np.isfinite(x) else f"{100 * x:.0f}%"


def _q_words(q) -> str:
    text = fmt_p(q)
    return f"< {text[1:]}" if text.startswith("<") else f"= {text}"


def _plain(value):
    if isinstance(value, np.bool_ | bool):
        return bool(value)
    if isinstance(value, np.integer):
        return int(value)
    if isinstance(value, float | np.floating):
        value = float(value)
        return value if math.isfinite(value) else None
    return value


def _measure(
    sample: _Sample,
    conditions: Sequence[Condition],
    *,
    rest_excludes: Sequence[Condition] = (),
    source: str,
    compared_with: str,
    alpha: float,
) -> _Evidence:
    """Evidence of a rule (all ``conditions``) on one outcome, training and holdout.

    The rule's rows are compared with the rows that meet neither the rule nor any of the
    ``rest_excludes`` conditions (e.g. an include rule on the same attribute).
    """
    results = []
    for frame in (sample.training, sample.holdout):
        if frame is None or frame.empty:
            results.append(None)
            continue
        inside = _hits(frame, conditions)
        rest = ~inside
        for condition in rest_excludes:
            rest &= ~condition.matches(frame).to_numpy()
        results.append(_compare(sample, frame, inside, rest, alpha))
    training = results[0] or _compare(sample, sample.training.iloc[0:0], [], [], alpha)
    lift = training["lift"]
    direction = 0 if not np.isfinite(lift) or lift == 1 else (1 if lift > 1 else -1)
    return _Evidence(sample, source, compared_with, training, results[1], direction, alpha)


def _hits(frame: pd.DataFrame, conditions: Sequence[Condition]) -> np.ndarray:
    mask = np.ones(len(frame), dtype=bool)
    for condition in conditions:
        mask &= condition.matches(frame).to_numpy()
    return mask


def _finish_family(evidence: list[_Evidence], alpha: float) -> None:
    """Benjamini-Hochberg q over the family's training p-values; replication on the holdout:
    one-sided in the training direction, Holm over the re-tested (significant) findings."""
    if not evidence:
        return
    q = adjust_pvalues([e.training["p_value"] for e in evidence], "fdr_bh")
    for item, value in zip(evidence, q, strict=True):
        item.q_value = float(value)
    retest = [
        e
        for e in evidence
        if e.significant and e.holdout is not None and e.holdout.get("n", 0) > 0 and e.direction
    ]
    one_sided = [_one_sided(e.holdout["p_value"], e.holdout["lift"], e.direction) for e in retest]
    adjusted = adjust_pvalues(one_sided, "holm") if retest else []
    for item, p_one, p_adj in zip(retest, one_sided, adjusted, strict=True):
        item.holdout["p_value"] = p_one
        item.p_adjusted = float(p_adj)
        if np.isfinite(p_adj):
            item.replicated = bool(p_adj < alpha)
    for item in evidence:
        if item.holdout is not None and item not in retest and item.holdout.get("n", 0) > 0:
            item.holdout["p_value"] = _one_sided(
                item.holdout["p_value"], item.holdout["lift"], item.direction or 1
            )


# ---------------------------------------------------------------------------------------------
# Rules


@dataclass
class Rule:
    """An include, exclude or uncertain rule: conditions that must all hold, and the evidence.

    ``evidence`` holds one :class:`_Evidence` per outcome it was measured on; ``sources`` the
    analyses that proposed it; ``role`` (include rules) is ``filter`` or ``signal``;
    ``direction`` (uncertain rules) ``favour`` or ``avoid``; ``reason`` why it is uncertain.
    """

    kind: str
    conditions: list
    attribute: str
    role: str = ""
    direction: str = ""
    reason: str = ""
    sources: list = field(default_factory=list)
    evidence: list = field(default_factory=list)
    share_of_accounts: float = np.nan

    @property
    def text(self) -> str:
        return " and ".join(c.text() for c in self.conditions)

    @property
    def phrase(self) -> str:
        return " and ".join(c.phrase() for c in self.conditions)

    @property
    def id(self) -> str:
        return f"{self.kind}:{self.text}"

    @property
    def strength(self) -> float:
        """The smallest training p-value of its evidence (for ordering)."""
        ps = [e.training["p_value"] for e in self.evidence if np.isfinite(e.training["p_value"])]
        return min(ps) if ps else 1.0

    @property
    def replicated(self) -> bool | None:
        """True when a significant piece of its evidence held up in the latest quarters."""
        significant = [e for e in self.evidence if e.significant]
        if any(e.held_up for e in significant):
            return True
        if any(e.replicated is False for e in significant):
            return False
        return None

    def to_dict(self) -> dict:
        out = {
            "id": self.id,
            "kind": self.kind,
            "text": self.text,
            "conditions": [c.to_dict() for c in self.conditions],
        }
        if self.kind == "include":
            out["role"] = self.role
        if self.kind == "uncertain":
            out["direction"] = self.direction
            out["reason"] = self.reason
        out["sources"] = list(self.sources)
        out["share_of_accounts"] = _plain(self.share_of_accounts)
        out["evidence"] = [e.to_dict() for e in self.evidence]
        return out


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


def _interval(condition: Condition) -> tuple[float, float] | None:
    if condition.operator == "less_than":
        return (-np.inf, float(condition.value))
    if condition.operator == "at_least":
        return (float(condition.value), np.inf)
    if condition.operator == "between":
        return (float(condition.value[0]), float(condition.value[1]))
    return None


def _values(condition: Condition) -> set | None:
    if condition.operator == "equals":
        return {str(condition.value)}
    if condition.operator == "in":
        return {str(v) for v in condition.value}
    return None


def _overlaps(a: Condition, b: Condition) -> bool:
    """Whether some value meets both conditions on the same attribute."""
    if a.attribute != b.attribute:
        return False
    ia, ib = _interval(a), _interval(b)
    if ia is not None and ib is not None:
        return max(ia[0], ib[0]) < min(ia[1], ib[1])
    va, vb = _values(a), _values(b)
    if va is not None and vb is not None:
        return bool(va & vb)
    return a.operator == b.operator == "is_missing"


def _contains(outer: Condition, inner: Condition) -> bool:
    """Whether every value meeting ``inner`` meets ``outer`` (same attribute)."""
    if outer.attribute != inner.attribute:
        return False
    io, ii = _interval(outer), _interval(inner)
    if io is not None and ii is not None:
        return io[0] <= ii[0] and ii[1] <= io[1]
    vo, vi = _values(outer), _values(inner)
    if vo is not None and vi is not None:
        return vi <= vo
    return outer.operator == inner.operator == "is_missing"


def _best_range(
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
    cluster-robust comparison (:func:`icp_research.methods.association.clustered_rate_contrast`),
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
        from icp_research.methods.association import clustered_rate_contrast

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


def _range_condition(attribute: str, lower: float, upper: float) -> Condition:
    if np.isinf(lower):
        return Condition(attribute, "less_than", float(upper))
    if np.isinf(upper):
        return Condition(attribute, "at_least", float(lower))
    return Condition(attribute, "between", [float(lower), float(upper)])


def _characteristics(upstream: Upstream, attributes: Sequence[str]) -> list[dict]:
    """The recommended characteristics, strongest first, with their role."""
    out = []
    for item in upstream.recommended:
        name = item["predictor"]
        if name not in attributes:
            continue
        out.append(
            {
                "rank": len(out) + 1,
                "attribute": name,
                "kind": item.get("kind", "categorical"),
                "role": "signal" if name in CHANNEL_ATTRIBUTES else "filter",
                "favour": list(item.get("favour", [])),
                "avoid": list(item.get("avoid", [])),
                "outcomes": list(item.get("outcomes", [])),
                "levels": list(item.get("levels", [])),
                "evidence": item.get("evidence", ""),
            }
        )
    return out


def _sample_for(characteristic: dict, samples: dict, outcome: str) -> _Sample | None:
    """The sample a characteristic's include rule is shaped on: the blueprint's outcome when
    the characteristic held up for it, else the first outcome it held up for."""
    names = [outcome] if outcome in characteristic["outcomes"] else []
    names += [o for o in characteristic["outcomes"] if o != outcome]
    names.append(outcome)
    for name in names:
        sample = samples.get(name)
        if sample is not None and sample.kind == "rate" and not sample.training.empty:
            return sample
    return None


def _include_condition(
    characteristic: dict, study: Study, samples: dict, outcome: str
) -> tuple[Condition | None, str]:
    """The include condition of a characteristic, and how it was found."""
    name = characteristic["attribute"]
    if characteristic["kind"] == "categorical":
        favour = sorted(str(v) for v in characteristic["favour"] if v not in (MISSING, OTHER))
        if not favour:
            return None, "no level to favour (only levels to avoid)"
        if len(favour) == 1:
            return Condition(name, "equals", favour[0]), "the favoured level"
        return Condition(name, "in", favour), "the favoured levels"
    sample = _sample_for(characteristic, samples, outcome)
    if sample is not None and name in sample.training.columns:
        edges = cut_points(study.facts[name], 20, min_bin_share=0.03)
        found = _best_range(
            sample.training[name],
            sample.training["y"],
            edges,
            clusters=sample.training["account_id"] if sample.clustered else None,
        )
        if found is not None:
            lower, upper, _ = found
            return (
                _range_condition(name, lower, upper),
                f"the range with the highest {sample.words[0]} on the training period "
                f"(scanned over cut points {', '.join(f'{e:,g}' for e in edges)})",
            )
    bounds = [
        (lv.get("low"), lv.get("high"))
        for lv in characteristic["levels"]
        if lv.get("direction") == "favour"
    ]
    if bounds:
        lows = [-np.inf if lo is None else lo for lo, _ in bounds]
        highs = [np.inf if hi is None else hi for _, hi in bounds]
        return _range_condition(name, min(lows), max(highs)), "the favoured bins"
    return None, "no range to favour"


def _include_rules(characteristics, study, samples, outcome, alpha) -> tuple[list[Rule], list[str]]:
    rules, notes = [], []
    for item in characteristics:
        condition, how = _include_condition(item, study, samples, outcome)
        if condition is None:
            notes.append(f"{item['attribute']}: no include rule ({how}).")
            continue
        item["rule_how"] = how
        rule = Rule(
            "include",
            [condition],
            item["attribute"],
            role=item["role"],
            sources=[_SOURCE_NAMES["significance"]],
        )
        names = [outcome, *item["outcomes"], "churn"]
        for name in dict.fromkeys(names):
            sample = samples.get(name)
            if sample is None:
                continue
            rule.evidence.append(
                _measure(
                    sample,
                    [condition],
                    source="blueprint",
                    compared_with=f"all other {sample.unit}",
                    alpha=alpha,
                )
            )
        rules.append(rule)
    _finish_family([e for r in rules for e in r.evidence], alpha)
    return rules, notes


def _condition_key(condition: Condition) -> tuple:
    value = condition.value
    if condition.operator in ("less_than", "at_least"):
        value = float(value)
    elif condition.operator == "between":
        value = [float(v) for v in value]
    elif condition.operator == "in":
        value = sorted(str(v) for v in value)
    return (condition.attribute, condition.operator, json.dumps(value))


def _replicated_findings(upstream: Upstream) -> set:
    """{(outcome, condition key)} of the significance findings that replicated."""
    rows = upstream.predictors
    if rows is None or rows.empty or "replicated" not in rows.columns:
        return set()
    found = set()
    for row in rows[rows["replicated"]].to_dict("records"):
        condition = level_condition(row["predictor"], row["level"], row.get("kind", "level"))
        if condition is not None:
            found.add((row["outcome"], _condition_key(condition)))
    return found


def _exclude_candidates(upstream: Upstream, characteristics) -> dict:
    """Candidate exclude conditions, merged: {key: (Condition, [(outcome, source)])}."""
    candidates: dict = {}

    def add(condition: Condition, outcome: str, source: str):
        key = _condition_key(condition)
        entry = candidates.setdefault(key, (condition, []))
        if (outcome, source) not in entry[1]:
            entry[1].append((outcome, source))

    anti = upstream.anti_patterns
    if anti is not None and len(anti):
        outcome_of = {"churn": "churn", "win_rate": "won", "no_decision": "no_decision"}
        for row in anti.to_dict("records"):
            if row.get("status") != "candidate" or row.get("outcome") not in outcome_of:
                continue
            try:
                condition = Condition(row["attribute"], row["operator"], row["value"])
            except (ValueError, TypeError):
                continue
            source = _SOURCE_NAMES.get(row.get("source"), str(row.get("source")))
            add(condition, outcome_of[row["outcome"]], source)
    for item in characteristics:
        for level in item["levels"]:
            if level.get("direction") != "avoid":
                continue
            if item["kind"] == "numeric":
                low, high = level.get("low"), level.get("high")
                if level["level"] == MISSING:
                    condition = Condition(item["attribute"], "is_missing")
                elif low is None and high is None:
                    continue
                else:
                    condition = _range_condition(
                        item["attribute"],
                        -np.inf if low is None else low,
                        np.inf if high is None else high,
                    )
            else:
                condition = level_condition(item["attribute"], level["level"], "level")
            if condition is not None:
                add(condition, level.get("outcome", "won"), _SOURCE_NAMES["significance"])
    return candidates


def _exclude_rules(
    upstream, characteristics, include: list[Rule], samples, facts, alpha
) -> tuple[list[Rule], list[Rule], list[str]]:
    """Exclude rules that add to the include rules and held up; the rest become uncertain or
    notes. Returns ``(exclude, uncertain, notes)``."""
    notes: list[str] = []
    include_on = {r.attribute: r for r in include}
    replicated = _replicated_findings(upstream)
    rules: list[Rule] = []
    for key, (condition, pairs) in _exclude_candidates(upstream, characteristics).items():
        proposed = _and(sorted({s for _, s in pairs}))
        if condition.attribute in CHANNEL_ATTRIBUTES:
            notes.append(
                f"{condition.text()} (proposed by the {proposed}): how an account came to us "
                "is a signal, not a filter; the fit score weighs it instead of an exclude rule."
            )
            continue
        inc = include_on.get(condition.attribute)
        if inc is not None and any(_overlaps(condition, c) for c in inc.conditions):
            notes.append(
                f"{condition.text()} (proposed by the {proposed}) overlaps the include rule "
                f"{inc.text}: the include rule takes precedence."
            )
            continue
        rest_excludes = list(inc.conditions) if inc is not None else []
        compared = (
            f"<unit> of accounts outside the include rule {inc.text}"
            if inc is not None
            else "all other <unit>"
        )
        rule = Rule(
            "exclude",
            [condition],
            condition.attribute,
            sources=sorted({s for _, s in pairs}),
        )
        for outcome, source in pairs:
            sample = samples.get(outcome)
            if sample is None or any(e.sample is sample for e in rule.evidence):
                continue
            evidence = _measure(
                sample,
                [condition],
                rest_excludes=rest_excludes,
                source=source,
                compared_with=compared.replace("<unit>", sample.unit),
                alpha=alpha,
            )
            if (outcome, key) in replicated:
                evidence.replicated_upstream = True
            rule.evidence.append(evidence)
        if rule.evidence:
            rules.append(rule)
    _finish_family([e for r in rules for e in r.evidence], alpha)

    kept: list[Rule] = []
    uncertain: list[Rule] = []
    for rule in sorted(rules, key=lambda r: r.strength):
        worse = [e for e in rule.evidence if e.worse]
        inc = include_on.get(rule.attribute)
        if any(e.held_up for e in worse):
            kept.append(rule)
        elif worse:
            rule.kind = "uncertain"
            rule.direction = "avoid"
            checked = [e for e in worse if e.replicated is False]
            rule.reason = (
                "worse earlier; did not hold up in the latest quarters"
                if checked
                else "worse earlier; too little data in the latest quarters to check it"
            )
            uncertain.append(rule)
        elif inc is not None:
            notes.append(
                f"{rule.text}: no worse than other accounts outside the include rule "
                f"{inc.text}, which already leaves it out."
            )
        else:
            notes.append(
                f"{rule.text}: not significantly worse once re-tested on the training period."
            )
    # A rule that mostly names accounts another rule already excludes adds little. Rules on
    # the defining characteristics go first; then those on attributes that merely travel with
    # one (annual revenue with company size), strongest first.
    characteristic_names = {c["attribute"] for c in characteristics}
    proxies = {
        item["predictor"]
        for item in upstream.not_recommended
        if "measures much the same" in str(item.get("reason", ""))
    }
    kept.sort(
        key=lambda r: (
            0 if r.attribute in characteristic_names else 2 if r.attribute in proxies else 1,
            r.strength,
        )
    )
    final: list[Rule] = []
    covered = np.zeros(len(facts), dtype=bool)
    for rule in kept:
        hits = _hits(facts, rule.conditions)
        share_new = (hits & ~covered).sum() / max(hits.sum(), 1)
        if final and share_new < 0.2:
            notes.append(
                f"{rule.text}: {1 - share_new:.0%} of its accounts are already excluded by "
                f"{_and([r.text for r in final])}; left out as redundant."
            )
            continue
        covered |= hits
        final.append(rule)
    return final, uncertain, notes


def _covered_by_rules(condition: Condition, favour: bool, include, exclude) -> str | None:
    """Why a significance finding needs no uncertain rule (None when it does)."""
    for rule in include:
        for c in rule.conditions:
            if c.attribute != condition.attribute:
                continue
            if favour and _contains(c, condition):
                return f"inside the include rule {rule.text}"
            if not favour and not _overlaps(c, condition):
                return f"outside the include rule {rule.text}"
    for rule in exclude:
        for c in rule.conditions:
            if not favour and (_contains(c, condition) or c == condition):
                return f"inside the exclude rule {rule.text}"
    return None


def _significance_uncertain(
    upstream: Upstream, include, exclude, samples, alpha
) -> tuple[list[Rule], list[str]]:
    """Findings of the significance analysis that are suggestive, or significant but did not
    (or could not) hold up in the latest quarters: uncertain rules."""
    rows = upstream.predictors
    notes: list[str] = []
    if rows is None or rows.empty:
        return [], notes
    redundant = {
        item["predictor"]
        for item in upstream.not_recommended
        if "measures much the same" in str(item.get("reason", ""))
    }
    candidates: dict = {}
    seen_tests: set = set()
    binary = rows[rows["outcome"].isin(OUTCOMES) & (rows["kind"].isin(["level", "bin"]))]
    for row in binary.to_dict("records"):
        significant = bool(row.get("significant"))
        replicated = bool(row.get("replicated"))
        p = row.get("p_value")
        suggestive = not significant and p is not None and np.isfinite(p) and p < alpha
        if not ((significant and not replicated) or suggestive):
            continue
        if row["predictor"] in redundant:
            continue
        condition = level_condition(row["predictor"], row["level"], row["kind"])
        effect = row.get("effect")
        if condition is None or effect is None or not np.isfinite(effect) or effect == 1:
            continue
        favour = effect > 1
        if _covered_by_rules(condition, favour, include, exclude) is not None:
            continue
        # The two levels of a yes/no attribute are one test seen from both sides.
        mirror = (row["outcome"], row["predictor"], round(float(p), 12))
        if mirror in seen_tests:
            continue
        seen_tests.add(mirror)
        if significant:
            status = str(row.get("replication", ""))
            reason = (
                "significant earlier; no data in the latest quarters to check it"
                if "no confirmation" in status or "no rows" in status or "not re-tested" in status
                else "significant earlier; did not hold up in the latest quarters"
            )
        else:
            reason = f"suggestive (p = {fmt_p(p)}), not significant once corrected"
        key = _condition_key(condition)
        if key in candidates:
            continue
        candidates[key] = (condition, row["outcome"], favour, reason)
    rules = []
    for condition, outcome, favour, reason in candidates.values():
        sample = samples.get(outcome)
        if sample is None:
            continue
        rule = Rule(
            "uncertain",
            [condition],
            condition.attribute,
            direction="favour" if favour else "avoid",
            reason=reason,
            sources=[_SOURCE_NAMES["significance"]],
        )
        rule.evidence.append(
            _measure(
                sample,
                [condition],
                source=_SOURCE_NAMES["significance"],
                compared_with=f"all other {sample.unit}",
                alpha=alpha,
            )
        )
        rules.append(rule)
    _finish_family([e for r in rules for e in r.evidence], alpha)
    return rules, notes


def _and(items: Sequence[str]) -> str:
    items = list(items)
    if len(items) <= 1:
        return "".join(items)
    return ", ".join(items[:-1]) + " and " + items[-1]


def _or(items: Sequence[str]) -> str:
    items = list(items)
    if len(items) <= 1:
        return "".join(items)
    return ", ".join(items[:-1]) + " or " + items[-1]


# ---------------------------------------------------------------------------------------------
# Fit score, validation, backtest


def tier_spec(tiers, study: Study) -> dict:
    """How tiers are cut: ``{"fixed": [(name, min_score), ...]}`` or ``{"shares": [...],
    "names": [...]}``.

    ``tiers`` is None (the config's ``[scoring] tiers``), a mapping ``{"Tier 1": 70, ...}`` or a
    list of ``(name, min_score)`` pairs (fixed cut-offs, best first, the last at 0), or
    ``"shares"`` / a list of shares such as ``[0.2, 0.3, 0.5]`` (cut-offs that split the
    training rows into those shares).
    """
    from icp_research.scoring.scorecard import DEFAULT_TIERS

    if tiers is None or (isinstance(tiers, str) and tiers.strip() in ("", "config")):
        tiers = dict(study.config.scoring.get("tiers") or {})
    if isinstance(tiers, str):
        text = tiers.strip()
        if text == "shares":
            return {"shares": [0.2, 0.3, 0.5], "names": list(DEFAULT_TIERS)}
        try:
            tiers = json.loads(text)
        except ValueError:
            raise InputError(
                f"tiers = {tiers!r}: give a mapping such as "
                '{"Tier 1": 70, "Tier 2": 40, "Tier 3": 0}, or "shares"'
            ) from None
    if isinstance(tiers, Mapping):
        pairs = [(str(k), float(v)) for k, v in tiers.items()]
    else:
        items = list(tiers)
        if items and all(isinstance(v, int | float) for v in items):
            shares = [float(v) for v in items]
            if any(s <= 0 for s in shares) or abs(sum(shares) - 1) > 1e-6:
                raise InputError(f"tier shares {shares} must be positive and add up to 1")
            names = [f"Tier {i + 1}" for i in range(len(shares))]
            return {"shares": shares, "names": names}
        pairs = [(str(name), float(value)) for name, value in items]
    pairs.sort(key=lambda pair: -pair[1])
    if not pairs or pairs[-1][1] != 0:
        raise InputError(
            f"tiers {dict(pairs)}: the last tier must start at 0 so that every lead gets a tier"
        )
    if any(v > 100 or v < 0 for _, v in pairs):
        raise InputError(f"tiers {dict(pairs)}: minimum scores must be between 0 and 100")
    return {"fixed": pairs}


def _fit_kwargs(spec: dict) -> dict:
    if "fixed" in spec:
        return {"tiers": spec["fixed"]}
    return {"tier_shares": spec["shares"], "tier_names": spec["names"]}


def _score_attributes(characteristics, upstream: Upstream, study: Study) -> tuple[list, list]:
    """The scorecard's candidate attributes: the characteristics, plus predictors that held up
    for a yes/no outcome but were not shortlisted (the fit decides whether they add)."""
    names = [c["attribute"] for c in characteristics]
    summary = upstream.predictor_summary
    if summary is not None and len(summary) and {"replicated", "outcome"} <= set(summary):
        extra = summary[summary["replicated"] & summary["outcome"].isin(OUTCOMES)]
        names += [p for p in extra["predictor"] if p not in names]
    spec = study.attributes
    categorical = [n for n in dict.fromkeys(names) if n in spec.categorical]
    numeric = [n for n in dict.fromkeys(names) if n in spec.numeric]
    return categorical, numeric


def _value_column(sample: _Sample) -> str | None:
    for column in ("amount", "arr_initial"):
        if column in sample.holdout.columns and sample.holdout[column].notna().any():
            return column
    return None


def _backtest(study: Study, scorecard, outcome: str, quarters: int, spec: dict, alpha: float):
    """Walk-forward backtest: per recent quarter, fit on what was known at its start, score
    the accounts known then, compare with what happened in the quarter.

    Returns ``(per tier and quarter, per quarter, notes)``.
    """
    from icp_research.analyses.significance import outcome_frames
    from icp_research.scoring.scorecard import auc_ci, fit_scorecard

    tier_rows, quarter_rows, notes = [], [], []
    if outcome not in ("won", "retained") or quarters <= 0:
        notes.append(
            f"No backtest for {outcome}: it is not an event that happens within a quarter."
        )
        return pd.DataFrame(), pd.DataFrame(), notes
    categorical = list(scorecard.params.get("categorical", []))
    numeric = list(scorecard.params.get("numeric", []))
    last = pd.Period(study.as_of, "Q")
    if last.end_time.normalize() > study.as_of:
        last -= 1  # the current quarter is not over
    deals = study.deals
    for offset in range(quarters - 1, -1, -1):
        quarter = last - offset
        start, end = quarter.start_time, quarter.end_time.normalize()
        scored_as_of = start - pd.Timedelta(days=1)
        past = study.at(scored_as_of)
        frame = outcome_frames(
            past, outcomes=[outcome], predictors=categorical + numeric, holdout_quarters=0
        )[0]
        if frame.skipped:
            notes.append(f"{quarter}: not backtested ({frame.skipped} on {scored_as_of:%Y-%m-%d}).")
            continue
        try:
            fitted = fit_scorecard(
                frame.data,
                outcome,
                categorical=categorical,
                numeric=numeric,
                alpha=alpha,
                cluster=frame.cluster if frame.cluster in frame.data.columns else None,
                min_level_count=int(study.analysis.get("min_level_count", 10)),
                **_fit_kwargs(spec),
            )
        except (NotEnoughData, InputError) as error:
            notes.append(f"{quarter}: not backtested ({error}).")
            continue
        facts = past.facts
        customer = facts["is_customer"].fillna(False).astype(bool)
        if outcome == "won":
            population = facts[~customer]
            closed = pd.to_datetime(deals["closed_at"])
            won = deals[
                deals["is_new_business"].astype(bool)
                & deals["won"].fillna(False).astype(bool)
                & (closed >= start)
                & (closed <= end)
            ]
            value_by_account = (
                won.groupby("account_id")["amount"].sum() if "amount" in won else None
            )
            y = population["account_id"].isin(set(won["account_id"])).to_numpy()
            value = (
                population["account_id"].map(value_by_account).fillna(0).to_numpy(float)
                if value_by_account is not None
                else np.zeros(len(population))
            )
            event_words = "became customers"
        else:
            churned = facts["churned"].fillna(False).astype(bool)
            population = facts[customer & ~churned]
            churns = study.facts.set_index("account_id")["churned_at"]
            when = pd.to_datetime(population["account_id"].map(churns))
            y = ~((when >= start) & (when <= end)).to_numpy()
            value = np.zeros(len(population))
            event_words = "stayed"
        if population.empty:
            notes.append(f"{quarter}: no accounts to score on {scored_as_of:%Y-%m-%d}.")
            continue
        scores = fitted.score(population, reasons=False)["fit_score"].to_numpy()
        tier_codes = np.asarray(fitted.tier_of(scores).codes)
        names = [n for n, _ in fitted.tiers]
        for code, name in enumerate(names):
            members = tier_codes == code
            n, k = int(members.sum()), int(y[members].sum())
            low, high = proportion_ci(k, n, alpha) if n else (np.nan, np.nan)
            tier_rows.append(
                {
                    "quarter": str(quarter),
                    "scored_as_of": scored_as_of.strftime("%Y-%m-%d"),
                    "tier": name,
                    "n": n,
                    "events": k,
                    "rate": k / n if n else np.nan,
                    "ci_low": float(low),
                    "ci_high": float(high),
                    "value": float(value[members].sum()),
                }
            )
        top, bottom = tier_codes == 0, tier_codes == len(names) - 1
        ratio = low_r = high_r = np.nan
        if top.any() and bottom.any() and y[bottom].sum() + y[top].sum() > 0:
            ratio, low_r, high_r = (
                float(v) for v in ratio_ci(y[top].sum(), top.sum(), y[bottom].sum(), bottom.sum())
            )
        auc_value, auc_low, auc_high = auc_ci(scores, y.astype(float), alpha=alpha)
        quarter_rows.append(
            {
                "quarter": str(quarter),
                "scored_as_of": scored_as_of.strftime("%Y-%m-%d"),
                "n": int(len(population)),
                "events": int(y.sum()),
                "event": event_words,
                "trained_on": int(fitted.training.get("n", 0)),
                "auc": auc_value,
                "auc_low": auc_low,
                "auc_high": auc_high,
                "top_vs_bottom": ratio,
                "top_vs_bottom_low": low_r,
                "top_vs_bottom_high": high_r,
            }
        )
    return pd.DataFrame(tier_rows), pd.DataFrame(quarter_rows), notes


def _icp_vs_rest(samples: dict, spec: dict, alpha: float) -> list[dict]:
    """Accounts meeting every defining include rule and no exclude rule vs the rest, on the
    holdout of each outcome measured."""
    from icp_research.scoring.model import rule_columns

    out = []
    for name in ("won", "retained", "best_customer", "churn", "no_decision"):
        sample = samples.get(name)
        if sample is None or sample.holdout.empty:
            continue
        in_icp = rule_columns(sample.holdout, spec)["in_icp"].to_numpy()
        measured = _compare(sample, sample.holdout, in_icp, ~in_icp, alpha)
        out.append(
            {
                "outcome": name,
                "unit": sample.unit,
                "rate_unit": "per customer-year" if sample.kind == "churn" else "share",
                "n_icp": measured["n"],
                "rate_icp": measured["rate_in"],
                "n_rest": measured["n_rest"],
                "rate_rest": measured["rate_out"],
                "ratio": measured["lift"],
                "ci_low": measured["ci_low"],
                "ci_high": measured["ci_high"],
                "p_value": measured["p_value"],
            }
        )
    return out


def _segments(study: Study, include: list[Rule], sample: _Sample | None, alpha: float) -> dict:
    """Per-segment ICPs, only when the include rules work significantly differently by size
    segment and the segments have enough customers."""
    empty = {"verdict": "", "drawn": False, "table": pd.DataFrame(), "icps": {}}
    facts = study.facts
    if "size_segment" not in facts.columns or facts["size_segment"].isna().all():
        empty["verdict"] = "No size segments: the accounts have no employee counts."
        return empty
    if sample is None or sample.kind != "rate":
        empty["verdict"] = "No segment ICPs: the chosen outcome cannot be compared by segment."
        return empty
    segment_attribute = "employees"
    rules = [r for r in include if r.attribute != segment_attribute]
    if not rules:
        empty["verdict"] = "No segment ICPs: there is no include rule other than company size."
        return empty
    rows = pd.concat([sample.training, sample.holdout], ignore_index=True)
    segment_of = facts.set_index("account_id")["size_segment"]
    rows = rows.assign(_segment=rows["account_id"].map(segment_of))
    labels = list(study.config.segments.get("labels", []))
    customers = facts[facts["is_customer"].fillna(False).astype(bool)]
    table, enough = [], []
    for label in labels:
        part = rows[rows["_segment"] == label]
        n_customers = int((customers["size_segment"] == label).sum())
        record = {
            "segment": label,
            "accounts": int((facts["size_segment"] == label).sum()),
            "customers": n_customers,
            "rows": len(part),
            "rate": float(part["y"].mean()) if len(part) else np.nan,
        }
        ok = n_customers >= 30 and len(part) >= 100
        for rule in rules:
            inside = _hits(part, rule.conditions) if len(part) else np.zeros(0, bool)
            measured = _compare(sample, part, inside, ~inside, alpha) if len(part) else {}
            record[rule.text] = {
                "lift": measured.get("lift", np.nan),
                "ci_low": measured.get("ci_low", np.nan),
                "ci_high": measured.get("ci_high", np.nan),
                "n": measured.get("n", 0),
            }
        table.append(record)
        if ok:
            enough.append(record)
    result = {"verdict": "", "drawn": False, "table": pd.DataFrame(table), "icps": {}}
    if len(enough) < 2:
        result["verdict"] = (
            "Not enough data for segment ICPs: a segment needs at least 30 customers and 100 "
            f"{sample.unit}; "
            + (f"only {_and([r['segment'] for r in enough])} has them." if enough else "none has.")
        )
        return result
    # Heterogeneity on the odds-ratio scale (rule x segment interaction in a logistic model,
    # clustered by account): risk ratios spread with the segments' base rates alone.
    from icp_research.methods.heterogeneity import odds_ratio_heterogeneity

    judged = rows[rows["_segment"].isin([r["segment"] for r in enough])]
    p_values = [
        odds_ratio_heterogeneity(
            judged["y"],
            _hits(judged, rule.conditions),
            judged["_segment"],
            judged["account_id"] if sample.clustered else None,
        )["p_value"]
        for rule in rules
    ]
    q_values = adjust_pvalues(p_values)
    differing = [
        (rule, q) for rule, q in zip(rules, q_values, strict=True) if np.isfinite(q) and q < alpha
    ]
    names = _and([r["segment"] for r in enough])
    thin = [r["segment"] for r in table if r not in enough]
    if not differing:
        result["verdict"] = (
            f"One ICP fits every size segment: the include rules work alike in {names} (no "
            "significant difference in their odds ratios between segments: a rule x segment "
            "interaction in a logistic model clustered by account, with Benjamini-Hochberg "
            "correction), so no per-segment ICP is drawn."
        )
        if thin:
            result["verdict"] += (
                f" {_and(thin)} {'has' if len(thin) == 1 else 'have'} too few customers to judge."
            )
        return result
    result["drawn"] = True
    icps = {}
    for record in enough:
        icps[record["segment"]] = [
            rule.text
            for rule in rules
            if np.isfinite(record[rule.text]["ci_low"]) and record[rule.text]["ci_low"] > 1
        ]
    result["icps"] = icps
    parts = [f"{rule.text} (q = {fmt_p(q)})" for rule, q in differing]
    result["verdict"] = (
        f"The include rules work differently by company size: {_and(parts)}; the per-segment "
        "ICPs list the rules that clearly help within each segment."
    )
    return result


# ---------------------------------------------------------------------------------------------
# The statement


_NEED_QUESTIONS = (r"why|reason|bought|buy", r"need|goal|job|outcome|use_?case", r"problem|pain")
_INDUSTRY = ("industry", "vertical", "sector")
_GEOGRAPHY = ("region", "country", "geography")


def _survey_need(study: Study, in_icp: pd.Series, alpha: float) -> dict | None:
    """The answer ICP customers give significantly more often to a 'why did you buy' question.

    Returns ``{"answer", "question", "rate_icp", "rate_rest", "n_icp", "n_rest", "q_value"}``
    or None (no survey, no such question, or no answer stands out).
    """
    if not study.has("survey"):
        return None
    survey = study.tables["survey"]
    if not {"account_id", "question", "answer"} <= set(survey.columns):
        return None
    facts = study.facts
    customers = facts.loc[facts["is_customer"].fillna(False).astype(bool), "account_id"]
    icp_ids = set(
        facts.loc[
            in_icp.to_numpy() & facts["is_customer"].fillna(False).to_numpy(dtype=bool),
            "account_id",
        ]
    )
    answers = survey[survey["account_id"].isin(set(customers))].dropna(subset=["answer"])
    questions = [str(q) for q in answers["question"].dropna().unique()]
    for pattern in _NEED_QUESTIONS:
        for question in sorted(q for q in questions if re.search(pattern, q, re.IGNORECASE)):
            rows = answers[answers["question"] == question].drop_duplicates("account_id")
            icp = rows["account_id"].isin(icp_ids).to_numpy()
            n1, n2 = int(icp.sum()), int((~icp).sum())
            if n1 < 20 or n2 < 20:
                continue
            counts = rows.groupby("answer")["account_id"].agg(
                icp=lambda ids: int(ids.isin(icp_ids).sum()), total="size"
            )
            k1 = counts["icp"].to_numpy(float)
            k2 = (counts["total"] - counts["icp"]).to_numpy(float)
            p = two_proportion_pvalue(k1, n1, k2, n2)
            q = adjust_pvalues(p)
            rate1, rate2 = k1 / n1, k2 / n2
            better = (rate1 > rate2) & (q < alpha)
            if not better.any():
                continue
            best = int(np.argmax(np.where(better, rate1, -1)))
            return {
                "answer": str(counts.index[best]),
                "question": question,
                "rate_icp": float(rate1[best]),
                "rate_rest": float(rate2[best]),
                "n_icp": n1,
                "n_rest": n2,
                "q_value": float(q[best]),
            }
    return None


def _theme_need(study: Study, alpha: float) -> dict | None:
    """The project's own feedback theme best customers mention significantly more often.

    Only themes the ``[codebook]`` of the config names count: the built-in themes are
    complaints and objections (pricing, missing integration), not what customers buy for.
    Returns ``{"answer", "theme", "source", "rate_icp", "rate_rest", "q_value"}`` (rates: best
    customers among customers whose notes mention the theme / do not) or None.
    """
    from icp_research.methods.codebook import DEFAULT_CODEBOOK

    section = study.config.codebook or {}
    own = {
        str(name).strip()
        for name, rules in section.items()
        if name not in ("defaults", "add") and name not in DEFAULT_CODEBOOK and rules
    }
    if not own or not any(study.has(t) for t in ("feedback", "churn_events", "survey")):
        return None
    from icp_research.analyses.voc import feedback_themes
    from icp_research.methods.codebook import theme_label

    try:
        tests = feedback_themes(study).tables.get("tests", pd.DataFrame())
    except (AnalysisError, NotEnoughData, ValueError, KeyError):
        return None
    if tests is None or tests.empty:
        return None
    better = tests[
        (tests["outcome"] == "best_customer")
        & tests["theme"].isin(own)
        & (tests["q_value"] < alpha)
        & (tests["effect"] > 1)
    ]
    if better.empty:
        return None
    row = better.sort_values(["q_value", "effect"], ascending=[True, False]).iloc[0]
    return {
        "answer": theme_label(row["theme"]),
        "theme": str(row["theme"]),
        "source": "feedback themes",
        "rate_icp": float(row["rate_with"]),
        "rate_rest": float(row["rate_without"]),
        "q_value": float(row["q_value"]),
    }


_NEED_MISSING = (
    "The statement says nothing about the need the product meets: no survey answer sets ICP "
    "customers apart, and none of the config's own [codebook] themes sets best customers apart "
    "in their feedback. To draft it from data, add a survey table ([tables.survey]: "
    "account_id, question, answer) with a question such as 'Why did you buy?', or [codebook] "
    "themes that name what customers "
    'buy for (e.g. forecast_accuracy = ["forecast", "accuracy"]); or write the statement '
    "yourself (the statement parameter overrides the draft)."
)


def _size_phrase(condition: Condition, labels: _Labels | None = None) -> str:
    """A size range in words: "100–999 employees", "1,000+ employees", "fewer than 60
    employees"; other numeric conditions as :func:`_clause` words them."""
    if condition.attribute != "employees" or _interval(condition) is None:
        return _clause(condition, labels)[1]
    unit = _label("employees", labels)
    low, high = _interval(condition)
    whole = all(np.isinf(v) or float(v).is_integer() for v in (low, high))
    if condition.operator == "between":
        if whole:
            return f"{int(low):,}–{int(high) - 1:,} {unit}"
        return f"{low:,g} to under {high:,g} {unit}"
    if condition.operator == "at_least":
        return f"{int(low):,}+ {unit}" if whole else f"{low:,g}+ {unit}"
    return f"fewer than {high:,g} {unit}"


_ACRONYMS = {"crm", "sso", "nps", "arr", "acv", "mrr", "erp", "hr", "it", "api", "saas", "cdp"}
# Category values that mean "none of it": ``crm = None`` reads "no CRM".
_NONE_VALUES = {"none", "(none)", "nothing"}


@dataclass(frozen=True)
class _Labels:
    """How the statement names columns and values: the config's ``[labels]`` (columns) and
    ``[labels.values.<column>]`` (values), else tidy names."""

    columns: Mapping = field(default_factory=dict)
    values: Mapping = field(default_factory=dict)

    @classmethod
    def of(cls, study: Study) -> _Labels:
        config = study.config
        return cls(
            dict(getattr(config, "labels", None) or {}),
            dict(getattr(config, "value_labels", None) or {}),
        )

    def column(self, attribute: str) -> str:
        given = self.columns.get(str(attribute))
        if given:
            return str(given)
        words = str(attribute).replace("_", " ").split()
        return " ".join(w.upper() if w.lower() in _ACRONYMS else w for w in words) or str(attribute)

    def value(self, attribute: str, value) -> str | None:
        """The configured label of a value, or None."""
        given = (self.values.get(str(attribute)) or {}).get(str(value))
        return str(given) if given else None


_TIDY = _Labels()


def _label(attribute: str, labels: _Labels | None = None) -> str:
    """An attribute name as a stakeholder reads it: ``referral_source`` -> "referral source",
    ``crm`` -> "CRM", or its ``[labels]`` entry (the ICP statement is prose; rules keep the
    column names)."""
    return (labels or _TIDY).column(attribute)


def _number(x) -> str:
    x = float(x)
    return f"{int(x):,}" if x.is_integer() else f"{x:,.4g}"


def _clause(condition: Condition, labels: _Labels | None = None) -> tuple[str, str]:
    """A condition as words after "companies": ``(preposition, words)``.

    ``crm = None`` -> ``("with", "no CRM")``; ``employees < 60`` -> ``("with", "fewer than 60
    employees")``; ``industry = Education`` -> ``("in", "Education")``; ``crm in {HubSpot,
    Salesforce}`` -> ``("with", "HubSpot or Salesforce as CRM")``. The rule's code form stays
    in icp.json; this is the prose of the statement.
    """
    labels = labels or _TIDY
    attribute, operator, value = condition.attribute, condition.operator, condition.value
    label = _label(attribute, labels)
    if attribute == "employees" and _interval(condition) is not None:
        return "with", _size_phrase(condition, labels)
    if operator == "is_missing":
        return "with", f"no {label} on record"
    values = _values(condition)
    if values is not None:
        levels = sorted(values)
        if attribute in _INDUSTRY or attribute in _GEOGRAPHY:
            return "in", _or([labels.value(attribute, v) or v for v in levels])
        none = [v for v in levels if v.strip().lower() in _NONE_VALUES]
        named = [labels.value(attribute, v) or v for v in levels if v not in none]
        words = [f"{_or(named)} as {label}"] if named else []
        # "None" reads "no CRM" (or its own label, which is then the whole phrase).
        words += list(dict.fromkeys(labels.value(attribute, v) or f"no {label}" for v in none))
        return "with", " or ".join(words)
    if operator == "less_than":
        return "with", f"{label} under {_number(value)}"
    if operator == "at_least":
        return "with", f"{label} of {_number(value)} or more"
    if operator == "between":
        return "with", f"{label} from {_number(value[0])} to under {_number(value[1])}"
    return "with", condition.phrase()


def _rule_words(rule: Rule, labels: _Labels | None = None) -> tuple[str, str]:
    """A rule (all its conditions) as words after "companies": ``(preposition, words)``."""
    clauses = [_clause(c, labels) for c in rule.conditions]
    return clauses[0][0], _joined(clauses, " and ", first_preposition=False)


def _joined(clauses: Sequence[tuple[str, str]], last: str, *, first_preposition=True) -> str:
    """Clauses joined with commas and ``last`` before the final one (a serial comma from three
    on); a preposition is written only where it changes: "with no CRM, fewer than 60
    employees, or in Education"."""
    words, previous = [], None if first_preposition else clauses[0][0] if clauses else None
    for preposition, text in clauses:
        words.append(text if preposition == previous else f"{preposition} {text}")
        previous = preposition
    if len(words) <= 2:
        return last.join(words)
    return ", ".join(words[:-1]) + "," + last + words[-1]


def _not_a_fit(exclude: Sequence[Rule], labels: _Labels | None = None) -> str:
    """The exclude rules in words: "companies with no CRM, fewer than 60 employees, or in
    Education"."""
    return "companies " + _joined([_rule_words(r, labels) for r in exclude], " or ")


def _levels(rule: Rule) -> list[str]:
    values = _values(rule.conditions[0])
    return sorted(values) if values else []


def _shown(rule: Rule | None, labels: _Labels | None = None) -> list[str]:
    """A rule's levels as the statement names them (``[labels.values.<column>]``)."""
    if rule is None:
        return []
    labels = labels or _TIDY
    return [labels.value(rule.attribute, v) or v for v in _levels(rule)]


def _draft(
    include: list[Rule], exclude: list[Rule], need: dict | None, labels: _Labels | None = None
) -> tuple[str, str]:
    """``(name, statement)`` in the seeds' template, from the rules."""
    filters = [r for r in include if r.role == "filter"]
    signals = [r for r in include if r.role == "signal"]
    industry = next((r for r in filters if r.attribute in _INDUSTRY and _levels(r)), None)
    sizes = [r for r in filters if r.attribute not in _INDUSTRY and _interval(r.conditions[0])]
    places = [r for r in filters if r.attribute in _GEOGRAPHY and _levels(r)]
    others = [r for r in filters if r not in (industry, *sizes, *places)]
    adjective = ""
    size = next((r for r in sizes if r.attribute == "employees"), None)
    if size is not None:
        adjective = {"between": "mid-size", "at_least": "larger", "less_than": "smaller"}.get(
            size.conditions[0].operator, ""
        )
    kinds = _and(_shown(industry, labels))
    company = " ".join(w for w in (adjective, kinds, "companies") if w)
    details = [_size_phrase(r.conditions[0], labels) for r in sizes]
    if details:
        company += f" ({'; '.join(details)})"
    if places:
        company += " in " + _or([v for r in places for v in _shown(r, labels)])
    conditions = [_rule_words(rule, labels)[1] for rule in others]
    sentence = f"This product fits {company}"
    # The need comes from the data (survey answers, feedback themes) or is left out: the
    # statement is read as written, so it never holds a placeholder.
    if need:
        sentence += f" that need {need['answer'][:1].lower() + need['answer'][1:]}"
        sentence += f" and have {_and(conditions)}." if conditions else "."
    else:
        sentence += f" that have {_and(conditions)}." if conditions else "."
    parts = [sentence]
    if signals:
        said = [
            f"{_label(r.attribute, labels)} is {_or(_shown(r, labels))}"
            if _levels(r)
            else _rule_words(r, labels)[1]
            for r in signals
        ]
        parts.append(f"They convert best when {_or(said)}.")
    if exclude:
        parts.append(f"Not a fit: {_not_a_fit(exclude, labels)}.")
    name_parts = []
    if adjective:
        name_parts.append(adjective[:1].upper() + adjective[1:])
    name_parts.append(" & ".join(_shown(industry, labels)) if industry else "companies")
    name = " ".join(name_parts)
    tech = [r for r in others if _levels(r)]
    if tech:
        name += " on " + " / ".join(_shown(tech[0], labels))
    if places:
        name += " in " + " / ".join(v for r in places for v in _shown(r, labels))
    return name, " ".join(parts)


def _no_icp_statement(study: Study, upstream: Upstream, uncertain: list[Rule]) -> str:
    facts = study.facts
    n_accounts = len(facts)
    n_customers = int(facts["is_customer"].fillna(False).sum())
    why = "no account characteristic predicted success in a way that held up in the latest quarters"
    if upstream.caveats and not upstream.sources.get("significance"):
        why = "the predictor analysis could not be run"
    text = (
        f"No ICP can be drawn from this data yet: {why} ({n_accounts:,} accounts, "
        f"{n_customers:,} customers)."
    )
    unmeasurable = study.trust.variation.get("won")
    if unmeasurable:
        # More deals of the same export cannot help when it never records a lost deal.
        hypotheses = f" {_hypotheses(len(uncertain))} to test." if uncertain else ""
        return (
            f"{text} Win rates are not measurable: {unmeasurable}; export lost deals too (the "
            f"CRM's opportunities, not orders) rather than waiting for more deals.{hypotheses}"
        )
    if uncertain:
        text += f" {_hypotheses(len(uncertain))} to test in discovery calls"
        text += "; re-run when more deals have closed."
    else:
        text += " Re-run when more deals have closed and customers have had time to stay or leave."
    return text


# ---------------------------------------------------------------------------------------------
# The result


@dataclass(repr=False)
class Blueprint(Result):
    """The ICP blueprint (see the module docstring); :meth:`to_json` is ``icp.json``.

    ``summary`` is the rules table (every include, exclude and uncertain rule with its main
    evidence); ``findings`` open the report; ``tables`` hold ``characteristics``, ``tiers``,
    ``icp_vs_rest``, ``backtest``, ``segments``. The fit score is ``scorecard`` (None when none
    could be fitted), its holdout proof ``validation`` (and ``retention`` for 12-month
    retention by tier).
    """

    name: str | None = None
    statement: str = ""
    statement_drafted: str = ""
    statement_source: str = "drafted"
    drawn: bool = False
    confidence: dict = field(default_factory=dict)
    outcome: dict = field(default_factory=dict)
    characteristics: list = field(default_factory=list)
    include: list = field(default_factory=list)
    exclude: list = field(default_factory=list)
    uncertain: list = field(default_factory=list)
    rule_notes: list = field(default_factory=list)
    attributes: dict = field(default_factory=dict)
    scorecard: object = None
    validation: object = None
    retention: object = None
    icp_vs_rest: list = field(default_factory=list)
    backtest: pd.DataFrame = field(default_factory=pd.DataFrame)
    backtest_summary: pd.DataFrame = field(default_factory=pd.DataFrame)
    segments: dict = field(default_factory=dict)
    pmf: Result | None = None
    headline: dict = field(default_factory=dict)
    need: dict | None = None
    labels: object = None  # how the prose names columns and values ([labels])
    icp_share: float = np.nan
    upstream_sources: dict = field(default_factory=dict)
    as_of: str = ""
    project: str = ""

    def __repr__(self) -> str:
        return (
            f"<Blueprint: {self.name or 'no ICP drawn'}; {len(self.include)} include, "
            f"{len(self.exclude)} exclude, {len(self.uncertain)} uncertain rules; "
            f"{'a fit score' if self.scorecard is not None else 'no fit score'}>"
        )

    # -- icp.json ----------------------------------------------------------------------------

    def rules_spec(self) -> dict:
        """The ``rules`` and ``attributes`` entries of icp.json (what scorers need)."""
        return {
            "rules": {
                "include": [r.to_dict() for r in self.include],
                "exclude": [r.to_dict() for r in self.exclude],
                "uncertain": [r.to_dict() for r in self.uncertain],
                "notes": list(self.rule_notes),
            },
            "attributes": self.attributes,
        }

    def to_json(self) -> dict:
        """``artifacts/icp.json`` (see the module docstring for every field)."""
        spec = self.rules_spec()
        if self.scorecard is not None:
            card = self.scorecard.to_dict()
        else:
            card = {"scorecard": None, "tiers": self.params.get("tiers_json", [])}
        validation = {}
        if self.validation is not None:
            validation = self.validation.to_dict()
            validation["calibration"] = _records(self.validation.tables.get("calibration"))
        if self.scorecard is not None or self.icp_vs_rest:
            validation["icp_vs_rest"] = [
                {k: _plain(v) for k, v in row.items()} for row in self.icp_vs_rest
            ]
            validation["retention_by_tier"] = (
                _records(self.retention.summary) if self.retention is not None else []
            )
            validation["backtest"] = _records(self.backtest)
            validation["backtest_summary"] = _records(self.backtest_summary)
        segments = self.segments or {}
        return {
            "format": FORMAT,
            "kit_version": __version__,
            "project": self.project,
            "as_of": self.as_of,
            "name": self.name,
            "statement": self.statement,
            "statement_drafted": self.statement_drafted,
            "statement_source": self.statement_source,
            "drawn": self.drawn,
            "confidence": dict(self.confidence),
            "outcome": {k: _plain(v) for k, v in self.outcome.items()},
            "characteristics": [
                {
                    k: v
                    for k, v in item.items()
                    if k in ("rank", "attribute", "kind", "role", "favour", "avoid", "outcomes")
                }
                | {"rule": item.get("rule"), "evidence": item.get("evidence", "")}
                for item in self.characteristics
            ],
            "rules": spec["rules"],
            "attributes": spec["attributes"],
            "scorecard": card["scorecard"],
            "tiers": card["tiers"],
            "validation": validation,
            "segments": {
                "verdict": segments.get("verdict", ""),
                "drawn": bool(segments.get("drawn", False)),
                "table": _segment_records(segments.get("table")),
                "icps": segments.get("icps", {}),
            },
            "pmf": self.pmf.params.get("json", {}) if self.pmf is not None else {},
            "headline": dict(self.headline),
            "caveats": list(self.caveats),
        }

    def score(self, leads: pd.DataFrame) -> pd.DataFrame:
        """Score leads the way ``icp-research score`` does (:func:`scoring.score_leads`)."""
        from icp_research.scoring.model import score_leads

        return score_leads(self.to_json(), leads)

    # -- display tables ----------------------------------------------------------------------

    def characteristics_table(self) -> pd.DataFrame:
        """One row per defining characteristic: its role, rule and evidence."""
        return pd.DataFrame(
            [
                {
                    "rank": item["rank"],
                    "characteristic": item["attribute"],
                    "role": "who the company is"
                    if item["role"] == "filter"
                    else "how it came to us",
                    "include rule": item.get("rule") or "–",
                    "avoid": ", ".join(map(str, item["avoid"])) or "–",
                    "held up for": ", ".join(item["outcomes"]),
                    "evidence": item.get("evidence", ""),
                }
                for item in self.characteristics
            ]
        )

    def rules_table(self, kind: str) -> pd.DataFrame:
        """Display table of one kind of rule: the rule, its evidence in words, and the numbers
        of its main outcome (n, rate in vs out, lift with CI, q, replicated)."""
        rules = {"include": self.include, "exclude": self.exclude, "uncertain": self.uncertain}[
            kind
        ]
        rows = []
        for rule in rules:
            main = _main_evidence(rule)
            row = {"rule": rule.text}
            if kind == "include":
                row["role"] = "filter" if rule.role == "filter" else "signal"
            if kind == "uncertain":
                row["direction"] = rule.direction
                row["why uncertain"] = rule.reason
            if main is not None:
                t = main.training
                row.update(
                    {
                        "outcome": main.sample.outcome,
                        "n": t["n"],
                        "rate in vs out": _rates_text(main.sample, t),
                        "lift (95% CI)": _lift_text(t),
                        "q_value": main.q_value,
                        "latest quarters": _holdout_text(main),
                    }
                )
            row["accounts"] = _pct(rule.share_of_accounts)
            row["all evidence"] = " ".join(e.sentence() for e in rule.evidence)
            rows.append(row)
        return pd.DataFrame(rows)

    def tier_table(self) -> pd.DataFrame:
        """Per tier: cut-off, holdout rows, outcome rate (CI), value of won rows and, when
        measured, 12-month retention (CI)."""
        if self.validation is None:
            return pd.DataFrame()
        summary = self.validation.summary
        unit = self.outcome.get("unit", "rows")
        label = self.outcome.get("label", "rate")
        rows = []
        retention = self.retention.summary if self.retention is not None else None
        for i, row in summary.iterrows():
            out = {
                "tier": row["tier"],
                "min score": int(row["min_score"]),
                f"holdout {unit}": int(row["n"]),
                label: _rate_ci_text(row["rate"], row["ci_low"], row["ci_high"]),
            }
            if "value_mean" in summary.columns:
                out["mean value won"] = (
                    f"{fmt_money(row['value_mean'])} ({fmt_money(row['value_ci_low'])}–"
                    f"{fmt_money(row['value_ci_high'])})"
                    if np.isfinite(row["value_ci_low"])
                    else fmt_money(row["value_mean"])
                )
                out["median value won"] = fmt_money(row["value_median"])
            if retention is not None and i < len(retention):
                r = retention.iloc[i]
                out["12-month retention"] = _rate_ci_text(r["rate"], r["ci_low"], r["ci_high"])
                out["customers"] = int(r["n"])
            rows.append(out)
        return pd.DataFrame(rows)

    def icp_vs_rest_table(self) -> pd.DataFrame:
        """ICP accounts (every include filter, no exclude rule) vs the rest on the holdout."""
        rows = []
        for row in self.icp_vs_rest:
            words = _OUTCOME_WORDS.get(row["outcome"], (row["outcome"],))[0]
            churn = row["rate_unit"] != "share"

            def rate(value, churn=churn):
                return f"{_per100(value)} per 100 customer-years" if churn else _pct(value)

            rows.append(
                {
                    "outcome": words,
                    "ICP": f"{rate(row['rate_icp'])} (n={row['n_icp']:,})",
                    "the rest": f"{rate(row['rate_rest'])} (n={row['n_rest']:,})",
                    "ratio (95% CI)": _lift_text(
                        {"lift": row["ratio"], "ci_low": row["ci_low"], "ci_high": row["ci_high"]}
                    ),
                    "p_value": row["p_value"],
                }
            )
        return pd.DataFrame(rows)

    def backtest_table(self) -> pd.DataFrame:
        """Per quarter: accounts scored at its start, how many converted, AUC and Tier 1 vs
        the last tier."""
        if self.backtest_summary.empty:
            return pd.DataFrame()
        rows = []
        rates = self.backtest.pivot_table(
            index="quarter", columns="tier", values="rate", sort=False
        )
        for row in self.backtest_summary.itertuples():
            out = {
                "quarter": row.quarter,
                "accounts scored": row.n,
                row.event: row.events,
                "AUC (95% CI)": f"{row.auc:.2f} ({row.auc_low:.2f}–{row.auc_high:.2f})"
                if np.isfinite(row.auc)
                else "–",
            }
            for tier in rates.columns:
                out[f"{tier} rate"] = _pct(rates.loc[row.quarter, tier])
            out[f"{rates.columns[0]} vs {rates.columns[-1]}"] = _lift_short(
                {
                    "lift": row.top_vs_bottom,
                    "ci_low": row.top_vs_bottom_low,
                    "ci_high": row.top_vs_bottom_high,
                }
            )
            rows.append(out)
        return pd.DataFrame(rows)

    def segments_table(self) -> pd.DataFrame:
        """Per size segment: accounts, customers, outcome rate and each include rule's lift."""
        table = (self.segments or {}).get("table")
        if table is None or table.empty:
            return pd.DataFrame()
        rows = []
        for record in table.to_dict("records"):
            out = {
                "segment": record["segment"],
                "accounts": record["accounts"],
                "customers": record["customers"],
                self.outcome.get("unit", "rows"): record["rows"],
                self.outcome.get("label", "rate"): _pct(record["rate"]),
            }
            for key, value in record.items():
                if isinstance(value, dict):
                    out[f"lift: {key}"] = _lift_short(value) if value.get("n") else "–"
            rows.append(out)
        return pd.DataFrame(rows)

    def rule_phrases(self, kind: str) -> list[tuple[str, str]]:
        """Each ``include``, ``exclude`` or ``uncertain`` rule in the statement's words with its
        main evidence in short, e.g. ``("companies in Education", "win rate 15% vs 22%")`` (for
        the slide and other summaries; icp.json keeps the rules' code form)."""
        rules = {"include": self.include, "exclude": self.exclude, "uncertain": self.uncertain}
        return [(_not_a_fit([r], self.labels), _short_evidence(r)) for r in rules[kind]]


def _records(frame) -> list[dict]:
    if frame is None or len(frame) == 0:
        return []
    return [
        {k: (v if isinstance(v, str) else _plain(v)) for k, v in row.items()}
        for row in frame.to_dict("records")
    ]


def _segment_records(frame) -> list[dict]:
    if frame is None or len(frame) == 0:
        return []
    out = []
    for record in frame.to_dict("records"):
        item = {}
        for key, value in record.items():
            if isinstance(value, dict):
                item.setdefault("lifts", {})[key] = {k: _plain(v) for k, v in value.items()}
            else:
                item[key] = value if isinstance(value, str) else _plain(value)
        out.append(item)
    return out


def _main_evidence(rule: Rule) -> _Evidence | None:
    """The evidence a rule is shown with: its significant one in the expected direction, or
    the strongest."""
    if not rule.evidence:
        return None
    if rule.kind == "include":
        # The blueprint's outcome comes first; show it when it supports the rule.
        wanted = [e for e in rule.evidence if e.better] or rule.evidence
        return wanted[0]
    # What sales reads first: wins and churn that held up, then the rest, strongest first.
    priority = ("won", "churn", "retained", "no_decision", "best_customer")
    wanted = [e for e in rule.evidence if e.worse] or rule.evidence
    return min(
        wanted,
        key=lambda e: (
            not e.held_up,
            priority.index(e.sample.outcome) if e.sample.outcome in priority else len(priority),
            e.training["p_value"] if np.isfinite(e.training["p_value"]) else 2,
        ),
    )


def _holdout_text(evidence: _Evidence) -> str:
    h = evidence.holdout
    if h is None or h.get("n", 0) == 0:
        return "no rows to check"
    verdict = _verdict(evidence)
    if evidence.held_up and not evidence.replicated:
        verdict = "same direction; held up against all other rows upstream"
    return f"{_rates_text(evidence.sample, h)} ({_lift_text(h)}): {verdict}"


def _rate_ci_text(rate, low, high) -> str:
    if rate is None or not np.isfinite(rate):
        return "–"
    if low is None or not np.isfinite(low):
        return _pct(rate)
    return f"{_pct(rate)} ({_pct(low)}–{_pct(high)})"


# ---------------------------------------------------------------------------------------------
# The analysis


def build_blueprint(
    study: Study,
    *,
    significance=None,
    anti_patterns: pd.DataFrame | None = None,
    statement: str | None = None,
    outcome: str | None = None,
    tiers=None,
    holdout_quarters: int | None = None,
    backtest_quarters: int = 4,
    reuse_artifacts: bool = True,
    n_boot: int = 1000,
) -> Blueprint:
    """Draw the ICP: characteristics, rules with evidence, statement, fit score and its proof.

    Parameters
    ----------
    study : Study
        The data, as of a date.
    significance : SignificanceResult, optional
        A computed :func:`icp_research.analyses.significance.predictor_significance`; by default read
        from the run's artifacts (same as-of date) or computed here.
    anti_patterns : DataFrame, optional
        Anti-patterns (:data:`icp_research.analyses.antipatterns.ANTI_PATTERN_COLUMNS`, ``value``
        decoded); by default read from the run's artifacts or computed here.
    statement : str, optional
        The analyst's own ICP statement; replaces the drafted one (which is kept as
        ``statement_drafted``).
    outcome : str, optional
        What the fit score predicts and the rules are measured on: ``won`` (new-business
        deals), ``retained`` or ``best_customer``; default ``[scoring] outcome``, and when that
        is not set, one the data can measure: won when closed deals were both won and lost,
        else retained when churn varies, else best_customer (``outcome.chosen`` says why).
    tiers : mapping, list, or "shares", optional
        Tier cut-offs (see :func:`tier_spec`); default ``[scoring] tiers``.
    holdout_quarters : int, optional
        Latest quarters held out for validation; default ``[analysis] holdout_quarters``.
    backtest_quarters : int
        Recent quarters backtested (0: none).
    reuse_artifacts : bool
        Read the other reports' artifacts when the study's artifacts folder belongs to a run of
        the same as-of date.
    n_boot : int
        Cluster-bootstrap replicates of the holdout intervals.

    Returns
    -------
    Blueprint
        Never raises for thin data: with nothing that holds up, the blueprint says that no ICP
        can be drawn yet, lists the uncertain rules, and has no fit score.
    """
    alpha = study.alpha
    outcome = outcome or study.config.scoring.get("outcome")
    if outcome and outcome not in OUTCOMES:
        raise InputError(f"outcome = {outcome!r}; choose one of {', '.join(OUTCOMES)}")
    if holdout_quarters is None or int(holdout_quarters) < 0:
        holdout_quarters = int(study.analysis.get("holdout_quarters", 2))
    holdout_quarters = max(int(holdout_quarters), 1)
    tiers_used = tier_spec(tiers, study)
    upstream = upstream_evidence(
        study,
        significance=significance,
        anti_patterns=anti_patterns,
        reuse_artifacts=reuse_artifacts,
    )
    caveats = list(upstream.caveats)
    caveats += _drop_contract_evidence(upstream, study)
    facts = study.facts
    spec = study.attributes
    attributes = [a for a in [*spec.categorical, *spec.numeric] if a in facts.columns]
    samples = _samples(study, attributes, holdout_quarters)
    chosen = None
    if not outcome:
        outcome, chosen = _data_outcome(samples, study)
        caveats.append(chosen)
    primary = samples.get(outcome)
    if primary is None:
        caveats.append(
            f"The outcome {outcome!r} cannot be measured in this data, so rules cannot be "
            "measured on it and no fit score can be learned."
        )

    characteristics = _characteristics(upstream, attributes)
    include, notes = _include_rules(characteristics, study, samples, outcome, alpha)
    for item in characteristics:
        rule = next((r for r in include if r.attribute == item["attribute"]), None)
        item["rule"] = rule.text if rule else None
    exclude, demoted, exclude_notes = _exclude_rules(
        upstream, characteristics, include, samples, facts, alpha
    )
    from_significance, _ = _significance_uncertain(upstream, include, exclude, samples, alpha)
    uncertain = sorted(demoted + from_significance, key=lambda r: r.strength)
    if len(uncertain) > MAX_UNCERTAIN:
        dropped = uncertain[MAX_UNCERTAIN:]
        uncertain = uncertain[:MAX_UNCERTAIN]
        notes.append(
            f"{len(dropped)} weaker uncertain findings are not listed: "
            + "; ".join(r.text for r in dropped)
            + "."
        )
    notes += exclude_notes
    _not_enough_data_notes(upstream, notes)
    for rule in [*include, *exclude, *uncertain]:
        rule.share_of_accounts = float(_hits(facts, rule.conditions).mean()) if len(facts) else 0

    blueprint = Blueprint(
        title="ICP blueprint",
        as_of=study.as_of.strftime("%Y-%m-%d"),
        project=study.project,
        characteristics=characteristics,
        include=include,
        exclude=exclude,
        uncertain=uncertain,
        rule_notes=notes,
        upstream_sources=dict(upstream.sources),
    )
    blueprint.drawn = any(r.role == "filter" for r in include)
    words = _OUTCOME_WORDS[outcome]
    blueprint.outcome = {
        "name": outcome,
        "label": words[0],
        "definition": primary.definition if primary else "",
        "unit": primary.unit if primary else words[2],
        "split_on": primary.split_on if primary else "",
        "holdout_from": primary.holdout_from.strftime("%Y-%m-%d")
        if primary is not None and primary.holdout_from is not None
        else None,
        "holdout_quarters": holdout_quarters,
        "n_training": len(primary.training) if primary else 0,
        "n_holdout": len(primary.holdout) if primary else 0,
    }
    if chosen:
        blueprint.outcome["chosen"] = chosen

    # Attributes the rules and the score read, and how.
    categorical, numeric = _score_attributes(characteristics, upstream, study)
    used = {c.attribute for r in [*include, *exclude, *uncertain] for c in r.conditions}
    used |= set(categorical) | set(numeric)
    for name in sorted(used):
        if name in spec.numeric or (
            name in facts.columns and pd.api.types.is_numeric_dtype(facts[name])
        ):
            values = pd.to_numeric(facts.get(name), errors="coerce")
            nonnegative = bool(values.dropna().ge(0).all()) if values is not None else True
            blueprint.attributes[name] = {"type": "numeric", "nonnegative": nonnegative}
        else:
            blueprint.attributes[name] = {"type": "categorical"}
    rules_spec = blueprint.rules_spec()

    from icp_research.scoring.model import rule_columns

    in_icp = rule_columns(facts, rules_spec)["in_icp"]
    blueprint.icp_share = float(in_icp.mean()) if len(in_icp) else np.nan
    blueprint.labels = _Labels.of(study)
    if blueprint.drawn:
        blueprint.need = _survey_need(study, in_icp, alpha) or _theme_need(study, alpha)
        blueprint.name, drafted = _draft(include, exclude, blueprint.need, blueprint.labels)
        if blueprint.need is None:
            caveats.append(_NEED_MISSING)
    else:
        drafted = _no_icp_statement(study, upstream, uncertain)
    blueprint.statement_drafted = drafted
    if statement and statement.strip():
        blueprint.statement = statement.strip()
        blueprint.statement_source = "analyst"
    else:
        blueprint.statement = drafted

    # The fit score.
    blueprint.params = {
        "outcome": outcome,
        "tiers": tiers_used,
        "tiers_json": [{"name": n, "min_score": _plain(m)} for n, m in tiers_used.get("fixed", [])]
        or [{"name": n, "min_score": None} for n in tiers_used.get("names", [])],
        "holdout_quarters": holdout_quarters,
        "backtest_quarters": backtest_quarters,
        "alpha": alpha,
        "upstream": dict(upstream.sources),
    }
    if primary is not None and characteristics and (categorical or numeric):
        _fit_and_validate(
            blueprint,
            study,
            samples,
            primary,
            categorical,
            numeric,
            tiers_used,
            alpha,
            n_boot,
            caveats,
        )
        if blueprint.scorecard is not None:
            blueprint.backtest, blueprint.backtest_summary, backtest_notes = _backtest(
                study, blueprint.scorecard, outcome, backtest_quarters, tiers_used, alpha
            )
            caveats.extend(backtest_notes)
    elif primary is not None:
        caveats.append(
            "No fit score: no characteristic held up in the latest quarters, so points would "
            "rank accounts on noise."
        )
    blueprint.icp_vs_rest = _icp_vs_rest(samples, rules_spec, alpha) if blueprint.drawn else []
    blueprint.segments = (
        _segments(study, include, primary, alpha)
        if blueprint.drawn
        else {"verdict": "No ICP, so no segment ICPs.", "drawn": False, "table": pd.DataFrame()}
    )
    blueprint.confidence = _contract_confidence(_confidence(blueprint), blueprint, study)
    blueprint.pmf = pmf_indicators(study, blueprint)
    blueprint.headline = _headline(blueprint)
    blueprint.findings = _findings(blueprint)
    blueprint.caveats = _blueprint_caveats(blueprint, caveats)
    blueprint.summary = pd.concat(
        [
            blueprint.rules_table(kind).assign(kind=kind)
            for kind in ("include", "exclude", "uncertain")
        ],
        ignore_index=True,
    )
    blueprint.tables = {
        "characteristics": blueprint.characteristics_table(),
        "tiers": blueprint.tier_table(),
        "icp_vs_rest": blueprint.icp_vs_rest_table(),
        "backtest": blueprint.backtest_table(),
        "segments": blueprint.segments_table(),
    }
    return blueprint


def _data_outcome(samples: dict, study: Study | None = None) -> tuple[str, str]:
    """``[scoring] outcome`` not set: an outcome the data can measure, and the sentence saying
    why. Won when closed new-business deals were both won and lost, else retained when some
    customers churned within 12 months and some did not, else best_customer."""

    def counts(name: str) -> tuple[int, int] | None:
        sample = samples.get(name)
        if sample is None:
            return None
        y = pd.concat([sample.training["y"], sample.holdout["y"]])
        return int(y.sum()), len(y)

    won = counts("won")
    deals = study.deals if study is not None else None
    if won is None and deals is not None and len(deals):
        # The deals exist but no won sample was drawn (every one won, or every one lost).
        closed = deals[
            deals["is_new_business"].astype(bool)
            & deals["is_closed"].astype(bool)
            & deals["account_id"].notna()
        ]
        if len(closed):
            won = int(closed["won"].astype(bool).sum()), len(closed)
    if won and 0 < won[0] < won[1] and "won" in samples:
        return "won", (
            f"The fit score predicts wins ([scoring] outcome is not set, chosen from the data): "
            f"{won[1]:,} closed new-business deals, {won[0]:,} won and {won[1] - won[0]:,} lost."
        )
    if won is None:
        deals = "there are no closed new-business deals"
    elif 0 < won[0] < won[1]:
        deals = f"the {won[1]:,} closed deals cannot be linked to account attributes"
    else:
        deals = f"all {won[1]:,} closed deals were {'won' if won[0] else 'lost'}"
    retained = counts("retained")
    if retained and 0 < retained[0] < retained[1]:
        return "retained", (
            f"The fit score predicts 12-month retention ([scoring] outcome is not set, chosen "
            f"from the data): {deals}, so wins cannot be compared; {retained[1] - retained[0]:,} "
            f"of {retained[1]:,} customers churned within 12 months. Set [scoring] outcome to "
            "choose another."
        )
    churn = "churn cannot be measured" if retained is None else "retention does not vary"
    return "best_customer", (
        f"The fit score predicts best customers ([scoring] outcome is not set, chosen from the "
        f"data): {deals} and {churn}. Set [scoring] outcome to choose another."
    )


_CONTRACT_OUTCOMES = ("best_customer", "arr")


def _drop_contract_evidence(upstream: Upstream, study: Study) -> list[str]:
    """Contract terms (seats, plan: ``study.attributes.contract``) make up ARR, so they are no
    evidence for best-customer status: drop those rows, and the outcome from their
    recommendations, before any rule or score is drawn. Returns the caveat saying so."""
    contract = study.attributes.contract
    if not contract:
        return []

    def other(frame):
        if frame is None or frame.empty or not {"predictor", "outcome"} <= set(frame.columns):
            return frame
        mask = frame["predictor"].isin(list(contract)) & frame["outcome"].isin(_CONTRACT_OUTCOMES)
        return frame[~mask]

    upstream.predictors = other(upstream.predictors)
    upstream.predictor_summary = other(upstream.predictor_summary)
    kept = []
    for item in upstream.recommended:
        if item.get("predictor") in contract:
            outcomes = [o for o in item.get("outcomes", []) if o not in _CONTRACT_OUTCOMES]
            if not outcomes:
                continue
            item = {**item, "outcomes": outcomes}
        kept.append(item)
    upstream.recommended = kept
    return [
        f"{_and(sorted(contract))} {'is a contract term' if len(contract) == 1 else 'are contract terms'}"
        " (part of what a customer pays): never a rule or a score attribute for best-customer "
        "status, which they make up (see the contract-size finding of the predictor report)."
    ]


def _contract_confidence(confidence: dict, blueprint: Blueprint, study: Study) -> dict:
    """An ICP of best customers (top share by ARR) whose characteristics held up for nothing
    else may describe bigger contracts rather than better-fitting companies: say so, and cap
    the confidence at low."""
    if not blueprint.drawn or blueprint.outcome.get("name") != "best_customer":
        return confidence
    if study.analysis.get("best_customer_metric", "arr") not in ("arr", "clv", "expansion"):
        return confidence
    if any(set(c["outcomes"]) - set(_CONTRACT_OUTCOMES) for c in blueprint.characteristics):
        return confidence
    contract = study.attributes.contract
    terms = f" ({_and(sorted(contract))} go with it)" if contract else ""
    reason = (
        f"{confidence['reason'].rstrip('.')}; but every characteristic rests on best-customer "
        f"status alone, i.e. on contract size{terms}, and none held up for winning deals or "
        "retention: the ICP may describe bigger contracts rather than better-fitting companies."
    )
    level = confidence["level"] if confidence["level"] in ("low", "none") else "low"
    return {"level": level, "reason": reason}


def _not_enough_data_notes(upstream: Upstream, notes: list[str]) -> None:
    summary = upstream.predictor_summary
    if summary is None or summary.empty or "underpowered" not in summary.columns:
        return
    quiet = summary[summary["underpowered"] & (summary["verdict"] != "predicts")]
    quiet = quiet[quiet["outcome"].isin(OUTCOMES)]
    for outcome, rows in quiet.groupby("outcome", sort=False):
        notes.append(
            f"Too little data to tell whether {_or(list(rows['predictor']))} predict "
            f"{_OUTCOME_WORDS[outcome][1]}: only very large effects were detectable."
        )


def _fit_and_validate(
    blueprint, study, samples, primary, categorical, numeric, tiers_used, alpha, n_boot, caveats
):
    from icp_research.scoring.scorecard import fit_scorecard, validate_scorecard

    outcome = primary.outcome
    try:
        scorecard = fit_scorecard(
            primary.training,
            outcome,
            categorical=categorical,
            numeric=numeric,
            alpha=alpha,
            cluster="account_id" if primary.clustered else None,
            min_level_count=int(study.analysis.get("min_level_count", 10)),
            **_fit_kwargs(tiers_used),
        )
    except (NotEnoughData, InputError) as error:
        caveats.append(f"No fit score: {error}")
        blueprint.params["score_error"] = str(error)
        return
    blueprint.scorecard = scorecard
    seed = int(study.analysis.get("seed", 0))
    if primary.holdout.empty:
        blueprint.params["validation_error"] = "the holdout period has no rows"
        return
    blueprint.validation = validate_scorecard(
        scorecard,
        primary.holdout,
        outcome,
        value=_value_column(primary),
        cluster="account_id" if primary.clustered else None,
        unit=primary.unit,
        alpha=alpha,
        n_boot=n_boot,
        seed=seed,
    )
    retained = samples.get("retained")
    if outcome != "retained" and retained is not None and not retained.holdout.empty:
        blueprint.retention = validate_scorecard(
            scorecard,
            retained.holdout,
            "retained",
            unit="customers",
            alpha=alpha,
            n_boot=n_boot,
            seed=seed,
        )


def _confidence(blueprint: Blueprint) -> dict:
    if not blueprint.drawn:
        return {
            "level": "none",
            "reason": "No ICP could be drawn: no characteristic held up in the latest quarters.",
        }
    filters = [r for r in blueprint.include if r.role == "filter"]
    held = [r for r in filters if r.replicated]
    v = blueprint.validation
    parts = [f"{len(held)} of {len(filters)} defining rules held up in the latest quarters"]
    auc_low = ratio_low = np.nan
    if v is not None and np.isfinite(v.auc):
        parts.append(
            f"the fit score ranked the holdout's {v.n:,} {blueprint.outcome['unit']} with AUC "
            f"{v.auc:.2f} (95% CI {v.auc_low:.2f}–{v.auc_high:.2f})"
        )
        auc_low = v.auc_low
        ratios = v.tables.get("ratios")
        if ratios is not None and len(ratios):
            top = ratios.iloc[0]
            ratio_low = top["ci_low"]
            if np.isfinite(top["ratio"]):
                parts.append(
                    f"{top['group_a']} did {top['ratio']:.1f}x as well as {top['group_b']} "
                    f"(95% CI {top['ci_low']:.1f}–{top['ci_high']:.1f}x)"
                )
    if held == filters and auc_low >= 0.6 and ratio_low >= 2:
        level = "high"
    elif held and np.isfinite(auc_low) and auc_low > 0.5 and ratio_low > 1:
        level = "moderate"
    else:
        level = "low"
    return {"level": level, "reason": _and(parts) + "."}


def _headline(blueprint: Blueprint) -> dict:
    out = {} if blueprint.drawn else {"ICP": "not drawn yet"}
    v = blueprint.validation
    if v is not None and np.isfinite(v.auc):
        out["Holdout AUC"] = f"{v.auc:.2f} ({v.auc_low:.2f}–{v.auc_high:.2f})"
        ratios = v.tables.get("ratios")
        if ratios is not None and len(ratios) and np.isfinite(ratios.iloc[0]["ratio"]):
            top = ratios.iloc[0]
            out[f"{top['group_a']} vs {top['group_b']} {blueprint.outcome['label']}"] = (
                f"{top['ratio']:.1f}x"
            )
    main = next(
        (r for r in blueprint.icp_vs_rest if r["outcome"] == blueprint.outcome["name"]), None
    )
    if main is not None and np.isfinite(main["ratio"]):
        out[f"ICP vs rest {blueprint.outcome['label']}"] = f"{main['ratio']:.1f}x"
    if blueprint.drawn and np.isfinite(blueprint.icp_share):
        out["Accounts in the ICP"] = _pct(blueprint.icp_share)
    if not blueprint.drawn:
        out["Uncertain rules"] = str(len(blueprint.uncertain))
    return out


_GOALS = {
    "won": "winning deals",
    "retained": "retention",
    "best_customer": "best-customer status",
}


def _outcome_differences(blueprint: Blueprint) -> list[str]:
    """One sentence per include rule whose attribute the predictor report favours at other
    levels for another outcome (the reports answer different questions; say so).

    E.g. the ICP takes 100-999 employees (where deals are won most often) while, for
    best-customer status, the predictor report favours 600+ employees.
    """
    by_attribute = {c["attribute"]: c for c in blueprint.characteristics}
    labels = blueprint.labels
    sentences = []
    for rule in blueprint.include:
        item = by_attribute.get(rule.attribute)
        main = _main_evidence(rule)
        if item is None or main is None or len(rule.conditions) != 1:
            continue
        condition, outcome = rule.conditions[0], main.sample.outcome
        kind = "bin" if item.get("kind") == "numeric" else "level"
        elsewhere: dict[str, list[str]] = {}
        for level in item.get("levels", []):
            other = level.get("outcome")
            if level.get("direction") != "favour" or other == outcome or other not in _GOALS:
                continue
            found = level_condition(rule.attribute, level.get("level"), kind)
            if found is None or _contains(condition, found):
                continue
            words = _clause(found, labels)[1]
            if words not in elsewhere.setdefault(other, []):
                elsewhere[other].append(words)
        if not elsewhere:
            continue
        what = _GOALS.get(outcome, main.sample.words[0])
        others = _and([f"{_or(w)} for {_GOALS[o]}" for o, w in elsewhere.items()])
        sentences.append(
            f"The reports answer different questions about {_label(rule.attribute, labels)}: "
            f"the ICP takes {_rule_words(rule, labels)[1]}, chosen for {what}, while the "
            f"predictor significance report favours {others}."
        )
    return sentences


def _findings(blueprint: Blueprint) -> list[str]:
    findings = []
    if blueprint.drawn:
        findings.append(f"The ICP: {blueprint.statement}")
        findings.append(
            f"How sure: {blueprint.confidence['level']} — {blueprint.confidence['reason']}"
        )
        filters = [
            _label(c["attribute"], blueprint.labels)
            for c in blueprint.characteristics
            if c["role"] == "filter"
        ]
        signals = [
            _label(c["attribute"], blueprint.labels)
            for c in blueprint.characteristics
            if c["role"] == "signal"
        ]
        text = (
            f"It rests on {len(blueprint.characteristics)} characteristics that predicted "
            f"success and held up in the latest quarters: who the company is ({_and(filters)})"
        )
        text += f" and how it came to us ({_and(signals)})." if signals else "."
        findings.append(text)
        findings.extend(_outcome_differences(blueprint))
        findings.append(
            f"{_pct(blueprint.icp_share)} of accounts meet every include rule that defines the "
            f"ICP and no exclude rule ({len(blueprint.include)} include, "
            f"{len(blueprint.exclude)} exclude rules)."
        )
    else:
        findings.append(blueprint.statement)
    main = next(
        (r for r in blueprint.icp_vs_rest if r["outcome"] == blueprint.outcome["name"]), None
    )
    if main is not None and np.isfinite(main["ratio"]) and main["n_icp"]:
        expected = ""
        if blueprint.outcome["name"] == "won":
            if main["ratio"] < 2:
                expected = ", below the 2–3x the seeds expect of a good ICP"
            elif main["ratio"] <= 3:
                expected = ", within the 2–3x the seeds expect of a good ICP"
            else:
                expected = ", above the 2–3x the seeds expect of a good ICP"
        findings.append(
            f"In the latest {blueprint.outcome['holdout_quarters']} quarters the ICP's "
            f"{blueprint.outcome['label']} was {_pct(main['rate_icp'])} against "
            f"{_pct(main['rate_rest'])} for the rest ({main['n_icp']:,} and {main['n_rest']:,} "
            f"{main['unit']}): {_lift_text(main | {'lift': main['ratio']})}{expected}."
        )
    if blueprint.validation is not None:
        findings.extend(blueprint.validation.findings[:2])
    summary = blueprint.backtest_summary
    if len(summary) and summary["top_vs_bottom"].notna().any():
        ratios = ", ".join(
            f"{row.quarter} {row.top_vs_bottom:.1f}x"
            for row in summary.itertuples()
            if np.isfinite(row.top_vs_bottom)
        )
        findings.append(
            f"Backtest: scored at the start of each of the last {len(summary)} quarters with "
            "a score fitted on what was known then, the top tier "
            f"{summary['event'].iloc[0]} more often than the bottom tier in the quarter that "
            f"followed ({ratios})."
        )
    if blueprint.uncertain:
        findings.append(
            f"{len(blueprint.uncertain)} uncertain "
            + ("rule needs" if len(blueprint.uncertain) == 1 else "rules need")
            + " more discovery: "
            + "; ".join(f"{r.text} ({r.direction})" for r in blueprint.uncertain[:5])
            + ("; ..." if len(blueprint.uncertain) > 5 else "")
            + "."
        )
    verdict = (blueprint.segments or {}).get("verdict")
    if verdict and blueprint.drawn:
        findings.append(verdict)
    return findings


def _blueprint_caveats(blueprint: Blueprint, caveats: list[str]) -> list[str]:
    out = list(caveats)
    if blueprint.exclude or any(
        r.sources != ["predictor significance"] for r in blueprint.uncertain
    ):
        out.append(
            "Exclude rules were proposed by the churn and lost-deal analyses on the whole "
            "period; their re-test on the latest quarters is a consistency check, not a fully "
            "independent confirmation."
        )
    if blueprint.scorecard is not None:
        out.extend(blueprint.scorecard.caveats)
    if blueprint.validation is not None:
        out.extend(
            c for c in blueprint.validation.caveats if "treat holdout rows as independent" not in c
        )
    if blueprint.outcome.get("unit") == "deals":
        out.append(
            "Deals of one account are not independent: intervals on deals resample or cluster "
            "by account."
        )
    return list(dict.fromkeys(out))


def _scoring_spec(blueprint: Blueprint) -> dict:
    """The parts of icp.json a scorer reads (scorecard, tiers, rules, attributes)."""
    spec = blueprint.rules_spec()
    if blueprint.scorecard is not None:
        spec.update(blueprint.scorecard.to_dict())
    else:
        spec.update({"scorecard": None, "tiers": blueprint.params.get("tiers_json", [])})
    return spec


# ---------------------------------------------------------------------------------------------
# Product-market fit and market sizing


def pmf_indicators(study: Study, blueprint: Blueprint) -> Result:
    """The seeds' product-market-fit indicators, where the data has them.

    The share of customers (and of new customers, won in the last four quarters) who came by
    referral against the seeds' 30% test, and, per fit-score tier, the referral share and NPS
    (mean score and share of promoters, 9-10) of customers; NPS of referred customers vs others.

    Returns
    -------
    Result
        ``summary``: the referral shares (``group``, ``n``, ``referred``, ``share``,
        ``ci_low``, ``ci_high``); ``tables['by_tier']``: per tier ``customers``,
        ``referred_share``, ``nps_n``, ``nps_mean`` with t interval, ``promoters``;
        ``params['json']``: the ``pmf`` entry of icp.json.
    """
    from icp_research.scoring.model import score_leads

    alpha = study.alpha
    result = Result(title="Product-market-fit indicators")
    facts = study.facts
    customers = facts[facts["is_customer"].fillna(False).astype(bool)]
    if customers.empty:
        result.caveats.append("Not enough evidence: there are no customers yet.")
        result.params["json"] = {"verdict": "no customers"}
        return result
    rows = []
    if "referred" in customers.columns and customers["referred"].notna().any():
        recent_from = study.as_of - pd.DateOffset(years=1)
        since = pd.to_datetime(customers["customer_since"])
        for group, part in (
            ("all customers", customers),
            ("new customers (last 4 quarters)", customers[since >= recent_from]),
        ):
            known = part["referred"].dropna().astype(bool)
            n, k = len(known), int(known.sum())
            low, high = proportion_ci(k, n, alpha) if n else (np.nan, np.nan)
            rows.append(
                {
                    "group": group,
                    "n": n,
                    "referred": k,
                    "share": k / n if n else np.nan,
                    "ci_low": float(low),
                    "ci_high": float(high),
                }
            )
    result.summary = pd.DataFrame(rows)
    verdict = "the data does not say which customers were referred"
    if rows:
        main = rows[1] if rows[1]["n"] >= 30 else rows[0]
        if not main["n"]:
            verdict = "no customer has a referral source"
        elif main["ci_low"] >= PMF_REFERRAL_SHARE:
            verdict = "above the seeds' 30% test: a sign of product-market fit"
        elif main["ci_high"] < PMF_REFERRAL_SHARE:
            verdict = "below the seeds' 30% test of product-market fit"
        else:
            verdict = "not clearly above or below the seeds' 30% test"
        for row in rows:
            if row["n"]:
                result.findings.append(
                    f"{_pct(row['share'])} of {row['group']} came by referral (95% CI "
                    f"{_pct(row['ci_low'])}–{_pct(row['ci_high'])}, n={row['n']:,})."
                )
        result.findings.append(f"Referrals: {verdict}.")
    else:
        result.caveats.append(
            "Not enough evidence for the referral test: no referral source on the accounts."
        )
    by_tier = pd.DataFrame()
    if blueprint.scorecard is not None:
        scored = score_leads(_scoring_spec(blueprint), customers)
        frame = customers.assign(_tier=scored["tier"].astype(str).to_numpy())
        records = []
        for tier, _ in blueprint.scorecard.tiers:
            part = frame[frame["_tier"] == tier]
            record = {"tier": tier, "customers": len(part)}
            if "referred" in part.columns:
                known = part["referred"].dropna().astype(bool)
                k = int(known.sum())
                record["referred_share"] = k / len(known) if len(known) else np.nan
                low, high = proportion_ci(k, len(known), alpha) if len(known) else (np.nan,) * 2
                record["referred_ci_low"], record["referred_ci_high"] = float(low), float(high)
            if "nps_mean" in part.columns:
                nps = pd.to_numeric(part["nps_mean"], errors="coerce").dropna()
                record["nps_n"] = len(nps)
                record["nps_mean"] = nps.mean() if len(nps) else np.nan
                low = high = np.nan
                if len(nps) >= 2 and nps.std() > 0:
                    low, high = sps.t.interval(
                        1 - alpha, len(nps) - 1, loc=nps.mean(), scale=sps.sem(nps)
                    )
                record["nps_ci_low"], record["nps_ci_high"] = low, high
                if "nps_latest" in part.columns:
                    latest = pd.to_numeric(part["nps_latest"], errors="coerce").dropna()
                    record["promoters"] = (latest >= 9).mean() if len(latest) else np.nan
            records.append(record)
        by_tier = pd.DataFrame(records)
        if "referred_share" in by_tier.columns and len(by_tier):
            top = by_tier.iloc[0]
            if top["customers"] and np.isfinite(top["referred_share"]):
                if top["referred_ci_low"] >= PMF_REFERRAL_SHARE:
                    where = "above the 30% test: product-market fit within the ICP's top tier"
                elif top["referred_ci_high"] < PMF_REFERRAL_SHARE:
                    where = "below the 30% test even there"
                else:
                    where = "not clearly above or below the 30% test"
                circular = ""
                if any(a.name in CHANNEL_ATTRIBUTES for a in blueprint.scorecard.attributes):
                    circular = (
                        " The score itself gives points for how an account came to us, so part "
                        "of this is by construction."
                    )
                result.findings.append(
                    f"Among {top['tier']} customers {_pct(top['referred_share'])} came by referral "
                    f"(95% CI {_pct(top['referred_ci_low'])}–{_pct(top['referred_ci_high'])}, "
                    f"n={int(top['customers']):,}): {where}.{circular}"
                )
        if "nps_n" in by_tier.columns and by_tier["nps_n"].sum() > 0:
            parts = [
                f"{r.tier} {r.nps_mean:.1f} (n={r.nps_n:,})"
                for r in by_tier.itertuples()
                if r.nps_n
            ]
            result.findings.append(
                "Mean NPS of customers by fit-score tier: " + ", ".join(parts) + "."
            )
    if "nps_mean" in customers.columns and "referred" in customers.columns:
        nps = pd.to_numeric(customers["nps_mean"], errors="coerce")
        referred = customers["referred"].fillna(False).astype(bool)
        a, b = nps[referred].dropna(), nps[~referred].dropna()
        if len(a) >= 10 and len(b) >= 10:
            test = sps.mannwhitneyu(a, b, alternative="two-sided")
            result.findings.append(
                f"Referred customers give a mean NPS of {a.mean():.1f} (n={len(a):,}) against "
                f"{b.mean():.1f} for the others (n={len(b):,}; Mann-Whitney p = "
                f"{fmt_p(test.pvalue)}); the seeds look for 9+ from referral customers."
            )
    if "nps_mean" not in customers.columns or customers["nps_mean"].isna().all():
        result.caveats.append("Not enough evidence for NPS by tier: the data has no NPS answers.")
    if not result.findings:
        result.findings.append(
            "The seeds' product-market-fit tests cannot be run: the data has no referral source "
            "and no NPS answers."
        )
    result.tables["by_tier"] = by_tier
    result.params["json"] = {
        "referral_share": _records(result.summary),
        "threshold": PMF_REFERRAL_SHARE,
        "verdict": verdict,
        "by_tier": _records(by_tier),
    }
    return result


def market_sizing(
    blueprint: Blueprint, prospects: pd.DataFrame, *, label: str = "prospect list"
) -> Result:
    """TAM / SAM / SOM of a list of companies, as in the seeds.

    Every company on the list is the total addressable market (TAM); the exclude rules are
    the filters, and the companies no exclude rule removes are the serviceable market (SAM);
    the fit-score tiers are the signals that prioritise it, and the SAM's top tier is the
    serviceable obtainable market (SOM). Companies meeting every defining include rule are
    counted too. Money is the median value of won deals per tier on the holdout.

    Returns
    -------
    Result
        ``summary``: one row per market (``market``, ``definition``, ``accounts``,
        ``share_of_tam``, ``value``); ``tables['by_tier']``: per tier the accounts in the SAM,
        excluded, in the ICP, and the tier's holdout rate and median value.
    """
    from icp_research.scoring.model import rule_columns, rule_hits, score_leads

    spec = _scoring_spec(blueprint)
    result = Result(title=f"Market sizing: {label}")
    n = len(prospects)
    if n == 0:
        result.findings.append(
            f"There is nothing to size: the {label} is empty. Give a list of companies (the "
            "prospects parameter) to size the market."
        )
        return result
    excluded = (
        rule_hits(prospects, spec, kinds=("exclude",)).any(axis=1).to_numpy()
        if blueprint.exclude
        else np.zeros(n, bool)
    )
    in_icp = rule_columns(prospects, spec)["in_icp"].to_numpy()
    first_tier = None
    tiers = None
    median_value: dict = {}
    rate: dict = {}
    if blueprint.scorecard is not None:
        scored = score_leads(spec, prospects)
        tiers = scored["tier"].astype(str).to_numpy()
        first_tier = blueprint.scorecard.tiers[0][0]
        if blueprint.validation is not None:
            for row in blueprint.validation.summary.to_dict("records"):
                median_value[row["tier"]] = row.get("value_median", np.nan)
                rate[row["tier"]] = row["rate"]

    def value(mask):
        if tiers is None or not median_value:
            return np.nan
        total = 0.0
        for tier, median in median_value.items():
            if np.isfinite(median):
                total += float(((tiers == tier) & mask).sum()) * median
        return total

    sam = ~excluded
    som = sam & (tiers == first_tier) if tiers is not None else np.zeros(n, bool)
    everyone = np.ones(n, bool)
    rows = [
        ("TAM", f"every company on the {label}", everyone),
        ("SAM", "no exclude rule applies (the filters)", sam),
    ]
    if tiers is not None:
        rows.append(("SOM", f"in the SAM and in {first_tier} (the signals)", som))
    if blueprint.drawn:
        rows.append(("ICP", "every defining include rule and no exclude rule", in_icp))
    result.summary = pd.DataFrame(
        [
            {
                "market": market,
                "definition": definition,
                "accounts": int(mask.sum()),
                "share_of_tam": mask.sum() / n,
                "value": value(mask),
            }
            for market, definition, mask in rows
        ]
    )
    if tiers is not None:
        by_tier = []
        for tier, _ in blueprint.scorecard.tiers:
            member = tiers == tier
            by_tier.append(
                {
                    "tier": tier,
                    "accounts": int(member.sum()),
                    "in_sam": int((member & sam).sum()),
                    "excluded": int((member & excluded).sum()),
                    "in_icp": int((member & in_icp).sum()),
                    "holdout_rate": rate.get(tier, np.nan),
                    "median_value_won": median_value.get(tier, np.nan),
                }
            )
        result.tables["by_tier"] = pd.DataFrame(by_tier)
    result.findings.append(
        f"Of {n:,} companies on the {label}, {int(sam.sum()):,} ({_pct(sam.mean())}) pass the "
        f"filters (SAM)"
        + (
            f" and {int(som.sum()):,} ({_pct(som.mean())}) of those are {first_tier} (SOM)."
            if tiers is not None
            else "; there is no fit score to prioritise them."
        )
    )
    if blueprint.drawn:
        result.findings.append(
            f"{int(in_icp.sum()):,} ({_pct(in_icp.mean())}) meet the ICP's every defining rule."
        )
    if median_value:
        result.caveats.append(
            "Value is the number of companies times the median won deal of their tier on the "
            "holdout: an order of magnitude if every company bought once, not a forecast."
        )
    return result


def pmf_table(result: Result) -> pd.DataFrame:
    """Display table of :func:`pmf_indicators` by tier: customers, referral share and NPS, each
    with its interval."""
    table = result.tables.get("by_tier", pd.DataFrame())
    if table is None or table.empty:
        return pd.DataFrame()
    rows = []
    for row in table.to_dict("records"):
        out = {"tier": row["tier"], "customers": row["customers"]}
        if "referred_share" in row:
            out["came by referral"] = _rate_ci_text(
                row["referred_share"], row["referred_ci_low"], row["referred_ci_high"]
            )
        if "nps_mean" in row:
            mean = row["nps_mean"]
            out["NPS answers"] = row.get("nps_n", 0)
            out["mean NPS (95% CI)"] = (
                f"{mean:.1f} ({row['nps_ci_low']:.1f}–{row['nps_ci_high']:.1f})"
                if np.isfinite(mean) and np.isfinite(row["nps_ci_low"])
                else ("–" if not np.isfinite(mean) else f"{mean:.1f}")
            )
            if "promoters" in row:
                out["promoters (9-10)"] = _pct(row["promoters"])
        rows.append(out)
    return pd.DataFrame(rows)


def sizing_table(result: Result) -> pd.DataFrame:
    """Display table of :func:`market_sizing`: market, definition, accounts, share, value."""
    summary = result.summary
    if summary is None or summary.empty:
        return pd.DataFrame()
    return pd.DataFrame(
        {
            "market": summary["market"],
            "definition": summary["definition"],
            "accounts": summary["accounts"],
            "share of TAM": [_pct(v) for v in summary["share_of_tam"]],
            "value at the tier's median won deal": [fmt_money(v) for v in summary["value"]],
        }
    )


def sizing_tiers_table(result: Result) -> pd.DataFrame:
    """Display table of :func:`market_sizing` per tier."""
    table = result.tables.get("by_tier")
    if table is None or table.empty:
        return pd.DataFrame()
    return pd.DataFrame(
        {
            "tier": table["tier"],
            "accounts": table["accounts"],
            "in the SAM": table["in_sam"],
            "excluded": table["excluded"],
            "in the ICP": table["in_icp"],
            "rate on the holdout": [_pct(v) for v in table["holdout_rate"]],
            "median won deal": [fmt_money(v) for v in table["median_value_won"]],
        }
    )


# ---------------------------------------------------------------------------------------------
# Plots


def plot_scorecard(blueprint: Blueprint, *, ax=None, max_levels: int = 40):
    """Points of each attribute level or bin against the attribute's neutral score (horizontal
    bars, attributes in order of their weight). Returns the Axes."""
    import matplotlib.pyplot as plt

    scorecard = blueprint.scorecard
    table = scorecard.table() if scorecard is not None else pd.DataFrame()
    table = table.head(max_levels)
    if ax is None:
        _, ax = plt.subplots(figsize=(8, max(2.5, 0.28 * len(table) + 1)))
    if table.empty:
        ax.text(0.5, 0.5, "No fit score", ha="center", va="center", transform=ax.transAxes)
        ax.set_axis_off()
        return ax
    labels = [f"{a}: {lv}" for a, lv in zip(table["attribute"], table["level"], strict=True)]
    values = pd.to_numeric(table["vs_neutral"], errors="coerce").to_numpy(dtype=float)
    values = np.where(np.isfinite(values), values, 0.0)
    positions = np.arange(len(table))[::-1]
    colors = np.where(values >= 0, "#0173B2", "#D55E00")
    ax.barh(positions, values, color=colors)
    ax.set_yticks(positions)
    ax.set_yticklabels(labels)
    ax.axvline(0, color="0.3", linewidth=0.8)
    # Room for the labels beside the bars, also when every bar is (nearly) zero.
    pad = max(1.5, 0.15 * float(values.max() - values.min()))
    ax.set_xlim(min(float(values.min()), 0.0) - pad, max(float(values.max()), 0.0) + pad)
    for position, value, points in zip(positions, values, table["points"], strict=True):
        ax.text(
            value + (0.5 if value >= 0 else -0.5),
            position,
            f"{points}",
            va="center",
            ha="left" if value >= 0 else "right",
            fontsize=8,
            color="0.25",
        )
    ax.set_xlabel("Points above or below the attribute's neutral score (label: points)")
    ax.set_title(f"Fit score points ({scorecard.outcome}; 0–100)")
    return ax


def plot_rule_lifts(blueprint: Blueprint, *, ax=None):
    """Each include and exclude rule's lift on its main outcome: training (circle, 95% CI)
    and the latest quarters (square). Returns the Axes."""
    import matplotlib.pyplot as plt

    rows = []
    for rule in [*blueprint.include, *blueprint.exclude]:
        main = _main_evidence(rule)
        if main is None or not np.isfinite(main.training["lift"]):
            continue
        rows.append((rule, main))
    if ax is None:
        _, ax = plt.subplots(figsize=(8, max(2.5, 0.45 * len(rows) + 1)))
    if not rows:
        ax.text(0.5, 0.5, "No rules", ha="center", va="center", transform=ax.transAxes)
        ax.set_axis_off()
        return ax
    positions = np.arange(len(rows))[::-1]
    for position, (rule, main) in zip(positions, rows, strict=True):
        color = "#0173B2" if rule.kind == "include" else "#D55E00"
        t = main.training
        lift = t["lift"]
        ax.errorbar(
            lift,
            position,
            xerr=error_bars(lift, t["ci_low"], t["ci_high"]),
            fmt="o",
            color=color,
            capsize=3,
        )
        h = main.holdout
        if h is not None and h.get("n") and np.isfinite(h.get("lift", np.nan)):
            ax.plot(h["lift"], position - 0.25, "s", color=color, alpha=0.6)
    ax.set_yticks(positions)
    ax.set_yticklabels([f"{r.kind}: {r.text} ({m.sample.words[0]})" for r, m in rows], fontsize=9)
    ax.axvline(1, color="0.3", linestyle="--", linewidth=0.8)
    ax.set_xlim(left=0)
    ax.set_xlabel("Rate in the rule / rate elsewhere (1 = no difference)")
    ax.set_title("Rule evidence: training period (circles) and latest quarters (squares)")
    return ax


def plot_backtest(blueprint: Blueprint, *, ax=None):
    """Per backtested quarter, the rate at which each tier's accounts converted (or stayed),
    with 95% intervals. Returns the Axes."""
    import matplotlib.pyplot as plt

    table = blueprint.backtest
    if ax is None:
        _, ax = plt.subplots(figsize=(8, 4))
    if table is None or table.empty:
        ax.text(0.5, 0.5, "No backtest", ha="center", va="center", transform=ax.transAxes)
        ax.set_axis_off()
        return ax
    quarters = list(dict.fromkeys(table["quarter"]))
    tiers = list(dict.fromkeys(table["tier"]))
    width = 0.8 / len(tiers)
    palette = ["#0173B2", "#DE8F05", "#949494", "#029E73", "#D55E00"]
    for i, tier in enumerate(tiers):
        part = table[table["tier"] == tier].set_index("quarter").reindex(quarters)
        x = np.arange(len(quarters)) + (i - (len(tiers) - 1) / 2) * width
        rate = part["rate"].to_numpy(float)
        ax.bar(
            x,
            np.nan_to_num(rate),
            width,
            yerr=error_bars(rate, part["ci_low"], part["ci_high"]),
            capsize=2,
            label=tier,
            color=palette[i % len(palette)],
        )
    ax.set_xticks(np.arange(len(quarters)))
    ax.set_xticklabels(quarters)
    event = blueprint.backtest_summary["event"].iloc[0] if len(blueprint.backtest_summary) else ""
    ax.set_ylabel(f"share that {event} in the quarter")
    ax.yaxis.set_major_formatter(lambda v, _: f"{v:.0%}")
    ax.set_title("Backtest: accounts scored at each quarter's start (95% CI)")
    ax.legend(frameon=False)
    return ax


# ---------------------------------------------------------------------------------------------
# The one-pager


def onepager_html(blueprint: Blueprint) -> str:
    """The ICP on one printable page (A4 / Letter landscape): name, statement,
    characteristics, include and exclude rules, tiers and the key proof numbers.

    Self-contained: inline styles, no script, nothing fetched; every value is escaped.
    """
    import jinja2
    import markupsafe

    from icp_research.bundled import templates_dir

    folder = templates_dir() / "report"
    css = (folder / "onepager.css").read_text(encoding="utf-8")
    if "</" in css:
        raise ValueError("onepager.css must not contain '</'")
    environment = jinja2.Environment(
        loader=jinja2.FileSystemLoader(str(folder)),
        autoescape=True,
        undefined=jinja2.StrictUndefined,
    )
    tiers = []
    if blueprint.scorecard is not None:
        measured = {}
        if blueprint.validation is not None:
            measured = {r["tier"]: r for r in blueprint.validation.summary.to_dict("records")}
        names = [n for n, _ in blueprint.scorecard.tiers]
        for i, (name, minimum) in enumerate(blueprint.scorecard.tiers):
            upper = blueprint.scorecard.tiers[i - 1][1] - 1 if i else 100
            row = measured.get(name, {})
            tiers.append(
                {
                    "name": name,
                    "range": f"{int(minimum)}–{int(upper)}",
                    "rate": _rate_ci_text(
                        row.get("rate", np.nan),
                        row.get("ci_low", np.nan),
                        row.get("ci_high", np.nan),
                    ),
                    "n": f"{int(row['n']):,}" if row else "–",
                    "last": i == len(names) - 1,
                }
            )
    proof = [(label, value) for label, value in blueprint.headline.items() if label != "ICP"]
    main = next(
        (r for r in blueprint.icp_vs_rest if r["outcome"] == blueprint.outcome.get("name")), None
    )
    context = {
        "css": markupsafe.Markup(css),
        "project": blueprint.project,
        "as_of": blueprint.as_of,
        "name": blueprint.name or "No ICP drawn yet",
        "statement": blueprint.statement,
        "drawn": blueprint.drawn,
        "confidence": {"level": "none", "reason": ""} | dict(blueprint.confidence),
        "characteristics": [
            {
                "attribute": c["attribute"],
                "role": "who they are" if c["role"] == "filter" else "how they come",
                "outcomes": ", ".join(_OUTCOME_WORDS.get(o, (o,))[0] for o in c["outcomes"]),
            }
            for c in blueprint.characteristics
        ],
        "include": [(r.text, _short_evidence(r)) for r in blueprint.include],
        "exclude": [(r.text, _short_evidence(r)) for r in blueprint.exclude],
        "uncertain": [r.text for r in blueprint.uncertain[:4]],
        "tiers": tiers,
        "outcome_label": blueprint.outcome.get("label", ""),
        "proof": proof,
        "icp_line": (
            f"ICP {_pct(main['rate_icp'])} vs rest {_pct(main['rate_rest'])} "
            f"{blueprint.outcome.get('label', '')} in the latest "
            f"{blueprint.outcome.get('holdout_quarters')} quarters"
            if main is not None and main["n_icp"]
            else ""
        ),
        "generator": f"icp-research {__version__}",
    }
    return environment.get_template("onepager.html.j2").render(**context)


def _short_evidence(rule: Rule) -> str:
    main = _main_evidence(rule)
    if main is None or not np.isfinite(main.training["lift"]):
        return ""
    return f"{main.sample.words[0]} {_rates_text(main.sample, main.training)}"


def write_onepager(blueprint: Blueprint, path: str | Path) -> Path:
    """Write :func:`onepager_html` atomically to ``path`` and return it."""
    from icp_research.artifacts import write_text

    return write_text(onepager_html(blueprint), path)


# ---------------------------------------------------------------------------------------------
# Artifacts


#: Columns of ``icp_rules.csv`` (one row per rule and outcome measured).
RULE_COLUMNS = [
    "kind",
    "rule",
    "role",
    "direction",
    "reason",
    "share_of_accounts",
    "outcome",
    "unit",
    "compared_with",
    "n",
    "accounts",
    "n_rest",
    "rate_in",
    "rate_out",
    "rate_unit",
    "lift",
    "ci_low",
    "ci_high",
    "p_value",
    "q_value",
    "n_holdout",
    "rate_in_holdout",
    "rate_out_holdout",
    "lift_holdout",
    "ci_low_holdout",
    "ci_high_holdout",
    "p_value_holdout",
    "replicated",
    "statement",
]


def rules_frame(blueprint: Blueprint) -> pd.DataFrame:
    """``icp_rules.csv``: one row per rule and outcome it was measured on (:data:`RULE_COLUMNS`;
    rates are fractions, or churns per customer-year when ``rate_unit`` says so)."""
    rows = []
    for rule in [*blueprint.include, *blueprint.exclude, *blueprint.uncertain]:
        for evidence in rule.evidence or [None]:
            row = {
                "kind": rule.kind,
                "rule": rule.text,
                "role": rule.role,
                "direction": rule.direction,
                "reason": rule.reason,
                "share_of_accounts": rule.share_of_accounts,
            }
            if evidence is not None:
                data = evidence.to_dict()
                holdout = data.pop("holdout") or {}
                row.update({k: v for k, v in data.items() if k in RULE_COLUMNS})
                for key in ("rate_in", "rate_out", "lift", "ci_low", "ci_high", "p_value"):
                    row[f"{key}_holdout"] = holdout.get(key)
                row["n_holdout"] = holdout.get("n")
                row["replicated"] = evidence.held_up if evidence.significant else None
            rows.append(row)
    return pd.DataFrame(rows, columns=RULE_COLUMNS)


def save_artifacts(study: Study, blueprint: Blueprint) -> list[Path]:
    """Write ``icp.json``, ``icp_rules.csv``, ``icp_onepager.html`` and ``icp_slide.pptx`` to
    the study's artifacts folder (nothing when it has none); returns the paths written."""
    if study.artifacts_dir is None:
        return []
    written = study.save_artifact(registry.ICP, blueprint.to_json())
    written += study.save_artifact(registry.ICP_RULES, rules_frame(blueprint))
    folder = Path(study.artifacts_dir)
    written.append(write_onepager(blueprint, folder / registry.ICP_ONEPAGER.filename))
    written.append(write_slide(blueprint, folder / registry.ICP_SLIDE.filename, study=study))
    study.save_result(blueprint, "blueprint")
    return written


def crm_prospects(study: Study) -> pd.DataFrame:
    """The accounts in the data that are not customers (yet): the prospects already in the
    CRM, for :func:`market_sizing` when no prospect list is given."""
    facts = study.facts
    return facts[~facts["is_customer"].fillna(False).astype(bool)].reset_index(drop=True)


def _hypotheses(count: int) -> str:
    """'1 uncertain rule is a hypothesis' / '3 uncertain rules are hypotheses'."""
    if count == 1:
        return "1 uncertain rule is a hypothesis"
    return f"{count} uncertain rules are hypotheses"
