"""Where churn comes from: subscriptions, churn events or an accounts column.

``[analysis] churn_source`` says which record decides whether an account has churned:

``"subscriptions"``
    a customer churned when no subscription with ARR is active on the as-of date; a churn
    event, when there is one, only dates it.
``"churn_events"``
    a customer churned when its latest churn event is not followed by a return (a
    reactivation-flagged event or a new subscription starting after it).
``"<accounts column>"``
    a column of the accounts table holding a churned flag or status (``churn_flag`` True /
    False, ``status`` "Churned" / "Active"). Its date comes from the latest churn event, else
    the end of the last subscription when none is active; an account with neither is churned
    but undated (it counts in the churn share, not in rates per customer-year or retention
    curves). The flag is the status when the data was exported: for an earlier as-of date, an
    account whose only dated record of churn is later does not count as churned yet.
``"auto"`` (default)
    churn events when there is no subscriptions table; subscriptions when there are no churn
    events; with both, churn events when most accounts whose latest churn event is not followed
    by a return still have an active subscription on the as-of date (the billing export does
    not close churned subscriptions), else subscriptions. ``auto`` decides once, on all the
    data, so every quarter of a run history counts churn the same way.

Everything here works on canonical tables and returns plain frames and sentences; the facts
(:mod:`icp_research.data.facts`) and validation (:mod:`icp_research.data.loading`) use it.
"""

from __future__ import annotations

import difflib
import re
from dataclasses import dataclass, field

import numpy as np
import pandas as pd

from icp_research.data.schema import dated_extreme, default_as_of
from icp_research.errors import ConfigError

SOURCES = ("auto", "subscriptions", "churn_events")
# Words of a status column that mean churned (checked first: "inactive" holds "active") and
# words that mean still a customer.
CHURNED_WORDS = re.compile(
    r"churn|cancel|lost|former|inactive|terminat|lapsed|expired|ended|closed|left"
    # German, French, Spanish: gekündigt, ehemalig, inaktiv; résilié, ancien, inactif; baja.
    r"|gekündigt|gekuendigt|kündigung|ehemalig|inaktiv|abgewandert|verloren"
    r"|résili|resili|ancien|inactif|perdu|cancelad|perdido|inactivo|\bbaja\b",
    re.IGNORECASE,
)
ACTIVE_WORDS = re.compile(
    r"^\s*(?:active|current|customer|live|paying|retained|renewed|open|subscribed|ok"
    r"|aktiv|kunde|bestandskunde|actif|client|activo|cliente|vigente)\b",
    re.IGNORECASE,
)
# Accounts columns whose name says they may hold a churn status.
STATUS_NAME = re.compile(r"churn|status", re.IGNORECASE)


def describe(source: str) -> str:
    """'churn measured from subscriptions' and the like, for captions and headlines."""
    if source == "subscriptions":
        return "churn measured from subscriptions"
    if source == "churn_events":
        return "churn counted from churn events"
    if source in ("none", "", None):
        return "churn not measured (no subscriptions or churn events)"
    return f"churn taken from the accounts column {source}"


def short(source: str) -> str:
    """'from subscriptions', 'from churn events', 'from churn_flag': a figure's source, briefly."""
    if source == "churn_events":
        return "from churn events"
    if source in ("none", "", None):
        return "not measured"
    return f"from {source}"


def sentence(text: str) -> str:
    """A note as a sentence: capitalised, with a full stop."""
    text = text.strip()
    return (text[:1].upper() + text[1:] + ("" if text.endswith(".") else ".")) if text else text


def setting_problem(value, label: str = "config") -> str | None:
    """What is wrong with a ``churn_source`` value on its own (without the accounts columns),
    or None. A value that is not a keyword is an accounts column, checked when data is loaded."""
    if not isinstance(value, str) or not value.strip():
        return (
            f"{label}: [analysis] churn_source = {value!r} must be text in quotes: "
            '"auto", "subscriptions", "churn_events" or an accounts column, e.g. "churn_flag"'
        )
    text = value.strip()
    if text in SOURCES:
        return None
    close = difflib.get_close_matches(text.lower(), SOURCES, n=1, cutoff=0.75)
    if close or text.lower() in SOURCES:
        wanted = close[0] if close else text.lower()
        return (
            f"{label}: [analysis] churn_source = {value!r} is not a churn source; did you mean "
            f"'{wanted}'? (auto, subscriptions, churn_events or an accounts column)"
        )
    return None


