"""Tests of the predictor-significance engine and the multivariable model.

Simulations are seeded and sized to run in seconds; the numbers they measure (detection rate,
false-discovery rate, false-positive rate of naive vs clustered tests) are printed (``pytest -s``)
as well as asserted.
"""

from __future__ import annotations

import itertools
import math

import matplotlib
import numpy as np
import pandas as pd
import pytest
import statsmodels.api as sm
from scipy import stats as sps
from statsmodels.stats.multitest import multipletests
from statsmodels.stats.nonparametric import rank_compare_2indep
from statsmodels.stats.outliers_influence import variance_inflation_factor
from statsmodels.stats.power import NormalIndPower
from statsmodels.stats.proportion import proportion_effectsize

from icp_research.errors import InputError, NotEnoughData
from icp_research.methods.binning import MISSING, OTHER
from icp_research.methods.multivariable import (
    JOINT_TEST_COLUMNS,
    MODEL_COLUMNS,
    multivariable_model,
)
from icp_research.methods.predictors import (
    SUMMARY_COLUMNS,
    TOO_SMALL_TO_TELL,
    TREND,
    PredictorResult,
    _freeman_halton_numpy,
    freeman_halton_pvalue,
    minimum_detectable_h,
    plot_forest,
    replicate,
    test_many,
    test_predictors,
    time_split,
)

matplotlib.use("Agg")

ALPHA = 0.05
INDUSTRIES = ["FinTech", "Retail", "Health", "Media", None]


def make_accounts(
    seed: int,
    n: int = 240,
    *,
    fintech_log_odds: float = 0.0,
    size_slope: float = 0.0,
    base_rate: float = 0.3,
    outcome: str = "churned",
) -> pd.DataFrame:
    """Accounts with industry (5% missing), region, crm, employees (5% missing), noise and a
    binary outcome; effects only where asked for."""
    rng = np.random.default_rng(seed)
    industry = rng.choice(np.array(INDUSTRIES, dtype=object), n, p=[0.3, 0.3, 0.2, 0.15, 0.05])
    employees = np.exp(rng.normal(5, 1, n)).round()
    employees[rng.random(n) < 0.05] = np.nan
    log_odds = (
        math.log(base_rate / (1 - base_rate))
        + fintech_log_odds * (industry == "FinTech")
        + size_slope * np.nan_to_num(np.log(employees / 150))
    )
    return pd.DataFrame(
        {
            "account_id": np.arange(n),
            "industry": industry,
            "region": rng.choice(["EU", "NA", "APAC"], n),
            "crm": rng.choice(["Salesforce", "HubSpot"], n),
            "employees": employees,
            "noise": rng.normal(size=n),
            outcome: rng.random(n) < 1 / (1 + np.exp(-log_odds)),
        }
    )


def make_deals(
    seed: int, n_accounts: int = 60, *, account_sd: float = 1.5, segment_log_odds: float = 0.0
) -> pd.DataFrame:
    """Deals of accounts with a strong account random effect; ``segment`` is constant within an
    account and, unless ``segment_log_odds`` is set, unrelated to winning."""
    rng = np.random.default_rng(seed)
    deals_per_account = rng.poisson(6, n_accounts) + 1
    account_effect = rng.normal(0, account_sd, n_accounts)
    segment = rng.choice(["SMB", "Mid", "Enterprise"], n_accounts, p=[0.2, 0.3, 0.5])
    account = np.repeat(np.arange(n_accounts), deals_per_account)
    log_odds = -0.5 + account_effect[account] + segment_log_odds * (segment[account] == "SMB")
    won = rng.random(account.size) < 1 / (1 + np.exp(-log_odds))
    return pd.DataFrame({"account_id": account, "segment": segment[account], "won": won})


def level_row(result: PredictorResult, predictor: str, level: str, outcome=None) -> pd.Series:
    rows = result.summary
    rows = rows[(rows["predictor"] == predictor) & (rows["level"] == level)]
    if outcome is not None:
        rows = rows[rows["outcome"] == outcome]
    assert len(rows) == 1, rows
    return rows.iloc[0]


# ----------------------------------------------------------------------------------------------
# Shape of the result


def test_summary_starts_with_the_contract_columns():
    result = test_predictors(
        make_accounts(1), "churned", categorical=["industry", "region"], numeric=["employees"]
    )
    assert list(result.summary.columns[: len(SUMMARY_COLUMNS)]) == SUMMARY_COLUMNS
    assert result.summary["significant"].dtype == bool
    assert set(result.summary["outcome"]) == {"churned"}
    # Missing is a level of its own, numeric predictors get a trend row and bins.
    levels = set(result.summary.loc[result.summary["predictor"] == "industry", "level"])
    assert MISSING in levels
    employees = result.summary[result.summary["predictor"] == "employees"]
    assert TREND in set(employees["level"])
    assert set(employees["kind"]) == {"trend", "bin"}
    assert result.tables["predictors"].shape[0] == 3


def test_public_functions_are_not_collected_as_tests():
    assert test_predictors.__test__ is False
    assert test_many.__test__ is False


# ----------------------------------------------------------------------------------------------
# Simulations


def test_planted_effects_are_found():
    seeds = 20
    found_fintech = found_size = 0
    for seed in range(seeds):
        data = make_accounts(seed, n=600, fintech_log_odds=1.0, size_slope=0.5)
        result = test_predictors(
            data, "churned", categorical=["industry", "region"], numeric=["employees"]
        )
        fintech = level_row(result, "industry", "FinTech")
        trend = level_row(result, "employees", TREND)
        found_fintech += bool(fintech["significant"] and fintech["effect"] > 1)
        found_size += bool(trend["significant"] and trend["effect"] > 0)
    print(
        f"\nplanted effects found in {found_fintech}/{seeds} (FinTech OR e^1) and "
        f"{found_size}/{seeds} (employees trend) seeds"
    )
    assert found_fintech >= 0.9 * seeds
    assert found_size >= 0.9 * seeds


def test_false_discovery_rate_on_pure_noise_stays_below_alpha():
    seeds = 200
    any_discovery = any_raw = 0
    raw_false_positives = raw_tests = 0
    for seed in range(seeds):
        result = test_predictors(
            make_accounts(seed),
            "churned",
            categorical=["industry", "region"],
            numeric=["employees"],
        )
        tested = result.summary.drop_duplicates("hypothesis_id")
        tested = tested[tested["p_value"].notna()]
        any_discovery += bool(result.summary["significant"].any())
        any_raw += bool((tested["p_value"] < ALPHA).any())
        raw_false_positives += int((tested["p_value"] < ALPHA).sum())
        raw_tests += len(tested)
    # Under the complete null every discovery is false, so FDR = P(at least one discovery).
    fdr = any_discovery / seeds
    simulation_se = math.sqrt(ALPHA * (1 - ALPHA) / seeds)
    print(
        f"\npure noise: {seeds} seeds, {raw_tests / seeds:.0f} hypotheses each; observed FDR "
        f"{fdr:.3f} (nominal {ALPHA}, simulation SE {simulation_se:.3f}); uncorrected: "
        f"{raw_false_positives / raw_tests:.3f} of tests and {any_raw / seeds:.2f} of seeds "
        f"with p < {ALPHA}"
    )
    # Benjamini-Hochberg holds the FDR AT alpha under the complete null (exactly, for
    # independent continuous tests), so an estimate from a finite number of seeds scatters
    # around alpha: it must not exceed it by more than the simulation error.
    assert fdr <= ALPHA + 2 * simulation_se
    # The single tests are calibrated, and the family really needed correcting.
    assert 0.02 <= raw_false_positives / raw_tests <= 0.07
    assert any_raw / seeds > 3 * ALPHA


def test_false_discovery_rate_with_planted_effects_stays_below_alpha():
    seeds = 60
    noise_predictors = {"region", "crm", "noise"}
    proportions = []
    discoveries = 0
    for seed in range(seeds):
        data = make_accounts(seed, n=400, fintech_log_odds=0.8, size_slope=0.4)
        result = test_predictors(
            data,
            "churned",
            categorical=["industry", "region", "crm"],
            numeric=["employees", "noise"],
        )
        significant = result.summary[result.summary["significant"]].drop_duplicates("hypothesis_id")
        false = significant["predictor"].isin(noise_predictors).sum()
        discoveries += len(significant)
        proportions.append(false / max(len(significant), 1))
    fdr = float(np.mean(proportions))
    print(
        f"\nplanted + noise: {seeds} seeds, {discoveries / seeds:.1f} discoveries per seed, "
        f"observed FDR {fdr:.3f} (nominal {ALPHA})"
    )
    assert discoveries / seeds >= 2
    assert fdr <= ALPHA


