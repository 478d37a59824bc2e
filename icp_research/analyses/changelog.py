"""The ICP change log: what changed in the ICP between two runs, and the evidence for it.

The seeds ask for a quarterly review of the ICP and a record of why it changed. Each run's
blueprint report writes ``artifacts/icp.json`` (see :mod:`icp_research.analyses.blueprint`);
:func:`compare_icp` compares this run's document with the previous run's:

- the **statement**, the ICP's name, whether an ICP could be drawn, the outcome it is measured
  on and the confidence in it;
- **characteristics** added, removed or changed (favoured and avoided levels, filter or signal);
- **rules** matched by their conditions, not their ids or wording: the same conditions under
  another kind are a *move* (promoted from uncertain to include, demoted to uncertain ...); a
  rule of the same kind on the same attributes with other conditions is a *change*
  (``100 <= employees < 1,000`` -> ``100 <= employees < 2,000``); the rest are *added* or
  *removed*; each with the evidence of the run where it holds (a removed rule: the reason the
  blueprint set it aside, when it says, else its evidence before);
- **fit-score points** per attribute level or bin, before and after, biggest moves first
  (levels that moved by ``min_move`` points or more are listed as changes), attributes added to
  or dropped from the score, and numeric bins that were re-cut;
- **tier cut-offs** moved, and the **validation** numbers before and after (holdout AUC, Tier 1
  against the last tier, ICP against the rest).

:class:`Changelog` writes ``icp_changelog.json`` (:meth:`Changelog.to_json`) and the dated
Markdown log ``icp_changelog.md`` (:meth:`Changelog.to_markdown`), which keeps the earlier runs'
entries below this one, so the latest run's file is the whole history. Every piece of data in
the Markdown is escaped with backslashes (Markdown's special characters, and ``<`` or ``&``
where they could start markup): a rule on a level called ``<b>*x*</b>`` reads as that text,
not as markup, and ``100 <= employees`` stays readable as plain text.
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from dataclasses import dataclass, field

import numpy as np
import pandas as pd

from icp_research.formatting import fmt_number, fmt_p, fmt_pct

__all__ = ["Changelog", "compare_icp"]

FORMAT = 1


def _canon(value):
    if isinstance(value, bool):
        return value
    if isinstance(value, int | float):
        return round(float(value), 9)
    if isinstance(value, list | tuple):
        return tuple(_canon(v) for v in value)
    return str(value)


def _condition_key(rule: Mapping) -> tuple:
    """What a rule tests, independent of its id, text and evidence."""
    parts = []
    for c in rule.get("conditions") or []:
        value = _canon(c.get("value"))
        if c.get("operator") == "in" and isinstance(value, tuple):
            value = tuple(sorted(value, key=str))
        parts.append((str(c.get("attribute")), str(c.get("operator")), value))
    return tuple(sorted(parts, key=str))


def _rule_attributes(rule: Mapping) -> tuple:
    return tuple(sorted({str(c.get("attribute")) for c in rule.get("conditions") or []}))


def _rule_evidence(rule: Mapping, outcome: str | None) -> str:
    """The rule's main evidence sentence (its outcome's first), with the reason if uncertain."""
    evidence = rule.get("evidence") or []
    main = next((e for e in evidence if e.get("outcome") == outcome), None)
    main = main or (evidence[0] if evidence else None)
    parts = []
    if rule.get("reason"):
        parts.append(str(rule["reason"]))
    if main and main.get("statement"):
        parts.append(str(main["statement"]))
    return "; ".join(parts)


@dataclass
class Changelog:
    """What changed in the ICP between two runs (see :func:`compare_icp`).

    ``status``: ``compared``, ``first_run`` (no previous run), ``nothing_to_compare`` (the
    previous run has no ICP) or ``no_icp`` (this run has none);
    ``changes``: one dict per change with ``section`` (statement, characteristics, rules, fit
    score, tiers), ``change`` (added, removed, changed, moved), ``item``, ``before``, ``after``,
    ``evidence`` and ``sentence``; ``points``: every scorecard level in both runs with
    ``before`` / ``after`` points; ``tiers``: cut-offs before and after; ``validation``: the
    holdout numbers before and after; ``history``: the earlier runs' change log (Markdown).
    """

    run: str
    as_of: str | None
    previous_run: str | None = None
    previous_as_of: str | None = None
    status: str = "compared"
    summary: str = ""
    changes: list = field(default_factory=list)
    points: list = field(default_factory=list)
    tiers: list = field(default_factory=list)
    validation: list = field(default_factory=list)
    baseline: list = field(default_factory=list)
    history: str = ""
    min_move: int = 5

    def to_json(self) -> dict:
        """``icp_changelog.json``."""
        return {
            "format": FORMAT,
            "run": self.run,
            "as_of": self.as_of,
            "previous_run": self.previous_run,
            "previous_as_of": self.previous_as_of,
            "status": self.status,
            "summary": self.summary,
            "changes": [dict(c) for c in self.changes],
            "points": [dict(p) for p in self.points],
            "tiers": [dict(t) for t in self.tiers],
            "validation": [dict(v) for v in self.validation],
            "baseline": list(self.baseline),
        }

    def table(self) -> pd.DataFrame:
        """The changes, one row each: change ('rule added'), item, before, after, evidence."""
        columns = ["change", "item", "before", "after", "evidence"]
        rows = [
            {
                "change": f"{_SECTION_NOUNS.get(c['section'], c['section'])} {c['change']}",
                **{k: c.get(k, "") for k in columns[1:]},
            }
            for c in self.changes
        ]
        return pd.DataFrame(rows, columns=columns)

    def points_table(self, min_move: int = 1) -> pd.DataFrame:
        """Scorecard levels whose points moved by ``min_move`` or more, biggest moves first."""
        columns = ["attribute", "level", "before", "after", "moved", "evidence"]
        rows = [p for p in self.points if abs(p.get("moved") or 0) >= min_move]
        return pd.DataFrame([{k: p.get(k) for k in columns} for p in rows], columns=columns)

    def validation_table(self) -> pd.DataFrame:
        columns = ["measure", "before", "after"]
        return pd.DataFrame(
            [{k: v.get(k + "_text", v.get(k)) for k in columns} for v in self.validation],
            columns=columns,
        )

    def to_markdown(self) -> str:
        """The dated change log: this run's entry, then the earlier runs' (``history``)."""
        lines = ["# ICP change log", ""]
        lines += self._entry()
        history = self.history.strip()
        if history:
            lines += ["", "---", "", history]
        return "\n".join(lines).rstrip() + "\n"

    def _entry(self) -> list[str]:
        title = f"## {_md(self.run)}" + (f" (as of {_md(self.as_of)})" if self.as_of else "")
        if self.status == "compared":
            title += f", compared with {_md(self.previous_run)}" + (
                f" (as of {_md(self.previous_as_of)})" if self.previous_as_of else ""
            )
        lines = [title, "", _md(self.summary), ""]
        if self.status in ("first_run", "nothing_to_compare") and self.baseline:
            lines += ["### The ICP at this run", ""]
            lines += [f"- {_md(item)}" for item in self.baseline]
            lines.append("")
        if self.status != "compared":
            return lines
        sections = [
            ("statement", "Statement"),
            ("characteristics", "Characteristics"),
            ("rules", "Rules"),
            ("fit score", "Fit score"),
            ("tiers", "Tier cut-offs"),
        ]
        for key, heading in sections:
            changes = [c for c in self.changes if c["section"] == key]
            lines += [f"### {heading}", ""]
            for change in changes:
                text = f"- **{_md(change['change'].capitalize())}**: {_md(change['sentence'])}"
                if change.get("evidence"):
                    text += f" Evidence: {_md(change['evidence'])}"
                lines.append(text)
            moved = [p for p in self.points if p.get("moved")] if key == "fit score" else []
            if not changes:
                lines.append(
                    f"No level moved by {self.min_move} points or more; every move:"
                    if moved
                    else "No change."
                )
            lines.append("")
            if moved:
                lines += [
                    "| Attribute | Level | Points before | Points after | Moved |",
                    "|---|---|---:|---:|---:|",
                ]
                for p in moved:
                    lines.append(
                        f"| {_md(p['attribute'])} | {_md(p['level'])} "
                        f"| {p['before']} | {p['after']} | {p['moved']:+d} |"
                    )
                lines.append("")
        if self.validation:
            lines += [
                "### Validation on the latest quarters",
                "",
                "| Measure | Before | After |",
                "|---|---:|---:|",
            ]
            for v in self.validation:
                lines.append(
                    f"| {_md(v['measure'])} | {_md(v['before_text'])} | {_md(v['after_text'])} |"
                )
            lines.append("")
        return lines


# Data never starts a line (it follows a list marker or a table pipe), so these are the
# characters that can still turn text into markup.
_SECTION_NOUNS = {
    "statement": "ICP",
    "characteristics": "characteristic",
    "rules": "rule",
    "fit score": "fit score",
    "tiers": "tier cut-off",
}

_MD_SPECIAL = re.compile(r"([\\`*_\[\]#|~])")


# Where "<" or "&" could start markup in Markdown: a tag, a comment, an autolink ("<b>",
# "</b>", "<!--", "<http:"), or a character reference ("&amp;", "&#60;"). Anywhere else they
# are plain text ("100 <= employees < 1,000", "R&D") and stay as written, so the file reads
# well as text too.
_MD_MARKUP = re.compile(r"<(?=[A-Za-z/!?])|&(?=#?[A-Za-z0-9]+;)")


def _md(text) -> str:
    """Data as Markdown text: Markdown's special characters, and "<" or "&" where they could
    start markup, escaped with a backslash (CommonMark shows the character itself)."""
    if text is None:
        return ""
    text = _MD_SPECIAL.sub(r"\\\1", str(text))
    text = _MD_MARKUP.sub(lambda m: "\\" + m.group(0), text)
    if text.startswith(">"):
        text = "\\" + text  # not a block quote
    text = text.replace("\r", " ").replace("\n", " ")
    return text


def _run_words(run: str | None, as_of: str | None) -> str:
    if not run:
        return f"the run as of {as_of}" if as_of else "the previous run"
    return f"{run} (as of {as_of})" if as_of else str(run)


def compare_icp(
    current: Mapping | None,
    previous: Mapping | None,
    *,
    run: str = "",
    previous_run: str = "",
    previous_as_of: str | None = None,
    min_move: int = 5,
    history: str = "",
) -> Changelog:
    """The change log between two ``icp.json`` documents (this run's and the previous run's).

    Parameters
    ----------
    current, previous : dict or None
        The documents; ``previous`` None means this is the first run (nothing to compare).
    run, previous_run : str
        Run names for the log's heading ('2026Q3').
    min_move : int
        Scorecard levels whose points moved by at least this much are listed as changes (every
        move is in ``points``).
    history : str
        The previous run's change log (Markdown), kept below this entry.

    Returns
    -------
    Changelog
        Rules are matched by their conditions: the same conditions under another kind are a
        *move* (promoted from uncertain to include, demoted to uncertain ...); a rule of the
        same kind on the same attributes with other conditions is a *change*
        (``100 <= employees < 1,000`` -> ``100 <= employees < 2,000``); the rest are added or
        removed. Each carries the evidence of the rule in the run where it holds.
    """
    as_of = (current or {}).get("as_of")
    previous_as_of = previous_as_of or (previous or {}).get("as_of")
    log = Changelog(
        run=run or (as_of or "this run"),
        as_of=as_of,
        previous_run=previous_run or None,
        previous_as_of=previous_as_of,
        history=_strip_title(history),
        min_move=min_move,
    )
    if current is None:
        log.status = "no_icp"
        log.summary = (
            "This run has no ICP definition (the blueprint report did not write icp.json), so "
            "there is nothing to compare."
        )
        return log
    if previous is None:
        log.baseline = _baseline(current)
        if previous_run:
            log.status = "nothing_to_compare"
            log.summary = (
                f"The previous run, {_run_words(previous_run, previous_as_of)}, has no ICP "
                "definition (icp.json): nothing to compare. This run's ICP is recorded as the "
                "starting point."
            )
        else:
            log.status = "first_run"
            # Not "first run": a rerun of the same quarter is not a previous run either.
            log.summary = (
                "No run of an earlier quarter to compare with (a rerun of this quarter does "
                "not count). This run's ICP is recorded as the starting point of the change log."
            )
        return log
    outcome = (current.get("outcome") or {}).get("name")
    previous_outcome = (previous.get("outcome") or {}).get("name")
    changes: list[dict] = []
    changes += _statement_changes(current, previous)
    changes += _characteristic_changes(current, previous)
    changes += _rule_changes(current, previous, outcome, previous_outcome)
    points, score_changes = _score_changes(current, previous, min_move)
    changes += score_changes
    tiers, tier_changes = _tier_changes(current, previous)
    changes += tier_changes
    log.changes = changes
    log.points = points
    log.tiers = tiers
    log.validation = _validation_rows(current, previous)
    log.summary = _changelog_summary(log, min_move)
    return log


def _strip_title(markdown: str) -> str:
    text = (markdown or "").strip()
    if text.startswith("# ICP change log"):
        text = text[len("# ICP change log") :].strip()
    return text


def _said(rule: Mapping) -> str:
    """A rule of ``icp.json`` as people read it, its code form after it: "accounts with
    100–999 employees (100 <= employees < 1,000)"; the code form alone when its conditions
    cannot be read."""
    from icp_research.analyses.antipatterns import Condition
    from icp_research.analyses.blueprint.statement import conditions_words

    text = str(rule.get("text", "") or "")
    try:
        conditions = [
            Condition(c["attribute"], c["operator"], c.get("value"))
            for c in rule.get("conditions") or []
        ]
        words = conditions_words(conditions) if conditions else ""
    except (KeyError, TypeError, ValueError, AttributeError):
        return text
    if not words:
        return text
    return f"accounts {words} ({text})" if text else f"accounts {words}"


def _baseline(spec: Mapping) -> list[str]:
    items = []
    if spec.get("statement"):
        items.append(f"Statement: {spec['statement']}")
    for kind in ("include", "exclude"):
        for rule in (spec.get("rules") or {}).get(kind) or []:
            items.append(f"{kind.capitalize()} rule: {_said(rule)}")
    tiers = spec.get("tiers") or []
    if spec.get("scorecard") and tiers:
        items.append(
            "Tiers: " + ", ".join(f"{t['name']} from {_num(t['min_score'])}" for t in tiers)
        )
    auc = (spec.get("validation") or {}).get("auc")
    if isinstance(auc, int | float) and np.isfinite(auc):
        items.append(f"Holdout AUC: {_auc_text(spec.get('validation'))}")
    return items


def _num(value) -> str:
    if isinstance(value, int | float) and float(value).is_integer():
        return str(int(value))
    return str(value)


def _statement_changes(current: Mapping, previous: Mapping) -> list[dict]:
    changes = []
    neither = not previous.get("drawn") and not current.get("drawn")
    for key, label in (("name", "name"), ("statement", "statement")):
        before, after = previous.get(key), current.get(key)
        if (before or "") != (after or ""):
            sentence = (
                f"The ICP {label} changed from “{before or '(none)'}” to “{after or '(none)'}”."
            )
            if neither:
                # No ICP either time: the words of why not changed, not an ICP.
                sentence = (
                    f"Still no ICP; the statement of why changed from “{before or '(none)'}” "
                    f"to “{after or '(none)'}”."
                )
            changes.append(
                {
                    "section": "statement",
                    "change": "changed",
                    "item": label,
                    "before": before or "",
                    "after": after or "",
                    "evidence": "",
                    "sentence": sentence,
                }
            )
    if bool(previous.get("drawn")) != bool(current.get("drawn")):
        drawn = bool(current.get("drawn"))
        changes.append(
            {
                "section": "statement",
                "change": "changed",
                "item": "drawn",
                "before": "drawn" if previous.get("drawn") else "not drawn",
                "after": "drawn" if drawn else "not drawn",
                "evidence": (current.get("confidence") or {}).get("reason", ""),
                "sentence": "An ICP could be drawn this time."
                if drawn
                else "No ICP could be drawn this time.",
            }
        )
    before = (previous.get("outcome") or {}).get("name")
    after = (current.get("outcome") or {}).get("name")
    if before != after:
        changes.append(
            {
                "section": "statement",
                "change": "changed",
                "item": "outcome",
                "before": before or "",
                "after": after or "",
                "evidence": "",
                "sentence": f"The rules and the fit score are measured on {after} instead of "
                f"{before}.",
            }
        )
    before = (previous.get("confidence") or {}).get("level")
    after = (current.get("confidence") or {}).get("level")
    if before != after:
        changes.append(
            {
                "section": "statement",
                "change": "changed",
                "item": "confidence",
                "before": before or "",
                "after": after or "",
                "evidence": (current.get("confidence") or {}).get("reason", ""),
                "sentence": f"Confidence in the ICP went from {before} to {after}.",
            }
        )
    return changes


def _characteristic_changes(current: Mapping, previous: Mapping) -> list[dict]:
    now = {c["attribute"]: c for c in current.get("characteristics") or [] if c.get("attribute")}
    then = {c["attribute"]: c for c in previous.get("characteristics") or [] if c.get("attribute")}
    uncertain = {
        a: r
        for r in (current.get("rules") or {}).get("uncertain") or []
        for a in _rule_attributes(r)
    }
    changes = []
    for name, item in now.items():
        if name not in then:
            changes.append(
                {
                    "section": "characteristics",
                    "change": "added",
                    "item": name,
                    "before": "",
                    "after": _characteristic_text(item),
                    "evidence": item.get("evidence", ""),
                    "sentence": f"{name} is now a defining characteristic "
                    f"({_characteristic_text(item)}).",
                }
            )
            continue
        before, after = _characteristic_text(then[name]), _characteristic_text(item)
        if before != after:
            changes.append(
                {
                    "section": "characteristics",
                    "change": "changed",
                    "item": name,
                    "before": before,
                    "after": after,
                    "evidence": item.get("evidence", ""),
                    "sentence": f"{name}: {_characteristic_moves(then[name], item)}.",
                }
            )
    for name, item in then.items():
        if name in now:
            continue
        evidence = (
            _rule_evidence(uncertain[name], None)
            if name in uncertain
            else (
                "no longer among the characteristics that predict success and held up in the "
                "latest quarters"
            )
        )
        changes.append(
            {
                "section": "characteristics",
                "change": "removed",
                "item": name,
                "before": _characteristic_text(item),
                "after": "",
                "evidence": evidence,
                "sentence": f"{name} is no longer a defining characteristic (was: "
                f"{_characteristic_text(item)}).",
            }
        )
    return changes


def _characteristic_moves(before: Mapping, after: Mapping) -> str:
    """What changed in a characteristic, in words: "now avoids < 60" rather than "filter →
    filter; avoid < 60"."""
    moves = []
    was, now = str(before.get("role") or "filter"), str(after.get("role") or "filter")
    if was != now:
        moves.append(f"now a {now} (was a {was})")
    for key, verb in (("favour", "favours"), ("avoid", "avoids")):
        old = [str(v) for v in before.get(key) or []]
        new = [str(v) for v in after.get(key) or []]
        added = [v for v in new if v not in old]
        dropped = [v for v in old if v not in new]
        if added:
            moves.append(f"now {verb} {', '.join(added)}")
        if dropped:
            moves.append(f"no longer {verb} {', '.join(dropped)}")
    return "; ".join(moves) or f"{_characteristic_text(before)} → {_characteristic_text(after)}"


