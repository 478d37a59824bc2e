"""The ICP blueprint: rules from planted truths, honesty on noise, icp.json, the one-pager."""

from __future__ import annotations

import json
import re
from html import escape as html_escape

import numpy as np
import pandas as pd
import pytest

import icp_research as icp
from icp_research.analyses import blueprint as bp
from icp_research.analyses.antipatterns import Condition
from icp_research.analyses.blueprint.conditions import (
    best_range,
    condition_interval,
    contains,
    overlaps,
)
from icp_research.analyses.blueprint.rules import main_evidence
from icp_research.analyses.blueprint.samples import outcome_samples
from icp_research.analyses.blueprint.segments import segment_icps
from icp_research.analyses.blueprint.upstream import _snapshot_as_of
from icp_research.errors import ConfigError, InputError
from icp_research.scoring.model import rule_columns, score_leads

from .studies import AS_OF, make_study

GOOD = ("Alpha", "Beta")
BAD = "Echo"


def blueprint_tables(rng, n: int = 900, *, signal: bool = True) -> dict:
    """Accounts with one to three new-business deals each over three years.

    With ``signal``, deals win more at industries Alpha / Beta (+1.1 log-odds) and at
    100-999 employees (+0.9), less at Echo (-0.9); ``color`` is noise. Without it nothing
    matters. Outcomes cluster by account (a random effect).
    """
    ids = [f"A{i:04d}" for i in range(n)]
    industry = rng.choice([*GOOD, "Charlie", "Delta", BAD], n, p=[0.2, 0.2, 0.2, 0.2, 0.2])
    employees = np.round(np.exp(rng.normal(np.log(200), 1.3, n))).clip(3, 40_000)
    color = rng.choice(["red", "green", "blue"], n)
    created = AS_OF - pd.to_timedelta(rng.integers(30, 1100, n), unit="D")
    effect = rng.normal(0, 0.5, n)
    if signal:
        effect += (
            1.1 * np.isin(industry, GOOD)
            + 0.9 * ((employees >= 100) & (employees < 1000))
            - 0.9 * (industry == BAD)
        )
    rows = []
    for i, account in enumerate(ids):
        for j in range(int(rng.integers(1, 4))):
            span = max((AS_OF - created[i]).days - 1, 1)
            opened = created[i] + pd.Timedelta(days=int(rng.integers(0, span)))
            closed = opened + pd.Timedelta(days=int(rng.integers(15, 120)))
            p = 1 / (1 + np.exp(-(-1.6 + effect[i])))
            stage = "open" if closed > AS_OF else ("won" if rng.random() < p else "lost")
            rows.append(
                {
                    "opportunity_id": f"{account}-{j}",
                    "account_id": account,
                    "stage": stage,
                    "created_at": opened,
                    "closed_at": closed if stage != "open" else pd.NaT,
                    "amount": float(rng.integers(5, 60) * 1000),
                    "loss_reason": None if stage != "lost" else "Price",
                    "type": "new",
                }
            )
    accounts = pd.DataFrame(
        {
            "account_id": ids,
            "industry": industry,
            "employees": employees,
            "color": color,
            "created_at": created,
        }
    )
    opportunities = pd.DataFrame(rows)
    opportunities["closed_at"] = pd.to_datetime(opportunities["closed_at"])
    return {"accounts": accounts, "opportunities": opportunities}


def _study(seed: int, *, signal: bool):
    rng = np.random.default_rng(seed)
    return make_study(
        blueprint_tables(rng, n=1500, signal=signal),
        categorical=["industry", "color"],
        numeric=["employees"],
    )


@pytest.fixture(scope="module")
def planted():
    study = _study(11, signal=True)
    return study, bp.build_blueprint(study, backtest_quarters=2, n_boot=200)


@pytest.fixture(scope="module")
def noise():
    study = _study(12, signal=False)
    return study, bp.build_blueprint(study, backtest_quarters=2, n_boot=200)


# ---------------------------------------------------------------------------------------------
# Building blocks


def test_level_condition_reads_every_bin_label():
    assert bp.level_condition("employees", "< 60", "bin") == Condition("employees", "less_than", 60)
    assert bp.level_condition("employees", ">= 1,000", "bin") == Condition(
        "employees", "at_least", 1000
    )
    assert bp.level_condition("annual_revenue", "8,000,000 to < 20,000,000", "bin") == Condition(
        "annual_revenue", "between", [8e6, 2e7]
    )
    assert bp.level_condition("crm", "(missing)", "level") == Condition("crm", "is_missing")
    assert bp.level_condition("crm", "None", "level") == Condition("crm", "equals", "None")
    assert bp.level_condition("industry", "(other)", "level") is None
    assert bp.level_condition("employees", "(trend)", "trend") is None


def test_best_range_finds_the_sweet_spot_not_just_more(rng):
    x = np.exp(rng.normal(np.log(200), 1.3, 20_000))
    inside = (x >= 100) & (x < 1000)
    y = rng.random(x.size) < np.where(inside, 0.35, 0.18)
    edges = [20, 50, 100, 200, 500, 1000, 2000, 5000]
    lower, upper, z = best_range(x, y, edges)
    assert (lower, upper) == (100, 1000) and z > 10
    # Nothing to find: no range beats the rest by much, and none at all when flat.
    assert best_range(x, np.zeros(x.size), edges) is None


def test_overlap_and_containment_of_conditions():
    include = Condition("employees", "between", [100, 1000])
    assert overlaps(include, Condition("employees", "less_than", 200))
    assert not overlaps(include, Condition("employees", "less_than", 60))
    assert contains(include, Condition("employees", "between", [150, 250]))
    assert not contains(include, Condition("employees", "at_least", 600))
    industries = Condition("industry", "in", ["A", "B"])
    assert overlaps(industries, Condition("industry", "equals", "A"))
    assert not overlaps(industries, Condition("industry", "equals", "C"))
    assert not overlaps(industries, Condition("industry", "is_missing"))


def test_tier_spec_reads_the_config_mappings_lists_and_shares():
    study = _study(1, signal=False)
    assert bp.tier_spec(None, study) == {
        "fixed": [("Tier 1", 70.0), ("Tier 2", 40.0), ("Tier 3", 0.0)]
    }
    assert bp.tier_spec('{"A": 0, "B": 50}', study) == {"fixed": [("B", 50.0), ("A", 0.0)]}
    assert bp.tier_spec("shares", study)["shares"] == [0.2, 0.3, 0.5]
    assert bp.tier_spec([0.1, 0.9], study) == {"shares": [0.1, 0.9], "names": ["Tier 1", "Tier 2"]}
    with pytest.raises(InputError, match="last tier must start at 0"):
        bp.tier_spec({"Tier 1": 70, "Tier 2": 40}, study)
    with pytest.raises(InputError, match="add up to 1"):
        bp.tier_spec([0.5, 0.2], study)
    with pytest.raises(InputError, match="mapping"):
        bp.tier_spec("Tier 1 = 70", study)


# ---------------------------------------------------------------------------------------------
# A planted truth


def test_blueprint_names_the_planted_icp(planted):
    _, result = planted
    assert result.drawn
    include = {r.text for r in result.include}
    assert "industry in {Alpha, Beta}" in include
    size = next(r for r in result.include if r.attribute == "employees")
    low, high = condition_interval(size.conditions[0])
    assert 75 <= low <= 150 and 750 <= high <= 1500, size.text
    assert "industry = Echo" in {r.text for r in result.exclude}
    # Noise never makes a rule.
    assert all(r.attribute != "color" for r in [*result.include, *result.exclude])
    # Every rule carries evidence that held up, with its interval and q-value.
    for rule in result.include:
        main = main_evidence(rule)
        assert main.better and main.q_value < 0.05 and rule.replicated
        assert main.training["ci_low"] > 1 and main.sample.outcome == "won"
    assert "This product fits mid-size Alpha and Beta companies" in result.statement
    assert "Not a fit: companies in Echo." in result.statement
    # No survey and no feedback: the need is left out, never a placeholder, and the report
    # says what to add to the config.
    assert "[" not in result.statement and " need " not in result.statement
    assert any("[tables.survey]" in c and "[codebook]" in c for c in result.caveats)
    assert result.confidence["level"] in ("high", "moderate")


