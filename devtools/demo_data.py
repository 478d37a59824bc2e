"""The bundled demo dataset: a fictional B2B SaaS company's exports with a documented planted truth.

"Lumen Metrics" sells a revenue-analytics product to other companies. The demo holds what its
CRM, billing system, product database and survey tool would export, simulated from the rules
below, so that every analysis of the kit can be checked against a known answer. The exports ship
in ``icp_research/data/datasets/demo/`` (source column names, the quirks of real exports, and an
``icp.toml`` mapping them to the canonical model); :func:`generate_demo` returns the same data as
canonical tables. Regenerate the shipped files with ``python -m devtools.demo_data``.

Size and period
---------------
3,000 accounts created from September 2023 to September 2026 and about 13,000 opportunities
created over 11 quarters (2024-01-01 .. 2026-09-30, the default as-of date; deals still in
progress then are open), half new business and half expansion; subscription lines (one per won
deal), churn events with reasons and feedback, monthly usage (3 metrics), NPS responses,
free-text feedback (churn, loss and call notes), survey answers and deal roles. Nothing happens
after the as-of date.

How the company works
---------------------
A prospect's first deal follows soon after its account is created. A lost prospect is worked
again with probability 0.9 after 10 + Exp(40) days, until it is won or the as-of date comes.
The won deal starts the subscription (ARR = the deal amount). Customers get expansion
opportunities (a Poisson process starting 60 days in) and churn at a constant hazard; churn ends
every subscription line of the account. All probabilities are functions of the attributes below
plus an account random effect, never of the calendar.

Planted truth (all numbers are in :data:`PLANTED_TRUTH`)
--------------------------------------------------------
**Account attributes.** industry (SaaS, FinTech, Healthcare, Retail, Manufacturing, Education,
Media, Logistics; 4% missing), employees (lognormal, median 200, 5 .. 50,000), annual_revenue
(employees x revenue per employee, so correlated with size), region and a country of that
region, founded_year, created_at, crm (Salesforce, HubSpot, Pipedrive, or the literal value
``"None"``: the company has no CRM, a meaningful value; 5% truly missing; small companies more
often have none), uses_sso (Yes / No, more often Yes in large companies), cloud, referral_source
(Referral, Inbound, Outbound, Partner, Event), website_platform and fiscal_year_end.

**The planted ICP** is ``industry in {SaaS, FinTech} and 100 <= employees < 1000 and crm in
{HubSpot, Salesforce}`` (about 11% of accounts; :func:`is_planted_icp`). Each of the three
conditions also matters on its own:

* Win: logit P(won) = -2.6 + 1.0 [SaaS/FinTech] + 0.7 [100-999 employees]
  + 0.6 [HubSpot/Salesforce] - 0.6 [Education] + referral effect (Referral +0.7, Partner +0.3,
  Outbound -0.3) + 0.5 [economic buyer involved] + 0.6 [champion from RevOps / Sales Ops]
  + 0.8 [expansion deal] + u, where u ~ N(0, 0.8^2) is shared by all deals of an account, so
  deals cluster by account. :func:`true_win_logit`, :func:`true_win_probability`.
* Churn: a hazard of 2.5% a month times 0.6 per ICP condition met, 2.3 below 50 employees and
  1.8 for crm "None" (:func:`true_churn_hazard_ratio`). The extra hazard of small accounts is
  recorded as the reasons "Price" / "No internal owner", that of crm "None" as "Missing
  integration" (split by log hazard ratio when both apply); the rest as budget cuts,
  competitor, product fit, onboarding, price or acquisition.
* Expansion: ICP customers get 6.5 expansion opportunities a year, each worth a median 6.6% of
  their ARR; other customers 4.5 a year worth 2.5%: about +30% ARR a year versus +5%.
* Contract value (ACV) rises only moderately with size (about $6k below 100 employees, $24k for
  100-999, $30k from 1,000; +35% for SaaS / FinTech; lognormal noise), so that the best
  customers (top 20% of retained customers by current ARR) are mostly planted-ICP accounts grown
  by expansion, not the largest companies.
* NPS is 1.6 points higher and usage adoption higher (75% vs 50% of seats active) for the ICP;
  new-business sales cycles are 30% shorter for the ICP and longer for larger companies.

**Anti-patterns.** Fewer than 50 employees: churn 2.3x faster and more price losses. crm "None":
1.8x churn and "No decision" 2.5x as likely among loss reasons (1.5x when no economic buyer was
involved). Education: lower win rate. Referral-sourced accounts win more, and happy ICP
customers refer their peers (a product-market-fit signal: about a quarter of customers were
referred).

**No effect at all.** region, country, cloud, founded_year, website_platform, fiscal_year_end
and the deal owner are drawn independently of everything else. uses_sso and annual_revenue are
correlated with company size but have no direct effect: any association is confounding.

**Voice of the customer.** Churn feedback follows the churn reason: crm "None" accounts could
not connect the tool to their CRM, small accounts talk about price and having no owner.
"No decision" loss notes mention no budget owner or a stalled security review. Accounts with a
RevOps team (70% of the ICP, 20% of other accounts from 100 employees, 5% below) have call notes
about a dedicated RevOps owner, answer team_owner = "RevOps" in the survey and bring a RevOps /
Sales Ops champion to 75% of their deals (15% otherwise). Wording varies in case, punctuation
and prefixes, and about 6% of the themed notes are in German, Spanish or Japanese. About a third
of customers answered the survey (why_bought, problem_solved, success_metric, buying_process,
integrations_used, team_owner); why_bought and success_metric lean differently for the ICP,
buying_process follows size, integrations_used follows crm, problem_solved is noise. Deal roles
list 1-6 people per deal, more for larger companies; an economic buyer is involved in half the
deals and a champion in 85%. No person names or e-mails are kept.

What the analyses should find (seed 7)
--------------------------------------
New-business win rate 52% for the planted ICP against 22% for the rest; about 8 churns per 100
customer-years in the ICP against 25 (55 below 50 employees); 59% of the best customers are
planted ICP against 11% of the other retained customers; 22% of customers were referred. Win
rates are for new-business deals: expansion deals exist only for customers.
"""

from __future__ import annotations

import argparse
import math
import unicodedata
from pathlib import Path

import numpy as np
import pandas as pd

from icp_research.data.demo import DEMO_DIR
from icp_research.data.schema import DATE_COLUMNS

# load_demo() belongs here: "load DEMO_CONFIG through the real loader" (icp_research.data.loading),
# so the demo exercises exactly the code path a user's own exports take.

START = pd.Timestamp("2024-01-01")
AS_OF = pd.Timestamp("2026-09-30")
HORIZON_DAYS = (AS_OF - START).days  # last day (inclusive) on which anything may happen
N_ACCOUNTS = 3000
DAYS_PER_MONTH = 365.25 / 12
_DAY_ZERO = np.datetime64("2024-01-01", "ns")

INDUSTRIES = (
    "SaaS",
    "FinTech",
    "Healthcare",
    "Retail",
    "Manufacturing",
    "Education",
    "Media",
    "Logistics",
)
ICP_INDUSTRIES = ("SaaS", "FinTech")
ICP_CRMS = ("HubSpot", "Salesforce")
ICP_EMPLOYEES = (100, 1000)  # lower bound inclusive, upper bound exclusive
REVOPS_DEPARTMENTS = ("Revenue Operations", "Sales Operations")

