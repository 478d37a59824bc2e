"""Subsidiaries of one parent are one independent unit.

A HubSpot export: three enterprise groups (a parent and its subsidiaries, linked by "Parent
Company") in one industry won nearly every deal; nothing else predicts anything. Counted as
independent accounts, "Aerospace" was a 33x predictor (q < 0.001), a significant subgroup and
the ICP. Counted by group it is three customers. Each test failed on the code before the fix.
"""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

import icp_research as icp
from icp_research.methods.predictors import test_predictors as run_predictor_tests
from icp_research.methods.subgroups import find_subgroups

from .conftest import write_project

AS_OF = pd.Timestamp("2026-06-30")


def _groups_export(seed: int = 7) -> dict[str, str]:
    rng = np.random.default_rng(seed)
    industries = ["Software", "Retail", "Healthcare", "Education", "Media", "Logistics"]
    rows = []
    for i in range(500):  # independent companies: winning is a coin with p = 0.3
        rows.append((f"{100000 + i}", rng.choice(industries), int(rng.integers(5, 3000)), ""))
    for g in range(3):  # three groups: a parent and 20 subsidiaries each, all Aerospace
        parent = f"{900000 + g * 100}"
        rows.append((parent, "Aerospace", int(rng.integers(2000, 9000)), ""))
        for s in range(1, 21):
            rows.append(
                (f"{900000 + g * 100 + s}", "Aerospace", int(rng.integers(50, 900)), parent)
            )
    for i in range(4):  # a few Aerospace companies of their own, as unlucky as anyone
        rows.append((f"{800000 + i}", "Aerospace", int(rng.integers(5, 3000)), ""))
    accounts = pd.DataFrame(rows, columns=["Record ID", "Industry", "Employees", "Parent Company"])
    created = pd.Timestamp("2023-07-01") + pd.to_timedelta(
        rng.integers(0, 300, len(accounts)), unit="D"
    )
    accounts["Create Date"] = created.strftime("%Y-%m-%d")
    deals = []
    for idx, account in accounts.iterrows():
        whale = account["Industry"] == "Aerospace" and str(account["Record ID"]).startswith("9")
        for k in range(int(rng.integers(3, 7)) if whale else int(rng.integers(1, 4))):
            opened = created[idx] + pd.Timedelta(days=int(rng.integers(0, 800)))
            closed = opened + pd.Timedelta(days=int(rng.integers(10, 90)))
            won = rng.random() < (0.95 if whale else 0.3)
            stage = "open" if closed > AS_OF else ("closedwon" if won else "closedlost")
            deals.append(
                {
                    "Record ID": f"{account['Record ID']}-{k}",
                    "Company ID": account["Record ID"],
                    "Deal Stage": stage,
                    "Create Date": opened.strftime("%Y-%m-%d"),
                    "Close Date": "" if stage == "open" else closed.strftime("%Y-%m-%d"),
                }
            )
    config = (
        f'[project]\nname = "groups"\nas_of = "{AS_OF:%Y-%m-%d}"\n'
        '[tables.accounts]\npath = "companies.csv"\n[tables.accounts.columns]\n'
        'account_id = "Record ID"\nindustry = "Industry"\nemployees = "Employees"\n'
        'created_at = "Create Date"\n'
        '[tables.opportunities]\npath = "deals.csv"\n[tables.opportunities.columns]\n'
        'opportunity_id = "Record ID"\naccount_id = "Company ID"\nstage = "Deal Stage"\n'
        'created_at = "Create Date"\nclosed_at = "Close Date"\n'
        '[tables.opportunities.values.stage]\nclosedwon = "won"\nclosedlost = "lost"\n'
        'open = "open"\n'
    )
    return {
        "companies.csv": accounts.to_csv(index=False),
        "deals.csv": pd.DataFrame(deals).to_csv(index=False),
        "icp.toml": config,
    }


@pytest.fixture(scope="module")
def grouped(tmp_path_factory):
    files = _groups_export()
    config = files.pop("icp.toml")
    path = write_project(tmp_path_factory.mktemp("groups"), files, config)
    return icp.open_study(path, reuse_snapshot=False)


