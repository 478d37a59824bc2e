"""Columns that record what happened, not who the company is.

A warehouse's dimension tables hold the current state (the plan now, the seats now, another
system's id filled in once sales touched the account): read as traits, they draw an ICP from
the outcomes they record. Each test here failed on the code before its fix.
"""

from __future__ import annotations

import re

import numpy as np
import pandas as pd
import pytest

import icp_research as icp
from icp_research.analyses import deals as deal_analysis
from icp_research.analyses.blueprint.upstream import Upstream, drop_contract_evidence
from icp_research.analyses.profile import _range_label
from icp_research.methods.predictors import test_predictors as run_predictor_tests

from .conftest import write_project
from .studies import AS_OF, deal_tables, make_study


def _write(tmp_path, accounts: pd.DataFrame, subscriptions=None, opportunities=None, extra=""):
    files = {"accounts.csv": accounts.to_csv(index=False)}
    config = (
        f'[project]\nname = "t"\nas_of = "{AS_OF:%Y-%m-%d}"\n'
        '[tables.accounts]\npath = "accounts.csv"\n'
    )
    if subscriptions is not None:
        files["subs.csv"] = subscriptions.to_csv(index=False)
        config += '[tables.subscriptions]\npath = "subs.csv"\n'
    if opportunities is not None:
        files["deals.csv"] = opportunities.to_csv(index=False)
        config += '[tables.opportunities]\npath = "deals.csv"\n'
    return write_project(tmp_path, files, config + extra)


def test_columns_named_like_a_key_are_not_traits(tmp_path):
    """A CRM company id beside the workspace id (BIGINT, blank for self-serve) was tested as a
    number and drew "hubspot company id from 8,000,000,000 to under 15,000,000,000" as the ICP."""
    rng = np.random.default_rng(1)
    n = 80
    accounts = pd.DataFrame(
        {
            "account_id": [f"w{i}" for i in range(n)],
            "hubspot_company_id": np.where(
                rng.random(n) < 0.5, rng.integers(8_000_000_000, 15_000_000_000, n), np.nan
            ),
            "Salesforce ID": [f"001{i:012d}" if i % 3 else "" for i in range(n)],
            "industry": rng.choice(["SaaS", "Retail"], n),
            "employees": rng.integers(5, 500, n),
            "paid": rng.integers(0, 2, n),  # "id" inside a word is not a key
        }
    )
    study = icp.open_study(_write(tmp_path, accounts), reuse_snapshot=False)
    spec = study.attributes
    assert spec.excluded["hubspot_company_id"] == "an identifier (named like one), not a trait"
    assert spec.excluded["salesforce_id"] == "an identifier (named like one), not a trait"
    assert {"industry", "employees", "paid"} <= set(spec.all)
    assert not {"hubspot_company_id", "salesforce_id"} & set(spec.all)


def test_a_trend_that_separates_the_outcome_is_not_tested():
    """Seats now split won from lost deals completely: the clustered logit ran away and
    ``math.exp`` overflowed (OverflowError), failing three reports."""
    rng = np.random.default_rng(2)
    accounts = np.repeat(np.arange(120), 2)
    seats = rng.integers(1, 50, 120).astype(float)[accounts]
    won = seats > 25
    data = pd.DataFrame({"account_id": accounts, "seats_now": seats, "won": won})
    result = run_predictor_tests(data, "won", numeric=["seats_now"], cluster="account_id")
    trend = result.summary.query("predictor == 'seats_now' and kind == 'trend'").iloc[0]
    assert trend["note"].startswith("not tested: its values separate the outcome")
    assert "[attributes] exclude" in trend["note"]
    assert np.isnan(trend["p_value"]) and not trend["significant"]


def test_a_range_over_every_bin_reads_as_any_value():
    """Every bin of a numeric attribute over-represented among best customers (its value is
    recorded only for them) had no edges: ``fmt_edge(None)`` raised a TypeError."""
    assert _range_label(None, None) == "any value"
    assert _range_label(None, 60) == "< 60"
    assert _range_label(1000, None) == ">= 1,000"


