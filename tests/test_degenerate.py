"""Degenerate data: every report still renders, and says what it could not compute and why.

The notebooks run in this process (see ``tests/inprocess.py``) on small projects cut from the
demo data: one outcome only, a single account, accounts only, no deals, no wins and empty
columns, and a quarter before the first record. One real run (kernels, HTML) closes the file.
"""

from __future__ import annotations

import html
import json
import re

import pytest

from icp_research.result import Result

from .conftest import report_text
from .inprocess import run_suite_in_process
from .projects import AS_OF, DEGENERATE, write_canonical

AS_OF = AS_OF.strftime("%Y-%m-%d")
CASES = [*DEGENERATE, "before_first_record"]


@pytest.fixture(scope="module")
def degenerate(tmp_path_factory):
    """case -> (notebook runs, skipped notebooks with the runner's reason)."""
    base = tmp_path_factory.mktemp("degenerate")
    out = {}
    for case in CASES:
        build = DEGENERATE.get(case, DEGENERATE["won_only_narrow"])
        config = write_canonical(base / case, build(), name=case, as_of=AS_OF)
        as_of = "2000-01-01" if case == "before_first_record" else ""
        out[case] = run_suite_in_process(config, base / case / "artifacts", as_of=as_of)
    return out


def _text(run) -> str:
    return " ".join(html.unescape(re.sub(r"<[^>]+>", " ", run.text)).split())


@pytest.mark.parametrize("case", CASES)
def test_every_report_renders_and_explains_itself(degenerate, case):
    runs, _ = degenerate[case]
    assert "00_data_overview" in runs
    for name, run in runs.items():
        assert run.error is None, f"{case} / {name} failed at cell {run.failed_cell}: {run.error!r}"
        result = run.namespace.get("result")
        assert isinstance(result, Result), name
        # The summary box opens every report, and something says what could not be done.
        assert "icp-summary" in run.text, name
        assert result.caveats or result.findings, name


def test_one_outcome_one_member_constant_and_empty_columns(degenerate):
    runs, skipped = degenerate["won_only_narrow"]
    assert not skipped
    text = {name: _text(run) for name, run in runs.items()}
    assert "Every row has won = True: there is nothing to separate" in text["01_pattern_discovery"]
    assert "no customer has churned" in text["02_churn_analysis"]
    assert (
        "Not enough evidence for loss reasons: no lost deal has a loss reason"
        in (text["03_lost_deal_analysis"])
    )
    completeness = runs["00_data_overview"].namespace["result"].tables["completeness"]
    roles = dict(zip(completeness["attribute"], completeness["role"], strict=True))
    assert roles["crm"] == "not a predictor: always empty"
    assert roles["region"] == "not a predictor: the same value for every account"
    # The single Mining account is not tested on its own, and the report says why.
    win_rates = runs["03_lost_deal_analysis"].namespace["result"].tables["win_rate_by_attribute"]
    industry = win_rates[win_rates["attribute"] == "industry"].set_index("level")
    assert industry["note"].str.contains("only 1 account").any()
    assert not industry["significant"].astype(bool).any()


def test_a_single_account(degenerate):
    runs, _ = degenerate["single_account"]
    overview = runs["00_data_overview"].namespace["result"]
    assert overview.totals["accounts"] == 1
    # One won deal and no lost one: a win rate of 100% would say nothing, so it says that.
    assert (
        "the win rate is not measurable, every closed deal in this export is won (1 deal; no "
        "lost deals recorded)" in " ".join(overview.findings)
    )
    assert overview.headline["Win rate"].startswith("not measurable — ")
    assert "No predictor stands out" in _text(runs["04_predictor_significance"])
    assert "Not enough evidence for clusters" in _text(runs["01_pattern_discovery"])


def test_accounts_only_skips_with_reasons(degenerate):
    runs, skipped = degenerate["accounts_only"]
    assert list(runs) == ["00_data_overview"]
    assert skipped["03_lost_deal_analysis"] == "no opportunities table"
    assert skipped["02_churn_analysis"] == "no subscriptions or churn_events tables"


def test_no_deals_and_everyone_churned(degenerate):
    runs, skipped = degenerate["no_deals_all_churned"]
    assert skipped == {"03_lost_deal_analysis": "no opportunities table"}
    churn = runs["02_churn_analysis"].namespace["result"]
    assert churn.overall["customers"] == churn.overall["churned"] > 0
    assert "Not enough evidence for subgroups of won: there is no opportunities table" in (
        _text(runs["01_pattern_discovery"])
    )


def test_no_deal_won_and_empty_amounts(degenerate):
    runs, _ = degenerate["lost_only_empty_columns"]
    assert "Every row has won = False" in _text(runs["01_pattern_discovery"])
    assert "Not enough evidence for deal size: won deals have no amount" in (
        _text(runs["03_lost_deal_analysis"])
    )


def test_a_quarter_before_the_first_record(degenerate):
    runs, _ = degenerate["before_first_record"]
    overview = runs["00_data_overview"].namespace["result"]
    assert overview.caveats[0].startswith(
        "Nothing in the data is dated on or before the analysis date (2000-01-01)"
    )
    assert overview.totals["accounts"] == 0
    nothing = "the opportunities table has nothing dated on or before the analysis date"
    assert nothing in _text(runs["01_pattern_discovery"])
    assert nothing in _text(runs["03_lost_deal_analysis"])
    assert "there is no opportunities table" not in _text(runs["04_predictor_significance"])


@pytest.mark.e2e
def test_a_real_run_on_degenerate_data(tmp_path):
    """Kernels and HTML: one class, a one-member category, a constant and an empty column,
    no churn table, and a quarter before the first record in the same run folder tree."""
    from icp_research.pipeline.runner import Progress, run_suite

    config = write_canonical(
        tmp_path / "project", DEGENERATE["won_only_narrow"](), name="Narrow", as_of=AS_OF
    )
    run = run_suite(config=config, out=tmp_path / "reports" / "narrow", progress=Progress(True))
    manifest = json.loads((run.out_dir / "artifacts" / "manifest.json").read_text())
    statuses = {n["name"]: n["status"] for n in manifest["notebooks"]}
    assert set(statuses.values()) <= {"ok", "skipped"}, statuses
    assert run.exit_code == 0
    assert "Every row has won = True" in report_text(run, "01_pattern_discovery")
    assert "Not enough evidence for loss reasons" in report_text(run, "03_lost_deal_analysis")
    churn = report_text(run, "02_churn_analysis")
    assert "Not enough evidence for churn reasons: no customer has churned" in churn
