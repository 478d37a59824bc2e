"""ICP health: PSI by hand, ICP vs non-ICP on a study whose answer is known, flags, as-of."""

from __future__ import annotations

import json
import math

import numpy as np
import pandas as pd
import pytest

from icp_research.analyses import health
from icp_research.analyses.health import (
    HEALTH_COLUMNS,
    MonitoredIcp,
    icp_health,
    icp_membership,
    monitored_icp,
    psi,
    psi_band,
)

from .icp_documents import categorical, condition, icp_document, rule
from .studies import make_study

# ---------------------------------------------------------------------------------------------
# PSI


def test_psi_matches_a_hand_computation():
    # Shares 50/30/20% -> 40/30/30%: (0.4 - 0.5) ln(0.4 / 0.5) + 0 + (0.3 - 0.2) ln(0.3 / 0.2).
    by_hand = -0.1 * math.log(0.8) + 0.1 * math.log(1.5)
    assert psi([50, 30, 20], [40, 30, 30], smoothing=0) == pytest.approx(by_hand, abs=1e-12)
    assert by_hand == pytest.approx(0.06286, abs=1e-5)
    # The default smoothing adds half a count to every bin before taking shares.
    e = np.array([50.5, 30.5, 0.5]) / 81.5
    a = np.array([40.5, 30.5, 30.5]) / 101.5
    assert psi([50, 30, 0], [40, 30, 30]) == pytest.approx(float(np.sum((a - e) * np.log(a / e))))
    # Symmetric, zero for one distribution, NaN when a quarter is empty.
    assert psi([10, 20], [30, 5]) == pytest.approx(psi([30, 5], [10, 20]))
    assert psi([10, 20, 30], [20, 40, 60], smoothing=0) == pytest.approx(0.0, abs=1e-15)
    assert np.isnan(psi([0, 0], [3, 4]))


@pytest.mark.parametrize(
    "value, band",
    [
        (0.0, "stable"),
        (0.0999, "stable"),
        (0.10, "moderate shift"),
        (0.2499, "moderate shift"),
        (0.25, "large shift"),
        (3.0, "large shift"),
        (float("nan"), ""),
    ],
)
def test_psi_bands(value, band):
    assert psi_band(value) == band


# ---------------------------------------------------------------------------------------------
# A study whose health is known

AS_OF = pd.Timestamp("2026-06-30")


def known_tables() -> dict:
    """20 ICP accounts (SaaS), 40 others (Retail) and 5 small SaaS ones the exclude rule drops.

    In 2026Q2: ICP accounts win 12 of 20 new-business deals (60%) against 8 of 40 (20%); won
    deals are worth $20k on average against $10k (too few won deals outside the ICP to
    compare); ICP deals close in 60 days against 89; NPS
    is -50 for the ICP (15 detractors, 5 promoters) and +50 for the rest: worse. Only 5 ICP
    accounts paid a year earlier (retention too thin to compare); 10 of the 20 other accounts
    that paid then still do.
    """
    icp = [f"I{i:02d}" for i in range(1, 21)]
    rest = [f"R{i:02d}" for i in range(1, 41)]
    small = [f"X{i}" for i in range(1, 6)]
    accounts = pd.DataFrame(
        {
            "account_id": icp + rest + small,
            "industry": ["SaaS"] * 20 + ["Retail"] * 40 + ["SaaS"] * 5,
            "employees": [100.0] * 60 + [5.0] * 5,
            "created_at": pd.Timestamp("2024-12-01"),
        }
    )
    won = icp[:12] + rest[:8]
    deals = pd.DataFrame(
        {
            "opportunity_id": [f"O-{a}" for a in icp + rest],
            "account_id": icp + rest,
            "stage": ["won" if a in won else "lost" for a in icp + rest],
            "created_at": [pd.Timestamp("2026-03-02")] * 20 + [pd.Timestamp("2026-02-01")] * 40,
            "closed_at": pd.Timestamp("2026-05-01"),
            "amount": [18000.0, 22000.0] * 10 + [9000.0, 11000.0] * 20,
            "type": "new",
        }
    )
    subs = [
        {"account_id": a, "start_date": pd.Timestamp("2026-05-01"), "end_date": pd.NaT, "arr": 1.0}
        for a in won
    ]
    for a in icp[12:17]:
        subs.append({"account_id": a, "start_date": pd.Timestamp("2025-01-01"), "arr": 20000.0})
    for i, a in enumerate(rest[20:]):
        end = pd.Timestamp("2026-01-01") if i < 10 else pd.NaT
        subs.append(
            {"account_id": a, "start_date": pd.Timestamp("2025-01-01"), "end_date": end, "arr": 1e4}
        )
    nps = pd.DataFrame(
        {
            "account_id": icp + rest[:20],
            "date": pd.Timestamp("2026-05-15"),
            "score": [2] * 15 + [10] * 5 + [10] * 15 + [2] * 5,
        }
    )
    return {
        "accounts": accounts,
        "opportunities": deals,
        "subscriptions": pd.DataFrame(subs),
        "nps": nps,
    }


def known_icp() -> dict:
    return icp_document(
        as_of="2026-06-30",
        include=[rule("include", "industry = SaaS", condition("industry", "equals", "SaaS"))],
        exclude=[rule("exclude", "employees < 10", condition("employees", "less_than", 10))],
        scorecard=[categorical("industry", {"SaaS": 100, "Retail": 0}, 50)],
        tiers=(("Tier 1", 70), ("Tier 2", 0)),
    )


@pytest.fixture(scope="module")
def known():
    study = make_study(known_tables(), categorical=["industry"], numeric=["employees"])
    return icp_health(study, known_icp(), quarter="2026Q2", quarters=2)


def _row(result, metric, group, quarter="2026Q2"):
    data = result.summary
    match = data[(data.metric == metric) & (data.group == group) & (data.quarter == quarter)]
    assert len(match) == 1, (metric, group, quarter)
    return match.iloc[0]


def test_membership_follows_include_and_exclude_rules_and_the_tiers():
    members = icp_membership(known_icp(), known_tables()["accounts"])
    assert members["in_icp"].sum() == 20  # the 5 small SaaS accounts are excluded
    assert not members.loc[["X1", "R01"], "in_icp"].any()
    assert members.loc["I01", "fit_score"] == 100 and members.loc["R01", "fit_score"] == 0
    assert members.loc["X1", "tier"] == "Tier 1" and members.loc["R01", "tier"] == "Tier 2"
    # No defining include rule: nobody is in the ICP, whatever the exclude rules say.
    nothing = icp_document(include=[], exclude=[])
    assert not icp_membership(nothing, known_tables()["accounts"])["in_icp"].any()


