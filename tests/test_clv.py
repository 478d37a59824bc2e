"""CLV: each size segment's churn hazard and a discount rate, against the closed form."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from icp_research.data.config import ANALYSIS_DEFAULTS, config_from_dict, load_config
from icp_research.data.facts import account_facts, clv_lifetime_years
from icp_research.errors import ConfigError

AS_OF = pd.Timestamp("2026-06-30")
SEATS = Path(__file__).parent / "fixtures" / "exports" / "status_and_seats" / "icp.toml"
# Size segment -> (employees, accounts, annual churn hazard, ARR).
SEGMENTS = {
    "SMB": (50, 2500, 0.45, 10_000.0),
    "Mid-market": (500, 2000, 0.15, 60_000.0),
    "Enterprise": (5000, 1500, 0.06, 250_000.0),
}


def _tables(seed: int = 20261205) -> dict:
    """Customers who started in the last four years and churn at their segment's known hazard."""
    rng = np.random.default_rng(seed)
    accounts, subscriptions = [], []
    k = 0
    for employees, n, hazard, arr in SEGMENTS.values():
        start = AS_OF - pd.to_timedelta(rng.uniform(30, 4 * 365.25, n).round(), unit="D")
        churn_at = start + pd.to_timedelta((rng.exponential(1 / hazard, n) * 365.25).round(), "D")
        churned = np.asarray(churn_at <= AS_OF)
        ids = [f"A{k + i:05d}" for i in range(n)]
        k += n
        accounts.append(
            pd.DataFrame(
                {
                    "account_id": ids,
                    "employees": employees,
                    "created_at": start - pd.Timedelta(60, "D"),
                }
            )
        )
        subscriptions.append(
            pd.DataFrame(
                {
                    "account_id": ids,
                    "start_date": start,
                    "end_date": pd.Series(churn_at).where(churned, pd.NaT),
                    "arr": arr,
                    "plan": "Pro",
                }
            )
        )
    return {
        "accounts": pd.concat(accounts, ignore_index=True),
        "subscriptions": pd.concat(subscriptions, ignore_index=True),
    }


def test_clv_lifetime_closed_form():
    # Undiscounted, no churn: the horizon. Undiscounted: E[min(T, H)] for T ~ Exp(h).
    assert clv_lifetime_years([0.0], 5, 0.0)[0] == 5
    assert clv_lifetime_years([0.2], 5, 0.0)[0] == pytest.approx((1 - np.exp(-1)) / 0.2)
    # Discounting alone: integral of 1.1^-t over five years.
    assert clv_lifetime_years([0.0], 5, 0.1)[0] == pytest.approx((1 - 1.1**-5) / np.log(1.1))
    # A finer and finer yearly sum of survival x discount converges to it.
    t = (np.arange(50_000) + 0.5) / 10_000
    riemann = np.sum(np.exp(-0.3 * t) * 1.1**-t) / 10_000
    assert clv_lifetime_years([0.3], 5, 0.1)[0] == pytest.approx(riemann, rel=1e-6)


@pytest.mark.parametrize("discount_rate", [0.0, 0.1])
def test_segment_clv_matches_the_closed_form_of_its_own_hazard(discount_rate):
    analysis = {**ANALYSIS_DEFAULTS, "discount_rate": discount_rate}
    facts = account_facts(_tables(), AS_OF, analysis=analysis)
    retained = facts[facts["retained"].fillna(False).astype(bool)]
    by_segment = facts.attrs["annual_churn_hazard_by_segment"]
    for name, (_, _, hazard, arr) in SEGMENTS.items():
        part = retained[retained["size_segment"].astype(object) == name]
        expected = (
            part["realised_revenue"] + arr * clv_lifetime_years([hazard], 5, discount_rate)[0]
        )
        # Mean CLV of the segment within 3% of the closed form at its true hazard.
        assert part["clv"].mean() == pytest.approx(expected.mean(), rel=0.03), name
        assert by_segment[name] == pytest.approx(hazard, rel=0.15), name
    # One hazard for everybody (the old CLV) misses the closed form by far more for SMB.
    overall = facts.attrs["annual_churn_hazard"]
    smb = retained[retained["size_segment"].astype(object) == "SMB"]
    pooled = smb["realised_revenue"] + 10_000 * clv_lifetime_years([overall], 5, discount_rate)[0]
    truth = smb["realised_revenue"] + 10_000 * clv_lifetime_years([0.45], 5, discount_rate)[0]
    assert pooled.mean() / truth.mean() > 1.05


def test_discounting_lowers_clv_and_the_rate_is_validated():
    tables = _tables()
    plain = account_facts(tables, AS_OF, analysis={**ANALYSIS_DEFAULTS, "discount_rate": 0.0})
    discounted = account_facts(tables, AS_OF, analysis=ANALYSIS_DEFAULTS)
    assert ANALYSIS_DEFAULTS["discount_rate"] == 0.1
    assert discounted.attrs["clv_discount_rate"] == 0.1
    customers = plain["is_customer"].astype(bool)
    future_plain = (plain["clv"] - plain["realised_revenue"])[customers]
    future_discounted = (discounted["clv"] - discounted["realised_revenue"])[customers]
    assert (future_discounted[future_plain > 0] < future_plain[future_plain > 0]).all()
    raw = dict(load_config(SEATS).raw)
    for bad in (1.0, -0.05, "ten"):
        raw["analysis"] = {"discount_rate": bad}
        with pytest.raises(ConfigError, match="discount_rate = .* must be a yearly rate"):
            config_from_dict(raw, SEATS)
    raw["analysis"] = {"discount_rate": 0}
    assert config_from_dict(raw, SEATS).analysis["discount_rate"] == 0
