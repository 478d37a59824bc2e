"""Two fixture exports shaped like real ones, asserted against their generators' truth: a
founder's hand-kept customer list beside a pipeline of every prospect (tracker_pipeline), and a
HubSpot CRM whose revenue comes as ChartMogul MRR movements (hubspot_chartmogul)."""

from __future__ import annotations

import importlib.util

import pandas as pd
import pytest

import icp_research as icp
from icp_research.analyses import blueprint as bp
from icp_research.data import validation

from .conftest import FIXTURES


def _truth(name: str) -> dict:
    """The TRUTH of tests/fixtures/exports/<name>/make_<name>.py (importing it computes the
    data again, seeded, without writing any file)."""
    path = FIXTURES / "exports" / name / f"make_{name}.py"
    spec = importlib.util.spec_from_file_location(f"make_{name}", path)
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module.TRUTH


TRACKER = FIXTURES / "exports" / "tracker_pipeline" / "icp.toml"
HUBSPOT_CHARTMOGUL = FIXTURES / "exports" / "hubspot_chartmogul" / "icp.toml"


def test_the_tracker_pipeline_fixture_counts_every_deal_and_draws_nothing():
    """tests/fixtures/exports/tracker_pipeline: a hand-kept workbook whose Customers sheet (a
    title row, a blank row, a "Total" row at the bottom) is both the accounts and the
    subscriptions, and whose Pipeline sheet names each deal's company, most of them companies
    that never bought and are in no other sheet. Nothing predicts anything. Its generator's
    truth: 147 customers, 51 churned, $1,285,560 ARR; 147 of 611 closed deals won (24%), of
    which the customers' own are 198 deals, 74% won, and 413 are at 273 companies not in the
    Customers sheet; 11 deal rows name a customer typed otherwise ("SKY MEDIA")."""
    truth = _truth("tracker_pipeline")
    assert (truth["customers"], truth["churned"], truth["arr"]) == (147, 51, 1_285_560.0)
    assert (truth["won_deals"], truth["closed_deals"], truth["open_deals"]) == (147, 611, 35)
    assert (truth["customers_own_closed_deals"], truth["prospect_closed_deals"]) == (198, 413)
    assert (truth["renamed_rows"], truth["prospect_rows"]) == (11, 448)

    study = icp.open_study(TRACKER, reuse_snapshot=False)
    inputs = {i["table"]: i for i in study.report.inputs}
    assert (inputs["accounts"]["rows"], inputs["accounts"]["records"]) == (148, 147)
    assert (inputs["subscriptions"]["rows"], inputs["subscriptions"]["records"]) == (148, 147)
    assert inputs["opportunities"]["rows"] == 646
    footers = [
        p for p in study.report.infos if p.message.startswith('1 footer row dropped ("Total")')
    ]
    assert {p.table for p in footers} == {"accounts", "subscriptions"}

    facts = study.facts
    assert len(facts) == 147 and facts["is_customer"].astype(bool).all()
    assert int(facts["churned"].astype(bool).sum()) == truth["churned"]
    assert facts["arr_current"].sum() == pytest.approx(truth["arr"])
    # The win rate counts every closed deal, not only the customers' own (74%).
    closed = study.deals[study.deals["won"].notna()]
    assert (int(closed["won"].sum()), len(closed)) == (truth["won_deals"], truth["closed_deals"])
    assert study.deals["is_new_business"].astype(bool).all()

    (renamed,) = [p for p in study.report.infos if "name their account differently" in p.message]
    assert renamed.n_rows == truth["renamed_rows"]
    (elsewhere,) = [p for p in study.report.warnings if "not in accounts" in p.message]
    assert elsewhere.n_rows == truth["prospect_rows"]
    assert elsewhere.message.startswith("448 rows have a name that is not in accounts (69%")

    # validate says the accounts are customers only, and what that leaves the analyses by trait.
    customers_only = (
        "every one of the 147 accounts in the accounts table is a customer, while 413 of 611 "
        "closed new-business deals (68%) are at companies not in it"
    )
    (said,) = [p.message for p in study.trust.problems if p.message.startswith("every one of")]
    assert said.startswith(customers_only)
    assert "only the customers' own 198 deals, 74% won" in said
    report = validation.validate(TRACKER)
    assert [p.level for p in report.problems if p.message.startswith(customers_only)] == ["warning"]

    # Who has the account on our side, the score after the sale and the status: no traits.
    assert {"csm", "nps", "status"} <= set(study.screening.outcome_like)
    assert {"csm", "nps", "status"}.isdisjoint(study.attributes.all)
    assert "industry" in study.attributes.all and "employees" in study.attributes.all

    result = bp.build_blueprint(study, backtest_quarters=1, n_boot=50)
    assert not result.drawn and not result.include and not result.exclude
    assert not result.uncertain and result.scorecard is None
    assert result.statement.startswith("No ICP can be drawn from this data")


