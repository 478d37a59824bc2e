"""The statement: the ICP in words (the seeds' template), the need it meets (survey answers
or the config's own feedback themes), and the not-a-fit list."""

from __future__ import annotations

import re
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field

import numpy as np
import pandas as pd

from icp_research.analyses.antipatterns import Condition
from icp_research.analyses.blueprint.conditions import condition_interval, condition_values
from icp_research.analyses.blueprint.rules import Rule
from icp_research.analyses.blueprint.text import join_and, join_or
from icp_research.analyses.blueprint.upstream import Upstream
from icp_research.data.study import Study
from icp_research.errors import AnalysisError, NotEnoughData
from icp_research.formatting import fmt_count
from icp_research.methods.stats import adjust_pvalues, two_proportion_pvalue

_NEED_QUESTIONS = (r"why|reason|bought|buy", r"need|goal|job|outcome|use_?case", r"problem|pain")


_INDUSTRY = ("industry", "vertical", "sector")


_GEOGRAPHY = ("region", "country", "geography")


def survey_need(study: Study, in_icp: pd.Series, alpha: float) -> dict | None:
    """The answer ICP customers give significantly more often to a 'why did you buy' question.

    Returns ``{"answer", "question", "rate_icp", "rate_rest", "n_icp", "n_rest", "q_value"}``
    or None (no survey, no such question, or no answer stands out).
    """
    if not study.has("survey"):
        return None
    survey = study.tables["survey"]
    if not {"account_id", "question", "answer"} <= set(survey.columns):
        return None
    facts = study.facts
    customers = facts.loc[facts["is_customer"].fillna(False).astype(bool), "account_id"]
    icp_ids = set(
        facts.loc[
            in_icp.to_numpy() & facts["is_customer"].fillna(False).to_numpy(dtype=bool),
            "account_id",
        ]
    )
    answers = survey[survey["account_id"].isin(set(customers))].dropna(subset=["answer"])
    questions = [str(q) for q in answers["question"].dropna().unique()]
    for pattern in _NEED_QUESTIONS:
        for question in sorted(q for q in questions if re.search(pattern, q, re.IGNORECASE)):
            rows = answers[answers["question"] == question].drop_duplicates("account_id")
            icp = rows["account_id"].isin(icp_ids).to_numpy()
            n1, n2 = int(icp.sum()), int((~icp).sum())
            if n1 < 20 or n2 < 20:
                continue
            counts = rows.groupby("answer")["account_id"].agg(
                icp=lambda ids: int(ids.isin(icp_ids).sum()), total="size"
            )
            k1 = counts["icp"].to_numpy(float)
            k2 = (counts["total"] - counts["icp"]).to_numpy(float)
            p = two_proportion_pvalue(k1, n1, k2, n2)
            q = adjust_pvalues(p)
            rate1, rate2 = k1 / n1, k2 / n2
            better = (rate1 > rate2) & (q < alpha)
            if not better.any():
                continue
            best = int(np.argmax(np.where(better, rate1, -1)))
            return {
                "answer": str(counts.index[best]),
                "question": question,
                "rate_icp": float(rate1[best]),
                "rate_rest": float(rate2[best]),
                "n_icp": n1,
                "n_rest": n2,
                "q_value": float(q[best]),
            }
    return None


def theme_need(study: Study, alpha: float) -> dict | None:
    """The project's own feedback theme best customers mention significantly more often.

    Only themes the ``[codebook]`` of the config names count: the built-in themes are
    complaints and objections (pricing, missing integration), not what customers buy for.
    Returns ``{"answer", "theme", "source", "rate_icp", "rate_rest", "q_value"}`` (rates: best
    customers among customers whose notes mention the theme / do not) or None.
    """
    from icp_research.methods.codebook import DEFAULT_CODEBOOK

    section = study.config.codebook or {}
    own = {
        str(name).strip()
        for name, rules in section.items()
        if name not in ("defaults", "add") and name not in DEFAULT_CODEBOOK and rules
    }
    if not own or not any(study.has(t) for t in ("feedback", "churn_events", "survey")):
        return None
    from icp_research.analyses.voc import feedback_themes
    from icp_research.methods.codebook import theme_label

    try:
        tests = feedback_themes(study).tables.get("tests", pd.DataFrame())
    except (AnalysisError, NotEnoughData, ValueError, KeyError):
        return None
    if tests is None or tests.empty:
        return None
    better = tests[
        (tests["outcome"] == "best_customer")
        & tests["theme"].isin(own)
        & (tests["q_value"] < alpha)
        & (tests["effect"] > 1)
    ]
    if better.empty:
        return None
    row = better.sort_values(["q_value", "effect"], ascending=[True, False]).iloc[0]
    return {
        "answer": theme_label(row["theme"]),
        "theme": str(row["theme"]),
        "source": "feedback themes",
        "rate_icp": float(row["rate_with"]),
        "rate_rest": float(row["rate_without"]),
        "q_value": float(row["q_value"]),
    }


