"""Segmentation: split the accounts into segments and compare them on the metrics that matter.

Three segmentations, side by side:

``rule``
    SMB / Mid-market / Enterprise by employees (the ``[segments]`` config section; see
    :func:`icp_research.data.facts.size_segments`).
``kmeans``
    k-means on the candidate attributes: numeric ones log-transformed when skewed (money,
    head counts), missing values set to the median, standardised; categorical ones one-hot
    (0/1, rare levels pooled). k is the one with the highest mean silhouette over ``k_range``
    (computed on a seeded sample: silhouettes need every pairwise distance). Seeded k-means++
    starts and Lloyd iterations, several starts, the lowest within-cluster sum of squares kept.
``ward``
    Agglomerative clustering with Ward's criterion (scipy) on the same features. It needs every
    pairwise distance, so on large data it runs on a seeded sample and the other accounts join
    the cluster with the nearest centroid; k again by silhouette.

For every segment the seeds' metrics, each with its interval (:func:`segment_metrics`):
accounts, customers, CLV (mean with a t interval; median), churn per customer-year (exact
Poisson interval), win rate of new-business deals (interval clustered by account), average won
deal size (ACV; clustered by account), median sales cycle of won deals (distribution-free
interval), net revenue retention (ratio of ARR now to a year ago; clustered), the share of best
customers, and a profile: the attribute levels most over-represented in the segment.
"""

from __future__ import annotations

import numpy as np
import pandas as pd

from icp_research.data.facts import DAYS_PER_YEAR
from icp_research.formatting import fmt_money, fmt_pct
from icp_research.methods.binning import MISSING, OTHER, bin_numeric, pool_rare_levels
from icp_research.methods.stats import (
    adjust_pvalues,
    clustered_rate_ci,
    clustered_ratio_ci,
    mean_ci,
    median_ci,
    poisson_rate_ci,
    proportion_ci,
    shrink_rates,
    two_proportion_pvalue,
)
from icp_research.result import Result, View

#: Columns of ``segments.csv``, in order.
SEGMENT_COLUMNS = [
    "segmentation",
    "segment",
    "accounts",
    "customers",
    "clv",
    "clv_ci_low",
    "clv_ci_high",
    "clv_median",
    "churn_rate",
    "churn_rate_ci_low",
    "churn_rate_ci_high",
    "churned_customers",
    "customer_years",
    "win_rate",
    "win_rate_ci_low",
    "win_rate_ci_high",
    "win_rate_shrunk",
    "closed_deals",
    "deal_accounts",
    "avg_deal_size",
    "avg_deal_size_ci_low",
    "avg_deal_size_ci_high",
    "won_deals",
    "sales_cycle_days",
    "sales_cycle_days_ci_low",
    "sales_cycle_days_ci_high",
    "nrr",
    "nrr_ci_low",
    "nrr_ci_high",
    "nrr_customers",
    "best_customer_share",
    "best_customer_share_ci_low",
    "best_customer_share_ci_high",
    "best_customer_share_shrunk",
    "arr",
    "profile",
]

#: The metrics of the heatmap: column, label, whether higher is better.
HEATMAP_METRICS = [
    ("win_rate", "Win rate", True),
    ("churn_rate", "Churn / customer-year", False),
    ("clv", "CLV (mean)", True),
    ("avg_deal_size", "Avg deal size", True),
    ("sales_cycle_days", "Sales cycle (days)", False),
    ("nrr", "NRR", True),
    ("best_customer_share", "Best-customer share", True),
]

ALL = "All accounts"
#: Below this mean silhouette clusters are weakly separated (Kaufman & Rousseeuw).
WEAK_SILHOUETTE = 0.25


class SegmentResult(Result):
    """Result of :func:`segment_accounts`.

    ``summary`` is ``segments.csv`` (:data:`SEGMENT_COLUMNS`): a first row for all accounts
    (``segmentation`` ``all``), then one row per segment of each segmentation (``rule``,
    ``kmeans``, ``ward``). Rates are fractions; churn is per customer-year; money in the
    export's currency; ``sales_cycle_days`` in days. ``tables``: ``silhouette`` (method, k,
    silhouette, chosen), ``profiles`` (segmentation, segment, attribute, level, share in the
    segment, share overall, lift), ``assignments`` (account_id and the segment of each
    segmentation), ``features`` (the clustering features and how each was transformed).
    """

    def views(self) -> dict:
        """The segment tables by name, each with its reason when empty (see
        :func:`segment_views`)."""
        return segment_views(self)


# ---------------------------------------------------------------------------------------------
# Metrics


def segment_metrics(
    facts: pd.DataFrame,
    deals: pd.DataFrame | None,
    segment,
    *,
    segmentation: str = "segment",
    alpha: float = 0.05,
    include_all: bool = True,
) -> pd.DataFrame:
    """The seeds' metrics for every segment, with intervals.

    Parameters
    ----------
    facts : DataFrame
        Account facts (:data:`icp_research.data.facts.FACT_COLUMNS`), one row per account.
    deals : DataFrame or None
        Deal facts (:func:`icp_research.data.facts.deal_facts`): ``account_id``, ``is_new_business``,
        ``is_closed``, ``stage``, ``amount``, ``cycle_days``. None when there are no deals.
    segment : Series or dict of Series
        The segment of each account, indexed like ``facts`` (accounts without one are left
        out), or ``{segmentation name: Series}`` to compute several segmentations at once.
    segmentation : str
        Name written in the ``segmentation`` column when ``segment`` is one Series.
    include_all : bool
        Start with a row for all accounts (``segmentation`` ``all``) as the reference.

    Returns
    -------
    DataFrame with :data:`SEGMENT_COLUMNS` except ``profile``: one row per segment, in the
    order of the segment's categories when it is categorical, else sorted. The proportions
    (``win_rate``, ``best_customer_share``) also come empirical-Bayes shrunk
    (``<metric>_shrunk``, fractions; :func:`icp_research.methods.stats.shrink_rates`): a beta
    prior fitted over the segments of the same segmentation pulls small segments toward the
    segmentation's pooled rate. The win rate is shrunk on deal counts (deals treated as
    independent, although clustered by account), the best-customer share on accounts. The
    ``all`` row keeps its raw rate. Churn is a rate per customer-year, not a proportion, and is
    not shrunk.
    """
    segmentations = segment if isinstance(segment, dict) else {segmentation: segment}
    needed = [
        c
        for c in (
            "account_id",
            "is_customer",
            "clv",
            "churned",
            "tenure_days",
            "arr_current",
            "arr_12m_ago",
            "best_customer",
            "retained",
        )
        if c in facts
    ]
    facts = facts[needed]
    per_account_deals = _per_account_deals(deals)
    cycles = _won_cycles(deals)
    # The base row counts the deals of the accounts the segments divide, as they do: deals at
    # companies the accounts table lacks (a customer list beside a pipeline) have no segment,
    # and the customers' own win rate compared with one that counts them ("Cluster 2 wins 99%
    # vs 28% overall") is no comparison.
    known = pd.Index(facts["account_id"].dropna().unique())
    if per_account_deals is not None:
        per_account_deals = per_account_deals[per_account_deals.index.isin(known)]
    if cycles is not None:
        cycles = cycles[cycles["account_id"].isin(known)]
    groups = [("all", ALL, np.ones(len(facts), bool))] if include_all else []
    account_segments = {}
    for name, values in segmentations.items():
        values = pd.Series(values, index=facts.index)
        labels = _segment_order(values)
        as_text = values.to_numpy(dtype=object)
        groups += [(name, label, as_text == label) for label in labels]
        account_segments[name] = pd.Series(as_text, index=facts["account_id"].to_numpy())
    rows = []
    for name, label, members in groups:
        row = {"segmentation": name, "segment": str(label)}
        row.update(_account_metrics(facts[members], alpha))
        if per_account_deals is not None:
            chosen = per_account_deals
            if name != "all":
                of = account_segments[name].reindex(per_account_deals.index).to_numpy()
                chosen = per_account_deals[of == label]
            row.update(_deal_metrics(chosen, alpha))
        if cycles is not None:
            chosen = cycles["cycle_days"].to_numpy(dtype=float)
            if name != "all":
                of = account_segments[name].reindex(cycles["account_id"]).to_numpy()
                chosen = chosen[of == label]
            median, low, high, _ = median_ci(chosen, alpha)
            row.update(
                sales_cycle_days=median,
                sales_cycle_days_ci_low=low,
                sales_cycle_days_ci_high=high,
            )
        rows.append(row)
    table = pd.DataFrame(rows)
    _add_shrunk(table)
    return table.reindex(columns=SEGMENT_COLUMNS[:-1])


