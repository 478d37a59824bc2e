"""Scale benchmark: how loading, account facts and deal facts (and the whole suite) grow with rows.

For each scale a synthetic project is generated once (``benchmarks/generate.py``, cached under
``benchmarks/out/data/``) and measured in fresh child processes, ``--repeat`` times (median):

* ``load``      ``icp_research.data.loading.load_tables`` (read, map, parse, validate every export)
* ``as_of``     ``icp_research.data.facts.as_of_view`` (the tables as known on the as-of date)
* ``facts``     ``icp_research.data.facts.account_facts`` on that view
* ``deals``     ``icp_research.data.facts.deal_facts`` on that view
* ``suite``     (``--suite``) ``icp-research run --config ... --out ...`` on the project

Peak memory of a step is the process's peak resident set size while the step ran (Linux
``VmHWM``, reset before each step), so it includes the tables the step starts from; ``peak`` is
the child's ``ru_maxrss`` from ``wait4``. For the suite, ``tree peak`` is the largest sum of
the resident sets of the runner and its kernels, sampled every 0.2 s (shared pages counted
in every process that maps them), and ``tree PSS`` the largest sum of their proportional set
sizes (shared pages split among the processes: what the run costs the machine).

Scales (accounts / opportunities / subscriptions): 10k = 1k / 10k / 10k, 100k = 10k / 100k /
100k, 1m = 100k / 1M / 1M (the headline size of the performance targets).

    python benchmarks/bench_scale.py                      # 10k, 100k, 1m; 3 runs each
    python benchmarks/bench_scale.py --scales 1m --suite --repeat 1
    python benchmarks/bench_scale.py --scales 1m --profile   # cProfile of load + facts

Results are printed and written to ``benchmarks/out/scale-<label>.json``.
"""

from __future__ import annotations

import argparse
import datetime as dt
import json
import os
import platform
import statistics
import subprocess
import sys
import threading
import time
from pathlib import Path

HERE = Path(__file__).resolve().parent
ROOT = HERE.parent
OUT = HERE / "out"
SCALES = {
    "10k": (1_000, 10_000, 10_000),
    "100k": (10_000, 100_000, 100_000),
    "1m": (100_000, 1_000_000, 1_000_000),
    # The size of a product-led company's CRM (accounts = workspaces): run it with
    # --format parquet; it needs about 10 GB of disk for the data and the run.
    "10m": (1_000_000, 10_000_000, 1_000_000),
}
STEPS = ("load", "as_of", "facts", "deals")


# ---------------------------------------------------------------------------------------------
# Child side: one measured run in a fresh interpreter


def _reset_peak() -> bool:
    """Reset this process's peak resident set size (Linux); False where not supported."""
    try:
        with open("/proc/self/clear_refs", "w") as handle:
            handle.write("5")
        return True
    except OSError:
        return False


def _peak_mib() -> float:
    try:
        with open("/proc/self/status") as handle:
            for line in handle:
                if line.startswith("VmHWM:"):
                    return int(line.split()[1]) / 1024
    except OSError:
        pass
    import resource

    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024


def _cpu_seconds() -> float:
    import resource

    usage = resource.getrusage(resource.RUSAGE_SELF)
    return usage.ru_utime + usage.ru_stime


