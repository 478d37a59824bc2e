"""Benchmark: ``icp-research score`` on a 1M-row lead file, end to end.

Writes an ICP (a scorecard fitted on 20,000 simulated deals, plus include and exclude rules in
the icp.json format) and a messy lead list of ``--rows`` rows (default 1,000,000) as CSV: numbers
partly as text ("1,200", "$3.4M"), blanks, negative employee counts, unseen industries, spaces
and odd capitalisation in categories. Then times the command as a user runs it (a fresh
interpreter, ``python -m icp_research.cli score``) and the steps in-process: reading the file,
scoring (fit score, tier, reasons, rules, flags) and writing the scored CSV / Parquet.

    python benchmarks/bench_score_cli.py [--rows 1000000] [--keep DIR]
"""

from __future__ import annotations

import argparse
import os
import shutil
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parent))

from bench_scoring import messy_leads, simulate_deals  # noqa: E402

from icp_research.artifacts import write_json
from icp_research.scoring.model import read_leads, score_leads, write_scored  # noqa: E402
from icp_research.scoring.scorecard import fit_scorecard  # noqa: E402

REPO = Path(__file__).resolve().parent.parent


def icp_document(rng: np.random.Generator) -> dict:
    """An icp.json document: the fitted scorecard, tiers and rules as the blueprint writes them."""
    scorecard = fit_scorecard(
        simulate_deals(20_000, rng),
        "won",
        categorical=["industry", "crm"],
        numeric=["employees", "annual_revenue"],
        tiers=[("Tier 1", 70), ("Tier 2", 40), ("Tier 3", 0)],
    )

    def rule(kind, text, conditions, role=None):
        out = {"id": f"{kind}:{text}", "kind": kind, "text": text, "conditions": conditions}
        if role:
            out["role"] = role
        return out

    return {
        "format": 1,
        **scorecard.to_dict(),
        "rules": {
            "include": [
                rule(
                    "include",
                    "industry in {FinTech, SaaS}",
                    [{"attribute": "industry", "operator": "in", "value": ["FinTech", "SaaS"]}],
                    "filter",
                ),
                rule(
                    "include",
                    "100 <= employees < 1,000",
                    [{"attribute": "employees", "operator": "between", "value": [100, 1000]}],
                    "filter",
                ),
            ],
            "exclude": [
                rule(
                    "exclude",
                    "crm = None",
                    [{"attribute": "crm", "operator": "equals", "value": "None"}],
                ),
                rule(
                    "exclude",
                    "employees < 20",
                    [{"attribute": "employees", "operator": "less_than", "value": 20}],
                ),
            ],
            "uncertain": [],
        },
        "attributes": {
            "industry": {"type": "categorical"},
            "crm": {"type": "categorical"},
            "employees": {"type": "numeric", "nonnegative": True},
            "annual_revenue": {"type": "numeric", "nonnegative": True},
        },
    }


def timed(label: str, function):
    started = time.perf_counter()
    value = function()
    print(f"  {label}: {time.perf_counter() - started:.2f} s")
    return value


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rows", type=int, default=1_000_000)
    parser.add_argument("--keep", metavar="DIR", help="write the files here and keep them")
    args = parser.parse_args()

    rng = np.random.default_rng(0)
    folder = Path(args.keep) if args.keep else Path(tempfile.mkdtemp(prefix="bench-score-"))
    folder.mkdir(parents=True, exist_ok=True)
    icp_path = write_json(icp_document(rng), folder / "icp.json")
    leads = messy_leads(args.rows, rng)
    leads.insert(0, "company", [f"Company {i}" for i in range(len(leads))])
    crm = leads["crm"].astype(object)
    odd = rng.random(len(leads)) < 0.05
    crm[odd] = crm[odd].str.lower().map(lambda v: f" {v} ")
    leads["crm"] = crm
    input_path = folder / "leads.csv"
    leads.to_csv(input_path, index=False)
    size = input_path.stat().st_size / 1e6
    print(f"{len(leads):,} leads, {size:.0f} MB CSV in {folder}")

    print("in-process steps:")
    frame = timed("read CSV (pyarrow, all text)", lambda: read_leads(input_path))
    scored = timed(
        "score (fit score, tier, reasons, rules, flags)", lambda: score_leads(str(icp_path), frame)
    )
    out = frame.join(scored.assign(tier=scored["tier"].astype(str)))
    timed("write CSV (atomic, spreadsheet-safe)", lambda: write_scored(out, folder / "s.csv"))
    timed("write Parquet (atomic)", lambda: write_scored(out, folder / "s.parquet"))
    print(
        f"  rows back: {len(out):,} of {len(leads):,}; flagged {(scored['flags'] != '').mean():.1%};"
        f" in the ICP {scored['in_icp'].mean():.1%}"
    )

    for suffix in ("csv", "parquet"):
        env = dict(os.environ)
        env["PYTHONPATH"] = os.pathsep.join([str(REPO), env.get("PYTHONPATH", "")])
        started = time.perf_counter()
        result = subprocess.run(
            [
                sys.executable,
                "-m",
                "icp_research.cli",
                "score",
                "--icp",
                str(icp_path),
                "--input",
                str(input_path),
                "--output",
                str(folder / f"scored.{suffix}"),
                "--force",
            ],
            capture_output=True,
            text=True,
            env=env,
            cwd=str(REPO),
        )
        seconds = time.perf_counter() - started
        print(f"icp-research score -> {suffix}: {seconds:.1f} s wall (exit {result.returncode})")
        print("  " + (result.stdout.strip() or result.stderr.strip()))
    if not args.keep:
        shutil.rmtree(folder, ignore_errors=True)


if __name__ == "__main__":
    main()
