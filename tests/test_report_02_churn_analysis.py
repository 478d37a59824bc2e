"""The churn report on the demo data: planted findings in the HTML and in the artifacts."""

from __future__ import annotations

import json
from pathlib import Path

import pandas as pd

from icp_research.analyses import antipatterns

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
    assert "Accounts with fewer than 60 employees churn 2.9x as fast" in text
    assert "Over-represented churn reasons: No internal owner; Price." in text
    assert "Accounts with no CRM churn 1.8x as fast" in text
    # Rules in words; the code form ("crm = None") stays in the CSV's rule column.
    assert "Accounts with crm = None" not in text
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


def test_no_churn_yet_renders_and_deals_report_is_skipped(tmp_path):
    """Subscriptions without a single churn: the churn report still renders and says what it
    could not compute; without opportunities the lost-deal report is skipped with its reason."""
    import shutil

    import numpy as np

    from icp_research.pipeline.runner import Progress, run_suite

    from .conftest import write_project

    rng = np.random.default_rng(3)
    n = 80
    ids = [f"C{i:03d}" for i in range(n)]
    accounts = "account_id,industry,employees\n" + "\n".join(
        f"{a},{rng.choice(['SaaS', 'Retail'])},{int(rng.integers(5, 900))}" for a in ids
    )
    subscriptions = "account_id,start_date,end_date,arr\n" + "\n".join(
        f"{a},2025-{int(rng.integers(1, 13)):02d}-01,,{int(rng.integers(1, 50)) * 1000}"
        for a in ids
    )
    config = write_project(
        tmp_path / "project",
        {"accounts.csv": accounts, "subscriptions.csv": subscriptions},
        """
[project]
name = "No churn yet"
as_of = "2026-03-31"

[tables.accounts]
path = "accounts.csv"

[tables.subscriptions]
path = "subscriptions.csv"

[attributes]
categorical = ["industry"]
numeric = ["employees"]
""",
    )
    notebooks = tmp_path / "notebooks"
    notebooks.mkdir()
    root = Path(__file__).parent.parent / "notebooks"
    for name in ("02_churn_analysis.ipynb", "03_lost_deal_analysis.ipynb"):
        shutil.copy(root / name, notebooks / name)
    run = run_suite(
        config=config, out=tmp_path / "run", notebooks_dir=notebooks, progress=Progress(quiet=True)
    )
    manifest = json.loads((run.out_dir / "artifacts" / "manifest.json").read_text())
    notebooks_run = {n["name"]: n for n in manifest["notebooks"]}
    assert notebooks_run["02_churn_analysis"]["status"] == "ok"
    assert notebooks_run["03_lost_deal_analysis"]["status"] == "skipped"
    assert run.exit_code == 0
    index = (run.out_dir / "index.html").read_text()
    assert "no opportunities table" in index
    text = report_text(run, "02_churn_analysis")
    assert "80 customers, 0 churned" in text
    assert "No churn yet: no customer has churned among 80 customers" in text
    assert "Not enough evidence for differences in churn between segments" in text
    assert "Not fitted: no churn events." in text
    assert "No segment churns significantly faster" in text
    rules = pd.read_csv(run.out_dir / "artifacts" / "anti_patterns_churn.csv")
    assert rules.empty and list(rules.columns) == antipatterns.ANTI_PATTERN_COLUMNS
