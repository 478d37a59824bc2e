"""Product-market-fit indicators and market sizing (TAM / SAM / SOM) of a list of companies."""

from __future__ import annotations

import numpy as np
import pandas as pd
from scipy import stats as sps

from icp_research.analyses.blueprint.result import Blueprint
from icp_research.analyses.blueprint.rules import CHANNEL_ATTRIBUTES
from icp_research.analyses.blueprint.text import pct, plain_records, rate_ci_text
from icp_research.data.study import Study
from icp_research.formatting import fmt_money, fmt_p
from icp_research.methods.stats import proportion_ci
from icp_research.result import Result

#: The share of new customers that come from referrals above which the rule of thumb sees
#: product-market fit.
PMF_REFERRAL_SHARE = 0.30


def _scoring_spec(blueprint: Blueprint) -> dict:
    """The parts of icp.json a scorer reads (scorecard, tiers, rules, attributes)."""
    spec = blueprint.rules_spec()
    if blueprint.scorecard is not None:
        spec.update(blueprint.scorecard.to_dict())
    else:
        spec.update({"scorecard": None, "tiers": blueprint.params.get("tiers_json", [])})
    return spec


def pmf_indicators(study: Study, blueprint: Blueprint) -> Result:
    """The seeds' product-market-fit indicators, where the data has them.

    The share of customers (and of new customers, won in the last four quarters) who came by
    referral against the common 30% rule of thumb, and, per fit-score tier, the referral share and NPS
    (mean score and share of promoters, 9-10) of customers; NPS of referred customers vs others.

    Returns
    -------
    Result
        ``summary``: the referral shares (``group``, ``n``, ``referred``, ``share``,
        ``ci_low``, ``ci_high``); ``tables['by_tier']``: per tier ``customers``,
        ``referred_share``, ``nps_n``, ``nps_mean`` with t interval, ``promoters``;
        ``params['json']``: the ``pmf`` entry of icp.json.
    """
    from icp_research.scoring.model import score_leads

    alpha = study.alpha
    result = Result(title="Product-market-fit indicators")
    facts = study.facts
    customers = facts[facts["is_customer"].fillna(False).astype(bool)]
    if customers.empty:
        result.caveats.append("Not enough evidence: there are no customers yet.")
        result.params["json"] = {"verdict": "no customers"}
        return result
    rows = []
    unrecognised = None
    known = "referred" in customers.columns and customers["referred"].notna().any()
    column = facts.attrs.get("referral_column", "referral_source")
    if known and column == "lead_source":
        why = (
            "none of the accounts' referral_source values is a referral"
            if "referral_source" in facts.columns
            else "the accounts have no referral_source"
        )
        result.caveats.append(
            f"Referrals are read from the lead source of each account's first deal ({why})."
        )
    if known and not customers["referred"].fillna(False).astype(bool).any():
        sources = customers[column].dropna().astype(str)
        if sources.nunique() >= 2:
            # "Empfehlung" (German for referral) not in referral_values: "0% came by
            # referral" would be a headline about the config, not the customers.
            unrecognised = sources.value_counts().index[:6].tolist()
    if unrecognised:
        result.caveats.append(
            f"No referral test: none of the accounts' {column} values ("
            + ", ".join(f'"{v}"' for v in unrecognised)
            + ") is recognised as a referral. If one of them means a referral, list it in "
            '[analysis] referral_values (referral_values = ["<that value>"]; the commonest '
            "value is not necessarily one)."
        )
    elif known:
        recent_from = study.as_of - pd.DateOffset(years=1)
        since = pd.to_datetime(customers["customer_since"])
        for group, part in (
            ("all customers", customers),
            ("new customers (last 4 quarters)", customers[since >= recent_from]),
        ):
            known = part["referred"].dropna().astype(bool)
            n, k = len(known), int(known.sum())
            low, high = proportion_ci(k, n, alpha) if n else (np.nan, np.nan)
            rows.append(
                {
                    "group": group,
                    "n": n,
                    "referred": k,
                    "share": k / n if n else np.nan,
                    "ci_low": float(low),
                    "ci_high": float(high),
                }
            )
    result.summary = pd.DataFrame(rows)
    verdict = "the data does not say which customers were referred"
    if unrecognised:
        verdict = f"no {column} value is recognised as a referral"
    elif rows:
        main = rows[1] if rows[1]["n"] >= 30 else rows[0]
        if not main["n"]:
            verdict = "no customer has a referral source"
        elif main["ci_low"] >= PMF_REFERRAL_SHARE:
            verdict = "above the 30% rule of thumb for referrals: a sign of product-market fit"
        elif main["ci_high"] < PMF_REFERRAL_SHARE:
            verdict = "below the 30% rule of thumb for referrals as a sign of product-market fit"
        else:
            verdict = "not clearly above or below the 30% rule of thumb for referrals"
        for row in rows:
            if row["n"]:
                result.findings.append(
                    f"{pct(row['share'])} of {row['group']} came by referral (95% CI "
                    f"{pct(row['ci_low'])}–{pct(row['ci_high'])}, n={row['n']:,})."
                )
        result.findings.append(f"Referrals: {verdict}.")
    elif not unrecognised:
        result.caveats.append(
            "Not enough evidence for the referral test: no referral source on the accounts."
        )
    by_tier = pd.DataFrame()
    if blueprint.scorecard is not None:
        scored = score_leads(_scoring_spec(blueprint), customers)
        frame = customers.assign(_tier=scored["tier"].astype(str).to_numpy())
        records = []
        for tier, _ in blueprint.scorecard.tiers:
            part = frame[frame["_tier"] == tier]
            record = {"tier": tier, "customers": len(part)}
            if "referred" in part.columns and not unrecognised:
                known = part["referred"].dropna().astype(bool)
                k = int(known.sum())
                record["referred_share"] = k / len(known) if len(known) else np.nan
                low, high = proportion_ci(k, len(known), alpha) if len(known) else (np.nan,) * 2
                record["referred_ci_low"], record["referred_ci_high"] = float(low), float(high)
            if "nps_mean" in part.columns:
                nps = pd.to_numeric(part["nps_mean"], errors="coerce").dropna()
                record["nps_n"] = len(nps)
                record["nps_mean"] = nps.mean() if len(nps) else np.nan
                low = high = np.nan
                if len(nps) >= 2 and nps.std() > 0:
                    low, high = sps.t.interval(
                        1 - alpha, len(nps) - 1, loc=nps.mean(), scale=sps.sem(nps)
                    )
                record["nps_ci_low"], record["nps_ci_high"] = low, high
                if "nps_latest" in part.columns:
                    latest = pd.to_numeric(part["nps_latest"], errors="coerce").dropna()
                    record["promoters"] = (latest >= 9).mean() if len(latest) else np.nan
            records.append(record)
        by_tier = pd.DataFrame(records)
        if "referred_share" in by_tier.columns and len(by_tier):
            top = by_tier.iloc[0]
            if top["customers"] and np.isfinite(top["referred_share"]):
                if top["referred_ci_low"] >= PMF_REFERRAL_SHARE:
                    where = "above the 30% test: product-market fit within the ICP's top tier"
                elif top["referred_ci_high"] < PMF_REFERRAL_SHARE:
                    where = "below the 30% test even there"
                else:
                    where = "not clearly above or below the 30% test"
                scored_by = {a.name for a in blueprint.scorecard.attributes}
                if column in scored_by:
                    # The top tier is made of the score's points for this very column: its
                    # referral share is the score's construction, not a sign of fit.
                    result.findings.append(
                        f"{top['tier']} customers: {pct(top['referred_share'])} came by referral "
                        f"(n={int(top['customers']):,}), but the score gives points for the "
                        f"{column} that referrals are read from, so this says nothing of "
                        "product-market fit."
                    )
                else:
                    circular = ""
                    if scored_by & set(CHANNEL_ATTRIBUTES):
                        circular = (
                            " The score itself gives points for how an account came to us, so "
                            "part of this is by construction."
                        )
                    result.findings.append(
                        f"Among {top['tier']} customers {pct(top['referred_share'])} came by "
                        f"referral (95% CI {pct(top['referred_ci_low'])}–"
                        f"{pct(top['referred_ci_high'])}, n={int(top['customers']):,}): "
                        f"{where}.{circular}"
                    )
        if "nps_n" in by_tier.columns and by_tier["nps_n"].sum() > 0:
            parts = [
                f"{r.tier} {r.nps_mean:.1f} (n={r.nps_n:,})"
                for r in by_tier.itertuples()
                if r.nps_n
            ]
            result.findings.append(
                "Mean NPS of customers by fit-score tier: " + ", ".join(parts) + "."
            )
    if "nps_mean" in customers.columns and "referred" in customers.columns:
        nps = pd.to_numeric(customers["nps_mean"], errors="coerce")
        referred = customers["referred"].fillna(False).astype(bool)
        a, b = nps[referred].dropna(), nps[~referred].dropna()
        if len(a) >= 10 and len(b) >= 10:
            test = sps.mannwhitneyu(a, b, alternative="two-sided")
            result.findings.append(
                f"Referred customers give a mean NPS of {a.mean():.1f} (n={len(a):,}) against "
                f"{b.mean():.1f} for the others (n={len(b):,}; Mann-Whitney p = "
                f"{fmt_p(test.pvalue)}); a common benchmark is 9+ from referral customers."
            )
    if "nps_mean" not in customers.columns or customers["nps_mean"].isna().all():
        result.caveats.append("Not enough evidence for NPS by tier: the data has no NPS answers.")
    if not result.findings:
        result.findings.append(
            "The product-market-fit indicators cannot be computed: the data has no referral source "
            "and no NPS answers."
        )
    result.tables["by_tier"] = by_tier
    result.params["json"] = {
        "referral_share": plain_records(result.summary),
        "threshold": PMF_REFERRAL_SHARE,
        "verdict": verdict,
        "by_tier": plain_records(by_tier),
    }
    return result


