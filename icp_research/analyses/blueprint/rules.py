"""Rules: the include, exclude and uncertain rules of the ICP, drawn from the upstream
evidence and re-tested on the training period and the holdout."""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass, field

import numpy as np

from icp_research.analyses.antipatterns import Condition
from icp_research.analyses.blueprint.conditions import (
    best_range,
    condition_key,
    contains,
    level_condition,
    overlaps,
    range_condition,
)
from icp_research.analyses.blueprint.evidence import (
    Evidence,
    finish_family,
    holds_both,
    measure,
    meets_all,
    rates_text,
    too_few_to_tell,
)
from icp_research.analyses.blueprint.samples import OUTCOMES, Sample
from icp_research.analyses.blueprint.text import OUTCOME_WORDS, SOURCE_NAMES, join_and, plain
from icp_research.analyses.blueprint.upstream import Upstream
from icp_research.data.study import Study
from icp_research.formatting import fmt_count, fmt_p_is
from icp_research.methods.binning import MISSING, OTHER, cut_points

#: Attributes that say how an account came to us rather than who it is: signals, not filters.
CHANNEL_ATTRIBUTES = ("referral_source", "lead_source", "source", "channel")


@dataclass
class Rule:
    """An include, exclude or uncertain rule: conditions that must all hold, and the evidence.

    ``evidence`` holds one :class:`Evidence` per outcome it was measured on; ``sources`` the
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
    #: Its q-value in the family of tests it was found in (the upstream analysis's, or the
    #: combination search's): what a finding that was not confirmed afterwards rests on.
    found_q: float = np.nan

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
        """True when a significant piece of its evidence held up in the confirmation quarters."""
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
        out["share_of_accounts"] = plain(self.share_of_accounts)
        out["evidence"] = [e.to_dict() for e in self.evidence]
        return out


def main_evidence(rule: Rule) -> Evidence | None:
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


def short_evidence(rule: Rule) -> str:
    main = main_evidence(rule)
    if main is None or not np.isfinite(main.training["lift"]):
        return ""
    return f"{main.sample.words[0]} {rates_text(main.sample, main.training)}"


def defining_characteristics(upstream: Upstream, attributes: Sequence[str]) -> list[dict]:
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
                "trade_offs": list(item.get("trade_offs", [])),
                "outcomes": list(item.get("outcomes", [])),
                "levels": list(item.get("levels", [])),
                # The significance analysis ran on the data before the validation quarters:
                # its "latest quarters" are the blueprint's confirmation quarters, and the
                # blueprint's own "latest quarters" are the validation ones.
                "evidence": str(item.get("evidence", "")).replace(
                    " in the latest quarters ", " in the confirmation quarters "
                ),
            }
        )
    return out


def trade_off_notes(characteristics: list[dict]) -> list[str]:
    """One sentence per level that helps one outcome and hurts another: neither a fit nor a
    misfit, so it is in no include or exclude rule."""
    return [
        f"{item['attribute']} = {t['level']} is a trade-off ({t['text']}): neither a fit nor a "
        "misfit, so it is in no include or exclude rule; weigh it deal by deal."
        for item in characteristics
        for t in item.get("trade_offs", [])
    ]


def _sample_for(characteristic: dict, samples: dict, outcome: str) -> Sample | None:
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
        found = best_range(
            sample.training[name],
            sample.training["y"],
            edges,
            clusters=sample.training[sample.cluster] if sample.clustered else None,
        )
        if found is not None:
            lower, upper, _ = found
            return (
                range_condition(name, lower, upper),
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
        if np.isinf(min(lows)) and np.isinf(max(highs)):
            # One bin of every value ("all", when the values were too few to cut): only
            # whether the cell is filled set it apart. "< inf" would be no range, written to
            # icp.json as null, which the health report and score cannot read.
            return None, "the favoured bin holds every value: only being filled in sets it apart"
        return range_condition(name, min(lows), max(highs)), "the favoured bins"
    return None, "no range to favour"


def include_rules(characteristics, study, samples, outcome, alpha) -> tuple[list[Rule], list[str]]:
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
            sources=[SOURCE_NAMES["significance"]],
        )
        names = [outcome, *item["outcomes"], "churn"]
        for name in dict.fromkeys(names):
            sample = samples.get(name)
            if sample is None:
                continue
            rule.evidence.append(
                measure(
                    sample,
                    [condition],
                    source="blueprint",
                    compared_with=f"all other {sample.unit}",
                    alpha=alpha,
                )
            )
        rules.append(rule)
    finish_family([e for r in rules for e in r.evidence], alpha)
    return rules, notes


#: Combinations of conditions tried when no single characteristic defines an ICP.
MAX_COMBINATIONS = 3


def combination_rules(study, samples, outcome, attributes, alpha) -> tuple[list[Rule], list[str]]:
    """When no single characteristic draws an ICP, a combination may: "UK financial services
    firms of 200-1,000 employees" where each trait alone is weak. The subgroup search of
    pattern discovery (:func:`icp_research.methods.subgroups.find_subgroups`) runs on the
    outcome's training rows; its significant subgroups of two or more conditions (q over every
    subgroup searched) become candidate include rules, measured like the others and re-tested
    one-sided on the confirmation quarters (Holm over the candidates). Returns the candidates,
    best first, with their evidence, and notes."""
    from icp_research.analyses.patterns import MIN_SUBGROUP_ROWS, subgroup_conditions
    from icp_research.methods.subgroups import find_subgroups

    sample = samples.get(outcome)
    if sample is None or sample.kind != "rate" or sample.training.empty:
        return [], []
    data = sample.training
    present = [a for a in attributes if a in data.columns]
    if len(present) < 2:
        return [], []
    analysis = study.analysis
    support = analysis.get("min_support", 0.02)
    known = int(data["y"].notna().sum())
    rows = support if isinstance(support, int) else math.ceil(float(support) * known - 1e-9)
    result = find_subgroups(
        data.assign(_outcome=data["y"].astype(bool)),
        "_outcome",
        attributes=present,
        max_depth=int(analysis.get("max_depth", 3)),
        min_support=max(int(rows), MIN_SUBGROUP_ROWS),
        top_k=20,
        n_bins=10,
        alpha=alpha,
        correction=str(analysis.get("correction", "fdr_bh")),
        unit=sample.unit,
        clusters=sample.cluster if sample.clustered and sample.cluster in data else None,
    )
    table = result.summary
    if table.empty:
        return [], []
    deep = table[(table["depth"] >= 2) & table["significant"].astype(bool)]
    deep = deep.sort_values(["q_value", "rank"]).head(MAX_COMBINATIONS)
    rules, q_values = [], []
    for row in deep.itertuples():
        conditions = subgroup_conditions(row.conditions)
        rule = Rule(
            "include",
            conditions,
            conditions[0].attribute,
            role="filter",
            sources=[SOURCE_NAMES["patterns"]],
            found_q=float(row.q_value),
        )
        rule.evidence.append(
            measure(
                sample,
                conditions,
                source="blueprint",
                compared_with=f"all other {sample.unit}",
                alpha=alpha,
            )
        )
        rules.append(rule)
        q_values.append(float(row.q_value))
    # The q-values of the search they were picked from, not recomputed among the few picked.
    finish_family([r.evidence[0] for r in rules], alpha, q_values=q_values)
    notes = []
    if rules:
        notes.append(
            f"No single characteristic draws an ICP, so combinations were searched on the "
            f"training period ({result.family_size:,} subgroups of up to "
            f"{int(analysis.get('max_depth', 3))} conditions); "
            + "; ".join(f"{r.text} ({_combination_verdict(r)})" for r in rules)
            + "."
        )
    return rules, notes


def refinement_candidates(
    study, samples, outcome, attributes, include: list[Rule], alpha
) -> list[tuple[Condition, float]]:
    """Conditions on other attributes that do worse *inside* the ICP: the ICP of a planted
    "Healthcare companies of 200-2,000 employees" is drawn on industry alone when size does
    not matter across all accounts; among Healthcare companies, those of fewer than 200
    employees win a third as often. The subgroup search of pattern discovery runs on the
    training rows that meet the include rules, for a loss (one condition at a time, q over
    every subgroup searched); each significant condition becomes a candidate exclude rule,
    measured and re-tested on the confirmation quarters like the others. Returns
    ``[(condition, q)]``."""
    from icp_research.analyses.patterns import MIN_SUBGROUP_ROWS, subgroup_conditions
    from icp_research.methods.subgroups import find_subgroups

    filters = [r for r in include if r.role == "filter"]
    sample = samples.get(outcome)
    if not filters or sample is None or sample.kind != "rate" or sample.training.empty:
        return []
    scope = [c for r in filters for c in r.conditions]
    data = sample.training[meets_all(sample.training, scope)]
    data = data[data["y"].notna()]
    used = {r.attribute for r in filters} | {c.attribute for c in scope}
    present = [a for a in attributes if a in data.columns and a not in used]
    if not present or len(data) < 2 * MIN_SUBGROUP_ROWS or data["y"].nunique() < 2:
        return []
    result = find_subgroups(
        data.assign(_lost=~data["y"].astype(bool)),
        "_lost",
        attributes=present,
        max_depth=1,
        min_support=MIN_SUBGROUP_ROWS,
        top_k=10,
        n_bins=5,
        alpha=alpha,
        correction=str(study.analysis.get("correction", "fdr_bh")),
        unit=sample.unit,
        clusters=sample.cluster if sample.clustered and sample.cluster in data else None,
    )
    table = result.summary
    if table.empty:
        return []
    found = table[table["significant"].astype(bool) & (table["depth"] == 1)]
    out = []
    for row in found.sort_values(["q_value", "rank"]).itertuples():
        conditions = subgroup_conditions(row.conditions)
        if len(conditions) == 1:
            out.append((conditions[0], float(row.q_value)))
    return out[:MAX_COMBINATIONS]


def _confirmation_too_few(row: dict) -> bool:
    """A significance finding whose confirmation interval holds both no effect and the effect
    found in discovery: not refuted, too few rows to tell."""
    return holds_both(row.get("effect"), row.get("ci_low_confirm"), row.get("ci_high_confirm"))


def _combination_verdict(rule: Rule) -> str:
    evidence = rule.evidence[0]
    if evidence.replicated:
        return "held up in the confirmation quarters"
    if evidence.replicated is False:
        if too_few_to_tell(evidence):
            return "not confirmed, too few in the confirmation quarters to tell"
        return "did not hold up in the confirmation quarters"
    return "nothing in the confirmation quarters to check it on"


def _replicated_findings(upstream: Upstream) -> set:
    """{(outcome, condition key)} of the significance findings that replicated."""
    rows = upstream.predictors
    if rows is None or rows.empty or "replicated" not in rows.columns:
        return set()
    found = set()
    for row in rows[rows["replicated"]].to_dict("records"):
        condition = level_condition(row["predictor"], row["level"], row.get("kind", "level"))
        if condition is not None:
            found.add((row["outcome"], condition_key(condition)))
    return found


def _number_or_none(value) -> float | None:
    """A finite float, or None (for a blank, text or NaN cell)."""
    try:
        number = float(value)
    except (TypeError, ValueError):
        return None
    return number if np.isfinite(number) else None


def _exclude_candidates(upstream: Upstream, characteristics) -> dict:
    """Candidate exclude conditions, merged: {key: (Condition, [(outcome, source)], [q])},
    with the q-values they had in the families of tests they were found in."""
    candidates: dict = {}

    def add(condition: Condition, outcome: str, source: str, q=None):
        key = condition_key(condition)
        entry = candidates.setdefault(key, (condition, [], []))
        if (outcome, source) not in entry[1]:
            entry[1].append((outcome, source))
        q = _number_or_none(q)
        if q is not None:
            entry[2].append(q)

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
            source = SOURCE_NAMES.get(row.get("source"), str(row.get("source")))
            add(condition, outcome_of[row["outcome"]], source, row.get("q_value"))
    for item in characteristics:
        # A level that helps one outcome and hurts another is a trade-off, not "not a fit".
        mixed = {t["level"] for t in item.get("trade_offs", [])}
        for level in item["levels"]:
            if level.get("direction") != "avoid" or level["level"] in mixed:
                continue
            if item["kind"] == "numeric":
                low, high = level.get("low"), level.get("high")
                if level["level"] == MISSING:
                    condition = Condition(item["attribute"], "is_missing")
                elif low is None and high is None:
                    continue
                else:
                    condition = range_condition(
                        item["attribute"],
                        -np.inf if low is None else low,
                        np.inf if high is None else high,
                    )
            else:
                condition = level_condition(item["attribute"], level["level"], "level")
            if condition is not None:
                add(
                    condition,
                    level.get("outcome", "won"),
                    SOURCE_NAMES["significance"],
                    level.get("q_value"),
                )
    return candidates


def exclude_rules(
    upstream, characteristics, include: list[Rule], samples, facts, alpha, refinements=()
) -> tuple[list[Rule], list[Rule], list[str]]:
    """Exclude rules that add to the include rules and held up; the rest become uncertain or
    notes. ``refinements``: ``(outcome, [(condition, q)])`` of
    :func:`refinement_candidates`, candidates too. Returns ``(exclude, uncertain, notes)``."""
    notes: list[str] = []
    include_on = {r.attribute: r for r in include}
    replicated = _replicated_findings(upstream)
    rules: list[Rule] = []
    candidates = _exclude_candidates(upstream, characteristics)
    for outcome, found_inside in refinements or ():
        for condition, q in found_inside:
            entry = candidates.setdefault(condition_key(condition), (condition, [], []))
            if not any(o == outcome for o, _ in entry[1]):
                entry[1].append((outcome, SOURCE_NAMES["patterns"]))
            entry[2].append(q)
    for key, (condition, pairs, found) in candidates.items():
        proposed = join_and(sorted({s for _, s in pairs}))
        if condition.attribute in CHANNEL_ATTRIBUTES:
            notes.append(
                f"{condition.text()} (proposed by the {proposed}): how an account came to us "
                "is a signal, not a filter, so it makes no exclude rule (the fit score weighs "
                "it only if it predicts the score's outcome)."
            )
            continue
        inc = include_on.get(condition.attribute)
        if inc is not None and any(overlaps(condition, c) for c in inc.conditions):
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
            found_q=min(found) if found else np.nan,
        )
        # Inside the ICP too: "fewer than 200 employees" may not hurt across all accounts yet
        # tell the ICP's good accounts from its poor ones (Healthcare companies of 200-2,000
        # employees win, smaller ones do not): the rule that makes the ICP a combination.
        scoping = [r for r in include if r.role == "filter" and r.attribute != condition.attribute]
        scope = [c for r in scoping for c in r.conditions]
        for outcome, source in pairs:
            sample = samples.get(outcome)
            if sample is None or any(e.sample is sample for e in rule.evidence):
                continue
            evidence = measure(
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
            if scope:
                inside_icp = measure(
                    sample,
                    [condition],
                    within=scope,
                    source=source,
                    compared_with=(
                        # The include rules it is measured within: not one on its own
                        # attribute ("employees >= 500" beside customers under 51).
                        f"other {sample.unit} of accounts in the include "
                        f"{'rule' if len(scoping) == 1 else 'rules'} "
                        f"({join_and([r.text for r in scoping])})"
                    ),
                    alpha=alpha,
                )
                if inside_icp.training.get("n", 0):
                    rule.evidence.append(inside_icp)
        if rule.evidence:
            rules.append(rule)
    finish_family([e for r in rules for e in r.evidence], alpha)

    kept: list[Rule] = []
    uncertain: list[Rule] = []
    reversed_: list[str] = []
    for rule in sorted(rules, key=lambda r: r.strength):
        worse = [e for e in rule.evidence if e.worse]
        inc = include_on.get(rule.attribute)
        if any(e.held_up for e in worse):
            kept.append(rule)
        elif worse and all(_reversed(e) for e in worse):
            # Worse in discovery, the other way round in the quarters after, on enough rows
            # to tell: what chance does (a third of null exports listed one as a hypothesis).
            e = worse[0]
            reversed_.append(
                f"{rule.text} ({rates_text(e.sample, e.training)} in the discovery quarters, "
                f"{rates_text(e.sample, e.holdout)} in the confirmation quarters, "
                f"{int(e.holdout['n']):,} {e.sample.unit})"
            )
        elif worse:
            rule.kind = "uncertain"
            rule.direction = "avoid"
            checked = [e for e in worse if e.replicated is False]
            rule.reason = (
                "worse earlier; too little data in the confirmation quarters to check it"
                if not checked
                else "worse earlier; not confirmed, too few in the confirmation quarters to tell"
                if all(too_few_to_tell(e) for e in checked)
                else "worse earlier; did not hold up in the confirmation quarters"
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
    if reversed_:
        notes.append(
            f"{join_and(reversed_)}: worse in the discovery quarters and the other way round in "
            "the confirmation quarters, so neither an exclude rule nor a hypothesis: what "
            "chance looks like."
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
        hits = meets_all(facts, rule.conditions)
        share_new = (hits & ~covered).sum() / max(hits.sum(), 1)
        if final and share_new < 0.2:
            notes.append(
                f"{rule.text}: {1 - share_new:.0%} of its accounts are already excluded by "
                f"{join_and([r.text for r in final])}; left out as redundant."
            )
            continue
        covered |= hits
        final.append(rule)
    return drop_contained(final, facts, notes), uncertain, notes


def drop_contained(rules: list[Rule], facts, notes: list[str]) -> list[Rule]:
    """Exclude rules without the ones whose every account another rule excludes too: a rule
    taken early can lie wholly inside one taken after it ("60 <= employees < 150" inside
    "employees < 200"), and the larger one says it all. Each one dropped gets a note."""
    final = list(rules)
    for rule in list(final):
        others = [r for r in final if r is not rule]
        if not others:
            break
        hits = meets_all(facts, rule.conditions)
        elsewhere = np.zeros(len(facts), dtype=bool)
        for other in others:
            elsewhere |= meets_all(facts, other.conditions)
        if hits.any() and not (hits & ~elsewhere).any():
            final.remove(rule)
            notes.append(
                f"{rule.text}: every account of it is excluded by "
                f"{join_and([r.text for r in others])} too; left out as redundant."
            )
    return final


def _covered_by_rules(condition: Condition, favour: bool, include, exclude) -> str | None:
    """Why a significance finding needs no uncertain rule (None when it does)."""
    for rule in include:
        for c in rule.conditions:
            if c.attribute != condition.attribute:
                continue
            if favour and contains(c, condition):
                return f"inside the include rule {rule.text}"
            if not favour and not overlaps(c, condition):
                return f"outside the include rule {rule.text}"
    for rule in exclude:
        for c in rule.conditions:
            if not favour and (contains(c, condition) or c == condition):
                return f"inside the exclude rule {rule.text}"
    return None


def _suggestive_at_chance(rows, alpha: float, notes: list[str]) -> set[str]:
    """Outcomes whose attributes give no more small p-values than chance does: their
    suggestive findings are what a search over that many attributes finds in noise, not
    hypotheses. Adds a note per such outcome that has any.

    The unit is the attribute, not the test: an attribute's levels, bins and trend test share
    its rows, so one chance fluctuation gives several small p-values at once (7 of 32 tests on
    win rate below 0.05 in a null export with five attributes, "beyond chance" when counted
    as independent tests). Each attribute without a significant finding counts once, by its
    smallest p-value times its number of tests (Bonferroni within the attribute, valid however
    they are correlated), and a one-sided binomial test at ``alpha`` compares how many of them
    are below ``alpha`` with ``alpha`` x attributes. Attributes with a significant finding are
    left out: a real effect says nothing about whether the others' small p-values are chance
    (one predictor's strong levels opened the door to two noise ones)."""
    from scipy.stats import binomtest

    found = set()
    tested = rows[rows["outcome"].isin(OUTCOMES) & rows["p_value"].notna()]
    if "hypothesis_id" in tested.columns:
        tested = tested.drop_duplicates(["outcome", "hypothesis_id"])
    for outcome, family in tested.groupby("outcome", sort=False):
        significant = family["significant"].astype(bool)
        small = family[(family["p_value"] < alpha) & ~significant]
        if small.empty:
            continue
        rest = family[~family["predictor"].isin(set(family.loc[significant, "predictor"]))]
        per = rest.groupby("predictor", sort=False)["p_value"].agg(["min", "size"])
        adjusted = np.minimum(per["min"].to_numpy(float) * per["size"].to_numpy(float), 1.0)
        m, k = len(per), int((adjusted < alpha).sum())
        chance = binomtest(k, m, alpha, alternative="greater").pvalue if m else 1.0
        if chance < alpha:
            continue
        found.add(outcome)
        words = OUTCOME_WORDS[outcome][0]
        tests = f"{len(small):,} of the {len(family):,} tests on {words} had p < {alpha:g}"
        if k == 0:
            notes.append(
                f"{tests}, but no attribute did once its number of tests is counted (its "
                "smallest p-value times its tests): what chance gives, so none of them is "
                "listed as a hypothesis (they are in the predictor report)."
            )
            continue
        notes.append(
            f"{tests}; counted by attribute (each by its smallest p-value times its number of "
            f"tests), {k:,} of the {m:,} attributes without a significant finding: chance "
            f"alone gives {alpha * m:.1f} on average, and {k:,} or more {chance:.0%} of the "
            "time. Not beyond chance, so none of them is listed as a hypothesis (they are in "
            "the predictor report)."
        )
    return found


#: Rows of a rule in the confirmation quarters below which a reversal says nothing.
MIN_REVERSAL_ROWS = 10


#: Rows of an exclude candidate in the confirmation quarters below which its reversal says
#: nothing: a candidate was significant in discovery, so more than a suggestive one needs.
MIN_EXCLUDE_REVERSAL_ROWS = 30


def _reversed(evidence) -> bool:
    """A significant difference of the discovery quarters that the confirmation quarters
    (``MIN_EXCLUDE_REVERSAL_ROWS`` rows of the rule or more) show the other way round or
    not at all (lift on the other side of 1, or exactly 1), and with an interval that rules
    out the discovered effect: 2 churns in 16 customer-years are no evidence either way."""
    h = evidence.holdout or {}
    if evidence.replicated is not False or int(h.get("n", 0) or 0) < MIN_EXCLUDE_REVERSAL_ROWS:
        return False
    lift = h.get("lift", np.nan)
    if not (np.isfinite(lift) and (lift - 1) * evidence.direction <= 0):
        return False
    found = (getattr(evidence, "training", None) or {}).get("lift", np.nan)
    low, high = h.get("ci_low", np.nan), h.get("ci_high", np.nan)
    if not (np.isfinite(found) and np.isfinite(low) and np.isfinite(high)):
        return True  # no interval to weigh it by (as before)
    return bool(high < found if evidence.direction > 0 else low > found)


def _went_the_other_way(holdout: dict, favour: bool) -> bool:
    """The confirmation quarters have the rule's rows (``MIN_REVERSAL_ROWS`` or more, and some
    outside it) and its rate there is no longer on the side of the rest's it was on."""
    n = int(holdout.get("n", 0) or 0)
    rate_in, rate_out = holdout.get("rate_in", np.nan), holdout.get("rate_out", np.nan)
    if n < MIN_REVERSAL_ROWS or not (np.isfinite(rate_in) and np.isfinite(rate_out)):
        return False
    return rate_in <= rate_out if favour else rate_in >= rate_out


def significance_uncertain(
    upstream: Upstream, include, exclude, samples, alpha
) -> tuple[list[Rule], list[str]]:
    """Findings of the significance analysis that are suggestive, or significant but did not
    (or could not) hold up in the confirmation quarters: uncertain rules."""
    rows = upstream.predictors
    notes: list[str] = []
    if rows is None or rows.empty:
        return [], notes
    redundant = {
        item["predictor"]
        for item in upstream.not_recommended
        if "measures much the same" in str(item.get("reason", ""))
    }
    traded = {
        (item["predictor"], t["level"]): t["text"]
        for item in upstream.recommended
        for t in item.get("trade_offs", [])
    }
    candidates: dict = {}
    seen_tests: set = set()
    binary = rows[rows["outcome"].isin(OUTCOMES) & (rows["kind"].isin(["level", "bin"]))]
    at_chance = _suggestive_at_chance(rows, alpha, notes)
    for row in binary.to_dict("records"):
        significant = bool(row.get("significant"))
        replicated = bool(row.get("replicated"))
        p = row.get("p_value")
        suggestive = not significant and p is not None and np.isfinite(p) and p < alpha
        if suggestive and row["outcome"] in at_chance:
            continue  # as many small p-values as chance gives: none is a hypothesis
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
                "significant earlier; no data in the confirmation quarters to check it"
                if "no confirmation" in status or "no rows" in status or "not re-tested" in status
                # Too few confirmation rows to see an effect of that size: no verdict.
                else "significant earlier; not confirmed, too few in the confirmation quarters "
                "to tell"
                if _confirmation_too_few(row)
                else "significant earlier; did not hold up in the confirmation quarters"
            )
        else:
            family = rows[rows["outcome"] == row["outcome"]]
            tests = (
                family["hypothesis_id"].nunique()
                if "hypothesis_id" in family.columns
                else len(family)
            )
            reason = (
                f"suggestive ({fmt_p_is(p)}), not significant once corrected over the "
                f"{tests:,} tests on {OUTCOME_WORDS[row['outcome']][0]} "
                f"({fmt_p_is(row.get('q_value'), 'q')})"
            )
        if (row["predictor"], row["level"]) in traded:
            reason += f"; a trade-off: {traded[(row['predictor'], row['level'])]}"
        key = condition_key(condition)
        if key in candidates:
            continue
        candidates[key] = (
            condition,
            row["outcome"],
            favour,
            reason,
            row.get("q_value"),
            significant,
        )
    rules, family_q, reversed_ = [], [], []
    for condition, outcome, favour, reason, q_value, significant in candidates.values():
        sample = samples.get(outcome)
        if sample is None:
            continue
        rule = Rule(
            "uncertain",
            [condition],
            condition.attribute,
            direction="favour" if favour else "avoid",
            reason=reason,
            sources=[SOURCE_NAMES["significance"]],
            found_q=float(q_value) if q_value is not None else np.nan,
        )
        rule.evidence.append(
            measure(
                sample,
                [condition],
                source=SOURCE_NAMES["significance"],
                compared_with=f"all other {sample.unit}",
                alpha=alpha,
            )
        )
        checked = rule.evidence[0].holdout or {}
        if not significant and _went_the_other_way(checked, favour):
            # Suggestive in discovery (nothing survived the correction) and the other way
            # round in the quarters after: what chance does, not a hypothesis worth a call.
            reversed_.append(
                f"{rule.text} ({rates_text(sample, rule.evidence[0].training)} in the "
                f"discovery quarters, {rates_text(sample, checked)} in the confirmation "
                f"quarters, {int(checked['n']):,} {sample.unit})"
            )
            continue
        rules.append(rule)
        family_q.append(q_value)
    if reversed_:
        notes.append(
            f"{fmt_count(len(reversed_), 'suggestive difference')} of the discovery quarters "
            "(p < alpha before the correction for multiple tests, not after it) "
            f"{'was' if len(reversed_) == 1 else 'were'} gone or reversed in the confirmation "
            "quarters, as differences found by chance are, and "
            f"{'is' if len(reversed_) == 1 else 'are'} not listed as "
            f"{'a hypothesis' if len(reversed_) == 1 else 'hypotheses'}: "
            + "; ".join(reversed_)
            + "."
        )
    # Each finding keeps the q-value of the whole family of tests it was picked from (every
    # level of every attribute tested for that outcome), not one recomputed among the few
    # picked because their p was small.
    finish_family([r.evidence[0] for r in rules], alpha, q_values=family_q)
    return rules, notes


