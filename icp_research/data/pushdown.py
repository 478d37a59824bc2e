"""Deal facts per account computed by the engine where the deals live.

:func:`deal_aggregates` gives, for the opportunities held in DuckDB, a SQL database such as
PostgreSQL, or Apache Spark, the deal columns :func:`icp_research.data.facts.account_facts`
computes in pandas (``deals_won`` ... ``expansion_deals_won``, see
:data:`icp_research.data.facts.FACT_COLUMNS`), with the same numbers, as of a date. The engine
reads every deal and sends back one row per account, so the deals never have to fit in memory.

>>> import duckdb
>>> from icp_research.data.pushdown import deal_aggregates
>>> con = duckdb.connect()
>>> stats = deal_aggregates(con, "read_parquet('deals/*.parquet')", "2026-09-30")  # doctest: +SKIP
>>> stats = deal_aggregates(spark, "crm.opportunities", "2026-09-30")  # doctest: +SKIP
>>> facts = facts.join(stats, on="account_id")  # doctest: +SKIP

Why plain SQL and not a portable layer such as Ibis: Ibis compiles one expression for the three
engines, but its Spark support pins ``pyspark<4.1`` (installing it would downgrade a current
Spark) and its PostgreSQL backend wants its own psycopg connection instead of the SQLAlchemy
engine the kit opens from ``[warehouse] url``. The aggregation is one query in the subset of SQL
the three engines share (``COUNT``, ``SUM``, ``AVG``, ``MIN``, ``CASE WHEN``,
``percentile_cont(0.5) WITHIN GROUP (ORDER BY ...)``, ``CAST('...' AS TIMESTAMP)``); only the
whole days between two timestamps and the quoting of a text literal differ, in :data:`DIALECTS`.

As-of rules (those of :func:`~icp_research.data.facts.as_of_view`), inside the query: deals
created after the date are left out, an undated deal counts when it closed by the date, and a
deal closed after the date is open. New business is the deals of type ``new`` or without a type
when any deal (as of the date) has type ``new``, else every deal that is not an ``expansion`` or
``renewal``. Loss reasons are classified in
Python: the distinct reasons are fetched and matched with
:data:`~icp_research.data.facts.NO_DECISION` exactly as pandas does, and the query counts the
lost deals whose reason is one of the matching ones. The sales cycle of a deal is its whole days
from ``created_at`` to ``closed_at`` (a deal closed before it was created has none), and the
median of an even number of cycles is the mean of the two middle ones, as in pandas.

Each account with at least one deal (as of the date) has a row; ``account_facts`` keeps only the
accounts of the accounts table, so join the result to them. DuckDB, SQLAlchemy and PySpark are
imported by the caller, never by this module: ``pip install 'icp-research[warehouse]'`` for
DuckDB and PostgreSQL, ``pip install 'icp-research[spark]'`` for Spark (3.4 or later). Spark does
not read the nanosecond timestamps pandas writes to Parquet by default: write the deals with
``frame.to_parquet(path, coerce_timestamps="us")``.
"""

from __future__ import annotations

from dataclasses import dataclass

import pandas as pd

from icp_research.data.facts import _is_no_decision

#: The columns :func:`deal_aggregates` returns, in order (some only when the data has what
#: they need: ``no_decision_losses`` a loss reason, ``avg_deal_size`` and ``won_amount`` an
#: amount, ``expansion_deals_won`` deals typed other than ``new`` beside ``new`` ones).
DEAL_COLUMNS = (
    "deals_won",
    "deals_lost",
    "deals_open",
    "win_rate",
    "no_decision_losses",
    "avg_deal_size",
    "won_amount",
    "median_sales_cycle_days",
    "first_won_at",
    "first_deal_at",
    "expansion_deals_won",
)
_COUNTS = ("deals_won", "deals_lost", "deals_open", "no_decision_losses", "expansion_deals_won")
_DATES = ("first_won_at", "first_deal_at")


def _standard_text(value: str) -> str:
    return "'" + value.replace("'", "''") + "'"


