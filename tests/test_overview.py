"""The data overview's win rate: the all-time rate, and the latest four quarters against it."""

from __future__ import annotations

import pandas as pd
import pytest

from icp_research.analyses.overview import data_overview

from .studies import make_study


def _tables(won_before: int, won_latest: int) -> dict:
    """40 accounts with one new-business deal closed in 2025Q1 and 40 with one in 2026Q1."""
    before = [f"A{i:02d}" for i in range(40)]
    latest = [f"B{i:02d}" for i in range(40)]
    won = set(before[:won_before]) | set(latest[:won_latest])
    ids = before + latest
    accounts = pd.DataFrame(
        {
            "account_id": ids,
            "industry": ["SaaS", "Retail"] * 40,
            "created_at": pd.Timestamp("2024-06-01"),
        }
    )
    deals = pd.DataFrame(
        {
            "opportunity_id": [f"O-{a}" for a in ids],
            "account_id": ids,
            "stage": ["won" if a in won else "lost" for a in ids],
            "created_at": [pd.Timestamp("2025-01-10")] * 40 + [pd.Timestamp("2026-01-10")] * 40,
            "closed_at": [pd.Timestamp("2025-03-15")] * 40 + [pd.Timestamp("2026-03-15")] * 40,
            "amount": 10000.0,
            "type": "new",
        }
    )
    return {"accounts": accounts, "opportunities": deals}


def test_a_win_rate_that_fell_is_said_beside_the_all_time_rate():
    """20 of 40 deals won in 2025Q1, 8 of 40 in 2026Q1: the all-time 35% describes neither
    year; the overview says the latest four quarters' 20% and that it is significantly lower."""
    study = make_study(_tables(20, 8), categorical=["industry"], as_of=pd.Timestamp("2026-06-30"))
    result = data_overview(study)
    assert result.totals["win_rate"]["rate"] == pytest.approx(0.35)
    latest = result.totals["win_rate_latest"]
    assert (latest["n"], latest["n_before"], latest["from"]) == (40, 40, "2025-07-01")
    assert latest["rate"] == pytest.approx(0.2) and latest["rate_before"] == pytest.approx(0.5)
    assert latest["changed"] and latest["p_value"] < 0.05
    (sentence,) = [f for f in result.findings if f.startswith("In the latest 4 quarters")]
    assert sentence.startswith("In the latest 4 quarters (2025Q3–2026Q2) the win rate was 20% (")
    assert sentence.endswith(
        "significantly lower (p = 0.008), so the win rate of all 80 deals above overstates the "
        "current one."
    )
    assert result.headline["Win rate, latest 4 quarters"].startswith("20% (")
    assert result.headline["Win rate, latest 4 quarters"].endswith("; 40 deals)")


def test_a_steady_win_rate_adds_no_headline():
    study = make_study(_tables(16, 16), categorical=["industry"], as_of=pd.Timestamp("2026-06-30"))
    result = data_overview(study)
    latest = result.totals["win_rate_latest"]
    assert latest["rate"] == pytest.approx(0.4) and not latest["changed"]
    (sentence,) = [f for f in result.findings if f.startswith("In the latest 4 quarters")]
    assert sentence.endswith("before them: no clear change (p = 1).")
    assert "Win rate, latest 4 quarters" not in result.headline


def test_a_customer_list_loaded_as_accounts_only_says_how_to_make_customers():
    """A founder's customer list mapped as accounts only: "600 accounts ... of which 0 are or
    were customers", and nothing said why or what to do."""
    accounts = pd.DataFrame(
        {"account_id": ["A1", "A2", "A3"], "status": ["Active", "Churned", "Active"]}
    )
    study = make_study({"accounts": accounts})
    result = data_overview(study)
    assert "of which 0 are or were customers" in result.findings[0]
    (caveat,) = [c for c in result.caveats if c.startswith("No account is a customer")]
    assert "map the same file as [tables.subscriptions] too" in caveat
    # With subscriptions there are customers, and nothing of the kind is said.
    subs = pd.DataFrame(
        {"account_id": ["A1"], "start_date": pd.to_datetime(["2024-01-01"]), "arr": [1000.0]}
    )
    study = make_study({"accounts": accounts, "subscriptions": subs})
    assert not any(c.startswith("No account is a customer") for c in data_overview(study).caveats)


def test_a_date_column_is_shown_by_its_span_without_a_time_nobody_recorded():
    from icp_research.analyses.overview import _example

    dates = pd.Series(pd.to_datetime(["2025-01-13", "2024-11-10", None, "2025-03-01"]))
    assert _example(dates) == "2024-11-10 to 2025-03-01"
    timed = pd.Series(pd.to_datetime(["2025-01-13 09:30", "2025-01-14 00:00"]))
    assert _example(timed) == "2025-01-13 09:30 to 2025-01-14 00:00"
