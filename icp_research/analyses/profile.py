"""Best-customer profile: what do our best customers share that the other customers do not?

The seeds' first analytical step. The best customers are the top share of retained customers by
a value metric (:func:`icp_research.data.facts.best_customers`: ARR by default; CLV, NRR, tenure or
expansion); the rest are the other customers, churned ones included. Accounts that never bought
are left out: the question is who, among those who bought, became the most valuable.

For every candidate attribute (categorical levels, numeric attributes in data-driven bins with
readable labels) the profile compares the share of best customers at each level with the share
of the rest:

- ``share_best`` / ``share_rest`` and their ratio, the ``lift``, with a score
  (Miettinen-Nurminen) interval (:func:`stats.ratio_ci`);
- a two-proportion test per level (Fisher's exact test for small cells, chi-square otherwise),
  Benjamini-Hochberg over every level of every attribute (one family);
- the sentence a stakeholder would quote: "62% of best customers have industry FinTech or SaaS
  vs 21% of the rest (2.9x, 2.5x-3.4x)". Levels of one attribute that are each significantly
  over-represented are combined into one statement (``tables['combined']``).

Behavioural signals (usage, NPS) are measured after the sale: they describe best customers but
cannot pick them out before they buy, so they are shown separately (``tables['behaviour']``),
as medians with their own correction, and never mixed into the firmographic family.
"""

from __future__ import annotations

import numpy as np
import pandas as pd
from scipy import stats as sps

from icp_research.data.facts import BEST_METRICS, best_customers, start_cohorts
from icp_research.formatting import fmt_count, fmt_number, fmt_pct, fmt_ratio
from icp_research.methods.binning import MISSING, OTHER, bin_numeric, pool_rare_levels
from icp_research.methods.stats import (
    adjust_pvalues,
    proportion_ci,
    ratio_ci,
    test_choice,
    two_proportion_pvalue,
)
from icp_research.result import Result, View

#: Columns of ``ProfileResult.summary`` (and of ``best_customer_profile.csv``).
PROFILE_COLUMNS = [
    "attribute",
    "kind",
    "level",
    "n",
    "best",
    "rest",
    "share_best",
    "share_rest",
    "lift",
    "lift_ci_low",
    "lift_ci_high",
    "p_value",
    "q_value",
    "test",
    "significant",
    "sentence",
]

BEHAVIOUR_COLUMNS = [
    "signal",
    "n_best",
    "n_rest",
    "median_best",
    "median_rest",
    "ratio",
    "p_value",
    "q_value",
    "significant",
    "sentence",
]

METRIC_LABELS = {
    "arr": "current ARR",
    "clv": "customer lifetime value",
    "nrr": "net revenue retention",
    "tenure": "tenure",
    "expansion": "ARR expansion",
    "realised_revenue": "revenue received",
}


class ProfileResult(Result):
    """Result of :func:`profile_best_customers`.

    ``summary`` has one row per attribute level (columns :data:`PROFILE_COLUMNS`; shares are
    fractions of the best customers and of the rest, ``n`` is customers at the level, ``best``
    and ``rest`` their split), significant over-represented levels first, by lift.
    ``tables['combined']`` holds one statement per attribute whose significant over-represented
    levels were combined (e.g. two industries, adjacent size bins); ``tables['behaviour']`` the
    behavioural signals (medians, Mann-Whitney test, own correction). ``params`` records the
    definition: ``metric``, ``top_share``, ``n_best``, ``n_rest``, ``threshold``.
    """

    @property
    def significant(self) -> pd.DataFrame:
        """Rows of ``summary`` significant after correction."""
        if self.summary.empty:
            return self.summary
        return self.summary[self.summary["significant"].astype(bool)]

    def headlines(self, max_items: int = 5) -> pd.DataFrame:
        """The strongest statements, one per attribute, largest share difference first.

        An attribute's statement is its combined row when it has one, else its significant
        over-represented level with the largest share difference. Returns rows with the
        :data:`PROFILE_COLUMNS`.
        """
        rows = self.significant
        rows = rows[rows["lift"] > 1]
        if rows.empty:
            return rows
        combined = self.tables.get("combined", pd.DataFrame(columns=PROFILE_COLUMNS))
        picks = []
        for attribute, levels in rows.groupby("attribute", sort=False):
            merged = combined[combined["attribute"] == attribute]
            if len(merged):
                picks.append(merged.iloc[0])
            else:
                gap = levels["share_best"] - levels["share_rest"]
                picks.append(levels.loc[gap.idxmax()])
        out = pd.DataFrame(picks).reset_index(drop=True)
        out = out.assign(_gap=out["share_best"] - out["share_rest"])
        return out.sort_values("_gap", ascending=False).drop(columns="_gap").head(max_items)

    def views(self) -> dict:
        """The profile's tables by name, each with its reason when empty (see
        :func:`report_views`)."""
        return report_views(self)


