"""Churn analysis: constructed studies with a known hazard ratio, degenerate data, the demo."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

import icp_research as icp
from devtools.demo_data import PLANTED_TRUTH
from icp_research.analyses import antipatterns, churn

from .studies import AS_OF, churn_tables, deal_tables, make_study

NOISE = set(PLANTED_TRUTH["no_effect"])


@pytest.fixture(scope="module")
def planted():
    """600 customers; tier = bad churns 3x as fast, mostly for Price; color is noise."""
    tables = churn_tables(np.random.default_rng(11))
    study = make_study(tables, categorical=["tier", "color"], numeric=["employees"])
    return study, churn.churn_analysis(study)


@pytest.fixture(scope="module")
def demo_study():
    return icp.open_study()


@pytest.fixture(scope="module")
def demo(demo_study):
    return churn.churn_analysis(demo_study)


def test_rates_are_per_customer_year_with_exact_intervals(planted):
    study, result = planted
    facts = study.facts
    years = facts["tenure_days"].sum() / 365.25
    churned = int(facts["churned"].sum())
    o = result.overall
    assert o["churned"] == churned == len(study.tables["churn_events"])
    assert o["churn_rate"] == pytest.approx(churned / years)
    assert o["churn_rate_ci_low"] < o["churn_rate"] < o["churn_rate_ci_high"]
    bad = result.summary.query("attribute == 'tier' and level == 'bad'").iloc[0]
    inside = facts["tier"] == "bad"
    assert bad["customers"] == inside.sum()
    assert bad["customer_years"] == pytest.approx(facts.loc[inside, "tenure_days"].sum() / 365.25)
    assert bad["churned"] == facts.loc[inside, "churned"].sum()


def test_planted_hazard_ratio_is_recovered_with_its_reason(planted):
    _, result = planted
    rules = result.anti_patterns
    assert list(rules["rule_id"]) == ["churn:tier:bad"]
    rule = rules.iloc[0]
    assert rule["effect_name"] == "hazard_ratio"
    assert rule["ci_low"] > 1.5 and rule["ci_low"] < 3.0 < rule["ci_high"]
    assert rule["q_value"] < 0.001
    assert rule["reasons"] == "Price"
    assert (rule["attribute"], rule["operator"], rule["value"]) == ("tier", "equals", "bad")
    # Worded for people; the rule keeps its code form (the CSV's "rule" column).
    assert rule["statement"].startswith("Accounts with bad as tier churn 2.")
    assert rule["rule"] == "tier = bad" and rule["words"] == "with bad as tier"
    # ARR still at stake: the active bad-tier customers' ARR.
    assert rule["arr_at_risk"] > 0
    noise = result.summary[result.summary["attribute"].isin(["color", "employees"])]
    assert not noise["significant"].any()


def test_retention_horizons_come_from_kaplan_meier(planted):
    study, result = planted
    from icp_research.methods.survival import kaplan_meier

    facts = study.facts
    km = kaplan_meier(
        facts["tenure_days"] / (365.25 / 12),
        facts["churned"].astype(int),
        time_unit="months",
        horizons={"12 months": 12.0},
    )
    assert result.overall["retention_12m"] == pytest.approx(km.summary["survival_12_months"][0])
    assert result.overall["early_churn"] == pytest.approx(1 - result.overall["retention_6m"])


def test_revenue_churn_is_the_arr_of_a_year_ago_that_left(planted):
    study, result = planted
    facts = study.facts
    cohort = facts[facts["arr_12m_ago"] > 0]
    lost = cohort.loc[cohort["arr_current"] <= 0, "arr_12m_ago"].sum()
    assert result.overall["revenue_churn_12m"] == pytest.approx(lost / cohort["arr_12m_ago"].sum())
    # Every churned customer paid 5,000 (bad) or 20,000 (good) when it left.
    churned = facts[facts["churned"].astype(bool)]
    expected = np.where(churned["tier"] == "bad", 5000.0, 20000.0).sum()
    assert result.overall["arr_lost"] == pytest.approx(expected)


def test_arr_at_churn_reads_the_last_active_subscriptions():
    accounts = pd.DataFrame({"account_id": ["A", "B", "C"], "kind": ["x", "y", "x"]})
    T = pd.Timestamp
    subscriptions = pd.DataFrame(
        {
            "account_id": ["A", "A", "A", "B", "C"],
            "start_date": [
                T("2024-01-01"),
                T("2024-06-01"),
                T("2025-01-01"),
                T("2024-01-01"),
                T("2024-03-01"),
            ],
            "end_date": [
                T("2024-12-31"),
                T("2025-06-30"),
                T("2025-06-30"),
                pd.NaT,
                T("2025-02-01"),
            ],
            "arr": [1000.0, 300.0, 2000.0, 500.0, 700.0],
        }
    )
    study = make_study({"accounts": accounts, "subscriptions": subscriptions}, categorical=["kind"])
    customers = study.facts.set_index("account_id", drop=False)
    lost = churn.arr_at_churn(study, customers)
    # A left on 2025-06-30 paying the two subscriptions running then; B never left.
    assert lost.to_dict() == {"A": 2300.0, "B": 0.0, "C": 700.0}


def test_no_churn_yet_still_renders_and_says_what_is_missing():
    tables = churn_tables(np.random.default_rng(5), churn=False)
    study = make_study(tables, categorical=["tier", "color"], numeric=["employees"])
    result = churn.churn_analysis(study)
    assert result.overall["churned"] == 0
    assert result.overall["retention_12m"] == 1.0
    assert result.anti_patterns.empty
    assert result.cox is not None and result.cox.summary.empty
    assert "Not fitted" in result.cox.caveats[0]
    assert "churn differences between segments" in result.not_computed
    assert any(c.startswith("No churn yet") for c in result.caveats)
    assert churn.headline(result)["Retained at 12 months"] == "100%"
    assert churn.reasons_view(result).empty and churn.early_churn_view(result).empty
    assert churn.attribute_view(result).empty


def test_churn_events_without_subscriptions_give_logo_churn_only():
    tables = churn_tables(np.random.default_rng(6))
    subs = tables.pop("subscriptions")
    tables["opportunities"] = pd.DataFrame(
        {
            "opportunity_id": [f"o{i}" for i in range(len(subs))],
            "account_id": subs["account_id"],
            "stage": "won",
            "created_at": subs["start_date"] - pd.Timedelta(days=30),
            "closed_at": subs["start_date"],
            "amount": subs["arr"],
        }
    )
    study = make_study(tables, categorical=["tier", "color"])
    result = churn.churn_analysis(study)
    assert result.overall["churned"] == len(tables["churn_events"])
    assert "revenue churn" in result.not_computed
    assert "revenue_churn_12m" not in result.overall
    assert result.summary["arr_lost"].isna().all()
    assert result.anti_patterns["rule_id"].tolist() == ["churn:tier:bad"]
    assert result.anti_patterns["arr_at_risk"].isna().all()


def test_trials_are_detected_in_plans_and_said_absent_otherwise():
    T = pd.Timestamp
    accounts = pd.DataFrame({"account_id": list("ABCDE"), "kind": list("xxyyy")})
    subscriptions = pd.DataFrame(
        {
            "account_id": ["A", "A", "B", "C", "C", "D", "E"],
            "plan": ["Free Trial", "Pro", "Free Trial", "Free Trial", "Pro", "Free Trial", "Pro"],
            "start_date": [
                T("2025-01-01"),
                T("2025-01-15"),
                T("2025-02-01"),
                T("2025-03-01"),
                T("2025-03-20"),
                T("2026-06-01"),
                T("2025-01-01"),
            ],
            "end_date": [
                T("2025-01-15"),
                pd.NaT,
                T("2025-02-15"),
                T("2025-03-20"),
                pd.NaT,
                pd.NaT,
                pd.NaT,
            ],
            "arr": [0.0, 1000.0, 0.0, 0.0, 1000.0, 0.0, 1000.0],
        }
    )
    study = make_study({"accounts": accounts, "subscriptions": subscriptions}, categorical=["kind"])
    result = churn.trial_conversion(study)
    overall = result.summary.iloc[0]
    # A and C converted, B did not, D's trial is still running (not counted), E never trialled.
    assert (overall["trials"], overall["converted"], overall["undecided"]) == (3, 2, 1)
    assert overall["conversion_rate"] == pytest.approx(2 / 3)
    assert "still running" in result.caveats[0]

    subscriptions["plan"] = "Pro"
    study = make_study({"accounts": accounts, "subscriptions": subscriptions}, categorical=["kind"])
    absent = churn.trial_conversion(study)
    assert absent.summary.empty
    assert absent.caveats[0].startswith("No trial data")


def test_trials_that_never_paid_are_not_churned_customers():
    tables = churn_tables(np.random.default_rng(8), n=300)
    subs = tables["subscriptions"]
    trials = subs.head(60).assign(
        account_id=[f"T{i:03d}" for i in range(60)],
        plan="Trial",
        arr=0.0,
        end_date=subs["start_date"].head(60) + pd.Timedelta(days=14),
    )
    tables["subscriptions"] = pd.concat([subs, trials], ignore_index=True)
    tables["accounts"] = pd.concat(
        [tables["accounts"], tables["accounts"].head(60).assign(account_id=trials["account_id"])],
        ignore_index=True,
    )
    study = make_study(tables, categorical=["tier", "color"])
    result = churn.churn_analysis(study)
    assert result.overall["customers"] == 300
    assert result.overall["churned"] == len(tables["churn_events"])
    # Free trials (no ARR) are not customers at all, so there is nothing to take out of churn.
    assert not study.facts.set_index("account_id").loc[trials["account_id"], "is_customer"].any()
    assert not any("only ever had trial subscriptions" in c for c in result.caveats)
    trial = result.trials.summary.iloc[0]
    assert (trial["trials"], trial["converted"]) == (60, 0)
    # Trials with a price are customers to the facts; the churn report takes them out.
    tables["subscriptions"].loc[tables["subscriptions"]["plan"] == "Trial", "arr"] = 100.0
    study = make_study(tables, categorical=["tier", "color"])
    result = churn.churn_analysis(study)
    assert result.overall["customers"] == 300
    assert any("60 accounts only ever had trial subscriptions" in c for c in result.caveats)


def test_trials_as_opportunity_types():
    tables = deal_tables(np.random.default_rng(9), whales=0)
    deals = tables["opportunities"]
    deals.loc[deals.index[:200], "type"] = "Trial"
    study = make_study(tables, categorical=["segment"])
    result = churn.trial_conversion(study)
    trials = deals.head(200)
    closed = trials[trials["stage"] != "open"]
    overall = result.summary.iloc[0]
    assert overall["trials"] == len(closed)
    assert overall["converted"] == (closed["stage"] == "won").sum()
    assert overall["undecided"] == (trials["stage"] == "open").sum()
    assert "opportunities whose type" in result.findings[0]
    assert not any("no level is tested" in c for c in result.caveats)
    # By level, the rates are described, not tested, and the report says so.
    levels = antipatterns.segment_levels(study.facts, categorical=["segment"])
    by_level = churn.trial_conversion(study, levels=levels)
    assert (by_level.summary["level"] != "all").any()
    assert any("no level is tested against the rest here" in c for c in by_level.caveats)
    # A billing export's few subscriptions still in trial beside them: the 200 opportunities
    # are the trials (they had been replaced by the 4, all undecided: "0 trials").
    ids = tables["accounts"]["account_id"].head(4)
    tables["trials"] = pd.DataFrame(
        {
            "account_id": ids,
            "start_date": pd.Timestamp("2026-06-01"),
            "trial_end": pd.NaT,
            "end_date": pd.NaT,
        }
    )
    study = make_study(tables, categorical=["segment"])
    both = churn.trial_conversion(study)
    assert both.summary.iloc[0]["trials"] == len(closed)
    assert (
        "Trials are read from the 200 opportunities typed like 'trial', not from the billing "
        "export's 4 trials, which are fewer." in both.caveats
    )


def test_no_customers_at_all():
    accounts = pd.DataFrame({"account_id": ["A", "B"], "kind": ["x", "y"]})
    subscriptions = pd.DataFrame(
        {
            "account_id": pd.Series([], dtype=object),
            "start_date": pd.Series([], dtype="datetime64[ns]"),
            "end_date": pd.Series([], dtype="datetime64[ns]"),
            "arr": pd.Series([], dtype=float),
        }
    )
    study = make_study({"accounts": accounts, "subscriptions": subscriptions}, categorical=["kind"])
    result = churn.churn_analysis(study)
    assert not result.ok
    assert "churn" in result.not_computed
    assert set(result.tables) >= {"churn_by_attribute", "churn_reasons", "anti_patterns"}


# ---------------------------------------------------------------------------------------------
# The demo's planted truth


def test_demo_small_accounts_churn_faster_for_price_and_no_owner(demo):
    rules = demo.anti_patterns.set_index("rule_id")
    small = rules.loc["churn:employees:< 60"]
    assert small["status"] == "candidate"
    assert small["operator"] == "less_than" and small["value"] <= 100
    assert small["effect_name"] == "hazard_ratio" and small["ci_low"] > 1.5
    assert 2.0 < small["effect"] < 4.0  # planted 2.3x for under 50 (this bin reaches 60)
    assert set(small["reasons"].split("; ")) == {"Price", "No internal owner"}
    # The size segment that contains them is explained by the sharper rule.
    assert rules.loc["churn:size_segment:SMB", "status"] == "explained"


def test_demo_crm_none_churns_faster_for_missing_integration(demo):
    rule = demo.anti_patterns.set_index("rule_id").loc["churn:crm:None"]
    assert rule["status"] == "candidate"
    assert (rule["attribute"], rule["operator"], rule["value"]) == ("crm", "equals", "None")
    assert rule["ci_low"] > 1.3 and rule["effect"] == pytest.approx(1.8, abs=0.4)
    assert rule["reasons"] == "Missing integration"
    cox = demo.cox.summary.set_index(["covariate", "level"])
    assert cox.loc[("crm", "None"), "significant"]
    # The pre-specified model (every declared attribute, not the log-rank winners) still finds
    # the planted hazards, and no noise attribute's.
    assert cox.loc[("employees", "< 60"), "significant"]
    assert cox.loc[("employees", "< 60"), "hazard_ratio"] > 1.5
    noise = cox[cox.index.get_level_values("covariate").isin(NOISE)]
    assert len(noise) > 10 and not noise["significant"].astype(bool).any()


def test_demo_noise_attributes_are_not_anti_patterns(demo):
    assert not (set(demo.anti_patterns["level_attribute"]) & NOISE)
    noise = demo.summary[demo.summary["attribute"].isin(NOISE)]
    assert len(noise) > 10 and not noise["significant"].any()
    logrank = demo.tables["logrank"].set_index("attribute")
    assert not logrank.loc[sorted(NOISE & set(logrank.index)), "significant"].any()
    assert {"employees", "crm"} <= set(demo.attributes_that_matter)


def test_demo_churn_reasons_and_early_churn(demo, demo_study):
    reasons = demo.tables["churn_reasons"]
    overall = reasons[reasons["attribute"] == "all"]
    assert overall["churned"].sum() == demo.overall["churned"] == 322
    assert overall["share"].sum() == pytest.approx(1.0)
    assert overall["arr_lost"].sum() == pytest.approx(demo.overall["arr_lost"])
    assert demo.overall["early_churns"] == int(demo_study.facts["early_churn"].sum())
    assert 0 < demo.overall["early_churn"] < 0.2


def test_demo_result_tables_cover_every_level(demo):
    table = demo.tables["churn_by_attribute"]
    for name, levels in table.groupby("attribute"):
        assert levels["customers"].sum() == demo.overall["customers"], name
    assert table["q_value"].notna().all()
    curves = demo.tables["retention_curves"]
    assert set(curves["attribute"]) == {"all", *demo.curves}
    assert curves["retention"].between(0, 1).all()


def test_anti_pattern_rules_apply_to_accounts(demo, demo_study):
    facts = demo_study.facts
    hits = antipatterns.apply_rules(facts, demo.anti_patterns)
    assert hits["churn:crm:None"].sum() == (facts["crm"] == "None").sum()
    assert hits["churn:employees:< 60"].sum() == (facts["employees"] < 60).sum()


def test_as_of_is_respected(demo_study):
    study = demo_study.at("2025-06-30")
    result = churn.churn_analysis(study, attributes=["crm"])
    assert result.params["as_of"] == "2025-06-30"
    events = study.tables["churn_events"]
    assert events["churned_at"].max() <= pd.Timestamp("2025-06-30")
    assert result.overall["churned"] < 322


def test_anti_patterns_only_finds_the_same_anti_patterns(demo_study, demo):
    """What the blueprint asks for: the anti-patterns of the full analysis, without the Cox
    model and the trials."""
    only = churn.churn_analysis(demo_study, anti_patterns_only=True)
    pd.testing.assert_frame_equal(only.anti_patterns, demo.anti_patterns)
    assert only.cox is None


def test_how_customers_pay_is_tested_for_churn_and_never_becomes_an_icp_rule(tmp_path):
    """Stripe-like subscriptions with a price per interval: monthly payers churn four times as
    fast as annual ones. The interval was consumed into ARR and the effect never tested."""
    from icp_research.data.loading import billing_period_words

    from .conftest import write_project

    assert billing_period_words(pd.Series([12.0, 1.0, 4.0, 2.0, 6.0, np.nan])).tolist() == [
        "monthly",
        "annual",
        "quarterly",
        "semiannual",
        "every 2 months",
        pd.NA,
    ]
    rng = np.random.default_rng(8)
    n = 400
    monthly = rng.random(n) < 0.5
    start = pd.Timestamp("2024-01-01") + pd.to_timedelta(rng.integers(0, 500, n), unit="D")
    life = rng.exponential(np.where(monthly, 365 / 0.6, 365 / 0.15))
    end = start + pd.to_timedelta(life.astype(int), unit="D")
    as_of = pd.Timestamp("2026-06-30")
    accounts = pd.DataFrame(
        {"id": [f"a{i}" for i in range(n)], "industry": rng.choice(["SaaS", "Retail"], n)}
    )
    subs = pd.DataFrame(
        {
            "customer": accounts["id"],
            "start": start.strftime("%Y-%m-%d"),
            "end": pd.Series(end.strftime("%Y-%m-%d")).where(end <= as_of, ""),
            "amount": np.where(monthly, 100, 1000),
            "interval": np.where(monthly, "month", "year"),
        }
    )
    config = (
        f'[project]\nas_of = "{as_of:%Y-%m-%d}"\n'
        '[tables.accounts]\npath = "accounts.csv"\n[tables.accounts.columns]\n'
        'account_id = "id"\nindustry = "industry"\n'
        '[tables.subscriptions]\npath = "subs.csv"\n[tables.subscriptions.columns]\n'
        'account_id = "customer"\nstart_date = "start"\nend_date = "end"\nprice = "amount"\n'
        'interval = "interval"\n'
    )
    files = {"accounts.csv": accounts.to_csv(index=False), "subs.csv": subs.to_csv(index=False)}
    study = icp.open_study(write_project(tmp_path, files, config), reuse_snapshot=False)
    assert study.facts["billing_period"].value_counts().to_dict() == {
        "monthly": int(monthly.sum()),
        "annual": int((~monthly).sum()),
    }
    spec = study.attributes
    assert "billing_period" in spec.contract and "billing_period" not in spec.all
    result = churn.churn_analysis(study)
    table = result.tables["churn_by_attribute"].set_index(["attribute", "level"])
    row = table.loc[("billing_period", "monthly")]
    assert row["significant"] and row["rate_ratio"] > 2
    (finding,) = [f for f in result.findings if "monthly as billing period churn" in f]
    # A yearly contract can end only at its renewal: the rate per customer-year favours it by
    # construction, and the finding says so.
    assert finding.endswith(
        "an annual contract can end only at a renewal, a monthly one any month; compare "
        "retention at 12 months or later before pricing on it."
    )
    # A pricing lever, not a kind of company to turn away: never a candidate exclude rule.
    anti = result.anti_patterns.set_index("rule_id")
    assert anti.loc["churn:billing_period:monthly", "status"] == "contract term"


def test_the_cox_model_judges_travelling_together_by_a_bias_corrected_cramers_v():
    """Two unrelated attributes, one of 21 levels, over 65 customers: the plain Cramér's V is
    above 0.5 by chance alone, and the Cox model left attributes out as "travels with" one
    another on it; the bias-corrected V (Bergsma) is near 0. A real association keeps its V."""
    from scipy.stats.contingency import association

    from icp_research.methods.stats import cramers_v_corrected

    rng = np.random.default_rng(1)
    noise = pd.crosstab(rng.choice(21, 65), rng.choice(3, 65)).to_numpy()
    assert association(noise, method="cramer") > 0.5
    assert cramers_v_corrected(noise) < 0.15
    x = rng.choice(3, 500)
    y = np.where(rng.random(500) < 0.9, x, rng.choice(3, 500))
    real = pd.crosstab(x, y).to_numpy()
    assert cramers_v_corrected(real) == pytest.approx(association(real, method="cramer"), abs=0.01)
    assert cramers_v_corrected([[5, 0]]) == 0.0


def test_no_early_churn_has_an_interval_not_dashes():
    """Every churn after the first year: "0% of customers leave within their first 6 months
    (–––, Kaplan-Meier)", an empty interval. 0 of the customers followed through the window
    bounds the rate."""
    from icp_research.methods.stats import proportion_ci

    n = 60
    ids = [f"A{i:03d}" for i in range(n)]
    start = AS_OF - pd.to_timedelta(np.arange(n) * 5 + 500, unit="D")
    end = pd.Series(pd.NaT, index=range(n), dtype="datetime64[ns]")
    end[:15] = start[:15] + pd.Timedelta(days=400)
    accounts = pd.DataFrame({"account_id": ids, "kind": ["x", "y"] * (n // 2)})
    subscriptions = pd.DataFrame(
        {"account_id": ids, "start_date": start, "end_date": end.to_numpy(), "arr": 1000.0}
    )
    study = make_study({"accounts": accounts, "subscriptions": subscriptions}, categorical=["kind"])
    result = churn.churn_analysis(study)
    overall = result.overall
    assert (overall["churned"], overall["early_churns"], overall["early_churn"]) == (15, 0, 0)
    assert overall["early_churn_ci_low"] == 0
    assert overall["early_churn_ci_high"] == pytest.approx(float(proportion_ci(0, n)[1]))
    (line,) = [f for f in result.findings if f.startswith("Early churn")]
    assert "–––" not in line and "(0%–" in line


def test_a_level_of_two_customers_does_not_make_retention_differ_by_the_attribute():
    """Five churns in all, one of them in a level of two customers in its first month: the
    log-rank test over every level gave p = 0.00007 ("retention differs by industry" from
    noise, though no level differed on its own). Levels of fewer than ``min_customers`` are
    pooled, and left out when the pool is that small too."""
    from icp_research.analyses.churn import _attribute_logrank
    from icp_research.methods.survival import logrank_test

    rng = np.random.default_rng(3)
    time = rng.uniform(6, 36, 40)
    event = (rng.uniform(size=40) < 0.15).astype(int)
    column = np.array(["a"] * 19 + ["b"] * 19 + ["c"] * 2, dtype=object)
    time[38], event[38], time[39], event[39] = 0.5, 1, 2.0, 0
    assert event.sum() == 5
    assert logrank_test(time, event, column).p_value < 1e-4
    result, said = _attribute_logrank(time, event, column, ["a", "b", "c"], 10)
    assert (result.df, round(result.p_value, 3)) == (1, 0.972)
    assert said == "1 level of fewer than 10 customers (2 in all) left out of the test"
    # Small levels that together make a group are compared as one.
    column[:11] = "d"
    column[11:19] = "e"
    result, said = _attribute_logrank(time, event, column, ["a", "b", "c", "d", "e"], 10)
    assert result.df == 2 and said == "3 levels of fewer than 10 customers pooled as one group"
    assert result.p_value == pytest.approx(
        logrank_test(time, event, np.where(np.isin(column, ["c", "e"]), "pool", column)).p_value,
        rel=1e-12,
    )
    # Every level large enough: the test over the levels as they are.
    column = np.array(["a"] * 20 + ["b"] * 20, dtype=object)
    result, said = _attribute_logrank(time, event, column, ["a", "b"], 10)
    assert said == "" and result.p_value == logrank_test(time, event, column).p_value


def test_a_cox_term_beside_curves_that_differ_nowhere_is_not_called_no_difference():
    """A null export: no attribute's log-rank test survived correction, while the Cox model's
    own family had plan = starter at q = 0.046; the findings said "no segment stands out on
    churn" above the model's "churn hazard 0.58x" line."""
    from icp_research.result import Result

    by_attribute = pd.DataFrame({"direction": ["faster"], "rate_ratio": [1.1]})
    logrank = pd.DataFrame(
        {"attribute": ["plan", "industry"], "p_value": [0.2, 0.6], "significant": [False, False]}
    )
    term = {
        "covariate": "plan",
        "level": "starter",
        "reference": "free",
        "hazard_ratio": 0.58,
        "q_value": 0.0464,
        "significant": True,
    }
    cox = Result(title="Cox", summary=pd.DataFrame([term]))
    empty = pd.DataFrame(
        columns=[
            "attribute",
            "reason",
            "churned",
            "q_value",
            "share_early",
            "share_later",
            "status",
        ]
    )
    overall = {"churned": 40}
    lines = churn._findings(by_attribute, logrank, cox, empty, empty, overall, empty, 0.05)
    assert lines[0] == (
        "No attribute's retention curves differ after Benjamini-Hochberg correction over 2 "
        "attributes (log-rank tests); only the Cox model, with the attributes together, finds a "
        "difference: plan = starter (0.58x, q = 0.046). Where the curves show none, that is weak "
        "evidence: confirm it on later quarters before acting on it."
    )
    cox.summary["significant"] = False
    lines = churn._findings(by_attribute, logrank, cox, empty, empty, overall, empty, 0.05)
    assert lines[0].endswith("over 2 attributes: no segment stands out on churn.")


