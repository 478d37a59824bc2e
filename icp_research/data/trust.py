"""Can we trust what this data means? Checks of meaning, after the checks of format.

Loading checks that the exports parse; these checks ask whether the columns mean what the
analyses assume, and say plainly when they do not:

- **Outcome-like attributes** -- an account column that records the outcome (``churn_flag``,
  ``status``, ``is_active``, ``won``) or that tells an outcome apart almost perfectly (won deals,
  churned customers, best customers) is not a trait: it is taken out of the ICP predictors.
- **Contract terms** -- seats, plan, tier, MRR, contract value (declared in ``[attributes]
  contract``, named like one, or a number that goes with ARR: Spearman >= 0.4) make up the value
  outcome. They stay predictors of winning and retention, but best-customer status (the top
  share by ARR) is not explained by them: they are reported as contract size.
- **Outcomes that do not vary** -- every closed deal won (an order export), none lost, no
  churn at all, every deal closed the day it was created: the rates and cycles that need
  variation are "not measurable", not 100% (100%-100%).
- **Implausible money and time** -- NRR above ``[analysis] max_plausible_nrr``, ARR per seat
  or per employee far from the rest, overlapping subscriptions (ARR sums them), dates after
  the as-of date.

``[attributes] keep = [...]`` keeps a column as a trait whatever its name or its association.
Every check is a pure function over canonical tables or account / deal facts and returns
:class:`~icp_research.data.loading.Problem` warnings: one line naming the file, the column, how
many rows (with examples) and the fix.
"""

from __future__ import annotations

import datetime as dt
import functools
import re
from dataclasses import dataclass, field

import numpy as np
import pandas as pd

from icp_research.data.config import Config
from icp_research.data.facts import with_traits
from icp_research.data.loading import AttributeSpec, Dataset, Problem, problems_frame
from icp_research.data.schema import DATE_COLUMNS, default_as_of

# Words in a column name that say it records an outcome rather than a trait.
OUTCOME_WORDS = {
    "churn",
    "churned",
    "churning",
    "status",
    "won",
    "lost",
    "closed",
    "active",
    "inactive",
    "cancelled",
    "canceled",
    "cancellation",
    "renewed",
    "outcome",
    "lifecycle",
    "lifecyclestage",
    "statut",
    "estado",
    "stato",
    # Billing states: Stripe's Delinquent, a dunning or past-due flag, a paused account.
    "delinquent",
    "delinquency",
    "dunning",
    "overdue",
    "pastdue",
    "suspended",
    "paused",
    "unpaid",
    # Why a customer left (a "Reason" column beside the cancellation date), filled after it.
    "reason",
    "reasons",
    "grund",
    "kundigungsgrund",  # Kündigungsgrund (column names are read without accents)
    "kuendigungsgrund",
    "motif",
    "motivo",
}
# A number that counts an account's own deals, orders or invoices (HubSpot's "Number of
# Associated Deals", a "deal_count" roll-up): the sales process makes it, renewals and upsells
# add to it, so customers who stayed have more. A record word with a counting word (or a
# plural record word on its own: "Deals", "Won Opportunities") in the name of a number.
RECORD_WORDS = {
    "deal",
    "deals",
    "opportunity",
    "opportunities",
    "opp",
    "opps",
    "order",
    "orders",
    "invoice",
    "invoices",
    "purchase",
    "purchases",
    "renewal",
    "renewals",
    "subscription",
    "subscriptions",
}
COUNT_WORDS = {
    "number",
    "num",
    "nr",
    "no",
    "count",
    "counts",
    "total",
    "associated",
    "anzahl",
    "nombre",
    "numero",
    "número",
    "cantidad",
    "quantidade",
}
PLURAL_RECORDS = {w for w in RECORD_WORDS if w.endswith("s")}
_PLURAL = {"opportunity": "opportunities"}


def _record_count(name: str) -> str | None:
    """The record word of a name that counts an account's deals, orders or invoices, or None."""
    words = name_words(name)
    record = next((w for w in words if w in RECORD_WORDS), None)
    if record is None:
        return None
    if any(w in COUNT_WORDS for w in words) or (record in PLURAL_RECORDS and words[-1] == record):
        return record
    return None


# Values that say where an account stands with the company (a CRM lifecycle stage, a customer
# status), in the languages exports come in: a column made of them records the outcome.
STATUS_VALUES = {
    "customer",
    "customers",
    "prospect",
    "prospects",
    "lead",
    "leads",
    "subscriber",
    "opportunity",
    "marketingqualifiedlead",
    "salesqualifiedlead",
    "mql",
    "sql",
    "evangelist",
    "churned",
    "former",
    "currentcustomer",
    "formercustomer",
    "potentialcustomer",
    "pastcustomer",
    "active",
    "inactive",
    "cancelled",
    "canceled",
    "trial",
    "trialing",
    "paying",
    "won",
    "lost",
    "kunde",
    "kunden",
    "bestandskunde",
    "neukunde",
    "interessent",
    "aktiv",
    "inaktiv",
    "gekündigt",
    "gekuendigt",
    "ehemalig",
    "ehemaliger",
    "client",
    "actif",
    "inactif",
    "résilié",
    "resilie",
    "ancien",
    "prospecto",
    "cliente",
    "activo",
    "inactivo",
    "perdido",
    "ganado",
}
STATUS_SHARE = 0.8  # share of an attribute's filled rows whose values are status words
# A CRM's account type (Salesforce's Type, Zoho's Account Type, HubSpot's company type) mixes
# where an account stands (Customer, Prospect) with what it is (Partner, Reseller, Press): a
# third of its rows in status words is enough to say it records the outcome.
TYPE_NAMES = {
    "type",
    "account_type",
    "company_type",
    "customer_type",
    "organization_type",
    "organisation_type",
    "relationship",
    "relationship_type",
    "kontotyp",
    "accounttyp",
    "firmentyp",
    "type_de_compte",
    "tipo_de_cuenta",
}
TYPE_STATUS_SHARE = 0.3
# Words that name part of the contract (the value outcome), not the company.
CONTRACT_WORDS = {
    "seat",
    "seats",
    "licence",
    "licences",
    "license",
    "licenses",
    "plan",
    "tier",
    "mrr",
    "arr",
    "acv",
    "tcv",
    "contract",
    "billing",
    "billed",
    "commitment",
}
# Words that make a contract-like name a third party's estimate of the company (Attio's and
# Apollo's "Estimated ARR range"), not a term of its contract with you.
ESTIMATE_WORDS = {"estimated", "estimate", "est", "approx", "approximate"}
# Canonical account columns are traits by definition: never called contract terms by their
# association with ARR (bigger companies pay more; that is an ICP finding, not a leak).
FIRMOGRAPHIC = {
    "industry",
    "employees",
    "annual_revenue",
    "country",
    "region",
    "founded_year",
    "referral_source",
}
CONTRACT_SPEARMAN = 0.4  # a number that goes with ARR at least this strongly is contract size
NEAR_PERFECT = 0.95  # balanced accuracy (or AUC) from which an attribute "is" the outcome
# ... and from which a contract term (seats, plan) records the contract the outcome brought
# (current seats, the plan now) rather than one a lead comes with: no trait of a company
# tells won from lost deals or churned from retained customers this well.
CONTRACT_NEAR_PERFECT = 0.8
MIN_ROWS = 30  # rows an association check needs
MIN_EVENTS = 5  # rows of the rarer outcome an association check needs
MAX_ROWS = 200_000  # rows an association check reads (a seeded sample of larger tables)
EXAMPLES = 3  # example rows named in a message
MONEY_RATIO_OUTLIER = 10.0  # ARR per seat / per employee this far from the median (either way)
MONEY_SCALE_APART = (
    30.0  # customers' ARR this many times their won deals (either way): units differ
)
TWELFTH_TOLERANCE = 0.08  # ARR within this of 1/12 (or 12x) of the won deal ...
TWELFTH_SHARE = 0.5  # ... for this share of customers: a month's amount read as a year's