def test_icp_vs_non_icp_numbers_on_a_known_study(known):
    assert list(known.summary.columns) == HEALTH_COLUMNS
    win_icp, win_rest = _row(known, "win_rate", "icp"), _row(known, "win_rate", "non_icp")
    assert (win_icp.value, win_icp.n) == (0.6, 20)
    assert (win_rest.value, win_rest.n) == (0.2, 40)
    assert win_icp.interval == "39–78%"  # Wilson: one deal per account
    versus = _row(known, "win_rate", "icp_vs_non_icp")
    assert versus.value == pytest.approx(3.0) and versus.unit == "ratio"
    assert versus.test == "chi-square" and versus.flag == "better"
    assert _row(known, "acv", "icp").value == pytest.approx(20000)
    assert _row(known, "acv", "non_icp").value == pytest.approx(10000)
    assert _row(known, "acv", "icp_vs_non_icp").value == pytest.approx(2.0)
    assert _row(known, "time_to_close", "icp").value == 60
    assert _row(known, "time_to_close", "non_icp").value == 89
    assert _row(known, "time_to_close", "icp_vs_non_icp").value == pytest.approx(60 / 89)
    assert _row(known, "time_to_close", "icp_vs_non_icp").flag == "better"
    assert _row(known, "logo_retention", "non_icp").value == 0.5
    assert _row(known, "logo_retention", "icp").n == 5
    assert _row(known, "nps", "icp").value == pytest.approx(-50)
    assert _row(known, "nps", "non_icp").value == pytest.approx(50)
    nps = _row(known, "nps", "icp_vs_non_icp")
    assert nps.value == pytest.approx(-100) and nps.unit == "difference"
    assert nps.q_value < 0.05 and nps.flag == "worse"
    # Tier rows: Tier 1 holds the 20 ICP accounts and the 5 excluded ones (no deals).
    assert _row(known, "win_rate", "Tier 1").value == 0.6
    assert _row(known, "win_rate", "Tier 2").value == 0.2
    # The q-values are the BH correction of the quarter's p-values.
    compared = known.summary[
        (known.summary.group == "icp_vs_non_icp") & (known.summary.quarter == "2026Q2")
    ]
    tested = compared.dropna(subset=["p_value"])
    from icp_research.methods.stats import adjust_pvalues

    assert np.allclose(tested.q_value, adjust_pvalues(tested.p_value))


def test_flags_say_where_the_icp_does_worse_and_where_data_is_thin(known):
    flags = {
        m: _row(known, m, "icp_vs_non_icp").flag
        for m in ("win_rate", "acv", "time_to_close", "nrr", "logo_retention", "nps")
    }
    assert flags == {
        "win_rate": "better",
        "acv": "too_thin",  # 8 won deals outside the ICP
        "time_to_close": "better",
        "nrr": "too_thin",
        "logo_retention": "too_thin",
        "nps": "worse",
    }
    worse = [f for f in known.flags if "NPS" in f]
    assert len(worse) == 1
    assert worse[0].startswith("ICP customers' NPS was -50 against +50 (-100 points) in 2026Q2")
    assert "a common sign that the ICP definition needs refinement" in worse[0]
    thin = [f for f in known.flags if f.startswith("Too little data")]
    assert thin == [
        "Too little data in 2026Q2 to compare ACV (12 ICP and 8 other won new-business deals), "
        "net revenue retention (5 ICP and 20 other "
        "customers a year before), logo retention (5 ICP and 20 other customers a year before) "
        "and gross revenue retention (5 ICP and 20 other customers a year before): not enough "
        "evidence either way."
    ]
    # The verdict opens the report; the better measures are named with their effects.
    assert known.findings[0] == worse[0]
    assert known.findings[1].startswith(
        "In 2026Q2 ICP accounts did significantly better than the rest on win rate (3.00x) "
        "and time to close (33% faster), after correcting for 7 comparisons."
    )
    assert known.headline["Measures where the ICP does worse"] == "NPS"


def test_flag_rules():
    metric = health._METRIC["win_rate"]
    slower = health._METRIC["time_to_close"]
    compare = health._Comparison
    assert health._flag(metric, compare(value=0.8), 0.01, 50, 10, 0.05) == "worse"
    assert health._flag(metric, compare(value=0.8), 0.30, 50, 10, 0.05) == "worse_not_significant"
    assert health._flag(metric, compare(value=1.3), 0.30, 50, 10, 0.05) == "no_difference"
    assert health._flag(metric, compare(value=1.3), 0.01, 50, 10, 0.05) == "better"
    assert health._flag(metric, compare(value=0.5), 0.01, 9, 10, 0.05) == "too_thin"
    assert health._flag(metric, compare(value=np.nan), 0.01, 50, 10, 0.05) == "too_thin"
    # Lower is better for time to close: a ratio above 1 is slower, i.e. worse.
    assert health._flag(slower, compare(value=1.12), 0.03, 50, 10, 0.05) == "worse"
    sentence = health._contrast(slower, 67.0, 60.0, 1.12)
    assert sentence == "ICP deals closed 12% slower than the rest's (median 67 against 60 days)"


def test_new_customer_share_and_drift(known):
    share = _row(known, "icp_share_new_customers", "icp")
    assert (share.value, share.n) == (0.6, 20)  # 12 of the 20 accounts won in 2026Q2
    assert share.interval == "39–78%"
    pipeline = _row(known, "icp_share_new_pipeline", "icp", "2026Q1")
    assert (pipeline.value, pipeline.n) == (pytest.approx(1 / 3), 60)
    drift = known.tables["drift"]
    industry = drift[(drift.attribute == "industry") & (drift.population == "new customers")]
    # 2026Q1 had no new customers to compare with: no PSI rather than an invented one.
    assert industry.set_index("quarter").loc["2026Q2", "n_previous"] == 0
    assert np.isnan(industry.set_index("quarter").loc["2026Q2", "psi"])


