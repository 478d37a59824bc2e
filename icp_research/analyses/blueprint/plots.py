"""Plots of the blueprint: scorecard points, rule lifts, backtest. Each returns the Axes."""

from __future__ import annotations

import numpy as np
import pandas as pd

from icp_research.analyses.blueprint.result import Blueprint
from icp_research.analyses.blueprint.rules import main_evidence
from icp_research.formatting import error_bars


def plot_scorecard(blueprint: Blueprint, *, ax=None, max_levels: int = 40):
    """Points of each attribute level or bin against the attribute's neutral score (horizontal
    bars, attributes in order of their weight). Returns the Axes."""
    import matplotlib.pyplot as plt

    scorecard = blueprint.scorecard
    table = scorecard.table() if scorecard is not None else pd.DataFrame()
    table = table.head(max_levels)
    if ax is None:
        _, ax = plt.subplots(figsize=(8, max(2.5, 0.28 * len(table) + 1)))
    if table.empty:
        ax.text(0.5, 0.5, "No fit score", ha="center", va="center", transform=ax.transAxes)
        ax.set_axis_off()
        return ax
    labels = [f"{a}: {lv}" for a, lv in zip(table["attribute"], table["level"], strict=True)]
    values = pd.to_numeric(table["vs_neutral"], errors="coerce").to_numpy(dtype=float)
    values = np.where(np.isfinite(values), values, 0.0)
    positions = np.arange(len(table))[::-1]
    colors = np.where(values >= 0, "#0173B2", "#D55E00")
    ax.barh(positions, values, color=colors)
    ax.set_yticks(positions)
    ax.set_yticklabels(labels)
    ax.axvline(0, color="0.3", linewidth=0.8)
    # Room for the labels beside the bars, also when every bar is (nearly) zero.
    pad = max(1.5, 0.15 * float(values.max() - values.min()))
    ax.set_xlim(min(float(values.min()), 0.0) - pad, max(float(values.max()), 0.0) + pad)
    for position, value, points in zip(positions, values, table["points"], strict=True):
        ax.text(
            value + (0.5 if value >= 0 else -0.5),
            position,
            f"{points}",
            va="center",
            ha="left" if value >= 0 else "right",
            fontsize=8,
            color="0.25",
        )
    ax.set_xlabel("Points above or below the attribute's neutral score (label: points)")
    ax.set_title(f"Fit score points ({scorecard.outcome}; 0–100)")
    return ax


def plot_rule_lifts(blueprint: Blueprint, *, ax=None):
    """Each include and exclude rule's lift on its main outcome: training (circle, 95% CI)
    and the confirmation quarters (square). Returns the Axes."""
    import matplotlib.pyplot as plt

    rows = []
    for rule in [*blueprint.include, *blueprint.exclude]:
        main = main_evidence(rule)
        if main is None or not np.isfinite(main.training["lift"]):
            continue
        rows.append((rule, main))
    if ax is None:
        _, ax = plt.subplots(figsize=(8, max(2.5, 0.45 * len(rows) + 1)))
    if not rows:
        ax.text(0.5, 0.5, "No rules", ha="center", va="center", transform=ax.transAxes)
        ax.set_axis_off()
        return ax
    positions = np.arange(len(rows))[::-1]
    for position, (rule, main) in zip(positions, rows, strict=True):
        color = "#0173B2" if rule.kind == "include" else "#D55E00"
        t = main.training
        lift = t["lift"]
        ax.errorbar(
            lift,
            position,
            xerr=error_bars(lift, t["ci_low"], t["ci_high"]),
            fmt="o",
            color=color,
            capsize=3,
        )
        h = main.holdout
        if h is not None and h.get("n") and np.isfinite(h.get("lift", np.nan)):
            ax.plot(h["lift"], position - 0.25, "s", color=color, alpha=0.6)
    ax.set_yticks(positions)
    ax.set_yticklabels([f"{r.kind}: {r.text} ({m.sample.words[0]})" for r, m in rows], fontsize=9)
    ax.axvline(1, color="0.3", linestyle="--", linewidth=0.8)
    ax.set_xlim(left=0)
    ax.set_xlabel("Rate in the rule / rate elsewhere (1 = no difference)")
    ax.set_title("Rule evidence: discovery (circles) and confirmation quarters (squares)")
    return ax


def plot_backtest(blueprint: Blueprint, *, ax=None):
    """Per backtested quarter, the rate at which each tier's accounts converted (or stayed),
    with 95% intervals. Returns the Axes."""
    import matplotlib.pyplot as plt

    table = blueprint.backtest
    if ax is None:
        _, ax = plt.subplots(figsize=(8, 4))
    if table is None or table.empty:
        ax.text(0.5, 0.5, "No backtest", ha="center", va="center", transform=ax.transAxes)
        ax.set_axis_off()
        return ax
    quarters = list(dict.fromkeys(table["quarter"]))
    tiers = list(dict.fromkeys(table["tier"]))
    width = 0.8 / len(tiers)
    palette = ["#0173B2", "#DE8F05", "#949494", "#029E73", "#D55E00"]
    for i, tier in enumerate(tiers):
        part = table[table["tier"] == tier].set_index("quarter").reindex(quarters)
        x = np.arange(len(quarters)) + (i - (len(tiers) - 1) / 2) * width
        rate = part["rate"].to_numpy(float)
        ax.bar(
            x,
            np.nan_to_num(rate),
            width,
            yerr=error_bars(rate, part["ci_low"], part["ci_high"]),
            capsize=2,
            label=tier,
            color=palette[i % len(palette)],
        )
    ax.set_xticks(np.arange(len(quarters)))
    ax.set_xticklabels(quarters)
    event = blueprint.backtest_summary["event"].iloc[0] if len(blueprint.backtest_summary) else ""
    ax.set_ylabel(f"share that {event} in the quarter")
    ax.yaxis.set_major_formatter(lambda v, _: f"{v:.0%}")
    ax.set_title("Backtest: accounts scored at each quarter's start (95% CI)")
    ax.legend(frameon=False)
    return ax
