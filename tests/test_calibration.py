"""Calibrated win probabilities: checked on data whose true probabilities are known."""

from __future__ import annotations

import json

import numpy as np
import pandas as pd
import pytest

from icp_research.errors import DataError
from icp_research.methods.calibration import (
    Calibration,
    band_table,
    evaluate_calibration,
    fit_calibration,
    period_dict,
    pool_adjacent_violators,
)


def _expit(x):
    return 1 / (1 + np.exp(-x))


def _sample(rng, n, truth):
    """Whole-point scores 0-100, their true probabilities and drawn outcomes."""
    scores = np.round(rng.beta(2, 2, n) * 100)
    p = truth(scores)
    return scores, p, (rng.random(n) < p).astype(float)


def _logistic_truth(scores):
    return _expit(-3 + 0.06 * scores)


def _bent_truth(scores):
    # Monotone but not logistic in the score: flat, then a steep rise, then flat.
    return 0.08 + 0.6 * _expit((scores - 60) / 4)


@pytest.mark.parametrize(
    "method, truth", [("logistic", _logistic_truth), ("isotonic", _bent_truth)]
)
def test_calibrated_probabilities_match_the_true_ones_on_a_check_sample(method, truth):
    rng = np.random.default_rng(2026)
    scores, _, won = _sample(rng, 5000, truth)
    calibration = fit_calibration(scores, won, method=method, period=("2025Q1", "2025Q4"))
    assert calibration.usable and calibration.status == "ok"
    check_scores, true_p, check_won = _sample(rng, 5000, truth)
    calibrated = calibration.apply(check_scores)
    ours = evaluate_calibration(calibrated, check_won)
    oracle = evaluate_calibration(true_p, check_won)
    # The Brier score of the calibrated probabilities is within 5% of the true probabilities'.
    assert abs(ours.brier - oracle.brier) <= 0.05 * oracle.brier
    assert 0.8 <= ours.slope <= 1.2
    assert abs(ours.intercept) < 0.15 and abs(ours.in_the_large) < 0.15
    assert ours.observed_expected_ci[0] < 1 < ours.observed_expected_ci[1]
    # Murphy decomposition: reliability - resolution + uncertainty (+ the binning remainder).
    total = ours.reliability - ours.resolution + ours.uncertainty + ours.within_bin
    assert total == pytest.approx(ours.brier, abs=1e-12)
    assert ours.reliability < 0.005 and abs(ours.within_bin) < 0.005
    assert ours.brier < ours.brier_reference
    # Reliability table: predicted vs observed per bin, every bin's interval covers its rate.
    table = ours.table
    assert len(table) >= 5 and table["n"].sum() == 5000
    assert (table["ci_low"] <= table["observed"]).all()
    assert (table["observed"] <= table["ci_high"]).all()
    assert (table["mean_predicted"] - table["observed"]).abs().max() < 0.08


def test_logistic_recovers_the_true_curve_and_isotonic_is_monotone():
    rng = np.random.default_rng(7)
    scores, _, won = _sample(rng, 5000, _logistic_truth)
    logistic = fit_calibration(scores, won)
    assert logistic.method == "logistic"
    assert logistic.intercept == pytest.approx(-3, abs=0.25)
    assert logistic.slope == pytest.approx(0.06, abs=0.005)
    isotonic = fit_calibration(scores, won, method="isotonic")
    grid = np.arange(0, 101)
    steps = isotonic.apply(grid)
    assert np.all(np.diff(steps) >= 0)
    assert np.all(np.diff(isotonic.breakpoints) > 0)
    assert np.all(np.diff(isotonic.probabilities) > 0)
    # Out of range scores take the end steps; missing scores stay missing.
    low, high, missing = isotonic.apply([-5, 500, np.nan])
    assert low == isotonic.probabilities[0] and high == isotonic.probabilities[-1]
    assert np.isnan(missing)


