"""Anti-patterns: segments that do significantly worse, written as candidate exclude rules.

The churn and lost-deal analyses compare every level of every candidate attribute with the rest
(numeric attributes in bins, rare categories pooled, missing as its own level). The levels that
are significantly *worse* after multiple-testing correction -- faster churn, a lower win rate, a
larger share of "no decision" losses -- become candidate exclude rules for the ICP blueprint, with
their evidence in words ("Accounts with employees under 60 churn 2.9x as fast ...").

Each rule carries a machine-readable condition: ``attribute``, ``operator`` and ``value``, in the
raw account columns (a size segment is written as its employee range), so that the blueprint or
a lead list can apply it with :func:`apply_rules`.

Operators
---------
``equals``     the value as text (``crm equals "None"``: the literal level, not a missing value)
``in``         one of a list of texts (the rare levels pooled into ``(other)``)
``less_than``  a number below ``value``
``at_least``   a number at or above ``value``
``between``    ``value = [lower, upper]``: lower <= number < upper
``is_missing`` no value on record

Files
-----
Each report writes its own part, ``anti_patterns_churn.csv`` (churn report) and
``anti_patterns_deals.csv`` (lost-deal report), so that reports running in parallel never write
the same file; :func:`read_anti_patterns` reads and merges whichever parts a run produced. The
``value`` column is JSON (``"None"``, ``60``, ``[60, 150]``, ``["Media", "Retail"]``), so that a
level such as ``None`` or ``NA`` survives a round trip through CSV readers. ``rule`` is the rule
as code (``crm = None``), ``words`` the same rule as the reports say it (``with no CRM``, with
the config's ``[labels]``), and ``statement`` its evidence in a sentence.
"""

from __future__ import annotations

import json
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import pandas as pd

from icp_research.artifacts import Artifact, read_artifact
from icp_research.data.config import SEGMENT_DEFAULTS
from icp_research.data.facts import segment_bounds
from icp_research.formatting import fmt_count, fmt_number, fmt_p
from icp_research.methods.binning import MISSING, OTHER, apply_bins, cut_points, pool_rare_levels
from icp_research.scoring.schema import OPERATORS

SEGMENT = "size_segment"

# Columns of anti_patterns_*.csv, in order.
ANTI_PATTERN_COLUMNS = [
    "rule_id",
    "source",
    "outcome",
    "status",
    "attribute",
    "operator",
    "value",
    "rule",
    "words",
    "level_attribute",
    "level",
    "statement",
    "accounts",
    "share_of_accounts",
    "n",
    "events",
    "rate_level",
    "rate_rest",
    "effect_name",
    "effect",
    "ci_low",
    "ci_high",
    "p_value",
    "q_value",
    "adjusted_p",
    "explained_by",
    "reasons",
    "arr_at_risk",
    "open_pipeline",
]


@dataclass(frozen=True)
class Condition:
    """A test on one account column: ``attribute operator value`` (see the module docstring)."""

    attribute: str
    operator: str
    value: object = None

    def __post_init__(self):
        if self.operator not in OPERATORS:
            raise ValueError(f"operator must be one of {OPERATORS}, not {self.operator!r}")

    def text(self) -> str:
        """The condition as a reader writes it: 'employees < 60', 'crm = None'."""
        a, v = self.attribute, self.value
        if self.operator == "equals":
            return f"{a} = {v}"
        if self.operator == "in":
            return f"{a} in {{{', '.join(map(str, v))}}}"
        if self.operator == "less_than":
            return f"{a} < {_num(v)}"
        if self.operator == "at_least":
            return f"{a} >= {_num(v)}"
        if self.operator == "between":
            return f"{_num(v[0])} <= {a} < {_num(v[1])}"
        return f"{a} is missing"

    def phrase(self) -> str:
        """The condition inside a sentence: 'employees under 60', 'no crm on record'."""
        a, v = self.attribute, self.value
        if self.operator == "less_than":
            return f"{a} under {_num(v)}"
        if self.operator == "at_least":
            return f"{a} of {_num(v)} or more"
        if self.operator == "between":
            return f"{a} from {_num(v[0])} to under {_num(v[1])}"
        if self.operator == "is_missing":
            return f"no {a} on record"
        return self.text()

    def matches(self, frame: pd.DataFrame) -> pd.Series:
        """Boolean Series over ``frame``'s rows (False where the column is absent)."""
        if self.attribute not in frame:
            return pd.Series(False, index=frame.index)
        column = frame[self.attribute]
        if self.operator == "is_missing":
            text = column.astype("string").str.strip()
            return (column.isna() | (text == "")).fillna(True).astype(bool)
        if self.operator in ("equals", "in"):
            wanted = {str(self.value)} if self.operator == "equals" else set(map(str, self.value))
            return column.astype("string").isin(wanted).fillna(False).astype(bool)
        number = pd.to_numeric(column, errors="coerce")
        if self.operator == "less_than":
            hit = number < float(self.value)
        elif self.operator == "at_least":
            hit = number >= float(self.value)
        else:
            hit = (number >= float(self.value[0])) & (number < float(self.value[1]))
        return hit.fillna(False).astype(bool)

    def to_dict(self) -> dict:
        return {"attribute": self.attribute, "operator": self.operator, "value": self.value}