def test_fit_score_ranks_the_holdout_and_tiers_convert_differently(planted):
    _, result = planted
    v = result.validation
    assert v.auc > 0.6 and v.auc_low > 0.5
    rates = v.summary.set_index("tier")["rate"]
    assert rates["Tier 1"] > 1.8 * rates["Tier 3"]
    icp_vs_rest = result.icp_vs_rest[0]
    assert icp_vs_rest["outcome"] == "won" and icp_vs_rest["ratio"] > 1.5
    # The backtest refits at each quarter's start and scores the accounts known then.
    assert list(result.backtest_summary["quarter"]) == ["2026Q1", "2026Q2"]
    assert (result.backtest_summary["trained_on"] > 0).all()


def test_icp_json_is_complete_and_scores_like_the_blueprint(planted):
    study, result = planted
    document = json.loads(json.dumps(result.to_json()))
    for key in (
        "format",
        "kit_version",
        "as_of",
        "name",
        "statement",
        "rules",
        "scorecard",
        "tiers",
        "validation",
        "characteristics",
        "headline",
    ):
        assert key in document, key
    assert set(document["rules"]) >= {"include", "exclude", "uncertain"}
    rule = document["rules"]["include"][0]
    assert {"id", "text", "conditions", "evidence", "role"} <= set(rule)
    evidence = rule["evidence"][0]
    for key in ("n", "rate_in", "rate_out", "lift", "ci_low", "ci_high", "q_value", "replicated"):
        assert key in evidence, key
    assert document["validation"]["auc"] == pytest.approx(result.validation.auc)
    assert [t["name"] for t in document["tiers"]] == ["Tier 1", "Tier 2", "Tier 3"]
    assert "Holdout AUC" in document["headline"]
    # The dashboard shows how sure the ICP is beside its statement.
    assert document["headline"]["How sure of the ICP"] == result.confidence["level"]
    # One code path: the same rules and points through score_leads.
    scored = score_leads(document, study.facts)
    assert len(scored) == len(study.facts)
    assert scored["in_icp"].mean() == pytest.approx(result.icp_share)
    hits = rule_columns(study.facts, document)["rules_hit"]
    assert hits.str.contains("include: industry in {Alpha, Beta}", regex=False).any()


def test_statement_override_keeps_the_draft(planted):
    study, result = planted
    custom = bp.build_blueprint(
        study,
        statement="Our own words.",
        backtest_quarters=0,
        n_boot=50,
        significance=None,
        anti_patterns=pd.DataFrame(),
    )
    assert custom.statement == "Our own words." and custom.statement_source == "analyst"
    assert custom.statement_drafted.startswith("This product fits")
    assert custom.to_json()["statement"] == "Our own words."


def test_one_icp_for_every_segment_when_the_rules_work_alike(planted):
    _, result = planted
    # The planted effects are the same at every size: no segment ICP, and thin segments said.
    assert not result.segments["drawn"]
    assert result.segments["verdict"].startswith("One ICP fits every size segment")
    assert "Enterprise has too few customers to judge" in result.segments["verdict"]
    table = result.segments_table()
    assert list(table["segment"]) == ["SMB", "Mid-market", "Enterprise"]
    assert "lift: industry in {Alpha, Beta}" in table.columns


def test_segment_icps_are_drawn_when_a_rule_works_differently_by_size():
    rng = np.random.default_rng(21)
    tables = blueprint_tables(rng, n=1500, signal=False)
    accounts = tables["accounts"]
    mid = accounts["employees"] >= 200
    effect = np.where(accounts["industry"].isin(GOOD), np.where(mid, 1.6, -0.6), 0.0) + rng.normal(
        0, 0.3, len(accounts)
    )
    boost = dict(zip(accounts["account_id"], effect, strict=True))
    deals = tables["opportunities"]
    closed = deals["stage"] != "open"
    p = 1 / (1 + np.exp(-(-1.2 + deals["account_id"].map(boost))))
    deals.loc[closed, "stage"] = np.where(rng.random(closed.sum()) < p[closed], "won", "lost")
    study = make_study(tables, categorical=["industry"], numeric=["employees"])
    samples = outcome_samples(study, ["industry", "employees"], 2)
    rule = bp.Rule("include", [Condition("industry", "in", list(GOOD))], "industry", "filter")
    segments = segment_icps(study, [rule], samples["won"], 0.05)
    assert segments["drawn"], segments["verdict"]
    assert segments["icps"]["Mid-market"] == ["industry in {Alpha, Beta}"]
    assert segments["icps"]["SMB"] == []
    assert "work differently by company size" in segments["verdict"]


@pytest.mark.parametrize("attribute", [False, True])
def test_the_won_sample_carries_each_deals_amount(attribute):
    """The won sample's ``amount`` is the deal's own, looked up by nothing: also when the
    accounts have an attribute called ``amount`` (which stays the account's elsewhere)."""
    rng = np.random.default_rng(8)
    tables = blueprint_tables(rng, n=300)
    numeric = ["employees"]
    if attribute:
        tables["accounts"]["amount"] = -rng.integers(1, 5, len(tables["accounts"])).astype(float)
        numeric.append("amount")
    study = make_study(tables, categorical=["industry"], numeric=numeric)
    samples = outcome_samples(study, ["industry", *numeric], 2)
    won = pd.concat([samples["won"].training, samples["won"].holdout])
    deals = tables["opportunities"].set_index("opportunity_id")["amount"]
    assert len(won) > 100 and "_deal_amount" not in won
    assert np.array_equal(won["amount"].to_numpy(), deals.loc[won["opportunity_id"]].to_numpy())
    assert (won["amount"] > 0).all()


def test_market_sizing_counts_tam_sam_som(planted):
    study, result = planted
    prospects = bp.crm_prospects(study)
    market = bp.market_sizing(result, prospects, label="test list")
    rows = market.summary.set_index("market")
    assert rows.loc["TAM", "accounts"] == len(prospects)
    assert rows.loc["SAM", "accounts"] == int((prospects["industry"] != BAD).sum())
    assert rows.loc["SOM", "accounts"] <= rows.loc["SAM", "accounts"]
    tiers = market.tables["by_tier"]
    assert tiers["accounts"].sum() == len(prospects)


# ---------------------------------------------------------------------------------------------
# Noise and degenerate data


