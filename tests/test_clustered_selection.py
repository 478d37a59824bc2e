"""Deals cluster by account: the scorecard's attribute selection and the range scan count
accounts, not deals, as the independent units."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest
from scipy import stats as sps

from icp_research.analyses import blueprint as bp
from icp_research.analyses.blueprint.conditions import best_range
from icp_research.errors import NotEnoughData
from icp_research.methods.association import clustered_association_test
from icp_research.methods.stats import clustered_rate_contrast, clustered_rate_test
from icp_research.scoring.scorecard import fit_scorecard

NOISE = ["color", "plan"]


def _clustered_deals(seed: int, n_accounts: int = 150) -> pd.DataFrame:
    """Deals of accounts with very different win rates (account effect SD 2 on the log-odds
    scale, six deals per account on average, some with many more); no attribute matters."""
    rng = np.random.default_rng(seed)
    n_deals = rng.geometric(1 / 6, n_accounts)
    account = np.repeat(np.arange(n_accounts), n_deals)
    effect = rng.normal(-0.5, 2.0, n_accounts)
    won = rng.random(account.size) < 1 / (1 + np.exp(-effect[account]))
    return pd.DataFrame(
        {
            "account_id": account,
            "won": won.astype(int),
            "color": rng.choice(["red", "green", "blue"], n_accounts)[account],
            "plan": rng.choice(["a", "b", "c", "d"], n_accounts)[account],
            "size": np.exp(rng.normal(5, 1, n_accounts))[account],
        }
    )


def _keeps_noise(deals: pd.DataFrame, cluster) -> bool:
    try:
        card = fit_scorecard(deals, "won", categorical=NOISE, numeric=["size"], cluster=cluster)
    except NotEnoughData:
        return False
    return len(card.attributes) > 0


def test_selection_on_clustered_null_data_keeps_noise_about_as_often_as_alpha():
    seeds = range(100)
    deals = [_clustered_deals(seed) for seed in seeds]
    naive = np.mean([_keeps_noise(d, None) for d in deals])
    clustered = np.mean([_keeps_noise(d, "account_id") for d in deals])
    # Deals taken as independent: a noise attribute gets points in most datasets (0.88).
    assert naive > 0.5
    # Accounts as the units: about alpha (0.08 over these seeds).
    assert clustered <= 0.10


def test_clustered_selection_still_finds_a_real_account_level_effect():
    deals = _clustered_deals(3, n_accounts=600)
    rng = np.random.default_rng(4)
    tier = rng.choice(["gold", "rest"], 600, p=[0.3, 0.7])
    deals["tier"] = tier[deals["account_id"]]
    gold = deals["tier"] == "gold"
    deals.loc[gold, "won"] = (rng.random(gold.sum()) < 0.7).astype(int)
    card = fit_scorecard(
        deals, "won", categorical=["tier", *NOISE], numeric=["size"], cluster="account_id"
    )
    assert [a.name for a in card.attributes] == ["tier"]
    assert card.params["cluster"] == "account_id"


def test_clustered_association_test_reduces_to_pearson_for_one_row_per_account(rng):
    y = (rng.random(800) < 0.3).astype(float)
    codes = rng.choice(["a", "b", "c"], 800)
    y[codes == "a"] = (rng.random((codes == "a").sum()) < 0.4).astype(float)
    pearson = clustered_association_test(y, codes)
    robust = clustered_association_test(y, codes, np.arange(800))
    assert pearson["test"] == "pearson_chi2" and robust["test"] == "score_cluster_f"
    assert robust["df"] == pearson["df"] == 2
    # The robust score variance uses each bin's own residuals, not the pooled p(1 - p).
    assert robust["statistic"] == pytest.approx(pearson["statistic"], rel=0.05)
    # A bin where every row lost is no problem for the score test.
    y[codes == "c"] = 0
    assert np.isfinite(clustered_association_test(y, codes, np.arange(800) // 4)["p_value"])


def test_clustered_association_test_reads_ids_and_codes_alike(rng):
    """The fit score passes its accounts as numbers (coded once for every candidate): the test
    is the same as on the text ids, blanks left out either way; levels written as numbers or
    as text are one level when their text is the same (1 and "1")."""
    n = 3000
    ids = np.array([f"acct-{i}" for i in rng.integers(0, 400, n)], dtype=object)
    ids[:25] = None
    y = (rng.random(n) < 0.3).astype(float)
    y[25:40] = np.nan
    levels = rng.choice(np.array([1, "1", "b", "c", None], dtype=object), n)
    codes = pd.factorize(pd.Series(ids))[0].astype(float)
    codes[codes < 0] = np.nan
    by_ids = clustered_association_test(y, levels, ids)
    by_codes = clustered_association_test(y, levels, codes)
    assert by_ids == by_codes
    kept = ~np.isnan(y) & pd.notna(levels) & pd.notna(ids)
    assert by_ids["df"] == 2  # levels "1", "b", "c"
    assert by_ids["clusters"] == len(set(ids[kept])) > 300
    text = np.array([None if v is None else str(v) for v in levels], dtype=object)
    assert clustered_association_test(y, text, ids) == by_ids


def test_clustered_rate_contrast_is_the_clustered_rate_test_signed(rng):
    e1, t1 = rng.integers(0, 5, 40), rng.integers(5, 10, 40)
    e2, t2 = rng.integers(0, 3, 60), rng.integers(5, 10, 60)
    contrast = clustered_rate_contrast(e1, t1, e2, t2)
    assert contrast["difference"] > 0 and contrast["statistic"] > 0
    p_two_sided = 2 * sps.t.sf(abs(contrast["statistic"]), contrast["df"])
    assert p_two_sided == pytest.approx(clustered_rate_test(e1, t1, e2, t2))
    assert np.exp(contrast["log_p_greater"]) == pytest.approx(p_two_sided / 2)


def _whale_deals(seed: int):
    """600 accounts winning 35% of deals at 100-999 employees, 18% elsewhere, and three
    accounts at 5,000-8,000 employees with 200 deals each that win 90%."""
    rng = np.random.default_rng(seed)
    employees = np.exp(rng.normal(np.log(200), 1.3, 600))
    p_win = np.where((employees >= 100) & (employees < 1000), 0.35, 0.18)
    account = np.repeat(np.arange(600), rng.integers(2, 5, 600))
    whale = np.repeat(np.arange(600, 603), 200)
    x = np.r_[employees[account], rng.uniform(5000, 8000, 3)[whale - 600]]
    y = np.r_[rng.random(account.size) < p_win[account], rng.random(whale.size) < 0.9]
    return x, y.astype(float), np.r_[account, whale]


def test_range_scan_is_not_drawn_to_a_few_accounts_with_many_deals():
    edges = [20, 50, 100, 200, 500, 1000, 2000, 5000]
    for seed in range(3):
        x, y, accounts = _whale_deals(seed)
        # Deals as independent units: the three whales' range wins the scan.
        assert best_range(x, y, edges)[:2] == (5000, np.inf)
        lower, upper, _ = best_range(x, y, edges, clusters=accounts)
        # Accounts as units: the range starts at the many accounts' sweet spot.
        assert lower in (100, 200) and (lower, upper) != (5000, np.inf)


def test_range_scan_with_one_row_per_account_finds_the_sweet_spot(rng):
    x = np.exp(rng.normal(np.log(200), 1.3, 20_000))
    inside = (x >= 100) & (x < 1000)
    y = rng.random(x.size) < np.where(inside, 0.35, 0.18)
    edges = [20, 50, 100, 200, 500, 1000, 2000, 5000]
    lower, upper, t = best_range(x, y, edges, clusters=np.arange(x.size))
    assert (lower, upper) == (100, 1000) and t > 10


def test_demo_scorecard_and_ranges_still_find_the_planted_icp():
    import icp_research as icp

    result = bp.build_blueprint(icp.open_study(), backtest_quarters=1, n_boot=100)
    card = result.scorecard
    assert card.params["cluster"] == "account_id"
    assert {"employees", "industry", "crm"} <= {a.name for a in card.attributes}
    rules = {rule.attribute: rule.text for rule in result.include}
    assert rules["employees"] == "100 <= employees < 1,000"
    # The planted effects are the same at every size (constant odds ratios).
    assert not result.segments["drawn"], result.segments["verdict"]
