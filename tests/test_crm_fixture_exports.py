"""Two fixture exports used exactly as CRMs and billing systems write them (no hand edits):
``hubspot_stripe`` and ``salesforce_eu`` under tests/fixtures/exports/ (seeded generators
beside them). Every figure below is also computed by hand from the raw files with plain pandas.
"""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

import icp_research as icp
from icp_research.analyses import overview
from icp_research.data.validation import validate

from .conftest import FIXTURES

HUBSPOT = FIXTURES / "exports" / "hubspot_stripe"
SALESFORCE = FIXTURES / "exports" / "salesforce_eu"


@pytest.fixture(scope="module")
def hubspot():
    return icp.open_study(HUBSPOT / "icp.toml", reuse_snapshot=False)


@pytest.fixture(scope="module")
def salesforce():
    return icp.open_study(SALESFORCE / "icp.toml", reuse_snapshot=False)


def test_stripe_prices_in_cents_per_interval_and_seat_become_arr(hubspot):
    raw = pd.read_csv(HUBSPOT / "subscriptions.csv", dtype={"hubspot_company_id (metadata)": str})
    per_year = raw["Plan Interval"].map({"month": 12, "year": 1})
    by_hand = raw["Plan Amount"] / 100 * raw["Quantity"] * per_year
    subs = hubspot.raw_tables["subscriptions"]
    linked = raw["hubspot_company_id (metadata)"].notna()
    np.testing.assert_allclose(np.sort(subs["arr"].to_numpy()), np.sort(by_hand[linked].to_numpy()))
    # The 6 rows Stripe never linked to a HubSpot company are left out of the table (and so of
    # every account figure), counted with their ARR for the overview.
    assert subs["account_id"].isna().sum() == 0 and (~linked).sum() == 6
    assert hubspot.report.unlinked["subscriptions"]["rows"] == 6


def test_hubspot_lifecycle_stage_is_not_a_trait_and_internal_values_are_read(hubspot):
    assert "lifecycle_stage" not in hubspot.attributes.all
    assert hubspot.screening.outcome_like["lifecycle_stage"] == 'named like one: "lifecycle"'
    deals = pd.read_csv(HUBSPOT / "deals.csv", dtype={"Associated Company IDs": str})
    stages = hubspot.raw_tables["opportunities"]["stage"].value_counts().to_dict()
    won, lost = (
        (deals["Deal Stage"] == "closedwon").sum(),
        (deals["Deal Stage"] == "closedlost").sum(),
    )
    assert stages["won"] == won and stages["lost"] == lost
    assert stages["open"] == len(deals) - won - lost


def test_hubspot_run_date_is_the_last_thing_that_happened(hubspot):
    # Open deals' projected close dates reach into 2027; the export's last event is its date.
    assert hubspot.as_of == pd.Timestamp("2026-11-30")


def test_salesforce_report_loads_as_exported(salesforce):
    report = validate(SALESFORCE / "icp.toml")
    assert report.ok
    lines = report.lines()
    assert any("1 footer row dropped" in line or "footer rows dropped" in line for line in lines)
    assert any("15-character Salesforce ids" in line for line in lines)
    deals = salesforce.raw_tables["opportunities"]
    accounts = set(salesforce.raw_tables["accounts"]["account_id"])
    # Every deal found its account, short ids included; the footer is not a deal.
    assert len(deals) == 1000 and deals["account_id"].isin(accounts).all()
    # "1.391" employees with decimal = "," is 1391.
    raw = pd.read_csv(SALESFORCE / "Accounts.csv", sep=";", dtype=str, encoding="utf-8-sig")
    by_hand = pd.to_numeric(raw["Mitarbeiter"].str.replace(".", "", regex=False))
    got = salesforce.raw_tables["accounts"].set_index("account_id")["employees"]
    assert got.loc[raw["Account ID"]].fillna(-1).tolist() == by_hand.fillna(-1).tolist()


