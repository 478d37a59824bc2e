"""Two fixture exports whose accounts are named rather than keyed, used exactly as the systems
write them (no hand edits): ``close_quickbooks`` (Close CRM leads and opportunities, billing as
a QuickBooks "Sales by Customer Detail" report: invoices, not subscriptions) and
``zoho_paddle`` (Zoho CRM deals that name their account, Paddle subscriptions with a billing
cycle and a status), under tests/fixtures/exports/ (seeded generators beside them). Every
figure below is also computed by hand from the raw files with plain pandas.
"""

from __future__ import annotations

import re

import numpy as np
import pandas as pd
import pytest

import icp_research as icp
from icp_research.data.validation import validate

from .conftest import FIXTURES

CLOSE = FIXTURES / "exports" / "close_quickbooks"
ZOHO = FIXTURES / "exports" / "zoho_paddle"
QBO = CLOSE / "qbo_sales_by_customer_detail.csv"
PLANS = {"Pro plan - monthly": 12.0, "Pro plan - annual": 1.0}  # invoices per year


@pytest.fixture(scope="module")
def close():
    return icp.open_study(CLOSE / "icp.toml", reuse_snapshot=False)


@pytest.fixture(scope="module")
def zoho():
    return icp.open_study(ZOHO / "icp.toml", reuse_snapshot=False)


@pytest.fixture(scope="module")
def close_lines():
    return validate(CLOSE / "icp.toml").lines()


@pytest.fixture(scope="module")
def zoho_lines():
    return validate(ZOHO / "icp.toml").lines()


# ------------------------------------------------------------------- Close + QuickBooks, by hand


def qbo_report() -> pd.DataFrame:
    """The QuickBooks report below its title block, every row as text."""
    return pd.read_csv(QBO, skiprows=4, dtype=str)


def qbo_lines() -> pd.DataFrame:
    """The report's transaction lines (rows with a date), with date and amount read."""
    raw = qbo_report()
    date = pd.to_datetime(raw["Date"], format="%m/%d/%Y", errors="coerce")
    amount = raw["Amount"].str.replace(",", "", regex=False).astype(float)
    return raw.assign(date=date, amount=amount)[date.notna()]


def plain_name(names: pd.Series) -> pd.Series:
    """Lower case, letters and digits only, without the legal forms these exports use."""
    words = names.str.lower().str.replace(r"[^a-z0-9]+", " ", regex=True)
    words = words.str.replace(r"\b(?:inc|llc|ltd|gmbh|co)\b", " ", regex=True)
    return words.str.split().str.join(" ")


def lead_of_customer() -> pd.Series:
    """Each QuickBooks customer name -> its Close lead id, by the plain name."""
    leads = pd.read_csv(CLOSE / "close_leads.csv", dtype=str)
    by_plain = leads.set_index(plain_name(leads["display_name"]))["id"]
    assert by_plain.index.is_unique
    names = pd.Series(qbo_lines()["Customer"].unique())
    return pd.Series(by_plain.loc[plain_name(names)].to_numpy(), index=names)


def hand_subscriptions() -> pd.DataFrame:
    """Subscriptions from the invoices by the rule the README states: per customer, plan
    invoices with a positive amount at most an interval apart (a quarter of one late, a month
    at most) at one ARR are one subscription; it runs at the latest invoice date when its next
    invoice is not yet that late."""
    lines = qbo_lines()
    plan = lines[lines["Product/Service"].isin(PLANS) & (lines["amount"] > 0)].copy()
    per_year = plan["Product/Service"].map(PLANS)
    plan["arr"] = plan["amount"] * per_year
    plan["days"] = 365.25 / per_year
    plan = plan.sort_values(["Customer", "date"])
    same = plan["Customer"].eq(plan["Customer"].shift())
    late = plan["days"].shift() + np.minimum(plan["days"].shift() * 0.25, 31.0)
    on_time = (plan["date"] - plan["date"].shift()).dt.days <= late
    new = ~(same & on_time & plan["arr"].eq(plan["arr"].shift()))
    plan["sub"] = new.cumsum()
    subs = plan.groupby("sub").agg(
        customer=("Customer", "first"),
        start=("date", "min"),
        last=("date", "max"),
        arr=("arr", "first"),
        days=("days", "first"),
    )
    latest = lines["date"].max()
    grace = np.minimum(subs["days"] * 0.25, 31.0)
    subs["running"] = subs["last"] + pd.to_timedelta(subs["days"] + grace, unit="D") > latest
    subs["account_id"] = subs["customer"].map(lead_of_customer())
    return subs


