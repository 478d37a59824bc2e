"""Tables read from a database ([warehouse] url, table = / sql =): DuckDB files built from the
demo exports load into exactly the dataset the files give, through the same mapping, recodes
and checks; errors name the table or the query and the fix, never a password."""

from __future__ import annotations

import json
import re
import shutil

import pandas as pd
import pytest

from icp_research.data.config import config_from_dict, load_config
from icp_research.data.database import expand_url, query_label, redact_url, rows_sha256
from icp_research.data.loading import load_dataset, load_tables
from icp_research.errors import ConfigError, DataError

from .conftest import run_cli
from .databases import (
    DEMO_TABLES,
    assert_same_artifacts,
    assert_same_tables,
    canonical_config,
    demo_canonical_tables,
    demo_dataset,
    demo_raw_tables,
    warehouse_config,
    write_duckdb,
)

duckdb = pytest.importorskip("duckdb", reason="DuckDB is not installed (pip install duckdb)")


@pytest.fixture(scope="module")
def warehouse(tmp_path_factory):
    """A folder with ``warehouse.duckdb`` (schema ``exports``: the demo exports as the loader
    reads them; schema ``analytics``: the canonical tables, typed) and ``icp.toml`` reading
    the exports from it."""
    folder = tmp_path_factory.mktemp("warehouse")
    database = folder / "warehouse.duckdb"
    write_duckdb(database, "exports", demo_raw_tables())
    write_duckdb(database, "analytics", demo_canonical_tables())
    config = folder / "icp.toml"
    config.write_text(warehouse_config("duckdb:///warehouse.duckdb", "exports"), encoding="utf-8")
    return folder


def _config(folder, text: str, name: str = "icp.toml"):
    path = folder / name
    path.write_text(text, encoding="utf-8")
    return path


def _problems(report) -> list[tuple]:
    return [(p.level, p.table, p.column, p.message, p.fix, p.rows) for p in report.problems]


def test_demo_tables_from_duckdb_load_into_the_csv_dataset(warehouse):
    expected = demo_dataset()
    loaded = load_tables(warehouse / "icp.toml")
    assert_same_tables(expected.tables, loaded.tables)
    assert len(loaded.tables["opportunities"]) == 12_890
    assert len(loaded.tables["usage"]) == 57_537
    assert loaded.attributes.to_dict() == expected.attributes.to_dict()
    # The same findings, word for word; only where they point differs.
    assert _problems(loaded.report) == _problems(expected.report)
    files = {p.file for p in expected.report.problems}
    tables = {p.file for p in loaded.report.problems}
    assert "accounts.csv" in files and "exports.accounts" in tables
    assert not any(name.endswith((".csv", ".xlsx", ".parquet")) for name in tables)


def test_inputs_record_the_table_and_a_digest_of_its_rows(warehouse):
    first = load_dataset(warehouse / "icp.toml").report.inputs
    again = load_dataset(warehouse / "icp.toml").report.inputs
    assert first == again  # the digest is of the rows, and deterministic
    by_table = {item["table"]: item for item in first}
    assert list(by_table) == list(DEMO_TABLES)
    deals = by_table["opportunities"]
    assert deals["path"] == "exports.opportunities"
    assert deals["source"] == "duckdb:///warehouse.duckdb"
    assert deals["rows"] == 12_890
    assert re.fullmatch(r"[0-9a-f]{64}", deals["sha256"])
    assert len({item["sha256"] for item in first}) == len(first)

    # One amount changed in the database: that table's digest (and so every cached report's
    # key) changes, the others' do not.
    from icp_research.pipeline.cache import ReportCache

    changed = warehouse / "changed"
    changed.mkdir()
    shutil.copyfile(warehouse / "warehouse.duckdb", changed / "warehouse.duckdb")
    shutil.copyfile(warehouse / "icp.toml", changed / "icp.toml")
    connection = duckdb.connect(str(changed / "warehouse.duckdb"))
    updated = connection.execute(
        "UPDATE exports.opportunities SET \"Amount\" = '$1.00' "
        'WHERE "Opportunity ID" = (SELECT min("Opportunity ID") FROM exports.opportunities)'
    ).fetchall()
    connection.close()
    assert updated == [(1,)]
    now = {item["table"]: item for item in load_dataset(changed / "icp.toml").report.inputs}
    assert now["opportunities"]["sha256"] != deals["sha256"]
    assert {t: i["sha256"] for t, i in now.items() if t != "opportunities"} == {
        t: i["sha256"] for t, i in by_table.items() if t != "opportunities"
    }

    class Spec:
        path = warehouse / "icp.toml"

    key = ReportCache(warehouse / "cache").key
    assert key(Spec, {}, first, "", []) != key(Spec, {}, list(now.values()), "", [])


