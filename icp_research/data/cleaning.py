"""Cleaning export cells: text, numbers, dates and flags as real exports write them.

Each parser takes a column as read (text from CSV and Excel, native types from Parquet) and
returns the parsed values with a mask of the cells it could not read, so the loader can name
them. Large, repetitive columns are parsed once per distinct value (:func:`per_distinct`).
"""

from __future__ import annotations

import re

import numpy as np
import pandas as pd

from icp_research.data.config import MISSING_TOKENS, MISSING_TOKENS_NUMERIC

#: How a yes/no cell is written (folded): the loader reads flags with these, and lead scoring
#: reads a lead's yes/no attributes with the same.
YES_WORDS = frozenset({"yes", "y", "true", "t", "1", "1.0", "on"})
NO_WORDS = frozenset({"no", "n", "false", "f", "0", "0.0", "off"})
_TRUE, _FALSE = YES_WORDS, NO_WORDS


_DATE_GUESSES = (
    "%m/%d/%Y",
    "%d/%m/%Y",
    "%d.%m.%Y",
    "%Y/%m/%d",
    "%d-%m-%Y",
    "%m-%d-%Y",
    "%m/%d/%y",
    "%d/%m/%y",
    "%d %b %Y",
    "%b %d, %Y",
    "%Y%m%d",
    "%Y-%m-%d",
)


# CRMs write date-times as a date pattern plus a clock ("27/06/2025 06:00", Salesforce's
# "1/1/2022 7:01 AM"); these patterns are also tried with one.
_TIMED_GUESSES = (*_DATE_GUESSES[:6], "%Y-%m-%d")


_DATE_GUESS_SAMPLE = 300


# A number written with the other decimal mark: "553.643,79" / "12,5" (decimal comma) or
# "553,643.79" / "12.5" (decimal point). Checked after currency, spaces and signs are removed.
_DECIMAL_COMMA = re.compile(r"^[-+]?(\d{1,3}(\.\d{3})*,\d+|\d+,\d{1,2})$")
_DECIMAL_POINT = re.compile(r"^[-+]?(\d{1,3}(,\d{3})*\.\d+|\d+\.\d{1,2})$")


def norm_name(name: str) -> str:
    return re.sub(r"[^0-9a-z]", "", str(name).lower())


# Text columns repeat a few values (stages, industries, dates, round amounts) while pandas string
# methods run Python code once per row; on large columns with few distinct values the work is
# done once per distinct value instead.
DISTINCT_MIN_ROWS = 10_000


DISTINCT_SAMPLE = 20_000


def only_text(series: pd.Series) -> bool:
    """True when every present cell is a Python str (so equal cells are the same text)."""
    if isinstance(series.dtype, pd.StringDtype):
        return True
    return pd.api.types.is_object_dtype(series) and pd.api.types.infer_dtype(
        series, skipna=True
    ) in ("string", "empty")


def per_distinct(text: pd.Series, func) -> pd.Series:
    """``func(text)`` for an element-wise ``func``, computed once per distinct value of ``text``
    when the column is large and repetitive. ``text`` must hold only values that are equal only
    when identical (str, dates) or missing. ``func`` may return a Series or a tuple of them."""
    if len(text) < DISTINCT_MIN_ROWS:
        return func(text)
    sample = text.iloc[:DISTINCT_SAMPLE]
    if sample.nunique(dropna=False) > len(sample) // 2:
        return func(text)
    codes, uniques = pd.factorize(text, use_na_sentinel=True)
    if len(uniques) > len(text) // 2:
        return func(text)
    distinct = np.asarray(uniques, dtype=object)
    missing = codes < 0
    if missing.any():
        distinct = np.append(distinct, None)
        codes = np.where(missing, len(distinct) - 1, codes)
    result = func(pd.Series(distinct, dtype=text.dtype))
    if isinstance(result, tuple):
        return tuple(_spread(part, codes, text.index) for part in result)
    return _spread(result, codes, text.index)


def _spread(distinct_result: pd.Series, codes: np.ndarray, index: pd.Index) -> pd.Series:
    result = distinct_result.iloc[codes]
    result.index = index
    return result


def parse_distinct(series: pd.Series, parse) -> tuple[pd.Series, pd.Series]:
    """``parse(series)`` -> (values, bad), run once per distinct value of a text column (one
    pass of hashing instead of one per parsing step)."""
    return per_distinct(series, parse) if only_text(series) else parse(series)


