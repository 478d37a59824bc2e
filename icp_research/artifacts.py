"""Artifact files: atomic writes, and CSVs a spreadsheet cannot turn into formulas.

CSV artifacts are for people (opened in Excel or Sheets), so formula-like cells are neutralised
with a leading apostrophe; JSON artifacts are lossless and are what the kit reads back.
"""

from __future__ import annotations

import io
import json
import os
import tempfile
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import pandas as pd

from icp_research.formatting import to_jsonable


@dataclass(frozen=True)
class Artifact:
    """One file under a run's ``artifacts/``, declared once (see
    :mod:`icp_research.analyses.registry`).

    ``kind`` ``"table"``: ``<name>.csv`` for people (formula-like cells neutralised) plus
    ``tables/<name>.json`` (pandas' table schema: types kept, nothing neutralised), which is what
    the kit reads back. ``kind`` ``"json"``: ``<name>.json``. Any other kind is a document with
    its own writer, named by its kind: ``"pptx"`` is ``<name>.pptx``.
    """

    name: str
    kind: str
    description: str = ""

    @property
    def filename(self) -> str:
        return f"{self.name}.{'csv' if self.kind == 'table' else self.kind}"


def write_artifact(artifact: Artifact, obj, directory: str | Path) -> list[Path]:
    """Write ``obj`` (a DataFrame for tables, JSON-able data otherwise) as ``artifact`` under
    ``directory``; returns the written paths."""
    directory = Path(directory)
    if artifact.kind not in ("table", "json"):
        raise ValueError(f"{artifact.filename} has its own writer, not write_artifact")
    if artifact.kind == "json":
        return [write_json(obj, directory / f"{artifact.name}.json")]
    frame = obj if isinstance(obj, pd.DataFrame) else pd.DataFrame(obj)
    lossless = frame.reset_index(drop=True).to_json(
        orient="table", index=False, date_format="iso", default_handler=str
    )
    return [
        write_csv(frame, directory / f"{artifact.name}.csv"),
        write_text(lossless, directory / "tables" / f"{artifact.name}.json"),
    ]


def read_artifact(artifact: Artifact, directory: str | Path):
    """What :func:`write_artifact` wrote (a DataFrame for tables), or None when it is missing or
    unreadable."""
    directory = Path(directory)
    try:
        if artifact.kind == "json":
            return json.loads((directory / f"{artifact.name}.json").read_text(encoding="utf-8"))
        text = (directory / "tables" / f"{artifact.name}.json").read_text(encoding="utf-8")
        return pd.read_json(io.StringIO(text), orient="table")
    except (OSError, ValueError):
        return None


_UMASK = os.umask(0o022)
os.umask(_UMASK)

# Characters that make a spreadsheet treat a cell as a formula.
_FORMULA_PREFIXES = ("=", "+", "-", "@", "\t", "\r")


def _formula_like(values: np.ndarray) -> np.ndarray:
    """Which cells are text starting like a formula (vectorised with pyarrow when the column
    is all text, a plain loop otherwise; both far faster than the .str accessor)."""
    try:
        import pyarrow as pa
        import pyarrow.compute as pc

        array = pa.array(values, type=pa.string(), from_pandas=True)
    except (ImportError, ValueError, TypeError, ArithmeticError):
        array = None  # mixed types (numbers among the text): check cell by cell
    if array is not None:
        hit = None
        for prefix in _FORMULA_PREFIXES:
            found = pc.starts_with(array, pattern=prefix)
            hit = found if hit is None else pc.or_(hit, found)
        return np.asarray(hit.fill_null(False).to_numpy(zero_copy_only=False), dtype=bool)
    return np.fromiter(
        ((v.startswith(_FORMULA_PREFIXES) if isinstance(v, str) else False) for v in values),
        dtype=bool,
        count=len(values),
    )


def spreadsheet_safe(frame: pd.DataFrame) -> pd.DataFrame:
    """Prefix text that a spreadsheet would run as a formula with a single quote.

    Cells, column names and index labels starting with ``=``, ``+``, ``-``, ``@``, a tab or a
    carriage return are prefixed (``=cmd|' /C calc'!A0`` -> ``'=cmd|' /C calc'!A0``), unless
    they are plain numbers such as ``-12.5``.
    """
    out = frame.copy()
    for position in range(out.shape[1]):
        series = out.iloc[:, position]
        if isinstance(series.dtype, pd.CategoricalDtype):
            series = series.astype(object)
        if series.dtype == object or pd.api.types.is_string_dtype(series):
            values = series.to_numpy(dtype=object)
            risky = _formula_like(values)
            if not risky.any():
                continue
            # Numbers such as -12.5 are data, not formulas (parsed only where it matters).
            numeric = pd.to_numeric(pd.Series(values[risky]), errors="coerce").notna().to_numpy()
            mask = risky.copy()
            mask[risky] = ~numeric
            if mask.any():
                text = series.astype("string")
                out.isetitem(position, series.where(~mask, "'" + text))
    if not isinstance(out.columns, pd.MultiIndex):
        out.columns = [_safe_label(c) for c in out.columns]
    if not isinstance(out.index, pd.MultiIndex) and out.index.dtype == object:
        out.index = pd.Index([_safe_label(v) for v in out.index], name=_safe_label(out.index.name))
    return out


