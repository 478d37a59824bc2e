"""Which ICP predictors are real? Univariate significance tests with honest inference.

For every candidate predictor (industry, size, region, tech stack ...) and every outcome (won,
churned, best_customer; ARR as a continuous outcome) this module asks whether the predictor
really goes with the outcome, how strongly, and how sure we can be:

- **Categorical predictors**: missing values are a level of their own, rare levels are pooled into
  ``(other)``. Per predictor an omnibus test (chi-square; Fisher / Freeman-Halton when expected
  counts are small; Kruskal-Wallis for continuous outcomes) and Cramér's V; per level versus the
  rest the two rates, the difference, the odds ratio with its interval (ratio of medians for
  continuous outcomes) and n.
- **Numeric predictors**: a trend test (Mann-Whitney U with the rank-biserial correlation;
  Spearman for continuous outcomes) plus the same per-level view over data-driven bins
  (:mod:`icp_research.methods.binning`), so that a blueprint can use the bins.
- **Deals cluster by account**: with ``cluster=`` the level tests are logistic regressions with
  account-clustered (CRV1) standard errors, referred to a t distribution with
  ``min(accounts in the level, accounts in the rest) - 1`` degrees of freedom; levels with fewer
  than ``min_level_clusters`` accounts are pooled or left untested, because a sandwich variance
  from one or two clusters is degenerate.
- **Multiple testing**: Benjamini-Hochberg (or Holm) over the whole family of level tests, across
  every outcome in one call; ``significant`` means ``q_value < alpha``.
- **Power**: every test carries its minimum detectable effect at the n we have, so a
  non-significant result reads "no evidence of an effect larger than X"; questions that could
  only detect large effects are flagged ``underpowered`` and are not reported as "no effect".
- **Out of sample**: :func:`replicate` re-tests the significant findings on a later period.

The main table (``PredictorResult.summary``) starts with the ``predictors.csv`` columns of the
run-output contract and is ranked: significant rows first, strongest first.
"""

from __future__ import annotations

import math
import warnings
from collections import Counter
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from statistics import NormalDist
from types import SimpleNamespace

import numpy as np
import pandas as pd
from scipy import stats as sps

from icp_research.errors import InputError
from icp_research.formatting import fmt_p
from icp_research.methods.binning import MISSING, OTHER, apply_bins, cut_points, pool_rare_levels
from icp_research.methods.stats import (
    Z95,
    adjust_pvalues,
    cluster_score_shares,
    effective_clusters,
    odds_ratio_ci,
    proportion_ci,
    sign_flip_pvalue,
)
from icp_research.result import Result

#: The ``predictors.csv`` contract columns, in order; extras follow them in ``summary``.
SUMMARY_COLUMNS = [
    "outcome",
    "predictor",
    "level",
    "n",
    "rate_level",
    "rate_rest",
    "effect",
    "ci_low",
    "ci_high",
    "p_value",
    "q_value",
    "test",
    "significant",
]
EXTRA_COLUMNS = [
    "kind",
    "effect_type",
    "rate_diff",
    "rate_level_ci_low",
    "rate_level_ci_high",
    "events",
    "n_rest",
    "n_clusters",
    "std_effect",
    "mde",
    "mde_unit",
    "mde_std",
    "underpowered",
    "cramers_v",
    "predictor_p_value",
    "predictor_q_value",
    "predictor_test",
    "note",
    "hypothesis_id",
]
PREDICTOR_COLUMNS = [
    "outcome",
    "predictor",
    "kind",
    "n",
    "n_levels",
    "n_clusters",
    "test",
    "statistic",
    "df",
    "p_value",
    "q_value",
    "significant",
    "effect_size",
    "effect_size_type",
    "verdict",
]

#: ``level`` of the row that tests a numeric predictor as a whole (higher vs lower values).
TREND = "(trend)"

#: Effect types measured as ratios (null value 1, log-scale plots); the others have null 0.
RATIO_EFFECTS = {"odds_ratio", "odds_ratio_q3_vs_q1", "median_ratio"}

# Scalar normal quantiles in the hot path: statistics.NormalDist is exact and far cheaper per
# call than scipy's vectorised distribution machinery.
_STANDARD_NORMAL = NormalDist()

_RATE_PHRASES = {
    "won": "win rate",
    "churned": "churn rate",
    "retained": "retention rate",
    "best_customer": "best-customer rate",
}


@dataclass(frozen=True)
class _Options:
    alpha: float = 0.05
    power: float = 0.8
    min_level_count: int = 10
    min_level_clusters: int = 5
    n_bins: int = 5
    exact_below: float = 5.0
    underpowered_above: float = 0.5
    n_resamples: int = 9999
    n_bootstrap: int = 999
    seed: int = 0

    @property
    def z_sum(self) -> float:
        """z_(1-alpha/2) + z_(power): the standardised distance a detectable effect must cover."""
        return _STANDARD_NORMAL.inv_cdf(1 - self.alpha / 2) + _STANDARD_NORMAL.inv_cdf(self.power)


@dataclass
class _Sample:
    """One outcome's analysable rows: the outcome as floats, cluster codes, global facts.

    ``clusters`` are dense codes 0..G-1 (from :func:`pandas.factorize`) and ``cluster_sizes``
    their row counts, so that accounts per level are counted with :func:`numpy.bincount`.
    """

    outcome: str
    y: np.ndarray
    kind: str  # "binary" or "continuous"
    clusters: np.ndarray | None
    unit: str
    cluster_unit: str
    keep: np.ndarray  # boolean mask of the input rows used (outcome known)
    cluster_sizes: np.ndarray | None = None
    icc: float = 0.0
    constant: bool = False
    positive: bool = False
    sd_log: float = float("nan")
    #: A continuous outcome's group of linked accounts per row (codes), or None: levels that
    #: a few groups hold are not tested; the rows are otherwise compared as independent.
    screen: np.ndarray | None = None

    @property
    def n_clusters(self) -> int | None:
        return None if self.clusters is None else int(self.cluster_sizes.size)


# ----------------------------------------------------------------------------------------------
# Result object


@dataclass
class PredictorResult(Result):
    """Univariate predictor tests.

    ``summary`` is ``predictors.csv``, ranked (per outcome: significant rows first, strongest
    first). One row per outcome x predictor x level (``kind`` ``level``), bin (``bin``) or
    numeric trend (``trend``, level ``(trend)``). Contract columns first:

    - ``n``: rows in the level (rows with a value, for a trend); ``rate_level`` / ``rate_rest``:
      outcome rate in the level and in the rest (fractions), or medians for continuous outcomes;
    - ``effect``, ``ci_low``, ``ci_high``: the effect named by ``effect_type`` with its
      (1 - alpha) interval: ``odds_ratio`` (level vs rest), ``median_ratio`` / ``median_diff``
      (continuous outcomes), ``rank_biserial`` (trend, Mann-Whitney), ``spearman_rho`` (trend,
      continuous outcome), ``odds_ratio_q3_vs_q1`` (clustered trend: odds at the 75th vs the 25th
      percentile of the predictor);
    - ``p_value``, ``q_value`` (corrected over the whole family), ``test`` (the method, e.g.
      ``chi2``, ``fisher_exact``, ``logit_cluster_t``), ``significant`` (q < alpha).

    Extras: ``rate_diff`` (level minus rest), Wilson interval of ``rate_level``, ``events``,
    ``n_rest``, ``n_clusters`` (accounts in the level), ``std_effect`` (Cohen's h for rates,
    d-equivalent otherwise, signed), ``mde`` in ``mde_unit`` (smallest effect detectable with
    the requested power; ``rate_diff`` in fractions), ``mde_std`` and ``underpowered``,
    ``cramers_v`` and the predictor-level ``predictor_p_value`` / ``predictor_q_value`` /
    ``predictor_test``, a ``note`` when a row was not tested and why, and ``hypothesis_id``
    (rows sharing one test the same hypothesis, e.g. the two sides of a two-level split).

    ``tables['predictors']`` has one row per outcome x predictor: the omnibus test
    (categorical) or trend test (numeric), its own correction, and a ``verdict`` (``predicts``,
    ``no evidence``, ``not enough data``, ``not testable``). ``params['schemes']`` records the
    level pooling and bin cut points, so that :func:`replicate` can re-test the same levels on
    new data."""

    def shortlist(self, outcome: str | None = None, max_predictors: int = 5) -> list[str]:
        """Predictors with at least one significant row, strongest (|std_effect|) first.

        Returns at most ``max_predictors`` predictor names, for the multivariable model.
        """
        rows = self.summary[self.summary["significant"].astype(bool)]
        if outcome is not None:
            rows = rows[rows["outcome"] == outcome]
        if rows.empty:
            return []
        strength = rows.assign(strength=rows["std_effect"].abs()).groupby("predictor")["strength"]
        return list(strength.max().sort_values(ascending=False).index[:max_predictors])


# ----------------------------------------------------------------------------------------------
# Public API


def test_predictors(
    data: pd.DataFrame,
    outcome: str,
    *,
    categorical: Sequence[str] = (),
    numeric: Sequence[str] = (),
    cluster: str | None = None,
    alpha: float = 0.05,
    correction: str = "fdr_bh",
    min_level_count: int = 10,
    min_level_clusters: int = 5,
    n_bins: int = 5,
    bins: Mapping[str, Sequence[float]] | None = None,
    power: float = 0.8,
    underpowered_above: float = 0.5,
    unit: str | None = None,
    seed: int = 0,
) -> PredictorResult:
    """Test every predictor against one outcome; see :func:`test_many` for the parameters.

    ``data`` has one row per account (or per deal, with ``cluster`` naming the account id
    column). ``outcome`` is a boolean / 0-1 column (rows where it is missing, e.g. open deals,
    are left out) or a continuous one (ARR; one row per account, no ``cluster``).
    """
    return test_many(
        {outcome: (data, cluster)},
        categorical=categorical,
        numeric=numeric,
        alpha=alpha,
        correction=correction,
        min_level_count=min_level_count,
        min_level_clusters=min_level_clusters,
        n_bins=n_bins,
        bins=bins,
        power=power,
        underpowered_above=underpowered_above,
        unit=unit,
        seed=seed,
    )


