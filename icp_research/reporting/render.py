"""Stakeholder HTML: executed notebooks, the run dashboard and the index of runs.

Three pages, one look (``templates/report/``, one inlined stylesheet):

* :func:`render_notebook` turns an executed notebook into a report without code, prompts,
  parameters, warnings or tracebacks, opening with its plain-language summary, with a table of
  contents built from its headings and a failure banner when it stopped early.
* :func:`render_run_index` writes the run dashboard (``reports/<run>/index.html``) from the
  run's manifest.
* :func:`render_reports_index` lists every run, newest first (``reports/index.html``).

Every page is self-contained: styles are inlined, images are ``data:`` URIs, no script is
emitted and a Content-Security-Policy forbids loading anything else, so a report reads the same
offline and as a mail attachment. Values from data are escaped; HTML that notebook outputs carry
is re-serialised through an allow-list (:func:`sanitize_html`), so neither a company called
``<script>`` nor a stray widget turns into code.
"""

from __future__ import annotations

import copy
import datetime as dt
import functools
import html
import re
import threading
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from html.parser import HTMLParser
from pathlib import Path, PurePosixPath
from urllib.parse import quote

import jinja2
import markupsafe
import nbformat
from nbconvert import HTMLExporter
from nbconvert.filters.markdown_mistune import (
    IPythonRenderer,
    MarkdownWithMath,
    markdown2html_mistune,
)
from nbconvert.preprocessors import Preprocessor, TagRemovePreprocessor
from traitlets import Unicode

from icp_research.bundled import templates_dir

__all__ = [
    "GLOSSARY",
    "HOW_TO_READ",
    "NotebookFailure",
    "ReportPreprocessor",
    "glossary",
    "notebook_failure",
    "notebook_title",
    "render_notebook",
    "render_reports_index",
    "render_run_index",
    "sanitize_html",
]

TEMPLATE_NAME = "report"

#: Cells removed entirely: papermill's parameters and the error markers it inserts (the
#: report shows its own failure banner), plus the usual "hide this cell" tags.
REMOVED_CELL_TAGS = frozenset(
    {"parameters", "injected-parameters", "papermill-error-cell-tag", "remove-cell", "remove_cell"}
)
REMOVED_OUTPUT_TAGS = frozenset({"remove-output", "remove_output"})

#: Anchor of the summary box in the report (the table of contents links to it).
SUMMARY_ANCHOR = "summary"

_SUMMARY_CLASS = re.compile(r"""class\s*=\s*["'][^"']*(?<![\w-])icp-summary(?![\w-])""")
_ANSI = re.compile(r"\x1b\[[0-9;?]*[A-Za-z]")
_CONTROL = re.compile(r"[\x00-\x1f\x7f-\x9f]")
_SCHEME = re.compile(r"^\s*[A-Za-z][A-Za-z0-9+.\-]*:")
_ATX_H1 = re.compile(r"^ {0,3}#(?!#)[ \t]+\S")

# Plain-text outputs that are the by-products of plotting calls, not content:
# "<Figure size 800x450 with 1 Axes>", "<Axes: xlabel='x'>", "Text(0.5, 1.0, 'Win rate')",
# "[<matplotlib.lines.Line2D at 0x7f...>]", "<seaborn.axisgrid.FacetGrid at 0x7f...>".
_PLOT_NOISE = re.compile(
    r"^\s*(?:\[?<(?:Figure|Axes|AxesSubplot|matplotlib\.|seaborn\.|mpl_toolkits\.)[^\n]*>\]?"
    r"|Text\([^\n]*\)|<[\w.]+ (?:object )?at 0x[0-9a-fA-F]+>)\s*$"
)

# Output types the report can show without JavaScript. Others (widgets, JavaScript, JSON,
# PDF) are dropped, so their text or image fallback is what the reader sees.
_RENDERED_MIME_TYPES = (
    "text/html",
    "text/markdown",
    "image/svg+xml",
    "image/png",
    "image/jpeg",
    "text/latex",
    "text/plain",
)


@functools.lru_cache(maxsize=1)
def _css() -> markupsafe.Markup:
    css = (templates_dir() / TEMPLATE_NAME / "report.css").read_text(encoding="utf-8")
    # Our own file, inlined verbatim inside <style>; it must not be able to close the element.
    if "</" in css:
        raise ValueError("report.css must not contain '</'")
    return markupsafe.Markup(css)  # trusted: the stylesheet shipped with the kit


# ---------------------------------------------------------------------------------------------
# Notebook facts the runner needs too


@dataclass(frozen=True)
class NotebookFailure:
    """Where and why an executed notebook stopped.

    ``cell`` is the number the analyst sees in Jupyter and in papermill's message
    ("In [N]"): the execution count of the failing cell, or its 1-based position among the
    notebook's cells when it has none. ``cell_index`` is its 0-based index in ``nb.cells``.
    ``error`` is one line such as ``"KeyError: 'arr'"``.
    """

    cell: int
    cell_index: int
    error: str