def test_quickbooks_report_rows_are_read_as_exported(close_lines):
    raw = qbo_report()
    lines = qbo_lines()
    subtotal = raw["Date"].str.startswith("Total for ")
    footer = raw["Date"].eq("TOTAL") | raw["Date"].str.startswith("Accrual basis")
    # Every row below the header is a line, a customer's subtotal or the footer.
    assert len(lines) + subtotal.sum() + footer.sum() == len(raw)
    assert subtotal.sum() == lines["Customer"].nunique() == 80
    assert f"{subtotal.sum()} subtotal rows left out" in "\n".join(close_lines)
    assert any('2 footer rows dropped ("TOTAL", "Accrual basis' in line for line in close_lines)
    onboarding = (lines["Product/Service"] == "Onboarding").sum()
    credits = (lines["Transaction Type"] == "Credit Memo").sum()
    assert credits and (lines.loc[lines["Transaction Type"] == "Credit Memo", "amount"] < 0).all()
    positive = lines["Product/Service"].isin(PLANS) & (lines["amount"] > 0)
    text = "\n".join(close_lines)
    assert f'{onboarding} rows whose interval is recoded to "drop"' in text
    assert f"{positive.sum()} invoice rows became {len(hand_subscriptions())} subscriptions" in text
    assert f"{credits} lines with no positive amount (credit notes" in text


def test_quickbooks_invoices_become_subscriptions_at_their_arr(close):
    hand = hand_subscriptions()
    subs = close.raw_tables["subscriptions"]
    # One subscription per customer and per change of seats; none from a subtotal row.
    assert len(subs) == len(hand) == 85
    assert (hand.groupby("customer").size() > 1).sum() == 5
    assert sorted(subs["arr"]) == pytest.approx(sorted(hand["arr"]))
    assert sorted(subs["start_date"]) == sorted(hand["start"])
    running = subs["end_date"].isna()
    assert running.sum() == hand["running"].sum() == 60
    assert subs.loc[running, "arr"].sum() == pytest.approx(hand.loc[hand["running"], "arr"].sum())
    # ARR at the latest invoice, per account, found by the customer's name.
    hand_arr = hand[hand["running"]].groupby("account_id")["arr"].sum()
    kit_arr = subs[running].groupby("account_id")["arr"].sum()
    assert kit_arr.sort_index().to_dict() == pytest.approx(hand_arr.sort_index().to_dict())
    facts = close.facts.set_index("account_id")
    assert facts["arr_current"].sum() == pytest.approx(hand_arr.sum())


def test_quickbooks_customers_are_found_by_their_name(close, close_lines):
    lines = qbo_lines()
    leads = pd.read_csv(CLOSE / "close_leads.csv", dtype=str)
    names = pd.Series(lines["Customer"].unique())
    differ = ~names.isin(leads["display_name"])
    assert differ.sum() == 7  # upper case, another legal form, a doubled space
    hand = hand_subscriptions()
    rows = hand["customer"].isin(names[differ]).sum()
    assert any(f"{rows} rows name their account differently" in line for line in close_lines)
    # The CRM says who paid: every lead with a won deal, and no other, is invoiced.
    opps = pd.read_csv(CLOSE / "close_opportunities.csv", dtype=str)
    won = set(opps.loc[opps["status_type"] == "won", "lead_id"])
    assert set(close.raw_tables["subscriptions"]["account_id"]) == won == set(hand["account_id"])


