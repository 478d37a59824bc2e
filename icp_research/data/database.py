"""Tables read from a database (``[warehouse] url``) instead of export files.

A table of ``icp.toml`` names a database table (``table = "salesforce.opportunity"``) or a query
(``sql = "select ..."``) in place of ``path``. Its rows are fetched once, tidied into the same
kind of typed frame a Parquet export gives (dates as datetimes, ``NUMERIC`` as floats), and then
go through exactly the loader's mapping, recodes and checks (:mod:`icp_research.data.loading`);
problems name the table or the query where a file's would name the file.

Connections: ``duckdb:///file.duckdb`` (relative to the config file) and ``duckdb:///:memory:``
are opened with DuckDB's own Python API, read-only; any other URL through SQLAlchemy and the
database's maintained dialect (``postgresql://``, ``snowflake://``, ``bigquery://``,
``databricks://`` ...), in a transaction that is never committed.

Secrets: ``${NAME}`` in the url is read from the environment when the database is opened (values
inside ``user:password@`` are URL-encoded); the password (and query parameters such as
``token``) are shown as ``***`` wherever the url is named (:func:`redact_url`), and driver error
text is scrubbed of them before it reaches a message. What a run records of a database table is
its name (or the query), the row count and a SHA-256 of the rows fetched (:func:`rows_sha256`), so
a report cached on yesterday's rows reruns when the rows change.
"""

from __future__ import annotations

import contextlib
import datetime as dt
import decimal
import hashlib
import os
import re
import uuid
from pathlib import Path
from urllib.parse import quote

import numpy as np
import pandas as pd

from icp_research.errors import ConfigError

INSTALL_HINT = "pip install 'icp-research[warehouse]'"
# ${NAME} in the url; any other "${" is a mistake reported as one.
ENV_REFERENCE = re.compile(r"\$\{([A-Za-z_][A-Za-z0-9_]*)\}")
# Query parameters whose values are secrets (Databricks access_token, private keys, ...).
_SECRET_PARAMETER = re.compile(
    r"(?i)([?&][^=&#]*(?:password|passwd|pwd|secret|token|key|credential)[^=&#]*=)([^&#]*)"
)
# scheme://user:password@ -- the password part (up to the last @ before the host).
_USERINFO = re.compile(r"^([A-Za-z][A-Za-z0-9+.\-]*://[^:/@?#]*:)([^/?#]*)@")
# One table name: plain identifiers (folded by the database as in any SQL) or "quoted" ones,
# with up to two qualifiers (schema.table, database.schema.table).
_NAME_PART = r'(?:[A-Za-z_][A-Za-z0-9_$]*|"(?:[^"]|"")+"|`[^`]+`)'
TABLE_NAME = re.compile(rf"^{_NAME_PART}(?:\.{_NAME_PART}){{0,2}}$")
# Dialects whose package is not SQLAlchemy's own: what to install for a scheme.
DIALECT_PACKAGES = {
    "postgresql": "psycopg[binary]",
    "postgres": "psycopg[binary]",
    "snowflake": "snowflake-sqlalchemy",
    "bigquery": "sqlalchemy-bigquery",
    "databricks": "databricks-sqlalchemy",
    "redshift": "sqlalchemy-redshift",
    "mysql": "pymysql",
    "mssql": "pyodbc",
}


def redact_url(url: str) -> str:
    """The url with its password and secret query parameters shown as ``***``.

    >>> redact_url("postgresql://analyst:s3cret@db.example.com:5432/crm")
    'postgresql://analyst:***@db.example.com:5432/crm'
    >>> redact_url("databricks://token:${TOKEN}@host?http_path=/sql/1&access_token=abc")
    'databricks://token:***@host?http_path=/sql/1&access_token=***'
    """
    text = _USERINFO.sub(lambda m: f"{m.group(1)}***@", str(url), count=1)
    return _SECRET_PARAMETER.sub(lambda m: f"{m.group(1)}***", text)