def test_no_icp_on_noise_is_said_plainly(noise):
    study, result = noise
    assert not result.drawn and result.include == [] and result.scorecard is None
    # 1,276 accounts could have shown effects of a few points: waiting for more of the same
    # data is not the advice, other attributes are.
    detectable = "industry (±11 points); color (±9 points); employees (±7 points)"
    assert result.statement == (
        "No ICP can be drawn from this data: nothing measured separates winners from the rest "
        "in a way that held up (1,276 accounts and 201 customers known on 2025-12-31, the data "
        "the ICP is chosen on). On that data the predictor analysis would likely have detected "
        f"effects of these sizes, over all of it, and found none: {detectable}. Smaller effects "
        "cannot be ruled out (more closed deals would narrow that), nor one that began only in "
        "the latest quarters, diluted in the years before (the predictor report screens those "
        "quarters for it), but other attributes in the exports (what the company uses, how it "
        "buys, how it came to us) are the likelier next step."
    )
    # One test of 14 on win rate and one on best-customer rate had p < 0.05, as chance gives:
    # no hypothesis for discovery calls, a note saying so.
    assert result.uncertain == []
    chance = [n for n in result.rule_notes if "what chance gives" in n]
    # The test with p < 0.05 is one of an attribute's several: times their number, it is not.
    assert chance == [
        f"1 of the 14 tests on {outcome} had p < 0.05, but no attribute did once its number of "
        "tests is counted (its smallest p-value times its tests): what chance gives, so none "
        "of them is listed as a hypothesis (they are in the predictor report)."
        for outcome in ("win rate", "best-customer rate")
    ]
    document = json.loads(json.dumps(result.to_json()))
    assert document["rules"]["include"] == [] and document["scorecard"] is None
    assert document["name"] is None and document["confidence"]["level"] == "none"
    assert document["headline"]["ICP"] == "not drawn yet"
    with pytest.raises(ConfigError, match="no fit score") as error:
        score_leads(document, study.facts)
    assert "more closed deals" not in str(error.value)
    assert str(error.value).endswith(
        "no measured attribute predicts the win rate, though effects of "
        f"{detectable.replace(';', ',')} would likely have been detected, so more of the same "
        "data could find only smaller ones; next, add other attributes to the exports and rerun the ICP "
        "blueprint (icp-research run)"
    )
    html = bp.onepager_html(result)
    assert "No ICP drawn yet" in html and "No include rule yet." in html


def test_tiny_study_still_gives_a_valid_blueprint():
    rng = np.random.default_rng(3)
    tables = blueprint_tables(rng, n=25)
    study = make_study(tables, categorical=["industry"], numeric=["employees"])
    result = bp.build_blueprint(study, backtest_quarters=1, n_boot=50)
    assert not result.drawn
    # Too few deals for any effect but a huge one: here more deals is the advice.
    assert result.statement.startswith("No ICP can be drawn from this data yet: ")
    assert "detectable" not in result.outcome
    json.dumps(result.to_json())
    assert result.caveats


def test_outcome_must_be_known(planted):
    study, _ = planted
    with pytest.raises(InputError, match="outcome"):
        bp.build_blueprint(study, outcome="revenue")


# ---------------------------------------------------------------------------------------------
# The one-pager


def test_maven_says_no_icp_can_be_drawn_yet():
    from pathlib import Path

    from icp_research.data.config import load_config

    config = Path(__file__).resolve().parent.parent / "examples" / "maven-crm" / "icp.toml"
    if not (config.parent / load_config(config).tables["accounts"].path).exists():
        pytest.skip("the public Maven export is not beside this checkout")
    study = icp.open_study(config)
    result = bp.build_blueprint(study, n_boot=200)
    assert not result.drawn and result.scorecard is None and result.include == []
    assert result.statement.startswith("No ICP can be drawn from this data yet")
    assert all(r.kind == "uncertain" for r in result.uncertain)
    document = json.loads(json.dumps(result.to_json()))
    assert document["rules"]["include"] == [] and document["scorecard"] is None
    # Five quarters of history: the validation quarters leave little to choose on, and the
    # blueprint says so.
    assert any("before the confirmation quarters" in c for c in result.caveats)
    assert "No ICP drawn yet" in bp.onepager_html(result)


def test_onepager_is_one_self_contained_escaped_page(planted):
    _, result = planted
    result.project = "<script>alert(1)</script> & Co"
    html = bp.onepager_html(result)
    assert "<script>" not in html and "&lt;script&gt;" in html
    assert not re.search(r"(?:src|href)\s*=\s*[\"']?(?:https?:)?//", html)
    assert "@page { size: landscape" in html  # A4 or Letter, whichever the printer has
    for text in (result.name, "Include (fit)", "Exclude (not a fit)", "Fit-score tiers"):
        assert html_escape(text) in html
    assert html_escape(result.statement.split(".")[0]) in html


def test_onepager_escapes_rule_values():
    rule = bp.Rule("include", [Condition("industry", "equals", "<b>x</b>")], "industry", "filter")
    result = bp.Blueprint(title="t", name="<i>n</i>", include=[rule], statement="a < b")
    html = bp.onepager_html(result)
    assert "<b>x</b>" not in html and "&lt;b&gt;x&lt;/b&gt;" in html
    assert "<i>n</i>" not in html and "a &lt; b" in html


# ---------------------------------------------------------------------------------------------
# The demo, read from a run's artifacts


def test_blueprint_reuses_the_runs_artifacts(demo_run):
    artifacts = demo_run.out_dir / "artifacts"
    study = icp.open_study(data_dir=artifacts / "data", artifacts_dir=artifacts)
    upstream = bp.upstream_evidence(study)
    assert upstream.sources["significance"].startswith("read from icp_predictors.json")
    assert upstream.sources["anti_patterns"].startswith("read from anti_patterns_churn.csv")
    assert {item["predictor"] for item in upstream.recommended} == {
        "employees",
        "industry",
        "crm",
        "referral_source",
    }
    # A folder of another as-of date is not trusted: everything is computed again.
    other = study.at("2026-06-30")
    assert _snapshot_as_of(artifacts) == "2026-09-30" != other.as_of.strftime("%Y-%m-%d")


def test_uncertain_rules_on_noise_carry_the_q_value_of_their_whole_family(monkeypatch):
    """Findings picked because p < alpha, corrected only among themselves, read as evidence
    (q = 0.04 beside 'not significant once corrected'); each keeps the q-value of the family of
    tests it came from, which on noise is not below alpha. (Seed 14: two suggestive findings
    keep their direction in the confirmation quarters, one does not. The gate that lists no
    suggestive finding when there are no more of them than chance gives is turned off here:
    it is tested on its own below.)"""
    from icp_research.analyses.blueprint import rules

    monkeypatch.setattr(rules, "_suggestive_at_chance", lambda rows, alpha, notes: set())
    study = _study(14, signal=False)
    result = bp.build_blueprint(study, backtest_quarters=2, n_boot=50)
    (gone,) = [n for n in result.rule_notes if "suggestive difference" in n]
    assert gone.startswith("1 suggestive difference of the discovery quarters")
    # The rules were chosen on the data as it was before the validation quarters.
    chosen_on = study.at(pd.Timestamp(result.params["periods"]["selected_on"]["end"]))
    predictors = bp.upstream_evidence(chosen_on).predictors
    from_significance = [r for r in result.uncertain if r.reason.startswith("suggestive")]
    assert from_significance, "the noise study has suggestive findings to check"
    for rule in from_significance:
        evidence = rule.evidence[0]
        assert evidence.q_value >= study.alpha
        outcome = evidence.sample.outcome
        tests = predictors.loc[predictors["outcome"] == outcome, "hypothesis_id"].nunique()
        assert f"over the {tests:,} tests on" in rule.reason
        assert evidence.q_value in set(predictors.loc[predictors["outcome"] == outcome, "q_value"])


