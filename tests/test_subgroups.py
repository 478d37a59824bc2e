import json
from itertools import combinations

import matplotlib

matplotlib.use("Agg")

import matplotlib.pyplot as plt  # noqa: E402
import numpy as np  # noqa: E402
import pandas as pd  # noqa: E402
import pytest  # noqa: E402
from scipy import stats as sps  # noqa: E402

from icp_research.errors import InputError  # noqa: E402
from icp_research.methods.binning import MISSING, cut_points  # noqa: E402
from icp_research.methods.stats import (  # noqa: E402
    adjust_pvalues,
    fisher_exact_pvalue,
    two_proportion_pvalue,
)
from icp_research.methods.subgroups import (  # noqa: E402
    NEAR_DUPLICATE,
    OVERLAP,
    SUMMARY_COLUMNS,
    SubgroupResult,
    find_subgroups,
    plot_subgroups,
    subgroup_mask,
)

try:
    import pysubgroup as ps
except ImportError:  # a test-only reference; the other tests still run without it
    ps = None
needs_pysubgroup = pytest.mark.skipif(ps is None, reason="pysubgroup is not installed")

# pysubgroup divides by zero for empty conjunctions (two values of one attribute) and warns.
pytestmark = pytest.mark.filterwarnings("ignore:invalid value encountered:RuntimeWarning")

PLAIN = {"numeric_ranges": False, "value_sets": False, "prune_redundant": False}
NUMERIC = ("employees", "revenue", "noise_num")


def accounts(n_rows: int, seed: int, *, planted: bool = True) -> pd.DataFrame:
    """Accounts with categorical, numeric and noise attributes; missing values in each kind."""
    rng = np.random.default_rng(seed)
    frame = pd.DataFrame(
        {
            "industry": rng.choice(
                ["SaaS", "FinTech", "Retail", "Health", "Gov"], n_rows, p=[0.3, 0.3, 0.2, 0.1, 0.1]
            ),
            "crm": rng.choice(["HubSpot", "Salesforce", "Pipedrive", None], n_rows),
            "employees": np.round(np.exp(rng.uniform(np.log(5), np.log(20_000), n_rows))),
            "revenue": rng.lognormal(14, 1, n_rows),
            "noise_cat": rng.choice(list("abcde"), n_rows),
            "noise_num": rng.normal(size=n_rows),
        }
    )
    frame.loc[rng.random(n_rows) < 0.1, "employees"] = np.nan
    rate = np.full(n_rows, 0.15)
    if planted:
        rate = np.where(planted_mask(frame), 0.6, np.where(frame["crm"] == "HubSpot", 0.2, 0.1))
    frame["best_customer"] = rng.random(n_rows) < rate
    return frame


def planted_mask(frame: pd.DataFrame) -> pd.Series:
    """FinTech accounts in the 2nd and 3rd of the five employee bins the search will use."""
    cuts = cut_points(frame["employees"].dropna(), 5)
    inside = frame["employees"].between(cuts[1], cuts[3], inclusive="left")
    return (frame["industry"] == "FinTech") & inside


def to_pysubgroup(result: SubgroupResult, frame: pd.DataFrame):
    """Our searched conditions as pysubgroup selectors, and the data they apply to."""
    selectors = []
    for text in result.tables["conditions"]["condition"]:
        condition = json.loads(text)
        attribute = condition["attribute"]
        if condition["op"] == "==":
            selectors.append(ps.EqualitySelector(attribute, condition["value"]))
        elif condition["op"] == "missing":
            selectors.append(
                ps.EqualitySelector(attribute, np.nan if attribute in NUMERIC else MISSING)
            )
        else:
            low = -np.inf if condition["low"] is None else condition["low"]
            high = np.inf if condition["high"] is None else condition["high"]
            selectors.append(ps.IntervalSelector(attribute, low, high))
    data = frame.copy()
    for column in ("industry", "crm", "noise_cat"):
        data[column] = data[column].fillna(MISSING)
    return selectors, data


