"""Real databases for the warehouse tests: the demo exports in DuckDB, and a PostgreSQL server
started in a temporary folder.

:func:`demo_raw_tables` reads each demo export the way the loader reads it (text cells of the
CSV files as they are, typed Parquet and Excel columns), so a database holding those rows must
load into exactly the dataset the files give. :func:`demo_canonical_tables` is the other shape a
warehouse has: clean typed tables under the canonical names (what a dbt model writes).
:class:`PostgresServer` runs ``initdb`` / ``pg_ctl`` from Debian's ``postgresql`` package (as
the ``postgres`` user when the tests run as root), on a free port, with its socket and data in
a temporary folder, and stops it at teardown.
"""

from __future__ import annotations

import functools
import glob
import os
import re
import shutil
import socket
import subprocess
import tempfile
from pathlib import Path

import pandas as pd
import pytest

from icp_research.data.demo import DEMO_CONFIG

#: Tables the demo config reads, in its order.
DEMO_TABLES = (
    "accounts",
    "opportunities",
    "subscriptions",
    "churn_events",
    "usage",
    "nps",
    "feedback",
    "survey",
    "deal_roles",
)
INSTALL_POSTGRES = (
    "PostgreSQL server binaries (initdb, pg_ctl) are not installed; install them with "
    "`apt-get install -y postgresql` (Debian/Ubuntu) to run these tests"
)


@functools.lru_cache(maxsize=1)
def _raw_tables() -> dict[str, pd.DataFrame]:
    from icp_research.data import loading
    from icp_research.data.config import load_config

    config = load_config(DEMO_CONFIG)
    frames = {}
    for name, tc in config.tables.items():
        out = loading._Collector(loading.ValidationReport(), name, tc.display_path)
        frames[name] = loading._read_raw(tc, out).reset_index(drop=True)
    return frames


def demo_raw_tables() -> dict[str, pd.DataFrame]:
    """Each demo export as the loader reads it (a copy: callers may change it)."""
    return {name: frame.copy() for name, frame in _raw_tables().items()}


@functools.lru_cache(maxsize=1)
def _csv_dataset():
    from icp_research.data.loading import load_tables

    return load_tables(DEMO_CONFIG)


def demo_dataset():
    """The demo dataset loaded from its files (shared; do not change it)."""
    return _csv_dataset()


def demo_canonical_tables() -> dict[str, pd.DataFrame]:
    """The canonical tables the demo files load into (a copy)."""
    return {name: frame.copy() for name, frame in _csv_dataset().tables.items()}


def warehouse_config(url: str, schema: str) -> str:
    """The demo's icp.toml with every ``path = "x.csv"`` read as ``table = "<schema>.x"``
    from ``url`` (mapping, recodes and attributes unchanged)."""
    text = DEMO_CONFIG.read_text(encoding="utf-8")
    text = re.sub(r'(?m)^path = "(\w+)\.\w+"$', rf'table = "{schema}.\1"', text)
    text = text.replace('sheet = "answers"\n', "")
    assert "path =" not in text
    return f'[warehouse]\nurl = "{url}"\n\n{text}'


def canonical_config(url: str, queries: dict[str, str]) -> str:
    """A config reading canonical tables: ``queries`` maps a table to ``table = "..."`` (a
    name) or ``sql = "..."`` (anything with a space)."""
    lines = ["[warehouse]", f'url = "{url}"', "", "[project]", 'as_of = "2026-09-30"', ""]
    for name, source in queries.items():
        key = "sql" if " " in source else "table"
        lines += [f"[tables.{name}]", f'{key} = """{source}"""', ""]
    demo = DEMO_CONFIG.read_text(encoding="utf-8")
    lines.append(demo[demo.index("[attributes]") :])
    return "\n".join(lines)


def write_duckdb(path: Path, schema: str, frames: dict[str, pd.DataFrame]) -> Path:
    """A DuckDB database file holding ``frames`` as tables of ``schema``."""
    import duckdb

    connection = duckdb.connect(str(path))
    try:
        connection.execute(f"CREATE SCHEMA IF NOT EXISTS {schema}")
        for name, frame in frames.items():
            connection.register("incoming", frame)
            connection.execute(f"CREATE TABLE {schema}.{name} AS SELECT * FROM incoming")
            connection.unregister("incoming")
    finally:
        connection.close()
    return path


