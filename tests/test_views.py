"""Named views: the tables of the pattern, churn, lost-deal and voice-of-customer reports, each
with the reason a reader sees when it is empty. The reasons live in the package (tested here),
and a notebook cell is ``report.show(result.view(name))``."""

from __future__ import annotations

import html
import json
import re
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

import icp_research as icp
from icp_research.analyses import churn, deals, patterns, profile, voc
from icp_research.methods import segments
from icp_research.reporting import display as report
from icp_research.result import View

from .studies import AS_OF, churn_tables, deal_tables, make_study

ROOT = Path(__file__).parent.parent

VIEW_NAMES = {
    "patterns": [
        "profile",
        "combined",
        "behaviour",
        "segment_sales",
        "segment_customers",
        "segment_profiles",
        "silhouette",
    ],
    "churn": [
        "by_attribute",
        "cox",
        "reasons",
        "reasons_by_segment",
        "early_churn",
        "trials",
        "exclude_rules",
    ],
    "deals": [
        "win_rate_by_attribute",
        "loss_reasons",
        "no_decision_by_attribute",
        "loss_reasons_by_segment",
        "sales_cycle",
        "deal_size",
        "stage_funnel",
        "exclude_rules",
    ],
    "voc": [
        "themes",
        "theme_tests",
        "segments",
        "quotes",
        "uncoded",
        "survey",
        "committee",
        "committee_cycle",
    ],
}
NOTEBOOKS = {
    "patterns": "01_pattern_discovery",
    "churn": "02_churn_analysis",
    "deals": "03_lost_deal_analysis",
    "voc": "07_voice_of_customer",
}

CHURN_EXCLUDE_NONE = (
    "No segment churns significantly faster than the rest: churn gives no exclude rule."
)
DEALS_EXCLUDE_NONE = (
    "No segment wins significantly less often or stalls more in 'no decision' than the rest: "
    "lost deals give no exclude rule."
)


@pytest.fixture(scope="module")
def demo():
    """The four results on the demo data, as the notebooks compute them (default parameters)."""
    study = icp.open_study()
    return {
        "patterns": patterns.pattern_discovery(study),
        "churn": churn.churn_analysis(study),
        "deals": deals.lost_deal_analysis(study),
        "voc": voc.voice_of_customer(study),
    }


def _text(shown) -> str:
    """The visible text of displayed HTML."""
    return " ".join(html.unescape(re.sub(r"<[^>]+>", " ", str(shown.markup))).split())


# ---------------------------------------------------------------------------------------------
# Every result lists its views, and every one is a View


@pytest.mark.parametrize("name", list(VIEW_NAMES))
def test_every_listed_view_is_a_view_with_a_reason_when_empty(demo, name):
    result = demo[name]
    assert list(result.views()) == VIEW_NAMES[name]
    for view_name in result.views():
        view = result.view(view_name)
        assert isinstance(view, View), view_name
        assert view.what, view_name
        assert view or view.reason, view_name


def test_an_unknown_view_names_the_known_ones(demo):
    with pytest.raises(KeyError, match="ChurnResult has no view 'nope'; it has: by_attribute"):
        demo["churn"].view("nope")


@pytest.mark.parametrize("name", list(VIEW_NAMES))
def test_notebooks_ask_only_for_views_their_result_has(name):
    nb = json.loads((ROOT / "notebooks" / f"{NOTEBOOKS[name]}.ipynb").read_text("utf-8"))
    asked = {
        found
        for cell in nb["cells"]
        if cell["cell_type"] == "code"
        for found in re.findall(r'\.view\("([^"]+)"\)', "".join(cell["source"]))
    }
    assert asked == set(VIEW_NAMES[name])


# ---------------------------------------------------------------------------------------------
# The demo: what each view holds


def test_demo_pattern_views(demo):
    result = demo["patterns"]
    profile_view = result.view("profile")
    assert len(profile_view.table) == len(result.profile.significant) > 10
    first = profile_view.table.iloc[0]
    assert (first["attribute"], first["level"]) == ("industry", "SaaS")
    combined = result.view("combined")
    assert len(combined.table) == 3
    assert (
        combined.table["sentence"]
        .iloc[0]
        .startswith("80% of best customers have industry FinTech or SaaS vs 36% of the rest")
    )
    behaviour = result.view("behaviour")
    assert behaviour.table["signal"].tolist() == [
        "usage_active_users",
        "usage_crm_syncs",
        "usage_reports_created",
        "nps_mean",
    ]
    assert "sentence" not in behaviour.table
    sales = result.view("segment_sales").table
    # All accounts, three size segments, k-means and Ward clusters (k chosen on the demo).
    k = result.segments.params["k_kmeans"] + result.segments.params["k_ward"]
    assert len(sales) == 1 + 3 + k
    assert sales.iloc[0][["segment", "accounts"]].tolist() == ["All accounts", "3,000"]
    assert "win rate" in sales and "NRR" not in sales
    customers = result.view("segment_customers").table
    assert "NRR" in customers and "win rate" not in customers
    assert len(result.view("segment_profiles").table) == 3 + k
    silhouette = result.view("silhouette")
    # k from 2 to 8 for k-means and for Ward.
    assert silhouette.table.groupby("method").size().to_dict() == {"kmeans": 7, "ward": 7}