def notebook_failure(nb: nbformat.NotebookNode) -> NotebookFailure | None:
    """The first failing cell of an executed notebook, or None if it ran through.

    Follows papermill's rules: an ``error`` output fails a cell unless it is ``SystemExit``
    with code 0; a cell papermill marked with ``metadata.papermill.exception`` failed even
    without an error output (killed kernel, timeout).
    """
    position = 0
    for index, cell in enumerate(nb.cells):
        if "papermill-error-cell-tag" in cell.get("metadata", {}).get("tags", []):
            continue
        position += 1
        if cell.get("cell_type") != "code":
            continue
        number = cell.get("execution_count") or position
        for output in cell.get("outputs", []):
            if output.get("output_type") != "error":
                continue
            ename = str(output.get("ename") or "Error")
            evalue = output.get("evalue")
            if ename == "SystemExit" and str(evalue or "") in ("", "0"):
                continue
            return NotebookFailure(number, index, _error_line(ename, evalue))
        if cell.get("metadata", {}).get("papermill", {}).get("exception") is True:
            message = "the cell did not finish (the kernel died or timed out)"
            return NotebookFailure(number, index, message)
    return None


def notebook_title(nb: nbformat.NotebookNode) -> str | None:
    """The text of the notebook's first level-1 heading, or None."""
    for cell in nb.cells:
        if cell.get("cell_type") != "markdown":
            continue
        for heading in _headings(markdown2html_mistune(_source(cell))):
            if heading.level == 1 and heading.text:
                return heading.text
    return None


def _error_line(ename: str, evalue) -> str:
    lines = [line.strip() for line in _ANSI.sub("", str(evalue or "")).splitlines()]
    first = next((line for line in lines if line), "")
    return _one_line(f"{ename}: {first}" if first else ename)


def _one_line(text, limit: int = 300) -> str:
    text = " ".join(_ANSI.sub("", str(text)).split())
    return text if len(text) <= limit else text[: limit - 1].rstrip() + "…"


def _source(cell) -> str:
    source = cell.get("source", "")
    return "".join(source) if isinstance(source, list) else str(source)


# ---------------------------------------------------------------------------------------------
# HTML helpers: headings and an allow-list sanitizer


@dataclass(frozen=True)
class _Heading:
    level: int
    id: str | None
    text: str


class _HeadingCollector(HTMLParser):
    """Collect h1-h4 elements (level, id, visible text) from an HTML fragment."""

    def __init__(self):
        super().__init__(convert_charrefs=True)
        self.headings: list[_Heading] = []
        self._current: tuple[int, str | None] | None = None
        self._text: list[str] = []
        self._skip = 0

    def handle_starttag(self, tag, attrs):
        if tag in ("h1", "h2", "h3", "h4") and self._current is None:
            self._current = (int(tag[1]), dict(attrs).get("id"))
            self._text = []
        elif self._current and tag == "a" and "anchor-link" in (dict(attrs).get("class") or ""):
            self._skip += 1

    def handle_endtag(self, tag):
        if self._current and tag == "a" and self._skip:
            self._skip -= 1
        elif self._current and tag == f"h{self._current[0]}":
            level, anchor = self._current
            self.headings.append(_Heading(level, anchor, " ".join("".join(self._text).split())))
            self._current = None

    def handle_data(self, data):
        if self._current and not self._skip:
            self._text.append(data)


def _headings(markup: str) -> list[_Heading]:
    collector = _HeadingCollector()
    collector.feed(markup)
    collector.close()
    return collector.headings


def _words(text: str) -> frozenset[str]:
    return frozenset(text.split())


_ALLOWED_TAGS = _words(
    "a abbr b bdi bdo blockquote br caption cite code col colgroup dd del details dfn div dl "
    "dt em figcaption figure h1 h2 h3 h4 h5 h6 hr i img ins kbd li mark ol p pre q s samp "
    "section small span strong sub summary sup table tbody td tfoot th thead time tr u ul var "
    "wbr"
)
# Elements without content or end tag in HTML.
_VOID_TAGS = _words("area base br col embed hr img input link meta source track wbr")
# Dropped together with everything inside them.
_DROPPED_TAGS = _words(
    "script style iframe frame frameset object embed applet noscript template svg math head "
    "title textarea select button form link meta base audio video canvas"
)
_ALLOWED_ATTRIBUTES = _words(
    "class id title lang dir role align valign colspan rowspan scope headers width height alt "
    "start reversed open datetime abbr span"
)
_DATA_IMAGE = re.compile(r"^data:image/(?:png|jpe?g|gif|webp|svg\+xml);base64,[A-Za-z0-9+/=\s]+$")
_UNSAFE_STYLE = re.compile(r"url\s*\(|expression|@import|javascript|behavior|binding|\\|<", re.I)


def _attribute_allowed(tag: str, name: str, value: str | None) -> bool:
    if name in _ALLOWED_ATTRIBUTES or name.startswith("aria-"):
        return True
    if not value:
        return False
    if name == "style":
        return not _UNSAFE_STYLE.search(value)
    if name == "src":
        return tag == "img" and bool(_DATA_IMAGE.match(value.strip()))
    if name == "href":
        return tag == "a" and _relative_href(value, quoted=False) is not None
    return False


