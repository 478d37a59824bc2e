"""Samples: the rows each outcome's evidence is measured on, split in time into the training
period and the holdout (the latest quarters)."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np
import pandas as pd

from icp_research.analyses.blueprint.text import OUTCOME_WORDS
from icp_research.data.facts import with_traits
from icp_research.data.study import Study

#: Outcomes the blueprint can be built on (yes/no outcomes of the significance analysis).
OUTCOMES = ("won", "retained", "best_customer")


@dataclass
class Sample:
    """One outcome's rows (attributes + ``y``, or ``events`` / ``exposure`` for churn), split
    into the training period and the holdout (the latest quarters)."""

    outcome: str
    unit: str
    kind: str  # "rate" (a yes/no per row) or "churn" (events per customer-year)
    training: pd.DataFrame
    holdout: pd.DataFrame
    clustered: bool
    definition: str = ""
    split_on: str = ""
    holdout_from: pd.Timestamp | None = None
    # The column of the independent unit when ``clustered``: the account, or the group of
    # linked accounts it belongs to (:meth:`icp_research.data.study.Study.cluster_ids`).
    cluster: str = "account_id"

    def release_rows(self) -> None:
        """Drop the rows, keep the columns and dtypes: for when every measurement on them is
        made and what comes next needs the memory (at 10M deals they are gigabytes)."""
        self.training = self.training.iloc[0:0].copy()
        self.holdout = self.holdout.iloc[0:0].copy()

    @property
    def words(self) -> tuple[str, str, str]:
        return OUTCOME_WORDS.get(self.outcome, (self.outcome, self.outcome, self.unit))


class Samples(dict):
    """``{outcome: Sample}``, with ``skipped``: ``{outcome: why it has no sample}``."""

    def __init__(self, *args, **kwargs):
        super().__init__(*args, **kwargs)
        self.skipped: dict[str, str] = {}


def holdout_start(as_of: pd.Timestamp, quarters: int) -> pd.Timestamp:
    """The first day of the latest ``quarters`` quarters up to ``as_of`` (its own included)."""
    return (pd.Period(as_of, "Q") - (quarters - 1)).start_time


def outcome_samples(study: Study, attributes: Sequence[str], holdout_quarters: int) -> dict:
    """Every outcome the data can measure: won / retained / best_customer (from
    :func:`icp_research.analyses.significance.outcome_frames`), 'no decision' among lost deals,
    churn."""
    from icp_research.analyses.significance import DEAL_AMOUNT, outcome_frames

    samples = Samples()
    frames = outcome_frames(
        study,
        outcomes=OUTCOMES,
        predictors=list(attributes),
        holdout_quarters=max(int(holdout_quarters), 1),
    )
    for frame in frames:
        if frame.skipped or frame.discovery is None:
            samples.skipped[frame.name] = (
                frame.skipped or "no rows before the confirmation quarters"
            )
            continue
        parts = []
        for part in (frame.discovery, frame.confirmation):
            part = part.copy(deep=False)  # new columns, not a copy of the others
            part["y"] = part[frame.name].astype(float)
            if frame.name == "won" and DEAL_AMOUNT in part:  # the deal's, not an attribute
                part["amount"] = part.pop(DEAL_AMOUNT).astype(float)
            parts.append(part)
        samples[frame.name] = Sample(
            frame.name,
            frame.unit,
            "rate",
            parts[0],
            parts[1],
            clustered=frame.cluster is not None,
            cluster=frame.cluster or "account_id",
            definition=frame.definition,
            split_on=frame.split_on,
            holdout_from=frame.confirm_from,
        )
    holdout_from = holdout_start(study.as_of, max(int(holdout_quarters), 1))
    deals = study.deals
    if len(deals) and "no_decision" in deals.columns:
        # The won sample's columns and the attributes, then the rows: not a copy of every deal
        # column (at 10M deals that is gigabytes per sample).
        keep = ["opportunity_id", "account_id", "created_at", "closed_at", "amount", "won"]
        keep += ["no_decision", *attributes]
        lost = deals.loc[
            deals["is_new_business"].astype(bool)
            & deals["is_closed"].astype(bool)
            & with_traits(deals)
            & ~deals["won"].fillna(True).astype(bool),
            [c for c in dict.fromkeys(keep) if c in deals.columns],
        ]
        if len(lost) and lost["no_decision"].notna().any():
            lost["y"] = lost["no_decision"].astype(float)
            lost, cluster = study.with_groups(lost)
            closed = pd.to_datetime(lost["closed_at"])
            samples["no_decision"] = Sample(
                "no_decision",
                "lost deals",
                "rate",
                lost[closed < holdout_from],
                lost[closed >= holdout_from],
                clustered=True,
                cluster=cluster,
                definition="lost new-business deals: ended in 'no decision' (True) or not",
                split_on="closed_at",
                holdout_from=holdout_from,
            )
    churn = _churn_sample(study, holdout_from)
    if churn is not None:
        samples["churn"] = churn
    return samples


def _churn_sample(study: Study, holdout_from: pd.Timestamp) -> Sample | None:
    if not study.churn_measured:
        return None
    facts = study.facts
    customers = facts[
        facts["is_customer"].fillna(False).astype(bool)
        & facts["customer_since"].notna()
        & facts["churned"].notna()  # churn unknown: neither a churn nor exposure
    ]
    if customers.empty:
        return None
    start = pd.to_datetime(customers["customer_since"])
    churned = customers["churned"].fillna(False).astype(bool).to_numpy()
    churned_at = pd.to_datetime(customers["churned_at"])
    end = churned_at.where(churned, study.as_of).fillna(study.as_of)
    day = pd.Timedelta(days=365.25)
    parts = []
    when = churned_at.to_numpy()
    for low, high, last in ((start.min(), holdout_from, False), (holdout_from, study.as_of, True)):
        begin = start.clip(lower=low)
        finish = end.clip(upper=high)
        exposure = ((finish - begin) / day).clip(lower=0).to_numpy(dtype=float)
        before_end = when <= np.datetime64(high) if last else when < np.datetime64(high)
        events = churned & (when >= np.datetime64(low)) & before_end
        part = customers.copy(deep=False)  # new columns, not a copy of the others
        part["exposure"] = exposure
        part["events"] = events.astype(float)
        parts.append(part[part["exposure"] > 0])
    return Sample(
        "churn",
        "customers",
        "churn",
        parts[0],
        parts[1],
        clustered=False,
        definition="customers: churns per customer-year while a customer",
        split_on="customer-time",
        holdout_from=holdout_from,
    )
