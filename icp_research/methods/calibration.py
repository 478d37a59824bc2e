"""Calibrated probabilities for a 0-100 score: fit, store, apply and check them.

A fit score ranks leads; a sales forecast needs a probability. :func:`fit_calibration` learns a
monotone map from the score to the probability of the outcome on rows whose outcome is known (a
period that played no part in choosing the score's attributes), :meth:`Calibration.apply` turns
new scores into probabilities, and :func:`evaluate_calibration` checks the probabilities on a
later period.

Methods
-------
``logistic`` (the default)
    ``logit(p) = intercept + slope * score``, a binomial GLM (statsmodels). The fit score is
    built on a log-odds scale (each point is a fixed share of the fitted log-odds range), so a
    straight line on the logit scale is the right shape by construction; two parameters are
    stable with a few dozen outcomes of each kind. With ``cluster`` (the account of each deal)
    the standard errors are cluster-robust (sandwich), so an account with many deals counts
    as one account's worth of evidence; the point estimates do not change.
``isotonic``
    The non-decreasing step function closest to the observed outcomes (pool-adjacent-violators,
    weighted by the rows at each distinct score; scipy's ``isotonic_regression`` when scipy has
    it), stored as breakpoints: the score where each step starts and its probability. It bends
    where the data bends but needs several hundred outcomes to be steady, and its steps at the
    ends can be 0% or 100%. Use it when the reliability diagram of the logistic calibration shows
    a clear curve. ``cluster`` does not change an isotonic fit (it is recorded only).

Too few outcomes
----------------
Below :data:`MIN_ROWS` rows, :data:`MIN_EVENTS` rows with the outcome or :data:`MIN_NON_EVENTS`
without it, no calibration is fitted: :func:`fit_calibration` returns a :class:`Calibration`
whose ``status`` is ``too_few_outcomes``, whose ``reason`` says why in one sentence and whose
:meth:`~Calibration.apply` gives NaN for every score -- never a number. A fit that cannot give
probabilities (the score separates won from lost perfectly) has ``status`` ``failed``.

The stored form (:meth:`Calibration.to_dict`, the ``calibration`` block of ``icp.json``)
----------------------------------------------------------------------------------------
``format`` (1), ``method`` (``logistic`` / ``isotonic``), ``status`` (``ok``,
``too_few_outcomes``, ``failed``), ``reason`` (why not ``ok``; '' when ok), ``outcome`` and
``score`` (what is predicted from what), ``period`` (``{"start", "end"}``, YYYY-MM-DD: the rows'
dates), ``n``, ``events``, ``clusters`` (accounts, or null), ``minimum`` (``rows``, ``events``,
``non_events``: the thresholds above), ``parameters`` (logistic: ``intercept``, ``slope``,
``covariance`` of the two and ``cov_type`` -- ``cluster`` or ``nonrobust``; isotonic:
``breakpoints`` (increasing scores) and ``probabilities`` (non-decreasing); empty when not ok)
and ``caveats``. The document is plain JSON; reading it back (:meth:`Calibration.from_dict`)
gives exactly the same probabilities, and applying it needs neither scipy nor statsmodels.

Checking (:func:`evaluate_calibration`)
---------------------------------------
On a check period: the Brier score (mean squared difference between probability and outcome,
0 is perfect) and its Murphy decomposition over probability bins, ``reliability - resolution +
uncertainty`` (the small remainder from binning is ``within_bin``); the calibration slope and
intercept (logistic regression of the outcome on ``logit(p)``: slope 1 and intercept 0 when the
probabilities are right; slope below 1 means they are too extreme); calibration-in-the-large (the
intercept with the slope fixed at 1) and the observed / expected ratio of outcomes; and a
reliability table (mean predicted vs observed rate per bin, with Wilson intervals -- on the
effective sample size when rows cluster in accounts). Every interval is cluster-robust when
``cluster`` is given.
"""

from __future__ import annotations

import math
import warnings
from dataclasses import dataclass, field

import numpy as np
import pandas as pd

from icp_research.errors import DataError

__all__ = [
    "DEFAULT_METHOD",
    "METHODS",
    "MIN_EVENTS",
    "MIN_NON_EVENTS",
    "MIN_ROWS",
    "Calibration",
    "CalibrationCheck",
    "band_table",
    "evaluate_calibration",
    "fit_calibration",
    "period_dict",
    "pool_adjacent_violators",
]

