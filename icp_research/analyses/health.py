"""ICP health: is the ICP still the profile that does best, and do new customers still match it?

The seeds call an ICP "hypothesis, not law" and ask for a quarterly review: do ICP accounts
still beat the rest on win rate, contract value, time to close, expansion, retention and NPS
("if any of these metrics are lower for ICP customers than non-ICP, it suggests the ICP
definition needs refinement"); do the new customers of the quarter match the ICP, or is the
company drifting off target; and what changed in the ICP since the last review, and why.
:func:`icp_health` answers the three questions for the report ``notebooks/06_icp_health.ipynb``.

1. **ICP vs non-ICP, quarter by quarter.** The monitored ICP is an ``icp.json`` document (this
   run's, see :func:`monitored_icp`). An account is *ICP* when it meets every defining include
   rule and no exclude rule (:func:`icp_research.scoring.model.rule_columns`); the fit-score tiers
   give a second view. For the quarter and the trailing quarters, each measured with only what
   was known at that quarter's end (:func:`icp_research.data.facts.as_of_view`):

   - *win rate*: new-business deals closed in the quarter, won / closed; rate intervals and the
     rate ratio are clustered by account (cluster-robust Poisson);
   - *ACV*: mean amount of the won new-business deals closed in the quarter, with a
     cluster-robust interval; compared as a ratio of means;
   - *time to close*: Kaplan-Meier median days from creation to a decision of the new-business
     deals created in the quarter and the one before, open deals censored at the quarter end;
     ratio of medians, log-rank test;
   - *net revenue retention*, *logo retention* and *gross revenue retention* over the 12 months
     to the quarter end, of the accounts that paid 12 months earlier (subscriptions);
     compared as differences in points;
   - *NPS* of the responses given in the quarter (promoters 9-10 minus detractors 0-6, -100 to
     100), clustered by account; compared as a difference in points.

   Each comparison has a test; the tests of a quarter are one family (Benjamini-Hochberg). A
   measure is *flagged* when the ICP does worse: ``worse`` when significant after correction,
   ``worse_not_significant`` when only the point estimate is worse, and ``too_thin`` when a
   group has fewer than ``min_n`` units.

2. **Drift.** The share of the quarter's new customers (first subscription or first won deal in
   the quarter) and of its new pipeline (new-business deals created in it) that match the ICP,
   with intervals and against the previous quarter; and the population stability index (PSI)
   of every attribute the ICP uses, and of the fit score, between the previous quarter's new
   customers (and pipeline accounts) and this quarter's: below 0.10 *stable*, 0.10-0.25
   *moderate shift*, above 0.25 *large shift* (*too few to tell* with fewer than
   :data:`PSI_MIN_N` accounts in either quarter). PSI grows with small samples by chance
   alone, so each comes with a chi-square test of the same table (BH over the attributes).

   When the monitored ``icp.json`` carries a usable ``calibration`` (the fit score's win
   probability, :mod:`icp_research.methods.calibration`), it is applied to each quarter's closed
   new-business deals (:func:`calibration_trend`, ``tables['calibration']``): Brier score,
   calibration slope and intercept, and wins observed vs expected with cluster-robust
   intervals. The quarter is flagged for *calibration drift* when the slope's interval or the
   observed / expected ratio's interval excludes 1.

   The ICP monitored this way was drawn from data that includes these quarters, which
   flatters it. The ICP of the previous run was drawn before the quarter happened: the same
   comparison by *its* rules on the quarter is the out-of-sample check (``tables
   ['previous_icp']``).

3. **Change log.** :func:`icp_research.analyses.changelog.compare_icp` compares this run's
   ``icp.json`` with the previous run's: statement, characteristics and rules added, removed,
   changed or moved between include, exclude and uncertain (by their conditions), fit-score
   points moved per level, tier cut-offs moved, and the validation numbers before and after,
   each change with its evidence.

Artifacts (:func:`save_artifacts`)
----------------------------------
``icp_health.csv`` (:data:`HEALTH_COLUMNS`)
    One row per measure, group and quarter. ``metric``: ``win_rate``, ``acv``,
    ``time_to_close``, ``nrr``, ``logo_retention``, ``revenue_retention``, ``nps``, and the drift
    shares ``icp_share_new_customers`` and ``icp_share_new_pipeline``; ``group``: ``icp``,
    ``non_icp``, ``icp_vs_non_icp`` (the comparison) or a tier name; ``quarter`` ('2026Q3');
    ``value`` with ``interval`` (readable, '41–52%') and ``ci_low`` / ``ci_high``; ``n`` and
    ``n_of`` (what is counted); ``unit`` (``share`` as a fraction, ``money``, ``days``,
    ``nps`` points, ``ratio``, ``difference`` in the groups' unit); ``test``, ``p_value``,
    ``q_value`` and ``flag`` (``better``, ``worse``, ``worse_not_significant``,
    ``no_difference``, ``too_thin``) on the comparison and the two group rows it compares.
    The drift shares have ``group`` ``icp`` or a tier name (the share of the quarter's new
    customers or new-business deals in it); the ``icp`` row is tested against the previous
    quarter (``flag``: ``fell``, ``rose``, ``no_change``, ``too_thin``).
``icp_drift.csv`` (:data:`DRIFT_COLUMNS`)
    ``attribute`` (or ``fit_score``), ``population`` (``new customers`` / ``new pipeline``),
    ``quarter``, ``previous_quarter``, ``psi``, ``band``, ``n``, ``n_previous``, ``p_value``,
    ``q_value``, ``largest_change`` (the level whose share moved most, in words).
``icp_changelog.md`` and ``icp_changelog.json``
    The change log (:class:`Changelog`); the Markdown file carries the earlier runs' entries
    below this one, so the latest run's file is the whole dated history.
``health.json``
    ``headline`` (display strings for the run dashboard), ``flags`` and ``findings`` (sentences),
    ``caveats``, the ``quarter`` and ``quarters`` shown, ``icp_source`` and
    ``icp_description`` (which ICP is monitored), ``previous_run`` and
    ``previous_icp_this_quarter`` (the comparison rows of the out-of-sample check).
"""

from __future__ import annotations

import json
import math
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field, replace
from pathlib import Path

import numpy as np
import pandas as pd
from scipy import stats as sps

from icp_research.analyses import registry
from icp_research.analyses.changelog import Changelog, compare_icp
from icp_research.data.config import quarter_end, quarter_label, quarter_start, resolve_quarter
from icp_research.data.facts import as_of_view, new_business
from icp_research.data.study import Study
from icp_research.errors import AnalysisError, ConfigError, InputError, NotEnoughData
from icp_research.formatting import (
    error_bars,
    fmt_money,
    fmt_number,
    fmt_p,
    fmt_pct,
    to_jsonable,
)
from icp_research.methods.binning import MISSING, apply_bins, cut_points
from icp_research.methods.stats import (
    adjust_pvalues,
    clustered_rate_ci,
    clustered_rate_test,
    clustered_ratio_ci,
    clustered_ratio_test,
    proportion_ci,
    two_proportion_pvalue,
)
from icp_research.result import Result, View

__all__ = [
    "CALIBRATION_COLUMNS",
    "DRIFT_COLUMNS",
    "HEALTH_COLUMNS",
    "METRICS",
    "HealthResult",
    "MonitoredIcp",
    "calibration_trend",
    "icp_health",
    "icp_membership",
    "monitored_icp",
    "plot_drift",
    "plot_health_trends",
    "plot_icp_share",
    "psi",
    "psi_band",
    "save_artifacts",
]

FORMAT = 1

HEALTH_COLUMNS = [
    "metric",
    "group",
    "quarter",
    "value",
    "interval",
    "ci_low",
    "ci_high",
    "n",
    "n_of",
    "unit",
    "test",
    "p_value",
    "q_value",
    "flag",
]

DRIFT_COLUMNS = [
    "attribute",
    "population",
    "quarter",
    "previous_quarter",
    "psi",
    "band",
    "n",
    "n_previous",
    "p_value",
    "q_value",
    "beyond_chance",
    "largest_change",
    "of_icp",
]

#: Columns of the win-probability check per quarter (``tables['calibration']``).
CALIBRATION_COLUMNS = [
    "quarter",
    "n",
    "events",
    "expected",
    "observed_expected",
    "oe_low",
    "oe_high",
    "brier",
    "brier_reference",
    "slope",
    "slope_low",
    "slope_high",
    "intercept",
    "intercept_low",
    "intercept_high",
    "in_calibration_period",
    "drift",
]

#: PSI bands: (upper bound, band), the usual credit-scoring convention.
PSI_BANDS = ((0.10, "stable"), (0.25, "moderate shift"), (math.inf, "large shift"))
#: Fewer accounts than this in either quarter: PSI is noise (6 against 3 accounts read 3.02, a
#: "large shift"), and the band says so instead.
PSI_MIN_N = 10
TOO_FEW = "too few to tell"

#: Added to every bin's count before PSI is computed, so that an empty bin does not make it
#: infinite (a half count per bin, like a Jeffreys prior).
PSI_SMOOTHING = 0.5

#: Fit-score bins for PSI: five 20-point bins (ten would be noise at a quarter's sample sizes).
SCORE_EDGES = [20, 40, 60, 80]

#: Flags of a comparison, from bad to neutral.
FLAGS = ("worse", "worse_not_significant", "too_thin", "no_difference", "better")

SEEDS_SAY = "a common sign that the ICP definition needs refinement"

ICP, NON_ICP, VERSUS = "icp", "non_icp", "icp_vs_non_icp"
NEW_CUSTOMERS, NEW_PIPELINE = "new customers", "new pipeline"


@dataclass(frozen=True)
class Metric:
    """One health measure: how it reads, which way is better, how groups are compared."""

    name: str
    label: str
    higher_is_better: bool
    unit: str  # share / money / days / nps
    n_of: str
    comparison: str  # ratio / difference


METRICS = (
    Metric("win_rate", "win rate", True, "share", "closed new-business deals", "ratio"),
    Metric("acv", "ACV", True, "money", "won new-business deals", "ratio"),
    Metric("time_to_close", "time to close", False, "days", "new-business deals", "ratio"),
    Metric("nrr", "net revenue retention", True, "share", "customers a year before", "difference"),
    Metric(
        "logo_retention", "logo retention", True, "share", "customers a year before", "difference"
    ),
    Metric(
        "revenue_retention",
        "gross revenue retention",
        True,
        "share",
        "customers a year before",
        "difference",
    ),
    Metric("nps", "NPS", True, "nps", "responses", "difference"),
)
_METRIC = {m.name: m for m in METRICS}


# ---------------------------------------------------------------------------------------------
# Which ICP is monitored


@dataclass
class MonitoredIcp:
    """The ``icp.json`` document the health report monitors and where it came from.

    ``source``: ``file`` (given by the analyst), ``this run``, ``drawn here`` (built with
    :func:`icp_research.analyses.blueprint.build_blueprint`), ``previous run`` or ``none``;
    ``description``: one sentence for the report.
    """

    spec: dict | None
    source: str
    description: str
    path: Path | None = None

    @property
    def drawn(self) -> bool:
        return bool(self.spec) and bool(_defining_rules(self.spec))


def _read_json(path: Path) -> dict | None:
    try:
        data = json.loads(Path(path).read_text(encoding="utf-8"))
    except (OSError, ValueError):
        return None
    return data if isinstance(data, dict) else None


def _run_label(run_dir: Path) -> tuple[str, str | None]:
    """A run folder's name and as-of date (from its manifest)."""
    manifest = _read_json(Path(run_dir) / "artifacts" / "manifest.json") or {}
    return str(manifest.get("run") or Path(run_dir).name), manifest.get("as_of")


def previous_icp(previous_run: str | Path | None) -> tuple[dict | None, str, str | None]:
    """The previous run's ``icp.json`` (None when it has none), its run name and as-of date."""
    if not previous_run:
        return None, "", None
    run_dir = Path(previous_run)
    name, as_of = _run_label(run_dir)
    spec = _read_json(run_dir / "artifacts" / "icp.json")
    if spec is not None and "rules" not in spec:
        spec = None
    return spec, name, as_of or (spec or {}).get("as_of")


def monitored_icp(
    study: Study,
    *,
    icp_path: str | Path | None = None,
    previous_run: str | Path | None = None,
    build: bool = True,
) -> MonitoredIcp:
    """Find the ICP definition to monitor.

    In order: the ``icp_path`` file when given; the ``icp.json`` this run's blueprint report
    wrote to the study's artifacts folder (same as-of date); a blueprint drawn here from the
    study (when ``build``); the previous run's ``icp.json``. Never raises: with none of these,
    ``spec`` is None and the description says why.
    """
    as_of = study.as_of.strftime("%Y-%m-%d")
    if icp_path:
        from icp_research.scoring.model import read_icp

        spec = read_icp(icp_path)
        return MonitoredIcp(
            spec,
            "file",
            f"Monitoring the ICP in {Path(icp_path).name} (drawn as of {spec.get('as_of', '?')}).",
            Path(icp_path),
        )
    if study.artifacts_dir is not None:
        path = Path(study.artifacts_dir) / "icp.json"
        spec = _read_json(path)
        if spec is not None and "rules" in spec and spec.get("as_of") == as_of:
            return MonitoredIcp(
                spec,
                "this run",
                f"Monitoring the ICP drawn by this run's blueprint report (as of {as_of}).",
                path,
            )
    problems = []
    if build:
        from icp_research.analyses.blueprint import build_blueprint

        try:
            spec = json.loads(
                json.dumps(to_jsonable(build_blueprint(study).to_json()), default=str)
            )
        except (NotEnoughData, InputError, AnalysisError, ConfigError, ValueError) as error:
            problems.append(f"the blueprint could not be drawn here ({error})")
        else:
            return MonitoredIcp(
                spec,
                "drawn here",
                f"Monitoring the ICP drawn from this data as of {as_of} (the blueprint report's "
                "icp.json was not available, so the blueprint was drawn here).",
            )
    spec, name, previous_as_of = previous_icp(previous_run)
    if spec is not None:
        why = "; ".join(problems) or "this run has no icp.json"
        return MonitoredIcp(
            spec,
            "previous run",
            f"Monitoring the ICP of the previous run, {name} (as of {previous_as_of}), because "
            f"{why}.",
            Path(previous_run) / "artifacts" / "icp.json",
        )
    why = "; ".join(problems) or "there is no icp.json for this run and no previous run"
    return MonitoredIcp(None, "none", f"No ICP definition to monitor: {why}.")