def url_problem(url, where: str) -> str | None:
    """What is wrong with a ``[warehouse] url`` as written (None when nothing is)."""
    example = 'e.g. url = "postgresql://analyst:${PGPASSWORD}@db.example.com:5432/crm"'
    if not isinstance(url, str) or not url.strip():
        return f"{where}: url = {redact_url(str(url))!r} must be a connection string, {example}"
    if not re.match(r"^[A-Za-z][A-Za-z0-9+.\-]*://", url.strip()):
        return (
            f"{where}: url = {redact_url(url)!r} is not a connection string "
            f"(scheme://...), {example}, or duckdb:///crm.duckdb"
        )
    leftover = ENV_REFERENCE.sub("", url)
    if "${" in leftover:
        return (
            f"{where}: url has a ${{...}} that is not an environment variable name; write "
            "${NAME} with letters, digits and _ (e.g. ${PGPASSWORD})"
        )
    return None


def expand_url(url: str, where: str, environ=None) -> str:
    """The url with each ``${NAME}`` replaced by that environment variable.

    Values that stand in ``user:password@`` are URL-encoded (a password holding ``@`` or ``/``
    still connects); elsewhere they are used as they are (``url = "${DATABASE_URL}"``). A
    variable that is not set is a :class:`ConfigError` naming it.
    """
    environ = os.environ if environ is None else environ
    missing = [name for name in ENV_REFERENCE.findall(url) if name not in environ]
    if missing:
        names = ", ".join(dict.fromkeys(missing))
        raise ConfigError(
            f"{where}: url uses the environment variable {names}, which is not set; "
            f"set it (export {missing[0]}=...) before running, or write the value into the url"
        )
    scheme_end = url.find("://") + 3
    at = url.rfind("@", 0, _authority_end(url, scheme_end))
    parts, last = [], 0
    for match in ENV_REFERENCE.finditer(url):
        value = environ[match.group(1)]
        in_userinfo = scheme_end <= match.start() and match.end() <= at
        parts += [url[last : match.start()], quote(value, safe="") if in_userinfo else value]
        last = match.end()
    parts.append(url[last:])
    return "".join(parts)


def _authority_end(url: str, start: int) -> int:
    for index in range(start, len(url)):
        if url[index] in "/?#":
            return index
    return len(url)


def table_query(name: str) -> str:
    """``SELECT * FROM <name>``: plain names unquoted, so each database folds them as its own
    SQL would (Postgres to lower case, Snowflake to upper case)."""
    return f"SELECT * FROM {name.strip()}"


def query_label(sql: str, limit: int = 60) -> str:
    """A query named on one line: ``query "select o.id, ... from ..."`` (cut at ``limit``)."""
    text = re.sub(r"\s+", " ", sql).strip().rstrip(";").strip()
    if len(text) > limit:
        text = text[: limit - 1].rstrip() + "…"
    return f'query "{text}"'


# ---------------------------------------------------------------------------------------------
# Fetching rows


class DatabaseError(Exception):
    """A database could not be opened or a query failed; the message holds no secret.
    ``fix`` is what to do when it is not the caller's usual advice."""

    def __init__(self, message: str, fix: str | None = None):
        super().__init__(message)
        self.fix = fix


