"""Loading exports into the canonical tables, and validating them.

``validate(config)`` reads every export named in ``icp.toml``, maps and cleans it, and returns a
:class:`ValidationReport` listing every problem with its file, column, row numbers and the fix.
``load_tables(config)`` does the same and raises :class:`~icp_research.errors.DataError` when any
problem is an error. Inputs are opened read-only and never modified.

Row numbers in messages are those a spreadsheet shows: the header is row 1, the first data row
is row 2 (for Parquet, the first record is row 1).
"""

from __future__ import annotations

import contextlib
import csv
import gc
import hashlib
import io
import re
import sys
import warnings
import zipfile
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
import pandas as pd

from icp_research.bundled import code_fingerprint
from icp_research.data import churn_source
from icp_research.data.cleaning import (
    CURRENCY_MARK,
    CURRENCY_SYMBOLS,
    DISTINCT_SAMPLE,
    ROUGHLY,
    as_text,
    cover_date_formats,
    currency_marks,
    date_formats,
    grouped_with,
    guess_date_formats,
    looks_like_flags,
    norm_name,
    only_text,
    other_decimal_mark,
    parse_bands,
    parse_dates,
    parse_distinct,
    parse_flags,
    parse_numbers,
    per_distinct,
)
from icp_research.data.config import (
    MISSING_TOKENS,
    MISSING_TOKENS_NUMERIC,
    Config,
    TableConfig,
    snake_name,
)
from icp_research.data.encodings import (
    MOJIBAKE,
    mojibake_count,
    mojibake_example,
    rank_encodings,
    same_encoding,
    script_encoding,
)
from icp_research.data.schema import TABLES, default_as_of, personal_column
from icp_research.errors import DataError, IcpError

MAX_ROWS_SHOWN = 5
#: Canonical columns that count things: whole numbers, never negative.
COUNTS = ("employees", "seats")
# Rows kept per problem for --verbose (a column of a million bad dates keeps the first 1,000).
MAX_ROWS_KEPT = 1000
# Attributes with more distinct values than this (and mostly unique) look like names or ids.
HIGH_CARDINALITY = 50
#: Longest text cell kept at load: a one-megabyte note would otherwise slow every report that
#: reads it and swell the artifacts that quote it.
MAX_CELL_CHARS = 10_000

_WON = {"won", "closed won", "closedwon", "closed-won", "win", "closed/won"}
_LOST = {"lost", "closed lost", "closedlost", "closed-lost", "loss", "closed/lost"}
_OPEN = {"open"}


# ---------------------------------------------------------------------------------------------
# Problems and the report


@dataclass
class Problem:
    """One thing wrong (or worth knowing) about the inputs."""

    level: str  # "error", "warning" or "info"
    table: str
    file: str
    message: str
    fix: str = ""
    column: str | None = None
    rows: list[int] = field(default_factory=list)
    n_rows: int = 0
    # The offending cell of each row in ``rows``, as the export has it (when there is one).
    values: list[str] = field(default_factory=list)

    def line(self, verbose: bool = False) -> str:
        """The one-line message a user sees; ``verbose`` lists every row kept, not five."""
        where = self.file
        if self.column:
            where += f', column "{self.column}"'
        text = f"{where}: {self.message}"
        if self.rows:
            limit = len(self.rows) if verbose else MAX_ROWS_SHOWN
            shown = ", ".join(str(r) for r in self.rows[:limit])
            more = self.n_rows - min(len(self.rows), limit)
            text += f" (row{'s' if self.n_rows > 1 else ''} {shown}{f' and {more:,} more' if more > 0 else ''})"
        if self.fix:
            # A fix worded as an order of its own ("fix the cells ...") is not prefixed again.
            label = "" if self.fix.lower().startswith("fix ") else "fix: "
            text += f"; {label}{self.fix}"
        return text

    def details(self) -> list[str]:
        """One line per affected row with the value found there (for --verbose)."""
        return [f'row {row}: "{value}"' for row, value in zip(self.rows, self.values, strict=False)]


def problems_frame(problems) -> pd.DataFrame:
    """Problems as ``data_problems.csv`` rows: level, table, file, column, rows_affected,
    message, fix."""
    return pd.DataFrame(
        [
            {
                "level": p.level,
                "table": p.table,
                "file": p.file,
                "column": p.column,
                "rows_affected": p.n_rows,
                "message": p.message,
                "fix": p.fix,
            }
            for p in problems
        ],
        columns=["level", "table", "file", "column", "rows_affected", "message", "fix"],
    )


@dataclass
class ValidationReport:
    """Everything :func:`validate` found, by level."""

    problems: list[Problem] = field(default_factory=list)
    inputs: list[dict] = field(default_factory=list)
    # How many money cells name each currency ("€" -> 1,204), as the reports write it.
    currencies: dict[str, int] = field(default_factory=dict)
    # The export header of each accounts column kept unmapped ("technologies" -> "Technologies").
    headers: dict[str, str] = field(default_factory=dict)
    # A run's as-of date after the data ends ("the data ends 273 days before..."), for the
    # run dashboard; None when the date fits the data.
    as_of_warning: str | None = None
    # Rows of a table left out for want of an account id, by table: {"rows", and for
    # subscriptions "running" (no end date) and "arr" (theirs)}, so that the overview can say
    # what its ARR does not count.
    unlinked: dict[str, dict] = field(default_factory=dict)

    @property
    def errors(self) -> list[Problem]:
        return [p for p in self.problems if p.level == "error"]

    @property
    def warnings(self) -> list[Problem]:
        return [p for p in self.problems if p.level == "warning"]

    @property
    def infos(self) -> list[Problem]:
        return [p for p in self.problems if p.level == "info"]

    @property
    def ok(self) -> bool:
        return not self.errors

    def lines(self, level: str | None = None) -> list[str]:
        return [p.line() for p in self.problems if level is None or p.level == level]

    def to_frame(self) -> pd.DataFrame:
        return problems_frame(self.problems)

    def __repr__(self) -> str:
        return (
            f"<ValidationReport: {len(self.errors)} errors, {len(self.warnings)} warnings, "
            f"{len(self.infos)} notes>"
        )

    def _repr_html_(self) -> str:
        from icp_research.formatting import table_html

        if not self.problems:
            return "<p>No data problems found.</p>"
        return table_html(self.to_frame())


class _Collector:
    """Collects problems for one table."""

    def __init__(self, report: ValidationReport, table: str, file: str):
        self.report, self.table, self.file = report, table, file
        # canonical -> the source column read for it (mapped, or found by its name)
        self.sources: dict[str, str] = {}
        # An opportunity-history export's stage changes (history = true), for the funnel.
        self.stage_history: pd.DataFrame | None = None
        # A billing export's free trials (by trial end or status), left out of subscriptions:
        # the rows of the trials table (trial conversion), before any account lookup.
        self.trials: pd.DataFrame | None = None
        # Unmapped columns of a deals export that say won / lost (see _outcome_columns).
        self.outcome_columns: list[str] = []
        # Opportunities: rows made lost by lost_when (index of the export's rows), and an
        # unmapped archive flag such as Odoo's "Active" ((column, archived value, rows)).
        self.lost_flag: pd.Series | None = None
        self.archive_column: tuple | None = None
        # Cells of a column that were filled but could not be read (dates that are not dates),
        # by canonical column: reported once, never again as missing values.
        self.unreadable: dict[str, pd.Series] = {}
        # [project] exchange_rates is set: amounts in several currencies are converted (after
        # they are read), not warned about.
        self.converting = False
        self.currency_column: str | None = None

    def blank(self, frame: pd.DataFrame, column: str) -> pd.Series:
        """Rows where ``column`` is missing because the cell was empty, not unreadable."""
        missing = frame[column].isna()
        unreadable = self.unreadable.get(column)
        if unreadable is None:
            return missing
        return missing & ~unreadable.reindex(frame.index, fill_value=False).to_numpy(dtype=bool)

    def keep_trials(self, rows: pd.DataFrame, trial_end=None) -> None:
        """Keep a billing export's trial rows (their start, trial end and end) for the trials
        table."""
        part = rows.copy()
        part["trial_end"] = trial_end if trial_end is not None else part.get("trial_end", pd.NaT)
        if "end_date" not in part:
            part["end_date"] = pd.NaT
        self.trials = part if self.trials is None else pd.concat([self.trials, part])

    def add(self, level, message, fix="", column=None, rows=None, values=None):
        rows_list = [] if rows is None else [int(r) for r in list(rows)[:MAX_ROWS_KEPT]]
        n_rows = 0 if rows is None else len(rows)
        shown_values = []
        if values is not None and rows_list:
            shown_values = [_cell_text(v) for v in values.reindex(rows_list)]
        self.report.problems.append(
            Problem(
                level, self.table, self.file, message, fix, column, rows_list, n_rows, shown_values
            )
        )

    def error(self, message, fix="", column=None, rows=None, values=None):
        self.add("error", message, fix, column, rows, values)

    def warning(self, message, fix="", column=None, rows=None, values=None):
        self.add("warning", message, fix, column, rows, values)

    def info(self, message, fix="", column=None, rows=None, values=None):
        self.add("info", message, fix, column, rows, values)


def _cell_text(value, limit: int = 80) -> str:
    text = "" if value is None or value is pd.NA else str(value)
    text = text.replace("\n", " ").replace("\r", " ")
    return text if len(text) <= limit else text[: limit - 1] + "…"


class _Stop(Exception):
    """A problem that makes the rest of one table's checks meaningless."""


# ---------------------------------------------------------------------------------------------
# Reading files


def file_sha256(path: Path) -> str:
    digest = hashlib.sha256()
    with open(path, "rb") as handle:
        for block in iter(lambda: handle.read(1 << 20), b""):
            digest.update(block)
    return digest.hexdigest()


def _is_workbook_zip(path: Path) -> bool:
    try:
        with zipfile.ZipFile(path) as archive:
            names = set(archive.namelist())
    except (zipfile.BadZipFile, OSError):
        return False
    return "xl/workbook.xml" in names or "xl/workbook.bin" in names


_snake = snake_name