def test_quickbooks_churn_is_read_from_the_invoices(close, close_lines):
    hand = hand_subscriptions()
    facts = close.facts
    customers = set(facts.loc[facts["is_customer"].astype(bool), "account_id"])
    assert customers == set(hand["account_id"])
    running = set(hand.loc[hand["running"], "account_id"])
    churned = set(facts.loc[facts["churned"].fillna(False).astype(bool), "account_id"])
    assert churned == customers - running and len(churned) == 20
    assert any("20 of 80 customers churned" in line for line in close_lines)


def test_close_values_in_cents_per_period_become_annual_amounts(close, close_lines):
    raw = pd.read_csv(CLOSE / "close_opportunities.csv", dtype={"value": float})
    per_year = raw["value_period"].map({"monthly": 12, "annual": 1, "one_time": 1})
    monthly = (raw["value_period"] == "monthly").sum()
    assert per_year.notna().all() and monthly == 258
    assert any(
        f"{monthly} deal amounts per month or quarter were annualised" in line
        for line in close_lines
    )
    by_hand = pd.Series((raw["value"] / 100 * per_year).to_numpy(), index=raw["id"])
    deals = close.raw_tables["opportunities"].set_index("opportunity_id")
    assert deals.loc[by_hand.index, "amount"].to_numpy() == pytest.approx(by_hand.to_numpy())
    # Close has no lost date: a lost deal closes on its last update, a won one on date_won.
    won = raw["status_type"] == "won"
    closed = pd.to_datetime(raw["date_won"]).where(
        won, pd.to_datetime(raw["date_updated"], utc=True).dt.tz_localize(None)
    )
    got = deals.loc[raw["id"], "closed_at"].to_numpy()
    lost = (raw["status_type"] == "lost").to_numpy()
    want = closed.dt.normalize().to_numpy()
    assert (got[won.to_numpy()] == want[won.to_numpy()]).all()
    assert (got[lost] == want[lost]).all()
    stages = deals["stage"].value_counts().to_dict()
    assert stages == {"lost": 379, "won": 80, "open": 10}


# ------------------------------------------------------------------- Zoho + Paddle, by hand


def paddle() -> pd.DataFrame:
    raw = pd.read_csv(ZOHO / "paddle_subscriptions.csv", dtype=str)
    price = raw["items[0].price.unit_price.amount"].astype(float) / 100  # pence
    seats = raw["items[0].quantity"].astype(float)
    freq = raw["billing_cycle.frequency"].astype(float)
    per_year = raw["billing_cycle.interval"].map({"month": 12.0, "year": 1.0}) / freq
    arr = (price * seats * per_year).where(raw["status"] != "trialing", 0.0)
    return raw.assign(arr=arr, account_id=raw["custom_data.zoho_account_id"])


def paddle_paying() -> pd.DataFrame:
    """Paddle's subscriptions as the kit keeps them: trials (which pay nothing yet) left out."""
    raw = paddle()
    return raw[raw["status"] != "trialing"]


def zoho_deals() -> pd.DataFrame:
    """Zoho's deals with each one's account by hand: the id where it is given, else the name
    when one account alone has it; the rest have none."""
    accounts = pd.read_csv(ZOHO / "Accounts_001.csv", dtype=str, encoding="utf-8-sig")
    deals = pd.read_csv(ZOHO / "Deals_001.csv", dtype=str, encoding="utf-8-sig")
    owners = accounts.groupby("Account Name")["Record Id"].agg(["nunique", "first"])
    unique = owners.loc[owners["nunique"] == 1, "first"]
    by_name = deals["Account Name"].map(unique)
    return deals.assign(account=deals["Account Name.id"].fillna(by_name))