def _plan_churn_tables():
    """60 paying accounts; 22 churn, 20 of them in the last quarter, and their plan is "free"
    now (the plan column is the current plan), every other account's "pro"."""
    n = 60
    ids = [f"a{i:02d}" for i in range(n)]
    churned_late = set(ids[:20])
    churned_early = set(ids[20:22])
    ends = []
    for i in ids:
        if i in churned_late:
            ends.append(AS_OF - pd.Timedelta(days=30))
        elif i in churned_early:
            ends.append(AS_OF - pd.Timedelta(days=200))
        else:
            ends.append(pd.NaT)
    accounts = pd.DataFrame(
        {
            "account_id": ids,
            "plan_name": ["free" if i in churned_late | churned_early else "pro" for i in ids],
            "industry": ["SaaS" if k % 2 else "Retail" for k in range(n)],
        }
    )
    subscriptions = pd.DataFrame(
        {
            "account_id": ids,
            "start_date": AS_OF - pd.Timedelta(days=700),
            "end_date": ends,
            "arr": 12_000.0,
        }
    )
    return accounts, subscriptions


def test_a_column_outcome_like_on_the_last_date_stays_out_on_earlier_ones(tmp_path):
    """The blueprint chooses the ICP as of an earlier date, where the plan-now column did not
    yet tell churned customers apart (2 churns): it came back as a predictor and drew the
    exclude rule "plan = free" that every new lead of a freemium product meets."""
    accounts, subscriptions = _plan_churn_tables()
    config = _write(tmp_path, accounts, subscriptions)
    study = icp.open_study(config, reuse_snapshot=False)
    assert "plan_name" in study.screening.outcome_like
    earlier_date = AS_OF - pd.Timedelta(days=120)
    # Seen on its own, the earlier date's data does not show it (too few churns) ...
    alone = icp.open_study(config, as_of=earlier_date, reuse_snapshot=False)
    assert "plan_name" in alone.attributes.all
    # ... but seen from the later date it stays out, saying why and on which data.
    earlier = study.at(earlier_date)
    assert "plan_name" not in earlier.attributes.all
    why = earlier.attributes.excluded["plan_name"]
    assert why.startswith("looks like an outcome: ")
    assert why.endswith(f"(on the data as of {AS_OF:%Y-%m-%d})")
    assert "industry" in earlier.attributes.all


def test_a_contract_term_that_tells_won_from_lost_is_outcome_like(tmp_path):
    """Seats now, on the accounts table: more for accounts that bought than for the others
    (AUC 0.94 for customers against the rest, short of the 0.95 a trait needs to look like an
    outcome)."""
    rng = np.random.default_rng(5)
    n = 200
    ids = [f"a{i:03d}" for i in range(n)]
    won = rng.random(n) < 0.4
    seats = np.where(won, rng.integers(6, 30, n), rng.integers(1, 12, n))
    accounts = pd.DataFrame(
        {"account_id": ids, "seats": seats, "industry": rng.choice(["SaaS", "Retail"], n)}
    )
    created = AS_OF - pd.to_timedelta(rng.integers(100, 600, n), unit="D")
    opportunities = pd.DataFrame(
        {
            "opportunity_id": [f"o{i}" for i in range(n)],
            "account_id": ids,
            "stage": np.where(won, "won", "lost"),
            "created_at": created,
            "closed_at": created + pd.Timedelta(days=30),
            "amount": 1000.0,
        }
    )
    study = icp.open_study(
        _write(tmp_path, accounts, opportunities=opportunities), reuse_snapshot=False
    )
    why = study.screening.outcome_like.get("seats", "")
    auc = re.search(r"AUC (\d\.\d\d)", why)
    assert why.startswith("a contract term that tells ")
    assert auc is not None and 0.8 <= float(auc.group(1)) < 0.95
    assert "seats" not in study.attributes.all and "industry" in study.attributes.all


