"""A Salesforce "Opportunity History" report beside a Salesforce Accounts export and a Zuora
subscriptions export, used exactly as the systems write them (no hand edits):
``salesforce_history`` under tests/fixtures/exports/ (seeded generator beside it). One row per
stage change of each deal, newest first, no creation date, a Grand Totals row and the
"Confidential Information" footer; deals typed New Business, Existing Business and Renewal; an
accounts "Type" column that says who is a customer; Zuora's Cancelled and Expired
subscriptions. The headline figures equal the generator's ground truth; the rest is counted by
hand from the raw files with plain pandas.
"""

from __future__ import annotations

import json

import pandas as pd
import pytest

import icp_research as icp
from icp_research.analyses import churn, deals, overview
from icp_research.data.validation import validate
from icp_research.methods.stats import poisson_rate_ci

from .conftest import FIXTURES

HISTORY = FIXTURES / "exports" / "salesforce_history"
TRUTH = json.loads((HISTORY / "ground_truth.json").read_text(encoding="utf-8"))
OPEN_STAGES = [
    "Prospecting",
    "Qualification",
    "Needs Analysis",
    "Value Proposition",
    "Id. Decision Makers",
    "Perception Analysis",
    "Proposal/Price Quote",
    "Negotiation/Review",
]
OUTCOME = {"Closed Won": "won", "Closed Lost": "lost"}


@pytest.fixture(scope="module")
def study():
    return icp.open_study(HISTORY / "icp.toml", reuse_snapshot=False)


def history() -> pd.DataFrame:
    """The report's stage-change rows (not its totals and footer), with the change's time."""
    raw = pd.read_csv(HISTORY / "Opportunity History.csv", dtype=str, keep_default_na=False)
    rows = raw[raw["Opportunity ID"].str.startswith("006")].copy()
    rows["when"] = pd.to_datetime(rows["Last Modified Date"], format="%m/%d/%Y %I:%M %p")
    return rows


def final_rows() -> pd.DataFrame:
    """Each deal's latest change, by the time of the change."""
    rows = history().sort_values("when")
    return rows.groupby("Opportunity ID").tail(1).set_index("Opportunity ID").sort_index()


def test_the_report_is_as_salesforce_writes_it():
    raw = pd.read_csv(HISTORY / "Opportunity History.csv", dtype=str, keep_default_na=False)
    rows = history()
    assert len(rows) == TRUTH["history_rows"] == 4052
    assert rows["Opportunity ID"].nunique() == TRUTH["opportunities"] == 957
    assert rows["Opportunity ID"].str.len().eq(15).all()
    footer = raw.loc[~raw["Opportunity ID"].str.startswith("006"), "Opportunity ID"].tolist()
    assert footer == [
        "Grand Totals (4,052 records)",
        "Confidential Information - Do Not Distribute",
        "Copyright (c) 2000-2026 salesforce.com, inc. All rights reserved.",
    ]
    # No creation date: a deal's first change (From Stage blank) is when it was created.
    assert "Created Date" not in raw
    assert rows.groupby("Opportunity ID")["From Stage"].apply(lambda s: s.eq("").sum()).eq(1).all()
    # Newest first: each deal's rows stand in reverse order of its changes.
    assert rows.groupby("Opportunity ID")["when"].apply(lambda s: s.is_monotonic_decreasing).all()
    assert rows.groupby("Opportunity ID")["when"].apply(lambda s: s.is_unique).all()
    assert not rows["when"].is_monotonic_increasing


def test_each_opportunity_id_is_one_deal(study):
    kit = study.raw_tables["opportunities"]
    assert len(kit) == kit["opportunity_id"].nunique() == TRUTH["opportunities"] == 957
    assert set(kit["opportunity_id"]) == set(history()["Opportunity ID"])
    by_type = TRUTH["opportunities_by_type"]
    assert kit["type"].value_counts().to_dict() == {
        "new": by_type["New Business"],
        "expansion": by_type["Existing Business"],
        "renewal": by_type["Renewal"],
    }
    assert (by_type["New Business"], by_type["Existing Business"], by_type["Renewal"]) == (
        799,
        81,
        77,
    )


