"""Reruns redo only what changed: a report whose notebook, parameters, inputs and code are
unchanged is copied from the cache; a changed report and the reports after it rerun; the result
is the same as a full run (real kernels, a small fixture export)."""

from __future__ import annotations

import hashlib
import json
import shutil
from pathlib import Path

import pytest

from icp_research.bundled import notebooks_dir
from icp_research.errors import InputError
from icp_research.pipeline.cache import resolve_only
from icp_research.pipeline.runner import Progress, discover_notebooks, run_suite

from .conftest import FIXTURES

pytestmark = pytest.mark.e2e
CONFIG = FIXTURES / "exports" / "status_and_seats" / "icp.toml"


def _artifacts(run: Path) -> dict[str, str]:
    folder = run / "artifacts"
    return {
        str(p.relative_to(folder)): hashlib.sha256(p.read_bytes()).hexdigest()
        for p in sorted(folder.rglob("*"))
        if p.is_file() and p.name not in ("manifest.json", "icp_changelog.json", "icp_changelog.md")
    }


def _statuses(result) -> dict[str, str]:
    return {
        o.name: ("reused" if o.reused else o.status)
        for o in result.outcomes
        if o.status != "skipped"
    }


def test_a_rerun_reuses_the_untouched_reports_and_reruns_the_changed_one_and_its_dependents(
    tmp_path,
):
    notebooks = tmp_path / "notebooks"
    shutil.copytree(notebooks_dir(), notebooks)
    reports = tmp_path / "reports"
    quiet = Progress(quiet=True)
    # The analyst's loop: the same run folder, rerun with --force after each change.
    run = {"config": CONFIG, "out": reports / "q", "notebooks_dir": notebooks, "progress": quiet}
    first = run_suite(**run)
    assert first.exit_code == 0
    assert not any(o.reused for o in first.outcomes)
    before = _artifacts(first.out_dir)

    # Unchanged: every report comes from the cache.
    same = run_suite(**run, force=True)
    assert set(_statuses(same).values()) == {"reused"}
    assert _artifacts(same.out_dir) == before

    # One parameter of one report changes: it and the reports that read it rerun.
    path = notebooks / "05_icp_blueprint.ipynb"
    nb = json.loads(path.read_text(encoding="utf-8"))
    cell = next(c for c in nb["cells"] if "parameters" in c["metadata"].get("tags", []))
    source = "".join(cell["source"])
    assert 'statement: str = ""' in source
    cell["source"] = source.replace('statement: str = ""', 'statement: str = "Fits SaaS."')
    path.write_text(json.dumps(nb, indent=1), encoding="utf-8")
    changed = run_suite(**run, force=True)
    statuses = _statuses(changed)
    rerun = {name for name, status in statuses.items() if status == "ok"}
    assert rerun == {"05_icp_blueprint", "06_icp_health"}  # the health report reads icp.json
    assert all(status == "reused" for name, status in statuses.items() if name not in rerun)
    manifest = json.loads((changed.out_dir / "artifacts" / "manifest.json").read_text())
    assert {n["name"] for n in manifest["notebooks"] if n["reused"]} == set(statuses) - rerun
    assert "ok, reused" in (changed.out_dir / "index.html").read_text(encoding="utf-8")

    after_change = _artifacts(changed.out_dir)

    # --only: the report asked for and what it reads from; the rest reused from the cache.
    only = run_suite(**run, force=True, only="06")
    assert set(_statuses(only).values()) == {"reused"}

    # A cold cache: the reports outside --only run too, so a forced rerun loses none of them.
    shutil.rmtree(reports / ".icp-cache")
    cold = run_suite(**run, force=True, only="00")
    assert set(_statuses(cold).values()) == {"ok"}
    assert {o.name for o in cold.outcomes if o.html} == {
        o.name for o in first.outcomes if o.status == "ok"
    }
    # Every report ran afresh: the same artifacts as the run that reused all but two.
    assert _artifacts(cold.out_dir) == after_change


def test_only_takes_numbers_names_and_analyses_with_what_they_read_from():
    specs = discover_notebooks()
    assert resolve_only(specs, "06") == {"05_icp_blueprint", "06_icp_health"}
    assert resolve_only(specs, "05") == {"05_icp_blueprint"}  # it reads no other report
    assert resolve_only(specs, ["overview", "04_predictor_significance"]) == {
        "00_data_overview",
        "04_predictor_significance",
    }
    assert resolve_only(specs, None) is None
    with pytest.raises(InputError, match="--only 42: no such report"):
        resolve_only(specs, "42")
