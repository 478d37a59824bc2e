"""Segment ICPs (SMB / Mid-market / Enterprise): drawn only when the include rules work
significantly differently by size segment."""

from __future__ import annotations

import numpy as np
import pandas as pd

from icp_research.analyses.blueprint.evidence import compare, meets_all
from icp_research.analyses.blueprint.rules import Rule
from icp_research.analyses.blueprint.samples import Sample
from icp_research.analyses.blueprint.text import join_and
from icp_research.data.study import Study
from icp_research.formatting import fmt_p_is
from icp_research.methods.stats import adjust_pvalues


def segment_icps(study: Study, include: list[Rule], sample: Sample | None, alpha: float) -> dict:
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
    # The columns the rules and the comparison read, then the rows (at 10M deals the whole
    # sample is gigabytes).
    needed = [
        "account_id",
        sample.cluster,
        "y",
        *{c.attribute: None for rule in rules for c in rule.conditions},
    ]
    rows = pd.concat(
        [
            part[[c for c in dict.fromkeys(needed) if c in part.columns]]
            for part in (sample.training, sample.holdout)
        ],
        ignore_index=True,
    )
    segment_of = facts.set_index("account_id")["size_segment"]
    rows["_segment"] = rows["account_id"].map(segment_of)
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
            inside = meets_all(part, rule.conditions) if len(part) else np.zeros(0, bool)
            measured = compare(sample, part, inside, ~inside, alpha) if len(part) else {}
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
            + (
                f"only {join_and([r['segment'] for r in enough])} has them."
                if enough
                else "none has."
            )
        )
        return result
    # Heterogeneity on the odds-ratio scale (rule x segment interaction in a logistic model,
    # clustered by account): risk ratios spread with the segments' base rates alone.
    from icp_research.methods.heterogeneity import odds_ratio_heterogeneity

    judged = rows[rows["_segment"].isin([r["segment"] for r in enough])]
    p_values = [
        odds_ratio_heterogeneity(
            judged["y"],
            meets_all(judged, rule.conditions),
            judged["_segment"],
            judged[sample.cluster] if sample.clustered else None,
        )["p_value"]
        for rule in rules
    ]
    q_values = adjust_pvalues(p_values)
    differing = [
        (rule, q) for rule, q in zip(rules, q_values, strict=True) if np.isfinite(q) and q < alpha
    ]
    names = join_and([r["segment"] for r in enough])
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
                f" {join_and(thin)} {'has' if len(thin) == 1 else 'have'} too few customers "
                "to judge."
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
    parts = [f"{rule.text} ({fmt_p_is(q, 'q')})" for rule, q in differing]
    result["verdict"] = (
        f"The include rules work differently by company size: {join_and(parts)}; the per-segment "
        "ICPs list the rules that clearly help within each segment."
    )
    return result
