"""The churn report on the demo data: planted findings in the HTML and in the artifacts."""

from __future__ import annotations

import json

import pandas as pd

from icp_research import antipatterns

from .conftest import report_text


def _artifact(run, name: str) -> pd.DataFrame:
    return pd.read_csv(
        run.out_dir / "artifacts" / f"{name}.csv", keep_default_na=False, na_values=[""]
    )


def test_churn_report_ran_and_says_what_it_found(demo_run):
    manifest = json.loads((demo_run.out_dir / "artifacts" / "manifest.json").read_text())
    status = {n["name"]: n["status"] for n in manifest["notebooks"]}
    assert status["02_churn_analysis"] == "ok"
    text = report_text(demo_run, "02_churn_analysis")
    assert "1,490 customers, 322 churned" in text
    assert "Accounts with employees under 60 churn 2.9x as fast" in text
    assert "Over-represented churn reasons: No internal owner; Price." in text
    assert "Accounts with crm = None churn 1.8x as fast" in text
    assert "Over-represented churn reasons: Missing integration." in text
    assert "Early churn (onboarding drop-off)" in text
    assert "No trial data" in text
    assert "Left out of the model: annual_revenue" in text  # the Cox model's caveat
    for noise in ("region =", "cloud =", "website_platform =", "fiscal_year_end ="):
        assert noise not in text


def test_churn_artifacts(demo_run):
    by_attribute = _artifact(demo_run, "churn_by_attribute")
    for column in (
        "attribute",
        "level",
        "rule",
        "customers",
        "churned",
        "customer_years",
        "churn_rate",
        "churn_rate_ci_low",
        "churn_rate_ci_high",
        "rate_ratio",
        "retention_12m",
        "retention_12m_ci_low",
        "early_churn",
        "arr_lost",
        "revenue_churn_12m",
        "p_value",
        "q_value",
        "significant",
        "direction",
    ):
        assert column in by_attribute.columns, column
    crm_none = by_attribute.query("attribute == 'crm' and level == 'None'").iloc[0]
    assert crm_none["direction"] == "faster" and crm_none["customers"] == 311
    assert by_attribute.groupby("attribute")["customers"].sum().eq(1490).all()

    reasons = _artifact(demo_run, "churn_reasons")
    overall = reasons.query("attribute == 'all'").set_index("reason")
    assert overall["churned"].sum() == 322
    assert overall.loc["Missing integration", "churned"] == 36

    curves = _artifact(demo_run, "retention_curves")
    assert {"attribute", "level", "months", "at_risk", "churned", "retention"} <= set(curves)
    assert (curves.query("attribute == 'all'")["retention"].diff().dropna() <= 0).all()

    rules = antipatterns.read_anti_patterns(demo_run.out_dir / "artifacts")
    churn_rules = rules[rules["source"] == "churn"].set_index("rule_id")
    assert churn_rules.loc["churn:crm:None", "value"] == "None"
    assert churn_rules.loc["churn:employees:< 60", "operator"] == "less_than"
    assert churn_rules.loc["churn:employees:< 60", "ci_low"] > 1
    summary = json.loads((demo_run.out_dir / "artifacts" / "churn.json").read_text())
    assert summary["overall"]["churned"] == 322
