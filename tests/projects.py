"""Small projects for the reliability tests, cut from the demo company.

:func:`demo_slice` keeps the first accounts of the demo data and every row that belongs to them;
the builders below bend that slice into degenerate or hostile data, and :func:`write_canonical`
writes it as CSV exports (canonical column names) with an ``icp.toml``, so the loader reads them
the way it reads a user's files.
"""

from __future__ import annotations

import functools
from pathlib import Path

import numpy as np
import pandas as pd

#: The analysis date the projects are written for (before the demo's own last records).
AS_OF = pd.Timestamp("2026-06-30")


@functools.lru_cache(maxsize=1)
def _demo() -> dict[str, pd.DataFrame]:
    from devtools.demo_data import generate_demo

    return generate_demo(7)


def demo_slice(n: int = 40, tables=None) -> dict[str, pd.DataFrame]:
    """The first ``n`` demo accounts (by id) with their deals, subscriptions, notes ..."""
    demo = _demo()
    accounts = demo["accounts"].sort_values("account_id").head(n).copy()
    ids = set(accounts["account_id"])
    out = {"accounts": accounts}
    deals = demo["opportunities"][demo["opportunities"]["account_id"].isin(ids)].copy()
    out["opportunities"] = deals
    for name in ("subscriptions", "churn_events", "usage", "nps", "feedback", "survey"):
        out[name] = demo[name][demo[name]["account_id"].isin(ids)].copy()
    roles = demo["deal_roles"]
    out["deal_roles"] = roles[roles["opportunity_id"].isin(set(deals["opportunity_id"]))].copy()
    if tables is not None:
        out = {name: frame for name, frame in out.items() if name in tables}
    return out


def write_canonical(
    directory: Path, tables: dict[str, pd.DataFrame], *, name: str, as_of: str | None = None
) -> Path:
    """Write ``tables`` as ``<table>.csv`` plus an icp.toml naming them; return the config."""
    directory = Path(directory)
    directory.mkdir(parents=True, exist_ok=True)
    config = f'[project]\nname = "{name}"\n' + (f'as_of = "{as_of}"\n' if as_of else "")
    for table, frame in tables.items():
        frame.to_csv(directory / f"{table}.csv", index=False, date_format="%Y-%m-%d")
        config += f'\n[tables.{table}]\npath = "{table}.csv"\n'
    path = directory / "icp.toml"
    path.write_text(config, encoding="utf-8")
    return path


# ---------------------------------------------------------------------------------------------
# Degenerate data


def _won_only_narrow() -> dict[str, pd.DataFrame]:
    """Every closed deal won, nobody churned; one industry but for a single account, a constant
    region and an empty CRM column."""
    tables = demo_slice(tables=("accounts", "opportunities", "subscriptions", "feedback"))
    deals = tables["opportunities"]
    deals["stage"] = deals["stage"].replace({"lost": "won"})
    deals["loss_reason"] = None
    tables["subscriptions"]["end_date"] = pd.NaT
    accounts = tables["accounts"]
    accounts["industry"] = "Software"
    accounts.loc[accounts.index[0], "industry"] = "Mining"
    accounts["region"] = "EMEA"
    accounts["crm"] = None
    return tables


def _single_account() -> dict[str, pd.DataFrame]:
    return demo_slice(1)


def _accounts_only() -> dict[str, pd.DataFrame]:
    return demo_slice(tables=("accounts",))


def _no_deals_all_churned() -> dict[str, pd.DataFrame]:
    """Subscriptions only, and every customer gone by the analysis date."""
    tables = demo_slice(tables=("accounts", "subscriptions", "churn_events"))
    subscriptions = tables["subscriptions"]
    subscriptions = subscriptions[subscriptions["start_date"] < AS_OF].copy()
    tables["subscriptions"] = subscriptions
    # Halfway between the start and the analysis date.
    subscriptions["end_date"] = (
        subscriptions["start_date"] + (AS_OF - subscriptions["start_date"]) / 2
    ).dt.normalize()
    last = subscriptions.groupby("account_id")["end_date"].max()
    tables["churn_events"] = pd.DataFrame(
        {"account_id": last.index, "churned_at": last.to_numpy(), "reason": "Price"}
    )
    return tables


