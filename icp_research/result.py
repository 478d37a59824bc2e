"""The one result shape every analysis returns.

Like a lifelines fitter or a statsmodels results object, a :class:`Result` prints well and
carries its own caveats: ``findings`` are the plain-language sentences a stakeholder reads first,
``summary`` is the main table, ``tables`` holds supporting tables by name, and ``caveats`` are
warnings that travel with the numbers they qualify ("not enough evidence", "deals cluster by
account", "model did not converge"). Plots are module-level ``plot_*`` functions that take a
result (or data) first, keyword-only options and ``ax=None``, and return the Axes.
"""

from __future__ import annotations

import html
from dataclasses import dataclass, field
from pathlib import Path

import pandas as pd

#: How an empty view reads: "not enough evidence" (the default), or a plain callout of one of
#: these kinds ("success" for a reassuring empty result such as "no segment churns faster").
EMPTY_KINDS = ("not_enough_evidence", "info", "success", "skipped", "warning")


@dataclass
class View:
    """A table a report shows, or the reason there is none: the one spelling of "not computed".

    ``what`` names the evidence in the reader's words ("differences in churn between segments");
    ``reason`` says why it is empty, and ``empty_as`` how that reads (see :data:`EMPTY_KINDS`).
    ``notes`` are sentences shown under the table. A view is true when it has rows, so a notebook
    can draw its figure only then.
    """

    what: str
    table: pd.DataFrame = field(default_factory=pd.DataFrame)
    reason: str = ""
    empty_as: str = "not_enough_evidence"
    notes: list[str] = field(default_factory=list)
    max_rows: int | None = None

    def __post_init__(self):
        if self.empty_as not in EMPTY_KINDS:
            raise ValueError(f"empty_as must be one of {EMPTY_KINDS}, not {self.empty_as!r}")
        if self.table is None:
            self.table = pd.DataFrame()

    def __bool__(self) -> bool:
        return len(self.table) > 0

    def __repr__(self) -> str:
        state = f"{len(self.table)} rows" if self else f"empty: {self.reason}"
        return f"<View {self.what}: {state}>"


@dataclass
class Result:
    title: str
    summary: pd.DataFrame = field(default_factory=pd.DataFrame)
    findings: list[str] = field(default_factory=list)
    caveats: list[str] = field(default_factory=list)
    tables: dict[str, pd.DataFrame] = field(default_factory=dict)
    params: dict = field(default_factory=dict)

    def __repr__(self) -> str:
        return (
            f"<{type(self).__name__}: {self.title}; {len(self.summary)} rows, "
            f"{len(self.findings)} findings, {len(self.caveats)} caveats>"
        )

    @property
    def ok(self) -> bool:
        """False when the analysis could not be computed at all (see ``caveats``)."""
        return not self.summary.empty or bool(self.findings)

    def print_summary(self, max_rows: int = 30) -> None:
        """Print the title, findings, summary table and caveats as plain text."""
        print(self.title)
        print("=" * len(self.title))
        for line in self.findings:
            print(f"- {line}")
        if not self.summary.empty:
            with pd.option_context("display.max_rows", max_rows, "display.width", 120):
                print(self.summary)
        for line in self.caveats:
            print(f"note: {line}")

    def _repr_html_(self) -> str:
        from icp_research.formatting import table_html

        parts = [f"<h3>{html.escape(self.title)}</h3>"]
        if self.findings:
            items = "".join(f"<li>{html.escape(f)}</li>" for f in self.findings)
            parts.append(f"<ul class='icp-findings'>{items}</ul>")
        if not self.summary.empty:
            parts.append(table_html(self.summary))
        if self.caveats:
            items = "".join(f"<li>{html.escape(c)}</li>" for c in self.caveats)
            parts.append(f"<ul class='icp-caveats'>{items}</ul>")
        return "\n".join(parts)

    def views(self) -> dict:
        """``{name: callable returning a View}``: the named tables a report shows. Subclasses
        override this; the base result has none."""
        return {}

    def view(self, name: str) -> View:
        """The named view (see :meth:`views`), with its reason when it is empty."""
        views = self.views()
        if name not in views:
            known = ", ".join(sorted(views)) or "none"
            raise KeyError(f"{type(self).__name__} has no view {name!r}; it has: {known}")
        return views[name]()

    def save(self, directory: str | Path, name: str) -> Path:
        """Write ``summary`` to ``directory/name.csv`` (spreadsheet-safe) and return the path."""
        from icp_research.artifacts import write_csv

        return write_csv(self.summary, Path(directory) / f"{name}.csv")