def _num(x) -> str:
    x = float(x)
    return f"{int(x):,}" if x.is_integer() else f"{x:,.4g}"


# ---------------------------------------------------------------------------------------------
# Levels


@dataclass
class Levels:
    """Every account's level on each attribute, and the condition that defines each level.

    ``labels``: one column per attribute (text labels, index aligned with the facts) plus
    ``account_id``; ``conditions``: ``{(attribute, level): Condition}``; ``order``: levels of each
    attribute in display order; ``kinds``: ``numeric``, ``categorical`` or ``segment``.
    """

    labels: pd.DataFrame
    conditions: dict
    order: dict
    kinds: dict

    @property
    def attributes(self) -> list[str]:
        return list(self.order)


def segment_levels(
    facts: pd.DataFrame,
    *,
    categorical: Sequence[str] = (),
    numeric: Sequence[str] = (),
    n_bins: int = 5,
    min_level_count: int = 10,
    segments: Mapping | None = None,
) -> Levels:
    """Levels of the candidate attributes for every account, with their defining conditions.

    Numeric attributes get :func:`icp_research.methods.binning.cut_points` bins computed over all
    accounts (so the churn and the lost-deal reports cut at the same places); categorical
    attributes are pooled with :func:`~icp_research.methods.binning.pool_rare_levels` (counted in
    accounts, not deals); missing values are the ``(missing)`` level. When ``employees`` is
    among the numeric attributes, the configured size segments are added as ``size_segment``
    (their conditions are employee ranges). Attributes with a single level are left out.
    """
    labels = pd.DataFrame(index=facts.index)
    if "account_id" in facts:
        labels["account_id"] = facts["account_id"]
    conditions: dict = {}
    order: dict = {}
    kinds: dict = {}
    for name in numeric:
        if name not in facts:
            continue
        values = pd.to_numeric(facts[name], errors="coerce")
        cuts = cut_points(values, n_bins)
        binned = apply_bins(values, cuts)
        present = [c for c in binned.categories if (binned == c).any()]
        if len(present) < 2:
            continue
        labels[name] = np.asarray(binned.astype(str), dtype=object)
        order[name] = present
        kinds[name] = "numeric"
        edges = [-np.inf, *cuts, np.inf]
        for i, label in enumerate(binned.categories[:-1]):
            conditions[(name, label)] = _range_condition(name, edges[i], edges[i + 1])
        conditions[(name, MISSING)] = Condition(name, "is_missing")
    for name in categorical:
        if name not in facts or name in order:
            continue
        pooled = pool_rare_levels(facts[name], min_count=min_level_count)
        counts = pooled.value_counts()
        if len(counts) < 2:
            continue
        original = facts[name].astype("string")
        labels[name] = pooled.to_numpy(dtype=object)
        order[name] = _categorical_order(counts)
        kinds[name] = "categorical"
        for level in counts.index:
            if level == MISSING:
                conditions[(name, level)] = Condition(name, "is_missing")
            elif level == OTHER:
                members = sorted(original[(pooled == OTHER).to_numpy()].dropna().unique())
                conditions[(name, level)] = Condition(name, "in", [str(m) for m in members])
            else:
                conditions[(name, level)] = Condition(name, "equals", str(level))
    if "employees" in numeric and "employees" in facts and SEGMENT not in order:
        segments = {**SEGMENT_DEFAULTS, **(segments or {})}
        bounds = segment_bounds(facts["employees"], segments)
        names = list(segments["labels"])
        values = pd.to_numeric(facts["employees"], errors="coerce").to_numpy(dtype=float)
        codes = np.minimum(
            np.searchsorted(np.asarray(bounds), values, side="right"), len(names) - 1
        )
        segment = np.where(np.isnan(values), MISSING, np.asarray(names, dtype=object)[codes])
        present = [n for n in [*names, MISSING] if (segment == n).any()]
        if len(present) >= 2:
            labels[SEGMENT] = segment
            order[SEGMENT] = present
            kinds[SEGMENT] = "segment"
            edges = [-np.inf, *bounds, np.inf]
            for i, label in enumerate(names):
                conditions[(SEGMENT, label)] = _range_condition("employees", edges[i], edges[i + 1])
            conditions[(SEGMENT, MISSING)] = Condition("employees", "is_missing")
    return Levels(labels, conditions, order, kinds)