def test_many(
    questions: Mapping[str, pd.DataFrame | tuple[pd.DataFrame, str | None]],
    *,
    categorical: Sequence[str] = (),
    numeric: Sequence[str] = (),
    alpha: float = 0.05,
    correction: str = "fdr_bh",
    min_level_count: int = 10,
    min_level_clusters: int = 5,
    n_bins: int = 5,
    bins: Mapping[str, Sequence[float]] | None = None,
    power: float = 0.8,
    underpowered_above: float = 0.5,
    unit: str | Mapping[str, str] | None = None,
    seed: int = 0,
) -> PredictorResult:
    """Test every predictor against several outcomes, one family of hypotheses per outcome.

    Parameters
    ----------
    questions
        ``{outcome column: data}`` or ``{outcome column: (data, cluster column or None)}``, e.g.
        ``{"won": (deals, "account_id"), "churned": accounts, "arr": customers}``. Each frame
        must hold the outcome and every predictor column.
    categorical, numeric
        Predictor columns. Categorical values are compared level by level (missing is the level
        ``(missing)``, levels with fewer than ``min_level_count`` rows are pooled into
        ``(other)``); numeric ones get a trend test plus quantile bins (``n_bins``).
    bins
        ``{numeric predictor: cut points}``: the same bins for every outcome (e.g. quantiles of
        all accounts, so that a blueprint gets one set of bins); predictors not listed get
        quantile bins of each outcome's own rows.
    alpha
        Significance level applied to corrected p-values (``q_value``).
    correction
        Any :func:`icp_research.methods.stats.adjust_pvalues` method: ``fdr_bh`` (default), ``holm`` ...
        Each outcome is its own family: every level / bin / trend test of that outcome in this
        call (so that near-mechanical findings about one outcome, such as size predicting
        best-customer status, do not loosen the threshold for another); the two rows of a
        two-level predictor are one hypothesis and counted once.
    min_level_clusters
        Clustered outcomes only: levels with fewer accounts than this are pooled into
        ``(other)``, and a level that still has fewer is not tested (see ``note``).
    power, underpowered_above
        The minimum detectable effect (``mde``) is computed at this power and the uncorrected
        ``alpha``; a test whose detectable effect exceeds ``underpowered_above`` on the
        standardised scale (Cohen's h for rates, d for ranks; 0.5 = "medium") is flagged
        ``underpowered``.
    unit
        What a row is ("accounts", "deals"), for the sentences; default "deals" when clustered.
    seed
        Seed of the Monte Carlo exact tests and bootstrap intervals (results are deterministic).

    Returns
    -------
    PredictorResult
        ``summary``: one row per outcome x predictor x level (or bin, or ``(trend)``), with the
        ``predictors.csv`` columns first. For binary outcomes ``rate_level`` / ``rate_rest`` are
        rates (fractions) and ``effect`` is an odds ratio; for continuous outcomes they are
        medians and ``effect`` is a ratio of medians (a difference when values can be <= 0).
        ``tables['predictors']``: one row per outcome x predictor with the omnibus / trend test.
    """
    opts = _Options(
        alpha=alpha,
        power=power,
        min_level_count=min_level_count,
        min_level_clusters=min_level_clusters,
        n_bins=n_bins,
        underpowered_above=underpowered_above,
        seed=seed,
    )
    categorical, numeric = list(categorical), list(numeric)
    _check_predictor_lists(categorical, numeric)
    rows: list[dict] = []
    predictor_rows: list[dict] = []
    caveats: list[str] = []
    outcomes: dict[str, dict] = {}
    schemes: dict[str, dict] = {}
    fixed_bins = {
        name: {"kind": "numeric", "cuts": [float(c) for c in cuts]}
        for name, cuts in (bins or {}).items()
        if name in numeric
    }
    for outcome, spec in questions.items():
        data, cluster = _unpack_question(spec)
        outcome_unit = unit.get(outcome) if isinstance(unit, Mapping) else unit
        block = _battery(
            data,
            outcome,
            categorical=categorical,
            numeric=numeric,
            cluster=cluster,
            opts=opts,
            unit=outcome_unit,
            schemes=fixed_bins,
        )
        rows += block.rows
        predictor_rows += block.predictor_rows
        caveats += block.caveats
        schemes[outcome] = block.schemes
        outcomes[outcome] = {
            "cluster": cluster,
            "kind": block.sample.kind,
            "unit": block.sample.unit,
            "n": int(block.sample.y.size),
            "n_clusters": block.sample.n_clusters,
            "icc": block.sample.icc,
        }
    params = {
        "alpha": alpha,
        "correction": correction,
        "power": power,
        "min_level_count": min_level_count,
        "min_level_clusters": min_level_clusters,
        "n_bins": n_bins,
        "underpowered_above": underpowered_above,
        "seed": seed,
        "categorical": categorical,
        "numeric": numeric,
        "outcomes": outcomes,
        "schemes": schemes,
    }
    return _finalize(rows, predictor_rows, caveats, opts, correction, params)


# Keep pytest from collecting the two public functions above as tests when they are imported
# into a test module.
test_predictors.__test__ = False  # type: ignore[attr-defined]
test_many.__test__ = False  # type: ignore[attr-defined]


def time_split(
    data: pd.DataFrame,
    date: str,
    *,
    confirm_from=None,
    confirm_share: float = 0.25,
) -> tuple[pd.DataFrame, pd.DataFrame]:
    """Split rows into an earlier discovery period and a later confirmation period.

    ``confirm_from`` (a date) starts the confirmation period; by default it is the date that
    leaves the latest ``confirm_share`` of dated rows for confirmation. Rows without a date are
    in neither part. Returns ``(discovery, confirmation)``.
    """
    if date not in data.columns:
        raise InputError(f"time_split: no column {date!r}; pass the date column to split on.")
    when = pd.to_datetime(data[date], errors="coerce")
    if when.notna().sum() < 2:
        raise InputError(f"time_split: column {date!r} has fewer than two usable dates.")
    if confirm_from is None:
        confirm_from = when.dropna().quantile(1 - confirm_share)
    confirm_from = pd.Timestamp(confirm_from)
    return data[when < confirm_from], data[when >= confirm_from]


# ----------------------------------------------------------------------------------------------
# The battery for one outcome


@dataclass
class _Block:
    sample: _Sample
    rows: list[dict] = field(default_factory=list)
    predictor_rows: list[dict] = field(default_factory=list)
    caveats: list[str] = field(default_factory=list)
    schemes: dict[str, dict] = field(default_factory=dict)


def _check_predictor_lists(categorical: list[str], numeric: list[str]) -> None:
    both = set(categorical) & set(numeric)
    if both:
        raise InputError(
            f"Predictors listed as both categorical and numeric: {sorted(both)}; "
            "list each predictor once."
        )
    if not categorical and not numeric:
        raise InputError("No predictors given: pass categorical=[...] and/or numeric=[...].")


def _unpack_question(spec) -> tuple[pd.DataFrame, str | None]:
    if isinstance(spec, pd.DataFrame):
        return spec, None
    if isinstance(spec, tuple) and len(spec) == 2 and isinstance(spec[0], pd.DataFrame):
        return spec[0], spec[1]
    raise InputError(
        "Each question must be a DataFrame or a (DataFrame, cluster column or None) pair."
    )


def _battery(
    data: pd.DataFrame,
    outcome: str,
    *,
    categorical: list[str],
    numeric: list[str],
    cluster: str | None,
    opts: _Options,
    unit: str | None,
    schemes: Mapping[str, dict] | None = None,
    alternatives: Mapping[tuple[str, str], str] | None = None,
    omnibus: bool = True,
) -> _Block:
    """All tests of one outcome. ``schemes`` re-uses a discovery run's levels and bins;
    ``alternatives`` maps (predictor, level) to a one-sided alternative (replication)."""
    missing = [c for c in [outcome, *categorical, *numeric] if c not in data.columns]
    if cluster is not None and cluster not in data.columns:
        missing.append(cluster)
    if missing:
        raise InputError(
            f"Columns {missing} not found in the data for outcome {outcome!r}; "
            f"available: {list(data.columns)[:20]}."
        )
    sample, caveats = _prepare_sample(data, outcome, cluster, unit)
    block = _Block(sample=sample, caveats=caveats)
    alternatives = alternatives or {}
    schemes = schemes or {}
    frame = data.loc[sample.keep, list(dict.fromkeys([*categorical, *numeric]))]
    for name in categorical:
        codes, names, scheme, note = _categorical_labels(
            frame[name], sample, opts, schemes.get(name)
        )
        block.schemes[name] = scheme
        if note:
            block.caveats.append(f"{outcome} ~ {name}: {note}")
        order = [*scheme["levels"], OTHER, MISSING]
        rows, omni = _level_block(
            sample, name, "level", codes, names, order, opts, alternatives, omnibus=omnibus
        )
        block.rows += rows
        if omni is not None:
            block.predictor_rows.append(omni)
    for name in numeric:
        values = pd.to_numeric(frame[name], errors="coerce")
        if values.isna().all() and frame[name].notna().any():
            raise InputError(
                f"Numeric predictor {name!r} has no numeric values; list it under categorical."
            )
        x = values.to_numpy(dtype=float)
        scheme = schemes.get(name) or {"kind": "numeric", "cuts": cut_points(x, opts.n_bins)}
        block.schemes[name] = scheme
        alternative = alternatives.get((name, TREND), "two-sided")
        trend = _trend_test(sample, x, opts, alternative)
        trend.update(
            predictor=name, level=TREND, kind="trend", _hypothesis=f"{outcome}|{name}|trend"
        )
        block.rows.append(trend)
        binned = apply_bins(x, scheme["cuts"])
        order = [*_bin_labels(scheme["cuts"]), MISSING]
        rows, omni = _level_block(
            sample,
            name,
            "bin",
            np.asarray(binned.codes),
            [str(c) for c in binned.categories],
            order,
            opts,
            alternatives,
            omnibus=omnibus,
        )
        block.rows += rows
        if omnibus:
            block.predictor_rows.append(
                {
                    "outcome": outcome,
                    "predictor": name,
                    "kind": "numeric",
                    "n": trend["n"],
                    "n_levels": len([r for r in rows if r["n"] > 0]),
                    "n_clusters": trend.get("n_clusters", np.nan),
                    "test": trend["test"],
                    "statistic": trend.get("statistic", np.nan),
                    "df": trend.get("df", np.nan),
                    "p_value": trend["p_value"],
                    "effect_size": trend["effect"],
                    "effect_size_type": trend["effect_type"],
                    "cramers_v": omni["effect_size"] if omni else np.nan,
                }
            )
    for row in block.rows:
        row["outcome"] = outcome
    for row in block.predictor_rows:
        row["outcome"] = outcome
    return block


def _bin_labels(cuts: list[float]) -> list[str]:
    return list(apply_bins([], cuts).categories[:-1])


def _prepare_sample(
    data: pd.DataFrame, outcome: str, cluster: str | None, unit: str | None
) -> tuple[_Sample, list[str]]:
    caveats: list[str] = []
    raw = data[outcome]
    keep = raw.notna().to_numpy()
    if (~keep).any():
        caveats.append(
            f"{outcome}: {int((~keep).sum()):,} rows with no known outcome (e.g. open deals) "
            "are left out."
        )
    known = raw[keep]
    kind = _outcome_kind(known, outcome)
    y = known.astype(float).to_numpy()
    clusters = None
    if cluster is not None:
        ids = data.loc[keep, cluster]
        if ids.isna().any():
            raise InputError(
                f"Cluster column {cluster!r} has {int(ids.isna().sum())} missing values among "
                f"rows with a known {outcome!r}; fill them (every deal needs its account id)."
            )
        clusters = pd.factorize(ids)[0]
        if kind == "continuous":
            if np.median(np.bincount(clusters)) > 1:
                raise InputError(
                    f"Continuous outcome {outcome!r} with cluster={cluster!r}: analyse "
                    "continuous outcomes one row per account (aggregate deal amounts per "
                    "account first)."
                )
            # One row per account, a few accounts linked into groups: medians compare rows,
            # and the groups only keep a level that a few of them hold from being tested.
            screen, clusters = clusters, None
            caveats.append(
                f"{outcome}: accounts linked into groups are not independent; a level most of "
                "whose rows come from a few groups is not tested (it weighs like those few, "
                "by Kish's effective number)."
            )
    default_unit = "deals" if cluster is not None and kind == "binary" else "accounts"
    sample = _Sample(
        outcome=outcome,
        y=y,
        kind=kind,
        clusters=clusters,
        unit=unit or default_unit,
        cluster_unit="accounts",
        keep=keep,
        cluster_sizes=None if clusters is None else np.bincount(clusters),
    )
    if cluster is not None and kind == "continuous":
        sample.screen = screen
    if y.size == 0:
        sample.constant = True
        caveats.append(f"{outcome}: no rows with a known outcome; nothing can be tested.")
        return sample, caveats
    sample.constant = bool(np.all(y == y[0]))
    if sample.constant:
        what = f"every row has {outcome} = {y[0]:g}" if kind == "binary" else "it is constant"
        caveats.append(
            f"{outcome}: {what}, so no predictor can be tested against it (nothing to compare)."
        )
    if kind == "binary":
        events = int(y.sum())
        if not sample.constant and min(events, y.size - events) < 10:
            caveats.append(
                f"{outcome}: only {min(events, y.size - events)} rows in the rarer outcome class; "
                "every test has very little power."
            )
    else:
        sample.positive = bool(np.all(y > 0))
        if sample.positive and y.size > 1:
            sample.sd_log = float(np.std(np.log(y), ddof=1))
    if clusters is not None:
        sample.icc = _icc_anova(y, clusters) if kind == "binary" else 0.0
        g = sample.n_clusters
        caveats.append(
            f"{outcome}: {y.size:,} {sample.unit} from {g:,} {sample.cluster_unit}; "
            f"{sample.unit} of one account are not independent (intra-account correlation "
            f"{sample.icc:.2f}), so level tests use logistic regression with account-clustered "
            "standard errors and t with degrees of freedom from the smaller effective number of "
            "accounts of level or rest, minus 1 (Kish's (sum n)^2 / sum n^2: a few accounts "
            "with many rows weigh like a few)."
        )
        if g < 2 * 10:
            caveats.append(
                f"{outcome}: only {g} {sample.cluster_unit}; account-clustered inference needs "
                "more accounts to be reliable."
            )
    return sample, caveats