def test_the_blueprint_draws_no_rule_from_a_contract_term():
    """Contract terms were kept out of best-customer rules only: "seats < 2" (a churn
    anti-pattern) and plan levels reached the exclude rules and the fit score, which a new
    lead, who has no contract yet, can never meet or miss."""

    class _Study:
        class attributes:  # noqa: N801 - stands in for a Study's attribute spec
            contract = {"seats": "named like one"}

    upstream = Upstream(
        recommended=[{"predictor": "seats", "outcomes": ["retained"]}, {"predictor": "industry"}],
        predictors=pd.DataFrame(
            {"predictor": ["seats", "seats", "industry"], "outcome": ["won", "retained", "won"]}
        ),
        anti_patterns=pd.DataFrame({"attribute": ["seats", "industry"], "rule": ["s", "i"]}),
    )
    (caveat,) = drop_contract_evidence(upstream, _Study())
    assert list(upstream.predictors["predictor"]) == ["industry"]
    assert list(upstream.anti_patterns["attribute"]) == ["industry"]
    assert [i["predictor"] for i in upstream.recommended] == ["industry"]
    assert caveat.startswith("seats is a contract term (part of what a customer pays, which a ")


def test_no_decision_counts_and_pipeline_cover_the_same_reasons():
    """ "Went dark" counts as no decision in the share, but the pipeline beside it summed the
    "No decision" row alone: "ends 53% of lost deals, $4.6M" described two sets of deals."""
    tables = deal_tables(np.random.default_rng(4), whales=0)
    deals = tables["opportunities"]
    dark = deals.index[deals["loss_reason"].eq("No decision")][::3]
    deals.loc[dark, "loss_reason"] = "Went dark"
    study = make_study(tables, categorical=["segment", "color"])
    result = deal_analysis.lost_deal_analysis(study)
    (line,) = [f for f in result.findings if f.startswith("Top loss reasons")]
    lost = deals[deals["stage"].eq("lost")]
    nd = lost[lost["loss_reason"].isin(["No decision", "Went dark"])]
    share = len(nd) / len(lost)
    match = re.search(
        r"\. No decision \((.*?)\) ends (\d+)% of lost deals .*?, \$([\d.]+)M of", line
    )
    assert match is not None, line
    assert sorted(match.group(1).split(", ")) == ["No decision", "Went dark"]
    assert int(match.group(2)) == pytest.approx(round(share * 100), abs=0)
    assert float(match.group(3)) == pytest.approx(nd["amount"].sum() / 1e6, abs=0.05)
    # The "No decision" row alone is a third less: the old figure.
    assert nd["amount"].sum() - lost.loc[lost["loss_reason"].eq("Went dark"), "amount"].sum() < (
        float(match.group(3)) * 1e6 - 0.5e6
    )


def test_a_free_trial_beside_a_paid_subscription_is_no_overlap(tmp_path):
    """$0 trials running beside the paid subscription they turned into were "overlapping
    subscriptions; ARR sums them", though they add nothing; two paid ones still are."""
    accounts = pd.DataFrame({"account_id": ["a", "b", "c"], "industry": ["x", "y", "x"]})
    start = AS_OF - pd.Timedelta(days=300)
    subscriptions = pd.DataFrame(
        {
            "account_id": ["a", "a", "b", "b", "c"],
            "start_date": [start, start + pd.Timedelta(days=5)] * 2 + [start],
            "end_date": [start + pd.Timedelta(days=14), pd.NaT] * 2 + [pd.NaT],
            "arr": [0.0, 1200.0, 600.0, 1200.0, 900.0],
        }
    )
    study = icp.open_study(_write(tmp_path, accounts, subscriptions), reuse_snapshot=False)
    (overlap,) = [p.message for p in study.trust.problems if "overlapping" in p.message]
    assert overlap.startswith("1 account has overlapping paid subscriptions (up to 2 at once;")
    assert "accounts b)" in overlap and " a," not in overlap


