"""Do the shortlisted predictors hold up together? A multivariable logistic regression.

Univariate tests (:mod:`icp_research.methods.predictors`) find traits that go with winning one at a
time; many of them travel together (large companies are often in one industry and one region).
This model puts the shortlist into one logistic regression, so each odds ratio is "holding the
others fixed", with:

- categorical predictors one-hot coded against a reference level (the most common one unless
  given; missing is a level, rare levels pooled into ``(other)``),
- numeric predictors log2-scaled (odds ratio per doubling) when they are non-negative, else
  standardised (per standard deviation), or binned like the univariate view; missing values
  get an indicator column,
- account-clustered standard errors (t with accounts - 1 degrees of freedom) for deals,
- a variance-inflation check (VIF) with a caveat above ``vif_threshold``,
- a clear message and an L2-regularised refit (estimates only, no intervals) when the outcome is
  perfectly or quasi-perfectly separated or the fit does not converge,
- a joint Wald test per predictor (all its terms at once): does the predictor add anything once
  the others are known, whatever its reference level?
"""

from __future__ import annotations

import math
import warnings
from collections.abc import Mapping, Sequence
from dataclasses import dataclass

import numpy as np
import pandas as pd

from icp_research.errors import InputError, NotEnoughData
from icp_research.formatting import fmt_p
from icp_research.methods.binning import MISSING, OTHER, apply_bins, bin_numeric, pool_rare_levels
from icp_research.methods.stats import adjust_pvalues
from icp_research.result import Result

JOINT_TEST_COLUMNS = [
    "predictor",
    "n_terms",
    "test",
    "statistic",
    "df_num",
    "df_denom",
    "p_value",
    "q_value",
    "independent",
]

MODEL_COLUMNS = [
    "term",
    "predictor",
    "level",
    "n",
    "odds_ratio",
    "ci_low",
    "ci_high",
    "p_value",
    "q_value",
    "significant",
    "vif",
    "note",
]


_EVENTS = {
    "won": "winning",
    "churned": "churning",
    "retained": "being retained",
    "best_customer": "being a best customer",
}


@dataclass
class ModelResult(Result):
    """Multivariable logistic regression: ``summary`` has one row per term (plus one reference
    row per categorical predictor, odds ratio 1); ``tables['predictors']`` one joint test per
    predictor (``JOINT_TEST_COLUMNS``); ``params`` says how it was fitted (``method``,
    ``regularized``, ``converged``, ``separation``)."""