def _plain(value):
    """A table cell as JSON: NaN as null, numpy numbers as Python numbers."""
    if isinstance(value, np.integer):
        return int(value)
    if isinstance(value, float | np.floating):
        return None if not np.isfinite(value) else float(value)
    return value


def _defining_rules(spec: Mapping) -> list[dict]:
    rules = (spec.get("rules") or {}).get("include") or []
    return [r for r in rules if r.get("role", "filter") == "filter"]


def icp_membership(spec: Mapping | None, accounts: pd.DataFrame) -> pd.DataFrame:
    """Which accounts the ICP covers: ``in_icp``, ``fit_score`` and ``tier`` per account.

    ``accounts`` has one row per account with ``account_id`` and the attribute columns;
    the result is indexed by ``account_id``. ``in_icp`` follows
    :func:`icp_research.scoring.model.rule_columns` (every defining include rule, no exclude rule;
    all False when no ICP is drawn); ``fit_score`` (0-100) and ``tier`` (text) are NaN when the
    document has no fit score.
    """
    from icp_research.scoring.model import Scorecard, rule_columns

    index = pd.Index(accounts["account_id"], name="account_id")
    out = pd.DataFrame(
        {"in_icp": False, "fit_score": np.nan, "tier": pd.Series(pd.NA, dtype="object")},
        index=index,
    )
    if not spec or not len(accounts):
        return out
    frame = accounts.reset_index(drop=True)
    if _defining_rules(spec):
        out["in_icp"] = rule_columns(frame, dict(spec))["in_icp"].to_numpy(dtype=bool)
    if spec.get("scorecard"):
        scored = Scorecard.from_dict(dict(spec)).score(frame, reasons=False)
        out["fit_score"] = scored["fit_score"].to_numpy(dtype=float)
        out["tier"] = scored["tier"].astype(str).to_numpy(dtype=object)
    return out


def _tier_names(spec: Mapping | None) -> list[str]:
    if not spec or not spec.get("scorecard"):
        return []
    return [str(t["name"]) for t in spec.get("tiers") or []]


# ---------------------------------------------------------------------------------------------
# Quarters


@dataclass
class _Window:
    """One quarter, seen from its end (or from the as-of date in a quarter not over yet)."""

    label: str
    start: pd.Timestamp
    end: pd.Timestamp
    partial: bool = False

    @property
    def name(self) -> str:
        return f"{self.label} (to {self.end:%Y-%m-%d})" if self.partial else self.label


def _previous_label(label: str) -> str:
    return quarter_label(quarter_start(label) - pd.Timedelta(days=1))


def _windows(as_of: pd.Timestamp, quarter: str, count: int) -> list[_Window]:
    """``count`` quarters ending with ``quarter``, oldest first."""
    labels = [quarter]
    while len(labels) < count:
        labels.insert(0, _previous_label(labels[0]))
    windows = []
    for label in labels:
        end = pd.Timestamp(quarter_end(label))
        partial = end > as_of
        windows.append(_Window(label, pd.Timestamp(quarter_start(label)), min(end, as_of), partial))
    return windows


@dataclass
class _QuarterData:
    """What one quarter's measures are computed from, all as known at its end."""

    window: _Window
    closed: pd.DataFrame  # new-business deals closed in the quarter: account_id, won, amount
    cohort: pd.DataFrame  # new-business deals created in the cycle window (stage, dates)
    retention: pd.DataFrame  # accounts paying a year before: account_id, arr_before, arr_now
    nps: pd.DataFrame  # responses in the quarter: account_id, value (-100 / 0 / 100)
    new_customers: pd.Index  # accounts whose first payment fell in the quarter
    pipeline: pd.DataFrame  # new-business deals created in the quarter: account_id
    has_deals: bool
    has_subscriptions: bool
    has_nps: bool
    has_amount: bool
    # The independent unit of each account (by its number): its group of linked accounts'
    # number, or None when no account is linked (each account is then its own unit).
    group_of: np.ndarray | None = None

    def clusters(self, account_ids) -> np.ndarray:
        """The independent unit of each row's account (see :attr:`group_of`)."""
        if self.group_of is None:
            return np.asarray(account_ids)
        codes = np.asarray(account_ids, dtype=float)
        known = ~np.isnan(codes)
        out = np.full(codes.shape, np.nan)
        out[known] = self.group_of[codes[known].astype(np.int64)]
        return out


def _arr_on(subs: pd.DataFrame, day: pd.Timestamp) -> pd.Series:
    """ARR per account of the subscription lines active on ``day``."""
    if subs is None or subs.empty:
        return pd.Series(dtype=float)
    end = subs["end_date"] if "end_date" in subs else pd.Series(pd.NaT, index=subs.index)
    active = (subs["start_date"] <= day) & (end.isna() | (end > day))
    return subs.loc[active].groupby("account_id")["arr"].sum()


_QUARTER_COLUMNS = {
    "opportunities": ("account_id", "stage", "type", "created_at", "closed_at", "amount"),
    "subscriptions": ("account_id", "start_date", "end_date", "arr"),
    "nps": ("account_id", "date", "score"),
}


def _account_codes(tables: Mapping[str, pd.DataFrame], head: Mapping | None = None):
    """The accounts table and the tables a quarter reads (:data:`_QUARTER_COLUMNS`) with
    ``account_id`` as a number: the account's position among every id of these tables in sorted
    order (NaN where the id is missing). Sorted, so that groups come out in the order the ids'
    would; the results (no account is named in them) are the same as over the ids.

    With ``head`` (:attr:`Study.account_groups`: account id -> the id heading its group of
    linked accounts), also the number of each account's group, by the account's number (see
    :attr:`_QuarterData.group_of`); else None."""
    names = ["accounts", *(n for n in _QUARTER_COLUMNS if n in tables)]
    frames = {n: tables[n] for n in names if n in tables and "account_id" in tables[n]}
    ids = pd.Index(
        pd.unique(np.concatenate([pd.unique(f["account_id"].dropna()) for f in frames.values()]))
    )
    try:
        keys = ids.sort_values()
    except TypeError:  # ids of mixed kinds do not sort; group order is then of no concern
        keys = ids
    coded = {}
    for name, frame in frames.items():
        at = keys.get_indexer(frame["account_id"]).astype(float)
        at[at < 0] = np.nan
        columns = frame.columns if name == "accounts" else _QUARTER_COLUMNS[name]
        coded[name] = pd.DataFrame(
            {c: (at if c == "account_id" else frame[c]) for c in columns if c in frame},
            copy=False,
        )
    accounts = coded.pop("accounts", tables["accounts"])
    group_of = None
    if head:
        text = pd.Series(keys, dtype=object).astype("string").str.strip()
        group_of = pd.factorize(text.map(head).fillna(text))[0].astype(float)
    tables = {**{n: tables[n] for n in _QUARTER_COLUMNS if n in tables}, **coded}
    return accounts, tables, group_of


def _quarter_data(
    tables: Mapping[str, pd.DataFrame],
    window: _Window,
    cycle_quarters: int,
    group_of: np.ndarray | None = None,
):
    # Only the columns read here go through the as-of cut (its copy of 10M deals' other
    # columns, ids and names, took seconds per quarter).
    needed = {
        name: pd.DataFrame({c: tables[name][c] for c in columns if c in tables[name]}, copy=False)
        for name, columns in _QUARTER_COLUMNS.items()
        if name in tables
    }
    view = as_of_view(needed, window.end)
    start, end = window.start, window.end
    deals = view.get("opportunities")
    has_deals = deals is not None and len(deals) > 0
    empty_deals = pd.DataFrame(
        {
            "account_id": pd.Series(dtype=object),
            "won": pd.Series(dtype=float),
            "amount": pd.Series(dtype=float),
        }
    )
    closed = cohort = pipeline = empty_deals
    first_won = pd.Series(dtype="datetime64[ns]")
    has_amount = False
    if has_deals:
        first_won = deals.loc[deals["stage"] == "won"].groupby("account_id")["closed_at"].min()
        new = new_business(deals)
        has_amount = "amount" in new and new["amount"].notna().any()
        in_quarter = new["closed_at"].between(start, end) & new["stage"].isin(["won", "lost"])
        closed = pd.DataFrame(
            {
                "account_id": new.loc[in_quarter, "account_id"].to_numpy(),
                "won": (new.loc[in_quarter, "stage"] == "won").to_numpy(dtype=float),
                "amount": (
                    pd.to_numeric(new.loc[in_quarter, "amount"], errors="coerce").to_numpy(float)
                    if has_amount
                    else np.full(int(in_quarter.sum()), np.nan)
                ),
            }
        )
        cycle_start = pd.Timestamp(quarter_start(window.label))
        for _ in range(max(int(cycle_quarters), 1) - 1):
            cycle_start = pd.Timestamp(quarter_start(_previous_label(quarter_label(cycle_start))))
        cohort = new.loc[
            new["created_at"].between(cycle_start, end),
            ["account_id", "stage", "created_at", "closed_at"],
        ].reset_index(drop=True)
        pipeline = new.loc[new["created_at"].between(start, end), ["account_id"]].reset_index(
            drop=True
        )
    subs = view.get("subscriptions")
    has_subscriptions = subs is not None and len(subs) > 0
    retention = pd.DataFrame(
        {
            "account_id": pd.Series(dtype=object),
            "arr_before": pd.Series(dtype=float),
            "arr_now": pd.Series(dtype=float),
        }
    )
    first_paid = pd.Series(dtype="datetime64[ns]")
    if has_subscriptions:
        before = _arr_on(subs, end - pd.Timedelta(days=365))
        before = before[before > 0]
        now = _arr_on(subs, end).reindex(before.index, fill_value=0.0)
        retention = pd.DataFrame(
            {
                "account_id": before.index.to_numpy(),
                "arr_before": before.to_numpy(dtype=float),
                "arr_now": now.to_numpy(dtype=float),
            }
        )
        # A customer from its first paid subscription, as in the facts (a free plan or a
        # trial at ARR 0 makes none).
        paid = subs[subs["arr"] > 0] if "arr" in subs else subs
        first_paid = paid.groupby("account_id")["start_date"].min()
    customer_since = pd.concat([first_won, first_paid], axis=1).min(axis=1)
    new_customers = pd.Index(customer_since.index[customer_since.between(start, end)])
    responses = view.get("nps")
    has_nps = responses is not None and len(responses) > 0
    nps = pd.DataFrame({"account_id": pd.Series(dtype=object), "value": pd.Series(dtype=float)})
    if has_nps:
        in_quarter = responses["date"].between(start, end) & responses["score"].notna()
        score = pd.to_numeric(responses.loc[in_quarter, "score"], errors="coerce")
        nps = pd.DataFrame(
            {
                "account_id": responses.loc[in_quarter, "account_id"].to_numpy(),
                "value": np.select([score >= 9, score <= 6], [100.0, -100.0], 0.0),
            }
        )
    return _QuarterData(
        window,
        closed,
        cohort,
        retention,
        nps,
        new_customers,
        pipeline,
        has_deals,
        has_subscriptions,
        has_nps,
        has_amount,
        group_of,
    )


# ---------------------------------------------------------------------------------------------
# Estimates per group and comparisons


@dataclass
class _Estimate:
    value: float = np.nan
    low: float = np.nan
    high: float = np.nan
    n: int = 0
    se: float = np.nan
    events: float = np.nan


def _units(data: _QuarterData, metric: str) -> pd.DataFrame | None:
    """The rows a measure is computed from (None when the data cannot measure it), with
    ``cluster``, the independent unit of each row's account."""
    units = _unit_rows(data, metric)
    if units is None:
        return None
    return units.assign(cluster=data.clusters(units["account_id"]))


def _unit_rows(data: _QuarterData, metric: str) -> pd.DataFrame | None:
    if metric == "win_rate":
        return data.closed.assign(y=data.closed["won"], x=1.0) if data.has_deals else None
    if metric == "acv":
        if not (data.has_deals and data.has_amount):
            return None
        won = data.closed[(data.closed["won"] == 1) & data.closed["amount"].notna()]
        return won.assign(y=won["amount"], x=1.0)
    if metric == "time_to_close":
        return data.cohort if data.has_deals else None
    if metric in ("nrr", "logo_retention", "revenue_retention"):
        if not data.has_subscriptions:
            return None
        frame = data.retention
        if metric == "nrr":
            y = frame["arr_now"]
        elif metric == "logo_retention":
            y = (frame["arr_now"] > 0).astype(float)
        else:
            y = np.minimum(frame["arr_now"], frame["arr_before"])
        x = frame["arr_before"] if metric != "logo_retention" else 1.0
        return frame.assign(y=y, x=x)
    if metric == "nps":
        return data.nps.assign(y=data.nps["value"], x=1.0) if data.has_nps else None
    raise ValueError(f"unknown metric {metric!r}")


def _per_account(units: pd.DataFrame) -> pd.DataFrame:
    """Sums per independent unit: the account, or its group of linked accounts."""
    return units.groupby("cluster", sort=True)[["y", "x"]].sum()


def _estimate(metric: str, units: pd.DataFrame, as_of: pd.Timestamp, alpha: float) -> _Estimate:
    n = len(units)
    if n == 0:
        return _Estimate()
    if metric == "time_to_close":
        median, low, high, events = _km_median(units, as_of, alpha)
        return _Estimate(median, low, high, n, events=events)
    per = _per_account(units)
    if metric in ("win_rate", "logo_retention"):
        events = float(units["y"].sum())
        if len(per) == n:  # one row per account: a plain proportion, Wilson interval
            low, high = proportion_ci(events, n, alpha)
            return _Estimate(events / n, float(low), float(high), n, events=events)
        rate, low, high, _ = clustered_rate_ci(per["y"], per["x"], alpha)
        return _Estimate(rate, low, high, n, events=events)
    ratio, low, high, _, se = clustered_ratio_ci(per["y"], per["x"], alpha)
    return _Estimate(ratio, low, high, n, se)