PLANTED_TRUTH: dict = {
    "as_of": "2026-09-30",
    "period": ("2024-01-01", "2026-09-30"),
    "n_accounts": N_ACCOUNTS,
    "planted_icp": {
        "rule": "industry in {SaaS, FinTech} and 100 <= employees < 1000 "
        "and crm in {HubSpot, Salesforce}",
        "industry": list(ICP_INDUSTRIES),
        "employees": list(ICP_EMPLOYEES),
        "crm": list(ICP_CRMS),
    },
    "win_logit": {
        # logit P(won) = intercept + sum of the effects that apply + u_account
        "intercept": -2.6,
        "industry_saas_fintech": 1.0,
        "employees_100_999": 0.7,
        "crm_hubspot_salesforce": 0.6,
        "industry_education": -0.6,
        "referral_source": {"Referral": 0.7, "Partner": 0.3, "Outbound": -0.3},
        "economic_buyer_involved": 0.5,
        "champion_revops_or_sales_ops": 0.6,
        "expansion_deal": 0.8,
        "account_effect_sd": 0.8,
    },
    "deal_roles": {
        "p_economic_buyer": 0.5,
        "p_champion": 0.85,
        "p_champion_revops_if_revops_team": 0.75,
        "p_champion_revops_otherwise": 0.15,
        "people_per_deal": (1, 6),
        "stakeholders": "1 + Poisson(0.4 + 0.5 * log10(employees / 10)), grows with size",
    },
    "revops_team": {
        # latent trait: the account has a RevOps / Sales Ops team that owns the tool
        "p_if_planted_icp": 0.7,
        "p_if_100_plus_employees": 0.2,
        "p_otherwise": 0.05,
    },
    "churn": {
        "base_monthly_hazard": 0.025,
        "hazard_ratio_per_icp_condition": 0.6,
        "hazard_ratio_employees_under_50": 2.3,
        "hazard_ratio_crm_none": 1.8,
        "reasons_employees_under_50": ["Price", "No internal owner"],
        "reason_crm_none": "Missing integration",
        "base_reasons": {
            "Budget cuts": 0.22,
            "Switched to competitor": 0.22,
            "Product fit": 0.18,
            "Poor onboarding": 0.14,
            "Price": 0.12,
            "Company acquired": 0.12,
        },
    },
    "new_business": {
        # a lost prospect is worked again later with this probability, after 10 + Exp(40) days
        "p_retry_after_loss": 0.9,
        "retry_gap_days": (10, 40),
    },
    "acv": {
        "employees_under_100": 6000,
        "employees_100_999": 24000,
        "employees_1000_plus": 30000,
        "industry_saas_fintech_multiplier": 1.35,
        "lognormal_sd": 0.3,
    },
    "expansion": {
        "opportunities_per_year": {"planted_icp": 6.5, "rest": 4.5},
        "median_share_of_arr": {"planted_icp": 0.066, "rest": 0.025},
        "first_after_days": 60,
    },
    "loss_reasons": {
        "base": {
            "No decision": 0.28,
            "Chose competitor": 0.25,
            "Price": 0.22,
            "Missing feature": 0.13,
            "Timing": 0.12,
        },
        "no_decision_multiplier_crm_none": 2.5,
        "no_decision_multiplier_no_economic_buyer": 1.5,
        "price_multiplier_employees_under_50": 1.5,
    },
    "sales_cycle_days": {
        "median_new_business": {"<50": 30, "50-199": 55, "200-999": 75, "1000+": 120},
        "planted_icp_multiplier": 0.7,
        "lost_multiplier": 1.25,
        "no_decision_multiplier": 1.4,
        "median_expansion": 30,
    },
    "nps": {"mean": 7.0, "planted_icp": 1.6, "employees_under_50": -0.8, "crm_none": -0.8},
    "usage": {
        "metrics": ["active_users", "reports_created", "crm_syncs"],
        "adoption": {"planted_icp": 0.75, "employees_under_50": 0.45, "rest": 0.5},
    },
    "referral_share_of_accounts": {"planted_icp": 0.28, "rest": 0.16},
    # share of the customers asked (60-300 days in) who answer: about a third of all customers
    "survey_response_rate": 0.5,
    "no_effect": [
        "region",
        "country",
        "cloud",
        "founded_year",
        "website_platform",
        "fiscal_year_end",
        "owner",
    ],
    "confounded_no_direct_effect": ["uses_sso", "annual_revenue"],
    "best_customers": "top 20% of customers active at the as-of date by current ARR",
}

_WIN = PLANTED_TRUTH["win_logit"]
_ROLES = PLANTED_TRUTH["deal_roles"]
_REVOPS = PLANTED_TRUTH["revops_team"]
_CHURN = PLANTED_TRUTH["churn"]


# --------------------------------------------------------------------------------------------
# The truth as functions of the attributes
# --------------------------------------------------------------------------------------------


def _require(frame: pd.DataFrame, columns: list[str], what: str) -> None:
    missing = [c for c in columns if c not in frame.columns]
    if missing:
        raise ValueError(
            f"{what} needs the account attribute columns {missing}; "
            "merge the accounts table onto the frame first."
        )


def _icp_conditions(frame: pd.DataFrame) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """The three planted-ICP conditions as boolean arrays (missing values never qualify)."""
    _require(frame, ["industry", "employees", "crm"], "The planted ICP")
    employees = pd.to_numeric(frame["employees"], errors="coerce").to_numpy(dtype=float)
    industry_fit = frame["industry"].isin(ICP_INDUSTRIES).to_numpy()
    with np.errstate(invalid="ignore"):
        size_fit = (employees >= ICP_EMPLOYEES[0]) & (employees < ICP_EMPLOYEES[1])
    crm_fit = frame["crm"].isin(ICP_CRMS).to_numpy()
    return industry_fit, size_fit, crm_fit


def is_planted_icp(accounts: pd.DataFrame) -> pd.Series:
    """Whether each row meets the planted ICP rule.

    Parameters
    ----------
    accounts : DataFrame
        Needs ``industry``, ``employees`` and ``crm`` (accounts, or deals merged with them).

    Returns
    -------
    Series of bool, aligned with ``accounts``.
    """
    industry_fit, size_fit, crm_fit = _icp_conditions(accounts)
    return pd.Series(industry_fit & size_fit & crm_fit, index=accounts.index, name="planted_icp")


def _employees(frame: pd.DataFrame) -> np.ndarray:
    return pd.to_numeric(frame["employees"], errors="coerce").to_numpy(dtype=float)


def _p_revops_team(frame: pd.DataFrame) -> np.ndarray:
    employees = _employees(frame)
    icp = is_planted_icp(frame).to_numpy()
    with np.errstate(invalid="ignore"):
        large_enough = employees >= 100
    return np.where(
        icp,
        _REVOPS["p_if_planted_icp"],
        np.where(large_enough, _REVOPS["p_if_100_plus_employees"], _REVOPS["p_otherwise"]),
    )


def true_win_logit(frame: pd.DataFrame) -> pd.Series:
    """The planted win log-odds of a deal from the account's attributes alone.

    The log-odds of a deal with no economic buyer, no RevOps champion and an average account
    (random effect u = 0): intercept + industry, size, CRM, Education and referral effects, plus
    the expansion shift where a ``type`` column says ``expansion``. Deal roles and the account
    random effect come on top (see :func:`true_win_probability`).

    Parameters
    ----------
    frame : DataFrame
        Accounts, or opportunities merged with their account's attributes. Needs ``industry``,
        ``employees``, ``crm`` and ``referral_source``; ``type`` is optional.

    Returns
    -------
    Series of float (log-odds), aligned with ``frame``.
    """
    _require(frame, ["industry", "employees", "crm", "referral_source"], "true_win_logit")
    industry_fit, size_fit, crm_fit = _icp_conditions(frame)
    logit = (
        _WIN["intercept"]
        + _WIN["industry_saas_fintech"] * industry_fit
        + _WIN["employees_100_999"] * size_fit
        + _WIN["crm_hubspot_salesforce"] * crm_fit
        + _WIN["industry_education"] * (frame["industry"] == "Education").to_numpy()
    )
    referral = frame["referral_source"].map(_WIN["referral_source"]).fillna(0.0)
    logit = logit + referral.to_numpy(dtype=float)
    if "type" in frame.columns:
        logit = logit + _WIN["expansion_deal"] * (frame["type"] == "expansion").to_numpy()
    return pd.Series(logit, index=frame.index, name="true_win_logit")


def _expected_sigmoid(logit: np.ndarray, sd: float, nodes: int = 40) -> np.ndarray:
    """E[sigmoid(logit + u)] for u ~ N(0, sd^2), by Gauss-Hermite quadrature."""
    x, w = np.polynomial.hermite.hermgauss(nodes)
    shifted = np.asarray(logit, dtype=float)[:, None] + math.sqrt(2.0) * sd * x[None, :]
    return (w[None, :] / (1.0 + np.exp(-shifted))).sum(axis=1) / math.sqrt(math.pi)


def deal_role_flags(deal_roles: pd.DataFrame) -> pd.DataFrame:
    """Per opportunity: economic buyer involved, champion from RevOps / Sales Ops, people count.

    Returns
    -------
    DataFrame indexed by opportunity_id with columns ``economic_buyer`` (bool),
    ``revops_champion`` (bool) and ``stakeholders`` (int).
    """
    roles = deal_roles.assign(
        economic_buyer=deal_roles["role"].eq("Economic Buyer"),
        revops_champion=deal_roles["role"].eq("Champion")
        & deal_roles["department"].isin(REVOPS_DEPARTMENTS),
    )
    grouped = roles.groupby("opportunity_id")
    return pd.DataFrame(
        {
            "economic_buyer": grouped["economic_buyer"].any(),
            "revops_champion": grouped["revops_champion"].any(),
            "stakeholders": grouped.size(),
        }
    )


def true_win_probability(
    opportunities: pd.DataFrame, deal_roles: pd.DataFrame | None = None
) -> pd.Series:
    """The planted probability that each deal is won, averaged over the account random effect.

    Without ``deal_roles`` it is the best prediction from account attributes alone (the roles
    are averaged over their planted distribution): the oracle any attribute-based score is
    measured against. With ``deal_roles`` the deal's own economic-buyer and RevOps-champion
    flags are used.

    The account effect is averaged over all accounts, but the deals in the data are not drawn
    evenly from them: prospects that keep losing are worked again (low effects are
    over-represented among new-business deals) and expansions come from customers (high
    effects). Observed win rates therefore run a few points below these probabilities for new
    business and above them for expansions; rankings (AUC) are unaffected.

    Parameters
    ----------
    opportunities : DataFrame
        Deals merged with their account's ``industry``, ``employees``, ``crm`` and
        ``referral_source``; ``type`` (new / expansion) optional, ``opportunity_id`` needed
        with ``deal_roles``.
    deal_roles : DataFrame, optional
        The canonical deal_roles table.

    Returns
    -------
    Series of probabilities in [0, 1], aligned with ``opportunities``.
    """
    logit = true_win_logit(opportunities).to_numpy()
    sd = _WIN["account_effect_sd"]
    eb_effect = _WIN["economic_buyer_involved"]
    champion_effect = _WIN["champion_revops_or_sales_ops"]
    if deal_roles is not None:
        flags = deal_role_flags(deal_roles).reindex(opportunities["opportunity_id"])
        # Deals without recorded roles had neither.
        eb = flags["economic_buyer"].eq(True).to_numpy()
        champion = flags["revops_champion"].eq(True).to_numpy()
        probability = _expected_sigmoid(logit + eb_effect * eb + champion_effect * champion, sd)
    else:
        p_team = _p_revops_team(opportunities)
        p_champion = _ROLES["p_champion"] * (
            p_team * _ROLES["p_champion_revops_if_revops_team"]
            + (1 - p_team) * _ROLES["p_champion_revops_otherwise"]
        )
        p_eb = _ROLES["p_economic_buyer"]
        probability = np.zeros(len(opportunities))
        for eb in (0, 1):
            for champion in (0, 1):
                weight = (p_eb if eb else 1 - p_eb) * np.where(champion, p_champion, 1 - p_champion)
                shifted = logit + eb_effect * eb + champion_effect * champion
                probability += weight * _expected_sigmoid(shifted, sd)
    return pd.Series(probability, index=opportunities.index, name="true_win_probability")


