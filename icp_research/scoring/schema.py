"""The shape of ``artifacts/icp.json``, checked before anything is scored with it.

``icp-research score`` is handed an ``icp.json`` that may have been edited by hand, copied
between versions or cut short. A threshold written ``NaN`` would put every lead in one tier,
unsorted bin edges or ``"conditions": null`` would silently change who is in the ICP: every such
file is refused with one line that says where the problem is and what to do, before a lead is
read. The document's ``format`` (:data:`ICP_FORMAT`) versions this layout; the blueprint writes
it, and a file of another format is refused with the way out (regenerate it).
"""

from __future__ import annotations

import math

#: The icp.json layout this kit writes and reads (its top-level ``format``).
ICP_FORMAT = 1

#: The operators a rule condition may use (see :class:`icp_research.analyses.antipatterns.Condition`).
OPERATORS = ("equals", "in", "less_than", "at_least", "between", "is_missing")

RULE_KINDS = ("include", "exclude", "uncertain")


def _finite(value) -> bool:
    return isinstance(value, int | float) and not isinstance(value, bool) and math.isfinite(value)


def _condition_problem(where: str, condition) -> str | None:
    if not isinstance(condition, dict):
        return f"{where} is {type(condition).__name__}, not a condition object"
    attribute, operator = condition.get("attribute"), condition.get("operator")
    if not isinstance(attribute, str) or not attribute:
        return f"{where} has no attribute name"
    if operator not in OPERATORS:
        return f"{where} has operator {operator!r}; expected one of {', '.join(OPERATORS)}"
    value = condition.get("value")
    if operator in ("less_than", "at_least") and not _finite(value):
        return f"{where} ({attribute} {operator}) needs a finite number, not {value!r}"
    if operator == "between":
        if not (isinstance(value, list) and len(value) == 2 and all(map(_finite, value))):
            return f"{where} ({attribute} between) needs two finite numbers, not {value!r}"
        if not value[0] < value[1]:
            return f"{where} ({attribute} between) has its bounds in the wrong order: {value}"
    if operator == "in" and not (isinstance(value, list) and value):
        return f"{where} ({attribute} in) needs a non-empty list of values, not {value!r}"
    if operator == "equals" and (value is None or isinstance(value, dict | list)):
        return f"{where} ({attribute} equals) needs one value, not {value!r}"
    return None


def _rules_problem(rules) -> str | None:
    if not isinstance(rules, dict):
        return "'rules' must be an object with include / exclude / uncertain lists"
    for kind in RULE_KINDS:
        listed = rules.get(kind, [])
        if listed is None:
            continue
        if not isinstance(listed, list):
            return f"rules.{kind} must be a list, not {type(listed).__name__}"
        for i, rule in enumerate(listed):
            where = f"rules.{kind}[{i}]"
            if not isinstance(rule, dict):
                return f"{where} is {type(rule).__name__}, not a rule object"
            conditions = rule.get("conditions")
            if not isinstance(conditions, list) or not conditions:
                return f"{where}.conditions must be a non-empty list, not {conditions!r}"
            for j, condition in enumerate(conditions):
                problem = _condition_problem(f"{where}.conditions[{j}]", condition)
                if problem:
                    return problem
    return None


def _tiers_problem(tiers) -> str | None:
    if not isinstance(tiers, list) or not tiers:
        return "'tiers' must be a non-empty list of {name, min_score}"
    names = []
    for i, tier in enumerate(tiers):
        if not isinstance(tier, dict):
            return f"tiers[{i}] is {type(tier).__name__}, not a tier object"
        name, threshold = tier.get("name"), tier.get("min_score")
        if not isinstance(name, str) or not name:
            return f"tiers[{i}] has no name"
        if not _finite(threshold) or not 0 <= threshold <= 100:
            return (
                f"tiers[{i}] ({name}) min_score must be a number from 0 to 100, not {threshold!r}"
            )
        names.append(name)
    if len(set(names)) != len(names):
        return f"tier names repeat: {names}"
    return None