def _no_zero_spread(est_icp, est_rest, icp_units, rest_units, alpha: float):
    """Two ratio-of-sums estimates, where one group's accounts all have the same value (14
    ICP accounts, each at 100% NRR): its sandwich standard error is 0, its interval
    "100–100%", and the test of the difference then had only the other group's uncertainty
    (a first user's "+25 points, p < 0.001" on 14 accounts). Such a group takes the other's
    spread per account, scaled to its own number of accounts (or groups), as a pooled-variance
    t-test would; its interval widens to match."""
    pair = [est_icp, est_rest]
    k = [icp_units["cluster"].nunique(), rest_units["cluster"].nunique()]
    for this, other in ((0, 1), (1, 0)):
        mine, theirs = pair[this], pair[other]
        if not (np.isfinite(mine.se) and np.isfinite(theirs.se)):
            continue
        if mine.se > 1e-12 * max(1.0, abs(mine.value)) or theirs.se <= 0 or k[this] < 2:
            continue
        se = theirs.se * math.sqrt(k[other] / k[this])
        z = sps.norm.ppf(1 - alpha / 2)
        pair[this] = replace(mine, se=se, low=mine.value - z * se, high=mine.value + z * se)
    return pair[0], pair[1]


def _km_median(units: pd.DataFrame, as_of: pd.Timestamp, alpha: float):
    from icp_research.methods.survival import kaplan_meier

    durations, events = _cycle_times(units, as_of)
    keep = ~np.isnan(durations)
    if not keep.any():
        return np.nan, np.nan, np.nan, 0
    result = kaplan_meier(
        durations[keep], events[keep], alpha=alpha, horizons=None, event_name="close"
    )
    row = result.summary.iloc[0]
    return (
        float(row["median"]),
        float(row["median_ci_low"]),
        float(row["median_ci_high"]),
        int(events[keep].sum()),
    )


def _cycle_times(units: pd.DataFrame, as_of: pd.Timestamp) -> tuple[np.ndarray, np.ndarray]:
    """Days from creation to a decision (won or lost), open deals censored at ``as_of``."""
    closed = units["stage"].isin(["won", "lost"]).to_numpy()
    finish = units["closed_at"].where(closed, as_of)
    days = (finish - units["created_at"]).dt.days.to_numpy(dtype=float)
    days[days < 0] = np.nan
    return days, closed.astype(float)


_TEST_NAMES = {
    "poisson_cluster_robust": "cluster-robust Poisson",
    "score_cluster_robust": "cluster-robust score test",
    "fisher": "Fisher's exact",
    "chi2": "chi-square",
}


@dataclass
class _Comparison:
    value: float = np.nan
    low: float = np.nan
    high: float = np.nan
    test: str = ""
    p_value: float = np.nan


def _compare(
    metric: Metric,
    icp: pd.DataFrame,
    rest: pd.DataFrame,
    est_icp: _Estimate,
    est_rest: _Estimate,
    as_of: pd.Timestamp,
    alpha: float,
) -> _Comparison:
    """ICP against the rest: a ratio or a difference with its interval, and a test."""
    if not len(icp) or not len(rest):
        return _Comparison(test="not tested: a group is empty")
    name = metric.name
    if name == "win_rate":
        both = pd.concat([icp, rest], ignore_index=True)
        exposed = np.r_[np.ones(len(icp), bool), np.zeros(len(rest), bool)]
        out = clustered_ratio_test(both["y"], exposed, both["cluster"], alpha)
        test = out["test"]
        for code, words in _TEST_NAMES.items():
            test = test.replace(code, words)
        return _Comparison(out["ratio"], out["ci_low"], out["ci_high"], test, out["p_value"])
    linked = icp["cluster"].duplicated().any() or rest["cluster"].duplicated().any()
    if name == "logo_retention" and not linked:
        from statsmodels.stats.proportion import confint_proportions_2indep

        k1, n1, k0, n0 = icp["y"].sum(), len(icp), rest["y"].sum(), len(rest)
        low, high = confint_proportions_2indep(
            k1, n1, k0, n0, method="newcomb", compare="diff", alpha=alpha
        )
        p_value = float(two_proportion_pvalue(k1, n1, k0, n0)[0])
        table = np.array([[k1, n1 - k1], [k0, n0 - k0]], dtype=float)
        small = table.sum(axis=0).all() and sps.contingency.expected_freq(table).min() < 5
        return _Comparison(
            k1 / n1 - k0 / n0,
            float(low),
            float(high),
            _TEST_NAMES["fisher" if small else "chi2"],
            p_value,
        )
    if name == "time_to_close":
        return _compare_cycles(icp, rest, est_icp, est_rest, as_of)
    # Ratios of sums with cluster-robust standard errors (ACV, NRR, GRR, NPS; logo retention
    # when linked accounts share a unit).
    if name == "logo_retention":
        estimates = []
        for group in (icp, rest):
            per = _per_account(group)
            ratio, _, _, _, se = clustered_ratio_ci(per["y"], per["x"], alpha)
            estimates.append(_Estimate(value=ratio, se=se))
        est_icp, est_rest = estimates
    k1 = icp["cluster"].nunique()
    k0 = rest["cluster"].nunique()
    if k1 < 2 or k0 < 2 or not (np.isfinite(est_icp.se) and np.isfinite(est_rest.se)):
        return _Comparison(test="not tested: fewer than 2 accounts (or groups) in a group")
    df = max(min(k1, k0) - 1, 1)
    t_crit = sps.t.ppf(1 - alpha / 2, df)
    if metric.comparison == "ratio":
        if est_icp.value <= 0 or est_rest.value <= 0:
            return _Comparison(test="not tested: a mean is zero")
        log_ratio = math.log(est_icp.value / est_rest.value)
        se = math.hypot(est_icp.se / est_icp.value, est_rest.se / est_rest.value)
        p_value = 2 * sps.t.sf(abs(log_ratio) / se, df) if se > 0 else np.nan
        return _Comparison(
            math.exp(log_ratio),
            math.exp(log_ratio - t_crit * se),
            math.exp(log_ratio + t_crit * se),
            "cluster-robust t (log ratio of means)",
            float(p_value),
        )
    difference = est_icp.value - est_rest.value
    se = math.hypot(est_icp.se, est_rest.se)
    p_value = 2 * sps.t.sf(abs(difference) / se, df) if se > 0 else np.nan
    return _Comparison(
        difference,
        difference - t_crit * se,
        difference + t_crit * se,
        "cluster-robust t (difference)",
        float(p_value),
    )


def _compare_cycles(icp, rest, est_icp, est_rest, as_of) -> _Comparison:
    from icp_research.methods.survival import logrank_test

    d1, e1 = _cycle_times(icp, as_of)
    d0, e0 = _cycle_times(rest, as_of)
    durations = np.r_[d1, d0]
    events = np.r_[e1, e0]
    groups = np.r_[np.full(d1.size, "icp"), np.full(d0.size, "rest")]
    keep = ~np.isnan(durations)
    test = logrank_test(durations[keep], events[keep], groups[keep])
    ratio = (
        est_icp.value / est_rest.value
        if np.isfinite(est_icp.value) and np.isfinite(est_rest.value) and est_rest.value > 0
        else np.nan
    )
    # No interval for a ratio of Kaplan-Meier medians: the test is the log-rank test.
    return _Comparison(ratio, np.nan, np.nan, "log-rank", float(test.p_value))


def _worse(metric: Metric, effect: float) -> bool | None:
    if not np.isfinite(effect):
        return None
    neutral = 1.0 if metric.comparison == "ratio" else 0.0
    # A gap that reads as none ("-0 pts", "1.00x") is none: not "ICP worse, within chance".
    shown = 0.5 if metric.unit == "nps" and metric.comparison != "ratio" else 0.005
    if abs(effect - neutral) < shown:
        return False
    return (effect < neutral) if metric.higher_is_better else (effect > neutral)


def _flag(metric: Metric, comparison: _Comparison, q_value: float, n_min: int, min_n: int, alpha):
    worse = _worse(metric, comparison.value)
    if n_min < min_n or worse is None or not np.isfinite(q_value):
        return "too_thin"
    if q_value < alpha:
        return "worse" if worse else "better"
    return "worse_not_significant" if worse else "no_difference"


# ---------------------------------------------------------------------------------------------
# Formatting


def _signed(value: float) -> str:
    """A whole number with its sign, zero without one ("+5", "-3", "0"; never "-0")."""
    whole = round(value)
    return "0" if whole == 0 else f"{whole:+d}"


def _fmt_value(value: float, unit: str, *, signed: bool = False) -> str:
    if value is None or not np.isfinite(value):
        return "–"
    if unit == "share":
        return f"{_signed(100 * value)} pts" if signed else fmt_pct(value)
    if unit == "money":
        return fmt_money(value)
    if unit == "days":
        return f"{value:.0f} days"
    if unit == "nps":
        return _signed(value)
    if unit == "ratio":
        return f"{value:.2f}x"
    return fmt_number(value, 2)


def _fmt_interval(low: float, high: float, unit: str, *, signed: bool = False) -> str:
    """'41–52%', '$21.3k–$25.0k', '1.6–2.9x', '-5 to +12 pts': a readable interval."""
    if low is None or high is None or not (np.isfinite(low) and np.isfinite(high)):
        return ""
    if signed:
        scale = 100 if unit == "share" else 1
        suffix = " pts" if unit == "share" else ""
        return f"{_signed(scale * low)} to {_signed(scale * high)}{suffix}"
    # Shares, money, days and ratios are never negative: a normal interval on a few accounts
    # can reach below zero ("-$1.6k–$19.1k"); it is cut at zero, as what it says is "from 0".
    low = max(low, 0.0)
    if unit == "share":
        return f"{100 * low:.0f}–{100 * high:.0f}%"
    if unit == "money":
        return f"{fmt_money(low)}–{fmt_money(high)}"
    if unit == "days":
        return f"{low:.0f}–{high:.0f}"
    if unit == "nps":
        return f"{_signed(low)} to {_signed(high)}"
    if unit == "ratio":
        return f"{low:.2f}–{high:.2f}x"
    return f"{low:.2f}–{high:.2f}"


def _versus_interval(metric: Metric, comparison: _Comparison) -> str:
    if metric.comparison == "ratio":
        return _fmt_interval(comparison.low, comparison.high, "ratio")
    if metric.unit == "share":
        return _fmt_interval(comparison.low, comparison.high, "share", signed=True)
    return _fmt_interval(comparison.low, comparison.high, "nps")


def _fmt_q(q: float) -> str:
    text = fmt_p(q)
    return f"q {text}" if text.startswith("<") else f"q = {text}"


def _effect_text(metric: Metric, value: float) -> str:
    if metric.name == "time_to_close" and np.isfinite(value):
        if round(value, 2) == 1:
            return "as fast"
        return f"{abs(value - 1):.0%} {'slower' if value > 1 else 'faster'}"
    if metric.comparison == "ratio":
        return _fmt_value(value, "ratio")
    points = 100 * value if metric.unit == "share" else value
    if np.isfinite(points) and round(points) == 0:
        return "no difference (0 points)"  # not "-0 points"
    return f"{points:+.0f} points"


def _contrast(metric: Metric, icp: float, rest: float, effect: float) -> str:
    """The comparison in words: 'ICP accounts win 52% of new-business deals against 22% ...'."""
    v = lambda x: _fmt_value(x, metric.unit)  # noqa: E731
    name = metric.name
    if name == "win_rate":
        return (
            f"ICP accounts won {v(icp)} of their new-business deals against {v(rest)} for the "
            f"rest ({_effect_text(metric, effect)})"
        )
    if name == "acv":
        return (
            f"ICP accounts' won new-business deals were worth {v(icp)} on average against "
            f"{v(rest)} ({_effect_text(metric, effect)})"
        )
    if name == "time_to_close":
        if np.isfinite(effect) and effect != 1:
            pace = f"{abs(effect - 1):.0%} {'slower' if effect > 1 else 'faster'}"
        else:
            pace = "as fast"
        return f"ICP deals closed {pace} than the rest's (median {icp:.0f} against {rest:.0f} days)"
    if name == "nrr":
        return (
            f"ICP customers' net revenue retention was {v(icp)} against {v(rest)} "
            f"({_effect_text(metric, effect)})"
        )
    if name == "logo_retention":
        return (
            f"ICP customers kept {v(icp)} of their logos over 12 months against {v(rest)} "
            f"({_effect_text(metric, effect)})"
        )
    if name == "revenue_retention":
        return (
            f"ICP customers' gross revenue retention was {v(icp)} against {v(rest)} "
            f"({_effect_text(metric, effect)})"
        )
    return f"ICP customers' NPS was {v(icp)} against {v(rest)} ({_effect_text(metric, effect)})"


# ---------------------------------------------------------------------------------------------
# The measures over quarters


