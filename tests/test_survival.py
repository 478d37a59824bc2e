"""Tests of icp_research.methods.survival: numbers cross-checked against lifelines (a test-only
dependency), degenerate inputs answered in words, and a planted effect recovered."""

from __future__ import annotations

import matplotlib

matplotlib.use("Agg")

import matplotlib.pyplot as plt  # noqa: E402
import numpy as np  # noqa: E402
import pandas as pd  # noqa: E402
import pytest  # noqa: E402

from icp_research.errors import DataError, InputError  # noqa: E402
from icp_research.methods.survival import (  # noqa: E402
    cox_ph,
    durations_from_dates,
    kaplan_meier,
    logrank_test,
    plot_survival,
    restricted_mean,
    time_to_close,
)

lifelines = pytest.importorskip("lifelines")
from lifelines import CoxPHFitter, KaplanMeierFitter  # noqa: E402
from lifelines import statistics as ll_stats  # noqa: E402
from lifelines.utils import restricted_mean_survival_time  # noqa: E402

# ---------------------------------------------------------------------------------------------
# Shared cases


def _exponential_groups(rng, sizes, rates, censor_max, *, round_to=None):
    """Exponential event times per group, uniform censoring; optionally rounded (ties)."""
    times, events, groups = [], [], []
    for name, size, rate in zip("ABCDE", sizes, rates, strict=False):
        event_time = rng.exponential(1 / rate, size)
        censor_time = rng.uniform(0, censor_max, size)
        observed = np.minimum(event_time, censor_time)
        if round_to:
            observed = np.ceil(observed / round_to) * round_to
        times.append(observed)
        events.append(event_time <= censor_time)
        groups += [name] * size
    return np.concatenate(times), np.concatenate(events), np.array(groups, dtype=object)


def _case(name):
    rng = np.random.default_rng({"ties": 1, "heavy": 2, "three": 3, "not_reached": 4}[name])
    if name == "ties":  # integer months: many tied event and censoring times
        return _exponential_groups(rng, [120, 90], [1 / 12, 1 / 20], 40, round_to=1)
    if name == "heavy":  # about 80% censored
        return _exponential_groups(rng, [300, 250], [1 / 600, 1 / 250], 120)
    if name == "three":
        return _exponential_groups(
            rng, [80, 140, 60, 45], [0.05, 0.08, 0.12, 0.05], 60, round_to=0.5
        )
    # B reaches its median; A does not (low hazard, short follow-up)
    return _exponential_groups(rng, [150, 150], [1 / 400, 1 / 20], 90)


CASES = ["ties", "heavy", "three", "not_reached"]


# ---------------------------------------------------------------------------------------------
# Kaplan-Meier against lifelines


@pytest.mark.parametrize("name", CASES)
def test_km_curve_medians_and_intervals_match_lifelines(name):
    time, event, group = _case(name)
    result = kaplan_meier(time, event, groups=group, horizons=None, time_unit="months")
    curve = result.tables["curve"]
    for label in np.unique(group):
        in_group = group == label
        kmf = KaplanMeierFitter().fit(time[in_group], event[in_group])
        ours = curve[curve["group"] == label]
        theirs = kmf.survival_function_.loc[ours["time"]].iloc[:, 0].to_numpy()
        np.testing.assert_allclose(ours["survival"], theirs, atol=1e-6)
        bounds = kmf.confidence_interval_survival_function_.loc[ours["time"]].to_numpy()
        defined = ours["survival"].between(0, 1, inclusive="neither").to_numpy()
        np.testing.assert_allclose(ours["ci_low"][defined], bounds[defined, 0], atol=1e-6)
        np.testing.assert_allclose(ours["ci_high"][defined], bounds[defined, 1], atol=1e-6)
        at_risk = kmf.event_table.loc[ours["time"], "at_risk"].to_numpy()
        np.testing.assert_array_equal(ours["at_risk"], at_risk)
        row = result.summary.set_index("group").loc[label]
        expected_median = kmf.median_survival_time_
        if np.isinf(expected_median):
            assert np.isnan(row["median"])
        else:
            assert row["median"] == pytest.approx(expected_median, abs=1e-6)