def test_clustered_deals_do_not_produce_the_false_positives_of_naive_tests():
    seeds = 100
    naive = clustered = 0
    for seed in range(seeds):
        deals = make_deals(seed)
        naive += bool(
            test_predictors(deals, "won", categorical=["segment"]).summary["significant"].any()
        )
        clustered += bool(
            test_predictors(deals, "won", categorical=["segment"], cluster="account_id")
            .summary["significant"]
            .any()
        )
    print(
        f"\naccount-level predictor unrelated to winning, {seeds} seeds: naive per-deal tests "
        f"flag it in {naive / seeds:.2f}, account-clustered tests in {clustered / seeds:.2f}"
    )
    assert naive / seeds >= 4 * ALPHA
    assert clustered / seeds <= 1.5 * ALPHA


def test_clustered_separation_is_tested_on_account_rates():
    deals = make_deals(15, n_accounts=80, account_sd=0.5)
    deals.loc[deals["segment"] == "SMB", "won"] = True  # every SMB deal won: the logit diverges
    result = test_predictors(deals, "won", categorical=["segment"], cluster="account_id")
    smb = level_row(result, "segment", "SMB")
    account_rate = deals.groupby("account_id")["won"].mean()
    account_smb = deals.groupby("account_id")["segment"].first() == "SMB"
    expected = sps.mannwhitneyu(account_rate[account_smb], account_rate[~account_smb])
    assert smb["test"] == "mann_whitney_account_rates"
    assert smb["p_value"] == pytest.approx(expected.pvalue, rel=1e-10)
    assert smb["significant"] and smb["effect"] > 1 and np.isnan(smb["ci_low"])
    assert "separation" in smb["note"]


def test_clustered_deals_still_find_a_real_account_level_effect():
    found = 0
    for seed in range(10):
        deals = make_deals(seed, n_accounts=150, account_sd=1.0, segment_log_odds=1.2)
        result = test_predictors(deals, "won", categorical=["segment"], cluster="account_id")
        smb = level_row(result, "segment", "SMB")
        found += bool(smb["significant"] and smb["effect"] > 1)
    assert found >= 8


# ----------------------------------------------------------------------------------------------
# Agreement with scipy / statsmodels called directly


def two_by_two(data: pd.DataFrame, predictor: str, level: str, outcome: str) -> np.ndarray:
    labels = data[predictor].astype("string").fillna(MISSING)
    in_level = (labels == level).to_numpy()
    y = data[outcome].to_numpy(dtype=bool)
    return np.array(
        [
            [np.sum(y & in_level), np.sum(~y & in_level)],
            [np.sum(y & ~in_level), np.sum(~y & ~in_level)],
        ]
    )


def test_level_tests_match_scipy_and_statsmodels():
    data = make_accounts(3, n=400, fintech_log_odds=0.7)
    data.loc[data.index[:8], "industry"] = "Niche"  # a small level: expected counts below 5
    result = test_predictors(data, "churned", categorical=["industry"], min_level_count=5)

    fintech = level_row(result, "industry", "FinTech")
    table = two_by_two(data, "industry", "FinTech", "churned")
    chi2, p, _, _ = sps.chi2_contingency(table, correction=False)
    assert fintech["test"] == "chi2"
    assert fintech["p_value"] == pytest.approx(p, abs=1e-12, rel=1e-10)
    woolf = sm.stats.Table2x2(table)
    assert fintech["effect"] == pytest.approx(woolf.oddsratio, rel=1e-10)
    low, high = woolf.oddsratio_confint(alpha=ALPHA)
    assert (fintech["ci_low"], fintech["ci_high"]) == pytest.approx((low, high), rel=1e-10)
    assert fintech["rate_level"] == pytest.approx(table[0, 0] / table[0].sum(), rel=1e-12)
    assert fintech["rate_rest"] == pytest.approx(table[1, 0] / table[1].sum(), rel=1e-12)
    assert fintech["n"] == table[0].sum()

    # A small level: Fisher's exact test and the conditional odds ratio with its exact interval.
    missing = level_row(result, "industry", "Niche")
    table = two_by_two(data, "industry", "Niche", "churned")
    assert sps.contingency.expected_freq(table).min() < 5
    assert missing["test"] == "fisher_exact"
    assert missing["p_value"] == pytest.approx(sps.fisher_exact(table).pvalue, rel=1e-10)
    conditional = sps.contingency.odds_ratio(table, kind="conditional")
    interval = conditional.confidence_interval(1 - ALPHA)
    assert missing["effect"] == pytest.approx(conditional.statistic, rel=1e-10)
    assert (missing["ci_low"], missing["ci_high"]) == pytest.approx(
        (interval.low, interval.high), rel=1e-10
    )


def test_omnibus_matches_chi2_contingency_and_cramers_v():
    data = make_accounts(4, n=500, fintech_log_odds=0.5)
    result = test_predictors(data, "churned", categorical=["region"])
    table = pd.crosstab(data["region"], data["churned"]).to_numpy()
    chi2, p, dof, _ = sps.chi2_contingency(table, correction=False)
    omnibus = result.tables["predictors"].iloc[0]
    assert omnibus["test"] == "chi2"
    assert omnibus["statistic"] == pytest.approx(chi2, rel=1e-10)
    assert omnibus["p_value"] == pytest.approx(p, rel=1e-10)
    assert omnibus["df"] == dof
    v = sps.contingency.association(table, method="cramer")
    assert omnibus["effect_size"] == pytest.approx(v, rel=1e-10)
    assert result.summary["cramers_v"].iloc[0] == pytest.approx(v, rel=1e-10)
    assert result.summary["predictor_p_value"].iloc[0] == pytest.approx(p, rel=1e-10)


def exact_freeman_halton(table: np.ndarray) -> float:
    """Exact Fisher-Freeman-Halton p-value of an r x 2 table by enumerating every table."""
    rows = table.sum(axis=1)
    events = table[:, 0].sum()

    def log_probability(column):
        return sum(
            math.lgamma(n + 1) - math.lgamma(k + 1) - math.lgamma(n - k + 1)
            for n, k in zip(rows, column, strict=True)
        )

    observed = log_probability(table[:, 0])
    total = 0.0
    extreme = 0.0
    for column in itertools.product(*(range(n + 1) for n in rows)):
        if sum(column) != events:
            continue
        probability = math.exp(log_probability(column))
        total += probability
        if log_probability(column) <= observed + 1e-9:
            extreme += probability
    return extreme / total


def test_small_omnibus_uses_freeman_halton_matching_scipy_and_exact_enumeration():
    data = pd.DataFrame(
        {
            "plan": ["A"] * 12 + ["B"] * 10 + ["C"] * 10 + ["D"] * 10,
            "won": [1] * 9 + [0] * 3 + [1] * 3 + [0] * 7 + [1] * 2 + [0] * 8 + [1] * 5 + [0] * 5,
        }
    )
    result = test_predictors(data, "won", categorical=["plan"], seed=7)
    omnibus = result.tables["predictors"].iloc[0]
    table = pd.crosstab(data["plan"], data["won"])[[1, 0]].to_numpy()
    order = [list(pd.crosstab(data["plan"], data["won"]).index).index(x) for x in "ABCD"]
    assert omnibus["test"].startswith("fisher_freeman_halton")
    method = sps.MonteCarloMethod(n_resamples=9999, rng=np.random.default_rng(7))
    levels_in_result_order = result.params["schemes"]["won"]["plan"]["levels"]
    ordered = table[[list("ABCD").index(x) for x in levels_in_result_order]]
    assert omnibus["p_value"] == pytest.approx(
        sps.fisher_exact(ordered, method=method).pvalue, abs=1e-12
    )
    exact = exact_freeman_halton(table[order])
    monte_carlo_se = math.sqrt(exact * (1 - exact) / 9999)
    assert abs(omnibus["p_value"] - exact) < 4 * monte_carlo_se + 1e-4