def test_salesforce_status_column_is_left_out_and_churn_comes_from_the_list(salesforce):
    assert "kundenstatus" in salesforce.screening.outcome_like
    churn = pd.read_csv(SALESFORCE / "churn.csv", sep=";", encoding="utf-8-sig")
    result = overview.data_overview(salesforce)
    rate = result.totals["annual_churn_rate"]
    assert rate["source"] == "churn_events"
    assert rate["events"] == churn["Account ID"].nunique()
    assert result.headline["Bookings (12 months)"].startswith("€")


PIPEDRIVE = FIXTURES / "exports" / "pipedrive_chargebee"


@pytest.fixture(scope="module")
def pipedrive():
    return icp.open_study(PIPEDRIVE / "icp.toml", reuse_snapshot=False)


def test_pipedrive_deals_as_exported(pipedrive):
    raw = pd.read_csv(PIPEDRIVE / "deals.csv", dtype=str)
    deals = pipedrive.raw_tables["opportunities"]
    kept = raw[raw["Deal - Status"] != "deleted"]
    # Deleted deals are left out; the rest keep their status.
    assert len(deals) == len(kept) and (raw["Deal - Status"] == "deleted").sum() > 0
    by_id = deals.set_index("opportunity_id")
    # closed_at is the won time of a won deal and the lost time of a lost one.
    closed = kept["Deal - Won time"].fillna(kept["Deal - Lost time"])
    expected = pd.to_datetime(closed).dt.normalize()
    got = by_id.loc[kept["Deal - ID"], "closed_at"].reset_index(drop=True)
    assert got.equals(expected.reset_index(drop=True).astype("datetime64[ns]"))


def test_chargebee_trials_are_not_customers_and_timestamps_are_dates(pipedrive):
    raw = pd.read_csv(PIPEDRIVE / "subscriptions.csv", dtype={"cf_pipedrive_org_id": "Int64"})
    deals = pd.read_csv(PIPEDRIVE / "deals.csv", dtype=str)
    as_of = pipedrive.as_of
    started = pd.to_datetime(raw["subscriptions.created_at"], unit="s").dt.normalize() <= as_of
    paid = set(raw.loc[started & (raw["subscriptions.mrr"] > 0), "cf_pipedrive_org_id"].dropna())
    won_at = pd.to_datetime(deals["Deal - Won time"]).dt.normalize()
    won = set(
        deals.loc[(deals["Deal - Status"] == "won") & (won_at <= as_of), "Deal - Organization ID"]
        .dropna()
        .astype(int)
    )
    facts = pipedrive.facts
    customers = set(facts.loc[facts["is_customer"].astype(bool), "account_id"].astype(int))
    assert customers == (paid | won) & set(facts["account_id"].astype(int))
    subs = pipedrive.raw_tables["subscriptions"]
    assert (
        subs["start_date"].min()
        == pd.to_datetime(raw["subscriptions.created_at"].min(), unit="s").normalize()
    )


def test_hubspot_churn_without_reasons_says_so_and_unbilled_customers_are_counted(hubspot):
    from icp_research.analyses import churn

    result = churn.churn_analysis(hubspot)
    assert not any("Top churn reasons" in line for line in result.findings)
    assert (
        "No churn reason is recorded for any churned customer: a churn_events table with a "
        "reason column would say why customers leave."
    ) in result.findings
    # Won deals whose company Stripe never billed: by hand, customers with no subscription.
    facts = hubspot.facts
    subs = hubspot.tables["subscriptions"]
    unbilled = facts["is_customer"] & ~facts["account_id"].isin(subs["account_id"])
    assert int(unbilled.sum()) == facts.attrs["churn_counts"]["unknown"] == 5
    assert facts.loc[unbilled, "churned"].isna().all()


def test_hubspot_churn_reasons_table_is_empty_without_any_reason(hubspot):
    from icp_research.analyses import churn

    result = churn.churn_analysis(hubspot)
    assert result.tables["churn_reasons"]["reason"].eq(churn.NO_REASON).all()
    assert churn.reasons_view(result).empty
