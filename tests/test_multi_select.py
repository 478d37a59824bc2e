"""Multi-select columns: HubSpot multiple checkboxes ("Slack;Jira"), Salesforce multi-select
picklists and enrichment technology lists ("Salesforce, HubSpot, Snowflake") are read as one
yes/no attribute per value, found as ICP traits like any other, corrected for the extra tests,
and read from a lead's raw cell when scoring."""

from __future__ import annotations

import json

import numpy as np
import pandas as pd
import pytest

from icp_research.data.config import load_config
from icp_research.data.loading import load_dataset
from icp_research.data.multiselect import item_counts, item_flags, separator_of, split_cell
from icp_research.scoring.model import score_leads

TECH = [
    "Salesforce",
    "HubSpot",
    "Snowflake",
    "AWS",
    "GCP",
    "Azure",
    "Slack",
    "Jira",
    "Notion",
    "Zendesk",
    "Intercom",
    "Segment",
    "Stripe",
    "Shopify",
    "Marketo",
    "Mailchimp",
    "Tableau",
    "Looker",
    "dbt",
    "Fivetran",
    "Databricks",
    "BigQuery",
    "Redshift",
    "Okta",
    "Auth0",
    "Datadog",
    "Sentry",
    "PagerDuty",
    "GitHub",
    "GitLab",
    "Confluence",
    "Asana",
    "Trello",
    "Figma",
    "Zoom",
    "Gong",
    "Outreach",
    "Salesloft",
    "Twilio",
    "Workday",
]
TOOLS = ["Slack", "Jira", "Notion", "Asana", "Trello", "Confluence", "Zoom", "Teams"]

CONFIG = """
[project]
name = "multi"

[tables.accounts]
path = "companies.csv"

[tables.accounts.columns]
account_id = "Record ID"
name = "Company name"
industry = "Industry"
employees = "Number of Employees"
created_at = "Create Date"

[tables.opportunities]
path = "deals.csv"

[tables.opportunities.columns]
opportunity_id = "Record ID"
account_id = "Associated Company IDs (Primary)"
stage = "Deal Stage"
created_at = "Create Date"
closed_at = "Close Date"
amount = "Amount"

[tables.opportunities.values.stage]
"Closed Won" = "won"
"Closed Lost" = "lost"
"Appointment Scheduled" = "open"
"""


def write_export(folder, *, seed: int = 7, n: int = 1500, planted: bool = True, extra=""):
    """A HubSpot-style export: "Tools Used" (;), an Apollo-style "Technologies" (, ), about a
    quarter of the companies on Snowflake, 12% blank. With ``planted`` the companies on
    Snowflake win twice as often (0.4 vs 0.2); nothing else matters."""
    rng = np.random.default_rng(seed)
    popularity = rng.dirichlet(np.ones(len(TECH)) * 0.8) * 0.5 + 0.5 / len(TECH)
    popularity[TECH.index("Snowflake")] = 0.05
    popularity /= popularity.sum()
    start, end = pd.Timestamp("2023-10-01"), pd.Timestamp("2026-03-31")
    companies, deals = [], []
    for i in range(n):
        techs = list(rng.choice(TECH, size=rng.integers(2, 9), replace=False, p=popularity))
        tools = list(rng.choice(TOOLS, size=rng.integers(1, 5), replace=False))
        created = start + pd.Timedelta(days=int(rng.integers(0, (end - start).days - 60)))
        companies.append(
            {
                "Record ID": 100001 + i,
                "Company name": f"Company {i}",
                "Industry": rng.choice(["Software", "Retail", "Healthcare", "Education"]),
                "Number of Employees": int(np.exp(rng.normal(4.5, 1.3))),
                "Create Date": created.strftime("%Y-%m-%d"),
                "Tools Used": "" if rng.random() < 0.15 else ";".join(tools),
                "Technologies": "" if rng.random() < 0.12 else ", ".join(techs),
            }
        )
        p_win = 0.4 if planted and "Snowflake" in techs else 0.2
        for _ in range(rng.integers(1, 3)):
            opened = created + pd.Timedelta(days=int(rng.integers(0, 30)))
            closed = opened + pd.Timedelta(days=int(rng.integers(10, 120)))
            won = rng.random() < p_win
            deals.append(
                {
                    "Record ID": 9000000 + len(deals),
                    "Associated Company IDs (Primary)": 100001 + i,
                    "Deal Stage": "Appointment Scheduled"
                    if closed > end
                    else ("Closed Won" if won else "Closed Lost"),
                    "Create Date": opened.strftime("%Y-%m-%d"),
                    "Close Date": "" if closed > end else closed.strftime("%Y-%m-%d"),
                    "Amount": round(float(rng.lognormal(9.5, 0.6)), 2),
                }
            )
    pd.DataFrame(companies).to_csv(folder / "companies.csv", index=False)
    pd.DataFrame(deals).to_csv(folder / "deals.csv", index=False)
    (folder / "icp.toml").write_text(CONFIG + extra, encoding="utf-8")
    return folder / "icp.toml"


