"""Product usage aggregated to one row per account by SQL: embedded DuckDB over Parquet, or your
warehouse.

Usage events are the one input that outgrows memory (hundreds of millions of rows); the analyses
only need a few numbers per account. :func:`aggregate_usage` runs one SQL query with an embedded
DuckDB over a Parquet file or folder and returns a small DataFrame, one row per account, without
ever loading the events into pandas. :func:`usage_sql` returns the query's text: standard SQL
(CTEs, ``CASE``, ``COUNT(DISTINCT ...)``, ``DATE '...'`` literals; no dialect functions), so the
same aggregation runs unchanged on Snowflake, BigQuery, Postgres or Redshift over the events
table itself. DuckDB is an optional dependency: ``pip install 'icp-research[warehouse]'``.

>>> from icp_research.data.warehouse import aggregate_usage, usage_sql
>>> signals = aggregate_usage("events/*.parquet", "2026-09-30")     # doctest: +SKIP
>>> print(usage_sql("2026-09-30", "analytics.usage_events", metrics=["login", "export"]))  # doctest: +SKIP

What is computed, as of a date (windows end on that day, inclusive; "90 days" are the 90 days
up to and including it)
----------------------------------------------------------------------------------------------
Rows of one account, day and metric are first added up: a log of events becomes daily totals
(an event without a value counts 1), and a table that already has one row per account, day and
metric stays as it is. Then, per account:

============================  ==============================================================
``usage_<metric>``            mean daily value of the metric over its active days in the last
                              90 days (the column the account facts use, see
                              :func:`icp_research.data.facts.usage_signals`)
``usage_<metric>_30d``        total value of the metric in the last 30 days
``usage_<metric>_90d``        total value in the last 90 days
``usage_<metric>_trend``      total of the last 90 days / total of the 90 days before (1 = flat,
                              0 = stopped; empty when there was nothing before)
``usage_events_30d``          events (rows) of any metric in the last 30 days; also ``_90d``
                              and ``_prev_90d`` (the 90 days before the last 90)
``usage_active_days_30d``     days with any event in the last 30 days; also ``_90d``
``usage_users_90d``           distinct users in the last 90 days (when a user column is given)
``usage_trend_90d``           events of the last 90 days / events of the 90 days before
============================  ==============================================================

Accounts without any event in the last 180 days have no row.
"""

from __future__ import annotations

import contextlib
import datetime as dt
import glob
import hashlib
import re
import shutil
import tempfile
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
import pandas as pd

from icp_research.errors import ConfigError, DataError
from icp_research.formatting import slug

WINDOW_DAYS = 90
RECENT_DAYS = 30
INSTALL_HINT = "pip install 'icp-research[warehouse]'"
# DuckDB's share of memory; bigger aggregations spill to disk (at little cost, see benchmarks/).
MEMORY_LIMIT = "1GB"
COUNT_COLUMNS = (
    "usage_events_30d",
    "usage_events_90d",
    "usage_events_prev_90d",
    "usage_active_days_30d",
    "usage_active_days_90d",
    "usage_users_90d",
)
_PLAIN_NAME = re.compile(r"^[A-Za-z_][A-Za-z0-9_]*$")


@dataclass(frozen=True)
class UsageColumns:
    """Where the canonical usage columns are in the source (source column names).

    ``value`` may be None: every row is then one event worth 1. ``user_id`` is optional.
    """

    account_id: str = "account_id"
    date: str = "date"
    metric: str = "metric"
    value: str | None = "value"
    user_id: str | None = None


def metric_column(metric: str) -> str:
    """The column name of a metric: ``usage_`` + its name in snake_case (as the facts name it)."""
    return f"usage_{slug(metric, 'metric')}"


def _identifier(name: str, quote: str) -> str:
    # Plain names stay unquoted, so that case-folding warehouses (Snowflake upper-cases,
    # Postgres lower-cases) resolve them; names already quoted are used as given.
    if _PLAIN_NAME.match(name) or name[:1] in ('"', "`", "["):
        return name
    closing = "]" if quote == "[" else quote
    return f"{quote}{name.replace(closing, closing * 2)}{closing}"


def _literal(text: str) -> str:
    return "'" + str(text).replace("'", "''") + "'"


def _day(value) -> dt.date:
    return pd.Timestamp(value).date()


def _date_literal(day: dt.date) -> str:
    return f"DATE '{day.isoformat()}'"


def _metric_columns(metrics: Sequence[str]) -> dict[str, str]:
    """metric -> output column, made unique ("usage_x", "usage_x_2") when names collide."""
    columns: dict[str, str] = {}
    for metric in metrics:
        name = metric_column(metric)
        candidate, n = name, 2
        while candidate in columns.values() or any(
            candidate == f"{other}{suffix}"
            for other in columns.values()
            for suffix in ("_30d", "_90d", "_trend")
        ):
            candidate, n = f"{name}_{n}", n + 1
        columns[metric] = candidate
    return columns