def assert_same_tables(expected: dict, actual: dict) -> None:
    """Every canonical table equal: same columns (any order), dtypes, values and rows."""
    assert sorted(actual) == sorted(expected)
    for name, frame in expected.items():
        assert sorted(actual[name].columns) == sorted(frame.columns), name
        pd.testing.assert_frame_equal(actual[name][list(frame.columns)], frame, obj=name)


def assert_same_rows(expected: dict, actual: dict) -> None:
    """As :func:`assert_same_tables`, in any row order: a database table has none (PostgreSQL
    returns a freshly loaded table in the order its pages were filled, not the order of COPY)."""

    def ordered(frame: pd.DataFrame, columns: list) -> pd.DataFrame:
        return frame[columns].sort_values(columns, kind="stable").reset_index(drop=True)

    assert sorted(actual) == sorted(expected)
    for name, frame in expected.items():
        columns = list(frame.columns)
        assert sorted(actual[name].columns) == sorted(columns), name
        pd.testing.assert_frame_equal(
            ordered(actual[name], columns), ordered(frame, columns), obj=name
        )


# ---------------------------------------------------------------------------------------------
# PostgreSQL


def assert_same_artifacts(run: Path, demo: Path, schema: str, *, exact: bool = True) -> None:
    """Every artifact table of ``run`` (the demo read from a database's ``schema``) is the demo
    run's: byte for byte when ``exact``, else the same rows, texts and counts, with numbers equal
    to 1e-9 (rows that come back in another order are summed in another order: p-values can
    differ in their 15th digit); the data problems name the tables instead of the files."""
    expected = sorted(p.relative_to(demo) for p in demo.glob("artifacts/**/*.csv"))
    written = sorted(p.relative_to(run) for p in run.glob("artifacts/**/*.csv"))
    assert written == expected and len(expected) >= 20
    for relative in expected:
        if relative.name == "data_problems.csv":
            files = pd.read_csv(demo / relative)
            tables = pd.read_csv(run / relative)
            assert set(tables["file"]) == {f"{schema}.{t}" for t in files["table"]}
            pd.testing.assert_frame_equal(tables.drop(columns="file"), files.drop(columns="file"))
            continue
        if exact:
            assert (run / relative).read_bytes() == (demo / relative).read_bytes(), relative
            continue
        got, want = pd.read_csv(run / relative), pd.read_csv(demo / relative)
        try:
            pd.testing.assert_frame_equal(got, want, check_exact=False, rtol=1e-9, atol=1e-12)
        except AssertionError as error:
            raise AssertionError(f"{relative}: {error}") from None


def postgres_bin() -> Path | None:
    """The folder of initdb / pg_ctl: Debian's /usr/lib/postgresql/<version>/bin, else PATH."""
    found = sorted(
        glob.glob("/usr/lib/postgresql/*/bin/initdb"),
        key=lambda p: [int(x) for x in re.findall(r"\d+", p)],
    )
    if found:
        return Path(found[-1]).parent
    initdb = shutil.which("initdb")
    return Path(initdb).parent if initdb else None


def require_postgres() -> Path:
    """The binaries' folder; skips (or fails under ICP_REQUIRE_POSTGRES=1) when missing."""
    folder = postgres_bin()
    if folder is None or not (folder / "pg_ctl").exists():
        if os.environ.get("ICP_REQUIRE_POSTGRES") == "1":
            pytest.fail(f"ICP_REQUIRE_POSTGRES=1 but {INSTALL_POSTGRES}")
        pytest.skip(INSTALL_POSTGRES)
    return folder


def _free_port() -> int:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as probe:
        probe.bind(("127.0.0.1", 0))
        return probe.getsockname()[1]