def child(config_path: str, profile: str | None) -> None:
    """Run load -> as-of view -> account facts -> deal facts; print one JSON line."""
    from icp_research.data.config import load_config
    from icp_research.data.facts import account_facts, as_of_view, deal_facts
    from icp_research.data.loading import load_tables

    config = load_config(config_path)
    seconds, cpu, peaks = {}, {}, {}
    profiler = None
    if profile:
        import cProfile

        profiler = cProfile.Profile()
        profiler.enable()

    def step(name, func):
        resettable = _reset_peak()
        started, cpu_started = time.perf_counter(), _cpu_seconds()
        value = func()
        seconds[name] = time.perf_counter() - started
        cpu[name] = _cpu_seconds() - cpu_started
        peaks[name] = _peak_mib() if resettable else None
        return value

    dataset = step("load", lambda: load_tables(config))
    as_of = config.as_of
    view = step("as_of", lambda: as_of_view(dataset.tables, as_of))
    facts = step(
        "facts",
        lambda: account_facts(
            view,
            as_of,
            analysis=config.analysis,
            segments=config.segments,
            already_as_of=True,
            **_usage_kwargs(dataset),
        ),
    )
    deals = step("deals", lambda: deal_facts(view, as_of, already_as_of=True))
    if profiler is not None:
        profiler.disable()
        profiler.dump_stats(profile)
    rows = {name: len(frame) for name, frame in dataset.tables.items()}
    print(
        json.dumps(
            {
                "seconds": seconds,
                "cpu_seconds": cpu,
                "peak_mib": peaks,
                "rows": rows,
                "facts_shape": list(facts.shape),
                "deals_shape": list(deals.shape),
            }
        )
    )


def _usage_kwargs(dataset) -> dict:
    # Usage sources aggregated outside pandas reach the facts through the dataset.
    source = getattr(dataset, "usage_source", None)
    return {"usage_source": source} if source is not None else {}


# ---------------------------------------------------------------------------------------------
# Parent side


# Where the measured icp_research is imported from (--code: another checkout, e.g. main, to
# compare before and after in the same sitting).
CODE = ROOT


def _env() -> dict:
    env = dict(os.environ)
    env["PYTHONPATH"] = os.pathsep.join(
        [str(CODE)] + [p for p in env.get("PYTHONPATH", "").split(os.pathsep) if p]
    )
    env.setdefault("PYTHONWARNINGS", "ignore")
    return env


def _descendants(root: int) -> list[int]:
    children: dict[int, list[int]] = {}
    for entry in os.listdir("/proc"):
        if not entry.isdigit():
            continue
        try:
            with open(f"/proc/{entry}/stat") as handle:
                fields = handle.read().rsplit(")", 1)[1].split()
        except OSError:
            continue
        children.setdefault(int(fields[1]), []).append(int(entry))
    found, todo = [], [root]
    while todo:
        pid = todo.pop()
        found.append(pid)
        todo.extend(children.get(pid, []))
    return found


def _tree_rss_mib(root: int, peaks: dict | None = None) -> float:
    """Resident memory of ``root`` and its descendants (MiB); ``peaks`` collects each
    process's own peak (``VmHWM``) by pid."""
    page = os.sysconf("SC_PAGE_SIZE")
    total = 0
    for pid in _descendants(root):
        try:
            with open(f"/proc/{pid}/statm") as handle:
                total += int(handle.read().split()[1]) * page
            if peaks is not None:
                with open(f"/proc/{pid}/status") as handle:
                    for line in handle:
                        if line.startswith("VmHWM:"):
                            peaks[pid] = max(peaks.get(pid, 0.0), int(line.split()[1]) / 1024)
        except OSError:
            continue
    return total / 2**20


def _tree_pss_mib(root: int) -> float:
    """Proportional set size of ``root`` and its descendants (MiB): pages shared between the
    kernels (libraries, the snapshot's memory maps) counted once, split among their users."""
    total = 0.0
    for pid in _descendants(root):
        try:
            with open(f"/proc/{pid}/smaps_rollup") as handle:
                for line in handle:
                    if line.startswith("Pss:"):
                        total += int(line.split()[1]) / 1024
                        break
        except OSError:
            continue
    return total