def best_customer_flags(
    facts: pd.DataFrame, metric: str = "arr", top_share: float = 0.2, ranking: str = "cohort"
) -> pd.Series:
    """Best customers (True), other customers (False), non-customers (<NA>).

    A thin wrapper over :func:`icp_research.data.facts.best_customers` that checks the metric.
    """
    column = BEST_METRICS.get(metric, metric)
    if column not in facts.columns:
        from icp_research.errors import InputError

        raise InputError(
            f"best_customer_metric {metric!r} is not an account fact; use one of "
            f"{', '.join(BEST_METRICS)} or a numeric column of the facts."
        )
    if not 0 < float(top_share) < 1:
        from icp_research.errors import InputError

        raise InputError(f"best_customer_top_share must be between 0 and 1, not {top_share}.")
    return best_customers(facts, metric, float(top_share), ranking)


def best_customer_profile(
    study,
    *,
    metric: str | None = None,
    top_share: float | None = None,
    n_bins: int = 5,
) -> ProfileResult:
    """The best-customer profile of a :class:`~icp_research.data.study.Study`.

    ``metric`` and ``top_share`` default to the config's ``[analysis]``
    ``best_customer_metric`` and ``best_customer_top_share``; when they differ from it the best
    customers are recomputed. Candidate attributes are ``study.attributes`` (categorical and
    numeric); behavioural signals are profiled separately.
    """
    analysis = study.analysis
    metric = metric or analysis["best_customer_metric"]
    top_share = float(top_share or analysis["best_customer_top_share"])
    ranking = str(analysis.get("best_customer_ranking", "cohort"))
    facts = study.facts
    if (
        metric == analysis["best_customer_metric"]
        and top_share == float(analysis["best_customer_top_share"])
        and "best_customer" in facts
    ):
        best = facts["best_customer"]
    else:
        best = best_customer_flags(facts, metric, top_share, ranking)
    customers = facts["is_customer"].astype(bool)
    spec = study.attributes
    # Contract terms (seats, plan) make up what a best customer pays: contract size, not traits.
    result = profile_best_customers(
        facts[customers],
        best[customers],
        categorical=[c for c in spec.categorical if c not in spec.contract],
        numeric=[c for c in spec.numeric if c not in spec.contract],
        behavioural=[c for c in spec.behavioural if c in facts.columns],
        alpha=study.alpha,
        correction=str(analysis.get("correction", "fdr_bh")),
        n_bins=n_bins,
        min_level_count=int(analysis.get("min_level_count", 10)),
    )
    column = BEST_METRICS.get(metric, metric)
    is_best = best.fillna(False).astype(bool)
    threshold = (
        float(pd.to_numeric(facts.loc[is_best, column], errors="coerce").min())
        if is_best.any()
        else float("nan")
    )
    result.params.update(metric=metric, metric_column=column, top_share=top_share, ranking=ranking)
    result.tables["cohorts"] = cohort_table(facts, best, study.alpha)
    untold = _untold_cohorts(
        result.tables["cohorts"], METRIC_LABELS.get(metric, metric.replace("_", " "))
    )
    if untold:
        result.caveats.append(untold)
    result.params["threshold"] = threshold
    result.params["definition"] = _definition(result.params, study.revenue_basis)
    if study.revenue_basis == "bookings" and metric == "arr":
        result.caveats.append(
            "There is no subscriptions table: ARR stands for won deal value in the last 12 "
            "months, so 'best' means the biggest recent buyers."
        )
    result.caveats.insert(0, result.params["definition"])
    if spec.contract:
        names = sorted(spec.contract)
        result.caveats.append(
            f"{', '.join(names)} {'is a contract term' if len(names) == 1 else 'are contract terms'}"
            " (part of what a customer pays), left out of this comparison: best customers are "
            "chosen by what they pay, so bigger contracts would look like a trait (see 'Can we "
            "trust what this data means?' in the data overview)."
        )
    return result