def resolve_column(accounts: pd.DataFrame, value: str) -> tuple[str | None, str]:
    """The accounts column a ``churn_source`` value names, and a suggestion when none does."""
    text = str(value).strip()
    if text in accounts.columns:
        return text, ""
    snake = re.sub(r"[^0-9a-zA-Z]+", "_", text).strip("_").lower()
    if snake in accounts.columns:
        return snake, ""
    options = [c for c in accounts.columns if c != "account_id"]
    close = difflib.get_close_matches(snake, options, n=1, cutoff=0.6)
    if close:
        return None, f"did you mean '{close[0]}'? "
    candidates = [c for c in options if STATUS_NAME.search(c)]
    if candidates:
        return None, "columns that may hold a churn status: " + ", ".join(candidates) + "; "
    return None, ""


def column_status(values: pd.Series) -> pd.Series | None:
    """A churned flag or status column as a nullable boolean (True: churned, <NA>: unknown);
    None when the column is neither flags nor a status."""
    if pd.api.types.is_bool_dtype(values) or str(values.dtype) == "boolean":
        return values.astype("boolean")
    if pd.api.types.is_numeric_dtype(values):
        present = values.dropna()
        if len(present) and present.isin([0, 1]).all():
            return (values != 0).astype("boolean").where(values.notna())
        return None
    text = values.astype("string").str.strip()
    distinct = pd.Series(text.dropna().unique(), dtype="string")
    if distinct.empty:
        return None
    churned = distinct.str.contains(CHURNED_WORDS, na=False)
    active = ~churned & distinct.str.contains(ACTIVE_WORDS, na=False)
    if not churned.any() or not active.any():
        return None
    mapping = dict(zip(distinct[churned | active], churned[churned | active], strict=True))
    return text.map(mapping).astype("boolean")


def status_columns(accounts: pd.DataFrame) -> dict[str, pd.Series]:
    """Accounts columns whose name and values look like a churn flag or status."""
    out = {}
    for name in accounts.columns:
        if name == "account_id" or not STATUS_NAME.search(name):
            continue
        status = column_status(accounts[name])
        if status is not None and status.fillna(False).any():
            out[name] = status
    return out


def outcome_columns(accounts: pd.DataFrame, analysis: dict) -> list[str]:
    """The accounts column churn is taken from (``churn_source`` names one): the outcome of
    every churn analysis, never an ICP predictor of it."""
    setting = str(analysis.get("churn_source", "auto") or "auto").strip()
    if setting in SOURCES:
        return []
    column = resolve_column(accounts, setting)[0]
    return [] if column is None else [column]


def latest_date(tables) -> pd.Timestamp | None:
    """The latest date anywhere in the tables, plans included (an open deal's expected close,
    a contract end): how far the records reach, not the default as-of date."""
    latest, _ = dated_extreme(tables)
    return None if latest is None else pd.Timestamp(latest).normalize()


# ---------------------------------------------------------------------------------------------
# Evidence per account