class _Sanitizer(HTMLParser):
    def __init__(self):
        super().__init__(convert_charrefs=True)
        self.parts: list[str] = []
        self._dropping: list[str] = []

    def _attributes(self, tag: str, attrs) -> str:
        kept = []
        for name, value in attrs:
            name = name.lower()
            if not _attribute_allowed(tag, name, value):
                continue
            value = value.strip() if name == "src" else value
            kept.append(name if value is None else f'{name}="{html.escape(value, quote=True)}"')
        return "".join(" " + item for item in kept)

    def handle_starttag(self, tag, attrs):
        if self._dropping:
            if tag == self._dropping[-1] and tag not in _VOID_TAGS:
                self._dropping.append(tag)
            return
        if tag in _DROPPED_TAGS:
            if tag not in _VOID_TAGS:
                self._dropping.append(tag)
            return
        if tag in _ALLOWED_TAGS:
            self.parts.append(f"<{tag}{self._attributes(tag, attrs)}>")

    def handle_startendtag(self, tag, attrs):
        if self._dropping or tag in _DROPPED_TAGS:
            return
        if tag in _ALLOWED_TAGS:
            self.parts.append(f"<{tag}{self._attributes(tag, attrs)}>")
            if tag not in _VOID_TAGS:
                self.parts.append(f"</{tag}>")

    def handle_endtag(self, tag):
        if self._dropping:
            if tag == self._dropping[-1]:
                self._dropping.pop()
            return
        if tag in _ALLOWED_TAGS and tag not in _VOID_TAGS:
            self.parts.append(f"</{tag}>")

    def handle_data(self, data):
        if not self._dropping:
            self.parts.append(html.escape(data, quote=False))


def sanitize_html(markup: str) -> str:
    """Re-serialise an HTML fragment through an allow-list.

    Keeps text (re-escaped), document tags (tables, lists, headings, figures ...), classes,
    ids, safe inline styles, ``data:image`` sources and relative or ``#`` links. Drops scripts,
    styles, frames, forms, event handlers (``onerror=``), remote URLs and every element not in
    the list, together with their content for the dangerous ones.
    """
    sanitizer = _Sanitizer()
    sanitizer.feed(str(markup))
    sanitizer.close()
    return "".join(sanitizer.parts)


def _relative_href(path, *, quoted: bool = True) -> str | None:
    """A link that stays inside the report folder, or None.

    Absolute paths, parent-directory steps and anything with a scheme (``https:``,
    ``javascript:``, ``C:``) are refused.
    """
    if path is None:
        return None
    text = str(path).strip().replace("\\", "/")
    # Browsers drop tabs and newlines inside a URL ("java\tscript:" is "javascript:") and
    # ignore other control characters: a link holding any of them is refused outright.
    if _CONTROL.search(text):
        return None
    if not text or _SCHEME.match(text) or text.startswith("/"):
        return None
    if text.startswith("#"):
        return quote(text, safe="#/-_.~%") if quoted else text
    if ".." in PurePosixPath(text.split("#")[0]).parts:
        return None
    return quote(text, safe="/#-_.~%") if quoted else text


# ---------------------------------------------------------------------------------------------
# The preprocessor: outputs, title, summary first, table of contents


class ReportPreprocessor(Preprocessor):
    """Shape an executed notebook into a stakeholder report (runs after tag removal).

    * drops stderr, tracebacks, empty outputs and the text by-products of plotting calls;
      turns data-built Markdown into HTML and passes every HTML output through
      :func:`sanitize_html`; leaves JavaScript-only MIME types out;
    * removes the leading H1 when it repeats ``title`` (the masthead shows it) and marks the
      intro cell so its subtitle reads as a lead paragraph;
    * moves the first ``icp-summary`` box right after the intro, so every report opens with
      what was found;
    * records the table of contents (summary first, then the H1-H3 headings of the Markdown
      cells, linked by nbconvert's own heading ids) in ``resources["icp"]["toc"]``.
    """

    title = Unicode(None, allow_none=True, help="Report title shown in the masthead.").tag(
        config=True
    )

    def preprocess(self, nb, resources):
        for cell in nb.cells:
            if cell.get("cell_type") == "code":
                cleaned = (_clean_output(output) for output in cell.get("outputs", []))
                cell.outputs = [output for output in cleaned if output is not None]
        self._prepare_intro(nb)
        summary_label = _hoist_summary(nb)
        resources.setdefault("icp", {})["toc"] = _table_of_contents(nb, summary_label)
        resources["icp"]["glossary"] = glossary(_visible_text(nb))
        return nb, resources

    def _prepare_intro(self, nb) -> None:
        """Drop the H1 that repeats the masthead title; tag a heading-free intro cell."""
        if not nb.cells or nb.cells[0].get("cell_type") != "markdown":
            return
        intro = nb.cells[0]
        lines = _source(intro).splitlines()
        top = next((i for i, line in enumerate(lines) if line.strip()), None)
        if top is not None and _ATX_H1.match(lines[top]):
            heading = _headings(markdown2html_mistune(lines[top]))
            if heading and (self.title is None or heading[0].text == self.title):
                intro.source = "\n".join(lines[top + 1 :]).strip("\n")
                if not intro.source.strip():
                    nb.cells.pop(0)
                    return
        if not any(h.level >= 2 for h in _headings(markdown2html_mistune(_source(intro)))):
            intro.setdefault("metadata", {}).setdefault("tags", []).append("icp-intro")