NEED_MISSING = (
    "The statement says nothing about the need the product meets: no survey answer sets ICP "
    "customers apart, and none of the config's own [codebook] themes sets best customers apart "
    "in their feedback. To draft it from data, add a survey table ([tables.survey]: "
    "account_id, question, answer) with a question such as 'Why did you buy?', or [codebook] "
    "themes that name what customers "
    'buy for (e.g. forecast_accuracy = ["forecast", "accuracy"]); or write the statement '
    "yourself (the statement parameter overrides the draft)."
)


def _size_phrase(condition: Condition, labels: Labels | None = None) -> str:
    """A size range in words: "100–999 employees", "1,000+ employees", "fewer than 60
    employees"; other numeric conditions as :func:`clause` words them."""
    if condition.attribute != "employees" or condition_interval(condition) is None:
        return clause(condition, labels)[1]
    unit = column_label("employees", labels)
    low, high = condition_interval(condition)
    whole = all(np.isinf(v) or float(v).is_integer() for v in (low, high))
    if condition.operator == "between":
        if whole:
            return f"{int(low):,}–{int(high) - 1:,} {unit}"
        return f"{low:,g} to under {high:,g} {unit}"
    if condition.operator == "at_least":
        return f"{int(low):,}+ {unit}" if whole else f"{low:,g}+ {unit}"
    return f"fewer than {high:,g} {unit}"


_ACRONYMS = {"crm", "sso", "nps", "arr", "acv", "mrr", "erp", "hr", "it", "api", "saas", "cdp"}


# Category values that mean "none of it": ``crm = None`` reads "no CRM".
_NONE_VALUES = {"none", "(none)", "nothing"}


@dataclass(frozen=True)
class Labels:
    """How the statement names columns and values: the config's ``[labels]`` (columns) and
    ``[labels.values.<column>]`` (values), else tidy names."""

    columns: Mapping = field(default_factory=dict)
    values: Mapping = field(default_factory=dict)

    @classmethod
    def of(cls, study: Study) -> Labels:
        config = study.config
        return cls(
            dict(getattr(config, "labels", None) or {}),
            dict(getattr(config, "value_labels", None) or {}),
        )

    def column(self, attribute: str) -> str:
        given = self.columns.get(str(attribute))
        if given:
            return str(given)
        name, colon, item = str(attribute).partition(": ")  # a multi-select's "column: value"
        words = name.replace("_", " ").split()
        if len(words) > 1 and words[-1] == "c":
            words = words[:-1]  # Salesforce's custom-field suffix: Tech_Stack__c
        tidy = " ".join(w.upper() if w.lower() in _ACRONYMS else w for w in words)
        return (tidy + colon + item) if tidy else str(attribute)

    def value(self, attribute: str, value) -> str | None:
        """The configured label of a value, or None."""
        given = (self.values.get(str(attribute)) or {}).get(str(value))
        if given:
            return str(given)
        if isinstance(value, str) and _ENUM_CODE.fullmatch(value):
            # A CRM's internal code (HubSpot's HOSPITAL_HEALTH_CARE) in the words it stands for.
            return " ".join(w.capitalize() for w in value.split("_"))
        return None


#: A value written as a code: capitals and digits in two or more words joined by "_".
_ENUM_CODE = re.compile(r"[A-Z][A-Z0-9]*(?:_[A-Z0-9]+)+")