def multivariable_model(
    data: pd.DataFrame,
    outcome: str,
    predictors: Sequence[str],
    *,
    categorical: Sequence[str] | None = None,
    cluster: str | None = None,
    alpha: float = 0.05,
    correction: str = "fdr_bh",
    min_level_count: int = 10,
    min_level_clusters: int = 5,
    reference: Mapping[str, str] | None = None,
    numeric_scale: str = "log2",
    n_bins: int = 5,
    bins: Mapping[str, Sequence[float]] | None = None,
    vif_threshold: float = 5.0,
    prior_sd: float = 2.5,
) -> ModelResult:
    """Logistic regression of a binary ``outcome`` on the shortlisted ``predictors``.

    Parameters
    ----------
    data
        One row per account, or per deal with ``cluster`` naming the account id column.
        Rows with a missing outcome are left out.
    predictors
        The shortlist (e.g. ``PredictorResult.shortlist()``). Columns listed in
        ``categorical``, and non-numeric or boolean columns, are categorical; the rest numeric.
    reference
        ``{predictor: level}`` reference levels; default the most common real level.
    numeric_scale
        ``"log2"`` (odds ratio per doubling; standardised instead when a column has negative
        values), ``"standardize"`` (per standard deviation) or ``"bins"`` (quantile bins,
        compared with the most common bin).
    bins
        ``{numeric predictor: cut points}`` for ``numeric_scale="bins"`` (e.g. the univariate
        tests' bins); default quantile bins of ``data`` (``n_bins``).
    vif_threshold
        Terms whose variance inflation factor exceeds this get a collinearity caveat.
    prior_sd
        Scale of the L2 (ridge) penalty used only as a fallback under separation or
        non-convergence: the penalty equals a normal prior with this standard deviation on each
        log odds ratio.

    Returns
    -------
    ModelResult
        ``summary`` with ``MODEL_COLUMNS``: odds ratios with (1 - alpha) intervals, p-values,
        ``q_value`` (``correction`` over the model's terms) and ``vif``. Under the regularised
        fallback, intervals and p-values are NaN and ``params['regularized']`` is True.
        ``tables['predictors']``: per predictor, the joint Wald test that all its terms are zero
        (F with accounts - 1 denominator degrees of freedom when clustered, else chi-square),
        ``q_value`` (``correction`` over the predictors) and ``independent`` (q < alpha): the
        predictor adds to the others. NaN under the regularised fallback.
    """
    import statsmodels.api as sm

    predictors = list(predictors)
    if not predictors:
        raise InputError("multivariable_model: no predictors given; pass the shortlist.")
    needed = [outcome, *predictors] + ([cluster] if cluster else [])
    missing = [c for c in needed if c not in data.columns]
    if missing:
        raise InputError(f"multivariable_model: columns {missing} not found in the data.")
    if numeric_scale not in {"log2", "standardize", "bins"}:
        raise InputError(
            f"numeric_scale must be 'log2', 'standardize' or 'bins', not {numeric_scale!r}."
        )
    frame = data[data[outcome].notna()]
    y = _binary_outcome(frame[outcome], outcome)
    caveats: list[str] = []
    if frame.shape[0] < len(data):
        caveats.append(f"{len(data) - len(frame):,} rows with no known {outcome} left out.")
    events = int(y.sum())
    if events == 0 or events == y.size:
        raise NotEnoughData(
            f"multivariable_model: every row has {outcome} = {int(y[0]) if y.size else '?'}; "
            "there is nothing to model."
        )
    clusters = None
    if cluster is not None:
        if frame[cluster].isna().any():
            raise InputError(f"Cluster column {cluster!r} has missing values; fill them.")
        clusters = pd.factorize(frame[cluster])[0]
    categorical = set(categorical or []) | {
        p
        for p in predictors
        if not pd.api.types.is_numeric_dtype(frame[p]) or pd.api.types.is_bool_dtype(frame[p])
    }
    design = _Design(frame.index)
    for name in predictors:
        if name in categorical or numeric_scale == "bins":
            if name in categorical:
                labels = pool_rare_levels(frame[name], min_level_count)
                if clusters is not None:
                    labels = _pool_few_clusters(labels, clusters, min_level_clusters)
            else:
                if bins and name in bins:
                    binned = apply_bins(frame[name], list(bins[name]))
                else:
                    binned, _ = bin_numeric(frame[name], n_bins)
                labels = pd.Series(np.asarray(binned).astype(str), index=frame.index)
            ref = (reference or {}).get(name)
            design.add_categorical(name, labels, ref)
        else:
            design.add_numeric(name, frame[name], numeric_scale)
    caveats += design.caveats
    exog = design.matrix()
    if exog.shape[1] == 1:
        raise NotEnoughData(
            "multivariable_model: no predictor varies in this data; nothing to model."
        )
    vif = _vif(exog)
    n_params = exog.shape[1] - 1
    rarer_class = min(events, y.size - events)
    if rarer_class / n_params < 10:
        caveats.append(
            f"Only {rarer_class / n_params:.1f} outcome events per model term (rule of thumb: "
            "at least 10): the estimates are unstable; shorten the shortlist."
        )
    separated = _separated_terms(exog, y)
    fit, fit_problem = _fit_logit(sm, y, exog, clusters)
    regularized = bool(separated) or fit_problem is not None
    if separated:
        caveats.append(
            "Separation: every row with "
            + ", ".join(separated)
            + f" has the same {outcome}, so its odds ratio is infinite and maximum likelihood "
            "has no finite answer. Estimates below are L2-regularised (shrunk toward 1) and "
            "have no intervals or p-values; read them as directions, not sizes."
        )
    elif fit_problem is not None:
        caveats.append(
            f"The logistic regression {fit_problem}; estimates below are L2-regularised "
            "(shrunk toward 1) and have no intervals or p-values."
        )
    summary = _summary_table(
        design,
        exog,
        fit,
        vif,
        y,
        sm,
        regularized=regularized,
        clusters=clusters,
        alpha=alpha,
        prior_sd=prior_sd,
    )
    summary["q_value"] = adjust_pvalues(summary["p_value"].to_numpy(dtype=float), correction)
    summary["significant"] = (summary["q_value"] < alpha).fillna(False).astype(bool)
    summary = summary[MODEL_COLUMNS]
    collinear = summary[summary["vif"] > vif_threshold]
    if not collinear.empty:
        caveats.append(
            "Collinearity: "
            + ", ".join(
                f"{t} (VIF {v:.1f})"
                for t, v in zip(collinear["term"], collinear["vif"], strict=True)
            )
            + f" exceed VIF {vif_threshold:g}; these predictors overlap, so their separate odds "
            "ratios are imprecise and can swap sign. Keep one of each overlapping group."
        )
    n_clusters = None if clusters is None else int(np.unique(clusters).size)
    method = "L2-regularised logit (no intervals)" if regularized else "logit"
    if clusters is not None and not regularized:
        method += f", account-clustered SE (t, df={n_clusters - 1})"
    params = {
        "outcome": outcome,
        "predictors": predictors,
        "n": int(y.size),
        "events": events,
        "n_clusters": n_clusters,
        "method": method,
        "regularized": regularized,
        "converged": fit_problem is None and not separated,
        "separation": separated,
        "references": design.references,
        "scales": design.scales,
        "alpha": alpha,
        "correction": correction,
        "pseudo_r2": float(fit.pseudo_rsquared(kind="mcf")) if not regularized else float("nan"),
        "aic": float(fit.aic) if not regularized else float("nan"),
    }
    joint = _joint_tests(design, fit, regularized=regularized, clustered=clusters is not None)
    joint["q_value"] = adjust_pvalues(joint["p_value"].to_numpy(dtype=float), correction)
    joint["independent"] = (joint["q_value"] < alpha).fillna(False).astype(bool)
    result = ModelResult(
        title=f"Multivariable model of {outcome}",
        summary=summary,
        caveats=caveats,
        tables={"predictors": joint[JOINT_TEST_COLUMNS]},
        params=params,
    )
    result.findings = _model_findings(result)
    return result