def _measure_quarter(
    data: _QuarterData,
    membership: pd.DataFrame,
    tiers: list[str],
    *,
    drawn: bool,
    min_n: int,
    alpha: float,
) -> list[dict]:
    """Rows of icp_health.csv for one quarter: per group, the comparisons, tier rows."""
    window = data.window
    rows: list[dict] = []
    comparisons = []
    in_icp = membership["in_icp"].to_numpy(dtype=bool)
    tier_of = membership["tier"].to_numpy(dtype=object)
    for metric in METRICS:
        units = _units(data, metric.name)
        if units is None:
            continue
        base = {"metric": metric.name, "quarter": window.label, "n_of": metric.n_of}
        # Each unit's account is looked up once per metric, not once per group: over a
        # 1M-account index a lookup takes 0.2 s at 10M deals, and per tier they added up to 40 s.
        at = membership.index.get_indexer(units["account_id"])
        known = at >= 0
        if drawn:
            is_icp = known & in_icp[np.where(known, at, 0)] if len(in_icp) else known
            icp_units, rest_units = units[is_icp], units[~is_icp]
            est_icp = _estimate(metric.name, icp_units, window.end, alpha)
            est_rest = _estimate(metric.name, rest_units, window.end, alpha)
            est_icp, est_rest = _no_zero_spread(est_icp, est_rest, icp_units, rest_units, alpha)
            comparison = _compare(
                metric, icp_units, rest_units, est_icp, est_rest, window.end, alpha
            )
            group_rows = []
            for group, est in ((ICP, est_icp), (NON_ICP, est_rest)):
                group_rows.append(
                    {
                        **base,
                        "group": group,
                        "value": est.value,
                        "interval": _fmt_interval(est.low, est.high, metric.unit),
                        "ci_low": est.low,
                        "ci_high": est.high,
                        "n": est.n,
                        "unit": metric.unit,
                    }
                )
            unit = "ratio" if metric.comparison == "ratio" else "difference"
            group_rows.append(
                {
                    **base,
                    "group": VERSUS,
                    "value": comparison.value,
                    "interval": _versus_interval(metric, comparison),
                    "ci_low": comparison.low,
                    "ci_high": comparison.high,
                    "n": est_icp.n + est_rest.n,
                    "unit": unit,
                    "test": comparison.test,
                    "p_value": comparison.p_value,
                }
            )
            comparisons.append((metric, comparison, min(est_icp.n, est_rest.n), group_rows))
            rows.extend(group_rows)
        unit_tiers = (
            np.where(known, tier_of[np.where(known, at, 0)], None)
            if tiers and len(tier_of)
            else np.full(len(units), None, dtype=object)
        )
        for tier in tiers:
            tier_units = units[unit_tiers == tier]
            est = _estimate(metric.name, tier_units, window.end, alpha)
            rows.append(
                {
                    **base,
                    "group": tier,
                    "value": est.value,
                    "interval": _fmt_interval(est.low, est.high, metric.unit),
                    "ci_low": est.low,
                    "ci_high": est.high,
                    "n": est.n,
                    "unit": metric.unit,
                }
            )
    if comparisons:
        q_values = adjust_pvalues([c.p_value for _, c, _, _ in comparisons])
        for (metric, comparison, n_min, group_rows), q_value in zip(
            comparisons, q_values, strict=True
        ):
            flag = _flag(metric, comparison, q_value, n_min, min_n, alpha)
            for row in group_rows:
                row.update(
                    test=comparison.test,
                    p_value=comparison.p_value,
                    q_value=q_value,
                    flag=flag,
                )
    return rows


def _share_rows(
    data: _QuarterData,
    previous: _QuarterData | None,
    membership: pd.DataFrame,
    tiers: list[str],
    *,
    drawn: bool,
    alpha: float,
) -> list[dict]:
    """The drift shares: new customers and new pipeline that match the ICP (and per tier)."""
    rows = []
    label = data.window.label
    in_icp = membership["in_icp"]
    tier_of = membership["tier"]
    populations = [
        (
            "icp_share_new_customers",
            "new customers",
            pd.DataFrame({"account_id": data.new_customers.to_numpy()}),
            pd.DataFrame({"account_id": previous.new_customers.to_numpy()})
            if previous is not None
            else None,
        ),
    ]
    if data.has_deals:
        populations.append(
            (
                "icp_share_new_pipeline",
                "new-business deals created",
                data.pipeline,
                previous.pipeline if previous is not None else None,
            )
        )
    for metric, n_of, units, before in populations:
        units = units.assign(cluster=data.clusters(units["account_id"]))
        if before is not None:
            before = before.assign(cluster=previous.clusters(before["account_id"]))
        groups = (
            [(ICP, in_icp.reindex(units["account_id"], fill_value=False).to_numpy(bool))]
            if drawn
            else []
        )
        tier_values = tier_of.reindex(units["account_id"]).to_numpy(dtype=object)
        groups += [(tier, tier_values == tier) for tier in tiers]
        for group, hit in groups:
            estimate = _share(units, hit, alpha)
            row = {
                "metric": metric,
                "group": group,
                "quarter": label,
                "value": estimate.value,
                "interval": _fmt_interval(estimate.low, estimate.high, "share"),
                "ci_low": estimate.low,
                "ci_high": estimate.high,
                "n": estimate.n,
                "n_of": n_of,
                "unit": "share",
            }
            if group == ICP and before is not None:
                previous_hit = in_icp.reindex(before["account_id"], fill_value=False).to_numpy(bool)
                row.update(_share_change(units, hit, before, previous_hit))
            rows.append(row)
    tested = [r for r in rows if r.get("test")]
    q_values = adjust_pvalues([r["p_value"] for r in tested])
    for row, q_value in zip(tested, q_values, strict=True):
        row["q_value"] = q_value
        row["flag"] = _share_flag(row, q_value, alpha)
    return rows


def _share(units: pd.DataFrame, hit: np.ndarray, alpha: float) -> _Estimate:
    n = len(units)
    if n == 0:
        return _Estimate()
    events = float(hit.sum())
    per = pd.DataFrame({"cluster": units["cluster"].to_numpy(), "y": hit, "x": 1.0})
    per = per.groupby("cluster")[["y", "x"]].sum()
    if len(per) == n:
        low, high = proportion_ci(events, n, alpha)
        return _Estimate(events / n, float(low), float(high), n, events=events)
    rate, low, high, _ = clustered_rate_ci(per["y"], per["x"], alpha)
    return _Estimate(rate, low, high, n, events=events)


def _share_change(units, hit, before, previous_hit) -> dict:
    """The share against the previous quarter's: test and p-value (to be corrected)."""
    n1, n0 = len(units), len(before)
    if n1 == 0 or n0 == 0:
        return {"test": "not tested: a quarter is empty", "p_value": np.nan, "_previous": np.nan}
    clustered = units["cluster"].duplicated().any() or before["cluster"].duplicated().any()
    if clustered:
        now = pd.DataFrame({"a": units["cluster"].to_numpy(), "y": hit, "x": 1.0})
        then = pd.DataFrame({"a": before["cluster"].to_numpy(), "y": previous_hit, "x": 1.0})
        now, then = now.groupby("a")[["y", "x"]].sum(), then.groupby("a")[["y", "x"]].sum()
        p_value = clustered_rate_test(now["y"], now["x"], then["y"], then["x"])
        test = "cluster-robust score test vs previous quarter"
    else:
        k1, k0 = float(hit.sum()), float(previous_hit.sum())
        p_value = float(two_proportion_pvalue(k1, n1, k0, n0)[0])
        test = "two-proportion test vs previous quarter"
    return {"test": test, "p_value": p_value, "_previous": float(previous_hit.mean())}


def _share_flag(row: dict, q_value: float, alpha: float) -> str:
    if not np.isfinite(q_value) or row["n"] < 10:
        return "too_thin"
    if q_value >= alpha:
        return "no_change"
    return "fell" if row["value"] < row.get("_previous", np.nan) else "rose"


# ---------------------------------------------------------------------------------------------
# Drift: population stability


def psi(expected, actual, smoothing: float = PSI_SMOOTHING) -> float:
    """Population stability index of two binned distributions (counts per bin).

    ``sum((a_i - e_i) * ln(a_i / e_i))`` over bins, with ``e`` the reference (previous quarter)
    and ``a`` the current shares, after adding ``smoothing`` to every bin's count so that an
    empty bin does not make it infinite. 0 means the same distribution; the usual reading is
    below 0.10 stable, 0.10-0.25 a moderate shift, above 0.25 a large shift
    (:func:`psi_band`). NaN when either distribution is empty.
    """
    e = np.asarray(expected, dtype=float)
    a = np.asarray(actual, dtype=float)
    if e.shape != a.shape or e.sum() <= 0 or a.sum() <= 0:
        return np.nan
    e = (e + smoothing) / (e.sum() + smoothing * e.size)
    a = (a + smoothing) / (a.sum() + smoothing * a.size)
    return float(np.sum((a - e) * np.log(a / e)))


def psi_band(value: float) -> str:
    """'stable' (< 0.10), 'moderate shift' (0.10-0.25), 'large shift' (> 0.25), or ''."""
    if value is None or not np.isfinite(value):
        return ""
    for bound, band in PSI_BANDS:
        if value < bound:
            return band
    return PSI_BANDS[-1][1]


def _drift_attributes(spec: Mapping | None, accounts: pd.DataFrame) -> list[str]:
    """The attributes the ICP uses: characteristics, include / exclude rules, the fit score."""
    if not spec:
        return []
    names: list[str] = []
    for item in spec.get("characteristics") or []:
        names.append(item.get("attribute"))
    for kind in ("include", "exclude"):
        for rule in (spec.get("rules") or {}).get(kind) or []:
            names.extend(c.get("attribute") for c in rule.get("conditions") or [])
    for attribute in (spec.get("scorecard") or {}).get("attributes") or []:
        names.append(attribute.get("name"))
    seen: list[str] = []
    for name in names:
        if name and name not in seen and name in accounts.columns:
            seen.append(name)
    return seen


def _binner(name: str, spec: Mapping, reference: pd.Series, numeric: bool = False):
    """A function mapping an attribute's values to bin labels, fixed on the reference quarter.

    The fit score's own bins and levels when it scores the attribute (what the ICP sees);
    otherwise the rule thresholds or quantile cut points of the reference for numbers, and the
    levels themselves (missing as a level) for categories.
    """
    from icp_research.scoring.model import Attribute, coerce_numeric

    card = spec.get("scorecard") or {}
    for item in card.get("attributes") or []:
        if item.get("name") == name:
            attribute = Attribute.from_dict(item)
            labels = list(attribute.labels) + [f"{MISSING} / unseen"]

            def by_scorecard(values: pd.Series, attribute=attribute, labels=labels):
                codes, _ = attribute.encode(values.reset_index(drop=True), len(values))
                return pd.Categorical.from_codes(codes, categories=labels)

            return by_scorecard
    kind = ((spec.get("attributes") or {}).get(name) or {}).get("type")
    numeric_rule = any(
        c.get("attribute") == name and c.get("operator") in ("less_than", "at_least", "between")
        for kind_ in ("include", "exclude")
        for rule in (spec.get("rules") or {}).get(kind_) or []
        for c in rule.get("conditions") or []
    )
    if kind == "numeric" or (kind is None and (numeric_rule or numeric)):
        edges = set()
        for kind_ in ("include", "exclude"):
            for rule in (spec.get("rules") or {}).get(kind_) or []:
                for c in rule.get("conditions") or []:
                    if c.get("attribute") != name:
                        continue
                    value = c.get("value")
                    values = value if isinstance(value, list) else [value]
                    edges.update(float(v) for v in values if isinstance(v, int | float))
        cuts = sorted(edges) or cut_points(coerce_numeric(reference)[0], 5)

        def by_cuts(values: pd.Series, cuts=cuts):
            return apply_bins(coerce_numeric(values)[0], cuts)

        return by_cuts

    def by_level(values: pd.Series):
        text = values.astype("string").str.strip()
        text = text.mask(text == "", pd.NA).fillna(MISSING)
        return pd.Categorical(text.astype(object))

    return by_level


def _score_binner(values: pd.Series) -> pd.Categorical:
    return apply_bins(values, SCORE_EDGES)


def _drift_rows(
    windows: list[_Window],
    data: dict[str, _QuarterData],
    membership: pd.DataFrame,
    accounts: pd.DataFrame,
    spec: Mapping | None,
    alpha: float,
    candidates: tuple[list[str], list[str]] = ([], []),
) -> list[dict]:
    """PSI of each ICP attribute and the fit score, quarter against quarter, for new customers
    and the new pipeline (one family of tests); and of every other candidate attribute
    (``candidates``: categorical and numeric names; a second family, ``of_icp`` false): a
    segment the ICP does not describe can grow while everything the ICP looks at is stable."""
    attributes = _drift_attributes(spec, accounts)
    has_score = spec is not None and bool(spec.get("scorecard"))
    categorical, numeric = candidates
    others = [a for a in [*categorical, *numeric] if a not in attributes and a in accounts.columns]
    if not attributes and not has_score and not others:
        return []
    spec = spec or {}
    profile = accounts.set_index("account_id")
    rows = []
    for window in windows:
        current = data[window.label]
        before_label = _previous_label(window.label)
        before = data.get(before_label)
        if before is None:
            continue
        populations = [
            (NEW_CUSTOMERS, current.new_customers, before.new_customers),
        ]
        if current.has_deals:
            populations.append(
                (
                    NEW_PIPELINE,
                    pd.Index(current.pipeline["account_id"].unique()),
                    pd.Index(before.pipeline["account_id"].unique()),
                )
            )
        for population, now_ids, then_ids in populations:
            icp_items = [*attributes, *(["fit_score"] if has_score else [])]
            for of_icp, names in ((True, icp_items), (False, others)):
                rows.extend(
                    _drift_family(
                        names,
                        of_icp,
                        population,
                        now_ids,
                        then_ids,
                        window.label,
                        before_label,
                        membership,
                        profile,
                        spec,
                        set(numeric),
                    )
                )
    return rows


def _drift_candidates(study: Study) -> tuple[list[str], list[str]]:
    """The candidate traits (categorical, numeric) beside the ICP's: contract terms left out
    (they move with what customers buy, not who they are)."""
    spec = study.attributes
    contract = set(spec.contract)
    return (
        [a for a in spec.categorical if a not in contract],
        [a for a in spec.numeric if a not in contract],
    )


def _drift_family(
    names,
    of_icp,
    population,
    now_ids,
    then_ids,
    label,
    before_label,
    membership,
    profile,
    spec,
    numeric,
) -> list[dict]:
    """One family of drift tests (Benjamini-Hochberg within it)."""
    family = []
    for name in names:
        if name == "fit_score":
            then_values = membership["fit_score"].reindex(then_ids)
            now_values = membership["fit_score"].reindex(now_ids)
            binner = _score_binner
        else:
            then_values = profile[name].reindex(then_ids)
            now_values = profile[name].reindex(now_ids)
            binner = _binner(name, spec, then_values, numeric=name in numeric)
        then_bins = binner(then_values.reset_index(drop=True))
        now_bins = binner(now_values.reset_index(drop=True))
        levels = list(
            dict.fromkeys(
                [*then_bins.categories, *now_bins.categories]
                if hasattr(then_bins, "categories")
                else []
            )
        )
        then_counts = pd.Series(np.asarray(then_bins, dtype=object)).value_counts()
        now_counts = pd.Series(np.asarray(now_bins, dtype=object)).value_counts()
        levels = [lv for lv in levels if then_counts.get(lv, 0) + now_counts.get(lv, 0) > 0]
        e = np.array([then_counts.get(lv, 0) for lv in levels], dtype=float)
        a = np.array([now_counts.get(lv, 0) for lv in levels], dtype=float)
        value = psi(e, a) if len(levels) else np.nan
        p_value = _homogeneity_p(e, a)
        row = {
            "attribute": name,
            "population": population,
            "quarter": label,
            "previous_quarter": before_label,
            "psi": value,
            "band": psi_band(value) if min(a.sum(), e.sum()) >= PSI_MIN_N else TOO_FEW,
            "n": int(a.sum()),
            "n_previous": int(e.sum()),
            "p_value": p_value,
            "largest_change": _largest_change(name, levels, e, a),
            "of_icp": of_icp,
        }
        family.append(row)
    q_values = adjust_pvalues([r["p_value"] for r in family]) if family else []
    for row, q_value in zip(family, q_values, strict=True):
        row["q_value"] = q_value
    return family


