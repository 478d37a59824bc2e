"""Property-based tests of the loaders on generated messy exports (hypothesis)."""

from __future__ import annotations

import csv
import io
import math
import re
from datetime import date, timedelta

import pandas as pd
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from icp_research.data import loading, validation
from icp_research.errors import InputError

from .conftest import write_project

SETTINGS = settings(
    max_examples=40, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture]
)


def _spelling(label) -> str:
    """What the loader compares labels by when it merges spellings of one value."""
    return re.sub(r"[\W_]+", "", str(label).casefold())


money = st.decimals(min_value=0, max_value=10**9, places=2, allow_nan=False, allow_infinity=False)


def _money_text(value, style: int) -> str:
    v = float(value)
    if style == 0:
        return f"${v:,.2f}"
    if style == 1:
        return f"{v:,.2f}"
    if style == 2:
        return f"{v:.2f}"
    if style == 3:
        return f" {v:,.2f} USD "
    return f"{v:,.0f}" if v.is_integer() else f"{v:.2f}"


# Text that a CRM could put in a category column: any printable text, including commas, quotes,
# semicolons, non-Latin scripts and emoji; leading/trailing blanks are stripped by design.
label = (
    st.text(
        alphabet=st.characters(blacklist_categories=("Cs", "Cc"), blacklist_characters="\ufeff"),
        min_size=1,
        max_size=30,
    )
    .map(str.strip)
    .filter(
        lambda s: (
            s and s not in ("NULL", "null", "Null", "N/A", "n/a", "#N/A", "#NULL!", "NaN", "nan")
        )
    )
)


@SETTINGS
@given(
    rows=st.lists(
        st.tuples(
            money,
            st.integers(0, 4),
            label,
            st.booleans(),
            st.integers(0, 3650),
            st.sampled_from(["Yes", "No", "TRUE", "FALSE", "y", "n"]),
        ),
        min_size=1,
        max_size=25,
    ),
    date_format=st.sampled_from(["%Y-%m-%d", "%d/%m/%Y", "%m/%d/%Y", "%d.%m.%Y"]),
)
def test_messy_values_round_trip(tmp_path_factory, rows, date_format):
    base = date(2015, 1, 1)
    buffer = io.StringIO()
    writer = csv.writer(buffer)
    writer.writerow(["Account ID", "Revenue", "Segment", "Created", "Active"])
    for i, (value, style, text, blank, days, flag) in enumerate(rows):
        writer.writerow(
            [
                f"A{i}",
                "" if blank else _money_text(value, style),
                text,
                (base + timedelta(days=days)).strftime(date_format),
                flag,
            ]
        )
    directory = tmp_path_factory.mktemp("messy")
    config = write_project(
        directory,
        {"accounts.csv": "\ufeff" + buffer.getvalue()},
        f'[tables.accounts]\npath = "accounts.csv"\ndate_format = "{date_format}"\n'
        '[tables.accounts.columns]\naccount_id = "Account ID"\nannual_revenue = "Revenue"\nsegment = "Segment"\ncreated_at = "Created"\n'
        '[attributes]\ncategorical = ["segment", "active"]\nnumeric = ["annual_revenue"]\n',
    )
    accounts = loading.load_tables(config).tables["accounts"]
    assert len(accounts) == len(rows)
    for i, (value, _style, text, blank, days, _flag) in enumerate(rows):
        got = accounts.loc[i]
        if blank:
            assert math.isnan(got["annual_revenue"])
        else:
            assert math.isclose(got["annual_revenue"], float(value), rel_tol=1e-12, abs_tol=0.005)
        # Labels that differ only in case, spaces or punctuation are one value, written in
        # the most common spelling ("ķ" and "Ķ"); any other label comes back as it was.
        assert got["segment"] == text or _spelling(got["segment"]) == _spelling(text) != ""
        assert got["created_at"] == pd.Timestamp(base + timedelta(days=days))


@SETTINGS
@given(payload=st.binary(min_size=1, max_size=400))
def test_arbitrary_bytes_never_crash_the_loader(tmp_path_factory, payload):
    directory = tmp_path_factory.mktemp("bytes")
    config = write_project(
        directory, {"accounts.csv": payload}, '[tables.accounts]\npath = "accounts.csv"\n'
    )
    try:
        dataset = loading.load_tables(config)
    except InputError as exc:
        assert exc.problems and all(isinstance(p, str) and "\n" not in p for p in exc.problems)
    else:
        assert "account_id" in dataset.tables["accounts"].columns
    assert (directory / "accounts.csv").read_bytes() == payload


@SETTINGS
@given(
    ids=st.lists(st.text(alphabet="AB12", min_size=1, max_size=2), min_size=2, max_size=12),
)
def test_duplicate_ids_are_always_reported_with_their_rows(tmp_path_factory, ids):
    directory = tmp_path_factory.mktemp("ids")
    body = "account_id\n" + "\n".join(ids) + "\n"
    config = write_project(
        directory, {"accounts.csv": body}, '[tables.accounts]\npath = "accounts.csv"\n'
    )
    report = validation.validate(config)
    duplicated = len(ids) != len(set(ids))
    assert any("more than once" in p.message for p in report.errors) == duplicated