def evidence(tables, as_of, ids, raw_tables=None) -> pd.DataFrame:
    """What each record says about each account's churn on ``as_of`` (index: ``ids``).

    Columns: ``subscribed`` (a subscription started by then), ``active`` (subscriptions with
    ARR active on the date), ``last_end`` (end of the last subscription, by then),
    ``has_event`` (a churn event by then), ``last_churn`` (its date), ``event_churned`` (the
    latest churn is not followed by a return), ``reactivations`` (churns followed by a
    return: a reactivation-flagged event or a subscription starting after the churn),
    ``reactivation_events`` (reactivation-flagged events) and ``later`` (``raw_tables`` date a
    churn event or a subscription end after ``as_of``).

    Rows are grouped by their account's position in ``ids`` (an integer, looked up once per
    table), not by the account id text: at a million accounts hashing the ids again for every
    aggregate was most of the time.
    """
    as_of = pd.Timestamp(as_of).normalize()
    index = pd.Index(ids)
    if not index.is_unique:
        return evidence(tables, as_of, index.unique(), raw_tables).reindex(index)
    n = len(index)

    def positions(account_ids) -> np.ndarray:
        """Each row's account position in ``index``; -1 for accounts not in it (or missing)."""
        return index.get_indexer(pd.Index(account_ids))

    def per_account(values, where: np.ndarray, how: str) -> pd.Series:
        """``how`` of ``values`` per account position (rows outside ``index`` left out)."""
        values = pd.Series(np.asarray(values))
        keep = where >= 0
        return getattr(values[keep].groupby(where[keep]), how)().reindex(range(n))

    out = pd.DataFrame(index=index)
    subs = tables.get("subscriptions")
    starts = (np.empty(0, dtype=np.intp), np.empty(0, dtype="datetime64[ns]"))
    if subs is not None:
        subs = subs[subs["start_date"] <= as_of]
        at = positions(subs["account_id"])
        end = subs["end_date"] if "end_date" in subs else pd.Series(pd.NaT, index=subs.index)
        end = end.where(~(end > as_of))
        arr = subs["arr"] if "arr" in subs else pd.Series(0.0, index=subs.index)
        on = (end.isna() | (end > as_of)).to_numpy()
        out["subscribed"] = np.isin(np.arange(n), at)
        active_arr = per_account(arr.to_numpy(dtype=float, na_value=np.nan)[on], at[on], "sum")
        out["active"] = active_arr.fillna(0.0).to_numpy() > 0
        out["last_end"] = _dates(per_account(end.to_numpy(), at, "max"))
        starts = (at, subs["start_date"].to_numpy(dtype="datetime64[ns]"))
        out["lapses"] = _lapses(at, starts[1], end.to_numpy(dtype="datetime64[ns]"), n)
    else:
        out["subscribed"] = False
        out["active"] = False
        out["last_end"] = pd.NaT
        out["lapses"] = 0
    events = tables.get("churn_events")
    if events is None:
        events = pd.DataFrame(columns=["account_id", "churned_at"])
    events = events[events["churned_at"] <= as_of]
    is_return = _reactivation(events).to_numpy()
    event_at = positions(events["account_id"])
    event_date = pd.to_datetime(events["churned_at"]).to_numpy(dtype="datetime64[ns]")
    churns = (event_at[~is_return], event_date[~is_return])
    returns = (
        np.concatenate([event_at[is_return], starts[0]]),
        np.concatenate([event_date[is_return], starts[1]]),
    )
    out["has_event"] = np.isin(np.arange(n), churns[0])
    out["last_churn"] = _dates(per_account(churns[1], churns[0], "max"))
    came_back = _dates(per_account(returns[1], returns[0], "max"))
    out["event_churned"] = out["has_event"] & ~(
        pd.Series(came_back, index=index) > out["last_churn"]
    )
    out["reactivations"] = _spells_ended(churns, returns, n)
    out["reactivation_events"] = np.bincount(
        event_at[is_return & (event_at >= 0)], minlength=n
    ).astype(int)
    out["later"] = False
    if raw_tables is not None:
        later = set()
        raw_events = raw_tables.get("churn_events")
        if raw_events is not None and len(raw_events):
            flagged = _reactivation(raw_events)
            later |= set(
                raw_events.loc[~flagged & (raw_events["churned_at"] > as_of), "account_id"]
            )
        raw_subs = raw_tables.get("subscriptions")
        if raw_subs is not None and "end_date" in raw_subs:
            later |= set(raw_subs.loc[raw_subs["end_date"] > as_of, "account_id"].unique())
        out["later"] = index.isin(later)
    return out


#: The latest evidence on all the data: (the accounts frame it was computed for, as a weak
#: reference; the date; the evidence for every account of it). Studies of other dates of the
#: same data (a backtest's folds) decide ``auto`` on the same evidence.
_EVERYTHING: list = []