#: Columns of the best-customer rate by start cohort.
COHORT_COLUMNS = ["cohort", "customers", "retained", "best", "rate", "ci_low", "ci_high"]


def cohort_table(facts: pd.DataFrame, best: pd.Series, alpha: float = 0.05) -> pd.DataFrame:
    """Per start cohort (:func:`icp_research.data.facts.start_cohorts`): customers, the share
    still customers (``retained``), best customers and their rate with its Wilson interval.
    With best customers ranked within cohorts the rate is the same in every cohort; ranked all
    together it would track each cohort's retention and tenure."""
    customers = facts["is_customer"].astype("boolean").fillna(False).astype(bool)
    cohort = start_cohorts(facts)[customers]
    if cohort.empty:
        return pd.DataFrame(columns=COHORT_COLUMNS)
    # Among the customers whose retention is known (none on a bookings basis: then "–", not
    # "100%").
    still = (
        facts.loc[customers, "retained"].astype("boolean").astype("Float64").astype(float)
        if "retained" in facts
        else pd.Series(np.nan, index=cohort.index)
    )
    flag = best[customers].astype("boolean")
    frame = pd.DataFrame(
        {
            "cohort": cohort,
            "retained": still,
            "best": flag.fillna(False).astype(int),
            "known": flag.notna().astype(int),
        }
    )
    rows = frame.groupby("cohort", sort=True).agg(
        customers=("best", "size"),
        retained=("retained", "mean"),
        best=("best", "sum"),
        known=("known", "sum"),
    )
    low, high = proportion_ci(rows["best"].to_numpy(), rows["customers"].to_numpy(), alpha=alpha)
    # A cohort whose metric told no one apart (every customer tied) has no rate, not 0%.
    told = rows["known"].to_numpy() > 0
    rows = rows.assign(
        rate=(rows["best"] / rows["customers"]).where(told),
        ci_low=np.where(told, low, np.nan),
        ci_high=np.where(told, high, np.nan),
    )
    return rows.reset_index()[COHORT_COLUMNS]


def _untold_cohorts(table: pd.DataFrame, label: str) -> str | None:
    """A caveat naming the start cohorts whose best customers the metric could not tell."""
    untold = table[table["rate"].isna() & (table["customers"] > 0)]
    if untold.empty:
        return None
    names = ", ".join(str(c) for c in untold["cohort"])
    customers = int(untold["customers"].sum())
    return (
        f"Who is best cannot be told among the customers who started in {names} "
        f"({customers:,} customers): nearly all of them have the same {label}, so they are "
        "left out of the comparison, neither best nor the rest."
    )


def _definition(params: dict, revenue_basis: str) -> str:
    label = METRIC_LABELS.get(params["metric"], params["metric"].replace("_", " "))
    n_best, n_rest = params["n_best"], params["n_rest"]
    if params.get("ranking", "cohort") == "cohort":
        pool = (
            f"of each start year's customers by {label}, churned ones counted (so that tenure "
            "and survival do not decide who is best: older cohorts have had longer to grow and "
            "to churn)"
        )
    else:
        pool = f"of retained customers by {label}, all start years together"
    text = f"Best customers are the top {params['top_share']:.0%} {pool} ({fmt_count(n_best, 'customer')}"
    threshold = params.get("threshold")
    if threshold is not None and np.isfinite(threshold):
        if params["metric"] in ("arr", "clv", "expansion", "realised_revenue"):
            from icp_research.formatting import fmt_money

            text += f", {label} of {fmt_money(threshold)} or more" + (
                " in their cohort" if params.get("ranking", "cohort") == "cohort" else ""
            )
        elif params["metric"] == "nrr":
            text += f", net revenue retention of {fmt_pct(threshold)} or more"
        elif params["metric"] == "tenure":
            text += f", {threshold:,.0f} days or more as a customer"
    churned = ", churned ones included" if revenue_basis == "subscriptions" else ""
    return (
        text + f"); they are compared with the other {fmt_number(n_rest)} customers{churned}. "
        "Accounts that never bought are left out."
    )