def true_churn_hazard_ratio(accounts: pd.DataFrame) -> pd.Series:
    """The planted churn hazard ratio of each account versus the baseline customer.

    0.6 per planted-ICP condition met, times 2.3 below 50 employees, times 1.8 for crm "None".
    Multiply by ``PLANTED_TRUTH["churn"]["base_monthly_hazard"]`` for the monthly hazard.

    Returns
    -------
    Series of float (hazard ratio, 1.0 = baseline), aligned with ``accounts``.
    """
    industry_fit, size_fit, crm_fit = _icp_conditions(accounts)
    conditions = industry_fit.astype(int) + size_fit + crm_fit
    employees = _employees(accounts)
    with np.errstate(invalid="ignore"):
        small = employees < 50
    ratio = (
        _CHURN["hazard_ratio_per_icp_condition"] ** conditions
        * np.where(small, _CHURN["hazard_ratio_employees_under_50"], 1.0)
        * np.where(accounts["crm"] == "None", _CHURN["hazard_ratio_crm_none"], 1.0)
    )
    return pd.Series(ratio, index=accounts.index, name="true_churn_hazard_ratio")


# --------------------------------------------------------------------------------------------
# Text banks for the voice of the customer
# --------------------------------------------------------------------------------------------

_CHURN_TEXTS = {
    "Missing integration": [
        "No integration with our CRM",
        "couldn't connect it to our CRM, everything had to be copied by hand",
        "Could not connect the tool to our in-house sales database",
        "missing integration with our homegrown CRM",
        "never got it connected to our pipeline spreadsheet - no integration",
        "no native integration for the system we use",
        "Couldn't connect to our deal tracker; too much manual export/import",
    ],
    "Price": [
        "Too expensive for a team our size",
        "price increase at renewal was too much",
        "cost didn't justify the value for us",
        "Pricing. We're a 20-person company",
        "cheaper options out there for small teams",
        "budget too tight - too pricey",
    ],
    "No internal owner": [
        "No internal owner after our ops person left",
        "nobody on our side owned it",
        "no one had time to run the tool",
        "our admin left and no one picked it up",
        "lacked an internal owner to drive adoption",
    ],
    "Budget cuts": [
        "budget freeze this year",
        "all tools cut in the cost-saving round",
        "Budget cuts across the company",
    ],
    "Switched to competitor": [
        "moved to a competitor bundled with our CRM",
        "switched to another vendor",
        "Went with a competitor's suite",
    ],
    "Product fit": [
        "reports didn't fit how we forecast",
        "data quality issues, numbers didn't match our finance system",
        "needed features you don't have",
    ],
    "Poor onboarding": [
        "onboarding took too long",
        "never got fully set up",
        "implementation dragged on for months",
    ],
    "Company acquired": [
        "we were acquired; parent company uses another tool",
        "company was acquired and consolidated tools",
    ],
}

_LOSS_TEXTS = {
    "No decision": [
        "no budget owner",
        "No budget owner identified",
        "stalled in security review",
        "Stuck in security review for 3 months",
        "went dark after the demo",
        "no decision - project deprioritised",
        "never got sign-off, no budget owner",
        "deal stalled: security questionnaire never completed",
    ],
    "Price": [
        "lost on price",
        "budget too small for our quote",
        "Price - went with a cheaper tool",
        "too expensive compared to spreadsheets",
    ],
    "Chose competitor": [
        "chose a competitor",
        "went with the incumbent vendor",
        "lost to a competitor bundled with their CRM",
    ],
    "Missing feature": [
        "needed custom objects we don't support",
        "missing multi-currency forecasting",
        "asked for an on-prem option",
    ],
    "Timing": [
        "not a priority this quarter, revisit next year",
        "timing - reorg going on",
        "bad timing, hiring freeze",
    ],
}

_CALL_TEXTS = {
    "revops_owner": [
        "Dedicated RevOps owner runs the weekly forecast in the tool",
        "dedicated revops owner, very engaged",
        "Their RevOps lead owns the rollout and admin",
        "Sales Ops manager owns the tool and asked about adding the CS team",
        "revops team built the board dashboards themselves",
    ],
    "no_owner": [
        "only a part-time admin, adoption is low",
        "founder runs it himself when he has time",
        "nobody really owns the tool on their side",
    ],
    "integration": [
        "asked again about a connector for their in-house CRM",
        "manual CSV imports every week, painful for them",
    ],
    "generic": [
        "QBR - usage steady, no issues",
        "training session for new reps",
        "asked about API rate limits",
        "walked through the forecast dashboards",
        "renewal conversation, all good",
        "asked for help with SSO setup",
    ],
}

# A few notes are written in the customer's language.
_FOREIGN_TEXTS = {
    "Missing integration": [
        "Keine Integration mit unserem CRM.",
        "No pudimos conectarlo con nuestro CRM",
        "CRMとの連携ができなかった",
    ],
    "Price": [
        "Zu teuer für unser kleines Team",
        "Demasiado caro para un equipo pequeño",
        "価格が高すぎる",
    ],
    "No internal owner": [
        "Niemand bei uns war dafür verantwortlich",
        "Nadie en el equipo era responsable de la herramienta",
        "社内に担当者がいなかった",
    ],
    "No decision": [
        "Keine Entscheidung - kein Budgetverantwortlicher",
        "Se estancó en la revisión de seguridad",
        "予算の決裁者が不在",
    ],
    "revops_owner": [
        "Eigener RevOps-Verantwortlicher treibt die Einführung",
        "Tienen un responsable de RevOps dedicado",
        "専任のRevOps担当者がいる",
    ],
}

_SURVEY_QUESTIONS = (
    "why_bought",
    "problem_solved",
    "success_metric",
    "buying_process",
    "integrations_used",
    "team_owner",
)


def _vary(text: str, rng: np.random.Generator) -> str:
    """Write a note the way people do: case, punctuation and prefixes vary."""
    roll = rng.random()
    if roll < 0.25:
        text = text.lower()
    elif roll < 0.30:
        text = text.upper()
    elif roll < 0.45:
        text = text[0].upper() + text[1:]
    roll = rng.random()
    if roll < 0.2:
        text = text + "."
    elif roll < 0.27:
        text = text + "!"
    elif roll < 0.33:
        text = text + "..."
    roll = rng.random()
    if roll < 0.05:
        text = "Customer: " + text
    elif roll < 0.09:
        text = "per call - " + text
    elif roll < 0.12:
        text = text.replace(" - ", " – ")
    return text


def _pick_text(theme: str, bank: dict, rng: np.random.Generator) -> str:
    if theme in _FOREIGN_TEXTS and rng.random() < 0.06:
        options = _FOREIGN_TEXTS[theme]
        return options[rng.integers(len(options))]
    options = bank[theme]
    return _vary(options[rng.integers(len(options))], rng)


# --------------------------------------------------------------------------------------------
# Accounts
# --------------------------------------------------------------------------------------------

_REGIONS = {
    "North America": (0.45, ["United States"] * 5 + ["Canada"]),
    "EMEA": (
        0.30,
        ["United Kingdom", "Germany", "France", "Netherlands", "Sweden", "Spain", "Ireland"],
    ),
    "APAC": (0.15, ["Australia", "Japan", "Singapore", "India", "New Zealand"]),
    "LATAM": (0.10, ["Brazil", "Mexico", "Argentina", "Chile", "Colombia"]),
}
_LEGAL_SUFFIX = {
    "United States": ["Inc.", "LLC", "Inc.", "Corp."],
    "Canada": ["Inc.", "Ltd."],
    "United Kingdom": ["Ltd", "Ltd", "plc"],
    "Germany": ["GmbH", "AG"],
    "France": ["SAS", "SA"],
    "Netherlands": ["B.V."],
    "Sweden": ["AB"],
    "Spain": ["S.L.", "S.A."],
    "Ireland": ["Ltd"],
    "Australia": ["Pty Ltd"],
    "Japan": ["K.K."],
    "Singapore": ["Pte. Ltd."],
    "India": ["Pvt. Ltd."],
    "New Zealand": ["Ltd"],
    "Brazil": ["Ltda."],
    "Mexico": ["S.A. de C.V."],
    "Argentina": ["S.R.L."],
    "Chile": ["SpA"],
    "Colombia": ["S.A.S."],
}
_NAME_STEMS = [
    "Nor", "Vel", "Quan", "Brigh", "Zen", "Ark", "Lum", "Sol", "Tera", "Nova", "Pax", "Orbi",
    "Cirr", "Hel", "Kin", "Mar", "Ost", "Riv", "Sky", "Tri", "Vanta", "Hal", "Ember", "Fjor",
    "Gala", "Ion", "Jun", "Kest", "Lyra", "Mosa", "Nim", "Opal", "Pel", "Qua", "Ros", "Sable",
]  # fmt: skip
_NAME_ENDINGS = [
    "tex", "ify", "ly", "wave", "grid", "core", "loop", "path", "stack", "sight", "labs",
    "works", "ware", "sys", "hub", "io", "ra", "via", "on", "ent",
]  # fmt: skip
_INDUSTRY_WORDS = {
    "SaaS": ["Software", "Cloud", "Apps"],
    "FinTech": ["Pay", "Capital", "Finance"],
    "Healthcare": ["Health", "Care", "Medical"],
    "Retail": ["Stores", "Goods", "Retail"],
    "Manufacturing": ["Industries", "Manufacturing", "Components"],
    "Education": ["Learning", "Academy", "Education"],
    "Media": ["Media", "Studios", "Publishing"],
    "Logistics": ["Logistics", "Freight", "Shipping"],
}
# Real company names carry accents, ampersands, commas, quotes and other scripts.
_SPECIAL_NAMES = {
    "Germany": ["Müller & Söhne GmbH", "Zürich Re:Think GmbH"],
    "Spain": ["Café Ñandú S.L."],
    "Sweden": ["Åkesson Data AB"],
    "Japan": ["株式会社サクラ", "株式会社みどりテック"],
    "United States": ['The "Blue Door" Company', "Smith, Jones & Partners LLP"],
    "Ireland": ["O'Brien Analytics Ltd"],
}