def _evidence_on_everything(raw_tables, when, ids) -> pd.DataFrame:
    """``evidence(raw_tables, when, ids)``, computed once for every account of the data and
    looked up for ``ids`` (each account's evidence depends on its own rows only)."""
    import weakref

    accounts = raw_tables.get("accounts")
    if accounts is None or "account_id" not in accounts:
        return evidence(raw_tables, when, ids)
    when = pd.Timestamp(when).normalize()
    for ref, at, ev in _EVERYTHING:
        if ref() is accounts and at == when and pd.Index(ids).isin(ev.index).all():
            return ev.reindex(pd.Index(ids))
    everyone = pd.Index(accounts["account_id"].dropna().unique())
    if not pd.Index(ids).isin(everyone).all():
        return evidence(raw_tables, when, ids)
    ev = evidence(raw_tables, when, everyone)
    _EVERYTHING[:] = [(weakref.ref(accounts), when, ev)]
    return ev.reindex(pd.Index(ids))


#: A customer whose next subscription starts this long after every earlier one ended stopped
#: paying for a while (a lapse), not merely renewed late.
LAPSE_DAYS = 30


def _lapses(at: np.ndarray, start: np.ndarray, end: np.ndarray, n: int) -> np.ndarray:
    """Per account position: how often a subscription starts more than :data:`LAPSE_DAYS` after
    every earlier subscription of the account ended (an open one never ends)."""
    keep = at >= 0
    at, start, end = at[keep], start[keep], end[keep]
    if not len(at):
        return np.zeros(n, dtype=int)
    order = np.lexsort((start, at))
    at, start, end = at[order], start[order], end[order]
    ends = np.where(np.isnat(end), np.datetime64("2262-01-01"), end).astype("datetime64[ns]")
    reach = pd.Series(ends).groupby(at).cummax().to_numpy(dtype="datetime64[ns]")
    earlier = np.empty_like(reach)
    earlier[1:] = reach[:-1]
    same = np.zeros(len(at), dtype=bool)
    same[1:] = at[1:] == at[:-1]
    lapse = same & (start - earlier > np.timedelta64(LAPSE_DAYS, "D"))
    return np.bincount(at[lapse], minlength=n).astype(int)


def _dates(values: pd.Series) -> np.ndarray:
    return pd.to_datetime(values).to_numpy(dtype="datetime64[ns]")


def _reactivation(events: pd.DataFrame) -> pd.Series:
    """Which churn-event rows record a return (``reactivation`` flag), not a churn."""
    if "reactivation" not in events:
        return pd.Series(False, index=events.index)
    return events["reactivation"].astype("boolean").fillna(False).astype(bool)


def _spells_ended(churns, returns, n: int) -> np.ndarray:
    """Per account position (``n`` of them), the churns followed by a return: returns whose
    previous record (in time) is a churn. A return on the day of the churn does not end it.
    ``churns`` and ``returns`` are (account positions, dates); -1 and NaT rows are left out."""
    ended = np.zeros(n, dtype=int)
    if not len(churns[0]) or not len(returns[0]):
        return ended
    at = np.concatenate([churns[0], returns[0]])
    date = np.concatenate([churns[1], returns[1]])
    kind = np.concatenate([np.ones(len(churns[0]), int), np.zeros(len(returns[0]), int)])
    keep = (at >= 0) & ~np.isnat(date)
    at, date, kind = at[keep], date[keep], kind[keep]
    order = np.lexsort((kind, date, at))  # by account, then date, churn after return
    at, kind = at[order], kind[order]
    follows_churn = np.zeros(len(at), dtype=bool)
    follows_churn[1:] = (at[1:] == at[:-1]) & (kind[:-1] == 1)
    return np.bincount(at[(kind == 0) & follows_churn], minlength=n).astype(int)


# ---------------------------------------------------------------------------------------------
# Deciding


@dataclass
class ChurnDecision:
    """Churn per account by the chosen source, and how it was chosen."""

    source: str  # "subscriptions", "churn_events", an accounts column, or "none"
    setting: str
    reason: str
    churned: pd.Series
    churned_at: pd.Series
    notes: list[str] = field(default_factory=list)  # disagreements, in sentences
    counts: dict = field(default_factory=dict)

    @property
    def label(self) -> str:
        return describe(self.source)