def run_measured(command: list[str], sample_tree: bool = False, allowed=(0,)) -> dict:
    """Run ``command``; wall seconds, ru_maxrss of the child (MiB), optional tree RSS peak."""
    import tempfile

    with tempfile.TemporaryFile() as stdout, tempfile.TemporaryFile() as stderr:
        started = time.perf_counter()
        process = subprocess.Popen(command, stdout=stdout, stderr=stderr, env=_env(), cwd=CODE)
        tree_peak = [0.0]
        pss_peak = [0.0]
        process_peaks: dict[int, float] = {}
        done = threading.Event()

        def sample():
            while not done.wait(0.2):
                tree_peak[0] = max(tree_peak[0], _tree_rss_mib(process.pid, process_peaks))
                pss_peak[0] = max(pss_peak[0], _tree_pss_mib(process.pid))

        sampler = threading.Thread(target=sample, daemon=True) if sample_tree else None
        if sampler:
            sampler.start()
        # wait4, not wait: it returns this child's own resource usage.
        _, status, usage = os.wait4(process.pid, 0)
        process.returncode = os.waitstatus_to_exitcode(status)
        seconds = time.perf_counter() - started
        done.set()
        if sampler:
            sampler.join()
        stdout.seek(0)
        stderr.seek(0)
        out_text, err_text = stdout.read().decode(), stderr.read().decode()
    if process.returncode not in allowed:
        raise RuntimeError(
            f"{' '.join(command)} failed ({process.returncode}):\n{err_text[-3000:]}"
        )
    return {
        "seconds": seconds,
        "max_rss_mib": usage.ru_maxrss / 1024,
        # CPU of the child and the processes it waited for (kernels): less noisy than wall
        # time on a shared machine.
        "cpu_seconds": usage.ru_utime + usage.ru_stime,
        "tree_peak_mib": tree_peak[0] if sample_tree else None,
        "tree_pss_peak_mib": pss_peak[0] if sample_tree else None,
        # Each process's own peak (the runner and every kernel), largest first.
        "process_peaks_mib": sorted(process_peaks.values(), reverse=True)[:12],
        "stdout": out_text,
    }


def _json_line(stdout: str) -> str:
    """The child's JSON result line (the last line holding a JSON object)."""
    lines = [line[line.index("{") :] for line in stdout.splitlines() if "{" in line]
    if not lines:
        raise RuntimeError(f"no result from the child process; its output was:\n{stdout[-2000:]}")
    return lines[-1]


def ensure_project(scale: str, fmt: str, seed: int) -> Path:
    accounts, opportunities, subscriptions = SCALES[scale]
    folder = OUT / "data" / f"{fmt}-{scale}-seed{seed}"
    config = folder / "icp.toml"
    if not config.exists():
        print(f"generating {scale} ({fmt}) in {folder} ...", flush=True)
        sys.path.insert(0, str(HERE))
        from generate import generate_project

        generate_project(
            folder,
            accounts=accounts,
            opportunities=opportunities,
            subscriptions=subscriptions,
            fmt=fmt,
            seed=seed,
        )
    return config


def measure_steps(config: Path, repeat: int) -> dict:
    runs = []
    for _ in range(repeat):
        result = run_measured([sys.executable, __file__, "--child", str(config)])
        line = _json_line(result["stdout"])
        runs.append({**json.loads(line), "max_rss_mib": result["max_rss_mib"]})
    summary = {
        "runs": len(runs),
        "rows": runs[0]["rows"],
        "seconds": {s: statistics.median(r["seconds"][s] for r in runs) for s in STEPS},
        "cpu_seconds": {s: statistics.median(r["cpu_seconds"][s] for r in runs) for s in STEPS},
        "peak_mib": {
            s: (
                statistics.median(r["peak_mib"][s] for r in runs)
                if runs[0]["peak_mib"][s] is not None
                else None
            )
            for s in STEPS
        },
        "max_rss_mib": statistics.median(r["max_rss_mib"] for r in runs),
        "all_seconds": [r["seconds"] for r in runs],
    }
    summary["seconds"]["load+facts+deals"] = statistics.median(
        sum(r["seconds"].values()) for r in runs
    )
    summary["cpu_seconds"]["load+facts+deals"] = statistics.median(
        sum(r["cpu_seconds"].values()) for r in runs
    )
    return summary