def test_freeman_halton_numpy_fallback_agrees_with_exact_enumeration():
    table = np.array([[9, 3], [3, 7], [2, 8], [5, 5]])
    exact = exact_freeman_halton(table)
    fallback = _freeman_halton_numpy(table, 20000, np.random.default_rng(0))
    assert abs(fallback - exact) < 4 * math.sqrt(exact * (1 - exact) / 20000)
    r_by_c = np.array([[4, 2, 1], [1, 3, 4], [2, 2, 2]])
    via_scipy = freeman_halton_pvalue(r_by_c, n_resamples=20000, seed=1)
    via_numpy = _freeman_halton_numpy(r_by_c, 20000, np.random.default_rng(1))
    assert abs(via_scipy - via_numpy) < 4 * math.sqrt(via_scipy * (1 - via_scipy) / 10000)


def test_trend_matches_mannwhitneyu_and_rank_compare():
    data = make_accounts(5, n=300, size_slope=0.4)
    result = test_predictors(data, "churned", numeric=["employees"])
    trend = level_row(result, "employees", TREND)
    known = data[data["employees"].notna()]
    positives = known.loc[known["churned"], "employees"].to_numpy()
    negatives = known.loc[~known["churned"], "employees"].to_numpy()
    mwu = sps.mannwhitneyu(positives, negatives, alternative="two-sided")
    assert trend["test"] == "mann_whitney"
    assert trend["p_value"] == pytest.approx(mwu.pvalue, rel=1e-10)
    rank_biserial = 2 * mwu.statistic / (positives.size * negatives.size) - 1
    assert trend["effect"] == pytest.approx(rank_biserial, rel=1e-10)
    low, high = rank_compare_2indep(positives, negatives).conf_int(alpha=ALPHA)
    assert (trend["ci_low"], trend["ci_high"]) == pytest.approx((2 * low - 1, 2 * high - 1))
    assert trend["n"] == len(known)


def test_continuous_outcome_matches_scipy():
    data = make_accounts(6, n=300)
    rng = np.random.default_rng(6)
    data["arr"] = np.exp(rng.normal(9 + 0.6 * (data["industry"] == "Health"), 1))
    result = test_predictors(data, "arr", categorical=["industry"], numeric=["employees"])
    health = level_row(result, "industry", "Health")
    in_level = (data["industry"] == "Health").to_numpy()
    arr = data["arr"].to_numpy()
    mwu = sps.mannwhitneyu(arr[in_level], arr[~in_level], alternative="two-sided")
    assert health["test"] == "mann_whitney"
    assert health["p_value"] == pytest.approx(mwu.pvalue, rel=1e-10)
    ratio = np.median(arr[in_level]) / np.median(arr[~in_level])
    assert health["effect_type"] == "median_ratio"
    assert health["effect"] == pytest.approx(ratio, rel=1e-12)
    assert health["rate_level"] == pytest.approx(np.median(arr[in_level]))
    assert health["ci_low"] < ratio < health["ci_high"]
    assert health["significant"]

    labels = data["industry"].astype("string").fillna(MISSING)
    groups = [arr[(labels == level).to_numpy()] for level in labels.unique()]
    omnibus = result.tables["predictors"].set_index("predictor").loc["industry"]
    assert omnibus["test"] == "kruskal_wallis"
    assert omnibus["p_value"] == pytest.approx(sps.kruskal(*groups).pvalue, rel=1e-10)

    trend = level_row(result, "employees", TREND)
    known = data["employees"].notna().to_numpy()
    spearman = sps.spearmanr(data["employees"].to_numpy()[known], arr[known])
    assert trend["test"] == "spearman"
    assert trend["effect"] == pytest.approx(spearman.statistic, rel=1e-10)
    assert trend["p_value"] == pytest.approx(spearman.pvalue, rel=1e-10)


def test_clustered_tests_match_statsmodels_glm_with_cluster_robust_errors():
    deals = make_deals(11, n_accounts=120, account_sd=1.0, segment_log_odds=0.8)
    deals["employees"] = deals["account_id"] * 7.0 + 10
    result = test_predictors(
        deals, "won", categorical=["segment"], numeric=["employees"], cluster="account_id"
    )
    smb = level_row(result, "segment", "SMB")
    y = deals["won"].to_numpy(dtype=float)
    in_level = (deals["segment"] == "SMB").to_numpy(dtype=float)
    fit = sm.GLM(y, sm.add_constant(in_level), family=sm.families.Binomial()).fit(
        cov_type="cluster", cov_kwds={"groups": deals["account_id"].to_numpy()}
    )
    accounts_level = deals.loc[in_level == 1, "account_id"].nunique()

    def kish(rows):  # effective number of clusters: (sum n)^2 / sum n^2
        sizes = rows["account_id"].value_counts().to_numpy(dtype=float)
        return sizes.sum() ** 2 / (sizes**2).sum()

    df = min(kish(deals[in_level == 1]), kish(deals[in_level == 0])) - 1
    assert df < min(accounts_level, deals.loc[in_level == 0, "account_id"].nunique()) - 1
    t_stat = fit.params[1] / fit.bse[1]
    assert smb["test"] == "logit_cluster_t"
    assert smb["p_value"] == pytest.approx(2 * sps.t.sf(abs(t_stat), df), rel=1e-10)
    assert smb["effect"] == pytest.approx(math.exp(fit.params[1]), rel=1e-10)
    t_crit = sps.t.ppf(1 - ALPHA / 2, df)
    assert smb["ci_low"] == pytest.approx(math.exp(fit.params[1] - t_crit * fit.bse[1]), rel=1e-10)
    assert smb["n_clusters"] == accounts_level
    # Without zero cells the clustered odds ratio is the plain 2 x 2 odds ratio.
    table = two_by_two(deals.assign(segment=deals["segment"]), "segment", "SMB", "won")
    assert smb["effect"] == pytest.approx(sm.stats.Table2x2(table).oddsratio, rel=1e-8)

    trend = level_row(result, "employees", TREND)
    ranks = (sps.rankdata(deals["employees"]) - 0.5) / len(deals)
    fit = sm.GLM(y, sm.add_constant(ranks), family=sm.families.Binomial()).fit(
        cov_type="cluster", cov_kwds={"groups": deals["account_id"].to_numpy()}
    )
    df = kish(deals) - 1
    assert trend["test"] == "logit_rank_cluster_t"
    assert trend["p_value"] == pytest.approx(
        2 * sps.t.sf(abs(fit.params[1] / fit.bse[1]), df), rel=1e-10
    )
    assert trend["effect"] == pytest.approx(math.exp(fit.params[1] / 2), rel=1e-10)

    omnibus = result.tables["predictors"].set_index("predictor").loc["segment"]
    assert omnibus["test"] == "logit_cluster_wald_f"
    indicators = pd.get_dummies(deals["segment"])[["Mid", "SMB"]].to_numpy(dtype=float)
    fit = sm.GLM(y, sm.add_constant(indicators), family=sm.families.Binomial()).fit(
        cov_type="cluster", cov_kwds={"groups": deals["account_id"].to_numpy()}
    )
    wald = fit.wald_test(np.array([[0, 1, 0], [0, 0, 1.0]]), use_f=False, scalar=True)
    df_denominator = deals.groupby("segment").apply(kish, include_groups=False).min() - 1
    assert df_denominator < deals.groupby("segment")["account_id"].nunique().min() - 1
    expected = sps.f.sf(float(wald.statistic) / 2, 2, df_denominator)
    assert omnibus["p_value"] == pytest.approx(expected, rel=1e-10)