_OUTCOME_PHRASES = {
    "customer": "customers from the other accounts",
    "won": "won deals from lost ones",
    "churned": "churned customers from retained ones",
    "best_customer": "best customers from the other customers",
}


@dataclass
class Screening:
    """What :func:`screen_attributes` decided about the candidate predictors.

    ``spec`` is the candidate set to analyse (outcome-like columns removed, contract terms
    listed in ``spec.contract``); ``outcome_like`` and ``contract`` map a column to why;
    ``problems`` are the warnings saying so.
    """

    spec: AttributeSpec
    outcome_like: dict[str, str] = field(default_factory=dict)
    contract: dict[str, str] = field(default_factory=dict)
    problems: list[Problem] = field(default_factory=list)


def with_outcome_like(screening: Screening, extra: dict[str, str]) -> Screening:
    """``screening`` with the columns of ``extra`` (column -> why) outcome-like too."""
    spec = screening.spec
    extra = {k: v for k, v in extra.items() if k in spec.all and k not in screening.outcome_like}
    if not extra:
        return screening
    screened = AttributeSpec(
        [c for c in spec.categorical if c not in extra],
        [c for c in spec.numeric if c not in extra],
        list(spec.behavioural),
        {**spec.excluded, **{k: f"looks like an outcome: {v}" for k, v in extra.items()}},
        contract={k: v for k, v in spec.contract.items() if k not in extra},
        multi_select=dict(spec.multi_select),
    )
    return Screening(
        screened,
        {**screening.outcome_like, **extra},
        dict(screened.contract),
        list(screening.problems),
    )


def name_words(name: str) -> list[str]:
    """'churnFlag' -> ['churn', 'flag']; 'is_active' -> ['is', 'active']; accents set aside
    ('Responsável' -> ['responsavel'], not ['respons', 'vel'])."""
    import unicodedata

    plain = "".join(
        c for c in unicodedata.normalize("NFKD", str(name)) if not unicodedata.combining(c)
    )
    spaced = re.sub(r"(?<=[a-z0-9])(?=[A-Z])", " ", plain)
    # Letters of any script: a Russian export's "Ответственный" is one word, not none.
    return re.findall(r"[^\W_]+", spaced.lower())


def _word(name: str, words: set[str]) -> str | None:
    return next((w for w in name_words(name) if w in words), None)


#: Column-name words for who on our side looks after an account (a customer success
#: manager, an account owner, a sales rep): assigned by us, often after the sale, and a person,
#: not a trait of the company a lead could be scored on.
OUR_SIDE_WORDS = {
    "csm",
    "owner",
    "salesperson",
    "sdr",
    "bdr",
    "kam",
    "betreuer",
    # Portuguese, Spanish, German, French: the salesperson "responsible" for the account.
    "responsavel",
    "responsable",
    "proprietaire",
    "vendedor",
    # Russian: the employee "responsible" for the account, its manager, curator.
    "ответственныи",
    "менеджер",
    "куратор",
    "vendedora",
    "verantwortlicher",
    "vertriebler",
    "commercial",
}
OUR_SIDE_PHRASES = (
    ("account", "manager"),
    ("success", "manager"),
    ("sales", "rep"),
    ("account", "executive"),
)
#: Column-name words for what is measured on customers after the sale (a satisfaction score,
#: a health score): a lead has none.
AFTER_SALE_WORDS = {"nps", "csat", "health", "healthscore"}
#: Column-name phrases of what a CRM keeps up to date from what happens with an account once
#: it is in the CRM: its own scores (HubSpot Score, a lead or engagement score), visits, form
#: submissions, sales activity, the last contact. Customers have more of it than any lead,
#: because they were worked and they use the product: a consequence of the sale, not a trait.
ACTIVITY_PHRASES = (
    ("hubspot", "score"),
    ("hubspotscore",),
    ("hub", "spot", "score"),
    ("lead", "score"),
    ("leadscore",),
    ("engagement", "score"),
    ("likelihood", "to", "close"),
    ("predictive", "score"),
    ("page", "views"),
    ("pageviews",),
    ("form", "submissions"),
    ("number", "of", "sessions"),
    ("sales", "activities"),
    ("times", "contacted"),
    ("last", "activity"),
    ("last", "contacted"),
    ("last", "engagement"),
    ("last", "seen"),
    ("recent", "deal"),
    ("days", "to", "close"),
    ("email", "opens"),
    ("emails", "opened"),
    ("email", "clicks"),
    # Deal roll-ups kept on the account (Freshsales "Open deals amount", HubSpot "Number of
    # Associated Deals", Salesforce roll-up summaries): they move with every deal.
    ("open", "deals"),
    ("open", "deal"),
    ("won", "deals"),
    ("lost", "deals"),
    ("closed", "deals"),
    ("associated", "deals"),
)


