"""Tests of the fit score: fitting, scoring messy leads, the icp.json round trip, validation."""

from __future__ import annotations

import json

import matplotlib

matplotlib.use("Agg")

import matplotlib.pyplot as plt  # noqa: E402
import numpy as np  # noqa: E402
import pandas as pd  # noqa: E402
import pytest  # noqa: E402
from scipy import stats as sps  # noqa: E402

from icp_research.errors import ConfigError, DataError, NotEnoughData  # noqa: E402
from icp_research.scoring.model import (  # noqa: E402
    ABSENT,
    NOT_A_NUMBER,
    OK,
    OPEN_RANGE,
    RANGE,
    Scorecard,
    coerce_numeric,
)
from icp_research.scoring.scorecard import (  # noqa: E402
    auc,
    auc_ci,
    fit_scorecard,
    plot_calibration,
    plot_tiers,
    validate_scorecard,
)

INDUSTRIES = ["FinTech", "SaaS", "Retail", "Health", "Manufacturing", "Education", "Media"]
INDUSTRY_EFFECT = dict(zip(INDUSTRIES, [1.2, 0.8, -0.3, 0.0, -0.6, -0.4, 0.0], strict=True))
CATEGORICAL = ["industry", "crm", "noise_category"]
NUMERIC = ["employees", "annual_revenue", "noise_number"]


def simulate_deals(n: int, seed: int) -> tuple[pd.DataFrame, np.ndarray]:
    """Deals with planted effects, and each deal's true win probability.

    Industry (FinTech, SaaS best), a sweet spot of 100-1,000 employees (not monotone), revenue
    (monotone increasing), no CRM (worse); two pure-noise attributes; 5% employees missing.
    """
    rng = np.random.default_rng(seed)
    industry = rng.choice(INDUSTRIES, n)
    employees = np.round(np.exp(rng.normal(5.5, 1.6, n)))
    revenue = np.exp(rng.normal(16, 1.2, n))
    crm = rng.choice(["HubSpot", "Salesforce", "None", "Pipedrive"], n, p=[0.35, 0.35, 0.2, 0.1])
    logit = (
        -1.6
        + pd.Series(industry).map(INDUSTRY_EFFECT).to_numpy()
        + np.where((employees >= 100) & (employees < 1000), 0.9, 0.0)
        + 0.45 * (np.log(revenue) - 16)
        + np.where(crm == "None", -0.8, 0.0)
    )
    probability = 1 / (1 + np.exp(-logit))
    deals = pd.DataFrame(
        {
            "industry": industry,
            "employees": np.where(rng.random(n) < 0.05, np.nan, employees),
            "annual_revenue": revenue,
            "crm": crm,
            "noise_number": rng.normal(50, 10, n),
            "noise_category": rng.choice(list("ABCDE"), n),
            "won": rng.random(n) < probability,
        }
    )
    return deals, probability


@pytest.fixture(scope="module")
def training():
    return simulate_deals(8000, seed=1)[0]


@pytest.fixture(scope="module")
def holdout():
    return simulate_deals(4000, seed=2)


@pytest.fixture(scope="module")
def scorecard(training):
    return fit_scorecard(training, "won", categorical=CATEGORICAL, numeric=NUMERIC)


def attribute(scorecard, name):
    return next(a for a in scorecard.attributes if a.name == name)


def extreme_lead(scorecard, best: bool) -> dict:
    """A lead in the best (or worst) level or bin of every attribute."""
    lead = {}
    for a in scorecard.attributes:
        index = int(np.argmax(a.points) if best else np.argmin(a.points))
        if a.kind == "categorical":
            lead[a.name] = a.labels[index] if a.labels[index] != "(other)" else a.other_members[0]
        else:
            lead[a.name] = a.observed_min if index == 0 else a.edges[index - 1]
    return lead


# ---------------------------------------------------------------------------------------------
# Fitting


