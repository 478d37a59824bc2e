"""How often does the kit draw an ICP from data where nothing predicts anything?

Writes many seeded pure-noise projects (CSV exports and an ``icp.toml``, as a user would bring
them) of different shapes, builds the ICP blueprint on each exactly as the report does, and
counts how often it claims something: an ICP drawn (an include rule that held up), an exclude
rule, uncertain rules listed as hypotheses, a fit score fitted. On noise each of those is a
false positive; the kit's own tests are at 5% (alpha), so the rates should stay near or below
it. Accounts carry a random effect (some win more, whatever their traits), so deals cluster by
account as they do in real CRMs: a kit that counted deals as independent would find "ICPs" far
more often.

    python benchmarks/noise_icp_rate.py --seeds 40 [--jobs 2] [--label NAME]

Shapes cycle with the seed: 300 / 1,000 / 3,000 accounts; 1-2, 1-4 or 1-8 deals per account;
6, 12 or 24 account attributes (industries, sizes, regions, tools, yes/no flags, numbers, a
many-level category); subscriptions with ARR and churn drawn independently of every trait.
Results (rates with Wilson intervals, and each seed's findings) go to
``benchmarks/out/noise-<label>.json``.
"""

from __future__ import annotations

import argparse
import json
import os
import sys
import tempfile
import time
from concurrent.futures import ProcessPoolExecutor
from pathlib import Path

import numpy as np
import pandas as pd

REPO = Path(__file__).resolve().parent.parent
AS_OF = pd.Timestamp("2026-06-30")
SIZES = (300, 1000, 3000)
DEALS = (2, 4, 8)
WIDTHS = (6, 12, 24)