def _clean_output(output):
    kind = output.get("output_type")
    if kind == "stream":
        if output.get("name") != "stdout" or not _joined(output.get("text", "")).strip():
            return None
        return output
    if kind not in ("display_data", "execute_result"):
        return None  # errors: the banner reports them; unknown types have no rendering
    data = {
        mime: _joined(value)
        for mime, value in (output.get("data") or {}).items()
        if mime in _RENDERED_MIME_TYPES
    }
    if "text/markdown" in data:
        # Markdown displayed by a notebook is usually built from data: raw HTML in it is text.
        markdown_text = data.pop("text/markdown")
        renderer = IPythonRenderer(escape=True, exclude_anchor_links=True)
        data.setdefault("text/html", MarkdownWithMath(renderer=renderer).render(markdown_text))
    if "text/html" in data:
        data["text/html"] = sanitize_html(data["text/html"])
    data = {mime: value for mime, value in data.items() if str(value).strip()}
    if set(data) == {"text/plain"} and _PLOT_NOISE.match(data["text/plain"]):
        return None
    if not data:
        return None
    cleaned = copy.deepcopy(output)
    cleaned["data"] = nbformat.NotebookNode(data)
    return cleaned


def _joined(value):
    return "".join(value) if isinstance(value, list) else value


def _hoist_summary(nb) -> str | None:
    """Move the first summary box to the top of the report; return its heading text."""
    for cell_index, cell in enumerate(nb.cells):
        if cell.get("cell_type") != "code":
            continue
        for output_index, output in enumerate(cell.get("outputs", [])):
            markup = output.get("data", {}).get("text/html")
            if not markup or not _SUMMARY_CLASS.search(markup):
                continue
            heading = next((h.text for h in _headings(markup) if h.text), "Summary")
            target = 0
            if nb.cells and "icp-intro" in nb.cells[0].get("metadata", {}).get("tags", []):
                target = 1
            already_first = cell_index == target and output_index == 0 and len(cell.outputs) == 1
            if already_first:
                cell.setdefault("metadata", {}).setdefault("tags", []).append("icp-summary")
                return heading
            cell.outputs.pop(output_index)
            above = nb.cells[cell_index - 1] if cell_index > target else None
            if _is_summary_heading(above, heading):
                # A "## Summary" cell written above the box would be left heading nothing.
                nb.cells.pop(cell_index - 1)
            summary_cell = nbformat.v4.new_code_cell(source="", metadata={"tags": ["icp-summary"]})
            summary_cell.outputs = [output]
            nb.cells.insert(target, summary_cell)
            return heading
    return None


def _is_summary_heading(cell, summary_label: str) -> bool:
    """True for a Markdown cell that is nothing but a heading naming the summary."""
    if cell is None or cell.get("cell_type") != "markdown":
        return False
    source = _source(cell).strip()
    if "\n" in source or not source.startswith("#"):
        return False
    headings = _headings(markdown2html_mistune(source))
    names = {summary_label.lower(), "summary", "executive summary", "key findings"}
    return len(headings) == 1 and headings[0].text.lower() in names


def _table_of_contents(nb, summary_label: str | None) -> list[dict]:
    entries = []
    for cell in nb.cells:
        tags = cell.get("metadata", {}).get("tags", [])
        if cell.get("cell_type") == "code" and "icp-summary" in tags and summary_label:
            entries.append(
                {"level": 2, "id": SUMMARY_ANCHOR, "text": summary_label, "summary": True}
            )
        elif cell.get("cell_type") == "markdown":
            for heading in _headings(markdown2html_mistune(_source(cell))):
                if heading.level <= 3 and heading.id and heading.text:
                    entries.append(
                        {
                            "level": heading.level,
                            "id": heading.id,
                            "text": heading.text,
                            "summary": False,
                        }
                    )
    # A single entry is not worth a sidebar.
    return entries if len(entries) >= 2 else []


# ---------------------------------------------------------------------------------------------
# How to read a report: one line and a short glossary at its foot

#: The line above the glossary of every report.
HOW_TO_READ = (
    "How to read this: the summary at the top says what was found; below it, every rate "
    "comes with its 95% interval and the number of accounts, customers or deals behind it "
    "(n), and a difference is called significant only after correcting for how many were "
    "tested."
)