def test_typed_canonical_tables_and_queries(warehouse):
    """A dbt-style warehouse: typed columns under the canonical names (no mapping at all), and
    queries that cast, join and filter."""
    queries = {name: f"analytics.{name}" for name in DEMO_TABLES}
    queries["opportunities"] = (
        "SELECT o.opportunity_id, o.account_id, o.stage, CAST(o.created_at AS DATE) AS "
        "created_at, CAST(o.closed_at AS DATE) AS closed_at, CAST(o.amount AS DECIMAL(14, 2)) "
        "AS amount, o.loss_reason, o.type, o.owner, o.source FROM analytics.opportunities o "
        "LEFT JOIN analytics.accounts a ON a.account_id = o.account_id;"
    )
    config = _config(
        warehouse, canonical_config("duckdb:///warehouse.duckdb", queries), "typed.toml"
    )
    loaded = load_tables(config)
    expected = demo_dataset().tables
    # A join may return rows in any order: compare the deals by their key.
    deals = loaded.tables.pop("opportunities")
    want = expected["opportunities"]
    pd.testing.assert_frame_equal(
        deals[list(want.columns)].sort_values("opportunity_id").reset_index(drop=True),
        want.sort_values("opportunity_id").reset_index(drop=True),
    )
    assert_same_tables({k: v for k, v in expected.items() if k != "opportunities"}, loaded.tables)


def test_validate_command_reads_the_warehouse(warehouse):
    from icp_research.data.demo import DEMO_CONFIG

    from_files = run_cli("validate", "--config", str(DEMO_CONFIG))
    from_database = run_cli("validate", "--config", str(warehouse / "icp.toml"))
    assert from_database.returncode == 0, from_database.stderr
    summary = from_database.stdout.strip().splitlines()[-1]
    assert summary == from_files.stdout.strip().splitlines()[-1]
    assert summary.startswith("OK: accounts 3,000 rows, opportunities 12,890 rows,")


def test_url_from_the_environment_and_a_query_over_files(warehouse, monkeypatch):
    """``${NAME}`` in the url; ``duckdb:///:memory:`` with queries over files next to the
    config (DuckDB's read_parquet / read_csv resolve them there)."""
    monkeypatch.setenv("ICP_TEST_DUCKDB", "warehouse.duckdb")
    text = warehouse_config("duckdb:///${ICP_TEST_DUCKDB}", "exports")
    loaded = load_tables(_config(warehouse, text, "env.toml"))
    assert loaded.report.inputs[0]["source"] == "duckdb:///${ICP_TEST_DUCKDB}"
    pd.testing.assert_frame_equal(loaded.tables["nps"], demo_dataset().tables["nps"])

    demo_raw_tables()["usage"].to_parquet(warehouse / "usage.parquet", index=False)
    text = (
        '[warehouse]\nurl = "duckdb:///:memory:"\n\n[tables.accounts]\n'
        "sql = \"SELECT DISTINCT account_id FROM read_parquet('usage.parquet') ORDER BY 1\"\n\n"
        "[tables.usage]\nsql = \"SELECT * FROM read_parquet('usage.parquet')\"\n"
        '[tables.usage.columns]\ndate = "month"\n'
    )
    loaded = load_tables(_config(warehouse, text, "memory.toml"))
    assert_same_tables({"usage": demo_dataset().tables["usage"]}, {"usage": loaded.tables["usage"]})
    assert loaded.tables["accounts"]["account_id"].is_monotonic_increasing
    assert len(loaded.tables["accounts"]) == demo_dataset().tables["usage"]["account_id"].nunique()


# ---------------------------------------------------------------------------------------------
# Errors: one line naming the table or the query, and the fix


def _error(config) -> str:
    with pytest.raises(DataError) as caught:
        load_tables(config)
    message = str(caught.value)
    assert "\n" not in message
    return message


