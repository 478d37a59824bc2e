"""Named views: the tables of the data overview, pattern, churn, lost-deal, predictor
significance, ICP health and voice-of-customer reports, each with the reason a reader sees when
it is empty. The reasons live in the package (tested here),
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
from icp_research.analyses import (
    churn,
    deals,
    health,
    overview,
    patterns,
    profile,
    significance,
    voc,
)
from icp_research.formatting import fmt_pct
from icp_research.methods import segments
from icp_research.reporting import display as report
from icp_research.result import View

from .icp_documents import categorical, demo_icp, icp_document
from .studies import AS_OF, churn_tables, deal_tables, make_study
from .test_health import known_icp, known_tables
from .test_significance import variant

ROOT = Path(__file__).parent.parent

VIEW_NAMES = {
    "overview": ["problems", "trust"],
    "patterns": [
        "profile",
        "combined",
        "cohorts",
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
    "significance": [
        "recommended",
        "ranked",
        "findings",
        "forest",
        "model",
        "joint",
        "power",
        "behavioural",
    ],
    "health": [
        "comparison",
        "flags",
        "previous_icp",
        "trends",
        "tiers",
        "icp_share",
        "shares",
        "drift",
        "pipeline_drift",
        "changes",
        "points",
        "validation",
        "calibration",
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
    "overview": "00_data_overview",
    "patterns": "01_pattern_discovery",
    "churn": "02_churn_analysis",
    "deals": "03_lost_deal_analysis",
    "significance": "04_predictor_significance",
    "health": "06_icp_health",
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
def demo(tmp_path_factory):
    """The results on the demo data, as the notebooks compute them (default parameters). The
    health report monitors a known ICP for 2026Q3 against a previous run holding 2026Q2's, so
    that its change log has something to show."""
    study = icp.open_study()
    previous = tmp_path_factory.mktemp("views") / "demo-2026Q2"
    (previous / "artifacts").mkdir(parents=True)
    (previous / "artifacts" / "icp.json").write_text(json.dumps(demo_icp("2026Q2")))
    (previous / "artifacts" / "manifest.json").write_text(
        json.dumps({"run": "demo-2026Q2", "as_of": "2026-06-30"})
    )
    return {
        "overview": overview.data_overview(study),
        "significance": significance.predictor_significance(study),
        "health": health.icp_health(
            study, demo_icp("2026Q3"), quarter="2026Q3", quarters=3, previous_run=previous
        ),
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
        .startswith("75% of best customers have industry FinTech or SaaS vs 35% of the rest")
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
    # In words for the reader ("crm = None" is "no CRM"); the code form stays in the CSV.
    assert {"Accounts with fewer than 60 employees", "Accounts with no CRM"} <= set(
        rules.table["Exclude rule"]
    )
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


def test_demo_overview_views(demo):
    result = demo["overview"]
    problems = result.view("problems")
    assert len(problems.table) == len(result.tables["problems"]) == 3
    assert set(problems.table["level"]) == {"info"}
    # The deals' Lead Source says what the accounts' referral source says: not tested twice.
    assert problems.table["message"].str.contains("is not kept apart").sum() == 1
    trust = result.view("trust").table
    assert trust[["table", "column", "rows_affected"]].values.tolist() == [
        ["subscriptions", "Start Date", 909],
        ["accounts", "Employees", 2],
    ]


def test_demo_significance_views(demo):
    result = demo["significance"]
    recommended = result.view("recommended").table
    assert len(recommended) == len(result.recommended) == 4
    assert recommended.iloc[0][["rank", "predictor", "favour", "avoid"]].tolist() == [
        1,
        "employees",
        "150 to < 250, 250 to < 600, >= 600",
        "< 60",
    ]
    ranked = result.view("ranked").table
    assert len(ranked) == 21
    assert ranked.iloc[0][["outcome", "predictor", "replicated"]].tolist() == [
        "won",
        "industry",
        "replicated",
    ]
    findings = result.view("findings")
    assert findings.max_rows == 60 and len(findings.table) == 81
    assert findings.table.iloc[0]["finding"] == "Accounts in FinTech"  # words, not code
    forest = result.view("forest").table
    assert result.forest_outcome == "won"
    assert len(forest) == 23 and set(forest["outcome"]) == {"won"}
    model = result.view("model").table
    assert len(model) == len(result.model.summary) == 24
    assert model["term"].iloc[0] == "employees=< 60 (reference)"
    joint = result.view("joint").table
    assert len(joint) == 4 and joint["adds to the others"].eq("yes").all()
    power = result.view("power")
    assert power.max_rows == 60 and len(power.table) == 23
    assert (power.table["verdict"] != "predicts").all()
    behavioural = result.view("behavioural").table
    assert len(behavioural) == 8 and set(behavioural["outcome"]) == {"retained", "best_customer"}


def test_demo_health_views(demo):
    result = demo["health"]
    comparison = result.view("comparison").table.set_index("measure")
    assert len(comparison) == 7
    assert comparison.loc["win rate", "verdict"] == "ICP better (significant)"
    # Nothing is worse for the demo's ICP: said as a success, in the package's words.
    flags = result.view("flags")
    assert not flags and flags.empty_as == "success" and result.flags == []
    assert _text(report.show(flags)) == (
        "No measure is worse for ICP accounts this quarter, and every measure had enough data "
        "to compare."
    )
    assert len(result.view("previous_icp").table) == 7
    assert result.view("trends").table["quarter"].tolist() == ["2026Q1", "2026Q2", "2026Q3"]
    assert result.view("tiers").table["tier"].tolist() == ["Tier 1", "Tier 2", "Tier 3"]
    shares = result.view("shares").table
    assert result.view("icp_share").table.equals(shares)
    assert shares["new customers"].tolist() == [136, 173, 170]
    drift = result.view("drift").table
    assert set(drift["attribute"]) == {"industry", "crm", "fit_score", "employees"}
    assert drift["accounts now"].iloc[0] == 170
    assert result.view("pipeline_drift").table["accounts now"].iloc[0] == 749
    changes = result.view("changes").table
    assert ["rule removed", "crm = None"] in changes[["change", "item"]].values.tolist()
    points = result.view("points")
    assert points.max_rows == 20
    assert points.table[["level", "moved"]].values.tolist() == [["FinTech", 6], ["SaaS", -2]]
    assert result.view("validation").table["measure"].tolist() == ["Holdout AUC", "Holdout rows"]


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
    """Churn is there, reasons are not: the reasons table says so (not '(no reason recorded)'
    at 100%), and there is nothing to compare by segment."""
    tables = churn_tables(np.random.default_rng(11))
    tables["churn_events"] = tables["churn_events"].drop(columns=["reason"])
    study = make_study(tables, categorical=["tier", "color"], numeric=["employees"])
    result = churn.churn_analysis(study)
    assert result.view("by_attribute")
    overall = result.tables["churn_reasons"]
    overall = overall[overall["attribute"] == "all"]
    assert overall[["reason", "churned"]].values.tolist() == [
        ["(no reason recorded)", result.overall["churned"]]
    ]
    reasons = result.view("reasons")
    assert not reasons and reasons.reason == "no churn reason was recorded."
    by_segment = result.view("reasons_by_segment")
    assert not by_segment and by_segment.empty_as == "info"
    assert by_segment.reason == "No churn reasons to compare."
    assert result.view("exclude_rules").table["Exclude rule"].tolist() == [
        "Accounts with bad as tier"
    ]


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
    # Only the start-year table has rows: it exists whatever sets best customers apart.
    assert [name for name, view in views.items() if view] == ["cohorts"]
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


def test_overview_views_of_clean_data():
    """No validation finding: the problems read as a success, in the package's words."""
    study = make_study(churn_tables(np.random.default_rng(5)), categorical=["tier", "color"])
    problems = overview.data_overview(study).view("problems")
    assert not problems and problems.empty_as == "success"
    assert problems.reason == "No data problems found."
    assert _text(report.show(problems)) == "No data problems found."