def condition_key(condition) -> tuple:
    """One comparable form for our conditions and pysubgroup's selectors."""
    if isinstance(condition, dict):
        if condition["op"] == "==":
            return (condition["attribute"], condition["value"])
        if condition["op"] == "missing":
            return (condition["attribute"], MISSING)
        low = -np.inf if condition["low"] is None else condition["low"]
        high = np.inf if condition["high"] is None else condition["high"]
        return (condition["attribute"], float(low), float(high))
    if isinstance(condition, ps.IntervalSelector):
        return (
            condition.attribute_name,
            float(condition.lower_bound),
            float(condition.upper_bound),
        )
    value = condition.attribute_value
    if isinstance(value, float) and np.isnan(value):
        value = MISSING
    return (condition.attribute_name, value)


def assert_same_top(ours: pd.DataFrame, reference: list, k: int, *, quality: str = "wracc"):
    """Same top-k qualities; same subgroups wherever the k-th quality is not tied."""
    reference_quality = np.array([q for q, *_ in reference])
    our_quality = ours[quality].to_numpy()
    assert len(ours) == len(reference) == k
    np.testing.assert_allclose(our_quality, reference_quality, rtol=0, atol=1e-9)
    kth = reference_quality[-1]
    ours_above = {
        frozenset(condition_key(c) for c in json.loads(text))
        for text, q in zip(ours["conditions"], our_quality, strict=True)
        if q > kth + 1e-12
    }
    reference_above = {
        frozenset(condition_key(s) for s in subgroup.selectors)
        for q, subgroup, *_ in reference
        if q > kth + 1e-12
    }
    assert ours_above == reference_above
    assert len(ours_above) >= k // 2


# ---------------------------------------------------------------------------------------------
# Same results as pysubgroup


@needs_pysubgroup
@pytest.mark.parametrize(("depth", "k"), [(1, 8), (2, 15), (3, 15)])
def test_top_k_equals_pysubgroup_apriori(depth, k):
    frame = accounts(1500, seed=1)
    ours = find_subgroups(frame, "best_customer", max_depth=depth, min_support=1, top_k=k, **PLAIN)
    selectors, data = to_pysubgroup(ours, frame)
    task = ps.SubgroupDiscoveryTask(
        data,
        ps.BinaryTarget("best_customer", True),
        selectors,
        result_set_size=k,
        depth=depth,
        qf=ps.WRAccQF(),
    )
    reference = ps.Apriori(use_numba=False).execute(task).results
    assert_same_top(ours.summary, reference, k)


@needs_pysubgroup
def test_min_support_and_lift_equal_pysubgroup_simple_dfs():
    frame = accounts(1200, seed=2)
    k, min_count = 12, 60
    ours = find_subgroups(
        frame,
        "best_customer",
        max_depth=2,
        min_support=min_count,
        top_k=k,
        quality="lift",
        **PLAIN,
    )
    selectors, data = to_pysubgroup(ours, frame)
    task = ps.SubgroupDiscoveryTask(
        data,
        ps.BinaryTarget("best_customer", True),
        selectors,
        result_set_size=k,
        depth=2,
        qf=ps.LiftQF(),  # target rate minus overall rate: the same order as lift
        constraints=[ps.MinSupportConstraint(min_count)],
    )
    reference = ps.SimpleDFS().execute(task).results
    ours_summary = ours.summary.assign(
        rate_difference=ours.summary["target_rate"] - ours.summary["baseline_rate"]
    )
    assert_same_top(ours_summary, reference, k, quality="rate_difference")
    assert (ours.summary["n"] >= min_count).all()


@needs_pysubgroup
def test_ranges_of_bins_equal_pysubgroup_with_the_same_intervals():
    frame = accounts(1500, seed=3)
    k = 15
    ours = find_subgroups(
        frame,
        "best_customer",
        max_depth=2,
        min_support=1,
        top_k=k,
        numeric_ranges=True,
        value_sets=False,
        prune_redundant=False,
    )
    conditions = ours.tables["conditions"]
    # b bins give every range of adjacent bins but the full one: b (b + 1) / 2 - 1.
    bins = len(cut_points(frame["revenue"], 5)) + 1
    assert (conditions["attribute"] == "revenue").sum() == bins * (bins + 1) // 2 - 1
    selectors, data = to_pysubgroup(ours, frame)
    task = ps.SubgroupDiscoveryTask(
        data,
        ps.BinaryTarget("best_customer", True),
        selectors,
        result_set_size=400,
        depth=2,
        qf=ps.WRAccQF(),
    )
    results = ps.Apriori(use_numba=False).execute(task).results
    # pysubgroup also intersects two ranges of one attribute (another range we already have):
    # leave those out, then compare the top k.
    distinct = [
        r for r in results if len({s.attribute_name for s in r[1].selectors}) == len(r[1].selectors)
    ]
    assert_same_top(ours.summary, distinct[:k], k)