# ---------------------------------------------------------------------------------------------
# Detection


def test_detects_semicolon_comma_and_pipe_lists():
    rng = np.random.default_rng(1)
    cells = [list(rng.choice(TOOLS, size=rng.integers(1, 5), replace=False)) for _ in range(200)]
    assert separator_of(pd.Series([";".join(c) for c in cells])) == ";"
    assert separator_of(pd.Series([", ".join(c) for c in cells])) == ","
    assert separator_of(pd.Series([" | ".join(c) for c in cells])) == "|"
    # Blanks do not count against it.
    assert separator_of(pd.Series([";".join(c) for c in cells] + [None] * 300)) == ";"


def test_detects_a_list_written_in_one_fixed_option_order():
    # Attio's "Categories": options in the order the field defines them, and nearly every
    # company "B2B", so every cell starts with it and no option seemed to move.
    rng = np.random.default_rng(2)
    options = ["B2B", "SaaS", "Marketplace", "Fintech", "Healthtech", "AI"]
    cells = []
    for _ in range(300):
        chosen = {"B2B"} | set(rng.choice(options[1:], size=rng.integers(1, 3), replace=False))
        cells.append(", ".join(o for o in options if o in chosen))
    assert separator_of(pd.Series(cells)) == ","
    # Places stay places when every one shares the country.
    places = ["Berlin, Germany", "Munich, Germany", "Hamburg, Germany", "Köln, Germany"] * 20
    assert separator_of(pd.Series(places)) is None


@pytest.mark.parametrize(
    "cells",
    [
        ["1,200", "3,400", "12,000,000", "950", "2,500"] * 20,  # thousands separators
        ["$1,200.50", "$3,400", "€12.000,00", "$950"] * 20,  # money
        ["Berlin, Germany", "Munich, Germany", "Paris, France", "Lyon, France"] * 20,  # places
        ["FinTech", "SaaS", "Retail", "Health"] * 20,  # one value a cell
        [  # free text: the pieces do not repeat
            f"Called on day {i}, asked for pricing, follow up in {i % 7 + 2} weeks"
            for i in range(80)
        ],
        ["Slack;Jira", "Notion"] * 5,  # too few cells to tell
    ],
    ids=["thousands", "money", "city-country", "single", "free-text", "few"],
)
def test_not_a_multi_select(cells):
    assert separator_of(pd.Series(cells)) is None


def test_numbers_are_never_multi_select():
    assert separator_of(pd.Series([1200.0, 3400.0] * 30)) is None


def test_items_counted_once_per_account_and_spelled_as_most_cells_spell_them():
    cells = pd.Series(["Slack; Jira", "slack;Notion", "Slack;Slack", None, "", "Jira"])
    assert split_cell("Slack; Jira;;slack", ";") == ["Slack", "Jira"]
    assert item_counts(cells, ";") == {"Slack": 3, "Jira": 2, "Notion": 1}
    flags = item_flags(cells, ";", "SLACK")
    assert flags.dtype == "boolean"
    assert flags.tolist() == [True, True, True, pd.NA, pd.NA, False]


# ---------------------------------------------------------------------------------------------
# Loading


@pytest.fixture(scope="module")
def planted(tmp_path_factory):
    folder = tmp_path_factory.mktemp("planted")
    return load_dataset(write_export(folder))