def profile_best_customers(
    customers: pd.DataFrame,
    best,
    *,
    categorical=(),
    numeric=(),
    behavioural=(),
    alpha: float = 0.05,
    correction: str = "fdr_bh",
    n_bins: int = 5,
    min_level_count: int = 10,
) -> ProfileResult:
    """Compare best customers with the other customers, attribute level by attribute level.

    Parameters
    ----------
    customers : DataFrame
        One row per customer (accounts that never bought are not customers: leave them out).
    best : str or Series
        Boolean best-customer flag: a column of ``customers`` or a Series with its index;
        customers where it is missing (metric unknown) are left out.
    categorical, numeric : list of str
        Candidate attributes. Missing values are a level (``(missing)``); categorical levels
        seen on fewer than ``min_level_count`` customers are pooled into ``(other)``; numeric
        attributes are cut into ``n_bins`` quantile bins with rounded cut points.
    behavioural : list of str
        Post-sale numeric signals (usage, NPS), compared by medians in ``tables['behaviour']``.
    alpha, correction
        Significance after correction (:func:`stats.adjust_pvalues` method) over the family of
        every level of every candidate attribute.

    Returns
    -------
    ProfileResult
        Shares are fractions; ``lift`` = share_best / share_rest with its (1 - alpha) interval.
    """
    flag = customers[best] if isinstance(best, str) else best
    flag = pd.Series(flag, index=customers.index).astype("boolean")
    known = flag.notna().to_numpy()
    data = customers.loc[known]
    is_best = flag[known].astype(bool).to_numpy()
    n_best, n_rest = int(is_best.sum()), int((~is_best).sum())
    params = {
        "n_best": n_best,
        "n_rest": n_rest,
        "n_unknown": int((~known).sum()),
        "alpha": alpha,
        "correction": correction,
        "n_bins": n_bins,
        "min_level_count": min_level_count,
    }
    title = "Best-customer profile"
    caveats: list[str] = []
    if params["n_unknown"]:
        caveats.append(
            f"{params['n_unknown']:,} customers whose metric is unknown are left out of the "
            "comparison."
        )
    empty = pd.DataFrame(columns=PROFILE_COLUMNS)
    if n_best == 0 or n_rest == 0:
        caveats.append(
            f"There are {n_best:,} best customers and {n_rest:,} other customers: there is "
            "nothing to compare."
        )
        tables = {"combined": empty, "behaviour": pd.DataFrame(columns=BEHAVIOUR_COLUMNS)}
        return ProfileResult(title, empty, [], caveats, tables, params)

    rows: list[dict] = []
    bins: dict[str, list[float]] = {}
    for attribute in categorical:
        if attribute not in data:
            continue
        levels = pool_rare_levels(data[attribute], min_level_count)
        rows += _level_rows(attribute, "categorical", levels.to_numpy(), None, is_best, alpha)
    for attribute in numeric:
        if attribute not in data:
            continue
        binned, cuts = bin_numeric(data[attribute], n_bins)
        bins[attribute] = [float(c) for c in cuts]
        labels = np.asarray(binned.astype(str), dtype=object)
        order = [c for c in binned.categories if (labels == c).any()]
        rows += _level_rows(attribute, "numeric", labels, order, is_best, alpha)
    summary = pd.DataFrame(rows, columns=[*PROFILE_COLUMNS, "hypothesis"])
    behaviour = _behaviour(data, is_best, [c for c in behavioural if c in data], correction, alpha)
    if summary.empty:
        caveats.append("No candidate attribute has two or more levels among the customers.")
        tables = {"combined": empty, "behaviour": behaviour}
        return ProfileResult(title, empty, [], caveats, tables, params)

    # Both levels of a two-level attribute test one hypothesis: count it once.
    first = ~summary["hypothesis"].duplicated().to_numpy()
    q_first = adjust_pvalues(summary["p_value"].to_numpy()[first], correction)
    q_by_hypothesis = dict(zip(summary["hypothesis"].to_numpy()[first], q_first, strict=True))
    summary["q_value"] = summary["hypothesis"].map(q_by_hypothesis).astype(float)
    summary["significant"] = summary["q_value"] < alpha
    summary["sentence"] = [_sentence(row) for row in summary.itertuples(index=False)]
    summary = summary.drop(columns="hypothesis")
    summary = _ranked(summary)
    family_size = int(first.sum())
    params["family_size"] = family_size
    params["bins"] = bins

    combined = _combined(data, is_best, summary, bins, alpha)

    result = ProfileResult(
        title,
        summary.reset_index(drop=True),
        [],
        caveats,
        {"combined": combined, "behaviour": behaviour},
        params,
    )
    result.findings = _findings(result)
    caveats.append(
        f"{family_size:,} attribute levels compared; p-values are corrected for all of them "
        "(Benjamini-Hochberg). Lifts carry 95% intervals; a level is called significant only "
        "after correction."
        if correction in ("fdr_bh", "bh")
        else f"{family_size:,} attribute levels compared; p-values corrected ({correction})."
    )
    if n_best < 30:
        caveats.append(
            f"Only {n_best} best customers: shares move by several points with a single "
            "customer, and only large differences can be detected."
        )
    if len(behaviour):
        caveats.append(
            "Usage and NPS are measured after the sale: they describe best customers, they "
            "cannot pick them out before they buy (see 'Behaviour')."
        )
    caveats.append(
        "Best customers are compared with the other customers of today: attributes that made "
        "an account buy in the first place do not show here (see the won-deal subgroups)."
    )
    return result


