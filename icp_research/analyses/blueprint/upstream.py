"""Upstream evidence: what the significance, churn and lost-deal analyses found, read from
the run's artifacts (same as-of date) or computed here."""

from __future__ import annotations

import json
from dataclasses import dataclass, field
from pathlib import Path

import pandas as pd

from icp_research.analyses import registry
from icp_research.analyses.antipatterns import read_anti_patterns
from icp_research.analyses.blueprint.text import join_and
from icp_research.artifacts import read_artifact
from icp_research.data.loading import return_memory
from icp_research.data.study import Study
from icp_research.errors import AnalysisError, InputError, NotEnoughData
from icp_research.formatting import fmt_p_is


@dataclass
class Upstream:
    """What the other analyses found, as the blueprint uses it.

    ``recommended`` / ``not_recommended``: the shortlist of
    :meth:`icp_research.analyses.significance.SignificanceResult.to_json`; ``predictors``: the
    rows of ``predictors.csv``; ``predictor_summary``: ``predictor_summary.csv``;
    ``anti_patterns``: the merged anti-pattern table; ``sources``: where each came from
    (computed or read from a run's artifacts); ``caveats``: what could not be computed.
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
    anti_patterns_as_of=None,
) -> Upstream:
    """Gather the significance shortlist and the anti-patterns the blueprint is built from.

    Given objects are used as they are. Otherwise, when ``reuse_artifacts`` and the study's
    artifacts folder belongs to a run of the same as-of date (its data snapshot says so), the
    run's ``icp_predictors.json``, ``predictors.csv``, ``predictor_summary.csv`` and
    ``anti_patterns_*.csv`` are read; what is missing is computed here (the blueprint never
    needs the other reports to have run).

    ``anti_patterns_as_of`` (a date before the study's): the churn and lost-deal anti-patterns
    are found on the data as of that date (the end of the discovery quarters), so that the
    quarters after it can confirm them; never read from a run's artifacts then.
    """
    upstream = Upstream()
    as_of = study.as_of.strftime("%Y-%m-%d")
    folder = study.artifacts_dir
    same_run = reuse_artifacts and folder is not None and _snapshot_as_of(Path(folder)) == as_of
    if anti_patterns_as_of is not None and anti_patterns is None:
        # First, on the earlier date, then let that date's frames go: never both dates' deal
        # frames at once (gigabytes at 10M deals).
        _gather_anti_patterns(upstream, study, same_run, anti_patterns_as_of)
        return_memory()
        if reuse_artifacts and folder is not None:
            # The run's churn and lost-deal reports looked at the whole period.
            _note_found_later(upstream, Path(folder), anti_patterns_as_of)
    if significance is None and same_run:
        _read_significance(upstream, Path(folder), as_of)
    elif significance is not None:
        _take_significance(upstream, significance, "given")
    if "significance" not in upstream.sources:
        from icp_research.analyses.significance import predictor_significance

        try:
            result = predictor_significance(
                study,
                outcomes=("won", "retained", "best_customer"),
                behavioural=False,
                emerging=False,
            )
        except (NotEnoughData, InputError, AnalysisError, ValueError) as error:
            upstream.caveats.append(f"The predictor significance could not be computed: {error}")
        else:
            _take_significance(upstream, result, "computed")

    if anti_patterns is not None:
        upstream.anti_patterns = anti_patterns
        upstream.sources["anti_patterns"] = "given"
    elif anti_patterns_as_of is None:
        _gather_anti_patterns(upstream, study, same_run, None)
    return upstream


def _gather_anti_patterns(upstream: Upstream, study: Study, same_run: bool, as_of) -> None:
    """The churn and lost-deal anti-patterns: read from the run's artifacts (``same_run``) or
    computed, on the study's date or, with ``as_of``, on that earlier date."""
    folder = study.artifacts_dir
    parts = []
    if as_of is not None and pd.Timestamp(as_of) < study.as_of:
        # Chosen on the discovery quarters only: a candidate found on data that includes the
        # confirmation quarters would be "confirmed" on the rows that made it significant.
        study = study.at(as_of)
        same_run = False
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
            parts.append(churn_analysis(study, max_curves=0, anti_patterns_only=True).anti_patterns)
            computed.append("churn")
        except (NotEnoughData, InputError, AnalysisError, ValueError) as error:
            upstream.caveats.append(f"Churn anti-patterns could not be computed: {error}")
    if "anti_patterns_deals.csv" not in have and study.has("opportunities"):
        from icp_research.analyses.deals import lost_deal_analysis

        try:
            parts.append(
                lost_deal_analysis(study, cycle_curves=(), anti_patterns_only=True).anti_patterns
            )
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


def _note_found_later(upstream: Upstream, folder: Path, as_of) -> None:
    """Say which candidate exclude rules of this run's churn and lost-deal reports (found on
    the whole period) the discovery quarters alone did not find: they cannot be confirmed as
    exclude rules, but a reader of the churn report should not see them vanish unexplained."""
    whole = read_anti_patterns(folder)
    if whole.empty or "status" not in whole:
        return
    candidates = whole[whole["status"] == "candidate"]
    found = upstream.anti_patterns
    if len(found) and "status" in found:
        known = set(found.loc[found["status"] == "candidate", "rule_id"])
    else:
        known = set()
    missed = candidates[~candidates["rule_id"].isin(known)]
    if missed.empty:
        return
    shown = []
    for _, row in missed.head(3).iterrows():
        source = "churn" if row.get("source") == "churn" else "lost-deal"
        q = row.get("q_value")
        q_text = f", {fmt_p_is(q, 'q')}" if pd.notna(q) else ""
        shown.append(f"{row.get('words') or row.get('rule')} (the {source} report{q_text})")
    more = f" and {len(missed) - 3} more" if len(missed) > 3 else ""
    upstream.caveats.append(
        f"Found on the whole period but not on the discovery quarters alone (to "
        f"{pd.Timestamp(as_of):%Y-%m-%d}): {'; '.join(shown)}{more}. An exclude rule must be "
        "found before the quarters that confirm it, so these are not tested here; with a "
        "longer history, or [analysis] holdout_quarters = 1, they may be."
    )


def significance_only(study: Study, model: bool = True) -> Upstream:
    """The significance shortlist computed on ``study`` alone (no artifacts, no
    anti-patterns): what the score's attributes are chosen from, e.g. in a backtest fold.
    ``model=False`` skips the multivariable check: what replicated, nothing recommended."""
    from icp_research.analyses.significance import predictor_significance

    upstream = Upstream()
    try:
        result = predictor_significance(
            study,
            outcomes=("won", "retained", "best_customer"),
            behavioural=False,
            model=model,
            emerging=False,
        )
    except (NotEnoughData, InputError, AnalysisError, ValueError) as error:
        upstream.caveats.append(f"The predictor significance could not be computed: {error}")
        return upstream
    _take_significance(upstream, result, "computed")
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


CONTRACT_OUTCOMES = ("best_customer", "arr")


def drop_contract_evidence(upstream: Upstream, study: Study) -> list[str]:
    """Contract terms (seats, plan: ``study.attributes.contract``) make up ARR, so they are no
    evidence for best-customer status, and a new lead has none yet, so no rule or score can
    rest on them: drop their rows (every outcome), recommendations and anti-patterns before
    any rule or score is drawn. Returns the caveat saying so."""
    contract = study.attributes.contract
    if not contract:
        return []
    names = list(contract)

    def other(frame, column="predictor"):
        if frame is None or frame.empty or column not in frame.columns:
            return frame
        return frame[~frame[column].isin(names)]

    upstream.predictors = other(upstream.predictors)
    upstream.predictor_summary = other(upstream.predictor_summary)
    upstream.anti_patterns = other(upstream.anti_patterns, "attribute")
    upstream.recommended = [i for i in upstream.recommended if i.get("predictor") not in contract]
    return [
        f"{join_and(sorted(contract))} "
        f"{'is a contract term' if len(contract) == 1 else 'are contract terms'}"
        " (part of what a customer pays, which a new lead does not have yet): never a rule or "
        "a score attribute (the predictor report says when one goes with best-customer status "
        "or ARR)."
    ]