def _characteristic_text(item: Mapping) -> str:
    parts = [str(item.get("role") or "filter")]
    if item.get("favour"):
        parts.append("favour " + ", ".join(map(str, item["favour"])))
    if item.get("avoid"):
        parts.append("avoid " + ", ".join(map(str, item["avoid"])))
    return "; ".join(parts)


def _rule_changes(current, previous, outcome, previous_outcome) -> list[dict]:
    kinds = ("include", "exclude", "uncertain")
    now = {k: list((current.get("rules") or {}).get(k) or []) for k in kinds}
    then = {k: list((previous.get("rules") or {}).get(k) or []) for k in kinds}
    now_keys = {k: {_condition_key(r) for r in now[k]} for k in kinds}
    then_keys = {k: {_condition_key(r) for r in then[k]} for k in kinds}
    notes = [str(n) for n in (current.get("rules") or {}).get("notes") or []]
    changes = []
    for kind in kinds:
        added = []
        for rule in now[kind]:
            key = _condition_key(rule)
            if key in then_keys[kind]:
                continue
            old_kind = next((k for k in kinds if key in then_keys[k]), None)
            if old_kind is not None:
                verb = (
                    "promoted"
                    if old_kind == "uncertain"
                    else "demoted"
                    if kind == "uncertain"
                    else "moved"
                )
                changes.append(
                    {
                        "section": "rules",
                        "change": "moved",
                        "item": rule.get("text", ""),
                        "before": old_kind,
                        "after": kind,
                        "evidence": _rule_evidence(rule, outcome),
                        "sentence": f"The rule on {_said(rule)} was {verb} from {old_kind} "
                        f"to {kind}.",
                    }
                )
                continue
            added.append(rule)
        # A rule that moved to another kind is reported once, from where it is now.
        removed = [
            r for r in then[kind] if not any(_condition_key(r) in now_keys[k] for k in kinds)
        ]
        for rule in list(added):
            match = next(
                (r for r in removed if _rule_attributes(r) == _rule_attributes(rule)), None
            )
            if match is None:
                continue
            added.remove(rule)
            removed.remove(match)
            changes.append(
                {
                    "section": "rules",
                    "change": "changed",
                    "item": rule.get("text", ""),
                    "before": match.get("text", ""),
                    "after": rule.get("text", ""),
                    "evidence": _rule_evidence(rule, outcome),
                    "sentence": f"{kind.capitalize()} rule on {_said(match)} became {_said(rule)}.",
                }
            )
        for rule in added:
            changes.append(
                {
                    "section": "rules",
                    "change": "added",
                    "item": rule.get("text", ""),
                    "before": "",
                    "after": kind,
                    "evidence": _rule_evidence(rule, outcome),
                    "sentence": f"New {kind} rule: {_said(rule)}.",
                }
            )
        for rule in removed:
            text = rule.get("text", "")
            why = [n for n in notes if text and text in n]
            # An uncertain rule never held up: it stopped being suggestive.
            gone = (
                "it is no longer suggestive in this run's data"
                if kind == "uncertain"
                else "it no longer holds up in this run's data"
            )
            evidence = "; ".join(why) or (
                f"{gone} (before: "
                + (_rule_evidence(rule, previous_outcome) or "no evidence recorded")
                + ")"
            )
            changes.append(
                {
                    "section": "rules",
                    "change": "removed",
                    "item": text,
                    "before": kind,
                    "after": "",
                    "evidence": evidence,
                    "sentence": f"{kind.capitalize()} rule on {_said(rule)} was removed.",
                }
            )
    return changes


