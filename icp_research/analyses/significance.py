"""Which ICP traits are real? The predictor-significance report, from a study to a shortlist.

This module orchestrates :mod:`icp_research.methods.predictors` (the univariate battery, replication)
and :mod:`icp_research.methods.multivariable` (the model) for the report
``notebooks/04_predictor_significance.ipynb``:

1. **Outcomes** are built from the study (:func:`outcome_frames`):

   - ``won``: new-business deals closed by the as-of date, one row per deal, clustered by
     account (deals of one account are not independent);
   - ``retained``: customers who became customers at least ``retention_months`` before the
     as-of date; True when they were still customers ``retention_months`` after starting.
     Churn is a time-to-event outcome: a fixed window gives every customer the same time to
     churn, so the flag is not biased by how long ago each customer started (a plain
     "churned so far" flag would make recent customers look loyal). The price is that recent
     customers and later churns are left out; the churn report's survival analysis uses them;
   - ``best_customer``: customers, flagged by the study's best-customer rule;
   - ``arr``: current ARR of active customers (continuous, compared as medians).

   ``retained`` needs churn (subscriptions, churn events or a churn column) and ``arr`` a
   subscriptions table; without them they are skipped and the report says so.
2. **Discovery and confirmation.** Every pre-sale attribute (``study.attributes.categorical``
   and ``.numeric``) is tested against every outcome on the earlier period, each outcome ONE family
   of hypotheses (Benjamini-Hochberg by default; a family per outcome, so that near-mechanical
   findings about one outcome do not loosen the threshold for the others). The significant findings are re-tested on the
   latest ``holdout_quarters`` quarters (:func:`icp_research.methods.predictors.replicate`). Deals are
   split by the date they closed: the discovery period is exactly what was known when the
   confirmation period began, and splitting by creation date instead would leave the latest
   quarters with only the deals that closed fast (slow deals created then are still open),
   which over-represents quick wins. Accounts are split by the date they became customers.
3. **Does it hold up?** Predictors that replicated for a yes/no outcome enter a multivariable
   logistic model of that outcome one at a time, strongest first; a predictor is kept when it
   adds to those already in (joint Wald test, p < alpha). This is what separates a driver from
   a passenger (annual revenue "predicts" winning only because it travels with company size).
4. **Recommendation.** At most ``max_characteristics`` predictors that replicated AND kept an
   independent effect, strongest first, with the levels (or bins) to favour and to avoid
   (:meth:`SignificanceResult.to_json`, the ``icp_predictors.json`` artifact).

Behavioural signals (usage, NPS) are tested separately against retention and best-customer
status as a description of good customers; they are measured after the sale, so they are
never recommended for scoring.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from functools import cache
from pathlib import Path

import numpy as np
import pandas as pd

from icp_research.analyses import registry
from icp_research.data.facts import retained_for, retention_days
from icp_research.data.study import GROUP, Study
from icp_research.errors import InputError, NotEnoughData
from icp_research.formatting import fmt_p, fmt_p_is
from icp_research.methods.binning import (
    MISSING,
    apply_bins,
    cut_points,
    interval_labels,
    pool_rare_levels,
)
from icp_research.methods.multivariable import ModelResult, multivariable_model
from icp_research.methods.predictors import (
    EXTRA_COLUMNS,
    RATIO_EFFECTS,
    SUMMARY_COLUMNS,
    TOO_SMALL_TO_TELL,
    TREND,
    PredictorResult,
    ReplicationResult,
    replicate,
    test_many,
    time_split,
)
from icp_research.result import Result, View

# What a multivariable fit on thin or degenerate data may raise; the report says so instead.
_MODEL_ERRORS = (NotEnoughData, InputError, np.linalg.LinAlgError, ValueError)

#: Outcomes tested by default, in reading order.
DEFAULT_OUTCOMES = ("won", "retained", "best_customer", "arr")

#: Outcomes whose findings can make a characteristic recommended (yes/no outcomes).
BINARY_OUTCOMES = ("won", "retained", "best_customer")

#: Columns added to ``predictors.csv`` after the contract columns: the out-of-sample check.
REPLICATION_COLUMNS = [
    "replicated",
    "replication",
    "n_confirm",
    "rate_level_confirm",
    "rate_rest_confirm",
    "effect_confirm",
    "ci_low_confirm",
    "ci_high_confirm",
    "p_value_confirm",
    "q_value_confirm",
]

#: Columns of ``predictor_summary.csv`` (one row per outcome x predictor).
PREDICTOR_SUMMARY_COLUMNS = [
    "outcome",
    "predictor",
    "kind",
    "verdict",
    "n",
    "n_clusters",
    "test",
    "p_value",
    "q_value",
    "effect_size",
    "effect_size_type",
    "strongest_level",
    "strongest_effect",
    "strongest_effect_type",
    "strongest_q_value",
    "mde",
    "mde_unit",
    "underpowered",
    "replicated",
    "replication",
    "independent",
    "recommended",
]

OUTCOME_COLUMNS = [
    "outcome",
    "definition",
    "unit",
    "n",
    "n_accounts",
    "outcome_rate",
    "split_on",
    "confirmation_from",
    "n_discovery",
    "n_confirmation",
    "status",
]

_PHRASES = {
    "won": "winning a deal",
    "retained": "retention",
    "best_customer": "being a best customer",
    "arr": "ARR",
}

_UNITS = {"won": "deals", "retained": "customers", "best_customer": "customers", "arr": "customers"}

_EFFECT_WORDS = {
    "odds_ratio": "x the odds",
    "odds_ratio_q3_vs_q1": "x the odds (75th vs 25th percentile)",
    "median_ratio": "x the median",
}


# ----------------------------------------------------------------------------------------------
# Outcome frames


@dataclass
class OutcomeFrame:
    """One outcome's rows, split into an earlier (discovery) and a later (confirmation) period.

    ``data`` holds every analysable row (the outcome column is named like the outcome);
    ``cluster`` is the account id column for deal outcomes, else None. ``skipped`` is the reason
    the outcome cannot be tested ("" when it can).
    """

    name: str
    definition: str
    unit: str
    data: pd.DataFrame
    cluster: str | None = None
    split_on: str = ""
    confirm_from: pd.Timestamp | None = None
    discovery: pd.DataFrame | None = None
    confirmation: pd.DataFrame | None = None
    skipped: str = ""
    notes: list[str] = field(default_factory=list)

    @property
    def kind(self) -> str:
        return "binary" if self.name in BINARY_OUTCOMES else "continuous"

    def row(self) -> dict:
        data = self.data
        clustered = self.cluster is not None and self.cluster in data.columns
        n_accounts = (
            data["account_id"].nunique()
            if clustered and "account_id" in data
            else data[self.cluster].nunique()
            if clustered
            else len(data)
        )
        rate = np.nan
        if len(data) and not self.skipped:
            values = data[self.name].astype(float)
            rate = values.mean() if self.kind == "binary" else values.median()
        return {
            "outcome": self.name,
            "definition": self.definition,
            "unit": self.unit,
            "n": len(data),
            "n_accounts": int(n_accounts),
            "outcome_rate": rate,
            "split_on": self.split_on,
            "confirmation_from": self.confirm_from,
            "n_discovery": len(self.discovery) if self.discovery is not None else 0,
            "n_confirmation": len(self.confirmation) if self.confirmation is not None else 0,
            "status": self.skipped or "tested",
        }


def outcome_frames(
    study: Study,
    *,
    outcomes: Sequence[str] = DEFAULT_OUTCOMES,
    predictors: Sequence[str] = (),
    holdout_quarters: int = 2,
    retention_months: int = 12,
    deal_date: str = "closed_at",
) -> list[OutcomeFrame]:
    """Build each outcome's analysable rows and split them in time.

    Parameters
    ----------
    outcomes
        Any of ``won``, ``retained``, ``best_customer``, ``arr``.
    predictors
        Account columns to carry onto every frame (taken from ``study.facts``).
    holdout_quarters
        The latest this many calendar quarters with observable outcomes are the confirmation
        period (0: no holdout). For ``retained`` the latest observable start is
        ``retention_months`` before the as-of date.
    deal_date
        Column that places a deal in time: ``closed_at`` (default, see the module docstring)
        or ``created_at``.

    Returns
    -------
    list of OutcomeFrame
        One per requested outcome, in order, skipped ones included with their reason.
    """
    unknown = [o for o in outcomes if o not in DEFAULT_OUTCOMES]
    if unknown:
        raise InputError(f"Unknown outcome(s) {unknown}; choose from {list(DEFAULT_OUTCOMES)}.")
    if deal_date not in ("closed_at", "created_at"):
        raise InputError(f"deal_date must be 'closed_at' or 'created_at', not {deal_date!r}.")
    facts = study.facts
    attributes = facts[["account_id", *[p for p in predictors if p in facts.columns]]]

    # The customer outcomes share one customer table, built when the first of them needs it.
    @cache
    def customers() -> pd.DataFrame:
        return _customers(study, attributes)

    builders = {
        "won": lambda: _won_frame(study, attributes, deal_date),
        "retained": lambda: _retained_frame(study, customers, retention_months),
        "best_customer": lambda: _best_customer_frame(study, customers),
        "arr": lambda: _arr_frame(study, customers),
    }
    frames = []
    for name in outcomes:
        frame = builders[name]()
        if not frame.skipped:
            _cluster_by_group(frame, study)
            _split(frame, study, holdout_quarters, retention_months)
        frames.append(frame)
    return frames


#: The won frame's column with each deal's amount.
DEAL_AMOUNT = "_deal_amount"


def _won_frame(study: Study, attributes: pd.DataFrame, deal_date: str) -> OutcomeFrame:
    definition = "new-business deals closed by the as-of date: won (True) or lost"
    empty = OutcomeFrame("won", definition, "deals", pd.DataFrame(), cluster="account_id")
    deals = study.deal_rows  # the attributes come from the account facts
    if deals.empty:
        empty.skipped = study.absent("opportunities")
        return empty
    keep = ["opportunity_id", "account_id", "created_at", "closed_at", "won"]
    keep += ["amount"] if "amount" in deals else []
    # The columns first, then the rows: not a copy of every deal column (gigabytes at 10M).
    closed = deals.loc[
        deals["is_new_business"].astype(bool) & deals["is_closed"].astype(bool), keep
    ]
    # What a won deal brought (the blueprint's samples sum it), apart from any account
    # attribute that is also called "amount".
    closed = closed.rename(columns={"amount": DEAL_AMOUNT})
    notes = []
    unattributed = closed["account_id"].isna()
    if unattributed.any():
        notes.append(
            f"won: {int(unattributed.sum()):,} closed deals without an account are left out "
            "(they cannot be linked to the account's attributes)."
        )
    elsewhere = ~closed["account_id"].isin(attributes["account_id"]) & ~unattributed
    if elsewhere.any():
        notes.append(
            f"won: {int(elsewhere.sum()):,} closed deals at companies not in the accounts "
            "table are left out (their traits are not known)."
        )
    closed = closed[~unattributed & ~elsewhere]
    if closed.empty:
        empty.skipped = "no closed new-business deals"
        return empty
    unmeasurable = study.variation.get("won")
    if unmeasurable:
        empty.skipped = f"winning cannot be compared: {unmeasurable}"
        return empty
    data = closed.merge(attributes, on="account_id", how="left")
    data["won"] = data["won"].astype(bool)
    frame = OutcomeFrame("won", definition, "deals", data, cluster="account_id", notes=notes)
    frame.split_on = deal_date
    return frame


def _customers(study: Study, attributes: pd.DataFrame) -> pd.DataFrame:
    facts = study.facts
    customers = facts[facts["is_customer"].fillna(False).astype(bool)]
    extra = [c for c in customers.columns if c not in attributes.columns or c == "account_id"]
    return customers[extra].merge(attributes, on="account_id", how="left")


def _retained_frame(
    study: Study, load_customers: Callable[[], pd.DataFrame], months: int
) -> OutcomeFrame:
    definition = (
        f"customers who started at least {months} months before the as-of date: still a "
        f"customer {months} months after starting"
    )
    frame = OutcomeFrame("retained", definition, "customers", pd.DataFrame())
    if not study.churn_measured:
        frame.skipped = (
            f"{study.absent('subscriptions')}, so churn and retention cannot be measured"
            if not study.has("subscriptions")
            else "churn is not measured in this data, so retention cannot be"
        )
        return frame
    customers = load_customers()
    eligible, retained = retained_for(customers, months, study.as_of)
    if not eligible.any():
        frame.skipped = f"no customer has been a customer for {months} months yet"
        return frame
    data = customers[eligible.to_numpy()].copy(deep=False)  # a new column, not a copy of all
    data["retained"] = retained[eligible].to_numpy()
    frame.data = data
    frame.split_on = "customer_since"
    return frame


def _best_customer_frame(study: Study, load_customers: Callable[[], pd.DataFrame]) -> OutcomeFrame:
    analysis = study.analysis
    share = float(analysis.get("best_customer_top_share", 0.2))
    metric = analysis.get("best_customer_metric", "arr")
    basis = (
        " (no subscriptions: ARR here is won deal value in the last 12 months)"
        if study.revenue_basis == "bookings" and metric == "arr"
        else ""
    )
    pool = (
        "of active customers"
        if analysis.get("best_customer_ranking", "cohort") == "all"
        else "of their start year's customers"
    )
    definition = f"customers: in the top {share:.0%} {pool} by {metric}{basis} (True) or not"
    frame = OutcomeFrame("best_customer", definition, "customers", pd.DataFrame())
    customers = load_customers()
    if customers.empty:
        frame.skipped = "no customers"
        return frame
    known = customers[customers["best_customer"].notna()]
    data = known.copy(deep=False)
    data["best_customer"] = known["best_customer"].astype(bool)
    if data.empty:
        frame.skipped = "no customer has a best-customer flag"
        return frame
    frame.data = data
    frame.split_on = "customer_since"
    return frame


def _arr_frame(study: Study, load_customers: Callable[[], pd.DataFrame]) -> OutcomeFrame:
    definition = "active customers: current ARR (continuous; medians compared)"
    frame = OutcomeFrame("arr", definition, "customers", pd.DataFrame())
    if study.revenue_basis != "subscriptions":
        frame.skipped = (
            f"{study.absent('subscriptions')}, so there is no ARR (won deal value is bookings)"
        )
        return frame
    customers = load_customers()
    active = customers[
        customers["retained"].fillna(False).astype(bool) & (customers["arr_current"] > 0)
    ]
    if active.empty:
        frame.skipped = "no active customers with ARR"
        return frame
    frame.data = active.copy(deep=False)
    frame.data["arr"] = active["arr_current"].astype(float)
    frame.split_on = "customer_since"
    return frame


def _cluster_by_group(frame: OutcomeFrame, study: Study) -> None:
    """Make the group of linked accounts the independent unit of a yes/no outcome's tests.

    The subsidiaries of one parent (:attr:`~icp_research.data.study.Study.account_groups`) buy,
    renew and churn together: counted as independent accounts, a trait that a few groups of
    many subsidiaries share looks like a segment. Deals then cluster by group, not account, and
    customers, who had no cluster, cluster by group too. ARR (compared by medians) stays one row
    per customer, and a level that a few groups hold is not tested."""
    data, cluster = study.with_groups(frame.data, frame.cluster)
    if cluster != GROUP:
        return
    frame.data, frame.cluster = data, cluster
    column = study.account_groups[0]
    accounts = data["account_id"].nunique()
    groups = data[GROUP].nunique()
    frame.notes.append(
        f"{frame.name}: {accounts:,} accounts count as {groups:,} independent units: accounts "
        f"linked to a parent by {column} are one group, clustered together."
    )


def _split(frame: OutcomeFrame, study: Study, holdout_quarters: int, retention_months: int):
    data = frame.data
    if holdout_quarters <= 0:
        frame.discovery, frame.confirmation = data, data.iloc[0:0]
        frame.notes.append(f"{frame.name}: no holdout period (holdout_quarters = 0).")
        return
    latest = study.as_of
    if frame.name == "retained":
        latest = study.as_of - pd.Timedelta(days=retention_days(retention_months))
    frame.confirm_from = (pd.Period(latest, "Q") - (holdout_quarters - 1)).start_time
    dated = pd.to_datetime(data[frame.split_on], errors="coerce")
    if dated.isna().any():
        frame.notes.append(
            f"{frame.name}: {int(dated.isna().sum()):,} {frame.unit} without a "
            f"{frame.split_on} date are in neither period."
        )
    if dated.notna().sum() < 2:
        frame.discovery, frame.confirmation = data, data.iloc[0:0]
        frame.confirm_from = None
        frame.notes.append(f"{frame.name}: too few dated rows for a time-based holdout.")
        return
    frame.discovery, frame.confirmation = time_split(
        data, frame.split_on, confirm_from=frame.confirm_from
    )
    if frame.discovery.empty:
        frame.skipped = (
            f"every row falls in the holdout period (from {frame.confirm_from:%Y-%m-%d}); "
            "shorten holdout_quarters"
        )


# ----------------------------------------------------------------------------------------------
# Result


@dataclass
class SignificanceResult(Result):
    """Predictor significance: discovery, replication, model and recommendation.

    ``summary`` is ``predictors.csv``: the contract columns (estimated on the discovery period),
    then :data:`REPLICATION_COLUMNS` (the re-test on the confirmation period), then the engine's
    extras (:data:`icp_research.methods.predictors.EXTRA_COLUMNS`). ``tables``:

    - ``predictor_summary``: one row per outcome x predictor (:data:`PREDICTOR_SUMMARY_COLUMNS`);
    - ``outcomes``: what each outcome is, its n, periods, and whether it was tested;
    - ``replication``: the replication table of :func:`icp_research.methods.predictors.replicate`;
    - ``selection``: each step of the multivariable check (outcome, predictor, p-value, kept);
    - ``behavioural``: post-sale signals versus retention / best-customer (descriptive).

    ``recommended`` (list of dicts, see :meth:`to_json`) and ``not_recommended`` hold the
    shortlist for the ICP blueprint; ``models`` the final multivariable model per yes/no
    outcome; ``conclusions`` plain sentences on what the data can and cannot support;
    ``notes`` the method notes of every step (pooling, clustering, corrections).
    """

    discovery: PredictorResult | None = None
    replication: ReplicationResult | None = None
    behavioural: PredictorResult | None = None
    models: dict[str, ModelResult] = field(default_factory=dict)
    recommended: list[dict] = field(default_factory=list)
    not_recommended: list[dict] = field(default_factory=list)
    conclusions: list[str] = field(default_factory=list)
    notes: list[str] = field(default_factory=list)

    @property
    def tested_outcomes(self) -> list[str]:
        outcomes = self.tables.get("outcomes", pd.DataFrame(columns=OUTCOME_COLUMNS))
        return list(outcomes.loc[outcomes["status"] == "tested", "outcome"])

    @property
    def primary_outcome(self) -> str | None:
        """The outcome the model and forest plot lead with: ``won`` when tested."""
        tested = self.tested_outcomes
        binary = [o for o in tested if o in BINARY_OUTCOMES]
        return binary[0] if binary else (tested[0] if tested else None)

    @property
    def forest_outcome(self) -> str | None:
        """The outcome the forest plot shows: the primary outcome when it has significant
        findings, else the first outcome that has some (None when nothing is significant)."""
        rows = self.summary
        if rows.empty or not rows["significant"].any():
            return None
        with_findings = set(rows.loc[rows["significant"], "outcome"])
        ordered = [self.primary_outcome, *self.tested_outcomes]
        return next(o for o in ordered if o in with_findings)

    def to_json(self) -> dict:
        """The ``icp_predictors.json`` artifact: the recommended characteristics.

        Keys: ``as_of``; ``alpha`` and ``correction`` (discovery family); ``holdout`` per
        outcome (``split_on``, ``confirmation_from``, ``n_discovery``, ``n_confirmation``);
        ``outcomes_skipped`` {outcome: reason}; ``recommended``: a list, strongest first, of

        - ``rank``, ``predictor``, ``kind`` (``categorical`` / ``numeric``), ``outcomes`` (the
          outcomes it replicated for), ``favour`` / ``avoid`` (level or bin labels),
        - ``trade_offs``: levels that help one outcome and hurt another (significant either way
          in discovery): ``level``, ``helps``, ``hurts`` (outcomes) and ``text`` ("pays more,
          wins less"); they are in neither ``favour`` nor ``avoid``,
        - ``levels``: one entry per replicated level or bin: ``level``, ``direction``
          (``favour`` / ``avoid``), ``low`` / ``high`` (bin bounds, ``low <= x < high``; null
          when open or categorical), ``outcome``, ``effect_type``, discovery ``effect``,
          ``ci_low``, ``ci_high``, ``q_value``, ``n`` and confirmation ``effect_confirm``,
          ``ci_low_confirm``, ``ci_high_confirm``, ``q_value_confirm``, ``n_confirm``,
        - ``trend``: for numeric predictors whose trend replicated: ``direction`` (``higher`` /
          ``lower`` values are better) with the same evidence fields, else null,
        - ``independent``: {outcome: p-value of its joint test in the multivariable model},
        - ``evidence``: one plain-language sentence;

        ``not_recommended``: ``predictor`` and ``reason`` for predictors that were significant
        somewhere but are not recommended.
        """
        outcomes = self.tables.get("outcomes", pd.DataFrame(columns=OUTCOME_COLUMNS))
        tested = outcomes[outcomes["status"] == "tested"]
        holdout = {
            row.outcome: {
                "split_on": row.split_on,
                "confirmation_from": row.confirmation_from,
                "n_discovery": row.n_discovery,
                "n_confirmation": row.n_confirmation,
            }
            for row in tested.itertuples()
        }
        skipped = {
            row.outcome: row.status for row in outcomes[outcomes["status"] != "tested"].itertuples()
        }
        return {
            "as_of": self.params.get("as_of"),
            "alpha": self.params.get("alpha"),
            "correction": self.params.get("correction"),
            "holdout_quarters": self.params.get("holdout_quarters"),
            "holdout": holdout,
            "outcomes_skipped": skipped,
            "recommended": self.recommended,
            "not_recommended": self.not_recommended,
        }

    def ranked_table(self, max_levels: int = 3) -> pd.DataFrame:
        """Display table: one row per outcome x predictor that predicts it, ranked.

        Replicated predictors first, then by strength. ``effects`` lists the strongest levels
        with their effect and interval; ``replicated`` says how the confirmation period went.
        """
        summary = self.tables.get("predictor_summary")
        if summary is None or summary.empty:
            return pd.DataFrame()
        rows = []
        findings = self.summary[self.summary["significant"]]
        for verdict in summary[summary["verdict"] == "predicts"].itertuples():
            own = findings[
                (findings["outcome"] == verdict.outcome)
                & (findings["predictor"] == verdict.predictor)
            ]
            own = own.assign(_strength=own["std_effect"].abs()).sort_values(
                "_strength", ascending=False
            )
            own = _drop_mirrored(own)
            effects = "; ".join(_effect_text(row) for row in own.head(max_levels).itertuples())
            if len(own) > max_levels:
                effects += f"; +{len(own) - max_levels} more"
            rows.append(
                {
                    "outcome": verdict.outcome,
                    "predictor": verdict.predictor,
                    "effects (95% CI)": effects,
                    "n": _n_text(verdict, self.params.get("cluster_unit", "accounts")),
                    # The q of the strongest level listed (the summary's strongest level may
                    # be a small one that is not significant).
                    "q_value": own["q_value"].iloc[0] if len(own) else verdict.strongest_q_value,
                    "replicated": verdict.replication,
                    "in the ICP": "yes" if verdict.recommended else "no",
                    "_outcome": DEFAULT_OUTCOMES.index(verdict.outcome),
                    "_not_replicated": not verdict.replicated,
                    "_strength": -own["std_effect"].abs().max(),
                }
            )
        table = pd.DataFrame(rows)
        if table.empty:
            return table
        level = 100 * (1 - float(self.params.get("alpha", 0.05)))
        order = ["_outcome", "_not_replicated", "_strength"]
        table = table.sort_values(order).drop(columns=order).reset_index(drop=True)
        return table.rename(columns={"effects (95% CI)": f"effects ({level:.0f}% CI)"})

    def findings_table(self, outcome: str | None = None) -> pd.DataFrame:
        """Display table: every significant level / bin / trend with its discovery effect,
        interval, n and q, and its confirmation effect and q (one row per finding)."""
        rows = self.summary[self.summary["significant"]]
        if outcome is not None:
            rows = rows[rows["outcome"] == outcome]
        rows = _drop_mirrored(rows)
        if rows.empty:
            return pd.DataFrame()
        out = pd.DataFrame(
            {
                "outcome": rows["outcome"],
                "finding": [_label(r) for r in rows.itertuples()],
                "n": rows["n"].astype(int),
                "level vs rest": [_rates_text(r) for r in rows.itertuples()],
                "effect (CI)": [_effect_ci_text(r) for r in rows.itertuples()],
                "q_value": rows["q_value"],
                "confirmation": [_confirmation_text(r) for r in rows.itertuples()],
                "replicated": rows["replicated"].map({True: "yes", False: "no"}),
            }
        )
        return out.reset_index(drop=True)

    def power_table(self) -> pd.DataFrame:
        """Display table: predictors with no significant finding, and what we could have seen.

        ``could have detected`` is the smallest effect the data had an 80% chance to find;
        ``underpowered`` marks questions the data cannot answer (only large effects detectable).
        """
        summary = self.tables.get("predictor_summary")
        if summary is None or summary.empty:
            return pd.DataFrame()
        quiet = summary[summary["verdict"] != "predicts"]
        # The verdict is the levels' (corrected over every level and bin of the outcome); the
        # q value beside it is the attribute's as a whole. Significant as a whole with no level
        # standing out read "not enough data ... q 0.03": said as it is.
        alpha = float(self.params.get("alpha", 0.05))
        overall = quiet["q_value"].lt(alpha).fillna(False).to_numpy(dtype=bool) & quiet[
            "verdict"
        ].isin(["no evidence", "not enough data"]).to_numpy(dtype=bool)
        verdict = quiet["verdict"].where(~overall, "differs as a whole, no level stands out")
        return pd.DataFrame(
            {
                "outcome": quiet["outcome"],
                "predictor": quiet["predictor"],
                "verdict": verdict,
                "n": [
                    _n_text(r, self.params.get("cluster_unit", "accounts"))
                    for r in quiet.itertuples()
                ],
                "p_value": quiet["p_value"],
                # "no evidence" beside p = 0.01 read as a contradiction: the verdict is the
                # q-value's, corrected over every test of the outcome.
                "q_value": quiet["q_value"],
                "could have detected": [_mde_phrase(r.mde, r.mde_unit) for r in quiet.itertuples()],
                "underpowered": quiet["underpowered"].map({True: "yes", False: "no"}),
            }
        ).reset_index(drop=True)

    def model_table(self, outcome: str | None = None) -> pd.DataFrame:
        """The multivariable model of ``outcome`` (default the primary outcome): one row per
        term with the odds ratio, its interval, q and VIF."""
        outcome = outcome or self.primary_outcome
        model = self.models.get(outcome)
        if model is None:
            return pd.DataFrame()
        terms = model.summary
        return terms[["term", "n", "odds_ratio", "ci_low", "ci_high", "q_value", "vif", "note"]]

    @property
    def model(self) -> ModelResult | None:
        """The multivariable model of the primary outcome, or None."""
        return self.models.get(self.primary_outcome) if self.primary_outcome else None

    @property
    def model_reason(self) -> str:
        """Why there is no model of the primary outcome (empty when there is one)."""
        if self.model is not None:
            return ""
        if self.primary_outcome is None:
            return "no yes/no outcome could be tested"
        return (
            f"no predictor of {_PHRASES.get(self.primary_outcome, self.primary_outcome)} was "
            "significant, so there is nothing to put in a model"
        )

    def model_notes(self) -> list[str]:
        """Plain sentences on the primary model: what it says and how it was fitted."""
        model = self.model
        if model is None:
            return []
        lines = list(model.findings)
        steps = self.tables.get("selection", pd.DataFrame())
        steps = steps[steps["outcome"] == self.primary_outcome] if len(steps) else steps
        dropped = steps[~steps["kept"]] if len(steps) else steps
        for row in dropped.itertuples():
            lines.append(f"{row.predictor}: {row.note}.")
        return lines

    def joint_table(self) -> pd.DataFrame:
        """Display table: does each predictor of the primary model add to the others?"""
        model = self.model
        if model is None:
            return pd.DataFrame()
        joint = model.tables["predictors"]
        return pd.DataFrame(
            {
                "predictor": joint["predictor"],
                "terms": joint["n_terms"],
                "test": joint["test"],
                "p_value": joint["p_value"],
                "adds to the others": joint["independent"].map({True: "yes", False: "no"}),
            }
        )

    def outcome_table(self) -> pd.DataFrame:
        """Display table of the outcomes: definition, size, periods, tested or why not."""
        outcomes = self.tables.get("outcomes", pd.DataFrame(columns=OUTCOME_COLUMNS))
        rows = []
        for row in outcomes.itertuples():
            tested = row.status == "tested"
            if not tested:
                rate = "–"
            elif row.outcome == "arr":
                rate = f"median {_money(row.outcome_rate)}"
            else:
                rate = f"{row.outcome_rate:.0%}"
            if tested and pd.notna(row.confirmation_from):
                split = (
                    f"{row.n_discovery:,} before {row.confirmation_from:%Y-%m-%d} / "
                    f"{row.n_confirmation:,} from then ({row.split_on})"
                )
            else:
                split = "–" if not tested else "no holdout"
            rows.append(
                {
                    "outcome": row.outcome,
                    "definition": row.definition,
                    "n": f"{row.n:,} {row.unit}"
                    + (f" / {row.n_accounts:,} accounts" if row.unit == "deals" else ""),
                    "rate": rate,
                    "discovery / confirmation": split,
                    "status": row.status,
                }
            )
        return pd.DataFrame(rows)

    def behavioural_table(self) -> pd.DataFrame:
        """Display table: post-sale signals (trend rows) against retention and best customers."""
        if self.behavioural is None:
            return pd.DataFrame()
        rows = self.behavioural.summary
        trend = rows[rows["kind"] == "trend"]
        return pd.DataFrame(
            {
                "outcome": trend["outcome"],
                "signal": trend["predictor"],
                "n": trend["n"].astype(int),
                "effect (CI)": [
                    _effect_ci_text(r) if np.isfinite(r.effect) else "–" for r in trend.itertuples()
                ],
                "q_value": trend["q_value"],
                "significant": trend["significant"].map({True: "yes", False: "no"}),
                "note": trend["note"].fillna(""),
            }
        ).reset_index(drop=True)

    def recommended_table(self) -> pd.DataFrame:
        """Display table of the recommended characteristics."""
        return pd.DataFrame(
            [
                {
                    "rank": item["rank"],
                    "predictor": item["predictor"],
                    "favour": ", ".join(item["favour"]) or "–",
                    "avoid": ", ".join(item["avoid"]) or "–",
                    "outcomes": ", ".join(item["outcomes"]),
                    "evidence": item["evidence"],
                }
                for item in self.recommended
            ]
        )

    def views(self) -> dict:
        """``{name: callable returning a View}``: the report's tables with their reasons.

        ``recommended`` (the shortlist; empty, it reads as the first finding, which says why),
        ``ranked`` (:meth:`ranked_table`), ``findings`` (:meth:`findings_table`), ``forest``
        (the significant findings of :attr:`forest_outcome`, which the forest plot draws),
        ``model`` and ``joint`` (the primary outcome's multivariable model, :meth:`model_table`
        and :meth:`joint_table`, with :attr:`model_reason` when there is none), ``power``
        (:meth:`power_table`; empty, it says whether nothing was tested or everything is
        significant) and ``behavioural`` (:meth:`behavioural_table`).
        """
        nothing_significant = "no finding is significant after correcting for multiple testing"

        def recommended() -> View:
            return View(
                "a data-backed shortlist of ICP characteristics",
                self.recommended_table() if self.recommended else None,
                self.findings[0] if self.findings else f"{nothing_significant}.",
            )

        def ranked() -> View:
            return View(
                "ranked predictors",
                self.ranked_table(),
                "No predictor stands out: nothing is significant after correcting for multiple "
                "testing.",
                empty_as="info",
            )

        def findings() -> View:
            return View(
                "significant findings",
                self.findings_table(),
                "Nothing to list.",
                empty_as="info",
                max_rows=60,
            )

        def forest() -> View:
            outcome = self.forest_outcome
            return View(
                "a forest plot",
                self.findings_table(outcome) if outcome else None,
                nothing_significant,
            )

        def model() -> View:
            return View("a multivariable model", self.model_table(), self.model_reason)

        def joint() -> View:
            return View("a multivariable model", self.joint_table(), self.model_reason)

        def power() -> View:
            tested = self.tables.get("predictor_summary")
            return View(
                "what the data could have detected",
                self.power_table(),
                "No predictor was tested."
                if tested is None or tested.empty
                else "Every predictor has a significant finding.",
                empty_as="info",
                max_rows=60,
            )

        def behavioural() -> View:
            return View(
                "behavioural signals",
                self.behavioural_table(),
                "the data has no usage or NPS signals for customers",
            )

        return {
            "recommended": recommended,
            "ranked": ranked,
            "findings": findings,
            "forest": forest,
            "model": model,
            "joint": joint,
            "power": power,
            "behavioural": behavioural,
        }


# ----------------------------------------------------------------------------------------------
# The analysis


def predictor_significance(
    study: Study,
    *,
    outcomes: Sequence[str] = DEFAULT_OUTCOMES,
    holdout_quarters: int | None = None,
    retention_months: int = 12,
    deal_date: str = "closed_at",
    max_characteristics: int = 5,
    max_model_predictors: int = 6,
    model_scale: str = "bins",
    overlap_threshold: float = 0.5,
    n_bins: int = 5,
    power: float = 0.8,
    behavioural: bool = True,
    model: bool = True,
    emerging: bool = True,
) -> SignificanceResult:
    """Test every pre-sale attribute against the outcomes, check out of sample, recommend.

    Parameters
    ----------
    study
        The study (its ``[analysis]`` settings give ``alpha``, ``correction``,
        ``min_level_count`` and ``seed``).
    outcomes
        Outcomes to test (see :func:`outcome_frames`); those the data cannot support are
        skipped with the reason.
    holdout_quarters
        Calendar quarters held out for confirmation; default ``[analysis] holdout_quarters``.
    retention_months
        Window of the ``retained`` outcome.
    deal_date
        ``closed_at`` or ``created_at``: which date places a deal in the discovery or the
        confirmation period.
    max_characteristics
        At most this many characteristics are recommended.
    max_model_predictors
        At most this many candidates enter each multivariable check.
    model_scale
        How numeric predictors enter the model: ``bins`` (the univariate bins' view),
        ``log2`` or ``standardize`` (see :func:`icp_research.methods.multivariable.multivariable_model`).
        When bins separate the outcome (a bin where everyone has the same outcome), the check
        is refitted with numeric predictors per doubling.
    overlap_threshold
        Two candidates whose levels are at least this strongly associated across accounts
        (Cramér's V) measure much the same thing: only the stronger one is checked and
        recommended.
    n_bins, power
        Bins per numeric predictor (cut points from all accounts, shared by every outcome, so
        the blueprint gets one set of bins); power of the minimum detectable effects.
    behavioural
        Also describe post-sale signals (usage, NPS) of good customers (a separate family).
    model
        Run step 3 (the multivariable check) and recommend; False stops after discovery and
        confirmation (what replicated), e.g. to redo the selection cheaply in a backtest fold.
    emerging
        Also screen the confirmation quarters alone for effects discovery missed (the
        ``emerging`` table and its findings); False leaves the table empty, for callers that
        read only the shortlist (the blueprint).

    Returns
    -------
    SignificanceResult
        Never raises for thin data: what could not be computed is in ``caveats``.
    """
    analysis = study.analysis
    alpha = study.alpha
    correction = analysis.get("correction", "fdr_bh")
    min_level_count = int(analysis.get("min_level_count", 10))
    seed = int(analysis.get("seed", 0))
    if holdout_quarters is None:
        holdout_quarters = int(analysis.get("holdout_quarters", 2))
    spec = study.attributes
    columns = set(study.facts.columns)
    categorical = [c for c in spec.categorical if c in columns]
    numeric = [c for c in spec.numeric if c in columns]
    params = {
        "as_of": study.as_of.strftime("%Y-%m-%d"),
        "alpha": alpha,
        "correction": correction,
        "holdout_quarters": holdout_quarters,
        "retention_months": retention_months,
        "deal_date": deal_date,
        "categorical": categorical,
        "numeric": numeric,
        "max_characteristics": max_characteristics,
        # What a clustered test counts as its independent units.
        "cluster_unit": "accounts or groups" if study.account_groups[1] else "accounts",
    }
    result = SignificanceResult(title="Which predictors are real", params=params)
    bins = {name: cut_points(study.facts[name], n_bins) for name in numeric}
    params["bins"] = bins
    frames = outcome_frames(
        study,
        outcomes=outcomes,
        predictors=[*categorical, *numeric],
        holdout_quarters=holdout_quarters,
        retention_months=retention_months,
        deal_date=deal_date,
    )
    result.tables["outcomes"] = pd.DataFrame([f.row() for f in frames], columns=OUTCOME_COLUMNS)
    for frame in frames:
        result.notes += frame.notes
    skipped = [f for f in frames if f.skipped]
    tested = [f for f in frames if not f.skipped]
    skip_caveats = [f"{f.name} not tested: {f.skipped}." for f in skipped]
    if not categorical and not numeric:
        result.findings = ["No predictor stands out: there are no candidate attributes to test."]
        result.caveats = [
            "No pre-sale attributes were found among the accounts' columns; list them under "
            "[attributes] in icp.toml.",
            *skip_caveats,
        ]
        return _finish_empty(result)
    if not tested:
        result.findings = [
            "No predictor stands out: none of the outcomes can be measured in this data."
        ]
        result.caveats = skip_caveats
        return _finish_empty(result)

    # How every family of tests is run: discovery, and the screen of the latest quarters.
    testing = {
        "categorical": categorical,
        "numeric": numeric,
        "alpha": alpha,
        "correction": correction,
        "min_level_count": min_level_count,
        "n_bins": n_bins,
        "bins": bins,
        "power": power,
        "unit": {f.name: f.unit for f in tested},
        "seed": seed,
    }
    discovery = test_many({f.name: (f.discovery, f.cluster) for f in tested}, **testing)
    result.discovery = discovery
    result.notes += discovery.caveats
    replication = replicate(
        discovery,
        {f.name: (f.confirmation, f.cluster) for f in tested},
        alpha=alpha,
        correction=correction,
    )
    _explain_missing_confirmation(replication, tested)
    result.replication = replication
    result.tables["replication"] = replication.summary
    # What began in the latest quarters is diluted in the years before: screened on them.
    result.tables["emerging"] = (
        _emerging(tested, discovery.summary, testing, contract=spec.contract)
        if emerging
        else pd.DataFrame(columns=EMERGING_COLUMNS)
    )
    # The re-test of an outcome with an empty holdout only says "no rows": said better above.
    empty = tuple(f"{f.name}: no rows" for f in tested if f.confirmation.empty)
    result.notes += [c for c in replication.caveats if not c.startswith(empty)]
    # The tests are done with the two periods' rows; what follows models all rows (``data``)
    # and only counts the periods' rows and accounts. At 10M deals each period's copy of the
    # rows is gigabytes.
    for f in tested:
        kept = [f.cluster if f.cluster in f.data.columns else f.name]
        f.discovery, f.confirmation = f.discovery[kept], f.confirmation[kept]
    result.summary = _predictor_rows(discovery, replication)
    # Contract terms (seats, plan) make up ARR and so best-customer status: never a reason.
    eligible = result.summary[~_contract_rows(result.summary, spec.contract)]

    ranked = _candidates(eligible)
    overlaps = _overlaps(study.facts, ranked, bins, min_level_count)
    candidates, redundant = _drop_overlapping(ranked, overlaps, overlap_threshold)
    for predictor in candidates[max_model_predictors:]:
        result.not_recommended.append(
            {
                "predictor": predictor,
                "reason": f"replicated, but only the {max_model_predictors} strongest "
                "candidates are checked in the multivariable model (max_model_predictors)",
            }
        )
    candidates = candidates[:max_model_predictors]
    result.tables["overlap"] = overlaps
    for predictor, (stronger, v) in redundant.items():
        result.not_recommended.append(
            {
                "predictor": predictor,
                "reason": f"replicated, but measures much the same as {stronger} across accounts "
                f"(Cramér's V {v:.2f}); only the stronger of the two is kept",
            }
        )
    frames_by_name = {f.name: f for f in tested}
    selection, models, model_notes = _select_independent(
        frames_by_name,
        candidates if model else [],
        eligible,
        categorical=categorical,
        alpha=alpha,
        correction=correction,
        min_level_count=min_level_count,
        model_scale=model_scale,
        bins=bins,
    )
    result.tables["selection"] = selection
    result.notes += model_notes
    if model and "won" in frames_by_name and "won" not in models:
        _exploratory_won_model(
            result,
            frames_by_name["won"],
            discovery,
            categorical=categorical,
            alpha=alpha,
            correction=correction,
            min_level_count=min_level_count,
            model_scale=model_scale,
            bins=bins,
        )
    result.models.update(models)
    _recommend(result, candidates, selection, discovery, max_characteristics, spec.contract)
    params["candidates"] = candidates
    params["contract"] = dict(spec.contract)
    result.tables["predictor_summary"] = _predictor_summary(result, selection)
    if behavioural:
        result.behavioural = _behavioural(study, frames_by_name, alpha, correction, n_bins, seed)
        if result.behavioural is not None:
            result.tables["behavioural"] = result.behavioural.summary
    result.findings = (
        _findings(result, tested)
        + _emerging_findings(result.tables["emerging"], tested, alpha)
        + _contract_findings(result, study)
    )
    result.caveats = _caveats(result, tested, skip_caveats)
    result.conclusions = _conclusions(result, tested, skipped)
    return result


def _finish_empty(result: SignificanceResult) -> SignificanceResult:
    result.summary = pd.DataFrame(columns=[*SUMMARY_COLUMNS, *REPLICATION_COLUMNS, *EXTRA_COLUMNS])
    result.tables["predictor_summary"] = pd.DataFrame(columns=PREDICTOR_SUMMARY_COLUMNS)
    result.conclusions = [
        "Nothing can be concluded about which characteristics predict success: "
        + (result.caveats[0] if result.caveats else "there is no outcome to test.")
    ]
    return result


def _explain_missing_confirmation(replication: ReplicationResult, tested: list[OutcomeFrame]):
    empty = {f.name for f in tested if f.confirmation is None or f.confirmation.empty}
    summary = replication.summary
    if summary.empty or not empty:
        return
    mask = summary["outcome"].isin(empty)
    summary.loc[mask, "status"] = "no confirmation data: nothing in the holdout period"


def _predictor_rows(discovery: PredictorResult, replication: ReplicationResult) -> pd.DataFrame:
    """``predictors.csv``: discovery rows with their out-of-sample re-test."""
    summary = discovery.summary.copy()
    retest = replication.summary
    keys = ["outcome", "predictor", "level", "kind"]
    if retest.empty:
        confirm = pd.DataFrame(columns=[*keys, *REPLICATION_COLUMNS])
    else:
        confirm = retest.rename(columns={"status": "replication"})[
            [*keys, *[c for c in REPLICATION_COLUMNS]]
        ]
    merged = summary.merge(confirm, on=keys, how="left")
    merged["replicated"] = merged["replicated"].eq(True)
    merged["replication"] = np.where(
        merged["significant"],
        merged["replication"].fillna("not re-tested"),
        "not re-tested: not significant in discovery",
    )
    merged["n_confirm"] = merged["n_confirm"].astype(float)
    return merged[[*SUMMARY_COLUMNS, *REPLICATION_COLUMNS, *EXTRA_COLUMNS]]


def _candidates(rows: pd.DataFrame) -> list[str]:
    """Predictors that replicated for a yes/no outcome, strongest (|std_effect|) first."""
    replicated = rows[rows["replicated"] & rows["outcome"].isin(BINARY_OUTCOMES)]
    if replicated.empty:
        return []
    strength = replicated["std_effect"].abs().groupby(replicated["predictor"]).max()
    return list(strength.sort_values(ascending=False, kind="stable").index)


def _overlaps(
    facts: pd.DataFrame, predictors: list[str], bins: dict, min_level_count: int
) -> pd.DataFrame:
    """Cramér's V between every pair of ``predictors`` across accounts (their tested levels:
    bins for numeric predictors, pooled levels otherwise)."""
    from scipy.stats.contingency import association

    codes = {}
    for name in predictors:
        if name in bins:
            labels = pd.Series(
                np.asarray(apply_bins(facts[name], bins[name])).astype(str), index=facts.index
            )
        else:
            labels = pool_rare_levels(facts[name], min_level_count)
        # Levels in sorted order, as the rows and columns of pd.crosstab.
        codes[name] = pd.factorize(labels, sort=True)
    rows = []
    for i, first in enumerate(predictors):
        for second in predictors[i + 1 :]:
            table = _crosstab(codes[first], codes[second])
            v = float(association(table, method="cramer")) if min(table.shape) > 1 else float("nan")
            rows.append({"predictor": first, "other": second, "cramers_v": v})
    return pd.DataFrame(rows, columns=["predictor", "other", "cramers_v"])


def _crosstab(
    first: tuple[np.ndarray, pd.Index], second: tuple[np.ndarray, pd.Index]
) -> np.ndarray:
    """Counts of ``pd.crosstab`` of two label columns without missing values, from their
    ``pd.factorize(..., sort=True)`` codes and levels."""
    (first_codes, first_levels), (second_codes, second_levels) = first, second
    shape = (len(first_levels), len(second_levels))
    cells = np.bincount(first_codes * shape[1] + second_codes, minlength=shape[0] * shape[1])
    return cells.reshape(shape)


def _drop_overlapping(
    ranked: list[str], overlaps: pd.DataFrame, threshold: float
) -> tuple[list[str], dict[str, tuple[str, float]]]:
    """Walk the candidates strongest first; drop one that overlaps a stronger kept one."""
    kept: list[str] = []
    dropped: dict[str, tuple[str, float]] = {}
    for name in ranked:
        pairs = overlaps[
            ((overlaps["predictor"] == name) & overlaps["other"].isin(kept))
            | ((overlaps["other"] == name) & overlaps["predictor"].isin(kept))
        ]
        strong = pairs[pairs["cramers_v"] >= threshold]
        if strong.empty:
            kept.append(name)
            continue
        top = strong.loc[strong["cramers_v"].idxmax()]
        other = top["other"] if top["predictor"] == name else top["predictor"]
        dropped[name] = (other, float(top["cramers_v"]))
    return kept, dropped


def _select_independent(
    frames: dict[str, OutcomeFrame],
    candidates: list[str],
    rows: pd.DataFrame,
    *,
    categorical: list[str],
    alpha: float,
    correction: str,
    min_level_count: int,
    model_scale: str,
    bins: dict,
) -> tuple[pd.DataFrame, dict[str, ModelResult], list[str]]:
    """Forward check per yes/no outcome over the candidates that replicated for it: each,
    strongest first, must add to the ones already kept (joint Wald test p < alpha).

    Returns the steps (one row per outcome x candidate), the final model per outcome, notes.
    """
    steps: list[dict] = []
    models: dict[str, ModelResult] = {}
    notes: list[str] = []
    replicated = rows[rows["replicated"]]
    for outcome, frame in frames.items():
        if outcome not in BINARY_OUTCOMES:
            continue
        own = set(replicated.loc[replicated["outcome"] == outcome, "predictor"])
        kept: list[str] = []
        final: ModelResult | None = None
        for predictor in [c for c in candidates if c in own]:
            step = {
                "outcome": outcome,
                "predictor": predictor,
                "given": ", ".join(kept),
                "test": "",
                "p_value": np.nan,
                "kept": False,
                "note": "",
            }
            try:
                model = _fit_check(
                    frame,
                    outcome,
                    [*kept, predictor],
                    categorical,
                    alpha,
                    correction,
                    min_level_count,
                    model_scale,
                    bins,
                )
            except _MODEL_ERRORS as error:
                step["note"] = f"not checked: {error}"
                steps.append(step)
                continue
            joint = model.tables["predictors"].set_index("predictor")
            if predictor not in joint.index:
                step["note"] = "not checked: the predictor does not vary here"
            elif model.params["regularized"]:
                # Cannot be tested; it stays in as a control, so that later candidates are still
                # judged next to it, but it is not confirmed.
                kept.append(predictor)
                final = model
                step["note"] = "not checked: " + (
                    "separation" if model.params["separation"] else "the fit did not converge"
                )
            else:
                p_value = float(joint.loc[predictor, "p_value"])
                step.update(test=joint.loc[predictor, "test"], p_value=p_value)
                if p_value < alpha:
                    kept.append(predictor)
                    final = model
                    step["kept"] = True
                else:
                    step["note"] = f"adds nothing once {_and(kept)} {_is(kept)} known"
            steps.append(step)
        if final is not None:
            models[outcome] = final
            notes += [f"Model of {outcome}: {c}" for c in final.caveats]
    columns = ["outcome", "predictor", "given", "test", "p_value", "kept", "note"]
    return pd.DataFrame(steps, columns=columns), models, notes


def _and(names: list[str]) -> str:
    if len(names) <= 1:
        return "".join(names)
    return ", ".join(names[:-1]) + " and " + names[-1]


def _is(names: list[str]) -> str:
    return "is" if len(names) == 1 else "are"


def _fit_check(
    frame: OutcomeFrame,
    outcome: str,
    predictors: list[str],
    categorical: list[str],
    alpha: float,
    correction: str,
    min_level_count: int,
    model_scale: str,
    bins: dict,
) -> ModelResult:
    """One multivariable model; numeric bins that separate the outcome are retried per
    doubling (a bin where every row has the same outcome has no finite odds ratio)."""
    kwargs = {
        "categorical": [p for p in predictors if p in categorical],
        "cluster": frame.cluster,
        "alpha": alpha,
        "correction": correction,
        "min_level_count": min_level_count,
    }
    model = multivariable_model(
        frame.data, outcome, predictors, numeric_scale=model_scale, bins=bins, **kwargs
    )
    numeric = [p for p in predictors if p not in categorical]
    if model.params["regularized"] and model_scale == "bins" and numeric:
        retry = multivariable_model(frame.data, outcome, predictors, numeric_scale="log2", **kwargs)
        if not retry.params["regularized"]:
            retry.caveats.insert(
                0,
                "Numeric predictors enter per doubling: in bins, "
                + ", ".join(model.params["separation"] or ["some level"])
                + " had only one outcome (separation).",
            )
            return retry
    return model


def _exploratory_won_model(
    result: SignificanceResult,
    frame: OutcomeFrame,
    discovery: PredictorResult,
    *,
    categorical: list[str],
    alpha: float,
    correction: str,
    min_level_count: int,
    model_scale: str,
    bins: dict,
) -> None:
    """Without a replicated shortlist, model the discovery shortlist of ``won`` (labelled)."""
    shortlist = discovery.shortlist("won")
    if not shortlist:
        return
    try:
        model = _fit_check(
            frame,
            "won",
            shortlist,
            categorical,
            alpha,
            correction,
            min_level_count,
            model_scale,
            bins,
        )
    except _MODEL_ERRORS as error:
        result.notes.append(f"Model of won not fitted: {error}")
        return
    model.caveats.insert(
        0,
        "Exploratory: these predictors were significant in the discovery period but did not "
        "replicate, so this model describes the data; it does not confirm anything.",
    )
    model.params["exploratory"] = True
    result.models["won"] = model


def _recommend(
    result: SignificanceResult,
    candidates: list[str],
    selection: pd.DataFrame,
    discovery: PredictorResult,
    max_characteristics: int,
    contract: dict | None = None,
) -> None:
    rows = result.summary
    contract = contract or {}
    confirmed: list[str] = []
    for predictor in candidates:
        steps = selection[selection["predictor"] == predictor]
        if steps["kept"].any():
            confirmed.append(predictor)
            continue
        reason = _not_independent_reason(predictor, steps)
        result.not_recommended.append({"predictor": predictor, "reason": reason})
    for predictor in confirmed[max_characteristics:]:
        result.not_recommended.append(
            {
                "predictor": predictor,
                "reason": f"replicated and independent, but only the {max_characteristics} "
                "strongest characteristics are recommended",
            }
        )
    for rank, predictor in enumerate(confirmed[:max_characteristics], start=1):
        own = rows[
            (rows["predictor"] == predictor)
            & rows["replicated"]
            & rows["outcome"].isin(BINARY_OUTCOMES)
            & ~_contract_rows(rows, contract)
        ]
        steps = selection[(selection["predictor"] == predictor) & selection["kept"]]
        significant = rows[
            (rows["predictor"] == predictor)
            & rows["significant"]
            & rows["outcome"].isin(DEFAULT_OUTCOMES)
            & ~_contract_rows(rows, contract)
        ]
        result.recommended.append(
            _characteristic(
                rank, predictor, own, steps, discovery, result.params, significant=significant
            )
        )
    listed = {item["predictor"] for item in result.not_recommended} | set(confirmed)
    significant = rows[rows["significant"]]
    for predictor, group in significant.groupby("predictor", sort=False):
        if predictor in listed:
            continue
        if predictor in contract and group["outcome"].isin(CONTRACT_OUTCOMES).all():
            reason = (
                f"a contract term ({contract[predictor]}): it makes up ARR, so it tells best "
                "customers apart by construction; reported as contract size, not as an ICP "
                "characteristic"
            )
        elif group["replicated"].any():
            reason = (
                "replicated only for "
                + ", ".join(sorted(set(group.loc[group["replicated"], "outcome"])))
                + ": a characteristic is recommended for predicting winning, retention or "
                "being a best customer (ARR mostly mirrors contract size)"
            )
        elif group["replication"].str.startswith("no confirmation data").all():
            outcomes = _and(sorted(set(group["outcome"])))
            reason = (
                f"significant for {outcomes} in the discovery period, but there is nothing in the "
                "holdout period to check it against"
            )
        elif group["replication"].str.contains(TOO_SMALL_TO_TELL, regex=False).all():
            reason = (
                "significant in the discovery period; not enough data in the latest quarters to "
                "confirm or refute it"
            )
        else:
            reason = "significant in the discovery period but did not hold in the latest quarters"
        result.not_recommended.append({"predictor": predictor, "reason": reason})


def _not_independent_reason(predictor: str, steps: pd.DataFrame) -> str:
    checked = steps[steps["p_value"].notna()]
    if checked.empty:
        notes = "; ".join(sorted(set(steps["note"]))) or "no model could be fitted"
        return f"replicated, but its independent effect could not be checked ({notes})"
    parts = [
        f"for {_PHRASES.get(row.outcome, row.outcome)} it adds nothing once "
        f"{row.given} {'are' if ',' in row.given else 'is'} known ({fmt_p_is(row.p_value)})"
        for row in checked.itertuples()
    ]
    return "replicated, but " + "; ".join(parts)


#: How a level that helps (first) or hurts (second) an outcome is said.
TRADE_OFF_WORDS = {
    "won": ("wins more", "wins less"),
    "retained": ("stays longer", "churns more"),
    "best_customer": ("more often a best customer", "less often a best customer"),
    "arr": ("pays more", "pays less"),
}


def trade_offs(rows: pd.DataFrame) -> list[dict]:
    """Levels (or bins) of one predictor that help one outcome and hurt another: ``level``,
    ``helps`` / ``hurts`` (outcomes), ``text`` ("pays more, wins less"), from ``rows``: the
    predictor's significant findings (any outcome, discovery period)."""
    out = []
    rows = rows[rows["kind"].isin(["level", "bin"]) & rows["std_effect"].notna()]
    for level, group in rows.groupby("level", sort=False):
        helps = list(dict.fromkeys(group.loc[group["std_effect"] > 0, "outcome"]))
        hurts = list(dict.fromkeys(group.loc[group["std_effect"] < 0, "outcome"]))
        if not helps or not hurts:
            continue
        order = {name: i for i, name in enumerate(("arr", "best_customer", "retained", "won"))}
        helps.sort(key=lambda o: order.get(o, 9))
        hurts.sort(key=lambda o: order.get(o, 9))
        words = [TRADE_OFF_WORDS.get(o, (f"better {o}",))[0] for o in helps]
        words += [TRADE_OFF_WORDS.get(o, ("", f"worse {o}"))[1] for o in hurts]
        out.append({"level": level, "helps": helps, "hurts": hurts, "text": ", ".join(words)})
    return out


def _characteristic(
    rank: int,
    predictor: str,
    rows: pd.DataFrame,
    steps: pd.DataFrame,
    discovery: PredictorResult,
    params: dict,
    significant: pd.DataFrame | None = None,
) -> dict:
    """One recommended characteristic. Each level keeps its direction per outcome; a level that
    helps one outcome and hurts another (``significant``: the predictor's significant findings
    of every outcome) is a trade-off, neither favoured nor avoided."""
    kind = "numeric" if predictor in params["numeric"] else "categorical"
    levels = []
    trend = None
    outcome_order = {name: i for i, name in enumerate(DEFAULT_OUTCOMES)}
    rows = rows.assign(
        _outcome=rows["outcome"].map(outcome_order), _strength=-rows["std_effect"].abs()
    ).sort_values(["_outcome", "_strength"])
    rows = _drop_mirrored(rows)
    for row in rows.itertuples():
        evidence = {
            "outcome": row.outcome,
            "effect_type": row.effect_type,
            "effect": row.effect,
            "ci_low": row.ci_low,
            "ci_high": row.ci_high,
            "q_value": row.q_value,
            "n": int(row.n),
            "effect_confirm": row.effect_confirm,
            "ci_low_confirm": row.ci_low_confirm,
            "ci_high_confirm": row.ci_high_confirm,
            "q_value_confirm": row.q_value_confirm,
            "n_confirm": int(row.n_confirm),
        }
        if row.kind == "trend":
            if trend is None:
                trend = {"direction": "higher" if row.std_effect > 0 else "lower", **evidence}
            continue
        low, high = _bin_bounds(discovery, row.outcome, predictor, row.level, row.kind)
        levels.append(
            {
                "level": row.level,
                "direction": "favour" if row.std_effect > 0 else "avoid",
                "low": low,
                "high": high,
                **evidence,
            }
        )
    if kind == "numeric":
        order = {label: i for i, label in enumerate(interval_labels(params["bins"][predictor]))}
        ordered = sorted(levels, key=lambda x: order.get(x["level"], len(order)))
    else:
        ordered = levels
    both = pd.concat([rows, significant]) if significant is not None else rows
    conflicts = trade_offs(both.drop_duplicates(["outcome", "level", "kind"]))
    mixed = {item["level"] for item in conflicts}
    favour = list(
        dict.fromkeys(
            x["level"] for x in ordered if x["direction"] == "favour" and x["level"] not in mixed
        )
    )
    avoid = list(
        dict.fromkeys(
            x["level"] for x in ordered if x["direction"] == "avoid" and x["level"] not in mixed
        )
    )
    outcomes = list(dict.fromkeys(rows["outcome"]))
    return {
        "rank": rank,
        "predictor": predictor,
        "kind": kind,
        "outcomes": outcomes,
        "favour": favour,
        "avoid": avoid,
        "trade_offs": conflicts,
        "levels": levels,
        "trend": trend,
        "independent": {row.outcome: row.p_value for row in steps.itertuples()},
        "evidence": _evidence_sentence(predictor, rows),
    }


def _bin_bounds(discovery, outcome, predictor, level, kind) -> tuple[float | None, float | None]:
    if kind != "bin" or level == MISSING:
        return None, None
    cuts = discovery.params["schemes"][outcome][predictor]["cuts"]
    labels = interval_labels(cuts)
    if level not in labels:
        return None, None
    i = labels.index(level)
    low = float(cuts[i - 1]) if i > 0 else None
    high = float(cuts[i]) if i < len(cuts) else None
    return low, high


def _evidence_sentence(predictor: str, rows: pd.DataFrame) -> str:
    best = next(iter(rows.itertuples()))
    what = _PHRASES.get(best.outcome, best.outcome)
    return (
        f"{_label(best)}: {_effect_ci_text(best)} for {what} in the discovery period "
        f"({int(best.n):,} {_UNITS.get(best.outcome, 'rows')}, q {_q(best.q_value)}); "
        f"{_effect_value(best, best.effect_confirm)} in the latest quarters "
        f"({int(best.n_confirm):,} {_UNITS.get(best.outcome, 'rows')}, "
        f"q {_q(best.q_value_confirm)})."
    )


def _predictor_summary(result: SignificanceResult, selection: pd.DataFrame) -> pd.DataFrame:
    discovery = result.discovery
    verdicts = discovery.tables["predictors"]
    rows = result.summary
    recommended = {item["predictor"] for item in result.recommended}
    # Each verdict's rows and selection steps, split once (same rows, same order) rather than
    # filtered from the whole tables per verdict.
    own_rows = dict(list(rows.groupby(["outcome", "predictor"], sort=False, dropna=False)))
    own_steps = (
        dict(list(selection.groupby(["outcome", "predictor"], sort=False, dropna=False)))
        if len(selection)
        else {}
    )
    out = []
    for verdict in verdicts.itertuples():
        key = (verdict.outcome, verdict.predictor)
        own = own_rows.get(key, rows.iloc[:0])
        tested = own[own["p_value"].notna()]
        strongest = (
            tested.loc[tested["std_effect"].abs().idxmax()]
            if tested["std_effect"].notna().any()
            else None
        )
        headline = tested[tested["kind"] == "trend"]
        if headline.empty:
            headline = tested[tested["kind"].isin(["level", "bin"])]
        powered = headline[~headline["underpowered"]]
        if not powered.empty:
            mde_row = powered.loc[powered["mde_std"].idxmax()]
        elif headline["mde_std"].notna().any():
            mde_row = headline.loc[headline["mde_std"].idxmin()]
        else:
            mde_row = None
        significant = own[own["significant"]]
        if significant.empty:
            replication = "not re-tested (not significant)"
        elif significant["replicated"].any():
            replication = "replicated"
        elif (significant["replication"].str.startswith("no confirmation data")).all():
            replication = "no confirmation data"
        elif significant["replication"].str.contains(TOO_SMALL_TO_TELL, regex=False).all():
            replication = "too little confirmation data to tell"
        else:
            replication = "did not replicate"
        steps = own_steps.get(key, selection.iloc[:0])
        independent = steps["kept"].any() if not steps.empty else np.nan
        out.append(
            {
                "outcome": verdict.outcome,
                "predictor": verdict.predictor,
                "kind": verdict.kind,
                "verdict": verdict.verdict,
                "n": verdict.n,
                "n_clusters": verdict.n_clusters,
                "test": verdict.test,
                "p_value": verdict.p_value,
                "q_value": verdict.q_value,
                "effect_size": verdict.effect_size,
                "effect_size_type": verdict.effect_size_type,
                "strongest_level": None if strongest is None else strongest["level"],
                "strongest_effect": np.nan if strongest is None else strongest["effect"],
                "strongest_effect_type": None if strongest is None else strongest["effect_type"],
                "strongest_q_value": np.nan if strongest is None else strongest["q_value"],
                "mde": np.nan if mde_row is None else mde_row["mde"],
                "mde_unit": "" if mde_row is None else mde_row["mde_unit"],
                "underpowered": verdict.verdict == "not enough data",
                "replicated": replication == "replicated",
                "replication": replication,
                "independent": independent,
                # Per row: recommended, and this outcome's finding is one of the reasons (a
                # characteristic recommended for winning is not "recommended" on its row of an
                # outcome it does not predict).
                "recommended": verdict.predictor in recommended and verdict.verdict == "predicts",
            }
        )
    return pd.DataFrame(out, columns=PREDICTOR_SUMMARY_COLUMNS)


def _behavioural(
    study: Study,
    frames: dict[str, OutcomeFrame],
    alpha: float,
    correction: str,
    n_bins: int,
    seed: int,
) -> PredictorResult | None:
    """Post-sale signals versus retention / best-customer status, all periods, own family."""
    signals = [
        c
        for c in study.attributes.behavioural
        if c in study.facts.columns and pd.api.types.is_numeric_dtype(study.facts[c])
    ]
    questions = {}
    for name in ("retained", "best_customer"):
        frame = frames.get(name)
        if frame is None or frame.data.empty:
            continue
        data = frame.data.drop(columns=[c for c in signals if c in frame.data.columns])
        data = data.merge(study.facts[["account_id", *signals]], on="account_id", how="left")
        questions[name] = data
    if not signals or not questions:
        return None
    return test_many(
        questions,
        numeric=signals,
        alpha=alpha,
        correction=correction,
        n_bins=n_bins,
        unit="customers",
        seed=seed,
    )


# ----------------------------------------------------------------------------------------------
# Sentences


def _findings(result: SignificanceResult, tested: list[OutcomeFrame]) -> list[str]:
    rows = result.summary
    findings: list[str] = []
    n_attributes = len(result.params["categorical"]) + len(result.params["numeric"])
    n_tests = result.discovery.params.get("n_hypotheses", 0)
    if result.recommended:
        names = _and([item["predictor"] for item in result.recommended])
        k = len(result.recommended)
        findings.append(
            f"{k} characteristic{'s' if k > 1 else ''} predict{'s' if k == 1 else ''} success, "
            f"held up in the latest quarters and keep{'s' if k == 1 else ''} an effect of "
            f"{'their' if k > 1 else 'its'} own next to the others: {names}. "
            f"{'They are' if k > 1 else 'It is'} recommended for the ICP."
        )
        findings += [_characteristic_sentence(item) for item in result.recommended]
    elif rows["significant"].any():
        why = _why_none(rows, result.params.get("contract"))
        findings.append("No characteristic can be recommended yet: " + why + ".")
    else:
        outcome_words = _or([_PHRASES.get(f.name, f.name) for f in tested])
        which = (
            "the one attribute tested does not predict"
            if n_attributes == 1
            else f"none of the {n_attributes} attributes predicts"
        )
        findings.append(
            f"No predictor stands out: {which} {outcome_words} after correcting for multiple "
            f"testing ({n_tests} tests)."
        )
    if rows["significant"].any():
        for frame in tested:
            if not rows.loc[rows["outcome"] == frame.name, "significant"].any():
                findings.append(
                    f"No predictor of {_PHRASES.get(frame.name, frame.name)} stands out after "
                    "correcting for multiple testing."
                )
    findings += _homogeneous_accounts(result, tested)
    for item in result.not_recommended:
        findings.append(f"Not recommended: {item['predictor']} ({item['reason']}).")
    findings += _null_findings(result)
    return findings


#: Columns of the ``emerging`` table (see :func:`_emerging`).
EMERGING_COLUMNS = [
    "outcome",
    "predictor",
    "level",
    "kind",
    "n",
    "rate_level",
    "rate_rest",
    "effect",
    "effect_type",
    "ci_low",
    "ci_high",
    "p_value",
    "q_value",
]


def _emerging(
    tested: list[OutcomeFrame], found: pd.DataFrame, testing: dict, contract=()
) -> pd.DataFrame:
    """Effects of the confirmation quarters alone, for attributes that were not significant in
    discovery: a market shift ("companies with 500+ employees win 2x since April") is diluted in
    the years before it, so discovery does not find it and nothing re-tests it.

    Every level and bin is tested on the confirmation rows with the options of discovery
    (``testing``: the same bins), one family per outcome corrected as in discovery, and Bonferroni over the outcomes screened (a null
    export shows one in at most ``alpha`` of runs). Hypotheses to confirm next quarter, never
    rules: what the confirmation quarters suggest cannot also be confirmed on them.
    """
    frames = {
        f.name: (f.confirmation, f.cluster)
        for f in tested
        if len(f.confirmation) and f.name in OUTCOMES_SCREENED
    }
    empty = pd.DataFrame(columns=EMERGING_COLUMNS)
    if not frames:
        return empty
    alpha = testing["alpha"]
    try:
        latest = test_many(frames, **testing)
    except (InputError, NotEnoughData, ValueError, KeyError):
        return empty
    rows = latest.summary
    if rows.empty:
        return empty
    rows = rows[rows["kind"].isin(["level", "bin"])]
    rows = rows[pd.to_numeric(rows["q_value"], errors="coerce") < alpha / len(frames)]
    known = set()
    if found is not None and len(found):
        hits = found[found["significant"].astype(bool)]
        known = set(zip(hits["outcome"], hits["predictor"], strict=True))
    keep = np.array(
        [
            (o, p) not in known and p not in dict(contract)
            for o, p in zip(rows["outcome"], rows["predictor"], strict=True)
        ],
        dtype=bool,
    )
    rows = rows[keep]
    return rows[[c for c in EMERGING_COLUMNS if c in rows.columns]].reset_index(drop=True)


#: Outcomes screened for effects of the latest quarters alone (those a quarter changes).
OUTCOMES_SCREENED = ("won", "retained")


def _emerging_findings(table: pd.DataFrame, tested: list[OutcomeFrame], alpha: float) -> list[str]:
    """One sentence per effect of the latest quarters alone (see :func:`_emerging`)."""
    from icp_research.methods.predictors import _fmt_effect, _fmt_q, _level_label

    if table is None or table.empty:
        return []
    units = {f.name: f.unit for f in tested}
    out = []
    # One sentence per attribute and outcome: its clearest level (the others mirror it).
    clearest = table.sort_values("q_value").drop_duplicates(["outcome", "predictor"])
    for row in clearest.itertuples():
        label = _level_label(row.predictor, row.level, row.kind)
        rates = (
            f"{row.rate_level:.0%} vs {row.rate_rest:.0%}"
            if np.isfinite(row.rate_level) and np.isfinite(row.rate_rest)
            else ""
        )
        effect = (
            f"{str(row.effect_type).replace('_', ' ')} {_fmt_effect(row.effect)} "
            f"({_fmt_effect(row.ci_low)}–{_fmt_effect(row.ci_high)})"
        )
        out.append(
            f"Emerging, not confirmed: {label} and "
            f"{_PHRASES.get(row.outcome, row.outcome)} in the confirmation quarters alone "
            f"({rates + '; ' if rates else ''}{effect}; {int(row.n):,} "
            f"{units.get(row.outcome, 'rows')} in the level; {_fmt_q(row.q_value)}, below "
            f"alpha over the outcomes screened). It was not significant in the years before, "
            "where a recent change is diluted: a hypothesis to confirm on next quarter's data, "
            "not a rule."
        )
    return out


def _homogeneous_accounts(result: SignificanceResult, tested: list[OutcomeFrame]) -> list[str]:
    """When deals of different accounts succeed at about the same rate, say so: then no
    account characteristic has much to explain."""
    rows = result.summary
    sentences = []
    for frame in tested:
        info = result.discovery.params["outcomes"][frame.name]
        # No cluster count (a continuous outcome compared row by row, its groups of linked
        # accounts screened): nothing measured how much accounts differ.
        if not frame.cluster or not info.get("n_clusters") or info.get("icc", 1.0) >= 0.02:
            continue
        if rows.loc[rows["outcome"] == frame.name, "significant"].any():
            continue
        if info["n"] < 2 * max(info["n_clusters"], 1):
            # With about one deal per account, how much accounts differ cannot be told from
            # chance at all: nothing to say (and no reason to say traits don't matter).
            continue
        per = f"{info['n'] / max(info['n_clusters'], 1):.0f}"
        unit = frame.unit[:-1] if per == "1" and frame.unit.endswith("s") else frame.unit
        sentences.append(
            f"Accounts barely differ in how often their {frame.unit} succeed (intra-account "
            f"correlation {info['icc']:.2f}): the spread between accounts is about what chance "
            f"gives with {per} {unit} each, so "
            "there is little for any account characteristic to explain."
        )
    return sentences


def _why_none(rows: pd.DataFrame, contract=None) -> str:
    everything = _drop_mirrored(rows[rows["significant"]])
    size = _contract_rows(everything, contract)
    significant = everything[~size]
    status = significant["replication"]
    no_data = status.str.startswith("no confirmation data")
    replicated = significant["replicated"]
    parts = [
        f"{len(everything)} finding{'s' if len(everything) != 1 else ''} "
        f"{'were' if len(everything) != 1 else 'was'} significant in the earlier period"
    ]
    if size.any():
        names = _and(list(dict.fromkeys(everything.loc[size, "predictor"])))
        parts.append(f"{int(size.sum())} are contract size ({names}), not traits")
    too_small = status.str.contains(TOO_SMALL_TO_TELL, regex=False)
    failed = int((~replicated & ~no_data & ~too_small).sum())
    if failed:
        parts.append(f"{failed} did not hold in the latest quarters")
    if too_small.any():
        parts.append(
            f"{int(too_small.sum())} could not be confirmed: the latest quarters hold too little "
            "data to tell (not enough data, not a failure)"
        )
    if no_data.any():
        outcomes = _and(sorted(set(significant.loc[no_data, "outcome"])))
        parts.append(
            f"{int(no_data.sum())} could not be checked (no {outcomes} rows in the holdout period)"
        )
    if replicated.any():
        parts.append(
            f"{int(replicated.sum())} replicated but concern ARR only or add nothing to the others"
        )
    return "; ".join(parts)


def _or(names: list[str]) -> str:
    if len(names) <= 1:
        return "".join(names)
    return ", ".join(names[:-1]) + " or " + names[-1]


_GOALS = {
    "won": "winning deals",
    "retained": "retention",
    "best_customer": "best-customer status",
    "arr": "ARR",
}


def _characteristic_sentence(item: dict) -> str:
    """'employees: favour >= 600 for best-customer status; avoid < 60 for winning deals,
    retention and best-customer status. <evidence>': each recommendation names the outcome it
    was found for, since the outcomes can favour different levels (the ICP picks one)."""
    parts = []
    for direction in ("favour", "avoid"):
        if not item[direction]:
            continue
        levels_of: dict[str, list[str]] = {}
        for level in item.get("levels", []):
            if level.get("direction") == direction and level.get("outcome"):
                levels_of.setdefault(level["outcome"], []).append(level.get("level"))
        # Outcomes that favour (avoid) the same levels share one clause.
        groups: dict[tuple, list[str]] = {}
        for outcome, levels in levels_of.items():
            ordered = tuple(lv for lv in item[direction] if lv in levels)
            if ordered:
                groups.setdefault(ordered, []).append(_GOALS.get(outcome, str(outcome)))
        if not groups:
            parts.append(f"{direction} {', '.join(item[direction])}")
            continue
        parts.append(
            f"{direction} "
            + ", and ".join(f"{', '.join(lv)} for {_and(goals)}" for lv, goals in groups.items())
        )
    if item["trend"] is not None and not parts:
        parts.append(f"{item['trend']['direction']} values are better")
    for trade in item.get("trade_offs", []):
        parts.append(
            f"{trade['level']} is a trade-off ({trade['text']}): neither favoured nor avoided"
        )
    return f"{item['predictor']}: {'; '.join(parts)}. {item['evidence']}"


def _null_findings(result: SignificanceResult) -> list[str]:
    summary = result.tables["predictor_summary"]
    sentences = []
    for outcome, group in summary.groupby("outcome", sort=False):
        quiet = group[group["verdict"] == "no evidence"]
        if not quiet.empty:
            detectable = [
                f"{row.predictor} ({_mde_phrase(row.mde, row.mde_unit)})"
                for row in quiet.itertuples()
            ]
            sentences.append(
                f"No evidence that {', '.join(quiet['predictor'])} "
                f"predict{'s' if len(quiet) == 1 else ''} {_PHRASES.get(outcome, outcome)}; "
                f"effects larger than these would likely have been detected: "
                f"{'; '.join(detectable)}."
            )
        thin = group[group["verdict"] == "not enough data"]
        if not thin.empty:
            sentences.append(
                f"Too little data to tell whether {', '.join(thin['predictor'])} "
                f"predict{'s' if len(thin) == 1 else ''} {_PHRASES.get(outcome, outcome)} "
                "(only very large effects were detectable)."
            )
    return sentences


def _caveats(
    result: SignificanceResult, tested: list[OutcomeFrame], skip_caveats: list[str]
) -> list[str]:
    caveats = list(skip_caveats)
    params = result.discovery.params
    for frame in tested:
        info = params["outcomes"][frame.name]
        if frame.cluster and info.get("n_clusters"):
            per_account = info["n"] / info["n_clusters"]
            caveats.append(
                f"{frame.name}: {info['n']:,} {frame.unit} from {info['n_clusters']:,} accounts "
                f"in the discovery period ({per_account:.1f} per account; intra-account "
                f"correlation {info['icc']:.2f}). Deals of one account are not independent, so "
                "every test counts accounts, not deals, as the independent units."
            )
            if frame.confirmation is not None and not frame.confirmation.empty:
                later = frame.confirmation[frame.cluster].drop_duplicates()
                seen = int(later.isin(frame.discovery[frame.cluster]).sum())
                caveats.append(
                    f"{frame.name}: {seen:,} of the {len(later):,} accounts with {frame.unit} in "
                    "the holdout period also had some in the discovery period; for them, "
                    "replication shows that a pattern persisted, not that it carries over to "
                    "new accounts."
                )
            if info["n_clusters"] < 100:
                caveats.append(
                    f"{frame.name}: only {info['n_clusters']} accounts: most of the evidence is "
                    "about these accounts, and levels seen at fewer than "
                    f"{params['min_level_clusters']} accounts cannot be tested at all."
                )
    label = {"fdr_bh": "Benjamini-Hochberg", "holm": "Holm"}.get(
        params["correction"], params["correction"]
    )
    summary = result.discovery.summary if result.discovery is not None else pd.DataFrame()
    if len(summary) and {"outcome", "hypothesis_id", "p_value"} <= set(summary.columns):
        tested_rows = summary[summary["p_value"].notna()]
        sizes = tested_rows.groupby("outcome", sort=False)["hypothesis_id"].nunique()
        families = ", ".join(f"{_PHRASES.get(o, o)} {n:,}" for o, n in sizes.items())
        families = f" ({families})"
    else:
        families = ""
    caveats.append(
        f"{label} correction within each outcome's family of tests, every level, bin and trend "
        f"of that outcome{families}: findings about one outcome do not loosen the threshold "
        f"for another; 'significant' means q < {params['alpha']:g}."
    )
    holdout = [f for f in tested if f.confirm_from is not None]
    if holdout:
        periods = "; ".join(
            f"{f.name} by {f.split_on} from {f.confirm_from:%Y-%m-%d} "
            f"({len(f.confirmation):,} {f.unit})"
            for f in holdout
        )
        caveats.append(
            f"Discovery on the earlier period, confirmation on the latest "
            f"{result.params['holdout_quarters']} quarters ({periods}); findings are re-tested "
            "one-sided in their discovered direction and only those that replicate are "
            "recommended."
        )
    else:
        caveats.append(
            "No holdout period, so no finding could be confirmed out of sample and none is "
            "recommended."
        )
    if any(f.name == "retained" for f in tested):
        caveats.append(
            f"Retention is measured over each customer's first "
            f"{result.params['retention_months']} months, among customers who have had that "
            "long; the churn report analyses the full time to churn (survival)."
        )
    return caveats


def _conclusions(
    result: SignificanceResult, tested: list[OutcomeFrame], skipped: list[OutcomeFrame]
) -> list[str]:
    lines = []
    if result.recommended:
        names = ", ".join(item["predictor"] for item in result.recommended)
        lines.append(
            f"We can say that {names} {'goes' if len(result.recommended) == 1 else 'go'} with "
            "success beyond chance: each was significant after "
            "correcting for every test, held in data the discovery never saw, and kept an "
            "effect of its own next to the others."
        )
    else:
        lines.append(
            "We cannot name a characteristic that reliably predicts success in this data: "
            "nothing both survived the multiple-testing correction and held in the latest "
            "quarters."
        )
    lines.append(
        "We cannot say that these characteristics cause success. They describe who wins and "
        "stays; a characteristic may stand in for something not in the data (budget, "
        "urgency, a sales team's focus)."
    )
    lines.append(
        "'No evidence' is not 'no effect': a predictor without a finding may still have an "
        "effect smaller than the detectable one shown in the power table."
    )
    for frame in tested:
        info = result.discovery.params["outcomes"][frame.name]
        if frame.cluster and info.get("n_clusters") and info["n_clusters"] < 100:
            lines.append(
                f"With {info['n']:,} deals but only {info['n_clusters']} accounts, the data "
                "supports statements about accounts' traits only as far as "
                f"{info['n_clusters']} accounts can: account-level differences (industry, "
                "size, country) are judged on accounts, and a trait shared by a handful of "
                "accounts cannot be told apart from those accounts' own luck."
            )
    for frame in skipped:
        lines.append(f"We cannot assess {_PHRASES.get(frame.name, frame.name)}: {frame.skipped}.")
    if result.behavioural is not None and result.behavioural.summary["significant"].any():
        lines.append(
            "Usage and NPS differ between good and other customers, but they are measured after "
            "the sale (and partly because of it): they describe good customers, they cannot "
            "score prospects."
        )
    regularized = [o for o, m in result.models.items() if m.params.get("regularized")]
    if regularized:
        lines.append(
            "The model of " + ", ".join(regularized) + " could not be estimated normally "
            "(separation): some levels had only one outcome, so its odds ratios are directions."
        )
    return lines


# ----------------------------------------------------------------------------------------------
# Formatting


# Outcomes that contract terms make up: a contract term is never evidence for them.
CONTRACT_OUTCOMES = ("best_customer", "arr")


def _contract_rows(rows: pd.DataFrame, contract) -> pd.Series:
    """Rows that test a contract term against best-customer status or ARR."""
    return rows["predictor"].isin(list(contract or {})) & rows["outcome"].isin(CONTRACT_OUTCOMES)


def _contract_findings(result: SignificanceResult, study: Study) -> list[str]:
    """The contract-size finding: contract terms that go with best-customer status or ARR."""
    contract = result.params.get("contract") or {}
    rows = result.summary
    found = rows[_contract_rows(rows, contract) & rows["significant"]]
    if found.empty:
        return []
    names = list(dict.fromkeys(found["predictor"]))
    share = float(study.analysis.get("best_customer_top_share", 0.2))
    metric = str(study.analysis.get("best_customer_metric", "arr"))
    metric = "ARR" if metric == "arr" else metric.replace("_", " ")
    return [
        f"Contract size: {_and(names)} {_is(names)} part of the contract, not "
        f"{'a trait' if len(names) == 1 else 'traits'} of the company "
        f"({'; '.join(f'{n}: {contract[n]}' for n in names)}), and "
        f"{'goes' if len(names) == 1 else 'go'} with best-customer status (top {share:.0%} by "
        f"{metric}) or ARR. A bigger contract is worth more by definition, so "
        f"{'it is' if len(names) == 1 else 'they are'} reported as contract size, not used as "
        "ICP characteristics of best customers."
    ]


def _drop_mirrored(rows: pd.DataFrame) -> pd.DataFrame:
    """Of the two rows of a two-level split (one hypothesis), keep the one above the null."""
    if rows.empty:
        return rows
    key = rows["outcome"].astype(str) + "|" + rows["hypothesis_id"].astype(str)
    pairs = key.map(key.value_counts())
    return rows[(pairs == 1) | (rows["std_effect"] > 0)]


def _label(row) -> str:
    """A finding in words for people: "Accounts with no CRM", "Accounts with 100–249
    employees", "employees (trend)"; the code form (``crm = None``) stays in the CSV files."""
    from icp_research.analyses.blueprint.conditions import level_condition
    from icp_research.analyses.blueprint.statement import condition_words

    if row.kind == "trend":
        return f"{row.predictor} {TREND}"
    condition = level_condition(row.predictor, row.level, row.kind)
    if condition is None:
        return (
            f"{row.predictor} = {row.level}"
            if row.kind == "level"
            else f"{row.predictor} {row.level}"
        )
    return f"Accounts {condition_words(condition)}"


def _fmt_ratio(x) -> str:
    if x is None or not np.isfinite(x):
        return "∞" if x is not None and np.isposinf(x) else "–"
    if abs(x) >= 100:
        return f"{x:,.0f}"
    if abs(x) >= 10:
        return f"{x:.1f}"
    return f"{x:.2f}"


def _q(q) -> str:
    text = fmt_p(q)
    return f"< {text[1:]}" if text.startswith("<") else f"= {text}"


def _effect_ci_text(row) -> str:
    unit = _EFFECT_WORDS.get(row.effect_type, "")
    effect = _fmt_ratio(row.effect) if row.effect_type in RATIO_EFFECTS else f"{row.effect:+.2f}"
    if row.effect_type not in RATIO_EFFECTS:
        unit = f" ({row.effect_type.replace('_', ' ')})"
    if np.isfinite(row.ci_low) and np.isfinite(row.ci_high):
        ci = f" ({_fmt_ratio(row.ci_low)}–{_fmt_ratio(row.ci_high)})"
    else:
        ci = " (no interval)"
    return f"{effect}{unit}{ci}"


def _effect_value(row, value) -> str:
    if row.effect_type in RATIO_EFFECTS:
        return f"{_fmt_ratio(value)}x"
    return f"{value:+.2f}"


def _effect_text(row) -> str:
    label = row.level if row.kind != "trend" else "trend"
    effect = _fmt_ratio(row.effect) if row.effect_type in RATIO_EFFECTS else f"{row.effect:+.2f}"
    suffix = "x" if row.effect_type in RATIO_EFFECTS else ""
    ci = (
        f" ({_fmt_ratio(row.ci_low)}–{_fmt_ratio(row.ci_high)})"
        if np.isfinite(row.ci_low) and np.isfinite(row.ci_high)
        else ""
    )
    return f"{label} {effect}{suffix}{ci}"


def _rates_text(row) -> str:
    if row.kind == "trend" or not np.isfinite(row.rate_level):
        return "–"
    if row.outcome == "arr":
        return f"{_money(row.rate_level)} vs {_money(row.rate_rest)}"
    return f"{row.rate_level:.0%} vs {row.rate_rest:.0%}"


def _money(x: float) -> str:
    from icp_research.formatting import fmt_money

    return fmt_money(x)


def _confirmation_text(row) -> str:
    if not row.significant:
        return ""
    if not np.isfinite(row.p_value_confirm if row.p_value_confirm is not None else np.nan):
        return row.replication
    effect = (
        _fmt_ratio(row.effect_confirm)
        if row.effect_type in RATIO_EFFECTS
        else f"{row.effect_confirm:+.2f}"
    )
    return f"{effect} (n={int(row.n_confirm):,}, q {_q(row.q_value_confirm)})"


def _n_text(row, clusters: str = "accounts") -> str:
    n = int(row.n) if np.isfinite(row.n) else 0
    unit = _UNITS.get(row.outcome, "rows")
    if row.n_clusters is not None and np.isfinite(row.n_clusters) and unit == "deals":
        return f"{n:,} deals / {int(row.n_clusters):,} {clusters}"
    return f"{n:,} {unit}"


def _mde_phrase(mde, unit) -> str:
    if mde is None or not np.isfinite(mde):
        return "–"
    if unit == "rate_diff":
        return f"±{100 * mde:.0f} points"
    if unit == "median_ratio":
        return f"{mde:.2f}x the median either way"
    if unit == "rank_biserial":
        return f"rank-biserial ±{mde:.2f}"
    if unit == "spearman_rho":
        return f"Spearman ±{mde:.2f}"
    return f"{mde:.2g}"


# ----------------------------------------------------------------------------------------------
# Plot


def plot_replication(
    result: SignificanceResult,
    *,
    outcome: str | None = None,
    max_rows: int = 25,
    ax=None,
):
    """Forest plot of the significant findings of one outcome: the discovery effect and its
    interval (circle) above the confirmation effect (square), replicated findings in blue.

    Ratio effects only (odds ratios; ratios of medians for ARR), on a log scale around 1.
    ``outcome`` defaults to :attr:`SignificanceResult.forest_outcome`. Shows at most ``max_rows`` findings,
    replicated first, then the strongest. Returns the Axes.
    """
    import matplotlib.pyplot as plt
    from matplotlib import ticker
    from matplotlib.lines import Line2D

    outcome = outcome or result.forest_outcome or result.primary_outcome
    rows = result.summary
    if not rows.empty:
        rows = rows[
            rows["significant"]
            & (rows["outcome"] == outcome)
            & rows["effect_type"].isin(RATIO_EFFECTS)
            & np.isfinite(rows["effect"].astype(float))
        ]
        rows = _drop_mirrored(rows)
    if ax is None:
        _, ax = plt.subplots(figsize=(8, 0.42 * max(len(rows) if len(rows) else 0, 3) + 1.4))
    if rows.empty:
        ax.text(
            0.5,
            0.5,
            f"No significant finding for {outcome}",
            ha="center",
            va="center",
            transform=ax.transAxes,
        )
        ax.set_axis_off()
        return ax
    rows = rows.assign(_strength=-rows["std_effect"].abs())
    rows = rows.sort_values(["replicated", "_strength"], ascending=[False, True]).head(max_rows)
    rows = rows.sort_values("effect")
    values = np.concatenate(
        [
            rows[c].to_numpy(dtype=float)
            for c in (
                "effect",
                "ci_low",
                "ci_high",
                "effect_confirm",
                "ci_low_confirm",
                "ci_high_confirm",
            )
        ]
    )
    finite = values[np.isfinite(values) & (values > 0)]
    edge_low, edge_high = (finite.min() / 1.5, finite.max() * 1.5) if finite.size else (0.1, 10)

    def clip(x):
        x = np.asarray(x, dtype=float)
        return np.clip(np.where(np.isfinite(x) & (x > 0), x, np.nan), edge_low, edge_high)

    positions = np.arange(len(rows))
    for y, row in zip(positions, rows.itertuples(), strict=True):
        colour = "tab:blue" if row.replicated else "tab:gray"
        lo, e, hi = clip([row.ci_low, row.effect, row.ci_high])
        if np.isfinite(lo) and np.isfinite(hi):
            ax.plot([lo, hi], [y + 0.15, y + 0.15], color=colour, linewidth=1.5)
        ax.plot([e], [y + 0.15], "o", color=colour)
        lo, e, hi = clip([row.ci_low_confirm, row.effect_confirm, row.ci_high_confirm])
        if np.isfinite(e):
            if np.isfinite(lo) and np.isfinite(hi):
                ax.plot([lo, hi], [y - 0.15, y - 0.15], color=colour, linewidth=1, alpha=0.7)
            ax.plot([e], [y - 0.15], "s", color=colour, markerfacecolor="white")
    ax.axvline(1.0, color="black", linewidth=0.8, linestyle="--")
    ax.set_xscale("log")
    ax.xaxis.set_major_locator(ticker.LogLocator(base=10, subs=(1.0, 2.0, 5.0)))
    ax.xaxis.set_major_formatter(ticker.FuncFormatter(lambda value, _: f"{value:g}"))
    ax.xaxis.set_minor_formatter(ticker.NullFormatter())
    ax.set_yticks(positions)
    ax.set_yticklabels([_label(r) for r in rows.itertuples()])
    ax.set_ylim(-0.7, len(rows) - 0.3)
    effect_name = "ratio of medians" if outcome == "arr" else "odds ratio"
    level = 100 * (1 - float(result.params.get("alpha", 0.05)))
    ax.set_xlabel(f"{effect_name} vs the rest ({level:.0f}% CI; log scale)")
    ax.set_title(f"{outcome}: discovery (circle) and latest quarters (square)")
    ax.legend(
        handles=[
            Line2D([], [], color="tab:blue", marker="o", label="replicated"),
            Line2D([], [], color="tab:gray", marker="o", label="not replicated"),
        ],
        loc="upper left",
        bbox_to_anchor=(1.01, 1.0),
        fontsize="small",
    )
    return ax


def save_artifacts(study: Study, result: SignificanceResult) -> list[Path]:
    """Write ``predictors``, ``predictor_summary`` and ``icp_predictors`` (declared in the
    registry; the blueprint reads them back) and the result."""
    written = study.save_artifact(registry.PREDICTORS, result.summary)
    written += study.save_artifact(registry.PREDICTOR_SUMMARY, result.tables["predictor_summary"])
    written += study.save_artifact(registry.ICP_PREDICTORS, result.to_json())
    study.save_result(result, "significance")
    return written
