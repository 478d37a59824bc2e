"""Multi-select columns: several values in one cell.

HubSpot's multiple-checkbox properties and Salesforce's multi-select picklists export as
``Slack;Jira;Notion``; enrichment exports (Apollo, Clearbit, ZoomInfo) list a company's
technologies as ``Salesforce, HubSpot, Snowflake``. Read as one label per cell, such a column
has a level for every combination, and no single item ("uses Snowflake") can be tested. Here
each item becomes a yes/no attribute of its own, named ``technologies: Snowflake``: yes when
the cell lists it, no when the cell lists other items only, unknown when the cell is blank.

The loader expands the accounts' columns with :func:`expand`; ``icp-research score`` expands a
lead's cell with the same :func:`item_flags`, from what ``icp.json`` records (the column, the
separator and the item), so a lead is read exactly as the training rows were.
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field

import pandas as pd

#: Separators tried, in order of preference: a ``;`` or ``|`` list wins over ``,`` (an item
#: may hold a comma, "Sales, Marketing", more often than a semicolon).
SEPARATORS = (";", "|", ",")
#: A filled cell of a multi-select lists 2+ items this often at least.
MIN_MULTI_SHARE = 0.5
#: Items repeat: those listed by 2+ accounts hold this share of the items listed at least.
MIN_REPEATED_SHARE = 0.8
#: Items are not fixed positions ("Berlin, Germany"): of the items listed by 2+ accounts, this
#: share at least appears both first in a cell and later in another.
MIN_MOVING_SHARE = 0.3
#: An item listed in this share of the filled cells at least is left out of the position check.
EVERYWHERE_SHARE = 0.9
#: Few cells are too few to tell.
MIN_CELLS = 20
_NUMBER_LIKE = re.compile(r"^[\s$€£¥+-]*\(?\d[\d.,\s]*\)?\s*[%kKmMbB]?$")


def split_cell(text, separator: str) -> list[str]:
    """The items of one cell: split on ``separator``, stripped, blanks and repeats left out
    (case aside); ``[]`` for a blank cell."""
    if text is None or text is pd.NA or (isinstance(text, float) and text != text):
        return []
    items, seen = [], set()
    for part in str(text).split(separator):
        part = part.strip()
        if part and part.casefold() not in seen:
            seen.add(part.casefold())
            items.append(part)
    return items


def _distinct_lists(series: pd.Series, separator: str) -> tuple[list[list[str]], pd.Series]:
    """Items of each distinct filled cell and how many rows hold each distinct cell."""
    text = series.dropna().astype(str).str.strip()
    counts = text[text != ""].value_counts(sort=False)
    return [split_cell(v, separator) for v in counts.index], counts


def separator_of(series: pd.Series) -> str | None:
    """The separator of a multi-select column, or None when ``series`` is not one.

    A multi-select: most filled cells (``MIN_MULTI_SHARE``) list two or more items, the items
    repeat across accounts (``MIN_REPEATED_SHARE`` of the items listed are listed by two or more),
    they move about (an item first in one cell is later in another: "City, Country" has fixed
    places), and they are not numbers ("1,200", "$1,200.50"). Free text, numbers with thousands
    separators, money and single values are not multi-selects.
    """
    if pd.api.types.is_numeric_dtype(series) or pd.api.types.is_bool_dtype(series):
        return None
    if pd.api.types.is_datetime64_any_dtype(series):
        return None
    # A glance first: where hardly any of the first filled cells holds a separator (names,
    # domains, industries), there is no list to split, whatever the rest holds.
    glance = series.dropna().iloc[:500].astype(str)
    if not len(glance):
        return None
    has_separator = glance.str.contains("[;|,]", regex=True)
    if has_separator.mean() < MIN_MULTI_SHARE / 2:
        return None
    best, best_share = None, 0.0
    for separator in SEPARATORS:
        lists, counts = _distinct_lists(series, separator)
        cells = int(counts.sum())
        if cells < MIN_CELLS:
            return None
        weights = counts.to_numpy()
        multi = sum(w for items, w in zip(lists, weights, strict=True) if len(items) >= 2)
        share = multi / cells
        if share < MIN_MULTI_SHARE or share <= best_share:
            continue
        listed: dict[str, int] = {}
        for items, w in zip(lists, weights, strict=True):
            for item in items:
                key = item.casefold()
                listed[key] = listed.get(key, 0) + int(w)
        # An item nearly every cell lists ("B2B" before the rest, in an export that writes a
        # multi-select's options in one fixed order) says nothing about positions: the others
        # move about once it is set aside ("B2B, Fintech" and "B2B, SaaS, Fintech").
        everywhere = {k for k, n in listed.items() if n >= EVERYWHERE_SHARE * cells}
        first: set[str] = set()
        later: set[str] = set()
        for items in lists:
            rest = [item.casefold() for item in items if item.casefold() not in everywhere]
            for i, key in enumerate(rest):
                (first if i == 0 else later).add(key)
        total = sum(listed.values())
        numbers = sum(n for k, n in listed.items() if _NUMBER_LIKE.match(k))
        if numbers > 0.1 * total:
            continue
        repeated = {k: n for k, n in listed.items() if n >= 2}
        if sum(repeated.values()) < MIN_REPEATED_SHARE * total:
            continue
        moving = sum(1 for k in repeated if k in first and k in later)
        if moving < MIN_MOVING_SHARE * len(set(repeated) - everywhere):
            continue
        best, best_share = separator, share
        if separator != ",":
            break  # ; or | that fits is taken before a comma
    return best


def item_counts(series: pd.Series, separator: str) -> dict[str, int]:
    """Accounts listing each item, most first; an item is spelled as most cells spell it."""
    lists, counts = _distinct_lists(series, separator)
    listed: dict[str, int] = {}
    spellings: dict[str, dict[str, int]] = {}
    for items, w in zip(lists, counts.to_numpy(), strict=True):
        for item in items:
            key = item.casefold()
            listed[key] = listed.get(key, 0) + int(w)
            spelled = spellings.setdefault(key, {})
            spelled[item] = spelled.get(item, 0) + int(w)
    named = {max(spellings[k], key=lambda s: (spellings[k][s], s)): n for k, n in listed.items()}
    return dict(sorted(named.items(), key=lambda kv: (-kv[1], kv[0].casefold())))


def _cell_sets(series: pd.Series, separator: str) -> tuple:
    """Per row, the code of its distinct cell; per distinct cell, its items (case aside), or
    None when it is blank. Each distinct cell is split once."""
    codes, uniques = pd.factorize(series.astype(object), use_na_sentinel=True)
    sets = [{i.casefold() for i in split_cell(cell, separator)} or None for cell in uniques]
    sets.append(None)  # the blank sentinel (-1)
    return codes, sets


def _flags(codes, sets, item: str, index) -> pd.Series:
    key = item.casefold()
    table = pd.array([pd.NA if s is None else key in s for s in sets], dtype="boolean")
    return pd.Series(table[codes], index=index)


def item_flags(series: pd.Series, separator: str, item: str) -> pd.Series:
    """Yes / no / unknown per row: the cell lists ``item`` (case aside), lists other items
    only, or is blank. A nullable boolean Series on ``series``' index."""
    codes, sets = _cell_sets(series, separator)
    return _flags(codes, sets, item, series.index)


