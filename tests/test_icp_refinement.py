"""An ICP that is a combination drawn from a single trait: "Healthcare companies of 200-2,000
employees" win, smaller Healthcare companies do not, and across all accounts size makes no
difference worth a rule. The blueprint searches inside the drawn ICP for what does worse."""

from __future__ import annotations

import numpy as np
import pandas as pd

import icp_research as icp
from icp_research.analyses.blueprint import build_blueprint

from .conftest import write_project

CONFIG = """
[project]
name = "refinement"
as_of = "2026-09-30"
[tables.accounts]
path = "accounts.csv"
[tables.accounts.columns]
account_id = "Account ID"
industry = "Industry"
employees = "Employees"
country = "Billing Country"
[tables.opportunities]
path = "deals.csv"
[tables.opportunities.columns]
opportunity_id = "Opportunity ID"
account_id = "Account ID"
stage = "Stage"
created_at = "Created Date"
closed_at = "Close Date"
[tables.opportunities.values.stage]
"Closed Won" = "won"
"Closed Lost" = "lost"
"""


def _exports(seed: int, sized: bool) -> dict[str, str]:
    rng = np.random.default_rng(seed)
    n = 1500
    industry = rng.choice(
        ["Healthcare", "Technology", "Retail", "Finance", "Education", "Media"],
        n,
        p=[0.15, 0.2, 0.2, 0.15, 0.15, 0.15],
    )
    employees = np.round(np.exp(rng.uniform(np.log(10), np.log(10_000), n)))
    fit = industry == "Healthcare"
    if sized:  # the planted ICP: Healthcare of 200-1,999 employees
        fit &= (employees >= 200) & (employees < 2000)
    accounts = pd.DataFrame(
        {
            "Account ID": [f"A{i:05d}" for i in range(n)],
            "Industry": industry,
            "Employees": employees.astype(int),
            "Billing Country": rng.choice(["US", "UK", "DE"], n),
        }
    )
    owner = rng.integers(0, n, 3 * n)
    created = pd.Timestamp("2023-01-01") + pd.to_timedelta(rng.integers(0, 1300, 3 * n), "D")
    closed = created + pd.to_timedelta(rng.integers(20, 90, 3 * n), "D")
    won = rng.random(3 * n) < np.where(fit[owner], 0.45, 0.15)
    deals = pd.DataFrame(
        {
            "Opportunity ID": [f"O{i:05d}" for i in range(3 * n)],
            "Account ID": accounts["Account ID"].to_numpy()[owner],
            "Stage": np.where(won, "Closed Won", "Closed Lost"),
            "Created Date": created.strftime("%Y-%m-%d"),
            "Close Date": closed.strftime("%Y-%m-%d"),
        }
    )
    deals = deals[closed <= pd.Timestamp("2026-09-30")]
    return {"accounts.csv": accounts.to_csv(index=False), "deals.csv": deals.to_csv(index=False)}


def test_a_size_that_matters_only_inside_the_icp_becomes_its_exclude_rule(tmp_path):
    config = write_project(tmp_path, _exports(4, sized=True), CONFIG)
    blueprint = build_blueprint(icp.open_study(config, reuse_snapshot=False))
    assert blueprint.drawn
    assert [r.text for r in blueprint.include if r.role == "filter"] == ["industry = Healthcare"]
    (rule,) = [r for r in blueprint.exclude if r.attribute == "employees"]
    inside = [e for e in rule.evidence if "accounts in the include rule" in e.compared_with]
    # Named by the include rules it is measured within (not one on employees itself).
    assert inside[0].compared_with == (
        "other deals of accounts in the include rule (industry = Healthcare)"
    )
    assert inside and inside[0].held_up and inside[0].training["lift"] < 0.6
    assert "Not a fit: companies with fewer than" in blueprint.statement


def test_no_exclude_rule_inside_an_icp_where_size_does_not_matter(tmp_path):
    config = write_project(tmp_path, _exports(4, sized=False), CONFIG)
    blueprint = build_blueprint(icp.open_study(config, reuse_snapshot=False))
    assert blueprint.drawn and blueprint.statement == "This product fits Healthcare companies."
    assert not blueprint.exclude