def test_demo_churn_views(demo):
    result = demo["churn"]
    by_attribute = result.view("by_attribute")
    assert by_attribute.max_rows == 80
    crm = by_attribute.table[by_attribute.table["Attribute"] == "crm"].set_index("Level")
    assert crm.loc["None", "Churns"] == "faster" and crm.loc["None", "Churned"] == 98
    reasons = result.view("reasons").table
    assert len(reasons) == 8 and reasons["Churned"].sum() == 322
    assert reasons["Reason"].iloc[0] == "Price"
    by_segment = result.view("reasons_by_segment").table
    assert by_segment.iloc[0][["Attribute", "Level", "Reason"]].tolist() == [
        "crm",
        "None",
        "Missing integration",
    ]
    assert len(result.view("early_churn").table) == 8
    cox = result.view("cox")
    assert len(cox.table) == len(churn.cox_view(result)) > 0
    assert cox.notes == result.cox.findings[1:] + result.cox.caveats
    assert cox.notes[0].startswith("crm = None: churn hazard 2.03x that of HubSpot")
    rules = result.view("exclude_rules")
    assert rules.empty_as == "success"
    assert len(rules.table) == len(result.anti_patterns) == 6
    assert {"employees < 60", "crm = None"} <= set(rules.table["Exclude rule"])
    # The demo has no trials: said as a skipped part, in the trial analysis' own words.
    trials = result.view("trials")
    assert not trials and trials.empty_as == "skipped"
    assert trials.reason == " ".join(result.trials.caveats)
    assert trials.reason.startswith("No trial data (no subscription plan named like 'trial'")


def test_demo_deal_views(demo):
    result = demo["deals"]
    win_rate = result.view("win_rate_by_attribute")
    assert win_rate.max_rows == 80
    industry = win_rate.table[win_rate.table["Attribute"] == "industry"]
    assert "Education" in set(industry["Level"])
    losses = result.view("loss_reasons").table
    assert len(losses) == 6
    assert losses.iloc[0][["Reason", "Lost deals", "No decision"]].tolist() == [
        "No decision",
        1593,
        "yes",
    ]
    by_segment = result.view("loss_reasons_by_segment").table
    assert by_segment[["Attribute", "Level", "Reason", "Lost deals"]].values.tolist() == [
        ["crm", "None", "No decision", 673]
    ]
    no_decision = result.view("no_decision_by_attribute").table.set_index(["Attribute", "Level"])
    assert no_decision.loc[("crm", "None"), "No decision share"] == "49% (47%–52%)"
    cycle = result.view("sales_cycle")
    assert cycle.max_rows == 60 and cycle.table.iloc[0]["Attribute"] == "all"
    size = result.view("deal_size").table
    assert size["Level"].tolist() == ["all", "SMB", "Mid-market", "Enterprise"]
    assert size["Won deals"].iloc[0] == 1490
    rules = result.view("exclude_rules")
    assert len(rules.table) == len(result.anti_patterns) > 0
    funnel = result.view("stage_funnel")
    assert not funnel and funnel.empty_as == "skipped"
    assert funnel.reason == result.funnel.caveats[0]
    assert funnel.reason.startswith("The opportunities table records only each deal's current")


def test_demo_voice_of_customer_views(demo):
    result = demo["voc"]
    themes = result.view("themes").table
    assert len(themes) == 15 and themes["theme"].iloc[-1] == "(uncoded)"
    assert themes.columns[1] == "All notes (n=4,997)"
    assert len(result.view("theme_tests").table) == len(result.themes.tables["tests"]) > 0
    assert len(result.view("segments").table) == 10
    quotes = result.view("quotes")
    assert quotes.max_rows == 80 and len(quotes.table) == len(result.themes.tables["quotes"]) > 0
    assert len(result.view("uncoded").table) == 20  # the notebook's uncoded_sample default
    survey = result.view("survey").table
    assert set(survey["group"]) == {"best customers", "churned customers"}
    committee = result.view("committee").table
    assert committee.iloc[0][["signal", "level", "closed deals"]].tolist() == [
        "economic buyer involved",
        "yes",
        2922,
    ]
    assert len(result.view("committee_cycle").table) == len(committee)


