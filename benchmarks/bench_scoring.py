"""Benchmark: score 1M leads with a fitted scorecard (fit score, tier, reasons, flags).

Fits a scorecard on 20,000 simulated deals, then scores a simulated lead list of ``--rows``
rows (default 1,000,000) with realistic mess: 3% blank employee counts, 1% negative ones,
employee counts and revenue arriving as text ("1,200", "$3.4M"), 2% unseen industries.
A clean, typed copy of the list is scored too, to show what the text parsing costs. Prints
the median of ``--repeat`` runs (default 3) and rows per second.

    python benchmarks/bench_scoring.py [--rows 1000000] [--repeat 3]
"""

from __future__ import annotations

import argparse
import statistics
import time

import numpy as np
import pandas as pd

from icp_research.scoring.scorecard import fit_scorecard

INDUSTRIES = ["FinTech", "SaaS", "Retail", "Health", "Manufacturing", "Education", "Media"]
INDUSTRY_EFFECT = [1.2, 0.8, -0.3, 0.0, -0.6, -0.4, 0.0]
CRMS = ["HubSpot", "Salesforce", "None", "Pipedrive"]


def simulate_deals(n: int, rng: np.random.Generator) -> pd.DataFrame:
    """Deals with a planted ICP: FinTech / SaaS, 100-1,000 employees, high revenue, a CRM."""
    industry = rng.choice(len(INDUSTRIES), n)
    employees = np.round(np.exp(rng.normal(5.5, 1.6, n)))
    revenue = np.round(np.exp(rng.normal(16, 1.2, n)), -3)
    crm = rng.choice(len(CRMS), n, p=[0.35, 0.35, 0.2, 0.1])
    logit = (
        -1.6
        + np.array(INDUSTRY_EFFECT)[industry]
        + np.where((employees >= 100) & (employees < 1000), 0.9, 0.0)
        + 0.45 * (np.log(revenue) - 16)
        + np.where(crm == 2, -0.8, 0.0)
    )
    return pd.DataFrame(
        {
            "industry": np.array(INDUSTRIES, dtype=object)[industry],
            "employees": employees,
            "annual_revenue": revenue,
            "crm": np.array(CRMS, dtype=object)[crm],
            "won": rng.random(n) < 1 / (1 + np.exp(-logit)),
        }
    )


def messy_leads(n: int, rng: np.random.Generator) -> pd.DataFrame:
    """A lead list as it arrives from a CSV: numbers partly as text, blanks, impossible values."""
    leads = simulate_deals(n, rng).drop(columns="won")
    employees = leads["employees"].astype(object)
    blank = rng.random(n) < 0.03
    negative = rng.random(n) < 0.01
    as_text = rng.random(n) < 0.10
    employees[blank] = ""
    employees[negative] = -leads.loc[negative, "employees"]
    employees[as_text & ~blank] = leads.loc[as_text & ~blank, "employees"].map("{:,.0f}".format)
    leads["employees"] = employees
    revenue = leads["annual_revenue"].astype(object)
    millions = rng.random(n) < 0.05
    revenue[millions] = leads.loc[millions, "annual_revenue"].map(lambda v: f"${v / 1e6:.1f}M")
    leads["annual_revenue"] = revenue
    unseen = rng.random(n) < 0.02
    leads.loc[unseen, "industry"] = rng.choice(["Aerospace", "Mining", "Legal"], unseen.sum())
    return leads


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rows", type=int, default=1_000_000)
    parser.add_argument("--repeat", type=int, default=3)
    args = parser.parse_args()

    rng = np.random.default_rng(0)
    started = time.perf_counter()
    scorecard = fit_scorecard(
        simulate_deals(20_000, rng),
        "won",
        categorical=["industry", "crm"],
        numeric=["employees", "annual_revenue"],
    )
    print(f"fit on 20,000 deals: {time.perf_counter() - started:.2f} s")
    leads = messy_leads(args.rows, rng)
    clean_leads = simulate_deals(args.rows, rng).drop(columns="won")

    cases = (
        ("messy text input, score + reasons + flags", leads, {}),
        ("messy text input, score only", leads, {"reasons": False}),
        ("clean typed input, score + reasons + flags", clean_leads, {}),
    )
    for label, frame, options in cases:
        seconds = []
        for _ in range(args.repeat):
            started = time.perf_counter()
            scored = scorecard.score(frame, **options)
            seconds.append(time.perf_counter() - started)
        median = statistics.median(seconds)
        print(
            f"{label}: {len(scored):,} rows, median {median:.2f} s of {args.repeat} runs "
            f"({', '.join(f'{s:.2f}' for s in seconds)}), {len(scored) / median:,.0f} rows/s"
        )
    scored = scorecard.score(leads)
    flagged = (scored["flags"] != "").mean()
    print(f"messy input rows flagged: {flagged:.1%}; every row scored: {len(scored) == len(leads)}")


if __name__ == "__main__":
    main()
