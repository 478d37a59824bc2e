"""An Attio CRM export (Companies and Deals) beside a Chargebee subscriptions export, used as
the systems write them: ``attio_chargebee`` under tests/fixtures/exports/ (seeded generator
beside it). Chargebee keyed by either of a company's domains ("acme.com, acme.io" in Attio),
some in another case or behind "https://www."; size and revenue as bands ("251-1K",
"$1M-$10M"); "Categories", a multi-select in one fixed option order with "B2B" first on nearly
every company, not named in the config; emoji stages; deals naming their company by name, a few
written differently. The headline figures equal the generator's ground truth; the rest is
counted by hand from the raw files with plain pandas.
"""

from __future__ import annotations

import json
import re

import numpy as np
import pandas as pd
import pytest

import icp_research as icp
from icp_research.analyses import churn, overview
from icp_research.analyses.blueprint import build_blueprint
from icp_research.analyses.deals import lost_deal_analysis
from icp_research.analyses.significance import predictor_significance
from icp_research.data.validation import validate

from .conftest import FIXTURES

ATTIO = FIXTURES / "exports" / "attio_chargebee"
CONFIG = ATTIO / "icp.toml"
TRUTH = json.loads((ATTIO / "ground_truth.json").read_text(encoding="utf-8"))
# Each band's lower end, as the kit reads it.
EMPLOYEE_BANDS = {"1-10": 1, "11-50": 11, "51-250": 51, "251-1K": 251, "1K-5K": 1000,
                  "5K-10K": 5000, "10K+": 10000}  # fmt: skip
BAND_STARTS = set(EMPLOYEE_BANDS.values())
REVENUE_BANDS = {"$0-$1M": 0, "$1M-$10M": 1e6, "$10M-$50M": 1e7, "$50M-$100M": 5e7,
                 "$100M-$250M": 1e8, "$250M-$500M": 2.5e8, "$500M-$1B": 5e8}  # fmt: skip


@pytest.fixture(scope="module")
def study():
    return icp.open_study(CONFIG, reuse_snapshot=False)


@pytest.fixture(scope="module")
def report():
    return validate(CONFIG)


@pytest.fixture(scope="module")
def blueprint(study):
    return build_blueprint(study, backtest_quarters=1, n_boot=100)


def read(name: str) -> pd.DataFrame:
    return pd.read_csv(ATTIO / name, dtype=str, keep_default_na=False)


def bare(domain: str) -> str:
    return re.sub(r"^www\.", "", re.sub(r"^[a-z]+://", "", domain.strip().lower()))


def test_validate_reports_no_error_and_the_config_names_no_multi_select(report):
    assert report.ok, report.lines("error")
    assert "multi_select" not in CONFIG.read_text(encoding="utf-8")


def test_customers_churn_and_arr_equal_the_planted_truth(study):
    facts = study.facts
    assert int(facts["is_customer"].sum()) == TRUTH["customers"]  # 311
    assert int(facts["churned"].fillna(False).astype(bool).sum()) == TRUTH["churned"]  # 79
    assert int((facts["arr_current"] > 0).sum()) == TRUTH["active_customers"]  # 232
    assert round(float(facts["arr_current"].sum()), 2) == TRUTH["arr"]  # 4,102,800.08
    totals = overview.data_overview(study).totals
    assert totals["customers"] == TRUTH["customers"]
    assert totals["active_customers"] == TRUTH["active_customers"]
    assert round(totals["arr"], 2) == TRUTH["arr"]
    overall = churn.churn_analysis(study).overall
    assert overall["customers"] == TRUTH["churn"]["customers"]
    assert overall["churned"] == TRUTH["churn"]["churned"]
    assert overall["customer_years"] == pytest.approx(TRUTH["churn"]["customer_years"], abs=1e-5)
    assert overall["churn_rate"] == pytest.approx(
        TRUTH["churn"]["churn_per_customer_year"], abs=1e-6
    )


def test_the_new_business_win_rate_equals_the_truth(study):
    totals = overview.data_overview(study).totals
    won, lost = TRUTH["deals_won"], TRUTH["deals_lost"]
    assert totals["deals"] == {"won": won, "lost": lost, "open": TRUTH["deals_open"]}
    assert totals["win_rate"]["n"] == won + lost == 1318
    assert totals["win_rate"]["rate"] == pytest.approx(won / (won + lost), abs=1e-12)
    assert round(won / (won + lost), 6) == TRUTH["win_rate"]


