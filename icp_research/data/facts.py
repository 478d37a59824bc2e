"""Account facts and deal facts, "as of" a date.

Every analysis starts here. :func:`as_of_view` cuts the canonical tables down to what was known
on the as-of date (deals created later vanish, deals closed later are still open, churn after
the date has not happened), so a quarterly run never sees the future. :func:`account_facts`
derives one row per account from that view; :func:`deal_facts` one row per deal.

Units: money in the export's currency; ARR per year; durations in days (``*_days``) or years
(``*_years``); rates as fractions in [0, 1].
"""

from __future__ import annotations

import math

import numpy as np
import pandas as pd

from icp_research.data.churn_source import account_churn
from icp_research.data.cleaning import per_distinct
from icp_research.data.config import ANALYSIS_DEFAULTS, SEGMENT_DEFAULTS
from icp_research.formatting import slug

DAYS_PER_YEAR = 365.25
NO_DECISION = (
    r"no[\s_-]*decision|went dark|went silent|ghosted|stalled|no[\s_-]*response"
    r"|status[\s_-]*quo|do[\s_-]*nothing"
    # The same in the languages CRMs are set to: Spanish, German, French, Portuguese, Italian.
    r"|sin[\s_-]*decisi[oó]n|sin[\s_-]*respuesta|keine[\s_-]*entscheidung"
    r"|(?:pas|sans)[\s_-]*de[\s_-]*d[ée]cision|sem[\s_-]*decis[ãa]o|nessuna[\s_-]*decisione"
    r"|sem[\s_-]*resposta|sem[\s_-]*retorno|keine[\s_-]*(?:antwort|r[üu]ckmeldung)"
    r"|(?:pas|sans)[\s_-]*de[\s_-]*r[ée]ponse|nessuna[\s_-]*risposta"
    # Russian: no decision, no answer, does not get in touch, went silent.
    r"|нет[\s_-]*решения|без[\s_-]*ответа|не[\s_-]*отвечает|не[\s_-]*выходит[\s_-]*на[\s_-]*связь"
    r"|пропал"
)

# name -> (unit, meaning). The README's "Account facts" table is generated from this.
FACT_COLUMNS: dict[str, tuple[str, str]] = {
    "is_customer": (
        "flag",
        "paid us at some point up to the as-of date (a subscription or a won deal)",
    ),
    "customer_since": (
        "date",
        "first paid subscription start or first won deal, whichever came first (a deal won "
        "up to 90 days before the first subscription starts counts from that start)",
    ),
    "first_won_at": ("date", "close date of the first won deal"),
    "arr_current": (
        "money/year",
        "ARR of subscriptions active on the as-of date (bookings basis: won amount in the last 365 days)",
    ),
    "arr_initial": (
        "money/year",
        "ARR on the first day as a customer (bookings basis: first won amount)",
    ),
    "billing_period": (
        "label",
        "how the first paid subscription bills (monthly, annual ...): a contract term, tested "
        "for churn, never an ICP trait",
    ),
    "arr_12m_ago": ("money/year", "ARR 365 days before the as-of date"),
    "arr_peak": ("money/year", "highest ARR the account ever had"),
    "churned": (
        "flag",
        "was a customer and has churned by the as-of date, by [analysis] churn_source",
    ),
    "churned_at": ("date", "churn event date, else the end of the last subscription"),
    "reactivations": (
        "count",
        "churns followed by a return (a reactivation-flagged event or a later subscription)",
    ),
    "churn_reason": ("text", "reason of the latest churn event"),
    "tenure_days": (
        "days",
        "from customer_since to churned_at (churned) or the as-of date (right-censored)",
    ),
    "early_churn": ("flag", "churned within early_churn_months of becoming a customer"),
    "realised_revenue": (
        "money",
        "revenue received up to the as-of date (ARR x years active; bookings basis: won amounts)",
    ),
    "clv": (
        "money",
        "realised revenue + current ARR x integral over clv_horizon_years of survival(t) x "
        "discount(t): constant annual churn hazard of the size segment, [analysis] discount_rate",
    ),
    "nrr": ("ratio", "net revenue retention: ARR now / ARR 365 days ago, for accounts paying then"),
    "expansion": ("money/year", "arr_current - arr_initial for retained customers"),
    "retained": ("flag", "customer that has not churned"),
    "deals_won": (
        "count",
        "won new-business deals closed by the as-of date (all deals when there is no type)",
    ),
    "deals_lost": ("count", "lost new-business deals closed by the as-of date"),
    "deals_open": ("count", "new-business deals open on the as-of date"),
    "win_rate": ("fraction", "deals_won / (deals_won + deals_lost), new business only"),
    "expansion_deals_won": ("count", "won expansion / renewal deals"),
    "no_decision_losses": (
        "count",
        "lost deals whose loss reason says no decision was made ('no decision', 'went dark', "
        "'stalled', 'ghosted', 'no response', 'status quo', 'do nothing'; 'sin decisión', 'keine Entscheidung', 'pas de "
        "décision', 'sem decisão', 'nessuna decisione', 'нет решения')",
    ),
    "avg_deal_size": ("money", "mean amount of won new-business deals (ACV)"),
    "won_amount": ("money", "total amount of won new-business deals"),
    "median_sales_cycle_days": (
        "days",
        "median days from created_at to closed_at of won new-business deals",
    ),
    "nps_mean": ("score", "mean NPS response (0-10)"),
    "nps_latest": ("score", "latest NPS response (0-10)"),
    "nps_responses": ("count", "NPS responses"),
    "referred": ("flag", "referral_source says the account was referred"),
    "size_segment": ("label", "SMB / Mid-market / Enterprise by employees ([segments])"),
    "best_customer": (
        "flag",
        "top share of each start cohort's customers by best_customer_metric (churned ones "
        "count and are never best; [analysis] best_customer_ranking); empty for non-customers",
    ),
}


#: A deal won at most this many days before the account's first paid subscription starts is
#: the signing of that subscription: the customer's life starts with the subscription.
SIGNING_DAYS = 90


def retention_days(months: int) -> int:
    """The whole days within which a churn counts as one in the first ``months`` months:
    ``months`` x 365.25 / 12, and the day after it. A 12-month contract's end is written as
    its last day (day 365) or as the day after it (day 366); either way it was not renewed."""
    return math.floor(months * DAYS_PER_YEAR / 12) + 1


def retained_for(customers: pd.DataFrame, months: int, as_of) -> tuple[pd.Series, pd.Series]:
    """``(eligible, retained)`` for a fixed-horizon retention over ``customers`` (account facts
    with ``customer_since``, ``churned`` and ``tenure_days``): eligible are those who started
    at least :func:`retention_days` before ``as_of`` and whose churn is known; retained, those
    who had not churned within :func:`retention_days` of starting. One definition for every
    report (the pattern report had counted a 12-month contract ending on day 365 as retained,
    the predictor report as churned)."""
    days = retention_days(months)
    started = customers["customer_since"]
    eligible = (
        (
            started.notna()
            & (started <= pd.Timestamp(as_of) - pd.Timedelta(days=days))
            & customers["churned"].notna()  # a customer whose churn is unknown is not retained
        )
        .fillna(False)
        .astype(bool)
    )
    lost = customers["churned"].fillna(False).astype(bool) & (customers["tenure_days"] <= days)
    return eligible, ~lost.fillna(False).astype(bool)