def _outcome_kind(known: pd.Series, outcome: str) -> str:
    if pd.api.types.is_bool_dtype(known):
        return "binary"
    if pd.api.types.is_numeric_dtype(known):
        values = set(pd.unique(known.astype(float)))
        return "binary" if values <= {0.0, 1.0} else "continuous"
    values = set(pd.unique(known))
    if values <= {True, False}:
        return "binary"
    raise InputError(
        f"Outcome {outcome!r} must be boolean / 0-1 (e.g. won) or numeric (e.g. arr); "
        f"found values such as {sorted(map(str, values))[:5]}. Recode it first."
    )


def _icc_anova(y: np.ndarray, clusters: np.ndarray) -> float:
    """One-way ANOVA estimate of the intra-cluster correlation, clipped to [0, 1].

    ``clusters`` are codes 0..G-1 (as from :func:`pandas.factorize`).
    """
    sizes = np.bincount(clusters).astype(float)
    g, n = sizes.size, y.size
    if g < 2 or n <= g:
        return 0.0
    means = np.bincount(clusters, weights=y) / sizes
    msb = float(np.sum(sizes * (means - y.mean()) ** 2) / (g - 1))
    msw = float(np.sum((y - means[clusters]) ** 2) / (n - g))
    m0 = (n - np.sum(sizes**2) / n) / (g - 1)
    denominator = msb + (m0 - 1) * msw
    if denominator <= 0:
        return 0.0
    return float(np.clip((msb - msw) / denominator, 0.0, 1.0))


def _categorical_labels(
    values: pd.Series, sample: _Sample, opts: _Options, scheme: dict | None
) -> tuple[np.ndarray, list[str], dict, str]:
    """Level labels (strings, ``(missing)``, ``(other)``) and the scheme that produced them.

    The labels come as integer codes into a list of label names (see :func:`_level_block`).
    """
    as_text = values.astype("string").fillna(MISSING).astype(object)
    text_codes, texts = pd.factorize(as_text)
    note = ""
    if scheme is None:
        pooled = pool_rare_levels(values, opts.min_level_count)
        rare_rows = set(texts) - set(pooled.unique())
        few_clusters: list[str] = []
        if sample.clusters is not None:
            # Accounts per pooled level (in sorted level order): distinct (level, account) pairs.
            level_codes, pooled_levels = pd.factorize(pooled, sort=True)
            pairs = pd.unique(level_codes * sample.cluster_sizes.size + sample.clusters)
            per_level = np.bincount(
                pairs // sample.cluster_sizes.size, minlength=len(pooled_levels)
            )
            few_clusters = [
                str(level)
                for level, g in zip(pooled_levels, per_level, strict=True)
                if g < opts.min_level_clusters and level not in (MISSING, OTHER)
            ]
            if few_clusters:
                pooled = pooled.where(~pooled.isin(few_clusters), OTHER)
        counts = pooled[~pooled.isin([OTHER, MISSING])].value_counts()
        levels = sorted(counts.index, key=lambda level: (-counts[level], str(level)))
        scheme = {"kind": "categorical", "levels": [str(level) for level in levels]}
        parts = []
        if rare_rows:
            parts.append(
                f"{_count(len(rare_rows), 'level')} with fewer than {opts.min_level_count} "
                f"{sample.unit} pooled into {OTHER}"
            )
        if few_clusters:
            parts.append(
                f"{_count(len(few_clusters), 'level')} with fewer than "
                f"{opts.min_level_clusters} {sample.cluster_unit} pooled into {OTHER} "
                f"({', '.join(few_clusters[:5])}{', ...' if len(few_clusters) > 5 else ''})"
            )
        note = "; ".join(parts)
    known = set(scheme["levels"])
    labels = [text if text in known or text == MISSING else OTHER for text in texts]
    names = list(dict.fromkeys(labels))
    position = {name: code for code, name in enumerate(names)}
    remap = np.array([position[label] for label in labels], dtype=np.intp)
    return remap[text_codes], names, scheme, note


def _count(n: int, noun: str) -> str:
    return f"{n} {noun}" if n == 1 else f"{n} {noun}s"


# ----------------------------------------------------------------------------------------------
# Levels (categorical levels or numeric bins) versus the rest


def _level_block(
    sample: _Sample,
    predictor: str,
    kind: str,
    codes: np.ndarray,
    names: list[str],
    order: list[str],
    opts: _Options,
    alternatives: Mapping[tuple[str, str], str],
    *,
    omnibus: bool,
) -> tuple[list[dict], dict | None]:
    """Every level of ``order`` that occurs, versus the rest, and the omnibus test.

    Rows carry level labels as integer ``codes`` into ``names`` (factorized once per predictor),
    so that each level's rows are one integer comparison.
    """
    code_of = {name: code for code, name in enumerate(names)}
    counts = np.bincount(codes, minlength=len(names))
    present = [level for level in order if level in code_of and counts[code_of[level]] > 0]
    rows = []
    for level in present:
        in_level = codes == code_of[level]
        alternative = alternatives.get((predictor, level), "two-sided")
        if sample.kind == "binary":
            row = _binary_level_test(sample, in_level, opts, alternative)
        else:
            row = _continuous_level_test(sample, in_level, opts, alternative)
        row.update(predictor=predictor, level=level, kind=kind)
        if len(present) == 1:
            row["note"] = (
                f"not tested: {predictor} has a single level here ({level}); nothing to compare"
            )
            _clear_test(row)
        rows.append(row)
    _assign_hypotheses(rows, sample, predictor, kind)
    if not omnibus:
        return rows, None
    # A numeric predictor is tested as a whole by its trend; its bins only need Cramér's V.
    omni = _omnibus_test(
        sample, codes, code_of, [r for r in rows if _tested(r)], opts, p_value=kind == "level"
    )
    omni.update(predictor=predictor, kind="categorical" if kind == "level" else "bins")
    for row in rows:
        row["cramers_v"] = omni.get("cramers_v", np.nan)
    return rows, omni


def _tested(row: dict) -> bool:
    return not (row.get("p_value") is None or np.isnan(row["p_value"]))


def _clear_test(row: dict) -> None:
    for key in ("p_value", "effect", "ci_low", "ci_high"):
        row[key] = np.nan
    row["test"] = "not tested"


def _assign_hypotheses(rows: list[dict], sample: _Sample, predictor: str, kind: str) -> None:
    """The two rows of a two-level split test the same hypothesis: give them one key."""
    tested = [r for r in rows if _tested(r)]
    n_total = sample.y.size
    pair = len(tested) == 2 and sum(r["n"] for r in tested) == n_total
    for row in rows:
        suffix = "pair" if pair and row in tested else row["level"]
        row["_hypothesis"] = f"{sample.outcome}|{predictor}|{kind}|{suffix}"


def _base_row(sample: _Sample, in_level: np.ndarray) -> dict:
    n_level = int(in_level.sum())
    row = {
        "n": n_level,
        "n_rest": int(in_level.size - n_level),
        "n_clusters": np.nan,
        "note": "",
        "p_value": np.nan,
        "effect": np.nan,
        "ci_low": np.nan,
        "ci_high": np.nan,
        "test": "not tested",
        "statistic": np.nan,
        "std_effect": np.nan,
        "mde": np.nan,
        "mde_std": np.nan,
        "mde_unit": "",
    }
    if sample.clusters is not None:
        row["n_clusters"], row["_clusters_rest"] = _cluster_counts(sample, in_level)
    return row


def _cluster_counts(sample: _Sample, in_level: np.ndarray) -> tuple[int, int]:
    """Accounts with at least one row in the level and with at least one row in the rest."""
    in_level_sizes = np.bincount(sample.clusters[in_level], minlength=sample.cluster_sizes.size)
    return (
        int(np.count_nonzero(in_level_sizes)),
        int(np.count_nonzero(sample.cluster_sizes - in_level_sizes)),
    )


def _binary_level_test(
    sample: _Sample, in_level: np.ndarray, opts: _Options, alternative: str = "two-sided"
) -> dict:
    """Level versus rest on a binary outcome: rates, odds ratio, test, power."""
    y = sample.y
    row = _base_row(sample, in_level)
    n_level, n_rest = row["n"], row["n_rest"]
    # The outcome is 0/1: these sums are exact integers, whatever the order of summation.
    events = float(y[in_level].sum())
    events_rest = float(y.sum()) - events
    rate_level = events / n_level if n_level else np.nan
    rate_rest = events_rest / n_rest if n_rest else np.nan
    row.update(
        events=events,
        rate_level=rate_level,
        rate_rest=rate_rest,
        rate_diff=rate_level - rate_rest,
        effect_type="odds_ratio",
        std_effect=_cohens_h(rate_level, rate_rest),
    )
    n_eff_level, n_eff_rest = _effective_n(sample, row)
    row["mde"], row["mde_std"] = _rate_mde(n_eff_level, n_eff_rest, rate_rest, opts)
    row["mde_unit"] = "rate_diff"
    if sample.constant or n_level == 0 or n_rest == 0:
        row["note"] = "not tested: the outcome does not vary" if sample.constant else ""
        return row
    a, b = events, n_level - events
    c, d = events_rest, n_rest - events_rest
    table = np.array([[a, b], [c, d]])
    if sample.clusters is not None:
        return _clustered_level_test(sample, in_level, table, row, opts, alternative)
    expected = sps.contingency.expected_freq(table)
    if expected.min() < opts.exact_below:
        fisher = sps.fisher_exact(table, alternative=alternative)
        conditional = sps.contingency.odds_ratio(table.astype(int), kind="conditional")
        interval = conditional.confidence_interval(1 - opts.alpha)
        row.update(
            test="fisher_exact",
            p_value=float(fisher.pvalue),
            effect=float(conditional.statistic),
            ci_low=float(interval.low),
            ci_high=float(interval.high),
        )
        return row
    chi2, p_two_sided, _, _ = sps.chi2_contingency(table, correction=False)
    odds_ratio, low, high = odds_ratio_ci(a, b, c, d, alpha=opts.alpha)
    row.update(
        test="chi2",
        statistic=float(chi2),
        p_value=_one_sided_from_z(
            math.copysign(math.sqrt(chi2), rate_level - rate_rest), p_two_sided, alternative
        ),
        effect=float(odds_ratio),
        ci_low=float(low),
        ci_high=float(high),
    )
    return row


def _one_sided_from_z(z: float, p_two_sided: float, alternative: str) -> float:
    if alternative == "two-sided":
        return float(p_two_sided)
    return float(sps.norm.sf(z) if alternative == "greater" else sps.norm.cdf(z))