def _add_shrunk(table: pd.DataFrame) -> None:
    """``win_rate_shrunk`` and ``best_customer_share_shrunk``, one beta prior per segmentation."""
    for metric, events, trials in (
        ("win_rate", "won_deals", "closed_deals"),
        ("best_customer_share", "_best", "_best_known"),
    ):
        column = f"{metric}_shrunk"
        table[column] = table.get(metric, np.nan)
        if events not in table or trials not in table:
            continue
        for name, part in table.groupby("segmentation", sort=False):
            if name == "all":
                continue
            k = pd.to_numeric(part[events], errors="coerce").to_numpy(float)
            n = pd.to_numeric(part[trials], errors="coerce").fillna(0).to_numpy(float)
            table.loc[part.index, column] = shrink_rates(k, n)["rate_shrunk"]


def _segment_order(segment: pd.Series) -> list:
    present = segment.dropna()
    if isinstance(segment.dtype, pd.CategoricalDtype):
        return [c for c in segment.cat.categories if (present == c).any()]
    return sorted(present.unique(), key=str)


def _account_metrics(facts: pd.DataFrame, alpha: float) -> dict:
    customers = facts["is_customer"].fillna(False).astype(bool)
    out = {"accounts": int(len(facts)), "customers": int(customers.sum())}
    clv = pd.to_numeric(facts.loc[customers, "clv"], errors="coerce").to_numpy(dtype=float)
    mean, low, high, _ = mean_ci(clv, alpha)
    out.update(clv=mean, clv_ci_low=low, clv_ci_high=high)
    out["clv_median"] = float(np.nanmedian(clv)) if np.isfinite(clv).any() else np.nan
    churned = facts.loc[customers, "churned"]
    if churned.notna().any():
        events = float(churned.fillna(False).astype(bool).sum())
        known = customers & facts["churned"].notna()  # churn unknown: no exposure either
        exposure = float(facts.loc[known, "tenure_days"].sum()) / DAYS_PER_YEAR
        rate, low, high = poisson_rate_ci(events, exposure, alpha)
        out.update(
            churn_rate=rate,
            churn_rate_ci_low=low,
            churn_rate_ci_high=high,
            churned_customers=int(events),
            customer_years=exposure,
        )
    paying = facts["arr_12m_ago"] > 0
    if paying.any():
        ratio, low, high, n, se = clustered_ratio_ci(
            facts.loc[paying, "arr_current"], facts.loc[paying, "arr_12m_ago"], alpha
        )
        if not se > 0:
            # Every customer kept exactly what it paid (three customers on one plan): a
            # spread of zero is no interval, not "100% (100%-100%)".
            low = high = np.nan
        # ARR is never negative, nor is their ratio (the overview clips its interval so too).
        out.update(
            nrr=ratio,
            nrr_ci_low=max(0.0, low) if np.isfinite(low) else low,
            nrr_ci_high=high,
            nrr_customers=int(n),
        )
    else:
        out["nrr_customers"] = 0
    if "best_customer" in facts:
        best = facts["best_customer"].dropna().astype(bool)
        if len(best):
            low, high = proportion_ci(best.sum(), len(best), alpha)
            out.update(
                best_customer_share=float(best.mean()),
                best_customer_share_ci_low=float(low),
                best_customer_share_ci_high=float(high),
                _best=float(best.sum()),
                _best_known=float(len(best)),
            )
    retained = facts["retained"].fillna(False).astype(bool) if "retained" in facts else customers
    out["arr"] = float(pd.to_numeric(facts.loc[retained, "arr_current"], errors="coerce").sum())
    return out


def _per_account_deals(deals: pd.DataFrame | None) -> pd.DataFrame | None:
    """Closed and won new-business deals and won amount per account (index account_id)."""
    if deals is None or len(deals) == 0:
        return None
    # The columns read here, then the rows: not a copy of every deal column.
    used = [c for c in ("account_id", "is_closed", "stage", "amount") if c in deals.columns]
    new = deals.loc[deals["is_new_business"].astype(bool) & deals["account_id"].notna(), used]
    closed = new["is_closed"].astype(bool).to_numpy()
    won = (new["stage"] == "won").to_numpy()
    amount = (
        pd.to_numeric(new["amount"], errors="coerce").to_numpy(dtype=float)
        if "amount" in new
        else np.full(len(new), np.nan)
    )
    known_amount = won & ~np.isnan(amount)
    frame = pd.DataFrame(
        {
            "account_id": new["account_id"].to_numpy(),
            "closed": closed.astype(float),
            "won": won.astype(float),
            "priced": known_amount.astype(float),
            "won_amount": np.where(known_amount, amount, 0.0),
        }
    )
    return frame.groupby("account_id", sort=False).sum()