def _binary_outcome(values: pd.Series, outcome: str) -> np.ndarray:
    if pd.api.types.is_bool_dtype(values) or set(pd.unique(values.astype(float))) <= {0.0, 1.0}:
        return values.astype(float).to_numpy()
    raise InputError(
        f"multivariable_model models a boolean / 0-1 outcome; {outcome!r} has other values."
    )


def _pool_few_clusters(labels: pd.Series, clusters: np.ndarray, minimum: int) -> pd.Series:
    per_level = pd.Series(clusters, index=labels.index).groupby(labels).nunique()
    few = [lv for lv, g in per_level.items() if g < minimum and lv not in (MISSING, OTHER)]
    return labels.where(~labels.isin(few), OTHER)


class _Design:
    """Columns of the model matrix with their predictor, level and meaning."""

    def __init__(self, index: pd.Index):
        self.index = index
        self.columns: dict[str, np.ndarray] = {}
        self.terms: list[dict] = []
        self.references: dict[str, str] = {}
        self.scales: dict[str, str] = {}
        self.caveats: list[str] = []

    def add_categorical(self, name: str, labels: pd.Series, reference: str | None) -> None:
        counts = labels.value_counts()
        if counts.size < 2:
            self.caveats.append(f"{name} has a single level here and is left out of the model.")
            return
        real = [lv for lv in counts.index if lv not in (MISSING, OTHER)]
        if reference is None:
            reference = real[0] if real else counts.index[0]
        if reference not in counts.index:
            raise InputError(
                f"Reference level {reference!r} of {name!r} does not occur; "
                f"levels: {list(counts.index)[:10]}."
            )
        self.references[name] = str(reference)
        self.terms.append(
            {
                "term": f"{name}={reference} (reference)",
                "predictor": name,
                "level": str(reference),
                "n": int(counts[reference]),
                "column": None,
            }
        )
        # Level codes compared, not the labels: one pass over the text per predictor.
        codes, uniques = pd.factorize(labels)
        position = {level: i for i, level in enumerate(uniques)}
        for level in counts.index:
            if level == reference:
                continue
            column = f"{name}={level}"
            self.columns[column] = (codes == position[level]).astype(float)
            self.terms.append(
                {
                    "term": column,
                    "predictor": name,
                    "level": str(level),
                    "n": int(counts[level]),
                    "column": column,
                }
            )

    def add_numeric(self, name: str, values: pd.Series, scale: str) -> None:
        x = pd.to_numeric(values, errors="coerce").to_numpy(dtype=float)
        known = ~np.isnan(x)
        if known.sum() < 2 or np.nanstd(x) == 0:
            self.caveats.append(f"{name} does not vary here and is left out of the model.")
            return
        if scale == "log2" and np.nanmin(x) >= 0:
            shift = 1.0 if np.nanmin(x) == 0 else 0.0
            transformed = np.log2(x + shift)
            meaning = "per doubling" if shift == 0 else "per doubling of (value + 1)"
        else:
            transformed = (x - np.nanmean(x)) / np.nanstd(x, ddof=1)
            meaning = f"per standard deviation ({np.nanstd(x, ddof=1):,.3g})"
        self.scales[name] = meaning
        median = float(np.nanmedian(transformed))
        self.columns[name] = np.where(known, transformed, median)
        self.terms.append(
            {
                "term": name,
                "predictor": name,
                "level": meaning,
                "n": int(known.sum()),
                "column": name,
            }
        )
        if (~known).any():
            column = f"{name}={MISSING}"
            self.columns[column] = (~known).astype(float)
            self.terms.append(
                {
                    "term": column,
                    "predictor": name,
                    "level": MISSING,
                    "n": int((~known).sum()),
                    "column": column,
                }
            )

    def matrix(self) -> pd.DataFrame:
        """The model matrix, ``const`` first: one array, filled column by column, each
        column's own array let go as it is copied in (at 10M deals a design is gigabytes, and
        a frame built from the columns held both)."""
        names = list(self.columns)
        values = np.empty((len(self.index), len(names) + 1), order="F")
        values[:, 0] = 1.0
        for i, name in enumerate(names, start=1):
            values[:, i] = self.columns[name]
            self.columns[name] = values[:, i]
        return pd.DataFrame(values, index=self.index, columns=["const", *names], copy=False)