def test_a_missing_table_names_it_and_the_fix(warehouse):
    text = warehouse_config("duckdb:///warehouse.duckdb", "exports").replace(
        'table = "exports.nps"', 'table = "exports.nps_responses"'
    )
    message = _error(_config(warehouse, text, "missing.toml"))
    assert message.startswith("exports.nps_responses: cannot read the table (Catalog Error:")
    assert 'fix: check table = "exports.nps_responses" under [tables.nps]' in message


def test_a_failing_query_names_it_and_the_fix(warehouse):
    text = canonical_config(
        "duckdb:///warehouse.duckdb",
        {
            "accounts": "analytics.accounts",
            "nps": "SELECT account_id, date, scor FROM analytics.nps",
        },
    )
    message = _error(_config(warehouse, text, "bad_query.toml"))
    assert message.startswith(
        'query "SELECT account_id, date, scor FROM analytics.nps": the query failed ('
    )
    assert "scor" in message and "fix: run it in your SQL client and fix sql" in message
    assert "under [tables.nps]" in message


def test_a_column_missing_from_the_result_is_the_mapping_error_of_a_file(warehouse):
    text = canonical_config(
        "duckdb:///warehouse.duckdb",
        {"accounts": "analytics.accounts", "nps": "SELECT account_id, date FROM analytics.nps"},
    )
    message = _error(_config(warehouse, text, "no_score.toml"))
    assert message == (
        'query "SELECT account_id, date FROM analytics.nps": required column score is not '
        'mapped; fix: add score = "<source column>" under [tables.nps.columns]; the query\'s '
        'result has: "account_id", "date"'
    )
    text = warehouse_config("duckdb:///warehouse.duckdb", "exports").replace(
        'score = "Score"', 'score = "NPS Score"'
    )
    message = _error(_config(warehouse, text, "renamed.toml"))
    assert message.startswith(
        'exports.nps: mapped column "NPS Score" (for score) is not in the table; fix: did you '
        'mean "Score"? set score = "..." under [tables.nps.columns]; the table has: '
    )


def test_empty_results_repeated_columns_and_a_missing_database(warehouse, monkeypatch):
    base = {"accounts": "analytics.accounts"}
    empty = canonical_config(
        "duckdb:///warehouse.duckdb",
        {**base, "nps": "SELECT * FROM analytics.nps WHERE score > 10"},
    )
    assert _error(_config(warehouse, empty, "empty.toml")) == (
        'query "SELECT * FROM analytics.nps WHERE score > 10": the query returned no rows; fix: '
        "check the WHERE clause of sql = ... under [tables.nps], or remove the section if you "
        "have no such data"
    )
    twice = canonical_config(
        "duckdb:///warehouse.duckdb",
        {
            **base,
            "nps": "SELECT n.*, a.account_id FROM analytics.nps n JOIN analytics.accounts a USING (account_id)",
        },
    )
    message = _error(_config(warehouse, twice, "twice.toml"))
    assert "more than one column named" in message and "name them apart with AS" in message

    nowhere = canonical_config("duckdb:///missing.duckdb", base)
    message = _error(_config(warehouse, nowhere, "nowhere.toml"))
    assert message.startswith("duckdb:///missing.duckdb: the DuckDB database file ")
    assert "does not exist" in message and "fix: check url" in message

    monkeypatch.delenv("ICP_TEST_UNSET", raising=False)
    unset = canonical_config("duckdb:///${ICP_TEST_UNSET}", base)
    with pytest.raises(ConfigError, match=r"environment variable ICP_TEST_UNSET, which is not set"):
        load_tables(_config(warehouse, unset, "unset.toml"))
    result = run_cli("validate", "--config", str(warehouse / "unset.toml"))
    assert result.returncode == 2
    assert result.stderr.count("\n") == 1 and "ICP_TEST_UNSET" in result.stderr


def test_a_database_without_its_driver_says_what_to_install(tmp_path, monkeypatch):
    import importlib.util

    pytest.importorskip("sqlalchemy")
    if importlib.util.find_spec("snowflake") is not None:
        pytest.skip("snowflake-sqlalchemy is installed here")
    monkeypatch.setenv("ICP_TEST_SNOWFLAKE_PASSWORD", "hunter2")
    text = canonical_config(
        "snowflake://ana:${ICP_TEST_SNOWFLAKE_PASSWORD}@acme/crm/salesforce",
        {"accounts": "salesforce.account"},
    )
    message = _error(_config(tmp_path, text))
    assert message == (
        "snowflake://ana:***@acme/crm/salesforce: no database driver for snowflake:// is "
        "installed; fix: install its SQLAlchemy dialect: pip install snowflake-sqlalchemy"
    )


