"""The ICP statement and the recommendations read as prose a VP can forward.

No placeholder, no code syntax (``crm = None``), human labels for columns and values, and
where two reports favour different levels because they answer different outcomes, they say so.
The rules keep their code form in icp.json: only the prose changes.
"""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

import icp_research as icp
from icp_research.analyses import blueprint as bp
from icp_research.analyses.antipatterns import Condition
from icp_research.analyses.blueprint.statement import (
    NEED_MISSING,
    Labels,
    clause,
    draft_statement,
    not_a_fit,
    theme_need,
)
from icp_research.analyses.significance import _characteristic_sentence
from icp_research.data.config import config_from_dict
from icp_research.errors import ConfigError

from .studies import AS_OF, make_study


@pytest.fixture(scope="module")
def demo():
    """The blueprint of the bundled demo, built in this process (no kernel)."""
    study = icp.open_study()
    return study, bp.build_blueprint(study, outcome="won", backtest_quarters=0, n_boot=50)


def test_demo_statement_has_no_placeholder_and_no_code_syntax(demo):
    _, result = demo
    statement = result.statement
    assert "[" not in statement and "]" not in statement
    assert " = " not in statement and "{" not in statement
    assert "no CRM" in statement
    assert statement.endswith(
        "Not a fit: companies with no CRM, fewer than 60 employees, or in Education."
    )
    assert "that need forecast accuracy" in statement  # the need comes from the survey
    # The rules keep their code form for tools; only the prose changed.
    assert {r.text for r in result.exclude} == {
        "crm = None",
        "employees < 60",
        "industry = Education",
    }
    assert result.to_json()["statement"] == statement
    assert not any("[core workflow" in c for c in result.caveats)


def test_demo_blueprint_says_where_outcomes_favour_different_levels(demo):
    _, result = demo
    # Best customers ranked over all start years together (the larger customers of the older
    # cohorts): size then favours 600+ employees for best-customer status.
    study = icp.open_study()
    study.config.analysis["best_customer_ranking"] = "all"
    study.dataset.derived = {}
    pooled = bp.build_blueprint(study, outcome="won", backtest_quarters=0, n_boot=50)
    assert (
        "The reports answer different questions about employees: the ICP takes 100–999 "
        "employees, chosen for winning deals, while the predictor tests it was chosen from "
        "favour 600+ employees for best-customer status." in pooled.findings
    )
    # Ranked within start years (the default), best customers favour sizes inside 100-999.
    assert not any("questions about employees" in f for f in result.findings)
    # Levels the ICP already covers (Salesforce is within HubSpot or Salesforce) say nothing.
    assert not any("questions about CRM" in f for f in result.findings)
    assert any("who the company is (employees, industry and CRM)" in f for f in result.findings)


def test_statement_without_a_need_leaves_the_clause_out(demo):
    _, result = demo
    name, statement = draft_statement(result.include, result.exclude, None)
    assert statement.startswith(
        "This product fits mid-size FinTech and SaaS companies (100–999 employees) that have "
        "HubSpot or Salesforce as CRM."
    )
    assert " need" not in statement and "[" not in statement
    # The analyst's report says what to add to the config to draft it from data.
    assert "[tables.survey]" in NEED_MISSING and "[codebook]" in NEED_MISSING
    only_industry = [r for r in result.include if r.attribute == "industry"]
    assert draft_statement(only_industry, [], None)[1] == (
        "This product fits FinTech and SaaS companies."
    )


@pytest.mark.parametrize(
    ("condition", "words"),
    [
        (Condition("crm", "equals", "None"), ("with", "no CRM")),
        (Condition("crm", "in", ["HubSpot", "None"]), ("with", "HubSpot as CRM or no CRM")),
        (
            Condition("crm", "in", ["Salesforce", "HubSpot"]),
            ("with", "HubSpot or Salesforce as CRM"),
        ),
        (Condition("employees", "less_than", 60), ("with", "fewer than 60 employees")),
        (Condition("employees", "at_least", 1000), ("with", "1,000+ employees")),
        (Condition("employees", "between", [100, 1000]), ("with", "100–999 employees")),
        (Condition("industry", "equals", "Education"), ("in", "Education")),
        (Condition("country", "in", ["DE", "FR"]), ("in", "DE or FR")),
        (Condition("referral_source", "equals", "Partner"), ("with", "Partner as referral source")),
        (Condition("region", "is_missing"), ("with", "no region on record")),
        (
            Condition("annual_revenue", "at_least", 2e6),
            ("with", "annual revenue of 2,000,000 or more"),
        ),
        (Condition("arr_band", "less_than", 1.5), ("with", "ARR band under 1.5")),
    ],
)
def test_conditions_read_as_words(condition, words):
    assert clause(condition) == words