def test_overview_trust_view_without_problems_of_meaning():
    accounts = pd.DataFrame({"account_id": ["A", "B"], "kind": ["x", "y"]})
    trust = overview.data_overview(make_study({"accounts": accounts}, categorical=["kind"])).view(
        "trust"
    )
    assert not trust and (trust.reason, trust.empty_as) == (
        "No problems of meaning found.",
        "success",
    )


def test_significance_views_with_accounts_only():
    """Nothing can be tested: every view is empty, and says why."""
    study = icp.open_study()
    result = significance.predictor_significance(
        variant(study, {"accounts": study.dataset.tables["accounts"]})
    )
    views = {name: result.view(name) for name in result.views()}
    assert not any(views.values())
    assert views["recommended"].reason == result.findings[0]
    assert views["recommended"].reason.startswith("No predictor stands out")
    assert _text(report.show(views["recommended"])).startswith(
        "Not enough evidence for a data-backed shortlist of ICP characteristics: No predictor "
        "stands out"
    )
    assert (views["ranked"].reason, views["ranked"].empty_as) == (
        "No predictor stands out: nothing is significant after correcting for multiple testing.",
        "info",
    )
    assert (views["findings"].reason, views["findings"].empty_as) == ("Nothing to list.", "info")
    assert views["forest"].reason == (
        "no finding is significant after correcting for multiple testing"
    )
    assert views["model"].reason == views["joint"].reason == "no yes/no outcome could be tested"
    assert _text(report.show(views["model"])) == (
        "Not enough evidence for a multivariable model: no yes/no outcome could be tested"
    )
    # Nothing was tested, so the power table is not empty because everything is significant.
    assert (views["power"].reason, views["power"].empty_as) == ("No predictor was tested.", "info")
    assert views["behavioural"].reason == "the data has no usage or NPS signals for customers"


