"""Evidence sentences stay readable at the extremes: a group with no events, or a reference
group with none, is said in words ("won none of 720 deals"), never as 'inf' or 'nan'."""

from __future__ import annotations

import math
import re

import numpy as np
import pandas as pd
import pytest

from icp_research.analyses import antipatterns as ap

NOT_A_NUMBER = re.compile(r"\binf|\bnan\b", re.IGNORECASE)


def _row(**kw):
    row = {
        "phrase": "with Gekündigt as status",
        "q_value": 0.0,
        "effect_name": "rate_ratio",
        "reasons": "",
    }
    row.update(kw)
    return row


def test_churn_with_no_events_among_the_rest_says_so_without_a_ratio():
    text = ap.evidence_sentence(
        _row(
            outcome="churn",
            effect=math.inf,
            ci_low=201.3636,
            ci_high=math.inf,
            accounts=99,
            events=99,
            rate_level=0.7923,
            rate_rest=0.0,
        )
    )
    assert text == (
        "Accounts with Gekündigt as status churned (99 of 99 customers; 79 churns per 100 "
        "customer-years) while none of the other customers did; the rate ratio is not finite "
        "(at least 201.36 by its 95% CI; q < 0.001)."
    )
    assert not NOT_A_NUMBER.search(text)


def test_churn_with_a_finite_ratio_keeps_its_interval():
    text = ap.evidence_sentence(
        _row(
            outcome="churn",
            phrase="employees under 60",
            effect=2.9,
            ci_low=1.5,
            ci_high=5.25,
            accounts=40,
            events=12,
            rate_level=0.3,
            rate_rest=0.1,
            q_value=0.004,
        )
    )
    assert text == (
        "Accounts with employees under 60 churn 2.9x as fast as other customers (rate ratio "
        "2.90, 95% CI 1.50–5.25; 40 customers, 12 churned; 30 vs 10 churns per 100 "
        "customer-years; q = 0.004)."
    )


def test_win_rate_of_zero_is_said_plainly():
    text = ap.evidence_sentence(
        _row(
            outcome="win_rate",
            phrase="with lead as lifecycle stage",
            effect=0.0,
            ci_low=math.nan,
            ci_high=math.nan,
            n=720,
            accounts=300,
            events=0,
            rate_level=0.0,
            rate_rest=0.35,
        )
    )
    assert text == (
        "Accounts with lead as lifecycle stage won none of 720 new-business deals vs 35% for "
        "the rest (300 accounts; q < 0.001)."
    )
    assert not NOT_A_NUMBER.search(text)


def test_no_decision_without_any_elsewhere_says_the_shares():
    text = ap.evidence_sentence(
        _row(
            outcome="no_decision",
            phrase="in Retail",
            effect=math.inf,
            ci_low=3.1,
            ci_high=math.inf,
            n=30,
            accounts=12,
            rate_level=0.5,
            rate_rest=0.0,
            q_value=0.02,
        )
    )
    assert text == (
        "Deals of accounts in Retail end in 'no decision' in 50% of their lost deals against "
        "0% elsewhere (30 lost deals at 12 accounts; q = 0.02)."
    )


def _backtest(ratios, top_rates=None):
    import pandas as pd

    quarters = [f"2026Q{i + 1}" for i in range(len(ratios))]
    summary = pd.DataFrame(
        {"quarter": quarters, "event": "won a new-business deal", "top_vs_bottom": ratios}
    )
    tiers = pd.DataFrame(
        {"quarter": quarters, "tier": "Tier 1", "rate": top_rates or [0.3] * len(ratios)}
    )
    return summary, tiers


LEAD = (
    "Backtest: scored at the start of each of the last {n} quarters with a score fitted on "
    "what was known then, the top tier won a new-business deal "
)


def test_backtest_sentence_follows_the_direction_of_its_numbers():
    from icp_research.analyses.blueprint.findings import backtest_sentence

    assert backtest_sentence(*_backtest([2.4, 3.1])) == LEAD.format(n=2) + (
        "more often than the bottom tier in the quarter that followed (2026Q1 2.4x, 2026Q2 3.1x)."
    )
    assert backtest_sentence(*_backtest([0.8, 0.9])) == LEAD.format(n=2) + (
        "less often than the bottom tier in the quarter that followed (2026Q1 0.8x, 2026Q2 0.9x)."
    )
    assert backtest_sentence(*_backtest([1.4, 2.0, 0.9, math.nan])) == LEAD.format(n=4) + (
        "more often than the bottom tier in 2 of the 3 quarters that followed and less often "
        "in 1 (2026Q1 1.4x, 2026Q2 2.0x, 2026Q3 0.9x)."
    )


def test_backtest_with_no_event_in_the_bottom_tier_names_the_rates_not_empty_brackets():
    from icp_research.analyses.blueprint.findings import backtest_sentence

    text = backtest_sentence(*_backtest([math.inf, math.inf], [0.344, 0.5588]))
    assert text == LEAD.format(n=2) + (
        "more often than the bottom tier in the quarter that followed (2026Q1 34% vs none, "
        "2026Q2 56% vs none)."
    )
    assert "()" not in text
    assert backtest_sentence(*_backtest([math.nan, math.nan])) == ""


def test_a_confirmation_with_no_event_on_one_side_keeps_its_direction():
    # 61% vs 0% in the confirmation quarters (an infinite lift) is the rule doing better, not
    # a failure to hold up: its one-sided p is half the two-sided one.
    from icp_research.analyses.blueprint.evidence import _one_sided

    assert _one_sided(0.004, np.inf, +1) == pytest.approx(0.002, rel=1e-12)
    assert _one_sided(0.004, np.inf, -1) == pytest.approx(0.998, rel=1e-12)
    assert _one_sided(0.004, 0.0, -1) == pytest.approx(0.002, rel=1e-12)
    assert _one_sided(0.004, 0.0, +1) == pytest.approx(0.998, rel=1e-12)
    assert _one_sided(0.3, 1.0, +1) == 1.0
    assert np.isnan(_one_sided(np.nan, 2.0, +1))
    assert _one_sided(1.0, np.nan, +1) == 0.5  # 100% vs 100%: no ratio, no evidence


def test_a_clustered_lift_interval_refers_to_the_t_distribution_of_its_p_value():
    """A first user's blueprint: "the ICP's win rate was 56% against 24% for the rest (9 and
    515 deals): 2.31x, 95% CI 1.12-4.75, within the 2-3x commonly expected of a good ICP",
    beside p = 0.16 in its own table. The p-value referred the clustered statistic to a t
    distribution on a few accounts' degrees of freedom, the interval to the normal."""
    from icp_research.analyses.blueprint.evidence import compare
    from icp_research.analyses.blueprint.samples import Sample

    rng = np.random.default_rng(0)
    icp = pd.DataFrame(
        {"account_id": ["a1"] * 3 + ["a2"] * 3 + ["a3"] * 3, "y": [1, 1, 0, 1, 1, 0, 1, 0, 0]}
    )
    rest_ids = [f"r{i}" for i in range(200) for _ in range(2)]
    rest = pd.DataFrame({"account_id": rest_ids, "y": (rng.random(400) < 0.24).astype(int)})
    frame = pd.concat([icp, rest], ignore_index=True)
    sample = Sample("won", "deals", "rate", frame, frame, clustered=True)
    inside = np.r_[np.ones(9, bool), np.zeros(400, bool)]
    measured = compare(sample, frame, inside, ~inside, 0.05)
    assert measured["lift"] > 2
    assert measured["p_value"] > 0.05
    assert measured["ci_low"] < 1 < measured["ci_high"]  # the normal's read 1.61-3.8