def test_not_a_fit_list_names_each_preposition_once():
    def rule(*conditions):
        return bp.Rule("exclude", list(conditions), conditions[0].attribute)

    crm = rule(Condition("crm", "equals", "None"))
    small = rule(Condition("employees", "less_than", 60))
    education = rule(Condition("industry", "equals", "Education"))
    assert not_a_fit([crm]) == "companies with no CRM"
    assert not_a_fit([crm, education]) == "companies with no CRM or in Education"
    assert not_a_fit([education, crm, small]) == (
        "companies in Education, with no CRM, or fewer than 60 employees"
    )
    both = rule(Condition("industry", "equals", "Retail"), Condition("employees", "at_least", 5000))
    assert not_a_fit([both]) == "companies in Retail and with 5,000+ employees"


def test_recommendations_name_the_outcome_they_hold_for():
    item = {
        "predictor": "employees",
        "favour": [">= 600"],
        "avoid": ["< 60"],
        "trend": None,
        "evidence": "Evidence.",
        "levels": [
            {"level": "< 60", "direction": "avoid", "outcome": "won"},
            {"level": "< 60", "direction": "avoid", "outcome": "retained"},
            {"level": ">= 600", "direction": "favour", "outcome": "best_customer"},
        ],
    }
    assert _characteristic_sentence(item) == (
        "employees: favour >= 600 for best-customer status; avoid < 60 for winning deals and "
        "retention. Evidence."
    )
    item = {
        "predictor": "crm",
        "favour": ["HubSpot", "Salesforce"],
        "avoid": [],
        "trend": None,
        "evidence": "",
        "levels": [
            {"level": "HubSpot", "direction": "favour", "outcome": "won"},
            {"level": "Salesforce", "direction": "favour", "outcome": "won"},
            {"level": "Salesforce", "direction": "favour", "outcome": "best_customer"},
        ],
    }
    assert _characteristic_sentence(item).startswith(
        "crm: favour HubSpot, Salesforce for winning deals, and Salesforce for best-customer "
        "status."
    )


