"""A dbt project's marts read from a DuckDB file as a warehouse: ``dbt_plg`` under
tests/fixtures/exports/ (seeded generator beside it), with the config as written for it.

A product-led company: workspaces upgrade themselves (``self_serve_upgrade`` deals) or buy
through sales (``sales_new``), Stripe-shaped subscriptions with $0 trials, and a dimension
table whose current-state columns record how each story ended. Nothing predicts anything. The
headline figures equal the generator's ground truth; the current-state columns and the HubSpot
id are never predictors, on the run's date or on the earlier dates the blueprint chooses and
validates on; and no ICP is drawn.
"""

from __future__ import annotations

import json

import pandas as pd
import pytest

import icp_research as icp
from icp_research.analyses import overview, patterns, significance
from icp_research.analyses.blueprint import build_blueprint
from icp_research.analyses.blueprint.build import study_periods

from .conftest import FIXTURES

duckdb = pytest.importorskip("duckdb", reason="DuckDB is not installed (optional)")

DBT = FIXTURES / "exports" / "dbt_plg"
TRUTH = json.loads((DBT / "ground_truth.json").read_text(encoding="utf-8"))
CURRENT_STATE = ("plan_tier", "is_active", "seats_current")
KEY = "hubspot_company_id"


@pytest.fixture(scope="module")
def plg():
    return icp.open_study(DBT / "icp.toml", reuse_snapshot=False)


@pytest.fixture(scope="module")
def blueprint(plg):
    return build_blueprint(plg)


def test_the_marts_are_typed_as_dbt_builds_them():
    with duckdb.connect(str(DBT / "analytics.duckdb"), read_only=True) as con:
        types = dict(
            con.execute(
                "select column_name, data_type from information_schema.columns "
                "where table_schema = 'marts' and table_name = 'dim_workspaces'"
            ).fetchall()
        )
        nulls = con.execute(
            "select count(*) filter (where hubspot_company_id is null), count(*) "
            "from marts.dim_workspaces"
        ).fetchone()
    assert types["plan_tier"].startswith("ENUM(")
    assert (types[KEY], types["is_active"], types["seats_current"]) == (
        "BIGINT",
        "BOOLEAN",
        "INTEGER",
    )
    assert nulls == (755, 1000)  # workspaces sales and marketing never touched


@pytest.mark.parametrize("day", ["2026-12-01", "2026-09-30"])
def test_headline_figures_equal_the_truth(plg, day):
    truth = TRUTH[f"at_{day}"]
    study = plg if day == "2026-12-01" else plg.at(day)
    assert study.as_of == pd.Timestamp(day)  # the run's date: the day dbt last ran
    facts = study.facts
    assert int(facts["is_customer"].sum()) == truth["customers"]  # 244 / 238
    assert int(facts["churned"].fillna(False).astype(bool).sum()) == truth["churned"]  # 95 / 90
    totals = overview.data_overview(study).totals
    assert totals["customers"] == truth["customers"]
    assert round(totals["arr"], 2) == truth["arr"]  # 1,280,999.52 / 1,167,440.64
    # New business is sales_new alone: a self-serve upgrade is read as expansion.
    rate = totals["win_rate"]
    assert rate["n"] == truth["sales_new_closed"]  # 133 / 128
    assert rate["rate"] == pytest.approx(truth["win_rate_sales_new"], abs=1e-6)
    assert truth["win_rate_if_upgrades_were_new_business"] > 0.7 > 2 * rate["rate"]


def test_the_truth_is(plg):
    truth = TRUTH["at_2026-12-01"]
    assert (truth["customers"], truth["churned"], truth["arr"]) == (244, 95, 1_280_999.52)
    assert (truth["sales_new_won"], truth["sales_new_closed"]) == (44, 133)


def _assert_not_predictors(study):
    spec = study.attributes
    for column in (*CURRENT_STATE, KEY):
        assert column not in spec.all, (study.as_of, column)
    assert spec.excluded[KEY] == "an identifier (named like one), not a trait"
    for column in CURRENT_STATE:
        assert spec.excluded[column].startswith("looks like an outcome: "), column


def test_current_state_columns_and_the_hubspot_id_are_never_predictors(plg):
    _assert_not_predictors(plg)
    outcome_like = plg.screening.outcome_like
    assert outcome_like["is_active"] == 'named like one: "active"'
    assert outcome_like["plan_tier"].startswith("a contract term that tells ")
    assert outcome_like["seats_current"].startswith("a contract term that tells ")
    analysis = plg.analysis
    periods = study_periods(
        plg, int(analysis["holdout_quarters"]), int(analysis["validation_quarters"])
    )
    earlier = [
        periods["selection_as_of"],
        pd.Timestamp(periods["discovered_on"]["end"]),
    ]
    assert [d.strftime("%Y-%m-%d") for d in earlier] == ["2026-06-30", "2025-12-31"]
    for day in earlier:
        _assert_not_predictors(plg.at(day))


def test_the_predictor_and_pattern_reports_never_test_them(plg):
    tested = set(significance.predictor_significance(plg).summary["predictor"])
    assert tested and not tested & {*CURRENT_STATE, KEY}
    found = patterns.pattern_discovery(plg)
    assert found is not None


def test_no_icp_is_drawn(blueprint):
    assert not blueprint.drawn
    assert blueprint.statement.startswith("No ICP can be drawn from this data")
    assert blueprint.include == [] and blueprint.exclude == []
    for rule in blueprint.uncertain:
        assert not {c.attribute for c in rule.conditions} & {*CURRENT_STATE, KEY}, rule.text
