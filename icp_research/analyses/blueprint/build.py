"""The analysis: :func:`build_blueprint` draws the ICP from the study and the upstream
evidence, step by step (see the package docstring)."""

from __future__ import annotations

import numpy as np
import pandas as pd

from icp_research.analyses.blueprint.evidence import meets_all, too_few_to_tell
from icp_research.analyses.blueprint.findings import (
    caveats_of,
    confidence_of,
    contract_confidence,
    findings_of,
    group_confidence,
    group_notes,
    headline_of,
)
from icp_research.analyses.blueprint.market import pmf_indicators
from icp_research.analyses.blueprint.result import Blueprint
from icp_research.analyses.blueprint.rules import (
    Rule,
    combination_rules,
    defining_characteristics,
    exclude_rules,
    include_rules,
    refinement_candidates,
    searched_families,
    significance_uncertain,
    trade_off_notes,
    unconfirmed_at_chance,
)
from icp_research.analyses.blueprint.samples import OUTCOMES, outcome_samples
from icp_research.analyses.blueprint.segments import segment_icps
from icp_research.analyses.blueprint.statement import (
    NEED_MISSING,
    Labels,
    channel_statement,
    detectable_effects,
    draft_statement,
    no_icp_statement,
    rule_words,
    survey_need,
    theme_need,
    without_signals,
)
from icp_research.analyses.blueprint.text import OUTCOME_WORDS, join_or, lift_text, pct, plain
from icp_research.analyses.blueprint.upstream import (
    CONTRACT_OUTCOMES,
    Upstream,
    drop_contract_evidence,
    upstream_evidence,
)
from icp_research.analyses.blueprint.validation import (
    fit_and_validate,
    measure_icp_vs_rest,
    score_attributes,
    select_score_attributes,
    tier_spec,
    walk_forward_backtest,
)
from icp_research.data.loading import return_memory
from icp_research.data.study import Study
from icp_research.errors import InputError
from icp_research.formatting import fmt_count

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
    validation_quarters: int | None = None,
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
        A computed :func:`icp_research.analyses.significance.predictor_significance`, used
        only when it was computed as of the selection date (the day before the validation
        quarters); otherwise computed here as of that date.
    anti_patterns : DataFrame, optional
        Anti-patterns (:data:`icp_research.analyses.antipatterns.ANTI_PATTERN_COLUMNS`, ``value``
        decoded) found on data up to the selection date; by default computed here.
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
        Quarters that confirm what the earlier period found (the middle period); default
        ``[analysis] holdout_quarters``.
    validation_quarters : int, optional
        Latest quarters kept for validation only: nothing is chosen on them (not the
        characteristics, the rules, the score's attributes or weights, nor the outcome); the
        rules, the ICP and the fit score are measured on them once chosen. Default
        ``[analysis] validation_quarters``, else the same as ``holdout_quarters``.
    backtest_quarters : int
        Recent quarters backtested (0: none); in each, the whole selection of the score's
        attributes is redone on what was known at the quarter's start.
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
    if validation_quarters is None or int(validation_quarters) < 0:
        validation_quarters = int(study.analysis.get("validation_quarters", holdout_quarters))
    validation_quarters = max(int(validation_quarters), 1)
    tiers_used = tier_spec(tiers, study)
    # Three periods: discover on the earliest, confirm on the middle (holdout_quarters), and
    # validate on the latest (validation_quarters), on which nothing is chosen. Everything that
    # chooses below sees the data as it was the day before the validation period began.
    full = study
    periods = study_periods(full, holdout_quarters, validation_quarters)
    study = full.at(periods["selection_as_of"])
    if (
        significance is not None
        and significance.params.get("as_of") != periods["selected_on"]["end"]
    ):
        significance = None  # computed on data that includes the validation period
    upstream = upstream_evidence(
        study,
        significance=significance,
        anti_patterns=anti_patterns,
        reuse_artifacts=reuse_artifacts,
        # Anti-patterns are found on the discovery quarters; the confirmation quarters check
        # them (as the significance analysis does with its own split).
        anti_patterns_as_of=pd.Timestamp(periods["discovered_on"]["end"]),
    )
    return_memory()  # what the upstream analyses used and let go of
    caveats = list(upstream.caveats)
    caveats += _short_history(periods, holdout_quarters, validation_quarters)
    caveats += drop_contract_evidence(upstream, study)
    facts = study.facts
    spec = study.attributes
    attributes = [
        a
        for a in [*spec.categorical, *spec.numeric]
        if a in facts.columns and a not in spec.contract  # a new lead has no contract yet
    ]
    samples = outcome_samples(study, attributes, holdout_quarters)
    chosen = None
    if not outcome:
        outcome, chosen = _data_outcome(samples, study)
        caveats.append(chosen)
    # The selection date's deal facts are done with until the backtest (at 10M deals a
    # gigabyte, which the validation period's samples need now).
    study.forget("deals")
    return_memory()
    checks = outcome_samples(full, attributes, validation_quarters)
    primary = samples.get(outcome)
    check = checks.get(outcome)
    if primary is None:
        caveats.append(
            f"The outcome {outcome!r} cannot be measured in this data, so rules cannot be "
            "measured on it and no fit score can be learned."
        )

    characteristics = defining_characteristics(upstream, attributes)
    include, notes = include_rules(characteristics, study, samples, outcome, alpha)
    include, size_only = contract_size_only(include, characteristics, study)
    include, against = against_own_outcome(include, outcome)
    size_only += against
    notes += trade_off_notes(characteristics)
    for item in characteristics:
        rule = next((r for r in include if r.attribute == item["attribute"]), None)
        item["rule"] = rule.text if rule else None
    combined: list = []
    searched_combinations = primary is not None and not any(r.role == "filter" for r in include)
    if searched_combinations:
        # No single trait draws an ICP; a combination of traits may (and must hold up too).
        combined, combination_notes = combination_rules(study, samples, outcome, attributes, alpha)
        notes += combination_notes
        held = next((r for r in combined if r.evidence[0].replicated), None)
        if held is not None:
            include.append(held)
        # Others that held up are variants of the one taken (the note names them).
        combined = [r for r in combined if r is not held and not r.evidence[0].replicated]
        for rule in combined:
            rule.kind, rule.role, rule.direction = "uncertain", "", "favour"
            checked = rule.evidence[0].holdout or {}
            n = int(checked.get("n", 0) or 0)
            rule.reason = "a combination significant earlier; " + (
                "nothing of it in the confirmation quarters to check it on"
                if n == 0
                else f"too few {primary.unit} in the confirmation quarters ({n}) to confirm it"
                if n < 30 or too_few_to_tell(rule.evidence[0])
                else "it did not hold up in the confirmation quarters"
            )
    # Inside a drawn ICP, what does worse: the second condition of an ICP that is a
    # combination ("Healthcare" and not "fewer than 200 employees").
    refinements = (
        [(outcome, refinement_candidates(study, samples, outcome, attributes, include, alpha))]
        if not searched_combinations
        else []
    )
    exclude, demoted, exclude_notes = exclude_rules(
        upstream, characteristics, include, samples, facts, alpha, refinements=refinements
    )
    from_significance, significance_notes = significance_uncertain(
        upstream, include, exclude, samples, alpha
    )
    notes += significance_notes
    # A condition the exclude rules measured and demoted is listed once, with that evidence.
    demoted_texts = {r.text for r in demoted}
    from_significance = [r for r in from_significance if r.text not in demoted_texts]
    uncertain = sorted(demoted + from_significance + combined + size_only, key=lambda r: r.strength)
    uncertain, chance_notes = unconfirmed_at_chance(
        uncertain, searched_families(upstream, samples, searched_combinations), alpha
    )
    notes += chance_notes
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
            float(meets_all(full.facts, rule.conditions).mean()) if len(full.facts) else 0
        )

    blueprint = Blueprint(
        title="ICP blueprint",
        as_of=full.as_of.strftime("%Y-%m-%d"),
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
        "validation_from": periods["validated_on"]["start"],
        "validation_quarters": validation_quarters,
        "selected_on": periods["selected_on"],
        "validated_on": periods["validated_on"],
        "n_training": len(primary.training) if primary else 0,
        "n_holdout": len(primary.holdout) if primary else 0,
        "n_validation": len(check.holdout) if check else 0,
    }
    if chosen:
        blueprint.outcome["chosen"] = chosen

    # Attributes the rules and the score read, and how.
    categorical, numeric = score_attributes(characteristics, upstream, study)
    used = {c.attribute for r in [*include, *exclude, *uncertain] for c in r.conditions}
    used |= set(categorical) | set(numeric)
    blueprint.attributes.update(attribute_types(sorted(used), facts, spec, study.config))
    rules_spec = blueprint.rules_spec()

    from icp_research.scoring.model import rule_columns

    in_icp = rule_columns(facts, rules_spec)["in_icp"]
    now_in_icp = rule_columns(full.facts, rules_spec)["in_icp"]
    blueprint.icp_share = float(now_in_icp.mean()) if len(now_in_icp) else np.nan
    blueprint.labels = Labels.of(study)
    if blueprint.drawn:
        blueprint.need = survey_need(study, in_icp, alpha) or theme_need(study, alpha)
        blueprint.name, drafted = draft_statement(
            _per_condition(include), exclude, blueprint.need, blueprint.labels
        )
        if blueprint.need is None:
            caveats.append(NEED_MISSING)
    else:
        channels = [r for r in include if r.role == "signal"]
        drafted = no_icp_statement(
            study, upstream, uncertain, outcome, excluded=bool(exclude), channel=bool(channels)
        )
        if exclude:
            # Who fits cannot be said, but who does not held up: say that first, and do not
            # say that nothing separates the accounts.
            _, misfit = draft_statement([], exclude, None, blueprint.labels)
            misfit = misfit.split("Not a fit: ", 1)[-1].rstrip(".")
            drafted = (
                f"Who fits cannot be drawn yet, but who does not held up in the confirmation "
                f"quarters: not a fit: {misfit} (the exclude rules below). " + drafted
            )
        if channels:
            # A channel held up (how accounts came to us), no trait of the company did: the
            # statement must not say that nothing held up ("Partner Referral wins 1.64x, held
            # up" under "nothing measured separates winners from the rest").
            drafted = channel_statement(channels, blueprint.labels) + drafted
        if combined:
            best = combined[0]
            e = best.evidence[0]
            drafted += (
                f" One combination of traits stood out on the training period: "
                f"companies {' '.join(rule_words(best, blueprint.labels))} "
                f"({e.sentence().split(': ', 1)[-1].split('; confirmation quarters')[0]}), "
                f"{best.reason.split('; ', 1)[-1]}; it is "
                "listed among the uncertain rules until more quarters confirm it."
            )
        powered, thin = detectable_effects(upstream, outcome)
        powered, signals = without_signals(powered, uncertain)
        if powered and not study.variation.get("won"):
            # For `icp-research score`: whether more of the same data could help.
            blueprint.outcome["detectable"] = powered
            blueprint.outcome["too_little_data"] = thin
            blueprint.outcome["signals"] = signals
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
        "validation_quarters": validation_quarters,
        "periods": {k: v for k, v in periods.items() if k != "selection_as_of"},
        "backtest_quarters": backtest_quarters,
        "alpha": alpha,
        "upstream": dict(upstream.sources),
    }
    # The rules on the validation period and per size segment: measured before the fit score's
    # backtest, which needs the memory these samples hold.
    blueprint.icp_vs_rest = (
        measure_icp_vs_rest(checks, rules_spec, alpha) if blueprint.drawn else []
    )
    grouped = group_notes(blueprint, study, primary)
    blueprint.segments = (
        segment_icps(study, include, primary, alpha)
        if blueprint.drawn
        else {"verdict": "No ICP, so no segment ICPs.", "drawn": False, "table": pd.DataFrame()}
    )
    if primary is not None and characteristics and (categorical or numeric):
        fit_and_validate(
            blueprint,
            study,
            checks,
            primary,
            categorical,
            numeric,
            tiers_used,
            alpha,
            n_boot,
            caveats,
        )
        if blueprint.scorecard is not None and check is not None:
            blueprint.calibration = _calibrate(
                blueprint, primary, check, periods, validation_quarters, full, alpha
            )
            caveats.extend(blueprint.calibration.caveats)
        if blueprint.scorecard is not None:
            chosen_on = periods["selection_as_of"]

            def select(past: Study):
                # A fold scored on or after the blueprint's own selection date uses that
                # selection (made on data before the fold); an earlier fold makes its own.
                if past.as_of >= chosen_on:
                    return list(categorical), list(numeric)
                return select_score_attributes(past)

            # Every measurement on the samples' rows is made: the backtest's folds get the
            # memory (at 10M deals the rows are gigabytes; the evidence keeps its numbers).
            for sample in [*samples.values(), *checks.values()]:
                sample.release_rows()
            # The folds before the selection date do not read its deal facts (gigabytes at
            # 10M deals); the fold on that date computes them again.
            study.forget("deals")
            return_memory()
            blueprint.backtest, blueprint.backtest_summary, backtest_notes = walk_forward_backtest(
                full, blueprint.scorecard, outcome, backtest_quarters, tiers_used, alpha, select
            )
            caveats.extend(backtest_notes)
    elif primary is not None and blueprint.drawn:
        caveats.append(
            "No fit score: the ICP is a combination of traits, none of which predicts on its "
            "own, so points per trait would rank accounts on noise; its rule marks accounts "
            "in or out of the ICP (score with --rules-only)."
        )
    elif primary is not None:
        caveats.append(
            "No fit score: no characteristic held up in the confirmation quarters, so points would "
            "rank accounts on noise."
        )
    blueprint.confidence = group_confidence(
        contract_confidence(confidence_of(blueprint), blueprint, full), *grouped, caveats
    )
    _worse_on_validation(blueprint, caveats)
    blueprint.pmf = pmf_indicators(full, blueprint)
    blueprint.headline = headline_of(blueprint)
    blueprint.findings = findings_of(blueprint)
    if blueprint.params.get("worse_on_validation"):
        blueprint.findings.insert(
            min(1, len(blueprint.findings)), blueprint.params["worse_on_validation"]
        )
    blueprint.caveats = caveats_of(blueprint, caveats)
    blueprint.summary = pd.concat(
        [
            blueprint.rules_table(kind).assign(kind=kind)
            for kind in ("include", "exclude", "uncertain")
        ],
        ignore_index=True,
    )
    blueprint.tables = {
        "expected_pipeline": expected_pipeline(blueprint, full, alpha),
        "characteristics": blueprint.characteristics_table(),
        "tiers": blueprint.tier_table(),
        "icp_vs_rest": blueprint.icp_vs_rest_table(),
        "backtest": blueprint.backtest_table(),
        "segments": blueprint.segments_table(),
    }
    return blueprint