class PostgresServer:
    """A throwaway PostgreSQL cluster: password authentication on 127.0.0.1:<port>, its
    socket in the same temporary folder; :meth:`stop` removes everything."""

    user = "icp"
    # Characters that must be URL-encoded: ${PGPASSWORD} in a url has to survive them.
    password = "s3cr@t/pa:ss%word"

    def __init__(self, bin_dir: Path):
        self.bin_dir = bin_dir
        self.folder = Path(tempfile.mkdtemp(prefix="icp-postgres-"))
        self.data = self.folder / "data"
        self.port = _free_port()
        self.as_postgres = os.geteuid() == 0  # initdb and pg_ctl refuse to run as root

    def _run(self, *args: str, timeout: int = 60) -> subprocess.CompletedProcess:
        command = [str(self.bin_dir / args[0]), *args[1:]]
        if self.as_postgres:
            command = ["runuser", "-u", "postgres", "--", *command]
        result = subprocess.run(command, capture_output=True, text=True, timeout=timeout)
        if result.returncode != 0:
            raise RuntimeError(f"{args[0]} failed: {result.stderr or result.stdout}")
        return result

    def start(self) -> PostgresServer:
        password_file = self.folder / "password"
        password_file.write_text(self.password + "\n", encoding="utf-8")
        if self.as_postgres:
            shutil.chown(self.folder, "postgres")
            shutil.chown(password_file, "postgres")
        self.folder.chmod(0o700)
        self._run(
            "initdb",
            "-D",
            str(self.data),
            "-U",
            self.user,
            f"--pwfile={password_file}",
            "--auth=scram-sha-256",
            "--encoding=UTF8",
            "--locale=C",
            "--no-sync",
        )
        options = (
            f"-p {self.port} -k {self.folder} -c listen_addresses=127.0.0.1 -c fsync=off "
            "-c synchronous_commit=off -c full_page_writes=off"
        )
        self._run(
            "pg_ctl",
            "-D",
            str(self.data),
            "-l",
            str(self.folder / "log"),
            "-o",
            options,
            "-w",
            "start",
        )
        return self

    def stop(self) -> None:
        try:
            if (self.data / "postmaster.pid").exists():
                self._run("pg_ctl", "-D", str(self.data), "-m", "immediate", "-w", "stop")
        finally:
            shutil.rmtree(self.folder, ignore_errors=True)

    def url(self, password: str | None = None, database: str = "postgres") -> str:
        from urllib.parse import quote

        secret = quote(self.password if password is None else password, safe="")
        return f"postgresql://{self.user}:{secret}@127.0.0.1:{self.port}/{database}"

    def connect(self):
        import psycopg

        return psycopg.connect(
            host="127.0.0.1",
            port=self.port,
            user=self.user,
            password=self.password,
            dbname="postgres",
            autocommit=True,
        )


def _pg_type(series: pd.Series, dates: bool) -> str:
    if pd.api.types.is_bool_dtype(series):
        return "boolean"
    if pd.api.types.is_datetime64_any_dtype(series):
        return "date" if dates else "timestamp"
    if pd.api.types.is_float_dtype(series) or pd.api.types.is_integer_dtype(series):
        return "double precision"
    return "text"


def _cell(value):
    if value is None or value is pd.NA or value is pd.NaT:
        return None
    if isinstance(value, float) and value != value:
        return None
    if isinstance(value, pd.Timestamp):
        return value.to_pydatetime()
    return value


def copy_to_postgres(connection, schema: str, frames: dict, *, dates: bool = False) -> None:
    """Create ``schema`` and load each frame into a table of its name with COPY (quoted column
    names as the frame has them; datetimes as ``date`` when ``dates``)."""
    with connection.cursor() as cursor:
        cursor.execute(f"CREATE SCHEMA IF NOT EXISTS {schema}")
        for name, frame in frames.items():
            columns = ", ".join(
                f'"{column}" {_pg_type(frame[column], dates)}' for column in frame.columns
            )
            cursor.execute(f"CREATE TABLE {schema}.{name} ({columns})")
            quoted = ", ".join(f'"{column}"' for column in frame.columns)
            with cursor.copy(f"COPY {schema}.{name} ({quoted}) FROM STDIN") as copy:
                for row in frame.itertuples(index=False, name=None):
                    copy.write_row([_cell(value) for value in row])