def _vif(exog: pd.DataFrame) -> dict[str, float]:
    """Variance inflation factor of every non-constant column.

    With an intercept in the model, VIF_j = 1 / (1 - R^2_j) is the j-th diagonal element of the
    inverse correlation matrix of the predictors: one small inversion instead of one regression
    per column (statsmodels' ``variance_inflation_factor``), which is used as the fallback when
    that matrix is singular or ill-conditioned.
    """
    columns = [c for c in exog.columns if c != "const"]
    with warnings.catch_warnings(), np.errstate(divide="ignore", invalid="ignore"):
        warnings.simplefilter("ignore")
        if len(columns) == 1:
            return {columns[0]: 1.0}
        values = exog.to_numpy(dtype=float, copy=False)  # one block: a view
        at = [i for i, c in enumerate(exog.columns) if c != "const"]
        picked = values[:, 1:] if at == list(range(1, values.shape[1])) else values[:, at]
        correlation = _correlation(picked)
        if np.all(np.isfinite(correlation)) and np.linalg.cond(correlation) < 1e10:
            diagonal = np.diag(np.linalg.inv(correlation))
            return {c: float(v) for c, v in zip(columns, diagonal, strict=True)}
        return _vif_by_regression(exog)


def _correlation(values: np.ndarray, rows: int = 1 << 18) -> np.ndarray:
    """``np.corrcoef(values, rowvar=False)`` without copying ``values``: the centred
    cross-products are summed over blocks of ``rows`` rows (the whole-matrix copies that
    ``corrcoef`` makes are gigabytes at 10M deals)."""
    n = values.shape[0]
    mean = values.mean(axis=0)
    cross = np.zeros((values.shape[1], values.shape[1]))
    for start in range(0, n, rows):
        block = values[start : start + rows] - mean
        cross += block.T @ block
    cross /= n - 1
    scale = np.sqrt(np.diag(cross))
    cross /= scale[:, None]
    cross /= scale[None, :]
    return np.clip(cross, -1, 1)