def _per_condition(rules: list) -> list:
    """Rules of several conditions (a combination) as one rule per condition, for the wording
    of the statement, which names the company type, size and place one trait at a time."""
    out = []
    for rule in rules:
        if len(rule.conditions) == 1:
            out.append(rule)
            continue
        out += [
            Rule(rule.kind, [c], c.attribute, role=rule.role, evidence=rule.evidence)
            for c in rule.conditions
        ]
    return out


def expected_pipeline(blueprint, study: Study, alpha: float) -> pd.DataFrame:
    """The backtest of the summed win probabilities (``kind`` = ``closed``, per validation
    quarter) and the deals open now (``kind`` = ``open``), by segment and tier, in one table
    (see :mod:`icp_research.analyses.blueprint.pipeline`)."""
    from icp_research.analyses.blueprint.pipeline import expectation_backtest, open_pipeline

    closed = expectation_backtest(blueprint, study, alpha).assign(kind="closed")
    now = open_pipeline(blueprint, study).rename(
        columns={"open_deals": "deals", "expected_wins": "expected"}
    )
    now = now.assign(kind="open", quarter="now").drop(columns="mean_probability")
    table = pd.concat([closed, now], ignore_index=True) if len(closed) or len(now) else closed
    columns = ["kind", "quarter", "segment", "tier", "deals", "expected", "won"]
    columns += ["observed_expected", "ci_low", "ci_high"]
    return table.reindex(columns=columns)


