"""Lost-deal analysis: clustered deals built by hand, degenerate data, the demo, Maven."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

import icp_research as icp
from devtools.demo_data import PLANTED_TRUTH
from icp_research.analyses import antipatterns, deals
from icp_research.data.config import load_config
from icp_research.methods import stats
from icp_research.pipeline.runner import NotebookSpec, missing_requirement

from .studies import deal_tables, make_study

NOISE = set(PLANTED_TRUTH["no_effect"])
ROOT = Path(__file__).parent.parent


@pytest.fixture(scope="module")
def demo_study():
    return icp.open_study()


@pytest.fixture(scope="module")
def demo(demo_study):
    return deals.lost_deal_analysis(demo_study)


def _spec(name: str) -> NotebookSpec:
    """The notebook's declared needs, read without validating the whole notebook."""
    path = ROOT / "notebooks" / f"{name}.ipynb"
    meta = json.loads(path.read_text(encoding="utf-8"))["metadata"]["icp_research"]
    return NotebookSpec(path, name, meta["title"], meta["requires"], meta["after"])


def _study(seed=3, **kwargs):
    tables = deal_tables(np.random.default_rng(seed), **kwargs)
    return tables, make_study(tables, categorical=["segment", "color"])


# ---------------------------------------------------------------------------------------------
# Cluster-robust statistics


def test_loss_reasons_are_counted_as_pd_crosstab_counts_them():
    rng = np.random.default_rng(7)
    n = 5000
    accounts = pd.Series(
        pd.array(rng.choice([f"a{i}" for i in range(300)] + [None], n), dtype="string"),
        name="account_id",
    )
    reasons = pd.Series(
        pd.array(rng.choice(["Price", "Timing", "Competitor", None], n), dtype="string"),
        name="reason",
    )
    expected = pd.crosstab(accounts, reasons)
    counted = deals._crosstab(accounts, reasons)
    pd.testing.assert_frame_equal(counted, expected, check_dtype=False)
    assert counted.to_numpy().sum() == int((accounts.notna() & reasons.notna()).sum())


def test_clustered_rate_test_counts_accounts_not_deals():
    rng = np.random.default_rng(1)
    # Sixty small accounts against two whales with 200 deals each: a big deal-level gap...
    small_trials = rng.integers(3, 8, 60)
    small_events = rng.binomial(small_trials, 0.4)
    whale_trials, whale_events = np.array([200, 200]), np.array([8, 10])
    naive = stats.two_proportion_pvalue(
        small_events.sum(), small_trials.sum(), whale_events.sum(), whale_trials.sum()
    )[0]
    assert naive < 1e-20
    # ...is 2 accounts of evidence: the test refuses (fewer than 2 effective clusters).
    p = stats.clustered_rate_test(small_events, small_trials, whale_events, whale_trials)
    assert p > 0.05
    assert np.isnan(stats.clustered_rate_test([1], [5], small_events, small_trials))
    # With many accounts on both sides a real difference is found.
    trials = rng.integers(3, 8, 200)
    low = rng.binomial(trials[:100], 0.15)
    high = rng.binomial(trials[100:], 0.45)
    assert stats.clustered_rate_test(low, trials[:100], high, trials[100:]) < 1e-6


def test_clustered_rate_test_keeps_its_level_under_the_null():
    rng = np.random.default_rng(2)
    p_values = []
    for _ in range(400):
        trials = rng.integers(1, 30, 60)
        account_p = 1 / (1 + np.exp(-(-1 + rng.normal(0, 0.8, 60))))
        events = rng.binomial(trials, account_p)
        p_values.append(
            stats.clustered_rate_test(events[:30], trials[:30], events[30:], trials[30:])
        )
    assert np.mean(np.array(p_values) < 0.05) < 0.08


def test_clustered_ratio_ci_matches_the_rate_version_for_proportions():
    events, trials = np.array([1, 4, 0, 7, 2]), np.array([3, 9, 2, 10, 4])
    rate, low, high, k = stats.clustered_rate_ci(events, trials)
    ratio, low2, high2, k2, se = stats.clustered_ratio_ci(events, trials)
    assert (rate, low, high, k) == pytest.approx((ratio, low2, high2, k2))
    assert se > 0


