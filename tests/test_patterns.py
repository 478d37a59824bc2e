"""Pattern discovery on the demo data: the planted ICP comes out on top, noise does not."""

from __future__ import annotations

import dataclasses
import json

import numpy as np
import pytest

import icp_research as icp
from devtools.demo_data import is_planted_icp
from icp_research.analyses.patterns import (
    SUBGROUP_COLUMNS,
    discover_subgroups,
    pattern_discovery,
    pattern_summary,
    plot_subgroup_lifts,
    subgroup_table,
)
from icp_research.analyses.profile import best_customer_profile
from icp_research.data.study import Study
from icp_research.methods.segments import segment_accounts
from icp_research.methods.subgroups import subgroup_mask

ICP_ATTRIBUTES = {"industry", "employees", "crm"}
NOISE_ATTRIBUTES = {
    "region",
    "country",
    "cloud",
    "website_platform",
    "fiscal_year_end",
    "founded_year",
}


@pytest.fixture(scope="module")
def demo():
    study = icp.open_study()
    study.facts, study.deals  # noqa: B018 - computed once for the module
    return study


@pytest.fixture(scope="module")
def demo_subgroups(demo):
    return discover_subgroups(demo)


@pytest.fixture(scope="module")
def noise(demo):
    """The demo with every candidate attribute shuffled across accounts (seed 0)."""
    rng = np.random.default_rng(0)
    accounts = demo.raw_tables["accounts"].copy()
    for column in demo.attributes.categorical + demo.attributes.numeric:
        accounts[column] = accounts[column].to_numpy()[rng.permutation(len(accounts))]
    dataset = dataclasses.replace(
        demo.dataset,
        tables={**demo.raw_tables, "accounts": accounts},
        derived={},
        derived_meta={},
    )
    return Study(dataset, demo.as_of)


def _conditions(row) -> dict:
    return {c["attribute"]: c for c in json.loads(row["conditions"])}


@pytest.mark.parametrize("target", ["best_customer", "won", "retained_12m"])
def test_the_planted_icp_comes_out_on_top_for_every_target(demo, demo_subgroups, target):
    summary = demo_subgroups.summary
    rows = summary[summary["target"] == target]
    top = rows.iloc[0]
    assert top["significant"] and top["rank"] == 1
    conditions = _conditions(top)
    assert set(conditions) <= ICP_ATTRIBUTES
    if "industry" in conditions:
        assert set(conditions["industry"].get("values", [conditions["industry"].get("value")])) <= {
            "SaaS",
            "FinTech",
        }
    frame = _rows_of(demo, target)
    members = subgroup_mask(frame, top["conditions"]).to_numpy()
    planted = is_planted_icp(frame).to_numpy()
    # Its rows are rich in the planted ICP, and they hold most of it.
    assert planted[members].mean() > 1.4 * planted.mean()
    assert planted[members].sum() >= 0.7 * planted.sum()
    assert demo_subgroups.result(target).family_size > 10_000


def _rows_of(demo, target):
    from icp_research.analyses.patterns import target_frames

    frames, _ = target_frames(demo)
    return frames[target][0]


def test_best_customers_and_won_deals_rank_the_whole_industry_and_size_core_first(demo_subgroups):
    summary = demo_subgroups.summary
    for target in ("best_customer", "won"):
        top = summary[summary["target"] == target].iloc[0]
        assert top["description"].startswith("industry in {FinTech, SaaS} AND employees >=")
        assert top["lift"] > 1.6


def test_noise_attributes_are_never_a_significant_subgroup(demo_subgroups):
    significant = demo_subgroups.summary[demo_subgroups.summary["significant"]]
    assert len(significant) >= 10
    used = {a for _, row in significant.iterrows() for a in _conditions(row)}
    assert not used & NOISE_ATTRIBUTES, used & NOISE_ATTRIBUTES