def _company_names(industry, country, rng: np.random.Generator) -> list[str]:
    names: list[str] = []
    seen: set[str] = set()
    for ind, ctry in zip(industry, country, strict=True):
        special = [n for n in _SPECIAL_NAMES.get(ctry, []) if n not in seen]
        if special and rng.random() < 0.05:
            name = special[rng.integers(len(special))]
        else:
            while True:
                base = (
                    _NAME_STEMS[rng.integers(len(_NAME_STEMS))]
                    + (_NAME_ENDINGS[rng.integers(len(_NAME_ENDINGS))])
                )
                if rng.random() < 0.5:
                    words = _INDUSTRY_WORDS.get(ind, ["Group", "Partners", "Holdings"])
                    base = f"{base} {words[rng.integers(len(words))]}"
                suffixes = _LEGAL_SUFFIX[ctry]
                name = f"{base} {suffixes[rng.integers(len(suffixes))]}"
                if name not in seen:
                    break
        seen.add(name)
        names.append(name)
    return names


def _pick(rng: np.random.Generator, options, weights) -> str:
    """One weighted draw (a fast scalar version of ``rng.choice(options, p=...)``)."""
    threshold = rng.random() * sum(weights)
    cumulative = 0.0
    for option, weight in zip(options, weights, strict=True):
        cumulative += weight
        if threshold < cumulative:
            return option
    return options[-1]


def _choice(rng: np.random.Generator, options, probabilities, size=None):
    p = np.asarray(probabilities, dtype=float)
    return rng.choice(np.asarray(options, dtype=object), size=size, p=p / p.sum())


def _generate_accounts(rng: np.random.Generator, noise_rng: np.random.Generator) -> pd.DataFrame:
    """Accounts and their attributes; the ones without any effect come from ``noise_rng``."""
    n = N_ACCOUNTS
    employees = np.clip(np.round(np.exp(rng.normal(math.log(200), 1.4, n))), 5, 50000)

    industry = _choice(rng, INDUSTRIES, [0.20, 0.12, 0.12, 0.12, 0.14, 0.10, 0.10, 0.10], n)
    industry[rng.random(n) < 0.04] = None

    revenue_per_employee = np.exp(rng.normal(math.log(150_000), 0.45, n))
    annual_revenue = np.round(employees * revenue_per_employee, -3)
    annual_revenue[rng.random(n) < 0.02] = np.nan

    region_names = list(_REGIONS)
    region = _choice(noise_rng, region_names, [_REGIONS[r][0] for r in region_names], n)
    country = np.array(
        [_REGIONS[r][1][noise_rng.integers(len(_REGIONS[r][1]))] for r in region], dtype=object
    )

    founded_year = np.clip(
        2024 - np.round(np.exp(noise_rng.normal(math.log(14), 0.8, n))), 1950, 2023
    )
    founded_year[noise_rng.random(n) < 0.02] = np.nan

    # The company grows: more accounts are created later (density rising linearly to 1.25x).
    first_day, last_day = -120, HORIZON_DAYS - 15
    created_day = np.floor(
        first_day + (last_day - first_day) * 4 * (np.sqrt(1 + 0.5625 * rng.random(n)) - 1)
    ).astype(int)

    crm = np.empty(n, dtype=object)
    crm_options = ["Salesforce", "HubSpot", "Pipedrive", "None"]
    for mask, probabilities in [
        (employees < 50, [0.10, 0.30, 0.20, 0.40]),
        ((employees >= 50) & (employees < 1000), [0.30, 0.33, 0.15, 0.22]),
        (employees >= 1000, [0.55, 0.22, 0.08, 0.15]),
    ]:
        crm[mask] = _choice(rng, crm_options, probabilities, int(mask.sum()))
    crm[rng.random(n) < 0.05] = None

    sso_logit = -2.5 + 0.9 * np.log10(employees)
    uses_sso = np.where(rng.random(n) < 1 / (1 + np.exp(-sso_logit)), "Yes", "No").astype(object)
    cloud = _choice(noise_rng, ["AWS", "Azure", "GCP", "On-prem"], [0.45, 0.25, 0.18, 0.12], n)
    website_platform = _choice(
        noise_rng,
        ["WordPress", "Webflow", "Drupal", "Custom", "Wix"],
        [0.35, 0.2, 0.1, 0.25, 0.1],
        n,
    )
    fiscal_year_end = _choice(
        noise_rng, ["December", "March", "June", "September"], [0.6, 0.2, 0.1, 0.1], n
    )

    accounts = pd.DataFrame(
        {
            "account_id": "",
            "name": _company_names(industry, country, rng),
            "industry": industry,
            "employees": employees.astype(float),
            "annual_revenue": annual_revenue,
            "country": country,
            "region": region,
            "founded_year": founded_year,
            "created_at": START + pd.to_timedelta(created_day, unit="D"),
            "referral_source": None,
            "crm": crm,
            "uses_sso": uses_sso,
            "cloud": cloud,
            "website_platform": website_platform,
            "fiscal_year_end": fiscal_year_end,
        }
    )
    # Happy ICP customers refer their peers, so referred accounts lean towards the ICP.
    icp = is_planted_icp(accounts).to_numpy()
    shares = PLANTED_TRUTH["referral_share_of_accounts"]
    p_referral = np.where(icp, shares["planted_icp"], shares["rest"])
    other_sources = _choice(
        rng, ["Inbound", "Outbound", "Partner", "Event"], [0.38, 0.32, 0.16, 0.14], n
    )
    accounts["referral_source"] = np.where(rng.random(n) < p_referral, "Referral", other_sources)
    accounts["referral_source"] = accounts["referral_source"].astype(object)
    # The CRM numbers accounts in the order they were created.
    accounts = accounts.sort_values("created_at", kind="stable", ignore_index=True)
    accounts["account_id"] = [f"ACC-{i:04d}" for i in range(1, n + 1)]
    return accounts


# --------------------------------------------------------------------------------------------
# Deals, customers, churn
# --------------------------------------------------------------------------------------------

_OTHER_ROLES = ["Technical Approver", "End User", "Influencer", "Procurement", "Legal"]
_OTHER_ROLE_TITLES = {
    "Technical Approver": [
        ("IT Manager", "IT"),
        ("Head of Data", "IT"),
        ("Security Engineer", "IT"),
        ("CTO", "Executive"),
    ],
    "End User": [
        ("Account Executive", "Sales"),
        ("Sales Manager", "Sales"),
        ("Customer Success Manager", "Customer Success"),
        ("Financial Analyst", "Finance"),
    ],
    "Influencer": [
        ("Head of Marketing", "Marketing"),
        ("Marketing Ops Manager", "Marketing"),
        ("Director of Sales", "Sales"),
    ],
    "Procurement": [("Procurement Specialist", "Procurement"), ("Buyer", "Procurement")],
    "Legal": [("Legal Counsel", "Legal"), ("Contracts Manager", "Legal")],
}
_REVOPS_CHAMPIONS = [
    ("Head of Revenue Operations", "Revenue Operations"),
    ("RevOps Manager", "Revenue Operations"),
    ("Director, Revenue Operations", "Revenue Operations"),
    ("Sales Operations Manager", "Sales Operations"),
    ("Sales Ops Analyst", "Sales Operations"),
]
_OTHER_CHAMPIONS = [
    ("Sales Manager", "Sales"),
    ("Director of Sales", "Sales"),
    ("Marketing Ops Manager", "Marketing"),
    ("FP&A Manager", "Finance"),
    ("Operations Manager", "Operations"),
    ("Data Analyst", "IT"),
]


def _economic_buyer(employees: float, rng: np.random.Generator) -> tuple[str, str]:
    if employees < 50:
        options = [("CEO", "Executive"), ("Founder & CEO", "Executive"), ("COO", "Executive")]
    else:
        options = [
            ("CFO", "Finance"),
            ("VP Sales", "Sales"),
            ("Chief Revenue Officer", "Sales"),
            ("COO", "Executive"),
            ("VP Finance", "Finance"),
        ]
    return options[rng.integers(len(options))]


