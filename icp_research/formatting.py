"""One set of formatters every layer uses: numbers, rates with intervals, q-values, escaped HTML.

Everything built from data passes through :func:`esc` here, so a company called ``<script>`` is
shown as text. Analyses use these to write their sentences; :mod:`icp_research.reporting` shows
their results. One helper per concept lives here: one q-value formatter (:func:`fmt_p`), one slug
(:func:`slug`), one JSON conversion (:func:`to_jsonable`).
"""

from __future__ import annotations

import html
import math
import re
from collections.abc import Iterable, Mapping

import numpy as np
import pandas as pd


class HTML:
    """An HTML fragment that Jupyter displays as rich output."""

    def __init__(self, markup: str):
        self.markup = markup

    def _repr_html_(self) -> str:
        return self.markup

    def __str__(self) -> str:
        return self.markup

    def __add__(self, other: HTML) -> HTML:
        return HTML(self.markup + str(other))


def esc(value) -> str:
    """Escape any value for HTML text or attribute context."""
    if value is None or (isinstance(value, float) and math.isnan(value)):
        return ""
    return html.escape(str(value), quote=True)


#: Longest label drawn in a chart; longer ones (a 10,000-character company name) are cut.
MAX_LABEL_CHARS = 60
#: Longest text shown in a table cell; the CSV artifact keeps the whole value.
MAX_CELL_CHARS = 300


def short_label(text, limit: int = MAX_LABEL_CHARS) -> str:
    """``text`` cut to ``limit`` characters with an ellipsis (labels, legends, titles)."""
    text = str(text)
    return text if len(text) <= limit else text[: limit - 1].rstrip() + "…"


# ---------------------------------------------------------------------------------------------
# Number formatting


def fmt_number(x, digits: int = 0) -> str:
    """1234567 -> '1,234,567'; NaN -> '–'."""
    if x is None or (isinstance(x, float | np.floating) and np.isnan(x)) or x is pd.NA:
        return "–"
    return f"{x:,.{digits}f}"


def fmt_count(n, noun: str, plural: str | None = None) -> str:
    """A count with its noun in the right number: (1, 'customer') -> '1 customer',
    (1234, 'customer') -> '1,234 customers'; NaN -> '– customers'."""
    many = plural or f"{noun}s"
    try:
        one = float(n) == 1
    except (TypeError, ValueError):
        one = False
    return f"{fmt_number(n)} {noun if one else many}"


_CURRENCY = ["$"]


def set_currency(symbol: str) -> None:
    """How :func:`fmt_money` writes money from now on in this process ("€", "CHF "); a study
    sets it from ``[project] currency`` or the currency its money cells name."""
    _CURRENCY[0] = symbol


def fmt_money(x, currency: str | None = None) -> str:
    """Compact money: 950 -> '$950', 12_300 -> '$12.3k', 4_500_000 -> '$4.5M' (the symbol set by
    :func:`set_currency` unless ``currency`` is given)."""
    currency = _CURRENCY[0] if currency is None else currency
    if x is None or (isinstance(x, float | np.floating) and np.isnan(x)) or x is pd.NA:
        return "–"
    sign = "-" if x < 0 else ""
    x = abs(float(x))
    for limit, suffix in ((1e9, "B"), (1e6, "M"), (1e3, "k")):
        if x >= limit:
            return f"{sign}{currency}{x / limit:.1f}{suffix}"
    return f"{sign}{currency}{x:,.0f}"


def fmt_pct(x, digits: int = 0) -> str:
    """0.1234 -> '12%'."""
    if x is None or (isinstance(x, float | np.floating) and np.isnan(x)) or x is pd.NA:
        return "–"
    return f"{100 * x:.{digits}f}%"


def fmt_rate_ci(rate, low, high, n=None, digits: int = 0) -> str:
    """'34% (29–40%, n=312)': a rate with its interval and sample size."""
    if rate is None or (isinstance(rate, float) and np.isnan(rate)):
        return "–" if n is None else f"– (n={fmt_number(n)})"
    text = f"{fmt_pct(rate, digits)} ({fmt_interval(low, high, digits)}"
    return text + (f", n={fmt_number(n)})" if n is not None else ")")