def as_of_view(tables: dict[str, pd.DataFrame], as_of) -> dict[str, pd.DataFrame]:
    """The tables as they were known on ``as_of`` (inclusive).

    - accounts created after ``as_of`` are dropped (undated accounts are kept);
    - deals created after ``as_of`` are dropped; deals closed after it are ``open`` again, with
      ``closed_at`` and ``loss_reason`` cleared;
    - subscriptions (and trials) starting after ``as_of`` are dropped; ends after it are
      cleared (active);
    - churn events, usage, NPS, feedback and survey answers dated after ``as_of`` are dropped.
    """
    as_of = pd.Timestamp(as_of).normalize()
    view: dict[str, pd.DataFrame] = {}
    for name, frame in tables.items():
        if name == "accounts" and "created_at" in frame:
            frame = _rows(frame, ~(frame["created_at"] > as_of))
        elif name == "opportunities":
            created = frame["created_at"]
            # Undated deals: a closed one is placed by its close date; an open one cannot be placed.
            known = (created <= as_of) | (created.isna() & (frame.get("closed_at") <= as_of))
            frame = _rows(frame, known)
            closed_later = frame["closed_at"] > as_of
            stray = pd.Series(False, index=frame.index)
            if "loss_reason" in frame:  # a loss reason on a deal that is not lost (by then)
                stray = frame["loss_reason"].notna() & (closed_later | (frame["stage"] != "lost"))
            if closed_later.any() or stray.any():
                # New arrays for the columns that change; the others stay shared with the loaded
                # tables (which may be read-only, shared between report kernels).
                frame = frame.copy(deep=False)
                frame["stage"] = frame["stage"].mask(closed_later, "open")
                frame["closed_at"] = frame["closed_at"].mask(closed_later)
                if "loss_reason" in frame:
                    frame["loss_reason"] = frame["loss_reason"].mask(frame["stage"] != "lost")
        elif name in ("subscriptions", "trials"):
            frame = _rows(frame, frame["start_date"] <= as_of)
            if "end_date" in frame and (frame["end_date"] > as_of).any():
                frame = frame.copy(deep=False)  # a new end_date column; the rest shared
                frame["end_date"] = frame["end_date"].mask(frame["end_date"] > as_of)
        elif name == "churn_events":
            frame = _rows(frame, frame["churned_at"] <= as_of)
        elif name in ("usage", "nps"):
            frame = _rows(frame, frame["date"] <= as_of)
        elif name in ("feedback", "survey") and "date" in frame:
            frame = _rows(frame, ~(frame["date"] > as_of))
        else:
            frame = _rows(frame, np.ones(len(frame), dtype=bool))
        view[name] = frame
    if "deal_roles" in view and "opportunities" in view:
        roles = view["deal_roles"]
        view["deal_roles"] = roles[
            roles["opportunity_id"].isin(view["opportunities"]["opportunity_id"].unique())
        ]
    return view


def _rows(frame: pd.DataFrame, keep) -> pd.DataFrame:
    """The rows where ``keep`` is true, as a new frame with a fresh RangeIndex: a copy of those
    rows, or, when every row is kept, a new frame over the same columns (no copy: the loaded
    tables may be shared read-only between report kernels, see
    :func:`icp_research.data.loading.share_snapshot`)."""
    keep = np.asarray(keep, dtype=bool)
    frame = frame.copy(deep=False) if keep.all() else frame.take(np.flatnonzero(keep))
    frame.index = pd.RangeIndex(len(frame))
    return frame


class _Accounts:
    """Account positions, so that per-account aggregates of large tables group by integer codes:
    the text ids of a table are hashed once instead of once per aggregate."""

    def __init__(self, ids: pd.Index):
        self.ids = ids
        self.keys = ids if ids.is_unique else ids.drop_duplicates()
        self._positions = None if ids.is_unique else self.keys.get_indexer(ids)

    def __len__(self) -> int:
        return len(self.keys)

    def codes(self, account_id: pd.Series) -> np.ndarray:
        """Position of each row's account (-1: missing or unknown account)."""
        codes = self.keys.get_indexer(account_id)
        codes[account_id.isna().to_numpy()] = -1
        return codes

    def per_account(self, by_code: pd.Series, fill_value=None) -> pd.Series:
        """A result grouped by code, indexed by account id (what ``reindex(ids)`` gives)."""
        if fill_value is None:
            values = by_code.reindex(pd.RangeIndex(len(self.keys)))
        else:
            values = by_code.reindex(pd.RangeIndex(len(self.keys)), fill_value=fill_value)
        if self._positions is not None:
            values = values.iloc[self._positions]
        values.index = self.ids
        return values

    def count(self, codes: np.ndarray) -> pd.Series:
        """Rows per account (int64)."""
        counts = np.bincount(codes[codes >= 0], minlength=len(self.keys)).astype(np.int64)
        return self.per_account(pd.Series(counts))

    def value_at(self, values: pd.Series) -> np.ndarray:
        """``values`` (indexed by account id, one per account) as an array by code."""
        if self._positions is None:
            return values.to_numpy()
        first = np.unique(self._positions, return_index=True)[1]
        return values.to_numpy()[first]


def _arr_at(subs: pd.DataFrame, when: pd.Series, accounts: _Accounts, codes) -> pd.Series:
    """ARR per account active at a per-account date ``when`` (index account_id); ``codes`` are
    the subscriptions' account positions."""
    if subs.empty:
        return pd.Series(0.0, index=when.index)
    known = codes >= 0
    at = accounts.value_at(when)[np.where(known, codes, 0)]
    end = subs["end_date"].to_numpy()
    active = known & (subs["start_date"].to_numpy() <= at) & (np.isnat(end) | (end > at))
    arr = subs["arr"].to_numpy()[active]
    return accounts.per_account(pd.Series(arr).groupby(codes[active]).sum(), 0.0)


def _arr_peak(subs: pd.DataFrame, codes: np.ndarray) -> pd.Series:
    """Highest ARR each account ever had, by account position."""
    has_end = subs["end_date"].notna().to_numpy()
    arr = subs["arr"].to_numpy()
    events = pd.DataFrame(
        {
            "account": np.concatenate([codes, codes[has_end]]),
            "date": np.concatenate(
                [subs["start_date"].to_numpy(), subs["end_date"].to_numpy()[has_end]]
            ),
            "arr": np.concatenate([arr, -arr[has_end]]),
        }
    )
    # Ends before starts on the same day, so that a renewal is not counted twice.
    events = events.sort_values(["account", "date", "arr"], kind="mergesort")
    level = events.groupby("account")["arr"].cumsum()
    return level.groupby(events["account"]).max()