def test_expected_pipeline_backtests_the_sum_of_win_probabilities(planted):
    """Issue 22.3: the sum of win probabilities over deals against what closed, per validation
    quarter, by segment and tier; and the expected wins of the deals open now."""
    from icp_research.analyses.blueprint.pipeline import expectation_backtest, open_pipeline

    study, result = planted
    assert result.calibration is not None and result.calibration.usable
    backtest = expectation_backtest(result, study)
    quarters = backtest[(backtest["segment"] == "all") & (backtest["tier"] == "all")]
    assert list(quarters["quarter"]) == ["2026Q1", "2026Q2", "all"]
    fitted = quarters.iloc[0]
    # The logistic calibration is fitted on the confirmation quarters and the earlier validation
    # quarter together: its probabilities add up to their wins (maximum likelihood with an
    # intercept), so this quarter's come close, without the exactness of a fit on it alone.
    periods = result.params["periods"]
    assert result.calibration.calibration.period["start"] == periods["confirmed_on"]["start"]
    assert fitted["expected"] == pytest.approx(fitted["won"], rel=0.15)
    assert fitted["expected"] != pytest.approx(fitted["won"], rel=1e-6)
    # Segments and tiers partition each quarter's deals, expected and won.
    for _quarter, part in backtest.groupby("quarter"):
        total = part[(part["segment"] == "all") & (part["tier"] == "all")].iloc[0]
        for split in ("segment", "tier"):
            rows = part[(part[split] != "all")]
            assert rows["deals"].sum() == total["deals"]
            assert rows["won"].sum() == total["won"]
            assert rows["expected"].sum() == pytest.approx(total["expected"])
    checked = quarters.iloc[1]
    assert checked["ci_low"] <= checked["observed_expected"] <= checked["ci_high"]
    now = open_pipeline(result, study)
    everything = now[(now["segment"] == "all") & (now["tier"] == "all")].iloc[0]
    table = result.tables["expected_pipeline"]
    assert set(table["kind"]) == {"closed", "open"}
    closed_view, open_view = bp.pipeline_tables(table)
    assert len(closed_view) == len(backtest) and len(open_view) == len(now)
    deals = study.deals
    open_deals = deals[deals["is_new_business"] & ~deals["is_closed"] & deals["account_id"].notna()]
    assert everything["open_deals"] == len(open_deals) > 0
    assert 0 < everything["expected_wins"] < everything["open_deals"]


def test_market_sizing_shows_a_value_column_only_when_tiers_give_one():
    import numpy as np

    from icp_research.analyses.blueprint.market import sizing_table
    from icp_research.result import Result

    result = Result(title="Market sizing")
    result.summary = pd.DataFrame(
        {
            "market": ["TAM", "SAM"],
            "definition": ["every company", "no exclude rule applies"],
            "accounts": [10, 8],
            "share_of_tam": [1.0, 0.8],
            "value": [np.nan, np.nan],
        }
    )
    assert list(sizing_table(result).columns) == [
        "market",
        "definition",
        "accounts",
        "share of TAM",
    ]
    result.summary["value"] = [1000.0, 800.0]
    assert sizing_table(result)["value at the tier's median won deal"].tolist() == ["$1.0k", "$800"]


def test_a_numeric_trait_of_one_bin_gives_no_include_rule_without_bounds():
    # A number with too few values to cut ("all") that predicts only by being filled in (a
    # parent company's record id read as a number) became "parent_company < inf": written to
    # icp.json as null, which the health report and icp-research score then could not read.
    from icp_research.analyses.blueprint.rules import _include_condition

    characteristic = {
        "attribute": "parent_company",
        "kind": "numeric",
        "outcomes": ["won"],
        "levels": [{"level": "all", "direction": "favour", "low": None, "high": None}],
    }
    condition, how = _include_condition(characteristic, None, {}, "won")
    assert condition is None
    assert how == "the favoured bin holds every value: only being filled in sets it apart"
    characteristic["levels"] = [
        {"level": ">= 40M", "direction": "favour", "low": 4e7, "high": None}
    ]
    condition, _ = _include_condition(characteristic, None, {}, "won")
    assert (condition.operator, condition.value) == ("at_least", 4e7)


def test_an_icp_resting_on_a_few_groups_of_subsidiaries_says_so_and_is_low_confidence():
    # Three enterprise groups (a parent and its subsidiaries, linked by HubSpot's "Parent
    # Company") won nearly every deal; counted as 12 independent accounts, "Aerospace" held up
    # as the ICP with moderate confidence. Counted by group it is three customers.
    from types import SimpleNamespace

    from icp_research.analyses.antipatterns import Condition
    from icp_research.analyses.blueprint.findings import group_confidence, group_notes
    from icp_research.analyses.blueprint.rules import Rule
    from icp_research.analyses.blueprint.samples import Sample

    parents = ["P1", "P2", "P3"]
    subs = [f"S{i}" for i in range(12)]
    others = [f"A{i}" for i in range(20)]
    facts = pd.DataFrame(
        {
            "account_id": parents + subs + others,
            "industry": ["Aero"] * 15 + ["Aero"] * 2 + ["Retail"] * 18,
            "parent_company": [None] * 3 + [float(5001 + i % 3) for i in range(12)] + [None] * 20,
        }
    )
    facts.loc[:2, "account_id"] = ["5001", "5002", "5003"]
    deals = pd.DataFrame(
        {
            "account_id": [*subs * 3, "A0", "A1", *others[2:] * 2],
            "industry": ["Aero"] * 38 + ["Retail"] * 36,
            "y": [1.0] * 36 + [0.0, 1.0] + [0.0, 1.0, 0.0] * 12,
        }
    )
    sample = Sample("won", "deals", "rate", deals, deals.iloc[0:0], True)
    rule = Rule("include", [Condition("industry", "equals", "Aero")], "industry", role="filter")
    blueprint = SimpleNamespace(drawn=True, include=[rule])
    from icp_research.data.loading import account_groups

    study = SimpleNamespace(account_groups=account_groups(facts))
    column, notes = group_notes(blueprint, study, sample)
    assert column == "parent_company"
    assert notes == [
        "industry = Aero: 36 of its 38 deals in the discovery period come from 12 accounts of "
        "3 groups linked by parent_company (subsidiaries of one parent), 3 customers' worth of "
        "evidence; outside them it has 2 deals, 50% with the outcome"
    ]
    caveats = []
    confidence = group_confidence(
        {"level": "moderate", "reason": "2 of 2 held up."}, column, notes, caveats
    )
    assert confidence["level"] == "low"
    assert caveats[0].startswith("The ICP rests on a few customer groups, not on a segment:")
    # Without a parent-company column nothing changes.
    plain = SimpleNamespace(account_groups=account_groups(facts.drop(columns="parent_company")))
    assert group_notes(blueprint, plain, sample) == ("", [])


def test_an_attribute_an_uncertain_rule_favours_is_not_listed_as_found_none():
    # The no-ICP statement listed tech_stack_c: Snowflake among the attributes whose effects
    # "would likely have been detected and found none", beside an uncertain rule favouring it
    # (p = 0.003, q = 0.08): a planted ICP of Snowflake users of 200-2,000 employees at 2x.
    from icp_research.analyses.antipatterns import Condition
    from icp_research.analyses.blueprint.rules import Rule
    from icp_research.analyses.blueprint.statement import without_signals

    snowflake = Rule("uncertain", [Condition("tech_stack_c: Snowflake", "equals", "True")], "x")
    snowflake.direction = "favour"
    small = Rule("uncertain", [Condition("employees", "less_than", 100)], "employees")
    small.direction = "avoid"
    powered = [
        "industry (±13 points)",
        "tech_stack_c: Snowflake (±13 points)",
        "employees (±9 points)",
    ]
    kept, signals = without_signals(powered, [snowflake, small])
    assert kept == ["industry (±13 points)", "employees (±9 points)"]
    assert signals == ["tech_stack_c: Snowflake = True"]