def test_an_attribute_whose_curves_differ_but_no_value_stands_out_is_said_to_be_weak():
    """A first user's noise column: the log-rank test over eight countries passed at q = 0.04
    while no country churned differently, and the findings said "Retention differs by
    employees, country" flatly. Each attribute now carries its q, and one with no value that
    stands out is called weak evidence."""

    by_attribute = pd.DataFrame(
        {
            "attribute": ["employees", "country", "country"],
            "direction": ["faster", None, None],
            "rate_ratio": [2.1, 1.2, 0.9],
            "significant": [True, False, False],
        }
    )
    logrank = pd.DataFrame(
        {
            "attribute": ["employees", "country"],
            "statistic": [12.0, 9.0],
            "p_value": [0.001, 0.024],
            "q_value": [0.004, 0.041],
            "significant": [True, True],
        }
    )
    empty, cox = _no_reasons_no_cox()
    lines = churn._findings(by_attribute, logrank, cox, empty, empty, {"churned": 85}, empty, 0.05)
    assert lines[0] == (
        "Retention differs by employees (q = 0.004), country (q = 0.04) (log-rank tests, "
        "corrected over attributes). For country no single value churns significantly faster "
        "or slower than the rest: weak evidence, to confirm on later quarters before acting on "
        "it."
    )


