"""What the report says first: confidence, dashboard headline, findings and caveats."""

from __future__ import annotations

import numpy as np

from icp_research.analyses.blueprint.conditions import contains, level_condition
from icp_research.analyses.blueprint.result import Blueprint
from icp_research.analyses.blueprint.rules import main_evidence
from icp_research.analyses.blueprint.statement import clause, column_label, rule_words
from icp_research.analyses.blueprint.text import join_and, join_or, lift_text, pct
from icp_research.analyses.blueprint.upstream import CONTRACT_OUTCOMES
from icp_research.data.study import Study


def confidence_of(blueprint: Blueprint) -> dict:
    if not blueprint.drawn:
        channels = [r for r in blueprint.include if r.role == "signal"]
        reason = "No ICP could be drawn: no characteristic held up in the confirmation quarters."
        if channels:
            reason = (
                "No ICP could be drawn: no characteristic of the company held up in the "
                f"confirmation quarters (how accounts came to us did: {join_and([r.text for r in channels])})."
            )
        return {"level": "none", "reason": reason}
    filters = [r for r in blueprint.include if r.role == "filter"]
    held = [r for r in filters if r.replicated]
    v = blueprint.validation
    parts = [
        f"{len(held)} of {len(filters)} defining rule{'' if len(filters) == 1 else 's'} held up "
        "in the confirmation quarters"
    ]
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
    main = next(
        (r for r in blueprint.icp_vs_rest if r["outcome"] == blueprint.outcome["name"]), None
    )
    if (
        not np.isfinite(auc_low)
        and main is not None
        and main["n_icp"]
        and np.isfinite(main["ratio"])
    ):
        # No fit score to validate: the ICP against the rest is the only check on the
        # quarters nothing was chosen on, and the confidence rests on it too.
        parts.append(
            f"on the validation quarters the ICP's {blueprint.outcome['label']} was "
            f"{main['ratio']:.2f}x the rest's{_ci_words(main.get('ci_low'), main.get('ci_high'))}"
        )
    if held == filters and auc_low >= 0.6 and ratio_low >= 2:
        level = "high"
    elif held and np.isfinite(auc_low) and auc_low > 0.5 and ratio_low > 1:
        level = "moderate"
    else:
        level = "low"
    return {"level": level, "reason": join_and(parts) + "."}


def contract_confidence(confidence: dict, blueprint: Blueprint, study: Study) -> dict:
    """An ICP whose characteristics held up for best-customer status (top share by ARR) and
    for nothing else may describe bigger contracts rather than better-fitting companies: say
    so, and cap the confidence at low. When the ICP is measured on winning deals or retention,
    say too that none of its characteristics held up for that outcome."""
    if not blueprint.drawn or not blueprint.characteristics:
        return confidence
    if study.analysis.get("best_customer_metric", "arr") not in ("arr", "clv", "expansion"):
        return confidence
    if any(set(c["outcomes"]) - set(CONTRACT_OUTCOMES) for c in blueprint.characteristics):
        return confidence
    contract = study.attributes.contract
    terms = f" ({join_and(sorted(contract))} go with it)" if contract else ""
    own = blueprint.outcome.get("name")
    measured = (
        ", the outcome this ICP is measured on" if own in ("won", "retained") else " or retention"
    )
    goal = _GOALS[own] if own in ("won", "retained") else "winning deals"
    reason = (
        f"{confidence['reason'].rstrip('.')}; but every characteristic rests on best-customer "
        f"status alone, i.e. on contract size{terms}, and none held up for {goal}{measured}: "
        "the ICP may describe bigger contracts rather than better-fitting companies."
    )
    level = confidence["level"] if confidence["level"] in ("low", "none") else "low"
    return {"level": level, "reason": reason}