def test_the_parent_column_links_subsidiaries_into_groups(grouped):
    column, head = grouped.account_groups
    assert column == "parent_company"
    assert len(head) == 63 and set(head.values()) == {"900000", "900100", "900200"}
    ids = pd.Series(["900105", "900100", "100003"])
    assert grouped.cluster_ids(ids).tolist() == ["900100", "900100", "100003"]


def test_winning_clusters_by_group_and_aerospace_is_no_predictor(grouped):
    from icp_research.analyses.significance import outcome_frames, predictor_significance

    (won,) = outcome_frames(grouped, outcomes=("won",), predictors=["industry"])
    assert won.cluster == "_group"
    assert won.data["_group"].nunique() == won.data["account_id"].nunique() - 60
    result = predictor_significance(grouped)
    assert not any(r["predictor"] == "industry" for r in result.recommended)
    # The outcomes table counts accounts; the clustered tests' units are accounts or groups.
    outcomes = result.tables["outcomes"].set_index("outcome")
    assert outcomes.loc["won", "n_accounts"] == won.data["account_id"].nunique()
    assert result.params["cluster_unit"] == "accounts or groups"
    row = result.summary[
        (result.summary["outcome"] == "won") & (result.summary["level"] == "Aerospace")
    ].iloc[0]
    # Seven groups and accounts, 250-odd deals: they weigh like about three.
    assert np.isnan(row["p_value"]) and "weigh like" in row["note"]


def test_no_icp_is_drawn_from_three_groups(grouped):
    from icp_research.analyses import blueprint as bp
    from icp_research.analyses.patterns import discover_subgroups

    result = bp.build_blueprint(grouped, backtest_quarters=1, n_boot=100)
    assert not any("Aerospace" in rule.text for rule in result.include)
    found = discover_subgroups(grouped).summary
    assert len(found) and found["description"].str.contains("Aerospace").any()
    significant = found[found["significant"].astype(bool)]
    assert not significant["description"].str.contains("Aerospace").any()


def test_a_level_of_a_few_large_clusters_is_not_tested():
    rng = np.random.default_rng(3)
    clusters = np.r_[np.arange(400), np.repeat([400, 401, 402], 80), [403, 404, 405]]
    level = np.r_[np.zeros(400, bool), np.ones(243, bool)]
    won = np.r_[rng.random(400) < 0.3, rng.random(240) < 0.95, [False, True, False]]
    data = pd.DataFrame({"segment": np.where(level, "big", "small"), "won": won, "c": clusters})
    result = run_predictor_tests(data, "won", categorical=["segment"], cluster="c")
    row = result.summary[result.summary["level"] == "big"].iloc[0]
    assert row["n_clusters"] == 6
    assert np.isnan(row["p_value"]) and "weigh like 3.1" in row["note"]
    # One row per cluster: six clusters are six, and the level is tested.
    once = data.drop_duplicates("c")
    row = run_predictor_tests(once, "won", categorical=["segment"], cluster="c").summary
    assert row.loc[row["level"] == "big", "p_value"].notna().all()


def test_a_subgroup_of_a_few_large_clusters_is_not_significant():
    rng = np.random.default_rng(5)
    clusters = np.r_[np.repeat(np.arange(600), 2), np.repeat([600, 601, 602], 60)]
    industry = np.r_[rng.choice(["A", "B", "C", "D"], 1200), np.full(180, "E")]
    won = np.r_[rng.random(1200) < 0.3, rng.random(180) < 0.95]
    data = pd.DataFrame({"industry": industry, "won": won, "account": clusters})
    naive = find_subgroups(data, "won", attributes=["industry"])
    assert naive.significant["description"].str.contains("E").any()
    clustered = find_subgroups(data, "won", attributes=["industry"], clusters="account")
    assert not clustered.significant["description"].str.contains("E").any()
    assert any("did not on its own" in c for c in clustered.caveats)


