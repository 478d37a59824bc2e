"""The canonical data model: the tables an export is mapped to, their columns and types.

Every loader, validator and analysis speaks these names. Source exports are mapped onto them by
``icp.toml`` (see :mod:`icp_research.data.config`).

Column kinds
------------
``id``        text key, whitespace-stripped (``account_id``, ``opportunity_id``)
``date``      calendar date (``datetime64[ns]``, no time zone)
``money``     amount in the export's currency, ``float64`` (``$1,234.50`` -> 1234.5)
``number``    other numeric quantity, ``float64`` (employees, seats, scores)
``category``  text label; blanks, ``NULL`` and ``N/A`` are missing but meaningful words such as
              ``None`` or ``NA`` are kept as values
``stage``     opportunity stage recoded to ``won`` / ``lost`` / ``open``
``flag``      boolean (``Yes/No``, ``TRUE/FALSE``, ``1/0``, ``Y/N``)
``text``      free text (feedback); never shown without escaping
"""

from __future__ import annotations

from dataclasses import dataclass, field


@dataclass(frozen=True)
class Column:
    name: str
    kind: str
    description: str
    required: bool = False


@dataclass(frozen=True)
class Table:
    name: str
    description: str
    columns: tuple[Column, ...]
    key: tuple[str, ...] = ()
    # Attribute columns (any unmapped source column of this table) are allowed.
    open_attributes: bool = False
    foreign_keys: dict[str, str] = field(default_factory=dict)

    @property
    def required(self) -> list[str]:
        return [c.name for c in self.columns if c.required]

    @property
    def optional(self) -> list[str]:
        return [c.name for c in self.columns if not c.required]

    def column(self, name: str) -> Column | None:
        for c in self.columns:
            if c.name == name:
                return c
        return None


def _c(name, kind, description, required=False):
    return Column(name, kind, description, required)