def _read_raw(tc: TableConfig, out: _Collector) -> pd.DataFrame:
    """Read an export as text (CSV, Excel) or native types (Parquet); index = source row number."""
    path = tc.path
    if path.is_symlink() and not path.exists():
        out.error(
            f"{path} is a link that leads nowhere (a loop of links, or its target is gone)",
            f"point [tables.{tc.name}] path at the export file itself",
        )
        raise _Stop
    if not path.exists():
        out.error(
            f"file not found ({path})",
            f'check path = "..." under [tables.{tc.name}] (paths are relative to the config file)',
        )
        raise _Stop
    if path.is_dir():
        out.error(
            f"{path} is a folder, not a file", f"point [tables.{tc.name}] path at the export file"
        )
        raise _Stop
    if not path.is_file():  # a pipe or a device: reading it could wait forever
        out.error(
            f"{path} is not a regular file (a pipe, socket or device)",
            f"export the table to a file and point [tables.{tc.name}] path at it",
        )
        raise _Stop
    size = path.stat().st_size
    if size == 0:
        out.error("the file is empty (0 bytes)", "export the table again")
        raise _Stop
    with open(path, "rb") as handle:
        head = handle.read(8192)

    if tc.format == "parquet":
        try:
            import pyarrow.parquet as pq

            # Date columns as datetime64 rather than one Python date object per cell.
            frame = pq.read_table(path).to_pandas(date_as_object=False)
        except Exception as exc:  # pyarrow raises several types for non-Parquet input
            out.error(
                f"cannot be read as Parquet ({_parquet_reason(exc)})",
                'export it again as Parquet, or set format = "csv" if it is a CSV file',
            )
            raise _Stop from None
        frame.index = np.arange(1, len(frame) + 1)
        return frame

    if tc.format == "excel":
        is_zip = zipfile.is_zipfile(path)
        if not is_zip and not head.startswith(b"\xd0\xcf\x11\xe0"):
            out.error(
                "is not an Excel workbook (it is not an .xlsx/.xls file inside)",
                'save it from Excel as .xlsx, or if it is CSV rename it to .csv or set format = "csv"',
            )
            raise _Stop
        if is_zip and not _is_workbook_zip(path):
            out.error(
                "is a zip archive but not an Excel workbook (no workbook inside)",
                "unzip it and point path at the export inside, or save the sheet from Excel as .xlsx",
            )
            raise _Stop
        try:
            frame = pd.read_excel(
                path,
                sheet_name=tc.sheet if tc.sheet is not None else 0,
                dtype=object,
                header=tc.header_row - 1,
            )
        except ValueError as exc:
            fix = f'set sheet = "<name>" under [tables.{tc.name}]'
            try:  # the workbook's sheets, so that the fix names one
                names = [str(n) for n in pd.ExcelFile(path).sheet_names]
            except Exception:
                names = []
            if names:
                shown = ", ".join(f'"{n}"' for n in names[:10])
                fix = (
                    f'set sheet = "{names[0]}" (or another of its sheets: {shown}) under '
                    f"[tables.{tc.name}]"
                )
            out.error(f"cannot read the sheet: {exc}", fix)
            raise _Stop from None
        except Exception as exc:
            out.error(
                f"cannot be read as Excel ({type(exc).__name__}: {str(exc).splitlines()[0][:120]})",
                "open it in Excel and save it again as .xlsx",
            )
            raise _Stop from None
        frame.columns = [str(c) for c in frame.columns]
        blank = [c for c in frame.columns if c.startswith("Unnamed: ")]
        if len(frame.columns) > 1 and len(blank) > len(frame.columns) / 2:
            guess = _header_row_guess(path, tc)
            out.error(
                f"row {tc.header_row} is not a header: {len(blank)} of {len(frame.columns)} "
                "column names are blank (a title or merged cells above the column names?)",
                f"set header_row = {guess} under [tables.{tc.name}]"
                if guess
                else f"set header_row = <the row of the column names> under [tables.{tc.name}]",
            )
            raise _Stop
        frame.index = np.arange(tc.header_row + 1, len(frame) + tc.header_row + 1)
        return frame

    # CSV
    if (
        b"\x00" in head
        and not head.startswith((b"\xff\xfe", b"\xfe\xff"))
        and not (tc.encoding or "").lower().replace("-", "").startswith("utf16")
    ):
        # Text saved as UTF-16 without a byte-order mark has a zero byte after every letter.
        utf16 = len(head) > 8 and head[1::2].count(0) > 0.8 * (len(head) // 2)
        out.error(
            "looks like a binary file, not CSV text"
            + (" (it may be UTF-16 text without a byte-order mark)" if utf16 else ""),
            'add encoding = "utf-16-le" under [tables.' + tc.name + "]"
            if utf16
            else 'export the table as CSV (or set format = "parquet" / "excel" if it is one)',
        )
        raise _Stop
    encoding = tc.encoding or "utf-8-sig"
    if head.startswith((b"\xff\xfe", b"\xfe\xff")) and not tc.encoding:
        encoding = "utf-16"
    try:
        with open(path, "rb") as handle:
            raw = handle.read()
        text = raw.decode(encoding)
    except UnicodeDecodeError as exc:
        before = raw[: exc.start]
        line = (before.count(b"\n") or before.count(b"\r")) + 1
        out.error(
            f"is not {encoding.replace('-sig', '')} text (undecodable byte at line {line:,})",
            _encoding_fix(raw, encoding, tc.name),
        )
        raise _Stop from None
    except LookupError:
        out.error(
            f"unknown encoding {encoding!r}",
            f'set encoding = "..." under [tables.{tc.name}] (e.g. "cp1252" or "latin-1")',
        )
        raise _Stop from None
    if "\x00" in text:
        # Past the first 8 KiB a zero byte would silently cut its cell ("Manu\0facturing").
        at = text.index("\x00")
        line = text.count("\n", 0, at) + 1
        out.error(
            f"contains a zero (NUL) byte at line {line:,}, as a corrupt or binary file does",
            "export the table again, or remove the zero bytes (e.g. tr -d '\\000')",
        )
        raise _Stop
    if tc.header_row > 1:  # title rows above the column names
        text = "".join(text.splitlines(keepends=True)[tc.header_row - 1 :])
    delimiter = tc.delimiter
    if delimiter is None:
        first_line = text.split("\n", 1)[0]
        counts = {d: first_line.count(d) for d in (",", ";", "\t", "|")}
        delimiter = max(counts, key=counts.get) if max(counts.values()) > 0 else ","
    try:
        frame = pd.read_csv(
            io.StringIO(text),
            sep=delimiter,
            dtype=str,
            keep_default_na=False,
            na_filter=False,
            skipinitialspace=False,
            # Blank lines are read (and dropped below) so that every row keeps its line number
            # in the file: skipped, they shifted the rows named in every message after them.
            skip_blank_lines=False,
            engine="c",
        )
    except pd.errors.EmptyDataError:
        out.error("has no header row (the file holds only blank lines)", "export the table again")
        raise _Stop from None
    except pd.errors.ParserError as exc:
        message = str(exc).strip().splitlines()[-1]
        out.error(
            f"is not a well-formed CSV ({message})",
            'check quoting and delimiters in that line, or set delimiter = ";" if the export uses semicolons',
        )
        raise _Stop from None
    try:
        first_line = re.split(r"\r\n|\r|\n", text, maxsplit=1)[0]
        header = [name.strip() for name in next(csv.reader([first_line], delimiter=delimiter))]
    except (csv.Error, StopIteration):
        header = []
    repeated = sorted({name for name in header if header.count(name) > 1})
    if repeated:
        out.warning(
            "the header repeats "
            + ", ".join(f'"{name}"' for name in repeated)
            + ": the second copy is read as "
            + ", ".join(f'"{name}.1"' for name in repeated),
            "rename the copies in the export, or map the one you need by that name",
        )
    frame.columns = [str(c).strip() for c in frame.columns]
    frame.index = np.arange(tc.header_row + 1, len(frame) + tc.header_row + 1)
    if len(frame.columns):
        # A blank line, or one of delimiters only, holds nothing: it is no row. (Only rows
        # whose first cell is blank are looked at whole: a million rows cost no more.)
        first = frame.iloc[:, 0]
        blank_first = ((first == "") | first.str.isspace()).to_numpy(dtype=bool)
        if blank_first.any():
            candidates = frame[blank_first]
            empty = candidates.apply(lambda c: c.str.strip() == "").all(axis=1)
            frame = frame.drop(index=candidates.index[empty.to_numpy(dtype=bool)])
    if mojibake_count(text):
        _check_decoding(frame, raw, encoding, tc, out)
    return frame


def _encoding_fix(raw: bytes, failed: str, table: str) -> str:
    """The fix for a file that does not decode: the encodings that decode it cleanly."""
    script = script_encoding(raw)
    if script is not None and not same_encoding(script[0], failed):
        # Shift-JIS bytes also decode as Mac-Roman, into nonsense: the script tells.
        return f'add encoding = "{script[0]}" under [tables.{table}]: it reads the file as {script[1]} text'
    ranked = [(e, n) for e, n in rank_encodings(raw) if not same_encoding(e, failed)]
    clean = [e for e, n in ranked if n == 0]
    if clean:
        also = f' ("{clean[1]}" does too)' if len(clean) > 1 else ""
        return (
            f'add encoding = "{clean[0]}" under [tables.{table}]: it reads the file with no sign '
            f"of a wrong decoding{also}"
        )
    if ranked:
        return (
            f'add the export\'s encoding under [tables.{table}], e.g. encoding = "{ranked[0][0]}", '
            "and check accented names after validating (no usual encoding reads it cleanly)"
        )
    return f'add the export\'s encoding under [tables.{table}], e.g. encoding = "cp1252"'


def _check_decoding(
    frame: pd.DataFrame, raw: bytes, encoding: str, tc: TableConfig, out: _Collector
) -> None:
    """Warn on cells that look wrongly decoded ("San JosŽ"), naming the encodings that fit."""
    ranked = [(e, n) for e, n in rank_encodings(raw) if not same_encoding(e, encoding)]
    clean = [e for e, n in ranked if n == 0]
    used = encoding.replace("-sig", "")
    if clean:
        fix = f'set encoding = "{clean[0]}" under [tables.{tc.name}]'
        if len(clean) > 1:
            fix += " (" + " or ".join(f'"{e}"' for e in clean[1:]) + " also read it cleanly)"
        fix += ", then validate again"
    else:
        fix = (
            "no usual encoding reads these cells cleanly: the text was probably garbled before "
            "the export; fix it in the source system or in those cells"
        )
    mapped = set(tc.columns.values())
    for column in frame.columns:
        series = frame[column]
        if column in tc.drop or (column not in mapped and personal_column(column)):
            continue  # dropped at load: its text reaches no analysis (nor this message)
        if not (pd.api.types.is_object_dtype(series) or pd.api.types.is_string_dtype(series)):
            continue
        text = series.astype("string")
        bad = text.str.contains(MOJIBAKE, regex=True, na=False)
        if not bad.any():
            continue
        example = str(text[bad].iloc[0])
        if len(example) > 40:
            example = mojibake_example(example) or example
        out.warning(
            f'{bad.sum():,} values look wrongly decoded (e.g. "{_cell_text(example, 40)}"): '
            f"the file may not be {used} text",
            fix,
            column=column,
            rows=_row_list(bad),
            values=series,
        )


# ---------------------------------------------------------------------------------------------
# Value parsing (vectorised; returns the values and the mask of values that did not parse)


# ---------------------------------------------------------------------------------------------
# Mapping and cleaning one table


def _header_row_guess(path: Path, tc: TableConfig) -> int | None:
    """The first of a sheet's top rows that is filled like a header row (from 1), if any."""
    try:
        top = pd.read_excel(
            path, sheet_name=tc.sheet if tc.sheet is not None else 0, header=None, nrows=20
        )
    except Exception:  # the error at hand is the header, not this guess
        return None
    filled = top.notna().sum(axis=1)
    if filled.empty or filled.max() < 2:
        return None
    rows = [i for i, n in enumerate(filled) if n >= 0.8 * filled.max()]
    return rows[0] + 1 if rows and rows[0] + 1 != tc.header_row else None


#: Canonical columns that billing systems name in several ways, read without a mapping when a
#: column's snake_case name is one of them: Recurly's trial_ends_at, Stripe's "Trial End (UTC)",
#: Chargebee's trial_end, a dbt model's trial_end_date.
_NAMED_LIKE = {
    "trial_end": re.compile(r"(?:.*_)?trial_?ends?(?:_(?:at|on|date|time|utc))*"),
}


def _near_miss(wanted: str, header: str) -> bool:
    """Whether ``header`` is what ``wanted`` meant: a misspelling of it, or the same words
    with some left out ("NPS Score" and "Score"), not another column sharing a word."""
    import difflib

    if difflib.SequenceMatcher(None, wanted.lower(), header.lower()).ratio() >= 0.8:
        return True
    a, b = (set(re.findall(r"[a-z0-9]+", text.lower())) for text in (wanted, header))
    return bool(a and b) and (a <= b or b <= a)


def _resolve_columns(
    raw: pd.DataFrame, tc: TableConfig, out: _Collector, optional: tuple[str, ...] = ()
) -> dict[str, str]:
    """canonical -> actual source column; reports missing/misnamed mapped columns. Required
    columns listed in ``optional`` may be absent."""
    table = TABLES[tc.name]
    available = list(raw.columns)
    by_norm = {}
    dropped = set(tc.drop)
    for col in available:
        if col not in dropped:  # a column the config drops is never read, by any name
            by_norm.setdefault(norm_name(col), col)
    resolved: dict[str, str] = {}
    for canonical, source in tc.columns.items():
        if source in raw.columns:
            resolved[canonical] = source
        elif norm_name(source) in by_norm:
            resolved[canonical] = by_norm[norm_name(source)]
        else:
            import difflib

            # A near miss ("Employes", "NPS Score" for "Score"), not any header that shares a
            # word ("Account Name" for "Account Source", as a preset's mapping met it).
            close = [
                c
                for c in difflib.get_close_matches(source, available, n=3, cutoff=0.5)
                if _near_miss(source, c)
            ][:1]
            hint = f'did you mean "{close[0]}"? ' if close else ""
            definition = table.column(canonical)
            if not close and (definition is None or not definition.required):
                hint = (
                    f"if the export has no such column, remove the line {canonical} = "
                    f'"{source}"; or '
                )
            noun = tc.source_noun
            out.error(
                f'mapped column "{source}" (for {canonical}) is not in the {noun}',
                f'{hint}set {canonical} = "..." under [tables.{tc.name}.columns]; the {noun} has: '
                + ", ".join(f'"{c}"' for c in available[:30])
                + (" ..." if len(available) > 30 else ""),
            )
    # Canonical columns present under their own name need no mapping (unless a constant or a
    # lookup gives them).
    used_sources = set(resolved.values())
    given = set(tc.constants) | ({"account_id"} if tc.account_id_from else set())
    optional = (*optional, *given)
    for column in table.columns:
        if column.name in resolved or column.name in given:
            continue
        if tc.name == "subscriptions" and (
            column.name in ("price", "interval", "interval_count")
            or (column.name in ("arr", "mrr") and {"price", "interval"} & set(tc.columns))
        ):
            continue  # ARR from a price per interval: below, only without arr / mrr
        candidate = by_norm.get(norm_name(column.name))
        if candidate is None and column.name in _NAMED_LIKE:
            candidate = next(
                (
                    c
                    for c in available
                    if c not in dropped
                    and c not in used_sources
                    and _NAMED_LIKE[column.name].fullmatch(_snake(c))
                ),
                None,
            )
        if candidate is not None and candidate not in used_sources:
            resolved[column.name] = candidate
            used_sources.add(candidate)
    if tc.name == "subscriptions" and not (
        {"arr", "mrr"} & set(resolved) or {norm_name("arr"), norm_name("mrr")} & set(by_norm)
    ):
        # A table (a dbt model, a query) whose columns are named price and interval: ARR from
        # them, as when mapped, unless an arr or mrr column is there too.
        named = {c: by_norm.get(norm_name(c)) for c in ("price", "interval", "interval_count")}
        if named["price"] and named["interval"]:
            for name, candidate in named.items():
                if name not in resolved and candidate and candidate not in used_sources:
                    resolved[name] = candidate
                    used_sources.add(candidate)
    if tc.name == "subscriptions" and not {"price", "interval"} & set(resolved):
        for name in ("arr", "mrr"):
            candidate = by_norm.get(name)
            if name not in resolved and candidate is not None and candidate not in used_sources:
                resolved[name] = candidate
    if tc.name == "usage" and "value" not in resolved and "value" not in given:
        # A product event log (one row per event, no value column): each row counts 1, as
        # when aggregated in SQL. The usage signal is then events per active day.
        optional = (*optional, "value")
        out.info(
            "no value column: each row is read as one event (an event log); the usage signals "
            "count events per active day",
            'if a column holds a measured amount (active users, storage), map it as value = "..." '
            f"under [tables.{tc.name}.columns]",
        )
    missing_required = [
        c for c in table.required if c not in resolved and c not in ("arr", *optional)
    ]
    for canonical in missing_required:
        if any(
            p.level == "error" and canonical in p.message
            for p in out.report.problems
            if p.table == tc.name
        ):
            continue
        history = (
            " (or, for an opportunity-history export with changed_at mapped, set history = "
            "true under [tables.opportunities]: a deal is created when its first row is)"
            if canonical == "created_at" and "changed_at" in tc.columns and not tc.history
            else ""
        )
        out.error(
            f"required column {canonical} is not mapped",
            f'add {canonical} = "<source column>" under [tables.{tc.name}.columns]{history}; the '
            f"{tc.source_noun} has: " + ", ".join(f'"{c}"' for c in available[:30]),
        )
    return resolved


# What a CRM or spreadsheet writes in the totals and footer rows it appends to an export: a
# cell is footer wording when it is a totals label as a whole ("Grand Totals (2,500 records)",
# "Total:", "Summe") or carries a report notice ("Confidential Information - Do Not
# Distribute", "Copyright (c) 2000-2026 salesforce.com, inc.", "Generated By: ...").
_RECORDS = r"(?:\(?\s*[\d.,' ]+\s*(?:records?|rows?|datensätze|enregistrements)\s*\)?)"
_TOTALS_WORDING = re.compile(
    r"\s*(?:(?:grand\s+|sub)?totals?|gesamtsumme|gesamt|summe|total\s+g[ée]n[ée]ral)\s*:?"
    rf"\s*{_RECORDS}?\s*|\s*{_RECORDS}\s*",
    re.IGNORECASE,
)
_NOTICE_WORDING = re.compile(
    r"confidential|copyright|all rights reserved|generated by|salesforce\.com"
    r"|^\s*(?:accrual|cash) basis\b",  # QuickBooks' report footer
    re.IGNORECASE,
)
#: A subtotal row inside a report export, after each group ("Total for Acme Inc.").
_SUBTOTAL_WORDING = re.compile(r"\s*(?:sub)?totals?\s+(?:for|of)\s+\S.*", re.IGNORECASE)
# A cell of a totals row that sums a column: digits and marks, perhaps a currency code.
_SUM_CELL = re.compile(r"\s*(?:[A-Z]{3}\s*)?[^A-Za-z]*\d[^A-Za-z]*(?:\s*[A-Z]{3})?\s*")
# How far from the end footer rows are looked for.
_FOOTER_ROWS = 30


def _footer_kind(row: pd.Series, keys: list[str]) -> str:
    """What a row at the end of an export is: "blank", "worded" (totals or notice wording, sums
    aside), "caption" (one text cell, as a report's or the company's name under the notices) or
    "data"."""
    filled = {}
    for column, value in row.items():
        if value is None or (not isinstance(value, str) and pd.isna(value)):
            continue
        if isinstance(value, str) and not value.strip():
            continue
        filled[column] = value
    if not filled:
        return "blank"
    worded = {
        c
        for c, v in filled.items()
        if isinstance(v, str) and (_TOTALS_WORDING.fullmatch(v) or _NOTICE_WORDING.search(v))
    }
    if worded and all(
        c in worded
        or isinstance(v, (int, float, np.number))
        and not isinstance(v, bool)
        or isinstance(v, str)
        and _SUM_CELL.fullmatch(v)
        for c, v in filled.items()
    ):
        return "worded" if all(k in worded or k not in filled for k in keys) else "data"
    only = next(iter(filled.values())) if len(filled) == 1 else None
    if isinstance(only, str) and not _SUM_CELL.fullmatch(only):
        return "caption"
    return "data"


def _drop_footer_rows(
    raw: pd.DataFrame, tc: TableConfig, resolved: dict[str, str], out: _Collector
) -> pd.DataFrame:
    """Rows after the last real row that total the export or carry its footer notices ("Grand
    Totals (2,500 records)", "Confidential Information - Do Not Distribute") are no accounts
    or deals: they are left out, with a note naming them. Only at the end of the table, and
    only rows of that wording (with sums beside it) whose key cell is blank or that wording;
    a row of one other text cell (a report's name, the company's) is left out only among
    such notices, after a blank line or a totals row."""
    keys = [resolved[k] for k in TABLES[tc.name].key if k in resolved]
    raw = _drop_subtotal_rows(raw, tc, out)
    if len(raw) < 2:
        return raw
    tail = raw.iloc[-min(len(raw) - 1, _FOOTER_ROWS) :]
    kinds = [_footer_kind(tail.iloc[i], keys) for i in range(len(tail))]
    block = len(kinds)  # the block of footer rows starts at tail position ``block``
    while block > 0 and kinds[block - 1] in ("blank", "worded", "caption"):
        block -= 1
    notices = any(
        kind == "worded"
        and any(isinstance(v, str) and _NOTICE_WORDING.search(v) for v in tail.iloc[i])
        for i, kind in enumerate(kinds[block:], start=block)
    )
    if not notices:  # captions are footer rows only among notices
        block = len(kinds)
        while block > 0 and kinds[block - 1] in ("blank", "worded"):
            block -= 1
    # A caption right after the last real row (no blank line between) may be a real row that
    # has only its key filled in: it stays.
    while block < len(kinds) and kinds[block] == "caption":
        position = len(raw) - len(tail) + block
        if raw.index[position] - raw.index[position - 1] > 1:  # a blank line before it
            break
        block += 1
    dropped = [i for i in range(block, len(kinds)) if kinds[i] != "blank"]
    if not dropped:
        return raw
    rows = [tail.index[i] for i in dropped]
    texts = [
        next(
            (
                _cell_text(v.strip())
                for v in tail.iloc[i]
                if isinstance(v, str) and v.strip() and not _SUM_CELL.fullmatch(v)
            ),
            "",
        )
        for i in dropped
    ]
    noun = {"accounts": "accounts", "opportunities": "deals"}.get(tc.name, "records")
    shown = ", ".join(f'"{t}"' for t in texts[:3]) + (
        f" and {len(texts) - 3:,} more" if len(texts) > 3 else ""
    )
    out.info(
        f"{len(rows):,} footer row{'s' if len(rows) > 1 else ''} dropped ({shown}): the "
        f"export's totals and notices, not {noun}",
        "nothing to do; remove them from the export to silence this",
        rows=rows,
    )
    return raw.iloc[: len(raw) - len(tail) + block]


#: Columns a sync tool (Fivetran, Airbyte, Stitch, dlt, PeerDB, Debezium) adds to every table it
#: writes: bookkeeping of the copy, never a trait of an account or a deal.
_SYNC_COLUMN = re.compile(r"^(?:_fivetran_|_airbyte_|_ab_|_sdc_|_dlt_|_peerdb_|__)", re.I)
#: Columns that mark a row deleted in the system it came from (Salesforce's IsDeleted, Fivetran's
#: _fivetran_deleted, Stitch's _sdc_deleted_at, Airbyte's _ab_cdc_deleted_at, Debezium's
#: __deleted, HubSpot's archived), by their snake names: a flag, or a date when deleted.
_DELETED_FLAGS = {
    "is_deleted",
    "isdeleted",
    "deleted",
    "fivetran_deleted",
    "is_archived",
    "archived",
}
_DELETED_DATES = {"deleted_at", "deleted_on", "sdc_deleted_at", "ab_cdc_deleted_at"}
#: Fivetran's history mode keeps every version of a row; the current one has _fivetran_active.
_CURRENT_FLAGS = {"fivetran_active"}
_TRUE_TEXT = {"true", "t", "1", "1.0", "yes", "y"}


def _is_true(values: pd.Series) -> np.ndarray:
    if pd.api.types.is_bool_dtype(values):
        return values.fillna(False).to_numpy(dtype=bool)
    return values.astype("string").str.strip().str.lower().isin(_TRUE_TEXT).to_numpy(dtype=bool)


def _drop_deleted_rows(
    raw: pd.DataFrame, tc: TableConfig, resolved: dict[str, str], out: _Collector
) -> pd.DataFrame:
    """Tables synced from a CRM or billing system keep rows the system deleted, marked by a
    column (``is_deleted``, ``_fivetran_deleted``, ``_sdc_deleted_at`` ...), and in Fivetran's
    history mode every earlier version of a row (``_fivetran_active`` false): those rows are
    not data and are left out, with a note (``keep_deleted = true`` keeps them). These columns
    and the sync tool's other bookkeeping (``_fivetran_synced``, ``_airbyte_extracted_at`` ...)
    are left out of the table: never attributes, never "columns not used"."""
    mapped = set(resolved.values())
    flags = [c for c in raw.columns if c not in mapped and _snake(c) in _DELETED_FLAGS]
    dates = [c for c in raw.columns if c not in mapped and _snake(c) in _DELETED_DATES]
    current = [c for c in raw.columns if c not in mapped and _snake(c) in _CURRENT_FLAGS]
    sync = [c for c in raw.columns if c not in mapped and _SYNC_COLUMN.match(str(c))]
    bookkeeping = list(dict.fromkeys([*flags, *dates, *current, *sync]))
    if not bookkeeping:
        return raw
    if not tc.keep_deleted:
        deleted = np.zeros(len(raw), dtype=bool)
        for column in flags:
            deleted |= _is_true(raw[column])
        for column in dates:
            text = raw[column].astype("string").str.strip()
            deleted |= (text.notna() & (text != "")).to_numpy(dtype=bool)
        earlier = np.zeros(len(raw), dtype=bool)
        for column in current:
            earlier |= ~_is_true(raw[column]) & raw[column].notna().to_numpy(dtype=bool)
        noun = {"accounts": "accounts", "opportunities": "deals"}.get(tc.name, "rows")
        if deleted.any():
            n = int(deleted.sum())
            named = ", ".join(f'"{c}"' for c in [*flags, *dates])
            out.info(
                f"{n:,} of {len(raw):,} rows {'is' if n == 1 else 'are'} marked deleted ({named}): "
                "they are records "
                f"the source system deleted, not {noun}, and are left out",
                f"nothing to do; keep_deleted = true under [tables.{tc.name}] keeps them",
                rows=raw.index[deleted],
            )
        if (earlier & ~deleted).any():
            n = int((earlier & ~deleted).sum())
            named = ", ".join(f'"{c}"' for c in current)
            out.info(
                f"{n:,} of {len(raw):,} rows {'is an earlier version' if n == 1 else 'are earlier versions'} of a row ({named} is false, "
                "a sync tool's history mode): only the current version of each is kept",
                f"nothing to do; keep_deleted = true under [tables.{tc.name}] keeps them",
                rows=raw.index[earlier & ~deleted],
            )
        raw = raw[~(deleted | earlier)]
    out.info(
        "sync and deletion bookkeeping columns left out (not traits of the records): "
        + ", ".join(f'"{c}"' for c in bookkeeping[:8])
        + (" ..." if len(bookkeeping) > 8 else ""),
        "nothing to do",
    )
    return raw.drop(columns=bookkeeping)


def _drop_subtotal_rows(raw: pd.DataFrame, tc: TableConfig, out: _Collector) -> pd.DataFrame:
    """A report export grouped by customer (QuickBooks' Sales by Customer Detail) closes each
    group with a subtotal row ("Total for Acme Inc.", then sums): not a record, anywhere in the
    table. Only rows whose one text cell is that wording and whose other cells are blank or
    sums are left out, with a note."""
    # Report exports are text (CSV, Excel), and the wording opens the row: one column to scan.
    if tc.format == "parquet" or tc.from_database or len(raw) == 0 or raw.shape[1] == 0:
        return raw
    first_column = raw.iloc[:, 0]
    if not (first_column.dtype == object or pd.api.types.is_string_dtype(first_column)):
        return raw
    worded = first_column.astype("string").str.fullmatch(_SUBTOTAL_WORDING).fillna(False)
    if not worded.any():
        return raw
    candidates = raw[worded.to_numpy(dtype=bool)]
    subtotal = np.array([_subtotal_row(row) for _, row in candidates.iterrows()], dtype=bool)
    rows = candidates.index[subtotal]
    if not len(rows):
        return raw
    first = str(raw.loc[rows[0]].iloc[0])
    out.info(
        f"{len(rows):,} subtotal {'row' if len(rows) == 1 else 'rows'} left out (e.g. "
        f'"{_cell_text(first.strip())}"): a report\'s totals per group, not records',
        "nothing to do",
        rows=rows,
    )
    return raw.drop(index=rows)


def _subtotal_row(row: pd.Series) -> bool:
    """One subtotal-worded text cell; every other cell blank or a sum."""
    worded = 0
    for value in row.to_numpy():
        if value is None or (not isinstance(value, str) and pd.isna(value)):
            continue
        if isinstance(value, str):
            if not value.strip() or _SUM_CELL.fullmatch(value):
                continue
            if _SUBTOTAL_WORDING.fullmatch(value):
                worded += 1
                continue
            return False
        elif isinstance(value, bool) or not isinstance(value, (int, float, np.number)):
            return False
    return worded == 1


def _parquet_reason(exc: Exception) -> str:
    """The first line of a pyarrow error, without the file path it repeats."""
    message = str(exc).splitlines()[0] if str(exc) else ""
    if "magic bytes not found" in message:
        return "it has no Parquet signature: it is not a Parquet file"
    message = re.sub(r"'[^']*'", "the file", message)
    return f"{type(exc).__name__}: {message[:120]}"


def _row_list(mask: pd.Series) -> list:
    # A mask built from nullable columns holds <NA> where a value was missing: not a match.
    return list(mask.index[mask.fillna(False).to_numpy(dtype=bool)])


def _clean_table(
    raw: pd.DataFrame, tc: TableConfig, config: Config, out: _Collector
) -> pd.DataFrame:
    table = TABLES[tc.name]
    if raw.shape[1] == 0:
        out.error("has no columns", "export the table again with a header row")
        raise _Stop
    if len(raw) == 0:
        out.error(
            "has a header but no data rows",
            f"export the data again, or remove [tables.{tc.name}] if you have none",
        )
        raise _Stop
    by_name: dict[str, list[str]] = {}
    dropped = set(tc.drop)
    for column in raw.columns:
        if str(column) not in dropped:  # a column the config drops never clashes
            by_name.setdefault(_snake(column), []).append(str(column))
    clashes = [names for names in by_name.values() if len(names) > 1]
    if clashes:
        names = clashes[0]
        what = (
            f'the header has "{names[0]}" {len(names)} times once spaces are trimmed'
            if len(set(names)) == 1
            else "header names "
            + " and ".join(f'"{n}"' for n in names[:3])
            + " become the same column once spaces, case and punctuation are set aside"
        )
        out.error(
            what,
            "rename one of them in the export (or drop it with drop = [...] under "
            f"[tables.{tc.name}])",
        )
        raise _Stop
    if len(set(raw.columns)) != len(raw.columns):
        dupes = sorted({c for c in raw.columns if list(raw.columns).count(c) > 1})
        out.warning(
            f"duplicate header names {dupes}; pandas renamed the copies",
            "rename them in the export",
        )

    raw = _coalesce_columns(raw, tc, out)
    # A history export's deals are created when their first row is: created_at may be left out.
    first_row_creates = tc.history and "changed_at" in tc.columns
    optional = ("created_at",) if first_row_creates else ()
    # A sheet kept by hand has no deal ids: each row is a deal, named by its row (not for
    # order lines or stage changes, whose rows are parts of deals).
    numbered = (
        tc.name == "opportunities"
        and not tc.line_items
        and not tc.history
        and "opportunity_id" not in tc.columns
        and "opportunity_id" not in tc.constants
    )
    if numbered:
        optional = (*optional, "opportunity_id")
    resolved = _resolve_columns(raw, tc, out, optional=optional)
    out.sources = resolved
    if any(p.level == "error" for p in out.report.problems if p.table == tc.name):
        raise _Stop
    raw = _drop_footer_rows(raw, tc, resolved, out)
    raw = _drop_deleted_rows(raw, tc, resolved, out)
    if raw.empty:
        out.error(
            "has no rows left once the rows marked deleted are left out",
            f"check the export, or set keep_deleted = true under [tables.{tc.name}]",
        )
        raise _Stop
    out.converting = bool(config.exchange_rates)
    row_currencies = _note_currency_column(raw, tc, resolved, out)
    lost_sources = _lost_flags(raw, tc, out) if tc.lost_when else []

    extra_missing = set(tc.missing_values)
    frame = pd.DataFrame(index=raw.index)
    if numbered and "opportunity_id" not in resolved:
        frame["opportunity_id"] = pd.array("row " + raw.index.astype(str), dtype="string")
        out.info(
            "no opportunity_id mapped: each row is one deal, named by its row in the file "
            f'("row {raw.index[0]}", "row {raw.index[-1]}")',
            'if the export has a deal id, map opportunity_id = "<column>" under '
            "[tables.opportunities.columns] (row names change when the rows are sorted)",
        )
    numeric_attrs = set(config.numeric or [])
    categorical_attrs = set(config.categorical or [])

    # A constant (``stage = { value = "won" }``) is read as a column holding it on every row.
    constants = {c: f"{c} (constant)" for c in tc.constants}
    if tc.name == "usage" and "value" not in resolved and "value" not in constants:
        frame["value"] = np.ones(len(raw))  # an event log: each event counts 1
    recoded_first: set[str] = set()
    for canonical, source in [*resolved.items(), *constants.items()]:
        column_def = table.column(canonical)
        kind = column_def.kind if column_def else None
        if canonical in ("arr", "mrr"):
            kind = "money"
        if canonical in tc.lookup_keys:
            kind = "id"
        if kind is None:  # a mapped account attribute
            kind = (
                "number"
                if canonical in numeric_attrs
                else ("category" if canonical in categorical_attrs else "auto")
            )
        cells = (
            pd.Series(tc.constants[canonical], index=raw.index, dtype=object)
            if canonical in constants
            else raw[source]
        )
        if canonical in tc.values and kind in _RECODED_BEFORE:
            # A number or date column is recoded as the export writes it ("~50" = "50"):
            # once read, its cells are no longer text to recode.
            cells = _recode_text(cells, tc.values[canonical])
            recoded_first.add(canonical)
        frame[canonical] = _convert(cells, canonical, source, kind, tc, out, extra_missing)
        if kind == "money" and config.exchange_rates:
            _to_project_currency(frame, canonical, cells, source, row_currencies, config, out)

    # Unmapped columns: account attributes are kept; personal data is dropped everywhere.
    mapped_sources = set(resolved.values())
    mapped_sources |= {part for parts in tc.coalesce.values() for part in parts}
    mapped_sources |= set(lost_sources)
    if out.currency_column is not None:
        mapped_sources.add(out.currency_column)
    unmapped = [c for c in raw.columns if c not in mapped_sources and c not in tc.drop]
    personal = [c for c in unmapped if personal_column(c)]
    if personal:
        out.info(
            "personal-data columns dropped (not needed by any analysis): "
            + ", ".join(f'"{c}"' for c in personal),
            "nothing to do; map a column explicitly only if an analysis needs it",
        )
    # Free text that carries people's email addresses ("Notes": "spoke to jane@acme.com"):
    # dropped too, not kept in the run's data snapshot.
    carries = [c for c in unmapped if c not in personal and _holds_emails(raw[c])]
    if carries:
        out.info(
            "columns holding people's email addresses dropped (not needed by any analysis): "
            + ", ".join(f'"{c}"' for c in carries),
            "nothing to do; map a column explicitly only if an analysis needs it",
        )
        personal += carries
    unmapped = [c for c in unmapped if c not in personal]
    if tc.name == "subscriptions":
        read = _note_interval_count(unmapped, frame, raw, tc, out)
        unmapped = [c for c in unmapped if c != read]
    if tc.name == "opportunities":
        # Also a dropped one: "list them in drop" silences "not mapped", not this.
        _note_pipelines(unmapped + [c for c in tc.drop if c in raw.columns], raw, tc, out)
        out.outcome_columns = _outcome_columns(
            raw, unmapped + [c for c in tc.drop if c in raw.columns]
        )
        if not tc.lost_when:
            out.archive_column = _archive_column(raw, unmapped + list(tc.drop))
    if table.open_attributes and tc.keep_unmapped:
        # Gathered, then joined at once: inserting thousands of columns one by one is slow and
        # floods the terminal with pandas' fragmentation warnings.
        attributes: dict[str, pd.Series] = {}
        for source in unmapped:
            name = _snake(source)
            while name in frame.columns or name in attributes:
                name += "_2"
            kind = (
                "number"
                if name in numeric_attrs
                else ("category" if name in categorical_attrs else "auto")
            )
            attributes[name] = _convert(raw[source], name, source, kind, tc, out, extra_missing)
            if tc.name == "accounts":
                out.report.headers[name] = source
        if attributes:
            frame = pd.concat([frame, pd.DataFrame(attributes, index=raw.index)], axis=1)
    elif unmapped:
        # The same file mapped as two tables (a deals report that is the accounts too): what
        # the other one reads is used, not "not mapped".
        others = _read_by_other_tables(tc, config, unmapped)
        unused = [c for c in unmapped if c not in others]
        if unused:
            out.warning(
                "columns not used (not mapped): "
                + ", ".join(f'"{c}"' for c in unused[:15])
                + (" ..." if len(unused) > 15 else ""),
                f"list them in drop = [...] under [tables.{tc.name}] to silence this",
            )

    # Recode values ([tables.x.values.column]).
    for canonical, recode in tc.values.items():
        if canonical not in frame.columns:
            out.error(
                f"[tables.{tc.name}.values.{canonical}] recodes a column that is not mapped",
                f"map {canonical} under [tables.{tc.name}.columns] or remove the values table",
            )
            continue
        if canonical == "stage" or canonical in recoded_first:
            continue  # stages are recoded with their own checks below
        series = frame[canonical]
        if pd.api.types.is_string_dtype(series) or pd.api.types.is_object_dtype(series):
            frame[canonical] = series.replace(recode).astype("string")
            # "drop" leaves a row out wherever it is written, as it does for stages: a churn
            # event recoded "new_biz" = "drop" is no churn event named "drop".
            drops = {k: v for k, v in recode.items() if str(v).strip().lower() == "drop"}
            if drops and canonical not in _OWN_DROP:
                dropped = frame[canonical].isin(list(drops.values())).fillna(False)
                if dropped.any():
                    values = sorted(str(k) for k in drops)
                    out.info(
                        f'{_rows_have(int(dropped.sum()))} a {canonical} recoded to "drop" ('
                        + ", ".join(f'"{v}"' for v in values[:5])
                        + f"): left out of the {tc.name}",
                        column=tc.columns.get(canonical, canonical),
                    )
                    frame = frame[~dropped.to_numpy(dtype=bool)]
        else:
            out.warning(
                f"[tables.{tc.name}.values.{canonical}] ignored: {canonical} is not a text column",
                "remove it",
            )
    if "country" in frame.columns:
        frame["country"] = _one_name_per_country(frame["country"], tc, out)
    if tc.name == "accounts":
        frame = _one_spelling_per_value(frame, list(frame.columns), tc, out)
    elif tc.name == "opportunities":
        frame = _one_spelling_per_value(frame, ["loss_reason", "source"], tc, out)
    return frame


#: Columns whose "drop" recode has a meaning of its own (a void subscription, a one-off
#: charge), read where the column is.
_OWN_DROP = ("status", "interval")

#: Column kinds whose value recodes apply to the export's text, before it is read.
_RECODED_BEFORE = ("number", "money", "date")


def _read_by_other_tables(tc: TableConfig, config: Config, unmapped=()) -> set[str]:
    """The columns other tables read from the same file and sheet as ``tc``: those they map,
    and, of ``unmapped``, those a table that keeps its unmapped columns as attributes keeps
    (the accounts of a customer list that is the subscriptions too keep its CSM and NPS)."""
    columns: set[str] = set()
    if tc.path is None:
        return columns
    for other in config.tables.values():
        if other is tc or other.path is None or other.sheet != tc.sheet:
            continue
        try:
            same = Path(other.path).resolve() == Path(tc.path).resolve()
        except OSError:
            same = False
        if same:
            columns |= {c for c in other.columns.values() if isinstance(c, str)}
            columns |= {part for parts in other.coalesce.values() for part in parts}
            if TABLES[other.name].open_attributes and other.keep_unmapped and not other.rollup:
                # (A rolled-up table leaves out the columns that differ within an account.)
                columns |= set(unmapped) - set(other.drop)
    return columns


def _recode_text(cells: pd.Series, recode: dict) -> pd.Series:
    """``cells`` with the recode applied to their text as exported (surrounding spaces
    ignored); the other cells unchanged."""
    text = cells.astype(object)
    stripped = text.map(lambda v: v.strip() if isinstance(v, str) else v)
    hit = stripped.isin(list(recode))
    if not hit.any():
        return cells
    return text.where(~hit, stripped[hit].map(recode))


def _one_spelling_per_value(frame: pd.DataFrame, columns: list, tc, out) -> pd.DataFrame:
    """Labels that differ only in case, spaces or punctuation ("Healthcare", "healthcare",
    "Health care", "Health-care") are one value, written as its commonest spelling, with a
    note: typed by hand they would be separate levels, each too small to test, and a real
    finding split between them. Never in keys or identifiers, nor for labels with digits
    (ids such as Salesforce's differ only in case)."""
    for column in columns:
        if (
            column not in frame.columns
            or column in NON_ATTRIBUTES
            or column == "country"
            or _KEY_NAME.search(str(column))
            or _IDENTIFIER_NAME.search(str(column))
        ):
            continue
        series = frame[column]
        if not (pd.api.types.is_string_dtype(series) or pd.api.types.is_object_dtype(series)):
            continue
        counts = series.value_counts(dropna=True)  # one pass, no copy of the rows as text
        if len(counts) < 2 or len(counts) > SPELLING_MAX_LEVELS:
            continue
        if not all(isinstance(v, str) for v in counts.index):
            continue  # numbers or dates typed into a label column: not spellings
        keys = pd.Series(counts.index, index=counts.index).map(
            lambda v: re.sub(r"[\W_]+", "", v.casefold())
        )
        merged: dict[str, str] = {}
        for key, members in keys.groupby(keys.to_numpy(), sort=False):
            if len(members) < 2 or not key or any(ch.isdigit() for ch in key):
                continue
            spellings = sorted(members.index, key=lambda v: (-counts[v], v))
            merged.update({v: spellings[0] for v in spellings[1:]})
        if not merged:
            continue
        frame[column] = series.replace(merged)
        shown = "; ".join(
            f'"{v}" -> "{to}"' for v, to in sorted(merged.items(), key=lambda kv: kv[1])[:6]
        )
        more = f" and {len(merged) - 6:,} more" if len(merged) > 6 else ""
        out.info(
            f"{column}: spellings of one value merged ({shown}{more}): they differ only in "
            "case, spaces or punctuation",
            f"nothing to do; recode under [tables.{tc.name}.values.{column}] to keep them apart",
            column=out.sources.get(column, out.report.headers.get(column, column)),
        )
    return frame


#: A label column with more distinct values than this is not merged by spelling (free text).
SPELLING_MAX_LEVELS = 500


#: Header words of a column that names each row's currency ("Deal - Currency",
#: "subscriptions.currency_code", "Währung", "Devise", "Moneda").
_CURRENCY_HEADER = re.compile(
    r"(?i)currency|währung|wahrung|devise|moneda|moeda|valuta|valută|валюта|waluta|měna"
    r"|döviz|para birimi|通貨|货币"
)


def _coalesce_columns(raw: pd.DataFrame, tc, out) -> pd.DataFrame:
    """A column made of several source columns, the first filled one per row
    (``closed_at = ["Won time", "Lost time"]``), under the name ``columns`` gives it."""
    if not tc.coalesce:
        return raw
    by_norm = {}
    for column in raw.columns:
        by_norm.setdefault(norm_name(column), column)
    raw = raw.copy(deep=False)
    for canonical, parts in tc.coalesce.items():
        found = [p if p in raw.columns else by_norm.get(norm_name(p)) for p in parts]
        missing = [p for p, f in zip(parts, found, strict=True) if f is None]
        if missing:
            out.error(
                f'mapped column "{missing[0]}" (for {canonical}) is not in the {tc.source_noun}',
                f"fix {canonical} = [...] under [tables.{tc.name}.columns]; the "
                f"{tc.source_noun} has: " + ", ".join(f'"{c}"' for c in list(raw.columns)[:30]),
            )
            raise _Stop
        combined = raw[found[0]]
        for column in found[1:]:
            blank = combined.isna() | combined.astype("string").str.strip().eq("").fillna(True)
            combined = combined.where(~blank, raw[column])
        raw[tc.columns[canonical]] = combined
    return raw


#: How the reports write money summed over several currencies (the generic currency sign), and
#: the share of money cells a second currency needs for it.
MIXED_CURRENCY = "¤"
MIXED_SHARE = 0.01

#: The fix of an amount column in several currencies.
_CONVERTED_FIX = (
    "map the amount converted to one currency (Salesforce: the converted amount column; "
    "HubSpot: the amount in company currency; Pipedrive: the value in the default currency), "
    'or convert them at fixed rates: [project] currency = "GBP" and exchange_rates = '
    "{EUR = 0.85, USD = 0.79} (what one of each is worth in it)"
)


def _count_currencies(counts: dict, out) -> None:
    """Add money cells per currency symbol to the report (the reports write the commonest)."""
    for mark, n in counts.items():
        out.report.currencies[mark] = out.report.currencies.get(mark, 0) + int(n)


#: Header words of an amount column already in one currency, whatever currency each row was
#: sold in: Salesforce's "Amount (converted)", HubSpot's "Amount in company currency",
#: Pipedrive's "Deal - Value in default currency".
_CONVERTED_HEADER = re.compile(
    r"(?i)convert|umgerechnet|converti|(?:company|default|home|base|corporate|reporting)"
    r"[\s_-]*currency"
)


#: A money column's header saying its amounts are in cents (Maxio's "MRR (in cents)",
#: Stripe's "amount_cents"): read so unless the table sets ``cents`` either way.
_CENTS_HEADER = re.compile(r"(?i)(?<![a-z])cents(?![a-z])")


def _in_one_currency(source) -> bool:
    """Whether an amount column's header says it is in one currency: converted ("Amount
    (converted)") or named ("MRR (£)", "price_gbp"), so a column beside it naming each row's
    currency describes the amounts as sold, not this one."""
    return bool(_CONVERTED_HEADER.search(str(source)) or CURRENCY_MARK.search(str(source)))


def _note_currency_column(raw: pd.DataFrame, tc, resolved: dict, out) -> pd.Series | None:
    """A column naming each row's currency beside the money columns: its most common value is
    how the reports write money, and more than one value is a warning (unless
    ``[project] exchange_rates`` converts them). Returns each row's currency by
    :func:`~icp_research.data.config.currency_key` (None without such a column).

    When every mapped amount column says it is in one currency (converted, or named in its
    header), a currency column describes the amounts as sold and is passed over, unless its
    header says converted too ("Amount (converted) Currency")."""
    from icp_research.data.config import currency_key

    money = [c.name for c in TABLES[tc.name].columns if c.kind == "money"] + ["arr", "mrr"]
    sources = [resolved[m] for m in money if m in resolved]
    if not sources:
        return None
    as_sold = not all(_in_one_currency(source) for source in sources)
    mapped = set(resolved.values())
    found = None
    for column in raw.columns:
        if column in mapped or not _CURRENCY_HEADER.search(str(column)):
            continue
        if not as_sold and not _CONVERTED_HEADER.search(str(column)):
            continue  # the currency each deal was sold in, not the mapped amounts'
        codes = raw[column].astype("string").str.strip().str.upper()
        counts = codes[codes.notna() & (codes != "")].value_counts()
        if counts.empty or counts.index.str.len().max() > 4:
            continue  # not currency codes
        # Each code as a cell naming it reads ("RUB", "руб." and "₽" are one currency).
        marks = currency_marks(pd.Series(counts.index, dtype="string"))
        by_mark: dict = {}
        for code, mark, n in zip(counts.index, marks, counts.to_numpy(), strict=True):
            key = mark if isinstance(mark, str) else CURRENCY_SYMBOLS.get(code.lower(), f"{code} ")
            by_mark[key] = by_mark.get(key, 0) + int(n)
        _count_currencies(by_mark, out)
        if found is None:
            out.currency_column = str(column)  # read (the currency the reports write)
            found = per_distinct(
                codes.where(codes != ""),
                lambda t: t.map(currency_key, na_action="ignore").astype("string"),
            )
        if len(counts) > 1 and not out.converting:
            shown = ", ".join(f"{code} {n:,}" for code, n in counts.items())
            minority = codes.notna() & (codes != counts.index[0]) & (codes != "")
            out.warning(
                f'amounts are in {len(counts)} currencies by the column "{column}" ({shown} '
                "rows) and are added up as they are, as if they were one currency",
                _CONVERTED_FIX,
                column=str(column),
                rows=_row_list(minority),
                values=raw[column],
            )
    return found


def _to_project_currency(
    frame: pd.DataFrame, canonical: str, cells: pd.Series, source, row_currencies, config, out
) -> None:
    """``[project] exchange_rates``: each amount times the rate of its currency, which is the
    one its cell names ("€1.200"), else its header's ("MRR (EUR)"), else the row's in a column
    naming each row's currency (unless the header says the amounts are converted), else the
    project's. An amount in a currency without a rate is an error."""
    from icp_research.data.config import currency_code, currency_key

    values = frame[canonical]
    present = values.notna().to_numpy(dtype=bool)
    if not present.any():
        return
    own = currency_key(config.currency)
    key = pd.Series(pd.NA, index=cells.index, dtype="string")
    texts = (
        np.ones(len(cells), dtype=bool)
        if only_text(cells)
        else cells.map(lambda v: isinstance(v, str)).to_numpy(dtype=bool)
    )
    if texts.any():
        key[texts] = currency_marks(cells[texts]).str.strip().to_numpy()
    header = CURRENCY_MARK.search(str(source))
    if header is not None:
        key = key.fillna(currency_key(header.group(1) or header.group(2)))
    elif row_currencies is not None and not _in_one_currency(source):
        key = key.fillna(row_currencies)
    key = key.fillna(own)
    rate = key.map(config.exchange_rates).astype("float64")
    unknown = present & rate.isna().to_numpy(dtype=bool)
    if unknown.any():
        counts = key[unknown].value_counts()
        shown = ", ".join(f"{currency_code(code)} {n:,}" for code, n in counts.items())
        first = currency_code(counts.index[0])
        out.error(
            f"{int(unknown.sum()):,} amounts are in a currency [project] exchange_rates gives no "
            f"rate for ({shown})",
            f"add {first} = <what one {first} is worth in {currency_code(own)}> to "
            "exchange_rates under [project]",
            column=str(source),
            rows=_row_list(pd.Series(unknown, index=cells.index)),
            values=cells,
        )
        return
    frame[canonical] = values * rate.to_numpy()
    converted = present & (key != own).to_numpy(dtype=bool)
    if converted.any():
        counts = key[converted].value_counts()
        shown = ", ".join(
            f"{currency_code(code)} {n:,} (x {config.exchange_rates[code]:g})"
            for code, n in counts.items()
        )
        out.info(
            f"{int(converted.sum()):,} amounts converted to {currency_code(own)} at [project] "
            "exchange_rates: "
            f"{shown}",
            "nothing to do; change the rates under [project] exchange_rates if they are not "
            "the ones to use",
            column=str(source),
        )


def _note_currencies(series: pd.Series, label: str, tc, out) -> None:
    """Count the currencies a money column's cells name (for the reports' symbol), and warn when
    one column mixes them: its amounts would be added up as if they were one currency."""
    marks = currency_marks(series)
    counts = marks.value_counts()
    _count_currencies(counts.to_dict(), out)
    if len(counts) > 1 and not out.converting:
        shown = ", ".join(f"{mark.strip()} {n:,}" for mark, n in counts.items())
        minority = marks.notna() & (marks != counts.index[0])
        out.warning(
            f"amounts are in {len(counts)} currencies ({shown} rows) and are added up as they "
            "are, as if they were one currency",
            _CONVERTED_FIX,
            column=label,
            rows=_row_list(minority),
            values=series,
        )


#: Billing intervals and how many of them make a year ("month" -> 12), in the spellings of
#: billing exports (Stripe's month / year, "Monthly", "Annual", "Quarterly", German and French).
INTERVALS_PER_YEAR = {
    "day": 365.0,
    "daily": 365.0,
    "week": 52.0,
    "weekly": 52.0,
    "month": 12.0,
    "monthly": 12.0,
    "monat": 12.0,
    "monatlich": 12.0,
    "mois": 12.0,
    "mensuel": 12.0,
    "quarter": 4.0,
    "quarterly": 4.0,
    "quartal": 4.0,
    "quartalsweise": 4.0,
    "trimestre": 4.0,
    "trimestriel": 4.0,
    "half-year": 2.0,
    "semiannual": 2.0,
    "semi-annual": 2.0,
    "year": 1.0,
    "yearly": 1.0,
    "annual": 1.0,
    "annually": 1.0,
    "jahr": 1.0,
    "jährlich": 1.0,
    "an": 1.0,
    "annuel": 1.0,
}


#: Billing periods, in months, that an invoice's period from / to is read as.
_PERIOD_MONTHS = {1: "month", 3: "quarter", 6: "half-year", 12: "year"}


def _period_interval(frame: pd.DataFrame, tc, out: _Collector) -> pd.Series:
    """Each invoice's billing interval from the period it bills (``start_date`` to
    ``end_date``, the end inclusive or the next period's first day): "week", "month",
    "quarter", "half-year" or "year"; a period of another length is an error naming its rows."""
    days = (frame["end_date"] - frame["start_date"]).dt.days.astype(float) + 1
    months = days / (365.25 / 12)
    snapped = months.round()
    words = pd.Series(pd.NA, index=frame.index, dtype="string")
    weekly = days.between(6, 8)
    words[weekly] = "week"
    for count, word in _PERIOD_MONTHS.items():
        fits = (snapped == count) & ((months - count).abs() <= 0.1 * count + 0.05) & ~weekly
        words[fits] = word
    odd = words.isna() & days.notna()
    if odd.any():
        example = frame.loc[odd].iloc[0]
        out.error(
            f"{int(odd.sum()):,} {'invoice bills' if odd.sum() == 1 else 'invoices bill'} a "
            f"period that is not a week, month, quarter, half-year or year (e.g. {example['start_date']:%Y-%m-%d} to "
            f"{example['end_date']:%Y-%m-%d})",
            'map the interval each invoice bills as interval = "<column>", or fix those rows',
            column=tc.columns.get("end_date", "end_date"),
            rows=_row_list(odd),
        )
        raise _Stop
    out.info(
        "invoices = true: each invoice's interval is the period it bills ("
        + ", ".join(f"{n:,} {w}" for w, n in words.value_counts().items())
        + ")",
        "nothing to do",
        column=tc.columns.get("end_date", "end_date"),
    )
    return words


def _price_to_arr(frame: pd.DataFrame, tc, out: _Collector) -> pd.DataFrame:
    """``arr`` from ``price`` per ``interval`` (a billing export's plan amount and interval:
    price 49 per month is ARR 588); the two columns go once they are used."""
    has_price, has_interval = "price" in frame.columns, "interval" in frame.columns
    period = tc.invoices and has_price and not has_interval
    if period and {"start_date", "end_date"} <= set(frame.columns):
        # Invoices that state the period they bill ("Leistungszeitraum von / bis", Stripe's
        # Period Start / End) instead of an interval: the interval is the period's length.
        frame = frame.assign(interval=_period_interval(frame, tc, out))
        has_interval = True
    if tc.invoices and not (has_price and has_interval):
        out.error(
            "invoices = true, but price and interval are not both mapped: each invoice's "
            "amount and the interval it bills are what its subscription is read from",
            f'add price = "<amount column>" and interval = "<interval column>" under '
            f"[tables.{tc.name}.columns] (recode a product column to month / year ..., "
            'and one-off charges to "drop"), or map the period each invoice bills as '
            'start_date = "<period from>" and end_date = "<period to>"',
        )
        raise _Stop
    if not (has_price or has_interval):
        if "interval_count" in frame.columns:
            out.error(
                "interval_count is mapped without price and interval: it divides a price per "
                "interval",
                f"map price and interval too under [tables.{tc.name}.columns], or remove "
                "interval_count",
            )
            raise _Stop
        return frame
    where = f"[tables.{tc.name}.columns]"
    if not (has_price and has_interval):
        given, wanted = ("price", "interval") if has_price else ("interval", "price")
        out.error(
            f"{given} is mapped without {wanted}: a price is per billing interval",
            f'add {wanted} = "<source column>" under {where}, or map arr / mrr instead',
        )
        raise _Stop
    if "arr" in frame.columns or "mrr" in frame.columns:
        out.error(
            "both arr / mrr and price with interval are mapped: ARR would come from two columns",
            f"keep one of them under {where}",
        )
        raise _Stop
    interval = frame["interval"].astype("string").str.strip().str.lower()
    one_off = (interval == "drop").fillna(False).astype(bool)
    if one_off.any():
        n = int(one_off.sum())
        out.info(
            f'{n:,} {"row" if n == 1 else "rows"} whose interval is recoded to "drop" (one-off '
            "charges, not recurring revenue) left out",
            "nothing to do",
            column=tc.columns.get("interval", "interval"),
            rows=_row_list(one_off),
        )
        frame, interval = frame[~one_off], interval[~one_off]
    per_year = _intervals_per_year(
        frame, interval, tc, out, "rows have a billing interval", "day, week, month, quarter, year"
    )
    price = frame["price"].astype(float)
    if "interval_count" in frame.columns:
        count = pd.to_numeric(frame["interval_count"], errors="coerce").astype(float)
        bad = count.notna() & ~(count > 0)
        if bad.any():
            out.error(
                f"{bad.sum():,} rows have an interval_count that is not a positive number",
                "interval_count is how many intervals one billing period spans (1, 3, 6 ...): "
                "fix those rows in the export",
                column=tc.columns.get("interval_count", "interval_count"),
                rows=_row_list(bad),
                values=frame["interval_count"],
            )
            raise _Stop
        per_year = per_year / count.fillna(1.0)
        frame = frame.drop(columns=["interval_count"])
    if tc.price_per_seat:
        if "seats" not in frame.columns:
            out.error(
                "price_per_seat = true, but seats is not mapped",
                f'add seats = "<source column>" (e.g. Stripe\'s "Quantity") under {where}',
            )
            raise _Stop
        price = price * pd.to_numeric(frame["seats"], errors="coerce").astype(float)
    frame = frame.drop(columns=["price", "interval"])
    frame["arr"] = price * per_year
    if "billing_period" not in frame.columns:
        frame["billing_period"] = billing_period_words(per_year)
    if tc.invoices:
        return _invoices_to_subscriptions(frame, per_year, tc, out)
    return frame


def _movements_to_subscriptions(frame: pd.DataFrame, tc, out: _Collector) -> pd.DataFrame:
    """``movements = true``: each row is a change of an account's recurring revenue on a date
    (ChartMogul's, Baremetrics' or ProfitWell's MRR movements: new business, expansion,
    contraction, churn, reactivation), signed. An account's revenue is the running sum of its
    changes; each stretch of one level above zero becomes a subscription, from the change that
    set it to the next one, so that a churn to zero ends it and a reactivation starts another."""
    label = tc.columns.get("mrr", tc.columns.get("arr", "arr"))
    if "start_date" not in frame.columns:
        out.error(
            "movements = true, but start_date (the date of each change) is not mapped",
            f'add start_date = "<date column>" under [tables.{tc.name}.columns]',
        )
        raise _Stop
    if "end_date" in frame.columns:
        out.error(
            "movements = true, but end_date is mapped: a movement has one date, and a "
            "subscription ends where a later change takes its revenue to zero",
            f"remove end_date from [tables.{tc.name}.columns]",
        )
        raise _Stop
    # The account each change belongs to: its id, or the key it is looked up by later
    # (account_id_from = "accounts.name": the revenue tool names the customer).
    key = "account_id"
    if key not in frame.columns and tc.account_id_from is not None:
        key = tc.account_id_from[1]
    if key not in frame.columns:
        out.error(
            "movements = true, but no column says whose change each row is",
            f'map account_id = "<customer id column>" under [tables.{tc.name}.columns], or '
            'look it up with account_id_from = "accounts.name" and name = "<customer column>"',
        )
        raise _Stop
    no_id = frame[key].isna()
    if no_id.any():
        # Changes of a customer the billing tool has no CRM id for: said, as for any table.
        out.warning(
            f"{_rows_have(int(no_id.sum()))} no {key} and are left out",
            f"fill {key} in the export (the CRM id the billing tool keeps for the customer)"
            if key == "account_id"
            else f"fill {key} in the export",
            column=tc.columns.get(key, key),
            rows=_row_list(no_id),
        )
    rows = frame.dropna(subset=[key, "start_date"])
    # Each change's row in the file, for the messages that name rows later (the last row of
    # the changes of one account and day).
    row_of = rows.assign(_row=rows.index).groupby([key, "start_date"], sort=True)["_row"].last()
    changes = rows.groupby([key, "start_date"], sort=True)["arr"].sum(min_count=1).fillna(0.0)
    level = changes.groupby(level=key, sort=False).cumsum()
    below = level < -0.005
    if below.any():
        first = level[below].index[0]
        out.warning(
            f"{_accounts_fall(int(below.groupby(level=key).any().sum()))} below zero "
            f"revenue after their changes (e.g. {first[0]} on {first[1]:%Y-%m-%d}): counted as "
            "zero, so the account is churned from then until its revenue rises again",
            "check that every change of those accounts is in the export (a missing new "
            "business or expansion row)",
            column=label,
            rows=sorted(row_of[below].tolist()),
        )
    level = level.clip(lower=0.0).round(6)
    table = level.reset_index(name="arr")
    table.index = row_of.to_numpy()
    same = table[key].eq(table[key].shift(-1))
    table["end_date"] = table["start_date"].shift(-1).where(same)
    paid = table[table["arr"] > 0].sort_index()  # in the file's order, as rows are named
    extra = [c for c in frame.columns if c not in (key, "start_date", "arr", "end_date")]
    if extra:
        # Other columns (plan, currency) as of the change that set each stretch.
        firsts = rows.drop_duplicates([key, "start_date"], keep="last").set_index(
            [key, "start_date"]
        )[extra]
        paid = paid.join(firsts, on=[key, "start_date"])
    out.info(
        f"movements = true: {len(rows):,} changes of {rows[key].nunique():,} accounts "
        f"read as {len(paid):,} stretches of steady revenue (subscriptions); a change to zero "
        "ends one (churn), a later rise starts another",
        "nothing to do",
        column=label,
    )
    return paid


#: Cells a money column's first rows are read from to tell whether its amounts may write
#: thousands with "." (the whole column is checked only then: at a million deals a regular
#: expression over every cell costs a second).
THOUSANDS_SAMPLE = 5_000


def _thousands_dots_likely(series: pd.Series) -> bool:
    """Whether any of the first filled cells of ``series`` has a "." followed by exactly three
    digits and no more ("€15.480", "1.290 €")."""
    head = series.dropna().head(THOUSANDS_SAMPLE).astype(str)
    return bool(head.str.contains(r"\.\d{3}(?!\d)", regex=True).any())


def _accounts_fall(n: int) -> str:
    return f"{n:,} account falls" if n == 1 else f"{n:,} accounts fall"


def billing_period_words(per_year: pd.Series) -> pd.Series:
    """How often a subscription bills, in words, from its billing periods per year: 12 ->
    "monthly", 1 -> "annual", 4 -> "quarterly", 2 -> "semiannual", 52 -> "weekly", 365 ->
    "daily", 0.5 -> "every 2 years"; 6 -> "every 2 months". NA where unknown."""
    named = {365.0: "daily", 52.0: "weekly", 12.0: "monthly", 4.0: "quarterly"}
    named |= {2.0: "semiannual", 1.0: "annual"}

    def word(value: float):
        if not np.isfinite(value) or value <= 0:
            return pd.NA
        for per_year, name in named.items():
            if np.isclose(value, per_year, rtol=0.02):
                return name
        months = 12 / value
        if np.isclose(months, round(months), rtol=0.02):
            return f"every {round(months)} months"
        return f"{value:g} a year"

    values = pd.Series(per_year, copy=False).astype(float)
    distinct = {v: word(v) for v in pd.unique(values.dropna())}
    return values.map(distinct).astype("string")


def _one_interval_after(dates: pd.Series, days: pd.Series) -> pd.Series:
    """``dates`` plus one billing interval of ``days``: whole calendar months for intervals of
    months (15 January + a month is 15 February), else whole days."""
    months = 12 * days / DAYS_PER_YEAR_INVOICE
    whole = np.isclose(months, np.round(months)) & (np.round(months) >= 1)
    out = dates + pd.to_timedelta(np.round(days), unit="D")
    for count in np.unique(np.round(months[whole])):
        rows = whole & (np.round(months) == count)
        out[rows] = dates[rows] + pd.DateOffset(months=int(count))
    return out


def _invoices_to_subscriptions(
    frame: pd.DataFrame, per_year: pd.Series, tc, out: _Collector
) -> pd.DataFrame:
    """``invoices = true``: each row is an invoice (or invoice line) for one billing interval,
    as an accounting system exports them, and the subscriptions are read from their rhythm.
    Per account (and plan, when mapped), invoices at most an interval apart (and a quarter of
    one late, a month at most) are one
    subscription at the ARR of its invoices; a change of amount starts the next one on that
    day; a subscription ends one interval after its last invoice, or is still running when its
    next invoice is not yet that late at the table's latest invoice date. Credit
    notes (negative amounts) and zero lines are left out: they correct revenue, not periods."""
    counted = frame["arr"] > 0
    left = int((~counted).sum())
    rows = frame[counted].assign(_days=(DAYS_PER_YEAR_INVOICE / per_year[counted]).to_numpy())
    rows = rows[rows["start_date"].notna()]
    if rows.empty:
        out.error(
            "invoices = true, but no invoice has a date and a positive amount",
            "map start_date to the invoice date and price to its amount",
        )
        raise _Stop
    latest = rows["start_date"].max()
    # The account is its id, or the key it is looked up through (account_id_from).
    keys = [c for c in ("account_id", *(tc.account_id_from or ())[1:]) if c in rows.columns]
    keys += ["plan"] if "plan" in rows.columns else []
    rows = rows.assign(_row=rows.index).sort_values([*keys, "start_date", "_row"], kind="stable")
    # Several lines of one invoice date and plan are one invoice: their amounts add up.
    grouped = rows.groupby([*keys, "start_date"], sort=False, dropna=False)
    invoices = grouped.agg(
        arr=("arr", "sum"), _days=("_days", "max"), _row=("_row", "min")
    ).reset_index()
    extra = [c for c in rows.columns if c not in {*invoices.columns, "end_date"}]
    if extra:
        invoices = invoices.join(grouped[extra].first().reset_index(drop=True))
    same = np.ones(len(invoices), dtype=bool)
    for key in keys:
        values = invoices[key].astype("string").fillna("\x00")
        same &= (values == values.shift()).fillna(False).to_numpy(dtype=bool)
    previous = invoices["start_date"].shift()
    gap = (invoices["start_date"] - previous).dt.days.to_numpy(dtype=float)
    # Late by at most a quarter of an interval, and never more than a month.
    due = invoices["_days"].shift().to_numpy(dtype=float)
    due = due + np.minimum(due * 0.25, 31.0)
    lapsed = ~same | ~(gap <= due)
    changed = ~np.isclose(invoices["arr"].to_numpy(), invoices["arr"].shift().to_numpy())
    starts = lapsed | changed
    segment = np.cumsum(starts) - 1
    parts = invoices.groupby(segment, sort=False)
    subs = parts.first()
    last = parts["start_date"].max()
    days = parts["_days"].last()
    following = pd.Series(lapsed, index=invoices.index).groupby(segment).first()
    # The segment after a change of amount begins where this one ends.
    next_start = subs["start_date"].shift(-1)
    continued = ~pd.Series(following.to_numpy(), index=subs.index).shift(-1, fill_value=True)
    paid_through = _one_interval_after(last, days)
    running = last + pd.to_timedelta(days + np.minimum(days * 0.25, 31.0), unit="D") > latest
    end = paid_through.where(~continued, next_start).where(continued | ~running)
    subs["end_date"] = end.to_numpy()
    subs.index = subs["_row"].to_numpy()
    if "billing_period" not in subs.columns or subs["billing_period"].isna().all():
        subs["billing_period"] = billing_period_words(
            DAYS_PER_YEAR_INVOICE / subs["_days"].astype(float)
        ).to_numpy()
    subs = subs.drop(columns=["_row", "_days"])
    out.info(
        f"invoices = true: {len(rows):,} invoice rows became {len(subs):,} subscriptions "
        f"({int(subs['end_date'].isna().sum()):,} still running at the latest invoice, "
        f"{latest:%Y-%m-%d}): invoices at most an interval apart (a quarter of one late, a month at most) are one subscription, "
        "a change of amount starts the next, and one ends an interval after its last invoice"
        + (
            f"; {left:,} {'line' if left == 1 else 'lines'} with no positive amount (credit "
            "notes, zero lines) left out"
            if left
            else ""
        ),
        "nothing to do; check a few accounts' subscriptions in the run's data snapshot",
    )
    return subs.sort_index()


DAYS_PER_YEAR_INVOICE = 365.25


def _intervals_per_year(frame, interval: pd.Series, tc, out: _Collector, what: str, known: str):
    """Intervals in a year of each row's ``interval``, NaN where blank, in any case and in the
    plural (Recurly's "months", "days"); an interval that is not a known one is an error naming
    the rows and the recode."""
    interval = interval.astype("string").str.strip().str.lower()
    per_year = interval.map(INTERVALS_PER_YEAR, na_action="ignore").astype(float)
    plural = per_year.isna() & interval.str.endswith("s").fillna(False)
    if plural.any():
        singular = interval[plural].str[:-1].map(INTERVALS_PER_YEAR, na_action="ignore")
        per_year[plural] = singular.astype(float)
    unknown = interval.notna() & per_year.isna()
    if unknown.any():
        examples = ", ".join(f'"{v}"' for v in frame.loc[unknown, "interval"].unique()[:3])
        out.error(
            f"{unknown.sum():,} {what} that is not a known one ({examples})",
            f"recode them under [tables.{tc.name}.values.interval], e.g. {examples.split(', ')[0]}"
            f' = "month" (known: {known}, their plurals and their -ly forms)',
            column=tc.columns.get("interval", "interval"),
            rows=_row_list(unknown),
        )
        raise _Stop
    return per_year


#: A deal amount paid once: as it is.
ONE_OFF = {"one_time", "one-time", "onetime", "once", "one off", "one-off", "oneoff", "single"}


def _annual_amounts(frame: pd.DataFrame, tc, out: _Collector) -> pd.DataFrame:
    """Deal amounts per month or quarter (Close's value_period) as annual amounts, so that deal
    sizes compare: monthly x 12, quarterly x 4; annual and one-off amounts stay."""
    label = tc.columns.get("interval", "interval")
    period = frame["interval"].astype("string").str.strip().str.lower()
    once = period.isin(ONE_OFF).fillna(False)
    per_year = _intervals_per_year(
        frame,
        period.mask(once, "year"),  # paid once: the amount as it is
        tc,
        out,
        "deals have an amount period",
        "month, quarter, year, one_time",
    )
    frame = frame.drop(columns=["interval"])
    if "amount" not in frame.columns:
        return frame
    scaled = (per_year.fillna(1.0) != 1.0) & frame["amount"].notna()
    if scaled.any():
        frame["amount"] = frame["amount"] * per_year.fillna(1.0).to_numpy()
        out.info(
            f"{int(scaled.sum()):,} deal amounts per month or quarter were annualised (x12, "
            "x4), so that deal sizes compare with annual and one-off ones",
            "nothing to do",
            column=label,
        )
    return frame


#: Names of a column that says how many intervals a billing period spans.
_INTERVAL_COUNT = re.compile(
    r"(?:^|_)(?:interval_count|interval_length|frequency|billing_frequency|period_length"
    r"|billing_period_length|interval_multiplier)$"
)


_PIPELINE_HEADER = re.compile(r"(?:^|[^a-z])pipeline(?:[^a-z]|$)", re.IGNORECASE)


def _note_pipelines(unmapped: list, raw: pd.DataFrame, tc, out) -> None:
    """A deals export holding several pipelines (HubSpot, Pipedrive: sales, renewals, partner)
    in an unmapped column: their deals are analysed as one, so a renewals or partner pipeline's
    win rate mixes with new business. Said, with how to tell them apart."""
    for column in unmapped:
        if not _PIPELINE_HEADER.search(str(column)):
            continue
        counts = raw[column].astype("string").str.strip().replace("", pd.NA).value_counts()
        if len(counts) < 2:
            continue
        shown = ", ".join(f'"{v}" ({n:,} deals)' for v, n in counts.head(5).items())
        more = f" and {len(counts) - 5:,} more" if len(counts) > 5 else ""
        out.warning(
            f"deals from {len(counts)} pipelines ({shown}{more}) are analysed together: win "
            "rates, deal sizes and sales cycles mix them",
            f'map type = "{column}" and recode its values under '
            '[tables.opportunities.values.type] (a renewals pipeline = "renewal", the '
            'new-business ones = "new"), and map source = "' + str(column) + '" too to test a '
            "channel such as a partner pipeline; or recode another pipeline's stages to "
            '"drop" to leave its deals out',
            column=str(column),
        )


def _note_interval_count(unmapped, frame: pd.DataFrame, raw, tc, out: _Collector) -> str | None:
    """A price per interval beside an unmapped column named like Stripe's interval_count,
    Recurly's interval_length or Paddle's billing_cycle.frequency: a price billed every 3
    months would count as monthly. A column of whole counts is read as interval_count (its
    name returned); anything else is a warning."""
    if "interval" not in frame.columns or "interval_count" in frame.columns:
        return None
    for column in unmapped:
        if _INTERVAL_COUNT.search(_snake(column)):
            counts, bad = parse_numbers(raw[column], tc.decimal)
            whole = counts.dropna()
            if not bad.any() and len(whole) and (whole >= 1).all() and (whole % 1 == 0).all():
                # Recurly's interval_length (12 with interval_unit months: a yearly plan):
                # read as it is, for every price is otherwise read as billed once per month
                # (a first user's ARR was 4.7x too high, with nothing said).
                frame["interval_count"] = counts.reindex(frame.index).to_numpy()
                out.info(
                    f'"{column}" read as interval_count: how many intervals one billing '
                    f"period spans ({', '.join(f'{int(v)}' for v in sorted(whole.unique())[:4])})",
                    f'nothing to do; map interval_count = "{column}" under '
                    f"[tables.{tc.name}.columns] to say so, or drop it if it means otherwise",
                    column=column,
                )
                return column
            out.warning(
                f'"{column}" looks like how many intervals one billing period spans (3 with '
                "interval month bills every quarter), but it is not mapped: every price is "
                "read as billed once per interval",
                f'add interval_count = "{column}" under [tables.{tc.name}.columns]',
                column=column,
            )
            return None
    return None


#: Billing systems' subscription statuses (Stripe, Paddle, Chargebee, Recurly, Zuora), by what
#: they mean for ARR and churn.
SUBSCRIPTION_STATUSES = {
    # Never billed: a voided invoice (Xero's VOIDED, QuickBooks' Voided), or rows recoded to
    # "drop" under [tables.subscriptions.values.status].
    "void": ("void", "voided", "drop", "anulada", "anulado", "annulée", "storniert", "annullata"),
    "trial": ("trialing", "trial", "in_trial", "intrial"),
    "not started": (
        "future",
        "incomplete",
        "pending",
        "not_started",
        "draft",
        "pending_activation",
        "pending_acceptance",
        "in_approval_process",  # a Salesforce contract not yet activated
        "in_approval",
        "submitted",  # an invoice awaiting approval (Xero)
    ),
    "paused": ("paused", "suspended", "on_hold", "pausiert", "ruhend", "en_pause", "pausado"),
    "ended": (
        "canceled",
        "cancelled",
        "expired",
        "incomplete_expired",
        "ended",
        "terminated",
        "inactive",
        "churned",
        "deleted",
        # German, French, Spanish billing exports: gekündigt, résilié, cancelado.
        "gekündigt",
        "gekuendigt",
        "beendet",
        "abgelaufen",
        "inaktiv",
        "résilié",
        "resilie",
        "expiré",
        "terminé",
        "inactif",
        "cancelado",
        "cancelada",
        "vencido",
        "finalizado",
        "inactivo",
    ),
    "running": (
        "active",
        "aktiv",
        "laufend",
        "actif",
        "activo",
        "activa",
        "en_cours",
        "activated",  # a Salesforce contract in force
        "live",
        "past_due",
        "unpaid",
        "non_renewing",
        "nonrenewing",
        "in_dunning",
        "dunning",
        "renewing",
        "current",
        # An invoice's states once issued (Xero's AUTHORISED awaits payment; PAID), also in
        # Spanish (Holded's Pagada, Pendiente), French and German.
        "paid",
        "authorised",
        "authorized",
        "pagada",
        "pagado",
        "pendiente",
        "payée",
        "bezahlt",
        "offen",
    ),
}
_STATUS_MEANING = {v: k for k, values in SUBSCRIPTION_STATUSES.items() for v in values}


def _not_paying_yet(frame: pd.DataFrame, tc, out: _Collector) -> pd.DataFrame:
    """The rows of a billing export whose status says they pay nothing yet: a trial (Stripe's
    trialing, Chargebee's in_trial) or a subscription that has not started (Recurly's and
    Chargebee's future, Stripe's incomplete, Zuora's pending activation), left out with a note
    each, before a required value is asked of them (a future subscription has no activation
    date). Statuses it does not know are a warning with the recode that places them."""
    label = out.sources.get("status", "status")
    meaning = _status_meaning(frame["status"])
    unknown = frame["status"].notna() & meaning.isna()
    if unknown.any():
        examples = ", ".join(f'"{v}"' for v in frame.loc[unknown, "status"].unique()[:3])
        out.warning(
            f"{_rows_have(int(unknown.sum()))} a status that is not a known billing status "
            f"({examples}); they count as running",
            f"recode them under [tables.{tc.name}.values.status] to one of trialing, active, "
            'paused or canceled, or to "drop" to leave those rows out',
            column=label,
            rows=_row_list(unknown),
            values=frame["status"],
        )
    # A trial pays nothing yet: kept, with no ARR, it would read as a customer who left (a won
    # deal and a subscription with no revenue) once the trial ends.
    left_out = np.zeros(len(frame), dtype=bool)
    for meant, says in (
        (
            "void",
            "{rows} a status that voids them ({shown}): left out (a voided invoice was never "
            "billed; counted, it would add to the ARR of its date)",
        ),
        (
            "trial",
            "{n} subscriptions are in trial by their status: they pay nothing yet, so they "
            "are left out (a trial makes no customer, and its end no churn)",
        ),
        (
            "not started",
            "{n} subscriptions have not started by their status ({shown}): they pay nothing "
            "yet, so they are left out (no customer until one starts)",
        ),
    ):
        rows = (meaning == meant).fillna(False).to_numpy(dtype=bool)
        if not rows.any():
            continue
        shown = ", ".join(f'"{v}"' for v in frame.loc[rows, "status"].unique()[:3])
        n = int(rows.sum())
        if meant == "trial":
            out.keep_trials(frame[rows])
        out.info(
            says.format(rows=_rows_have(n), n=f"{n:,}", shown=shown),
            "nothing to do",
            column=label,
            rows=_row_list(pd.Series(rows, index=frame.index)),
        )
        left_out |= rows
    if left_out.any():
        frame = frame[~left_out].copy()
    return frame


def _status_meaning(status: pd.Series) -> pd.Series:
    """What each billing status means (a key of :data:`SUBSCRIPTION_STATUSES`), NA if unknown."""
    text = status.astype("string").str.strip().str.lower()
    return text.str.replace(r"[\s-]+", "_", regex=True).map(_STATUS_MEANING, na_action="ignore")


def _subscription_status(frame: pd.DataFrame, tc, out: _Collector) -> pd.DataFrame:
    """A billing export's status column, once the rows that pay nothing yet are left out (see
    :func:`_not_paying_yet`): a cancelled one without an end date is counted as running, with
    a warning naming end_date; paused ones run at their ARR, with a note. The column goes once
    read."""
    label = out.sources.get("status", "status")
    meaning = _status_meaning(frame["status"])
    ended = (meaning == "ended").fillna(False).to_numpy(dtype=bool)
    open_end = (
        out.blank(frame, "end_date").to_numpy(dtype=bool)
        if "end_date" in frame
        else np.ones(len(frame), bool)
    )
    undated = ended & open_end
    if undated.any():
        out.warning(
            f"{int(undated.sum()):,} subscriptions are cancelled by their status but have no "
            "end date: they count as running, so their churn is not seen",
            f"map end_date under [tables.{tc.name}.columns] to the date they ended (e.g. "
            '"canceled_at", "ended_at", "cancelled_at")',
            column=label,
            rows=_row_list(pd.Series(undated, index=frame.index)),
        )
    paused = (meaning == "paused").fillna(False).to_numpy(dtype=bool) & open_end
    if paused.any():
        out.info(
            f"{int(paused.sum()):,} subscriptions are paused: they count as running at their "
            "ARR (not churned); their ARR is in the totals",
            "nothing to do",
            column=label,
            rows=_row_list(pd.Series(paused, index=frame.index)),
        )
    return frame.drop(columns=["status"])


def _trial_ends(frame: pd.DataFrame, tc, out: _Collector) -> pd.DataFrame:
    """A billing export's trial end (Recurly's trial_ends_at): the subscription was a free trial
    from its start until then, at the plan's list price but paying nothing. One that ended on or
    before its trial end was only a trial: left out, like a trial by its status (no customer, and
    its end no churn). One that ran past it (or runs on, with no end) was paid from its trial
    end, which becomes its start: an as-of date before it, in the trial, sees no customer yet.
    The column goes once read."""
    label = out.sources.get("trial_end", "trial_end")
    start, trial_end = frame["start_date"], frame["trial_end"]
    in_trial = (trial_end > start).fillna(False).to_numpy(dtype=bool)
    ended = (
        (frame["end_date"] <= trial_end).fillna(False).to_numpy(dtype=bool)
        if "end_date" in frame
        else np.zeros(len(frame), dtype=bool)
    )
    only_trial = in_trial & ended
    if in_trial.any():
        out.keep_trials(frame[in_trial])
    if only_trial.any():
        out.info(
            f"{int(only_trial.sum()):,} subscriptions ended on or before their trial end: they "
            "were only free trials and never paid, so they are left out (a trial makes no "
            "customer, and its end no churn)",
            "nothing to do",
            column=label,
            rows=_row_list(pd.Series(only_trial, index=frame.index)),
        )
    paid = in_trial & ~ended
    if paid.any():
        first = frame.index[paid][0]
        out.info(
            f"{int(paid.sum()):,} subscriptions began with a free trial: each counts from its "
            "trial end, when it began to pay (so a trial running on the as-of date is not a "
            f"customer yet; e.g. row {first}: start {start[first]:%Y-%m-%d} -> "
            f"{trial_end[first]:%Y-%m-%d})",
            "nothing to do",
            column=label,
            rows=_row_list(pd.Series(paid, index=frame.index)),
        )
        frame = frame.copy()
        frame.loc[paid, "start_date"] = trial_end[paid]
    return frame[~only_trial].drop(columns=["trial_end"])


#: Spellings of one country that CRMs collect side by side (free text, forms, imports), by the
#: name they are merged into. Two-letter codes other than these stay as they are.
COUNTRY_NAMES = {
    "United States": (
        "us",
        "usa",
        "u s",
        "u s a",
        "united states",
        "united states of america",
        "america",
        "the united states",
        "the united states of america",
        "vereinigte staaten",
        "etats unis",
        "estados unidos",
    ),
    "United Kingdom": (
        "uk",
        "u k",
        "gb",
        "great britain",
        "united kingdom",
        "the united kingdom",
        "britain",
        "united kingdom of great britain and northern ireland",
        "england",
        "scotland",
        "wales",
        "northern ireland",
        "vereinigtes konigreich",
        "royaume uni",
        "reino unido",
    ),
    "Germany": ("germany", "deutschland", "federal republic of germany", "allemagne", "alemania"),
    "France": ("france", "frankreich", "francia", "french republic"),
    "Netherlands": ("netherlands", "the netherlands", "holland", "nederland", "niederlande"),
    "Spain": ("spain", "espana", "spanien", "espagne"),
    "Italy": ("italy", "italia", "italien", "italie"),
    "Switzerland": ("switzerland", "schweiz", "suisse", "svizzera"),
    "Austria": ("austria", "osterreich", "autriche"),
    "Ireland": ("ireland", "republic of ireland", "eire", "irland", "irlande"),
    "United Arab Emirates": ("uae", "u a e", "united arab emirates", "emirates"),
    "South Korea": ("south korea", "korea", "republic of korea", "korea republic of"),
    "Czechia": ("czechia", "czech republic"),
}
_COUNTRY_ALIAS = {alias: name for name, aliases in COUNTRY_NAMES.items() for alias in aliases}
#: Two-letter codes of the countries above (a lead file in codes beside an export in names).
COUNTRY_CODES = {
    "us": "United States",
    "gb": "United Kingdom",
    "uk": "United Kingdom",
    "de": "Germany",
    "fr": "France",
    "nl": "Netherlands",
    "es": "Spain",
    "it": "Italy",
    "ch": "Switzerland",
    "at": "Austria",
    "ie": "Ireland",
    "ae": "United Arab Emirates",
    "kr": "South Korea",
    "cz": "Czechia",
}


def _country_text_key(text) -> str:
    import unicodedata

    text = unicodedata.normalize("NFKD", str(text)).encode("ascii", "ignore").decode()
    return re.sub(r"[^a-z]+", " ", text.lower()).strip()


def country_key(value) -> str:
    """One key per country for matching, whatever the spelling or language: "Deutschland",
    "DE" and "Federal Republic of Germany" -> "germany"; a name it does not know, folded."""
    key = _country_text_key(value)
    name = _COUNTRY_ALIAS.get(key) or COUNTRY_CODES.get(key.replace(" ", ""))
    return (name or key).casefold()


def _one_name_per_country(values: pd.Series, tc, out: _Collector) -> pd.Series:
    """ "USA", "U.S.", "United States of America" and "united states" are one country: merged
    into one name (with a note), so that a country is not split into levels that each look
    too small, or tested against itself. Values it does not know stay as they are."""
    if not (pd.api.types.is_string_dtype(values) or pd.api.types.is_object_dtype(values)):
        return values
    key = _country_text_key
    distinct = pd.Series(values.dropna().unique())
    if distinct.empty:
        return values
    # A column of codes (US, DE, FR ...) stays codes: only names are merged then. Codes
    # beside names of the same countries ("US", "USA", "United States", "UK", "Germany", as a
    # hand-kept sheet has them) are spellings like any other.
    short = distinct.astype(str).str.fullmatch(r"\s*[A-Za-z]{2,3}\s*")
    named = [
        v for v in distinct[~short.to_numpy(dtype=bool)] if _COUNTRY_ALIAS.get(key(v)) is not None
    ]
    codes = short.mean() > 0.5 and not named
    merged = {
        v: _COUNTRY_ALIAS.get(key(v)) or COUNTRY_CODES.get(key(v).replace(" ", ""))
        for v in distinct
        if not (codes and len(key(v).replace(" ", "")) <= 3)
    }
    merged = {v: name for v, name in merged.items() if name is not None and name != v}
    if not merged:
        return values
    result = values.replace(merged).astype(values.dtype)
    spelled = {}
    for v, name in merged.items():
        spelled.setdefault(name, []).append(v)
    text = "; ".join(
        f'{", ".join(repr(v).replace(chr(39), chr(34)) for v in sorted(vs)[:4])} -> "{name}"'
        for name, vs in sorted(spelled.items())
    )
    out.info(
        f"country: spellings of one country merged ({text})",
        "nothing to do; recode under [tables.accounts.values.country] to keep them apart",
        column=tc.columns.get("country", "country"),
    )
    return result


def _fmt_band(value: float) -> str:
    """125.5 -> '125.5', 10001.0 -> '10,001', 1e6 -> '1,000,000'."""
    return f"{value:,.0f}" if float(value).is_integer() else f"{value:,.1f}"


def _convert(series, canonical, source, kind, tc, out, extra_missing):
    column_label = source if source == canonical else f'{source}" ({canonical})'
    column_label = column_label.rstrip('"') if source == canonical else column_label
    label = f"{source}" if source == canonical else f"{source} -> {canonical}"
    if kind == "auto":
        text = as_text(series, set(MISSING_TOKENS) | extra_missing)
        if pd.api.types.is_bool_dtype(series) or looks_like_flags(text):
            kind = "flag"
        elif pd.api.types.is_numeric_dtype(series):
            kind = "number"
        elif pd.api.types.is_datetime64_any_dtype(series):
            kind = "date"
        else:
            values, bad = parse_distinct(
                series, lambda s: parse_numbers(s, tc.decimal, extra_missing)
            )
            present = text.notna().sum()
            kind = (
                "number"
                if present and not bad.any() and values.notna().sum() == present
                else "category"
            )
            other = (
                other_decimal_mark(series[bad].astype(str), tc.decimal, share=1.0)
                if kind == "category" and bad.any()
                else None
            )
            if other:
                # Numbers written with the other decimal mark are a setting away from being
                # numbers; read silently as text they would be lost as a numeric attribute.
                examples = ", ".join(f'"{v}"' for v in series[bad].astype(str).unique()[:3])
                out.warning(
                    f'{bad.sum():,} values look like numbers with "{other}" as the decimal mark '
                    f"({examples}); the column is read as text",
                    f'add decimal = "{other}" under [tables.{tc.name}] to read it as numbers',
                    column=label,
                    rows=_row_list(bad),
                    values=series,
                )
    if kind in ("money", "number"):
        values, bad = parse_distinct(series, lambda s: parse_numbers(s, tc.decimal, extra_missing))
        if kind == "money":
            # The cells that are text name their currency ("£1,250"); in a hand-kept sheet
            # they sit beside plain numbers. A header that names one ("MRR (£)", "ACV in
            # EUR") stands for the cells that name none.
            texts = (
                series.iloc[:0]  # numbers read as numbers (Parquet, Excel): no text to look at
                if pd.api.types.is_numeric_dtype(series)
                else series
                if only_text(series)
                else series[series.map(lambda v: isinstance(v, str)).to_numpy(dtype=bool)]
            )
            named = currency_marks(texts) if len(texts) else pd.Series(dtype="string")
            if len(texts):
                _note_currencies(texts, label, tc, out)
            header = CURRENCY_MARK.search(str(source))
            if header is not None:
                mark = CURRENCY_SYMBOLS.get((header.group(1) or header.group(2)).lower())
                unmarked = int(series.notna().sum()) - int(named.notna().sum())
                if mark and unmarked > 0:
                    _count_currencies({mark: unmarked}, out)
        if kind == "money" and (
            tc.cents or (tc.cents is None and _CENTS_HEADER.search(str(source)))
        ):
            values = values / 100
            if not tc.cents:
                out.info(
                    f"{source}: read in cents (divided by 100), as its header says",
                    "nothing to do; set cents = false under this table if they are not",
                    column=source,
                )
        if bad.any() and (kind == "number" or (kind == "money" and tc.name == "accounts")):
            # Company sizes exported as bands ("51-200", "10,001+"), and revenue estimates
            # ("$1M-$10M"): each is read as one number, as lead scoring reads the same text,
            # and the user is told so.
            low = per_distinct(
                as_text(series[bad], set(MISSING_TOKENS_NUMERIC) | set(extra_missing)),
                lambda t: parse_bands(t, tc.decimal),
            )
            if low.notna().any():
                # Each band is read; a value that is none ("Mais de 1000" before its words
                # were known) is reported alone below, not the whole column with it.
                read = low.notna()
                low = low[read]
                band_rows = bad.copy()
                band_rows[bad] = read.to_numpy(dtype=bool)
                bands = series[band_rows].astype(str).str.strip()
                examples = ", ".join(
                    f'"{v}" as {_fmt_band(low[bands == v].iloc[0])}'
                    for v in pd.unique(bands.to_numpy())[:3]
                )
                what = "amounts" if kind == "money" else "counts"
                example = "1M to < 10M is $1M-$10M" if kind == "money" else "51 to < 201 is 51-200"
                rough = bands.str.fullmatch(ROUGHLY).any()
                out.warning(
                    f"{band_rows.sum():,} values are ranges"
                    + (" or approximate figures" if rough else "")
                    + f" ({examples}): a range is read as its lower end"
                    + (' ("~50" or ">1000" as the figure it names)' if rough else "")
                    + ", as lead scoring reads them, and bins are cut where one range "
                    f"ends and the next begins ({example})",
                    "nothing to do if that is what you want; for exact figures export the "
                    f"exact {what} (an enrichment field rather than a range picklist)",
                    column=label,
                    rows=_row_list(band_rows),
                    values=series,
                )
                values = values.copy()
                values[band_rows] = low
                bad = bad & ~band_rows
        if bad.any():
            examples = ", ".join(f'"{v}"' for v in series[bad].astype(str).unique()[:3])
            other = other_decimal_mark(series[bad].astype(str), tc.decimal)
            if other is None and tc.decimal == ".":
                # "12.500.000": whole numbers with "." separating thousands.
                text = as_text(series[bad], set(MISSING_TOKENS_NUMERIC) | set(extra_missing))
                other = "," if grouped_with(text, ".").all() else None
            fix = (
                f'the values use "{other}" as the decimal mark: add decimal = "{other}" under '
                f"[tables.{tc.name}] (then the other mark may only separate thousands)"
                if other
                else "correct those cells in the export, or add the text to missing_values = [...] "
                f"under [tables.{tc.name}] if it means 'no value'"
            )
            if other is None and kind in ("number", "money") and series[bad].nunique() <= 5:
                # A few distinct words ("Mais de 1000", "Not disclosed"): a recode reads them.
                first = str(series[bad].astype(str).str.strip().iloc[0])
                fix += (
                    f"; or, if it stands for a figure, recode it under [tables.{tc.name}.values."
                    f'{canonical}] ("{first}" = "<the figure>")'
                )
            out.error(
                f"{bad.sum():,} values are not numbers ({examples})",
                fix,
                column=label,
                rows=_row_list(bad),
                values=series,
            )
            # Reported here, not again as missing ("599 subscriptions have no ARR").
            out.unreadable[canonical] = pd.Series(bad.to_numpy(dtype=bool), index=series.index)
        if canonical in COUNTS and tc.decimal == "." and only_text(series):
            # "1.391" employees is 1,391 with "." separating thousands (a German or French
            # export), not 1.391 people: a count with a fraction in groups of three is an error.
            text = as_text(series, set(MISSING_TOKENS_NUMERIC) | set(extra_missing))
            grouped = grouped_with(text, ".") & ~bad & values.notna()
            if grouped.any():
                sample = pd.unique(text[grouped].to_numpy())[:3]
                examples = ", ".join(f'"{v}"' for v in sample)
                first = sample[0]
                out.error(
                    f'{grouped.sum():,} values look like whole numbers with "." separating '
                    f'thousands ({examples}), which the decimal mark "." reads as fractions '
                    f'("{first}" as {float(values[grouped].iloc[0]):g} {canonical}, a count)',
                    f'add decimal = "," under [tables.{tc.name}] to read "." as the thousands '
                    'separator (then "," is the decimal mark of every number in the table)',
                    column=label,
                    rows=_row_list(grouped),
                    values=series,
                )
        if (
            kind == "money"
            and tc.decimal == "."
            and only_text(series)
            and _thousands_dots_likely(series)
        ):
            # "€15.480" is 15,480 euros with "." separating thousands, read as 15.48 by the
            # decimal mark ".": money has cents, not three decimals.
            text = as_text(series, set(MISSING_TOKENS_NUMERIC) | set(extra_missing))
            digits = text.str.replace(r"[^\d.,+-]", "", regex=True)
            dotted = digits.str.contains(".", regex=False).fillna(False) & ~bad & values.notna()
            grouped = grouped_with(digits, ".") & dotted
            commas = digits.str.contains(",", regex=False).fillna(False).any()
            if grouped.any() and not commas and grouped.sum() >= 0.9 * dotted.sum():
                sample = pd.unique(text[grouped].to_numpy())[:3]
                examples = ", ".join(f'"{v}"' for v in sample)
                out.warning(
                    f'{grouped.sum():,} amounts have three digits after "." ({examples}), '
                    f'which the decimal mark "." reads as fractions ("{sample[0]}" as '
                    f"{float(values[grouped].iloc[0]):g}): in most exports that write them so, "
                    '"." separates thousands',
                    f'add decimal = "," under [tables.{tc.name}] if "." separates thousands '
                    'in this export (then "," is the decimal mark of every number in the table)',
                    column=label,
                    rows=_row_list(grouped),
                    values=series,
                )
        if kind == "money" or canonical in COUNTS:
            negative = values < 0
            if tc.invoices and canonical == "price":
                negative[:] = False  # credit notes: left out when invoices become subscriptions
            if tc.movements and canonical in ("mrr", "arr"):
                negative[:] = False  # contractions and churns: changes, signed
            if negative.any():
                cell = str(series[negative].iloc[0]).strip()
                fix = (
                    "correct or blank those cells in the export; if a value such as -1 means "
                    f"'no value', add missing_values = [\"{cell}\"] under [tables.{tc.name}]"
                )
                if tc.name == "subscriptions" and canonical in ("mrr", "arr"):
                    fix = (
                        "if each row is a change of revenue (an MRR movements export: new "
                        "business, expansion, contraction, churn), add movements = true under "
                        "[tables.subscriptions]; otherwise " + fix
                    )
                out.error(
                    f"{negative.sum():,} negative values ({canonical} cannot be negative; e.g. "
                    f'"{cell}")',
                    fix,
                    column=label,
                    rows=_row_list(negative),
                    values=series,
                )
        return values
    if kind == "date":
        # A stage change keeps its time of day: several changes of one deal fall on one day.
        keep_time = canonical == "changed_at"
        values, bad = parse_distinct(
            series, lambda s: parse_dates(s, tc.date_format, extra_missing, keep_time)
        )
        years = series[bad].astype(str).str.extract(r"(?<!\d)(\d{4})(?!\d)")[0].astype(float)
        out_of_range = bad & years.reindex(series.index).pipe(lambda y: (y < 1678) | (y > 2261))
        if out_of_range.any():
            sample = series[out_of_range].astype(str)
            examples = ", ".join(f'"{v}"' for v in sample.unique()[:3])
            first = str(sample.iloc[0]).strip()
            out.error(
                f"{out_of_range.sum():,} dates are outside the years 1678-2262 that can be "
                f"analysed ({examples})",
                f'if {first} means "no date" (e.g. a subscription that never ends), add '
                f'missing_values = ["{first}"] under [tables.{tc.name}]; otherwise fix those cells',
                column=label,
                rows=_row_list(out_of_range),
                values=series,
            )
            bad = bad & ~out_of_range
        _date_order_warning(series, tc, extra_missing, out, label)
        if (bad | out_of_range).any():
            # Present but unreadable: reported here, not again as missing (see _blank).
            out.unreadable[canonical] = pd.Series(
                (bad | out_of_range).to_numpy(dtype=bool), index=series.index
            )
        if bad.any():
            sample = series[bad].astype(str)
            examples = ", ".join(f'"{v}"' for v in sample.unique()[:3])
            fix = _date_fix(series, bad, tc, extra_missing)
            out.error(
                f"{bad.sum():,} values are not dates ({examples})",
                fix,
                column=label,
                rows=_row_list(bad),
                values=series,
            )
        return values
    if kind == "flag":
        values, bad = parse_distinct(series, lambda s: parse_flags(s, extra_missing))
        if bad.any():
            examples = ", ".join(f'"{v}"' for v in series[bad].astype(str).unique()[:3])
            out.error(
                f"{bad.sum():,} values are not yes/no flags ({examples})",
                "use Yes/No, TRUE/FALSE or 1/0",
                column=label,
                rows=_row_list(bad),
                values=series,
            )
        return values
    # id, category, stage, text
    text = as_text(series, set(MISSING_TOKENS) | extra_missing).astype("string")
    if kind in ("category", "text", "auto"):
        lengths = text.str.len()
        too_long = (lengths > MAX_CELL_CHARS).fillna(False).astype(bool)
        if too_long.any():
            out.warning(
                f"{too_long.sum():,} cells are longer than {MAX_CELL_CHARS:,} characters (the "
                f"longest {int(lengths.max()):,}); they are cut to that length",
                "shorten those cells in the export if the rest of the text matters",
                column=label,
                rows=_row_list(too_long),
            )
            text = text.where(~too_long, text.str.slice(0, MAX_CELL_CHARS))
    return text


#: Distinct values of a date column tried when telling which way round its dates are written.
_ORDER_SAMPLE = 5000


def _reads_all(values: pd.Series, pattern: str) -> bool:
    return (
        bool(len(values)) and pd.to_datetime(values, format=pattern, errors="coerce").notna().all()
    )


def _read_differently(values: pd.Series, patterns, other: str) -> pd.Series:
    """Which ``values`` the first of ``patterns`` to fit them and ``other`` both read, as
    different dates ("05/03/2026": May 3 and 5 March)."""
    theirs = pd.Series(pd.NaT, index=values.index, dtype="datetime64[ns]")
    for pattern in patterns:
        left = theirs.isna()
        theirs[left] = pd.to_datetime(values[left], format=pattern, errors="coerce")
    ours = pd.to_datetime(values, format=other, errors="coerce")
    return theirs.notna() & ours.notna() & (theirs != ours)


def _date_order_warning(series: pd.Series, tc: TableConfig, extra_missing, out, label) -> None:
    """A declared list such as ``["%m/%d/%Y", "%d/%m/%Y"]`` reads a date that fits both
    ("05/03/2026") with the first. When some dates of the column fit only a later pattern, which
    reads every date of it, and none fit only the earlier ones, the column is written the later
    way round and the dates that fit both were misread: warn, naming the pattern to declare."""
    declared = date_formats(tc.date_format)
    if len(declared) < 2 or pd.api.types.is_datetime64_any_dtype(series):
        return
    text = as_text(series, set(MISSING_TOKENS_NUMERIC) | set(extra_missing))
    present = pd.Series(text.dropna().unique()[:_ORDER_SAMPLE], dtype="string")
    for later in declared[1:]:
        if not _reads_all(present, later):
            continue
        earlier = declared[: declared.index(later)]
        differ = _read_differently(present, earlier, later)
        read_first = pd.Series(False, index=present.index)
        for pattern in earlier:
            read_first |= pd.to_datetime(present, format=pattern, errors="coerce").notna()
        only_later = int(text.isin(present[~read_first]).sum())
        if not differ.any() or not only_later:
            continue  # nothing misread, or nothing tells which way round the column is
        wrong = text.isin(present[differ]).fillna(False).astype(bool)
        out.warning(
            f'{int(wrong.sum()):,} dates that read both ways ("{present[differ].iloc[0]}") were '
            f'read with "{earlier[0]}", but {only_later:,} dates of the column fit only '
            f'"{later}", which reads all of them: the column is written that way round',
            f'declare date_format = "{later}" under [tables.{tc.name}] (a date is read by the '
            "first pattern of a list that fits it)",
            column=label,
            rows=_row_list(wrong),
        )
        return


def _toml_patterns(patterns) -> str:
    """Patterns as they are written in icp.toml: one in quotes, several as a list."""
    quoted = [f'"{p}"' for p in patterns]
    return quoted[0] if len(quoted) == 1 else "[" + ", ".join(quoted) + "]"


def _date_fix(series: pd.Series, bad: pd.Series, tc: TableConfig, extra_missing) -> str:
    """The fix for cells that are not dates: the common pattern that reads them, if one does."""
    text = as_text(series, set(MISSING_TOKENS_NUMERIC) | set(extra_missing))
    guesses = guess_date_formats(text[bad])
    declared = date_formats(tc.date_format)
    where = f"[tables.{tc.name}]"
    if declared:
        bad_text = text[bad].dropna()
        iso = pd.to_datetime(bad_text, format="ISO8601", errors="coerce", utc=True)
        if not guesses and len(bad_text) and iso.notna().all() and "ISO8601" not in declared:
            # "2024-04-25T17:26:12.000+0000" (Salesforce's API fields) beside "%m/%d/%Y" ones.
            return (
                f"the declared date_format = {_toml_patterns(declared)} does not fit these "
                "values, which are ISO 8601 dates (read without any date_format): declare "
                f"date_format = {_toml_patterns([*declared, 'ISO8601'])} under {where}, or "
                "remove date_format if every date of the table is written like these"
            )
        cover = [] if guesses else cover_date_formats(text[bad])
        if cover:
            return (
                f"the declared date_format = {_toml_patterns(declared)} does not fit these "
                f"values, which are written in {len(cover)} more ways: declare date_format = "
                f"{_toml_patterns([*declared, *cover])} under {where} (each value is read by "
                "the first pattern that fits it)"
            )
        if not guesses:
            return (
                f"the declared date_format = {_toml_patterns(declared)} does not fit these "
                "values; fix the cells or the format"
            )
        present = pd.Series(text.dropna().unique()[:_ORDER_SAMPLE], dtype="string")
        for whole in (g for g in guesses if _reads_all(present, g)):
            differ = _read_differently(present, declared, whole)
            if differ.any():
                # "22/05/2026" fails "%m/%d/%Y": the export writes the day first, and a list of
                # both would read "05/03/2026" as May 3. One pattern reads every date of it.
                return (
                    f"the declared date_format = {_toml_patterns(declared)} does not fit these "
                    f'values, "{whole}" reads every date of the column: declare date_format = '
                    f'"{whole}" under {where} (not a list of both: "{present[differ].iloc[0]}" '
                    "would be read by the first pattern that fits it, the wrong way round)"
                )
        # The declared pattern reads the other cells: keep it and add one for these.
        patterns = _toml_patterns([*declared, guesses[0]])
        return (
            f"the declared date_format = {_toml_patterns(declared)} does not fit these values, "
            f'"{guesses[0]}" does: declare date_format = {patterns} under {where} (each value '
            "is read by the first pattern that fits it)"
        )
    if not guesses:
        digits = text[bad].dropna().astype(str)
        if len(digits) and digits.str.fullmatch(r"\d{9,11}").all():
            return (
                f'these are seconds since 1970 (Unix timestamps): declare date_format = "unix" '
                f"under {where}"
            )
        if len(digits) and digits.str.fullmatch(r"\d{12,14}").all():
            return (
                "these are milliseconds since 1970 (Unix timestamps): declare "
                f'date_format = "unix_ms" under {where}'
            )
        cover = cover_date_formats(text[bad])
        if cover:
            read = text.notna() & ~bad
            first = ["%Y-%m-%d"] if read.any() and "%Y-%m-%d" not in cover else []
            return (
                f"{'besides YYYY-MM-DD, ' if first else ''}these dates are written in "
                f"{len(cover)} ways: declare date_format = "
                f"{_toml_patterns([*first, *cover])} under {where} (each value is read by the "
                "first pattern that fits it; where a date reads both ways, 01/05 as January 5 "
                "or May 1, put the export's own first)"
            )
        return f'write dates as YYYY-MM-DD or declare date_format = "..." under {where}'
    read = text.notna() & ~bad
    iso = pd.Series(text[read].dropna().unique()[:300], dtype="string")
    if len(iso) and pd.to_datetime(iso, format="%Y-%m-%d", errors="coerce").notna().all():
        # ISO dates and other dates in one table: a list keeps both readable.
        return (
            f'declare date_format = ["%Y-%m-%d", "{guesses[0]}"] under {where} (each value is '
            "read by the first pattern that fits it)"
        )
    fix = f'add date_format = "{guesses[0]}" under {where}'
    if len(guesses) > 1:
        fix += f' (or "{guesses[1]}": the values are ambiguous, check which one the export uses)'
    return fix


def _metric_names(frame: pd.DataFrame, tc: TableConfig, out: _Collector) -> None:
    """The usage table names each row's metric; a metric column of numbers is a wide export
    (a column per metric: "active_users", "projects_created") mapped as if it were long, which
    would make every count a metric of its own ("usage_3", "usage_27")."""
    names = frame["metric"].dropna()
    if names.empty:
        return
    distinct = pd.Series(names.astype(str).str.strip().unique())
    numeric = pd.to_numeric(distinct, errors="coerce").notna()
    if numeric.mean() < 0.9:
        return
    label = out.sources.get("metric", "metric")
    examples = ", ".join(f'"{v}"' for v in distinct[numeric].head(3))
    out.error(
        f"the metric column holds numbers ({examples}), not metric names: a usage row names "
        "its metric (active_users) and value is its number",
        "for an export with a column per metric, unpivot it to one row per account, date and "
        'metric first (pandas: frame.melt(id_vars=["account", "week"], var_name="metric", '
        f'value_name="value")), then map metric and value under [tables.{tc.name}.columns]',
        column=label,
    )


def _bare_domains(domains: pd.Series) -> pd.Series:
    """Domains as one spelling: lower case, without a scheme, "www." or a path."""
    text = domains.astype("string").str.strip().str.lower()
    text = text.str.replace(r"^[a-z]+://", "", regex=True).str.replace(r"^www\.", "", regex=True)
    return text.str.replace(r"/.*$", "", regex=True).replace("", pd.NA)


def _domain_pairs(pairs: pd.DataFrame) -> pd.DataFrame:
    """(domain, account_id) pairs with a cell of several domains split into one pair each."""
    split = pairs.assign(domain=pairs["domain"].astype("string").str.split(r"[,;|\s]+"))
    split = split.explode("domain")
    split["domain"] = _bare_domains(split["domain"])
    return split.dropna().drop_duplicates()


def _check_table(frame: pd.DataFrame, tc: TableConfig, out: _Collector) -> pd.DataFrame:
    """Checks that need the whole (converted) table: required values, keys, stages."""
    table = TABLES[tc.name]
    if tc.name == "subscriptions" and "status" in frame.columns:
        frame = _not_paying_yet(frame, tc, out)
    if tc.name == "usage" and "metric" in frame.columns:
        _metric_names(frame, tc, out)
    if tc.name == "opportunities" and tc.history and "opportunity_id" in frame.columns:
        frame = _latest_stage(frame, tc, out)
    for column in table.required:
        if column not in frame.columns:
            continue
        missing = out.blank(frame, column)
        if missing.any():
            if tc.name == "opportunities" and column == "account_id":
                continue  # handled with the cross-table checks (open deals often lack one)
            if column == "account_id" and tc.account_id_from is not None:
                continue  # looked up by name where it is missing
            if column == "account_id" and tc.name != "accounts" and not missing.all():
                # A billing or usage row that was never linked to a CRM account (a Stripe
                # customer without the CRM id): left out, with a warning, by the cross-table
                # checks, like a row whose account is unknown.
                continue
            if tc.name == "opportunities" and column == "created_at":
                # CRMs leave early-stage deals undated; they cannot be placed in time.
                out.warning(
                    f"{missing.sum():,} deals have no created_at; they are left out of every "
                    "analysis and count (a deal with no date cannot be placed before or after the "
                    "as-of date)",
                    "fill the creation date in the export (e.g. the date the deal was entered) "
                    "if these deals matter",
                    column=tc.columns.get(column, column),
                    rows=_row_list(missing),
                )
                continue
            if tc.name == "churn_events" and column == "churned_at" and not missing.all():
                # A billing export mapped as churn events too, for its cancellation reasons:
                # its running contracts have no cancellation date, and are no churn.
                out.warning(
                    f"{missing.sum():,} rows have no churned_at: they record no churn (a "
                    "customer still paying, in an export of every contract) and are left out "
                    "of the churn events",
                    "nothing to do if these rows are customers who have not left; otherwise "
                    "fill the churn date",
                    column=tc.columns.get(column, column),
                    rows=_row_list(missing),
                )
                frame = frame[~missing.to_numpy(dtype=bool)]
                continue
            out.error(
                f"{missing.sum():,} rows have no {column} (a required value)",
                "fill them in the export or remove those rows",
                column=tc.columns.get(column, column),
                rows=_row_list(missing),
            )
    if tc.line_items and "opportunity_id" in frame.columns:
        frame = _roll_up_lines(frame, tc, out)
    if tc.rollup and tc.name == "accounts" and "account_id" in frame.columns:
        frame = _roll_up_accounts(frame, tc, out)
    for key in table.key:
        if key not in frame.columns or frame[key].is_unique:
            continue  # (unique: cheaper to ask than to mark every duplicate of 10M ids)
        duplicated = frame[key].duplicated(keep=False) & frame[key].notna()
        if duplicated.any():
            first = frame.loc[duplicated, key].iloc[0]
            lines = ""
            if tc.name == "opportunities":
                stages = (
                    frame.loc[duplicated, ["opportunity_id", "stage"]]
                    .groupby("opportunity_id")["stage"]
                    .nunique()
                    if "stage" in frame.columns
                    else pd.Series(dtype=int)
                )
                apart = [c for c in ("account_id", "created_at") if c in frame.columns]
                separate = (
                    frame.loc[duplicated, ["opportunity_id", *apart]]
                    .groupby("opportunity_id")[apart]
                    .nunique()
                    .gt(1)
                    .any(axis=1)
                    if apart
                    else pd.Series(dtype=bool)
                )
                lines = (
                    "; the rows of one deal are its stage changes (an opportunity-history "
                    "export): set history = true under [tables.opportunities], and map "
                    "changed_at to the date of the change"
                    if len(stages) and (stages > 1).mean() > 0.5
                    else "; these rows are different deals that share the id (another account "
                    "or creation date): map opportunity_id to a column unique to each deal, or "
                    "remove opportunity_id from [tables.opportunities.columns] to name each "
                    "deal by its row"
                    if len(separate) and separate.mean() >= 0.5
                    else "; if each row is one line of a deal (order lines), set line_items = "
                    "true under [tables.opportunities] to roll them up into one deal per id"
                )
            elif tc.name == "accounts":
                lines = (
                    "; if the file has several rows per account (a deals report with the "
                    "company's fields on every row), set rollup = true under [tables.accounts] "
                    "to read one account per account_id"
                )
            out.error(
                f"{frame.loc[duplicated, key].nunique():,} {key} values occur more than once "
                f'(e.g. "{first}")',
                f"{key} must be unique: remove duplicate rows or map a unique column to {key}"
                + lines,
                column=tc.columns.get(key, key),
                rows=_row_list(duplicated),
                values=frame[key],
            )
    if tc.name == "opportunities" and "stage" in frame.columns:
        frame["stage"] = _recode_stage(frame["stage"], tc, out)
        if not _lost_by_flag(frame, tc, out):
            _stale_open_deals(frame, tc, out)
        decided = frame["stage"].isin(["won", "lost"]).fillna(False).astype(bool)
        elsewhere = out.outcome_columns
        if len(frame) >= 10 and not decided.any() and elsewhere:
            out.warning(
                f"no deal is won or lost by the stage column (its {len(frame):,} deals are all "
                f'open or left out), but "{elsewhere[0]}" says won / lost: the stage mapped is '
                "a pipeline stage, so no win rate or lost deal can be measured",
                f'map stage = "{elsewhere[0]}" under [tables.opportunities.columns]',
                column=tc.columns.get("stage", "stage"),
            )
        dropped = (frame["stage"] == "drop").fillna(False).astype(bool)
        if dropped.any():
            # Deleted, archived or duplicate deals, left out on the user's word.
            recode = tc.values.get("stage", {})
            values = sorted(k for k, v in recode.items() if str(v).strip().lower() == "drop")
            out.info(
                f"{int(dropped.sum()):,} deals left out: their stage is "
                + ", ".join(f'"{v}"' for v in values)
                + ' (= "drop" under [tables.opportunities.values.stage])',
                "nothing to do; map those stages to won, lost or open to keep the deals",
                column=tc.columns.get("stage", "stage"),
                rows=_row_list(dropped),
            )
            frame = frame.loc[~dropped].copy()
    if tc.name == "opportunities" and "interval" in frame.columns:
        frame = _annual_amounts(frame, tc, out)
    if tc.name == "opportunities" and "type" in frame.columns:
        source_type = frame["type"]
        frame["type"] = _recode_type(source_type)
        _note_unknown_types(frame["type"], source_type, tc, out)
    if tc.name == "subscriptions":
        frame = _price_to_arr(frame, tc, out)
        if "arr" not in frame.columns and "mrr" not in frame.columns:
            out.error(
                "neither arr nor mrr is mapped",
                'add arr = "<column>" (annual) or mrr = "<column>" (monthly) under [tables.subscriptions.columns]',
            )
            raise _Stop
        if "arr" not in frame.columns:
            frame["arr"] = frame["mrr"] * 12.0
        elif "mrr" in frame.columns:
            frame["arr"] = frame["arr"].fillna(frame["mrr"] * 12.0)
        frame = frame.drop(columns=["mrr"], errors="ignore")
        if tc.movements:
            frame = _movements_to_subscriptions(frame, tc, out)
        empty = frame["arr"].isna()
        no_value = empty.copy()
        for source in ("arr", "mrr", "price"):
            if source in out.unreadable:  # filled with what is not a number: an error above
                no_value &= ~out.unreadable[source].reindex(frame.index, fill_value=False)
        if empty.any():
            frame["arr"] = frame["arr"].fillna(0.0)
        if no_value.any():
            out.warning(
                f"{no_value.sum():,} subscriptions have no ARR/MRR; they count as 0",
                "fill the value in the export",
                column=tc.columns.get("arr", tc.columns.get("mrr", "arr")),
                rows=_row_list(no_value),
            )
        if "status" in frame.columns:
            frame = _subscription_status(frame, tc, out)
        if "trial_end" in frame.columns:
            frame = _trial_ends(frame, tc, out)
        if "end_date" in frame.columns:
            backwards = frame["end_date"] < frame["start_date"]
            if backwards.any():
                out.error(
                    f"{backwards.sum():,} subscriptions end before they start",
                    "correct start_date / end_date in those rows",
                    column=tc.columns.get("end_date", "end_date"),
                    rows=_row_list(backwards),
                )
    if tc.name == "opportunities" and {"created_at", "closed_at"} <= set(frame.columns):
        backwards = frame["closed_at"] < frame["created_at"]
        if backwards.any():
            out.warning(
                f"{backwards.sum():,} deals close before they were created; their sales cycle is left out",
                "correct created_at / closed_at in those rows",
                column=tc.columns.get("closed_at", "closed_at"),
                rows=_row_list(backwards),
            )
    if tc.name == "opportunities" and "stage" in frame.columns:
        closed = frame["stage"].isin(["won", "lost"])
        if "closed_at" not in frame.columns:
            out.warning(
                "no closed_at column: won and lost deals are dated by created_at, and sales cycles cannot be measured",
                "map closed_at under [tables.opportunities.columns]",
            )
            frame["closed_at"] = frame["created_at"].where(closed)
        else:
            undated = closed & out.blank(frame, "closed_at")
            unreadable = closed & frame["closed_at"].isna() & ~undated  # an error above
            frame.loc[unreadable, "closed_at"] = frame.loc[unreadable, "created_at"]
            if undated.any():
                out.warning(
                    f"{undated.sum():,} won/lost deals have no closed_at; they are dated by created_at",
                    "fill closed_at in the export",
                    column=tc.columns.get("closed_at", "closed_at"),
                    rows=_row_list(undated),
                )
                frame.loc[undated, "closed_at"] = frame.loc[undated, "created_at"]
    if tc.name == "nps" and "score" in frame.columns:
        outside = (frame["score"] < 0) | (frame["score"] > 10)
        if outside.any():
            out.error(
                f"{outside.sum():,} NPS scores are outside 0-10",
                "NPS responses are 0-10; fix or remove those rows",
                column=tc.columns.get("score", "score"),
                rows=_row_list(outside),
            )
    return frame


def _latest_stage(frame: pd.DataFrame, tc: TableConfig, out: _Collector) -> pd.DataFrame:
    """``history = true``: the rows are each deal's stage changes (Salesforce's Opportunity
    History). Each deal is its latest row (by ``changed_at``, then the file's order): its
    stage, amount and close date now; created when its first row was, unless created_at is
    mapped. The stages its rows entered become the ``stage_history`` table (the stage funnel),
    kept on ``out.stage_history``."""
    key = "opportunity_id"
    rows = frame[frame[key].notna()].assign(_row=lambda f: np.arange(len(f)))
    if "changed_at" in rows.columns:
        # Reports list history newest first as often as oldest first: changes of one time
        # (or no time) follow the file's own direction.
        step = rows.groupby(key, sort=False)["changed_at"].diff()
        if (step < pd.Timedelta(0)).sum() > (step > pd.Timedelta(0)).sum():
            rows["_row"] = -rows["_row"]
    order = ["changed_at", "_row"] if "changed_at" in rows.columns else ["_row"]
    rows = rows.sort_values([key, *order], kind="stable")
    history = pd.DataFrame(
        {
            "opportunity_id": rows[key].to_numpy(),
            "stage": rows["stage"].astype("string").to_numpy()
            if "stage" in rows.columns
            else pd.NA,
            # To the day, as every date of the kit; the rows are in the order of the changes.
            "entered_at": rows["changed_at"].dt.normalize().to_numpy()
            if "changed_at" in rows.columns
            else pd.NaT,
        }
    )
    latest = rows.groupby(key, sort=False).tail(1).set_index(key)
    if "changed_at" in rows.columns:
        first = rows.groupby(key, sort=False)["changed_at"].min().dt.normalize()
        if "created_at" in latest.columns:
            created = rows.groupby(key, sort=False)["created_at"].min()
            latest["created_at"] = created.fillna(first).reindex(latest.index)
        else:
            latest["created_at"] = first.reindex(latest.index)
    deals = latest.reset_index().drop(columns=["_row", "changed_at"], errors="ignore")
    out.stage_history = history.dropna(subset=["stage"]).reset_index(drop=True)
    out.info(
        f"history = true: {len(rows):,} rows of stage changes became {len(deals):,} deals, each "
        "at its latest row"
        + (" (by changed_at)" if "changed_at" in rows.columns else "")
        + "; the stages they entered make the stage funnel",
        "nothing to do; check a few deals in the run's data snapshot",
    )
    return deals


def _repeated_keys(ids: pd.Series, setting: str, unit: str, out: _Collector):
    """The rows whose key other rows share, or None (with a note that ``setting`` has nothing
    to roll up) when every key is on one row."""
    repeated = ids.duplicated(keep=False) & ids.notna()
    if repeated.any():
        return repeated
    out.info(
        f"{setting} = true, but every {ids.name} is on one row: nothing to roll up",
        f"remove {setting} if the export has one row per {unit}",
    )
    return None


#: ``rollup = true``: an unmapped column whose values differ between one account's rows at
#: more than this share of the accounts with several rows is a field of the rows (the deal's
#: value, stage or title), not of the account, and is left out.
ROW_FIELD_SHARE = 0.1


def _roll_up_accounts(frame: pd.DataFrame, tc: TableConfig, out: _Collector) -> pd.DataFrame:
    """``rollup = true``: one account per account_id from a file with several rows per account
    (a deals report that repeats the company's fields on every deal row). Each column takes
    the account's most common filled value (case and spaces aside; ties: the earliest row's),
    ``created_at`` its earliest. Unmapped columns that differ between one account's rows are
    the rows' own fields, not the account's, and are left out (an outcome such as the deal's
    stage must not become a trait); mapped ones that disagree are warned about. The account
    keeps its first row's number."""
    key = "account_id"
    ids = frame[key]
    repeated = _repeated_keys(ids, "rollup", "account", out)
    if repeated is None:
        return frame
    mapped = set(tc.columns) | set(tc.constants)
    several = frame[repeated]
    accounts = int(several[key].nunique())
    first = frame[ids.notna()].drop_duplicates(key)
    rolled = pd.DataFrame({key: first[key]}, index=first.index)
    left_out, disagree = [], []
    disagreeing = np.zeros(len(frame), dtype=bool)
    for column in frame.columns:
        if column == key:
            continue
        values = frame[column]
        text = pd.api.types.is_string_dtype(values) or pd.api.types.is_object_dtype(values)
        folded = values.astype("string").str.strip().str.casefold() if text else values
        differ = folded[repeated].groupby(several[key], sort=False).nunique(dropna=True)
        varies = int((differ > 1).sum())
        if column not in mapped and varies > ROW_FIELD_SHARE * accounts:
            left_out.append(out.report.headers.get(column, column))
            continue
        if varies and column != "created_at":  # the earliest is taken: no disagreement
            disagreeing |= ids.isin(differ.index[differ.to_numpy() > 1]).to_numpy()
            example = differ.index[differ.to_numpy() > 1][0]
            seen = values[(ids == example).to_numpy()].dropna().astype(str).unique()[:3]
            disagree.append(
                f'{column} at {varies:,} accounts (e.g. "{example}": '
                + ", ".join(f'"{v}"' for v in seen)
                + ")"
            )
        if column == "created_at":
            rolled[column] = values.groupby(ids, sort=False).min().reindex(first[key]).to_numpy()
            continue
        filled = pd.DataFrame(
            {"id": ids, "key": folded, "order": np.arange(len(frame))}, index=frame.index
        ).dropna(subset=["id", "key"])
        counts = filled.groupby(["id", "key"], sort=False, dropna=True).agg(
            rows=("order", "size"), order=("order", "min")
        )
        chosen = (
            counts.reset_index()
            .sort_values(["id", "rows", "order"], ascending=[True, False, True], kind="stable")
            .drop_duplicates("id")
        )
        picked = values.iloc[chosen["order"].to_numpy()]
        value_of = pd.Series(picked.to_numpy(), index=chosen["id"].to_numpy())
        column_values = pd.Series(
            value_of.reindex(first[key].to_numpy()).to_numpy(), index=rolled.index
        )
        with contextlib.suppress(TypeError, ValueError):
            column_values = column_values.astype(values.dtype)
        rolled[column] = column_values
    out.info(
        f"rollup: {len(frame):,} rows read as {len(rolled):,} accounts ({accounts:,} of them on "
        "several rows); each column takes the account's most common filled value",
        "nothing to do",
    )
    if left_out:
        out.info(
            "columns that differ between one account's rows are fields of the rows (a deal's "
            "value, stage or title), not of the account, and are left out of the accounts: "
            + ", ".join(f'"{c}"' for c in left_out[:15])
            + (" ..." if len(left_out) > 15 else ""),
            "nothing to do; map them under [tables.opportunities] if they describe the deals",
        )
    if disagree:
        out.warning(
            "an account's rows disagree on " + "; ".join(disagree[:5]) + ": the account takes "
            "its most common value",
            "correct the export if an account's fields should agree on every row",
            rows=_row_list(pd.Series(disagreeing, index=frame.index)),
        )
    return rolled


def _roll_up_lines(frame: pd.DataFrame, tc: TableConfig, out: _Collector) -> pd.DataFrame:
    """``line_items = true``: rows sharing an opportunity_id become one deal. Amounts are summed;
    every other column must agree across a deal's lines (blanks aside) or it is an error."""
    key = "opportunity_id"
    ids = frame[key]
    repeated = _repeated_keys(ids, "line_items", "deal", out)
    if repeated is None:
        return frame
    lines = frame[repeated]
    groups = lines.groupby(key, sort=False)
    for column in frame.columns:
        if column in (key, "amount"):
            continue
        values = lines[column]
        if pd.api.types.is_string_dtype(values) or pd.api.types.is_object_dtype(values):
            values = values.astype("string").str.strip().str.lower()
        counts = values.groupby(lines[key], sort=False).nunique(dropna=True)
        differ = counts.index[counts.to_numpy() > 1]
        if len(differ) == 0:
            continue
        first = differ[0]
        seen = lines.loc[lines[key] == first, column].dropna().astype(str).unique()[:3]
        source = tc.columns.get(column, column)
        definition = TABLES[tc.name].column(column)
        optional = definition is None or not definition.required
        out.error(
            f"{len(differ):,} opportunity_id values have line items that disagree on {column} "
            f'(e.g. "{first}": ' + ", ".join(f'"{v}"' for v in seen) + ")",
            f"the lines of one deal must carry the same {column}: fix those rows in the export"
            + (
                f', or remove {column} = "{source}" from [tables.opportunities.columns]'
                if optional and column not in tc.constants
                else ""
            ),
            column=source,
            rows=_row_list(ids.isin(differ)),
            values=frame[column],
        )
    rolled = groups.first()
    if "amount" in frame.columns:
        rolled["amount"] = groups["amount"].sum(min_count=1)
    first_row = pd.Series(lines.index, index=lines.index).groupby(lines[key], sort=False).min()
    rolled = rolled.reset_index()
    rolled.index = first_row.reindex(rolled[key]).to_numpy()
    result = pd.concat([frame[~repeated], rolled[frame.columns]]).sort_index()
    for column in frame.columns:
        if result[column].dtype != frame[column].dtype:
            result[column] = result[column].astype(frame[column].dtype)
    out.info(
        f"line items rolled up: {int(repeated.sum()):,} rows of {len(rolled):,} deals became one "
        f"row per opportunity_id (amounts summed); {len(result):,} deals in all",
        "nothing to do; set line_items = false if each row should be a deal",
    )
    return result


_EMAIL = re.compile(r"[\w.+-]+@[\w-]+\.[\w.-]+")
#: A text column with email addresses in this share of its filled cells (a sample) is personal.
EMAIL_SHARE = 0.05


def _holds_emails(values: pd.Series) -> bool:
    """Whether a free-text column carries people's email addresses in its cells."""
    if not (pd.api.types.is_object_dtype(values) or pd.api.types.is_string_dtype(values)):
        return False
    # A sample first (the rows of a large export are not copied), then its filled cells.
    sample = values.sample(min(len(values), 4000), random_state=0).dropna().astype(str)
    sample = sample[sample.str.strip() != ""]
    if sample.empty:
        return False
    return bool(sample.str.contains(_EMAIL).mean() >= EMAIL_SHARE)


def _board_groups(raw: pd.DataFrame, tc, out) -> pd.DataFrame:
    """A board exported in groups (monday.com's "Export board to Excel": a group's title on a
    row of its own, the header repeated, a blank row between groups): the item rows, each with
    its group's title in ``tc.group_column``. The title just above the header (row
    ``header_row - 1``) is the first group's."""
    name = tc.group_column
    if name in raw.columns:
        out.error(
            f'group_column = "{name}" names a column the export already has',
            f"choose another name for group_column under [tables.{tc.name}]",
        )
        raise _Stop
    header = pd.Series([str(c).strip() for c in raw.columns], index=raw.columns)
    text = raw.astype("string").apply(lambda column: column.str.strip()).replace("", pd.NA)
    filled = text.notna().sum(axis=1)
    same = text.eq(header, axis=1).fillna(False).sum(axis=1)
    repeated = (same >= 2) & (same >= 0.6 * filled)
    title = (filled == 1) & ~repeated
    items = (filled > 0) & ~repeated & ~title
    first_title = text.bfill(axis=1).iloc[:, 0]
    group = first_title.where(title).ffill()
    above = _title_above_header(tc)
    if above is not None:
        group = group.fillna(above)
    out.info(
        f"read as a board in groups: {int(items.sum()):,} items in {int(title.sum()) + (above is not None):,} "
        f"groups; {int(title.sum()):,} group titles, {int(repeated.sum()):,} repeated headers and "
        f"{int((filled == 0).sum()):,} blank rows left out; each item's group is in "
        f'"{name}"'
        + (
            ""
            if group[items].notna().all()
            else f" ({int(group[items].isna().sum()):,} items above the first group title have none)"
        ),
        "nothing to do",
    )
    frame = raw[items.to_numpy(dtype=bool)].copy()
    frame[name] = group[items].astype(object).where(group[items].notna(), None)
    return frame


def _title_above_header(tc) -> str | None:
    """The one filled cell of the row just above the header of an Excel export, or None."""
    if tc.format != "excel" or tc.header_row < 2:
        return None
    try:
        above = pd.read_excel(
            tc.path,
            sheet_name=tc.sheet if tc.sheet is not None else 0,
            header=None,
            nrows=tc.header_row - 1,
            dtype=object,
        )
    except Exception:
        return None
    if len(above) < tc.header_row - 1:
        return None
    cells = [str(v).strip() for v in above.iloc[-1].tolist() if pd.notna(v) and str(v).strip()]
    return cells[0] if len(cells) == 1 else None


def _lost_flags(raw: pd.DataFrame, tc, out) -> list[str]:
    """``lost_when``: the rows whose named column holds one of the values, kept in
    ``out.lost_flag`` (read once the stages are); returns the source columns it reads."""
    by_norm = {}
    for column in raw.columns:
        by_norm.setdefault(norm_name(column), column)
    flag = pd.Series(False, index=raw.index)
    sources = []
    for name, texts in tc.lost_when.items():
        column = name if name in raw.columns else by_norm.get(norm_name(name))
        if column is None:
            out.error(
                f'lost_when names the column "{name}", which is not in the {tc.source_noun}',
                f"fix lost_when under [tables.{tc.name}]; the {tc.source_noun} has: "
                + ", ".join(f'"{c}"' for c in list(raw.columns)[:30]),
            )
            raise _Stop
        cells = raw[column].astype("string").str.strip().str.casefold()
        flag |= cells.isin(texts).fillna(False).astype(bool)
        sources.append(column)
    out.lost_flag = flag
    return sources


#: Column names of an archive flag: Odoo's "Active" (False for a lost, archived deal).
_ARCHIVE_NAME = re.compile(r"(?i)^\s*(?:is[\s_-]*)?(?:active|archived)\s*$")


def _archive_column(raw: pd.DataFrame, columns: list) -> tuple | None:
    """An unmapped yes / no column named like an archive flag ("Active", "Archived"):
    ``(column, the value that marks archived rows, those rows)``, or None."""
    for column in columns:
        if column not in raw.columns or not _ARCHIVE_NAME.match(str(column)):
            continue
        cells = raw[column].astype("string").str.strip().str.casefold()
        distinct = set(cells.dropna().unique()) - {""}
        if not distinct or not distinct <= {"true", "false", "yes", "no", "1", "0", "y", "n"}:
            continue
        off = {"false", "no", "0", "n"}
        archived = off if "active" in str(column).casefold() else distinct - off
        rows = cells.isin(list(archived)).fillna(False).astype(bool)
        if rows.any():
            value = raw[column][rows].astype("string").iloc[0]
            return str(column), str(value), rows
    return None


def _outcome_columns(raw: pd.DataFrame, columns: list) -> list[str]:
    """Unmapped columns of a deals export that say won or lost (Pipedrive's "Deal - Status":
    open / won / lost / deleted): where the mapped stage is a pipeline stage instead."""
    found = []
    for column in columns:
        values = raw[column].astype("string").str.strip().str.lower().dropna()
        distinct = set(values.unique()) - {""}
        if not distinct or len(distinct) > 8:
            continue
        if distinct & _WON and distinct & _LOST and len(distinct - _WON - _LOST - _OPEN) <= 2:
            found.append(str(column))
    return found


def _lost_by_flag(frame: pd.DataFrame, tc: TableConfig, out: _Collector) -> bool:
    """Deals that ``lost_when`` marks lost (a won deal stays won), with a note; without it, a
    warning when no deal is lost but an archive flag marks open deals (Odoo archives the
    opportunities it loses and leaves their stage as it was). True when either was said."""
    stage = frame["stage"]
    column = tc.columns.get("stage", "stage")
    if out.lost_flag is not None:
        flag = out.lost_flag.reindex(frame.index, fill_value=False).to_numpy(dtype=bool)
        turned = flag & stage.isin(["open"]).fillna(False).to_numpy(dtype=bool)
        won = flag & stage.isin(["won"]).fillna(False).to_numpy(dtype=bool)
        rule = ", ".join(
            f'"{k}" is ' + " or ".join(f'"{v}"' for v in vs) for k, vs in tc.lost_when.items()
        )
        if turned.any():
            frame.loc[turned, "stage"] = "lost"
        out.info(
            f"{int(turned.sum()):,} deals read as lost because {rule} (lost_when); their stage "
            "said open"
            + (f"; {int(won.sum()):,} won deals match it too and stay won" if won.any() else ""),
            "nothing to do",
            column=column,
        )
        return True
    if out.archive_column is None or stage.isin(["lost"]).any():
        return False
    name, value, rows = out.archive_column
    rows = rows.reindex(frame.index, fill_value=False).to_numpy(dtype=bool)
    archived_open = int((rows & stage.isin(["open"]).fillna(False).to_numpy(dtype=bool)).sum())
    if archived_open == 0:
        return False
    out.warning(
        f'no deal is lost by the stage column, but "{name}" is "{value}" on '
        f"{archived_open:,} deals it calls open: a CRM that archives the deals it loses (Odoo "
        "does, leaving their stage as it was) records the loss there, and read as open they "
        "are in no win rate",
        f'if archived deals were lost, set lost_when = {{ "{name}" = "{value}" }} under '
        "[tables.opportunities]",
        column=name,
    )
    return True


#: Open deals whose close date lies this long before the latest won or lost deal's are stale.
_STALE_DAYS = 180


def _stale_open_deals(frame: pd.DataFrame, tc: TableConfig, out: _Collector) -> None:
    """Warn when most open deals with a close date closed long before the latest decided
    deal: lost deals the stage does not say are lost (marked in another column), or a
    pipeline nobody closes. Read as open they are in no win rate."""
    if "closed_at" not in frame.columns:
        return
    stage, closed = frame["stage"], frame["closed_at"]
    if not pd.api.types.is_datetime64_any_dtype(closed):
        return
    decided = stage.isin(["won", "lost"]).fillna(False).to_numpy(dtype=bool)
    dated_open = (stage.isin(["open"]).fillna(False) & closed.notna()).to_numpy(dtype=bool)
    if not decided.any() or dated_open.sum() < 20:
        return
    latest = closed[decided].max()
    if pd.isna(latest):
        return
    stale = dated_open & (closed < latest - pd.Timedelta(days=_STALE_DAYS)).to_numpy(dtype=bool)
    if stale.sum() < 0.5 * dated_open.sum():
        return
    out.warning(
        f"{int(stale.sum()):,} of {int(dated_open.sum()):,} open deals with a close date closed "
        f"more than {_STALE_DAYS} days before the latest won or lost deal ({latest:%Y-%m-%d}): "
        "read as open they are in no win rate. Lost deals may be marked in another column "
        "(an archive flag, a status), or the pipeline is not kept closed",
        "if another column says which deals were lost, map it (stage = that column, or "
        'lost_when = { "<column>" = "<value>" } under [tables.opportunities]); nothing to do '
        "if these deals are still open",
        column=tc.columns.get("closed_at", "closed_at"),
        rows=_row_list(pd.Series(stale, index=frame.index)),
    )


def _recode_stage(stage: pd.Series, tc: TableConfig, out: _Collector) -> pd.Series:
    recode = tc.values.get("stage", {})
    text = stage.astype("string")
    mapped = per_distinct(text, lambda t: _stage_values(t, recode))
    unmapped = mapped.isna() & text.notna()
    if unmapped.any():
        counts = text[unmapped].value_counts()
        listing = ", ".join(
            f'"{v}" ({n:,} row{"" if n == 1 else "s"})' for v, n in counts.head(12).items()
        ) + (f" and {len(counts) - 12:,} more" if len(counts) > 12 else "")
        example = counts.index[0]
        gone = re.search(r"(?i)delet|archiv|remov|void|spam|duplicat|trash", str(example))
        out.error(
            f"{len(counts)} stage values are not mapped to won / lost / open: {listing}",
            "add them under [tables.opportunities.values.stage], e.g. "
            + (
                f'"{example}" = "drop" (those deals are left out)'
                if gone
                else f'"{example}" = "open" (or "drop" to leave those deals out)'
            ),
            column=tc.columns.get("stage", "stage"),
            rows=_row_list(unmapped),
            values=text,
        )
    return mapped


def _stage_values(text: pd.Series, recode: dict) -> pd.Series:
    lowered = {k.strip().lower(): v for k, v in recode.items()}
    mapped = text.map(
        lambda v: recode.get(v, lowered.get(str(v).strip().lower())) if v is not pd.NA else pd.NA
    )
    auto = text.str.lower().str.strip()
    mapped = mapped.where(mapped.notna(), auto.where(auto.isin(_WON | _LOST | _OPEN)))
    mapped = mapped.replace({v: "won" for v in _WON}).replace({v: "lost" for v in _LOST})
    return mapped.astype("string")


def _recode_type(deal_type: pd.Series) -> pd.Series:
    return per_distinct(deal_type.astype("string"), _type_values)


def _note_unknown_types(
    deal_type: pd.Series, source: pd.Series, tc: TableConfig, out: _Collector
) -> None:
    """Warn on deal types read as neither new business nor expansion, renewal or trial: where
    some deals are new business, these are left out of win rates, deal sizes and sales cycles
    as expansion deals are, which the user may not mean."""
    # Per distinct type (10M deals hold a handful): "contains trial" per row took 3 s.
    type_codes, type_values = pd.factorize(deal_type, use_na_sentinel=True)
    type_text = pd.Series(np.asarray(type_values, dtype=object), dtype="string")
    per_type = (
        type_text.isin(["new", "expansion", "renewal"]) | type_text.str.contains("trial", na=False)
    ).to_numpy(dtype=bool)
    present = type_codes >= 0
    known = pd.Series(
        present & per_type[np.where(present, type_codes, 0)] if len(per_type) else present,
        index=deal_type.index,
    )
    has_new = "new" in set(type_text.dropna())
    existing_type = type_text.isin(["expansion", "renewal"]).to_numpy(dtype=bool)
    existing = (
        present & existing_type[np.where(present, type_codes, 0)] if len(existing_type) else present
    )
    # Values read from their text ("self_serve_upgrade" as expansion): said, since a word in
    # a name decides whether the deals count in win rates and sales cycles. Decided once per
    # distinct value (10M deals hold a handful of types).
    codes, uniques = pd.factorize(source, use_na_sentinel=True)
    if len(uniques):
        distinct = pd.Series(np.asarray(uniques, dtype=object), dtype="string")
        mapped = _type_values(distinct)
        is_known = mapped.isin(["new", "expansion", "renewal"]) | mapped.str.contains(
            "trial", na=False
        )
        by_text = (is_known & (distinct.str.strip().str.lower() != mapped)).fillna(False)
        counts = np.bincount(codes[codes >= 0], minlength=len(uniques))
        pairs = [
            (str(distinct[i]), str(mapped[i]), int(counts[i]))
            for i in np.flatnonzero(by_text.to_numpy(dtype=bool))
            if counts[i]
        ]
        pairs.sort(key=lambda p: (-p[2], p[0]))
    else:
        pairs = []
    if pairs:
        listing = ", ".join(
            f'"{value}" as {as_} ({n:,} deal{"" if n == 1 else "s"})' for value, as_, n in pairs[:6]
        )
        more = f" and {len(pairs) - 6:,} more" if len(pairs) > 6 else ""
        out.info(
            f"deal types read from their text: {listing}{more}; only new business counts in win "
            "rates, deal sizes and sales cycles",
            "if a value means otherwise, recode it under [tables.opportunities.values.type] (a "
            'self-serve upgrade from a free plan wins a new customer: = "new" counts it as new '
            "business, closed the day it was created)",
            column=tc.columns.get("type", "type"),
        )
    blank = ~present
    if blank.any() and has_new and existing.any():
        # A few blanks are a note; enough to move a win rate (5% of deals), a warning.
        many = blank.sum() >= max(5, 0.05 * len(blank))
        say = out.warning if many else out.info
        n_blank = int(blank.sum())
        say(
            f"{n_blank:,} {'deal has' if n_blank == 1 else 'deals have'} no type: "
            "they count as new business, beside the "
            f"{int((deal_type == 'new').sum()):,} of type new (and not as the "
            f"{int(existing.sum()):,} expansion or renewal "
            "deals)",
            "fill in the type in the CRM, or if they are mostly renewals or expansions, map "
            "another column that tells (a pipeline) as type",
            column=tc.columns.get("type", "type"),
            rows=_row_list(pd.Series(blank, index=deal_type.index)),
        )
    if existing.any() and not has_new:
        # A product-led export's trial / expansion: no type says new, so the deals that are
        # not expansions or renewals are the new business (a won trial is a new customer).
        counts = source[~existing & present].astype("string")
        counts = counts.value_counts()
        if len(counts):
            listing = ", ".join(f'"{v}" ({n:,})' for v, n in counts.head(4).items())
            out.info(
                f"no deal has type new: the deals typed {listing} count as new business in win "
                f"rates, deal sizes and sales cycles, the {int(existing.sum()):,} expansion or "
                "renewal deals do not",
                "if some of those deals are sold to existing customers, recode them under "
                '[tables.opportunities.values.type] (= "expansion")',
                column=tc.columns.get("type", "type"),
            )
    unknown = pd.Series((~known.to_numpy(dtype=bool)) & present, index=deal_type.index)
    if not unknown.any():
        return
    counts = source[unknown].astype("string").value_counts()
    listing = ", ".join(
        f'"{v}" ({n:,} row{"" if n == 1 else "s"})' for v, n in counts.head(6).items()
    )
    if len(counts) > 6:
        listing += f" and {len(counts) - 6:,} more"
    effect = (
        "they are counted as neither, so they are left out of win rates, deal sizes and sales "
        "cycles, which count new business only"
        if has_new
        else "no deal has type new, so every deal that is not an expansion or renewal counts as "
        "new business, these too"
        if existing.any()
        else "no deal is new business, so every deal counts as new business, these too"
    )
    example = counts.index[0]
    # With no deal of type new, the most common unknown type is the likelier new business:
    # "Neugeschäft" = "expansion" as the example had made the win rate 59% instead of 23%.
    first, second = ("new", "expansion") if not has_new else ("expansion", "new")
    meaning = {"new": "deals that win a new customer", "expansion": "deals sold to customers"}
    out.warning(
        f"{int(unknown.sum()):,} {'deal has' if unknown.sum() == 1 else 'deals have'} a type "
        f"that is not new, expansion or renewal: {listing}; {effect}",
        f'recode each under [tables.opportunities.values.type], e.g. "{example}" = "{first}" '
        f'for {meaning[first]} (or = "{second}" for {meaning[second]})',
        column=tc.columns.get("type", "type"),
        rows=_row_list(unknown),
        values=source,
    )


#: Deal types read from their words (later kinds win: "Erneuerung" holds "neu" but renews).
#: German, French, Spanish, Italian and Dutch CRMs write them in their own language
#: ("Neugeschäft", "Bestandskunde", "Verlängerung").
_TYPE_WORDS = (
    ("new", r"new|neu|nouve|nuev|nuov|nieuw"),
    (
        "expansion",
        r"expan|upsell|up-sell|upgrade|cross|add-on|addon|existing|bestand|erweiter|"
        r"client existant|cliente existente",
    ),
    ("renewal", r"renew|verläng|erneuer|renouvel|renova|rinnov|verleng"),
)


def _type_values(deal_type: pd.Series) -> pd.Series:
    text = deal_type.astype("string").str.lower()
    out = pd.Series(pd.NA, index=deal_type.index, dtype="string")
    for kind, words in _TYPE_WORDS:
        out[text.str.contains(words, na=False)] = kind
    return out.where(out.notna(), deal_type.astype("string").str.lower())


# ---------------------------------------------------------------------------------------------
# Cross-table checks


def _billing_trials(rows: pd.DataFrame, tc, tables: dict, config) -> pd.DataFrame:
    """The trials table from a billing export's trial rows (:meth:`_Collector.keep_trials`):
    their account found as the subscriptions' is (``account_id_from``; what that lookup
    reports is said once, for the subscriptions), rows without one left out."""
    if tc.account_id_from is not None:
        target = tc.account_id_from[0]
        scratch = {"subscriptions": rows}
        if target in tables:
            scratch[target] = tables[target]
        configs = {"subscriptions": tc}
        if target in config.tables:
            configs[target] = config.tables[target]
        _look_up_account_ids(scratch, configs, ValidationReport())
        rows = scratch.get("subscriptions")
        if rows is None:
            return pd.DataFrame()
    if "account_id" not in rows:
        return pd.DataFrame()
    columns = [c.name for c in TABLES["trials"].columns]
    trials = pd.DataFrame({c: rows[c] for c in columns if c in rows})
    for column in ("trial_end", "end_date"):
        trials[column] = pd.to_datetime(trials[column])
    return trials.dropna(subset=["account_id", "start_date"]).reset_index(drop=True)


def _look_up_account_ids(
    tables: dict[str, pd.DataFrame], configs: dict[str, TableConfig], report: ValidationReport
) -> None:
    """``account_id_from = "<table>.<key>"``: each row's account_id is the one the other table
    gives its key. Rows whose key is blank or unknown are reported and left out."""
    for name, tc in configs.items():
        if tc.account_id_from is None or name not in tables:
            continue
        target, key = tc.account_id_from
        frame = tables[name]
        out = _Collector(report, name, tc.display_path)
        label = tc.columns.get(key, key)
        via = f"{target}.{key}"
        other = tables.get(target)
        if other is None or key not in other.columns or "account_id" not in other.columns:
            out.error(
                f"account_id cannot be looked up through {via}: the {target} table did not load",
                f"resolve the {target} problems reported above, then validate again",
                column=label,
            )
            del tables[name]
            continue
        pairs = other[[key, "account_id"]].dropna().drop_duplicates()
        if key == "domain":
            # A CRM keeps several domains of a company in one cell ("acme.com, acme.io"), and
            # a billing export may write either, in any case, behind "https://www.".
            pairs = _domain_pairs(pairs)
            frame = frame.assign(domain=_bare_domains(frame["domain"]))
        owners = pairs.groupby(key, sort=False)["account_id"].nunique()
        shared = owners.index[owners.to_numpy() > 1]
        by_name = target == "accounts"  # "accounts.name": rows that name their account
        # With account_id mapped too, only the rows without one are looked up by name.
        own = (
            frame["account_id"].astype("string")
            if by_name and "account_id" in frame.columns
            else pd.Series(pd.NA, index=frame.index, dtype="string")
        )
        has_own = own.notna().to_numpy(dtype=bool)
        ambiguous = pd.Series(False, index=frame.index)
        if by_name:
            # Two accounts of one name: the rows naming it cannot be told apart (left out).
            ambiguous = frame[key].isin(shared).fillna(False).astype(bool) & ~has_own
            pairs = pairs[~pairs[key].isin(shared)]
            shared = shared[:0]
        if len(shared):
            target_out = _Collector(report, target, configs[target].display_path)
            first = shared[0]
            seen = pairs.loc[pairs[key] == first, "account_id"].astype(str).unique()[:3]
            target_out.error(
                f"{len(shared):,} {key} values belong to more than one account (e.g. "
                f'"{first}": ' + ", ".join(f'"{v}"' for v in seen) + f"), so {name} rows "
                "keyed by them cannot be given an account",
                f"each {key} must belong to one account_id: fix those rows in the export",
                column=configs[target].columns.get(key, key),
                rows=_row_list(other[key].isin(shared)),
                values=other[key],
            )
            del tables[name]
            continue
        lookup = pairs.drop_duplicates(key).set_index(key)["account_id"]
        found = own.fillna(frame[key].map(lookup).astype("string"))
        blank = frame[key].isna() & ~has_own
        unknown = found.isna() & ~blank & ~ambiguous
        if by_name and unknown.any():
            found, unknown = _match_names(frame, key, other, found, unknown, ambiguous, out, label)
        if ambiguous.any():
            examples = ", ".join(f'"{v}"' for v in frame.loc[ambiguous, key].unique()[:3])
            out.warning(
                f"{_rows_have(int(ambiguous.sum()))} a {key} that several accounts share (e.g. "
                f"{examples}), so no one account: left out of every analysis",
                f"export the account id beside the {key} (and map account_id), or make the "
                "accounts' names unique",
                column=label,
                rows=_row_list(ambiguous),
                values=frame[key],
            )
        if unknown.any():
            matched = _match_id_spellings(
                frame, key, set(lookup.index), unknown, target, out, label
            )
            if matched is not frame:
                frame = matched
                found = frame[key].map(lookup).astype("string")
                unknown = found.isna() & ~blank
        present = int((~blank).sum())
        if present and int(unknown.sum()) == present:
            examples = ", ".join(f'"{v}"' for v in frame.loc[unknown, key].unique()[:3])
            out.error(
                f"none of the {present:,} {key} values are in {target} (e.g. {examples}), so no "
                "row can be given an account",
                f"map the same {key} in both tables: check {key} under [tables.{name}.columns] "
                f"and [tables.{target}.columns]",
                column=label,
            )
            del tables[name]
            continue
        if blank.any():
            out.warning(
                f"{_rows_have(int(blank.sum()))} no {key}, so no account: left out of every "
                "analysis",
                f"fill {key} in the export",
                column=label,
                rows=_row_list(blank),
            )
        # Keys that are in the other table, on rows without an account (a billing customer
        # never linked to the CRM), are not missing rows: say which they are.
        unlinked_keys = set(other.loc[other["account_id"].isna(), key].dropna()) - set(lookup.index)
        unlinked = unknown & frame[key].isin(unlinked_keys).to_numpy(dtype=bool)
        if unlinked.any():
            examples = ", ".join(f'"{v}"' for v in frame.loc[unlinked, key].unique()[:3])
            out.warning(
                f"{_rows_have(int(unlinked.sum()))} {'an' if key[0] in 'aeiou' else 'a'} {key} "
                f"whose {target} rows have no account_id (e.g. {examples}), so no account: "
                "left out of every analysis",
                f"fill account_id of those {target} rows in the export (the CRM id the billing "
                "system keeps for the customer)",
                column=label,
                rows=_row_list(unlinked),
                values=frame[key],
            )
        missing = unknown & ~unlinked
        # Deals naming a company the accounts table does not hold (a customer list beside a
        # pipeline of every prospect) are deals all the same: left out, the win rate would be
        # the customers' own (every one won at least once). They keep their company's name as
        # the account, as a deal whose account id the accounts table lacks does.
        as_own = missing & (by_name and name == "opportunities")
        if as_own.any():
            names = frame.loc[as_own, key].astype("string").str.strip()
            taken = set(lookup.to_numpy()) | set(other["account_id"].dropna().astype(str))
            names = names.where(~names.isin(taken), names + f" ({key})")
            found = found.copy()
            found.loc[as_own] = names
            examples = ", ".join(f'"{v}"' for v in frame.loc[as_own, key].unique()[:3])
            share = as_own.sum() / max(int((~blank).sum()), 1)
            out.warning(
                f"{_rows_have(int(as_own.sum()))} a {key} that is not in {target} "
                f"({share:.0%}; e.g. {examples}): each such company counts as an account of its "
                "own in the deal totals (win rate, sales cycle), with no traits, so the analyses "
                "by trait leave them out",
                f"export every company with a deal into the {target} table (prospects too), "
                f"or check {key} under [tables.{name}.columns]",
                column=label,
                rows=_row_list(as_own),
                values=frame[key],
            )
            unknown = unknown & ~as_own
            missing = missing & ~as_own
        if missing.any():
            examples = ", ".join(f'"{v}"' for v in frame.loc[missing, key].unique()[:3])
            out.warning(
                f"{_rows_have(int(missing.sum()))} {'an' if key[0] in 'aeiou' else 'a'} {key} "
                f"that is not in {target} (e.g. "
                f"{examples}), so no account: left out of every analysis",
                f"export the missing {target} rows or check {key} under [tables.{name}.columns]",
                column=label,
                rows=_row_list(missing),
                values=frame[key],
            )
        kept = ~(blank | unknown | ambiguous)
        frame = frame.assign(account_id=found)[kept]
        if key in tc.lookup_keys and TABLES[name].column(key) is None:
            frame = frame.drop(columns=[key])
        tables[name] = frame[["account_id", *(c for c in frame.columns if c != "account_id")]]
        looked = int((~has_own).sum())
        own_names = int(as_own.sum())
        out.info(
            f"account_id looked up through {via}"
            + (f" for the {looked:,} rows without one" if has_own.any() else "")
            + f": {int((kept & ~has_own).sum()) - own_names:,} of {looked:,} rows matched"
            + (f", {own_names:,} kept under their own {key}" if own_names else "")
            + ("" if kept.all() else f", {int((~kept).sum()):,} left out"),
        )
    for name, tc in configs.items():
        if name in tables and tc.lookup_keys and tc.account_id_from is None:
            # Keys mapped only for a lookup go; a table's own columns (accounts' name) stay.
            extra = [
                k
                for k in tc.lookup_keys
                if k in tables[name].columns and TABLES[name].column(k) is None
            ]
            tables[name] = tables[name].drop(columns=extra)


#: Legal forms left out when names are compared ("Acme, Inc." is "ACME").
_LEGAL_FORMS = re.compile(
    r"\b(?:inc|incorporated|llc|l\s?l\s?c|ltd|limited|gmbh|mbh|ag|co|corp|corporation|company|plc|"
    r"sa|sas|sarl|srl|spa|bv|nv|ab|as|oy|pty|pte|kg|ug|lp|llp|"
    r"sl|slu|sll|sau|s\s?coop|ltda|lda|eurl|sprl|bvba|aps|asa|oyj|kft|sro|"
    # Russian and Ukrainian forms, in Cyrillic and in Latin letters (ООО, "OOO", ИП, ТОВ).
    r"ооо|оао|зао|пао|ао|нао|ип|тов|пп|ooo|oao|zao|pao)\b"
)


#: Spellings of one legal form ("Inc." and "Incorporated" are one form; GmbH and AG are two).
_LEGAL_SAME = {
    "incorporated": "inc",
    "limited": "ltd",
    "corporation": "corp",
    "company": "co",
    "mbh": "gmbh",
    # Russian forms written in Latin letters are the same forms.
    "ooo": "ооо",
    "oao": "оао",
    "zao": "зао",
    "pao": "пао",
}


def _name_words(values: pd.Series) -> pd.Series:
    """A company name's words: accents, case and punctuation set aside, "&" as "and"."""
    import unicodedata

    def plain(v: str) -> str:
        # Accents set aside, letters of every script kept: a Cyrillic name that lost its
        # letters matched nothing, or collided with another on its digits alone.
        decomposed = unicodedata.normalize("NFKD", v)
        return "".join(c for c in decomposed if not unicodedata.combining(c))

    text = values.astype("string").map(plain, na_action="ignore")
    text = text.str.lower().str.replace("&", " and ", regex=False)
    # Dotted abbreviations are one word: "S.A." is "sa", "S. L." is "sl".
    text = text.str.replace(r"\b([^\W\d_])\.\s?(?=[^\W\d_]\b)", r"\1", regex=True)
    return text.str.replace(r"[\W_]+", " ", regex=True)


def legal_forms(values: pd.Series) -> pd.Series:
    """The legal forms a company name states, as a set of one spelling each ("Acme Inc." ->
    {"inc"}, "Mainbox GmbH & Co. KG" -> {"gmbh", "co", "kg"}; none -> empty)."""
    found = _name_words(values).str.findall(_LEGAL_FORMS)
    return found.map(
        lambda forms: (
            frozenset(_LEGAL_SAME.get(f.replace(" ", ""), f.replace(" ", "")) for f in forms)
            if isinstance(forms, list)
            else frozenset()
        )
    )


def _spelled_name(values: pd.Series) -> pd.Series:
    """A company name once case, accents, punctuation and spacing are set aside, its legal
    form kept ("ИП «Атлант-Трейд»" and 'ИП "Атлант-Трейд"' -> "ип атлант треид")."""
    text = _name_words(values).str.split().str.join(" ")
    return text.where(text.str.len() > 0)


def normal_name(values: pd.Series) -> pd.Series:
    """A company name as two exports of it agree on: accents, case, punctuation, "&"/"and",
    legal forms (Inc., GmbH, Ltd ...) and spacing set aside ("ACME, Inc." -> "acme")."""
    text = _name_words(values)
    text = text.str.replace(_LEGAL_FORMS, " ", regex=True)
    text = text.str.replace(r"\s+", " ", regex=True).str.strip()
    return text.where(text != "")


def _match_names(frame, key, accounts, found, unknown, ambiguous, out, label):
    """Rows whose name is not exactly an account's, matched on :func:`normal_name` when one
    account alone has that normal name; a note says how many and shows one. Names shared
    that way join ``ambiguous`` (in place)."""
    names = accounts[[key, "account_id"]].dropna()
    names = names.assign(_normal=normal_name(names[key])).dropna(subset=["_normal"])
    owners = names.groupby("_normal")["account_id"].nunique()
    unique = names[names["_normal"].map(owners) == 1].drop_duplicates("_normal")
    lookup = unique.set_index("_normal")["account_id"]
    normal = normal_name(frame.loc[unknown, key])
    hit = normal.map(lookup)
    # "Mainbox GmbH" is not "Mainbox AG": names that state two different legal forms are two
    # companies (a name that states none may be either).
    theirs = unique.set_index("_normal")[key]
    form = legal_forms(frame.loc[unknown, key])
    other = legal_forms(normal.map(theirs).fillna(""))
    clash = np.array(
        [bool(a) and bool(b) and a != b for a, b in zip(form, other, strict=True)], dtype=bool
    )
    hit = hit.where(~clash)
    # First the name as written once case, accents and punctuation are set aside, legal form
    # kept: 1C's ИП "Атлант-Трейд" is the CRM's ИП «Атлант-Трейд», not АО «Атлант-Трейд»,
    # which shares its name without the form (142 customers were "several accounts").
    spelled_lookup = _unique_ids(_spelled_name(names[key]), names["account_id"])
    exact = _spelled_name(frame.loc[unknown, key]).map(spelled_lookup)
    hit = exact.where(exact.notna(), hit)
    shared = (normal.map(owners).fillna(0).to_numpy() > 1) & exact.isna().to_numpy()
    ambiguous.loc[normal.index[shared]] = True
    matched = hit.notna()
    if matched.any():
        rows = matched.index[matched.to_numpy()]
        found = found.copy()
        found.loc[rows] = hit[matched].astype("string")
        first = rows[0]
        their = names.drop_duplicates("account_id").set_index("account_id").loc[hit[first], key]
        out.info(
            f"{len(rows):,} rows name their account differently from the accounts table; each "
            "was matched to the one account whose name is the same once case, accents, "
            f'punctuation and legal forms (Inc., GmbH, Ltd ...) are set aside (e.g. "{frame.loc[first, key]}" '
            f'-> "{their}")',
            "nothing to do; check the rows if two companies' names differ only that way",
            column=label,
            rows=rows,
            values=frame[key],
        )
    unknown = found.isna() & frame[key].notna() & ~ambiguous
    return found, unknown


_SALESFORCE_ID = re.compile(r"[0-9A-Za-z]{15}(?:[0-9A-Za-z]{3})?")
_SALESFORCE_SUFFIX = "ABCDEFGHIJKLMNOPQRSTUVWXYZ012345"


def _salesforce_suffix(short: str) -> str:
    """The three characters Salesforce appends to a 15-character id to make it safe in any case:
    for each five characters, which of them are capitals, written as one letter or digit."""
    return "".join(
        _SALESFORCE_SUFFIX[sum(1 << i for i, c in enumerate(short[k : k + 5]) if "A" <= c <= "Z")]
        for k in (0, 5, 10)
    )


def _salesforce_ids(values: pd.Series, known) -> dict[str, str]:
    """Salesforce exports an id either with 18 characters (safe in any case) or with 15 (case
    sensitive): the 18-character id is the 15-character one plus a checksum of three. When the
    referenced ids look like Salesforce ids (letters and digits only, 15 or 18 characters),
    each unmatched 15-character value whose 18-character id is among them (case counts) -> that
    id, and each unmatched 18-character value whose first 15 characters are among them and
    whose last three are their checksum -> those 15 characters."""
    candidates = [
        v
        for v in values.dropna().astype(str).unique()
        if len(v) in (15, 18) and _SALESFORCE_ID.fullmatch(v)
    ]
    if not candidates:
        return {}
    ids = pd.Series(list(known), dtype=object).dropna().astype(str)
    if ids.empty or not ids.str.fullmatch(_SALESFORCE_ID.pattern).all():
        return {}
    known_text = set(ids)
    matches = {}
    for v in candidates:
        if v in known_text:
            continue
        if len(v) == 15 and v + _salesforce_suffix(v) in known_text:
            matches[v] = v + _salesforce_suffix(v)
        elif len(v) == 18 and v[:15] in known_text and v[15:] == _salesforce_suffix(v[:15]):
            matches[v] = v[:15]
    return matches


def _match_salesforce_ids(
    frame: pd.DataFrame,
    column: str,
    known,
    unmatched: pd.Series,
    target: str,
    out: _Collector,
    label: str,
    note: bool = True,
) -> pd.DataFrame:
    """Rewrite the 15-character Salesforce ids of ``frame[column]`` (among the ``unmatched``
    rows) to the 18-character ids of ``known`` they are short for, with a note naming the rows
    (unless ``note`` is false). Returns ``frame`` itself when nothing was rewritten."""
    values = frame[column]
    matches = _salesforce_ids(values[unmatched.to_numpy(dtype=bool)], known)
    if not matches:
        return frame
    short = _matched_rows(values, matches)
    here, there = next(iter(matches.items()))
    n = int(short.sum())
    if note:
        size, other = (15, 18) if len(here) == 15 else (18, 15)
        out.info(
            (
                f"1 row carries a {size}-character Salesforce id; it was matched"
                if n == 1
                else f"{n:,} rows carry {size}-character Salesforce ids; each was matched"
            )
            + (
                f" to the 18-character id in {target} that starts with it"
                if size == 15
                else f" to the 15-character id in {target} it is the case-safe form of"
            )
            + f' (e.g. "{here}" -> "{there}")',
            "nothing to do; to silence this, export the 18-character ids in every table (in "
            "Salesforce, a formula field CASESAFEID(Id))",
            column=label,
            rows=_row_list(short),
            values=values,
        )
    return _rewrite_ids(frame, column, short, matches)


def _matched_rows(values: pd.Series, matches: dict) -> pd.Series:
    """Rows of ``values`` whose id is a key of ``matches`` (an id written another way)."""
    return values.isin(set(matches)).fillna(False).astype(bool)


def _rewrite_ids(frame: pd.DataFrame, column: str, rows: pd.Series, matches: dict):
    """``frame`` with the ids of ``rows`` in ``column`` rewritten to the ids ``matches`` gives."""
    values = frame[column]
    rewritten = values.astype(object).where(~rows, values[rows].astype(str).map(matches))
    return frame.assign(**{column: rewritten.astype(values.dtype)})


#: A GUID (8-4-4-4-12 hex digits), with or without braces: Dynamics 365 writes "{0A1B...}" in
#: capitals, billing systems the same id in lower case without braces.
_GUID = re.compile(
    r"(\{)?[0-9A-Fa-f]{8}-[0-9A-Fa-f]{4}-[0-9A-Fa-f]{4}-[0-9A-Fa-f]{4}-[0-9A-Fa-f]{12}(?(1)\})"
)


def _guid_key(text: str) -> str:
    return text.strip("{}").lower()


def _guid_ids(values: pd.Series, known) -> dict[str, str]:
    """When the referenced ids are all GUIDs (with or without braces, any case), each
    unmatched GUID value -> the referenced id that is the same GUID once braces and case are
    set aside. Two referenced ids that differ only that way are two records: a value matching
    both matches neither."""
    candidates = [v for v in values.dropna().astype(str).unique() if _GUID.fullmatch(v)]
    if not candidates:
        return {}
    ids = pd.Series(list(known), dtype=object).dropna().astype(str)
    if ids.empty or not ids.str.fullmatch(_GUID.pattern).all():
        return {}
    keys = ids.map(_guid_key)
    unique = ~keys.duplicated(keep=False)
    lookup = dict(zip(keys[unique], ids[unique], strict=True))
    known_text = set(ids)
    return {
        v: lookup[_guid_key(v)]
        for v in candidates
        if v not in known_text and _guid_key(v) in lookup
    }


def _match_guids(
    frame: pd.DataFrame,
    column: str,
    known,
    unmatched: pd.Series,
    target: str,
    out: _Collector,
    label: str,
    note: bool = True,
) -> pd.DataFrame:
    """Rewrite the GUIDs of ``frame[column]`` (among the ``unmatched`` rows) written in another
    case or without braces to the ids of ``known`` they are, with a note naming the rows
    (unless ``note`` is false). Returns ``frame`` itself when nothing was rewritten."""
    values = frame[column]
    matches = _guid_ids(values[unmatched.to_numpy(dtype=bool)], known)
    if not matches:
        return frame
    other = _matched_rows(values, matches)
    here, there = next(iter(matches.items()))
    n = int(other.sum())
    if note:
        out.info(
            ("1 row carries a GUID" if n == 1 else f"{n:,} rows carry GUIDs")
            + f" written in another case or without the braces of the ids in {target}; "
            + ("it was" if n == 1 else "each was")
            + f' matched to the id that is the same GUID (e.g. "{here}" -> "{there}")',
            "nothing to do; to silence this, export the ids written the same way in both tables",
            column=label,
            rows=_row_list(other),
            values=values,
        )
    return _rewrite_ids(frame, column, other, matches)


def _match_id_spellings(
    frame: pd.DataFrame,
    column: str,
    known,
    unmatched: pd.Series,
    target: str,
    out: _Collector,
    label: str,
    note: bool = True,
) -> pd.DataFrame:
    """Keys of ``frame[column]`` that are ``known`` ids written another way: Salesforce ids of
    15 and 18 characters, GUIDs in another case or without braces (see :func:`_match_guids`).
    Returns ``frame`` itself when nothing was rewritten."""
    frame = _match_salesforce_ids(frame, column, known, unmatched, target, out, label, note)
    return _match_guids(frame, column, known, unmatched, target, out, label, note)


def _rows_have(n: int) -> str:
    return "1 row has" if n == 1 else f"{n:,} rows have"


def _several_accounts(values: pd.Series, known: set) -> str | None:
    """The separator when unmatched account cells list several known accounts ("123;456"),
    as CRM exports of associations do; else None."""
    text = values.dropna().astype(str)
    for separator in (";", ",", "|"):
        listed = text[text.str.contains(separator, regex=False)]
        if listed.empty:
            continue
        parts = listed.str.split(separator).explode().str.strip()
        if parts.isin({str(k) for k in known}).mean() >= 0.5:
            return separator
    return None


def _names_accounts(values: pd.Series, accounts: pd.DataFrame) -> float:
    """The share of ``values`` (distinct, compared ignoring case and spaces) that are account
    names, when it is at least half; else 0."""
    if "name" not in accounts.columns:
        return 0.0
    names = set(accounts["name"].dropna().astype(str).str.strip().str.casefold())
    distinct = pd.Series(values.dropna().unique()).astype(str).str.strip().str.casefold()
    share = float(distinct.isin(names).mean()) if len(distinct) else 0.0
    return share if share >= 0.5 else 0.0


def _check_references(
    tables: dict[str, pd.DataFrame], configs: dict[str, TableConfig], report: ValidationReport
):
    accounts = tables.get("accounts")
    if accounts is None or "account_id" not in accounts.columns:
        return
    values = accounts["account_id"].dropna().unique()
    known = set(values)
    # isin with an Index: with the set it turned a million ids into an array on every call.
    known_index = pd.Index(values)
    for name, frame in list(tables.items()):
        if name == "accounts" or "account_id" not in frame.columns:
            continue
        out = _Collector(report, name, configs[name].display_path)
        col = configs[name].columns.get("account_id", "account_id")
        # Masks from nullable columns are <NA> where a value is missing; NA is "no".
        missing = frame["account_id"].isna().astype(bool)
        unknown = (~frame["account_id"].isin(known_index)).fillna(False).astype(bool) & ~missing
        if unknown.any():
            # An account looked up through another table's key was matched (and noted) there.
            note = configs[name].account_id_from is None
            matched = _match_id_spellings(
                frame, "account_id", known, unknown, "accounts", out, col, note
            )
            if matched is not frame:
                frame = tables[name] = matched
                unknown = (~frame["account_id"].isin(known_index)).fillna(False).astype(
                    bool
                ) & ~missing
        present = (~missing).sum()
        padded = _zero_padding(frame.loc[unknown, "account_id"], known)
        if present > 0 and unknown.sum() == present:
            examples = ", ".join(f'"{v}"' for v in frame.loc[unknown, "account_id"].unique()[:3])
            fix = (
                f"map the same key in both tables: check account_id under "
                f"[tables.{name}.columns] and [tables.accounts.columns]"
            )
            by_name = _names_accounts(frame.loc[unknown, "account_id"], accounts)
            if by_name:
                # Pipedrive's deals name their organization; the accounts' key is an id.
                fix = (
                    f"these are the accounts' names ({by_name:.0%} of them match a name): set "
                    f'account_id_from = "accounts.name" under [tables.{name}] and map name = '
                    f'"{col}" under [tables.{name}.columns] instead of account_id'
                )
            out.error(
                f"none of the {present:,} account_id values match the accounts table (e.g. "
                f"{examples})" + (padded[0] if padded else ""),
                padded[1] if padded else fix,
                column=col,
            )
            continue
        if name == "opportunities" and "stage" in frame.columns:
            # A deal with no stage (reported already) is neither open nor closed here.
            is_open = frame["stage"].eq("open").fillna(False).astype(bool)
            is_closed = frame["stage"].isin(["won", "lost"]).fillna(False).astype(bool)
            if (missing & is_open).any():
                out.warning(
                    f"{(missing & is_open).sum():,} open deals have no account; they count in pipeline totals only",
                    "fill the account in the CRM export if these deals should be analysed",
                    column=col,
                    rows=_row_list(missing & is_open),
                )
            closed_missing = missing & is_closed
            if closed_missing.any():
                out.warning(
                    f"{closed_missing.sum():,} won/lost deals have no account; they are left out of account analyses",
                    "fill the account in the export",
                    column=col,
                    rows=_row_list(closed_missing),
                )
        elif missing.any():
            detail = _unlinked_arr(frame, missing, name, report)
            out.warning(
                f"{missing.sum():,} rows have no account_id and are left out{detail}",
                "fill account_id in the export",
                column=col,
                rows=_row_list(missing),
            )
            # Left out here, so that the row counts say so ("616 rows -> 561 subscriptions").
            frame = tables[name] = frame.loc[~missing.to_numpy(dtype=bool)]
            unknown = unknown.loc[frame.index]
        if unknown.any() and configs[name].account_id_from is None:
            # (Keys looked up through another table were reported by that lookup.)
            examples = ", ".join(f'"{v}"' for v in frame.loc[unknown, "account_id"].unique()[:3])
            share = unknown.sum() / max(present, 1)
            listing = _several_accounts(frame.loc[unknown, "account_id"], known)
            fix = "export the missing accounts or check the key mapping"
            if padded:
                fix = padded[1]
            elif listing:
                fix = (
                    f'some cells list several accounts separated by "{listing}": map a column '
                    "with one account per deal instead (HubSpot: Associated Company IDs "
                    "(Primary)), or keep one account per cell in the export"
                )
            fate = (
                "they count in the deal totals (win rate, sales cycle) under that id, with no "
                "traits, so the analyses by trait leave them out"
                if name == "opportunities"
                else "they are left out of account analyses"
                + _unlinked_arr(frame, unknown, name, report)
            )
            out.warning(
                f"{unknown.sum():,} rows ({share:.0%}) refer to accounts that are not in the "
                f"accounts table (e.g. {examples}); {fate}" + (padded[0] if padded else ""),
                fix,
                column=col,
                rows=_row_list(unknown),
                values=frame["account_id"],
            )
    deals = tables.get("opportunities")
    roles = tables.get("deal_roles")
    if roles is not None and deals is not None and "opportunity_id" in roles.columns:
        out = _Collector(report, "deal_roles", configs["deal_roles"].display_path)
        deal_ids = set(deals["opportunity_id"].dropna())
        label = configs["deal_roles"].columns.get("opportunity_id", "opportunity_id")
        unknown = (~roles["opportunity_id"].isin(deal_ids)).fillna(False).astype(bool)
        if unknown.any():
            matched = _match_id_spellings(
                roles, "opportunity_id", deal_ids, unknown, "opportunities", out, label
            )
            if matched is not roles:
                roles = tables["deal_roles"] = matched
                unknown = (~roles["opportunity_id"].isin(deal_ids)).fillna(False).astype(bool)
        if unknown.all() and len(roles):
            out.error(
                "none of the opportunity_id values match the opportunities table",
                "map the same deal key in both tables",
                column=configs["deal_roles"].columns.get("opportunity_id", "opportunity_id"),
            )
        elif unknown.any():
            out.warning(
                f"{unknown.sum():,} roles refer to unknown deals and are left out",
                "check the opportunity_id mapping",
                column=configs["deal_roles"].columns.get("opportunity_id", "opportunity_id"),
                rows=_row_list(unknown),
            )


def _zero_padding(unknown: pd.Series, known: set) -> tuple[str, str] | None:
    """When unmatched keys match an account once leading zeros are ignored ("001" vs "1"), the
    sentence that says so and the fix; else None."""
    if unknown.empty:
        return None
    by_stripped = {}
    for key in known:
        by_stripped.setdefault(str(key).lstrip("0") or "0", key)
    distinct = pd.Series(unknown.dropna().unique()).astype(str)
    matches = {
        v: by_stripped[v.lstrip("0") or "0"]
        for v in distinct
        if (v.lstrip("0") or "0") in by_stripped
    }
    if not matches or len(matches) < 0.5 * len(distinct):
        return None
    here, there = next(iter(matches.items()))
    rows = int(unknown.astype(str).isin(set(matches)).sum())
    return (
        f"; {rows:,} of them differ from an account id only by leading zeros "
        f'("{here}" here, "{there}" in accounts)',
        "the ids lost or gained leading zeros in one export (a spreadsheet that opens a CSV drops "
        "them): export both tables again with the ids kept as text",
    )


# ---------------------------------------------------------------------------------------------
# Attributes


@dataclass
class AttributeSpec:
    """Candidate ICP predictors among the account columns.

    ``categorical`` and ``numeric`` are firmographic / technographic attributes known before a
    deal (usable for lead scoring); ``behavioural`` are post-sale signals (usage, NPS, survey
    answers) usable to describe best customers but never to score leads.
    """

    categorical: list[str] = field(default_factory=list)
    numeric: list[str] = field(default_factory=list)
    behavioural: list[str] = field(default_factory=list)
    excluded: dict[str, str] = field(default_factory=dict)  # column -> why it is not a candidate
    # Candidates that are part of the contract (seats, plan): column -> why. They stay
    # predictors of winning and retention but never explain best-customer status (see
    # :mod:`icp_research.data.trust`).
    contract: dict[str, str] = field(default_factory=dict)
    # Multi-select columns expanded into yes/no attributes (one per item): column ->
    # :class:`~icp_research.data.multiselect.MultiSelect`.
    multi_select: dict = field(default_factory=dict)

    @property
    def all(self) -> list[str]:
        return self.categorical + self.numeric

    def multi_select_item(self, name: str) -> dict | None:
        """For an attribute expanded from a multi-select column, how a lead's cell is read:
        ``{"column", "source", "separator", "item"}``; None for any other attribute."""
        for selection in self.multi_select.values():
            item = selection.attributes().get(name)
            if item is not None:
                return {
                    "column": selection.column,
                    "source": selection.source,
                    "separator": selection.separator,
                    "item": item,
                }
        return None

    def to_dict(self) -> dict:
        return {
            "categorical": self.categorical,
            "numeric": self.numeric,
            "behavioural": self.behavioural,
            "excluded": self.excluded,
            "contract": self.contract,
            "multi_select": {k: v.to_dict() for k, v in self.multi_select.items()},
        }

    @classmethod
    def from_dict(cls, data: dict) -> AttributeSpec:
        from icp_research.data.multiselect import MultiSelect

        return cls(
            list(data.get("categorical", [])),
            list(data.get("numeric", [])),
            list(data.get("behavioural", [])),
            dict(data.get("excluded", {})),
            dict(data.get("contract", {})),
            {k: MultiSelect.from_dict(v) for k, v in (data.get("multi_select") or {}).items()},
        )


NON_ATTRIBUTES = {"account_id", "name", "created_at", "arr", "mrr"}
# Account columns that identify a company on the web rather than describe it (kept out of the
# predictors unless listed under [attributes]).
_IDENTIFIER_NAME = re.compile(
    r"(?:^|_)(?:website|url|homepage|linkedin\w*|(?:web_)?domain(?:_name)?)$"
)


# Account columns named like a key (``hubspot_company_id``, ``stripe_customer_uuid``, ``ID``).
_KEY_NAME = re.compile(r"(?:^|[_\s.])(?:id|uuid|guid|key|pk)$", re.IGNORECASE)


def _id_text(series: pd.Series) -> pd.Series:
    """Cells as the text of an id: a number read from an id column (5012424911.0) as its digits."""
    values = series.dropna()
    if pd.api.types.is_numeric_dtype(values):
        number = pd.to_numeric(values, errors="coerce")
        whole = number.notna() & (number == number.round())
        text = values.astype(str)
        text[whole] = number[whole].map(lambda v: str(int(v)))
        return text.str.strip()
    return values.astype("string").str.strip().astype(object)


def _unlinked_arr(frame: pd.DataFrame, rows: pd.Series, name: str, report) -> str:
    """Rows of a table left out for want of a known account: counted in ``report.unlinked``
    (for subscriptions with their ARR, so that the overview can say what its ARR leaves out),
    and the words that say so in a warning ("" when they carry no ARR)."""
    rows = pd.Series(np.asarray(rows, dtype=bool), index=frame.index)
    record = report.unlinked.setdefault(name, {"rows": 0})
    record["rows"] += int(rows.sum())
    if name != "subscriptions" or "arr" not in frame.columns:
        return ""
    running = rows.copy()
    if "end_date" in frame.columns:
        running &= frame["end_date"].isna().to_numpy(dtype=bool)
    arr = float(pd.to_numeric(frame.loc[running, "arr"], errors="coerce").sum())
    record["running"] = record.get("running", 0) + int(running.sum())
    record["arr"] = record.get("arr", 0.0) + arr
    if not arr > 0:
        return ""
    return (
        f" ({int(running.sum()):,} of them with no end date, {arr:,.0f} ARR that the reports' "
        "ARR does not count)"
    )


def account_references(accounts: pd.DataFrame) -> dict[str, pd.Series]:
    """Account columns whose cells name another account of the table (a parent company).

    HubSpot's "Parent Company", Salesforce's "Parent Account": filled for subsidiaries, with the
    record id of the parent. Such a column is a link between accounts, not a trait (its numbers
    are ids), and the accounts that share a parent are one customer group. Returns column ->
    the referenced id of each filled row (index: source rows), for columns whose filled cells
    (two at least) are all account ids other than the row's own.
    """
    if "account_id" not in accounts:
        return {}
    raw = accounts["account_id"].dropna()
    # The ids as text once, cheaply: the loader's ids are stripped text already. Looked up in
    # one hash index built once: ``glance.isin(set)`` turned the set of a million ids into an
    # array on every column (1.5 s each, 22 s a load at 10M deals).
    text_ids = raw.astype(object) if not pd.api.types.is_numeric_dtype(raw) else _id_text(raw)
    id_index = pd.Index(pd.unique(np.asarray(text_ids, dtype=object)))

    def share_known(values: pd.Series) -> float:
        found = id_index.get_indexer(np.asarray(values, dtype=object)) >= 0
        return float(found.mean()) if len(found) else 0.0

    canonical = {c.name for c in TABLES["accounts"].columns}
    glanced, by_name = [], {}
    names = None
    for name in accounts.columns:
        series = accounts[name]
        if name in canonical or pd.api.types.is_datetime64_any_dtype(series):
            continue
        if pd.api.types.is_bool_dtype(series) or str(series.dtype) == "boolean":
            continue
        filled = series.dropna()
        if len(filled) < 2:
            continue
        glance = _id_text(filled.iloc[:200])
        if share_known(glance) >= _reference_share(name):
            glanced.append(name)  # most columns: a glance at the first cells settles it
        elif _PARENT_NAME.search(str(name)) and "name" in accounts:
            # Salesforce's "Parent Account" and Odoo's "Parent Company" in a report hold the
            # parent's name, not its id: linked by the accounts' names (those only one
            # account has).
            if names is None:
                names = _unique_ids(_spelled_name(accounts["name"]), accounts["account_id"])
            if _spelled_name(glance).isin(names.index).mean() >= _reference_share(name):
                glanced.append(name)
                by_name[name] = names
    if not glanced:
        return {}
    own = accounts["account_id"].astype("string").str.strip()
    own_index = pd.Index(pd.unique(own.dropna().to_numpy(dtype=object)))
    row_of = pd.Series(own.index, index=own.to_numpy()).groupby(level=0).first()
    found: dict[str, pd.Series] = {}
    for name in glanced:
        series = accounts[name]
        text = _id_text(series)
        if name in by_name:
            linked = _spelled_name(text).map(by_name[name])
            text = linked.where(linked.notna(), text)
        known = pd.Series(own_index.get_indexer(text.to_numpy(dtype=object)) >= 0, index=text.index)
        if len(text) < 2 or known.mean() < _reference_share(name):
            continue
        present = text[known]
        if len(present) < 2 or (present == own.reindex(present.index)).any():
            continue
        # A parent heads its group: most parents named have the cell blank themselves (a
        # count such as seats, which small numeric ids can also match, is filled for them).
        parents = row_of.reindex(present.unique())
        if series.reindex(parents.to_numpy()).isna().mean() < 0.5:
            continue
        # A parent the export lacks (deleted, or not exported) still makes one group of the
        # accounts naming it (a first user's 57 such accounts named 15 parents); said by
        # _account_links.
        found[name] = text
    return found


#: Share of a column's filled cells that must be ids of other accounts for it to link them:
#: nearly all, or half when its name says parent ("parent_id", "Parent Account ID"), where a
#: few parents are deleted records (a sync keeps their ids on the subsidiaries).
_REFERENCE_SHARE = 0.9
_PARENT_NAME = re.compile(r"(?i)parent|mutter|société mère|casa matriz|ultimate")


def _unique_ids(keys: pd.Series, ids: pd.Series) -> pd.Series:
    """Account ids (as stripped text) by key, for the keys only one account has."""
    frame = pd.DataFrame({"key": keys, "id": ids.astype("string").str.strip()}).dropna()
    owners = frame.groupby("key")["id"].nunique()
    frame = frame[frame["key"].map(owners) == 1].drop_duplicates("key")
    return pd.Series(frame["id"].to_numpy(dtype=object), index=frame["key"].to_numpy(dtype=object))


def _reference_share(name) -> float:
    return 0.5 if _PARENT_NAME.search(str(name)) else _REFERENCE_SHARE


def account_groups(accounts: pd.DataFrame) -> tuple[str, dict]:
    """The accounts linked into groups by a parent-company column (:func:`account_references`):
    ``(column, {account id: the id heading its group})`` for the accounts of groups of two or
    more, the head included; ``("", {})`` without such a column. Ids as text."""
    references = account_references(accounts)
    if not references:
        return "", {}
    name, refs = next(iter(references.items()))
    own = accounts["account_id"].astype("string").str.strip()
    parent = dict(zip(own.reindex(refs.index), refs, strict=True))
    head = {}
    for account in parent:
        top, seen = account, set()
        while top in parent and top not in seen:  # a loop of parents ends where it closes
            seen.add(top)
            top = parent[top]
        head[account] = top
    for top in set(head.values()):
        head.setdefault(top, top)
    # Only groups of two accounts or more: an account alone under a parent the export lacks
    # is an account of its own.
    known = set(own.dropna())
    size = pd.Series(list(head.values())).value_counts()
    members = {top: int(size[top]) - (top not in known) for top in size.index}
    return name, {a: top for a, top in head.items() if members[top] >= 2 and a in known}


def _domain_key(series: pd.Series) -> pd.Series:
    """A website or domain as one company writes it: no scheme, www., path or case."""
    text = series.dropna().astype("string").str.strip().str.lower()
    text = text.str.replace(r"^[a-z]+://", "", regex=True).str.replace(r"^www\.", "", regex=True)
    text = text.str.replace(r"[/?#].*$", "", regex=True)
    return text[text.str.len() > 0].astype(object)


#: Email providers' domains: a product-led export's workspaces signed up with gmail.com are
#: not one company.
FREE_MAIL_DOMAINS = frozenset(
    """gmail.com googlemail.com outlook.com hotmail.com hotmail.co.uk live.com msn.com yahoo.com
    yahoo.co.uk yahoo.fr yahoo.de ymail.com icloud.com me.com mac.com aol.com proton.me
    protonmail.com gmx.de gmx.net gmx.com web.de mail.com mail.ru yandex.ru yandex.com qq.com
    163.com 126.com naver.com zoho.com fastmail.com hey.com t-online.de orange.fr free.fr
    laposte.net libero.it btinternet.com comcast.net""".split()  # noqa: SIM905
)


def _duplicate_domains(accounts: pd.DataFrame, name: str, out: _Collector) -> None:
    """Warn when several account records share one domain: one company split in two (an email
    provider's domain, gmail.com, is no company and is not counted)."""
    if "account_id" not in accounts:
        return
    key = _domain_key(accounts[name])
    key = key[~key.isin(FREE_MAIL_DOMAINS)]
    shared = key[key.duplicated(keep=False)]
    if shared.empty:
        return
    groups = shared.groupby(shared, sort=True).groups
    examples = []
    for domain, rows in list(groups.items())[:3]:
        ids = [str(v) for v in accounts.loc[rows, "account_id"]]
        members = ", ".join(ids[:3]) + (f" and {len(ids) - 3:,} more" if len(ids) > 3 else "")
        examples.append(f'"{domain}": accounts {members}')
    n = len(groups)
    out.warning(
        f"{n:,} {'domain is' if n == 1 else 'domains are'} shared by {len(shared):,} account "
        f"records (e.g. {'; '.join(examples)}): each record counts as a separate account, so "
        "one company's deals, subscriptions and churn are split across its records and its "
        "deals are not clustered together",
        "merge the duplicate records in the CRM (or in the export) so that each company has "
        "one account id; subsidiaries that share a domain on purpose can stay",
        column=out.report.headers.get(name, name),  # the export's header
        rows=list(shared.index),
        values=accounts[name],
    )


def _group_warning(accounts: pd.DataFrame, name: str, refs: pd.Series, out: _Collector) -> None:
    """Say that accounts linked to a parent are one group: one independent unit in the tests
    of the overview, pattern, lost-deal, predictor, ICP and health reports, separate accounts
    in the churn report."""
    counts = refs.value_counts()
    top = ", ".join(f'"{k}" ({v:,})' for k, v in counts.head(3).items())
    out.warning(
        f"{len(refs):,} accounts name another account here ({len(counts):,} "
        f"{'parent' if len(counts) == 1 else 'parents'}, most often {top}): it links "
        "subsidiaries to their parent, so it is not used as a trait. The accounts of one "
        "group buy and renew together: the overview, pattern, lost-deal, predictor, ICP and "
        "health reports count each group as one independent unit (a trait that a few groups' "
        "many subsidiaries share is a few customers' worth of evidence, not a segment); the "
        "churn report counts accounts",
        "nothing to do if these are subsidiaries; if the column means something else, leave it "
        "out under [attributes] exclude or drop it",
        column=out.report.headers.get(name, name),  # the export's header
        rows=list(refs.index),
        values=accounts[name],
    )


def _account_links(tables: dict, config: Config, report: ValidationReport) -> None:
    """Warn about accounts that are one company or one group (rows as in the export)."""
    accounts = tables.get("accounts")
    if accounts is None or "accounts" not in config.tables:
        return
    out = _Collector(report, "accounts", config.tables["accounts"].display_path)
    ids = pd.Index(pd.unique(accounts["account_id"].astype("string").str.strip().dropna()))
    for name, refs in account_references(accounts).items():
        missing = ids.get_indexer(refs.to_numpy(dtype=object)) < 0
        _group_warning(accounts, name, refs[~missing], out)
        if missing.any():
            away = refs[missing]
            examples = ", ".join(
                f'"{v}"' for v in _id_text(accounts.loc[away.index, name]).unique()[:3]
            )
            named = not _id_text(accounts.loc[refs.index, name]).equals(refs)
            why = "a deleted record, one the export left out" + (
                ", or a name that several accounts have" if named else ""
            )
            groups = away.nunique()
            out.warning(
                f"{len(away):,} accounts name a parent that is not in the accounts table "
                f"({examples}; {why}): those naming the same one are one group "
                f"({groups:,} {'group' if groups == 1 else 'groups'})",
                "nothing to do if those parents were deleted; otherwise export them too",
                column=out.report.headers.get(name, name),
                rows=list(away.index),
                values=accounts[name],
            )
    for name in accounts.columns:
        if _IDENTIFIER_NAME.search(name) and "linkedin" not in name:
            _duplicate_domains(accounts, name, out)


def _multi_select_candidates(accounts: pd.DataFrame, config: Config) -> list[str]:
    """Accounts columns that may be read as multi-select: those named under [attributes]
    multi_select, and the text columns the kit does not read for something of its own."""
    canonical = {c.name for c in TABLES["accounts"].columns}
    names = [c for c in config.multi_select if c in accounts.columns]
    for name in accounts.columns:
        if name in names or name in canonical or name in config.single_select:
            continue
        if name in config.exclude or _KEY_NAME.search(name) or _IDENTIFIER_NAME.search(name):
            continue
        listed = config.categorical is not None or config.numeric is not None
        if listed and name not in (config.categorical or []):
            continue  # not a candidate predictor: nothing to expand
        names.append(name)
    return names


def expand_multi_select(
    accounts: pd.DataFrame, config: Config, report: ValidationReport | None = None
) -> tuple[pd.DataFrame, dict]:
    """Expand multi-select columns ("Slack;Jira", "Salesforce, Snowflake") into one yes/no
    attribute per item that ``[analysis] min_level_count`` accounts list at least, named
    ``column: item``; a blank cell is unknown (missing), not "no". The column stays in the
    table but is no predictor itself (see :func:`infer_attributes`). Returns the accounts with
    the expanded columns added and ``{column: MultiSelect}``."""
    from icp_research.data.multiselect import (
        MultiSelect,
        attribute_name,
        expand,
        item_counts,
        separator_of,
        shown,
    )

    file = config.tables["accounts"].display_path if "accounts" in config.tables else "accounts"
    out = _Collector(report or ValidationReport(), "accounts", file)
    for name in config.multi_select:
        if name not in accounts.columns:
            import difflib

            columns = [c for c in accounts.columns if c not in NON_ATTRIBUTES]
            close = difflib.get_close_matches(name, columns, n=1)
            out.error(
                f"[attributes] multi_select names '{name}', which is not a column of accounts"
                + (f"; did you mean '{close[0]}'?" if close else ""),
                "write a column of the accounts export (its header, or the name it is mapped "
                "to) or remove it from [attributes] multi_select; columns are: "
                + ", ".join(columns),
            )
    minimum = int(config.analysis.get("min_level_count", 10))
    mapped = config.tables["accounts"].columns if "accounts" in config.tables else {}
    selections: dict = {}
    added: dict[str, pd.Series] = {}
    for name in _multi_select_candidates(accounts, config):
        series = accounts[name]
        listed = name in config.multi_select
        separator = config.multi_select.get(name) if listed else None
        if separator is None:
            separator = separator_of(series)
        if separator is None and listed:
            # Named by the user: the separator that splits the most cells.
            from icp_research.data.multiselect import SEPARATORS, split_cell

            text = series.dropna().astype(str)
            splits = {
                sep: int(text.map(lambda v, sep=sep: len(split_cell(v, sep)) > 1).sum())
                for sep in SEPARATORS
            }
            separator = max(SEPARATORS, key=lambda sep: (splits[sep], -SEPARATORS.index(sep)))
        if separator is None:
            continue
        source = mapped.get(name) if isinstance(mapped.get(name), str) else None
        source = source or (report.headers.get(name, name) if report is not None else name)
        counts = item_counts(series, separator)
        items = {k: n for k, n in counts.items() if n >= minimum}
        rare = {k: n for k, n in counts.items() if n < minimum}
        selection = MultiSelect(name, source, separator, items, rare, detected=not listed)
        selections[name] = selection
        for column, values in expand(series, selection).items():
            if column in accounts.columns or column in added:
                out.error(
                    f'"{source}": the yes/no attribute "{column}" of its value "'
                    f'{column.split(": ", 1)[1]}" would replace the column of that name',
                    "rename one of the two columns in the export",
                    column=source,
                )
                continue
            added[column] = values
        blank = int(series.isna().sum())
        examples = ", ".join(attribute_name(name, i) for i in list(items)[:3])
        rarer = ", ".join(f"{k} ({n})" for k, n in list(rare.items())[:3])
        out.info(
            f"read as a multi-select ({shown(separator)} between values): "
            + (
                f"{len(items):,} yes/no attributes, one per value listed by {minimum:,} accounts "
                f"or more ({examples}{', ...' if len(items) > 3 else ''})"
                if items
                else f"no value is listed by {minimum:,} accounts or more, so none is tested"
            )
            + (
                f"; {len(rare):,} rarer {'value' if len(rare) == 1 else 'values'} not expanded "
                f"({rarer}{', ...' if len(rare) > 3 else ''})"
                if rare
                else ""
            )
            + (
                f"; {blank:,} blank {'cell is' if blank == 1 else 'cells are'} unknown, not no"
                if blank
                else ""
            ),
            "nothing to do"
            + (
                f'; [attributes] single_select = ["{source}"] reads each cell as one value'
                if not listed
                else ""
            )
            + "; [analysis] min_level_count sets how many accounts a value needs",
            column=source,
        )
    if added:
        accounts = pd.concat([accounts, pd.DataFrame(added, index=accounts.index)], axis=1)
    return accounts, selections


def _multi_select_reason(selection) -> str:
    n = len(selection.items)
    return (
        f"a multi-select, tested as {n:,} yes/no {'attribute' if n == 1 else 'attributes'} "
        f"'{selection.column}: <value>'"
    )


def infer_attributes(
    accounts: pd.DataFrame,
    config: Config,
    report: ValidationReport | None = None,
    multi_select: dict | None = None,
) -> AttributeSpec:
    """Decide which account columns are candidate predictors (config first, then by type).

    ``multi_select`` (from :func:`expand_multi_select`): such a column is no predictor itself;
    its expanded yes/no attributes are, when the column would have been."""
    spec = AttributeSpec(multi_select=dict(multi_select or {}))
    expanded = {
        column: name for name, sel in spec.multi_select.items() for column in sel.attributes()
    }
    file = config.tables["accounts"].display_path if "accounts" in config.tables else "accounts"
    out = _Collector(report, "accounts", file) if report is not None else None
    columns = [c for c in accounts.columns if c not in NON_ATTRIBUTES]
    listed = config.categorical is not None or config.numeric is not None
    references = account_references(accounts)
    if out is not None:
        # A name that matches no column would do nothing, silently: a typo, or a column
        # dropped or never exported.
        import difflib

        for kind in ("exclude", "keep", "contract"):
            for name in getattr(config, kind, None) or []:
                if name in accounts.columns:
                    continue
                close = difflib.get_close_matches(name, columns, n=1)
                subs = config.tables.get("subscriptions")
                billing = subs is not None and (
                    name in subs.columns or name in set(subs.columns.values())
                )
                if kind == "contract" and billing:
                    # A subscription's term (how it bills, or how many months it commits to):
                    # the churn report tests it per account as billing_period.
                    out.error(
                        f"[attributes] contract names '{name}', a column of subscriptions, "
                        "not of accounts",
                        f"map the subscriptions' term as billing_period under "
                        f'[tables.subscriptions.columns] (e.g. billing_period = "'
                        f'{subs.columns.get(name, name)}"): the churn report tests each '
                        "account's first paid subscription's as a contract term; then remove "
                        f"'{name}' from [attributes] contract",
                    )
                    continue
                out.error(
                    f"[attributes] {kind} names '{name}', which is not a column of accounts"
                    + (f"; did you mean '{close[0]}'?" if close else ""),
                    f"write a column of the accounts export (its header, or the name it is "
                    f"mapped to) or remove it from [attributes] {kind}; columns are: "
                    + ", ".join(columns),
                )
    if listed:
        for kind, names in (
            ("categorical", config.categorical or []),
            ("numeric", config.numeric or []),
        ):
            for name in names:
                if name not in accounts.columns:
                    if out is not None:
                        import difflib

                        close = difflib.get_close_matches(name, columns, n=1)
                        out.error(
                            f"attribute '{name}' listed in [attributes] {kind} is not a column of accounts"
                            + (f"; did you mean '{close[0]}'?" if close else ""),
                            "map it under [tables.accounts.columns] or remove it from [attributes]; columns are: "
                            + ", ".join(columns),
                        )
                    continue
                if kind == "categorical" and name in spec.multi_select:
                    spec.excluded[name] = _multi_select_reason(spec.multi_select[name])
                    spec.categorical.extend(spec.multi_select[name].attributes())
                    continue
                if kind == "numeric" and not pd.api.types.is_numeric_dtype(accounts[name]):
                    if out is not None:
                        out.error(
                            f"attribute '{name}' is listed as numeric but its values are not numbers",
                            "move it to categorical in [attributes] or fix the values",
                            column=name,
                        )
                    continue
                getattr(spec, kind).append(name)
        for name in columns:
            if name not in spec.categorical and name not in spec.numeric:
                spec.excluded[name] = "not listed in [attributes]"
    else:
        for name in columns:
            series = accounts[name]
            if name in config.exclude:
                spec.excluded[name] = "excluded in [attributes]"
                continue
            if name in spec.multi_select:
                spec.excluded[name] = _multi_select_reason(spec.multi_select[name])
                continue
            if name in expanded:
                spec.categorical.append(name)
                continue
            if pd.api.types.is_datetime64_any_dtype(series):
                spec.excluded[name] = "a date"
                continue
            if series.notna().sum() == 0:
                spec.excluded[name] = "always empty"
                continue
            if _KEY_NAME.search(name):
                # Another system's key (a CRM company id beside the workspace id): its values
                # are labels, and whether it is filled says which system touched the account.
                spec.excluded[name] = "an identifier (named like one), not a trait"
                continue
            if name in references:
                # A parent company's record id: a link between accounts, not a number to bin.
                spec.excluded[name] = "another account's id (a parent company), not a trait"
                continue
            if pd.api.types.is_bool_dtype(series) or str(series.dtype) == "boolean":
                spec.categorical.append(name)
                continue
            if pd.api.types.is_numeric_dtype(series):
                spec.numeric.append(name)
                continue
            if _IDENTIFIER_NAME.search(name):
                spec.excluded[name] = "a website, domain or link, not a trait"
                continue
            n_levels = series.nunique(dropna=True)
            if n_levels > HIGH_CARDINALITY and n_levels > 0.5 * series.notna().sum():
                sample = pd.Series(series.dropna().astype(str).unique()[:200])
                with warnings.catch_warnings():
                    warnings.simplefilter("ignore")
                    dated = pd.to_datetime(sample, errors="coerce", format="mixed").notna()
                if dated.mean() >= 0.9:
                    # "Customer Since", "Became a Customer Date" as text: when something
                    # happened (often the sale itself), not what the company is.
                    spec.excluded[name] = "dates: when something happened, not a trait"
                else:
                    spec.excluded[name] = f"{n_levels:,} distinct values (looks like a name or id)"
                continue
            spec.categorical.append(name)
    for name in config.exclude:
        for group in (spec.categorical, spec.numeric):
            if name in group:
                group.remove(name)
                spec.excluded[name] = "excluded in [attributes]"
    for name in spec.all:
        if accounts[name].nunique(dropna=False) <= 1:
            # A column with one value cannot tell accounts apart: it predicts nothing.
            spec.excluded.setdefault(name, "the same value for every account")
            for group in (spec.categorical, spec.numeric):
                if name in group:
                    group.remove(name)
    if out is not None and spec.excluded:
        notes = ", ".join(
            f"{k} ({v})" for k, v in spec.excluded.items() if not v.startswith("not listed")
        )
        if notes:
            out.info(
                f"not used as ICP predictors: {notes}", "list them in [attributes] to override"
            )
    return spec


# ---------------------------------------------------------------------------------------------
# Public entry points


@dataclass
class Dataset:
    """Canonical tables loaded from a config, with what validation found."""

    config: Config
    tables: dict[str, pd.DataFrame]
    report: ValidationReport
    attributes: AttributeSpec
    # Facts computed once by the runner (name -> frame) and the as-of date they hold.
    derived: Mapping[str, pd.DataFrame] = field(default_factory=dict)
    derived_meta: dict = field(default_factory=dict)
    # Row counts kept by release() when the rows themselves are dropped.
    released_rows: dict | None = None

    def __repr__(self) -> str:
        rows = self.released_rows or {k: len(v) for k, v in self.tables.items()}
        sizes = ", ".join(f"{k}={n:,}" for k, n in rows.items())
        return f"<Dataset {self.config.project_name!r}: {sizes}>"

    def has(self, table: str) -> bool:
        if self.released_rows is not None:
            return self.released_rows.get(table, 0) > 0
        return table in self.tables and len(self.tables[table]) > 0

    def release(self) -> None:
        """Let go of the rows (and the derived facts) once they are saved in a snapshot; the
        row counts, the validation report and :meth:`has` stay. The runner does this before the
        report kernels start, so that a large export is not held in memory three times."""
        self.released_rows = {name: len(frame) for name, frame in self.tables.items()}
        self.tables = {name: frame.iloc[:0] for name, frame in self.tables.items()}
        self.derived = {}
        gc.collect()
        return_memory()

    @property
    def currency(self) -> str:
        """How the reports write money: ``[project] currency``, else the currency most money
        cells name ("€1.200", "1200 EUR"), else $. Amounts in several currencies (each at least
        1% of the money cells) are added up as they are, never converted: their sums are in no
        one currency, and the reports write them with the generic currency sign, ¤ ("¤845.4k"),
        not as dollars."""
        if self.config.currency:
            return self.config.currency
        counts = self.report.currencies
        if not counts:
            return "$"
        total = sum(counts.values())
        if sum(n >= MIXED_SHARE * total for n in counts.values()) > 1:
            return MIXED_CURRENCY
        return max(counts, key=lambda mark: (counts[mark], mark))

    @property
    def usage_source(self):
        """The usage rows left in Parquet for DuckDB (``[tables.usage] engine = "duckdb"``), as
        a :class:`~icp_research.data.warehouse.UsageSource`; None when usage is loaded (or absent)."""
        tc = self.config.tables.get("usage")
        if tc is None or tc.engine != "duckdb":
            return None
        if not hasattr(self, "_usage_source"):
            out = _Collector(ValidationReport(), "usage", tc.display_path)
            try:
                self._usage_source = _usage_source(tc, out)
            except _Stop:
                raise DataError(out.report.lines("error")[0], out.report.lines("error")) from None
        return self._usage_source

    def save(self, directory: str | Path) -> Path:
        """Write the canonical tables as Parquet plus ``dataset.json`` (a run's data snapshot)."""
        from icp_research.artifacts import write_json

        directory = Path(directory)
        directory.mkdir(parents=True, exist_ok=True)
        for name, frame in self.tables.items():
            frame.to_parquet(directory / f"{name}.parquet", index=False)
        for name, frame in self.derived.items():
            if name in REBUILT_ON_READ:
                continue
            plain = frame.copy(deep=False)
            plain.attrs = {}  # kept in dataset.json: Parquet metadata cannot hold timestamps
            plain.to_parquet(directory / f"_{name}.parquet", index=False)
        write_json(
            {
                "derived": {
                    **self.derived_meta,
                    "tables": sorted(set(self.derived) - set(REBUILT_ON_READ)),
                },
                "project": self.config.project_name,
                "config": str(self.config.path) if self.config.path else None,
                "fingerprint": {
                    "config_sha256": file_sha256(self.config.path)
                    if self.config.path and Path(self.config.path).is_file()
                    else None,
                    "code": code_fingerprint(),
                },
                "tables": sorted(self.tables),
                "attributes": self.attributes.to_dict(),
                "inputs": self.report.inputs,
                "currencies": self.report.currencies,
                "unlinked": self.report.unlinked,
                "problems": self.report.to_frame().to_dict(orient="records"),
            },
            directory / "dataset.json",
        )
        return directory

    @classmethod
    def open(cls, directory: str | Path, config: Config) -> Dataset:
        """Read a snapshot written by :meth:`save`."""
        import json

        directory = Path(directory)
        meta = json.loads((directory / "dataset.json").read_text(encoding="utf-8"))
        shared = _SHARED.get(str(directory.resolve()))
        tables = {
            name: shared[name]
            if shared is not None and name in shared
            else read_only(read_snapshot_frame(directory / f"{name}.parquet"))
            for name in meta["tables"]
        }
        report = ValidationReport(
            problems=[
                Problem(
                    p["level"],
                    p["table"],
                    p["file"],
                    p["message"],
                    p["fix"] or "",
                    p["column"],
                    [],
                    int(p["rows_affected"] or 0),
                )
                for p in meta.get("problems", [])
            ],
            inputs=meta.get("inputs", []),
            currencies=dict(meta.get("currencies") or {}),
            unlinked=dict(meta.get("unlinked") or {}),
        )
        derived_meta = dict(meta.get("derived") or {})
        derived = _ParquetFrames(
            {name: directory / f"_{name}.parquet" for name in derived_meta.pop("tables", [])},
            shared,
        )
        return cls(
            config,
            tables,
            report,
            AttributeSpec.from_dict(meta["attributes"]),
            derived,
            derived_meta,
        )


def read_snapshot_frame(path: Path) -> pd.DataFrame:
    """``pd.read_parquet`` of a frame this kit wrote, with each distinct text value made into
    one Python string shared by its rows (a third of the memory at a million deals), and row
    keys whose values hardly repeat (``opportunity_id``) kept in Arrow's buffers
    (``string[pyarrow]``) rather than as a Python string per row.

    Why Arrow for those: report kernels are forked from the process that read the snapshot and
    share its memory until they write to it, and copying a column's rows writes to every
    string's reference count. At 10M deals, one selection of deals with their ids copied
    830 MB of the shared strings into each kernel; Arrow's buffers are never written."""
    import pyarrow as pa
    import pyarrow.compute as pc
    import pyarrow.parquet as pq

    parquet = pq.ParquetFile(path)
    schema = parquet.schema_arrow
    columns = (schema.pandas_metadata or {}).get("columns", [])
    text = [
        c["name"] for c in columns if c.get("numpy_type") == "string" and c["name"] in schema.names
    ]
    # Only columns that repeat values gain (judged on the first rows; ids do not).
    sample = next(parquet.iter_batches(batch_size=DISTINCT_SAMPLE, columns=text), None)
    ids = []
    if sample is not None:
        repeats = {
            name: pc.count_distinct(sample.column(name)).as_py() <= sample.num_rows // 2
            for name in text
        }
        # Row keys only (deals'): free text stays Python's (its regexes), and so does the
        # account id, which every analysis looks up, matches and compares (pandas converts
        # Arrow's strings back for most of that).
        ids = [n for n in text if not repeats[n] and n.endswith("_id") and n != "account_id"]
        text = [n for n in text if repeats[n]]
    if not text and not ids:
        return pd.read_parquet(path)
    table = pq.read_table(path, read_dictionary=text or None)
    if not ids:
        frame = table.to_pandas()
    else:
        order = [c for c in table.column_names if not c.startswith("__index_level_")]
        frame = table.drop_columns(ids).to_pandas()
        for name in sorted(ids, key=order.index):
            values = table.column(name)
            if not pa.types.is_large_string(values.type):
                values = values.cast(pa.large_string())
            frame.insert(order.index(name), name, pd.arrays.ArrowStringArray(values))
    for name in text:
        values = frame[name]
        # The last entry, None, is what missing values (code -1) pick.
        distinct = np.append(np.asarray(values.cat.categories, dtype=object), None)
        frame[name] = pd.array(distinct.take(values.cat.codes.to_numpy()), dtype="string")
    return frame


class _ParquetFrames(Mapping):
    """Frames of a snapshot, each read on first use: at a million deals the joined deal
    facts take seconds and gigabytes that a report not using them should not pay. They are
    read-only (:func:`read_only`), as the studies share them (a study hands out shallow copies).
    Frames rebuilt when the snapshot was shared (:data:`REBUILT_ON_READ`) are there too.
    """

    def __init__(self, paths: dict[str, Path], shared: dict[str, pd.DataFrame] | None = None):
        self._paths = paths
        self._frames: dict[str, pd.DataFrame] = {}
        for name in [*paths, *REBUILT_ON_READ]:
            if shared is not None and f"_{name}" in shared:
                self._frames[name] = shared[f"_{name}"]

    def __getitem__(self, name: str) -> pd.DataFrame:
        if name not in self._frames:
            self._frames[name] = read_only(read_snapshot_frame(self._paths[name]))
        return self._frames[name]

    def __iter__(self):
        return iter(dict.fromkeys([*self._paths, *self._frames]))

    def __len__(self) -> int:
        return len(set(self._paths) | set(self._frames))


#: Derived frames a snapshot does not hold: the deal facts are the opportunities with computed
#: columns and the account's attributes joined, which the process that shares a snapshot
#: rebuilds from the tables faster than it reads them (and over the same column arrays, not a
#: second copy: at 10M deals that is gigabytes); a study without them computes its own.
REBUILT_ON_READ = ("deals",)


#: Snapshots read once by the process report kernels are forked from (resolved directory ->
#: frame name -> read-only frame; derived frames named with a leading underscore). A kernel
#: forked afterwards opens the snapshot from memory it shares with its siblings, copy-on-write,
#: instead of reading (and holding) its own copy.
_SHARED: dict[str, dict[str, pd.DataFrame]] = {}


def share_snapshot(directory: str | Path) -> int:
    """Read every frame of the snapshot in ``directory`` now and keep it for
    :meth:`Dataset.open` (in this process and any process forked from it later). Returns the
    number of frames read."""
    import json

    directory = Path(directory).resolve()
    meta = json.loads((directory / "dataset.json").read_text(encoding="utf-8"))
    names = list(meta["tables"]) + [f"_{n}" for n in (meta.get("derived") or {}).get("tables", [])]
    frames = {name: read_only(read_snapshot_frame(directory / f"{name}.parquet")) for name in names}
    as_of = (meta.get("derived") or {}).get("as_of")
    if as_of and "opportunities" in meta["tables"] and "_deals" not in frames:
        from icp_research.data.facts import deal_facts

        tables = {name: frames[name] for name in meta["tables"]}
        frames["_deals"] = read_only(deal_facts(tables, as_of))
        names.append("_deals")
    _SHARED[str(directory)] = frames
    return_memory()  # what reading Parquet needed on the way, before the kernels are forked
    return len(names)


def return_memory() -> None:
    """Hand memory that is free again back to the system: Arrow's pool keeps what reading
    Parquet used, and glibc's allocator the freed frames (a 10M-deal run's process held 5 GB
    after letting its tables go; at 1M deals 860 MB, 400 MB after this)."""
    import ctypes
    import gc

    gc.collect()  # frames kept alive only by reference cycles (a study and what it cached)
    with contextlib.suppress(Exception):
        import pyarrow as pa

        pa.default_memory_pool().release_unused()
    if sys.platform.startswith("linux"):
        with contextlib.suppress(Exception):
            ctypes.CDLL("libc.so.6").malloc_trim(0)


def read_only(frame: pd.DataFrame) -> pd.DataFrame:
    """``frame`` with the arrays under its columns made read-only (in place; returned): code
    that would change a shared frame in place fails loudly instead of changing it for others."""
    for block in frame._mgr.blocks:
        values = block.values
        if hasattr(values, "_pa_array"):
            continue  # Arrow's buffers cannot be written to
        for array in (values, *(getattr(values, a, None) for a in ("_ndarray", "_data", "_mask"))):
            if isinstance(array, np.ndarray):
                array.flags.writeable = False
    return frame


def load_tables(config: Config | str | Path, as_of=None) -> Dataset:
    """Load and clean every export; raises :class:`DataError` listing every error found.
    ``as_of``: the analysis date the report's findings about churn are stated for (default:
    ``[project] as_of``, else the default as-of date of the data)."""
    dataset = load_dataset(config, as_of=as_of)
    if not dataset.report.ok:
        lines = dataset.report.lines("error")
        error = DataError(lines[0], lines)
        error.report = dataset.report  # every problem, warnings too, for --verbose
        raise error
    return dataset


def load_dataset(config: Config | str | Path, as_of=None) -> Dataset:
    from icp_research.data.config import load_config

    if not isinstance(config, Config):
        config = load_config(config)
    report = ValidationReport()
    tables: dict[str, pd.DataFrame] = {}
    trials_found = None
    database = _DatabaseRows(config, report)
    for name, tc in config.tables.items():
        out = _Collector(report, name, tc.display_path)
        if tc.from_database:
            try:
                raw = database.fetch(tc, out)
                frame = _clean_table(raw, tc, config, out)
                frame = _check_table(frame, tc, out)
            except _Stop:
                continue
            tables[name] = frame
            if getattr(out, "stage_history", None) is not None:
                tables.setdefault("stage_history", out.stage_history)
            if out.trials is not None and name == "subscriptions":
                trials_found = out.trials
            continue
        if tc.engine == "duckdb":
            # A pattern such as events/*.parquet says more than its last part.
            out = _Collector(report, name, _display(tc.path, config))
            try:
                source = _usage_source(tc, out)
            except _Stop:
                continue
            report.inputs.append(
                {
                    "table": name,
                    "path": _display(tc.path, config),
                    "sha256": source.sha256(),
                    "rows": source.rows,
                    "engine": "duckdb",
                }
            )
            continue
        try:
            raw = _read_raw(tc, out)
            if tc.group_column:
                raw = _board_groups(raw, tc, out)
            report.inputs.append(
                {
                    "table": name,
                    "path": _display(tc.path, config),
                    "sha256": file_sha256(tc.path),
                    "rows": int(len(raw)),
                }
            )
            frame = _clean_table(raw, tc, config, out)
            frame = _check_table(frame, tc, out)
        except _Stop:
            continue
        tables[name] = frame
        if getattr(out, "stage_history", None) is not None:
            tables.setdefault("stage_history", out.stage_history)
        if out.trials is not None and name == "subscriptions":
            trials_found = out.trials
    database.close()
    _look_up_account_ids(tables, config.tables, report)
    _check_references(tables, config.tables, report)
    if not any(p.level == "error" for p in report.problems):
        # With cells that did not read (dates, amounts), who churned would be judged on what
        # is left: "29 of 32 customers have no subscription" when their start dates failed.
        _check_churn_source(tables, config, report, as_of)
    _lead_source_attribute(tables, config, report)
    _account_links(tables, config, report)
    if trials_found is not None and "subscriptions" in tables and "trials" not in tables:
        trials = _billing_trials(trials_found, config.tables["subscriptions"], tables, config)
        if len(trials):
            tables["trials"] = trials
    for name, frame in tables.items():
        tables[name] = frame.reset_index(drop=True)
    if "accounts" in tables:
        tables["accounts"], selections = expand_multi_select(tables["accounts"], config, report)
        attributes = infer_attributes(tables["accounts"], config, report, selections)
        _exclude_churn_columns(attributes, tables["accounts"], config, report)
    else:
        attributes = AttributeSpec()
    # Studies of any date share these rows (as_of_view copies only what it changes).
    tables = {name: read_only(frame) for name, frame in tables.items()}
    for item in report.inputs:
        # What the rows became: footers and blank rows left out, a deals report rolled up to
        # its 650 accounts, order lines to their deals ("accounts 1,889 rows" read as 1,889).
        frame = tables.get(item.get("table"))
        if frame is not None and isinstance(item.get("rows"), int) and len(frame) != item["rows"]:
            item["records"] = int(len(frame))
    return Dataset(config, tables, report, attributes)


def _lead_source_attribute(tables: dict, config: Config, report: ValidationReport) -> None:
    """How an account came to us, when only its deals say it: the lead source (``source``) of
    its first deal becomes the account attribute ``lead_source``, a trait known before the sale
    that every analysis can test and a lead's score can use. Not when the accounts carry their
    own ``lead_source``; beside the accounts' ``referral_source`` only when the two differ
    (a deal's channel, such as a partner pipeline, is not the account's original source)."""
    accounts, deals = tables.get("accounts"), tables.get("opportunities")
    if accounts is None or deals is None or "source" not in deals:
        return
    tc = config.tables["opportunities"]
    out = _Collector(report, "opportunities", tc.display_path)
    label = tc.columns.get("source", "source")
    if "lead_source" in accounts.columns:
        out.info(
            f"the deals' source ({label}) is not used: the accounts carry their own lead_source",
            "nothing to do; map the accounts' column under another name to test both",
            column=label,
        )
        return
    # The columns read here, then the rows: not a copy of every deal column (10M deals).
    keep = (deals["account_id"].notna() & deals["source"].notna()).to_numpy(dtype=bool)
    known = deals[[c for c in ("account_id", "source", "created_at") if c in deals]][keep]
    if known.empty:
        return
    # The first deal by creation (undated deals last, then the export's order): per account
    # the earliest date's first row, without sorting every deal (10M at scale).
    codes, uniques = pd.factorize(known["account_id"], use_na_sentinel=True)
    if "created_at" in known:
        when = known["created_at"].to_numpy(dtype="datetime64[ns]").astype(np.int64)
        # Undated rows come after every date.
        key = np.where(known["created_at"].isna().to_numpy(), np.iinfo(np.int64).max, when)
    else:
        key = np.zeros(len(known), dtype=np.int64)
    earliest = np.full(len(uniques), np.iinfo(np.int64).max, dtype=np.int64)
    np.minimum.at(earliest, codes, key)
    candidates = np.flatnonzero(key == earliest[codes])
    # Among an account's rows of its earliest date, the first in the export.
    _, first_of_code = np.unique(codes[candidates], return_index=True)
    first_rows = candidates[first_of_code]
    first = pd.Series(
        known["source"].to_numpy()[first_rows],
        index=pd.Index(np.asarray(uniques, dtype=object)[codes[first_rows]]),
    )
    lead_source = accounts["account_id"].map(first).astype("string")
    # The accounts' own source columns: referral_source, or a deal column kept on the accounts
    # (a board whose rows carry the company's fields: "Source" became the attribute "source",
    # and lead_source tested the same column again).
    sources = [
        c
        for c in accounts.columns
        if c == "referral_source" or (c != "lead_source" and "source" in str(c).lower())
    ]
    for column in sources:
        both = lead_source.notna() & accounts[column].notna()
        same = (
            lead_source[both].str.strip().str.lower()
            == accounts.loc[both, column].astype("string").str.strip().str.lower()
        )
        if (column == "referral_source" and not both.any()) or (both.any() and same.mean() >= 0.9):
            out.info(
                f"the deals' source ({label}) is not kept apart: it says what the accounts' "
                f"{column} says ({same.mean() if both.any() else 0:.0%} of {int(both.sum()):,} "
                "accounts with both)",
                "nothing to do",
                column=label,
            )
            return
    accounts["lead_source"] = lead_source
    _Collector(report, "opportunities", tc.display_path).info(
        f"lead_source: the source of each account's first deal ({label}) "
        f"is kept as an account attribute, so that how accounts come is tested like their "
        f"other traits ({int(accounts['lead_source'].notna().sum()):,} of {len(accounts):,} "
        "accounts have one)",
        'nothing to do; [attributes] exclude = ["lead_source"] leaves it out',
    )


def _check_churn_source(tables: dict, config: Config, report: ValidationReport, as_of=None) -> None:
    """Which record says who churned ([analysis] churn_source) and where the records disagree
    (see :mod:`icp_research.data.churn_source`), as of the run's date: ``as_of``, else
    [project] as_of, else the data's default as-of date."""
    when = as_of or config.as_of or default_as_of(tables)
    for level, table, message, fix in churn_source.findings(tables, config.analysis, when):
        tc = config.tables.get(table)
        _Collector(report, table, tc.display_path if tc else table).add(level, message, fix)


def _exclude_churn_columns(
    spec: AttributeSpec, accounts: pd.DataFrame, config: Config, report: ValidationReport
) -> None:
    """The accounts column churn is taken from is the outcome, not a predictor."""
    listed = set(config.categorical or []) | set(config.numeric or [])
    names = [
        n
        for n in churn_source.outcome_columns(accounts, config.analysis)
        if n in spec.all and n not in listed
    ]
    for name in names:
        for group in (spec.categorical, spec.numeric):
            if name in group:
                group.remove(name)
        spec.excluded[name] = "the churn_source column: the churn outcome, not a predictor"
    if names:
        _Collector(report, "accounts", config.tables["accounts"].display_path).info(
            "not used as ICP predictors: "
            + ", ".join(names)
            + " (the churn_source column: the churn outcome, not a predictor)",
            "list them in [attributes] to override",
        )


def _usage_source(tc: TableConfig, out: _Collector):
    """Check a usage source aggregated by DuckDB (files, columns) without reading its rows."""
    from icp_research.data import warehouse

    try:
        warehouse._duckdb()
    except IcpError as exc:
        out.error(str(exc).split("; ")[0], f"install it with {warehouse.INSTALL_HINT}")
        raise _Stop from None
    source = warehouse.UsageSource(tc.path, label=tc.display_path)
    files = source.files
    if not files:
        out.error(
            f"no Parquet files match {tc.path}",
            f'check path = "..." under [tables.{tc.name}] (a file, a folder or a pattern such '
            'as "events/*.parquet", relative to the config file)',
        )
        raise _Stop
    try:
        names = source.source_columns()
    except Exception as exc:  # pyarrow raises several types for non-Parquet input
        out.error(
            f"{files[0].name} cannot be read as Parquet ({type(exc).__name__}: "
            f"{str(exc).splitlines()[0][:120]})",
            "export the usage events again as Parquet",
        )
        raise _Stop from None
    # Every row is one event worth 1 when there is no value column.
    resolved = _resolve_columns(pd.DataFrame(columns=names), tc, out, optional=("value",))
    if any(p.level == "error" for p in out.report.problems if p.table == tc.name):
        raise _Stop
    source.columns = warehouse.UsageColumns(
        account_id=resolved["account_id"],
        date=resolved["date"],
        metric=resolved["metric"],
        value=resolved.get("value"),
        user_id=resolved.get("user_id"),
    )
    # One pass over the rows, in DuckDB: the same required-value checks as a loaded table.
    required = [c for c in ("account_id", "date", "metric", "value") if c in resolved]
    counts = source.missing_counts(required)
    for column in required:
        if counts[column]:
            out.error(
                f"{counts[column]:,} rows have no {column} (a required value)",
                "fill them in the export or remove those rows",
                column=tc.columns.get(column, column),
            )
    if any(p.level == "error" for p in out.report.problems if p.table == tc.name):
        raise _Stop
    out.info(
        f"usage rows stay in {len(files):,} Parquet file{'s' if len(files) > 1 else ''} and are "
        "aggregated per account by DuckDB (not loaded into memory)",
    )
    return source


class _DatabaseRows:
    """Rows of the tables read from ``[warehouse] url``: one connection, opened on first use
    and closed by :meth:`close`. A url that cannot be opened is one error, not one per table."""

    def __init__(self, config: Config, report: ValidationReport):
        self.config, self.report = config, report
        self.session = None
        self.failed = False
        # Closed after the last table's rows are fetched, before any of them is checked.
        self.remaining = sum(t.from_database for t in config.tables.values())
        if config.warehouse is not None and self.remaining:
            # A missing ${NAME} is a config error (raised before anything is read).
            self.url = config.warehouse.resolved_url()

    def fetch(self, tc: TableConfig, out: _Collector) -> pd.DataFrame:
        self.remaining -= 1
        try:
            return self._fetch(tc, out)
        finally:
            if self.remaining <= 0:
                self.close()

    def _fetch(self, tc: TableConfig, out: _Collector) -> pd.DataFrame:
        from icp_research.data import database

        warehouse = self.config.warehouse
        where = f"[tables.{tc.name}]"
        if self.failed:
            raise _Stop
        if self.session is None:
            session = database.Database(self.url, warehouse.base_dir, warehouse.display_url)
            try:
                self.session = session.__enter__()
            except database.DatabaseError as exc:
                self.failed = True
                _Collector(self.report, tc.name, warehouse.display_url).error(
                    str(exc),
                    exc.fix
                    or 'check url = "..." under [warehouse] (host, port, database, user, and '
                    "the password or the environment variable it names)",
                )
                raise _Stop from None
        sql = database.table_query(tc.table) if tc.table is not None else tc.sql
        try:
            raw = self.session.query(sql)
        except database.DatabaseError as exc:
            if tc.table is not None:
                out.error(
                    f"cannot read the table ({exc})",
                    f'check table = "{tc.table}" under {where}: schema.name as the database '
                    "spells it, and that the url's user may read it",
                )
            else:
                out.error(
                    f"the query failed ({exc})",
                    f'run it in your SQL client and fix sql = "..." under {where}',
                )
            raise _Stop from None
        self.report.inputs.append(
            {
                "table": tc.name,
                "path": tc.display_path,
                "source": warehouse.display_url,
                "sha256": database.rows_sha256(raw),
                "rows": int(len(raw)),
            }
        )
        names = [str(c) for c in raw.columns]
        repeated = sorted({n for n in names if names.count(n) > 1})
        if repeated:
            out.error(
                f"the {tc.source_noun} has more than one column named "
                + ", ".join(f'"{n}"' for n in repeated),
                f'name them apart with AS in sql = "..." under {where}'
                if tc.sql is not None
                else f'select the columns you need with sql = "select ..." instead of table = '
                f"under {where}",
            )
            raise _Stop
        if len(raw) == 0:
            if tc.table is not None:
                what, check = "the table has no rows", f"check table = ... under {where}"
            else:
                what = "the query returned no rows"
                check = f"check the WHERE clause of sql = ... under {where}"
            out.error(what, f"{check}, or remove the section if you have no such data")
            raise _Stop
        return raw

    def close(self) -> None:
        if self.session is not None:
            self.session.close()
            self.session = None


def _display(path: Path, config: Config) -> str:
    try:
        return str(path.relative_to(config.base_dir))
    except ValueError:
        return str(path)