def test_the_clearest_slower_churn_is_named_and_a_size_band_says_whose_cut_off_it_is():
    """A first user's plant, 1,000+ employees churn half as fast: the findings named the
    2,000+ size band (0.45x, 48 customers, q = 0.04) over the data's own 1,000+ (0.50x, 108
    customers, q = 0.005), and "fewer than 200 employees churn 1.4x" read as the point where
    churn changes, where 200 is only where the SMB band ends."""
    from icp_research.analyses import antipatterns as ap

    by_attribute = pd.DataFrame(
        {
            "attribute": ["employees", "size_segment"],
            "direction": ["slower", "slower"],
            "rate_ratio": [0.50, 0.45],
            "q_value": [0.005, 0.04],
            "customers": [108, 48],
            "words": ["with 1,000+ employees", "with 2,000+ employees"],
            "rule": ["employees >= 1000", "employees >= 2000"],
            "significant": [True, True],
        }
    )
    logrank = pd.DataFrame(columns=["attribute", "statistic", "p_value", "q_value", "significant"])
    empty, cox = _no_reasons_no_cox()
    lines = churn._findings(by_attribute, logrank, cox, empty, empty, {"churned": 235}, empty, 0.05)
    (slower,) = [line for line in lines if line.startswith("Slower churn")]
    assert slower.startswith("Slower churn, most clearly: accounts with 1,000+ employees (0.50x")
    record = {"level_attribute": "size_segment", "level": "SMB"}
    assert ap._band_note(record) == (
        " Its cut-off is where the SMB size band ends ([segments]), not one the data chose; the "
        "table by employees shows where the rates change."
    )
    assert ap._band_note({"level_attribute": "employees", "level": "< 100"}) == ""