def test_drift_between_two_quarters_is_the_psi_of_the_scorecard_bins():
    tables = known_tables()
    # Move the new customers: in 2026Q1 the 20 winners were 15 Retail and 5 SaaS accounts.
    deals = tables["opportunities"]
    extra = pd.DataFrame(
        {
            "opportunity_id": [f"P{i}" for i in range(20)],
            "account_id": [f"R{i:02d}" for i in range(21, 36)]
            + [f"I{i:02d}" for i in range(13, 18)],
            "stage": "won",
            "created_at": pd.Timestamp("2025-12-01"),
            "closed_at": pd.Timestamp("2026-02-01"),
            "amount": 5000.0,
            "type": "new",
        }
    )
    tables["opportunities"] = pd.concat([deals, extra], ignore_index=True)
    tables["subscriptions"] = tables["subscriptions"].iloc[:20]  # only this quarter's winners
    study = make_study(tables, categorical=["industry"], numeric=["employees"])
    result = icp_health(study, known_icp(), quarter="2026Q2", quarters=1)
    drift = result.drift_table("new customers").set_index("attribute")
    # Scorecard levels of industry: SaaS 5 -> 12, Retail 15 -> 8 (of 20 each quarter).
    expected = psi([5, 15], [12, 8])
    assert drift.loc["industry", "PSI"] == pytest.approx(expected)
    assert expected == pytest.approx(0.4739, abs=1e-4)
    assert drift.loc["industry", "band"] == "large shift"
    assert drift.loc["industry", "largest_change"] == "SaaS (industry): 25% → 60%"
    assert result.headline["Drift of new customers"].startswith("large shift (industry")


def test_a_study_without_an_icp_says_so_and_still_measures_tiers():
    study = make_study(known_tables(), categorical=["industry"], numeric=["employees"])
    spec = icp_document(
        as_of="2026-06-30",
        include=[],
        scorecard=[categorical("industry", {"SaaS": 100, "Retail": 0}, 50)],
        tiers=(("Tier 1", 70), ("Tier 2", 0)),
    )
    result = icp_health(study, spec, quarter="2026Q2", quarters=1)
    assert result.findings[0].startswith("No ICP is drawn in the monitored definition")
    assert "icp_vs_non_icp" not in set(result.summary.group)
    assert _row(result, "win_rate", "Tier 1").value == 0.6
    assert result.comparison_table().empty and result.flags == []
    unknown = MonitoredIcp(None, "none", "No ICP definition to monitor: none was given.")
    nothing = icp_health(study, unknown, quarter="2026Q2", quarters=1)
    assert nothing.findings[:2] == [
        "No ICP is drawn in the monitored definition (no defining include rule), so ICP and "
        "non-ICP accounts cannot be compared.",
        "No ICP definition to monitor: none was given.",
    ]
    assert len(nothing.summary) == 0 and nothing.changelog.status == "no_icp"


# ---------------------------------------------------------------------------------------------
# Which ICP is monitored


def test_monitored_icp_prefers_this_runs_file_then_the_previous_run(tmp_path):
    tables = known_tables()
    run = tmp_path / "2026Q2" / "artifacts"
    run.mkdir(parents=True)
    previous = tmp_path / "2026Q1"
    (previous / "artifacts").mkdir(parents=True)
    (previous / "artifacts" / "icp.json").write_text(json.dumps(known_icp()))
    (previous / "artifacts" / "manifest.json").write_text(
        json.dumps({"run": "2026Q1", "as_of": "2026-03-31"})
    )
    study = make_study(tables, categorical=["industry"], numeric=["employees"])
    study.artifacts_dir = run
    found = monitored_icp(study, previous_run=previous, build=False)
    assert found.source == "previous run"
    assert found.description.startswith("Monitoring the ICP of the previous run, 2026Q1")
    stale = dict(known_icp(), as_of="2025-12-31")  # an icp.json of another date is not this run's
    (run / "icp.json").write_text(json.dumps(stale))
    assert monitored_icp(study, previous_run=previous, build=False).source == "previous run"
    (run / "icp.json").write_text(json.dumps(known_icp()))
    assert monitored_icp(study, previous_run=previous, build=False).source == "this run"
    assert monitored_icp(study, icp_path=previous / "artifacts" / "icp.json").source == "file"
    study.artifacts_dir = None
    nothing = monitored_icp(study, build=False)
    assert nothing.spec is None and nothing.source == "none"
    assert isinstance(nothing, MonitoredIcp)


# ---------------------------------------------------------------------------------------------
# As of: what happens after the quarter changes nothing in it


def _future(tables: dict) -> dict:
    """The same data with events after 2026-06-30: new accounts and deals, the open deals
    decided, churn, a new subscription, NPS responses."""
    out = {name: frame.copy() for name, frame in tables.items()}
    later = pd.Timestamp("2026-08-15")
    accounts = pd.DataFrame(
        {"account_id": ["N1"], "industry": ["SaaS"], "employees": [300.0], "created_at": [later]}
    )
    out["accounts"] = pd.concat([out["accounts"], accounts], ignore_index=True)
    deals = pd.DataFrame(
        {
            "opportunity_id": ["F1", "F3"],
            "account_id": ["N1", "R01"],
            "stage": ["won", "won"],
            "created_at": [later, later],
            "closed_at": [later, later],
            "amount": [99000.0, 1.0],
            "type": "new",
        }
    )
    opportunities = out["opportunities"]
    still_open = opportunities["stage"] == "open"  # decided after the quarter
    opportunities.loc[still_open, ["stage", "closed_at"]] = ["lost", pd.Timestamp("2026-07-10")]
    out["opportunities"] = pd.concat([opportunities, deals], ignore_index=True)
    subs = out["subscriptions"]
    subs.loc[subs["end_date"].isna(), "end_date"] = pd.Timestamp("2026-07-20")  # churn later
    extra = pd.DataFrame(
        {"account_id": ["N1"], "start_date": [later], "end_date": [pd.NaT], "arr": [5e4]}
    )
    out["subscriptions"] = pd.concat([subs, extra], ignore_index=True)
    nps = pd.DataFrame({"account_id": ["I01"] * 5, "date": later, "score": [0] * 5})
    out["nps"] = pd.concat([out["nps"], nps], ignore_index=True)
    return out


