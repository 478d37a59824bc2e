"""Usage beyond memory: aggregate 50M product-usage events in Parquet with DuckDB.

Generates (once, cached under ``benchmarks/out/data/usage-<N>/``) ``--events`` usage events of
``--accounts`` accounts as several Parquet files, written chunk by chunk with pyarrow, then
measures ``icp_research.data.warehouse.aggregate_usage`` over ``part-*.parquet`` in a fresh child
process, ``--repeat`` times (median): wall time and peak resident memory (``ru_maxrss`` of the
child, from ``wait4``). For scale, it reports the size the events would take in memory: as
pandas DataFrame (``memory_usage(deep=True)`` of a 1M-row sample, scaled up) and as Arrow.
``--pandas-rows N`` also times the in-memory path (``pd.read_parquet`` + ``facts.usage_signals``)
on the first N events, for comparison.

    python benchmarks/bench_usage.py                    # 50M events, 100k accounts, 3 runs
    python benchmarks/bench_usage.py --events 5000000 --repeat 1 --pandas-rows 5000000

Results are printed and written to ``benchmarks/out/usage-<events>.json``.
"""

from __future__ import annotations

import argparse
import datetime as dt
import json
import statistics
import sys
import time
from pathlib import Path

import numpy as np

HERE = Path(__file__).resolve().parent
sys.path.insert(0, str(HERE))
sys.path.insert(1, str(HERE.parent))

from bench_scale import OUT, ROOT, _json_line, run_measured  # noqa: E402
from generate import (  # noqa: E402
    AS_OF,
    simulate_accounts,
    simulate_customers,
    simulate_deals,
    write_usage_events,
)

from icp_research.data.warehouse import MEMORY_LIMIT  # noqa: E402

FILES = 10


def ensure_events(events: int, accounts: int, seed: int) -> Path:
    folder = OUT / "data" / f"usage-{events}-{accounts}-seed{seed}"
    done = folder / "_complete"
    if done.exists():
        return folder
    print(f"generating {events:,} usage events in {FILES} Parquet files ...", flush=True)
    started = time.perf_counter()
    rng = np.random.default_rng(seed)
    account_facts = simulate_accounts(accounts, rng)
    deals = simulate_deals(account_facts, accounts * 10, rng)
    customers = simulate_customers(account_facts, deals, rng)
    del deals
    write_usage_events(account_facts, customers, events, folder, rng, files=FILES)
    done.write_text("")
    print(f"generated in {time.perf_counter() - started:.0f}s", flush=True)
    return folder


def in_memory_sizes(folder: Path, events: int) -> dict:
    """What the events would take in memory, scaled from a 1M-row sample (MiB)."""
    import pyarrow as pa
    import pyarrow.parquet as pq

    first = sorted(folder.glob("part-*.parquet"))[0]
    batch = next(pq.ParquetFile(first).iter_batches(batch_size=1_000_000))
    scale = events / batch.num_rows
    frame = batch.to_pandas()
    plain = pa.schema(
        [
            field.with_type(pa.string()) if pa.types.is_dictionary(field.type) else field
            for field in batch.schema
        ]
    )
    arrow_bytes = pa.Table.from_batches([batch]).cast(plain).nbytes
    return {
        "pandas_object_mib": frame.astype({"account_id": object, "metric": object})
        .memory_usage(deep=True)
        .sum()
        * scale
        / 2**20,
        "pandas_categorical_mib": frame.memory_usage(deep=True).sum() * scale / 2**20,
        "arrow_mib": arrow_bytes * scale / 2**20,
        "parquet_on_disk_mib": sum(p.stat().st_size for p in folder.glob("*.parquet")) / 2**20,
    }


CHILD_DUCKDB = """
import json, tempfile, time
from icp_research.data.warehouse import UsageColumns, aggregate_usage, connect
started = time.perf_counter()
with tempfile.TemporaryDirectory() as spill:
    connection = connect(memory_limit={memory_limit!r}, temp_directory=spill)
    signals = aggregate_usage(
        {pattern!r}, {as_of!r}, columns=UsageColumns(user_id="user_id"), connection=connection
    )
    connection.close()
print(json.dumps({{"seconds": time.perf_counter() - started, "accounts": len(signals),
                   "columns": len(signals.columns)}}))
"""