def _clustered_level_test(
    sample: _Sample,
    in_level: np.ndarray,
    table: np.ndarray,
    row: dict,
    opts: _Options,
    alternative: str,
) -> dict:
    """Logit of outcome on the level indicator with account-clustered (CRV1) errors."""
    g_level, g_rest = row["n_clusters"], row["_clusters_rest"]
    if min(g_level, g_rest) < opts.min_level_clusters:
        which = "level" if g_level < g_rest else "rest"
        row["note"] = (
            f"not tested: the {which} has only {min(g_level, g_rest)} {sample.cluster_unit} "
            f"(< {opts.min_level_clusters}); a clustered variance from so few accounts is "
            "degenerate"
        )
        return row
    # A level of many rows from a few clusters (three groups of subsidiaries with 60 deals each,
    # beside a few accounts with one) weighs like those few: by Kish's effective number of
    # clusters, (sum of rows)^2 / sum of rows^2, as the kit's clustered rate tests count them.
    # A sandwich variance from so few is no evidence, however many rows they hold.
    k_level = _effective_clusters(sample.clusters[in_level])
    if k_level < opts.min_level_clusters:
        row["note"] = (
            f"not tested: the level's {g_level} {sample.cluster_unit} weigh like "
            f"{k_level:.1f} (most of its {int(in_level.sum()):,} {sample.unit} come from a few "
            f"of them; < {opts.min_level_clusters}); a clustered variance from so few "
            f"{sample.cluster_unit} is degenerate"
        )
        return row
    # Degrees of freedom from the effective numbers of clusters too (Kish), as the kit's
    # clustered rate tests: with equal clusters the counts themselves, with a few large ones
    # far fewer (a cluster-robust t with few dominant clusters rejects too often otherwise).
    df = min(k_level, _effective_clusters(sample.clusters[~in_level])) - 1
    if (table == 0).any():
        # All rows of the level (or of the rest) share one outcome: the logit diverges.
        # Compare the accounts' own rates instead (one number per account, independent).
        odds_ratio, _, _ = odds_ratio_ci(*table.ravel(), alpha=opts.alpha)
        row["effect"] = float(odds_ratio)
        constant_within = _constant_within_clusters(in_level, sample.clusters)
        if not constant_within:
            row["note"] = (
                "not tested: every row of the level or of the rest has the same outcome "
                "(separation), and the level varies within accounts"
            )
            return row
        account_rate = pd.Series(sample.y).groupby(sample.clusters).mean()
        account_in_level = pd.Series(in_level).groupby(sample.clusters).first()
        mwu = sps.mannwhitneyu(
            account_rate[account_in_level].to_numpy(),
            account_rate[~account_in_level].to_numpy(),
            alternative=alternative,
        )
        row.update(
            test="mann_whitney_account_rates",
            statistic=float(mwu.statistic),
            p_value=float(mwu.pvalue),
            note="separation (one outcome in every row of a group): tested on per-account "
            "rates; no interval for the odds ratio",
        )
        return row
    beta, se = _binary_cluster_logit(
        sample.y, in_level, sample.clusters, n_clusters=sample.cluster_sizes.size
    )
    p_value, se = _few_clusters_guard(
        sample, sample.y, in_level, sample.clusters, beta, se, df, alternative, row
    )
    t_crit = sps.t.ppf(1 - opts.alpha / 2, df)
    row.update(
        test="logit_cluster_t",
        statistic=beta / se,
        df=df,
        p_value=p_value,
        effect=math.exp(beta),
        ci_low=math.exp(beta - t_crit * se),
        ci_high=math.exp(beta + t_crit * se),
    )
    return row


#: When the accounts' (or groups') shares of a clustered test's score weigh like fewer than this
#: many (Kish's (sum s^2)^2 / sum s^4; about a third of the accounts when their shares are
#: alike), the test is checked by sign flips (see :func:`_few_clusters_guard`), exact over the
#: signs of the :data:`FEW_CLUSTERS` largest.
FEW_SHARES = 6
FEW_CLUSTERS = 12


def _few_clusters_guard(
    sample: _Sample,
    y: np.ndarray,
    x: np.ndarray,
    clusters: np.ndarray,
    beta: float,
    se: float,
    df: float,
    alternative: str,
    row: dict,
) -> tuple[float, float]:
    """The p-value of a clustered logit slope, and the standard error its interval uses.

    A cluster-robust t is too sure when a few accounts (or groups) carry most of the evidence:
    the sandwich variance cannot see how much the estimate would move without one of them. So
    when the accounts' shares of the score weigh like fewer than :data:`FEW_SHARES` (Kish's
    effective number of their squares, (sum s^2)^2 / sum s^4), the slope is also tested by
    flipping the signs of each account's share of the score
    (:func:`~icp_research.methods.stats.sign_flip_pvalue`), which no number of rows from three
    accounts can make small, and the larger p-value is reported; the interval is then widened
    to the one that p-value implies (so that it does not exclude "no effect" beside a p above
    alpha), and the row says why.
    """
    p_t = _t_pvalue(beta / se, df, alternative)
    shares = cluster_score_shares(y, x, clusters)
    if not effective_clusters(shares**2) < FEW_SHARES:
        return p_t, se  # many accounts share the evidence: the t approximation holds
    p_flip = sign_flip_pvalue(shares, alternative, exact=FEW_CLUSTERS)
    if not p_flip > p_t:
        return p_t, se
    two_sided = p_flip if alternative == "two-sided" else sign_flip_pvalue(shares)
    t_implied = sps.t.isf(min(two_sided, 1.0) / 2, df) if two_sided < 1 else 0.0
    se = max(se, abs(beta) / t_implied) if t_implied > 0 else math.inf
    weight = np.sort(shares**2)[::-1]
    top = int(np.searchsorted(np.cumsum(weight) / weight.sum(), 0.5)) + 1
    holders = "one of them holds" if top == 1 else f"{top:,} of them hold"
    row["note"] = (
        f"p-value from flipping the signs of what each of the {np.count_nonzero(shares):,} "
        f"{sample.cluster_unit} adds to the evidence ({holders} half of it), above the "
        f"clustered t test's ({fmt_p(p_t)}); the interval is widened to match"
    )
    return p_flip, se


def _effective_clusters(codes: np.ndarray) -> float:
    """Kish's effective number of clusters of rows with cluster ``codes``
    (:func:`~icp_research.methods.stats.effective_clusters`)."""
    return effective_clusters(np.bincount(codes))


def _constant_within_clusters(indicator: np.ndarray, clusters: np.ndarray) -> bool:
    per_cluster = pd.Series(indicator).groupby(clusters).nunique()
    return bool((per_cluster <= 1).all())


def _t_pvalue(t_stat: float, df: float, alternative: str) -> float:
    if alternative == "greater":
        return float(sps.t.sf(t_stat, df))
    if alternative == "less":
        return float(sps.t.cdf(t_stat, df))
    return float(2 * sps.t.sf(abs(t_stat), df))


def _binary_cluster_logit(
    y: np.ndarray, indicator: np.ndarray, clusters: np.ndarray, *, n_clusters: int | None = None
):
    """Slope and CRV1 standard error of the logit of ``y`` on ``[1, indicator]``, in closed form.

    With one 0/1 regressor the maximum-likelihood fit is the two groups' empirical log odds,
    so statsmodels' GLM (``cov_type="cluster"``, its default small-sample correction
    G/(G-1) * (N-1)/(N-K)) reduces to a few sums per account: the same numbers without an
    iterative fit per level (tested against statsmodels). Both groups must hold both outcomes.
    ``n_clusters`` says that ``clusters`` are already dense codes 0..n_clusters-1 (every code
    present, as from :func:`pandas.factorize`), which then need no re-coding.
    """
    y = np.asarray(y, dtype=float)
    x = np.asarray(indicator, dtype=bool)
    n1 = int(x.sum())
    n0 = x.size - n1
    # Sums of 0/1 values are exact integers in any order: the same rates as the groups' means.
    events1 = float(y[x].sum())
    p1, p0 = events1 / n1, (float(y.sum()) - events1) / n0
    beta = math.log(p1 / (1 - p1)) - math.log(p0 / (1 - p0))
    residual = y - np.where(x, p1, p0)
    if n_clusters is None:
        _, groups = np.unique(clusters, return_inverse=True)
        k = int(groups.max()) + 1
    else:
        groups, k = clusters, n_clusters
    s0 = np.bincount(groups, weights=residual, minlength=k)
    s1 = np.bincount(groups, weights=residual * x, minlength=k)
    meat = np.array([[s0 @ s0, s0 @ s1], [s1 @ s0, s1 @ s1]])
    a0, a1 = n0 * p0 * (1 - p0), n1 * p1 * (1 - p1)
    bread = np.linalg.inv(np.array([[a0 + a1, a1], [a1, a1]]))
    cov = bread @ meat @ bread * (k / (k - 1)) * ((y.size - 1) / (y.size - 2))
    return beta, float(math.sqrt(cov[1, 1]))


def _cluster_logit(y: np.ndarray, x: np.ndarray, clusters: np.ndarray):
    """statsmodels GLM Binomial of ``y`` on ``[1, x...]`` with CRV1 cluster-robust covariance."""
    import statsmodels.api as sm

    design = np.column_stack([np.ones(y.size), x])
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        return sm.GLM(y, design, family=sm.families.Binomial()).fit(
            cov_type="cluster", cov_kwds={"groups": clusters}
        )


def _continuous_level_test(
    sample: _Sample, in_level: np.ndarray, opts: _Options, alternative: str = "two-sided"
) -> dict:
    """Level versus rest on a continuous outcome: medians, Mann-Whitney U, ratio of medians."""
    y = sample.y
    row = _base_row(sample, in_level)
    level_values, rest_values = y[in_level], y[~in_level]
    n_level, n_rest = level_values.size, rest_values.size
    median_level = float(np.median(level_values)) if n_level else np.nan
    median_rest = float(np.median(rest_values)) if n_rest else np.nan
    ratio = sample.positive
    row.update(
        events=np.nan,
        rate_level=median_level,
        rate_rest=median_rest,
        rate_diff=median_level - median_rest,
        effect_type="median_ratio" if ratio else "median_diff",
    )
    d_mde = opts.z_sum * math.sqrt(1 / n_level + 1 / n_rest) if n_level and n_rest else np.nan
    row["mde_std"] = d_mde
    if ratio and np.isfinite(sample.sd_log):
        row["mde"], row["mde_unit"] = math.exp(d_mde * sample.sd_log), "median_ratio"
    else:
        row["mde"], row["mde_unit"] = _d_to_rank_biserial(d_mde), "rank_biserial"
    if sample.constant or n_level == 0 or n_rest == 0:
        row["note"] = "not tested: the outcome does not vary" if sample.constant else ""
        return row
    if sample.screen is not None:
        k_level = _effective_clusters(sample.screen[in_level])
        if k_level < opts.min_level_clusters:
            row["note"] = (
                f"not tested: the level's {n_level:,} {sample.unit} weigh like {k_level:.1f} "
                f"(most of them belong to a few groups of linked accounts; < "
                f"{opts.min_level_clusters})"
            )
            return row
    mwu = sps.mannwhitneyu(level_values, rest_values, alternative=alternative)
    rank_biserial = 2 * float(mwu.statistic) / (n_level * n_rest) - 1
    row.update(
        test="mann_whitney",
        statistic=float(mwu.statistic),
        p_value=float(mwu.pvalue),
        effect=median_level / median_rest if ratio else median_level - median_rest,
        std_effect=_rank_biserial_to_d(rank_biserial),
    )
    if n_level >= 2 and n_rest >= 2:
        row["ci_low"], row["ci_high"] = _median_effect_ci(level_values, rest_values, ratio, opts)
    return row


# Above this many values per group the bootstrap costs seconds per level and adds nothing: the
# order-statistic interval of each median is then accurate and O(n log n).
BOOTSTRAP_MAX_N = 500


def _median_se(values: np.ndarray, log: bool) -> float:
    """Standard error of a median from its distribution-free (order-statistic) 95% interval."""
    x = np.sort(np.log(values) if log else values)
    n = x.size
    z = Z95
    lo = int(max(0, np.floor(n / 2 - z * np.sqrt(n) / 2) - 1))
    hi = int(min(n - 1, np.ceil(n / 2 + z * np.sqrt(n) / 2) - 1))
    return float((x[hi] - x[lo]) / (2 * z))


def _sorted_median(values: np.ndarray, axis: int = -1) -> np.ndarray:
    """``np.median`` of finite values along ``axis``, by one sort: the same middle value (or the
    same mean of the two middle values), faster than numpy's partition on the bootstrap's
    many short rows."""
    ordered = np.sort(values, axis=axis)
    size = ordered.shape[axis]
    half = size // 2
    upper = np.take(ordered, half, axis=axis)
    if size % 2:
        return upper
    return (np.take(ordered, half - 1, axis=axis) + upper) / 2