_OUTCOME_RATES = {
    "won": "win rate",
    "retained": "retention",
    "best_customer": "best-customer rate",
}


def _scorecard_attributes(spec: Mapping) -> dict:
    card = spec.get("scorecard") or {}
    return {a["name"]: a for a in card.get("attributes") or [] if a.get("name")}


def _levels(attribute: Mapping) -> list[dict]:
    return list(attribute.get("bins") or attribute.get("levels") or [])


def _edges(attribute: Mapping) -> list:
    edges = attribute.get("edges")
    if edges is None:
        edges = [lv.get("lower") for lv in _levels(attribute)[1:]]
    return [_canon(e) for e in edges]


def _level_evidence(level: Mapping) -> str:
    n, rate = level.get("n"), level.get("rate")
    if isinstance(n, int | float) and isinstance(rate, int | float) and np.isfinite(rate):
        return f"{fmt_pct(rate)} of {fmt_number(n)}"
    return ""


def _no_score_sentence(current: Mapping) -> str:
    """Why this run has no fit score: withheld (fitted, then ranking the validation quarters
    backwards: its validation is kept) or none fitted."""
    validation = current.get("validation") or {}
    auc = validation.get("auc")
    if isinstance(auc, int | float) and np.isfinite(auc):
        return (
            f"The fit score was fitted but withheld this time: it ranked the validation "
            f"quarters backwards (AUC {auc:.2f})."
        )
    return "No fit score could be fitted this time."


