"""The pattern-discovery report on the demo data: its summary, sections and artifacts."""

from __future__ import annotations

import json
import re

import pandas as pd

from .conftest import report_text

NOISE = {"region", "country", "cloud", "website_platform", "fiscal_year_end", "founded_year"}


def _artifact(run, name: str) -> pd.DataFrame:
    return pd.read_csv(run.out_dir / "artifacts" / f"{name}.csv")


def test_report_ran_and_opens_with_the_planted_patterns(demo_run):
    manifest = json.loads((demo_run.out_dir / "artifacts" / "manifest.json").read_text())
    status = {n["name"]: n["status"] for n in manifest["notebooks"]}
    assert status["01_pattern_discovery"] == "ok"
    text = report_text(demo_run, "01_pattern_discovery")
    summary = text[text.index("Summary") : text.index("How sure we are")]
    assert "75% of best customers have industry FinTech or SaaS vs 35% of the rest (2.2x" in summary
    # In words, not code ("industry in {FinTech, SaaS} AND employees >= 50").
    assert (
        "Deals of accounts in FinTech or SaaS and with 50+ employees are won 1.7x as often as "
        "the average deal" in summary
    )
    assert "{" not in summary and " AND " not in summary
    assert "deals from 743 accounts" in summary
    assert "still customers 12 months after starting" in summary
    assert "Nothing stands out" not in text
    assert "top 20% of each start year's customers by current ARR, churned ones counted" in text
    assert "(299 customers, current ARR of $34.3k or more in their cohort)" in text
    # The rate by start year is shown, and is the same 20% in every year.
    assert "Best customers by start year" in text
    for year, customers, best in (("2024", 420, 84), ("2025", 591, 119), ("2026", 479, 96)):
        assert re.search(rf"{year} {customers} \d+% {best} 20% \(1\d%–2\d%\)", text), year
    for section in (
        "Best customers versus the other customers",
        "Best customers by start year",
        "Combinations that go with each outcome",
        "Won deals",
        "Customers still with us after 12 months",
        "Segments compared",
        "How many clusters",
        "What characterises each segment",
    ):
        assert section in text, section
    assert "design effect" in text and "Rao-Scott" in text
    assert "weakly separated" in text  # the demo's clusters are a continuum, and we say so


def test_subgroups_artifact_has_the_contract_columns_and_the_icp_on_top(demo_run):
    subgroups = _artifact(demo_run, "subgroups")
    assert list(subgroups.columns[:10]) == [
        "rank",
        "description",
        "target",
        "n",
        "coverage",
        "target_rate",
        "baseline_rate",
        "lift",
        "p_value",
        "q_value",
    ]
    assert set(subgroups["target"]) == {"best_customer", "won", "retained_12m"}
    for target, rows in subgroups.groupby("target"):
        top = rows.sort_values("rank").iloc[0]
        attributes = {c["attribute"] for c in json.loads(top["conditions"])}
        assert attributes <= {"industry", "employees", "crm"}, (target, top["description"])
        assert top["significant"] and top["q_value"] < 1e-4
        assert top["lift_ci_low"] > 1
    significant = subgroups[subgroups["significant"]]
    used = {c["attribute"] for text in significant["conditions"] for c in json.loads(text)}
    assert not used & NOISE
    won = subgroups[subgroups["target"] == "won"]
    assert (won["accounts"] < won["n"]).all()


def test_segments_artifact_one_row_per_segment_with_intervals(demo_run):
    segments = _artifact(demo_run, "segments")
    for column in (
        "segmentation",
        "segment",
        "accounts",
        "customers",
        "clv",
        "clv_ci_low",
        "churn_rate",
        "churn_rate_ci_high",
        "win_rate",
        "win_rate_ci_low",
        "avg_deal_size",
        "sales_cycle_days",
        "nrr",
        "profile",
    ):
        assert column in segments.columns, column
    overall = segments.iloc[0]
    assert (overall["segmentation"], overall["accounts"], overall["customers"]) == (
        "all",
        3000,
        1490,
    )
    assert 0.2 < overall["win_rate"] < 0.3
    rule = segments[segments["segmentation"] == "rule"].set_index("segment")
    assert list(rule.index) == ["SMB", "Mid-market", "Enterprise"]
    assert rule["accounts"].sum() == 3000
    # The planted effects by size: Mid-market (200-1,999 staff, most of the ICP) wins more and
    # churns less than SMB.
    assert rule.loc["Mid-market", "win_rate_ci_low"] > rule.loc["SMB", "win_rate_ci_high"]
    assert rule.loc["Mid-market", "churn_rate_ci_high"] < rule.loc["SMB", "churn_rate_ci_low"]
    for method in ("kmeans", "ward"):
        assert segments.loc[segments["segmentation"] == method, "accounts"].sum() == 3000
    ok = segments["win_rate"].notna()
    assert (segments.loc[ok, "win_rate_ci_low"] <= segments.loc[ok, "win_rate"]).all()
    assert (segments.loc[ok, "win_rate"] <= segments.loc[ok, "win_rate_ci_high"]).all()
    silhouette = _artifact(demo_run, "segment_silhouette")
    assert set(silhouette["method"]) == {"kmeans", "ward"}
    assert silhouette.groupby("method")["chosen"].sum().to_dict() == {"kmeans": 1, "ward": 1}


def test_best_customer_profile_artifact(demo_run):
    profile = _artifact(demo_run, "best_customer_profile")
    assert profile.iloc[0]["attribute"] == "industry" and profile.iloc[0]["level"] == "SaaS"
    assert profile.iloc[0]["significant"] and profile.iloc[0]["lift_ci_low"] > 1.5
    over = profile[profile["significant"] & (profile["lift"] > 1)]
    assert not set(over["attribute"]) & NOISE