def test_later_events_change_nothing_in_the_quarter():
    tables = known_tables()
    open_deal = {
        "opportunity_id": "F2",
        "account_id": "I01",
        "stage": "open",
        "created_at": pd.Timestamp("2026-06-01"),
        "type": "new",
    }
    tables["opportunities"] = pd.concat(
        [tables["opportunities"], pd.DataFrame([open_deal])], ignore_index=True
    )
    before = make_study(tables, categorical=["industry"], numeric=["employees"])
    after = make_study(
        _future(tables), categorical=["industry"], numeric=["employees"], as_of="2026-09-30"
    )
    a = icp_health(before, known_icp(), quarter="2026Q2", quarters=2)
    b = icp_health(after, known_icp(), quarter="2026Q2", quarters=2)
    assert b.as_of == "2026-06-30"  # the study was cut to the quarter's end
    pd.testing.assert_frame_equal(a.summary, b.summary)
    pd.testing.assert_frame_equal(a.tables["drift"], b.tables["drift"])
    assert a.findings == b.findings and a.headline == b.headline


def _append(path, rows: list[dict], *, encoding: str = "utf-8") -> None:
    frame = pd.read_csv(path, dtype=str, keep_default_na=False, encoding=encoding)
    frame = pd.concat([frame, pd.DataFrame(rows)], ignore_index=True).fillna("")
    frame.to_csv(path, index=False, encoding=encoding)


def test_later_rows_in_the_demo_exports_change_nothing_as_of_the_quarter(tmp_path):
    """Deals, churn, subscriptions, NPS and accounts after 2026Q2, and the later outcome of
    deals still open at its end, appended to a copy of the demo exports: everything the
    analyses read as of 2026-06-30 -- tables, facts, deals, attributes, health -- is identical.
    """
    import shutil

    from icp_research.data.demo import DEMO_CONFIG, DEMO_DIR
    from icp_research.data.loading import load_tables
    from icp_research.data.study import Study

    from .icp_documents import demo_icp

    exports = tmp_path / "demo"
    shutil.copytree(DEMO_DIR, exports)
    deals = pd.read_csv(exports / "opportunities.csv", dtype=str, keep_default_na=False)
    created = pd.to_datetime(deals["Created Date"])
    closed = pd.to_datetime(deals["Close Date"].replace("", None))
    decided_later = (created <= "2026-06-30") & (closed > "2026-06-30")
    assert decided_later.sum() > 100
    swap = {"Closed Won": "Closed Lost", "Closed Lost": "Closed Won"}
    deals.loc[decided_later, "Stage"] = deals.loc[decided_later, "Stage"].map(swap)
    later_deals = deals.head(40).copy()
    later_deals["Opportunity ID"] = [f"OPP-L{i:04d}" for i in range(40)]
    later_deals[["Stage", "Created Date", "Close Date"]] = [
        "Closed Won",
        "2026-07-02",
        "2026-08-20",
    ]
    pd.concat([deals, later_deals]).to_csv(exports / "opportunities.csv", index=False)
    _append(
        exports / "subscriptions.csv",
        [
            {"Account ID": f"ACC-{i:04d}", "Start Date": "2026-07-15", "MRR": "9,000.00"}
            for i in range(1, 60)
        ],
    )
    subs = pd.read_csv(exports / "subscriptions.csv", dtype=str, keep_default_na=False)
    active = (subs["End Date"] == "") & (pd.to_datetime(subs["Start Date"]) < "2026-07-01")
    subs.loc[active & (subs.index % 3 == 0), "End Date"] = "2026-08-31"  # churn after the quarter
    subs.to_csv(exports / "subscriptions.csv", index=False)
    _append(
        exports / "churn_events.csv",
        [
            {"Account ID": f"ACC-{i:04d}", "Churn Date": "2026-09-01", "Churn Reason": "Price"}
            for i in range(1, 40)
        ],
    )
    _append(
        exports / "nps.csv",
        [
            {"Account ID": f"ACC-{i:04d}", "Response Date": "2026-07-20", "Score": "0"}
            for i in range(1, 200)
        ],
    )
    accounts = pd.read_csv(
        exports / "accounts.csv", dtype=str, keep_default_na=False, encoding="utf-8-sig"
    )
    newcomers = accounts.head(12).copy()
    newcomers["Account ID"] = [f"ACC-N{i:03d}" for i in range(12)]
    newcomers[["Industry", "CRM", "Created Date"]] = ["Crypto", "Zoho", "08/01/2026"]
    pd.concat([accounts, newcomers]).to_csv(
        exports / "accounts.csv", index=False, encoding="utf-8-sig"
    )

    base = Study(load_tables(DEMO_CONFIG), "2026-06-30")
    future = Study(load_tables(exports / "icp.toml"), "2026-06-30")
    assert len(future.raw_tables["opportunities"]) == len(base.raw_tables["opportunities"]) + 40
    for name, frame in base.tables.items():
        pd.testing.assert_frame_equal(frame, future.tables[name], obj=name)
    pd.testing.assert_frame_equal(base.facts, future.facts)
    pd.testing.assert_frame_equal(base.deals, future.deals)
    assert base.attributes.to_dict() == future.attributes.to_dict()
    icp = demo_icp("2026Q2")
    a = icp_health(base, icp, quarter="2026Q2", quarters=2)
    b = icp_health(future, icp, quarter="2026Q2", quarters=2)
    pd.testing.assert_frame_equal(a.summary, b.summary)
    pd.testing.assert_frame_equal(a.tables["drift"], b.tables["drift"])
    assert a.findings == b.findings


def test_the_previous_runs_icp_is_checked_on_this_quarter(tmp_path):
    """Out of sample: last quarter's ICP said Retail; on 2026Q2 Retail wins 20% against 60%."""
    previous = _previous_retail_run(tmp_path)
    study = make_study(known_tables(), categorical=["industry"], numeric=["employees"])
    result = icp_health(study, known_icp(), quarter="2026Q2", quarters=1, previous_run=previous)
    table = result.comparison_table(previous_icp=True).set_index("measure")
    assert table.loc["win rate", "ICP"].startswith("20% (")
    assert table.loc["win rate", "verdict"] == "ICP worse (significant)"
    out_of_sample = [f for f in result.flags if f.startswith("Out of sample")]
    assert out_of_sample[0].startswith(
        "Out of sample, by the ICP of 2026Q1: ICP accounts won 20% of their new-business deals "
        "against 60% for the rest (0.33x) in 2026Q2"
    )
    assert any(
        f.startswith("Out of sample: the ICP of 2026Q1, drawn before 2026Q2")
        for f in result.findings
    )
    document = result.to_json()
    assert document["previous_run"] == "2026Q1"
    win = next(r for r in document["previous_icp_this_quarter"] if r["metric"] == "win_rate")
    assert win["value"] == pytest.approx(1 / 3) and win["flag"] == "worse"
    # The change log compares the two definitions.
    assert result.changelog.status == "compared"
    assert {
        (c["change"], c["before"], c["after"])
        for c in result.changelog.changes
        if c["section"] == "rules"
    } == {("changed", "industry = Retail", "industry = SaaS"), ("added", "", "exclude")}


