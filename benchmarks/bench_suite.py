"""Suite overhead: the demo suite vs one bare papermill run + HTML export, in the same sitting.

The reference is the cheapest possible report: a kernel that imports pandas, seaborn,
statsmodels and scipy, executed by papermill and exported to HTML by nbconvert (in-process).
The target (issue: performance) is a whole demo suite within 3x that reference.

    python benchmarks/bench_suite.py [--repeat 3] [--jobs N]

Prints medians of ``--repeat`` runs of each, interleaved so that machine load hits both alike,
and their ratio; writes benchmarks/out/suite.json.
"""

from __future__ import annotations

import argparse
import json
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import nbformat
from nbformat.v4 import new_code_cell, new_notebook

HERE = Path(__file__).resolve().parent


def bare_notebook(path: Path) -> None:
    nb = new_notebook(
        cells=[
            new_code_cell(
                "import pandas as pd\nimport seaborn as sns\nimport statsmodels.api as sm\nimport scipy.stats"
            ),
        ]
    )
    nb.metadata["kernelspec"] = {
        "name": "python3",
        "display_name": "Python 3",
        "language": "python",
    }
    nbformat.write(nb, path)


def run_bare(workdir: Path) -> float:
    """papermill + nbconvert HTML export of the bare notebook, in a fresh interpreter."""
    code = f"""
import time, papermill as pm, nbformat
from nbconvert import HTMLExporter
from icp_research.pipeline.runner import ensure_kernel
t = time.perf_counter()
kernel = ensure_kernel()
pm.execute_notebook({str(workdir / "bare.ipynb")!r}, {str(workdir / "bare.out.ipynb")!r}, kernel_name=kernel, progress_bar=False)
HTMLExporter().from_notebook_node(nbformat.read({str(workdir / "bare.out.ipynb")!r}, as_version=4))
print(time.perf_counter() - t)
"""
    started = time.perf_counter()
    subprocess.run([sys.executable, "-c", code], check=True, capture_output=True, text=True)
    return time.perf_counter() - started


def run_suite(workdir: Path, jobs: int | None, cache: bool = False) -> float:
    """One demo suite run; without ``cache`` every report runs (--no-cache), as a first run."""
    cmd = [
        sys.executable,
        "-m",
        "icp_research.cli",
        "run",
        "--demo",
        "--out",
        str(workdir / "demo"),
        "--force",
        "--quiet",
    ]
    if jobs:
        cmd += ["--jobs", str(jobs)]
    if not cache:
        cmd.append("--no-cache")
    started = time.perf_counter()
    proc = subprocess.run(cmd, capture_output=True, text=True)
    if proc.returncode != 0:
        raise SystemExit(f"suite failed ({proc.returncode}): {proc.stderr[-2000:]}")
    return time.perf_counter() - started


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--repeat", type=int, default=3)
    parser.add_argument("--jobs", type=int, default=None)
    args = parser.parse_args()
    with tempfile.TemporaryDirectory() as tmp:
        workdir = Path(tmp)
        bare_notebook(workdir / "bare.ipynb")
        bare, suite, cached = [], [], []
        for i in range(args.repeat):
            bare.append(run_bare(workdir))
            suite.append(run_suite(workdir, args.jobs))
            cached.append(run_suite(workdir, args.jobs, cache=True))
            print(
                f"run {i + 1}: bare {bare[-1]:.1f}s, suite {suite[-1]:.1f}s, "
                f"unchanged rerun from the cache {cached[-1]:.1f}s",
                flush=True,
            )
    result = {
        "bare_median_s": statistics.median(bare),
        "suite_median_s": statistics.median(suite),
        "ratio": statistics.median(suite) / statistics.median(bare),
        "bare_runs": bare,
        "suite_runs": suite,
        "cached_rerun_median_s": statistics.median(cached),
        "repeat": args.repeat,
    }
    print(
        f"bare papermill + HTML: median {result['bare_median_s']:.1f}s; demo suite: median "
        f"{result['suite_median_s']:.1f}s; ratio {result['ratio']:.2f}x (target <= 3x); an "
        f"unchanged rerun from the cache: median {result['cached_rerun_median_s']:.1f}s"
    )
    out = HERE / "out"
    out.mkdir(exist_ok=True)
    (out / "suite.json").write_text(json.dumps(result, indent=2))


if __name__ == "__main__":
    main()