#: Calibration methods: a logistic curve in the score, or an isotonic step function.
METHODS = ("logistic", "isotonic")
DEFAULT_METHOD = "logistic"
#: Statuses of a calibration: usable, not fitted for lack of outcomes, or not fitted at all.
STATUSES = ("ok", "too_few_outcomes", "failed")
#: Fewest rows with the outcome, rows without it, and rows in all, to fit a calibration.
MIN_EVENTS = 10
MIN_NON_EVENTS = 10
MIN_ROWS = 50
FORMAT = 1
#: Probabilities are kept this far from 0 and 1 before taking their logit.
_EPS = 1e-6


# ---------------------------------------------------------------------------------------------
# Inputs


def _pairs(scores, outcome, cluster=None):
    """Scores, outcomes (0/1) and clusters of the rows where score and outcome are known."""
    x = np.asarray(scores, dtype=float).ravel()
    y = np.asarray(outcome, dtype=float).ravel()
    if x.shape != y.shape:
        raise DataError(f"scores ({x.size}) and outcome ({y.size}) differ in length")
    bad = ~np.isnan(y) & ~np.isin(y, (0.0, 1.0))
    if bad.any():
        raise DataError("the outcome must be true/false (1/0)")
    keep = ~np.isnan(x) & ~np.isnan(y)
    groups = None
    if cluster is not None:
        groups = np.asarray(cluster, dtype=object).ravel()
        if groups.shape != x.shape:
            raise DataError(f"cluster ({groups.size}) and scores ({x.size}) differ in length")
        keep &= ~pd.isna(groups)
        groups = pd.factorize(groups[keep])[0]
    return x[keep], y[keep], groups


def _iso_day(value, end: bool) -> str:
    if isinstance(value, pd.Period):
        stamp = value.end_time if end else value.start_time
    elif isinstance(value, str) and value.strip().upper().replace("-", "")[4:5] == "Q":
        quarter = pd.Period(value.strip().upper().replace("-", ""), "Q")
        stamp = quarter.end_time if end else quarter.start_time
    else:
        stamp = pd.Timestamp(value)
    if pd.isna(stamp):
        raise DataError(f"a period bound must be a date, not {value!r}")
    return stamp.strftime("%Y-%m-%d")


def period_dict(period) -> dict | None:
    """``{"start": "YYYY-MM-DD", "end": "YYYY-MM-DD"}`` from a dict, a ``(start, end)`` pair of
    dates, timestamps or quarter labels ('2026Q1': its first day as a start, its last as an
    end), or a single quarter; None stays None. DataError when start is after end."""
    if period is None:
        return None
    if isinstance(period, dict):
        start, end = period.get("start"), period.get("end")
    elif isinstance(period, pd.Period | str):
        start = end = period
    else:
        start, end = period
    try:
        out = {"start": _iso_day(start, end=False), "end": _iso_day(end, end=True)}
    except (TypeError, ValueError) as error:
        raise DataError(f"period {period!r} is not a pair of dates ({error})") from None
    if out["start"] > out["end"]:
        raise DataError(f"period starts after it ends: {out}")
    return out


# ---------------------------------------------------------------------------------------------
# Isotonic regression


def pool_adjacent_violators(values, weights=None) -> tuple[np.ndarray, np.ndarray]:
    """Weighted least-squares non-decreasing fit of ``values`` (in their order).

    Returns ``(fitted, starts)``: the fitted value of every input and the index where each block
    of equal fitted values starts. Pool-adjacent-violators with a stack of blocks, O(n).
    """
    y = np.asarray(values, dtype=float)
    w = np.ones_like(y) if weights is None else np.asarray(weights, dtype=float)
    if y.size == 0:
        return y.copy(), np.zeros(0, dtype=np.int64)
    means: list[float] = []
    totals: list[float] = []
    starts: list[int] = []
    for i in range(y.size):
        means.append(float(y[i]))
        totals.append(float(w[i]))
        starts.append(i)
        # Merge while the last block is below the one before it (a violation).
        while len(means) > 1 and means[-2] > means[-1]:
            mean, total = means.pop(), totals.pop()
            starts.pop()
            merged = totals[-1] + total
            means[-1] = (means[-1] * totals[-1] + mean * total) / merged
            totals[-1] = merged
    fitted = np.empty_like(y)
    bounds = [*starts, y.size]
    for k, mean in enumerate(means):
        fitted[bounds[k] : bounds[k + 1]] = mean
    return fitted, np.asarray(starts, dtype=np.int64)