def test_billing_is_found_through_any_of_a_companys_domains(study, report):
    companies = read("attio_companies.csv")
    owner = {}
    for record, cell in zip(companies["Record ID"], companies["Domains"], strict=True):
        domains = [d.strip() for d in cell.split(",")]
        owner.update({d: (record, i) for i, d in enumerate(domains)})
    billing = read("chargebee_subscriptions.csv")
    keys = billing["customers.cf_company_domain"]
    found = [owner[bare(k)] for k in keys]
    # The shape's quirks are there: the second domain, a scheme and "www.", another case.
    second = sum(i == 1 for _, i in found)
    scheme = int(keys.str.startswith("https://www.").sum())
    case = int((keys != keys.str.lower()).sum())
    assert second == TRUTH["billing_rows_keyed_by_second_domain"] > 0
    assert scheme == TRUTH["billing_rows_written"]["scheme"] > 0
    assert case == TRUTH["billing_rows_written"]["case"] > 0
    assert "account_id looked up through accounts.domain: 311 of 311 rows matched" in "\n".join(
        report.lines()
    )
    # Each subscription is its company's, at the plan amount x 12 / the period in months.
    months = billing["subscriptions.billing_period_unit"].map({"month": 1, "year": 12})
    arr = billing["subscriptions.plan_amount"].astype(float) * 12 / months
    by_hand = pd.Series(arr.to_numpy(), index=[record for record, _ in found]).round(2)
    kit = study.raw_tables["subscriptions"].set_index("account_id")["arr"].astype(float).round(2)
    assert len(kit) == len(by_hand) == TRUTH["billing_rows"]
    assert kit.to_dict() == by_hand.to_dict()


def test_deals_find_their_company_by_name_however_written(study, report):
    companies = read("attio_companies.csv")

    def normal(name: str) -> str:
        words = re.sub(r"[^a-z0-9]+", " ", name.lower()).split()
        return " ".join(w for w in words if w not in {"inc", "ltd", "gmbh", "llc"})

    by_name = dict(zip(companies["Name"].map(normal), companies["Record ID"], strict=True))
    assert len(by_name) == len(companies)  # no two companies share a normal name
    deals = read("attio_deals.csv")
    differently = ~deals["Associated company"].isin(set(companies["Name"]))
    assert differently.sum() == TRUTH["deal_rows_naming_the_company_differently"] == 77
    assert deals.loc[differently, "Associated company"].str.contains(", Inc.|[A-Z]{5}").any()
    text = "\n".join(report.lines())
    assert "77 rows name their account differently from the accounts table" in text
    assert "account_id looked up through accounts.name: 1,391 of 1,391 rows matched" in text
    expected = pd.Series(
        deals["Associated company"].map(normal).map(by_name).to_numpy(), index=deals["Record ID"]
    )
    kit = study.raw_tables["opportunities"].set_index("opportunity_id")["account_id"]
    assert len(kit) == TRUTH["deals"] == 1391
    assert kit.astype(str).to_dict() == expected.to_dict()


def test_categories_are_found_as_a_multi_select_without_configuration(study):
    raw = read("attio_companies.csv")["Categories"]
    # Attio writes the options in one fixed order, "B2B" first on nearly every company.
    assert (raw.str.startswith("B2B")).sum() == TRUTH["companies_listing_b2b"] == 970
    (selection,) = study.attributes.multi_select.values()
    assert (selection.source, selection.separator, selection.detected) == ("Categories", ",", True)
    assert selection.items["B2B"] == TRUTH["companies_listing_b2b"]
    assert selection.items["Fintech"] == TRUTH["companies_listing_fintech"]
    assert len(selection.items) == 11
    assert "categories: Fintech" in study.attributes.all
    assert "categories" not in study.attributes.all
    # "City, Country" has fixed places: one value, not a list.
    assert "primary_location" in study.attributes.categorical
    facts = study.facts.set_index("account_id")
    companies = read("attio_companies.csv").set_index("Record ID")
    listed = companies["Categories"].str.split(", ").map(lambda items: "Fintech" in items)
    blank = companies["Categories"].eq("")
    assert blank.any()
    fintech = facts.loc[companies.index, "categories: Fintech"].to_numpy()
    assert pd.isna(fintech[blank.to_numpy()]).all()  # a blank cell is unknown, not "no"
    assert (fintech[~blank.to_numpy()] == listed[~blank].to_numpy()).all()


def test_bands_are_read_at_their_lower_ends(study):
    companies = read("attio_companies.csv").set_index("Record ID")
    facts = study.facts.set_index("account_id").loc[companies.index]
    bands = companies["Employee range"].map(EMPLOYEE_BANDS)
    assert (facts["employees"].to_numpy() == bands.to_numpy()).all()
    revenue = companies["Estimated ARR range"].map(REVENUE_BANDS)
    assert (facts["annual_revenue"].to_numpy() == revenue.to_numpy()).all()
    by_band = facts["employees"].value_counts()
    assert by_band[51] == TRUTH["companies_by_employee_range"]["51-250"]
    assert by_band[1000] == TRUTH["companies_by_employee_range"]["1K-5K"]
    assert by_band[10000] == TRUTH["companies_by_employee_range"]["10K+"]