def _draw_roles(employees: float, revops_team: bool, rng: np.random.Generator):
    """People on one deal: returns ([(role, title, department)], economic_buyer, revops_champion)."""
    has_eb = rng.random() < _ROLES["p_economic_buyer"]
    has_champion = rng.random() < _ROLES["p_champion"]
    p_revops = (
        _ROLES["p_champion_revops_if_revops_team"]
        if revops_team
        else _ROLES["p_champion_revops_otherwise"]
    )
    revops_champion = has_champion and rng.random() < p_revops
    stakeholder_rate = max(0.2, 0.4 + 0.5 * math.log10(employees / 10))
    n_people = int(min(6, 1 + rng.poisson(stakeholder_rate)))
    people = []
    if has_eb:
        people.append(("Economic Buyer", *_economic_buyer(employees, rng)))
    if has_champion:
        bank = _REVOPS_CHAMPIONS if revops_champion else _OTHER_CHAMPIONS
        people.append(("Champion", *bank[rng.integers(len(bank))]))
    role_weights = [0.3, 0.3, 0.2, 0.1, 0.1] if employees >= 200 else [1, 1, 1, 1, 1]
    while len(people) < n_people:
        role = _pick(rng, _OTHER_ROLES, role_weights)
        titles = _OTHER_ROLE_TITLES[role]
        people.append((role, *titles[rng.integers(len(titles))]))
    return people, has_eb, revops_champion


def _round_money(value: float, step: int = 120) -> float:
    """Contract values are multiples of $120, so MRR (value / 12) is a whole multiple of $10."""
    return float(max(step, step * round(value / step)))


def _acv(employees: float, industry, rng: np.random.Generator) -> float:
    acv = PLANTED_TRUTH["acv"]
    if employees < 100:
        base = acv["employees_under_100"]
    elif employees < 1000:
        base = acv["employees_100_999"]
    else:
        base = acv["employees_1000_plus"]
    if industry in ICP_INDUSTRIES:
        base *= acv["industry_saas_fintech_multiplier"]
    return _round_money(base * math.exp(rng.normal(0, acv["lognormal_sd"])))


def _loss_reason(expansion, crm, has_eb, employees, rng: np.random.Generator) -> str:
    truth = PLANTED_TRUTH["loss_reasons"]
    weights = dict(truth["base"])
    if expansion:
        weights["Chose competitor"] = 0.0
    if crm == "None":
        weights["No decision"] *= truth["no_decision_multiplier_crm_none"]
    if not has_eb:
        weights["No decision"] *= truth["no_decision_multiplier_no_economic_buyer"]
    if employees < 50:
        weights["Price"] *= truth["price_multiplier_employees_under_50"]
    return _pick(rng, list(weights), list(weights.values()))


def _cycle_days(employees: float, icp: bool, expansion: bool, rng: np.random.Generator) -> float:
    cycle = PLANTED_TRUTH["sales_cycle_days"]
    if expansion:
        median = cycle["median_expansion"]
    else:
        medians = cycle["median_new_business"]
        if employees < 50:
            median = medians["<50"]
        elif employees < 200:
            median = medians["50-199"]
        elif employees < 1000:
            median = medians["200-999"]
        else:
            median = medians["1000+"]
        if icp:
            median *= cycle["planted_icp_multiplier"]
    return median * math.exp(rng.normal(0, 0.5))


def _open_stage(elapsed_share: float) -> str:
    if elapsed_share < 0.35:
        return "Discovery"
    if elapsed_share < 0.7:
        return "Proposal"
    return "Negotiation"


def _sigmoid(x: float) -> float:
    return 1.0 / (1.0 + math.exp(-x))


class _Simulation:
    """Walks every account through its deals, subscription, expansions and churn."""

    def __init__(self, accounts: pd.DataFrame, rng: np.random.Generator):
        self.accounts = accounts
        self.records = accounts.to_dict("records")
        self.created_day = (accounts["created_at"] - START).dt.days.to_numpy()
        self.rng = rng
        self.icp = is_planted_icp(accounts).to_numpy()
        self.base_logit = true_win_logit(accounts).to_numpy()
        self.hazard_ratio = true_churn_hazard_ratio(accounts).to_numpy()
        self.revops_team = rng.random(len(accounts)) < _p_revops_team(accounts)
        self.account_effect = rng.normal(0, _WIN["account_effect_sd"], len(accounts))
        self.deals: list[dict] = []
        self.lines: list[dict] = []  # subscription lines
        self.churns: list[dict] = []
        self.customers: list[dict] = []

    def deal(self, i: int, day: float, expansion: bool, amount: float) -> dict:
        rng = self.rng
        account = self.records[i]
        employees = account["employees"]
        people, has_eb, revops_champion = _draw_roles(employees, self.revops_team[i], rng)
        logit = (
            self.base_logit[i]
            + _WIN["expansion_deal"] * expansion
            + _WIN["economic_buyer_involved"] * has_eb
            + _WIN["champion_revops_or_sales_ops"] * revops_champion
            + self.account_effect[i]
        )
        won = rng.random() < _sigmoid(logit)
        cycle = _cycle_days(employees, self.icp[i], expansion, rng)
        loss_reason = None
        if not won:
            loss_reason = _loss_reason(expansion, account["crm"], has_eb, employees, rng)
            cycle *= PLANTED_TRUTH["sales_cycle_days"]["lost_multiplier"]
            if loss_reason == "No decision":
                cycle *= PLANTED_TRUTH["sales_cycle_days"]["no_decision_multiplier"]
        cycle = min(cycle, 365.0)
        close = math.floor(day + max(cycle, 3.0))
        deal = {
            "account": i,
            "created_day": int(day),
            "amount": amount,
            "expansion": expansion,
            "owner": (
                f"AM {rng.integers(1, 6):02d}" if expansion else f"AE {rng.integers(1, 13):02d}"
            ),
        }
        if close > HORIZON_DAYS:
            deal.update(stage="open", closed_day=None, loss_reason=None)
            deal["source_stage"] = _open_stage((HORIZON_DAYS - day) / max(cycle, 3.0))
        else:
            deal.update(
                stage="won" if won else "lost",
                closed_day=close,
                loss_reason=loss_reason,
                source_stage="Closed Won" if won else "Closed Lost",
            )
        deal["people"] = people
        return deal

    def run(self) -> None:
        rng = self.rng
        expansion_truth = PLANTED_TRUTH["expansion"]
        new_business = PLANTED_TRUTH["new_business"]
        gap_min, gap_mean = new_business["retry_gap_days"]
        for i, account in enumerate(self.records):
            day = max(self.created_day[i] + rng.exponential(20.0), rng.uniform(0, 45))
            start = None
            while day <= HORIZON_DAYS:
                amount = _acv(account["employees"], account["industry"], rng)
                deal = self.deal(i, day, expansion=False, amount=amount)
                self.deals.append(deal)
                if deal["stage"] == "won":
                    start = deal["closed_day"]
                    break
                if deal["stage"] == "open" or rng.random() >= new_business["p_retry_after_loss"]:
                    break
                day = deal["closed_day"] + gap_min + rng.exponential(gap_mean)
            if start is None:
                continue

            arr = deal["amount"]
            initial_plan = "Starter" if arr < 10_000 else "Growth" if arr < 40_000 else "Enterprise"
            self.lines.append({"account": i, "start": start, "arr": arr, "plan": initial_plan})
            monthly_hazard = _CHURN["base_monthly_hazard"] * self.hazard_ratio[i]
            churn_day = start + rng.exponential(DAYS_PER_MONTH / monthly_hazard)
            # A subscription lasts at least a day.
            churn_day = max(start + 1, math.floor(churn_day)) if churn_day <= HORIZON_DAYS else None
            end = churn_day if churn_day is not None else HORIZON_DAYS + 1

            group = "planted_icp" if self.icp[i] else "rest"
            rate = expansion_truth["opportunities_per_year"][group] / 365.25
            share = expansion_truth["median_share_of_arr"][group]
            day = start + expansion_truth["first_after_days"] + rng.exponential(1 / rate)
            won_expansions: list[tuple[int, float]] = []
            while day < end:
                current_arr = arr + sum(a for closed, a in won_expansions if closed <= day)
                amount = _round_money(current_arr * share * math.exp(rng.normal(0, 0.4)))
                deal = self.deal(i, day, expansion=True, amount=amount)
                # An expansion still running when the customer leaves is dropped, not lost:
                # expansion outcomes stay those of the planted win logit.
                still_open = deal["closed_day"] is None
                if (churn_day is None) if still_open else deal["closed_day"] < end:
                    self.deals.append(deal)
                    if deal["stage"] == "won":
                        won_expansions.append((deal["closed_day"], amount))
                        self.lines.append(
                            {
                                "account": i,
                                "start": deal["closed_day"],
                                "arr": amount,
                                "plan": "Add-on",
                            }
                        )
                day += rng.exponential(1 / rate)

            customer = {"account": i, "start": start, "churn_day": churn_day}
            self.customers.append(customer)
            if churn_day is not None:
                self.churns.append(
                    {
                        "account": i,
                        "churn_day": churn_day,
                        "reason": self._churn_reason(i),
                    }
                )

    def _churn_reason(self, i: int) -> str:
        """The reason of a churn: an anti-pattern's own reason with the share of the hazard it
        adds (split between them by log hazard ratio when both apply), else a base reason."""
        rng = self.rng
        account = self.records[i]
        log_ratios = {}
        if account["employees"] < 50:
            log_ratios["small"] = math.log(_CHURN["hazard_ratio_employees_under_50"])
        if account["crm"] == "None":
            log_ratios["crm_none"] = math.log(_CHURN["hazard_ratio_crm_none"])
        if log_ratios:
            excess_share = 1 - math.exp(-sum(log_ratios.values()))
            if rng.random() < excess_share:
                cause = _pick(rng, list(log_ratios), list(log_ratios.values()))
                if cause == "crm_none":
                    return _CHURN["reason_crm_none"]
                reasons = _CHURN["reasons_employees_under_50"]
                return reasons[rng.integers(len(reasons))]
        base = _CHURN["base_reasons"]
        return _pick(rng, list(base), list(base.values()))


