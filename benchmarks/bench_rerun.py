"""A cached rerun after changing one parameter of one report, against a full run (demo data,
medians of several runs in the same sitting).

    python benchmarks/bench_rerun.py [--repeat 3]
"""

from __future__ import annotations

import argparse
import json
import shutil
import statistics
import tempfile
import time
from pathlib import Path

from icp_research.bundled import notebooks_dir
from icp_research.pipeline.runner import Progress, run_suite

REPORT = "04_predictor_significance.ipynb"


def _set_parameter(path: Path, old: str, new: str) -> None:
    nb = json.loads(path.read_text(encoding="utf-8"))
    cell = next(c for c in nb["cells"] if "parameters" in c["metadata"].get("tags", []))
    source = "".join(cell["source"])
    if old not in source:
        raise SystemExit(f"{path.name}: parameter line {old!r} not found")
    cell["source"] = source.replace(old, new)
    path.write_text(json.dumps(nb, indent=1), encoding="utf-8")


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--repeat", type=int, default=3)
    args = parser.parse_args(argv)
    quiet = Progress(quiet=True)
    full, rerun = [], []
    for i in range(args.repeat):
        with tempfile.TemporaryDirectory() as folder:
            notebooks = Path(folder) / "notebooks"
            shutil.copytree(notebooks_dir(), notebooks)
            out = Path(folder) / "reports" / "demo"
            started = time.perf_counter()
            run_suite(demo=True, out=out, notebooks_dir=notebooks, progress=quiet)
            full.append(time.perf_counter() - started)
            value = 5 - i % 2  # a different value each time, so the report really changes
            _set_parameter(
                notebooks / REPORT,
                "max_characteristics: int = 5",
                f"max_characteristics: int = {value - 1}",
            )
            started = time.perf_counter()
            result = run_suite(
                demo=True, out=out, notebooks_dir=notebooks, force=True, progress=quiet
            )
            rerun.append(time.perf_counter() - started)
            reran = sorted(o.name for o in result.outcomes if o.status == "ok" and not o.reused)
    f, r = statistics.median(full), statistics.median(rerun)
    print(f"full demo run:                         {f:.1f} s (median of {len(full)})")
    print(f"rerun after one parameter of {REPORT[:2]} changed: {r:.1f} s (median of {len(rerun)})")
    print(f"reran: {', '.join(reran)}; the rest reused from the cache")
    print(f"rerun / full: {r / f:.2f}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