def test_cases_cover_what_they_claim():
    time, event, _ = _case("heavy")
    assert 1 - event.mean() > 0.75
    time, _, _ = _case("ties")
    assert len(np.unique(time)) < len(time) / 5
    time, event, group = _case("not_reached")
    summary = kaplan_meier(time, event, groups=group, horizons=None).summary.set_index("group")
    assert np.isnan(summary.loc["A", "median"]) and not np.isnan(summary.loc["B", "median"])


def test_median_when_the_curve_sits_exactly_at_one_half():
    # 4 subjects, events at 1 and 2: S = 0.75, 0.5 -> the median is 2 (first S <= 0.5).
    time, event = np.array([1.0, 2, 3, 4]), np.array([1, 1, 0, 0])
    result = kaplan_meier(time, event, horizons=None)
    kmf = KaplanMeierFitter().fit(time, event)
    assert result.summary.loc[0, "median"] == kmf.median_survival_time_ == 2.0


def test_not_reached_is_said_in_words():
    time, event, group = _case("not_reached")
    result = kaplan_meier(time, event, groups=group, time_unit="days", horizons=[30, 60])
    median_sentence = result.findings[0]
    assert "not reached" in median_sentence and "for A" in median_sentence
    assert any(line.startswith("Retention at 30 days: A ") for line in result.findings)
    assert "log-rank" in result.findings[-1] and "p < 0.001" in result.findings[-1]


# ---------------------------------------------------------------------------------------------
# Log-rank against lifelines


@pytest.mark.parametrize("name", CASES)
def test_logrank_matches_lifelines(name):
    time, event, group = _case(name)
    ours = logrank_test(time, event, group)
    theirs = ll_stats.multivariate_logrank_test(time, group, event)
    assert ours.statistic == pytest.approx(theirs.test_statistic, abs=1e-6)
    assert ours.p_value == pytest.approx(theirs.p_value, abs=1e-6)
    assert ours.df == len(np.unique(group)) - 1
    if ours.df == 1:
        a, b = group == "A", group == "B"
        two = ll_stats.logrank_test(time[a], time[b], event[a], event[b])
        assert ours.statistic == pytest.approx(two.test_statistic, abs=1e-6)


@pytest.mark.parametrize(
    ("ours", "theirs"), [("wilcoxon", "wilcoxon"), ("tarone-ware", "tarone-ware")]
)
def test_weighted_logrank_matches_lifelines(ours, theirs):
    time, event, group = _case("three")
    result = logrank_test(time, event, group, weighting=ours)
    reference = ll_stats.multivariate_logrank_test(time, group, event, weightings=theirs)
    assert result.statistic == pytest.approx(reference.test_statistic, abs=1e-6)


def test_logrank_p_value_is_not_rounded_to_zero():
    rng = np.random.default_rng(7)
    time, event, group = _exponential_groups(rng, [2000, 2000], [1.0, 2.0], 5)
    result = logrank_test(time, event, group)
    assert 0 < result.p_value < 1e-50


def test_logrank_degenerate_inputs_give_reasons_not_errors():
    one_group = logrank_test([1, 2, 3], [1, 0, 1], ["a", "a", "a"])
    assert np.isnan(one_group.p_value) and "two groups" in one_group.caveat
    no_events = logrank_test([1, 2, 3, 4], [0, 0, 0, 0], ["a", "a", "b", "b"])
    assert np.isnan(no_events.p_value) and "no events" in no_events.caveat
    # Group c ends before the first event: it carries no information and is left out.
    early = logrank_test([1, 2, 3, 4, 5, 0.5], [1, 0, 1, 1, 0, 0], list("aabbbc"))
    assert early.ok and early.df == 1 and "c left out" in early.caveat
    expected = ll_stats.logrank_test([1, 2], [3, 4, 5], [1, 0], [1, 1, 0]).test_statistic
    assert early.statistic == pytest.approx(expected, abs=1e-9)


# ---------------------------------------------------------------------------------------------
# Groups and awkward inputs