#: ``(term, pattern, definition)``: a term is explained at the foot of a report whose text
#: matches its pattern (case-insensitive), in this order.
GLOSSARY: tuple[tuple[str, str, str], ...] = (
    (
        "Interval (95% CI)",
        r"\bCI\b|interval|\d%\s*[–-]\s*\d",
        "The range the true value most likely lies in: 34% (29–40%) means about 34%, and "
        "very likely between 29% and 40%. Wide intervals mean few cases.",
    ),
    ("n", r"\bn ?= ?\d", "How many accounts, customers or deals a number rests on."),
    (
        "q-value",
        r"q-value|\bq [<=]",
        "A p-value corrected for the number of tests run together. Below 0.05 counts as "
        "significant; about 1 in 20 of those may still be chance.",
    ),
    (
        "Latest quarters",
        r"latest quarters",
        "The most recent quarters, kept apart while the patterns were found. In the predictor "
        "report a finding has to hold there too; in the ICP blueprint nothing is chosen on them "
        "at all: they only show how well the finished ICP and fit score work.",
    ),
    (
        "Confirmation quarters",
        r"confirmation quarters",
        "The quarters just before the latest ones: a pattern found in the earlier data has to "
        "hold there too before it becomes part of the ICP.",
    ),
    (
        "Win rate",
        r"win rate|\bwin \d",
        "Won deals as a share of closed new-business deals (won and lost). Its interval counts "
        "accounts, not deals, as the independent pieces of evidence.",
    ),
    (
        "Churn per customer-year",
        r"customer-year",
        "Customers lost for every 100 years of being a customer, so that new and long-standing "
        "customers are compared fairly.",
    ),
    (
        "Hazard ratio",
        r"hazard",
        "How many times as fast one group churns as the others at any point in time; 1 means "
        "no difference.",
    ),
    (
        "Odds ratio",
        r"odds",
        "How many times the odds of an outcome (winning, staying) are in one group against "
        "the rest; 1 means no difference, 0.5 half the odds.",
    ),
    (
        "Lift (2.0x)",
        r"\d\.\d+x\b|\blift",
        "How many times as likely or as often as the rest: 2.0x is twice as often, 0.5x half "
        "as often.",
    ),
    (
        "Best customers",
        r"best customer",
        "The customers with the highest annual recurring revenue among those who became "
        "customers in the same year (by default the top 20% of each year; customers who left "
        "count in their year but are never best).",
    ),
    (
        "Shrunk rate",
        r"shrunk",
        "A rate pulled toward the overall rate when it rests on few deals, so a lucky small "
        "group does not top the list.",
    ),
    (
        "Retention curve (Kaplan-Meier)",
        r"kaplan|retention curve",
        "The share of customers still paying after each month, counting customers who joined "
        "recently for as long as they have been with us.",
    ),
    (
        "Fit score and tiers",
        r"fit score|\btier\b",
        "A 0–100 score of how closely an account matches the ICP; tiers are bands of the "
        "score, Tier 1 the closest fit.",
    ),
    (
        "AUC",
        r"\bAUC\b",
        "How well a score ranks: 0.5 is a coin toss, 1.0 puts every success above every failure.",
    ),
    (
        "ARR / NRR",
        r"\bARR\b|\bNRR\b",
        "Annual recurring revenue; net revenue retention is this year's revenue from last "
        "year's customers as a share of last year's.",
    ),
    (
        "NPS",
        r"\bNPS\b",
        "Net Promoter Score: the share of customers scoring 9–10 minus the share scoring 0–6 "
        "on 'would you recommend us?'.",
    ),
    (
        "Population stability (PSI)",
        r"\bPSI\b|population stability",
        "How far the mix of new accounts has moved from the earlier mix: under 0.1 little, "
        "over 0.25 a lot.",
    ),
)


def glossary(text: str) -> list[tuple[str, str]]:
    """``(term, definition)`` for the :data:`GLOSSARY` terms that ``text`` uses."""
    return [
        (term, definition)
        for term, pattern, definition in GLOSSARY
        if re.search(pattern, text, flags=re.IGNORECASE)
    ]


def _visible_text(nb) -> str:
    """The words a reader sees in a prepared notebook: Markdown cells and shown outputs."""
    parts = []
    for cell in nb.cells:
        if cell.get("cell_type") == "markdown":
            parts.append(_source(cell))
        for output in cell.get("outputs", []) if cell.get("cell_type") == "code" else []:
            data = output.get("data") or {}
            value = data.get("text/html") or data.get("text/plain") or output.get("text") or ""
            parts.append(_joined(value))
    text = re.sub(r"<[^>]+>|data:image/[^\s'\"]+", " ", "\n".join(map(str, parts)))
    return html.unescape(text)


# ---------------------------------------------------------------------------------------------
# Formatting shared by the three pages


def _text(value) -> str:
    return "" if value is None else str(value)


def _when(value) -> str:
    """'2026-11-23T16:00:00+00:00' -> '2026-11-23 16:00 UTC'; unparseable text unchanged."""
    if not value:
        return ""
    text = str(value)
    try:
        moment = dt.datetime.fromisoformat(text.replace("Z", "+00:00"))
    except ValueError:
        return text
    shown = moment.strftime("%Y-%m-%d %H:%M")
    offset = moment.utcoffset()
    if offset is None:
        return shown
    return shown + (" UTC" if not offset else " " + moment.strftime("%z"))


def _rows_text(rows) -> str:
    if rows is None or isinstance(rows, bool):
        return ""
    try:
        return f"{int(rows):,}"
    except (TypeError, ValueError):
        return _text(rows)