def as_text(series: pd.Series, missing: set[str]) -> pd.Series:
    """Strip text; tokens in ``missing`` become <NA>. Non-text cells (Excel, Parquet) are
    converted to their text form first."""
    if only_text(series):
        return per_distinct(series, lambda text: _strip_text(text, missing))
    present = series.dropna() if pd.api.types.is_float_dtype(series) else None
    if present is not None and ((present % 1 == 0) & (present.abs() < 2**53)).all():
        # Parquet stores integer keys with gaps as floats: 1042.0 is the key "1042".
        text = series.astype("Int64").astype("string")
    elif not (pd.api.types.is_object_dtype(series) or pd.api.types.is_string_dtype(series)):
        text = series.astype("string")
    else:
        text = series.astype("string")
        # Excel cells that are numbers come back as floats like 12.0.
        if pd.api.types.is_object_dtype(series):
            # Whole numbers only up to 2**53: 1e308 stays "1e+308", not a 309-digit integer.
            floats = series.map(
                lambda v: isinstance(v, float) and float(v).is_integer() and abs(v) < 2**53
            )
            if floats.any():
                text = text.where(
                    ~floats, series[floats].map(lambda v: str(int(v))).astype("string")
                )
    return _strip_text(text, missing)


def _strip_text(series: pd.Series, missing: set[str]) -> pd.Series:
    text = series.astype("string").str.strip()
    return text.mask(text.isin(missing))


def _to_float(text: pd.Series) -> pd.Series:
    """Text to float64 with NaN for anything that is not a plain number."""
    return per_distinct(text, _plain_float)


def _plain_float(text: pd.Series) -> pd.Series:
    raw = pd.Series(text.to_numpy(dtype=object, na_value=None), index=text.index)
    return pd.to_numeric(raw, errors="coerce").astype(float)


def parse_numbers(
    series: pd.Series, decimal: str = ".", extra_missing=()
) -> tuple[pd.Series, pd.Series]:
    """Numbers from messy text: ``$1,234.50``, ``1 234``, ``(200)``, ``12k``, ``3.4M``, ``15%``.

    Returns ``(values as float64, mask of cells that were present but not numbers)``.
    """
    if pd.api.types.is_bool_dtype(series):
        return series.astype(float), pd.Series(False, index=series.index)
    if pd.api.types.is_numeric_dtype(series):
        return series.astype(float), pd.Series(False, index=series.index)
    missing = set(MISSING_TOKENS_NUMERIC) | set(extra_missing)
    text = as_text(series, missing)
    values = _to_float(text) if decimal == "." else pd.Series(np.nan, index=text.index)
    todo = values.isna() & text.notna()
    if todo.any():
        values[todo] = per_distinct(text[todo], lambda t: _messy_numbers(t, decimal))
    # "inf" and "1e400" parse as infinity: no export means that.
    values = values.where(~np.isinf(values))
    bad = values.isna() & text.notna()
    return values.astype(float), bad


#: How the reports write each currency a money cell can carry, by its mark in the cell.
CURRENCY_SYMBOLS = {
    "$": "$",
    "us$": "$",
    "usd": "$",
    "€": "€",
    "eur": "€",
    "£": "£",
    "gbp": "£",
    "¥": "¥",
    "￥": "¥",  # the full-width yen of Japanese text (Shift-JIS has no other)
    "円": "¥",
    "jpy": "¥",
    "₹": "₹",
    "inr": "₹",
    "chf": "CHF ",
    "ca$": "CA$",
    "cad": "CA$",
    "a$": "A$",
    "aud": "A$",
    "r$": "R$",  # Brazil: "R$ 12.345,67"
    "brl": "R$",
    "mx$": "MX$",
    "mxn": "MX$",
    "sek": "SEK ",
    "nok": "NOK ",
    "dkk": "DKK ",
    "pln": "PLN ",
    "zł": "PLN ",
    "nzd": "NZ$",
    "nz$": "NZ$",
    "sgd": "S$",
    "hkd": "HK$",
    "hk$": "HK$",
    "s$": "S$",
    "zar": "ZAR ",
    # Russia, Ukraine, Kazakhstan, Turkey, Czechia: "125 000 руб.", "1 200 ₽", "950 грн".
    "rub": "RUB ",
    "руб": "RUB ",
    "₽": "RUB ",
    "uah": "UAH ",
    "грн": "UAH ",
    "₴": "UAH ",
    "kzt": "KZT ",
    "₸": "KZT ",
    "try": "TRY ",
    "₺": "TRY ",
    "czk": "CZK ",
    "kč": "CZK ",
}
_CURRENCY_MARK = re.compile(
    r"(?i)(?<![a-z])(us\$|ca\$|a\$|r\$|mx\$|nz\$|hk\$|s\$|usd|eur|gbp|jpy|inr|chf|cad|aud|brl|mxn|sek|"
    r"nok|dkk|pln|zł|nzd|sgd|hkd|zar|rub|uah|kzt|czk|kč"
    r"|(?<![а-яё])(?:руб(?=л[а-яё]*|[^а-яё]|$)|грн(?![а-яё])))(?![a-z])|([$€£¥￥円₹₽₴₸₺])"
)
#: What names a currency in a cell or a header: a code (group 1) or a symbol (group 2).
CURRENCY_MARK = _CURRENCY_MARK