def fmt_interval(low, high, digits: int = 0) -> str:
    """'29–40%'; 'no interval' when a bound is missing (too little data to compute one)."""
    if any(
        v is None or v is pd.NA or (isinstance(v, float | np.floating) and np.isnan(v))
        for v in (low, high)
    ):
        return "no interval"
    return f"{fmt_pct(low, digits)}–{fmt_pct(high, digits)}"


def fmt_p(p) -> str:
    """p-values for readers: '<0.001', '0.012', '0.43'."""
    if p is None or (isinstance(p, float | np.floating) and np.isnan(p)):
        return "–"
    if p < 0.001:
        return "<0.001"
    if p < 0.01 or (0.045 <= p < 0.055 and p != 0.05):
        # q = 0.046 beside "significant at 0.05" must not read "0.05", nor 0.054 "0.05" either.
        return f"{p:.3f}"
    return f"{p:.2f}"


def fmt_p_is(p, name: str = "p") -> str:
    """'q = 0.012', 'q < 0.001' (never 'q = <0.001')."""
    text = fmt_p(p)
    return f"{name} {text[0]} {text[1:]}" if text.startswith("<") else f"{name} = {text}"


def fmt_ratio(x) -> str:
    """1.234 -> '1.23x'."""
    if x is None or (isinstance(x, float | np.floating) and (np.isnan(x) or np.isinf(x))):
        return "–"
    return f"{x:.2f}x"


def fmt_ratio_ci(ratio, low, high) -> str:
    """'1.23x (0.80x–1.90x)'; '–' for an undefined ratio (no events in either group), and
    '– (at least 2.17x)' for an infinite one (events only in the first group)."""
    values = [np.nan if v is None or v is pd.NA else float(v) for v in (ratio, low, high)]
    ratio, low, high = values
    if np.isnan(ratio):
        return "–"
    if np.isinf(ratio):
        return f"– (at least {low:.2f}x)" if np.isfinite(low) and low > 0 else "–"
    if not (np.isfinite(low) and np.isfinite(high)):
        return fmt_ratio(ratio)
    return f"{fmt_ratio(ratio)} ({fmt_ratio(low)}–{fmt_ratio(high)})"


# Column-name conventions -> formatter, used by table_html when no explicit format is given.
_DEFAULT_FORMATS: list[tuple[tuple[str, ...], object]] = [
    (("p_value", "q_value", "p", "q"), fmt_p),
    (("lift", "ratio", "odds_ratio", "hazard_ratio", "hr", "or"), fmt_ratio),
]


def _auto_formatter(column: str, series: pd.Series):
    name = column.lower()
    for names, fn in _DEFAULT_FORMATS:
        if name in names or any(name.endswith("_" + n) for n in names):
            return fn
    is_fraction_name = name.endswith(("rate", "share", "coverage")) or name in ("ci_low", "ci_high")
    if (
        is_fraction_name
        and pd.api.types.is_numeric_dtype(series)
        and series.dropna().between(0, 1).all()
    ):
        return lambda v: fmt_pct(v, 1)
    if pd.api.types.is_bool_dtype(series):
        return lambda v: "yes" if v is True or v == 1 else ("no" if v is False or v == 0 else "–")
    if pd.api.types.is_integer_dtype(series):
        return fmt_number
    if pd.api.types.is_float_dtype(series):
        if name in ("n", "count", "accounts", "customers", "deals") or name.startswith("n_"):
            return fmt_number
        if any(k in name for k in ("arr", "acv", "clv", "revenue", "amount", "deal_size")):
            return fmt_money
        return lambda v: fmt_number(v, 2)
    if pd.api.types.is_datetime64_any_dtype(series):
        return lambda v: "–" if pd.isna(v) else pd.Timestamp(v).strftime("%Y-%m-%d")
    return None