def test_missing_group_is_its_own_level_and_empty_category_is_reported():
    groups = pd.Categorical(["x", "x", None, "y", "y", None], categories=["x", "y", "z"])
    result = kaplan_meier([1, 2, 3, 4, 5, 6], [1, 0, 1, 1, 0, 0], groups=groups, horizons=None)
    assert result.summary["group"].tolist() == ["x", "y", "z", "(missing)"]
    assert result.summary.set_index("group").loc["z", "n"] == 0
    assert result.summary.set_index("group").loc["(missing)", "n"] == 2
    assert any("No rows for z" in c for c in result.caveats)
    assert set(result.tables["curve"]["group"]) == {"x", "y", "(missing)"}


def test_all_censored_gives_full_retention_in_words():
    result = kaplan_meier([3, 5, 8, 13], [0, 0, 0, 0], horizons=[4])
    row = result.summary.iloc[0]
    assert row["events"] == 0 and np.isnan(row["median"])
    assert row["survival_4_days"] == 1.0
    assert result.tables["curve"].empty
    assert result.findings == [
        "No churn observed among 4 rows: retention is 100% throughout follow-up (up to 13 days)."
    ]


def test_group_with_zero_events_next_to_one_with_events():
    result = kaplan_meier(
        [1, 2, 3, 4, 5, 6], [1, 1, 0, 0, 0, 0], groups=list("aaabbb"), horizons=[2.5]
    )
    summary = result.summary.set_index("group")
    assert summary.loc["b", "survival_2_5_days"] == 1.0
    assert np.isnan(summary.loc["b", "survival_2_5_days_ci_low"])
    assert summary.loc["a", "survival_2_5_days"] == pytest.approx(1 / 3)
    assert result.logrank.ok


def test_horizon_beyond_follow_up_is_missing_not_extrapolated():
    result = kaplan_meier([1, 2, 3, 10], [1, 0, 1, 0], groups=list("aabb"), horizons=[5])
    summary = result.summary.set_index("group")
    assert np.isnan(summary.loc["a", "survival_5_days"])
    assert summary.loc["b", "survival_5_days"] == pytest.approx(0.5)
    assert "a not followed for 5 days" in " ".join(result.findings)


def test_rows_with_missing_or_negative_durations_are_dropped_and_counted():
    result = kaplan_meier([1, np.nan, 3, -2, 5], [1, 1, np.nan, 1, 0], horizons=None)
    assert result.summary.loc[0, "n"] == 2
    assert any("2 rows with a missing duration or event" in c for c in result.caveats)
    assert any("1 rows with a negative" in c for c in result.caveats)


def test_no_rows_is_not_ok_and_plots_empty():
    result = kaplan_meier([np.nan, 2.0], [1, np.nan])
    assert not result.ok and result.summary.empty
    assert "nothing to estimate" in result.caveats[-1]
    ax = plot_survival(result)
    try:
        assert not ax.get_lines()
    finally:
        plt.close(ax.figure)


def test_bad_event_codes_raise_a_data_error():
    with pytest.raises(DataError, match="0/1"):
        kaplan_meier([1, 2, 3], [0, 1, 2])
    with pytest.raises(InputError):
        kaplan_meier([1, 2, 3], [0, 1])


def test_time_spans_and_nullable_flags():
    with pytest.raises(DataError, match="durations_from_dates"):
        kaplan_meier(pd.Series(pd.to_timedelta([1, 2], unit="D")), [1, 0])
    flags = pd.Series([True, False, None, True], dtype="boolean")
    result = kaplan_meier(pd.Series([1, 2, 3, 4], dtype="Int64"), flags, horizons=None)
    assert result.summary.loc[0, "n"] == 3 and result.summary.loc[0, "events"] == 2


def test_auto_horizons_follow_the_time_unit():
    time, event, _ = _case("ties")
    in_days = kaplan_meier(time * 30.4375, event, time_unit="days")
    in_months = kaplan_meier(time, event, time_unit="months")
    for column in ("survival_6_months", "survival_12_months", "survival_24_months"):
        assert in_days.summary.loc[0, column] == pytest.approx(in_months.summary.loc[0, column])
    kmf = KaplanMeierFitter().fit(time, event)
    assert in_months.summary.loc[0, "survival_12_months"] == pytest.approx(
        kmf.predict(12.0), abs=1e-9
    )