def test_show_renders_the_table_with_its_notes_or_the_reason(demo):
    cox = demo["churn"].view("cox")
    shown = report.show(cox).markup
    assert shown == (report.table(cox.table) + report.bullets(cox.notes)).markup
    by_attribute = demo["churn"].view("by_attribute")
    assert report.show(by_attribute).markup == report.table(by_attribute.table, max_rows=80).markup
    funnel = _text(report.show(demo["deals"].view("stage_funnel")))
    assert funnel.startswith("The opportunities table records only each deal's current stage")


# ---------------------------------------------------------------------------------------------
# Constructed degenerate studies: empty views, with the exact reasons


@pytest.fixture(scope="module")
def no_churn():
    """600 customers, none of whom has churned."""
    tables = churn_tables(np.random.default_rng(5), churn=False)
    study = make_study(tables, categorical=["tier", "color"], numeric=["employees"])
    return churn.churn_analysis(study)


def test_churn_views_without_any_churn(no_churn):
    result = no_churn
    views = {name: result.view(name) for name in result.views()}
    assert not any(views.values())
    why = result.not_computed["churn differences between segments"]
    assert why.startswith("no customer has churned among 600 customers up to 2026-06-30")
    assert views["by_attribute"].reason == why
    assert _text(report.show(views["by_attribute"])).startswith(
        "Not enough evidence for differences in churn between segments: no customer has churned "
        "among 600 customers"
    )
    assert views["reasons"].reason == result.not_computed["churn reasons"]
    assert views["early_churn"].reason == "no customer has churned yet."
    assert views["reasons_by_segment"].reason == "No churn reasons to compare."
    assert views["reasons_by_segment"].empty_as == "info"
    assert views["cox"].reason == "Not fitted: no churn events."
    assert views["exclude_rules"].reason == CHURN_EXCLUDE_NONE
    assert views["exclude_rules"].empty_as == "success"
    assert _text(report.show(views["exclude_rules"])) == CHURN_EXCLUDE_NONE


def test_churn_views_without_churn_reasons():
    """Churn is there, reasons are not: every churn reads '(no reason recorded)', and no
    segment has a reason of its own."""
    tables = churn_tables(np.random.default_rng(11))
    tables["churn_events"] = tables["churn_events"].drop(columns=["reason"])
    study = make_study(tables, categorical=["tier", "color"], numeric=["employees"])
    result = churn.churn_analysis(study)
    assert result.view("by_attribute")
    reasons = result.view("reasons").table
    assert reasons[["Reason", "Churned"]].values.tolist() == [
        ["(no reason recorded)", result.overall["churned"]]
    ]
    by_segment = result.view("reasons_by_segment")
    assert not by_segment and by_segment.empty_as == "info"
    assert by_segment.reason == (
        "No churn reason is significantly more common in one segment than in the others."
    )
    assert result.view("exclude_rules").table["Exclude rule"].tolist() == ["tier = bad"]


def test_churn_views_without_customers():
    accounts = pd.DataFrame({"account_id": ["A", "B"], "kind": ["x", "y"]})
    subscriptions = pd.DataFrame(
        {
            "account_id": pd.Series([], dtype=object),
            "start_date": pd.Series([], dtype="datetime64[ns]"),
            "end_date": pd.Series([], dtype="datetime64[ns]"),
            "arr": pd.Series([], dtype=float),
        }
    )
    study = make_study({"accounts": accounts, "subscriptions": subscriptions}, categorical=["kind"])
    result = churn.churn_analysis(study)
    why = "there are no customers with a known start date and churn status."
    assert result.not_computed == {"churn": why}
    for name in ("by_attribute", "cox", "reasons", "early_churn"):
        assert result.view(name).reason == why, name
    assert result.view("trials").reason == "No trial data."