def _themed_study(rng, n: int = 400):
    """Customers whose call notes mention forecasting far more often among the best (top ARR)."""
    ids = [f"T{i:04d}" for i in range(n)]
    arr = np.where(np.arange(n) < n // 5, 90_000.0, 10_000.0) * rng.uniform(0.9, 1.1, n)
    best = np.arange(n) < n // 5
    start = AS_OF - pd.to_timedelta(rng.integers(200, 700, n), unit="D")
    mentions = rng.random(n) < np.where(best, 0.7, 0.15)
    study = make_study(
        {
            "accounts": pd.DataFrame({"account_id": ids, "industry": "SaaS", "created_at": start}),
            "subscriptions": pd.DataFrame(
                {"account_id": ids, "start_date": start, "end_date": pd.NaT, "arr": arr}
            ),
            "feedback": pd.DataFrame(
                {
                    "account_id": ids,
                    "date": start + pd.Timedelta(days=90),
                    "source": "call",
                    "text": np.where(mentions, "They need better forecasts", "Routine check-in"),
                }
            ),
        },
        categorical=["industry"],
    )
    return study


def test_the_need_comes_from_the_configs_own_feedback_themes(rng):
    study = _themed_study(rng)
    assert theme_need(study, 0.05) is None  # built-in themes are complaints, not needs
    study.config.codebook = {"forecast_accuracy": ["forecast*"]}
    need = theme_need(study, 0.05)
    assert need is not None and need["answer"] == "forecast accuracy", need
    assert need["rate_icp"] > need["rate_rest"]


# ---------------------------------------------------------------------------------------------
# [labels]: the config names columns and values for the prose


def test_labels_section_is_read_and_checked():
    cfg = config_from_dict(
        {
            "tables": {"accounts": {"path": "a.csv"}},
            "labels": {
                "crm": "CRM system",
                "values": {"industry": {"Edu": "Education"}, "crm": {"None": "no CRM at all"}},
            },
        }
    )
    assert cfg.labels == {"crm": "CRM system"}
    assert cfg.value_labels == {"industry": {"Edu": "Education"}, "crm": {"None": "no CRM at all"}}
    assert config_from_dict({"tables": {"accounts": {"path": "a.csv"}}}).labels == {}
    with pytest.raises(ConfigError, match=r"\[labels\] crm = 3 must be text in quotes"):
        config_from_dict({"tables": {"accounts": {"path": "a.csv"}}, "labels": {"crm": 3}})
    with pytest.raises(ConfigError, match=r"\[labels.values.crm\]"):
        config_from_dict(
            {"tables": {"accounts": {"path": "a.csv"}}, "labels": {"values": {"crm": {"x": 1}}}}
        )


def test_labels_from_the_config_name_columns_and_values(demo):
    study, result = demo
    labels = Labels(
        {"crm": "CRM system", "employees": "staff", "referral_source": "lead source"},
        {"industry": {"Education": "schools", "SaaS": "software"}, "crm": {"None": "no CRM yet"}},
    )
    name, statement = draft_statement(result.include, result.exclude, result.need, labels)
    assert statement == (
        "This product fits mid-size FinTech and software companies (100–999 staff) that need "
        "forecast accuracy and have HubSpot or Salesforce as CRM system. They convert best when "
        "lead source is Referral. Not a fit: companies with no CRM yet, fewer than 60 staff, or "
        "in schools."
    )
    assert name == "Mid-size FinTech & software on HubSpot / Salesforce"
    # Without a [labels] section the tidy names are used.
    assert Labels.of(study) == Labels()


def test_a_country_that_takes_the_article_gets_it():
    from icp_research.analyses.blueprint.statement import _place

    assert [_place(v) for v in ("United Kingdom", "Netherlands", "Germany", "United States")] == [
        "the United Kingdom",
        "the Netherlands",
        "Germany",
        "the United States",
    ]


def test_a_salesforce_custom_field_reads_without_its_suffix():
    from icp_research.analyses.blueprint.statement import column_label

    assert column_label("tech_stack_c: Snowflake") == "tech stack: Snowflake"
    assert column_label("is_partner_c") == "is partner"
    assert column_label("crm") == "CRM" and column_label("referral_source") == "referral source"


def test_a_project_without_deals_is_not_told_to_wait_for_closed_deals():
    """A billing-only project (subscriptions, no opportunities) read "more closed deals would
    narrow that" and "more closed deals would settle those": it has no deals to close."""
    import types

    from icp_research.analyses.blueprint.statement import no_icp_statement

    facts = pd.DataFrame({"account_id": ["a", "b", "c"], "is_customer": [True, True, False]})
    study = types.SimpleNamespace(
        facts=facts,
        as_of=pd.Timestamp("2025-03-31"),
        variation={},
        has=lambda table: table != "opportunities",
    )
    summary = pd.DataFrame(
        {
            "outcome": ["retained", "retained"],
            "predictor": ["referral_source", "industry"],
            "verdict": ["no evidence", "no evidence"],
            "mde": [0.23, 0.6],
            "mde_unit": ["rate_diff", "rate_diff"],
            "underpowered": [False, True],
        }
    )
    upstream = types.SimpleNamespace(
        caveats=[], sources={"significance": "04"}, predictor_summary=summary
    )
    text = no_icp_statement(study, upstream, [], outcome="retained")
    assert "closed deals" not in text
    assert "more customers with a year behind them would narrow that" in text
    assert (
        "Only industry had too little data to tell customers who stayed from those who left (on "
        "other outcomes the predictor report says which could)" in text
    )
    empty = upstream.predictor_summary.iloc[0:0]
    text = no_icp_statement(
        study, types.SimpleNamespace(caveats=[], sources={}, predictor_summary=empty), []
    )
    assert "deals" not in text
    assert text.endswith("Re-run when more customers have had time to stay or leave.")
    study.has = lambda table: True
    text = no_icp_statement(
        study, types.SimpleNamespace(caveats=[], sources={}, predictor_summary=empty), []
    )
    assert text.endswith(
        "Re-run when more deals have closed and customers have had time to stay or leave."
    )


def test_a_trait_chosen_for_best_customer_status_is_not_said_chosen_for_retention():
    """A first user's blueprint: "the ICP takes 500+ employees, chosen for retention, while
    the predictor tests favour 201+ employees for best-customer status", beside "every
    characteristic rests on best-customer status alone ... none held up for retention". The
    rule's evidence shown first was the ICP's own outcome; the trait was chosen for
    best-customer status, where both reports agree it helps."""
    from types import SimpleNamespace

    from icp_research.analyses.antipatterns import Condition
    from icp_research.analyses.blueprint.findings import _outcome_differences
    from icp_research.analyses.blueprint.rules import Rule

    sample = SimpleNamespace(outcome="retained", words=("retention", "retained", "customers"))
    retention = SimpleNamespace(better=True, sample=sample)
    rule = Rule(
        "include",
        [Condition("employees", "at_least", 500)],
        "employees",
        role="filter",
        evidence=[retention],
    )
    favour = {"outcome": "best_customer", "direction": "favour", "level": ">= 201"}
    trait = {"attribute": "employees", "kind": "numeric", "levels": [favour]}
    blueprint = SimpleNamespace(labels={}, include=[rule], characteristics=[trait])
    # Chosen for retention (no outcome recorded): the old sentence stands.
    (sentence,) = _outcome_differences(blueprint)
    assert "chosen for retention, while the predictor tests it was chosen from favour" in sentence
    # Chosen for best-customer status: no sentence setting one against the other.
    trait["outcomes"] = ["best_customer"]
    assert _outcome_differences(blueprint) == []
    # Chosen for best-customer status, and another outcome favours other sizes: said so.
    trait["levels"].append({"outcome": "won", "direction": "favour", "level": "< 51"})
    (sentence,) = _outcome_differences(blueprint)
    assert "chosen for best-customer status, while" in sentence
    assert sentence.endswith("favour fewer than 51 employees for winning deals.")
