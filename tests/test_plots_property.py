"""Every ``plot_*`` function of the package survives degenerate intervals (property tests).

Reports crashed on real exports when an interval was zero-width, one-sided, inverted or left
out, or when a table had one row or one group ("'yerr' must not contain negative values").
Each plot function found in :mod:`icp_research.analyses`, :mod:`icp_research.methods` and
:mod:`icp_research.scoring` gets a minimal input of its real type, built from generated rows
``(estimate, low, high)``: zero-width, one-sided (a missing or infinite bound), inverted, the
estimate outside its interval, NaN and infinite values, no rows, a single row, one group. The
plot must return an Axes (a Figure where it documents one), draw to a PNG without error and
leave no other figure open.

A new ``plot_*`` function needs a builder below: the discovery test fails until it has one.
"""

from __future__ import annotations

import importlib
import inspect
import math
import pkgutil
from dataclasses import dataclass

import matplotlib
import numpy as np
import pandas as pd
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

matplotlib.use("Agg")

import matplotlib.pyplot as plt  # noqa: E402
from matplotlib.axes import Axes  # noqa: E402
from matplotlib.figure import Figure  # noqa: E402

import icp_research.analyses  # noqa: E402
import icp_research.methods  # noqa: E402
import icp_research.scoring  # noqa: E402
from icp_research.analyses import health  # noqa: E402
from icp_research.analyses.antipatterns import Condition  # noqa: E402
from icp_research.analyses.blueprint import Blueprint, Rule  # noqa: E402
from icp_research.analyses.blueprint.evidence import Evidence  # noqa: E402
from icp_research.analyses.blueprint.samples import Sample  # noqa: E402
from icp_research.analyses.churn import ChurnResult  # noqa: E402
from icp_research.analyses.deals import DealsResult  # noqa: E402
from icp_research.analyses.overview import Overview  # noqa: E402
from icp_research.analyses.patterns import PatternResult  # noqa: E402
from icp_research.analyses.profile import ProfileResult  # noqa: E402
from icp_research.analyses.significance import SignificanceResult  # noqa: E402
from icp_research.methods.predictors import PredictorResult  # noqa: E402
from icp_research.methods.segments import HEATMAP_METRICS, SegmentResult  # noqa: E402
from icp_research.methods.subgroups import SubgroupResult  # noqa: E402
from icp_research.methods.survival import SurvivalResult, kaplan_meier  # noqa: E402
from icp_research.result import Result  # noqa: E402
from icp_research.scoring.scorecard import ScorecardValidation  # noqa: E402

NAN, INF = math.nan, math.inf
PACKAGES = (icp_research.analyses, icp_research.methods, icp_research.scoring)
EXAMPLES = 15


def discover_plots() -> dict[str, object]:
    """``{"module.plot_name": function}`` for every public ``plot_*`` function of the package."""
    found = {}
    for package in PACKAGES:
        for info in pkgutil.iter_modules(package.__path__):
            module = importlib.import_module(f"{package.__name__}.{info.name}")
            modules = [module]
            if info.ispkg:  # an analysis split into modules (blueprint/): named by the package
                modules += [
                    importlib.import_module(f"{module.__name__}.{sub.name}")
                    for sub in pkgutil.iter_modules(module.__path__)
                ]
            for part in modules:
                for name, function in inspect.getmembers(part, inspect.isfunction):
                    if name.startswith("plot_") and function.__module__ == part.__name__:
                        found[f"{info.name}.{name}"] = function
    return found


PLOTS = discover_plots()


# ---------------------------------------------------------------------------------------------
# Generated rows: (estimate, low, high)

_x = st.floats(0.0, 1.5, allow_nan=False)
_d = st.floats(0.0, 1.0, allow_nan=False)
_any = st.one_of(st.floats(-2.0, 5.0, allow_nan=False), st.sampled_from([NAN, INF, -INF, 0.0, 1.0]))
INTERVALS = st.one_of(
    st.builds(lambda x: (x, x, x), _x),  # zero width
    st.builds(lambda x, d: (x, NAN, x + d), _x, _d),  # one-sided: no lower bound
    st.builds(lambda x, d: (x, x - d, NAN), _x, _d),  # one-sided: no upper bound
    st.builds(lambda x, d: (x, x - d, INF), _x, _d),  # one-sided: open upwards
    st.builds(lambda x, d: (x, 0.0, x + d), _x, _d),  # touches zero (log scales)
    st.builds(lambda x, d: (x, x + d, x - d), _x, _d),  # inverted
    st.builds(lambda x, d: (x, x + d, x + 2 * d + 0.01), _x, _d),  # estimate below it
    st.builds(lambda x, d: (x + 2 * d + 0.01, x, x + d), _x, _d),  # estimate above it
    st.just((NAN, NAN, NAN)),
    st.tuples(_any, _any, _any),
)