def market_sizing(
    blueprint: Blueprint, prospects: pd.DataFrame, *, label: str = "prospect list"
) -> Result:
    """TAM / SAM / SOM of a list of companies, as in the seeds.

    Every company on the list is the total addressable market (TAM); the exclude rules are
    the filters, and the companies no exclude rule removes are the serviceable market (SAM);
    the fit-score tiers are the signals that prioritise it, and the SAM's top tier is the
    serviceable obtainable market (SOM). Companies meeting every defining include rule are
    counted too. Money is the median value of won deals per tier on the holdout.

    Returns
    -------
    Result
        ``summary``: one row per market (``market``, ``definition``, ``accounts``,
        ``share_of_tam``, ``value``); ``tables['by_tier']``: per tier the accounts in the SAM,
        excluded, in the ICP, and the tier's holdout rate and median value.
    """
    from icp_research.scoring.model import rule_columns, rule_hits, score_leads

    spec = _scoring_spec(blueprint)
    result = Result(title=f"Market sizing: {label}")
    n = len(prospects)
    if n == 0:
        result.findings.append(
            f"There is nothing to size: the {label} is empty. Give a list of companies (the "
            "prospects parameter) to size the market."
        )
        return result
    excluded = (
        rule_hits(prospects, spec, kinds=("exclude",)).any(axis=1).to_numpy()
        if blueprint.exclude
        else np.zeros(n, bool)
    )
    in_icp = rule_columns(prospects, spec)["in_icp"].to_numpy()
    first_tier = None
    tiers = None
    median_value: dict = {}
    rate: dict = {}
    if blueprint.scorecard is not None:
        scored = score_leads(spec, prospects)
        tiers = scored["tier"].astype(str).to_numpy()
        first_tier = blueprint.scorecard.tiers[0][0]
        if blueprint.validation is not None:
            for row in blueprint.validation.summary.to_dict("records"):
                median_value[row["tier"]] = row.get("value_median", np.nan)
                rate[row["tier"]] = row["rate"]

    def value(mask):
        if tiers is None or not median_value:
            return np.nan
        total = 0.0
        for tier, median in median_value.items():
            if np.isfinite(median):
                total += float(((tiers == tier) & mask).sum()) * median
        return total

    sam = ~excluded
    som = sam & (tiers == first_tier) if tiers is not None else np.zeros(n, bool)
    everyone = np.ones(n, bool)
    rows = [
        ("TAM", f"every company on the {label}", everyone),
        ("SAM", "no exclude rule applies (the filters)", sam),
    ]
    if tiers is not None:
        rows.append(("SOM", f"in the SAM and in {first_tier} (the signals)", som))
    if blueprint.drawn:
        rows.append(("ICP", "every defining include rule and no exclude rule", in_icp))
    result.summary = pd.DataFrame(
        [
            {
                "market": market,
                "definition": definition,
                "accounts": int(mask.sum()),
                "share_of_tam": mask.sum() / n,
                "value": value(mask),
            }
            for market, definition, mask in rows
        ]
    )
    if tiers is not None:
        by_tier = []
        for tier, _ in blueprint.scorecard.tiers:
            member = tiers == tier
            by_tier.append(
                {
                    "tier": tier,
                    "accounts": int(member.sum()),
                    "in_sam": int((member & sam).sum()),
                    "excluded": int((member & excluded).sum()),
                    "in_icp": int((member & in_icp).sum()),
                    "holdout_rate": rate.get(tier, np.nan),
                    "median_value_won": median_value.get(tier, np.nan),
                }
            )
        result.tables["by_tier"] = pd.DataFrame(by_tier)
    if not blueprint.drawn and not blueprint.exclude and tiers is None:
        # No rule and no score: every company "passes the filters" because there are none.
        result.findings.append(
            f"{n:,} companies are on the {label}; with no ICP, no exclude rule and no fit "
            "score there is nothing to size them by (the whole list is the total market)."
        )
    else:
        result.findings.append(
            f"Of {n:,} companies on the {label}, {int(sam.sum()):,} ({pct(sam.mean())}) pass "
            f"the filters (SAM)"
            + (
                f" and {int(som.sum()):,} ({pct(som.mean())}) of those are {first_tier} (SOM)."
                if tiers is not None
                else "; there is no fit score to prioritise them."
            )
        )
    if blueprint.drawn:
        result.findings.append(
            f"{int(in_icp.sum()):,} ({pct(in_icp.mean())}) meet the ICP's every defining rule."
        )
    if median_value:
        result.caveats.append(
            "Value is the number of companies times the median won deal of their tier on the "
            "holdout: an order of magnitude if every company bought once, not a forecast."
        )
    return result