def _level_rows(
    attribute, kind, labels: np.ndarray, order, is_best: np.ndarray, alpha
) -> list[dict]:
    """One row per level of ``labels``: counts, shares, lift with interval, p-value."""
    codes, uniques = pd.factorize(pd.Series(labels, dtype=object), sort=False)
    if order is None:
        order = sorted(uniques, key=lambda v: (v in (MISSING, OTHER), str(v)))
    if len(order) < 2:
        return []
    n_best, n_rest = int(is_best.sum()), int((~is_best).sum())
    best_counts = np.bincount(codes[is_best], minlength=len(uniques))
    rest_counts = np.bincount(codes[~is_best], minlength=len(uniques))
    position = {level: i for i, level in enumerate(uniques)}
    a = np.array([best_counts[position[level]] for level in order], dtype=float)
    c = np.array([rest_counts[position[level]] for level in order], dtype=float)
    lift, low, high = ratio_ci(a, n_best, c, n_rest, alpha)
    pvalues = two_proportion_pvalue(a, n_best, c, n_rest)
    total = n_best + n_rest
    events = a + c
    expected_min = np.minimum(n_best, n_rest) * np.minimum(events, total - events) / total
    two_levels = len(order) == 2
    rows = []
    for i, level in enumerate(order):
        rows.append(
            {
                "attribute": attribute,
                "kind": kind,
                "level": str(level),
                "n": int(events[i]),
                "best": int(a[i]),
                "rest": int(c[i]),
                "share_best": a[i] / n_best,
                "share_rest": c[i] / n_rest,
                "lift": float(lift[i]),
                "lift_ci_low": float(low[i]),
                "lift_ci_high": float(high[i]),
                "p_value": float(pvalues[i]),
                "q_value": np.nan,
                "test": "fisher_exact" if test_choice(expected_min[i]) == "fisher" else "chi2",
                "significant": False,
                "sentence": "",
                "hypothesis": f"{attribute}" if two_levels else f"{attribute}={level}",
            }
        )
    return rows


def _ranked(summary: pd.DataFrame) -> pd.DataFrame:
    """Significant over-represented levels first (largest lift first), then under-represented
    significant ones (smallest lift first), then the rest by q-value."""
    significant = summary["significant"].astype(bool)
    over = significant & (summary["lift"] > 1)
    under = significant & ~over
    group = np.select([over, under], [0, 1], 2)
    key = np.where(over, -summary["lift"], np.where(under, summary["lift"], summary["q_value"]))
    order = np.lexsort((key, group))
    return summary.iloc[order]


def _phrase(attribute: str, level: str) -> str:
    """'have industry FinTech', 'have employees 100 to < 1,000', 'have no industry recorded'."""
    name = attribute.replace("_", " ")
    if level == MISSING:
        return f"have no {name} recorded"
    if level == OTHER:
        return f"have a rarer {name} (pooled as '(other)')"
    return f"have {name} {level}"


def _sentence(row) -> str:
    if not np.isfinite(row.lift):
        # No customer of the rest has the level: the ratio is infinite, its interval open-ended.
        bound = f", at least {row.lift_ci_low:.1f}x" if np.isfinite(row.lift_ci_low) else ""
        lift = f"ratio –{bound}"
    elif not (np.isfinite(row.lift_ci_low) and np.isfinite(row.lift_ci_high)):
        lift = f"{row.lift:.1f}x"
    else:
        lift = f"{row.lift:.1f}x, {row.lift_ci_low:.1f}x-{row.lift_ci_high:.1f}x"
    strength = "" if row.significant else "; not significant after correction"
    return (
        f"{fmt_pct(row.share_best)} of best customers {_phrase(row.attribute, row.level)} vs "
        f"{fmt_pct(row.share_rest)} of the rest ({lift}){strength}."
    )