def test_the_tracker_pipeline_columns_the_accounts_read_are_not_called_unused():
    study = icp.open_study(TRACKER, reuse_snapshot=False)
    assert {"csm", "nps"} <= set(study.tables["accounts"].columns)
    assert not [p.message for p in study.report.warnings if "not used" in p.message]


def test_the_hubspot_chartmogul_fixture_reads_revenue_from_mrr_movements():
    """tests/fixtures/exports/hubspot_chartmogul: HubSpot companies and deals as exported
    (Industry enum values, stage labels, internal deal types) and ChartMogul's MRR movements
    (signed changes in cents, the HubSpot Record ID as the external id, blank for 7 customers
    HubSpot does not have) with movements = true. Its generator's truth, from the running sum of
    each customer's movements on 2026-09-30: 254 customers, 73 churned (their MRR back at 0),
    $3,020,223.96 ARR; 254 of 1,001 closed new-business deals won, HOSPITAL_HEALTH_CARE 121 of
    292 against 133 of 709 for the rest (planted: 0.40 against 0.20)."""
    truth = _truth("hubspot_chartmogul")
    assert (truth["customers"], truth["churned"], truth["arr"]) == (254, 73, 3_020_223.96)
    assert truth["win_rate_new_business"]["won"] == 254
    assert truth["win_rate_new_business"]["closed"] == 1001
    assert (truth["healthcare"]["won"], truth["healthcare"]["closed"]) == (121, 292)
    assert (truth["movements"], truth["unlinked_rows"]) == (572, 11)

    study = icp.open_study(HUBSPOT_CHARTMOGUL, reuse_snapshot=False)
    inputs = {i["table"]: i for i in study.report.inputs}
    assert inputs["accounts"]["rows"] == 500 and inputs["opportunities"]["rows"] == 1169
    assert (inputs["subscriptions"]["rows"], inputs["subscriptions"]["records"]) == (572, 450)
    (read,) = [p.message for p in study.report.infos if p.message.startswith("movements = true")]
    linked = truth["movements"] - truth["unlinked_rows"]
    assert read.startswith(
        f"movements = true: {linked} changes of 254 accounts read as 450 stretches of steady "
        "revenue"
    )
    # The deal types are read from HubSpot's internal values without a recode.
    assert any('"newbusiness" as new' in p.message for p in study.report.infos)
    # Customers who churned and came back: the movements' reactivations more than 30 days
    # after the churn (one came back after 28 days: a late payment, not a lapse).
    movements = pd.read_csv(HUBSPOT_CHARTMOGUL.parent / "chartmogul_mrr_movements.csv")
    movements = movements[movements["Customer External ID"].notna()]
    movements["Date"] = pd.to_datetime(movements["Date"])
    movements = movements.sort_values(["Customer External ID", "Date"])
    before = movements.groupby("Customer External ID")["Date"].shift()
    back = (movements["Type"] == "reactivation") & ((movements["Date"] - before).dt.days > 30)
    lapsed = movements.loc[back, "Customer External ID"].nunique()
    (lapses,) = [p.message for p in study.report.warnings if "stopped paying" in p.message]
    assert lapses.startswith(
        f"{lapsed} customers stopped paying for more than 30 days and came back "
        f"({int(back.sum())} lapses in all;"
    )
    assert (lapsed, int(back.sum())) == (34, 37)
    others = [p for p in study.report.warnings if "stopped paying" not in p.message]
    assert not [p for p in others if p.column != "Customer External ID"]

    facts = study.facts
    assert len(facts) == 500
    assert int(facts["is_customer"].astype(bool).sum()) == truth["customers"]
    assert int(facts["churned"].fillna(False).astype(bool).sum()) == truth["churned"]
    assert facts["arr_current"].sum() == pytest.approx(truth["arr"], abs=0.01)
    closed = study.deals[study.deals["won"].notna() & study.deals["is_new_business"]]
    assert (int(closed["won"].sum()), len(closed)) == (254, 1001)
    healthcare = closed["industry"] == "HOSPITAL_HEALTH_CARE"
    assert (int(closed.loc[healthcare, "won"].sum()), int(healthcare.sum())) == (121, 292)

    result = bp.build_blueprint(study, backtest_quarters=1, n_boot=50)
    assert result.drawn
    assert result.statement == "This product fits Hospital Health Care companies."
    assert [r.text for r in result.include] == ["industry = HOSPITAL_HEALTH_CARE"]
    assert not result.exclude


def test_the_hubspot_chartmogul_movements_without_an_account_are_reported():
    study = icp.open_study(HUBSPOT_CHARTMOGUL, reuse_snapshot=False)
    (blank,) = [p for p in study.report.warnings if p.column == "Customer External ID"]
    assert blank.n_rows == _truth("hubspot_chartmogul")["unlinked_rows"]