def write_project(seed: int, directory: Path) -> dict:
    """A pure-noise project in ``directory``; returns its shape."""
    rng = np.random.default_rng(seed)
    n = SIZES[seed % 3]
    max_deals = DEALS[(seed // 3) % 3]
    width = WIDTHS[(seed // 9) % 3]
    accounts = {"Account ID": [f"N{i:05d}" for i in range(n)]}
    columns = {}
    for j in range(width):
        kind = j % 6
        name = f"Trait {j:02d}"
        if kind == 0:
            levels = [f"Industry {k}" for k in range(int(rng.integers(4, 13)))]
            accounts[name] = rng.choice(levels, n)
        elif kind == 1:
            accounts[name] = np.round(np.exp(rng.normal(5, 1.5, n))).astype(int)
        elif kind == 2:
            accounts[name] = rng.choice(["NA", "EMEA", "APAC", "LATAM"], n)
        elif kind == 3:
            accounts[name] = np.where(rng.random(n) < 0.4, "TRUE", "FALSE")
        elif kind == 4:
            values = rng.lognormal(15, 1.2, n).round(-3)
            accounts[name] = np.where(rng.random(n) < 0.2, np.nan, values)
        else:
            accounts[name] = rng.choice([f"Tool {k}" for k in range(25)], n)
        columns[f"trait_{j:02d}"] = name
    created = pd.Timestamp("2023-01-01") + pd.to_timedelta(rng.integers(0, 900, n), unit="D")
    accounts["Created"] = created.date
    accounts = pd.DataFrame(accounts)
    effect = rng.normal(0, 0.6, n)  # accounts differ, whatever their traits
    rows = []
    for i in range(n):
        for k in range(int(rng.integers(1, max_deals + 1))):
            span = max((AS_OF - created[i]).days - 1, 1)
            opened = created[i] + pd.Timedelta(days=int(rng.integers(0, span)))
            closed = opened + pd.Timedelta(days=int(rng.integers(10, 150)))
            p = 1 / (1 + np.exp(-(-1.0 + effect[i])))
            stage = "Open" if closed > AS_OF else ("Won" if rng.random() < p else "Lost")
            rows.append(
                {
                    "Deal ID": f"D{i:05d}-{k}",
                    "Account ID": accounts["Account ID"][i],
                    "Stage": stage,
                    "Created": opened.date(),
                    "Closed": "" if stage == "Open" else closed.date(),
                    "Amount": int(rng.lognormal(9.5, 0.6)),
                    "Loss Reason": "" if stage != "Lost" else rng.choice(["Price", "Timing"]),
                }
            )
    deals = pd.DataFrame(rows)
    won = deals[deals["Stage"] == "Won"].sort_values("Closed").drop_duplicates("Account ID")
    starts = pd.to_datetime(won["Closed"])
    months = rng.exponential(30, len(won))
    ends = starts + pd.to_timedelta((months * 30.4).astype(int), unit="D")
    subscriptions = pd.DataFrame(
        {
            "Account ID": won["Account ID"].to_numpy(),
            "Start": starts.dt.date.to_numpy(),
            "End": [("" if e > AS_OF else e.date()) for e in ends],
            "ARR": rng.lognormal(9.8, 0.7, len(won)).round(0),
        }
    )
    accounts.to_csv(directory / "accounts.csv", index=False)
    deals.to_csv(directory / "opportunities.csv", index=False)
    subscriptions.to_csv(directory / "subscriptions.csv", index=False)
    mapping = "\n".join(f'{key} = "{value}"' for key, value in columns.items())
    (directory / "icp.toml").write_text(
        f'[project]\nname = "noise {seed}"\nas_of = "{AS_OF:%Y-%m-%d}"\n\n'
        '[tables.accounts]\npath = "accounts.csv"\n[tables.accounts.columns]\n'
        f'account_id = "Account ID"\ncreated_at = "Created"\n{mapping}\n\n'
        '[tables.opportunities]\npath = "opportunities.csv"\n'
        "[tables.opportunities.columns]\n"
        'opportunity_id = "Deal ID"\naccount_id = "Account ID"\nstage = "Stage"\n'
        'created_at = "Created"\nclosed_at = "Closed"\namount = "Amount"\n'
        'loss_reason = "Loss Reason"\n'
        '[tables.opportunities.values.stage]\n"Won" = "won"\n"Lost" = "lost"\n"Open" = "open"\n\n'
        '[tables.subscriptions]\npath = "subscriptions.csv"\n'
        "[tables.subscriptions.columns]\n"
        'account_id = "Account ID"\nstart_date = "Start"\nend_date = "End"\narr = "ARR"\n',
        encoding="utf-8",
    )
    return {"accounts": n, "deals": len(deals), "attributes": width, "max_deals": max_deals}


def one_seed(seed: int) -> dict:
    import warnings

    import icp_research as icp
    from icp_research.analyses import blueprint as bp

    warnings.simplefilter("ignore")
    started = time.perf_counter()
    with tempfile.TemporaryDirectory() as tmp:
        shape = write_project(seed, Path(tmp))
        study = icp.open_study(Path(tmp) / "icp.toml", reuse_snapshot=False)
        result = bp.build_blueprint(study)
    return {
        "seed": seed,
        **shape,
        "outcome": result.outcome.get("name") if isinstance(result.outcome, dict) else None,
        "drawn": bool(result.drawn),
        "include": [r.text for r in result.include],
        "exclude": [r.text for r in result.exclude],
        "uncertain": [r.text for r in result.uncertain],
        "fit_score": result.scorecard is not None,
        "score_attributes": (
            [a.name for a in result.scorecard.attributes] if result.scorecard is not None else []
        ),
        "seconds": round(time.perf_counter() - started, 1),
    }


def wilson(k: int, n: int) -> list[float]:
    from statsmodels.stats.proportion import proportion_confint

    low, high = proportion_confint(k, n, method="wilson")
    return [round(float(low), 3), round(float(high), 3)]


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--seeds", type=int, default=27)
    parser.add_argument("--first", type=int, default=0)
    parser.add_argument("--jobs", type=int, default=min(2, os.cpu_count() or 1))
    parser.add_argument("--label", default=time.strftime("%Y%m%d-%H%M%S"))
    args = parser.parse_args()
    sys.path.insert(0, str(REPO))
    seeds = range(args.first, args.first + args.seeds)
    with ProcessPoolExecutor(args.jobs) as pool:
        runs = []
        for run in pool.map(one_seed, seeds):
            runs.append(run)
            claims = ", ".join(
                f"{kind} {len(run[kind])}" for kind in ("include", "exclude", "uncertain")
            )
            print(
                f"seed {run['seed']:3d}: {run['accounts']:,} accounts, {run['deals']:,} deals, "
                f"{run['attributes']} attributes: drawn {run['drawn']}, {claims}, "
                f"fit score {run['fit_score']} ({run['seconds']} s)",
                flush=True,
            )
    n = len(runs)
    rates = {}
    for name, hit in {
        "icp_drawn": lambda r: r["drawn"],
        "any_exclude_rule": lambda r: bool(r["exclude"]),
        "any_uncertain_rule": lambda r: bool(r["uncertain"]),
        "fit_score": lambda r: r["fit_score"],
        "any_claim": lambda r: r["drawn"] or bool(r["exclude"]) or r["fit_score"],
    }.items():
        k = sum(bool(hit(r)) for r in runs)
        rates[name] = {"k": k, "n": n, "rate": round(k / n, 3), "wilson_95": wilson(k, n)}
        print(f"{name}: {k} of {n} ({k / n:.0%}, 95% {wilson(k, n)})")
    out = REPO / "benchmarks" / "out"
    out.mkdir(parents=True, exist_ok=True)
    path = out / f"noise-{args.label}.json"
    command = "python benchmarks/noise_icp_rate.py " + " ".join(sys.argv[1:])
    path.write_text(json.dumps({"command": command, "rates": rates, "runs": runs}, indent=1))
    print(f"wrote {path}")


if __name__ == "__main__":
    main()
