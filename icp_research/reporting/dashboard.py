"""The run dashboard's pictures, drawn from the run's artifacts when the dashboard is built.

* **ICP vs the rest over the quarters**: the win rate of ICP accounts and of the other accounts
  per quarter, with 95% intervals (``icp_health.csv``, groups ``icp`` and ``non_icp``), when the
  health report measured at least two quarters;
* **win rate by fit-score tier**: bars with 95% intervals for the latest quarter
  (``icp_health.csv``, tier rows), else the blueprint's holdout tiers (``icp.json``,
  ``validation.tiers``).

Both are static PNG images with alt text that states the numbers, like every chart of the
reports. A run without those artifacts (no opportunities, no ICP) gets no picture.
"""

from __future__ import annotations

import base64
import io
import json
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import pandas as pd

from icp_research.formatting import fmt_pct

__all__ = ["Chart", "dashboard_charts"]

_BLUE = "#0173b2"
_GREY = "#949494"
_TIER_COLOURS = ("#0173b2", "#56a3d0", "#a9cfe8", "#d7e7f2")
_STYLE = {
    "figure.dpi": 100,
    "savefig.dpi": 100,
    "font.size": 10,
    "axes.titlesize": 12,
    "axes.titleweight": "bold",
    "axes.spines.top": False,
    "axes.spines.right": False,
    "axes.grid": True,
    "axes.grid.axis": "y",
    "grid.color": "#dbe1e8",
    "text.parse_math": False,
}


@dataclass(frozen=True)
class Chart:
    """A picture for the dashboard: a ``data:`` URI of a PNG, its alt text and caption."""

    src: str
    alt: str
    caption: str


def dashboard_charts(artifacts: Path | str | None) -> list[Chart]:
    """The dashboard's charts from a run's ``artifacts`` folder (none when it lacks the data)."""
    if artifacts is None:
        return []
    folder = Path(artifacts)
    health = _health(folder / "icp_health.csv")
    charts = []
    trend = _trend_chart(health)
    if trend is not None:
        charts.append(trend)
    tiers = _tier_chart(health, folder / "icp.json")
    if tiers is not None:
        charts.append(tiers)
    return charts


def _health(path: Path) -> pd.DataFrame:
    try:
        frame = pd.read_csv(path, keep_default_na=False, na_values=[""])
    except (OSError, ValueError, pd.errors.EmptyDataError):
        return pd.DataFrame()
    needed = {"metric", "group", "quarter", "value", "ci_low", "ci_high", "n"}
    if not needed <= set(frame.columns):
        return pd.DataFrame()
    frame = frame[frame["metric"] == "win_rate"].copy()
    for column in ("value", "ci_low", "ci_high", "n"):
        frame[column] = pd.to_numeric(frame[column], errors="coerce")
    frame["quarter"] = frame["quarter"].astype(str)
    return frame.dropna(subset=["value"])


def _deals(n) -> str:
    n = int(n) if pd.notna(n) else 0
    return f"n={n:,} deal" + ("" if n == 1 else "s")


def _trend_chart(health: pd.DataFrame) -> Chart | None:
    if health.empty:
        return None
    groups = {
        group: health[health["group"] == group].set_index("quarter").sort_index()
        for group in ("icp", "non_icp")
    }
    quarters = sorted(set(groups["icp"].index) & set(groups["non_icp"].index))
    if len(quarters) < 2:
        return None
    import matplotlib
    from matplotlib.figure import Figure

    with _clean_style():
        fig = Figure(figsize=(6.4, 3.6))
        ax = fig.subplots()
        x = np.arange(len(quarters))
        for group, label, colour, marker in (
            ("icp", "ICP accounts", _BLUE, "o"),
            ("non_icp", "The rest", _GREY, "s"),
        ):
            rows = groups[group].loc[quarters]
            ax.fill_between(x, rows["ci_low"], rows["ci_high"], color=colour, alpha=0.18, lw=0)
            ax.plot(x, rows["value"], color=colour, marker=marker, lw=2, label=label)
        ax.set_xticks(x, quarters)
        if len(quarters) > 6:
            ax.tick_params(axis="x", labelrotation=45)
        ax.yaxis.set_major_formatter(matplotlib.ticker.PercentFormatter(1.0, decimals=0))
        top = max(groups[g].loc[quarters, "ci_high"].max() for g in groups)
        ax.set_ylim(0, min(1.0, (top if np.isfinite(top) else 1.0) * 1.3) or 1.0)
        ax.set_ylabel("Win rate (new business)")
        ax.set_title("Win rate per quarter: ICP accounts vs the rest (95% intervals)")
        ax.legend(loc="upper left", frameon=False, ncols=2)
        src = _png(fig)
    icp, rest = groups["icp"].loc[quarters[-1]], groups["non_icp"].loc[quarters[-1]]
    better = int(
        (groups["icp"].loc[quarters, "value"] > groups["non_icp"].loc[quarters, "value"]).sum()
    )
    alt = (
        f"Line chart of the win rate of new-business deals per quarter, {quarters[0]} to "
        f"{quarters[-1]}, ICP accounts against the rest, with 95% intervals. In "
        f"{quarters[-1]}: ICP accounts {fmt_pct(icp['value'])} "
        f"({fmt_pct(icp['ci_low'])}–{fmt_pct(icp['ci_high'])}, {_deals(icp['n'])}), the rest "
        f"{fmt_pct(rest['value'])} ({fmt_pct(rest['ci_low'])}–{fmt_pct(rest['ci_high'])}, "
        f"{_deals(rest['n'])}). The ICP's win rate was the higher one in {better} of "
        f"{len(quarters)} quarters."
    )
    caption = (
        "Win rate of closed new-business deals per quarter, ICP accounts against the rest; "
        "shaded: 95% intervals (from the ICP health report)."
    )
    return Chart(src, alt, caption)


