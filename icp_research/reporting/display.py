"""Display helpers for report notebooks: escaped HTML, formatted tables, figures with alt text.

Notebooks import this module as ``report``; it gathers the formatters of
:mod:`icp_research.formatting` and the artifact writers of :mod:`icp_research.artifacts` with the
figure helpers below, so a notebook needs one import. Notebooks display these objects; they never
build HTML strings themselves.
"""

from __future__ import annotations

import base64
import io

from icp_research.artifacts import spreadsheet_safe, write_csv, write_json, write_text
from icp_research.formatting import (
    HTML,
    MAX_CELL_CHARS,
    MAX_LABEL_CHARS,
    MAX_WORD_CHARS,
    bullets,
    callout,
    error_bars,
    esc,
    fmt_interval,
    fmt_money,
    fmt_number,
    fmt_p,
    fmt_pct,
    fmt_rate_ci,
    fmt_ratio,
    kpis,
    not_enough_evidence,
    prose,
    short_label,
    summary,
    table,
    table_html,
)
from icp_research.result import View

__all__ = [
    "HTML",
    "MAX_CELL_CHARS",
    "MAX_LABEL_CHARS",
    "MAX_WORD_CHARS",
    "bullets",
    "callout",
    "error_bars",
    "esc",
    "figure",
    "fmt_interval",
    "fmt_money",
    "fmt_number",
    "fmt_p",
    "fmt_pct",
    "fmt_rate_ci",
    "fmt_ratio",
    "kpis",
    "not_enough_evidence",
    "prose",
    "set_style",
    "show",
    "short_label",
    "spreadsheet_safe",
    "summary",
    "table",
    "table_html",
    "write_csv",
    "write_json",
    "wrap_titles",
    "write_text",
]

# ---------------------------------------------------------------------------------------------
# Figures


def set_style() -> None:
    """The kit's seaborn theme: white grid, readable fonts, colour-blind-safe palette."""
    import matplotlib
    import seaborn as sns

    sns.set_theme(style="whitegrid", context="notebook", palette="colorblind")
    matplotlib.rcParams.update(
        {
            "figure.figsize": (8, 4.5),
            "figure.dpi": 100,
            "savefig.dpi": 100,
            "axes.titleweight": "bold",
            "axes.titlesize": 12,
            "figure.autolayout": True,
            # Labels come from data: "$5k–$20k" or "Price $\\frac{" must stay text, not TeX.
            "text.parse_math": False,
        }
    )


def figure(fig_or_ax, alt: str, *, width: int | None = None) -> HTML:
    """Embed a matplotlib figure as a PNG ``<img>`` with alt text, and close it.

    Accepts a Figure or an Axes. The image is inlined (base64), so the report stays
    self-contained.
    """
    import matplotlib
    import matplotlib.pyplot as plt

    fig = (
        fig_or_ax.figure
        if hasattr(fig_or_ax, "figure") and not hasattr(fig_or_ax, "savefig")
        else fig_or_ax
    )
    buf = io.BytesIO()
    try:
        wrap_titles(fig)
        _plain_labels(fig)
        with matplotlib.rc_context({"text.parse_math": False}):
            fig.savefig(buf, format="png", bbox_inches="tight")
    finally:
        plt.close(fig)
    data = base64.b64encode(buf.getvalue()).decode("ascii")
    style = f" style='max-width:{int(width)}px'" if width else ""
    return HTML(
        f"<figure class='icp-figure'><img src='data:image/png;base64,{data}' alt='{esc(alt)}'{style}>"
        f"<figcaption>{esc(alt)}</figcaption></figure>"
    )


#: Most lines a title wraps into; the rest of a longer one is cut with an ellipsis.
MAX_TITLE_LINES = 3


def _titles(fig) -> list:
    """The titles drawn on a figure: every axes' titles and the figure's suptitle."""
    texts = [t for ax in fig.axes for t in (ax.title, ax._left_title, ax._right_title)]
    suptitle = getattr(fig, "_suptitle", None)
    return [t for t in [*texts, suptitle] if t is not None and t.get_text().strip()]


def wrap_titles(fig) -> None:
    """Wrap every title of ``fig`` onto lines that fit the width it is drawn over.

    An axes title gets the width of its axes (the whole figure when it is wider), the
    suptitle the figure's width: a long title is broken between words instead of running out
    of the picture (or widening it, so that the report scales the whole chart down). At most
    :data:`MAX_TITLE_LINES` lines; a longer title ends with an ellipsis.
    """
    import textwrap

    renderer = fig.canvas.get_renderer()
    for text in _titles(fig):
        axes = text.axes
        available = fig.bbox.width if axes is None else axes.get_window_extent(renderer).width
        available = min(max(available, fig.bbox.width * 0.5), fig.bbox.width) * 0.96
        original = " ".join(text.get_text().split())
        text.set_parse_math(False)
        if text.get_window_extent(renderer).width <= available:
            continue
        width = len(original)
        while width > 8:
            measured = text.get_window_extent(renderer).width
            width = max(8, min(width - 1, int(width * available / max(measured, 1.0))))
            lines = textwrap.wrap(original, width, break_long_words=True) or [original]
            if len(lines) > MAX_TITLE_LINES:
                kept = lines[: MAX_TITLE_LINES - 1]
                rest = " ".join(lines[MAX_TITLE_LINES - 1 :])
                lines = [*kept, short_label(rest, width)]
            text.set_text("\n".join(lines))
            if text.get_window_extent(renderer).width <= available:
                break


def _plain_labels(fig) -> None:
    """Make every text of a figure plain and short, whatever the plot function drew.

    Category labels come from data: mathtext would try to parse their dollar signs (and fail
    on some), and a 10,000-character label would make a picture 80,000 pixels wide.
    """
    from matplotlib.text import Text
    from matplotlib.ticker import FixedFormatter, FuncFormatter

    titles = {id(t) for t in _titles(fig)}
    for text in fig.findobj(Text):
        text.set_parse_math(False)
        content = text.get_text()
        if id(text) in titles:
            continue  # wrapped to the figure's width by wrap_titles
        if len(content) > MAX_LABEL_CHARS:
            # Titles and axis labels may hold a few lines: cut each one.
            text.set_text("\n".join(short_label(line) for line in content.split("\n")))
    for ax in fig.axes:
        for axis in (ax.xaxis, ax.yaxis):
            formatter = axis.get_major_formatter()
            # Text ticks (categories, seaborn's labels) are formatted at draw time: wrap them.
            if isinstance(formatter, FixedFormatter | FuncFormatter) or (
                type(formatter).__name__ == "StrCategoryFormatter"
            ):
                axis.set_major_formatter(
                    FuncFormatter(
                        lambda value, pos, inner=formatter: short_label(inner(value, pos))
                    )
                )


def show(view: View, *, max_rows: int | None = None) -> HTML:
    """A view as report HTML: its table (with its notes as bullets), or, when it is empty, its
    reason ("Not enough evidence for ...: why", or a callout of the view's kind)."""
    if view:
        rows = max_rows or view.max_rows
        shown = table(view.table, max_rows=rows) if rows else table(view.table)
        return shown + bullets(view.notes) if view.notes else shown
    if view.empty_as == "not_enough_evidence":
        return not_enough_evidence(view.what, view.reason)
    return callout(view.reason, view.empty_as)