def group_notes(blueprint: Blueprint, study: Study, sample) -> tuple[str, list[str]]:
    """Defining rules whose discovery rows come mostly from a few groups of linked accounts
    (the subsidiaries of one parent): a few customers' worth of evidence. The tests count each
    group once (:meth:`~icp_research.data.study.Study.cluster_ids`), so such a rule rarely
    holds up; when one does, this says what it rests on. Returns the linking column and a note
    per such rule (measured before the samples' rows are released)."""
    if not blueprint.drawn or sample is None or sample.kind != "rate" or sample.training.empty:
        return "", []
    column, head = study.account_groups
    if not head:
        return "", []
    rows = sample.training
    group = rows["account_id"].astype("string").map(head)
    notes = []
    for rule in blueprint.include:
        if rule.role != "filter" or any(c.attribute not in rows for c in rule.conditions):
            continue
        inside = np.ones(len(rows), dtype=bool)
        for condition in rule.conditions:
            inside &= condition.matches(rows).to_numpy(dtype=bool)
        linked = inside & group.notna().to_numpy()
        if not inside.any() or linked.sum() < 0.5 * inside.sum():
            continue
        groups = group[linked].nunique()
        accounts = rows["account_id"][linked].nunique()
        rest = inside & ~linked
        y = rows["y"].to_numpy(dtype=float)
        unit = sample.unit[:-1] if rest.sum() == 1 and sample.unit.endswith("s") else sample.unit
        outside = f"outside them it has {int(rest.sum()):,} {unit}" + (
            f", {y[rest].mean():.0%} with the outcome" if rest.any() else ""
        )
        notes.append(
            f"{rule.text}: {int(linked.sum()):,} of its {int(inside.sum()):,} {sample.unit} in "
            f"the discovery period come from {accounts:,} accounts of {groups:,} "
            f"group{'' if groups == 1 else 's'} linked by {column} (subsidiaries of one "
            f"parent), {groups:,} customer{'' if groups == 1 else 's'}' worth of evidence; "
            f"{outside}"
        )
    return column, notes


def group_confidence(confidence: dict, column: str, notes: list[str], caveats: list) -> dict:
    """Say that the ICP rests on a few customer groups, and cap the confidence at low."""
    if not notes:
        return confidence
    caveats.append(
        "The ICP rests on a few customer groups, not on a segment: "
        + "; ".join(notes)
        + ". Counted by group, that is not enough evidence that such companies fit in general."
    )
    reason = (
        f"{confidence['reason'].rstrip('.')}; but {len(notes)} defining rule"
        f"{' rests' if len(notes) == 1 else 's rest'} mostly on a few groups of linked accounts "
        f"({column}): see the caveats."
    )
    level = confidence["level"] if confidence["level"] in ("low", "none") else "low"
    return {"level": level, "reason": reason}


def headline_of(blueprint: Blueprint) -> dict:
    out = {} if blueprint.drawn else {"ICP": "not drawn yet"}
    v = blueprint.validation
    if v is not None and np.isfinite(v.auc) and blueprint.scorecard is None:
        out["Fit score"] = f"withheld: ranked the validation quarters backwards (AUC {v.auc:.2f})"
    elif v is not None and np.isfinite(v.auc):
        out["Holdout AUC"] = f"{v.auc:.2f} ({v.auc_low:.2f}–{v.auc_high:.2f})"
        ratios = v.tables.get("ratios")
        if ratios is not None and len(ratios) and np.isfinite(ratios.iloc[0]["ratio"]):
            top = ratios.iloc[0]
            out[f"{top['group_a']} vs {top['group_b']} {blueprint.outcome['label']}"] = (
                f"{top['ratio']:.1f}x{_ratio_interval(top.get('ci_low'), top.get('ci_high'))}"
            )
    main = next(
        (r for r in blueprint.icp_vs_rest if r["outcome"] == blueprint.outcome["name"]), None
    )
    if main is not None and np.isfinite(main["ratio"]):
        interval = _ratio_interval(main.get("ci_low"), main.get("ci_high"))
        worse = blueprint.drawn and np.isfinite(main.get("ci_high", np.nan)) and main["ci_high"] < 1
        out[f"ICP vs rest {blueprint.outcome['label']}"] = f"{main['ratio']:.1f}x{interval}" + (
            ": worse than the rest on the validation quarters" if worse else ""
        )
    if blueprint.drawn and np.isfinite(blueprint.icp_share):
        out["Accounts in the ICP"] = pct(blueprint.icp_share)
    level = (blueprint.confidence or {}).get("level")
    if blueprint.drawn and level:
        # Beside the statement on the dashboard: a low-confidence ICP must not read as a sure one.
        out["How sure of the ICP"] = level
    if not blueprint.drawn:
        out["Uncertain rules"] = str(len(blueprint.uncertain))
    return out


def _ci_words(low, high) -> str:
    """' (95% CI 0.57–1.42)' after a ratio; '' without an interval."""
    if low is None or high is None or not (np.isfinite(low) and np.isfinite(high)):
        return ""
    return f" (95% CI {low:.2f}–{high:.2f})"


