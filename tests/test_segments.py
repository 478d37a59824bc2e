"""Segments: metrics checked by hand on a small table; clustering, silhouettes, profiles."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest
from scipy import stats as sps

from icp_research.methods.segments import (
    SEGMENT_COLUMNS,
    cluster_features,
    describe_segment,
    kmeans,
    segment_accounts,
    segment_metrics,
    segment_profiles,
    silhouette,
    ward_clusters,
)
from icp_research.methods.stats import proportion_ci, two_proportion_pvalue

Z = 1.959963984540054


@pytest.fixture
def facts():
    return pd.DataFrame(
        {
            "account_id": ["a1", "a2", "a3", "a4", "a5", "a6"],
            "is_customer": [True, True, False, True, True, True],
            "clv": [100.0, 300.0, np.nan, 50.0, 70.0, 90.0],
            "churned": pd.array([True, False, pd.NA, False, False, True], dtype="boolean"),
            "retained": pd.array([False, True, pd.NA, True, True, False], dtype="boolean"),
            "tenure_days": [365.25, 365.25, np.nan, 730.5, 365.25, 182.625],
            "arr_current": [0.0, 150.0, 0.0, 40.0, 60.0, 0.0],
            "arr_12m_ago": [100.0, 100.0, 0.0, 40.0, 0.0, 30.0],
            "best_customer": pd.array([False, True, pd.NA, False, True, False], dtype="boolean"),
            "size": ["S1", "S1", "S1", "S2", "S2", "S2"],
        }
    )


@pytest.fixture
def deals():
    rows = [
        # account, new business, stage, amount, cycle days
        ("a1", True, "won", 1000.0, 30.0),
        ("a1", True, "lost", np.nan, 80.0),
        ("a2", True, "won", 3000.0, 50.0),
        ("a3", True, "lost", np.nan, 20.0),
        ("a3", True, "lost", np.nan, 25.0),
        ("a3", True, "open", np.nan, 10.0),
        ("a3", False, "won", 9999.0, 5.0),  # expansion: never in win rate or deal size
        ("a4", True, "won", 500.0, 60.0),
        ("a5", True, "won", 700.0, 90.0),
        ("a6", True, "won", 900.0, 120.0),
        ("a6", True, "lost", np.nan, 40.0),
    ]
    frame = pd.DataFrame(
        rows, columns=["account_id", "is_new_business", "stage", "amount", "cycle_days"]
    )
    frame["is_closed"] = frame["stage"].isin(["won", "lost"])
    frame["won"] = (frame["stage"] == "won").astype("boolean").where(frame["is_closed"], pd.NA)
    return frame


def test_segment_metrics_equal_hand_computed_values(facts, deals):
    table = segment_metrics(facts, deals, facts["size"], segmentation="rule")
    assert list(table.columns) == SEGMENT_COLUMNS[:-1]
    assert list(table["segment"]) == ["All accounts", "S1", "S2"]
    s1 = table.set_index("segment").loc["S1"]
    assert (s1["accounts"], s1["customers"]) == (3, 2)
    # CLV over the two customers: mean 200, t interval with 1 degree of freedom.
    # The t interval (200 +- 1,271) would reach below zero: amounts get the bootstrap's,
    # within the two values seen.
    half = sps.t.ppf(0.975, 1) * np.std([100, 300], ddof=1) / np.sqrt(2)
    assert 200 - half < 0
    assert s1["clv"] == 200 and s1["clv_median"] == 200
    assert (s1["clv_ci_low"], s1["clv_ci_high"]) == pytest.approx((100.0, 300.0))
    # Churn: 1 churned customer over 2 customer-years, exact Poisson interval.
    assert s1["churn_rate"] == pytest.approx(0.5)
    assert s1["churn_rate_ci_low"] == pytest.approx(sps.chi2.ppf(0.025, 2) / 2 / 2)
    assert s1["churn_rate_ci_high"] == pytest.approx(sps.chi2.ppf(0.975, 4) / 2 / 2)
    assert (s1["churned_customers"], s1["customer_years"]) == (1, pytest.approx(2.0))
    # Win rate: 2 won of 5 closed new-business deals; interval clustered over 3 accounts.
    assert s1["win_rate"] == pytest.approx(0.4)
    assert (s1["closed_deals"], s1["deal_accounts"], s1["won_deals"]) == (5, 3, 2)
    residuals = np.array([1 - 0.4 * 2, 1 - 0.4 * 1, 0 - 0.4 * 2])
    se = np.sqrt(3 / 2 * np.sum(residuals**2)) / 5
    # 0.4 - Z * se is below 0: Wilson's on the effective sample size instead (never from 0%
    # with 2 wins seen).
    assert 0.4 - Z * se < 0
    n_eff = 0.4 * 0.6 / se**2
    low, high = proportion_ci(0.4 * n_eff, n_eff)
    assert (s1["win_rate_ci_low"], s1["win_rate_ci_high"]) == pytest.approx(
        (float(low), float(high))
    )
    assert 0 < s1["win_rate_ci_low"] < 0.4 < s1["win_rate_ci_high"] < 1
    # Average won deal: (1000 + 3000) / 2, interval clustered by account.
    assert s1["avg_deal_size"] == pytest.approx(2000)
    se = np.sqrt(2 / 1 * (1000**2 + 1000**2)) / 2
    assert (s1["avg_deal_size_ci_low"], s1["avg_deal_size_ci_high"]) == pytest.approx(
        (2000 - Z * se, 2000 + Z * se)
    )
    # Sales cycle: median of the won deals' 30 and 50 days; two values give no interval.
    assert s1["sales_cycle_days"] == 40 and np.isnan(s1["sales_cycle_days_ci_low"])
    # NRR over customers paying a year ago: (0 + 150) / (100 + 100).
    assert s1["nrr"] == pytest.approx(0.75) and s1["nrr_customers"] == 2
    assert s1["best_customer_share"] == pytest.approx(0.5)
    assert s1["arr"] == 150  # current ARR of retained customers


def test_segment_metrics_of_the_second_segment_and_all_accounts(facts, deals):
    table = segment_metrics(facts, deals, facts["size"]).set_index("segment")
    s2 = table.loc["S2"]
    assert s2["churn_rate"] == pytest.approx(1 / 3.5)  # 1 churn over 2 + 1 + 0.5 years
    assert s2["win_rate"] == pytest.approx(3 / 4)
    assert s2["avg_deal_size"] == pytest.approx(700)
    assert s2["sales_cycle_days"] == 90
    assert s2["nrr"] == pytest.approx(40 / 70)  # a5 was not paying a year ago
    everyone = table.loc["All accounts"]
    assert everyone["accounts"] == 6 and everyone["customers"] == 5
    assert everyone["win_rate"] == pytest.approx(5 / 9)
    assert everyone["avg_deal_size"] == pytest.approx((1000 + 3000 + 500 + 700 + 900) / 5)
    assert everyone["churn_rate"] == pytest.approx(2 / 5.5)


def test_segment_metrics_without_deals_or_subscriptions(facts):
    no_churn = facts.assign(churned=pd.array([pd.NA] * 6, dtype="boolean"), arr_12m_ago=0.0)
    table = segment_metrics(no_churn, None, facts["size"])
    assert table["win_rate"].isna().all() and table["churn_rate"].isna().all()
    assert table["nrr"].isna().all() and (table["nrr_customers"] == 0).all()


def test_kmeans_recovers_separated_groups_and_is_deterministic(rng):
    centres = np.array([[0.0, 0.0], [8.0, 0.0], [0.0, 8.0]])
    truth = rng.integers(0, 3, 600)
    points = centres[truth] + rng.normal(0, 0.5, (600, 2))
    labels, found, inertia = kmeans(points, 3, seed=1)
    # The same partition as the truth, up to the names of the clusters.
    assert pd.crosstab(labels, truth).gt(0).sum(axis=1).eq(1).all()
    assert inertia == pytest.approx(((points - found[labels]) ** 2).sum())
    again, _, _ = kmeans(points, 3, seed=1)
    assert np.array_equal(labels, again)
    refined, _, _ = kmeans(points, 3, init=found)
    assert np.array_equal(refined, labels)
    with pytest.raises(ValueError):
        kmeans(points[:2], 3)


def test_silhouette_by_hand_and_against_scikit_learn(rng):
    points = np.array([[0.0], [1.0], [10.0], [11.0]])
    expected = ((10.5 - 1) / 10.5 + (9.5 - 1) / 9.5) / 2
    assert silhouette(points, [0, 0, 1, 1]) == pytest.approx(expected)
    assert np.isnan(silhouette(points, [0, 0, 0, 0]))
    # A point alone in its cluster scores 0.
    # 10 and 11: a = 1; b = 9 (to the point 1) and 10.
    assert silhouette(points, [0, 1, 2, 2]) == pytest.approx((0 + 0 + 8 / 9 + 9 / 10) / 4)
    metrics = pytest.importorskip("sklearn.metrics")
    data = rng.normal(size=(300, 4))
    labels = rng.integers(0, 4, 300)
    assert silhouette(data, labels) == pytest.approx(metrics.silhouette_score(data, labels))


def test_ward_finds_the_same_groups_and_cuts_at_every_k(rng):
    centres = np.array([[0.0, 0.0], [6.0, 6.0]])
    truth = rng.integers(0, 2, 200)
    points = centres[truth] + rng.normal(0, 0.4, (200, 2))
    tree, cuts = ward_clusters(points, [2, 3, 4])
    assert tree.shape == (199, 4)
    assert {k: len(np.unique(labels)) for k, labels in cuts.items()} == {2: 2, 3: 3, 4: 4}
    assert pd.crosstab(cuts[2], truth).gt(0).sum(axis=1).eq(1).all()


def test_cluster_features_log_skewed_money_impute_and_one_hot():
    frame = pd.DataFrame(
        {
            "employees": [10.0, 20.0, 30.0, 40.0, 50.0, 100000.0, np.nan],
            "founded_year": [1990, 1995, 2000, 2005, 2010, 2015, 2020],
            "industry": ["SaaS", "SaaS", "Retail", None, "Retail", "SaaS", "SaaS"],
        }
    )
    matrix, names, description = cluster_features(
        frame, ["industry"], ["employees", "founded_year"], min_level_count=1
    )
    assert names == [
        "employees",
        "founded_year",
        "industry = (missing)",
        "industry = Retail",
        "industry = SaaS",
    ]
    logged = np.log1p(frame["employees"].to_numpy())
    logged[6] = np.nanmedian(logged)
    assert matrix[:, 0] == pytest.approx((logged - logged.mean()) / logged.std())
    assert matrix[:, :2].mean(axis=0) == pytest.approx([0, 0], abs=1e-12)
    assert set(np.unique(matrix[:, 2:])) == {0.0, 1.0}
    assert (matrix[:, 2:].sum(axis=1) == 1).all()
    transforms = description.set_index("attribute")["transform"]
    assert (
        transforms["employees"].startswith("log(1 + x)") and "1 missing" in transforms["employees"]
    )
    assert transforms["founded_year"] == "standardised"


def test_profiles_and_description_of_a_segment():
    frame = pd.DataFrame(
        {"industry": (["SaaS"] * 6 + ["Retail"] * 6) * 5, "seg": (["A"] * 4 + ["B"] * 8) * 5}
    )
    profiles = segment_profiles(
        frame, {"kmeans": frame["seg"]}, categorical=["industry"], min_level_count=1
    )
    a = profiles[profiles["segment"] == "A"].set_index("level")
    assert a.loc["SaaS", "share_segment"] == 1.0 and a.loc["SaaS", "share_all"] == 0.5
    assert a.loc["SaaS", "lift"] == 2.0 and a.loc["SaaS", "n"] == 20
    # 20 of 20 in the segment against 10 of 40 elsewhere.
    assert a.loc["SaaS", "p_value"] == pytest.approx(
        float(two_proportion_pvalue(20, 20, 10, 40)[0])
    )
    assert describe_segment(profiles[profiles["segment"] == "A"]) == "industry SaaS (100% vs 50%)"
    b = profiles[profiles["segment"] == "B"]
    assert describe_segment(b) == "industry Retail (75% vs 50%)"
    assert describe_segment(b, min_lift=2) == ""


def test_a_segment_profile_names_only_levels_beyond_chance():
    """A rule-based segment of 38 customers read "What sets it apart: ... referral source Messe
    (34% vs 26%)", a noise lead source; 13 of 38 against 26% elsewhere is what chance gives."""
    source = ["Messe"] * 13 + ["Web"] * 25 + ["Messe"] * 50 + ["Web"] * 150
    frame = pd.DataFrame({"source": source, "seg": ["Mid"] * 38 + ["Small"] * 200})
    profiles = segment_profiles(
        frame, {"rule": frame["seg"]}, categorical=["source"], min_level_count=1
    )
    mid = profiles[profiles["segment"] == "Mid"]
    row = mid.set_index("level").loc["Messe"]
    assert row["lift"] >= 1.25 and row["share_segment"] >= 0.2 and row["q_value"] > 0.05
    assert describe_segment(mid) == ""
    assert describe_segment(mid, alpha=1.01) == "source Messe (34% vs 26%)"