def _seconds_text(seconds) -> str:
    try:
        seconds = float(seconds)
    except (TypeError, ValueError):
        return "–"
    if seconds != seconds or seconds < 0:  # NaN
        return "–"
    if seconds < 60:
        return f"{seconds:.1f} s"
    minutes, rest = divmod(round(seconds), 60)
    return f"{minutes} min {rest:02d} s"


def _inputs(inputs) -> list[dict]:
    rows = []
    for item in inputs or []:
        if not isinstance(item, Mapping):
            continue
        path = _text(item.get("path"))
        sha = _text(item.get("sha256"))
        rows.append(
            {
                "table": _text(item.get("table")) or PurePosixPath(path).stem,
                "path": path,
                # A database table or query is named whole; a file by its name.
                "file": (
                    path
                    if item.get("source")
                    else PurePosixPath(path.replace("\\", "/")).name
                    if path
                    else ""
                ),
                "rows_text": _rows_text(item.get("rows"))
                + (f" → {_rows_text(item['records'])}" if item.get("records") is not None else ""),
                "sha256": sha,
                "sha_short": sha[:12],
            }
        )
    return rows


def _status(value) -> str:
    text = _text(value).strip().lower()
    return text if text in ("ok", "skipped", "failed") else "unknown"


def _facts(pairs: Iterable[tuple[str, object]]) -> list[tuple[str, str]]:
    return [(label, _text(value)) for label, value in pairs if value not in (None, "")]


def _kit(version) -> str:
    return f"icp-research {version}" if version else "icp-research"


# ---------------------------------------------------------------------------------------------
# Public API


def render_notebook(notebook: nbformat.NotebookNode | str | Path, *, meta: dict) -> str:
    """Render an executed notebook as a self-contained stakeholder report.

    Parameters
    ----------
    notebook
        The executed notebook, or the path of an ``.ipynb`` file. It is not modified.
    meta
        Page facts from the runner: ``project``, ``title`` (default: the first H1), ``run``,
        ``quarter``, ``as_of``, ``kit_version``, ``generated_at`` (ISO timestamp), ``inputs``
        (list of ``{table, path, rows}``), ``reproduce`` (command line), ``status`` ("ok" or
        "failed"), ``failed_cell``, ``error`` and optionally ``ipynb`` (the executed notebook's
        file name, shown in the failure banner). Missing keys are left out of the page.

    Returns
    -------
    str
        A complete HTML document: no input cells, no parameters, no stderr or tracebacks; the
        summary box first; a banner "This report failed at cell N: ..." when the notebook (or
        ``meta``) says it failed, in which case the cells after the failing one are left out.
    """
    path = None
    if isinstance(notebook, str | Path):
        path = Path(notebook)
        nb = nbformat.read(path, as_version=4)
    else:
        nb = copy.deepcopy(notebook)
    meta = dict(meta or {})

    failure = notebook_failure(nb)
    if failure is not None:
        # Papermill stopped here: what follows is headings and prose without their numbers.
        nb.cells = nb.cells[: failure.cell_index + 1]
    title = _text(meta.get("title")) or notebook_title(nb) or (path.stem if path else "Report")

    status = _status(meta.get("status"))
    if failure is not None or (status == "unknown" and meta.get("error")):
        status = "failed"
    failed_cell = meta.get("failed_cell")
    if failed_cell is None and failure is not None:
        failed_cell = failure.cell
    error = _one_line(meta["error"]) if meta.get("error") else (failure.error if failure else "")

    project = _text(meta.get("project"))
    kit = _kit(meta.get("kit_version"))
    generated = _when(meta.get("generated_at"))
    context = {
        "title": title,
        "project": project,
        "brand": f"{project} · ICP research" if project else "ICP research",
        "facts": _facts(
            [
                ("Quarter", meta.get("quarter")),
                ("As of", meta.get("as_of")),
                ("Run", meta.get("run")),
                ("Kit", kit if meta.get("kit_version") else None),
            ]
        ),
        "inputs": _inputs(meta.get("inputs")),
        "status": status,
        "failed_cell": failed_cell,
        "error": error,
        "reason": _text(meta.get("reason")),
        "ipynb": _text(meta.get("ipynb")),
        "generator": kit,
        "summary_id": SUMMARY_ANCHOR,
        "footer_lines": [
            f"Generated {generated} with {kit}." if generated else f"Generated with {kit}.",
            "Numbers are computed from the data snapshot named at the top of this page.",
        ],
        "reproduce": _text(meta.get("reproduce")),
        "how_to_read": HOW_TO_READ,
    }

    exporter, report = _exporter()
    report.title = title
    resources = {
        "icp": context,
        "icp_css": _css(),
        "metadata": {"name": title, "path": str(path.parent) if path else ""},
    }
    body, _ = exporter.from_notebook_node(nb, resources=resources)
    return body


#: One exporter per thread, reused: a new one compiles the report templates again (five
#: templates, about 0.1 s a report, a third of the rendering).
_EXPORTERS = threading.local()