def pmf_table(result: Result) -> pd.DataFrame:
    """Display table of :func:`pmf_indicators` by tier: customers, referral share and NPS, each
    with its interval."""
    table = result.tables.get("by_tier", pd.DataFrame())
    if table is None or table.empty:
        return pd.DataFrame()
    rows = []
    for row in table.to_dict("records"):
        out = {"tier": row["tier"], "customers": row["customers"]}
        if "referred_share" in row:
            out["came by referral"] = rate_ci_text(
                row["referred_share"], row["referred_ci_low"], row["referred_ci_high"]
            )
        if "nps_mean" in row:
            mean = row["nps_mean"]
            out["NPS answers"] = row.get("nps_n", 0)
            out["mean NPS (95% CI)"] = (
                f"{mean:.1f} ({row['nps_ci_low']:.1f}–{row['nps_ci_high']:.1f})"
                if np.isfinite(mean) and np.isfinite(row["nps_ci_low"])
                else ("–" if not np.isfinite(mean) else f"{mean:.1f}")
            )
            if "promoters" in row:
                out["promoters (9-10)"] = pct(row["promoters"])
        rows.append(out)
    return pd.DataFrame(rows)


def sizing_table(result: Result) -> pd.DataFrame:
    """Display table of :func:`market_sizing`: market, definition, accounts, share, value."""
    summary = result.summary
    if summary is None or summary.empty:
        return pd.DataFrame()
    table = pd.DataFrame(
        {
            "market": summary["market"],
            "definition": summary["definition"],
            "accounts": summary["accounts"],
            "share of TAM": [pct(v) for v in summary["share_of_tam"]],
        }
    )
    values = pd.to_numeric(summary["value"], errors="coerce")
    if values.notna().any():  # without a fit score there are no tiers to value
        table["value at the tier's median won deal"] = [fmt_money(v) for v in values]
    return table