CHILD_PANDAS = """
import json, time
import pandas as pd
import pyarrow.parquet as pq
from icp_research.data.facts import usage_signals
started = time.perf_counter()
files = sorted(__import__("glob").glob({pattern!r}))
frames, rows = [], 0
for path in files:
    frame = pd.read_parquet(path)
    frames.append(frame)
    rows += len(frame)
    if rows >= {rows}:
        break
usage = pd.concat(frames, ignore_index=True).iloc[:{rows}]
usage["account_id"] = usage["account_id"].astype(str)
usage["metric"] = usage["metric"].astype(str)
usage["date"] = pd.to_datetime(usage["date"])
loaded = time.perf_counter() - started
ids = pd.Index(usage["account_id"].unique())
signals = usage_signals(usage, pd.Timestamp({as_of!r}), ids)
print(json.dumps({{"seconds": time.perf_counter() - started, "load_seconds": loaded,
                   "accounts": len(signals)}}))
"""


def measure(code: str, repeat: int) -> dict:
    runs = []
    for _ in range(repeat):
        result = run_measured([sys.executable, "-c", code])
        line = _json_line(result["stdout"])
        runs.append(
            {
                **json.loads(line),
                "max_rss_mib": result["max_rss_mib"],
                "cpu_seconds": result["cpu_seconds"],
            }
        )
    return {
        "runs": len(runs),
        "seconds": statistics.median(r["seconds"] for r in runs),
        "cpu_seconds": statistics.median(r["cpu_seconds"] for r in runs),
        "max_rss_mib": statistics.median(r["max_rss_mib"] for r in runs),
        "all": runs,
    }


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--events", type=int, default=50_000_000)
    parser.add_argument("--accounts", type=int, default=100_000)
    parser.add_argument("--repeat", type=int, default=3)
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument(
        "--pandas-rows", type=int, default=0, help="also time pandas on this many events"
    )
    parser.add_argument(
        "--memory-limit",
        default=MEMORY_LIMIT,
        help=f"DuckDB memory_limit (default: the kit's, {MEMORY_LIMIT})",
    )
    args = parser.parse_args(argv)

    folder = ensure_events(args.events, args.accounts, args.seed)
    pattern = str(folder / "part-*.parquet")
    sizes = in_memory_sizes(folder, args.events)
    print(f"measuring DuckDB over {pattern}: {args.repeat} run(s) ...", flush=True)
    duckdb_result = measure(
        CHILD_DUCKDB.format(
            pattern=pattern, as_of=AS_OF.isoformat(), memory_limit=args.memory_limit
        ),
        args.repeat,
    )
    pandas_result = None
    if args.pandas_rows:
        print(f"measuring pandas on {args.pandas_rows:,} events: 1 run ...", flush=True)
        pandas_result = measure(
            CHILD_PANDAS.format(pattern=pattern, as_of=AS_OF.isoformat(), rows=args.pandas_rows),
            1,
        )

    print()
    print(f"usage events                 {args.events:>12,} in {FILES} Parquet files")
    print(f"on disk (Parquet, zstd)      {sizes['parquet_on_disk_mib']:>12,.0f} MiB")
    print(f"in memory as Arrow           {sizes['arrow_mib']:>12,.0f} MiB")
    print(f"in memory as pandas (text)   {sizes['pandas_object_mib']:>12,.0f} MiB")
    print(f"in memory as pandas (categ.) {sizes['pandas_categorical_mib']:>12,.0f} MiB")
    first = duckdb_result["all"][0]
    print(
        f"DuckDB aggregation           {duckdb_result['seconds']:>12.1f} s  "
        f"(memory_limit {args.memory_limit}; "
        f"median of {duckdb_result['runs']}; {first['accounts']:,} accounts x "
        f"{first['columns']} columns)"
    )
    print(f"DuckDB CPU time              {duckdb_result['cpu_seconds']:>12.1f} s")
    print(f"DuckDB peak memory           {duckdb_result['max_rss_mib']:>12,.0f} MiB")
    print(
        f"peak / pandas in-memory size {duckdb_result['max_rss_mib'] / sizes['pandas_object_mib']:>12.1%}"
    )
    if pandas_result:
        print(
            f"pandas on {args.pandas_rows:,} events: {pandas_result['seconds']:.1f} s "
            f"({pandas_result['cpu_seconds']:.1f} s CPU), peak {pandas_result['max_rss_mib']:,.0f} MiB"
        )
    record = {
        "memory_limit": args.memory_limit,
        "command": " ".join([Path(sys.executable).name, *sys.argv]),
        "when": dt.datetime.now().isoformat(timespec="seconds"),
        "events": args.events,
        "accounts": args.accounts,
        "sizes_mib": sizes,
        "duckdb": duckdb_result,
        "pandas": pandas_result,
    }
    path = OUT / f"usage-{args.events}-{args.memory_limit}.json"
    path.write_text(json.dumps(record, indent=2), encoding="utf-8")
    print(f"\nresults written to {path.relative_to(ROOT)}")


if __name__ == "__main__":
    main()
