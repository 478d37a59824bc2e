"""The lost-deal report on the demo data: planted findings in the HTML and in the artifacts."""

from __future__ import annotations

import json

import pandas as pd

from icp_research.analyses import antipatterns

from .conftest import report_text


def _artifact(run, name: str) -> pd.DataFrame:
    return pd.read_csv(
        run.out_dir / "artifacts" / f"{name}.csv", keep_default_na=False, na_values=[""]
    )


def test_lost_deal_report_ran_and_says_what_it_found(demo_run):
    manifest = json.loads((demo_run.out_dir / "artifacts" / "manifest.json").read_text())
    status = {n["name"]: n["status"] for n in manifest["notebooks"]}
    assert status["03_lost_deal_analysis"] == "ok"
    text = report_text(demo_run, "03_lost_deal_analysis")
    assert "5,953 closed new-business deals at 2,719 accounts" in text
    assert "Deals cluster by account" in text
    assert "Accounts in Education win 14% of new-business deals" in text
    assert "Deals of accounts with no CRM end in 'no decision' 1.7x as often" in text
    assert "industry = Education win" not in text
    assert "counting 778 open deals as still running (censored)" in text
    assert "no stage funnel" in text
    for noise in ("region =", "cloud =", "website_platform =", "fiscal_year_end ="):
        assert noise not in text


def test_lost_deal_artifacts(demo_run):
    win_rate = _artifact(demo_run, "win_rate_by_attribute")
    for column in (
        "attribute",
        "level",
        "rule",
        "accounts",
        "deals",
        "events",
        "rate",
        "ci_low",
        "ci_high",
        "rate_rest",
        "ratio",
        "ratio_ci_low",
        "ratio_ci_high",
        "p_value",
        "q_value",
        "significant",
        "direction",
        "note",
    ):
        assert column in win_rate.columns, column
    education = win_rate.query("attribute == 'industry' and level == 'Education'").iloc[0]
    assert education["direction"] == "lower"
    assert education["ci_low"] < education["rate"] < education["ci_high"]
    assert win_rate.groupby("attribute")["deals"].sum().eq(5953).all()

    losses = _artifact(demo_run, "loss_reasons")
    overall = losses.query("attribute == 'all'").set_index("reason")
    assert overall.loc["No decision", "is_no_decision"]
    assert overall["lost_deals"].sum() == (5953 - 1490)

    cycle = _artifact(demo_run, "sales_cycle_by_segment")
    assert cycle.query("attribute == 'all'")["open"].iloc[0] == 778
    size = _artifact(demo_run, "deal_size_by_segment")
    assert size.query("attribute == 'all'")["won_deals"].iloc[0] == 1490

    rules = antipatterns.read_anti_patterns(demo_run.out_dir / "artifacts")
    deal_rules = rules[rules["source"] == "deals"].set_index("rule_id")
    assert deal_rules.loc["win_rate:industry:Education", "status"] == "candidate"
    assert deal_rules.loc["no_decision:crm:None", "value"] == "None"
    assert set(rules["source"]) == {"churn", "deals"}  # both parts, merged by the reader
