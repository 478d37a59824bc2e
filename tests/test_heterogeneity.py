"""Heterogeneity of a rule's effect across size segments, on the odds-ratio scale.

A constant odds ratio in segments with different base rates gives different risk ratios
(a segment winning 60% of its deals cannot show a risk ratio above 1.7); Cochran's Q on log
risk ratios called that "works differently by company size". The interaction test in a
clustered logistic model does not.
"""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

from icp_research.analyses import blueprint as bp
from icp_research.analyses.antipatterns import Condition
from icp_research.analyses.blueprint.samples import outcome_samples
from icp_research.analyses.blueprint.segments import segment_icps
from icp_research.methods.heterogeneity import odds_ratio_heterogeneity

from .studies import AS_OF, make_study

GOOD = ["Alpha", "Beta"]
# Employee counts inside the default size segments: SMB < 200 <= Mid-market < 2000 <= Enterprise.
SIZES = {"SMB": (20, 150), "Mid-market": (300, 1500), "Enterprise": (3000, 20000)}
BASE = {"SMB": 0.10, "Mid-market": 0.30, "Enterprise": 0.60}


def _tables(seed: int, odds_ratios: dict, n: int = 1800) -> dict:
    """Accounts spread evenly over the three segments, two to three closed deals each; deals
    at Alpha / Beta win with the segment's odds ratio; an account-level random effect."""
    rng = np.random.default_rng(seed)
    segment = np.array(list(SIZES))[np.arange(n) % 3]
    employees = np.array([rng.integers(*SIZES[s]) for s in segment], dtype=float)
    industry = rng.choice([*GOOD, "Charlie", "Delta", "Echo"], n)
    good = np.isin(industry, GOOD)
    base = np.array([BASE[s] for s in segment])
    ratio = np.array([odds_ratios[s] for s in segment])
    log_odds = np.log(base / (1 - base)) + good * np.log(ratio) + rng.normal(0, 0.4, n)
    created = AS_OF - pd.to_timedelta(rng.integers(200, 760, n), unit="D")
    ids = [f"H{i:04d}" for i in range(n)]
    rows = []
    for i, account in enumerate(ids):
        for j in range(int(rng.integers(2, 4))):
            opened = created[i] + pd.Timedelta(days=int(rng.integers(0, 120)))
            won = rng.random() < 1 / (1 + np.exp(-log_odds[i]))
            rows.append(
                {
                    "opportunity_id": f"{account}-{j}",
                    "account_id": account,
                    "stage": "won" if won else "lost",
                    "created_at": opened,
                    "closed_at": opened + pd.Timedelta(days=int(rng.integers(15, 60))),
                    "amount": 10_000.0,
                    "loss_reason": None if won else "Price",
                    "type": "new",
                }
            )
    accounts = pd.DataFrame(
        {"account_id": ids, "industry": industry, "employees": employees, "created_at": created}
    )
    deals = pd.DataFrame(rows)
    deals["closed_at"] = pd.to_datetime(deals["closed_at"])
    return {"accounts": accounts, "opportunities": deals}


def _segments(odds_ratios: dict, seed: int = 5) -> dict:
    study = make_study(_tables(seed, odds_ratios), categorical=["industry"], numeric=["employees"])
    samples = outcome_samples(study, ["industry", "employees"], 2)
    rule = bp.Rule("include", [Condition("industry", "in", GOOD)], "industry", "filter")
    return segment_icps(study, [rule], samples["won"], 0.05)


def _deal_rows(odds_ratios: dict, seed: int = 5) -> pd.DataFrame:
    tables = _tables(seed, odds_ratios)
    deals = tables["opportunities"].merge(tables["accounts"], on="account_id")
    deals["y"] = (deals["stage"] == "won").astype(float)
    deals["segment"] = pd.cut(
        deals["employees"], [0, 200, 2000, np.inf], right=False, labels=list(SIZES)
    ).astype(str)
    return deals


def test_constant_odds_ratio_across_base_rates_is_not_heterogeneous():
    deals = _deal_rows({"SMB": 3.0, "Mid-market": 3.0, "Enterprise": 3.0})
    test = odds_ratio_heterogeneity(
        deals["y"], deals["industry"].isin(GOOD), deals["segment"], deals["account_id"]
    )
    assert test["test"] == "logit_interaction_wald_f_cluster" and test["df"] == 2
    assert test["p_value"] > 0.05
    for ratio, low, high in test["odds_ratios"].values():
        assert low < 3.0 < high and 2.0 < ratio < 4.5
    # Through the blueprint: one ICP for every segment (Cochran's Q on log risk ratios said
    # "works differently by company size" here, q < 0.001).
    segments = _segments({"SMB": 3.0, "Mid-market": 3.0, "Enterprise": 3.0})
    assert not segments["drawn"], segments["verdict"]
    assert segments["verdict"].startswith("One ICP fits every size segment")
    assert "odds ratios" in segments["verdict"]


