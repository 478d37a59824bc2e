"""The ICP health report: two quarterly runs of the demo side by side, and the full demo run.

The two-quarter run keeps to what the health report needs: a stand-in for the blueprint report
writes a known icp.json for each quarter (so the change log has an exact expected answer), and
the real health notebook runs after it, on the demo data as of each quarter's end.
"""

from __future__ import annotations

import json
import re
from pathlib import Path

import nbformat
import pandas as pd
import pytest
from nbformat.v4 import new_code_cell, new_markdown_cell, new_notebook

from icp_research.analyses.health import DRIFT_COLUMNS, HEALTH_COLUMNS
from icp_research.bundled import notebooks_dir
from icp_research.pipeline.runner import Progress, run_suite

from .conftest import report_text

NAME = "06_icp_health"


def _stand_in_blueprint(path: Path) -> None:
    """A '05' notebook that writes tests.icp_documents.demo_icp(quarter) as this run's icp.json."""
    params = new_code_cell(
        'as_of: str = ""  # as of\nartifacts_dir: str = ""  # artifacts\nquarter: str = ""  # q'
    )
    params.metadata["tags"] = ["parameters"]
    code = (
        "import json, pathlib, sys\n"
        f"sys.path.insert(0, {str(Path(__file__).resolve().parent.parent)!r})\n"
        "from tests.icp_documents import demo_icp\n"
        "pathlib.Path(artifacts_dir, 'icp.json').write_text(json.dumps(demo_icp(quarter)))"
    )
    nb = new_notebook(cells=[new_markdown_cell("# ICP blueprint\nA stand-in."), params])
    nb.cells.append(new_code_cell(code))
    nb.metadata["kernelspec"] = {
        "name": "python3",
        "display_name": "Python 3",
        "language": "python",
    }
    nb.metadata["icp_research"] = {"title": "ICP blueprint", "requires": ["accounts"]}
    nbformat.write(nb, path)


@pytest.fixture(scope="module")
def two_quarters(tmp_path_factory):
    """Runs demo-2026Q2 then demo-2026Q3 into one reports folder; returns both RunResults."""
    base = tmp_path_factory.mktemp("health")
    notebooks = base / "notebooks"
    notebooks.mkdir()
    _stand_in_blueprint(notebooks / "05_icp_blueprint.ipynb")
    health = nbformat.read(notebooks_dir() / f"{NAME}.ipynb", as_version=4)
    for cell in health.cells:  # three quarters of trends are enough here, and faster
        if "parameters" in cell.metadata.get("tags", []):
            cell.source = cell.source.replace("quarters: int = 8", "quarters: int = 3")
            assert "quarters: int = 3" in cell.source
    nbformat.write(health, notebooks / f"{NAME}.ipynb")
    reports = base / "reports"
    runs = {}
    for quarter in ("2026Q2", "2026Q3"):
        runs[quarter] = run_suite(
            demo=True,
            quarter=quarter,
            out=reports / f"demo-{quarter}",
            notebooks_dir=notebooks,
            jobs=1,
            progress=Progress(quiet=True),
        )
    return runs


def _artifacts(run) -> Path:
    return run.out_dir / "artifacts"


def test_both_runs_succeed_and_the_index_lists_them_newest_first(two_quarters):
    for run in two_quarters.values():
        assert run.exit_code == 0, run.outcomes
        assert {o.status for o in run.outcomes} == {"ok"}
    later = two_quarters["2026Q3"]
    assert later.manifest["quarter"] == "2026Q3" and later.manifest["as_of"] == "2026-09-30"
    assert later.manifest["previous_run"] == "demo-2026Q2"
    assert two_quarters["2026Q2"].manifest["previous_run"] is None
    index = (later.out_dir.parent / "index.html").read_text(encoding="utf-8")
    table = index.split('<table class="icp-table icp-runs">', 1)[1]
    assert re.findall(r'<a href="([^"]+)/index.html">', table) == ["demo-2026Q3", "demo-2026Q2"]
    # The health headline joins the run's headline numbers and the ICP statement shows.
    headline = later.manifest["headline"]
    assert re.fullmatch(r"0 of \d+", headline["Measures where the ICP does worse"])
    assert headline["Drift of new customers"] == "stable"
    assert re.fullmatch(r"\d+% \(\d+–\d+%\)", headline["ICP share of new customers"])
    assert "ICP share of new customers" in index
    assert "This product fits mid-size FinTech and SaaS companies on HubSpot" in index