_TIDY = Labels()


def column_label(attribute: str, labels: Labels | None = None) -> str:
    """An attribute name as a stakeholder reads it: ``referral_source`` -> "referral source",
    ``crm`` -> "CRM", or its ``[labels]`` entry (the ICP statement is prose; rules keep the
    column names)."""
    return (labels or _TIDY).column(attribute)


def _number(x) -> str:
    x = float(x)
    return f"{int(x):,}" if x.is_integer() else f"{x:,.4g}"


def clause(condition: Condition, labels: Labels | None = None) -> tuple[str, str]:
    """A condition as words after "companies": ``(preposition, words)``.

    ``crm = None`` -> ``("with", "no CRM")``; ``employees < 60`` -> ``("with", "fewer than 60
    employees")``; ``industry = Education`` -> ``("in", "Education")``; ``crm in {HubSpot,
    Salesforce}`` -> ``("with", "HubSpot or Salesforce as CRM")``. The rule's code form stays
    in icp.json; this is the prose of the statement.
    """
    labels = labels or _TIDY
    attribute, operator, value = condition.attribute, condition.operator, condition.value
    label = column_label(attribute, labels)
    if attribute == "employees" and condition_interval(condition) is not None:
        return "with", _size_phrase(condition, labels)
    if operator == "is_missing":
        return "with", f"no {label} on record"
    values = condition_values(condition)
    if values is not None:
        levels = sorted(values)
        yes_no = {v.strip().lower() for v in levels}
        if (
            len(levels) == 1
            and yes_no <= {"true", "false"}
            and not labels.value(attribute, levels[0])
        ):
            # A yes/no column ("uses_mixpanel = False"): "with uses mixpanel: no", not "with
            # False as uses mixpanel".
            return "with", f"{label}: {'yes' if yes_no == {'true'} else 'no'}"
        if attribute in _INDUSTRY or attribute in _GEOGRAPHY:
            return "in", join_or([labels.value(attribute, v) or v for v in levels])
        none = [v for v in levels if v.strip().lower() in _NONE_VALUES]
        named = [labels.value(attribute, v) or v for v in levels if v not in none]
        words = [f"{join_or(named)} as {label}"] if named else []
        # "None" reads "no CRM" (or its own label, which is then the whole phrase).
        words += list(dict.fromkeys(labels.value(attribute, v) or f"no {label}" for v in none))
        return "with", " or ".join(words)
    if operator == "less_than":
        return "with", f"{label} under {_number(value)}"
    if operator == "at_least":
        return "with", f"{label} of {_number(value)} or more"
    if operator == "between":
        return "with", f"{label} from {_number(value[0])} to under {_number(value[1])}"
    return "with", condition.phrase()


def condition_words(condition: Condition, labels: Labels | None = None) -> str:
    """A condition as words after "accounts", preposition included: ``crm = None`` -> "with
    no CRM", ``industry = Education`` -> "in Education" (:func:`clause`). The churn, lost-deal
    and pattern reports word their rules with it; the code form stays in their CSV files."""
    preposition, words = clause(condition, labels)
    return f"{preposition} {words}"


def conditions_words(conditions: Sequence[Condition], labels: Labels | None = None) -> str:
    """Conditions that all hold, as words after "accounts": "in FinTech or SaaS and with
    100–999 employees"."""
    return _joined([clause(c, labels) for c in conditions], " and ")


def rule_words(rule: Rule, labels: Labels | None = None) -> tuple[str, str]:
    """A rule (all its conditions) as words after "companies": ``(preposition, words)``."""
    clauses = [clause(c, labels) for c in rule.conditions]
    return clauses[0][0], _joined(clauses, " and ", first_preposition=False)


def _joined(clauses: Sequence[tuple[str, str]], last: str, *, first_preposition=True) -> str:
    """Clauses joined with commas and ``last`` before the final one (a serial comma from three
    on); a preposition is written only where it changes: "with no CRM, fewer than 60
    employees, or in Education"."""
    words, previous = [], None if first_preposition else clauses[0][0] if clauses else None
    for preposition, text in clauses:
        words.append(text if preposition == previous else f"{preposition} {text}")
        previous = preposition
    if len(words) <= 2:
        return last.join(words)
    return ", ".join(words[:-1]) + "," + last + words[-1]