def _won_cycles(deals: pd.DataFrame | None) -> pd.DataFrame | None:
    if deals is None or len(deals) == 0 or "cycle_days" not in deals:
        return None
    return deals.loc[
        deals["is_new_business"].astype(bool)
        & (deals["stage"] == "won")
        & deals["account_id"].notna()
        & deals["cycle_days"].notna(),
        ["account_id", "cycle_days"],
    ]


def _deal_metrics(per_account: pd.DataFrame, alpha: float) -> dict:
    rate, low, high, n_accounts = clustered_rate_ci(
        per_account["won"].to_numpy(), per_account["closed"].to_numpy(), alpha
    )
    size, size_low, size_high, _, _ = clustered_ratio_ci(
        per_account["won_amount"].to_numpy(), per_account["priced"].to_numpy(), alpha
    )
    return {
        "win_rate": rate,
        "win_rate_ci_low": low,
        "win_rate_ci_high": high,
        "closed_deals": int(per_account["closed"].sum()),
        "deal_accounts": int(n_accounts),
        "avg_deal_size": size,
        "avg_deal_size_ci_low": size_low,
        "avg_deal_size_ci_high": size_high,
        "won_deals": int(per_account["won"].sum()),
    }


# ---------------------------------------------------------------------------------------------
# Features and clustering


def cluster_features(
    frame: pd.DataFrame,
    categorical=(),
    numeric=(),
    *,
    min_level_count: int = 10,
) -> tuple[np.ndarray, list[str], pd.DataFrame]:
    """The clustering matrix: standardised numeric columns and one-hot categorical levels.

    Numeric: non-negative and right-skewed (skewness > 1) columns such as money and head counts
    are ``log1p``-transformed; missing values take the median; then z-scored (constant columns
    are dropped). Categorical: levels (missing is a level; levels rarer than
    ``min_level_count`` pooled) as 0/1 columns, not standardised, so that one categorical
    attribute weighs at most as much as one numeric one and rare levels do not dominate.

    Returns ``(matrix, column names, description)``: float64 matrix with one row per row of
    ``frame``; ``description`` has one row per attribute (attribute, kind, transform, columns).
    """
    columns, names, notes = [], [], []
    for attribute in numeric:
        if attribute not in frame:
            continue
        values = pd.to_numeric(frame[attribute], errors="coerce").to_numpy(dtype=float)
        known = values[~np.isnan(values)]
        if known.size < 2:
            continue
        transform = "standardised"
        skew = pd.Series(known).skew()
        if known.min() >= 0 and np.isfinite(skew) and skew > 1:
            values = np.log1p(values)
            known = np.log1p(known)
            transform = "log(1 + x), standardised"
        median = float(np.median(known))
        values = np.where(np.isnan(values), median, values)
        spread = float(values.std())
        if spread == 0:
            continue
        columns.append((values - values.mean()) / spread)
        names.append(attribute)
        missing = int(frame[attribute].isna().sum())
        if missing:
            transform += f"; {missing:,} missing set to the median"
        notes.append((attribute, "numeric", transform, 1))
    for attribute in categorical:
        if attribute not in frame:
            continue
        levels = pool_rare_levels(frame[attribute], min_level_count)
        codes, uniques = pd.factorize(levels, sort=True)
        if len(uniques) < 2:
            continue
        one_hot = np.zeros((len(frame), len(uniques)))
        one_hot[np.arange(len(frame)), codes] = 1.0
        columns.extend(one_hot.T)
        names.extend(f"{attribute} = {u}" for u in uniques)
        notes.append((attribute, "categorical", "one-hot (0/1)", len(uniques)))
    matrix = np.column_stack(columns) if columns else np.zeros((len(frame), 0))
    description = pd.DataFrame(notes, columns=["attribute", "kind", "transform", "columns"])
    return matrix, names, description


def _squared_distances(points: np.ndarray, centres: np.ndarray, norms=None) -> np.ndarray:
    """Squared Euclidean distances, rows x centres (``norms``: the rows' squared norms)."""
    if norms is None:
        norms = np.einsum("ij,ij->i", points, points)
    # einsum rather than a BLAS product: small products on busy machines stall on BLAS threads.
    cross = np.einsum("ij,kj->ik", points, centres)
    d = norms[:, None] - 2 * cross + np.einsum("ij,ij->i", centres, centres)
    return np.maximum(d, 0.0)


def _centres(points: np.ndarray, labels: np.ndarray, k: int) -> tuple[np.ndarray, np.ndarray]:
    """Mean of each cluster's rows (NaN for an empty cluster) and the cluster sizes."""
    from scipy import sparse

    n = labels.size
    members = sparse.csr_matrix((np.ones(n), (labels, np.arange(n))), shape=(k, n))
    sums = np.asarray(members @ points)
    counts = np.bincount(labels, minlength=k).astype(float)
    with np.errstate(invalid="ignore", divide="ignore"):
        return sums / counts[:, None], counts


def kmeans(
    points: np.ndarray,
    k: int,
    *,
    seed: int = 0,
    n_init: int = 4,
    max_iter: int = 100,
    init: np.ndarray | None = None,
) -> tuple[np.ndarray, np.ndarray, float]:
    """Seeded k-means: k-means++ starts, Lloyd iterations, best of ``n_init`` starts.

    ``init`` (a ``(k, d)`` array) replaces the k-means++ starts with one given start, e.g. the
    centres found on a sample. Returns ``(labels, centres, inertia)``: an int label per row
    (0..k-1), the ``(k, d)`` centres and the within-cluster sum of squared distances.
    Deterministic for a given seed.
    """
    points = np.asarray(points, dtype=float)
    n = points.shape[0]
    if not 1 <= k <= n:
        raise ValueError(f"k must be between 1 and the number of rows ({n}), not {k}.")
    rng = np.random.default_rng(seed)
    norms = np.einsum("ij,ij->i", points, points)
    # Converged when the centres move less than this (as in scikit-learn: 1e-4 of the mean
    # feature variance).
    tolerance = 1e-4 * float(points.var(axis=0).mean()) if n > 1 else 0.0
    starts = [np.asarray(init, dtype=float)] if init is not None else None
    best = None
    for _ in range(1 if starts else n_init):
        centres = starts[0].copy() if starts else _kmeans_plus_plus(points, k, rng, norms)
        labels = np.full(n, -1)
        for _ in range(max_iter):
            distances = _squared_distances(points, centres, norms)
            new_labels = distances.argmin(axis=1)
            if np.array_equal(new_labels, labels):
                break
            labels = new_labels
            means, counts = _centres(points, labels, k)
            empty = counts == 0
            previous = centres
            centres = np.where(empty[:, None], centres, means)
            if empty.any():
                # An emptied cluster restarts at the rows farthest from their centres.
                far = np.argsort(distances[np.arange(n), labels])[::-1][: int(empty.sum())]
                centres[empty] = points[far]
            elif np.sum((centres - previous) ** 2) <= tolerance:
                break
        inertia = float(_squared_distances(points, centres, norms)[np.arange(n), labels].sum())
        if best is None or inertia < best[2] - 1e-9:
            best = (labels.copy(), centres.copy(), inertia)
    return best


