"""A Microsoft Dynamics 365 Sales export beside a Recurly subscriptions export, used exactly as
the systems write them (no hand edits): ``dynamics_recurly`` under tests/fixtures/exports/
(seeded generator beside it). Account GUIDs in capitals between braces in Dynamics, in lower
case without braces in Recurly; opportunities that name their account (or a Contact); Recurly's
states, plural interval units, future subscriptions and free trials that ran out unpaid. The
headline figures equal the generator's ground truth; the rest is counted by hand from the raw
files with plain pandas.
"""

from __future__ import annotations

import json

import pandas as pd
import pytest

import icp_research as icp
from icp_research.analyses import churn, overview
from icp_research.analyses.blueprint import build_blueprint
from icp_research.data.validation import validate
from icp_research.methods.stats import poisson_rate_ci

from .conftest import FIXTURES

DYNAMICS = FIXTURES / "exports" / "dynamics_recurly"
TRUTH = json.loads((DYNAMICS / "ground_truth.json").read_text(encoding="utf-8"))


@pytest.fixture(scope="module")
def dynamics():
    return icp.open_study(DYNAMICS / "icp.toml", reuse_snapshot=False)


@pytest.fixture(scope="module")
def dynamics_lines():
    return validate(DYNAMICS / "icp.toml").lines()


def recurly() -> pd.DataFrame:
    return pd.read_csv(DYNAMICS / "subscriptions_export.csv", dtype=str)


def opportunities() -> pd.DataFrame:
    return pd.read_csv(DYNAMICS / "Open and Closed Opportunities.csv", dtype=str)


def accounts() -> pd.DataFrame:
    return pd.read_excel(DYNAMICS / "Active Accounts 11-30-2026 4-45-12 PM.xlsx", dtype=str)


@pytest.mark.parametrize(
    ("key", "as_of"), [("at_export", "2026-11-30"), ("at_2026q3_end", "2026-09-30")]
)
def test_customers_churn_and_arr_equal_the_planted_truth(dynamics, key, as_of):
    truth = TRUTH[key]
    study = dynamics if as_of == "2026-11-30" else dynamics.at(as_of)
    assert study.as_of == pd.Timestamp(as_of)
    facts = study.facts
    assert int(facts["is_customer"].sum()) == truth["customers"]  # 342 / 320
    assert int(facts["churned"].fillna(False).astype(bool).sum()) == truth["churned"]  # 69 / 63
    assert round(float(facts["arr_current"].sum()), 2) == truth["arr"]  # 5,192,906.73 / ...
    totals = overview.data_overview(study).totals
    assert totals["customers"] == truth["customers"]
    assert round(totals["arr"], 2) == truth["arr"]
    overall = churn.churn_analysis(study).overall
    # Churn is measured on the customers billing shows (a won deal whose subscription is
    # still "future" makes a customer whose churn cannot be seen yet).
    assert overall["customers"] == truth["customers_billed"]
    assert overall["churned"] == truth["churned"]
    assert overall["customer_years"] == pytest.approx(truth["customer_years"], abs=1e-4)
    assert overall["churn_rate"] == pytest.approx(truth["churn_per_customer_year"], abs=1e-6)
    low, high = poisson_rate_ci(truth["churned"], truth["customer_years"], study.alpha)[1:]
    assert overall["churn_rate_ci_low"] == pytest.approx(low, rel=1e-5)
    assert overall["churn_rate_ci_high"] == pytest.approx(high, rel=1e-5)
    assert low < truth["churn_per_customer_year"] < high


def test_at_the_export_date_the_figures_are(dynamics):
    truth = TRUTH["at_export"]
    assert (truth["customers"], truth["churned"], truth["arr"]) == (342, 69, 5_192_906.73)
    assert truth["churn_per_customer_year"] == pytest.approx(
        0.1400, abs=1e-4
    )  # from the subscriptions signed by a deal