def _lost_only_empty_columns() -> dict[str, pd.DataFrame]:
    """No deal won (no subscriptions either), and amounts, reasons, types, sizes all empty."""
    tables = demo_slice(tables=("accounts", "opportunities", "deal_roles", "feedback"))
    deals = tables["opportunities"]
    deals["stage"] = deals["stage"].replace({"won": "lost"})
    for column in ("amount", "loss_reason", "type", "source", "owner"):
        deals[column] = np.nan
    for column in ("employees", "annual_revenue", "industry"):
        tables["accounts"][column] = np.nan
    return tables


DEGENERATE = {
    "won_only_narrow": _won_only_narrow,
    "single_account": _single_account,
    "accounts_only": _accounts_only,
    "no_deals_all_churned": _no_deals_all_churned,
    "lost_only_empty_columns": _lost_only_empty_columns,
}


# ---------------------------------------------------------------------------------------------
# Hostile content

LONG = "L" * 10_000
HOSTILE = [
    "<script>alert(1)</script>",
    "<img src=x onerror=alert(1)>",
    '"><svg onload=alert(1)>',
    "=cmd|' /C calc'!A0",
    "+SUM(1)",
    "@x",
    "-2+3",
    "شركة الأمل",
    "中文公司",
    "🚀 émoji ünïcode",
    LONG,
    r"Price $\frac{ 50$ off",
]
# Contact-level columns an export may carry, with values that must never reach any output.
PERSONAL_COLUMNS = {
    "Contact Email": "zed.contact@example.test",
    "Phone": "+1 555 0100 777",
    "First Name": "Zebediah",
    "Owner Email": "rep.owner@example.test",
    "Champion Name": "Quentin Champion",
}
REP_NAME = "Repname Salesowner"


def hostile_tables(n: int = 120) -> dict[str, pd.DataFrame]:
    """The demo slice with hostile text in every field a report shows, personal columns on the
    accounts and a sales rep's name as deal owner."""
    h = HOSTILE
    tables = demo_slice(n)
    accounts = tables["accounts"]
    accounts["name"] = [f"{h[i % len(h)]} #{i}" for i in range(len(accounts))]
    # Whole levels are renamed, so that the planted signal (and the charts) keep them.
    accounts["industry"] = accounts["industry"].replace(
        {"SaaS": LONG, "Healthcare": h[0], "Manufacturing": h[1], "FinTech": h[7],
         "Retail": h[8], "Logistics": h[3], "Media": h[9], "Education": h[11]}
    )  # fmt: skip
    accounts["crm"] = accounts["crm"].replace(
        {"HubSpot": h[2], "None": h[4], "Salesforce": h[5], "Pipedrive": h[6]}
    )
    accounts["region"] = accounts["region"].replace(
        {"North America": h[7], "EMEA": h[8], "APAC": h[0], "LATAM": h[3]}
    )
    for column, value in PERSONAL_COLUMNS.items():
        accounts[column] = value
    deals = tables["opportunities"]
    deals["loss_reason"] = deals["loss_reason"].replace(
        {"Price": h[0], "Chose competitor": h[3], "Timing": h[7], "Missing feature": LONG}
    )
    deals["owner"] = REP_NAME
    churn = tables["churn_events"]
    churn["reason"] = churn["reason"].replace(
        {"Price": h[1], "Switched to competitor": h[3], "Product fit": h[8], "Budget cuts": LONG,
         "Missing integration": h[11]}
    )  # fmt: skip
    churn["feedback"] = churn["feedback"].fillna("") + [
        f" {h[i % len(h)]}" for i in range(len(churn))
    ]
    feedback = tables["feedback"]
    feedback["text"] = feedback["text"] + [f" {h[i % len(h)]}" for i in range(len(feedback))]
    survey = tables["survey"]
    survey["answer"] = survey["answer"].replace(
        {"Forecast accuracy": h[0], "Team trial then purchase": h[3], "Time saved": h[8],
         "Sales leadership": LONG, "Salesforce": h[9]}
    )  # fmt: skip
    roles = tables["deal_roles"]
    roles["title"] = roles["title"].replace(
        {"Director of Sales": h[0], "Sales Manager": h[3], "COO": h[7], "CFO": LONG}
    )
    return tables