def test_subgroups_csv_columns_and_won_deals_are_account_aware(demo_subgroups):
    summary = demo_subgroups.summary
    assert list(summary.columns) == SUBGROUP_COLUMNS
    assert SUBGROUP_COLUMNS[:10] == [
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
    won = summary[summary["target"] == "won"]
    assert (won["unit"] == "deals").all() and (won["accounts"] < won["n"]).all()
    result = demo_subgroups.result("won")
    assert result.params["design_effect"] > 1 and result.params["n_clusters"] > 2000
    assert any("design effect" in c for c in result.caveats)
    customers = summary[summary["target"] != "won"]
    assert (customers["accounts"] == customers["n"]).all()
    # Sentences and tables say the subgroup in words; the CSV keeps the code form too.
    assert "Deals of accounts in FinTech or SaaS and with " in " ".join(demo_subgroups.findings)
    won = summary[summary["target"] == "won"].iloc[0]
    assert won["description"].startswith("industry in {FinTech, SaaS} AND employees")
    assert won["words"].startswith("in FinTech or SaaS and with ")
    assert "{" not in " ".join(demo_subgroups.findings)
    table = subgroup_table(demo_subgroups, "won")
    assert "accounts" in table.columns
    assert table["subgroup"].iloc[0] == "Accounts " + won["words"]
    assert len(plot_subgroup_lifts(demo_subgroups).get_yticklabels()) >= 10


def test_best_customer_profile_puts_the_icp_industries_first(demo):
    profile = best_customer_profile(demo)
    headlines = profile.headlines()
    assert headlines.iloc[0]["attribute"] == "industry"
    assert headlines.iloc[0]["level"] == "FinTech or SaaS"
    assert headlines.iloc[0]["lift_ci_low"] > 1.8
    assert not set(headlines["attribute"]) & NOISE_ATTRIBUTES
    assert profile.findings[0].startswith("75% of best customers have industry FinTech or SaaS")
    # The top 20% of each start year's customers (churned ones counted).
    assert profile.params["n_best"] == 299 and profile.params["n_rest"] == 1191


def test_the_best_customer_definition_can_be_overridden(demo):
    by_clv = best_customer_profile(demo, metric="clv", top_share=0.1)
    assert by_clv.params["metric"] == "clv"
    assert "top 10% of each start year's customers by customer lifetime value" in by_clv.caveats[0]
    assert by_clv.params["n_best"] == 150


def test_all_noise_yields_no_significant_subgroup_or_lift(noise):
    profile = best_customer_profile(noise)
    assert profile.significant.empty
    subgroups = discover_subgroups(noise)
    assert set(subgroups.params["results"]) == {"best_customer", "won", "retained_12m"}
    assert not subgroups.summary["significant"].any()
    summary = pattern_summary(profile, subgroups)
    assert len(summary) == 1 and summary[0].startswith("Nothing stands out")


def test_segments_on_a_sample_assign_every_account(demo):
    result = segment_accounts(
        demo, k_range=(2, 4), silhouette_sample=500, ward_sample=800, kmeans_sample=1000
    )
    params = result.params
    assert params["ward_sample"] == 800 and params["kmeans_sample"] == 1000
    silhouettes = result.tables["silhouette"]
    assert sorted(silhouettes.groupby("method")["k"].apply(list).to_dict().items()) == [
        ("kmeans", [2, 3, 4]),
        ("ward", [2, 3, 4]),
    ]
    assert silhouettes.groupby("method")["chosen"].sum().to_dict() == {"kmeans": 1, "ward": 1}
    assignments = result.tables["assignments"]
    assert assignments["kmeans"].notna().all() and assignments["ward"].notna().all()
    summary = result.summary
    assert summary.iloc[0]["segmentation"] == "all" and summary.iloc[0]["accounts"] == 3000
    for segmentation in ("rule", "kmeans", "ward"):
        assert summary.loc[summary["segmentation"] == segmentation, "accounts"].sum() == 3000
    assert list(summary.loc[summary["segmentation"] == "rule", "segment"]) == [
        "SMB",
        "Mid-market",
        "Enterprise",
    ]
    assert any("nearest centre" in c for c in result.caveats)
    assert any("refined on all of them" in c for c in result.caveats)


def test_pattern_discovery_summary_is_short_and_names_the_icp(demo):
    result = pattern_discovery(demo, k_range=(2, 3))
    assert 3 <= len(result.findings) <= 5
    text = " ".join(result.findings)
    assert "FinTech" in text and "SaaS" in text
    assert result.segments.summary["segmentation"].iloc[0] == "all"