def test_q_values_are_benjamini_hochberg_within_each_outcome_counting_pairs_once():
    accounts = make_accounts(8, n=500, fintech_log_odds=0.6, outcome="churned")
    accounts["best_customer"] = np.random.default_rng(8).random(len(accounts)) < 0.2
    result = test_many(
        {"churned": accounts, "best_customer": accounts},
        categorical=["industry", "crm"],
        numeric=["noise"],
    )
    summary = result.summary
    first = summary.drop_duplicates("hypothesis_id")
    first = first[first["p_value"].notna()]
    # One family per outcome: each outcome's hypotheses are corrected among themselves only.
    for outcome in ("churned", "best_customer"):
        family = first[first["outcome"] == outcome]
        expected = multipletests(family["p_value"], method="fdr_bh")[1]
        assert family["q_value"].to_numpy() == pytest.approx(expected, rel=1e-12)
    pooled = multipletests(first["p_value"], method="fdr_bh")[1]
    assert not np.allclose(first["q_value"].to_numpy(), pooled)
    assert result.params["n_hypotheses"] == len(first)
    # crm has two levels: one hypothesis, two mirrored rows with the same p and q.
    crm = summary[(summary["predictor"] == "crm") & (summary["outcome"] == "churned")]
    assert len(crm) == 2 and crm["hypothesis_id"].nunique() == 1
    assert crm["p_value"].iloc[0] == pytest.approx(crm["p_value"].iloc[1], rel=1e-12)
    assert crm["effect"].iloc[0] * crm["effect"].iloc[1] == pytest.approx(1.0, rel=1e-10)
    assert set(first["outcome"]) == {"churned", "best_customer"}
    assert summary["significant"].equals(summary["q_value"] < ALPHA)

    holm = test_many(
        {"churned": accounts, "best_customer": accounts},
        categorical=["industry", "crm"],
        numeric=["noise"],
        correction="holm",
    ).summary
    first = holm.drop_duplicates("hypothesis_id")
    first = first[first["p_value"].notna()]
    for outcome in ("churned", "best_customer"):
        family = first[first["outcome"] == outcome]
        expected = multipletests(family["p_value"], method="holm")[1]
        assert family["q_value"].to_numpy() == pytest.approx(expected, rel=1e-12)


def test_minimum_detectable_effect_matches_statsmodels_power():
    power_analysis = NormalIndPower()
    for n1, n2 in [(30, 300), (120, 480), (15, 40)]:
        expected = power_analysis.solve_power(
            effect_size=None, nobs1=n1, alpha=ALPHA, power=0.8, ratio=n2 / n1
        )
        detectable = minimum_detectable_h(n1, n2)
        # Closed form vs root search: equal up to the wrong-direction rejection probability.
        assert detectable == pytest.approx(expected, rel=1e-5)
        power = power_analysis.power(detectable, n1, ALPHA, n2 / n1)
        assert power == pytest.approx(0.8, abs=1e-5)
    result = test_predictors(make_accounts(9, n=400), "churned", categorical=["region"])
    for row in result.summary.itertuples():
        n_rest = row.n_rest
        detectable_up = row.rate_rest + row.mde
        detectable_down = row.rate_rest - row.mde
        powers = [
            power_analysis.power(
                abs(proportion_effectsize(rate, row.rate_rest)), row.n, ALPHA, n_rest / row.n
            )
            for rate in (detectable_up, detectable_down)
            if 0 <= rate <= 1
        ]
        # The reported mde is detectable with >= 80% power in both directions, and exactly
        # 80% in the harder one.
        assert min(powers) == pytest.approx(0.8, abs=1e-6)
        assert row.mde_unit == "rate_diff"


# ----------------------------------------------------------------------------------------------
# Findings and caveats in words


def test_findings_read_as_sentences_with_interval_n_and_q():
    data = make_accounts(14, n=800, fintech_log_odds=1.0)
    result = test_predictors(data, "churned", categorical=["industry", "region"])
    fintech = next(f for f in result.findings if f.startswith("industry = FinTech"))
    assert "churn rate" in fintech and "x the odds" in fintech
    assert "95% CI" in fintech and "800" not in fintech and "accounts" in fintech
    assert "q " in fintech
    region = next(f for f in result.findings if "region" in f)
    assert region.startswith("No evidence that region predicts the churn rate")
    assert "points" in region
    verdicts = result.tables["predictors"].set_index("predictor")["verdict"]
    assert verdicts["industry"] == "predicts" and verdicts["region"] == "no evidence"


def test_clustered_findings_count_deals_and_accounts():
    deals = make_deals(2, n_accounts=200, account_sd=1.0, segment_log_odds=1.2)
    result = test_predictors(deals, "won", categorical=["segment"], cluster="account_id")
    smb = next(f for f in result.findings if f.startswith("segment = SMB"))
    assert "deals from" in smb and "accounts" in smb and "win rate" in smb
    assert any("account-clustered" in c for c in result.caveats)
    assert result.params["outcomes"]["won"]["icc"] > 0.1


def test_underpowered_questions_are_flagged_not_reported_as_no_effect():
    data = make_accounts(13, n=40)
    result = test_predictors(data, "churned", categorical=["region"], min_level_count=5)
    assert result.summary["underpowered"].all()
    assert not any(f.startswith("No evidence that region") for f in result.findings)
    assert any(c.startswith("Not enough data to tell whether region") for c in result.caveats)
    assert result.tables["predictors"]["verdict"].iloc[0] == "not enough data"
    # A detectable gap of 50 points or more (it read "beyond ±98 points" of a 75% rate) is
    # not quoted as if a rate could move that far.
    tiny = test_predictors(make_accounts(13, n=20), "churned", categorical=["region"])
    assert tiny.summary["mde"].min() >= 0.5
    (caveat,) = [c for c in tiny.caveats if c.startswith("Not enough data to tell whether")]
    assert caveat.endswith(
        "too few rows for an effect of any plausible size to be reliably detected."
    )


def test_rare_levels_pooled_and_too_few_accounts_not_tested():
    deals = make_deals(14, n_accounts=80)
    # Two accounts share a rare segment with many deals: enough rows, too few accounts.
    rare_accounts = deals["account_id"].isin([0, 1])
    deals.loc[rare_accounts, "segment"] = "Startup"
    deals = pd.concat([deals, deals[rare_accounts]], ignore_index=True)
    result = test_predictors(deals, "won", categorical=["segment"], cluster="account_id")
    levels = set(result.summary["level"])
    assert "Startup" not in levels and OTHER in levels
    other = level_row(result, "segment", OTHER)
    assert np.isnan(other["p_value"]) and "not tested" in other["note"]
    assert any("pooled into (other)" in c for c in result.caveats)


# ----------------------------------------------------------------------------------------------
# Degenerate data: caveats, no crash


def test_one_outcome_class_only():
    data = make_accounts(15, n=50).assign(churned=False)
    result = test_predictors(
        data, "churned", categorical=["industry"], numeric=["employees"], min_level_count=3
    )
    assert not result.summary["significant"].any()
    assert result.summary["p_value"].isna().all()
    assert any("every row has churned = 0" in c for c in result.caveats)
    assert set(result.tables["predictors"]["verdict"]) == {"not testable"}


def test_single_level_and_all_missing_predictors():
    data = make_accounts(16, n=80).assign(plan="Pro", segment=None, score=np.nan)
    result = test_predictors(data, "churned", categorical=["plan", "segment"], numeric=["score"])
    plan = level_row(result, "plan", "Pro")
    assert np.isnan(plan["p_value"]) and "single level" in plan["note"]
    segment = level_row(result, "segment", MISSING)
    assert segment["n"] == 80 and np.isnan(segment["p_value"])
    score = level_row(result, "score", TREND)
    assert np.isnan(score["p_value"])
    verdicts = result.tables["predictors"].set_index("predictor")["verdict"]
    assert (verdicts == "not testable").all()
    assert sum("could not be tested" in c for c in result.caveats) == 3
    # The reason is in the sentence: the report shows no note column to point to.
    (said,) = [c for c in result.caveats if c.startswith("plan could not be tested")]
    assert said == f"plan could not be tested against churned: {plan['note']}."
    assert not any("see the note column" in c for c in result.caveats)


def test_tiny_data_and_no_known_outcome():
    tiny = make_accounts(17, n=6)
    result = test_predictors(tiny, "churned", categorical=["region"], numeric=["noise"])
    assert not result.summary["significant"].any()
    assert result.summary["underpowered"].all()
    unknown = tiny.assign(churned=np.nan)
    empty = test_predictors(unknown, "churned", categorical=["region"])
    assert empty.summary.empty
    assert any("no rows with a known outcome" in c for c in empty.caveats)