# ---------------------------------------------------------------------------------------------
# Planted patterns and noise


def test_planted_conjunction_ranks_first_and_noise_is_not_significant():
    frame = accounts(3000, seed=4)
    result = find_subgroups(frame, "best_customer", target_name="best customers")
    top = result.summary.iloc[0]
    assert top["depth"] == 2
    planted = planted_mask(frame)
    assert result.mask(frame, 1).equals(planted)
    assert top["n"] == planted.sum()
    assert top["significant"] and top["q_value"] < 1e-6
    # The pattern, stated with its numbers.
    assert result.findings[0].startswith(f"Accounts with {top['description']} are ")
    assert "as likely to be best customers" in result.findings[0]
    significant = result.significant
    assert len(significant) >= 1
    for text in significant["conditions"]:
        attributes = {c["attribute"] for c in json.loads(text)}
        assert not attributes & {"noise_cat", "noise_num", "revenue"}, text


def test_clustered_rows_count_as_the_accounts_they_come_from():
    frame = accounts(1500, seed=5)
    single = find_subgroups(frame, "best_customer", top_k=5)
    # Every account's row three times over: three rows carry one row's worth of evidence.
    copies = pd.concat([frame.assign(account_id=np.arange(len(frame)))] * 3, ignore_index=True)
    naive = find_subgroups(copies, "best_customer", top_k=5)
    clustered = find_subgroups(copies, "best_customer", top_k=5, clusters="account_id")
    k = len(frame)
    assert clustered.params["design_effect"] == pytest.approx(3 * k / (k - 1))
    assert clustered.params["n_clusters"] == k
    assert list(clustered.summary["description"]) == list(single.summary["description"])
    # Tests and intervals on effective counts match the single copy; the naive ones do not.
    assert clustered.summary["p_value"].to_numpy() == pytest.approx(
        single.summary["p_value"].to_numpy(), rel=0.05
    )
    assert clustered.summary["ci_low"].to_numpy() == pytest.approx(
        single.summary["ci_low"].to_numpy(), abs=0.002
    )
    assert (naive.summary["p_value"] < single.summary["p_value"] / 100).all()
    assert any("design effect" in c for c in clustered.caveats)
    assert "account_id" not in clustered.tables["conditions"]["attribute"].to_numpy()
    # Clusters given as a Series; a missing id is an account of its own.
    ids = pd.Series(np.arange(len(copies)) % k, index=copies.index, dtype="float")
    ids.iloc[:10] = np.nan
    by_series = find_subgroups(
        copies.drop(columns="account_id"), "best_customer", top_k=5, clusters=ids
    )
    assert by_series.params["n_clusters"] == k + 10
    with pytest.raises(InputError, match="Cluster column"):
        find_subgroups(copies, "best_customer", clusters="account")


@pytest.mark.parametrize("seed", [10, 11, 12, 13, 14])
def test_pure_noise_yields_no_significant_subgroup(seed):
    frame = accounts(1000, seed=seed, planted=False)
    result = find_subgroups(frame, "best_customer")
    assert not result.summary.empty
    assert not result.summary["significant"].any()
    assert result.findings == [
        "No subgroup separates best customer accounts from the rest after correcting for "
        f"{result.family_size:,} subgroups searched."
    ]
    assert result.family_size > 1000


def _expected_p(k1, n1, k2, n2):
    """Pearson's chi-square (Fisher's exact for small expected counts), and scipy's Fisher
    exact test where that p-value is below 0.01 and the smaller group has at most 2,000 rows:
    in the tail the approximation is several times too small."""
    p = two_proportion_pvalue(k1, n1, k2, n2)
    k1, n1, k2, n2 = np.broadcast_arrays(*(np.atleast_1d(x) for x in (k1, n1, k2, n2)))
    for i in np.flatnonzero((p < 0.01) & (np.minimum(n1, n2) <= 2000)):
        table = [[k1[i], n1[i] - k1[i]], [k2[i], n2[i] - k2[i]]]
        p[i] = sps.fisher_exact(table).pvalue
    return p