TABLES: dict[str, Table] = {
    t.name: t
    for t in [
        Table(
            "accounts",
            "One row per company (customer, prospect or lost).",
            (
                _c("account_id", "id", "Unique account key", True),
                _c("name", "category", "Company name (display only, never a predictor)"),
                _c("industry", "category", "Industry or vertical"),
                _c("employees", "number", "Employee count"),
                _c("annual_revenue", "money", "Company annual revenue"),
                _c("country", "category", "Headquarters country"),
                _c("region", "category", "Sales region or geography"),
                _c("founded_year", "number", "Year the company was founded"),
                _c("created_at", "date", "When the account was created in the CRM"),
                _c(
                    "referral_source",
                    "category",
                    "How the account found us (Referral, Inbound ...)",
                ),
            ),
            key=("account_id",),
            open_attributes=True,
        ),
        Table(
            "opportunities",
            "One row per deal.",
            (
                _c("opportunity_id", "id", "Unique deal key", True),
                _c("account_id", "id", "Account the deal belongs to", True),
                _c(
                    "stage",
                    "stage",
                    "won / lost / open (recode source stages in [values.stage])",
                    True,
                ),
                _c("created_at", "date", "When the deal was created", True),
                _c("closed_at", "date", "When the deal was won or lost"),
                _c("amount", "money", "Deal value (ACV for subscription deals)"),
                _c("loss_reason", "category", "Why the deal was lost (incl. 'no decision')"),
                _c("type", "category", "new / expansion / renewal"),
                _c(
                    "owner",
                    "category",
                    "Deal owner (sales rep): kept in the run's data snapshot for analysts, "
                    "never shown in reports or artifacts",
                ),
                _c("source", "category", "Lead source of the deal"),
                _c(
                    "changed_at",
                    "date",
                    "When the row's stage was entered, in an opportunity-history export "
                    "(history = true: Salesforce's Last Modified Date or Stage Change Date)",
                ),
                _c(
                    "interval",
                    "category",
                    "Period the amount is per (Close's value_period: monthly, annual, one_time): "
                    "amounts per month or quarter are annualised",
                ),
            ),
            key=("opportunity_id",),
            foreign_keys={"account_id": "accounts"},
        ),
        Table(
            "subscriptions",
            "One row per subscription (contract line) with its recurring value.",
            (
                _c("account_id", "id", "Account the subscription belongs to", True),
                _c("start_date", "date", "Subscription start", True),
                _c("end_date", "date", "Subscription end (empty = active)"),
                _c("arr", "money", "Annual recurring revenue (give arr or mrr)"),
                _c("mrr", "money", "Monthly recurring revenue (arr = 12 x mrr)"),
                _c("price", "money", "Price per billing interval (with interval, instead of arr)"),
                _c("interval", "category", "Billing interval of price: month, quarter, year..."),
                _c(
                    "interval_count",
                    "number",
                    "Intervals one billing period spans (Stripe's interval_count, Paddle's "
                    "billing_cycle.frequency): 3 with interval month bills every quarter; "
                    "default 1",
                ),
                _c("plan", "category", "Plan or product"),
                _c(
                    "billing_period",
                    "category",
                    "How often it bills (monthly, annual ...): read from interval when price "
                    "and interval give the ARR, or mapped; the account's first paid "
                    "subscription's is a contract term the churn report tests",
                ),
                _c("seats", "number", "Licensed seats"),
                _c(
                    "trial_end",
                    "date",
                    "End of a free trial (Recurly's trial_ends_at, Stripe's trial_end): a "
                    "subscription that ends by then never paid (left out); one that runs past it "
                    "is paid from then",
                ),
                _c(
                    "status",
                    "category",
                    "Billing status as exported (trialing / active / paused / canceled ...): a "
                    "trial has no ARR; a cancelled one without end_date is a warning",
                ),
            ),
            foreign_keys={"account_id": "accounts"},
        ),
        Table(
            "churn_events",
            "One row per churn (logo lost), with the reason when known.",
            (
                _c("account_id", "id", "Account that churned", True),
                _c("churned_at", "date", "Churn date", True),
                _c("reason", "category", "Churn reason"),
                _c("feedback", "text", "Free-text churn feedback"),
                _c(
                    "reactivation",
                    "flag",
                    "The row records the account coming back (a reactivation), not a churn",
                ),
            ),
            foreign_keys={"account_id": "accounts"},
        ),
        Table(
            "usage",
            "Product usage: one row per account, date and metric.",
            (
                _c("account_id", "id", "Account", True),
                _c("date", "date", "Day, week or month of the measurement", True),
                _c("metric", "category", "Metric name (active_users, reports_created ...)", True),
                _c("value", "number", "Metric value", True),
                _c("user_id", "id", "User behind the row (counts distinct users)"),
            ),
            foreign_keys={"account_id": "accounts"},
        ),
        Table(
            "nps",
            "NPS survey responses.",
            (
                _c("account_id", "id", "Account", True),
                _c("date", "date", "Response date", True),
                _c("score", "number", "0-10 score", True),
            ),
            foreign_keys={"account_id": "accounts"},
        ),
        Table(
            "feedback",
            "Free text: churn feedback, loss notes, call notes.",
            (
                _c("account_id", "id", "Account", True),
                _c("text", "text", "The feedback text", True),
                _c("date", "date", "When it was written"),
                _c("source", "category", "churn / loss / call note"),
                _c("opportunity_id", "id", "Deal the note belongs to"),
            ),
            foreign_keys={"account_id": "accounts"},
        ),
        Table(
            "survey",
            "Customer survey or interview answers.",
            (
                _c("account_id", "id", "Account", True),
                _c("question", "category", "Question (or its short code)", True),
                _c("answer", "category", "Answer", True),
                _c("date", "date", "Answer date"),
            ),
            foreign_keys={"account_id": "accounts"},
        ),
        Table(
            "trials",
            "Free trials: one row per trial subscription, what trial conversion counts; made "
            "from a billing export's trials (a trial end, or a trial status) when subscriptions "
            "load, or loaded from its own export.",
            (
                _c("account_id", "id", "Account", True),
                _c("start_date", "date", "Trial start", True),
                _c(
                    "trial_end",
                    "date",
                    "Trial end (empty: unknown, a trial still running by its status)",
                ),
                _c(
                    "end_date",
                    "date",
                    "The subscription's end: by the trial end, it never paid (empty: it "
                    "runs on, paid from the trial end)",
                ),
            ),
            foreign_keys={"account_id": "accounts"},
        ),
        Table(
            "stage_history",
            "Stage history: one row per deal and stage it entered (what the stage funnel "
            "counts); also made from an opportunity-history export (history = true).",
            (
                _c("opportunity_id", "id", "Deal", True),
                _c("stage", "category", "The stage, as the CRM names it", True),
                _c("entered_at", "date", "When the deal entered it"),
            ),
            foreign_keys={"opportunity_id": "opportunities"},
        ),
        Table(
            "deal_roles",
            "Buying committee: one row per person role on a deal (no names or emails kept).",
            (
                _c("opportunity_id", "id", "Deal", True),
                _c("role", "category", "economic buyer / champion / technical approver ...", True),
                _c("title", "category", "Job title"),
                _c("department", "category", "Department or function"),
            ),
            foreign_keys={"opportunity_id": "opportunities"},
        ),
    ]
}