def _kmeans_plus_plus(points, k: int, rng: np.random.Generator, norms) -> np.ndarray:
    n = points.shape[0]
    centres = [points[rng.integers(n)]]
    closest = _squared_distances(points, centres[0][None, :], norms)[:, 0]
    for _ in range(1, k):
        total = closest.sum()
        index = rng.choice(n, p=closest / total) if total > 0 else rng.integers(n)
        centres.append(points[index])
        closest = np.minimum(
            closest, _squared_distances(points, points[index][None, :], norms)[:, 0]
        )
    return np.array(centres)


def silhouette(points: np.ndarray, labels: np.ndarray, distances: np.ndarray | None = None):
    """Mean silhouette of a clustering (Euclidean), vectorised over a distance matrix.

    For each row, ``a`` is its mean distance to the other rows of its cluster and ``b`` the
    smallest mean distance to the rows of another cluster; its silhouette is
    ``(b - a) / max(a, b)`` (0 for a row alone in its cluster). Pass ``distances`` (square,
    from :func:`scipy.spatial.distance.cdist`) to reuse them across clusterings. Returns the
    mean over rows, NaN with fewer than 2 clusters. O(n^2) memory: use a sample on large data.
    """
    from scipy.spatial.distance import pdist, squareform

    labels = np.asarray(labels)
    codes, uniques = pd.factorize(labels)
    k = len(uniques)
    if k < 2 or k >= len(codes):
        return np.nan
    if distances is None:
        distances = squareform(pdist(np.asarray(points, dtype=float)))
    one_hot = np.zeros((len(codes), k))
    one_hot[np.arange(len(codes)), codes] = 1.0
    sums = distances @ one_hot  # total distance from each row to each cluster
    counts = one_hot.sum(axis=0)
    own = codes
    own_count = counts[own] - 1
    with np.errstate(invalid="ignore", divide="ignore"):
        a = sums[np.arange(len(codes)), own] / own_count
        means = sums / counts[None, :]
        means[np.arange(len(codes)), own] = np.inf
        b = means.min(axis=1)
        s = (b - a) / np.maximum(a, b)
    s = np.where(own_count == 0, 0.0, s)
    s = np.where(np.isnan(s), 0.0, s)
    return float(s.mean())


def ward_clusters(points: np.ndarray, ks) -> tuple[np.ndarray, dict[int, np.ndarray]]:
    """Ward's agglomerative clustering (scipy) cut into each k of ``ks``.

    Returns the linkage matrix and ``{k: labels (0..k-1)}``.
    """
    from scipy.cluster.hierarchy import fcluster, linkage

    tree = linkage(np.asarray(points, dtype=float), method="ward")
    return tree, {k: fcluster(tree, t=k, criterion="maxclust") - 1 for k in ks}


def _nearest(points: np.ndarray, centres: np.ndarray, chunk: int = 200_000) -> np.ndarray:
    out = np.empty(points.shape[0], dtype=np.int64)
    for start in range(0, points.shape[0], chunk):
        part = points[start : start + chunk]
        out[start : start + chunk] = _squared_distances(part, centres).argmin(axis=1)
    return out


def _by_size(labels: np.ndarray) -> np.ndarray:
    """Relabel clusters 0..k-1 by decreasing size (ties: by old label)."""
    counts = np.bincount(labels)
    order = np.lexsort((np.arange(counts.size), -counts))
    rank = np.empty_like(order)
    rank[order] = np.arange(order.size)
    return rank[labels]


# ---------------------------------------------------------------------------------------------
# Profiles


def segment_profiles(
    frame: pd.DataFrame,
    assignments: dict[str, pd.Series],
    *,
    categorical=(),
    numeric=(),
    n_bins: int = 5,
    min_level_count: int = 10,
) -> pd.DataFrame:
    """Share of each attribute level in each segment versus in all rows.

    Returns one row per segmentation x segment x attribute x level: ``share_segment``,
    ``share_all`` (fractions), ``lift`` (their ratio), ``n`` (rows of the segment at the
    level), and ``p_value`` / ``q_value``: the segment's share against the other rows' (Fisher
    or chi-square), Benjamini-Hochberg over every row, so that a segment's profile names only
    levels that set it apart beyond chance.
    """
    levels = {}
    for attribute in categorical:
        if attribute in frame:
            levels[attribute] = pool_rare_levels(frame[attribute], min_level_count).to_numpy()
    for attribute in numeric:
        if attribute in frame:
            binned, _ = bin_numeric(frame[attribute], n_bins)
            levels[attribute] = np.asarray(binned.astype(str), dtype=object)
    parts = []
    for segmentation, segment in assignments.items():
        segment_codes, segment_names = pd.factorize(pd.Series(segment), sort=True)
        has_segment = segment_codes >= 0
        for attribute, values in levels.items():
            level_codes, level_names = pd.factorize(pd.Series(values, dtype=object), sort=True)
            n_levels = len(level_names)
            cells = np.bincount(
                segment_codes[has_segment] * n_levels + level_codes[has_segment],
                minlength=len(segment_names) * n_levels,
            ).reshape(len(segment_names), n_levels)
            share_all = cells.sum(axis=0) / max(cells.sum(), 1)
            with np.errstate(invalid="ignore", divide="ignore"):
                shares = cells / cells.sum(axis=1, keepdims=True)
            sizes = np.repeat(cells.sum(axis=1), n_levels)
            at_level = np.tile(cells.sum(axis=0), len(segment_names))
            total = cells.sum()
            long = pd.DataFrame(
                {
                    "segmentation": segmentation,
                    "segment": np.repeat(np.asarray(segment_names, dtype=object), n_levels),
                    "attribute": attribute,
                    "level": np.tile(np.asarray(level_names, dtype=object), len(segment_names)),
                    "share_segment": shares.ravel(),
                    "n": cells.ravel(),
                    "share_all": np.tile(share_all, len(segment_names)),
                    # The segment against the other rows, at this level.
                    "p_value": two_proportion_pvalue(
                        cells.ravel(), sizes, at_level - cells.ravel(), total - sizes
                    ),
                }
            )
            with np.errstate(invalid="ignore", divide="ignore"):
                long["lift"] = long["share_segment"] / long["share_all"]
            parts.append(long[long["n"] > 0])
    columns = [
        "segmentation",
        "segment",
        "attribute",
        "level",
        "share_segment",
        "n",
        "share_all",
        "lift",
        "p_value",
        "q_value",
    ]
    if not parts:
        return pd.DataFrame(columns=columns)
    out = pd.concat(parts, ignore_index=True)
    out["q_value"] = adjust_pvalues(out["p_value"].to_numpy(dtype=float))
    return out[columns]