def currency_marks(text: pd.Series) -> pd.Series:
    """The currency each money cell names, as the reports write it ("€1.200" and "1200 EUR"
    -> "€"); <NA> for a cell without a mark. Run once per distinct value."""

    def marks(t: pd.Series) -> pd.Series:
        found = t.astype("string").str.extract(_CURRENCY_MARK)
        mark = found[0].fillna(found[1]).str.lower()
        return mark.map(CURRENCY_SYMBOLS, na_action="ignore").astype("string")

    return per_distinct(text.astype("string"), marks)


#: A band of a count, as enrichment tools and CRM picklists export company sizes: "51-200",
#: "1,001 - 5,000", "201 to 500", "10,001+", "10000 or more", "5000+ employees".
_BAND = re.compile(
    r"(?i)^\s*(?:from|von|de|entre|от)?\s*(?P<low>[$€£]?\d[\d,.\s]*[kKmMbB]?)\s*"
    r"(?:(?:-|–|—|to|bis|à|до|\sa\s)\s*(?P<high>[$€£]?\d[\d,.\s]*[kKmMbB]?)|\+|\s+or\s+more)"
    r"\s*(?:[a-zа-яё.]+)?\s*$"
)


#: An approximate figure, as hand-kept sheets write sizes: "~50", "approx. 300", "ca. 50";
#: and a lower bound: ">1000", "over 500" (read like "1000+").
ROUGHLY = re.compile(
    r"(?i)^\s*(?:~|≈|approx\.?|approximately|about|around|roughly|circa|ca\.?|c\.|>=?|≥|"
    r"over|above|more\s+than|mais\s+de|acima\s+de|m[aá]s\s+de|plus\s+de|mehr\s+als|[üu]ber"
    r"|более|свыше|больше|от)"
    r"\s*(?P<low>[$€£]?\d[\d,.\s]*[kKmMbB]?)\s*(?:[a-zа-яё.]+)?\s*$"
)

#: An upper bound alone: "<50", "under 50", "fewer than 50", "менее 50" (read as from 1).
BELOW = re.compile(
    r"(?i)^\s*(?:<|≤|<=|under|below|less\s+than|fewer\s+than|up\s+to|moins\s+de|menos\s+de"
    r"|weniger\s+als|unter|até|hasta|менее|меньше|до)"
    r"\s*(?P<high>[$€£]?\d[\d,.\s]*[kKmMbB]?)\s*(?:[a-zа-яё.]+)?\s*$"
)


def parse_bands(text: pd.Series, decimal: str = ".") -> pd.Series:
    """Each band as one number, float64: its lower end ("51-200" -> 51, "10,001+" -> 10001,
    ">1000" -> 1000; an approximate "~50" or "ca. 50" -> 50), as
    lead scoring reads them (:func:`icp_research.scoring.model.coerce_numeric`); NaN where a
    cell is not a band or its upper end is below its lower end.

    The lower end, not the midpoint: bins of a banded column are then cut where one band ends
    and the next starts (:func:`icp_research.methods.binning.cut_points`), so that a rule
    "51 to < 1,001 employees" is the bands 51-200 and 201-1,000 and holds a lead of 80 exact
    employees; read at midpoints (125.5, 600.5) a cut fell inside a band, the ICP statement
    named sizes no band has, and a lead's exact count was judged by another line."""
    text = text.astype("string")
    parts = text.str.extract(_BAND)
    roughly = text.str.extract(ROUGHLY)["low"]
    parts["low"] = parts["low"].fillna(roughly)
    low, _ = parse_numbers(parts["low"], decimal)
    high, _ = parse_numbers(parts["high"], decimal)
    ordered = high.isna() | (high >= low)
    low = low.where(parts["low"].notna() & ordered)
    # "Fewer than 50": the band from 1 (from 0 below 1).
    below, _ = parse_numbers(text.str.extract(BELOW)["high"], decimal)
    from_one = below.where(below.isna(), np.where(below > 1, 1.0, 0.0))
    return low.fillna(from_one).astype(float)