def test_the_order_of_the_rows_does_not_change_the_clusters():
    """The demo with every table's rows shuffled: the same accounts in the same clusters, the
    same silhouettes (k-means starts and the seeded samples pick accounts, not row positions)."""
    import icp_research as icp

    from .studies import shuffled_rows

    study = icp.open_study()
    results = [segment_accounts(s) for s in (study, shuffled_rows(study))]
    first, second = (r.tables["assignments"].set_index("account_id").sort_index() for r in results)
    pd.testing.assert_frame_equal(first, second)
    assert set(first["kmeans"]) >= {"Cluster 1", "Cluster 2"}
    pd.testing.assert_frame_equal(
        results[0].tables["silhouette"], results[1].tables["silhouette"], rtol=1e-9
    )
    pd.testing.assert_frame_equal(results[0].summary, results[1].summary, rtol=1e-9)


def test_size_segments_over_bands_say_where_they_begin_and_are_not_described_by_employees():
    """Employee counts that are bands (1, 11, 51, 201, 1,000) move the size segments' starts
    to band starts (2,000 -> 1,000): said in a caveat, not silently. And a size segment is not
    "profiled" by its own employees ("Enterprise: employees >= 201 (100% vs 25%)" described
    the 1,000+ segment by the profiles' bins)."""
    from .studies import make_study

    rng = np.random.default_rng(5)
    n = 400
    bands = rng.choice([1, 11, 51, 201, 1000], n, p=[0.3, 0.3, 0.2, 0.12, 0.08])
    accounts = pd.DataFrame(
        {
            "account_id": [f"A{i:03d}" for i in range(n)],
            "employees": bands.astype(float),
            "industry": np.where(bands >= 1000, "Banking", rng.choice(["Retail", "Media"], n)),
        }
    )
    study = make_study({"accounts": accounts}, categorical=["industry"], numeric=["employees"])
    result = segment_accounts(study)
    (caveat,) = [c for c in result.caveats if "size bands" in c]
    assert caveat.startswith(
        "The employee counts take only a few values, as size bands do, so the size segments "
        "begin at the values nearest the configured 200 and 2,000 (no segment splits a band): "
        "201 and 1,000."
    )
    rule = result.summary[result.summary["segmentation"] == "rule"].set_index("segment")
    assert rule.loc["Enterprise", "profile"].startswith("industry Banking (100% vs ")
    assert "employees" not in " ".join(rule["profile"])