def usage_sql(
    as_of,
    source: str = "usage_events",
    *,
    metrics: Sequence[str],
    columns: UsageColumns | None = None,
    quote: str = '"',
) -> str:
    """The SQL that aggregates usage rows to one row per account as of ``as_of``.

    Parameters
    ----------
    as_of : date (or anything :class:`pandas.Timestamp` reads); the windows end on it.
    source : what goes after ``FROM``: a table (``analytics.usage_events``) or a table function
        such as DuckDB's ``read_parquet('events/*.parquet')``.
    metrics : the metric names to give columns of their own (``SELECT DISTINCT metric ...``
        lists them; :func:`aggregate_usage` does that for you).
    columns : source column names (default: the canonical ``account_id``, ``date``, ``metric``,
        ``value``; no user column).
    quote : identifier quote for column names that are not plain (``"`` in standard SQL, a
        backtick for BigQuery, ``[`` for SQL Server). Plain names are never quoted.

    Returns
    -------
    str : one ``WITH ... SELECT`` statement, standard SQL. Its result has one row per account
        and the columns listed in this module's docstring.
    """
    if not metrics:
        raise ValueError("usage_sql needs at least one metric name (metrics=[...])")
    columns = columns or UsageColumns()
    as_of = _day(as_of)
    recent = _date_literal(as_of - dt.timedelta(days=RECENT_DAYS))
    window = _date_literal(as_of - dt.timedelta(days=WINDOW_DAYS))
    first = _date_literal(as_of - dt.timedelta(days=2 * WINDOW_DAYS))
    end = _date_literal(as_of)
    account = _identifier(columns.account_id, quote)
    date = _identifier(columns.date, quote)
    metric = _identifier(columns.metric, quote)
    value_column = _identifier(columns.value, quote) if columns.value else "1"
    user = _identifier(columns.user_id, quote) if columns.user_id else None

    in_window = (
        f"{account} IS NOT NULL\n      AND {metric} IS NOT NULL\n"
        f"      AND CAST({date} AS DATE) > {{start}}\n      AND CAST({date} AS DATE) <= {end}"
    )
    # One row per account and active day, with each metric's daily total in its own column:
    # the largest intermediate result, so it is kept as narrow as the signals allow.
    daily_values, per_metric = [], []
    for number, (name, column) in enumerate(_metric_columns(metrics).items(), start=1):
        daily_values.append(
            f"SUM(CASE WHEN metric_name = {_literal(name)} THEN metric_value END) AS value_{number}"
        )
        value = f"value_{number}"
        last_90 = f"CASE WHEN activity_date > {window} THEN {value} END"
        last_30 = f"CASE WHEN activity_date > {recent} THEN {value} END"
        before = f"CASE WHEN activity_date <= {window} THEN {value} END"
        per_metric += [
            f"AVG({last_90}) AS {column}",
            f"COALESCE(SUM({last_30}), 0) AS {column}_30d",
            f"COALESCE(SUM({last_90}), 0) AS {column}_90d",
            f"1.0 * COALESCE(SUM({last_90}), 0) / NULLIF(SUM({before}), 0) AS {column}_trend",
        ]
    users_cte = users_join = users_column = ""
    if user:
        # Distinct users need the rows themselves; read the source again rather than keep them.
        users_cte = f""",
usage_users AS (
    SELECT {account} AS account_id, COUNT(DISTINCT {user}) AS usage_users_90d
    FROM {source}
    WHERE {in_window.format(start=window)}
    GROUP BY {account}
)"""
        users_join = "\nLEFT JOIN usage_users ON usage_users.account_id = usage_account.account_id"
        users_column = ",\n    COALESCE(usage_users.usage_users_90d, 0) AS usage_users_90d"
    daily_sql = ",\n        ".join(daily_values)
    per_metric_sql = ",\n        ".join(per_metric)
    return f"""-- icp-research: product usage per account as of {as_of.isoformat()}
-- (windows end on that day, inclusive; a metric's rows of one account and day are added up)
WITH usage_rows AS (
    SELECT
        {account} AS account_id,
        CAST({date} AS DATE) AS activity_date,
        {metric} AS metric_name,
        {value_column} AS metric_value
    FROM {source}
    WHERE {in_window.format(start=first)}
),
usage_daily AS (
    SELECT
        account_id,
        activity_date,
        COUNT(*) AS events,
        {daily_sql}
    FROM usage_rows
    GROUP BY account_id, activity_date
),
usage_account AS (
    SELECT
        account_id,
        SUM(CASE WHEN activity_date > {recent} THEN events ELSE 0 END) AS usage_events_30d,
        SUM(CASE WHEN activity_date > {window} THEN events ELSE 0 END) AS usage_events_90d,
        SUM(CASE WHEN activity_date <= {window} THEN events ELSE 0 END) AS usage_events_prev_90d,
        SUM(CASE WHEN activity_date > {recent} THEN 1 ELSE 0 END) AS usage_active_days_30d,
        SUM(CASE WHEN activity_date > {window} THEN 1 ELSE 0 END) AS usage_active_days_90d,
        {per_metric_sql}
    FROM usage_daily
    GROUP BY account_id
){users_cte}
SELECT
    usage_account.*{users_column},
    1.0 * usage_account.usage_events_90d / NULLIF(usage_account.usage_events_prev_90d, 0)
        AS usage_trend_90d
FROM usage_account{users_join}
ORDER BY usage_account.account_id
"""