def _range_condition(name: str, lower: float, upper: float) -> Condition:
    if np.isinf(lower):
        return Condition(name, "less_than", float(upper))
    if np.isinf(upper):
        return Condition(name, "at_least", float(lower))
    return Condition(name, "between", [float(lower), float(upper)])


def _categorical_order(counts: pd.Series) -> list[str]:
    """Most common first (equally common ones by name, whatever the order of the rows); (other)
    and (missing) last."""
    regular = sorted(
        (c for c in counts.index if c not in (OTHER, MISSING)), key=lambda c: (-counts[c], str(c))
    )
    return regular + [c for c in (OTHER, MISSING) if c in counts.index]


# ---------------------------------------------------------------------------------------------
# Candidate rules


def member_rows(in_level: pd.Series) -> frozenset:
    """The accounts a candidate rule covers, as their row positions in the frame of account
    labels ``in_level`` was computed on (compared only with other rules of that frame): a
    set of integers, not of a million text ids."""
    return frozenset(np.flatnonzero(in_level.fillna(False).to_numpy(dtype=bool)).tolist())


def select_independent(
    candidates: pd.DataFrame,
    adjusted_p,
    *,
    alpha: float = 0.05,
    given: Sequence[tuple[str, str]] = (),
) -> pd.DataFrame:
    """Mark candidates explained by a stronger one (greedy, strongest first).

    ``candidates`` are rows with ``rule_id`` and ``q_value``, already sorted strongest first.
    ``adjusted_p(selected_ids, rule_id)`` returns ``(p, still_worse)``: the p-value of the
    candidate in a model that also holds the rules already selected, and whether its effect
    still points the bad way (None when the model could not be fitted: the candidate is kept).
    A candidate that is no longer significantly worse is marked ``explained`` with
    ``explained_by`` (the selected rule of the same attribute, else the one it overlaps most);
    the others are ``candidate`` rules. ``candidates`` needs a ``_members`` column (the
    accounts of the rule, as :func:`member_rows` of one frame of account labels). ``given``
    are ``(attribute, rule text)`` of levels that do significantly better, which
    ``adjusted_p`` holds in every model: then every candidate is checked, the first too, and
    one they explain names them (the rule of its own attribute first). Returns a copy with
    ``status``, ``adjusted_p`` and ``explained_by``.
    """
    out = candidates.copy()
    out["status"] = "candidate"
    out["adjusted_p"] = np.nan
    out["explained_by"] = ""
    selected: list[str] = []
    for index, row in out.iterrows():
        if given:
            # Explained by the levels that do better alone: they are named.
            p, still_worse = adjusted_p([], row["rule_id"])
            out.at[index, "adjusted_p"] = p
            if still_worse is not None and not (still_worse and p < alpha):
                own = [text for name, text in given if name == row["level_attribute"]]
                out.at[index, "status"] = "explained"
                out.at[index, "explained_by"] = (own or [t for _, t in given])[0] + (
                    " (which does better)"
                )
                continue
        if selected:
            p, still_worse = adjusted_p(list(selected), row["rule_id"])
            out.at[index, "adjusted_p"] = p
            if still_worse is not None and not (still_worse and p < alpha):
                out.at[index, "status"] = "explained"
                out.at[index, "explained_by"] = _closest(out, selected, row["rule_id"])
                continue
        selected.append(row["rule_id"])
    return out


