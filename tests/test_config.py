"""Config parsing: defaults, quarters, and mistakes reported with the fix."""

from __future__ import annotations

import datetime as dt

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from icp_research.data.config import (
    ANALYSIS_DEFAULTS,
    TABLE_KEYS,
    config_from_dict,
    last_quarter,
    quarter_end,
    quarter_label,
    quarter_start,
    resolve_quarter,
)
from icp_research.errors import ConfigError

MINIMAL = {"tables": {"accounts": {"path": "a.csv"}}}


def test_defaults_fill_what_the_file_leaves_out():
    cfg = config_from_dict(MINIMAL)
    assert cfg.analysis == ANALYSIS_DEFAULTS
    assert cfg.tables["accounts"].format == "csv"
    assert cfg.scoring["tiers"] == {"Tier 1": 70, "Tier 2": 40, "Tier 3": 0}
    assert cfg.categorical is None and cfg.numeric is None


@pytest.mark.parametrize(
    "quarter, end",
    [
        ("2026Q3", "2026-09-30"),
        ("2026q1", "2026-03-31"),
        ("2024-Q4", "2024-12-31"),
        ("2024Q2", "2024-06-30"),
    ],
)
def test_quarter_end(quarter, end):
    assert quarter_end(quarter).isoformat() == end


def test_last_quarter_is_the_latest_that_has_ended():
    assert last_quarter(dt.date(2026, 11, 23)) == "2026Q3"
    assert last_quarter(dt.date(2026, 10, 1)) == "2026Q3"
    assert last_quarter(dt.date(2026, 1, 15)) == "2025Q4"
    assert resolve_quarter("previous", dt.date(2026, 4, 2)) == "2026Q1"
    assert quarter_label(dt.date(2026, 8, 14)) == "2026Q3"
    assert quarter_start("2026Q3") == dt.date(2026, 7, 1)


@pytest.mark.parametrize("bad", ["2026Q5", "Q3", "2026-09-30", "../2026Q1", ""])
def test_bad_quarters_say_how_to_write_one(bad):
    with pytest.raises(ConfigError, match="write it like 2026Q3"):
        quarter_end(bad)


@pytest.mark.parametrize(
    "raw, message",
    [
        ({**MINIMAL, "analysys": {}}, "unknown section [analysys]; did you mean 'analysis'?"),
        # A key pasted above every header was read as "unknown section [path]".
        (
            {**MINIMAL, "path": "Firmen.csv"},
            "path = ... stands above every [section] (a table's key: it belongs under its "
            "[tables.<name>] header)",
        ),
        ({"tables": {"acounts": {"path": "a.csv"}}}, "did you mean 'accounts'?"),
        ({"tables": {"accounts": {"paht": "a.csv"}}}, "unknown key 'paht'; did you mean 'path'?"),
        ({"tables": {"accounts": {"path": "a.xyz"}}}, 'add format = "csv"'),
        ({**MINIMAL, "analysis": {"alpha": 5}}, "alpha = 5 must be between 0 and 0.5"),
        ({**MINIMAL, "analysis": {"correction": "magic"}}, "use fdr_bh"),
        (
            {**MINIMAL, "segments": {"employees": [10], "labels": ["a"]}},
            "one more label than employee bounds",
        ),
        ({**MINIMAL, "scoring": {"outcome": "revenue"}}, "use won, retained or best_customer"),
        (
            {
                "tables": {
                    "accounts": {"path": "a.csv"},
                    "opportunities": {"path": "o.csv", "values": {"stage": {"Won": "victory"}}},
                }
            },
            "stages map to won, lost or open",
        ),
        (
            {"tables": {"opportunities": {"path": "o.csv", "columns": {"stag": "Stage"}}}},
            "did you mean 'stage'?",
        ),
        ({"project": {"as_of": "30/09/2026"}, **MINIMAL}, "write it as YYYY-MM-DD"),
        (
            {"tables": {"accounts": {"path": "a.csv", "lost_when": {"Active": "False"}}}},
            "lost_when is for [tables.opportunities]",
        ),
        (
            {
                **MINIMAL,
                "tables": {
                    **MINIMAL["tables"],
                    "opportunities": {"path": "o.csv", "lost_when": "Active"},
                },
            },
            'e.g. lost_when = { "Active" = "False" }',
        ),
    ],
)
def test_mistakes_name_the_fix(raw, message):
    with pytest.raises(ConfigError) as info:
        config_from_dict(raw)
    assert any(message in line for line in info.value.problems), info.value.problems