# ---------------------------------------------------------------------------------------------
# Running it with DuckDB


def _duckdb():
    try:
        import duckdb
    except ImportError:
        raise ConfigError(
            f'engine = "duckdb" needs the DuckDB package; install it with {INSTALL_HINT}'
        ) from None
    return duckdb


def connect(
    *,
    memory_limit: str | None = MEMORY_LIMIT,
    threads: int | None = None,
    temp_directory: str | Path | None = None,
):
    """An in-memory DuckDB connection set up like the kit expects.

    Dates of time-zoned timestamps are taken in UTC (as the pandas loader does); no progress
    bar; DuckDB's memory is capped at ``memory_limit`` (``None``: DuckDB's default, 80% of
    RAM), beyond which aggregations spill to ``temp_directory``. Close it when done.
    """
    duckdb = _duckdb()
    connection = duckdb.connect(database=":memory:")
    # A library call must not draw a progress bar on the caller's terminal.
    connection.execute("SET enable_progress_bar = false")
    with contextlib.suppress(duckdb.Error):  # builds without the ICU extension
        connection.execute("SET TimeZone = 'UTC'")
    if threads:
        connection.execute(f"SET threads = {int(threads)}")
    if memory_limit:
        connection.execute(f"SET memory_limit = {_literal(memory_limit)}")
    if temp_directory:
        connection.execute(f"SET temp_directory = {_literal(str(temp_directory))}")
    return connection


@contextlib.contextmanager
def _session(connection=None):
    """The caller's connection, or a new one (and a private spill folder) closed afterwards."""
    if connection is not None:
        yield connection
        return
    # DuckDB spills to ".tmp" in the working directory by default: a run folder, perhaps.
    spill = tempfile.mkdtemp(prefix="icp-research-duckdb-")
    connection = connect(temp_directory=spill)
    try:
        yield connection
    finally:
        connection.close()
        shutil.rmtree(spill, ignore_errors=True)


def parquet_files(path: str | Path) -> list[Path]:
    """The Parquet files a path, folder or glob pattern names, sorted (empty if none)."""
    text = str(path)
    if any(ch in text for ch in "*?["):
        return sorted(Path(p) for p in glob.glob(text, recursive=True) if Path(p).is_file())
    path = Path(text)
    if path.is_dir():
        return sorted(p for p in path.rglob("*.parquet") if p.is_file())
    return [path] if path.is_file() else []


def parquet_source(path: str | Path) -> str:
    """The DuckDB ``FROM`` clause reading a Parquet file, folder or glob pattern."""
    text = str(path)
    if not any(ch in text for ch in "*?[") and Path(text).is_dir():
        text = str(Path(text) / "**" / "*.parquet")
    return f"read_parquet({_literal(text)})"


def usage_metrics(
    path: str | Path,
    as_of,
    *,
    columns: UsageColumns | None = None,
    connection=None,
) -> list[str]:
    """The metric names present in the 180 days up to ``as_of``, sorted."""
    columns = columns or UsageColumns()
    as_of = _day(as_of)
    metric = _identifier(columns.metric, '"')
    date = _identifier(columns.date, '"')
    query = (
        f"SELECT DISTINCT {metric} FROM {parquet_source(path)} "
        f"WHERE {metric} IS NOT NULL "
        f"AND CAST({date} AS DATE) > {_date_literal(as_of - dt.timedelta(days=2 * WINDOW_DAYS))} "
        f"AND CAST({date} AS DATE) <= {_date_literal(as_of)}"
    )
    with _session(connection) as session:
        return sorted(str(row[0]) for row in session.execute(query).fetchall())