def test_survival_at_reads_the_step_function():
    time, event, group = _case("three")
    result = kaplan_meier(time, event, groups=group, horizons=None)
    looked_up = result.survival_at([0.0, 7.25, 20.0], group="B")
    kmf = KaplanMeierFitter().fit(time[group == "B"], event[group == "B"])
    np.testing.assert_allclose(looked_up["survival"], kmf.predict([0.0, 7.25, 20.0]), atol=1e-9)


def test_many_groups_name_only_the_extremes():
    rng = np.random.default_rng(11)
    rates = np.linspace(0.02, 0.2, 12)
    group = rng.integers(0, 12, 3000)
    time = rng.exponential(1 / rates[group])
    result = kaplan_meier(
        np.minimum(time, 30), time < 30, groups=group, time_unit="months", horizons=[6]
    )
    assert len(result.summary) == 12
    assert "Only the groups at both ends of 12" in " ".join(result.findings)


# ---------------------------------------------------------------------------------------------
# Restricted mean, dates, time to close


def test_restricted_mean_matches_lifelines_and_hand_variance():
    time, event, group = _case("three")
    table = restricted_mean(time, event, 20.0, groups=group).set_index("group")
    for label in np.unique(group):
        kmf = KaplanMeierFitter().fit(time[group == label], event[group == label])
        expected = restricted_mean_survival_time(kmf, t=20.0)
        assert table.loc[label, "rmst"] == pytest.approx(expected, abs=1e-6)
    # Hand example: events at 1 and 3 among 4, censored at 2 and 5; horizon 4.
    # S: 1 on [0,1), 0.75 on [1,3), 0.375 on [3,4] -> area 1 + 1.5 + 0.375 = 2.875.
    # Var = A1^2 d/(n(n-d)) + A3^2 d/(n(n-d)) with A1 = 1.875, A3 = 0.375:
    #     = 1.875^2 / 12 + 0.375^2 / 2.
    small = restricted_mean([1, 2, 3, 5], [1, 0, 1, 0], 4.0)
    assert small.loc[0, "rmst"] == pytest.approx(2.875)
    assert small.loc[0, "se"] == pytest.approx(np.sqrt(1.875**2 / 12 + 0.375**2 / 2))
    assert np.isnan(restricted_mean([1, 2], [1, 0], 4.0).loc[0, "rmst"])


def test_durations_from_dates_censor_at_as_of():
    start = pd.to_datetime(["2024-01-01", "2024-01-01", "2024-01-01", "2025-03-01", None])
    end = pd.to_datetime(["2024-01-31", None, "2024-12-31", None, None])
    out = durations_from_dates(start, end, as_of="2024-07-01")
    assert out["duration"].iloc[0] == 30 and out["event"].iloc[0]
    assert out["duration"].iloc[1] == 182 and not out["event"].iloc[1]
    # The end after as_of is the future: censored at as_of.
    assert out["duration"].iloc[2] == 182 and not out["event"].iloc[2]
    assert np.isnan(out["duration"].iloc[3]) and np.isnan(out["duration"].iloc[4])
    months = durations_from_dates(start[:1], end[:1], as_of="2024-07-01", unit="months")
    assert months["duration"].iloc[0] == pytest.approx(30 / 30.4375)


def test_time_to_close_censors_open_deals():
    deals = pd.DataFrame(
        {
            "stage": ["won", "lost", "open", "won", "won", "open"],
            "created_at": pd.to_datetime(
                ["2024-01-01", "2024-01-01", "2024-01-01", "2024-02-01", "2024-02-01", "2024-09-01"]
            ),
            "closed_at": pd.to_datetime(
                ["2024-01-11", "2024-01-21", None, "2024-07-01", None, None]
            ),
            "segment": ["smb", "smb", "smb", "ent", "ent", "ent"],
        }
    )
    result = time_to_close(deals, as_of="2024-06-30", by="segment")
    summary = result.summary.set_index("group")
    # smb: closes at 10 and 20 days, one open censored at 181 days.
    assert summary.loc["smb", "events"] == 2 and summary.loc["smb", "median"] == 20
    # ent: the deal won after as_of is open at as_of; the won deal without a date is not timed.
    assert summary.loc["ent", "n"] == 1 and summary.loc["ent", "events"] == 0
    assert any("created after 2024-06-30" in c for c in result.caveats)
    assert any("no close date" in c for c in result.caveats)
    assert result.summary.columns.str.startswith("survival_30_days").any()
    assert result.findings[0].startswith("Median time to close:")