def _homogeneity_p(expected: np.ndarray, actual: np.ndarray) -> float:
    """Chi-square test that two quarters' binned counts come from one distribution."""
    table = np.vstack([expected, actual])
    table = table[:, table.sum(axis=0) > 0]
    if table.shape[1] < 2 or (table.sum(axis=1) == 0).any():
        return np.nan
    return float(sps.chi2_contingency(table, correction=False)[1])


def _largest_change(name: str, levels: list, expected: np.ndarray, actual: np.ndarray) -> str:
    if not len(levels) or expected.sum() == 0 or actual.sum() == 0:
        return ""
    before = expected / expected.sum()
    after = actual / actual.sum()
    i = int(np.argmax(np.abs(after - before)))
    level = str(levels[i])
    # In words: "SaaS (industry)", "employees 60 to < 150"; the CSV's attribute column names
    # the column as code.
    from icp_research.analyses.blueprint.statement import column_label

    label = column_label(name)
    where = f"{label} {level}" if level[:1] in "<>0123456789" else f"{level} ({label})"
    return f"{where}: {fmt_pct(before[i])} → {fmt_pct(after[i])}"


# ---------------------------------------------------------------------------------------------
# The result


@dataclass(repr=False)
class HealthResult(Result):
    """ICP health for a quarter (see the module docstring).

    ``summary`` is ``icp_health.csv``; ``tables['drift']`` is ``icp_drift.csv``;
    ``changelog`` the :class:`Changelog`; ``headline`` the run dashboard's numbers; ``flags``
    the sentences about measures where the ICP does worse or the evidence is too thin.
    """

    quarter: str = ""
    quarters: list = field(default_factory=list)
    as_of: str = ""
    icp: MonitoredIcp | None = None
    changelog: Changelog | None = None
    headline: dict = field(default_factory=dict)
    flags: list = field(default_factory=list)

    def __repr__(self) -> str:
        return (
            f"<HealthResult {self.quarter}: {len(self.summary)} rows over "
            f"{len(self.quarters)} quarters; {len(self.flags)} flags>"
        )

    def to_json(self) -> dict:
        """``health.json``."""
        previous = self.tables.get("previous_icp")
        previous = previous if previous is not None else self.summary[:0]
        return {
            "format": FORMAT,
            "quarter": self.quarter,
            "as_of": self.as_of,
            "quarters": list(self.quarters),
            "icp_source": self.icp.source if self.icp else "none",
            "icp_description": self.icp.description if self.icp else "",
            "previous_run": self.params.get("previous_run") or None,
            "previous_icp_this_quarter": [
                {k: _plain(v) for k, v in row.items()}
                for row in previous[previous["group"] == VERSUS].to_dict(orient="records")
            ],
            "headline": dict(self.headline),
            "flags": list(self.flags),
            "findings": list(self.findings),
            "caveats": list(self.caveats),
            "calibration": [
                {k: _plain(v) for k, v in row.items()}
                for row in self.tables.get(
                    "calibration", pd.DataFrame(columns=CALIBRATION_COLUMNS)
                ).to_dict(orient="records")
            ],
        }

    @property
    def compared(self) -> bool:
        """True when ICP and non-ICP accounts were compared (an ICP is drawn)."""
        return bool(len(self.summary)) and (self.summary["group"] == VERSUS).any()

    # -- display tables ----------------------------------------------------------------------

    def comparison_table(self, quarter: str | None = None, *, previous_icp: bool = False):
        """One row per measure for the quarter: ICP, non-ICP, the comparison, q and verdict.

        With ``previous_icp``, the same for the previous run's ICP on this quarter (the
        out-of-sample check; empty when there is none).
        """
        quarter = quarter or self.quarter
        source = self.tables.get("previous_icp") if previous_icp else self.summary
        data = source[source["quarter"] == quarter] if source is not None else self.summary[:0]
        rows = []
        for metric in METRICS:
            part = data[data["metric"] == metric.name].set_index("group")
            if VERSUS not in part.index:
                continue
            icp, rest, versus = part.loc[ICP], part.loc[NON_ICP], part.loc[VERSUS]
            rows.append(
                {
                    "measure": metric.label,
                    "ICP": _cell(icp, metric.unit),
                    "non-ICP": _cell(rest, metric.unit),
                    "ICP vs non-ICP": _versus_cell(versus, metric),
                    "test": versus["test"],
                    "q_value": versus["q_value"],
                    "verdict": _FLAG_WORDS.get(versus["flag"], versus["flag"]),
                }
            )
        columns = ["measure", "ICP", "non-ICP", "ICP vs non-ICP", "test", "q_value", "verdict"]
        return pd.DataFrame(rows, columns=columns)

    def trend_table(self) -> pd.DataFrame:
        """ICP vs non-ICP per quarter (rows) and measure (columns), flags in words."""
        data = self.summary[self.summary["group"] == VERSUS]
        rows = []
        for quarter in self.quarters:
            row = {"quarter": quarter}
            for metric in METRICS:
                match = data[(data["quarter"] == quarter) & (data["metric"] == metric.name)]
                if len(match):
                    versus = match.iloc[0]
                    text = (
                        _effect_text(metric, versus["value"])
                        if np.isfinite(versus["value"])
                        else "–"
                    )
                    note = _TREND_NOTES.get(versus["flag"], "")
                    row[metric.label] = text + note
            rows.append(row)
        return pd.DataFrame(rows)

    def tier_table(self, quarter: str | None = None) -> pd.DataFrame:
        """Each measure per fit-score tier for the quarter (value, interval, n)."""
        quarter = quarter or self.quarter
        tiers = self.params.get("tiers") or []
        data = self.summary[
            (self.summary["quarter"] == quarter) & self.summary["group"].isin(tiers)
        ]
        rows = []
        for tier in tiers:
            row = {"tier": tier}
            for metric in METRICS:
                match = data[(data["group"] == tier) & (data["metric"] == metric.name)]
                if len(match):
                    row[metric.label] = _cell(match.iloc[0], metric.unit)
            rows.append(row)
        return pd.DataFrame(rows)

    def share_table(self) -> pd.DataFrame:
        """Per quarter: new customers and new pipeline, the share in the ICP and in Tier 1."""
        data = self.summary
        tiers = self.params.get("tiers") or []
        top = tiers[0] if tiers else None
        rows = []
        for quarter in self.quarters:
            row = {"quarter": quarter}
            for metric, label, short in (
                ("icp_share_new_customers", "new customers", "customers"),
                ("icp_share_new_pipeline", "new deals", "deals"),
            ):
                part = data[(data["metric"] == metric) & (data["quarter"] == quarter)]
                part = part.set_index("group")
                if not len(part):
                    continue
                row[label] = int(part["n"].iloc[0])
                if ICP in part.index:
                    row[f"{short} in ICP"] = _cell(part.loc[ICP], "share", with_n=False)
                    flag = part.loc[ICP].get("flag")
                    if isinstance(flag, str) and flag in ("fell", "rose"):
                        row[f"{short} in ICP"] += f", {flag}"
                if top is not None and top in part.index:
                    row[f"{short} in {top}"] = _cell(part.loc[top], "share", with_n=False)
            rows.append(row)
        return pd.DataFrame(rows)

    def drift_table(self, population: str = NEW_CUSTOMERS, quarter: str | None = None):
        """PSI of each ICP attribute and the fit score for the quarter, in words."""
        quarter = quarter or self.quarter
        drift = self.tables.get("drift", pd.DataFrame(columns=DRIFT_COLUMNS))
        data = drift[(drift["quarter"] == quarter) & (drift["population"] == population)]
        data = data[_of_icp(data)]
        columns = ["attribute", "psi", "band", "n", "n_previous", "q_value", "largest_change"]
        table = data[columns].sort_values("psi", ascending=False).reset_index(drop=True)
        return table.rename(
            columns={"psi": "PSI", "n": "accounts now", "n_previous": "accounts before"}
        )

    def calibration_table(self) -> pd.DataFrame:
        """The win-probability check per quarter, in words: deals, won vs expected, observed /
        expected and calibration slope with intervals, Brier score, verdict."""
        data = self.tables.get("calibration")
        if data is None or data.empty:
            return pd.DataFrame()
        rows = []
        for row in data.itertuples():
            verdict = "drifted" if row.drift else "holds"
            if row.in_calibration_period:
                verdict += " (calibration period)"
            rows.append(
                {
                    "quarter": row.quarter,
                    "closed deals": int(row.n),
                    "won": int(row.events),
                    "expected": f"{row.expected:,.1f}",
                    "observed / expected": _ratio_cell(
                        row.observed_expected, row.oe_low, row.oe_high
                    ),
                    "calibration slope": _ratio_cell(row.slope, row.slope_low, row.slope_high),
                    "Brier score": "–" if not np.isfinite(row.brier) else f"{row.brier:.3f}",
                    "verdict": verdict,
                }
            )
        return pd.DataFrame(rows)

    def views(self) -> dict:
        """``{name: callable returning a View}``: the report's tables with their reasons.

        ``comparison`` (:meth:`comparison_table`, when an ICP is drawn), ``flags`` (the
        sentences about measures where the ICP does worse or the data is too thin, one per
        row), ``previous_icp`` (the out-of-sample check), ``trends`` (:meth:`trend_table`),
        ``tiers`` (:meth:`tier_table`), ``icp_share`` (the shares, when an ICP is drawn, which
        the drift figure draws), ``shares`` (:meth:`share_table`, ICP or tiers), ``drift`` and
        ``pipeline_drift`` (:meth:`drift_table` of new customers and of new pipeline), and the
        change log's ``changes``, ``points`` and ``validation`` (empty, they read as its
        summary).
        """
        compared = self.compared
        no_comparison = self.findings[0] if self.findings else "no ICP is drawn."
        changelog = self.changelog
        no_change = changelog.summary if changelog is not None else "There is no change log."

        def comparison() -> View:
            return View(
                "an ICP vs non-ICP comparison",
                self.comparison_table() if compared else None,
                no_comparison,
            )

        def flags() -> View:
            table = pd.DataFrame({"flag": list(self.flags)}, dtype=object)
            if not compared:
                return View("flags", table, no_comparison)
            return View(
                "flags",
                table,
                "No measure is worse for ICP accounts this quarter, and every measure had "
                "enough data to compare.",
                empty_as="success",
            )

        def previous_icp() -> View:
            return View(
                "an out-of-sample check",
                self.comparison_table(previous_icp=True),
                "there is no run of an earlier quarter with an ICP to compare with (a rerun "
                "of this quarter does not count): the check starts with next quarter's run.",
            )

        def trends() -> View:
            return View(
                "trends",
                self.trend_table() if compared else None,
                "no ICP is drawn, so there is nothing to compare quarter by quarter.",
            )

        def tiers() -> View:
            return View("a tier view", self.tier_table(), "the monitored ICP has no fit score.")

        def icp_share() -> View:
            return View(
                "the share of new customers in the ICP",
                self.share_table() if compared else None,
                "no ICP is drawn.",
            )

        def shares() -> View:
            table = self.share_table()
            return View(
                "the share of new customers in the ICP or in a tier",
                table if len(table.columns) > 1 else None,
                "no ICP is drawn and the monitored ICP has no fit score.",
            )

        def drift() -> View:
            return View(
                "population stability",
                self.drift_table(NEW_CUSTOMERS),
                "no ICP is drawn (drift is measured on the attributes the ICP and its score "
                "use), or there is no previous quarter.",
            )

        def pipeline_drift() -> View:
            return View(
                "pipeline stability",
                self.drift_table(NEW_PIPELINE),
                "no ICP is drawn, there is no opportunities table, or there is no previous "
                "quarter.",
            )

        def changes() -> View:
            table = changelog.table() if changelog is not None else None
            return View("changes to the ICP", table, no_change, empty_as="info")

        def points() -> View:
            table = changelog.points_table() if changelog is not None else None
            return View("scorecard points", table, no_change, empty_as="info", max_rows=20)

        def validation() -> View:
            table = changelog.validation_table() if changelog is not None else None
            return View("holdout validation", table, no_change, empty_as="info")

        def calibration() -> View:
            return View(
                "a win-probability check",
                self.calibration_table(),
                self.params.get("calibration_reason") or "There is no win probability to check.",
                empty_as="info",
            )

        return {
            "comparison": comparison,
            "flags": flags,
            "previous_icp": previous_icp,
            "trends": trends,
            "tiers": tiers,
            "icp_share": icp_share,
            "shares": shares,
            "drift": drift,
            "pipeline_drift": pipeline_drift,
            "changes": changes,
            "points": points,
            "validation": validation,
            "calibration": calibration,
        }


_FLAG_WORDS = {
    "worse": "ICP worse (significant)",
    "worse_not_significant": "ICP worse, within chance",
    "too_thin": "too little data to say",
    "no_difference": "no clear difference",
    "better": "ICP better (significant)",
}
_TREND_NOTES = {
    "worse": " (worse)",
    "worse_not_significant": " (worse, n.s.)",
    "too_thin": " (thin)",
    "better": "",
    "no_difference": " (n.s.)",
}


def _cell(row, unit: str, *, with_n: bool = True) -> str:
    value = row["value"]
    if not isinstance(value, int | float) or not np.isfinite(value):
        return f"– (n = {fmt_number(row['n'])})" if with_n else "–"
    text = _fmt_value(value, unit)
    interval = row.get("interval")
    if isinstance(interval, str) and interval:
        text += f" ({interval}"
        text += f"; n = {fmt_number(row['n'])})" if with_n else ")"
    elif with_n:
        text += f" (n = {fmt_number(row['n'])})"
    return text


def _versus_cell(row, metric: Metric) -> str:
    value = row["value"]
    if not isinstance(value, int | float) or not np.isfinite(value):
        return "–"
    text = _effect_text(metric, value)
    interval = row.get("interval")
    if isinstance(interval, str) and interval:
        text += f" ({interval})"
    return text