#: Lead sources that mean a referral whatever ``[analysis] referral_values`` lists: English,
#: German (Empfehlung), French (recommandation, parrainage, bouche-à-oreille), Spanish and
#: Portuguese (referido, recomendación, indicação), Italian (passaparola), Dutch (aanbeveling).
REFERRAL_WORDS = (
    r"referr|referido|referencia|empfehlung|mundpropaganda|recommandation|parrainage"
    r"|bouche[- ]?[àa][- ]?oreille|recomendaci|recomenda[çc]|indica[çc][ãa]o|passaparola"
    r"|aanbeveling|doorverwijz|word[- ]of[- ]mouth|рекомендац|сарафан|по[- ]?рекомендации"
)


def account_facts(
    tables: dict[str, pd.DataFrame],
    as_of,
    *,
    analysis: dict | None = None,
    segments: dict | None = None,
    already_as_of: bool = False,
    usage_source=None,
    raw_tables=None,
) -> pd.DataFrame:
    """One row per account with the facts of :data:`FACT_COLUMNS`, as of ``as_of``.

    ``tables`` are canonical tables (see :mod:`icp_research.data.schema`); pass
    ``already_as_of=True`` when they already went through :func:`as_of_view`. Account
    attributes are carried through unchanged; usage metrics (``usage_<metric>``, see
    :func:`usage_signals`) and survey answers (``survey_<question>``, see
    :func:`survey_attributes`) are joined when those tables exist. ``facts.attrs`` records
    ``as_of`` and the ``revenue_basis`` ("subscriptions" or "bookings" when there is no
    subscriptions table). ``usage_source`` (a :class:`~icp_research.data.warehouse.UsageSource`,
    see ``Dataset.usage_source``) gives the ``usage_<metric>`` columns from usage rows left in
    Parquet, aggregated by DuckDB, exactly as a loaded usage table would.

    Churn follows ``analysis["churn_source"]`` (see :mod:`icp_research.data.churn_source`);
    ``facts.attrs`` records the source used (``churn_source``, ``churn_source_label``), why
    (``churn_source_reason``), where the records disagree (``churn_notes``) and the counts
    (``churn_counts``: churned, undated, reactivations ...). ``raw_tables`` (all the data, for
    ``already_as_of=True``) lets ``auto`` decide on all the data, the same for every as-of date.

    CLV (money, subscriptions basis) is ``realised_revenue + arr_current * L``, where
    ``L = integral_0^H S(t) D(t) dt = (1 - exp(-(h + d) H)) / (h + d)`` years
    (:func:`clv_lifetime_years`): ``S(t) = exp(-h t)`` with ``h`` the constant annual churn
    hazard of the account's size segment (churns per customer-year, :func:`segment_hazards`),
    ``D(t) = (1 + r)^-t`` with ``r`` = ``[analysis] discount_rate`` and ``d = ln(1 + r)``, and
    ``H`` = ``clv_horizon_years``. ``facts.attrs`` records ``annual_churn_hazard`` (overall),
    ``annual_churn_hazard_by_segment``, ``clv_discount_rate`` and ``expected_lifetime_years``
    (``L`` at the overall hazard). On a bookings basis (no subscriptions) CLV is the revenue
    received from won deals.
    """
    analysis = {**ANALYSIS_DEFAULTS, **(analysis or {})}
    segments = {**SEGMENT_DEFAULTS, **(segments or {})}
    as_of = pd.Timestamp(as_of).normalize()
    view = tables if already_as_of else as_of_view(tables, as_of)
    if raw_tables is None and not already_as_of:
        raw_tables = tables
    accounts = view["accounts"]
    attrs: dict = {}
    facts = accounts.set_index("account_id", drop=False)  # a copy already: set_index copies
    facts.index.name = None
    ids = facts.index
    positions = _Accounts(ids)

    deals = view.get("opportunities")
    has_deals = deals is not None
    if has_deals:
        deal_codes = positions.codes(deals["account_id"])
        deals = _rows(deals, deal_codes >= 0)
        deal_codes = deal_codes[deal_codes >= 0]
        stats = _deal_stats(deals, deal_codes, positions)
        facts = facts.join(stats)
    else:
        for col in ("first_won_at",):
            facts[col] = pd.NaT

    subs = view.get("subscriptions")
    revenue_basis = "subscriptions" if subs is not None else ("bookings" if has_deals else "none")
    if subs is not None:
        sub_codes = positions.codes(subs["account_id"])
        subs = _rows(subs, sub_codes >= 0)
        sub_codes = sub_codes[sub_codes >= 0]
        if "end_date" not in subs:
            subs["end_date"] = pd.NaT
        # A subscription without ARR (a free plan, a trial) does not make a customer: an
        # account is one from its first paid subscription (or its first won deal).
        paid = (subs["arr"] > 0).to_numpy(dtype=bool)
        first_start = positions.per_account(subs["start_date"][paid].groupby(sub_codes[paid]).min())
        since = pd.concat([first_start, facts["first_won_at"]], axis=1).min(axis=1)
        # A deal won shortly before its subscription starts (signed, then live) starts one
        # customer life: the subscription's, so that a 12-month contract not renewed ends
        # within 12 months of the start (counted from a deal closed 13 days earlier, it ended
        # on day 378 and was "retained").
        gap = (first_start - facts["first_won_at"]).dt.days
        facts["customer_since"] = since.mask(gap.between(0, SIGNING_DAYS), first_start)
        facts["is_customer"] = first_start.notna() | facts["first_won_at"].notna()
        now = pd.Series(as_of, index=ids)
        facts["arr_current"] = _arr_at(subs, now, positions, sub_codes)
        facts["arr_initial"] = _arr_at(subs, first_start.fillna(as_of), positions, sub_codes).where(
            first_start.notna(), 0.0
        )
        if "billing_period" in subs and paid.any():
            # How the customer chose to pay at the start: its first paid subscription's.
            first = (
                subs.loc[paid, ["start_date", "billing_period"]]
                .assign(_code=sub_codes[paid])
                .sort_values(["_code", "start_date"], kind="stable")
                .drop_duplicates("_code")
                .set_index("_code")["billing_period"]
            )
            facts["billing_period"] = positions.per_account(first).astype("string")
        year_ago = pd.Series(as_of - pd.Timedelta(days=365), index=ids)
        facts["arr_12m_ago"] = _arr_at(subs, year_ago, positions, sub_codes)
        facts["arr_peak"] = (
            positions.per_account(_arr_peak(subs, sub_codes)).fillna(0.0) if len(subs) else 0.0
        )
        end = subs["end_date"].fillna(as_of).clip(upper=as_of)
        years = ((end - subs["start_date"]).dt.days.clip(lower=0)) / DAYS_PER_YEAR
        facts["realised_revenue"] = positions.per_account(
            (subs["arr"] * years).groupby(sub_codes).sum(), 0.0
        )
        last_end = positions.per_account(subs["end_date"].groupby(sub_codes).max())
        subscribed = first_start.notna()
        facts["churned"] = subscribed & (facts["arr_current"] <= 0)
        facts["churned_at"] = last_end.where(facts["churned"])
    elif has_deals:
        facts["customer_since"] = facts["first_won_at"]
        facts["is_customer"] = facts["first_won_at"].notna()
        if "amount" in deals:
            is_won = (deals["stage"] == "won").fillna(False).to_numpy(dtype=bool)
            won = pd.DataFrame(
                {
                    "account": deal_codes[is_won],
                    "closed_at": deals["closed_at"].to_numpy()[is_won],
                    "amount": deals["amount"].to_numpy()[is_won],
                }
            )
            recent = won[won["closed_at"] > as_of - pd.Timedelta(days=365)]
            facts["arr_current"] = positions.per_account(
                recent.groupby("account")["amount"].sum(), 0.0
            )
            first_amount = won.sort_values("closed_at").groupby("account")["amount"].first()
            facts["arr_initial"] = positions.per_account(first_amount)
            year_ago = won[
                (won["closed_at"] <= as_of - pd.Timedelta(days=365))
                & (won["closed_at"] > as_of - pd.Timedelta(days=730))
            ]
            facts["arr_12m_ago"] = positions.per_account(
                year_ago.groupby("account")["amount"].sum(), 0.0
            )
            realised = positions.per_account(won.groupby("account")["amount"].sum(), 0.0)
        else:
            for col in ("arr_current", "arr_initial", "arr_12m_ago"):
                facts[col] = np.nan
            realised = np.nan
        facts["arr_peak"] = np.nan
        facts["realised_revenue"] = realised
        facts["churned"] = pd.Series(pd.NA, index=ids, dtype="boolean")
        facts["churned_at"] = pd.NaT
    else:
        facts["customer_since"] = pd.NaT
        facts["is_customer"] = False
        for col in ("arr_current", "arr_initial", "arr_12m_ago", "arr_peak", "realised_revenue"):
            facts[col] = np.nan
        facts["churned"] = pd.Series(pd.NA, index=ids, dtype="boolean")
        facts["churned_at"] = pd.NaT

    # Who churned, by [analysis] churn_source (see icp_research.data.churn_source).
    decision, evidence = account_churn(
        view, as_of, ids, facts["is_customer"], analysis["churn_source"], raw_tables=raw_tables
    )
    facts["churned"] = decision.churned
    facts["churned_at"] = decision.churned_at
    facts["reactivations"] = evidence["reactivations"]
    attrs.update(
        churn_source=decision.source,
        churn_source_setting=decision.setting,
        churn_source_reason=decision.reason,
        churn_source_label=decision.label,
        churn_notes=list(decision.notes),
        churn_counts=dict(decision.counts),
    )
    churn = view.get("churn_events")
    if churn is not None and len(churn):
        if "reactivation" in churn:
            churn = churn[~churn["reactivation"].astype("boolean").fillna(False).astype(bool)]
        latest = churn.sort_values("churned_at").groupby("account_id").last()
        if "reason" in latest:
            facts["churn_reason"] = (
                latest["reason"].reindex(ids).where(facts["churned"].fillna(False).astype(bool))
            )
    if "churn_reason" not in facts:
        facts["churn_reason"] = pd.Series(pd.NA, index=ids, dtype="string")

    is_customer = facts["is_customer"].astype(bool)
    churned_flag = facts["churned"].astype("boolean")
    stop = facts["churned_at"].where(churned_flag.fillna(False).astype(bool), as_of)
    facts["tenure_days"] = (stop - facts["customer_since"]).dt.days.where(is_customer).astype(float)
    early_days = float(analysis["early_churn_months"]) * DAYS_PER_YEAR / 12
    facts["early_churn"] = (churned_flag & (facts["tenure_days"] <= early_days)).where(
        is_customer & churned_flag.notna()
    )
    facts["retained"] = (
        (is_customer & ~churned_flag.fillna(False).astype(bool))
        .where(~is_customer | churned_flag.notna())
        .astype("boolean")
    )
    facts.loc[~is_customer, "retained"] = pd.NA

    # Once, for the CLV groups and the size_segment column.
    size_segment = size_segments(facts["employees"], segments) if "employees" in facts else None

    # CLV: what they paid, plus current ARR over the discounted expected remaining lifetime of
    # their size segment (see clv_lifetime_years).
    horizon = float(analysis["clv_horizon_years"])
    discount_rate = float(analysis["discount_rate"])
    if revenue_basis == "subscriptions":
        # Undated churn (a churn flag with nothing to date it) has no tenure to divide by.
        dated = (churned_flag & facts["tenure_days"].notna()).fillna(False).astype(bool)
        years = facts["tenure_days"].where(is_customer, 0.0).fillna(0.0) / DAYS_PER_YEAR
        # Customers whose churn is unknown are not exposed to a churn anyone would see.
        years = years.where(churned_flag.notna() | ~is_customer, np.nan)
        group = (
            size_segment.astype(object)
            if size_segment is not None
            else pd.Series(pd.NA, index=ids, dtype=object)
        )
        hazard, by_segment = segment_hazards(dated & is_customer, years.where(is_customer), group)
        lifetime = clv_lifetime_years(hazard, horizon, discount_rate)
        facts["clv"] = facts["realised_revenue"] + facts["arr_current"] * lifetime
        overall = by_segment.pop(None)
        attrs["annual_churn_hazard"] = overall
        attrs["expected_lifetime_years"] = float(
            clv_lifetime_years(np.array([overall]), horizon, discount_rate)[0]
        )
        attrs["annual_churn_hazard_by_segment"] = by_segment
        attrs["clv_discount_rate"] = discount_rate
    else:
        facts["clv"] = facts["realised_revenue"]
    facts.loc[~is_customer, "clv"] = np.nan
    with np.errstate(divide="ignore", invalid="ignore"):
        facts["nrr"] = (facts["arr_current"] / facts["arr_12m_ago"]).where(facts["arr_12m_ago"] > 0)
    facts["expansion"] = (facts["arr_current"] - facts["arr_initial"]).where(
        facts["retained"].fillna(False).astype(bool)
    )

    nps = view.get("nps")
    if nps is not None and len(nps):
        nps = nps[nps["account_id"].isin(ids)].sort_values("date")
        grouped = nps.groupby("account_id")["score"]
        facts["nps_mean"] = grouped.mean().reindex(ids)
        facts["nps_latest"] = grouped.last().reindex(ids)
        facts["nps_responses"] = grouped.size().reindex(ids, fill_value=0).astype(int)

    # Who was referred: the accounts' referral_source, else the lead source of their first
    # deal (HubSpot's "Original Source: Referrals"), which says the same thing. A mapped
    # referral_source none of whose values is a referral (a Salesforce "Account Source" of
    # Web / Trade Show / Cold Call) gives way to a lead source that has referrals.
    values = {v.lower() for v in analysis["referral_values"]}

    def referred(text: pd.Series) -> pd.Series:
        source = text.str.lower().str.strip()
        return (
            (source.isin(values) | source.str.contains(REFERRAL_WORDS, na=False))
            .where(source.notna())
            .astype("boolean")
        )

    found = None
    for column in (c for c in ("referral_source", "lead_source") if c in facts):
        flags = per_distinct(facts[column].astype("string"), referred)
        if found is None or (not found[1].any() and flags.any()):
            found = (column, flags)
    if found is not None:
        facts["referred"] = found[1]
        facts.attrs["referral_column"] = found[0]

    if size_segment is not None:
        facts["size_segment"] = size_segment

    usage = view.get("usage")
    if usage is not None and len(usage):
        facts = facts.join(usage_signals(usage, as_of, ids))
    elif usage_source is not None:
        facts = facts.join(usage_source.signals(as_of, ids))

    survey = view.get("survey")
    if survey is not None and len(survey):
        facts = facts.join(survey_attributes(survey, ids))

    facts["best_customer"] = best_customers(
        facts,
        analysis["best_customer_metric"],
        float(analysis["best_customer_top_share"]),
        str(analysis.get("best_customer_ranking", "cohort")),
    )
    facts.index = pd.RangeIndex(len(facts))  # this function's own frame: no copy needed
    facts.attrs.update(attrs, as_of=as_of, revenue_basis=revenue_basis)
    return facts


