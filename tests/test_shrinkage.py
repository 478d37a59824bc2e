"""Empirical-Bayes (beta-binomial) shrinkage of small groups' rates, and where the kit shows it."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest
from scipy import stats as sps

from icp_research.analyses import deals
from icp_research.methods.segments import SEGMENT_COLUMNS, segment_metrics
from icp_research.methods.stats import shrink_rates

from .studies import deal_tables, make_study


def _log_likelihood(k, n, mean, weight):
    return sps.betabinom.logpmf(k, n, mean * weight, (1 - mean) * weight).sum()


def test_shrunk_rates_equal_the_posterior_means_of_the_maximum_likelihood_prior():
    # Six groups: rates from 10% to 80%, sizes from 5 to 120.
    k = np.array([1.0, 12.0, 30.0, 4.0, 60.0, 4.0])
    n = np.array([10.0, 40.0, 60.0, 5.0, 120.0, 20.0])
    out = shrink_rates(k, n)
    a, b = out["a"], out["b"]
    assert out["caveat"] == ""
    assert out["prior_mean"] == pytest.approx(a / (a + b))
    assert out["prior_weight"] == pytest.approx(a + b)
    # Posterior means, by hand: (k + a) / (n + a + b).
    assert out["rate_shrunk"] == pytest.approx((k + a) / (n + a + b))
    # The prior maximises the beta-binomial likelihood: no point of a fine grid does better.
    best = _log_likelihood(k, n, out["prior_mean"], out["prior_weight"])
    means = np.linspace(0.2, 0.7, 201)[:, None]
    weights = np.exp(np.linspace(np.log(0.5), np.log(200), 301))[None, :]
    grid = sps.betabinom.logpmf(
        k[:, None, None], n[:, None, None], means * weights, (1 - means) * weights
    ).sum(axis=0)
    assert best >= grid.max() - 1e-6
    i, j = np.unravel_index(grid.argmax(), grid.shape)
    assert out["prior_mean"] == pytest.approx(means[i, 0], abs=0.005)
    assert out["prior_weight"] == pytest.approx(weights[0, j], rel=0.05)


def test_small_groups_move_toward_the_pooled_rate_more_than_large_ones():
    # The same raw rate (90%) in a group of 10 and a group of 200, among groups near 40%.
    k = np.array([9.0, 180.0, 20.0, 40.0, 16.0, 45.0])
    n = np.array([10.0, 200.0, 50.0, 100.0, 40.0, 110.0])
    out = shrink_rates(k, n)
    raw = k / n
    moved = np.abs(out["rate_shrunk"] - raw)
    assert moved[0] > 5 * moved[1]
    # Every rate moves toward the prior mean, never past it.
    centre = out["prior_mean"]
    assert np.all(np.abs(out["rate_shrunk"] - centre) <= np.abs(raw - centre) + 1e-12)
    assert np.all(np.sign(out["rate_shrunk"] - centre) == np.sign(raw - centre))


def test_shrunk_rates_are_closer_to_the_truth_for_small_groups():
    rng = np.random.default_rng(20261205)
    raw_error, shrunk_error = [], []
    for _ in range(50):
        truth = rng.beta(6, 9, 30)
        n = rng.integers(3, 15, 30).astype(float)
        k = rng.binomial(n.astype(int), truth).astype(float)
        out = shrink_rates(k, n)
        raw_error.append(np.mean((k / n - truth) ** 2))
        shrunk_error.append(np.mean((out["rate_shrunk"] - truth) ** 2))
    assert np.mean(shrunk_error) < 0.7 * np.mean(raw_error)


def test_degenerate_groups_are_not_shrunk_and_say_why():
    one = shrink_rates([3.0], [4.0])
    assert one["rate_shrunk"] == pytest.approx([0.75]) and "one group" in one["caveat"]
    zeros = shrink_rates([0.0, 0.0, 0.0], [3.0, 10.0, 1.0])
    assert (zeros["rate_shrunk"] == 0).all() and "0%" in zeros["caveat"]
    ones = shrink_rates([3.0, 10.0], [3.0, 10.0])
    assert (ones["rate_shrunk"] == 1).all() and "100%" in ones["caveat"]
    # Groups with no trials stay NaN and do not count.
    empty = shrink_rates([1.0, 0.0, 5.0], [4.0, 0.0, 9.0])
    assert np.isnan(empty["rate_shrunk"][1]) and np.isfinite(empty["rate_shrunk"][[0, 2]]).all()
    # No spread beyond chance: the prior is capped at the data's weight, rates pooled.
    same = shrink_rates([10.0, 10.0, 10.0], [100.0, 100.0, 100.0])
    assert same["rate_shrunk"] == pytest.approx([0.1, 0.1, 0.1])
    assert same["prior_weight"] == pytest.approx(300) and "chance" in same["caveat"]


def test_win_rate_tables_carry_shrunk_rates():
    tables = deal_tables(np.random.default_rng(3))
    study = make_study(tables, categorical=["segment", "color"])
    result = deals.lost_deal_analysis(study)
    table = result.tables["win_rate_by_attribute"]
    assert "rate_shrunk" in table.columns
    # The code form of each level, then the level in words for people ("with no CRM").
    assert list(table.columns) == [*deals.RATE_COLUMNS, "words"]
    for _, part in table.groupby("attribute"):
        expected = shrink_rates(part["events"], part["deals"])["rate_shrunk"]
        assert part["rate_shrunk"].to_numpy() == pytest.approx(expected)
    view = deals.rate_view(table, ["segment"])
    assert "Shrunk" in view.columns


def test_segments_csv_carries_shrunk_proportions():
    ids = [f"a{i}" for i in range(9)]
    facts = pd.DataFrame(
        {
            "account_id": ids,
            "is_customer": True,
            "clv": 100.0,
            "churned": pd.array([False] * 9, dtype="boolean"),
            "retained": pd.array([True] * 9, dtype="boolean"),
            "tenure_days": 365.25,
            "arr_current": 100.0,
            "arr_12m_ago": 100.0,
            "best_customer": pd.array([True, True, False] * 3, dtype="boolean"),
        }
    )
    size = pd.Series(["big"] * 8 + ["tiny"], index=facts.index)
    # Eight "big" accounts win 5 of 13 deals each (40 of 104); the "tiny" one wins its only 2.
    rows = [(ids[i], "won" if j < 5 else "lost") for i in range(8) for j in range(13)]
    rows += [(ids[8], "won"), (ids[8], "won")]
    frame = pd.DataFrame(rows, columns=["account_id", "stage"])
    frame["is_new_business"] = True
    frame["is_closed"] = True
    frame["amount"] = 100.0
    frame["cycle_days"] = 30.0
    table = segment_metrics(facts, frame, size, segmentation="rule")
    assert list(table.columns) == SEGMENT_COLUMNS[:-1]
    table = table.set_index("segment")
    for metric, events, trials in [("win_rate", "won_deals", "closed_deals")]:
        k = table.loc[["big", "tiny"], events].to_numpy(float)
        n = table.loc[["big", "tiny"], trials].to_numpy(float)
        expected = shrink_rates(k, n)["rate_shrunk"]
        assert table.loc[["big", "tiny"], f"{metric}_shrunk"].to_numpy() == pytest.approx(expected)
    assert table.loc["tiny", "win_rate"] == 1.0
    assert table.loc["tiny", "win_rate_shrunk"] < 1.0
    assert "best_customer_share_shrunk" in table.columns
    # The all-accounts row keeps its raw rate.
    assert table.loc["All accounts", "win_rate_shrunk"] == table.loc["All accounts", "win_rate"]