def test_poisson_rate_ratio_is_exact():
    from scipy import stats as sps

    ratio, low, high, p = stats.poisson_rate_ratio(30, 50.0, 20, 100.0)
    assert ratio == pytest.approx(3.0)
    assert low < 3.0 < high
    assert p == pytest.approx(sps.binomtest(30, 50, 50 / 150).pvalue)
    assert np.isnan(stats.poisson_rate_ratio(0, 10.0, 0, 10.0)[0])


# ---------------------------------------------------------------------------------------------
# Constructed deals


def test_a_few_big_accounts_never_make_a_confident_claim():
    tables = deal_tables(np.random.default_rng(3))
    # Both whales share one color level: 400 losing deals in a 61-account level.
    whales = tables["accounts"]["segment"] == "whale"
    tables["accounts"].loc[whales, "color"] = "b"
    study = make_study(tables, categorical=["segment", "color"], analysis={"min_level_count": 1})
    result = deals.lost_deal_analysis(study)
    table = result.summary.set_index(["attribute", "level"])
    whale = table.loc[("segment", "whale")]
    assert whale["accounts"] == 2 and np.isnan(whale["p_value"])
    assert whale["note"] == "only 2 accounts: not tested"
    assert not table.loc["color", "significant"].any()
    assert "whale" not in set(result.anti_patterns["level"])
    assert "color" not in set(result.anti_patterns["level_attribute"])
    assert any("clustering is heavy" in c for c in result.caveats)
    # Pooled with the default minimum, the two whales are '(other)' and still not tested.
    pooled = deals.lost_deal_analysis(make_study(tables, categorical=["segment", "color"]))
    other = pooled.summary.set_index(["attribute", "level"]).loc[("segment", "(other)")]
    assert other["accounts"] == 2 and np.isnan(other["p_value"])


def test_weak_segment_wins_less_and_stalls_in_no_decision():
    tables, study = _study(seed=4, whales=0)
    result = deals.lost_deal_analysis(study)
    rules = result.anti_patterns.set_index("rule_id")
    win = rules.loc["win_rate:segment:weak"]
    assert win["status"] == "candidate" and win["ci_high"] < 1
    assert win["rate_level"] < 0.25 < win["rate_rest"]
    assert (win["attribute"], win["operator"], win["value"]) == ("segment", "equals", "weak")
    nd = rules.loc["no_decision:segment:weak"]
    assert nd["effect"] > 1.5 and nd["q_value"] < 0.01
    assert "color" not in set(rules["level_attribute"])
    # Counts: closed new-business deals of the weak accounts.
    opportunities = tables["opportunities"]
    weak_ids = set(tables["accounts"].query("segment == 'weak'")["account_id"])
    closed = opportunities[opportunities["stage"] != "open"]
    assert win["n"] == closed["account_id"].isin(weak_ids).sum()
    assert win["accounts"] == 40
    assert win["open_pipeline"] == pytest.approx(
        opportunities.query("stage == 'open'")
        .loc[lambda f: f["account_id"].isin(weak_ids), "amount"]
        .sum()
    )


def test_open_deals_are_censored_in_the_sales_cycle():
    tables, study = _study(seed=5, whales=0)
    result = deals.lost_deal_analysis(study)
    cycle = result.tables["sales_cycle_by_segment"].set_index(["attribute", "level"])
    opportunities = tables["opportunities"]
    overall = cycle.loc[("all", "all")]
    assert overall["deals"] == len(opportunities)
    assert overall["open"] == (opportunities["stage"] == "open").sum()
    # Dropping open deals would understate the cycle: open deals here are older than most.
    closed = opportunities[opportunities["stage"] != "open"]
    naive_median = (closed["closed_at"] - closed["created_at"]).dt.days.median()
    assert overall["median_days"] >= naive_median
    assert cycle.loc[("segment", "weak"), "deals"] == 240