def _with_calibration(document: dict, win_rate_saas: float, win_rate_retail: float) -> dict:
    """A logistic calibration that gives SaaS (score 100) and Retail (score 0) these rates."""

    def logit(p):
        return math.log(p / (1 - p))

    intercept = logit(win_rate_retail)
    slope = (logit(win_rate_saas) - intercept) / 100
    block = {
        "format": 1,
        "method": "logistic",
        "status": "ok",
        "reason": "",
        "outcome": "won",
        "score": "fit_score",
        "period": {"start": "2025-01-01", "end": "2025-12-31"},
        "n": 400,
        "events": 120,
        "clusters": 300,
        "parameters": {"intercept": intercept, "slope": slope, "covariance": None},
        "caveats": [],
    }
    return {**document, "calibration": block}


def test_win_probability_is_checked_per_quarter_and_drift_is_flagged():
    study = make_study(known_tables(), categorical=["industry"], numeric=["employees"])
    # Right: 60% for the 20 ICP deals and 20% for the 40 others, as happened (12 + 8 won).
    right = icp_health(study, _with_calibration(known_icp(), 0.6, 0.2), quarter="2026Q2")
    table = right.tables["calibration"]
    assert list(table.columns) == list(health.CALIBRATION_COLUMNS)
    row = table[table["quarter"] == "2026Q2"].iloc[0]
    assert (row["n"], row["events"]) == (60, 20)
    assert row["expected"] == pytest.approx(20.0)
    assert row["observed_expected"] == pytest.approx(1.0)
    assert row["slope"] == pytest.approx(1.0, abs=1e-6)
    assert abs(row["intercept"]) < 1e-6
    assert row["brier"] == pytest.approx((12 * 0.4**2 + 8 * 0.6**2 + 8 * 0.8**2 + 32 * 0.2**2) / 60)
    assert not row["drift"] and not row["in_calibration_period"]
    assert not [f for f in right.flags if "win probability" in f]
    assert any("the win probability still matches outcomes" in f for f in right.findings)
    assert right.view("calibration").table["verdict"].tolist()[-1] == "holds"
    assert right.to_json()["calibration"][-1]["events"] == 20
    # Too optimistic: 90% for every deal, 54 wins expected and 20 happened.
    wrong = icp_health(study, _with_calibration(known_icp(), 0.9, 0.9), quarter="2026Q2")
    row = wrong.tables["calibration"].iloc[-1]
    assert row["expected"] == pytest.approx(54.0) and row["oe_high"] < 1 and row["drift"]
    drifted = [f for f in wrong.flags if "win probability has drifted" in f]
    assert len(drifted) == 1 and drifted[0].startswith("20 of 60 closed deals were won in 2026Q2")
    # Without a calibration: no table, the view says why, nothing flagged.
    plain = icp_health(study, known_icp(), quarter="2026Q2")
    assert plain.tables["calibration"].empty
    view = plain.view("calibration")
    assert not view and "no calibrated win probability" in view.reason


def _busy_tables(seed: int = 7) -> dict:
    """300 accounts with ids in no sorted order, several deals, subscriptions and responses
    each over two years; some rows name accounts the accounts table lacks, some none."""
    rng = np.random.default_rng(seed)
    n = 300
    ids = [f"{'ZYXW'[i % 4]}-{(i * 7919) % 1000:03d}" for i in range(n)]
    accounts = pd.DataFrame(
        {
            "account_id": ids,
            "industry": rng.choice(["SaaS", "Retail", "Health"], n),
            "employees": np.round(np.exp(rng.normal(4, 1, n))),
            "created_at": pd.Timestamp("2024-06-01"),
        }
    )
    strangers = ["Q-1", "A-2", "M-3"]
    k = 2400
    owner = rng.choice(ids + strangers, k).astype(object)
    owner[rng.random(k) < 0.01] = None
    created = pd.Timestamp("2024-10-01") + pd.to_timedelta(rng.integers(0, 600, k), unit="D")
    stage = rng.choice(["won", "lost", "open"], k, p=[0.3, 0.5, 0.2])
    closed = created + pd.to_timedelta(rng.integers(5, 200, k), unit="D")
    deals = pd.DataFrame(
        {
            "opportunity_id": [f"O{i}" for i in range(k)],
            "account_id": owner,
            "stage": stage,
            "created_at": created,
            "closed_at": pd.Series(closed).where(stage != "open"),
            "amount": rng.lognormal(9, 1, k).round(),
            "type": rng.choice(["new", "expansion"], k, p=[0.8, 0.2]),
        }
    )
    m = 700
    start = pd.Timestamp("2024-10-01") + pd.to_timedelta(rng.integers(0, 600, m), unit="D")
    subs = pd.DataFrame(
        {
            "account_id": rng.choice(ids + strangers, m),
            "start_date": start,
            "end_date": pd.Series(
                start + pd.to_timedelta(rng.integers(90, 700, m), unit="D")
            ).where(rng.random(m) < 0.4),
            "arr": rng.lognormal(9, 0.5, m).round(),
        }
    )
    r = 900
    nps = pd.DataFrame(
        {
            "account_id": rng.choice(ids, r),
            "date": pd.Timestamp("2025-01-01") + pd.to_timedelta(rng.integers(0, 540, r), "D"),
            "score": rng.integers(0, 11, r),
        }
    )
    return {"accounts": accounts, "opportunities": deals, "subscriptions": subs, "nps": nps}