#: Currency codes and symbols, spaces and percent signs around the digits of a money cell.
_CURRENCY_CODES = (
    r"(?i)\s*(usd|eur|gbp|chf|cad|aud|jpy|inr|brl|mxn|sek|nok|dkk|pln|nzd|sgd|hkd|zar|zł|kr\.?"
    r"(?![a-z])|rub|uah|kzt|czk|kč|руб(?:лей|ля|ль)?\.?|грн\.?|(?:r|mx|nz|hk|s|us|ca|a)(?=\$))\s*"
)
_NOT_DIGITS = r"[\s\u00a0\u202f$€£¥￥円₹₽₴₸₺%']"


def _messy_numbers(t: pd.Series, decimal: str) -> pd.Series:
    """Numbers from text that is not a plain number (currency, separators, suffixes)."""
    negative = t.str.match(r"^\(.*\)$") | t.str.endswith("-")
    t = t.str.replace(r"^\((.*)\)$", r"\1", regex=True).str.rstrip("-")
    t = t.str.replace(_CURRENCY_CODES, "", regex=True)
    t = t.str.replace(_NOT_DIGITS, "", regex=True)
    # A thousands separator is only read as one where it groups three digits before the decimal
    # mark: "553.643,79" read with decimal "." must be an error, not 553.64379.
    group, mark = (".", ",") if decimal == "," else (",", ".")
    grouped = t.str.contains(group, regex=False, na=False).astype(bool)
    well_grouped = t.str.fullmatch(
        rf"[-+]?\d{{1,3}}(?:{re.escape(group)}\d{{3}})+(?:{re.escape(mark)}\d*)?[kKmMbB]?",
        na=False,
    ).astype(bool)
    t = t.where(~grouped | well_grouped, pd.NA)
    t = t.str.replace(group, "", regex=False)
    if decimal == ",":
        t = t.str.replace(",", ".", regex=False)
    multiplier = pd.Series(1.0, index=t.index)
    suffix = t.str.extract(r"^([-+]?\d*\.?\d+)([kKmMbB])$")
    has_suffix = suffix[1].notna()
    if has_suffix.any():
        multiplier[has_suffix] = (
            suffix.loc[has_suffix, 1].str.lower().map({"k": 1e3, "m": 1e6, "b": 1e9})
        )
        t = t.where(~has_suffix, suffix[0])
    parsed = _to_float(t) * multiplier
    parsed = parsed.where(~negative.fillna(False).astype(bool), -parsed)
    return parsed


def other_decimal_mark(text: pd.Series, decimal: str, share: float = 0.5) -> str | None:
    """The decimal mark that cells which are not numbers with ``decimal`` seem to use
    ("553.643,79" -> ","), when at least ``share`` of them look that way; else None."""
    sample = pd.Series(text.dropna().astype(str).unique()[:200], dtype="string")
    if sample.empty:
        return None
    sample = sample.str.replace(_CURRENCY_CODES, "", regex=True)
    sample = sample.str.replace(_NOT_DIGITS, "", regex=True).str.replace(r"[()]", "", regex=True)
    other, pattern = (",", _DECIMAL_COMMA) if decimal == "." else (".", _DECIMAL_POINT)
    fits = sample.map(lambda v: bool(pattern.match(v))).astype(bool)
    return other if fits.sum() >= share * len(sample) else None


def grouped_with(text: pd.Series, mark: str) -> pd.Series:
    """Which cells are whole numbers with ``mark`` separating groups of three digits ("1.391",
    "12.500.000" for "."): a count exported with the other thousands separator, which read with
    ``mark`` as the decimal mark would be a fraction. ``text`` is stripped text (<NA> when
    missing); the regular expression runs once per distinct value."""
    pattern = re.compile(rf"[-+]?\d{{1,3}}(?:{re.escape(mark)}\d{{3}})+")
    return per_distinct(text, lambda t: t.str.fullmatch(pattern).fillna(False).astype(bool)).astype(
        bool
    )


