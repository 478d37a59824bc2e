"""Apply a fit score to leads: points, tier, the reasons in words, and data-quality flags.

A :class:`Scorecard` is a points table: every attribute (``industry``, ``employees`` ...) gives
each of its levels or bins a whole number of points, the points add up to a ``fit_score``
between 0 and 100, and tiers are score cut-offs. It is fitted by
:func:`icp_research.scoring.scorecard.fit_scorecard` and stored in ``artifacts/icp.json`` through
:meth:`Scorecard.to_dict`. This module only *applies* it: the report notebooks and the
``icp-research score`` command go through :meth:`Scorecard.score`, so there is one scoring code
path, and it needs neither scipy nor statsmodels.

Scoring never drops a row. A value the scorecard cannot use (missing, blank, a category not seen
in training, a negative employee count, text that is not a number) scores the attribute's
*neutral* points -- the average points of the training population on that attribute, i.e. "we
know nothing here" -- and is named in the row's ``flags``.

Everything is vectorised (category codes, ``np.searchsorted``, ``take``); reason strings are
built once per distinct combination of bins, so a million leads score in seconds.

The stored form (``Scorecard.to_dict``, the ``scorecard`` and ``tiers`` entries of icp.json)
---------------------------------------------------------------------------------------------
``scorecard.format``
    1. Readers refuse other versions rather than misread them.
``scorecard.outcome``
    The outcome the score was fitted on (``won``, ``retained`` ...).
``scorecard.scale``
    ``min`` / ``max``: the lowest and highest reachable totals (0 and 100);
    ``log_odds_at_0`` and ``log_odds_per_point``: the fitted log-odds of the outcome at a score,
    ``log_odds_at_0 + log_odds_per_point * score``.
``scorecard.attributes[]``
    ``name``, ``type`` (``numeric`` / ``categorical``), ``neutral_points`` (scored for missing,
    unreadable or unseen values), ``weight`` (logistic coefficient on the weight of evidence),
    ``evidence`` (``p_value`` / ``q_value`` of the association test; for numeric attributes
    ``spearman_rho``, ``spearman_p`` and ``nonmonotone_p`` of the monotonicity check).
    Numeric: ``edges`` (cut points), ``bins[]`` with ``label``, ``lower`` (inclusive, null =
    no lower bound), ``upper`` (exclusive, null = none), ``points``, ``n`` and ``rate``
    (training rows and their outcome rate); ``nonnegative`` (negative values are treated as
    missing); ``observed_min`` / ``observed_max`` (training range; values beyond it score the
    end bin and are flagged); ``monotone`` (``increasing`` / ``decreasing`` when bins were
    merged to a monotone pattern, else null).
    Categorical: ``levels[]`` with ``label``, ``points``, ``n``, ``rate``; the ``(other)`` level
    lists its ``members`` (training's rare levels, scored as ``(other)``).
``scorecard.dropped[]``
    Attributes that got no points: ``name`` and ``reason``.
``scorecard.training``
    ``n``, ``events`` and ``rate`` of the training rows. ``scorecard.params``: the fitting
    options. ``scorecard.caveats``: warnings that travel with the score.
``tiers[]``
    ``name`` and ``min_score``, best tier first; a lead is in the first tier whose
    ``min_score`` it reaches, and the last tier starts at 0.

Scoring a lead file (``icp-research score``)
--------------------------------------------
:func:`score_file` reads a CSV (pyarrow, every column as text, so values come back verbatim),
Parquet or Excel file (:func:`read_leads`; ``--config`` renames the file's columns with the
config's ``[tables.accounts]`` mapping and applies its value recodes and missing-value markers),
scores it with :func:`score_leads` -- the code path the ICP blueprint report uses -- and writes
every row, in order, with its own columns followed by :data:`SCORE_COLUMNS`:

``fit_score``
    0-100, the sum of the scorecard's points.
``tier``
    The first tier whose ``min_score`` the score reaches.
``win_probability``
    The calibrated probability (0-1) of the scorecard's outcome (a win, for deals) at the
    lead's fit score, from the ``calibration`` block of icp.json
    (:class:`icp_research.methods.calibration.Calibration`). Empty when icp.json has no
    calibration or its calibration had too few outcomes; :func:`score_file` then says why in a
    note (see :func:`win_probability_note`).
``in_icp``
    True when the lead meets every include rule that defines the ICP (role ``filter``) and no
    exclude rule.
``reasons_positive`` / ``reasons_negative``
    Up to three attributes each, strongest first, with their points relative to neutral
    (``industry = FinTech (+19)``).
``rules_hit``
    The include and exclude rules the lead meets (``include: industry in {FinTech, SaaS};
    exclude: crm = None``); rules are applied with :class:`icp_research.analyses.antipatterns.Condition`
    to values cleaned as the scorecard reads them (case and spaces ignored for categories).
``flags``
    Data problems, each with what was done: missing or unseen values scored neutral, negative
    counts treated as missing, ranges read at their lower end, numbers the rules could not read.

The output is CSV (spreadsheet-safe: formula-like text is prefixed with a quote) or Parquet,
written atomically; an existing output is replaced only with ``--force``.
"""

from __future__ import annotations

import json
import math
import re
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
import pandas as pd

from icp_research.errors import ConfigError, DataError
from icp_research.formatting import to_jsonable
from icp_research.methods.binning import OTHER
from icp_research.scoring.schema import icp_problem

FORMAT = 1

# Status of a value read by coerce_numeric.
OK, ABSENT, NOT_A_NUMBER, RANGE, OPEN_RANGE = 0, 1, 2, 3, 4

# Text a CRM export uses for "no value". For categories only blanks, NULL and N/A are missing:
# "None" (no CRM) and "NA" (North America) are meaningful levels there.
_CATEGORY_MISSING = frozenset({"", "null", "n/a", "#n/a"})
_NUMBER_MISSING = _CATEGORY_MISSING | {"na", "nan", "none", "-", "--", "?", "unknown"}

_SUFFIX = {"": 1.0, "k": 1e3, "m": 1e6, "mm": 1e6, "mn": 1e6, "b": 1e9, "bn": 1e9}
_CURRENCY = "$€£¥"
_NUMBER = rf"[{_CURRENCY}]?(\d+\.?\d*|\.\d+)(k|mm|mn|m|bn|b)?[{_CURRENCY}]?"
_PLAIN_RE = rf"^([+-]?){_NUMBER}$"
_RANGE_RE = rf"^{_NUMBER}(?:-|–|to){_NUMBER}$"
_OPEN_RE = rf"^{_NUMBER}\+$"


def _fmt_number(x: float) -> str:
    """1200 -> '1,200', 125.5 -> '125.5', 0.123456 -> '0.1235' (never scientific notation)."""
    x = float(x)
    if x.is_integer():
        return f"{int(x):,}"
    if abs(x) >= 100:
        return f"{x:,.1f}".rstrip("0").rstrip(".")
    return f"{x:.4g}"


def _short(text: str, limit: int = 40) -> str:
    text = str(text)
    return text if len(text) <= limit else text[: limit - 1] + "…"


def _parse_number_text(text: pd.Series) -> tuple[np.ndarray, np.ndarray]:
    """Read distinct text values as numbers: '1,200', '$3.4M', '12k', '51-200', '10,000+'."""
    stripped = text.astype(str).str.strip()
    # A comma followed by exactly three digits is a thousands separator; "3,4" stays unreadable.
    compact = stripped.str.replace(r",(?=\d{3}(?!\d))", "", regex=True).str.replace(
        r"[\s_]", "", regex=True
    )
    values = np.full(len(text), np.nan)
    status = np.full(len(text), NOT_A_NUMBER, dtype=np.int8)
    status[stripped.str.lower().isin(_NUMBER_MISSING).to_numpy()] = ABSENT

    plain = compact.str.extract(_PLAIN_RE, flags=re.IGNORECASE)
    ok = plain[1].notna().to_numpy() & (status != ABSENT)
    if ok.any():
        sign = np.where(plain[0][ok] == "-", -1.0, 1.0)
        scale = plain[2][ok].fillna("").str.lower().map(_SUFFIX).to_numpy(dtype=float)
        values[ok] = sign * plain[1][ok].astype(float).to_numpy() * scale
        status[ok] = OK

    for pattern, code in ((_RANGE_RE, RANGE), (_OPEN_RE, OPEN_RANGE)):
        found = compact.str.extract(pattern, flags=re.IGNORECASE)
        hit = found[0].notna().to_numpy() & (status == NOT_A_NUMBER)
        if not hit.any():
            continue
        low = found[0][hit].astype(float).to_numpy() * (
            found[1][hit].fillna("").str.lower().map(_SUFFIX).to_numpy(dtype=float)
        )
        values[hit] = low  # a band's lower end, as the loader reads an account's band
        status[hit] = code
    left = status == NOT_A_NUMBER
    if left.any():
        # The spellings the loader also reads ("1,001 - 5,000", "201 to 500", "10,001 or more",
        # "5000+ employees"), so that a lead's band is the number its account's band was.
        from icp_research.data.cleaning import parse_bands

        text_left = stripped[left]
        banded = parse_bands(text_left).to_numpy()
        hit = ~np.isnan(banded)
        if hit.any():
            rows = np.flatnonzero(left)[hit]
            values[rows] = banded[hit]
            is_open = text_left.str.contains(r"\+|\sor\s+more", case=False, regex=True)
            status[rows] = np.where(is_open.to_numpy()[hit], OPEN_RANGE, RANGE)
    return values, status


def coerce_numeric(values) -> tuple[np.ndarray, np.ndarray]:
    """Read a column as numbers, whatever type it arrived in.

    Numbers pass through; text is read when it is unambiguous: ``"1,200"`` -> 1200,
    ``"$3.4M"`` -> 3,400,000, ``"12k"`` -> 12,000, a range ``"51-200"`` -> its lower end 51
    (as the loader reads an account's band, :func:`icp_research.data.cleaning.parse_bands`),
    an open range ``"10,000+"`` -> 10,000. Blanks, ``NULL``, ``N/A``, ``none``, ``-`` are missing.

    Returns
    -------
    values : ndarray of float
        NaN where the value is missing or unreadable (including infinities).
    status : ndarray of int8
        ``OK``, ``ABSENT`` (missing), ``NOT_A_NUMBER``, ``RANGE`` or ``OPEN_RANGE`` (lower
        end used), per row.
    """
    series = values if isinstance(values, pd.Series) else pd.Series(values)
    if pd.api.types.is_bool_dtype(series) or pd.api.types.is_numeric_dtype(series):
        x = series.to_numpy(dtype=float, na_value=np.nan)
        status = np.where(np.isnan(x), ABSENT, OK).astype(np.int8)
        infinite = np.isinf(x)
        if infinite.any():
            status[infinite] = NOT_A_NUMBER
            x = np.where(infinite, np.nan, x)
        return x, status

    raw = series.astype(object).to_numpy()
    x = pd.to_numeric(series, errors="coerce").to_numpy(dtype=float, na_value=np.nan)
    status = np.zeros(x.size, dtype=np.int8)
    is_null = pd.isna(raw)
    status[is_null] = ABSENT
    unread = np.isnan(x) & ~is_null
    if unread.any():
        # Parse each distinct text once; exports repeat the same few spellings.
        codes, uniques = pd.factorize(raw[unread])
        parsed, parsed_status = _parse_number_text(pd.Series(uniques, dtype=object))
        x[unread] = parsed[codes]
        status[unread] = parsed_status[codes]
    infinite = np.isinf(x)
    if infinite.any():
        status[infinite] = NOT_A_NUMBER
        x[infinite] = np.nan
    return x, status