def _calibrate(blueprint, primary, check, periods, validation_quarters, full, alpha):
    """The win probability: the score's calibration fitted on the quarters after the score
    was fitted (the confirmation quarters and the validation quarters before the latest) and
    checked on the latest quarter, which played no part in either. Fitted on one quarter alone,
    one unlucky quarter (15% won against 24% in the others) set every probability a third too
    low, and the health report then called the forecast drifted quarter after quarter."""
    from icp_research.analyses.blueprint.calibration import calibrate_fit_score
    from icp_research.analyses.blueprint.samples import holdout_start

    rows = check.holdout
    column = check.split_on
    latest_from = holdout_start(full.as_of, 1)
    day = pd.Timedelta(days=1)
    if validation_quarters >= 2 and column in rows.columns:
        dated = pd.to_datetime(rows[column], errors="coerce")
        earlier, check_rows = rows[dated < latest_from], rows[dated >= latest_from]
        confirmation = primary.holdout
        fit_rows = (
            pd.concat([confirmation, earlier], ignore_index=True, join="inner")
            if len(confirmation)
            else earlier
        )
        fit_period = {
            "start": periods["confirmed_on" if len(confirmation) else "validated_on"]["start"],
            "end": (latest_from - day).strftime("%Y-%m-%d"),
        }
        check_period = {
            "start": latest_from.strftime("%Y-%m-%d"),
            "end": periods["validated_on"]["end"],
        }
        note = (
            "The win probability is calibrated on the confirmation quarters and the validation "
            "quarters before the latest: the confirmation quarters also confirmed the score's "
            "attributes, which may make it a little optimistic; its check on the latest "
            "quarter is what counts."
            if len(confirmation)
            else None
        )
    else:
        fit_rows, check_rows = primary.holdout, rows
        fit_period, check_period = periods["confirmed_on"], periods["validated_on"]
        note = (
            "The win probability is calibrated on the confirmation quarters, which also "
            "confirmed the score's attributes (one validation quarter leaves no other period): "
            "it may be a little optimistic; its check on the latest quarter is what counts."
        )
    result = calibrate_fit_score(
        blueprint.scorecard,
        fit_rows,
        check_rows,
        primary.outcome,
        cluster=primary.cluster if primary.clustered else None,
        alpha=alpha,
        fit_period=fit_period,
        check_period=check_period,
        unit=primary.unit,
    )
    if note:
        result.caveats.append(note)
    return result


