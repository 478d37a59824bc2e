"""Large synthetic exports for scale tests: a project folder with exports and an ``icp.toml``.

The exports look like the bundled demo's (the same source column names, money written as
``"$40,396,000.00"`` in CSV, US-style account creation dates, CRM stage names) so that loading
them exercises the same parsing as a real export. Everything is drawn with vectorised numpy from
one seeded Generator, so one million deals take seconds and the same arguments give the same
files.

Planted truth (so that the analyses have something to find): the ICP is ``industry in
{SaaS, FinTech}``, ``100 <= employees < 1000`` and ``crm in {HubSpot, Salesforce}``; each
condition raises the win probability, lowers the churn hazard, raises NPS and product usage.
Referral-sourced accounts win more; ``crm = "None"`` loses more deals to "No decision".
region, country, cloud, founded_year, website_platform and fiscal_year_end are noise.

Tables written (``--format csv`` or ``parquet``; usage events are always Parquet)::

    accounts        --accounts rows
    opportunities   --opportunities rows (won / lost / open, amounts, loss reasons)
    subscriptions   --subscriptions rows (start / end / MRR, plan, seats) of won accounts
    churn_events    one row for most churned customers, with a reason
    nps             about one response for every two accounts
    usage           --usage-events rows: account_id, date, metric, value, user_id

Example::

    python benchmarks/generate.py --accounts 100000 --opportunities 1000000 \\
        --subscriptions 1000000 --format csv --out scale-1m
"""

from __future__ import annotations

import argparse
import datetime as dt
import time
from pathlib import Path

import numpy as np
import pyarrow as pa
import pyarrow.csv as pa_csv
import pyarrow.parquet as pq

AS_OF = dt.date(2026, 9, 30)
FIRST_DAY = dt.date(2021, 1, 1)
EPOCH = dt.date(1970, 1, 1)

INDUSTRIES = np.array(
    ["SaaS", "FinTech", "Healthcare", "Retail", "Manufacturing", "Education", "Media", "Logistics"]
)
INDUSTRY_SHARE = [0.18, 0.12, 0.12, 0.14, 0.14, 0.1, 0.1, 0.1]
REGIONS = np.array(["North America", "EMEA", "APAC", "LATAM"])
REGION_SHARE = [0.45, 0.3, 0.15, 0.1]
COUNTRIES = {
    "North America": ["United States", "Canada"],
    "EMEA": ["United Kingdom", "Germany", "France", "Netherlands", "Sweden", "Spain"],
    "APAC": ["Australia", "Japan", "Singapore", "India"],
    "LATAM": ["Brazil", "Mexico", "Chile"],
}
CRMS = np.array(["Salesforce", "HubSpot", "Pipedrive", "None"])
CLOUDS = np.array(["AWS", "Azure", "GCP", "On-prem"])
SOURCES = np.array(["Referral", "Inbound", "Outbound", "Event", "Partner"])
SOURCE_EFFECT = np.array([0.7, 0.0, -0.3, 0.0, 0.3])
PLATFORMS = np.array(["WordPress", "Webflow", "Shopify", "Custom", "Wix"])
FISCAL_YEAR_ENDS = np.array(["December", "March", "June", "September"])
OPEN_STAGES = np.array(["Discovery", "Proposal", "Negotiation"])
LOSS_REASONS = np.array(["Price", "No decision", "Competitor", "Timing", "Missing feature"])
CHURN_REASONS = np.array(
    ["Price", "Switched to competitor", "Missing integration", "Budget cuts", "Poor onboarding"]
)
METRICS = np.array(["login", "report_created", "dashboard_view", "api_call", "export"])
METRIC_SHARE = [0.35, 0.15, 0.3, 0.15, 0.05]
SYLLABLES = np.array(["Nor", "Vel", "Quan", "Tri", "Lum", "Ar", "Cor", "Zen", "Pax", "Mer"])
LEGAL = np.array(["Inc.", "Ltd", "GmbH", "AB", "S.A.", "LLC", "BV", "Pty Ltd"])


def _days(day: dt.date) -> int:
    return (day - EPOCH).days


def _sigmoid(x):
    return 1.0 / (1.0 + np.exp(-x))