def test_pool_adjacent_violators_matches_scipy():
    from scipy.optimize import isotonic_regression

    rng = np.random.default_rng(3)
    values, weights = rng.random(200), rng.integers(1, 9, 200).astype(float)
    fitted, starts = pool_adjacent_violators(values, weights)
    reference = isotonic_regression(values, weights=weights, increasing=True)
    np.testing.assert_allclose(fitted, reference.x, atol=1e-12)
    np.testing.assert_array_equal(starts, reference.blocks[:-1])
    assert np.all(np.diff(fitted) >= -1e-15)
    assert pool_adjacent_violators([3.0, 1.0, 2.0])[0].tolist() == [2.0, 2.0, 2.0]


@pytest.mark.parametrize("method", ["logistic", "isotonic"])
def test_json_round_trip_is_exact(method):
    rng = np.random.default_rng(11)
    scores, _, won = _sample(rng, 800, _logistic_truth)
    accounts = rng.integers(0, 300, scores.size)
    calibration = fit_calibration(
        scores, won, method=method, cluster=accounts, period=("2025-01-01", "2025-06-30")
    )
    document = calibration.to_dict()
    text = json.dumps(document, allow_nan=False)
    back = Calibration.from_dict(json.loads(text))
    assert back.to_dict() == document
    grid = np.linspace(0, 100, 1001)
    np.testing.assert_array_equal(back.apply(grid), calibration.apply(grid))
    assert document["period"] == {"start": "2025-01-01", "end": "2025-06-30"}
    assert document["n"] == 800 and document["events"] == int(won.sum())
    assert document["clusters"] == np.unique(accounts).size


def test_too_few_outcomes_gives_an_empty_column_and_says_why():
    rng = np.random.default_rng(5)
    scores = rng.integers(0, 101, 400).astype(float)
    won = np.zeros(400)
    won[:6] = 1  # 6 wins: below the minimum of 10
    for method in ("logistic", "isotonic"):
        calibration = fit_calibration(scores, won, method=method)
        assert calibration.status == "too_few_outcomes" and not calibration.usable
        assert "6 with the outcome" in calibration.reason and "at least" in calibration.reason
        assert np.isnan(calibration.apply(scores)).all()
        document = json.loads(json.dumps(calibration.to_dict()))
        assert document["parameters"] == {}
        assert np.isnan(Calibration.from_dict(document).apply([10, 90])).all()
    # Fewer than 50 rows, even with both outcomes present.
    few = fit_calibration(scores[:40], np.tile([0.0, 1.0], 20))
    assert few.status == "too_few_outcomes" and "40 rows" in few.reason
    # Too few outcomes on the check period: no slope, a caveat, but still a Brier score.
    check = evaluate_calibration(np.full(400, 0.02), won)
    assert np.isnan(check.slope) and np.isfinite(check.brier)
    assert any("Too few outcomes" in c for c in check.caveats)


def test_perfect_separation_is_a_failed_calibration_not_a_number():
    scores = np.arange(100, dtype=float)
    won = (scores >= 50).astype(float)
    calibration = fit_calibration(scores, won)
    assert calibration.status == "failed" and "separates" in calibration.reason
    assert np.isnan(calibration.apply([10.0, 90.0])).all()