def test_accounts_as_numbers_give_the_same_review_as_their_ids(monkeypatch):
    """The review counts accounts by number (fast at 10M deals); over the text ids themselves
    (the coding switched off) every table, finding and flag is the same."""
    study = make_study(_busy_tables(), categorical=["industry"], numeric=["employees"])
    document = icp_document(
        as_of="2026-06-30",
        include=[rule("include", "industry = SaaS", condition("industry", "equals", "SaaS"))],
        exclude=[rule("exclude", "employees < 10", condition("employees", "less_than", 10))],
        scorecard=[categorical("industry", {"SaaS": 100, "Health": 60, "Retail": 0}, 50)],
        tiers=(("Tier 1", 70), ("Tier 2", 40), ("Tier 3", 0)),
    )
    document = _with_calibration(document, 0.5, 0.2)
    coded = icp_health(study, document, quarter="2026Q2", quarters=4)
    _, tables, group_of = health._account_codes(study.tables)
    assert tables["opportunities"]["account_id"].dtype == float and group_of is None
    monkeypatch.setattr(
        health,
        "_account_codes",
        lambda t, head=None: (
            t["accounts"],
            {n: t[n] for n in health._QUARTER_COLUMNS if n in t},
            None,
        ),
    )
    by_id = icp_health(study, document, quarter="2026Q2", quarters=4)
    # Clustered rates over several deals per account, tiers, shares, drift and calibration.
    assert (coded.summary["n"] > 0).sum() > 60
    assert len(coded.tables["drift"]) and len(coded.tables["calibration"]) == 4
    pd.testing.assert_frame_equal(coded.summary, by_id.summary)
    for name in ("drift", "calibration", "previous_icp"):
        pd.testing.assert_frame_equal(coded.tables[name], by_id.tables[name])
    assert (coded.findings, coded.flags) == (by_id.findings, by_id.flags)


def test_new_customers_of_a_quarter_are_paid_ones_not_trials_at_no_arr():
    from icp_research.analyses.health import _quarter_data, _Window

    tables = {
        "accounts": pd.DataFrame({"account_id": ["A", "B", "C"]}),
        "subscriptions": pd.DataFrame(
            {
                "account_id": ["A", "B", "C"],
                "start_date": pd.to_datetime(["2025-07-10", "2025-08-01", "2025-09-01"]),
                "end_date": pd.to_datetime([None, None, None]),
                "arr": [1200.0, 0.0, 600.0],  # B: a free plan or trial
            }
        ),
    }
    window = _Window("2025Q3", pd.Timestamp("2025-07-01"), pd.Timestamp("2025-09-30"))
    data = _quarter_data(tables, window, cycle_quarters=2)
    assert sorted(data.new_customers) == ["A", "C"]


def test_not_significantly_worse_does_not_clear_an_icp_that_is_worse_or_too_thin(tmp_path):
    """The ICP wins 8 of 20 deals against 20 of 40 (0.80x, within chance) and most measures
    are too thin: the verdict must not say that nothing calls for refinement. Last quarter's
    ICP (accounts under 10 employees) has no deal this quarter: out of sample, 'worse on none'
    is said with the measures it could not compare."""
    tables = known_tables()
    deals = tables["opportunities"]
    won = {f"I{i:02d}" for i in range(1, 9)} | {f"R{i:02d}" for i in range(1, 21)}
    deals["stage"] = ["won" if a in won else "lost" for a in deals["account_id"]]
    deals["created_at"] = pd.Timestamp("2026-02-01")
    tables.pop("nps")
    previous = tmp_path / "2026Q1"
    (previous / "artifacts").mkdir(parents=True)
    tiny = icp_document(
        as_of="2026-03-31",
        include=[rule("include", "employees < 10", condition("employees", "less_than", 10))],
    )
    (previous / "artifacts" / "icp.json").write_text(json.dumps(tiny))
    (previous / "artifacts" / "manifest.json").write_text(
        json.dumps({"run": "2026Q1", "as_of": "2026-03-31"})
    )
    study = make_study(tables, categorical=["industry"], numeric=["employees"])
    result = icp_health(study, known_icp(), quarter="2026Q2", quarters=1, previous_run=previous)
    assert _row(result, "win_rate", "icp_vs_non_icp").value == pytest.approx(0.8)
    assert result.findings[0] == (
        "No measure is significantly worse for ICP accounts in 2026Q2, but that does not clear "
        "the ICP: it did worse on win rate, within what chance gives; and there was too little "
        "data to compare ACV, time to close, net revenue retention, logo retention and gross "
        "revenue retention."
    )
    assert not any("nothing in this quarter says" in f for f in result.findings)
    out_of_sample = next(f for f in result.findings if f.startswith("Out of sample: the ICP"))
    assert out_of_sample.startswith(
        "Out of sample: the ICP of 2026Q1, drawn before 2026Q2, did significantly better on no "
        "measure in 2026Q2, and worse on none; too little data to compare win rate (0 ICP and "
        "60 other closed new-business deals)"
    )


def _with_q1_winners(q1: list[str]) -> dict:
    """The known tables with ``q1`` winning new-business deals in 2026Q1 (their new customers
    then), and the subscriptions of the first 20 accounts only."""
    tables = known_tables()
    extra = pd.DataFrame(
        {
            "opportunity_id": [f"P{i}" for i in range(len(q1))],
            "account_id": q1,
            "stage": "won",
            "created_at": pd.Timestamp("2025-12-01"),
            "closed_at": pd.Timestamp("2026-02-01"),
            "amount": 5000.0,
            "type": "new",
        }
    )
    tables["opportunities"] = pd.concat([tables["opportunities"], extra], ignore_index=True)
    tables["subscriptions"] = tables["subscriptions"].iloc[:20]
    return tables


