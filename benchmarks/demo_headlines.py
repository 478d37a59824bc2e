"""Headline numbers of the demo dataset, to check the planted truth after changing the generator.

    PYTHONPATH=. python benchmarks/demo_headlines.py [--seed 7]

Prints sizes, win rates (ICP vs rest), churn per customer-year, the planted ICP's share of the
best customers, the referral share, ARR growth and the oracle AUC of the planted win
probability. The assertions behind these numbers live in tests/test_demo.py.
"""

from __future__ import annotations

import argparse
import sys
import time
from pathlib import Path

import pandas as pd
from scipy.stats import mannwhitneyu

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))  # the repository, for devtools
from devtools import demo_data as demo  # noqa: E402


def _auc(score: pd.Series, won: pd.Series) -> float:
    won = won.to_numpy()
    statistic = mannwhitneyu(score[won], score[~won]).statistic
    return float(statistic / (won.sum() * (~won).sum()))


def headlines(seed: int = 7) -> pd.Series:
    started = time.perf_counter()
    tables = demo.generate_demo(seed)
    seconds = time.perf_counter() - started
    accounts = tables["accounts"].assign(icp=lambda a: demo.is_planted_icp(a))
    deals = tables["opportunities"].merge(accounts.drop(columns="created_at"), on="account_id")
    closed = deals[deals["stage"] != "open"].assign(won=lambda d: d["stage"].eq("won"))
    new_business = closed[closed["type"] == "new"]

    subscriptions = tables["subscriptions"]
    customers = (
        subscriptions.groupby("account_id")["start_date"].min().rename("start").to_frame()
        .join(tables["churn_events"].set_index("account_id")["churned_at"])
        .join(subscriptions[subscriptions["end_date"].isna()].groupby("account_id")["arr"].sum())
        .join(subscriptions.sort_values("start_date").groupby("account_id")["arr"].first()
              .rename("initial_arr"))
        .join(accounts.set_index("account_id"))
    )  # fmt: skip
    end = customers["churned_at"].fillna(demo.AS_OF)
    customers["years"] = (end - customers["start"]).dt.days / 365.25

    def churn_per_year(frame: pd.DataFrame) -> float:
        return frame["churned_at"].notna().sum() / frame["years"].sum()

    retained = customers[customers["churned_at"].isna()]
    best = retained["arr"] >= retained["arr"].quantile(0.8)
    grown = retained[retained["years"] > 1]
    growth = (grown["arr"] / grown["initial_arr"]) ** (1 / grown["years"]) - 1
    holdout = new_business[new_business["created_at"] >= "2026-01-01"]
    small = customers["employees"] < 50
    return pd.Series(
        {
            "seconds to generate": round(seconds, 2),
            "accounts": len(accounts),
            "planted ICP share of accounts": accounts["icp"].mean(),
            "opportunities": len(deals),
            "new-business share of deals": (deals["type"] == "new").mean(),
            "open at as-of": (deals["stage"] == "open").sum(),
            "quarters": deals["created_at"].dt.to_period("Q").nunique(),
            "win rate new business, ICP": new_business.loc[new_business["icp"], "won"].mean(),
            "win rate new business, rest": new_business.loc[~new_business["icp"], "won"].mean(),
            "customers": len(customers),
            "churn events": customers["churned_at"].notna().sum(),
            "churn / customer-year, ICP": churn_per_year(customers[customers["icp"]]),
            "churn / customer-year, rest": churn_per_year(customers[~customers["icp"]]),
            "churn / customer-year, <50 employees": churn_per_year(customers[small]),
            "churn / customer-year, 50+ employees": churn_per_year(customers[~small]),
            "ICP share of best customers": retained.loc[best, "icp"].mean(),
            "ICP share of other retained": retained.loc[~best, "icp"].mean(),
            "referred share of customers": (customers["referral_source"] == "Referral").mean(),
            "median ARR growth / year, ICP": growth[grown["icp"]].median(),
            "median ARR growth / year, rest": growth[~grown["icp"]].median(),
            "oracle AUC new business (attributes)": _auc(
                demo.true_win_probability(new_business), new_business["won"]
            ),
            "oracle AUC new business (+ deal roles)": _auc(
                demo.true_win_probability(new_business, tables["deal_roles"]),
                new_business["won"],
            ),
            "oracle AUC new business created 2026": _auc(
                demo.true_win_probability(holdout), holdout["won"]
            ),
        }
    )


if __name__ == "__main__":
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--seed", type=int, default=7)
    with pd.option_context("display.float_format", "{:.3f}".format):
        print(headlines(parser.parse_args().seed).to_string())