def _median_effect_ci(
    level_values: np.ndarray, rest_values: np.ndarray, ratio: bool, opts: _Options
) -> tuple[float, float]:
    """Interval of the ratio (or difference) of medians.

    A seeded percentile bootstrap for groups up to :data:`BOOTSTRAP_MAX_N` values; above that,
    each median's order-statistic interval gives its standard error (on the log scale for a
    ratio) and the two combine as independent estimates.
    """
    if min(level_values.size, rest_values.size) > BOOTSTRAP_MAX_N and (
        not ratio or (np.all(level_values > 0) and np.all(rest_values > 0))
    ):
        z = sps.norm.ppf(1 - opts.alpha / 2)
        se = np.hypot(_median_se(level_values, ratio), _median_se(rest_values, ratio))
        if ratio:
            centre = np.log(np.median(level_values) / np.median(rest_values))
            return float(np.exp(centre - z * se)), float(np.exp(centre + z * se))
        centre = np.median(level_values) - np.median(rest_values)
        return float(centre - z * se), float(centre + z * se)

    # Equal values are then the same bits (no NaN, no -0.0 beside 0.0), so which of them a
    # sort or a partition puts in the middle cannot change the median.
    plain = all(
        np.isfinite(values).all() and not (np.signbit(values) & (values == 0)).any()
        for values in (level_values, rest_values)
    )
    median = _sorted_median if plain else np.median

    def statistic(a, b, axis=-1):
        if ratio:
            return median(a, axis=axis) / median(b, axis=axis)
        return median(a, axis=axis) - median(b, axis=axis)

    kwargs = {
        "n_resamples": opts.n_bootstrap,
        "confidence_level": 1 - opts.alpha,
        "method": "percentile",
        "vectorized": True,
    }
    rng = np.random.default_rng(opts.seed)
    # Sorted, so that the resamples depend on the values, not on the order of the rows (a
    # re-sorted export, or a database's row order, gives the same interval).
    level_values, rest_values = np.sort(level_values), np.sort(rest_values)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        try:
            result = sps.bootstrap((level_values, rest_values), statistic, rng=rng, **kwargs)
        except TypeError:  # scipy < 1.15 calls the generator random_state
            result = sps.bootstrap(
                (level_values, rest_values), statistic, random_state=rng, **kwargs
            )
    return float(result.confidence_interval.low), float(result.confidence_interval.high)


# ----------------------------------------------------------------------------------------------
# Numeric predictors as a whole


def _trend_test(
    sample: _Sample, x: np.ndarray, opts: _Options, alternative: str = "two-sided"
) -> dict:
    known = ~np.isnan(x)
    row = _base_row(sample, known)
    row.update(rate_level=np.nan, rate_rest=np.nan, rate_diff=np.nan, events=np.nan, n_rest=np.nan)
    row.pop("_clusters_rest", None)
    y, xs = sample.y[known], x[known]
    if sample.kind == "continuous":
        return _spearman_trend(row, xs, y, sample, opts, alternative)
    if sample.clusters is not None:
        return _clustered_trend(row, xs, y, sample.clusters[known], sample, opts, alternative)
    positives, negatives = xs[y == 1], xs[y == 0]
    row.update(effect_type="rank_biserial", mde_unit="rank_biserial")
    if positives.size and negatives.size:
        d_mde = opts.z_sum * math.sqrt(1 / positives.size + 1 / negatives.size)
        row["mde_std"], row["mde"] = d_mde, _d_to_rank_biserial(d_mde)
    reason = _trend_untestable(sample, xs, y)
    if reason:
        row["note"] = reason
        return row
    mwu = sps.mannwhitneyu(positives, negatives, alternative=alternative)
    rank_biserial = 2 * float(mwu.statistic) / (positives.size * negatives.size) - 1
    row.update(
        test="mann_whitney",
        statistic=float(mwu.statistic),
        p_value=float(mwu.pvalue),
        effect=rank_biserial,
        std_effect=_rank_biserial_to_d(rank_biserial),
    )
    if positives.size >= 2 and negatives.size >= 2:
        from statsmodels.stats.nonparametric import rank_compare_2indep

        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            low, high = rank_compare_2indep(positives, negatives).conf_int(alpha=opts.alpha)
        if np.isfinite(low) and np.isfinite(high):
            row["ci_low"], row["ci_high"] = 2 * float(low) - 1, 2 * float(high) - 1
    return row


def _trend_untestable(sample: _Sample, xs: np.ndarray, y: np.ndarray) -> str:
    if sample.constant or xs.size == 0 or np.all(y == y[0]):
        return "not tested: the outcome does not vary among rows with a value"
    if np.all(xs == xs[0]):
        return "not tested: the predictor is constant"
    return ""


def _clustered_trend(
    row: dict,
    xs: np.ndarray,
    y: np.ndarray,
    clusters: np.ndarray,
    sample: _Sample,
    opts: _Options,
    alternative: str,
) -> dict:
    """Logit on the predictor's percentile rank, account-clustered errors.

    The effect is the odds ratio between the 75th and the 25th percentile of the predictor
    (half the rank range), a robust, unit-free trend that reads like the level odds ratios.
    """
    row.update(effect_type="odds_ratio_q3_vs_q1", mde_unit="rate_diff")
    g = row["n_clusters"]  # accounts with a value, counted by _base_row
    if y.size:
        base = float(y.mean())
        n_eff = y.size / (1 + (y.size / max(g, 1) - 1) * sample.icc)
        if 0 < base < 1:
            slope_mde = opts.z_sum / math.sqrt(n_eff * base * (1 - base) / 12)
            high, low = _rates_at_quartiles(base, slope_mde)
            row["mde"], row["mde_std"] = high - low, abs(_cohens_h(high, low))
    reason = _trend_untestable(sample, xs, y)
    if not reason and g < 2 * opts.min_level_clusters:
        reason = f"not tested: only {g} {sample.cluster_unit} have a value"
    if reason:
        row["note"] = reason
        return row
    ranks = (sps.rankdata(xs) - 0.5) / xs.size
    fit = _cluster_logit(y, ranks, clusters)
    beta, se = float(fit.params[1]), float(fit.bse[1])
    if not (np.isfinite(beta) and np.isfinite(se) and se > 0) or abs(beta) > MAX_RANK_SLOPE:
        # The logit has no finite maximum: the predictor's values (almost) split the rows by
        # outcome, as a column recorded after the outcome does, and no Wald test is valid.
        row["note"] = (
            "not tested: its values separate the outcome (almost) completely, which a trait "
            "of the company rarely does; if it is recorded after the outcome (current plan, "
            "seats, a status), leave it out with [attributes] exclude"
        )
        return row
    df = max(_effective_clusters(clusters) - 1, 1.0)  # Kish, as for the levels
    p_value, se = _few_clusters_guard(sample, y, ranks, clusters, beta, se, df, alternative, row)
    t_crit = sps.t.ppf(1 - opts.alpha / 2, df)
    high, low = _rates_at_quartiles(float(y.mean()), beta)
    row.update(
        test="logit_rank_cluster_t",
        statistic=beta / se,
        df=df,
        p_value=p_value,
        effect=math.exp(beta / 2),
        ci_low=math.exp((beta - t_crit * se) / 2),
        ci_high=math.exp((beta + t_crit * se) / 2),
        std_effect=_cohens_h(high, low),
    )
    return row


#: A logit slope over the 0-1 rank scale beyond this (odds 1 : 22,000 between the quartiles) is
#: a fit running away under separation, not an estimate.
MAX_RANK_SLOPE = 20.0


def _rates_at_quartiles(base: float, slope: float) -> tuple[float, float]:
    """Rates at the 75th and 25th percentile for a logit slope over the 0-1 rank scale."""
    centre = math.log(base / (1 - base)) if 0 < base < 1 else 0.0
    return _expit(centre + slope / 4), _expit(centre - slope / 4)


def _expit(x: float) -> float:
    return 1 / (1 + math.exp(-x))


def _spearman_trend(
    row: dict, xs: np.ndarray, y: np.ndarray, sample: _Sample, opts: _Options, alternative: str
) -> dict:
    n = xs.size
    row.update(effect_type="spearman_rho", mde_unit="spearman_rho")
    if n > 3:
        rho_mde = math.tanh(opts.z_sum / math.sqrt(n - 3))
        row["mde"], row["mde_std"] = rho_mde, _rho_to_d(rho_mde)
    reason = _trend_untestable(sample, xs, y) if n else "not tested: no values"
    if not reason and n < 4:
        reason = "not tested: fewer than 4 rows with a value"
    if reason:
        row["note"] = reason
        return row
    result = sps.spearmanr(xs, y, alternative=alternative)
    rho = float(result.statistic)
    # Fisher z interval with the Bonett-Wright standard error for Spearman's rho.
    se = math.sqrt((1 + rho**2 / 2) / (n - 3))
    z = math.atanh(np.clip(rho, -0.999999, 0.999999))
    z_crit = sps.norm.ppf(1 - opts.alpha / 2)
    row.update(
        test="spearman",
        statistic=rho,
        p_value=float(result.pvalue),
        effect=rho,
        ci_low=math.tanh(z - z_crit * se),
        ci_high=math.tanh(z + z_crit * se),
        std_effect=_rho_to_d(rho),
    )
    return row


# ----------------------------------------------------------------------------------------------
# Omnibus tests (is the predictor related to the outcome at all?)


def _omnibus_test(
    sample: _Sample,
    codes: np.ndarray,
    code_of: Mapping[str, int],
    tested_rows: list[dict],
    opts: _Options,
    *,
    p_value: bool = True,
) -> dict:
    """The predictor as a whole over its tested levels; rows' labels are ``codes``, a level's
    code is ``code_of[level]``."""
    levels = [r["level"] for r in tested_rows]
    level_codes = [code_of[level] for level in levels]
    in_tested = np.isin(codes, level_codes)
    result = {
        "n": int(in_tested.sum()),
        "n_levels": len(levels),
        "n_clusters": np.nan,
        "test": "not tested",
        "statistic": np.nan,
        "df": np.nan,
        "p_value": np.nan,
        "effect_size": np.nan,
        "effect_size_type": "cramers_v" if sample.kind == "binary" else "epsilon_squared",
        "cramers_v": np.nan,
    }
    if sample.clusters is not None:
        result["n_clusters"] = int(np.count_nonzero(np.bincount(sample.clusters[in_tested])))
    # A two-level split that covers every row is already the level test.
    if len(levels) < 2:
        return result
    y, sub_codes = sample.y[in_tested], codes[in_tested]
    if sample.kind == "continuous":
        groups = [y[sub_codes == code] for code in level_codes]
        h, p = sps.kruskal(*groups)
        n = y.size
        result.update(
            test="kruskal_wallis",
            statistic=float(h),
            df=len(levels) - 1,
            p_value=float(p),
            effect_size=float(h) / (n - 1) if n > 1 else np.nan,
        )
        return result
    # Outcomes are 0/1, so the per-level sums are exact integers in any order.
    n_codes = int(codes.max()) + 1
    events = np.bincount(sub_codes, weights=y, minlength=n_codes)[level_codes]
    sizes = np.bincount(sub_codes, minlength=n_codes)[level_codes]
    table = np.column_stack([events, sizes - events]).astype(np.int64)
    if table.sum(axis=0).min() == 0:
        return result
    cramers_v = float(sps.contingency.association(table, method="cramer"))
    result.update(effect_size=cramers_v, cramers_v=cramers_v)
    if not p_value:
        return result
    if sample.clusters is not None:
        result.update(
            _clustered_omnibus(y, sub_codes, level_codes, table, sample.clusters[in_tested])
        )
        return result
    expected = sps.contingency.expected_freq(table)
    if expected.min() >= opts.exact_below:
        chi2, p, dof, _ = sps.chi2_contingency(table, correction=False)
        result.update(test="chi2", statistic=float(chi2), df=int(dof), p_value=float(p))
    elif len(levels) == 2:
        result.update(test="fisher_exact", p_value=float(sps.fisher_exact(table).pvalue))
    else:
        result.update(
            test=f"fisher_freeman_halton_mc{opts.n_resamples}",
            df=len(levels) - 1,
            p_value=freeman_halton_pvalue(table, n_resamples=opts.n_resamples, seed=opts.seed),
        )
    return result


def _clustered_omnibus(
    y: np.ndarray,
    codes: np.ndarray,
    level_codes: list[int],
    table: np.ndarray,
    clusters: np.ndarray,
) -> dict:
    """Joint cluster-robust Wald test of all level indicators, referred to F(k-1, G_min-1).

    The reference level is the largest; the denominator degrees of freedom are the smallest
    effective number of accounts of a level minus one, as for the level tests (Kish's: a level
    of a few accounts with many rows weighs like those few; conservative with small levels).
    ``level_codes`` are the tested levels' codes in ``codes`` and ``table`` their events and
    non-events.
    """
    sizes = table.sum(axis=1)
    reference = level_codes[int(np.argmax(sizes))]
    others = [code for code in level_codes if code != reference]
    df_denominator = max(
        min(_effective_clusters(clusters[codes == c]) for c in level_codes) - 1, 1.0
    )
    if (table == 0).any():
        return {"test": "not tested (separation)", "df": len(others)}
    f_stat = _saturated_cluster_wald(y, codes, reference, others, clusters) / len(others)
    return {
        "test": "logit_cluster_wald_f",
        "statistic": f_stat,
        "df": len(others),
        "p_value": float(sps.f.sf(f_stat, len(others), df_denominator)),
    }


