"""Best-customer profile: shares, lifts, intervals, tests and sentences checked by hand."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest
from scipy import stats as sps
from statsmodels.stats.multitest import multipletests
from statsmodels.stats.proportion import confint_proportions_2indep

from icp_research.analyses.profile import (
    PROFILE_COLUMNS,
    best_customer_flags,
    plot_profile,
    profile_best_customers,
    profile_table,
)


@pytest.fixture
def customers():
    # 4 best customers and 6 others.
    return pd.DataFrame(
        {
            "best": [True, True, True, True, False, False, False, False, False, False],
            "industry": ["A", "A", "A", "B", "A", "B", "B", "B", "C", "C"],
            "uses_sso": ["Yes", "Yes", "No", "Yes", "No", "No", "No", "Yes", "No", "No"],
            "employees": [500, 600, 700, 800, 10, 20, 30, 40, 50, 900],
        }
    )


def test_shares_lift_interval_and_exact_test_by_hand(customers):
    result = profile_best_customers(customers, "best", categorical=["industry"], min_level_count=1)
    row = result.summary.set_index("level").loc["A"]
    assert (row["best"], row["rest"], row["n"]) == (3, 1, 4)
    assert row["share_best"] == pytest.approx(3 / 4)
    assert row["share_rest"] == pytest.approx(1 / 6)
    assert row["lift"] == pytest.approx(4.5)
    # Score (Miettinen-Nurminen) interval of the ratio of shares 3/4 vs 1/6, as statsmodels has it.
    low, high = confint_proportions_2indep(3, 4, 1, 6, method="score", compare="ratio")
    assert row["lift_ci_low"] == pytest.approx(low, rel=1e-5)
    assert row["lift_ci_high"] == pytest.approx(high, rel=1e-5)
    # Small cells: Fisher's exact test of best x (level A or not).
    assert row["test"] == "fisher_exact"
    assert row["p_value"] == pytest.approx(sps.fisher_exact([[3, 1], [1, 5]])[1])
    assert row["sentence"].startswith(
        "75% of best customers have industry A vs 17% of the rest (4.5x"
    )
    assert list(result.summary.columns) == PROFILE_COLUMNS


def test_q_values_correct_the_whole_family_and_two_level_attributes_count_once(customers):
    result = profile_best_customers(
        customers, "best", categorical=["industry", "uses_sso"], min_level_count=1
    )
    summary = result.summary
    assert result.params["family_size"] == 3 + 1  # industry A/B/C, uses_sso (one hypothesis)
    sso = summary[summary["attribute"] == "uses_sso"]
    assert sso["p_value"].nunique() == 1 and sso["q_value"].nunique() == 1
    industry = summary[summary["attribute"] == "industry"].set_index("level")
    family = [*industry.loc[["A", "B", "C"], "p_value"], sso["p_value"].iloc[0]]
    expected = multipletests(family, method="fdr_bh")[1]
    assert industry.loc[["A", "B", "C"], "q_value"].to_numpy() == pytest.approx(expected[:3])
    assert sso["q_value"].iloc[0] == pytest.approx(expected[3])
    assert not summary["significant"].any()  # ten customers prove nothing
    assert "No attribute sets the 4 best customers apart" in result.findings[0]


def test_numeric_attributes_are_binned_on_rounded_quantiles(customers):
    result = profile_best_customers(customers, "best", numeric=["employees"], n_bins=2)
    # The median (275) rounds to the nice cut point 250.
    assert result.params["bins"] == {"employees": [250.0]}
    rows = result.summary.set_index("level")
    assert set(rows.index) == {"< 250", ">= 250"}
    assert (rows.loc[">= 250", "best"], rows.loc[">= 250", "rest"]) == (4, 1)
    assert rows.loc[">= 250", "sentence"].startswith(
        "100% of best customers have employees >= 250 vs 17% of the rest"
    )


def test_unknown_best_flags_are_left_out_and_missing_values_are_a_level(customers):
    best = customers["best"].astype("boolean")
    best.iloc[0] = pd.NA
    data = customers.assign(industry=customers["industry"].where(customers.index != 4))
    result = profile_best_customers(data, best, categorical=["industry"], min_level_count=1)
    assert (result.params["n_best"], result.params["n_rest"], result.params["n_unknown"]) == (
        3,
        6,
        1,
    )
    assert "(missing)" in set(result.summary["level"])
    assert any("left out" in c for c in result.caveats)


def test_significant_levels_combine_and_lead_the_findings(rng):
    n = 3000
    industry = rng.choice(["SaaS", "FinTech", "Retail", "Media", "Health"], n)
    fit = np.isin(industry, ["SaaS", "FinTech"])
    best = rng.random(n) < np.where(fit, 0.35, 0.08)
    data = pd.DataFrame({"industry": industry, "best": best})
    result = profile_best_customers(data, "best", categorical=["industry"])
    combined = result.tables["combined"]
    assert list(combined["level"]) == ["FinTech or SaaS"]
    share_best = fit[best].mean()
    share_rest = fit[~best].mean()
    assert combined["share_best"].iloc[0] == pytest.approx(share_best)
    assert combined["lift"].iloc[0] == pytest.approx(share_best / share_rest)
    assert result.findings[0].startswith(
        f"{100 * share_best:.0f}% of best customers have industry FinTech or SaaS"
    )
    headlines = result.headlines()
    assert list(headlines["attribute"]) == ["industry"]


def test_pure_noise_gives_no_significant_level(rng):
    n = 2500
    data = pd.DataFrame(
        {
            "industry": rng.choice(list("ABCDEFGH"), n),
            "region": rng.choice(["NA", "EMEA", "APAC", "LATAM"], n),
            "crm": rng.choice(["HubSpot", "Salesforce", "None"], n),
            "employees": rng.lognormal(5, 1.2, n).round(),
            "best": rng.random(n) < 0.2,
        }
    )
    result = profile_best_customers(
        data, "best", categorical=["industry", "region", "crm"], numeric=["employees"]
    )
    assert result.params["family_size"] >= 15
    assert result.significant.empty
    assert result.findings[0].endswith("nothing stands out.")
    assert profile_table(result).empty


def test_behavioural_signals_are_separate_medians(rng):
    n = 400
    best = rng.random(n) < 0.25
    data = pd.DataFrame(
        {"best": best, "usage_logins": np.where(best, 40.0, 10.0) + rng.normal(0, 1, n)}
    )
    data.loc[:5, "usage_logins"] = np.nan
    result = profile_best_customers(data, "best", behavioural=["usage_logins"])
    behaviour = result.tables["behaviour"].iloc[0]
    known = data["usage_logins"].notna()
    assert behaviour["median_best"] == pytest.approx(
        data.loc[known & best, "usage_logins"].median()
    )
    assert behaviour["n_best"] + behaviour["n_rest"] == known.sum()
    assert behaviour["significant"]
    assert result.summary.empty or "usage_logins" not in set(result.summary["attribute"])


def test_nothing_to_compare_is_said_not_raised():
    data = pd.DataFrame({"best": [True, True], "industry": ["A", "B"]})
    result = profile_best_customers(data, "best", categorical=["industry"])
    assert result.summary.empty and "nothing to compare" in result.caveats[-1]
    plot_profile(result)


def test_best_customer_flags_recompute_the_definition():
    facts = pd.DataFrame(
        {
            "is_customer": [True] * 5 + [False],
            "retained": [True, True, True, True, False, pd.NA],
            "arr_current": [10.0, 50.0, 30.0, 20.0, 0.0, 0.0],
            "clv": [100.0, 10.0, 20.0, 30.0, 5.0, np.nan],
        }
    )
    # No start dates: one cohort of the 5 customers, churned one counted: ceil(25% of 5) = 2.
    by_arr = best_customer_flags(facts, "arr", 0.25)
    assert by_arr.tolist()[:5] == [False, True, True, False, False] and pd.isna(by_arr.iloc[5])
    # All retained customers together: ceil(25% of 4) = 1.
    by_arr = best_customer_flags(facts, "arr", 0.25, "all")
    assert by_arr.tolist()[:5] == [False, True, False, False, False] and pd.isna(by_arr.iloc[5])
    assert best_customer_flags(facts, "clv", 0.25, "all").tolist()[:5] == [
        True,
        False,
        False,
        False,
        False,
    ]
    with pytest.raises(Exception, match="not an account fact"):
        best_customer_flags(facts, "happiness")
    with pytest.raises(Exception, match="between 0 and 1"):
        best_customer_flags(facts, "arr", 1.5)


def test_plot_has_one_row_per_level_shown(rng):
    n = 1000
    data = pd.DataFrame({"industry": rng.choice(list("ABCD"), n), "best": rng.random(n) < 0.3})
    result = profile_best_customers(data, "best", categorical=["industry"])
    ax = plot_profile(result, top=3)
    assert len(ax.get_yticklabels()) == 3