def describe_segment(
    profiles: pd.DataFrame,
    *,
    max_levels: int = 3,
    min_lift: float = 1.25,
    min_share: float = 0.2,
    alpha: float = 0.05,
) -> str:
    """The levels that characterise one segment: 'industry SaaS (76% vs 21%); ...'.

    ``profiles`` are the rows of :func:`segment_profiles` for one segment. Levels held by at
    least ``min_share`` of the segment and ``min_lift`` times as common as overall, and more
    common than in the other rows beyond chance (``q_value`` below ``alpha``, when the profiles
    have one: a noise lead source at 34% vs 26% in a segment of 38 is no profile), largest
    share difference first, one per attribute. Returns '' when none qualifies.
    """
    rows = profiles[
        (profiles["lift"] >= min_lift)
        & (profiles["share_segment"] >= min_share)
        & ~profiles["level"].isin([MISSING, OTHER])
    ]
    if "q_value" in rows:
        rows = rows[rows["q_value"].fillna(1.0) < alpha]
    if rows.empty:
        return ""
    rows = rows.assign(gap=rows["share_segment"] - rows["share_all"]).sort_values(
        "gap", ascending=False
    )
    rows = rows.drop_duplicates("attribute").head(max_levels)
    return "; ".join(
        f"{r.attribute.replace('_', ' ')} {r.level} ({fmt_pct(r.share_segment)} vs "
        f"{fmt_pct(r.share_all)})"
        for r in rows.itertuples(index=False)
    )


# ---------------------------------------------------------------------------------------------
# The analysis