def _vif_by_regression(exog: pd.DataFrame) -> dict[str, float]:
    from statsmodels.stats.outliers_influence import variance_inflation_factor

    values = exog.to_numpy(dtype=float)
    out = {}
    for i, column in enumerate(exog.columns):
        if column != "const":
            out[column] = float(variance_inflation_factor(values, i))
    return out


def _separated_terms(exog: pd.DataFrame, y: np.ndarray) -> list[str]:
    """Indicator columns whose rows all share one outcome (quasi-complete separation)."""
    separated = []
    for column in exog.columns[1:]:
        values = exog[column].to_numpy()
        if ((values == 0.0) | (values == 1.0)).all():
            inside = y[values == 1]
            if inside.size and (inside.min() == inside.max()):
                separated.append(column)
    return separated


def _fit_logit(sm, y: np.ndarray, exog: pd.DataFrame, clusters):
    """Maximum-likelihood fit; returns ``(fit, problem)`` with ``problem`` None when usable.

    Clustered rows whose terms are the same within each account (deals of an account with the
    account's attributes) are fitted as one row per account and outcome, weighted by its count
    (see :func:`_per_account`): the same estimates, likelihood and account-clustered inference
    as the fit over every row, from a tenth of the rows at ten deals per account. Rows of one
    account each (or unclustered) that repeat the same terms and outcome are fitted once,
    weighted (see :func:`_by_pattern`).
    """
    compressed = _per_account(y, exog, clusters) if clusters is not None else None
    patterns = _by_pattern(y, exog, clusters) if compressed is None else None
    if compressed is not None:
        y_fit, exog_fit, weights, groups = compressed
        model = sm.GLM(y_fit, exog_fit, family=sm.families.Binomial(), freq_weights=weights)
    elif patterns is not None:
        y_fit, exog_fit, weights = patterns
        model = sm.GLM(y_fit, exog_fit, family=sm.families.Binomial(), freq_weights=weights)
    else:
        model, groups = sm.GLM(y, exog, family=sm.families.Binomial()), clusters
    kwargs = {}
    if clusters is not None and patterns is None:
        kwargs = {"cov_type": "cluster", "cov_kwds": {"groups": groups}, "use_t": True}
    problem = None
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        try:
            fit = model.fit(**kwargs)
        except Exception as error:  # statsmodels raises PerfectSeparationError in old releases
            return None, f"could not be fitted ({type(error).__name__}: {error})"
    if compressed is not None:
        # statsmodels' small-sample factor G/(G-1) * (N-1)/(N-K) counts the weighted rows as
        # N; the fit over every row counts the rows themselves.
        n, rows, k = y.size, exog_fit.shape[0], exog_fit.shape[1]
        results = fit._results
        results.cov_params_default = results.cov_params_default * (
            ((n - 1) / (n - k)) / ((rows - 1) / (rows - k))
        )
        results._cache.clear()  # bse, p-values and intervals follow the covariance
    if patterns is not None and clusters is not None:
        _singleton_cluster_cov(fit, y.size)
    if any("separation" in str(w.message).lower() for w in caught):
        problem = "shows perfect separation"
    elif not fit.converged:
        problem = "did not converge"
    elif np.any(np.abs(fit.params.to_numpy()[1:]) > 10) or not np.all(np.isfinite(fit.bse)):
        problem = "produced implausibly large coefficients (quasi-separation)"
    return fit, problem


