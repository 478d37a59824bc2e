"""Tables a sync tool wrote (Fivetran, Airbyte, Stitch): rows the source system deleted are
marked, not removed (``IsDeleted``, ``_fivetran_deleted``, ``_sdc_deleted_at``), Fivetran's
history mode keeps every version of a row (``_fivetran_active``), and every table carries the
tool's bookkeeping (``_fivetran_synced``). Read as they are, deleted accounts and deals were
counted and the flags were tested as ICP predictors."""

from __future__ import annotations

import pytest

from icp_research.data.loading import load_tables

from .conftest import write_project

ACCOUNTS = (
    "Id,Name,Industry,IsDeleted,_fivetran_deleted,_fivetran_synced,_sdc_deleted_at\n"
    "A1,Co 1,Software,false,false,2025-01-01 10:00:00,\n"
    "A2,Co 2,Retail,true,false,2025-01-01 10:00:00,\n"
    "A3,Co 3,Retail,false,true,2025-01-01 10:00:00,\n"
    "A4,Co 4,Retail,FALSE,FALSE,2025-01-01 10:00:00,\n"
    "A5,Co 5,Retail,false,false,2025-01-01 10:00:00,2024-12-31T08:00:00Z\n"
)
DEALS = (
    "Id,AccountId,StageName,CreatedDate,CloseDate,Amount,is_deleted,_fivetran_active\n"
    "O1,A1,Closed Won,2024-01-01,2024-02-01,100,false,true\n"
    "O2,A1,Closed Lost,2024-01-01,2024-02-01,100,true,true\n"
    "O3,A4,Closed Won,2024-01-01,2024-02-01,90,false,false\n"  # an earlier version of O3
    "O3,A4,Closed Won,2024-01-01,2024-03-01,100,false,true\n"
)
CONFIG = """
[tables.accounts]
path = "accounts.csv"{keep}
[tables.accounts.columns]
account_id = "Id"
name = "Name"
industry = "Industry"
[tables.opportunities]
path = "deals.csv"
[tables.opportunities.columns]
opportunity_id = "Id"
account_id = "AccountId"
stage = "StageName"
created_at = "CreatedDate"
closed_at = "CloseDate"
amount = "Amount"
[tables.opportunities.values.stage]
"Closed Won" = "won"
"Closed Lost" = "lost"
"""


def _load(tmp_path, keep=""):
    files = {"accounts.csv": ACCOUNTS, "deals.csv": DEALS}
    return load_tables(write_project(tmp_path, files, CONFIG.format(keep=keep)))


def test_deleted_rows_and_earlier_versions_are_left_out_with_a_note(tmp_path):
    dataset = _load(tmp_path)
    accounts, deals = dataset.tables["accounts"], dataset.tables["opportunities"]
    assert accounts["account_id"].tolist() == ["A1", "A4"]
    assert list(accounts.columns) == ["account_id", "name", "industry"]
    assert deals["opportunity_id"].tolist() == ["O1", "O3"]
    assert deals["amount"].tolist() == [100, 100]
    assert dataset.report.ok and not dataset.report.warnings
    notes = [p.line() for p in dataset.report.infos]
    assert (
        'accounts.csv: 3 of 5 rows are marked deleted ("IsDeleted", "_fivetran_deleted", '
        '"_sdc_deleted_at"): they are records the source system deleted, not accounts, and are '
        "left out (rows 3, 4, 6); fix: nothing to do; keep_deleted = true under "
        "[tables.accounts] keeps them"
    ) in notes
    assert (
        'deals.csv: 1 of 4 rows is an earlier version of a row ("_fivetran_active" is false, '
        "a sync tool's history mode): only the current version of each is kept (row 4); fix: "
        "nothing to do; keep_deleted = true under [tables.opportunities] keeps them"
    ) in notes
    assert (
        "deals.csv: sync and deletion bookkeeping columns left out (not traits of the records): "
        '"is_deleted", "_fivetran_active"; fix: nothing to do'
    ) in notes


def test_keep_deleted_keeps_the_rows_but_never_the_flags_as_attributes(tmp_path):
    dataset = _load(tmp_path, keep="\nkeep_deleted = true")
    accounts = dataset.tables["accounts"]
    assert accounts["account_id"].tolist() == ["A1", "A2", "A3", "A4", "A5"]
    assert list(accounts.columns) == ["account_id", "name", "industry"]


def test_real_booleans_from_a_database_are_read_too(tmp_path):
    duckdb = pytest.importorskip("duckdb", reason="DuckDB is not installed (pip install duckdb)")
    con = duckdb.connect(str(tmp_path / "wh.duckdb"))
    con.execute("create schema salesforce")
    con.execute(
        "create table salesforce.account as select * from (values "
        "('A1', 'Software', false, false, timestamp '2025-01-01'), "
        "('A2', 'Retail', true, false, timestamp '2025-01-01'), "
        "('A3', 'Retail', false, null, timestamp '2025-01-01')) "
        "t(id, industry, is_deleted, _fivetran_deleted, _fivetran_synced)"
    )
    con.close()
    config = write_project(
        tmp_path,
        {},
        '[warehouse]\nurl = "duckdb:///wh.duckdb"\n[tables.accounts]\n'
        'table = "salesforce.account"\n[tables.accounts.columns]\naccount_id = "id"\n',
    )
    accounts = load_tables(config).tables["accounts"]
    assert accounts["account_id"].tolist() == ["A1", "A3"]
    assert list(accounts.columns) == ["account_id", "industry"]