def sizing_tiers_table(result: Result) -> pd.DataFrame:
    """Display table of :func:`market_sizing` per tier."""
    table = result.tables.get("by_tier")
    if table is None or table.empty:
        return pd.DataFrame()
    return pd.DataFrame(
        {
            "tier": table["tier"],
            "accounts": table["accounts"],
            "in the SAM": table["in_sam"],
            "excluded": table["excluded"],
            "in the ICP": table["in_icp"],
            "rate on the holdout": [pct(v) for v in table["holdout_rate"]],
            "median won deal": [fmt_money(v) for v in table["median_value_won"]],
        }
    )


def crm_prospects_label(study: Study) -> str:
    """What :func:`crm_prospects` are, in words for the market sizing's title: the CRM's
    prospects when there are deals; with billing alone, accounts that never paid (sign-ups,
    lapsed trials), which no salesperson has met."""
    if study.has("opportunities"):
        return "prospects already in the CRM"
    return "accounts in the data that never paid (sign-ups, lapsed trials)"


def crm_prospects(study: Study) -> pd.DataFrame:
    """The accounts in the data that are not customers (yet): the prospects already in the
    CRM, for :func:`market_sizing` when no prospect list is given."""
    facts = study.facts
    return facts[~facts["is_customer"].fillna(False).astype(bool)].reset_index(drop=True)