def test_holdout_auc_is_close_to_the_oracle(scorecard, holdout):
    deals, true_probability = holdout
    oracle = auc(true_probability, deals["won"])
    result = validate_scorecard(scorecard, deals, "won", unit="deals")
    assert result.auc > 0.7
    assert oracle - result.auc < 0.03
    assert result.auc_low < oracle < result.auc_high + 0.03


def test_monotone_relation_gets_monotone_bins(scorecard):
    revenue = attribute(scorecard, "annual_revenue")
    assert revenue.monotone == "increasing"
    assert np.all(np.diff(revenue.points) >= 0)
    assert revenue.points[0] == 0 and revenue.points[-1] == max(revenue.points)


def test_sweet_spot_is_not_forced_monotone(scorecard):
    employees = attribute(scorecard, "employees")
    assert employees.monotone is None
    best = int(np.argmax(employees.points))
    assert 0 < best < len(employees.points) - 1
    low, high = employees.edges[best - 1], employees.edges[best]
    assert low >= 100 and high <= 1000


def test_forcing_monotone_merges_bins(training):
    forced = fit_scorecard(training, "won", numeric=["annual_revenue"], monotonic=True)
    never = fit_scorecard(training, "won", numeric=["employees"], monotonic=False)
    assert np.all(np.diff(forced.attributes[0].points) >= 0)
    assert len(never.attributes[0].labels) == 5


def test_noise_attributes_get_no_points(scorecard, training):
    dropped = {d["name"] for d in scorecard.dropped}
    assert {"noise_number", "noise_category"} <= dropped
    unselected = fit_scorecard(
        training, "won", categorical=CATEGORICAL, numeric=NUMERIC, select=False
    )
    assert attribute(unselected, "noise_number").spread <= 4
    assert attribute(unselected, "noise_category").spread <= 4
    assert attribute(unselected, "industry").spread >= 25


def test_planted_levels_rank_as_planted(scorecard):
    industry = attribute(scorecard, "industry")
    points = dict(zip(industry.labels, industry.points, strict=True))
    assert points["FinTech"] == max(points.values())
    assert points["Manufacturing"] == min(points.values())
    crm = attribute(scorecard, "crm")
    assert dict(zip(crm.labels, crm.points, strict=True))["None"] == 0


def test_fit_is_deterministic(training, scorecard):
    again = fit_scorecard(training, "won", categorical=CATEGORICAL, numeric=NUMERIC)
    assert again.to_dict() == scorecard.to_dict()


# ---------------------------------------------------------------------------------------------
# Scale and tiers


def test_scores_span_exactly_0_to_100(scorecard, training):
    assert scorecard.min_score == 0 and scorecard.max_score == 100
    best = scorecard.score(pd.DataFrame([extreme_lead(scorecard, best=True)]))
    worst = scorecard.score(pd.DataFrame([extreme_lead(scorecard, best=False)]))
    assert best["fit_score"].iloc[0] == 100
    assert worst["fit_score"].iloc[0] == 0
    scores = scorecard.score(training, reasons=False)["fit_score"]
    assert scores.between(0, 100).all()


def test_default_tiers_split_training_about_20_30_50(scorecard, training):
    assert [name for name, _ in scorecard.tiers] == ["Tier 1", "Tier 2", "Tier 3"]
    shares = scorecard.score(training, reasons=False)["tier"].value_counts(normalize=True)
    assert shares["Tier 1"] == pytest.approx(0.2, abs=0.05)
    assert shares["Tier 2"] == pytest.approx(0.3, abs=0.06)
    assert scorecard.tiers[-1][1] == 0


def test_tier_cut_offs_are_inclusive_and_configurable(training):
    card = fit_scorecard(
        training, "won", categorical=["industry"], tiers=[("A", 70), ("B", 40), ("C", 0)]
    )
    assert list(card.tier_of([100, 70, 69, 40, 39.5, 0])) == ["A", "A", "B", "B", "C", "C"]
    with pytest.raises(ConfigError):
        Scorecard("won", card.attributes, [("A", 10), ("B", 40)])