def test_a_churn_candidate_the_discovery_quarters_did_not_find_is_named(tmp_path):
    """The churn report (whole period) proposes an exclude rule that the blueprint, which
    finds its own on the discovery quarters only, cannot test: the blueprint says so, rather
    than let it vanish between the two pages."""
    from icp_research.analyses.blueprint.upstream import Upstream, _note_found_later

    pd.DataFrame(
        {
            "rule_id": ["churn:referral_source:product_hunt", "churn:industry:Consulting"],
            "source": ["churn", "churn"],
            "status": ["candidate", "candidate"],
            "rule": ["referral_source = product_hunt", "industry = Consulting"],
            "words": ["with product_hunt as referral source", "in Consulting"],
            "value": ['"product_hunt"', '"Consulting"'],
            "q_value": [0.016, 0.001],
        }
    ).to_csv(tmp_path / "anti_patterns_churn.csv", index=False)
    upstream = Upstream()
    upstream.anti_patterns = pd.DataFrame(
        {"rule_id": ["churn:industry:Consulting"], "status": ["candidate"]}
    )
    _note_found_later(upstream, tmp_path, "2025-09-30")
    (note,) = upstream.caveats
    assert note.startswith(
        "Found on the whole period but not on the discovery quarters alone (to 2025-09-30): "
        "with product_hunt as referral source (the churn report, q = 0.02)."
    )
    assert "Consulting" not in note
    upstream = Upstream()
    upstream.anti_patterns = pd.DataFrame(
        {"rule_id": ["churn:industry:Consulting", "churn:referral_source:product_hunt"]}
        | {"status": ["candidate", "candidate"]}
    )
    _note_found_later(upstream, tmp_path, "2025-09-30")
    assert upstream.caveats == []


def test_market_sizing_says_what_the_accounts_that_never_paid_are():
    accounts = pd.DataFrame({"account_id": ["a", "b"], "kind": ["x", "y"]})
    deals = pd.DataFrame(
        {
            "opportunity_id": ["o1"],
            "account_id": ["a"],
            "stage": ["won"],
            "created_at": [pd.Timestamp("2025-01-01")],
            "closed_at": [pd.Timestamp("2025-02-01")],
        }
    )
    billing_only = make_study({"accounts": accounts}, categorical=["kind"])
    assert bp.crm_prospects_label(billing_only) == (
        "accounts in the data that never paid (sign-ups, lapsed trials)"
    )
    crm = make_study({"accounts": accounts, "opportunities": deals}, categorical=["kind"])
    assert bp.crm_prospects_label(crm) == "prospects already in the CRM"


def test_a_fit_score_that_ranks_the_validation_quarters_backwards_is_not_shipped():
    """Industries Alpha / Beta win more on the quarters the ICP is chosen and confirmed on,
    and less on the latest ones. A score that ranks the validation quarters backwards (AUC
    below 0.50) was shipped with tiers and a win probability ("Tier 1" leads at half Tier
    3's); now the report says why there is no fit score and the rules still apply."""
    rng = np.random.default_rng(11)
    tables = blueprint_tables(rng, n=1500, signal=True)
    deals = tables["opportunities"]
    late = deals["closed_at"] > AS_OF - pd.Timedelta(days=183)
    good = deals["account_id"].map(
        tables["accounts"].set_index("account_id")["industry"].isin(GOOD)
    )
    flip = np.random.default_rng(1).random(len(deals))
    deals.loc[late & good, "stage"] = "lost"
    deals.loc[late & ~good, "stage"] = np.where(flip[late & ~good] < 0.5, "won", "lost")
    study = make_study(tables, categorical=["industry", "color"], numeric=["employees"])
    result = bp.build_blueprint(study, backtest_quarters=1, n_boot=100)
    assert result.drawn and result.validation is not None
    assert result.validation.auc < 0.5
    assert result.scorecard is None and result.calibration is None
    (caveat,) = [c for c in result.caveats if c.startswith("No fit score")]
    assert "ranked the" in caveat and "backwards (AUC 0." in caveat
    assert "--rules-only" in caveat
    document = json.loads(json.dumps(result.to_json()))
    assert document["scorecard"] is None


def test_an_icp_of_exclusions_only_says_who_does_not_fit_first():
    """Health churns 3x as fast and nothing else matters: the blueprint holds the exclude rule
    "industry = Health" and no include rule, and its statement said "No ICP can be drawn:
    nothing measured separates customers who stayed from the rest" above that rule."""
    from icp_research.data.facts import DAYS_PER_YEAR

    rng = np.random.default_rng(3)
    n = 1500
    ids = [f"A{i:04d}" for i in range(n)]
    industry = rng.choice(["Health", "Retail", "SaaS", "Media", "Logistics", "Energy"], n)
    start = AS_OF - pd.to_timedelta(rng.uniform(30, 1400, n).round(), unit="D")
    hazard = 0.02 * np.where(industry == "Health", 3.0, 1.0)
    months = rng.exponential(1 / hazard)
    churn_at = start + pd.to_timedelta((months * DAYS_PER_YEAR / 12).round(), unit="D")
    churned = np.asarray(churn_at <= AS_OF)
    tables = {
        "accounts": pd.DataFrame(
            {"account_id": ids, "industry": industry, "created_at": start - pd.Timedelta(days=30)}
        ),
        "subscriptions": pd.DataFrame(
            {
                "account_id": ids,
                "start_date": start,
                "end_date": pd.Series(churn_at).where(churned, pd.NaT),
                "arr": rng.lognormal(9, 0.5, n),
            }
        ),
    }
    study = make_study(tables, categorical=["industry"])
    result = bp.build_blueprint(study, outcome="retained", backtest_quarters=1, n_boot=100)
    assert not result.drawn and not result.include
    assert [r.text for r in result.exclude] == ["industry = Health"]
    assert result.statement.startswith(
        "Who fits cannot be drawn yet, but who does not held up in the confirmation quarters: "
        "not a fit: companies in Health (the exclude rules below). "
    )
    assert "nothing measured separates" not in result.statement
    assert "no account characteristic predicted" not in result.statement


def test_market_sizing_without_an_icp_rules_or_score_sizes_nothing(noise):
    """With no ICP, no exclude rule and no fit score, "285 (100%) pass the filters (SAM)"
    read as a finding; there are no filters."""
    study, result = noise
    assert not result.drawn and not result.exclude and result.scorecard is None
    market = bp.market_sizing(result, study.facts.head(50), label="test list")
    assert market.findings[0] == (
        "50 companies are on the test list; with no ICP, no exclude rule and no fit score there "
        "is nothing to size them by (the whole list is the total market)."
    )
    assert not any("pass the filters" in f for f in market.findings)


def test_referral_sources_nobody_recognises_are_not_read_as_no_referrals():
    """A German export's Quelle (Messe, Website, Empfehlung, Kaltakquise) as referral_source:
    "Empfehlung" is a referral, and with no value recognised the blueprint read "0% of all
    customers came by referral ... below the 30% rule of thumb"."""
    import types

    from icp_research.analyses.blueprint.market import pmf_indicators

    from .studies import churn_tables, make_study

    rng = np.random.default_rng(5)
    tables = churn_tables(rng, n=200)
    sources = rng.choice(["Messe", "Website", "Empfehlung", "Kaltakquise"], 200)
    tables["accounts"] = tables["accounts"].assign(referral_source=sources)
    study = make_study(tables, categorical=["tier"])
    referred = study.facts.set_index("account_id")["referred"]
    assert referred.astype(bool).sum() == (sources == "Empfehlung").sum() > 0
    result = pmf_indicators(study, types.SimpleNamespace(scorecard=None))
    shares = result.summary.set_index("group")["share"]
    customers = study.facts[study.facts["is_customer"].fillna(False).astype(bool)]
    assert shares["all customers"] == pytest.approx(customers["referred"].astype(bool).mean())
    tables["accounts"] = tables["accounts"].assign(
        referral_source=rng.choice(["Messe", "Website", "Kaltakquise"], 200)
    )
    study = make_study(tables, categorical=["tier"])
    result = pmf_indicators(study, types.SimpleNamespace(scorecard=None))
    assert result.summary.empty
    assert not any("came by referral" in f for f in result.findings)
    assert any(
        "is recognised as a referral" in c and "referral_values" in c for c in result.caveats
    )
    # Beside a lead source that has referrals (a Salesforce "Account Source" mapped as the
    # referral source, and "Partner Referral" leads), the lead source is read.
    leads = rng.choice(["Partner Referral", "Web", "Event"], 200)
    tables["accounts"] = tables["accounts"].assign(lead_source=leads)
    study = make_study(tables, categorical=["tier"])
    assert study.facts.attrs["referral_column"] == "lead_source"
    referred = study.facts.set_index("account_id")["referred"].astype(bool)
    assert referred.sum() == (leads == "Partner Referral").sum() > 0
    result = pmf_indicators(study, types.SimpleNamespace(scorecard=None))
    assert result.summary.set_index("group").loc["all customers", "n"] > 0
    assert (
        "Referrals are read from the lead source of each account's first deal (none of the "
        "accounts' referral_source values is a referral)." in result.caveats
    )