def _by_pattern(y: np.ndarray, exog: pd.DataFrame, clusters):
    """``(outcome, terms, weights)``: one row per distinct row of terms and outcome, weighted by
    how many rows have it; None when rows share an account (``clusters`` with repeats: see
    :func:`_per_account`) or when few rows repeat. Binned and categorical terms take a handful
    of values, so 800,000 accounts fit as a thousand weighted rows: the same likelihood,
    estimates and information matrix as the fit over every row."""
    n = y.size
    if n < 2_000 or (clusters is not None and np.unique(clusters).size < n):
        return None
    key = np.zeros(n, dtype=np.int64)
    for values in [y, *(exog[c].to_numpy() for c in exog.columns)]:
        codes, levels = pd.factorize(values)
        key = key * len(levels) + codes
        key = pd.factorize(key)[0]  # kept small: one code per distinct row so far
        if key.max() + 1 > n // 2:
            return None  # mostly distinct rows (a continuous term): nothing to gain
    codes, first = np.unique(key, return_index=True)
    weights = np.bincount(key, minlength=codes.size).astype(float)
    return y[first], exog.iloc[first].reset_index(drop=True), weights


def _singleton_cluster_cov(fit, n: int) -> None:
    """Give a fit by :func:`_by_pattern` the covariance of the account-clustered fit over
    every row when every account has one row: the sandwich of the information matrix around
    the sum over rows of the squared scores, times statsmodels' small-sample factor
    G/(G-1) (N-1)/(N-K) (with G = N), and t inference on N - 1 degrees of freedom."""
    results = fit._results
    exog = results.model.exog
    weights = np.asarray(results.model.freq_weights, dtype=float)
    mu = np.asarray(results.mu, dtype=float)
    residual = np.asarray(results.model.endog, dtype=float) - mu
    bread = np.linalg.inv((exog * (weights * mu * (1 - mu))[:, None]).T @ exog)
    meat = (exog * (weights * residual**2)[:, None]).T @ exog
    k = exog.shape[1]
    results.cov_params_default = bread @ meat @ bread * (n / (n - k))
    results.cov_type = "cluster"
    results.use_t = True
    results.df_resid_inference = n - 1
    results._cache.clear()


def _per_account(y: np.ndarray, exog: pd.DataFrame, clusters: np.ndarray):
    """``(outcome, terms, weights, accounts)``: one row per account and outcome (won, lost)
    weighted by how many of the account's rows have it, or None when a term varies within an
    account. A logit is a sum over rows of ``y log p + (1 - y) log(1 - p)`` and its clustered
    score a sum per account, so both are unchanged by the grouping (tested against the fit over
    every row)."""
    codes, first = np.unique(clusters, return_index=True)
    if codes.size == clusters.size:
        return None  # one row per account: nothing to gain
    position = np.searchsorted(codes, clusters)
    # Column by column: a copy of the whole design per row is gigabytes at 10M deals.
    for column in exog.columns:
        values = exog[column].to_numpy()
        if not (values == values[first][position]).all():
            return None
    sizes = np.bincount(position, minlength=codes.size).astype(float)
    events = np.bincount(position, weights=y, minlength=codes.size)
    weights = np.concatenate([events, sizes - events])
    keep = weights > 0
    rows = np.concatenate([first, first])[keep]
    outcome = np.concatenate([np.ones(codes.size), np.zeros(codes.size)])[keep]
    groups = np.concatenate([codes, codes])[keep]
    terms = exog.iloc[rows].reset_index(drop=True)
    return outcome, terms, weights[keep], groups


def _summary_table(
    design: _Design,
    exog: pd.DataFrame,
    fit,
    vif: dict[str, float],
    y: np.ndarray,
    sm,
    *,
    regularized: bool,
    clusters,
    alpha: float,
    prior_sd: float,
) -> pd.DataFrame:
    if regularized:
        # Ridge penalty = normal prior N(0, prior_sd^2) on each slope; statsmodels scales the
        # log-likelihood by 1/n, hence the division. The intercept is not penalised.
        penalty = np.full(exog.shape[1], 1 / (y.size * prior_sd**2))
        penalty[0] = 0.0
        model = sm.GLM(y, exog, family=sm.families.Binomial())
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            penalised = model.fit_regularized(alpha=penalty, L1_wt=0.0)
        params = pd.Series(np.asarray(penalised.params), index=exog.columns)
        low = high = p_values = pd.Series(np.nan, index=exog.columns)
    else:
        params = fit.params
        interval = fit.conf_int(alpha=alpha)
        low, high, p_values = interval[0], interval[1], fit.pvalues
    rows = []
    for term in design.terms:
        column = term["column"]
        if column is None:
            rows.append(
                {
                    **term,
                    "odds_ratio": 1.0,
                    "ci_low": np.nan,
                    "ci_high": np.nan,
                    "p_value": np.nan,
                    "vif": np.nan,
                    "note": "reference level",
                }
            )
            continue
        rows.append(
            {
                **term,
                "odds_ratio": math.exp(params[column]),
                "ci_low": math.exp(low[column]) if np.isfinite(low[column]) else np.nan,
                "ci_high": math.exp(high[column]) if np.isfinite(high[column]) else np.nan,
                "p_value": float(p_values[column]),
                "vif": vif.get(column, np.nan),
                "note": "regularised estimate" if regularized else "",
            }
        )
    return pd.DataFrame(rows).drop(columns="column")