#: The date columns of each table (from the model above): what as-of filtering and the default
#: as-of date look at.
DATE_COLUMNS: dict[str, list[str]] = {
    name: [c.name for c in table.columns if c.kind == "date"] for name, table in TABLES.items()
}

STAGES = ("won", "lost", "open")

# Columns that identify people. They are never needed by an analysis and are dropped at load
# unless the config maps them explicitly. Matched on the source column name in lower case with
# camelCase split and punctuation as spaces ("ownerEmail" -> "owner email").
PERSONAL_COLUMN_PATTERNS = (
    r"e ?mail",
    r"phone",
    r"^(?:mobile|cell|mobile (?:phone|number|no))$",
    r"\bfax\b",
    r"\btel(?:ephone)?\b",
    # Names of people: contacts, reps and owners, and the parts of a person's name.
    r"\b(?:first|last|full|given|family|sur|middle|nick|maiden|contact|owner|champion|buyer|rep"
    r"|user|manager|person|signer|signatory|sponsor|approver|assignee|agent|csm|ae|sdr|bdr"
    r"|admin|employee) ?name\b",
    r"\bcontact\b",
    r"\bowner\b",
    r"^(?:champion|economic buyer|decision maker)$",
    r"\b(?:created|modified|updated|edited|closed|converted) by\b",
    r"\bassigned to\b",
    r"\bsales ?rep\b",
    r"\baccount (?:executive|manager)\b",
    r"\bperson\b",
    # A person's profile; not a company's page or its follower count (company metrics).
    r"linked ?in(?!.*\b(?:followers?|company|page)\b)",
    r"twitter(?!.*\b(?:followers?|company|page)\b)",
    r"skype",
    r"whatsapp",
    r"street",
    r"address",
    r"\bssn\b",
    r"social security",
    r"passport",
    r"birth",
)


def personal_column(name) -> bool:
    """True when a source column name looks like data about a person (see the patterns)."""
    import re

    text = re.sub(r"([a-z0-9])([A-Z])", r"\1 \2", str(name))
    text = " ".join(re.sub(r"[^0-9a-z]+", " ", text.lower()).split())
    return any(re.search(pattern, text) for pattern in PERSONAL_COLUMN_PATTERNS)


#: What the latest date of each date column says, in words for the run's progress line
#: ("as of 2026-09-30, the latest closed deal"). Only what happened: an open deal's expected
#: close date and a contract end that is not a churn are plans (see :func:`as_of_basis`).
EVENT_WORDS: dict[tuple[str, str], str] = {
    ("accounts", "created_at"): "the latest account created",
    ("opportunities", "created_at"): "the latest deal created",
    ("opportunities", "closed_at"): "the latest closed deal",
    ("subscriptions", "start_date"): "the latest subscription start",
    ("subscriptions", "end_date"): "the latest subscription end that is a churn",
    ("trials", "trial_end"): "the latest trial end",
    ("churn_events", "churned_at"): "the latest churn event",
    ("usage", "date"): "the latest usage record",
    ("nps", "date"): "the latest NPS response",
    ("feedback", "date"): "the latest feedback note",
    ("survey", "date"): "the latest survey answer",
}