def test_a_small_subgroups_tail_p_value_is_exact():
    """23 of 51 against 200 of 1,000: Pearson's chi-square says 1.9e-5, Fisher's exact test
    7.9e-5; a search of thousands of subgroups decides significance in that tail."""
    from icp_research.methods.subgroups import _pvalue

    exact = sps.fisher_exact([[23, 28], [200, 800]]).pvalue
    assert two_proportion_pvalue(23, 51, 200, 1000)[0] < exact / 4
    assert _pvalue(23, 51, 200, 1000)[0] == pytest.approx(exact, rel=1e-9)
    # Above the tail, and for large groups, the chi-square test stands.
    assert _pvalue(15, 51, 200, 1000)[0] == pytest.approx(
        two_proportion_pvalue(15, 51, 200, 1000)[0]
    )
    big = (1300, 3000, 1000, 3000)
    assert _pvalue(*big)[0] == pytest.approx(two_proportion_pvalue(*big)[0])


def test_family_and_q_values_cover_every_subgroup_searched():
    frame = accounts(600, seed=5)
    result = find_subgroups(frame, "best_customer", max_depth=2, top_k=5, **PLAIN)
    conditions = result.tables["conditions"]
    masks = [subgroup_mask(frame, f"[{text}]").to_numpy() for text in conditions["condition"]]
    attribute = conditions["attribute"].tolist()
    # Brute force: every condition and every pair of conditions on two attributes.
    covers = masks + [
        masks[i] & masks[j]
        for i, j in combinations(range(len(masks)), 2)
        if attribute[i] != attribute[j]
    ]
    min_count = result.params["min_count"]
    covers = [c for c in covers if min_count <= c.sum() < len(frame)]
    assert result.family_size == len(covers)
    outcome = frame["best_customer"].to_numpy()
    n = np.array([c.sum() for c in covers])
    k = np.array([outcome[c].sum() for c in covers])
    q = adjust_pvalues(_expected_p(k, n, outcome.sum() - k, outcome.size - n))
    for row in result.summary.itertuples():
        mask = subgroup_mask(frame, row.conditions).to_numpy()
        i = next(i for i, c in enumerate(covers) if np.array_equal(c, mask))
        assert row.q_value == pytest.approx(q[i], rel=1e-12)
    assert f"{result.family_size:,} subgroups searched" in " ".join(result.caveats)


# ---------------------------------------------------------------------------------------------
# Redundancy


def redundancy_frame(seed: int = 6, n_rows: int = 4000) -> pd.DataFrame:
    rng = np.random.default_rng(seed)
    industry = rng.choice(["FinTech", "SaaS", "Retail", "Gov"], n_rows, p=[0.3, 0.3, 0.2, 0.2])
    frame = pd.DataFrame(
        {
            "industry": industry,
            # An alias of FinTech, wrong for 2% of rows: nearly the same accounts.
            "vertical": np.where(
                (industry == "FinTech") ^ (rng.random(n_rows) < 0.01), "finance", "other"
            ),
            "crm": rng.choice(["HubSpot", "Salesforce"], n_rows),
            "coin": rng.choice(["heads", "tails"], n_rows),
        }
    )
    rate = np.where(frame["industry"] == "FinTech", 0.4, 0.1)
    rate = np.where((frame["industry"] == "FinTech") & (frame["crm"] == "HubSpot"), 0.7, rate)
    frame["won"] = rng.random(n_rows) < rate
    return frame


def test_a_condition_without_lift_is_pruned_and_one_with_lift_is_kept():
    frame = redundancy_frame()
    result = find_subgroups(frame, "won", max_depth=2, value_sets=False)
    descriptions = list(result.summary["description"])
    assert "industry = FinTech" in descriptions
    # crm = HubSpot raises the rate within FinTech: kept.
    assert "industry = FinTech AND crm = HubSpot" in descriptions
    # The coin adds nothing to FinTech: those subgroups are left out, with the reason.
    assert not any("coin" in d for d in descriptions if "AND" in d)
    assert not result.summary.loc[
        result.summary["description"].str.contains("coin"), "significant"
    ].any()
    pruned = result.tables["pruned"].set_index("description")
    reason = pruned.loc["industry = FinTech AND coin = heads", "reason"]
    assert reason.startswith("'coin = heads' adds no lift")
    # A near-duplicate of a subgroup shown is collapsed into it.
    assert not any("vertical" in d for d in descriptions)
    assert "nearly the same rows" in pruned.loc["vertical = finance", "reason"]
    # Without pruning the same search reports them.
    unpruned = find_subgroups(frame, "won", max_depth=2, top_k=50, **PLAIN)
    assert "industry = FinTech AND coin = heads" in set(unpruned.summary["description"])
    assert "vertical = finance" in set(unpruned.summary["description"])