def _ratio_interval(low, high) -> str:
    """' (0.9–2.3x)', the 95% interval a headline ratio is read with; '' without one."""
    if low is None or high is None or not (np.isfinite(low) and np.isfinite(high)):
        return ""
    return f" ({low:.1f}–{high:.1f}x)"


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
        main = main_evidence(rule)
        if item is None or main is None or len(rule.conditions) != 1:
            continue
        condition, outcome = rule.conditions[0], main.sample.outcome
        # What the trait was chosen for: the outcomes it predicted in discovery (the rule's
        # main evidence may be the ICP's own outcome, which it did not predict: "500+
        # employees, chosen for retention" beside "rests on best-customer status alone").
        chosen = [o for o in item.get("outcomes") or [] if o in _GOALS]
        chosen = [outcome] if not chosen or outcome in chosen else chosen
        kind = "bin" if item.get("kind") == "numeric" else "level"
        elsewhere: dict[str, list[str]] = {}
        for level in item.get("levels", []):
            other = level.get("outcome")
            if level.get("direction") != "favour" or other in {outcome, *chosen}:
                continue
            if other not in _GOALS:
                continue
            found = level_condition(rule.attribute, level.get("level"), kind)
            if found is None or contains(condition, found):
                continue
            words = clause(found, labels)[1]
            if words not in elsewhere.setdefault(other, []):
                elsewhere[other].append(words)
        if not elsewhere:
            continue
        what = (
            join_or([_GOALS[o] for o in chosen])
            if chosen != [outcome]
            else _GOALS.get(outcome, main.sample.words[0])
        )
        others = join_and([f"{join_or(w)} for {_GOALS[o]}" for o, w in elsewhere.items()])
        sentences.append(
            f"The reports answer different questions about {column_label(rule.attribute, labels)}: "
            f"the ICP takes {rule_words(rule, labels)[1]}, chosen for {what}, while the "
            f"predictor tests it was chosen from favour {others}."
        )
    return sentences