# Any value of any TOML type in any known place: a ConfigError (one line per problem) or a
# config, never another exception (a str where a list belongs once iterated its letters).
_SCALARS = st.one_of(
    st.text(max_size=8),
    st.integers(-5, 5000),
    st.floats(allow_nan=False, allow_infinity=False, width=32),
    st.booleans(),
    st.dates(),
)
_VALUES = st.recursive(
    _SCALARS,
    lambda children: (
        st.lists(children, max_size=3)
        | st.dictionaries(st.text("abcxyz_", min_size=1, max_size=6), children, max_size=3)
    ),
    max_leaves=6,
)
_TABLE_KEYS = sorted(TABLE_KEYS)


@settings(max_examples=150, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(
    section=st.sampled_from(["project", "attributes", "analysis", "segments", "scoring"]),
    key=st.sampled_from(
        ["name", "as_of", "reports_dir", "categorical", "numeric", "exclude", "alpha",
         "min_support", "max_depth", "seed", "referral_values", "employees", "labels", "tiers",
         "outcome", "best_customer_top_share", "holdout_quarters"]
    ),
    table_key=st.sampled_from(_TABLE_KEYS),
    value=_VALUES,
    table_value=_VALUES,
)  # fmt: skip
def test_any_value_anywhere_gives_a_config_or_a_config_error(
    section, key, table_key, value, table_value
):
    accounts = {"path": "a.csv", table_key: table_value}
    if table_key == "path":
        accounts["path"] = table_value
    raw = {"tables": {"accounts": accounts}, section: {key: value}}
    try:
        config_from_dict(raw)
    except ConfigError as exc:
        assert exc.problems and all(isinstance(p, str) and p for p in exc.problems)


def test_a_key_mapped_without_a_lookup_through_it_says_when_it_is_used():
    raw = {
        "tables": {
            "accounts": {"path": "a.csv"},
            "opportunities": {"path": "o.csv", "columns": {"subscription_id": "Sub"}},
        }
    }
    with pytest.raises(ConfigError) as caught:
        config_from_dict(raw)
    assert str(caught.value).startswith(
        "config [tables.opportunities].columns: 'subscription_id' is mapped only when another "
        'table looks its account up through it (account_id_from = "opportunities.subscription_id"'
    )


def test_a_subscriptions_own_key_mapped_for_completeness_is_read_by_nothing():
    """A Maxio user mapped subscription_id = "Subscription ID": validate stopped with exit 2
    ("mapped only when another table looks its account up through it"), and once the line was
    removed warned "columns not used (not mapped)". The table's own key is accepted."""
    raw = {
        "tables": {
            "accounts": {"path": "a.csv"},
            "subscriptions": {"path": "s.csv", "columns": {"subscription_id": "Subscription ID"}},
        }
    }
    config = config_from_dict(raw)
    assert "subscription_id" not in config.tables["subscriptions"].columns
    assert "Subscription ID" in config.tables["subscriptions"].drop
    # With the lookup, the same line is what it needs.
    raw["tables"]["usage"] = {
        "path": "u.csv",
        "account_id_from": "subscriptions.subscription_id",
        "columns": {"subscription_id": "Subscription", "date": "Day", "metric": "Metric"},
    }
    raw["tables"]["subscriptions"]["columns"]["account_id"] = "Customer"
    looked_up = config_from_dict(raw).tables["subscriptions"]
    assert looked_up.columns["subscription_id"] == "Subscription ID"
    assert "Subscription ID" not in looked_up.drop