def test_subgroups_shown_do_not_repeat_each_other():
    frame = accounts(4000, seed=15)
    result = find_subgroups(frame, "best_customer", top_k=15)
    summary = result.summary
    masks = [subgroup_mask(frame, text).to_numpy() for text in summary["conditions"]]
    outcome = frame["best_customer"].to_numpy()
    overlapping = 0
    for i, j in combinations(range(len(summary)), 2):
        both = np.count_nonzero(masks[i] & masks[j])
        n_i, n_j = masks[i].sum(), masks[j].sum()
        if both < OVERLAP * min(n_i, n_j):
            continue
        overlapping += 1
        assert both / (n_i + n_j - both) < NEAR_DUPLICATE
        if both >= OVERLAP * n_j:  # the lower-ranked one lies mostly in the higher-ranked one
            assert summary["target_rate"].iloc[j] > summary["ci_high"].iloc[i]
        else:  # it holds most of it: what it adds must be about as good
            added = masks[j] & ~masks[i]
            assert outcome[added].mean() >= summary["ci_low"].iloc[i]
    pruned = result.tables["pruned"]
    assert pruned["reason"].str.contains("is not clearly above|with a lower rate").any()
    assert len(result.significant) >= 2 and overlapping < len(summary)


def test_many_values_are_cut_to_the_most_common():
    rng = np.random.default_rng(16)
    frame = pd.DataFrame({"country": rng.choice([f"c{i:02d}" for i in range(40)], 8000)})
    frame["won"] = rng.random(8000) < 0.3
    result = find_subgroups(frame, "won", min_support=50, max_levels=10)
    assert (result.tables["conditions"]["attribute"] == "country").sum() == 10
    assert "country: only the 10 most common of 40 values were used" in " ".join(result.caveats)


def test_values_with_similar_rates_merge_into_a_value_set():
    rng = np.random.default_rng(7)
    n_rows = 3000
    frame = pd.DataFrame(
        {"industry": rng.choice(["FinTech", "SaaS", "Retail", "Gov", "Media"], n_rows)}
    )
    frame["won"] = rng.random(n_rows) < np.where(
        frame["industry"].isin(["FinTech", "SaaS"]), 0.4, 0.1
    )
    result = find_subgroups(frame, "won", max_depth=1)
    top = result.summary.iloc[0]
    assert top["description"] == "industry in {FinTech, SaaS}"
    assert json.loads(top["conditions"]) == [
        {"attribute": "industry", "op": "in", "values": ["FinTech", "SaaS"]}
    ]
    assert top["n"] == frame["industry"].isin(["FinTech", "SaaS"]).sum()
    # The single values are part of the set, not shown again.
    assert "industry = SaaS" not in set(result.summary["description"])
    # Merges tried are subgroups searched: the 5 values, then from FinTech the 4 pairs and the
    # 3 triples with SaaS, then from SaaS the 3 pairs without FinTech.
    assert result.family_size == 5 + 4 + 3 + 3


# ---------------------------------------------------------------------------------------------
# The result


def test_summary_columns_rates_and_intervals():
    frame = accounts(2000, seed=8)
    result = find_subgroups(frame, "best_customer", top_k=8)
    summary = result.summary
    assert list(summary.columns) == SUMMARY_COLUMNS
    assert list(summary["rank"]) == list(range(1, len(summary) + 1))
    assert (summary["target"] == "best_customer").all()
    assert summary["wracc"].is_monotonic_decreasing
    for row in summary.itertuples():
        mask = subgroup_mask(frame, row.conditions)
        assert mask.sum() == row.n
        assert frame.loc[mask, "best_customer"].mean() == pytest.approx(row.target_rate)
        assert row.ci_low <= row.target_rate <= row.ci_high
        assert row.lift == pytest.approx(row.target_rate / row.baseline_rate)
        rest = frame.loc[~mask, "best_customer"]
        expected_p = _expected_p(
            frame.loc[mask, "best_customer"].sum(), row.n, rest.sum(), rest.size
        )[0]
        assert row.p_value == pytest.approx(expected_p, rel=1e-9)
    assert summary["baseline_rate"].iloc[0] == pytest.approx(frame["best_customer"].mean())


