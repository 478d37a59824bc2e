"""Account and deal facts on small tables computed by hand."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

from icp_research.data.facts import (
    account_facts,
    as_of_view,
    best_customers,
    deal_facts,
    size_segments,
)

T = pd.Timestamp


@pytest.fixture
def tables():
    accounts = pd.DataFrame(
        {
            "account_id": ["A", "B", "C", "D", "E"],
            "industry": ["SaaS", "Retail", "SaaS", "Retail", "SaaS"],
            "employees": [150.0, 30.0, 5000.0, np.nan, 800.0],
            "referral_source": ["Referral", "Inbound", "Customer referral", None, "Outbound"],
            "created_at": [
                T("2023-01-01"),
                T("2023-02-01"),
                T("2023-03-01"),
                T("2023-04-01"),
                T("2026-01-01"),
            ],
        }
    )
    opportunities = pd.DataFrame(
        {
            "opportunity_id": ["o1", "o2", "o3", "o4", "o5", "o6", "o7"],
            "account_id": ["A", "A", "B", "C", "C", "D", "E"],
            "stage": ["won", "lost", "won", "won", "open", "lost", "won"],
            "created_at": [
                T("2023-01-10"),
                T("2023-06-01"),
                T("2023-02-10"),
                T("2023-03-10"),
                T("2024-05-01"),
                T("2023-04-10"),
                T("2026-01-10"),
            ],
            "closed_at": [
                T("2023-02-09"),
                T("2023-07-01"),
                T("2023-03-12"),
                T("2023-06-08"),
                pd.NaT,
                T("2023-05-10"),
                T("2026-02-01"),
            ],
            "amount": [12000.0, 5000.0, 2400.0, 50000.0, 10000.0, 3000.0, 9000.0],
            "loss_reason": [None, "No decision", None, None, None, "Price", None],
        }
    )
    subscriptions = pd.DataFrame(
        {
            "account_id": ["A", "A", "B", "C"],
            "start_date": [T("2023-02-09"), T("2024-02-09"), T("2023-03-12"), T("2023-06-08")],
            "end_date": [T("2024-02-09"), pd.NaT, T("2024-03-12"), pd.NaT],
            "arr": [12000.0, 18000.0, 2400.0, 50000.0],
        }
    )
    churn = pd.DataFrame(
        {"account_id": ["B"], "churned_at": [T("2024-03-01")], "reason": ["Price"]}
    )
    nps = pd.DataFrame(
        {
            "account_id": ["A", "A", "C"],
            "date": [T("2023-06-01"), T("2024-06-01"), T("2024-01-01")],
            "score": [7.0, 10.0, 3.0],
        }
    )
    return {
        "accounts": accounts,
        "opportunities": opportunities,
        "subscriptions": subscriptions,
        "churn_events": churn,
        "nps": nps,
    }


def test_account_facts_hand_computed(tables):
    facts = account_facts(tables, "2024-12-31").set_index("account_id")
    # E was created after the as-of date: it does not exist yet.
    assert list(facts.index) == ["A", "B", "C", "D"]
    assert facts["is_customer"].tolist() == [True, True, True, False]
    assert facts.loc["A", "arr_current"] == 18000
    assert facts.loc["A", "arr_initial"] == 12000
    assert facts.loc["A", "arr_12m_ago"] == 12000  # 2023-12-31: the first subscription was active
    assert facts.loc["A", "nrr"] == pytest.approx(1.5)
    assert facts.loc["A", "expansion"] == 6000
    assert facts.loc["A", "arr_peak"] == 18000  # the renewal on 2024-02-09 is not double counted
    # Realised revenue: 12,000 for one year + 18,000 x (2024-02-09 .. 2024-12-31) / 365.25.
    assert facts.loc["A", "realised_revenue"] == pytest.approx(
        12000 * 365 / 365.25 + 18000 * 326 / 365.25
    )
    assert (
        facts.loc["B", "churned"]
        and not facts.loc["A", "churned"]
        and not facts.loc["C", "churned"]
    )
    assert facts.loc["B", "churned_at"] == T("2024-03-01")  # the churn event, not the end date
    assert facts.loc["B", "churn_reason"] == "Price"
    assert facts.loc["B", "tenure_days"] == (T("2024-03-01") - T("2023-03-12")).days
    assert facts.loc["A", "tenure_days"] == (T("2024-12-31") - T("2023-02-09")).days
    assert not facts.loc["B", "early_churn"]  # 355 days > 6 months
    assert facts.loc["A", "deals_won"] == 1 and facts.loc["A", "deals_lost"] == 1
    assert facts.loc["A", "win_rate"] == 0.5
    assert facts.loc["A", "no_decision_losses"] == 1
    assert facts.loc["C", "deals_open"] == 1
    assert facts.loc["C", "median_sales_cycle_days"] == 90
    assert facts.loc["A", "nps_mean"] == 8.5 and facts.loc["A", "nps_latest"] == 10
    assert facts["referred"].tolist()[:3] == [True, False, True] and pd.isna(
        facts.loc["D", "referred"]
    )
    assert facts["size_segment"].astype(object).tolist()[:3] == ["SMB", "SMB", "Enterprise"]
    assert facts.loc["D", "retained"] is pd.NA
    # CLV: overall hazard = 1 churn over the customers' summed tenure. C (Enterprise, no churn)
    # takes its segment's hazard with one pseudo-churn at the overall rate; its ARR counts over
    # the 5-year horizon, surviving at exp(-h t) and discounted at 10% a year.
    exposure = facts.loc[["A", "B", "C"], "tenure_days"].sum() / 365.25
    hazard_c = 1 / (facts.loc["C", "tenure_days"] / 365.25 + exposure)
    rate = hazard_c + np.log(1.1)
    lifetime = (1 - np.exp(-rate * 5)) / rate
    assert facts.loc["C", "clv"] == pytest.approx(
        facts.loc["C", "realised_revenue"] + 50000 * lifetime
    )
    assert facts.attrs["annual_churn_hazard"] == pytest.approx(1 / exposure)
    assert facts.attrs["annual_churn_hazard_by_segment"]["Enterprise"] == pytest.approx(hazard_c)
    assert facts.loc["B", "clv"] == pytest.approx(facts.loc["B", "realised_revenue"])


def test_as_of_hides_the_future(tables):
    early = account_facts(tables, "2023-05-31").set_index("account_id")
    # On 2023-05-31, C's deal was still open and B's churn had not happened.
    assert not early.loc["C", "is_customer"]
    assert early.loc["C", "deals_open"] == 1 and early.loc["C", "deals_won"] == 0
    assert not early.loc["B", "churned"] and early.loc["B", "arr_current"] == 2400
    assert (
        early.loc["A", "deals_lost"] == 0 and early.loc["A", "deals_open"] == 0
    )  # o2 not created yet
    view = as_of_view(tables, "2023-05-31")
    assert set(view["opportunities"]["opportunity_id"]) == {"o1", "o3", "o4", "o6"}
    assert view["opportunities"].set_index("opportunity_id").loc["o4", "stage"] == "open"
    # Adding data after the date changes nothing about that date.
    later = {k: v.copy() for k, v in tables.items()}
    later["opportunities"] = pd.concat(
        [
            later["opportunities"],
            pd.DataFrame(
                {
                    "opportunity_id": ["o9"],
                    "account_id": ["D"],
                    "stage": ["won"],
                    "created_at": [T("2023-06-02")],
                    "closed_at": [T("2023-07-01")],
                    "amount": [1.0],
                }
            ),
        ],
        ignore_index=True,
    )
    later["churn_events"] = pd.concat(
        [
            later["churn_events"],
            pd.DataFrame({"account_id": ["A"], "churned_at": [T("2023-06-15")]}),
        ]
    )
    pd.testing.assert_frame_equal(
        account_facts(later, "2023-05-31"), account_facts(tables, "2023-05-31")
    )


def test_best_customers_top_share_of_retained():
    facts = pd.DataFrame(
        {
            "is_customer": [True] * 10 + [False],
            "retained": [True] * 9 + [False, pd.NA],
            "arr_current": [100, 90, 80, 70, 60, 50, 40, 30, 20, 500, np.nan],
        }
    )
    flag = best_customers(facts, "arr", 0.2)
    # Top 20% of the 9 retained customers = ceil(1.8) = 2; the churned 500 is not eligible.
    assert flag.tolist()[:10] == [True, True] + [False] * 8
    assert flag.iloc[10] is pd.NA


def test_bookings_basis_without_subscriptions(tables):
    no_subs = {k: v for k, v in tables.items() if k not in ("subscriptions", "churn_events")}
    facts = account_facts(no_subs, "2024-12-31").set_index("account_id")
    assert facts.attrs["revenue_basis"] == "bookings"
    assert facts.loc["C", "is_customer"] and facts.loc["C", "customer_since"] == T("2023-06-08")
    assert facts.loc["A", "realised_revenue"] == 12000
    assert facts["churned"].isna().all()


def test_deal_facts_censor_open_deals(tables):
    deals = deal_facts(tables, "2024-06-30").set_index("opportunity_id")
    assert deals.loc["o5", "cycle_days"] == (T("2024-06-30") - T("2024-05-01")).days
    assert deals.loc["o5", "won"] is pd.NA and not deals.loc["o5", "is_closed"]
    assert deals.loc["o1", "cycle_days"] == 30 and deals.loc["o1", "won"]
    assert deals.loc["o2", "no_decision"] and not deals.loc["o6", "no_decision"]
    assert deals.loc["o1", "industry"] == "SaaS"
    assert deals.loc["o4", "created_quarter"] == "2023Q1"


def test_size_segments_bounds():
    seg = size_segments(pd.Series([10, 199, 200, 1999, 2000, np.nan]))
    assert seg.astype(object).tolist()[:5] == [
        "SMB",
        "SMB",
        "Mid-market",
        "Mid-market",
        "Enterprise",
    ]
    assert pd.isna(seg.iloc[5])


def test_deals_of_unknown_accounts_get_no_attributes_and_change_no_facts(tables):
    stray = pd.DataFrame(
        {
            "opportunity_id": ["o9"],
            "account_id": ["Z"],
            "stage": ["won"],
            "created_at": [T("2023-01-10")],
            "closed_at": [T("2023-02-01")],
            "amount": [99.0],
        }
    )
    with_stray = {**tables, "opportunities": pd.concat([tables["opportunities"], stray])}
    pd.testing.assert_frame_equal(
        account_facts(with_stray, "2024-12-31"), account_facts(tables, "2024-12-31")
    )
    deals = deal_facts(with_stray, "2024-12-31")
    view = as_of_view(with_stray, "2024-12-31")
    expected = view["opportunities"][["account_id"]].merge(
        view["accounts"], on="account_id", how="left"
    )
    # The account's created_at is not joined: the deal has its own.
    for column in ("industry", "employees", "referral_source"):
        pd.testing.assert_series_equal(deals[column], expected[column])
    assert pd.isna(deals.set_index("opportunity_id").loc["o9", "industry"])
    assert list(deals.index) == list(range(7))  # E's deal (2026) is not known yet


def test_best_customers_are_ranked_within_start_cohorts_so_survival_does_not_drive_them():
    """Issue 17.5: ranking the survivors of every start year together makes the best-customer
    rate of a cohort track its retention (and tenure); ranked within cohorts it is flat."""
    from icp_research.analyses.profile import cohort_table

    rng = np.random.default_rng(17)
    years = np.repeat([2023, 2024, 2025, 2026], 400)
    retention = {2023: 0.52, 2024: 0.68, 2025: 0.8, 2026: 0.94}
    retained = rng.random(years.size) < np.vectorize(retention.get)(years)
    # ARR has nothing to do with the start year, apart from churned customers paying nothing.
    arr = np.where(retained, np.exp(rng.normal(10, 0.8, years.size)), 0.0)
    facts = pd.DataFrame(
        {
            "is_customer": True,
            "retained": retained,
            "customer_since": pd.to_datetime([f"{y}-03-01" for y in years]),
            "arr_current": arr,
        }
    )
    pooled = cohort_table(facts, best_customers(facts, "arr", 0.2, "all"))
    within = cohort_table(facts, best_customers(facts, "arr", 0.2, "cohort"))
    assert list(within["cohort"]) == ["2023", "2024", "2025", "2026"]
    # All together: the oldest cohort, thinned by churn, has far fewer best customers.
    assert pooled["rate"].iloc[0] < 0.13 and pooled["rate"].iloc[-1] > 0.2
    assert np.corrcoef(pooled["rate"], pooled["retained"])[0, 1] > 0.9
    # Within cohorts: the same 20% in every start year, whatever its retention.
    assert within["rate"].tolist() == pytest.approx([0.2] * 4, abs=0.003)
    assert within["customers"].tolist() == [400] * 4
    assert (within["ci_low"] < 0.2).all() and (within["ci_high"] > 0.2).all()
    # Churned customers count in their cohort but are never best.
    flag = best_customers(facts, "arr", 0.2, "cohort")
    assert not flag[~facts["retained"]].any()


def test_small_start_years_are_pooled_into_the_next_cohort():
    from icp_research.data.facts import start_cohorts

    facts = pd.DataFrame(
        {
            "is_customer": [True] * 13 + [False],
            "customer_since": pd.to_datetime(
                ["2021-01-01"] * 2 + ["2022-05-01"] * 6 + ["2023-02-01"] * 3 + [None] * 2 + [None]
            ),
        }
    )
    cohorts = start_cohorts(facts).tolist()
    # 2021 (2) is pooled into 2022 (6); 2023 (3) is too small too and, being last, joins them.
    assert cohorts[:11] == ["2021-2023"] * 11
    assert cohorts[11:13] == ["unknown"] * 2 and cohorts[13] is pd.NA
    bigger = pd.concat([facts.iloc[:11]] * 2, ignore_index=True)
    assert start_cohorts(bigger).value_counts().to_dict() == {"2021-2022": 16, "2023": 6}


def test_a_study_of_another_date_belongs_to_its_own_dataset():
    """``Study.at`` hands back a live study of that date, but never one of another dataset,
    not even a copy of this one (which shares its attributes)."""
    import copy

    import icp_research as icp
    from icp_research.data.study import Study

    study = icp.open_study()
    earlier = study.at("2025-06-30")
    assert study.at("2025-06-30") is earlier
    copied = copy.copy(study.dataset)
    other = Study(copied, study.as_of).at("2025-06-30")
    assert other is not earlier and other.dataset is copied


def test_best_customers_by_position_choose_as_the_general_path():
    """A float metric on a unique index takes the array path; a nullable integer metric the
    general one: the same flags, ties, unknown metrics, churned and non-customers included."""
    rng = np.random.default_rng(5)
    n = 300
    arr = rng.choice([0, 1000, 2000, 2000, 5000, 9000], n) + rng.integers(0, 3, n) * 500
    facts = pd.DataFrame(
        {
            "is_customer": rng.random(n) < 0.8,
            "retained": rng.random(n) < 0.7,
            "customer_since": pd.to_datetime("2021-01-01")
            + pd.to_timedelta(rng.integers(0, 1500, n), unit="D"),
            "arr_current": arr.astype(np.int64),
        }
    )
    facts.loc[rng.random(n) < 0.1, "customer_since"] = pd.NaT
    as_float = facts.assign(arr_current=facts["arr_current"].astype(float))
    as_float.loc[rng.random(n) < 0.1, "arr_current"] = np.nan
    as_int = as_float.assign(arr_current=as_float["arr_current"].astype("Int64"))
    assert pd.to_numeric(as_int["arr_current"]).dtype != np.float64
    for share in (0.1, 0.2, 0.5):
        for ranking in ("cohort", "all"):
            fast = best_customers(as_float, "arr", share, ranking)
            general = best_customers(as_int, "arr", share, ranking)
            pd.testing.assert_series_equal(fast, general)


def test_an_earlier_view_shares_the_deal_columns_that_do_not_change():
    import icp_research as icp

    study = icp.load_demo()
    earlier = study.at("2025-12-31")
    opportunities = study.tables["opportunities"]
    view = earlier.tables["opportunities"]
    assert (view["closed_at"] > pd.Timestamp("2025-12-31")).sum() == 0  # reopened by then
    day = pd.Timestamp("2025-12-31")
    later = opportunities[(opportunities["created_at"] <= day) & (opportunities["closed_at"] > day)]
    assert len(later) > 0
    reopened = view.set_index("opportunity_id").loc[later["opportunity_id"]]
    assert (reopened["stage"] == "open").all() and reopened["loss_reason"].isna().all()
    # Rows are a subset (a copy), but the deal facts of that date do not copy the view again.
    deals = earlier.deals
    for text in ("opportunity_id", "stage", "owner"):  # text columns (numbers may be merged)
        assert np.shares_memory(deals[text].array._ndarray, view[text].array._ndarray)
    # A study that forgets its deal facts computes the same again.
    earlier.forget("deals")
    assert "deals" not in earlier.__dict__
    pd.testing.assert_frame_equal(earlier.deals, deals)


def test_deal_rows_are_the_deal_facts_without_the_account_join():
    """``Study.deal_rows`` (what deal outcomes are counted on) has every deal column but the
    account attributes; the joined deal facts built over them equal ``deal_facts``, share their
    columns, and forgetting the deal facts forgets the rows too."""
    import icp_research as icp
    from icp_research.data.facts import deal_facts

    study = icp.load_demo()
    earlier = study.at("2025-12-31")
    rows = earlier.deal_rows
    assert "deals" not in earlier.__dict__
    full = deal_facts(earlier.tables, earlier.as_of, already_as_of=True)
    joined = [c for c in full.columns if c not in rows.columns]
    # The accounts' columns, and whether the deal's account is in the accounts table.
    assert "account_known" in joined and full["account_known"].all()
    joined.remove("account_known")
    assert joined and set(joined) <= set(earlier.tables["accounts"].columns)
    assert "industry" in joined and "won" in rows and "cycle_days" in rows
    pd.testing.assert_frame_equal(rows, full[list(rows.columns)])
    deals = earlier.deals
    pd.testing.assert_frame_equal(deals, full)
    for text in ("stage", "created_quarter"):  # text columns (numbers may be merged)
        assert np.shares_memory(deals[text].array._ndarray, rows[text].array._ndarray)
    assert earlier.deal_rows is rows  # kept; asked for again, the same frame
    earlier.forget("deals")
    assert "deal_rows" not in earlier.__dict__ and "deals" not in earlier.__dict__
    # A study with its deal facts hands them out as its rows (no second frame).
    assert earlier.deals is not None and earlier.deal_rows is earlier.deals