def _family(outcome: str, predictors: dict) -> pd.DataFrame:
    rows = []
    for predictor, (pvalues, significant) in predictors.items():
        for i, p in enumerate(pvalues):
            rows.append(
                {
                    "outcome": outcome,
                    "predictor": predictor,
                    "level": f"l{i}",
                    "hypothesis_id": f"{predictor}={i}",
                    "p_value": p,
                    "significant": significant and p < 0.001,
                }
            )
    return pd.DataFrame(rows)


def test_suggestive_findings_are_counted_by_attribute_against_chance():
    """A null export's one chance fluctuation gives small p-values on several levels of one
    attribute (counted as 4 of 16 independent tests: "beyond chance", p = 0.007), and one real
    predictor's strong levels let two noise ones through as hypotheses for discovery calls.
    Counted by attribute, Bonferroni within each, neither is beyond chance; two attributes
    suggestive on their own are."""
    from icp_research.analyses.blueprint.rules import _suggestive_at_chance

    noise = [0.3, 0.5, 0.7, 0.9]
    one_fluctuation = _family(
        "won",
        {
            "employees": ([0.01, 0.02, 0.03, 0.04], False),
            "a": (noise, False),
            "b": (noise, False),
            "c": (noise, False),
        },
    )
    notes: list[str] = []
    assert _suggestive_at_chance(one_fluctuation, 0.05, notes) == {"won"}
    assert notes[0].startswith(
        "4 of the 16 tests on win rate had p < 0.05; counted by attribute (each by its smallest "
        "p-value times its number of tests), 1 of the 4 attributes without a significant "
        "finding: chance alone gives 0.2 on average, and 1 or more 19% of the time."
    )
    real_and_noise = _family(
        "won",
        {
            "plan": ([1e-6, 1e-5, 1e-4], True),
            "source": ([0.02, 0.04], False),
            "a": (noise, False),
            "b": (noise, False),
            "c": (noise, False),
        },
    )
    assert _suggestive_at_chance(real_and_noise, 0.05, []) == {"won"}
    two_attributes = _family(
        "won",
        {
            "source": ([0.002, 0.6], False),
            "region": ([0.001, 0.5, 0.7], False),
            "a": (noise, False),
            "b": (noise, False),
        },
    )
    assert _suggestive_at_chance(two_attributes, 0.05, []) == set()
    within = _family("won", {"source": ([0.03, 0.04], False), "a": (noise, False)})
    notes = []
    assert _suggestive_at_chance(within, 0.05, notes) == {"won"}
    assert notes == [
        "2 of the 6 tests on win rate had p < 0.05, but no attribute did once its number of "
        "tests is counted (its smallest p-value times its tests): what chance gives, so none "
        "of them is listed as a hypothesis (they are in the predictor report)."
    ]


def test_an_exclude_candidate_that_reverses_on_enough_rows_is_not_a_hypothesis():
    """On null exports a third of runs listed an uncertain rule "worse earlier; did not hold
    up"; one that the confirmation quarters show the other way round, on 30 or more of its
    rows, is what chance looks like. Fewer rows, or the same direction unconfirmed, stays
    uncertain."""
    import types

    from icp_research.analyses.blueprint.rules import MIN_EXCLUDE_REVERSAL_ROWS, _reversed

    def evidence(n, lift, direction=-1, replicated=False):
        return types.SimpleNamespace(
            holdout={"n": n, "lift": lift}, direction=direction, replicated=replicated
        )

    assert MIN_EXCLUDE_REVERSAL_ROWS == 30
    assert _reversed(evidence(40, 1.2))  # lost more in discovery, won more after
    assert _reversed(evidence(40, 1.0))
    assert not _reversed(evidence(40, 0.8))  # still worse, not confirmed: uncertain
    assert not _reversed(evidence(29, 1.5))  # too few rows to tell
    assert not _reversed(evidence(40, 1.5, replicated=None))  # not checked
    assert _reversed(evidence(60, 0.7, direction=1))  # churned faster, then slower
    assert not _reversed(evidence(60, float("nan")))
    # With intervals: the confirmation must rule out the discovered effect. 2 churns in 16
    # customer-years (0.4x, 0.1x-3.0x) do not rule out the 3x found; 0.4x (0.2x-0.8x) does.
    thin = evidence(30, 0.4, direction=1)
    thin.holdout.update(ci_low=0.1, ci_high=3.0)
    thin.training = {"lift": 3.0}
    assert not _reversed(thin)
    firm = evidence(30, 0.4, direction=1)
    firm.holdout.update(ci_low=0.2, ci_high=0.8)
    firm.training = {"lift": 3.0}
    assert _reversed(firm)


def test_a_tie_on_a_few_rows_is_not_said_to_go_the_other_way():
    """'employees < 40 ... not re-tested (not significant earlier); there it went the other
    way' at 0.99x on 9 deals: a tie on too few rows to tell."""
    import types

    from icp_research.analyses.blueprint.evidence import holdout_verdict

    def verdict(n, lift):
        evidence = types.SimpleNamespace(
            replicated=None,
            held_up=False,
            holdout={"n": n, "lift": lift},
            direction=1,
            significant=False,
            sample=types.SimpleNamespace(unit="deals"),
        )
        return holdout_verdict(evidence)

    assert verdict(9, 0.99) == "not re-tested (not significant earlier)"
    assert verdict(40, 0.99) == "not re-tested (not significant earlier)"
    assert verdict(9, 0.5) == "not re-tested (not significant earlier)"
    assert verdict(40, 0.8).endswith("; there it went the other way")
    assert verdict(40, 1.3) == "not re-tested (not significant earlier)"