def test_a_large_shift_in_a_trait_the_icp_does_not_use_is_said(monkeypatch):
    # The ICP looks at industry and size; a new segment (here a region) can take over the new
    # customers while every ICP attribute is stable: "the profile is stable" said nothing.
    q1 = [f"R{i:02d}" for i in range(21, 29)] + [f"I{i:02d}" for i in range(13, 21)]
    tables = _with_q1_winners(q1)
    accounts = tables["accounts"]
    # 2026Q1's new customers are mostly in EMEA, 2026Q2's mostly in North America; the other
    # accounts are half and half.
    region = np.where(np.arange(len(accounts)) % 2 == 0, "EMEA", "NA").astype(object)
    ids = accounts["account_id"]
    q2 = [f"I{i:02d}" for i in range(1, 13)] + [f"R{i:02d}" for i in range(1, 9)]
    region[ids.isin(q1).to_numpy()] = "EMEA"
    region[ids.isin(q2).to_numpy()] = "NA"
    region[ids.isin(q1[:2] + q2[:2]).to_numpy()] = ["NA", "NA", "EMEA", "EMEA"]
    accounts["region"] = region
    study = make_study(tables, categorical=["industry", "region"], numeric=["employees"])
    # So few customers that region looks outcome-like to the trust screen; here it is a trait.
    monkeypatch.setattr(
        "icp_research.analyses.health._drift_candidates",
        lambda study: (["industry", "region"], ["employees"]),
    )
    result = icp_health(study, known_icp(), quarter="2026Q2", quarters=1)
    drift = result.tables["drift"]
    region = drift[(drift["attribute"] == "region") & (drift["population"] == "new customers")]
    row = region[region["quarter"] == "2026Q2"].iloc[0]
    assert not row["of_icp"] and row["band"] == "large shift" and row["q_value"] < 0.05
    assert row["beyond_chance"]
    # The column is the q-value's verdict, whatever the band (a null export's "large shift"
    # on 50 against 58 customers had read as drift).
    assert (drift["beyond_chance"] == (drift["q_value"] < 0.05)).all()
    (sentence,) = [f for f in result.findings if f.startswith("Beyond the ICP's attributes")]
    assert "region (PSI" in sentence and "a large shift, beyond chance" in sentence
    # The ICP's own table and tile stay about the ICP's attributes.
    assert "region" not in set(result.drift_table("new customers")["attribute"])


def test_a_gap_that_reads_as_none_is_not_called_worse():
    """A 12-month retention gap of -0.2 points read "-0 pts" and was flagged "ICP worse,
    within chance"; a gap that shows as none is no difference."""
    from icp_research.analyses.health import METRICS, _worse

    metric = {m.name: m for m in METRICS}
    assert _worse(metric["logo_retention"], -0.002) is False
    assert _worse(metric["logo_retention"], -0.02) is True
    assert _worse(metric["win_rate"], 0.998) is False and _worse(metric["win_rate"], 0.9) is True
    assert _worse(metric["nps"], -0.3) is False and _worse(metric["nps"], -3.0) is True


def test_drift_between_a_handful_of_accounts_is_too_few_to_tell(monkeypatch):
    """A quarter of 6 new customers against the next: PSI read 3.02 on 6 against 3, a "large
    shift" in icp_drift.csv; below 10 accounts in either quarter the band says too few."""
    from icp_research.analyses.health import PSI_MIN_N, TOO_FEW, psi, psi_band

    assert psi_band(psi(np.array([3.0, 0.0]), np.array([0.0, 6.0]))) == "large shift"
    q1 = [f"R{i:02d}" for i in range(21, 24)] + [f"I{i:02d}" for i in range(13, 16)]
    tables = _with_q1_winners(q1)
    study = make_study(tables, categorical=["industry"], numeric=["employees"])
    result = icp_health(study, known_icp(), quarter="2026Q2", quarters=1)
    drift = result.tables["drift"]
    rows = drift[(drift["quarter"] == "2026Q2") & (drift["population"] == "new customers")]
    assert len(rows) and (rows["n_previous"] < PSI_MIN_N).all()
    assert (rows["band"] == TOO_FEW).all() and not rows["beyond_chance"].any()
    assert any(f.startswith("Too few new customers in ") for f in result.findings)
    assert "Drift of new customers" not in result.headline


def test_no_clear_difference_says_how_wide_the_interval_is():
    """A German export's health summary said "No clear difference between ICP and other
    accounts on win rate" for 1.5x (0.75x-2.70x), which read as "the same"."""
    tables = known_tables()
    icp = [f"I{i:02d}" for i in range(1, 21)]
    rest = [f"R{i:02d}" for i in range(1, 41)]
    won = icp[:9] + rest[:14]  # 45% against 35%
    deals = tables["opportunities"]
    deals["stage"] = ["won" if a in won else "lost" for a in deals["account_id"]]
    study = make_study(tables, categorical=["industry"], numeric=["employees"])
    result = icp_health(study, known_icp(), quarter="2026Q2", quarters=1)
    (line,) = [f for f in result.findings if f.startswith("No clear difference")]
    assert line == (
        "No clear difference between ICP and other accounts on win rate (1.29x, 0.65x–2.39x): "
        "within chance, which is not the same as no difference."
    )


def test_a_gap_that_rounds_to_none_and_intervals_below_zero_read_as_such():
    from icp_research.analyses import health

    nrr = health._METRIC["nrr"]
    assert health._effect_text(nrr, -0.004) == "no difference (0 points)"
    assert health._effect_text(nrr, 0.06) == "+6 points"
    assert health._fmt_interval(-0.26, 0.25, "share", signed=True) == "-26 to +25 pts"
    assert health._fmt_interval(-0.004, 0.003, "share", signed=True) == "0 to 0 pts"
    # Money, shares and days are never negative: an interval on three accounts starts at 0.
    assert health._fmt_interval(-1600.0, 19100.0, "money") == "$0–$19.1k"
    assert health._fmt_interval(-0.1, 0.9, "share") == "0–90%"


def test_the_sentence_over_all_quarters_is_corrected_over_all_of_them():
    """A first user's planted-null time to close: "Over the last 8 quarters ICP accounts did
    significantly worse than the rest on time to close in 2025Q2" (q = 0.0065 within that
    quarter; one of eight quarters' chances). Over all quarters it does not hold up, and the
    sentence says so; a result that holds over all quarters is still named."""
    from types import SimpleNamespace

    from icp_research.analyses import health

    quarters = [f"2024Q{i}" for i in range(1, 5)] + [f"2025Q{i}" for i in range(1, 5)]
    rows = []
    for quarter in quarters:
        for metric in ("win_rate", "time_to_close"):
            rows.append(
                {
                    "group": health.VERSUS,
                    "metric": metric,
                    "quarter": quarter,
                    "p_value": 0.5,
                    "flag": "no_difference",
                }
            )
    summary = pd.DataFrame(rows)
    hit = (summary["quarter"] == "2025Q2") & (summary["metric"] == "time_to_close")
    summary.loc[hit, ["p_value", "flag"]] = [0.0032, "worse"]
    result = SimpleNamespace(summary=summary, quarters=quarters, params={"alpha": 0.05})
    sentence = health._trend_sentence(result, None)
    assert sentence.startswith(
        "Over the last 8 quarters ICP accounts were never significantly worse than the rest on "
        "any measure, nor significantly better (corrected over every quarter's tests; 1 worse "
        "result of a single quarter"
    )
    summary.loc[hit, "p_value"] = 1e-6
    assert health._trend_sentence(result, None) == (
        "Over the last 8 quarters ICP accounts did significantly worse than the rest on time to "
        "close in 2025Q2 (corrected over every quarter's tests)."
    )