def _joint_tests(design: _Design, fit, *, regularized: bool, clustered: bool) -> pd.DataFrame:
    """Wald test that every term of a predictor is zero, one row per predictor in the model."""
    columns: dict[str, list[str]] = {}
    for term in design.terms:
        if term["column"] is not None:
            columns.setdefault(term["predictor"], []).append(term["column"])
    rows = []
    names = list(fit.params.index) if fit is not None else []
    for predictor, terms in columns.items():
        row = {
            "predictor": predictor,
            "n_terms": len(terms),
            "test": "not tested (regularised fit)",
            "statistic": np.nan,
            "df_num": len(terms),
            "df_denom": np.nan,
            "p_value": np.nan,
        }
        if not regularized:
            restriction = np.zeros((len(terms), len(names)))
            for i, column in enumerate(terms):
                restriction[i, names.index(column)] = 1.0
            with warnings.catch_warnings():
                warnings.simplefilter("ignore")
                # Clustered fits carry t inference with accounts - 1 degrees of freedom; the
                # joint test is the matching F.
                wald = fit.wald_test(restriction, use_f=clustered, scalar=True)
            row.update(
                test="wald_f_cluster" if clustered else "wald_chi2",
                statistic=float(wald.statistic),
                df_denom=float(wald.df_denom) if clustered else np.nan,
                p_value=float(wald.pvalue),
            )
        rows.append(row)
    return pd.DataFrame(rows, columns=JOINT_TEST_COLUMNS[:-2])


def _model_findings(result: ModelResult) -> list[str]:
    params, summary = result.params, result.summary
    level = 100 * (1 - params["alpha"])
    findings = []
    fitted = summary[summary["note"] != "reference level"]
    if params["regularized"]:
        findings.append(
            "The model could not be estimated by maximum likelihood (see caveats); the "
            "regularised odds ratios below show directions only."
        )
    event = _EVENTS.get(params["outcome"], params["outcome"])
    for row in fitted[fitted["significant"]].itertuples():
        findings.append(
            f"Holding the other predictors fixed, {_term_text(row, params)}: "
            f"{row.odds_ratio:.2f}x the odds of {event} ({level:.0f}% CI "
            f"{row.ci_low:.2f}–{row.ci_high:.2f}; q {_q_text(row.q_value)})."
        )
    quiet = fitted[~fitted["significant"] & fitted["p_value"].notna()]
    if not quiet.empty:
        findings.append(
            "No independent effect once the others are held fixed: "
            + ", ".join(_term_text(row, params) for row in quiet.itertuples())
            + "."
        )
    sample = f"{params['n']:,} rows, {params['events']:,} with {params['outcome']}"
    if params["n_clusters"]:
        sample += f", from {params['n_clusters']:,} accounts"
    findings.append(f"Model: {params['method']}; {sample}.")
    return findings


def _term_text(row, params: dict) -> str:
    if row.predictor in params["references"]:
        return f"{row.predictor} = {row.level} (vs {params['references'][row.predictor]})"
    if row.level == MISSING:
        return f"{row.predictor} unknown"
    return f"{row.predictor} ({row.level})"


def _q_text(q: float) -> str:
    text = fmt_p(q)
    return f"< {text[1:]}" if text.startswith("<") else f"= {text}"