def test_odds_ratios_one_three_nine_are_heterogeneous():
    odds_ratios = {"SMB": 1.0, "Mid-market": 3.0, "Enterprise": 9.0}
    deals = _deal_rows(odds_ratios)
    test = odds_ratio_heterogeneity(
        deals["y"], deals["industry"].isin(GOOD), deals["segment"], deals["account_id"]
    )
    assert test["p_value"] < 0.001
    assert test["odds_ratios"]["SMB"][1] < 1.0 < test["odds_ratios"]["SMB"][2]
    assert test["odds_ratios"]["Enterprise"][1] > 3.0
    segments = _segments(odds_ratios)
    assert segments["drawn"], segments["verdict"]
    assert "work differently by company size" in segments["verdict"]


def test_a_segment_without_a_finite_odds_ratio_is_left_out():
    exposed = np.tile([True] * 4 + [False] * 4, 45)
    pattern = {"a": [1, 1, 0, 0, 1, 1, 0, 0], "b": [1, 1, 1, 0, 1, 0, 0, 0], "c": [1] * 8}
    y = np.concatenate([np.tile(pattern[g], 15) for g in "abc"]).astype(float)
    groups = np.repeat(["a", "b", "c"], 120)
    test = odds_ratio_heterogeneity(y, exposed, groups)
    assert test["test"] == "logit_interaction_wald_chi2" and test["df"] == 1
    assert test["groups"] == ["a", "b"] and list(test["not_tested"]) == ["c"]
    assert test["odds_ratios"]["a"][0] == pytest.approx(1.0)
    assert test["odds_ratios"]["b"][0] == pytest.approx(9.0)
    assert test["p_value"] < 0.01


def test_the_clustered_fit_per_account_equals_the_fit_over_every_deal():
    """Deals of an account share its segment and rule: the test is fitted on one row per
    account and outcome, weighted; statistic, p-value and odds-ratio intervals are those of
    statsmodels' clustered fit over every deal."""
    import scipy.stats as sps
    import statsmodels.api as sm

    deals = _deal_rows({"SMB": 1.0, "Mid-market": 3.0, "Enterprise": 9.0})
    exposed = deals["industry"].isin(GOOD).to_numpy()
    result = odds_ratio_heterogeneity(
        deals["y"], exposed, deals["segment"], deals["account_id"], alpha=0.05
    )
    # The same model over every deal, by hand.
    g, y, x = deals["segment"].to_numpy(), deals["y"].to_numpy(), exposed.astype(float)
    reference = deals["segment"].value_counts().index[0]
    others = [s for s in pd.unique(g) if s != reference]
    dummies = np.column_stack([(g == s).astype(float) for s in others])
    design = np.column_stack([np.ones(y.size), dummies, x, dummies * x[:, None]])
    codes = pd.factorize(deals["account_id"])[0]
    fit = sm.GLM(y, design, family=sm.families.Binomial()).fit(
        cov_type="cluster", cov_kwds={"groups": codes}, use_t=True
    )
    k = len(others)
    restriction = np.zeros((k, design.shape[1]))
    restriction[:, k + 2 :] = np.eye(k)
    wald = fit.wald_test(restriction, use_f=True, scalar=True)
    assert result["statistic"] == pytest.approx(float(wald.statistic), rel=1e-9)
    assert result["p_value"] == pytest.approx(float(wald.pvalue), rel=1e-9, abs=1e-15)
    cov = np.asarray(fit.cov_params())
    crit = float(sps.t.ppf(0.975, np.unique(codes).size - 1))
    contrast = np.zeros(design.shape[1])
    contrast[k + 1] = 1.0
    beta = float(contrast @ fit.params)
    se = float(np.sqrt(contrast @ cov @ contrast))
    ratio, low, high = result["odds_ratios"][reference]
    assert ratio == pytest.approx(np.exp(beta), rel=1e-9)
    assert (low, high) == pytest.approx(
        (np.exp(beta - crit * se), np.exp(beta + crit * se)), rel=1e-9
    )
