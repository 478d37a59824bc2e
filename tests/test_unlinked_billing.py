"""Billing rows without a CRM id (Stripe customers whose metadata lacks the Salesforce id): left
out, counted as left out, and their ARR named beside the ARR the overview reports."""

from __future__ import annotations

from icp_research.analyses.overview import data_overview
from icp_research.data import loading
from icp_research.data.study import Study

from .conftest import write_project

ACCOUNTS = "Id,Industry\nA1,SaaS\nA2,Retail\nA3,SaaS\nA4,Retail\n"
DEALS = (
    "Id,AccountId,Stage,Created,Closed\n"
    "D1,A1,Closed Won,2024-01-05,2024-02-01\n"
    "D2,A2,Closed Won,2024-01-09,2024-03-01\n"
    "D3,A3,Closed Won,2024-02-05,2024-04-01\n"
    "D4,A4,Closed Won,2024-02-05,2024-04-01\n"
)
# A4 pays, but its billing row carries no CRM id; A3 churned.
SUBSCRIPTIONS = (
    "customer,start,end,mrr\n"
    "A1,2024-02-01,,100\n"
    "A2,2024-03-01,,200\n"
    "A3,2024-04-01,2024-10-01,100\n"
    ",2024-04-01,,300\n"
)
CONFIG = """
[project]
as_of = "2025-06-30"
[tables.accounts]
path = "accounts.csv"
[tables.accounts.columns]
account_id = "Id"
industry = "Industry"
[tables.opportunities]
path = "deals.csv"
[tables.opportunities.columns]
opportunity_id = "Id"
account_id = "AccountId"
stage = "Stage"
created_at = "Created"
closed_at = "Closed"
[tables.opportunities.values.stage]
"Closed Won" = "won"
[tables.subscriptions]
path = "subscriptions.csv"
[tables.subscriptions.columns]
account_id = "customer"
start_date = "start"
end_date = "end"
mrr = "mrr"
"""


def test_billing_rows_without_an_account_are_left_out_and_their_arr_is_named(tmp_path):
    path = write_project(
        tmp_path,
        {"accounts.csv": ACCOUNTS, "deals.csv": DEALS, "subscriptions.csv": SUBSCRIPTIONS},
        CONFIG,
    )
    dataset = loading.load_tables(path)
    # Left out, and the row count says so ("4 rows -> 3 subscriptions").
    assert len(dataset.tables["subscriptions"]) == 3
    (item,) = [i for i in dataset.report.inputs if i["table"] == "subscriptions"]
    assert item["rows"] == 4 and item["records"] == 3
    (warning,) = [p for p in dataset.report.warnings if "no account_id" in p.message]
    assert warning.message == (
        "1 rows have no account_id and are left out (1 of them with no end date, 3,600 ARR "
        "that the reports' ARR does not count)"
    )
    assert warning.rows == [5]
    # The snapshot keeps the count for the report kernels.
    reopened = loading.Dataset.open(dataset.save(tmp_path / "snapshot"), dataset.config)
    assert reopened.report.unlinked == {"subscriptions": {"rows": 1, "running": 1, "arr": 3600.0}}
    result = data_overview(Study(reopened))
    (arr,) = [f for f in result.findings if "ARR" in f and "active customers" in f]
    assert arr == (
        "2 active customers paying $3.6k ARR (median $1.8k per customer; not counted: $3.6k "
        "ARR of 1 subscription with no end date and no account in the accounts table)."
    )
    # "2 active of 4" read as two churned: one did, one is not in the billing data.
    assert result.headline["Customers"] == "2 active of 4 (1 whose churn is unknown)"


def test_deals_without_an_account_are_out_of_the_win_rate_and_its_count(tmp_path):
    """The tile said "13% (...; 4,669 deals)" for a rate over 4,564 deals, and the lost-deal
    report said the 105 deals without an account "count in the overall win rate"."""
    from icp_research.analyses.deals import lost_deal_analysis

    deals = DEALS + "D5,,Closed Lost,2024-03-05,2024-05-01\nD6,,Closed Won,2024-03-05,2024-05-01\n"
    deals = deals.replace("D4,A4,Closed Won", "D4,A4,Closed Lost")
    path = write_project(
        tmp_path,
        {"accounts.csv": ACCOUNTS, "deals.csv": deals, "subscriptions.csv": SUBSCRIPTIONS},
        CONFIG.replace('"Closed Won" = "won"', '"Closed Won" = "won"\n"Closed Lost" = "lost"'),
    )
    study = Study(loading.load_tables(path))
    overview = data_overview(study)
    assert overview.totals["win_rate"]["n"] == 4
    assert overview.totals["win_rate"]["rate"] == 0.75
    assert overview.headline["Win rate"].endswith("; 4 deals)")
    (sentence,) = [f for f in overview.findings if "closed deals" in f]
    assert sentence.startswith("6 closed deals, 2 of them without an account and left out")
    caveats = lost_deal_analysis(study).caveats
    assert (
        "2 closed deals have no account: they are left out of every win rate (the intervals "
        "are clustered by account), as in the overview." in caveats
    )
    assert not [c for c in caveats if "count in the overall win rate" in c]


def test_billing_rows_at_accounts_the_accounts_export_lacks_name_their_arr(tmp_path):
    """A quarter's export after a CRM clean-up: merged or deleted companies are gone from the
    accounts, their subscriptions are not. "21 rows (4%) refer to accounts that are not in the
    accounts table ... left out of account analyses" named no ARR, and the overview's ARR fell
    by $299k without a word."""
    subscriptions = SUBSCRIPTIONS.replace(",2024-04-01,,300", "GONE,2024-04-01,,300")
    path = write_project(
        tmp_path,
        {"accounts.csv": ACCOUNTS, "deals.csv": DEALS, "subscriptions.csv": subscriptions},
        CONFIG,
    )
    dataset = loading.load_tables(path)
    (warning,) = [p for p in dataset.report.warnings if "not in the accounts table" in p.message]
    assert "left out of account analyses (1 of them with no end date, 3,600 ARR that the " in (
        warning.message
    )
    result = data_overview(Study(dataset))
    (arr,) = [f for f in result.findings if "active customers" in f]
    assert arr.endswith(
        "not counted: $3.6k ARR of 1 subscription with no end date and no account in the "
        "accounts table)."
    )
