"""Subgroup discovery speed: icp_research.methods.subgroups against pysubgroup's Apriori.

Generates accounts with categorical and numeric attributes and a planted best-customer pattern,
then times, on the same rows, the same conditions (one per categorical value, one per numeric
bin), WRAcc, the same minimum support and the top 20:

1. pysubgroup's Apriori (bitset representation), given the conditions as its selectors;
2. ``find_subgroups`` with ranges of bins, value sets and pruning switched off (the same
   search), end to end from the raw DataFrame: discretising and encoding the columns,
   counting, significance for every subgroup searched, the result table. The "search stage"
   leaves out building the conditions (discretising and encoding), which pysubgroup is
   handed ready-made;
3. both at depth 3, and ``find_subgroups`` with its defaults (ranges of bins, value sets,
   pruning) at depths 2 and 3.

Figures are medians of several runs, measured in the same sitting; ratios are pysubgroup's
median over ours. pysubgroup is a benchmark-only dependency.

    python benchmarks/bench_subgroups.py            # 100,000 rows, 5 runs each
    python benchmarks/bench_subgroups.py --quick    # 20,000 rows, 3 runs each
"""

from __future__ import annotations

import argparse
import json
import statistics
import sys
import time
from pathlib import Path

import numpy as np
import pandas as pd

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from icp_research.methods.binning import MISSING  # noqa: E402
from icp_research.methods.subgroups import _build_attributes, find_subgroups  # noqa: E402

CATEGORICAL = ["industry", "region", "crm", "plan"]
NUMERIC = ["employees", "annual_revenue", "founded_year", "seats"]


def make_accounts(n_rows: int, seed: int = 0) -> pd.DataFrame:
    """``n_rows`` accounts; best customers are planted in FinTech/SaaS with 100-1,000 staff."""
    rng = np.random.default_rng(seed)
    industry = rng.choice(
        ["SaaS", "FinTech", "Retail", "Healthcare", "Manufacturing", "Education", "Media", "Gov"],
        n_rows,
        p=[0.2, 0.12, 0.15, 0.13, 0.12, 0.1, 0.1, 0.08],
    )
    employees = np.round(np.exp(rng.uniform(np.log(5), np.log(20_000), n_rows)))
    frame = pd.DataFrame(
        {
            "industry": industry,
            "region": rng.choice(["NA", "EMEA", "APAC", "LATAM", None], n_rows),
            "crm": rng.choice(["HubSpot", "Salesforce", "Pipedrive", "Zoho", "none"], n_rows),
            "plan": rng.choice(["free", "starter", "pro", "enterprise"], n_rows),
            "employees": employees,
            "annual_revenue": employees * rng.lognormal(11, 0.6, n_rows),
            "founded_year": rng.integers(1980, 2024, n_rows).astype(float),
            "seats": rng.poisson(20, n_rows).astype(float),
        }
    )
    frame.loc[rng.random(n_rows) < 0.08, "employees"] = np.nan
    planted = frame["industry"].isin(["FinTech", "SaaS"]) & frame["employees"].between(100, 999)
    rate = np.where(planted, 0.45, 0.12) + np.where(frame["crm"] == "HubSpot", 0.05, 0)
    frame["best_customer"] = rng.random(n_rows) < rate
    return frame


def median_seconds(run, repeats: int, *, value: bool = False) -> tuple[float, object]:
    """Median wall time of ``repeats`` calls after one warm-up call, and the last result.

    With ``value=True``, ``run`` returns a duration itself and the median of those is taken.
    """
    result = run()
    times = []
    for _ in range(repeats):
        start = time.perf_counter()
        result = run()
        times.append(result if value else time.perf_counter() - start)
    return statistics.median(times), result


def _seconds(run) -> float:
    start = time.perf_counter()
    run()
    return time.perf_counter() - start