def _money_text(values: np.ndarray, prefix: str = "") -> list:
    return [f"{prefix}{v:,.2f}" for v in values.tolist()]


def _us_dates(days: np.ndarray) -> list:
    as_dates = days.astype("datetime64[D]")
    years = as_dates.astype("datetime64[Y]").astype(int) + 1970
    months = as_dates.astype("datetime64[M]").astype(int) % 12 + 1
    day_of_month = (as_dates - as_dates.astype("datetime64[M]")).astype(int) + 1
    return [
        f"{m:02d}/{d:02d}/{y}"
        for m, d, y in zip(months.tolist(), day_of_month.tolist(), years.tolist(), strict=True)
    ]


def _ids(prefix: str, n: int, width: int) -> np.ndarray:
    return np.array([f"{prefix}{i:0{width}d}" for i in range(1, n + 1)], dtype=object)


def _pick(options: np.ndarray, n: int, rng: np.random.Generator, p=None) -> np.ndarray:
    return options[rng.choice(len(options), n, p=p)]


def simulate_accounts(n: int, rng: np.random.Generator) -> dict:
    """Account attributes plus the latent quantities the other tables are drawn from."""
    industry = rng.choice(len(INDUSTRIES), n, p=INDUSTRY_SHARE)
    employees = np.clip(np.round(np.exp(rng.normal(np.log(200), 1.4, n))), 2, 200_000)
    revenue = np.round(employees * np.exp(rng.normal(np.log(150_000), 0.5, n)), -3)
    region = rng.choice(len(REGIONS), n, p=REGION_SHARE)
    country = np.empty(n, dtype=object)
    for code, name in enumerate(REGIONS):
        rows = region == code
        country[rows] = _pick(np.array(COUNTRIES[name]), int(rows.sum()), rng)
    small = employees < 50
    crm = np.where(
        small,
        rng.choice(len(CRMS), n, p=[0.2, 0.3, 0.2, 0.3]),
        rng.choice(len(CRMS), n, p=[0.4, 0.35, 0.15, 0.1]),
    )
    uses_sso = rng.random(n) < np.where(employees >= 500, 0.7, 0.3)
    source = rng.choice(len(SOURCES), n, p=[0.2, 0.35, 0.25, 0.1, 0.1])
    created = rng.integers(_days(FIRST_DAY), _days(AS_OF) + 1, n)

    icp_industry = industry <= 1
    icp_size = (employees >= 100) & (employees < 1000)
    icp_crm = crm <= 1
    fit = (
        1.0 * icp_industry
        + 0.7 * icp_size
        + 0.6 * icp_crm
        - 0.6 * (INDUSTRIES[industry] == "Education")
        + SOURCE_EFFECT[source]
        + rng.normal(0.0, 0.6, n)
    )
    icp_conditions = icp_industry.astype(int) + icp_size + icp_crm
    syllable = rng.integers(0, len(SYLLABLES), (n, 2))
    names = [
        f"{SYLLABLES[a]}{SYLLABLES[b].lower()}{i} {LEGAL[i % len(LEGAL)]}"
        for i, (a, b) in enumerate(syllable.tolist())
    ]
    return {
        "n": n,
        "id": _ids("ACC-", n, max(7, len(str(n)))),
        "name": np.array(names, dtype=object),
        "industry": INDUSTRIES[industry],
        "industry_missing": rng.random(n) < 0.03,
        "employees": employees,
        "employees_missing": rng.random(n) < 0.02,
        "annual_revenue": revenue,
        "country": country,
        "region": REGIONS[region],
        "founded_year": rng.integers(1950, 2025, n),
        "created": created,
        "source": SOURCES[source],
        "crm": CRMS[crm],
        "uses_sso": np.where(uses_sso, "Yes", "No"),
        "cloud": _pick(CLOUDS, n, rng, [0.5, 0.25, 0.15, 0.1]),
        "platform": _pick(PLATFORMS, n, rng),
        "fiscal_year_end": _pick(FISCAL_YEAR_ENDS, n, rng, [0.7, 0.1, 0.1, 0.1]),
        "fit": fit,
        "icp_conditions": icp_conditions,
        "crm_none": crm == 3,
        "small": small,
    }