# ---------------------------------------------------------------------------------------------
# The analysis


def icp_health(
    study: Study,
    icp: MonitoredIcp | Mapping | None = None,
    *,
    quarter: str | None = None,
    quarters: int = 8,
    previous_run: str | Path | None = None,
    run: str = "",
    icp_path: str | Path | None = None,
    cycle_quarters: int = 2,
    min_n: int = 10,
) -> HealthResult:
    """The quarterly ICP review: ICP vs non-ICP over quarters, drift, and the change log.

    Parameters
    ----------
    study : Study
        The data. When ``quarter`` ends before the study's as-of date, the study is cut to the
        quarter's end, so nothing after it is seen.
    icp : MonitoredIcp or dict, optional
        The ICP to monitor; by default :func:`monitored_icp` (this run's ``icp.json``, else one
        drawn here, else the previous run's).
    quarter : str, optional
        The quarter reviewed ('2026Q3'); default the quarter of the study's as-of date (a
        quarter not over yet is measured to the as-of date and says so).
    quarters : int
        Quarters shown in the trends, the reviewed one included.
    previous_run : path, optional
        The previous run's folder (its ``artifacts/icp.json`` and ``icp_changelog.md`` feed the
        change log).
    run : str
        This run's name, for the change log (default: the quarter).
    icp_path : path, optional
        An ``icp.json`` to monitor instead of this run's (see :func:`monitored_icp`).
    cycle_quarters : int
        Time to close is measured on the new-business deals created in this many quarters up
        to the quarter's end (open deals censored).
    min_n : int
        A measure is "too thin" to compare when a group has fewer units (deals, customers,
        responses) than this.

    Returns
    -------
    HealthResult
        Never raises for thin data; what cannot be measured is said in ``caveats``.
    """
    alpha = study.alpha
    quarter = resolve_quarter(quarter) if quarter else quarter_label(study.as_of.date())
    end = pd.Timestamp(quarter_end(quarter))
    if study.as_of > end:
        study = study.at(end)
    if not isinstance(icp, MonitoredIcp):
        icp = (
            MonitoredIcp(dict(icp), "file", "Monitoring the ICP definition given.")
            if icp is not None
            else monitored_icp(study, icp_path=icp_path, previous_run=previous_run)
        )
    spec = icp.spec
    drawn = icp.drawn
    caveats: list[str] = []
    # Accounts as numbers from here on: the review groups and looks up deals, subscriptions
    # and responses by account dozens of times per quarter, and over text ids each pass hashed
    # every id again (at 10M deals, most of the report's time).
    _, head = study.account_groups
    accounts, tables, group_of = _account_codes(study.tables, head)
    membership = icp_membership(spec, accounts)
    tiers = _tier_names(spec)
    windows = _windows(study.as_of, quarter, max(int(quarters), 1))
    windows = _with_data(windows, study)
    all_windows = [
        _Window(
            _previous_label(windows[0].label),
            pd.Timestamp(quarter_start(_previous_label(windows[0].label))),
            pd.Timestamp(quarter_end(_previous_label(windows[0].label))),
        ),
        *windows,
    ]
    data = {w.label: _quarter_data(tables, w, cycle_quarters, group_of) for w in all_windows}
    rows: list[dict] = []
    for window in windows:
        current = data[window.label]
        rows += _measure_quarter(current, membership, tiers, drawn=drawn, min_n=min_n, alpha=alpha)
        rows += _share_rows(
            current,
            data.get(_previous_label(window.label)),
            membership,
            tiers,
            drawn=drawn,
            alpha=alpha,
        )
    summary = _health_frame(rows)
    drift = pd.DataFrame(
        _drift_rows(
            windows,
            data,
            membership,
            accounts,
            spec,
            alpha,
            candidates=_drift_candidates(study),
        ),
        columns=DRIFT_COLUMNS,
    )
    # PSI grows with small samples by chance alone (0.55, a "large shift", on 50 against 58
    # new customers of a null export): the band is the convention, this column the evidence.
    drift["beyond_chance"] = (
        pd.to_numeric(drift["q_value"], errors="coerce").lt(alpha) & drift["band"].ne(TOO_FEW)
    ).astype(bool)
    calibration, calibration_reason = calibration_trend(spec, windows, data, membership, alpha)
    previous_spec, previous_name, previous_as_of = previous_icp(previous_run)
    current_window = windows[-1]
    # The ICP in force during the quarter was drawn before it: measured on the quarter, it is
    # the out-of-sample check of the current ICP's in-sample comparison.
    out_of_sample = _health_frame([])
    current_icp = icp.source in ("this run", "drawn here", "file")
    if current_icp and previous_spec is not None and _defining_rules(previous_spec):
        before = icp_membership(previous_spec, accounts)
        out_of_sample = _health_frame(
            _measure_quarter(
                data[current_window.label], before, [], drawn=True, min_n=min_n, alpha=alpha
            )
        )
    history = ""
    if previous_run:
        path = Path(previous_run) / "artifacts" / "icp_changelog.md"
        history = path.read_text(encoding="utf-8") if path.exists() else ""
    changelog = compare_icp(
        spec if icp.source in ("this run", "drawn here", "file") else None,
        previous_spec,
        run=run or quarter,
        previous_run=previous_name,
        previous_as_of=previous_as_of,
        history=history,
    )
    if icp.source == "previous run":
        changelog.summary = (
            "This run has no ICP of its own (the previous run's is monitored), so nothing "
            "changed in the definition."
        )
    result = HealthResult(
        title=f"ICP health, {current_window.name}",
        summary=summary,
        tables={"drift": drift, "previous_icp": out_of_sample, "calibration": calibration},
        params={
            "quarter": quarter,
            "previous_run": previous_name,
            "quarters": [w.label for w in windows],
            "tiers": tiers,
            "min_n": min_n,
            "cycle_quarters": cycle_quarters,
            "alpha": alpha,
            "calibration_reason": calibration_reason,
        },
        quarter=quarter,
        quarters=[w.label for w in windows],
        as_of=study.as_of.strftime("%Y-%m-%d"),
        icp=icp,
        changelog=changelog,
    )
    findings, flags = _findings(result, current_window, drawn, tiers)
    calibration_findings, calibration_flags = _calibration_sentences(result, current_window)
    result.findings = findings + calibration_findings
    result.flags = renamed_values(study, previous_run) + flags + calibration_flags
    caveats += _caveats(result, study, current_window, drawn, cycle_quarters, icp)
    result.caveats = caveats
    result.headline = _headline(result, drawn)
    return result


#: Accounts a value needs (in the previous run and in this one) to be called renamed.
RENAMED_MIN_ACCOUNTS = 10


def renamed_values(study, previous_run, min_accounts: int = RENAMED_MIN_ACCOUNTS) -> list[str]:
    """Values of an account trait that look renamed since the previous run: one gone (held by
    ``min_accounts`` or more accounts then, none now) while another appeared (as many now,
    none then), of a similar count ("Computer Software" 412 then, "Software" 431 now, as
    HubSpot renames an industry). Unrecoded, a rule or score level on the old value matches
    nobody and the quarters do not compare. One sentence per pair, with the recode."""
    if not previous_run:
        return []
    path = Path(previous_run) / "artifacts" / "data" / "accounts.parquet"
    accounts = study.tables.get("accounts")
    if not path.is_file() or accounts is None:
        return []
    import pyarrow.parquet as pq

    try:
        names = set(pq.read_schema(path).names)
        wanted = [c for c in study.attributes.categorical if c in names and c in accounts]
        before = pd.read_parquet(path, columns=wanted) if wanted else pd.DataFrame()
    except (OSError, ValueError):
        return []
    run = Path(previous_run).name
    out = []
    for name in wanted:
        then = before[name].dropna().astype(str).value_counts()
        now = accounts[name].dropna().astype(str).value_counts()
        gone = then[(then >= min_accounts) & ~then.index.isin(now.index)]
        new = now[(now >= min_accounts) & ~now.index.isin(then.index)]
        taken: set = set()
        for old_value, n_then in gone.items():
            # The new value nearest in count, within a factor of two.
            close = [
                (abs(np.log(n_now / n_then)), value, n_now)
                for value, n_now in new.items()
                if value not in taken and 0.5 <= n_now / n_then <= 2
            ]
            if not close:
                continue
            _, value, n_now = min(close)
            taken.add(value)
            out.append(
                f'{name}: "{old_value}" ({n_then:,} accounts in the run {run}) is gone and '
                f'"{value}" ({n_now:,} accounts, none then) is new. If it was renamed, recode '
                f'"{value}" = "{old_value}" under [tables.accounts.values.{name}] (or the '
                "other way round in both quarters): otherwise a rule or score level on the old "
                "value matches nobody, and the quarters do not compare."
            )
    return out


def _health_frame(rows: list[dict]) -> pd.DataFrame:
    """Rows as the icp_health.csv table: its columns in order, text columns without NaN."""
    frame = pd.DataFrame(rows)
    for column in HEALTH_COLUMNS:
        if column not in frame:
            frame[column] = "" if column in ("interval", "test", "flag") else np.nan
    frame = frame[HEALTH_COLUMNS].reset_index(drop=True)
    frame[["interval", "test", "flag"]] = frame[["interval", "test", "flag"]].fillna("")
    frame["n"] = frame["n"].fillna(0).astype(int)
    return frame


def _with_data(windows: list[_Window], study: Study) -> list[_Window]:
    """Leave out the leading quarters that end before the first dated row of the data."""
    firsts = []
    for name, column in (
        ("opportunities", "created_at"),
        ("subscriptions", "start_date"),
        ("nps", "date"),
    ):
        frame = study.tables.get(name)
        if frame is not None and column in frame and frame[column].notna().any():
            firsts.append(frame[column].min())
    if not firsts:
        return windows[-1:]
    first = min(firsts)
    kept = [w for w in windows if w.end >= first]
    return kept or windows[-1:]


def _ratio_cell(value: float, low: float, high: float) -> str:
    if not np.isfinite(value):
        return "–"
    if not (np.isfinite(low) and np.isfinite(high)):
        return f"{value:.2f}"
    return f"{value:.2f} ({low:.2f}–{high:.2f})"


def calibration_trend(
    spec: Mapping | None,
    windows: list[_Window],
    data: Mapping[str, _QuarterData],
    membership: pd.DataFrame,
    alpha: float,
) -> tuple[pd.DataFrame, str]:
    """The fit score's win probability checked quarter by quarter.

    ``spec``'s ``calibration`` (see :mod:`icp_research.methods.calibration`) is applied to the
    fit score of each quarter's closed new-business deals (the account's score, from
    ``membership``) and compared with what happened: :data:`CALIBRATION_COLUMNS`, intervals
    clustered by account. ``drift`` is True when the calibration slope's interval or the
    observed / expected ratio's interval excludes 1; ``in_calibration_period`` marks quarters
    that overlap the rows the calibration was fitted on (in-sample, they flatter it).

    Returns ``(table, reason)``: the table is empty, and ``reason`` says why, when there is no
    usable calibration of wins.
    """
    from icp_research.methods.calibration import Calibration, evaluate_calibration

    empty = pd.DataFrame(columns=CALIBRATION_COLUMNS)
    block = (spec or {}).get("calibration") if spec else None
    if not block or not (spec or {}).get("scorecard"):
        return empty, "The monitored icp.json has no calibrated win probability."
    try:
        calibration = Calibration.from_dict(dict(block))
    except Exception as error:  # a hand-edited block: say so, do not stop the review
        return empty, f"The monitored icp.json's calibration cannot be read ({error})."
    if not calibration.usable:
        return empty, (
            f"The monitored icp.json has no usable win probability: {calibration.reason}."
        )
    if (calibration.outcome or "won") != "won":
        return empty, (
            f"The win probability predicts {calibration.outcome}, not wins, so it is not "
            "checked against closed deals."
        )
    period = calibration.period or {}
    rows = []
    for window in windows:
        quarter = data.get(window.label)
        if quarter is None or not quarter.has_deals or quarter.closed.empty:
            continue
        closed = quarter.closed
        scores = closed["account_id"].map(membership["fit_score"]).to_numpy(dtype=float)
        check = evaluate_calibration(
            calibration.apply(scores),
            closed["won"].to_numpy(dtype=float),
            cluster=quarter.clusters(closed["account_id"]),
            n_bins=5,
            alpha=alpha,
        )
        if check.n == 0:
            continue
        overlaps = bool(period) and (
            period.get("start", "") <= f"{window.end:%Y-%m-%d}"
            and f"{window.start:%Y-%m-%d}" <= period.get("end", "")
        )
        rows.append(
            {
                "quarter": window.label,
                "n": check.n,
                "events": check.events,
                "expected": check.expected,
                "observed_expected": check.observed_expected,
                "oe_low": check.observed_expected_ci[0],
                "oe_high": check.observed_expected_ci[1],
                "brier": check.brier,
                "brier_reference": check.brier_reference,
                "slope": check.slope,
                "slope_low": check.slope_ci[0],
                "slope_high": check.slope_ci[1],
                "intercept": check.intercept,
                "intercept_low": check.intercept_ci[0],
                "intercept_high": check.intercept_ci[1],
                "in_calibration_period": overlaps,
                "drift": check.drift,
            }
        )
    if not rows:
        return empty, "No quarter shown has closed new-business deals with a fit score."
    return pd.DataFrame(rows, columns=CALIBRATION_COLUMNS), ""


def _calibration_sentences(result: HealthResult, window: _Window) -> tuple[list, list]:
    """The quarter's win-probability check: one sentence, and a flag when it drifted."""
    table = result.tables.get("calibration")
    if table is None or table.empty:
        return [], []
    match = table[table["quarter"] == window.label]
    if match.empty:
        return [], []
    row = match.iloc[0]
    ratio = _ratio_cell(row["observed_expected"], row["oe_low"], row["oe_high"])
    text = (
        f"{int(row['events']):,} of {int(row['n']):,} closed deals were won in {window.name} "
        f"against {row['expected']:,.1f} expected by the win probability (observed / expected "
        f"{ratio}"
    )
    if np.isfinite(row["slope"]):
        text += (
            f"; calibration slope {_ratio_cell(row['slope'], row['slope_low'], row['slope_high'])}"
        )
    text += ")"
    if row["drift"]:
        sentence = (
            f"{text}: the win probability has drifted off (an interval excludes 1); read it as "
            "approximate until the blueprint is recalibrated on data that includes these "
            "quarters (the next quarterly run)."
        )
        return [sentence], [sentence]
    return [f"{text}: the win probability still matches outcomes."], []