def not_a_fit(exclude: Sequence[Rule], labels: Labels | None = None) -> str:
    """The exclude rules in words: "companies with no CRM, fewer than 60 employees, or in
    Education"."""
    return "companies " + _joined([rule_words(r, labels) for r in exclude], " or ")


def _levels(rule: Rule) -> list[str]:
    values = condition_values(rule.conditions[0])
    return sorted(values) if values else []


def _shown(rule: Rule | None, labels: Labels | None = None) -> list[str]:
    """A rule's levels as the statement names them (``[labels.values.<column>]``)."""
    if rule is None:
        return []
    labels = labels or _TIDY
    return [labels.value(rule.attribute, v) or v for v in _levels(rule)]


#: Places written with "the" in a sentence ("in the United Kingdom").
_WITH_THE = re.compile(
    r"(?i)^(?:united\s|netherlands$|philippines$|czech republic$|bahamas$|gambia$|"
    r"dominican republic$|central african republic$|maldives$|seychelles$)"
)


def _place(name: str) -> str:
    """A country as a sentence names it: "the United Kingdom", "Germany"."""
    text = str(name)
    return f"the {text}" if _WITH_THE.match(text.strip()) else text


def draft_statement(
    include: list[Rule], exclude: list[Rule], need: dict | None, labels: Labels | None = None
) -> tuple[str, str]:
    """``(name, statement)`` in the seeds' template, from the rules."""
    filters = [r for r in include if r.role == "filter"]
    signals = [r for r in include if r.role == "signal"]
    industry = next((r for r in filters if r.attribute in _INDUSTRY and _levels(r)), None)
    sizes = [
        r for r in filters if r.attribute not in _INDUSTRY and condition_interval(r.conditions[0])
    ]
    places = [r for r in filters if r.attribute in _GEOGRAPHY and _levels(r)]
    others = [r for r in filters if r not in (industry, *sizes, *places)]
    adjective = ""
    size = next((r for r in sizes if r.attribute == "employees"), None)
    if size is not None:
        adjective = {"between": "mid-size", "at_least": "larger", "less_than": "smaller"}.get(
            size.conditions[0].operator, ""
        )
    kinds = join_and(_shown(industry, labels))
    company = " ".join(w for w in (adjective, kinds, "companies") if w)
    details = [_size_phrase(r.conditions[0], labels) for r in sizes]
    if details:
        company += f" ({'; '.join(details)})"
    if places:
        company += " in " + join_or([_place(v) for r in places for v in _shown(r, labels)])
    conditions = [rule_words(rule, labels)[1] for rule in others]
    sentence = f"This product fits {company}"
    # The need comes from the data (survey answers, feedback themes) or is left out: the
    # statement is read as written, so it never holds a placeholder.
    if need:
        sentence += f" that need {need['answer'][:1].lower() + need['answer'][1:]}"
        sentence += f" and have {join_and(conditions)}." if conditions else "."
    else:
        sentence += f" that have {join_and(conditions)}." if conditions else "."
    parts = [sentence]
    if signals:
        said = [
            f"{column_label(r.attribute, labels)} is {join_or(_shown(r, labels))}"
            if _levels(r)
            else rule_words(r, labels)[1]
            for r in signals
        ]
        parts.append(f"They convert best when {join_or(said)}.")
    if exclude:
        parts.append(f"Not a fit: {not_a_fit(exclude, labels)}.")
    name_parts = []
    if adjective:
        name_parts.append(adjective[:1].upper() + adjective[1:])
    name_parts.append(" & ".join(_shown(industry, labels)) if industry else "companies")
    name = " ".join(name_parts)
    tech = [r for r in others if _levels(r)]
    if tech:
        name += " on " + " / ".join(_shown(tech[0], labels))
    if places:
        name += " in " + " / ".join(v for r in places for v in _shown(r, labels))
    return name, " ".join(parts)