def test_missing_loss_reasons_and_stage_history_are_said_plainly():
    tables, _ = _study(seed=6, whales=0)
    tables["opportunities"] = tables["opportunities"].drop(columns=["loss_reason"])
    result = deals.lost_deal_analysis(make_study(tables, categorical=["segment", "color"]))
    assert (
        result.not_computed["loss reasons"] == "the opportunities table has no loss_reason column"
    )
    assert result.tables["loss_reasons"].empty and result.tables["no_decision_by_attribute"].empty
    assert set(result.anti_patterns["outcome"]) <= {"win_rate"}
    assert "stage funnel" in result.not_computed
    assert deals.loss_reasons_view(result).empty


def test_stage_funnel_when_history_exists():
    tables, study = _study(seed=7, whales=0)
    ids = tables["opportunities"]["opportunity_id"].tolist()[:10]
    history = pd.DataFrame(
        {
            "opportunity_id": ids + ids[:6] + ids[:2],
            "stage": ["Discovery"] * 10 + ["Proposal"] * 6 + ["Negotiation"] * 2,
            "entered_at": [pd.Timestamp("2025-01-01")] * 10
            + [pd.Timestamp("2025-02-01")] * 6
            + [pd.Timestamp("2025-03-01")] * 2,
        }
    )
    study.tables["stage_history"] = history
    funnel = deals.stage_funnel(study)
    assert funnel.summary["stage"].tolist() == ["Discovery", "Proposal", "Negotiation"]
    assert funnel.summary["deals"].tolist() == [10, 6, 2]
    assert funnel.summary["conversion"].iloc[1:].tolist() == pytest.approx([0.6, 2 / 6])


def test_no_opportunities():
    accounts = pd.DataFrame({"account_id": ["A"], "kind": ["x"]})
    result = deals.lost_deal_analysis(make_study({"accounts": accounts}, categorical=["kind"]))
    assert not result.ok and "deals" in result.not_computed
    assert result.anti_patterns.empty


# ---------------------------------------------------------------------------------------------
# Anti-pattern files


def test_anti_patterns_round_trip_through_csv(tmp_path, demo, demo_study):
    from icp_research.artifacts import write_csv

    write_csv(antipatterns.to_csv_frame(demo.anti_patterns), tmp_path / "anti_patterns_deals.csv")
    rules = antipatterns.read_anti_patterns(tmp_path)
    assert list(rules.columns) == antipatterns.ANTI_PATTERN_COLUMNS
    assert len(rules) == len(demo.anti_patterns)
    crm = rules.set_index("rule_id").loc["no_decision:crm:None"]
    assert crm["value"] == "None"  # the literal level, not a missing value
    facts = demo_study.facts
    hits = antipatterns.apply_rules(facts, rules)
    assert hits["no_decision:crm:None"].sum() == (facts["crm"] == "None").sum()
    assert antipatterns.read_anti_patterns(tmp_path / "nowhere").empty


def test_conditions_match_and_read_as_text():
    frame = pd.DataFrame(
        {"employees": [10, 60, 150, np.nan], "crm": ["None", None, "HubSpot", "Pipedrive"]}
    )
    C = antipatterns.Condition
    assert C("employees", "less_than", 60).matches(frame).tolist() == [True, False, False, False]
    assert C("employees", "between", [60, 150]).matches(frame).tolist() == [
        False,
        True,
        False,
        False,
    ]
    assert C("employees", "at_least", 150).matches(frame).tolist() == [False, False, True, False]
    assert C("employees", "is_missing").matches(frame).tolist() == [False, False, False, True]
    assert C("crm", "equals", "None").matches(frame).tolist() == [True, False, False, False]
    assert C("crm", "in", ["HubSpot", "Pipedrive"]).matches(frame).sum() == 2
    assert C("crm", "is_missing").matches(frame).tolist() == [False, True, False, False]
    assert C("employees", "between", [60, 150]).text() == "60 <= employees < 150"
    assert C("employees", "less_than", 50).phrase() == "employees under 50"
    assert not C("nowhere", "equals", "x").matches(frame).any()
    with pytest.raises(ValueError):
        C("crm", "==", "None")


