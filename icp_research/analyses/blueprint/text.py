"""Small formatters the blueprint's modules share: rates as percentages, lists in words,
JSON-plain values, and the words of each outcome."""

from __future__ import annotations

import math
from collections.abc import Sequence

import numpy as np

OUTCOME_WORDS = {
    "won": ("win rate", "won", "deals"),
    "retained": ("12-month retention", "retained", "customers"),
    "best_customer": ("best-customer rate", "best customers", "customers"),
    "churn": ("churn rate", "churned", "customers"),
    "no_decision": ("'no decision' share", "no decision", "lost deals"),
}


SOURCE_NAMES = {
    "significance": "predictor significance",
    "churn": "churn analysis",
    "deals": "lost-deal analysis",
    "patterns": "pattern discovery",
}


def per100(x) -> str:
    return "–" if x is None or not np.isfinite(x) else f"{100 * x:.0f}"


def pct(x) -> str:
    return "–" if x is None or not np.isfinite(x) else f"{100 * x:.0f}%"


def plain(value):
    if isinstance(value, np.bool_ | bool):
        return bool(value)
    if isinstance(value, np.integer):
        return int(value)
    if isinstance(value, float | np.floating):
        value = float(value)
        return value if math.isfinite(value) else None
    return value


def join_and(items: Sequence[str]) -> str:
    items = list(items)
    if len(items) <= 1:
        return "".join(items)
    return ", ".join(items[:-1]) + " and " + items[-1]


def join_or(items: Sequence[str]) -> str:
    items = list(items)
    if len(items) <= 1:
        return "".join(items)
    return ", ".join(items[:-1]) + " or " + items[-1]


def lift_text(values: dict) -> str:
    lift = values.get("lift")
    if lift is None or not np.isfinite(lift):
        return "ratio –"
    text = f"{lift:.2f}x"
    low, high = values.get("ci_low"), values.get("ci_high")
    if low is not None and high is not None and np.isfinite(low) and np.isfinite(high):
        text += f", 95% CI {low:.2f}–{high:.2f}"
    return text


def rate_ci_text(rate, low, high) -> str:
    if rate is None or not np.isfinite(rate):
        return "–"
    if low is None or not np.isfinite(low):
        return pct(rate)
    return f"{pct(rate)} ({pct(low)}–{pct(high)})"


def plain_records(frame) -> list[dict]:
    if frame is None or len(frame) == 0:
        return []
    return [
        {k: (v if isinstance(v, str) else plain(v)) for k, v in row.items()}
        for row in frame.to_dict("records")
    ]