def findings_of(blueprint: Blueprint) -> list[str]:
    findings = []
    if blueprint.drawn:
        findings.append(f"The ICP: {blueprint.statement}")
        findings.append(
            f"How sure: {blueprint.confidence['level']} — {blueprint.confidence['reason']}"
        )
        filters = [
            column_label(c["attribute"], blueprint.labels)
            for c in blueprint.characteristics
            if c["role"] == "filter"
        ]
        signals = [
            column_label(c["attribute"], blueprint.labels)
            for c in blueprint.characteristics
            if c["role"] == "signal"
        ]
        if filters:
            defining = [r for r in blueprint.include if r.role == "filter"]
            held = sum(1 for r in defining if r.replicated)  # as the confidence counts
            k = len(blueprint.characteristics)
            if held == len(defining):
                text = (
                    f"It rests on {k} characteristic{'' if k == 1 else 's'} that predicted "
                    f"{_what_they_predicted(blueprint)} "
                    f"and held up in the confirmation quarters: who the company is "
                    f"({join_and(filters)})"
                )
            else:
                # The predictor analysis confirmed the characteristic; the rule drawn from it,
                # re-measured on the confirmation quarters, did not (yet): said as it is.
                text = (
                    f"It rests on {k} characteristic{'' if k == 1 else 's'} that predicted "
                    f"{_what_they_predicted(blueprint)} in the predictor analysis: who the "
                    f"company is ({join_and(filters)})"
                )
            text += f" and how it came to us ({join_and(signals)})." if signals else "."
            if held < len(defining):
                text += (
                    f" Re-measured as rules on the confirmation quarters, {held} of "
                    f"{len(defining)} held up: a provisional ICP, to confirm next quarter."
                )
            findings.append(text)
        else:
            # No single trait held up; a combination of them did (rules.combination_rules).
            combined = [r for r in blueprint.include if r.role == "filter"]
            traits = list(
                dict.fromkeys(
                    column_label(c.attribute, blueprint.labels)
                    for r in combined
                    for c in r.conditions
                )
            )
            findings.append(
                f"It rests on a combination of {join_and(traits)} that predicted success "
                "together (no one of them did alone) and held up in the confirmation quarters."
            )
        findings.extend(_outcome_differences(blueprint))
        findings.append(
            f"{pct(blueprint.icp_share)} of accounts meet every include rule that defines the "
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
        low = main.get("ci_low", np.nan)
        if blueprint.outcome["name"] == "won" and np.isfinite(low) and low <= 1:
            # "2.09x (0.91-4.78), within the 2-3x expected" read as a good ICP: the interval
            # holds no difference at all.
            expected = ", an interval that includes no difference"
        elif blueprint.outcome["name"] == "won":
            if main["ratio"] < 2:
                expected = ", below the 2–3x commonly expected of a good ICP"
            elif main["ratio"] <= 3:
                expected = ", within the 2–3x commonly expected of a good ICP"
            else:
                expected = ", above the 2–3x commonly expected of a good ICP"
        findings.append(
            f"In the latest {blueprint.outcome['validation_quarters']} quarters the ICP's "
            f"{blueprint.outcome['label']} was {pct(main['rate_icp'])} against "
            f"{pct(main['rate_rest'])} for the rest ({main['n_icp']:,} and {main['n_rest']:,} "
            f"{main['unit']}): {lift_text(main | {'lift': main['ratio']})}{expected}."
        )
    if blueprint.validation is not None:
        findings.extend(blueprint.validation.findings[:2])
    backtest = backtest_sentence(blueprint.backtest_summary, blueprint.backtest)
    if backtest:
        findings.append(backtest)
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


def _what_they_predicted(blueprint: Blueprint) -> str:
    """'success' when some characteristic held up for the ICP's own outcome; otherwise the
    outcomes they did hold up for, and which one they did not ('best-customer status, not
    winning deals, the outcome the ICP is measured on')."""
    own = blueprint.outcome.get("name")
    held = [o for c in blueprint.characteristics for o in c.get("outcomes", [])]
    if own in held or not held or own not in _GOALS:
        return "success"
    goals = join_and([_GOALS.get(o, o) for o in dict.fromkeys(held)])
    return f"{goals} (not {_GOALS[own]}, the outcome the ICP is measured on)"


def backtest_sentence(summary, tiers) -> str:
    """The backtest in one sentence that follows its numbers: per quarter the top tier's rate
    against the bottom tier's ("2026Q1 2.4x"; "2026Q2 39% vs none" when the bottom tier had no
    event), and "more often" / "less often" only as the quarters bear it out. Empty when no
    quarter could compare the two tiers."""
    if summary is None or not len(summary):
        return ""
    pieces, higher, lower = [], 0, 0
    for row in summary.itertuples():
        ratio = row.top_vs_bottom
        if ratio is None or np.isnan(ratio):
            continue
        if np.isinf(ratio):
            top = _top_rate(tiers, row.quarter)
            pieces.append(f"{row.quarter} {pct(top) if top is not None else 'some'} vs none")
            higher += 1
            continue
        pieces.append(f"{row.quarter} {ratio:.1f}x")
        higher += ratio > 1
        lower += ratio < 1
    if not pieces:
        return ""
    event = summary["event"].iloc[0]
    measured = len(pieces)
    if higher == measured:
        how = "more often than the bottom tier in the quarter that followed"
    elif lower == measured:
        how = "less often than the bottom tier in the quarter that followed"
    elif higher + lower == 0:
        how = "as often as the bottom tier in the quarter that followed"
    else:
        how = (
            f"more often than the bottom tier in {higher} of the {measured} quarters that followed"
        )
        how += f" and less often in {lower}" if lower else ""
    return (
        f"Backtest: scored at the start of each of the last {len(summary)} quarters with "
        f"a score fitted on what was known then, the top tier {event} {how} "
        f"({', '.join(pieces)})."
    )


def _top_rate(tiers, quarter):
    """The top tier's rate in ``quarter`` of the backtest's per-tier table (None without)."""
    if tiers is None or not len(tiers) or "quarter" not in tiers:
        return None
    rows = tiers[tiers["quarter"] == quarter]
    return None if rows.empty else float(rows["rate"].iloc[0])


def caveats_of(blueprint: Blueprint, caveats: list[str]) -> list[str]:
    out = list(caveats)
    given = blueprint.params.get("upstream", {}).get("anti_patterns") == "given"
    if given and (
        blueprint.exclude
        or any(r.sources != ["predictor significance"] for r in blueprint.uncertain)
    ):
        # Found by the kit, they come from the discovery quarters alone; handed in, they may
        # come from data that includes the quarters that re-test them.
        out.append(
            "Exclude rules were proposed by the anti-patterns given to the blueprint, which may "
            "have been found on data that includes the confirmation quarters; there, their "
            "re-test is a consistency check, not a fully independent confirmation."
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