def test_one_value_that_stands_out_is_not_denied_by_the_attribute_wide_test():
    """A first user's planted referral effect: "No attribute's retention curves differ ... no
    segment stands out on churn" above "Slower churn, most clearly: accounts with Indicação as
    referral source (0.45x, q = 0.048)"."""

    by_attribute = pd.DataFrame(
        {
            "attribute": ["referral_source"],
            "direction": ["slower"],
            "rate_ratio": [0.45],
            "q_value": [0.048],
            "customers": [72],
            "words": ["with Indicação as referral source"],
            "rule": ["referral_source = Indicação"],
            "significant": [True],
        }
    )
    logrank = pd.DataFrame(
        {
            "attribute": ["referral_source"],
            "statistic": [6.0],
            "p_value": [0.11],
            "significant": [False],
        }
    )
    empty, cox = _no_reasons_no_cox()
    lines = churn._findings(by_attribute, logrank, cox, empty, empty, {"churned": 134}, empty, 0.05)
    assert "no segment stands out" not in lines[0]
    assert lines[0].endswith(
        "one value against the rest does (below). That is weaker evidence: confirm it on later "
        "quarters before acting on it."
    )
    assert any(
        line.startswith("Slower churn, most clearly: accounts with Indicação") for line in lines
    )


def _no_reasons_no_cox():
    """The churn findings' inputs left empty: no reasons, no anti-patterns, no Cox terms."""
    from icp_research.result import Result

    empty = pd.DataFrame(
        columns=[
            "attribute",
            "reason",
            "churned",
            "q_value",
            "share_early",
            "share_later",
            "status",
        ]
    )
    return empty, Result(title="Cox", summary=pd.DataFrame(columns=["significant"]))


