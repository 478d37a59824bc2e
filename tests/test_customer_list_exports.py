"""A customer list beside a pipeline of every prospect, the shape a founder keeps by hand: the
accounts table holds customers only, the deals name companies it does not hold."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

import icp_research as icp
from icp_research.analyses.blueprint.build import contract_size_only
from icp_research.data.facts import with_traits
from icp_research.data.loading import AttributeSpec, load_tables
from icp_research.data.trust import screen_attributes
from icp_research.data.validation import validate
from icp_research.errors import ConfigError

from .conftest import write_project

CONFIG = """
[project]
name = "tracker"
as_of = "2026-06-30"

[tables.accounts]
path = "customers.csv"
[tables.accounts.columns]
account_id = "Customer"
name = "Customer"
industry = "Vertical"

[tables.subscriptions]
path = "customers.csv"
[tables.subscriptions.columns]
account_id = "Customer"
start_date = "Signed"
mrr = "MRR"

[tables.opportunities]
path = "pipeline.csv"
account_id_from = "accounts.name"
[tables.opportunities.columns]
opportunity_id = "Deal"
name = "Company"
stage = "Stage"
created_at = "Created"
closed_at = "Closed"
"""


def _exports(seed: int = 5) -> dict[str, str]:
    rng = np.random.default_rng(seed)
    customers = [f"Customer {i}" for i in range(60)]
    prospects = [f"Prospect {i}" for i in range(90)]
    accounts = pd.DataFrame(
        {
            "Customer": customers,
            "Vertical": rng.choice(["SaaS", "Retail", "Health"], 60),
            "Signed": pd.date_range("2024-01-05", periods=60, freq="9D").strftime("%Y-%m-%d"),
            "MRR": rng.integers(100, 900, 60),
            "CSM": rng.choice(["Ana Ruiz", "Tom Becker"], 60),
            "NPS": rng.integers(0, 11, 60),
        }
    )
    rows = []
    for i, name in enumerate(customers):  # each customer won once, some lost once before
        rows.append((name, "Won", accounts["Signed"][i]))
        if i % 3 == 0:
            rows.append((name, "Lost", accounts["Signed"][i]))
    for name in prospects:  # companies that never bought: lost deals only
        rows += [(name, "Lost", "2024-06-01")] * int(rng.integers(1, 3))
    deals = pd.DataFrame(rows, columns=["Company", "Stage", "Closed"])
    deals.insert(0, "Deal", [f"D{i}" for i in range(len(deals))])
    deals["Created"] = "2024-01-01"
    return {
        "customers.csv": accounts.to_csv(index=False),
        "pipeline.csv": deals.to_csv(index=False),
    }


def test_deals_at_companies_not_in_a_customer_list_count_in_the_win_rate(tmp_path):
    files = _exports()
    config = write_project(tmp_path, files, CONFIG)
    pipeline = pd.read_csv(tmp_path / "pipeline.csv")
    truth = (pipeline["Stage"] == "Won").mean()
    dataset = load_tables(config)
    deals = dataset.tables["opportunities"]
    assert len(deals) == len(pipeline)  # none left out
    assert set(deals.loc[deals["account_id"].str.startswith("Prospect"), "stage"]) == {"lost"}
    (warning,) = [p for p in dataset.report.problems if "not in accounts" in p.message]
    prospects = int(pipeline["Company"].str.startswith("Prospect").sum())
    assert warning.message.startswith(f"{prospects} rows have a name that is not in accounts")
    assert "the analyses by trait leave them out" in warning.message

    study = icp.open_study(config, reuse_snapshot=False)
    closed = study.deals[study.deals["is_closed"].astype(bool)]
    assert closed["won"].astype(bool).mean() == truth  # every deal, not the customers' own
    traits = with_traits(study.deals)
    assert (~traits).sum() == prospects
    assert study.deals.loc[traits, "account_id"].str.startswith("Customer").all()
    # The analyses by trait compare customers' own deals; "missing" is not "never bought".
    (said,) = [p.message for p in study.trust.problems if p.message.startswith("every one of")]
    own = int(traits.sum())
    assert f"{prospects:,} of {len(pipeline):,} closed new-business deals" in said
    assert f"only the customers' own {own:,} deals" in said


def test_who_has_the_account_on_our_side_and_scores_after_the_sale_are_no_traits(tmp_path):
    files = _exports()
    config = write_project(tmp_path, files, CONFIG)
    study = icp.open_study(config, reuse_snapshot=False)
    excluded = study.screening.outcome_like
    assert (
        excluded["csm"] == 'named like one: "csm": who on our side has the account, assigned by us'
    )
    said = [p.message for p in study.trust.problems if p.column == "csm"]
    assert said == [
        'csm is not a trait of the company (named like one: "csm": who on our side has the '
        "account, assigned by us): it is left out of the ICP predictors"
    ]
    assert excluded["nps"].startswith('named like one: "nps": measured on customers after')
    assert "industry" in study.attributes.all
    assert {"csm", "nps"}.isdisjoint(study.attributes.all)
    # Two-word names too; a word inside another word is not one.
    facts = _two_accounts()
    spec = AttributeSpec(["account_manager", "ownership", "health_score"], [])
    screened = screen_attributes(spec, facts, None, study.config)
    assert set(screened.outcome_like) == {"account_manager", "health_score"}


class _Rule:
    def __init__(self, attribute, replicated):
        self.attribute, self.role, self.replicated = attribute, "filter", replicated
        self.kind, self.direction, self.reason = "include", "", ""


class _Study:
    analysis = {"best_customer_metric": "arr"}


def test_an_icp_of_contract_size_alone_whose_rules_did_not_hold_up_is_not_drawn():
    size = [{"attribute": "employees", "outcomes": ["best_customer"]}]
    rule = _Rule("employees", replicated=False)
    kept, demoted = contract_size_only([rule], size, _Study())
    assert kept == [] and demoted == [rule]
    assert rule.kind == "uncertain" and rule.role == "" and rule.direction == "favour"
    assert "may describe bigger contracts, not a better fit" in rule.reason
    # A rule that held up, or a trait that predicted winning too, still draws the ICP.
    held = _Rule("employees", replicated=True)
    assert contract_size_only([held], size, _Study()) == ([held], [])
    wins = [{"attribute": "employees", "outcomes": ["best_customer", "won"]}]
    other = _Rule("employees", replicated=False)
    assert contract_size_only([other], wins, _Study()) == ([other], [])


def test_drop_recoded_in_any_column_leaves_the_row_out(tmp_path):
    # An MRR movements export fed as churn events: only the "churn" rows are churn events.
    accounts = "Id,Industry\na1,SaaS\na2,Retail\na3,SaaS\n"
    movements = (
        "Customer,Date,Type\n"
        "a1,2024-01-01,new_biz\na2,2024-01-01,new_biz\na3,2024-02-01,new_biz\n"
        "a1,2024-05-01,expansion\na2,2024-07-01,churn\na3,2024-08-01,contraction\n"
    )
    config = """