def table_html(
    frame: pd.DataFrame,
    formats: Mapping[str, object] | None = None,
    *,
    max_rows: int = 50,
    caption: str | None = None,
    index: bool = False,
) -> str:
    """An escaped, formatted HTML table.

    ``formats`` maps column name -> callable(value) -> str; other columns are formatted by name
    (``*_rate`` as %, ``p_value`` / ``q_value`` as p-values, ``lift`` as 'x', money columns
    compactly). Only the first ``max_rows`` rows are shown, with a note saying how many more.
    """
    formats = dict(formats or {})
    shown = frame.reset_index() if index else frame
    extra = max(0, len(shown) - max_rows)
    shown = shown.head(max_rows)
    formatters = {c: formats.get(c) or _auto_formatter(str(c), shown[c]) for c in shown.columns}
    ratios = {n for names, fn in _DEFAULT_FORMATS if fn is fmt_ratio for n in names}
    if any(str(c).lower() in ratios for c in shown.columns):
        # The interval of a ratio beside it reads as a ratio (0.54x), never as a share (54%).
        for c in ("ci_low", "ci_high"):
            if c in shown.columns and c not in formats:
                formatters[c] = fmt_ratio
    # Numeric headers align with their right-aligned cells.
    head = "".join(f"<th{_num_class(shown[c])}>{esc(_label(c))}</th>" for c in shown.columns)
    rows = []
    for values in shown.itertuples(index=False, name=None):
        cells = []
        for column, value in zip(shown.columns, values, strict=True):
            fn = formatters[column]
            text = fn(value) if fn else ("–" if _isna(value) else value)
            numeric = isinstance(value, int | float | np.number) and not isinstance(value, bool)
            cls = " class='num'" if numeric else ""
            if isinstance(text, str) and len(text) > 40:
                # Values from data can be any length: cut the display (the CSV keeps it all)
                # and let unbroken runs wrap instead of stretching the table.
                text = short_label(text, MAX_CELL_CHARS)
                if max(len(word) for word in text.split() or [""]) > 40:
                    cls = " class='icp-long'"
            cells.append(f"<td{cls}>{esc(text)}</td>")
        rows.append("<tr>" + "".join(cells) + "</tr>")
    cap = f"<caption>{esc(caption)}</caption>" if caption else ""
    more = f"<p class='icp-more'>… {extra:,} more rows in the CSV artifact.</p>" if extra else ""
    return (
        f"<div class='icp-table-wrap'><table class='icp-table'>{cap}<thead><tr>{head}</tr></thead>"
        f"<tbody>{''.join(rows)}</tbody></table>{more}</div>"
    )


def _num_class(series) -> str:
    numeric = pd.api.types.is_numeric_dtype(series) and not pd.api.types.is_bool_dtype(series)
    return " class='num'" if numeric else ""


def _isna(value) -> bool:
    try:
        return bool(pd.isna(value))
    except (TypeError, ValueError):
        return False


def _label(column) -> str:
    text = str(column).replace("_", " ")
    return text[:1].upper() + text[1:]


def table(frame: pd.DataFrame, formats=None, **kwargs) -> HTML:
    """Displayable version of :func:`table_html`."""
    return HTML(table_html(frame, formats, **kwargs))


# ---------------------------------------------------------------------------------------------
# Prose blocks


#: Longest unbroken run of characters shown in prose; a longer one is a value from the data
#: (a 10,000-character company name) and is cut, so that a sentence stays a sentence.
MAX_WORD_CHARS = 200


def prose(text) -> str:
    """Escaped text for a sentence, with overlong unbroken runs cut."""
    text = "" if text is None else str(text)
    if len(text) > MAX_WORD_CHARS:
        text = re.sub(
            rf"\S{{{MAX_WORD_CHARS + 1},}}",
            lambda match: match.group()[: MAX_WORD_CHARS - 1] + "…",
            text,
        )
    return esc(text)


#: What a report's summary says when it has no finding (the dashboard shows the same words).
NO_FINDINGS = "No findings."