def _combined(data, is_best, summary, bins, alpha) -> pd.DataFrame:
    """Per attribute, its significant over-represented levels taken together.

    Categorical: every such level ("FinTech or SaaS"). Numeric: the longest run of adjacent such
    bins ("100 to < 1,000"). Only when two or more levels combine. The combination is chosen
    after the tests, so it carries no p-value of its own; each level in it is significant.
    """
    rows = []
    n_best, n_rest = int(is_best.sum()), int((~is_best).sum())
    chosen = summary[summary["significant"].astype(bool) & (summary["lift"] > 1)]
    for attribute, levels in chosen.groupby("attribute", sort=False):
        kind = levels["kind"].iloc[0]
        names = [lv for lv in levels["level"] if lv not in (MISSING, OTHER)]
        if kind == "numeric":
            names = _adjacent_run(names, bins[attribute])
            if len(names) < 2:
                continue
            cuts = bins[attribute]
            low, high = _run_edges(names, cuts)
            values = pd.to_numeric(data[attribute], errors="coerce").to_numpy(dtype=float)
            inside = ~np.isnan(values)
            if low is not None:
                inside &= values >= low
            if high is not None:
                inside &= values < high
            label = _range_label(low, high)
        else:
            if len(names) < 2:
                continue
            names = sorted(names)
            text = data[attribute].astype("string").fillna(MISSING).to_numpy(dtype=object)
            inside = np.isin(text, names)
            label = " or ".join(names)
        a, c = float(inside[is_best].sum()), float(inside[~is_best].sum())
        lift, lo, hi = (float(v) for v in ratio_ci(a, n_best, c, n_rest, alpha))
        row = {
            "attribute": attribute,
            "kind": "combined",
            "level": label,
            "n": int(a + c),
            "best": int(a),
            "rest": int(c),
            "share_best": a / n_best,
            "share_rest": c / n_rest,
            "lift": lift,
            "lift_ci_low": lo,
            "lift_ci_high": hi,
            "p_value": np.nan,
            "q_value": np.nan,
            "test": "combined (each level significant)",
            "significant": True,
        }
        row["sentence"] = _sentence(pd.Series(row))
        rows.append(row)
    return pd.DataFrame(rows, columns=PROFILE_COLUMNS)


def _adjacent_run(labels: list[str], cuts: list[float]) -> list[str]:
    """The longest run of adjacent bins among ``labels`` (bin labels of ``cuts``)."""
    from icp_research.methods.binning import interval_labels

    order = interval_labels(cuts)
    positions = sorted(order.index(label) for label in labels if label in order)
    best: list[int] = []
    run: list[int] = []
    for p in positions:
        run = run + [p] if run and p == run[-1] + 1 else [p]
        if len(run) > len(best):
            best = run
    return [order[p] for p in best]


def _run_edges(labels: list[str], cuts: list[float]):
    from icp_research.methods.binning import interval_labels

    order = interval_labels(cuts)
    first, last = order.index(labels[0]), order.index(labels[-1])
    low = cuts[first - 1] if first > 0 else None
    high = cuts[last] if last < len(cuts) else None
    return low, high


def _range_label(low, high) -> str:
    from icp_research.methods.binning import fmt_edge

    if low is None and high is None:
        return "any value"  # every bin of the attribute: the value is recorded at all
    if low is None:
        return f"< {fmt_edge(high)}"
    if high is None:
        return f">= {fmt_edge(low)}"
    return f"{fmt_edge(low)} to < {fmt_edge(high)}"