def test_the_later_run_compares_with_the_earlier_one(two_quarters):
    first = json.loads((_artifacts(two_quarters["2026Q2"]) / "icp_changelog.json").read_text())
    assert first["status"] == "first_run" and first["changes"] == []
    log = json.loads((_artifacts(two_quarters["2026Q3"]) / "icp_changelog.json").read_text())
    assert (log["run"], log["previous_run"], log["previous_as_of"]) == (
        "demo-2026Q3",
        "demo-2026Q2",
        "2026-06-30",
    )
    found = {
        (c["section"], c["change"], c["item"], c["before"], c["after"]) for c in log["changes"]
    }
    statement = next(c for c in log["changes"] if c["item"] == "statement")
    assert found == {
        ("statement", "changed", "statement", statement["before"], statement["after"]),
        (
            "rules",
            "changed",
            "100 <= employees < 1,000",
            "100 <= employees < 2,000",
            "100 <= employees < 1,000",
        ),
        ("rules", "added", "employees < 60", "", "exclude"),
        ("rules", "removed", "crm = None", "exclude", ""),
        ("fit score", "changed", "industry = FinTech", "30", "36"),
        ("tiers", "changed", "Tier 1", "75", "70"),
    }
    assert statement["before"].startswith("This product fits SaaS and FinTech companies of 100")
    summary = (
        "Since demo-2026Q2 (as of 2026-06-30): statement changed; 1 rule added, 1 rule removed, "
        "1 rule changed; 1 fit-score level moved by 5 points or more (largest: industry FinTech, "
        "+6); tier cut-offs moved; holdout AUC 0.62 → 0.67."
    )
    assert log["summary"] == summary
    text = report_text(two_quarters["2026Q3"], NAME)
    assert summary in text
    # The Markdown log is dated and keeps the first run's entry below this one.
    markdown = (_artifacts(two_quarters["2026Q3"]) / "icp_changelog.md").read_text()
    assert markdown.startswith(
        "# ICP change log\n\n## demo-2026Q3 (as of 2026-09-30), compared with demo-2026Q2 "
        "(as of 2026-06-30)"
    )
    assert markdown.index("## demo-2026Q2 (as of 2026-06-30)") > markdown.index("### Validation")
    assert "| industry | FinTech | 30 | 36 | +6 |" in markdown
    first_md = (_artifacts(two_quarters["2026Q2"]) / "icp_changelog.md").read_text()
    assert first_md.split("\n", 2)[2].strip() in markdown


def test_health_artifacts_and_the_report_on_the_demo(two_quarters):
    artifacts = _artifacts(two_quarters["2026Q3"])
    rows = pd.read_csv(artifacts / "icp_health.csv")
    assert list(rows.columns) == HEALTH_COLUMNS
    assert sorted(rows["quarter"].unique()) == ["2026Q1", "2026Q2", "2026Q3"]
    now = rows[(rows["quarter"] == "2026Q3") & (rows["group"] == "icp_vs_non_icp")]
    flags = dict(zip(now["metric"], now["flag"], strict=True))
    # The planted ICP wins more, buys more, closes faster, expands, stays and is happier.
    assert flags == {
        "win_rate": "better",
        "acv": "better",
        "time_to_close": "better",
        "nrr": "better",
        "logo_retention": "better",
        "revenue_retention": "better",
        "nps": "better",
    }
    win = now.set_index("metric").loc["win_rate"]
    assert 1.8 < win["value"] < 3.5 and win["ci_low"] > 1
    drift = pd.read_csv(artifacts / "icp_drift.csv")
    assert list(drift.columns) == DRIFT_COLUMNS
    current = drift[(drift["quarter"] == "2026Q3") & (drift["population"] == "new customers")]
    icp = current[current["of_icp"].astype(bool)]
    assert set(icp["attribute"]) == {"employees", "industry", "crm", "fit_score"}
    # Every other trait is watched too (a second family of tests).
    assert {"annual_revenue", "region"} <= set(current.loc[~current["of_icp"], "attribute"])
    assert (current["previous_quarter"] == "2026Q2").all()
    assert (icp["band"] == "stable").all()  # nothing drifts in the demo
    assert not (current["q_value"] < 0.05).any()
    health = json.loads((artifacts / "health.json").read_text())
    assert health["icp_source"] == "this run" and health["flags"] == []
    # Out of sample: the 2026Q2 run's ICP, measured on 2026Q3, held up as well.
    assert health["previous_run"] == "demo-2026Q2"
    out_of_sample = {r["metric"]: r["flag"] for r in health["previous_icp_this_quarter"]}
    assert len(out_of_sample) == 7 and out_of_sample["win_rate"] == "better"
    first = json.loads((_artifacts(two_quarters["2026Q2"]) / "health.json").read_text())
    assert first["previous_run"] is None and first["previous_icp_this_quarter"] == []
    text = report_text(two_quarters["2026Q3"], NAME)
    assert (
        "Out of sample: the ICP of demo-2026Q2, drawn before 2026Q3, did significantly better"
        in text
    )
    assert "In 2026Q3 ICP accounts did significantly better than the rest on win rate" in text
    assert "Monitoring the ICP drawn by this run's blueprint report (as of 2026-09-30)." in text
    for heading in (
        "This quarter: ICP accounts against the rest",
        "Over the last quarters",
        "By fit-score tier",
        "Drift: do new customers still match the ICP?",
        "What changed in the ICP since the last run",
    ):
        assert heading in text
    markup = (two_quarters["2026Q3"].out_dir / f"{NAME}.html").read_text()
    assert markup.count("<img") == 3


def test_the_health_report_in_the_full_demo_run(demo_run):
    statuses = {n["name"]: n["status"] for n in demo_run.manifest["notebooks"]}
    assert statuses[NAME] == "ok"
    artifacts = demo_run.out_dir / "artifacts"
    health = json.loads((artifacts / "health.json").read_text())
    assert health["icp_source"] == "this run" and health["quarter"] == "2026Q3"
    assert health["flags"] == []
    assert demo_run.manifest["headline"]["Measures where the ICP does worse"].startswith("0 of ")
    text = report_text(demo_run, NAME)
    assert "No run of an earlier quarter to compare with" in text
    assert "did significantly better than the rest on win rate" in text
    assert (artifacts / "icp_changelog.md").read_text().startswith("# ICP change log\n\n## demo")