#: How the reason of an uncertain rule begins when it was significant in the family of tests
#: it was found in and not confirmed afterwards (not for the suggestive ones).
UNCONFIRMED_REASONS = ("worse earlier", "significant earlier", "a combination significant earlier")


def searched_families(upstream: Upstream, samples, combinations: bool) -> list[str]:
    """The families of tests whose significant findings can become uncertain rules, in words:
    the predictor significance's per outcome it tested, the churn analysis's and the lost-deal
    analysis's anti-patterns per outcome the data measures, and the combination search."""
    families = []
    rows = upstream.predictors
    if rows is not None and not rows.empty and "outcome" in rows:
        tested = rows[rows["outcome"].isin(OUTCOMES) & rows["p_value"].notna()]
        for outcome in OUTCOMES:
            if (tested["outcome"] == outcome).any():
                families.append(f"{OUTCOME_WORDS[outcome][0]} ({SOURCE_NAMES['significance']})")
    for outcome, source in (
        ("churn", "churn"),
        ("won", "deals"),
        ("no_decision", "deals"),
    ):
        if samples.get(outcome) is not None:
            families.append(f"{OUTCOME_WORDS[outcome][0]} ({SOURCE_NAMES[source]})")
    if combinations:
        families.append("combinations of traits (the blueprint's search)")
    return families