def _saturated_cluster_wald(
    y: np.ndarray, codes: np.ndarray, reference: int, others: list[int], clusters: np.ndarray
) -> float:
    """Cluster-robust Wald chi-square that the logit of ``y`` on ``[1, level indicators]``
    (every level of ``codes`` but ``reference``) has all level slopes zero, in closed form.

    The model is saturated in the levels, so the maximum-likelihood fit gives each level its
    empirical rate; the score of a row is ``x (y - rate of its level)``, and statsmodels' GLM
    with ``cov_type="cluster"`` (CRV1, small-sample correction G/(G-1) * (N-1)/(N-K)) and
    ``wald_test(..., use_f=False)`` reduce to per-account sums of those residuals: the same
    statistic (tested against statsmodels) without an iterative fit over every deal, nor a
    deals x levels design matrix (gigabytes at 10M deals). Every level must hold both outcomes.
    """
    n_codes = int(codes.max()) + 1
    sizes = np.bincount(codes, minlength=n_codes).astype(float)
    rates = np.bincount(codes, weights=y, minlength=n_codes) / np.where(sizes > 0, sizes, 1)
    logit = np.log(rates / (1 - rates), where=sizes > 0, out=np.zeros(n_codes))
    slopes = np.array([logit[code] - logit[reference] for code in others])
    residual = y - rates[codes]
    n_groups = int(clusters.max()) + 1
    present = np.bincount(clusters, minlength=n_groups) > 0
    scores = [np.bincount(clusters, weights=residual, minlength=n_groups)[present]]
    for code in others:
        rows = codes == code
        scores.append(
            np.bincount(clusters[rows], weights=residual[rows], minlength=n_groups)[present]
        )
    scores = np.column_stack(scores)
    meat = scores.T @ scores
    weights = sizes * rates * (1 - rates)
    k = len(others)
    information = np.zeros((k + 1, k + 1))
    information[0, 0] = weights[[reference, *others]].sum()
    for j, code in enumerate(others, start=1):
        information[0, j] = information[j, 0] = information[j, j] = weights[code]
    bread = np.linalg.inv(information)
    g, n = int(present.sum()), y.size
    cov = bread @ meat @ bread * (g / (g - 1)) * ((n - 1) / (n - (k + 1)))
    return float(slopes @ np.linalg.solve(cov[1:, 1:], slopes))


def freeman_halton_pvalue(table, *, n_resamples: int = 9999, seed: int = 0) -> float:
    """Monte Carlo p-value of the Fisher-Freeman-Halton exact test of an r x c table.

    Tables are drawn with the observed margins (multivariate hypergeometric); the p-value is the
    share of tables no more probable than the observed one, counting the observed table
    (``(1 + hits) / (1 + n_resamples)``). Uses :func:`scipy.stats.fisher_exact` with a
    :class:`~scipy.stats.MonteCarloMethod` where scipy provides it (1.15+).
    """
    table = np.asarray(table, dtype=int)
    rng = np.random.default_rng(seed)
    try:
        method = sps.MonteCarloMethod(n_resamples=n_resamples, rng=rng)
        return float(sps.fisher_exact(table, method=method).pvalue)
    except (TypeError, AttributeError, ValueError):
        return _freeman_halton_numpy(table, n_resamples, np.random.default_rng(seed))


def _freeman_halton_numpy(table: np.ndarray, n_resamples: int, rng) -> float:
    """Fallback for scipy < 1.15 (r x 2 and r x c): same statistic, numpy sampling."""
    from scipy.special import gammaln

    row_totals = table.sum(axis=1)
    column_totals = table.sum(axis=0)

    def log_probability(tables: np.ndarray) -> np.ndarray:
        # log of prod(row!) prod(col!) / (N! prod(cell!)) up to the constant all tables share.
        return -gammaln(tables + 1).sum(axis=(-2, -1))

    simulated = np.zeros((n_resamples, *table.shape), dtype=np.int64)
    simulated[:, :, 0] = rng.multivariate_hypergeometric(
        row_totals, column_totals[0], size=n_resamples
    )
    remaining = row_totals[None, :] - simulated[:, :, 0]
    # Later columns are drawn from what each simulated table has left in its rows.
    for j, column_total in enumerate(column_totals[1:-1], start=1):
        simulated[:, :, j] = [
            rng.multivariate_hypergeometric(left, column_total) for left in remaining
        ]
        remaining = remaining - simulated[:, :, j]
    simulated[:, :, -1] = remaining
    observed = log_probability(table)
    hits = np.sum(log_probability(simulated) <= observed + 1e-7 * abs(observed))
    return float((1 + hits) / (1 + n_resamples))


# ----------------------------------------------------------------------------------------------
# Effect sizes and power


def _cohens_h(p1: float, p2: float) -> float:
    if not (np.isfinite(p1) and np.isfinite(p2)):
        return np.nan
    return 2 * math.asin(math.sqrt(p1)) - 2 * math.asin(math.sqrt(p2))


def _rank_biserial_to_d(r: float) -> float:
    """Cohen's d with the same common-language effect (AUC = (r + 1) / 2) under normality."""
    if not np.isfinite(r):
        return np.nan
    auc = min(max((r + 1) / 2, 1e-9), 1 - 1e-9)
    return math.sqrt(2) * _STANDARD_NORMAL.inv_cdf(auc)


def _d_to_rank_biserial(d: float) -> float:
    if not np.isfinite(d):
        return np.nan
    return 2 * _STANDARD_NORMAL.cdf(d / math.sqrt(2)) - 1


def _rho_to_d(rho: float) -> float:
    rho = float(np.clip(rho, -0.999999, 0.999999))
    return 2 * rho / math.sqrt(1 - rho**2)


def _effective_n(sample: _Sample, row: dict) -> tuple[float, float]:
    """Sizes of a level row's level and rest (:func:`_base_row`) deflated by the design effect
    1 + (rows per account - 1) x ICC."""
    n_level, n_rest = float(row["n"]), float(row["n_rest"])
    if sample.clusters is None or sample.icc <= 0:
        return n_level, n_rest
    out = []
    for n, g in ((n_level, row["n_clusters"]), (n_rest, row["_clusters_rest"])):
        out.append(n / (1 + (n / g - 1) * sample.icc) if g else 0.0)
    return out[0], out[1]


def minimum_detectable_h(n1: float, n2: float, *, alpha: float = 0.05, power: float = 0.8) -> float:
    """Smallest Cohen's h a two-sided two-sample z test detects with the given power.

    The closed form ``(z_(1-alpha/2) + z_power) * sqrt(1/n1 + 1/n2)``; it equals
    ``statsmodels.stats.power.NormalIndPower().solve_power(nobs1=n1, ratio=n2/n1, ...)`` up to the
    probability of rejecting in the wrong direction (below 1e-6 at 80% power), without a root
    search per test. NaN when a group is empty.
    """
    if not (n1 > 0 and n2 > 0):
        return float("nan")
    return _Options(alpha=alpha, power=power).z_sum * math.sqrt(1 / n1 + 1 / n2)


def _rate_mde(n1: float, n2: float, base: float, opts: _Options) -> tuple[float, float]:
    """Minimum detectable difference in rates (fraction, either direction) and its Cohen's h.

    The detectable h is converted back to rates at the rest's rate ``base``; the larger of the
    upward and downward difference is returned, so "any difference larger than +/- mde would
    likely have been detected" holds both ways.
    """
    h = minimum_detectable_h(n1, n2, alpha=opts.alpha, power=opts.power)
    if not (np.isfinite(h) and np.isfinite(base)):
        return np.nan, h
    phi = math.asin(math.sqrt(base))
    up = math.sin(min(phi + h / 2, math.pi / 2)) ** 2 - base
    down = base - math.sin(max(phi - h / 2, 0.0)) ** 2
    return max(up, down), h


# ----------------------------------------------------------------------------------------------
# Correction, ranking, sentences


def _finalize(
    rows: list[dict],
    predictor_rows: list[dict],
    caveats: list[str],
    opts: _Options,
    correction: str,
    params: dict,
) -> PredictorResult:
    # Plain records until the end: sentences are built per row, and pandas filtering per
    # predictor costs more than the tests themselves on small data.
    # One family per outcome: near-mechanical findings about one outcome (ARR size for
    # best-customer status) must not loosen the threshold for another (wins, retention).
    first_p: dict[str, float] = {}
    family_of: dict[str, str] = {}
    for row in rows:
        first_p.setdefault(row["_hypothesis"], row["p_value"])
        family_of.setdefault(row["_hypothesis"], row["outcome"])
    q_by_key = _per_family(first_p, family_of, correction)
    ids = {key: i + 1 for i, key in enumerate(first_p)}
    odds_rows = [row for row in rows if row["effect_type"] == "odds_ratio"]
    low, high = proportion_ci(
        [row["events"] for row in odds_rows], [row["n"] for row in odds_rows], alpha=opts.alpha
    )
    for row, ci_low, ci_high in zip(odds_rows, low, high, strict=True):
        row["rate_level_ci_low"], row["rate_level_ci_high"] = float(ci_low), float(ci_high)
    for row in rows:
        row["q_value"] = q_by_key[row["_hypothesis"]]
        row["hypothesis_id"] = ids[row["_hypothesis"]]
        row["significant"] = bool(row["q_value"] < opts.alpha)
        # No computable detectable effect (an empty group) counts as underpowered.
        row["underpowered"] = not abs(row["mde_std"]) <= opts.underpowered_above

    predictor_q = list(
        _per_family(
            {i: p["p_value"] for i, p in enumerate(predictor_rows)},
            {i: p["outcome"] for i, p in enumerate(predictor_rows)},
            correction,
        ).values()
    )
    tested_groups: dict[tuple[str, str], list[dict]] = {}
    for row in rows:
        if _tested(row):
            tested_groups.setdefault((row["outcome"], row["predictor"]), []).append(row)
    by_predictor = {}
    for verdict, q in zip(predictor_rows, predictor_q, strict=True):
        verdict["q_value"] = q
        verdict["significant"] = bool(q < opts.alpha)
        verdict["verdict"] = _verdict(tested_groups.get((verdict["outcome"], verdict["predictor"])))
        by_predictor[(verdict["outcome"], verdict["predictor"])] = verdict
    for row in rows:
        verdict = by_predictor.get((row["outcome"], row["predictor"]), {})
        row["predictor_p_value"] = verdict.get("p_value", np.nan)
        row["predictor_q_value"] = verdict.get("q_value", np.nan)
        row["predictor_test"] = verdict.get("test", "")
        row.setdefault("cramers_v", np.nan)

    outcome_rank = {outcome: i for i, outcome in enumerate(params["outcomes"])}
    rows = sorted(
        rows,
        key=lambda r: (
            outcome_rank[r["outcome"]],
            not r["significant"],
            -abs(r["std_effect"]) if r["significant"] else 0.0,
            r["q_value"] if np.isfinite(r["q_value"]) else 2.0,
            r["predictor"],
        ),
    )
    hypotheses = len({row["_hypothesis"] for row in rows if _tested(row)})
    summary = pd.DataFrame(rows, columns=[*SUMMARY_COLUMNS, *EXTRA_COLUMNS])
    for column in ("significant", "underpowered"):
        summary[column] = summary[column].astype(bool)
    predictors = pd.DataFrame(predictor_rows, columns=[*PREDICTOR_COLUMNS, "cramers_v"])
    params = {**params, "n_hypotheses": hypotheses}
    result = PredictorResult(
        title="Which predictors are real",
        summary=summary,
        tables={"predictors": predictors},
        params=params,
    )
    result.findings = _findings(rows, predictor_rows, tested_groups, params, opts)
    notes: dict = {}
    for row in rows:
        if isinstance(row.get("note"), str) and row["note"]:
            notes.setdefault((row["outcome"], row["predictor"]), row["note"])
    result.caveats = [*caveats, *_power_caveats(predictor_rows, tested_groups, params, notes)]
    label = {"fdr_bh": "Benjamini-Hochberg", "holm": "Holm"}.get(correction, correction)
    result.caveats.append(
        f"{label} correction within each outcome's family of tests ({hypotheses} hypotheses "
        f"in all: every level, bin and trend test of every outcome); 'significant' means q < "
        f"{opts.alpha:g}. Minimum detectable effects "
        f"are at {opts.power:.0%} power and the uncorrected alpha."
    )
    return result