def test_in_the_large_solves_its_equation_where_irls_would_swing_off():
    # Probabilities near 0% that never happened beside others near 45%: plain IRLS overshoots
    # to about -2.4e15 and stops there, calling it converged.
    groups = [
        (0.000054, 20, 0),
        (0.00006, 48, 0),
        (0.000066, 25, 0),
        (0.000284, 11, 0),
        (0.000313, 8, 0),
        (0.00294, 10, 0),
        (0.00324, 9, 0),
        (0.4325, 8, 10),
        (0.4566, 36, 30),
        (0.4808, 17, 20),
    ]
    p = np.concatenate([[q] * (lost + won) for q, lost, won in groups])
    y = np.concatenate([[0] * lost + [1] * won for _, lost, won in groups])
    check = evaluate_calibration(p, y)
    assert round(check.in_the_large, 4) == 0.1396
    assert [round(v, 3) for v in check.in_the_large_ci] == [-0.216, 0.496]
    shifted = _expit(np.log(p / (1 - p)) + check.in_the_large)
    assert shifted.sum() == pytest.approx(60, abs=1e-6)
    assert round(check.slope, 3) == 1.261
    assert check.caveats == []
    # Without the solved start the GLM swings off, and that is reported as a failed fit.
    from icp_research.methods.calibration import _glm

    results, _, problem = _glm(y.astype(float), np.ones((y.size, 1)), None, np.log(p / (1 - p)))
    assert results is None
    assert problem == "the fit did not converge (its estimates do not fit the outcomes)"


def test_a_check_measure_that_cannot_be_estimated_says_so():
    from icp_research.analyses.blueprint.calibration import FitScoreCalibration
    from icp_research.methods.calibration import CalibrationCheck

    check = CalibrationCheck(n=10, events=1, brier=0.05, expected=1.2)
    result = FitScoreCalibration.__new__(FitScoreCalibration)
    result.summary = check.summary_table()
    cells = result.check_table().set_index("measure")["value (95% CI)"]
    assert cells["calibration-in-the-large"] == "not estimable"
    assert cells["Brier score"] == "0.050"


def test_clustered_deals_widen_the_intervals_not_the_estimates():
    rng = np.random.default_rng(17)
    accounts = np.repeat(np.arange(150), 20)  # 20 deals per account
    scores = np.round(rng.beta(2, 2, accounts.size) * 100)
    account_effect = rng.normal(0, 1.2, 150)[accounts]
    won = (rng.random(accounts.size) < _expit(-3 + 0.06 * scores + account_effect)).astype(float)
    naive = fit_calibration(scores, won)
    robust = fit_calibration(scores, won, cluster=accounts)
    assert robust.cov_type == "cluster" and naive.cov_type == "nonrobust"
    assert robust.slope == pytest.approx(naive.slope, rel=1e-9)
    assert robust.covariance[0][0] > 1.5 * naive.covariance[0][0]
    low, high = robust.interval([50.0])
    assert low[0] < robust.apply([50.0])[0] < high[0]
    check_naive = evaluate_calibration(robust.apply(scores), won)
    check_robust = evaluate_calibration(robust.apply(scores), won, cluster=accounts)
    width = np.subtract(*check_robust.observed_expected_ci[::-1])
    assert width > 1.5 * np.subtract(*check_naive.observed_expected_ci[::-1])
    assert (check_robust.table["ci_high"] - check_robust.table["ci_low"]).mean() > (
        check_naive.table["ci_high"] - check_naive.table["ci_low"]
    ).mean()


def test_drift_is_flagged_when_probabilities_are_too_extreme():
    rng = np.random.default_rng(23)
    scores, _, won = _sample(rng, 4000, _logistic_truth)
    calibration = fit_calibration(scores, won)
    # The world moved: outcomes now depend on the score half as much.
    later = np.round(rng.beta(2, 2, 4000) * 100)
    later_won = (rng.random(4000) < _expit(-1.5 + 0.03 * later)).astype(float)
    check = evaluate_calibration(calibration.apply(later), later_won)
    assert check.slope_ci[1] < 1 and check.drift