def test_deal_types_read_from_their_text_are_named(tmp_path):
    """ "self_serve_upgrade" was read as expansion (by "upgrade") without a word: whether a
    self-serve upgrade counts as new business decides the win rate (28% or 73%)."""
    accounts = pd.DataFrame({"account_id": ["a", "b"], "industry": ["x", "y"]})
    created = AS_OF - pd.Timedelta(days=100)
    opportunities = pd.DataFrame(
        {
            "opportunity_id": ["1", "2", "3", "4"],
            "account_id": ["a", "a", "b", "b"],
            "stage": ["won", "won", "lost", "won"],
            "created_at": created,
            "closed_at": created + pd.Timedelta(days=10),
            "type": ["self_serve_upgrade", "sales_new", "sales_new", "new"],
        }
    )
    config = _write(tmp_path, accounts, opportunities=opportunities)
    report = icp.validate(config)
    (note,) = [p for p in report.problems if p.message.startswith("deal types read")]
    assert note.level == "info" and note.column == "type"
    assert note.message.startswith(
        'deal types read from their text: "sales_new" as new (2 deals), "self_serve_upgrade" '
        "as expansion (1 deal)"
    )
    assert 'a self-serve upgrade from a free plan wins a new customer: = "new"' in note.fix


def test_verbose_validation_lists_twenty_rows_unless_asked(capsys):
    """--verbose printed every kept row (1,000 lines for one harmless note)."""
    from icp_research.cli import _print_problems
    from icp_research.data.loading import Problem, ValidationReport

    report = ValidationReport()
    rows = list(range(2, 1002))
    report.problems.append(
        Problem("warning", "t", "t.csv", "odd", "fix it", "c", rows, 4000, [f"v{r}" for r in rows])
    )
    _print_problems(report, verbose=True)
    lines = capsys.readouterr().out.splitlines()
    assert len(lines) == 22
    assert (
        "(rows 2, 3, 4, 5, 6, 7, 8, 9, 10, 11, 12, 13, 14, 15, 16, 17, 18, 19, 20, 21 and "
        in (lines[0])
    )
    assert "3,980 more)" in lines[0]
    assert lines[-1] == "    ... 980 more kept (validate --verbose --rows 1000 lists them)"
    _print_problems(report, verbose=True, rows=1000)
    assert len(capsys.readouterr().out.splitlines()) == 1001


def test_an_exclude_rule_inside_another_is_left_out():
    """ "Not a fit: companies with 60-149 employees or fewer than 200 employees": the first
    rule was taken before the larger one that holds every account of it."""
    from icp_research.analyses.antipatterns import Condition
    from icp_research.analyses.blueprint.rules import Rule, drop_contained

    facts = pd.DataFrame({"employees": [10, 70, 120, 180, 250, 900, np.nan]})
    inner = Rule("exclude", [Condition("employees", "between", [60, 150])], "employees")
    outer = Rule("exclude", [Condition("employees", "less_than", 200)], "employees")
    other = Rule("exclude", [Condition("employees", "at_least", 800)], "employees")
    notes: list[str] = []
    assert drop_contained([inner, outer, other], facts, notes) == [outer, other]
    assert notes == [
        "60 <= employees < 150: every account of it is excluded by employees < 200 and "
        "employees >= 800 too; left out as redundant."
    ]
    # Overlapping, neither inside the other: both stay.
    wide = Rule("exclude", [Condition("employees", "between", [100, 300])], "employees")
    assert drop_contained([outer, wide], facts, []) == [outer, wide]


def test_several_pipelines_and_blank_types_are_said(tmp_path):
    """A HubSpot deals export with a Sales, a Renewals and a Partner pipeline was analysed as
    one (win rate 31%, the sales pipeline's 25%), and deals without a type counted as new
    business without a word, renewals among them."""
    accounts = pd.DataFrame({"account_id": ["a", "b", "c"], "industry": ["x", "y", "x"]})
    created = AS_OF - pd.Timedelta(days=100)
    opportunities = pd.DataFrame(
        {
            "opportunity_id": [str(i) for i in range(7)],
            "account_id": ["a", "a", "b", "b", "c", "c", "c"],
            "stage": ["won", "lost", "won", "won", "lost", "won", "won"],
            "created_at": created,
            "closed_at": created + pd.Timedelta(days=10),
            "type": ["new", "new", "renewal", None, None, "new", "new"],
            "Pipeline": ["Sales", "Sales", "Renewals", "Renewals", "Partner", "Partner", "Sales"],
        }
    )
    report = icp.validate(_write(tmp_path, accounts, opportunities=opportunities))
    (pipelines,) = [p for p in report.problems if "pipelines" in p.message]
    assert pipelines.level == "warning" and pipelines.column == "Pipeline"
    assert pipelines.message.startswith(
        'deals from 3 pipelines ("Sales" (3 deals), "Renewals" (2 deals), "Partner" (2 deals)) '
        "are analysed together"
    )
    assert 'map type = "Pipeline"' in pipelines.fix
    (blank,) = [p for p in report.problems if "have no type" in p.message]
    assert blank.message.startswith("2 deals have no type: they count as new business, beside ")
    assert blank.rows == [5, 6]  # the file's rows, the header being row 1
    # Dropped to silence "columns not used", the pipelines are still mixed: still said.
    dropped = _write(tmp_path / "dropped", accounts, None, opportunities, 'drop = ["Pipeline"]\n')
    assert any(
        p.message.startswith("deals from 3 pipelines") for p in icp.validate(dropped).problems
    )