def test_expanded_into_one_yes_no_attribute_per_value(planted):
    spec, accounts = planted.attributes, planted.tables["accounts"]
    raw = pd.read_csv(planted.config.tables["accounts"].path, keep_default_na=False)
    tech = spec.multi_select["technologies"]
    assert (tech.source, tech.separator) == ("Technologies", ",")
    # Every one of the 40 technologies is on 10 accounts or more; Tools Used has 8 values.
    assert len(tech.items) == 40 and tech.rare == {}
    assert len(spec.multi_select["tools_used"].items) == 8
    # The raw columns are no predictors; each value is.
    assert "technologies" not in spec.all and "tools_used" not in spec.all
    assert "technologies" in spec.excluded
    assert "technologies: Snowflake" in spec.categorical
    column = accounts["technologies: Snowflake"]
    listed = raw["Technologies"].str.split(", ").map(lambda items: "Snowflake" in items)
    blank = raw["Technologies"] == ""
    assert int(column.isna().sum()) == int(blank.sum())  # blank: unknown, not no
    assert int(column.sum()) == int((listed & ~blank).sum()) == tech.items["Snowflake"]
    note = [p.message for p in planted.report.infos if p.column == "Technologies"]
    assert note and "read as a multi-select" in note[0] and "40 yes/no attributes" in note[0]


def test_rare_values_not_expanded_and_counted(tmp_path):
    config = write_export(tmp_path, n=300, extra="\n[analysis]\nmin_level_count = 40\n")
    data = load_dataset(config)
    tech = data.attributes.multi_select["technologies"]
    assert tech.rare and all(n < 40 for n in tech.rare.values())
    assert all(n >= 40 for n in tech.items.values())
    assert f"{len(tech.rare)} rarer values not expanded" in " ".join(data.report.lines("info"))
    assert not any(f"technologies: {item}" in data.tables["accounts"] for item in tech.rare)


def test_config_names_and_refuses_a_multi_select(tmp_path):
    extra = '\n[attributes]\nmulti_select = { "Industry" = "/" }\nsingle_select = ["Tools Used"]\n'
    config = write_export(tmp_path, n=200, extra=extra)
    assert load_config(config).multi_select == {"industry": "/"}
    data = load_dataset(config)
    assert "tools_used" not in data.attributes.multi_select
    # Read as one value per cell, as before: a level per combination (here too many to test).
    assert not any(c.startswith("tools_used: ") for c in data.tables["accounts"].columns)
    assert data.attributes.excluded["tools_used"].endswith("(looks like a name or id)")
    assert data.attributes.multi_select["industry"].separator == "/"
    assert "technologies" in data.attributes.multi_select  # still detected


def test_unknown_multi_select_column_is_an_error(tmp_path):
    config = write_export(tmp_path, n=100, extra='\n[attributes]\nmulti_select = ["Technology"]\n')
    errors = load_dataset(config).report.lines("error")
    assert any("multi_select names 'technology'" in e and "technologies" in e for e in errors)


# ---------------------------------------------------------------------------------------------
# End to end: the planted effect, nothing on noise, scoring a raw lead list


def _blueprint(config):
    from icp_research.analyses import blueprint as bp
    from icp_research.data.study import open_study

    study = open_study(config, reuse_snapshot=False)
    return study, bp.build_blueprint(study, backtest_quarters=1, n_boot=50).to_json()


@pytest.fixture(scope="module")
def planted_icp(tmp_path_factory):
    folder = tmp_path_factory.mktemp("planted_icp")
    return folder, _blueprint(write_export(folder))


def test_planted_snowflake_found_end_to_end(planted_icp):
    _, (_, icp) = planted_icp
    include = [r["text"] for r in icp["rules"]["include"]]
    assert include == ["technologies: Snowflake = True"]
    assert icp["attributes"]["technologies: Snowflake"] == {
        "type": "categorical",
        "values": "yes/no",
        "multi_select": {
            "column": "technologies",
            "source": "Technologies",
            "separator": ",",
            "item": "Snowflake",
        },
    }
    scored = [a["name"] for a in icp["scorecard"]["attributes"]]
    assert scored == ["technologies: Snowflake"]
    # No other technology is claimed (a note may name one it does not list, and why).
    claims = {kind: icp["rules"][kind] for kind in ("include", "exclude", "uncertain")}
    named = json.dumps(claims) + json.dumps(icp["characteristics"])
    assert not [t for t in TECH if t != "Snowflake" and f"technologies: {t}" in named]