#: ``date_format`` values for timestamps written as numbers since 1970-01-01 (UTC).
EPOCH_UNITS = {"unix": "s", "unix_ms": "ms"}


def date_formats(date_format: str | tuple[str, ...] | list[str] | None) -> tuple[str, ...]:
    """A table's ``date_format`` setting as a tuple of patterns (one, several or none)."""
    if not date_format:
        return ()
    return (date_format,) if isinstance(date_format, str) else tuple(date_format)


def parse_dates(
    series: pd.Series,
    date_format: str | tuple[str, ...] | None,
    extra_missing=(),
    keep_time: bool = False,
) -> tuple[pd.Series, pd.Series]:
    """Dates as day-precision ``datetime64[ns]`` (time zones converted to UTC, then dropped).

    ``date_format`` may be several patterns: each cell is read by the first one that fits it.
    ``keep_time``: keep the time of day (the order of a deal's stage changes within a day).
    Returns ``(dates, mask of cells that were present but not dates)``.
    """
    if pd.api.types.is_datetime64_any_dtype(series):
        values = series
        if getattr(values.dt, "tz", None) is not None:
            values = values.dt.tz_convert("UTC").dt.tz_localize(None)
        if not keep_time:
            values = values.dt.normalize()
        return values.astype("datetime64[ns]"), pd.Series(False, index=series.index)
    missing = set(MISSING_TOKENS_NUMERIC) | set(extra_missing)
    if pd.api.types.is_object_dtype(series) and not (only_text(series) and len(series)):
        # Excel (and Parquet date columns) give date or datetime objects, maybe mixed with text.
        kind = pd.api.types.infer_dtype(series, skipna=True)
        if kind in ("date", "datetime", "datetime64"):
            return parse_dates(pd.to_datetime(series), None, keep_time=keep_time)
        import datetime as _dt

        is_date = series.map(lambda v: isinstance(v, (_dt.date, np.datetime64))).to_numpy(bool)
        if is_date.any():
            # A hand-kept sheet: real date cells beside dates typed as text ("01/10/2022").
            # The date cells are dates whatever the declared format (which is the text's).
            values = pd.Series(pd.NaT, index=series.index, dtype="datetime64[ns]")
            bad = pd.Series(False, index=series.index)
            cells, _ = parse_dates(
                pd.to_datetime(
                    pd.Series(list(series[is_date]), dtype=object), utc=True
                ).dt.tz_localize(None),
                None,
                keep_time=keep_time,
            )
            values[is_date] = cells.to_numpy()
            if (~is_date).any():
                rest, rest_bad = parse_dates(
                    series[~is_date], date_format, extra_missing, keep_time=keep_time
                )
                values[~is_date] = rest.to_numpy()
                bad[~is_date] = rest_bad.to_numpy()
            return values, bad
    text = as_text(series, missing)
    values = per_distinct(text, lambda t: _text_to_dates(t, date_format, keep_time))
    bad = values.isna() & text.notna()
    return values, bad


def _text_to_dates(
    text: pd.Series, date_format: str | tuple[str, ...] | None, keep_time: bool = False
) -> pd.Series:
    formats = date_formats(date_format)
    if formats:
        values = pd.Series(pd.NaT, index=text.index, dtype="datetime64[ns]")
        for fmt in formats:
            todo = values.isna() & text.notna()
            if not todo.any():
                break
            if fmt in EPOCH_UNITS:
                # Seconds (or milliseconds) since 1970-01-01 UTC, as APIs and billing exports
                # write timestamps: "1791121353".
                number = pd.to_numeric(text[todo], errors="coerce")
                whole = number.where(number.notna() & (number % 1 == 0))
                values[todo] = pd.to_datetime(whole, unit=EPOCH_UNITS[fmt], errors="coerce")
                continue
            if fmt.startswith("* "):
                # A date after other text (monday.com's "Creation Log": "Jane Doe Mar 5, 2024
                # 2:22 PM"): read from the first word on which the rest of the cell fits.
                values[todo] = _date_after_text(text[todo], fmt[2:])
                continue
            # "ISO8601": any ISO 8601 date or date-time, offsets converted to UTC.
            parsed = pd.to_datetime(text[todo], format=fmt, errors="coerce", utc=fmt == "ISO8601")
            if getattr(parsed.dt, "tz", None) is not None:
                parsed = parsed.dt.tz_convert("UTC").dt.tz_localize(None)
            values[todo] = parsed.astype("datetime64[ns]")
    else:
        values = pd.to_datetime(text, format="ISO8601", errors="coerce", utc=True)
        values = values.dt.tz_localize(None)
    if not keep_time:
        values = values.dt.normalize()
    return values.astype("datetime64[ns]")