def test_each_deal_is_at_its_final_stage(study):
    kit = study.raw_tables["opportunities"].set_index("opportunity_id").sort_index()
    truth = TRUTH["deals"]
    assert (truth["won"], truth["lost"], truth["open"]) == (268, 602, 87)
    stages = kit["stage"].value_counts().to_dict()
    assert stages == {"won": truth["won"], "lost": truth["lost"], "open": truth["open"]}
    last = final_rows()
    assert kit["stage"].tolist() == last["To Stage"].map(OUTCOME).fillna("open").tolist()
    # Its amount and close date are the final row's.
    amounts = last["Amount"].str.replace(",", "").astype(float)
    assert kit["amount"].tolist() == amounts.tolist()
    closes = pd.to_datetime(last["Close Date"], format="%m/%d/%Y")
    assert kit["closed_at"].tolist() == closes.tolist()


def test_each_deal_is_created_when_its_first_row_was(study):
    kit = study.raw_tables["opportunities"].set_index("opportunity_id")["created_at"]
    first = history().groupby("Opportunity ID")["when"].min()
    # The kit keeps dates to the day.
    assert kit.sort_index().tolist() == first.dt.normalize().sort_index().tolist()


def test_the_new_business_win_rate_equals_the_truth(study):
    truth = TRUTH["new_business"]
    assert (truth["won"], truth["closed"], truth["open"]) == (183, 739, 60)
    totals = overview.data_overview(study).totals
    assert totals["deals"] == {"won": truth["won"], "lost": truth["lost"], "open": truth["open"]}
    assert totals["win_rate"]["n"] == truth["closed"]
    assert totals["win_rate"]["rate"] == truth["won"] / truth["closed"]
    overall = deals.lost_deal_analysis(study).overall
    assert overall["win_rate"]["n"] == truth["closed"]
    assert overall["win_rate"]["events"] == truth["won"]
    assert overall["open_deals"] == truth["open"]


def test_renewals_and_existing_business_are_not_counted_in_the_win_rate(study):
    kit = study.raw_tables["opportunities"]
    new = kit[kit["type"] == "new"]
    closed = new["stage"].isin(["won", "lost"])
    overall = deals.lost_deal_analysis(study).overall
    assert overall["win_rate"]["n"] == closed.sum()
    assert overall["win_rate"]["events"] == (new["stage"] == "won").sum()
    # All types closed: more than the new business's.
    assert kit["stage"].isin(["won", "lost"]).sum() > closed.sum() + 100
    assert overview.data_overview(study).totals["win_rate"]["n"] == closed.sum()


def test_the_stage_history_is_one_row_per_history_row(study):
    kit = study.tables["stage_history"]
    assert len(kit) == TRUTH["history_rows"] == 4052
    rows = history()
    pairs = sorted(zip(rows["Opportunity ID"], rows["To Stage"], strict=True))
    assert sorted(zip(kit["opportunity_id"], kit["stage"], strict=True)) == pairs
    when = rows.set_index(["Opportunity ID", "To Stage"])["when"].dt.normalize()
    entered = kit.set_index(["opportunity_id", "stage"])["entered_at"]
    assert entered.sort_index().tolist() == when.sort_index().tolist()


def test_the_stage_funnel_is_in_the_order_of_the_sales_process(study):
    summary = deals.stage_funnel(study).summary
    assert summary["stage"].tolist()[:8] == OPEN_STAGES
    assert set(summary["stage"].tolist()[8:]) == {"Closed Won", "Closed Lost"}
    reached = TRUTH["reached_stage"]
    assert summary.set_index("stage")["deals"].to_dict() == reached
    assert (reached["Prospecting"], reached["Closed Won"], reached["Closed Lost"]) == (
        957,
        268,
        602,
    )
    assert summary["share"].tolist() == pytest.approx(
        [reached[s] / TRUTH["opportunities"] for s in summary["stage"]]
    )
    # The lost-deal report shows it.
    result = deals.lost_deal_analysis(study)
    assert "stage funnel" not in result.not_computed
    assert result.tables["stage_funnel"]["stage"].tolist() == summary["stage"].tolist()