def attribute_name(column: str, item: str) -> str:
    """How an item's yes/no attribute is named: ``technologies: Snowflake``."""
    return f"{column}: {item}"


@dataclass
class MultiSelect:
    """One multi-select column as the loader read it."""

    column: str  # the accounts column (its canonical or snake name)
    source: str  # the export's header
    separator: str
    items: dict[str, int] = field(default_factory=dict)  # expanded item -> accounts listing it
    rare: dict[str, int] = field(default_factory=dict)  # items on too few accounts
    detected: bool = True  # False when [attributes] multi_select named it

    def attributes(self) -> dict[str, str]:
        """Expanded attribute name -> item."""
        return {attribute_name(self.column, item): item for item in self.items}

    def to_dict(self) -> dict:
        return {
            "column": self.column,
            "source": self.source,
            "separator": self.separator,
            "items": self.items,
            "rare": self.rare,
            "detected": self.detected,
        }

    @classmethod
    def from_dict(cls, data: dict) -> MultiSelect:
        return cls(
            data["column"],
            data.get("source", data["column"]),
            data["separator"],
            dict(data.get("items", {})),
            dict(data.get("rare", {})),
            bool(data.get("detected", True)),
        )


def expand(series: pd.Series, selection: MultiSelect) -> dict[str, pd.Series]:
    """The yes/no attribute of each expanded item: name -> nullable boolean Series (as
    :func:`item_flags` reads it)."""
    codes, sets = _cell_sets(series, selection.separator)
    return {
        name: _flags(codes, sets, item, series.index)
        for name, item in selection.attributes().items()
    }


def shown(separator: str) -> str:
    """A separator as a message quotes it: ``","`` and ``";"``."""
    return f'"{separator}"'