def auto_source(ev: pd.DataFrame, has_subscriptions: bool, has_events: bool) -> tuple[str, str]:
    """The source ``auto`` chooses on this evidence, and why (a sentence)."""
    if not has_subscriptions:
        if has_events:
            return "churn_events", "there is no subscriptions table, so churn events are counted"
        return "none", "there is neither a subscriptions nor a churn_events table"
    open_events = ev["event_churned"]
    if not has_events or not open_events.any():
        return "subscriptions", "subscriptions record churn and no churn event contradicts them"
    contradicted = int((open_events & ev["active"]).sum())
    total = int(open_events.sum())
    if contradicted > total / 2:
        return "churn_events", (
            f"{contradicted:,} of the {total:,} accounts whose latest churn event is not followed "
            "by a return still have an active subscription, so the subscriptions do not record "
            "churn and the events are counted"
        )
    return "subscriptions", (
        f"subscriptions record churn: {total - contradicted:,} of the {total:,} accounts whose "
        "latest churn event is not followed by a return have no active subscription"
    )


def decide(
    ev: pd.DataFrame,
    setting: str,
    is_customer: pd.Series,
    *,
    has_subscriptions: bool,
    has_events: bool,
    accounts: pd.DataFrame | None = None,
    auto: tuple[str, str] | None = None,
    as_of=None,
) -> ChurnDecision:
    """Churned flag and date per account (index of ``ev``) by ``setting``.

    ``auto`` is the ``(source, reason)`` that ``auto`` chose (default: :func:`auto_source` on
    ``ev``); ``accounts`` (indexed like ``ev``) holds the column a column setting names.
    """
    setting = str(setting or "auto").strip()
    customer = pd.Series(np.asarray(is_customer, dtype=bool), index=ev.index)
    if setting == "auto":
        source, reason = auto or auto_source(ev, has_subscriptions, has_events)
        reason = f'churn_source = "auto": {reason}'
    else:
        source, reason = setting, f'churn_source = "{setting}" in [analysis]'
    status = None
    if source not in ("subscriptions", "churn_events", "none"):
        column = None if accounts is None else resolve_column(accounts, source)[0]
        status = None if column is None else column_status(accounts[column])
        if status is None:
            raise ConfigError(
                f"[analysis] churn_source = {setting!r} is not auto, subscriptions, churn_events "
                "or a churned flag or status column of accounts; set one of those in the config"
            )
        source = column
    if source == "subscriptions" and not has_subscriptions:
        source = "none"
        reason += "; there is no subscriptions table, so churn is not measured"
    if source == "none":
        churned = pd.Series(pd.NA, index=ev.index, dtype="boolean")
        churned_at = pd.Series(pd.NaT, index=ev.index, dtype="datetime64[ns]")
    elif source == "subscriptions":
        churned = (ev["subscribed"] & ~ev["active"]).astype("boolean")
        # A customer without any subscription (a won deal made it one) is not in the billing
        # export: the subscriptions cannot say whether it churned. A churn event still can.
        unbilled = (customer & ~ev["subscribed"]).to_numpy(dtype=bool)
        churned[unbilled] = ev["event_churned"][unbilled].astype("boolean")
        churned[unbilled & ~ev["event_churned"].to_numpy(dtype=bool)] = pd.NA
        # The churn event's date is the better record of when the customer left.
        said_churned = churned.fillna(False).astype(bool)
        dated = said_churned & ev["has_event"]
        churned_at = ev["last_end"].where(said_churned)
        churned_at[dated] = ev.loc[dated, "last_churn"]
    elif source == "churn_events":
        churned = (ev["event_churned"] & customer).astype("boolean")
        churned_at = ev["last_churn"].where(churned.astype(bool))
    else:
        flag = pd.Series(status.to_numpy(), index=ev.index, dtype="boolean")
        date = ev["last_churn"].fillna(ev["last_end"].where(ev["subscribed"] & ~ev["active"]))
        # A flag dated only after the as-of date (by later records) has not happened yet.
        happened = date.notna() | ~ev["later"]
        churned = (flag & customer & happened).astype("boolean")
        churned = churned.where(~(flag.isna() & customer), pd.NA)
        churned_at = date.where(churned.fillna(False).astype(bool))
    churned = churned.where(customer, False) if source != "none" else churned
    decision = ChurnDecision(
        source=source,
        setting=setting,
        reason=reason,
        churned=churned.astype("boolean"),
        churned_at=pd.to_datetime(churned_at),
    )
    decision.counts = _counts(ev, decision, customer, status)
    decision.notes = _notes(
        ev, decision, customer, has_events, accounts=accounts, as_of=as_of, status=status
    )
    return decision