def test_monthly_payers_and_fintech_churn_faster(study):
    planted = TRUTH["planted"]["churn"]
    # The generator's truth: monthly payers churn over 3x, Fintech about 2x as fast.
    assert (
        planted["monthly"]["churn_per_customer_year"]
        > 3 * planted["annual"]["churn_per_customer_year"]
    )
    assert (
        planted["fintech"]["churn_per_customer_year"]
        > 2 * planted["not_fintech"]["churn_per_customer_year"]
    )
    table = churn.churn_analysis(study).tables["churn_by_attribute"]
    rows = table.set_index(["attribute", "level"])
    monthly = rows.loc[("billing_period", "monthly")]
    assert (monthly["customers"], monthly["churned"]) == (
        planted["monthly"]["customers"],
        planted["monthly"]["churned"],
    )
    assert monthly["significant"] and monthly["rate_ratio"] > 1.5
    assert monthly["churn_rate"] == pytest.approx(
        planted["monthly"]["churn_per_customer_year"], abs=1e-6
    )
    fintech = table[(table["attribute"] == "categories: Fintech") & (table["level"] == "True")]
    (fintech,) = fintech.to_dict("records")
    assert (fintech["customers"], fintech["churned"]) == (
        planted["fintech"]["customers"],
        planted["fintech"]["churned"],
    )
    assert fintech["significant"] and fintech["rate_ratio"] > 1.5
    # Nothing else predicts churn.
    assert set(table.loc[table["significant"], "attribute"]) == {
        "billing_period",
        "categories: Fintech",
    }


def test_only_employees_predicts_winning(study):
    truth = TRUTH["planted"]["win_rate_by_employee_range"]
    assert truth["hot"]["rate"] > 1.8 * truth["other"]["rate"]
    # The lost-deal report's best size bin is the two planted bands, counted as the truth.
    table = lost_deal_analysis(study).tables["win_rate_by_attribute"]
    (hot,) = table[table["rule"] == "51 <= employees < 1,000"].to_dict("records")
    assert (hot["deals"], hot["events"]) == (truth["hot"]["closed"], truth["hot"]["won"])
    assert hot["rate_rest"] == pytest.approx(truth["other"]["won"] / truth["other"]["closed"])
    result = predictor_significance(study)
    (recommended,) = result.recommended
    assert recommended["predictor"] == "employees"
    assert recommended["favour"] == ["51 to < 1,000"]
    (level,) = recommended["levels"]
    assert (level["low"], level["high"]) == (51, 1000)


def test_the_icp_is_51_to_999_employees_bounded_by_band_starts(blueprint):
    assert blueprint.drawn
    # Whole bands: 51-250 and 251-1K, the planted ones; never a midpoint (125.5, 150 ...).
    assert blueprint.statement == "This product fits mid-size companies (51–999 employees)."
    (rule,) = blueprint.include
    assert rule.role == "filter" and rule.attribute == "employees"
    (condition,) = rule.conditions
    assert (condition.attribute, condition.operator) == ("employees", "between")
    assert list(condition.value) == [51, 1000]
    assert set(condition.value) <= BAND_STARTS
    assert rule.text == "51 <= employees < 1,000"
    assert not blueprint.exclude


def test_the_fit_score_gives_large_companies_fewer_points(blueprint):
    (employees,) = blueprint.scorecard.to_dict()["scorecard"]["attributes"]
    assert employees["name"] == "employees"
    assert set(employees["edges"]) <= BAND_STARTS
    bins = {b["label"]: b for b in employees["bins"]}
    inside = [b for b in employees["bins"] if b["lower"] is not None and 51 <= b["lower"] < 1000]
    assert inside and all(b["upper"] is not None and b["upper"] <= 1000 for b in inside)
    assert bins[">= 1,000"]["points"] < min(b["points"] for b in inside)


def test_the_cox_model_judges_fintech_on_known_rows_and_spends_nothing_on_b2b(study):
    # The two customers with a blank Categories cell are missing on every item at once: counted,
    # they made "categories: Fintech" travel with "categories: B2B" (Cramér's V 0.71) and left
    # the real churn driver out of the model; over the known rows the two are unrelated.
    cox = churn.churn_analysis(study).cox
    left_out = " ".join(cox.caveats)
    assert "categories: Fintech (travels with" not in left_out
    # "B2B", on 97% of the companies, spends no parameter of the model.
    assert "categories: B2B (nearly constant: 97% of customers in one level)" in left_out
    assert "categories: B2B" not in set(cox.summary["covariate"])


def test_size_segments_begin_where_bands_begin(study):
    # The default segments begin at 200 and 2,000 employees, inside the bands 51-250 and
    # 1K-5K: "2,000+ employees" was the 5K+ companies. Over bands they begin at the band
    # starts nearest to them (on a log scale): 251 and 1,000.
    from icp_research.data.facts import segment_bounds

    facts = study.facts
    assert segment_bounds(facts["employees"]) == [251.0, 1000.0]
    segments = facts.groupby("size_segment", observed=True)["employees"].agg(["min", "max"])
    assert segments.loc["SMB", "max"] == 51.0
    assert segments.loc["Mid-market", "min"] == 251.0 and segments.loc["Mid-market", "max"] == 251.0
    assert segments.loc["Enterprise", "min"] == 1000.0
    # Counts that are not bands keep the configured bounds.
    exact = pd.Series(np.random.default_rng(1).integers(1, 5000, 500), dtype=float)
    assert segment_bounds(exact) == [200.0, 2000.0]