[tables.accounts]
path = "accounts.csv"
[tables.accounts.columns]
account_id = "Id"
industry = "Industry"
[tables.churn_events]
path = "movements.csv"
[tables.churn_events.columns]
account_id = "Customer"
churned_at = "Date"
reason = "Type"
[tables.churn_events.values.reason]
"new_biz" = "drop"
"expansion" = "drop"
"contraction" = "DROP"
"""
    path = write_project(tmp_path, {"accounts.csv": accounts, "movements.csv": movements}, config)
    dataset = load_tables(path)
    events = dataset.tables["churn_events"]
    assert events["account_id"].tolist() == ["a2"] and events["reason"].tolist() == ["churn"]
    (note,) = [p.message for p in dataset.report.infos if "recoded to" in p.message]
    assert note == (
        '5 rows have a reason recoded to "drop" ("contraction", "expansion", "new_biz"): '
        "left out of the churn_events"
    )


MOVEMENTS_CONFIG = """
[project]
as_of = "2024-12-31"
[tables.accounts]
path = "accounts.csv"
[tables.accounts.columns]
account_id = "Id"
industry = "Industry"
[tables.subscriptions]
path = "movements.csv"
cents = true
movements = true
drop = ["Type"]
[tables.subscriptions.columns]
account_id = "Customer External ID"
start_date = "Date"
mrr = "MRR Change"
"""


def test_mrr_movements_become_stretches_of_steady_revenue(tmp_path):
    # ChartMogul's MRR movements: signed changes in cents, one row per change.
    accounts = "Id,Industry\na1,SaaS\na2,Retail\na3,SaaS\n"
    movements = (
        "Customer External ID,Date,Type,MRR Change\n"
        "a1,2024-01-01T00:00:00Z,new_biz,10000\n"
        "a1,2024-03-01T00:00:00Z,expansion,5000\n"
        "a1,2024-06-01T00:00:00Z,churn,-15000\n"
        "a1,2024-09-01T00:00:00Z,reactivation,8000\n"
        "a2,2024-02-01T00:00:00Z,new_biz,20000\n"
        "a2,2024-04-01T00:00:00Z,contraction,-5000\n"
        "a3,2024-02-01T00:00:00Z,new_biz,3000\n"
        "a3,2024-05-01T00:00:00Z,churn,-4000\n"  # more than it paid: a change is missing
    )
    files = {"accounts.csv": accounts, "movements.csv": movements}
    dataset = load_tables(write_project(tmp_path, files, MOVEMENTS_CONFIG))
    subs = dataset.tables["subscriptions"].sort_values(["account_id", "start_date"])
    got = [
        (
            r.account_id,
            f"{r.start_date:%m-%d}",
            None if pd.isna(r.end_date) else f"{r.end_date:%m-%d}",
            r.arr,
        )
        for r in subs.itertuples()
    ]
    assert got == [
        ("a1", "01-01", "03-01", 1200.0),
        ("a1", "03-01", "06-01", 1800.0),
        ("a1", "09-01", None, 960.0),
        ("a2", "02-01", "04-01", 2400.0),
        ("a2", "04-01", None, 1800.0),
        ("a3", "02-01", "05-01", 360.0),
    ]
    problems = {p.level: p.message for p in dataset.report.problems if p.table == "subscriptions"}
    assert problems["info"].startswith(
        "movements = true: 8 changes of 3 accounts read as 6 stretches of steady revenue"
    )
    assert problems["warning"].startswith(
        "1 account falls below zero revenue after their changes (e.g. a3 on 2024-05-01)"
    )
    study = icp.open_study(write_project(tmp_path, files, MOVEMENTS_CONFIG), reuse_snapshot=False)
    facts = study.facts.set_index("account_id")
    assert facts.loc[["a1", "a2", "a3"], "arr_current"].tolist() == [960.0, 1800.0, 0.0]
    assert bool(facts.loc["a3", "churned"]) and not bool(facts.loc["a2", "churned"])


def test_negative_mrr_without_movements_names_the_setting(tmp_path):
    accounts = "Id,Industry\na1,SaaS\n"
    movements = (
        "Customer External ID,Date,Type,MRR Change\n"
        "a1,2024-01-01,new_biz,10000\na1,2024-06-01,churn,-10000\n"
    )
    config = MOVEMENTS_CONFIG.replace("movements = true\n", "")
    files = {"accounts.csv": accounts, "movements.csv": movements}
    report = validate(write_project(tmp_path, files, config))
    (error,) = report.lines("error")
    assert '1 negative values (mrr cannot be negative; e.g. "-10000")' in error
    assert "add movements = true under [tables.subscriptions]" in error
    bad = MOVEMENTS_CONFIG.replace("movements = true\n", "movements = true\ninvoices = true\n")
    with pytest.raises(ConfigError, match="movements = true and invoices = true"):
        load_tables(write_project(tmp_path / "both", files, bad))


def test_a_crm_code_reads_as_words_in_the_statement_unless_labelled():
    from icp_research.analyses.blueprint.statement import Labels

    labels = Labels(values={"industry": {"RETAIL_TRADE": "shops"}})
    assert labels.value("industry", "HOSPITAL_HEALTH_CARE") == "Hospital Health Care"
    assert labels.value("industry", "RETAIL_TRADE") == "shops"
    assert labels.value("industry", "SaaS") is None and labels.value("industry", "IT") is None


def test_a_status_neither_churned_nor_active_is_named_with_its_recode(tmp_path):
    accounts = pd.DataFrame(
        {
            "Customer": [f"C{i}" for i in range(12)],
            "Signed": "2024-01-01",
            "MRR": 100,
            "Status": ["Active"] * 6 + ["Churned"] * 3 + ["Paused"] * 3,
            "Churn date": [""] * 6 + ["2024-06-01"] * 3 + [""] * 3,
        }
    )
    config = """
