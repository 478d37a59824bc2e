"""Tables read from a real PostgreSQL server ([warehouse] url = "postgresql://..."), started by
the fixture in a temporary folder from Debian's ``postgresql`` package.

Without the server binaries these tests skip, saying how to install them; with
ICP_REQUIRE_POSTGRES=1 (CI) they fail instead. The server's password holds ``@ / : %`` so the
url's ``${PGPASSWORD}`` must be URL-encoded to connect, and it must never appear in an error,
the inputs a run records, or the data snapshot.
"""

from __future__ import annotations

import json
import re

import pandas as pd
import pytest

from icp_research.data.database import redact_url
from icp_research.data.loading import load_dataset, load_tables
from icp_research.errors import DataError

from .conftest import run_cli
from .databases import (
    DEMO_TABLES,
    PostgresServer,
    assert_same_artifacts,
    assert_same_rows,
    canonical_config,
    copy_to_postgres,
    demo_canonical_tables,
    demo_dataset,
    demo_raw_tables,
    require_postgres,
    warehouse_config,
)

pytest.importorskip("sqlalchemy", reason="SQLAlchemy is not installed (pip install sqlalchemy)")
pytest.importorskip("psycopg", reason="psycopg is not installed (pip install 'psycopg[binary]')")


@pytest.fixture(scope="module")
def postgres():
    """A running server: schema ``exports`` holds the demo exports as text (as a CSV lands in a
    warehouse), ``analytics`` the canonical tables typed (dates as ``date``)."""
    server = PostgresServer(require_postgres()).start()
    try:
        with server.connect() as connection:
            copy_to_postgres(connection, "exports", demo_raw_tables())
            copy_to_postgres(connection, "analytics", demo_canonical_tables(), dates=True)
        yield server
    finally:
        server.stop()


@pytest.fixture
def password_env(postgres, monkeypatch):
    monkeypatch.setenv("ICP_TEST_PGPASSWORD", postgres.password)
    return postgres


def _url(server, **kwargs) -> str:
    """The server's url with the password left to ``${ICP_TEST_PGPASSWORD}``."""
    plain = server.url(**kwargs)
    return re.sub(r"(://[^:]+:)[^@]+@", r"\1${ICP_TEST_PGPASSWORD}@", plain)


def _write(tmp_path, text: str):
    path = tmp_path / "icp.toml"
    path.write_text(text, encoding="utf-8")
    return path


def _no_secret(text: str, server) -> None:
    from urllib.parse import quote

    assert server.password not in text
    assert quote(server.password, safe="") not in text


def test_demo_exports_in_postgres_load_into_the_csv_dataset(password_env, tmp_path):
    server = password_env
    config = _write(tmp_path, warehouse_config(_url(server), "exports"))
    loaded = load_tables(config)
    expected = demo_dataset()
    assert_same_rows(expected.tables, loaded.tables)
    assert loaded.attributes.to_dict() == expected.attributes.to_dict()
    assert [p.message for p in loaded.report.problems] == [
        p.message for p in expected.report.problems
    ]
    inputs = {item["table"]: item for item in loaded.report.inputs}
    assert list(inputs) == list(DEMO_TABLES)
    assert inputs["opportunities"]["rows"] == 12_890
    assert inputs["deal_roles"]["path"] == "exports.deal_roles"
    assert inputs["accounts"]["source"] == (
        f"postgresql://icp:***@127.0.0.1:{server.port}/postgres"
    )
    # What a run keeps of the data: nothing of the password.
    loaded.save(tmp_path / "snapshot")
    _no_secret((tmp_path / "snapshot" / "dataset.json").read_text(encoding="utf-8"), server)
    _no_secret(json.dumps(loaded.report.inputs), server)


def test_the_suite_from_postgres_writes_the_artifacts_of_the_csv_run(
    password_env, demo_run, tmp_path
):
    """`icp-research run --config` on the PostgreSQL server: every artifact table is the one
    the demo files give (numbers to 1e-9: the server returns some tables' rows in another
    order), and the password is nowhere in the run."""
    server = password_env
    config = _write(tmp_path, warehouse_config(_url(server), "exports"))
    out = tmp_path / "run"
    result = run_cli("run", "--config", str(config), "--out", str(out), "-q", timeout=900)
    assert result.returncode == 0, result.stderr[-3000:]
    assert_same_artifacts(out, demo_run.out_dir, "exports", exact=False)
    for path in out.rglob("*"):
        if path.is_file() and path.suffix in (".json", ".html", ".csv", ".ipynb"):
            _no_secret(path.read_text(encoding="utf-8", errors="replace"), server)


def test_typed_tables_numeric_and_date_columns_and_a_join(password_env, tmp_path):
    """NUMERIC comes back as Decimal and DATE as date objects: read like a typed Parquet
    export, they give the same dataset."""
    queries = {name: f"analytics.{name}" for name in DEMO_TABLES}
    queries["opportunities"] = (
        "select o.opportunity_id, o.account_id, o.stage, o.created_at, o.closed_at, "
        "o.amount::numeric(14, 2) as amount, o.loss_reason, o.type, o.owner, o.source "
        "from analytics.opportunities o left join analytics.accounts a using (account_id) "
        "where a.region like '%' or a.region is null or o.account_id is null"
    )
    queries["subscriptions"] = (
        "select account_id, start_date, end_date, plan, seats::integer as seats, "
        "arr::numeric as arr from analytics.subscriptions"
    )
    loaded = load_tables(_write(tmp_path, canonical_config(_url(password_env), queries)))
    assert_same_rows(demo_dataset().tables, loaded.tables)
    assert loaded.tables["opportunities"]["amount"].dtype == "float64"
    assert loaded.tables["subscriptions"]["start_date"].dtype == "datetime64[ns]"