def test_an_unconfirmed_finding_is_a_hypothesis_only_beyond_chance_over_the_families_searched():
    """Each family of tests is corrected on its own, so with seven families (three outcomes
    in the predictor significance, churn, win rate and 'no decision' anti-patterns, the
    combination search) a third of null exports listed a finding "significant earlier; did not
    hold up" as a hypothesis. One not confirmed afterwards is listed only when its q in its
    family is below alpha / families; the others are named in a note."""
    from icp_research.analyses.blueprint.rules import Rule, unconfirmed_at_chance

    def rule(text, reason, q):
        return Rule(
            "uncertain",
            [Condition(text, "equals", "x")],
            text,
            direction="avoid",
            reason=reason,
            found_q=q,
        )

    families = [f"family {i}" for i in range(7)]
    weak = rule("a", "worse earlier; did not hold up in the confirmation quarters", 0.03)
    strong = rule("b", "significant earlier; did not hold up in the confirmation quarters", 0.004)
    unchecked = rule("c", "worse earlier; too little data in the confirmation quarters", 0.0072)
    suggestive = rule("d", "suggestive (p = 0.01), not significant once corrected", 0.4)
    combination = rule("e", "a combination significant earlier; it did not hold up", 0.02)
    unknown = rule("f", "significant earlier; did not hold up", float("nan"))
    given = [weak, strong, unchecked, suggestive, combination, unknown]
    kept, notes = unconfirmed_at_chance(given, families, 0.05)
    assert kept == [strong, suggestive, unknown]
    (note,) = notes
    assert note.startswith(
        "a = x (q = 0.03 in its family), c = x (q = 0.007 in its family) and e = x (q = 0.02 "
        "in its family): significant in the family of tests they were found in, and not "
        "confirmed in the quarters after."
    )
    assert "7 families of tests were searched (family 0, " in note
    assert "q of 0.00714 (alpha / 7) or more" in note
    assert note.endswith(
        "what chance gives in up to 35% of exports where nothing matters, so they are not "
        "listed as hypotheses."
    )
    # One family searched: its own correction is the whole correction.
    assert unconfirmed_at_chance(given, ["won"], 0.05) == (given, [])


def test_a_null_export_lists_no_unconfirmed_finding_as_a_hypothesis():
    """Seed 22 of the null study: "employees >= 2,000" lost more deals in the discovery
    quarters (q = 0.01 among the lost-deal analysis's tests) and was not confirmed; with seven
    families searched that is what chance gives, so it is a note, not an uncertain rule."""
    study = _study(22, signal=False)
    result = bp.build_blueprint(study, backtest_quarters=2, n_boot=50)
    assert not result.drawn and not result.exclude
    assert [r.text for r in result.uncertain] == []
    (note,) = [n for n in result.rule_notes if "families of tests were searched" in n]
    assert note.startswith("employees >= 2,000 (win rate 0% vs 20% in the discovery quarters, ")
    assert "so it is not listed as a hypothesis" in note


def test_an_icp_that_did_worse_on_the_validation_quarters_says_so_with_its_statement():
    """A market that moved on: FinTech won 2x until the validation quarters, then 0.35x. The
    statement, the caveats and the confidence say so; the health report leads with it."""
    import types

    from icp_research.analyses.blueprint.build import _worse_on_validation
    from icp_research.analyses.health import worse_when_validated

    row = {
        "outcome": "won",
        "unit": "deals",
        "n_icp": 40,
        "rate_icp": 0.1,
        "n_rest": 498,
        "rate_rest": 0.285,
        "ratio": 0.3507,
        "ci_low": 0.136,
        "ci_high": 0.903,
    }
    blueprint = types.SimpleNamespace(
        drawn=True,
        icp_vs_rest=[row],
        outcome={"name": "won", "label": "win rate"},
        statement="This product fits FinTech companies.",
        statement_source="drafted",
        confidence={"level": "moderate", "reason": "2 of 2 defining rules held up"},
        params={},
    )
    caveats: list[str] = []
    _worse_on_validation(blueprint, caveats)
    warning = (
        "On the validation quarters, on which nothing was chosen, ICP accounts did worse than "
        "the rest (win rate 10% vs 28%, 0.35x, 95% CI 0.14–0.90): the profile drawn from the "
        "quarters before no longer holds there. Read the ICP health report before acting on it."
    )
    # The statement is what was chosen; the warning stands beside it.
    assert blueprint.statement == "This product fits FinTech companies."
    assert blueprint.params["worse_on_validation"] == warning
    assert caveats == [warning]
    assert blueprint.confidence["level"] == "low"
    spec = {
        "outcome": {"name": "won", "label": "win rate"},
        "validation": {
            "icp_vs_rest": [row],
            "validated_on": {"start": "2026-04-01", "end": "2026-09-30"},
        },
    }
    assert worse_when_validated(spec).startswith(
        "On its validation quarters (2026-04-01 to 2026-09-30), on which nothing was chosen, "
        "ICP accounts did significantly worse than the rest on win rate: 10% vs 28% (0.35x, "
        "95% CI 0.14–0.90; 40 ICP and 498 other deals)."
    )
    # Not below 1: nothing said, nothing changed.
    fine = types.SimpleNamespace(**{**vars(blueprint), "icp_vs_rest": [{**row, "ci_high": 1.2}]})
    fine.confidence, fine.params = {"level": "moderate"}, {}
    _worse_on_validation(fine, caveats := [])
    assert (fine.params, caveats, fine.confidence["level"]) == ({}, [], "moderate")
    spec["validation"]["icp_vs_rest"] = [{**row, "ci_high": 1.2}]
    assert worse_when_validated(spec) is None


def test_wording_of_checks_the_wrong_way_round_and_a_withheld_score():
    from icp_research.analyses.changelog import _no_score_sentence
    from icp_research.scoring.scorecard import _ratio_sentence

    row = {
        "group_a": "Tier 1",
        "group_b": "Tier 3",
        "n_a": 100,
        "n_b": 100,
        "ratio": 0.6,
        "ci_low": 0.4,
        "ci_high": 0.9,
        "rate_a": 0.15,
        "rate_b": 0.25,
    }
    sentence, finding = _ratio_sentence(row, "won", "in the latest quarters", "deals")
    assert finding and sentence == (
        "Tier 1 has only 0.6x the won rate of Tier 3 (95% CI 0.4–0.9x; 15% vs 25%) in the "
        "latest quarters: the wrong way round."
    )
    assert _no_score_sentence({"validation": {"auc": 0.46}}) == (
        "The fit score was fitted but withheld this time: it ranked the validation quarters "
        "backwards (AUC 0.46)."
    )
    assert _no_score_sentence({"validation": {}}) == "No fit score could be fitted this time."


def test_confirmation_quarters_where_nothing_happened_cannot_refute_a_rule():
    """ "0% vs 0% (ratio –): did not hold up" reported a check that could not be made."""
    from icp_research.analyses.blueprint.evidence import _contrast_possible

    assert not _contrast_possible({"rate_in": 0.0, "rate_out": 0.0})
    assert not _contrast_possible({"rate_in": 1.0, "rate_out": 1.0})
    assert _contrast_possible({"rate_in": 0.0, "rate_out": 0.2})
    assert _contrast_possible({"rate_in": 0.45, "rate_out": 0.0})