def measure_suite(config: Path, scale: str, repeat: int, jobs: int | None = None) -> dict:
    out_dir = OUT / "runs" / f"suite-{scale}"
    runs = []
    for _ in range(repeat):
        command = [
            sys.executable,
            "-m",
            "icp_research.cli",
            "run",
            "--config",
            str(config),
            "--out",
            str(out_dir),
            "--force",
            "--no-cache",  # every run cold: a cached rerun would time nothing
            "--quiet",
            *(["--jobs", str(jobs)] if jobs else []),
        ]
        # Exit 1: a report failed; the others ran and are measured (statuses are recorded).
        runs.append(run_measured(command, sample_tree=True, allowed=(0, 1)))
    manifest = json.loads((out_dir / "artifacts" / "manifest.json").read_text())
    return {
        "runs": len(runs),
        "jobs": jobs or "default (CPU count)",
        "seconds": statistics.median(r["seconds"] for r in runs),
        "cpu_seconds": statistics.median(r["cpu_seconds"] for r in runs),
        "max_rss_mib": statistics.median(r["max_rss_mib"] for r in runs),
        "tree_peak_mib": statistics.median(r["tree_peak_mib"] for r in runs),
        "tree_pss_peak_mib": statistics.median(r["tree_pss_peak_mib"] for r in runs),
        "process_peaks_mib": [round(p) for p in runs[-1]["process_peaks_mib"]],
        "notebooks": {n["name"]: [n["status"], n["seconds"]] for n in manifest["notebooks"]},
    }


def profile(config: Path, top: int) -> str:
    import pstats

    path = OUT / f"profile-{config.parent.name}.prof"
    run_measured([sys.executable, __file__, "--child", str(config), "--profile-to", str(path)])
    stats = pstats.Stats(str(path))
    stats.strip_dirs()
    stats.sort_stats("cumulative")
    print(f"\ncProfile of load + as-of view + account facts + deal facts ({config.parent.name})")
    print(f"(saved to {path.relative_to(ROOT)}; open it with `python -m pstats`)\n")
    stats.print_stats(top)
    stats.sort_stats("tottime")
    stats.print_stats(top)
    return str(path)


def _fmt_ratio(later: float | None, earlier: float | None) -> str:
    if not later or not earlier:
        return "-"
    return f"{later / earlier:.1f}x"