def _activity_phrase(name: str) -> str | None:
    """The phrase of a column name saying the CRM keeps it up to date from the account's
    activity (see :data:`ACTIVITY_PHRASES`), or None."""
    words = name_words(name)
    for phrase in ACTIVITY_PHRASES:
        k = len(phrase)
        if any(tuple(words[i : i + k]) == phrase for i in range(len(words) - k + 1)):
            return " ".join(phrase)
    return None


def _assigned_word(name: str) -> str | None:
    """The word of a column name saying it names who on our side has the account, or None."""
    words = name_words(name)
    found = next((w for w in words if w in OUR_SIDE_WORDS), None)
    if found is None:
        pairs = list(zip(words, words[1:], strict=False))
        found = next((" ".join(p) for p in OUR_SIDE_PHRASES if p in pairs), None)
    return found


def _not_a_trait(name: str, ours: set, sentence: bool = False) -> str:
    """Why a screened-out column is no candidate: what we assign or measure after the sale is
    no trait of the company; the rest look like outcomes. ``sentence``: as the warning says it
    after the column's name."""
    if name in ours:
        return "is not a trait of the company" if sentence else "not a trait of the company"
    return "looks like an outcome, not a trait" if sentence else "looks like an outcome"


def _outcome_word(name: str) -> str | None:
    """An outcome word of a column name, whole ("Lifecycle Stage") or ending a compound word
    ("Kundenstatus", "AccountStatus" written as one word)."""
    word = _word(name, OUTCOME_WORDS)
    if word is None:
        word = next((w for w in name_words(name) if w.endswith("status")), None)
    return word


def _text_counts(series: pd.Series, strip: bool = False) -> pd.Series:
    """Rows per value as text (stripped of surrounding spaces with ``strip``), commonest
    first, blanks left out: counted per distinct value, then per text, so that a million
    accounts holding a handful of values are not each made text."""
    counts = series.value_counts(dropna=True)
    labels = pd.Index(counts.index.astype(str))
    counts = counts.groupby(labels.str.strip() if strip else labels, sort=False).sum()
    return counts[counts > 0].sort_values(ascending=False, kind="stable")


def _status_values(series: pd.Series | None, share: float = STATUS_SHARE) -> list[str]:
    """The values of a label column that say where an account stands ("Customer", "Lead",
    "Gekündigt"), when they are at least two and fill ``share`` of its rows; else []."""
    if series is None or not (
        pd.api.types.is_object_dtype(series)
        or pd.api.types.is_string_dtype(series)
        or isinstance(series.dtype, pd.CategoricalDtype)
    ):
        return []
    counts = _text_counts(series)
    if counts.empty:
        return []
    words = [set(re.findall(r"[^\W\d_]+", str(v).lower())) for v in counts.index]
    is_status = np.array([bool(w & STATUS_VALUES) for w in words])
    if is_status.sum() < 2 or counts[is_status].sum() < share * counts.sum():
        return []
    return [str(v) for v in counts.index[is_status]]


def _keep(config: Config) -> set[str]:
    return set(getattr(config, "keep", None) or [])


def _declared_contract(config: Config) -> list[str]:
    return list(getattr(config, "contract", None) or [])


def _file(config: Config, table: str) -> str:
    tc = config.tables.get(table)
    return tc.display_path if tc is not None else table


def _source(config: Config, table: str, column: str) -> str:
    tc = config.tables.get(table)
    return tc.columns.get(column, column) if tc is not None else column


def _problem(config, table, column, message, fix, n_rows=0) -> Problem:
    return Problem(
        "warning",
        table,
        _file(config, table),
        message,
        fix,
        _source(config, table, column) if column else None,
        [],
        int(n_rows),
    )


def _filled(facts: pd.DataFrame, name: str) -> int:
    """Accounts with a value in ``name`` (the rows a column-level warning concerns)."""
    return int(facts[name].notna().sum()) if name in facts else 0


def _examples(ids, limit: int = EXAMPLES) -> str:
    ids = [str(i) for i in ids if not pd.isna(i)]  # rows without an id are counted, not named
    shown = ", ".join(ids[:limit])
    return shown + (f" and {len(ids) - limit:,} more" if len(ids) > limit else "")


def _verb(n: int, singular: str, plural: str) -> str:
    return singular if n == 1 else plural


def _metric(config: Config) -> str:
    metric = str(config.analysis.get("best_customer_metric", "arr"))
    return "ARR" if metric == "arr" else metric.replace("_", " ")


def _s(n: int, word: str, plural: str | None = None) -> str:
    return f"{n:,} {word if n == 1 else plural or word + 's'}"


# ---------------------------------------------------------------------------------------------
# Attributes: outcome-like columns and contract terms


def _balanced_accuracy(values: pd.Series, y: pd.Series) -> float:
    """How well the levels of ``values`` (missing is a level) tell ``y`` apart: each level
    with at least ``MIN_EVENTS`` rows predicts its majority outcome, rarer levels the overall
    majority; the mean of the true-positive and true-negative rates."""
    codes, _ = pd.factorize(values, use_na_sentinel=False)
    truth = y.to_numpy(dtype=bool)
    rows = np.bincount(codes)
    positives = np.bincount(codes, weights=truth.astype(float), minlength=len(rows))
    majority = truth.mean() > 0.5
    says_yes = np.where(rows >= MIN_EVENTS, positives > rows / 2, majority)
    predicted = says_yes[codes]
    tpr = (predicted & truth).sum() / truth.sum()
    tnr = (~predicted & ~truth).sum() / (~truth).sum()
    return float((tpr + tnr) / 2)


def _auc(values: pd.Series, y: pd.Series) -> float:
    """Area under the ROC curve of a number for ``y`` (0.5: no information), NaN when thin."""
    values = pd.to_numeric(values, errors="coerce").astype(float)
    known = values.notna()
    x, t = values[known], y[known]
    n1, n0 = int(t.sum()), int((~t).sum())
    if n1 < MIN_EVENTS or n0 < MIN_EVENTS:
        return np.nan
    ranks = x.rank(method="average")
    return float((ranks[t].sum() - n1 * (n1 + 1) / 2) / (n1 * n0))