def test_significance_views_when_every_predictor_is_significant(demo):
    """The power table lists predictors without a finding: with none, it says so."""
    result = demo["significance"]
    summary = result.tables["predictor_summary"]
    everything = significance.SignificanceResult(
        title=result.title,
        summary=result.summary,
        tables={"predictor_summary": summary[summary["verdict"] == "predicts"]},
    )
    power = everything.view("power")
    assert not power and power.reason == "Every predictor has a significant finding."


def test_significance_model_reason_names_the_outcome_without_predictors():
    result = significance.SignificanceResult(
        title="Predictor significance",
        tables={"outcomes": pd.DataFrame({"outcome": ["won"], "status": ["tested"]})},
    )
    model = result.view("model")
    assert not model and model.reason == (
        "no predictor of winning a deal was significant, so there is nothing to put in a model"
    )


@pytest.fixture(scope="module")
def known_study():
    return make_study(known_tables(), categorical=["industry"], numeric=["employees"])


def test_health_views_with_flags_and_a_first_run(known_study):
    result = health.icp_health(known_study, known_icp(), quarter="2026Q2", quarters=2)
    flags = result.view("flags")
    assert flags.table["flag"].tolist() == result.flags and len(result.flags) == 2
    previous = result.view("previous_icp")
    assert not previous and previous.reason == (
        "there is no run of an earlier quarter with an ICP to compare with (a rerun of this "
        "quarter does not count): the check starts with next quarter's run."
    )
    first_run = (
        "No run of an earlier quarter to compare with (a rerun of this quarter does not count). "
        "This run's ICP is recorded as the starting point of the change log."
    )
    assert result.changelog.summary == first_run
    for name in ("changes", "points", "validation"):
        view = result.view(name)
        assert not view and (view.reason, view.empty_as) == (first_run, "info"), name


def test_health_views_without_a_drawn_icp(known_study):
    """No defining include rule: nothing is compared, the tiers are still measured."""
    spec = icp_document(
        as_of="2026-06-30",
        include=[],
        scorecard=[categorical("industry", {"SaaS": 100, "Retail": 0}, 50)],
        tiers=(("Tier 1", 70), ("Tier 2", 0)),
    )
    result = health.icp_health(known_study, spec, quarter="2026Q2", quarters=1)
    why = (
        "No ICP is drawn in the monitored definition (no defining include rule), so ICP and "
        "non-ICP accounts cannot be compared; the fit-score tiers are shown instead."
    )
    comparison = result.view("comparison")
    assert not comparison and comparison.reason == why
    assert (
        _text(report.show(comparison))
        == f"Not enough evidence for an ICP vs non-ICP comparison: {why}"
    )
    # Without a comparison there is nothing to flag, and no "nothing is worse" either.
    flags = result.view("flags")
    assert not flags and (flags.reason, flags.empty_as) == (why, "not_enough_evidence")
    assert result.view("trends").reason == (
        "no ICP is drawn, so there is nothing to compare quarter by quarter."
    )
    assert result.view("icp_share").reason == "no ICP is drawn."
    assert result.view("tiers").table["tier"].tolist() == ["Tier 1", "Tier 2"]
    # The share table still shows the tiers.
    assert "customers in Tier 1" in result.view("shares").table