def simulate_deals(accounts: dict, m: int, rng: np.random.Generator) -> dict:
    """Deals: more of them for better-fitting accounts, won with a logistic probability."""
    n = accounts["n"]
    weights = np.exp(rng.normal(0.0, 0.8, n) + 0.3 * accounts["fit"])
    account = np.sort(rng.choice(n, m, p=weights / weights.sum()))
    as_of = _days(AS_OF)
    start = accounts["created"][account]
    created = start + np.floor(rng.random(m) * (as_of - start + 1)).astype(np.int64)
    employees = accounts["employees"][account]
    cycle = np.round(
        np.exp(
            rng.normal(
                np.log(55) + 0.1 * np.log(employees / 100) - 0.1 * accounts["fit"][account], 0.6
            )
        )
    ).astype(np.int64)
    closed = created + cycle
    is_open = closed > as_of
    won = ~is_open & (rng.random(m) < _sigmoid(-1.6 + accounts["fit"][account]))
    lost = ~is_open & ~won
    amount = np.round(np.exp(rng.normal(np.log(6000) + 0.35 * np.log(employees / 100), 0.6)), -1)
    # Loss reasons: crm "None" loses 2.5x as often to "No decision".
    reason_p = np.where(accounts["crm_none"][account], 0.45, 0.18)
    no_decision = rng.random(m) < reason_p
    other_reason = LOSS_REASONS[rng.choice([0, 2, 3, 4], m, p=[0.4, 0.3, 0.2, 0.1])]
    loss_reason = np.where(no_decision, "No decision", other_reason).astype(object)
    loss_reason[~lost] = None
    stage = np.where(won, "Closed Won", "Closed Lost").astype(object)
    stage[is_open] = _pick(OPEN_STAGES, int(is_open.sum()), rng)
    # The first deal of an account is new business, the rest expansion or renewal.
    order = np.lexsort((created, account))
    first = np.ones(m, dtype=bool)
    first[1:] = account[order][1:] != account[order][:-1]
    deal_type = np.where(rng.random(m) < 0.5, "Expansion", "Renewal").astype(object)
    deal_type[order[first]] = "New Business"
    owners = np.array([f"AE {i:02d}" for i in range(1, 41)], dtype=object)
    return {
        "m": m,
        "id": _ids("OPP-", m, max(8, len(str(m)))),
        "account": account,
        "stage": stage,
        "created": created,
        "closed": np.where(is_open, -1, closed),
        "amount": amount,
        "loss_reason": loss_reason,
        "type": deal_type,
        "owner": owners[rng.integers(0, len(owners), m)],
        "source": _pick(SOURCES, m, rng),
        "won": won,
    }


def simulate_customers(accounts: dict, deals: dict, rng: np.random.Generator) -> dict:
    """Who became a customer (first won deal) and when they churned, if they did."""
    n = accounts["n"]
    never = np.iinfo(np.int64).max
    first_won = np.full(n, never, dtype=np.int64)
    np.minimum.at(first_won, deals["account"][deals["won"]], deals["closed"][deals["won"]])
    customers = np.flatnonzero(first_won < never)
    since = first_won[customers]
    conditions = accounts["icp_conditions"][customers]
    hazard = (
        0.3
        * 0.6**conditions
        * np.where(accounts["small"][customers], 2.3, 1.0)
        * np.where(accounts["crm_none"][customers], 1.8, 1.0)
    )
    lifetime = rng.exponential(365.25 / hazard)
    churn_day = since + np.round(lifetime).astype(np.int64) + 1
    churned = churn_day <= _days(AS_OF)
    return {
        "index": customers,
        "since": since,
        "churned": churned,
        "until": np.where(churned, churn_day, _days(AS_OF)),
    }