def channel_statement(channels: list[Rule], labels: Labels | None = None) -> str:
    """What opens a statement when no trait of the company but a channel (how the account came
    to us: ``role`` ``signal``) held up: the channel with its evidence, and that it says where
    to find customers, not who they are."""
    said, evidence = [], []
    for rule in channels[:3]:
        words = (
            f"{column_label(rule.attribute, labels)} is {join_or(_shown(rule, labels))}"
            if _levels(rule)
            else rule_words(rule, labels)[1]
        )
        said.append(words)
        if rule.evidence:
            sentence = rule.evidence[0].sentence()
            evidence.append(f"{words[:1].upper()}{words[1:]}, {sentence}")
    more = f" (and {len(channels) - 3} more)" if len(channels) > 3 else ""
    return (
        f"How accounts came to us made a difference: they convert best when "
        f"{join_or(said)}{more}. {' '.join(evidence)} That says where to find customers, "
        "not who they are, so it defines no ICP on its own (see the include rules). "
    )


#: Who succeeded, by outcome, for "nothing measured separates ...".
_SUCCEEDED = {
    "won": "winners",
    "retained": "customers who stayed",
    "best_customer": "best customers",
}


#: What more of the same data would narrow the effects left open, by outcome: the statement of
#: a billing-only project (no deals) must not ask for closed deals.
#: What the power statement is about, after "too little data to tell".
_TELL_APART = {
    "won": "winners from the rest",
    "retained": "customers who stayed from those who left",
    "best_customer": "best customers from the rest",
}

_MORE_DATA = {
    "won": "more closed deals",
    "retained": "more customers with a year behind them",
    "best_customer": "more customers",
}


def detectable_effects(upstream: Upstream, outcome: str | None) -> tuple[list[str], list[str]]:
    """What the predictor analysis could have detected for ``outcome``: ``(powered, thin)``.

    ``powered`` names each predictor with no evidence whose test would likely (80% power) have
    detected an effect of the size shown ("employees (±6 points)"); ``thin`` the predictors
    for which only very large effects were detectable (the analysis' ``underpowered``)."""
    from icp_research.analyses.significance import _mde_phrase

    summary = upstream.predictor_summary
    needed = {"outcome", "predictor", "verdict", "mde", "mde_unit", "underpowered"}
    if outcome is None or summary is None or summary.empty or not needed <= set(summary):
        return [], []
    rows = summary[(summary["outcome"] == outcome) & (summary["verdict"] != "predicts")]
    thin_rows = rows["underpowered"].fillna(True).astype(bool)
    powered = [
        f"{row.predictor} ({_mde_phrase(row.mde, row.mde_unit)})"
        for row in rows[~thin_rows & (rows["verdict"] == "no evidence")].itertuples()
        if np.isfinite(row.mde)
    ]
    return powered, [str(p) for p in rows.loc[thin_rows, "predictor"]]


#: Attributes a statement names one by one; the predictor report lists the rest.
MAX_LISTED = 6


def _first_of(items: list[str], sep: str = "; ") -> str:
    """The first :data:`MAX_LISTED` items, and how many more the predictor report lists."""
    if len(items) <= MAX_LISTED:
        return sep.join(items)
    return sep.join(items[:MAX_LISTED]) + f"{sep}and {len(items) - MAX_LISTED:,} more attributes"


def without_signals(powered: list[str], uncertain: list[Rule]) -> tuple[list[str], list[str]]:
    """The detectable-effect phrases of :func:`detectable_effects` without the attributes an
    uncertain rule favours, and those rules' texts. Such an attribute was not "found none":
    it was suggestive (or part of a combination significant earlier) and not confirmed, so
    more of the same data may confirm it; and one attribute's detectable effect says nothing
    of traits that only work together (a planted "Snowflake users of 200-2,000 employees"
    at 2x was listed as found none, with "other attributes are the likelier next step")."""
    signals = [r for r in uncertain if getattr(r, "direction", "") == "favour"]
    named = {c.attribute for r in signals for c in r.conditions}
    kept = [p for p in powered if p.rsplit(" (", 1)[0] not in named]
    return kept, [r.text for r in signals]


