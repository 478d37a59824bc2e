"""Hand-made ``icp.json`` documents, for tests that must know exactly what an ICP says."""

from __future__ import annotations

import copy


def condition(attribute: str, operator: str, value=None) -> dict:
    return {"attribute": attribute, "operator": operator, "value": value}


def rule(kind: str, text: str, *conditions: dict, evidence: str = "", **extra) -> dict:
    """A rule as the blueprint writes it (id, kind, text, conditions, evidence)."""
    out = {
        "id": f"{kind}:{text}",
        "kind": kind,
        "text": text,
        "conditions": list(conditions),
        "evidence": [{"outcome": "won", "statement": evidence}] if evidence else [],
    }
    if kind == "include":
        out["role"] = "filter"
    out.update(extra)
    return out


def categorical(name: str, points: dict, neutral: int, rates: dict | None = None) -> dict:
    levels = []
    for label, value in points.items():
        level = {"label": label, "points": value, "n": 100}
        level["rate"] = (rates or {}).get(label, 0.25)
        levels.append(level)
    return {"name": name, "type": "categorical", "neutral_points": neutral, "levels": levels}


def numeric(name: str, edges: list, points: list, neutral: int) -> dict:
    bins = []
    labels = [f"< {edges[0]:g}"]
    labels += [f"{lo:g} to < {hi:g}" for lo, hi in zip(edges[:-1], edges[1:], strict=True)]
    labels += [f">= {edges[-1]:g}"]
    bounds = [None, *edges, None]
    for i, label in enumerate(labels):
        bins.append(
            {
                "label": label,
                "lower": bounds[i],
                "upper": bounds[i + 1],
                "points": points[i],
                "n": 100,
                "rate": 0.25,
            }
        )
    return {
        "name": name,
        "type": "numeric",
        "neutral_points": neutral,
        "edges": list(edges),
        "bins": bins,
        "nonnegative": True,
    }


def icp_document(
    *,
    as_of: str = "2026-09-30",
    statement: str = "This product fits mid-size SaaS and FinTech companies.",
    include=(),
    exclude=(),
    uncertain=(),
    notes=(),
    characteristics=(),
    scorecard=(),
    tiers=(("Tier 1", 70), ("Tier 2", 40), ("Tier 3", 0)),
    auc: float | None = 0.67,
    ratios=(),
) -> dict:
    """A complete icp.json document (the fields the health report and the scorer read)."""
    attributes = {}
    for item in scorecard:
        attributes[item["name"]] = {"type": item["type"]}
    for kind in (include, exclude, uncertain):
        for r in kind:
            for c in r["conditions"]:
                numeric_operator = c["operator"] in ("less_than", "at_least", "between")
                attributes.setdefault(
                    c["attribute"], {"type": "numeric" if numeric_operator else "categorical"}
                )
    card = None
    if scorecard:
        card = {
            "format": 1,
            "outcome": "won",
            "scale": {"min": 0, "max": 100, "log_odds_at_0": -2.0, "log_odds_per_point": 0.03},
            "attributes": copy.deepcopy(list(scorecard)),
            "dropped": [],
            "training": {},
            "params": {},
            "caveats": [],
        }
    return {
        "format": 1,
        "kit_version": "0.1.0",
        "project": "test",
        "as_of": as_of,
        "name": "Mid-size SaaS",
        "statement": statement,
        "drawn": bool(include),
        "confidence": {"level": "high", "reason": "planted"},
        "outcome": {"name": "won", "label": "win rate"},
        "characteristics": copy.deepcopy(list(characteristics)),
        "rules": {
            "include": copy.deepcopy(list(include)),
            "exclude": copy.deepcopy(list(exclude)),
            "uncertain": copy.deepcopy(list(uncertain)),
            "notes": list(notes),
        },
        "attributes": attributes,
        "scorecard": card,
        "tiers": [{"name": name, "min_score": score} for name, score in tiers],
        "validation": {
            "outcome": "won",
            "holdout_n": 1000,
            "auc": auc,
            "auc_ci": [auc - 0.03, auc + 0.03] if auc is not None else None,
            "ratios": list(ratios),
            "icp_vs_rest": [],
        },
        "headline": {},
        "caveats": [],
    }


def demo_icp(quarter: str) -> dict:
    """An ICP for the demo data, as a run of ``quarter`` ('2026Q2' or '2026Q3') would hold it.

    Between the two: the employee range narrows (include rule changed), the exclude rule
    ``crm = None`` gives way to ``employees < 60``, FinTech gains 6 points and SaaS loses 2,
    Tier 1 starts at 70 instead of 75, the statement changes and the holdout AUC goes from
    0.62 to 0.67.
    """
    q3 = quarter == "2026Q3"
    upper = 1000 if q3 else 2000
    include = [
        rule(
            "include",
            f"100 <= employees < {upper:,}",
            condition("employees", "between", [100, upper]),
            evidence="win rate: 32% vs 19%",
        ),
        rule(
            "include",
            "industry in {FinTech, SaaS}",
            condition("industry", "in", ["FinTech", "SaaS"]),
            evidence="win rate: 35% vs 18%",
        ),
        rule(
            "include",
            "crm in {HubSpot, Salesforce}",
            condition("crm", "in", ["HubSpot", "Salesforce"]),
            evidence="win rate: 30% vs 20%",
        ),
    ]
    exclude = (
        [rule("exclude", "employees < 60", condition("employees", "less_than", 60), evidence="x")]
        if q3
        else [rule("exclude", "crm = None", condition("crm", "equals", "None"), evidence="y")]
    )
    industry = {"SaaS": 28 if q3 else 30, "FinTech": 36 if q3 else 30, "Retail": 9}
    industry.update({"Education": 0, "Healthcare": 10, "Manufacturing": 12, "Media": 14})
    industry["Logistics"] = 11
    scorecard = [
        categorical("industry", industry, 15),
        numeric("employees", [50, 100, 1000], [0, 10, 30, 20], 15),
        categorical("crm", {"HubSpot": 18, "Salesforce": 16, "Pipedrive": 4, "None": 0}, 9),
    ]
    statement = (
        "This product fits mid-size FinTech and SaaS companies on HubSpot or Salesforce."
        if q3
        else "This product fits SaaS and FinTech companies of 100 to 2,000 employees."
    )
    return icp_document(
        as_of="2026-09-30" if q3 else "2026-06-30",
        statement=statement,
        include=include,
        exclude=exclude,
        scorecard=scorecard,
        tiers=(("Tier 1", 70 if q3 else 75), ("Tier 2", 40), ("Tier 3", 0)),
        auc=0.67 if q3 else 0.62,
    )