def simulate_subscriptions(
    accounts: dict, customers: dict, s: int, rng: np.random.Generator
) -> dict:
    """One main subscription per customer (ends at churn), extra lines as add-ons."""
    k = len(customers["index"])
    if k == 0 or s == 0:
        return {"s": 0}
    if s >= k:
        weights = np.exp(accounts["fit"][customers["index"]])
        extra = rng.choice(k, s - k, p=weights / weights.sum())
        owner = np.sort(np.concatenate([np.arange(k), extra]))
    else:
        owner = np.sort(rng.choice(k, s, replace=False))
    main = np.ones(s, dtype=bool)
    main[1:] = owner[1:] != owner[:-1]
    since, until = customers["since"][owner], customers["until"][owner]
    churned = customers["churned"][owner]
    start = np.where(
        main, since, since + np.floor(rng.random(s) * (until - since)).astype(np.int64)
    )
    ended = churned | (~main & (rng.random(s) < 0.4))
    end = np.where(
        churned & main,
        until,
        start + np.floor(rng.random(s) * (until - start + 1)).astype(np.int64),
    )
    end = np.where(ended, end, -1)
    account = customers["index"][owner]
    employees = accounts["employees"][account]
    base = np.exp(rng.normal(np.log(500) + 0.4 * np.log(employees / 100), 0.5))
    mrr = np.round(np.where(main, base, 0.15 * base), 0)
    plan = np.where(employees < 50, "Starter", np.where(employees < 500, "Growth", "Enterprise"))
    plan = np.where(main, plan, "Add-on").astype(object)
    seats = np.maximum(1, np.round(np.sqrt(employees) * np.where(main, 2.0, 0.3)))
    return {
        "s": s,
        "account": account,
        "start": start,
        "end": end,
        "mrr": mrr,
        "plan": plan,
        "seats": seats.astype(np.int64),
    }


def simulate_churn(accounts: dict, customers: dict, rng: np.random.Generator) -> dict:
    churned = customers["index"][customers["churned"]]
    when = customers["until"][customers["churned"]]
    recorded = rng.random(len(churned)) < 0.85
    churned, when = churned[recorded], when[recorded]
    reason = _pick(CHURN_REASONS, len(churned), rng, [0.25, 0.2, 0.15, 0.25, 0.15]).astype(object)
    reason[accounts["crm_none"][churned] & (rng.random(len(churned)) < 0.6)] = "Missing integration"
    return {"account": churned, "date": when, "reason": reason}


def simulate_nps(accounts: dict, customers: dict, rng: np.random.Generator) -> dict:
    k = len(customers["index"])
    n_responses = accounts["n"] // 2 if k else 0
    who = rng.integers(0, k, n_responses) if k else np.array([], dtype=np.int64)
    since, until = customers["since"][who], customers["until"][who]
    date = since + np.floor(rng.random(n_responses) * (until - since + 1)).astype(np.int64)
    account = customers["index"][who]
    score = np.clip(
        np.round(6.5 + 0.8 * accounts["icp_conditions"][account] + rng.normal(0, 2, n_responses)),
        0,
        10,
    )
    return {"account": account, "date": date, "score": score.astype(np.int64)}


# ---------------------------------------------------------------------------------------------
# Usage events (chunked: 50M rows never sit in memory at once)