def _spark_text(value: str) -> str:
    # Spark SQL reads backslash escapes in literals (spark.sql.parser.escapedStringLiterals off).
    return "'" + value.replace("\\", "\\\\").replace("'", "\\'") + "'"


@dataclass(frozen=True)
class Dialect:
    """What differs between engines: whole days from ``start`` to ``end`` (for ``end >= start``,
    as a double) and a text literal."""

    days: str
    text: object


#: Engines :func:`deal_aggregates` speaks to, by name (SQLAlchemy's ``dialect.name``).
DIALECTS = {
    "duckdb": Dialect(
        "CAST(date_sub('day', CAST({start} AS TIMESTAMP), CAST({end} AS TIMESTAMP)) AS DOUBLE)",
        _standard_text,
    ),
    "postgresql": Dialect(
        "CAST(EXTRACT(DAY FROM CAST({end} AS TIMESTAMP) - CAST({start} AS TIMESTAMP)) "
        "AS DOUBLE PRECISION)",
        _standard_text,
    ),
    "spark": Dialect(
        "CAST(timestampdiff(DAY, CAST({start} AS TIMESTAMP), CAST({end} AS TIMESTAMP)) AS DOUBLE)",
        _spark_text,
    ),
}


def deal_aggregates(connection, relation: str, as_of) -> pd.DataFrame:
    """Deal facts per account, as of ``as_of``, computed by the engine holding the deals.

    Parameters
    ----------
    connection : a DuckDB connection, a SQLAlchemy engine or connection to PostgreSQL, or a
        ``pyspark.sql.SparkSession``.
    relation : what the query reads the canonical opportunities from, written as the engine
        wants it after ``FROM``: a table or view name (``analytics.opportunities``), or any
        table expression (``read_parquet('deals/*.parquet')`` in DuckDB, a subquery in
        parentheses with an alias). Columns ``account_id``, ``stage`` (won / lost / open) and
        ``created_at`` are needed; ``closed_at``, ``amount``, ``loss_reason`` and ``type`` are
        used when present.
    as_of : date (anything :class:`pandas.Timestamp` reads); its day counts, inclusive.

    Returns
    -------
    DataFrame
        One row per account with a deal as of the date, indexed by ``account_id`` (sorted),
        with the columns :func:`icp_research.data.facts.account_facts` gives those accounts
        (the present ones of :data:`DEAL_COLUMNS`): counts as int64, dates as datetime64[ns].
    """
    engine = _Engine(connection)
    as_of = pd.Timestamp(as_of).normalize()
    columns = {str(c).lower() for c in engine.columns(relation)}
    missing = [c for c in ("account_id", "stage", "created_at") if c not in columns]
    if missing:
        raise ValueError(f"{relation} has no column {', '.join(missing)} (canonical opportunities)")
    reasons = None
    if "loss_reason" in columns:
        distinct = engine.query(
            f"SELECT DISTINCT loss_reason FROM {relation} WHERE loss_reason IS NOT NULL"
        )["loss_reason"]
        text = pd.Series(sorted(str(r) for r in distinct), dtype="string")
        reasons = text[_is_no_decision(text).to_numpy(dtype=bool)].tolist()
    sql = deal_aggregates_sql(
        engine.dialect, relation, as_of, columns=columns, no_decision_reasons=reasons
    )
    return _tidy(engine.query(sql), columns)


