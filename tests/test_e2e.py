"""End to end: the whole suite on the demo data with real kernels, and the run contract."""

from __future__ import annotations

import json
import re

from .conftest import report_text


def test_every_report_ran_and_the_index_links_it(demo_run):
    manifest = json.loads((demo_run.out_dir / "artifacts" / "manifest.json").read_text())
    statuses = {n["name"]: n["status"] for n in manifest["notebooks"]}
    assert statuses and all(s == "ok" for s in statuses.values()), statuses
    index = (demo_run.out_dir / "index.html").read_text()
    for name in statuses:
        assert f'href="{name}.html"' in index or f"href='{name}.html'" in index
        assert (demo_run.out_dir / f"{name}.ipynb").exists()
    assert demo_run.exit_code == 0


def test_manifest_contract(demo_run):
    manifest = json.loads((demo_run.out_dir / "artifacts" / "manifest.json").read_text())
    for key in ("kit_version", "run", "as_of", "parameters", "inputs", "notebooks", "versions"):
        assert key in manifest
    assert manifest["as_of"] == "2026-09-30"
    inputs = {i["table"]: i for i in manifest["inputs"]}
    assert inputs["accounts"]["rows"] == 3000
    assert re.fullmatch(r"[0-9a-f]{64}", inputs["accounts"]["sha256"])
    for notebook in manifest["notebooks"]:
        assert notebook["seconds"] > 0


def test_reports_show_no_code_and_fetch_nothing(demo_run):
    for path in demo_run.out_dir.glob("*.html"):
        markup = path.read_text()
        assert not re.search(r"""(src|href)\s*=\s*["']?https?://""", markup), path.name
        assert "<script" not in markup.lower(), path.name
    for path in demo_run.out_dir.glob("[0-9][0-9]_*.html"):
        markup = path.read_text()
        assert "import icp_research" not in markup, path.name
        assert "injected-parameters" not in markup and "artifacts_dir =" not in markup, path.name


def test_data_overview_content(demo_run):
    text = report_text(demo_run, "00_data_overview")
    assert "3,000 accounts as of 2026-09-30" in text
    assert "win rate" in text and "clustered by account" in text
    assert "Primary Contact Email" in text  # the dropped personal-data column is reported
    overview = json.loads((demo_run.out_dir / "artifacts" / "overview.json").read_text())
    assert overview["totals"]["accounts"] == 3000
    assert 0.15 < overview["totals"]["win_rate"]["rate"] < 0.45
    assert overview["totals"]["win_rate"]["ci_low"] < overview["totals"]["win_rate"]["rate"]


def test_dashboard_shows_each_reports_key_finding(demo_run):
    manifest = json.loads((demo_run.out_dir / "artifacts" / "manifest.json").read_text())
    index = report_text(demo_run, "index")
    for notebook in manifest["notebooks"]:
        assert notebook["key_finding"], notebook["name"]
        assert notebook["key_finding"][:60] in index
    overview = next(n for n in manifest["notebooks"] if n["name"] == "00_data_overview")
    assert overview["key_finding"].startswith("3,000 accounts as of 2026-09-30")


def test_the_dashboard_has_its_two_charts(demo_run):
    # The runner draws them on its render thread (once the health report is done); they must
    # still reach the dashboard whole.
    index = (demo_run.out_dir / "index.html").read_text()
    assert index.count('<figure class="icp-figure">') == 2
    assert index.count("data:image/png;base64,") == 2