def test_expired_trials_are_neither_customers_nor_churns(dynamics, dynamics_lines):
    raw = recurly()
    trial = raw["state"].eq("expired") & raw["expires_at"].eq(raw["trial_ends_at"])
    assert trial.sum() == TRUTH["expired_trials"] == 92
    assert any(
        "92 subscriptions ended on or before their trial end: they were only free trials and "
        "never paid, so they are left out" in line
        for line in dynamics_lines
    )
    # Accounts whose only subscriptions are such trials and that won no deal.
    paid = set(raw.loc[~trial, "account_code"])
    only_trials = set(raw.loc[trial, "account_code"]) - paid
    deals = opportunities()
    won_names = set(deals.loc[deals["Status"] == "Won", "Potential Customer"])
    accts = accounts()
    guid = accts["(Do Not Modify) Account"].str.strip("{}").str.lower()
    won_ids = set(guid[accts["Account Name"].isin(won_names)])
    never = only_trials - won_ids
    assert len(never) == TRUTH["expired_trial_accounts_never_paid"] == 80
    facts = dynamics.facts.assign(guid=dynamics.facts["account_id"].str.strip("{}").str.lower())
    facts = facts.set_index("guid")
    assert not facts.loc[sorted(never), "is_customer"].any()
    assert not facts.loc[sorted(never), "churned"].fillna(False).astype(bool).any()
    # in_trial and future subscriptions pay nothing yet: left out, each with its note.
    states = raw["state"].value_counts()
    assert (states["in_trial"], states["future"]) == (31, 9)
    text = "\n".join(dynamics_lines)
    assert "31 subscriptions are in trial by their status" in text
    assert '9 subscriptions have not started by their status ("future")' in text


def test_recurly_guids_find_their_dynamics_accounts(dynamics, dynamics_lines):
    raw = recurly()
    accts = accounts()
    ids = set(accts["(Do Not Modify) Account"])
    assert ids and all(i.startswith("{") and i == i.upper() for i in ids)
    assert not raw["account_code"].isin(ids).any()  # none written the same way
    kept = ~raw["state"].isin(["in_trial", "future"]) & ~(
        raw["state"].eq("expired") & raw["expires_at"].eq(raw["trial_ends_at"])
    )
    assert kept.sum() == 345
    assert any(
        "345 rows carry GUIDs written in another case or without the braces of the ids in "
        "accounts; each was matched to the id that is the same GUID" in line
        for line in dynamics_lines
    )
    subs = dynamics.raw_tables["subscriptions"]
    assert len(subs) == 345 and subs["account_id"].isin(ids).all()
    by_hand = "{" + raw.loc[kept, "account_code"].str.upper() + "}"
    assert sorted(subs["account_id"]) == sorted(by_hand)


def test_opportunities_naming_a_contact_count_as_their_own_with_a_warning(dynamics, dynamics_lines):
    deals = opportunities()
    names = accounts()["Account Name"]
    contacts = ~deals["Potential Customer"].isin(names)
    shared = deals["Potential Customer"].isin(names[names.duplicated()])
    assert contacts.sum() == TRUTH["opportunities_on_contacts"] == 12
    assert shared.sum() == 6
    text = "\n".join(dynamics_lines)
    # Deals are deals: one whose customer is no account (a contact) counts in the win rate
    # under that name, without traits; one whose name two accounts share cannot be placed.
    assert '12 rows have a name that is not in accounts (1%; e.g. "' in text
    assert "6 rows have a name that several accounts share" in text
    assert (
        "account_id looked up through accounts.name: 1,541 of 1,559 rows matched, 12 kept "
        "under their own name, 6 left out" in text
    )
    kit = dynamics.raw_tables["opportunities"].set_index("opportunity_id")
    assert len(kit) == len(deals) - 6 == 1553
    ids = deals["(Do Not Modify) Opportunity"]
    assert not kit.index.isin(ids[shared]).any()
    on_contacts = deals[contacts & ~shared]
    assert (
        kit.loc[on_contacts["(Do Not Modify) Opportunity"], "account_id"].tolist()
        == on_contacts["Potential Customer"].str.strip().tolist()
    )