def _findings(result: HealthResult, window: _Window, drawn: bool, tiers: list[str]):
    """The report's sentences, the verdict first, and the flags (ICP worse, or too thin)."""
    icp = result.icp
    description = icp.description if icp else "No ICP definition to monitor."
    q = window.name
    tail = _trend_sentence(result, window) if drawn else ""
    tail = [tail] if tail else []
    tail += _share_sentences(result, window) + _drift_sentences(result, window)
    if result.changelog is not None:
        tail.append(result.changelog.summary)
    if not drawn:
        # The previous run's ICP, measured on this quarter below, is still a comparison: the
        # one that says whether the ICP it drew stopped working.
        out_of_sample, out_of_sample_flags = _previous_icp_sentences(result, window)
        head = (
            "No ICP is drawn in the monitored definition (no defining include rule), so ICP and "
            "non-ICP accounts cannot be compared"
            + ("; the fit-score tiers are shown instead." if tiers else ".")
            + (
                " The previous run's ICP is measured on this quarter instead."
                if out_of_sample
                else ""
            )
        )
        return [head, description, *out_of_sample, *tail], out_of_sample_flags
    summary = result.summary
    share = (icp.spec or {}).get("headline", {}).get("Accounts in the ICP")
    current = summary[(summary["quarter"] == window.label) & (summary["group"] == VERSUS)]
    current = current[current["metric"].isin(_METRIC)]
    groups = summary[summary["quarter"] == window.label].set_index(["metric", "group"])
    worse, watch, better, same, thin = [], [], [], [], []
    watch_labels, thin_labels = [], []
    for _, row in current.iterrows():
        metric = _METRIC[row["metric"]]
        icp_value = groups.loc[(metric.name, ICP), "value"]
        rest_value = groups.loc[(metric.name, NON_ICP), "value"]
        contrast = _contrast(metric, icp_value, rest_value, row["value"])
        if row["flag"] == "worse":
            worse.append(f"{contrast} in {q} ({_fmt_q(row['q_value'])}): {SEEDS_SAY}.")
        elif row["flag"] == "worse_not_significant":
            watch.append(
                f"{contrast} in {q}: worse for the ICP, though within what chance gives "
                f"({_fmt_q(row['q_value'])}); if it persists, {SEEDS_SAY}."
            )
            watch_labels.append(metric.label)
        elif row["flag"] == "better":
            better.append(f"{metric.label} ({_effect_text(metric, row['value'])})")
        elif row["flag"] == "no_difference":
            # "No clear difference on win rate" for 1.5x (0.75x-2.70x) read as "the same":
            # the interval says how much is left open.
            low, high = row.get("ci_low", np.nan), row.get("ci_high", np.nan)
            if metric.comparison == "ratio" and np.isfinite(low) and np.isfinite(high):
                same.append(
                    f"{metric.label} ({_fmt_value(row['value'], 'ratio')}, "
                    f"{_fmt_value(low, 'ratio')}–{_fmt_value(high, 'ratio')})"
                )
            else:
                same.append(metric.label)
        else:
            n_icp = int(groups.loc[(metric.name, ICP), "n"])
            n_rest = int(groups.loc[(metric.name, NON_ICP), "n"])
            thin.append(f"{metric.label} ({n_icp} ICP and {n_rest} other {metric.n_of})")
            thin_labels.append(metric.label)
    scope = f" ({share} of accounts)" if share else ""
    head = list(worse)
    validated = worse_when_validated(icp.spec or {})
    if validated:
        head.append(validated)
    if better:
        head.append(
            f"In {q} ICP accounts{scope} did significantly better than the rest on "
            f"{_and(better)}, after correcting for {len(current)} comparisons"
            + ("; none was significantly worse." if not worse else ".")
        )
    elif not worse and len(current):
        head.append(_no_worse_verdict(q, watch_labels, thin_labels))
    middle = [description]
    out_of_sample, out_of_sample_worse = _previous_icp_sentences(result, window)
    middle += out_of_sample
    if same:
        middle.append(
            f"No clear difference between ICP and other accounts on {_and(same)}: within "
            "chance, which is not the same as no difference."
            if any("–" in item for item in same)
            else f"No clear difference between ICP and other accounts on {_and(same)}."
        )
    middle += watch
    if thin:
        thin = [f"Too little data in {q} to compare {_and(thin)}: not enough evidence either way."]
    return [*head, *middle, *thin, *tail], [*worse, *out_of_sample_worse, *watch, *thin]


def worse_when_validated(spec: Mapping) -> str | None:
    """The blueprint's own check of the monitored ICP on its validation quarters (on which
    nothing was chosen), when the ICP did significantly worse there: quarter by quarter, with
    a few ICP deals in each and corrected over every measure, the same fall reads "within what
    chance gives", and the report had said the ICP was never worse."""
    outcome = (spec.get("outcome") or {}).get("name")
    validation = spec.get("validation") or {}
    row = next(
        (r for r in validation.get("icp_vs_rest") or [] if r.get("outcome") == outcome), None
    )
    if row is None or outcome not in ("won", "retained", "best_customer"):
        return None
    high, low = row.get("ci_high"), row.get("ci_low")
    if not isinstance(high, int | float) or not np.isfinite(high) or high >= 1:
        return None
    period = validation.get("validated_on") or {}
    label = (spec.get("outcome") or {}).get("label", outcome)
    return (
        f"On its validation quarters ({period.get('start', '?')} to {period.get('end', '?')}), on "
        f"which nothing was chosen, ICP accounts did significantly worse than the rest on "
        f"{label}: {fmt_pct(row['rate_icp'])} vs {fmt_pct(row['rate_rest'])} ({row['ratio']:.2f}x, "
        f"95% CI {low:.2f}–{high:.2f}; {fmt_number(row['n_icp'])} ICP and "
        f"{fmt_number(row['n_rest'])} other {row.get('unit', 'rows')}). The ICP was drawn from "
        "the quarters before; it no longer holds, whatever each quarter alone can show."
    )


def _no_worse_verdict(quarter: str, watch: list[str], thin: list[str]) -> str:
    """The verdict when no measure is significantly worse. It clears the ICP only when no
    measure is worse even within chance and none is too thin to compare: "not significantly
    worse" on 6 deals, or with the win rate at 0.6x, is absence of evidence, not evidence that
    the ICP still works."""
    head = f"No measure is significantly worse for ICP accounts in {quarter}"
    if not watch and not thin:
        return f"{head}: nothing in this quarter says the ICP definition needs refinement."
    reasons = []
    if watch:
        reasons.append(f"it did worse on {_and(watch)}, within what chance gives")
    if thin:
        reasons.append(f"there was too little data to compare {_and(thin)}")
    return f"{head}, but that does not clear the ICP: {'; and '.join(reasons)}."


def _previous_icp_sentences(result: HealthResult, window: _Window) -> tuple[list, list]:
    """The previous run's ICP on this quarter: one sentence, and flags where it did worse."""
    data = result.tables.get("previous_icp")
    if data is None or data.empty:
        return [], []
    name = result.params.get("previous_run") or "the previous run"
    versus = data[(data["group"] == VERSUS) & (data["quarter"] == window.label)]
    groups = data[data["quarter"] == window.label].set_index(["metric", "group"])
    better, worse_words, flags, thin = [], [], [], []
    for _, row in versus.iterrows():
        metric = _METRIC[row["metric"]]
        if row["flag"] == "too_thin":
            n_icp = int(groups.loc[(metric.name, ICP), "n"])
            n_rest = int(groups.loc[(metric.name, NON_ICP), "n"])
            thin.append(f"{metric.label} ({n_icp} ICP and {n_rest} other {metric.n_of})")
        elif row["flag"] == "better":
            better.append(f"{metric.label} ({_effect_text(metric, row['value'])})")
        elif row["flag"] == "worse":
            icp_value = groups.loc[(metric.name, ICP), "value"]
            rest_value = groups.loc[(metric.name, NON_ICP), "value"]
            contrast = _contrast(metric, icp_value, rest_value, row["value"])
            worse_words.append(f"{metric.label} ({_effect_text(metric, row['value'])})")
            flags.append(
                f"Out of sample, by the ICP of {name}: {contrast} in "
                f"{window.name} ({_fmt_q(row['q_value'])}): {SEEDS_SAY}."
            )
    sentence = (
        f"Out of sample: the ICP of {name}, drawn before {window.name}, did significantly "
        + (f"better on {_and(better)}" if better else "better on no measure")
        + f" in {window.name}"
        + (f", and worse on {_and(worse_words)}" if worse_words else ", and worse on none")
        + (f"; too little data to compare {_and(thin)}." if thin else ".")
    )
    return [sentence], flags


def _and(items: Sequence[str]) -> str:
    items = list(items)
    if len(items) <= 1:
        return "".join(items)
    return ", ".join(items[:-1]) + " and " + items[-1]


def _trend_sentence(result: HealthResult, window: _Window) -> str:
    data = result.summary[
        (result.summary["group"] == VERSUS) & result.summary["metric"].isin(_METRIC)
    ]
    if len(result.quarters) < 2 or data.empty:
        return ""
    n = len(result.quarters)
    # Each quarter's flags are corrected over that quarter's measures; a sentence about all
    # the quarters is corrected over all of them (time to close "significantly worse in
    # 2025Q2" at q = 0.0065 within the quarter was one of 8 quarters' chances).
    across = adjust_pvalues(pd.to_numeric(data["p_value"], errors="coerce").to_numpy(dtype=float))
    holds = np.nan_to_num(across, nan=1.0) < result.params["alpha"]
    worse = data[(data["flag"] == "worse").to_numpy() & holds]
    dropped = int(((data["flag"] == "worse").to_numpy() & ~holds).sum())
    if worse.empty:
        better = data[(data["flag"] == "better").to_numpy() & holds].groupby("metric").size()
        if better.empty:
            return (
                f"Over the last {n} quarters ICP accounts were never significantly worse than "
                "the rest on any measure, nor significantly better" + _across_note(dropped)
            )
        steady = [
            f"{_METRIC[m].label} in {k} of {n}"
            for m, k in better.sort_values(ascending=False).items()
        ]
        return (
            f"Over the last {n} quarters ICP accounts were never significantly worse than the "
            f"rest on any measure; they did significantly better on {_and(steady[:4])} quarters"
            + _across_note(dropped)
        )
    parts = []
    for metric, part in worse.groupby("metric", sort=False):
        quarters = ", ".join(part["quarter"])
        parts.append(f"{_METRIC[metric].label} in {quarters}")
    return (
        f"Over the last {n} quarters ICP accounts did significantly worse than the rest on "
        f"{_and(parts)}" + _across_note(dropped)
    )


def _across_note(dropped: int) -> str:
    """The end of a sentence over all quarters: how it was corrected, and what that left out."""
    if not dropped:
        return " (corrected over every quarter's tests)."
    return (
        f" (corrected over every quarter's tests; {dropped} worse result"
        f"{'' if dropped == 1 else 's'} of a single quarter, significant within that quarter, "
        "did not hold up once all quarters were counted)."
    )


def _share_sentences(result: HealthResult, window: _Window) -> list[str]:
    data = result.summary
    sentences = []
    tiers = result.params.get("tiers") or []
    for metric, what in (
        ("icp_share_new_customers", "new customers"),
        ("icp_share_new_pipeline", "new-business deals created"),
    ):
        part = data[(data["metric"] == metric) & (data["quarter"] == window.label)]
        row = part[part["group"] == ICP]
        if row.empty:
            continue
        row = row.iloc[0]
        if row["n"] == 0:
            sentences.append(f"There were no {what} in {window.name}.")
            continue
        text = (
            f"{fmt_pct(row['value'])} of the {fmt_number(row['n'])} {what} in {window.name} "
            f"match the ICP (95% CI {row['interval']})"
        )
        top = part[part["group"] == (tiers[0] if tiers else None)]
        if len(top):
            text += f"; {fmt_pct(top.iloc[0]['value'])} are {tiers[0]}"
        previous = data[
            (data["metric"] == metric)
            & (data["group"] == ICP)
            & (data["quarter"] == _previous_label(window.label))
        ]
        if len(previous) and previous.iloc[0]["n"] > 0:
            text += (
                f". Last quarter: {fmt_pct(previous.iloc[0]['value'])} "
                f"({_fmt_q(row['q_value'])} for the change)"
            )
        text += "."
        if row["flag"] == "fell" and metric == "icp_share_new_customers":
            text += (
                " Fewer new customers match the ICP than last quarter: ask whether "
                "the company is expanding its ICP deliberately or drifting off target."
            )
        sentences.append(text)
    return sentences


def _drift_sentences(result: HealthResult, window: _Window) -> list[str]:
    drift = result.tables.get("drift")
    if drift is None or drift.empty:
        return []
    sentences = []
    for population in (NEW_CUSTOMERS, NEW_PIPELINE):
        rows = drift[(drift["quarter"] == window.label) & (drift["population"] == population)]
        rows = rows[np.isfinite(rows["psi"].astype(float))]
        part = rows[_of_icp(rows)]
        sentences += _drift_outside_icp(rows[~_of_icp(rows)], result, window, population)
        if part.empty:
            continue
        previous = part.iloc[0]["previous_quarter"]
        who = "new customers" if population == NEW_CUSTOMERS else "accounts in the new pipeline"
        few = part[part["band"] == TOO_FEW]
        if len(few) == len(part):
            sentences.append(
                f"Too few {who} in {window.name} or {previous} to tell whether their profile "
                f"moved ({fmt_number(part.iloc[0]['n'])} against "
                f"{fmt_number(part.iloc[0]['n_previous'])}; PSI needs {PSI_MIN_N} in each)."
            )
            continue
        part = part[part["band"] != TOO_FEW]
        shifted = part[part["psi"] >= PSI_BANDS[0][0]].sort_values("psi", ascending=False)
        if shifted.empty:
            scored = part["attribute"].astype(str).eq("fit_score").any()
            sentences.append(
                f"The profile of {window.name}'s {who} is stable against {previous}: every ICP "
                f"attribute{' and the fit score' if scored else ''} "
                f"{'have' if scored else 'has'} a PSI below 0.10 (largest "
                f"{part['psi'].max():.2f}, {part.loc[part['psi'].idxmax(), 'attribute']})."
            )
            continue
        items = []
        for _, row in shifted.iterrows():
            real = np.isfinite(row["q_value"]) and row["q_value"] < result.params["alpha"]
            chance = (
                "beyond chance" if real else f"within what chance gives ({_fmt_q(row['q_value'])})"
            )
            items.append(
                f"{row['attribute']} (PSI {row['psi']:.2f}, {row['band']}; "
                f"{row['largest_change']}; {chance})"
            )
        sentences.append(
            f"The profile of {window.name}'s {who} moved against {previous} "
            f"({fmt_number(shifted.iloc[0]['n'])} against "
            f"{fmt_number(shifted.iloc[0]['n_previous'])}): {_and(items)}."
        )
    return sentences


