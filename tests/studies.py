"""Small studies built in memory, with a known truth, for the churn and lost-deal tests."""

from __future__ import annotations

import numpy as np
import pandas as pd

from icp_research.data.config import Config
from icp_research.data.loading import AttributeSpec, Dataset, ValidationReport
from icp_research.data.study import Study

AS_OF = pd.Timestamp("2026-06-30")
DAYS_PER_MONTH = 365.25 / 12


def make_study(tables: dict, *, categorical=(), numeric=(), as_of=AS_OF, analysis=None) -> Study:
    """A Study over canonical tables held in memory."""
    config = Config(path=None, project_name="test")
    config.analysis.update(analysis or {})
    spec = AttributeSpec(list(categorical), list(numeric))
    return Study(Dataset(config, tables, ValidationReport(), spec), as_of=as_of)


def churn_tables(
    rng,
    n: int = 600,
    *,
    hazard_ratio_bad: float = 3.0,
    monthly_hazard: float = 0.02,
    churn: bool = True,
) -> dict:
    """Accounts that all became customers in the two years before AS_OF.

    ``tier`` = "bad" (a quarter of the accounts) churns ``hazard_ratio_bad`` times as fast and
    mostly for "Price"; ``color`` and ``employees`` have no effect. With ``churn=False`` nobody
    churns (every subscription is active).
    """
    ids = [f"A{i:04d}" for i in range(n)]
    tier = np.where(rng.random(n) < 0.25, "bad", "good")
    color = rng.choice(["red", "green", "blue"], n)
    employees = np.round(np.exp(rng.normal(5, 1, n)))
    start = AS_OF - pd.to_timedelta(rng.uniform(30, 730, n).round(), unit="D")
    hazard = monthly_hazard * np.where(tier == "bad", hazard_ratio_bad, 1.0)
    months_to_churn = rng.exponential(1 / hazard)
    churn_at = start + pd.to_timedelta((months_to_churn * DAYS_PER_MONTH).round(), unit="D")
    churned = np.asarray(churn_at <= AS_OF) if churn else np.zeros(n, bool)
    accounts = pd.DataFrame(
        {
            "account_id": ids,
            "tier": tier,
            "color": color,
            "employees": employees,
            "created_at": start - pd.Timedelta(days=60),
        }
    )
    subscriptions = pd.DataFrame(
        {
            "account_id": ids,
            "start_date": start,
            "end_date": pd.Series(churn_at).where(churned, pd.NaT),
            "arr": np.where(tier == "bad", 5000.0, 20000.0),
            "plan": "Pro",
        }
    )
    reasons = np.where(
        (tier == "bad") & (rng.random(n) < 0.8), "Price", rng.choice(["Budget", "Competitor"], n)
    )
    churn_events = pd.DataFrame(
        {
            "account_id": np.asarray(ids)[churned],
            "churned_at": np.asarray(churn_at)[churned],
            "reason": reasons[churned],
        }
    )
    return {"accounts": accounts, "subscriptions": subscriptions, "churn_events": churn_events}


def deal_tables(rng, *, whales: int = 2, whale_deals: int = 200) -> dict:
    """Accounts with several new-business deals each; outcomes clustered by account.

    ``segment`` = "weak" (40 accounts) wins about 12% of deals against 40% for "core"
    (80 accounts) and loses more to "No decision"; ``segment`` = "whale" is ``whales``
    accounts with ``whale_deals`` deals each that almost never win. ``color`` is noise.
    """
    rows, accounts = [], []
    spec = [("core", 80, 6, 0.40), ("weak", 40, 6, 0.12), ("whale", whales, whale_deals, 0.03)]
    k = 0
    for segment, n_accounts, n_deals, p_win in spec:
        for _ in range(n_accounts):
            account = f"D{k:04d}"
            k += 1
            accounts.append(
                {"account_id": account, "segment": segment, "color": rng.choice(["a", "b"])}
            )
            account_p = 1 / (1 + np.exp(-(np.log(p_win / (1 - p_win)) + rng.normal(0, 0.5))))
            for j in range(n_deals):
                created = AS_OF - pd.Timedelta(days=int(rng.integers(20, 600)))
                state = rng.random()
                stage = "open" if state < 0.1 else ("won" if rng.random() < account_p else "lost")
                cycle = int(rng.integers(10, 120))
                closed = created + pd.Timedelta(days=cycle) if stage != "open" else pd.NaT
                if stage != "open" and closed > AS_OF:
                    closed = AS_OF
                p_nd = 0.6 if segment == "weak" else 0.2
                reason = (
                    ("No decision" if rng.random() < p_nd else "Price") if stage == "lost" else None
                )
                rows.append(
                    {
                        "opportunity_id": f"{account}-{j}",
                        "account_id": account,
                        "stage": stage,
                        "created_at": created,
                        "closed_at": closed,
                        "amount": float(rng.integers(5, 50) * 1000),
                        "loss_reason": reason,
                        "type": "new",
                    }
                )
    opportunities = pd.DataFrame(rows)
    opportunities["closed_at"] = pd.to_datetime(opportunities["closed_at"])
    accounts = pd.DataFrame(accounts)
    accounts["created_at"] = AS_OF - pd.Timedelta(days=700)
    return {"accounts": accounts, "opportunities": opportunities}


def shuffled_rows(study: Study, seed: int = 3) -> Study:
    """``study`` over the same data with the rows of every table in another order (as a
    database returns them, or a re-sorted export)."""
    import copy

    dataset = copy.copy(study.dataset)
    dataset.tables = {
        name: frame.sample(frac=1, random_state=seed).reset_index(drop=True)
        for name, frame in study.dataset.tables.items()
    }
    dataset.derived, dataset.derived_meta = {}, {}
    return Study(dataset, study.as_of)
