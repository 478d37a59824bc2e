"""The voice-of-the-customer report on the demo data recovers the planted themes; without the
optional tables it says so plainly, or is skipped."""

from __future__ import annotations

import json
import re
import shutil
from pathlib import Path

import pandas as pd
import pytest

from icp_research.analyses import voc
from icp_research.data.config import load_config
from icp_research.pipeline.runner import Progress, run_suite

from .conftest import report_text, write_project

NAME = "07_voice_of_customer"
NOTEBOOK = Path(__file__).parent.parent / "notebooks" / f"{NAME}.ipynb"


@pytest.fixture(scope="module")
def artifacts(demo_run):
    folder = demo_run.out_dir / "artifacts"
    # crm "None" is a value, not a missing one.
    return {
        name: pd.read_csv(folder / f"{name}.csv", keep_default_na=False, na_values=[""])
        for name in ("feedback_themes", "theme_tests", "survey_answers", "buying_committee")
    }


def test_report_ran_and_its_artifacts_have_the_documented_columns(demo_run, artifacts):
    manifest = json.loads((demo_run.out_dir / "artifacts" / "manifest.json").read_text())
    status = {n["name"]: n["status"] for n in manifest["notebooks"]}
    assert status[NAME] == "ok"
    assert list(artifacts["feedback_themes"].columns) == voc.FEEDBACK_THEME_COLUMNS
    assert list(artifacts["theme_tests"].columns) == voc.THEME_TEST_COLUMNS
    assert list(artifacts["survey_answers"].columns) == voc.SURVEY_ANSWER_COLUMNS
    assert list(artifacts["buying_committee"].columns) == voc.BUYING_COMMITTEE_COLUMNS


def test_feedback_themes_recover_the_planted_voice(artifacts):
    frequencies = artifacts["feedback_themes"]
    totals = frequencies[(frequencies["segment_by"] == "all") & (frequencies["segment"] == "all")]
    notes = totals.groupby("source")["notes"].first()
    # Churn feedback is in churn_events and in the feedback table: counted once.
    assert notes.to_dict() == {"all": 4997, "call note": 1691, "churn": 245, "loss": 3061}

    def share(theme, source):
        return totals.set_index(["theme", "source"]).loc[(theme, source), "share"]

    assert share("no_decision", "loss") > 0.3 and share("security_review", "loss") > 0.1
    assert share("dedicated_owner", "call note") > 0.15
    assert share("(uncoded)", "churn") == 0 and share("(uncoded)", "loss") < 0.05

    # crm "None" customers leave because the tool could not connect to their CRM.
    by_crm = frequencies[
        (frequencies["source"] == "churn")
        & (frequencies["segment_by"] == "crm")
        & (frequencies["theme"] == "missing_integration")
    ].set_index("segment")
    assert by_crm.loc["None", "significant"]
    assert (
        by_crm.loc["None", "account_share"] > 0.3 > 0.05 > by_crm.loc["None", "account_share_rest"]
    )
    assert not by_crm.drop(index="None")["significant"].fillna(False).astype(bool).any()

    tests = artifacts["theme_tests"].set_index(["outcome", "theme"])
    owner = tests.loc[("churned", "no_owner")]
    assert owner["significant"] and owner["effect"] > 1.5 and owner["ci_low"] > 1
    revops = tests.loc[("best_customer", "dedicated_owner")]
    assert revops["significant"] and revops["effect"] > 2 and revops["ci_low"] > 1.5
    assert revops["theme_share_outcome"] > 2 * revops["theme_share_rest"]
    stalled = tests.loc[("no_decision", "security_review")]
    assert stalled["significant"] and stalled["rate_with"] == 1.0
    # Notes exist for lost deals only: won vs lost is not tested on themes.
    assert "won" not in tests.index.get_level_values("outcome")
    assert (tests["q_value"] >= tests["p_value"] - 1e-12).all()


def test_survey_answers_recover_the_planted_answers(artifacts):
    survey = artifacts["survey_answers"]
    best = survey[survey["outcome"] == "best_customer"].set_index(["question", "answer"])
    revops = best.loc[("team_owner", "RevOps")]
    assert revops["significant"] and revops["effect"] > 2
    assert revops["answer_share_outcome"] > 0.4 > 0.2 > revops["answer_share_rest"]
    assert best.loc[("success_metric", "Net revenue retention"), "significant"]
    # problem_solved is noise in the demo.
    assert not survey.loc[survey["question"] == "problem_solved", "significant"].any()
    churned = survey[survey["outcome"] == "churned"].set_index(["question", "answer"])
    assert churned.loc[("integrations_used", "Spreadsheets only"), "effect"] > 1.3