def deal_aggregates_sql(
    dialect: str,
    relation: str,
    as_of,
    *,
    columns,
    no_decision_reasons: list[str] | None = None,
) -> str:
    """The query :func:`deal_aggregates` runs (for reading, or running elsewhere).

    Parameters
    ----------
    dialect : a key of :data:`DIALECTS`.
    relation : the table expression holding the opportunities (see :func:`deal_aggregates`).
    as_of : the as-of date.
    columns : the relation's column names (lower case); optional ones that are absent are
        left out of the result.
    no_decision_reasons : the loss reasons that mean "no decision" (None: no loss reason
        column).

    Returns
    -------
    str
        One ``SELECT``: a row per account, the columns of :data:`DEAL_COLUMNS` that apply
        except ``win_rate`` (computed from the counts in Python), plus ``any_new`` and
        ``any_other`` (1 when some deal, as of the date, has a type other than ``new``, plus 2
        when some deal is an ``expansion`` or ``renewal``).
    """
    spoken = DIALECTS[dialect]
    date = f"CAST('{pd.Timestamp(as_of).normalize():%Y-%m-%d %H:%M:%S}' AS TIMESTAMP)"
    columns = set(columns)

    def optional(name: str, kind: str) -> str:
        return name if name in columns else f"CAST(NULL AS {kind})"

    closed = optional("closed_at", "TIMESTAMP")
    cycle = spoken.days.format(start="created_at", end="closed_at")
    new_won = "is_new = 1 AND stage = 'won'"
    if no_decision_reasons:
        listed = ", ".join(spoken.text(r) for r in no_decision_reasons)
        no_decision = f"is_new = 1 AND stage = 'lost' AND loss_reason IN ({listed})"
    else:
        no_decision = "1 = 0"
    measures = [
        f"COUNT(CASE WHEN {new_won} THEN 1 END) AS deals_won",
        "COUNT(CASE WHEN is_new = 1 AND stage = 'lost' THEN 1 END) AS deals_lost",
        "COUNT(CASE WHEN is_new = 1 AND stage = 'open' THEN 1 END) AS deals_open",
    ]
    if no_decision_reasons is not None:
        measures.append(f"COUNT(CASE WHEN {no_decision} THEN 1 END) AS no_decision_losses")
    if "amount" in columns:
        measures += [
            f"AVG(CASE WHEN {new_won} THEN amount END) AS avg_deal_size",
            f"SUM(CASE WHEN {new_won} THEN amount END) AS won_amount",
        ]
    measures += [
        "percentile_cont(0.5) WITHIN GROUP (ORDER BY CASE WHEN "
        f"{new_won} AND closed_at >= created_at THEN {cycle} END) AS median_sales_cycle_days",
        "MIN(CASE WHEN stage = 'won' THEN closed_at END) AS first_won_at",
        "MIN(created_at) AS first_deal_at",
        "COUNT(CASE WHEN is_new = 0 AND stage = 'won' THEN 1 END) AS expansion_deals_won",
        "MAX(any_new) AS any_new",
        "MAX(any_other) AS any_other",
    ]
    select_amount = ", amount" if "amount" in columns else ""
    select_reason = ", loss_reason" if no_decision_reasons is not None else ""
    if "type" in columns:
        select_type = ", type AS deal_type"
        existing = "deal_type IN ('expansion', 'renewal')"
        any_new = "MAX(CASE WHEN deal_type = 'new' THEN 1 ELSE 0 END)"
        any_other = (
            f"MAX(CASE WHEN deal_type <> 'new' THEN 1 ELSE 0 END) + "
            f"2 * MAX(CASE WHEN {existing} THEN 1 ELSE 0 END)"
        )
        is_new = (
            "(kinds.any_new = 1 AND (deal_type IS NULL OR deal_type = 'new')) OR "
            f"(kinds.any_new = 0 AND (deal_type IS NULL OR NOT {existing}))"
        )
    else:
        select_type, any_new, any_other, is_new = "", "MAX(0)", "MAX(0)", "1 = 1"
    body = ",\n    ".join(measures)
    return f"""WITH deals AS (
  SELECT account_id, created_at{select_amount}{select_reason}{select_type},
    CASE WHEN {closed} > {date} THEN 'open' ELSE stage END AS stage,
    CASE WHEN {closed} > {date} THEN NULL ELSE {closed} END AS closed_at
  FROM {relation}
  WHERE account_id IS NOT NULL
    AND (created_at <= {date} OR (created_at IS NULL AND {closed} <= {date}))
), kinds AS (
  SELECT {any_new} AS any_new, {any_other} AS any_other FROM deals
), typed AS (
  SELECT deals.*, kinds.any_new, kinds.any_other,
    CASE WHEN {is_new} THEN 1 ELSE 0 END AS is_new
  FROM deals CROSS JOIN kinds
)
SELECT account_id,
    {body}
FROM typed
GROUP BY account_id
ORDER BY account_id"""