def _score_changes(current, previous, min_move) -> tuple[list[dict], list[dict]]:
    now, then = _scorecard_attributes(current), _scorecard_attributes(previous)
    changes: list[dict] = []
    points: list[dict] = []
    if bool(now) != bool(then):
        changes.append(
            {
                "section": "fit score",
                "change": "added" if now else "removed",
                "item": "fit score",
                "before": "" if not then else "a fit score",
                "after": "" if not now else "a fit score",
                "evidence": "",
                "sentence": "A fit score could be fitted this time."
                if now
                else _no_score_sentence(current),
            }
        )
    outcome = ((current.get("scorecard") or {}).get("outcome")) or ""
    outcome = _OUTCOME_RATES.get(outcome, f"{outcome} rate")
    for name in [*now, *[n for n in then if n not in now]]:
        if name not in then:
            levels = ", ".join(f"{lv['label']} {lv['points']}" for lv in _levels(now[name]))
            changes.append(
                {
                    "section": "fit score",
                    "change": "added",
                    "item": name,
                    "before": "",
                    "after": levels,
                    "evidence": _attribute_evidence(now[name]),
                    "sentence": f"{name} now gets points ({levels}).",
                }
            )
            continue
        if name not in now:
            dropped = next(
                (
                    d.get("reason", "")
                    for d in (current.get("scorecard") or {}).get("dropped") or []
                    if d.get("name") == name
                ),
                "",
            )
            changes.append(
                {
                    "section": "fit score",
                    "change": "removed",
                    "item": name,
                    "before": ", ".join(
                        f"{lv['label']} {lv['points']}" for lv in _levels(then[name])
                    ),
                    "after": "",
                    "evidence": dropped,
                    "sentence": f"{name} no longer gets points.",
                }
            )
            continue
        old_edges = _edges(then[name])
        new_edges = _edges(now[name])
        if now[name].get("type") == "numeric" and old_edges != new_edges:
            before = ", ".join(lv["label"] for lv in _levels(then[name]))
            after = ", ".join(lv["label"] for lv in _levels(now[name]))
            changes.append(
                {
                    "section": "fit score",
                    "change": "changed",
                    "item": f"{name} bins",
                    "before": before,
                    "after": after,
                    "evidence": "",
                    "sentence": f"The bins of {name} changed: {before} → {after}.",
                }
            )
        old = {lv["label"]: lv for lv in _levels(then[name])}
        for level in _levels(now[name]):
            if level["label"] not in old:
                continue
            before_level = old[level["label"]]
            moved = int(level["points"]) - int(before_level["points"])
            evidence = ""
            if _level_evidence(before_level) or _level_evidence(level):
                evidence = (
                    f"{outcome} in training {_level_evidence(before_level) or '–'} → "
                    f"{_level_evidence(level) or '–'}"
                )
            points.append(
                {
                    "attribute": name,
                    "level": level["label"],
                    "before": int(before_level["points"]),
                    "after": int(level["points"]),
                    "moved": moved,
                    "evidence": evidence,
                }
            )
    points.sort(key=lambda p: (-abs(p["moved"]), p["attribute"], str(p["level"])))
    for p in points:
        if abs(p["moved"]) >= min_move:
            where = (
                f"{p['attribute']} {p['level']}"
                if str(p["level"])[:1] in "<>0123456789"
                else f"{p['attribute']} = {p['level']}"
            )
            changes.append(
                {
                    "section": "fit score",
                    "change": "changed",
                    "item": where,
                    "before": str(p["before"]),
                    "after": str(p["after"]),
                    "evidence": p["evidence"],
                    "sentence": f"{where}: {p['before']} → {p['after']} points ({p['moved']:+d}).",
                }
            )
    return points, changes