# ---------------------------------------------------------------------------------------------
# The demo's planted truth


def test_demo_education_wins_less(demo):
    rule = demo.anti_patterns.set_index("rule_id").loc["win_rate:industry:Education"]
    assert rule["status"] == "candidate"
    assert rule["ci_high"] < 0.8 and rule["q_value"] < 0.001
    assert rule["rate_level"] < rule["rate_rest"]


def test_demo_crm_none_ends_in_no_decision(demo):
    rules = demo.anti_patterns.set_index("rule_id")
    nd = rules.loc["no_decision:crm:None"]
    assert nd["status"] == "candidate" and nd["ci_low"] > 1.3
    reasons = demo.tables["loss_reasons"]
    row = reasons.query("attribute == 'crm' and level == 'None' and reason == 'No decision'")
    assert bool(row["over_represented"].iloc[0])
    assert rules.loc["win_rate:crm:None", "reasons"] == "No decision"


def test_demo_noise_attributes_are_not_anti_patterns(demo):
    assert not (set(demo.anti_patterns["level_attribute"]) & NOISE)
    for name in ("win_rate_by_attribute", "no_decision_by_attribute"):
        table = demo.tables[name]
        assert not table[table["attribute"].isin(NOISE)]["significant"].any(), name


def test_demo_counts_new_business_deals_only(demo, demo_study):
    deals_table = demo_study.deals
    new_closed = deals_table[deals_table["is_new_business"] & deals_table["is_closed"]]
    assert demo.overall["win_rate"]["n"] == len(new_closed)
    industry = demo.summary[demo.summary["attribute"] == "industry"]
    assert industry["deals"].sum() == len(new_closed)
    assert demo.overall["win_rate"]["accounts"] == new_closed["account_id"].nunique()
    overall = demo.tables["loss_reasons"].query("attribute == 'all'")
    assert overall["lost_deals"].sum() == (new_closed["stage"] == "lost").sum()
    assert overall.set_index("reason").loc["No decision", "is_no_decision"]


def test_demo_deal_size_and_cycle(demo):
    size = demo.tables["deal_size_by_segment"].set_index(["attribute", "level"])
    assert (
        size.loc[("size_segment", "SMB"), "mean_amount"]
        < size.loc[("size_segment", "Mid-market"), "mean_amount"]
    )
    cycle = demo.tables["sales_cycle_by_segment"].set_index(["attribute", "level"])
    # Larger companies take longer to decide (planted).
    assert (
        cycle.loc[("size_segment", "SMB"), "median_days"]
        < cycle.loc[("size_segment", "Enterprise"), "median_days"]
    )


# ---------------------------------------------------------------------------------------------
# Maven: no subscriptions, ~100 deals per account


def _maven():
    config = ROOT / "examples" / "maven-crm" / "icp.toml"
    if (
        not config.exists()
        or not (config.parent / load_config(config).tables["accounts"].path).exists()
    ):
        pytest.skip("the public Maven export is not beside this checkout")
    return config


def test_churn_report_is_skipped_without_subscriptions_or_churn_events():
    _, study = _study(seed=8, whales=0)
    assert missing_requirement(_spec("02_churn_analysis"), study.dataset) == (
        "no subscriptions or churn_events tables"
    )
    assert missing_requirement(_spec("03_lost_deal_analysis"), study.dataset) is None


def test_maven_lost_deal_analysis_is_honest():
    study = icp.open_study(_maven())
    assert missing_requirement(_spec("02_churn_analysis"), study.dataset) == (
        "no subscriptions or churn_events tables"
    )
    result = deals.lost_deal_analysis(study)
    assert result.overall["win_rate"]["accounts"] == 85
    assert result.overall["deals_per_account_max"] > 100
    assert any("clustering is heavy" in c for c in result.caveats)
    assert (
        result.not_computed["loss reasons"] == "the opportunities table has no loss_reason column"
    )
    assert result.anti_patterns.empty
    tested = result.summary[result.summary["p_value"].notna()]
    assert (tested["accounts"] >= 5).all()