# ---------------------------------------------------------------------------------------------
# Scoring messy leads


def test_messy_rows_are_scored_neutral_flagged_and_kept(scorecard):
    leads = pd.DataFrame(
        {
            "industry": ["FinTech", "Aerospace", None, "  fintech ", "", "SaaS", "Retail"],
            "employees": ["1,200", "250", "", "-40", "abc", "51-200", None],
            "annual_revenue": ["$3.4M", 2e7, np.nan, "12k", "5000000", "N/A", 1e7],
        },
        index=pd.Index(["z", "y", "x", "w", "v", "u", "t"], name="lead_id"),
    )
    scored = scorecard.score(leads, points=True)
    assert len(scored) == len(leads)
    assert scored.index.equals(leads.index)
    assert scored["fit_score"].between(0, 100).all()
    flags = scored["flags"]
    assert "industry 'Aerospace' unseen in training: scored neutral" in flags["y"]
    assert "employees missing: scored neutral" in flags["x"]
    assert "industry missing: scored neutral" in flags["x"]
    assert "employees negative (-40): treated as missing, scored neutral" in flags["w"]
    assert "employees 'abc' is not a number: scored neutral" in flags["v"]
    assert "employees '51-200' is a range: scored at its lower end 51" in flags["u"]
    assert "annual_revenue missing" in flags["u"]
    # The crm column is absent: every row says so, and scores neutral on it.
    assert all("crm not provided: scored neutral" in f for f in flags)
    neutral = {a.name: a.neutral for a in scorecard.attributes}
    assert (scored["points_crm"] == neutral["crm"]).all()
    for lead, name in [("y", "industry"), ("x", "employees"), ("w", "employees")]:
        assert scored.loc[lead, f"points_{name}"] == neutral[name]
    # Text numbers and case / spacing differences score like clean values.
    clean = scorecard.score(
        pd.DataFrame({"industry": ["FinTech"], "employees": [1200], "annual_revenue": [3.4e6]}),
        points=True,
    )
    for column in ("points_industry", "points_employees", "points_annual_revenue"):
        assert scored.loc["z", column] == clean[column].iloc[0]
    assert scored.loc["w", "points_industry"] == clean["points_industry"].iloc[0]
    assert "industry" not in flags["w"]


def test_reasons_are_words_with_signed_points(scorecard):
    lead = extreme_lead(scorecard, best=True)
    best = scorecard.score(pd.DataFrame([lead]), max_reasons=10).iloc[0]
    industry = attribute(scorecard, "industry")
    fintech = industry.points[industry.labels.index("FinTech")] - industry.neutral
    assert f"industry = FinTech (+{fintech})" in best["reasons_positive"]
    assert best["reasons_negative"] == ""
    worst = scorecard.score(pd.DataFrame([extreme_lead(scorecard, best=False)])).iloc[0]
    assert "crm = None (-" in worst["reasons_negative"]
    assert len(worst["reasons_negative"].split("; ")) == 3
    assert best["flags"] == "" and worst["flags"] == ""


def test_reasons_match_the_points_row_by_row(scorecard, training):
    scored = scorecard.score(training.head(300), points=True, max_reasons=10)
    for _, row in scored.iterrows():
        listed = row["reasons_positive"] + "; " + row["reasons_negative"]
        for a in scorecard.attributes:
            deviation = row[f"points_{a.name}"] - a.neutral
            assert (f"({deviation:+d})" in listed) or deviation == 0


def test_scoring_empty_and_duplicate_index(scorecard, training):
    assert len(scorecard.score(training.iloc[:0])) == 0
    doubled = pd.concat([training.head(3), training.head(3)])
    scored = scorecard.score(doubled)
    assert scored.index.equals(doubled.index)
    assert scored["fit_score"].iloc[:3].tolist() == scored["fit_score"].iloc[3:].tolist()