def test_without_the_warehouse_extra_the_error_says_how_to_install_it(tmp_path, monkeypatch):
    import sys

    monkeypatch.setitem(sys.modules, "sqlalchemy", None)  # import sqlalchemy fails
    monkeypatch.setitem(sys.modules, "duckdb", None)
    text = canonical_config("postgresql://ana:pw@db.example.com/crm", {"accounts": "crm.account"})
    assert _error(_config(tmp_path, text)) == (
        "postgresql://ana:***@db.example.com/crm: [warehouse] url needs SQLAlchemy, which is not "
        "installed; fix: install it with pip install 'icp-research[warehouse]'"
    )
    text = canonical_config("duckdb:///crm.duckdb", {"accounts": "crm.account"})
    assert _error(_config(tmp_path, text)) == (
        "duckdb:///crm.duckdb: duckdb:// needs the DuckDB package, which is not installed; fix: "
        "install it with pip install 'icp-research[warehouse]'"
    )


# ---------------------------------------------------------------------------------------------
# The config and the url


def _config_problems(raw: dict) -> list[str]:
    with pytest.raises(ConfigError) as caught:
        config_from_dict(raw)
    return caught.value.problems


def test_config_reads_table_and_sql_sources(tmp_path):
    path = tmp_path / "icp.toml"
    path.write_text(
        '[warehouse]\nurl = "postgresql://analyst:${PGPASSWORD}@db.example.com:5432/crm"\n\n'
        '[tables.accounts]\ntable = "salesforce.account"\n'
        '[tables.accounts.columns]\naccount_id = "Id"\n\n'
        '[tables.opportunities]\nsql = """\nselect o.*\nfrom salesforce.opportunity o;\n"""\n'
        'date_format = "%d/%m/%Y"\n',
        encoding="utf-8",
    )
    config = load_config(path)
    accounts, deals = config.tables["accounts"], config.tables["opportunities"]
    assert (accounts.table, accounts.sql, accounts.path) == ("salesforce.account", None, None)
    assert accounts.display_path == "salesforce.account" and accounts.columns == {
        "account_id": "Id"
    }
    assert deals.sql == "select o.*\nfrom salesforce.opportunity o;"
    assert deals.display_path == 'query "select o.* from salesforce.opportunity o"'
    assert deals.date_format == "%d/%m/%Y"
    assert config.warehouse.display_url == "postgresql://analyst:***@db.example.com:5432/crm"
    assert "PGPASSWORD" not in repr(config) or "***" in repr(config)
    assert "${PGPASSWORD}" not in repr(config.warehouse)


@pytest.mark.parametrize(
    ("tables", "warehouse", "expected"),
    [
        ({"table": "crm.accounts", "path": "a.csv"}, True, "give path = ... (a file) or table"),
        (
            {"table": "crm.accounts", "sql": "select 1"},
            True,
            "give table = ... or sql = ..., not both",
        ),
        ({"table": "crm.accounts"}, False, "there is no [warehouse] section"),
        ({"table": "select * from x"}, True, "must be a table name such as"),
        ({"sql": "  ;"}, True, "must be a query in quotes"),
        ({"table": "crm.accounts", "sheet": "x"}, True, "sheet is a setting of export files"),
        ({"table": "crm.accounts", "format": "csv"}, True, "format is a setting of export files"),
    ],
)
def test_config_mistakes_with_database_tables(tables, warehouse, expected):
    raw = {"tables": {"accounts": tables}}
    if warehouse:
        raw["warehouse"] = {"url": "duckdb:///crm.duckdb"}
    problems = _config_problems(raw)
    assert any(expected in problem for problem in problems), problems


@pytest.mark.parametrize(
    ("section", "expected"),
    [
        ({"uri": "duckdb:///x.duckdb"}, "unknown key 'uri' in [warehouse]; did you mean 'url'?"),
        ({}, '[warehouse] needs url = "..."'),
        ({"url": "crm.duckdb"}, "is not a connection string (scheme://...)"),
        ({"url": "postgresql://u:${PG PASSWORD}@h/db"}, "${NAME} with letters, digits and _"),
        ({"url": "postgresql://u:pw@h/db", "password": "x"}, "unknown key 'password'"),
    ],
)
def test_warehouse_section_mistakes(section, expected):
    raw = {"warehouse": section, "tables": {"accounts": {"table": "crm.accounts"}}}
    problems = _config_problems(raw)
    assert any(expected in problem for problem in problems), problems
    assert not any("pw@" in problem for problem in problems)