def _closest(frame: pd.DataFrame, selected: list[str], rule_id: str) -> str:
    """The selected rule with the same attribute family, else the first selected rule's text."""
    rows = frame.set_index("rule_id")
    mine = rows.loc[rule_id]
    for other in selected:
        if rows.loc[other, "attribute"] == mine["attribute"]:
            return str(rows.loc[other, "rule"])
    overlaps = rows.loc[selected, "_members"].map(lambda m: len(m & mine["_members"]))
    return str(rows.loc[overlaps.idxmax(), "rule"]) if len(overlaps) else ""


def evidence_sentence(row: Mapping, alpha: float = 0.05) -> str:
    """The evidence of one anti-pattern in words, in the seeds' style.

    ``row['phrase']`` is the condition after "accounts": "with no CRM", "in Education"
    (:func:`in_words`), or a bare phrase such as "employees under 60" (read after "with")."""
    phrase = str(row["phrase"])
    if not phrase.startswith(("with ", "in ")):
        phrase = f"with {phrase}"
    subject = f"Accounts {phrase}"
    q = f"q {_q_words(row['q_value'])}"
    ci = _ci_words(row["ci_low"], row["ci_high"])
    effect = _number(row["effect"])
    level, rest = _number(row["rate_level"]), _number(row["rate_rest"])
    if row["outcome"] == "churn":
        name = "hazard ratio" if row["effect_name"] == "hazard_ratio" else "rate ratio"
        customers = fmt_count(row["accounts"], "customer")
        if np.isfinite(effect) and effect > 0:
            text = (
                f"{subject} churn {effect:.1f}x as fast as other customers ({name} "
                f"{effect:.2f}, {ci}; {customers}, "
                f"{fmt_number(row['events'])} churned; {_per100(level)} vs "
                f"{_per100(rest)} churns per 100 customer-years; {q})."
            )
        elif rest == 0 or np.isinf(effect):
            # No churn among the other customers: a ratio against zero is not a number.
            text = (
                f"{subject} churned ({fmt_number(row['events'])} of {customers}; "
                f"{_per100(level)} churns per 100 customer-years) while none of the other "
                f"customers did; the {name} is not finite ({_bound_words(row['ci_low'])}{q})."
            )
        else:
            text = (
                f"None of the {customers} {phrase} churned, while other customers churned "
                f"{_per100(rest)} times per 100 customer-years ({q})."
            )
        if row.get("reasons"):
            text += f" Over-represented churn reasons: {row['reasons']}."
    elif row["outcome"] == "win_rate":
        deals = fmt_count(row["n"], "new-business deal")
        accounts = fmt_count(row["accounts"], "account")
        if level == 0 or level == 1:
            text = (
                f"{subject} won {'none' if level == 0 else 'all'} of {deals} vs "
                f"{_pct(rest)} for the rest ({accounts}; {q})."
            )
        else:
            ratio = f"{effect:.2f}x, {ci}; " if np.isfinite(effect) else ""
            text = (
                f"{subject} win {_pct(level)} of new-business deals against "
                f"{_pct(rest)} elsewhere ({ratio}{fmt_count(row['n'], 'closed deal')} at "
                f"{accounts}; {q})."
            )
        if row.get("reasons"):
            text += f" Over-represented loss reasons: {row['reasons']}."
    else:
        lost = fmt_count(row["n"], "lost deal")
        accounts = fmt_count(row["accounts"], "account")
        if np.isfinite(effect) and effect > 0:
            text = (
                f"Deals of accounts {phrase} end in 'no decision' "
                f"{effect:.1f}x as often: {_pct(level)} of their lost deals "
                f"against {_pct(rest)} elsewhere ({ci}; {lost} at {accounts}; {q})."
            )
        else:
            # No 'no decision' elsewhere (or none here): say the shares, not a ratio.
            text = (
                f"Deals of accounts {phrase} end in 'no decision' in {_pct(level)} of their "
                f"lost deals against {_pct(rest)} elsewhere ({lost} at {accounts}; {q})."
            )
    return text