class Database:
    """One open database: DuckDB's own connection or a SQLAlchemy one. Use as a context manager."""

    def __init__(self, url: str, base_dir: Path, display: str):
        self.url, self.base_dir, self.display = url, Path(base_dir), display
        self._secrets = _secrets_of(url)
        self._duckdb = None
        self._engine = None
        self._connection = None

    def __enter__(self) -> Database:
        try:
            if _scheme(self.url) == "duckdb":
                self._open_duckdb()
            else:
                self._open_sqlalchemy()
        except DatabaseError:
            self.close()
            raise
        except Exception as exc:  # drivers raise many types; none may escape with a secret
            self.close()
            raise DatabaseError(
                f"cannot connect to the database ({self.scrub(_first_line(exc))})"
            ) from None
        return self

    def __exit__(self, *exc_info) -> None:
        self.close()

    def close(self) -> None:
        for closing in (self._connection, self._duckdb):
            if closing is not None:
                with contextlib.suppress(Exception):
                    closing.close()
        if self._engine is not None:
            with contextlib.suppress(Exception):
                self._engine.dispose()
        self._duckdb = self._engine = self._connection = None

    def _open_duckdb(self) -> None:
        try:
            import duckdb
        except ImportError:
            raise DatabaseError(
                "duckdb:// needs the DuckDB package, which is not installed",
                f"install it with {INSTALL_HINT}",
            ) from None
        rest = self.url.split("://", 1)[1]
        rest, _, query = rest.partition("?")
        settings = dict(p.split("=", 1) for p in query.split("&") if "=" in p)
        location = rest[1:] if rest.startswith("/") else rest
        if location in ("", ":memory:"):
            self._duckdb = duckdb.connect(":memory:", config=settings)
        else:
            path = Path(location).expanduser()
            if not path.is_absolute():
                path = self.base_dir / path
            if not path.is_file():
                raise DatabaseError(
                    f"the DuckDB database file {path} does not exist (paths in duckdb:/// urls "
                    "are relative to the config file; four slashes for an absolute path)"
                )
            # Read-only: the kit never changes its inputs (and other readers may share the file).
            self._duckdb = duckdb.connect(str(path), read_only=True, config=settings)
        self._duckdb.execute("SET enable_progress_bar = false")
        with contextlib.suppress(duckdb.Error):  # builds without the ICU extension
            self._duckdb.execute("SET TimeZone = 'UTC'")
        # read_parquet('usage.parquet') in a query reads next to the config file.
        self._duckdb.execute(
            f"SET file_search_path = '{str(self.base_dir).replace(chr(39), 2 * chr(39))}'"
        )

    def _open_sqlalchemy(self) -> None:
        try:
            import sqlalchemy as sa
        except ImportError:
            raise DatabaseError(
                "[warehouse] url needs SQLAlchemy, which is not installed",
                f"install it with {INSTALL_HINT}",
            ) from None
        try:
            url = sa.engine.make_url(self.url)
        except Exception:
            raise DatabaseError(
                "the url cannot be read as a connection string "
                "(dialect://user:password@host:port/database)"
            ) from None
        url = _with_installed_driver(url)
        try:
            self._engine = sa.create_engine(url, poolclass=sa.pool.NullPool)
        except Exception as exc:
            raise self._driver_problem(url, exc) from None
        # The query goes to the driver exactly as written: no bind parameters, so a "%" in
        # LIKE 'Closed%' or a ":name" in a literal is never taken for a placeholder.
        self._connection = self._engine.connect().execution_options(no_parameters=True)

    def _driver_problem(self, url, exc: Exception) -> DatabaseError:
        backend = url.get_backend_name()
        package = DIALECT_PACKAGES.get(backend)
        if type(exc).__name__ == "NoSuchModuleError" or isinstance(exc, ImportError):
            return DatabaseError(
                f"no database driver for {backend}:// is installed",
                f"install its SQLAlchemy dialect: pip install {package}"
                if package
                else f"install the SQLAlchemy dialect for {backend}",
            )
        return DatabaseError(f"cannot connect to the database ({self.scrub(_first_line(exc))})")

    def query(self, sql: str) -> pd.DataFrame:
        """Run one query; its rows as a typed frame indexed from 1 (see :func:`tidy_rows`)."""
        sql = sql.strip().rstrip(";").strip()
        try:
            if self._duckdb is not None:
                result = self._duckdb.execute(sql)
                names = [column[0] for column in result.description or []]
                frame = result.df()
                if len(names) == frame.shape[1]:
                    frame.columns = names  # as the query names them (.df() renames repeats)
            else:
                # A plain string goes to the driver as written (no SQLAlchemy bind parameters).
                frame = pd.read_sql_query(sql, self._connection)
        except Exception as exc:
            if self._connection is not None:
                with contextlib.suppress(Exception):
                    self._connection.rollback()  # Postgres refuses more work after an error
            raise DatabaseError(self.scrub(_first_line(exc))) from None
        return tidy_rows(frame)

    def scrub(self, text: str) -> str:
        """``text`` without the url's password or secret parameters."""
        for secret in self._secrets:
            text = text.replace(secret, "***")
        return text