def summary(
    findings: Iterable[str], title: str = "Summary", *, caveats: Iterable[str] = ()
) -> HTML:
    """The plain-language box at the top of a report: findings first, then caveats."""
    findings = list(findings)
    caveats = list(caveats)
    items = "".join(f"<li>{prose(f)}</li>" for f in findings) or f"<li>{NO_FINDINGS}</li>"
    notes = "".join(f"<li>{prose(c)}</li>" for c in caveats)
    notes_html = f"<p class='icp-caveat-title'>How sure we are</p><ul>{notes}</ul>" if notes else ""
    return HTML(
        f"<section class='icp-summary'><h2>{esc(title)}</h2><ul>{items}</ul>{notes_html}</section>"
    )


def callout(text: str, kind: str = "info") -> HTML:
    """A one-paragraph note; ``kind`` is info, warning, skipped or success."""
    kind = kind if kind in ("info", "warning", "skipped", "success") else "info"
    return HTML(f"<div class='icp-callout icp-{kind}'>{prose(text)}</div>")


def not_enough_evidence(what: str, why: str) -> HTML:
    """Say plainly that a question could not be answered, and why."""
    return callout(f"Not enough evidence for {what}: {why}", "skipped")


def bullets(items: Iterable[str]) -> HTML:
    return HTML("<ul>" + "".join(f"<li>{prose(i)}</li>" for i in items) + "</ul>")


def kpis(metrics: Mapping[str, str]) -> HTML:
    """A row of headline numbers: {'Customers': '1,204', 'Win rate': '31%'}."""
    cells = "".join(
        f"<div class='icp-kpi'><div class='icp-kpi-value'>{prose(v)}</div>"
        f"<div class='icp-kpi-label'>{prose(k)}</div></div>"
        for k, v in metrics.items()
    )
    return HTML(f"<div class='icp-kpis'>{cells}</div>")


def error_bars(value, low, high, scale: float = 1.0) -> np.ndarray:
    """Error-bar lengths ``[[below], [above]]`` for matplotlib's ``xerr`` / ``yerr``.

    Never negative (an interval computed in floating point can end a hair inside its
    estimate, an estimate can sit outside a one-sided or inverted interval, and matplotlib
    refuses negative lengths) and 0 where the estimate or a bound is unknown, infinite or not
    a number. Scalars and array-likes of any length (empty included) broadcast together.
    """

    def numbers(v) -> np.ndarray:
        if isinstance(v, pd.Series | pd.Index):
            v = pd.to_numeric(pd.Series(v).astype(object), errors="coerce")
            return v.to_numpy(dtype=float, na_value=np.nan)
        try:
            return np.asarray(v, dtype=float)
        except (TypeError, ValueError):
            flat = pd.Series(np.atleast_1d(np.asarray(v, dtype=object)).ravel())
            return pd.to_numeric(flat, errors="coerce").to_numpy(dtype=float, na_value=np.nan)

    value, low, high = np.broadcast_arrays(*(np.atleast_1d(numbers(v)) for v in (value, low, high)))
    with np.errstate(invalid="ignore", over="ignore"):
        bars = np.vstack([(value - low).ravel(), (high - value).ravel()]) * float(scale)
    bars[~np.isfinite(bars)] = 0.0
    return np.clip(bars, 0.0, None)


def to_jsonable(obj):
    """``obj`` with numpy and pandas scalars turned into JSON types (NaN and infinity as None,
    timestamps as ``YYYY-MM-DD``, dict keys as strings)."""
    if isinstance(obj, dict):
        return {str(k): to_jsonable(v) for k, v in obj.items()}
    if isinstance(obj, list | tuple):
        return [to_jsonable(v) for v in obj]
    if isinstance(obj, np.integer):
        return int(obj)
    if isinstance(obj, float | np.floating):
        return None if (np.isnan(obj) or np.isinf(obj)) else float(obj)
    if isinstance(obj, np.bool_):
        return bool(obj)
    if isinstance(obj, pd.Timestamp):
        return obj.strftime("%Y-%m-%d")
    if obj is pd.NA or obj is pd.NaT:
        return None
    return obj


def slug(text, default: str = "") -> str:
    """``text`` as lower-case letters, digits and underscores ('12 months' -> '12_months')."""
    return re.sub(r"[^0-9a-z]+", "_", str(text).lower()).strip("_") or default