def _day(days) -> pd.Series:
    return START + pd.to_timedelta(pd.Series(days, dtype=float), unit="D")


def _build_tables(
    accounts: pd.DataFrame, sim: _Simulation, rng: np.random.Generator
) -> dict[str, pd.DataFrame]:
    ids = accounts["account_id"].to_numpy()

    # Opportunities get ids in the order they were created, like a CRM's auto-number.
    order = sorted(range(len(sim.deals)), key=lambda k: (sim.deals[k]["created_day"], k))
    deal_ids = {k: f"OPP-{n:05d}" for n, k in enumerate(order, start=1)}
    deals = [sim.deals[k] for k in order]
    opportunities = pd.DataFrame(
        {
            "opportunity_id": [deal_ids[k] for k in order],
            "account_id": [ids[d["account"]] for d in deals],
            "stage": [d["stage"] for d in deals],
            "created_at": _day([d["created_day"] for d in deals]),
            "closed_at": _day(
                [np.nan if d["closed_day"] is None else d["closed_day"] for d in deals]
            ),
            "amount": [d["amount"] for d in deals],
            "loss_reason": [d["loss_reason"] for d in deals],
            "type": ["expansion" if d["expansion"] else "new" for d in deals],
            "owner": [d["owner"] for d in deals],
            "source": [
                "Customer Success"
                if d["expansion"]
                else accounts["referral_source"].iat[d["account"]]
                for d in deals
            ],
        }
    )
    opportunities["source_stage"] = [d["source_stage"] for d in deals]
    deal_roles = pd.DataFrame(
        [(deal_ids[k], *person) for k in order for person in sim.deals[k]["people"]],
        columns=["opportunity_id", "role", "title", "department"],
    )

    churn_by_account = {c["account"]: c["churn_day"] for c in sim.churns}
    lines = sorted(sim.lines, key=lambda line: (line["account"], line["start"]))
    subscriptions = pd.DataFrame(
        {
            "account_id": [ids[line["account"]] for line in lines],
            "start_date": _day([line["start"] for line in lines]),
            "end_date": _day([churn_by_account.get(line["account"], np.nan) for line in lines]),
            "arr": [line["arr"] for line in lines],
            "plan": [line["plan"] for line in lines],
            # About $600 a seat a year.
            "seats": [float(max(1, round(line["arr"] / 600))) for line in lines],
        }
    )

    churn_texts = []
    for churn in sim.churns:
        text = None
        if rng.random() < 0.75:
            text = _pick_text(churn["reason"], _CHURN_TEXTS, rng)
        churn_texts.append(text)
    churn_events = pd.DataFrame(
        {
            "account_id": [ids[c["account"]] for c in sim.churns],
            "churned_at": _day([c["churn_day"] for c in sim.churns]),
            "reason": [c["reason"] for c in sim.churns],
            "feedback": churn_texts,
        }
    )
    churn_events = churn_events.sort_values(["churned_at", "account_id"], ignore_index=True)

    usage, nps, survey, call_notes = _customer_signals(accounts, sim, subscriptions, rng)

    loss_notes = []
    lost = opportunities[opportunities["stage"] == "lost"]
    for account_id, reason, closed_at, opportunity_id in zip(
        lost["account_id"],
        lost["loss_reason"],
        lost["closed_at"].to_numpy(),
        lost["opportunity_id"],
        strict=True,
    ):
        if rng.random() < 0.45:
            text = _pick_text(reason, _LOSS_TEXTS, rng)
            loss_notes.append((account_id, text, closed_at, "loss", opportunity_id))
    feedback = pd.DataFrame(
        [
            (row.account_id, row.feedback, row.churned_at, "churn", None)
            for row in churn_events.itertuples(index=False)
            if isinstance(row.feedback, str)
        ]
        + loss_notes
        + call_notes,
        columns=["account_id", "text", "date", "source", "opportunity_id"],
    )
    feedback = feedback.sort_values(["date", "account_id", "source"], ignore_index=True)
    feedback["date"] = pd.to_datetime(feedback["date"])

    # Reps skip optional fields now and then.
    n_deals = len(opportunities)
    lost_mask = (opportunities["stage"] == "lost").to_numpy()
    opportunities.loc[lost_mask & (rng.random(n_deals) < 0.05), "loss_reason"] = None
    opportunities.loc[rng.random(n_deals) < 0.01, "owner"] = None
    opportunities.loc[rng.random(n_deals) < 0.02, "source"] = None

    return {
        "accounts": accounts,
        "opportunities": opportunities,
        "subscriptions": subscriptions,
        "churn_events": churn_events,
        "usage": usage,
        "nps": nps,
        "feedback": feedback,
        "survey": survey,
        "deal_roles": deal_roles,
    }


def _survey_answer(question: str, account, icp: bool, revops_team: bool, rng) -> str:
    employees = account["employees"]
    if question == "why_bought":
        options = [
            "Pipeline visibility",
            "Forecast accuracy",
            "Replace spreadsheets",
            "Board reporting",
            "Consolidate tools",
        ]
        weights = [0.35, 0.35, 0.1, 0.1, 0.1] if icp else [0.2, 0.2, 0.25, 0.15, 0.2]
    elif question == "problem_solved":
        options = [
            "Manual reporting",
            "Inaccurate forecasts",
            "Data scattered across tools",
            "No single source of truth",
        ]
        weights = [1, 1, 1, 1]
    elif question == "success_metric":
        options = [
            "Net revenue retention",
            "Forecast accuracy",
            "Win rate",
            "Time saved",
            "Pipeline coverage",
        ]
        weights = [0.3, 0.3, 0.2, 0.1, 0.1] if icp else [0.1, 0.2, 0.15, 0.4, 0.15]
    elif question == "buying_process":
        options = [
            "Founder decided alone",
            "Team trial then purchase",
            "Formal evaluation",
            "Security review and procurement",
        ]
        if employees < 100:
            weights = [0.5, 0.4, 0.1, 0.0]
        elif employees < 1000:
            weights = [0.1, 0.45, 0.35, 0.1]
        else:
            weights = [0.0, 0.15, 0.35, 0.5]
    elif question == "integrations_used":
        crm = account["crm"]
        if rng.random() < 0.1:
            return "Data warehouse"
        if crm == "None":
            return "Spreadsheets only"
        if isinstance(crm, str):
            return crm
        options, weights = ["Salesforce", "HubSpot", "Spreadsheets only"], [1, 1, 1]
    else:  # team_owner
        if revops_team and rng.random() < 0.85:
            return "RevOps"
        options = [
            "Sales leadership",
            "Finance",
            "Marketing ops",
            "Founder / CEO",
            "Nobody in particular",
        ]
        small = employees < 50
        weights = [0.2, 0.0, 0.0, 0.45, 0.35] if small else [0.45, 0.2, 0.15, 0.05, 0.15]
    return _pick(rng, options, weights)


