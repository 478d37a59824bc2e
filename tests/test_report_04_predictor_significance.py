"""The predictor-significance report: rendered content and artifacts, on the demo and on noise."""

from __future__ import annotations

import json
import shutil
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from icp_research.analyses.significance import PREDICTOR_SUMMARY_COLUMNS, REPLICATION_COLUMNS
from icp_research.methods.predictors import SUMMARY_COLUMNS

from .conftest import report_text

NAME = "04_predictor_significance"
PLANTED = {"industry", "employees", "crm", "referral_source"}
NOISE = {"region", "cloud", "website_platform", "fiscal_year_end", "founded_year"}


def test_report_summary_names_the_planted_icp(demo_run):
    statuses = {n["name"]: n["status"] for n in demo_run.manifest["notebooks"]}
    assert statuses[NAME] == "ok"
    text = report_text(demo_run, NAME)
    assert (
        "4 characteristics predict success, held up in the latest quarters and keep an effect of "
        "their own next to the others: employees, industry, crm and referral_source" in text
    )
    # Each recommendation names the outcome it holds for: outcomes can favour different levels.
    assert (
        "industry: favour FinTech, SaaS for winning deals, and SaaS for best-customer status; "
        "avoid Education, Logistics for winning deals, and Education for best-customer status"
        in text
    )
    assert "crm: favour HubSpot, Salesforce for winning deals, and Salesforce for" in text
    # Best customers are ranked within their start year, so size favours them in several bins.
    assert (
        "employees: favour 250 to < 600 for winning deals, and 150 to < 250, >= 600 for "
        "best-customer status; avoid < 60 for winning deals, retention and best-customer status"
        in text
    )
    assert (
        "Not recommended: annual_revenue (replicated, but measures much the same as employees"
        in (text)
    )
    assert "No evidence that region, uses_sso, cloud, website_platform, fiscal_year_end" in text
    # Findings read as words for people; the code form stays in predictors.csv.
    assert "Accounts with no CRM: 0.61x the odds (0.51–0.72) for winning a deal" in text
    assert "crm = None:" not in text
    # Every rate and effect comes with its interval, n and q; clustering is said plainly.
    assert (
        "1.87x the odds (1.53–2.28) for winning a deal in the discovery period "
        "(689 deals, q < 0.001); 1.91x in the latest quarters" in text
    )
    assert "4,441 deals from 2,181 accounts in the discovery period" in text
    for heading in (
        "Recommended for the ICP",
        "Ranked predictors",
        "Forest plot",
        "Do they hold up together?",
        "Power: what we could have detected",
        "What we can and cannot conclude",
    ):
        assert heading in text
    assert "We cannot say that these characteristics cause success" in text
    markup = (demo_run.out_dir / f"{NAME}.html").read_text()
    assert markup.count("<img") == 2  # the forest plot and the model's odds ratios


def test_predictor_artifacts(demo_run):
    artifacts = demo_run.out_dir / "artifacts"
    rows = pd.read_csv(artifacts / "predictors.csv")
    assert list(rows.columns[: len(SUMMARY_COLUMNS)]) == SUMMARY_COLUMNS
    assert "replicated" in rows.columns and set(REPLICATION_COLUMNS) <= set(rows.columns)
    saas = rows[(rows["outcome"] == "won") & (rows["level"] == "SaaS")].iloc[0]
    assert saas["significant"] and saas["replicated"]
    assert saas["ci_low"] < saas["effect"] < saas["ci_high"] and saas["ci_low"] > 1
    won_noise = rows[(rows["outcome"] == "won") & rows["predictor"].isin(NOISE)]
    assert not won_noise["significant"].any()
    summary = pd.read_csv(artifacts / "predictor_summary.csv")
    assert list(summary.columns) == PREDICTOR_SUMMARY_COLUMNS
    shortlist = json.loads((artifacts / "icp_predictors.json").read_text())
    assert {item["predictor"] for item in shortlist["recommended"]} == PLANTED
    assert shortlist["holdout"]["won"]["split_on"] == "closed_at"


def noise_project(tmp_path, seed: int = 0):
    """The demo exports with the candidate attributes of the accounts shuffled across rows."""
    from icp_research.data.demo import DEMO_DIR

    project = tmp_path / "noise"
    shutil.copytree(DEMO_DIR, project)
    path = project / "accounts.csv"
    accounts = pd.read_csv(path, dtype=str, keep_default_na=False, encoding="utf-8-sig")
    columns = [
        "Industry",
        "Employees",
        "Annual Revenue",
        "Billing Country",
        "Region",
        "Year Founded",
        "Account Source",
        "CRM",
        "Uses SSO",
        "Cloud Provider",
        "Website Platform",
        "Fiscal Year End",
    ]
    order = np.random.default_rng(seed).permutation(len(accounts))
    accounts[columns] = accounts[columns].iloc[order].to_numpy()
    accounts.to_csv(path, index=False, encoding="utf-8-sig")
    notebooks = tmp_path / "notebooks"
    notebooks.mkdir()
    shutil.copy(Path(__file__).parents[1] / "notebooks" / f"{NAME}.ipynb", notebooks)
    return project / "icp.toml", notebooks


@pytest.mark.e2e
def test_pure_noise_report_says_no_predictor_stands_out(tmp_path):
    from icp_research.pipeline.runner import Progress, run_suite

    config, notebooks = noise_project(tmp_path)
    run = run_suite(
        config=config, out=tmp_path / "run", notebooks_dir=notebooks, progress=Progress(quiet=True)
    )
    assert run.exit_code == 0
    text = report_text(run, NAME)
    assert "No predictor stands out: none of the 11 attributes predicts" in text
    assert "Not enough evidence for a data-backed shortlist of ICP characteristics" in text
    assert "Not enough evidence for a multivariable model" in text
    shortlist = json.loads((run.out_dir / "artifacts" / "icp_predictors.json").read_text())
    assert shortlist["recommended"] == []
    rows = pd.read_csv(run.out_dir / "artifacts" / "predictors.csv")
    assert not rows["significant"].any()