def _tidy(rows: pd.DataFrame, columns: set) -> pd.DataFrame:
    """The query's rows as :func:`~icp_research.data.facts.account_facts` types them."""
    rows.columns = [str(c).lower() for c in rows.columns]
    # any_other: 1 for a type other than new, + 2 for an expansion or renewal. Some deals are
    # not new business (as in pandas) when types other than new stand beside new ones, or when
    # none is new and some are expansions or renewals.
    other = int(rows["any_other"].max()) if len(rows) else 0
    any_new = bool(len(rows)) and rows["any_new"].max() == 1
    expansion = (any_new and other % 2 == 1) or (not any_new and other >= 2)
    stats = pd.DataFrame(index=pd.Index(rows["account_id"].astype(object), name="account_id"))
    for name in DEAL_COLUMNS:
        if name == "win_rate":
            closed = stats["deals_won"] + stats["deals_lost"]
            stats[name] = (stats["deals_won"] / closed).where(closed > 0)
        elif name == "expansion_deals_won" and not expansion:
            continue
        elif name in rows:
            values = rows[name].to_numpy()
            if name in _COUNTS:
                stats[name] = pd.Series(values, index=stats.index).astype("int64")
            elif name in _DATES:
                stats[name] = _naive_datetimes(pd.Series(values, index=stats.index))
            else:
                stats[name] = pd.to_numeric(pd.Series(values, index=stats.index)).astype(float)
    if "won_amount" in stats:
        stats["won_amount"] = stats["won_amount"].fillna(0.0)
    return stats


def _naive_datetimes(values: pd.Series) -> pd.Series:
    dates = pd.to_datetime(values)
    if isinstance(dates.dtype, pd.DatetimeTZDtype):
        dates = dates.dt.tz_convert("UTC").dt.tz_localize(None)
    return dates.astype("datetime64[ns]")


class _Engine:
    """One query interface over a DuckDB connection, a SQLAlchemy engine or connection, or a
    SparkSession (told apart by their module, so none of them is imported here)."""

    def __init__(self, connection):
        self.connection = connection
        module = type(connection).__module__.split(".")[0].lstrip("_")
        if module == "duckdb":
            self.kind, self.dialect = "duckdb", "duckdb"
        elif module == "pyspark":
            self.kind, self.dialect = "spark", "spark"
        elif module == "sqlalchemy":
            self.kind = "sqlalchemy"
            self.dialect = connection.dialect.name
        else:
            raise TypeError(
                "connection must be a DuckDB connection, a SQLAlchemy engine or connection, "
                f"or a SparkSession, not {type(connection).__name__}"
            )
        if self.dialect not in DIALECTS:
            raise ValueError(
                f"no deal aggregation for the {self.dialect} dialect yet "
                f"(supported: {', '.join(DIALECTS)})"
            )

    def columns(self, relation: str) -> list[str]:
        """The relation's column names (no rows read)."""
        sql = f"SELECT * FROM {relation} WHERE 1 = 0"
        if self.kind == "duckdb":
            return [d[0] for d in self.connection.execute(sql).description]
        if self.kind == "spark":
            return self.connection.sql(sql).columns
        return list(self.query(sql).columns)

    def query(self, sql: str) -> pd.DataFrame:
        """The rows of one query."""
        if self.kind == "duckdb":
            result = self.connection.execute(sql)
            names = [d[0] for d in result.description]
            return pd.DataFrame.from_records(result.fetchall(), columns=names)
        if self.kind == "spark":
            result = self.connection.sql(sql)
            return pd.DataFrame.from_records(
                [tuple(row) for row in result.collect()], columns=result.columns
            )
        if hasattr(self.connection, "connect"):  # an Engine
            with self.connection.connect() as connection:
                return self._sqlalchemy_rows(connection, sql)
        return self._sqlalchemy_rows(self.connection, sql)

    @staticmethod
    def _sqlalchemy_rows(connection, sql: str) -> pd.DataFrame:
        # As written: no bind parameters, so a ":" or "%" in a quoted loss reason stays text.
        result = connection.execution_options(no_parameters=True).exec_driver_sql(sql)
        return pd.DataFrame.from_records(result.fetchall(), columns=list(result.keys()))