def _scheme(url: str) -> str:
    return url.split("://", 1)[0].split("+", 1)[0].lower()


def _secrets_of(url: str) -> list[str]:
    from urllib.parse import unquote

    secrets = []
    match = _USERINFO.match(url)
    if match and match.group(2):
        secrets += [match.group(2), unquote(match.group(2))]
    for found in _SECRET_PARAMETER.finditer(url):
        if found.group(2):
            secrets += [found.group(2), unquote(found.group(2))]
    secrets.append(url)
    # Longest first, so that a password is not half-replaced inside the url that holds it.
    return sorted({s for s in secrets if s}, key=len, reverse=True)


def _with_installed_driver(url):
    """``postgresql://`` means psycopg2 to SQLAlchemy; use psycopg (3) when only it is installed."""
    import importlib.util

    if url.drivername in ("postgresql", "postgres"):
        if importlib.util.find_spec("psycopg2") is None and importlib.util.find_spec("psycopg"):
            return url.set(drivername="postgresql+psycopg")
        return url.set(drivername="postgresql")
    return url


def _first_line(exc: Exception) -> str:
    """A driver error's first meaningful line (SQLAlchemy's wrapper and links left out)."""
    inner = getattr(exc, "orig", None) or exc
    lines = [line.strip() for line in str(inner).splitlines() if line.strip()]
    text = lines[0] if lines else type(inner).__name__
    text = re.sub(r"\s*\(Background on this error at: [^)]*\)", "", text)
    return text[:240]


def tidy_rows(frame: pd.DataFrame) -> pd.DataFrame:
    """Rows from a database as the loader reads a Parquet export: column names as text, dates
    as ``datetime64``, ``NUMERIC`` / ``DECIMAL`` as floats, UUIDs as text, integers with
    blanks as floats; index = row number from 1 (in the order the database returned them)."""
    # By position: a query may name two columns alike (reported by the loader, not lost here).
    columns = {
        position: _tidy_column(frame.iloc[:, position]) for position in range(frame.shape[1])
    }
    tidy = pd.DataFrame(columns)
    tidy.columns = [str(c) for c in frame.columns]
    tidy.index = np.arange(1, len(tidy) + 1)
    return tidy


def _tidy_column(series: pd.Series) -> pd.Series:
    dtype = series.dtype
    if isinstance(dtype, pd.api.extensions.ExtensionDtype) and not isinstance(
        dtype, pd.DatetimeTZDtype
    ):
        if pd.api.types.is_integer_dtype(dtype):
            # As pyarrow gives a Parquet integer column with blanks.
            return series.astype("float64") if series.isna().any() else series.astype("int64")
        if pd.api.types.is_float_dtype(dtype):
            return series.astype("float64")
        if pd.api.types.is_string_dtype(dtype):
            return series.astype(object).where(series.notna(), None)
        return series
    if not pd.api.types.is_object_dtype(dtype):
        return series
    present = series.dropna()
    if present.empty:
        return series
    kinds = {type(v) for v in present}
    if kinds <= {decimal.Decimal}:
        return series.map(lambda v: np.nan if v is None else float(v)).astype("float64")
    if kinds <= {dt.date}:
        return pd.to_datetime(series)
    if kinds <= {uuid.UUID}:
        return series.map(lambda v: None if v is None else str(v))
    return series


def rows_sha256(frame: pd.DataFrame) -> str:
    """A digest of the rows fetched: column names, types and every value, in order."""
    digest = hashlib.sha256()
    for name, dtype in zip(frame.columns, frame.dtypes, strict=True):
        digest.update(f"{name}\x1f{dtype}\x1e".encode())
    if len(frame):
        hashed = pd.util.hash_pandas_object(frame, index=False)
        digest.update(hashed.to_numpy().tobytes())
    return digest.hexdigest()
