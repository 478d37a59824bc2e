"""open_study reuses the latest run's data snapshot while it is fresh (same exports, config and
kit code), and parses the exports again the moment one of them changes."""

from __future__ import annotations

import icp_research
from icp_research.data import study as study_module
from icp_research.data.loading import load_tables
from icp_research.data.study import fresh_snapshot

from .conftest import write_project

ACCOUNTS = "account_id,industry,employees\nA1,SaaS,120\nA2,Retail,40\nA3,SaaS,900\n"


def _project(tmp_path):
    return write_project(
        tmp_path / "project",
        {"accounts.csv": ACCOUNTS},
        '[project]\nas_of = "2026-09-30"\n[tables.accounts]\npath = "accounts.csv"\n',
    )


def test_open_study_reads_a_fresh_snapshot_instead_of_the_exports(tmp_path, monkeypatch):
    config = _project(tmp_path)
    snapshot = config.parent / "reports" / "2026Q3" / "artifacts" / "data"
    load_tables(config).save(snapshot)
    assert fresh_snapshot(icp_research.load_config(config)) == snapshot

    def no_parsing(*args, **kwargs):
        raise AssertionError("the exports were parsed again")

    monkeypatch.setattr(study_module, "load_tables", no_parsing)
    study = icp_research.open_study(config)
    assert sorted(study.tables["accounts"]["account_id"]) == ["A1", "A2", "A3"]
    monkeypatch.undo()

    # One export changes: the snapshot is stale and the exports are read again.
    (config.parent / "accounts.csv").write_text(ACCOUNTS + "A4,FinTech,300\n")
    assert fresh_snapshot(icp_research.load_config(config)) is None
    assert len(icp_research.open_study(config).tables["accounts"]) == 4


def test_a_changed_config_or_no_reuse_parses_the_exports(tmp_path):
    config = _project(tmp_path)
    load_tables(config).save(config.parent / "reports" / "r" / "artifacts" / "data")
    config.write_text(config.read_text() + "\n[segments]\nemployees = [100, 1000]\n")
    assert fresh_snapshot(icp_research.load_config(config)) is None