@dataclass
class Case:
    rows: list  # [(estimate, low, high)], 0 to 4
    one_group: bool

    @property
    def n(self) -> int:
        return len(self.rows)

    def column(self, i: int) -> list[float]:
        return [r[i] for r in self.rows]

    @property
    def estimate(self) -> list[float]:
        return self.column(0)

    @property
    def low(self) -> list[float]:
        return self.column(1)

    @property
    def high(self) -> list[float]:
        return self.column(2)

    def groups(self, prefix: str = "g") -> list[str]:
        return [f"{prefix}0" if self.one_group else f"{prefix}{i % 2}" for i in range(self.n)]

    def labels(self, prefix: str = "level") -> list[str]:
        return [f"{prefix} {i}" for i in range(self.n)]

    def flags(self) -> list[bool]:
        return [i % 2 == 0 for i in range(self.n)]


CASES = st.builds(Case, st.lists(INTERVALS, min_size=0, max_size=4), st.booleans())


def _finite(x, default=0.5) -> float:
    return float(x) if np.isfinite(x) else default


# ---------------------------------------------------------------------------------------------
# Builders: the real input type of each plot, minimal, from a case


def _curve(case: Case) -> SurvivalResult:
    """A Kaplan-Meier result over the case's rows, its band replaced by the case's intervals."""
    if case.n == 0:
        return SurvivalResult(title="no rows")
    durations = [abs(_finite(e)) * 100 for e in case.estimate]
    result = kaplan_meier(durations, case.flags(), groups=case.groups("group "))
    curve = result.tables.get("curve")
    if curve is not None and len(curve):
        curve = curve.copy()
        k = len(curve)
        curve["ci_low"] = [case.low[i % case.n] for i in range(k)]
        curve["ci_high"] = [case.high[i % case.n] for i in range(k)]
        curve["survival"] = [
            e if i % 3 else curve["survival"].iloc[i]
            for i, e in enumerate(case.estimate[j % case.n] for j in range(k))
        ]
        result.tables["curve"] = curve
    return result


def _rates(case: Case, value="rate", low="ci_low", high="ci_high") -> pd.DataFrame:
    return pd.DataFrame(
        {value: case.estimate, low: case.low, high: case.high}, dtype=float
    ).reset_index(drop=True)


def build_blueprint_backtest(case):
    frame = _rates(case).assign(
        quarter=["2026Q1" if case.one_group else f"2026Q{i % 2 + 1}" for i in range(case.n)],
        tier=[f"Tier {i + 1}" if case.one_group else f"Tier {i // 2 + 1}" for i in range(case.n)],
    )
    summary = pd.DataFrame({"event": ["won"] * min(case.n, 1)})
    return (Blueprint(title="t", backtest=frame, backtest_summary=summary),), {}


def build_blueprint_reliability(case):
    from icp_research.analyses.blueprint.calibration import FitScoreCalibration

    table = _rates(case, value="observed").assign(
        mean_predicted=[abs(_finite(e)) % 1 for e in case.estimate], n=[10] * case.n
    )
    return (FitScoreCalibration(title="t", tables={"reliability": table}),), {}


def build_blueprint_rule_lifts(case):
    sample = Sample("won", "deals", "rate", pd.DataFrame(), pd.DataFrame(), True)
    rules = []
    for i, (lift, low, high) in enumerate(case.rows):
        evidence = Evidence(
            sample=sample,
            source="test",
            compared_with="the rest",
            training={"lift": lift, "ci_low": low, "ci_high": high, "p_value": 0.01},
            holdout={"n": 10, "lift": high, "ci_low": low, "ci_high": lift},
            direction=1,
            q_value=0.01,
        )
        kind = "include" if case.one_group or i % 2 == 0 else "exclude"
        condition = Condition("industry", "equals", f"I{i}")
        rules.append(Rule(kind, [condition], "industry", "filter", evidence=[evidence]))
    blueprint = Blueprint(
        title="t",
        include=[r for r in rules if r.kind == "include"],
        exclude=[r for r in rules if r.kind == "exclude"],
    )
    return (blueprint,), {}