def match_key(attribute: str):
    """How a lead's value is matched to the spelling of a rule or a score level: ignoring
    case, punctuation and "&" / "and" (a CRM's display label "Hospital & Health Care" is its
    code HOSPITAL_HEALTH_CARE, as another export writes it), and for ``country`` whatever the
    spelling or language ("Deutschland", "DE" and "Germany" are one country, as the loader
    merges them)."""
    if attribute == "country":
        from icp_research.data.loading import country_key

        return country_key
    return label_key


def label_key(text: str) -> str:
    """``text`` as the letters and digits of its words, lower case, without "and" ("Hospital &
    Health Care", "hospital and health care", "HOSPITAL_HEALTH_CARE" are "hospitalhealthcare";
    "Health care" is "Healthcare"); the text itself, folded, when it has no letter or digit."""
    words = re.findall(r"[^\W_]+", str(text).casefold().replace("&", " and "))
    words = [w for w in words if w not in ("and", "und", "et", "y")]
    return "".join(words) if words else str(text).casefold()


def normalise_category(value) -> str | None:
    """A category value as stripped text, or None when it is missing (NaN, blank, NULL, N/A)."""
    if value is None or value is pd.NA or (isinstance(value, float) and math.isnan(value)):
        return None
    text = str(value).strip()
    return None if text.lower() in _CATEGORY_MISSING else text


def yes_no_spelling(text: str, labels) -> str | None:
    """``text`` as the label "True" or "False" when the attribute's labels are those two (a
    yes/no attribute, as the study reads it) and ``text`` writes yes or no another way (Excel's
    TRUE, a CRM's Yes, a 1: the spellings the loader reads flags with); else None."""
    from icp_research.data.cleaning import NO_WORDS, YES_WORDS

    folded = {str(label).casefold(): str(label) for label in labels}
    if not set(folded) <= {"true", "false"} or not folded:
        return None
    key = text.strip().casefold()
    if key in YES_WORDS:
        return folded.get("true")
    if key in NO_WORDS:
        return folded.get("false")
    return None


@dataclass
class Attribute:
    """One attribute of a scorecard: its levels or bins and the points each is worth.

    ``labels[i]`` is worth ``points[i]``. A value the scorecard cannot place scores
    ``neutral`` points. Numeric attributes bin values on ``edges`` (left-closed ``[lo, hi)``);
    categorical attributes match levels by text (exactly, then ignoring case and surrounding
    spaces) and score the training's rare levels (``other_members``) as ``(other)``.
    """

    name: str
    kind: str
    labels: list[str]
    points: list[int]
    neutral: int
    counts: list[int] = field(default_factory=list)
    rates: list[float] = field(default_factory=list)
    weight: float = 0.0
    edges: list[float] = field(default_factory=list)
    nonnegative: bool = False
    observed_min: float | None = None
    observed_max: float | None = None
    monotone: str | None = None
    other_members: list[str] = field(default_factory=list)
    evidence: dict = field(default_factory=dict)

    def __post_init__(self):
        if self.kind not in ("numeric", "categorical"):
            raise ConfigError(f"attribute {self.name!r}: kind must be numeric or categorical")
        if len(self.labels) != len(self.points):
            raise ConfigError(
                f"attribute {self.name!r}: {len(self.labels)} labels but {len(self.points)} points"
            )
        if self.kind == "numeric" and len(self.edges) != len(self.labels) - 1:
            raise ConfigError(
                f"attribute {self.name!r}: {len(self.labels)} bins need "
                f"{len(self.labels) - 1} edges, got {len(self.edges)}"
            )
        # Code len(labels) is "scored neutral": points_table[code] and deviations[code] work
        # for every row without a branch.
        self._points_table = np.array(list(self.points) + [self.neutral], dtype=np.int64)
        self._deviation = self._points_table - self.neutral

    def points_of(self, codes: np.ndarray) -> np.ndarray:
        """Points for level / bin codes as returned by :meth:`encode` (neutral code included)."""
        return self._points_table[codes]

    @property
    def spread(self) -> int:
        """Points between this attribute's worst and best level."""
        return int(max(self.points) - min(self.points)) if self.points else 0

    def reason(self, code: int) -> str:
        """'industry = FinTech (+18)' / 'employees 100 to < 1,000 (+12)': points vs neutral."""
        deviation = int(self._deviation[code])
        if self.kind == "categorical":
            return f"{self.name} = {self.labels[code]} ({deviation:+d})"
        return f"{self.name} {self.labels[code]} ({deviation:+d})"

    # -- encoding ------------------------------------------------------------------------------

    def encode(self, column: pd.Series | None, n_rows: int) -> tuple[np.ndarray, list]:
        """Level / bin code per row (``len(labels)`` = scored neutral) and the row flags.

        Flags come as a list of ``(row_mask, texts)`` pairs, ``texts`` being one string for
        every flagged row or a single string for all of them.
        """
        neutral_code = len(self.labels)
        if column is None:
            codes = np.full(n_rows, neutral_code, dtype=np.int32)
            return codes, [(np.ones(n_rows, bool), f"{self.name} not provided: scored neutral")]
        if self.kind == "numeric":
            return self._encode_numeric(column)
        return self._encode_categorical(column)

    def _encode_numeric(self, column: pd.Series) -> tuple[np.ndarray, list]:
        values, status = coerce_numeric(column)
        neutral_code = len(self.labels)
        flags = []
        raw = None

        def raw_texts(mask):
            nonlocal raw
            if raw is None:
                raw = column.astype(object).to_numpy()
            return _per_unique(raw[mask], lambda v: _short(v))

        absent = status == ABSENT
        if absent.any():
            flags.append((absent, f"{self.name} missing: scored neutral"))
        unreadable = status == NOT_A_NUMBER
        if unreadable.any():
            texts = raw_texts(unreadable)
            flags.append(
                (unreadable, _concat(f"{self.name} '", texts, "' is not a number: scored neutral"))
            )
        for code, template in (
            (RANGE, "' is a range: scored at its lower end "),
            (OPEN_RANGE, "': scored as "),
        ):
            mask = status == code
            if mask.any():
                numbers = _per_unique(values[mask], _fmt_number)
                flags.append((mask, _concat(f"{self.name} '", raw_texts(mask), template, numbers)))
        if self.nonnegative:
            negative = values < 0
            if negative.any():
                numbers = _per_unique(values[negative], _fmt_number)
                flags.append(
                    (
                        negative,
                        _concat(
                            f"{self.name} negative (",
                            numbers,
                            "): treated as missing, scored neutral",
                        ),
                    )
                )
                values = np.where(negative, np.nan, values)

        known = ~np.isnan(values)
        codes = np.full(values.size, neutral_code, dtype=np.int32)
        if self.edges:
            codes[known] = np.searchsorted(np.asarray(self.edges, float), values[known], "right")
        else:
            codes[known] = 0
        # Values beyond anything seen in training are scored with the end bin, and said so.
        for beyond, bound, word in (
            (
                values > self.observed_max if self.observed_max is not None else None,
                self.observed_max,
                "above",
            ),
            (
                values < self.observed_min if self.observed_min is not None else None,
                self.observed_min,
                "below",
            ),
        ):
            if beyond is None or not beyond.any():
                continue
            end = neutral_code - 1 if word == "above" else 0
            numbers = _per_unique(values[beyond], _fmt_number)
            flags.append(
                (
                    beyond,
                    _concat(
                        f"{self.name} ",
                        numbers,
                        f" {word} the training range ({'max' if word == 'above' else 'min'} "
                        f"{_fmt_number(bound)}): scored as {self.labels[end]}",
                    ),
                )
            )
        return codes, flags

    def _encode_categorical(self, column: pd.Series) -> tuple[np.ndarray, list]:
        neutral_code = len(self.labels)
        row_codes, uniques = pd.factorize(column.astype(object), use_na_sentinel=True)
        exact = {label: i for i, label in enumerate(self.labels)}
        fold = match_key(self.name)
        folded: dict[str, int] = {}
        for i, label in enumerate(self.labels):
            folded.setdefault(fold(label), i)
        other = exact.get(OTHER)
        members = {m.casefold() for m in self.other_members}

        # One decision per distinct value, then a take over the rows.
        n_unique = len(uniques)
        value_code = np.full(n_unique + 1, neutral_code, dtype=np.int32)
        value_state = np.zeros(n_unique + 1, dtype=np.int8)  # 0 ok, 1 missing, 2 unseen
        value_state[n_unique] = 1  # factorize's NaN sentinel -1 lands on the last slot
        unseen_texts = np.empty(n_unique + 1, dtype=object)
        for i, value in enumerate(uniques):
            text = normalise_category(value)
            if text is None:
                value_state[i] = 1
                continue
            key = text.casefold()
            code = exact.get(text, folded.get(fold(text)))
            if code is None:
                spelled = yes_no_spelling(text, [lb for lb in self.labels if lb != OTHER])
                code = None if spelled is None else exact.get(spelled)
            if code is None and other is not None and key in members:
                code = other
            if code is None:
                value_state[i] = 2
                unseen_texts[i] = f"{self.name} '{_short(text)}' unseen in training: scored neutral"
                continue
            value_code[i] = code
        codes = value_code[row_codes]
        state = value_state[row_codes]
        flags = []
        missing = state == 1
        if missing.any():
            flags.append((missing, f"{self.name} missing: scored neutral"))
        unseen = state == 2
        if unseen.any():
            flags.append((unseen, unseen_texts[row_codes[unseen]]))
        return codes, flags

    # -- serialisation -------------------------------------------------------------------------

    def to_dict(self) -> dict:
        rows = []
        for i, label in enumerate(self.labels):
            row = {"label": label}
            if self.kind == "numeric":
                row["lower"] = to_jsonable(self.edges[i - 1]) if i > 0 else None
                row["upper"] = to_jsonable(self.edges[i]) if i < len(self.edges) else None
            elif label == OTHER and self.other_members:
                row["members"] = list(self.other_members)
            row["points"] = int(self.points[i])
            if self.counts:
                row["n"] = int(self.counts[i])
            if self.rates:
                row["rate"] = to_jsonable(self.rates[i])
            rows.append(row)
        out = {
            "name": self.name,
            "type": self.kind,
            "neutral_points": int(self.neutral),
            "weight": to_jsonable(self.weight),
        }
        if self.kind == "numeric":
            out.update(
                {
                    "edges": [to_jsonable(e) for e in self.edges],
                    "nonnegative": bool(self.nonnegative),
                    "observed_min": to_jsonable(self.observed_min),
                    "observed_max": to_jsonable(self.observed_max),
                    "monotone": self.monotone,
                    "bins": rows,
                }
            )
        else:
            out["levels"] = rows
        out["evidence"] = {k: to_jsonable(v) for k, v in self.evidence.items()}
        return out

    @classmethod
    def from_dict(cls, spec: dict) -> Attribute:
        kind = spec.get("type")
        rows = spec.get("bins" if kind == "numeric" else "levels")
        if not isinstance(rows, list) or not rows:
            raise ConfigError(
                f"scorecard attribute {spec.get('name')!r} has no bins/levels; "
                "regenerate icp.json with this version of icp-research"
            )
        other_members = []
        for row in rows:
            if row.get("label") == OTHER:
                other_members = list(row.get("members", []))
        has_counts = all("n" in row for row in rows)
        has_rates = all("rate" in row for row in rows)
        return cls(
            name=spec["name"],
            kind=kind,
            labels=[row["label"] for row in rows],
            points=[int(row["points"]) for row in rows],
            neutral=int(spec["neutral_points"]),
            counts=[int(row["n"]) for row in rows] if has_counts else [],
            rates=[_from_json_float(row["rate"]) for row in rows] if has_rates else [],
            weight=_from_json_float(spec.get("weight", 0.0)),
            edges=[float(e) for e in spec.get("edges", [])],
            nonnegative=bool(spec.get("nonnegative", False)),
            observed_min=_from_json_float(spec.get("observed_min")),
            observed_max=_from_json_float(spec.get("observed_max")),
            monotone=spec.get("monotone"),
            other_members=other_members,
            evidence=dict(spec.get("evidence", {})),
        )