def _isotonic(values: np.ndarray, weights: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    try:
        from scipy.optimize import isotonic_regression  # scipy >= 1.12
    except ImportError:  # pragma: no cover - older scipy
        return pool_adjacent_violators(values, weights)
    fit = isotonic_regression(values, weights=weights, increasing=True)
    return np.asarray(fit.x, dtype=float), np.asarray(fit.blocks[:-1], dtype=np.int64)


# ---------------------------------------------------------------------------------------------
# The calibration


def _finite(value) -> bool:
    return isinstance(value, int | float) and not isinstance(value, bool) and math.isfinite(value)


@dataclass
class Calibration:
    """A map from a 0-100 score to the probability of the outcome (see the module docstring).

    Build one with :func:`fit_calibration`; keep it with :meth:`to_dict`; read it back with
    :meth:`from_dict`; :meth:`apply` gives probabilities (NaN for every score when
    :attr:`usable` is False).
    """

    method: str = DEFAULT_METHOD
    status: str = "ok"
    reason: str = ""
    outcome: str | None = None
    score: str = "fit_score"
    period: dict | None = None
    n: int = 0
    events: int = 0
    clusters: int | None = None
    intercept: float | None = None
    slope: float | None = None
    covariance: list | None = None
    cov_type: str | None = None
    breakpoints: list = field(default_factory=list)
    probabilities: list = field(default_factory=list)
    caveats: list = field(default_factory=list)
    minimum: dict = field(
        default_factory=lambda: {
            "rows": MIN_ROWS,
            "events": MIN_EVENTS,
            "non_events": MIN_NON_EVENTS,
        }
    )

    def __post_init__(self):
        if self.method not in METHODS:
            raise DataError(f"calibration method {self.method!r}; expected one of {METHODS}")
        if self.status not in STATUSES:
            raise DataError(f"calibration status {self.status!r}; expected one of {STATUSES}")

    @property
    def usable(self) -> bool:
        """True when :meth:`apply` gives probabilities (status ``ok`` and parameters present)."""
        if self.status != "ok":
            return False
        if self.method == "logistic":
            return _finite(self.intercept) and _finite(self.slope)
        return len(self.breakpoints) > 0 and len(self.breakpoints) == len(self.probabilities)

    def apply(self, scores) -> np.ndarray:
        """Probability of the outcome (0-1) at each score; NaN where the score is missing and
        everywhere when the calibration is not usable."""
        x = np.asarray(scores, dtype=float)
        if not self.usable:
            return np.full(x.shape, np.nan)
        if self.method == "logistic":
            eta = self.intercept + self.slope * x
            with np.errstate(over="ignore"):
                return 1.0 / (1.0 + np.exp(-eta))
        edges = np.asarray(self.breakpoints, dtype=float)
        probs = np.asarray(self.probabilities, dtype=float)
        position = np.clip(np.searchsorted(edges, x, side="right") - 1, 0, edges.size - 1)
        return np.where(np.isnan(x), np.nan, probs[position])

    def interval(self, scores, alpha: float = 0.05) -> tuple[np.ndarray, np.ndarray]:
        """Pointwise confidence interval of the calibrated probability (logistic only: delta
        method on the logit scale, cluster-robust when fitted with clusters); NaN otherwise."""
        from scipy import stats as sps

        x = np.asarray(scores, dtype=float)
        if not self.usable or self.method != "logistic" or self.covariance is None:
            return np.full(x.shape, np.nan), np.full(x.shape, np.nan)
        cov = np.asarray(self.covariance, dtype=float)
        eta = self.intercept + self.slope * x
        se = np.sqrt(np.maximum(cov[0, 0] + 2 * x * cov[0, 1] + x**2 * cov[1, 1], 0.0))
        z = sps.norm.ppf(1 - alpha / 2)
        return 1 / (1 + np.exp(-(eta - z * se))), 1 / (1 + np.exp(-(eta + z * se)))

    def describe(self) -> str:
        """One sentence: the map, or why there is none."""
        if not self.usable:
            return f"No win probability: {self.reason or 'no usable calibration'}."
        where = ""
        if self.period:
            where = f" on {self.period['start']} to {self.period['end']}"
        fitted = f"{self.n:,} rows, {self.events:,} with the outcome{where}"
        if self.method == "logistic":
            at = self.apply(np.array([0.0, 50.0, 100.0]))
            return (
                f"Logistic calibration ({fitted}): {at[0]:.0%} at score 0, {at[1]:.0%} at 50, "
                f"{at[2]:.0%} at 100."
            )
        return f"Isotonic calibration ({fitted}): {len(self.breakpoints)} steps."

    # -- serialisation ---------------------------------------------------------------------------

    def to_dict(self) -> dict:
        """The plain-JSON form (see the module docstring)."""
        if self.method == "logistic":
            parameters = {}
            if self.usable:
                parameters = {
                    "intercept": float(self.intercept),
                    "slope": float(self.slope),
                    "covariance": None
                    if self.covariance is None
                    else [[float(v) for v in row] for row in self.covariance],
                    "cov_type": self.cov_type,
                }
        else:
            parameters = (
                {
                    "breakpoints": [float(v) for v in self.breakpoints],
                    "probabilities": [float(v) for v in self.probabilities],
                }
                if self.usable
                else {}
            )
        return {
            "format": FORMAT,
            "method": self.method,
            "status": self.status,
            "reason": self.reason,
            "outcome": self.outcome,
            "score": self.score,
            "period": None if self.period is None else dict(self.period),
            "n": int(self.n),
            "events": int(self.events),
            "clusters": None if self.clusters is None else int(self.clusters),
            "minimum": {k: int(v) for k, v in self.minimum.items()},
            "parameters": parameters,
            "caveats": list(self.caveats),
        }

    @classmethod
    def from_dict(cls, spec: dict) -> Calibration:
        """Read :meth:`to_dict` output (e.g. the ``calibration`` block of icp.json)."""
        if not isinstance(spec, dict):
            raise DataError("a calibration must be a JSON object")
        version = spec.get("format", FORMAT)
        if version != FORMAT:
            raise DataError(f"calibration format {version!r} is not one this kit reads ({FORMAT})")
        parameters = spec.get("parameters") or {}
        method = spec.get("method", DEFAULT_METHOD)
        return cls(
            method=method,
            status=spec.get("status", "ok"),
            reason=spec.get("reason") or "",
            outcome=spec.get("outcome"),
            score=spec.get("score") or "fit_score",
            period=None if spec.get("period") is None else dict(spec["period"]),
            n=int(spec.get("n") or 0),
            events=int(spec.get("events") or 0),
            clusters=None if spec.get("clusters") is None else int(spec["clusters"]),
            intercept=parameters.get("intercept"),
            slope=parameters.get("slope"),
            covariance=parameters.get("covariance"),
            cov_type=parameters.get("cov_type"),
            breakpoints=list(parameters.get("breakpoints") or []),
            probabilities=list(parameters.get("probabilities") or []),
            caveats=list(spec.get("caveats") or []),
            minimum=dict(
                spec.get("minimum")
                or {"rows": MIN_ROWS, "events": MIN_EVENTS, "non_events": MIN_NON_EVENTS}
            ),
        )


def _too_few(n: int, events: int, min_rows: int, min_events: int, min_non_events: int) -> str:
    """Why there are too few outcomes to calibrate ('' when there are enough)."""
    non_events = n - events
    if n >= min_rows and events >= min_events and non_events >= min_non_events:
        return ""
    return (
        f"too few outcomes to calibrate: {n:,} rows, {events:,} with the outcome and "
        f"{non_events:,} without (at least {min_rows} rows and {min_events} / "
        f"{min_non_events} of each needed)"
    )


def fit_calibration(
    scores,
    outcome,
    *,
    method: str = DEFAULT_METHOD,
    cluster=None,
    period=None,
    outcome_name: str | None = None,
    min_events: int = MIN_EVENTS,
    min_non_events: int = MIN_NON_EVENTS,
    min_rows: int = MIN_ROWS,
) -> Calibration:
    """Fit a monotone map from a 0-100 score to the probability of a yes/no outcome.

    Parameters
    ----------
    scores : array-like
        The scores (0-100) of rows whose outcome is known.
    outcome : array-like
        True/False (1/0) per row; rows where it or the score is missing are left out.
    method : "logistic" or "isotonic"
        See the module docstring; logistic by default.
    cluster : array-like, optional
        The account of each row (deals within accounts): cluster-robust standard errors for the
        logistic calibration; recorded for isotonic.
    period : dict or (start, end), optional
        The dates of the rows, stored as ``{"start", "end"}`` (see :func:`period_dict`).
    outcome_name : str, optional
        What is predicted (``won``), stored with the calibration.
    min_events, min_non_events, min_rows : int
        Fewest rows with the outcome, without it, and in all.

    Returns
    -------
    Calibration
        ``status`` ``ok``; or ``too_few_outcomes`` / ``failed`` with a ``reason``, whose
        :meth:`~Calibration.apply` gives NaN.
    """
    if method not in METHODS:
        raise DataError(f"method must be one of {', '.join(METHODS)}, not {method!r}")
    x, y, groups = _pairs(scores, outcome, cluster)
    n, events = int(y.size), int(y.sum())
    n_clusters = int(groups.max() + 1) if groups is not None and groups.size else None
    base = {
        "method": method,
        "outcome": outcome_name,
        "period": period_dict(period),
        "n": n,
        "events": events,
        "clusters": n_clusters,
        "minimum": {"rows": min_rows, "events": min_events, "non_events": min_non_events},
    }
    reason = _too_few(n, events, min_rows, min_events, min_non_events)
    if reason:
        return Calibration(status="too_few_outcomes", reason=reason, **base)
    if method == "isotonic":
        return _fit_isotonic(x, y, base)
    return _fit_logistic(x, y, groups, base)


def _fit_isotonic(x: np.ndarray, y: np.ndarray, base: dict) -> Calibration:
    distinct, inverse = np.unique(x, return_inverse=True)
    counts = np.bincount(inverse).astype(float)
    rates = np.bincount(inverse, weights=y) / counts
    fitted, starts = _isotonic(rates, counts)
    probabilities = np.clip(fitted[starts], 0.0, 1.0)
    caveats = []
    if probabilities[0] == 0.0 or probabilities[-1] == 1.0:
        caveats.append(
            "The isotonic steps at the ends of the score range are 0% or 100%: no row there "
            "had the other outcome. Read them as 'very low' / 'very high', not as certainties."
        )
    if base["events"] < 100 or base["n"] - base["events"] < 100:
        caveats.append(
            "Fewer than 100 rows of one outcome: isotonic steps are noisy; the logistic "
            "calibration is steadier."
        )
    return Calibration(
        status="ok",
        breakpoints=[float(v) for v in distinct[starts]],
        probabilities=[float(v) for v in probabilities],
        caveats=caveats,
        **base,
    )


def _glm(y: np.ndarray, exog: np.ndarray, groups, offset=None, start_params=None):
    """A binomial GLM; cluster-robust covariance when ``groups`` has 2 or more clusters.

    Returns ``(results, cov_type, problem)``; ``problem`` is a sentence when the fit failed.
    A fit whose estimates do not solve the likelihood equations is a failed fit: IRLS can
    swing to a huge estimate and stop there (with offsets far apart, such as probabilities
    near 0% next to others near 50%) while reporting convergence.
    """
    import statsmodels.api as sm
    from statsmodels.tools.sm_exceptions import PerfectSeparationWarning

    model = sm.GLM(y, exog, family=sm.families.Binomial(), offset=offset)
    clustered = groups is not None and np.unique(groups).size >= 2
    kwargs = {"cov_type": "cluster", "cov_kwds": {"groups": groups}} if clustered else {}
    with warnings.catch_warnings():
        warnings.simplefilter("error", PerfectSeparationWarning)
        warnings.simplefilter("ignore", RuntimeWarning)
        try:
            results = model.fit(start_params=start_params, **kwargs)
            gradient = model.score(results.params)
        except (PerfectSeparationWarning, np.linalg.LinAlgError, ValueError) as error:
            return None, None, f"the fit did not converge ({type(error).__name__})"
    if not np.all(np.isfinite(results.params)):
        return None, None, "the fit did not converge"
    if not np.all(np.isfinite(gradient)) or np.max(np.abs(gradient)) > 1e-6 * max(y.size, 1):
        return None, None, "the fit did not converge (its estimates do not fit the outcomes)"
    return results, "cluster" if clustered else "nonrobust", ""


def _fit_logistic(x: np.ndarray, y: np.ndarray, groups, base: dict) -> Calibration:
    exog = np.column_stack([np.ones_like(x), x])
    if np.ptp(x) == 0:
        return Calibration(
            status="failed",
            reason="every row has the same score, so no slope can be fitted",
            **base,
        )
    results, cov_type, problem = _glm(y, exog, groups)
    if results is None:
        return Calibration(
            status="failed",
            reason=f"{problem}: the score separates the outcomes (almost) perfectly in this "
            "period, so probabilities would be 0% or 100%",
            **base,
        )
    intercept, slope = (float(v) for v in results.params)
    covariance = [[float(v) for v in row] for row in np.asarray(results.cov_params())]
    caveats = []
    se = math.sqrt(covariance[1][1]) if covariance[1][1] > 0 else float("nan")
    if not slope - 1.96 * se > 0:
        caveats.append(
            "In the calibration period a higher score did not clearly mean a higher win rate "
            f"(slope {slope:.3f} per point, 95% CI {slope - 1.96 * se:.3f} to "
            f"{slope + 1.96 * se:.3f}); the probabilities barely depend on the score."
        )
    return Calibration(
        status="ok",
        intercept=intercept,
        slope=slope,
        covariance=covariance,
        cov_type=cov_type,
        caveats=caveats,
        **base,
    )


# ---------------------------------------------------------------------------------------------
# Checking


def _logit(p: np.ndarray) -> np.ndarray:
    q = np.clip(p, _EPS, 1 - _EPS)
    return np.log(q / (1 - q))


def _rate_interval(events, trials, clusters, alpha: float) -> tuple[float, float]:
    """Wilson interval of a rate; on the effective sample size (Rao-Scott, Kish's design effect)
    when the rows cluster in accounts."""
    from icp_research.methods.stats import cluster_design_effect, proportion_ci

    k, n = float(np.sum(events)), float(np.sum(trials))
    if n == 0:
        return float("nan"), float("nan")
    if clusters is not None:
        per_events = np.bincount(clusters, weights=events)
        per_trials = np.bincount(clusters, weights=trials)
        deff = cluster_design_effect(per_events, per_trials)
        if np.isfinite(deff) and deff > 1:
            k, n = k / deff, n / deff
    low, high = proportion_ci(k, n, alpha)
    return float(low), float(high)


def _bins(p: np.ndarray, n_bins: int, strategy: str) -> tuple[np.ndarray, int]:
    if strategy == "uniform":
        edges = np.linspace(0, 1, n_bins + 1)
    elif strategy == "quantile":
        # Tied probabilities (whole-point scores) collapse bins whose edges coincide.
        edges = np.unique(np.quantile(p, np.linspace(0, 1, n_bins + 1)))
    else:
        raise DataError(f"binning must be 'quantile' or 'uniform', not {strategy!r}")
    k = max(len(edges) - 1, 1)
    code = np.clip(np.searchsorted(edges, p, side="right") - 1, 0, k - 1)
    return code, k


@dataclass
class CalibrationCheck:
    """How well probabilities matched outcomes on a check period (see the module docstring).

    Intervals are ``(low, high)`` pairs at ``1 - alpha``; NaN when not measurable.
    ``table`` is the reliability table, one row per probability bin: ``bin`` (its range),
    ``n``, ``events``, ``mean_predicted``, ``observed`` with ``ci_low`` / ``ci_high``.
    """

    n: int = 0
    events: int = 0
    clusters: int | None = None
    brier: float = float("nan")
    brier_reference: float = float("nan")
    reliability: float = float("nan")
    resolution: float = float("nan")
    uncertainty: float = float("nan")
    within_bin: float = float("nan")
    slope: float = float("nan")
    slope_ci: tuple = (float("nan"), float("nan"))
    intercept: float = float("nan")
    intercept_ci: tuple = (float("nan"), float("nan"))
    in_the_large: float = float("nan")
    in_the_large_ci: tuple = (float("nan"), float("nan"))
    observed_expected: float = float("nan")
    observed_expected_ci: tuple = (float("nan"), float("nan"))
    expected: float = float("nan")
    table: pd.DataFrame = field(default_factory=pd.DataFrame)
    period: dict | None = None
    alpha: float = 0.05
    caveats: list = field(default_factory=list)

    @property
    def drift(self) -> bool:
        """True when the probabilities demonstrably miss: the slope's interval excludes 1 or the
        observed / expected ratio's interval excludes 1."""
        lo, hi = self.slope_ci
        ratio_lo, ratio_hi = self.observed_expected_ci
        return bool(
            (np.isfinite(lo) and not lo <= 1 <= hi)
            or (np.isfinite(ratio_lo) and not ratio_lo <= 1 <= ratio_hi)
        )

    def to_dict(self) -> dict:
        """The JSON summary (no table)."""

        def num(v):
            v = float(v)
            return v if math.isfinite(v) else None

        return {
            "period": None if self.period is None else dict(self.period),
            "n": int(self.n),
            "events": int(self.events),
            "clusters": self.clusters,
            "expected_events": num(self.expected),
            "brier": num(self.brier),
            "brier_reference": num(self.brier_reference),
            "reliability": num(self.reliability),
            "resolution": num(self.resolution),
            "uncertainty": num(self.uncertainty),
            "within_bin": num(self.within_bin),
            "slope": num(self.slope),
            "slope_ci": [num(v) for v in self.slope_ci],
            "intercept": num(self.intercept),
            "intercept_ci": [num(v) for v in self.intercept_ci],
            "in_the_large": num(self.in_the_large),
            "in_the_large_ci": [num(v) for v in self.in_the_large_ci],
            "observed_expected": num(self.observed_expected),
            "observed_expected_ci": [num(v) for v in self.observed_expected_ci],
            "drift": self.drift,
            "caveats": list(self.caveats),
        }

    def summary_table(self) -> pd.DataFrame:
        """One row per measure: ``measure``, ``value``, ``ci_low``, ``ci_high``, ``reads``."""
        nan2 = (np.nan, np.nan)
        rows = [
            (
                "Brier score",
                self.brier,
                nan2,
                "mean squared error of the probabilities; 0 is perfect",
            ),
            (
                "Brier score of the base rate",
                self.brier_reference,
                nan2,
                "the same error if every row got the overall rate",
            ),
            ("reliability", self.reliability, nan2, "miscalibration (lower is better)"),
            ("resolution", self.resolution, nan2, "separation of outcomes (higher is better)"),
            ("uncertainty", self.uncertainty, nan2, "base rate x (1 - base rate)"),
            ("calibration slope", self.slope, self.slope_ci, "1 when right; below 1: too extreme"),
            ("calibration intercept", self.intercept, self.intercept_ci, "0 when right"),
            (
                "calibration-in-the-large",
                self.in_the_large,
                self.in_the_large_ci,
                "log-odds of outcomes above prediction; 0 when right",
            ),
            (
                "observed / expected",
                self.observed_expected,
                self.observed_expected_ci,
                f"{self.events:,} observed vs {self.expected:,.1f} expected",
            ),
        ]
        return pd.DataFrame(
            [
                {"measure": m, "value": v, "ci_low": ci[0], "ci_high": ci[1], "reads": r}
                for m, v, ci, r in rows
            ]
        )


_TABLE_COLUMNS = ["bin", "n", "events", "mean_predicted", "observed", "ci_low", "ci_high"]


def evaluate_calibration(
    predicted,
    outcome,
    *,
    cluster=None,
    n_bins: int = 10,
    binning: str = "quantile",
    alpha: float = 0.05,
    period=None,
    min_events: int = MIN_EVENTS,
) -> CalibrationCheck:
    """Check probabilities against outcomes (Brier, Murphy decomposition, slope, intercept,
    observed / expected, reliability table); see the module docstring.

    Rows where the probability or the outcome is missing are left out. The slope, intercept and
    their intervals need ``min_events`` rows of each outcome (else NaN and a caveat).
    ``binning`` is ``quantile`` (bins of about equal size; ties merge bins) or ``uniform``
    (tenths of 0-1).
    """
    from scipy import stats as sps

    p, y, groups = _pairs(predicted, outcome, cluster)
    check = CalibrationCheck(period=period_dict(period), alpha=alpha)
    check.table = pd.DataFrame(columns=_TABLE_COLUMNS)
    if np.any((p < 0) | (p > 1)):
        raise DataError("predicted probabilities must lie between 0 and 1")
    n, events = int(y.size), int(y.sum())
    check.n, check.events = n, events
    check.clusters = int(groups.max() + 1) if groups is not None and n else None
    if n == 0:
        check.caveats.append("No rows with both a probability and a known outcome to check.")
        return check
    base = events / n
    check.expected = float(p.sum())
    check.brier = float(np.mean((p - y) ** 2))
    check.brier_reference = float(base * (1 - base))
    code, k = _bins(p, n_bins, binning)
    counts = np.bincount(code, minlength=k).astype(float)
    hits = np.bincount(code, weights=y, minlength=k)
    forecast = np.bincount(code, weights=p, minlength=k)
    used = counts > 0
    mean_p = forecast[used] / counts[used]
    observed = hits[used] / counts[used]
    check.reliability = float(np.sum(counts[used] * (mean_p - observed) ** 2) / n)
    check.resolution = float(np.sum(counts[used] * (observed - base) ** 2) / n)
    check.uncertainty = float(base * (1 - base))
    check.within_bin = float(
        check.brier - (check.reliability - check.resolution + check.uncertainty)
    )
    rows = []
    for b in np.flatnonzero(used):
        members = code == b
        low, high = _rate_interval(
            y[members],
            np.ones(int(members.sum())),
            None if groups is None else groups[members],
            alpha,
        )
        rows.append(
            {
                "bin": f"{p[members].min():.0%}–{p[members].max():.0%}",
                "n": int(counts[b]),
                "events": int(hits[b]),
                "mean_predicted": float(forecast[b] / counts[b]),
                "observed": float(hits[b] / counts[b]),
                "ci_low": low,
                "ci_high": high,
            }
        )
    check.table = pd.DataFrame(rows, columns=_TABLE_COLUMNS)

    z = sps.norm.ppf(1 - alpha / 2)
    # Observed / expected, with the (cluster-robust) variance of the observed count.
    if events == 0 and check.expected > 0:
        # None observed: 0, with the exact Poisson bound on the count (3.69 at 95%).
        check.observed_expected = 0.0
        upper = float(sps.chi2.ppf(1 - alpha / 2, 2)) / 2
        check.observed_expected_ci = (0.0, upper / check.expected)
    if events > 0 and check.expected > 0:
        check.observed_expected = events / check.expected
        if groups is not None and np.unique(groups).size >= 2:
            per_events = np.bincount(groups, weights=y)
            per_rows = np.bincount(groups).astype(float)
            c = per_rows.size
            var = c / (c - 1) * np.sum((per_events - base * per_rows) ** 2)
        else:
            var = events * (1 - base)
        se = math.sqrt(var) / events if var > 0 else float("nan")
        if math.isfinite(se):
            check.observed_expected_ci = (
                check.observed_expected * math.exp(-z * se),
                check.observed_expected * math.exp(z * se),
            )
    if min(events, n - events) < min_events:
        check.caveats.append(
            f"Too few outcomes to measure the calibration slope and intercept: {events:,} with "
            f"the outcome and {n - events:,} without (at least {min_events} of each needed)."
        )
        return check
    lp = _logit(p)
    results, problem = None, "every row has the same probability, so there is no slope to measure"
    if np.ptp(lp) > 0:
        results, _, problem = _glm(y, np.column_stack([np.ones_like(lp), lp]), groups)
    if results is not None:
        (a, b), (lo, hi) = results.params, results.conf_int(alpha).T
        check.intercept, check.slope = float(a), float(b)
        check.intercept_ci = (float(lo[0]), float(hi[0]))
        check.slope_ci = (float(lo[1]), float(hi[1]))
    else:
        check.caveats.append(f"Calibration slope not measured: {problem}.")
    results, _, problem = _glm(
        y,
        np.ones((n, 1)),
        groups,
        offset=lp,
        start_params=[_in_the_large(lp, events)] if 0 < events < n else None,
    )
    if results is not None:
        check.in_the_large = float(results.params[0])
        lo, hi = results.conf_int(alpha)[0]
        check.in_the_large_ci = (float(lo), float(hi))
    else:
        check.caveats.append(f"Calibration-in-the-large not estimable: {problem}.")
    if n < 200:
        check.caveats.append(f"Small check sample ({n:,} rows): intervals are wide.")
    return check


def _in_the_large(lp: np.ndarray, events: int) -> float:
    """The shift of every log-odds ``lp`` that makes the expected outcomes add up to ``events``
    (the maximum-likelihood calibration-in-the-large; it exists when 0 < events < rows). Solved
    directly, since the expected count only grows with the shift, and handed to the GLM as its
    start so that IRLS has nothing left to overshoot."""
    from scipy import optimize, special

    def gap(shift):
        return float(special.expit(lp + shift).sum()) - events

    span = float(np.max(np.abs(lp))) + 50.0
    return float(optimize.brentq(gap, -span, span, xtol=1e-12))


def band_table(
    groups,
    outcome,
    predicted=None,
    *,
    order=None,
    cluster=None,
    alpha: float = 0.05,
) -> pd.DataFrame:
    """Observed outcome rate per group (e.g. tier) with its interval, beside the mean predicted
    probability: the honest band a tier's probability lies in.

    Columns: ``group``, ``n``, ``events``, ``rate``, ``ci_low``, ``ci_high`` (Wilson; on the
    effective sample size when ``cluster`` is given), ``mean_predicted`` (NaN without
    ``predicted``). Groups in ``order`` (all listed, empty ones with n = 0) or as first seen.
    """
    labels = np.asarray(groups, dtype=object).ravel()
    y = np.asarray(outcome, dtype=float).ravel()
    p = np.full(y.shape, np.nan) if predicted is None else np.asarray(predicted, float).ravel()
    keep = ~np.isnan(y) & ~pd.isna(labels)
    codes = None
    if cluster is not None:
        clusters = np.asarray(cluster, dtype=object).ravel()
        keep &= ~pd.isna(clusters)
        codes = pd.factorize(clusters[keep])[0]
    labels, y, p = labels[keep], y[keep], p[keep]
    names = list(order) if order is not None else list(pd.unique(labels))
    rows = []
    for name in names:
        members = labels == name
        n, k = int(members.sum()), float(y[members].sum())
        low, high = _rate_interval(
            y[members], np.ones(n), None if codes is None else codes[members], alpha
        )
        known = members & ~np.isnan(p)
        rows.append(
            {
                "group": name,
                "n": n,
                "events": int(k),
                "rate": k / n if n else np.nan,
                "ci_low": low,
                "ci_high": high,
                "mean_predicted": float(p[known].mean()) if known.any() else np.nan,
            }
        )
    return pd.DataFrame(
        rows, columns=["group", "n", "events", "rate", "ci_low", "ci_high", "mean_predicted"]
    )