class _Card:
    """The part of a fitted scorecard the plot reads (its points table)."""

    outcome = "won"

    def __init__(self, table: pd.DataFrame):
        self._table = table

    def table(self) -> pd.DataFrame:
        return self._table


def build_blueprint_scorecard(case):
    table = pd.DataFrame(
        {
            "attribute": case.groups("attribute "),
            "level": case.labels(),
            "vs_neutral": [e * 20 if np.isfinite(e) else NAN for e in case.estimate],
            "points": [int(_finite(h) * 10) if abs(_finite(h)) < 1e6 else 0 for h in case.high],
        }
    )
    return (Blueprint(title="t", scorecard=_Card(table) if case.n else None),), {}


def _churn(case) -> ChurnResult:
    summary = _rates(case, "churn_rate", "churn_rate_ci_low", "churn_rate_ci_high").assign(
        attribute=case.groups("attribute "),
        level=case.labels(),
        direction=["faster", "slower", None, "faster"][: case.n],
        significant=case.flags(),
    )
    reasons = _rates(case, "share", "share_ci_low", "share_ci_high").assign(
        attribute="all", reason=case.labels("reason"), churned=range(case.n)
    )
    logrank = pd.DataFrame({"attribute": sorted(set(case.groups("attribute "))), "statistic": 1.0})
    curve = _curve(case)
    return ChurnResult(
        title="t",
        summary=summary,
        tables={"churn_reasons": reasons, "logrank": logrank},
        overall={"churn_rate": case.estimate[0] if case.n else NAN},
        overall_curve=curve,
        curves={"attribute 0": curve},
    )


def build_churn_churn_rates(case):
    return (_churn(case),), {}


def build_churn_reasons(case):
    return (_churn(case),), {}


def build_churn_retention(case):
    return (_churn(case),), {"attribute": None if case.one_group else "attribute 0"}


def _deals(case) -> DealsResult:
    rates = _rates(case).assign(
        attribute=case.groups("attribute "),
        level=case.labels(),
        direction=["lower", "higher", None, "lower"][: case.n],
        significant=case.flags(),
        q_value=0.01,
    )
    reasons = _rates(case, "share").assign(
        attribute="all",
        reason=case.labels("reason"),
        lost_deals=range(case.n),
        is_no_decision=case.flags(),
    )
    curve = _curve(case)
    return DealsResult(
        title="t",
        tables={"win_rate_by_attribute": rates, "loss_reasons": reasons},
        overall={"win_rate": {"rate": case.estimate[0] if case.n else NAN}},
        overall_cycle=curve,
        cycle_curves={} if case.one_group else {"size_segment": curve},
    )


def build_deals_cycle(case):
    return (_deals(case),), {}


def build_deals_loss_reasons(case):
    return (_deals(case),), {}


def build_deals_win_rates(case):
    return (_deals(case),), {}