#: Deal types that are open only to existing customers: never new business.
EXISTING_BUSINESS = ("expansion", "renewal")


def new_business(deals: pd.DataFrame) -> pd.DataFrame:
    """Deals that try to win a new customer.

    Expansion and renewal deals are only open to existing customers and win far more often;
    mixing them in would make every customer look like a strong winner by construction. When
    some deals have type ``new``, new business is those and the untyped ones (other types are
    neither). When none does, it is every deal that is not an expansion or renewal (a
    product-led export's ``trial`` / ``expansion``: the trials win new customers). Without a
    ``type`` column, or with no type at all, every deal counts as new business.
    """
    rows = _new_business_rows(deals)
    return deals if rows is None else deals[rows]


def _new_business_rows(deals: pd.DataFrame) -> np.ndarray | None:
    """Which deals :func:`new_business` keeps (None: all of them)."""
    if "type" not in deals:
        return None
    kinds = deals["type"]
    if (kinds == "new").any():
        return (kinds.isna() | (kinds == "new")).to_numpy(dtype=bool)
    existing = kinds.isin(EXISTING_BUSINESS).to_numpy(dtype=bool)
    return ~existing if existing.any() else None


def _deal_stats(
    all_deals: pd.DataFrame, all_codes: np.ndarray, accounts: _Accounts
) -> pd.DataFrame:
    """Deal counts, win rate, sizes and cycles of new business per account; ``all_codes`` are
    the deals' account positions."""
    new = _new_business_rows(all_deals)
    if new is None:
        deals, codes = all_deals, all_codes
    else:
        deals, codes = _rows(all_deals, new), all_codes[new]
    stage = deals["stage"]
    is_won = (stage == "won").fillna(False).to_numpy(dtype=bool)
    is_lost = (stage == "lost").fillna(False).to_numpy(dtype=bool)
    is_open = (stage == "open").fillna(False).to_numpy(dtype=bool)
    won_codes = codes[is_won]
    stats = pd.DataFrame(index=accounts.ids)
    stats["deals_won"] = accounts.count(won_codes)
    stats["deals_lost"] = accounts.count(codes[is_lost])
    stats["deals_open"] = accounts.count(codes[is_open])
    closed = stats["deals_won"] + stats["deals_lost"]
    stats["win_rate"] = (stats["deals_won"] / closed).where(closed > 0)
    if "loss_reason" in deals:
        reasons = deals["loss_reason"][is_lost].astype("string")
        nd = per_distinct(reasons, _is_no_decision).to_numpy(dtype=bool)
        stats["no_decision_losses"] = accounts.count(codes[is_lost][nd])
    if "amount" in deals:
        amount = deals["amount"][is_won].groupby(won_codes)
        stats["avg_deal_size"] = accounts.per_account(amount.mean())
        stats["won_amount"] = accounts.per_account(amount.sum(), 0.0)
    closed_at = deals["closed_at"][is_won]
    cycle = (closed_at - deals["created_at"][is_won]).dt.days
    cycle = cycle.where(cycle >= 0)
    stats["median_sales_cycle_days"] = accounts.per_account(cycle.groupby(won_codes).median())
    all_won = (all_deals["stage"] == "won").fillna(False).to_numpy(dtype=bool)
    stats["first_won_at"] = accounts.per_account(
        all_deals["closed_at"][all_won].groupby(all_codes[all_won]).min()
    )
    stats["first_deal_at"] = accounts.per_account(all_deals["created_at"].groupby(all_codes).min())
    if new is not None and not new.all():
        stats["expansion_deals_won"] = accounts.count(all_codes[all_won & ~new])
    return stats