@functools.lru_cache(maxsize=4)
def _sample_rows(n: int) -> np.ndarray:
    """The sorted rows of :func:`_separation`'s sample of ``n`` rows: drawn once per size (every
    attribute of one date is screened on the same rows; a draw from millions takes 0.1 s)."""
    rows = np.sort(np.random.default_rng(0).choice(n, MAX_ROWS, replace=False))
    rows.flags.writeable = False
    return rows


def _separation(values: pd.Series, y: pd.Series, numeric: bool) -> tuple[float, str]:
    """How well ``values`` tell ``y`` apart, from 0.5 (not at all) to 1 (the attribute is the
    outcome), and the measure: balanced accuracy of its levels (missing is a level) or, for a
    number, AUC (either direction)."""
    y = y.astype(bool)
    if len(y) > MAX_ROWS:
        # A near-perfect association shows in a sample; a fixed seed keeps it deterministic.
        rows = _sample_rows(len(y))
        values, y = values.iloc[rows], y.iloc[rows]
    if len(y) < MIN_ROWS or min(y.sum(), (~y).sum()) < MIN_EVENTS:
        return np.nan, ""
    scores = []
    if values.isna().any():
        scores.append(
            (_balanced_accuracy(values.isna(), y), "balanced accuracy of blank vs filled")
        )
    if numeric:
        auc = _auc(values, y)
        if np.isfinite(auc):
            scores.append((max(auc, 1 - auc), "AUC"))
    else:
        scores.append((_balanced_accuracy(values, y), "balanced accuracy"))
    return max(scores) if scores else (np.nan, "")


def _outcome_rows(facts: pd.DataFrame, deals: pd.DataFrame) -> dict[str, tuple]:
    """Each outcome's rows (the attribute frame they come from) and the yes/no column."""
    out = {}
    if len(facts) and "is_customer" in facts:
        # A column that tells the accounts that became customers from the others records the
        # relationship (a lifecycle stage, a status kept up to date), not the company.
        out["customer"] = (facts, facts["is_customer"].fillna(False).astype(bool))
    if deals is not None and len(deals) and {"is_closed", "won"} <= set(deals.columns):
        rows = deals["is_closed"].astype(bool)
        if "is_new_business" in deals:
            rows &= deals["is_new_business"].astype(bool)
        # Deals at companies not in the accounts table have no traits: blank there would say
        # "not in the export", which a customer list beside a pipeline makes "lost".
        rows &= with_traits(deals)
        closed = deals[rows]  # one copy of the rows (every column is a candidate attribute)
        out["won"] = (closed, closed["won"].astype(bool))
    if len(facts) and "is_customer" in facts:
        customers = facts[facts["is_customer"].fillna(False).astype(bool)]
        if "churned" in customers and customers["churned"].notna().any():
            # Churn from subscriptions, churn events or a column.
            known = customers[customers["churned"].notna()]
            out["churned"] = (known, known["churned"].astype(bool))
        known = customers[customers["best_customer"].notna()]
        out["best_customer"] = (known, known["best_customer"].astype(bool))
    return out


def _billing_periods(series: pd.Series | None) -> list[str]:
    """The values of a label column when nearly all of them say how often it bills
    ("Monthly", "Annual", "jährlich"); else []."""
    if series is None:
        return []
    from icp_research.data.loading import INTERVALS_PER_YEAR

    counts = _text_counts(series, strip=True)
    if len(counts) < 2:
        return []
    words = counts.index.str.lower().str.replace(r"^(?:billed|paid|pay)\s+", "", regex=True)
    known = words.isin(list(INTERVALS_PER_YEAR))
    if counts[known].sum() < STATUS_SHARE * counts.sum():
        return []
    return [str(v) for v in counts.index[known]]


def contract_terms(spec: AttributeSpec, facts: pd.DataFrame, config: Config) -> dict[str, str]:
    """Candidate predictors that are part of the contract: column -> why."""
    keep = _keep(config)
    found: dict[str, str] = {}
    for name in _declared_contract(config):
        if name in spec.all and name not in keep:
            found[name] = "declared in [attributes] contract"
    active = facts
    if "arr_current" in facts and "retained" in facts:
        active = facts[facts["retained"].fillna(False).astype(bool) & (facts["arr_current"] > 0)]
    for name in spec.all:
        if name in found or name in keep:
            continue
        word = _word(name, CONTRACT_WORDS)
        if word is not None and _word(name, ESTIMATE_WORDS) is not None:
            word = None  # "Estimated ARR range": an enrichment tool's guess at the company
        if word is not None:
            found[name] = f'named like one: "{word}"'
            continue
        periods = _billing_periods(facts.get(name)) if name not in spec.numeric else []
        if periods:
            shown = ", ".join(f'"{v}"' for v in periods[:3])
            found[name] = f"its values are billing periods: {shown}"
            continue
        if name in FIRMOGRAPHIC or name not in spec.numeric or name not in active:
            continue
        if "arr_current" not in active:
            continue
        pair = pd.DataFrame(
            {
                "x": pd.to_numeric(active[name], errors="coerce"),
                "arr": pd.to_numeric(active["arr_current"], errors="coerce"),
            }
        ).astype(float)
        pair = pair.dropna()
        if len(pair) < MIN_ROWS or pair["x"].nunique() < 3:
            continue
        rho = pair["x"].rank().corr(pair["arr"].rank())
        if np.isfinite(rho) and rho >= CONTRACT_SPEARMAN:
            found[name] = f"goes with ARR: Spearman {rho:.2f} over {len(pair):,} active customers"
    return found