def _health(case) -> health.HealthResult:
    quarters = ["2026Q1"] if case.one_group else ["2026Q1", "2026Q2"]
    rows = []
    for i, (value, low, high) in enumerate(case.rows):
        for metric in ("win_rate", "acv", "icp_share_new_customers", "icp_share_new_pipeline"):
            rows.append(
                {
                    "metric": metric,
                    "group": health.ICP if i % 2 == 0 or case.one_group else health.NON_ICP,
                    "quarter": quarters[(i // 2) % len(quarters)],
                    "value": value,
                    "ci_low": low,
                    "ci_high": high,
                    "flag": "worse" if i % 3 == 0 else "no_difference",
                }
            )
    summary = pd.DataFrame(
        rows, columns=["metric", "group", "quarter", "value", "ci_low", "ci_high", "flag"]
    )
    summary = summary.drop_duplicates(["metric", "group", "quarter"])
    drift = pd.DataFrame(
        {
            "attribute": case.labels("attribute"),
            "population": health.NEW_CUSTOMERS,
            "quarter": quarters[-1],
            "previous_quarter": "2025Q4",
            "psi": case.estimate,
            "band": ["stable", "moderate shift", "large shift", "stable"][: case.n],
            "n": 10,
            "n_previous": 10,
            "p_value": case.low,
            "q_value": case.high,
            "largest_change": "",
        },
        columns=health.DRIFT_COLUMNS,
    )
    return health.HealthResult(
        title="t", summary=summary, tables={"drift": drift}, quarter=quarters[-1], quarters=quarters
    )


def build_health_drift(case):
    return (_health(case),), {}


def build_health_health_trends(case):
    return (_health(case),), {}


def build_health_icp_share(case):
    return (_health(case),), {}


def _overview(case) -> Overview:
    completeness = pd.DataFrame(
        {"attribute": case.labels("attribute"), "filled_share": case.estimate}
    )
    per_quarter = pd.DataFrame(
        {
            "quarter": ["2026Q1" if case.one_group else f"2026Q{i % 4 + 1}" for i in range(case.n)],
            "rows": [_finite(e) * 100 for e in case.estimate],
            "table": case.groups("table "),
        }
    )
    return Overview(title="t", tables={"completeness": completeness, "per_quarter": per_quarter})


def build_overview_completeness(case):
    return (_overview(case),), {}


def build_overview_per_quarter(case):
    return (_overview(case),), {}


def _lifts(case) -> pd.DataFrame:
    return _rates(case, "lift", "lift_ci_low", "lift_ci_high").assign(
        significant=case.flags(), description=case.labels("subgroup")
    )


def build_patterns_subgroup_lifts(case):
    summary = _lifts(case).assign(target=case.groups("target "))
    return (PatternResult(title="t", summary=summary),), {}


def build_profile_profile(case):
    summary = _lifts(case).assign(
        attribute=case.groups("attribute "),
        level=case.labels(),
        q_value=case.high,
        share_best=case.estimate,
        share_rest=case.low,
    )
    return (ProfileResult(title="t", summary=summary),), {}


def _effects(case) -> pd.DataFrame:
    return _rates(case, "effect").assign(
        predictor=case.groups("predictor "),
        level=case.labels(),
        kind=["level", "bin", "trend", "level"][: case.n],
        outcome="won" if case.one_group else ["won", "retained", "won", "best_customer"][: case.n],
        effect_type=["odds_ratio", "odds_ratio", "rate_diff", "odds_ratio"][: case.n],
        std_effect=[np.log(abs(_finite(e)) + 0.1) for e in case.estimate],
        significant=[True] * case.n,
    )


def build_significance_replication(case):
    summary = _effects(case).assign(
        hypothesis_id=case.labels("h"),
        replicated=case.flags(),
        effect_confirm=case.high,
        ci_low_confirm=case.estimate,
        ci_high_confirm=case.low,
    )
    return (SignificanceResult(title="t", summary=summary),), {"outcome": "won"}


def build_predictors_forest(case):
    return (PredictorResult(title="t", summary=_effects(case)),), {}


def build_voc_committee(case):
    summary = _rates(case, "win_rate", "win_rate_ci_low", "win_rate_ci_high").assign(
        label=case.groups("signal "), level=case.labels(), significant=case.flags()
    )
    return (Result(title="t", summary=summary),), {}


def build_voc_theme_shares(case):
    frequencies = _rates(case, "share").assign(
        segment_by="all",
        source=["feedback"] * case.n if case.one_group else case.groups("source "),
        theme=case.labels("theme"),
        label=case.labels("theme"),
    )
    return (Result(title="t", tables={"frequencies": frequencies}),), {}


def build_segments_segment_heatmap(case):
    if case.n == 0:
        return (SegmentResult(title="t"),), {}
    frame = {"segmentation": ["all"] + ["rule"] * (case.n - 1), "segment": case.labels("s")}
    for i, (column, _, _) in enumerate(HEATMAP_METRICS):
        frame[column] = [case.rows[j][i % 3] for j in range(case.n)]
    return (SegmentResult(title="t", summary=pd.DataFrame(frame)),), {}


def build_segments_silhouette(case):
    silhouette = pd.DataFrame(
        {
            "method": ["kmeans"] * case.n if case.one_group else case.groups("m"),
            "k": [i + 2 for i in range(case.n)],
            "silhouette": case.estimate,
            "chosen": case.flags(),
        }
    )
    return (SegmentResult(title="t", tables={"silhouette": silhouette}),), {}


def build_subgroups_subgroups(case):
    summary = _lifts(case).assign(n=range(case.n), baseline_rate=case.low, target="won")
    return (SubgroupResult(title="t", summary=summary),), {}


def build_survival_survival(case):
    return (_curve(case),), {"at_risk": not case.one_group}


def build_scorecard_calibration(case):
    calibration = _rates(case).assign(
        mean_score=[_finite(e) * 60 for e in case.estimate], predicted_rate=case.low
    )
    return (ScorecardValidation(title="t", tables={"calibration": calibration}, n=case.n),), {}


def build_scorecard_tiers(case):
    summary = _rates(case).assign(tier=case.labels("Tier"), n=range(case.n))
    return (ScorecardValidation(title="t", summary=summary, n=case.n),), {}


BUILDERS = {
    "blueprint.plot_backtest": build_blueprint_backtest,
    "blueprint.plot_reliability": build_blueprint_reliability,
    "blueprint.plot_rule_lifts": build_blueprint_rule_lifts,
    "blueprint.plot_scorecard": build_blueprint_scorecard,
    "churn.plot_churn_rates": build_churn_churn_rates,
    "churn.plot_reasons": build_churn_reasons,
    "churn.plot_retention": build_churn_retention,
    "deals.plot_cycle": build_deals_cycle,
    "deals.plot_loss_reasons": build_deals_loss_reasons,
    "deals.plot_win_rates": build_deals_win_rates,
    "health.plot_drift": build_health_drift,
    "health.plot_health_trends": build_health_health_trends,
    "health.plot_icp_share": build_health_icp_share,
    "overview.plot_completeness": build_overview_completeness,
    "overview.plot_per_quarter": build_overview_per_quarter,
    "patterns.plot_subgroup_lifts": build_patterns_subgroup_lifts,
    "profile.plot_profile": build_profile_profile,
    "significance.plot_replication": build_significance_replication,
    "voc.plot_committee": build_voc_committee,
    "voc.plot_theme_shares": build_voc_theme_shares,
    "predictors.plot_forest": build_predictors_forest,
    "segments.plot_segment_heatmap": build_segments_segment_heatmap,
    "segments.plot_silhouette": build_segments_silhouette,
    "subgroups.plot_subgroups": build_subgroups_subgroups,
    "survival.plot_survival": build_survival_survival,
    "scorecard.plot_calibration": build_scorecard_calibration,
    "scorecard.plot_tiers": build_scorecard_tiers,
}

# Multi-panel plots document that they return the Figure; every other plot returns its Axes.
RETURNS_FIGURE = {"health.plot_health_trends"}


# ---------------------------------------------------------------------------------------------
# The tests


def test_every_plot_function_is_discovered_and_has_a_builder():
    assert len(PLOTS) >= 20
    assert set(PLOTS) == set(BUILDERS), "a plot_* function without a builder, or a stale one"


def _draw(name: str, case: Case) -> None:
    args, kwargs = BUILDERS[name](case)
    before = set(plt.get_fignums())
    out = PLOTS[name](*args, **kwargs)
    if name in RETURNS_FIGURE:
        assert isinstance(out, Figure), type(out)
        figure = out
    else:
        assert isinstance(out, Axes), type(out)
        figure = out.figure
    opened = set(plt.get_fignums()) - before
    assert opened <= {figure.number}, "a plot opened a figure it does not return"
    figure.set_dpi(12)
    figure.canvas.draw()  # what saving it into a report does
    plt.close(figure)
    assert set(plt.get_fignums()) == before


@pytest.mark.parametrize("name", sorted(BUILDERS))
def test_plot_survives_degenerate_intervals(name):
    @settings(
        max_examples=EXAMPLES,
        deadline=None,
        derandomize=True,
        database=None,
        suppress_health_check=[HealthCheck.too_slow],
    )
    @given(case=CASES)
    def check(case):
        try:
            _draw(name, case)
        finally:
            plt.close("all")

    check()


@pytest.mark.parametrize("name", sorted(BUILDERS))
def test_plot_draws_on_a_given_axes(name):
    """With ``ax`` given, a plot draws there and opens no figure of its own."""
    if "ax" not in inspect.signature(PLOTS[name]).parameters:
        pytest.skip("draws its own panels")
    case = Case([(0.3, 0.2, 0.4), (0.5, 0.5, 0.5)], one_group=False)
    args, kwargs = BUILDERS[name](case)
    figure, ax = plt.subplots()
    out = PLOTS[name](*args, **kwargs, ax=ax)
    assert out is ax and plt.get_fignums() == [figure.number]
    plt.close(figure)