[project]
as_of = "2024-12-31"
[tables.accounts]
path = "customers.csv"
[tables.accounts.columns]
account_id = "Customer"
[tables.subscriptions]
path = "customers.csv"
[tables.subscriptions.columns]
account_id = "Customer"
start_date = "Signed"
end_date = "Churn date"
mrr = "MRR"
[analysis]
churn_source = "status"
"""
    files = {"customers.csv": accounts.to_csv(index=False)}
    study = icp.open_study(write_project(tmp_path, files, config), reuse_snapshot=False)
    notes = study.facts.attrs["churn_notes"]
    (said,) = [n for n in notes if "neither churned nor active" in n]
    assert said == (
        '3 customers have a status value that is neither churned nor active ("Paused" 3); '
        "their churn is unknown and they are left out of churn; if Paused customers are still "
        'customers, recode "Paused" = "Active" under [tables.accounts.values.status] (or to a '
        "churned value if they left)"
    )
    fixed = config + '[tables.accounts.values.status]\n"Paused" = "Active"\n'
    study = icp.open_study(write_project(tmp_path / "fixed", files, fixed), reuse_snapshot=False)
    assert not [n for n in study.facts.attrs["churn_notes"] if "neither churned" in n]
    assert int(study.facts["churned"].sum()) == 3 and study.facts["churned"].notna().all()


def test_amounts_with_three_digits_after_a_dot_are_said_to_be_thousands(tmp_path):
    accounts = "Id,Industry\na1,SaaS\na2,Retail\n"
    deals = (
        "Deal,Account,Stage,Created,Amount\n"
        "D1,a1,won,2024-01-01,€15.480\nD2,a2,lost,2024-01-01,€5.290\n"
        "D3,a1,lost,2024-02-01,€900\nD4,a2,won,2024-03-01,€12.000\n"
    )
    config = """