def _tier_rows(health: pd.DataFrame, icp_json: Path) -> tuple[pd.DataFrame, str]:
    """Tier rows (``group``, ``value``, ``ci_low``, ``ci_high``, ``n``) and where they are from."""
    tiers = health[health["group"].astype(str).str.startswith("Tier")] if len(health) else health
    if len(tiers):
        latest = max(tiers["quarter"])
        return tiers[tiers["quarter"] == latest].sort_values("group"), latest
    try:
        validation = json.loads(icp_json.read_text(encoding="utf-8")).get("validation") or {}
    except (OSError, ValueError, AttributeError):
        return pd.DataFrame(), ""
    if validation.get("outcome") not in (None, "won"):
        return pd.DataFrame(), ""
    rows = [
        {
            "group": str(t.get("tier")),
            "value": t.get("rate"),
            "ci_low": t.get("ci_low"),
            "ci_high": t.get("ci_high"),
            "n": t.get("n"),
        }
        for t in validation.get("tiers") or []
        if isinstance(t, dict) and t.get("rate") is not None
    ]
    return pd.DataFrame(rows), "the latest quarters"


def _tier_chart(health: pd.DataFrame, icp_json: Path) -> Chart | None:
    rows, when = _tier_rows(health, icp_json)
    if rows.empty:
        return None
    rows = rows.astype({"value": float, "ci_low": float, "ci_high": float})
    import matplotlib
    from matplotlib.figure import Figure

    names = [str(g) for g in rows["group"]]
    values = rows["value"].to_numpy()
    low = np.clip(values - rows["ci_low"].to_numpy(), 0, None)
    high = np.clip(rows["ci_high"].to_numpy() - values, 0, None)
    with _clean_style():
        fig = Figure(figsize=(6.4, 3.6))
        ax = fig.subplots()
        colours = [_TIER_COLOURS[min(i, len(_TIER_COLOURS) - 1)] for i in range(len(names))]
        bars = ax.bar(
            names,
            values,
            color=colours,
            yerr=[np.nan_to_num(low), np.nan_to_num(high)],
            capsize=6,
            ecolor="#1d2733",
            width=0.6,
        )
        for bar, value, n in zip(bars, values, rows["n"], strict=True):
            ax.annotate(
                f"{fmt_pct(value)}\n{_deals(n)}",
                (bar.get_x() + bar.get_width() / 2, 0),
                xytext=(0, 4),
                textcoords="offset points",
                ha="center",
                va="bottom",
                fontsize=9,
                color="#ffffff" if value > 0.12 else "#1d2733",
            )
        ax.yaxis.set_major_formatter(matplotlib.ticker.PercentFormatter(1.0, decimals=0))
        ax.set_ylim(bottom=0)
        ax.set_ylabel("Win rate (new business)")
        ax.set_title(f"Win rate by fit-score tier, {when} (95% intervals)")
        src = _png(fig)
    parts = [
        f"{name} {fmt_pct(v)} ({fmt_pct(lo)}–{fmt_pct(hi)}, {_deals(n)})"
        for name, v, lo, hi, n in zip(
            names, values, rows["ci_low"], rows["ci_high"], rows["n"], strict=True
        )
    ]
    alt = f"Bar chart of the win rate by fit-score tier in {when}, with 95% intervals: " + (
        "; ".join(parts) + "."
    )
    caption = (
        f"Win rate of closed new-business deals by fit-score tier, {when}; bars: 95% intervals."
    )
    return Chart(src, alt, caption)


def _clean_style():
    """matplotlib's defaults plus :data:`_STYLE`, whatever the process set before (the
    dashboard is drawn in the runner's process, which may have styled plots of its own): the
    same data gives the same PNG bytes. Restored on exit."""
    import contextlib

    import matplotlib

    @contextlib.contextmanager
    def style():
        with matplotlib.rc_context():
            matplotlib.rcdefaults()
            matplotlib.rcParams.update(_STYLE)
            yield

    return style()


def _png(fig) -> str:
    from matplotlib.backends.backend_agg import FigureCanvasAgg

    from icp_research.reporting.display import wrap_titles

    FigureCanvasAgg(fig)  # a renderer to measure the titles with, no pyplot state
    wrap_titles(fig)
    fig.tight_layout()
    buffer = io.BytesIO()
    fig.savefig(buffer, format="png", bbox_inches="tight", facecolor="#ffffff")
    return "data:image/png;base64," + base64.b64encode(buffer.getvalue()).decode("ascii")