def test_buying_committee_recovers_the_planted_roles(artifacts):
    committee = artifacts["buying_committee"].set_index(["signal", "level"])
    buyer = committee.loc[("has_economic_buyer", "yes")]
    assert buyer["significant"] and 1.15 < buyer["effect"] < 1.6
    assert buyer["win_rate_ci_low"] < buyer["win_rate"] < buyer["win_rate_ci_high"]
    assert buyer["accounts"] < buyer["deals"]  # deals cluster by account
    assert buyer["test"] == "poisson_cluster_robust"
    champion = committee.loc[("champion_function", "RevOps / Sales Ops")]
    assert champion["significant"] and champion["effect"] > 1.3
    assert committee.loc[("has_champion", "yes"), "significant"]
    # Larger companies bring more people and take longer to close: cycles grow with people.
    people = committee.loc["people"]
    assert people.loc["6+", "median_cycle_days"] > people.loc["1", "median_cycle_days"]
    assert people["cycle_q_value"].iloc[0] < 0.05
    assert (committee["open_deals"] > 0).any()


def test_report_text_summary_quotes_and_privacy(demo_run):
    text = report_text(demo_run, NAME)
    summary = text[text.index("4,997 feedback notes") : text.index("How sure we are")]
    assert "Customers whose notes mention no internal owner churn more often" in summary
    assert "best customers' notes mention dedicated owner (RevOps / Sales Ops)" in summary
    assert "'no decision' losses mention security review" in summary
    assert "with no CRM mentions missing integration" in summary
    assert '"RevOps" to team owner' in summary
    assert "crm = None" not in summary
    assert "Deals whose champion works in RevOps / Sales Ops win" in summary
    assert "Deals with an economic buyer involved win" in summary
    assert "Won and lost deals cannot be compared on notes" in text
    assert "make it part of qualification for ICP deals" in text
    assert "In their words" in text and "What the codebook missed" in text
    assert "founder runs it himself when he has time" in text  # uncoded, shown to grow rules
    # Buying-committee people appear only as seniority and function, never by title.
    for title in ("Chief Revenue Officer", "Head of Revenue Operations", "Procurement Specialist"):
        assert title not in text
    assert not re.search(r"[\w.+-]+@[\w-]+\.[a-z]{2,}", text)
    assert "didn't" in text  # quotes arrive as text, punctuation and all


def test_without_the_tables_the_report_says_so(tmp_path):
    """Accounts and churn events without feedback text, a survey nobody could answer as a
    customer: every part says why it is empty, nothing fails."""
    config = write_project(
        tmp_path / "project",
        {
            "accounts.csv": "account_id,industry\nA,SaaS\nB,Retail\nC,SaaS\n",
            "churn_events.csv": "account_id,churned_at,reason\nA,2025-03-01,Price\n",
            "survey.csv": "account_id,question,answer\nA,team_owner,RevOps\nB,team_owner,Finance\n",
        },
        '[project]\nas_of = "2025-06-30"\n'
        '[tables.accounts]\npath = "accounts.csv"\n'
        '[tables.churn_events]\npath = "churn_events.csv"\n'
        '[tables.survey]\npath = "survey.csv"\n',
    )
    notebooks = tmp_path / "notebooks"
    notebooks.mkdir()
    shutil.copy(NOTEBOOK, notebooks / NOTEBOOK.name)
    run = run_suite(
        config=config, out=tmp_path / "run", notebooks_dir=notebooks, progress=Progress(quiet=True)
    )
    assert [o.status for o in run.outcomes] == ["ok"]
    text = report_text(run, NAME)
    assert (
        "Not enough evidence for feedback themes: there is no feedback table and no churn "
        "feedback text" in text
    )
    assert "Not enough evidence for survey answers: no customer answered the survey" in text
    assert "Not enough evidence for buying-committee signals: there is no deal_roles table" in text
    assert "Nothing in the feedback, survey or buying committees is strong enough" in text
    for name in ("feedback_themes", "theme_tests", "survey_answers", "buying_committee"):
        frame = pd.read_csv(run.out_dir / "artifacts" / f"{name}.csv")
        assert frame.empty and len(frame.columns) > 5


def test_the_maven_example_skips_the_report(tmp_path):
    example = Path(__file__).parent.parent / "examples" / "maven-crm" / "icp.toml"
    if not (example.parent / load_config(example).tables["accounts"].path).exists():
        pytest.skip("the public Maven export is not beside this checkout")
    notebooks = tmp_path / "notebooks"
    notebooks.mkdir()
    shutil.copy(NOTEBOOK, notebooks / NOTEBOOK.name)
    run = run_suite(
        config=example, out=tmp_path / "run", notebooks_dir=notebooks, progress=Progress(quiet=True)
    )
    [outcome] = run.outcomes
    assert outcome.status == "skipped"
    assert outcome.reason == "no feedback or survey or deal_roles or churn_events tables"
    assert run.exit_code == 0