def print_table(results: dict) -> None:
    scales = list(results)
    print()
    header = f"{'scale':>6} {'accounts':>9} {'opps':>10} {'subs':>10}"
    for step in STEPS:
        header += f" {step + ' s':>9} {'MiB':>6}"
    header += f" {'total s':>8} {'cpu s':>7} {'peak MiB':>9}"
    if any("suite" in r for r in results.values()):
        header += f" {'suite s':>8} {'cpu s':>7} {'suite MiB':>9} {'tree MiB':>9} {'tree PSS':>9}"
    print(header)
    for scale in scales:
        r = results[scale]
        rows = r["steps"]["rows"]
        line = (
            f"{scale:>6} {rows.get('accounts', 0):>9,} {rows.get('opportunities', 0):>10,}"
            f" {rows.get('subscriptions', 0):>10,}"
        )
        for step in STEPS:
            peak = r["steps"]["peak_mib"][step]
            line += f" {r['steps']['seconds'][step]:>9.2f} {peak or 0:>6.0f}"
        line += (
            f" {r['steps']['seconds']['load+facts+deals']:>8.2f}"
            f" {r['steps']['cpu_seconds']['load+facts+deals']:>7.2f}"
            f" {r['steps']['max_rss_mib']:>9.0f}"
        )
        if "suite" in r:
            s = r["suite"]
            line += (
                f" {s['seconds']:>8.1f} {s['cpu_seconds']:>7.1f} {s['max_rss_mib']:>9.0f}"
                f" {s['tree_peak_mib']:>9.0f} {s['tree_pss_peak_mib']:>9.0f}"
            )
        print(line)
    for earlier, later in zip(scales, scales[1:], strict=False):
        a, b = results[earlier], results[later]
        growth = ", ".join(
            f"{step} {_fmt_ratio(b['steps']['seconds'][step], a['steps']['seconds'][step])}"
            for step in (*STEPS, "load+facts+deals")
        )
        rows_ratio = b["steps"]["rows"]["opportunities"] / a["steps"]["rows"]["opportunities"]
        memory = _fmt_ratio(b["steps"]["max_rss_mib"], a["steps"]["max_rss_mib"])
        cpu = _fmt_ratio(
            b["steps"]["cpu_seconds"]["load+facts+deals"],
            a["steps"]["cpu_seconds"]["load+facts+deals"],
        )
        print(
            f"growth {earlier} -> {later} (rows x{rows_ratio:.0f}): wall time {growth}; "
            f"cpu {cpu}; peak memory {memory}"
        )


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--scales", default="10k,100k,1m", help="comma-separated: 10k,100k,1m,10m")
    parser.add_argument("--repeat", type=int, default=3, help="runs per scale (median)")
    parser.add_argument("--format", choices=["csv", "parquet"], default="csv")
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--suite", action="store_true", help="also time `icp-research run`")
    parser.add_argument(
        "--suite-repeat", type=int, default=1, help="suite runs per scale (default 1: slow)"
    )
    parser.add_argument(
        "--jobs", type=int, default=None, help="reports side by side in --suite (default: CPUs)"
    )
    parser.add_argument(
        "--profile", action="store_true", help="cProfile load + facts at the largest scale"
    )
    parser.add_argument("--top", type=int, default=30, help="functions shown by --profile")
    parser.add_argument("--label", default=None, help="name of the JSON results file")
    parser.add_argument(
        "--code",
        default=None,
        help="measure the icp_research of another checkout (e.g. a copy of main, for before/after)",
    )
    parser.add_argument("--child", help=argparse.SUPPRESS)
    parser.add_argument("--profile-to", help=argparse.SUPPRESS)
    args = parser.parse_args(argv)
    if args.child:
        child(args.child, args.profile_to)
        return

    global CODE
    if args.code:
        CODE = Path(args.code).resolve()
    scales = [s.strip().lower() for s in args.scales.split(",") if s.strip()]
    unknown = [s for s in scales if s not in SCALES]
    if unknown:
        parser.error(f"unknown scale {unknown[0]!r}; use {', '.join(SCALES)}")
    OUT.mkdir(parents=True, exist_ok=True)
    results: dict = {}
    for scale in scales:
        config = ensure_project(scale, args.format, args.seed)
        print(f"measuring {scale}: {args.repeat} run(s) ...", flush=True)
        results[scale] = {"steps": measure_steps(config, args.repeat)}
        if args.suite:
            print(f"running the suite on {scale}: {args.suite_repeat} run(s) ...", flush=True)
            results[scale]["suite"] = measure_suite(config, scale, args.suite_repeat, args.jobs)
    print_table(results)
    profile_path = None
    if args.profile:
        profile_path = profile(ensure_project(scales[-1], args.format, args.seed), args.top)

    label = args.label or dt.datetime.now().strftime("%Y%m%d-%H%M%S")
    record = {
        "command": " ".join([Path(sys.executable).name, *sys.argv]),
        "when": dt.datetime.now().isoformat(timespec="seconds"),
        "machine": {
            "python": platform.python_version(),
            "platform": platform.platform(),
            "cpus": os.cpu_count(),
            "versions": _versions(),
        },
        "format": args.format,
        "code": str(CODE),
        "results": results,
        "profile": profile_path,
    }
    path = OUT / f"scale-{label}.json"
    path.write_text(json.dumps(record, indent=2), encoding="utf-8")
    print(f"\nresults written to {path.relative_to(ROOT)}")


def _versions() -> dict:
    from importlib.metadata import PackageNotFoundError, version

    found = {}
    for package in ("pandas", "numpy", "pyarrow", "duckdb"):
        try:
            found[package] = version(package)
        except PackageNotFoundError:
            found[package] = None
    return found


if __name__ == "__main__":
    main()