def screen_attributes(
    spec: AttributeSpec, facts: pd.DataFrame, deals: pd.DataFrame | None, config: Config
) -> Screening:
    """Take outcome-like columns out of the candidate predictors and mark contract terms.

    A column is outcome-like when its name has an outcome word (``churn``, ``status``,
    ``won``, ``active`` ... as a whole word) and it is a label or a yes/no column, when it is a
    number that counts the account's own deals, orders or invoices (:data:`RECORD_WORDS`), or
    when it
    tells won from lost deals, churned from retained or best from other customers almost
    perfectly (balanced accuracy or AUC >= 0.95 over at least 30 rows; missing is a level).
    Contract terms are not checked against best-customer status (they make it up: see
    :func:`contract_terms`). ``[attributes] keep`` exempts a column from both.
    """
    keep = _keep(config)
    contract = contract_terms(spec, facts, config)
    outcomes = _outcome_rows(facts, deals)
    share = float(config.analysis.get("best_customer_top_share", 0.2))
    outcome_like: dict[str, str] = {}
    ours: set[str] = set()  # not outcomes either: what we assign or measure after the sale
    for name in spec.all:
        if name in keep:
            continue
        numeric = name in spec.numeric
        series = facts.get(name)
        word = _outcome_word(name)
        few_values = series is None or not numeric or series.nunique(dropna=True) <= 2
        if word is not None and few_values:
            outcome_like[name] = f'named like one: "{word}"'
            continue
        record = _record_count(name) if numeric else None
        if record is not None:
            plural = record if record in PLURAL_RECORDS else _PLURAL.get(record, record + "s")
            outcome_like[name] = (
                f"it counts the account's own {plural}, which the sales process makes: "
                "renewals and upsells add to them"
            )
            continue
        typed = name in TYPE_NAMES
        status = (
            [] if numeric else _status_values(series, TYPE_STATUS_SHARE if typed else STATUS_SHARE)
        )
        if status:
            shown = ", ".join(f'"{v}"' for v in status[:3])
            outcome_like[name] = f"its values say where an account stands: {shown}"
            continue
        for outcome, (rows, y) in outcomes.items():
            if outcome == "best_customer" and name in contract:
                continue
            if name not in rows:
                continue
            score, measure = _separation(rows[name], y, numeric)
            if np.isfinite(score) and score >= NEAR_PERFECT:
                outcome_like[name] = (
                    f"tells {_OUTCOME_PHRASES[outcome]} apart almost perfectly: "
                    f"{measure} {score:.2f} over {len(y):,} rows"
                )
                break
            if name in contract and np.isfinite(score) and score >= CONTRACT_NEAR_PERFECT:
                outcome_like[name] = (
                    f"a contract term that tells {_OUTCOME_PHRASES[outcome]} apart "
                    f"({measure} {score:.2f} over {len(y):,} rows): it records the contract "
                    "the outcome brought (seats or plan now), not one a lead comes with"
                )
                break
        if name in outcome_like:
            continue
        # What the name says when the values did not: who on our side has the account, or
        # what is measured on customers after the sale.
        assigned = _assigned_word(name)
        after = _word(name, AFTER_SALE_WORDS)
        activity = _activity_phrase(name)
        if activity is not None:
            outcome_like[name] = (
                f'named like one: "{activity}": kept up to date by the CRM from what happens '
                "with the account (its score, visits, sales activity), so customers have more "
                "of it than any lead"
            )
            ours.add(name)
        elif assigned is not None:
            outcome_like[name] = (
                f'named like one: "{assigned}": who on our side has the account, assigned by us'
            )
            ours.add(name)
        elif after is not None:
            outcome_like[name] = (
                f'named like one: "{after}": measured on customers after the sale, which a lead '
                "does not have"
            )
            ours.add(name)
    screened = AttributeSpec(
        [c for c in spec.categorical if c not in outcome_like],
        [c for c in spec.numeric if c not in outcome_like],
        list(spec.behavioural),
        {
            **spec.excluded,
            **{k: f"{_not_a_trait(k, ours)}: {v}" for k, v in outcome_like.items()},
        },
        contract={k: v for k, v in contract.items() if k not in outcome_like},
        multi_select=dict(spec.multi_select),
    )
    problems = [
        _problem(
            config,
            "accounts",
            name,
            f"{name} {_not_a_trait(name, ours, sentence=True)} ({why}): it is left out of the "
            "ICP predictors",
            f'if it really is a trait known before the sale, add [attributes] keep = ["{name}"]',
            _filled(facts, name),
        )
        for name, why in outcome_like.items()
    ]
    problems += [
        _problem(
            config,
            "accounts",
            name,
            f"{name} is a contract term, not a trait ({why}): best customers (top "
            f"{share:.0%} by {_metric(config)}) are not explained by it; it is reported as "
            "contract size (it is still tested for winning deals and churn, as a plan at signup "
            "should be)",
            f'if it describes the company rather than its contract, add [attributes] keep = ["{name}"]',
            _filled(facts, name),
        )
        for name, why in screened.contract.items()
    ]
    for name in _declared_contract(config):
        if name not in spec.all and name not in spec.excluded:
            problems.append(
                _problem(
                    config,
                    "accounts",
                    None,
                    f"[attributes] contract names {name}, which is not a candidate attribute",
                    "map it under [tables.accounts.columns] or remove it from [attributes] contract",
                )
            )
    return Screening(screened, outcome_like, screened.contract, problems)


# ---------------------------------------------------------------------------------------------
# Outcomes that do not vary


def outcome_variation(facts: pd.DataFrame, deals: pd.DataFrame | None) -> dict[str, str]:
    """Outcomes this data cannot measure because they never vary: ``won``, ``sales_cycle``,
    ``churn`` -> the reason in words ("every closed deal in this export is won (no lost deals
    recorded)"). Empty when every outcome varies (or is simply absent)."""
    return {name: why for name, (why, _) in _variation(facts, deals).items()}


def _variation(facts: pd.DataFrame, deals: pd.DataFrame | None) -> dict[str, tuple[str, int]]:
    """:func:`outcome_variation` with the rows each reason concerns."""
    found: dict[str, tuple[str, int]] = {}
    if deals is not None and len(deals) and "is_closed" in deals:
        rows = deals["is_closed"].astype(bool)
        if "is_new_business" in deals:
            rows &= deals["is_new_business"].astype(bool)
        # The columns read here, then the rows: not a copy of every deal column.
        closed = deals.loc[rows, [c for c in ("stage", "created_at", "closed_at") if c in deals]]
        won = closed["stage"] == "won"
        if len(closed) and won.all():
            found["won"] = (
                f"every closed deal in this export is won ({_s(len(closed), 'deal')}; "
                "no lost deals recorded)",
                len(closed),
            )
        elif len(closed) and not won.any():
            found["won"] = (
                f"every closed deal in this export is lost ({_s(len(closed), 'deal')}; "
                "no won deals recorded)",
                len(closed),
            )
        if "created_at" in closed and "closed_at" in closed:
            dated = closed[won & closed["created_at"].notna() & closed["closed_at"].notna()]
            same_day = (dated["closed_at"] - dated["created_at"]).dt.days == 0
            if len(dated) >= MIN_EVENTS and same_day.mean() >= 0.95:
                found["sales_cycle"] = (
                    f"{int(same_day.sum()):,} of {len(dated):,} won deals closed the day they "
                    "were created (order lines, not a pipeline)",
                    int(same_day.sum()),
                )
    if (
        len(facts)
        and facts.attrs.get("revenue_basis") == "subscriptions"
        and "churned" in facts
        and facts["is_customer"].fillna(False).astype(bool).any()
    ):
        customers = facts["is_customer"].fillna(False).astype(bool)
        if not facts.loc[customers, "churned"].fillna(False).astype(bool).any():
            found["churn"] = (
                f"no customer has churned ({_s(int(customers.sum()), 'customer')})",
                int(customers.sum()),
            )
    return found