def test_paddle_prices_in_pence_per_billing_cycle_and_seat_become_arr(zoho):
    raw = paddle_paying()
    linked = raw["account_id"].notna()
    subs = zoho.raw_tables["subscriptions"]
    np.testing.assert_allclose(np.sort(subs["arr"]), np.sort(raw.loc[linked, "arr"]))
    # The 11 rows Paddle never linked to a Zoho account are left out of the table (and so of
    # every account figure), counted with their ARR for the overview.
    assert subs["account_id"].isna().sum() == 0 and (~linked).sum() == 11
    assert zoho.report.unlinked["subscriptions"]["rows"] == 11
    # Billed every 3 months: 4 bills a year, not 12.
    quarterly = raw["billing_cycle.frequency"] == "3"
    assert quarterly.sum() == 28
    row = raw[quarterly & linked & (raw["status"] == "active")].iloc[0]
    price = float(row["items[0].price.unit_price.amount"]) / 100
    assert row["arr"] == pytest.approx(price * 4 * float(row["items[0].quantity"]))
    assert row["arr"] in set(subs.loc[subs["account_id"] == row["account_id"], "arr"])


def test_paddle_status_paused_runs_and_trialing_pays_nothing(zoho):
    raw = paddle()
    raw = raw[raw["account_id"].notna()]
    facts = zoho.facts.set_index("account_id")
    status = raw.set_index("account_id")["status"]
    assert raw["account_id"].is_unique  # one Paddle subscription per account
    paused = status.index[status == "paused"]
    trials = status.index[status == "trialing"]
    canceled = status.index[status == "canceled"]
    assert len(paused) == 12 and len(trials) == 7 and len(canceled) == 40
    # Paused: a customer, not churned, at its ARR.
    assert facts.loc[paused, "is_customer"].all() and not facts.loc[paused, "churned"].any()
    arr = raw.set_index("account_id")["arr"]
    assert facts.loc[paused, "arr_current"].to_numpy() == pytest.approx(arr[paused].to_numpy())
    # Trialing: no ARR and not a customer (no deal was won by these accounts).
    assert not facts.loc[trials, "is_customer"].any()
    assert (facts.loc[trials, "arr_current"].fillna(0) == 0).all()
    assert facts.loc[canceled, "churned"].all()
    running = raw["status"].isin(["active", "past_due", "paused"])
    assert facts["arr_current"].sum() == pytest.approx(raw.loc[running, "arr"].sum())
    assert facts["arr_current"].sum() == pytest.approx(1_232_950.0)


def test_zoho_deals_find_their_account_by_id_or_by_name(zoho, zoho_lines):
    deals = zoho_deals()
    blank = deals["Account Name.id"].isna()
    shared = blank & deals["account"].isna()
    assert blank.sum() == 104 and shared.sum() == 2
    kit = zoho.raw_tables["opportunities"].set_index("opportunity_id")
    kept = deals[deals["account"].notna()]
    # The two rows that name an account two accounts share are left out, with a warning.
    assert len(kit) == len(kept) == len(deals) - 2
    assert (kit.loc[kept["Record Id"], "account_id"].to_numpy() == kept["account"]).all()
    assert any("2 rows have a name that several accounts share" in line for line in zoho_lines)
    assert any(
        "for the 104 rows without one: 102 of 104 rows matched" in line for line in zoho_lines
    )
    # "£8,130.00" on "27/08/2023": pounds and UK dates.
    amount = kept["Amount"].str.replace(r"[£,]", "", regex=True).astype(float)
    assert kit.loc[kept["Record Id"], "amount"].to_numpy() == pytest.approx(amount.to_numpy())
    closing = pd.to_datetime(kept["Closing Date"], format="%d/%m/%Y")
    assert (kit.loc[kept["Record Id"], "closed_at"].to_numpy() == closing.to_numpy()).all()