def test_the_accounts_type_is_left_out_as_an_outcome(study):
    accounts = pd.read_csv(HISTORY / "Accounts.csv", dtype=str)
    zuora = pd.read_csv(HISTORY / "Subscriptions.csv", dtype=str)
    customers = set(accounts.loc[accounts["Type"] == "Customer - Direct", "Account ID"])
    # Every account that ever paid, churned or not, and no other: the outcome itself.
    assert customers == set(zuora["Account Number"])
    assert accounts["Type"].value_counts().to_dict() == TRUTH["account_type"]
    assert "type" not in study.attributes.all
    assert study.attributes.excluded["type"].startswith("looks like an outcome: ")
    assert "type" in study.screening.outcome_like
    assert "referral_source" in study.attributes.all


def test_customers_churn_and_arr_equal_the_planted_truth(study):
    assert (TRUTH["customers"], TRUTH["churned"], TRUTH["arr"]) == (183, 46, 3_565_900.44)
    facts = study.facts
    assert int(facts["is_customer"].sum()) == TRUTH["customers"]
    assert int(facts["churned"].fillna(False).astype(bool).sum()) == TRUTH["churned"]
    assert round(float(facts["arr_current"].sum()), 2) == TRUTH["arr"]
    totals = overview.data_overview(study).totals
    assert totals["customers"] == TRUTH["customers"]
    assert totals["active_customers"] == TRUTH["subscriptions_by_status"]["Active"] == 137
    assert round(totals["arr"], 2) == TRUTH["arr"]
    overall = churn.churn_analysis(study).overall
    assert overall["customers"] == TRUTH["customers"]
    # Cancelled on the Cancelled Date, Expired (not renewed) on the Term End Date.
    assert overall["churned"] == TRUTH["churned"]
    by_status = TRUTH["subscriptions_by_status"]
    assert by_status["Cancelled"] + by_status["Expired"] == TRUTH["churned"]
    assert overall["customer_years"] == pytest.approx(TRUTH["customer_years"], abs=1e-4)
    assert overall["churn_rate"] == pytest.approx(TRUTH["churn_per_customer_year"], abs=1e-6)
    low, high = poisson_rate_ci(TRUTH["churned"], TRUTH["customer_years"], study.alpha)[1:]
    assert overall["churn_rate_ci_low"] == pytest.approx(low, rel=1e-5)
    assert overall["churn_rate_ci_high"] == pytest.approx(high, rel=1e-5)


def _without_history(tmp_path, config: str):
    """The fixture's config without history = true, reading the fixture's files."""
    config = config.replace("history = true\n", "")
    for name in ("Accounts.csv", "Opportunity History.csv", "Subscriptions.csv"):
        config = config.replace(f'path = "{name}"', f"path = {json.dumps(str(HISTORY / name))}")
    path = tmp_path / "icp.toml"
    path.write_text(config, encoding="utf-8")
    return validate(path)


def test_without_history_the_error_names_the_setting(tmp_path):
    # The Last Modified Date read as each row's creation date, as before the setting.
    config = (HISTORY / "icp.toml").read_text(encoding="utf-8")
    report = _without_history(tmp_path, config.replace("changed_at =", "created_at ="))
    (error,) = report.errors
    repeated = history()["Opportunity ID"].value_counts().gt(1).sum()
    assert repeated == 951  # six open renewals have one row
    assert error.message.startswith(f"{repeated} opportunity_id values occur more than once")
    assert "set history = true under [tables.opportunities]" in error.fix


def test_without_history_changed_at_alone_names_the_setting(tmp_path):
    config = (HISTORY / "icp.toml").read_text(encoding="utf-8")
    report = _without_history(tmp_path, config)
    assert report.errors
    assert any("history = true" in error.fix for error in report.errors)
