"""12-month retention, one definition in every report: a 12-month contract that was not
renewed is a churn within the first 12 months, whether its end is written as its last day
(day 365) or as the day after it (day 366). The pattern report counted the first as retained
and the predictor report the second, so a Salesforce + ERP export whose first-year churns all
fell on contract ends read "every row has retained_12m = True" in one and 85% in the other."""

from __future__ import annotations

import numpy as np
import pandas as pd

from icp_research.analyses.patterns import target_frames
from icp_research.analyses.significance import outcome_frames
from icp_research.data.facts import retained_for, retention_days

from .studies import make_study


def test_a_churn_on_the_day_after_the_horizon_is_within_it():
    assert retention_days(12) == 366 and retention_days(6) == 183
    start = pd.Timestamp("2024-03-01")
    tenure = np.array([200.0, 365.0, 366.0, 367.0, 500.0, np.nan])
    customers = pd.DataFrame(
        {
            "customer_since": [start] * 5 + [pd.Timestamp("2026-01-01")],
            "churned": [True, True, True, True, False, False],
            "tenure_days": tenure,
        }
    )
    eligible, retained = retained_for(customers, 12, "2026-06-30")
    assert eligible.tolist() == [True] * 5 + [False]  # the last started less than a year ago
    assert retained[eligible].tolist() == [False, False, False, True, True]


def test_the_pattern_and_predictor_reports_count_the_same_customers_retained():
    rng = np.random.default_rng(4)
    n = 240
    ids = [f"A{i:03d}" for i in range(n)]
    start = pd.Timestamp("2023-01-01") + pd.to_timedelta(rng.integers(0, 700, n), unit="D")
    # A third ends its 12-month contract (on its last day or on the day after), a third its
    # 24-month contract, a third runs on.
    kind = np.arange(n) % 3
    last_day = rng.random(n) < 0.5
    end = np.where(
        kind == 0,
        start + pd.to_timedelta(np.where(last_day, 365, 366), unit="D"),
        np.where(kind == 1, start + pd.Timedelta(days=730), pd.NaT),
    )
    tables = {
        "accounts": pd.DataFrame({"account_id": ids, "industry": rng.choice(["A", "B", "C"], n)}),
        "subscriptions": pd.DataFrame(
            {
                "account_id": ids,
                "start_date": start,
                "end_date": pd.to_datetime(end),
                "arr": 1000.0,
            }
        ),
    }
    study = make_study(tables, categorical=["industry"], as_of=pd.Timestamp("2026-06-30"))
    (retained,) = outcome_frames(study, outcomes=("retained",), predictors=["industry"])
    frames, _ = target_frames(study)
    patterns = frames["retained_12m"][0].set_index("account_id")["retained_12m"]
    predictors = retained.data.set_index("account_id")["retained"]
    assert patterns.sort_index().equals(predictors.sort_index())
    eligible = start <= pd.Timestamp("2026-06-30") - pd.Timedelta(days=366)
    assert len(predictors) == int(eligible.sum())
    # Every 12-month contract that ended is a first-year churn; nobody else churned then.
    lost = set(predictors.index[~predictors])
    assert lost == {ids[i] for i in range(n) if kind[i] == 0 and eligible[i]}