def _scorecard_problem(card) -> str | None:
    if card is None:
        return None
    if not isinstance(card, dict):
        return "'scorecard' must be an object or null"
    attributes = card.get("attributes")
    if not isinstance(attributes, list):
        return "scorecard.attributes must be a list"
    for i, attribute in enumerate(attributes):
        where = f"scorecard.attributes[{i}]"
        if not isinstance(attribute, dict) or not isinstance(attribute.get("name"), str):
            return f"{where} has no name"
        where += f" ({attribute['name']})"
        kind = attribute.get("type")
        if kind not in ("numeric", "categorical"):
            return f"{where} has type {kind!r}; expected numeric or categorical"
        if not _finite(attribute.get("neutral_points")):
            return f"{where} neutral_points must be a number"
        rows = attribute.get("bins" if kind == "numeric" else "levels")
        if not isinstance(rows, list) or not rows:
            return f"{where} has no {'bins' if kind == 'numeric' else 'levels'}"
        for row in rows:
            if not isinstance(row, dict) or not _finite(row.get("points")):
                return f"{where} has a bin or level without finite points"
        if kind == "numeric":
            edges = attribute.get("edges")
            if not isinstance(edges, list) or not all(map(_finite, edges)):
                return f"{where} edges must be a list of finite numbers"
            if any(b <= a for a, b in zip(edges, edges[1:], strict=False)):
                return f"{where} edges must increase: {edges}"
            if len(rows) != len(edges) + 1:
                return f"{where} has {len(rows)} bins for {len(edges)} edges (expected {len(edges) + 1})"
    return None


#: Calibration methods and statuses an icp.json ``calibration`` block may name
#: (see :mod:`icp_research.methods.calibration`).
CALIBRATION_METHODS = ("logistic", "isotonic")
CALIBRATION_STATUSES = ("ok", "too_few_outcomes", "failed")


def _period_problem(where: str, period) -> str | None:
    """A ``{"start", "end"}`` pair of YYYY-MM-DD dates, start not after end (or null)."""
    import datetime as dt

    if period is None:
        return None
    if not isinstance(period, dict):
        return f"{where} must be an object with start and end dates, not {period!r}"
    days = []
    for key in ("start", "end"):
        value = period.get(key)
        try:
            days.append(dt.date.fromisoformat(value))
        except (TypeError, ValueError):
            return f"{where}.{key} must be a date written YYYY-MM-DD, not {value!r}"
    if days[0] > days[1]:
        return f"{where} starts ({period['start']}) after it ends ({period['end']})"
    return None


def _calibration_problem(block) -> str | None:
    """The optional ``calibration`` block: the map from fit score to win probability."""
    if block is None:
        return None
    if not isinstance(block, dict):
        return "'calibration' must be an object or null"
    method, status = block.get("method"), block.get("status", "ok")
    if method not in CALIBRATION_METHODS:
        return f"calibration.method is {method!r}; expected one of {', '.join(CALIBRATION_METHODS)}"
    if status not in CALIBRATION_STATUSES:
        return (
            f"calibration.status is {status!r}; expected one of {', '.join(CALIBRATION_STATUSES)}"
        )
    for key in ("n", "events"):
        value = block.get(key, 0)
        if not (isinstance(value, int) and not isinstance(value, bool) and value >= 0):
            return f"calibration.{key} must be a whole number, not {value!r}"
    problem = _period_problem("calibration.period", block.get("period"))
    check = block.get("check")
    if problem is None and check is not None:
        if not isinstance(check, dict):
            return "calibration.check must be an object or null"
        problem = _period_problem("calibration.check.period", check.get("period"))
    if problem or status != "ok":
        return problem
    parameters = block.get("parameters")
    if not isinstance(parameters, dict):
        return "calibration.parameters must be an object"
    if method == "logistic":
        for key in ("intercept", "slope"):
            if not _finite(parameters.get(key)):
                return f"calibration.parameters.{key} must be a finite number"
        return None
    scores, probabilities = parameters.get("breakpoints"), parameters.get("probabilities")
    if not (
        isinstance(scores, list)
        and isinstance(probabilities, list)
        and scores
        and len(scores) == len(probabilities)
        and all(map(_finite, scores + probabilities))
    ):
        return (
            "calibration.parameters needs breakpoints and probabilities: equal-length lists "
            "of numbers"
        )
    if any(b <= a for a, b in zip(scores, scores[1:], strict=False)):
        return "calibration.parameters.breakpoints must increase"
    if any(b < a for a, b in zip(probabilities, probabilities[1:], strict=False)) or not (
        probabilities[0] >= 0 and probabilities[-1] <= 1
    ):
        return "calibration.parameters.probabilities must not decrease and lie in 0-1"
    return None


def icp_problem(spec) -> str | None:
    """The first thing wrong with an icp.json document, in words, or None when it can be used."""
    if not isinstance(spec, dict):
        return "not a JSON object"
    version = spec.get("format", ICP_FORMAT)
    if version != ICP_FORMAT:
        return f"format {version!r} is not one this kit reads (format {ICP_FORMAT})"
    for check, key in ((_rules_problem, "rules"), (_tiers_problem, "tiers")):
        problem = check(spec.get(key))
        if problem:
            return problem
    return _scorecard_problem(spec.get("scorecard")) or _calibration_problem(
        spec.get("calibration")
    )