def _short_history(periods: dict, holdout_quarters: int, validation_quarters: int) -> list[str]:
    """A caveat when less than a year of data comes before the confirmation quarters."""
    start = pd.Timestamp(periods["discovered_on"]["start"])
    end = pd.Timestamp(periods["discovered_on"]["end"])
    months = max((end - start).days, 0) / 30.44
    if months >= 12:
        return []
    kept = (
        f"the latest {fmt_count(validation_quarters, 'quarter')} kept to validate and the "
        f"{fmt_count(holdout_quarters, 'quarter')} before to confirm"
    )
    advice = (
        " With a short history, set [analysis] validation_quarters = 1 and holdout_quarters = 1."
        if validation_quarters > 1 or holdout_quarters > 1
        else " Nothing shorter is possible: findings need more history (rerun in a later quarter)."
    )
    return [
        f"Only {months:.0f} months of data come before the confirmation quarters "
        f"({periods['discovered_on']['start']} to {periods['discovered_on']['end']}), with "
        f"{kept}: little is left to discover on.{advice}"
    ]


def _worse_on_validation(blueprint: Blueprint, caveats: list[str]) -> None:
    """An ICP whose accounts did significantly worse than the rest on the validation quarters
    (on which nothing was chosen): the profile drawn from the quarters before no longer holds
    there. A warning stands beside the statement (the findings, the caveats, the dashboard)
    and the confidence is low, rather than a drifted ICP read as current (a market that moved
    on)."""
    main = next(
        (r for r in blueprint.icp_vs_rest if r["outcome"] == blueprint.outcome.get("name")),
        None,
    )
    if not blueprint.drawn or main is None or not main.get("n_icp"):
        return
    high = main.get("ci_high")
    if high is None or not np.isfinite(high) or high >= 1:
        return
    label = blueprint.outcome.get("label", "rate")
    warning = (
        f"On the validation quarters, on which nothing was chosen, ICP accounts did worse than "
        f"the rest ({label} {pct(main['rate_icp'])} vs {pct(main['rate_rest'])}, "
        f"{main['ratio']:.2f}x, 95% CI {main['ci_low']:.2f}–{high:.2f}): the profile drawn from "
        "the quarters before no longer holds there. Read the ICP health report before acting "
        "on it."
    )
    # The statement stays what was chosen (outcomes of the validation quarters change
    # nothing that was chosen); the warning stands beside it: first in the caveats and the
    # findings, on the dashboard and in the health report.
    blueprint.params["worse_on_validation"] = warning
    caveats.insert(0, warning)
    confidence = dict(blueprint.confidence or {})
    confidence["level"] = "low"
    confidence["reason"] = (
        "the ICP did worse than the rest on the validation quarters; "
        + str(confidence.get("reason", ""))
    ).rstrip("; ")
    blueprint.confidence = confidence


