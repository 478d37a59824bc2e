"""Usage aggregated by SQL (DuckDB over Parquet) against a plain pandas computation."""

from __future__ import annotations

import re
import sys

import numpy as np
import pandas as pd
import pytest

from icp_research.data import loading, validation, warehouse
from icp_research.data.config import load_config
from icp_research.data.facts import account_facts
from icp_research.data.study import open_study
from icp_research.data.warehouse import UsageColumns, aggregate_usage, usage_sql
from icp_research.errors import ConfigError

from .conftest import write_project


def _has_duckdb() -> bool:
    try:
        import duckdb  # noqa: F401
    except ImportError:
        return False
    return True


needs_duckdb = pytest.mark.skipif(not _has_duckdb(), reason="DuckDB is not installed (optional)")
AS_OF = pd.Timestamp("2026-09-30")
METRICS = ["login", "report created", "export"]


def usage_events(rng, n=6_000, accounts=25) -> pd.DataFrame:
    """Events over 200 days with blanks, repeated days, missing values and stray rows."""
    account = np.array([f"A{i:02d}" for i in range(accounts)], dtype=object)
    frame = pd.DataFrame(
        {
            "account_id": account[rng.integers(0, accounts, n)],
            "date": AS_OF - pd.to_timedelta(rng.integers(0, 200, n), unit="D"),
            "metric": np.array(METRICS, dtype=object)[rng.integers(0, len(METRICS), n)],
            "value": rng.poisson(3.0, n).astype(float),
            "user_id": rng.integers(0, 40, n),
        }
    )
    frame.loc[rng.random(n) < 0.03, "value"] = np.nan
    frame.loc[rng.random(n) < 0.01, "account_id"] = None
    frame.loc[rng.random(n) < 0.01, "metric"] = None
    # One account active only long ago, one only in the previous 90 days.
    frame.loc[frame["account_id"] == "A00", "date"] = AS_OF - pd.Timedelta(days=300)
    frame.loc[frame["account_id"] == "A01", "date"] = AS_OF - pd.Timedelta(days=120)
    return frame


def pandas_reference(events: pd.DataFrame, as_of: pd.Timestamp) -> pd.DataFrame:
    """The signals of :mod:`icp_research.data.warehouse`, computed account by account."""
    events = events.dropna(subset=["account_id", "metric"])
    day = events["date"].dt.normalize()
    events = events[(day > as_of - pd.Timedelta(days=180)) & (day <= as_of)].assign(day=day)
    rows = []
    for account, own in events.groupby("account_id"):
        last_30 = own["day"] > as_of - pd.Timedelta(days=30)
        last_90 = own["day"] > as_of - pd.Timedelta(days=90)
        prev = (~last_90).sum()
        row = {
            "account_id": account,
            "usage_events_30d": int(last_30.sum()),
            "usage_events_90d": int(last_90.sum()),
            "usage_events_prev_90d": int(prev),
            "usage_active_days_30d": own.loc[last_30, "day"].nunique(),
            "usage_active_days_90d": own.loc[last_90, "day"].nunique(),
        }
        for metric in sorted(METRICS):
            column = "usage_" + metric.replace(" ", "_")
            mine = own[own["metric"] == metric]
            daily = mine.groupby("day")["value"].sum(min_count=1)
            recent = daily[daily.index > as_of - pd.Timedelta(days=90)]
            before = daily[daily.index <= as_of - pd.Timedelta(days=90)]
            row[column] = recent.mean()
            row[f"{column}_30d"] = daily[daily.index > as_of - pd.Timedelta(days=30)].sum()
            row[f"{column}_90d"] = recent.sum()
            total_before = before.sum(min_count=1)
            row[f"{column}_trend"] = (
                recent.sum() / total_before if pd.notna(total_before) and total_before else np.nan
            )
        row["usage_users_90d"] = own.loc[last_90, "user_id"].nunique()
        row["usage_trend_90d"] = last_90.sum() / prev if prev else np.nan
        rows.append(row)
    reference = pd.DataFrame(rows)
    reference["account_id"] = reference["account_id"].astype("string")
    return reference


@needs_duckdb
def test_sql_equals_pandas_on_a_small_table(tmp_path, rng):
    events = usage_events(rng)
    folder = tmp_path / "events"
    folder.mkdir()
    half = len(events) // 2
    events.iloc[:half].to_parquet(folder / "part-0.parquet", index=False)
    events.iloc[half:].to_parquet(folder / "part-1.parquet", index=False)
    got = aggregate_usage(
        folder / "*.parquet", AS_OF.date(), columns=UsageColumns(user_id="user_id")
    )
    expected = pandas_reference(events, AS_OF)
    pd.testing.assert_frame_equal(got[expected.columns], expected, check_dtype=False, rtol=1e-12)
    assert got["usage_events_90d"].dtype == np.int64
    # A01 used the product only in the previous 90 days: trend 0, no recent mean; A00 is gone.
    a01 = got.set_index("account_id").loc["A01"]
    assert a01["usage_trend_90d"] == 0 and np.isnan(a01["usage_login"])
    assert "A00" not in set(got["account_id"])