def test_no_technology_claimed_on_noise(tmp_path):
    study, icp = _blueprint(write_export(tmp_path, planted=False))
    assert len([c for c in study.attributes.categorical if c.startswith("technologies: ")]) == 40
    assert not icp["drawn"] and icp["scorecard"] is None
    rules = [icp["rules"][kind] for kind in ("include", "exclude", "uncertain")]
    named = json.dumps(rules) + json.dumps(icp["characteristics"])
    assert "technologies: " not in named and "tools_used: " not in named


def test_scoring_a_raw_lead_list_reads_it_as_the_training_rows(planted_icp):
    folder, (study, icp) = planted_icp
    # The training export itself as a lead list: its raw Technologies column.
    leads = pd.read_csv(folder / "companies.csv", dtype={"Technologies": object})
    scored = score_leads(icp, leads)
    training = study.tables["accounts"]["technologies: Snowflake"]
    expected = np.where(training.isna(), "missing", np.where(training.fillna(False), "yes", "no"))
    got = np.where(
        scored["flags"].str.contains("technologies: Snowflake missing"),
        "missing",
        np.where(scored["rules_hit"].str.contains("technologies: Snowflake"), "yes", "no"),
    )
    assert (got == expected).all()
    assert scored.loc[training.fillna(False).to_numpy(), "in_icp"].all()
    assert not scored.loc[~training.fillna(True).to_numpy(), "in_icp"].any()
    # Case and spacing aside; a lead without the column scores neutral and is flagged.
    few = pd.DataFrame({"technologies": ["aws,snowflake", "Slack, Jira", None]})
    assert score_leads(icp, few)["in_icp"].tolist() == [True, False, False]
    bare = score_leads(icp, pd.DataFrame({"Industry": ["Retail"]}))
    assert bare["flags"].iloc[0] == (
        "technologies: Snowflake not provided: scored neutral; rules on technologies: "
        "Snowflake not met (unknown); nothing the score reads is known: tier Unknown (add "
        "technologies: Snowflake and score it again)"
    )
    assert bare["tier"].astype(str).iloc[0] == "Unknown"


def _two_trait_icp() -> dict:
    """An icp.json with one defining rule on a multi-select value and a size range, no score
    (a combination ICP, scored with rules only)."""
    rule = {
        "id": "include:stack",
        "kind": "include",
        "role": "filter",
        "text": "tech_stack_c: Snowflake = True and 150 <= employees < 1,500",
        "conditions": [
            {"attribute": "tech_stack_c: Snowflake", "operator": "equals", "value": "True"},
            {"attribute": "employees", "operator": "between", "value": [150, 1500]},
        ],
    }
    item = {"column": "tech_stack_c", "source": "Tech_Stack__c", "separator": ";"}
    return {
        "format": 1,
        "rules": {"include": [rule], "exclude": [], "uncertain": []},
        "attributes": {
            "employees": {"type": "numeric", "nonnegative": True},
            "tech_stack_c: Snowflake": {
                "type": "categorical",
                "values": "yes/no",
                "multi_select": {**item, "item": "Snowflake"},
            },
        },
        "scorecard": None,
    }


def test_rules_only_reads_a_lead_list_written_with_another_separator_and_flags_unknowns():
    # A lead list saved from another tool writes "Snowflake, dbt" where the CRM wrote
    # "Snowflake;dbt"; read as one item, the lead was marked out of the ICP. Blank cells
    # left a lead out of the ICP with no flag, as if it were known not to fit.
    leads = pd.DataFrame(
        {
            "Tech_Stack__c": ["Snowflake;dbt", "Snowflake, dbt", "dbt|snowflake", None, "dbt"],
            "NumberOfEmployees": [350, 350, 350, 350, None],
        }
    )
    scored = score_leads(
        _two_trait_icp(), leads.rename(columns={"NumberOfEmployees": "employees"}), rules_only=True
    )
    assert scored["in_icp"].tolist() == [True, True, True, False, False]
    assert scored["flags"].tolist()[:3] == ["", "", ""]
    assert scored.loc[3, "flags"] == (
        "tech_stack_c: Snowflake missing: rules on tech_stack_c: Snowflake not met (unknown)"
    )
    assert scored.loc[4, "flags"] == "employees missing: rules on employees not met (unknown)"
    absent = score_leads(_two_trait_icp(), pd.DataFrame({"employees": [350]}), rules_only=True)
    assert absent.loc[0, "flags"] == (
        "tech_stack_c: Snowflake not provided: rules on tech_stack_c: Snowflake not met (unknown)"
    )