def no_icp_statement(
    study: Study,
    upstream: Upstream,
    uncertain: list[Rule],
    outcome: str | None = None,
    *,
    excluded: bool = False,
    channel: bool = False,
) -> str:
    """The statement when no ICP can be drawn. ``excluded``: an exclude rule held up, and
    ``channel``: a channel (how accounts came) held up; either is said before this text, which
    then speaks of "nothing else" and, after a channel, does not send the reader to how
    accounts came to us."""
    other = excluded or channel
    facts = study.facts
    n_accounts = len(facts)
    n_customers = int(facts["is_customer"].fillna(False).sum())
    known = (
        f"({fmt_count(n_accounts, 'account')} and {fmt_count(n_customers, 'customer')} known on "
        f"{study.as_of:%Y-%m-%d}, the data the ICP is chosen on)"
    )
    ran = not (upstream.caveats and not upstream.sources.get("significance"))
    powered, thin = detectable_effects(upstream, outcome) if ran else ([], [])
    powered, signals = without_signals(powered, uncertain)
    more = _MORE_DATA.get(outcome, "more data")
    if powered and not study.variation.get("won"):
        # The data could have shown effects of this size and did not: waiting for more of the
        # same data is unlikely to change that; other attributes might.
        who = _SUCCEEDED.get(outcome, "successful accounts")
        elsewhere = "what the company uses, how it buys" + (
            "" if channel else ", how it came to us"
        )
        text = (
            f"No ICP can be drawn from this data: nothing {'else ' if other else ''}measured "
            f"separates {who} from the rest in a way that held up {known}. On that data the "
            "predictor analysis would likely have detected effects of these sizes, over all of "
            f"it, and found none: {_first_of(powered)}. Smaller effects cannot be ruled out "
            f"({more} would narrow that), nor one that began only in the latest quarters, "
            "diluted in the years before (the predictor report screens those quarters for it), but "
            f"other attributes in the exports ({elsewhere}) are the likelier next step."
        )
        if signals:
            text = text.removesuffix(
                f", but other attributes in the exports ({elsewhere}) are the likelier next step."
            ) + (
                f". Not so for {'; '.join(signals[:3])}"
                f"{f' and {len(signals) - 3} more' if len(signals) > 3 else ''}: suggestive "
                "signals that did not hold up or could not be checked (see the uncertain rules), "
                f"which {more} could confirm or rule out; these sizes are of one "
                "attribute at a time and do not bound traits that work only together."
            )
        if thin:
            text += (
                f" Only {join_and(thin) if len(thin) <= MAX_LISTED else _first_of(thin, ', ')}"
                f" had too little data to tell {_TELL_APART.get(outcome, 'on that outcome')} "
                f"(on other outcomes the predictor report says which could); {more} would settle "
                "those."
            )
        if uncertain:
            text += f" {_hypotheses(len(uncertain))} to test in discovery calls."
        return text
    characteristic = (
        "no other account characteristic"
        if excluded
        else "no characteristic of the company"
        if channel
        else "no account characteristic"
    )
    why = f"{characteristic} predicted success in a way that held up in the confirmation quarters"
    if not ran:
        why = "the predictor analysis could not be run"
    text = f"No ICP can be drawn from this data yet: {why} {known}."
    unmeasurable = study.variation.get("won")
    if unmeasurable:
        # More deals of the same export cannot help when it never records a lost deal.
        hypotheses = f" {_hypotheses(len(uncertain))} to test." if uncertain else ""
        return (
            f"{text} Win rates are not measurable: {unmeasurable}; export lost deals too (the "
            f"CRM's opportunities, not orders) rather than waiting for more deals.{hypotheses}"
        )
    deals = study.has("opportunities")
    if uncertain:
        text += f" {_hypotheses(len(uncertain))} to test in discovery calls"
        text += (
            "; re-run when more deals have closed."
            if deals
            else "; re-run when more customers have had time to stay or leave."
        )
    elif deals:
        text += " Re-run when more deals have closed and customers have had time to stay or leave."
    else:
        text += " Re-run when more customers have had time to stay or leave."
    return text


def _hypotheses(count: int) -> str:
    """'1 uncertain rule is a hypothesis' / '3 uncertain rules are hypotheses'."""
    if count == 1:
        return "1 uncertain rule is a hypothesis"
    return f"{count} uncertain rules are hypotheses"