def test_band_table_per_tier():
    tiers = np.array(["Tier 1"] * 100 + ["Tier 2"] * 100 + ["Tier 3"] * 50)
    won = np.r_[np.ones(40), np.zeros(60), np.ones(20), np.zeros(80), np.zeros(50)]
    predicted = np.r_[np.full(100, 0.38), np.full(100, 0.22), np.full(50, 0.05)]
    table = band_table(tiers, won, predicted, order=["Tier 1", "Tier 2", "Tier 3", "Tier 4"])
    assert table["group"].tolist() == ["Tier 1", "Tier 2", "Tier 3", "Tier 4"]
    assert table["rate"].tolist()[:3] == [0.4, 0.2, 0.0]
    assert table.loc[3, "n"] == 0 and np.isnan(table.loc[3, "rate"])
    assert table.loc[0, "ci_low"] == pytest.approx(0.3094, abs=1e-3)  # Wilson 40/100
    assert table["mean_predicted"].tolist()[:3] == pytest.approx([0.38, 0.22, 0.05])


def test_periods_are_normalised_and_checked():
    assert period_dict(("2025Q1", "2025Q2")) == {"start": "2025-01-01", "end": "2025-06-30"}
    assert period_dict(pd.Period("2026Q3", "Q")) == {"start": "2026-07-01", "end": "2026-09-30"}
    assert period_dict({"start": "2025-02-01", "end": pd.Timestamp("2025-03-31")}) == {
        "start": "2025-02-01",
        "end": "2025-03-31",
    }
    assert period_dict(None) is None
    with pytest.raises(DataError, match="starts after it ends"):
        period_dict(("2025-06-01", "2025-01-01"))
    with pytest.raises(DataError):
        fit_calibration([1, 2], [0, 1], method="platt")