def test_a_value_renamed_since_the_previous_run_is_named_with_its_recode(tmp_path):
    """HubSpot renamed "Computer Software" to "Software" between two quarters' exports; nothing
    said so, and a rule on the old value would have matched nobody."""
    from icp_research.analyses.health import renamed_values

    previous = tmp_path / "2026Q2"
    (previous / "artifacts" / "data").mkdir(parents=True)
    then = ["Computer Software"] * 40 + ["Healthcare"] * 30 + ["Retail"] * 12 + ["Mining"] * 3
    pd.DataFrame({"account_id": [f"A{i}" for i in range(len(then))], "industry": then}).to_parquet(
        previous / "artifacts" / "data" / "accounts.parquet"
    )
    now = ["Software"] * 44 + ["Healthcare"] * 31 + ["Logistics"] * 12 + ["Biotech"] * 2
    accounts = pd.DataFrame({"account_id": [f"A{i}" for i in range(len(now))], "industry": now})
    study = make_study({"accounts": accounts}, categorical=["industry"])
    sentence, other = renamed_values(study, previous)
    assert sentence.startswith(
        'industry: "Computer Software" (40 accounts in the run 2026Q2) is gone and "Software" '
        '(44 accounts, none then) is new. If it was renamed, recode "Software" = "Computer '
        'Software" under [tables.accounts.values.industry]'
    )
    # Retail (12) gone and Logistics (12) new may be a rename too ("if it was renamed");
    # Mining (3) and Biotech (2) are too few to say.
    assert other.startswith(
        'industry: "Retail" (12 accounts in the run 2026Q2) is gone and "Logistics"'
    )
    assert not any("Mining" in s or "Biotech" in s for s in renamed_values(study, previous))
    assert len(renamed_values(study, previous, min_accounts=13)) == 1
    assert renamed_values(study, None) == []
    assert renamed_values(study, tmp_path / "nowhere") == []


def test_a_run_that_draws_no_icp_still_says_how_the_previous_runs_icp_did(tmp_path):
    """A first user's market shift: the quarter's run drew no ICP, and the summary said ICP and
    non-ICP accounts "cannot be compared" above a table comparing them by the previous run's
    ICP, which the summary never mentioned."""
    previous = _previous_retail_run(tmp_path)
    study = make_study(known_tables(), categorical=["industry"], numeric=["employees"])
    nothing = icp_document(as_of="2026-06-30")
    result = icp_health(study, nothing, quarter="2026Q2", quarters=1, previous_run=previous)
    assert result.findings[0].endswith(
        "cannot be compared. The previous run's ICP is measured on this quarter instead."
    )
    assert any(
        f.startswith("Out of sample: the ICP of 2026Q1, drawn before 2026Q2")
        for f in result.findings
    )
    assert any(f.startswith("Out of sample, by the ICP of 2026Q1") for f in result.flags)


def _previous_retail_run(tmp_path):
    """A previous run, 2026Q1, whose ICP was Retail."""
    previous = tmp_path / "2026Q1"
    (previous / "artifacts").mkdir(parents=True)
    retail = icp_document(
        as_of="2026-03-31",
        include=[rule("include", "industry = Retail", condition("industry", "equals", "Retail"))],
        scorecard=[categorical("industry", {"SaaS": 0, "Retail": 100}, 50)],
    )
    (previous / "artifacts" / "icp.json").write_text(json.dumps(retail))
    (previous / "artifacts" / "manifest.json").write_text(
        json.dumps({"run": "2026Q1", "as_of": "2026-03-31"})
    )
    return previous


def test_a_group_whose_accounts_all_have_one_nrr_borrows_the_others_spread():
    """A first user's health report: "ICP accounts did significantly better on net revenue
    retention (+25 points)", with the ICP at "100% (100–100%; n = 14)" and p < 0.001. Every
    one of the 14 kept its ARR, so the sandwich error of their NRR was 0, and the test had
    only the other group's uncertainty. Pooled, it is +25 points with an interval that
    includes no difference."""
    from icp_research.analyses.health import METRICS, _compare, _estimate, _no_zero_spread

    nrr = next(m for m in METRICS if m.name == "nrr")
    rng = np.random.default_rng(5)
    x = rng.uniform(5_000, 50_000, 337)
    kept = np.where(rng.random(337) < 0.25, 0.0, rng.uniform(0.8, 1.3, 337))
    rest = pd.DataFrame({"y": x * kept, "x": x, "cluster": [f"r{i}" for i in range(337)]})
    icp_x = rng.uniform(5_000, 50_000, 14)
    icp = pd.DataFrame({"y": icp_x, "x": icp_x, "cluster": [f"i{i}" for i in range(14)]})
    as_of = pd.Timestamp("2026-09-30")
    est_icp, est_rest = _estimate("nrr", icp, as_of, 0.05), _estimate("nrr", rest, as_of, 0.05)
    assert est_icp.value == pytest.approx(1.0) and est_icp.se == pytest.approx(0.0, abs=1e-12)
    naive = _compare(nrr, icp, rest, est_icp, est_rest, as_of, 0.05)
    assert naive.p_value < 0.001  # what the report said
    est_icp, est_rest2 = _no_zero_spread(est_icp, est_rest, icp, rest, 0.05)
    assert est_rest2 == est_rest
    assert est_icp.se == pytest.approx(est_rest.se * np.sqrt(337 / 14))
    assert est_icp.low < 0.8 and est_icp.high > 1.2
    pooled = _compare(nrr, icp, rest, est_icp, est_rest, as_of, 0.05)
    assert pooled.value == naive.value
    assert pooled.low < 0 < pooled.high and pooled.p_value > 0.05
    # A group with a spread of its own keeps its interval.
    icp["y"] = icp["x"] * rng.uniform(0.9, 1.2, 14)
    own = _estimate("nrr", icp, as_of, 0.05)
    assert _no_zero_spread(own, est_rest, icp, rest, 0.05)[0] == own