def test_the_blueprints_anti_patterns_are_found_on_the_discovery_quarters(monkeypatch):
    """Churn and lost-deal anti-patterns were found on data that included the confirmation
    quarters, then "confirmed" on those same quarters: on data where nothing predicts churn,
    "uses_quickbooks is missing" became an exclude rule that "held up"."""
    import types

    from icp_research.analyses import blueprint as bp
    from icp_research.analyses import churn, deals
    from icp_research.analyses.blueprint import upstream as upstream_module

    seen: dict[str, pd.Timestamp] = {}

    def recorder(name):
        def analysis(study, **_):
            seen[name] = study.as_of
            return types.SimpleNamespace(anti_patterns=pd.DataFrame())

        return analysis

    monkeypatch.setattr(churn, "churn_analysis", recorder("churn"))
    monkeypatch.setattr(deals, "lost_deal_analysis", recorder("deals"))
    tables = deal_tables(np.random.default_rng(4), whales=0)
    study = make_study(tables, categorical=["segment", "color"])
    upstream = upstream_module.upstream_evidence(
        study, significance=None, anti_patterns_as_of=pd.Timestamp("2025-03-31")
    )
    assert seen == {"deals": pd.Timestamp("2025-03-31")}
    assert upstream.sources["anti_patterns"] == "computed: lost deals"
    # The blueprint asks for them as of the end of its discovery quarters.
    asked = {}
    real = bp.build.upstream_evidence

    def spy(*args, **kwargs):
        asked.update(kwargs)
        return real(*args, **kwargs)

    monkeypatch.setattr(bp.build, "upstream_evidence", spy)
    result = bp.build_blueprint(study, backtest_quarters=0, n_boot=50)
    discovered = result.params["periods"]["discovered_on"]["end"]
    assert asked["anti_patterns_as_of"] == pd.Timestamp(discovered)
    assert seen["deals"] == pd.Timestamp(discovered) < study.as_of