def test_churns_without_a_reason_are_no_top_churn_reason():
    """A first user's churn report: "Top churn reasons: (no reason recorded) (33%), Company
    closed (17%), ...". The recorded reasons are ranked; the share without one is said apart."""
    from icp_research.analyses.churn import NO_REASON, _top_reasons

    reasons = pd.DataFrame(
        {
            "attribute": ["all"] * 4,
            "reason": [NO_REASON, "Company closed", "Switched to competitor", "Price"],
            "churned": [31, 16, 16, 9],
            "share": [0.33, 0.17, 0.17, 0.10],
        }
    )
    assert _top_reasons(reasons) == (
        "Top churn reasons: Company closed (17%), Switched to competitor (17%), Price (10%) "
        "(33% of churns have no reason recorded)."
    )
    assert _top_reasons(reasons.iloc[1:]).endswith("Price (10%).")
    assert _top_reasons(reasons.iloc[:1]).startswith("No churn reason is recorded")


def test_a_purchase_long_after_a_trial_is_no_conversion_of_it():
    """A first user's churn report: "65% (52%–77%, n=55) converted to paid", counting any
    later purchase; 3 of 60 trials paid within 90 days of their end."""
    ids = ["T1", "T2", "T3", "T4"]
    tables = {
        "accounts": pd.DataFrame({"account_id": ids, "segment": ["a", "b", "a", "b"]}),
        "trials": pd.DataFrame(
            {
                "account_id": ids,
                "start_date": pd.to_datetime(["2025-01-01"] * 4),
                "trial_end": pd.to_datetime(["2025-01-15"] * 4),
                "end_date": pd.to_datetime(["2025-01-15"] * 4),
            }
        ),
        "subscriptions": pd.DataFrame(
            {
                "account_id": ["T1", "T2", "T3"],
                # paid the day after, 80 days after, a year after the trial's end
                "start_date": pd.to_datetime(["2025-01-16", "2025-04-05", "2026-01-20"]),
                "end_date": pd.NaT,
                "arr": 1200.0,
            }
        ),
    }
    study = make_study(tables, categorical=["segment"], as_of=pd.Timestamp("2026-06-30"))
    overall = churn.trial_conversion(study).summary.iloc[0]
    assert (overall["trials"], overall["converted"], overall["undecided"]) == (4, 2, 0)