def segment_accounts(
    study,
    *,
    k_range=(2, 8),
    silhouette_sample: int = 2000,
    ward_sample: int = 3000,
    kmeans_sample: int = 5_000,
    n_init: int = 3,
    seed: int | None = None,
    features=None,
) -> SegmentResult:
    """Rule-based, k-means and Ward segments of the accounts, with the seeds' metrics.

    Parameters
    ----------
    study : Study
    k_range : (int, int)
        Smallest and largest number of clusters tried (inclusive); k is chosen by the mean
        silhouette.
    silhouette_sample : int
        Silhouettes are computed on this many accounts (a seeded sample; all when fewer).
    ward_sample : int
        Ward's clustering runs on this many accounts (seeded sample); the others join the
        cluster with the nearest centroid.
    kmeans_sample : int
        The k-means runs that choose k use this many accounts (seeded sample); the chosen one is
        then refined on all accounts.
    n_init : int
        k-means starts per k.
    seed : int, optional
        Default: the config's ``[analysis] seed``.
    features : list of str, optional
        Attributes to cluster on. Default: the candidate attributes (categorical and numeric;
        behavioural signals are left out, because segments must be recognisable before a sale).

    Returns
    -------
    SegmentResult
    """
    # In account order, whatever the order of the export's rows: the seeded samples and the
    # k-means starts pick rows by position, so the same accounts give the same clusters.
    facts = study.facts.sort_values("account_id", kind="mergesort")
    deals = study.deals if study.has("opportunities") else None
    alpha = study.alpha
    seed = int(study.analysis.get("seed", 42) if seed is None else seed)
    min_level_count = int(study.analysis.get("min_level_count", 10))
    spec = study.attributes
    categorical = [
        c for c in spec.categorical if c in facts and (features is None or c in features)
    ]
    numeric = [c for c in spec.numeric if c in facts and (features is None or c in features)]
    caveats: list[str] = []
    assignments: dict[str, pd.Series] = {}
    silhouettes = []
    params: dict = {"seed": seed, "k_range": list(k_range), "alpha": alpha}

    if "size_segment" in facts and facts["size_segment"].notna().any():
        assignments["rule"] = facts["size_segment"]
        from icp_research.data.facts import SEGMENT_DEFAULTS, segment_bounds

        bounds = segment_bounds(facts["employees"], study.config.segments)
        params["rule"] = f"employees, cut at {', '.join(f'{b:,.0f}' for b in bounds)}"
        configured = [float(b) for b in {**SEGMENT_DEFAULTS, **study.config.segments}["employees"]]
        if [float(b) for b in bounds] != configured:
            caveats.append(
                "The employee counts take only a few values, as size bands do, so the size "
                "segments begin at the values nearest the configured "
                f"{' and '.join(f'{b:,.0f}' for b in configured)} (no segment splits a band): "
                f"{' and '.join(f'{b:,.0f}' for b in bounds)}. Set [segments] employees to "
                "choose others."
            )
    else:
        caveats.append("No rule-based segments: the accounts have no employee counts.")

    matrix, names, description = cluster_features(
        facts, categorical, numeric, min_level_count=min_level_count
    )
    n = len(facts)
    low_k, high_k = int(k_range[0]), int(min(k_range[1], max(2, n // 10)))
    ks = list(range(max(2, low_k), high_k + 1))
    params.update(features=names, n_features=len(names))
    if matrix.shape[1] == 0 or n < 30 or not ks:
        caveats.append(
            f"No clusters: {'no usable attribute' if matrix.shape[1] == 0 else f'{n} accounts'} "
            "is too little to cluster (at least 30 accounts and one attribute are needed)."
        )
    else:
        rng = np.random.default_rng(seed)
        # Nested seeded samples: silhouette rows within the Ward rows within the k-means rows.
        order = rng.permutation(n)
        kmeans_rows = np.sort(order[: min(max(kmeans_sample, ward_sample), n)])
        ward_rows = np.sort(order[: min(ward_sample, n)])
        sample_rows = np.sort(order[: min(silhouette_sample, ward_sample, n)])
        from scipy.spatial.distance import pdist, squareform

        sample_distances = squareform(pdist(matrix[sample_rows]))
        position = np.full(n, -1)
        position[kmeans_rows] = np.arange(kmeans_rows.size)
        # k-means: every k on its sample (all accounts when small); silhouettes on the sample.
        fits = {}
        for k in ks:
            labels, centres, inertia = kmeans(matrix[kmeans_rows], k, seed=seed + k, n_init=n_init)
            fits[k] = (labels, centres)
            score = silhouette(None, labels[position[sample_rows]], sample_distances)
            silhouettes.append(("kmeans", k, score, inertia))
        # Ward: on its sample, cut at every k.
        _, cuts = ward_clusters(matrix[ward_rows], ks)
        position = np.full(n, -1)
        position[ward_rows] = np.arange(ward_rows.size)
        for k in ks:
            score = silhouette(None, cuts[k][position[sample_rows]], sample_distances)
            silhouettes.append(("ward", k, score, np.nan))
        table = pd.DataFrame(silhouettes, columns=["method", "k", "silhouette", "inertia"])
        table["chosen"] = False
        for method in ("kmeans", "ward"):
            rows = table[table["method"] == method]
            if rows["silhouette"].notna().any():
                # Highest silhouette; the smaller k on a tie.
                best = rows.sort_values(["silhouette", "k"], ascending=[False, True]).index[0]
                table.loc[best, "chosen"] = True
        chosen = table[table["chosen"]].set_index("method")
        k_means = int(chosen.loc["kmeans", "k"])
        labels, centres = fits[k_means]
        if kmeans_rows.size < n:
            # Refine the sample's centres on every account.
            labels, centres, _ = kmeans(matrix, k_means, init=centres, max_iter=30)
        assignments["kmeans"] = _cluster_series(_by_size(labels), facts.index)
        k_ward = int(chosen.loc["ward", "k"])
        sample_labels = cuts[k_ward]
        centres = np.vstack(
            [matrix[ward_rows][sample_labels == c].mean(axis=0) for c in range(k_ward)]
        )
        ward_labels = _nearest(matrix, centres)
        ward_labels[ward_rows] = sample_labels
        assignments["ward"] = _cluster_series(_by_size(ward_labels), facts.index)
        params.update(
            k_kmeans=k_means,
            k_ward=k_ward,
            silhouette_kmeans=float(chosen.loc["kmeans", "silhouette"]),
            silhouette_ward=float(chosen.loc["ward", "silhouette"]),
            silhouette_sample=int(sample_rows.size),
            ward_sample=int(ward_rows.size),
            kmeans_sample=int(kmeans_rows.size),
        )
        if kmeans_rows.size < n:
            caveats.append(
                f"k was chosen with k-means on a random sample of {kmeans_rows.size:,} accounts; "
                "the chosen clustering was then refined on all of them."
            )
        if ward_rows.size < n:
            caveats.append(
                f"Ward's clustering needs every pairwise distance, so it ran on a random sample "
                f"of {ward_rows.size:,} of the {n:,} accounts; the others joined the cluster "
                "with the nearest centre."
            )
        if sample_rows.size < n:
            caveats.append(
                f"Silhouettes are computed on a random sample of {sample_rows.size:,} accounts."
            )
        weakest = max(params["silhouette_kmeans"], params["silhouette_ward"])
        if weakest < WEAK_SILHOUETTE:
            caveats.append(
                f"The clusters are weakly separated (best mean silhouette {weakest:.2f}; below "
                f"{WEAK_SILHOUETTE} means no substantial structure): the accounts form a "
                "continuum more than distinct groups, so read the clusters as a convenient "
                "partition, not as natural types."
            )
        silhouettes = table
    silhouette_table = (
        silhouettes
        if isinstance(silhouettes, pd.DataFrame)
        else pd.DataFrame(columns=["method", "k", "silhouette", "inertia", "chosen"])
    )

    summary = segment_metrics(facts, deals, assignments, alpha=alpha)
    if study.revenue_basis != "subscriptions":
        # Won deals stand in for ARR: what a customer pays a year later is not known, so
        # there is no NRR to show (the overview says so), only the bookings of two years.
        summary[["nrr", "nrr_ci_low", "nrr_ci_high"]] = np.nan
        summary["nrr_customers"] = 0
    profiles = segment_profiles(
        facts,
        assignments,
        categorical=categorical,
        numeric=numeric,
        min_level_count=min_level_count,
    )
    # Size segments are employee bands: what sets them apart is not their employees (binned
    # for the profiles at other cut-offs, "Enterprise: employees >= 201" for ">= 2,000").
    defining = {"rule": {"employees", "size_segment"}}
    summary["profile"] = [
        describe_segment(
            profiles[
                (profiles["segmentation"] == row.segmentation)
                & (profiles["segment"].astype(str) == row.segment)
                & ~profiles["attribute"].isin(defining.get(row.segmentation, set()))
            ],
            alpha=alpha,
        )
        if row.segmentation != "all"
        else ""
        for row in summary.itertuples(index=False)
    ]
    summary = summary[SEGMENT_COLUMNS]
    assignment_table = pd.DataFrame({"account_id": facts["account_id"].to_numpy()})
    for name, segment in assignments.items():
        assignment_table[name] = pd.Series(segment).astype(object).to_numpy()
    caveats += _metric_caveats(study, summary)
    findings, stands_out = _findings(summary, params)
    params["stands_out"] = stands_out
    return SegmentResult(
        "Segments",
        summary,
        findings,
        caveats,
        {
            "silhouette": silhouette_table,
            "profiles": profiles,
            "assignments": assignment_table,
            "features": description,
        },
        params,
    )


def _cluster_series(labels: np.ndarray, index) -> pd.Series:
    names = [f"Cluster {i + 1}" for i in range(int(labels.max()) + 1)]
    return pd.Series(pd.Categorical.from_codes(labels, categories=names), index=index)


def _metric_caveats(study, summary: pd.DataFrame) -> list[str]:
    notes = [
        "Win rates count closed new-business deals; their intervals are clustered by account. "
        "Average deal size is the mean won new-business amount (ACV), clustered by account. "
        "Sales cycle is the median days from creation to close of won new-business deals "
        "(open deals are not counted). Churn is churned customers per customer-year (exact "
        "Poisson interval). NRR is ARR now over ARR a year ago for customers paying then.",
        "Shrunk win rates (empirical Bayes): a beta prior fitted over the segments of each "
        "segmentation pulls segments with few deals toward its pooled rate; segments are ranked "
        "on it. Deals count as independent there, although they cluster by account.",
    ]
    if study.revenue_basis != "subscriptions":
        notes.append(
            "There is no subscriptions table: "
            + (
                "NRR cannot be measured"
                if study.churn_measured
                else "churn and NRR cannot be measured"
            )
            + ", and CLV is the revenue received from won deals."
        )
    small = summary[(summary["segmentation"] != "all") & (summary["customers"] < 30)]
    if len(small):
        notes.append(
            f"{len(small)} segment(s) have fewer than 30 customers: their CLV, churn and NRR "
            "intervals are wide."
        )
    return notes


#: A segment's win rate is a finding only over at least this many accounts: an interval
#: clustered over four accounts ("wins 60% (22%-98%)") is no interval to trust.
MIN_CLUSTERS = 10


def _findings(summary: pd.DataFrame, params: dict) -> tuple[list[str], bool]:
    """Segments whose win rate (over at least :data:`MIN_CLUSTERS` accounts) or churn interval
    excludes the all-accounts value."""
    overall = summary[summary["segmentation"] == "all"].iloc[0]
    sentences: list[tuple[float, str]] = []
    segments = summary[summary["segmentation"] != "all"]
    for row in segments.itertuples(index=False):
        parts, strength = [], 0.0
        if (
            np.isfinite(row.win_rate_ci_low)
            and row.win_rate_ci_low > overall.win_rate
            and row.deal_accounts >= MIN_CLUSTERS
        ):
            parts.append(
                f"wins {fmt_pct(row.win_rate)} of new-business deals "
                f"({fmt_pct(row.win_rate_ci_low)}-{fmt_pct(row.win_rate_ci_high)}) vs "
                f"{fmt_pct(overall.win_rate)} overall"
            )
            # Ranked on the shrunk rate, so a small segment's lucky streak does not lead.
            shrunk = row.win_rate_shrunk if np.isfinite(row.win_rate_shrunk) else row.win_rate
            strength += shrunk / overall.win_rate
        if np.isfinite(row.churn_rate_ci_high) and row.churn_rate_ci_high < overall.churn_rate:
            parts.append(
                f"churns {fmt_pct(row.churn_rate)} of customers a year "
                f"({fmt_pct(row.churn_rate_ci_low)}-{fmt_pct(row.churn_rate_ci_high)}) vs "
                f"{fmt_pct(overall.churn_rate)}"
            )
            strength += overall.churn_rate / max(row.churn_rate, 1e-9)
        if parts:
            clv = (
                f"; mean CLV {fmt_money(row.clv)} vs {fmt_money(overall.clv)}"
                if np.isfinite(row.clv) and np.isfinite(overall.clv)
                else ""
            )
            profile = f" What sets it apart: {row.profile}." if row.profile else ""
            text = f"{_segment_name(row)} " + " and ".join(parts) + clv + "." + profile
            sentences.append((strength, text))
    if not sentences:
        return [
            "No segment's win rate or churn rate differs clearly from the base (every "
            "segment's 95% interval includes the all-accounts value)."
        ], False
    sentences.sort(key=lambda item: -item[0])
    return [text for _, text in sentences[:4]], True


def _segment_name(row) -> str:
    if row.segmentation == "rule":
        return f"The {row.segment} segment"
    method = "k-means" if row.segmentation == "kmeans" else "Ward"
    return f"{method} {row.segment}"


# ---------------------------------------------------------------------------------------------
# Plots


def plot_silhouette(result: SegmentResult, *, ax=None):
    """Mean silhouette by number of clusters for k-means and Ward, the chosen k marked.

    Returns the Axes.
    """
    import matplotlib.pyplot as plt

    table = result.tables.get("silhouette", pd.DataFrame())
    if ax is None:
        _, ax = plt.subplots(figsize=(7, 3.8))
    if table.empty:
        ax.text(0.5, 0.5, "No clustering", ha="center", va="center", transform=ax.transAxes)
        ax.set_axis_off()
        return ax
    for i, (method, rows) in enumerate(table.groupby("method", sort=False)):
        label = "k-means" if method == "kmeans" else "Ward"
        ax.plot(rows["k"], rows["silhouette"], marker="o", color=f"C{i}", label=label)
        chosen = rows[rows["chosen"]]
        ax.scatter(
            chosen["k"],
            chosen["silhouette"],
            s=160,
            facecolor="none",
            edgecolor=f"C{i}",
            linewidth=2,
            zorder=3,
        )
        for r in chosen.itertuples(index=False):
            ax.annotate(
                f"chosen: k={r.k}",
                (r.k, r.silhouette),
                xytext=(6, 8),
                textcoords="offset points",
                fontsize=8,
                color=f"C{i}",
            )
    ax.axhline(WEAK_SILHOUETTE, color="grey", linestyle=":", linewidth=1)
    ax.text(
        table["k"].min(),
        WEAK_SILHOUETTE,
        " weak structure below",
        fontsize=8,
        color="grey",
        va="bottom",
    )
    ax.set_xticks(sorted(table["k"].unique()))
    ax.set_xlabel("Number of clusters (k)")
    ax.set_ylabel("Mean silhouette")
    top = max(float(table["silhouette"].max()), WEAK_SILHOUETTE) * 1.25
    ax.set_ylim(min(0.0, float(table["silhouette"].min())), top)
    ax.set_title("How well separated the clusters are, by k")
    ax.legend(fontsize=8, frameon=False)
    return ax


def heatmap_frame(result: SegmentResult) -> tuple[pd.DataFrame, pd.DataFrame]:
    """The heatmap's colour values and annotations: one row per segment, one column per metric.

    Colours are the log ratio of the segment's value to the all-accounts value, sign flipped
    where lower is better (churn, sales cycle), so that blue is better and red worse than the
    base; annotations are the values themselves. A cell whose interval holds the all-accounts
    value is not coloured: a k-means cluster at 40% against 23% on a few dozen deals read as
    "better" where its interval said it may not be.
    """
    summary = result.summary
    metrics = [m for m in HEATMAP_METRICS if m[0] in summary and summary[m[0]].notna().any()]
    if summary.empty or not metrics or "segmentation" not in summary:
        return pd.DataFrame(), pd.DataFrame()
    # Without an all-accounts row there is no base to colour against: values only.
    overall = summary[summary["segmentation"] == "all"]
    overall = overall.iloc[0] if len(overall) else pd.Series(np.nan, index=summary.columns)
    names = {"all": "All", "rule": "Size", "kmeans": "k-means", "ward": "Ward"}
    index = [
        f"{names.get(s, s)}: {g}" if s != "all" else ALL
        for s, g in zip(summary["segmentation"], summary["segment"], strict=True)
    ]
    colours = pd.DataFrame(index=index)
    labels = pd.DataFrame(index=index)
    for column, label, higher_better in metrics:
        values = summary[column].to_numpy(dtype=float)
        base = float(overall[column])
        with np.errstate(divide="ignore", invalid="ignore"):
            score = np.log(values / base) if base > 0 else np.full(values.shape, np.nan)
        low, high = f"{column}_ci_low", f"{column}_ci_high"
        if low in summary and high in summary:
            lows = summary[low].to_numpy(dtype=float)
            highs = summary[high].to_numpy(dtype=float)
            within = (lows <= base) & (base <= highs)
            score = np.where(within & np.isfinite(score), 0.0, score)
        colours[label] = score if higher_better else -score
        labels[label] = [_metric_text(column, v) for v in values]
    return colours, labels


def _metric_text(column: str, value: float) -> str:
    if not np.isfinite(value):
        return "–"
    if column in ("win_rate", "nrr", "best_customer_share"):
        return fmt_pct(value)
    if column == "churn_rate":
        return fmt_pct(value, 1)
    if column in ("clv", "avg_deal_size"):
        return fmt_money(value)
    return f"{value:,.0f}"


def plot_segment_heatmap(result: SegmentResult, *, ax=None):
    """Segments x metrics, coloured relative to all accounts, annotated with the values.

    Each metric is normalised on its own (log ratio to the all-accounts value; lower is better
    for churn and sales cycle), so colours compare segments within a column. Returns the Axes.
    """
    import matplotlib.pyplot as plt
    import seaborn as sns

    colours, labels = heatmap_frame(result)
    if ax is None:
        _, ax = plt.subplots(
            figsize=(1.4 * max(colours.shape[1], 1) + 3, 0.42 * len(colours) + 1.6)
        )
    if colours.empty or colours.shape[1] == 0:
        ax.text(0.5, 0.5, "No segment metrics", ha="center", va="center", transform=ax.transAxes)
        ax.set_axis_off()
        return ax
    finite = colours.to_numpy(dtype=float)
    finite = finite[np.isfinite(finite)]
    limit = max(float(np.abs(finite).max(initial=0.1)), 0.1)
    sns.heatmap(
        colours.astype(float),
        annot=labels.to_numpy(),
        fmt="",
        cmap="RdBu",
        center=0.0,
        vmin=-limit,
        vmax=limit,
        linewidths=0.5,
        cbar_kws={"label": "worse  <-  vs all accounts  ->  better (white: within its interval)"},
        annot_kws={"fontsize": 8},
        ax=ax,
    )
    ax.set_ylabel("")
    ax.set_xlabel("")
    ax.set_title("Segments compared with all accounts (colour per metric)")
    ax.tick_params(axis="x", labelrotation=30)
    return ax


#: The columns of :func:`segment_table` for each view.
TABLE_VIEWS = {
    "sales": [
        "accounts",
        "customers",
        "win rate",
        "win rate (shrunk)",
        "avg deal size",
        "sales cycle (days)",
    ],
    "customers": ["customers", "churn / customer-year", "mean CLV", "NRR", "best customers"],
}


def segment_table(result: SegmentResult, view: str | None = None) -> pd.DataFrame:
    """segments.csv for display: one row per segment, each metric with its interval as text.

    ``view`` ``"sales"`` (accounts, win rate, deal size, cycle) or ``"customers"`` (churn, CLV,
    NRR, best-customer share) keeps a table narrow enough to read; None shows every metric.
    """
    summary = result.summary
    names = {"all": "All", "rule": "Size", "kmeans": "k-means", "ward": "Ward"}

    def interval(value, low, high, kind):
        if not np.isfinite(value):
            return "–"
        text = _metric_text(kind, value)
        if np.isfinite(low) and np.isfinite(high):
            text += f" ({_metric_text(kind, low)}-{_metric_text(kind, high)})"
        return text

    rows = []
    for r in summary.itertuples(index=False):
        rows.append(
            {
                "segmentation": names.get(r.segmentation, r.segmentation),
                "segment": r.segment,
                "accounts": f"{r.accounts:,}",
                "customers": f"{r.customers:,}",
                "win rate": interval(r.win_rate, r.win_rate_ci_low, r.win_rate_ci_high, "win_rate"),
                "win rate (shrunk)": interval(
                    getattr(r, "win_rate_shrunk", np.nan), np.nan, np.nan, "win_rate"
                ),
                "churn / customer-year": interval(
                    r.churn_rate, r.churn_rate_ci_low, r.churn_rate_ci_high, "churn_rate"
                ),
                "mean CLV": interval(r.clv, r.clv_ci_low, r.clv_ci_high, "clv"),
                "avg deal size": interval(
                    r.avg_deal_size,
                    r.avg_deal_size_ci_low,
                    r.avg_deal_size_ci_high,
                    "avg_deal_size",
                ),
                "sales cycle (days)": interval(
                    r.sales_cycle_days,
                    r.sales_cycle_days_ci_low,
                    r.sales_cycle_days_ci_high,
                    "sales_cycle_days",
                ),
                "NRR": interval(r.nrr, r.nrr_ci_low, r.nrr_ci_high, "nrr"),
                "best customers": interval(
                    r.best_customer_share,
                    r.best_customer_share_ci_low,
                    r.best_customer_share_ci_high,
                    "best_customer_share",
                ),
            }
        )
    table = pd.DataFrame(rows)
    if view is not None:
        table = table[["segmentation", "segment", *TABLE_VIEWS[view]]]
    # Columns no segment has a value for (no subscriptions: churn, NRR) say nothing.
    return table.loc[:, [c for c in table.columns if (table[c] != "–").any()]]


def cluster_profile_table(result: SegmentResult) -> pd.DataFrame:
    """What characterises each segment: segmentation, segment, accounts and its profile."""
    summary = result.summary[result.summary["segmentation"] != "all"]
    names = {"rule": "Size", "kmeans": "k-means", "ward": "Ward"}
    return pd.DataFrame(
        {
            "segmentation": [names.get(s, s) for s in summary["segmentation"]],
            "segment": summary["segment"].to_numpy(),
            "accounts": [f"{n:,}" for n in summary["accounts"]],
            "what sets it apart (share in the segment vs all accounts)": [
                p or "no attribute level stands out" for p in summary["profile"]
            ],
        }
    )


def segment_views(result: SegmentResult) -> dict:
    """``{name: callable returning a View}``: the segment tables with their reasons.

    ``segment_sales`` and ``segment_customers`` (:func:`segment_table` narrowed to selling or
    to keeping customers), ``segment_profiles`` (:func:`cluster_profile_table`) and
    ``silhouette`` (``tables['silhouette']``, drawn by :func:`plot_silhouette`; empty, with the
    reason, when the accounts could not be clustered).
    """
    caveats = result.caveats
    no_accounts = "there are no accounts to segment."
    # The caveat that says why there are no clusters (the first one, when none says so), and
    # those that say why there is no segment at all.
    no_clusters = next((c for c in caveats if c.startswith("No clusters")), " ".join(caveats[:1]))
    no_segments = " ".join(c for c in caveats if c.startswith(("No rule-based", "No clusters")))
    has_rows = not result.summary.empty

    def table(view: str | None) -> pd.DataFrame | None:
        return segment_table(result, view) if has_rows else None

    return {
        "segment_sales": lambda: View("segments", table("sales"), no_accounts),
        "segment_customers": lambda: View("segments", table("customers"), no_accounts),
        "segment_profiles": lambda: View(
            "segment profiles",
            cluster_profile_table(result) if has_rows else None,
            no_segments if has_rows and no_segments else no_accounts,
        ),
        "silhouette": lambda: View("clusters", result.tables.get("silhouette"), no_clusters),
    }
