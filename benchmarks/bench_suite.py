"""Suite overhead: the demo suite vs one bare papermill run + HTML export, in the same sitting.

The reference is the cheapest possible report: a kernel that imports pandas, seaborn,
statsmodels and scipy, executed by papermill and exported to HTML by nbconvert (in-process).
The target (issue: performance) is a whole demo suite within 3x that reference.

The suite runs twice per round: as it runs by default (report kernels forked from a warm parent
that imported the stack once, see icp_research/pipeline/kernels.py) and with every kernel a
fresh interpreter (``ICP_RESEARCH_NO_FORK=1``), so that the gain is measured in the same sitting.

    python benchmarks/bench_suite.py [--repeat 3] [--jobs N] [--no-cold]

Prints medians of ``--repeat`` runs of each, interleaved so that machine load hits all alike,
and their ratios; writes benchmarks/out/suite.json.
"""

from __future__ import annotations

import argparse
import json
import os
import resource
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import nbformat
from nbformat.v4 import new_code_cell, new_notebook

HERE = Path(__file__).resolve().parent
#: CPU-seconds (user + system) of every process each measured command ran, kernels included:
#: unlike wall time, hardly changed by other load on the machine.
CPU: dict[str, list[float]] = {}


def _children_cpu() -> float:
    usage = resource.getrusage(resource.RUSAGE_CHILDREN)
    return usage.ru_utime + usage.ru_stime


def _measured(label: str, cmd: list[str], **kwargs) -> tuple[float, subprocess.CompletedProcess]:
    cpu, started = _children_cpu(), time.perf_counter()
    proc = subprocess.run(cmd, capture_output=True, text=True, **kwargs)
    wall = time.perf_counter() - started
    CPU.setdefault(label, []).append(_children_cpu() - cpu)
    return wall, proc


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
    wall, proc = _measured("bare", [sys.executable, "-c", code])
    proc.check_returncode()
    return wall


def run_suite(workdir: Path, jobs: int | None, cache: bool = False, fork: bool = True) -> float:
    """One demo suite run; without ``cache`` every report runs (--no-cache), as a first run;
    without ``fork`` every report kernel starts as a fresh interpreter."""
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
    env = dict(os.environ)
    env.pop("ICP_RESEARCH_NO_FORK", None)
    if not fork:
        env["ICP_RESEARCH_NO_FORK"] = "1"
    label = "cached" if cache else ("suite" if fork else "no_fork_suite")
    wall, proc = _measured(label, cmd, env=env)
    if proc.returncode != 0:
        raise SystemExit(f"suite failed ({proc.returncode}): {proc.stderr[-2000:]}")
    return wall


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--repeat", type=int, default=3)
    parser.add_argument("--jobs", type=int, default=None)
    parser.add_argument(
        "--no-cold",
        action="store_true",
        help="skip the suite with fresh-interpreter kernels (ICP_RESEARCH_NO_FORK=1)",
    )
    args = parser.parse_args()
    with tempfile.TemporaryDirectory() as tmp:
        workdir = Path(tmp)
        bare_notebook(workdir / "bare.ipynb")
        bare, suite, cold, cached = [], [], [], []
        for i in range(args.repeat):
            bare.append(run_bare(workdir))
            suite.append(run_suite(workdir, args.jobs))
            if not args.no_cold:
                cold.append(run_suite(workdir, args.jobs, fork=False))
            cached.append(run_suite(workdir, args.jobs, cache=True))
            print(
                f"run {i + 1}: bare {bare[-1]:.1f}s, suite {suite[-1]:.1f}s"
                + (f", suite with fresh kernels {cold[-1]:.1f}s" if cold else "")
                + f", unchanged rerun from the cache {cached[-1]:.1f}s",
                flush=True,
            )
    floor = statistics.median(bare)
    result = {
        "bare_median_s": floor,
        "suite_median_s": statistics.median(suite),
        "ratio": statistics.median(suite) / floor,
        "bare_runs": bare,
        "suite_runs": suite,
        "cached_rerun_median_s": statistics.median(cached),
        "repeat": args.repeat,
        "command": " ".join(["python", "benchmarks/bench_suite.py", *sys.argv[1:]]),
        "cpu_median_s": {label: statistics.median(runs) for label, runs in CPU.items()},
        "cpu_runs_s": CPU,
    }
    if cold:
        result.update(
            no_fork_suite_median_s=statistics.median(cold),
            no_fork_ratio=statistics.median(cold) / floor,
            no_fork_suite_runs=cold,
        )
    print(
        f"bare papermill + HTML: median {floor:.1f}s; demo suite (forked kernels): median "
        f"{result['suite_median_s']:.1f}s, ratio {result['ratio']:.2f}x (target <= 3x)"
        + (
            f"; with fresh kernels (ICP_RESEARCH_NO_FORK=1): median "
            f"{result['no_fork_suite_median_s']:.1f}s, ratio {result['no_fork_ratio']:.2f}x"
            if cold
            else ""
        )
        + f"; an unchanged rerun from the cache: median {result['cached_rerun_median_s']:.1f}s"
    )
    print(
        "CPU-seconds, all processes (median): "
        + ", ".join(f"{label} {value:.1f}" for label, value in result["cpu_median_s"].items())
    )
    out = HERE / "out"
    out.mkdir(exist_ok=True)
    (out / "suite.json").write_text(json.dumps(result, indent=2))


if __name__ == "__main__":
    main()