def test_a_p_value_below_a_thousandth_reads_as_less_than():
    from icp_research.formatting import fmt_p_is

    assert fmt_p_is(0.0004, "q") == "q < 0.001"
    assert fmt_p_is(0.0042) == "p = 0.004"
    assert fmt_p_is(0.43, "q") == "q = 0.43"


def test_the_lost_deal_report_counts_groups_not_their_subsidiaries(grouped):
    from icp_research.analyses.deals import lost_deal_analysis

    result = lost_deal_analysis(grouped)
    table = result.tables["win_rate_by_attribute"]
    aerospace = table[table["level"] == "Aerospace"].iloc[0]
    # 67 Aerospace accounts, 63 of them in three groups: seven units of evidence, not 67. Counted
    # by account the level was "3x the win rate, q < 0.001".
    assert aerospace["accounts"] == 67
    assert aerospace["rate"] > 0.8 and not aerospace["significant"]
    assert aerospace["p_value"] > 0.05
    # Its ratio interval agrees with its test: it holds 1.
    assert aerospace["ratio_ci_low"] < 1 < aerospace["ratio_ci_high"]
    overall = result.overall["win_rate"]
    # The overall rate's interval counts the groups too; the accounts are still all counted.
    assert overall["accounts"] == grouped.deals.query("is_closed")["account_id"].nunique()
    assert "clustered by account or group" in result.findings[0]
    assert "accounts or groups as the unit" in " ".join(result.findings)
    assert any("parent company are one unit" in c for c in result.caveats)


def test_the_overview_win_rate_interval_counts_groups(grouped):
    from icp_research.analyses.overview import data_overview

    totals = data_overview(grouped).totals["win_rate"]
    closed = grouped.deals[grouped.deals["is_closed"] & grouped.deals["is_new_business"]]
    assert totals["accounts"] == closed["account_id"].nunique()
    assert totals["clusters"] == totals["accounts"] - 60


def test_the_health_report_counts_groups_not_their_subsidiaries(grouped, monkeypatch):
    """The quarterly review of an ICP of Aerospace companies: its win rate against the rest
    is clustered by group, as the other reports count them. Counted by account, 60-odd
    subsidiaries of three parents read as 60-odd independent accounts."""
    from icp_research.analyses.health import icp_health

    from .icp_documents import condition, icp_document, rule

    document = icp_document(
        as_of=f"{AS_OF:%Y-%m-%d}",
        statement="This product fits Aerospace companies.",
        include=[
            rule("include", "industry = Aerospace", condition("industry", "equals", "Aerospace"))
        ],
        scorecard=[],
    )
    by_group = icp_health(grouped, document, quarter="2026Q2", quarters=8).summary
    monkeypatch.setattr(type(grouped), "account_groups", property(lambda self: ("", {})))
    by_account = icp_health(grouped, document, quarter="2026Q2", quarters=8).summary

    def win_rates(summary, group):
        rows = summary[(summary["metric"] == "win_rate") & (summary["group"] == group)]
        return rows.set_index("quarter")

    icp_group, icp_account = win_rates(by_group, "icp"), win_rates(by_account, "icp")
    # The same deals and rates.
    assert len(icp_group) == 8 and icp_group["n"].tolist() == icp_account["n"].tolist()
    assert np.allclose(icp_group["value"], icp_account["value"])
    versus_group = win_rates(by_group, "icp_vs_non_icp")
    versus_account = win_rates(by_account, "icp_vs_non_icp")
    # Counted by account every quarter was "significantly better" (p < 0.004); by group, the
    # evidence is that of seven units, and the quarters where the ICP won every deal (no
    # finite model estimate) are tested by the clustered score test, not an exact test of
    # independent deals (p = 2e-16 then).
    assert (versus_account["p_value"] < 0.004).all()
    assert (versus_group["p_value"] > 10 * versus_account["p_value"]).all()
    assert (versus_group["p_value"] > 0.01).all()
    assert (versus_group["flag"] == "no_difference").sum() >= 3
    assert versus_group.loc["2026Q2", "ci_low"] < 1 < versus_group.loc["2026Q2", "ci_high"]