[tables.accounts]
path = "accounts.csv"
[tables.accounts.columns]
account_id = "Id"
industry = "Industry"
[tables.opportunities]
path = "deals.csv"
[tables.opportunities.columns]
opportunity_id = "Deal"
account_id = "Account"
stage = "Stage"
created_at = "Created"
amount = "Amount"
"""
    files = {"accounts.csv": accounts, "deals.csv": deals}
    dataset = load_tables(write_project(tmp_path, files, config))
    (said,) = [p for p in dataset.report.warnings if "three digits" in p.message]
    assert said.message == (
        '3 amounts have three digits after "." ("€15.480", "€5.290", "€12.000"), which the '
        'decimal mark "." reads as fractions ("€15.480" as 15.48): in most exports that write '
        'them so, "." separates thousands'
    )
    assert said.rows == [2, 3, 5]
    fixed = config.replace('path = "deals.csv"\n', 'path = "deals.csv"\ndecimal = ","\n')
    dataset = load_tables(write_project(tmp_path / "fixed", files, fixed))
    assert dataset.tables["opportunities"]["amount"].tolist() == [15480.0, 5290.0, 900.0, 12000.0]
    assert not [p for p in dataset.report.warnings if "three digits" in p.message]


def test_names_of_two_legal_forms_are_two_companies(tmp_path):
    accounts = "Customer,Industry\nMainbox GmbH,SaaS\nAcme Inc.,Retail\nBeta,SaaS\n"
    deals = (
        "Deal,Company,Stage,Created\n"
        "D1,MAINBOX GMBH,won,2024-01-01\nD2,Mainbox AG,lost,2024-01-01\n"
        "D3,ACME Incorporated,won,2024-01-01\nD4,Beta GmbH,lost,2024-01-01\n"
    )
    config = """