def _deals(rng, n: int) -> pd.DataFrame:
    industry = rng.choice(["FinTech", "SaaS", "Retail", "Education"], n)
    employees = np.round(np.exp(rng.normal(5.3, 1.3, n)))
    logit = (
        -1.2
        + np.select(
            [industry == "FinTech", industry == "SaaS", industry == "Education"], [1, 0.8, -0.8], 0
        )
        + 0.8 * ((employees >= 100) & (employees < 1000))
    )
    return pd.DataFrame(
        {
            "account_id": rng.integers(0, n // 3, n),
            "industry": industry,
            "employees": employees,
            "closed_at": pd.Timestamp("2025-01-01") + pd.to_timedelta(rng.integers(0, 180, n), "D"),
            "won": rng.random(n) < _expit(logit),
        }
    )


def test_blueprint_calibration_gives_the_icp_json_block_tables_and_diagram(tmp_path):
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    from icp_research.analyses.blueprint.calibration import calibrate_fit_score, plot_reliability
    from icp_research.scoring.model import score_leads
    from icp_research.scoring.schema import icp_problem
    from icp_research.scoring.scorecard import fit_scorecard

    rng = np.random.default_rng(8)
    training, confirmation, latest = _deals(rng, 3000), _deals(rng, 3000), _deals(rng, 2000)
    scorecard = fit_scorecard(
        training, "won", categorical=["industry"], numeric=["employees"], cluster="account_id"
    )
    result = calibrate_fit_score(
        scorecard,
        confirmation,
        latest,
        "won",
        cluster="account_id",
        alpha=0.05,
        fit_period=("2025Q1", "2025Q2"),
        date="closed_at",
    )
    assert result.usable and result.calibration.cov_type == "cluster"
    block = result.to_json()
    assert block["period"] == {"start": "2025-01-01", "end": "2025-06-30"}
    # The check period defaults to the first and last closing date of the check rows.
    assert block["check"]["period"]["start"] >= "2025-01-01"
    assert block["check"]["n"] == 2000 and 0.8 <= block["check"]["slope"] <= 1.2
    assert [t["name"] for t in block["tiers"]] == ["Tier 1", "Tier 2", "Tier 3"]
    assert sum(t["n"] for t in block["tiers"]) == 3000
    rates = [t["rate"] for t in block["tiers"]]
    assert rates == sorted(rates, reverse=True)
    for tier in block["tiers"]:
        assert tier["ci_low"] < tier["mean_probability"] < tier["ci_high"]
    # The block is valid icp.json, and scoring with it fills win_probability.
    document = {"format": 1, **scorecard.to_dict(), "rules": {}, "calibration": block}
    document = json.loads(json.dumps(document))
    assert icp_problem(document) is None
    scored = score_leads(document, latest.drop(columns="won"))
    assert scored["win_probability"].between(0, 1).all()
    assert scored["win_probability"].sum() == pytest.approx(latest["won"].sum(), rel=0.1)
    # Tables and the reliability diagram.
    assert {"reliability", "tiers", "summary"} <= set(result.tables)
    assert set(result.tables["tiers"]["period"]) == {"calibration", "check"}
    assert "calibration slope" in set(result.summary["measure"])
    assert len(result.findings) == 2 and "Tier 1" in result.findings[0]
    ax = plot_reliability(result)
    assert ax.get_title().startswith("Win probability check")
    ax.figure.savefig(tmp_path / "reliability.png")
    assert (tmp_path / "reliability.png").stat().st_size > 1000
    plt.close(ax.figure)


def test_blueprint_calibration_with_too_few_outcomes_says_why():
    from icp_research.analyses.blueprint.calibration import calibrate_fit_score, plot_reliability
    from icp_research.scoring.scorecard import fit_scorecard

    rng = np.random.default_rng(9)
    training = _deals(rng, 2000)
    scorecard = fit_scorecard(training, "won", categorical=["industry"], numeric=["employees"])
    few = _deals(rng, 40)
    result = calibrate_fit_score(scorecard, few, _deals(rng, 500), "won", cluster="account_id")
    assert not result.usable and result.check is None
    block = result.to_json()
    assert block["status"] == "too_few_outcomes" and block["parameters"] == {}
    assert result.caveats[0].startswith("No win probability: too few outcomes to calibrate")
    assert result.summary.empty and result.tables["reliability"].empty
    assert np.isnan(result.tables["tiers"]["mean_probability"]).all()
    ax = plot_reliability(result)
    assert "too few outcomes" in ax.texts[0].get_text()


def test_blueprint_calibration_display_tables():
    from icp_research.analyses.blueprint.calibration import calibrate_fit_score
    from icp_research.scoring.scorecard import fit_scorecard

    rng = np.random.default_rng(8)
    training, confirmation, latest = _deals(rng, 3000), _deals(rng, 3000), _deals(rng, 2000)
    scorecard = fit_scorecard(training, "won", categorical=["industry"], numeric=["employees"])
    result = calibrate_fit_score(scorecard, confirmation, latest, "won")
    tiers = result.tier_table()
    assert list(tiers.columns) == [
        "period",
        "tier",
        "min score",
        "deals",
        "observed (95% CI)",
        "mean win probability",
    ]
    assert tiers["period"].tolist() == ["calibration period"] * 3 + ["latest quarters"] * 3
    assert tiers["observed (95% CI)"].str.fullmatch(r"\d+% \(\d+%–\d+%\)").all()
    check = result.check_table().set_index("measure")["value (95% CI)"]
    assert check["calibration slope"].count("(") == 1
    assert check["Brier score"].startswith("0.2")


def test_no_outcome_in_the_check_period_is_a_ratio_of_zero_with_an_exact_bound():
    """0 deals won of 12 where the probabilities expected 0.6: the blueprint read "observed /
    expected nan, 95% CI nan–nan" and "calibration slope nan"."""
    from scipy import stats as sps

    from icp_research.methods.calibration import evaluate_calibration

    check = evaluate_calibration(np.full(12, 0.05), np.zeros(12))
    assert check.expected == pytest.approx(0.6)
    assert check.observed_expected == 0.0
    # The exact bound: P(0 | mean) = 2.5% at a mean of 3.689.
    assert sps.poisson.cdf(0, check.observed_expected_ci[1] * check.expected) == pytest.approx(
        0.025
    )
    assert check.observed_expected_ci[0] == 0.0