def _is_no_decision(loss_reason: pd.Series) -> pd.Series:
    return loss_reason.str.contains(NO_DECISION, case=False, regex=True, na=False)


def _quarter_label(dates: pd.Series) -> pd.Series:
    """'2026Q3' for each date (<NA> for no date)."""
    return dates.dt.to_period("Q").astype("string")


def segment_hazards(churned, years, group) -> tuple[np.ndarray, dict]:
    """Constant annual churn hazard of each account's group (size segment), for CLV.

    ``churned`` (dated churns), ``years`` (customer-years of exposure, NaN for non-customers)
    and ``group`` (segment label, NA when unknown) are aligned per account. A group's hazard is
    churns per customer-year, ``(d + 1) / (E + 1 / h)``: its ``d`` churns over ``E``
    customer-years plus one pseudo-churn at the overall hazard ``h`` (a gamma prior worth one
    churn), so that a segment of a few customers without a churn does not get an infinite
    lifetime, while a segment with dozens of churns keeps its own rate. Accounts without a group
    take ``h``. Returns the hazard per account (per year) and ``{label: hazard}`` with the
    overall hazard under the key None (NaN when there is no exposure).
    """
    churned = np.asarray(churned, dtype=bool)
    years = np.asarray(pd.to_numeric(years, errors="coerce"), dtype=float)
    # A same-day churn has no exposure but still counts as a churn.
    exposed = np.isfinite(years) & (years >= 0)
    total_years = float(years[exposed].sum())
    overall = float(churned[exposed].sum()) / total_years if total_years > 0 else np.nan
    per_account = np.full(years.shape, overall)
    by_segment: dict = {None: overall}
    labels = pd.Series(group).reset_index(drop=True)
    if np.isfinite(overall) and overall > 0:
        for label, members in labels.groupby(labels, observed=True, sort=False).groups.items():
            inside = np.zeros(years.shape, bool)
            inside[np.asarray(members)] = True
            d = float(churned[inside & exposed].sum())
            e = float(years[inside & exposed].sum())
            rate = (d + 1.0) / (e + 1.0 / overall)
            per_account[inside] = rate
            by_segment[str(label)] = rate
    return per_account, by_segment