def _attribute_evidence(attribute: Mapping) -> str:
    evidence = attribute.get("evidence") or {}
    q = evidence.get("q_value")
    if isinstance(q, int | float) and np.isfinite(q):
        return f"association with the outcome: {_fmt_q(q)}"
    return ""


def _tier_changes(current, previous) -> tuple[list[dict], list[dict]]:
    now = {t["name"]: t.get("min_score") for t in current.get("tiers") or []}
    then = {t["name"]: t.get("min_score") for t in previous.get("tiers") or []}
    rows, changes = [], []
    for name in [*now, *[n for n in then if n not in now]]:
        before, after = then.get(name), now.get(name)
        rows.append({"tier": name, "before": before, "after": after})
        if before == after:
            continue
        if before is None or after is None:
            change = "added" if before is None else "removed"
            sentence = f"Tier {name} was {change}."
        else:
            change = "changed"
            sentence = f"{name} now starts at {_num(after)} points (was {_num(before)})."
        changes.append(
            {
                "section": "tiers",
                "change": change,
                "item": name,
                "before": "" if before is None else _num(before),
                "after": "" if after is None else _num(after),
                "evidence": "",
                "sentence": sentence,
            }
        )
    return rows, changes


def _auc_text(validation: Mapping | None) -> str:
    validation = validation or {}
    auc = validation.get("auc")
    if not isinstance(auc, int | float) or not np.isfinite(auc):
        return "–"
    ci = validation.get("auc_ci") or []
    if len(ci) == 2 and all(isinstance(x, int | float) for x in ci):
        return f"{auc:.2f} ({ci[0]:.2f}–{ci[1]:.2f})"
    return f"{auc:.2f}"