def _customer_signals(accounts, sim: _Simulation, subscriptions, rng):
    """Usage, NPS, survey answers and call notes of every customer while it is a customer."""
    ids = accounts["account_id"].to_numpy()
    usage_truth = PLANTED_TRUTH["usage"]["adoption"]
    nps_truth = PLANTED_TRUTH["nps"]
    month_starts = pd.date_range(START, AS_OF, freq="MS")
    month_days = (month_starts - START).days.to_numpy()
    line_start = (subscriptions["start_date"] - START).dt.days.to_numpy()
    line_seats = subscriptions["seats"].to_numpy()
    lines_of: dict[str, list[int]] = {}
    for k, account_id in enumerate(subscriptions["account_id"]):
        lines_of.setdefault(account_id, []).append(k)

    usage_account, usage_month, usage_values = [], [], []
    nps_rows, survey_rows, call_notes = [], [], []
    for customer in sim.customers:
        i = customer["account"]
        account = sim.records[i]
        icp = bool(sim.icp[i])
        start, churn_day = customer["start"], customer["churn_day"]
        end = churn_day if churn_day is not None else HORIZON_DAYS
        small = account["employees"] < 50

        # Monthly usage, from the first month to the last (partial) month as a customer.
        months = np.arange(
            np.searchsorted(month_days, start, side="right") - 1,
            np.searchsorted(month_days, end, side="right"),
        )
        lines = lines_of[ids[i]]
        starts, seats_of_line = line_start[lines], line_seats[lines]
        # Seats of the lines started by mid-month (or by the start, in the first month).
        cutoff = np.maximum(month_days[months] + 14, start)
        seats = (starts[None, :] <= cutoff[:, None]).astype(float) @ seats_of_line
        mean_adoption = (
            usage_truth["planted_icp"]
            if icp
            else usage_truth["employees_under_50"]
            if small
            else usage_truth["rest"]
        )
        adoption = rng.beta(10 * mean_adoption, 10 * (1 - mean_adoption))
        ramp = np.minimum(1.0, 0.6 + 0.2 * np.arange(len(months)))
        if churn_day is not None:
            # Usage fades in the last three months before a customer leaves.
            fade = np.ones(len(months))
            fade[-3:] = [0.8, 0.6, 0.4][-min(3, len(months)) :]
            ramp = ramp * fade
        active_users = rng.binomial(seats.astype(int), np.clip(adoption * ramp, 0, 1))
        reports = rng.poisson(active_users * (4.0 if icp else 2.2))
        has_crm = account["crm"] in ("Salesforce", "HubSpot", "Pipedrive")
        syncs = rng.poisson(active_users * 3.0) if has_crm else np.zeros(len(months), int)
        usage_account.append(np.full(len(months), i))
        usage_month.append(months)
        usage_values.append(np.column_stack([active_users, reports, syncs]))

        # NPS survey every six months from the third month; about 45% answer.
        day = start + 90
        while day <= end:
            if rng.random() < 0.45:
                latent = (
                    nps_truth["mean"]
                    + nps_truth["planted_icp"] * icp
                    + nps_truth["employees_under_50"] * small
                    + nps_truth["crm_none"] * (account["crm"] == "None")
                    + rng.normal(0, 1.8)
                )
                nps_rows.append((ids[i], day, float(np.clip(round(latent), 0, 10))))
            day += 182

        # One questionnaire 60-300 days in; half of those asked answer (a third of customers).
        answered_day = math.floor(start + rng.uniform(60, 300))
        if rng.random() < PLANTED_TRUTH["survey_response_rate"] and answered_day <= end:
            for question in _SURVEY_QUESTIONS:
                if rng.random() < 0.05:
                    continue  # skipped question
                answer = _survey_answer(question, account, icp, bool(sim.revops_team[i]), rng)
                survey_rows.append((ids[i], question, answer, answered_day))

        # Call notes from customer success.
        for _ in range(rng.poisson(1.0 + 0.8 * icp)):
            day = math.floor(rng.uniform(start, end + 1))
            if day > end:
                continue
            if sim.revops_team[i] and rng.random() < 0.6:
                theme = "revops_owner"
            elif small and rng.random() < 0.35:
                theme = "no_owner"
            elif account["crm"] == "None" and rng.random() < 0.35:
                theme = "integration"
            else:
                theme = "generic"
            text = _pick_text(theme, _CALL_TEXTS, rng)
            call_notes.append(
                (ids[i], text, _DAY_ZERO + np.timedelta64(day, "D"), "call note", None)
            )

    metrics = PLANTED_TRUTH["usage"]["metrics"]
    account_index = np.repeat(np.concatenate(usage_account), len(metrics))
    usage = pd.DataFrame(
        {
            "account_id": ids[account_index],
            "date": month_starts[np.repeat(np.concatenate(usage_month), len(metrics))],
            "metric": np.tile(np.array(metrics, dtype=object), len(account_index) // len(metrics)),
            "value": np.concatenate(usage_values).ravel().astype(float),
        }
    )
    usage = usage.sort_values(["account_id", "date", "metric"], ignore_index=True)
    nps = pd.DataFrame(nps_rows, columns=["account_id", "date", "score"])
    nps["date"] = _day(nps["date"]).to_numpy()
    nps = nps.sort_values(["date", "account_id"], ignore_index=True)
    survey = pd.DataFrame(survey_rows, columns=["account_id", "question", "answer", "date"])
    survey["date"] = _day(survey["date"]).to_numpy()
    return usage, nps, survey, call_notes


def _simulate(seed: int) -> dict[str, pd.DataFrame]:
    """The canonical tables plus the CRM's own stage name of each deal (``source_stage``)."""
    rng = np.random.default_rng(seed)
    # Attributes without effect get their own stream: independent of everything simulated.
    accounts = _generate_accounts(rng, noise_rng=np.random.default_rng([seed, 1]))
    sim = _Simulation(accounts, rng)
    sim.run()
    return _normalise(_build_tables(accounts, sim, rng))


def generate_demo(seed: int = 7) -> dict[str, pd.DataFrame]:
    """Simulate the demo company and return its canonical tables.

    Parameters
    ----------
    seed : int
        Seed of the random generator; the same seed gives identical tables. The shipped exports
        are seed 7.

    Returns
    -------
    dict of DataFrame
        ``accounts`` (3,000 rows), ``opportunities`` (~12,800), ``subscriptions``,
        ``churn_events``, ``usage`` (monthly, long format), ``nps``, ``feedback``, ``survey`` and
        ``deal_roles``, with canonical column names and types: ids as text, dates as
        ``datetime64[ns]``, money in dollars as float, stage in won / lost / open, type in
        new / expansion. Missing values are NaN / NaT; crm ``"None"`` is a value, not a missing
        one. uses_sso is the text ``"Yes"`` / ``"No"``. See :data:`PLANTED_TRUTH`.
    """
    tables = _simulate(seed)
    tables["opportunities"] = tables["opportunities"].drop(columns="source_stage")
    return tables


def _normalise(tables: dict[str, pd.DataFrame]) -> dict[str, pd.DataFrame]:
    """Canonical dtypes: object text with NaN for missing, datetime64[ns] dates, float numbers."""
    date_columns = DATE_COLUMNS
    number_columns = {
        "accounts": ["employees", "annual_revenue", "founded_year"],
        "opportunities": ["amount"],
        "subscriptions": ["arr", "seats"],
        "usage": ["value"],
        "nps": ["score"],
    }
    out = {}
    for name, frame in tables.items():
        frame = frame.copy()
        for column in frame.columns:
            if column in date_columns[name]:
                frame[column] = pd.to_datetime(frame[column]).astype("datetime64[ns]")
            elif column in number_columns.get(name, []):
                frame[column] = frame[column].astype(float)
            else:
                frame[column] = frame[column].astype(object).where(frame[column].notna(), np.nan)
        out[name] = frame.reset_index(drop=True)
    return out


# --------------------------------------------------------------------------------------------
# Exports: what the company's systems hand over, quirks included
# --------------------------------------------------------------------------------------------

DEMO_CONFIG_TEXT = """\
# Lumen Metrics (demo): how icp-research reads the exports in this folder.
# Simulated by devtools/demo_data.py in the source repository (the planted truth is
# documented there). Copy this file as a starting point for your own exports.

[project]
name = "Lumen Metrics (demo)"
as_of = "{as_of}"

[tables.accounts]
path = "accounts.csv"
date_format = "%m/%d/%Y"

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
# "Primary Contact Email" is personal data: it is left unmapped and dropped at load.

[tables.opportunities]
path = "opportunities.csv"

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
"Negotiation" = "open"
"Proposal" = "open"
"Discovery" = "open"

[tables.opportunities.values.type]
"New Business" = "new"
"Expansion" = "expansion"

[tables.opportunities.values.loss_reason]
"No Decision / Non-Responsive" = "No decision"

[tables.subscriptions]
path = "subscriptions.csv"

[tables.subscriptions.columns]
account_id = "Account ID"
start_date = "Start Date"
end_date = "End Date"
mrr = "MRR"
plan = "Plan"
seats = "Seats"

[tables.churn_events]
path = "churn_events.csv"

[tables.churn_events.columns]
account_id = "Account ID"
churned_at = "Churn Date"
reason = "Churn Reason"
feedback = "Feedback"

[tables.usage]
path = "usage.parquet"

[tables.usage.columns]
account_id = "account_id"
date = "month"
metric = "metric"
value = "value"

[tables.nps]
path = "nps.csv"

[tables.nps.columns]
account_id = "Account ID"
date = "Response Date"
score = "Score"

[tables.feedback]
path = "feedback.csv"

[tables.feedback.columns]
account_id = "Account ID"
date = "Date"
source = "Source"
text = "Text"
opportunity_id = "Opportunity ID"

[tables.survey]
path = "survey.xlsx"
sheet = "answers"

[tables.survey.columns]
account_id = "Account ID"
question = "Question"
answer = "Answer"
date = "Submitted At"

[tables.deal_roles]
path = "deal_roles.csv"

[tables.deal_roles.columns]
opportunity_id = "Opportunity ID"
role = "Contact Role"
title = "Title"
department = "Department"

[attributes]
categorical = [
    "industry",
    "region",
    "crm",
    "uses_sso",
    "cloud",
    "referral_source",
    "website_platform",
    "fiscal_year_end",
]
numeric = ["employees", "annual_revenue", "founded_year"]

[analysis]
best_customer_metric = "arr"
best_customer_top_share = 0.2
alpha = 0.05
"""

_FIRST_NAMES = [
    "alex", "sam", "maria", "li", "noah", "emma", "yuki", "omar", "sofia", "lucas", "ana",
    "james", "priya", "chen", "lena", "diego", "fatima", "jonas", "aisha", "mateo",
]  # fmt: skip
_LAST_NAMES = [
    "smith", "garcia", "mueller", "tanaka", "khan", "silva", "brown", "rossi", "nguyen",
    "johansson", "kowalski", "martin", "lopez", "wang", "dubois", "patel", "kim", "novak",
]  # fmt: skip


def _money(values, prefix: str = "") -> list[str]:
    return ["" if pd.isna(v) else f"{prefix}{v:,.2f}" for v in values]


def _dates(values: pd.Series, pattern: str = "%Y-%m-%d") -> pd.Series:
    return values.dt.strftime(pattern).fillna("")


def _whole(values, missing: str = "") -> list[str]:
    return [missing if pd.isna(v) else str(int(v)) for v in values]


def _text(values, rng: np.random.Generator, blanks=("",)) -> list[str]:
    """Text as exported: a missing value is one of ``blanks`` ("", "NULL", "N/A" ...)."""
    return [blanks[rng.integers(len(blanks))] if pd.isna(v) else str(v) for v in values]


def _email_domain(name: str, fallback: str) -> str:
    ascii_name = unicodedata.normalize("NFKD", name).encode("ascii", "ignore").decode()
    words = "".join(c if c.isalnum() else " " for c in ascii_name).lower().split()
    slug = "".join(words[:2])
    return f"{slug or fallback}.example"


def _export_frames(tables: dict[str, pd.DataFrame], seed: int) -> dict[str, pd.DataFrame]:
    """The source-format tables: CRM column names, formatted values, blanks as exported."""
    # A separate stream, so that export formatting never changes the canonical data.
    rng = np.random.default_rng([seed, 2])
    accounts = tables["accounts"]
    emails = []
    for i, name in enumerate(accounts["name"]):
        if rng.random() < 0.12:
            emails.append("")
            continue
        first = _FIRST_NAMES[rng.integers(len(_FIRST_NAMES))]
        last = _LAST_NAMES[rng.integers(len(_LAST_NAMES))]
        emails.append(f"{first}.{last}@{_email_domain(name, f'account{i + 1}')}")
    exports = {
        "accounts": pd.DataFrame(
            {
                "Account ID": accounts["account_id"],
                "Company Name": accounts["name"],
                "Industry": _text(accounts["industry"], rng, blanks=("", "", "N/A")),
                "Employees": _whole(accounts["employees"]),
                "Annual Revenue": _money(accounts["annual_revenue"], prefix="$"),
                "Billing Country": accounts["country"],
                "Region": accounts["region"],
                "Year Founded": _whole(accounts["founded_year"], missing="NULL"),
                "Created Date": _dates(accounts["created_at"], "%m/%d/%Y"),
                "Account Source": accounts["referral_source"],
                # A missing CRM is an empty cell; the word "None" is an answer.
                "CRM": _text(accounts["crm"], rng),
                "Uses SSO": accounts["uses_sso"],
                "Cloud Provider": accounts["cloud"],
                "Website Platform": accounts["website_platform"],
                "Fiscal Year End": accounts["fiscal_year_end"],
                "Primary Contact Email": emails,
            }
        )
    }
    opportunities = tables["opportunities"]
    exported_loss_reason = opportunities["loss_reason"].replace(
        {"No decision": "No Decision / Non-Responsive"}
    )
    exports["opportunities"] = pd.DataFrame(
        {
            "Opportunity ID": opportunities["opportunity_id"],
            "Account ID": opportunities["account_id"],
            "Stage": opportunities["source_stage"],
            "Created Date": _dates(opportunities["created_at"]),
            "Close Date": _dates(opportunities["closed_at"]),
            "Amount": _money(opportunities["amount"]),
            # Empty unless lost; a lost deal without a reason has "", "NULL" or "N/A".
            "Loss Reason": np.where(
                opportunities["stage"] == "lost",
                _text(exported_loss_reason, rng, blanks=("", "NULL", "N/A")),
                "",
            ),
            "Type": opportunities["type"].map({"new": "New Business", "expansion": "Expansion"}),
            "Opportunity Owner": _text(opportunities["owner"], rng, blanks=("NULL",)),
            "Lead Source": _text(opportunities["source"], rng, blanks=("N/A",)),
        }
    )
    subscriptions = tables["subscriptions"]
    exports["subscriptions"] = pd.DataFrame(
        {
            "Account ID": subscriptions["account_id"],
            "Start Date": _dates(subscriptions["start_date"]),
            "End Date": _dates(subscriptions["end_date"]),
            "MRR": _money(subscriptions["arr"] / 12),
            "Plan": subscriptions["plan"],
            "Seats": _whole(subscriptions["seats"]),
        }
    )
    churn_events = tables["churn_events"]
    exports["churn_events"] = pd.DataFrame(
        {
            "Account ID": churn_events["account_id"],
            "Churn Date": _dates(churn_events["churned_at"]),
            "Churn Reason": churn_events["reason"],
            "Feedback": _text(churn_events["feedback"], rng),
        }
    )
    nps = tables["nps"]
    exports["nps"] = pd.DataFrame(
        {
            "Account ID": nps["account_id"],
            "Response Date": _dates(nps["date"]),
            "Score": _whole(nps["score"]),
        }
    )
    feedback = tables["feedback"]
    exports["feedback"] = pd.DataFrame(
        {
            "Account ID": feedback["account_id"],
            "Date": _dates(feedback["date"]),
            "Source": feedback["source"],
            "Text": feedback["text"],
            "Opportunity ID": _text(feedback["opportunity_id"], rng),
        }
    )
    deal_roles = tables["deal_roles"]
    exports["deal_roles"] = deal_roles.rename(
        columns={
            "opportunity_id": "Opportunity ID",
            "role": "Contact Role",
            "title": "Title",
            "department": "Department",
        }
    )
    usage = tables["usage"]
    exports["usage"] = usage.rename(columns={"date": "month"})
    survey = tables["survey"]
    exports["survey"] = survey.rename(
        columns={
            "account_id": "Account ID",
            "question": "Question",
            "answer": "Answer",
            "date": "Submitted At",
        }
    )
    return exports


def _write_parquet(frame: pd.DataFrame, path: Path) -> None:
    """Write Parquet with pyarrow, or with DuckDB where pyarrow cannot be imported."""
    try:
        import pyarrow  # noqa: F401
    except ImportError:
        try:
            import duckdb
        except ImportError as error:
            raise ImportError(
                "Writing usage.parquet needs pyarrow (or duckdb): pip install pyarrow"
            ) from error
        connection = duckdb.connect()
        try:
            connection.register("usage_frame", frame)
            columns = ", ".join(
                f'CAST("{c}" AS DATE) AS "{c}"' if c == "month" else f'"{c}"' for c in frame
            )
            target = str(path).replace("'", "''")
            connection.execute(
                f"COPY (SELECT {columns} FROM usage_frame) TO '{target}' "
                "(FORMAT PARQUET, COMPRESSION ZSTD)"
            )
        finally:
            connection.close()
        return
    frame = frame.assign(month=frame["month"].dt.date)
    frame.to_parquet(path, index=False, compression="zstd")


def _write_excel(frame: pd.DataFrame, path: Path, sheet: str) -> None:
    """One sheet, header row first; dates as real Excel dates (openpyxl's fast write-only mode)."""
    from openpyxl import Workbook
    from openpyxl.cell import WriteOnlyCell

    workbook = Workbook(write_only=True)
    worksheet = workbook.create_sheet(sheet)
    worksheet.append(list(frame.columns))
    date_columns = [pd.api.types.is_datetime64_any_dtype(frame[c]) for c in frame.columns]
    for row in frame.itertuples(index=False):
        cells = []
        for value, is_date in zip(row, date_columns, strict=True):
            if is_date:
                cell = WriteOnlyCell(worksheet, value=value.to_pydatetime())
                cell.number_format = "yyyy-mm-dd"
                cells.append(cell)
            else:
                cells.append(value)
        worksheet.append(cells)
    workbook.save(path)


def simulate_demo_exports(directory: str | Path, seed: int = 7) -> Path:
    """Write the demo company's exports and their ``icp.toml`` into ``directory``.

    The files are what the company's systems would hand over: ``accounts.csv`` (UTF-8 with a
    byte-order mark, MM/DD/YYYY dates, currency strings, a personal e-mail column),
    ``opportunities.csv`` (CRM stage names, amounts with thousands separators, blanks written
    as empty, ``NULL`` or ``N/A``), ``subscriptions.csv`` (MRR; empty end date = active),
    ``churn_events.csv``, ``nps.csv``, ``feedback.csv``, ``deal_roles.csv``, ``usage.parquet``
    (long format, monthly) and ``survey.xlsx`` (sheet ``answers``). Loading them through the
    config gives :func:`generate_demo` ``(seed)``.

    Parameters
    ----------
    directory : str or Path
        Folder to write to; created if needed. Existing files of the same names are replaced.
    seed : int
        Seed of the simulation (the shipped files are seed 7).

    Returns
    -------
    Path of the written ``icp.toml``.
    """
    directory = Path(directory)
    directory.mkdir(parents=True, exist_ok=True)
    exports = _export_frames(_simulate(seed), seed)
    for name in (
        "accounts",
        "opportunities",
        "subscriptions",
        "churn_events",
        "nps",
        "feedback",
        "deal_roles",
    ):
        encoding = "utf-8-sig" if name == "accounts" else "utf-8"
        exports[name].to_csv(
            directory / f"{name}.csv", index=False, encoding=encoding, lineterminator="\n"
        )
    _write_parquet(exports["usage"], directory / "usage.parquet")
    _write_excel(exports["survey"], directory / "survey.xlsx", sheet="answers")
    config = directory / "icp.toml"
    config.write_text(DEMO_CONFIG_TEXT.format(as_of=AS_OF.date().isoformat()), encoding="utf-8")
    return config


def main(argv: list[str] | None = None) -> int:
    """``python -m devtools.demo_data [DIRECTORY] [--seed N]``: (re)write the demo exports."""
    parser = argparse.ArgumentParser(
        prog="python -m devtools.demo_data",
        description="Write the demo company's exports and icp.toml (default: the shipped folder).",
    )
    parser.add_argument("directory", nargs="?", default=str(DEMO_DIR), help="output folder")
    parser.add_argument("--seed", type=int, default=7, help="simulation seed (default 7)")
    args = parser.parse_args(argv)
    config = simulate_demo_exports(args.directory, seed=args.seed)
    print(f"wrote {config.parent}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