def in_words(rules: pd.DataFrame, labels=None, alpha: float = 0.05) -> pd.DataFrame:
    """The rules worded for people with the config's ``[labels]``: a ``words`` column ("with
    no CRM", "with fewer than 60 employees", "in Education") and the evidence ``statement``
    built on it. ``rule`` keeps the code form (``crm = None``), as the CSV files do."""
    from icp_research.analyses.blueprint.statement import condition_words

    out = rules.copy()
    if out.empty:
        out["words"] = pd.Series(dtype=object)
        return out
    records = out.to_dict("records")
    words = [
        condition_words(Condition(r["attribute"], r["operator"], r["value"]), labels)
        for r in records
    ]
    out["words"] = words
    out["statement"] = [
        evidence_sentence({**r, "phrase": w}, alpha) + _band_note(r)
        for r, w in zip(records, words, strict=True)
    ]
    return out


def _band_note(record: dict) -> str:
    """A rule on a size band says whose cut-off it is: "fewer than 200 employees" was read as
    the point where churn changes, where 200 is only where the SMB band ends."""
    if record.get("level_attribute") != SEGMENT or not record.get("level"):
        return ""
    return (
        f" Its cut-off is where the {record['level']} size band ends ([segments]), not one "
        "the data chose; the table by employees shows where the rates change."
    )


def labels_of(study):
    """How the reports name the study's columns and values (the config's ``[labels]``)."""
    from icp_research.analyses.blueprint.statement import Labels

    return Labels.of(study)


def level_words(table: pd.DataFrame, levels, labels=None) -> pd.DataFrame:
    """A per-level table (``attribute``, ``level``) with a ``words`` column: its condition
    after "accounts" ("with fewer than 60 employees"); ``rule`` keeps the code form."""
    from icp_research.analyses.blueprint.statement import condition_words

    out = table.copy()
    conditions = getattr(levels, "conditions", {}) or {}
    out["words"] = [
        condition_words(conditions[(a, lv)], labels) if (a, lv) in conditions else str(rule)
        for a, lv, rule in zip(
            out.get("attribute", []), out.get("level", []), out.get("rule", []), strict=True
        )
    ]
    return out


def worded(rules: pd.DataFrame) -> dict[str, str]:
    """``{rule as code: rule in words}`` for a table from :func:`in_words` (empty without)."""
    if rules is None or rules.empty or "words" not in rules:
        return {}
    return {
        str(rule): words
        for rule, words in zip(rules["rule"], rules["words"], strict=True)
        if isinstance(words, str) and words
    }


def _capital(text: str) -> str:
    return text[:1].upper() + text[1:]


def _number(x) -> float:
    """``x`` as a float; NaN for a missing value."""
    return np.nan if x is None or x is pd.NA or pd.isna(x) else float(x)


def _ci_words(low, high) -> str:
    """'95% CI 1.20–3.40'; an open upper end as 'from 1.20 up', no finite bound as 'no interval'."""
    low, high = _number(low), _number(high)
    if np.isfinite(low) and np.isfinite(high):
        return f"95% CI {low:.2f}–{high:.2f}"
    if np.isfinite(low) and low > 0:
        return f"95% CI from {low:.2f} up"
    return "no interval"


def _bound_words(low) -> str:
    """'at least 201.36 by its 95% CI; ' for a finite positive lower bound, else ''."""
    low = _number(low)
    return f"at least {low:.2f} by its 95% CI; " if np.isfinite(low) and low > 0 else ""


def _per100(x) -> str:
    return "–" if x is None or pd.isna(x) else f"{100 * x:.0f}"


def _pct(x) -> str:
    return "–" if x is None or pd.isna(x) else f"{100 * x:.0f}%"


def _q_words(q) -> str:
    text = fmt_p(q)
    return f"< {text[1:]}" if text.startswith("<") else f"= {text}"


def finish(rows: pd.DataFrame) -> pd.DataFrame:
    """Order and type the columns of an anti-pattern table (working columns dropped)."""
    out = rows.reindex(columns=ANTI_PATTERN_COLUMNS)
    return out.reset_index(drop=True)