def test_rules_hook_appends_columns(scorecard, training):
    leads = training.head(5)
    scored = scorecard.score(
        leads, rules=lambda rows: pd.DataFrame({"excluded": rows["crm"] == "None"})
    )
    assert scored["excluded"].tolist() == (leads["crm"] == "None").tolist()
    with pytest.raises(DataError):
        scorecard.score(leads, rules=lambda rows: pd.DataFrame({"x": [1]}))


def test_coerce_numeric_reads_text_numbers():
    values, status = coerce_numeric(
        pd.Series(["1,200", "$3.4M", "12k", " 7 ", "51-200", "10,000+", "3,4", "", "n/a", "-5"])
    )
    assert values[:6].tolist() == [1200, 3.4e6, 12000, 7, 51, 10000]
    assert values[9] == -5
    assert status.tolist() == [OK, OK, OK, OK, RANGE, OPEN_RANGE, NOT_A_NUMBER, ABSENT, ABSENT, OK]
    numbers, number_status = coerce_numeric(pd.Series([1.0, np.inf, np.nan]))
    assert number_status.tolist() == [OK, NOT_A_NUMBER, ABSENT]
    assert np.isnan(numbers[1])


# ---------------------------------------------------------------------------------------------
# icp.json round trip


def test_to_dict_round_trip_gives_identical_scores(scorecard, training):
    document = json.loads(json.dumps(scorecard.to_dict(), allow_nan=False))
    assert document["scorecard"]["format"] == 1
    assert document["tiers"][0] == {"name": "Tier 1", "min_score": scorecard.tiers[0][1]}
    employees = next(a for a in document["scorecard"]["attributes"] if a["name"] == "employees")
    assert {"label", "lower", "upper", "points", "n", "rate"} <= set(employees["bins"][1])
    restored = Scorecard.from_dict(document)
    assert restored.to_dict() == scorecard.to_dict()
    pd.testing.assert_frame_equal(restored.score(training), scorecard.score(training))


def test_from_dict_rejects_other_formats(scorecard):
    document = scorecard.to_dict()
    document["scorecard"]["format"] = 2
    with pytest.raises(ConfigError, match="format 2"):
        Scorecard.from_dict(document)
    with pytest.raises(ConfigError):
        Scorecard.from_dict({"statement": "no scorecard here"})


# ---------------------------------------------------------------------------------------------
# Validation


def test_auc_equals_the_pairwise_definition():
    rng = np.random.default_rng(3)
    scores = rng.integers(0, 20, 300).astype(float)  # many ties
    outcome = rng.random(300) < 1 / (1 + np.exp(-(scores - 10) / 4))
    positives, negatives = scores[outcome], scores[~outcome]
    difference = positives[:, None] - negatives[None, :]
    pairwise = ((difference > 0).sum() + 0.5 * (difference == 0).sum()) / difference.size
    assert auc(scores, outcome) == pytest.approx(pairwise, abs=1e-12)
    assert auc(-scores, outcome) == pytest.approx(1 - pairwise, abs=1e-12)


def test_auc_interval_covers_the_truth_about_95_percent():
    rng = np.random.default_rng(4)
    shift = 1.0
    truth = sps.norm.cdf(shift / np.sqrt(2))  # AUC of N(shift, 1) vs N(0, 1)
    covered = 0
    repetitions = 300
    for _ in range(repetitions):
        outcome = rng.random(200) < 0.3
        scores = rng.normal(0, 1, 200) + shift * outcome
        _, low, high = auc_ci(scores, outcome)
        covered += low <= truth <= high
    assert 0.91 <= covered / repetitions <= 0.99