def _behaviour(data, is_best, signals, correction, alpha) -> pd.DataFrame:
    rows = []
    for signal in signals:
        values = pd.to_numeric(data[signal], errors="coerce").to_numpy(dtype=float)
        best_values = values[is_best & ~np.isnan(values)]
        rest_values = values[~is_best & ~np.isnan(values)]
        if best_values.size == 0 or rest_values.size == 0:
            continue
        median_best, median_rest = float(np.median(best_values)), float(np.median(rest_values))
        p_value = float(sps.mannwhitneyu(best_values, rest_values, alternative="two-sided").pvalue)
        ratio = median_best / median_rest if median_rest > 0 else np.nan
        rows.append(
            {
                "signal": signal,
                "n_best": int(best_values.size),
                "n_rest": int(rest_values.size),
                "median_best": median_best,
                "median_rest": median_rest,
                "ratio": ratio,
                "p_value": p_value,
            }
        )
    table = pd.DataFrame(rows, columns=BEHAVIOUR_COLUMNS[:-3])
    if table.empty:
        return pd.DataFrame(columns=BEHAVIOUR_COLUMNS)
    table["q_value"] = adjust_pvalues(table["p_value"].to_numpy(), correction)
    table["significant"] = table["q_value"] < alpha
    table["sentence"] = [
        f"Best customers: median {row.signal.replace('_', ' ')} {_num(row.median_best)} vs "
        f"{_num(row.median_rest)} for the rest"
        + ("" if row.significant else " (not significant after correction)")
        + "."
        for row in table.itertuples(index=False)
    ]
    return table[BEHAVIOUR_COLUMNS]


def _num(x: float) -> str:
    return f"{x:,.0f}" if abs(x) >= 100 else f"{x:,.1f}"


def _findings(result: ProfileResult) -> list[str]:
    params = result.params
    headlines = result.headlines(max_items=4)
    if headlines.empty:
        return [
            f"No attribute sets the {params['n_best']:,} best customers apart from the other "
            f"{params['n_rest']:,} customers after correcting for {params['family_size']:,} "
            "comparisons: nothing stands out."
        ]
    findings = list(headlines["sentence"])
    under = result.significant[result.significant["lift"] < 1]
    if len(under):
        gap = under["share_rest"] - under["share_best"]
        findings.append(under.loc[gap.idxmax(), "sentence"])
    return findings


def plot_profile(result: ProfileResult, *, top: int = 15, ax=None):
    """Lift of the attribute levels that set best customers apart, with intervals.

    The ``top`` levels with the smallest q-values (significant first), one row each: a point at
    the lift (share among best / share among the rest), its interval as a bar, filled when
    significant after correction; a reference line at 1x; log scale. Returns the Axes.
    """
    import matplotlib.pyplot as plt
    from matplotlib.ticker import FuncFormatter

    rows = result.summary
    if not rows.empty:
        rows = rows.sort_values(["significant", "q_value"], ascending=[False, True]).head(top)
        rows = rows.sort_values("lift", ascending=True)
    if ax is None:
        _, ax = plt.subplots(figsize=(8, 1.2 + 0.4 * max(len(rows), 1)))
    if rows.empty:
        ax.text(
            0.5,
            0.5,
            "No attribute levels to show",
            ha="center",
            va="center",
            transform=ax.transAxes,
        )
        ax.set_axis_off()
        return ax
    y = np.arange(len(rows))
    # A level no best customer has (lift 0) cannot sit on a log scale: it is drawn at the edge.
    floor, ceiling = 0.05, 20.0
    lift = np.clip(rows["lift"].to_numpy(dtype=float), floor, ceiling)
    low = np.clip(rows["lift_ci_low"].to_numpy(dtype=float), floor, ceiling)
    high = np.clip(rows["lift_ci_high"].to_numpy(dtype=float), floor, ceiling)
    significant = rows["significant"].to_numpy(dtype=bool)
    ax.hlines(y, low, high, color="#4c72b0", linewidth=2)
    ax.scatter(lift[significant], y[significant], color="#4c72b0", zorder=3, label="significant")
    ax.scatter(
        lift[~significant],
        y[~significant],
        facecolor="white",
        edgecolor="#4c72b0",
        zorder=3,
        label="not significant",
    )
    ax.axvline(1.0, color="grey", linestyle="--", linewidth=1)
    labels = [
        f"{a.replace('_', ' ')}: {lv}  ({fmt_pct(sb)} vs {fmt_pct(sr)})"
        for a, lv, sb, sr in zip(
            rows["attribute"], rows["level"], rows["share_best"], rows["share_rest"], strict=True
        )
    ]
    ax.set_yticks(y)
    ax.set_yticklabels(labels)
    ax.set_xscale("log")
    values = np.r_[low, high, lift]
    finite = values[np.isfinite(values) & (values > 0)]
    left = min(float(finite.min(initial=1.0)), 1.0) / 1.15
    right = max(float(finite.max(initial=1.0)), 1.0) * 1.15
    ax.set_xlim(left, right)
    steps = [0.05, 0.1, 0.25, 0.5, 1, 2, 4, 10, 20]
    ax.set_xticks([s for s in steps if left <= s <= right])
    ax.xaxis.set_major_formatter(FuncFormatter(lambda v, _: f"{v:g}x"))
    ax.xaxis.set_minor_formatter(FuncFormatter(lambda v, _: ""))
    ax.set_xlabel("Lift: share among best customers / share among the other customers")
    ax.set_title("What sets best customers apart (95% intervals)")
    ax.legend(loc="lower right", fontsize=8, frameon=False)
    return ax