def empty() -> pd.DataFrame:
    """An anti-pattern table without rows (the columns still written, for readers)."""
    return pd.DataFrame(columns=ANTI_PATTERN_COLUMNS)


# ---------------------------------------------------------------------------------------------
# Reading and applying


def to_csv_frame(table: pd.DataFrame) -> pd.DataFrame:
    """The table as written to CSV: ``value`` JSON-encoded."""
    out = table.copy()
    out["value"] = [json.dumps(v) for v in out["value"]]
    return out


def read_anti_patterns(directory: str | Path) -> pd.DataFrame:
    """All anti-pattern parts in a run's ``artifacts`` folder, merged, ``value`` decoded.

    Reads ``anti_patterns_*.csv`` (and a merged ``anti_patterns.csv`` if present); returns an
    empty table with the standard columns when there is none.
    """
    directory = Path(directory)
    frames = []
    for path in sorted(directory.glob("anti_patterns*.csv")):
        # The lossless copy where the kit wrote one: the CSV is for spreadsheets, its cells may
        # carry the "'" that keeps a formula-like value ("-", "=...") from being evaluated.
        lossless = read_artifact(Artifact(path.stem, "table"), directory)
        frames.append(
            lossless
            if lossless is not None and "value" in lossless
            else pd.read_csv(path, keep_default_na=False, na_values=[""], dtype={"value": str})
        )
    frames = [f for f in frames if len(f)]
    if not frames:
        return empty()
    merged = pd.concat(frames, ignore_index=True).drop_duplicates("rule_id")
    merged["value"] = [json.loads(v) if isinstance(v, str) and v else None for v in merged["value"]]
    return merged.reindex(columns=ANTI_PATTERN_COLUMNS)


def conditions(rules: pd.DataFrame) -> dict[str, Condition]:
    """``{rule_id: Condition}`` for an anti-pattern table."""
    return {
        r["rule_id"]: Condition(r["attribute"], r["operator"], r["value"])
        for r in rules.to_dict("records")
    }


def apply_rules(frame: pd.DataFrame, rules: pd.DataFrame | Iterable) -> pd.DataFrame:
    """Which rows of ``frame`` (accounts or leads) each rule hits.

    ``rules`` is an anti-pattern table (as returned by :func:`read_anti_patterns`) or an
    iterable of :class:`Condition`. Returns a boolean DataFrame with the same index, one column
    per rule (its ``rule_id``, or the condition text).
    """
    named = conditions(rules) if isinstance(rules, pd.DataFrame) else {c.text(): c for c in rules}
    return pd.DataFrame(
        {name: condition.matches(frame) for name, condition in named.items()}, index=frame.index
    )


def rules_view(rules: pd.DataFrame) -> pd.DataFrame:
    """Anti-patterns for a report table: rule, outcome, evidence, status, money at stake."""
    if rules.empty:
        return pd.DataFrame(columns=["Exclude rule", "Outcome", "Evidence", "Status"])
    outcome = {"churn": "churns faster", "win_rate": "wins less", "no_decision": "'no decision'"}
    words = worded(rules)
    status = [
        "candidate"
        if s == "candidate"
        else "a contract term: a pricing lever, not an ICP rule"
        if s == "contract term"
        else f"explained by accounts {words.get(str(b), b)}"
        for s, b in zip(rules["status"], rules["explained_by"], strict=True)
    ]
    view = pd.DataFrame(
        {
            "Exclude rule": [
                _capital(f"accounts {words[r]}") if r in words else r
                for r in rules["rule"].astype(str)
            ],
            "Outcome": rules["outcome"].map(outcome).fillna(rules["outcome"]),
            "Evidence": rules["statement"],
            "Status": status,
        }
    )
    money = rules["arr_at_risk"].where(rules["arr_at_risk"].notna(), rules["open_pipeline"])
    if money.notna().any():
        from icp_research.formatting import fmt_money

        kind = np.where(rules["arr_at_risk"].notna(), "active ARR", "open pipeline")
        view["At stake"] = [
            "–" if pd.isna(m) else f"{fmt_money(m)} {k}" for m, k in zip(money, kind, strict=True)
        ]
    return view