def clv_lifetime_years(hazard, horizon_years: float, discount_rate: float) -> np.ndarray:
    """Discounted expected years of revenue ahead, capped at a horizon (the CLV multiplier).

    With a constant annual churn hazard ``h`` the account survives to year ``t`` with
    probability ``S(t) = exp(-h t)``; a dollar in year ``t`` is worth ``D(t) = (1 + r)^-t``
    today (``r`` = ``[analysis] discount_rate`` per year). The multiplier of current ARR is
    ``integral_0^H S(t) D(t) dt = (1 - exp(-(h + d) H)) / (h + d)`` with ``d = ln(1 + r)`` and
    ``H`` = ``clv_horizon_years``; ``H`` when ``h + d = 0``. Undiscounted it is the expected
    lifetime ``1 / h`` truncated at the horizon; a hazard of NaN counts as 0 (nobody churned).
    Returns years, per element of ``hazard``.
    """
    h = np.nan_to_num(np.asarray(hazard, dtype=float), nan=0.0)
    rate = h + np.log1p(float(discount_rate))
    horizon = float(horizon_years)
    with np.errstate(divide="ignore", invalid="ignore"):
        value = -np.expm1(-rate * horizon) / rate
    return np.where(rate > 0, value, horizon)


def segment_bounds(employees: pd.Series, segments: dict | None = None) -> list[float]:
    """The employee counts where the size segments begin, as configured (200 and 2,000 by
    default), or, where the counts are size bands read at their lower ends (1, 11, 51, 251,
    1,000 ...), the band starts nearest to them (on a log scale: 200 -> 251, 2,000 -> 1,000),
    so that no segment splits a band: "2,000+ employees" over bands was the 5,000+ ones."""
    segments = {**SEGMENT_DEFAULTS, **(segments or {})}
    bounds = [float(b) for b in segments["employees"]]
    values = pd.to_numeric(employees, errors="coerce").to_numpy(dtype=float)
    values = values[np.isfinite(values) & (values > 0)]
    starts = np.unique(values)
    if not (2 <= starts.size <= BAND_VALUES and values.size >= 5 * starts.size):
        return bounds
    snapped = [float(starts[np.argmin(np.abs(np.log(starts) - np.log(b)))]) for b in bounds]
    # Two bounds on one band start would leave a segment empty: keep the configured ones.
    return snapped if len(set(snapped)) == len(snapped) else bounds


#: A count column with at most this many distinct values, each on five rows on average, is
#: read as size bands (the same test as the bins' in :mod:`icp_research.methods.binning`).
BAND_VALUES = 12


def size_segments(employees: pd.Series, segments: dict | None = None) -> pd.Series:
    """SMB / Mid-market / Enterprise (or the configured labels) by employee count, from
    :func:`segment_bounds`."""
    segments = {**SEGMENT_DEFAULTS, **(segments or {})}
    bounds = segment_bounds(employees, segments)
    labels = list(segments["labels"])
    values = pd.to_numeric(employees, errors="coerce")
    codes = np.searchsorted(np.asarray(bounds), values.to_numpy(dtype=float), side="right")
    out = pd.Series(
        np.asarray(labels, dtype=object)[np.minimum(codes, len(labels) - 1)], index=employees.index
    )
    out[values.isna()] = pd.NA
    return pd.Series(pd.Categorical(out, categories=labels, ordered=True), index=employees.index)


def usage_signals(usage: pd.DataFrame, as_of, ids, window_days: int = 90) -> pd.DataFrame:
    """Mean daily value of each usage metric over the ``window_days`` before ``as_of`` (the
    days with a value): ``usage_<metric>``, one row per account of ``ids``.

    Rows of one account, day and metric are added up first, so a log of events (one row per
    event) counts events per active day; a table with one row per account, date and metric is
    used as it is. :func:`icp_research.data.warehouse.usage_sql` computes the same in SQL.
    """
    as_of = pd.Timestamp(as_of)
    recent = usage[
        (usage["date"] > as_of - pd.Timedelta(days=window_days)) & (usage["date"] <= as_of)
    ]
    if recent.empty:
        return pd.DataFrame(index=ids)
    daily = (
        recent.groupby(["account_id", "date", "metric"], observed=True)["value"]
        .sum(min_count=1)
        .reset_index()
    )
    table = daily.pivot_table(index="account_id", columns="metric", values="value", aggfunc="mean")
    table.columns = [f"usage_{slug(c, 'metric')}" for c in table.columns]
    return table.reindex(ids)


# A question is free text (not a categorical attribute) when it has more than this many
# distinct answers and most answers are unique.
SURVEY_FREE_TEXT_MIN_ANSWERS = 20


def latest_survey_answers(survey: pd.DataFrame) -> pd.DataFrame:
    """Each account's latest answer(s) per question: ``account_id``, ``question``, ``answer``.

    Answers are stripped, blank answers dropped and spelling variants that differ only in case
    merged into the most common spelling. When an account answered a question on several dates
    (a repeated survey) only the latest date counts; several answers on that date (or undated)
    are a multi-answer question.
    """
    frame = survey[["account_id", "question", "answer"]].copy()
    frame["date"] = survey.get("date", pd.NaT)
    frame["question"] = frame["question"].astype("string").str.strip()
    frame["answer"] = frame["answer"].astype("string").str.strip()
    frame = frame[
        frame["account_id"].notna()
        & frame["question"].fillna("").ne("")
        & frame["answer"].fillna("").ne("")
    ]
    if frame.empty:
        return frame[["account_id", "question", "answer"]]
    key = frame["answer"].str.casefold()
    spelling = (
        frame.assign(_key=key)
        .groupby(["question", "_key", "answer"], observed=True)
        .size()
        .reset_index(name="rows")
        .sort_values(["rows", "answer"], ascending=[False, True], kind="stable")
        .drop_duplicates(["question", "_key"])
        .set_index(["question", "_key"])["answer"]
    )
    frame["answer"] = spelling.reindex(pd.MultiIndex.from_arrays([frame["question"], key])).values
    when = frame["date"].fillna(pd.Timestamp.min)
    latest = when.groupby([frame["account_id"], frame["question"]]).transform("max")
    frame = frame[when == latest]
    return frame[["account_id", "question", "answer"]].drop_duplicates(ignore_index=True)


def free_text_questions(survey: pd.DataFrame) -> list[str]:
    """Questions whose answers look like free text (mostly unique), not a fixed set of options."""
    return _free_text_questions(latest_survey_answers(survey))


def _free_text_questions(answers: pd.DataFrame) -> list[str]:
    stats = answers.groupby("question")["answer"].agg(["nunique", "size"])
    free = stats[
        (stats["nunique"] > SURVEY_FREE_TEXT_MIN_ANSWERS) & (stats["nunique"] > 0.5 * stats["size"])
    ]
    return sorted(free.index)