def variation_problems(
    facts: pd.DataFrame, deals: pd.DataFrame | None, config: Config
) -> list[Problem]:
    """:func:`outcome_variation` as warnings."""
    counted = _variation(facts, deals)
    found = {name: why for name, (why, _) in counted.items()}
    problems = []
    if "won" in found:
        problems.append(
            _problem(
                config,
                "opportunities",
                "stage",
                f"win rates are not measurable: {found['won']}",
                "export lost deals too (the CRM's opportunities, not orders or invoices); until "
                "then read the win-rate findings as not measurable",
                counted["won"][1],
            )
        )
    if "sales_cycle" in found:
        problems.append(
            _problem(
                config,
                "opportunities",
                "closed_at",
                f"sales cycles are not measurable: {found['sales_cycle']}",
                "map created_at to the date the deal was opened, not the order date",
                counted["sales_cycle"][1],
            )
        )
    if "churn" in found:
        problems.append(
            _problem(
                config,
                "subscriptions",
                "end_date",
                f"churn is not measurable: {found['churn']}",
                "check that end_date is mapped and that ended subscriptions are in the export",
                counted["churn"][1],
            )
        )
    return problems


# ---------------------------------------------------------------------------------------------
# Implausible money and time


def max_concurrent(subscriptions: pd.DataFrame) -> pd.Series:
    """Per account, the most subscriptions active at once (an end date is exclusive)."""
    subs = subscriptions.dropna(subset=["account_id", "start_date"])
    if subs.empty:
        return pd.Series(dtype=int)
    far = pd.Timestamp.max.normalize()
    end = subs["end_date"].fillna(far) if "end_date" in subs else pd.Series(far, index=subs.index)
    keep = end > subs["start_date"]
    events = pd.DataFrame(
        {
            "account_id": np.concatenate([subs["account_id"][keep], subs["account_id"][keep]]),
            "date": np.concatenate([subs["start_date"][keep], end[keep]]),
            "delta": np.concatenate([np.ones(keep.sum(), int), -np.ones(keep.sum(), int)]),
        }
    ).sort_values(["account_id", "date", "delta"], kind="stable")
    events["active"] = events.groupby("account_id")["delta"].cumsum()
    return events.groupby("account_id")["active"].max()


def _log_outliers(ratio: pd.Series) -> pd.Series:
    """Values at least MONEY_RATIO_OUTLIER times off the median and beyond 4 robust SDs."""
    ratio = pd.to_numeric(ratio, errors="coerce").astype(float)
    logs = np.log10(ratio[(ratio > 0) & np.isfinite(ratio)])
    if len(logs) < MIN_ROWS:
        return pd.Series(False, index=ratio.index)
    centre = logs.median()
    spread = 1.4826 * (logs - centre).abs().median()
    limit = max(np.log10(MONEY_RATIO_OUTLIER), 4 * spread)
    return ((logs - centre).abs() > limit).reindex(ratio.index, fill_value=False)


def _unpaid_problems(subs: pd.DataFrame, config: Config, money: str) -> list[Problem]:
    """Accounts whose subscriptions all have no ARR (free plans, trials) are not customers;
    say how many, and that a billing export which zeroes cancelled subscriptions hides churn."""
    known = subs[subs["account_id"].notna()]
    best = known.groupby("account_id")["arr"].max()
    unpaid = best.index[best.fillna(0) <= 0]
    if not len(unpaid):
        return []
    rows = known[known["account_id"].isin(unpaid)]
    running = rows["end_date"].isna() if "end_date" in rows else pd.Series(True, index=rows.index)
    still = int(rows.loc[running, "account_id"].nunique())
    ended = len(unpaid) - still
    return [
        _problem(
            config,
            "subscriptions",
            money,
            f"{_s(len(unpaid), 'account')} {'has' if len(unpaid) == 1 else 'have'} only "
            f"subscriptions without ARR (free plans or trials: {still:,} still running, "
            f"{ended:,} ended; accounts {_examples(unpaid)}): they are not counted as "
            "customers unless they won a deal",
            "nothing to do for free plans and trials; if they paid, export their MRR or ARR "
            "(a billing export that zeroes a cancelled subscription's MRR hides that customer's "
            "churn: export the MRR it had before it was cancelled)",
            len(rows),
        )
    ]


def _scale_problems(facts: pd.DataFrame, config: Config, money: str) -> list[Problem]:
    """Customers' ARR and their won deals' amounts a unit apart (cents, MRR read as ARR): a new
    deal is worth about a year of the subscription it starts (a month's to a few years')."""
    if facts.attrs.get("revenue_basis") != "subscriptions" or not {
        "arr_current",
        "avg_deal_size",
    } <= set(facts.columns):
        return []
    arr = pd.to_numeric(facts["arr_current"], errors="coerce").astype(float)
    deal = pd.to_numeric(facts["avg_deal_size"], errors="coerce").astype(float)
    both = (arr > 0) & (deal > 0)
    if both.sum() < MIN_ROWS:
        return []
    ratios = arr[both] / deal[both]
    ratio = float(ratios.median())
    # A month's amount read as a year's (or a year's as a month's): most customers' ARR is
    # within a few percent of 1/12 (or 12x) of their won deal, too close to be chance.
    for factor, mapped, says, fix in (
        (1 / 12, "arr", "MRR mapped as arr", "map that column as mrr (ARR = 12 x MRR)"),
        (12.0, "mrr", "a yearly amount mapped as mrr", "map that column as arr"),
    ):
        near = ((ratios / factor) - 1).abs() <= TWELFTH_TOLERANCE
        if money == mapped and near.mean() >= TWELFTH_SHARE:
            return [
                _problem(
                    config,
                    "subscriptions",
                    money,
                    f"customers' ARR is {'1/12' if factor < 1 else '12x'} of their won deal "
                    f"amounts for {int(near.sum()):,} of {int(both.sum()):,} customers with "
                    f"both (within {TWELFTH_TOLERANCE:.0%}; median ARR {arr[both].median():,.0f}"
                    f", won deal {deal[both].median():,.0f}): it looks like {says}, and every "
                    f"ARR figure is off {'12x' if factor < 1 else 'by 12x'}",
                    fix + " if so; if deals are priced per month, nothing to do",
                    int(both.sum()),
                )
            ]
    if 1 / MONEY_SCALE_APART < ratio < MONEY_SCALE_APART:
        return []
    more, less = ("ARR", "won deal amounts") if ratio > 1 else ("won deal amounts", "ARR")
    times = ratio if ratio > 1 else 1 / ratio
    return [
        _problem(
            config,
            "subscriptions",
            money,
            f"customers' {more} {'is' if more == 'ARR' else 'are'} {times:,.0f}x their {less} "
            f"(median over {int(both.sum()):,} customers with both: ARR "
            f"{arr[both].median():,.0f}, won deal {deal[both].median():,.0f}): one of the two "
            "is likely in another unit, and every money figure built on it is off by as much",
            "check the units: amounts in cents (add cents = true under that table), MRR mapped "
            "as arr (map it as mrr), yearly amounts mapped as mrr, or deal amounts that total "
            "several years",
            int(both.sum()),
        )
    ]