def attribute_types(names, facts: pd.DataFrame, spec, config=None) -> dict:
    """How the rules and the score read each attribute: ``{"type": "numeric", "nonnegative":
    ...}`` for numbers, ``{"type": "categorical"}`` for labels, and ``{"type": "categorical",
    "values": "yes/no"}`` for a yes/no column (two levels, True and False, never a number: a
    lead's TRUE, Yes or 1 is read as True). An attribute expanded from a multi-select column
    also carries ``"multi_select": {"column", "source", "separator", "item"}``: a lead file with
    the raw column (``Technologies``) is read item by item as the training rows were.
    An attribute the config's accounts mapping reads from a differently named header also
    carries ``"source"`` (``"Organization - Industry"``): a lead list exported from the same
    CRM is then scored without the config."""
    accounts = (getattr(config, "tables", None) or {}).get("accounts")
    headers = {
        name: header
        for name, header in (getattr(accounts, "columns", None) or {}).items()
        if isinstance(header, str) and header != name and " | " not in header
    }
    out = {}
    for name in names:
        item = spec.multi_select_item(name) if hasattr(spec, "multi_select_item") else None
        if item is not None:
            out[name] = {"type": "categorical", "values": "yes/no", "multi_select": item}
        elif name in facts.columns and pd.api.types.is_bool_dtype(facts[name]):
            out[name] = {"type": "categorical", "values": "yes/no"}
        elif name in spec.numeric or (
            name in facts.columns and pd.api.types.is_numeric_dtype(facts[name])
        ):
            values = pd.to_numeric(facts.get(name), errors="coerce")
            nonnegative = bool(values.dropna().ge(0).all()) if values is not None else True
            out[name] = {"type": "numeric", "nonnegative": nonnegative}
        else:
            out[name] = {"type": "categorical"}
        if name in headers and "multi_select" not in out[name]:
            out[name]["source"] = headers[name]
    return out