@needs_duckdb
def test_either_engine_gives_the_same_account_facts(tmp_path, rng):
    # A loaded usage table may have no blanks (they are errors either way).
    events = usage_events(rng, n=3_000).dropna()
    # Time-zoned timestamps: both engines take the date in UTC.
    events["date"] = (events["date"] + pd.Timedelta(hours=22)).dt.tz_localize("America/New_York")
    events.to_parquet(tmp_path / "usage.parquet", index=False)
    accounts = "account_id,industry\n" + "".join(f"A{i:02d},x{i % 3}\n" for i in range(30))
    base = (
        '[project]\nas_of = "2026-09-30"\n'
        '[tables.accounts]\npath = "accounts.csv"\n'
        '[tables.usage]\npath = "usage.parquet"\n'
    )
    in_pandas = write_project(tmp_path / "pandas", {"accounts.csv": accounts}, base)
    in_duckdb = write_project(
        tmp_path / "duckdb", {"accounts.csv": accounts}, base + 'engine = "duckdb"\n'
    )
    for project in (in_pandas, in_duckdb):
        (project.parent / "usage.parquet").write_bytes((tmp_path / "usage.parquet").read_bytes())

    loaded = loading.load_tables(in_pandas)
    external = loading.load_tables(in_duckdb)
    assert "usage" in loaded.tables and "usage" not in external.tables
    assert external.usage_source is not None and loaded.usage_source is None
    assert external.report.inputs[-1]["rows"] == len(events)
    from_pandas = account_facts(loaded.tables, AS_OF)
    from_sql = account_facts(external.tables, AS_OF, usage_source=external.usage_source)
    usage_columns = [c for c in from_pandas.columns if c.startswith("usage_")]
    assert usage_columns == ["usage_export", "usage_login", "usage_report_created"]
    pd.testing.assert_frame_equal(from_sql, from_pandas, rtol=1e-12)
    # Notebooks get them through the study.
    study = open_study(in_duckdb)
    pd.testing.assert_frame_equal(study.facts[usage_columns], from_pandas[usage_columns])


def test_usage_sql_is_plain_standard_sql():
    sql = usage_sql(
        "2026-09-30",
        "analytics.usage_events",
        metrics=["login", "it's done"],
        columns=UsageColumns(account_id="Account ID", date="event_date", value=None),
    )
    assert "FROM analytics.usage_events" in sql
    assert '"Account ID" AS account_id' in sql and "event_date" in sql
    assert "'it''s done'" in sql and "AS usage_it_s_done" in sql
    assert "1 AS metric_value" in sql  # no value column: one event counts 1
    assert "DATE '2026-07-02'" in sql and "DATE '2026-04-03'" in sql
    for dialect_only in ("read_parquet", "::", "INTERVAL", "DATEDIFF", "DATE_SUB", "strftime"):
        assert dialect_only not in sql
    backtick = usage_sql(
        "2026-09-30", "t", metrics=["a"], columns=UsageColumns(account_id="Account ID"), quote="`"
    )
    assert "`Account ID` AS account_id" in backtick
    with pytest.raises(ValueError, match="at least one metric"):
        usage_sql("2026-09-30", metrics=[])


@pytest.mark.parametrize(
    ("extra", "table", "message"),
    [
        ('engine = "spark"\n', "usage", 'use "pandas" (default) or "duckdb"'),
        ('engine = "duckdb"\n', "accounts", "only for [tables.usage]"),
        ('engine = "duckdb"\ndate_format = "%d/%m/%Y"\n', "usage", "date_format is not used"),
    ],
)
def test_engine_settings_are_checked(tmp_path, extra, table, message):
    config = (
        '[tables.accounts]\npath = "accounts.csv"\n'
        + (extra if table == "accounts" else "")
        + '[tables.usage]\npath = "usage.parquet"\n'
        + (extra if table == "usage" else "")
    )
    path = write_project(tmp_path, {"accounts.csv": "account_id\nA1\n"}, config)
    with pytest.raises(ConfigError, match=re.escape(message)):
        load_config(path)


@needs_duckdb
def test_missing_usage_files_and_columns_are_reported(tmp_path):
    config = write_project(
        tmp_path,
        {"accounts.csv": "account_id\nA1\n"},
        '[tables.accounts]\npath = "accounts.csv"\n'
        '[tables.usage]\npath = "events/*.parquet"\nengine = "duckdb"\n',
    )
    report = validation.validate(config)
    assert any("no Parquet files match" in line for line in report.lines("error"))
    (tmp_path / "events").mkdir()
    pd.DataFrame({"account_id": ["A1"], "day": [AS_OF]}).to_parquet(
        tmp_path / "events" / "a.parquet"
    )
    report = validation.validate(config)
    errors = report.lines("error")
    assert any("required column date is not mapped" in line for line in errors)
    assert any("required column metric is not mapped" in line for line in errors)
    assert not any("value" in line for line in errors)  # optional: one row = one event
    pd.DataFrame({"account_id": [None, "A1"], "date": [AS_OF] * 2, "metric": ["x"] * 2}).to_parquet(
        tmp_path / "events" / "a.parquet"
    )
    errors = validation.validate(config).lines("error")
    assert any("1 rows have no account_id (a required value)" in line for line in errors)


def test_clear_error_without_duckdb(monkeypatch):
    monkeypatch.setitem(sys.modules, "duckdb", None)
    with pytest.raises(ConfigError, match=r"pip install 'icp-research\[warehouse\]'"):
        warehouse.connect()
