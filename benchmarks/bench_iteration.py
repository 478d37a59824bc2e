"""The analyst's loop in JupyterLab: ``open_study`` + one analysis, parsing the exports vs
reusing the latest run's fresh snapshot (medians of several runs, same sitting).

    python benchmarks/bench_iteration.py [--accounts 100000] [--repeat 3]
"""

from __future__ import annotations

import argparse
import statistics
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))
from generate import generate_project  # noqa: E402

import icp_research  # noqa: E402
from icp_research.analyses.deals import lost_deal_analysis  # noqa: E402
from icp_research.data.loading import load_tables  # noqa: E402


def _loop(config: Path, reuse: bool) -> float:
    started = time.perf_counter()
    study = icp_research.open_study(config, reuse_snapshot=reuse)
    lost_deal_analysis(study)
    return time.perf_counter() - started


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--accounts", type=int, default=100_000)
    parser.add_argument("--repeat", type=int, default=3)
    args = parser.parse_args(argv)
    with tempfile.TemporaryDirectory() as folder:
        config = generate_project(
            Path(folder) / "project",
            accounts=args.accounts,
            opportunities=args.accounts * 10,
            subscriptions=args.accounts,
            fmt="csv",
        )
        cfg = icp_research.load_config(config)
        # What `icp-research run` leaves behind: the snapshot of the run's data.
        load_tables(cfg).save(cfg.reports_dir / "latest" / "artifacts" / "data")
        parse = [_loop(config, reuse=False) for _ in range(args.repeat)]
        reuse = [_loop(config, reuse=True) for _ in range(args.repeat)]
    p, r = statistics.median(parse), statistics.median(reuse)
    print(f"accounts {args.accounts:,}, deals {args.accounts * 10:,} (CSV exports)")
    print(
        f"open_study + lost-deal analysis, parsing the exports: {p:.1f} s (median of {len(parse)})"
    )
    print(
        f"open_study + lost-deal analysis, fresh snapshot:     {r:.1f} s (median of {len(reuse)})"
    )
    print(f"speed-up: {p / r:.1f}x")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