[tables.accounts]
path = "accounts.csv"
[tables.accounts.columns]
account_id = "Customer"
name = "Customer"
industry = "Industry"
[tables.opportunities]
path = "deals.csv"
account_id_from = "accounts.name"
[tables.opportunities.columns]
opportunity_id = "Deal"
name = "Company"
stage = "Stage"
created_at = "Created"
"""
    files = {"accounts.csv": accounts, "deals.csv": deals}
    dataset = load_tables(write_project(tmp_path, files, config))
    got = dataset.tables["opportunities"].set_index("opportunity_id")["account_id"].to_dict()
    # Same form (or none stated on one side): one company; GmbH against AG: two.
    assert got == {"D1": "Mainbox GmbH", "D2": "Mainbox AG", "D3": "Acme Inc.", "D4": "Beta"}


def test_a_crm_calculated_score_or_activity_count_is_no_trait(tmp_path):
    """A first user's small null export: HubSpot Score, a calculated property the CRM keeps
    updating from the account's activity, ran only moderately higher for customers (too little
    to be screened as an outcome by its values) and became the ICP ("This product fits
    companies (hubspot score of 50 or more)"), with score points on it. Named like one, it is
    left out, as are visits, form submissions and sales activity; a word inside another word
    or a size is not."""
    files = _exports()
    config = write_project(tmp_path, files, CONFIG)
    study = icp.open_study(config, reuse_snapshot=False)
    facts = _two_accounts()
    names = [
        "hubspot_score",
        "HubSpotScore",
        "lead_score",
        "number_of_pageviews",
        "number_of_form_submissions",
        "number_of_sales_activities",
        "number_of_times_contacted",
        "last_activity_date_days",
        "likelihood_to_close",
        # Deal roll-ups on the account: a Freshsales null export's "Open deals amount" was
        # tested as a trait and made a health report claim a "large shift, beyond chance" in
        # the pipeline (recent accounts still have their deals open on the export's date).
        "open_deals_amount",
        "won_deals_amount",
        "number_of_associated_deals",
        "number_of_employees",
        "score_band",
        "scoreboard_user",
    ]
    spec = AttributeSpec([], names)
    screened = screen_attributes(spec, facts, None, study.config)
    assert set(screened.outcome_like) == set(names[:12])
    assert screened.outcome_like["hubspot_score"].startswith(
        'named like one: "hubspot score": kept up to date by the CRM from what happens with the '
        "account"
    )
    assert {"number_of_employees", "score_band", "scoreboard_user"} <= set(screened.spec.numeric)


def test_portuguese_and_other_names_of_our_salesperson_are_no_traits(tmp_path):
    """A Brazilian first user's "Responsável" (the salesperson) became a candidate trait
    ("Accounts with João Araújo as responsável"): accented words were split ("respons",
    "vel") and the word was not known."""
    from icp_research.data.trust import name_words

    assert name_words("Responsável") == ["responsavel"]
    assert name_words("Kündigungsgrund") == ["kundigungsgrund"]
    files = _exports()
    config = write_project(tmp_path, files, CONFIG)
    study = icp.open_study(config, reuse_snapshot=False)
    facts = _two_accounts()
    names = ["Responsável", "Vendedor", "Account Executive", "Propriétaire", "Kündigungsgrund"]
    spec = AttributeSpec(names + ["Segmento"], [])
    screened = screen_attributes(spec, facts, None, study.config)
    assert set(screened.outcome_like) == set(names)
    assert screened.outcome_like["Responsável"].startswith('named like one: "responsavel"')
    assert "Segmento" in screened.spec.categorical


def _two_accounts() -> pd.DataFrame:
    """Account facts enough for the name screens of :func:`screen_attributes`."""
    return pd.DataFrame(
        {"account_id": ["a", "b"], "is_customer": [True, False], "best_customer": [True, None]}
    )