def test_zoho_customers_are_won_deals_and_paid_subscriptions(zoho):
    deals = zoho_deals()
    won = set(deals.loc[deals["Stage"] == "Closed Won", "account"].dropna())
    raw = paddle()
    paid = set(raw.loc[raw["account_id"].notna() & (raw["arr"] > 0), "account_id"])
    facts = zoho.facts
    customers = set(facts.loc[facts["is_customer"].astype(bool), "account_id"])
    assert customers == won | paid and len(customers) == 179
    churned = facts["churned"].fillna(False).astype(bool)
    unknown = facts["is_customer"].astype(bool) & facts["churned"].isna()
    # Customers whose Paddle row has no Zoho id: billed, but their churn cannot be seen.
    assert unknown.sum() == len(won - set(raw["account_id"].dropna())) == 11
    assert churned.sum() == (raw["status"].eq("canceled") & raw["account_id"].notna()).sum() == 40


def test_validate_counts_churn_as_the_run_does(zoho, zoho_lines):
    counts = zoho.facts.attrs["churn_counts"]
    measured = counts["customers"] - counts["unknown"]
    line = next(line for line in zoho_lines if "customers churned as of" in line)
    assert re.search(rf"\b{counts['churned']} of {measured} customers churned", line), line


def test_zoho_account_type_is_not_a_trait(zoho):
    accounts = pd.read_csv(ZOHO / "Accounts_001.csv", dtype=str, encoding="utf-8-sig")
    assert {"Customer", "Prospect"} <= set(accounts["Account Type"])
    assert "account_type" in zoho.screening.outcome_like
    assert "account_type" not in zoho.attributes.all


def test_no_uncertain_rule_is_listed_twice(close, zoho):
    from icp_research.analyses.blueprint import build_blueprint

    for study in (close, zoho):
        texts = [r.text for r in build_blueprint(study).uncertain]
        assert len(texts) == len(set(texts)), texts


def test_voided_invoices_are_left_out_and_paid_or_authorised_ones_bill(tmp_path):
    """Xero's Invoices export: a VOIDED invoice re-issued the same day was added to the real
    one ("lines of one date add up"), tripling an annual customer's ARR for a year."""
    from icp_research.data import loading

    from .conftest import write_project

    accounts = "id,Name,Industry\nA1,Acme Ltd,Retail\nA2,Bolt Ltd,Media\n"
    rows = ["ContactName,InvoiceDate,Description,UnitAmount,Status"]
    for month in range(1, 10):
        rows.append(f"Acme Ltd,2026-{month:02d}-05,Pro plan - monthly,100.00,PAID")
    rows.append("Bolt Ltd,2026-02-10,Pro plan - annual,7650.00,VOIDED")
    rows.append("Bolt Ltd,2026-02-10,Pro plan - annual,7650.00,AUTHORISED")
    config = (
        '[project]\nname = "xero"\nas_of = "2026-09-30"\n'
        '[tables.accounts]\npath = "accounts.csv"\n[tables.accounts.columns]\n'
        'account_id = "id"\nname = "Name"\nindustry = "Industry"\n'
        '[tables.subscriptions]\npath = "invoices.csv"\ninvoices = true\n'
        'account_id_from = "accounts.name"\n[tables.subscriptions.columns]\n'
        'name = "ContactName"\nstart_date = "InvoiceDate"\nprice = "UnitAmount"\n'
        'interval = "Description"\nstatus = "Status"\n'
        '[tables.subscriptions.values.interval]\n"Pro plan - monthly" = "month"\n'
        '"Pro plan - annual" = "year"\n'
    )
    path = write_project(
        tmp_path, {"accounts.csv": accounts, "invoices.csv": "\n".join(rows) + "\n"}, config
    )
    dataset = loading.load_tables(path)
    subs = dataset.tables["subscriptions"].set_index("account_id")
    assert subs.loc["A2", "arr"] == 7650.0
    assert subs.loc["A1", "arr"] == 1200.0
    assert not dataset.report.errors
    (note,) = [p for p in dataset.report.problems if "voids them" in p.message]
    assert note.message.startswith('1 row has a status that voids them ("VOIDED")')
    assert not [p for p in dataset.report.warnings if "not a known billing status" in p.message]