def test_urls_are_redacted_and_expanded():
    assert (
        redact_url("postgresql://user:hunter2@host:5432/db") == "postgresql://user:***@host:5432/db"
    )
    assert redact_url("postgresql://user@host/db") == "postgresql://user@host/db"
    assert redact_url("duckdb:///crm.duckdb") == "duckdb:///crm.duckdb"
    assert (
        redact_url("snowflake://${SNOWFLAKE_USER}:${SNOWFLAKE_PASSWORD}@acme/db/schema?role=x")
        == "snowflake://${SNOWFLAKE_USER}:***@acme/db/schema?role=x"
    )
    assert (
        redact_url("databricks://token:t@host?http_path=/sql&access_token=dapi1")
        == "databricks://token:***@host?http_path=/sql&access_token=***"
    )
    environ = {"USER_NAME": "ana", "SECRET": "p@ss/w:rd", "DB": "crm/main"}
    assert (
        expand_url("postgresql://${USER_NAME}:${SECRET}@host/${DB}", "icp.toml", environ)
        == "postgresql://ana:p%40ss%2Fw%3Ard@host/crm/main"
    )
    assert expand_url("${DB}", "icp.toml", {"DB": "duckdb:///a.duckdb"}) == "duckdb:///a.duckdb"
    with pytest.raises(ConfigError) as caught:
        expand_url("postgresql://u:${SECRET}@h/${DB}", "icp.toml [warehouse]", {"DB": "x"})
    assert str(caught.value) == (
        "icp.toml [warehouse]: url uses the environment variable SECRET, which is not set; set "
        "it (export SECRET=...) before running, or write the value into the url"
    )


def test_rows_digest_and_query_label():
    frame = pd.DataFrame({"a": ["x", None], "b": [1.5, float("nan")]})
    assert rows_sha256(frame) == rows_sha256(frame.copy())
    assert rows_sha256(frame) != rows_sha256(frame.iloc[::-1])  # what was fetched, in order
    assert rows_sha256(frame) != rows_sha256(frame.rename(columns={"b": "c"}))
    assert rows_sha256(frame) != rows_sha256(frame.assign(b=[1.5, 2.0]))
    assert query_label("select *\n  from   crm.accounts ;") == 'query "select * from crm.accounts"'
    long = query_label("select " + ", ".join(f"c{i}" for i in range(40)) + " from t")
    assert len(long) == len('query ""') + 60 and long.endswith('…"')
    assert json.dumps(long)  # one line, printable


def test_postgres_tests_skip_with_the_install_command_or_fail_when_required(monkeypatch):
    from . import databases

    monkeypatch.setattr(databases, "postgres_bin", lambda: None)
    monkeypatch.delenv("ICP_REQUIRE_POSTGRES", raising=False)
    with pytest.raises(pytest.skip.Exception, match=r"apt-get install -y postgresql"):
        databases.require_postgres()
    monkeypatch.setenv("ICP_REQUIRE_POSTGRES", "1")
    with pytest.raises(pytest.fail.Exception, match=r"ICP_REQUIRE_POSTGRES=1 but PostgreSQL"):
        databases.require_postgres()


@pytest.mark.e2e
def test_the_suite_from_duckdb_writes_the_artifacts_of_the_csv_run(warehouse, demo_run, tmp_path):
    """`icp-research run --config` on the DuckDB database: every artifact table is the one the
    demo files give, byte for byte (the data problems name the tables instead of the files)."""
    out = tmp_path / "run"
    result = run_cli(
        "run", "--config", str(warehouse / "icp.toml"), "--out", str(out), "-q", timeout=900
    )
    assert result.returncode == 0, result.stderr[-3000:]
    assert_same_artifacts(out, demo_run.out_dir, "exports")
    manifest = json.loads((out / "artifacts" / "manifest.json").read_text(encoding="utf-8"))
    demo = json.loads(
        (demo_run.out_dir / "artifacts" / "manifest.json").read_text(encoding="utf-8")
    )
    assert manifest["headline"] == demo["headline"]
    assert [i["path"] for i in manifest["inputs"]] == [f"exports.{t}" for t in DEMO_TABLES]