def test_a_bin_holding_one_whole_number_reads_as_that_number():
    rng = np.random.default_rng(17)
    frame = pd.DataFrame({"integrations": rng.integers(0, 3, 2000)})
    frame["won"] = rng.random(2000) < np.where(frame["integrations"] == 1, 0.45, 0.2)
    result = find_subgroups(frame, "won")
    top = result.summary.iloc[0]
    assert top["description"] == "integrations = 1"
    assert json.loads(top["conditions"]) == [
        {"attribute": "integrations", "op": "range", "low": 1, "high": 2}
    ]
    assert result.mask(frame, 1).equals(frame["integrations"] == 1)


def test_mask_follows_the_conditions():
    frame = pd.DataFrame(
        {
            "industry": ["SaaS", "FinTech", None, "Retail", "SaaS"],
            "employees": [50, 150, 1000, np.nan, 999],
            "flag": [True, False, True, True, None],
        }
    )
    conditions = [
        {"attribute": "industry", "op": "in", "values": ["SaaS", MISSING]},
        {"attribute": "employees", "op": "range", "low": 100, "high": None},
    ]
    assert subgroup_mask(frame, conditions).tolist() == [False, False, True, False, True]
    assert subgroup_mask(
        frame, json.dumps([{"attribute": "flag", "op": "==", "value": "True"}])
    ).tolist() == [True, False, True, True, False]
    assert subgroup_mask(frame, [{"attribute": "employees", "op": "missing"}]).tolist() == [
        False,
        False,
        False,
        True,
        False,
    ]
    with pytest.raises(InputError, match="not in the data"):
        subgroup_mask(frame, [{"attribute": "crm", "op": "missing"}])


def test_plot_returns_axes_with_one_row_per_subgroup():
    frame = accounts(2000, seed=8)
    result = find_subgroups(frame, "best_customer", top_k=6)
    ax = plot_subgroups(result, top=4)
    assert len(ax.get_yticklabels()) == 4
    assert ax.get_xscale() == "log"
    plt.close(ax.figure)
    empty = find_subgroups(frame.assign(best_customer=True), "best_customer")
    ax = plot_subgroups(empty)
    assert ax.texts[0].get_text() == "No subgroups to show"
    plt.close(ax.figure)


# ---------------------------------------------------------------------------------------------
# Edge cases


@pytest.mark.parametrize("value", [True, False])
def test_constant_target_gives_no_subgroups_and_says_why(value):
    frame = accounts(200, seed=9).assign(best_customer=value)
    result = find_subgroups(frame, "best_customer")
    assert result.summary.empty and list(result.summary.columns) == SUMMARY_COLUMNS
    assert not result.ok
    assert any("nothing to separate" in c for c in result.caveats)


def test_single_level_and_all_missing_columns_are_left_out():
    frame = accounts(600, seed=9).assign(country="US", website=np.nan, segment=None)
    result = find_subgroups(frame, "best_customer", max_depth=2)
    assert not result.summary.empty
    searched = set(result.tables["conditions"]["attribute"])
    assert not searched & {"country", "website", "segment"}
    note = next(c for c in result.caveats if c.startswith("Not used"))
    assert "country" in note and "website" in note and "segment" in note


def test_tiny_data_runs_and_finds_nothing_significant():
    frame = pd.DataFrame(
        {"industry": ["SaaS", "SaaS", "Retail", "Gov", "Retail"], "won": [1, 1, 0, 0, 1]}
    )
    result = find_subgroups(frame, "won")
    assert not result.summary["significant"].any()
    assert any("too few" in c for c in result.caveats)
    assert result.summary.iloc[0]["description"] == "industry = SaaS"