def aggregate_usage(
    path: str | Path,
    as_of,
    *,
    metrics: Sequence[str] | None = None,
    columns: UsageColumns | None = None,
    connection=None,
) -> pd.DataFrame:
    """Aggregate usage rows in Parquet to one row per account with an embedded DuckDB.

    Parameters
    ----------
    path : a Parquet file, a folder of them, or a glob pattern (``events/*.parquet``).
    as_of : the date the windows end on.
    metrics : metric names to give columns; default: those present in the 180 days to ``as_of``.
    columns : source column names (:class:`UsageColumns`).
    connection : a DuckDB connection to use (default: a new in-memory one, see :func:`connect`).

    Returns
    -------
    DataFrame : one row per account with events in the 180 days to ``as_of``: ``account_id``
        (text) and the columns of this module's docstring (counts as int64, the rest float64).
    """
    columns = columns or UsageColumns()
    if not parquet_files(path):
        raise DataError(f"{path}: no Parquet files found")
    with _session(connection) as session:
        if metrics is None:
            metrics = usage_metrics(path, as_of, columns=columns, connection=session)
        if not metrics:
            return pd.DataFrame({"account_id": pd.Series([], dtype="string")})
        sql = usage_sql(as_of, parquet_source(path), metrics=metrics, columns=columns)
        signals = session.execute(sql).df()
    return _tidy(signals)


def _tidy(signals: pd.DataFrame) -> pd.DataFrame:
    from icp_research.data.cleaning import as_text
    from icp_research.data.config import MISSING_TOKENS

    account_id = as_text(signals["account_id"], set(MISSING_TOKENS)).astype("string")
    if account_id.duplicated().any():
        example = account_id[account_id.duplicated()].iloc[0]
        raise DataError(
            f'usage: account ids that differ only in spaces (e.g. "{example}"); '
            "strip them in the source"
        )
    signals["account_id"] = account_id
    for column in signals.columns[1:]:
        if column in COUNT_COLUMNS:
            signals[column] = signals[column].astype(np.int64)
        else:
            signals[column] = signals[column].astype(float)
    return signals.reset_index(drop=True)


# ---------------------------------------------------------------------------------------------
# A configured usage source: what [tables.usage] engine = "duckdb" gives the account facts


@dataclass
class UsageSource:
    """Usage rows left where they are (Parquet), aggregated by DuckDB when facts need them."""

    path: Path | str
    columns: UsageColumns = field(default_factory=UsageColumns)
    label: str = "usage"

    @property
    def files(self) -> list[Path]:
        return parquet_files(self.path)

    def signals(self, as_of, ids: pd.Index) -> pd.DataFrame:
        """The ``usage_<metric>`` account facts (mean daily value over the last 90 days),
        indexed like ``ids``: the same columns :func:`icp_research.data.facts.usage_signals` gives
        for a usage table loaded into pandas."""
        with _session() as session:
            metrics = usage_metrics(self.path, as_of, columns=self.columns, connection=session)
            if not metrics:
                return pd.DataFrame(index=ids)
            table = aggregate_usage(
                self.path, as_of, metrics=metrics, columns=self.columns, connection=session
            )
        names = list(_metric_columns(metrics).values())
        table = table.set_index("account_id")[names]
        # The pandas path has a column only for metrics with a value in the 90-day window.
        table = table.loc[:, table.notna().any()].reindex(ids)
        table.index.name = None
        return table

    def sha256(self) -> str:
        """One digest over every file (name and content), to record what a run read."""
        digest = hashlib.sha256()
        for path in self.files:
            digest.update(path.name.encode())
            with open(path, "rb") as handle:
                for block in iter(lambda h=handle: h.read(1 << 20), b""):
                    digest.update(block)
        return digest.hexdigest()

    @property
    def rows(self) -> int:
        """Rows in the Parquet files (from their metadata; nothing is scanned)."""
        import pyarrow.parquet as pq

        return int(sum(pq.ParquetFile(path).metadata.num_rows for path in self.files))

    def missing_counts(self, canonical: Sequence[str]) -> dict[str, int]:
        """Rows with no value in each of these canonical columns (one scan, in DuckDB)."""
        names = {name: getattr(self.columns, name) for name in canonical}
        quoted = [_identifier(source, '"') for source in names.values()]
        checks = ", ".join(f"COUNT(*) - COUNT({column})" for column in quoted)
        with _session() as session:
            query = f"SELECT {checks} FROM {parquet_source(self.path)}"
            row = session.execute(query).fetchone()
        return {name: int(count) for name, count in zip(names, row, strict=True)}

    def source_columns(self) -> list[str]:
        """Column names of the source (from the first file's schema)."""
        import pyarrow.parquet as pq

        files = self.files
        return list(pq.ParquetFile(files[0]).schema_arrow.names) if files else []