def survey_columns(survey: pd.DataFrame) -> dict[str, tuple[str, str | None]]:
    """The account columns a survey table becomes: ``{column: (question, answer)}``.

    A single-answer question becomes one categorical column ``survey_<question>`` (answer
    ``None``); a multi-answer question (some account gave several answers) one yes / no column
    per answer, ``survey_<question>_<answer>``. Free-text questions (see
    :func:`free_text_questions`) become no column.
    """
    return _survey_columns(latest_survey_answers(survey))


def _survey_columns(answers: pd.DataFrame) -> dict[str, tuple[str, str | None]]:
    """:func:`survey_columns` from the :func:`latest_survey_answers` (computed once)."""
    free = set(_free_text_questions(answers))
    columns: dict[str, tuple[str, str | None]] = {}
    for question, rows in answers.groupby("question", sort=True):
        if question in free:
            continue
        base = _unique_name(f"survey_{slug(question, 'metric')[:40]}", columns)
        if rows.duplicated("account_id").any():
            for answer in sorted(rows["answer"].unique()):
                columns[_unique_name(f"{base}_{slug(answer, 'metric')[:30]}", columns)] = (
                    question,
                    answer,
                )
        else:
            columns[base] = (question, None)
    return columns


def survey_attributes(survey: pd.DataFrame, ids) -> pd.DataFrame:
    """Survey answers as account attributes, indexed like ``ids`` (see :func:`survey_columns`).

    Every column is categorical text: single-answer columns hold the answer, multi-answer
    columns ``"yes"`` / ``"no"`` (did the account pick this answer); ``<NA>`` for accounts that
    did not answer the question. They are post-sale answers: usable to describe best
    customers, never to score leads.
    """
    answers = latest_survey_answers(survey)
    out = pd.DataFrame(index=ids)
    # Each question's rows, split once (in row order, like a filter per column).
    by_question = dict(tuple(answers.groupby("question", sort=False)))
    for column, (question, answer) in _survey_columns(answers).items():
        rows = by_question[question]
        if answer is None:
            values = rows.drop_duplicates("account_id").set_index("account_id")["answer"]
            out[column] = values.reindex(ids).astype("string")
        else:
            picked = rows.groupby("account_id")["answer"].apply(lambda a, x=answer: x in set(a))
            out[column] = picked.map({True: "yes", False: "no"}).reindex(ids).astype("string")
    return out


def _unique_name(name: str, taken) -> str:
    candidate, k = name, 2
    while candidate in taken:
        candidate, k = f"{name}_{k}", k + 1
    return candidate


BEST_METRICS = {
    "arr": "arr_current",
    "clv": "clv",
    "nrr": "nrr",
    "tenure": "tenure_days",
    "expansion": "expansion",
    "realised_revenue": "realised_revenue",
}


#: How best customers are ranked: within each start cohort (default) or all together.
BEST_RANKINGS = ("cohort", "all")


def start_cohorts(facts: pd.DataFrame, min_size: int = 5) -> pd.Series:
    """Each customer's start cohort: the calendar year it became a customer ("2024"), with a
    year of fewer than ``min_size`` customers pooled into the next ("2023-2024"; the last into
    the one before), and "unknown" without a start date. <NA> for non-customers."""
    is_customer = facts["is_customer"].astype("boolean").fillna(False).astype(bool)
    since = facts["customer_since"] if "customer_since" in facts else pd.Series(pd.NaT, facts.index)
    years = pd.to_datetime(since, errors="coerce").dt.year
    years = years.where(is_customer)
    counts = years.value_counts().sort_index()
    groups: list[list[int]] = []
    current: list[int] = []
    for year in counts.index:
        current.append(int(year))
        if sum(int(counts[y]) for y in current) >= min_size:
            groups.append(current)
            current = []
    if current:
        if groups:
            groups[-1].extend(current)
        else:
            groups.append(current)
    label = {}
    for group in groups:
        name = str(group[0]) if len(group) == 1 else f"{group[0]}-{group[-1]}"
        label.update(dict.fromkeys(group, name))
    known = years.notna()
    # Filled as plain objects and converted once: each masked assignment to a string
    # Series costs more than the rest of this function.
    cohort = np.full(len(years), None, dtype=object)
    cohort[known.to_numpy()] = years[known].astype(int).map(label).to_numpy(dtype=object)
    cohort[(is_customer & ~known).to_numpy()] = "unknown"
    return pd.Series(pd.array(cohort, dtype="string"), index=facts.index)


def best_customers(
    facts: pd.DataFrame, metric: str = "arr", top_share: float = 0.2, ranking: str = "cohort"
) -> pd.Series:
    """Flag the best customers: the top ``top_share`` by ``metric``.

    ``ranking="cohort"`` (default): within each start cohort (:func:`start_cohorts`), the top
    ``top_share`` of all the cohort's customers, churned ones counted (and never best). Every
    cohort then has the same share of best customers, so neither tenure (older customers had
    longer to expand) nor survival (older cohorts are thinned by churn) drives who is best:
    ranking the survivors of all cohorts together would make the best-customer rate of a start
    year track its retention, and the newest cohort look best. ``ranking="all"``: the top
    ``top_share`` of retained customers, all cohorts together.

    Returns a nullable boolean Series: True for the best, False for other customers (churned
    customers included), <NA> for accounts that never were customers or whose metric is unknown.
    Ties at the threshold are all included, unless that would miss the share by more than
    leaving them all out (many customers on one plan price). When leaving them out would leave
    no one (nearly every customer of the cohort ties: all at $0 of recent bookings), the
    metric does not tell the cohort's best apart, and its customers are <NA>, not all best.
    """
    if ranking not in BEST_RANKINGS:
        raise ValueError(f"ranking {ranking!r}: choose one of {', '.join(BEST_RANKINGS)}")
    column = BEST_METRICS.get(metric, metric)
    is_customer = facts["is_customer"].astype(bool)
    retained = (
        facts.get("retained", pd.Series(True, index=facts.index))
        .astype("boolean")
        .fillna(True)
        .astype(bool)
    )
    values = pd.to_numeric(facts[column], errors="coerce")
    if ranking == "all":
        groups = pd.Series("all", index=facts.index).where(is_customer)
    else:
        groups = start_cohorts(facts)
    if facts.index.is_unique and values.dtype == np.float64:
        return _best_by_position(values, is_customer, retained, groups, top_share, ranking)
    flag = pd.Series(pd.NA, index=facts.index, dtype="boolean")
    flag[is_customer] = False
    for _, members in groups[is_customer].groupby(groups[is_customer], sort=False):
        index = members.index
        pool = values[index][retained[index] & values[index].notna()]
        if len(pool) == 0:
            continue
        # "all": a share of the retained customers; "cohort": of every customer who started
        # then (churned ones count, and rank last), so each cohort gets the same share.
        # Retained customers whose metric is unknown are in no one's count.
        counted = ~(retained[index] & values[index].isna())
        size = len(pool) if ranking == "all" else int(counted.sum())
        k = max(1, int(np.ceil(top_share * size)))
        if k > len(pool):
            k = len(pool)
        threshold = pool.sort_values(ascending=False).iloc[k - 1]
        # Ties at the threshold (customers on the same plan) go in together, or all stay out
        # when taking them would miss the share by more than leaving them out does.
        with_ties, above = int((pool >= threshold).sum()), int((pool > threshold).sum())
        strict = abs(above - k) < abs(with_ties - k)
        if strict and above == 0:
            # Nearly all tie (every one at $0 of recent bookings, or on one plan price): the
            # metric does not tell this cohort's top share apart, so who is best is unknown,
            # not "all of them".
            flag[index[retained[index] & values[index].notna()]] = pd.NA
            continue
        chosen = values[index] > threshold if strict else values[index] >= threshold
        flag[index[retained[index] & chosen]] = True
    flag[is_customer & values.isna() & retained] = pd.NA
    return flag


