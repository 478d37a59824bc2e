"""Artifacts: ``icp.json``, ``icp_rules.csv``, the one-pager and the slide."""

from __future__ import annotations

from pathlib import Path

import pandas as pd

from icp_research.analyses import registry
from icp_research.analyses.blueprint.onepager import write_onepager
from icp_research.analyses.blueprint.result import Blueprint
from icp_research.analyses.slide import write_slide
from icp_research.data.study import Study

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
    pipeline = blueprint.tables.get("expected_pipeline")
    if pipeline is not None and len(pipeline):
        written += study.save_artifact(registry.EXPECTED_PIPELINE, pipeline)
    folder = Path(study.artifacts_dir)
    written.append(write_onepager(blueprint, folder / registry.ICP_ONEPAGER.filename))
    written.append(write_slide(blueprint, folder / registry.ICP_SLIDE.filename, study=study))
    study.save_result(blueprint, "blueprint")
    return written
