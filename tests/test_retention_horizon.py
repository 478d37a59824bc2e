"""12-month retention, one definition in every report: a 12-month contract that was not
renewed is a churn within the first 12 months, whether its end is written as its last day
(day 365) or as the day after it (day 366). The pattern report counted the first as retained
and the predictor report the second, so a Salesforce + ERP export whose first-year churns all
fell on contract ends read "every row has retained_12m = True" in one and 85% in the other."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

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
    # The churn report's retention curve, read at 12 months, says the same (it was read at
    # 365.25 days and left out the contracts ending on day 366: 91% against 87%).
    from icp_research.analyses.churn import churn_analysis

    overall = churn_analysis(study).overall
    assert overall["retention_12m"] == pytest.approx(predictors.mean())


def test_a_contract_signed_days_before_it_starts_is_retained_from_its_start():
    """A first user's monday.com deals closed 0-13 days before Recurly activated the
    subscription: counted from the deal, 12-month contracts that were not renewed ended on
    days 366-378 and were "retained" (82% retained at 12 months; 74% from the subscription
    start). A deal won shortly before its subscription starts is its signing."""
    rng = np.random.default_rng(7)
    n = 120
    ids = [f"A{i:03d}" for i in range(n)]
    start = pd.Timestamp("2024-01-01") + pd.to_timedelta(rng.integers(0, 300, n), unit="D")
    signed = start - pd.to_timedelta(rng.integers(0, 14, n), unit="D")
    lapsed = np.arange(n) % 2 == 0  # half do not renew their 12-month contract
    end = pd.to_datetime(np.where(lapsed, start + pd.Timedelta(days=365), pd.NaT))
    long_ago = start - pd.Timedelta(days=400)  # a deal won long before billing began
    won_at = np.where(np.arange(n) % 10 == 1, long_ago, signed)
    tables = {
        "accounts": pd.DataFrame({"account_id": ids, "industry": rng.choice(["A", "B"], n)}),
        "opportunities": pd.DataFrame(
            {
                "opportunity_id": [f"O{i}" for i in range(n)],
                "account_id": ids,
                "stage": "won",
                "created_at": pd.to_datetime(won_at) - pd.Timedelta(days=30),
                "closed_at": pd.to_datetime(won_at),
                "amount": 1000.0,
            }
        ),
        "subscriptions": pd.DataFrame(
            {"account_id": ids, "start_date": start, "end_date": end, "arr": 1000.0}
        ),
    }
    study = make_study(tables, categorical=["industry"], as_of=pd.Timestamp("2026-06-30"))
    facts = study.facts.set_index("account_id")
    since = facts["customer_since"]
    near = np.arange(n) % 10 != 1
    assert (since[near].to_numpy() == start[near].to_numpy()).all()
    assert (since[~near].to_numpy() == long_ago[~near].to_numpy()).all()
    (retained,) = outcome_frames(study, outcomes=("retained",), predictors=["industry"])
    kept = retained.data.set_index("account_id")["retained"]
    # Every contract that lapsed at its first renewal is a first-year churn, however many
    # days before the start it was signed (those won long before billing began excepted).
    assert set(kept.index[~kept]) == {ids[i] for i in range(n) if lapsed[i] and near[i]}