def test_pattern_aggregated_adjustment_equals_the_account_level_robust_glm():
    import statsmodels.api as sm

    from icp_research.analyses.deals import _adjusted_check

    rng = np.random.default_rng(2)
    n = 3000
    frame = pd.DataFrame(
        {"a": (rng.random(n) < 0.3).astype(float), "b": (rng.random(n) < 0.5).astype(float)}
    )
    frame["trials"] = rng.integers(1, 9, n).astype(float)
    p = 1 / (1 + np.exp(-(-1 + 0.5 * frame["a"] - 0.3 * frame["b"] + rng.normal(0, 0.8, n))))
    frame["events"] = rng.binomial(frame["trials"].astype(int), p).astype(float)
    p_value, worse = _adjusted_check(frame, ["a"], "b", -1)
    exog = sm.add_constant(frame[["a", "b"]].to_numpy(), has_constant="add")
    reference = sm.GLM(
        np.column_stack([frame["events"], frame["trials"] - frame["events"]]),
        exog,
        family=sm.families.Binomial(),
    ).fit(cov_type="HC0")
    assert p_value == pytest.approx(reference.pvalues[-1], rel=1e-9)
    assert worse == (reference.params[-1] < 0)


def test_equally_common_levels_are_ordered_by_name_whatever_the_row_order():
    """Two CRMs with 20 accounts each: the level order (and so the report tables' rows) is the
    same whichever comes first in the export."""
    from icp_research.analyses.antipatterns import segment_levels

    crm = ["Salesforce"] * 20 + ["HubSpot"] * 20 + ["Pipedrive"] * 30
    orders = []
    for values in (crm, crm[::-1]):
        facts = pd.DataFrame({"account_id": [f"A{i}" for i in range(70)], "crm": values})
        orders.append(segment_levels(facts, categorical=["crm"]).order["crm"])
    assert orders[0] == orders[1] == ["Pipedrive", "HubSpot", "Salesforce"]


def test_anti_patterns_only_finds_the_same_anti_patterns(demo_study, demo):
    """What the blueprint asks for: the anti-patterns of the full analysis, without the sales
    cycle, deal sizes and funnel."""
    only = deals.lost_deal_analysis(demo_study, anti_patterns_only=True)
    pd.testing.assert_frame_equal(only.anti_patterns, demo.anti_patterns)
    assert only.funnel is None


def test_a_contract_term_is_never_a_candidate_exclude_rule():
    """A CRM's customer tier (Gold / Silver / Bronze, filled from what customers pay) is a
    contract term to the blueprint, never a rule, but the lost-deal report proposed "exclude
    accounts with Gold as customer tier" and the dashboard repeated it."""
    tables, _ = _study(seed=4, whales=0)
    tables["accounts"] = tables["accounts"].rename(columns={"segment": "customer_tier"})
    study = make_study(tables, categorical=["customer_tier", "color"])
    assert "customer_tier" in study.attributes.contract
    result = deals.lost_deal_analysis(study)
    rules = result.anti_patterns.set_index("rule_id")
    term = rules.loc["win_rate:customer_tier:weak"]
    assert term["status"] == "contract term"
    assert not (result.anti_patterns["status"] == "candidate").any()
    assert any("a term of the contract, set at the sale" in f for f in result.findings)