def study_periods(study: Study, holdout_quarters: int, validation_quarters: int) -> dict:
    """The three periods, as ``{"start", "end"}`` dates (YYYY-MM-DD): ``discovered_on`` (up to
    the confirmation quarters), ``confirmed_on`` (the ``holdout_quarters`` before the validation
    period), ``selected_on`` (both: everything the ICP is chosen on), ``validated_on`` (the
    latest ``validation_quarters``, up to the as-of date), and ``selection_as_of`` (the day
    before the validation period, a Timestamp). ``selected_on`` and ``validated_on`` never
    overlap."""
    from icp_research.analyses.blueprint.samples import holdout_start
    from icp_research.data.study import earliest_date

    day = pd.Timedelta(days=1)
    validation_from = holdout_start(study.as_of, validation_quarters)
    selection_as_of = validation_from - day
    confirmation_from = holdout_start(selection_as_of, holdout_quarters)
    # The first thing that happened (a deal, a subscription, a usage day), not the oldest
    # account record: a CRM keeps companies created years before any deal ("discovered on
    # 2021-01-13 to ..." for deals from 2023-07).
    tables = study.dataset.tables
    first, _ = earliest_date({k: v for k, v in tables.items() if k != "accounts"})
    if first is None:
        first, _ = earliest_date(tables)
    first = pd.Timestamp(first) if first is not None else confirmation_from

    def span(start, end) -> dict:
        start = min(pd.Timestamp(start), pd.Timestamp(end))
        return {"start": start.strftime("%Y-%m-%d"), "end": pd.Timestamp(end).strftime("%Y-%m-%d")}

    return {
        "discovered_on": span(first, confirmation_from - day),
        "confirmed_on": span(confirmation_from, selection_as_of),
        "selected_on": span(first, selection_as_of),
        "validated_on": span(validation_from, study.as_of),
        "selection_as_of": selection_as_of,
    }