def _of_icp(drift: pd.DataFrame) -> pd.Series:
    """Rows of the ICP's attributes and the fit score (all rows of a table without the column)."""
    if "of_icp" not in drift:
        return pd.Series(True, index=drift.index)
    return drift["of_icp"].fillna(True).astype(bool)


def _drift_outside_icp(rows: pd.DataFrame, result, window, population) -> list[str]:
    """A large shift beyond chance of an attribute the ICP does not use: a segment growing (or
    shrinking) that the ICP does not describe, which its own attributes cannot show."""
    alpha = result.params["alpha"]
    moved = rows[
        (rows["psi"] >= PSI_BANDS[1][0])
        & (rows["band"] != TOO_FEW)
        & np.isfinite(rows["q_value"].astype(float))
        & (rows["q_value"] < alpha)
    ].sort_values("psi", ascending=False)
    if moved.empty:
        return []
    who = "new customers" if population == NEW_CUSTOMERS else "accounts in the new pipeline"
    items = [
        f"{row['attribute']} (PSI {row['psi']:.2f}; {row['largest_change']}; "
        f"{_fmt_q(row['q_value'])})"
        for _, row in moved.iterrows()
    ]
    return [
        f"Beyond the ICP's attributes, {window.name}'s {who} moved against "
        f"{moved.iloc[0]['previous_quarter']} on {_and(items)}: a large shift, beyond chance, "
        "in something the ICP does not look at. A segment it does not describe may be growing "
        "or shrinking; the next blueprint tests whether it wins more or less."
    ]


def _caveats(result, study, window, drawn, cycle_quarters, icp) -> list[str]:
    caveats = []
    if window.partial:
        caveats.append(
            f"{window.label} is not over: it is measured up to {window.end:%Y-%m-%d}, so its "
            "numbers will move."
        )
    if icp is not None and icp.source in ("this run", "drawn here") and drawn:
        previous = result.tables.get("previous_icp")
        check = (
            "the previous run's ICP measured on this quarter is the out-of-sample test"
            if previous is not None and len(previous)
            else "the blueprint's holdout check and next quarter's review are the out-of-sample "
            "tests"
        )
        caveats.append(
            "The ICP was drawn from data that includes these quarters, so ICP accounts look "
            f"better here than they will on new data; {check}."
        )
    if not study.has("subscriptions"):
        caveats.append(
            "There is no subscriptions table, so net revenue retention, logo and revenue "
            "retention cannot be measured."
        )
    if not study.has("nps"):
        caveats.append("There is no NPS table, so satisfaction cannot be compared.")
    if study.has("opportunities"):
        caveats.append(
            f"Time to close uses the new-business deals created in the {cycle_quarters} "
            "quarters to each quarter's end, open deals counted as still open; its log-rank "
            "test treats deals as independent (win rates and ACV are clustered by account)."
        )
    if study.has("subscriptions"):
        caveats.append(
            "Retention and NRR cover the 12 months to each quarter's end, so neighbouring "
            "quarters share most of their customers."
        )
    caveats.append(
        "Accounts are placed in or out of the ICP by their attributes as the data holds them "
        "today: a company that grew into the ICP counts as ICP in every quarter."
    )
    drift = result.tables.get("drift")
    if drift is not None and len(drift):
        caveats.append(
            "PSI grows with small samples by chance alone (five bins with 100 accounts a "
            "quarter give about 0.08 with no change at all); each PSI comes with a chi-square "
            "test of the same counts, corrected over the attributes."
        )
    return caveats


def _headline(result: HealthResult, drawn: bool) -> dict:
    out: dict[str, str] = {}
    data = result.summary
    now = data[data["quarter"] == result.quarter]
    share = now[(now["metric"] == "icp_share_new_customers") & (now["group"] == ICP)]
    if len(share) and share.iloc[0]["n"] > 0:
        row = share.iloc[0]
        out["ICP share of new customers"] = f"{fmt_pct(row['value'])} ({row['interval']})"
    win = now[(now["metric"] == "win_rate") & (now["group"] == VERSUS)]
    if len(win) and np.isfinite(win.iloc[0]["value"]):
        row = win.iloc[0]
        interval = (
            f" ({row['interval']})"
            if isinstance(row.get("interval"), str) and row["interval"]
            else ""
        )
        out["ICP vs rest win rate, this quarter"] = f"{row['value']:.1f}x{interval}"
    if drawn:
        compared = now[(now["group"] == VERSUS) & now["metric"].isin(_METRIC)]
        worse = [_METRIC[m].label for m in compared.loc[compared["flag"] == "worse", "metric"]]
        spec = result.icp.spec if result.icp is not None else None
        if spec and worse_when_validated(spec):
            # The blueprint's validation quarters together: beside "0 of 6" this quarter, the
            # tile had hidden the one check that found the ICP worse.
            label = (spec.get("outcome") or {}).get("label", "the outcome")
            worse.append(f"{label} on the validation quarters")
        if len(compared):
            # A count, never a bare "none" tile: "0 of 9" says what was compared.
            out["Measures where the ICP does worse"] = (
                ", ".join(worse) if worse else f"0 of {compared['metric'].nunique()}"
            )
    drift = result.tables.get("drift")
    if drift is not None and len(drift):
        part = drift[(drift["quarter"] == result.quarter) & (drift["population"] == NEW_CUSTOMERS)]
        part = part[_of_icp(part) & np.isfinite(part["psi"].astype(float))]
        part = part[part["band"] != TOO_FEW]
        if len(part):
            top = part.loc[part["psi"].idxmax()]
            band = top["band"]
            if band == "stable":
                out["Drift of new customers"] = "stable"
            else:
                real = np.isfinite(top["q_value"]) and top["q_value"] < result.params["alpha"]
                out["Drift of new customers"] = f"{band} ({top['attribute']})" + (
                    "" if real else ", within chance"
                )
    return out


# ---------------------------------------------------------------------------------------------
# Artifacts


def save_artifacts(study: Study, result: HealthResult) -> list[Path]:
    """Write ``icp_health.csv``, ``icp_drift.csv``, ``icp_changelog.md`` / ``.json`` and
    ``health.json`` to the study's artifacts folder (nothing when it has none)."""
    if study.artifacts_dir is None:
        return []
    from icp_research.artifacts import write_text

    written = study.save_artifact(registry.ICP_HEALTH, result.summary)
    written += study.save_artifact(
        registry.ICP_DRIFT, result.tables.get("drift", pd.DataFrame(columns=DRIFT_COLUMNS))
    )
    written += study.save_artifact(registry.HEALTH, result.to_json())
    study.save_result(result, "health")
    if result.changelog is not None:
        written += study.save_artifact(registry.ICP_CHANGELOG, result.changelog.to_json())
        written.append(
            write_text(
                result.changelog.to_markdown(), Path(study.artifacts_dir) / "icp_changelog.md"
            )
        )
    return [p for p in written if p is not None]


# ---------------------------------------------------------------------------------------------
# Plots


def plot_health_trends(result: HealthResult, *, metrics: Sequence[str] | None = None):
    """ICP and non-ICP accounts per quarter, one panel per measure, with 95% intervals.

    Returns the Figure (one Axes per measure). Flagged quarters (ICP significantly worse) are
    marked with a red ring.
    """
    import matplotlib.pyplot as plt

    data = result.summary
    names = [m.name for m in METRICS if metrics is None or m.name in metrics]
    names = [n for n in names if ((data["metric"] == n) & (data["group"] == ICP)).any()]
    if not names:
        fig, ax = plt.subplots(figsize=(8, 2))
        ax.text(0.5, 0.5, "No ICP vs non-ICP comparison", ha="center", va="center")
        ax.set_axis_off()
        return fig
    cols = min(4, len(names))
    rows = math.ceil(len(names) / cols)
    fig, axes = plt.subplots(rows, cols, figsize=(3.4 * cols, 2.9 * rows), squeeze=False)
    quarters = result.quarters
    x = np.arange(len(quarters))
    for ax, name in zip(axes.flat, names, strict=False):
        metric = _METRIC[name]
        scale = 100.0 if metric.unit == "share" else 1.0
        for group, colour, label, shift in (
            (ICP, "#0173b2", "ICP", -0.08),
            (NON_ICP, "#949494", "non-ICP", 0.08),
        ):
            part = (
                data[(data["metric"] == name) & (data["group"] == group)]
                .set_index("quarter")
                .reindex(quarters)
            )
            values = part["value"].astype(float).to_numpy() * scale
            # Never below zero (see _fmt_interval).
            low = np.clip(part["ci_low"].astype(float).to_numpy() * scale, 0.0, None)
            high = part["ci_high"].astype(float).to_numpy() * scale
            ok = np.isfinite(values)
            errors = error_bars(values, low, high)
            ax.errorbar(
                x[ok] + shift,
                values[ok],
                yerr=errors[:, ok],
                color=colour,
                marker="o",
                markersize=4,
                capsize=2,
                linewidth=1.5,
                label=label,
            )
        flagged = (
            data[(data["metric"] == name) & (data["group"] == ICP) & (data["flag"] == "worse")]
            .set_index("quarter")
            .reindex(quarters)
        )
        hit = flagged["value"].notna().to_numpy()
        if hit.any():
            ax.scatter(
                x[hit] - 0.08,
                flagged["value"].astype(float).to_numpy()[hit] * scale,
                s=120,
                facecolors="none",
                edgecolors="#d55e00",
                linewidths=2,
                label="ICP worse",
                zorder=5,
            )
        unit = {"share": " (%)", "money": "", "days": " (days)", "nps": ""}[metric.unit]
        ax.set_title(metric.label[:1].upper() + metric.label[1:] + unit, fontsize=10)
        step = max(1, len(quarters) // 4)
        ax.set_xticks(x[::step])
        ax.set_xticklabels(quarters[::step], fontsize=8)
        ax.tick_params(axis="y", labelsize=8)
        if metric.unit == "money":
            ax.yaxis.set_major_formatter(lambda v, _: fmt_money(v))
    for ax in list(axes.flat)[len(names) :]:
        ax.set_axis_off()
    handles, labels = axes.flat[0].get_legend_handles_labels()
    fig.legend(
        handles, labels, loc="upper center", ncol=3, frameon=False, bbox_to_anchor=(0.5, 1.02)
    )
    fig.tight_layout(rect=(0, 0, 1, 0.95))
    return fig


def plot_icp_share(result: HealthResult, *, ax=None):
    """Share of each quarter's new customers and new pipeline in the ICP, with 95% intervals.

    Returns the Axes.
    """
    import matplotlib.pyplot as plt

    if ax is None:
        _, ax = plt.subplots(figsize=(8, 3.8))
    data = result.summary[result.summary["group"] == ICP]
    quarters = result.quarters
    x = np.arange(len(quarters))
    drawn_any = False
    for metric, label, colour, shift in (
        ("icp_share_new_customers", "new customers", "#0173b2", -0.06),
        ("icp_share_new_pipeline", "new-business deals created", "#de8f05", 0.06),
    ):
        part = data[data["metric"] == metric].set_index("quarter").reindex(quarters)
        values = part["value"].astype(float).to_numpy() * 100
        ok = np.isfinite(values)
        if not ok.any():
            continue
        drawn_any = True
        low = part["ci_low"].astype(float).to_numpy() * 100
        high = part["ci_high"].astype(float).to_numpy() * 100
        errors = error_bars(values, low, high)
        ax.errorbar(
            x[ok] + shift,
            values[ok],
            yerr=errors[:, ok],
            marker="o",
            capsize=3,
            color=colour,
            label=label,
        )
    if not drawn_any:
        ax.text(0.5, 0.5, "No ICP to measure", ha="center", va="center", transform=ax.transAxes)
        ax.set_axis_off()
        return ax
    ax.set_xticks(x)
    ax.set_xticklabels(quarters, rotation=45, ha="right")
    ax.set_ylabel("In the ICP (%)")
    ax.set_ylim(bottom=0)
    ax.set_title("Share in the ICP, per quarter")
    ax.legend(frameon=False)
    return ax


def plot_drift(result: HealthResult, *, population: str = NEW_CUSTOMERS, ax=None):
    """PSI of each ICP attribute and the fit score against the previous quarter, with the
    0.10 and 0.25 bands. Returns the Axes."""
    import matplotlib.pyplot as plt

    table = result.drift_table(population)
    table = table[np.isfinite(table["PSI"].astype(float))].iloc[::-1]
    if ax is None:
        _, ax = plt.subplots(figsize=(8, max(2.2, 0.45 * len(table) + 1.2)))
    if table.empty:
        ax.text(0.5, 0.5, "No PSI to show", ha="center", va="center", transform=ax.transAxes)
        ax.set_axis_off()
        return ax
    colours = [
        {"stable": "#029e73", "moderate shift": "#de8f05", TOO_FEW: "#949494"}.get(b, "#d55e00")
        for b in table["band"]
    ]
    ax.barh(table["attribute"], table["PSI"], color=colours)
    for bound in (0.10, 0.25):
        ax.axvline(bound, color="#555555", linestyle="--", linewidth=1)
    ax.set_xlim(0, max(0.3, float(table["PSI"].max()) * 1.15))
    ax.set_xlabel("PSI against the previous quarter (0.10 moderate, 0.25 large shift)")
    ax.set_title(f"Population stability of {population}, {result.quarter}")
    return ax