def _safe_label(value):
    if not isinstance(value, str) or not value.startswith(_FORMULA_PREFIXES):
        return value
    try:
        float(value)
        return value
    except ValueError:
        return "'" + value


def write_csv(
    frame: pd.DataFrame,
    path: str | Path,
    *,
    index: bool = False,
    engine: str = "pandas",
    delimiter: str = ",",
    bom: bool = False,
    decimal: str = ".",
) -> Path:
    """Write a CSV atomically (temp file + rename), with formula-like cells neutralised.

    ``engine="pyarrow"`` writes large frames several times faster (multi-threaded; values
    quoted only where needed, True/False kept as words, floats in shortest round-trip form
    rather than 10 significant digits); the default pandas writer is used otherwise. With the
    pyarrow engine, ``delimiter``, ``bom`` (a UTF-8 byte-order mark first, as Excel writes
    and wants) and ``decimal`` (``","``: fractions written 0,46) write a file in the shape
    of a European spreadsheet's.
    """
    safe = spreadsheet_safe(frame)
    if engine == "pyarrow":
        safe = safe.reset_index() if index else safe
        if decimal != ".":
            safe = safe.copy()
            for column in safe.columns:
                if pd.api.types.is_float_dtype(safe[column]):
                    text = safe[column].map(lambda v: "" if pd.isna(v) else repr(float(v)))
                    safe[column] = text.str.replace(".", decimal, regex=False)
        return _write_csv_arrow(safe, Path(path), delimiter=delimiter, bom=bom)
    text = safe.to_csv(index=index, lineterminator="\n", float_format="%.10g")
    return write_text(text, path)


def _write_csv_arrow(
    frame: pd.DataFrame, path: Path, delimiter: str = ",", bom: bool = False
) -> Path:
    import pyarrow as pa
    from pyarrow import csv as pacsv

    frame = frame.copy()
    for column in frame.columns:
        series = frame[column]
        if pd.api.types.is_bool_dtype(series):
            frame[column] = np.where(series.to_numpy(dtype=bool), "True", "False")
        elif isinstance(series.dtype, pd.CategoricalDtype):
            frame[column] = series.astype("string")
    try:
        table = pa.Table.from_pandas(frame, preserve_index=False)
    except (pa.ArrowInvalid, pa.ArrowTypeError):
        # Mixed types in a column (numbers and text): write every such column as text.
        for column in frame.columns:
            if frame[column].dtype == object:
                frame[column] = frame[column].astype("string")
        table = pa.Table.from_pandas(frame, preserve_index=False)
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(prefix=f".{path.name}.", dir=path.parent)
    os.close(fd)
    try:
        options = pacsv.WriteOptions(quoting_style="needed", delimiter=delimiter)
        with open(tmp, "wb") as handle:
            if bom:
                handle.write(b"\xef\xbb\xbf")
            pacsv.write_csv(table, handle, write_options=options)
        os.chmod(tmp, 0o666 & ~_UMASK)
        os.replace(tmp, path)
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise
    return path


def write_text(text: str, path: str | Path) -> Path:
    """Write a UTF-8 text file atomically: a reader sees the old file or the new, never half."""
    return write_bytes(text.encode("utf-8"), path)


def write_bytes(data: bytes, path: str | Path) -> Path:
    """Write a file atomically (a document such as a .pptx, or encoded text): a reader sees the
    old file or the new, never half."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(prefix=f".{path.name}.", dir=path.parent)
    try:
        with os.fdopen(fd, "wb") as handle:
            handle.write(data)
        os.chmod(tmp, 0o666 & ~_UMASK)
        os.replace(tmp, path)
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise
    return path


def write_json(obj, path: str | Path) -> Path:
    """Write JSON atomically (keys in insertion order, NaN and infinity as null)."""
    return write_text(json.dumps(to_jsonable(obj), indent=2, ensure_ascii=False) + "\n", path)