def test_missing_target_rows_are_left_out_and_series_targets_work():
    frame = accounts(1000, seed=4)
    target = frame["best_customer"].astype(object).where(np.arange(1000) % 10 != 0)
    result = find_subgroups(frame.drop(columns="best_customer"), target.rename("won"))
    assert result.params["n_rows"] == 900
    assert (result.summary["target"] == "won").all()
    assert any("100 rows with an unknown won were left out" in c for c in result.caveats)


def test_bad_input_is_explained():
    frame = accounts(100, seed=4)
    with pytest.raises(InputError, match="must be boolean"):
        find_subgroups(frame, "industry")
    with pytest.raises(InputError, match="not in the data"):
        find_subgroups(frame, "churned")
    with pytest.raises(InputError, match="not in the data"):
        find_subgroups(frame, "best_customer", attributes=["industry", "plan"])
    with pytest.raises(InputError, match="quality"):
        find_subgroups(frame, "best_customer", quality="auc")
    with pytest.raises(InputError, match="min_support"):
        find_subgroups(frame, "best_customer", min_support=1.5)


# ---------------------------------------------------------------------------------------------
# Batched tests in icp_research.methods.stats


def test_batched_two_proportion_tests_match_scipy():
    rng = np.random.default_rng(12)
    n1 = rng.integers(1, 400, 400)
    n2 = rng.integers(1, 4000, 400)
    k1 = rng.binomial(n1, 0.08)
    k2 = rng.binomial(n2, 0.05)
    fisher = np.array(
        [
            sps.fisher_exact([[a, b - a], [c, d - c]])[1]
            for a, b, c, d in zip(k1, n1, k2, n2, strict=True)
        ]
    )
    np.testing.assert_allclose(fisher_exact_pvalue(k1, n1, k2, n2), fisher, rtol=1e-9, atol=1e-14)
    expected = []
    for a, b, c, d in zip(k1, n1, k2, n2, strict=True):
        table = np.array([[a, b - a], [c, d - c]])
        if table[:, 0].sum() == 0 or table[:, 1].sum() == 0:
            expected.append(1.0)
        elif sps.contingency.expected_freq(table).min() < 5:
            expected.append(sps.fisher_exact(table)[1])
        else:
            expected.append(sps.chi2_contingency(table, correction=False)[1])
    np.testing.assert_allclose(
        two_proportion_pvalue(k1, n1, k2, n2), expected, rtol=1e-9, atol=1e-14
    )


def test_a_three_condition_segment_among_thousands_searched_is_shown():
    # A first user's planted ICP (UK financial services firms of 200-1,000 employees win 2.7x)
    # was never shown: every subgroup of two or more conditions was left out because each
    # condition's own test was corrected over the whole search, tens of thousands of subgroups.
    rng = np.random.default_rng(36)
    n = 6000
    industries = [f"ind{i}" for i in range(11)] + ["FS"]
    frame = pd.DataFrame(
        {
            "industry": rng.choice(industries, n, p=[0.8 / 11] * 11 + [0.2]),
            "country": rng.choice(
                ["UK", "DE", "FR", "IE", "NL", "BE", "ES"], n, p=[0.4] + [0.1] * 6
            ),
            "source": rng.choice(list("abcdefg"), n),
            "employees": np.round(np.exp(rng.uniform(np.log(5), np.log(5000), n))),
            "revenue": rng.lognormal(15, 1.2, n),
        }
    )
    segment = (
        (frame["industry"] == "FS")
        & (frame["country"] == "UK")
        & frame["employees"].between(200, 1000, inclusive="left")
    )
    frame["won"] = rng.random(n) < np.where(segment, 0.35, 0.11)
    assert 80 < segment.sum() < 130  # about 2% of the rows, as in the first user's export
    result = find_subgroups(frame, "won", max_depth=3, min_support=60, n_bins=10)
    assert result.family_size > 20_000
    shown = result.summary.set_index("description")
    deep = shown[shown["depth"] >= 2]
    assert len(deep) and deep["significant"].any()
    best = deep[deep["significant"]].sort_values("q_value").iloc[0]
    rows = subgroup_mask(frame, best["conditions"]).to_numpy()
    # It holds most of the planted accounts, at twice the base rate or more.
    assert (rows & segment).sum() / segment.sum() > 0.8
    assert best["target_rate"] > 2 * best["baseline_rate"] and best["q_value"] < 1e-3


