"""Data overview: what was loaded, what period it covers, how complete it is, key totals.

The first report of every run. It answers "can we trust the rest?" before any pattern is shown:
rows and date range per table, rows per quarter, completeness of every candidate attribute,
the data problems validation found (in words), and the headline numbers with their intervals.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import pandas as pd

from icp_research.analyses import registry
from icp_research.data import churn_source
from icp_research.data.schema import DATE_COLUMNS
from icp_research.data.study import Study
from icp_research.formatting import fmt_interval, fmt_money, fmt_number, fmt_pct
from icp_research.methods.stats import (
    clustered_rate_ci,
    clustered_rate_test,
    clustered_ratio_ci,
    poisson_rate_ci,
    proportion_ci,
)
from icp_research.result import Result, View


@dataclass
class Overview(Result):
    headline: dict | None = None
    totals: dict | None = None

    def to_json(self) -> dict:
        trust = (self.tables or {}).get("trust")
        return {
            "headline": self.headline or {},
            "totals": self.totals or {},
            "trust": [] if trust is None else trust.to_dict(orient="records"),
        }

    def views(self) -> dict:
        """``{name: callable returning a View}``: ``problems`` (what validation found, in
        words) and ``trust`` (problems of meaning); each reads as a success when empty."""
        tables = self.tables or {}

        def problems() -> View:
            return View(
                "data problems",
                tables.get("problems"),
                "No data problems found.",
                empty_as="success",
            )

        def trust() -> View:
            return View(
                "problems of meaning",
                tables.get("trust"),
                "No problems of meaning found.",
                empty_as="success",
            )

        return {"problems": problems, "trust": trust}


def data_overview(study: Study) -> Overview:
    """Summarise the loaded data (as of the study date).

    Returns an :class:`Overview` whose ``summary`` has one row per table (rows, columns, first
    and last date), ``tables['per_quarter']`` rows per table and quarter, ``tables['completeness']``
    the share of accounts with a value per attribute, ``tables['problems']`` validation findings,
    ``totals`` the key numbers (with intervals) and ``headline`` their display strings.
    """
    facts = study.facts
    summary = _table_summary(study)
    per_quarter = _per_quarter(study)
    completeness = _completeness(study)
    totals, findings, caveats = _totals(study, facts)
    problems = study.report.to_frame()
    trust = study.trust
    if trust.variation:
        totals["not_measurable"] = dict(trust.variation)
    headline = _headline(totals, study)
    caveats.extend(_problem_sentences(study))
    caveats.extend(trust_sentences(study))
    first = _first_date(study.raw_tables)
    if first is not None and first > study.as_of:
        # A --quarter before the data starts: every report will be empty; say why once, here.
        caveats.insert(
            0,
            f"Nothing in the data is dated on or before the analysis date "
            f"({study.as_of:%Y-%m-%d}): the first record is from {first:%Y-%m-%d}, so every "
            "report of this run is empty. Choose a later quarter or as_of date.",
        )
    if study.revenue_basis == "bookings":
        caveats.append(
            "There is no subscriptions table, so ARR stands for won deal value in the last 12 "
            "months (bookings), and "
            + (
                "NRR cannot be measured ("
                + churn_source.describe(study.facts.attrs.get("churn_source", ""))
                + ")."
                if study.churn_measured
                else "churn and retention cannot be measured."
            )
        )
    return Overview(
        title="Data overview",
        summary=summary,
        findings=findings,
        caveats=caveats,
        tables={
            "per_quarter": per_quarter,
            "completeness": completeness,
            "problems": problems,
            "trust": trust.to_frame(),
        },
        params={"as_of": study.as_of.strftime("%Y-%m-%d")},
        headline=headline,
        totals=totals,
    )


def _first_date(tables: dict[str, pd.DataFrame]):
    """The earliest date anywhere in the data, or None."""
    firsts = [
        frame[column].min()
        for name, frame in tables.items()
        for column in DATE_COLUMNS.get(name, [])
        if column in frame and frame[column].notna().any()
    ]
    return min(firsts) if firsts else None


def _table_summary(study: Study) -> pd.DataFrame:
    rows = []
    inputs = {i["table"]: i for i in study.report.inputs}
    for name, frame in study.tables.items():
        first = last = pd.NaT
        for column in DATE_COLUMNS.get(name, []):
            if column in frame and frame[column].notna().any():
                lo, hi = frame[column].min(), frame[column].max()
                first = lo if pd.isna(first) or lo < first else first
                last = hi if pd.isna(last) or hi > last else last
        raw_rows = len(study.raw_tables.get(name, frame))
        rows.append(
            {
                "table": name,
                "file": inputs.get(name, {}).get("path", ""),
                "rows_in_file": inputs.get(name, {}).get("rows", raw_rows),
                "rows_as_of": len(frame),
                "columns": frame.shape[1],
                "first_date": first,
                "last_date": last,
            }
        )
    return pd.DataFrame(rows)


def _per_quarter(study: Study) -> pd.DataFrame:
    parts = []
    specs = {
        "accounts": "created_at",
        "opportunities": "created_at",
        "subscriptions": "start_date",
        "churn_events": "churned_at",
        "nps": "date",
        "feedback": "date",
    }
    for name, column in specs.items():
        frame = study.tables.get(name)
        if frame is None or column not in frame or frame[column].notna().sum() == 0:
            continue
        # Counted as periods, named after: not a string per row (10M at 10M deals).
        counts = frame[column].dropna().dt.to_period("Q").value_counts()
        counts.index = counts.index.astype(str)
        counts = counts.sort_index()
        parts.append(
            pd.DataFrame({"table": name, "quarter": counts.index, "rows": counts.to_numpy()})
        )
    if not parts:
        return pd.DataFrame(columns=["table", "quarter", "rows"])
    return pd.concat(parts, ignore_index=True)


def _unlisted_role(name: str) -> str:
    """Why a column of the accounts that is no candidate and was not screened out is none."""
    from icp_research.data.trust import CONTRACT_WORDS, name_words

    if any(word in CONTRACT_WORDS for word in name_words(name)):
        return "what the customer pays (a contract term)"
    return "display or key column"


def _completeness(study: Study) -> pd.DataFrame:
    accounts = study.tables["accounts"]
    spec = study.attributes
    rows = []
    for name in [c for c in accounts.columns if c not in ("account_id",)]:
        series = accounts[name]
        role = (
            "candidate (categorical)"
            if name in spec.categorical
            else "candidate (numeric)"
            if name in spec.numeric
            else f"not a predictor: {spec.excluded.get(name, _unlisted_role(name))}"
        )
        rows.append(
            {
                "attribute": name,
                "role": role,
                "filled_share": float(series.notna().mean()) if len(series) else np.nan,
                "distinct_values": int(series.nunique(dropna=True)),
                "example": _example(series),
            }
        )
    return pd.DataFrame(rows)


def _example(series: pd.Series) -> str:
    values = series.dropna()
    if values.empty:
        return ""
    if pd.api.types.is_numeric_dtype(values) and not pd.api.types.is_bool_dtype(values):
        median = float(values.median())
        # 9,371,943 rather than 9.37194e+06; a year stays 2010.
        if abs(median) >= 10_000:
            return f"median {median:,.0f}"
        return f"median {median:.0f}" if abs(median) >= 100 else f"median {median:.4g}"
    if pd.api.types.is_datetime64_any_dtype(values):
        # The first and last dates, without a time of day nobody recorded ("00:00:00").
        timed = (values.dt.normalize() != values).any()
        pattern = "%Y-%m-%d %H:%M" if timed else "%Y-%m-%d"
        return f"{values.min():{pattern}} to {values.max():{pattern}}"
    top = values.astype(str).value_counts().head(3).index
    return ", ".join(top)


def _totals(study: Study, facts: pd.DataFrame) -> tuple[dict, list[str], list[str]]:
    totals: dict = {"accounts": int(len(facts))}
    findings: list[str] = []
    caveats: list[str] = []
    customers = facts["is_customer"].astype(bool)
    totals["customers"] = int(customers.sum())
    basis = study.revenue_basis
    findings.append(
        f"{len(facts):,} accounts as of {study.as_of:%Y-%m-%d}, of which {customers.sum():,} "
        f"are or were customers."
    )
    if not customers.any() and not study.has("subscriptions") and not study.has("opportunities"):
        # Only an accounts table: nothing says who bought. A customer list is also the
        # subscriptions (its start, churn date and amount).
        caveats.append(
            "No account is a customer: a customer is an account with a won deal or a paid "
            "subscription, and there are neither. If this is a list of customers, map the same "
            "file as [tables.subscriptions] too (start_date, end_date for the churn date, mrr or "
            "arr): see 'Only a customer list' in the README."
        )
    if basis == "subscriptions":
        active = facts["retained"].fillna(False).astype(bool)
        totals["active_customers"] = int(active.sum())
        totals["arr"] = float(facts.loc[active, "arr_current"].sum())
        # Mixed currencies are said here too, not only on the KPI tile: the summary's sentence
        # is what gets quoted.
        mixed = _mixed_currencies(study, "subscriptions").strip()[1:-1]
        # Subscriptions with no account id are in no account's ARR: say what that leaves out.
        unlinked = (getattr(study.report, "unlinked", None) or {}).get("subscriptions") or {}
        left_out = (
            f"; not counted: {fmt_money(unlinked['arr'])} ARR of {unlinked['running']:,} "
            f"subscription{'' if unlinked['running'] == 1 else 's'} with no end date and no "
            "account in the accounts table"
            if unlinked.get("arr", 0) > 0 and unlinked.get("running")
            else ""
        )
        findings.append(
            f"{active.sum():,} active customers paying {fmt_money(totals['arr'])} ARR "
            f"({mixed + '; ' if mixed else ''}"
            f"median {fmt_money(facts.loc[active, 'arr_current'].median())} per customer"
            f"{left_out})."
        )
        if study.churn_measured:
            unknown = customers & facts["churned"].isna()
            if unknown.sum() < customers.sum():
                totals["customers_unknown"] = int(unknown.sum())
    source = facts.attrs.get("churn_source", "subscriptions")
    churn_sentence = None
    if study.churn_measured:
        # Logo churn as a rate per customer-year (right-censored exposure), not churned / all.
        # Undated churn (a churn flag with nothing to date it) has no exposure: share only.
        # Measured from subscriptions, churn events or a churn column, whichever counts churn.
        churned = facts["churned"].fillna(False).astype(bool) & customers
        dated = churned & facts["tenure_days"].notna()
        known = customers & facts["churned"].notna()  # churn unknown: no exposure either
        exposure_years = float(facts.loc[known, "tenure_days"].sum()) / 365.25
        rate, low, high = poisson_rate_ci(float(dated.sum()), exposure_years)
        totals["annual_churn_rate"] = {
            "rate": rate,
            "ci_low": low,
            "ci_high": high,
            "events": int(dated.sum()),
            "customer_years": exposure_years,
            "source": source,
        }
        totals["churned_share"] = _churned_share(facts, customers, churned, dated, study)
        findings.extend(_churn_source_sentences(facts, totals["churned_share"], study))
        caveats.extend(churn_source.sentence(n) for n in facts.attrs.get("churn_notes", []))
        if exposure_years > 0 and not np.isnan(rate):
            churn_sentence = (
                f"Customers churn at {fmt_pct(rate, 1)} a year ({fmt_pct(low, 1)}–{fmt_pct(high, 1)}; "
                f"{dated.sum():,} churns over {exposure_years:,.0f} customer-years; "
                f"{churn_source.describe(source)})."
            )
    if basis == "subscriptions":
        # Gross logo retention and NRR over the last 12 months (customers paying a year ago).
        cohort = facts["arr_12m_ago"] > 0
        if cohort.sum() > 0:
            kept = (facts.loc[cohort, "arr_current"] > 0).sum()
            lo, hi = proportion_ci(kept, cohort.sum(), study.alpha)
            totals["logo_retention_12m"] = {
                "rate": kept / cohort.sum(),
                "ci_low": float(lo),
                "ci_high": float(hi),
                "n": int(cohort.sum()),
            }
            # NRR is a ratio of sums over these customers: the ratio estimator's interval,
            # with each customer one cluster (a few large accounts move it most).
            nrr, nrr_low, nrr_high, _, _ = clustered_ratio_ci(
                facts.loc[cohort, "arr_current"], facts.loc[cohort, "arr_12m_ago"], study.alpha
            )
            nrr_low = max(0.0, nrr_low) if not np.isnan(nrr_low) else nrr_low
            totals["nrr_12m"] = float(nrr)
            totals["nrr_12m_interval"] = {
                "ci_low": float(nrr_low),
                "ci_high": float(nrr_high),
                "n": int(cohort.sum()),
            }
            by_subscriptions = "" if source == "subscriptions" else " by their subscriptions"
            findings.append(
                f"Of {cohort.sum():,} customers paying a year ago, {fmt_pct(kept / cohort.sum())} "
                f"still pay{by_subscriptions} ({fmt_pct(float(lo))}–{fmt_pct(float(hi))}); net "
                f"revenue retention is {fmt_pct(nrr)} ({fmt_interval(nrr_low, nrr_high)})."
            )
    elif basis == "bookings":
        totals["bookings_12m"] = float(facts["arr_current"].sum())
        findings.append(
            f"Won deal value in the last 12 months: {fmt_money(totals['bookings_12m'])}"
            f"{_mixed_currencies(study, 'opportunities')}."
        )
    if churn_sentence:
        findings.append(churn_sentence)

    deals = study.deals
    kind = "closed deals"
    if len(deals) and not deals["is_new_business"].all():
        kind = "closed new-business deals"
        caveats.append(
            f"Win rates and sales cycles count new-business deals only "
            f"({int(deals['is_new_business'].sum()):,} of {len(deals):,} deals); expansion and "
            "renewal deals are open to customers only and would inflate them."
        )
        # The columns read below, then the rows: not a copy of every deal column.
        used = ["account_id", "stage", "is_closed", "won", "amount", "cycle_days", "closed_at"]
        deals = deals.loc[deals["is_new_business"], [c for c in used if c in deals.columns]]
    if len(deals):
        closed = deals["is_closed"].astype(bool)
        won = deals["stage"] == "won"
        attributed = closed & deals["account_id"].notna()
        # Linked accounts (a parent's subsidiaries) are one unit: they buy together.
        per_account = _per_unit(deals.loc[attributed], study)
        rate, low, high, clusters = clustered_rate_ci(
            per_account["won"], per_account["closed"], study.alpha
        )
        unit = "accounts or groups" if study.account_groups[1] else "accounts"
        if not attributed.any() and closed.any():
            rate = won[closed].mean()
            low, high = (
                float(v) for v in proportion_ci(won[closed].sum(), closed.sum(), study.alpha)
            )
        totals["deals"] = {
            "won": int(won.sum()),
            "lost": int((deals["stage"] == "lost").sum()),
            "open": int((deals["stage"] == "open").sum()),
        }
        totals["win_rate"] = {
            "rate": float(rate),
            "ci_low": float(low),
            "ci_high": float(high),
            # The deals the rate counts (those without an account are left out of it).
            "n": int(attributed.sum()) if attributed.any() else int(closed.sum()),
            "accounts": int(deals.loc[attributed & closed, "account_id"].nunique()),
            "clusters": int(clusters),
        }
        unmeasurable = study.variation
        # Deals without an account cannot be clustered by account: the rate leaves them out.
        unlinked = int((closed & deals["account_id"].isna()).sum()) if attributed.any() else 0
        left_out = f", {unlinked:,} of them without an account and left out" if unlinked else ""
        if closed.any() and "won" in unmeasurable:
            findings.append(
                f"{closed.sum():,} {kind}: the win rate is not measurable, "
                f"{unmeasurable['won']}; {totals['deals']['open']:,} deals open."
            )
        elif closed.any():
            findings.append(
                f"{closed.sum():,} {kind}{left_out}: win rate {fmt_pct(rate)} "
                f"({fmt_interval(low, high)}, interval clustered by account over {clusters:,} "
                f"{unit}); {totals['deals']['open']:,} deals open."
            )
            latest = _latest_win_rate(deals.loc[attributed], study)
            if latest is not None:
                totals["win_rate_latest"] = latest
                findings.append(latest.pop("sentence"))
        if "amount" in deals and won.any():
            totals["avg_won_deal"] = float(deals.loc[won, "amount"].mean())
        cycle = deals.loc[won, "cycle_days"].dropna()
        if len(cycle) and "sales_cycle" in unmeasurable:
            findings.append(f"The sales cycle is not measurable: {unmeasurable['sales_cycle']}.")
        elif len(cycle):
            totals["median_sales_cycle_days"] = float(cycle.median())
            findings.append(
                f"Won deals take a median {cycle.median():.0f} days from creation to close."
            )
        if per_account["closed"].max() > 20 if len(per_account) else False:
            caveats.append(
                f"Deals cluster heavily by account (up to {int(per_account['closed'].max()):,} closed deals "
                f"per account, median {per_account['closed'].median():.0f}): intervals treat accounts, not deals, "
                "as the independent units."
            )
    if "nps_latest" in facts and facts["nps_latest"].notna().any():
        latest = facts["nps_latest"].dropna()
        nps = 100 * ((latest >= 9).mean() - (latest <= 6).mean())
        totals["nps"] = {"score": float(nps), "n": int(len(latest))}
        findings.append(f"NPS is {nps:+.0f} from {len(latest):,} accounts' latest responses.")
    return totals, findings, caveats


def _mixed_currencies(study: Study, table: str) -> str:
    """ " (USD and EUR added as they are, not converted)" when the table's amounts are in several
    currencies (validation warned: the kit has no exchange rates), else ""."""
    for problem in study.report.problems:
        if problem.table == table and problem.message.startswith("amounts are in "):
            counts = re.search(r"\(([^()]*) rows\)", problem.message)
            codes = (
                [part.rsplit(" ", 1)[0] for part in counts.group(1).split(", ")] if counts else []
            )
            shown = " and ".join(codes) if 1 < len(codes) <= 4 else "several currencies"
            return f" ({shown} added as they are, not converted)"
    return ""


def _headline(totals: dict, study: Study) -> dict:
    headline = {
        "Accounts": fmt_number(totals["accounts"]),
        "Customers": fmt_number(totals["customers"]),
    }
    if "active_customers" in totals and totals["active_customers"] != totals["customers"]:
        # Beside ARR, "Customers" reads as those paying it: say how many are, of all ever.
        headline["Customers"] = (
            f"{fmt_number(totals['active_customers'])} active of {fmt_number(totals['customers'])}"
        )
        if totals.get("customers_unknown"):
            # "476 active of 586" read as 110 churned, where 25 were never in the billing data.
            headline["Customers"] += (
                f" ({fmt_number(totals['customers_unknown'])} whose churn is unknown)"
            )
    if "arr" in totals:
        headline["ARR"] = fmt_money(totals["arr"]) + _mixed_currencies(study, "subscriptions")
    if "bookings_12m" in totals:
        headline["Bookings (12 months)"] = fmt_money(totals["bookings_12m"]) + _mixed_currencies(
            study, "opportunities"
        )
    unmeasurable = totals.get("not_measurable", {})
    if "won" in unmeasurable:
        headline["Win rate"] = f"not measurable — {unmeasurable['won']}"
    elif "win_rate" in totals and not np.isnan(totals["win_rate"]["rate"]):
        w = totals["win_rate"]
        headline["Win rate"] = (
            f"{fmt_pct(w['rate'])} ({fmt_interval(w['ci_low'], w['ci_high'])}; "
            f"{w['n']:,} deal{'' if w['n'] == 1 else 's'})"
        )
    latest = totals.get("win_rate_latest")
    if "won" not in unmeasurable and latest and latest["changed"]:
        headline[f"Win rate, {latest['period']}"] = (
            f"{fmt_pct(latest['rate'])} ({fmt_interval(latest['ci_low'], latest['ci_high'])}; "
            f"{latest['n']:,} deals)"
        )
    if "sales_cycle" in unmeasurable:
        headline["Sales cycle"] = f"not measurable — {unmeasurable['sales_cycle']}"
    if "annual_churn_rate" in totals and not np.isnan(totals["annual_churn_rate"]["rate"]):
        c = totals["annual_churn_rate"]
        headline["Churn / year"] = (
            f"{fmt_pct(c['rate'], 1)} ({fmt_pct(c['ci_low'], 1)}–{fmt_pct(c['ci_high'], 1)}) "
            + churn_source.short(c["source"])
        )
    if "churn" in unmeasurable and "Churn / year" in headline:
        source = totals["annual_churn_rate"]["source"]
        headline["Churn / year"] = (
            f"not measurable — {unmeasurable['churn']} " + churn_source.short(source)
        )
    share = totals.get("churned_share")
    if share and share["undated"]:
        # The rate leaves undated churn out; the share counts it.
        headline["Churned customers"] = (
            f"{fmt_pct(share['share'])} ({share['churned']:,} of {share['customers']:,}) "
            + churn_source.short(share["source"])
        )
    if "nrr_12m" in totals:
        interval = totals.get("nrr_12m_interval") or {}
        n = interval.get("n")
        accounts = f"; {n:,} customer{'' if n == 1 else 's'}" if n else ""
        headline["NRR"] = (
            f"{fmt_pct(totals['nrr_12m'])} "
            f"({fmt_interval(interval.get('ci_low'), interval.get('ci_high'))}{accounts})"
        )
    return headline


def _churned_share(facts, customers, churned, dated, study: Study) -> dict:
    """Customers who have churned by the as-of date, as a share (Wilson interval)."""
    known = customers & facts["churned"].notna()
    n, k = int(known.sum()), int((churned & known).sum())
    low, high = proportion_ci(k, n, study.alpha) if n else (np.nan, np.nan)
    return {
        "churned": k,
        "customers": n,
        "share": k / n if n else np.nan,
        "ci_low": float(low),
        "ci_high": float(high),
        "undated": int((churned & ~dated).sum()),
        "source": facts.attrs.get("churn_source", "subscriptions"),
    }


def _churn_source_sentences(facts: pd.DataFrame, share: dict, study: Study) -> list[str]:
    """Where churn comes from, the share churned, and the reactivations."""
    if "churn_source" not in facts.attrs:
        return []
    out = [
        churn_source.sentence(
            f"{churn_source.describe(share['source'])} ({facts.attrs['churn_source_reason']})"
        )
    ]
    if share["customers"]:
        text = (
            f"{share['churned']:,} of {share['customers']:,} customers "
            f"({fmt_pct(share['share'])}, {fmt_interval(share['ci_low'], share['ci_high'])}) have "
            f"churned by {study.as_of:%Y-%m-%d}, {churn_source.short(share['source'])}"
        )
        if share["undated"]:
            text += (
                f"; {share['undated']:,} of them have no churn date and are left out of the "
                "churn rate per customer-year"
            )
        out.append(churn_source.sentence(text))
    note = churn_source.reactivation_note(facts.attrs.get("churn_counts", {}))
    if note:
        out.append(churn_source.sentence(note))
    return out


def trust_sentences(study: Study) -> list[str]:
    """The answer to "can we trust what this data means?" in sentences: what cannot be
    measured because it never varies, and how many checks of meaning raised a warning."""
    trust = study.trust
    labels = {"won": "Win rate", "sales_cycle": "Sales cycle", "churn": "Churn"}
    lines = [
        f"{labels[name]}: not measurable — {why}; the analyses that need it say so instead of "
        "showing a rate."
        for name, why in trust.variation.items()
    ]
    others = len(trust.problems) - len(trust.variation)
    if others > 0:
        lines.append(
            f"The checks of what the data means raised {others} more warning(s) (outcome-like "
            "columns, contract terms, implausible money or dates); they are listed under 'Can "
            "we trust what this data means?' with the rows affected and how to fix them."
        )
    return lines


def _problem_sentences(study: Study) -> list[str]:
    report = study.report
    lines = []
    if report.warnings:
        lines.append(
            f"Validation raised {len(report.warnings)} warning(s) about the exports; they are listed "
            "under 'Data quality' with the rows affected and how to fix them."
        )
    return lines


def plot_per_quarter(overview: Overview, *, ax=None):
    """Rows per quarter for each dated table (a line per table). Returns the Axes."""
    import matplotlib.pyplot as plt
    import seaborn as sns

    data = overview.tables["per_quarter"]
    if ax is None:
        _, ax = plt.subplots(figsize=(9, 4))
    if data.empty:
        ax.text(0.5, 0.5, "No dated rows", ha="center", va="center", transform=ax.transAxes)
        ax.set_axis_off()
        return ax
    sns.lineplot(data=data, x="quarter", y="rows", hue="table", marker="o", ax=ax)
    ax.set_title("Rows per quarter, by table")
    ax.set_xlabel("Quarter")
    ax.set_ylabel("Rows")
    quarters = sorted(data["quarter"].unique())
    step = max(1, len(quarters) // 12)
    ax.set_xticks(range(0, len(quarters), step))
    ax.set_xticklabels(quarters[::step], rotation=45, ha="right")
    return ax


def plot_completeness(overview: Overview, *, ax=None):
    """Share of accounts with a value, per attribute (horizontal bars). Returns the Axes."""
    import matplotlib.pyplot as plt

    data = overview.tables["completeness"].sort_values("filled_share")
    if ax is None:
        _, ax = plt.subplots(figsize=(8, max(2.5, 0.3 * len(data) + 1)))
    ax.barh(data["attribute"], data["filled_share"] * 100, color="#0173b2")
    ax.set_xlim(0, 100)
    ax.set_xlabel("Accounts with a value (%)")
    ax.set_title("Completeness of account attributes")
    return ax


def save_artifacts(study: Study, result: Result) -> list[Path]:
    """Write the overview's artifacts (:data:`registry.OVERVIEW`, :data:`registry.DATA_PROBLEMS`)
    and its result for the run dashboard."""
    written = study.save_artifact(registry.OVERVIEW, result.to_json())
    written += study.save_artifact(registry.DATA_PROBLEMS, result.tables["problems"])
    study.save_result(result, "overview")
    return written


LATEST_QUARTERS = 4


def _per_unit(deals: pd.DataFrame, study: Study) -> pd.DataFrame:
    """Won and closed deals per independent unit: the account, or its group of linked accounts
    (:meth:`~icp_research.data.study.Study.cluster_ids`)."""
    units = study.cluster_ids(deals["account_id"]).to_numpy()
    return deals.groupby(units).agg(won=("won", "sum"), closed=("is_closed", "sum"))


def _latest_win_rate(deals: pd.DataFrame, study: Study) -> dict | None:
    """The win rate of the deals closed in the latest four quarters against the earlier ones.

    The all-time win rate pools every year of the export: when win rates fell (or rose), it
    describes no quarter a reader lives in. Returns the latest rate with its interval
    (clustered by account), the earlier one, the two-sided p-value of a cluster-robust test,
    ``changed`` (p below alpha) and the sentence that says it; None when the export has no
    closed deal before the latest four quarters, or none in them. Accounts with deals in both
    periods are treated as independent clusters of each, which, as an account's deals go
    alike, overstates the variance of the difference: the test errs towards "no clear change".
    """
    if "closed_at" not in deals or not len(deals):
        return None
    closed = deals[deals["is_closed"].astype(bool) & deals["closed_at"].notna()]
    quarter = study.as_of.to_period("Q")
    start = (quarter - (LATEST_QUARTERS - 1)).start_time
    recent = closed["closed_at"] >= start
    if not recent.any() or recent.all():
        return None

    now, before = _per_unit(closed[recent], study), _per_unit(closed[~recent], study)
    rate, low, high, _ = clustered_rate_ci(now["won"], now["closed"], study.alpha)
    earlier, e_low, e_high, _ = clustered_rate_ci(before["won"], before["closed"], study.alpha)
    p = clustered_rate_test(now["won"], now["closed"], before["won"], before["closed"])
    changed = bool(np.isfinite(p) and p < study.alpha)
    period = f"latest {LATEST_QUARTERS} quarters"
    span = f"{quarter - (LATEST_QUARTERS - 1)}–{quarter}"
    n, n_before = int(now["closed"].sum()), int(before["closed"].sum())
    if changed:
        verdict = (
            f"significantly {'lower' if rate < earlier else 'higher'} (p = {p:.2g}), so the win "
            f"rate of all {n + n_before:,} deals above {'overstates' if rate < earlier else 'understates'} "
            "the current one"
        )
    else:
        verdict = "no clear change" + (f" (p = {p:.2g})" if np.isfinite(p) else "")
    sentence = (
        f"In the {period} ({span}) the win rate was {fmt_pct(rate)} "
        f"({fmt_interval(low, high)}; {n:,} deals) against {fmt_pct(earlier)} "
        f"({fmt_interval(e_low, e_high)}; {n_before:,} deals) before them: {verdict}."
    )
    return {
        "period": period,
        "from": f"{start:%Y-%m-%d}",
        "rate": float(rate),
        "ci_low": float(low),
        "ci_high": float(high),
        "n": n,
        "rate_before": float(earlier),
        "n_before": n_before,
        "p_value": float(p),
        "changed": changed,
        "sentence": sentence,
    }