def write_usage_events(
    accounts: dict,
    customers: dict,
    n_events: int,
    out: Path,
    rng: np.random.Generator,
    *,
    files: int = 1,
    chunk_rows: int = 2_000_000,
) -> list[Path]:
    """Write ``n_events`` product-usage events as Parquet, ``files`` files, chunk by chunk.

    Columns: account_id (text), date (date), metric (text), value (int: items per event),
    user_id (int). Events fall in the 365 days before the as-of date, while the account is a
    customer; better-fitting accounts are more active and have more users.
    Returns the files written (``out`` itself when ``files == 1``, else ``out/part-NNNN.parquet``).
    """
    k = len(customers["index"])
    if k == 0 or n_events == 0:
        return []
    as_of = _days(AS_OF)
    first = np.maximum(customers["since"], as_of - 364)
    last = customers["until"]
    active = last >= first
    eligible = np.flatnonzero(active)
    intensity = np.exp(0.5 * accounts["icp_conditions"][customers["index"][eligible]])
    intensity *= (last[eligible] - first[eligible] + 1) / 365
    p = intensity / intensity.sum()
    users = np.maximum(1, np.round(np.sqrt(accounts["employees"][customers["index"]]))).astype(
        np.int64
    )
    account_dictionary = pa.array(accounts["id"].tolist(), type=pa.string())
    metric_dictionary = pa.array(METRICS.tolist(), type=pa.string())
    schema = pa.schema(
        [
            ("account_id", pa.dictionary(pa.int32(), pa.string())),
            ("date", pa.date32()),
            ("metric", pa.dictionary(pa.int8(), pa.string())),
            ("value", pa.int32()),
            ("user_id", pa.int64()),
        ]
    )
    if files == 1:
        paths = [out]
        out.parent.mkdir(parents=True, exist_ok=True)
    else:
        out.mkdir(parents=True, exist_ok=True)
        paths = [out / f"part-{i:04d}.parquet" for i in range(files)]
    per_file = [n_events // files + (i < n_events % files) for i in range(files)]
    for path, rows in zip(paths, per_file, strict=True):
        with pq.ParquetWriter(path, schema, compression="zstd") as writer:
            remaining = rows
            while remaining > 0:
                size = min(chunk_rows, remaining)
                remaining -= size
                who = eligible[rng.choice(len(eligible), size, p=p)]
                span = last[who] - first[who] + 1
                day = first[who] + np.floor(rng.random(size) * span).astype(np.int64)
                metric = rng.choice(len(METRICS), size, p=METRIC_SHARE).astype(np.int8)
                value = 1 + rng.poisson(1.0 + accounts["icp_conditions"][customers["index"][who]])
                user = customers["index"][who] * 10_000 + np.floor(
                    rng.random(size) * users[who]
                ).astype(np.int64)
                batch = pa.record_batch(
                    [
                        pa.DictionaryArray.from_arrays(
                            pa.array(customers["index"][who].astype(np.int32)), account_dictionary
                        ),
                        pa.array(day.astype(np.int32), type=pa.date32()),
                        pa.DictionaryArray.from_arrays(pa.array(metric), metric_dictionary),
                        pa.array(value.astype(np.int32)),
                        pa.array(user),
                    ],
                    schema=schema,
                )
                writer.write_batch(batch, row_group_size=1_000_000)
    return paths


# ---------------------------------------------------------------------------------------------
# Writing


def _date_array(days: np.ndarray) -> pa.Array:
    return pa.array(days.astype(np.int32), type=pa.date32(), mask=days < 0)


def _write(columns: dict, path: Path, fmt: str) -> Path:
    table = pa.table(columns)
    path = path.with_suffix(f".{fmt}")
    if fmt == "csv":
        pa_csv.write_csv(table, path)
    else:
        pq.write_table(table, path, compression="zstd")
    return path


def _account_columns(acc: dict, fmt: str) -> dict:
    n = acc["n"]
    employees = pa.array(acc["employees"].astype(np.int64), mask=acc["employees_missing"])
    if fmt == "csv":
        revenue = pa.array(_money_text(acc["annual_revenue"], "$"))
        created = pa.array(_us_dates(acc["created"]))
    else:
        revenue = pa.array(acc["annual_revenue"])
        created = _date_array(acc["created"])
    return {
        "Account ID": pa.array(acc["id"], type=pa.string()),
        "Company Name": pa.array(acc["name"], type=pa.string()),
        "Industry": pa.array(acc["industry"], mask=acc["industry_missing"]),
        "Employees": employees,
        "Annual Revenue": revenue,
        "Billing Country": pa.array(acc["country"], type=pa.string()),
        "Region": pa.array(acc["region"]),
        "Year Founded": pa.array(acc["founded_year"]),
        "Created Date": created,
        "Account Source": pa.array(acc["source"]),
        "CRM": pa.array(acc["crm"]),
        "Uses SSO": pa.array(acc["uses_sso"]),
        "Cloud Provider": pa.array(acc["cloud"]),
        "Website Platform": pa.array(acc["platform"]),
        "Fiscal Year End": pa.array(acc["fiscal_year_end"]),
        "Primary Contact Email": pa.array([f"contact{i}@example.test" for i in range(n)]),
    }


def _deal_columns(acc: dict, deals: dict, fmt: str) -> dict:
    amount = pa.array(_money_text(deals["amount"])) if fmt == "csv" else pa.array(deals["amount"])
    return {
        "Opportunity ID": pa.array(deals["id"], type=pa.string()),
        "Account ID": pa.array(acc["id"][deals["account"]], type=pa.string()),
        "Stage": pa.array(deals["stage"], type=pa.string()),
        "Created Date": _date_array(deals["created"]),
        "Close Date": _date_array(deals["closed"]),
        "Amount": amount,
        "Loss Reason": pa.array(deals["loss_reason"], type=pa.string()),
        "Type": pa.array(deals["type"], type=pa.string()),
        "Opportunity Owner": pa.array(deals["owner"], type=pa.string()),
        "Lead Source": pa.array(deals["source"]),
    }


def _subscription_columns(acc: dict, subs: dict, fmt: str) -> dict:
    mrr = pa.array(_money_text(subs["mrr"])) if fmt == "csv" else pa.array(subs["mrr"])
    return {
        "Account ID": pa.array(acc["id"][subs["account"]], type=pa.string()),
        "Start Date": _date_array(subs["start"]),
        "End Date": _date_array(subs["end"]),
        "MRR": mrr,
        "Plan": pa.array(subs["plan"], type=pa.string()),
        "Seats": pa.array(subs["seats"]),
    }


CONFIG = """\
# Synthetic exports written by benchmarks/generate.py (seed {seed}); see its docstring for the
# planted truth. {accounts:,} accounts, {opportunities:,} opportunities, {subscriptions:,}
# subscriptions, {usage_events:,} usage events.

[project]
name = "Synthetic scale test ({accounts:,} accounts)"
as_of = "{as_of}"

[tables.accounts]
path = "accounts.{fmt}"
{account_date_format}
[tables.accounts.columns]
account_id = "Account ID"
name = "Company Name"
industry = "Industry"
employees = "Employees"
annual_revenue = "Annual Revenue"
country = "Billing Country"
region = "Region"
founded_year = "Year Founded"
created_at = "Created Date"
referral_source = "Account Source"
crm = "CRM"
uses_sso = "Uses SSO"
cloud = "Cloud Provider"
website_platform = "Website Platform"
fiscal_year_end = "Fiscal Year End"

[tables.opportunities]
path = "opportunities.{fmt}"

[tables.opportunities.columns]
opportunity_id = "Opportunity ID"
account_id = "Account ID"
stage = "Stage"
created_at = "Created Date"
closed_at = "Close Date"
amount = "Amount"
loss_reason = "Loss Reason"
type = "Type"
owner = "Opportunity Owner"
source = "Lead Source"

[tables.opportunities.values.stage]
"Closed Won" = "won"
"Closed Lost" = "lost"
"Discovery" = "open"
"Proposal" = "open"
"Negotiation" = "open"

[tables.opportunities.values.type]
"New Business" = "new"
"Expansion" = "expansion"
"Renewal" = "renewal"
{subscriptions_section}{churn_section}{nps_section}{usage_section}
[attributes]
categorical = ["industry", "region", "crm", "uses_sso", "cloud", "referral_source",
               "website_platform", "fiscal_year_end"]
numeric = ["employees", "annual_revenue", "founded_year"]
"""

SUBSCRIPTIONS_SECTION = """
[tables.subscriptions]
path = "subscriptions.{fmt}"

[tables.subscriptions.columns]
account_id = "Account ID"
start_date = "Start Date"
end_date = "End Date"
mrr = "MRR"
plan = "Plan"
seats = "Seats"
"""

CHURN_SECTION = """
[tables.churn_events]
path = "churn_events.{fmt}"

[tables.churn_events.columns]
account_id = "Account ID"
churned_at = "Churn Date"
reason = "Churn Reason"
"""

NPS_SECTION = """
[tables.nps]
path = "nps.{fmt}"

[tables.nps.columns]
account_id = "Account ID"
date = "Response Date"
score = "Score"
"""

USAGE_SECTION = """
[tables.usage]
path = "{usage_path}"
engine = "{engine}"                  # duckdb: aggregated by SQL, never loaded into pandas
"""


def generate_project(
    out: str | Path,
    *,
    accounts: int,
    opportunities: int,
    subscriptions: int,
    usage_events: int = 0,
    fmt: str = "csv",
    seed: int = 0,
    usage_engine: str = "duckdb",
    usage_files: int = 1,
) -> Path:
    """Write synthetic exports and their ``icp.toml`` into ``out``; return the config's path."""
    if fmt not in ("csv", "parquet"):
        raise ValueError(f"format {fmt!r}: use csv or parquet")
    out = Path(out)
    out.mkdir(parents=True, exist_ok=True)
    rng = np.random.default_rng(seed)
    acc = simulate_accounts(accounts, rng)
    _write(_account_columns(acc, fmt), out / "accounts", fmt)
    deals = simulate_deals(acc, opportunities, rng)
    _write(_deal_columns(acc, deals, fmt), out / "opportunities", fmt)
    customers = simulate_customers(acc, deals, rng)
    del deals
    subs = simulate_subscriptions(acc, customers, subscriptions, rng)
    if subs["s"]:
        _write(_subscription_columns(acc, subs, fmt), out / "subscriptions", fmt)
    del subs
    churn = simulate_churn(acc, customers, rng)
    if len(churn["account"]):
        _write(
            {
                "Account ID": pa.array(acc["id"][churn["account"]], type=pa.string()),
                "Churn Date": _date_array(churn["date"]),
                "Churn Reason": pa.array(churn["reason"], type=pa.string()),
            },
            out / "churn_events",
            fmt,
        )
    nps = simulate_nps(acc, customers, rng)
    if len(nps["account"]):
        _write(
            {
                "Account ID": pa.array(acc["id"][nps["account"]], type=pa.string()),
                "Response Date": _date_array(nps["date"]),
                "Score": pa.array(nps["score"]),
            },
            out / "nps",
            fmt,
        )
    usage_path = "usage.parquet" if usage_files == 1 else "usage"
    written = []
    if usage_events:
        written = write_usage_events(
            acc, customers, usage_events, out / usage_path, rng, files=usage_files
        )
    if usage_files > 1:
        usage_path = "usage/*.parquet"
    config = CONFIG.format(
        seed=seed,
        accounts=accounts,
        opportunities=opportunities,
        subscriptions=subscriptions,
        usage_events=usage_events,
        as_of=AS_OF.isoformat(),
        fmt=fmt,
        account_date_format='date_format = "%m/%d/%Y"\n' if fmt == "csv" else "",
        subscriptions_section=SUBSCRIPTIONS_SECTION.format(fmt=fmt) if subscriptions else "",
        churn_section=CHURN_SECTION.format(fmt=fmt) if len(churn["account"]) else "",
        nps_section=NPS_SECTION.format(fmt=fmt) if len(nps["account"]) else "",
        usage_section=USAGE_SECTION.format(usage_path=usage_path, engine=usage_engine)
        if written
        else "",
    )
    path = out / "icp.toml"
    path.write_text(config, encoding="utf-8")
    return path


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--accounts", type=int, default=10_000)
    parser.add_argument("--opportunities", type=int, default=100_000)
    parser.add_argument("--subscriptions", type=int, default=100_000)
    parser.add_argument("--usage-events", type=int, default=0)
    parser.add_argument(
        "--usage-engine",
        choices=["duckdb", "pandas"],
        default="duckdb",
        help="how the config asks the kit to read usage events (default: duckdb)",
    )
    parser.add_argument(
        "--usage-files", type=int, default=1, help="split usage events over this many files"
    )
    parser.add_argument("--format", choices=["csv", "parquet"], default="csv")
    parser.add_argument("--out", required=True, help="project folder to write")
    parser.add_argument("--seed", type=int, default=0)
    args = parser.parse_args(argv)
    started = time.perf_counter()
    config = generate_project(
        args.out,
        accounts=args.accounts,
        opportunities=args.opportunities,
        subscriptions=args.subscriptions,
        usage_events=args.usage_events,
        fmt=args.format,
        seed=args.seed,
        usage_engine=args.usage_engine,
        usage_files=args.usage_files,
    )
    sizes = ", ".join(
        f"{p.name} {p.stat().st_size / 1e6:,.1f} MB"
        for p in sorted(Path(args.out).iterdir())
        if p.is_file() and p.name != "icp.toml"
    )
    print(f"wrote {config} in {time.perf_counter() - started:.1f}s ({sizes})")


if __name__ == "__main__":
    main()