def test_health_views_without_any_icp(known_study):
    unknown = health.MonitoredIcp(None, "none", "No ICP definition to monitor: none was given.")
    result = health.icp_health(known_study, unknown, quarter="2026Q2", quarters=1)
    views = {name: result.view(name) for name in result.views()}
    assert not any(views.values())
    assert views["tiers"].reason == "the monitored ICP has no fit score."
    assert _text(report.show(views["tiers"])) == (
        "Not enough evidence for a tier view: the monitored ICP has no fit score."
    )
    assert views["shares"].reason == "no ICP is drawn and the monitored ICP has no fit score."
    assert views["drift"].reason == (
        "no ICP is drawn (drift is measured on the attributes the ICP and its score use), or "
        "there is no previous quarter."
    )
    assert views["pipeline_drift"].reason == (
        "no ICP is drawn, there is no opportunities table, or there is no previous quarter."
    )
    assert views["changes"].reason == result.changelog.summary
    assert views["changes"].reason.startswith("This run has no ICP definition")


def test_the_overview_gives_net_revenue_retention_with_its_interval(demo):
    """NRR is a ratio of sums over the customers paying a year ago: its interval is the ratio
    estimator's, one cluster per customer. Recomputed independently as a weighted regression
    through the origin (weights 1 / ARR a year ago: its slope is sum(now) / sum(a year ago)),
    with statsmodels' cluster-robust errors."""
    import statsmodels.api as sm

    result = demo["overview"]
    facts = icp.open_study().facts
    cohort = facts[facts["arr_12m_ago"] > 0]
    now, before = cohort["arr_current"].to_numpy(float), cohort["arr_12m_ago"].to_numpy(float)
    fit = sm.WLS(now, before, weights=1 / before).fit(
        cov_type="cluster", cov_kwds={"groups": np.arange(len(cohort))}
    )
    low, high = fit.conf_int(0.05)[0]
    totals = result.totals
    assert totals["nrr_12m"] == pytest.approx(fit.params[0], rel=1e-12)
    interval = totals["nrr_12m_interval"]
    assert (interval["ci_low"], interval["ci_high"]) == (
        pytest.approx(low, rel=1e-9),
        pytest.approx(high, rel=1e-9),
    )
    assert interval["n"] == len(cohort)
    words = f"{fmt_pct(fit.params[0])} ({fmt_pct(low)}–{fmt_pct(high)})"
    # The tile names how many customers it rests on.
    assert result.headline["NRR"] == (
        f"{fmt_pct(fit.params[0])} ({fmt_pct(low)}–{fmt_pct(high)}; {len(cohort):,} customers)"
    )
    assert any(f"net revenue retention is {words}." in f for f in result.findings)


def test_the_overview_reads_counts_and_medians_as_people_write_them(demo):
    result = demo["overview"]
    examples = dict(result.tables["completeness"][["attribute", "example"]].values)
    assert examples["annual_revenue"] == "median 27,767,000"
    assert examples["founded_year"] == "median 2010"
    assert examples["employees"] == "median 185"
    # The demo has expansion deals: the win rate is of new-business deals, and says so.
    assert any(
        f.startswith("5,953 closed new-business deals: win rate 25%") for f in result.findings
    )


def test_the_overview_says_when_closed_deals_without_an_account_are_left_out():
    tables = deal_tables(np.random.default_rng(3))
    deals = tables["opportunities"]
    closed = deals.index[deals["stage"].isin(["won", "lost"])][:2]
    deals.loc[closed, "account_id"] = None
    result = overview.data_overview(make_study(tables, categorical=["segment", "color"]))
    # The all-time rate (the latest four quarters' follows it in a sentence of its own).
    (sentence,) = [f for f in result.findings if "win rate" in f and "latest" not in f]
    n_closed = int(deals["stage"].isin(["won", "lost"]).sum())
    assert sentence.startswith(
        f"{n_closed:,} closed deals, 2 of them without an account and left out: win rate "
    )
    linked = deals[deals["stage"].isin(["won", "lost"]) & deals["account_id"].notna()]
    assert result.totals["win_rate"]["accounts"] == linked["account_id"].nunique()