def against_own_outcome(include: list, outcome: str | None) -> tuple[list, list]:
    """Defining rules that did significantly worse on the outcome the ICP is measured on
    (a first user's "employees >= 150", taken for best-customer status, won 0.83x as often,
    q = 0.01, and the ICP read "fits larger Healthcare companies"): uncertain rules, with the
    trade-off said. Returns ``(include rules kept, rules made uncertain)``."""
    kept, moved = [], []
    for rule in include:
        own = next((e for e in rule.evidence if e.sample.outcome == outcome and e.worse), None)
        if rule.role != "filter" or own is None:
            kept.append(rule)
            continue
        for_what = sorted({e.sample.words[0] for e in rule.evidence if e.better})
        rule.kind, rule.role, rule.direction = "uncertain", "", "favour"
        rule.reason = (
            (f"it predicted {' and '.join(for_what)}, but " if for_what else "")
            + f"on {own.sample.words[0]}, the outcome the ICP is measured on, it did "
            f"significantly worse ({lift_text(own.training)} in the discovery quarters): a "
            "trade-off to weigh, not part of the ICP"
        )
        moved.append(rule)
    return kept, moved


def contract_size_only(include: list, characteristics: list, study: Study) -> tuple[list, list]:
    """Defining rules that are no ICP: each rests on best-customer status alone (the top share
    by ARR, which contract size makes: bigger companies buy bigger plans) and none held up in
    the confirmation quarters. An ICP "fits larger companies" drawn from them would describe
    bigger contracts, shown neither to win more nor to churn less; they become uncertain rules.
    Returns ``(include rules kept, rules made uncertain)``."""
    filters = [r for r in include if r.role == "filter"]
    if not filters or any(r.replicated for r in filters):
        return include, []
    if study.analysis.get("best_customer_metric", "arr") not in ("arr", "clv", "expansion"):
        return include, []
    outcomes = {c["attribute"]: set(c.get("outcomes") or []) for c in characteristics}
    if any(
        not outcomes.get(r.attribute) or outcomes[r.attribute] - set(CONTRACT_OUTCOMES)
        for r in filters
    ):
        return include, []
    for rule in filters:
        rule.kind, rule.role, rule.direction = "uncertain", "", "favour"
        rule.reason = (
            "its trait predicted being a best customer (the top accounts by ARR, which bigger "
            "contracts make) and nothing else, and the rule did not hold up in the "
            "confirmation quarters: it may describe bigger contracts, not a better fit"
        )
    return [r for r in include if r not in filters], filters


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
    deals = study.deal_rows if study is not None else None
    if won is None and deals is not None and len(deals):
        # The deals exist but no won sample was drawn (every one won, or every one lost).
        closed = (
            deals["is_new_business"].astype(bool)
            & deals["is_closed"].astype(bool)
            & deals["account_id"].notna()
        ).to_numpy(dtype=bool)
        if closed.any():
            won = (
                int(deals["won"].to_numpy(dtype=bool, na_value=False)[closed].sum()),
                int(closed.sum()),
            )
    # The outcome is chosen like everything else: before the validation quarters.
    up_to = f" up to {study.as_of:%Y-%m-%d}" if study is not None else ""
    if won and 0 < won[0] < won[1] and "won" in samples:
        return "won", (
            f"Success is measured as winning ([scoring] outcome is not set, chosen from the data{up_to}): "
            f"{won[1]:,} closed new-business deals, {won[0]:,} won and {won[1] - won[0]:,} lost."
        )
    if won is None:
        deals = "there are no closed new-business deals"
    elif 0 < won[0] < won[1]:
        why = getattr(samples, "skipped", {}).get("won") or "they cannot be linked to accounts"
        deals = f"the {won[1]:,} closed deals cannot be compared ({why.replace('(', '').replace(')', '')})"
    else:
        deals = f"all {won[1]:,} closed deals were {'won' if won[0] else 'lost'}"
    retained = counts("retained")
    if retained and 0 < retained[0] < retained[1]:
        return "retained", (
            f"Success is measured as 12-month retention ([scoring] outcome is not set, chosen "
            f"from the data{up_to}): {deals}, so wins cannot be compared; {retained[1] - retained[0]:,} "
            f"of {retained[1]:,} customers churned within 12 months. Set [scoring] outcome to "
            "choose another."
        )
    if retained is not None:
        churn = "retention does not vary"
    elif study is not None and study.churn_measured:
        # Churn is measured, but no customer had been one for 12 months by then.
        why = getattr(samples, "skipped", {}).get("retained")
        churn = "12-month retention cannot be compared" + (
            f" ({why.replace('(', '').replace(')', '')})" if why else ""
        )
    else:
        churn = "churn cannot be measured"
    return "best_customer", (
        f"Success is measured as being a best customer ([scoring] outcome is not set, chosen from the "
        f"data{up_to}): {deals} and {churn}. Set [scoring] outcome to choose another."
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
