"""Does the order of an export's rows change any result? Run every report twice in this
process, on the data as exported and with the rows of every table shuffled, and compare every
artifact table: texts and counts identical, numbers equal to 1e-9.

A database returns rows in whatever order it likes, and an analyst may re-sort an export before
sending it: the same data must give the same ICP. (Floating-point sums in another order differ
in their 15th digit, hence the tolerance.) Exits 1 when an artifact differs, naming it and the
columns that differ.

    python -m devtools.row_order [--config icp.toml] [--seed 7]
"""

from __future__ import annotations

import argparse
import copy
import sys
import tempfile
from pathlib import Path
from unittest import mock

import numpy as np
import pandas as pd

REPO = Path(__file__).resolve().parents[1]


def run_reports(dataset, out: Path) -> list[str]:
    """Every report the data allows, in this process, writing its artifacts to ``out``;
    returns the reports that failed."""
    import icp_research
    from icp_research.data.study import Study
    from icp_research.pipeline.runner import discover_notebooks, missing_requirement

    sys.path.insert(0, str(REPO))
    from tests.inprocess import run_notebook

    Study(dataset).precompute()

    def open_study(config=None, *, data_dir=None, as_of=None, artifacts_dir=None):
        return Study(dataset, as_of or None, artifacts_dir or None)

    out.mkdir(parents=True, exist_ok=True)
    failed = []
    parameters = {"config": "", "artifacts_dir": str(out), "as_of": ""}
    with mock.patch.object(icp_research, "open_study", open_study):
        for spec in discover_notebooks():
            if not missing_requirement(spec, dataset):
                run = run_notebook(spec.path, parameters)
                if run.error is not None:
                    failed.append(f"{spec.name}: {type(run.error).__name__}: {run.error}")
    return failed


def differences(first: Path, second: Path) -> dict[str, list[str]]:
    """Artifact tables (CSV) of two runs that differ: file -> the columns that differ."""
    found: dict[str, list[str]] = {}
    for path in sorted(first.rglob("*.csv")):
        relative = path.relative_to(first)
        other = second / relative
        if not other.exists():
            found[str(relative)] = ["missing"]
            continue
        a, b = pd.read_csv(path), pd.read_csv(other)
        if a.shape != b.shape or list(a.columns) != list(b.columns):
            found[str(relative)] = [f"shape {a.shape} vs {b.shape}"]
            continue
        columns = []
        for column in a.columns:
            x, y = a[column], b[column]
            if pd.api.types.is_numeric_dtype(x) and pd.api.types.is_numeric_dtype(y):
                same = np.isclose(
                    x.to_numpy(float), y.to_numpy(float), rtol=1e-9, atol=1e-12, equal_nan=True
                ).all()
            else:
                same = x.astype(str).equals(y.astype(str))
            if not same:
                columns.append(column)
        if columns:
            found[str(relative)] = columns
    return found


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--config", default=None, help="icp.toml (default: the demo data)")
    parser.add_argument("--seed", type=int, default=7, help="seed of the shuffle")
    args = parser.parse_args(argv)

    import matplotlib

    matplotlib.use("agg")
    from icp_research.data.demo import DEMO_CONFIG
    from icp_research.data.loading import load_tables

    data = load_tables(args.config or DEMO_CONFIG)
    shuffled = copy.copy(data)
    shuffled.tables = {
        name: frame.sample(frac=1, random_state=args.seed).reset_index(drop=True)
        for name, frame in data.tables.items()
    }
    shuffled.derived, shuffled.derived_meta = {}, {}
    with tempfile.TemporaryDirectory() as folder:
        as_exported, reordered = Path(folder) / "as_exported", Path(folder) / "shuffled"
        failed = run_reports(data, as_exported) + run_reports(shuffled, reordered)
        found = differences(as_exported, reordered)
    for line in failed:
        print(f"failed: {line}")
    for name, columns in found.items():
        print(f"differs: {name}: {', '.join(columns)}")
    if not failed and not found:
        print("the same results in both row orders")
    return 1 if failed or found else 0


if __name__ == "__main__":
    raise SystemExit(main())