def test_deal_views_when_no_deal_is_lost():
    tables = deal_tables(np.random.default_rng(3), whales=0)
    opportunities = tables["opportunities"]
    opportunities.loc[opportunities["stage"] == "lost", "stage"] = "won"
    opportunities["loss_reason"] = None
    result = deals.lost_deal_analysis(make_study(tables, categorical=["segment", "color"]))
    views = {name: result.view(name) for name in result.views()}
    assert views["loss_reasons"].reason == "no lost deal has a loss reason"
    assert (
        _text(report.show(views["loss_reasons"]))
        == "Not enough evidence for loss reasons: no lost deal has a loss reason"
    )
    assert views["no_decision_by_attribute"].reason == "no lost deal has a loss reason"
    assert views["loss_reasons_by_segment"].reason == "No loss reasons to compare."
    assert views["win_rate_by_attribute"].reason == (
        "no segment wins significantly more or less often than the rest once deals are "
        "clustered by account."
    )
    assert views["exclude_rules"].reason == DEALS_EXCLUDE_NONE
    assert views["exclude_rules"].empty_as == "success"
    # Won deals still have a sales cycle and a size.
    assert views["sales_cycle"].table["Attribute"].tolist() == ["all"]
    won = int((opportunities["stage"] == "won").sum())
    assert views["deal_size"].table["Won deals"].iloc[0] == won > 500


def test_deal_views_without_loss_reasons_or_opportunities():
    tables = deal_tables(np.random.default_rng(6), whales=0)
    tables["opportunities"] = tables["opportunities"].drop(columns=["loss_reason"])
    result = deals.lost_deal_analysis(make_study(tables, categorical=["segment", "color"]))
    why = "the opportunities table has no loss_reason column"
    assert result.view("loss_reasons").reason == why
    assert result.view("no_decision_by_attribute").reason == why
    assert result.view("loss_reasons_by_segment").reason == "No loss reasons to compare."

    accounts = pd.DataFrame({"account_id": ["A"], "kind": ["x"]})
    result = deals.lost_deal_analysis(make_study({"accounts": accounts}, categorical=["kind"]))
    for name in ("win_rate_by_attribute", "loss_reasons", "sales_cycle", "deal_size"):
        view = result.view(name)
        assert not view and view.reason == "there is no opportunities table.", name


def test_voice_of_customer_views_with_accounts_only():
    accounts = pd.DataFrame({"account_id": ["A", "B"], "kind": ["x", "y"]})
    result = voc.voice_of_customer(make_study({"accounts": accounts}, categorical=["kind"]))
    views = {name: result.view(name) for name in result.views()}
    assert not any(views.values())
    no_text = "there is no feedback table and no churn feedback text"
    for name in ("themes", "theme_tests", "quotes"):
        assert views[name].reason == no_text, name
    assert (
        _text(report.show(views["themes"])) == f"Not enough evidence for feedback themes: {no_text}"
    )
    assert views["segments"].reason == f"Not computed: {no_text}."
    assert views["segments"].empty_as == "info"
    assert (views["uncoded"].reason, views["uncoded"].empty_as) == ("No notes.", "skipped")
    assert views["survey"].reason == "there is no survey table"
    assert views["committee"].reason == views["committee_cycle"].reason
    assert views["committee"].reason == "there is no deal_roles table"


def test_profile_views_when_nothing_sets_best_customers_apart():
    """Colour is noise: no level is significant, nothing combines, no usage data."""
    study = make_study(churn_tables(np.random.default_rng(5)), categorical=["color"])
    result = profile.best_customer_profile(study, metric="arr", top_share=0.2)
    views = {name: result.view(name) for name in result.views()}
    assert not any(views.values())
    assert views["profile"].reason == (
        "no attribute level is significantly more or less common among the best customers "
        "than among the others."
    )
    assert views["combined"].reason == (
        "No attribute has two or more significantly over-represented levels to combine."
    )
    assert (views["behaviour"].reason, views["behaviour"].empty_as) == (
        "No usage or NPS data to compare.",
        "info",
    )


def test_segment_views_when_accounts_are_too_few_to_cluster():
    accounts = pd.DataFrame(
        {
            "account_id": [f"A{i}" for i in range(20)],
            "kind": list("xy") * 10,
            "created_at": AS_OF - pd.Timedelta(days=400),
        }
    )
    result = segments.segment_accounts(make_study({"accounts": accounts}, categorical=["kind"]))
    no_rule = "No rule-based segments: the accounts have no employee counts."
    no_clusters = (
        "No clusters: 20 accounts is too little to cluster (at least 30 accounts and one "
        "attribute are needed)."
    )
    assert result.caveats[:2] == [no_rule, no_clusters]
    # The reason is the clustering's, not the first caveat (which is about the size rules).
    silhouette = result.view("silhouette")
    assert not silhouette and silhouette.reason == no_clusters
    assert _text(report.show(silhouette)) == f"Not enough evidence for clusters: {no_clusters}"
    assert result.view("segment_profiles").reason == f"{no_rule} {no_clusters}"
    # Only the all-accounts row is left to compare.
    sales = result.view("segment_sales").table
    assert sales["segment"].tolist() == ["All accounts"]