def _counts(ev, decision, customer, status) -> dict:
    churned = decision.churned.fillna(False).astype(bool)
    counts = {
        "customers": int(customer.sum()),
        "churned": int(churned.sum()),
        "undated": int((churned & decision.churned_at.isna()).sum()),
        "unknown": int((decision.churned.isna() & customer).sum()),
        "reactivations": int(ev["reactivations"].sum()),
        "reactivated_accounts": int((ev["reactivations"] > 0).sum()),
        "reactivation_events": int(ev["reactivation_events"].sum()),
        "accounts_with_churn_events": int(ev["has_event"].sum()),
    }
    return counts


def _notes(ev, decision, customer, has_events, *, accounts, as_of, status) -> list[str]:
    """Where the records disagree: how many accounts, which way, and the setting that changes it."""
    notes: list[str] = []
    when = f" on {pd.Timestamp(as_of):%Y-%m-%d}" if as_of is not None else ""
    source = decision.source
    said = describe(source)
    if has_events and source != "none":
        both = ev["event_churned"] & ev["active"] & customer
        if both.any():
            if source == "churn_events":
                notes.append(
                    f"{int(both.sum()):,} accounts have an active subscription{when} but a churn "
                    f"event not followed by a return; {said}, so they count as churned; set "
                    'churn_source = "subscriptions" to measure churn from subscriptions'
                )
            else:
                notes.append(
                    f"{int(both.sum()):,} accounts have churn events but an active subscription"
                    f'{when}; {said}; set churn_source = "churn_events" to count the events'
                )
        ended = ev["subscribed"] & ~ev["active"] & ~ev["event_churned"] & customer
        if ended.any() and source == "churn_events":
            notes.append(
                f"{int(ended.sum()):,} accounts have no active subscription{when} but no churn "
                f"event (or one followed by a return); {said}, so they count as retained; set "
                'churn_source = "subscriptions" to count them as churned'
            )
    if source == "subscriptions" and "lapses" in ev:
        lapsed = (ev["lapses"] > 0) & customer
        if lapsed.any():
            back = lapsed & ev["active"]
            notes.append(
                f"{int(lapsed.sum()):,} customers stopped paying for more than {LAPSE_DAYS} days "
                f"and came back ({int(ev.loc[lapsed, 'lapses'].sum()):,} lapses in all; "
                f"{int(back.sum()):,} of them pay{when}): churn from subscriptions counts a "
                "customer as churned while it is gone, so a lapse followed by a return is no "
                "churn and its gap counts as time as a customer; to count every lapse as a "
                "churn, give the churns as churn events (with the returns flagged as "
                "reactivations)"
            )
    if source == "subscriptions":
        unbilled = customer & ~ev["subscribed"] & decision.churned.isna()
        if unbilled.any():
            k, total = int(unbilled.sum()), int(customer.sum())
            notes.append(
                f"{k:,} of the {total:,} customers have no subscription{when} (a won deal makes "
                f"them customers) and no churn event: {said}, which cannot say whether they "
                f"churned, so they are left out of churn and retention (measured on the "
                f"{total - k:,} other customers); if they are billed outside this export, add "
                "that billing, or give their churn as churn events or an accounts column "
                "(churn_source)"
            )
    columns = {} if accounts is None else status_columns(accounts)
    if status is not None:
        columns[source] = status
    churned = decision.churned.fillna(False).astype(bool)
    for name, flags in columns.items():
        flags = pd.Series(flags.to_numpy(), index=ev.index, dtype="boolean")
        says = flags.fillna(False).astype(bool) & customer
        if name == source:
            undated = churned & decision.churned_at.isna()
            if undated.any():
                notes.append(
                    f"{int(undated.sum()):,} customers that {name} says churned have no churn "
                    "event or subscription end to date it: they count in the churn share, but "
                    "survival analyses (churn per customer-year, retention curves) cannot use "
                    "undated churn"
                )
            unknown = flags.isna() & customer
            if unknown.any():
                said_values, recode = "", ""
                if accounts is not None and name in accounts and len(accounts) == len(ev):
                    raw = pd.Series(accounts[name].to_numpy(), index=ev.index)[unknown]
                    counts = raw.dropna().astype(str).str.strip().value_counts()
                    if len(counts):
                        said_values = (
                            " ("
                            + ", ".join(f'"{v}" {n:,}' for v, n in counts.head(3).items())
                            + ")"
                        )
                        recode = (
                            f"; if {counts.index[0]} customers are still customers, recode "
                            f'"{counts.index[0]}" = "Active" under [tables.accounts.values.'
                            f"{name}] (or to a churned value if they left)"
                        )
                notes.append(
                    f"{int(unknown.sum()):,} customers have a {name} value that is neither "
                    f"churned nor active{said_values}; their churn is unknown and they are left "
                    f"out of churn{recode}"
                )
            continue
        if (says != churned).any():
            # Churns the column says happened, whose end the records date after the as-of
            # date: the date is early (a default taken from the latest start), not the source.
            later = says & ~churned & ev["later"].fillna(False).astype(bool)
            fix = f'set churn_source = "{name}" to take churn from the column'
            if later.any() and as_of is not None:
                fix = (
                    f"{int(later.sum()):,} of them end after the as-of date{when}: if the "
                    "export was taken after those ends, set [project] as_of (or --quarter) to "
                    f"a date after them; otherwise {fix}"
                )
            notes.append(
                f"the accounts column {name} says {int(says.sum()):,} customers churned; {said} "
                f"counts {int(churned.sum()):,} ({int((says & churned).sum()):,} in both); {fix}"
            )
    return notes