def test_status_and_status_reason_are_not_predictors(dynamics):
    raw = accounts()
    assert set(raw["Status"]) == set(raw["Status Reason"]) == {"Active", "Inactive"}
    earlier = dynamics.at("2026-03-31")
    for study in (dynamics, earlier):
        for column in ("status", "status_reason"):
            assert column not in study.attributes.all
            assert study.attributes.excluded[column].startswith("looks like an outcome: ")
    assert dynamics.screening.outcome_like["status"] == 'named like one: "status"'


def test_the_icp_statement_names_financial_services(dynamics):
    blueprint = build_blueprint(dynamics)
    assert blueprint.drawn
    assert blueprint.statement == (
        "This product fits mid-size Financial Services companies (200–1,999 employees)."
    )
    (rule,) = [r for r in blueprint.include if r.role == "filter"]
    assert rule.text == "industry = Financial Services and 200 <= employees < 2,000"
    # Planted: the segment wins at 0.50, the rest at 0.22.
    truth = TRUTH["at_export"]
    assert truth["icp"]["win_rate"] > 2 * truth["other"]["win_rate"]


def test_the_blueprint_summary_names_what_the_icp_rests_on(dynamics):
    from icp_research.analyses.blueprint.findings import findings_of

    findings = findings_of(build_blueprint(dynamics))
    (rests,) = [f for f in findings if f.startswith("It rests on ")]
    # No single trait held up, the combination did: the summary said "It rests on 0
    # characteristics ...: who the company is ()".
    assert rests == (
        "It rests on a combination of industry and employees that predicted success together "
        "(no one of them did alone) and held up in the confirmation quarters."
    )
    (sure,) = [f for f in findings if f.startswith("How sure: ")]
    assert "1 of 1 defining rule held up in the confirmation quarters" in sure


def test_arr_in_two_currencies_says_so_on_the_dashboard(dynamics):
    """USD and EUR subscriptions are added as they are (no exchange rates): validate warned,
    but the ARR tile showed one figure as if it were dollars."""
    from icp_research.analyses.overview import data_overview

    overview = data_overview(dynamics)
    headline = overview.headline
    assert headline["ARR"].endswith(" (USD and EUR added as they are, not converted)")
    # The sum is in no one currency: the generic currency sign, not dollars.
    assert headline["ARR"].startswith("¤5.2M")
    # The summary's sentence, the one that gets quoted, says it too (it said "paying $5.2M ARR
    # (median ...)" as if in dollars).
    (paying,) = [f for f in overview.findings if " active customers paying " in f]
    assert "¤5.2M ARR (USD and EUR added as they are, not converted; median " in paying
    # Every rate tile names what it rests on.
    n = overview.totals["win_rate"]["n"]
    assert n > 100 and headline["Win rate"].endswith(f"; {n:,} deals)")


def test_the_churn_report_measures_the_trials_of_the_billing_export(dynamics):
    """It said "No trial data (no subscription plan named like 'trial')" beside the 123 trial
    subscriptions the load had just read by their status and trial end, and then that they
    "are not counted as conversion". The trials here are prospects' that ran out: none
    converted."""
    from icp_research.analyses.churn import trial_conversion

    result = trial_conversion(dynamics)
    overall = result.summary.iloc[0]
    # 89 accounts whose trials ran out: 80 never paid, 9 have a subscription that has not
    # started by the export (Recurly's "future": signed, not paying yet). 5 of them ran out
    # less than 90 days before the export: they may still pay, and are undecided.
    assert TRUTH["subscription_states"]["future"] == 9
    assert overall["trials"] == TRUTH["expired_trial_accounts_never_paid"] + 9 - 5
    assert overall["converted"] == 0 and overall["undecided"] == 31 + 5
    assert result.findings == [
        "Trials (the billing export's free trials (trial end or status)): 0% (0%–4%, n=84) "
        "converted to paid within 90 days of the trial's end."
    ]
    assert result.caveats == [
        "36 trials were still running on 2026-11-30, or ended less than 90 days before it "
        "without paying yet, and are not counted."
    ]