def unconfirmed_at_chance(
    uncertain: list[Rule], families: list[str], alpha: float
) -> tuple[list[Rule], list[str]]:
    """The uncertain rules without those a search over that many families of tests finds by
    chance, and a note naming them.

    Each family is corrected for its own tests (Benjamini-Hochberg), which holds the chance of
    any finding in a family where nothing matters to about ``alpha``; over ``k`` families that
    becomes up to ``k * alpha`` (a third of null exports listed a hypothesis with up to
    seven families). A finding that was confirmed afterwards has independent evidence; one that was
    not rests on its q-value in its family alone, and is listed as a hypothesis only when that
    q is below ``alpha / k`` (Bonferroni over the families: chance then lists one in at most
    ``alpha`` of such exports). Suggestive findings have their own gate
    (:func:`_suggestive_at_chance`)."""
    k = len(families)
    if k <= 1:
        return uncertain, []
    bar = alpha / k
    kept, dropped = [], []
    for rule in uncertain:
        at_chance = (
            rule.reason.startswith(UNCONFIRMED_REASONS)
            and np.isfinite(rule.found_q)
            and rule.found_q >= bar
        )
        (dropped if at_chance else kept).append(rule)
    if not dropped:
        return kept, []
    described = []
    for rule in dropped:
        main = main_evidence(rule)
        seen = (
            f"{main.sample.words[0]} {rates_text(main.sample, main.training)} in the discovery "
            "quarters, "
            if main is not None and np.isfinite(main.training.get("lift", np.nan))
            else ""
        )
        described.append(f"{rule.text} ({seen}{fmt_p_is(rule.found_q, 'q')} in its family)")
    one = len(dropped) == 1
    note = (
        f"{join_and(described)}: significant in the family of tests "
        f"{'it was' if one else 'they were'} found in, and not confirmed in the quarters "
        f"after. {k} families of tests were searched ({join_and(families)}); a finding at "
        f"q of {bar:.3g} (alpha / {k}) or more in one of them is what chance gives in up to "
        f"{min(k * alpha, 1):.0%} of exports where nothing matters, so "
        f"{'it is not listed as a hypothesis' if one else 'they are not listed as hypotheses'}."
    )
    return kept, [note]