def reactivation_note(counts: dict) -> str | None:
    """One sentence on reactivations, or None when there were none."""
    if not counts.get("reactivations") and not counts.get("reactivation_events"):
        return None
    return (
        f"{counts['reactivations']:,} churns were followed by a return (a reactivation-flagged "
        "event or a new subscription starting after the churn; "
        f"{counts['reactivation_events']:,} reactivation-flagged events): "
        f"{counts['reactivated_accounts']:,} accounts came back, and an account counts as "
        "churned only when its latest churn is not followed by a return"
    )


def account_churn(
    view, as_of, ids, is_customer, setting, *, raw_tables=None
) -> tuple[ChurnDecision, pd.DataFrame]:
    """Churn per account for the account facts: the decision and the evidence behind it.

    ``view`` are the tables as of ``as_of``; ``raw_tables`` (all the data, when known) is what
    ``auto`` decides on and what tells a churned flag dated after ``as_of`` from an undated one.
    """
    ev = evidence(view, as_of, ids, raw_tables=raw_tables)
    has_subscriptions = view.get("subscriptions") is not None
    events = view.get("churn_events")
    has_events = events is not None and len(events) > 0
    auto = None
    if raw_tables is not None:
        latest = latest_date(raw_tables)
        when = max(latest, pd.Timestamp(as_of)) if latest is not None else as_of
        raw_events = raw_tables.get("churn_events")
        auto = auto_source(
            _evidence_on_everything(raw_tables, when, ids),
            raw_tables.get("subscriptions") is not None,
            raw_events is not None and len(raw_events) > 0,
        )
    accounts = view["accounts"].set_axis(ev.index)
    decision = decide(
        ev,
        setting,
        is_customer,
        has_subscriptions=has_subscriptions,
        has_events=has_events,
        accounts=accounts,
        auto=auto,
        as_of=as_of,
    )
    return decision, ev


# ---------------------------------------------------------------------------------------------
# Validation