def _per_family(p_values: dict, family: dict, correction: str) -> dict:
    """``{key: adjusted p}``, each family (``family[key]``, the outcome) corrected on its own;
    keys keep their order."""
    groups: dict = {}
    for key in p_values:
        groups.setdefault(family[key], []).append(key)
    adjusted = {}
    for keys in groups.values():
        q = adjust_pvalues([p_values[k] for k in keys], correction)
        adjusted.update(zip(keys, q, strict=True))
    return {key: adjusted[key] for key in p_values}


def _family_qvalues(
    frame: pd.DataFrame,
    correction: str,
    p_column: str = "p_value",
    key: str = "_hypothesis",
    family: str | None = "outcome",
) -> pd.Series:
    """Adjusted p-values with each hypothesis (``key``) counted once in its family: one family
    per value of ``family`` (the outcome), or one for the whole frame when ``family`` is None."""
    first = frame.drop_duplicates(key)
    p = dict(zip(first[key], first[p_column].astype(float), strict=True))
    groups = (
        dict(zip(first[key], first[family], strict=True))
        if family is not None and family in first.columns
        else dict.fromkeys(p, "")
    )
    return frame[key].map(_per_family(p, groups, correction))


def _verdict(tested: list[dict] | None) -> str:
    """'predicts', 'no evidence', 'not enough data' or 'not testable' from a predictor's
    tested rows."""
    if not tested:
        return "not testable"
    if any(row["significant"] for row in tested):
        return "predicts"
    if all(row["underpowered"] for row in _headline_rows(tested)):
        return "not enough data"
    return "no evidence"


def _headline_rows(rows: list[dict]) -> list[dict]:
    """The rows that answer 'does this predictor matter': the trend for numeric predictors,
    the levels (or bins) otherwise."""
    trend = [row for row in rows if row["kind"] == "trend"]
    return trend or [row for row in rows if row["kind"] in ("level", "bin")]


def _rate_phrase(outcome: str, kind: str) -> str:
    if kind == "continuous":
        return f"median {outcome}"
    return _RATE_PHRASES.get(outcome, f"{outcome} rate")


def _fmt_effect(x: float) -> str:
    if x is None or np.isnan(x):
        return "–"
    if np.isinf(x):
        return "∞"
    if abs(x) >= 100:
        return f"{x:,.0f}"
    if abs(x) >= 10:
        return f"{x:.1f}"
    return f"{x:.2f}"


def _fmt_value(x: float) -> str:
    if x is None or np.isnan(x):
        return "–"
    if abs(x) >= 1000:
        return f"{x:,.0f}"
    return f"{x:.3g}"


def _fmt_q(q: float) -> str:
    text = fmt_p(q)
    return f"q < {text[1:]}" if text.startswith("<") else f"q = {text}"


def _sample_text(row, params: dict) -> str:
    info = params["outcomes"].get(row.outcome, {})
    unit = info.get("unit") or "rows"
    text = f"{int(row.n):,} {unit}"
    if info.get("cluster") and np.isfinite(row.n_clusters):
        text += f" from {int(row.n_clusters):,} accounts"
    return text


def _describe_row(row, params: dict, alpha: float) -> str:
    info = params["outcomes"].get(row.outcome, {})
    kind = info.get("kind") or "binary"
    phrase = _rate_phrase(row.outcome, kind)
    ci = f"{100 * (1 - alpha):.0f}% CI {_fmt_effect(row.ci_low)}–{_fmt_effect(row.ci_high)}"
    if not np.isfinite(row.ci_low):
        ci = "no interval"
    tail = f"({ci}; {_sample_text(row, params)}; {_fmt_q(row.q_value)})"
    if row.kind == "trend":
        direction = "higher" if row.std_effect > 0 else "lower"
        subject = f"Higher {row.predictor} goes with a {direction} {phrase}"
        if row.effect_type == "rank_biserial":
            return f"{subject}: rank-biserial correlation {row.effect:+.2f} {tail}."
        if row.effect_type == "spearman_rho":
            return f"{subject}: Spearman correlation {row.effect:+.2f} {tail}."
        return (
            f"{subject}: at the 75th percentile of {row.predictor} the odds are "
            f"{_fmt_effect(row.effect)}x those at the 25th {tail}."
        )
    label = _level_label(row.predictor, row.level, row.kind)
    if kind == "continuous":
        how = (
            f"{_fmt_effect(row.effect)}x"
            if row.effect_type == "median_ratio"
            else f"difference {_fmt_value(row.effect)}"
        )
        return (
            f"{label}: {phrase} {_fmt_value(row.rate_level)} vs {_fmt_value(row.rate_rest)} "
            f"for the rest, {how} {tail}."
        )
    return (
        f"{label}: {phrase} {row.rate_level:.0%} vs {row.rate_rest:.0%} for the rest, "
        f"{_fmt_effect(row.effect)}x the odds {tail}."
    )


def _level_label(predictor: str, level: str, kind: str) -> str:
    """'industry = FinTech', 'employees < 50', 'employees 50 to < 100', 'employees (trend)'."""
    if kind == "level":
        return f"{predictor} = {level}"
    return f"{predictor} {level}"


#: A detectable gap in a rate this large (in points / 100) is no gap a rate can have.
IMPLAUSIBLE_RATE_GAP = 0.5


def _mde_text(row) -> str:
    if row.mde_unit == "rate_diff":
        return f"±{100 * row.mde:.0f} points"
    if row.mde_unit == "median_ratio":
        return f"{row.mde:.2f}x either way"
    if row.mde_unit == "rank_biserial":
        return f"a rank-biserial correlation of ±{row.mde:.2f}"
    if row.mde_unit == "spearman_rho":
        return f"a Spearman correlation of ±{row.mde:.2f}"
    return f"{row.mde:.2g}"


def _findings(
    rows: list[dict],
    predictor_rows: list[dict],
    tested_groups: Mapping[tuple[str, str], list[dict]],
    params: dict,
    opts: _Options,
) -> list[str]:
    significant = [row for row in rows if row["significant"]]
    pairs = Counter(row["hypothesis_id"] for row in significant)
    # Of the two mirrored rows of a two-level split, describe the one above the null.
    significant = [
        row for row in significant if pairs[row["hypothesis_id"]] == 1 or row["std_effect"] > 0
    ]
    significant.sort(key=lambda row: -abs(row["std_effect"]))
    findings = []
    for row in significant:
        sentence = _describe_row(SimpleNamespace(**row), params, opts.alpha)
        if row["underpowered"]:
            sentence += " Small group: the size of this effect is uncertain and likely overstated."
        findings.append(sentence)
    for outcome, info in params["outcomes"].items():
        phrase = _rate_phrase(outcome, info.get("kind") or "binary")
        tested = {r["hypothesis_id"] for r in rows if r["outcome"] == outcome and _tested(r)}
        if tested and not any(r["significant"] for r in rows if r["outcome"] == outcome):
            findings.append(
                f"No predictor of the {phrase} stands out after correcting for multiple "
                f"testing ({len(tested)} tests)."
            )
        for verdict in predictor_rows:
            if verdict["outcome"] == outcome and verdict["verdict"] == "no evidence":
                own = tested_groups[(outcome, verdict["predictor"])]
                findings.append(_null_sentence(own, verdict["predictor"], phrase, opts))
    return findings


def _null_sentence(own: list[dict], predictor: str, phrase: str, opts: _Options) -> str:
    headline = _headline_rows(own)
    worst = SimpleNamespace(
        **max((row for row in headline if not row["underpowered"]), key=lambda r: r["mde_std"])
    )
    if worst.kind == "trend":
        what = f"an association stronger than {_mde_text(worst)}"
        if worst.effect_type == "odds_ratio_q3_vs_q1":
            what = (
                f"a difference between its 25th and 75th percentile of more than {_mde_text(worst)}"
            )
    else:
        what = f"any level whose {phrase} differs from the rest by more than {_mde_text(worst)}"
    sentence = (
        f"No evidence that {predictor} predicts the {phrase}: {what} would likely have been "
        f"detected ({opts.power:.0%} power)."
    )
    small = [str(row["level"]) for row in headline if row["underpowered"]]
    if small:
        sentence += f" Too little data to tell for: {', '.join(small)}."
    return sentence


def _power_caveats(
    predictor_rows: list[dict],
    tested_groups: Mapping[tuple[str, str], list[dict]],
    params: dict,
    notes: Mapping[tuple[str, str], str] | None = None,
) -> list[str]:
    caveats = []
    for verdict in predictor_rows:
        outcome, predictor = verdict["outcome"], verdict["predictor"]
        if verdict["verdict"] == "not enough data":
            info = params["outcomes"].get(outcome, {})
            phrase = _rate_phrase(outcome, info.get("kind") or "binary")
            headline = _headline_rows(tested_groups[(outcome, predictor)])
            best = SimpleNamespace(**min(headline, key=lambda r: r["mde_std"]))
            if best.mde_unit == "rate_diff" and best.mde >= IMPLAUSIBLE_RATE_GAP:
                # "beyond ±98 points" of a 75% rate: no gap that large can exist.
                caveats.append(
                    f"Not enough data to tell whether {predictor} predicts the {phrase}: "
                    "too few rows for an effect of any plausible size to be reliably detected."
                )
                continue
            caveats.append(
                f"Not enough data to tell whether {predictor} predicts the {phrase}: "
                f"only effects beyond {_mde_text(best)} could reliably be detected."
            )
        elif verdict["verdict"] == "not testable":
            # The reason itself, not "see the note column", which the report does not show.
            note = (notes or {}).get((outcome, predictor))
            why = f": {note}" if note else ""
            caveats.append(f"{predictor} could not be tested against {outcome}{why}.")
    return caveats


# ----------------------------------------------------------------------------------------------
# Out-of-sample replication


@dataclass
class ReplicationResult(Result):
    """Discovery findings re-tested on a later period; ``summary['replicated']`` marks the ones
    to recommend for the ICP."""

    @property
    def recommended(self) -> pd.DataFrame:
        """Rows of ``summary`` that replicated."""
        return self.summary[self.summary["replicated"]]