def _ratio_text(row: Mapping | None) -> str:
    if not row:
        return "–"
    ratio = row.get("ratio")
    if not isinstance(ratio, int | float) or not np.isfinite(ratio):
        return "–"
    low, high = row.get("ci_low"), row.get("ci_high")
    if isinstance(low, int | float) and isinstance(high, int | float):
        return f"{ratio:.2f}x ({low:.2f}–{high:.2f})"
    return f"{ratio:.2f}x"


def _validation_rows(current: Mapping, previous: Mapping) -> list[dict]:
    now, then = current.get("validation") or {}, previous.get("validation") or {}
    rows = [
        {
            "measure": "Holdout AUC",
            "before": then.get("auc"),
            "after": now.get("auc"),
            "before_text": _auc_text(then),
            "after_text": _auc_text(now),
        },
        {
            "measure": "Holdout rows",
            "before": then.get("holdout_n"),
            "after": now.get("holdout_n"),
            "before_text": fmt_number(then.get("holdout_n"))
            if then.get("holdout_n") is not None
            else "–",
            "after_text": fmt_number(now.get("holdout_n"))
            if now.get("holdout_n") is not None
            else "–",
        },
    ]
    for key, label in (("ratios", "comparison"), ("icp_vs_rest", "outcome")):
        old = {r.get(label): r for r in then.get(key) or []}
        new = {r.get(label): r for r in now.get(key) or []}
        for name in [*new, *[n for n in old if n not in new]]:
            measure = f"{name}" if key == "ratios" else f"ICP vs rest, {name}"
            rows.append(
                {
                    "measure": measure,
                    "before": (old.get(name) or {}).get("ratio"),
                    "after": (new.get(name) or {}).get("ratio"),
                    "before_text": _ratio_text(old.get(name)),
                    "after_text": _ratio_text(new.get(name)),
                }
            )
    return [
        {k: (None if isinstance(v, float) and not np.isfinite(v) else v) for k, v in row.items()}
        for row in rows
        if row["before"] is not None or row["after"] is not None
    ]