def test_cluster_bootstrap_widens_the_interval_for_repeated_rows():
    rng = np.random.default_rng(5)
    outcome = rng.random(300) < 0.4
    scores = rng.normal(0, 1, 300) + outcome
    repeated_scores, repeated_outcome = np.repeat(scores, 4), np.repeat(outcome, 4)
    account = np.repeat(np.arange(300), 4)
    _, low, high = auc_ci(repeated_scores, repeated_outcome)
    _, cluster_low, cluster_high = auc_ci(
        repeated_scores, repeated_outcome, cluster=account, n_boot=300
    )
    assert (cluster_high - cluster_low) > 1.5 * (high - low)
    assert auc_ci(scores, outcome, cluster=np.arange(300), n_boot=300) == auc_ci(
        scores, outcome, cluster=np.arange(300), n_boot=300
    )


def test_validation_tables_and_verdict(scorecard, holdout):
    deals = holdout[0].assign(acv=lambda d: d["annual_revenue"] / 200)
    result = validate_scorecard(scorecard, deals, "won", value="acv", unit="deals")
    tiers = result.summary
    assert tiers["n"].sum() == len(deals)
    assert (tiers["ci_low"] <= tiers["rate"]).all() and (tiers["rate"] <= tiers["ci_high"]).all()
    assert tiers["rate"].is_monotonic_decreasing
    assert {"value_mean", "value_ci_low", "value_median", "value_n"} <= set(tiers.columns)
    ratios = result.tables["ratios"].set_index("comparison")
    top = ratios.loc["Tier 1 vs Tier 3"]
    assert top["ratio"] > 2 and top["ci_low"] > 1.5
    assert any(
        f.startswith(f"Tier 1 has {top['ratio']:.1f}x the won rate of Tier 3")
        for f in result.findings
    )
    assert any("on the holdout of 4,000 deals" in f for f in result.findings)
    calibration = result.tables["calibration"]
    assert calibration["n"].sum() == len(deals)
    assert np.corrcoef(calibration["mean_score"], calibration["rate"])[0, 1] > 0.9
    exported = json.loads(json.dumps(result.to_dict(), allow_nan=False))
    assert exported["holdout_n"] == 4000 and exported["auc_ci"][0] < exported["auc"]