def _exporter() -> tuple[HTMLExporter, ReportPreprocessor]:
    templates = str(templates_dir())
    cached = getattr(_EXPORTERS, "cached", None)
    if cached is None or cached[0] != templates:
        exporter = HTMLExporter(
            extra_template_basedirs=[templates],
            template_name=TEMPLATE_NAME,
            exclude_input=True,
            exclude_input_prompt=True,
            exclude_output_prompt=True,
            embed_images=True,
        )
        exporter.register_preprocessor(
            TagRemovePreprocessor(
                remove_cell_tags=set(REMOVED_CELL_TAGS),
                remove_all_outputs_tags=set(REMOVED_OUTPUT_TAGS),
            ),
            enabled=True,
        )
        report = ReportPreprocessor()
        exporter.register_preprocessor(report, enabled=True)
        cached = _EXPORTERS.cached = (templates, exporter, report)
    return cached[1], cached[2]


@functools.lru_cache(maxsize=1)
def _page_environment() -> jinja2.Environment:
    return jinja2.Environment(
        loader=jinja2.FileSystemLoader(str(templates_dir() / TEMPLATE_NAME)),
        autoescape=True,
        undefined=jinja2.StrictUndefined,
        keep_trailing_newline=True,
    )


def _page(template: str, **context) -> str:
    return _page_environment().get_template(template).render(css=_css(), **context)


def _headline(manifest: Mapping) -> list[tuple[str, str]]:
    headline = manifest.get("headline") or {}
    if not isinstance(headline, Mapping):
        return []
    return [(_text(label), _text(value)) for label, value in headline.items()]


def _reproduce(manifest: Mapping) -> str:
    if manifest.get("reproduce"):
        return _text(manifest["reproduce"])
    if manifest.get("demo"):
        return "icp-research run --demo"
    if manifest.get("config"):
        command = f"icp-research run --config {manifest['config']}"
        return command + (f" --quarter {manifest['quarter']}" if manifest.get("quarter") else "")
    return ""


def _status_counts(notebooks: Iterable[Mapping]) -> dict[str, int]:
    counts = {"ok": 0, "skipped": 0, "failed": 0, "unknown": 0}
    for entry in notebooks:
        counts[_status(entry.get("status"))] += 1
    return counts


def _overall(counts: Mapping[str, int]) -> dict:
    total = sum(counts.values())
    ok, skipped, failed = counts["ok"], counts["skipped"], counts["failed"]
    if total == 0:
        return {"status": "skipped", "headline": "This run has no reports.", "detail": ""}
    if failed:
        return {
            "status": "failed",
            "headline": f"{failed} of {total} reports failed.",
            "detail": "The other reports are complete. Each failed report names the cell that "
            "stopped it; the analyst can open its executed notebook to see why.",
        }
    if skipped:
        return {
            "status": "ok",
            "headline": f"{ok} of {total} reports completed; {skipped} skipped.",
            "detail": "Skipped reports need data this run did not include; the reason is "
            "given for each.",
        }
    return {"status": "ok", "headline": f"All {total} reports completed.", "detail": ""}