def replicate(
    discovery: PredictorResult,
    confirmation: pd.DataFrame | Mapping[str, pd.DataFrame | tuple[pd.DataFrame, str | None]],
    *,
    alpha: float | None = None,
    correction: str = "fdr_bh",
) -> ReplicationResult:
    """Re-test the significant findings of ``discovery`` on confirmation-period data.

    Each finding is re-tested with the same levels (same pooling into ``(other)``) and the same
    bin cut points as in discovery, with a ONE-SIDED test in the discovered direction (the
    hypothesis is directional once discovered). The p-values of the re-tested findings of each
    outcome form a new, small family corrected with ``correction`` (Benjamini-Hochberg by
    default, as in discovery; ``"holm"`` for family-wise control). A finding ``replicated`` when its
    confirmation effect points the same way and its corrected p-value is below ``alpha``
    (default: the discovery alpha).

    Parameters
    ----------
    discovery
        Result of :func:`test_predictors` / :func:`test_many` on the earlier period.
    confirmation
        The later period: a DataFrame (when discovery has one outcome), or ``{outcome: data}`` /
        ``{outcome: (data, cluster)}``; the cluster defaults to the discovery's.

    Returns
    -------
    ReplicationResult
        ``summary``: one row per discovery finding with the discovery effect, the confirmation
        ``n``, rates, effect and interval (two-sided), one-sided ``p_value_confirm``,
        ``q_value_confirm``, ``same_direction``, ``replicated`` and a ``status`` in words.
    """
    params = discovery.params
    alpha = params["alpha"] if alpha is None else alpha
    opts = _Options(
        alpha=alpha,
        power=params["power"],
        min_level_count=params["min_level_count"],
        min_level_clusters=params["min_level_clusters"],
        n_bins=params["n_bins"],
        underpowered_above=params["underpowered_above"],
        seed=params["seed"],
    )
    findings = discovery.summary[discovery.summary["significant"]]
    if isinstance(confirmation, pd.DataFrame):
        if len(params["outcomes"]) != 1 and findings["outcome"].nunique() > 1:
            raise InputError(
                "Discovery covers several outcomes: pass {outcome: data} for the confirmation."
            )
        only = next(iter(params["outcomes"])) if findings.empty else findings["outcome"].iloc[0]
        confirmation = {only: confirmation}
    rows = []
    caveats: list[str] = []
    for outcome, group in findings.groupby("outcome", sort=False):
        if outcome not in confirmation:
            raise InputError(f"No confirmation data for outcome {outcome!r}.")
        data, cluster = _unpack_question(confirmation[outcome])
        if cluster is None and not isinstance(confirmation[outcome], tuple):
            cluster = params["outcomes"][outcome]["cluster"]
        alternatives = {
            (row.predictor, row.level): "greater" if _above_null(row) else "less"
            for row in group.itertuples()
        }
        predictor_names = set(group["predictor"])
        block = _battery(
            data,
            outcome,
            categorical=[p for p in params["categorical"] if p in predictor_names],
            numeric=[p for p in params["numeric"] if p in predictor_names],
            cluster=cluster,
            opts=opts,
            unit=params["outcomes"][outcome]["unit"],
            schemes=params["schemes"][outcome],
            alternatives=alternatives,
            omnibus=False,
        )
        caveats += block.caveats
        retested = {(r["predictor"], r["level"], r["kind"]): r for r in block.rows}
        for row in group.itertuples():
            again = retested.get((row.predictor, row.level, row.kind))
            rows.append(_replication_row(row, again, opts))
    summary = pd.DataFrame(rows, columns=_REPLICATION_COLUMNS)
    if not summary.empty:
        summary["q_value_confirm"] = _family_qvalues(
            summary, correction, p_column="p_value_confirm"
        ).to_numpy()
        summary["replicated"] = (
            summary["same_direction"].astype(bool) & (summary["q_value_confirm"] < alpha)
        ).astype(bool)
        summary["status"] = [_replication_status(row, alpha) for row in summary.itertuples()]
    summary = summary.drop(columns="_hypothesis")
    result = ReplicationResult(
        title="Which findings replicate out of sample",
        summary=summary,
        caveats=caveats,
        params={"alpha": alpha, "correction": correction, "n_retested": len(summary)},
    )
    result.findings = _replication_findings(result, discovery.params, alpha)
    label = {"fdr_bh": "Benjamini-Hochberg", "holm": "Holm"}.get(correction, correction)
    result.caveats.append(
        f"Each discovery finding was re-tested one-sided in its discovered direction on the "
        f"confirmation data; {label} correction over the re-tested findings of each outcome "
        f"({len(summary)} in all)."
    )
    return result


_REPLICATION_COLUMNS = [
    "outcome",
    "predictor",
    "level",
    "kind",
    "effect_type",
    "effect",
    "ci_low",
    "ci_high",
    "q_value",
    "n_confirm",
    "n_clusters_confirm",
    "rate_level_confirm",
    "rate_rest_confirm",
    "effect_confirm",
    "ci_low_confirm",
    "ci_high_confirm",
    "p_value_confirm",
    "q_value_confirm",
    "test_confirm",
    "mde_confirm",
    "underpowered_confirm",
    "same_direction",
    "replicated",
    "status",
    "_hypothesis",
]


def _null_value(effect_type: str) -> float:
    return 1.0 if effect_type in RATIO_EFFECTS else 0.0


def _above_null(row) -> bool:
    return bool(row.effect > _null_value(row.effect_type))


def _replication_row(row, again: dict | None, opts: _Options) -> dict:
    out = {
        "outcome": row.outcome,
        "predictor": row.predictor,
        "level": row.level,
        "kind": row.kind,
        "effect_type": row.effect_type,
        "effect": row.effect,
        "ci_low": row.ci_low,
        "ci_high": row.ci_high,
        "q_value": row.q_value,
        "n_confirm": 0,
        "same_direction": False,
        "replicated": False,
        "status": "",
        "p_value_confirm": np.nan,
        "_hypothesis": f"{row.outcome}|{row.hypothesis_id}",
    }
    if again is None:
        out["status"] = "not testable: the level does not occur in the confirmation data"
        return out
    effect = again.get("effect", np.nan)
    out.update(
        n_confirm=again["n"],
        n_clusters_confirm=again.get("n_clusters", np.nan),
        rate_level_confirm=again.get("rate_level", np.nan),
        rate_rest_confirm=again.get("rate_rest", np.nan),
        effect_confirm=effect,
        ci_low_confirm=again.get("ci_low", np.nan),
        ci_high_confirm=again.get("ci_high", np.nan),
        p_value_confirm=again.get("p_value", np.nan),
        test_confirm=again.get("test", ""),
        mde_confirm=again.get("mde", np.nan),
        # Under the requested power (80%) for the effect discovery found: the confirmation's
        # smallest detectable effect (at that power) is larger than the discovered one (same
        # standardised scale). Discovered effects are inflated by their selection, so this is
        # if anything generous to the confirmation.
        underpowered_confirm=not abs(again.get("mde_std", np.nan)) <= abs(row.std_effect),
        same_direction=bool(
            not np.isnan(effect)
            and (effect > _null_value(row.effect_type)) == _above_null(row)
            and effect != _null_value(row.effect_type)
        ),
        status=again.get("note") or "",
    )
    return out


#: Why a finding that points the same way but is not significant again is not a failure: the
#: confirmation data had under the requested power (80%) to detect the discovered effect.
TOO_SMALL_TO_TELL = "the confirmation period is too small to tell"


def _replication_status(row, alpha: float) -> str:
    if row.replicated:
        return "replicated"
    if not np.isfinite(row.p_value_confirm):
        return row.status or "not testable in the confirmation data"
    if not row.same_direction:
        return "opposite direction in the confirmation period"
    if row.underpowered_confirm:
        return f"same direction, not significant; {TOO_SMALL_TO_TELL}"
    return "same direction, not significant"


def _replication_findings(result: ReplicationResult, params: dict, alpha: float) -> list[str]:
    summary = result.summary
    if summary.empty:
        return ["No discovery finding to re-test: nothing was significant in the discovery period."]
    findings = []
    for row in summary.itertuples():
        info = params["outcomes"].get(row.outcome, {})
        phrase = _rate_phrase(row.outcome, info.get("kind") or "binary")
        label = (
            row.predictor
            if row.kind == "trend"
            else _level_label(row.predictor, row.level, row.kind)
        )
        effect = f"{row.effect_type.replace('_', ' ')} {_fmt_effect(row.effect)} in discovery"
        if not np.isnan(row.effect_confirm):
            effect += f", {_fmt_effect(row.effect_confirm)} in confirmation"
        unit = info.get("unit") or "rows"
        why = "" if row.replicated else f"; {row.status}"
        if row.replicated:
            verdict = "Replicated"
        elif row.same_direction and row.underpowered_confirm:
            # Too few confirmation rows to see an effect of that size: no verdict either way.
            verdict = "Not confirmed, too little data to tell"
        else:
            verdict = "Did not replicate"
        findings.append(
            f"{verdict}: {label} and the {phrase} ({effect}; {row.n_confirm:,} {unit}, "
            f"{_fmt_q(row.q_value_confirm)}{why})."
        )
    findings.sort(key=lambda text: not text.startswith("Replicated"))
    return findings


# ----------------------------------------------------------------------------------------------
# Plot


def plot_forest(
    result: Result,
    *,
    effect_type: str | None = None,
    outcome: str | None = None,
    max_rows: int = 25,
    ax=None,
):
    """Forest plot: one line per row, the effect and its interval, significant rows highlighted.

    Works on a :class:`PredictorResult` (rows of one ``effect_type``; default ``odds_ratio``
    when there are any, else the most common ratio type) and on a multivariable model result
    (its odds ratios).
    Ratios are drawn on a log scale around 1; differences and correlations around 0. Shows at
    most ``max_rows`` rows: significant first, then the strongest. Returns the Axes.
    """
    import matplotlib.pyplot as plt
    from matplotlib import ticker

    frame = result.summary
    if "odds_ratio" in frame.columns and "effect" not in frame.columns:
        frame = frame.rename(columns={"odds_ratio": "effect"}).assign(
            effect_type="odds_ratio",
            label=frame.get("term", frame.index.astype(str)),
            significant=frame.get("significant", frame["p_value"] < 0.05),
            std_effect=np.log(frame["odds_ratio"]),
        )
    else:
        labels = [
            _level_label(p, str(lv), k)
            for p, lv, k in zip(frame["predictor"], frame["level"], frame["kind"], strict=True)
        ]
        frame = frame.assign(label=labels)
        if frame["outcome"].nunique() > 1:
            frame["label"] = frame["outcome"] + ": " + frame["label"]
    if outcome is not None:
        frame = frame[frame["outcome"] == outcome]
    if effect_type is None:
        ratio_rows = frame[frame["effect_type"].isin(RATIO_EFFECTS)]
        pool = ratio_rows if not ratio_rows.empty else frame
        if (pool["effect_type"] == "odds_ratio").any() or pool.empty:
            effect_type = "odds_ratio"
        else:
            effect_type = pool["effect_type"].mode().iloc[0]
    frame = frame[(frame["effect_type"] == effect_type) & np.isfinite(frame["effect"])]
    frame = frame.assign(_order=-frame["std_effect"].abs().fillna(0))
    frame = frame.sort_values(["significant", "_order"], ascending=[False, True]).head(max_rows)
    frame = frame.sort_values("effect")
    if ax is None:
        _, ax = plt.subplots(figsize=(7, 0.35 * max(len(frame), 3) + 1))
    ratio = effect_type in RATIO_EFFECTS
    null = 1.0 if ratio else 0.0
    positions = np.arange(len(frame))
    effect = frame["effect"].to_numpy(dtype=float)
    low = frame["ci_low"].to_numpy(dtype=float)
    high = frame["ci_high"].to_numpy(dtype=float)
    if ratio:
        # Keep infinite bounds (zero cells) on the chart, at its edge.
        finite = np.concatenate([effect, low[np.isfinite(low)], high[np.isfinite(high)]])
        finite = finite[finite > 0]
        edge_low = finite.min() / 2 if finite.size else 0.1
        edge_high = finite.max() * 2 if finite.size else 10.0
        low = np.where(low <= 0, edge_low, low)
        high = np.where(np.isposinf(high), edge_high, high)
    # No interval (reference levels, regularised estimates): the point alone.
    low = np.where(np.isnan(low), effect, low)
    high = np.where(np.isnan(high), effect, high)
    colours = np.where(frame["significant"].to_numpy(dtype=bool), "tab:blue", "tab:gray")
    for y, e, lo, hi, colour in zip(positions, effect, low, high, colours, strict=True):
        ax.plot([lo, hi], [y, y], color=colour, linewidth=1.5)
        ax.plot([e], [y], "o", color=colour)
    ax.axvline(null, color="black", linewidth=0.8, linestyle="--")
    if ratio:
        ax.set_xscale("log")
        # Plain numbers (0.5, 1, 2) rather than powers of ten on the log axis.
        ax.xaxis.set_major_locator(ticker.LogLocator(base=10, subs=(1.0, 2.0, 5.0)))
        ax.xaxis.set_major_formatter(ticker.FuncFormatter(lambda value, _: f"{value:g}"))
        ax.xaxis.set_minor_formatter(ticker.NullFormatter())
    ax.set_yticks(positions)
    ax.set_yticklabels(frame["label"].tolist())
    level = 100 * (1 - result.params.get("alpha", 0.05))
    ax.set_xlabel(
        f"{effect_type.replace('_', ' ')} ({level:.0f}% CI; blue = significant after correction)"
    )
    ax.set_ylim(-0.7, max(len(frame), 1) - 0.3)
    return ax
