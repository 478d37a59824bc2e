"""Customers the billing export does not cover: a won deal makes an account a customer, but
when churn is measured from subscriptions, an account without any subscription cannot be seen
to churn. Counting its time as exposure (and it as retained) made churn look several times
lower than it was on a CRM + Stripe sync where most won deals had no Stripe customer."""

from __future__ import annotations

import pandas as pd
import pytest

from icp_research.analyses import overview
from icp_research.data.loading import load_tables
from icp_research.data.study import Study

from .conftest import write_project

CONFIG = """
[project]
as_of = "2025-12-31"
[tables.accounts]
path = "accounts.csv"
[tables.opportunities]
path = "deals.csv"
[tables.subscriptions]
path = "subs.csv"
[tables.churn_events]
path = "churn.csv"
"""

ACCOUNTS = "account_id,name,industry\n" + "".join(
    f"A{i},Co {i},{'Software' if i % 2 else 'Retail'}\n" for i in range(1, 7)
)
# A1..A6 each won a deal on 2024-01-01; only A1-A3 are in the billing export.
DEALS = "opportunity_id,account_id,stage,created_at,closed_at,amount\n" + "".join(
    f"O{i},A{i},won,2023-11-01,2024-01-01,1200\n" for i in range(1, 7)
)
SUBS = (
    "subscription_id,account_id,start_date,end_date,arr\n"
    "S1,A1,2024-01-01,,1200\n"  # paying on the as-of date: 2 years of exposure
    "S2,A2,2024-01-01,2025-01-01,1200\n"  # churned after 1 year (366 days)
    "S3,A3,2024-01-01,,1200\n"
)
# A4 has no subscription but a churn event: the event says it churned.
CHURN = "account_id,churned_at\nA4,2024-07-01\n"


@pytest.fixture(scope="module")
def study(tmp_path_factory):
    files = {"accounts.csv": ACCOUNTS, "deals.csv": DEALS, "subs.csv": SUBS, "churn.csv": CHURN}
    config = write_project(tmp_path_factory.mktemp("unbilled"), files, CONFIG)
    return Study(load_tables(config))


def test_customers_without_a_subscription_have_unknown_churn(study):
    facts = study.facts.set_index("account_id")
    assert facts.attrs["churn_source"] == "subscriptions"
    assert facts["is_customer"].all()
    assert facts["churned"].tolist()[:4] == [False, True, False, True]
    assert facts.loc[["A5", "A6"], "churned"].isna().all()
    assert facts.loc[["A5", "A6"], "retained"].isna().all()
    assert facts.loc["A4", "churned_at"] == pd.Timestamp("2024-07-01")
    assert facts.attrs["churn_counts"]["unknown"] == 2


def test_their_time_is_not_exposure_and_the_reader_is_told(study):
    result = overview.data_overview(study)
    rate = result.totals["annual_churn_rate"]
    # A1 and A3: 730 days each; A2: 366 days; A4: 182 days; A5, A6: none.
    days = 730 + 730 + 366 + 182
    assert rate["events"] == 2
    assert rate["customer_years"] == pytest.approx(days / 365.25, rel=1e-12)
    assert rate["rate"] == pytest.approx(2 / (days / 365.25), rel=1e-12)
    assert result.totals["churned_share"]["customers"] == 4
    assert result.totals["active_customers"] == 2
    note = [c for c in result.caveats if "no subscription" in c]
    assert note == [
        "2 of the 6 customers have no subscription on 2025-12-31 (a won deal makes them "
        "customers) and no churn event: churn measured from subscriptions, which cannot say "
        "whether they churned, so they are left out of churn and retention (measured on the 4 "
        "other customers); if they are billed outside this export, add that billing, or give "
        "their churn as churn events or an accounts column (churn_source)."
    ]