def test_validation_with_clusters_and_plots(scorecard, holdout):
    deals = holdout[0].assign(account=np.arange(len(holdout[0])) // 3)
    result = validate_scorecard(scorecard, deals, "won", cluster="account", n_boot=200)
    assert result.params["interval"] == "cluster bootstrap"
    assert result.auc_low < result.auc < result.auc_high
    for plot in (plot_calibration, plot_tiers):
        ax = plot(result)
        assert isinstance(ax, plt.Axes)
        if plot is plot_tiers:  # the outcome's rate in words, not "won rate"
            assert ax.get_title() == "Win rate by tier on the holdout (95% CI)"
            assert ax.get_ylabel() == "Win rate"
        plt.close(ax.figure)


def test_a_tier_that_never_won_is_a_clear_difference_not_too_little_evidence(scorecard, holdout):
    deals = holdout[0].assign(account=np.arange(len(holdout[0])) // 3)
    bottom = scorecard.tier_of(scorecard.score(deals, reasons=False)["fit_score"]).codes == 2
    deals["won"] = deals["won"] & ~np.asarray(bottom)
    result = validate_scorecard(scorecard, deals, "won", cluster="account", unit="deals")
    tiers = result.summary.set_index("tier")
    k, n, m = int(tiers.at["Tier 1", "events"]), tiers.at["Tier 1", "n"], tiers.at["Tier 3", "n"]
    lead = (
        f"Tier 1 has the won outcome in {k:,} of {n:,} deals ({k / n:.0%}), Tier 3 in none of "
        f"{m:,} deals on the holdout of 4,000 deals (Fisher's exact test p < 0.001; the rate "
        "ratio is not finite, at least "
    )
    sentence = next(f for f in result.findings if f.startswith("Tier 1 has"))
    assert sentence.startswith(lead) and sentence.endswith("x by its 95% CI).")
    assert not any("Not enough evidence to compare Tier 1" in c for c in result.caveats)
    top = result.tables["ratios"].iloc[0]
    assert top["events_b"] == 0 and top["p_exact"] < 1e-6 and top["ci_low"] > 5


def test_not_enough_evidence_is_kept_for_samples_where_no_split_could_be_clear():
    from icp_research.scoring.scorecard import _ratio_sentence

    row = {
        "group_a": "Tier 1",
        "group_b": "Tier 3",
        "n_a": 10,
        "events_a": 2,
        "n_b": 12,
        "events_b": 0,
        "ratio": np.inf,
        "ci_low": 0.6,
        "ci_high": np.inf,
        "p_exact": 0.195,
        "alpha": 0.05,
    }
    assert _ratio_sentence(row, "won", "on the holdout of 22 deals", "deals") == (
        "Not enough evidence to compare Tier 1 with Tier 3 on the holdout of 22 deals: Tier 1 "
        "has the won outcome in 2 of 10 deals (20%), Tier 3 in none of 12 deals, too few for "
        "any split of them to be a clear difference.",
        False,
    )
    # Six wins in one group of 30 and none in the other is already a clear difference.
    row |= {"events_a": 6, "n_a": 30, "n_b": 30, "ci_low": 1.6634, "p_exact": 0.0237}
    assert _ratio_sentence(row, "won", "on the holdout of 60 deals", "deals") == (
        "Tier 1 has the won outcome in 6 of 30 deals (20%), Tier 3 in none of 30 deals on the "
        "holdout of 60 deals (Fisher's exact test p = 0.024; the rate ratio is not finite, at "
        "least 1.7x by its 95% CI).",
        True,
    )


# ---------------------------------------------------------------------------------------------
# Degenerate data


def test_one_class_outcome_is_not_enough_data(training, scorecard):
    all_won = training.assign(won=True)
    with pytest.raises(NotEnoughData, match="at least 10 of each"):
        fit_scorecard(all_won, "won", categorical=["industry"])
    result = validate_scorecard(scorecard, all_won.head(500), "won")
    assert np.isnan(result.auc)
    assert any("cannot be measured" in c for c in result.caveats)


def test_no_informative_attribute_is_not_enough_data(training):
    with pytest.raises(NotEnoughData, match="noise"):
        fit_scorecard(training, "won", categorical=["noise_category"], numeric=["noise_number"])


def test_outcome_must_be_boolean(training):
    text = training.assign(won=np.where(training["won"], "Yes", "no"))
    card = fit_scorecard(text, "won", categorical=["industry"])
    assert card.training["events"] == int(training["won"].sum())
    with pytest.raises(DataError, match="true/false"):
        fit_scorecard(training.assign(won="maybe"), "won", categorical=["industry"])
    with pytest.raises(DataError, match="not found"):
        fit_scorecard(training, "won", categorical=["segment"])


def test_empty_holdout_is_a_caveat_not_a_crash(scorecard, training):
    result = validate_scorecard(scorecard, training.iloc[:0], "won")
    assert result.n == 0 and np.isnan(result.auc)
    assert any("no rows with a known won" in c for c in result.caveats)


def test_rare_training_levels_score_as_other_and_odd_types_are_read(training):
    deals = training.head(3000).copy()
    deals.loc[deals.index[:4], "industry"] = "Aerospace"
    card = fit_scorecard(deals, "won", categorical=["industry"], numeric=["employees"])
    industry = attribute(card, "industry")
    assert industry.other_members == ["Aerospace"]
    leads = pd.DataFrame(
        {
            "Industry": ["aerospace", "Mining"],
            "employees": pd.array(["2,500", "1e9"], dtype="string"),
        }
    )
    scored = card.score(leads, points=True)
    assert scored["points_industry"].iloc[0] == industry.points[industry.labels.index("(other)")]
    assert "unseen" not in scored["flags"].iloc[0]
    assert "industry 'Mining' unseen in training" in scored["flags"].iloc[1]
    employees = attribute(card, "employees")
    assert (
        scored["points_employees"].iloc[0]
        == employees.points[int(np.searchsorted(employees.edges, 2500, side="right"))]
    )
    assert "above the training range" in scored["flags"].iloc[1]
    assert scored["points_employees"].iloc[1] == employees.points[-1]


def test_a_lead_column_is_found_by_the_name_the_study_gave_its_header():
    from icp_research.scoring.model import find_column

    leads = pd.DataFrame(
        {"Company Type": ["Private", "Public"], "Uses SSO?": ["Yes", "No"], "crm": ["A", "B"]}
    )
    assert find_column(leads, "company_type").tolist() == ["Private", "Public"]
    assert find_column(leads, "uses_sso").tolist() == ["Yes", "No"]
    assert find_column(leads, "CRM").tolist() == ["A", "B"]
    assert find_column(leads, "company") is None


def _one_real_industry(n_accounts: int, seed: int) -> pd.DataFrame:
    """Deals of accounts in twelve industries; only "Financial Services" wins more (2x)."""
    rng = np.random.default_rng(seed)
    industries = ["Financial Services"] + [f"Industry {i:02d}" for i in range(1, 12)]
    account_industry = rng.choice(industries, n_accounts)
    deals_per_account = rng.integers(1, 4, n_accounts)
    account = np.repeat(np.arange(n_accounts), deals_per_account)
    industry = account_industry[account]
    rate = np.where(industry == "Financial Services", 0.40, 0.20)
    return pd.DataFrame(
        {"account": account, "industry": industry, "won": rng.random(account.size) < rate}
    )


def test_levels_that_do_not_differ_from_the_rest_score_alike():
    training = _one_real_industry(3000, seed=11)
    card = fit_scorecard(training, "won", categorical=["industry"], cluster="account")
    industry = attribute(card, "industry")
    points = dict(zip(industry.labels, industry.points, strict=True))
    assert points["Financial Services"] == 100
    noise = {label: p for label, p in points.items() if label != "Financial Services"}
    # One pooled group: the eleven noise industries share their points (they were 0 to 40ish,
    # by each one's own rate, before pooling).
    assert set(noise.values()) == {0}
    assert sorted(industry.evidence["scored_alike"]) == sorted(noise)
    assert industry.evidence["scored_alike_rate"] == pytest.approx(
        training.loc[training["industry"] != "Financial Services", "won"].mean()
    )
    assert any("11 of 12 levels do not differ from one another" in c for c in card.caveats)
    # Industry 02 (17% of 527) looked worse than a rest that held Financial Services (40%):
    # each level is compared with the levels that do not differ, not with the real one.
    assert points["Industry 02"] == 0
    # The holdout: two tiers of leads, Financial Services and the rest; nothing between.
    holdout = _one_real_industry(3000, seed=12)
    scores = card.score(holdout)["fit_score"].to_numpy()
    assert set(np.unique(scores)) == {0, 100}


def test_levels_that_all_differ_keep_their_own_points(scorecard):
    # The planted FinTech ... Manufacturing effects: each level's rate is its own.
    industry = attribute(scorecard, "industry")
    assert "scored_alike" not in industry.evidence or len(industry.evidence["scored_alike"]) < 7
    assert len(set(industry.points)) >= 3


def test_a_level_against_the_pool_is_the_clustered_association_test():
    from icp_research.methods.association import clustered_association_test
    from icp_research.scoring.scorecard import _level_against_pool

    deals = _one_real_industry(400, seed=3)
    codes, labels = pd.factorize(deals["industry"])
    y = deals["won"].to_numpy(float)
    k = len(labels)
    cells, index = np.unique(deals["account"].to_numpy() * k + codes, return_inverse=True)
    n = np.bincount(index).astype(float)
    e = np.bincount(index, weights=y)
    for clusters in (deals["account"].to_numpy(), None):
        cell_cluster = None if clusters is None else cells // k
        p = _level_against_pool(cells % k, n, e, cell_cluster, list(range(k)))
        for j in (0, 5):
            expected = clustered_association_test(y, (codes == j).astype(int), clusters)
            assert p[j] == pytest.approx(expected["p_value"], rel=1e-9)
        # Within a pool without level 0: level 5 against levels 1-4 and 6-11 only.
        rows = codes != 0
        p = _level_against_pool(cells % k, n, e, cell_cluster, list(range(1, k)))
        expected = clustered_association_test(
            y[rows], (codes[rows] == 5).astype(int), None if clusters is None else clusters[rows]
        )
        assert p[5] == pytest.approx(expected["p_value"], rel=1e-9)


def test_rule_edges_keep_the_score_from_contradicting_a_bounded_icp_rule():
    # Company sizes in bands (read at their lower ends); mid-size wins twice as often and the
    # largest fall back. Few deals are at 1,000+, so a trend over all sizes looks monotone and
    # "auto" merges the bins: ">= 51" gets every point, 5,000-employee leads included.
    rng = np.random.default_rng(0)
    edges = np.array([1, 11, 51, 251, 1000, 5000.0])
    rates = np.array([0.15, 0.17, 0.34, 0.38, 0.2, 0.2])
    band = rng.choice(6, 1500, p=[0.22, 0.22, 0.22, 0.2, 0.08, 0.06])
    deals = pd.DataFrame({"employees": edges[band], "won": rng.random(1500) < rates[band]})
    plain = fit_scorecard(deals, "won", numeric=["employees"]).attributes[0]
    assert plain.monotone == "increasing" and plain.labels[-1] == ">= 51"
    assert plain.points[-1] == 100
    # The ICP's rule "51 <= employees < 1,000", found and confirmed: its edges are cut points
    # and the bins stay as the data has them.
    bounded = fit_scorecard(
        deals, "won", numeric=["employees"], rule_edges={"employees": [51.0, 1000.0]}
    )
    attribute = bounded.attributes[0]
    assert attribute.monotone is None and 1000.0 in attribute.edges
    points = dict(zip(attribute.labels, attribute.points, strict=True))
    assert points["251 to < 1,000"] == 100 and points[">= 1,000"] < 40
    assert points["51 to < 251"] > 2 * points[">= 1,000"]
    assert bounded.params["rule_edges"] == {"employees": [51.0, 1000.0]}


def test_a_label_written_as_its_crm_code_or_display_name_scores_as_that_level():
    # HubSpot writes an industry as "Hospital & Health Care" in one export and as its code,
    # HOSPITAL_HEALTH_CARE, in another: one level, not an unseen one.
    rng = np.random.default_rng(3)
    industry = rng.choice(["Hospital & Health Care", "Retail"], 600)
    won = rng.random(600) < np.where(industry == "Retail", 0.2, 0.5)
    card = fit_scorecard(
        pd.DataFrame({"industry": industry, "won": won}), "won", categorical=["industry"]
    )
    leads = pd.DataFrame(
        {"industry": ["Hospital & Health Care", "HOSPITAL_HEALTH_CARE", "hospital and health care"]}
    )
    scored = card.score(leads, points=True)
    assert scored["fit_score"].nunique() == 1 and scored["fit_score"].iloc[0] == 100
    assert not scored["flags"].fillna("").str.contains("unseen").any()
    assert card.score(pd.DataFrame({"industry": ["Health"]}))["flags"].iloc[0] == (
        "industry 'Health' unseen in training: scored neutral"
    )


def test_label_keys_set_aside_case_punctuation_spaces_and_and():
    from icp_research.scoring.model import label_key

    same = ["Hospital & Health Care", "HOSPITAL_HEALTH_CARE", "hospital and health care"]
    assert {label_key(v) for v in same} == {"hospitalhealthcare"}
    assert label_key("Health care") == label_key("Healthcare") == "healthcare"
    assert label_key("Mid-Market") == label_key("Midmarket")
    assert label_key("Retail") != label_key("Real estate")
    assert label_key("-") == "-"