def test_open_deals_are_left_out_with_a_caveat():
    deals = make_deals(18).astype({"won": object})
    deals.loc[deals.index[:10], "won"] = None
    result = test_predictors(deals, "won", categorical=["segment"], cluster="account_id")
    assert result.params["outcomes"]["won"]["n"] == len(deals) - 10
    assert any("10 rows with no known outcome" in c for c in result.caveats)


def test_bad_input_raises_clear_errors():
    data = make_accounts(19, n=30).assign(stage=lambda d: np.where(d["churned"], "won", "lost"))
    with pytest.raises(InputError, match="boolean / 0-1"):
        test_predictors(data, "stage", categorical=["region"])
    with pytest.raises(InputError, match="not found"):
        test_predictors(data, "churned", categorical=["vertical"])
    with pytest.raises(InputError, match="both categorical and numeric"):
        test_predictors(data, "churned", categorical=["noise"], numeric=["noise"])
    deal_rows = data.assign(account_id=np.arange(len(data)) // 3)  # three rows per account
    with pytest.raises(InputError, match="one row per account"):
        test_predictors(deal_rows, "noise", categorical=["region"], cluster="account_id")
    with pytest.raises(InputError, match="No predictors"):
        test_predictors(data, "churned")


# ----------------------------------------------------------------------------------------------
# Multivariable model


def test_model_matches_statsmodels_glm_and_logit():
    data = make_accounts(20, n=600, fintech_log_odds=1.0, size_slope=0.4)
    data = data.dropna(subset=["employees"])
    model = multivariable_model(
        data,
        "churned",
        ["industry", "employees"],
        min_level_count=5,
        reference={"industry": "Retail"},
    )
    assert list(model.summary.columns) == MODEL_COLUMNS
    labels = data["industry"].astype("string").fillna(MISSING)
    reference = model.params["references"]["industry"]
    assert reference == "Retail"
    dummies = pd.get_dummies(labels).drop(columns=reference).astype(float)
    exog = sm.add_constant(
        pd.concat([dummies, np.log2(data["employees"]).rename("employees")], axis=1)
    )
    y = data["churned"].astype(float)
    glm = sm.GLM(y, exog, family=sm.families.Binomial()).fit()
    logit = sm.Logit(y, exog).fit(disp=0)
    fintech = model.summary.set_index("term").loc["industry=FinTech"]
    assert fintech["odds_ratio"] == pytest.approx(math.exp(glm.params["FinTech"]), rel=1e-10)
    assert fintech["p_value"] == pytest.approx(glm.pvalues["FinTech"], rel=1e-10)
    assert fintech["ci_low"] == pytest.approx(math.exp(glm.conf_int()[0]["FinTech"]), rel=1e-10)
    assert fintech["odds_ratio"] == pytest.approx(math.exp(logit.params["FinTech"]), rel=1e-6)
    employees = model.summary.set_index("term").loc["employees"]
    assert employees["level"] == "per doubling"
    assert employees["odds_ratio"] == pytest.approx(math.exp(glm.params["employees"]), rel=1e-10)
    vif = variance_inflation_factor(exog.to_numpy(), list(exog.columns).index("employees"))
    assert employees["vif"] == pytest.approx(vif, rel=1e-10)
    assert fintech["significant"] and not model.params["regularized"]
    assert any("FinTech" in f and "odds of churning" in f for f in model.findings)


def test_model_with_clusters_uses_cluster_robust_t():
    deals = make_deals(21, n_accounts=150, account_sd=1.0, segment_log_odds=1.0)
    model = multivariable_model(deals, "won", ["segment"], cluster="account_id")
    reference = model.params["references"]["segment"]
    dummies = pd.get_dummies(deals["segment"]).drop(columns=reference).astype(float)
    fit = sm.GLM(
        deals["won"].astype(float), sm.add_constant(dummies), family=sm.families.Binomial()
    ).fit(cov_type="cluster", cov_kwds={"groups": deals["account_id"].to_numpy()}, use_t=True)
    smb = model.summary.set_index("term").loc["segment=SMB"]
    assert smb["p_value"] == pytest.approx(fit.pvalues["SMB"], rel=1e-10)
    assert "account-clustered" in model.params["method"]
    assert model.params["n_clusters"] == 150


def test_clustered_model_on_account_terms_fits_one_row_per_account_and_outcome(monkeypatch):
    from icp_research.methods import multivariable

    deals = make_deals(22, n_accounts=200, account_sd=1.0, segment_log_odds=0.8)
    size = np.random.default_rng(22).lognormal(4, 1, 200)
    deals["employees"] = size[deals["account_id"]]  # an account's attribute on each deal
    calls = []
    per_account = multivariable._per_account
    monkeypatch.setattr(
        multivariable, "_per_account", lambda *a: calls.append(per_account(*a)) or calls[-1]
    )
    grouped = multivariable_model(deals, "won", ["segment", "employees"], cluster="account_id")
    assert calls[-1] is not None and len(calls[-1][0]) <= 2 * 200  # fitted on accounts
    monkeypatch.setattr(multivariable, "_per_account", lambda *a: None)
    every_row = multivariable_model(deals, "won", ["segment", "employees"], cluster="account_id")
    pd.testing.assert_frame_equal(grouped.summary, every_row.summary, rtol=1e-9)
    pd.testing.assert_frame_equal(
        grouped.tables["predictors"], every_row.tables["predictors"], rtol=1e-9
    )
    for key in ("pseudo_r2", "aic"):
        assert grouped.params[key] == pytest.approx(every_row.params[key], rel=1e-9)
    assert grouped.params["n"] == every_row.params["n"] == len(deals)
    assert grouped.params["method"] == every_row.params["method"]


@pytest.mark.parametrize("clustered", [False, True])
def test_repeated_rows_are_fitted_once_weighted_with_the_same_inference(monkeypatch, clustered):
    """Binned and categorical terms over 6,000 accounts (one row each) take 60 distinct rows:
    fitted once each, weighted, the estimates, intervals, p-values, joint tests, pseudo-R2 and
    AIC are those of the fit over every row, unclustered and account-clustered alike."""
    from icp_research.methods import multivariable

    rng = np.random.default_rng(31)
    n = 6_000
    data = pd.DataFrame(
        {
            "segment": rng.choice(["SMB", "Mid", "Ent"], n, p=[0.5, 0.3, 0.2]),
            "region": rng.choice(["EU", "US", "APAC", "LATAM"], n),
            "employees": rng.lognormal(4, 1, n),
            "account_id": np.arange(n),
        }
    )
    logit = -0.5 + 0.7 * (data["segment"] == "Ent") - 0.4 * (data["region"] == "EU")
    data["won"] = rng.random(n) < 1 / (1 + np.exp(-logit))
    kwargs = {"numeric_scale": "bins", "cluster": "account_id" if clustered else None}
    calls = []
    by_pattern = multivariable._by_pattern
    monkeypatch.setattr(
        multivariable, "_by_pattern", lambda *a: calls.append(by_pattern(*a)) or calls[-1]
    )
    weighted = multivariable_model(data, "won", ["segment", "region", "employees"], **kwargs)
    assert calls[-1] is not None and len(calls[-1][0]) <= 2 * 3 * 4 * 5
    monkeypatch.setattr(multivariable, "_by_pattern", lambda *a: None)
    every_row = multivariable_model(data, "won", ["segment", "region", "employees"], **kwargs)
    pd.testing.assert_frame_equal(weighted.summary, every_row.summary, rtol=1e-8)
    pd.testing.assert_frame_equal(
        weighted.tables["predictors"], every_row.tables["predictors"], rtol=1e-8
    )
    for key in ("pseudo_r2", "aic"):
        assert weighted.params[key] == pytest.approx(every_row.params[key], rel=1e-9)
    assert weighted.params["method"] == every_row.params["method"]
    assert ("account-clustered" in weighted.params["method"]) == clustered
    # A continuous term makes most rows distinct: then every row is fitted.
    assert (
        by_pattern(data["won"].to_numpy(float), sm.add_constant(data[["employees"]]), None) is None
    )


def test_model_joint_test_per_predictor_matches_statsmodels_wald():
    deals = make_deals(25, n_accounts=150, account_sd=1.0, segment_log_odds=1.0)
    deals["region"] = np.random.default_rng(25).choice(["EU", "US", "APAC"], len(deals))
    model = multivariable_model(deals, "won", ["segment", "region"], cluster="account_id")
    joint = model.tables["predictors"].set_index("predictor")
    assert list(model.tables["predictors"].columns) == JOINT_TEST_COLUMNS
    references = model.params["references"]
    dummies = pd.concat(
        [
            pd.get_dummies(deals[name], prefix=name, prefix_sep="=")
            .drop(columns=f"{name}={references[name]}")
            .astype(float)
            for name in ("segment", "region")
        ],
        axis=1,
    )
    fit = sm.GLM(
        deals["won"].astype(float), sm.add_constant(dummies), family=sm.families.Binomial()
    ).fit(cov_type="cluster", cov_kwds={"groups": deals["account_id"].to_numpy()}, use_t=True)
    segment_terms = [c for c in dummies.columns if c.startswith("segment=")]
    restriction = np.eye(len(fit.params))[[list(fit.params.index).index(t) for t in segment_terms]]
    wald = fit.wald_test(restriction, use_f=True, scalar=True)
    assert joint.loc["segment", "test"] == "wald_f_cluster"
    assert joint.loc["segment", "n_terms"] == 2
    assert joint.loc["segment", "df_denom"] == 149  # accounts - 1
    assert joint.loc["segment", "statistic"] == pytest.approx(float(wald.statistic), rel=1e-8)
    assert joint.loc["segment", "p_value"] == pytest.approx(float(wald.pvalue), rel=1e-8)
    # The planted segment adds to region; the noise region adds nothing.
    assert joint.loc["segment", "independent"] and not joint.loc["region", "independent"]


def test_model_joint_test_without_clusters_is_chi_square():
    data = make_accounts(26, n=500, fintech_log_odds=1.0).dropna(subset=["employees"])
    model = multivariable_model(data, "churned", ["industry", "employees"], min_level_count=5)
    joint = model.tables["predictors"].set_index("predictor")
    assert set(joint["test"]) == {"wald_chi2"}
    assert joint["df_denom"].isna().all()
    # One term: the joint test is the square of the term's z test.
    employees = model.summary.set_index("term").loc["employees"]
    assert joint.loc["employees", "p_value"] == pytest.approx(employees["p_value"], rel=1e-8)


def test_model_flags_collinearity():
    data = make_accounts(22, n=400, size_slope=0.4).dropna(subset=["employees"])
    noise = np.random.default_rng(22).normal(0, 0.05, len(data))
    data["revenue"] = data["employees"] * 180 * np.exp(noise)
    model = multivariable_model(data, "churned", ["employees", "revenue"])
    assert (model.summary.set_index("term").loc[["employees", "revenue"], "vif"] > 5).all()
    assert any(c.startswith("Collinearity") for c in model.caveats)


def test_vif_from_the_inverse_correlation_matrix_matches_statsmodels():
    from icp_research.methods.multivariable import _vif

    rng = np.random.default_rng(27)
    x = rng.normal(size=(300, 4))
    x[:, 1] += 0.8 * x[:, 0]
    x[:, 3] = rng.random(300) < 0.3
    exog = sm.add_constant(pd.DataFrame(x, columns=list("abcd")))
    vif = _vif(exog)
    for i, column in enumerate(exog.columns[1:], start=1):
        expected = variance_inflation_factor(exog.to_numpy(), i)
        assert vif[column] == pytest.approx(expected, rel=1e-9)
    # An exact duplicate makes the correlation matrix singular: the regression fallback says so.
    duplicated = exog.assign(e=exog["a"])
    with np.errstate(divide="ignore"):
        assert _vif(duplicated)["e"] > 1e10


def test_the_correlation_of_a_design_is_summed_in_blocks_without_copying_it():
    """At 10M deals the design is gigabytes: its correlation is summed over row blocks, and
    the matrix is one array whose columns are the design's (nothing held twice)."""
    from icp_research.methods.multivariable import _correlation, _Design

    rng = np.random.default_rng(5)
    x = np.asfortranarray(np.c_[rng.normal(size=(10_001, 3)), rng.random((10_001, 4)) < 0.2])
    expected = np.corrcoef(x, rowvar=False)
    for rows in (1_000, 4_096, 1 << 18):  # blocks that do not divide the rows, and one block
        assert np.allclose(_correlation(x, rows=rows), expected, rtol=1e-12, atol=1e-14)
    design = _Design(pd.RangeIndex(len(x)))
    design.add_numeric("u", pd.Series(x[:, 0] + 5), "standardize")
    design.add_categorical("flag", pd.Series(np.where(x[:, 3] > 0, "yes", "no")), None)
    exog = design.matrix()
    assert list(exog.columns) == ["const", "u", "flag=yes"]
    assert len(exog._mgr.blocks) == 1
    assert np.shares_memory(design.columns["u"], exog.to_numpy(copy=False))
    assert exog["flag=yes"].sum() == (x[:, 3] > 0).sum() and (exog["const"] == 1).all()


def test_model_separation_falls_back_to_regularised_estimates():
    data = make_accounts(23, n=400, fintech_log_odds=0.5)
    data.loc[data["industry"] == "Health", "churned"] = True
    model = multivariable_model(data, "churned", ["industry", "region"], min_level_count=5)
    assert model.params["regularized"] and not model.params["converged"]
    assert model.params["separation"] == ["industry=Health"]
    assert any(c.startswith("Separation") for c in model.caveats)
    fitted = model.summary[model.summary["note"] == "regularised estimate"]
    assert np.isfinite(fitted["odds_ratio"]).all()
    assert fitted["ci_low"].isna().all() and fitted["p_value"].isna().all()
    health = model.summary.set_index("term").loc["industry=Health", "odds_ratio"]
    assert health > 5  # shrunk, but still pointing the right way
    assert not model.summary["significant"].any()


def test_model_input_errors():
    data = make_accounts(24, n=60)
    with pytest.raises(InputError):
        multivariable_model(data, "noise", ["region"])
    with pytest.raises(NotEnoughData):
        multivariable_model(data.assign(churned=True), "churned", ["region"])
    with pytest.raises(InputError, match="not found"):
        multivariable_model(data, "churned", ["vertical"])


# ----------------------------------------------------------------------------------------------
# Out-of-sample replication


def test_real_effects_replicate_and_spurious_ones_do_not():
    discovery_data = make_accounts(30, n=800, fintech_log_odds=1.0, size_slope=0.5)
    discovery = test_predictors(
        discovery_data, "churned", categorical=["industry", "region"], numeric=["employees"]
    )
    assert level_row(discovery, "industry", "FinTech")["significant"]
    same_process = make_accounts(31, n=500, fintech_log_odds=1.0, size_slope=0.5)
    confirmed = replicate(discovery, same_process)
    fintech = confirmed.summary.set_index(["predictor", "level"]).loc[("industry", "FinTech")]
    assert fintech["replicated"] and fintech["status"] == "replicated"
    assert fintech["test_confirm"] == "chi2"
    # The confirmation test is one-sided in the discovered direction.
    table = two_by_two(same_process, "industry", "FinTech", "churned")
    chi2, _, _, _ = sps.chi2_contingency(table, correction=False)
    assert fintech["p_value_confirm"] == pytest.approx(sps.norm.sf(math.sqrt(chi2)), rel=1e-10)
    assert any(f.startswith("Replicated: industry = FinTech") for f in confirmed.findings)
    assert set(confirmed.recommended["predictor"]) >= {"industry"}

    no_effect = make_accounts(32, n=500)
    refuted = replicate(discovery, no_effect)
    fintech = refuted.summary.set_index(["predictor", "level"]).loc[("industry", "FinTech")]
    assert not fintech["replicated"]
    assert fintech["status"] != "replicated"
    assert any(f.startswith("Did not replicate: industry = FinTech") for f in refuted.findings)


def test_replication_across_outcomes_keeps_each_outcomes_clustering():
    deals = make_deals(41, n_accounts=200, account_sd=1.0, segment_log_odds=1.2)
    accounts = deals.groupby("account_id", as_index=False).first()
    accounts["best_customer"] = accounts["segment"].eq("SMB") & (
        np.random.default_rng(41).random(len(accounts)) < 0.7
    )
    discovery = test_many(
        {"won": (deals, "account_id"), "best_customer": accounts}, categorical=["segment"]
    )
    later_deals = make_deals(42, n_accounts=200, account_sd=1.0, segment_log_odds=1.2)
    later_accounts = later_deals.groupby("account_id", as_index=False).first()
    later_accounts["best_customer"] = later_accounts["segment"].eq("SMB") & (
        np.random.default_rng(42).random(len(later_accounts)) < 0.7
    )
    result = replicate(discovery, {"won": later_deals, "best_customer": later_accounts})
    won = result.summary[result.summary["outcome"] == "won"]
    assert set(won["test_confirm"]) == {"logit_cluster_t"}  # discovery's cluster column reused
    assert won["n_clusters_confirm"].notna().all()
    assert result.summary.loc[result.summary["level"] == "SMB", "replicated"].all()
    with pytest.raises(InputError, match="several outcomes"):
        replicate(discovery, later_deals)


def test_fixed_bins_are_shared_by_every_outcome_and_the_model():
    accounts = make_accounts(34, n=500, size_slope=0.6)
    accounts["won"] = np.random.default_rng(34).random(len(accounts)) < 0.4
    customers = accounts[accounts["won"]]
    result = test_many(
        {"churned": accounts, "won": customers.assign(won=customers["churned"])},
        numeric=["employees"],
        bins={"employees": [100, 300]},
    )
    for outcome in ("churned", "won"):
        assert result.params["schemes"][outcome]["employees"]["cuts"] == [100.0, 300.0]
    bins = result.summary[result.summary["kind"] == "bin"]
    assert set(bins["level"]) <= {"< 100", "100 to < 300", ">= 300", MISSING}
    small = level_row(result, "employees", "< 100", outcome="churned")
    assert small["n"] == int((accounts["employees"] < 100).sum())
    model = multivariable_model(
        accounts, "churned", ["employees"], numeric_scale="bins", bins={"employees": [100, 300]}
    )
    assert set(model.summary["level"]) <= {"< 100", "100 to < 300", ">= 300", MISSING}


def test_replication_reuses_discovery_levels_and_bins():
    discovery_data = make_accounts(33, n=800, size_slope=0.8)
    discovery = test_predictors(discovery_data, "churned", numeric=["employees"])
    cuts = discovery.params["schemes"]["churned"]["employees"]["cuts"]
    later = make_accounts(34, n=300, size_slope=0.8)
    later["employees"] *= 3  # a different distribution must not move the bins
    confirmed = replicate(discovery, later)
    bins = confirmed.summary[confirmed.summary["kind"] == "bin"]
    expected_levels = set(
        discovery.summary.loc[
            discovery.summary["significant"] & (discovery.summary["kind"] == "bin"), "level"
        ]
    )
    assert set(bins["level"]) == expected_levels
    assert cuts == discovery.params["schemes"]["churned"]["employees"]["cuts"]


def test_replication_of_a_level_missing_later_and_of_nothing():
    data = make_accounts(35, n=800, fintech_log_odds=1.2)
    discovery = test_predictors(data, "churned", categorical=["industry"])
    later = make_accounts(36, n=300)
    later = later[later["industry"] != "FinTech"]
    result = replicate(discovery, later)
    fintech = result.summary.set_index(["predictor", "level"]).loc[("industry", "FinTech")]
    assert not fintech["replicated"] and "does not occur" in fintech["status"]

    quiet = test_predictors(make_accounts(37, n=100), "churned", categorical=["region"])
    assert not quiet.summary["significant"].any()
    nothing = replicate(quiet, make_accounts(38, n=100))
    assert nothing.summary.empty
    assert "nothing was significant" in nothing.findings[0]


def test_time_split():
    data = make_accounts(39, n=100)
    data["closed_at"] = pd.date_range("2025-01-01", periods=100, freq="D")
    data.loc[5, "closed_at"] = pd.NaT
    discovery, confirmation = time_split(data, "closed_at", confirm_share=0.25)
    assert discovery["closed_at"].max() < confirmation["closed_at"].min()
    assert len(discovery) + len(confirmation) == 99
    assert 20 <= len(confirmation) <= 30
    early, late = time_split(data, "closed_at", confirm_from="2025-03-01")
    assert late["closed_at"].min() == pd.Timestamp("2025-03-01")
    with pytest.raises(InputError):
        time_split(data, "created_at")


# ----------------------------------------------------------------------------------------------
# Forest plot


def test_forest_plot_draws_one_line_per_effect():
    import matplotlib.pyplot as plt

    data = make_accounts(40, n=600, fintech_log_odds=1.0)
    result = test_predictors(data, "churned", categorical=["industry", "region"])
    ax = plot_forest(result)
    odds_rows = result.summary[result.summary["effect_type"] == "odds_ratio"]
    assert len(ax.get_yticklabels()) == len(odds_rows)
    assert ax.get_xscale() == "log"
    assert any("FinTech" in label.get_text() for label in ax.get_yticklabels())
    plt.close(ax.figure)

    model = multivariable_model(data, "churned", ["industry", "region"], min_level_count=5)
    _, ax = plt.subplots()
    assert plot_forest(model, ax=ax) is ax
    assert len(ax.get_yticklabels()) == len(model.summary)
    plt.close(ax.figure)


def test_large_groups_use_order_statistic_median_intervals_that_match_the_bootstrap():
    from icp_research.methods import predictors as engine

    rng = np.random.default_rng(11)
    opts = engine._Options()
    level = rng.lognormal(10, 1, 5000)
    rest = rng.lognormal(9.8, 1, 8000)
    fast = engine._median_effect_ci(level, rest, True, opts)
    boot_opts = engine._Options()
    original = engine.BOOTSTRAP_MAX_N
    try:
        engine.BOOTSTRAP_MAX_N = 10**9
        boot = engine._median_effect_ci(level, rest, True, boot_opts)
    finally:
        engine.BOOTSTRAP_MAX_N = original
    assert fast == pytest.approx(boot, rel=0.01)
    # Coverage of the true ratio (1.0) over repeated samples.
    hits = sum(
        lo <= 1 <= hi
        for lo, hi in (
            engine._median_effect_ci(
                rng.lognormal(10, 1, 3000), rng.lognormal(10, 1.3, 4000), True, opts
            )
            for _ in range(200)
        )
    )
    assert 0.91 <= hits / 200 <= 0.99


def test_closed_form_clustered_logit_equals_statsmodels():
    import statsmodels.api as sm

    from icp_research.methods.predictors import _binary_cluster_logit

    rng = np.random.default_rng(5)
    clusters = rng.integers(0, 250, 3000)
    x = rng.random(3000) < 0.25
    y = (
        rng.random(3000) < 1 / (1 + np.exp(-(-1 + 0.6 * x + rng.normal(0, 1, 250)[clusters])))
    ).astype(float)
    fit = sm.GLM(
        y, np.column_stack([np.ones(y.size), x.astype(float)]), family=sm.families.Binomial()
    ).fit(cov_type="cluster", cov_kwds={"groups": clusters})
    beta, se = _binary_cluster_logit(y, x, clusters)
    assert beta == pytest.approx(fit.params[1], abs=1e-10)
    assert se == pytest.approx(fit.bse[1], rel=1e-10)


def test_closed_form_clustered_wald_equals_statsmodels():
    import statsmodels.api as sm

    from icp_research.methods.predictors import _saturated_cluster_wald

    rng = np.random.default_rng(6)
    clusters = rng.integers(0, 300, 4000)
    # Levels mostly fixed per account, some deals of an account in another level; code 2 absent.
    codes = np.where(rng.random(4000) < 0.9, np.array([0, 1, 3, 4])[clusters % 4], 1)
    effect = np.array([0.0, 0.4, 0.0, -0.3, 0.2])[codes]
    y = rng.random(4000) < 1 / (1 + np.exp(-(-0.5 + effect + rng.normal(0, 1, 300)[clusters])))
    y = y.astype(float)
    others = [0, 3, 4]  # reference: level 1
    design = np.column_stack([np.ones(y.size), *[(codes == c).astype(float) for c in others]])
    fit = sm.GLM(y, design, family=sm.families.Binomial()).fit(
        cov_type="cluster", cov_kwds={"groups": clusters}
    )
    restriction = np.hstack([np.zeros((3, 1)), np.eye(3)])
    wald = fit.wald_test(restriction, use_f=False, scalar=True)
    statistic = _saturated_cluster_wald(y, codes, 1, others, clusters)
    assert statistic == pytest.approx(float(wald.statistic), rel=1e-9)


def test_mechanical_findings_about_one_outcome_do_not_loosen_the_threshold_for_another():
    """Null data for winning, while size all but defines best-customer status: with one family
    for both outcomes the many tiny best-customer p-values raise the Benjamini-Hochberg rank of
    a noise win finding and let it through; one family per outcome keeps false win discoveries
    near the nominal rate."""
    kit_false, pooled_false, runs = 0, 0, 40
    for seed in range(runs):
        accounts = make_accounts(1000 + seed, n=300, base_rate=0.4, outcome="won")
        size = np.nan_to_num(np.log(accounts["employees"] / 150), nan=-3)
        accounts["best_customer"] = size + np.random.default_rng(seed).normal(0, 0.3, 300) > 0.8
        accounts["size_band"] = pd.cut(size, [-np.inf, -1, 0, 1, np.inf], labels=list("ABCD"))
        accounts["size_band"] = accounts["size_band"].astype(str)
        summary = test_many(
            {"won": accounts, "best_customer": accounts},
            categorical=["industry", "region", "crm", "size_band"],
            numeric=["employees", "noise"],
        ).summary
        first = summary.drop_duplicates("hypothesis_id")
        first = first[first["p_value"].notna()]
        won = (first["outcome"] == "won").to_numpy()
        kit_false += bool(first.loc[won, "significant"].any())
        pooled = multipletests(first["p_value"], method="fdr_bh")[1]
        pooled_false += bool((pooled[won] < ALPHA).any())
    # Pooled, the noise win findings pass far more often than 5%; per outcome they do not.
    assert pooled_false >= 3 * max(kit_false, 1)
    assert kit_false / runs <= 0.10


def test_a_confirmation_is_underpowered_when_it_had_under_80_percent_power_for_the_discovered_effect():
    """Issue 17.11: 'not enough data to confirm' means the confirmation could not have detected
    the discovered effect with 80% power, not a fixed effect-size threshold."""
    discovery = test_many(
        {"won": make_accounts(71, n=3000, fintech_log_odds=0.9, outcome="won")},
        categorical=["industry"],
    )
    fintech = discovery.summary.query("level == 'FinTech'").iloc[0]
    assert fintech["significant"]
    rows = []
    for n in (60, 150, 400, 1500, 4000):
        later = make_accounts(500 + n, n=n, fintech_log_odds=0.0, outcome="won")
        summary = replicate(discovery, later).summary
        row = summary.query("predictor == 'industry' and level == 'FinTech'").iloc[0]
        n_level = int((later["industry"] == "FinTech").sum())
        power = NormalIndPower().power(
            abs(fintech["std_effect"]), n_level, ALPHA, (n - n_level) / n_level
        )
        rows.append((n, power, bool(row["underpowered_confirm"]), row["status"]))
        assert bool(row["underpowered_confirm"]) == (power < 0.8 - 1e-3), rows[-1]
        if row["underpowered_confirm"] and row["same_direction"] and not row["replicated"]:
            assert "too small to tell" in row["status"]
    # Both kinds occur over these sizes: small confirmations cannot tell, large ones can.
    assert {r[2] for r in rows} == {True, False}


def _two_big_winners(seed: int, n_small: int = 150) -> pd.DataFrame:
    """Ordinary accounts (1-3 deals, 30% won, a third 'Big' at random) and two accounts, 'Big',
    with 40-60 deals each nearly all won: whatever 'Big' shows rests on those two."""
    rng = np.random.default_rng(seed)
    rows = []
    for account in range(n_small):
        segment = "Big" if rng.random() < 0.3 else "Small"
        rows += [(account, segment, rng.random() < 0.3) for _ in range(rng.integers(1, 4))]
    for account in range(n_small, n_small + 2):
        rows += [(account, "Big", rng.random() < 0.95) for _ in range(rng.integers(40, 61))]
    return pd.DataFrame(rows, columns=["account_id", "segment", "won"])


def test_a_level_two_accounts_carry_is_tested_by_sign_flips_and_its_interval_widened():
    deals = _two_big_winners(1)
    result = test_predictors(deals, "won", categorical=["segment"], cluster="account_id")
    big = level_row(result, "segment", "Big")
    y = deals["won"].to_numpy(dtype=float)
    in_level = (deals["segment"] == "Big").to_numpy(dtype=float)
    fit = sm.GLM(y, sm.add_constant(in_level), family=sm.families.Binomial()).fit(
        cov_type="cluster", cov_kwds={"groups": deals["account_id"].to_numpy()}
    )
    sizes = [deals.loc[in_level == v, "account_id"].value_counts().to_numpy() for v in (1, 0)]
    df = min(s.sum() ** 2 / (s.astype(float) ** 2).sum() for s in sizes) - 1
    p_t = 2 * sps.t.sf(abs(fit.params[1] / fit.bse[1]), df)
    assert big["effect"] == pytest.approx(math.exp(fit.params[1]), rel=1e-10)
    assert big["p_value"] > p_t + 0.01
    assert "flipping the signs" in big["note"] and "2 of them hold half" in big["note"]
    # The interval agrees with the p-value: above 0.05, it holds "no effect".
    assert big["p_value"] > 0.05 and big["ci_low"] < 1 < big["ci_high"]
    t_crit = sps.t.ppf(1 - ALPHA / 2, df)
    assert big["ci_low"] < math.exp(fit.params[1] - t_crit * fit.bse[1])
    # The whole attribute's test counts the levels' accounts as the level test does (Kish), so
    # a two-level attribute is not significant as a whole where its level is not.
    whole = result.tables["predictors"].set_index("predictor").loc["segment"]
    assert whole["p_value"] == pytest.approx(p_t, rel=1e-8)


def test_a_continuous_level_that_a_few_groups_hold_is_not_tested():
    # ARR, one row per customer; 60 customers in three groups of linked accounts (one parent's
    # subsidiaries each), all in one industry and all paying more. Rows stay rows for the
    # medians, but the industry weighs like three customers, not sixty.
    rng = np.random.default_rng(3)
    n = 400
    data = pd.DataFrame(
        {
            "group": [f"a{i}" for i in range(n)],
            "industry": rng.choice(["Retail", "Media", "Software"], n),
            "arr": rng.lognormal(10, 0.6, n),
        }
    )
    whales = pd.DataFrame(
        {
            "group": [f"g{i % 3}" for i in range(60)],
            "industry": "Aerospace",
            "arr": rng.lognormal(11, 0.3, 60),
        }
    )
    data = pd.concat([data, whales], ignore_index=True)
    result = test_predictors(data, "arr", categorical=["industry"], cluster="group")
    aerospace = level_row(result, "industry", "Aerospace")
    assert np.isnan(aerospace["p_value"]) and "weigh like 3.0" in aerospace["note"]
    retail = level_row(result, "industry", "Retail")
    plain = test_predictors(data, "arr", categorical=["industry"])
    assert retail["p_value"] == pytest.approx(
        level_row(plain, "industry", "Retail")["p_value"], rel=1e-12
    )
    assert any("linked into groups" in c for c in result.caveats)


def test_a_confirmation_too_small_to_tell_is_not_called_a_failure_to_replicate():
    discovery_data = make_accounts(30, n=800, fintech_log_odds=1.0, size_slope=0.5)
    discovery = test_predictors(
        discovery_data, "churned", categorical=["industry", "region"], numeric=["employees"]
    )
    tiny = make_accounts(34, n=40, fintech_log_odds=0.3, size_slope=0.5)
    confirmed = replicate(discovery, tiny)
    fintech = confirmed.summary.set_index(["predictor", "level"]).loc[("industry", "FinTech")]
    assert fintech["same_direction"] and not fintech["replicated"]
    assert fintech["underpowered_confirm"]
    assert fintech["status"].endswith(TOO_SMALL_TO_TELL)
    said = [f for f in confirmed.findings if "industry = FinTech" in f]
    assert said and said[0].startswith("Not confirmed, too little data to tell: industry = FinTech")
    assert not any(
        f.startswith("Did not replicate: industry = FinTech") for f in confirmed.findings
    )