def test_a_level_that_loses_only_against_the_icps_level_is_explained_by_it():
    """A Zoho export where Fertigung wins 39% and every other industry about 20%: "IT wins
    less (0.70x, q = 0.03)" was a candidate exclude rule, because the rest it was compared
    with held Fertigung. Levels that do significantly better are now in every candidate's
    model; a level that really loses more stays a candidate."""
    from .studies import AS_OF, make_study

    rng = np.random.default_rng(4)
    accounts, rows = [], []
    spec = [("Fertigung", 250, 0.42), ("IT", 250, 0.2), ("Handel", 250, 0.2), ("Bau", 60, 0.04)]
    for industry, n_accounts, p_win in spec:
        for _ in range(n_accounts):
            account = f"A{len(accounts):04d}"
            accounts.append({"account_id": account, "industry": industry})
            for j in range(5):
                created = AS_OF - pd.Timedelta(days=int(rng.integers(30, 700)))
                rows.append(
                    {
                        "opportunity_id": f"{account}-{j}",
                        "account_id": account,
                        "stage": "won" if rng.random() < p_win else "lost",
                        "created_at": created,
                        "closed_at": created + pd.Timedelta(days=20),
                    }
                )
    tables = {"accounts": pd.DataFrame(accounts), "opportunities": pd.DataFrame(rows)}
    result = deals.lost_deal_analysis(make_study(tables, categorical=["industry"]))
    rules = result.anti_patterns.set_index("rule")
    assert rules.loc["industry = Bau", "status"] == "candidate"
    it = rules.loc["industry = IT"]
    assert it["status"] == "explained" and it["effect"] < 1 and it["q_value"] < 0.05
    assert it["explained_by"] == "industry = Fertigung (which does better)"
    assert it["adjusted_p"] > 0.05


def test_a_level_with_one_won_deal_shows_its_mean_without_an_empty_interval():
    """A German export's Enterprise segment with one won deal read "€13.4k (–––)"."""
    result = deals.DealsResult(title="t")
    result.tables["deal_size_by_segment"] = pd.DataFrame(
        {
            "attribute": ["all", "size_segment"],
            "level": ["all", "Enterprise"],
            "won_deals": [40, 1],
            "accounts": [30, 1],
            "mean_amount": [12000.0, 13400.0],
            "mean_ci_low": [10000.0, np.nan],
            "mean_ci_high": [14000.0, np.nan],
            "median_amount": [11000.0, 13400.0],
        }
    )
    shown = deals.deal_size_view(result)["Mean deal"].tolist()
    assert shown[0].endswith(")") and "(" in shown[0]
    assert "–––" not in shown[1] and "(" not in shown[1]


def test_a_median_sales_cycle_with_an_unknown_bound_says_which():
    """A product-led export's SMB segment read "9 (––not reached)"."""
    result = deals.DealsResult(title="t")
    result.tables["sales_cycle_by_segment"] = pd.DataFrame(
        {
            "attribute": ["a"] * 4,
            "level": ["both", "no upper", "no lower", "none"],
            "deals": [10] * 4,
            "open": [1] * 4,
            "median_days": [30.0, 9.0, 12.0, 5.0],
            "median_ci_low": [20.0, 7.0, np.nan, np.nan],
            "median_ci_high": [40.0, np.nan, 15.0, np.nan],
            "still_open_90d": [0.1] * 4,
        }
    )
    shown = deals.cycle_view(result)["Median days to close"].tolist()
    assert shown == ["30 (20–40)", "9 (7 or more)", "12 (up to 15)", "5"]
    from devtools.fixture_sweep import _BROKEN_TEXT

    assert _BROKEN_TEXT.search("SMB 3,722 75 9 (––not reached)")
    assert not any(_BROKEN_TEXT.search(text) for text in shown)


def test_no_response_in_portuguese_german_french_and_italian_is_no_decision():
    """A Brazilian export's "Sem resposta" was 20% of losses, and the lost-deal report said
    "No decision ends 0% of lost deals"."""
    from icp_research.data.facts import _is_no_decision

    reasons = pd.Series(
        ["Sem resposta", "Sem retorno", "Keine Rückmeldung", "Pas de réponse", "Nessuna risposta"]
    )
    assert _is_no_decision(reasons).all()
    assert not _is_no_decision(pd.Series(["Preço", "Concorrente", "Sem orçamento"])).any()
    # A Freshsales user's "Lost to status quo" is no decision too.
    assert _is_no_decision(pd.Series(["Lost to status quo", "Chose to do nothing"])).all()