def test_a_segment_of_a_few_accounts_is_no_win_rate_finding():
    from icp_research.methods.segments import MIN_CLUSTERS, _findings

    def row(segment, accounts, rate=0.6, low=0.3, high=0.9):
        return {
            "segmentation": "all" if segment == "All accounts" else "rule",
            "segment": segment,
            "win_rate": rate,
            "win_rate_ci_low": low,
            "win_rate_ci_high": high,
            "win_rate_shrunk": rate,
            "deal_accounts": accounts,
            "churn_rate": np.nan,
            "churn_rate_ci_low": np.nan,
            "churn_rate_ci_high": np.nan,
            "clv": np.nan,
            "profile": "",
        }

    base = row("All accounts", 900, 0.21, 0.19, 0.23)
    few = pd.DataFrame([base, row("Enterprise", MIN_CLUSTERS - 1)])
    findings, found = _findings(few, {})
    assert not found and findings[0].startswith("No segment's win rate")
    enough = pd.DataFrame([base, row("Enterprise", MIN_CLUSTERS)])
    findings, found = _findings(enough, {})
    assert found and findings[0].startswith("The Enterprise segment wins 60%")


def test_the_base_row_counts_only_the_deals_of_accounts_the_segments_divide(facts, deals):
    # A prospect the accounts table lacks (a customer list beside a pipeline) lost two deals:
    # the segments cannot hold them, so neither does the base they are compared with.
    prospect = deals.iloc[:2].copy()
    prospect["account_id"] = "not-an-account"
    prospect["stage"] = "lost"
    prospect["won"] = False
    with_prospect = pd.concat([deals, prospect], ignore_index=True)
    table = segment_metrics(facts, with_prospect, facts["size"]).set_index("segment")
    everyone = table.loc["All accounts"]
    assert everyone["win_rate"] == pytest.approx(5 / 9)
    assert everyone["closed_deals"] == 9


def test_the_heatmap_colours_only_differences_beyond_a_segments_interval():
    """A first user's null export: a k-means cluster at 40% against 23% on a few dozen deals
    was coloured "better", while the same report found nothing that set it apart."""
    from types import SimpleNamespace

    from icp_research.methods.segments import heatmap_frame

    summary = pd.DataFrame(
        {
            "segmentation": ["all", "kmeans", "kmeans"],
            "segment": ["all", "Cluster 1", "Cluster 2"],
            "win_rate": [0.23, 0.40, 0.45],
            "win_rate_ci_low": [0.20, 0.18, 0.38],
            "win_rate_ci_high": [0.26, 0.66, 0.52],
        }
    )
    colours, labels = heatmap_frame(SimpleNamespace(summary=summary))
    column = colours.columns[0]
    assert colours[column].tolist()[:2] == [0.0, 0.0]  # all accounts; within its interval
    assert colours[column].iloc[2] == pytest.approx(np.log(0.45 / 0.23))
    assert labels[column].tolist() == ["23%", "40%", "45%"]