def test_changed_rows_change_the_digest(password_env, tmp_path):
    """One NPS score changed in the database: that table's digest (which cached reports are
    keyed on) changes, the others' do not; the same rows give the same digest."""
    with password_env.connect() as connection:
        connection.execute("create table analytics.nps_copy as select * from analytics.nps")
    try:
        config = _write(
            tmp_path,
            canonical_config(
                _url(password_env),
                {
                    "accounts": "analytics.accounts",
                    "nps": "select * from analytics.nps_copy order by account_id, date, score",
                },
            ),
        )
        before = {i["table"]: i["sha256"] for i in load_dataset(config).report.inputs}
        assert before == {i["table"]: i["sha256"] for i in load_dataset(config).report.inputs}
        with password_env.connect() as connection:
            changed = connection.execute(
                "update analytics.nps_copy set score = 10 - score where ctid = "
                "(select min(ctid) from analytics.nps_copy where score <> 5)"
            ).rowcount
        assert changed == 1
        after = {i["table"]: i["sha256"] for i in load_dataset(config).report.inputs}
    finally:
        with password_env.connect() as connection:
            connection.execute("drop table analytics.nps_copy")
    assert after["accounts"] == before["accounts"]
    assert after["nps"] != before["nps"]


def _error(config, server) -> str:
    with pytest.raises(DataError) as caught:
        load_tables(config)
    message = str(caught.value)
    assert "\n" not in message
    _no_secret(message, server)
    _no_secret("\n".join(caught.value.problems), server)
    # A failed query is rolled back: the tables after it still load.
    assert not any("transaction is aborted" in line for line in caught.value.problems)
    return message


def test_errors_name_the_table_or_query_and_never_the_password(password_env, tmp_path):
    server = password_env
    url = _url(server)
    missing = warehouse_config(url, "exports").replace(
        'table = "exports.opportunities"', 'table = "salesforce.opportunity"'
    )
    message = _error(_write(tmp_path, missing), server)
    assert message.startswith(
        'salesforce.opportunity: cannot read the table (relation "salesforce.opportunity" does '
        "not exist"
    )
    assert 'fix: check table = "salesforce.opportunity" under [tables.opportunities]' in message

    bad = canonical_config(
        url,
        {
            "accounts": "analytics.accounts",
            "nps": "select account_id, date, score from analytics.nps where",
        },
    )
    message = _error(_write(tmp_path, bad), server)
    assert message.startswith(
        'query "select account_id, date, score from analytics.nps where": the query failed (syntax error'
    )
    assert "fix: run it in your SQL client and fix sql" in message

    no_score = canonical_config(
        url, {"accounts": "analytics.accounts", "nps": "select account_id, date from analytics.nps"}
    )
    message = _error(_write(tmp_path, no_score), server)
    assert message.startswith(
        'query "select account_id, date from analytics.nps": required column score is not mapped; '
        'fix: add score = "<source column>" under [tables.nps.columns]'
    )

    twice = canonical_config(
        url,
        {
            "accounts": "analytics.accounts",
            "nps": "select n.*, n.score from analytics.nps n",
        },
    )
    message = _error(_write(tmp_path, twice), server)
    assert 'the query\'s result has more than one column named "score"' in message


def test_a_wrong_password_or_server_is_one_line_without_the_password(
    postgres, tmp_path, monkeypatch
):
    wrong = "not-" + postgres.password
    monkeypatch.setenv("ICP_TEST_PGPASSWORD", wrong)
    text = canonical_config(_url(postgres), {"accounts": "analytics.accounts"})
    with pytest.raises(DataError) as caught:
        load_tables(_write(tmp_path, text))
    message = str(caught.value)
    assert message.startswith(
        f"postgresql://icp:***@127.0.0.1:{postgres.port}/postgres: cannot connect to the database ("
    )
    assert "password authentication failed" in message and "fix: check url" in message
    assert wrong not in message and postgres.password not in message

    # The CLI says the same on one line, exit 2.
    result = run_cli("validate", "--config", str(tmp_path / "icp.toml"))
    assert result.returncode == 2
    assert result.stderr.count("\n") == 1 and "cannot connect to the database" in result.stderr
    assert wrong not in result.stderr + result.stdout


def test_validate_command_against_postgres(password_env, tmp_path):
    config = _write(tmp_path, warehouse_config(_url(password_env), "exports"))
    result = run_cli("validate", "--config", str(config), "--verbose")
    assert result.returncode == 0, result.stderr
    # The summary `icp-research validate` prints for the demo files (tables, rows, warnings).
    from icp_research.data.demo import DEMO_CONFIG
    from icp_research.data.validation import validate

    report = validate(DEMO_CONFIG)
    rows = ", ".join(f"{i['table']} {i['rows']:,} rows" for i in report.inputs)
    warnings = len(report.warnings)
    assert result.stdout.strip().splitlines()[-1] == f"OK: {rows}; {warnings} warning(s)"
    assert "read opportunities: exports.opportunities (12,890 rows, sha256 " in result.stdout
    _no_secret(result.stdout + result.stderr, password_env)


def test_redaction_of_the_server_url(postgres):
    assert redact_url(postgres.url()) == f"postgresql://icp:***@127.0.0.1:{postgres.port}/postgres"
    assert pd.notna(postgres.port)