def money_problems(tables: dict, facts: pd.DataFrame, config: Config) -> list[Problem]:
    """NRR above the plausible bound, ARR per seat or per employee outliers, overlapping
    subscriptions."""
    problems = []
    bound = float(config.analysis.get("max_plausible_nrr", 3.0))
    subs = tables.get("subscriptions")
    mapped = config.tables["subscriptions"].columns if "subscriptions" in config.tables else {}
    money = (
        "price"
        if "price" in mapped
        else "mrr"
        if "mrr" in mapped and "arr" not in mapped
        else "arr"
    )
    if "nrr" in facts and facts.attrs.get("revenue_basis") == "subscriptions":
        high = facts[facts["nrr"] > bound].sort_values("nrr", ascending=False, kind="stable")
        if len(high):
            top = high.iloc[0]
            others = f"; accounts {_examples(high['account_id'])}" if len(high) > 1 else ""
            problems.append(
                _problem(
                    config,
                    "subscriptions",
                    money,
                    f"{_s(len(high), 'account')} {'has' if len(high) == 1 else 'have'} NRR above "
                    f"{bound:g} (ARR now / ARR a year ago; highest {top['nrr']:.1f} for account "
                    f"{top['account_id']}{others}): NRR totals include "
                    f"{'it' if len(high) == 1 else 'them'}",
                    "check those accounts' subscriptions for a missing end date or a changed "
                    "unit (monthly vs yearly, cents); raise [analysis] max_plausible_nrr if the "
                    "growth is real",
                    len(high),
                )
            )
    problems += _scale_problems(facts, config, money)
    if subs is not None and len(subs) and "arr" in subs:
        problems += _unpaid_problems(subs, config, money)
    if subs is not None and len(subs):
        arr = subs["arr"] if "arr" in subs else subs["mrr"] * 12 if "mrr" in subs else None
        if arr is not None and "seats" in subs:
            seats = pd.to_numeric(subs["seats"], errors="coerce").astype(float)
            per_seat = arr.astype(float) / seats.where(seats > 0)
            odd = _log_outliers(per_seat)
            if odd.any():
                worst = (np.log10(per_seat[odd]) - np.log10(per_seat[per_seat > 0].median())).abs()
                first = worst.idxmax()
                problems.append(
                    _problem(
                        config,
                        "subscriptions",
                        "seats",
                        f"{_s(int(odd.sum()), 'subscription')} {_verb(int(odd.sum()), 'bills', 'bill')} "
                        "far more or less per seat "
                        f"than the rest (ARR per seat {per_seat[first]:,.0f} for account "
                        f"{subs.loc[first, 'account_id']} vs a median of "
                        f"{per_seat[per_seat > 0].median():,.0f}"
                        + (
                            f"; accounts {_examples(subs.loc[odd, 'account_id'].unique())}"
                            if odd.sum() > 1
                            else ""
                        )
                        + f"): ARR counts {'it' if odd.sum() == 1 else 'them'} as it stands",
                        "check the seats and the MRR / ARR of those subscriptions (a total "
                        "contract value, or seats left at 1)",
                        int(odd.sum()),
                    )
                )
        # Free plans and trials beside a paid subscription add nothing to ARR.
        paid = subs if arr is None else subs[arr.astype(float).fillna(0).to_numpy() > 0]
        concurrent = max_concurrent(paid)
        overlapping = concurrent[concurrent >= 2]
        if len(overlapping):
            problems.append(
                _problem(
                    config,
                    "subscriptions",
                    "start_date",
                    f"{_s(len(overlapping), 'account')} {'has' if len(overlapping) == 1 else 'have'} "
                    f"overlapping paid subscriptions (up to {int(overlapping.max())} at once; accounts "
                    f"{_examples(overlapping.sort_values(ascending=False, kind='stable').index)}); ARR sums them",
                    "fine for add-ons and extra products; if a renewal is exported as a new row "
                    "without ending the old one, set the old row's end_date",
                    len(overlapping),
                )
            )
    if {"employees", "arr_current", "retained"} <= set(facts.columns):
        active = facts[facts["retained"].fillna(False).astype(bool) & (facts["arr_current"] > 0)]
        employees = pd.to_numeric(active["employees"], errors="coerce").astype(float)
        per_employee = active["arr_current"].astype(float) / employees.where(employees > 0)
        odd = _log_outliers(per_employee)
        if odd.any():
            problems.append(
                _problem(
                    config,
                    "accounts",
                    "employees",
                    f"{_s(int(odd.sum()), 'active customer')} {_verb(int(odd.sum()), 'pays', 'pay')} "
                    f"far more or less ARR per employee than the rest (median "
                    f"{per_employee.median():,.0f}; accounts "
                    f"{_examples(active.loc[odd[odd].index, 'account_id'])})",
                    "check those accounts' employee counts (a missing digit, a group total) "
                    "and their ARR",
                    int(odd.sum()),
                )
            )
    return problems