def _best_by_position(values, is_customer, retained, groups, top_share, ranking) -> pd.Series:
    """:func:`best_customers`' flags for a unique index and a float metric, on arrays by
    position: the same choice per group, without the label lookups of each group's rows."""
    v = values.to_numpy()
    missing = np.isnan(v)
    customer = is_customer.to_numpy(dtype=bool)
    kept = retained.to_numpy(dtype=bool)
    codes = pd.factorize(groups.where(is_customer))[0]
    best = np.zeros(len(v), dtype=bool)
    undetermined = np.zeros(len(v), dtype=bool)
    for code in range(codes.max() + 1 if len(codes) else 0):
        members = np.flatnonzero(codes == code)
        mv, mk, mm = v[members], kept[members], missing[members]
        pool = mv[mk & ~mm]
        if pool.size == 0:
            continue
        size = pool.size if ranking == "all" else int((~(mk & mm)).sum())
        k = min(max(1, int(np.ceil(top_share * size))), pool.size)
        threshold = np.sort(pool)[pool.size - k]  # the k-th largest
        with_ties, above = int((pool >= threshold).sum()), int((pool > threshold).sum())
        strict = abs(above - k) < abs(with_ties - k)
        if strict and above == 0:  # all tie: unknown (see best_customers)
            undetermined[members[mk & ~mm]] = True
            continue
        chosen = mv > threshold if strict else mv >= threshold
        best[members[mk & chosen]] = True
    unknown = ~customer | (missing & kept) | undetermined
    return pd.Series(pd.arrays.BooleanArray(best, unknown), index=values.index)


#: The columns :func:`deal_facts` computes for each deal (the others are the opportunity's own
#: and its account's attributes).
DEAL_FACT_COLUMNS = (
    "is_new_business",
    "is_closed",
    "won",
    "cycle_days",
    "no_decision",
    "created_quarter",
    "closed_quarter",
)


def deal_facts(
    tables: dict[str, pd.DataFrame],
    as_of,
    *,
    already_as_of: bool = False,
    attributes: bool = True,
) -> pd.DataFrame:
    """One row per deal as of ``as_of``, with the account's attributes joined (not with
    ``attributes=False``: the deal's own columns and the computed ones).

    Columns added: ``is_new_business`` (see :func:`new_business`), ``won`` (nullable
    boolean; <NA> while open), ``is_closed``, ``cycle_days``
    (created to closed, or to ``as_of`` for open deals, which are right-censored),
    ``no_decision`` (lost with a 'no decision' reason), ``created_quarter`` and
    ``closed_quarter`` ('2026Q3').
    """
    as_of = pd.Timestamp(as_of).normalize()
    view = tables if already_as_of else as_of_view(tables, as_of)
    deals = view.get("opportunities")
    if deals is None:
        return pd.DataFrame()
    # A shallow copy: the new columns are this frame's own, the view's columns are shared, not
    # copied (at 10M deals each copy of them is gigabytes; nothing here writes into them).
    deals = deals.copy(deep=False)
    new = _new_business_rows(deals)
    deals["is_new_business"] = np.ones(len(deals), dtype=bool) if new is None else new
    deals["is_closed"] = deals["stage"].isin(["won", "lost"])
    deals["won"] = (deals["stage"] == "won").astype("boolean").where(deals["is_closed"], pd.NA)
    end = deals["closed_at"].where(deals["is_closed"], as_of)
    cycle = (end - deals["created_at"]).dt.days.astype(float)
    deals["cycle_days"] = cycle.where(cycle >= 0)
    if "loss_reason" in deals:
        nd = per_distinct(deals["loss_reason"].astype("string"), _is_no_decision)
        deals["no_decision"] = (
            (nd & (deals["stage"] == "lost")).where(deals["is_closed"]).astype("boolean")
        )
    deals["created_quarter"] = per_distinct(deals["created_at"], _quarter_label)
    deals["closed_quarter"] = per_distinct(deals["closed_at"], _quarter_label)
    if not attributes:
        return deals
    return join_account_attributes(deals, view["accounts"])


def join_account_attributes(deals: pd.DataFrame, accounts: pd.DataFrame) -> pd.DataFrame:
    """``deals`` (from :func:`deal_facts` with ``attributes=False``) with the account's
    attributes joined: a new frame over the same deal columns."""
    attribute_columns = [c for c in accounts.columns if c not in deals.columns or c == "account_id"]
    if accounts["account_id"].is_unique:
        # A left merge on a unique key is a lookup; reindex does it without the merge's copies.
        attributes = accounts[attribute_columns].set_index("account_id")
        ids = deals["account_id"].to_numpy()
        # The ids are looked up once (10M deals: seconds): rows taken by position when every
        # deal's account is known, the usual case; reindexed (blanks for the rest) otherwise.
        positions = attributes.index.get_indexer(ids)
        known = positions >= 0
        joined = attributes.iloc[positions] if known.all() else attributes.reindex(ids)
        joined.index = deals.index
        flag = pd.Series(known, index=deals.index, name=ACCOUNT_KNOWN)
        deals = pd.concat([deals, joined, flag], axis=1, copy=False)
        deals.index = pd.RangeIndex(len(deals))
    else:
        deals = deals.merge(
            accounts[attribute_columns], on="account_id", how="left", indicator=ACCOUNT_KNOWN
        )
        deals[ACCOUNT_KNOWN] = (deals[ACCOUNT_KNOWN] == "both").to_numpy()
    return deals


#: The deal facts' column saying whether the deal's account is in the accounts table: a deal
#: at a company the accounts export does not hold (a customer list beside a pipeline of every
#: prospect) counts in the deal totals, but has no traits to compare.
ACCOUNT_KNOWN = "account_known"


def with_traits(deals: pd.DataFrame) -> pd.Series:
    """Which deals have an account whose traits are known: those the analyses by trait compare
    (a deal without an account, or at a company not in the accounts table, has none; "missing"
    would then mean "not in the export", not "blank in the CRM")."""
    if ACCOUNT_KNOWN in deals:
        return deals[ACCOUNT_KNOWN].fillna(False).astype(bool)
    return deals["account_id"].notna()