def _no_icp_either_time(log: Changelog) -> bool:
    """Neither run drew an ICP (the statement change says so)."""
    return any(
        c["section"] == "statement" and str(c["sentence"]).startswith("Still no ICP")
        for c in log.changes
    )


def _changelog_summary(log: Changelog, min_move: int) -> str:
    since = _run_words(log.previous_run, log.previous_as_of)
    counts = {}
    for change in log.changes:
        if change["section"] == "rules":
            counts[change["change"]] = counts.get(change["change"], 0) + 1
    parts = []
    statement = [c for c in log.changes if c["section"] == "statement" and c["item"] == "statement"]
    drawn = [c for c in log.changes if c["section"] == "statement" and c["item"] == "drawn"]
    if statement and not drawn and not log.points and _no_icp_either_time(log):
        parts.append("still no ICP, its statement of why changed")
    else:
        parts.append("statement changed" if statement else "statement unchanged")
    by_kind = {}
    for change in log.changes:
        if change["section"] == "characteristics":
            by_kind[change["change"]] = by_kind.get(change["change"], 0) + 1
    if by_kind:
        parts.append(
            ", ".join(
                f"{_count(n, 'characteristic')} {verb}"
                for verb, n in sorted(by_kind.items(), key=lambda item: _VERB_ORDER[item[0]])
            )
        )
    if counts:
        parts.append(
            ", ".join(
                f"{_count(n, 'rule')} {verb}"
                for verb, n in sorted(counts.items(), key=lambda item: _VERB_ORDER[item[0]])
            )
        )
    else:
        parts.append("rules unchanged")
    moved = [p for p in log.points if abs(p["moved"]) >= min_move]
    any_moved = [p for p in log.points if p["moved"]]
    if moved:
        top = moved[0]
        parts.append(
            f"{_count(len(moved), 'fit-score level')} moved by {min_move} points or more "
            f"(largest: {top['attribute']} {top['level']}, {top['moved']:+d})"
        )
    elif any_moved:
        parts.append(f"fit-score points moved by less than {min_move} points")
    elif log.points:
        parts.append("fit-score points unchanged")
    tier_changes = [c for c in log.changes if c["section"] == "tiers"]
    if tier_changes:
        parts.append("tier cut-offs moved")
    elif log.points:  # without a fit score either time, there are no tiers to speak of
        parts.append("tier cut-offs unchanged")
    auc = next((v for v in log.validation if v["measure"] == "Holdout AUC"), None)
    if auc and auc.get("before_text") != "–" and auc.get("after_text") != "–":
        parts.append(f"holdout AUC {auc['before'] or 0:.2f} → {auc['after'] or 0:.2f}")
    unchanged = not log.changes and not any_moved
    if unchanged:
        return (
            f"The ICP is unchanged since {since}: same statement, characteristics, rules, "
            "points and tier cut-offs."
        )
    return f"Since {since}: " + "; ".join(parts) + "."


_VERB_ORDER = {"added": 0, "removed": 1, "changed": 2, "moved": 3}


def _count(n: int, word: str) -> str:
    return f"{n} {word}" + ("" if n == 1 else "s")


def _fmt_q(q: float) -> str:
    text = fmt_p(q)
    return f"q {text}" if text.startswith("<") else f"q = {text}"