#: Date columns whose values may lie ahead by nature (not flagged as dated after as-of).
#: A trial's end too: a trial running on the as-of date ends after it (its start is checked).
PLANNED_DATES = {
    ("subscriptions", "end_date"),
    ("subscriptions", "trial_end"),
    ("trials", "trial_end"),
    ("trials", "end_date"),
}


def date_problems(tables: dict, config: Config, today: dt.date | None = None) -> list[Problem]:
    """Dates after the configured as-of date (or, without one, after today)."""
    reference = config.as_of or today or dt.date.today()
    what = "[project] as_of" if config.as_of else "today"
    limit = pd.Timestamp(reference)
    problems = []
    keys = {"accounts": "account_id", "opportunities": "opportunity_id"}
    labels = {"account_id": "accounts", "opportunity_id": "deals"}
    for table, columns in DATE_COLUMNS.items():
        frame = tables.get(table)
        if frame is None or not len(frame):
            continue
        for column in columns:
            if column not in frame:
                continue
            if (table, column) in PLANNED_DATES:
                continue  # contract ends lie ahead by nature
            late = (frame[column] > limit).fillna(False).astype(bool)
            if table == "opportunities" and column == "closed_at" and "stage" in frame:
                # An open deal's close date is its expected close: a plan, not a typo.
                late &= (frame["stage"] != "open").fillna(True).astype(bool)
            if not late.any():
                continue
            key = keys.get(table, "account_id")
            ids = frame.loc[late, key] if key in frame else pd.Series(dtype=str)
            problems.append(
                _problem(
                    config,
                    table,
                    column,
                    f"{_s(int(late.sum()), 'row')} {'is' if late.sum() == 1 else 'are'} dated "
                    f"after {what} ({reference:%Y-%m-%d}; latest {frame[column].max():%Y-%m-%d}; "
                    f"{labels[key]} {_examples(ids.drop_duplicates())}): analyses as "
                    f"of {reference:%Y-%m-%d} leave them out",
                    "check those dates (a typo in the year, a planned date) or set [project] "
                    "as_of to a later date",
                    int(late.sum()),
                )
            )
    return problems


# ---------------------------------------------------------------------------------------------
# All of it


@dataclass
class TrustReport:
    """Everything the trust checks found for one as-of date."""

    as_of: pd.Timestamp
    screening: Screening
    variation: dict[str, str]
    problems: list[Problem]

    def to_frame(self) -> pd.DataFrame:
        return problems_frame(self.problems)


def trust_checks(
    tables: dict,
    facts: pd.DataFrame,
    deals: pd.DataFrame | None,
    spec: AttributeSpec,
    config: Config,
    *,
    today: dt.date | None = None,
    screening: Screening | None = None,
) -> TrustReport:
    """Every check of this module over one as-of view (``facts`` and ``deals`` as of a date;
    ``tables`` the loaded tables); ``screening`` when :func:`screen_attributes` already ran."""
    if screening is None:
        screening = screen_attributes(spec, facts, deals, config)
    problems = [
        *screening.problems,
        *variation_problems(facts, deals, config),
        *money_problems(tables, facts, config),
        *date_problems(tables, config, today),
        *customers_only_problems(facts, deals, config),
    ]
    return TrustReport(
        pd.Timestamp(facts.attrs.get("as_of", reference_date(tables, config))),
        screening,
        outcome_variation(facts, deals),
        problems,
    )


#: The share of closed deals at companies the accounts table lacks from which an accounts
#: table of customers only is said to leave the analyses by trait without the prospects.
CUSTOMERS_ONLY_SHARE = 0.1


def customers_only_problems(
    facts: pd.DataFrame, deals: pd.DataFrame | None, config: Config
) -> list[Problem]:
    """A warning when every account of the accounts table is a customer while many closed deals
    are at companies it does not hold (a customer list beside a pipeline of every prospect):
    the win rate counts every deal, but the analyses by trait can compare only customers' own
    deals, never the companies that did not buy."""
    if deals is None or not len(deals) or "is_customer" not in facts or not len(facts):
        return []
    if not facts["is_customer"].fillna(False).astype(bool).all():
        return []
    rows = deals["is_closed"].astype(bool)
    if "is_new_business" in deals:
        rows &= deals["is_new_business"].astype(bool)
    rows &= deals["account_id"].notna()
    known = with_traits(deals)
    elsewhere = int((rows & ~known).sum())
    closed = int(rows.sum())
    if not closed or elsewhere < CUSTOMERS_ONLY_SHARE * closed:
        return []
    own = rows & known
    won = deals.loc[own, "won"].fillna(False).astype(bool)
    rate = f", {won.mean():.0%} won" if len(won) else ""
    return [
        _problem(
            config,
            "accounts",
            None,
            f"every one of the {len(facts):,} accounts in the accounts table is a customer, while "
            f"{elsewhere:,} of {closed:,} closed new-business deals ({elsewhere / closed:.0%}) "
            "are at companies not in it: the win rate counts every deal, but the analyses by "
            f"trait can compare only the customers' own {int(own.sum()):,} deals{rate}, so they "
            "cannot tell which companies buy and which never do",
            "export every company with a deal (prospects too) into the accounts table, or roll "
            "the accounts up from the deals (rollup = true under [tables.accounts])",
            elsewhere,
        )
    ]


def reference_date(tables: dict, config: Config) -> dt.date:
    """The as-of date of a run without ``--quarter``: [project] as_of, else the data's default
    as-of date (:func:`~icp_research.data.schema.default_as_of`), else today."""
    if config.as_of:
        return config.as_of
    return default_as_of(tables) or dt.date.today()


def check_dataset(dataset: Dataset, as_of=None) -> TrustReport:
    """:func:`trust_checks` for a loaded dataset as of ``as_of`` (default: as a run without
    ``--quarter`` would see it); what ``icp-research validate`` adds to its report."""
    from icp_research.data.facts import account_facts, as_of_view, deal_facts

    config = dataset.config
    when = pd.Timestamp(as_of or reference_date(dataset.tables, config)).normalize()
    view = as_of_view(dataset.tables, when)
    facts = account_facts(
        view,
        when,
        analysis=config.analysis,
        segments=config.segments,
        already_as_of=True,
        usage_source=dataset.usage_source,
    )
    deals = deal_facts(view, when, already_as_of=True)
    return trust_checks(dataset.tables, facts, deals, dataset.attributes, config)