def render_run_index(
    manifest: dict, artifacts_dir: Path | str | None = None, charts: list | None = None
) -> str:
    """The run dashboard (``reports/<run>/index.html``) from the run's manifest.

    Shows the project, run, quarter and as-of date, the headline metrics as tiles, the ICP
    statement, one row per notebook (title linking to its HTML when there is one, a status
    badge, the skip reason or the failing cell, error line and executed notebook, seconds),
    the artifacts and the data inputs (table, file, rows, short SHA-256). Links are relative;
    paths that would leave the run folder are shown as text. Missing keys are tolerated.

    With the run's artifacts folder (``artifacts_dir``), the dashboard also shows the ICP against the rest
    over the quarters and the win rate by fit-score tier, drawn from the health report's
    ``icp_health.csv`` (:mod:`icp_research.reporting.dashboard`); ``charts`` are those charts
    when they were drawn already (the runner draws them as soon as their reports are done).
    """
    from icp_research.reporting.dashboard import dashboard_charts

    manifest = manifest or {}
    project = _text(manifest.get("project"))
    run = _text(manifest.get("run"))
    quarter = _text(manifest.get("quarter"))
    as_of = _text(manifest.get("as_of"))
    notebooks = []
    for entry in manifest.get("notebooks") or []:
        if not isinstance(entry, Mapping):
            continue
        status = _status(entry.get("status"))
        name = _text(entry.get("name"))
        html_href = _relative_href(entry.get("html"))
        ipynb = _text(entry.get("ipynb"))
        notebooks.append(
            {
                "name": name,
                "title": _text(entry.get("title")) or name or "Untitled report",
                "status": status,
                "status_label": "ok, reused"
                if status == "ok" and entry.get("reused")
                else {"unknown": "not run"}.get(status, status),
                "reason": _text(entry.get("reason")),
                "key_finding": _one_line(entry["key_finding"]) if entry.get("key_finding") else "",
                "failed_cell": entry.get("failed_cell"),
                "error": _one_line(entry["error"]) if entry.get("error") else "",
                "ipynb": ipynb,
                "ipynb_href": _relative_href(ipynb),
                "href": html_href,
                "seconds_text": "–" if status == "skipped" else _seconds_text(entry.get("seconds")),
            }
        )
    artifacts = []
    for item in manifest.get("artifacts") or []:
        posix = PurePosixPath(_text(item).replace("\\", "/"))
        folder = str(posix.parent)
        artifacts.append(
            {
                "name": posix.name,
                "folder": "" if folder == "." else folder + "/",
                "href": _relative_href(item),
            }
        )
    versions = manifest.get("versions") or {}
    parameters = manifest.get("parameters") or {}
    details = _facts(
        [
            ("Config", manifest.get("config")),
            ("Parameters", ", ".join(f"{k} = {v}" for k, v in parameters.items())),
            ("Started", _when(manifest.get("started_at"))),
            ("Finished", _when(manifest.get("finished_at"))),
            ("Versions", " · ".join(f"{k} {v}" for k, v in versions.items())),
        ]
    )
    kit = _kit(manifest.get("kit_version"))
    title = "Ideal customer profile"
    if quarter or run:
        title += f" · {quarter or run}"
    return _page(
        "run_index.html.j2",
        page_title=f"{title} · {project}" if project else title,
        generator=kit,
        body_class="icp-run-index",
        brand=f"{project} · ICP research" if project else "ICP research",
        title=title,
        facts=_facts(
            [
                ("As of", as_of),
                ("Quarter", quarter),
                ("Run", run),
                ("Data", "demo dataset" if manifest.get("demo") else None),
                ("Kit", kit if manifest.get("kit_version") else None),
            ]
        ),
        inputs=[],
        data_inputs=_inputs(manifest.get("inputs")),
        overall=_overall(_status_counts(manifest.get("notebooks") or [])),
        headline=_headline(manifest),
        icp_statement=_text(manifest.get("icp_statement")),
        icp_note=_text(manifest.get("icp_note")),
        as_of_warning=_text(manifest.get("as_of_warning")),
        charts=dashboard_charts(artifacts_dir) if charts is None else charts,
        notebooks=notebooks,
        artifacts=artifacts,
        details=details,
        footer_lines=[
            f"Run finished {_when(manifest.get('finished_at'))} with {kit}."
            if manifest.get("finished_at")
            else f"Generated with {kit}."
        ],
        reproduce=_reproduce(manifest),
    )


def _excerpt(text: str, limit: int = 160) -> str:
    text = " ".join(text.split())
    if len(text) <= limit:
        return text
    cut = text[:limit].rsplit(" ", 1)[0]
    return cut.rstrip(",;:") + "…"


def _sort_key(manifest: Mapping) -> tuple[str, str]:
    return (_text(manifest.get("as_of")), _text(manifest.get("finished_at")))


def render_reports_index(manifests: list[dict]) -> str:
    """``reports/index.html``: every run, newest first (by ``as_of``, then ``finished_at``).

    One row per run: a link to ``<run>/index.html``, the as-of date, how many reports were ok /
    skipped / failed, up to four headline metrics (the newest run's labels) and the start of
    the ICP statement. The newest run's headline tiles and statement open the page.
    """
    ordered = sorted(
        (m for m in manifests or [] if isinstance(m, Mapping)), key=_sort_key, reverse=True
    )
    labels: list[str] = []
    for manifest in ordered:
        for label, _ in _headline(manifest):
            if label not in labels and len(labels) < 4:
                labels.append(label)
        if labels:
            break
    runs = []
    for manifest in ordered:
        run = _text(manifest.get("run"))
        counts = _status_counts(manifest.get("notebooks") or [])
        headline = dict(_headline(manifest))
        folder_ok = run and "/" not in run and "\\" not in run and run not in (".", "..")
        runs.append(
            {
                "run": run or "(unnamed run)",
                "project": _text(manifest.get("project")),
                "as_of": _text(manifest.get("as_of")),
                "demo": bool(manifest.get("demo")),
                "href": _relative_href(f"{run}/index.html") if folder_ok else None,
                "counts": [(s, counts[s]) for s in ("ok", "skipped", "failed") if counts[s]],
                "metrics": [headline.get(label) or "–" for label in labels],
                "icp_excerpt": _excerpt(_text(manifest.get("icp_statement"))),
                "headline": _headline(manifest),
                "icp_statement": _text(manifest.get("icp_statement")),
            }
        )
    projects = sorted({r["project"] for r in runs if r["project"]})
    latest = runs[0] if runs else None
    brand = f"{projects[0]} · ICP research" if len(projects) == 1 else "ICP research"
    return _page(
        "reports_index.html.j2",
        page_title="ICP research reports" + (f" · {projects[0]}" if len(projects) == 1 else ""),
        generator="icp-research",
        body_class="icp-reports-index",
        brand=brand,
        title="ICP research reports",
        facts=_facts(
            [
                ("Runs", len(runs)),
                ("Latest as of", latest["as_of"] if latest else None),
            ]
        ),
        inputs=[],
        latest=latest,
        runs=runs,
        metric_labels=labels,
        show_project=len(projects) > 1,
        footer_lines=["Each run folder holds its reports, its dashboard and its artifacts."],
        reproduce="",
    )
