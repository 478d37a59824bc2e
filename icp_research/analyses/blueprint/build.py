"""The analysis: :func:`build_blueprint` draws the ICP from the study and the upstream
evidence, step by step (see the package docstring)."""

from __future__ import annotations

import numpy as np
import pandas as pd

from icp_research.analyses.blueprint.evidence import meets_all
from icp_research.analyses.blueprint.findings import (
    caveats_of,
    confidence_of,
    contract_confidence,
    findings_of,
    headline_of,
)
from icp_research.analyses.blueprint.market import pmf_indicators
from icp_research.analyses.blueprint.result import Blueprint
from icp_research.analyses.blueprint.rules import (
    defining_characteristics,
    exclude_rules,
    include_rules,
    significance_uncertain,
)
from icp_research.analyses.blueprint.samples import OUTCOMES, outcome_samples
from icp_research.analyses.blueprint.segments import segment_icps
from icp_research.analyses.blueprint.statement import (
    NEED_MISSING,
    Labels,
    draft_statement,
    no_icp_statement,
    survey_need,
    theme_need,
)
from icp_research.analyses.blueprint.text import OUTCOME_WORDS, join_or, plain
from icp_research.analyses.blueprint.upstream import (
    Upstream,
    drop_contract_evidence,
    upstream_evidence,
)
from icp_research.analyses.blueprint.validation import (
    fit_and_validate,
    measure_icp_vs_rest,
    score_attributes,
    tier_spec,
    walk_forward_backtest,
)
from icp_research.data.study import Study
from icp_research.errors import InputError

MAX_UNCERTAIN = 8


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
        A computed :func:`icp_research.analyses.significance.predictor_significance`; by default
        read from the run's artifacts (same as-of date) or computed here.
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
    caveats += drop_contract_evidence(upstream, study)
    facts = study.facts
    spec = study.attributes
    attributes = [a for a in [*spec.categorical, *spec.numeric] if a in facts.columns]
    samples = outcome_samples(study, attributes, holdout_quarters)
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

    characteristics = defining_characteristics(upstream, attributes)
    include, notes = include_rules(characteristics, study, samples, outcome, alpha)
    for item in characteristics:
        rule = next((r for r in include if r.attribute == item["attribute"]), None)
        item["rule"] = rule.text if rule else None
    exclude, demoted, exclude_notes = exclude_rules(
        upstream, characteristics, include, samples, facts, alpha
    )
    from_significance, _ = significance_uncertain(upstream, include, exclude, samples, alpha)
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
        rule.share_of_accounts = (
            float(meets_all(facts, rule.conditions).mean()) if len(facts) else 0
        )

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
    words = OUTCOME_WORDS[outcome]
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
    categorical, numeric = score_attributes(characteristics, upstream, study)
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
    blueprint.labels = Labels.of(study)
    if blueprint.drawn:
        blueprint.need = survey_need(study, in_icp, alpha) or theme_need(study, alpha)
        blueprint.name, drafted = draft_statement(
            include, exclude, blueprint.need, blueprint.labels
        )
        if blueprint.need is None:
            caveats.append(NEED_MISSING)
    else:
        drafted = no_icp_statement(study, upstream, uncertain)
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
        "tiers_json": [{"name": n, "min_score": plain(m)} for n, m in tiers_used.get("fixed", [])]
        or [{"name": n, "min_score": None} for n in tiers_used.get("names", [])],
        "holdout_quarters": holdout_quarters,
        "backtest_quarters": backtest_quarters,
        "alpha": alpha,
        "upstream": dict(upstream.sources),
    }
    if primary is not None and characteristics and (categorical or numeric):
        fit_and_validate(
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
            blueprint.backtest, blueprint.backtest_summary, backtest_notes = walk_forward_backtest(
                study, blueprint.scorecard, outcome, backtest_quarters, tiers_used, alpha
            )
            caveats.extend(backtest_notes)
    elif primary is not None:
        caveats.append(
            "No fit score: no characteristic held up in the latest quarters, so points would "
            "rank accounts on noise."
        )
    blueprint.icp_vs_rest = (
        measure_icp_vs_rest(samples, rules_spec, alpha) if blueprint.drawn else []
    )
    blueprint.segments = (
        segment_icps(study, include, primary, alpha)
        if blueprint.drawn
        else {"verdict": "No ICP, so no segment ICPs.", "drawn": False, "table": pd.DataFrame()}
    )
    blueprint.confidence = contract_confidence(confidence_of(blueprint), blueprint, study)
    blueprint.pmf = pmf_indicators(study, blueprint)
    blueprint.headline = headline_of(blueprint)
    blueprint.findings = findings_of(blueprint)
    blueprint.caveats = caveats_of(blueprint, caveats)
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


def _not_enough_data_notes(upstream: Upstream, notes: list[str]) -> None:
    summary = upstream.predictor_summary
    if summary is None or summary.empty or "underpowered" not in summary.columns:
        return
    quiet = summary[summary["underpowered"] & (summary["verdict"] != "predicts")]
    quiet = quiet[quiet["outcome"].isin(OUTCOMES)]
    for outcome, rows in quiet.groupby("outcome", sort=False):
        notes.append(
            f"Too little data to tell whether {join_or(list(rows['predictor']))} predict "
            f"{OUTCOME_WORDS[outcome][1]}: only very large effects were detectable."
        )
