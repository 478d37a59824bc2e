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


def test_snapshot_deal_keys_are_held_by_arrow_and_the_rest_as_shared_python_strings(tmp_path):
    """A snapshot frame reads row keys whose values hardly repeat (``opportunity_id``) into
    Arrow's buffers, which processes forked from the reader never write to; repeated text
    (stages, the deals' account ids) as one Python string per distinct value. Values, missing values and column order are those of the frame saved, and
    a study over the snapshot computes the same facts and deal facts as one over the exports."""
    import numpy as np
    import pandas as pd

    from icp_research.data.loading import read_snapshot_frame

    dataset = icp_research.load_demo().dataset
    directory = tmp_path / "data"
    dataset.save(directory)
    for name in ("opportunities", "accounts"):
        saved = dataset.tables[name]
        read = read_snapshot_frame(directory / f"{name}.parquet")
        assert list(read.columns) == list(saved.columns)
        pd.testing.assert_frame_equal(
            read.astype({c: object for c in read.columns if read[c].dtype == "string"}),
            saved.astype({c: object for c in saved.columns if saved[c].dtype == "string"}),
        )
        storage = {c: read[c].dtype.storage for c in read.columns if read[c].dtype == "string"}
        if name == "opportunities":
            assert storage.pop("opportunity_id") == "pyarrow"
        # The account id (looked up everywhere), names and free text stay Python's.
        assert set(storage.values()) == {"python"} and storage["account_id"] == "python"
    deals = read_snapshot_frame(directory / "opportunities.parquet")
    stages = deals["stage"].array._ndarray
    assert len({id(v) for v in stages}) == deals["stage"].nunique()  # one object per value
    assert deals["account_id"].dtype.storage == "python"  # repeats: shared Python strings
    from_snapshot = icp_research.open_study(dataset.config, data_dir=directory, as_of="2026-06-30")
    from_exports = icp_research.load_demo().at("2026-06-30")
    for frame in ("facts", "deals"):
        a, b = getattr(from_snapshot, frame), getattr(from_exports, frame)
        strings = {c: object for c in a.columns if a[c].dtype == "string"}
        pd.testing.assert_frame_equal(a.astype(strings), b.astype(strings), check_like=False)
    assert np.isclose(
        from_snapshot.facts["arr_current"].sum(), from_exports.facts["arr_current"].sum()
    )