def test_no_subgroup_of_noise_is_significant_at_any_depth():
    rng = np.random.default_rng(34)
    n = 4400
    frame = pd.DataFrame(
        {
            "industry": rng.choice([f"ind{i}" for i in range(12)], n),
            "country": rng.choice(["UK", "DE", "FR", "IE", "NL", "BE", "ES"], n),
            "source": rng.choice(list("abcdefg"), n),
            "employees": np.round(np.exp(rng.uniform(np.log(5), np.log(5000), n))),
            "revenue": rng.lognormal(15, 1.2, n),
        }
    )
    frame["won"] = rng.random(n) < 0.12
    result = find_subgroups(frame, "won", max_depth=3, min_support=44, n_bins=10)
    assert not result.summary["significant"].any()


def test_a_value_set_never_grows_from_an_average_value():
    # Partner Referral wins 45%; Trade Show a little above the 25% base rate, by chance. Grown
    # from Trade Show, a set took Partner Referral in and was shown, diluted (36%), in its place.
    rng = np.random.default_rng(3)
    sources = np.repeat(["Partner Referral", "Trade Show", "Web", "Outbound"], [300, 300, 700, 700])
    rates = {"Partner Referral": 0.45, "Trade Show": 0.27, "Web": 0.2, "Outbound": 0.2}
    frame = pd.DataFrame(
        {
            "source": sources,
            "won": rng.random(sources.size) < np.array([rates[s] for s in sources]),
        }
    )
    result = find_subgroups(frame, "won", max_depth=1, top_k=3)
    top = result.summary.iloc[0]
    assert top["description"] == "source = Partner Referral"
    # Trade Show may show on its own, but no set pairs it with Partner Referral.
    assert not result.summary["description"].str.contains(" in {", regex=False).any()


def _one_strong_effect(seed: int, n_accounts: int = 2300) -> pd.DataFrame:
    """Deals of accounts in which Manufacturing wins 2x; everything else is noise."""
    rng = np.random.default_rng(seed)
    accounts = pd.DataFrame(
        {
            "account_id": np.arange(n_accounts),
            "industry": rng.choice(
                [
                    "Manufacturing",
                    "Retail",
                    "Healthcare",
                    "Education",
                    "Finance",
                    "Media",
                    "Logistics",
                ],
                n_accounts,
            ),
            "employees": np.round(np.exp(rng.normal(5.5, 1.2, n_accounts))),
            "country": rng.choice(["UK", "DE", "FR", "US", "ES", "IE", "NL"], n_accounts),
            "revenue": np.round(np.exp(rng.normal(15, 1.5, n_accounts))),
        }
    )
    deals = accounts.loc[np.repeat(accounts.index, rng.integers(1, 6, n_accounts))]
    deals = deals.reset_index(drop=True)
    deals["source"] = rng.choice(["Outbound", "Inbound", "Web", "Partner", "Event"], len(deals))
    rate = np.where(deals["industry"] == "Manufacturing", 0.15, 0.075)
    deals["won"] = rng.random(len(deals)) < rate
    return deals


def test_variants_of_one_strong_pattern_do_not_make_noise_significant():
    """Beside a real 2x effect, its variants ("Manufacturing and UK", "Manufacturing or
    Retail") each have a tiny p-value. Counted as discoveries, they raised the rank, and so
    lowered the q-value, of every other subgroup: pairs of noise conditions came out
    significant (a first user's "Outbound as lead source and 200-399 employees, 1.7x, q =
    0.006"). Only subgroups whose every condition adds lift, and the value sets taken, count
    as discoveries now: over 40 seeded datasets, 2 show a noise subgroup (it was 4), and the
    real effect is found in every one."""
    noisy, found = [], 0
    for seed in range(40):
        deals = _one_strong_effect(seed)
        result = find_subgroups(
            deals,
            "won",
            attributes=["industry", "employees", "country", "revenue", "source"],
            max_depth=2,
            min_support=max(int(0.02 * len(deals)), 30),
            top_k=10,
            alpha=0.05,
            unit="deals",
            clusters="account_id",
        )
        significant = result.summary.loc[result.summary["significant"], "description"]
        found += any(d == "industry = Manufacturing" for d in significant)
        if any("Manufacturing" not in d for d in significant):
            noisy.append(seed)
    assert found == 40
    assert noisy == [6, 17]