def _from_json_float(value):
    return None if value is None else float(value)


def _per_unique(values: np.ndarray, render: Callable) -> np.ndarray:
    """``render`` applied once per distinct value, as an object array aligned with ``values``."""
    codes, uniques = pd.factorize(values)
    rendered = np.array([render(u) for u in uniques] + [""], dtype=object)
    return rendered[codes]


def _concat(*parts) -> np.ndarray:
    """Element-wise concatenation of strings and object arrays."""
    out = None
    for part in parts:
        out = part if out is None else out + part
    return out


def combination_index(codes: np.ndarray, radix: list[int]) -> tuple[np.ndarray, np.ndarray]:
    """Distinct rows of a code matrix: ``(combination of each row, distinct code rows)``.

    ``codes[:, j]`` lies in ``0 .. radix[j] - 1``. Rows are packed into one integer key and
    hashed (linear time) unless the keys would overflow 62 bits.
    """
    radix_arr = np.asarray(radix, dtype=np.int64)
    if float(np.prod(radix_arr.astype(float))) < 2.0**62:
        multiplier = np.concatenate([[1], np.cumprod(radix_arr[:-1])]).astype(np.int64)
        keys = codes.astype(np.int64) @ multiplier
        combo_of_row, unique_keys = pd.factorize(keys)
        combos = (unique_keys[:, None] // multiplier[None, :]) % radix_arr[None, :]
        return combo_of_row, combos
    combos, combo_of_row = np.unique(codes, axis=0, return_inverse=True)
    return combo_of_row.ravel(), combos


def _combine_flags(n_rows: int, flag_sets: list) -> np.ndarray:
    """Join every row's flags with '; ' ('' when a row has none)."""
    out = np.full(n_rows, "", dtype=object)
    for mask, texts in flag_sets:
        index = np.flatnonzero(mask)
        separator = np.where(out[index] == "", "", "; ").astype(object)
        out[index] = out[index] + separator + texts
    return out


# ---------------------------------------------------------------------------------------------


@dataclass
class Scorecard:
    """A fitted fit-score: points per attribute level or bin, summing to 0-100, and tiers.

    Build one with :func:`icp_research.scoring.scorecard.fit_scorecard`, keep it with :meth:`to_dict`
    (the ``scorecard`` and ``tiers`` parts of ``artifacts/icp.json``), read it back with
    :meth:`from_dict` and apply it with :meth:`score`.

    ``tiers`` are ``(name, min_score)`` pairs from best to worst; a lead belongs to the first
    tier whose ``min_score`` it reaches. A score maps to an estimated probability of the outcome
    through ``log_odds_at_0 + log_odds_per_point * score`` (see :meth:`probability`).
    """

    outcome: str
    attributes: list[Attribute]
    tiers: list[tuple[str, float]]
    log_odds_at_0: float = 0.0
    log_odds_per_point: float = 0.0
    training: dict = field(default_factory=dict)
    dropped: list[dict] = field(default_factory=list)
    caveats: list[str] = field(default_factory=list)
    params: dict = field(default_factory=dict)

    def __post_init__(self):
        self.tiers = [(str(name), _number(min_score)) for name, min_score in self.tiers]
        mins = [m for _, m in self.tiers]
        if (
            not self.tiers
            or any(a < b for a, b in zip(mins[:-1], mins[1:], strict=False))
            or mins[-1] > 0
        ):
            raise ConfigError(
                "tiers must be (name, min_score) pairs from the best tier to the worst, "
                "min_score not increasing and the last tier starting at 0 so that every lead "
                f"gets a tier; got {self.tiers}"
            )

    # -- reading -------------------------------------------------------------------------------

    @property
    def min_score(self) -> int:
        """The lowest total a lead can reach (0 for a fitted scorecard)."""
        return int(sum(min(a.points) for a in self.attributes))

    @property
    def max_score(self) -> int:
        """The highest total a lead can reach (100 for a fitted scorecard)."""
        return int(sum(max(a.points) for a in self.attributes))

    def table(self) -> pd.DataFrame:
        """The points table a person reads: one row per attribute level or bin.

        Columns: ``attribute``, ``level`` (category or bin label), ``points``,
        ``vs_neutral`` (points above or below the attribute's neutral score), ``n`` and
        ``rate`` (training rows and their outcome rate, a fraction), attributes in order of
        their points spread.
        """
        rows = []
        for attribute in sorted(self.attributes, key=lambda a: -a.spread):
            for i, label in enumerate(attribute.labels):
                rows.append(
                    {
                        "attribute": attribute.name,
                        "level": label,
                        "points": int(attribute.points[i]),
                        "vs_neutral": int(attribute.points[i] - attribute.neutral),
                        "n": attribute.counts[i] if attribute.counts else np.nan,
                        "rate": attribute.rates[i] if attribute.rates else np.nan,
                    }
                )
        return pd.DataFrame(
            rows, columns=["attribute", "level", "points", "vs_neutral", "n", "rate"]
        )

    def probability(self, scores) -> np.ndarray:
        """Estimated probability of the outcome at each score (fractions), from the fit."""
        log_odds = self.log_odds_at_0 + self.log_odds_per_point * np.asarray(scores, float)
        return 1.0 / (1.0 + np.exp(-log_odds))

    def tier_of(self, scores) -> pd.Categorical:
        """Tier name for each score, as a Categorical ordered best tier first."""
        names = [name for name, _ in self.tiers]
        ascending = np.array([m for _, m in self.tiers][::-1], dtype=float)
        position = np.searchsorted(ascending, np.asarray(scores, float), side="right") - 1
        codes = len(names) - 1 - np.clip(position, 0, len(names) - 1)
        return pd.Categorical.from_codes(codes, categories=names, ordered=True)

    def __repr__(self) -> str:
        names = ", ".join(a.name for a in self.attributes)
        return (
            f"<Scorecard: {self.outcome}; {len(self.attributes)} attributes ({names}); "
            f"tiers {', '.join(f'{n} >= {_fmt_number(m)}' for n, m in self.tiers)}>"
        )

    def _repr_html_(self) -> str:
        from icp_research.formatting import esc, table_html

        tiers = ", ".join(f"{n} &ge; {esc(_fmt_number(m))}" for n, m in self.tiers)
        parts = [
            f"<h3>Fit score for {esc(self.outcome)}</h3>",
            f"<p>Tiers: {tiers}</p>",
            table_html(self.table(), max_rows=200),
        ]
        if self.caveats:
            items = "".join(f"<li>{esc(c)}</li>" for c in self.caveats)
            parts.append(f"<ul class='icp-caveats'>{items}</ul>")
        return "\n".join(parts)

    # -- scoring -------------------------------------------------------------------------------

    def _column(self, leads: pd.DataFrame, name: str) -> pd.Series | None:
        return find_column(leads, name)

    def score(
        self,
        leads: pd.DataFrame,
        *,
        reasons: bool = True,
        max_reasons: int = 3,
        points: bool = False,
        rules: Callable[[pd.DataFrame], pd.DataFrame] | None = None,
        unknown_tier: str | None = None,
    ) -> pd.DataFrame:
        """Score every row of ``leads``.

        Parameters
        ----------
        leads : DataFrame
            One row per lead or account, with the scorecard's attribute columns (matched by
            name, then ignoring case). Missing columns score neutral and are flagged.
        reasons : bool
            Build ``reasons_positive`` / ``reasons_negative`` (skip for speed when only the
            score is needed).
        max_reasons : int
            Reasons of each sign per row, strongest first.
        points : bool
            Add a ``points_<attribute>`` column per attribute.
        rules : callable, optional
            ``rules(leads) -> DataFrame`` with the same index, e.g. the blueprint's include /
            exclude rule hits; its columns are appended to the output.
        unknown_tier : str, optional
            The tier of a row on which every attribute scored neutral (all missing, unseen
            or unreadable): the score knows nothing about it, so it gets this tier (the last
            category) instead of the one its neutral score falls in, and a flag says so.

        Returns
        -------
        DataFrame
            Same index and order as ``leads``, with ``fit_score`` (whole points, 0-100),
            ``tier`` (ordered Categorical, best first), ``reasons_positive`` and
            ``reasons_negative`` (``'industry = FinTech (+18); ...'``, points relative to the
            attribute's neutral score) and ``flags`` ('' when the row had no data problem).
        """
        if not isinstance(leads, pd.DataFrame):
            raise DataError("leads must be a table (pandas DataFrame) with one row per lead")
        n_rows = len(leads)
        total = np.zeros(n_rows, dtype=np.int64)
        codes = np.empty((n_rows, len(self.attributes)), dtype=np.int32)
        flag_sets: list = []
        out = {}
        for j, attribute in enumerate(self.attributes):
            attribute_codes, flags = attribute.encode(self._column(leads, attribute.name), n_rows)
            attribute_points = attribute.points_of(attribute_codes)
            total += attribute_points
            codes[:, j] = attribute_codes
            flag_sets.extend(flags)
            if points:
                out[f"points_{attribute.name}"] = attribute_points

        tiers = self.tier_of(total)
        if unknown_tier is not None and self.attributes:
            neutral = np.array([len(a.labels) for a in self.attributes], dtype=np.int32)
            unknown = (codes == neutral).all(axis=1)
            tiers = tiers.add_categories([unknown_tier])
            tiers[unknown] = unknown_tier
            flag_sets.append(
                (
                    unknown,
                    f"nothing the score reads is known: tier {unknown_tier} (add "
                    f"{', '.join(a.name for a in self.attributes)} and score it again)",
                )
            )
        scored = pd.DataFrame({"fit_score": total, "tier": tiers}, index=leads.index)
        if reasons:
            positive, negative = self._reasons(codes, max_reasons)
            scored["reasons_positive"] = positive
            scored["reasons_negative"] = negative
        scored["flags"] = _combine_flags(n_rows, flag_sets)
        for name, values in out.items():
            scored[name] = values
        if rules is not None:
            extra = rules(leads)
            if len(extra) != n_rows or not extra.index.equals(leads.index):
                raise DataError("rules(leads) must return one row per lead, with the same index")
            scored = pd.concat([scored, extra], axis=1)
        return scored

    def _reasons(self, codes: np.ndarray, max_reasons: int) -> tuple[np.ndarray, np.ndarray]:
        """Reason strings per row, built once per distinct combination of codes."""
        n_rows, n_attributes = codes.shape
        if n_attributes == 0 or n_rows == 0:
            empty = np.full(n_rows, "", dtype=object)
            return empty, empty.copy()
        radix = [len(a.labels) + 1 for a in self.attributes]
        combo_of_row, combos = combination_index(codes, radix)
        deviations = np.column_stack(
            [a._deviation[combos[:, j]] for j, a in enumerate(self.attributes)]
        )
        positive = np.empty(len(combos), dtype=object)
        negative = np.empty(len(combos), dtype=object)
        for k in range(len(combos)):
            row = deviations[k]
            # Stable sorts keep the scorecard's attribute order between equal deviations.
            up = [j for j in np.argsort(-row, kind="stable") if row[j] > 0][:max_reasons]
            down = [j for j in np.argsort(row, kind="stable") if row[j] < 0][:max_reasons]
            positive[k] = "; ".join(self.attributes[j].reason(combos[k, j]) for j in up)
            negative[k] = "; ".join(self.attributes[j].reason(combos[k, j]) for j in down)
        return positive[combo_of_row], negative[combo_of_row]

    # -- serialisation -------------------------------------------------------------------------

    def to_dict(self) -> dict:
        """The ``scorecard`` and ``tiers`` parts of ``artifacts/icp.json`` (JSON-ready).

        ``{"scorecard": {"format": 1, "outcome", "scale", "attributes": [...], "dropped",
        "training", "params", "caveats"}, "tiers": [{"name", "min_score"}, ...]}``. Every
        attribute lists its bins (with ``lower`` / ``upper`` edges) or levels with their points,
        training ``n`` and outcome ``rate``, and its ``neutral_points``.
        """
        return {
            "scorecard": {
                "format": FORMAT,
                "outcome": self.outcome,
                "scale": {
                    "min": self.min_score,
                    "max": self.max_score,
                    "log_odds_at_0": to_jsonable(self.log_odds_at_0),
                    "log_odds_per_point": to_jsonable(self.log_odds_per_point),
                },
                "attributes": [a.to_dict() for a in self.attributes],
                "dropped": [dict(d) for d in self.dropped],
                "training": {k: to_jsonable(v) for k, v in self.training.items()},
                "params": json.loads(json.dumps(self.params, default=to_jsonable)),
                "caveats": list(self.caveats),
            },
            "tiers": [{"name": n, "min_score": to_jsonable(m)} for n, m in self.tiers],
        }

    @classmethod
    def from_dict(cls, spec: dict) -> Scorecard:
        """Rebuild a scorecard from :meth:`to_dict` output or a whole ``icp.json`` document."""
        if not isinstance(spec, dict) or "scorecard" not in spec or "tiers" not in spec:
            raise ConfigError(
                "not a scorecard: expected the 'scorecard' and 'tiers' entries of "
                "artifacts/icp.json"
            )
        card = spec["scorecard"]
        version = card.get("format")
        if version != FORMAT:
            raise ConfigError(
                f"scorecard format {version!r} is not supported by this version of "
                f"icp-research (it reads format {FORMAT}); re-run the blueprint to regenerate it"
            )
        scale = card.get("scale", {})
        return cls(
            outcome=card["outcome"],
            attributes=[Attribute.from_dict(a) for a in card["attributes"]],
            tiers=[(t["name"], t["min_score"]) for t in spec["tiers"]],
            log_odds_at_0=_from_json_float(scale.get("log_odds_at_0", 0.0)),
            log_odds_per_point=_from_json_float(scale.get("log_odds_per_point", 0.0)),
            training=dict(card.get("training", {})),
            dropped=[dict(d) for d in card.get("dropped", [])],
            caveats=list(card.get("caveats", [])),
            params=dict(card.get("params", {})),
        )

    @classmethod
    def load(cls, path: str | Path) -> Scorecard:
        """Read a scorecard from an ``icp.json`` file."""
        path = Path(path)
        try:
            spec = json.loads(path.read_text(encoding="utf-8"))
        except FileNotFoundError:
            raise ConfigError(f"{path}: file not found; pass the icp.json of a run") from None
        except json.JSONDecodeError as error:
            raise ConfigError(f"{path}: not valid JSON ({error})") from None
        try:
            return cls.from_dict(spec)
        except ConfigError as error:
            raise ConfigError(f"{path}: {error}") from None


def _number(value) -> float | int:
    value = float(value)
    return int(value) if value.is_integer() else value


# ---------------------------------------------------------------------------------------------
# ICP rules and lead files: what ``icp-research score`` does


#: Columns ``score_leads`` adds to every lead, in order.
SCORE_COLUMNS = [
    "fit_score",
    "tier",
    "win_probability",
    "in_icp",
    "reasons_positive",
    "reasons_negative",
    "rules_hit",
    "flags",
]

_LEAD_FORMATS = {
    ".csv": "csv",
    ".txt": "csv",
    ".tsv": "csv",
    ".parquet": "parquet",
    ".pq": "parquet",
    ".xlsx": "excel",
    ".xlsm": "excel",
    ".xls": "excel",
}
_OUTPUT_FORMATS = {".csv": "csv", ".parquet": "parquet", ".pq": "parquet", ".xlsx": "xlsx"}

#: The most rows an Excel sheet holds (header included).
EXCEL_MAX_ROWS = 1_048_576


def find_column(leads: pd.DataFrame, name: str) -> pd.Series | None:
    """The column ``name`` of ``leads``: matched exactly, then ignoring case and spaces, then
    by the name the study gave an unmapped export column ("Lifecycle Stage" is
    ``lifecycle_stage``, "Uses SSO?" is ``uses_sso``).

    A duplicated column name yields its first occurrence. None when there is no such column.
    """
    if name in leads.columns:
        column = leads[name]
        return column.iloc[:, 0] if isinstance(column, pd.DataFrame) else column
    folded = {str(c).strip().casefold(): c for c in leads.columns[::-1]}
    match = folded.get(name.casefold())
    if match is None:
        from icp_research.data.config import snake_name

        match = {snake_name(c): c for c in leads.columns[::-1]}.get(name)
    return None if match is None else find_column(leads, match)


def with_source_headers(leads: pd.DataFrame, spec: dict) -> pd.DataFrame:
    """``leads`` with a column under the ICP's name for each attribute the file has only under
    the export header the study read it from (``attributes.<name>.source`` of icp.json:
    "Organization - Industry" for ``industry``), so that a lead list exported from the same
    CRM is scored without the config. The lead's own columns are unchanged."""
    added = {}
    for name, info in (spec.get("attributes") or {}).items():
        source = info.get("source") if isinstance(info, dict) else None
        if not source or find_column(leads, name) is not None:
            continue
        column = find_column(leads, source)
        if column is not None:
            added[name] = column
    if not added:
        return leads
    return pd.concat([leads, pd.DataFrame(added, index=leads.index)], axis=1)


def read_columns(spec: dict, leads: pd.DataFrame, rules_only: bool = False) -> tuple[list, list]:
    """``(needed, absent)``: the attributes the score (not with ``rules_only``) and the rules
    read, and those of them the lead file has no column for (a multi-select attribute counts
    as present when its raw column is)."""
    needed = (
        set()
        if rules_only
        else {a["name"] for a in (spec.get("scorecard") or {}).get("attributes", [])}
    )
    needed |= {c.attribute for r in icp_rules(spec) for c in _rule_conditions(r)}
    expanded = expand_multi_select(with_source_headers(leads, spec), spec)
    return sorted(needed), sorted(n for n in needed if find_column(expanded, n) is None)


def expand_multi_select(leads: pd.DataFrame, spec: dict) -> pd.DataFrame:
    """``leads`` with the yes/no columns the ICP reads from multi-select cells (``technologies:
    Snowflake`` from a "Technologies" cell ``Salesforce, Snowflake``), split as the training
    rows were (:func:`icp_research.data.multiselect.item_flags`). A lead file that has the
    expanded column already keeps it; one without the raw column gets nothing here, so the
    attribute is scored neutral and flagged as not provided. The rows and the lead's own
    columns are unchanged."""
    from icp_research.data.multiselect import item_flags

    added = {}
    for name, info in (spec.get("attributes") or {}).items():
        item = info.get("multi_select") if isinstance(info, dict) else None
        if not item or find_column(leads, name) is not None:
            continue
        column = find_column(leads, item.get("column", "")) if item.get("column") else None
        if column is None and item.get("source"):
            column = find_column(leads, item["source"])
        if column is None:
            continue
        added[name] = item_flags(
            _one_separator(column, item["separator"]), item["separator"], item["item"]
        )
    if not added:
        return leads
    return pd.concat([leads, pd.DataFrame(added, index=leads.index)], axis=1)


def _one_separator(column: pd.Series, separator: str) -> pd.Series:
    """A lead list's multi-select cells with the training rows' separator. A list saved from
    another tool may write "Snowflake, dbt" where the CRM wrote "Snowflake;dbt": a cell without
    the training separator but with another one (``;``, ``|``, ``,``) is split on that one, so
    that it is not read as one unknown item (a lead using Snowflake marked "no")."""
    from icp_research.data.multiselect import SEPARATORS

    def cell(value):
        if not isinstance(value, str) or separator in value:
            return value
        other = next((s for s in SEPARATORS if s != separator and s in value), None)
        return value if other is None else value.replace(other, separator)

    codes, uniques = pd.factorize(column.astype(object), use_na_sentinel=True)
    read = np.array([cell(v) for v in uniques] + [None], dtype=object)
    return pd.Series(read[codes], index=column.index, dtype=object)


def read_icp(path: str | Path) -> dict:
    """Read a run's ``artifacts/icp.json`` (ConfigError, exit code 2, when it is not one)."""
    path = Path(path)
    try:
        spec = json.loads(path.read_text(encoding="utf-8"))
    except FileNotFoundError:
        raise ConfigError(f"{path}: file not found; pass the icp.json of a run") from None
    except IsADirectoryError:
        raise ConfigError(f"{path} is a folder; pass the icp.json file inside it") from None
    except (json.JSONDecodeError, UnicodeDecodeError) as error:
        raise ConfigError(f"{path}: not valid JSON ({error})") from None
    if not isinstance(spec, dict) or "rules" not in spec or "tiers" not in spec:
        raise ConfigError(
            f"{path}: not an ICP file (expected the 'rules', 'scorecard' and 'tiers' entries "
            "that the ICP blueprint report writes to artifacts/icp.json)"
        )
    problem = icp_problem(spec)
    if problem:
        raise ConfigError(
            f"{path}: {problem}; nothing was scored. Use the icp.json a run wrote "
            "(reports/<run>/artifacts/icp.json), or regenerate it with icp-research run"
        )
    return spec


def icp_rules(spec: dict, kinds: Sequence[str] = ("include", "exclude")) -> list[dict]:
    """The rules of an icp.json document, of the given kinds, in order (include first)."""
    rules = spec.get("rules") or {}
    out = []
    for kind in kinds:
        for rule in rules.get(kind) or []:
            out.append({**rule, "kind": rule.get("kind", kind)})
    return out


def _rule_conditions(rule: dict) -> list:
    from icp_research.analyses.antipatterns import Condition

    try:
        return [
            Condition(c["attribute"], c["operator"], c.get("value"))
            for c in rule.get("conditions") or []
        ]
    except (KeyError, TypeError, ValueError) as error:
        raise ConfigError(
            f"rule {rule.get('id', rule.get('text', '?'))!r} has an unreadable condition "
            f"({error}); regenerate icp.json with this version of icp-research"
        ) from None


def prepare_rule_values(
    leads: pd.DataFrame,
    attributes: dict,
    rules: Sequence[dict],
    *,
    flags: list | None = None,
    quiet: Sequence[str] = (),
) -> tuple[dict, dict]:
    """The columns the rules read, cleaned the way the scorecard reads them.

    Numbers are read with :func:`coerce_numeric` (negatives become missing for attributes marked
    ``nonnegative``); categories are stripped and matched to the spelling the rules use,
    ignoring case, and blanks / NULL / N/A become missing.

    Returns
    -------
    numeric : dict
        ``{attribute: float array, one value per lead}`` (NaN = missing or unreadable).
    categorical : dict
        ``{attribute: (code of each lead, cleaned distinct values)}``; code -1 (missing) indexes
        the last distinct value, None. Rules are evaluated once per distinct value.

    When a list is given as ``flags``, ``(row mask, text)`` pairs are appended to it for
    values that are blank or not in the lead file, and numbers that cannot be read or cannot
    be negative (the rules on them are not met, so ``in_icp`` False there means "unknown",
    not "not a fit"), except for the attributes in ``quiet`` (which the scorecard already
    flags) and those the rules only ask to be missing.
    """
    numeric: dict[str, np.ndarray] = {}
    categorical: dict[str, tuple[np.ndarray, np.ndarray]] = {}
    n_rows = len(leads)
    spellings: dict[str, dict[str, str]] = {}
    for rule in rules:
        for condition in _rule_conditions(rule):
            if condition.operator in ("equals", "in"):
                values = [condition.value] if condition.operator == "equals" else condition.value
                fold = match_key(condition.attribute)
                for value in values:
                    spellings.setdefault(condition.attribute, {}).setdefault(
                        fold(str(value)), str(value)
                    )
    names = {c.attribute for rule in rules for c in _rule_conditions(rule)}
    # Attributes a rule needs a value of: a blank there leaves the rule unmet for want of data.
    needed = {
        c.attribute for rule in rules for c in _rule_conditions(rule) if c.operator != "is_missing"
    }

    def unknown(name: str, rows: np.ndarray, why: str) -> None:
        if flags is not None and name not in quiet and name in needed and rows.any():
            flags.append((rows, f"{name} {why}: rules on {name} not met (unknown)"))

    for name in sorted(names):
        column = find_column(leads, name)
        info = attributes.get(name, {})
        if column is None:
            unknown(name, np.ones(n_rows, dtype=bool), "not provided")
        numeric_rule = any(
            c.attribute == name and c.operator in ("less_than", "at_least", "between")
            for rule in rules
            for c in _rule_conditions(rule)
        )
        if info.get("type") == "numeric" or (numeric_rule and info.get("type") != "categorical"):
            if column is None:
                numeric[name] = np.full(n_rows, np.nan)
                continue
            values, status = coerce_numeric(column)
            unknown(name, status == ABSENT, "missing")
            say = flags is not None and name not in quiet
            if say:
                unreadable = status == NOT_A_NUMBER
                if unreadable.any():
                    raw = column.astype(object).to_numpy()
                    texts = _per_unique(raw[unreadable], lambda v: _short(v))
                    flags.append(
                        (
                            unreadable,
                            _concat(
                                f"{name} '", texts, f"' is not a number: rules on {name} not met"
                            ),
                        )
                    )
            if info.get("nonnegative", False):
                negative = values < 0
                if say and negative.any():
                    numbers = _per_unique(values[negative], _fmt_number)
                    flags.append(
                        (
                            negative,
                            _concat(f"{name} negative (", numbers, f"): rules on {name} not met"),
                        )
                    )
                values = np.where(negative, np.nan, values)
            numeric[name] = values
            continue
        if column is None:
            categorical[name] = (np.zeros(n_rows, dtype=np.int64), np.array([None], dtype=object))
            continue
        codes, uniques = pd.factorize(column.astype(object), use_na_sentinel=True)
        spelling = spellings.get(name, {})
        yes_no = info.get("values") == "yes/no" or (
            bool(spelling) and set(spelling) <= {"true", "false"}
        )
        cleaned = []
        fold = match_key(name)
        for value in uniques:
            text = normalise_category(value)
            if text is not None and yes_no:
                text = yes_no_spelling(text, ["True", "False"]) or text
            cleaned.append(None if text is None else spelling.get(fold(text), text))
        cleaned.append(None)  # the NaN sentinel (-1) lands here
        cleaned = np.array(cleaned, dtype=object)
        unknown(name, pd.isna(cleaned[codes]), "missing")
        categorical[name] = (codes, cleaned)
    return numeric, categorical


def rule_hits(
    leads: pd.DataFrame,
    spec: dict,
    kinds=("include", "exclude"),
    *,
    flags: list | None = None,
    quiet: Sequence[str] = (),
) -> pd.DataFrame:
    """Which rules of an icp.json document each lead meets: one boolean column per rule id.

    A rule holds when all its conditions hold (:class:`icp_research.analyses.antipatterns.Condition`
    semantics, applied to cleaned values, see :func:`prepare_rule_values`). A missing or
    unreadable value never meets a condition other than ``is_missing``.
    """
    rules = icp_rules(spec, kinds)
    numeric, categorical = prepare_rule_values(
        leads, spec.get("attributes") or {}, rules, flags=flags, quiet=quiet
    )
    n_rows = len(leads)
    hits = {}
    cache: dict = {}
    for rule in rules:
        mask = np.ones(n_rows, dtype=bool)
        for condition in _rule_conditions(rule):
            key = (condition.attribute, condition.operator, json.dumps(condition.value))
            if key not in cache:
                name = condition.attribute
                if name in numeric:
                    frame = pd.DataFrame({name: numeric[name]})
                    cache[key] = condition.matches(frame).to_numpy()
                else:
                    codes, cleaned = categorical[name]
                    frame = pd.DataFrame({name: pd.Series(cleaned, dtype=object)})
                    cache[key] = condition.matches(frame).to_numpy()[codes]
            mask &= cache[key]
        hits[rule.get("id") or f"{rule['kind']}: {rule.get('text', '')}"] = mask
    return pd.DataFrame(hits, index=leads.index, columns=list(hits))


def rule_columns(
    leads: pd.DataFrame, spec: dict, *, skip_flags: Sequence[str] = ()
) -> pd.DataFrame:
    """``in_icp`` and ``rules_hit`` for every lead (the rule part of :func:`score_leads`).

    ``in_icp`` is True when the lead meets every include rule that defines the ICP (role
    ``filter``) and no exclude rule; always False when the document has no such include rule
    (no ICP could be drawn). ``rules_hit`` names the include and exclude rules the lead meets,
    ``'include: industry in {FinTech, SaaS}; exclude: crm = None'`` ('' when none).
    ``rule_flags`` names unreadable or impossible numbers the rules read (attributes in
    ``skip_flags``, which the scorecard already flags, are left out).
    """
    rules = icp_rules(spec)
    flag_sets: list = []
    hits = rule_hits(leads, spec, flags=flag_sets, quiet=skip_flags)
    n_rows = len(leads)
    defining = [
        r.get("id") for r in rules if r["kind"] == "include" and r.get("role", "filter") == "filter"
    ]
    excluding = [r.get("id") for r in rules if r["kind"] == "exclude"]
    in_icp = np.zeros(n_rows, dtype=bool)
    if defining:
        in_icp = hits[defining].to_numpy().all(axis=1)
        if excluding:
            in_icp &= ~hits[excluding].to_numpy().any(axis=1)
    if rules:
        matrix = hits.to_numpy()
        combo_of_row, combos = combination_index(matrix.astype(np.int32), [2] * len(rules))
        labels = [f"{r['kind']}: {r.get('text') or r.get('id')}" for r in rules]
        texts = np.array(
            [
                "; ".join(label for label, hit in zip(labels, row, strict=True) if hit)
                for row in combos
            ],
            dtype=object,
        )
        rules_hit = texts[combo_of_row]
    else:
        rules_hit = np.full(n_rows, "", dtype=object)
    return pd.DataFrame(
        {
            "in_icp": in_icp,
            "rules_hit": rules_hit,
            "rule_flags": _combine_flags(n_rows, flag_sets),
        },
        index=leads.index,
    )


def score_leads(
    icp: dict | str | Path, leads: pd.DataFrame, *, max_reasons: int = 3, rules_only: bool = False
) -> pd.DataFrame:
    """Score leads with an ICP: the one code path of the blueprint report and the CLI.

    Parameters
    ----------
    icp : dict or path
        An ``icp.json`` document (or its path) as written by the ICP blueprint report.
    leads : DataFrame
        One row per lead or account with the ICP's attribute columns (canonical names, matched
        ignoring case). Missing columns, blanks, unseen categories and impossible values are
        scored neutrally and flagged; no row is dropped.

    Returns
    -------
    DataFrame
        Same index and order as ``leads``, with :data:`SCORE_COLUMNS`: ``fit_score`` (0-100),
        ``tier``, ``win_probability`` (0-1, NaN without a usable calibration), ``in_icp``,
        ``reasons_positive`` / ``reasons_negative`` (up to ``max_reasons`` each, points relative
        to neutral), ``rules_hit`` and ``flags``.

        With ``rules_only`` the fit score is left out (``fit_score`` empty, ``tier`` ''): only
        ``in_icp``, ``rules_hit`` and the rules' ``flags`` are filled, which is all an ICP
        without a fit score can give.

    Raises
    ------
    ConfigError
        When the document holds no fit score (no ICP could be drawn from the data) and
        ``rules_only`` is not set; the message says why and what to do next.
    """
    spec = icp if isinstance(icp, dict) else read_icp(icp)
    leads = expand_multi_select(with_source_headers(leads, spec), spec)
    if rules_only:
        return _rules_only(spec, leads)
    require_scorecard(spec)
    scorecard = Scorecard.from_dict(spec)
    scored_names = [a.name for a in scorecard.attributes]
    scored = scorecard.score(
        leads,
        max_reasons=max_reasons,
        rules=lambda frame: rule_columns(frame, spec, skip_flags=scored_names),
        unknown_tier=UNKNOWN_TIER,
    )
    # The scorecard flags its own attributes; a rule needing one is then unmet for want of
    # data, which the flag says too ("in_icp" False there means unknown, not "not a fit").
    needed = {
        c.attribute
        for r in icp_rules(spec)
        for c in _rule_conditions(r)
        if c.operator != "is_missing"
    }
    # Flag texts rewritten once per distinct text (a million leads carry a few hundred).
    from icp_research.data.cleaning import per_distinct

    for name in sorted(needed & set(scored_names)):
        scored["flags"] = per_distinct(
            scored["flags"],
            lambda flags, name=name: flags.str.replace(
                rf"(?:^|(?<=; )){re.escape(name)} (missing|not provided): scored neutral(?=;|$)",
                rf"{name} \1: scored neutral; rules on {name} not met (unknown)",
                regex=True,
            ),
        )
    extra = scored["rule_flags"].to_numpy(dtype=object)
    # A tier comes from the score; an exclude rule is the ICP's own "not a fit". A lead with
    # both (a first user's "Tier 1" beside "exclude: employees < 51") says so, so that sales
    # does not read the tier alone.
    excluded = per_distinct(
        scored["rules_hit"].astype(str),
        lambda hits: hits.str.contains(r"(?:^|; )exclude: ", regex=True),
    )
    last = scorecard.tiers[-1][0] if scorecard.tiers else ""
    listed = excluded.to_numpy(dtype=bool) & ~scored["tier"].isin([last, UNKNOWN_TIER]).to_numpy()
    if listed.any():
        note = "meets an exclude rule: not a fit by the ICP's rules, whatever its tier"
        extra = np.where(listed, np.where(extra != "", extra + "; " + note, note), extra)
    flags = scored["flags"].to_numpy(dtype=object)
    both = (flags != "") & (extra != "")
    scored["flags"] = np.where(both, flags + "; " + extra, np.where(extra != "", extra, flags))
    calibration, _ = _calibration(spec)
    scored["win_probability"] = (
        calibration.apply(scored["fit_score"].to_numpy(dtype=float))
        if calibration is not None
        else np.full(len(scored), np.nan)
    )
    # A lead the score knows nothing about has the neutral score, whose probability says
    # nothing about it either: left empty, as its tier says Unknown.
    scored.loc[(scored["tier"] == UNKNOWN_TIER).to_numpy(dtype=bool), "win_probability"] = np.nan
    return scored[SCORE_COLUMNS]


def _calibration(spec: dict):
    """``(usable Calibration or None, why not)`` from an icp.json document."""
    from icp_research.methods.calibration import Calibration

    block = spec.get("calibration")
    if not block:
        return None, (
            "this icp.json has no calibration of the fit score (it predates win probabilities, "
            "or the blueprint did not calibrate it); rerun the ICP blueprint to add one"
        )
    try:
        calibration = Calibration.from_dict(block)
    except (DataError, TypeError, ValueError) as error:
        return None, f"its calibration cannot be read ({error})"
    outcome = (spec.get("scorecard") or {}).get("outcome")
    if calibration.outcome and outcome and calibration.outcome != outcome:
        return None, (
            f"its calibration predicts {calibration.outcome!r}, the fit score {outcome!r}; "
            "rerun the ICP blueprint"
        )
    if not calibration.usable:
        return None, calibration.reason or f"its calibration's status is {calibration.status}"
    return calibration, ""


def win_probability_note(spec: dict) -> str | None:
    """One line saying why ``win_probability`` is empty for this icp.json (None when it is
    filled)."""
    if not spec.get("scorecard"):
        return None
    calibration, why = _calibration(spec)
    return None if calibration is not None else f"win_probability is empty: {why}"


def _rules_only(spec: dict, leads: pd.DataFrame) -> pd.DataFrame:
    if not icp_rules(spec):
        raise ConfigError(
            "this icp.json holds no rules to mark leads with (no ICP could be drawn): "
            f"{_no_score_reason(spec)}; {_no_score_next_step(spec, rules=False)}"
        )
    rules = rule_columns(leads, spec)
    empty = np.full(len(leads), "", dtype=object)
    return pd.DataFrame(
        {
            "fit_score": np.full(len(leads), np.nan),
            "tier": empty,
            "win_probability": np.full(len(leads), np.nan),
            "in_icp": rules["in_icp"].to_numpy(),
            "reasons_positive": empty,
            "reasons_negative": empty,
            "rules_hit": rules["rules_hit"].to_numpy(),
            "flags": rules["rule_flags"].to_numpy(dtype=object),
        },
        index=leads.index,
    )[SCORE_COLUMNS]


def require_scorecard(spec: dict) -> None:
    """ConfigError saying why an icp.json holds no fit score and what to do next."""
    if spec.get("scorecard"):
        return
    raise ConfigError(
        f"this icp.json holds no fit score, so there is nothing to score with: "
        f"{_no_score_reason(spec)}; {_no_score_next_step(spec, rules=bool(icp_rules(spec)))}"
    )


def _no_score_reason(spec: dict) -> str:
    """Why the blueprint fitted no score, as icp.json says it (its caveats, else statement)."""
    caveats = [str(c) for c in spec.get("caveats") or [] if c]
    for caveat in caveats:
        if caveat.startswith("No fit score"):
            return _short(caveat.removeprefix("No fit score").lstrip(":. ").rstrip("."), 200)
    for caveat in caveats:
        if "cannot be measured" in caveat or "no fit score" in caveat.lower():
            return _short(caveat.rstrip("."), 200)
    reason = spec.get("statement") or "no characteristic predicted the outcome"
    return _short(str(reason).rstrip("."), 200)


def _no_score_next_step(spec: dict, *, rules: bool) -> str:
    measured = spec.get("outcome") if isinstance(spec.get("outcome"), dict) else {}
    outcome = measured.get("name")
    signals = measured.get("signals") or []
    if measured.get("detectable") and signals:
        # Suggestive signals were not confirmed: more of the same data may confirm them.
        step = (
            f"no measured attribute's effect on the {measured.get('label') or 'outcome'} held "
            f"up, though {'; '.join(str(s) for s in signals[:3])} "
            f"{'was' if len(signals) == 1 else 'were'} suggestive (the uncertain rules); next, "
            "rerun the ICP blueprint (icp-research run) once the exports hold more closed deals "
            "(won and lost), which could confirm or rule them out, or add other attributes"
        )
        return step + _rules_only_step(rules)
    if measured.get("detectable") and not measured.get("too_little_data"):
        # The predictor analysis would have seen effects of these sizes: more of the same data
        # could find only smaller ones; other attributes might find larger.
        step = (
            f"no measured attribute predicts the {measured.get('label') or 'outcome'}, though "
            f"effects of {', '.join(str(d) for d in measured['detectable'][:3])} would likely "
            "have been detected, so more of the same data could find only smaller ones; next, add other "
            "attributes to the exports and rerun the ICP blueprint (icp-research run)"
        )
        return step + _rules_only_step(rules)
    more = {
        "won": "more closed deals (won and lost)",
        "retained": "more customers with 12 months of history (some churned)",
        "best_customer": "more customers",
    }.get(outcome or "", "more history")
    # Another outcome is another question, not a way round thin data: suggested only when
    # this one could not be measured at all.
    step = f"next, rerun the ICP blueprint (icp-research run) once the exports hold {more}" + (
        ""
        if outcome
        else ", or set [scoring] outcome in icp.toml to an outcome the data can measure"
    )
    return step + _rules_only_step(rules)


def _rules_only_step(rules: bool) -> str:
    if not rules:
        return ""
    return (
        "; to use the ICP's rules meanwhile, score with --rules-only (marks in_icp and "
        "rules_hit, no fit score)"
    )


# -- files -------------------------------------------------------------------------------------


def _lead_format(path: Path) -> str:
    suffixes = [s.lower() for s in path.suffixes]
    if suffixes[-2:-1] and suffixes[-1] == ".gz":
        suffixes = suffixes[:-1]
    fmt = _LEAD_FORMATS.get(suffixes[-1] if suffixes else "")
    if fmt is None:
        raise DataError(
            f"{path}: unsupported file type {path.suffix or '(none)'!r}; "
            "give a .csv, .parquet or .xlsx file"
        )
    return fmt


def _sniff_delimiter(first_line: str) -> str:
    counts = {d: first_line.count(d) for d in (",", ";", "\t", "|")}
    return max(counts, key=counts.get) if max(counts.values()) > 0 else ","


def _fallback_encoding(path: Path, sample: int = 8 << 20) -> str:
    """The encoding to read a non-UTF-8 lead file with: of cp1252, mac_roman and latin-1, the
    one whose text shows the fewest signs of a wrong decoding ("San JosŽ" is Mac-Roman read as
    cp1252), judged on the first ``sample`` bytes; a file in another script (a Japanese
    Shift-JIS export) with its own encoding."""
    from icp_research.data.encodings import rank_encodings, script_encoding

    with open(path, "rb") as handle:
        raw = handle.read(sample)
    script = script_encoding(raw)
    if script is not None:
        return script[0]
    ranked = rank_encodings(raw, ("cp1252", "mac_roman", "latin-1"))
    return ranked[0][0] if ranked else "cp1252"


def _read_csv_fast(path: Path, *, delimiter: str | None, encoding: str | None) -> pd.DataFrame:
    """Every column as text (pyarrow's multi-threaded reader), so no value is altered."""
    import csv

    import pyarrow as pa
    from pyarrow import csv as pacsv

    with open(path, "rb") as handle:
        head = handle.read(65536)
    if not head.strip():
        raise DataError(f"{path}: the file is empty; export the leads again with a header row")
    if b"\x00" in head and not head.startswith((b"\xff\xfe", b"\xfe\xff")):
        raise DataError(f"{path}: looks like a binary file, not CSV text; export it as CSV")
    encoding = encoding or (
        "utf-16" if head.startswith((b"\xff\xfe", b"\xfe\xff")) else "utf-8-sig"
    )
    try:
        text = head.decode(encoding, errors="strict" if len(head) < 65536 else "ignore")
    except UnicodeDecodeError:
        encoding = _fallback_encoding(path)
        text = head.decode(encoding, errors="replace")
    first_line = text.lstrip("\ufeff").split("\n", 1)[0]
    delimiter = delimiter or _sniff_delimiter(first_line)
    header = next(csv.reader([first_line.rstrip("\r")], delimiter=delimiter), [])
    names = [str(name).strip() or f"column_{i + 1}" for i, name in enumerate(header)]
    unique = []
    for name in names:
        candidate, k = name, 2
        while candidate in unique:
            candidate, k = f"{name}_{k}", k + 1
        unique.append(candidate)
    arrow_encoding = (
        "utf8" if encoding.replace("-", "").lower() in ("utf8sig", "utf8") else encoding
    )
    try:
        table = pacsv.read_csv(
            path,
            read_options=pacsv.ReadOptions(
                column_names=unique, skip_rows=1, encoding=arrow_encoding
            ),
            parse_options=pacsv.ParseOptions(delimiter=delimiter, newlines_in_values=True),
            convert_options=pacsv.ConvertOptions(
                column_types={name: pa.string() for name in unique},
                null_values=[""],
                strings_can_be_null=True,
                quoted_strings_can_be_null=True,
            ),
        )
    except pa.ArrowInvalid as error:
        message = str(error).strip().splitlines()[0]
        if "UTF8" in message.upper() and arrow_encoding == "utf8":
            return _read_csv_fast(path, delimiter=delimiter, encoding=_fallback_encoding(path))
        raise DataError(
            f"{path}: not a well-formed CSV ({message[:200]}); check the quoting and the "
            "delimiter on that row"
        ) from None
    return table.to_pandas()


def read_leads(path: str | Path, config=None, sheet: str | int | None = None) -> pd.DataFrame:
    """Read a lead or prospect list (CSV, Parquet or Excel) as it is, row for row.

    CSV columns are read as text (nothing is reformatted: the output carries the input's values
    verbatim); the scorecard parses numbers itself. With ``config`` (an icp.toml path or
    :class:`~icp_research.data.config.Config`) the file's columns are renamed to the canonical names
    of its ``[tables.accounts]`` mapping, its value recodes and missing-value markers are
    applied, and numbers with a decimal comma are read as the loader reads them. ``sheet`` (an
    Excel sheet's name or 0-based position) overrides the config's accounts ``sheet``: a lead
    list is often another view of the CRM, saved with another sheet name.

    Raises
    ------
    DataError
        When the file is missing, empty or unreadable (one line: the file, what, the fix).
    """
    path = Path(path)
    if not path.exists():
        raise DataError(f"{path}: file not found")
    if path.is_dir():
        raise DataError(f"{path} is a folder; give the leads file")
    if path.stat().st_size == 0:
        raise DataError(f"{path}: the file is empty (0 bytes)")
    table_config = _accounts_mapping(config)
    leads = _read_raw(path, table_config, sheet)
    if table_config is not None:
        leads = _apply_mapping(leads, table_config)
    return leads


def _read_raw(path: Path, table_config, sheet: str | int | None = None) -> pd.DataFrame:
    """The lead file as it is (its own column names and values), rows numbered from 0."""
    fmt = _lead_format(path)
    if fmt == "csv":
        leads = _read_csv_fast(
            path,
            delimiter=table_config.delimiter if table_config else None,
            encoding=table_config.encoding if table_config else None,
        )
    elif fmt == "parquet":
        try:
            leads = pd.read_parquet(path)
        except Exception as error:  # pyarrow raises several types for non-Parquet input
            raise DataError(
                f"{path}: cannot be read as Parquet ({type(error).__name__}: "
                f"{str(error).splitlines()[0][:150]})"
            ) from None
    else:
        given = sheet is not None
        if not given:
            sheet = table_config.sheet if table_config and table_config.sheet is not None else 0
        try:
            workbook = pd.ExcelFile(path)
            if isinstance(sheet, str) and sheet not in workbook.sheet_names:
                where = (
                    "pass --sheet with one of them"
                    if given
                    else "pass --sheet with one of them (or fix sheet = under [tables.accounts] "
                    "in the --config file)"
                )
                raise DataError(
                    f"{path}: has no sheet {sheet!r} (it has {', '.join(workbook.sheet_names)}); "
                    + where
                )
            # Only empty cells are missing: "None" (no CRM) and "NA" (North America) are values.
            leads = workbook.parse(sheet, dtype=object, keep_default_na=False, na_values=[""])
        except DataError:
            raise
        except Exception as error:
            raise DataError(
                f"{path}: cannot be read as Excel ({type(error).__name__}: "
                f"{str(error).splitlines()[0][:150] if str(error) else ''}); save it again as .xlsx"
            ) from None
        leads.columns = [str(c) for c in leads.columns]
        if leads.empty and len(workbook.sheet_names) > 1:
            others = [s for s in workbook.sheet_names if s != workbook.sheet_names[0]]
            raise DataError(
                f"{path}: sheet {workbook.sheet_names[0] if sheet == 0 else sheet!r} has no "
                f"rows; the leads may be on another sheet ({', '.join(others)}): pass --sheet "
                '"<name>"'
            )
    return leads.reset_index(drop=True)


def _accounts_mapping(config):
    if config in (None, ""):
        return None
    from icp_research.data.config import Config, load_config

    cfg = config if isinstance(config, Config) else load_config(config)
    table = cfg.tables.get("accounts")
    if table is None:
        raise ConfigError(f"{cfg.label}: has no [tables.accounts] mapping to apply to the leads")
    return table


def _apply_mapping(leads: pd.DataFrame, table_config) -> pd.DataFrame:
    """Rename source columns to canonical names and apply value recodes and missing markers."""
    from icp_research.data.cleaning import norm_name, parse_numbers

    by_norm: dict[str, str] = {}
    for column in leads.columns:
        by_norm.setdefault(norm_name(column), column)
    renames = {}
    for canonical, source in table_config.columns.items():
        if canonical == "account_id" and canonical in leads.columns:
            continue
        actual = source if source in leads.columns else by_norm.get(norm_name(source))
        if actual is not None and actual not in renames and canonical not in leads.columns:
            renames[actual] = canonical
    out = leads.rename(columns=renames)
    missing = set(table_config.missing_values)
    for column in out.columns:
        series = out[column]
        if missing and (series.dtype == object or pd.api.types.is_string_dtype(series)):
            out[column] = series.mask(series.astype("string").str.strip().isin(missing))
    for canonical, recode in table_config.values.items():
        if canonical in out.columns:
            series = out[canonical]
            if series.dtype == object or pd.api.types.is_string_dtype(series):
                stripped = series.astype("string").str.strip()
                out[canonical] = series.where(~stripped.isin(set(recode)), stripped.map(recode))
    if table_config.decimal != ".":
        for column in out.columns:
            series = out[column]
            if series.dtype == object or pd.api.types.is_string_dtype(series):
                values, bad = parse_numbers(series, table_config.decimal, missing)
                present = series.notna()
                # Only columns that read as numbers (text columns are left alone).
                if present.any() and not bad.any():
                    out[column] = values
    return out


def csv_style(path: str | Path, table_config=None) -> dict:
    """How a CSV lead file is written (``delimiter``, ``bom``, ``decimal``), so that the scored
    file opens in the spreadsheet the leads came from: a German Excel file is ';'-separated,
    starts with a byte-order mark and writes 0,46. Other files: the defaults."""
    path = Path(path)
    style = {"delimiter": ",", "bom": False, "decimal": "."}
    if path.suffix.lower() != ".csv" or not path.is_file():
        return style
    with path.open("rb") as handle:
        head = handle.read(65536)
    try:
        head[: head.rfind(b"\n") + 1 or len(head)].decode("utf-8")
        utf8 = True
    except UnicodeDecodeError:
        utf8 = False
    # The scored file is UTF-8: a byte-order mark lets Excel read it so when the leads were
    # saved with one, or in another encoding (Windows-1252, Shift-JIS) that Excel assumes.
    style["bom"] = head.startswith(b"\xef\xbb\xbf") or not utf8
    declared = getattr(table_config, "delimiter", None)
    first = head.decode("utf-8", errors="ignore").lstrip("\ufeff").splitlines()[:1]
    style["delimiter"] = declared or (_sniff_delimiter(first[0]) if first else ",")
    decimal = getattr(table_config, "decimal", ".") or "."
    if decimal == "," or style["delimiter"] == ";":
        # A ';'-separated file is a decimal-comma spreadsheet's.
        style["decimal"] = "," if style["delimiter"] != "," else "."
    return style


def write_scored(frame: pd.DataFrame, path: str | Path, **style) -> Path:
    """Write a scored lead list atomically: CSV (spreadsheet-safe), Parquet or Excel (.xlsx),
    by suffix. ``style``: the CSV's ``delimiter``, ``bom`` and ``decimal`` (see
    :func:`csv_style`)."""
    from icp_research.artifacts import write_csv

    path = Path(path)
    fmt = _OUTPUT_FORMATS.get(path.suffix.lower())
    if fmt is None:
        raise DataError(
            f"{path}: unsupported output type {path.suffix or '(none)'!r}; "
            "write .csv, .xlsx or .parquet"
        )
    if fmt == "csv":
        return write_csv(frame, path, engine="pyarrow", **style)
    if fmt == "xlsx":
        _fits_excel(path, len(frame))
    import os
    import tempfile

    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(prefix=f".{path.name}.", dir=path.parent)
    os.close(fd)
    try:
        if fmt == "xlsx":
            _write_xlsx(frame, tmp)
        else:
            frame.to_parquet(tmp, index=False)
        os.chmod(tmp, 0o644)
        os.replace(tmp, path)
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise
    return path


def _fits_excel(path: Path, rows: int) -> None:
    """Refuse a scored file of more rows than an Excel sheet holds (header included)."""
    if rows + 1 > EXCEL_MAX_ROWS:
        raise DataError(
            f"{path}: {rows:,} leads do not fit in an Excel sheet "
            f"({EXCEL_MAX_ROWS - 1:,} rows at most); write .csv or .parquet"
        )


def _excel_column(series: pd.Series, text_cell: Callable) -> list:
    """A column as the values openpyxl writes: numbers, booleans and dates as themselves,
    missing values as empty cells, anything else as its text (through ``text_cell`` where the
    text would not be written as it is)."""
    from openpyxl.cell.cell import ILLEGAL_CHARACTERS_RE

    if pd.api.types.is_bool_dtype(series) and not series.isna().any():
        return series.astype(bool).tolist()
    if pd.api.types.is_numeric_dtype(series) and not pd.api.types.is_bool_dtype(series):
        values = series.astype("float64") if series.isna().any() else series
        return [None if v != v else v for v in values.tolist()]
    if pd.api.types.is_datetime64_any_dtype(series):
        if getattr(series.dt, "tz", None) is not None:
            series = series.dt.tz_convert("UTC").dt.tz_localize(None)
        return [None if pd.isna(v) else v.to_pydatetime() for v in series]
    values = series.astype(object).where(series.notna(), None).tolist()
    out = []
    for value in values:
        if value is None or isinstance(value, (bool, int, float)):
            out.append(None if isinstance(value, float) and value != value else value)
            continue
        if not isinstance(value, str):
            value = str(value)
        if value.startswith("=") or ILLEGAL_CHARACTERS_RE.search(value) or len(value) > 32767:
            out.append(text_cell(value))
        else:
            out.append(value)
    return out


def _write_xlsx(frame: pd.DataFrame, path) -> None:
    """One sheet, "Scored leads", with the header row frozen and filtered. Text is written as
    text: a cell such as ``=HYPERLINK(...)`` is never a formula (openpyxl would store text
    starting with ``=`` as one); control characters Excel refuses are removed, and text is cut
    at Excel's 32,767 characters."""
    from openpyxl import Workbook
    from openpyxl.cell import WriteOnlyCell
    from openpyxl.cell.cell import ILLEGAL_CHARACTERS_RE
    from openpyxl.utils import get_column_letter

    book = Workbook(write_only=True)
    sheet = book.create_sheet("Scored leads")
    sheet.freeze_panes = "A2"
    if len(frame.columns):
        sheet.auto_filter.ref = f"A1:{get_column_letter(len(frame.columns))}{len(frame) + 1}"

    def text_cell(value: str):
        written = WriteOnlyCell(sheet, value=None)
        written.value = ILLEGAL_CHARACTERS_RE.sub("", value)[:32767]
        written.data_type = "s"  # text, even when it starts with "="
        return written

    sheet.append(_excel_column(pd.Series([str(c) for c in frame.columns]), text_cell))
    columns = [_excel_column(frame.iloc[:, i], text_cell) for i in range(frame.shape[1])]
    for row in zip(*columns, strict=True):
        sheet.append(row)
    book.save(path)


def score_file(
    *,
    icp: str | Path,
    input: str | Path,  # noqa: A002  (the command-line name)
    output: str | Path,
    config: str | Path | None = None,
    force: bool = False,
    rules_only: bool = False,
    notes: list | None = None,
    sheet: str | int | None = None,
) -> str:
    """What ``icp-research score`` does: read leads, score every row, write the scored file.

    ``rules_only`` marks leads by the ICP's rules without a fit score (see :func:`score_leads`).
    When a list is given as ``notes``, one-line notes are appended to it (why
    ``win_probability`` is empty); the command prints them on stderr.

    Every input row comes back, in the same order, with its columns unchanged (their own names
    and values, also with ``config``) and
    :data:`SCORE_COLUMNS` appended (an input column with one of those names is kept as
    ``<name>_input``). Nothing is overwritten without ``force``; the output appears atomically.

    Returns
    -------
    str
        A one-paragraph summary: rows scored, share per tier and in the ICP, flagged rows,
        columns the ICP needs that the file lacks, seconds.

    Raises
    ------
    InputError
        Bad arguments, an unreadable icp.json or leads file, or an existing output (exit 2).
    """
    import time

    started = time.perf_counter()
    input_path, output_path = Path(input), Path(output)
    if output_path.suffix.lower() not in _OUTPUT_FORMATS:
        raise DataError(
            f"{output_path}: unsupported output type {output_path.suffix or '(none)'!r}; "
            "write .csv, .xlsx or .parquet"
        )
    if output_path.exists() and output_path.resolve() == input_path.resolve():
        raise DataError(f"{output_path}: the output would replace the input; choose another name")
    if output_path.exists() and not force:
        raise DataError(f"{output_path} already exists; pass --force to replace it")
    if output_path.is_dir():
        raise DataError(f"{output_path} is a folder; give a file name for the output")
    spec = read_icp(icp)
    if not rules_only:
        require_scorecard(spec)  # before reading a large lead file
    leads = read_leads(input_path, config, sheet)
    if _OUTPUT_FORMATS[output_path.suffix.lower()] == "xlsx":
        _fits_excel(output_path, len(leads))  # before scoring, not after
    needed, absent = read_columns(spec, leads, rules_only)
    if needed and len(absent) == len(needed):
        # Every lead would come back at the same neutral score: nothing was read.
        headers = "; ".join(
            f'{n}, exported as "{spec["attributes"][n]["source"]}"'
            if isinstance((spec.get("attributes") or {}).get(n), dict)
            and spec["attributes"][n].get("source")
            else n
            for n in needed
        )
        mapping = "; ".join(f'{n} = "<its column>"' for n in needed[:3])
        fix = (
            f"map them under [tables.accounts.columns] of {Path(config).name} ({mapping}), or "
            "rename the file's columns to those names"
            if config is not None
            else "rename the file's columns to those names, or pass --config with a config "
            f"written for this lead file, whose [tables.accounts.columns] maps them ({mapping}); "
            "the project's icp.toml reads a lead list only when it has the CRM export's column "
            "names"
        )
        raise DataError(
            f"{input_path}: none of the columns the ICP reads is in the file ({headers}); "
            f"fix: {fix}"
        )
    scored = score_leads(spec, leads, rules_only=rules_only)
    _flag_non_leads(scored, leads)
    table_config = _accounts_mapping(config)
    # The rows come back as they came in: the file's own column names and values (the
    # config's mapping and recodes are only how the scorer reads them).
    raw = leads if config is None else _read_raw(input_path, table_config, sheet)
    out = raw.rename(columns={c: f"{c}_input" for c in raw.columns if c in SCORE_COLUMNS})
    out = pd.concat([out, scored], axis=1)
    out["tier"] = out["tier"].astype(str)
    # A probability to four decimals ("0,4861", not "0,4861111111111126"): a calibration
    # estimated on a few hundred outcomes is not known any closer.
    out["win_probability"] = out["win_probability"].round(4)
    # The scored file in the lead file's own CSV shape (';', a byte-order mark, 0,46).
    write_scored(out, output_path, **csv_style(input_path, table_config))
    note = None if rules_only else win_probability_note(spec)
    if note and notes is not None:
        notes.append(note)
    return _score_summary(
        spec, absent, scored, input_path, output_path, time.perf_counter() - started
    )


def _flag_non_leads(scored: pd.DataFrame, leads: pd.DataFrame) -> None:
    """Flag the rows of a lead file that are no lead (kept, as every row is): a blank row, and
    a totals row a spreadsheet appends ("Total", "Grand Totals (30 records)")."""
    from icp_research.data.loading import _NOTICE_WORDING, _TOTALS_WORDING

    if not len(leads) or not len(leads.columns):
        return
    text = leads.astype("string").apply(lambda column: column.str.strip())
    blank = text.isna() | text.eq("")
    empty = blank.all(axis=1).to_numpy(dtype=bool)
    first = text.bfill(axis=1).iloc[:, 0]  # each row's first filled cell
    totals = (
        first.str.fullmatch(_TOTALS_WORDING.pattern, case=False).fillna(False)
        | first.str.contains(_NOTICE_WORDING.pattern, case=False).fillna(False)
    ).to_numpy(dtype=bool) & ~empty
    for mask, why in ((empty, "blank row: no lead"), (totals, "a totals row, not a lead")):
        if mask.any():
            flags = scored["flags"].to_numpy(dtype=object)
            flags[mask] = [f"{why}; {f}" if f else why for f in flags[mask]]
            scored["flags"] = flags


_UNSEEN = re.compile(r"^(.+?) '(.*)' unseen in training")


def _unseen_summary(scored: pd.DataFrame, spec: dict) -> str:
    """Attributes whose values in the lead file mostly match no level the score knows (an
    Apollo "hospital & health care" for a CRM's "Healthcare"): each such lead is scored neutral,
    so the tiers say little; named with the values and the recode that fixes them."""
    # One flag per "; " (an attribute's name may hold spaces or a colon: "categories: B2B").
    parts = scored["flags"].astype(str).str.split("; ").explode()
    found = parts.str.extract(_UNSEEN.pattern).dropna()
    pairs = list(found.itertuples(index=False, name=None))
    if not pairs:
        return ""
    unseen = pd.DataFrame(pairs, columns=["attribute", "value"])
    card = {a.get("name"): a for a in (spec.get("scorecard") or {}).get("attributes", [])}
    parts = []
    for name, group in unseen.groupby("attribute", sort=False):
        share = len(group) / max(len(scored), 1)
        if share < UNSEEN_SHARE:
            continue
        counts = group["value"].value_counts()
        examples = ", ".join(f'"{v}" {n:,}' for v, n in counts.head(3).items())
        levels = [str(r.get("label")) for r in (card.get(name) or {}).get("levels", []) or []] or [
            str(label) for label in (card.get(name) or {}).get("labels", [])
        ]
        known = ", ".join(f'"{v}"' for v in levels[:4] if v != OTHER)
        recode = f'[tables.accounts.values.{name}] "{counts.index[0]}" = "<the level it is>"'
        parts.append(
            f"{name}: {len(group):,} of {len(scored):,} leads have a value the score does not "
            f"know ({examples}){f'; it knows {known}' if known else ''}: they score neutral, so "
            f"their tier says little; recode them in a config for this lead file ({recode}) "
            "and pass it with --config"
        )
    return " Warning: " + " ".join(p + "." for p in parts) if parts else ""


#: The tier of a lead on which the score knows nothing (every attribute it reads is blank,
#: unseen or unreadable), instead of the tier its neutral score would fall in.
UNKNOWN_TIER = "Unknown"

#: Share of a lead file's rows with an unseen value of one attribute from which ``score`` says so
#: in its summary.
UNSEEN_SHARE = 0.2


def _score_summary(spec, absent, scored, input_path, output_path, seconds) -> str:
    n = len(scored)
    parts = [f"Scored {n:,} rows of {input_path.name} in {seconds:.1f}s"]
    if n and scored["fit_score"].notna().any():
        tiers = scored["tier"].value_counts(sort=False)
        parts.append(", ".join(f"{name} {count / n:.0%}" for name, count in tiers.items()))
    elif n:
        parts.append("rules only, no fit score")
    if n:
        parts.append(f"in the ICP {scored['in_icp'].mean():.0%}")
        flagged = (scored["flags"] != "").mean()
        parts.append(f"{flagged:.0%} flagged")
    text = "; ".join(parts) + f". Wrote {output_path}."
    text += _unseen_summary(scored, spec)
    attributes = spec.get("attributes") or {}
    raw = {}
    for name in absent:
        item = (attributes.get(name) or {}).get("multi_select")
        if item:
            raw.setdefault(item.get("source") or item.get("column"), []).append(name)
    absent = [name for name in absent if not (attributes.get(name) or {}).get("multi_select")]
    for source, names in raw.items():
        text_names = ", ".join(names)
        absent.append(f"{source} (read for {text_names})")
    if absent:
        text += (
            f" The file has no {', '.join(absent)} column(s): scored neutral and rules on them "
            "not applied (map them with --config, or rename the columns)."
        )
    return text