def test_a_channel_that_held_up_is_said_first_when_no_trait_of_the_company_did():
    """Partner referrals win twice as often and nothing else matters: the blueprint holds the
    include rule "lead_source = Partner Referral" as a signal (how accounts came, not who they are), no
    defining rule, and its statement said "No ICP can be drawn: nothing measured separates
    winners from the rest in a way that held up" while that rule had held up."""
    rng = np.random.default_rng(11)
    n = 900
    ids = [f"A{i:04d}" for i in range(n)]
    source = rng.choice(
        ["Partner Referral", "Web", "Outbound", "Event"], n, p=[0.25, 0.35, 0.25, 0.15]
    )
    industry = rng.choice(["Retail", "SaaS", "Media", "Energy"], n)
    rows = []
    for account, channel in zip(ids, source, strict=True):
        p_win = 0.5 if channel == "Partner Referral" else 0.22
        for j in range(int(rng.integers(1, 5))):
            created = AS_OF - pd.Timedelta(days=int(rng.integers(40, 1000)))
            won = rng.random() < p_win
            rows.append(
                {
                    "opportunity_id": f"{account}-{j}",
                    "account_id": account,
                    "stage": "won" if won else "lost",
                    "created_at": created,
                    "closed_at": created + pd.Timedelta(days=int(rng.integers(10, 60))),
                    "type": "new",
                }
            )
    tables = {
        "accounts": pd.DataFrame(
            {
                "account_id": ids,
                "lead_source": source,
                "industry": industry,
                "created_at": AS_OF - pd.Timedelta(days=1100),
            }
        ),
        "opportunities": pd.DataFrame(rows),
    }
    study = make_study(tables, categorical=["lead_source", "industry"])
    result = bp.build_blueprint(study, outcome="won", backtest_quarters=0, n_boot=50)
    assert not result.drawn
    (channel,) = [r for r in result.include if r.role == "signal"]
    assert channel.text == "lead_source = Partner Referral" and channel.replicated
    assert result.statement.startswith(
        "How accounts came to us made a difference: they convert best when lead source is "
        "Partner Referral. Lead source is Partner Referral, win rate: "
    )
    assert "nothing else measured separates winners" in result.statement
    assert "nothing measured separates" not in result.statement
    assert "how it came to us)" not in result.statement
    assert result.confidence["reason"] == (
        "No ICP could be drawn: no characteristic of the company held up in the confirmation "
        "quarters (how accounts came to us did: lead_source = Partner Referral)."
    )
    # The score's top tier is made of referrals: its referral share says nothing of fit.
    from icp_research.analyses.blueprint.market import pmf_indicators

    assert "lead_source" in {a.name for a in result.scorecard.attributes}
    findings = pmf_indicators(study, result).findings
    (tier,) = [f for f in findings if f.startswith("Tier 1 customers: ")]
    assert tier.endswith(
        "but the score gives points for the lead_source that referrals are read from, so this "
        "says nothing of product-market fit."
    )
    assert not any(f.startswith("Among Tier 1") for f in findings)


def test_a_confirmation_too_small_to_tell_is_not_called_a_failure():
    """A first user's planted 2x effect: "confirmation quarters 11% vs 8% (1.37x, 95% CI
    0.78-2.40): did not hold up", an interval that holds the 2.14x found earlier as well as no
    difference. That is no verdict either way, and is said so; an interval that rules the
    effect out is still "did not hold up"."""
    from types import SimpleNamespace

    from icp_research.analyses.blueprint.evidence import holdout_verdict, too_few_to_tell
    from icp_research.analyses.blueprint.rules import _confirmation_too_few

    def evidence(low, high):
        return SimpleNamespace(
            replicated=False,
            held_up=False,
            training={"lift": 2.14},
            holdout={"n": 123, "lift": 1.37, "ci_low": low, "ci_high": high},
        )

    wide = evidence(0.78, 2.40)
    assert too_few_to_tell(wide)
    assert holdout_verdict(wide).startswith("not confirmed, too few to tell")
    narrow = evidence(0.78, 1.90)  # the 2.14x found earlier is ruled out
    assert not too_few_to_tell(narrow)
    assert holdout_verdict(narrow) == "did not hold up"
    assert not too_few_to_tell(evidence(1.1, 2.4))  # no difference is ruled out: not failed
    row = {"effect": 2.14, "ci_low_confirm": 0.78, "ci_high_confirm": 2.40}
    assert _confirmation_too_few(row)
    assert not _confirmation_too_few({**row, "ci_high_confirm": 1.9})
    assert not _confirmation_too_few({**row, "ci_low_confirm": None})


def test_discovery_starts_with_the_first_thing_that_happened_not_the_oldest_account():
    """A CRM keeps companies created years before any deal: the report read "discovered on
    2021-01-13 to ..." for deals from 2023-07."""
    from icp_research.analyses.blueprint.build import study_periods

    from .studies import make_study

    accounts = pd.DataFrame(
        {"account_id": ["A1", "A2"], "created_at": pd.to_datetime(["2021-01-13", "2023-01-01"])}
    )
    deals = pd.DataFrame(
        {
            "opportunity_id": ["O1", "O2"],
            "account_id": ["A1", "A2"],
            "stage": ["won", "lost"],
            "created_at": pd.to_datetime(["2023-07-03", "2023-08-01"]),
            "closed_at": pd.to_datetime(["2023-09-01", "2023-10-01"]),
        }
    )
    study = make_study(
        {"accounts": accounts, "opportunities": deals}, as_of=pd.Timestamp("2026-06-30")
    )
    periods = study_periods(study, 2, 2)
    assert periods["discovered_on"]["start"] == "2023-07-03"
    only_accounts = make_study({"accounts": accounts}, as_of=pd.Timestamp("2026-06-30"))
    assert study_periods(only_accounts, 2, 2)["discovered_on"]["start"] == "2021-01-13"


def test_findings_say_when_the_rules_did_not_hold_up_and_when_the_lift_may_be_none(planted):
    """A first user's leaky score became an ICP whose summary said it "rests on 1
    characteristic that predicted success and held up in the confirmation quarters" beside "0
    of 1 defining rule held up", and "2.09x, 95% CI 0.91-4.78, within the 2-3x commonly
    expected of a good ICP"."""
    import copy

    from icp_research.analyses.blueprint.findings import findings_of

    _, result = planted
    assert result.drawn
    held = findings_of(result)
    assert any("and held up in the confirmation quarters: who the company is" in f for f in held)
    shaky = copy.deepcopy(result)
    for rule in shaky.include:
        if rule.role == "filter":
            for evidence in rule.evidence:
                evidence.replicated, evidence.replicated_upstream = False, False
    for row in shaky.icp_vs_rest:
        row["ci_low"] = 0.91
    said = findings_of(shaky)
    (rests,) = [f for f in said if f.startswith("It rests on")]
    assert "in the predictor analysis: who the company is" in rests
    assert "held up in the confirmation quarters" not in rests
    assert rests.endswith("held up: a provisional ICP, to confirm next quarter.")
    (lift,) = [f for f in said if f.startswith("In the latest")]
    assert lift.endswith(", an interval that includes no difference.")
    assert "commonly expected" not in lift


def test_a_defining_rule_worse_on_the_icps_own_outcome_is_no_part_of_it():
    """A first user's Salesforce export: "This product fits larger Healthcare companies (150+
    employees)", measured on winning deals, while its own evidence had larger companies win
    0.83x as often (q = 0.01): the size rule came from best-customer status (bigger contracts)."""
    from types import SimpleNamespace

    from icp_research.analyses.antipatterns import Condition
    from icp_research.analyses.blueprint.build import against_own_outcome
    from icp_research.analyses.blueprint.rules import Rule

    def evidence(outcome, words, better, worse, lift):
        sample = SimpleNamespace(outcome=outcome, words=(words, "", ""))
        training = {"lift": lift, "ci_low": lift * 0.87, "ci_high": lift * 1.15}
        return SimpleNamespace(sample=sample, better=better, worse=worse, training=training)

    size = Rule(
        "include",
        [Condition("employees", "at_least", 150)],
        "employees",
        role="filter",
        evidence=[
            evidence("won", "win rate", False, True, 0.83),
            evidence("best_customer", "best-customer rate", True, False, 113.2),
        ],
    )
    industry = Rule(
        "include",
        [Condition("industry", "equals", "Healthcare")],
        "industry",
        role="filter",
        evidence=[evidence("won", "win rate", True, False, 1.9)],
    )
    kept, moved = against_own_outcome([size, industry], "won")
    assert kept == [industry] and moved == [size]
    assert size.kind == "uncertain" and size.role == ""
    assert size.reason.startswith(
        "it predicted best-customer rate, but on win rate, the outcome the ICP is measured on, "
        "it did significantly worse (0.83x"
    )
    # Measured on best-customer status, the same rule stays.
    size.kind, size.role = "include", "filter"
    assert against_own_outcome([size], "best_customer") == ([size], [])