def test_yes_no_attributes_are_two_levels_and_leads_write_them_any_way():
    """Technographic flags (uses_quickbooks: TRUE / FALSE / Yes / No) were typed numeric in
    icp.json: a rule "uses_hubspot = True" matched no account, "uses_quickbooks is missing"
    matched every lead (their TRUE was "not a number"), and the health report binned them
    ("uses quickbooks < 1")."""
    from icp_research.analyses.blueprint.build import attribute_types
    from icp_research.data.loading import AttributeSpec
    from icp_research.scoring.model import Attribute, rule_hits

    facts = pd.DataFrame(
        {
            "uses_hubspot": pd.array([True, False, None], dtype="boolean"),
            "employees": [10.0, 20.0, 30.0],
            "industry": ["a", "b", "c"],
        }
    )
    spec = AttributeSpec(["uses_hubspot", "industry"], ["employees"])
    types = attribute_types(["employees", "industry", "uses_hubspot"], facts, spec)
    assert types == {
        "employees": {"type": "numeric", "nonnegative": True},
        "industry": {"type": "categorical"},
        "uses_hubspot": {"type": "categorical", "values": "yes/no"},
    }
    leads = pd.DataFrame({"uses_hubspot": ["TRUE", "yes", "1", "no", "", "FALSE", "True"]})
    spec_doc = {
        "attributes": {"uses_hubspot": types["uses_hubspot"]},
        "rules": {
            "include": [
                {
                    "id": "r1",
                    "kind": "include",
                    "role": "filter",
                    "text": "uses_hubspot = True",
                    "conditions": [
                        {"attribute": "uses_hubspot", "operator": "equals", "value": "True"}
                    ],
                }
            ],
            "exclude": [
                {
                    "id": "r2",
                    "kind": "exclude",
                    "text": "uses_hubspot is missing",
                    "conditions": [{"attribute": "uses_hubspot", "operator": "is_missing"}],
                }
            ],
            "uncertain": [],
        },
    }
    hits = rule_hits(leads, spec_doc)
    assert hits["r1"].tolist() == [True, True, True, False, False, False, True]
    assert hits["r2"].tolist() == [False, False, False, False, True, False, False]
    # The scorecard's levels read the same spellings.
    attribute = Attribute("uses_hubspot", "categorical", ["True", "False"], [10, 0], 5)
    codes, flags = attribute._encode_categorical(pd.Series(["Yes", "n", "TRUE", "maybe"]))
    assert codes.tolist() == [0, 1, 0, 2] and len(flags) == 1


def test_a_no_icp_statement_names_six_attributes_and_counts_the_rest():
    """With 60 enrichment columns the statement listed all 60 detectable effects: a wall of
    text on the dashboard and the one-pager."""
    from icp_research.analyses.blueprint.statement import _first_of

    items = [f"a{i} (±{i} points)" for i in range(60)]
    text = _first_of(items)
    assert text.startswith("a0 (±0 points); a1 (±1 points); ")
    assert text.endswith("; a5 (±5 points); and 54 more attributes")
    assert _first_of(items[:6]) == "; ".join(items[:6])


def test_a_yes_no_condition_reads_yes_or_no():
    """ "Accounts with False as uses mixpanel"."""
    from icp_research.analyses.antipatterns import Condition
    from icp_research.analyses.blueprint.statement import condition_words

    assert condition_words(Condition("uses_mixpanel", "equals", "False")) == (
        "with uses mixpanel: no"
    )
    assert condition_words(Condition("uses_mixpanel", "equals", "True")) == (
        "with uses mixpanel: yes"
    )
    assert condition_words(Condition("crm", "equals", "None")) == "with no CRM"


def test_a_clustered_rate_interval_never_crosses_zero_or_one():
    """2 wins of 10 deals read "20% (0%-44%)": the normal interval clipped at 0, though a rate
    with wins seen cannot be 0. Wilson's on the effective sample size stays inside."""
    from icp_research.methods.stats import clustered_rate_ci, proportion_ci

    rate, low, high, k = clustered_rate_ci([1, 1] + [0] * 8, [1] * 10)
    n_eff = 0.2 * 0.8 / (10 / 9 * (2 * 0.8**2 + 8 * 0.2**2) / 100)
    expected = proportion_ci(0.2 * n_eff, n_eff)
    assert (rate, k) == (0.2, 10) and 0 < low < 0.2 < high < 1
    assert (low, high) == pytest.approx((float(expected[0]), float(expected[1])), abs=1e-12)
    assert round(low, 3) == 0.053 and round(high, 3) == 0.526
    # Away from 0 and 1 the sandwich interval is unchanged.
    _, low, high, _ = clustered_rate_ci([30, 20], [100, 100])
    assert (low, high) == pytest.approx((0.25 - 1.959964 * 0.05, 0.25 + 1.959964 * 0.05), abs=1e-6)


def test_the_customers_tile_says_how_many_are_active():
    """Beside the ARR tile, "Customers 1,490" read as 1,490 paying; 322 of them had churned."""
    from icp_research.analyses.overview import data_overview

    study = icp.open_study(None)
    facts = study.facts
    ever = int(facts["is_customer"].astype(bool).sum())
    active = int(facts["retained"].fillna(False).astype(bool).sum())
    assert active < ever
    assert data_overview(study).headline["Customers"] == f"{active:,} active of {ever:,}"