def event_dates(tables: dict, name: str, column: str):
    """The values of ``name.column`` that record something that happened (a Series, possibly
    empty), leaving out plans: the close dates of deals not won or lost (an open deal's is its
    expected close) and subscription ends that are not a churn: only each account's last end
    counts, and only when none of its subscriptions runs on without an end (a renewal or an
    add-on carries on after the others end)."""
    import pandas as pd

    frame = tables.get(name)
    if frame is None or column not in frame:
        return pd.Series([], dtype="datetime64[ns]")
    values = frame[column]
    if (name, column) == ("opportunities", "closed_at") and "stage" in frame:
        values = values[frame["stage"].isin(["won", "lost"]).fillna(False).to_numpy(bool)]
    elif (name, column) == ("subscriptions", "end_date"):
        if "account_id" not in frame:
            return values.iloc[:0]
        per = pd.DataFrame(
            {
                "account_id": frame["account_id"].to_numpy(),
                "open": values.isna().to_numpy(),
                "end": values.to_numpy(),
            }
        ).groupby("account_id", sort=False, observed=True)
        last = per.agg(open=("open", "any"), end=("end", "max"))
        values = last.loc[~last["open"], "end"]
    return values.dropna()


#: Ends that may be scheduled rather than past: a churned subscription's paid term, a trial's
#: end. They set the as-of date only when nothing else that happened is dated.
_PLANNED_ENDS = (("subscriptions", "end_date"), ("trials", "trial_end"), ("trials", "end_date"))


def as_of_basis(tables: dict, today=None):
    """``(date, words)``: the as-of date when none is given and what set it, in words
    ("the latest closed deal (opportunities.closed_at)"); ``(None, "")`` when nothing is dated.

    The date is the latest date of something that happened and is not after ``today``
    (default: the real today): a deal created, a deal won or lost, an account created, a
    subscription starting, a subscription end that is a churn, a churn event, a usage, NPS,
    feedback or survey record. Open deals' expected close dates and contract ends that are not
    a churn are plans: they never set it, whatever today is (an open deal expected to close
    last week, in an export taken months ago, would otherwise move the analysis past the end
    of the data); nor does a churn's or a trial's end later than everything else that
    happened (most likely a cancelled subscription's paid term, or a trial still running,
    past the export), unless nothing else is dated. When nothing that happened is dated on or before today, today.
    """
    import datetime as dt

    import pandas as pd

    today = pd.Timestamp(today or dt.date.today()).normalize()
    end = today + pd.Timedelta(days=1)  # anything during today counts
    best, where = None, None
    dated = False
    ends = None  # (the latest planned end, its column), weighed last
    for name, columns in DATE_COLUMNS.items():
        frame = tables.get(name)
        if frame is None:
            continue
        for column in columns:
            if column not in frame:
                continue
            if frame[column].notna().any():
                dated = True
            values = event_dates(tables, name, column)
            past = values[values < end]
            if not len(past):
                continue
            if (name, column) in _PLANNED_ENDS:
                if ends is None or past.max() > ends[0]:
                    ends = (past.max(), (name, column))
                continue
            value = past.max()
            if best is None or value > best:
                best, where = value, (name, column)
    # A cancelled subscription runs to the end of the term paid for, a trial to the end it
    # was given: an end later than anything else that happened is most likely scheduled,
    # after the export (a first user's run was "as of 2026-11-06, the latest trials.trial_end"
    # for an export of 2026-10-31).
    if ends is not None and best is None:
        best, where = ends
    if best is None:
        if not dated:
            return None, ""
        return today.date(), "today: nothing that happened is dated on or before it"
    name, column = where
    words = EVENT_WORDS.get(where, f"the latest {name}.{column}")
    return pd.Timestamp(best).date(), f"{words} ({name}.{column})"


def default_as_of(tables: dict, today=None):
    """The as-of date when none is given (see :func:`as_of_basis`), as a ``datetime.date``;
    None when nothing is dated."""
    return as_of_basis(tables, today)[0]


def dated_extreme(tables: dict, latest: bool = True):
    """``(value, "table.column")`` of the latest (or earliest) value of any date column of
    :data:`DATE_COLUMNS` in ``tables``, or ``(None, None)`` when nothing is dated."""
    best, where = None, None
    for name, columns in DATE_COLUMNS.items():
        frame = tables.get(name)
        if frame is None:
            continue
        for column in columns:
            if column in frame and frame[column].notna().any():
                value = frame[column].max() if latest else frame[column].min()
                if best is None or (value > best if latest else value < best):
                    best, where = value, f"{name}.{column}"
    return best, where