# ---------------------------------------------------------------------------------------------
# Cox proportional hazards


def _cox_data(seed=5, n=600, hazard_ratio=2.0):
    rng = np.random.default_rng(seed)
    segment = rng.choice(["mid", "smb", "ent"], n, p=[0.5, 0.3, 0.2])
    employees = rng.normal(0, 1, n)
    log_hazard = (
        np.log(hazard_ratio) * (segment == "smb") - 0.4 * (segment == "ent") + 0.3 * employees
    )
    event_time = rng.exponential(1 / (0.05 * np.exp(log_hazard)))
    censor_time = rng.uniform(0, 40, n)
    return pd.DataFrame(
        {
            "months": np.ceil(np.minimum(event_time, censor_time)),  # ties
            "churned": (event_time <= censor_time).astype(int),
            "segment": segment,
            "employees": 500 + 200 * employees,
            "account_id": rng.integers(0, n // 3, n).astype(str),
        }
    )


def test_cox_matches_lifelines_efron():
    data = _cox_data()
    result = cox_ph(
        data, "months", "churned", ["segment", "employees"], reference={"segment": "mid"}
    )
    assert result.fitted
    reference = data.assign(
        smb=(data["segment"] == "smb").astype(float),
        ent=(data["segment"] == "ent").astype(float),
        employees_sd=(data["employees"] - data["employees"].mean()) / data["employees"].std(),
    )[["months", "churned", "smb", "ent", "employees_sd"]]
    fitter = CoxPHFitter().fit(reference, "months", "churned")
    expected = fitter.summary
    ours = result.summary.assign(term=lambda s: s["level"].where(s["level"] != "", "employees_sd"))
    ours = ours.set_index("term")
    for term in ("smb", "ent", "employees_sd"):
        assert ours.loc[term, "hazard_ratio"] == pytest.approx(
            expected.loc[term, "exp(coef)"], rel=1e-4
        )
        assert ours.loc[term, "ci_low"] == pytest.approx(
            expected.loc[term, "exp(coef) lower 95%"], rel=1e-4
        )
        assert ours.loc[term, "ci_high"] == pytest.approx(
            expected.loc[term, "exp(coef) upper 95%"], rel=1e-4
        )
        assert ours.loc[term, "p_value"] == pytest.approx(
            expected.loc[term, "p"], rel=1e-3, abs=1e-12
        )
    assert ours.loc["employees_sd", "per"] == pytest.approx(data["employees"].std())
    assert result.log_likelihood == pytest.approx(fitter.log_likelihood_, rel=1e-6)


def test_cox_default_reference_is_the_largest_level_and_is_listed():
    result = cox_ph(_cox_data(), "months", "churned", ["segment"])
    reference_row = result.summary.iloc[0]  # listed first
    assert reference_row["note"] == "reference"
    assert reference_row["level"] == "mid" and reference_row["hazard_ratio"] == 1.0
    assert set(result.summary["level"]) == {"mid", "smb", "ent"}


def test_cox_planted_hazard_ratio_of_two_is_recovered():
    data = _cox_data(seed=21, n=2000, hazard_ratio=2.0)
    result = cox_ph(
        data,
        "months",
        "churned",
        ["segment", "employees"],
        reference={"segment": "mid"},
        cluster="account_id",
    )
    smb = result.summary.set_index("level").loc["smb"]
    assert smb["ci_low"] < 2.0 < smb["ci_high"]
    assert 1.6 < smb["hazard_ratio"] < 2.5 and smb["significant"]
    assert any("clustered by account_id" in c for c in result.caveats)
    assert any(line.startswith("segment = smb: churn hazard") for line in result.findings)


def test_cox_zero_events_is_a_caveat():
    data = _cox_data().assign(churned=0)
    result = cox_ph(data, "months", "churned", ["segment"])
    assert not result.fitted and result.summary.empty and not result.ok
    assert "no churn events" in result.caveats[-1]


def test_cox_one_event_is_a_caveat():
    data = _cox_data().assign(churned=0)
    data.loc[3, "churned"] = 1
    result = cox_ph(data, "months", "churned", ["employees"])
    assert not result.fitted
    assert "1 churn events; at least 10" in result.caveats[-1]


def test_cox_too_few_events_per_parameter_is_a_caveat():
    data = _cox_data().head(60)
    data["churned"] = 0
    data.loc[data.index[:12], "churned"] = 1
    data["region"] = np.tile(list("abcdef"), 10)
    result = cox_ph(data, "months", "churned", ["region", "employees"])
    assert not result.fitted and "per parameter" in result.caveats[-1]


def test_cox_level_with_no_events_is_left_out_not_infinite():
    data = _cox_data()
    data.loc[data["segment"] == "ent", "churned"] = 0
    result = cox_ph(data, "months", "churned", ["segment", "employees"])
    assert result.fitted
    ent = result.summary.set_index("level").loc["ent"]
    assert np.isnan(ent["hazard_ratio"]) and ent["note"] == "no events: not estimated"
    assert np.isfinite(result.summary["hazard_ratio"].dropna()).all()
    assert any("No churn in segment = ent" in c for c in result.caveats)
    assert result.n == (data["segment"] != "ent").sum()


def test_cox_constant_covariate_is_dropped_with_a_caveat():
    data = _cox_data().assign(plan="pro")
    result = cox_ph(data, "months", "churned", ["segment", "plan"])
    assert result.fitted and "plan" not in set(result.summary["covariate"])
    assert any("plan has a single value" in c for c in result.caveats)


def test_cox_collinear_covariates_are_not_estimated():
    data = _cox_data()
    data["employees_copy"] = data["employees"] * 2 + 1
    result = cox_ph(data, "months", "churned", ["employees", "employees_copy"])
    assert result.fitted
    copy = result.summary.set_index("covariate").loc["employees_copy"]
    assert np.isnan(copy["hazard_ratio"]) and copy["note"].startswith("collinear")


def test_cox_separation_by_a_numeric_covariate_does_not_give_a_bogus_ratio():
    rng = np.random.default_rng(9)
    n = 200
    score = rng.normal(size=n)
    churned = (score > 0).astype(int)
    # Monotone likelihood: whoever churns next always has the highest score still at risk.
    rank = np.empty(n)
    rank[np.argsort(-score)] = np.arange(n)
    months = np.where(churned == 1, 1 + 0.1 * rank, rng.uniform(40, 60, n))
    data = pd.DataFrame({"months": months, "churned": churned, "score": score})
    result = cox_ph(data, "months", "churned", ["score"])
    assert not result.fitted and result.summary.empty
    assert "separation" in result.caveats[-1]
    # Next to a well-behaved covariate: no bogus ratio either way.
    data["segment"] = rng.choice(["a", "b"], n)
    mixed = cox_ph(data, "months", "churned", ["score", "segment"])
    if mixed.fitted:
        assert (mixed.summary["hazard_ratio"].dropna() < 1e3).all()
        assert np.isnan(mixed.summary.set_index("covariate").loc["score", "hazard_ratio"])
    assert any("separation" in c for c in mixed.caveats)


def test_cox_missing_categorical_is_a_level_and_missing_numeric_rows_are_counted():
    data = _cox_data()
    data.loc[:40, "segment"] = None
    data.loc[50:59, "employees"] = np.nan
    result = cox_ph(data, "months", "churned", ["segment", "employees"])
    assert "(missing)" in set(result.summary["level"])
    assert any("10 rows with a missing employees" in c for c in result.caveats)
    assert result.n == len(data) - 10


def test_cox_unknown_column_or_reference_is_an_input_error():
    data = _cox_data()
    with pytest.raises(InputError, match="no column 'industry'"):
        cox_ph(data, "months", "churned", ["industry"])
    with pytest.raises(InputError, match="reference level"):
        cox_ph(data, "months", "churned", ["segment"], reference={"segment": "gov"})


# ---------------------------------------------------------------------------------------------
# Plot


def test_plot_draws_one_step_line_and_band_per_group():
    time, event, group = _case("three")
    result = kaplan_meier(time, event, groups=group)
    ax = plot_survival(result, at_risk=True)
    try:
        assert len(ax.get_lines()) == 4
        assert len(ax.collections) == 4  # interval bands
        labels = [t.get_text() for t in ax.get_legend().get_texts()]
        assert labels[0] == "A (n=80)"
        assert ax.get_ylabel() == "Retention"
        # x axis ends at the longest follow-up, not beyond the data
        assert ax.get_lines()[0].get_xdata()[-1] == result.summary.loc[0, "max_time"]
    finally:
        plt.close(ax.figure)


def test_plot_stays_light_on_many_rows():
    rng = np.random.default_rng(3)
    n = 200_000
    time = np.ceil(rng.exponential(400, n))
    event = rng.uniform(size=n) < 0.3
    result = kaplan_meier(np.minimum(time, 1500), event, groups=rng.integers(0, 3, n))
    assert len(result.tables["curve"]) <= 3 * 1500
    ax = plot_survival(result, ci=False)
    try:
        assert max(len(line.get_xdata()) for line in ax.get_lines()) <= 1502
    finally:
        plt.close(ax.figure)


def test_cox_clustered_intervals_match_lifelines_without_ties():
    # statsmodels' score residuals follow Breslow, so with tied times the robust SEs differ from
    # lifelines' by a few percent; without ties the sandwich estimators agree.
    data = _cox_data(seed=21, n=1000)
    data["months"] -= np.random.default_rng(1).uniform(0, 1, len(data))
    result = cox_ph(
        data, "months", "churned", ["segment"], reference={"segment": "mid"}, cluster="account_id"
    )
    reference = data.assign(
        smb=(data["segment"] == "smb").astype(float), ent=(data["segment"] == "ent").astype(float)
    )[["months", "churned", "smb", "ent", "account_id"]]
    fitter = CoxPHFitter().fit(reference, "months", "churned", cluster_col="account_id")
    ours = result.summary.set_index("level")
    for term in ("smb", "ent"):
        assert ours.loc[term, "ci_low"] == pytest.approx(
            fitter.summary.loc[term, "exp(coef) lower 95%"], rel=1e-4
        )
        assert ours.loc[term, "ci_high"] == pytest.approx(
            fitter.summary.loc[term, "exp(coef) upper 95%"], rel=1e-4
        )


@pytest.mark.parametrize("ties", ["efron", "breslow"])
@pytest.mark.parametrize("continuous", [False, True])
def test_grouped_newton_cox_equals_statsmodels_phreg(ties, continuous):
    from statsmodels.duration.hazard_regression import PHReg

    from icp_research.methods.survival import cox_newton

    rng = np.random.default_rng(17)
    n = 2500
    design = np.column_stack(
        [rng.random(n) < 0.3, rng.random(n) < 0.5, rng.integers(0, 3, n) == 1]
    ).astype(float)
    if continuous:
        design = np.column_stack([design, rng.normal(size=n)])
    linear = design @ np.r_[0.7, -0.4, 0.3, 0.2][: design.shape[1]]
    event_time = np.ceil(rng.exponential(20 * np.exp(-linear)))  # whole months: many ties
    censor = np.ceil(rng.uniform(0, 40, n))
    time, status = np.minimum(event_time, censor), (event_time <= censor).astype(float)
    reference = PHReg(time, design, status, ties=ties).fit()
    coef, se, p_values, loglik = cox_newton(time, status, design, ties=ties)
    np.testing.assert_allclose(coef, reference.params, atol=1e-10)
    np.testing.assert_allclose(se, reference.bse, rtol=1e-9)
    np.testing.assert_allclose(p_values, reference.pvalues, rtol=1e-6, atol=1e-300)
    assert loglik == pytest.approx(reference.llf, rel=1e-12)