def profile_table(result: ProfileResult, *, significant_only: bool = True) -> pd.DataFrame:
    """The profile for display: attribute, level, shares, lift with its interval, n, q value.

    Rows are the significant levels (all levels with ``significant_only=False``), in the order
    of ``summary``.
    """
    rows = result.significant if significant_only else result.summary
    if rows.empty:
        return pd.DataFrame()
    return pd.DataFrame(
        {
            "attribute": rows["attribute"].str.replace("_", " ").to_numpy(),
            "level": rows["level"].to_numpy(),
            "best customers": [fmt_pct(v) for v in rows["share_best"]],
            "other customers": [fmt_pct(v) for v in rows["share_rest"]],
            "lift (95% CI)": [
                f"{x:.2f}x ({lo:.2f}-{hi:.2f})" if np.isfinite([x, lo, hi]).all() else fmt_ratio(x)
                for x, lo, hi in zip(
                    rows["lift"], rows["lift_ci_low"], rows["lift_ci_high"], strict=True
                )
            ],
            "customers at level": [fmt_number(v) for v in rows["n"]],
            "q value": [_fmt_q(q) for q in rows["q_value"]],
        }
    )


def report_views(result: ProfileResult) -> dict:
    """``{name: callable returning a View}``: the profile's tables with their reasons.

    ``profile`` (:func:`profile_table`: the significant levels), ``combined`` (one statement
    per attribute whose over-represented levels combine; its ``sentence`` column is what a
    report reads) and ``behaviour`` (the post-sale signals, without their sentences).
    """
    tables = result.tables
    behaviour = tables.get("behaviour", pd.DataFrame(columns=BEHAVIOUR_COLUMNS))
    return {
        "profile": lambda: View(
            "a best-customer profile",
            profile_table(result),
            "no attribute level is significantly more or less common among the best customers "
            "than among the others.",
        ),
        "combined": lambda: View(
            "combined levels",
            tables.get("combined"),
            "No attribute has two or more significantly over-represented levels to combine.",
            empty_as="info",
        ),
        "cohorts": lambda: View(
            "best customers by start cohort",
            cohort_view(tables.get("cohorts")),
            "No customer has a start date, so there are no cohorts to compare.",
            empty_as="info",
        ),
        "behaviour": lambda: View(
            "usage and satisfaction",
            behaviour.drop(columns=["sentence"], errors="ignore"),
            "No usage or NPS data to compare.",
            empty_as="info",
        ),
    }


def cohort_view(table: pd.DataFrame | None) -> pd.DataFrame:
    """The cohort table for readers: rates with their intervals in words."""
    if table is None or table.empty:
        return pd.DataFrame()
    return pd.DataFrame(
        {
            "started": table["cohort"],
            "customers": [fmt_number(v) for v in table["customers"]],
            "still customers": [fmt_pct(v) if np.isfinite(v) else "–" for v in table["retained"]],
            "best customers": [
                fmt_number(v) if np.isfinite(r) else "–"
                for v, r in zip(table["best"], table["rate"], strict=True)
            ],
            "best-customer rate (95% CI)": [
                f"{fmt_pct(r)} ({fmt_pct(lo)}–{fmt_pct(hi)})"
                if np.isfinite(r)
                else "– (the metric does not tell them apart)"
                for r, lo, hi in zip(table["rate"], table["ci_low"], table["ci_high"], strict=True)
            ],
        }
    )


def _fmt_q(q: float) -> str:
    from icp_research.formatting import fmt_p

    return fmt_p(q)