def _date_after_text(text: pd.Series, fmt: str, max_words: int = 8) -> pd.Series:
    """Dates written after other words: each cell read by ``fmt`` from its 1st, 2nd, 3rd ...
    word on, the first that fits."""
    values = pd.Series(pd.NaT, index=text.index, dtype="datetime64[ns]")
    words = text.str.strip().str.split(r"\s+", regex=True)
    for skip in range(max_words + 1):
        todo = values.isna() & words.str.len().gt(skip).fillna(False)
        if not todo.any():
            break
        rest = words[todo].str[skip:].str.join(" ")
        values[todo] = pd.to_datetime(rest, format=fmt, errors="coerce").astype("datetime64[ns]")
    return values


def parse_flags(series: pd.Series, extra_missing=()) -> tuple[pd.Series, pd.Series]:
    """Yes/No, TRUE/FALSE, Y/N, 1/0 -> nullable boolean. Returns ``(flags, bad mask)``."""
    if pd.api.types.is_bool_dtype(series):
        return series.astype("boolean"), pd.Series(False, index=series.index)
    text = per_distinct(
        as_text(series, set(MISSING_TOKENS) | set(extra_missing)), lambda t: t.str.lower()
    )
    flags = pd.Series(pd.NA, index=series.index, dtype="boolean")
    flags[text.isin(_TRUE)] = True
    flags[text.isin(_FALSE)] = False
    bad = flags.isna() & text.notna()
    return flags, bad


def guess_date_formats(sample: pd.Series) -> list[str]:
    """The common date patterns that read every value of ``sample`` (a few hundred distinct
    values are tried), most likely first."""
    sample = pd.Series(sample.dropna().astype(str).str.strip().unique()[:_DATE_GUESS_SAMPLE])
    if sample.empty:
        return []
    fits = []
    for base in _DATE_GUESSES:
        timed = (
            (f"{base} %H:%M", f"{base} %H:%M:%S", f"{base} %I:%M %p", f"{base} %I:%M:%S %p")
            if base in _TIMED_GUESSES
            else ()
        )
        for fmt in (base, *timed):
            parsed = pd.to_datetime(sample, format=fmt, errors="coerce")
            if parsed.notna().all():
                fits.append(fmt)
    return fits


def cover_date_formats(sample: pd.Series, most: int = 4) -> list[str]:
    """Date patterns that together read every value of ``sample`` when no one pattern does
    (a hand-kept sheet's "1/5/2025" beside "Jan 5, 2025"): chosen greedily, the pattern that
    reads most of the values left first, at most ``most`` of them; [] when they cannot."""
    left = pd.Series(sample.dropna().astype(str).str.strip().unique()[:_DATE_GUESS_SAMPLE])
    chosen: list[str] = []
    candidates = [
        fmt
        for base in _DATE_GUESSES
        for fmt in (
            (base, f"{base} %H:%M", f"{base} %H:%M:%S", f"{base} %I:%M %p")
            if base in _TIMED_GUESSES
            else (base,)
        )
    ]
    while len(left) and len(chosen) < most:
        counts = {
            fmt: int(pd.to_datetime(left, format=fmt, errors="coerce").notna().sum())
            for fmt in candidates
            if fmt not in chosen
        }
        best = max(counts, key=lambda fmt: counts[fmt], default=None)
        if best is None or counts[best] == 0:
            return []
        chosen.append(best)
        left = left[pd.to_datetime(left, format=best, errors="coerce").isna()]
    return chosen if not len(left) else []


def looks_like_flags(text: pd.Series) -> bool:
    """True when every present value is a yes/no spelling, however many spellings are mixed
    (``Y/N/1/0/t/Yes/TRUE``), and the column is not just 0/1 numbers."""
    values = set(text.dropna().str.lower().unique())
    return bool(values) and values <= (_TRUE | _FALSE) and not values <= {"0", "1"} | {"0.0", "1.0"}