def pysubgroup_selectors(conditions: pd.Series, numeric: list[str]):
    """The same conditions as pysubgroup selectors."""
    import pysubgroup as ps

    selectors = []
    for text in conditions:
        condition = json.loads(text)
        attribute = condition["attribute"]
        if condition["op"] == "==":
            selectors.append(ps.EqualitySelector(attribute, condition["value"]))
        elif condition["op"] == "missing":
            value = np.nan if attribute in numeric else MISSING
            selectors.append(ps.EqualitySelector(attribute, value))
        else:
            low = -np.inf if condition["low"] is None else condition["low"]
            high = np.inf if condition["high"] is None else condition["high"]
            selectors.append(ps.IntervalSelector(attribute, low, high))
    return selectors


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--quick", action="store_true", help="20,000 rows and 3 runs each")
    parser.add_argument("--rows", type=int, default=None, help="number of accounts")
    parser.add_argument("--repeats", type=int, default=None, help="runs per measurement")
    args = parser.parse_args(argv)
    n_rows = args.rows or (20_000 if args.quick else 100_000)
    repeats = args.repeats or (3 if args.quick else 5)
    top_k = 20

    import warnings

    import pysubgroup as ps

    # pysubgroup divides by zero for empty conjunctions (two values of one attribute).
    warnings.filterwarnings("ignore", "invalid value encountered", RuntimeWarning)

    accounts = make_accounts(n_rows)
    plain = {"numeric_ranges": False, "value_sets": False, "prune_redundant": False}
    print(
        f"{n_rows:,} accounts, {len(CATEGORICAL)} categorical + {len(NUMERIC)} numeric "
        f"attributes, top {top_k} by WRAcc, minimum support 5%"
    )

    def ours(depth: int, **options):
        return find_subgroups(accounts, "best_customer", max_depth=depth, top_k=top_k, **options)

    probe = ours(1, **plain)
    selectors = pysubgroup_selectors(probe.tables["conditions"]["condition"], NUMERIC)
    min_count = probe.params["min_count"]
    ps_data = accounts.copy()
    for column in CATEGORICAL:
        ps_data[column] = ps_data[column].fillna(MISSING)

    def reference(depth: int):
        task = ps.SubgroupDiscoveryTask(
            ps_data,
            ps.BinaryTarget("best_customer", True),
            selectors,
            result_set_size=top_k,
            depth=depth,
            qf=ps.WRAccQF(),
            constraints=[ps.MinSupportConstraint(min_count)],
        )
        return ps.Apriori(use_numba=False).execute(task)

    def build_conditions():
        # The part of find_subgroups that discretises and encodes the columns.
        columns = [c for c in accounts.columns if c != "best_customer"]
        return _build_attributes(
            accounts, columns, min_count=min_count, n_bins=5, numeric_ranges=False, max_levels=30
        )

    rows = []
    for depth in (2, 3):
        reference_time, reference_result = median_seconds(lambda d=depth: reference(d), repeats)
        ours_time, ours_result = median_seconds(lambda d=depth: ours(d, **plain), repeats)
        # The search stage: end to end minus building the conditions, timed back to back.
        search_time, _ = median_seconds(
            lambda d=depth: -_seconds(build_conditions) + _seconds(lambda: ours(d, **plain)),
            repeats,
            value=True,
        )
        expected = np.sort([quality for quality, *_ in reference_result.results])
        same = np.allclose(expected, np.sort(ours_result.summary["wracc"]), rtol=0, atol=1e-12)
        rows.append((depth, reference_time, ours_time, search_time, same, ours_result.family_size))
    build, _ = median_seconds(build_conditions, repeats)
    defaults = {depth: median_seconds(lambda d=depth: ours(d), repeats) for depth in (2, 3)}

    print(f"conditions: {len(selectors)}; median of {repeats} runs, seconds")
    print(f"  building the conditions (ours)                  {build:8.3f}")
    for depth, reference_time, ours_time, search, same, family in rows:
        print(f"depth {depth} ({family:,} subgroups searched; same top-{top_k} qualities: {same})")
        print(f"  pysubgroup Apriori                              {reference_time:8.3f}")
        print(f"  find_subgroups, same search, end to end         {ours_time:8.3f}")
        print(f"  find_subgroups, same search, search stage       {search:8.3f}")
        print(
            f"  ratio end to end                                {reference_time / ours_time:8.1f}x"
        )
        print(f"  ratio search stage                              {reference_time / search:8.1f}x")
    for depth, (seconds, result) in defaults.items():
        print(
            f"find_subgroups defaults, depth {depth}                  {seconds:8.3f}"
            f"  ({result.family_size:,} subgroups searched)"
        )
    print(f"rank 1 with defaults at depth 3: {defaults[3][1].summary['description'].iloc[0]}")
    return 0 if all(row[4] for row in rows) else 1


if __name__ == "__main__":
    raise SystemExit(main())