def findings(tables, analysis: dict, as_of=None) -> list[tuple[str, str, str, str]]:
    """What validation says about churn: ``(level, table, message, fix)`` tuples.

    An unknown accounts column is an error; disagreements between the records are warnings
    (the numbers hold as of ``as_of``, default the latest date in the data); reactivations and
    the source chosen are notes.
    """
    accounts = tables.get("accounts")
    if accounts is None or "account_id" not in accounts:
        return []
    setting = str(analysis.get("churn_source", "auto") or "auto").strip()
    subs = tables.get("subscriptions")
    events = tables.get("churn_events")
    has_subs = subs is not None and len(subs) > 0
    has_events = events is not None and len(events) > 0
    if setting not in SOURCES:
        column, hint = resolve_column(accounts, setting)
        if column is None:
            return [
                (
                    "error",
                    "accounts",
                    f'[analysis] churn_source = "{setting}" is not auto, subscriptions, '
                    "churn_events or a column of accounts",
                    f"{hint}set churn_source to one of those in the config",
                )
            ]
        if column_status(accounts[column]) is None:
            examples = ", ".join(
                f'"{v}"' for v in accounts[column].dropna().astype(str).unique()[:3]
            )
            return [
                (
                    "error",
                    "accounts",
                    f'[analysis] churn_source = "{setting}": column {column} holds neither '
                    f"churned flags (True/False) nor a status with churned and active values "
                    f"({examples})",
                    (
                        # A CRM's churn date on the account (Salesforce's Churn_Date__c): the
                        # accounts file read a second time as churn events dates each churn.
                        "a churn date is read as churn events: map the accounts file a second "
                        f'time as [tables.churn_events] with churned_at = "{column}" (and '
                        'account_id), and set churn_source = "churn_events"'
                        if _dated(accounts[column])
                        else 'point churn_source at a flag or status column, or use "auto"'
                    ),
                )
            ]
    for keyword, table, present in (
        ("subscriptions", "subscriptions", subs is not None),
        ("churn_events", "churn_events", events is not None),
    ):
        if setting == keyword and not present:
            return [
                (
                    "warning",
                    "accounts",
                    f'[analysis] churn_source = "{setting}" but there is no {table} table, so '
                    "churn cannot be measured from it",
                    f'map [tables.{table}] or set churn_source = "auto"',
                )
            ]
    if not has_subs and not has_events and setting in SOURCES:
        return []
    if as_of is None:
        as_of = default_as_of(tables)
    when = None if as_of is None else pd.Timestamp(as_of).normalize()
    if when is None:
        return []
    frame = accounts.drop_duplicates("account_id").set_index("account_id", drop=False)
    ids = frame.index
    ev = evidence(tables, when, ids, raw_tables=tables)
    # Customers as the facts count them: a paid subscription (ARR > 0) or a won deal.
    customer = pd.Series(False, index=ids)
    if has_subs and "arr" in subs:
        paid = subs.loc[(subs["arr"] > 0) & (subs["start_date"] <= when), "account_id"]
        customer |= ids.isin(paid.unique())
    deals = tables.get("opportunities")
    if deals is not None and "stage" in deals:
        won = deals.loc[(deals["stage"] == "won") & ~(deals["closed_at"] > when), "account_id"]
        customer |= ids.isin(won.unique())
    decision = decide(
        ev,
        setting,
        customer,
        has_subscriptions=subs is not None,
        has_events=has_events,
        accounts=frame,
        as_of=when,
    )
    out = [
        ("warning", "churn_events" if has_events else "accounts", note, "")
        for note in decision.notes
    ]
    note = reactivation_note(decision.counts)
    if note:
        out.append(("info", "churn_events", note, ""))
    out.append(
        (
            "info",
            "churn_events" if has_events else "accounts",
            f"{describe(decision.source)} ({decision.reason}): {decision.counts['churned']:,} of "
            f"{decision.counts['customers'] - decision.counts['unknown']:,} customers churned as "
            f"of {when:%Y-%m-%d}"
            + (
                f" ({decision.counts['unknown']:,} more customers' churn is unknown)"
                if decision.counts["unknown"]
                else ""
            ),
            "",
        )
    )
    return out


def _dated(values: pd.Series) -> bool:
    """Whether a column holds dates (as dates, or as text nine in ten of whose cells read as
    ISO dates)."""
    if pd.api.types.is_datetime64_any_dtype(values):
        return True
    filled = values.dropna().astype(str).head(1000)
    if filled.empty:
        return False
    parsed = pd.to_datetime(filled, errors="coerce", format="ISO8601")
    return bool(parsed.notna().mean() >= 0.9)
